#!/bin/sh
# t33-metrics.sh - metrics-listen: GET /metrics after a run with mail
# accepted, refused, delivered and deferred, and ETRNs answered; the text
# passes `promtool check metrics` (Debian prometheus), a real Prometheus
# server scrapes it, spoolctl stats prints the same counters, the README's
# alert rule passes `promtool check rules` and fires in `promtool test
# rules`, and bad HTTP gets its 4xx.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_swaks
need promtool prometheus

SINK_PORT=$(free_port)
DOWN_PORT=$(free_port)	# nothing listens there: the site is down
sink
write_conf "metrics-listen 127.0.0.1:0"
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
EOF
start_spoold
METRICS_PORT=$(sed -n 's/^metrics 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/listen")
[ -n "$METRICS_PORT" ] || fail "no metrics line in the listen file: $(cat "$T/listen")"

# http [METHOD] PATH - the reply (status line, headers, body) in $T/http.out
http() {
	python3 - "$METRICS_PORT" "$@" >"$T/http.out" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
method, path = (args[0], args[1]) if len(args) > 1 else ("GET", args[0])
s = socket.create_connection(("127.0.0.1", port), 10)
s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
PY
}
# metric SERIES - the value of one series of the last GET /metrics
metric() {
	awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "missing" }' "$T/metrics"
}
scrape() {
	http /metrics
	head -1 "$T/http.out" | grep -q '^HTTP/1.1 200 OK' || fail "GET /metrics: $(head -1 "$T/http.out")"
	sed '1,/^\r$/d' "$T/http.out" >"$T/metrics"
}

sw -f a@client.test -t u1@site.test
sw -f a@client.test -t u2@site.test
sw -f a@client.test -t d1@down.test
sw -f a@client.test -t x@elsewhere.test		# relaying: 554 5.7.1
sw -f a@client.test -t nosuch@other.test	# unknown user: 550 5.1.1
# 253 253 for the two with mail; 459 for one without etrn-from and for
# one not configured
etrn 127.0.0.1 site.test down.test example.test nosuch.test
expect_etrn '^253 ' "ETRN site.test"
wait_count site.test 0
_i=0
until grep -q "to=<d1@down.test>.*status=deferred" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no deferred line for down.test"; sleep 0.05
done
sleep 1.1	# the oldest message of down.test is at least a second old

scrape
promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(cat "$T/promtool.out")"
[ -s "$T/promtool.out" ] && fail "promtool check metrics has remarks: $(cat "$T/promtool.out")"
say "GET /metrics: promtool check metrics finds nothing to say"

for want in \
	'spoold_messages_accepted_total 3' \
	'spoold_recipients_accepted_total 3' \
	'spoold_connections_total{service="smtp"} 6' \
	'spoold_deliveries_total{status="sent"} 2' \
	'spoold_deliveries_total{status="deferred"} 1' \
	'spoold_delivery_runs_total 2' \
	'spoold_rejections_total{service="smtp",command="RCPT",code="554",status="5.7.1"} 1' \
	'spoold_rejections_total{service="smtp",command="RCPT",code="550",status="5.1.1"} 1' \
	'spoold_etrn_replies_total{service="smtp",code="253"} 2' \
	'spoold_etrn_replies_total{service="smtp",code="459"} 2' \
	'spoold_domain_messages{domain="down.test"} 1' \
	'spoold_spool_messages 1' \
	'spoold_spool_read_ok 1'; do
	series=${want% *}
	[ "$(metric "$series")" = "${want##* }" ] ||
		fail "$series is $(metric "$series"), expected ${want##* }"
done
age=$(metric 'spoold_domain_oldest_age_seconds{domain="down.test"}')
[ "$age" != missing ] && [ "$age" -ge 1 ] || fail "oldest age of down.test is $age"
[ "$(metric 'spoold_domain_messages{domain="site.test"}')" = missing ] ||
	fail "a domain with nothing queued has a series"
commits=$(metric spoold_commit_duration_seconds_count)
[ "$commits" != missing ] && [ "$commits" -ge 3 ] || fail "commit histogram count is $commits"
[ "$(metric 'spoold_commit_batch_size_bucket{le="+Inf"}')" = "$commits" ] ||
	fail "commit batch histogram +Inf bucket differs from the commit count"
say "counters: 3 accepted, 2 sent, 1 deferred, 2 runs, refusals by code and status, ETRN by code, per-domain age, commit histograms"

# ---- spoolctl stats: the same counters ----
spoolctl stats >"$T/stats.out" 2>"$T/stats.err" || fail "spoolctl stats: $(cat "$T/stats.err")"
for series in spoold_messages_accepted_total 'spoold_deliveries_total{status="sent"}' \
    'spoold_rejections_total{service="smtp",command="RCPT",code="550",status="5.1.1"}'; do
	got=$(awk -v s="$series" '$1 == s { print $2 }' "$T/stats.out")
	[ "$got" = "$(metric "$series")" ] || fail "spoolctl stats says $series $got, /metrics $(metric "$series")"
done
spoolctl --json stats >"$T/stats.json" || fail "spoolctl --json stats failed"
python3 - "$T/stats.json" <<'PY' || fail "spoolctl --json stats: $(cat "$T/stats.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["messages"] == 1, d
assert d["running"]["spoold_messages_accepted_total"] == 3, d["running"]
assert d["running"]['spoold_deliveries_total{status="sent"}'] == 2
PY
say "spoolctl stats and --json stats: the same counters as /metrics"

