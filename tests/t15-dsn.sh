#!/bin/sh
# t15-dsn.sh - bounces (RFC 3461, 3464): a site that refuses a recipient for
# good (5xx at RCPT or after the data) makes spoold remove it and queue one
# DSN to the sender in the same transaction.  The sender's domain is spooled
# here too, so the DSN is delivered by ETRN into smtp-sink and read there,
# field by field, with Python's email parser.  No DSN for <>, none when
# NOTIFY does not ask for it; RET=FULL returns the message.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink

SINK_PORT=$(free_port)
sink
write_conf "etrn-rate 1000"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain home.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
EOF
start_spoold

# send FROM TO[,TO...] MAIL-OPTS RCPT-OPTS - one message through smtplib
send() {
	python3 - "$SMTP_PORT" "$@" <<'PY' || fail "sending to spoold: $*"
import smtplib, sys
port, frm, to, mopts, ropts = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4], sys.argv[5]
msg = "Subject: dsn test\r\nMessage-ID: <t15@home.test>\r\n\r\nthe body of the message\r\n"
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.ehlo("home.test")
s.sendmail(frm, to, msg, mail_options=mopts.split(), rcpt_options=ropts.split())
s.quit()
PY
}

# bounce_run SINK-OPTION... - deliver site.test into a sink that refuses,
# then wait until site.test is empty (every recipient bounced)
bounce_run() {
	sink "$@"
	etrn 127.0.0.1 site.test
	expect_etrn '^253 ' "ETRN site.test"
	wait_count site.test 0
}

