#!/bin/sh
# t44-verify-cache.sh - recipients verify, the cache over time and the
# postmaster's hands on it.  verify-positive-refresh 2s: a positive entry
# older than that answers 250 at once and starts one background probe; the
# primary (tests/verify_primary.py, its answers changed through a rules
# file, each reply 2 s late so a RCPT that waited for a probe shows) then
# refuses one address (the entry turns negative: 550) and defers another
# (the entry stays positive, with its old time, and is not probed again at
# every RCPT).  spoolctl verify shows entries (text and --json), spoolctl
# unverify removes them through the running spoold and, with none running,
# itself: the next RCPT probes again.  A refresh not shorter than the
# expiry is a config error at its file:line.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need python3

PRIMARY="$top_srcdir/tests/verify_primary.py"
P1=$(free_port)
RULES="$T/rules"
: >"$RULES"

start_primary() {
	VERIFY_PRIMARY_RULES="$RULES" python3 "$PRIMARY" "$P1" "$T/p1.rcpts" 2 >"$T/p1.log" 2>&1 &
	echo $! >"$T/p1.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$P1),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || error "the primary did not start"; sleep 0.05
	done
}
# probes ADDRESS - how many RCPTs for ADDRESS the primary got
probes() {
	grep -c "^RCPT $1 " "$T/p1.rcpts" 2>/dev/null || true
}
expect_probes() {
	[ "$(probes "$1")" = "$2" ] || fail "$3: $(probes "$1") probes of $1, expected $2"
}
# wait_log PATTERN WHAT - up to 10 s for a line of spoold's log
wait_log() {
	_i=0
	until grep -E -q "$1" "$SPOOLD_LOG"; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "$2: no log line /$1/ within 10 s"; sleep 0.05
	done
}
# checked ADDRESS - when the cached result for ADDRESS was had, from --json
checked() {
	spoolctl --json verify "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["checked"])'
}
# aged ADDRESS - wait until ADDRESS's entry is older than the 2 s refresh
aged() {
	_i=0
	until [ "$(spoolctl verify "$1" | awk '!/^#/ { print $3 }')" -ge 3 ]; do
		_i=$((_i + 1)); [ $_i -le 100 ] || fail "the entry of $1 did not age"; sleep 0.1
	done
}

write_conf "verify-positive-refresh 2s" "verify-rate 100"
cat >>"$SPOOLD_CONF" <<EOF
domain v.test {
    mode       backup
    retry      1h
    deliver-to [127.0.0.1]:$P1
    recipients verify
}
EOF

# ---- the configuration: a refresh must come before the expiry ----
cp "$SPOOLD_CONF" "$T/bad.conf"
printf 'verify-positive-expire 2s\n' >>"$T/bad.conf"
_line=$(wc -l <"$T/bad.conf")
if out=$("$SPOOLD" -n -c "$T/bad.conf" 2>&1); then fail "spoold -n took a refresh as long as the expiry"; fi
printf '%s\n' "$out" | grep -q "bad.conf:$_line: verify-positive-expire 2s must be longer than verify-positive-refresh (2s)" ||
	fail "spoold -n: no file:line error for verify-positive-expire 2s after refresh 2s: $out"
"$SPOOLD" -n -c "$SPOOLD_CONF" >"$T/n.out" 2>&1 || fail "spoold -n: $(cat "$T/n.out")"
say "verify-positive-expire not longer than verify-positive-refresh is an error at its file:line"

start_primary
start_spoold

for a in ok1 ok2 ok3; do
	expect_rcpt_reply "$a@v.test" 250 "a good address"
	expect_probes "$a@v.test" 1 "the first RCPT"
done
expect_rcpt_reply nobody@v.test '550 5\.1\.1' "a refused address"

# ---- spoolctl verify ----
out=$(spoolctl verify ok1@v.test NOBODY@v.test)
printf '%s\n' "$out" | grep -E -q '^ok1@v\.test valid [0-9]+ [0-9T:+-]+ 250 2\.1\.5 Ok$' ||
	fail "spoolctl verify: no valid line for ok1: $out"
