#!/bin/sh
# t42-verify.sh - recipients verify (issue 14, point 3): an address not in a
# backup domain's list is asked of its primary by an SMTP callout (RCPT
# without DATA).  The primary is tests/verify_primary.py (ok*/storm* 250,
# temp* 450, the rest 550), which logs every RCPT it gets, so the probes
# are counted; the sender is swaks.  Checked: 250 and a cache entry in the
# spool for a good address, 550 for a bad one, 450 for a primary's 4xx;
# the cache answers while the primary is down and an uncached address gets
# 450; 20 concurrent RCPTs for one address make one probe; verify-rate;
# verify-timeout; a route by MX (a private dnsmasq, mx-port) with the best
# MX down; a real Postfix as the primary; a restart keeps the cache;
# combined with a file list; the config error without a primary; the log
# line and the metrics.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks mdb_dump

PRIMARY="$top_srcdir/tests/verify_primary.py"
P1=$(free_port)
P2=$(free_port)
P3=$(free_port)
PF=$(free_port)
P4=$(free_port)
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || fail "dnsmasq is not installed (contrib/deps.sh test installs dnsmasq-base)"
DNS_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# mxv.test: the best MX (127.0.0.2) is down, the next one is p4 (mx-port)
"$DNSMASQ" --no-daemon --conf-file=/dev/null --pid-file --no-resolv --no-hosts \
    --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces --local=/test/ \
    --mx-host=mxv.test,mx1.mxv.test,10 --mx-host=mxv.test,mx2.mxv.test,20 \
    --host-record=mx1.mxv.test,127.0.0.2 --host-record=mx2.mxv.test,127.0.0.1 \
    >"$T/dnsmasq.log" 2>&1 &
echo $! >"$T/dnsmasq.pid"
_i=0
until "$top_builddir/tests/dns_lookup" -s "127.0.0.1:$DNS_PORT" addr mx2.mxv.test >/dev/null 2>&1; do
	alive "$(cat "$T/dnsmasq.pid")" || error "dnsmasq exited: $(cat "$T/dnsmasq.log")"
	_i=$((_i + 1)); [ $_i -le 100 ] || error "dnsmasq did not answer within 5 s"; sleep 0.05
done

# start_primary NAME PORT [DELAY] - verify_primary.py as NAME, RCPTs to $T/NAME.rcpts
start_primary() {
	python3 "$PRIMARY" "$2" "$T/$1.rcpts" ${3:-} >"$T/$1.log" 2>&1 &
	echo $! >"$T/$1.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$2),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || error "primary $1 did not start"; sleep 0.05
	done
}
stop_primary() {
	stop_pid "$(cat "$T/$1.pid")"; rm -f "$T/$1.pid"
}
# probes NAME ADDRESS - how many RCPTs for ADDRESS primary NAME got
probes() {
	grep -c "^RCPT $2 " "$T/$1.rcpts" 2>/dev/null || true
}

printf 'boss@combo.test\n' >"$T/combo.rcpts-list"
write_conf "verify-rate 8" "verify-timeout 2s" "resolver 127.0.0.1:$DNS_PORT" "mx-port $P4"
cat >>"$SPOOLD_CONF" <<EOF
domain v.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$P1
    recipients verify
}
domain combo.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$P1
    recipients $T/combo.rcpts-list verify
}
domain rl.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$P2
    recipients verify
}
domain pf.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$PF
    recipients verify
}
domain mxv.test {
    mode       backup
    retry      1h
    deliver-to mx
    recipients verify
}
domain slow.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$P3
    recipients verify
}
EOF

# ---- a hold domain with no primary to ask: an error with file:line ----
cp "$SPOOLD_CONF" "$T/bad.conf"
printf 'domain hold.test {\n    recipients verify\n}\n' >>"$T/bad.conf"
_line=$(grep -n 'recipients verify' "$T/bad.conf" | tail -n 1 | cut -d: -f1)
if out=$("$SPOOLD" -n -c "$T/bad.conf" 2>&1); then fail "spoold -n took recipients verify without a primary"; fi
printf '%s\n' "$out" | grep -q "bad.conf:$_line: domain hold.test: recipients verify needs a primary to ask" ||
	fail "spoold -n: no file:line error for recipients verify without a primary: $out"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/n.out" 2>&1 || fail "spoold -n: $(cat "$T/n.out")"
say "recipients verify without a primary is a config error at its file:line; with one the config is OK"

start_primary p1 "$P1"
start_spoold

