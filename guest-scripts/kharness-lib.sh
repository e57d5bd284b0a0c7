# Shell functions the scenario scripts share: kharness puts this file next to every script in
# the guest (`. ./kharness-lib.sh`). Paths are cgroup v1's /sys/fs/cgroup/memory and v2's
# /sys/fs/cgroup/unified, as the guest's /init mounts them.
M=/sys/fs/cgroup/memory
U=/sys/fs/cgroup/unified

# memory cgroups the kernel counts, dying ones included (/proc/cgroups' num_cgroups)
ncg() { awk '$1 == "memory" { print $3 }' /proc/cgroups; }
# a v1 cgroup's kmem counter, in bytes
kmem() { cat "$1/memory.kmem.usage_in_bytes"; }
# v2: removed cgroups not yet freed below the root
nr_dying() { awk '$1 == "nr_dying_descendants" { print $2 }' $U/cgroup.stat; }

# the value a command prints once it stops moving (RCU-freed objects, workers): 2 s
# unchanged, at most 10 s
settled() {
	local last=-1 now same=0 i
	for ((i = 0; i < 40 && same < 8; i++)); do
		now=$("$@")
		if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
		sleep 0.25
	done
	echo "$now"
}

# v1: charges move with a task that changes cgroup. 7.x refuses any value but 0 (charge
# moving was deprecated in 6.x): the step is kept and its refusal said
move_charges() {
	echo 1 > $M/memory.move_charge_at_immigrate 2> /dev/null ||
		echo "kharness-note memory.move_charge_at_immigrate = 1 refused by this kernel: charges stay where they were made"
}

# v2: the memory controller on the unified hierarchy, enabled for the root's children
need_v2_memory() {
	grep -qw memory $U/cgroup.controllers || {
		echo "memory controller not on the v2 hierarchy at $U (boot with cgroup_no_v1=memory)" >&2
		exit 1
	}
	echo +memory > $U/cgroup.subtree_control
}

# HIER=v2: the v2 hierarchy with the memory controller on, else v1 (charges move with a task
# where the kernel allows it); R: that hierarchy's root
memcg_hier() {
	if [ "${HIER:-v1}" = v2 ]; then need_v2_memory; R=$U; else move_charges; R=$M; fi
}

# a memory cgroup DIR whose children are charged through it (after memcg_hier): v2, memory in
# its subtree_control; v1, use_hierarchy (5.x's default is 0)
mkparent() {
	mkdir "$1"
	if [ "$R" = "$U" ]; then echo +memory > "$1/cgroup.subtree_control"; else echo 1 > "$1/memory.use_hierarchy"; fi
}

# wait until helper PID has written READY to LOG (SECONDS, default 10, at most); else its log
# and an error
wait_ready() {
	local log=$1 pid=$2 what=$3 seconds=${4:-10} i
	for ((i = 0; i < seconds * 10; i++)); do
		grep -q READY "$log" && return 0
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	grep -q READY "$log" || { cat "$log" >&2; echo "$what did not get ready" >&2; exit 1; }
}

# no task left in cgroup DIR (their kernel stacks would be charged there)
no_tasks() {
	local left
	left=$(wc -l < "$1/cgroup.procs")
	[ "$left" = 0 ] || { echo "$left tasks still in $1" >&2; exit 1; }
}
