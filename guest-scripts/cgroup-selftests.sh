#!/bin/bash
# The kernel tree's own cgroup selftests (tools/testing/selftests/cgroup, built static for this
# arch by the harness from the tree under test) on the v2 hierarchy with the memory controller.
# Each program runs ITERATIONS times (timing-sensitive tests flake under emulation: the harness
# calls a test flaky, not failed, when its runs disagree), its TAP output each time between
# "kharness-selftest NAME" and "kharness-selftest NAME exit N".
set -u
. ./kharness-lib.sh
need_v2_memory
# Mount options the 5.10 tests assume: nsdelegate (test_cgcore_lesser_ns_open expects ENOENT)
# and memory_localevents (test_memcg_oom_group_leaf_events expects the parent's oom_kill 0).
mount -o remount,nsdelegate,memory_localevents $U || exit 1
# test_memcg_sock connects to "localhost": the image has no /etc/hosts.
[ -e /etc/hosts ] || printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/hosts
# A block-backed working directory and swap, as the tests assume (configs/kconfig/selftests.config
# says which tests and why): ext2 on RAM disk 0, swap on RAM disk 1. A kernel without them
# runs the tests on tmpfs without swap, and the output says so.
# The tests run chrooted into the ext2 filesystem, /proc, /sys and /dev bound in: test_kmem_basic
# looks up names under / itself (its negative dentries must be kept: not on the initramfs).
D=$KHARNESS_DIR
R=/mnt/scratch
if [ -b /dev/ram0 ] && mke2fs -q /dev/ram0 > /dev/null && mkdir -p $R && mount -t ext2 /dev/ram0 $R; then
	for d in proc sys dev; do mkdir -p $R/$d && mount -o rbind /$d $R/$d || exit 1; done
	cp "$D/ptyrun" $(for t in $SELFTESTS; do echo "$D/$t"; done) $R/ || exit 1
	mkdir -p $R/etc && cp /etc/hosts $R/etc/ || exit 1
	run() { chroot $R /ptyrun "/$1"; }
else
	echo "kharness-note no ext2 scratch filesystem (/dev/ram0): the tests' files are on tmpfs"
	run() { "$D/ptyrun" "$D/$1"; }
fi
if ! { [ -b /dev/ram1 ] && mkswap /dev/ram1 > /dev/null && swapon /dev/ram1; }; then
	echo "kharness-note no swap device (/dev/ram1): swap tests skip"
fi
# A test whose workload never finishes (5.10's test_memcg_high: 100M of anon under a 30M
# memory.high with memory.swap.max 0 is throttled for tens of minutes) would take the program's
# later tests with it: after STALL seconds without output ptyrun kills the test's workload, the
# test fails as a test, and says so in a kharness-note line.
export PTYRUN_STALL=${STALL:-0}
# The freezer's time tests (test_cgfreezer_time_*, 7.x) read frozen_usec, which needs a fine
# clock: a guest whose clocksource the kernel gave up on (the watchdog marked it unstable and
# it fell back to jiffies) fails them on any kernel. Which clock the runs had is in a note.
clock() { cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown; }
clock0=$(clock)
for ((run = 1; run <= ITERATIONS; run++)); do
	for t in $SELFTESTS; do
		echo "kharness-selftest $t"
		# On a pty stdio line-buffers: forked test children have no pending TAP line to
		# flush at exit() into an output page (the .out file on tmpfs, or a pipe) that is charged
		# to their cgroup and keeps it dying (test_kmem_dead_cgroups).
		run "$t" 2>&1
		echo "kharness-selftest $t exit $?"
	done
done
clock1=$(clock)
if [ "$clock0" != "$clock1" ] || [ -z "${clock1##*jiffies*}" ]; then
	echo "kharness-note clocksource $clock0 at the start, $clock1 at the end: time tests saw a coarse or changed clock"
fi
exit 0