# ---- good, bad, 4xx ----
expect_rcpt_reply ok1@v.test 250 "a good address"
[ "$(probes p1 ok1@v.test)" = 1 ] || fail "ok1: $(probes p1 ok1@v.test) probes, expected 1"
mdb_dump -p -s verify "$T/spool" >"$T/verify.dump" 2>&1 || fail "mdb_dump -s verify: $(cat "$T/verify.dump")"
grep -q 'ok1@v.test' "$T/verify.dump" || fail "no cache entry for ok1@v.test in the spool: $(cat "$T/verify.dump")"
expect_rcpt_reply OK1@V.TEST 250 "the same address again, other case"
[ "$(probes p1 ok1@v.test)" = 1 ] || fail "a cached address was probed again"
grep -q 'verify.*: to=<ok1@v.test>, relay=\[127.0.0.1\]:'"$P1"', delay=[0-9.e-]*, status=deliverable (250 2.1.5 Ok)' "$SPOOLD_LOG" ||
	fail "no status=deliverable log line for ok1@v.test"
expect_rcpt_reply nobody@v.test '550 5\.1\.1 .*undeliverable address: 550 5\.1\.1' "an address the primary refuses"
grep -q 'to=<nobody@v.test>, relay=.*status=undeliverable (550 5.1.1' "$SPOOLD_LOG" || fail "no status=undeliverable log line"
expect_rcpt_reply nobody@v.test '550 5\.1\.1' "a refused address again"
[ "$(probes p1 nobody@v.test)" = 1 ] || fail "a cached refusal was probed again"
expect_rcpt_reply temp1@v.test '450 4\.1\.1 .*unverified address: 450 4\.2\.0' "a 4xx of the primary"
grep -q 'to=<temp1@v.test>, relay=.*status=unknown (450 4.2.0' "$SPOOLD_LOG" || fail "no status=unknown log line"
expect_rcpt_reply temp1@v.test '450 ' "a 4xx is not cached"
[ "$(probes p1 temp1@v.test)" = 2 ] || fail "a 4xx answer was cached ($(probes p1 temp1@v.test) probes)"
! grep -q '^DATA' "$T/p1.rcpts" || fail "a probe sent DATA"
sw -t ok1@v.test -f a@x.test
sw_expect '250 2\.0\.0 Ok: queued' "mail to a verified address"
say "250 and a cache entry in the spool for an address the primary takes, 550 5.1.1 for one it refuses (both cached), 450 for its 4xx (not cached); never DATA"

# ---- combined with a file ----
expect_rcpt_reply boss@combo.test 250 "a listed address"
[ "$(probes p1 boss@combo.test)" = 0 ] || fail "a listed address was probed"
expect_rcpt_reply ok2@combo.test 250 "an unlisted good address"
[ "$(probes p1 ok2@combo.test)" = 1 ] || fail "an unlisted address was not probed once"
expect_rcpt_reply stranger@combo.test '550 5\.1\.1' "an unlisted bad address"
say "recipients FILE verify: listed addresses at once, the others verified"

# ---- no storm: 20 RCPTs at once for one address, one probe ----
stop_primary p1
start_primary p1 "$P1" 1
out=$(rcpts_at_once 20 storm@v.test | grep -v '^max ')
[ "$out" = "250 20" ] || fail "20 concurrent RCPTs: $out, expected 20 times 250"
[ "$(probes p1 storm@v.test)" = 1 ] || fail "20 concurrent RCPTs made $(probes p1 storm@v.test) probes, expected 1"
[ "$(stat_value 'spoold_verify_answers_total{source="joined"}')" -ge 19 ] || fail "joined answers: $(spoolctl stats 2>&1 | grep verify)"
stop_primary p1
start_primary p1 "$P1"
say "20 concurrent RCPTs for one address: one probe, 20 times 250"

# ---- verify-rate: probes per primary per minute ----
start_primary p2 "$P2"
for i in 1 2 3 4 5 6 7 8; do expect_rcpt_reply "ok$i@rl.test" 250 "probe $i of 8"; done
expect_rcpt_reply ok9@rl.test '450 4\.7\.1 .*too many address verifications' "a probe beyond verify-rate 8"
[ "$(probes p2 ok9@rl.test)" = 0 ] || fail "a probe beyond the rate went out"
expect_rcpt_reply ok3@rl.test 250 "a cached address beyond the rate"
say "verify-rate 8: the 9th new address in a minute gets 450 4.7.1 at once, cached ones still 250"

# ---- verify-timeout: a primary that never answers ----
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
c = []
while True:
    c.append(s.accept()[0])' "$P3" >"$T/mute.log" 2>&1 &
