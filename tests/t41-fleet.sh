#!/bin/sh
# t41-fleet.sh - a fleet (issue 14, point 5): three independent spoold nodes
# on 127.0.0.11, .12 and .13 (the same port, each its own datadir and
# configuration), all three MX for fleet.test with the same preference in a
# private dnsmasq; a real Postfix sends to the domain's MX set while the
# nodes are killed (SIGKILL) and restarted one at a time on their datadirs;
# at the site, etrnclient (the daemon) has one server block per node and
# pulls from all three (ETRN; the nodes deliver to the site's MTA,
# smtp-sink, by name through the same dnsmasq).  The nodes' spoold.conf
# and etrnclient.conf are the README's recipe ("A fleet of nodes", between
# its fleet-node and fleet-etrnclient markers) with the test's names,
# addresses and ports.  Every message Postfix logged status=sent for
# reaches the site, and every extra copy is one a kill explains: the same
# stored message again (a node killed after the site's 250 but before it
# recorded the delivery: at most delivery-window, here 1, per kill), or a
# second stored copy of a message whose sending Postfix logged "message may
# be sent more than once" (a node killed after its commit but before its
# 250 reached Postfix).  The numbers are printed, with whether the issue's
# "at most one duplicate per kill" held; that is reported, not required:
# one kill can catch a delivery to the site and a sender's end of data at
# once, and a group commit answers several sessions together, so the
# bounds above are the ones the design gives.
#
# Postfix and DNS: Postfix's smtp(8) takes its DNS servers from
# /etc/resolv.conf alone (port 53, no setting of its own).  Rather than
# touch the host's file, or fake the MX set with a hosts file or a list of
# [address]:port nexthops (which would not test MX routing), the instance
# runs in a mount namespace of its own with a private resolv.conf bound over
# /etc/resolv.conf (tests/lib.sh, PF_RESOLV_CONF), and dnsmasq listens on
# port 53 of a loopback address of its own (127.0.53.X).  The only thing not
# DNS is the port: a transport map entry "smtp:fleet.test:PORT", which
# still makes Postfix look up the MX records of fleet.test (no brackets)
# and go to each MX host on PORT.
#
# The customers are in one PostgreSQL (a private cluster in $T): fleet.test
# is a row of its table, which every node reads with `domains pgsql:` (the
# same lookup file), so the nodes restarted after a kill serve it from
# their copy or the database; at the end a domain added in PostgreSQL must
# be accepted by all three nodes, each timed from the INSERT's commit (the
# issue asks for a second; the times are printed, and only a bound of 10 s
# fails the test: this machine is shared).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_postfix
need unshare
pg_start
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || fail "dnsmasq is not installed (contrib/deps.sh test installs dnsmasq-base)"
EC="$top_builddir/etrnclient/etrnclient"
[ -x "$EC" ] || error "$EC is not built"

N=${T41_MESSAGES:-2400}		# messages Postfix is given
SEND_SECS=${T41_SEND_SECS:-60}	# over this long, while nodes are killed
CONC=4				# Postfix's sessions to fleet.test at most
WINDOW=1			# the nodes' delivery-window
NODES="1 2 3"
START=$(date +%s)

# ---- addresses and ports ----
# port_free ADDR PORT [udp] - nobody is bound to ADDR:PORT
port_free() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[3:] == ["udp"] else socket.SOCK_STREAM)
s.bind((sys.argv[1], int(sys.argv[2])))' "$@" 2>/dev/null
}
PORT=
for _try in 1 2 3 4 5 6 7 8 9 10; do
	_p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.11",0)); print(s.getsockname()[1])')
	port_free 127.0.0.12 "$_p" && port_free 127.0.0.13 "$_p" && { PORT=$_p; break; }
done
[ -n "$PORT" ] || error "no port free on 127.0.0.11, .12 and .13"
DNS_ADDR=
for _try in 1 2 3 4 5 6 7 8 9 10; do
	_a=127.0.53.$((RANDOM % 250 + 2))
	port_free "$_a" 53 udp && port_free "$_a" 53 && { DNS_ADDR=$_a; break; }
done
[ -n "$DNS_ADDR" ] || error "port 53 is taken on every 127.0.53.X tried"
SINK_PORT=$(free_port)
PF_PORT=$(free_port)

