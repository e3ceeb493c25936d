#!/bin/sh
# t38-xclient.sh - Postfix's XCLIENT (XCLIENT_README) from an xclient-from
# address: offered in EHLO to it alone; ADDR, PORT, HELO, PROTO, LOGIN
# taken, a new 220 greeting, and from then on the session is the client
# named (ETRN's etrn-from, Received:, the log); refused with 550 5.7.0
# from anyone else, 503 inside a transaction, 501 for a bad attribute.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
SINK_PORT=$(free_port)
sink

write_conf "xclient-from 127.0.0.4"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.2
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
EOF
start_spoold

# client SRC CMD... - one session from SRC: the greeting, then each CMD
# (sent with CRLF) and its reply; the server's lines in $T/client.out
client() {
	python3 - "$SMTP_PORT" "$@" >"$T/client.out" 2>&1 <<'PY' || fail "client $*: $(cat "$T/client.out")"
import socket, sys
port, src, cmds = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.socket()
s.bind((src, 0))
s.settimeout(5)
s.connect(("127.0.0.1", port))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line:
            print("CLOSED"); sys.exit(0)
        print(line.decode("latin-1").rstrip("\r\n"), flush=True)
        if line[3:4] != b"-":
            return
reply()
for c in cmds:
    s.sendall(c.encode() + b"\r\n")
    reply()
PY
}
expect_out() {
	grep -E -q "$1" "$T/client.out" || fail "$2: no /$1/ in:
$(cat "$T/client.out")"
}

# ---- from the proxy: XCLIENT, a new greeting, the client's session ----
client 127.0.0.4 "EHLO proxy.test" "XCLIENT ADDR=127.0.0.2 PORT=4242 NAME=[UNAVAILABLE] HELO=orig.test PROTO=ESMTP LOGIN=al+2Bice" \
    "ETRN site.test" "MAIL FROM:<a@x.test>" "RCPT TO:<u@site.test>" DATA \
    "$(printf 'Subject: via XCLIENT\r\n\r\nbody\r\n.')" "ETRN site.test" QUIT
