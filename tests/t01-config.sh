#!/bin/sh
# t01-config.sh - spoold -n: a good configuration passes, a table of bad ones
# fails with FILE:LINE: messages (all errors at once), shipped examples pass.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# check_ok CONF - spoold -n CONF prints "configuration OK" and exits 0
check_ok() {
	_rc=0
	_out=$("$SPOOLD" -c "$1" -n 2>&1) || _rc=$?
	[ $_rc -eq 0 ] || fail "spoold -n $1: exit $_rc, expected 0:
$_out"
	printf '%s\n' "$_out" | grep -q -x 'configuration OK' ||
		fail "spoold -n $1: no \"configuration OK\" line:
$_out"
}

# bad NAME "LINE: TEXT"... - the configuration on stdin, saved as $T/NAME.conf,
# fails spoold -n with exit 1 and prints every "FILE:LINE: TEXT" given
# (a lone ": TEXT" stands for a message about the file with no line).
# A case that goes wrong is counted in $failed, so the whole table is run.
failed=0
bad() {
	_name=$1
	shift
	_f="$T/$_name.conf"
	cat >"$_f"
	_rc=0
	_out=$("$SPOOLD" -c "$_f" -n 2>&1) || _rc=$?
	_why=
	if [ $_rc -ne 1 ]; then
		_why="spoold -n exited $_rc, expected 1"
	elif printf '%s\n' "$_out" | grep -q 'configuration OK'; then
		_why="it says configuration OK"
	elif [ -z "$_out" ]; then
		_why="exit 1 but no message"
	elif printf '%s\n' "$_out" | grep -v -E -q "^$T/[^: ]+(:[0-9]+)?: "; then
		# every line names a file (and usually a line) first
		_why="a message is not \"FILE:LINE: message\""
	fi
	for _want in "$@"; do
		[ -z "$_why" ] || break
		printf '%s\n' "$_out" | grep -F -q -- "$_f$_want" || _why="no message \"$_f$_want\""
	done
	if [ -n "$_why" ]; then
		printf '%s: FAIL: bad config %s: %s; spoold -n printed:\n%s\n' "$TEST_NAME" "$_name" \
		    "$_why" "$_out" >&2
		failed=$((failed + 1))
		return 0
	fi
	say "bad config $_name: refused as expected"
}

# ---- a good configuration ----
write_conf
check_ok "$SPOOLD_CONF"
say "default configuration: configuration OK"

# every directive spoold documents, with units
cat >"$T/full.conf" <<EOF
# a comment
hostname mx.test
listen smtp 127.0.0.1:0 127.0.0.1:0
datadir $T/spool
max-message-size 10M
max-recipients 100
max-connections 50 5
max-connections-per-ip 4
max-spool-size 64M
timeout idle 5m
timeout data 10m
timeout tls 30s
domain example.test {
    recipients any
    mode hold
    etrn-from 127.0.0.1 10.0.0.0/8 ::1
    max-age 5d
    retry 15m
    quota 1G 1000
}
domain other.test {
    recipients $T/rcpts
}
EOF
check_ok "$T/full.conf"
say "configuration with every directive: configuration OK"

# a warning names FILE:LINE: warning: and does not fail the check (spoold -n
# prints it through the logger, with a timestamp before it)
cat >"$T/warn.conf" <<EOF
hostname mx.test
listen smtp 127.0.0.1:0
datadir $T/spool
domain backup.test {
    mode backup
    recipients any
}
EOF
check_ok "$T/warn.conf"
"$SPOOLD" -c "$T/warn.conf" -n 2>&1 | grep -q -E "$T/warn.conf:[0-9]+: warning: .*backup" ||
	fail "backup MX with recipients any: no FILE:LINE: warning"
say "warning for backup + recipients any, still OK"

# ---- the table of bad configurations ----
head='hostname mx.test
listen smtp 127.0.0.1:0'

bad unknown-directive ':3: unknown directive "frobnicate"' <<EOF
$head
frobnicate yes
datadir $T/spool
EOF

bad unknown-in-block ':6: unknown directive "colour"' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
    colour blue
}
EOF

bad bad-size ':4: max-message-size: bad size "10Q"' <<EOF
$head
datadir $T/spool
max-message-size 10Q
EOF

bad bad-size-negative ':4: max-message-size: bad size "-1"' <<EOF
$head
datadir $T/spool
max-message-size -1
EOF

bad bad-cidr-prefix ':6: etrn-from: "10.0.0.0/33"' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
    etrn-from 10.0.0.0/33
}
EOF

bad bad-cidr-hostbits ':6: etrn-from: "192.168.1.1/24"' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
    etrn-from 192.168.1.1/24
}
EOF

bad bad-cidr-garbage ':6: etrn-from: "10.0.0.300"' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
    etrn-from 10.0.0.300
}
EOF

bad missing-brace ':4: block opened here is not closed' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
EOF

bad stray-brace ':4: "}" without an open block' <<EOF
$head
datadir $T/spool
}
EOF

bad bad-listen ':2: listen: "127.0.0.1"' <<EOF
hostname mx.test
listen smtp 127.0.0.1
datadir $T/spool
EOF

bad bad-proxy-from ':2: listen: proxy-protocol-from: "10.0.0.1/8"' <<EOF
hostname mx.test
listen smtp 127.0.0.1:0 proxy-protocol-from 10.0.0.1/8
datadir $T/spool
EOF

bad empty-proxy-from ':2: listen: proxy-protocol-from needs at least one' <<EOF
hostname mx.test
listen smtp 127.0.0.1:0 proxy-protocol-from
datadir $T/spool
EOF

