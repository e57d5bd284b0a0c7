#!/bin/bash
# /proc/kpagecgroup, read again and again while memory cgroups come and go (cgroup v1): what
# page_cgroup_ino() makes of kmem pages, whose memcg the series reaches through an obj_cgroup.
# ITERATIONS sleeps are started in child C of P (use_hierarchy) and moved out: their kernel
# stacks stay charged to C. kmem-pages counts the page frames /proc/kpagecgroup gives C's
# inode; then, with a loop creating and removing cgroups (a sleep forked in each) running
# beside it, /proc/kpagecgroup is read READS times (fewer, at least 2, on a kernel too slow
# for that in READ_SECS); then C is removed with the sleeps alive and its frames must show
# under P (base: C is offline and the walk goes up; the series: the pages are reparented).
# A kernel that misreads a kmem page's memcg shows here (the debug profile's KASAN reports it
# as an ERROR).
set -eu
. ./kharness-lib.sh
P=$M/kpagecgroup
C=$P/child
K=$ITERATIONS
READS=${READS:-20}
move_charges
mkdir $P
echo 1 > $P/memory.use_hierarchy
mkdir $C
echo $$ > $C/cgroup.procs
pids=()
for ((i = 0; i < K; i++)); do
	sleep 3600 < /dev/null > /dev/null 2>&1 &
	pids+=($!)
done
echo $$ > $M/cgroup.procs
for p in "${pids[@]}"; do echo "$p" > $M/cgroup.procs; done
no_tasks $C
pages() { ./kmem-pages kpagecgroup "$@" | awk '{ printf "%s ", $2 } END { print "" }'; }
read -r c0 p0 <<< "$(pages $C $P)"
# cgroups created and removed beside the reads, a sleep forked in each (killed at the end)
churn() {
	local i
	for ((i = 0; ; i++)); do
		mkdir $P/churn-$i
		echo $BASHPID > $P/churn-$i/cgroup.procs
		sleep 3600 < /dev/null > /dev/null 2>&1 &
		echo $BASHPID > $P/cgroup.procs
		echo $! > $P/cgroup.procs
		echo $! >> churn.pids
		rmdir $P/churn-$i
	done
}
: > churn.pids
churn &
churner=$!
# at most READS reads, and no more than two after READ_SECS: a read of every frame takes ~1 s
# on a default kernel under TCG and up to a minute on a KASAN one (the debug profile)
reads=0
deadline=$((SECONDS + ${READ_SECS:-120}))
while ((reads < READS && (reads < 2 || SECONDS < deadline))); do
	./kmem-pages kpagecgroup $C > /dev/null
	reads=$((reads + 1))
done
kill $churner; wait $churner 2> /dev/null || true
churned=$(wc -l < churn.pids)
for d in $P/churn-*; do   # the one the churner was killed in, if any
	[ -d "$d" ] || continue
	for t in $(cat $d/cgroup.procs); do echo $t > $M/cgroup.procs; echo $t >> churn.pids; done
	rmdir $d
done
read -r c1 p1 <<< "$(pages $C $P)"
rmdir $C
# C goes offline after rmdir returns (an RCU grace period, then a work item): until then
# page_cgroup_ino() still names C, after it walks up to P (base) or finds P (the series). On a
# busy TCG host a read right after rmdir saw a third of them moved: read again while fewer than
# 90 % have, a second apart, 5 reads at most (a kernel that never moves them fails all 5).
for ((offline_reads = 1; ; offline_reads++)); do
	read -r p2 <<< "$(pages $P)"
	(( (p2 - p1) * 100 >= 90 * c1 || offline_reads == 5 )) && break
	sleep 1
done
kill "${pids[@]}" $(cat churn.pids) 2> /dev/null || true
wait "${pids[@]}" 2> /dev/null || true
sleep 1
rmdir $P
stack=$(( c0 / K ))
echo "C: $c0 page frames with its $K sleeps' stacks (P: $p0); $reads reads while $churned cgroups came and went; then C $c1, P $p1; C removed: P $p2 (read $offline_reads times)"
((offline_reads == 1)) || echo "kharness-note C's frames reached P at read $offline_reads after rmdir (C's offline came later than the first read)"
echo "kharness-metric child_pages_per_task $stack"
echo "kharness-metric reads $reads"
echo "kharness-metric churned $churned"
echo "kharness-metric moved_pct $(( (p2 - p1) * 100 / (c1 > 0 ? c1 : 1) ))"
