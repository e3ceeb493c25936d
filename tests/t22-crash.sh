#!/bin/sh
# t22-crash.sh - the crash harness's short form: 10 SIGKILLs at random moments
# under load from 4 clients, during delivery runs into a sink and mass
# expiry with DSNs (two of them after a SIGSTOP), then every acknowledged
# message must have been delivered intact or bounced with a DSN.  With
# delivery-window 1 a kill may repeat at most one delivery per run in flight,
# and the harness holds spoold to that.  The long form (50 kills) is
# bench/crash.sh.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need mdb_stat

python3 "$top_srcdir/tests/crash_harness.py" --spoold "$SPOOLD" --spoolctl "$SPOOLCTL" \
	--dir "$T" --kills "${CRASH_KILLS:-10}" --window 1 --mdb-stat "$(command -v mdb_stat)" \
	>"$T/harness.log" 2>&1 || fail "crash harness: $(grep -E 'FAIL|crash: [a-z]+ [0-9]+ |passed' "$T/harness.log" | tail -n 20)"
check_sanitizers
grep -E '^crash: (seed|load stopped|ok:|duplicate|SIGSTOP|of the|[0-9]+ messages at the sink)' "$T/harness.log" | sed 's/^crash: //' | while IFS= read -r l; do say "$l"; done
say "crash harness checks: $(tail -n 1 "$T/harness.log")"
