#!/bin/bash
# Kernel pages of a removed cgroup, freed after it is gone (cgroup v1, MODE=pgtables|pipes):
# in child C of parent P (use_hierarchy), kmem-pages makes ITERATIONS page table pages (or pipe
# pages with two references each) and moves out; C is removed while they live, then they are
# freed (munmap: the mmu_gather batch and release_pages; close: the last pipe reference).
# Reports, in pages: what C was charged, what P keeps with C removed, what freeing gives back
# and P's kmem after all against before (exactly back, else the difference); and whether C
# stays dying while the pages live (base) or is reparented (the series).
set -eu
MODE=${MODE:?MODE=pgtables or pipes}
M=/sys/fs/cgroup/memory
P=$M/kmem-$MODE
C=$P/child
LOG=kmem-$MODE.log
ncg() { awk '$1 == "memory" { print $3 }' /proc/cgroups; }
kmem() { cat "$1/memory.kmem.usage_in_bytes"; }
# the value once it stops moving (RCU-freed objects, workers): 2 s unchanged, at most 10 s
settled() {
	local last=-1 now same=0 i
	for ((i = 0; i < 40 && same < 8; i++)); do
		now=$("$@")
		if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
		sleep 0.25
	done
	echo "$now"
}
echo 1 > $M/memory.move_charge_at_immigrate 2> /dev/null ||
	echo "kharness-note memory.move_charge_at_immigrate = 1 refused by this kernel: charges stay where they were made"
before=$(ncg)
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $C
p0=$(settled kmem $P)
: > $LOG
./kmem-pages "$MODE" $C $M "$ITERATIONS" > $LOG 2>&1 < /dev/null &
pid=$!
for ((i = 0; i < 300; i++)); do
	grep -q READY $LOG && break
	kill -0 $pid 2> /dev/null || break
	sleep 0.1
done
grep -q READY $LOG || { cat $LOG >&2; echo "kmem-pages $MODE did not get ready" >&2; exit 1; }
c1=$(kmem $C)
left=$(wc -l < $C/cgroup.procs)
[ "$left" = 0 ] || { echo "$left tasks still in $C" >&2; exit 1; }
rmdir $C
removed=$(settled ncg)
p1=$(kmem $P)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "kmem-pages $MODE failed" >&2; exit 1; }
p2=$(settled kmem $P)
freed=$(settled ncg)
rmdir $P
cat $LOG
echo "C kmem with the pages: $c1; P kmem: $p0 before, $p1 with C removed, $p2 after the pages were freed"
echo "memory num_cgroups: $before before, $removed with C removed and its pages alive, $freed after they were freed (P included)"
echo "kharness-metric charged $((c1 / 4096))"
echo "kharness-metric kept $(((p1 - p0) / 4096))"
echo "kharness-metric freed $(((p1 - p2) / 4096))"
echo "kharness-metric leak_kb $(((p2 - p0) / 1024))"
echo "kharness-metric pinned $((removed - before - 1))"
echo "kharness-metric after_free $((freed - before - 1))"
