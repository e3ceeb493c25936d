#!/usr/bin/env bash
# bench/despool.sh -- how fast a site gets its held mail after ETRN, spoold
# against Postfix, on this machine, in one run.
#
# For each receiver:
#   1. start it with nothing listening on the site's port (SINKPORT);
#   2. queue MESSAGES messages of 5 KiB for user@bench.test with smtp-source
#      (-d -s 20) and check that all of them are held:
#        spoold:  `spoolctl list` shows MESSAGES for bench.test (spoold never
#                 delivers without an ETRN: the mail just waits);
#        Postfix: its first delivery attempt fails (connection refused) and
#                 every message is in the deferred queue, its queue ID
#                 recorded by the fast flush service for bench.test;
#   3. start the site: Postfix's smtp-sink on SINKPORT, counting (-c) but not
#      storing;
#   4. send `ETRN bench.test` and time until the sink has received all
#      MESSAGES messages and the receiver's queue for bench.test is empty
#      (spoold: `spoolctl list` shows 0; Postfix: no queue file left).
#
# The result is a markdown table (seconds from ETRN to the last message at the
# sink, to the queue being empty, msgs/s = MESSAGES / the latter, spoold/Postfix)
# and spoold's peak RSS.  The target, spoold >= 3x Postfix, is informational.
#
# With LARGE=1 a second measurement follows: spoold with LARGE_MESSAGES
# messages over LARGE_DOMAINS domains (one domain block each in spoold.conf),
# and the time from `ETRN dNNNNN.large.test` to its 253 reply over
# ETRN_PROBES domains (target < 10 ms), plus spoold's RSS.
#
# Usage:
#   bench/despool.sh                       # MESSAGES=20000, spoold and Postfix
#   MESSAGES=2000 bench/despool.sh         # quick run
#   LARGE=1 bench/despool.sh               # plus the 1,000,000-message ETRN latency run
#   LARGE=1 RECEIVERS= bench/despool.sh    # only the large run
#
# Environment:
#   MESSAGES      messages queued and then pulled by ETRN (default 20000)
#   MSG_SIZE      payload bytes per message, smtp-source -l (default 5120)
#   SESSIONS      smtp-source sessions while queueing (default 20)
#   RECEIVERS     "spoold postfix" (default), either, or empty
#   PF_CONCURRENCY Postfix default_destination_concurrency_limit (default 20)
#   RUN_TIMEOUT   seconds a queueing run or a drain may take (default 600)
#   LARGE=1       also run the large ETRN latency measurement (default 0)
#   LARGE_MESSAGES, LARGE_DOMAINS  its size (default 1000000 over 10000)
#   LARGE_MSG_SIZE payload bytes per message there (default 1024)
#   LARGE_PARALLEL parallel smtp-source processes queueing it (default 32)
#   ETRN_PROBES   ETRNs timed per round in the large run (default 20; two rounds:
#                 right after queueing and after LARGE_SETTLE seconds, default 10)
#   SPOOLD        spoold binary (default <repo>/spoold/spoold)
#   SPOOLCTL      spoolctl binary (default: spoolctl next to $SPOOLD)
#   BENCH_TMPDIR  parent of the temp dir (default /tmp)
#   KEEP_TMP=1    keep the temp dir (configs, logs, spools) for inspection
#
# Exit status: 0 whatever the timings are; non-zero only on setup errors
# (no Postfix tools, a daemon will not start, mail is not held as set up).
#
# The private Postfix instance is set up as in bench/ingest.sh (see there:
# `postfix -c DIR`, nothing in /etc touched, no chroot, postlogd), configured
# as an ETRN server for bench.test:
#   relay_domains = bench.test, fast_flush_domains = $relay_domains,
#   transport_maps = texthash:DIR/transport with "bench.test smtp:[127.0.0.1]:SINKPORT",
#   smtpd_etrn_restrictions = permit_mynetworks, reject,
#   minimal_backoff_time = 1h, maximal_backoff_time = 2h (Postfix's own retry
#   cannot interfere), maximal_queue_lifetime = bounce_queue_lifetime = 5d,
#   default_destination_concurrency_limit = $PF_CONCURRENCY (20),
#   initial_destination_concurrency = 5 (the default), connection caching on
#   demand (the default), and the flush service in master.cf.
# Postfix's ETRN asks the flush service to move the domain's deferred queue
# files to the incoming queue and asks qmgr to forget that the site was dead;
# qmgr then delivers them with up to PF_CONCURRENCY parallel SMTP sessions.
# spoold delivers a domain over one SMTP session (with PIPELINING).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESSAGES=${MESSAGES:-20000}
MSG_SIZE=${MSG_SIZE:-5120}
SESSIONS=${SESSIONS:-20}
RECEIVERS=${RECEIVERS-"spoold postfix"}
PF_CONCURRENCY=${PF_CONCURRENCY:-20}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
LARGE=${LARGE:-0}
LARGE_MESSAGES=${LARGE_MESSAGES:-1000000}
LARGE_DOMAINS=${LARGE_DOMAINS:-10000}
LARGE_MSG_SIZE=${LARGE_MSG_SIZE:-1024}
LARGE_PARALLEL=${LARGE_PARALLEL:-32}
ETRN_PROBES=${ETRN_PROBES:-20}
LARGE_SETTLE=${LARGE_SETTLE:-10}
SPOOLD=${SPOOLD:-$REPO/spoold/spoold}
SPOOLCTL=${SPOOLCTL:-$(dirname "$SPOOLD")/spoolctl}
BENCH_TMPDIR=${BENCH_TMPDIR:-/tmp}
KEEP_TMP=${KEEP_TMP:-0}

