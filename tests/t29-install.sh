#!/bin/sh
# t29-install.sh - make install into a staging root puts what a postmaster
# needs where the programs look for it: the three programs, the five manual
# pages, a sample configuration under $(sysconfdir)/spoold/ and
# $(sysconfdir)/etrnclient/, and systemd units that name the installed
# programs and the one default configuration path.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

ROOT="$T/root"
make -C "$top_builddir" install DESTDIR="$ROOT" >"$T/install.log" 2>&1 ||
	fail "make install failed: $(tail -20 "$T/install.log")"
sbindir=$(sed -n 's/^sbindir = //p' "$top_builddir/Makefile")
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$top_builddir/Makefile")
prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
sbindir=$(echo "$sbindir" | sed "s|\${exec_prefix}|$prefix|; s|\${prefix}|$prefix|")
sysconfdir=$(echo "$sysconfdir" | sed "s|\${prefix}|$prefix|")
for f in "$sbindir/spoold" "$sbindir/etrnclient" "$prefix/bin/spoolctl" \
    "$prefix/share/man/man8/spoold.8" "$prefix/share/man/man5/spoold.conf.5" \
    "$prefix/share/man/man8/spoolctl.8" "$prefix/share/man/man8/etrnclient.8" \
    "$prefix/share/man/man5/etrnclient.conf.5" \
    "$sysconfdir/spoold/spoold.conf.example" "$sysconfdir/etrnclient/etrnclient.conf.example" \
    "$prefix/lib/systemd/system/spoold.service" "$prefix/lib/systemd/system/etrnclient.service"; do
	[ -f "$ROOT$f" ] || fail "make install did not install $f: $(cd "$ROOT" && find . -type f)"
done
say "make install: programs, manual pages, sample configurations, units"

unit="$ROOT$prefix/lib/systemd/system/spoold.service"
grep -q "^ExecStart=$sbindir/spoold -F -c $sysconfdir/spoold/spoold.conf\$" "$unit" ||
	fail "spoold.service does not start the installed spoold on the default path: $(grep Exec "$unit")"
grep -q "^ExecStart=$sbindir/etrnclient -c $sysconfdir/etrnclient/etrnclient.conf" \
    "$ROOT$prefix/lib/systemd/system/etrnclient.service" || fail "etrnclient.service names another path"
# (an @ alone is systemd's: SystemCallFilter=@system-service)
grep -E -q '@[A-Za-z_]+@' "$unit" && fail "spoold.service has an unsubstituted @...@: $(grep -E '@[A-Za-z_]+@' "$unit")"
"$ROOT$sbindir/spoold" -x 2>&1 | grep -q "default $sysconfdir/spoold/spoold.conf)" ||
	fail "spoold's default configuration is not $sysconfdir/spoold/spoold.conf: $("$ROOT$sbindir/spoold" -x 2>&1)"
# the sample names "user spoold", which the package creates; here: nobody
sed 's/^user .*/user nobody/' "$ROOT$sysconfdir/spoold/spoold.conf.example" \
    >"$ROOT$sysconfdir/spoold/spoold.conf"
"$ROOT$sbindir/spoold" -n -c "$ROOT$sysconfdir/spoold/spoold.conf" >"$T/n.out" 2>&1 ||
	fail "the installed sample configuration does not pass spoold -n: $(cat "$T/n.out")"
# spoold -n finds a user that does not exist and a recipients file that is
# not there, each with its file:line
printf 'hostname n.test\nlisten smtp 127.0.0.1:0\ndatadir %s\nuser no-such-user-here\n' "$T/nspool" >"$T/n.conf"
"$top_builddir/spoold/spoold" -n -c "$T/n.conf" >"$T/n.out" 2>&1 && fail "spoold -n took a user that does not exist"
grep -q "^$T/n.conf:4: user no-such-user-here: no such user\$" "$T/n.out" || fail "spoold -n, no such user: $(cat "$T/n.out")"
printf 'hostname n.test\nlisten smtp 127.0.0.1:0\ndatadir %s\ndomain x.test {\n    recipients %s/none\n}\n' \
    "$T/nspool" "$T" >"$T/n.conf"
