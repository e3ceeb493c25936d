#!/bin/sh
# t31-systemd.sh - the installed systemd units are sound and sandboxed, and
# spoold still works inside the sandbox its unit sets up.
#
# 1. systemd-analyze verify: both units as make install puts them, with the
#    programs they name in place (--root: the staging root, which gets a copy
#    of this machine's systemd units for the targets they refer to, and
#    /bin/kill for ExecReload=).  Any message fails, a warning included (an
#    unknown key is only a warning to verify); two broken copies show that
#    this check can fail.
# 2. systemd-analyze security --offline: spoold.service's exposure at most
#    2.5, etrnclient.service's at most 2.0.
# 3. No systemd is needed for that, and none runs here as PID 1 (nor in CI's
#    fresh root), so the unit itself is not started.  Instead spoold runs
#    under what of its sandbox can be had without systemd: the unit's
#    CapabilityBoundingSet= and NoNewPrivileges= (setpriv), ProtectSystem=
#    strict with the datadir the only writable place (a private mount
#    namespace, everything read-only but the spool and the listen file), and
#    UMask=.  It must bind a privileged port, drop to its user, hold no
#    capability afterwards, store a message and reload when the unit's
#    ExecReload= runs as systemd would run it; without any one of the
#    unit's capabilities it must refuse to start.  Not emulated:
#    SystemCallFilter=, RestrictAddressFamilies=, MemoryDenyWriteExecute=,
#    PrivateTmp=, PrivateDevices= and the Protect*= of the kernel.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

need systemd-analyze unshare setpriv chroot swaks
[ "$(id -u)" -eq 0 ] || skip "spoold must start as root to drop its privileges as the unit has it do"

ROOT="$T/root"
make -C "$top_builddir" install DESTDIR="$ROOT" >"$T/install.log" 2>&1 ||
	fail "make install failed: $(tail -20 "$T/install.log")"
prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
unitdir="$prefix/lib/systemd/system"
for u in spoold etrnclient; do
	[ -f "$ROOT$unitdir/$u.service" ] || fail "make install did not install $unitdir/$u.service"
done

# ---- 1. systemd-analyze verify ----
[ -d /lib/systemd/system ] || fail "/lib/systemd/system is missing (the systemd package; contrib/deps.sh test installs it)"
mkdir -p "$ROOT/lib/systemd" "$ROOT/bin"
cp -R /lib/systemd/system "$ROOT/lib/systemd/"
[ -x /bin/kill ] || fail "/bin/kill, which the units' ExecReload= runs, is missing (procps; contrib/deps.sh test installs it)"
cp /bin/kill "$ROOT/bin/kill"
# verify UNIT-FILE... - systemd-analyze verify in the staging root; its
# output in $T/verify.out.  --man=no: it would run man(1) in the root;
# the pages are checked below and by t28.
verify() {
	_rc=0
	systemd-analyze verify --man=no --root="$ROOT" "$@" >"$T/verify.out" 2>&1 || _rc=$?
	return $_rc
}
verify "$ROOT$unitdir/spoold.service" "$ROOT$unitdir/etrnclient.service" ||
	fail "systemd-analyze verify failed: $(cat "$T/verify.out")"
[ -s "$T/verify.out" ] && fail "systemd-analyze verify complained: $(cat "$T/verify.out")"
sed 's/^ProtectSystem=/ProtectSytem=/' "$ROOT$unitdir/spoold.service" >"$ROOT$unitdir/typo.service"
verify "$ROOT$unitdir/typo.service" || true
grep -q "Unknown key 'ProtectSytem'" "$T/verify.out" ||
	fail "systemd-analyze verify said nothing of a misspelt key: $(cat "$T/verify.out")"
sed 's|^ExecStart=\([^ ]*\)/spoold |ExecStart=\1/no-such-spoold |' "$ROOT$unitdir/spoold.service" \
    >"$ROOT$unitdir/nobinary.service"
verify "$ROOT$unitdir/nobinary.service" && fail "systemd-analyze verify took a unit whose ExecStart= is missing"
grep -q 'no-such-spoold is not executable' "$T/verify.out" ||
	fail "systemd-analyze verify, missing program: $(cat "$T/verify.out")"