# ---- the private DNS: fleet.test's MX set, the site's gateway ----
# --local=/test/: every other name in .test is NXDOMAIN, nothing upstream
"$DNSMASQ" --no-daemon --conf-file=/dev/null --pid-file --no-resolv --no-hosts \
    --port=53 --listen-address="$DNS_ADDR" --bind-interfaces --local=/test/ \
    --log-queries --log-facility=- \
    --mx-host=fleet.test,node1.fleet.test,10 --mx-host=fleet.test,node2.fleet.test,10 \
    --mx-host=fleet.test,node3.fleet.test,10 \
    --host-record=node1.fleet.test,127.0.0.11 --host-record=node2.fleet.test,127.0.0.12 \
    --host-record=node3.fleet.test,127.0.0.13 --host-record=gw.site.test,127.0.0.1 \
    >"$T/dnsmasq.log" 2>&1 &
echo $! >"$T/dnsmasq.pid"
_i=0
until python3 -c 'import socket, sys
q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05fleet\x04test\x00\x00\x0f\x00\x01"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(0.5)
u.sendto(q, (sys.argv[1], 53)); r = u.recv(512)
sys.exit(0 if r[3] & 15 == 0 and r[7] == 3 else 1)' "$DNS_ADDR" 2>/dev/null; do
	alive "$(cat "$T/dnsmasq.pid")" || error "dnsmasq exited: $(cat "$T/dnsmasq.log")"
	_i=$((_i + 1)); [ $_i -le 50 ] || error "dnsmasq on $DNS_ADDR:53 gives no 3 MX records for fleet.test"
	sleep 0.1
done

# ---- the site: smtp-sink as its MTA, etrnclient pulling from each node ----
sink

# ---- the customers, in PostgreSQL (the README's trigger) ----
sql >"$T/psql.out" 2>&1 <<EOF || fail "psql: $(cat "$T/psql.out")"
CREATE TABLE customers (name text PRIMARY KEY, mode text, etrn_ips text[], deliver_to text,
    recipients text);
CREATE FUNCTION spoold_notify() RETURNS trigger AS \$\$
BEGIN PERFORM pg_notify('spoold_domains', ''); RETURN NULL; END \$\$ LANGUAGE plpgsql;
CREATE TRIGGER spoold_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION spoold_notify();
INSERT INTO customers VALUES ('fleet.test', 'hold', '{127.0.0.0/8}', 'gw.site.test:$SINK_PORT', 'any');
EOF
cat >"$T/domains.cf" <<EOF
hosts    = unix:$PG
user     = spoold
dbname   = spoold
query    = SELECT name AS domain, mode, etrn_ips AS etrn_from, deliver_to, recipients
    FROM customers
notify   = spoold_domains
EOF

# ---- three nodes: the README's recipe, with the test's names and ports ----
sed -n '/<!-- fleet-node begin -->/,/<!-- fleet-node end -->/p' "$top_srcdir/README" |
	sed '1d;$d;s/^    //' >"$T/recipe.conf"
for k in hostname 'listen smtp' datadir delivery-window domains; do
	grep -q "^ *$k " "$T/recipe.conf" || fail "the README's node recipe has no \"$k\" line: $(cat "$T/recipe.conf")"
done
for n in $NODES; do
	mkdir -p "$T/node$n"
	awk -v n="$n" -v port="$PORT" -v dir="$T/node$n/spool" -v dns="$DNS_ADDR" -v cf="$T/domains.cf" '
		$1 == "hostname"   { print "hostname node" n ".fleet.test"; next }
		$1 == "listen"     { print "listen smtp 127.0.0.1" n ":" port; next }
		$1 == "datadir"    { print "datadir " dir; next }
		$1 == "domains"    { print "domains pgsql:" cf; next }
		{ print }
		END { print "resolver " dns ":53"; print "etrn-rate 1000"; print "timeout idle 30s" }
	' "$T/recipe.conf" >"$T/node$n/spoold.conf"
	"$SPOOLD" -n -c "$T/node$n/spoold.conf" >"$T/n.out" 2>&1 || fail "spoold -n node$n: $(cat "$T/n.out")"
done
grep -q "^delivery-window $WINDOW\( \|\$\)" "$T/node1/spoold.conf" ||
	fail "the README's node recipe does not say delivery-window $WINDOW"

