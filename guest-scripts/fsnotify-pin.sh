#!/bin/bash
# An fsnotify group (API=inotify or fanotify) created inside memory cgroup X outlives its
# creator's membership: fsnotify-group forks a creator into X, whose child makes the group and
# hands the fd out over a unix socket; both exit (no task of X is left, their kernel stacks are
# freed), then X is removed with the fd still open. A kernel whose fsnotify group pins its
# creator's memcg keeps X dying until the fd is closed.
set -eu
API=${API:-inotify}
M=/sys/fs/cgroup/memory
X=$M/$API-pin
LOG=$API-pin.log
W=/tmp/$API-pin-watch
ncg() { awk '$1 == "memory" { print $3 }' /proc/cgroups; }
# 7.x refuses any value but 0 (charge moving was deprecated in 6.x): the step is kept and its refusal said
echo 1 > $M/memory.move_charge_at_immigrate 2> /dev/null ||
	echo "kharness-note memory.move_charge_at_immigrate = 1 refused by this kernel: charges stay where they were made"
before=$(ncg)
mkdir $X
mkdir -p $W
: > $LOG   # before the helper starts: the loop below reads it
./fsnotify-group pin $API $X $W > $LOG 2>&1 < /dev/null &
pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q READY $LOG && break
	kill -0 $pid 2> /dev/null || break
	sleep 0.1
done
grep -q READY $LOG || { cat $LOG >&2; echo "fsnotify-group $API did not get ready" >&2; exit 1; }
left=$(wc -l < $X/cgroup.procs)
[ "$left" = 0 ] || { echo "$left tasks still in $X: their kernel stacks would pin it" >&2; exit 1; }
rmdir $X
touch $W/event-1 $W/event-2
# settle: a removed cgroup with no reference left goes within a moment
for ((i = 0; i < 8; i++)); do [ "$(ncg)" -le "$before" ] && break; sleep 0.25; done
open=$(ncg)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "fsnotify-group $API failed" >&2; exit 1; }
for ((i = 0; i < 40; i++)); do [ "$(ncg)" -le "$before" ] && break; sleep 0.25; done
closed=$(ncg)
cat $LOG
events=$(awk '$1 == "EVENTS" { print $2 }' $LOG)
[ "${events:-0}" -ge 2 ] || { echo "the $API group saw ${events:-no} events, expected 2" >&2; exit 1; }
echo "memory num_cgroups: before $before, X removed with the fd open $open, fd closed $closed"
echo "kharness-metric pinned $((open - before))"
echo "kharness-metric after_close $((closed - before))"
