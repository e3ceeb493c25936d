#!/bin/sh
# t19-etrnclient.sh - etrnclient against spoold (ETRN and ODMR), against a
# real Postfix as an ETRN server (fast_flush_domains), relaying ODMR mail
# into smtp-sink, an LMTP listener and (when the local MTA is down) nowhere:
# exit statuses, per-domain outcomes, the lock, the daemon's schedule, the
# password file check, TLS require without STARTTLS (no AUTH sent) and
# verify against a CA file.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need saslpasswd2
need swaks
EC="$top_builddir/etrnclient/etrnclient"
[ -x "$EC" ] || error "$EC is not built"
LMTP_SINK="$top_srcdir/tests/lmtp_sink.py"

SINK_PORT=$(free_port)
make_cert
printf 'secret\n' | saslpasswd2 -f "$T/sasldb2" -a spoold -u mx.test -p -c alice ||
	error "saslpasswd2 could not make the test user"
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem" "listen odmr 127.0.0.1:0" \
    "sasl-option sasldb_path $T/sasldb2" "etrn-rate 1000"
for d in one two empty; do
	cat >>"$SPOOLD_CONF" <<EOF
domain $d.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    atrn-user  alice
    recipients any
}
EOF
done
cat >>"$SPOOLD_CONF" <<EOF
domain theirs.test {
    etrn-from  127.0.0.2
    recipients any
}
EOF
sed -i 's/^max-message-size .*/max-message-size 30M/' "$SPOOLD_CONF"
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
printf 'secret\n' >"$T/pw"
chmod 600 "$T/pw"

# ec ARG... - run etrnclient; output in $T/ec.out, exit status in EC_RC
ec() {
	EC_RC=0
	# the one-off forms' lock goes to /run/etrnclient unless told: not
	# shared with the other tests running beside this one
	case "${1:-}" in --etrn|--odmr) set -- --lock-dir "$T/locks" "$@" ;; esac
	"$EC" "$@" >"$T/ec.out" 2>&1 || EC_RC=$?
	if grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/ec.out"; then
		fail "sanitizer report from etrnclient: $(cat "$T/ec.out")"
	fi
}
expect_ec() {	# expect_ec STATUS REGEX WHAT
	[ "$EC_RC" = "$1" ] || fail "$3: etrnclient exited $EC_RC, expected $1:
$(cat "$T/ec.out")"
	grep -E -q "$2" "$T/ec.out" || fail "$3: no /$2/ in:
$(cat "$T/ec.out")"
}
queue() {	# queue N DOMAIN
	for _n in $(seq 1 "$1"); do
		sw -t "u$_n@$2" -f a@x.test
		[ -n "$(sw_queued)" ] || fail "message $_n for $2 not accepted"
	done
}

# ---- ETRN, ad hoc: every domain asked, every reply kept ----
sink
queue 2 one.test
ec --etrn "127.0.0.1:$SMTP_PORT" empty.test one.test theirs.test two.test
expect_ec 69 'outcome="empty.test=251 one.test=253 theirs.test=459 two.test=251"' "ETRN of four domains"
wait_count one.test 0
[ -e "$T/locks/127.0.0.1.lock" ] || fail "--lock-dir: no lock file in $T/locks: $(ls "$T/locks" 2>&1)"
say "etrnclient --etrn: 251 for the first domain does not stop it; 253, 459, 251 each recorded; exit 69 for the 459; its lock under --lock-dir"

# ---- usage and configuration errors ----
ec --etrn 127.0.0.1 ; expect_ec 64 'etrn needs domains' "ETRN without domains"
ec -c "$T/nosuch.conf"; expect_ec 78 'nosuch.conf' "a missing configuration"
ec -1; expect_ec 64 'usage' "no configuration"
chmod 644 "$T/pw"
ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw" --relay "127.0.0.1:$SINK_PORT" one.test
expect_ec 78 'readable by group or others .*chmod 600' "a password file with mode 644"
chmod 600 "$T/pw"
cp "$top_srcdir/contrib/etrnclient.conf.example" "$T/example.conf"
printf 'changeme\n' >"$T/secret"; chmod 600 "$T/secret"
ec -n -c "$T/example.conf"; expect_ec 0 'configuration OK' "the shipped example configuration"
# -1 pulls every server even when the first cannot even start
cat >"$T/two.conf" <<EOF
lock-dir $T/locks
server bad.invalid {
    method  etrn
    domains one.test
}
server 127.0.0.1 {
    method  etrn
    port    $SMTP_PORT
    domains two.test
}
EOF
ec -c "$T/two.conf" -1 -f
expect_ec 75 'server=127.0.0.1 method=etrn domains=two.test outcome="two.test=251"' "-1 with a first server that cannot start"
say "usage 64; configuration errors 78, a password file with mode 644 refused; the shipped example passes -n"

