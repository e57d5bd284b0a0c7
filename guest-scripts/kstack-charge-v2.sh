#!/bin/bash
# Kernel stacks are charged to the memory cgroup their task runs in, as cgroup v2 counts them
# (booted with cgroup_no_v1=memory): ITERATIONS sleeps started in a child cgroup C raise C's
# memory.stat kernel_stack (the per-memcg count of stack memory, which a kernel that stopped
# charging stacks leaves at 0) by a stack each; the size of one is read from /proc/meminfo's
# KernelStack, not assumed. When the sleeps exit, C's kernel_stack falls back.
# Values in units of one kernel stack, so "a stack per task" reads ">= ITERATIONS".
set -eu
. ./kharness-lib.sh
need_v2_memory
C=$U/kstack-charge
K=$ITERATIONS
kstack() { awk '$1 == "kernel_stack" { print $2 }' "$C/memory.stat"; }
stack_kb() { awk '$1 == "KernelStack:" { print $2 }' /proc/meminfo; }
mkdir $C
[ -n "$(kstack)" ] || { echo "$C/memory.stat has no kernel_stack line" >&2; exit 1; }
echo $$ > $C/cgroup.procs
c0=$(kstack)
ks0=$(stack_kb)
pids=()
for ((i = 0; i < K; i++)); do
	sleep 3600 < /dev/null > /dev/null 2>&1 &
	pids+=($!)
done
c1=$(kstack)
ks1=$(stack_kb)
kill "${pids[@]}"
wait "${pids[@]}" 2> /dev/null || true
sleep 1
c2=$(kstack)
echo $$ > $U/cgroup.procs
rmdir $C
stack=$(( (ks1 - ks0) * 1024 / K ))
[ "$stack" -gt 0 ] || { echo "KernelStack did not grow with $K tasks ($ks0 -> $ks1 kB)" >&2; exit 1; }
echo "kernel stack per task: $stack bytes (KernelStack $ks0 -> $ks1 kB for $K tasks)"
echo "C memory.stat kernel_stack: $c0 before, $c1 with the tasks, $c2 after they exited (bytes)"
echo "kharness-metric stack_bytes $stack"
echo "kharness-metric charged_stacks $(( (c1 - c0) / stack ))"
echo "kharness-metric uncharged_stacks $(( (c1 - c2) / stack ))"
