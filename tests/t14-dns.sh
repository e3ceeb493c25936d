#!/bin/sh
# t14-dns.sh - the resolver (shared/dns.c), driven by tests/dns_lookup
# against a private dnsmasq: MX records with their preferences, addresses
# with the port, NXDOMAIN and NODATA told apart, bad names refused without a
# query, dead servers reported as TEMPFAIL in seconds (not minutes), and no
# callback after dns_cancel() or dns_free().
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || fail "dnsmasq is not installed (contrib/deps.sh test installs dnsmasq-base)"
LOOKUP="$top_builddir/tests/dns_lookup"
[ -x "$LOOKUP" ] || error "$LOOKUP is not built (make check builds it)"

# free_udp_port [ADDR] - a UDP port nobody is bound to on ADDR (127.0.0.1)
free_udp_port() {
	python3 -c 'import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a, 0)); print(s.getsockname()[1])' "${1:-127.0.0.1}"
}

# lookup ARG... - run dns_lookup; its output in $T/out, its exit status in
# LK_RC, its run time in LK_SECS
lookup() {
	_t0=$(date +%s.%N)
	LK_RC=0
	"$LOOKUP" "$@" >"$T/out" 2>&1 || LK_RC=$?
	LK_SECS=$(echo "$_t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	if grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/out"; then
		fail "sanitizer report from dns_lookup $*:
$(cat "$T/out")"
	fi
	# the driver's own checks: a callback from inside dns_mx()/dns_addr(),
	# or one after dns_cancel()/dns_free()
	if [ "$LK_RC" = 3 ]; then
		fail "dns_lookup $*: $(cat "$T/out")"
	fi
}

# expect REGEX WHAT - a line of the last lookup's output matches REGEX
expect() {
	grep -E -q "$1" "$T/out" || fail "$2: no /$1/ in the output of dns_lookup:
$(cat "$T/out")"
}

# expect_rc N WHAT - the last lookup exited with N
expect_rc() {
	[ "$LK_RC" = "$1" ] || fail "$2: dns_lookup exited with $LK_RC, expected $1:
$(cat "$T/out")"
}

# within SECS WHAT - the last lookup took less than SECS seconds
within() {
	awk -v t="$LK_SECS" -v max="$1" 'BEGIN { exit !(t < max) }' ||
		fail "$2: took $LK_SECS s, expected under $1 s"
}

# start_dnsmasq - dnsmasq with the test's zone on 127.0.0.1 (and ::1 when
# the host has IPv6), port in DNS_PORT; ready when it answers
start_dnsmasq() {
	_listen=127.0.0.1
	DNS_PORT=$(free_udp_port)
	if free_udp_port ::1 >/dev/null 2>&1; then
		_listen=127.0.0.1,::1
		HAVE_V6=1
	fi
	# many.test: 30 MX records, too many for a 512-byte UDP answer
	_many=""
	for _n in $(seq 1 30); do
		_many="$_many --mx-host=many.test,mx$_n.a-long-label-to-fill-the-packet.many.test,$_n"
	done
	# --local=/test/: every other name in .test is NXDOMAIN, no upstream
	# shellcheck disable=SC2086
	"$DNSMASQ" --no-daemon --conf-file=/dev/null --pid-file --no-resolv --no-hosts \
	    --port="$DNS_PORT" --listen-address="$_listen" --bind-interfaces \
	    --log-queries --log-facility=- --local=/test/ \
	    --mx-host=two.test,mx1.two.test,10 --mx-host=two.test,mx2.two.test,20 \
	    --mx-host=one.test,mx1.two.test,5 \
	    --host-record=mx1.two.test,127.0.0.2 --host-record=mx2.two.test,127.0.0.3 \
	    --host-record=both.test,127.0.0.4,::1 --host-record=v6only.test,::1 \
	    --address=/wild.test/127.0.0.9 $_many \
	    >"$T/dnsmasq.log" 2>&1 &
	echo $! >"$T/dnsmasq.pid"
	_i=0
	until "$LOOKUP" -s "127.0.0.1:$DNS_PORT" addr mx1.two.test >/dev/null 2>&1; do
		alive "$(cat "$T/dnsmasq.pid")" || error "dnsmasq exited (port $DNS_PORT taken?)"
		_i=$((_i + 1))
		[ $_i -le 100 ] || error "dnsmasq did not answer within 5 s"
		sleep 0.05
	done
}

start_dnsmasq
S="127.0.0.1:$DNS_PORT"

# ---- MX ----
lookup -s "$S" mx two.test
expect_rc 0 "MX of two.test"
expect '^mx 10 mx1\.two\.test$' "MX of two.test: the preference-10 record"
expect '^mx 20 mx2\.two\.test$' "MX of two.test: the preference-20 record"
expect '^status OK$' "MX of two.test"
[ "$(grep -c '^mx ' "$T/out")" = 2 ] || fail "MX of two.test: not exactly two records:
$(cat "$T/out")"
lookup -s "$S" mx ONE.Test.
expect_rc 0 "MX of ONE.Test. (case, trailing dot)"
expect '^mx 5 mx1\.two\.test$' "MX of ONE.Test."
lookup -s "$S" mx nope.test
expect_rc 1 "MX of a name that does not exist"
expect '^status NXDOMAIN' "MX of a name that does not exist"
lookup -s "$S" mx mx1.two.test
expect '^status NODATA' "MX of a name that has only an address"
say "MX: both records with their preferences; NXDOMAIN and NODATA told apart"

lookup -s "$S" mx many.test
expect_rc 0 "MX of many.test"
expect '^mx 30 mx30\.a-long-label-to-fill-the-packet\.many\.test$' "MX of many.test: the last record"
[ "$(grep -c '^mx ' "$T/out")" = 30 ] || fail "MX of many.test: not 30 records:
$(cat "$T/out")"
# once over UDP (truncated), once more over TCP
[ "$(grep -c 'query\[MX\] many\.test from' "$T/dnsmasq.log")" = 2 ] ||
	fail "MX of many.test: not asked twice (UDP, then TCP):
$(grep 'many\.test' "$T/dnsmasq.log")"
say "a truncated answer is asked again over TCP: all 30 records"

# ---- addresses ----
lookup -s "$S" addr mx1.two.test 2525
expect_rc 0 "address of mx1.two.test"
expect '^addr 127\.0\.0\.2 2525$' "address of mx1.two.test, with the port"
expect '^status OK$' "address of mx1.two.test"
[ "$(grep -c '^addr ' "$T/out")" = 1 ] || fail "mx1.two.test: one address expected:
$(cat "$T/out")"
lookup -s "$S" addr both.test
expect '^addr 127\.0\.0\.4 25$' "IPv4 address of both.test"
expect '^addr ::1 25$' "IPv6 address of both.test"
lookup -s "$S" addr v6only.test 587
expect '^addr ::1 587$' "an IPv6-only host"
lookup -s "$S" addr x.y.wild.test
expect '^addr 127\.0\.0\.9 25$' "a name under a --address domain"
lookup -s "$S" addr nope.test
expect_rc 1 "address of a name that does not exist"
expect '^status NXDOMAIN' "address of a name that does not exist"
lookup -s "$S" addr two.test
expect '^status NODATA' "address of a name that has only MX records"
lookup -s "$S" addr 127.0.0.1 26
expect_rc 0 "an IPv4 literal"
expect '^addr 127\.0\.0\.1 26$' "an IPv4 literal comes back as is"
grep -q '127\.0\.0\.1 from' "$T/dnsmasq.log" && fail "an IPv4 literal was sent to the server"
say "addresses: A and AAAA with the port; NXDOMAIN, NODATA; a literal"

# ---- names refused before any query ----
for name in 'bad..name' '-dash.test' 'sp ace.test' '::1' 'caf\303\251.test'; do
	name=$(printf '%b' "$name")
	lookup -s "$S" -- mx "$name"
	expect '^status BADNAME' "MX of \"$name\""
	lookup -s "$S" -- addr "$name"
	expect '^status BADNAME' "address of \"$name\""
done
grep -q 'dash\|bad\.\.name\|sp ace' "$T/dnsmasq.log" && fail "a bad name reached the server:
$(cat "$T/dnsmasq.log")"
say "bad names: BADNAME, and no query sent"

# ---- servers ----
if [ -n "${HAVE_V6:-}" ]; then
	lookup -s "[::1]:$DNS_PORT" mx two.test
	expect '^mx 10 mx1\.two\.test$' "MX over IPv6 ([::1]:port)"
	say "a server given as [::1]:port"
fi
for bad in '' '127.0.0.1:99999' '127.0.0.1:' 'nonsense' '[::1]' "127.0.0.1:$DNS_PORT,,"; do
	lookup -s "$bad" mx two.test
	expect_rc 2 "server list \"$bad\""
	expect '^error: .*DNS server' "server list \"$bad\""
done
say "bad server lists are refused by dns_new"

# nobody on the port: the ICMP error makes it quick
DEAD_PORT=$(free_udp_port)
lookup -s "127.0.0.1:$DEAD_PORT" mx two.test
expect_rc 1 "a port nobody listens on"
expect '^status TEMPFAIL: ' "a port nobody listens on"
within 5 "a port nobody listens on"
say "a port nobody listens on: TEMPFAIL in $LK_SECS s"

# a server that never answers: c-ares's 3 s, then 6 s
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)' "$T/silent.port" &
echo $! >"$T/silent.pid"
_i=0
until [ -s "$T/silent.port" ]; do _i=$((_i + 1)); [ $_i -le 100 ] || error "silent server"; sleep 0.05; done
SILENT="127.0.0.1:$(cat "$T/silent.port")"
lookup -s "$SILENT" addr mx1.two.test
expect_rc 1 "a server that does not answer"
expect '^status TEMPFAIL: ' "a server that does not answer"
within 12 "a server that does not answer"
say "a server that does not answer: TEMPFAIL in $LK_SECS s"
lookup -s "$SILENT,$S" mx two.test
expect_rc 0 "a silent first server, a good second one"
expect '^mx 10 mx1\.two\.test$' "the second server's answer"
within 6 "a silent first server"
say "a silent first server: the second answers, in $LK_SECS s"

# ---- no callback after dns_cancel() / dns_free() ----
for args in "mx two.test" "addr mx1.two.test" "addr 127.0.0.1" "mx bad..name"; do
	for opt in -c -x; do
		# shellcheck disable=SC2086
		lookup -s "$S" $opt $args
		expect_rc 0 "dns_lookup $opt $args"
		expect '^no callback$' "dns_lookup $opt $args"
	done
	# shellcheck disable=SC2086
	lookup -s "$S" -F $args
	[ "$(grep -c '^status ' "$T/out")" = 1 ] || fail "freed in the first callback ($args): one result expected:
$(cat "$T/out")"
	grep -q '^error' "$T/out" && fail "dns_lookup -F $args: $(cat "$T/out")"
done
lookup -s "$SILENT" -x mx two.test
expect '^no callback$' "the resolver freed while its server is silent"
within 2 "the resolver freed while its server is silent"
say "no callback after dns_cancel() or dns_free(), nor after dns_free() in a callback"
