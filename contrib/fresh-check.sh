#!/bin/bash
# fresh-check.sh - run the README's two commands inside a brand-new Debian 12
# root, so that nothing installed by hand on this machine can make them pass.
#
#   contrib/fresh-check.sh          quickstart check, then contrib/run-tests.sh
#
# As root on Debian 12.  The root is made by mmdebstrap (--variant=apt: only
# the Essential packages and apt, from the host's Debian archive), cached as a
# tarball per day under $FRESH_CACHE (default /var/cache/spoold-fresh) and
# unpacked anew for every run.  The committed HEAD of this repository is cloned
# into it (uncommitted changes are not part of the check), with ../shared
# beside it when there is one.  Everything is unmounted and removed on every
# exit path.  The last line printed is the suite's own "N passed, N failed,
# N skipped".  Exit status: the suite's.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_CACHE:-/var/cache/spoold-fresh}
suite=bookworm

say() { printf 'fresh-check: %s\n' "$*"; }
die() { printf 'fresh-check: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, chroot and mount need it)"

# tarball - print the path of today's cached root, making it when missing
tarball() {
	local tb="$cache/$suite-apt-$(date -u +%Y%m%d).tar"
	if [ ! -s "$tb" ]; then
		command -v mmdebstrap >/dev/null ||
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
				install -y -qq --no-install-recommends mmdebstrap >/dev/null
		mkdir -p "$cache"
		rm -rf "$cache/$suite-apt-"*
		mmdebstrap --quiet --variant=apt --format=tar "$suite" "$tb.part" >&2 ||
			{ rm -rf "$tb.part"; die "mmdebstrap failed"; }
		mv "$tb.part" "$tb"
	fi
	echo "$tb"
}

root=
# cleanup - stop what still runs in the root, unmount it, remove it
cleanup() {
	local rc=$? pid
	set +e
	trap - EXIT INT TERM
	if [ -n "$root" ] && [ -d "$root" ]; then
		for pid in $(ls /proc | grep -E '^[0-9]+$'); do
			[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -KILL "$pid" 2>/dev/null
		done
		sleep 0.5
		for m in dev sys proc; do
			mountpoint -q "$root/$m" && umount -R "$root/$m" 2>/dev/null ||
				{ mountpoint -q "$root/$m" && umount -R -l "$root/$m"; }
		done
		# --one-file-system: never follows into a mount that is still there
		rm -rf --one-file-system "$root"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tb=$(tarball)
root=$(mktemp -d /var/tmp/spoold-fresh.XXXXXX)
say "unpacking $tb into $root"
tar -C "$root" -xf "$tb"
cp /etc/hosts /etc/hostname /etc/resolv.conf "$root/etc/"
# Daemons that packages would start at install (invoke-rc.d) stay down, as
# in any chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

mkdir -p "$root/work"
git clone -q "$here" "$root/work/main"
say "cloned $(git -C "$here" rev-parse --short HEAD) ($(git -C "$here" log -1 --format=%s | cut -c1-60))"
[ -d "$here/../shared" ] && cp -r "$here/../shared" "$root/work/shared"
say "the root has $(chroot "$root" dpkg-query -W -f='.\n' | wc -l) packages; none of the project's"

# in_root CMD - run CMD with a clean environment as root inside the root
in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI="${CI:-}" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		FUZZ_SECONDS="${FUZZ_SECONDS:-20}" /bin/bash -c "cd /work/main && $1"
}

say "== the README's first command: contrib/quickstart.sh, then a message to user@example.test"
in_root 'contrib/quickstart-check.sh'

say "== the README's test command: contrib/run-tests.sh"
set +e
in_root 'contrib/run-tests.sh' 2>&1 | tee "$root/run-tests.out"
rc=${PIPESTATUS[0]}
set -e
if ! tail -n 1 "$root/run-tests.out" | grep -qE '^[0-9]+ passed, [0-9]+ failed'; then
	say "run-tests.sh exited $rc without its closing line"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
say "run-tests.sh exited $rc, inside a fresh $suite root"
tail -n 1 "$root/run-tests.out"
exit "$rc"
