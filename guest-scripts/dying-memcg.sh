#!/bin/bash
# The reproducer from the cover letter of "Use obj_cgroup APIs to charge kmem pages", kept as
# close to the letter as it runs: each iteration creates a memory cgroup, forks a `sleep` inside
# it (its kernel stack is charged there), moves everything out and removes the cgroup. On a
# kernel where the stack's kmem pages pin their memcg, every removed cgroup stays dying.
# Changes from the letter: the iteration count is a parameter (the letter's `range{1..500}`
# runs 500 times), and `set -eu` so that a failing step fails the script instead of being lost.
set -eu
ITERATIONS=${ITERATIONS:-500}

cat /proc/cgroups | grep memory
cd /sys/fs/cgroup/memory
echo 1 > memory.move_charge_at_immigrate
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