expect_out '^250-XCLIENT ADDR NAME PORT PROTO HELO LOGIN' "XCLIENT in EHLO to 127.0.0.4"
[ "$(grep -c '^220 mx\.test' "$T/client.out")" = 2 ] || fail "no second greeting after XCLIENT: $(cat "$T/client.out")"
expect_out '^251 2\.0\.0' "ETRN after XCLIENT ADDR=127.0.0.2 (etrn-from)"
expect_out '^250 2\.0\.0 Ok: queued as' "a message after XCLIENT HELO= (no EHLO again)"
expect_out '^253 2\.0\.0 1 pending messages for node site\.test started' "ETRN of the message"
wait_count site.test 0
grep -q '^Received: from orig\.test (\[127\.0\.0\.2\])' "$T"/dump/* ||
	fail "Received: does not name orig.test and 127.0.0.2: $(grep -A2 '^Received: from' "$T"/dump/*)"
grep -q 'xclient from unknown\[127\.0\.0\.4\]: client unknown\[127\.0\.0\.2\]:4242 helo=<orig\.test>' "$SPOOLD_LOG" ||
	fail "no xclient log line"
grep -q 'disconnect from unknown\[127\.0\.0\.2\] .*xclient=1.* user=al+ice ' "$SPOOLD_LOG" ||
	fail "the disconnect line is not the client's: $(grep disconnect "$SPOOLD_LOG" | tail -1)"
say "XCLIENT from 127.0.0.4: 220 again; ETRN, Received: and the log as 127.0.0.2 (orig.test, LOGIN al+ice)"

# without HELO=: EHLO again first (XCLIENT_README's example)
client 127.0.0.4 "XCLIENT ADDR=IPV6:2001:db8::7" "MAIL FROM:<a@x.test>" "EHLO orig.test" "ETRN site.test" QUIT
expect_out '^503 ' "MAIL before EHLO after XCLIENT without HELO"
expect_out '^459 4\.7\.1' "ETRN as 2001:db8::7 (not in etrn-from)"
grep -q 'client unknown\[2001:db8::7\]:0 helo=<>' "$SPOOLD_LOG" || fail "no xclient log line for IPV6:"
say "XCLIENT ADDR=IPV6:2001:db8::7 without HELO: EHLO needed again, ETRN 459"

# ---- refusals ----
client 127.0.0.1 "EHLO liar.test" "XCLIENT ADDR=127.0.0.2" "ETRN site.test" QUIT
grep -q XCLIENT "$T/client.out" && fail "XCLIENT offered to 127.0.0.1"
expect_out '^550 5\.7\.0 Error: insufficient authorization' "XCLIENT from 127.0.0.1"
expect_out '^459 4\.7\.1' "ETRN after a refused XCLIENT"
client 127.0.0.4 "EHLO proxy.test" "MAIL FROM:<a@x.test>" "XCLIENT ADDR=127.0.0.2" RSET \
    "XCLIENT FOO=bar" "XCLIENT ADDR=999.0.0.1" "XCLIENT PORT=65536" "XCLIENT HELO=a+0Ab" XCLIENT QUIT
expect_out '^503 5\.5\.1' "XCLIENT inside a transaction"
expect_out '^501 5\.5\.4 Bad XCLIENT attribute: FOO$' "an unknown attribute"
expect_out '^501 5\.5\.4 Bad XCLIENT attribute: ADDR$' "a bad address"
expect_out '^501 5\.5\.4 Bad XCLIENT attribute: PORT$' "a bad port"
expect_out '^501 5\.5\.4 Bad XCLIENT attribute: HELO$' "an xtext LF"
expect_out '^501 5\.5\.4 Syntax: XCLIENT' "no attribute"
say "550 5.7.0 from 127.0.0.1 (not offered either); 503 in a transaction; 501 for FOO, a bad ADDR, PORT, an LF in HELO, none"

# ---- the per-address limits go by the client XCLIENT names ----
# max-connections-per-ip 2: two sessions for 192.0.2.9 through the proxy
# are held open; a third XCLIENT naming it gets 421 and is closed, while
# one naming another client and the proxy's own sessions go on.
stop_spoold
write_conf "xclient-from 127.0.0.4" "max-connections-per-ip 2"
start_spoold
python3 - "$SMTP_PORT" >"$T/limit.out" 2>&1 <<'PY' || fail "per-address limit after XCLIENT: $(cat "$T/limit.out")"
import socket, sys
port = int(sys.argv[1])
def session(addr):
    s = socket.socket(); s.bind(("127.0.0.4", 0)); s.settimeout(5)
    s.connect(("127.0.0.1", port)); f = s.makefile("rb")
    def reply():
        while True:
            line = f.readline().decode()
            if not line or line[3:4] != "-":
                return line.rstrip()
    reply(); s.sendall(b"EHLO proxy.test\r\n"); reply()
    s.sendall(("XCLIENT ADDR=%s HELO=c.test\r\n" % addr).encode())
    return s, f, reply()
held = [session("192.0.2.9") for _ in range(2)]
for _, _, r in held:
    assert r.startswith("220 "), r
s3, f3, r3 = session("192.0.2.9")
print("third:", r3)
assert r3.startswith("421 4.7.0 ") and "Too many connections from your address" in r3, r3
assert f3.readline() == b"", "not closed after the 421"
s4, f4, r4 = session("192.0.2.10")
assert r4.startswith("220 "), r4
print("another client:", r4)
PY
grep -q "^third: 421 4.7.0" "$T/limit.out" || fail "no 421: $(cat "$T/limit.out")"
say "max-connections-per-ip 2: a third session XCLIENT names 192.0.2.9 gets 421 4.7.0 and is closed; 192.0.2.10 is let in"

stop_spoold
