#!/bin/bash
# The reproducer on the cgroup v2 hierarchy (booted with cgroup_no_v1=memory, so the memory
# controller is free for v2): ITERATIONS times, a task is started in a fresh memory cgroup,
# moved out, and the cgroup removed. kstack-pin does the loop so that nothing but kernel
# memory is charged to the cgroups (see guest-scripts/kstack-pin.c for why not a shell loop).
# Reports the growth of cgroup.stat's nr_dying_descendants; the harness counts /proc/cgroups.
set -eu
U=/sys/fs/cgroup/unified
grep -qw memory $U/cgroup.controllers || {
	echo "memory controller not on the v2 hierarchy at $U (boot with cgroup_no_v1=memory)" >&2
	exit 1
}
echo +memory > $U/cgroup.subtree_control
dying() { awk '$1 == "nr_dying_descendants" { print $2 }' $U/cgroup.stat; }
before=$(dying)
./kstack-pin $U "$ITERATIONS"
# removed cgroups go a moment after their last reference (RCU, work items): wait until the
# count stops moving (2 s) or 10 s have passed
last=-1; same=0
for ((i = 0; i < 40 && same < 8; i++)); do
	now=$(dying)
	if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
	sleep 0.25
done
echo "nr_dying_descendants $before -> $now"
echo "kharness-metric nr_dying $((now - before))"
