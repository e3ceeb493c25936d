#!/usr/bin/env bash
# bench/milter.sh -- SMTP ingest with rspamd as the content filter, in one run:
#
#   (a) spoold   with "milter rspamd inet:..." (bench/ingest.sh's spoold)
#   (b) Postfix  a private instance with smtpd_milters = the same rspamd
#                (bench/ingest.sh's Postfix, PF_MODE=hold)
#   (c) rspamd alone: rspamc scanning the same messages with the same
#                parallelism (the ceiling: no SMTP, no storage)
#
# One private rspamd (tests/rspamd-private.sh: offline, no Redis) serves all
# three: a rspamd_proxy worker in milter mode for (a) and (b), a normal
# worker for rspamc, RSPAMD_WORKERS processes each.  The messages are what
# smtp-source sends (MSG_SIZE bytes, one recipient), captured once through
# smtp-sink for rspamc.  A report, never a pass/fail.
#
# Usage: bench/milter.sh                 (MESSAGES=3000 SESSIONS="10 100")
# Environment: MESSAGES, SESSIONS, MSG_SIZE (5120), RSPAMD_WORKERS (2), and
# what bench/ingest.sh takes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BENCH_NAME=milter
MESSAGES=${MESSAGES:-3000}
SESSIONS=${SESSIONS:-"10 100"}
MSG_SIZE=${MSG_SIZE:-5120}
RSPAMD_WORKERS=${RSPAMD_WORKERS:-2}
command -v rspamd >/dev/null && command -v rspamc >/dev/null || die "rspamd is not installed"
need_postfix_tools

T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/milter-bench.XXXXXX")
RPID='' SINK_PID=''
trap '[[ -n $RPID ]] && stop_pid "$RPID" rspamd; [[ -n $SINK_PID ]] && stop_pid "$SINK_PID" smtp-sink; [[ -z ${KEEP_TMP:-} ]] && rm -rf "$T"' EXIT

. tests/rspamd-private.sh
MP=$(free_port)
HP=$(free_port)
rspamd_private_config "$T/rspamd" "$MP" "$HP" "$RSPAMD_WORKERS"
rspamd_private_run "$T/rspamd" >"$T/rspamd.out" 2>&1 &
RPID=$!
wait_port "$MP" 60 "$RPID" && wait_port "$HP" 60 "$RPID" ||
	die "rspamd did not start: $(grep -v 'duplicate symbol' "$T/rspamd.out" | tail -5)"

# the message smtp-source sends, as a file, MESSAGES times for rspamc
SP=$(free_port)
mkdir -p "$T/one" "$T/msgs"
chmod 755 "$T"; chmod 777 "$T/one"
smtp-sink -u nobody -d "$T/one/%M." "127.0.0.1:$SP" 10 >/dev/null 2>&1 &
SINK_PID=$!
wait_port "$SP" 10 "$SINK_PID" || die "smtp-sink did not start"
smtp-source -m 1 -l "$MSG_SIZE" -M bench.test -f sender@client.test -t user@bench.test \
    "127.0.0.1:$SP" >/dev/null 2>&1
sleep 0.5
stop_pid "$SINK_PID" smtp-sink
SINK_PID=''
one=$(find "$T/one" -type f | head -n 1)
[[ -n $one ]] || die "smtp-sink dumped no message"
for i in $(seq "$MESSAGES"); do cp "$one" "$T/msgs/$i.eml"; done

declare -A CEIL
for s in $SESSIONS; do
	t0=$(now)
	rspamc -h "127.0.0.1:$HP" -n "$s" -t 60 "$T/msgs" >"$T/rspamc-$s.out" 2>&1 || true
	t1=$(now)
	scanned=$(grep -c '^Action:' "$T/rspamc-$s.out" || true)
	CEIL[$s]=$(awk -v m="$scanned" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", m/(b-a)}')
	log "== rspamc, $s parallel: $scanned scanned, ${CEIL[$s]} msg/s ($(grep '^Action:' "$T/rspamc-$s.out" | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"
done

SPOOLD_CONF_EXTRA="milter rspamd inet:127.0.0.1:$MP
milter-timeout eom 120s" \
PF_MAIN_EXTRA="smtpd_milters = inet:127.0.0.1:$MP
milter_default_action = tempfail
milter_protocol = 6" \
RECEIVERS="spoold postfix" SESSIONS="$SESSIONS" MESSAGES="$MESSAGES" MSG_SIZE="$MSG_SIZE" \
    bash bench/ingest.sh >"$T/ingest.md"
cat "$T/ingest.md"
echo
echo "## rspamd alone (rspamc -n SESSIONS on the same message, $RSPAMD_WORKERS normal workers)"
echo
echo "| parallel | rspamc msg/s |"
echo "|---|---|"
for s in $SESSIONS; do echo "| $s | ${CEIL[$s]} |"; done
