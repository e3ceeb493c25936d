#!/bin/sh
# t37-proxy.sh - behind a load balancer: a real HAProxy (v1 and v2 frontends)
# in front of spoold's "listen smtp ... proxy-protocol-from".  spoold sees the
# client's address, not HAProxy's, in its log, the Received: line and ETRN's
# etrn-from; a listed address must send a valid, bounded PROXY header first
# (else the connection is closed, logged); anyone else's header is an unknown
# command (500), never honoured; v2 LOCAL (a health check) keeps the real
# addresses; bytes sent in the same packet as the header reach SMTP.
#
# Addresses: clients 127.0.0.2 (etrn-from) and 127.0.0.1; HAProxy connects
# to spoold from 127.0.0.3, the only proxy-protocol-from address.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need haproxy swaks
need_sink
SINK_PORT=$(free_port)
sink

write_conf
sed -i 's/^listen smtp 127.0.0.1:0$/listen smtp 127.0.0.1:0 proxy-protocol-from 127.0.0.3/' "$SPOOLD_CONF"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.2
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
EOF
grep -q 'proxy-protocol-from 127.0.0.3' "$SPOOLD_CONF" || error "write_conf's listen line changed"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/check.out" 2>&1 || fail "spoold -n: $(cat "$T/check.out")"
start_spoold


# client.py PORT SRC FIRST N [CMD...] - connect to 127.0.0.1:PORT from SRC;
# send FIRST at once (Python escapes; "" for nothing), read N replies, then
# send each CMD and read its reply.  Prints the server's lines, CLOSED when
# it closes, TIMEOUT when it says nothing for 5 s.
cat >"$T/client.py" <<'PY'
import socket, sys
port, src, first, n, cmds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
first = first.encode().decode("unicode_escape").encode("latin-1")
s = socket.socket()
s.bind((src, 0))
s.settimeout(5)
s.connect(("127.0.0.1", port))
buf = b""
def reply():
    global buf
    while True:
        while b"\n" not in buf:
            try:
                d = s.recv(4096)
            except socket.timeout:
                print("TIMEOUT"); sys.exit(0)
            except ConnectionResetError:
                d = b""
            if not d:
                print("CLOSED"); sys.exit(0)
            buf += d
        line, buf = buf.split(b"\n", 1)
        print(line.decode("latin-1").rstrip("\r"), flush=True)
        if len(line) < 4 or line[3:4] != b"-":
            return
if first:
    s.sendall(first)
for _ in range(n):
    reply()
for c in cmds:
    s.sendall(c.encode() + b"\r\n")
    reply()
reply()
PY
client() {
	python3 "$T/client.py" "$@" >"$T/client.out" 2>&1 || fail "client.py $*: $(cat "$T/client.out")"
}
expect_out() {
	grep -E -q "$1" "$T/client.out" || fail "$2: no /$1/ in:
$(cat "$T/client.out")"
}
expect_log() {
	_i=0
	until grep -E -q "$1" "$SPOOLD_LOG"; do
		_i=$((_i + 1)); [ $_i -le 100 ] || fail "$2: no /$1/ in the log"; sleep 0.05
	done
}

# ---- HAProxy: v1 and v2 frontends, and a v2 backend that only health-checks ----
V1_PORT=$(free_port)
V2_PORT=$(free_port)
cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend v1
    bind 127.0.0.1:$V1_PORT
    default_backend b1
frontend v2
    bind 127.0.0.1:$V2_PORT
    default_backend b2
backend b1
    server s1 127.0.0.1:$SMTP_PORT send-proxy source 127.0.0.3
backend b2
    server s2 127.0.0.1:$SMTP_PORT send-proxy-v2 source 127.0.0.3
backend checked
    option smtpchk EHLO hc.test
    server s3 127.0.0.1:$SMTP_PORT send-proxy-v2 source 127.0.0.3 check inter 1s
EOF
haproxy -c -f "$T/haproxy.cfg" >"$T/haproxy-check.out" 2>&1 || fail "haproxy -c: $(cat "$T/haproxy-check.out")"
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
echo $! >"$T/haproxy.pid"
for _port in $V1_PORT $V2_PORT; do
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$_port),1).close()" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || fail "haproxy is not listening on $_port"; sleep 0.05
	done
done
# those probes went through to spoold too: start the log checks afresh
sleep 0.3
: >"$SPOOLD_LOG"

