#!/usr/bin/env bash
# bench/ingest.sh -- SMTP ingest throughput of three receivers, on this machine,
# in one run:
#
#   (a) spoold      (spoold/spoold, or $SPOOLD), domain bench.test in "mode hold"
#   (b) Postfix     a private instance (own config/queue/data dirs in a temp dir),
#                   bench.test relayed but held, stock durability (fsync per queue file)
#   (c) smtp-sink   Postfix's test server: no storage at all, the protocol ceiling
#
# The load is Postfix's smtp-source: MESSAGES messages of 5 KiB, one recipient
# each, at 1, 10 and 100 parallel sessions, each session sending many messages
# over one connection (-d).  Every run starts with an empty spool, and for spoold
# and Postfix the number of messages actually stored is counted after the run
# and printed next to the rate.
#
# Usage:
#   bench/ingest.sh                      # MESSAGES=20000, SESSIONS="1 10 100"
#   MESSAGES=2000 bench/ingest.sh        # quick run
#   SESSIONS="10 100" RECEIVERS="spoold sink" bench/ingest.sh
#
# Environment:
#   MESSAGES     messages per run (default 20000)
#   SESSIONS     parallel smtp-source sessions, one run each (default "1 10 100")
#   RECEIVERS    which receivers to run, in this order (default "spoold postfix sink")
#   MSG_SIZE     payload bytes per message, smtp-source -l (default 5120)
#   RUN_TIMEOUT  seconds one smtp-source run may take (default 600)
#   SPOOLD       spoold binary (default <repo>/spoold/spoold)
#   SPOOLCTL     spoolctl binary (default: spoolctl next to $SPOOLD)
#   PF_MODE      how Postfix holds mail: "hold" (default; smtpd HOLD action, the
#                message goes straight to the hold queue, qmgr never touches it)
#                or "defer" (defer_transports = smtp relay: qmgr moves each
#                message incoming -> active -> deferred, which costs Postfix more)
#   SPOOLD_CONF_EXTRA top-level lines added to spoold's configuration (e.g. a
#                milter, as bench/milter.sh does)
#   PF_MAIN_EXTRA lines appended to the private Postfix main.cf (for
#                experiments, e.g. PF_MAIN_EXTRA='in_flow_delay = 1s')
#   BENCH_TMPDIR parent of the temp dir (default /tmp; it must not be tmpfs if
#                you want fsync to mean something)
#   KEEP_TMP=1   keep the temp dir (configs, logs, spools) for inspection
#   STRICT=1     exit 3 if any run lost messages or failed (default: report only)
#
# Exit status: 0 whatever the timings and results are (unless STRICT=1);
# non-zero only on setup errors (no smtp-source, Postfix will not start, ...).
#
# Notes on the private Postfix instance:
#  * It is started with `postfix -c DIR start`.  As root, Postfix 3.7 accepts a
#    non-default config directory without it being listed in
#    alternate_config_directories / multi_instance_directories of the default
#    /etc/postfix/main.cf (that check is done only by the set-gid programs
#    postdrop and postqueue for non-root users), and it does not need
#    /etc/postfix/main.cf to exist.  So the script touches nothing in /etc.
#  * The postfix command prints its errors on stderr only when stderr is a tty,
#    otherwise only to syslog/maillog; the script runs it under script(1) so
#    that errors (e.g. from `postfix check`) are visible.
#  * maillog_file must match maillog_file_prefixes (default /var, /dev/stdout),
#    so maillog_file_prefixes is set to the temp dir.
#  * master.cf is minimal, with chroot "n" everywhere, and uses postlogd for
#    maillog_file (no syslog needed).
#  * in_flow_delay = 0: no arrival-rate throttling by flow-control tokens from
#    qmgr (measured: no visible effect in PF_MODE=hold; set so that it cannot
#    be the reason Postfix is slow).
#  * smtpd_peername_lookup = no: no reverse DNS for 127.0.0.1 (no DNS here);
#    smtpd_client_connection_count_limit = 0, default_process_limit = 200.
#  * Durability is Postfix's default: cleanup fsyncs every queue file before
#    smtpd answers 250 to the final dot.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-"1 10 100"}
RECEIVERS=${RECEIVERS:-"spoold postfix sink"}
MSG_SIZE=${MSG_SIZE:-5120}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
SPOOLD=${SPOOLD:-$REPO/spoold/spoold}
SPOOLCTL=${SPOOLCTL:-$(dirname "$SPOOLD")/spoolctl}
PF_MODE=${PF_MODE:-hold}
PF_MAIN_EXTRA=${PF_MAIN_EXTRA:-}
SPOOLD_CONF_EXTRA=${SPOOLD_CONF_EXTRA:-}
BENCH_TMPDIR=${BENCH_TMPDIR:-/tmp}
KEEP_TMP=${KEEP_TMP:-0}
STRICT=${STRICT:-0}