printf '%s\n' "$out" | grep -E -q '^nobody@v\.test invalid [0-9]+ [0-9T:+-]+ 550 5\.1\.1 <nobody@v\.test>: Recipient address rejected: User unknown$' ||
	fail "spoolctl verify: no invalid line for nobody: $out"
spoolctl --json verify '<ok1@V.test>' >"$T/v.json" || fail "spoolctl --json verify: $(cat "$T/v.json")"
python3 - "$T/v.json" <<'PY' || fail "spoolctl --json verify: $(cat "$T/v.json")"
import json, sys
(e,) = json.load(open(sys.argv[1]))
assert e["address"] == "ok1@v.test" and e["status"] == "valid" and e["valid"] is True, e
assert e["reply"] == "250 2.1.5 Ok" and e["age"] >= 0 and e["expires"] > e["checked"], e
PY
rc=0; spoolctl verify stranger@v.test >"$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 65 ] || fail "spoolctl verify of an uncached address: exit $rc, expected 65"
grep -q 'spoolctl: verify stranger@v.test: not in the cache' "$T/err" || fail "spoolctl verify: $(cat "$T/err")"
say "spoolctl verify: address, valid/invalid, age, expiry, the primary's reply (and --json); an uncached one: \"not in the cache\", exit 65"

# ---- a stale positive entry: 250 at once, one refresh probe ----
aged ok1@v.test
out=$(rcpts_at_once 5 ok1@v.test)
printf '%s\n' "$out" | grep -q '^250 5$' || fail "5 RCPTs on a stale entry: $out, expected 5 times 250"
_max=$(printf '%s\n' "$out" | sed -n 's/^max //p')
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1.5 else 1)" "$_max" ||
	fail "a RCPT on a stale entry waited ${_max} s (the primary answers after 2 s)"
wait_log 'verify.*: to=<ok1@v\.test>, relay=\[127\.0\.0\.1\]:'"$P1"', delay=[0-9.e-]*, status=deliverable \(250 2\.1\.5 Ok\), refresh=replaced' \
    "the refresh of ok1"
expect_probes ok1@v.test 2 "5 RCPTs on a stale entry"
[ "$(spoolctl verify ok1@v.test | awk '!/^#/ { print $3 }')" -le 1 ] || fail "the refresh did not renew the entry's time"
expect_rcpt_reply ok1@v.test 250 "right after the refresh"
expect_probes ok1@v.test 2 "a refreshed entry"
[ "$(stat_value 'spoold_verify_answers_total{source="stale"}')" -ge 5 ] ||
	fail "stale answers not counted: $(spoolctl stats | grep verify_answers)"
say "a positive entry past verify-positive-refresh: 5 RCPTs get 250 at once (max ${_max} s), one refresh probe, the entry renewed"

# ---- the primary refuses now: the refresh makes the entry negative ----
printf 'ok2@v.test 550 5.1.1 <ok2@v.test>: mailbox removed\n' >>"$RULES"
aged ok2@v.test
expect_rcpt_reply ok2@v.test 250 "a stale entry the primary no longer takes, from the cache"
wait_log 'to=<ok2@v\.test>, relay=.*status=undeliverable \(550 5\.1\.1 <ok2@v\.test>: mailbox removed\), refresh=replaced' \
    "the refresh of ok2"
expect_rcpt_reply ok2@v.test '550 5\.1\.1 .*undeliverable address: 550 5\.1\.1 <ok2@v\.test>: mailbox removed' "after a refused refresh"
expect_probes ok2@v.test 2 "a refused refresh"
spoolctl verify ok2@v.test | grep -q '^ok2@v\.test invalid ' || fail "spoolctl verify ok2: $(spoolctl verify ok2@v.test)"
say "the primary refuses an address it took: the refresh turns the entry negative, the next RCPT gets 550 5.1.1"