# ---- a real Prometheus scrapes it ----
PROM_PORT=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: spoold
    static_configs:
      - targets: ['127.0.0.1:$METRICS_PORT']
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$T/prometheus.log" 2>&1 &
echo $! >"$T/prometheus.pid"
query() {	# query PROMQL - the first value Prometheus has for it, or nothing
	python3 - "$PROM_PORT" "$1" <<'PY' 2>/dev/null || true
import json, sys, urllib.parse, urllib.request
port, q = sys.argv[1], sys.argv[2]
u = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
r = json.load(urllib.request.urlopen(u, timeout=5))["data"]["result"]
if r:
    print(r[0]["value"][1])
PY
}
_i=0
until [ "$(query 'spoold_messages_accepted_total{job="spoold"}')" = 3 ]; do
	_i=$((_i + 1))
	[ $_i -le 300 ] || fail "Prometheus has no spoold_messages_accepted_total 3 after 30 s: $(tail -5 "$T/prometheus.log")"
	sleep 0.1
done
[ "$(query 'up{job="spoold"}')" = 1 ] || fail "Prometheus says the target is not up"
[ "$(query 'spoold_domain_messages{domain="down.test"}')" = 1 ] ||
	fail "Prometheus has no per-domain series"
stop_pid "$(cat "$T/prometheus.pid")"
rm -f "$T/prometheus.pid"
say "a real Prometheus scrapes it: up, spoold_messages_accepted_total 3, per-domain series"

# ---- the README's alert rule ----
sed -n '/<!-- alert-rule begin -->/,/<!-- alert-rule end -->/p' "$top_srcdir/README" |
	sed '1d;$d;s/^    //' >"$T/rules.yml"
[ -s "$T/rules.yml" ] || fail "no alert rule between the README's markers"
promtool check rules "$T/rules.yml" >"$T/rules.out" 2>&1 || fail "promtool check rules: $(cat "$T/rules.out")"
cat >"$T/rules-test.yml" <<'EOF'
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # stuck: 5 h old at the start, growing; fetched: young and staying so
      - series: 'spoold_domain_oldest_age_seconds{domain="stuck.example",instance="mx1"}'
        values: '18000+60x120'
      - series: 'spoold_domain_oldest_age_seconds{domain="fetched.example",instance="mx1"}'
        values: '60x120'
    alert_rule_test:
      - eval_time: 70m
        alertname: SpooldMailStuck
        exp_alerts: []
      - eval_time: 90m
        alertname: SpooldMailStuck
        exp_alerts:
          - exp_labels:
              severity: warning
              domain: stuck.example
              instance: mx1
            exp_annotations:
              summary: "stuck.example: mail waiting on mx1 for 6h 30m 0s"
              description: "The site has not fetched (ETRN/ATRN) or accepted its mail for over 6 hours."
EOF
(cd "$T" && promtool test rules rules-test.yml) >"$T/rules-test.out" 2>&1 ||
	fail "promtool test rules: $(cat "$T/rules-test.out")"
say "the README's alert rule: promtool check rules passes, it fires for the stuck domain only after 6 h + 15 min"

# ---- bad requests ----
http POST /metrics
grep -q '^HTTP/1.1 405 ' "$T/http.out" && grep -q '^Allow: GET, HEAD' "$T/http.out" ||
	fail "POST: $(head -3 "$T/http.out")"
http /
grep -q '^HTTP/1.1 404 ' "$T/http.out" || fail "GET /: $(head -1 "$T/http.out")"
http HEAD /metrics
grep -q '^HTTP/1.1 200 ' "$T/http.out" && ! grep -q '^# HELP' "$T/http.out" ||
	fail "HEAD /metrics: $(head -3 "$T/http.out")"
python3 - "$METRICS_PORT" >"$T/bad.out" <<'PY'
import socket, sys
port = int(sys.argv[1])
def ask(data):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(data)
    r = s.recv(200).decode(errors="replace").split("\r\n")[0]
    s.close()
    return r
print("garbage", ask(b"GARBAGE\r\n\r\n"))
print("longline", ask(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"))
print("headers", ask(b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"))
held = [socket.create_connection(("127.0.0.1", port), 10) for _ in range(32)]
import time; time.sleep(0.2)
extra = socket.create_connection(("127.0.0.1", port), 10)
print("busy", extra.recv(200).decode(errors="replace").split("\r\n")[0])
for c in held + [extra]:
    c.close()
PY
grep -q '^garbage HTTP/1.1 400 ' "$T/bad.out" && grep -q '^longline HTTP/1.1 400 ' "$T/bad.out" &&
	grep -q '^headers HTTP/1.1 431 ' "$T/bad.out" && grep -q '^busy HTTP/1.1 503 ' "$T/bad.out" ||
	fail "bad requests: $(cat "$T/bad.out")"
say "POST 405 with Allow, GET / 404, HEAD without a body, garbage 400, a long line 400, 200 headers 431, a 33rd connection 503"

# SMTP still answers, and spoold stops cleanly
sw -f a@client.test -t u3@site.test
[ -n "$(sw_queued)" ] || fail "spoold stopped taking mail after the metrics requests"
stop_spoold
check_sanitizers
