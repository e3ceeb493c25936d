#!/bin/sh
# t32-etrnclient-both.sh - one etrnclient.conf server block with an ETRN
# domain and an ODMR domain of the same ISP (spoold): etrnclient -n takes
# it and refuses the mistakes such a block invites with file:line; one
# etrnclient -1 run makes both sessions (ETRN on the SMTP port, ODMR on the
# ODMR port, each with its own log line and status) and the site's local
# server (smtp-sink) gets the mail of both domains; the exit status is the
# worse session's, and the other session runs whatever the first did.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need saslpasswd2
need swaks
EC="$top_builddir/etrnclient/etrnclient"
[ -x "$EC" ] || error "$EC is not built"

SINK_PORT=$(free_port)
make_cert
printf 'secret\n' | saslpasswd2 -f "$T/sasldb2" -a spoold -u mx.test -p -c alice ||
	error "saslpasswd2 could not make the test user"
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem" "listen odmr 127.0.0.1:0" \
    "sasl-option sasldb_path $T/sasldb2"
cat >>"$SPOOLD_CONF" <<EOF
domain etrn.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain odmr.test {
    atrn-user  alice
    recipients any
}
domain theirs.test {
    etrn-from  127.0.0.2
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
EOF
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[ -n "$ODMR_PORT" ] || fail "no odmr line in the listen file: $(cat "$T/listen")"
printf 'secret\n' >"$T/pw"
chmod 600 "$T/pw"
printf 'wrong\n' >"$T/badpw"
chmod 600 "$T/badpw"

ec() {	# ec ARG... - etrnclient; output in $T/ec.out, exit status in EC_RC
	EC_RC=0
	"$EC" "$@" >"$T/ec.out" 2>&1 || EC_RC=$?
	if grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/ec.out"; then
		fail "sanitizer report from etrnclient: $(cat "$T/ec.out")"
	fi
}
expect_ec() {	# expect_ec STATUS REGEX WHAT
	[ "$EC_RC" = "$1" ] || fail "$3: etrnclient exited $EC_RC, expected $1:
$(cat "$T/ec.out")"
	grep -E -q -- "$2" "$T/ec.out" || fail "$3: no /$2/ in:
$(cat "$T/ec.out")"
}
queue() {	# queue N DOMAIN
	for _n in $(seq 1 "$1"); do
		sw -t "u$_n@$2" -f a@x.test
		[ -n "$(sw_queued)" ] || fail "message $_n for $2 not accepted"
	done
}
got() {		# got ADDRESS - smtp-sink's dumps for that recipient
	grep -l -F "X-Rcpt-Args: <$1>" "$T"/dump/* 2>/dev/null | wc -l
}
# both_conf ETRN-DOMAIN ETRN-PORT PASSWORD-FILE - a block with both sessions
both_conf() {
	cat >"$T/ec.conf" <<EOF
hostname site.test
lock-dir $T/locks
server 127.0.0.1 {
    etrn          $1
    port etrn     $2
    odmr          odmr.test
    port odmr     $ODMR_PORT
    user          alice
    password-file $3
    tls           verify
    ca            cert.pem
    relay-to      127.0.0.1:$SINK_PORT
}
EOF
}

# ---- etrnclient -n: the block is fine; the mistakes it invites are not ----
both_conf etrn.test "$SMTP_PORT" pw
ec -n -c "$T/ec.conf"; expect_ec 0 'configuration OK' "a block with etrn and odmr"
# bad_conf LINE REGEX WHAT BODY - -n refuses BODY (a server block's lines)
# with REGEX at $T/bad.conf:LINE
bad_conf() {
	printf 'server 127.0.0.1 {\n%s\n}\n' "$4" >"$T/bad.conf"
	ec -n -c "$T/bad.conf"
	expect_ec 78 "^$T/bad.conf:$1: .*$2" "$3"
}
ODMR_AUTH='    user alice
    password-file pw
    relay-to 127.0.0.1:25'
bad_conf 4 'server 127.0.0.1: "port" is ambiguous with both etrn and odmr' "a bare port with both" \
    "    etrn etrn.test
    odmr odmr.test
    port 2525
$ODMR_AUTH"
bad_conf 2 '"method" is for a block of one session' "method with etrn/odmr lines" \
    "    method odmr
    etrn etrn.test
$ODMR_AUTH"
bad_conf 3 '"domains" goes with "method"' "domains with etrn/odmr lines" \
    "    etrn etrn.test
    domains odmr.test
    odmr
$ODMR_AUTH"
bad_conf 3 'odmr.test is both an etrn and an odmr domain \(line 2\)' "a domain pulled both ways" \
    "    etrn odmr.test etrn.test
    odmr odmr.test
$ODMR_AUTH"
bad_conf 3 '"port odmr": the block has no odmr session' "port odmr without odmr" \
    "    etrn etrn.test
    port odmr 366"
bad_conf 3 'odmr needs "user" and "password-file"' "odmr without user" \
    "    etrn etrn.test
    odmr odmr.test
    relay-to 127.0.0.1:25"
bad_conf 2 '"etrn" takes at least 1 argument' "etrn without domains" \
    "    etrn
    odmr odmr.test
$ODMR_AUTH"
bad_conf 3 'port: "imap" is not etrn or odmr' "port with a bad session" \
    "    etrn etrn.test
    port imap 143"
bad_conf 4 '"port etrn" given twice \(first at line 3\)' "port etrn twice" \
    "    etrn etrn.test
    port etrn 25
    port etrn 2525"
bad_conf 3 '"odmr" given twice \(first at line 2\)' "two odmr lines" \
    "    odmr odmr.test
    odmr etrn.test
$ODMR_AUTH"
bad_conf 1 'say "etrn DOMAIN...", "odmr \[DOMAIN...\]" \(or both\), or "method etrn\|odmr"' \
    "a block with no session" "    every 10m"
bad_conf 2 'etrn: "bad_name" is not a domain name' "a bad domain on the etrn line" \
    "    etrn bad_name"
# the one-session spellings are as before
printf 'server 127.0.0.1 {\n    method odmr\n    domains odmr.test\n    port 3666\n%s\n}\n' \
    "$ODMR_AUTH" >"$T/old.conf"
ec -n -c "$T/old.conf"; expect_ec 0 'configuration OK' "method odmr, domains, port"
printf 'server 127.0.0.1 {\n    etrn etrn.test\n    port 2525\n}\n' >"$T/one.conf"
ec -n -c "$T/one.conf"; expect_ec 0 'configuration OK' "a lone etrn line with a bare port"
say "etrnclient -n: a block with etrn and odmr lines is OK; a bare port with both, method or domains mixed in, a domain in both lists, a port for a missing session, odmr without user, etrn without domains, port twice, odmr twice, no session at all: refused with file:line; method/domains/port blocks as before"

# ---- one -1 run: ETRN for etrn.test, ODMR for odmr.test, both at the site ----
sink
queue 2 etrn.test
queue 3 odmr.test
ec -c "$T/ec.conf" -1 -f
expect_ec 0 'server=127\.0\.0\.1 method=etrn domains=etrn\.test outcome="etrn\.test=253" .*status=0' "the ETRN session"
expect_ec 0 'server=127\.0\.0\.1 method=odmr domains=odmr\.test outcome="relayed 3, not relayed 0: odmr\.test=3/0" relayed=3 .*status=0' "the ODMR session"
[ "$(grep -c 'method=' "$T/ec.out")" = 2 ] || fail "not one line per session: $(cat "$T/ec.out")"
grep -n 'method=' "$T/ec.out" | head -n 1 | grep -q 'method=etrn' || fail "ODMR ran before ETRN: $(cat "$T/ec.out")"
wait_count etrn.test 0
wait_count odmr.test 0
for a in u1@etrn.test u2@etrn.test u1@odmr.test u2@odmr.test u3@odmr.test; do
	[ "$(got "$a")" = 1 ] || fail "smtp-sink has $(got "$a") messages for $a, expected 1"
done
grep -q ': etrn node=etrn\.test from unknown\[127\.0\.0\.1\] reply=253' "$SPOOLD_LOG" ||
	fail "spoold did not log the ETRN: $(grep etrn "$SPOOLD_LOG")"
grep -q 'auth ok from unknown\[127.0.0.1\], sasl_method=SCRAM-SHA-256, sasl_username=alice' "$SPOOLD_LOG" ||
	fail "the ODMR session did not authenticate: $(grep auth "$SPOOLD_LOG")"
say "etrnclient -1 on a block with both: an ETRN session on the SMTP port (etrn.test=253, 2 messages delivered by spoold) and then an ODMR session on the ODMR port (3 messages relayed), each logged with status 0; all 5 at the site's smtp-sink, spool empty, exit 0"

# ---- the status is the worse session's; each session runs regardless ----
rm -f "$T"/dump/*
queue 2 odmr.test
both_conf theirs.test "$SMTP_PORT" pw
ec -c "$T/ec.conf" -1 -f
expect_ec 69 'method=etrn domains=theirs\.test outcome="theirs\.test=459" .*status=69' "ETRN refused (459), ODMR fine"
expect_ec 69 'method=odmr .*relayed=2 .*status=0' "ODMR after a refused ETRN"
wait_count odmr.test 0
say "ETRN refused (459, status 69) and ODMR delivering (status 0): both run, exit 69"

queue 1 odmr.test
ec -c "$T/ec.conf" -1
[ "$EC_RC" = 69 ] || fail "from cron: exit $EC_RC, expected 69: $(cat "$T/ec.out")"
[ "$(wc -l <"$T/ec.out")" = 1 ] && grep -q '^etrnclient: server=127.0.0.1 method=etrn .*status=69$' "$T/ec.out" ||
	fail "from cron: not exactly the failed session's line on stderr: $(cat "$T/ec.out")"
wait_count odmr.test 0
say "from cron (-1): only the failed session's line on stderr, exit 69"

both_conf etrn.test 1 badpw
ec -c "$T/ec.conf" -1 -f
expect_ec 77 'method=etrn .*outcome="cannot connect to 127\.0\.0\.1 port 1" .*status=75' "ETRN to a closed port"
expect_ec 77 'method=odmr .*AUTH refused: 535.*status=77' "ODMR with a wrong password"
say "ETRN unreachable (75) and ODMR with a wrong password (77): exit 77, the more serious"

# ---- the lock is the server's: held across both sessions ----
both_conf etrn.test "$SMTP_PORT" pw
mkdir -p "$T/locks"
python3 - "$T/locks/127.0.0.1.lock" "$T/held" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(5)
PY
echo $! >"$T/holder.pid"
_i=0; until [ -f "$T/held" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "no lock holder"; sleep 0.05; done
queue 1 odmr.test
ec -c "$T/ec.conf" -1 -f
expect_ec 75 'method=etrn .*outcome="locked by another run" .*status=75' "ETRN while the lock is held"
expect_ec 75 'method=odmr .*outcome="locked by another run" .*status=75' "ODMR while the lock is held"
stop_pid "$(cat "$T/holder.pid")"; rm -f "$T/holder.pid"
[ "$(domain_count odmr.test)" = 1 ] || fail "a locked-out run moved mail"
say "the server's lock held by another run: both sessions say so, exit 75, nothing moved"
check_sanitizers
stop_spoold
