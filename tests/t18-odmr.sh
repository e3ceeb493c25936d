#!/bin/sh
# t18-odmr.sh - the ODMR provider (RFC 2645) on "listen odmr": fetchmail's
# ODMR client (CRAM-MD5, no STARTTLS) pulls into smtp-sink and Postfix under
# the default require-tls yes with a certificate, and is refused under
# require-tls all; a Python customer (tests/odmr_client.py) checks every
# reply: 530 before AUTH, 530 before STARTTLS under all, 538 for PLAIN and
# LOGIN in clear (not listed before STARTTLS, listed after), 535 and the
# failure limit, 450 for a domain not owned (and
# nothing delivered), 453, 451 while a domain is being delivered, 554 for
# pipelining after ATRN, the turned session still under TLS, a customer that
# drops in DATA or never greets (the mail stays), a 5xx from the customer
# (bounce with a DSN).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need saslpasswd2
need_swaks TLS "Basic AUTH"
CLIENT="$top_srcdir/tests/odmr_client.py"

SINK_PORT=$(free_port)
make_cert
printf 'secret\n' | saslpasswd2 -f "$T/sasldb2" -a spoold -u mx.test -p -c alice ||
	error "saslpasswd2 could not make the test user"
printf 'other\n' | saslpasswd2 -f "$T/sasldb2" -a spoold -u mx.test -p -c bob
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem" "listen odmr 127.0.0.1:0" \
    "sasl-option sasldb_path $T/sasldb2" "timeout smtp-greeting 2s"
cat >>"$SPOOLD_CONF" <<EOF
domain cust.test {
    atrn-user alice
    recipients any
}
domain cust2.test {
    atrn-user alice
    recipients any
}
domain bobs.test {
    atrn-user bob
    recipients any
}
domain home.test {
    etrn-from 127.0.0.1
    recipients any
}
EOF
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[ -n "$ODMR_PORT" ] || fail "no odmr line in the listen file: $(cat "$T/listen")"

# customer ARG... - the Python customer; its transcript in $T/cust.out
customer() {
	CUST_RC=0
	python3 "$CLIENT" 127.0.0.1 "$ODMR_PORT" "$@" >"$T/cust.out" 2>&1 || CUST_RC=$?
}
expect_cust() {
	grep -E -q "$1" "$T/cust.out" || fail "$2: no /$1/ in:
$(cat "$T/cust.out")"
}
queue() {	# queue N DOMAIN [FROM]
	for _n in $(seq 1 "$1"); do
		sw -t "u$_n@$2" -f "${3:-a@x.test}"
		[ -n "$(sw_queued)" ] || fail "message $_n for $2 not accepted"
	done
}

# ---- the greeting and EHLO; ATRN is not on the SMTP port ----
customer --no-auth
expect_cust '^< 220 mx\.test ESMTP spoold on-demand mail relay ready' "ODMR greeting"
expect_cust '^< 250-AUTH .*CRAM-MD5' "EHLO lists AUTH with CRAM-MD5"
expect_cust '^< 250-ATRN' "EHLO lists ATRN"
expect_cust '^< 250.STARTTLS' "EHLO lists STARTTLS"
grep -E '^< 250-AUTH' "$T/cust.out" | grep -q 'PLAIN' && fail "PLAIN offered before TLS"
chat <<'EOF' || fail "ATRN on the SMTP port"
expect ^220
send EHLO c.test\r\n
expect ^250 HELP
send ATRN cust.test\r\n
expect ^502
send AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n
expect ^502
send QUIT\r\n
expect ^221
EOF
say "greeting; EHLO lists AUTH (no PLAIN in clear), ATRN and STARTTLS; ATRN and AUTH get 502 on the SMTP port"