# ---- ODMR from a configuration file with -1, over TLS verified with ca ----
cat >"$T/ec.conf" <<EOF
hostname site.test
lock-dir $T/locks
server 127.0.0.1 {
    method        odmr
    port          $ODMR_PORT
    domains       one.test two.test
    user          alice
    password-file pw
    tls           verify
    ca            cert.pem
    relay-to      127.0.0.1:$SINK_PORT
}
EOF
ec -c "$T/ec.conf" -n; expect_ec 0 'configuration OK' "etrnclient -n"
rm -f "$T"/dump/*
queue 3 one.test
queue 2 two.test
ec -c "$T/ec.conf" -1 -f
expect_ec 0 'method=odmr domains=one.test,two.test outcome="relayed 5, not relayed 0: one.test=3/0 two.test=2/0" relayed=5 .*status=0' "ODMR -1"
wait_count one.test 0
wait_count two.test 0
[ "$(dumped)" -eq 5 ] || fail "smtp-sink got $(dumped) messages, expected 5"
grep -q 'spoold/odmr\[[0-9]*\]: [0-9a-f]*: Anonymous TLS connection established' "$SPOOLD_LOG" || fail "the ODMR session did not use TLS"
grep -q 'auth ok from unknown\[127.0.0.1\], sasl_method=SCRAM-SHA-256, sasl_username=alice' "$SPOOLD_LOG" || fail "not the strongest mechanism: $(grep 'auth' "$SPOOLD_LOG")"
say "etrnclient -1 with method odmr, tls verify (ca), SCRAM-SHA-256: 5 messages of 2 domains relayed into smtp-sink, exit 0"

# ---- one message, three recipients: one session (452 and again) ----
rm -f "$T"/dump/*
sw -t r1@one.test,r2@one.test,r3@one.test -f a@x.test
ec -c "$T/ec.conf" -1 -f
expect_ec 0 'relayed=3 ' "a three-recipient message"
wait_count one.test 0
say "a message for three recipients: relayed one recipient per transaction, all in one session"

# ---- from cron (-1 without -f): silent when all went well, one line per
# failed server otherwise, so cron mails root only for trouble ----
sw -t q1@one.test -f a@x.test
ec -c "$T/ec.conf" -1
[ "$EC_RC" = 0 ] || fail "etrnclient -1 from cron: exit $EC_RC: $(cat "$T/ec.out")"
[ -s "$T/ec.out" ] && fail "etrnclient -1 printed although all went well: $(cat "$T/ec.out")"
wait_count one.test 0
sed 's/^\( *port  *\)[0-9]*$/\11/' "$T/ec.conf" >"$T/down.conf"
grep -q '^ *port  *1$' "$T/down.conf" || fail "could not point the configuration at a closed port: $(cat "$T/down.conf")"
ec -c "$T/down.conf" -1
[ "$EC_RC" = 75 ] || fail "etrnclient -1 with the ISP down: exit $EC_RC, expected 75"
[ "$(wc -l <"$T/ec.out")" = 1 ] && grep -q '^etrnclient: server=127.0.0.1 .*status=75$' "$T/ec.out" ||
	fail "etrnclient -1 with the ISP down did not print exactly its one failure line: $(cat "$T/ec.out")"
say "etrnclient -1 from cron: nothing on stderr when all went well, one line for a failed server (exit 75)"

# --timeout with -c: an ISP that accepts and never greets is given up after
# the 2 s asked for, not the file's 5 minutes (the outer 60 s only keeps a
# regression from hanging the suite)
SILENT_PORT=$(free_port)
python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5); held = []
while True:
    c, _ = s.accept(); held.append(c)' "$SILENT_PORT" >/dev/null 2>&1 &
echo $! >"$T/silent.pid"
_i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$SILENT_PORT),1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the silent server did not start"; sleep 0.05
done
sed "s/^\( *port  *\)[0-9]*\$/\1$SILENT_PORT/" "$T/ec.conf" >"$T/silent.conf"
EC_RC=0
timeout 60 "$EC" -c "$T/silent.conf" -1 -f --timeout 2s >"$T/ec.out" 2>&1 || EC_RC=$?
[ "$EC_RC" = 75 ] || fail "etrnclient -c ... --timeout 2s against a silent ISP: exit $EC_RC, expected 75: $(tail -3 "$T/ec.out")"
grep -q 'timeout' "$T/ec.out" || fail "no timeout reported: $(cat "$T/ec.out")"
stop_pid "$(cat "$T/silent.pid")"; rm -f "$T/silent.pid"
say "--timeout is honoured with -c: a silent ISP is given up after it (exit 75)"

# ---- a 20 MiB message flows through: etrnclient's memory stays small ----
python3 - "$SMTP_PORT" <<'PY' || fail "sending a 20 MiB message"
import smtplib, sys
line = b"x" * 998 + b"\r\n"
body = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line)) + b"the end\r\n"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.sendmail("a@x.test", ["big@one.test"], body)
s.quit()
PY
rm -f "$T"/dump/*
# peak_rss - run etrnclient -1 and print its peak RSS in KiB
peak_rss() {
	python3 - "$EC" "$T/ec.conf" <<'PY'
import resource, subprocess, sys
rc = subprocess.run([sys.argv[1], "-c", sys.argv[2], "-1"], stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else "exit%d" % rc)
PY
}
big_rss=$(peak_rss)
sw -t small@two.test -f a@x.test
base_rss=$(peak_rss)
case "$big_rss$base_rss" in *exit*) fail "etrnclient failed: big $big_rss, small $base_rss" ;; esac
# ASan keeps freed memory in quarantine, so its RSS says nothing about ours
if ! grep -q -a __asan_init "$EC"; then
	[ $((big_rss - base_rss)) -lt 8192 ] ||
		fail "relaying 20 MiB took $((big_rss - base_rss)) KiB more than a small message ($big_rss vs $base_rss KiB)"
fi
wait_count one.test 0
big=$(ls -S "$T"/dump | head -n 1)
[ "$(wc -c <"$T/dump/$big")" -gt 20000000 ] || fail "the big message did not arrive whole"
tail -c 20 "$T/dump/$big" | grep -q 'the end' || fail "the big message's end is missing"
say "a 20 MiB message relayed as it arrives: etrnclient's peak RSS $big_rss KiB, $base_rss KiB for a small one"

# ---- ODMR into an LMTP listener; a recipient it refuses bounces ----
mkdir -p "$T/lmtp"
python3 "$LMTP_SINK" "$T/lmtp.sock" "$T/lmtp" --reject bad@one.test >"$T/lmtp.log" 2>&1 &
echo $! >"$T/lmtp.pid"
_i=0; until [ -S "$T/lmtp.sock" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "no LMTP socket"; sleep 0.05; done
queue 2 one.test
sw -t bad@one.test -f a@one.test
ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw" --tls require \
    --relay "lmtp:$T/lmtp.sock" one.test
expect_ec 0 'relayed=2 not_relayed=1 ' "ODMR into LMTP"
[ "$(ls "$T/lmtp" | wc -l)" -eq 2 ] || fail "the LMTP listener stored $(ls "$T/lmtp" | wc -l) messages, expected 2"
wait_count one.test 1		# the DSN for a@one.test
grep -q 'to=<bad@one.test>, .*status=bounced (554 5.0.0 The local MTA refused it: 550 5.1.1' "$SPOOLD_LOG" ||
	fail "the LMTP refusal did not reach spoold as a bounce"
say "ODMR into an LMTP listener: 2 delivered; the recipient it refused is bounced by spoold with a DSN"

# ---- the local MTA down: exit 75, everything still at the ISP ----
stop_pid "$(cat "$T/lmtp.pid")"; rm -f "$T/lmtp.pid" "$T/lmtp.sock"
queue 2 two.test
ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw" --tls require \
    --relay "lmtp:$T/lmtp.sock" two.test
expect_ec 75 'relayed=0 not_relayed=2 ' "the local MTA down"
sleep 0.3
[ "$(domain_count two.test)" = 2 ] || fail "with the local MTA down, spoold has $(domain_count two.test) messages for two.test, expected 2"
say "the local MTA down during a pull: exit 75, both messages still in spoold's spool"

# ---- wrong password: 77 ----
printf 'wrong\n' >"$T/pw2"; chmod 600 "$T/pw2"
ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw2" --tls require \
    --relay "127.0.0.1:$SINK_PORT" two.test
expect_ec 77 'AUTH refused: 535' "wrong password"
say "a wrong password: exit 77"

# ---- two runs at once: the second one exits on the lock ----
python3 - "$T/locks/127.0.0.1.lock" "$T/held" <<'PY' &
import fcntl, os, sys, time
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(5)
PY
echo $! >"$T/holder.pid"
_i=0; until [ -f "$T/held" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "no lock holder"; sleep 0.05; done
ec -c "$T/ec.conf" -1 -f
expect_ec 75 'another etrnclient is pulling from this server now' "a second run while one holds the lock"
stop_pid "$(cat "$T/holder.pid")"; rm -f "$T/holder.pid"
[ "$(domain_count two.test)" = 2 ] || fail "a locked-out run moved mail"
say "a second run while the lock is held: says so, exit 75, nothing moved"

# ---- the daemon, every 2s: two runs in a few seconds; SIGUSR1 runs now ----
sed -i 's/^    relay-to .*/    every         2s\n&/' "$T/ec.conf"
"$EC" -c "$T/ec.conf" -f >"$T/daemon.log" 2>&1 &
echo $! >"$T/daemon.pid"
_i=0
until [ "$(grep -c 'method=odmr .*status=0' "$T/daemon.log")" -ge 2 ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "the daemon did not run twice in 10 s: $(cat "$T/daemon.log")"; sleep 0.05
done
wait_count two.test 0
kill -USR1 "$(cat "$T/daemon.pid")"
sleep 0.5
grep -q 'SIGUSR1: running every server now' "$T/daemon.log" || fail "SIGUSR1 not logged"
kill -HUP "$(cat "$T/daemon.pid")"
_i=0; until grep -q 'reloaded' "$T/daemon.log"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
stop_pid "$(cat "$T/daemon.pid")"; rm -f "$T/daemon.pid"
say "the daemon with every 2s: two runs within seconds (two.test drained), SIGUSR1 and SIGHUP work"
check_sanitizers
stop_spoold

# ---- TLS require against a server without STARTTLS: no AUTH is sent ----
sed -i '/^tls-cert\|^tls-key/d' "$SPOOLD_CONF"
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
before=$(wc -l <"$SPOOLD_LOG")
ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw" --tls require \
    --relay "127.0.0.1:$SINK_PORT" one.test
expect_ec 75 'TLS is required and 127.0.0.1 does not offer STARTTLS' "tls require without STARTTLS"
tail -n +"$((before + 1))" "$SPOOLD_LOG" | grep -q 'auth ok from\|authentication failed' && fail "AUTH was sent although TLS was required: $(grep 'auth' "$SPOOLD_LOG")"
say "tls require against a server without STARTTLS: exit 75, no AUTH sent"
stop_spoold

# ---- a real Postfix as the ETRN server (fast_flush_domains) ----
if ( need_postfix ); then
	PFP=$(free_port)
	mkdir -p "$T/postfix"
	echo "pfsite.test smtp:[127.0.0.1]:$SINK_PORT" >"$T/postfix/transport"
	PF_MAIN_EXTRA="relay_domains = pfsite.test
fast_flush_domains = \$relay_domains
transport_maps = texthash:$T/postfix/transport
smtpd_etrn_restrictions = permit_mynetworks, reject
minimal_backoff_time = 1h
maximal_backoff_time = 2h"
	stop_pid "$(cat "$T/sink.pid")"; rm -f "$T/sink.pid"	# the site is down
	postfix_start pfhome.test "$PFP"
	swaks --server "127.0.0.1:$PFP" -t p1@pfsite.test -f a@x.test >"$T/swaks.out" 2>&1 ||
		fail "Postfix did not take the message: $(cat "$T/swaks.out")"
	_i=0; until grep -q 'pfsite.test.*status=deferred' "$PF_LOG"; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "Postfix did not defer: $(tail "$PF_LOG")"; sleep 0.05
	done
	sink
	rm -f "$T"/dump/*
	ec --etrn "127.0.0.1:$PFP" pfsite.test
	expect_ec 0 'outcome="pfsite.test=250"' "ETRN to Postfix"
	_i=0; until [ "$(dumped)" -ge 1 ]; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "Postfix did not flush after ETRN: $(tail "$PF_LOG")"; sleep 0.05
	done
	postfix_stop
	say "etrnclient --etrn against Postfix (fast_flush_domains): 250, the deferred message flushed to the site"

	# and a private Postfix as the site's local MTA for an ODMR pull
	start_spoold
	ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
	PF_MAIN_EXTRA=
	postfix_start one.test "$PFP"
	queue 3 one.test
	ec --odmr "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/pw" \
	    --relay "127.0.0.1:$PFP" one.test
	expect_ec 0 'relayed=3 not_relayed=0 ' "ODMR into Postfix"
	wait_count one.test 0
	postfix_wait_delivered 3
	postfix_stop
	stop_spoold
	say "etrnclient --odmr relaying into a private Postfix: 3 messages in its Maildir, spoold's queue empty"
else
	say "Postfix not available: ETRN against Postfix not tested"
fi