FROM=sender@example.org
RCPT=user@bench.test
HELO=client.example.org

BENCH_NAME=despool.sh
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

for v in MESSAGES SESSIONS PF_CONCURRENCY LARGE_MESSAGES LARGE_DOMAINS LARGE_PARALLEL ETRN_PROBES; do
    is_uint "${!v}" && (( ${!v} > 0 )) || die "$v must be a positive integer, not '${!v}'"
done
for v in MSG_SIZE LARGE_MSG_SIZE RUN_TIMEOUT LARGE_SETTLE; do
    is_uint "${!v}" || die "$v must be an integer, not '${!v}'"
done
(( LARGE_MESSAGES % LARGE_DOMAINS == 0 )) || die "LARGE_MESSAGES must be a multiple of LARGE_DOMAINS"
for r in $RECEIVERS; do
    case $r in spoold|postfix) ;; *) die "unknown receiver '$r' in RECEIVERS (spoold postfix)";; esac
done
[[ $(id -u) -eq 0 ]] || die "must run as root (private Postfix instance, smtp-sink -u nobody)"
need_postfix_tools python3
want() { [[ " $RECEIVERS " == *" $1 "* ]]; }
if want spoold || [[ $LARGE == 1 ]]; then
    [[ -x $SPOOLD ]] || die "spoold is not built ($SPOOLD does not exist)"
    [[ -x $SPOOLCTL ]] || die "spoolctl not found ($SPOOLCTL)"
fi

# ---------------------------------------------------------------- temp dir, cleanup

T=$(mktemp -d "$BENCH_TMPDIR/spoold-despool.XXXXXX")
chmod 755 "$T"              # the postfix user must reach the queue below it
PFDIR=$T/postfix
PFQ=$T/postfix-queue
PFDATA=$T/postfix-data
SD=$T/spoold
SPOOLD_CONF=$SD/spoold.conf

SPOOLD_PID=
SINK_PID=
LOAD_PID=
PF_RUNNING=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $LOAD_PID ]] && stop_pid "$LOAD_PID" load
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

PROBLEMS=()
note_problem() { PROBLEMS+=("$*"); log "  PROBLEM: $*"; }

# ---------------------------------------------------------------- python helpers

# etrn_drain.py: send ETRN, then time until the sink counted N messages and the
# receiver's queue is empty.  Prints key=value lines.
cat >"$T/etrn_drain.py" <<'EOF'
import os, re, smtplib, subprocess, sys, time

port, domain, sinkout, n, timeout, kind, arg = sys.argv[1:8]
n = int(n); timeout = float(timeout)
pat = re.compile(rb'mesg=(\d+)')