# odmr_clear [all] - a raw session in clear, then STARTTLS: what waits for
# TLS under require-tls yes (the default with a certificate), or under all
odmr_clear() {
	python3 - "$ODMR_PORT" "${1:-yes}" >"$T/raw.out" 2>&1 <<'PY'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
f = s.makefile("rb")
every = sys.argv[2] == "all"
def cmd(line, want):
    if line:
        s.sendall(line.encode() + b"\r\n")
    lines = []
    while True:
        r = f.readline().decode()
        lines.append(r.strip())
        if r[3:4] != "-":
            break
    print(line[:40], "->", " | ".join(lines))
    assert r.startswith(want), (line, r)
    return lines
def mechs(lines):
    return [l[9:].split() for l in lines if l.startswith("250-AUTH ")][0]
cmd("", "220")
cmd("AUTH CRAM-MD5", "503")
clear = mechs(cmd("EHLO c.test", "250"))
assert "CRAM-MD5" in clear and "PLAIN" not in clear and "LOGIN" not in clear, clear
tls_first = "530 5.7.0 Must issue a STARTTLS command first"
# RFC 4954 6: a mechanism that may only be used encrypted gets 538 5.7.11
cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", tls_first if every else "538 5.7.11")
cmd("AUTH LOGIN", tls_first if every else "538 5.7.11")
if every:
    cmd("AUTH CRAM-MD5", tls_first)
    cmd("ATRN cust.test", tls_first)
else:
    cmd("AUTH CRAM-MD5", "334 ")        # no password in clear: it goes on
    cmd("*", "501 5.7.0")
    cmd("ATRN cust.test", "530 5.7.0 Authentication required")
cmd("MAIL FROM:<a@b.test>", "502")
cmd("HELO c.test", "502")
cmd("STARTTLS", "220")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(s); f = s.makefile("rb")
tls = mechs(cmd("EHLO c.test", "250"))
assert "PLAIN" in tls and "LOGIN" in tls and "CRAM-MD5" in tls, tls
cmd("QUIT", "221")
PY
}

# ---- require-tls yes (the default with a certificate): PLAIN and LOGIN
# only after STARTTLS; CRAM-MD5 and SCRAM also in clear ----
odmr_clear || fail "ODMR in clear (require-tls yes): $(cat "$T/raw.out")"
say "require-tls yes (default with a certificate): before STARTTLS EHLO lists AUTH without PLAIN and LOGIN, AUTH PLAIN and LOGIN get 538 5.7.11, CRAM-MD5 goes on (334), ATRN before AUTH 530 Authentication required, MAIL and HELO 502; after STARTTLS PLAIN and LOGIN are listed"

# ---- over TLS: ATRN before AUTH, wrong password, authzid, PLAIN with swaks ----
customer --tls --no-auth --atrn cust.test
expect_cust '^< 530 5\.7\.0 Authentication required' "ATRN before AUTH"
swaks --server "127.0.0.1:$ODMR_PORT" --tls --auth PLAIN --auth-user alice --auth-password secret \
    --ehlo customer.test --quit-after AUTH >"$T/swaks.out" 2>&1 || fail "swaks AUTH PLAIN over TLS: $(cat "$T/swaks.out")"
grep -q '^<~  *235 2\.7\.0' "$T/swaks.out" || fail "swaks AUTH PLAIN over TLS: $(cat "$T/swaks.out")"
customer --tls --mech PLAIN --user alice --password wrong
expect_cust '^< 535 5\.7\.8 ' "wrong password"
for mech in SCRAM-SHA-256 SCRAM-SHA-1; do
	customer --tls --mech $mech --user alice --password secret
	expect_cust '^event: auth 235' "$mech (the client checks the server's signature too)"
done
customer --mech SCRAM-SHA-256 --user alice --password wrong --tls
expect_cust '^event: auth 535' "SCRAM-SHA-256 with a wrong password"
customer --mech SCRAM-SHA-256 --user nosuchuser --password wrong --tls
expect_cust '^< 334 ' "SCRAM-SHA-256 for a user that does not exist gets a challenge too"
expect_cust '^event: auth 535' "SCRAM-SHA-256 for a user that does not exist"
python3 - "$ODMR_PORT" >"$T/raw.out" 2>&1 <<'PY' || fail "authzid and bad base64: $(cat "$T/raw.out")"
import base64, socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
f = s.makefile("rb")
def cmd(line, want):
    if line:
        s.sendall(line.encode() + b"\r\n")
    while True:
        r = f.readline().decode()
        if r[3:4] != "-":
            break
    print(line[:40], "->", r.strip())
    assert r.startswith(want), (line, r)
