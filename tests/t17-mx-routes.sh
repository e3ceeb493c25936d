#!/bin/sh
# t17-mx-routes.sh - routes by name: deliver-to mx (RFC 5321 5.1: the best
# MX first, the next one when it is down, never this host or an MX not
# better than it; RFC 7505 null MX bounces), deliver-to host:port, and DSNs
# to senders elsewhere, which spoold sends by MX on its own.  A private
# dnsmasq answers for .test; smtp-sink on 127.0.0.1 is every MX (mx-port
# points spoold at its port), 127.0.0.2 is an MX that is down.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || fail "dnsmasq is not installed (contrib/deps.sh test installs dnsmasq-base)"
LOOKUP="$top_builddir/tests/dns_lookup"

SINK_PORT=$(free_port)
DNS_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# nullmx.test: one MX record "0 ." in wire form (RFC 7505)
"$DNSMASQ" --no-daemon --conf-file=/dev/null --pid-file --no-resolv --no-hosts \
    --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces --local=/test/ \
    --log-queries --log-facility=- \
    --mx-host=mxsite.test,mx1.mxsite.test,10 --mx-host=mxsite.test,mx2.mxsite.test,20 \
    --host-record=mx1.mxsite.test,127.0.0.2 --host-record=mx2.mxsite.test,127.0.0.1 \
    --mx-host=selfmx.test,mx.test,10 --mx-host=selfmx.test,backup.selfmx.test,20 \
    --host-record=backup.selfmx.test,127.0.0.1 \
    --dns-rr=nullmx.test,15,000000 \
    --host-record=sinkhost.test,127.0.0.1 \
    --mx-host=outside.test,mail.outside.test,10 --host-record=mail.outside.test,127.0.0.3 \
    --host-record=noaddr-mx.test,127.0.0.1 \
    >"$T/dnsmasq.log" 2>&1 &
echo $! >"$T/dnsmasq.pid"
_i=0
until "$LOOKUP" -s "127.0.0.1:$DNS_PORT" addr sinkhost.test >/dev/null 2>&1; do
	alive "$(cat "$T/dnsmasq.pid")" || error "dnsmasq exited: $(cat "$T/dnsmasq.log")"
	_i=$((_i + 1)); [ $_i -le 100 ] || error "dnsmasq did not answer within 5 s"; sleep 0.05
done

sink
write_conf "etrn-rate 1000" "resolver 127.0.0.1:$DNS_PORT" "mx-port $SINK_PORT"
for d in mxsite selfmx nullmx; do
	cat >>"$SPOOLD_CONF" <<EOF
domain $d.test {
    etrn-from  127.0.0.1
    deliver-to mx
    recipients any
}
EOF
done
cat >>"$SPOOLD_CONF" <<EOF
domain hostsite.test {
    etrn-from  127.0.0.1
    deliver-to sinkhost.test:$SINK_PORT
    recipients any
}
domain gone.test {
    etrn-from  127.0.0.1
    deliver-to nosuchhost.test:$SINK_PORT
    recipients any
}
EOF
"$SPOOLD" -c "$SPOOLD_CONF" -n >"$T/n.out" 2>&1 || fail "spoold -n: $(cat "$T/n.out")"
start_spoold

# ---- deliver-to mx: the best MX is down, the next one takes it ----
sw -t u1@mxsite.test -f a@home.test
etrn 127.0.0.1 mxsite.test
expect_etrn '^253 2\.0\.0 1 ' "ETRN mxsite.test"
wait_count mxsite.test 0
grep -q "delivery run domain=mxsite.test relay=mx1.mxsite.test\[127.0.0.2\]:$SINK_PORT status=deferred (connect to " "$SPOOLD_LOG" ||
	fail "the preference-10 MX (down) was not tried first"
grep -q "to=<u1@mxsite.test>, relay=mx2.mxsite.test\[127.0.0.1\]:$SINK_PORT, .*status=sent" "$SPOOLD_LOG" ||
	fail "no delivery through the preference-20 MX"
[ "$(dumped)" -eq 1 ] || fail "the sink got $(dumped) messages, expected 1"
say "deliver-to mx: mx1 (pref 10) down, delivered through mx2 (pref 20), logged as host[address]:port"