FROM=sender@example.org
RCPT=user@bench.test
HELO=client.example.org

BENCH_NAME=ingest.sh
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

is_uint "$MESSAGES" && (( MESSAGES > 0 )) || die "MESSAGES must be a positive integer, not '$MESSAGES'"
is_uint "$MSG_SIZE" || die "MSG_SIZE must be an integer, not '$MSG_SIZE'"
is_uint "$RUN_TIMEOUT" || die "RUN_TIMEOUT must be an integer, not '$RUN_TIMEOUT'"
for s in $SESSIONS; do
    is_uint "$s" && (( s > 0 )) || die "SESSIONS must be positive integers, not '$s'"
done
[[ -n ${SESSIONS// /} ]] || die "SESSIONS is empty"
for r in $RECEIVERS; do
    case $r in spoold|postfix|sink) ;; *) die "unknown receiver '$r' in RECEIVERS (spoold postfix sink)";; esac
done
case $PF_MODE in hold|defer) ;; *) die "PF_MODE must be hold or defer, not '$PF_MODE'";; esac
[[ $(id -u) -eq 0 ]] || die "must run as root (private Postfix instance, smtp-sink -u nobody)"

# ---------------------------------------------------------------- tools

need_postfix_tools

# ---------------------------------------------------------------- temp dir, cleanup

T=$(mktemp -d "$BENCH_TMPDIR/spoold-ingest.XXXXXX")
chmod 755 "$T"              # the postfix user must reach the queue below it
PFDIR=$T/postfix            # config_directory
PFQ=$T/postfix-queue        # queue_directory
PFDATA=$T/postfix-data      # data_directory
SD=$T/spoold
SPOOLD_CONF=$SD/spoold.conf

SPOOLD_PID=
SINK_PID=
LOAD_PID=
PF_RUNNING=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $LOAD_PID ]] && stop_pid "$LOAD_PID" smtp-source
    [[ -n $SPOOLD_PID ]] && stop_pid "$SPOOLD_PID" spoold
    [[ -n $SINK_PID ]] && stop_pid "$SINK_PID" smtp-sink
    pf_stop
    if [[ $KEEP_TMP == 1 ]]; then
        log "temp dir kept: $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- load generator

# run_load NAME PORT SESSIONS: runs smtp-source, sets LOAD_RC, LOAD_SECS, LOAD_RATE
run_load() {
    local name=$1 port=$2 sess=$3 t0 t1 out=$T/load-$1-$3.out
    t0=$(now)
    set +e
    # in the background + wait, so that a signal to this script is acted on
    # at once (the trap kills it) rather than after smtp-source ends
    timeout "$RUN_TIMEOUT" smtp-source -d -s "$sess" -m "$MESSAGES" -l "$MSG_SIZE" \
        -M "$HELO" -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID"
    LOAD_RC=$?
    LOAD_PID=
    set -e
    t1=$(now)
    LOAD_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
    LOAD_RATE=$(awk -v m="$MESSAGES" -v s="$LOAD_SECS" 'BEGIN{printf "%.0f", (s>0)?m/s:0}')
    if [[ $LOAD_RC == 124 ]]; then
        log "  smtp-source TIMED OUT after ${RUN_TIMEOUT}s"
    elif [[ $LOAD_RC != 0 ]]; then
        log "  smtp-source exited $LOAD_RC"
    fi
    if [[ -s $out ]]; then
        log "  smtp-source output (last lines):"
        tail -n 5 "$out" | sed 's/^/    /' >&2
    fi
}

