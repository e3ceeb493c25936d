#!/bin/sh
# t16-postfix-site.sh - a real Postfix as the site's MTA: spoold holds mail for
# site.test until the site's ETRN, then delivers it over SMTP into a private
# Postfix instance, which stores it in a Maildir.  Every message arrives there
# once and intact (dot-stuffing, an 8-bit body, SMTPUTF8, ~300 KiB, two
# recipients in one transaction), both logs agree on each recipient; a
# recipient Postfix does not know (550 5.1.1 at RCPT) is bounced by spoold,
# and the DSN, queued for the sender's domain, is accepted by Postfix in turn.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks
need_postfix

SITE_PORT=$(free_port)
postfix_start site.test "$SITE_PORT"

write_conf "etrn-rate 1000"
sed -i 's/^max-message-size .*/max-message-size 1M/' "$SPOOLD_CONF"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SITE_PORT
    recipients any
}
domain home.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SITE_PORT
    recipients any
}
EOF
start_spoold

# pf_files N - the Maildir files of message N (by its unique Subject)
pf_files() {
	postfix_mail | xargs -r grep -l -x "Subject: t16 message $1"
}

# ---- 20 messages held for site.test ----
for i in $(seq 1 16); do
	case $i in
	3 | 7 | 11 | 15) body="marker t16-$i
.leading dot line $i
..two leading dots $i
.
last line $i" ;;
	*) body="marker t16-$i" ;;
	esac
	sw -t "u$i@site.test" -f a@x.test --header "Subject: t16 message $i" --body "$body"
	[ -n "$(sw_queued)" ] || fail "message $i not accepted: $(cat "$T/swaks.out")"
done
# 17: SMTPUTF8, a UTF-8 recipient; 18: an 8-bit body declared BODY=8BITMIME
python3 - "$SMTP_PORT" <<'PY' || fail "sending messages 17 and 18"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("client.test")
s.sendmail("a@x.test", ["jörg17@site.test"],
    "Subject: t16 message 17\r\n\r\nmarker t16-17\r\n".encode(), mail_options=["SMTPUTF8"])
s.sendmail("a@x.test", ["u18@site.test"],
    ("Subject: t16 message 18\r\nMIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
     "marker t16-18 Gr\u00fc\u00dfe aus K\u00f6ln \u20ac\r\n").encode(), mail_options=["BODY=8BITMIME"])
s.quit()
PY
# 19: ~300 KiB
awk 'BEGIN { for (i = 1; i <= 4000; i++) printf "big line %05d %s\n", i, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"; print "end of big message" }' >"$T/big.txt"
sw -t u19@site.test -f a@x.test --header "Subject: t16 message 19" --body "@$T/big.txt"
[ -n "$(sw_queued)" ] || fail "the big message not accepted: $(tail -n 5 "$T/swaks.out")"
# 20: two recipients in one transaction
sw -t u20@site.test,w20@site.test -f a@x.test --header "Subject: t16 message 20" --body "marker t16-20"
[ -n "$(sw_queued)" ] || fail "message 20 not accepted"
expect_count site.test 20
[ "$(postfix_delivered)" -eq 0 ] || fail "Postfix got mail before the ETRN"
say "20 messages (21 recipients) held for site.test; nothing at the site yet"

# ---- ETRN: all into Postfix's Maildir, once ----
etrn 127.0.0.1 site.test
expect_etrn '^253 2\.0\.0 20 pending messages for node site.test started' "ETRN site.test"
wait_count site.test 0
postfix_wait_delivered 21
for i in $(seq 1 20); do
	n=$(pf_files "$i" | wc -l)
	want=1; [ "$i" -eq 20 ] && want=2
	[ "$n" -eq "$want" ] || fail "message $i is $n times in Postfix's Maildir, expected $want"
	[ "$i" -eq 19 ] || grep -q "^marker t16-$i\( \|\$\)" $(pf_files "$i") ||
		fail "message $i arrived without its body"
done
for i in 3 7 11 15; do
	f=$(pf_files "$i")
	grep -q -x "\.leading dot line $i" "$f" && grep -q -x "\.\.two leading dots $i" "$f" &&
		grep -q -x '\.' "$f" && grep -q -x "last line $i" "$f" ||
		fail "dot-stuffing damaged message $i: $(cat "$f")"
done
f=$(pf_files 17)
grep -q -x 'Delivered-To: jörg17@site.test' "$f" && grep -q '^	by postfix.test (Postfix) with UTF8SMTP id ' "$f" ||
	fail "the SMTPUTF8 message did not arrive over SMTPUTF8 to its UTF-8 recipient: $(cat "$f")"
grep -q -x 'marker t16-18 Grüße aus Köln €' "$(pf_files 18)" || fail "the 8-bit body was altered: $(cat "$(pf_files 18)")"
f=$(pf_files 19)
size=$(wc -c <"$f")
[ "$size" -ge 300000 ] && [ "$size" -le 320000 ] || fail "the big message is $size bytes at the site"
python3 - "$T/big.txt" "$f" <<'PY' || fail "the big message's body differs at the site"
import sys
want, got = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if want in got.split(b"\n\n", 1)[1] else 1)
PY
for r in u20 w20; do
	grep -l -x "Delivered-To: $r@site.test" $(pf_files 20) >/dev/null || fail "message 20 not delivered to $r@site.test"
done
grep -q 'by mx.test (spoold)' "$(pf_files 1)" || fail "spoold's Received: line missing at the site"
grep -q -x 'Return-Path: <a@x.test>' "$(pf_files 1)" || fail "the envelope sender did not arrive"
say "253 20, spoold's queue empty, every message once in Postfix's Maildir: dot lines, UTF-8, 8-bit body and the big one ($size bytes) intact"

