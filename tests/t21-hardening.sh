#!/bin/sh
# t21-hardening.sh - limits that stop one client from holding resources for
# ever: a total DATA deadline and a minimum data rate (slowloris), a
# junk-command limit, rate-tls on both ports, a cap on the lines of a peer's
# reply (spoold's delivery client and etrnclient), and a line flood on the
# ODMR port.  (The SMTP port's line flood is in t05, a command line that
# trickles in is in t09.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need certtool
EC="$top_builddir/etrnclient/etrnclient"
[ -x "$EC" ] || error "$EC is not built"

make_cert
FAKE_PORT=$(free_port)
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem" \
	"listen odmr 127.0.0.1:0" \
	"timeout data-total 6s" \
	"min-data-rate 200 2s" \
	"etrn-rate 1000" \
	"rate-tls 3" \
	"domain chatty.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$FAKE_PORT
    recipients any
}"
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[ -n "$ODMR_PORT" ] || fail "no odmr port in $(cat "$T/listen")"

# Every client below imports this: one connection, one reply reader.
cat >"$T/rawsmtp.py" <<'PY'
import socket

class Raw:
    """a plain socket to spoold; reply() reads one whole reply"""
    def __init__(self, port, src="127.0.0.1", timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
        self.f = self.s.makefile("rb")

    def reply(self):
        while True:
            line = self.f.readline()
            if line[3:4] != b"-":
                return line

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\r\n")
        return self.reply()
PY
export PYTHONPATH="$T"

# ---- slowloris in DATA ----
# py WHAT SCRIPT-ON-STDIN - run Python with the SMTP port as argv[1]
py() {
	_what=$1
	shift
	python3 - "$SMTP_PORT" "$@" >"$T/py.out" 2>&1 || fail "$_what: $(cat "$T/py.out")"
}
cat >"$T/slow.py" <<'PY'
import socket, sys, time
from rawsmtp import Raw

def session(port, chunk, every, limit):
    """DATA, then chunk every `every` seconds until spoold answers; returns
    (reply line, seconds after the 354, whether the socket was then closed)"""
    c = Raw(port, timeout=15)
    s = c.s
    assert c.reply().startswith(b"220")
    for cmd in ("EHLO slow.test", "MAIL FROM:<slow@x.test>", "RCPT TO:<slow@example.test>", "DATA"):
        r = c.cmd(cmd)
    assert r.startswith(b"354"), r
    start = time.monotonic()
    s.settimeout(every)
    got = b""
    while time.monotonic() - start < limit:
        try:
            s.sendall(chunk)
        except OSError:
            break
        try:
            got = s.recv(4096)
            break
        except socket.timeout:
            continue
        except OSError:
            break
    took = time.monotonic() - start
    s.settimeout(5)
    try:
        rest = s.recv(4096)
    except OSError:
        rest = b""
    return got, took, rest == b""

port, kind = int(sys.argv[1]), sys.argv[2]
if kind == "drip":	# 1 byte every 0.2 s: 5 B/s, far under 200 B/s
    got, took, closed = session(port, b"x", 0.2, 20)
    want = b"421 4.4.2 mx.test Timeout: message data arrives too slowly"
    assert got.startswith(want), (got, took)
    assert 1.9 < took < 5, took
elif kind == "long":	# 150 bytes every 0.25 s: 600 B/s, fast enough, but 6 s at most
    got, took, closed = session(port, b"y" * 148 + b"\r\n", 0.25, 20)
    want = b"421 4.4.2 mx.test Timeout: the message took too long"
    assert got.startswith(want), (got, took)
    assert 5.9 < took < 9, took
assert closed, "the session stayed open after the 421"
print("%s: %r after %.1f s, closed" % (kind, got.strip(), took))
PY
py "one byte every 0.2 s in DATA" drip <"$T/slow.py"
say "$(cat "$T/py.out")"
py "600 B/s in DATA for longer than data-total" long <"$T/slow.py"
say "$(cat "$T/py.out")"
[ "$(domain_count example.test)" = 0 ] || fail "a message cut off by the DATA limits was stored"
grep -q 'too slow in DATA from unknown\[127\.0\.0\.1\]: [0-9]* bytes in [0-9]* s' "$SPOOLD_LOG" ||
	fail "no log line for the slow client"
grep -q 'deadline in DATA from unknown\[127\.0\.0\.1\]' "$SPOOLD_LOG" || fail "no log line for the DATA deadline"
# a message at full speed is not bothered
sw -t fast@example.test -f a@x.test
sw_queued >/dev/null || fail "a normal message after the slow ones: $(cat "$T/swaks.out")"
expect_count example.test 1
say "min-data-rate and timeout data-total: 421 4.4.2, closed, nothing stored; a fast message still goes in"

# ---- junk commands: 100 answered, the 101st closes the session ----
cat >"$T/junk.py" <<'PY'
import sys
from rawsmtp import Raw
port, plan = int(sys.argv[1]), sys.argv[2]
c = Raw(port)
s, f, cmd, reply = c.s, c.f, c.cmd, c.reply
assert reply().startswith(b"220")
cmd("EHLO junk.test")
def junk(n, verbs):
    for i in range(n):
        v = verbs[i % len(verbs)]
        r = cmd(v)
        assert not r.startswith(b"421"), "%s number %d got %r" % (v, i + 1, r)
if plan == "noop":
    junk(100, ["NOOP"])
elif plan == "mixed":
    junk(100, ["NOOP", "RSET", "VRFY someone", "HELP", "ETRN not-ours.test"])
elif plan == "reset":
    junk(90, ["NOOP"])
    for c, want in (("MAIL FROM:<j@x.test>", b"250"), ("RCPT TO:<junk@example.test>", b"250"), ("DATA", b"354")):
        r = cmd(c)
        assert r.startswith(want), (c, r)
    s.sendall(b"Subject: junk\r\n\r\nbody\r\n.\r\n")
    r = reply()
    assert r.startswith(b"250 2.0.0 Ok: queued"), r
    junk(100, ["NOOP"])	# the count starts again after a stored message
r = cmd("NOOP")
assert r.startswith(b"421 4.7.0 mx.test Too many NOOP, RSET, VRFY, HELP or ETRN commands"), r
assert f.read() == b"", "still open after the 421"
print("ok")
PY
py "100 NOOPs, then a 101st" noop <"$T/junk.py"
py "100 of NOOP, RSET, VRFY, HELP and ETRN, then a NOOP" mixed <"$T/junk.py"
py "a stored message starts the count again" reset <"$T/junk.py"
expect_count example.test 2
grep -q 'too many junk commands from unknown\[127\.0\.0\.1\] (100)' "$SPOOLD_LOG" || fail "no log line for the junk limit"
say "junk-command-limit 100: the 101st NOOP/RSET/VRFY/HELP/ETRN without effect gets 421 4.7.0; a message resets it"

# ---- rate-tls 3: per client address, both ports together ----
cat >"$T/tls.py" <<'PY'
import ssl, sys
from rawsmtp import Raw
port, src = int(sys.argv[1]), sys.argv[2]
c = Raw(port, src)
s = c.s
assert c.reply().startswith(b"220")
c.cmd("EHLO tls.test")
r = c.cmd("STARTTLS")
if r.startswith(b"220"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname="mx.test")
    t.sendall(b"QUIT\r\n")
    print("TLS", t.version())
else:
    print(r.decode().strip())
PY
tls() {	# tls PORT SOURCE-ADDRESS: one STARTTLS; prints TLS or the refusal
	python3 - "$1" "$2" <"$T/tls.py" 2>&1 || true
}
for i in 1 2 3; do
	out=$(tls "$SMTP_PORT" 127.0.0.1)
	case $out in TLS*) ;; *) fail "handshake $i of 3 refused: $out" ;; esac