rm -f "$ROOT$unitdir/typo.service" "$ROOT$unitdir/nobinary.service"
for u in spoold etrnclient; do
	for page in $(sed -n 's/^Documentation=//p' "$ROOT$unitdir/$u.service"); do
		name=${page#man:}; sec=${name##*\(}; sec=${sec%\)}; name=${name%\(*}
		[ -f "$ROOT$prefix/share/man/man$sec/$name.$sec" ] ||
			fail "$u.service names $page, which make install does not install"
	done
done
say "systemd-analyze verify: both installed units clean (it does report a misspelt key and a missing program); their Documentation= pages are installed"

# ---- 2. systemd-analyze security ----
# exposure UNIT LIMIT - the overall exposure level (0.0-10.0); fails above
# LIMIT, by systemd-analyze's own --threshold (0-100) and by the number printed
exposure() {
	_rc=0
	systemd-analyze security --offline=true --threshold="$(awk -v m="$2" 'BEGIN { printf "%d", m * 10 }')" \
	    "$ROOT$unitdir/$1.service" >"$T/security-$1.out" 2>&1 || _rc=$?
	_level=$(sed -n "s/^.*Overall exposure level for $1.service: \([0-9.]*\) .*/\1/p" "$T/security-$1.out")
	[ -n "$_level" ] || fail "systemd-analyze security printed no exposure level for $1: $(cat "$T/security-$1.out")"
	awk -v l="$_level" -v max="$2" 'BEGIN { exit !(l <= max) }' && [ $_rc -eq 0 ] ||
		fail "$1.service: exposure $_level, more than $2 (status $_rc):
$(grep '✗' "$T/security-$1.out")"
	echo "$_level"
}
sl=$(exposure spoold 2.5)
el=$(exposure etrnclient 2.0)
say "systemd-analyze security --offline: spoold.service $sl (at most 2.5), etrnclient.service $el (at most 2.0)"

# ---- 3. spoold inside the unit's sandbox, as far as it goes without systemd ----
unit="$ROOT$unitdir/spoold.service"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || fail "spoold.service has no CapabilityBoundingSet="
grep -q '^NoNewPrivileges=yes$' "$unit" || fail "spoold.service lacks NoNewPrivileges=yes"
grep -q '^ProtectSystem=strict$' "$unit" || fail "spoold.service lacks ProtectSystem=strict"
umask=$(sed -n 's/^UMask=//p' "$unit")
[ -n "$umask" ] || fail "spoold.service has no UMask="
id nobody >/dev/null 2>&1 || fail "there is no user nobody to drop to"

# a free privileged port: the bind needs CAP_NET_BIND_SERVICE
port=$(python3 -c 'import random, socket
for p in random.sample(range(600, 1000), 400):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()')
[ -n "$port" ] || error "no free port in 600-999"
chmod 755 "$T"		# spoold runs as nobody under it
mkdir -p "$T/run"
chmod 755 "$T/run"
# The sandbox's root is mounted on NEWROOT in a private mount namespace only;
# here NEWROOT stays an empty directory, which rmdir (never rm -r) removes.
NEWROOT=$(mktemp -d "${TMPDIR:-/tmp}/spoold-t31-newroot.XXXXXX") || error "mktemp -d failed"
trap 'rmdir "$NEWROOT"; cleanup' EXIT
cat >"$SPOOLD_CONF" <<EOF
hostname mx.test
listen smtp 127.0.0.1:$port
datadir $T/spool
user nobody
domain example.test {
    recipients any
}
EOF
mkdir -p "$T/spool"

# setpriv_caps "CAP_A CAP_B" - setpriv's --bounding-set for just these
setpriv_caps() {
	echo "-all$(for c in $1; do printf ',+%s' "$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')"; done)"
}
# The mounts below must not reach this machine's own mount namespace
# (mount_propagation); in a chroot with shared mounts, no read-only system.
mount_propagation || say "a chroot with shared mounts: ProtectSystem= is not emulated here"
# sandboxed - start spoold in the background as the unit would, for the
# bounding set $BSET: in a mount namespace of its own whose root is this file
# system read-only, with $T/spool (the datadir) and $T/run (the listen file)
# bound writable; sets PID (spoold's: each step execs the next)
sandboxed() {
	: >"$SPOOLD_LOG"
	rm -f "$T/run/listen"
	if [ -z "$PROPAGATION" ]; then
		(umask "$UMASK" && exec setpriv --bounding-set "$BSET" --inh-caps -all --no-new-privs \
		    "$SPOOLD" -f -c "$SPOOLD_CONF" --listen-file "$T/run/listen") >>"$SPOOLD_LOG" 2>&1 &
		PID=$!
		return
	fi
	unshare -m --propagation "$PROPAGATION" sh -c '
		set -e
		nr=$1; shift
		mount --rbind / "$nr"
		mount -o remount,bind,ro "$nr"
		mount --bind "$T/spool" "$nr$T/spool"
		mount --bind "$T/run" "$nr$T/run"
		umask "$UMASK"
		exec chroot "$nr" setpriv --bounding-set "$BSET" --inh-caps -all --no-new-privs "$@"
	' sandbox "$NEWROOT" "$SPOOLD" -f -c "$SPOOLD_CONF" --listen-file "$T/run/listen" \
	    >>"$SPOOLD_LOG" 2>&1 &
	PID=$!
}
export T UMASK="$umask"

# without any one of its capabilities spoold does not get going
for drop in $caps; do
	BSET=$(setpriv_caps "$(echo "$caps" | tr ' ' '\n' | grep -v "^$drop\$")")
	export BSET
	sandboxed
	_rc=0
	_i=0
	while alive "$PID"; do
		_i=$((_i + 1))
		if [ $_i -gt 200 ]; then
			stop_pid "$PID"
			fail "spoold without $drop still runs after 10 s: the unit would not need it"
		fi
		sleep 0.05
	done
	wait "$PID" || _rc=$?
	[ $_rc -ne 0 ] || fail "spoold without $drop exited 0"
	case $drop in
	CAP_NET_BIND_SERVICE) want='cannot listen' ;;
	CAP_CHOWN) want="chown $T/spool" ;;
	CAP_SETGID) want='setgroups' ;;
	CAP_SETUID) want='setuid' ;;
	*) fail "spoold.service has $drop in CapabilityBoundingSet=, and this test does not know why" ;;
	esac
	grep -q "$want" "$SPOOLD_LOG" || fail "spoold without $drop: no \"$want\" in: $(cat "$SPOOLD_LOG")"