def sink_count():
    try:
        with open(sinkout, 'rb') as f:
            f.seek(0, 2); size = f.tell()
            f.seek(max(0, size - 256))
            m = pat.findall(f.read())
            return int(m[-1]) if m else 0
    except OSError:
        return 0

def queued():
    if kind == 'spoold':   # arg: "SPOOLCTL CONF"
        spoolctl, conf = arg.split(' ', 1)
        out = subprocess.run([spoolctl, '-c', conf, 'list'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 2 and f[0] == domain:
                return int(f[1])
        return 0
    total = 0              # postfix: arg is the queue directory
    for q in ('maildrop', 'incoming', 'active', 'deferred', 'hold'):
        for _, _, files in os.walk(os.path.join(arg, q)):
            total += len(files)
    return total

s = smtplib.SMTP('127.0.0.1', int(port), timeout=60)
s.ehlo('site.bench.test')
t0 = time.monotonic()
code, text = s.docmd('ETRN', domain)
t_reply = time.monotonic() - t0
print('reply=%d %s' % (code, text.decode(errors='replace')))
print('reply_ms=%.3f' % (t_reply * 1000))
sys.stdout.flush()
t_sink = t_empty = None
last, last_change = -1, t0
while True:
    t = time.monotonic()
    if t - t0 > timeout:
        break
    if t_sink is None:
        c = sink_count()
        if c != last:
            last, last_change = c, t
        if c >= n:
            t_sink = time.monotonic() - t0
        else:
            time.sleep(0.01)
            continue
    q = queued()
    if q == 0:
        t_empty = time.monotonic() - t0
        break
    time.sleep(0.05)
try:
    s.quit()
except Exception:
    pass
print('sink_count=%d' % sink_count())
print('sink_s=%s' % ('%.3f' % t_sink if t_sink is not None else ''))
print('empty_s=%s' % ('%.3f' % t_empty if t_empty is not None else ''))
print('queued_end=%d' % queued())
EOF

# etrn_probe.py PORT DOMAIN...: time ETRN -> reply for each domain, one session
cat >"$T/etrn_probe.py" <<'EOF'
import smtplib, statistics, sys, time

port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, timeout=60)
s.ehlo('site.bench.test')
ms = []
for d in sys.argv[2:]:
    t0 = time.perf_counter()
    code, text = s.docmd('ETRN', d)
    dt = (time.perf_counter() - t0) * 1000
    ms.append(dt)
    print('probe %s %.3f ms: %d %s' % (d, dt, code, text.decode(errors='replace')), file=sys.stderr)
    if code != 253:
        print('bad=%s %d %s' % (d, code, text.decode(errors='replace')))
    time.sleep(0.05)
s.quit()
ms.sort()
print('n=%d' % len(ms))
print('median_ms=%.3f' % statistics.median(ms))
print('p90_ms=%.3f' % ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))])
print('max_ms=%.3f' % ms[-1])
print('min_ms=%.3f' % ms[0])
EOF

kv() { awk -F= -v k="$1" '$1==k {sub(/^[^=]*=/, ""); print; exit}' "$2"; }

# ---------------------------------------------------------------- common steps

# queue_load PORT LABEL: smtp-source MESSAGES x MSG_SIZE to RCPT, SESSIONS sessions
queue_load() {
    local port=$1 label=$2 rc t0 t1 out=$T/load-$2.out
    t0=$(now)
    set +e
    timeout "$RUN_TIMEOUT" smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$MSG_SIZE" \
        -M "$HELO" -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=
    set -e
    t1=$(now)
    log "  queued with smtp-source in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s (rc $rc)"
    if [[ $rc != 0 ]]; then
        tail -n 5 "$out" >&2 || true
        die "$label: smtp-source failed while queueing (rc $rc)"
    fi
}