done
out=$(tls "$SMTP_PORT" 127.0.0.1)
case $out in "454 4.7.0 TLS not available: too many new TLS sessions from your address"*) ;;
*) fail "a 4th STARTTLS in a minute (rate-tls 3): $out" ;; esac
out=$(tls "$ODMR_PORT" 127.0.0.1)
case $out in "454 4.7.0 TLS not available: too many new TLS sessions from your address"*) ;;
*) fail "STARTTLS on the ODMR port after 3 on the SMTP port: $out" ;; esac
out=$(tls "$SMTP_PORT" 127.0.0.2)
case $out in TLS*) ;; *) fail "another address refused: $out" ;; esac
grep -q 'reject: STARTTLS from unknown\[127\.0\.0\.1\]: [0-9]* TLS not available: too many new TLS sessions' "$SPOOLD_LOG" ||
	fail "no log line for the SMTP refusal"
grep -q 'reject: STARTTLS from unknown\[127\.0\.0\.1\]: [0-9]* TLS not available: too many new TLS sessions' "$SPOOLD_LOG" || fail "no log line for the ODMR refusal"
say "rate-tls 3: the 4th handshake from one address gets 454 4.7.0 on either port; another address goes on"

# ---- line flood on the ODMR port ----
python3 "$SMTPCHAT" 127.0.0.1 "$ODMR_PORT" - >"$T/odmr-flood.log" 2>&1 <<'EOF' || fail "ODMR line flood: $(cat "$T/odmr-flood.log")"
expect ^220 
sendx b"B" * 102400
expect ^500 5\.5\.2
expect ^421 4\.7\.0 .*Line too long, closing connection
expect_close
EOF
grep -q 'line flood from unknown\[127\.0\.0\.1\]' "$SPOOLD_LOG" || fail "no log line for the ODMR line flood"
say "ODMR: 100 KB without LF gets 500 5.5.2, then 421 4.7.0 and close"

