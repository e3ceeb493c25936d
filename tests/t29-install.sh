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
grep -q '@' "$unit" && fail "spoold.service has an unsubstituted @...@: $(grep @ "$unit")"
"$ROOT$sbindir/spoold" -x 2>&1 | grep -q "default $sysconfdir/spoold/spoold.conf)" ||
	fail "spoold's default configuration is not $sysconfdir/spoold/spoold.conf: $("$ROOT$sbindir/spoold" -x 2>&1)"
"$ROOT$sbindir/spoold" -n -c "$ROOT$sysconfdir/spoold/spoold.conf.example" >"$T/n.out" 2>&1 ||
	fail "the installed sample configuration does not pass spoold -n: $(cat "$T/n.out")"
say "the units and spoold agree on $sysconfdir/spoold/spoold.conf; the installed sample passes spoold -n"