# cell RATE STORED: format a table cell, marking failures and lost messages
declare -A RATE CELL RSS
cell() {
    local rc=$1 rate=$2 stored=$3 c
    if [[ $rc == 124 ]]; then c="TIMEOUT"
    elif [[ $rc != 0 ]]; then c="FAILED (rc $rc)"
    else c=$rate
    fi
    if [[ -n $stored ]]; then
        if [[ $stored =~ ^[0-9]+$ ]] && (( stored == MESSAGES )); then
            c="$c ($stored stored)"
        elif [[ $rc != 0 && $stored =~ ^[0-9]+$ ]]; then
            c="$c ($stored/$MESSAGES stored)"
        elif [[ $stored =~ ^[0-9]+$ ]] && (( stored < MESSAGES )); then
            c="$c (**$stored/$MESSAGES stored, LOST $(( MESSAGES - stored ))**)"
        elif [[ $stored =~ ^[0-9]+$ ]]; then
            c="$c (**$stored/$MESSAGES stored, EXTRA $(( stored - MESSAGES ))**)"
        else
            c="$c (**stored: $stored**)"
        fi
    fi
    printf '%s' "$c"
}

PROBLEMS=()
note_problem() { PROBLEMS+=("$*"); log "  PROBLEM: $*"; }

check_stored() {  # check_stored NAME SESS RC STORED
    local name=$1 sess=$2 rc=$3 stored=$4
    [[ $rc == 0 ]] || note_problem "$name, $sess sessions: smtp-source rc=$rc"
    if [[ -n $stored ]] && ! { [[ $stored =~ ^[0-9]+$ ]] && (( stored == MESSAGES )); }; then
        note_problem "$name, $sess sessions: $stored stored of $MESSAGES sent"
    fi
}

# ---------------------------------------------------------------- (c) smtp-sink

run_sink() {
    local sess=$1 port
    port=$(free_port)
    # -u nobody: required as root.  -m 1000: allow >256 concurrent sessions.
    # No -c (counters), -d/-D (dump) or -v: nothing that slows it down.
    smtp-sink -u nobody -m 1000 "127.0.0.1:$port" 1000 >"$T/sink-$sess.log" 2>&1 &
    SINK_PID=$!
    wait_port "$port" 10 "$SINK_PID" || { cat "$T/sink-$sess.log" >&2; die "smtp-sink did not start"; }
    run_load sink "$port" "$sess"
    stop_pid "$SINK_PID" smtp-sink
    SINK_PID=
    RATE[sink,$sess]=$LOAD_RATE
    CELL[sink,$sess]=$(cell "$LOAD_RC" "$LOAD_RATE" "")
    check_stored smtp-sink "$sess" "$LOAD_RC" ""
    log "  smtp-sink  $sess sessions: $MESSAGES msgs in ${LOAD_SECS}s = $LOAD_RATE msg/s"
}

# ---------------------------------------------------------------- (b) Postfix

pf_write_config() {  # pf_write_config PORT
    local port=$1
    mkdir -p "$PFDIR"
    local hold_restr
    if [[ $PF_MODE == hold ]]; then
        hold_restr="check_recipient_access static:HOLD, permit_mynetworks, reject"
    else
        hold_restr="permit_mynetworks, reject"
    fi
    { pf_main_common bench/ingest.sh; cat <<EOF
# bench.test is a relay domain; nothing is ever delivered:
relay_domains = bench.test
defer_transports = smtp relay
default_transport = error:bench: no delivery
smtpd_client_restrictions = permit
smtpd_helo_restrictions = permit
smtpd_sender_restrictions = permit
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = $hold_restr
# capacity: 100 sessions must not be limited by Postfix limits
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
in_flow_delay = 0
smtpd_peername_lookup = no
biff = no
# no local delivery, no alias/NIS lookups in smtpd
alias_maps =
alias_database =
local_recipient_maps =
${PF_MAIN_EXTRA:+# from \$PF_MAIN_EXTRA:
$PF_MAIN_EXTRA}
EOF
    } >"$PFDIR/main.cf"
    pf_master_cf "$port" >"$PFDIR/master.cf"
}

