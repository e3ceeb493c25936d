#!/bin/sh
# t40-pgsql.sh - customer domains and recipients in PostgreSQL (issue
# 14.1), against a real PostgreSQL cluster in $T:
#   - "domains pgsql:FILE": the query's rows are domains with the settings
#     of a domain block (mode, etrn_from, recipients, tls, filter ...);
#     a row added, changed or deleted is in force within a second, by
#     LISTEN/NOTIFY, without a SIGHUP;
#   - a bad row is left out (logged, counted), the others are served; a
#     domain in the file and in the table is refused from the table;
#   - "recipients pgsql:FILE": a query per address, cached; one query at
#     a time per address however many sessions ask; a NOTIFY drops the
#     cache; other sessions are answered while a lookup is slow;
#   - PostgreSQL down: the last good copy (DATADIR/pgsql-domains.conf)
#     serves, a restart of spoold included; what it cannot decide gets
#     451 4.3.0 (an unknown domain, an address not cached), never a 5xx;
#     the log and /metrics say so; PostgreSQL back: all current again.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_swaks
pg_start
SITE_PORT=$(free_port)	# nothing listens there: the run ETRN starts only fails
PRIMARY_PORT=$(free_port)	# both.test's primary, for recipients pgsql:FILE verify
python3 "$top_srcdir/tests/verify_primary.py" "$PRIMARY_PORT" "$T/primary.rcpts" >"$T/primary.log" 2>&1 &
echo $! >"$T/primary.pid"
sql >"$T/psql.out" 2>&1 <<EOF || fail "psql: $(cat "$T/psql.out")"
CREATE TABLE customers (
    name text PRIMARY KEY, mode text, etrn_ips text[], deliver_to text, recipients text,
    tls text, filter boolean, active boolean NOT NULL DEFAULT true);
CREATE TABLE mailbox (address text PRIMARY KEY);
CREATE TABLE asked (address text, at timestamptz DEFAULT now());
-- a lookup that takes its time and says who asked: one query an address
CREATE FUNCTION find_mailbox(a text) RETURNS SETOF integer AS \$\$
BEGIN
    INSERT INTO asked (address) VALUES (a);
    IF a LIKE 'slow%' THEN PERFORM pg_sleep(1.5); END IF;
    IF a LIKE 'hang%' THEN PERFORM pg_sleep(30); END IF;
    -- the rows read, then a wait: an answer from before a change
    IF a LIKE 'late%' THEN
        IF EXISTS (SELECT 1 FROM mailbox WHERE address = lower(a)) THEN RETURN NEXT 1; END IF;
        PERFORM pg_sleep(1);
        RETURN;
    END IF;
    RETURN QUERY SELECT 1 FROM mailbox WHERE address = lower(a);
END \$\$ LANGUAGE plpgsql;
-- what the README's recipe gives: a NOTIFY per change of the table
CREATE FUNCTION customers_changed() RETURNS trigger AS \$\$
BEGIN PERFORM pg_notify('spoold_domains', ''); RETURN NULL; END \$\$ LANGUAGE plpgsql;
CREATE TRIGGER customers_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION customers_changed();
INSERT INTO customers (name, mode, etrn_ips, deliver_to, recipients) VALUES
    ('db1.test', 'hold', '{127.0.0.1}', '[127.0.0.1]:$SITE_PORT', 'any'),
    ('db2.test', 'hold', NULL, NULL, 'pgsql:rcpt.cf'),
    ('bad.test', 'sometimes', NULL, NULL, 'any'),
    ('example.test', 'hold', NULL, NULL, 'any'),
    ('both.test', 'backup', NULL, '[127.0.0.1]:$PRIMARY_PORT', 'pgsql:rcpt.cf verify');
INSERT INTO customers (name, recipients, active) VALUES ('gone.test', 'any', false);
INSERT INTO mailbox VALUES ('bob@db2.test'), ('listed@both.test');
EOF
cat >"$T/domains.cf" <<EOF
# the customers' domains
hosts = unix:$PG
user = spoold
dbname = spoold
query = SELECT name AS domain, mode, etrn_ips AS etrn_from, deliver_to, recipients, tls, filter
    FROM customers WHERE active