# start_sink PORT LABEL: smtp-sink with a running counter on stdout
start_sink() {
    local port=$1 label=$2
    # -c: running counters "sess=N quit=N mesg=N", one update per event;
    # no -d/-D: the sink stores nothing.  -m 1000: enough concurrent sessions.
    smtp-sink -u nobody -c -m 1000 "127.0.0.1:$port" 1000 >"$T/sink-$label.out" 2>&1 &
    SINK_PID=$!
    wait_port "$port" 10 "$SINK_PID" || { cat "$T/sink-$label.out" >&2; die "smtp-sink did not start"; }
}

# measure LABEL SMTPPORT KIND ARG: ETRN bench.test, wait; sets R_* results
declare -A R_SINK R_EMPTY R_REPLY R_REPLYMS R_RATE R_NOTE
measure() {
    local label=$1 port=$2 kind=$3 arg=$4 out=$T/drain-$1.out rc
    set +e
    python3 "$T/etrn_drain.py" "$port" bench.test "$T/sink-$label.out" "$MESSAGES" \
        "$RUN_TIMEOUT" "$kind" "$arg" >"$out" 2>"$out.err" &
    LOAD_PID=$!
    wait "$LOAD_PID"
    rc=$?
    LOAD_PID=
    set -e
    if [[ $rc != 0 ]]; then
        cat "$out" "$out.err" >&2
        die "$label: the ETRN/drain helper failed (rc $rc)"
    fi
    R_REPLY[$label]=$(kv reply "$out")
    R_REPLYMS[$label]=$(kv reply_ms "$out")
    R_SINK[$label]=$(kv sink_s "$out")
    R_EMPTY[$label]=$(kv empty_s "$out")
    local sc qe
    sc=$(kv sink_count "$out"); qe=$(kv queued_end "$out")
    log "  ETRN reply '${R_REPLY[$label]}' after ${R_REPLYMS[$label]} ms"
    log "  sink has $sc messages (last at +${R_SINK[$label]:-?} s), queue empty at +${R_EMPTY[$label]:-?} s ($qe left)"
    R_NOTE[$label]=
    if [[ -z ${R_SINK[$label]} || -z ${R_EMPTY[$label]} ]]; then
        R_NOTE[$label]="TIMEOUT after ${RUN_TIMEOUT}s: sink $sc/$MESSAGES, $qe still queued"
        note_problem "$label: ${R_NOTE[$label]}"
        R_RATE[$label]=
    else
        (( sc == MESSAGES )) || { R_NOTE[$label]="sink counted $sc, not $MESSAGES"; note_problem "$label: ${R_NOTE[$label]}"; }
        R_RATE[$label]=$(awk -v m="$MESSAGES" -v s="${R_EMPTY[$label]}" 'BEGIN{printf "%.0f", (s>0)?m/s:0}')
    fi
}

# ---------------------------------------------------------------- spoold

SPOOLD_HWM=
SPOOLD_SPLIT=

spoold_start() {  # spoold_start LABEL: sets SPOOLD_PID, SPOOLD_PORT (config already written)
    local label=$1 lf=$SD/listen-$1
    rm -f "$lf"
    "$SPOOLD" -c "$SPOOLD_CONF" -f --listen-file "$lf" >"$SD/spoold-$label.log" 2>&1 &
    SPOOLD_PID=$!
    SPOOLD_PORT=$(spoold_wait_listen "$lf" "$SPOOLD_PID") || {
        sed 's/^/    /' "$SD/spoold-$label.log" >&2 || true
        die "spoold did not write an smtp line to $lf within 10 s"
    }
}

# spoold_queued DOMAIN: messages for DOMAIN per spoolctl list ("" if unknown)
spoold_queued() {
    "$SPOOLCTL" -c "$SPOOLD_CONF" list | awk -v d="$1" '$1==d {print $2; found=1; exit} END{if(!found) print 0}'
}

spoold_mem() {  # spoold_mem: "VmHWM kB|RssAnon ..., RssFile ..."
    awk '/^VmHWM:/ {h=$2} /^Rss(Anon|File|Shmem):/ {s=s sep $1 " " $2 " kB"; sep=", "} END{print h "|" s}' \
        "/proc/$SPOOLD_PID/status"
}

