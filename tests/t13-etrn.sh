#!/bin/sh
# t13-etrn.sh - ETRN (RFC 1985) and delivery runs, with Postfix's smtp-sink as
# the site's MTA: the mail arrives once, only an allowed address can start a
# run, replies follow RFC 1985, peers that refuse or drop keep the mail
# queued, concurrent ETRNs share one run, and fetchmail's ETRN client works.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks
need_sink

SINK_PORT=$(free_port)

sink
SILENT_PORT=$(free_port)
write_conf "etrn-rate 1000" "timeout smtp-greeting 2s"
cat >>"$SPOOLD_CONF" <<EOF
domain silent.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SILENT_PORT
    recipients any
}
domain site.test {
    etrn-from  127.0.0.1/32
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain a.site.test {
    etrn-from  127.0.0.1
    deliver-to requester:$SINK_PORT
    recipients any
}
domain notsite.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain noroute.test {
    etrn-from  127.0.0.1
    recipients any
}
queue sites site.test a.site.test
EOF
start_spoold

# ---- EHLO, 251, 253, delivery ----
etrn 127.0.0.1 site.test
expect_etrn '^251 2\.0\.0 OK no messages waiting for node site.test' "nothing queued"
for i in 1 2 3 4 5; do
	sw -t "u$i@site.test" -f a@x.test --body "message $i
.a line with a leading dot"
	[ -n "$(sw_queued)" ] || fail "message $i not accepted"
done
sw -t b@a.site.test -f a@x.test
sw -t c@notsite.test -f a@x.test
etrn 127.0.0.1 site.test
expect_etrn '^253 2\.0\.0 5 pending messages for node site.test started' "ETRN site.test"
wait_count site.test 0
[ "$(dumped)" -eq 5 ] || fail "the site got $(dumped) messages, expected 5"
grep -l '^X-Rcpt-Args: <u3@site.test>' "$T"/dump/* >/dev/null || fail "u3 did not arrive"
grep -q '^\.a line with a leading dot$' "$(grep -l '^X-Rcpt-Args: <u3@site.test>' "$T"/dump/*)" ||
	fail "dot-stuffing lost the leading dot"
grep -q 'by mx.test (spoold)' "$(ls "$T"/dump/* | head -n 1)" || fail "spoold's Received: line missing"
grep -q 'to=<u1@site.test>, relay=\[127.0.0.1\]:'"$SINK_PORT"', .*status=sent (250 ' "$SPOOLD_LOG" ||
	fail "no per-recipient log line"
say "ETRN site.test: 253 5, all five at the site, dot-stuffing intact, logged per recipient"

# ---- @domain: subdomains on label boundaries only ----
etrn 127.0.0.1 @site.test
expect_etrn '^253 2\.0\.0 1 pending messages for node @site.test started' "ETRN @site.test"
wait_count a.site.test 0
[ "$(domain_count notsite.test)" = 1 ] || fail "ETRN @site.test delivered notsite.test"
grep -q 'domain=notsite.test' "$SPOOLD_LOG" && fail "a run started for notsite.test"
say "ETRN @site.test: a.site.test (deliver-to requester) delivered, notsite.test untouched"

# ---- #queue: a named group of domains ----
sw -t q1@site.test -f a@x.test
sw -t q2@a.site.test -f a@x.test
etrn 127.0.0.2 "#sites"
expect_etrn '^459 4\.7\.1 Node #sites not allowed' "ETRN #sites from 127.0.0.2"
etrn 127.0.0.1 "#Sites"
expect_etrn '^253 2\.0\.0 2 pending messages for node #sites started' "ETRN #sites"
wait_count site.test 0
wait_count a.site.test 0
say "ETRN #sites (queue sites site.test a.site.test): both domains delivered; 459 for a stranger"

# ---- refusals ----
sw -t late@site.test -f a@x.test
etrn 127.0.0.2 site.test unknown.test
expect_etrn '^459 4\.7\.1 Node site.test not allowed' "ETRN from 127.0.0.2"
expect_etrn '^459 4\.7\.1 Node unknown.test not allowed' "unknown domain"
sleep 0.5
[ "$(domain_count site.test)" = 1 ] || fail "a refused ETRN moved mail"
etrn 127.0.0.1 "" "../../etc/passwd" "a b" "#nosuchqueue" noroute.test
expect_etrn '^500 ' "ETRN without a node"
expect_etrn '^501 ' "hostile ETRN argument"
expect_etrn '^459 4\.7\.1 Node #nosuchqueue not allowed' "unknown #queue"
sw -t x@noroute.test -f a@x.test
etrn 127.0.0.1 noroute.test
expect_etrn '^458 4\.3\.0 Unable to queue messages for node noroute.test: no deliver-to route' "no route"
chat <<'EOF' || fail "ETRN inside a transaction"
expect ^220
send EHLO c.test\r\n
expect ^250 HELP
send MAIL FROM:<a@x.test>\r\n
expect ^250
send ETRN site.test\r\n
expect ^503
send QUIT\r\n
expect ^221
EOF
say "459 from 127.0.0.2 and for unknown names (nothing moves), 500, 501, 458 without a route, 503 in a transaction"

# ---- a site that refuses or drops: the mail stays ----
sink -r RCPT
etrn 127.0.0.1 site.test
expect_etrn '^253 2\.0\.0 1 ' "ETRN to a refusing site"
_i=0
until grep -q 'to=<late@site.test>, .*status=deferred (450 ' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no deferral logged for a 4xx at RCPT"; sleep 0.05
done
[ "$(domain_count site.test)" = 1 ] || fail "a recipient refused with 4xx left the spool"
_i=0
until spoolctl show site.test | grep -E -q '^    late@site.test: 1 attempt, next .*, last: 450 '; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "spoolctl show has no attempt and reply for late@site.test:
$(spoolctl show site.test)"; sleep 0.05
done
spoolctl --json show site.test | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]["recipients"][0]; sys.exit(0 if r["attempts"]==1 and r["last_reply"].startswith("450") else r)' ||
	fail "spoolctl --json show: no attempts/last_reply"
sink -q .
etrn 127.0.0.1 site.test
_i=0
until grep -q 'domain=site.test .*status=incomplete: connection lost in CLIENT_EOM' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no incomplete run logged for a drop after the dot"; sleep 0.05
done
[ "$(domain_count site.test)" = 1 ] || fail "a message whose 250 never came left the spool"
stop_pid "$(cat "$T/sink.pid")"; rm -f "$T/sink.pid"
etrn 127.0.0.1 site.test
_i=0
until spoolctl show site.test | grep -E -q "^# last attempt .* failed \(3 in a row\): connect to \[127\.0\.0\.1\]:$SINK_PORT: .*refused"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "the connection failure is not in spoolctl show:
$(spoolctl show site.test)"; sleep 0.05
done
spoolctl --json list | python3 -c '
import json, sys
d = [x for x in json.load(sys.stdin) if x["domain"] == "site.test"][0]
sys.exit(0 if d["failures"] == 3 and "refused" in d["last_error"] else d)' || fail "spoolctl --json list: no failures/last_error"
spoolctl show site.test | grep -q '^# next attempt: when the site asks (ETRN, ATRN or spoolctl flush)$' ||
	fail "a mode hold domain after 3 failures does not say it waits for the site: $(spoolctl show site.test)"
spoolctl --json list | python3 -c '
import json, sys
d = [x for x in json.load(sys.stdin) if x["domain"] == "site.test"][0]
sys.exit(0 if d["next_attempt"] is None else d)' || fail "spoolctl --json list: a mode hold domain has a next_attempt"
[ "$(domain_count site.test)" = 1 ] || fail "a connection failure moved mail"
say "4xx at RCPT, a drop after the dot, a site that is down: the message stays queued; spoolctl shows why"

# a site that accepts the connection and never says 220: timeout smtp-greeting
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$SILENT_PORT" >"$T/silent.log" 2>&1 &
echo $! >"$T/silent.pid"
_i=0	# listening before the ETRN (on a busy machine python takes a while)
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$SILENT_PORT),1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the silent site did not start"; sleep 0.05
done
sw -t s1@silent.test -f a@x.test
etrn 127.0.0.1 silent.test
expect_etrn '^253 2\.0\.0 1 ' "ETRN silent.test"
sleep 1.5
spoolctl show silent.test | grep -q '^# last attempt' && fail "gave up on a silent site before its greeting timeout"
_i=0
until spoolctl show silent.test | grep -q "^# last attempt .* failed (1 in a row): \[127.0.0.1\]:$SILENT_PORT: .*timeout"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no greeting timeout recorded: $(spoolctl show silent.test)"; sleep 0.05
done
[ "$(domain_count silent.test)" = 1 ] || fail "a site that never greeted lost the mail"
stop_pid "$(cat "$T/silent.pid")"; rm -f "$T/silent.pid"
say "timeout smtp-greeting 2s: a site that never says 220 is given up after 2 s, the mail stays"

# ---- spoolctl flush: the postmaster starts a run without ETRN ----
sink
sw -t flushed@site.test -f a@x.test	# and late@site.test is still queued
out=$(spoolctl flush site.test) || fail "spoolctl flush site.test: $out"
case $out in "253 2 messages for site.test: delivery started") ;; *) fail "spoolctl flush said: $out" ;; esac
wait_count site.test 0
_i=0
until spoolctl show site.test | grep -q "^# last attempt .*: ok$"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "a good session is not shown: $(spoolctl show site.test)"; sleep 0.05
done
out=$(spoolctl flush Site.Test.) || fail "spoolctl flush with nothing queued: $out"
case $out in "251 no messages waiting for site.test") ;; *) fail "spoolctl flush (empty) said: $out" ;; esac
sw -t r@a.site.test -f a@x.test
rc=0; out=$(spoolctl flush a.site.test) || rc=$?
[ $rc -eq 75 ] && case $out in *"deliver-to requester needs an ETRN"*) true ;; *) false ;; esac ||
	fail "spoolctl flush of a requester-routed domain: status $rc, $out"
rc=0; out=$(spoolctl flush nosuch.test) || rc=$?
[ $rc -eq 69 ] || fail "spoolctl flush of an unknown domain: status $rc, $out"
etrn 127.0.0.1 a.site.test
wait_count a.site.test 0
say "spoolctl flush: 253 and delivered, 251 when empty, 75 for a requester route, 69 for an unknown domain"

# ---- 50 concurrent ETRNs: one run, each message once ----
sink
rm -f "$T"/dump/*
for i in $(seq 1 20); do sw -t "c$i@site.test" -f a@x.test; done
runs_before=$(grep -c 'delivery run domain=site.test .* started' "$SPOOLD_LOG")
python3 - "$SMTP_PORT" <<'PY' || fail "concurrent ETRNs"
import smtplib, sys, threading
port = int(sys.argv[1])
codes = []
def one():
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.ehlo("site.test")
    codes.append(s.docmd("ETRN", "site.test")[0])
    s.quit()
ts = [threading.Thread(target=one) for _ in range(50)]
[t.start() for t in ts]
[t.join() for t in ts]
bad = [c for c in codes if c not in (251, 253)]
sys.exit("unexpected replies %r" % bad if bad or len(codes) != 50 else 0)
PY
wait_count site.test 0
runs=$(( $(grep -c 'delivery run domain=site.test .* started' "$SPOOLD_LOG") - runs_before ))
[ "$runs" -ge 1 ] || fail "no delivery run for 50 ETRNs"
for i in $(seq 1 20); do
	n=$(grep -l "^X-Rcpt-Args: <c$i@site.test>" "$T"/dump/* | wc -l)
	[ "$n" -eq 1 ] || fail "c$i@site.test arrived $n times"
done
say "50 concurrent ETRNs: $runs run(s), each of the 20 messages exactly once at the site"

# ---- fetchmail, the common ETRN client ----
if command -v fetchmail >/dev/null 2>&1; then
	sw -t f1@site.test -f a@x.test
	sw -t f2@a.site.test -f a@x.test
	cat >"$T/fetchmailrc" <<EOF
poll 127.0.0.1 protocol ETRN service $SMTP_PORT
    fetchdomains site.test,a.site.test
EOF
	chmod 600 "$T/fetchmailrc"
	HOME=$T fetchmail -f "$T/fetchmailrc" --nosyslog -v >"$T/fetchmail.out" 2>&1 || true
	grep -q '253 2.0.0 1 pending messages for node site.test' "$T/fetchmail.out" ||
		fail "fetchmail's ETRN for site.test: $(cat "$T/fetchmail.out")"
	grep -q 'a.site.test' "$T/fetchmail.out" || fail "fetchmail did not ask for a.site.test"
	wait_count site.test 0
	wait_count a.site.test 0
	say "fetchmail --protocol ETRN: both domains delivered"
else
	say "fetchmail not installed: its ETRN client not tested"
fi
stop_spoold

# ---- ETRN rate limit per client address ----
sed -i 's/^etrn-rate 1000$/etrn-rate 3/' "$SPOOLD_CONF"
start_spoold
etrn 127.0.0.1 site.test site.test site.test site.test
[ "$(grep -c '^251 ' "$T/etrn.out")" -eq 3 ] || fail "the first 3 ETRNs: $(cat "$T/etrn.out")"
expect_etrn '^458 4\.7\.0 Unable to queue messages for node site.test: too many ETRN requests' "the 4th ETRN in a minute"
etrn 127.0.0.2 site.test
expect_etrn '^459 ' "another address is not limited by the first one's count"
stop_spoold
say "etrn-rate 3: the 4th ETRN within a minute gets 458"

# ---- spoold to spoold: STARTTLS when the site offers it; tls require refused ----
make_cert
sed -i 's/^etrn-rate 3$/etrn-rate 1000/' "$SPOOLD_CONF"
mkdir -p "$T/site"
cat >"$T/site/spoold.conf" <<EOF
hostname site.test
listen smtp 127.0.0.1:0
datadir $T/site/spool
tls-cert $T/cert.pem
tls-key $T/key.pem
domain tls.test {
    recipients $T/site/users
}
domain strict.test {
    recipients any
}
domain verify.test {
    recipients any
}
EOF
printf 't1@tls.test\ngood@tls.test\n' >"$T/site/users"
"$SPOOLD" -c "$T/site/spoold.conf" -f --listen-file "$T/site/listen" >"$T/site.log" 2>&1 &
echo $! >"$T/site.pid"
_i=0
until [ -s "$T/site/listen" ]; do _i=$((_i + 1)); [ $_i -le 200 ] || error "site spoold did not start"; sleep 0.05; done
SITE_PORT=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/site/listen")
cat >>"$SPOOLD_CONF" <<EOF
domain tls.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SITE_PORT
    recipients any
}
domain strict.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SITE_PORT
    tls        require
    recipients any
}
domain verify.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SITE_PORT
    tls        verify
    recipients any
}
domain nossl.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    tls        require
    recipients any
}
tls-ca $T/cert.pem
EOF
start_spoold
sw -t t1@tls.test -f a@x.test
sw -t s1@strict.test -f a@x.test
sw -t v1@verify.test -f a@x.test
etrn 127.0.0.1 tls.test strict.test verify.test
expect_etrn '^253 2\.0\.0 1 pending messages for node tls.test' "ETRN tls.test"
expect_etrn '^253 2\.0\.0 1 pending messages for node strict.test' "ETRN strict.test"
expect_etrn '^253 2\.0\.0 1 pending messages for node verify.test' "ETRN verify.test"
wait_count tls.test 0
wait_count strict.test 0
wait_count verify.test 0
for d in tls strict verify; do
	"$SPOOLCTL" -c "$T/site/spoold.conf" list | awk -v d=$d.test '$1 == d { n = $2 } END { exit n == 1 ? 0 : 1 }' ||
		fail "the message for $d.test did not arrive at the site spoold"
done
[ "$(grep -c 'TLS connection established from unknown\[127.0.0.1\]' "$T/site.log")" -ge 3 ] ||
	fail "delivery to the site did not use STARTTLS each time"

# tls require against a site without STARTTLS (smtp-sink): nothing in clear
sink
sw -t n1@nossl.test -f a@x.test
etrn 127.0.0.1 nossl.test
_i=0
until spoolctl show nossl.test | grep -q "^# last attempt .* failed (1 in a row): .*TLS is required and the peer does not offer STARTTLS"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "tls require without STARTTLS: $(spoolctl show nossl.test)"; sleep 0.05
done
[ "$(domain_count nossl.test)" = 1 ] || fail "tls require: sent in clear"
grep -q 'MAIL FROM' "$T/sink.log" && fail "tls require: a MAIL command reached the sink"

# tls verify against a certificate the CA file does not vouch for
stop_spoold
make_cert other
sed -i "s|^tls-ca .*|tls-ca $T/other.pem|" "$SPOOLD_CONF"
start_spoold
sw -t v2@verify.test -f a@x.test
etrn 127.0.0.1 verify.test
_i=0
until spoolctl show verify.test | grep -q "^# last attempt .* failed (1 in a row): .*TLS certificate verification: .*NOT trusted"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "tls verify with an untrusted certificate: $(spoolctl show verify.test)"; sleep 0.05
done
[ "$(domain_count verify.test)" = 1 ] || fail "tls verify: delivered to an untrusted site"
sed -i "s|^tls-ca .*|tls-ca $T/cert.pem|" "$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"

# one message, two recipients: the site takes one and refuses the other (550)
sw -t good@tls.test,bad@tls.test -f a@x.test
mixed=$(sw_queued)
etrn 127.0.0.1 tls.test
_i=0
until grep -q "$mixed: to=<bad@tls.test>, .*dsn=5\.1\.1, status=bounced (550 5\.1\.1" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "no bounce logged for bad@tls.test"; sleep 0.05
done
wait_count tls.test 0
# the DSN to a@x.test is queued (for x.test, which has no MX here, so it
# may be gone again at once: the log says it was made, not the count)
_i=0
until grep -q "$mixed: sender non-delivery notification: [0-9a-f]\{16\}" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "no DSN queued for bad@tls.test's sender"; sleep 0.05
done
"$SPOOLCTL" -c "$T/site/spoold.conf" list | awk '$1 == "tls.test" { n = $2 } END { exit n == 2 ? 0 : 1 }' ||
	fail "good@tls.test did not arrive at the site"
stop_spoold
say "spoold to spoold: STARTTLS when offered (tls may), required (tls require) and verified against tls-ca (tls verify); a site without STARTTLS or with an untrusted certificate gets nothing; of two recipients one arrived, the other (550) bounced with a DSN queued for x.test"