notify = spoold_domains
EOF
# two hosts where nothing listens before the real one: libpq moves on to
# the next with a new socket (often under the old one's number), which
# must be watched at once, not found by the timeout
DEAD1=$(free_port) DEAD2=$(free_port)
cat >"$T/rcpt.cf" <<EOF
hosts = inet:127.0.0.1:$DEAD1 inet:127.0.0.1:$DEAD2 unix:$PG
user = spoold
dbname = spoold
query = SELECT * FROM find_mailbox('%s')
notify = spoold_recipients
cache-ttl = 1h
timeout = 5s
EOF
say "PostgreSQL: customers db1.test, db2.test (recipients by lookup), bad.test (mode sometimes), example.test (also in the file), gone.test (inactive)"

# ---- the configuration check ----
[ -s "$T/primary.log" ] && fail "the test primary: $(cat "$T/primary.log")"
write_conf "domains pgsql:$T/domains.cf" "metrics-listen 127.0.0.1:0"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/check.out" 2>&1 || fail "spoold -n: $(cat "$T/check.out")"
printf 'hosts = unix:%s\nquery = SELECT 1\nnotfy = x\n' "$PG" >"$T/typo.cf"
write_conf "domains pgsql:$T/typo.cf"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/check.out" 2>&1 && fail "spoold -n took a lookup file with a typo"
grep -q "typo.cf:3: unknown name \"notfy\"" "$T/check.out" ||
	fail "spoold -n did not name the typo's line: $(cat "$T/check.out")"
write_conf "domain x.test {" "recipients pgsql:$T/none.cf" "}"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/check.out" 2>&1 && fail "spoold -n took a missing lookup file"
grep -q "none.cf: No such file" "$T/check.out" || fail "no reason for the missing file: $(cat "$T/check.out")"
say "spoold -n checks the lookup files (a typo's line, a missing file)"

write_conf "domains pgsql:$T/domains.cf" "metrics-listen 127.0.0.1:0"
start_spoold
METRICS_PORT=$(sed -n 's/^metrics 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")

# rcpt ADDRESS... - one session, RCPT per address; prints "CODE address" a line
rcpt() {
	python3 - "$SMTP_PORT" "$@" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test"); s.mail("sender@client.test")
for a in sys.argv[2:]:
    code, msg = s.rcpt(a)
    print(code, a, msg.decode())
s.quit()
PY
}
# expect_rcpt CODE ADDRESS WHAT
expect_rcpt() {
	_out=$(rcpt "$2")
	case "$_out" in "$1 "*) ;; *) fail "$3: RCPT $2 got: $_out (expected $1)" ;; esac
}
# wait_rcpt CODE ADDRESS - until RCPT gets CODE (10 s at most); prints the seconds it took
wait_rcpt() {
	python3 - "$SMTP_PORT" "$@" <<'PY'
import smtplib, sys, time
port, want, addr = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t0 = time.monotonic()
while time.monotonic() - t0 < 10:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.ehlo("client.test"); s.mail("sender@client.test")
    code, _ = s.rcpt(addr)
    s.quit()
    if code == want:
        print("%.3f" % (time.monotonic() - t0)); sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PY
}
metric() {
	python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics', timeout=5).read().decode())" |
	    awk -v n="$1" '$1 == n { print $2 }'
}
wait_log() {
	_i=0
	until grep -q "$1" "$SPOOLD_LOG"; do
		_i=$((_i + 1)); [ $_i -le 400 ] || fail "$2: no /$1/ in the log"; sleep 0.05
	done
}

wait_log "domains.cf: 5 rows read" "the 4 rows not read"
wait_log "domains.cf: 3 domains in force, 2 left out" "not 2 rows in force and 2 left out"
grep -q "pgsql:$T/domains.cf row 3:.*sometimes.*the row is left out" "$SPOOLD_LOG" ||
	fail "bad.test's row: no reason logged"
grep -q "domain example.test is also defined at $SPOOLD_CONF:[0-9]*.*the row is left out" "$SPOOLD_LOG" ||
	fail "example.test in the file and the table: not said"
