#!/bin/bash
# The audit's zombie pin, on the cgroup v2 hierarchy (booted with cgroup_no_v1=memory). A child
# moves itself into memory cgroup X and waits on a fifo; its parent execs sleep, which never
# reaps. Released by the fifo, the child exits: a zombie of X. X has no task left (rmdir is
# allowed), but the zombie's css_set holds X's css until the zombie is reaped: X stays dying.
# Killing the sleep hands the zombie to init, which reaps it, and X goes.
# Neither series changes this; the row records what each kernel does.
set -eu
. ./kharness-lib.sh
need_v2_memory
X=$U/zombie-pin
FIFO=zombie-pin.fifo
PIDF=zombie-pin.pid
before=$(nr_dying)
mkdir $X
rm -f $FIFO $PIDF
mkfifo $FIFO
bash -c "bash -c 'echo \$\$ > $X/cgroup.procs; echo \$\$ > $PIDF; read -r < $FIFO' & exec sleep 600" \
	< /dev/null > /dev/null 2>&1 &
parent=$!
for ((i = 0; i < 100; i++)); do
	[ -s $PIDF ] && [ "$(cat /proc/$parent/comm 2> /dev/null)" = sleep ] && break
	sleep 0.1
done
[ -s $PIDF ] && [ "$(cat /proc/$parent/comm)" = sleep ] ||
	{ echo "the child did not join $X, or its parent did not become sleep, in 10 s" >&2; exit 1; }
child=$(cat $PIDF)
echo > $FIFO
for ((i = 0; i < 100; i++)); do
	[ "$(awk '{ print $3 }' /proc/$child/stat 2> /dev/null)" = Z ] && break
	sleep 0.1
done
state=$(awk '{ print $3 }' /proc/$child/stat 2> /dev/null) || true
[ "$state" = Z ] || { echo "child $child is not a zombie of sleep $parent after 10 s (state '${state}')" >&2; exit 1; }
echo "child $child: state Z, parent $parent (sleep), cgroup $(cat /proc/$child/cgroup)"
no_tasks $X
rmdir $X
for ((i = 0; i < 8; i++)); do [ "$(nr_dying)" -le "$before" ] && break; sleep 0.25; done
zombie=$(nr_dying)
kill $parent
wait $parent 2> /dev/null || true
for ((i = 0; i < 40; i++)); do [ -e /proc/$child ] || break; sleep 0.25; done
[ ! -e /proc/$child ] || { echo "zombie $child not reaped 10 s after its parent was killed" >&2; exit 1; }
for ((i = 0; i < 40; i++)); do [ "$(nr_dying)" -le "$before" ] && break; sleep 0.25; done
reaped=$(nr_dying)
rm -f $FIFO $PIDF
echo "nr_dying_descendants: before $before, X removed with its zombie $zombie, reaped $reaped"
echo "kharness-metric pinned $((zombie - before))"
echo "kharness-metric after_reap $((reaped - before))"