# node_start N - start node N on its datadir; wait up to 10 s for its listen file
node_start() {
	rm -f "$T/node$1/listen"
	echo "==== node$1 started $(date '+%T.%N')" >>"$T/node$1.log"
	"$SPOOLD" -c "$T/node$1/spoold.conf" -f --listen-file "$T/node$1/listen" >>"$T/node$1.log" 2>&1 &
	echo $! >"$T/node$1.pid"
	_i=0
	until [ -s "$T/node$1/listen" ]; do
		if ! alive "$(cat "$T/node$1.pid")"; then
			_rc=0; wait "$(cat "$T/node$1.pid")" || _rc=$?
			rm -f "$T/node$1.pid"
			fail "node$1 exited with status $_rc before it was listening"
		fi
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "node$1 wrote no listen file within 10 s"
		sleep 0.05
	done
	grep -q -x "smtp 127.0.0.1$1:$PORT" "$T/node$1/listen" ||
		fail "node$1 listens elsewhere: $(cat "$T/node$1/listen")"
}
# node_kill N - SIGKILL, as a crash or a pulled plug would, and reap it
node_kill() {
	_pid=$(cat "$T/node$1.pid")
	kill -KILL "$_pid" || fail "node$1 (pid $_pid) was already gone"
	wait "$_pid" 2>/dev/null || true
	rm -f "$T/node$1.pid"
	echo "==== node$1 killed $(date '+%T.%N')" >>"$T/node$1.log"
}
# node_count N - messages node N holds for fleet.test
node_count() {
	"$SPOOLCTL" -c "$T/node$1/spoold.conf" list | awk '$1 == "fleet.test" { n = $2 } END { print n + 0 }'
}
for n in $NODES; do node_start "$n"; done

# the README's recipe ("A fleet of nodes"), with the test's names and ports
mkdir -p "$T/locks"
{
	echo "hostname site.test"
	echo "lock-dir $T/locks"
	echo "timeout 30s"
	sed -n '/<!-- fleet-etrnclient begin -->/,/<!-- fleet-etrnclient end -->/p' "$top_srcdir/README" |
		sed '1d;$d;s/^    //' |
		sed "s/mx\([123]\)\.isp\.example/127.0.0.1\1/; s/example\.com/fleet.test/;
		     s/^\( *\)every .*/\1every 2s\\
\1port  $PORT/"
} >"$T/ec.conf"
[ "$(grep -c '^server 127\.0\.0\.1[123] {$' "$T/ec.conf")" -eq 3 ] ||
	fail "no three server blocks from the README's recipe: $(cat "$T/ec.conf")"
"$EC" -n -c "$T/ec.conf" >"$T/n.out" 2>&1 || fail "etrnclient -n: $(cat "$T/n.out")"
"$EC" -c "$T/ec.conf" -f >"$T/etrnclient.log" 2>&1 &
echo $! >"$T/etrnclient.pid"

# ---- the sender: a real Postfix, its DNS the private dnsmasq ----
printf 'nameserver %s\noptions timeout:1 attempts:3\n' "$DNS_ADDR" >"$T/resolv.conf"
PF_RESOLV_CONF=$T/resolv.conf
# retries at once (1 s), and each a fresh MX lookup and host order
printf 'fleet.test smtp:fleet.test:%s\n' "$PORT" >"$T/transport"
touch -t 200001010000 "$T/transport"	# (see postfix_write_config)
PF_MAIN_EXTRA="transport_maps = texthash:$T/transport
smtp_destination_concurrency_limit = $CONC
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
smtp_connect_timeout = 5s
in_flow_delay = 0s"
postfix_start sender.test "$PF_PORT"
say "3 nodes on 127.0.0.11-13:$PORT, dnsmasq on $DNS_ADDR:53 (MX fleet.test: node1-3, pref 10), Postfix on 127.0.0.1:$PF_PORT, site (smtp-sink) on 127.0.0.1:$SINK_PORT"

# ---- $N messages into Postfix over $SEND_SECS s, nodes killed meanwhile ----
python3 - "$PF_PORT" "$N" "$SEND_SECS" >"$T/inject.out" 2>&1 <<'PY' &
import random, smtplib, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("sender.test")
t0 = time.time()
for i in range(1, n + 1):
    rcpt = "u%d@fleet.test" % (i % 7)
    # 2 to 64 KiB: transactions that take a little while
    body = "".join("message %d line %d %s\r\n" % (i, j, "x" * 50)
                   for j in range(random.randint(30, 1000))) + "end of message %d\r\n" % i
    msg = ("From: <a@sender.test>\r\nTo: <%s>\r\nSubject: t41 message %d\r\n"
           "Message-ID: <t41-%05d@sender.test>\r\n\r\n%s") % (rcpt, i, i, body)
    s.sendmail("a@sender.test", [rcpt], msg)
    print("accepted", i, flush=True)
    time.sleep(max(0.0, t0 + i * secs / n - time.time()))