[ "$(metric spoold_pgsql_rows_rejected_total)" -ge 1 ] || fail "rejected rows not counted"
[ "$(metric spoold_pgsql_domains_up)" = 1 ] || fail "spoold_pgsql_domains_up is not 1"
wait_rcpt 250 any@db1.test >/dev/null || fail "db1.test (a row) is not served"
expect_rcpt 554 x@bad.test "a row left out"
expect_rcpt 554 x@gone.test "a row the query does not return"
expect_rcpt 250 x@example.test "the file's example.test"
say "rows served; bad.test's row left out with its reason; example.test (file and table): the file's"

sw --to a@db1.test --from s@client.test
sw_expect "250 2.0.0 Ok: queued" "mail for a domain from PostgreSQL"
expect_etrn_db1() {
	etrn 127.0.0.1 db1.test
	expect_etrn "^25[0-3] " "ETRN for db1.test from its etrn_from"
}
expect_etrn_db1
say "mail for db1.test stored; ETRN from its etrn_from address answered"

# ---- a row added, changed, deleted: in force within a second ----
sql -c "INSERT INTO customers (name, recipients) VALUES ('new.test', 'any')"
took=$(wait_rcpt 250 x@new.test) || fail "new.test not accepted within 10 s"
# (a figure, not a pass/fail bound: this machine is shared and noisy)
say "a domain added in PostgreSQL accepted after $took s (no SIGHUP)"
sql -c "DELETE FROM customers WHERE name = 'new.test'"
took=$(wait_rcpt 554 x@new.test) || fail "new.test still accepted 10 s after its row went"
say "its row deleted: 554 after $took s"
sql -c "UPDATE customers SET mode = 'sometimes' WHERE name = 'db1.test'"
wait_log "row [0-9]*.*db1.test\|db1.test.*left out\|mode.*sometimes" "the bad update was not logged"
sleep 0.5
expect_rcpt 554 x@db1.test "db1.test after its row went bad (left out like any bad row)"
sql -c "UPDATE customers SET mode = 'hold' WHERE name = 'db1.test'"
wait_rcpt 250 x@db1.test >/dev/null || fail "db1.test not back after its row was mended"
say "a row changed to an invalid mode is left out, mended it is back"

# ---- recipients by lookup ----
wait_log "rcpt.cf: connected to $PG" "rcpt.cf's third host not reached"
expect_rcpt 250 bob@db2.test "a mailbox in the table (rcpt.cf's third host)"
expect_rcpt 550 eve@db2.test "an address not in the table"
expect_rcpt 250 BOB@db2.test "the same address in upper case (the query lowers it)"
# the query is asked in lower case, as the answer is cached: a query that
# compares case must not cache Bob's refusal for bob
expect_rcpt 550 Mixed@db2.test "an address not in the table, in mixed case"
[ "$(echo "SELECT address FROM asked WHERE lower(address) = 'mixed@db2.test'" | sql -At)" = mixed@db2.test ] ||
	fail "the query was not asked in lower case: $(echo "SELECT address FROM asked" | sql -At)"
out=$(rcpt bob@db2.test eve@db2.test bob@db2.test)
echo "$out" | grep -q "^550 eve@db2.test" || fail "eve not refused in a second session: $out"
asked=$(echo "SELECT count(*) FROM asked WHERE address = 'bob@db2.test'" | sql -At)
[ "$asked" = 1 ] || fail "bob@db2.test was looked up $asked times (the cache should answer)"
say "recipients looked up: bob 250, eve 550 5.1.1; repeated RCPTs answered from the cache (1 query)"

# recipients pgsql:FILE verify: listed in the table: 250 without a probe;
# not listed: the primary decides (verify_primary.py: ok* 250, others 550)
expect_rcpt 250 listed@both.test "listed in the table (both.test)"
expect_rcpt 250 ok1@both.test "not listed, the primary takes it"
expect_rcpt 550 nobody@both.test "not listed, the primary refuses it"
grep -q "listed@both.test" "$T/primary.rcpts" 2>/dev/null && fail "the primary was asked for a listed address"
grep -q "RCPT ok1@both.test 250" "$T/primary.rcpts" || fail "the primary was not asked for ok1: $(cat "$T/primary.rcpts")"
say "recipients pgsql:FILE verify: listed 250 at once; not listed: asked of the primary (ok1 250, nobody 550)"

