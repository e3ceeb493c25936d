#!/bin/sh
# t27-logs.sh - the log in Postfix's forms, read by the real pflogsumm
# (Debian pflogsumm, --syslog-name=spoold) over what one run of spoold
# wrote: 5 received, 3 delivered, 1 deferred, 1 bounced, 3 rejected (two
# at RCPT, one over the size limit at the end of data); the lines a postmaster greps for (client=, message-id=,
# from=/size=/nrcpt=, to=/relay=/delay=/delays=/dsn=/status=, removed, the
# disconnect counts) are checked one by one; then a run to a site that is
# down with 21 messages logs each deferred once (from the log thread).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_swaks
PFLOGSUMM=$(command -v pflogsumm || echo /usr/sbin/pflogsumm)
[ -x "$PFLOGSUMM" ] || fail "pflogsumm is not installed (contrib/deps.sh test installs it)"

SINK_PORT=$(free_port)
DOWN_PORT=$(free_port)	# nothing listens there: the site is down
REFUSE_PORT=$(free_port)
sink
"$SINK" -u nobody -f RCPT "127.0.0.1:$REFUSE_PORT" 100 >"$T/refuse.log" 2>&1 &
echo $! >"$T/refuse.pid"
write_conf
cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain down.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$DOWN_PORT
    recipients any
}
domain refuse.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$REFUSE_PORT
    recipients any
}
EOF
start_spoold

sw -f a@client.test -t u1@site.test
id1=$(sw_queued)
cp "$T/swaks.out" "$T/swaks.first"
sw -f a@client.test -t u2@site.test
sw -f b@client.test -t u3@site.test
sw -f a@client.test -t d1@down.test
idd=$(sw_queued)
sw -f "<>" -t r1@refuse.test	# no DSN for it
[ -n "$id1" ] && [ -n "$idd" ] && [ -n "$(sw_queued)" ] || fail "messages were not accepted: $(cat "$T/swaks.out")"
# refused: relay, an unknown user, a message over max-message-size
sw -f a@client.test -t x@elsewhere.test
sw -f a@client.test -t nosuch@other.test
python3 -c 'print("x" * 120000)' >"$T/big"
sw -f a@client.test -t u4@site.test --body "$T/big"
etrn 127.0.0.1 site.test down.test refuse.test
wait_count site.test 0
wait_count refuse.test 0
_i=0
until grep -q "to=<d1@down.test>.*status=deferred" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no deferred line for down.test"; sleep 0.05
done
stop_pid "$(cat "$T/refuse.pid")"

# ---- the lines, one by one ----
grep -Eq " spoold/smtpd\[[0-9]+\]: $id1: client=unknown\[127\.0\.0\.1\], session=[0-9a-f]{16}\$" "$SPOOLD_LOG" ||
	fail "no client= line for $id1"
mid=$(sed -n 's/^ -> Message-Id: \(<[^>]*>\).*/\1/ip' "$T/swaks.first" | head -1)
grep -qF " $id1: message-id=$mid" "$SPOOLD_LOG" ||
	fail "no message-id= line for $id1"
grep -Eq " spoold/qmgr\[[0-9]+\]: $id1: from=<a@client.test>, size=[0-9]+, nrcpt=1 \(queue active\)\$" "$SPOOLD_LOG" ||
	fail "no from= line for $id1"
grep -Eq " spoold/smtp\[[0-9]+\]: $id1: to=<u1@site.test>, relay=\[127\.0\.0\.1\]:$SINK_PORT, delay=[0-9.]+, delays=0/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(250 " "$SPOOLD_LOG" ||
	fail "no to=/status=sent line for $id1"
grep -Eq " spoold/qmgr\[[0-9]+\]: $id1: removed\$" "$SPOOLD_LOG" || fail "no removed line for $id1"
grep -Eq " spoold/smtp\[[0-9]+\]: $idd: to=<d1@down.test>, relay=\[127\.0\.0\.1\]:$DOWN_PORT, delay=[0-9.]+, delays=[0-9./]+, dsn=4\.4\.1, status=deferred \(connect to " "$SPOOLD_LOG" ||
	fail "no per-recipient deferred line when the site is down"
grep -q "$idd: removed" "$SPOOLD_LOG" && fail "the deferred message was logged as removed"
grep -Eq " spoold/smtpd\[[0-9]+\]: [0-9a-f]{16}: reject: RCPT from unknown\[127\.0\.0\.1\]: 5[0-9][0-9] [0-9.]+ .*; from=<a@client.test> to=<x@elsewhere.test> proto=ESMTP helo=<" "$SPOOLD_LOG" ||
	fail "no reject: RCPT line for the relay attempt"
grep -Eq " spoold/smtpd\[[0-9]+\]: [0-9a-f]{16}: disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5 " "$SPOOLD_LOG" ||
	fail "no disconnect line with Postfix's command counts"
grep -Eq " spoold/smtpd\[[0-9]+\]: [0-9a-f]{16}: disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4 " "$SPOOLD_LOG" ||
	fail "no disconnect line counting a refused RCPT as done/tried"
say "Postfix's lines: client=, message-id=, from=/size=/nrcpt=, to=/relay=/delay=/delays=/dsn=/status=, removed, deferred per recipient, reject: RCPT, disconnect counts"

# ---- pflogsumm's counts ----
"$PFLOGSUMM" --syslog-name=spoold "$SPOOLD_LOG" >"$T/pflogsumm.out" 2>"$T/pflogsumm.err" ||
	fail "pflogsumm failed: $(cat "$T/pflogsumm.err")"
count() {	# count LABEL - pflogsumm's Grand Totals figure for LABEL
	sed -n "s/^ *\([0-9][0-9]*\) *$1\( .*\)*\$/\1/p" "$T/pflogsumm.out" | head -1
}
for want in "received 5" "delivered 3" "deferred 1" "bounced 1" "rejected 3"; do
	label=${want% *}
	[ "$(count "$label")" = "${want#* }" ] ||
		fail "pflogsumm counts $(count "$label") $label, expected ${want#* }:
$(sed -n '/Grand Totals/,/Per-Hour/p' "$T/pflogsumm.out")"
done
grep -q 'site.test' "$T/pflogsumm.out" || fail "pflogsumm lists no recipient domain site.test"
say "pflogsumm --syslog-name=spoold: 5 received, 3 delivered, 1 deferred, 1 bounced, 3 rejected"

# ---- a site that is down, with 21 messages ----
# (a run that cannot start leaves their log to a thread): each deferred once
ids=""
for i in $(seq 1 20); do
	sw -f a@client.test -t "m$i@down.test"
	ids="$ids $(sw_queued)"
done
before=$(grep -c '@down.test>, .*status=deferred' "$SPOOLD_LOG")
etrn 127.0.0.1 down.test
grep -q '^253 ' "$T/etrn.out" || fail "ETRN down.test: $(cat "$T/etrn.out")"
_i=0
until [ "$(grep -c '@down.test>, .*status=deferred' "$SPOOLD_LOG")" -ge $((before + 21)) ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "not every message of down.test was logged deferred"; sleep 0.05
done
for id in $ids; do
	[ "$(grep -c " $id: to=<m[0-9]*@down.test>, .*status=deferred (connect to " "$SPOOLD_LOG")" = 1 ] ||
		fail "$id: not one deferred line"
done
say "a run to a site that is down: a deferred line for each of its 21 messages, once"
check_sanitizers