# ---- we are the best MX: no route, the mail waits ----
sw -t u2@selfmx.test -f a@home.test
etrn 127.0.0.1 selfmx.test
_i=0
until spoolctl show selfmx.test | grep -q "^# last attempt .* failed (1 in a row): this host (mx.test) is the best MX for selfmx.test: no route"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "self as best MX: $(spoolctl show selfmx.test)"; sleep 0.05
done
[ "$(domain_count selfmx.test)" = 1 ] || fail "mail for a domain we are the best MX of went somewhere"
say "this host as the best MX: the worse MX is not used, the mail waits, spoolctl says why"

# ---- null MX (RFC 7505): bounced, DSN to the sender ----
sw -t u3@nullmx.test -f a@hostsite.test
etrn 127.0.0.1 nullmx.test
wait_count nullmx.test 0
grep -q "to=<u3@nullmx.test>, .*status=bounced (550 5.1.2 nullmx.test has a null MX" "$SPOOLD_LOG" ||
	fail "no bounce for a null MX"
wait_count hostsite.test 1	# the DSN, for a@hostsite.test
say "null MX: the recipient bounces with 5.1.2, the DSN is queued for the sender's domain"

# more than one batch (256) of a domain that takes no mail: all bounced
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
if [ -x "$SOURCE" ]; then
	"$SOURCE" -s 4 -m 300 -f a@hostsite.test -t many@nullmx.test "127.0.0.1:$SMTP_PORT" ||
		fail "smtp-source could not queue 300 messages"
	wait_count nullmx.test 300
	etrn 127.0.0.1 nullmx.test
	wait_count nullmx.test 0
	n=$(grep -c 'to=<many@nullmx.test>, .*status=bounced (550 5.1.2' "$SPOOLD_LOG")
	[ "$n" -eq 300 ] || fail "$n of 300 messages bounced for the null MX"
	wait_count hostsite.test 301	# their DSNs, and the first one's
	say "300 messages for a null-MX domain: all bounced (in batches of 256), 300 DSNs queued"
fi

# ---- deliver-to host:port ----
rm -f "$T"/dump/*
etrn 127.0.0.1 hostsite.test
wait_count hostsite.test 0
grep -q "relay=sinkhost.test\[127.0.0.1\]:$SINK_PORT, .*status=sent" "$SPOOLD_LOG" || fail "deliver-to host:port not used"
grep -l 'nullmx.test has a null MX' "$T"/dump/* >/dev/null || fail "the DSN did not reach hostsite.test's host"
sw -t u4@gone.test -f a@home.test
etrn 127.0.0.1 gone.test
_i=0
until spoolctl show gone.test | grep -q "^# last attempt .* failed (1 in a row): no address to deliver to (nosuchhost.test: no address)"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "a route host with no address: $(spoolctl show gone.test)"; sleep 0.05
done
[ "$(domain_count gone.test)" = 1 ] || fail "a route host with no address lost the mail"
say "deliver-to host:port resolved and used; a host with no address defers (the mail stays)"

# ---- a DSN to a sender elsewhere goes out by MX on its own ----
# outside.test's MX is a second sink, on 127.0.0.3, up before the bounces:
# the DSN leaves as soon as it is queued, while the first still refuses
rm -f "$T"/dump/*
"$SINK" -u nobody -d "$T/dump/%M." "127.0.0.3:$SINK_PORT" 100 >"$T/sink3.log" 2>&1 &
echo $! >"$T/sink3.pid"
_i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.3',$SINK_PORT),1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the second smtp-sink did not start"; sleep 0.05
done
sink -f RCPT
sw -t u5@mxsite.test -f someone@outside.test
sw -t u6@mxsite.test -f someone@nowhere.test
etrn 127.0.0.1 mxsite.test
wait_count mxsite.test 0
_i=0
until [ "$(domain_count outside.test)" = 0 ] && [ "$(domain_count nowhere.test)" = 0 ] && [ "$(dumped)" -ge 1 ]; do
	_i=$((_i + 1)); [ $_i -le 400 ] || fail "DSNs to outside senders not sent: $(spoolctl list)"; sleep 0.05
done
f=$(grep -l '^X-Rcpt-Args: <someone@outside.test>' "$T"/dump/*) || fail "the DSN did not reach outside.test's MX"
grep -q '^X-Mail-Args: <>' "$f" || fail "the DSN was not sent from <>"
grep -q "to=<someone@nowhere.test>, .*status=bounced (550 5.1.2 MX lookup for nowhere.test: no such domain" "$SPOOLD_LOG" ||
	fail "the undeliverable DSN was not dropped with a log line"
say "DSNs to senders elsewhere: sent by MX without ETRN; one to a domain that does not exist is dropped and logged"
stop_pid "$(cat "$T/sink3.pid")"
check_sanitizers
stop_spoold
