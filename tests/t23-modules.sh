#!/bin/sh
# t23-modules.sh - the module rules of ARCHITECTURE.md, checked on the
# objects just built (nm): spoold's modules form no dependency cycle; only
# the queue owner (queue.c), the committer and the composition root
# (spoold.c, which opens and closes it) call the spool; only the spool
# (spool.c, spool_read.c, spool_env.c) calls LMDB; shared/ never depends on spoold/ or
# etrnclient/.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need nm python3

# the daemon's objects; spoolctl and the tests' copies are other programs
objs=
for o in "$top_builddir"/spoold/*.o; do
	case $(basename "$o") in spoolctl.o|tests_*|fuzz_*) continue ;; esac
	objs="$objs $o"
done
[ -n "$objs" ] || error "no objects under $top_builddir/spoold: build first"
python3 "$top_srcdir/contrib/modgraph.py" $objs >"$T/graph" 2>"$T/cycles" ||
	fail "spoold's modules have a dependency cycle: $(cat "$T/cycles")
$(cat "$T/graph")"
say "$(cat "$T/cycles")"

# the spool's functions (spool.c's, spool_read.c's), but spool_strerror (a
# table of texts)
nm -P "$top_builddir/spoold/spool.o" "$top_builddir/spoold/spool_read.o" |
	awk '$2 == "T" && $1 != "spool_strerror" { print $1 }' >"$T/spool.fns"
[ -s "$T/spool.fns" ] || error "no functions found in spool.o"
for o in $objs; do
	case $(basename "$o") in queue.o|committer.o|spool.o|spool_read.o) continue ;; esac
	used=$(nm -P -u "$o" | awk '{ print $1 }' | grep -Fx -f "$T/spool.fns" || true)
	[ "$(basename "$o")" = spoold.o ] && used=$(printf '%s\n' "$used" | grep -v -x -e spool_open -e spool_close || true)
	[ -z "$used" ] || fail "$(basename "$o" .o) calls the spool directly (only queue.c may): $used"
done
say "only queue.c and the committer call the spool (spoold.c opens and closes it)"

# LMDB itself only under the spool: the data model and the mechanics
for o in $objs; do
	case $(basename "$o") in spool.o|spool_read.o|spool_env.o) continue ;; esac
	used=$(nm -P -u "$o" | awk '$1 ~ /^mdb_/ { print $1 }')
	[ -z "$used" ] || fail "$(basename "$o" .o) calls LMDB (only spool.c, spool_read.c and spool_env.c may): $used"
done
say "only spool.c, spool_read.c and spool_env.c call LMDB"

# shared/ is below both daemons
nm -P "$top_builddir"/spoold/*.o "$top_builddir"/etrnclient/*.o 2>/dev/null |
	awk '$2 == "T" || $2 == "D" || $2 == "B" { print $1 }' | sort -u >"$T/upper.syms"
for o in "$top_builddir"/shared/*.o; do
	used=$(nm -P -u "$o" | awk '{ print $1 }' | grep -Fx -f "$T/upper.syms" || true)
	[ -z "$used" ] || fail "shared/$(basename "$o" .o) uses a daemon's symbol: $used"
done
say "shared/ uses nothing of spoold/ or etrnclient/"
