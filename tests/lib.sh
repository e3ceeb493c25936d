# lib.sh - sourced by every shell test: a temp dir per test, spoold started
# and stopped for real, automake's exit codes (0 pass, 1 fail, 77 skip,
# 99 hard error).  Each test begins with
#
#	. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
#
# and runs on its own (top_builddir=. top_srcdir=. bash tests/t02-smtp.sh) or
# under make check, which exports top_builddir and top_srcdir.
#
# Every daemon or helper started in the background leaves NAME.pid in $T; the
# EXIT trap stops them all, prints the logs and keeps $T when the test failed.

# The tests need bash ($RANDOM) and Linux (/proc); make check may
# start them with sh.
if [ -z "${BASH_VERSION:-}" ]; then
	command -v bash >/dev/null 2>&1 || { echo "$0: SKIP: bash is not installed" >&2; exit 77; }
	exec bash "$0" "$@"
fi

set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

TEST_NAME=$(basename "$0" .sh)
SPOOLD="$top_builddir/spoold/spoold"
SPOOLCTL="$top_builddir/spoold/spoolctl"
SMTPCHAT="$top_srcdir/tests/smtpchat.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/spoold-$TEST_NAME.XXXXXX") || { echo "$TEST_NAME: ERROR: mktemp -d failed" >&2; exit 99; }
SPOOLD_CONF="$T/spoold.conf"
SPOOLD_LOG="$T/spoold.log"
SMTP_PORT=

say() {
	printf '%s: %s\n' "$TEST_NAME" "$*"
}

