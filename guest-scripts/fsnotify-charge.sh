#!/bin/bash
# Where an fsnotify group's events are charged (cgroup v1 kmem counters; GROUP inotify, the
# default, or fanotify): to the cgroup X the
# group was made in while X lives, to X's parent P (use_hierarchy) once X is removed, uncharged
# when read; a group made in the root cgroup charges nothing to a cgroup C whose task generates
# the events. fsnotify-group does the measuring (guest-scripts/fsnotify-group.c); values are
# bytes of kmem per event.
set -eu
. ./kharness-lib.sh
P=$M/fsnotify-charge
move_charges
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $P/x $P/c
./fsnotify-group charge "${GROUP:-inotify}" $P "$ITERATIONS"
rmdir $P/c $P
rm -rf fsnotify-charge.d