run_spoold() {
    local sinkport n mem
    log "== spoold"
    sinkport=$(free_port)
    mkdir -p "$SD/spool"
    cat >"$SPOOLD_CONF" <<EOF
hostname bench.test
listen smtp 127.0.0.1:0
datadir $SD/spool
max-spool-size 4G
max-connections 1000 1000
domain bench.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$sinkport
    recipients any
}
EOF
    "$SPOOLD" -c "$SPOOLD_CONF" -n >"$T/spoold-n.out" 2>&1 || { cat "$T/spoold-n.out" >&2; die "spoold -n failed"; }
    spoold_start drain
    queue_load "$SPOOLD_PORT" spoold
    n=$(spoold_queued bench.test)
    log "  spoolctl list: $n messages for bench.test"
    [[ $n == "$MESSAGES" ]] || die "spoold holds $n messages for bench.test, not $MESSAGES"
    port_open "$sinkport" && die "something listens on the sink port $sinkport already"
    start_sink "$sinkport" spoold
    measure spoold "$SPOOLD_PORT" spoold "$SPOOLCTL $SPOOLD_CONF"
    kill -0 "$SPOOLD_PID" 2>/dev/null || die "spoold died during the run"
    mem=$(spoold_mem)
    SPOOLD_HWM=${mem%%|*}
    SPOOLD_SPLIT=${mem#*|}
    log "  spoold VmHWM $SPOOLD_HWM kB (now: $SPOOLD_SPLIT)"
    grep 'delivery run' "$SD/spoold-drain.log" | sed 's/^/    /' >&2 || true
    local nd
    nd=$(grep -c 'status=deferred' "$SD/spoold-drain.log" || true)
    [[ $nd == 0 ]] || note_problem "spoold: $nd 'status=deferred' lines in its log"
    stop_pid "$SPOOLD_PID" spoold; SPOOLD_PID=
    stop_pid "$SINK_PID" smtp-sink; SINK_PID=
}

# ---------------------------------------------------------------- Postfix

PF_SINKPORT=
pf_write_config() {  # pf_write_config SMTPPORT (PF_SINKPORT set by the caller)
    local port=$1
    mkdir -p "$PFDIR"
    { pf_main_common bench/despool.sh; cat <<EOF
# bench.test is relayed to the site, held until the site asks with ETRN
relay_domains = bench.test
fast_flush_domains = \$relay_domains
transport_maps = texthash:$PFDIR/transport
default_transport = error:bench: no delivery
smtpd_etrn_restrictions = permit_mynetworks, reject
smtpd_client_restrictions = permit
smtpd_helo_restrictions = permit
smtpd_sender_restrictions = permit
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# the first attempt fails (no site yet); Postfix must not retry on its own
minimal_backoff_time = 1h
maximal_backoff_time = 2h
maximal_queue_lifetime = 5d
bounce_queue_lifetime = 5d
# delivery: up to $PF_CONCURRENCY parallel sessions to the site
default_destination_concurrency_limit = $PF_CONCURRENCY
initial_destination_concurrency = 5
smtp_connection_cache_on_demand = yes
# as in bench/ingest.sh
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
in_flow_delay = 0
smtpd_peername_lookup = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
EOF
    } >"$PFDIR/main.cf"
    echo "bench.test smtp:[127.0.0.1]:$PF_SINKPORT" >"$PFDIR/transport"
    pf_master_cf "$port" >"$PFDIR/master.cf"
}

pf_qcount() {  # pf_qcount QUEUE...: files in those queue directories
    local q n=0
    for q in "$@"; do
        [[ -d $PFQ/$q ]] && n=$(( n + $(find "$PFQ/$q" -type f | wc -l) ))
    done
    echo "$n"
}