cmd("", "220")
cmd("EHLO c.test", "250")
cmd("STARTTLS", "220")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(s); f = s.makefile("rb")
cmd("EHLO c.test", "250")
cmd("AUTH PLAIN " + base64.b64encode(b"bob\0alice\0secret").decode(), "535 5.7.8")
cmd("AUTH PLAIN !!!notbase64", "501 5.5.2")
cmd("AUTH CRAM-MD5", "334")
cmd("*", "501 5.7.0")
cmd("AUTH CRAM-MD5", "334")
cmd("A" * 13000, "500 5.5.6")      # RFC 4954 4: 12,288 octets at most
cmd("NOOP", "250")
cmd("AUTH NOSUCHMECH", "504 5.5.4")
cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0secret").decode(), "235 2.7.0")
cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0secret").decode(), "503 5.5.1")
cmd("QUIT", "221")
PY
grep -E -q 'secret|c2VjcmV0|YWxpY2U' "$SPOOLD_LOG" && fail "an AUTH payload or password reached the log"
say "over TLS: 530 before AUTH, swaks AUTH PLAIN 235, SCRAM-SHA-256 and SCRAM-SHA-1 235 (server signature checked), SCRAM for an unknown user looks like a wrong password (334, then 535), wrong password 535, authzid other than the user 535, bad base64 501, * 501, a 13,000-octet response 500, unknown mechanism 504, AUTH twice 503; no payload logged"

# ---- the failure limit: the third failure on a connection is 421 ----
python3 - "$ODMR_PORT" >"$T/raw.out" 2>&1 <<'PY' || fail "AUTH failure limit: $(cat "$T/raw.out")"
import base64, socket, ssl, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 20)
f = s.makefile("rb")
def cmd(line, want):
    if line:
        s.sendall(line.encode() + b"\r\n")
    t = time.time()
    while True:
        r = f.readline().decode()
        if r[3:4] != "-":
            break
    print(line[:30], "->", r.strip(), "%.1fs" % (time.time() - t))
    assert r.startswith(want), (line, r)
    return time.time() - t
cmd("", "220"); cmd("EHLO c.test", "250"); cmd("STARTTLS", "220")
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(s); f = s.makefile("rb")
cmd("EHLO c.test", "250")
bad_user = cmd("AUTH PLAIN " + base64.b64encode(b"\0nosuchuser\0x").decode(), "535")
bad_pass = cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0x").decode(), "535")
assert bad_user >= 0.9 and bad_pass >= 0.9 and abs(bad_user - bad_pass) < 0.5, (bad_user, bad_pass)
cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0y").decode(), "421 4.7.0")
assert f.readline() == b""
PY
say "failed AUTH: answered after the same ~1 s delay for an unknown user and a wrong password; the 3rd failure is 421 and the connection closes"

