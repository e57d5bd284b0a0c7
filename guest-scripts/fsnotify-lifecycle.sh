#!/bin/bash
# What an fsnotify group leaves behind once everything is gone: ITERATIONS times (inotify and
# fanotify in turn) a group is made in a fresh cgroup X under P, gets an event while X is
# online, X is removed (and given up to 2 s to be freed), the group gets another event and its
# fd is closed. Then P is removed. Counted once settled, against before: memory cgroups
# (cgroups_left: a css reference left behind), live slab objects allocated by memcg creation
# (memcg_objects_left: obj_cgroup_alloc(), percpu_ref_init() and mem_cgroup_css_online() call
# sites in /sys/kernel/debug/slab/*/alloc_traces, which slub_debug=U keeps: an obj_cgroup that
# is never freed shows there and nowhere else, as it does not keep its memcg and stays on its
# ancestor's list, where no leak scanner looks) and live percpu allocations
# (/sys/kernel/debug/percpu_stats' nr_cur_alloc; percpu_left).
set -eu
. ./kharness-lib.sh
D=/sys/kernel/debug
[ -e $D/percpu_stats ] || mount -t debugfs none $D
[ -r $D/percpu_stats ] || { echo "no $D/percpu_stats: the kernel needs CONFIG_PERCPU_STATS" >&2; exit 1; }
percpu() { awk '$1 == "nr_cur_alloc" { print $3 }' $D/percpu_stats; }
memcg_objects() {
	# objects freed into a CPU's sheaf still count as in use: give them back first
	for f in /sys/kernel/slab/*/shrink; do echo 1 > $f 2> /dev/null || :; done
	cat $D/slab/*/alloc_traces 2> /dev/null |
		awk '$2 ~ /^(obj_cgroup_alloc|percpu_ref_init|mem_cgroup_css_online)\+/ { n += $1 } END { print n + 0 }'
}
ls $D/slab/*/alloc_traces > /dev/null 2>&1 || { echo "no $D/slab/*/alloc_traces: boot with slub_debug=U" >&2; exit 1; }
memcg_hier
P=$R/fsnotify-lifecycle
W=/tmp/fsnotify-lifecycle-watch
LOG=fsnotify-lifecycle.log
rm -rf $W
mkdir -p $W
before_cg=$(settled ncg)
before_pc=$(settled percpu)
[ -n "$before_pc" ] || { echo "percpu_stats has no nr_cur_alloc" >&2; exit 1; }
before_mo=$(settled memcg_objects)
[ "$before_mo" -gt 0 ] || { echo "alloc_traces shows no object of memcg creation (no symbols?)" >&2; exit 1; }
mkparent $P
for ((i = 0; i < ITERATIONS; i++)); do
	api=inotify
	((i % 2)) && api=fanotify
	X=$P/x$i
	mkdir $X
	n=$(ncg)
	: > $LOG
	./fsnotify-group pin $api $X $W > $LOG 2>&1 < /dev/null &
	pid=$!
	wait_ready $LOG $pid "fsnotify-group $api"
	no_tasks $X
	touch $W/a-$i
	rmdir $X
	# X freed, unless something holds it (the base kernel's group does)
	for ((j = 0; j < 8; j++)); do [ "$(ncg)" -lt "$n" ] && break; sleep 0.25; done
	touch $W/b-$i
	kill -USR1 $pid
	wait $pid || { cat $LOG >&2; echo "fsnotify-group $api failed" >&2; exit 1; }
	grep -q "^EVENTS 2$" $LOG || { cat $LOG >&2; echo "the $api group did not see its 2 events" >&2; exit 1; }
done
rmdir $P
after_cg=$(settled ncg)
after_pc=$(settled percpu)
after_mo=$(settled memcg_objects)
echo "memory num_cgroups: $before_cg -> $after_cg after $ITERATIONS groups and P removed"
echo "percpu nr_cur_alloc: $before_pc -> $after_pc"
echo "slab objects of memcg creation: $before_mo -> $after_mo"
grep -H -E "^ *[0-9]+ [a-z_0-9]*(cgroup|percpu_ref)" $D/slab/*/alloc_traces >&2 || :
echo "kharness-metric cgroups_left $((after_cg - before_cg))"
echo "kharness-metric percpu_left $((after_pc - before_pc))"
echo "kharness-metric memcg_objects_left $((after_mo - before_mo))"
