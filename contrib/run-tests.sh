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
# suite - build and run make check; adds its counts to the totals
suite() {
	make -j"$(nproc)" >/dev/null
	make -j2 check >check.out 2>&1 || { cat check.out test-suite.log; return 1; }
	grep -E '^(PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):|^# ' check.out
	passed=$((passed + $(sed -n 's/^# PASS: *//p' check.out)))
	failed=$((failed + $(sed -n 's/^# FAIL: *//p' check.out) + $(sed -n 's/^# ERROR: *//p' check.out)))
	skipped=$((skipped + $(sed -n 's/^# SKIP: *//p' check.out)))
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
for f in smtp_cmd smtp_data conf dsn ec_conf; do
	corpus=$(mktemp -d)
	if ! tests/fuzz/fuzz_$f -max_total_time="${FUZZ_SECONDS:-20}" "$corpus" tests/fuzz/seeds-$f \
	    >"tests/fuzz/fuzz_$f.log" 2>&1; then
		tail -40 "tests/fuzz/fuzz_$f.log"
		echo "fuzz_$f: crash (reproducer in the log above)"
		exit 1
	fi
	echo "fuzz_$f: $(grep -o 'Done [0-9]* runs' "tests/fuzz/fuzz_$f.log" || echo ran), no crash"
	rm -rf "$corpus"
done

./configure -q
make clean >/dev/null
make -j"$(nproc)" >/dev/null
echo "run-tests: all passed (two builds, the sanitizer one included)"
echo "$passed passed, $failed failed, $skipped skipped"
