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
# Mount options the 5.10 tests assume: nsdelegate (test_cgcore_lesser_ns_open expects ENOENT)
# and memory_localevents (test_memcg_oom_group_leaf_events expects the parent's oom_kill 0).
mount -o remount,nsdelegate,memory_localevents $U || exit 1
# test_memcg_sock connects to "localhost": the image has no /etc/hosts.
[ -e /etc/hosts ] || printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/hosts
for ((run = 1; run <= ITERATIONS; run++)); do
	for t in $SELFTESTS; do
		echo "kharness-selftest $t"
		# On a pty stdio line-buffers: forked test children have no pending TAP line to
		# flush at exit() into an output page (the .out file on tmpfs, or a pipe) that is charged
		# to their cgroup and keeps it dying (test_kmem_dead_cgroups).
		./ptyrun ./"$t" 2>&1
		echo "kharness-selftest $t exit $?"
	done
done
exit 0
