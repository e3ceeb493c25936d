#!/usr/bin/env bash
# bench/crash.sh -- the crash harness's long form: KILLS (default 50) SIGKILLs
# of spoold at random moments under load from CLIENTS (default 4) senders,
# during ETRN delivery runs into a sink and mass expiry with DSNs, every
# fifth after a SIGSTOP; then every acknowledged message must be at the sink
# intact or bounced with a DSN.  See tests/crash_harness.py; the short form
# (10 kills) runs in the test suite as tests/t22-crash.sh.
#
# Usage: bench/crash.sh            (after make; as any user)
#        KILLS=100 SEED=7 WINDOW=1 bench/crash.sh
# WINDOW is spoold's delivery-window (default 16, spoold's default too).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x spoold/spoold ] || { echo "crash.sh: build first (make)" >&2; exit 1; }
command -v mdb_stat >/dev/null || { echo "crash.sh: mdb_stat missing (apt-get install lmdb-utils)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/spoold-crash.XXXXXX")
set +e
python3 tests/crash_harness.py --spoold spoold/spoold --spoolctl spoold/spoolctl --dir "$dir" \
	--kills "${KILLS:-50}" --clients "${CLIENTS:-4}" --window "${WINDOW:-16}" ${SEED:+--seed "$SEED"} \
	--mdb-stat "$(command -v mdb_stat)" | tee "$dir/harness.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 0 ]; then rm -rf "$dir"; else echo "crash.sh: kept $dir"; fi
exit "$rc"