echo $! >"$T/mute.pid"
_i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$P3),1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the mute primary did not start"; sleep 0.05
done
t0=$(date +%s)
expect_rcpt_reply ok@slow.test '450 4\.1\.1 .*no answer within 2 s \(verify-timeout\)' "a primary that never answers"
[ $(( $(date +%s) - t0 )) -le 5 ] || fail "verify-timeout 2s took $(( $(date +%s) - t0 )) s"
say "a primary that never answers: 450 after verify-timeout"

# ---- a route by MX, the best MX down ----
start_primary p4 "$P4"
expect_rcpt_reply ok@mxv.test 250 "an address of a domain routed by MX"
expect_rcpt_reply no@mxv.test '550 5\.1\.1' "a bad address of a domain routed by MX"
grep -q 'to=<ok@mxv.test>, relay=mx2.mxv.test\[127.0.0.1\]:'"$P4"', .*status=deliverable' "$SPOOLD_LOG" ||
	fail "the probe did not go to the second MX: $(grep 'to=<ok@mxv.test>' "$SPOOLD_LOG")"
stop_primary p4
say "deliver-to mx: the probe follows the MX records (the best one down, the next one asked) and mx-port"

# ---- a real Postfix as the primary ----
if [ "$(id -u)" -eq 0 ]; then
	need_postfix
	PF_USERS=alice
	postfix_start pf.test "$PF"
	expect_rcpt_reply alice@pf.test 250 "a Postfix mailbox"
	expect_rcpt_reply bob@pf.test '550 5\.1\.1 .*undeliverable address: 550 5\.1\.1 .*User unknown in virtual mailbox table' \
	    "an address Postfix refuses"
	_i=0
	until [ "$(grep -c 'disconnect from .* mail=' "$PF_LOG")" -ge 2 ]; do
		_i=$((_i + 1)); [ $_i -le 100 ] || fail "Postfix logged no disconnect lines"; sleep 0.05
	done
	# (the line without mail= is postfix_start's look at the port)
	grep 'disconnect from .* mail=' "$PF_LOG" | grep -E -v -q ' ehlo=1 mail=1 rcpt=(1|0/1) rset=1 quit=1 commands=' &&
		fail "a probe to Postfix was not EHLO, MAIL, RCPT, RSET, QUIT: $(grep 'disconnect from' "$PF_LOG")"
	! grep 'disconnect from' "$PF_LOG" | grep -q 'data=' || fail "a probe sent DATA to Postfix"
	postfix_stop
	say "a real Postfix as the primary: its 250 and its 550 5.1.1 decide; each probe is EHLO, MAIL, RCPT, RSET, QUIT"
else
	say "not root: the probe against a real Postfix is left out"
fi

# ---- the primary down: the cache answers, the rest 450 ----
stop_primary p1
expect_rcpt_reply ok1@v.test 250 "a cached good address, primary down"
expect_rcpt_reply nobody@v.test '550 5\.1\.1' "a cached bad address, primary down"
expect_rcpt_reply ok-new@v.test '450 4\.1\.1 .*connect to \[127\.0\.0\.1\]:'"$P1"': ' "an uncached address, primary down"
expect_rcpt_reply ok-new2@v.test '450 4\.1\.1 .*did not answer lately' "the next one, in the pause"
grep -q 'to=<ok-new@v.test>, relay=\[127.0.0.1\]:'"$P1"', .*status=unknown (connect to' "$SPOOLD_LOG" || fail "no status=unknown line for a dead primary"
say "primary down: cached answers (250, 550) as before; an uncached address 450 4.1.1, and the next at once"

# ---- a restart keeps the cache ----
probes_before=$(stat_value 'spoold_verify_probes_total{result="deliverable"}')
[ "$probes_before" -ge 10 ] || fail "spoold_verify_probes_total{result=\"deliverable\"} is $probes_before"
[ "$(stat_value 'spoold_verify_answers_total{source="cache"}')" -ge 5 ] || fail "cache hits not counted"
stop_spoold >/dev/null
start_spoold
expect_rcpt_reply ok1@v.test 250 "a cached good address after a restart, primary down"
expect_rcpt_reply ok2@combo.test 250 "another, after a restart"
expect_rcpt_reply nobody@v.test '550 5\.1\.1' "a cached bad address after a restart"
expect_rcpt_reply ok-never@v.test '450 ' "an uncached address after a restart"
stop_spoold >/dev/null
check_sanitizers
say "after a restart with the primary down the cache in the spool still answers"
