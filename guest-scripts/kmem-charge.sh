#!/bin/bash
# Kernel memory is still charged, kept and uncharged (cgroup v1): ITERATIONS sleeps started in
# child cgroup C of parent P charge C's memory.kmem.usage_in_bytes with at least their kernel
# stacks (the size per task read from /proc/meminfo's KernelStack, not assumed); with the sleeps
# moved out and C removed, P (use_hierarchy) still holds the charge - reparented on a kernel
# with the series, held by the dying C without it; when the sleeps exit, it is uncharged.
# Values in units of one kernel stack, so "at least one stack per task" reads ">= ITERATIONS".
set -eu
. ./kharness-lib.sh
P=$M/kmem-charge
C=$P/child
K=$ITERATIONS
stack_kb() { awk '$1 == "KernelStack:" { print $2 }' /proc/meminfo; }
move_charges
before=$(ncg)
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $C
p0=$(kmem $P)
echo $$ > $C/cgroup.procs
c0=$(kmem $C)
ks0=$(stack_kb)
pids=()
for ((i = 0; i < K; i++)); do
	sleep 3600 < /dev/null > /dev/null 2>&1 &
	pids+=($!)
done
c1=$(kmem $C)
ks1=$(stack_kb)
echo $$ > $M/cgroup.procs
for p in "${pids[@]}"; do echo "$p" > $M/cgroup.procs; done
no_tasks $C
rmdir $C
sleep 1
p1=$(kmem $P)
alive=$(ncg)
kill "${pids[@]}"
wait "${pids[@]}" 2> /dev/null || true
sleep 1
p2=$(kmem $P)
rmdir $P
stack=$(( (ks1 - ks0) * 1024 / K ))
[ "$stack" -gt 0 ] || { echo "KernelStack did not grow with $K tasks ($ks0 -> $ks1 kB)" >&2; exit 1; }
echo "kernel stack per task: $stack bytes (KernelStack $ks0 -> $ks1 kB for $K tasks)"
echo "C kmem: $c0 -> $c1 with the tasks; P kmem: $p0 before, $p1 with C removed, $p2 after exit"
echo "memory num_cgroups: $before before, $alive with C removed and its tasks alive"
echo "kharness-metric stack_bytes $stack"
echo "kharness-metric charged_stacks $(( (c1 - c0) / stack ))"
echo "kharness-metric kept_stacks $(( (p1 - p0) / stack ))"
echo "kharness-metric uncharged_stacks $(( (p1 - p2) / stack ))"
# C itself: dying (1) while something it was charged still points at it, or gone (0)
echo "kharness-metric child_dying $(( alive - before - 1 ))"
