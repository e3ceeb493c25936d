#!/bin/sh
# t02-smtp.sh - the SMTP conversation: delivery, recipient checks, relay
# refusals, size and recipient limits, small commands, EHLO keywords,
# sequence errors, the per-IP connection cap and the idle timeout.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks

write_conf
start_spoold

# stored_total N WHAT - spoolctl stats counts N messages in all
stored_total() {
	_n=$(total_count)
	[ "$_n" = "$1" ] || fail "$2: spoolctl stats says $_n messages, expected $1
$(spoolctl list)"
}

# ---- delivery ----
sw -f sender@x.test -t user@example.test
[ $SW_RC -eq 0 ] || fail "delivery to example.test: swaks exit $SW_RC: $(cat "$T/swaks.out")"
sw_expect '250 2\.0\.0 Ok: queued as [0-9a-f]{16}$' "delivery to example.test"
id=$(sw_queued)
expect_count example.test 1
spoolctl show example.test | grep -q "^$id .* <sender@x\.test> user@example\.test$" ||
	fail "spoolctl show example.test does not list $id from sender@x.test: $(spoolctl show example.test)"
stored_total 1 "one delivery"
say "delivery to example.test stored as $id"

# ---- abandoned transactions: MAIL, then RSET, EHLO or QUIT ----
# Three sessions in a row, so that a session whose socket got a descriptor
# freed by an earlier one is exercised too.
for i in 1 2 3; do
	chat <<'EOF' || fail "session $i with abandoned transactions (MAIL then RSET/EHLO/QUIT) was cut off"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<abandon@x.test>\r\n
expect ^250 
send RSET\r\n
expect ^250 2\.0\.0
send MAIL FROM:<abandon@x.test>\r\n
expect ^250 
send EHLO client.test\r\n
expect ^250 
send NOOP\r\n
expect ^250 
send MAIL FROM:<abandon@x.test>\r\n
expect ^250 
send QUIT\r\n
expect ^221 
expect_close
EOF
done
alive "$SPOOLD_PID" || fail "spoold died after sessions with abandoned transactions"
stored_total 1 "abandoned transactions"
say "abandoned transactions (RSET, EHLO, QUIT after MAIL) in 3 sessions: spoold healthy"

# ---- one message for several domains ----
sw -f sender@x.test -t u1@example.test,listed@other.test,someone@wild.test
[ $SW_RC -eq 0 ] || fail "three domains: swaks exit $SW_RC: $(cat "$T/swaks.out")"
expect_count example.test 2
expect_count other.test 1
expect_count wild.test 1
say "one message for three domains is listed under each"

# ---- recipients file ----
sw -f sender@x.test -t listed@OTHER.test
[ $SW_RC -eq 0 ] || fail "listed user, domain in capitals: swaks exit $SW_RC: $(cat "$T/swaks.out")"
expect_count other.test 2
sw -f sender@x.test -t nobody@other.test
[ $SW_RC -ne 0 ] || fail "unlisted user: swaks succeeded"
sw_expect '550 5\.1\.1' "unlisted user in other.test"
expect_count other.test 2
sw -f sender@x.test -t whoever@wild.test
[ $SW_RC -eq 0 ] || fail "@wild.test wildcard: swaks exit $SW_RC: $(cat "$T/swaks.out")"
expect_count wild.test 2
sw -f sender@x.test -t whoever@sub.wild.test
sw_expect '554 5\.7\.1' "subdomain of a configured domain"
stored_total 4 "recipients file checks"
say "recipients file: listed 250, unlisted 550 5.1.1, @domain wildcard 250"

# ---- relaying ----
sw -f sender@x.test -t victim@elsewhere.test
[ $SW_RC -ne 0 ] || fail "relay: swaks succeeded"
sw_expect '554 5\.7\.1' "relay to an unconfigured domain"
chat <<'EOF' || fail "relay tricks were not all refused with 554 5.7.1"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<sender@x.test>\r\n
expect ^250 
send RCPT TO:<victim%elsewhere.test@example.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<elsewhere.test!victim@example.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<@example.test,@elsewhere.test:victim@elsewhere.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<@elsewhere.test:victim@example.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<"victim@elsewhere.test"@example.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<victim@elsewhere.test>\r\n
expect ^554 5\.7\.1
send RCPT TO:<ok@example.test>\r\n
expect ^250 2\.1\.5
send QUIT\r\n
expect ^221 
expect_close
EOF
stored_total 4 "relay checks"
say "relay refused: unconfigured domain, %, !, source routes, quoted local part"

