#!/bin/sh
# t05-smuggling.sh - the DATA stream and the command line are hostile: SMTP
# smuggling with bare LF/CR end markers, NUL, mail loops, dot-stuffing,
# pipelining violations, overlong lines, many pipelined commands.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

write_conf
start_spoold

# stored_total N WHAT
stored_total() {
	_n=$(total_count)
	[ "$_n" = "$1" ] || fail "$2: spoolctl stats says $_n messages, expected $1
$(spoolctl show example.test)"
}

# ---- SMTP smuggling: a bare LF/CR end-of-data variant, then a second
# transaction, then the real end: one 550 5.6.0 and nothing stored ----
for v in '\n.\n' '\r.\r' '\r\n.\n' '\n.\r\n' '\r.\r\n'; do
	chat <<EOF || fail "smuggling with end marker $v: wrong replies"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<outer@x.test>\r\n
expect ^250 
send RCPT TO:<outer@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
sendx b"Subject: outer\r\n\r\nfirst part$v" + b"MAIL FROM:<smuggled@x.test>\r\nRCPT TO:<smuggled@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond message\r\n.\r\n"
expect ^550 5\.6\.0
expect_silence 0.3
send QUIT\r\n
expect ^221 
expect_close
EOF
	stored_total 0 "smuggling with end marker $v"
	[ -f "$T/fds.start" ] || fds_baseline
	say "end marker $v + smuggled transaction: 550 5.6.0, nothing stored"
done

# the same with a bare LF in the body only: refused as a whole
chat <<'EOF' || fail "bare LF inside a line"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<lf@x.test>\r\n
expect ^250 
send RCPT TO:<lf@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: lf\r\n\r\none\ntwo\r\n.\r\n
expect ^550 5\.6\.0
send RSET\r\n
expect ^250 
send QUIT\r\n
expect ^221 
EOF
stored_total 0 "bare LF in a body line"

# ---- NUL ----
chat <<'EOF' || fail "NUL in data"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<nul@x.test>\r\n
expect ^250 
send RCPT TO:<nul@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: nul\r\n\r\nbad \x00 byte\r\n.\r\n
expect ^550 5\.6\.0
send QUIT\r\n
expect ^221 
EOF
stored_total 0 "NUL in data"
say "NUL in data: 550 5.6.0, nothing stored"

# ---- Received: headers: 100 accepted, 101 a loop ----
chat <<'EOF' || fail "Received: header count"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<loop@x.test>\r\n
expect ^250 
send RCPT TO:<loop@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
sendx b"Received: from a.test by b.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 101 + b"Subject: loop\r\n\r\nbody\r\n.\r\n"
expect ^554 5\.4\.6
send MAIL FROM:<loop@x.test>\r\n
expect ^250 
send RCPT TO:<hops100@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
sendx b"Received: from a.test by b.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 100 + b"Subject: loop\r\n\r\nbody\r\n.\r\n"
expect ^250 2\.0\.0 Ok: queued as
send QUIT\r\n
expect ^221 
EOF
stored_total 1 "Received: headers"
spoolctl show example.test | grep -q ' hops100@example\.test$' || fail "the 100-hop message is not stored"
say "101 Received: headers 554 5.4.6; 100 accepted"

# ---- dot-stuffing: "..x" is stored as ".x", "..." as ".." ----
# spoolctl cannot print a body, so compare sizes: the stuffed body is sent
# with the same number of octets as the plain one and must be stored 2 smaller
chat <<'EOF' || fail "dot-stuffing"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<plain@x.test>\r\n
expect ^250 
send RCPT TO:<dots@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: dots\r\n\r\nxxx\r\nyyy\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as
send MAIL FROM:<stuffed@x.test>\r\n
expect ^250 
send RCPT TO:<dots@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: dots\r\n\r\n..x\r\n...\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as
send QUIT\r\n
expect ^221 
EOF
plain=$(spoolctl show example.test | awk '$4 == "<plain@x.test>" { print $3 }')
stuffed=$(spoolctl show example.test | awk '$4 == "<stuffed@x.test>" { print $3 }')
[ -n "$plain" ] && [ -n "$stuffed" ] || fail "dot-stuffing: messages not stored: $(spoolctl show example.test)"
[ $((plain - stuffed)) -eq 2 ] ||
	fail "dot-stuffing: plain body stored as $plain bytes, stuffed as $stuffed; expected 2 less (leading dots removed)"
say "dot-stuffing: leading dot removed (stored size $stuffed = $plain - 2)"
stored=3

# ---- bytes after DATA before the 354: 554 5.5.0 and close ----
chat <<'EOF' || fail "pipelining violation after DATA"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<eager@x.test>\r\nRCPT TO:<eager@example.test>\r\nDATA\r\nSubject: eager\r\n\r\nbody\r\n.\r\n
expect ^250 
expect ^250 
expect ^554 5\.5\.0
expect_close
EOF
stored_total $stored "pipelining violation"
say "text before the 354: 554 5.5.0 and close, nothing stored"

