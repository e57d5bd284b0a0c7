#!/bin/bash
# A kselftest collection of the tree under test, run by the tree's own runner: the harness
# installed it with `make -C tools/testing/selftests TARGETS=... install` (kselftest.tar, next
# to this script) and passes the collection (KSELFTEST) and, when it runs some of its programs
# only, those (SELFTESTS). Each run's KTAP output comes between "kharness-kselftest run N" and
# "kharness-kselftest run N exit RC"; the per-test timeouts are the collection's `settings`,
# or KSELFTEST_TIMEOUT (configs/tests.yaml test_timeout) for every test of it.
#
# A collection's setup (KSELFTEST_SETUP, configs/tests.yaml `setup`) is sourced first, here. It
# makes the machine what the tests assume and may set: `root`, a directory the runner is
# chrooted into (the collection is unpacked at the same path below it); the functions
# `kselftest_prepare` (run in the unpacked install, before the runs) and `kselftest_done`
# (after them).
set -u
cd "$KHARNESS_DIR" || exit 1
root=
if [ -n "${KSELFTEST_SETUP:-}" ]; then
	. "./$KSELFTEST_SETUP" || exit 1
fi
here=$KHARNESS_DIR/run/kselftest   # the install, as the runner sees it (under $root)
mkdir -p "$root${here%/*}" && cd "$root${here%/*}" || exit 1
rm -rf kselftest && tar -xf "$KHARNESS_DIR/kselftest.tar" || exit 1
cd kselftest || exit 1
if [ -n "${KSELFTEST_TIMEOUT:-}" ]; then
	# the runner reads each collection's settings file (run_kselftest.sh -o is newer than 5.10)
	sed -i '/^timeout=/d' "$KSELFTEST/settings" 2> /dev/null
	echo "timeout=$KSELFTEST_TIMEOUT" >> "$KSELFTEST/settings" || exit 1
fi
if declare -F kselftest_prepare > /dev/null; then
	kselftest_prepare || exit 1
fi
args=()
if [ -n "${SELFTESTS:-}" ]; then
	for t in $SELFTESTS; do args+=(-t "$KSELFTEST:$t"); done
else
	args+=(-c "$KSELFTEST")
fi
for ((run = 1; run <= ITERATIONS; run++)); do
	echo "kharness-kselftest run $run"
	# through a pipe: the runner appends to /dev/stdout, which on a file would reopen it at
	# its start and let the next writes overwrite the tests' output
	if [ -n "$root" ]; then
		chroot "$root" /bin/bash -c 'cd "$1" && shift && exec ./run_kselftest.sh "$@"' - "$here" "${args[@]}" 2>&1 | cat
	else
		./run_kselftest.sh "${args[@]}" 2>&1 | cat
	fi
	echo "kharness-kselftest run $run exit ${PIPESTATUS[0]}"
done
if declare -F kselftest_done > /dev/null; then
	kselftest_done || exit 1
fi
exit 0