pf_count() {  # messages in the private queue
    # In PF_MODE=defer qmgr is still moving files incoming -> active -> deferred
    # while we look: wait (up to 30 s) for incoming and active to drain, and
    # count unique queue IDs (file names) so that a file moved between two
    # directories during the scan is not counted twice.
    local i dirs=()
    for i in $(seq 1 300); do
        [[ -z $(find "$PFQ/incoming" "$PFQ/active" -type f 2>/dev/null | head -c 1) ]] && break
        sleep 0.1
    done
    for i in maildrop incoming active deferred hold; do
        [[ -d $PFQ/$i ]] && dirs+=("$PFQ/$i")
    done
    find "${dirs[@]}" -type f -printf '%f\n' | sort -u | wc -l
}

run_postfix() {
    local sess=$1 port stored warn
    port=$(free_port)
    pf_start "$port"
    # the readiness probe made one connection; it is not a message
    run_load postfix "$port" "$sess"
    stored=$(pf_count)
    warn=$(grep -cE 'warning|fatal|panic|reject' "$T/postfix.log" || true)
    if [[ $warn != 0 ]]; then
        log "  Postfix log has $warn warning/fatal/reject lines, e.g.:"
        awk '/warning|fatal|panic|reject/ && n++ < 5 {print "    " $0}' "$T/postfix.log" >&2
    fi
    pf_stop
    RATE[postfix,$sess]=$LOAD_RATE
    CELL[postfix,$sess]=$(cell "$LOAD_RC" "$LOAD_RATE" "$stored")
    check_stored Postfix "$sess" "$LOAD_RC" "$stored"
    log "  Postfix    $sess sessions: $MESSAGES msgs in ${LOAD_SECS}s = $LOAD_RATE msg/s, $stored in queue"
}

# ---------------------------------------------------------------- (a) spoold

SPOOLD_OK=0
SPOOLD_WHY=
SPOOLD_PEAK_KB=0

spoold_write_config() {
    mkdir -p "$SD/spool"
    cat >"$SPOOLD_CONF" <<EOF
hostname bench.test
listen smtp 127.0.0.1:0
datadir $SD/spool
max-spool-size 4G
max-connections 1000
max-connections-per-ip 1000
$SPOOLD_CONF_EXTRA
domain bench.test {
    mode hold
    recipients any
}
EOF
}

spoold_preflight() {
    local out rc
    if [[ ! -x $SPOOLD ]]; then
        SPOOLD_WHY="spoold is not built ($SPOOLD does not exist): skipped"
        log "$SPOOLD_WHY"
        return
    fi
    spoold_write_config
    set +e
    out=$("$SPOOLD" -c "$SPOOLD_CONF" -n 2>&1)
    rc=$?
    set -e
    if [[ $rc != 0 ]] || ! grep -q 'configuration OK' <<<"$out"; then
        SPOOLD_WHY="spoold -c CONF -n failed (rc $rc): $(head -c 300 <<<"$out" | tr '\n' ' ')"
        log "$SPOOLD_WHY"
        return
    fi
    if [[ ! -x $SPOOLCTL ]]; then
        log "warning: $SPOOLCTL not found: stored counts for spoold will be unknown"
    fi
    SPOOLD_OK=1
}

# spoold_count: messages stored for bench.test according to spoolctl list
spoold_count() {
    local out rc n
    [[ -x $SPOOLCTL ]] || { echo "unknown (no spoolctl)"; return; }
    set +e
    out=$("$SPOOLCTL" -c "$SPOOLD_CONF" list 2>&1)
    rc=$?
    set -e
    printf '%s\n' "$out" >"$T/spoolctl-list.last"
    n=$(awk '$1=="bench.test" {print $2; exit}' <<<"$out")
    if [[ $rc != 0 ]]; then
        log "  spoolctl list failed (rc $rc): $out"
        echo "unknown (spoolctl rc $rc)"
    elif [[ $n =~ ^[0-9]+$ ]]; then
        echo "$n"
    elif [[ -z $out || -z $n ]] && ! grep -q 'bench.test' <<<"$out"; then
        log "  spoolctl list shows no bench.test line: '$out'"
        echo 0
    else
        log "  cannot parse spoolctl list output: '$out'"
        echo "unparsable"
    fi
}