# dsn_check WHAT PYTHON - deliver home.test into a clean sink and run the
# checks in PYTHON on the one DSN that arrived (as `m`, with `status` the
# delivery-status blocks and `dump` the raw file)
dsn_check() {
	sink
	rm -f "$T"/dump/*
	etrn 127.0.0.1 home.test
	wait_count home.test 0
	[ "$(dumped)" -eq 1 ] || fail "$1: $(dumped) messages reached home.test, expected one DSN"
	python3 - "$T"/dump/* "$2" <<'PY' || fail "$1: the DSN is not right: $(cat "$T"/dump/*)"
import email, email.policy, sys
raw = open(sys.argv[1], "rb").read()	# smtp-sink: its X- lines, then the message
dump = raw.decode("utf-8", "replace")
m = email.message_from_bytes(raw, policy=email.policy.compat32)
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = m.get_payload()
assert [p.get_content_type() for p in parts][:2] == ["text/plain", "message/delivery-status"], \
    [p.get_content_type() for p in parts]
status = [dict(b.items()) for b in parts[1].get_payload()]
exec(sys.argv[2])
PY
}

# ---- DSN parameters go on to a site that offers DSN (smtp-sink does) ----
send a@home.test ok@site.test,plain@site.test "RET=FULL ENVID=id+2Bx" "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;first+2Bx@site.test"
sink
rm -f "$T"/dump/*
etrn 127.0.0.1 site.test
wait_count site.test 0
f=$(ls "$T"/dump/*)
grep -q '^X-Mail-Args: <a@home.test> .*RET=FULL ENVID=id+2Bx' "$f" || fail "RET/ENVID not passed on: $(grep X- "$f")"
grep -q '^X-Rcpt-Args: <ok@site.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;first+2Bx@site.test' "$f" ||
	fail "NOTIFY/ORCPT not passed on: $(grep X- "$f")"
say "RET, ENVID, NOTIFY and ORCPT are passed on to a site that offers DSN (xtext re-encoded)"

# ---- 5xx at RCPT: one DSN for the two refused recipients ----
send a@home.test r1@site.test,r2@site.test "RET=HDRS ENVID=env+2Bone" "NOTIFY=FAILURE ORCPT=rfc822;orig@site.test"
bounce_run -f RCPT
grep -q 'to=<r1@site.test>, .*dsn=5\.[0-9.]*, status=bounced (5' "$SPOOLD_LOG" || fail "no bounce log line for r1"
grep -q 'sender non-delivery notification: ' "$SPOOLD_LOG" || fail "no DSN log line"
grep -q 'delivery run domain=site.test .* bounced=2 ' "$SPOOLD_LOG" || fail "the run does not count 2 bounces"
dsn_check "5xx at RCPT" '
assert m["X-Mail-Args"].split()[0] == "<>", "DSN not sent from <>: " + m["X-Mail-Args"]
assert m["To"] == "<a@home.test>" and m["From"].startswith("Mail Delivery System <MAILER-DAEMON@mx.test>"), m["To"]
assert m["Auto-Submitted"] == "auto-replied"
head = status[0]
assert head["Reporting-MTA"] == "dns; mx.test", head
assert head["Original-Envelope-Id"] == "env+2Bone", head
assert "Arrival-Date" in head
rcpts = status[1:]
assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; r1@site.test", "rfc822; r2@site.test"], rcpts
for r in rcpts:
    assert r["Original-Recipient"] == "rfc822; orig@site.test", r
    assert r["Action"] == "failed", r
    assert r["Status"].startswith("5."), r
    assert r["Remote-MTA"] == "dns; [127.0.0.1]", r
    assert r["Diagnostic-Code"].startswith("smtp; 5"), r
assert parts[2].get_content_type() == "text/rfc822-headers"
ret = parts[2].get_payload()
assert "Subject: dsn test" in ret and "the body" not in ret, ret
'
say "5xx at RCPT: both recipients bounced with one DSN from <>, fields per RFC 3464, headers returned"

# ---- 5xx after the data, RET=FULL: the whole message comes back ----
send a@home.test d1@site.test "RET=FULL" ""
bounce_run -f .
dsn_check "5xx after the data" '
r = status[1]
assert r["Final-Recipient"] == "rfc822; d1@site.test" and r["Action"] == "failed", r
assert "Original-Recipient" not in r and "Original-Envelope-Id" not in status[0], status
assert parts[2].get_content_type() == "message/rfc822", parts[2].get_content_type()
inner = parts[2].get_payload()[0]
assert inner["Subject"] == "dsn test" and "the body of the message" in inner.get_payload(), inner
'
say "5xx after the data with RET=FULL: bounced, the DSN returns the whole message"

# ---- 5xx to the DATA command itself ----
send a@home.test dd@site.test "" ""
bounce_run -f DATA
grep -q 'to=<dd@site.test>, .*status=bounced (5' "$SPOOLD_LOG" || fail "no bounce for a 5xx to DATA"
dsn_check "5xx to DATA" '
assert status[1]["Final-Recipient"] == "rfc822; dd@site.test" and status[1]["Action"] == "failed", status
'
say "5xx to the DATA command: bounced with a DSN"

# ---- no DSN: sender <>, NOTIFY=NEVER, NOTIFY=SUCCESS only ----
send "" n1@site.test "" ""
send a@home.test n2@site.test "" "NOTIFY=NEVER"
send a@home.test n3@site.test "" "NOTIFY=SUCCESS,DELAY"
bounce_run -f RCPT
[ "$(domain_count home.test)" = 0 ] || fail "a DSN was queued for <>, NOTIFY=NEVER or NOTIFY=SUCCESS,DELAY"
for r in n1 n2 n3; do
	grep -q "to=<$r@site.test>, .*status=bounced" "$SPOOLD_LOG" || fail "$r@site.test not logged as bounced"
done
say "no DSN for mail from <>, with NOTIFY=NEVER or with NOTIFY=SUCCESS,DELAY (the recipients still leave)"

# ---- spoolctl bounce: the postmaster returns a message ----
send a@home.test p1@site.test,p2@site.test "" ""
id=$(spoolctl show site.test | awk 'NR > 1 && $1 ~ /^[0-9a-f]+$/ { print $1; exit }')
[ -n "$id" ] || fail "no queue id in spoolctl show: $(spoolctl show site.test)"
out=$(spoolctl bounce "$id") || fail "spoolctl bounce $id: $out"
case $out in "250 $id: 2 recipients bounced") ;; *) fail "spoolctl bounce said: $out" ;; esac
expect_count site.test 0
dsn_check "spoolctl bounce" '
assert [r["Final-Recipient"] for r in status[1:]] == ["rfc822; p1@site.test", "rfc822; p2@site.test"], status
r = status[1]
assert r["Diagnostic-Code"] == "x-spoold; 550 5.0.0 returned to the sender by the postmaster", r
assert "Remote-MTA" not in r and r["Status"] == "5.0.0", r
'
rc=0; out=$(spoolctl bounce "$id") || rc=$?
[ $rc -eq 69 ] && case $out in "550 $id: no such message") true ;; *) false ;; esac ||
	fail "spoolctl bounce of a gone message: status $rc, $out"
rc=0; out=$(spoolctl bounce "../x") || rc=$?
[ $rc -eq 69 ] && case $out in "501 "*) true ;; *) false ;; esac ||
	fail "spoolctl bounce with a bad id: status $rc, $out"
say "spoolctl bounce ID: 250, the recipients leave, the DSN says who decided; 550 when gone, 501 for a bad id"

# ---- a DSN survives a restart: it is stored, not held in memory ----
send a@home.test k1@site.test "" ""
bounce_run -f RCPT
wait_count home.test 1
stop_spoold
start_spoold
dsn_check "after a restart" '
assert status[1]["Final-Recipient"] == "rfc822; k1@site.test", status
'
check_sanitizers
stop_spoold
say "the DSN is in the spool and delivered after a restart"