s.quit()
PY
INJECT_PID=$!
echo "$INJECT_PID" >"$T/inject.pid"

# rnd LO HI - a random number of seconds between LO and HI
rnd() {
	awk -v r="$RANDOM" -v lo="$1" -v hi="$2" 'BEGIN { printf "%.3f", lo + r / 32768 * (hi - lo) }'
}
# Each kill is aimed: SIGUSR1 makes etrnclient pull every node at once, so
# the victim is usually in the middle of a delivery run to the site (and
# Postfix may be in the middle of a transaction with it) when SIGKILL comes.
KILLS=0
k=0
while alive "$INJECT_PID"; do
	sleep "$(rnd 0.8 2.0)"
	alive "$INJECT_PID" || break
	k=$((k % 3 + 1))
	kill -USR1 "$(cat "$T/etrnclient.pid")" || fail "etrnclient is gone"
	sleep "$(rnd 0 0.15)"
	node_kill "$k"
	KILLS=$((KILLS + 1))
	sleep "$(rnd 0.2 1.2)"
	node_start "$k"
done
_rc=0; wait "$INJECT_PID" || _rc=$?
rm -f "$T/inject.pid"
[ "$_rc" -eq 0 ] || fail "the injector failed (status $_rc): $(tail -n 5 "$T/inject.out")"
[ "$(grep -c '^accepted ' "$T/inject.out")" -eq "$N" ] || fail "Postfix did not accept all $N messages"
say "Postfix accepted $N messages; $KILLS kills (SIGKILL, restart on the same datadir) while it sent"

# ---- Postfix sends them all; the nodes empty; the site has them ----
# sent_ids - Message-IDs Postfix logged status=sent for, one a line
sent_ids() {
	awk '
		/postfix\/cleanup\[[0-9]+\]: [0-9A-F]+: message-id=/ {
			q = $0; sub(/.*postfix\/cleanup\[[0-9]+\]: /, "", q); sub(/:.*/, "", q)
			m = $0; sub(/.*message-id=/, "", m); mid[q] = m
		}
		/postfix\/smtp\[[0-9]+\]: [0-9A-F]+: to=<.*status=sent / {
			q = $0; sub(/.*postfix\/smtp\[[0-9]+\]: /, "", q); sub(/:.*/, "", q)
			print (q in mid) ? mid[q] : "unknown-queue-id-" q
		}' "$PF_LOG"
}
_i=0
until [ "$(sent_ids | sort -u | wc -l)" -ge "$N" ]; do
	_i=$((_i + 1))
	[ $_i -le 900 ] || fail "Postfix logged status=sent for $(sent_ids | sort -u | wc -l) of $N messages in 90 s"
	sleep 0.1
done
SENT=$(sent_ids | wc -l)
sent_ids | sort >"$T/sent.ids"
grep -q '^unknown-queue-id-' "$T/sent.ids" && fail "a status=sent line for a queue ID without message-id: $(grep -m1 unknown "$T/sent.ids")"
[ "$(sort -u "$T/sent.ids" | wc -l)" -eq "$SENT" ] || fail "Postfix logged status=sent twice for one message"
grep -q 'status=bounced' "$PF_LOG" && fail "Postfix bounced mail: $(grep -m3 'status=bounced' "$PF_LOG")"
for n in $NODES; do
	eval "PF_TO_$n=\$(grep -c 'postfix/smtp\[[0-9]*\]: [0-9A-F]*: to=<[^>]*>, relay=node$n\.fleet\.test\[127\.0\.0\.1$n\]:$PORT, .*status=sent (250 2\.0\.0 Ok: queued as [0-9a-f]\{16\})' \"\$PF_LOG\" || true)"
done
[ $((PF_TO_1 + PF_TO_2 + PF_TO_3)) -eq "$SENT" ] ||
	fail "not every status=sent line names one of the nodes as relay with spoold's 250 ($PF_TO_1 + $PF_TO_2 + $PF_TO_3 of $SENT)"
