# A setup (kselftest.sh sources it) that runs a collection in a child memory cgroup on the v2
# hierarchy: what its tests allocate is charged there, not to the root, which charges nothing.
# fsnotify-selftests: a fanotify group made there charges its events to it through
# set_active_memcg() with the group's memcg, the path the fsnotify series changes. What the
# tests were charged, as the kernel counted it, is in a note.
. ./kharness-lib.sh
need_v2_memory
C=$U/kharness-kselftest
mkdir $C || exit 1
# joined once the collection is unpacked: its files on tmpfs are charged to the root, not here
kselftest_prepare() {
	echo $$ > $C/cgroup.procs
}
kselftest_done() {
	echo "kharness-note memory.peak of the tests' cgroup: $(cat $C/memory.peak 2> /dev/null || echo unknown) bytes"
	echo $$ > $U/cgroup.procs && rmdir $C
}