fail() {
	printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

skip() {
	printf '%s: SKIP: %s\n' "$TEST_NAME" "$*" >&2
	exit 77
}

error() {
	printf '%s: ERROR: %s\n' "$TEST_NAME" "$*" >&2
	exit 99
}

# need CMD... - skip the test when a tool is missing
need() {
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || skip "$cmd is not installed"
	done
}

# alive PID - the process exists and is not a zombie waiting to be reaped
alive() {
	_st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$_st" ] && [ "$_st" != Z ]
}

# stop_pid PID - TERM, then KILL after 5 s; bounded
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	_i=0
	while alive "$1" && [ $_i -lt 100 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	return 0
}

cleanup() {
	_rc=$?
	set +e
	trap - EXIT
	for _pf in "$T"/*.pid; do
		[ -f "$_pf" ] || continue
		stop_pid "$(cat "$_pf")"
		rm -f "$_pf"
	done
	if [ $_rc -ne 0 ] && [ $_rc -ne 77 ]; then
		for _log in "$T"/*.log; do
			[ -f "$_log" ] || continue
			echo "---- $_log (last 150 lines) ----"
			tail -n 150 "$_log"
		done
		echo "---- $TEST_NAME: exit $_rc; test directory kept: $T"
	else
		rm -rf "$T"
	fi
	exit $_rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$SPOOLD" ] || error "$SPOOLD is not built (run make)"
[ -x "$SPOOLCTL" ] || error "$SPOOLCTL is not built (run make)"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

# write_conf [LINE...] - the default configuration into $SPOOLD_CONF, each
# LINE appended at the end (top level).  other.test and wild.test take their
# recipients from $T/rcpts.
write_conf() {
	cat >"$T/rcpts" <<EOF
# users of other.test
listed@other.test
Second@Other.Test
@wild.test
EOF
	cat >"$SPOOLD_CONF" <<EOF
hostname mx.test
listen smtp 127.0.0.1:0
datadir $T/spool
max-message-size 100K
max-recipients 5
timeout idle 30s
domain example.test {
    recipients any
}
domain other.test {
    recipients $T/rcpts
}
domain wild.test {
    recipients $T/rcpts
}
EOF
	for _line in "$@"; do
		printf '%s\n' "$_line" >>"$SPOOLD_CONF"
	done
}

# start_spoold [ARG...] - start spoold in the foreground on $SPOOLD_CONF, wait
# up to 10 s for its listen file, set SMTP_PORT and SPOOLD_PID
start_spoold() {
	rm -f "$T/listen"
	echo "==== spoold started $(date '+%T.%N')" >>"$SPOOLD_LOG"
	"$SPOOLD" -c "$SPOOLD_CONF" -f --listen-file "$T/listen" "$@" >>"$SPOOLD_LOG" 2>&1 &
	SPOOLD_PID=$!
	echo "$SPOOLD_PID" >"$T/spoold.pid"
	_i=0
	until [ -s "$T/listen" ]; do
		if ! alive "$SPOOLD_PID"; then
			_rc=0
			wait "$SPOOLD_PID" || _rc=$?
			rm -f "$T/spoold.pid"
			fail "spoold exited with status $_rc before it was listening"
		fi
		_i=$((_i + 1))
		[ $_i -le 200 ] || fail "spoold wrote no listen file ($T/listen) within 10 s"
		sleep 0.05
	done
	SMTP_PORT=$(sed -n 's/^smtp 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/listen" | head -n 1)
	[ -n "$SMTP_PORT" ] && [ "$SMTP_PORT" -gt 0 ] ||
		fail "listen file has no \"smtp 127.0.0.1:PORT\" line: $(cat "$T/listen")"
}

# check_sanitizers - an ASan/UBSan report in the log fails the test
check_sanitizers() {
	if grep -E -q 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$SPOOLD_LOG"; then
		fail "sanitizer report in $SPOOLD_LOG"
	fi
}

# stop_spoold - SIGTERM; it must exit with status 0 within 10 s
stop_spoold() {
	[ -f "$T/spoold.pid" ] || error "stop_spoold: spoold is not running"
	_pid=$(cat "$T/spoold.pid")
	kill -TERM "$_pid" || fail "spoold (pid $_pid) is gone before SIGTERM"
	_i=0
	while alive "$_pid"; do
		_i=$((_i + 1))
		[ $_i -le 200 ] || fail "spoold did not exit within 10 s of SIGTERM"
		sleep 0.05
	done
	_rc=0
	wait "$_pid" || _rc=$?
	rm -f "$T/spoold.pid"
	[ $_rc -eq 0 ] || fail "spoold exited with status $_rc after SIGTERM"
	check_sanitizers
}

# kill9_spoold - SIGKILL and reap, as a crash would
kill9_spoold() {
	_pid=$(cat "$T/spoold.pid")
	kill -KILL "$_pid" 2>/dev/null || true
	wait "$_pid" 2>/dev/null || true
	rm -f "$T/spoold.pid"
}

# fds_list - what spoold's open descriptors point to, one a line, sorted
fds_list() {
	ls -l "/proc/$SPOOLD_PID/fd" 2>/dev/null | sed 1d | sed 's/.* -> //' | sort
}

# fds_baseline - remember spoold's descriptors (call with no client connected,
# after one session, so that the spool is open)
fds_baseline() {
	fds_list >"$T/fds.start"
}

# fds_unchanged WHAT - once its clients are gone spoold holds exactly the
# descriptors of fds_baseline again: none leaked, none closed by mistake
fds_unchanged() {
	_i=0
	while :; do
		fds_list >"$T/fds.now"
		cmp -s "$T/fds.start" "$T/fds.now" && return 0
		_i=$((_i + 1))
		[ $_i -le 50 ] || fail "$1: spoold's open descriptors differ from the start (< start, > now):
$(diff "$T/fds.start" "$T/fds.now")"
		sleep 0.1
	done
}

# spoolctl ARG... - spoolctl on the test's configuration
spoolctl() {
	"$SPOOLCTL" -c "$SPOOLD_CONF" "$@"
}

# make_cert [NAME] - a self-signed certificate for mx.test and 127.0.0.1:
# $T/NAME.pem and $T/NAME-key.pem (default: $T/cert.pem, $T/key.pem)
make_cert() {
	need certtool
	_cert=$T/${1:-cert}.pem
	_key=$T/${1:+$1-}key.pem
	cat >"$T/cert.tmpl" <<EOF
cn = mx.test
dns_name = mx.test
ip_address = 127.0.0.1
expiration_days = 2
tls_www_server
signing_key
encryption_key
EOF
	certtool --generate-privkey --key-type=ecdsa --outfile "$_key" >"$T/certtool.out" 2>&1 ||
		error "certtool could not make a key: $(cat "$T/certtool.out")"
	certtool --generate-self-signed --load-privkey "$_key" --template "$T/cert.tmpl" \
	    --outfile "$_cert" >"$T/certtool.out" 2>&1 ||
		error "certtool could not make a certificate: $(cat "$T/certtool.out")"
}

# domain_count DOMAIN - messages spoolctl list shows for DOMAIN (0 if absent)
domain_count() {
	_out=$(spoolctl list) || fail "spoolctl list failed"
	printf '%s\n' "$_out" | awk -v d="$1" '
		NR == 1 && $1 != "#" { print "bad header: " $0; exit }
		$1 == d { n = $2 } END { print n + 0 }'
}

# expect_count DOMAIN N - spoolctl list shows N messages for DOMAIN
expect_count() {
	_n=$(domain_count "$1")
	[ "$_n" = "$2" ] || fail "spoolctl list: $1 has $_n messages, expected $2
$(spoolctl list)"
}

# total_count - messages stored, from spoolctl stats
total_count() {
	spoolctl stats | awk '$1 == "messages" { print $2 }'
}

# sw ARG... - swaks against spoold; output in $T/swaks.out, status in SW_RC
sw() {
	SW_RC=0
	swaks --server "127.0.0.1:$SMTP_PORT" --timeout 10 --helo client.test "$@" \
	    >"$T/swaks.out" 2>&1 </dev/null || SW_RC=$?
}

# sw_expect REGEX WHAT - a server reply line of the last sw run matches REGEX
sw_expect() {
	grep -E -q "^<[-~*]*  *$1" "$T/swaks.out" ||
		fail "$2: no reply matching /$1/ in swaks output:
$(cat "$T/swaks.out")"
}

# sw_queued - the queue id of the last sw run's 250 reply (empty if none)
sw_queued() {
	sed -n 's/^<[-~]*  *250 2\.0\.0 Ok: queued as \([0-9a-f]\{16\}\).*/\1/p' "$T/swaks.out" | tail -n 1
}

# chat [SMTPCHAT-OPTION...] - run smtpchat.py against spoold, script on stdin
chat() {
	python3 "$SMTPCHAT" "$@" 127.0.0.1 "$SMTP_PORT" -
}

# ---- the site's MTA and ETRN, for delivery tests ----

# need_sink - skip unless Postfix's smtp-sink is there; sets SINK
need_sink() {
	SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
	[ -x "$SINK" ] || skip "smtp-sink (Postfix) is not installed"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# sink [OPTION...] - (re)start smtp-sink as the site's MTA, dumping to $T/dump
sink() {
	[ -f "$T/sink.pid" ] && stop_pid "$(cat "$T/sink.pid")" && rm -f "$T/sink.pid"
	chmod 755 "$T"
	mkdir -p "$T/dump"; chmod 777 "$T/dump"
	"$SINK" -u nobody -d "$T/dump/%M." "$@" "127.0.0.1:$SINK_PORT" 100 >"$T/sink.log" 2>&1 &
	echo $! >"$T/sink.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$SINK_PORT),1)" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -le 100 ] || error "smtp-sink did not start"; sleep 0.05
	done
}

# etrn FROM-ADDRESS NODE... - one session, one ETRN per node; replies in $T/etrn.out
etrn() {
	python3 - "$SMTP_PORT" "$@" >"$T/etrn.out" 2>&1 <<'PY'
import smtplib, sys
port, src, nodes = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=10)
s.ehlo("site.test")
for n in nodes:
    code, msg = s.docmd("ETRN", n)
    print(code, msg.decode())
s.quit()
PY
}
expect_etrn() {
	grep -E -q "$1" "$T/etrn.out" || fail "$2: no /$1/ in: $(cat "$T/etrn.out")"
}

# wait_count DOMAIN N - until spoolctl list shows N messages (10 s at most)
wait_count() {
	_i=0
	until [ "$(domain_count "$1")" = "$2" ]; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "$1 still has $(domain_count "$1") messages, expected $2"
		sleep 0.05
	done
}
dumped() {
	ls "$T/dump" | wc -l
}