# ---- a 4xx on refresh: the positive entry stays, with its time ----
printf 'ok3@v.test 450 4.2.0 try later\n' >>"$RULES"
aged ok3@v.test
before=$(checked ok3@v.test)
expect_rcpt_reply ok3@v.test 250 "a stale entry, the primary deferring"
wait_log 'to=<ok3@v\.test>, relay=.*status=unknown \(450 4\.2\.0 try later\), refresh=kept' "the refresh of ok3"
expect_rcpt_reply ok3@v.test 250 "after a deferred refresh"
expect_rcpt_reply ok3@v.test 250 "after a deferred refresh, again"
expect_probes ok3@v.test 2 "RCPTs after a deferred refresh"
[ "$(checked ok3@v.test)" = "$before" ] || fail "a deferred refresh changed the entry's time: $before -> $(checked ok3@v.test)"
spoolctl verify ok3@v.test | grep -q '^ok3@v\.test valid ' || fail "spoolctl verify ok3: $(spoolctl verify ok3@v.test)"
say "a 4xx on refresh: the entry stays positive with its old time, and the RCPTs after it start no probe"

# ---- spoolctl unverify through the running spoold ----
# ok3's refresh is resting in spoold's memory: unverify must still make
# the next RCPT probe
printf 'ok2@v.test 250 2.1.5 Ok, made again\n' >"$RULES"
out=$(spoolctl unverify ok1@v.test ok3@v.test) || fail "spoolctl unverify with spoold running: $out"
[ "$out" = "ok1@v.test removed from the verify cache
ok3@v.test removed from the verify cache" ] || fail "spoolctl unverify: $out"
grep -q 'control.*unverify ok1@v.test: 250 ok1@v.test removed from the verify cache' "$SPOOLD_LOG" ||
	fail "spoold did not log the unverify"
rc=0; spoolctl verify ok1@v.test >/dev/null 2>&1 || rc=$?
[ $rc -eq 65 ] || fail "ok1 still in the cache after unverify (exit $rc)"
expect_rcpt_reply ok1@v.test 250 "an unverified address"
expect_probes ok1@v.test 3 "the RCPT after unverify"
expect_rcpt_reply ok3@v.test 250 "an unverified address whose refresh was resting"
expect_probes ok3@v.test 3 "the RCPT after unverify of a resting refresh"
spoolctl unverify '<OK2@V.TEST>' >/dev/null || fail "spoolctl unverify <OK2@V.TEST>"
expect_rcpt_reply ok2@v.test 250 "a mailbox made again at the primary, after unverify"
expect_probes ok2@v.test 3 "the RCPT after unverify"
rc=0; spoolctl unverify stranger@v.test >"$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 65 ] || fail "spoolctl unverify of an uncached address via spoold: exit $rc, expected 65"
grep -q 'spoolctl: unverify stranger@v.test: not in the cache' "$T/err" || fail "spoolctl unverify: $(cat "$T/err")"
rc=0; spoolctl unverify not-an-address >/dev/null 2>&1 || rc=$?
[ $rc -eq 64 ] || fail "spoolctl unverify not-an-address: exit $rc, expected 64"
say "spoolctl unverify with spoold running: the entry goes (logged), the next RCPT probes; an uncached address: \"not in the cache\", exit 65"

# ---- the control socket's unverify, hostile lines ----
# ctl LINE - LINE (printf escapes: \000, \033) sent raw to control.sock: the reply
ctl() {
	python3 - "$T/spool/control.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
print(s.makefile("rb").readline().decode("latin-1").rstrip("\r\n"))
PY
}
out=$(ctl 'unverify ok1@v.test\000junk\n')
case "$out" in 5*) ;; *) fail "unverify with a NUL in the line: \"$out\", expected a 5xx";; esac
spoolctl verify ok1@v.test >/dev/null 2>&1 || fail "a line with a NUL after the address removed it"
out=$(ctl 'unverify ok1\033[2J@v.test\n')
case "$out" in 501*) ;; *) fail "unverify of an address with an escape: \"$out\", expected 501";; esac
if grep -q "$(printf '\033')" "$SPOOLD_LOG"; then fail "an escape from the control socket is in the log"; fi
out=$(ctl 'unverify OK1@V.TEST\r\n')
case "$out" in 250*) ;; *) fail "unverify OK1@V.TEST (CRLF): \"$out\"";; esac
expect_rcpt_reply '"John Doe"@v.test' '550 5\.1\.1' "a quoted local part"
spoolctl verify '"John Doe"@v.test' | grep -q '^"john doe"@v\.test invalid ' ||
	fail "spoolctl verify of a quoted local part: $(spoolctl verify '"John Doe"@v.test' 2>&1)"