# ---- ... and per client address: 10 failures in 10 minutes block AUTH ----
python3 - "$ODMR_PORT" >"$T/raw.out" 2>&1 <<'PY' || fail "AUTH failures per address: $(cat "$T/raw.out")"
import base64, socket, ssl, sys
def session(n_bad):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 20, source_address=("127.0.0.3", 0))
    f = s.makefile("rb")
    def cmd(line):
        if line:
            s.sendall(line.encode() + b"\r\n")
        while True:
            r = f.readline().decode()
            if r[3:4] != "-":
                return r
    cmd(""); cmd("EHLO c.test"); cmd("STARTTLS")
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s); f = s.makefile("rb")
    cmd("EHLO c.test")
    replies = [cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0bad").decode()) for _ in range(n_bad)]
    s.close()
    return replies
for i in range(4):
    r = session(2)
    assert all(x.startswith("535") for x in r), (i, r)
r = session(2)       # the 10th failure is answered 421
assert r[0].startswith("535") and r[1].startswith("421 4.7.0"), r
r = session(1)       # and the address stays blocked
assert r[0].startswith("421 4.7.0"), r
PY
say "10 failed AUTHs from one address (over 5 connections): the 10th and every AUTH after it get 421"

# ---- fetchmail's ODMR client (CRAM-MD5; it never sends STARTTLS on ODMR)
# into smtp-sink, with the certificate and the default require-tls yes ----
need fetchmail
grep -q '^require-tls' "$SPOOLD_CONF" && error "require-tls is set: this is not the default"
sink
queue 3 cust.test
queue 2 cust2.test
cat >"$T/fetchmailrc" <<EOF
poll 127.0.0.1 protocol ODMR service $ODMR_PORT auth cram-md5
    user alice password secret fetchdomains cust.test,cust2.test smtphost 127.0.0.1/$SINK_PORT
EOF
chmod 600 "$T/fetchmailrc"
# fetchmail_run - fetchmail on $T/fetchmailrc: the output (-v: both sides of
# the dialogue) in $T/fetchmail.out, the exit status in FM_RC
fetchmail_run() {
	FM_RC=0
	HOME=$T timeout 60 fetchmail -f "$T/fetchmailrc" --nosyslog -v >"$T/fetchmail.out" 2>&1 ||
		FM_RC=$?
}
fetchmail_run
[ "$FM_RC" = 0 ] || fail "fetchmail --protocol ODMR failed (exit $FM_RC): $(tail -20 "$T/fetchmail.out")"
grep -q '> STARTTLS' "$T/fetchmail.out" &&
	fail "fetchmail sent STARTTLS on ODMR: the README's fetchmail recipe says it does not"
grep -q 'ODMR< 250 2\.0\.0 OK now reversing the connection' "$T/fetchmail.out" ||
	fail "fetchmail's ATRN did not turn the connection: $(tail -20 "$T/fetchmail.out")"
wait_count cust.test 0
wait_count cust2.test 0
[ "$(dumped)" -eq 5 ] || fail "smtp-sink got $(dumped) messages through fetchmail, expected 5"
say "fetchmail --protocol ODMR, CRAM-MD5 and no STARTTLS, with a certificate (require-tls yes by default): 5 messages of 2 domains relayed into smtp-sink, spool empty"

# once more into a real Postfix as the site's MTA
PF_PORT_ODMR=$(free_port)
( need_postfix ) && {
	postfix_start cust.test "$PF_PORT_ODMR"
	queue 3 cust.test
	sed -i "s|smtphost 127.0.0.1/$SINK_PORT|smtphost 127.0.0.1/$PF_PORT_ODMR|" "$T/fetchmailrc"
	fetchmail_run
	[ "$FM_RC" = 0 ] ||
		fail "fetchmail --protocol ODMR into Postfix failed (exit $FM_RC): $(tail -20 "$T/fetchmail.out")"
	wait_count cust.test 0
	postfix_wait_delivered 3
	postfix_stop
	say "fetchmail --protocol ODMR into a private Postfix: 3 messages in its Maildir, spool empty"
}

# restart_with LINE - spoold again with LINE as its require-tls
restart_with() {
	sed -i '/^require-tls /d' "$SPOOLD_CONF"
	sed -i "s/^listen odmr/$1\nlisten odmr/" "$SPOOLD_CONF"
	stop_spoold
	start_spoold
	ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
	sed -i "s/ service [0-9]* / service $ODMR_PORT /" "$T/fetchmailrc"
}

# ---- require-tls all: every AUTH and ATRN waits for STARTTLS, so
# fetchmail is refused and its mail stays; a client with TLS gets it ----
restart_with "require-tls all"
odmr_clear all || fail "ODMR in clear (require-tls all): $(cat "$T/raw.out")"
queue 2 cust.test
fetchmail_run
[ "$FM_RC" = 3 ] || fail "fetchmail under require-tls all: exit $FM_RC, expected 3 (AUTHFAIL): $(tail -20 "$T/fetchmail.out")"
grep -q 'ODMR< 530 5\.7\.0 Must issue a STARTTLS command first' "$T/fetchmail.out" ||
	fail "fetchmail under require-tls all: no 530 for its AUTH: $(tail -20 "$T/fetchmail.out")"
[ "$(domain_count cust.test)" = 2 ] || fail "fetchmail refused, yet cust.test has $(domain_count cust.test) messages, expected 2"
mkdir -p "$T/got"
customer --tls --mech CRAM-MD5 --user alice --password secret --atrn cust.test --dir "$T/got"
expect_cust '^event: quit after 2 messages tls=True' "CRAM-MD5 and ATRN after STARTTLS under require-tls all"
wait_count cust.test 0
say "require-tls all: in clear AUTH PLAIN, LOGIN, CRAM-MD5 and ATRN get 530 5.7.0 Must issue a STARTTLS command first; fetchmail's AUTH refused (exit 3, AUTHFAIL) and its mail kept; after STARTTLS CRAM-MD5 and ATRN deliver it"

# ---- require-tls no: PLAIN in clear is still never accepted, CRAM-MD5 is ----
restart_with "require-tls no"
odmr_clear || fail "ODMR in clear (require-tls no): $(cat "$T/raw.out")"
customer --mech PLAIN --user alice --password secret
expect_cust '^< 538 5\.7\.11 ' "AUTH PLAIN before TLS"
say "require-tls no acts as yes: PLAIN and LOGIN in clear 538 and not listed, CRAM-MD5 goes on"

# ---- 450, 453, 554 ----
queue 1 cust.test
queue 1 bobs.test
customer --tls --user alice --password secret --atrn cust.test,bobs.test
expect_cust '^< 450 4\.7\.1 ATRN request refused' "a domain not owned"
sleep 0.3
[ "$(domain_count cust.test)" = 1 ] || fail "a refused ATRN delivered cust.test"
customer --tls --user alice --password secret --atrn cust2.test
expect_cust '^< 453 4\.2\.0 You have no mail' "nothing queued"
customer --tls --user alice --password secret --atrn cust.test --pipeline-after-atrn
expect_cust '^< 554 5\.5\.0 ' "bytes pipelined after ATRN"
[ "$(domain_count cust.test)" = 1 ] || fail "a pipelined ATRN delivered"
say "ATRN with a domain not owned: 450 and nothing delivered; nothing queued: 453; pipelined after ATRN: 554"

# ---- a full ATRN over TLS, no argument = every domain of the identity ----
queue 2 cust2.test
mkdir -p "$T/got"
customer --tls --user alice --password secret --atrn "" --dir "$T/got"
expect_cust '^< 250 2\.0\.0 OK now reversing the connection' "ATRN over TLS"
expect_cust '^event: quit after 3 messages tls=True' "the turned session, still under TLS"
wait_count cust.test 0
wait_count cust2.test 0
grep -Eq ' spoold/odmr\[[0-9]+\]: delivery run domain=cust2?\.test relay=odmr:alice\[127\.0\.0\.1\] domains=2 started, TLS TLS1\.[23]' "$SPOOLD_LOG" ||
	fail "the turned run's log line does not say it runs under TLS: $(grep 'domains=2 started' "$SPOOLD_LOG")"
say "ATRN without argument over TLS: both of alice's domains delivered (3 messages), the turned session still encrypted (and logged so)"

# ---- 451 while the domain is being delivered; a customer that never greets ----
queue 1 cust.test
python3 "$CLIENT" 127.0.0.1 "$ODMR_PORT" --tls --user alice --password secret --atrn cust.test \
    --no-greeting >"$T/silent.out" 2>&1 &
echo $! >"$T/silentcust.pid"
_i=0
until grep -q '^event: atrn 250' "$T/silent.out"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "the silent customer did not get its 250: $(cat "$T/silent.out")"; sleep 0.05
done
customer --tls --user alice --password secret --atrn cust.test
expect_cust '^< 451 4\.3\.0 Unable to process ATRN request now' "a second ATRN for a domain being delivered"
_i=0
until grep -q 'domain=cust.test .*status=incomplete: .*timeout' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no greeting timeout for the silent customer"; sleep 0.05
done
[ "$(domain_count cust.test)" = 1 ] || fail "a customer that never greeted lost the mail"
say "a second ATRN while the domain is being delivered: 451; a customer that never says 220 is given up, the mail stays"

# ---- a customer that drops in DATA; one that refuses a recipient (5xx) ----
customer --tls --user alice --password secret --atrn cust.test --drop-in-data 1
expect_cust '^event: dropping the connection in DATA' "drop in DATA"
_i=0
until grep -q 'domain=cust.test .*status=incomplete' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no incomplete run"; sleep 0.05
done
sleep 0.2
[ "$(domain_count cust.test)" = 1 ] || fail "a drop in DATA lost the mail"
sw -t u9@cust.test -f a@home.test
customer --tls --user alice --password secret --atrn cust.test --reject-rcpt u9@cust.test --dir "$T/got"
expect_cust '^event: quit after ' "the 5xx session"
wait_count cust.test 0
wait_count home.test 1		# the DSN for a@home.test
grep -q 'to=<u9@cust.test>, relay=odmr:alice\[127.0.0.1\], .*status=bounced (550 5.1.1' "$SPOOLD_LOG" ||
	fail "no bounce for the customer's 550"
say "a customer that drops in DATA keeps the mail queued; its 550 bounces with a DSN"
check_sanitizers
stop_spoold