# ---- a 600-octet command line ----
chat <<'EOF' || fail "600-octet command line"
expect ^220 
send EHLO client.test\r\n
expect ^250 
sendx b"NOOP " + b"x" * 505 + b"\r\n"
expect ^250 
sendx b"NOOP " + b"x" * 506 + b"\r\n"
expect ^500 5\.5\.2
sendx b"NOOP " + b"x" * 595 + b"\r\n"
expect ^500 5\.5\.2
sendx b"VRFY " + b"y" * 600 + b"@example.test\r\n"
expect ^500 5\.5\.2
sendx b"X" * 600 + b"\r\n"
expect ^500 5\.5\.2
send NOOP\r\n
expect ^250 
send MAIL FROM:<long@x.test>\r\n
expect ^250 
send RCPT TO:<long@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: after a long line\r\n\r\nbody\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as
send QUIT\r\n
expect ^221 
EOF
stored=$((stored + 1))
stored_total $stored "after a long command line"
say "512-octet command accepted; 513 and 600 octets: 500 5.5.2, the session goes on and delivers"

# ---- 60 KB with no CRLF: one 500 5.5.2, and the session goes on ----
chat <<'EOF' || fail "a 60 KB line: not one 500 and then service"
expect ^220 
send EHLO client.test\r\n
expect ^250 
sendx b"A" * 61440
expect ^500 5\.5\.2
sleep 1
send \r\nNOOP\r\n
expect ^250 
send QUIT\r\n
expect ^221 
EOF
say "60 KB without CRLF: one 500 5.5.2, the rest skipped to the LF, the session goes on"

# ---- 100 KB with no CRLF: 500 5.5.2, then 421 and close once more than
# 64 KiB of it was discarded; other clients are served meanwhile ----
python3 "$SMTPCHAT" 127.0.0.1 "$SMTP_PORT" - >"$T/flood.log" 2>&1 <<'EOF' &
expect ^220 
send EHLO client.test\r\n
expect ^250 
sendx b"A" * 102400
expect ^500 5\.5\.2
expect ^421 4\.7\.0 .*Line too long, closing connection
expect_close
EOF
flood=$!
echo $flood >"$T/flood.pid"
chat <<'EOF' || fail "spoold does not answer while another client floods it"
expect ^220 
send EHLO other.client.test\r\n
expect ^250 
send NOOP\r\n
expect ^250 
send QUIT\r\n
expect ^221 
EOF
rc=0
wait $flood || rc=$?
rm -f "$T/flood.pid"
[ $rc -eq 0 ] || fail "100 KB line without CRLF: $(cat "$T/flood.log")"
grep -q 'line flood from unknown\[127\.0\.0\.1\]: more than 65536 bytes without LF' "$SPOOLD_LOG" ||
	fail "no log line for the line flood"
say "100 KB without CRLF: 500 5.5.2, then 421 4.7.0 and close; others served"

# ---- many pipelined commands in one write, answered in order (99 junk
# commands: under the limit of 100 a session) ----
{
	echo 'expect ^220 '
	printf 'send EHLO client.test\\r\\n'
	i=0
	while [ $i -lt 33 ]; do
		printf 'NOOP\\r\\nVRFY u%d@example.test\\r\\nHELP\\r\\n' $i
		i=$((i + 1))
	done
	printf 'MAIL FROM:<pipe@x.test>\\r\\nRCPT TO:<nobody@elsewhere.test>\\r\\nRCPT TO:<pipe@example.test>\\r\\nDATA\\r\\n\n'
	echo 'expect \A250-mx\.test'
	i=0
	while [ $i -lt 33 ]; do
		echo 'expect ^250 2\.0\.0 Ok$'
		echo 'expect ^252 '
		echo 'expect ^214 '
		i=$((i + 1))
	done
	echo 'expect ^250 2\.1\.0'
	echo 'expect ^554 5\.7\.1'
	echo 'expect ^250 2\.1\.5'
	echo 'expect ^354 '
	printf 'send Subject: pipelined\\r\\n\\r\\nbody\\r\\n.\\r\\nQUIT\\r\\n\n'
	echo 'expect ^250 2\.0\.0 Ok: queued as'
	echo 'expect ^221 '
	echo 'expect_close'
} >"$T/pipeline.chat"
python3 "$SMTPCHAT" 127.0.0.1 "$SMTP_PORT" "$T/pipeline.chat" ||
	fail "123 pipelined commands were not answered in order (script $T/pipeline.chat)"
stored=$((stored + 1))
stored_total $stored "pipelined commands"
say "99 NOOP, VRFY and HELP and a transaction in one write answered in order, message and QUIT pipelined too"

fds_unchanged "after all the sessions above"
say "no descriptor leaked or closed by mistake"

stop_spoold
exit 0