# ---- rate-connections on the ODMR port (one table with the SMTP port) ----
echo "rate-connections 4" >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0; until grep -q 'reloaded' "$SPOOLD_LOG"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
greeting() {	# greeting PORT SOURCE-ADDRESS: the first line the server sends
	python3 - "$1" "$2" <<'PY' 2>&1 || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10,
                             source_address=(sys.argv[2], 0))
f = s.makefile("rb")
print(f.readline().decode().strip())
s.sendall(b"QUIT\r\n")
PY
}
for i in 1 2 3 4; do
	out=$(greeting "$ODMR_PORT" 127.0.0.3)
	case $out in "220 "*) ;; *) fail "ODMR connection $i of 4 refused: $out" ;; esac
done
out=$(greeting "$ODMR_PORT" 127.0.0.3)
case $out in "421 4.7.0 "*"Too many connections from your address per minute"*) ;;
*) fail "a 5th ODMR connection in a minute (rate-connections 4): $out" ;; esac
out=$(greeting "$SMTP_PORT" 127.0.0.3)
case $out in "421 4.7.0 "*"Too many connections from your address per minute"*) ;;
*) fail "the SMTP port after 5 ODMR connections from the address: $out" ;; esac
out=$(greeting "$ODMR_PORT" 127.0.0.4)
case $out in "220 "*) ;; *) fail "another address refused on the ODMR port: $out" ;; esac
grep -q 'spoold/odmr.*reject: CONNECT from unknown\[127\.0\.0\.3\]: .*Too many connections from your address per minute' "$SPOOLD_LOG" ||
	fail "no log line for the ODMR connection refusal"
say "rate-connections 4: the 5th connection in a minute from one address gets 421 4.7.0 on the ODMR port too (one count for both ports); another address goes on"

# ---- a peer whose reply never ends: spoold's client and etrnclient ----
# fake_server LINES - a server on FAKE_PORT whose greeting is fine and whose
# EHLO reply has LINES lines; one connection at a time, until killed
fake_server() {
	python3 - "$FAKE_PORT" "$1" >"$T/fake.log" 2>&1 <<'PY' &
import socket, sys
port, lines = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(5)
while True:
    c, _ = ls.accept()
    c.settimeout(10)
    try:
        c.sendall(b"220 fake.test ESMTP\r\n")
        f = c.makefile("rb")
        f.readline()
        c.sendall(b"".join(b"250-line %d of an endless reply\r\n" % i for i in range(lines - 1)) + b"250 ETRN\r\n")
        while f.readline():
            c.sendall(b"250 ok\r\n")
    except OSError:
        pass
    c.close()
PY
	echo $! >"$T/fake.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$FAKE_PORT),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || error "the fake server did not start"; sleep 0.05
	done
}
fake_server 150
sw -t u@chatty.test -f a@x.test
sw_queued >/dev/null || fail "no 250 for chatty.test: $(cat "$T/swaks.out")"
etrn 127.0.0.1 chatty.test
expect_etrn '^253 ' "ETRN chatty.test"
_i=0
until spoolctl show chatty.test | grep -q '^# last attempt .*failed'; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "no failed attempt shown: $(spoolctl show chatty.test)"
	sleep 0.05
done
spoolctl show chatty.test | grep -q '^# last attempt .*a reply of more than 100 lines in CLIENT_EHLO' ||
	fail "spoolctl show does not say why: $(spoolctl show chatty.test)"
[ "$(domain_count chatty.test)" = 1 ] || fail "the message left the spool after a protocol error"
say "delivery run: a 150-line EHLO reply fails the session, the mail stays, spoolctl show says why"

EC_RC=0
"$EC" --lock-dir "$T/locks" --etrn "127.0.0.1:$FAKE_PORT" --timeout 10s chatty.test >"$T/ec.out" 2>&1 || EC_RC=$?
[ "$EC_RC" = 75 ] || fail "etrnclient against a 150-line EHLO reply exited $EC_RC, expected 75: $(cat "$T/ec.out")"
grep -q 'a reply of more than 100 lines' "$T/ec.out" || fail "etrnclient does not say why: $(cat "$T/ec.out")"
say "etrnclient: a 150-line EHLO reply gives exit 75 with the reason"

# a long but bounded reply (60 lines) is still fine for both
stop_pid "$(cat "$T/fake.pid")"
rm -f "$T/fake.pid"
fake_server 60
EC_RC=0
"$EC" --lock-dir "$T/locks" --etrn "127.0.0.1:$FAKE_PORT" --timeout 10s chatty.test >"$T/ec.out" 2>&1 || EC_RC=$?
[ "$EC_RC" = 0 ] || fail "etrnclient against a 60-line EHLO reply exited $EC_RC: $(cat "$T/ec.out")"
say "a 60-line EHLO reply is read as usual (etrnclient exit 0)"

stop_spoold
