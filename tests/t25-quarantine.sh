#!/bin/sh
# t25-quarantine.sh - what a content filter keeps back, and the copies kept
# for an archive, with the real libmilter test filter (tests/milter_test.py):
#   - a quarantined message: 250, stored, counted apart in spoolctl list and
#     show, listed by spoolctl quarantine with the filter's reason, never
#     delivered by ETRN; bounce refused; released, then delivered at the
#     next ETRN with the filter's header; delete removes one; another goes
#     after quarantine-max-age, silently (no DSN);
#   - archive-to: one stored message reaches the site and the archive,
#     each under its own domain's route, and the sender never hears of the
#     archive;
#   - the filter down with milter-default-action accept: messages stored
#     marked unscanned, offered to the filter again at the ETRN: the clean
#     one delivered, the one it rejects quarantined (no bounce); the same
#     second look when an ODMR customer pulls its domain with ATRN.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_swaks
need saslpasswd2
/usr/bin/python3 -c 'import Milter' 2>/dev/null ||
	fail "python3-milter is not installed (contrib/deps.sh test installs it)"

MILTER_PORT=$(free_port)
SINK_PORT=$(free_port)

# milter_start - the test filter on MILTER_PORT, until it accepts
milter_start() {
	/usr/bin/python3 "$top_srcdir/tests/milter_test.py" "$MILTER_PORT" "$T/milter.ready" \
	    >>"$T/milter.log" 2>&1 &
	echo $! >"$T/milter.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$MILTER_PORT),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 200 ] || error "the test milter did not start: $(cat "$T/milter.log")"
		sleep 0.05
	done
}
milter_start

make_cert
printf 'secret\n' | saslpasswd2 -f "$T/sasldb2" -a spoold -u mx.test -p -c alice ||
	error "saslpasswd2 could not make the test user"
write_conf "milter test inet:127.0.0.1:$MILTER_PORT" "tls-cert $T/cert.pem" "tls-key $T/key.pem" \
    "listen odmr 127.0.0.1:0" "sasl-option sasldb_path $T/sasldb2"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
    archive-to keep@archive.test
}
domain archive.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
    filter off
}
domain pull.test {
    atrn-user alice
    recipients any
}
EOF
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[ -n "$ODMR_PORT" ] || fail "no odmr line in the listen file: $(cat "$T/listen")"
sink

