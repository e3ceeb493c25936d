#!/bin/sh
# t30-debian.sh - the release tree builds the two Debian packages, and they
# hold what a postmaster expects and enable nothing.
#
# The tree make dist packs (make distdir, debian/ included) is built with
# dpkg-buildpackage -us -uc -b; lintian must print no error and no warning
# on the .changes, nor on the source package made from the same tree.
# dpkg-deb shows each package's files, conffiles and fields; the packaged
# spoold passes -n on its packaged configuration.  The maintainer scripts
# are not run on this machine (they would add a user): postinst runs with
# stand-ins for adduser, install, deb-systemd-helper, deb-systemd-invoke and
# systemctl, which log their arguments, and must create the user and the
# spool but enable and start nothing.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

need dpkg-buildpackage dpkg-source dpkg-deb dpkg-parsechangelog dh lintian

version=$(sed -n 's/^VERSION = //p' "$top_builddir/Makefile")
[ -n "$version" ] || error "no VERSION in $top_builddir/Makefile"
src="$T/spoold-$version"
make -C "$top_builddir" distdir distdir="$src" >"$T/distdir.log" 2>&1 ||
	fail "make distdir failed: $(tail -20 "$T/distdir.log")"
[ -f "$src/debian/rules" ] || fail "the release tree (make dist) has no debian/"
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
case $deb_version in
"$version"-[0-9]*) ;;
*) fail "debian/changelog's version $deb_version is not configure.ac's $version plus a revision" ;;
esac

