#!/bin/sh
# t03-spool.sh - what is stored: pipelined and concurrent delivery, spoolctl
# show/delete/list/--json/stats, a message for two domains, and a message
# big enough to spill to a temporary file.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks

write_conf
sed -i 's/^max-message-size 100K$/max-message-size 2M/' "$SPOOLD_CONF"
grep -q '^max-message-size 2M$' "$SPOOLD_CONF" || error "could not raise max-message-size"
start_spoold

# show_ids DOMAIN - the message ids spoolctl show lists for DOMAIN
show_ids() {
	spoolctl show "$1" >"$T/show.out" || fail "spoolctl show $1 failed"
	head -n 1 "$T/show.out" | grep -q '^#' || fail "spoolctl show $1: no # header: $(cat "$T/show.out")"
	sed 1d "$T/show.out" | awk '{ print $1 }'
}

# ---- pipelining: swaks --pipeline ----
sw --pipeline -f pipe@x.test -t p1@example.test,p2@example.test
[ $SW_RC -eq 0 ] || fail "swaks --pipeline: exit $SW_RC: $(cat "$T/swaks.out")"
sw_expect '250 2\.0\.0 Ok: queued as [0-9a-f]{16}$' "swaks --pipeline"
expect_count example.test 1
say "swaks --pipeline delivers"
fds_baseline

# ---- 5 sessions, 50 messages with smtp-source ----
[ -x /usr/sbin/smtp-source ] || fail "/usr/sbin/smtp-source is not installed (contrib/deps.sh test installs postfix)"
/usr/sbin/smtp-source -s 5 -m 50 -l 2000 -f a@x.test -t u@example.test \
    "127.0.0.1:$SMTP_PORT" >"$T/smtp-source.out" 2>&1 ||
	fail "smtp-source failed: $(cat "$T/smtp-source.out")"
expect_count example.test 51
n=$(spoolctl show example.test | grep -c -E '^[0-9a-f]{16} [^ ]+ +[0-9]+ <a@x\.test> u@example\.test$' || true)
[ "$n" -eq 50 ] || fail "spoolctl show lists $n messages from a@x.test to u@example.test, expected 50:
$(spoolctl show example.test)"
# every one at least as big as the 2000 bytes smtp-source sent
small=$(spoolctl show example.test | awk '$4 == "<a@x.test>" && $3 < 2000' | wc -l)
[ "$small" -eq 0 ] || fail "$small smtp-source messages are stored smaller than 2000 bytes"
say "smtp-source -s 5 -m 50: exactly 50 stored, listed with sender and recipient"
total=51

# ---- spoolctl show and delete ----
show_ids example.test >"$T/ids"
[ "$(wc -l <"$T/ids")" -eq $total ] || fail "spoolctl show example.test lists $(wc -l <"$T/ids") ids, expected $total"
grep -v -q -E '^[0-9a-f]{16}$' "$T/ids" && fail "spoolctl show: an id that is not 16 hex digits: $(cat "$T/ids")"
[ "$(sort -u "$T/ids" | wc -l)" -eq $total ] || fail "spoolctl show lists an id twice"
victim=$(head -n 1 "$T/ids")
out=$(spoolctl delete "$victim") || fail "spoolctl delete $victim failed: $out"
total=$((total - 1))
expect_count example.test $total
show_ids example.test | grep -q -x "$victim" && fail "deleted $victim is still shown"
rc=0
spoolctl delete "$victim" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "deleting $victim a second time succeeded"
rc=0
spoolctl delete not-an-id >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "spoolctl delete not-an-id succeeded"
say "spoolctl delete removes one message; deleting it again fails"

# ---- one message for two domains ----
sw -f two@x.test -t both@example.test,listed@other.test
[ $SW_RC -eq 0 ] || fail "two domains: swaks exit $SW_RC: $(cat "$T/swaks.out")"
id=$(sw_queued)
[ -n "$id" ] || fail "two domains: no queue id in the 250"
total=$((total + 1))
expect_count example.test $total
expect_count other.test 1
spoolctl show example.test | grep -q "^$id .* <two@x\.test> both@example\.test$" ||
	fail "$id not under example.test with its example.test recipient: $(spoolctl show example.test)"
spoolctl show other.test | grep -q "^$id .* <two@x\.test> listed@other\.test$" ||
	fail "$id not under other.test with its other.test recipient: $(spoolctl show other.test)"
say "a message for two domains is listed under both"

# ---- list, --json, stats ----
spoolctl list >"$T/list.out" || fail "spoolctl list failed"
head -n 1 "$T/list.out" | grep -q '^#' || fail "spoolctl list: no # header"
sed 1d "$T/list.out" | awk 'NF < 4 || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9]+$/ || $4 !~ /^[0-9]+$/ { bad = 1 }
	END { exit bad }' || fail "spoolctl list: a line is not \"domain messages bytes age\": $(cat "$T/list.out")"
spoolctl --json list >"$T/list.json" || fail "spoolctl --json list failed"
python3 -m json.tool "$T/list.json" >/dev/null 2>"$T/json.err" ||
	fail "spoolctl --json list is not JSON ($(cat "$T/json.err")): $(cat "$T/list.json")"