done
say "spoold needs each of its unit's capabilities ($caps): without any one it exits at once"

BSET=$(setpriv_caps "$caps")
export BSET
sandboxed
echo "$PID" >"$T/spoold.pid"
_i=0
until [ -s "$T/run/listen" ]; do
	alive "$PID" || fail "spoold in the sandbox exited before it was listening"
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold in the sandbox wrote no listen file within 10 s"
	sleep 0.05
done
grep -q "^smtp 127.0.0.1:$port\$" "$T/run/listen" || fail "listen file: $(cat "$T/run/listen")"
SMTP_PORT=$port
_i=0
until grep -q 'ready:' "$SPOOLD_LOG"; do
	alive "$PID" || fail "spoold in the sandbox exited"
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold in the sandbox is not ready within 10 s"
	sleep 0.05
done
grep -q 'running as user nobody' "$SPOOLD_LOG" || fail "spoold did not drop to nobody: $(cat "$SPOOLD_LOG")"
st=/proc/$PID/status
[ "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "$st")" = "$(id -u nobody)$(id -u nobody)$(id -u nobody)$(id -u nobody)" ] ||
	fail "spoold's uids are not nobody's: $(grep '^Uid:' "$st")"
grep -q '^CapEff:[[:space:]]*0000000000000000$' "$st" || fail "spoold still holds capabilities: $(grep '^Cap' "$st")"
grep -q '^CapPrm:[[:space:]]*0000000000000000$' "$st" || fail "spoold still may raise capabilities: $(grep '^Cap' "$st")"
grep -q '^NoNewPrivs:[[:space:]]*1$' "$st" || fail "spoold runs without no_new_privs: $(grep NoNewPrivs "$st")"
[ "$(stat -c %U "$T/spool")" = nobody ] || fail "the datadir belongs to $(stat -c %U "$T/spool"), not nobody"
sw --to user@example.test --from a@client.test
[ $SW_RC -eq 0 ] || fail "spoold in the sandbox refused a message: $(cat "$T/swaks.out")"
sw_expect '250 ' "the message"
expect_count example.test 1
for f in "$T"/spool/*; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f") under UMask=$umask"
done
# ExecReload= as systemd runs it: in the sandbox (the unit's bounding set),
# or with full privileges when it starts with "+".  Root without CAP_KILL
# may not signal spoold once it runs as another user, so only the "+" form
# can reload it.
reload=$(sed -n 's/^ExecReload=//p' "$unit" | sed "s/\$MAINPID/$PID/")
case $reload in
+*) sh -c "${reload#+}" >"$T/reload.out" 2>&1 || fail "ExecReload=$reload failed: $(cat "$T/reload.out")" ;;
*) fail "spoold.service's ExecReload= does not start with + (root in the sandbox cannot signal spoold)" ;;
esac
setpriv --bounding-set "$BSET" --no-new-privs sh -c "${reload#+}" >"$T/reload.out" 2>&1 &&
	fail "ExecReload= without its + could signal spoold from inside the sandbox: the + may go"
grep -q 'Operation not permitted' "$T/reload.out" || fail "ExecReload= in the sandbox: $(cat "$T/reload.out")"
_i=0
until grep -q 'reloaded: 1 domain' "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "spoold did not reload after ExecReload=: $(tail -5 "$SPOOLD_LOG")"
	sleep 0.05
done
stop_pid "$PID"
rm -f "$T/spoold.pid"
_rc=0
wait "$PID" || _rc=$?
[ $_rc -eq 0 ] || fail "spoold in the sandbox exited with status $_rc after SIGTERM: $(tail -5 "$SPOOLD_LOG")"
grep -q 'Read-only file system' "$SPOOLD_LOG" && fail "spoold tried to write outside its datadir: $(grep 'Read-only' "$SPOOLD_LOG")"
say "spoold under the unit's bounding set, no_new_privs, UMask=$umask${PROPAGATION:+ and a read-only system but its datadir}: bound port $port, dropped to nobody with no capability left, stored a message, reloaded by its ExecReload=, stopped cleanly"