# ---- the logs: one line per recipient in each, the same Postfix queue ID ----
rcpts="$(seq -f 'u%g@site.test' 1 16) jörg17@site.test u18@site.test u19@site.test u20@site.test w20@site.test"
[ "$(grep -c ' to=<[^>]*>, relay=\[127\.0\.0\.1\]:'"$SITE_PORT"', .* status=sent (250 ' "$SPOOLD_LOG")" -eq 21 ] ||
	fail "spoold logged $(grep -c 'status=sent' "$SPOOLD_LOG") status=sent lines, expected 21"
[ "$(grep -c 'postfix/virtual\[[0-9]*\]: [0-9A-F]*: to=<.*status=sent (delivered to maildir)' "$PF_LOG")" -eq 21 ] ||
	fail "Postfix logged $(grep -c 'status=sent' "$PF_LOG") deliveries, expected 21"
for r in $rcpts; do
	# spoold's log shows bytes outside ASCII as \xNN
	case $r in jörg17@site.test) lr='j\\xc3\\xb6rg17@site.test' ;; *) lr=$r ;; esac
	line=$(grep " to=<$lr>, relay=\[127\.0\.0\.1\]:$SITE_PORT, .* status=sent (250 " "$SPOOLD_LOG") ||
		fail "no status=sent line in spoold's log for $r"
	[ "$(printf '%s\n' "$line" | wc -l)" -eq 1 ] || fail "spoold logged $r as sent more than once: $line"
	qid=$(printf '%s\n' "$line" | sed -n 's/.*(250 2\.0\.0 Ok: queued as \([0-9A-F]*\))$/\1/p')
	[ -n "$qid" ] || fail "spoold's log line for $r does not carry Postfix's queue ID: $line"
	grep -q "postfix/virtual\[[0-9]*\]: $qid: to=<$r>, relay=virtual, .*status=sent (delivered to maildir)" "$PF_LOG" ||
		fail "Postfix's log has no delivery of $qid to $r"
done
grep -q 'delivery run domain=site.test .*status=' "$SPOOLD_LOG" || fail "no end of the delivery run in spoold's log"
say "spoold logged 21 status=sent lines, one per recipient, each with the queue ID Postfix logged status=sent for"

# ---- a recipient Postfix does not know: 550 5.1.1 at RCPT, a DSN ----
postfix_stop
PF_USERS=good
postfix_start site.test "$SITE_PORT"
sw -t good@site.test,nosuchuser@site.test -f a@home.test --header "Subject: t16 bounce test"
mixed=$(sw_queued)
[ -n "$mixed" ] || fail "the message to good and nosuchuser was not accepted"
etrn 127.0.0.1 site.test
expect_etrn '^253 2\.0\.0 1 pending messages for node site.test started' "ETRN site.test (unknown user)"
wait_count site.test 0
wait_count home.test 1
grep -q "$mixed: to=<nosuchuser@site.test>, .*dsn=5\.1\.1, status=bounced (550 5\.1\.1 <nosuchuser@site.test>: Recipient address rejected: User unknown in virtual mailbox table)" "$SPOOLD_LOG" ||
	fail "no bounce of nosuchuser@site.test with Postfix's 550 5.1.1 in spoold's log"
grep -q "$mixed: to=<good@site.test>, relay=\[127\.0\.0\.1\]:$SITE_PORT, .* status=sent (250 " "$SPOOLD_LOG" ||
	fail "good@site.test was not logged as sent"
grep -q 'reject: RCPT from [^ ]*: 550 5\.1\.1 <nosuchuser@site.test>: Recipient address rejected: User unknown in virtual mailbox table' "$PF_LOG" ||
	fail "Postfix did not log its 550 for nosuchuser@site.test"
postfix_wait_delivered 22
[ "$(find "$PF_MAIL/site.test/good/new" -type f | wc -l)" -eq 1 ] || fail "good@site.test did not get the message"
spoolctl --json show home.test | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert len(m) == 1 and m[0]["sender"] == "" and [r["address"] for r in m[0]["recipients"]] == ["a@home.test"], m
' || fail "home.test does not hold one DSN from <> to a@home.test: $(spoolctl --json show home.test)"
say "550 5.1.1 from Postfix at RCPT: nosuchuser bounced, good delivered, one DSN queued for home.test"

# ---- the DSN goes out too: Postfix, now the site of home.test, takes it ----
postfix_stop
PF_USERS=
postfix_start home.test "$SITE_PORT"
etrn 127.0.0.1 home.test
expect_etrn '^253 2\.0\.0 1 pending messages for node home.test started' "ETRN home.test"
wait_count home.test 0
postfix_wait_delivered 23
f=$(find "$PF_MAIL/home.test/new" -type f)
python3 - "$f" <<'PY' || fail "the DSN Postfix stored is not right: $(cat "$f")"
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.compat32)
assert m["Return-Path"] == "<>", m["Return-Path"]
assert m["Delivered-To"] == "a@home.test", m["Delivered-To"]
assert m.get_content_type() == "multipart/report", m.get_content_type()
parts = m.get_payload()
status = [dict(b.items()) for b in parts[1].get_payload()]
r = status[1]
assert r["Final-Recipient"] == "rfc822; nosuchuser@site.test", r
assert r["Action"] == "failed" and r["Status"] == "5.1.1", r
assert r["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <nosuchuser@site.test>: Recipient address rejected: User unknown"), r
assert len(status) == 2, status
assert "Subject: t16 bounce test" in str(parts[2]), parts[2]
PY
stop_spoold
say "the DSN (from <>, Final-Recipient nosuchuser, Status 5.1.1, Postfix's diagnostic) delivered into Postfix for home.test"