# ---- through HAProxy, v1 and v2: the client's address everywhere ----
for v in 1 2; do
	eval port=\$V${v}_PORT
	client "$port" 127.0.0.2 "" 1 "EHLO client.test" "ETRN site.test" QUIT
	expect_out '^220 mx\.test' "v$v: greeting through HAProxy"
	expect_out '^251 2\.0\.0 OK no messages waiting for node site\.test' \
	    "v$v: ETRN from 127.0.0.2 (etrn-from) through HAProxy at 127.0.0.3"
	expect_log "PROXY v$v from 127\.0\.0\.3: client 127\.0\.0\.2:[0-9]+" "v$v: the header logged"
	expect_log 'connect from unknown\[127\.0\.0\.2\]' "v$v: connect line with the client's address"
	expect_log 'etrn node=site\.test from unknown\[127\.0\.0\.2\] reply=251' "v$v: ETRN logged"
	# HAProxy's health checks (below) are its own: the only 127.0.0.3 sessions
	grep 'disconnect from unknown\[127\.0\.0\.3\]' "$SPOOLD_LOG" | grep -v 'helo=<hc\.test>' &&
		fail "v$v: a client's session logged as HAProxy's address"
	: >"$SPOOLD_LOG"
done
say "v1 and v2 through HAProxy: ETRN allowed to 127.0.0.2 (not HAProxy's 127.0.0.3), logged as 127.0.0.2"

# the client talks first: its EHLO may share HAProxy's packet with the header
client "$V2_PORT" 127.0.0.2 'EHLO early.test\r\n' 2 QUIT
expect_out '^250[- ]mx\.test' "EHLO sent before the greeting, through HAProxy v2"

swaks --server "127.0.0.1:$V1_PORT" --local-interface 127.0.0.2 --timeout 10 --helo client.test \
    -t u@site.test -f a@x.test >"$T/swaks.out" 2>&1 </dev/null || fail "swaks through HAProxy: $(cat "$T/swaks.out")"
[ -n "$(sw_queued)" ] || fail "no queue id through HAProxy: $(cat "$T/swaks.out")"
client "$V2_PORT" 127.0.0.2 "" 1 "EHLO client.test" "ETRN site.test" QUIT
expect_out '^253 2\.0\.0 1 pending messages for node site\.test started' "ETRN through HAProxy v2"
wait_count site.test 0
[ "$(dumped)" -eq 1 ] || fail "the site got $(dumped) messages, expected 1"
grep -q '^Received: from client\.test (\[127\.0\.0\.2\])' "$T"/dump/* ||
	fail "Received: does not name 127.0.0.2: $(grep -A2 '^Received: from client' "$T"/dump/*)"
say "a message through HAProxy v1, ETRN through v2, at the site: Received: from client.test ([127.0.0.2])"

# a proxy that sends half a header and stalls: closed after 10 s
python3 - "$SMTP_PORT" >"$T/stall.out" 2>&1 <<'PY' || fail "the stalled header: $(cat "$T/stall.out")"
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.3", 0)); s.settimeout(30)
s.connect(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
s.sendall(b"PROXY TCP4 192.0.2.")
data = s.recv(100)
print("closed after %.1f s, read %r" % (time.monotonic() - t0, data))
PY
grep -q "^closed after [0-9.]* s, read b''$" "$T/stall.out" || fail "the stalled header: $(cat "$T/stall.out")"
stalled=$(sed -n 's/^closed after \([0-9.]*\) s.*/\1/p' "$T/stall.out")
awk -v t="$stalled" 'BEGIN { exit !(t >= 9.5) }' || fail "a stalled header was closed after $stalled s, before 10 s"
expect_log "PROXY from 127\.0\.0\.3 refused: no header in time; connection closed" "the stalled header"
say "half a header, then nothing: closed after $stalled s, nothing sent, logged (no header in time)"

# ---- a listed proxy address without a valid header: closed, logged ----
: >"$SPOOLD_LOG"
client "$SMTP_PORT" 127.0.0.3 'EHLO direct.test\r\n' 1
expect_out '^CLOSED$' "no header from the proxy's address"
grep -q '^220' "$T/client.out" && fail "a greeting without a PROXY header"
expect_log 'PROXY from 127\.0\.0\.3 refused: not a PROXY header; connection closed' "no header"
client "$SMTP_PORT" 127.0.0.3 'PROXY TCP4 127.0.0.2 127.0.0.1 999999 25\r\n' 1
expect_out '^CLOSED$' "malformed v1 header"
expect_log 'refused: v1 addresses or ports not valid' "malformed v1 header"
client "$SMTP_PORT" 127.0.0.3 "PROXY UNKNOWN $(printf 'x%.0s' $(seq 1 200))\\r\\n" 1
expect_out '^CLOSED$' "oversized v1 header"
expect_log 'refused: v1 line longer than 107 bytes' "oversized v1 header"
client "$SMTP_PORT" 127.0.0.3 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff' 1
expect_out '^CLOSED$' "oversized v2 header"
expect_log 'refused: v2 header longer than we take' "oversized v2 header"
client "$SMTP_PORT" 127.0.0.3 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00' 1
expect_out '^TIMEOUT$|^CLOSED$' "half a v2 header"
grep -q '^220' "$T/client.out" && fail "a greeting after half a v2 header"
say "from 127.0.0.3 (proxy-protocol-from): no header, bad ports, 200-byte v1, 65535-byte v2: closed, logged; half a header: no greeting"

