#!/bin/sh
# t06-durability.sh - a 250 after DATA is a promise: kill -9 spoold right after
# it, restart on the same datadir (no repair step), and the message is there.
# Then 5 rounds of clients sending continuously with kill -9 at random moments:
# every id in a 250 the clients received must be listed after the restart.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks

write_conf
start_spoold

# restart_after_crash - start on the same datadir; it must come up without help
restart_after_crash() {
	start_spoold
	spoolctl stats >/dev/null || fail "spoolctl stats fails after kill -9 and restart"
}

# ---- one message, kill -9 as soon as swaks prints the 250 ----
: >"$T/swaks.out"
swaks --server "127.0.0.1:$SMTP_PORT" --timeout 10 -f crash@x.test -t crash@example.test 2>&1 |
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$T/swaks.out"
		case $line in
		*"250 2.0.0 Ok: queued as"*) kill -KILL "$SPOOLD_PID" ;;
		esac
	done
kill9_spoold
id=$(sw_queued)
[ -n "$id" ] || fail "swaks got no 250 queued reply: $(cat "$T/swaks.out")"
restart_after_crash
spoolctl show example.test | grep -q "^$id .* <crash@x\.test> crash@example\.test$" ||
	fail "message $id acknowledged just before kill -9 is missing after restart:
$(spoolctl show example.test)"
say "kill -9 right after the 250: $id is there after the restart"

# ---- 5 rounds of continuous senders killed at random moments ----
cat >"$T/sender.py" <<'EOF'
# sender.py PORT LEDGER: 3 threads send messages until the server goes away
# (at most 5 s); each id from a 250 reply goes to LEDGER at once.
import re, smtplib, sys, threading, time
port, ledger_path = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
ledger = open(ledger_path, "a")
deadline = time.monotonic() + 5

def run(n):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("sender%d.test" % n)
        i = 0
        while time.monotonic() < deadline:
            i += 1
            s.mail("loop%d@x.test" % n)
            s.rcpt("durable@example.test")
            code, msg = s.data(b"Subject: round\r\n\r\nthread %d message %d\r\n" % (n, i) + b"x" * (n * 700))
            if code != 250:
                print("thread %d: DATA reply %d %r" % (n, code, msg), file=sys.stderr)
                return
            m = re.search(rb"queued as ([0-9a-f]{16})", msg)
            if not m:
                print("thread %d: no queue id in %r" % (n, msg), file=sys.stderr)
                return
            with lock:
                ledger.write(m.group(1).decode() + "\n")
                ledger.flush()
    except (OSError, smtplib.SMTPException):
        pass  # the server was killed

threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
EOF

: >"$T/ledger"
round=1
while [ $round -le 5 ]; do
	before=$(wc -l <"$T/ledger")
	python3 "$T/sender.py" "$SMTP_PORT" "$T/ledger" 2>"$T/sender.log" &
	sender=$!
	echo $sender >"$T/sender.pid"
	# wait for the first acknowledged message of the round, then a random moment
	i=0
	while [ "$(wc -l <"$T/ledger")" -le "$before" ]; do
		alive $sender || fail "round $round: sender gave up before any 250: $(cat "$T/sender.log")"
		i=$((i + 1))
		[ $i -le 200 ] || fail "round $round: no message acknowledged within 10 s"
		sleep 0.05
	done
	sleep "0.$(( (RANDOM % 9) + 1 ))"
	kill9_spoold
	wait $sender || fail "round $round: sender failed: $(cat "$T/sender.log")"
	rm -f "$T/sender.pid"
	[ ! -s "$T/sender.log" ] || fail "round $round: sender: $(cat "$T/sender.log")"
	restart_after_crash
	spoolctl show example.test >"$T/show.out" || fail "spoolctl show fails after restart"
	sed 1d "$T/show.out" | awk '{ print $1 }' | sort >"$T/stored.ids"
	sort "$T/ledger" >"$T/acked.ids"
	missing=$(comm -23 "$T/acked.ids" "$T/stored.ids")
	[ -z "$missing" ] || fail "round $round: acknowledged but lost after kill -9: $missing"
	dups=$(uniq -d "$T/acked.ids")
	[ -z "$dups" ] || fail "round $round: an id was given to two acknowledged messages: $dups"
	dups=$(uniq -d "$T/stored.ids")
	[ -z "$dups" ] || fail "round $round: spoolctl show lists an id twice: $dups"
	say "round $round: $(( $(wc -l <"$T/ledger") - before )) acknowledged, all $(wc -l <"$T/ledger") so far present after kill -9"
	round=$((round + 1))
done

# the spool still takes mail and stops cleanly
sw -f after@x.test -t after@example.test
[ $SW_RC -eq 0 ] || fail "delivery after the crashes: $(cat "$T/swaks.out")"
id=$(sw_queued)
grep -q -x "$id" "$T/stored.ids" && fail "id $id of a new message was already in use"
stop_spoold
spoolctl show example.test | grep -q "^$id " || fail "message $id missing after a clean stop"
say "after 6 crashes: new message $id stored under a fresh id; clean stop"
exit 0
