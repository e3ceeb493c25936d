#!/bin/sh
# t08-process.sh - the process around the sessions: SIGTERM under load keeps
# every acknowledged message and exits 0; out of file descriptors the
# listener pauses and recovers; as root with "user", privileges are dropped.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need swaks

# ---- SIGTERM while clients are sending: every 250 is in the spool ----
write_conf "max-connections 100 100"
start_spoold
cat >"$T/sender.py" <<'PY'
# sender.py PORT LEDGER: 8 threads send until the server says 421 or closes
import re, smtplib, sys, threading
port, ledger = int(sys.argv[1]), open(sys.argv[2], "a")
lock = threading.Lock()
def run(n):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        s.ehlo("t%d.test" % n)
        for i in range(100000):
            s.mail("term%d@x.test" % n)
            s.rcpt("term@example.test")
            code, msg = s.data(b"Subject: t\r\n\r\n" + b"y" * 3000)
            m = re.search(rb"queued as ([0-9a-f]{16})", msg)
            if code != 250 or not m:
                return
            with lock:
                ledger.write(m.group(1).decode() + "\n"); ledger.flush()
    except (OSError, smtplib.SMTPException):
        pass
ts = [threading.Thread(target=run, args=(n,)) for n in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
: >"$T/ledger"
python3 "$T/sender.py" "$SMTP_PORT" "$T/ledger" &
echo $! >"$T/sender.pid"
_i=0
until [ "$(wc -l <"$T/ledger")" -ge 200 ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "senders stored fewer than 200 messages in 10 s"
	sleep 0.05
done
stop_spoold
wait "$(cat "$T/sender.pid")" || true
rm -f "$T/sender.pid"
grep -q 'shutting down' "$SPOOLD_LOG" || fail "no shutdown log line"
spoolctl show example.test | awk '!/^#/ { print $1 }' | sort >"$T/stored"
sort "$T/ledger" >"$T/acked"
missing=$(comm -23 "$T/acked" "$T/stored" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing acknowledged messages missing after SIGTERM"
say "SIGTERM under load: all $(wc -l <"$T/acked") acknowledged messages stored, exit status 0"

# ---- EMFILE: accept pauses instead of spinning, and recovers ----
need prlimit
start_spoold
prlimit --pid "$SPOOLD_PID" --nofile=32:32 || skip "prlimit cannot lower spoold's limit"
python3 - "$SMTP_PORT" >"$T/flood.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(60):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    except OSError as e:
        print("connect %d: %s" % (i, e))
time.sleep(3)
print("held %d connections" % len(socks))
PY
echo $! >"$T/flood.pid"
_i=0
until grep -q 'accept paused' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no 'accept paused' log line with 60 connections and 32 fds"
	sleep 0.05
done
# while paused, spoold must not spin: its CPU time over one second stays small
t0=$(awk '{ print $14 + $15 }' "/proc/$SPOOLD_PID/stat")
sleep 1
t1=$(awk '{ print $14 + $15 }' "/proc/$SPOOLD_PID/stat")
[ $((t1 - t0)) -lt 50 ] || fail "spoold used $((t1 - t0)) ticks in 1 s while out of descriptors"
wait "$(cat "$T/flood.pid")" || true
rm -f "$T/flood.pid"
_i=0
while :; do
	sw -t back@example.test -f a@x.test
	[ -n "$(sw_queued)" ] && break
	_i=$((_i + 1)); [ $_i -le 20 ] || fail "no delivery after the descriptor flood: $(cat "$T/swaks.out")"
	sleep 0.25
done
alive "$SPOOLD_PID" || fail "spoold died during the descriptor flood"
stop_spoold
say "out of descriptors: accept paused without spinning and recovered"

# ---- privilege drop (root only) ----
if [ "$(id -u)" -ne 0 ]; then
	say "not root: privilege drop not tested"
	exit 0
fi
id nobody >/dev/null 2>&1 || { say "no user nobody: privilege drop not tested"; exit 0; }
chmod 755 "$T"
write_conf "user nobody"
rm -rf "$T/spool"
start_spoold
uid=$(awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$SPOOLD_PID/status")
[ "$uid" = "$(id -u nobody),$(id -u nobody),$(id -u nobody),$(id -u nobody)" ] ||
	fail "spoold runs with uids $uid, expected nobody's"
groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$SPOOLD_PID/status" | tr -d ' ')
[ "$groups" = "$(id -g nobody)" ] || fail "supplementary groups not dropped: '$groups'"
[ "$(stat -c %U "$T/spool")" = nobody ] || fail "datadir not handed to nobody"
sw -t priv@example.test -f a@x.test
[ -n "$(sw_queued)" ] || fail "no 250 as user nobody: $(cat "$T/swaks.out")"
grep -q 'running as user nobody' "$SPOOLD_LOG" || fail "no 'running as user' log line"
stop_spoold
say "root with 'user nobody': uid/gid/groups dropped, spool owned by nobody, mail stored"

# after the drop the root-only key cannot be read again: a reload that
# changes only tls-priority keeps the loaded key and takes the priority
need_swaks TLS
make_cert
chmod 600 "$T/key.pem"
write_conf "user nobody" "tls-cert $T/cert.pem" "tls-key $T/key.pem"
start_spoold
printf 'tls-priority NORMAL:-VERS-ALL:+VERS-TLS1.2\n' >>"$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0; until grep -q -E 'reloaded: |reload failed' "$SPOOLD_LOG"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "no reload"; sleep 0.05; done
grep -q 'reload failed' "$SPOOLD_LOG" && fail "a reload changing only tls-priority failed: $(grep -B2 'reload failed' "$SPOOLD_LOG")"
sw -tls -t prio@example.test -f a@x.test
grep -q 'TLS started with cipher TLSv1.2' "$T/swaks.out" ||
	fail "the new tls-priority (TLS 1.2 only) is not in use: $(grep -i 'tls' "$T/swaks.out" | head -3)"
[ -n "$(sw_queued)" ] || fail "no 250 over TLS after the reload"
stop_spoold
say "as nobody, a reload changing only tls-priority keeps the root-only key and applies the priority (TLS 1.2)"