# ---- a header from anyone else is a bad command, never honoured ----
: >"$SPOOLD_LOG"
client "$SMTP_PORT" 127.0.0.1 "" 1 'PROXY TCP4 127.0.0.2 127.0.0.1 40000 25' "EHLO liar.test" \
    "ETRN site.test" QUIT
expect_out '^500 ' "a PROXY line from 127.0.0.1"
expect_out '^459 4\.7\.1 Node site\.test not allowed' "ETRN after a PROXY line from 127.0.0.1"
expect_log 'connect from unknown\[127\.0\.0\.1\]' "a PROXY line from 127.0.0.1"
# (HAProxy's health checks go on meanwhile: v2 LOCAL, from 127.0.0.3)
grep -q 'PROXY v1' "$SPOOLD_LOG" && fail "a header from an unlisted address was read as one"
say "a v1 header from 127.0.0.1 (not listed): 500, and ETRN still 459 for 127.0.0.1"

# ---- v2 LOCAL: a health check, with the connection's own addresses ----
: >"$SPOOLD_LOG"
client "$SMTP_PORT" 127.0.0.3 '\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00EHLO hc.test\r\n' 2 \
    "ETRN site.test" QUIT
expect_out '^250[- ]mx\.test' "EHLO after a v2 LOCAL header"
expect_out '^459 ' "ETRN on a LOCAL connection (127.0.0.3 is not in etrn-from)"
expect_log 'PROXY v2 from 127\.0\.0\.3: local' "v2 LOCAL logged"
expect_log 'connect from unknown\[127\.0\.0\.3\]' "v2 LOCAL: the real address"
say "v2 LOCAL: the session is 127.0.0.3's own"

# ---- bytes right after the header, in the same packet, are SMTP's ----
client "$SMTP_PORT" 127.0.0.3 'PROXY TCP4 127.0.0.2 127.0.0.1 40000 25\r\nEHLO pipe.test\r\nETRN site.test\r\n' 3 QUIT
expect_out '^250[- ]mx\.test' "EHLO in the v1 header's packet"
expect_out '^251 2\.0\.0' "ETRN in the v1 header's packet, as 127.0.0.2"
client "$SMTP_PORT" 127.0.0.3 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\x9c\x40\x00\x19EHLO pipe.test\r\nETRN site.test\r\n' 3 QUIT
expect_out '^250[- ]mx\.test' "EHLO in the v2 header's packet"
expect_out '^251 2\.0\.0' "ETRN in the v2 header's packet, as 127.0.0.2"
say "EHLO and ETRN in the header's own packet (v1, v2): answered, as 127.0.0.2"

# ---- HAProxy's own health checks (send-proxy-v2 + check: LOCAL) ----
expect_log 'PROXY v2 from 127\.0\.0\.3: local' "HAProxy's health check"
_i=0
until grep -q 'helo=<hc\.test>' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no session of HAProxy's smtpchk in the log"; sleep 0.05
done
say "HAProxy's smtpchk health check: v2 LOCAL, EHLO hc.test answered"

# ---- reloads: the list goes with its listen line ----
hup() {
	kill -HUP "$SPOOLD_PID"
	_i=0
	until [ "$(grep -c -E 'reloaded: |reload failed' "$SPOOLD_LOG")" -ge "$1" ]; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "no reload outcome number $1 within 10 s"; sleep 0.05
	done
	grep -q 'reload failed' "$SPOOLD_LOG" && fail "reload failed: $(grep 'reload failed' "$SPOOLD_LOG")"
	return 0
}
v1_pipe='PROXY TCP4 127.0.0.2 127.0.0.1 40000 25\r\nEHLO pipe.test\r\nETRN site.test\r\n'
: >"$SPOOLD_LOG"
# a moved listener waits for a restart, its list with it
sed -i 's/^listen smtp .*/listen smtp 127.0.0.1:0 127.0.0.1:0 proxy-protocol-from 127.0.0.9/' "$SPOOLD_CONF"
hup 1
expect_log 'reload: listen/metrics-listen changed' "a changed listen line"
client "$SMTP_PORT" 127.0.0.3 "$v1_pipe" 3 QUIT
expect_out '^251 2\.0\.0' "the running listen line's list after a reload that moves it"
# the same listener without the list: a header from 127.0.0.3 is a command now
sed -i 's/^listen smtp .*/listen smtp 127.0.0.1:0/' "$SPOOLD_CONF"
hup 2
client "$SMTP_PORT" 127.0.0.3 "$v1_pipe" 4 QUIT
expect_out '^500 ' "a header once proxy-protocol-from is gone"
expect_out '^459 4\.7\.1' "ETRN once proxy-protocol-from is gone"
say "SIGHUP: a moved listen line keeps its running list; the same line without the list: headers are 500"


stop_spoold
