#!/bin/sh
# t11-io-error.sh - a storage I/O error at commit (fdatasync failing, made
# by libfiu) is never acknowledged: the client gets 451, spoold refuses
# everything else and exits with status 75 for its supervisor, and after a
# restart every message acknowledged before the error is there.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks fiu-run fiu-ctrl
# libfiu's LD_PRELOAD wrappers crash an AddressSanitizer build at start-up;
# this test runs in the plain build of the suite
grep -q -a __asan_init "$SPOOLD" && skip "spoold is built with ASan, which libfiu's preload cannot wrap"

write_conf
rm -f "$T/listen"
fiu-run -x "$SPOOLD" -c "$SPOOLD_CONF" -f --listen-file "$T/listen" >>"$SPOOLD_LOG" 2>&1 &
SPOOLD_PID=$!
echo "$SPOOLD_PID" >"$T/spoold.pid"
_i=0
until [ -s "$T/listen" ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold under fiu-run did not start"
	sleep 0.05
done
SMTP_PORT=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/listen")

sw -t before@example.test -f a@x.test
before=$(sw_queued)
[ -n "$before" ] || fail "no 250 before the fault: $(cat "$T/swaks.out")"

fiu-ctrl -c 'enable name=posix/io/sync/fdatasync' "$SPOOLD_PID" ||
	fail "fiu-ctrl cannot reach spoold (fiu-run control)"
sw -t during@example.test -f a@x.test
sw_expect '451 4\.3\.0' "the message whose commit failed"
[ -z "$(sw_queued)" ] || fail "a message was acknowledged although its commit failed"

_i=0
while alive "$SPOOLD_PID"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold did not exit within 10 s of the I/O error"
	sleep 0.05
done
_rc=0
wait "$SPOOLD_PID" || _rc=$?
rm -f "$T/spoold.pid"
[ $_rc -eq 75 ] || fail "spoold exited with $_rc after the I/O error, expected 75"
grep -q 'spool: commit failed with an I/O error: refusing mail and exiting with status 75' "$SPOOLD_LOG" ||
	fail "no critical log line about the I/O error"

start_spoold
spoolctl show example.test | grep -q "^$before " || fail "message $before, acknowledged before the fault, is missing"
spoolctl show example.test | grep -q 'during@example\.test' && fail "the refused message was stored"
stop_spoold
say "fdatasync failure: 451, exit 75, the earlier message kept, the refused one absent"
