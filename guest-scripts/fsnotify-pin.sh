#!/bin/bash
# An fsnotify group (API=inotify or fanotify) created inside memory cgroup X outlives its
# creator's membership: fsnotify-group forks a creator into X, whose child makes the group and
# hands the fd out over a unix socket; both exit (no task of X is left, their kernel stacks are
# freed), then X is removed with the fd still open. A kernel whose fsnotify group pins its
# creator's memcg keeps X dying until the fd is closed.
set -eu
. ./kharness-lib.sh
API=${API:-inotify}
X=$M/$API-pin
LOG=$API-pin.log
W=/tmp/$API-pin-watch
move_charges
before=$(ncg)
mkdir $X
mkdir -p $W
: > $LOG   # before the helper starts: the loop below reads it
./fsnotify-group pin $API $X $W > $LOG 2>&1 < /dev/null &
pid=$!
wait_ready $LOG $pid "fsnotify-group $API"
no_tasks $X
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