"$top_builddir/spoold/spoold" -n -c "$T/n.conf" >"$T/n.out" 2>&1 && fail "spoold -n took a missing recipients file"
grep -q "^$T/n.conf:5: recipients file $T/none: No such file or directory\$" "$T/n.out" ||
	fail "spoold -n, missing recipients file: $(cat "$T/n.out")"
say "the units and spoold agree on $sysconfdir/spoold/spoold.conf; the installed sample passes spoold -n; -n names file:line for a missing user or recipients file"

for p in "$sbindir/spoold" "$sbindir/etrnclient" "$prefix/bin/spoolctl"; do
	name=${p##*/}
	"$ROOT$p" --help >"$T/help.out" 2>"$T/help.err" || fail "$name --help exits $?: $(cat "$T/help.err")"
	grep -q "^usage: $name" "$T/help.out" || fail "$name --help prints no usage on stdout: $(cat "$T/help.out")"
	"$ROOT$p" -V | grep -q "^$name [0-9]" || fail "$name -V: $("$ROOT$p" -V 2>&1)"
done
say "spoold, etrnclient and spoolctl answer --help (usage on stdout, 0) and -V"

# a relative -c in daemon mode: resolved before daemon() goes to /, so a
# SIGHUP still reads the file (a domain added is then taken); the pidfile
# holds the daemon's pid, refuses a second spoold, and goes at the stop
mkdir -p "$T/rel"
cat >"$T/rel/spoold.conf" <<CONF
hostname rel.test
listen smtp 127.0.0.1:0
datadir spool
pidfile spoold.pid
CONF
(cd "$T/rel" && "$top_builddir/spoold/spoold" -c spoold.conf --listen-file "$T/rel/listen") ||
	fail "spoold with a relative -c did not start"
_i=0
until [ -s "$T/rel/spoold.pid" ] && [ -s "$T/rel/listen" ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "the daemon wrote no pidfile or listen file"; sleep 0.05
done
pid=$(cat "$T/rel/spoold.pid")
echo "$pid" >"$T/reldaemon.pid"
alive "$pid" || fail "the pidfile does not hold the daemon's pid"
(cd "$T/rel" && "$top_builddir/spoold/spoold" -f -c spoold.conf) >"$T/second.out" 2>&1 &&
	fail "a second spoold on the same pidfile started"
grep -q 'pidfile .* is locked: another spoold runs' "$T/second.out" || fail "second spoold: $(cat "$T/second.out")"
port=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/rel/listen")
rcpt() {	# rcpt ADDRESS - the reply code to RCPT TO:<ADDRESS>
	python3 -c 'import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10); s.ehlo("t.test"); s.mail("a@t.test")
print(s.rcpt(sys.argv[2])[0]); s.quit()' "$port" "$1"
}
[ "$(rcpt u@new.test)" -ge 500 ] || fail "new.test accepted before it was configured"
printf 'domain new.test {\n    recipients any\n}\n' >>"$T/rel/spoold.conf"
kill -HUP "$pid"
_i=0
until [ "$(rcpt u@new.test)" = 250 ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "after SIGHUP the daemon with a relative -c did not take the new domain"
	sleep 0.05
done
kill "$pid"
_i=0
while alive "$pid"; do _i=$((_i + 1)); [ $_i -le 100 ] || fail "the daemon did not stop"; sleep 0.05; done
[ -e "$T/rel/spoold.pid" ] && fail "the pidfile is still there after the stop"
say "a relative -c: the daemon reloads it at SIGHUP; pidfile written, locked against a second spoold, removed at the stop"
# a pidfile that is a link (planted where the service user may write) is
# refused, and its target left alone
echo untouched >"$T/target"
ln -s "$T/target" "$T/rel/spoold.pid"
(cd "$T/rel" && "$top_builddir/spoold/spoold" -f -c spoold.conf) >"$T/link.out" 2>&1 &&
	fail "spoold started with a pidfile that is a symbolic link"
[ "$(cat "$T/target")" = untouched ] || fail "spoold wrote through a pidfile link"
say "a pidfile that is a symbolic link: refused, its target untouched"

