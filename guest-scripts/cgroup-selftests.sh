#!/bin/bash
# The kernel tree's own cgroup selftests (tools/testing/selftests/cgroup, built static for this
# arch by the harness from the tree under test) on the v2 hierarchy with the memory controller.
# Each program runs ITERATIONS times (timing-sensitive tests flake under emulation: the harness
# calls a test flaky, not failed, when its runs disagree), its TAP output each time between
# "kharness-selftest NAME" and "kharness-selftest NAME exit N".
set -u
U=/sys/fs/cgroup/unified
grep -qw memory $U/cgroup.controllers || {
	echo "memory controller not on the v2 hierarchy at $U (boot with cgroup_no_v1=memory)" >&2
	exit 1
}
echo +memory > $U/cgroup.subtree_control || exit 1
for ((run = 1; run <= ITERATIONS; run++)); do
	for t in $SELFTESTS; do
		echo "kharness-selftest $t"
		./"$t" 2>&1
		echo "kharness-selftest $t exit $?"
	done
done
exit 0
