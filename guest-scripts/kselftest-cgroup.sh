# The cgroup collection's setup, sourced by kselftest.sh (configs/tests.yaml): the machine the
# kernel's cgroup selftests assume, which the guest is not by itself.
# - v2 with the memory controller, mounted with nsdelegate (test_cgcore_lesser_ns_open expects
#   ENOENT) and memory_localevents (test_memcg_oom_group_leaf_events expects the parent's
#   oom_kill 0);
# - /etc/hosts: test_memcg_sock connects to "localhost";
# - a block-backed root (configs/kconfig/selftests.config says which tests need it and why):
#   ext2 on RAM disk 0, with the guest's own directories bound in, and the runner chrooted into
#   it; test_kmem_basic looks up names under / itself, whose negative dentries the initramfs
#   does not keep;
# - swap on RAM disk 1.
# A kernel without the RAM disks runs the tests on the initramfs without swap, and says so.
# Each program runs on a pty (ptyrun): stdio then line-buffers, so a test's forked children
# flush no pending TAP line at exit() into a pipe page charged to, and pinning, their test
# cgroup (test_kmem_dead_cgroups); after STALL seconds without output ptyrun kills a test's
# workload (5.10's test_memcg_high can be throttled for tens of minutes), the test fails as a
# test, and a note says so.
. ./kharness-lib.sh
need_v2_memory
mount -o remount,nsdelegate,memory_localevents $U || exit 1
[ -e /etc/hosts ] || printf '127.0.0.1 localhost\n::1 localhost\n' > /etc/hosts
R=/mnt/scratch
if [ -b /dev/ram0 ] && mke2fs -q /dev/ram0 > /dev/null && mkdir -p $R && mount -t ext2 /dev/ram0 $R; then
	for d in /*; do
		case $d in /mnt | /tmp | /lost+found) continue ;; esac
		[ -d "$d" ] || continue
		mkdir -p "$R$d" && mount -o rbind "$d" "$R$d" || exit 1
	done
	mkdir -p $R/tmp && chmod 1777 $R/tmp || exit 1
	root=$R
else
	echo "kharness-note no ext2 scratch filesystem (/dev/ram0): the tests' files are on tmpfs, / on the initramfs"
fi
if ! { [ -b /dev/ram1 ] && mkswap /dev/ram1 > /dev/null && swapon /dev/ram1; }; then
	echo "kharness-note no swap device (/dev/ram1): swap tests skip"
fi
export PTYRUN_STALL=${STALL:-0}
[ -x "$KHARNESS_DIR/ptyrun" ] || { echo "no ptyrun next to the script (the collection's helpers)" >&2; exit 1; }
if [ -n "$root" ]; then
	mkdir -p "$root$KHARNESS_DIR" && cp "$KHARNESS_DIR/ptyrun" "$root$KHARNESS_DIR/" || exit 1
fi
# each program of the collection through ptyrun: a wrapper under its name (the runner's list
# names it), the program itself under its own name in .pty/ (test_cgfreezer_stopped looks for
# its comm, "test_freezer", in /proc/PID/stat)
kselftest_prepare() {
	local t
	mkdir -p "$KSELFTEST/.pty" || return 1
	for t in "$KSELFTEST"/test_*; do
		[ -f "$t" ] && [ -x "$t" ] && [ "${t%.sh}" = "$t" ] || continue
		mv "$t" "$KSELFTEST/.pty/" && printf '#!/bin/sh\nexec %s "${0%%/*}/.pty/%s" "$@"\n' "$KHARNESS_DIR/ptyrun" "${t##*/}" > "$t" &&
			chmod +x "$t" || return 1
	done
}
# The freezer's time tests (7.x's test_cgfreezer_time_*) read frozen_usec, which needs a fine
# clock: a guest whose clocksource the kernel gave up on (the watchdog marked it unstable and
# it fell back to jiffies) fails them on any kernel. Which clock the runs had is in a note.
clock() { cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2> /dev/null || echo unknown; }
clock0=$(clock)
kselftest_done() {
	local clock1
	clock1=$(clock)
	if [ "$clock0" != "$clock1" ] || [ -z "${clock1##*jiffies*}" ]; then
		echo "kharness-note clocksource $clock0 at the start, $clock1 at the end: time tests saw a coarse or changed clock"
	fi
}
