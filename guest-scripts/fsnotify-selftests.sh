#!/bin/bash
# The kernel tree's own fanotify selftests (tools/testing/selftests/filesystems/mount-notify:
# a fanotify group of FAN_REPORT_MNT marks a mount namespace and reads its mount and unmount
# events), built static for this arch by the harness from the tree under test. They run in a
# child memory cgroup, so their groups charge events to it through set_active_memcg() with the
# group's memcg, the path the fsnotify series changes (a group made in the root charges nothing).
# Each program runs ITERATIONS times, its TAP output between "kharness-selftest NAME" and
# "kharness-selftest NAME exit N" (cgroup-selftests.sh's format).
set -u
. ./kharness-lib.sh
need_v2_memory
C=$U/kharness-selftests
mkdir $C || exit 1
echo $$ > $C/cgroup.procs || exit 1
for ((run = 1; run <= ITERATIONS; run++)); do
	for t in $SELFTESTS; do
		echo "kharness-selftest $t"
		"$KHARNESS_DIR/$t" 2>&1
		echo "kharness-selftest $t exit $?"
	done
done
# what the tests' groups and events were charged, as the kernel counted it in this cgroup
echo "kharness-note memory.peak of the tests' cgroup: $(cat $C/memory.peak 2> /dev/null || echo unknown) bytes"
echo $$ > $U/cgroup.procs && rmdir $C || exit 1
exit 0
