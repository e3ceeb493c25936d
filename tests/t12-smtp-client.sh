#!/bin/sh
# t12-smtp-client.sh - the SMTP client engine (shared/smtp_client.c), the one
# delivery state machine, driven by tests/smtp_send against Postfix's
# smtp-sink: content arrives exactly (dot-stuffing), with and without
# PIPELINING and ESMTP, and every peer behaviour gives the right verdict per
# recipient.  (ETRN and delivery runs that use it come with issue 3.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
SEND="$top_builddir/tests/smtp_send"
[ -x "$SEND" ] || error "$SEND is not built (make check builds it)"

# sink OPTIONS... - start smtp-sink on a free port with a dump directory
sink() {
	stop_sink
	chmod 755 "$T"	# smtp-sink runs as nobody
	rm -rf "$T/dump"; mkdir "$T/dump"; chmod 777 "$T/dump"
	SINK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$SINK" -u nobody -d "$T/dump/%M." "$@" "127.0.0.1:$SINK_PORT" 10 >"$T/sink.log" 2>&1 &
	echo $! >"$T/sink.pid"
	_i=0
	until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$SINK_PORT),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || error "smtp-sink did not start"; sleep 0.05
	done
}
stop_sink() {
	[ -f "$T/sink.pid" ] && stop_pid "$(cat "$T/sink.pid")" && rm -f "$T/sink.pid"
	return 0
}

# send [-s|-T] - the message in $T/msg to two recipients; output in $T/out
send() {
	"$SEND" "$@" 127.0.0.1 "$SINK_PORT" a@x.test u1@example.test u2@example.test <"$T/msg" >"$T/out" 2>&1 || true
}
expect_out() {
	grep -E -q "$1" "$T/out" || fail "$2: no /$1/ in:
$(cat "$T/out")"
}

printf 'Subject: client\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n' >"$T/msg"

for opts in "" "-p" "-e"; do
	sink $opts
	send
	expect_out '^rcpt 0 250 ' "sink $opts: first recipient"
	expect_out '^rcpt 1 250 ' "sink $opts: second recipient"
	expect_out '^sent 250 ' "sink $opts: message"
	expect_out '^done ok$' "sink $opts: session"
	dump=$(ls "$T"/dump/* 2>/dev/null | head -n 1)
	[ -n "$dump" ] || fail "sink $opts: nothing arrived"
	# the sink's dump: its headers, its Received: line (3 lines), then the
	# message with LF line ends and one more LF at the end
	sed -n '/^Received: from smtp-send.test/,$p' "$dump" | tail -n +4 | head -c -1 >"$T/got"
	tr -d '\r' <"$T/msg" >"$T/want"
	cmp -s "$T/want" "$T/got" || fail "sink $opts: content differs (dot-stuffing?):
$(od -c "$T/got" | head -20)"
	grep -c '^X-Rcpt-Args:' "$dump" | grep -qx 2 || fail "sink $opts: not two recipients"
	if [ "$opts" = -e ]; then
		grep -q '^X-Client-Proto: SMTP$' "$dump" || fail "sink -e: no fallback to HELO"
	fi
done
say "delivered intact with PIPELINING, without it (-p) and without ESMTP (-e)"

sink -r RCPT
send
expect_out '^rcpt 0 450 ' "4xx on RCPT"
grep -q '^sent' "$T/out" && fail "a message was sent with every RCPT refused"
sink -f RCPT
send
expect_out '^rcpt 1 5[0-9][0-9] ' "5xx on RCPT"
sink -f MAIL
send
expect_out '^rcpt 0 5[0-9][0-9] .*' "MAIL refused: every recipient gets its reply"
expect_out '^rcpt 1 5[0-9][0-9] .*' "MAIL refused: every recipient gets its reply"
sink -f .
send
expect_out '^sent 5[0-9][0-9] ' "refused after the dot"
say "4xx/5xx on RCPT, MAIL refused, message refused after the dot: the right verdict each"

sink -q .
send
expect_out '^done error: connection lost in CLIENT_EOM' "dropped after the dot"
grep -q '^sent' "$T/out" && fail "dropped before the reply to the dot, yet reported as sent"
sink -Q RCPT
send
expect_out '^done error: connection lost' "421 and close at RCPT"
say "a peer that drops the connection before its reply: no outcome reported (the message stays)"

printf 'Subject: caf\303\251\r\n\r\n8-bit\r\n' >"$T/msg"
sink -8
send
expect_out '^rcpt 0 450 450 4\.6\.0 ' "8-bit message to a peer without 8BITMIME"
[ -z "$(ls "$T/dump")" ] || fail "an 8-bit message went to a peer without 8BITMIME"
send -s
expect_out '^rcpt 0 553 553 5\.6\.7 ' "SMTPUTF8 message to a peer without SMTPUTF8"
sink
send -T
expect_out '^done error: TLS is required and no TLS client credentials are set up' "TLS required"
[ -z "$(ls "$T/dump")" ] || fail "mail sent in clear although TLS was required"
stop_sink
say "8BITMIME, SMTPUTF8 and required TLS missing at the peer: refused before MAIL, nothing sent"

# ---- a broken peer: 250 to DATA, or a reply nobody asked for ----
cat >"$T/fake.py" <<'PY'
# fake.py PORTFILE MODE: a one-connection SMTP peer that misbehaves
import socket, sys
mode = sys.argv[2]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
open(sys.argv[1], "w").write(str(ls.getsockname()[1]))
c, _ = ls.accept(); f = c.makefile("rb")
c.sendall(b"220 fake\r\n")
while True:
    line = f.readline()
    if not line:
        break
    cmd = line[:4].upper()
    if cmd == b"EHLO":
        c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
    elif cmd == b"DATA":
        if mode == "data250":
            c.sendall(b"250 thanks\r\n")
            continue
        c.sendall(b"354 go\r\n")
        while f.readline() not in (b".\r\n", b""):
            pass
        c.sendall(b"250 ok\r\n" + (b"250 surprise\r\n" if mode == "extra" else b""))
    elif cmd == b"QUIT":
        c.sendall(b"221 bye\r\n"); break
    else:
        c.sendall(b"250 ok\r\n")
PY
for mode in data250 extra; do
	rm -f "$T/fake.port"
	python3 "$T/fake.py" "$T/fake.port" "$mode" &
	echo $! >"$T/fake.pid"
	_i=0
	until [ -s "$T/fake.port" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "fake peer"; sleep 0.05; done
	printf 'Subject: x\r\n\r\nbody\r\n' >"$T/msg"
	{ printf 'Subject: x\r\n\r\nbody\r\n' | "$SEND" 127.0.0.1 "$(cat "$T/fake.port")" a@x.test u1@example.test; } >"$T/out" 2>&1 || true
	stop_pid "$(cat "$T/fake.pid")"; rm -f "$T/fake.pid"
	case $mode in
	data250)
		expect_out '^done error: DATA answered 250 thanks, not 354' "250 to DATA"
		grep -q '^sent' "$T/out" && fail "250 to DATA counted as a delivery" ;;
	extra)
		expect_out '^sent 250 ' "the message before the surprise"
		expect_out '^done error: the peer sent a reply nobody asked for' "a reply nobody asked for" ;;
	esac
done
say "a peer answering 250 to DATA or sending unasked replies: the session fails, nothing counts as delivered"
