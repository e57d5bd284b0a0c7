#!/bin/bash
# A kselftest collection of the tree under test, run by the tree's own runner: the harness
# installed it with `make -C tools/testing/selftests TARGETS=... install` (kselftest.tar, next
# to this script) and passes the collection (KSELFTEST) and, when it runs some of its programs
# only, those (SELFTESTS). Each run's KTAP output comes between "kharness-kselftest run N" and
# "kharness-kselftest run N exit RC"; the per-test timeouts are the collection's `settings`.
set -u
cd "$KHARNESS_DIR" || exit 1
rm -rf kselftest && tar -xf kselftest.tar || exit 1
cd kselftest || exit 1
args=()
if [ -n "${KSELFTEST_TIMEOUT:-}" ]; then args+=(-o "$KSELFTEST_TIMEOUT"); fi   # configs/tests.yaml test_timeout
if [ -n "${SELFTESTS:-}" ]; then
	for t in $SELFTESTS; do args+=(-t "$KSELFTEST:$t"); done
else
	args+=(-c "$KSELFTEST")
fi
for ((run = 1; run <= ITERATIONS; run++)); do
	echo "kharness-kselftest run $run"
	# through a pipe: the runner appends to /dev/stdout, which on a file would reopen it at
	# its start and let the next writes overwrite the tests' output
	./run_kselftest.sh "${args[@]}" 2>&1 | cat
	echo "kharness-kselftest run $run exit ${PIPESTATUS[0]}"
done
exit 0