run_spoold() {
    local sess=$1 lf=$SD/listen i port='' hwm stored rss_split=''
    rm -rf "$SD/spool" "$lf"
    spoold_write_config
    "$SPOOLD" -c "$SPOOLD_CONF" -f --listen-file "$lf" >"$SD/spoold-$sess.log" 2>&1 &
    SPOOLD_PID=$!
    port=$(spoold_wait_listen "$lf" "$SPOOLD_PID") || port=
    if [[ -z $port ]]; then
        local st=running
        kill -0 "$SPOOLD_PID" 2>/dev/null || st="exited"
        log "  spoold did not write an smtp line to $lf within 10 s (process $st); its output:"
        sed 's/^/    /' "$SD/spoold-$sess.log" >&2 || true
        stop_pid "$SPOOLD_PID" spoold; SPOOLD_PID=
        CELL[spoold,$sess]="FAILED (no listen file)"
        note_problem "spoold, $sess sessions: did not start (see log above)"
        return
    fi
    run_load spoold "$port" "$sess"
    if kill -0 "$SPOOLD_PID" 2>/dev/null; then
        stored=$(spoold_count)
        hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SPOOLD_PID/status" 2>/dev/null || true)
        # VmHWM counts file-backed pages too (e.g. a memory-mapped spool);
        # show the current anon/file split to tell heap from mapped spool
        rss_split=$(awk '/^Rss(Anon|File|Shmem):/ {printf "%s%s %s kB", sep, $1, $2; sep=", "}' \
            "/proc/$SPOOLD_PID/status" 2>/dev/null || true)
    else
        wait "$SPOOLD_PID" 2>/dev/null && i=0 || i=$?
        log "  spoold DIED during the run (exit status $i); its output:"
        tail -n 20 "$SD/spoold-$sess.log" | sed 's/^/    /' >&2 || true
        note_problem "spoold, $sess sessions: spoold died during the run (status $i)"
        SPOOLD_PID=
        stored=$(spoold_count)
        hwm=
    fi
    local died=1
    if [[ -n $SPOOLD_PID ]]; then died=0; stop_pid "$SPOOLD_PID" spoold; fi
    SPOOLD_PID=
    if [[ $died == 0 && -s $SD/spoold-$sess.log ]]; then
        log "  spoold output (last lines):"
        tail -n 5 "$SD/spoold-$sess.log" | sed 's/^/    /' >&2
    fi
    RATE[spoold,$sess]=$LOAD_RATE
    RSS[$sess]=${hwm:+$hwm kB}
    [[ -n $hwm ]] && (( hwm > SPOOLD_PEAK_KB )) && SPOOLD_PEAK_KB=$hwm
    CELL[spoold,$sess]=$(cell "$LOAD_RC" "$LOAD_RATE" "$stored")
    check_stored spoold "$sess" "$LOAD_RC" "$stored"
    log "  spoold     $sess sessions: $MESSAGES msgs in ${LOAD_SECS}s = $LOAD_RATE msg/s, stored $stored, VmHWM ${hwm:-?} kB (at end: ${rss_split:-?})"
}

# ---------------------------------------------------------------- main

PF_VERSION=$(postconf -dh mail_version 2>/dev/null || echo '?')
log "ingest benchmark: MESSAGES=$MESSAGES MSG_SIZE=$MSG_SIZE SESSIONS='$SESSIONS' RECEIVERS='$RECEIVERS'"
log "temp dir $T; Postfix $PF_VERSION (PF_MODE=$PF_MODE); $(nproc) CPUs"

want() { [[ " $RECEIVERS " == *" $1 "* ]]; }
if want spoold; then spoold_preflight; else SPOOLD_WHY="not selected (RECEIVERS)"; fi

for r in $RECEIVERS; do
    for s in $SESSIONS; do
        case $r in
            spoold)  [[ $SPOOLD_OK == 1 ]] || continue
                     log "== spoold, $s sessions";    run_spoold "$s" ;;
            postfix) log "== Postfix, $s sessions";   run_postfix "$s" ;;
            sink)    log "== smtp-sink, $s sessions"; run_sink "$s" ;;
        esac
    done
done

