#!/bin/bash
# test_kmem_basic's steps (tools/testing/selftests/cgroup/test_kmem.c), with the numbers the
# selftest keeps to itself: a task in child cgroup C of the v2 root looks up 100000 names that do
# not exist on ext2 (a negative dentry each, charged to C as slab), then memory.high = 1M is
# written, which reclaims C's dcache. The selftest passes when, read right after the write, both
# C's slab and memory.current are below half of the slab it had. Dentries are freed by RCU
# callbacks after the shrinker drops them, so that reading races with them; this script also
# reads both once they have stopped falling: what the write reclaimed and uncharged for good.
# ITERATIONS rounds, a fresh C each; the worst round's values are reported.
set -u
. ./kharness-lib.sh
need_v2_memory
R=/mnt/scratch
[ -b /dev/ram0 ] || { echo "no /dev/ram0: negative dentries need a block-backed filesystem" >&2; exit 1; }
mke2fs -q /dev/ram0 > /dev/null && mkdir -p $R && mount -t ext2 /dev/ram0 $R || exit 1
C=$U/kmem-high
stat_kb() { awk -v k="$1" '$1 == k { print int($2 / 1024) }' $C/memory.stat; }
current_kb() { echo $(( $(cat $C/memory.current) / 1024 )); }
slab0=0 now_slab=0 now_cur=0 left_slab=0 left_cur=0 passed=0
for ((i = 1; i <= ITERATIONS; i++)); do
	mkdir $C || exit 1
	( echo $BASHPID > $C/cgroup.procs && exec ./dcache-fill $R 100000 ) || exit 1
	s0=$(stat_kb slab)
	echo 1M > $C/memory.high || exit 1
	s1=$(stat_kb slab) c1=$(current_kb)
	s2=$(settled stat_kb slab) c2=$(settled current_kb)
	echo "round $i: slab $s0 kB; right after memory.high = 1M: slab $s1 kB, memory.current $c1 kB;" \
		"settled: slab $s2 kB, memory.current $c2 kB"
	[ "$s1" -lt $((s0 / 2)) ] && [ "$c1" -lt $((s0 / 2)) ] && passed=$((passed + 1))
	# the worst round: least slab charged, the most left at each reading
	[ $i = 1 ] || [ "$s0" -lt "$slab0" ] && slab0=$s0
	now_slab=$(( s1 * 100 / s0 > now_slab ? s1 * 100 / s0 : now_slab ))
	now_cur=$(( c1 * 100 / s0 > now_cur ? c1 * 100 / s0 : now_cur ))
	left_slab=$(( s2 > left_slab ? s2 : left_slab ))
	left_cur=$(( c2 > left_cur ? c2 : left_cur ))
	rmdir $C || exit 1
done
echo "kharness-metric slab0_kb $slab0"
echo "kharness-metric slab_now_pct $now_slab"
echo "kharness-metric current_now_pct $now_cur"
echo "kharness-metric basic_passed $passed"
echo "kharness-metric slab_left_kb $left_slab"
echo "kharness-metric current_left_kb $left_cur"
