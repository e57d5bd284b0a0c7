#!/bin/bash
# Kernel pages of a removed cgroup, freed after it is gone (cgroup v1, MODE=pgtables|pipes):
# in child C of parent P (use_hierarchy), kmem-pages makes ITERATIONS page table pages (or pipe
# pages with two references each) and moves out; C is removed while they live, then they are
# freed (munmap: the mmu_gather batch and release_pages; close: the last pipe reference).
# Reports, in pages: what C was charged, what P keeps with C removed, what freeing gives back
# and P's kmem after all against before (exactly back, else the difference); whether C
# stays dying while the pages live (base) or is reparented (the series); and how long the
# munmap() or the closes that free them took (free_us, the cost of the uncharge path).
set -eu
. ./kharness-lib.sh
MODE=${MODE:?MODE=pgtables or pipes}
P=$M/kmem-$MODE
C=$P/child
LOG=kmem-$MODE.log
move_charges
before=$(ncg)
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $C
p0=$(settled kmem $P)
: > $LOG
./kmem-pages "$MODE" $C $M "$ITERATIONS" > $LOG 2>&1 < /dev/null &
pid=$!
wait_ready $LOG $pid "kmem-pages $MODE" 30
c1=$(kmem $C)
no_tasks $C
rmdir $C
removed=$(settled ncg)
p1=$(kmem $P)
kill -USR1 $pid
wait $pid || { cat $LOG >&2; echo "kmem-pages $MODE failed" >&2; exit 1; }
free_us=$(sed -n 's/^FREED \([0-9]*\) us$/\1/p' $LOG)
[ -n "$free_us" ] || { cat $LOG >&2; echo "kmem-pages $MODE: no FREED line" >&2; exit 1; }
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
echo "kharness-metric free_us $free_us"
