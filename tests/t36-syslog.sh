#!/bin/sh
# t36-syslog.sh - what reaches syslog: `spoold -F` (the unit's way) sends
# its lines to /dev/log with facility mail (<22> info, <20> warning) and
# the tags of t27 (spoold/smtpd[PID]: ...), and spoolctl logs the changes it
# makes to the spool itself (no spoold running) as spoold/control.  /dev/log
# is a socket of this test's own, in a private mount namespace (unshare -m),
# so the machine's syslog is neither needed nor touched.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_swaks
need unshare mount
[ "$(id -u)" -eq 0 ] || skip "needs root for a private mount namespace (unshare -m)"
# The mounts below must not reach this machine's mount namespace
mount_propagation || skip "no mount namespace whose mounts stay private (a chroot with shared mounts)"

# the syslog receiver: one datagram a line into $T/syslog.out
python3 - "$T/devlog" "$T/syslog.out" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
PY
echo $! >"$T/syslogd.pid"
_i=0; until [ -S "$T/devlog" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "no receiver socket"; sleep 0.05; done

# with_devlog CMD... - CMD with /dev/log this test's socket: a private /dev
# (a tmpfs with the usual devices bound in) in a private mount namespace
cat >"$T/with-devlog.sh" <<EOF
set -e
mkdir -p "$T/dev"
mount -t tmpfs tmpfs "$T/dev"
for d in null zero full random urandom tty; do
	touch "$T/dev/\$d"
	mount --bind "/dev/\$d" "$T/dev/\$d"
done
ln -s "$T/devlog" "$T/dev/log"
mount --bind "$T/dev" /dev
exec "\$@"
EOF
with_devlog() {
	unshare -m --propagation "$PROPAGATION" sh "$T/with-devlog.sh" "$@"
}

write_conf
rm -f "$T/listen"
# not through the function: $! must be spoold itself (unshare and sh exec)
unshare -m --propagation "$PROPAGATION" sh "$T/with-devlog.sh" "$SPOOLD" -c "$SPOOLD_CONF" -F \
    --listen-file "$T/listen" >>"$SPOOLD_LOG" 2>&1 &
SPOOLD_PID=$!
echo "$SPOOLD_PID" >"$T/spoold.pid"
_i=0
until [ -s "$T/listen" ]; do
	alive "$SPOOLD_PID" || fail "spoold -F exited: $(cat "$SPOOLD_LOG")"
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold -F wrote no listen file"; sleep 0.05
done
SMTP_PORT=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/listen")
sw -f a@client.test -t u@example.test
id=$(sw_queued)
[ -n "$id" ] || fail "spoold -F did not take a message: $(cat "$T/swaks.out")"
_i=0
until grep -q "$id: from=<a@client.test>" "$T/syslog.out" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "no from= line reached syslog: $(cat "$T/syslog.out" 2>/dev/null)"; sleep 0.05
done
stop_spoold

grep -Eq "^<22>.* spoold/smtpd\[$SPOOLD_PID\]: [0-9a-f]{16}: connect from unknown\[127\.0\.0\.1\]" "$T/syslog.out" ||
	fail "no mail.info connect line tagged spoold/smtpd[$SPOOLD_PID]: $(head -5 "$T/syslog.out")"
grep -Eq "^<22>.* spoold/qmgr\[$SPOOLD_PID\]: $id: from=<a@client.test>, size=[0-9]+, nrcpt=1 \(queue active\)" "$T/syslog.out" ||
	fail "no mail.info from= line tagged spoold/qmgr"
grep -Eq "^<20>.* spoold\[$SPOOLD_PID\]: warning: running as root" "$T/syslog.out" ||
	fail "no mail.warning line with \"warning: \": $(grep -v '^<22>' "$T/syslog.out" | head -3)"
[ -s "$SPOOLD_LOG" ] && grep -q "connect from" "$SPOOLD_LOG" && fail "spoold -F also wrote the log to stderr"
say "spoold -F: lines in syslog with facility mail (<22> info, <20> warning), tagged spoold/smtpd[PID], spoold/qmgr[PID]"

# ---- spoolctl's own changes, with no spoold running ----
with_devlog "$SPOOLCTL" -c "$SPOOLD_CONF" hold example.test >/dev/null || fail "spoolctl hold failed"
with_devlog "$SPOOLCTL" -c "$SPOOLD_CONF" delete "$id" >/dev/null || fail "spoolctl delete failed"
_i=0
until grep -q "delete $id" "$T/syslog.out"; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "spoolctl delete not logged: $(tail -3 "$T/syslog.out")"; sleep 0.05
done
grep -Eq "^<22>.* spoold/control\[[0-9]+\]: hold example\.test: held \(by spoolctl, uid 0; spoold not running\)" "$T/syslog.out" ||
	fail "spoolctl hold not logged: $(tail -3 "$T/syslog.out")"
grep -Eq "^<22>.* spoold/control\[[0-9]+\]: delete $id: deleted \(by spoolctl, uid 0; spoold not running\)" "$T/syslog.out" ||
	fail "spoolctl delete not logged as spoold/control"
say "spoolctl hold and delete without spoold: logged as spoold/control with the uid"
stop_pid "$(cat "$T/syslogd.pid")"
rm -f "$T/syslogd.pid"
check_sanitizers