run_postfix() {
    local port i d busy
    log "== Postfix"
    port=$(free_port)
    PF_SINKPORT=$(free_port)
    [[ $PF_SINKPORT != "$port" ]] || PF_SINKPORT=$(free_port)
    pf_start "$port"
    queue_load "$port" postfix
    # every message must be deferred (connection refused) before the ETRN
    for i in $(seq 1 "$(( RUN_TIMEOUT * 5 ))"); do
        d=$(pf_qcount deferred)
        busy=$(pf_qcount maildrop incoming active)
        (( d >= MESSAGES && busy == 0 )) && break
        sleep 0.2
    done
    log "  Postfix queue: $d deferred, $busy in maildrop/incoming/active, $(pf_qcount hold) on hold"
    (( d == MESSAGES && busy == 0 )) || {
        tail -n 20 "$T/postfix.log" >&2
        die "Postfix did not defer all $MESSAGES messages (deferred $d, busy $busy)"
    }
    grep -m1 -E 'status=deferred' "$T/postfix.log" | sed 's/^/    first deferral: /' >&2 || true
    local flushed
    # the flush service's per-domain log: $PFQ/flush/bench_test, one queue ID a line
    flushed=$(find "$PFQ/flush" -type f -name bench_test -exec cat {} + 2>/dev/null | sort -u | wc -l)
    log "  fast flush log for bench.test: $flushed queue IDs"
    (( flushed == MESSAGES )) || note_problem "Postfix: the fast flush log lists $flushed queue IDs, not $MESSAGES"
    port_open "$PF_SINKPORT" && die "something listens on the sink port $PF_SINKPORT already"
    start_sink "$PF_SINKPORT" postfix
    measure postfix "$port" postfix "$PFQ"
    local warn
    warn=$(grep -cE 'warning|fatal|panic' "$T/postfix.log" || true)
    if [[ $warn != 0 ]]; then
        log "  Postfix log has $warn warning/fatal/panic lines, e.g.:"
        awk '/warning|fatal|panic/ && n++ < 5 {print "    " $0}' "$T/postfix.log" >&2
    fi
    log "  Postfix: $(grep -c 'status=sent' "$T/postfix.log" || true) status=sent lines," \
        "$(grep 'status=sent' "$T/postfix.log" | grep -o 'postfix/smtp\[[0-9]*\]' | sort -u | wc -l) smtp client processes delivered"
    pf_stop
    stop_pid "$SINK_PID" smtp-sink; SINK_PID=
}

# ---------------------------------------------------------------- large