# ---- size ----
chat <<'EOF' || fail "SIZE= over the limit at MAIL"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<sender@x.test> SIZE=102401\r\n
expect ^552 5\.3\.4
send MAIL FROM:<sender@x.test> SIZE=1000\r\n
expect ^250 2\.1\.0
send QUIT\r\n
expect ^221 
EOF
say "SIZE=102401 at MAIL: 552 5.3.4"

python3 -c 'import sys; sys.stdout.write(("x" * 78 + "\r\n") * 1800)' >"$T/big.body"
sw -f sender@x.test -t user@example.test --body "@$T/big.body"
[ $SW_RC -ne 0 ] || fail "144 KB message: swaks succeeded"
sw_expect '552 5\.3\.4' "144 KB message after DATA"
stored_total 4 "message over max-message-size"
python3 -c 'import sys; sys.stdout.write(("x" * 78 + "\r\n") * 1200)' >"$T/ok.body"
sw -f sender@x.test -t user@example.test --body "@$T/ok.body"
[ $SW_RC -eq 0 ] || fail "96 KB message: swaks exit $SW_RC: $(cat "$T/swaks.out")"
stored_total 5 "message under max-message-size"
say "message over max-message-size: 552 5.3.4 after DATA, nothing stored"

# ---- max-recipients 5 ----
sw -f sender@x.test -t r1@example.test,r2@example.test,r3@example.test,r4@example.test,r5@example.test,r6@example.test
sw_expect '452 4\.5\.3' "sixth recipient"
grep -c '^ *-> RCPT TO' "$T/swaks.out" | grep -q -x 6 || fail "swaks did not send 6 RCPTs: $(cat "$T/swaks.out")"
chat <<'EOF' || fail "max-recipients"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<sender@x.test>\r\n
expect ^250 
send RCPT TO:<a1@example.test>\r\n
expect ^250 
send RCPT TO:<a2@example.test>\r\n
expect ^250 
send RCPT TO:<a3@example.test>\r\n
expect ^250 
send RCPT TO:<a4@example.test>\r\n
expect ^250 
send RCPT TO:<a5@example.test>\r\n
expect ^250 
send RCPT TO:<a6@example.test>\r\n
expect ^452 4\.5\.3
send DATA\r\n
expect ^354
send Subject: five\r\n\r\nbody\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as [0-9a-f]{16}$
send QUIT\r\n
expect ^221 
EOF
spoolctl show example.test | grep -q ' a1@example\.test a2@example\.test a3@example\.test a4@example\.test a5@example\.test$' ||
	fail "the message with 5 accepted recipients is not listed with them: $(spoolctl show example.test)"
say "sixth recipient: 452 4.5.3; the first five get the message"
before=$(total_count)

# ---- small commands, EHLO keywords, HELO, sequence errors ----
chat <<'EOF' || fail "small commands"
expect ^220 mx\.test 
send MAIL FROM:<sender@x.test>\r\n
expect ^503 5\.5\.1
send RCPT TO:<u@example.test>\r\n
expect ^503 5\.5\.1
send DATA\r\n
expect ^503 5\.5\.1
send EHLO client.test\r\n
expect (?s)\A250-mx\.test\n(?=.*^250[- ]PIPELINING$)(?=.*^250[- ]SIZE 102400$)(?=.*^250[- ]8BITMIME$)(?=.*^250[- ]ENHANCEDSTATUSCODES$)(?=.*^250[- ]SMTPUTF8$)(?=.*^250[- ]DSN$)(?!.*STARTTLS)
send VRFY user@example.test\r\n
expect ^252 
send HELP\r\n
expect ^214 
send NOOP\r\n
expect ^250 2\.0\.0
send XYZZY\r\n
expect ^500 5\.5\.2
send RCPT TO:<u@example.test>\r\n
expect ^503 5\.5\.1
send DATA\r\n
expect ^503 5\.5\.1
send MAIL FROM:<sender@x.test>\r\n
expect ^250 2\.1\.0
send DATA\r\n
expect ^503 5\.5\.1
send MAIL FROM:<again@x.test>\r\n
expect ^503 5\.5\.1
send RSET\r\n
expect ^250 2\.0\.0
send DATA\r\n
expect ^503 5\.5\.1
send MAIL FROM:<sender@x.test>\r\n
expect ^250 2\.1\.0
send QUIT\r\n
expect ^221 2\.0\.0
expect_close
EOF
say "VRFY 252, HELP 214, NOOP/RSET 250, unknown 500 5.5.2, EHLO keywords, 503 out of sequence"

