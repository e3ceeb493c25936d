#!/bin/sh
# t28-manpages.sh - the manual pages: clean under mandoc -T lint, and
# spoold.conf(5) complete: every directive the parser knows (the keyword
# tables of spoold/spoold_conf.c) has an entry.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need mandoc

for page in spoold/spoold.8 spoold/spoold.conf.5 spoold/spoolctl.8 \
    etrnclient/etrnclient.8 etrnclient/etrnclient.conf.5; do
	[ -f "$top_srcdir/$page" ] || fail "$page is missing"
	mandoc -T lint "$top_srcdir/$page" >"$T/lint.out" 2>&1 ||
		fail "mandoc -T lint $page: $(cat "$T/lint.out")"
done
say "spoold(8), spoold.conf(5), spoolctl(8), etrnclient(8), etrnclient.conf(5): clean under mandoc -T lint"

sed -n 's/^[[:space:]]*KW[A-Z]*("\([a-z][a-z-]*\)",.*/\1/p' "$top_srcdir/spoold/spoold_conf.c" | sort -u >"$T/directives"
[ "$(wc -l <"$T/directives")" -ge 40 ] || fail "could not read the directive tables: $(cat "$T/directives")"
# the entries' first words, as mandoc renders them (no fonts)
mandoc -T ascii -O width=200 "$top_srcdir/spoold/spoold.conf.5" | sed "s/.\x08//g" >"$T/page"
missing=""
while read -r d; do
	grep -Eq "^ {7}$d( |$)|, $d( |$)" "$T/page" || missing="$missing $d"
done <"$T/directives"
[ -z "$missing" ] || fail "spoold.conf(5) has no entry for:$missing"
say "spoold.conf(5) has an entry for each of the parser's $(wc -l <"$T/directives") directives"
