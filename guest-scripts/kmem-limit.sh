#!/bin/bash
# The charge-failure path (cgroup v1, a kmem limit): in child C of P (use_hierarchy) with
# memory.kmem.limit_in_bytes LIMIT, kmem-pages forks waiting children until fork fails (it
# must fail with ENOMEM, as a failed kmem charge of a kernel stack does), then kills and reaps
# them and leaves. Everything they were charged must be uncharged: C's kmem back to ~0 and P's
# to where it began. Whether the removed C is gone is reported (c_dying), not judged: on 5.10,
# base and patched alike, a child whose tasks forked and exited keeps 4 KiB of kmem and a few
# pages of usage that no memory.stat key names, and stays dying (kharness found it here; the
# series' own rows, where the tasks live on, show the reparenting).
set -eu
. ./kharness-lib.sh
P=$M/kmem-limit
C=$P/child
LIMIT=${LIMIT:-8M}
LOG=kmem-limit.log
move_charges
before=$(ncg)
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $C
echo "$LIMIT" > $C/memory.kmem.limit_in_bytes || {
	echo "this kernel refuses memory.kmem.limit_in_bytes (removed in 6.x)" >&2; exit 1; }
p0=$(settled kmem $P)
./kmem-pages forks $C $M "$ITERATIONS" > $LOG 2>&1 < /dev/null
cat $LOG
line=$(grep '^FORKS ' $LOG) || { echo "kmem-pages forks said no FORKS line" >&2; exit 1; }
forks=$(echo "$line" | cut -d' ' -f2)
err=$(echo "$line" | cut -d' ' -f3-)
c1=$(settled kmem $C)
failcnt=$(cat $C/memory.kmem.failcnt)
echo "C after all exited: usage $(cat $C/memory.usage_in_bytes), kmem $c1; memory.stat:"; grep -vw 0 $C/memory.stat | grep -v '^total_' || true
rmdir $C
gone=$(settled ncg)
p1=$(settled kmem $P)
rmdir $P
echo "C: $forks forks under a kmem limit of $LIMIT, then fork: $err; kmem.failcnt $failcnt; C kmem $c1 after all exited"
echo "P kmem: $p0 before, $p1 after; memory num_cgroups: $before before, $gone with C removed (P included)"
echo "kharness-metric forks $forks"
echo "kharness-metric enomem $([ "$err" = ENOMEM ] && echo 1 || echo 0)"
echo "kharness-metric failcnt $failcnt"
echo "kharness-metric child_left_kb $((c1 / 1024))"
echo "kharness-metric leak_kb $(((p1 - p0) / 1024))"
echo "kharness-metric c_dying $((gone - before - 1))"