# send SUBJECT [SWAKS-OPTION...] - a message to a@site.test
send() {
	_subject=$1
	shift
	sw -f sender@client.test -t a@site.test --header "Subject: $_subject" "$@"
}
# quarantined_count DOMAIN - the quarantined column of spoolctl list
quarantined_count() {
	spoolctl list | awk -v d="$1" '$1 == d { n = $5 } END { print n + 0 }'
}
# dump_of SUBJECT - the sink's copies of the message with that subject
dump_of() {
	grep -l "^Subject: $1\$" "$T"/dump/* 2>/dev/null
}

# ---- quarantine ----
send quarantine
q1=$(sw_queued)
[ -n "$q1" ] || fail "a quarantined message got no 250: $(cat "$T/swaks.out")"
send quarantine
q2=$(sw_queued)
send clean
[ -n "$(sw_queued)" ] || fail "a clean message was not stored"
[ "$(quarantined_count site.test)" = 2 ] || fail "spoolctl list shows $(quarantined_count site.test) quarantined for site.test, expected 2: $(spoolctl list)"
expect_count site.test 1
spoolctl quarantine site.test >"$T/q.out" || fail "spoolctl quarantine failed"
grep -q "^$q1 .* <sender@client.test> a@site.test keep@archive.test\$" "$T/q.out" ||
	fail "spoolctl quarantine does not list $q1 with its sender and recipients: $(cat "$T/q.out")"
grep -q '^    milter test: held by the test filter$' "$T/q.out" ||
	fail "spoolctl quarantine does not show the filter's reason: $(cat "$T/q.out")"
spoolctl --json quarantine | python3 -c '
import json, sys
q = json.load(sys.stdin)
assert len(q) == 2 and q[0]["reason"] == "milter test: held by the test filter", q' ||
	fail "spoolctl --json quarantine: $(spoolctl --json quarantine)"
spoolctl show site.test | grep -q '^# 2 more quarantined' ||
	fail "spoolctl show does not count the quarantined: $(spoolctl show site.test)"
spoolctl show site.test | grep -q "^$q1" && fail "spoolctl show lists a quarantined message as queued"
spoolctl stats | grep -q '^quarantined 2$' || fail "spoolctl stats: $(spoolctl stats)"
grep -q "$q1: milter-hold: END-OF-MESSAGE" "$SPOOLD_LOG" || fail "no log line for the quarantined message"
say "quarantined: 250, stored, counted apart by list/show/stats, listed with the filter's reason"

etrn 127.0.0.1 site.test archive.test
wait_count site.test 0
wait_count archive.test 0
[ -z "$(dump_of quarantine)" ] || fail "a quarantined message was delivered"
f=$(dump_of clean)
[ "$(echo "$f" | wc -w)" = 2 ] || fail "the clean message did not reach both the site and the archive once each: $f"
grep -l '^X-Rcpt-Args: <a@site.test>' $f >/dev/null && grep -l '^X-Rcpt-Args: <keep@archive.test>' $f >/dev/null ||
	fail "the clean message went to the wrong recipients: $(grep -h '^X-Rcpt' $f)"
say "ETRN delivers the clean message and its archive copy (stored once, each under its own domain), never the quarantined"

spoolctl bounce "$q1" >"$T/bounce.out" 2>&1 && fail "spoolctl bounce of a quarantined message succeeded"
grep -q 'is quarantined' "$T/bounce.out" || fail "bounce of a quarantined message: $(cat "$T/bounce.out")"
spoolctl release "$q1" >"$T/release.out" || fail "spoolctl release failed: $(cat "$T/release.out")"
grep -q "$q1 released" "$T/release.out" || fail "release said: $(cat "$T/release.out")"
spoolctl release "$q1" >"$T/release.out" 2>&1 && fail "releasing a message twice succeeded"
grep -q 'no such message in the quarantine' "$T/release.out" || fail "second release: $(cat "$T/release.out")"
expect_count site.test 1
[ "$(quarantined_count site.test)" = 1 ] || fail "after release: $(spoolctl list)"
etrn 127.0.0.1 site.test archive.test
wait_count site.test 0
wait_count archive.test 0
f=$(dump_of quarantine)
[ "$(echo "$f" | wc -w)" = 2 ] || fail "the released message did not reach the site and the archive: $f"
grep -q '^X-Test-Filter: quarantined' $f || fail "the filter's header is not on the released copy"
say "bounce refused for a quarantined message; released, it is delivered at the next ETRN with the filter's header"

# ---- the filter down with milter-default-action accept: a second look ----
stop_pid "$(cat "$T/milter.pid")"; rm -f "$T/milter.pid"
echo "milter-default-action accept" >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0; until grep -q 'reloaded' "$SPOOLD_LOG"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
send unscanned-clean
u1=$(sw_queued)
send reject
u2=$(sw_queued)
send tempfail
u3=$(sw_queued)
[ -n "$u1" ] && [ -n "$u2" ] || fail "with the filter down and accept, messages were not stored: $(cat "$T/swaks.out")"
grep -q "$u2: from=<.*(queue active, not scanned)" "$SPOOLD_LOG" || fail "no log line for the unscanned message"
sw -f sender@client.test -t b@pull.test --header "Subject: pulled-clean"
p1=$(sw_queued)
sw -f sender@client.test -t b@pull.test --header "Subject: reject"
p2=$(sw_queued)
[ -n "$p1" ] && [ -n "$p2" ] || fail "with the filter down, mail for the ODMR domain was not stored: $(cat "$T/swaks.out")"
spoolctl show site.test | grep -A1 "^$u2 " | grep -q 'not scanned' ||
	fail "spoolctl show does not say $u2 is not scanned: $(spoolctl show site.test)"
milter_start
n=$(total_count)
etrn 127.0.0.1 site.test archive.test
_i=0
until grep -q "$u3: to=<a@site.test>, .*dsn=4\.7\.1, status=deferred (451 4\.7\.1 Held for a second look" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "a 4xx on the second look was not logged as a deferral"; sleep 0.05
done
wait_count site.test 1
wait_count archive.test 1	# its archive copy waits with it: one message
[ -z "$(dump_of tempfail)" ] || fail "the message the filter put off on the second look was delivered"
spoolctl show site.test | grep -A2 "^$u3 " | grep -q 'Held for a second look' ||
	fail "spoolctl show does not say why $u3 waits: $(spoolctl show site.test)"
f=$(dump_of unscanned-clean)
[ "$(echo "$f" | wc -w)" = 2 ] || fail "the unscanned clean message did not reach the site and the archive: $f"
[ -z "$(dump_of reject)" ] || fail "the message the filter rejects on the second look was delivered"
spoolctl quarantine | grep -A1 "^$u2 " | grep -q 'milter test: .*on a second look' ||
	fail "the message rejected on the second look is not quarantined: $(spoolctl quarantine)"
grep -q "$u1: rescan: passed" "$SPOOLD_LOG" && grep -q "$u2: rescan: quarantined" "$SPOOLD_LOG" ||
	fail "no log lines for the second look"
[ "$(total_count)" = $((n - 1)) ] || fail "the second look queued something (a DSN?): $(spoolctl list)"
spoolctl delete "$u2" "$u3" >/dev/null
say "filter down, accept: stored marked unscanned (log, show); at the ETRN the clean one is delivered, the one the filter rejects quarantined (no DSN), the one it puts off deferred"

mkdir -p "$T/got"
python3 "$top_srcdir/tests/odmr_client.py" 127.0.0.1 "$ODMR_PORT" --tls --user alice --password secret \
    --atrn pull.test --dir "$T/got" >"$T/cust.out" 2>&1 || fail "the ODMR customer failed: $(cat "$T/cust.out")"
grep -q '^event: quit after 1 messages' "$T/cust.out" || fail "ATRN did not deliver exactly one message: $(cat "$T/cust.out")"
grep -q '^Subject: pulled-clean$' "$T"/got/* || fail "the clean unscanned message did not reach the ODMR customer"
grep -q '^Subject: reject$' "$T"/got/* && fail "the message the filter rejects on the second look went out over ATRN"
spoolctl quarantine pull.test | grep -q "^$p2 " || fail "$p2 is not quarantined after ATRN: $(spoolctl quarantine)"
grep -q "$p1: rescan: passed" "$SPOOLD_LOG" && grep -q "$p2: rescan: quarantined" "$SPOOLD_LOG" ||
	fail "no log lines for the second look at ATRN"
[ "$(domain_count pull.test)" = 0 ] || fail "pull.test still has mail queued: $(spoolctl list)"
# the running totals (spoolctl stats: the counters of GET /metrics)
spoolctl stats >"$T/stats.out" 2>"$T/stats.err" || fail "spoolctl stats failed: $(cat "$T/stats.err")"
for want in 'spoold_atrn_replies_total{service="odmr",code="250"} 1' \
    'spoold_domain_quarantined{domain="pull.test"} 1'; do
	grep -qxF "$want" "$T/stats.out" || fail "no \"$want\" in spoolctl stats: $(grep -E "atrn|quarantined" "$T/stats.out") $(cat "$T/stats.err")"
done
grep -Eq '^spoold_quarantined_total\{stage="rescan"\} [1-9]' "$T/stats.out" ||
	fail "the second look's quarantine is not counted: $(grep quarantined_total "$T/stats.out")"
spoolctl delete "$p2" >/dev/null
say "the same second look at ATRN: the clean message goes to the ODMR customer, the one rejected is quarantined; ATRN's 250 and the quarantine counted"

spoolctl delete "$q2" >/dev/null || fail "spoolctl delete of a quarantined message failed"
[ "$(quarantined_count site.test)" = 0 ] || fail "after delete: $(spoolctl list)"
spoolctl stats | grep -q '^quarantined 0$' || fail "stats after delete: $(spoolctl stats)"
echo "quarantine-max-age 4s" >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0; until grep -q 'reloaded' "$SPOOLD_LOG"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
send quarantine
q3=$(sw_queued)
n=$(total_count)
_i=0
until [ "$(quarantined_count site.test)" = 0 ]; do
	_i=$((_i + 1)); [ $_i -le 300 ] || fail "$q3 was not removed after quarantine-max-age 4s"
	sleep 0.1
done
grep -q "$q3: removed from the quarantine after 4s" "$SPOOLD_LOG" || fail "no log line for the expiry"
[ "$(total_count)" = $((n - 1)) ] || fail "the expiry queued something (a DSN?): $(spoolctl list)"
say "delete removes a quarantined message; another goes after quarantine-max-age, logged, without a DSN"

check_sanitizers
