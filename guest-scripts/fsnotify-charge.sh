#!/bin/bash
# Where an fsnotify group's events are charged (GROUP inotify, the default, or fanotify; HIER v1,
# the default, or v2): to the cgroup X the group was made in while X lives, to X's parent P
# once X is removed, uncharged when read; a group made in the root cgroup charges nothing to a
# cgroup C whose task generates the events. fsnotify-group does the measuring
# (guest-scripts/fsnotify-group.c: v1's kmem counter, v2's slab_unreclaimable); values are
# bytes of kernel memory per event. EVENTS (fanotify) says which events, a comma list: each
# kind's metrics are prefixed with its name and an underscore (none for one kind alone).
set -euo pipefail
. ./kharness-lib.sh
GROUP=${GROUP:-inotify}
memcg_hier
P=$R/fsnotify-charge
kinds=${EVENTS:-close_write}
for kind in ${kinds//,/ }; do
	prefix=""
	[ "$kind" = "$kinds" ] || prefix=${kind}_
	n=$ITERATIONS
	# perm: a task per event, blocked in open() until answered: a few hundred are enough
	[ "$kind" = perm ] && [ "$n" -gt 500 ] && n=500
	mkparent $P
	mkdir $P/x $P/c
	echo "$kind: $n events a phase"
	EVENTS=$kind ./fsnotify-group charge "$GROUP" $P "$n" | sed "s/^kharness-metric /kharness-metric $prefix/"
	rmdir $P/c $P
	rm -rf fsnotify-charge.d
done
