#!/bin/sh
# t07-python-smtplib.sh - a real client library: several recipients, SMTPUTF8,
# DSN parameters, STARTTLS, and 20 concurrent clients.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

need certtool
make_cert
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem"
start_spoold

# py WHAT - run the Python on stdin with PORT set; fail with its message
py() {
	_what=$1
	shift
	python3 - "$SMTP_PORT" "$@" >"$T/py.out" 2>&1 || fail "$_what: $(cat "$T/py.out")"
}

# ---- send_message with several recipients in two domains ----
py "send_message to several recipients" <<'EOF'
import smtplib, sys
from email.message import EmailMessage
msg = EmailMessage()
msg["From"] = "py@x.test"
msg["To"] = "one@example.test, two@example.test, listed@other.test"
msg["Subject"] = "several"
msg.set_content("hello\n.\nnot the end\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    refused = s.send_message(msg)
    assert refused == {}, refused
EOF
expect_count example.test 1
expect_count other.test 1
spoolctl show example.test | grep -q ' <py@x\.test> one@example\.test two@example\.test$' ||
	fail "send_message: not listed with both example.test recipients: $(spoolctl show example.test)"
say "send_message to 3 recipients in 2 domains"
fds_baseline

# ---- SMTPUTF8 ----
py "SMTPUTF8 with a UTF-8 local part" <<'EOF'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.ehlo("client.test")
    assert s.has_extn("smtputf8"), s.esmtp_features
    body = "From: jörg@x.test\r\nSubject: grüße\r\n\r\nUTF-8 body\r\n".encode()
    refused = s.sendmail("jörg@x.test", ["üser@example.test"], body, mail_options=["SMTPUTF8"])
    assert refused == {}, refused
EOF
expect_count example.test 2
spoolctl --json show example.test | python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert any([x["address"] for x in r["recipients"]] == ["üser@example.test"] and r["sender"] == "jörg@x.test" for r in rows), rows
' || fail "SMTPUTF8 message not listed with its UTF-8 sender and recipient: $(spoolctl --json show example.test)"
say "SMTPUTF8: UTF-8 sender and recipient accepted and stored"

py "UTF-8 address without SMTPUTF8" <<'EOF'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.ehlo("client.test")
    s.command_encoding = "utf-8"      # send the bytes smtplib would refuse to
    code, msg = s.mail("plain@x.test")
    assert code == 250, (code, msg)
    code, msg = s.rcpt("üser@example.test")
    assert code == 553 and msg.startswith(b"5.6.7"), ("RCPT", code, msg)
    s.rset()
    s.command_encoding = "utf-8"      # rset() puts it back to ascii
    code, msg = s.mail("jörg@x.test")
    assert code == 553 and msg.startswith(b"5.6.7"), ("MAIL", code, msg)
    code, msg = s.noop()
    assert code == 250, (code, msg)
EOF
expect_count example.test 2
say "UTF-8 address without SMTPUTF8: 553 5.6.7 at MAIL and RCPT"

# ---- DSN parameters (RFC 3461) ----
py "DSN parameters" <<'EOF'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.ehlo("client.test")
    assert s.has_extn("dsn"), s.esmtp_features
    refused = s.sendmail("dsn@x.test", ["user+x@example.test", "listed@other.test"],
        b"Subject: dsn\r\n\r\nbody\r\n",
        mail_options=["RET=HDRS", "ENVID=abc"],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;user+2Bx@example.test"])
    assert refused == {}, refused
    refused = s.sendmail("dsn@x.test", ["never@example.test"], b"Subject: dsn\r\n\r\nbody\r\n",
        mail_options=["RET=FULL"], rcpt_options=["NOTIFY=NEVER"])
    assert refused == {}, refused
EOF
expect_count example.test 4
expect_count other.test 2
say "DSN: RET, ENVID, NOTIFY, ORCPT accepted"

# ---- STARTTLS ----
py "starttls" <<'EOF'
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.ehlo("client.test")
    assert s.has_extn("starttls"), s.esmtp_features
    code, msg = s.starttls(context=ctx)
    assert code == 220, (code, msg)
    s.ehlo("client.test")
    assert not s.has_extn("starttls"), "STARTTLS still offered inside TLS"
    refused = s.sendmail("tls@x.test", ["tls@example.test"], b"Subject: tls\r\n\r\nover TLS\r\n")
    assert refused == {}, refused
EOF
expect_count example.test 5
say "starttls() with an unverified context delivers"
stored=5

# ---- 20 concurrent clients, 10 messages each ----
py "20 concurrent clients" <<'EOF'
import smtplib, sys, threading
port = int(sys.argv[1])
errors = []
def client(n):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            for i in range(10):
                refused = s.sendmail("c%d@x.test" % n, ["conc@example.test"],
                    b"Subject: %d.%d\r\n\r\n" % (n, i) + b"line\r\n" * (i * 50 + 1))
                if refused:
                    errors.append((n, i, refused))
    except Exception as e:
        errors.append((n, repr(e)))
threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
EOF
n=$(spoolctl show example.test | grep -c ' conc@example\.test$' || true)
[ "$n" -eq 200 ] || fail "20 clients x 10 messages: $n stored, expected 200"
expect_count example.test $((stored + 200))
say "20 concurrent clients x 10 messages: exactly 200 stored"

fds_unchanged "after the smtplib sessions"
say "no descriptor leaked or closed by mistake"

stop_spoold
exit 0