# ---- build ----
# the source package first, from the pristine tree (an orig tarball without
# debian/), for lintian's checks of debian/control and debian/copyright
tar -C "$T" --exclude="spoold-$version/debian" -czf "$T/spoold_$version.orig.tar.gz" "spoold-$version"
(cd "$src" && dpkg-source -b .) >"$T/source.log" 2>&1 || fail "dpkg-source -b failed: $(tail "$T/source.log")"
(cd "$src" && DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 ||
	fail "dpkg-buildpackage -us -uc -b failed: $(tail -30 "$T/build.log")"
arch=$(dpkg --print-architecture)
changes="$T/spoold_${deb_version}_$arch.changes"
[ -f "$changes" ] || fail "no $changes: $(ls "$T")"
for p in spoold etrnclient; do
	[ -f "$T/${p}_${deb_version}_$arch.deb" ] || fail "dpkg-buildpackage made no $p package: $(ls "$T")"
done
say "dpkg-buildpackage -us -uc -b: spoold and etrnclient $deb_version from the release tree"

# ---- lintian ----
# lint FILE - no E: and no W: line (overrides say why, in debian/*.lintian-overrides)
lint() {
	_rc=0
	lintian --fail-on error,warning "$1" >"$T/lintian.out" 2>&1 || _rc=$?
	if grep -E '^[EW]: ' "$T/lintian.out" || [ $_rc -ne 0 ]; then
		fail "lintian ${1##*/} (status $_rc): $(cat "$T/lintian.out")"
	fi
}
lint "$changes"
lint "$T/spoold_$deb_version.dsc"
say "lintian: no error or warning on the binary packages and the source package"

# ---- contents ----
# has DEB PATH... - the package holds each PATH (dpkg-deb -c, ./ dropped)
has() {
	_deb=$1; shift
	dpkg-deb -c "$_deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T/contents"
	for _f in "$@"; do
		grep -qx "$_f" "$T/contents" || fail "${_deb##*/} lacks $_f: $(cat "$T/contents")"
	done
}
sdeb="$T/spoold_${deb_version}_$arch.deb"
edeb="$T/etrnclient_${deb_version}_$arch.deb"
has "$sdeb" /usr/sbin/spoold /usr/bin/spoolctl /usr/share/man/man8/spoold.8.gz \
    /usr/share/man/man8/spoolctl.8.gz /usr/share/man/man5/spoold.conf.5.gz \
    /etc/spoold/spoold.conf /etc/spoold/example.com.recipients /etc/spoold/example.info.recipients \
    /lib/systemd/system/spoold.service /usr/share/doc/spoold/copyright
grep -q etrnclient "$T/contents" && fail "the spoold package holds etrnclient's files: $(grep etrnclient "$T/contents")"
has "$edeb" /usr/sbin/etrnclient /usr/share/man/man8/etrnclient.8.gz \
    /usr/share/man/man5/etrnclient.conf.5.gz /etc/etrnclient/etrnclient.conf \
    /lib/systemd/system/etrnclient.service /usr/share/doc/etrnclient/copyright
grep -E -q 'spoold($|[/.])|spoolctl' "$T/contents" &&
	fail "the etrnclient package holds spoold's files: $(grep -E 'spoold($|[/.])|spoolctl' "$T/contents")"

for p in spoold etrnclient; do
	mkdir -p "$T/ctrl-$p" "$T/x-$p"
	dpkg-deb -e "$T/${p}_${deb_version}_$arch.deb" "$T/ctrl-$p"
	dpkg-deb -x "$T/${p}_${deb_version}_$arch.deb" "$T/x-$p"
	[ "$(dpkg-deb -f "$T/${p}_${deb_version}_$arch.deb" Section)" = mail ] || fail "$p: Section is not mail"
done
printf '/etc/spoold/example.com.recipients\n/etc/spoold/example.info.recipients\n/etc/spoold/spoold.conf\n' \
    >"$T/want-conffiles"
sort "$T/ctrl-spoold/conffiles" | cmp -s - "$T/want-conffiles" ||
	fail "spoold's conffiles: $(cat "$T/ctrl-spoold/conffiles")"
[ "$(cat "$T/ctrl-etrnclient/conffiles")" = /etc/etrnclient/etrnclient.conf ] ||
	fail "etrnclient's conffiles: $(cat "$T/ctrl-etrnclient/conffiles")"
dpkg-deb -f "$sdeb" Depends | grep -q 'adduser' || fail "spoold does not depend on adduser, which its postinst runs"
for p in spoold etrnclient; do
	dpkg-deb -f "$T/${p}_${deb_version}_$arch.deb" Depends | grep -q 'procps' ||
		fail "$p does not depend on procps, whose /bin/kill its unit's ExecReload= runs"
done
say "contents: programs, manual pages, units and configurations in each package; /etc files are conffiles"

# the units name the packaged programs and configurations, sandbox included
grep -qx 'ExecStart=/usr/sbin/spoold -F -c /etc/spoold/spoold.conf' "$T/x-spoold/lib/systemd/system/spoold.service" ||
	fail "the packaged spoold.service: $(grep Exec "$T/x-spoold/lib/systemd/system/spoold.service")"
grep -qx 'ExecStart=/usr/sbin/etrnclient -c /etc/etrnclient/etrnclient.conf -f' \
    "$T/x-etrnclient/lib/systemd/system/etrnclient.service" ||
	fail "the packaged etrnclient.service: $(grep Exec "$T/x-etrnclient/lib/systemd/system/etrnclient.service")"
grep -qx 'ProtectSystem=strict' "$T/x-spoold/lib/systemd/system/spoold.service" || fail "the packaged spoold.service is not sandboxed"
# the configuration agrees with the postinst: user spoold, datadir /var/lib/spoold
conf="$T/x-spoold/etc/spoold/spoold.conf"
grep -Eq '^user +spoold( |$)' "$conf" || fail "the packaged spoold.conf does not run spoold as user spoold"
grep -Eq '^datadir +/var/lib/spoold( |$)' "$conf" || fail "the packaged spoold.conf's datadir is not /var/lib/spoold"
grep -Eq '^ReadWritePaths=/var/lib/spoold$' "$T/x-spoold/lib/systemd/system/spoold.service" ||
	fail "the packaged unit does not let spoold write /var/lib/spoold"
# -n as on an installed system, where the postinst made the user (here:
# nobody, unless this machine has a spoold user)
id spoold >/dev/null 2>&1 || sed -i 's/^user .*/user nobody/' "$conf"
"$T/x-spoold/usr/sbin/spoold" -n -c "$conf" >"$T/n.out" 2>&1 ||
	fail "the packaged spoold -n on the packaged spoold.conf: $(cat "$T/n.out")"
# etrnclient's sample names a password file the postmaster writes
econf="$T/x-etrnclient/etc/etrnclient/etrnclient.conf"
"$T/x-etrnclient/usr/sbin/etrnclient" -n -c "$econf" >"$T/n.out" 2>&1 && fail "etrnclient -n passed without its password file"
grep -q "password-file .*/secret: No such file" "$T/n.out" || fail "etrnclient -n on the packaged sample: $(cat "$T/n.out")"
(umask 077 && echo pw >"$T/x-etrnclient/etc/etrnclient/secret")
"$T/x-etrnclient/usr/sbin/etrnclient" -n -c "$econf" >"$T/n.out" 2>&1 ||
	fail "the packaged etrnclient -n, password file written: $(cat "$T/n.out")"
say "the packaged units name /usr/sbin and /etc; spoold.conf says user spoold, datadir /var/lib/spoold and passes spoold -n; etrnclient.conf passes -n once its password file is there"

# ---- maintainer scripts ----
for p in spoold etrnclient; do
	for s in preinst postinst prerm postrm; do
		[ -f "$T/ctrl-$p/$s" ] || continue
		sh -n "$T/ctrl-$p/$s" || fail "$p $s: syntax error"
	done
done
# stand-ins on PATH that log their arguments; deb-systemd-helper answers as
# on a machine where the package was never installed (was-enabled: no)
mkdir -p "$T/stubs"
for c in adduser install deb-systemd-helper deb-systemd-invoke systemctl; do
	cat >"$T/stubs/$c" <<EOF
#!/bin/sh
echo "$c \$*" >>"$T/calls"
[ "$c \${1:-}" != "deb-systemd-helper was-enabled" ] && [ "$c \${2:-}" != "deb-systemd-helper was-enabled" ]
EOF
	chmod 755 "$T/stubs/$c"
done
for p in spoold etrnclient; do
	: >"$T/calls"
	PATH="$T/stubs:$PATH" sh -e "$T/ctrl-$p/postinst" configure >"$T/postinst.out" 2>&1 ||
		fail "$p postinst configure (fresh install) failed: $(cat "$T/postinst.out")"
	grep -E 'deb-systemd-helper (enable|--quiet enable)|deb-systemd-invoke|systemctl.*(start|enable)' "$T/calls" &&
		fail "$p postinst, fresh install, enables or starts a service: $(cat "$T/calls")"
	cp "$T/calls" "$T/calls-$p"
done
grep -qx 'adduser --system --group --quiet --home /var/lib/spoold --no-create-home spoold' "$T/calls-spoold" ||
	fail "spoold's postinst does not add the system user spoold: $(cat "$T/calls-spoold")"
if [ ! -e /var/lib/spoold ]; then
	grep -qx 'install -d -o spoold -g spoold -m 0750 /var/lib/spoold' "$T/calls-spoold" ||
		fail "spoold's postinst does not make /var/lib/spoold (spoold, 0750): $(cat "$T/calls-spoold")"
fi
grep -q adduser "$T/calls-etrnclient" && fail "etrnclient's postinst adds a user"
# the same scripts, only through their text: nothing starts or enables a unit
# but the try-restart of an upgrade (postinst configure OLD-VERSION)
for p in spoold etrnclient; do
	grep -E 'deb-systemd-invoke +(start|restart|reload)|systemctl +(start|enable|restart)' "$T/ctrl-$p/postinst" &&
		fail "$p postinst starts a unit"
	grep -q "deb-systemd-invoke try-restart '$p.service'" "$T/ctrl-$p/postinst" ||
		fail "$p postinst does not restart a running $p at an upgrade"
	grep -q "deb-systemd-invoke stop $p.service" "$T/ctrl-$p/prerm" || fail "$p prerm does not stop $p at removal"
done
say "maintainer scripts: spoold's postinst adds the user spoold and /var/lib/spoold (0750); neither enables or starts its unit; an upgrade try-restarts, a removal stops"