# 20 sessions ask for one slow address at once: one query, 20 answers, and
# another session's NOOP is answered meanwhile
python3 - "$SMTP_PORT" >"$T/storm.out" 2>&1 <<'PY' || fail "the concurrent lookups: $(cat "$T/storm.out")"
import smtplib, sys, threading, time
port = int(sys.argv[1])
codes = []
def one():
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("client.test"); s.mail("sender@client.test")
    codes.append(s.rcpt("slow1@db2.test")[0]); s.quit()
ts = [threading.Thread(target=one) for _ in range(20)]
for t in ts: t.start()
time.sleep(0.3)
s = smtplib.SMTP("127.0.0.1", port, timeout=20); s.ehlo("client.test")
t0 = time.monotonic(); s.noop(); noop = time.monotonic() - t0; s.quit()
for t in ts: t.join()
print("codes", sorted(set(codes)), len(codes), "noop %.4f" % noop)
assert codes == [550] * 20, codes
assert noop < 1.0, noop
PY
asked=$(echo "SELECT count(*) FROM asked WHERE address = 'slow1@db2.test'" | sql -At)
[ "$asked" = 1 ] || fail "20 RCPTs for slow1@db2.test made $asked queries"
say "20 sessions at once for one slow address: one query, 20 answers; NOOP meanwhile: $(sed -n 's/.*noop //p' "$T/storm.out") s"

sql -c "INSERT INTO mailbox VALUES ('eve@db2.test')"
expect_rcpt 550 eve@db2.test "eve, added without a NOTIFY: the cached answer"
sql -c "NOTIFY spoold_recipients, 'Eve@db2.test'"
took=$(wait_rcpt 250 eve@db2.test) || fail "eve not accepted after the NOTIFY"
asked=$(echo "SELECT count(*) FROM asked WHERE address = 'bob@db2.test'" | sql -At)
expect_rcpt 250 bob@db2.test "bob, still cached"
[ "$asked" = "$(echo "SELECT count(*) FROM asked WHERE address = 'bob@db2.test'" | sql -At)" ] ||
	fail "a NOTIFY naming eve dropped bob's answer too"
