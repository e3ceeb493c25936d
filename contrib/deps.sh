#!/bin/sh
# deps.sh - install what spoold needs from Debian's archive, only when missing.
#   deps.sh build   compiler, autotools and the libraries
#   deps.sh demo    the above, plus swaks for the README's first steps
#   deps.sh test    the above, plus Check and the real peers the tests drive
#
# Every package a test or the README uses is named here, helpers that other
# packages only recommend included: contrib/fresh-check.sh proves it on a
# brand-new Debian 12 root, where nothing was installed by hand.
set -eu

BUILD="build-essential autoconf automake pkg-config libev-dev libgnutls28-dev libsasl2-dev libsasl2-modules libsasl2-modules-db liblmdb-dev libc-ares-dev libpq-dev"
DEMO="swaks"
# swaks only recommends its TLS (Net::SSLeay, IO::Socket::SSL) and SASL
# (Authen::SASL) helpers, and --no-install-recommends leaves them out.
# systemd is there for systemd-analyze (t31), not to run: a fresh root has
# no init; procps has the units' /bin/kill (ExecReload=).  debhelper and
# lintian build and check the Debian packages (t30; dpkg-dev comes with
# build-essential, and as root no fakeroot is needed).
# prometheus has promtool (t33); mount (t36; t41 binds a resolv.conf for
# Postfix alone, with util-linux's unshare) is not in a minimal root;
# haproxy is the load balancer in front of spoold (t37); postgresql and
# libsasl2-modules-sql are t39's slow SASL back end (Cyrus's sql auxprop
# against a private PostgreSQL); slapd, ldap-utils and libsasl2-modules-ldap
# are t43's: Cyrus's ldapdb auxprop against a private OpenLDAP.
TEST="check lmdb-utils haproxy swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl gnutls-bin python3 postfix clang libclang-rt-14-dev fiu-utils fetchmail dnsmasq-base sasl2-bin faketime python3-milter rspamd clamav-daemon clamav-milter pflogsumm mandoc systemd procps debhelper lintian prometheus mount postgresql libsasl2-modules-sql slapd ldap-utils libsasl2-modules-ldap"

case "${1:-build}" in
build) want=$BUILD ;;
demo) want="$BUILD $DEMO" ;;
test) want="$BUILD $TEST" ;;
*) echo "usage: deps.sh build|demo|test" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root, or apt-get install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
# Postfix is wanted only for smtp-source/smtp-sink and private test
# instances: no system-wide mail configuration.
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
# slapd is wanted only for t43's private instance: no system directory.
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt or dpkg run (unattended-upgrades, a parallel job)
# instead of failing at once on its lock.
lock="-o DPkg::Lock::Timeout=600"
apt-get $lock update -qq
apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null
