#!/bin/sh
# deps.sh - install what spoold needs from Debian's archive, only when missing.
#   deps.sh build   compiler, autotools and the libraries
#   deps.sh test    the above, plus Check and the real peers the tests drive
set -eu

BUILD="build-essential autoconf automake pkg-config libev-dev libgnutls28-dev libsasl2-dev libsasl2-modules libsasl2-modules-db liblmdb-dev libc-ares-dev"
TEST="check lmdb-utils swaks gnutls-bin python3 postfix clang libclang-rt-14-dev fiu-utils fetchmail dnsmasq-base sasl2-bin faketime"

want=$BUILD
[ "${1:-build}" = test ] && want="$BUILD $TEST"

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
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
