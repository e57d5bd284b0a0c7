#!/bin/bash
# The cost of the series to a task that generates events: ITERATIONS inotify events (1-byte
# writes) and as many fanotify events (a file opened for writing and closed) for a group made in
# a child memory cgroup X, timed by fsnotify-group (guest-scripts/fsnotify-group.c): events a
# second, three runs each, the best shown (TCG timing: the best run is the least disturbed).
set -euo pipefail
. ./kharness-lib.sh
X=$M/fsnotify-rate
move_charges
mkdir $X
for api in inotify fanotify; do
	best=0
	for run in 1 2 3; do
		r=$(./fsnotify-group rate $api $X "$ITERATIONS" | tee /dev/stderr | awk '$1 == "kharness-metric" { print $3 }')
		rm -rf fsnotify-charge.d
		[ "$r" -gt "$best" ] && best=$r
	done
	echo "$api: best of 3 runs: $best events/s"
	echo "kharness-metric ${api}_events_per_s $best"
done
rmdir $X
