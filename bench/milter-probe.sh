#!/usr/bin/env bash
# bench/milter-probe.sh -- do other sessions wait while a content filter is
# slow?  spoold runs with the test filter (tests/milter_test.py, python3-milter)
# as its milter; SLOW clients each send a message the filter holds for 5 s at
# the end of the message (Subject: slow), over and over, while a probe opens a
# new session every 50 ms (greeting, EHLO, QUIT) and records how long each
# took.  Prints the probe's latencies (min/median/p99/max) next to the same
# probe with no slow traffic.  A report, never a pass/fail.
#
# Usage: bench/milter-probe.sh            (SLOW=20 DURATION=15)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BENCH_NAME=milter-probe
SPOOLD=${SPOOLD:-$PWD/spoold/spoold}
SLOW=${SLOW:-20}
DURATION=${DURATION:-15}
[[ -x $SPOOLD ]] || die "spoold is not built"
/usr/bin/python3 -c 'import Milter' 2>/dev/null || die "python3-milter is not installed"

T=$(mktemp -d /tmp/milter-probe.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT

MPORT=$(free_port)
/usr/bin/python3 tests/milter_test.py "$MPORT" "$T/ready" >"$T/milter.log" 2>&1 &
PIDS+=($!)
wait_port "$MPORT" 20 || die "the test milter did not start"

cat >"$T/spoold.conf" <<EOF
hostname probe.test
listen smtp 127.0.0.1:0
datadir $T/spool
max-connections 1000
max-connections-per-ip 1000
milter test inet:127.0.0.1:$MPORT
milter-timeout eom 30s
domain probe.test {
    recipients any
}
EOF
mkdir -p "$T/spool"
"$SPOOLD" -c "$T/spoold.conf" -f --listen-file "$T/listen" >"$T/spoold.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $T/listen ]] && break; sleep 0.1; done
PORT=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[[ -n $PORT ]] || die "spoold did not start: $(tail -5 "$T/spoold.log")"

probe() {  # probe LABEL: DURATION seconds of one session every 50 ms
	python3 - "$PORT" "$DURATION" "$1" <<'PY'
import socket, statistics, sys, time
port, duration, label = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lat, end = [], time.time() + duration
while time.time() < end:
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), 10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO probe.test\r\n")
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            break
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
lat.sort()
p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
print("%-28s sessions=%4d  min %6.2f  median %6.2f  p99 %6.2f  max %6.2f ms" % (
    label, len(lat), lat[0], statistics.median(lat), p99, lat[-1]))
PY
}

slow_client() {  # one client sending slow messages back to back
	python3 - "$PORT" "$DURATION" <<'PY'
import smtplib, sys, time
port, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
msg = "Subject: slow\r\nFrom: a@client.test\r\nTo: u@probe.test\r\n\r\nheld by the filter\r\n"
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
while time.time() < end:
    s.sendmail("a@client.test", ["u@probe.test"], msg)
s.quit()
PY
}

probe "no slow traffic"
for _ in $(seq "$SLOW"); do slow_client & PIDS+=($!); done
sleep 1
probe "$SLOW sessions in a 5 s filter"
echo "messages the slow filter held meanwhile: $(grep -c '^eom slow' "$T/milter.log")"
