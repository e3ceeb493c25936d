#!/bin/sh
# t09-robustness.sh - clients that misbehave at the transport level: one that
# never reads its replies, one whose TLS records straddle spoold's input
# buffer, one that pipelines far more than a buffer holds, and control
# characters smuggled into quoted local parts.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks

make_cert
write_conf "timeout idle 2s" "timeout data 5s" \
	"tls-cert $T/cert.pem" "tls-key $T/key.pem"
start_spoold

# ---- a client that never reads: closed after the deadline, slot freed ----
python3 - "$SMTP_PORT" >"$T/noread.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
sent = 0
try:
    while sent < 4 * 1024 * 1024:
        sent += s.send(b"EHLO noread.test\r\n" * 500)  # not a junk command: answered every time
except OSError:
    pass
print("sent", sent)
time.sleep(25)
PY
echo $! >"$T/noread.pid"
_i=0
until grep -q 'reason=last reply not read in time' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 400 ] || fail "a client that never reads was not closed within 20 s"
	sleep 0.05
done
stop_pid "$(cat "$T/noread.pid")"; rm -f "$T/noread.pid"
say "a client that never reads its replies is closed after the deadline"

# ---- far more pipelined than one buffer: every reply, in order (HELO: NOOP
# is a junk command, 100 a session) ----
python3 - "$SMTP_PORT" <<'PY' || fail "pipelined HELOs: replies missing"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
assert f.readline().startswith(b"220")
n = 30000
s.sendall(b"EHLO p.test\r\n" + b"HELO p.test\r\n" * n + b"QUIT\r\n")
time.sleep(1)
for line in iter(f.readline, b""):
    if line.startswith(b"250 mx.test"):
        n -= 1
    elif line.startswith(b"221"):
        break
sys.exit(0 if n == 0 else "%d HELO replies missing" % n)
PY
say "30000 pipelined HELOs read late: all answered"

# ---- TLS records that straddle the input buffer: no stall in DATA ----
python3 - "$SMTP_PORT" <<'PY' || fail "DATA over TLS with 10000-byte records stalled"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            return line
assert reply().startswith(b"220")
s.sendall(b"EHLO t.test\r\n"); reply()
s.sendall(b"STARTTLS\r\n"); assert reply().startswith(b"220")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="mx.test")
f = t.makefile("rb")
t.sendall(b"EHLO t.test\r\n"); reply()
t.sendall(b"MAIL FROM:<a@x.test>\r\n"); assert reply().startswith(b"250")
t.sendall(b"RCPT TO:<tls@example.test>\r\n"); assert reply().startswith(b"250")
t.sendall(b"DATA\r\n"); assert reply().startswith(b"354")
body = b"Subject: big\r\n\r\n" + (b"x" * 98 + b"\r\n") * 900 + b".\r\n"
for i in range(0, len(body), 10000):    # one TLS record per send
    t.sendall(body[i:i + 10000])
r = reply()
sys.exit(0 if r.startswith(b"250 2.0.0") else "got %r" % r)
PY
say "90 KB over TLS in 10000-byte records: stored without a stall"

# ---- control characters in a quoted local part are refused ----
chat <<'EOF' || fail "control characters in a quoted local part were accepted"
expect ^220
send EHLO c.test\r\n
expect ^250 HELP
send MAIL FROM:<a@x.test>\r\n
expect ^250
send RCPT TO:<"evil\\\r\\\x07z"@example.test>\r\n
expect ^553 5\.1\.3
send MAIL FROM:<"e\\\x1b"@x.test>\r\n
expect ^503
send QUIT\r\n
expect ^221
EOF
say "quoted-pair with control characters: 553"

# ---- a client dripping bytes cannot hold a command open past the idle timeout ----
python3 - "$SMTP_PORT" <<'PY' || fail "a byte-at-a-time client kept its session past the idle timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
assert f.readline().startswith(b"220")
start = time.monotonic()
try:
    for b in b"NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP":
        s.send(bytes([b]))
        time.sleep(0.25)
except OSError:
    pass
line = f.readline()
took = time.monotonic() - start
sys.exit(0 if line.startswith(b"421 4.4.2") and took < 6 else "got %r after %.1fs" % (line, took))
PY
say "one byte every 0.25 s: 421 4.4.2 after the 2 s idle timeout"

# ---- SIZE: exactly the advertised limit is accepted, one byte more is not ----
python3 - "$SMTP_PORT" <<'PY' || fail "SIZE limit boundary"
import re, socket, sys
def session(nbytes, size_param):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    f = s.makefile("rb")
    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return line
    reply()
    s.sendall(b"EHLO s.test\r\n"); ehlo = reply()
    s.sendall(b"MAIL FROM:<a@x.test> SIZE=%d\r\n" % size_param); r = reply()
    if not r.startswith(b"250"):
        return r
    s.sendall(b"RCPT TO:<size@example.test>\r\n"); reply()
    s.sendall(b"DATA\r\n"); reply()
    line = b"y" * 98 + b"\r\n"
    body = line * (nbytes // 100) + b"z" * (nbytes % 100)
    assert len(body) == nbytes
    s.sendall(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    return reply()
limit = 100 * 1024
r = session(limit, limit)
assert r.startswith(b"250 2.0.0"), "exactly %d bytes: %r" % (limit, r)
r = session(limit + 100, limit)
assert r.startswith(b"552 5.3.4"), "over the limit: %r" % r
r = session(10, 99999999999999999999)
assert r.startswith(b"552 5.3.4"), "SIZE with 20 digits: %r" % r
PY
say "SIZE: $((100 * 1024)) bytes stored, more refused with 552, a 20-digit SIZE= gets 552"

# ---- RCPT TO:<Postmaster> is postmaster@hostname (RFC 5321 4.1.1.3) ----
chat <<'EOF' || fail "RCPT TO:<Postmaster>"
expect ^220
send EHLO c.test\r\n
expect ^250 HELP
send MAIL FROM:<a@x.test>\r\n
expect ^250
send RCPT TO:<Postmaster>\r\n
expect ^554 5\.7\.1
send QUIT\r\n
expect ^221
EOF
stop_spoold
write_conf "hostname-is-a-domain"
sed -i -e 's/^hostname mx.test$/hostname example.test/' -e '/^hostname-is-a-domain$/d' "$SPOOLD_CONF"
start_spoold
sw -t Postmaster -f a@x.test
[ -n "$(sw_queued)" ] || fail "<Postmaster> refused though the hostname is a configured domain: $(cat "$T/swaks.out")"
spoolctl show example.test | grep -q ' postmaster@example\.test$' || fail "<Postmaster> not stored as postmaster@example.test"
say "<Postmaster> is postmaster@hostname: stored when that is a configured domain, relay-denied otherwise"

# ---- client bytes echoed in replies are printable ASCII only ----
printf 'EHLO c.test\r\nMAIL FROM:<a@x.test> \033[31mRED=1\r\nQUIT\r\n' >"$T/esc.in"
python3 - "$SMTP_PORT" "$T/esc.in" <<'PY' || fail "a reply echoed a control character"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(open(sys.argv[2], "rb").read())
data = b""
while not data.endswith(b"221 2.0.0 example.test closing connection\r\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
bad = [l for l in data.split(b"\r\n") if any(c < 0x20 or c > 0x7e for c in l)]
assert b"555 5.5.4 Unsupported parameter ?[31mRED" in data, data
sys.exit("raw bytes in %r" % bad if bad else 0)
PY
say "a parameter with an escape sequence is echoed as ?[31mRED"
stop_spoold
