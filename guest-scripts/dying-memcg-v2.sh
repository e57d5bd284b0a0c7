#!/bin/bash
# The reproducer on the cgroup v2 hierarchy (booted with cgroup_no_v1=memory, so the memory
# controller is free for v2): ITERATIONS times, a task is started in a fresh memory cgroup,
# moved out, and the cgroup removed. kstack-pin does the loop so that nothing but kernel
# memory is charged to the cgroups (see guest-scripts/kstack-pin.c for why not a shell loop).
# Reports the growth of cgroup.stat's nr_dying_descendants; the harness counts /proc/cgroups.
set -eu
. ./kharness-lib.sh
need_v2_memory
before=$(nr_dying)
./kstack-pin $U "$ITERATIONS"
# removed cgroups go a moment after their last reference (RCU, work items)
now=$(settled nr_dying)
echo "nr_dying_descendants $before -> $now"
echo "kharness-metric nr_dying $((now - before))"