out=$(spoolctl unverify '<"John Doe"@v.test>' 2>&1) || fail "spoolctl unverify of a quoted local part: $out"
rc=0; spoolctl verify '"john doe"@v.test' >/dev/null 2>&1 || rc=$?
[ $rc -eq 65 ] || fail "a quoted local part still cached after unverify (exit $rc)"
say "control unverify: a NUL in the line or a control character is refused, CRLF and any case taken; a quoted local part (\"John Doe\"@v.test) can be shown and removed"

# ---- spoolctl unverify with no spoold running ----
stop_spoold
out=$(spoolctl unverify ok3@v.test) || fail "spoolctl unverify with spoold stopped: $out"
[ "$out" = "ok3@v.test removed from the verify cache" ] || fail "spoolctl unverify: $out"
rc=0; spoolctl verify ok3@v.test >/dev/null 2>&1 || rc=$?
[ $rc -eq 65 ] || fail "ok3 still in the cache after an offline unverify (exit $rc)"
rc=0; spoolctl unverify ok3@v.test >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 65 ] || fail "spoolctl unverify of an address just removed, spoold stopped: exit $rc, expected 65"
grep -q 'not in the cache' "$T/err" || fail "spoolctl unverify: $(cat "$T/err")"
: >"$RULES"
start_spoold
expect_rcpt_reply ok3@v.test 250 "an address unverified while spoold was stopped"
expect_probes ok3@v.test 4 "the RCPT after an offline unverify"
expect_rcpt_reply nobody@v.test '550 5\.1\.1' "an address still cached"
expect_probes nobody@v.test 1 "a cached address after the restart"
stop_spoold
say "spoolctl unverify with spoold stopped writes the spool itself; the next RCPT probes again"

# ---- verify-rate counts refreshes ----
# verify-rate 2 (a fresh spoold: its minute starts at the first probe):
# three stale entries get 250 at once, but only two refresh probes go;
# the rate spent, a RCPT that needs a probe gets 450 4.7.1 at once
start_spoold
_pids=
for a in okr1 okr2 okr3; do
	rcpt_reply "$a@v.test" >"$T/$a.out" &
	_pids="$_pids $!"
done
wait $_pids
for a in okr1 okr2 okr3; do
	expect_probes "$a@v.test" 1 "the first RCPT"
done
stop_spoold
sed 's/^verify-rate 100$/verify-rate 2/' "$SPOOLD_CONF" >"$T/rate.conf" && mv "$T/rate.conf" "$SPOOLD_CONF"
grep -q '^verify-rate 2$' "$SPOOLD_CONF" || error "verify-rate 2 not set"
start_spoold
aged okr3@v.test
for a in okr1 okr2 okr3; do
	expect_rcpt_reply "$a@v.test" 250 "a stale entry, verify-rate 2"
done
wait_log 'to=<okr1@v\.test>, relay=.*, refresh=replaced' "the refresh of okr1"
wait_log 'to=<okr2@v\.test>, relay=.*, refresh=replaced' "the refresh of okr2"
expect_probes okr3@v.test 1 "a third stale entry beyond verify-rate 2"
expect_rcpt_reply okr3@v.test 250 "the third stale entry again"
expect_probes okr3@v.test 1 "a third stale entry beyond verify-rate 2, asked again"
expect_rcpt_reply okr4@v.test '450 4\.7\.1 .*too many address verifications' "a new address after two refreshes, verify-rate 2"
expect_probes okr4@v.test 0 "a new address beyond verify-rate 2"
stop_spoold
say "verify-rate counts refreshes: with verify-rate 2, three stale entries get 250 and two probes; a new address then gets 450 4.7.1"