for n in $NODES; do
	eval "[ \"\$PF_TO_$n\" -gt 0 ]" || fail "Postfix sent nothing to node$n: the MX set was not used"
done
grep -q "query\[MX\] fleet\.test from " "$T/dnsmasq.log" || fail "Postfix never asked dnsmasq for the MX of fleet.test"
# a lost session is logged "QID: lost connection with HOST[ADDR] while ..."
# (then the next MX host is tried) or, for the last one, as status=deferred;
# either way with "message may be sent more than once" when it was lost
# after the final dot, before the reply
LOST=$(grep -c 'postfix/smtp\[[0-9]*\]: [0-9A-F]*: .*lost connection with node' "$PF_LOG" || true)
MAYBE=$(grep -c 'postfix/smtp\[[0-9]*\]: [0-9A-F]*: .*message may be sent more than once' "$PF_LOG" || true)
REFUSED=$(grep -c 'postfix/smtp\[[0-9]*\]: connect to node.*Connection refused' "$PF_LOG" || true)
say "Postfix: $SENT messages status=sent (node1 $PF_TO_1, node2 $PF_TO_2, node3 $PF_TO_3); on the way $REFUSED connections refused, $LOST sessions lost, $MAYBE of them after the final dot (\"may be sent more than once\")"

_i=0
while :; do
	_left=0
	for n in $NODES; do _left=$((_left + $(node_count "$n"))); done
	[ "$_left" -eq 0 ] && break
	_i=$((_i + 1))
	[ $_i -le 120 ] || fail "the nodes still hold $_left messages for fleet.test 60 s after Postfix sent the last"
	sleep 0.5
done
sleep 1		# (the last dumps are written before the site's 250 anyway)
say "every node's spool is empty: etrnclient pulled all three"

# ---- count at the site, by Message-ID and by (node, spoold queue id) ----
_rc=0
python3 - "$T/dump" "$T/sent.ids" "$KILLS" "$WINDOW" "$MAYBE" >"$T/count.out" 2>&1 <<'PY' || _rc=$?
import collections, os, re, sys
dump, sent_file, kills, window, maybe = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sent = set(l.strip() for l in open(sent_file) if l.strip())
copies = collections.defaultdict(list)	# message-id -> [(node, qid), ...]
bad, damaged = [], []
for name in os.listdir(dump):
    data = open(os.path.join(dump, name), "rb").read().decode("utf-8", "replace")
    mid = re.search(r"^Message-ID: (<[^>]*>)", data, re.M | re.I)
    rcv = re.search(r"^\tby (node\d)\.fleet\.test \(spoold\) with E?SMTP id ([0-9a-f]{16})\b", data, re.M)
    if not mid or not rcv:
        bad.append(name)
        continue
    num = re.match(r"<t41-0*(\d+)@sender\.test>$", mid.group(1))
    if not num or not re.search(r"^end of message %s\r?$" % num.group(1), data, re.M):
        damaged.append(name)
    copies[mid.group(1)].append((rcv.group(1), rcv.group(2)))
ok = True
def problem(text):
    global ok
    ok = False
    print("FAIL", text)
if bad:
    problem("%d dumps without a Message-ID or spoold's Received: line (%s)" % (len(bad), bad[:3]))
if damaged:
    problem("%d copies at the site lack their last line (%s)" % (len(damaged), damaged[:3]))
lost = sorted(sent - set(copies))
stranger = sorted(set(copies) - sent)
if lost:
    problem("%d messages Postfix sent never reached the site: %s" % (len(lost), " ".join(lost[:10])))
if stranger:
    problem("%d messages at the site that Postfix never logged as sent: %s" % (len(stranger), " ".join(stranger[:10])))
# an extra copy with the same (node, qid): the node delivered a stored
# message again (killed before it recorded the site's 250); an extra copy
# with another (node, qid): Postfix handed the message over twice
redeliver = sum(len(c) - len(set(c)) for c in copies.values())
resent = sum(len(set(c)) - 1 for c in copies.values())
total = sum(len(c) for c in copies.values())
dup_msgs = sum(1 for c in copies.values() if len(c) > 1)
most = max((len(c) for c in copies.values()), default=0)
per_node = collections.Counter(n for c in copies.values() for n, q in c)
print("site: %d copies of %d messages; %d messages more than once (at most %d copies); extra copies: %d redelivered by a node, %d stored twice; delivered by node1 %d, node2 %d, node3 %d"
      % (total, len(copies), dup_msgs, most, redeliver, resent, per_node["node1"], per_node["node2"], per_node["node3"]))