sql -c "INSERT INTO mailbox VALUES ('carol@db2.test')"
sql -c "NOTIFY spoold_recipients"
wait_rcpt 250 carol@db2.test >/dev/null || fail "carol not accepted after a NOTIFY without payload"
say "a NOTIFY naming an address drops its cached answer (eve accepted after $took s), one without a payload all"
# a NOTIFY for an address while its lookup is under way (the query read
# the rows before the change): that answer is given, but not cached
python3 - "$SMTP_PORT" >"$T/late.out" 2>&1 <<'PY' &
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test"); s.mail("sender@client.test")
print(s.rcpt("late1@db2.test")[0]); s.quit()
PY
LATE_PID=$!
_i=0
until [ "$(echo "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%late1@db2.test%' AND pid <> pg_backend_pid()" | sql -At)" = 1 ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "late1@db2.test was not looked up"; sleep 0.02
done
sql -c "INSERT INTO mailbox VALUES ('late1@db2.test')"
sql -c "NOTIFY spoold_recipients, 'late1@db2.test'"
wait "$LATE_PID" || fail "late1's first RCPT: $(cat "$T/late.out")"
expect_rcpt 250 late1@db2.test "late1, added (and NOTIFYed) while its lookup read the rows before"
say "a NOTIFY during the address's lookup: the answer (read before it) not cached; 250 at the next RCPT"

# a change NOTIFYed while spoold's connection is lost (its backend ended,
# reconnecting after 1 s): not heard, so the answers from before are
# asked again once it is back, not served for their cache-ttl
sql -c "INSERT INTO mailbox VALUES ('dave@db2.test')"
expect_rcpt 250 dave@db2.test "dave, cached"
_n=$(grep -c "rcpt.cf: connected" "$SPOOLD_LOG")
sql -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'spoold' AND (query LIKE '%find_mailbox%' OR query LIKE 'LISTEN spoold_recipients%')" >/dev/null
sql -c "DELETE FROM mailbox WHERE address = 'dave@db2.test'"
sql -c "NOTIFY spoold_recipients, 'dave@db2.test'"
_i=0
until [ "$(grep -c "rcpt.cf: connected" "$SPOOLD_LOG")" -gt "$_n" ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "rcpt.cf did not reconnect after its backend ended"; sleep 0.05
done
expect_rcpt 550 dave@db2.test "dave, deleted while the connection was lost"
expect_rcpt 250 bob@db2.test "bob after the reconnect (asked again)"
say "a NOTIFY missed while the connection was lost: the answers from before asked again once back"

# a recipients query that is not a SELECT (no rows: it cannot say "not
# there"): 451, never 550 for every address
cat >"$T/cmd.cf" <<EOF
hosts = unix:$PG
user = spoold
dbname = spoold
query = SET application_name = '%s'
EOF
sql -c "INSERT INTO customers (name, recipients) VALUES ('cmd.test', 'pgsql:cmd.cf')"
wait_log "cmd.cf: connected" "cmd.cf's connection"
expect_rcpt 451 x@cmd.test "a recipients query that returns no rows"
wait_log "cmd.cf: the query returns no rows" "the query without rows was not logged"
sql -c "DELETE FROM customers WHERE name = 'cmd.test'"
say "a recipients query that is not a SELECT: 451, and logged"
# a lookup file whose first host accepts and never answers (the file's
# timeout ends that attempt): the next attempt starts from the next host
SILENT_PORT=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(10); kept = []
while True: kept.append(s.accept()[0])
' "$SILENT_PORT" >"$T/silent.log" 2>&1 &
echo $! >"$T/silent.pid"
_i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $SILENT_PORT), 1)" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || error "the silent server did not start"; sleep 0.05
done
cat >"$T/fo.cf" <<EOF
hosts = inet:127.0.0.1:$SILENT_PORT unix:$PG
user = spoold
dbname = spoold
query = SELECT 1 WHERE '%d' = 'fo.test'
timeout = 1s
EOF
sql -c "INSERT INTO customers (name, recipients) VALUES ('fo.test', 'pgsql:fo.cf')"
took=$(wait_rcpt 250 x@fo.test) || fail "fo.cf's second host never asked (its first is silent)"
grep -q "fo.cf: no answer in time" "$SPOOLD_LOG" || fail "fo.cf: the silent host's timeout was not logged"
sql -c "DELETE FROM customers WHERE name = 'fo.test'"
say "a lookup file whose first host is silent: its timeout, then the second host (250 after $took s)"
rcpt bob@db2.test slow1@db2.test >/dev/null	# cached again for what follows
sql -c "DELETE FROM mailbox WHERE address = 'carol@db2.test'"
sql -c "NOTIFY spoold_recipients, 'carol@db2.test'"
sleep 0.3

# ---- PostgreSQL down ----
pg_stop
wait_log "domains.cf: connection lost\|domains.cf: .*terminat" "the lost connection was not logged"
sleep 0.3
[ "$(metric spoold_pgsql_domains_up)" = 0 ] || fail "spoold_pgsql_domains_up is not 0 with the database down"
expect_rcpt 250 x@db1.test "db1.test from the copy, the database down"
expect_rcpt 451 x@nowhere.test "a domain not in the copy, the database down"
rcpt x@nowhere.test | grep -q "4.3.0" || fail "no 4.3.0 for the domain not in the copy"
expect_rcpt 250 bob@db2.test "a cached recipient, the database down"
expect_rcpt 550 slow1@db2.test "a cached refusal, the database down"
expect_rcpt 451 carol@db2.test "an address not cached, the database down"
expect_rcpt 250 ok2@both.test "database down, pgsql:FILE verify: the primary still decides"
etrn 127.0.0.1 nowhere.test db1.test
expect_etrn "^458 4.3.0 Unable to queue messages for node nowhere.test: the customer database" \
    "ETRN for a domain not in the copy, the database down"
expect_etrn "^25[0-3] " "ETRN for db1.test (in the copy), the database down"
say "database down: rows from the copy, cached answers; 451 4.3.0 for an unknown domain and an uncached address"
sw --to a@db1.test --from s@client.test
sw_expect "250 2.0.0 Ok: queued" "mail for db1.test with the database down"

