#!/bin/sh
# t10-spool-full.sh - no space: at max-spool-size, and on a full file system
# (root only: a small tmpfs).  Either way the refusal is 452 4.3.1, spoold
# keeps running, and every message that got a 250 is there after a restart.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# fill_until_refused LEDGER - 80 KB messages until one is refused; prints
# the refusal; every queue id acknowledged goes to LEDGER
fill_until_refused() {
	python3 - "$SMTP_PORT" "$1" <<'PY'
import re, smtplib, sys
port, ledger = int(sys.argv[1]), open(sys.argv[2], "a")
body = b"Subject: fill\r\n\r\n" + (b"f" * 98 + b"\r\n") * 800
for i in range(400):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("fill.test")
    code, msg = s.mail("fill@x.test")
    if code == 250:
        s.rcpt("fill@example.test")
        code, msg = s.data(body)
    if code != 250:
        print(code, msg.decode())
        sys.exit(0)
    ledger.write(re.search(rb"queued as ([0-9a-f]{16})", msg).group(1).decode() + "\n")
    ledger.flush()
    s.quit()
print("never refused")
sys.exit(1)
PY
}

# check_ledger LEDGER - every acknowledged id is in the spool
check_ledger() {
	spoolctl show example.test | awk '!/^#/ { print $1 }' | sort >"$T/stored"
	sort "$1" >"$T/acked"
	_missing=$(comm -23 "$T/acked" "$T/stored" | wc -l)
	[ "$_missing" -eq 0 ] || fail "$_missing acknowledged messages are missing"
}

# ---- max-spool-size ----
write_conf "max-spool-size 2M"
start_spoold
: >"$T/ledger"
refusal=$(fill_until_refused "$T/ledger") || fail "max-spool-size 2M never refused mail: $refusal"
case $refusal in
452*4.3.1*) ;;
*) fail "at max-spool-size the refusal was: $refusal" ;;
esac
sw -t after@example.test -f a@x.test
sw_expect '452 4\.3\.1' "new mail right after the spool filled"
kill9_spoold
start_spoold
check_ledger "$T/ledger"
stop_spoold
say "max-spool-size: $(wc -l <"$T/ledger") stored, then '$refusal'; all there after kill -9"

# ---- a full file system (root only) ----
if [ "$(id -u)" -ne 0 ]; then
	say "not root: no tmpfs, full-disk case not tested"
	exit 0
fi
rm -rf "$T/spool"
mkdir "$T/spool"
mount -t tmpfs -o size=3m tmpfs "$T/spool" 2>/dev/null || { say "cannot mount a tmpfs: full-disk case not tested"; exit 0; }
# on exit: stop spoold, unmount, then the usual cleanup with the test's status
trap '_r=$?; set +e; [ -f "$T/spoold.pid" ] && stop_pid "$(cat "$T/spoold.pid")"; umount "$T/spool" 2>/dev/null; (exit $_r); cleanup' EXIT
write_conf "max-spool-size 64M"
start_spoold
: >"$T/ledger2"
refusal=$(fill_until_refused "$T/ledger2") || fail "a 3 MB file system never refused mail: $refusal"
case $refusal in
452*4.3.1*) ;;
*) fail "on a full file system the refusal was: $refusal" ;;
esac
alive "$SPOOLD_PID" || fail "spoold died when the disk filled"
stop_spoold
start_spoold
check_ledger "$T/ledger2"
stop_spoold
say "full file system: $(wc -l <"$T/ledger2") stored, then '$refusal'; spoold stayed up; all there after restart"