chat <<'EOF' || fail "HELO session"
expect ^220 
send HELO client.test\r\n
expect ^250 mx\.test$
send MAIL FROM:<sender@x.test>\r\n
expect ^250 
send RCPT TO:<helo@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: helo\r\n\r\nsent after HELO\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as [0-9a-f]{16}$
send QUIT\r\n
expect ^221 
EOF
stored_total $((before + 1)) "delivery after HELO"
spoolctl show example.test | grep -q ' helo@example\.test$' || fail "HELO message not listed"
say "HELO session delivers"

# RSET ends the transaction: a DATA after it is refused, nothing is stored
chat <<'EOF' || fail "RSET"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<sender@x.test>\r\n
expect ^250 
send RCPT TO:<rset@example.test>\r\n
expect ^250 
send RSET\r\n
expect ^250 
send DATA\r\n
expect ^503 5\.5\.1
send QUIT\r\n
expect ^221 
EOF
stored_total $((before + 1)) "RSET"

# ---- SIGHUP: a new domain is accepted; a broken file keeps the old one ----
rcpt_new() {
	chat <<EOF
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<sender@x.test>\r\n
expect ^250 
send RCPT TO:<u@new.test>\r\n
expect $1
send QUIT\r\n
expect ^221 
EOF
}
rcpt_new '^554 5\.7\.1' || fail "new.test accepted before it is configured"
printf 'domain new.test {\n    recipients any\n}\n' >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
i=0
until rcpt_new '^250 2\.1\.5' >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -le 50 ] || fail "new.test still refused 5 s after SIGHUP"
	sleep 0.1
done
printf 'bogus directive\n' >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
i=0
until grep -q 'reload failed' "$SPOOLD_LOG"; do
	i=$((i + 1))
	[ $i -le 50 ] || fail "no \"reload failed\" in the log 5 s after SIGHUP with a broken file"
	sleep 0.1
done
alive "$SPOOLD_PID" || fail "spoold died on SIGHUP with a broken configuration"
rcpt_new '^250 2\.1\.5' || fail "after a failed reload new.test is no longer accepted"
sed -i '/^bogus directive$/d' "$SPOOLD_CONF"
say "SIGHUP: new domain accepted; a broken file is refused and the running one kept"

# ---- per-IP connection cap (restart with the limit) ----
stop_spoold
printf 'max-connections-per-ip 3\n' >>"$SPOOLD_CONF"
start_spoold

# hold 3 connections open, each past its greeting
python3 - "$SMTP_PORT" "$T/held" <<'EOF' >"$T/holder.log" 2>&1 &
import socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    greeting = s.recv(1000)
    if not greeting.startswith(b"220 "):
        sys.exit("connection %d: greeting %r" % (i, greeting))
    socks.append(s)
open(ready, "w").write("ok\n")
time.sleep(30)
EOF
echo $! >"$T/holder.pid"
i=0
until [ -s "$T/held" ]; do
	alive "$(cat "$T/holder.pid")" || fail "holder could not open 3 connections: $(cat "$T/holder.log")"
	i=$((i + 1))
	[ $i -le 200 ] || fail "holder did not open 3 connections within 10 s"
	sleep 0.05
done
chat <<'EOF' || fail "fourth connection from 127.0.0.1 was not refused with 421 4.7.0"
expect ^421 4\.7\.0
expect_close
EOF
stop_pid "$(cat "$T/holder.pid")"
rm -f "$T/holder.pid"
# the slots come back once spoold has seen the closes (bounded retry)
i=0
until chat >/dev/null 2>&1 <<'EOF'
expect ^220 
send QUIT\r\n
expect ^221 
EOF
do
	i=$((i + 1))
	[ $i -le 50 ] || fail "no connection accepted 5 s after the held ones closed"
	sleep 0.1
done
say "max-connections-per-ip 3: fourth connection 421 4.7.0; slots freed on close"

# ---- idle timeout (restart with 2 s) ----
stop_spoold
sed -i 's/^timeout idle 30s$/timeout idle 2s/' "$SPOOLD_CONF"
start_spoold
# nothing for 1 s, then 421 4.4.2 and the close
chat <<'EOF' || fail "idle timeout"
expect ^220 
expect_silence 1
expect ^421 4\.4\.2
expect_close
EOF
# also after a command
chat <<'EOF' || fail "idle timeout after EHLO"
expect ^220 
send EHLO client.test\r\n
expect ^250 
expect ^421 4\.4\.2
expect_close
EOF
say "timeout idle 2s: 421 4.4.2 and close"

stop_spoold
exit 0