bad proxy-from-no-address ':2: listen smtp: no ADDRESS:PORT before proxy-protocol-from' <<EOF
hostname mx.test
listen smtp proxy-protocol-from 10.0.0.0/8
datadir $T/spool
EOF

bad bad-xclient-from ':4: xclient-from: "127.0.0.300"' <<EOF
$head
datadir $T/spool
xclient-from 10.0.0.0/8 127.0.0.300
EOF

bad bad-duration ':4: timeout idle: bad duration "forever"' <<EOF
$head
datadir $T/spool
timeout idle forever
EOF

bad twice ':4: "datadir" given twice' <<EOF
$head
datadir $T/spool
datadir $T/spool2
EOF

bad no-recipients ':5: domain a.test: say which recipients' <<EOF
$head
datadir $T/spool
domain a.test {
}
EOF

bad duplicate-domain ':7: domain a.test is already defined at line 4' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
}
domain A.TEST {
    recipients any
}
EOF

bad queue-unknown-domain ':7: queue sites: b.test is not a configured domain' ':8: queue sites is already defined at line 7' ':9: queue: "a/b" is not a queue name' <<EOF
$head
datadir $T/spool
domain a.test {
    recipients any
}
queue sites a.test b.test
queue Sites a.test
queue a/b a.test
EOF

bad missing-required ': "hostname" is required' ': "datadir" is required' <<EOF
listen smtp 127.0.0.1:0
EOF

# certificate files are checked too, and reported at the directive's line
bad missing-tls-cert ':4: ' <<EOF
$head
datadir $T/spool
tls-cert $T/no-such-cert.pem
tls-key $T/no-such-key.pem
EOF

echo "not a certificate" >"$T/garbage.pem"
bad garbage-tls-cert ':4: ' <<EOF
$head
datadir $T/spool
tls-cert $T/garbage.pem
tls-key $T/garbage.pem
EOF

# the CA file for tls verify is read at start-up (as root) when a domain needs it
bad garbage-tls-ca ": tls-ca $T/garbage.pem: " <<EOF
$head
datadir $T/spool
tls-ca $T/garbage.pem
domain a.test {
    recipients any
    tls verify
}
EOF

bad cert-without-key ': tls-cert and tls-key go together' <<EOF
$head
datadir $T/spool
tls-cert $T/garbage.pem
EOF

# a bad recipients file is reported at its own FILE:LINE
printf 'good@other.test\nnot an address\n' >"$T/badrcpts"
_rc=0
_out=$(printf '%s\ndatadir %s\ndomain other.test {\n recipients %s\n}\n' \
    "$head" "$T/spool" "$T/badrcpts" >"$T/badrcpts.conf"; "$SPOOLD" -c "$T/badrcpts.conf" -n 2>&1) ||
	_rc=$?
[ $_rc -eq 1 ] || fail "bad recipients file: exit $_rc, expected 1: $_out"
printf '%s\n' "$_out" | grep -F -q "$T/badrcpts:2:" ||
	fail "bad recipients file: no \"$T/badrcpts:2:\" message: $_out"
say "bad config bad-recipients-file: refused as expected"

# several errors at once: every one is printed, in line order
bad several-errors \
    ':2: unknown directive "foo"' \
    ':4: max-message-size: bad size "10Q"' \
    ':8: etrn-from: "10.0.0.1/33"' \
    ':9: mode: "relay" is not hold or backup' \
    ':11: timeout idle: bad duration "forever"' \
    ':12: max-recipients: "0" is not a number from 1 to 65535' <<EOF
hostname mx.test
foo bar
listen smtp 127.0.0.1:0
max-message-size 10Q
datadir $T/spool
domain a.test {
    recipients any
    etrn-from 10.0.0.1/33
    mode relay
}
timeout idle forever
max-recipients 0
EOF
n=$("$SPOOLD" -c "$T/several-errors.conf" -n 2>&1 | grep -c "^$T/several-errors.conf:[0-9]*: " || true)
[ "$n" -eq 6 ] || fail "several errors: $n FILE:LINE messages, expected 6"

# a file that is not there
_rc=0
_out=$("$SPOOLD" -c "$T/no-such.conf" -n 2>&1) || _rc=$?
[ $_rc -eq 1 ] || fail "missing config file: exit $_rc, expected 1"
printf '%s\n' "$_out" | grep -F -q "$T/no-such.conf: " || fail "missing config file: no FILE: message: $_out"
say "missing config file: refused"

# ---- the shipped examples ----
found=0
for ex in "$top_srcdir"/contrib/spoold*.conf.example; do
	[ -f "$ex" ] || continue
	grep -q '^[[:space:]]*hostname' "$ex" || continue
	found=$((found + 1))
	# "user spoold" is the package's user, which may not exist here (spoold
	# -n checks it): nobody instead; its recipient lists beside it
	sed 's/^user .*/user nobody/' "$ex" >"$T/example.conf"
	cp "$top_srcdir"/contrib/*.recipients "$T/"
	_rc=0
	_out=$(cd "$T" && "$SPOOLD" -c "$T/example.conf" -n 2>&1) || _rc=$?
	if [ $_rc -ne 0 ]; then
		if ! printf '%s\n' "$_out" | grep -v -q -E 'No such file or directory|Permission denied'; then
			say "NOTE: $ex names files not present here, not checked: $_out"
			continue
		fi
		fail "shipped example $ex does not pass spoold -n:
$_out"
	fi
	say "shipped example $(basename "$ex"): configuration OK"
done
[ $found -gt 0 ] || say "NOTE: no contrib/spoold*.conf.example to check"

[ $failed -eq 0 ] || fail "$failed bad configuration cases were not refused as expected (see above)"
exit 0