declare -A L
run_large() {
    local sinkport per i t0 t1 total mem doms=() step
    log "== large: $LARGE_MESSAGES messages over $LARGE_DOMAINS domains in spoold"
    per=$(( LARGE_MESSAGES / LARGE_DOMAINS ))
    sinkport=$(free_port)
    rm -rf "$SD"
    mkdir -p "$SD/spool"
    local etrn_rate="etrn-rate $(( 2 * ETRN_PROBES + 100 ))"
    printf 'hostname bench.test\nlisten smtp 127.0.0.1:0\ndatadir %s\n%s\n' "$SD/spool" "$etrn_rate" >"$T/probe.conf"
    "$SPOOLD" -c "$T/probe.conf" -n >/dev/null 2>&1 || etrn_rate=
    {
        echo "hostname bench.test"
        echo "listen smtp 127.0.0.1:0"
        echo "datadir $SD/spool"
        echo "max-spool-size 32G"
        echo "max-connections 1000 1000"
        # 2 x ETRN_PROBES ETRNs come from 127.0.0.1 within a minute: lift the
        # per-client ETRN rate limit (default 30/min) where spoold has one
        [[ -n $etrn_rate ]] && echo "$etrn_rate"
        for (( i = 0; i < LARGE_DOMAINS; i++ )); do
            # one directive a line: spoold.conf has no one-line blocks
            printf 'domain d%05d.large.test {\n    etrn-from 127.0.0.1\n    deliver-to [127.0.0.1]:%s\n    recipients any\n}\n' "$i" "$sinkport"
        done
    } >"$SPOOLD_CONF"
    "$SPOOLD" -c "$SPOOLD_CONF" -n >"$T/spoold-n.out" 2>&1 || { head -20 "$T/spoold-n.out" >&2; die "spoold -n failed on the large config"; }
    spoold_start large
    t0=$(now)
    set +e
    # one smtp-source per domain (its -t is fixed), LARGE_PARALLEL at a time
    seq -f 'd%05g.large.test' 0 $(( LARGE_DOMAINS - 1 )) | \
        timeout 3600 xargs -P "$LARGE_PARALLEL" -I{} \
        smtp-source -d -s 1 -m "$per" -l "$LARGE_MSG_SIZE" -M "$HELO" -f "$FROM" -t "user@{}" \
        "127.0.0.1:$SPOOLD_PORT" >"$T/load-large.out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID"
    i=$?
    LOAD_PID=
    set -e
    t1=$(now)
    L[queue_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
    log "  queued in ${L[queue_s]} s (rc $i)"
    [[ $i == 0 ]] || { tail -5 "$T/load-large.out" >&2; die "queueing the large spool failed (rc $i)"; }
    total=$("$SPOOLCTL" -c "$SPOOLD_CONF" list | awk '!/^#/ {s += $2; if ($2 > 0) d++} END{print s+0, d+0}')
    log "  spoolctl list: ${total% *} messages in ${total#* } domains"
    [[ ${total% *} == "$LARGE_MESSAGES" ]] || die "spoold holds ${total% *} messages, not $LARGE_MESSAGES"
    mem=$(spoold_mem)
    L[hwm_queued]=${mem%%|*}; L[split_queued]=${mem#*|}
    L[spool_du]=$(du -sh "$SD/spool" | cut -f1)
    start_sink "$sinkport" large
    # two rounds on different domains: right after queueing, and after the
    # machine had LARGE_SETTLE seconds of quiet (their delivery runs included)
    step=$(( LARGE_DOMAINS / ETRN_PROBES )); (( step > 0 )) || step=1
    local round off k
    for round in 1 2; do
        off=$(( round == 1 ? 7 : step / 2 + 3 ))
        doms=()
        for (( i = 0; i < ETRN_PROBES; i++ )); do
            doms+=("$(printf 'd%05d.large.test' $(( (i * step + off) % LARGE_DOMAINS )))")
        done
        (( round == 1 )) || { log "  (waiting ${LARGE_SETTLE} s before round 2)"; sleep "$LARGE_SETTLE"; }
        python3 "$T/etrn_probe.py" "$SPOOLD_PORT" "${doms[@]}" >"$T/probe$round.out" 2>"$T/probe$round.err" \
            || { cat "$T/probe$round.err" >&2; die "ETRN probe failed"; }
        log "  round $round:"
        sed 's/^/    /' "$T/probe$round.err" >&2
        grep '^bad=' "$T/probe$round.out" >&2 && note_problem "large: some ETRNs did not get 253 (see above)"
        for k in median_ms p90_ms max_ms min_ms n; do L[$k,$round]=$(kv "$k" "$T/probe$round.out"); done
    done
    sleep 2   # let the probed domains' delivery runs finish
    mem=$(spoold_mem)
    L[hwm_end]=${mem%%|*}; L[split_end]=${mem#*|}
    L[delivered]=$(tr '\r' '\n' <"$T/sink-large.out" | awk -F'mesg=' 'NF>1 {m=$2} END{print m+0}')
    log "  sink received ${L[delivered]} messages from the probed domains (expected $(( 2 * ETRN_PROBES * per )))"
    stop_pid "$SPOOLD_PID" spoold; SPOOLD_PID=
    stop_pid "$SINK_PID" smtp-sink; SINK_PID=
}

# ---------------------------------------------------------------- main

PF_VERSION=$(postconf -dh mail_version 2>/dev/null || echo '?')
log "despool benchmark: MESSAGES=$MESSAGES MSG_SIZE=$MSG_SIZE SESSIONS=$SESSIONS RECEIVERS='$RECEIVERS' LARGE=$LARGE"
log "temp dir $T; Postfix $PF_VERSION; $(nproc) CPUs"

for r in $RECEIVERS; do
    case $r in spoold) run_spoold ;; postfix) run_postfix ;; esac
done
[[ $LARGE == 1 ]] && run_large

fmt() { [[ -n ${1:-} ]] && echo "$1" || echo "n/a"; }
if [[ -n ${RECEIVERS// /} ]]; then
    echo
    echo "## ETRN despool: $MESSAGES held messages x $MSG_SIZE bytes for one domain -> smtp-sink, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| receiver | messages | ETRN reply | s to last msg at sink | s to queue empty | msgs/s | spoold/Postfix |"
    echo "|---|---:|---|---:|---:|---:|---:|"
    ratio=n/a
    if [[ -n ${R_RATE[spoold]:-} && -n ${R_RATE[postfix]:-} ]]; then
        ratio=$(awk -v a="${R_RATE[spoold]}" -v b="${R_RATE[postfix]}" 'BEGIN{printf "%.2fx", a/b}')
    fi
    for r in $RECEIVERS; do
        name=$r; [[ $r == postfix ]] && name="Postfix $PF_VERSION (concurrency $PF_CONCURRENCY)"
        rr=""; [[ $r == spoold ]] && rr=$ratio
        rate=$(fmt "${R_RATE[$r]:-}"); [[ -n ${R_NOTE[$r]:-} ]] && rate="$rate (**${R_NOTE[$r]}**)"
        echo "| $name | $MESSAGES | ${R_REPLY[$r]%% *} in ${R_REPLYMS[$r]:-?} ms | $(fmt "${R_SINK[$r]:-}") | $(fmt "${R_EMPTY[$r]:-}") | $rate | $rr |"
    done
    echo
    if want spoold; then
        echo "spoold peak RSS (VmHWM): ${SPOOLD_HWM:-?} kB ($(awk -v k="${SPOOLD_HWM:-0}" 'BEGIN{printf "%.1f", k/1024}') MiB); after the run: $SPOOLD_SPLIT"
    fi
    if [[ $ratio != n/a ]]; then
        echo "Target (informational): spoold >= 3x Postfix: $ratio -> $(awk -v a="${R_RATE[spoold]}" -v b="${R_RATE[postfix]}" 'BEGIN{print (a >= 3*b) ? "MET" : "NOT MET"}')"
    fi
    echo "msgs/s = messages / seconds from sending ETRN until all messages were at the sink AND the"
    echo "receiver's queue for the domain was empty.  spoold: one SMTP session to the site;"
    echo "Postfix: up to $PF_CONCURRENCY parallel sessions (initial 5)."
fi
if [[ $LARGE == 1 ]]; then
    echo
    echo "## ETRN latency with $LARGE_MESSAGES messages over $LARGE_DOMAINS domains held in spoold ($(( LARGE_MESSAGES / LARGE_DOMAINS )) x $LARGE_MSG_SIZE bytes each)"
    echo
    echo "| round | ETRNs | median ms | p90 ms | max ms | min ms |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| 1: right after queueing | ${L[n,1]} | ${L[median_ms,1]} | ${L[p90_ms,1]} | ${L[max_ms,1]} | ${L[min_ms,1]} |"
    echo "| 2: after ${LARGE_SETTLE} s idle | ${L[n,2]} | ${L[median_ms,2]} | ${L[p90_ms,2]} | ${L[max_ms,2]} | ${L[min_ms,2]} |"
    echo
    echo "Queueing took ${L[queue_s]} s ($(awk -v m="$LARGE_MESSAGES" -v s="${L[queue_s]}" 'BEGIN{printf "%.0f", m/s}') msg/s, $LARGE_PARALLEL parallel smtp-source); spool on disk ${L[spool_du]}."
    echo "spoold VmHWM after queueing: ${L[hwm_queued]} kB (${L[split_queued]}); after the ETRNs: ${L[hwm_end]} kB (${L[split_end]})."
    for round in 1 2; do
        echo "Target (informational): ETRN -> 253 < 10 ms, round $round: max ${L[max_ms,$round]} ms -> $(awk -v m="${L[max_ms,$round]}" 'BEGIN{print (m < 10) ? "MET" : "NOT MET"}')"
    done
    echo "Each ETRN is for a different domain (${ETRN_PROBES} a round, 50 ms apart, one SMTP session); its delivery run"
    echo "to a running smtp-sink starts at once, so later ETRNs of a round overlap earlier runs."
fi
if (( ${#PROBLEMS[@]} )); then
    echo
    echo "PROBLEMS:"
    for p in "${PROBLEMS[@]}"; do echo "- $p"; done
fi
exit 0