stop_spoold
grep -q "^domain db1.test {" "$T/spool/pgsql-domains.conf" || fail "the copy does not hold db1.test"
start_spoold
METRICS_PORT=$(sed -n 's/^metrics 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
expect_rcpt 250 x@db1.test "db1.test after a restart with the database down (the copy)"
expect_rcpt 451 x@nowhere.test "an unknown domain after a restart with the database down"
[ "$(spoolctl list | awk '$1 == "db1.test" { print $2 }')" = 2 ] || fail "spoolctl list: $(spoolctl list)"
spoolctl show db1.test >"$T/show.out" 2>&1 || fail "spoolctl show db1.test: $(cat "$T/show.out")"
grep -q "^0000000000000001 .*a@db1.test" "$T/show.out" || fail "spoolctl show db1.test: $(cat "$T/show.out")"
spoolctl -j list | python3 -c 'import json, sys
d = {x["domain"]: x for x in json.load(sys.stdin)}
assert d["db1.test"]["configured"] is True, d' || fail "spoolctl -j list: db1.test (from the copy) is not configured"
say "spoold restarted with the database down: the copy in the spool serves (spoolctl sees it too)"

pg_run
wait_log "domains.cf: connected" "no reconnect after the database came back"
_i=0
until [ "$(metric spoold_pgsql_domains_up)" = 1 ]; do
	_i=$((_i + 1)); [ $_i -le 400 ] || fail "not current again after the database came back"; sleep 0.1
done
expect_rcpt 554 x@nowhere.test "an unknown domain, the database back"
sql -c "INSERT INTO customers (name, recipients) VALUES ('late.test', 'any')"
wait_rcpt 250 x@late.test >/dev/null || fail "a domain added after the outage is not accepted"
say "the database back: reconnected, current again; 554 for the unknown domain; new rows in force"

# the domains query fails once (the table renamed a moment, no NOTIFY
# after it is back): asked again after the back-off, not left failed
sql -c "ALTER TABLE customers RENAME TO customers_away"
sql -c "NOTIFY spoold_domains"
wait_log "the query failed: ERROR:  relation \"customers\" does not exist" "the failed query was not logged"
expect_rcpt 451 x@nowhere.test "an unknown domain, the domains query failing"
sql -c "ALTER TABLE customers_away RENAME TO customers"
took=$(wait_rcpt 554 x@nowhere.test) || fail "the domains query was not asked again after it failed"
say "the domains query failed once: 451 meanwhile, asked again (554 for an unknown domain after $took s)"

# a lookup file no row names any more takes only its own answers with
# it: another file's cached answer is still given, not asked again
for f in keep other; do
	cat >"$T/$f.cf" <<EOF
hosts = unix:$PG
user = spoold
dbname = spoold
query = SELECT * FROM find_mailbox('%s')
cache-ttl = 1h
EOF
done
asked() {
	sql -At -c "SELECT count(*) FROM asked WHERE address = '$1'"
}
sql -c "INSERT INTO mailbox VALUES ('kept@keep.test')"
sql -c "INSERT INTO customers (name, recipients) VALUES ('keep.test', 'pgsql:keep.cf'), ('drop.test', 'pgsql:other.cf')"
wait_log "other.cf: connected" "other.cf's connection"
wait_rcpt 250 kept@keep.test >/dev/null || fail "kept@keep.test not taken through keep.cf"
_n=$(asked kept@keep.test)
expect_rcpt 250 kept@keep.test "keep.cf's answer, cached"
[ "$(asked kept@keep.test)" = "$_n" ] || fail "keep.cf's answer was not cached"
sql -c "DELETE FROM customers WHERE name = 'drop.test'"
wait_log "pgsql: $T/other.cf no longer used" "other.cf unused, but not said"
expect_rcpt 250 kept@keep.test "keep.cf's answer after other.cf went"
[ "$(asked kept@keep.test)" = "$_n" ] ||
	fail "other.cf going took keep.cf's cached answers with it: kept@keep.test asked again"
sql -c "DELETE FROM customers WHERE name = 'keep.test'"
say "a lookup file no row names any more forgets its own answers, not another file's"

# no row names rcpt.cf any more: its connection is closed (and its
# answers forgotten), not kept until a restart; named again, it is back
rcpt_conns() {
	echo "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'spoold' AND (query LIKE '%find_mailbox%' OR query LIKE 'LISTEN spoold_recipients%')" | sql -At
}
[ "$(rcpt_conns)" = 1 ] || fail "rcpt.cf should have one connection, has $(rcpt_conns)"
sql -c "UPDATE customers SET recipients = 'any' WHERE recipients LIKE 'pgsql:%'"
wait_log "pgsql: $T/rcpt.cf no longer used: its connection is closed" "rcpt.cf unused, but not said"
_i=0
until [ "$(rcpt_conns)" = 0 ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "rcpt.cf's connection is still open: $(rcpt_conns)"; sleep 0.05
done
expect_rcpt 250 carol@db2.test "db2.test with recipients any"
sql -c "UPDATE customers SET recipients = 'pgsql:rcpt.cf' WHERE name = 'db2.test'"
sql -c "UPDATE customers SET recipients = 'pgsql:rcpt.cf verify' WHERE name = 'both.test'"
wait_rcpt 550 carol@db2.test >/dev/null || fail "rcpt.cf named again: carol@db2.test not refused"
[ "$(rcpt_conns)" = 1 ] || fail "rcpt.cf named again, but $(rcpt_conns) connections"
say "a lookup file no row names any more: its connection closed, and opened again when named"

# a restart with rows the copy lacks (100,000 of them: their reload takes
# a moment): until the reload that takes them in is done, and for a
# session started before it, a domain not in the configuration is 451,
# not 554 (the database answered, but the configuration is not its yet)
stop_spoold
sql -c "INSERT INTO customers (name, recipients) SELECT 'bulk' || g || '.test', 'any' FROM generate_series(1, 100000) g"
sql -c "INSERT INTO customers (name, recipients) VALUES ('zz-burst.test', 'any')"
rm -f "$T/listen"
# the client is there first: it asks as soon as spoold listens
python3 - "$T/listen" >"$T/burst.out" 2>&1 <<'PY' &
import re, smtplib, sys, time
port, seen = None, {}
open(sys.argv[1] + ".ready", "w").close()
t0 = time.monotonic()
while port is None and time.monotonic() - t0 < 20:
    try:
        port = int(re.search(r"^smtp 127\.0\.0\.1:(\d+)$", open(sys.argv[1]).read(), re.M).group(1))
    except Exception:
        time.sleep(0.005)
while time.monotonic() - t0 < 20:
    s = smtplib.SMTP("127.0.0.1", port, timeout=20); s.ehlo("client.test"); s.mail("s@client.test")
    code = s.rcpt("x@zz-burst.test")[0]; s.quit()
    seen[code] = seen.get(code, 0) + 1
    if code == 250: break
print(" ".join("%d x%d" % kv for kv in sorted(seen.items())), "in %.2f s" % (time.monotonic() - t0))
assert seen.get(250) == 1 and set(seen) <= {250, 451}, seen
PY
BURST_PID=$!
until [ -f "$T/listen.ready" ]; do sleep 0.01; done
start_spoold
wait "$BURST_PID" || fail "a domain on its way into the configuration: $(cat "$T/burst.out")"
say "restart with 100,001 new rows: zz-burst.test $(cat "$T/burst.out") (451 while on its way, never 554)"
sql -c "DELETE FROM customers WHERE name LIKE 'bulk%'"

# SIGTERM while a RCPT waits for a lookup (one the database takes 30 s
# over; rcpt.cf's timeout is 5 s): 451 at once, then spoold exits
wait_rcpt 250 bob@db2.test >/dev/null || fail "bob@db2.test not accepted after the restart"
python3 - "$SMTP_PORT" >"$T/hang.out" 2>&1 <<'PY' &
import smtplib, sys, time
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test"); s.mail("sender@client.test")
s.sock.sendall(b"RCPT TO:<hang1@db2.test>\r\n")
t0 = time.monotonic()
print(s.getreply()[0], "after %.2f s" % (time.monotonic() - t0))
PY
HANG_PID=$!
_i=0
until [ "$(echo "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%hang1@db2.test%' AND pid <> pg_backend_pid()" | sql -At)" = 1 ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "hang1@db2.test was not looked up"; sleep 0.05
done
t0=$(date +%s%N)
stop_spoold
wait "$HANG_PID" || fail "the hanging RCPT's client: $(cat "$T/hang.out")"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "^451 " "$T/hang.out" || fail "a RCPT waiting for a lookup at SIGTERM: $(cat "$T/hang.out")"
[ "$took" -lt 3000 ] || fail "spoold took $took ms to stop with a lookup waiting (the lookup's timeout, not at once)"
say "SIGTERM with a lookup waiting: 451 at once, spoold stopped in $took ms"
