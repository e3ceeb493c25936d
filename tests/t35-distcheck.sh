#!/bin/sh
# t35-distcheck.sh - the release tarball is whole: `make distcheck` on a
# copy of the tree (its own configure, a read-only source directory, a
# build, a few tests, install, uninstall, distclean), then `make fuzz`
# from the unpacked tarball builds every libFuzzer target.  The tests run
# inside distcheck are a handful (the whole suite runs elsewhere); what is
# checked here is that the tarball has what they need.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need make autoreconf tar clang

# The check inside distcheck must run the TESTS given below, never this
# test again: under `make check TESTS=...` the outer make's variables ride
# in MAKEFLAGS and win over the command line of a make started from here.
[ -z "${SPOOLD_IN_DISTCHECK:-}" ] || skip "inside distcheck itself"
unset MAKEFLAGS MFLAGS MAKELEVEL
export SPOOLD_IN_DISTCHECK=1

# a copy, so this test never touches the tree the other tests run from
mkdir "$T/src"
(cd "$top_srcdir" && tar --exclude=.git -cf - .) | (cd "$T/src" && tar -xf -)
cd "$T/src"
if [ -f Makefile ]; then
	make -s distclean >"$T/distclean.log" 2>&1 || fail "make distclean in the copy: $(tail -5 "$T/distclean.log")"
fi
[ -x configure ] || autoreconf -fi >"$T/autoreconf.log" 2>&1 || fail "autoreconf: $(tail -5 "$T/autoreconf.log")"
./configure -q >"$T/configure.log" 2>&1 || fail "configure: $(tail -5 "$T/configure.log")"
# TESTS is passed down to the check inside distcheck
make -j2 distcheck TESTS="tests/unit/test_conf tests/unit/test_smtp_cmd tests/t01-config.sh tests/t28-manpages.sh" \
    >"$T/distcheck.log" 2>&1 || fail "make distcheck: $(grep -E 'error|FAIL|ERROR|missing|No rule' "$T/distcheck.log" | head -20)"
tarball=$(ls spoold-*.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || fail "make distcheck left no tarball"
grep -q "archives ready for distribution" "$T/distcheck.log" || fail "distcheck did not say the archive is ready"
say "make distcheck: $tarball builds from a read-only source tree, its tests pass, it installs, uninstalls and cleans"

mkdir "$T/fuzz" && tar -xzf "$tarball" -C "$T/fuzz"
cd "$T/fuzz"/spoold-*
./configure -q >"$T/fuzz-configure.log" 2>&1 || fail "configure from the tarball: $(tail -5 "$T/fuzz-configure.log")"
make -j2 fuzz >"$T/fuzz.log" 2>&1 || fail "make fuzz from the tarball: $(grep -E 'error|No rule' "$T/fuzz.log" | head -10)"
n=$(ls tests/fuzz/fuzz_* | grep -v '\.c$' | wc -l)
[ "$n" -ge 5 ] || fail "make fuzz built $n targets"
say "make fuzz from the unpacked tarball: $n libFuzzer targets built"
