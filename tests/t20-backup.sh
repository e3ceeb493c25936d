#!/bin/sh
# t20-backup.sh - backup-MX mode and the protection of the spool: a backup
# domain drains on its own once its primary is back, a primary that keeps
# answering 4xx gets a backed-off schedule, spoolctl hold/release/retry;
# max-age expiry (one DSN per message, Status 4.4.7, none for <> or
# NOTIFY=NEVER; 30 days moved by libfaketime); quotas; drain-only; rate
# limits per client address.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need swaks

SINK_PORT=$(free_port)
DOWN_PORT=$(free_port)
write_conf "etrn-rate 1000"
cat >>"$SPOOLD_CONF" <<EOF
domain backup.test {
    mode       backup
    retry      1s
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain slow.test {
    mode       backup
    retry      1s
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain exp.test {
    max-age    3s
    recipients any
}
domain warn.test {
    delay-warning 2s
    recipients any
}
domain home.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
domain q.test {
    etrn-from  127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    quota      1M 2
    recipients any
}
EOF
start_spoold

# ---- primary down, then up: the domain drains without ETRN ----
sw -t b1@backup.test -f a@x.test
sw -t b2@backup.test -f a@x.test
_i=0
until grep -q 'delivery run domain=backup.test .*status=deferred (connect to' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no attempt while the primary was down"; sleep 0.05
done
[ "$(domain_count backup.test)" = 2 ] || fail "a failed attempt lost mail"
sink
wait_count backup.test 0
[ "$(dumped)" -eq 2 ] || fail "the primary got $(dumped) messages, expected 2"
say "mode backup: attempts while the primary is down keep the mail; once it is up the domain drains on its own"

# ---- hold and release ----
spoolctl hold backup.test | grep -q 'backup.test held' || fail "spoolctl hold"
spoolctl show backup.test | grep -q '^# held' || fail "spoolctl show does not say held"
runs=$(grep -c 'delivery run domain=backup.test .*started' "$SPOOLD_LOG")
sw -t b3@backup.test -f a@x.test
sleep 3
[ "$(domain_count backup.test)" = 1 ] || fail "a held domain was delivered"
[ "$(grep -c 'delivery run domain=backup.test .*started' "$SPOOLD_LOG")" = "$runs" ] ||
	fail "a held domain got a run"
spoolctl release backup.test >/dev/null || fail "spoolctl release"
wait_count backup.test 0
sw -t b4@backup.test -f a@x.test
spoolctl hold backup.test >/dev/null
out=$(spoolctl retry backup.test) || fail "spoolctl retry: $out"
wait_count backup.test 0
spoolctl release backup.test >/dev/null
say "spoolctl hold stops the retries (nothing delivered for 3 s), release resumes them, retry delivers now even while held"

# ---- loops: a route to our own listener, a peer greeting with our name ----
MIRROR_PORT=$(free_port)
cat >>"$SPOOLD_CONF" <<EOF
domain loop.test {
    mode       backup
    retry      1s
    deliver-to [127.0.0.1]:$SMTP_PORT
    recipients any
}
domain mirror.test {
    mode       backup
    retry      1s
    deliver-to [127.0.0.1]:$MIRROR_PORT
    recipients any
}
EOF
kill -HUP "$SPOOLD_PID"
_i=0; until grep -q 'reloaded' "$SPOOLD_LOG"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
while True:
    c, _ = s.accept(); c.sendall(b"220 MX.test ESMTP a mirror\r\n"); c.recv(100); c.close()' "$MIRROR_PORT" >"$T/mirror.log" 2>&1 &
echo $! >"$T/mirror.pid"
sw -t l1@loop.test -f a@x.test
sw -t m1@mirror.test -f a@x.test
_i=0
until spoolctl show loop.test | grep -q "failed .*127.0.0.1\]:$SMTP_PORT is this spoold's own listener: the route loops"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no loop detected for a route to our own listener: $(spoolctl show loop.test)"; sleep 0.05
done
_i=0
until spoolctl show mirror.test | grep -q "failed .*mail loops back to myself: the greeting names mx.test"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no loop detected for a greeting with our name: $(spoolctl show mirror.test)"; sleep 0.05
done
[ "$(domain_count loop.test)" = 1 ] && [ "$(domain_count mirror.test)" = 1 ] || fail "a loop lost mail"
stop_pid "$(cat "$T/mirror.pid")"; rm -f "$T/mirror.pid"
spoolctl hold loop.test >/dev/null; spoolctl hold mirror.test >/dev/null
say "a route to our own listener and a peer greeting with our name are loops: deferred with the reason, the mail kept"

# ---- a primary that always answers 4xx: backoff ----
sink -r RCPT
sw -t s1@slow.test -f a@x.test
sleep 20
n=$(grep -c 'delivery run domain=slow.test .*started' "$SPOOLD_LOG")
[ "$n" -ge 3 ] && [ "$n" -le 7 ] || fail "retry 1s with a primary answering 4xx: $n attempts in 20 s, expected 3-7 (1, 2, 4, 8 s apart)"
spoolctl show slow.test | grep -q "failed ($((n)) in a row): .*every recipient deferred (450" ||
	fail "the deferrals are not counted as failed attempts: $(spoolctl show slow.test)"
[ "$(domain_count slow.test)" = 1 ] || fail "4xx lost the mail"
# the next attempt spoolctl prints is the scheduler's: after N failures in
# a row, retry doubled N-1 times with +-20% jitter, from the last attempt
spoolctl show slow.test >"$T/slow.show"
python3 - "$T/slow.show" <<'PY' || fail "spoolctl show's next attempt is not the backed-off one: $(cat "$T/slow.show")"
import datetime, re, sys, time
text = open(sys.argv[1]).read()
last = re.search(r"^# last attempt (\S+) failed \((\d+) in a row\)", text, re.M)
nxt = re.search(r"^# next attempt: (.*)$", text, re.M)
if not last or not nxt:
    sys.exit("no last or next attempt line")
parse = lambda t: datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S%z").timestamp()
t0, n = parse(last.group(1)), int(last.group(2))
lo, hi = 0.8 * 2 ** (n - 1) - 1, 1.2 * 2 ** (n - 1) + 1
if nxt.group(1) == "at spoold's next look":
    sys.exit(0 if time.time() >= t0 + lo else "due now, but the backoff has not passed")
wait = parse(nxt.group(1)) - t0
sys.exit(0 if lo <= wait <= hi else "next - last = %.0f s after %d failures, expected %.1f-%.1f" % (wait, n, lo, hi))
PY
grep -q '^    s1@slow.test: [0-9]* attempts\?, next [0-9T:+-]*\|^    s1@slow.test: .*next at spoold' "$T/slow.show" ||
	fail "the recipient line does not give the domain's next attempt: $(cat "$T/slow.show")"
sink
say "a primary answering 4xx to every recipient: $n attempts in 20 s with retry 1s (backed off), the mail kept; spoolctl show gives the backed-off next attempt"
spoolctl show loop.test | grep -q '^# last attempt' || fail "no attempt shown for loop.test: $(spoolctl show loop.test)"
spoolctl show loop.test | grep -q '^# next attempt' && fail "a held domain shows a next attempt: $(spoolctl show loop.test)"
say "a held domain shows its last attempt and no next one"

# ---- max-age: one DSN per message (4.4.7), none for <> or NOTIFY=NEVER ----
python3 - "$SMTP_PORT" <<'PY' || fail "sending to exp.test"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
msg = "Subject: will expire\r\n\r\nbody\r\n"
s.sendmail("a@home.test", ["e1@exp.test", "e2@exp.test"], msg)
s.sendmail("a@home.test", ["e3@exp.test"], msg)
s.sendmail("", ["e4@exp.test"], msg)
s.sendmail("a@home.test", ["e5@exp.test"], msg, rcpt_options=["NOTIFY=NEVER"])
s.quit()
PY
wait_count exp.test 0
wait_count home.test 2
for r in e1 e2 e3 e4 e5; do
	grep -q "to=<$r@exp.test>, .*dsn=4.4.7, status=expired" "$SPOOLD_LOG" || fail "$r not expired"
done
rm -f "$T"/dump/*
etrn 127.0.0.1 home.test
wait_count home.test 0
[ "$(dumped)" -eq 2 ] || fail "$(dumped) DSNs, expected 2 (one per message, none for <> or NOTIFY=NEVER)"
python3 - "$T"/dump/* <<'PY' || fail "the expiry DSNs: $(cat "$T"/dump/*)"
import email, sys
finals = []
for path in sys.argv[1:]:
    m = email.message_from_bytes(open(path, "rb").read())
    assert m["X-Mail-Args"].split()[0] == "<>"
    status = [dict(b.items()) for b in m.get_payload()[1].get_payload()]
    for r in status[1:]:
        assert r["Action"] == "failed" and r["Status"] == "4.4.7", r
        assert "delivery time expired" in r["Diagnostic-Code"], r
        finals.append(r["Final-Recipient"])
assert sorted(finals) == ["rfc822; e1@exp.test", "rfc822; e2@exp.test", "rfc822; e3@exp.test"], finals
PY
say "max-age 3s: 5 recipients expired; 2 DSNs (e1+e2 in one, e3), Action failed, Status 4.4.7; none for <> or NOTIFY=NEVER"

# ---- delay-warning: one delay notice per message, the mail stays ----
python3 - "$SMTP_PORT" <<'PY' || fail "sending to warn.test"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
msg = "Subject: waits\r\n\r\nbody\r\n"
s.sendmail("a@home.test", ["w1@warn.test", "w2@warn.test"], msg)
s.sendmail("a@home.test", ["w3@warn.test"], msg, rcpt_options=["NOTIFY=FAILURE"])
s.quit()
PY
wait_count home.test 1
sleep 4
[ "$(domain_count home.test)" = 1 ] || fail "$(domain_count home.test) delay notices, expected exactly 1"
[ "$(domain_count warn.test)" = 2 ] || fail "a delay notice removed mail"
rm -f "$T"/dump/*
etrn 127.0.0.1 home.test
wait_count home.test 0
python3 - "$T"/dump/* <<'PY' || fail "the delay notice: $(cat "$T"/dump/*)"
import email, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read())
assert m["Subject"].startswith("Delayed Mail"), m["Subject"]
status = [dict(b.items()) for b in m.get_payload()[1].get_payload()]
assert [r["Final-Recipient"] for r in status[1:]] == ["rfc822; w1@warn.test", "rfc822; w2@warn.test"], status
for r in status[1:]:
    assert r["Action"] == "delayed" and r["Status"].startswith("4."), r
PY
say "delay-warning 2s: one delay notice (Action delayed, 4.x.x) for the message to w1+w2, none for NOTIFY=FAILURE, none again later; the mail stays"

# ---- quota: 452 4.2.2 at RCPT, accepted again after a pull ----
sw -t q1@q.test -f a@x.test
sw -t q2@q.test -f a@x.test
sw -t q3@q.test -f a@x.test
sw_expect '452 4\.2\.2 ' "a third message over quota 1M 2"
spoolctl list | grep -q '^q.test .*(quota: 2/2 messages, [0-9]*/1048576 bytes)' ||
	fail "spoolctl list does not show the quota: $(spoolctl list)"
etrn 127.0.0.1 q.test
wait_count q.test 0
sw -t q3@q.test -f a@x.test
[ -n "$(sw_queued)" ] || fail "not accepted again after the pull"
say "quota 1M 2: the third message gets 452 4.2.2 at RCPT, spoolctl list shows 2/2; after ETRN drained it, mail is taken again"
check_sanitizers
stop_spoold

# ---- drain-only: a small max-spool-size fills, ETRN still works ----
sed -i 's/^max-message-size .*/max-message-size 64K/' "$SPOOLD_CONF"
echo "max-spool-size 2M" >>"$SPOOLD_CONF"
echo "drain-threshold 1M" >>"$SPOOLD_CONF"
rm -rf "$T/spool"
start_spoold
big=$(python3 -c 'print("x" * 60000)')
i=0
while :; do
	i=$((i + 1)); [ $i -le 200 ] || fail "drain-only never began"
	sw -t "d$i@home.test" -f a@x.test --body "$big"
	grep -q '452 4\.3\.1' "$T/swaks.out" && break
	sleep 0.1
done
grep -q 'drain-only on' "$SPOOLD_LOG" || fail "no drain-only log line"
etrn 127.0.0.1 home.test
expect_etrn '^253 ' "ETRN during drain-only"
wait_count home.test 0
_i=0
until grep -q 'drain-only off' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "drain-only did not end after the spool drained"; sleep 0.05
done
sw -t after@home.test -f a@x.test
[ -n "$(sw_queued)" ] || fail "mail refused after drain-only ended: $(cat "$T/swaks.out")"
say "drain-only: after $i messages MAIL got 452 4.3.1; ETRN drained the spool, drain-only ended by itself and mail is taken again"
stop_spoold

# ---- rate limits per client address ----
echo "rate-connections 5" >>"$SPOOLD_CONF"
echo "rate-messages 3" >>"$SPOOLD_CONF"
start_spoold
python3 - "$SMTP_PORT" <<'PY' || fail "rate limits"
import smtplib, socket, sys
port = int(sys.argv[1])
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.ehlo("c.test")
codes = [s.docmd("MAIL FROM:<a@x.test>")[0]]
for _ in range(3):
    s.docmd("RSET")
    codes.append(s.docmd("MAIL FROM:<a@x.test>")[0])
assert codes == [250, 250, 250, 421], codes
greetings = []
for _ in range(5):
    c = socket.create_connection(("127.0.0.1", port), 5)
    greetings.append(c.recv(200)[:3])
    c.close()
assert greetings[:4] == [b"220"] * 4 and greetings[4] == b"421", greetings
other = socket.create_connection(("127.0.0.1", port), 5, source_address=("127.0.0.2", 0))
assert other.recv(200)[:3] == b"220"
PY
say "rate-messages 3: the 4th MAIL in a minute gets 421 4.7.0; rate-connections 5: the 6th connection gets 421, another address does not"
stop_spoold

# ---- a 30-day max-age with libfaketime moving the clock ----
FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FT" ] || fail "$FT is not installed (contrib/deps.sh test installs faketime)"
# ASan's interceptors and libfaketime's preload do not mix; the plain
# build of the same suite runs this part.
if ! grep -q -a __asan_init "$SPOOLD"; then
	sed -i '/^rate-/d' "$SPOOLD_CONF"
	cat >>"$SPOOLD_CONF" <<EOF
domain month.test {
    recipients any
}
EOF
	echo "+0" >"$T/faketime"
	SPOOLD_PRELOAD_SAVE=${LD_PRELOAD:-}
	LD_PRELOAD=$FT FAKETIME_TIMESTAMP_FILE=$T/faketime FAKETIME_NO_CACHE=1 \
	    FAKETIME_DONT_FAKE_MONOTONIC=1 start_spoold
	LD_PRELOAD=$SPOOLD_PRELOAD_SAVE
	sw -t m1@month.test -f a@home.test
	sleep 2
	[ "$(domain_count month.test)" = 1 ] || fail "a fresh message expired"
	echo "+29d" >"$T/faketime"
	sleep 3
	[ "$(domain_count month.test)" = 1 ] || fail "expired after 29 days (max-age 30d)"
	echo "+31d" >"$T/faketime"
	wait_count month.test 0
	grep -q 'to=<m1@month.test>, .*dsn=4.4.7, status=expired (450 4.4.7 delivery time expired: not delivered in 30 days' "$SPOOLD_LOG" ||
		fail "no 30-day expiry line"
	stop_spoold
	say "max-age 30d (default) with libfaketime: kept at +29 days, expired with a DSN at +31 days"
else
	say "ASan build: the 30-day clock test runs in the plain build only"
fi