print("duplicates %d for %d kills (%s one per kill)" % (redeliver + resent, kills, "at most" if redeliver + resent <= kills else "MORE THAN"))
if redeliver > kills * window:
    problem("%d copies redelivered by a node for %d kills: more than delivery-window (%d) per kill" % (redeliver, kills, window))
if resent > maybe:
    problem("%d messages stored twice, but Postfix logged only %d sends that \"may be sent more than once\"" % (resent, maybe))
sys.exit(0 if ok else 1)
PY
[ $_rc -eq 0 ] || fail "$(cat "$T/count.out")"
sed -n 's/^/  /p' "$T/count.out"

# ---- a customer added in PostgreSQL: accepted by all three nodes ----
# rcpt_code N ADDRESS - the reply code node N gives RCPT TO ADDRESS
rcpt_code() {
	python3 - "127.0.0.1$1" "$PORT" "$2" <<'PY'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)
s.ehlo("client.test"); s.mail("a@sender.test")
print(s.rcpt(sys.argv[3])[0]); s.quit()
PY
}
for n in $NODES; do
	_c=$(rcpt_code "$n" x@added.test)
	[ "$_c" = 554 ] || fail "node$n answers $_c for added.test before its row exists (expected 554)"
done
# the INSERT, then each node polled with a new session every 20 ms: the
# time from the commit to its first 250, 10 s at most
python3 - "$PORT" "$PG" >"$T/added.out" 2>&1 <<'PY' || fail "a domain added in PostgreSQL: $(cat "$T/added.out")"
import smtplib, subprocess, sys, time
port, pg = int(sys.argv[1]), sys.argv[2]
subprocess.run(["psql", "-q", "-X", "-h", pg, "-U", "spoold", "-d", "spoold", "-v", "ON_ERROR_STOP=1", "-c",
    "INSERT INTO customers VALUES ('added.test', 'hold', '{127.0.0.0/8}', NULL, 'any')"], check=True)
t0 = time.monotonic()
took = {}
while len(took) < 3 and time.monotonic() - t0 < 10:
    for n in (1, 2, 3):
        if n in took:
            continue
        s = smtplib.SMTP("127.0.0.1%d" % n, port, timeout=10)
        s.ehlo("client.test"); s.mail("a@sender.test")
        if s.rcpt("x@added.test")[0] == 250:
            took[n] = time.monotonic() - t0
        s.quit()
    time.sleep(0.02)
print(" ".join("node%d %s" % (n, "%.2f s" % took[n] if n in took else "not within 10 s") for n in (1, 2, 3)))
sys.exit(0 if len(took) == 3 else 1)
PY
say "a domain added in PostgreSQL (INSERT, the trigger's NOTIFY): accepted by $(cat "$T/added.out") after the commit"

# ---- the nodes survived it all: each stops cleanly, nothing left ----
for n in $NODES; do
	_pid=$(cat "$T/node$n.pid")
	kill -TERM "$_pid"
	_i=0
	while alive "$_pid"; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "node$n did not exit within 10 s of SIGTERM"; sleep 0.05
	done
	_rc=0; wait "$_pid" || _rc=$?
	rm -f "$T/node$n.pid"
	[ $_rc -eq 0 ] || fail "node$n exited with status $_rc after SIGTERM"
	if grep -E -q 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$T/node$n.log"; then
		fail "sanitizer report in $T/node$n.log"
	fi
	[ "$(node_count "$n")" -eq 0 ] || fail "node$n holds mail after its stop"
done
grep -q 'server=127\.0\.0\.11 method=etrn .*status=0' "$T/etrnclient.log" &&
	grep -q 'server=127\.0\.0\.12 method=etrn .*status=0' "$T/etrnclient.log" &&
	grep -q 'server=127\.0\.0\.13 method=etrn .*status=0' "$T/etrnclient.log" ||
	fail "etrnclient did not log a successful run for each node"
say "all three nodes stopped cleanly with empty spools; $N messages, $KILLS kills, $(($(date +%s) - START)) s"