ratio() {  # ratio A B -> "1.23x" or n/a
    local a=${1:-} b=${2:-}
    [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && (( b > 0 )) || { echo "n/a"; return; }
    awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2fx", a/b}'
}
pct() {
    local a=${1:-} b=${2:-}
    [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && (( b > 0 )) || { echo "n/a"; return; }
    awk -v a="$a" -v b="$b" 'BEGIN{printf "%.0f%%", 100*a/b}'
}
ok_rate() {  # the rate only counts if the run succeeded and stored everything
    local k=$1
    [[ ${CELL[$k]:-} =~ ^[0-9]+( \($MESSAGES stored\))?$ ]] && echo "${RATE[$k]}"
    return 0
}

spoold_col() { [[ $SPOOLD_OK == 1 ]] && echo "${CELL[spoold,$1]:-n/a}" || echo "skipped"; }
echo
echo "## SMTP ingest: $MESSAGES messages x $MSG_SIZE bytes, 1 recipient each (smtp-source -d), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| sessions | spoold msg/s | Postfix msg/s | smtp-sink msg/s | spoold/Postfix | spoold/smtp-sink | spoold VmHWM |"
echo "|---:|---|---|---|---:|---:|---:|"
for s in $SESSIONS; do
    sp=$(ok_rate "spoold,$s"); pfr=$(ok_rate "postfix,$s"); sk=$(ok_rate "sink,$s")
    rss="n/a"; [[ $SPOOLD_OK == 1 ]] && rss=${RSS[$s]:-unknown}
    pfc="${CELL[postfix,$s]:-n/a}"; want postfix || pfc="not run"
    skc="${CELL[sink,$s]:-n/a}"; want sink || skc="not run"
    echo "| $s | $(spoold_col "$s") | $pfc | $skc | $(ratio "$sp" "$pfr") | $(pct "$sp" "$sk") | $rss |"
done
echo
if [[ $SPOOLD_OK == 1 ]]; then
    if (( SPOOLD_PEAK_KB > 0 )); then
        echo "spoold peak RSS (max VmHWM over its runs, each run a fresh process): $SPOOLD_PEAK_KB kB ($(awk -v k="$SPOOLD_PEAK_KB" 'BEGIN{printf "%.1f", k/1024}') MiB)"
    else
        echo "spoold peak RSS: unknown (no run ended with spoold alive)"
    fi
else
    echo "spoold: $SPOOLD_WHY"
fi
echo
echo "Targets (informational, not enforced):"
for s in $SESSIONS; do
    (( s >= 10 )) || continue
    sp=$(ok_rate "spoold,$s"); pfr=$(ok_rate "postfix,$s"); sk=$(ok_rate "sink,$s")
    if [[ -n $sp && -n $pfr ]]; then
        v=$(awk -v a="$sp" -v b="$pfr" 'BEGIN{print (a >= 3*b) ? "MET" : "NOT MET"}')
        echo "- $s sessions: spoold >= 3x Postfix: $(ratio "$sp" "$pfr") -> $v"
    else
        echo "- $s sessions: spoold >= 3x Postfix: n/a"
    fi
    if [[ -n $sp && -n $sk ]]; then
        v=$(awk -v a="$sp" -v b="$sk" 'BEGIN{print (a >= 0.6*b) ? "MET" : "NOT MET"}')
        echo "- $s sessions: spoold >= 60% of smtp-sink: $(pct "$sp" "$sk") -> $v"
    else
        echo "- $s sessions: spoold >= 60% of smtp-sink: n/a"
    fi
done
echo
echo "Postfix $PF_VERSION private instance, PF_MODE=$PF_MODE, fsync per queue file (default);"
echo "load: smtp-source -d -s SESSIONS -m $MESSAGES -l $MSG_SIZE -M $HELO -f $FROM -t $RCPT"
echo "Ratios use only runs that succeeded and stored all $MESSAGES messages."
echo "spoold VmHWM is the peak RSS of the spoold process of that run, read from /proc/PID/status"
echo "after the load and before stopping it; it includes file-backed pages (see RssFile in the log)."
if (( ${#PROBLEMS[@]} )); then
    echo
    echo "PROBLEMS:"
    for p in "${PROBLEMS[@]}"; do echo "- $p"; done
    [[ $STRICT == 1 ]] && exit 3
fi
exit 0
