#!/bin/bash
# An fsnotify group (API=inotify or fanotify) made inside memory cgroup X outlives its creator's
# membership: fsnotify-group forks a creator into X, whose child makes the group and hands the
# fd out over a unix socket; both exit (no task of X is left, their kernel stacks are freed),
# then X is removed with the fd still open. A kernel whose fsnotify group pins its creator's
# memcg keeps X dying until the fd is closed.
#
# X sits in a parent P of its own (not the root, whose references are no-ops), and the group
# gets an event while X is online (a reference on X, were one taken per event) and two after X
# is removed (on P). Every count is read once it has settled: X dying with the fd open
# (pinned), X still there once the fd is closed (after_close: a reference left behind), P still
# there once removed too (parent_left). HIER=v2 runs it on the v2 hierarchy.
set -eu
. ./kharness-lib.sh
API=${API:-inotify}
memcg_hier
P=$R/$API-pin
X=$P/x
LOG=$API-pin.log
W=/tmp/$API-pin-watch
before=$(settled ncg)
mkparent $P
mkdir $X
rm -rf $W
mkdir -p $W
: > $LOG   # before the helper starts: the loop below reads it
./fsnotify-group pin $API $X $W > $LOG 2>&1 < /dev/null &
pid=$!
wait_ready $LOG $pid "fsnotify-group $API"
no_tasks $X
touch $W/event-0          # X online: charged to X
rmdir $X
touch $W/event-1 $W/event-2   # X removed: charged to P
open=$(settled ncg)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "fsnotify-group $API failed" >&2; exit 1; }
closed=$(settled ncg)
rmdir $P
gone=$(settled ncg)
cat $LOG
events=$(awk '$1 == "EVENTS" { print $2 }' $LOG)
[ "${events:-0}" -ge 3 ] || { echo "the $API group saw ${events:-no} events, expected 3" >&2; exit 1; }
echo "memory num_cgroups: before $before, P and X made, X removed with the fd open $open, fd closed $closed, P removed $gone"
[ "${HIER:-v1}" = v2 ] && echo "v2 nr_dying_descendants at the end: $(nr_dying)"
# P is live until the end: X alone is counted while the fd is open and once it is closed
echo "kharness-metric pinned $((open - before - 1))"
echo "kharness-metric after_close $((closed - before - 1))"
echo "kharness-metric parent_left $((gone - before))"
