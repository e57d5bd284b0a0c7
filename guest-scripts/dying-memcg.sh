#!/bin/bash
# The reproducer from the cover letter of "Use obj_cgroup APIs to charge kmem pages", kept as
# close to the letter as it runs: each iteration creates a memory cgroup, forks a `sleep` inside
# it (its kernel stack is charged there), moves everything out and removes the cgroup. On a
# kernel where the stack's kmem pages pin their memcg, every removed cgroup stays dying.
# Changes from the letter: the iteration count is a parameter (the letter's `range{1..500}`
# runs 500 times), `set -eu` so that a failing step fails the script instead of being lost, and
# a kernel that refuses move_charge_at_immigrate (7.x) is said in the output, not fatal.
set -eu
ITERATIONS=${ITERATIONS:-500}

cat /proc/cgroups | grep memory
cd /sys/fs/cgroup/memory
# 7.x refuses any value but 0 (charge moving was deprecated in 6.x): the step is kept and its refusal said
echo 1 > memory.move_charge_at_immigrate 2> /dev/null ||
	echo "kharness-note memory.move_charge_at_immigrate = 1 refused by this kernel: charges stay where they were made"
for ((i = 1; i <= ITERATIONS; i++))
do
	mkdir kmem_test
	echo $$ > kmem_test/cgroup.procs
	sleep 3600 &
	echo $$ > cgroup.procs
	echo `cat kmem_test/cgroup.procs` > cgroup.procs
	rmdir kmem_test
done
cat /proc/cgroups | grep memory
