#!/bin/sh
# t24-milter.sh - content filters over the milter protocol, with a real
# libmilter filter (python3-milter, tests/milter_test.py) choosing what to
# do by Subject: reject, tempfail, its own reply and discard answered in
# the SMTP dialogue before the 250 (nothing stored); headers added, inserted
# (below our Received:), changed and deleted, the body replaced, recipients
# added (only those spoold takes) and removed, the sender changed, all in
# the copy the site gets; a recipient refused at RCPT (in the dialogue,
# before its 250); a domain with
# "filter off"; a filter that is too slow, one that dies mid-message, one
# that sends garbage, and none at all, each getting milter-default-action
# (tempfail, then accept).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_swaks
/usr/bin/python3 -c 'import Milter' 2>/dev/null ||
	fail "python3-milter is not installed (contrib/deps.sh test installs it)"

MILTER_PORT=$(free_port)
SINK_PORT=$(free_port)
GARBAGE_PORT=$(free_port)
DEAD_PORT=$(free_port)	# verified.test's primary: down, nothing cached

# milter_start - the test filter on MILTER_PORT, until it accepts
milter_start() {
	rm -f "$T/milter.ready"
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

write_conf "milter test inet:127.0.0.1:$MILTER_PORT" "milter-timeout eom 2s" "timeout idle 6s" \
    "metrics-listen 127.0.0.1:0"
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain nofilter.test {
    recipients any
    filter off
}
domain verified.test {
    recipients verify
    deliver-to [127.0.0.1]:$DEAD_PORT
}
domain listed.test {
    recipients $T/listed.rcpts
}
domain full.test {
    recipients verify
    deliver-to [127.0.0.1]:$DEAD_PORT
    quota 1M 1
}
EOF
echo known@listed.test >"$T/listed.rcpts"
start_spoold

# send SUBJECT [SWAKS-OPTION...] - a message to a@site.test unless -t says
send() {
	_subject=$1
	shift
	sw -f sender@client.test -t a@site.test --header "Subject: $_subject" \
	    --header "X-Remove-Me: please" "$@"
}

# ---- verdicts in the SMTP dialogue ----
send clean
[ -n "$(sw_queued)" ] || fail "a clean message was not stored: $(cat "$T/swaks.out")"
grep -q '^connect .* spoold$' "$T/milter.log" || fail "no connect with {daemon_name}: $(cat "$T/milter.log")"
grep -q '^mail <sender@client.test> queue-id [0-9a-f]\{16\}$' "$T/milter.log" ||
	fail "MAIL or the queue id macro not seen by the filter: $(cat "$T/milter.log")"
grep -q '^headers Received,' "$T/milter.log" || fail "the filter did not see our Received: first"
say "a clean message is stored after the filter's accept; it saw connect, MAIL with the queue id, our Received: first"

n=$(domain_count site.test)
send reject
sw_expect '550 5\.7\.1 Message rejected by the content filter' "reject"
send tempfail
sw_expect '451 4\.7\.1 ' "tempfail"
send reply
sw_expect '554 5\.7\.1 custom refusal from the test filter' "the filter's own reply"
send discard
sw_expect '250 2\.0\.0 Ok: queued as' "discard answers 250"
[ "$(domain_count site.test)" = "$n" ] || fail "a refused or discarded message was stored"
grep -q 'milter test: reject' "$SPOOLD_LOG" || fail "no log line for the verdict"
grep -q 'milter-discard: END-OF-MESSAGE' "$SPOOLD_LOG" || fail "no log line for the discard"
# the verdicts in the counters of GET /metrics
mport=$(sed -n 's/^metrics 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/listen")
python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$mport/metrics" >"$T/metrics" || fail "GET /metrics failed"
for v in pass reject tempfail reply discard; do
	grep -Eq "^spoold_milter_verdicts_total\{verdict=\"$v\"\} [1-9]" "$T/metrics" ||
		fail "verdict $v not counted: $(grep milter_verdicts "$T/metrics")"
done
grep -q '^spoold_rejections_total{service="smtp",command="DATA",code="550",status="5.7.1"} 1$' "$T/metrics" ||
	fail "the filter's reject is not counted as a refusal: $(grep rejections_total "$T/metrics")"
say "reject 550 5.7.1, tempfail 451 4.7.1, the filter's own 554 5.7.1, discard 250: none stored, each logged and counted in /metrics"

# ---- changes, seen in what the site gets ----
send addheader
send insheader
send chgheader
send delheader
send replbody
send addrcpt
send delrcpt -t a@site.test,b@site.test
send chgfrom
sw -f sender@client.test -t refused@site.test,ok@site.test --header "Subject: rcptrefused"
[ -n "$(sw_queued)" ] || fail "the message with one refused recipient was not stored"
sw_expect '550 5\.1\.1 refused by the test filter' "a recipient the filter refuses gets its reply at RCPT"
grep -q 'milter test: rcpt <refused@site.test> refused' "$SPOOLD_LOG" || fail "no log line for the RCPT refusal"
# a filter slower at RCPT than spoold waits (half of "timeout idle 6s"):
# milter-default-action tempfail, long before the session's own timeout
sw -f sender@client.test -t slow@site.test --header "Subject: clean"
sw_expect '451 4\.7\.1 ' "a filter with no verdict at RCPT"
grep -q 'milter test: no verdict at RCPT within 3s: ' "$SPOOLD_LOG" || fail "no log line for the RCPT deadline"
grep -q 'recipient <outsider@elsewhere.test> not added' "$SPOOLD_LOG" ||
	fail "a recipient spoold does not take was added by the filter"
# Recipients a filter adds where the domain's list cannot answer now (here
# the primary of a "recipients verify" domain, down, nothing cached) are
# taken, logged as unchecked; a 5xx of the list still leaves one out.
send "add-rcpts <new@verified.test>,<unknown@listed.test>,<known@listed.test>"
[ -n "$(sw_queued)" ] || fail "the message whose filter adds recipients was not stored"
[ "$(domain_count verified.test)" = 1 ] ||
	fail "the filter's recipient in a verified domain with its primary down was lost"
[ "$(domain_count listed.test)" = 1 ] || fail "listed.test should hold the one listed recipient's copy"
grep -q 'recipient <new@verified.test> added unchecked: ' "$SPOOLD_LOG" ||
	fail "no log line for the unchecked recipient"
grep -q 'recipient <unknown@listed.test> not added' "$SPOOLD_LOG" ||
	fail "a recipient the domain's list refuses was added by the filter"
if grep -q 'verify.*new@verified\.test' "$SPOOLD_LOG"; then
	fail "a probe was started for a recipient added after the 250"
fi
say "a filter's recipient its domain cannot check now is taken (logged unchecked); one its list refuses is not"
# an unchecked recipient still counts against its domain's quota
# (quota 1M 1): the first is taken, the second finds the domain full
send "add-rcpts <one@full.test>"
[ "$(domain_count full.test)" = 1 ] || fail "full.test's first recipient added by the filter was lost"
send "add-rcpts <two@full.test>"
[ -n "$(sw_queued)" ] || fail "the message whose filter adds a recipient over quota was not stored"
[ "$(domain_count full.test)" = 1 ] ||
	fail "a filter's unchecked recipient was added over its domain's quota: $(domain_count full.test) messages"
grep -q 'recipient <two@full.test> not added' "$SPOOLD_LOG" ||
	fail "no log line for the filter's recipient over quota"
say "a filter's unchecked recipient in a domain over its quota is left out"
sink
etrn 127.0.0.1 site.test
wait_count site.test 0
# dump_of SUBJECT - the sink's copy of the message with that subject
dump_of() {
	grep -l "^Subject: $1" "$T"/dump/* 2>/dev/null | head -n 1
}
# ours_first FILE HEADER - our Received: (after the lines smtp-sink adds
# on top) comes before HEADER
ours_first() {
	awk -v h="^$2" '/by mx.test \(spoold\)/ && !o { o = NR } $0 ~ h && !x { x = NR }
	    END { exit !(o && x && o < x) }' "$1"
}
f=$(dump_of addheader)
[ -n "$f" ] && grep -q '^X-Test-Filter: scanned' "$f" || fail "the added header is not in the delivered copy"
ours_first "$f" Date: || fail "Received: is not first after a change: $(head -12 "$f")"
f=$(dump_of insheader)
ours_first "$f" X-Inserted: || fail "an inserted header went above our Received: $(head -12 "$f")"
grep -q '^X-Inserted: at the top' "$f" || fail "the inserted header is missing"
[ -n "$(dump_of 'changed by the filter')" ] || fail "the changed Subject: is not in the delivered copy"
f=$(dump_of delheader)
grep -q '^X-Remove-Me' "$f" && fail "the deleted header was delivered"
f=$(dump_of replbody)
grep -q '^cleansed by the test filter' "$f" || fail "the replaced body was not delivered"
grep -q 'This is a test mailing' "$f" && fail "the old body was delivered too"
f=$(dump_of addrcpt)
grep -q 'extra@site.test' "$f" || fail "the added recipient did not get it: $(grep -i '^X-\|RCPT' "$f")"
f=$(dump_of delrcpt)
grep -q '^X-Rcpt-Args: <a@site.test>' "$f" && ! grep -q '^X-Rcpt-Args: <b@site.test>' "$f" ||
	fail "the removed recipient was delivered: $(grep '^X-Rcpt' "$f")"
f=$(dump_of rcptrefused)
grep -q '^X-Rcpt-Args: <ok@site.test>' "$f" && ! grep -q '^X-Rcpt-Args: <refused@site.test>' "$f" ||
	fail "the recipient refused at RCPT was delivered: $(grep '^X-Rcpt' "$f")"
f=$(dump_of chgfrom)
grep -q 'changed@sender.test' "$f" || fail "the changed sender is not on the delivered copy"
say "added, inserted (below Received:), changed and deleted headers, a replaced body, an added recipient (not one spoold does not take), a removed one, one refused at RCPT and a new sender: all as the site gets them; a filter with no verdict at RCPT in half the idle timeout: 451"
grep -q '^rcpt <refused@site.test>' "$T/milter.log" || fail "the refused recipient was not asked about"

# ---- filter off ----
sw -f s@client.test -t x@nofilter.test --header "Subject: reject"
[ -n "$(sw_queued)" ] || fail "a filter-off domain's message went through the filter"
say "a domain with filter off is not filtered (a reject subject is stored)"

# ---- a filter that fails: milter-default-action ----
send slow
sw_expect '451 4\.7\.1 Content filter unavailable' "a filter slower than milter-timeout eom"
grep -q 'milter test: timed out in M_EOB' "$SPOOLD_LOG" || fail "no log line for the timeout"
milter_start	# the slow one's process is busy; a new one answers
send crash
sw_expect '451 4\.7\.1 Content filter unavailable' "a filter that dies mid-message"
stop_pid "$(cat "$T/milter.pid")"; rm -f "$T/milter.pid"
send clean
sw_expect '451 4\.7\.1 Content filter unavailable' "no filter listening"
say "too slow, dead mid-message, not listening: 451 4.7.1 (milter-default-action tempfail), logged"

# garbage: a filter that answers the negotiation with junk
python3 - "$GARBAGE_PORT" >"$T/garbage.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
while True:
    c, _ = s.accept()
    c.recv(100)
    c.sendall(b"\x7f\xff\xff\xffOgarbage")	# a 2 GiB packet
    c.close()
PY
echo $! >"$T/garbage.pid"
sed -i "s/^milter test .*/milter test inet:127.0.0.1:$GARBAGE_PORT/" "$SPOOLD_CONF"
echo "milter-default-action accept" >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0; until [ "$(grep -c 'reloaded' "$SPOOLD_LOG")" -ge 1 ]; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
_i=0; until python3 -c "import socket; socket.create_connection(('127.0.0.1',$GARBAGE_PORT),1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the garbage filter did not start"; sleep 0.05
done
send reject
[ -n "$(sw_queued)" ] || fail "milter-default-action accept did not store: $(cat "$T/swaks.out")"
grep -q 'milter test: a packet longer than 1 MiB' "$SPOOLD_LOG" || fail "no log line for the garbage"
grep -q 'unavailable (.*): accepted without it' "$SPOOLD_LOG" || fail "no log line for the accept"
alive "$SPOOLD_PID" || fail "spoold died"
say "a filter that sends garbage: logged, and with milter-default-action accept the message is stored"
check_sanitizers
