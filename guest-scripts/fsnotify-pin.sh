#!/bin/bash
# An inotify instance created inside memory cgroup X outlives its creator's membership:
# inotify-pin forks a creator into X, whose child makes the instance and hands the fd out over
# a unix socket; both exit (no task of X is left, their kernel stacks are freed), then X is
# removed with the fd still open. A kernel whose fsnotify group pins its creator's memcg keeps
# X dying until the fd is closed.
set -eu
M=/sys/fs/cgroup/memory
X=$M/inotify-pin
ncg() { awk '$1 == "memory" { print $3 }' /proc/cgroups; }
echo 1 > $M/memory.move_charge_at_immigrate
before=$(ncg)
mkdir $X
./inotify-pin $X /tmp > inotify-pin.log 2>&1 < /dev/null &
pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q READY inotify-pin.log && break
	kill -0 $pid 2> /dev/null || break
	sleep 0.1
done
grep -q READY inotify-pin.log || { cat inotify-pin.log >&2; echo "inotify-pin did not get ready" >&2; exit 1; }
left=$(wc -l < $X/cgroup.procs)
[ "$left" = 0 ] || { echo "$left tasks still in $X: their kernel stacks would pin it" >&2; exit 1; }
rmdir $X
touch /tmp/inotify-pin-event-1 /tmp/inotify-pin-event-2
# settle: a removed cgroup with no reference left goes within a moment
for ((i = 0; i < 8; i++)); do [ "$(ncg)" -le "$before" ] && break; sleep 0.25; done
open=$(ncg)
kill -USR1 $pid
wait $pid || { cat inotify-pin.log >&2; echo "inotify-pin failed" >&2; exit 1; }
for ((i = 0; i < 40; i++)); do [ "$(ncg)" -le "$before" ] && break; sleep 0.25; done
closed=$(ncg)
cat inotify-pin.log
events=$(awk '$1 == "EVENTS" { print $2 }' inotify-pin.log)
[ "${events:-0}" -ge 2 ] || { echo "the inotify instance saw ${events:-no} events, expected 2" >&2; exit 1; }
echo "memory num_cgroups: before $before, X removed with the fd open $open, fd closed $closed"
echo "kharness-metric pinned $((open - before))"
echo "kharness-metric after_close $((closed - before))"
