#!/bin/sh
# run-tests.sh - install what the tests need, build with -Werror and run the
# whole suite (unit + integration), run it again under ASan+UBSan, and give
# each libFuzzer target a short run.  Exit status 0 only if all of it passed.
# The tree is left built without sanitizers, as contrib/quickstart.sh expects.
set -eu
cd "$(dirname "$0")/.."

contrib/deps.sh test
autoreconf -fi >/dev/null 2>&1

passed=0 failed=0 skipped=0
# totals - the closing line that CI reads
totals() {
	echo "$passed passed, $failed failed, $skipped skipped"
}
# count WHAT - automake's "# WHAT: N" summary of the last make check, or 0
count() {
	sed -n "s/^# $1: *//p" check.out | grep -E '^[0-9]+$' || echo 0
}
# suite - build and run make check; adds its counts to the totals, and on a
# failure prints the failed tests' logs and the totals so far, and exits 1
suite() {
	make -j"$(nproc)" >/dev/null || { echo "run-tests: the build failed"; failed=$((failed + 1)); totals; exit 1; }
	rc=0
	make -j2 check >check.out 2>&1 || rc=$?
	grep -E '^(PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):|^# ' check.out || true
	passed=$((passed + $(count PASS)))
	failed=$((failed + $(count FAIL) + $(count ERROR)))
	skipped=$((skipped + $(count SKIP)))
	if [ $rc -ne 0 ]; then
		cat check.out test-suite.log
		[ "$failed" -gt 0 ] || failed=1
		totals
		exit 1
	fi
	rm -f check.out
}

echo "== build with -Werror, run the suite"
./configure -q --enable-werror
make clean >/dev/null
suite

echo "== the suite again under ASan + UBSan"
./configure -q --enable-werror --enable-sanitizers
make clean >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 suite

echo "== fuzz targets, ${FUZZ_SECONDS:-20}s each"
make fuzz >/dev/null
for f in smtp_cmd smtp_data conf dsn ec_conf milter http proxy xclient pgsql_rows; do
	corpus=$(mktemp -d)
	if ! tests/fuzz/fuzz_$f -max_total_time="${FUZZ_SECONDS:-20}" "$corpus" tests/fuzz/seeds-$f \
	    >"tests/fuzz/fuzz_$f.log" 2>&1; then
		tail -40 "tests/fuzz/fuzz_$f.log"
		echo "fuzz_$f: crash (reproducer in the log above)"
		failed=$((failed + 1))
		totals
		exit 1
	fi
	echo "fuzz_$f: $(grep -o 'Done [0-9]* runs' "tests/fuzz/fuzz_$f.log" || echo ran), no crash"
	rm -rf "$corpus"
done

./configure -q
make clean >/dev/null
make -j"$(nproc)" >/dev/null
echo "run-tests: all passed (two builds, the sanitizer one included)"
totals
