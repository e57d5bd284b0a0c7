#!/bin/bash
# The audit's socket pin, on the cgroup v2 hierarchy (booted with cgroup_no_v1=memory): a UDP
# socket created inside memory cgroup X holds X's css from mem_cgroup_sk_alloc() until it is
# freed. fsnotify-group forks a creator into X, whose child makes the socket and hands the fd
# out; both exit, then X is removed with the fd still open: X stays dying until it is closed.
# Neither series changes this; the row records what each kernel does.
set -eu
. ./kharness-lib.sh
need_v2_memory
X=$U/socket-pin
LOG=socket-pin.log
before=$(nr_dying)
mkdir $X
: > $LOG
./fsnotify-group pin socket $X /tmp > $LOG 2>&1 < /dev/null &
pid=$!
wait_ready $LOG $pid "fsnotify-group socket"
no_tasks $X
rmdir $X
for ((i = 0; i < 8; i++)); do [ "$(nr_dying)" -le "$before" ] && break; sleep 0.25; done
open=$(nr_dying)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "fsnotify-group socket failed" >&2; exit 1; }
for ((i = 0; i < 40; i++)); do [ "$(nr_dying)" -le "$before" ] && break; sleep 0.25; done
closed=$(nr_dying)
cat $LOG
echo "nr_dying_descendants: before $before, X removed with the socket open $open, closed $closed"
echo "kharness-metric pinned $((open - before))"
echo "kharness-metric after_close $((closed - before))"