python3 - "$T/list.json" "$total" <<'EOF' || fail "spoolctl --json list disagrees with the messages stored: $(cat "$T/list.json")"
import json, sys
rows = {r["domain"]: r for r in json.load(open(sys.argv[1]))}
assert rows["example.test"]["messages"] == int(sys.argv[2]), rows
assert rows["other.test"]["messages"] == 1, rows
assert rows["wild.test"]["messages"] == 0, rows
assert rows["example.test"]["bytes"] > 0, rows
EOF
spoolctl --json show example.test | python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert len(rows) == int(sys.argv[1]), len(rows)
assert all(len(r["id"]) == 16 and r["recipients"] for r in rows)
' "$total" || fail "spoolctl --json show example.test is not JSON with $total messages"
spoolctl --json stats | python3 -m json.tool >/dev/null || fail "spoolctl --json stats is not JSON"
# stats counts each message once, however many domains it is queued for
n=$(total_count)
[ "$n" = "$total" ] || fail "spoolctl stats: messages $n, expected $total: $(spoolctl stats)"
spoolctl stats | grep -q -E '^domains 2$' || fail "spoolctl stats: expected domains 2: $(spoolctl stats)"
say "spoolctl list, --json list/show/stats and stats agree"

# ---- a message larger than 256 KiB: spilled to a file, stored whole ----
chat <<'EOF' || fail "big message"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<big@x.test>\r\n
expect ^250 
send RCPT TO:<big@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
sendx b"Subject: small\r\n\r\n" + b"y" * 76 + b"\r\n" + b".\r\n"
expect ^250 2\.0\.0 Ok: queued as
send MAIL FROM:<big@x.test>\r\n
expect ^250 
send RCPT TO:<big@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
sendx b"Subject: small\r\n\r\n" + (b"y" * 76 + b"\r\n") * 8000 + b".\r\n"
expect ^250 2\.0\.0 Ok: queued as
send QUIT\r\n
expect ^221 
EOF
sizes=$(spoolctl show example.test | awk '$4 == "<big@x.test>" { print $3 }')
[ "$(echo "$sizes" | wc -l)" -eq 2 ] || fail "expected 2 messages from big@x.test: $(spoolctl show example.test)"
s_small=$(echo "$sizes" | sort -n | head -n 1)
s_big=$(echo "$sizes" | sort -n | tail -n 1)
# the two differ only by 7999 body lines of 78 octets (same Received: length)
[ $((s_big - s_small)) -eq $((7999 * 78)) ] ||
	fail "624 KB message stored as $s_big bytes, the 1-line one as $s_small: difference $((s_big - s_small)), expected $((7999 * 78))"
[ "$s_big" -gt 262144 ] || fail "big message is only $s_big bytes"
ls -A "$T/spool" >"$T/spool.ls"
[ "$(tr "\n" " " <"$T/spool.ls")" = "control.sock data.mdb lock.mdb " ] ||
	fail "stray files in the datadir after a spilled message: $(tr '\n' ' ' <"$T/spool.ls")"
say "624 KB message stored whole ($s_big bytes); datadir holds only data.mdb, lock.mdb and control.sock"

# no descriptor leaks: once the clients are gone spoold holds what it held
# at the start, and no deleted (spilled) body file
fds_unchanged "after 56 sessions and a spilled message"
say "no descriptor leaked or lost ($(wc -l <"$T/fds.now") open, as at the start)"

# deleting the message queued for two domains removes it from both
spoolctl delete "$id" >/dev/null || fail "spoolctl delete $id (two domains) failed"
expect_count other.test 0
expect_count example.test $((total + 1))
spoolctl show example.test | grep -q "^$id " && fail "$id still under example.test after delete"
grep -q "spoold/control\[[0-9]*\]: delete $id: 250 $id deleted" "$SPOOLD_LOG" ||
	fail "the delete did not go through the running spoold (no control: delete line)"
say "deleting a two-domain message removes it from both; spoolctl asked the running spoold to do it"

stop_spoold
ls -A "$T/spool" >"$T/spool.ls"
[ "$(tr "\n" " " <"$T/spool.ls")" = "data.mdb lock.mdb " ] ||
	fail "stray files in the datadir after stop: $(tr '\n' ' ' <"$T/spool.ls")"
# spoolctl reads the spool with spoold stopped, too
expect_count example.test $((total + 1))
# and writes it itself when no spoold runs
victim=$(show_ids example.test | head -n 1)
out=$(spoolctl delete "$victim") || fail "spoolctl delete with spoold stopped: $out"
[ "$out" = "$victim deleted" ] || fail "spoolctl delete with spoold stopped said: $out"
expect_count example.test "$total"
out=$(spoolctl hold example.test) || fail "spoolctl hold with spoold stopped: $out"
spoolctl show example.test | grep -q '^# held' || fail "hold with spoold stopped not recorded"
rc=0
spoolctl delete "$victim" >/dev/null 2>&1 || rc=$?
[ $rc -eq 65 ] || fail "deleting a missing message with spoold stopped: status $rc, expected 65"
say "with spoold stopped, spoolctl delete and hold write the spool themselves"
exit 0
