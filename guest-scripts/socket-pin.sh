#!/bin/bash
# The audit's socket pin, on the cgroup v2 hierarchy (booted with cgroup_no_v1=memory): a UDP
# socket created inside memory cgroup X holds X's css from mem_cgroup_sk_alloc() until it is
# freed. fsnotify-group forks a creator into X, whose child makes the socket and hands the fd
# out; both exit, then X is removed with the fd still open: X stays dying until it is closed.
# Neither series changes this; the row records what each kernel does.
set -eu
U=/sys/fs/cgroup/unified
grep -qw memory $U/cgroup.controllers || {
	echo "memory controller not on the v2 hierarchy at $U (boot with cgroup_no_v1=memory)" >&2
	exit 1
}
echo +memory > $U/cgroup.subtree_control
X=$U/socket-pin
LOG=socket-pin.log
dying() { awk '$1 == "nr_dying_descendants" { print $2 }' $U/cgroup.stat; }
before=$(dying)
mkdir $X
: > $LOG
./fsnotify-group pin socket $X /tmp > $LOG 2>&1 < /dev/null &
pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q READY $LOG && break
	kill -0 $pid 2> /dev/null || break
	sleep 0.1
done
grep -q READY $LOG || { cat $LOG >&2; echo "fsnotify-group socket did not get ready" >&2; exit 1; }
left=$(wc -l < $X/cgroup.procs)
[ "$left" = 0 ] || { echo "$left tasks still in $X: their kernel stacks would pin it" >&2; exit 1; }
rmdir $X
for ((i = 0; i < 8; i++)); do [ "$(dying)" -le "$before" ] && break; sleep 0.25; done
open=$(dying)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "fsnotify-group socket failed" >&2; exit 1; }
for ((i = 0; i < 40; i++)); do [ "$(dying)" -le "$before" ] && break; sleep 0.25; done
closed=$(dying)
cat $LOG
echo "nr_dying_descendants: before $before, X removed with the socket open $open, closed $closed"
echo "kharness-metric pinned $((open - before))"
echo "kharness-metric after_close $((closed - before))"
