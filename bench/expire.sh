#!/usr/bin/env bash
# bench/expire.sh -- a mass expiry while clients keep talking to spoold.
#
# Queues MESSAGES (default 10000) messages of 2 KiB for exp.bench, whose
# max-age is AGE seconds (default 60), from a sender in home.bench (also
# spooled, so every DSN is stored, not sent).  When the messages reach their
# max-age spoold fails them all: one DSN each, in batches.  Meanwhile a probe
# opens an SMTP session every 50 ms and times the greeting and EHLO.  Prints
# how long the expiry took, how many DSNs were stored, and the probe's median
# and worst latency before and during the expiry.  A measurement, not a test:
# timings are never pass/fail here.
#
# Usage: bench/expire.sh            MESSAGES=2000 AGE=30 bench/expire.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MESSAGES=${MESSAGES:-10000}
AGE=${AGE:-60}
SPOOLD=${SPOOLD:-$REPO/spoold/spoold}
SPOOLCTL=${SPOOLCTL:-$(dirname "$SPOOLD")/spoolctl}
T=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/spoold-bench-expire.XXXXXX")
trap '[[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; [[ ${KEEP_TMP:-} == 1 ]] || rm -rf "$T"' EXIT
log() { printf '%s\n' "$*" >&2; }
command -v smtp-source >/dev/null || PATH=$PATH:/usr/sbin
command -v smtp-source >/dev/null || { log "smtp-source (Postfix) is needed"; exit 1; }

cat >"$T/spoold.conf" <<EOF
hostname mx.bench
listen smtp 127.0.0.1:0
datadir $T/spool
max-message-size 10M
timeout idle 30s
domain exp.bench {
    max-age $AGE
    recipients any
}
domain home.bench {
    recipients any
}
EOF
"$SPOOLD" -c "$T/spoold.conf" -f --listen-file "$T/listen" >"$T/spoold.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do [[ -s $T/listen ]] && break; sleep 0.05; done
PORT=$(awk '$1=="smtp" {n=split($2,a,":"); print a[n]}' "$T/listen")
log "queueing $MESSAGES messages for exp.bench (max-age ${AGE}s)"
t0=$(date +%s.%N)
smtp-source -s 10 -m "$MESSAGES" -l 2048 -f a@home.bench -t u@exp.bench "127.0.0.1:$PORT"
t1=$(date +%s.%N)
log "queued in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"

# probe: greeting + EHLO latency every 50 ms until exp.bench is empty
python3 - "$PORT" "$SPOOLCTL" "$T/spoold.conf" "$MESSAGES" <<'PY'
import socket, statistics, subprocess, sys, time
port, spoolctl, conf, total = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
def count(domain):
    out = subprocess.run([spoolctl, "-c", conf, "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == domain:
            return int(f[1])
    return 0
def probe():
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), 10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO probe\r\n")
    while f.readline()[3:4] == b"-":
        pass
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    return (time.monotonic() - t) * 1000
before, during = [], []
start = None
last_check = 0
while True:
    ms = probe()
    now = time.monotonic()
    if now - last_check > 0.5:
        left = count("exp.bench")
        last_check = now
        if start is None and left < total:
            start = now
        if start is not None and left == 0:
            break
    (during if start is not None else before).append(ms)
    time.sleep(0.05)
took = time.monotonic() - start
dsns = count("home.bench")
def fmt(v):
    return "n=%d median %.1f ms, max %.1f ms" % (len(v), statistics.median(v), max(v)) if v else "n=0"
print("expiry of %d messages took about %.1f s; %d DSNs stored" % (total, took, dsns))
print("probe before the expiry: " + fmt(before))
print("probe during the expiry: " + fmt(during))
PY
grep -c 'status=expired' "$T/spoold.log" | sed 's/^/expired log lines: /'
