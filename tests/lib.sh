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

# need CMD... - fail the test when a tool is missing: the README's test
# command installs every one (contrib/deps.sh test), so a missing tool is a
# half-installed machine, and the suite must not silently test less there
need() {
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 ||
			fail "$cmd is not installed (contrib/deps.sh test installs it)"
	done
}

# need_swaks FEATURE... - swaks is there and its --support lists FEATURE
# ("TLS", "Basic AUTH"): its TLS and SASL helpers are Perl modules that
# the swaks package only recommends
need_swaks() {
	need swaks
	_support=$(swaks --support 2>&1)
	for _feature in "$@"; do
		printf '%s\n' "$_support" | grep -q "^=== $_feature supported" ||
			fail "swaks cannot do $_feature: $(printf '%s\n' "$_support" | grep -m1 "^\*\*\* $_feature" || echo "not in swaks --support")"
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
	pg_stop
	# a Postfix master whose pid postfix_start had no time to record
	[ -n "${PF_QUEUE:-}" ] && [ ! -f "$T/postfix.pid" ] && [ -s "$PF_QUEUE/pid/master.pid" ] &&
		postfix_pidfile
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

# ---- recipients asked over SMTP (Python's smtplib), for the RCPT-time checks ----

# rcpt_reply ADDRESS - one session, one RCPT TO ADDRESS: "CODE TEXT"
rcpt_reply() {
	python3 - "$SMTP_PORT" "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test"); s.mail("a@x.test")
code, text = s.rcpt(sys.argv[2])
print(code, text.decode())
s.quit()
PY
}
# expect_rcpt_reply ADDRESS REGEX WHAT - rcpt_reply's line matches ^REGEX
expect_rcpt_reply() {
	_got=$(rcpt_reply "$1")
	printf '%s\n' "$_got" | grep -E -q "^$2" || fail "$3: RCPT TO:<$1> got \"$_got\", expected /$2/"
}
# rcpts_at_once N ADDRESS - N sessions at once, one RCPT TO ADDRESS each:
# "CODE COUNT" lines, sorted, then "max SECONDS" (the slowest RCPT's reply)
rcpts_at_once() {
	python3 - "$SMTP_PORT" "$1" "$2" <<'PY'
import collections, smtplib, sys, threading, time
port, n, addr = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
codes, took, lock = [], [], threading.Lock()
def one():
    t0 = time.monotonic()
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.ehlo("client.test")
        s.mail("a@x.test")
        t0 = time.monotonic()
        code, _ = s.rcpt(addr)
        s.quit()
    except Exception as e:
        code = "error:%s" % e
    with lock:
        codes.append(code)
        took.append(time.monotonic() - t0)
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
for c, k in sorted(collections.Counter(codes).items(), key=str):
    print(c, k)
print("max %.2f" % max(took))
PY
}
# stat_value NAME - one figure of spoolctl stats (the counters of /metrics)
stat_value() {
	spoolctl stats | awk -v k="$1" '$1 == k { print $2 }'
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
	[ -x "$SINK" ] || fail "smtp-sink (Postfix) is not installed (contrib/deps.sh test installs it)"
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

# ---- a private Postfix instance, the site's real MTA ----
# Postfix (run as root) from its own configuration, queue and data directories
# in $T: no chroot, listening on 127.0.0.1:PORT only, logging through postlogd
# to $T/postfix.log (printed on failure like every $T/*.log).  It accepts mail
# for one domain and delivers it with virtual(8), as nobody, into Maildirs
# under $PF_MAIL: every address into $PF_MAIL/DOMAIN/, or, when PF_USERS is
# set, only those users (USER@DOMAIN into $PF_MAIL/DOMAIN/USER/; any other
# recipient gets 550 5.1.1 at RCPT).  Its master's pid goes to $T/postfix.pid,
# so the EXIT trap stops the whole instance like any other daemon.
#
# A test may set, before postfix_start:
#   PF_USERS         local parts Postfix knows (blank-separated); empty: all
#   PF_MAIN_EXTRA    main.cf lines, "name = value" one a line, each set with
#                    postconf -e (replacing the default above, or added)
#   PF_MASTER_EXTRA  lines appended to master.cf
#   PF_RESOLV_CONF   a resolv.conf for this instance alone: Postfix takes its
#                    DNS servers from /etc/resolv.conf only (port 53), so the
#                    instance is started in a mount namespace of its own
#                    (unshare -m) with this file bound over /etc/resolv.conf;
#                    the host's file is not touched
# postfix_start sets PF_DOMAIN and PF_PORT; $PF_DIR (config_directory) may
# hold the test's own maps.  Mail already delivered stays across restarts.
PF_DIR=$T/postfix
PF_QUEUE=$T/postfix-queue
PF_DATA=$T/postfix-data
PF_MAIL=$T/pfmail
PF_LOG=$T/postfix.log
PF_USERS=
PF_MAIN_EXTRA=
PF_MASTER_EXTRA=
PF_RESOLV_CONF=
PF_DOMAIN=
PF_PORT=

# need_postfix - skip unless Postfix is installed and we can start it (root)
need_postfix() {
	[ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postconf ] ||
		fail "Postfix is not installed (/usr/sbin/postfix; contrib/deps.sh test installs it)"
	[ "$(id -u)" -eq 0 ] || skip "a private Postfix instance must be started as root"
	id postfix >/dev/null 2>&1 || fail "there is no user postfix (Postfix's mail_owner; its package makes it)"
	id nobody >/dev/null 2>&1 || fail "there is no user nobody for Postfix's virtual delivery"
}

# mount_propagation - how unshare -m keeps a test's mounts from this
# machine's namespace, in PROPAGATION: "private" makes every mount private,
# which needs / to be a mount point; in a chroot (CI's fresh root) it is
# not, and then "unchanged" when no mount is shared (nothing can
# propagate).  Returns 1 (PROPAGATION empty) when neither is safe.
mount_propagation() {
	PROPAGATION=
	if unshare -m --propagation private true 2>/dev/null; then
		PROPAGATION=private
	elif ! grep -q ' shared:' /proc/self/mountinfo && unshare -m --propagation unchanged true 2>/dev/null; then
		PROPAGATION=unchanged
	fi
	[ -n "$PROPAGATION" ]
}

# postfix_cmd ARG... - the postfix command on the private instance
postfix_cmd() {
	if [ -z "$PF_RESOLV_CONF" ]; then
		/usr/sbin/postfix -c "$PF_DIR" "$@"
		return
	fi
	[ -n "${PROPAGATION:-}" ] || mount_propagation ||
		skip "no mount namespace whose mounts stay private (a chroot with shared mounts)"
	# the master and every child it forks stay in the namespace
	# shellcheck disable=SC2016
	unshare --mount --propagation "$PROPAGATION" sh -c \
	    'mount --bind "$1" /etc/resolv.conf && shift && exec /usr/sbin/postfix "$@"' \
	    sh "$PF_RESOLV_CONF" -c "$PF_DIR" "$@"
}

# postfix_write_config - main.cf, master.cf and the mailbox map in $PF_DIR
postfix_write_config() {
	mkdir -p "$PF_DIR"
	: >"$PF_DIR/vmailbox"
	if [ -n "$PF_USERS" ]; then
		for _u in $PF_USERS; do
			printf '%s@%s %s/%s/\n' "$_u" "$PF_DOMAIN" "$PF_DOMAIN" "$_u" >>"$PF_DIR/vmailbox"
		done
	else
		printf '@%s %s/\n' "$PF_DOMAIN" "$PF_DOMAIN" >"$PF_DIR/vmailbox"
	fi
	cat >"$PF_DIR/main.cf" <<EOF
# private Postfix instance of tests/$TEST_NAME.sh (tests/lib.sh, postfix_start)
compatibility_level = 3.6
myhostname = postfix.test
mydomain = postfix.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
maillog_file = $PF_LOG
maillog_file_prefixes = $T
smtputf8_enable = yes
smtpd_peername_lookup = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
# the site's domain: virtual(8) into Maildirs under $PF_MAIL, as nobody
virtual_mailbox_domains = $PF_DOMAIN
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = texthash:$PF_DIR/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
	# PF_MAIN_EXTRA: postconf -e replaces a setting in place (a second entry
	# for a name would make every Postfix program warn)
	while IFS= read -r _line; do
		case $_line in '' | '#'*) continue ;; esac
		/usr/sbin/postconf -c "$PF_DIR" -e "$_line" ||
			error "postconf -e could not set this PF_MAIN_EXTRA line: $_line"
	done <<EOF
$PF_MAIN_EXTRA
EOF
	sed "s/@PORT@/$PF_PORT/" "$top_srcdir/tests/postfix-master.cf" >"$PF_DIR/master.cf"
	[ -z "$PF_MASTER_EXTRA" ] || printf '%s\n' "$PF_MASTER_EXTRA" >>"$PF_DIR/master.cf"
	# Postfix rereads a configuration file or map modified within the last
	# second every 300 ms until it is older (it may be half written): that
	# made each start 2 s slower.  Age them.
	touch -t 200001010000 "$PF_DIR"/*
}

# postfix_start DOMAIN PORT - a fresh instance (empty queue) for DOMAIN on
# 127.0.0.1:PORT; waits up to 10 s until the port answers
postfix_start() {
	[ $# -eq 2 ] || error "usage: postfix_start DOMAIN PORT"
	postfix_stop
	PF_DOMAIN=$1
	PF_PORT=$2
	chmod 755 "$T"		# virtual(8) runs as nobody
	rm -rf "$PF_QUEUE" "$PF_DATA"
	mkdir -p "$PF_QUEUE" "$PF_DATA" "$PF_MAIL"
	chown postfix "$PF_DATA"
	chown "$(id -u nobody):$(id -g nobody)" "$PF_MAIL"
	postfix_write_config
	echo "==== postfix started $(date '+%T.%N')" >>"$PF_LOG"
	_rc=0
	postfix_cmd start >"$T/postfix-cmd.out" 2>&1 || _rc=$?
	postfix_pidfile
	# (the EXIT trap prints $PF_LOG, where Postfix's own errors are)
	[ $_rc -eq 0 ] || error "postfix -c $PF_DIR start failed (status $_rc): $(cat "$T/postfix-cmd.out")"
	[ -f "$T/postfix.pid" ] || error "postfix started but no master runs from $PF_QUEUE/pid/master.pid"
	_i=0
	until python3 -c "import socket; socket.create_connection(('127.0.0.1',$PF_PORT),1)" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -le 200 ] || error "Postfix does not answer on 127.0.0.1:$PF_PORT 10 s after start"
		sleep 0.05
	done
}

# postfix_pidfile - the running master's pid into $T/postfix.pid (or none)
postfix_pidfile() {
	_mp=$(awk '{ print $1; exit }' "$PF_QUEUE/pid/master.pid" 2>/dev/null || true)
	if [ -n "$_mp" ] && alive "$_mp"; then
		echo "$_mp" >"$T/postfix.pid"
	else
		rm -f "$T/postfix.pid"
	fi
}

# postfix_stop - stop the instance (no-op when it is not running): postfix
# stop (SIGTERM to the master, which stops its children), then stop_pid in
# case the master is still there
postfix_stop() {
	[ -f "$T/postfix.pid" ] || return 0
	postfix_cmd stop >"$T/postfix-cmd.out" 2>&1 || true
	stop_pid "$(cat "$T/postfix.pid")"
	rm -f "$T/postfix.pid"
}

# postfix_mail - the messages in Postfix's Maildirs, one file name a line
postfix_mail() {
	[ -d "$PF_MAIL" ] || return 0
	find "$PF_MAIL" -type f -path '*/new/*' | sort
}

# postfix_delivered - how many messages Postfix has delivered into its Maildirs
postfix_delivered() {
	postfix_mail | wc -l
}

# postfix_wait_delivered N - until N messages are in the Maildirs (20 s at most)
postfix_wait_delivered() {
	_i=0
	until [ "$(postfix_delivered)" -ge "$1" ]; do
		_i=$((_i + 1))
		[ $_i -le 400 ] || fail "Postfix delivered $(postfix_delivered) messages, expected $1"
		sleep 0.05
	done
	[ "$(postfix_delivered)" -eq "$1" ] || fail "Postfix delivered $(postfix_delivered) messages, expected $1"
}

# ---- a private PostgreSQL (t39, t40, t41) ----
# pg_start - a cluster in $T/pg, run as nobody (PostgreSQL refuses root),
# on a unix socket in $PG only (no TCP), with a database "spoold" whose
# superuser is spoold (trust: only this directory reaches the socket).
pg_start() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] ||
		fail "PostgreSQL is not installed (contrib/deps.sh test installs it)"
	need psql pg_isready setpriv
	[ "$(id -u)" = 0 ] || skip "PostgreSQL is run as nobody: needs root"
	PG=$T/pg
	mkdir -p "$PG"
	chmod 711 "$T"
	chown nobody:nogroup "$PG"
	asnobody "$PGBIN/initdb" -D "$PG/data" -U spoold --auth=trust --no-locale -E UTF8 \
	    >"$T/initdb.out" 2>&1 || error "initdb failed: $(tail -5 "$T/initdb.out")"
	pg_run
	psql -q -h "$PG" -U spoold -d postgres -c "CREATE DATABASE spoold" >"$T/psql.out" 2>&1 ||
		fail "psql: $(cat "$T/psql.out")"
}

# pg_run - start the cluster pg_start made (again, after pg_stop)
pg_run() {
	asnobody "$PGBIN/postgres" -D "$PG/data" -k "$PG" -c listen_addresses= -c fsync=off \
	    >>"$T/postgres.log" 2>&1 &
	echo $! >"$T/postgres.pid"
	_i=0
	until pg_isready -q -h "$PG" -U spoold; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "PostgreSQL not ready within 10 s"; sleep 0.05
	done
}

# pg_stop - at once: SIGTERM is PostgreSQL's smart shutdown, which waits
# for its clients, and a KILL would leave its backends
pg_stop() {
	[ -f "$T/postgres.pid" ] || return 0
	asnobody "$PGBIN/pg_ctl" -D "$PG/data" stop -m immediate -w -t 10 >/dev/null 2>&1
	rm -f "$T/postgres.pid"
}

asnobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}

# sql [psql options] - statements on stdin into the spoold database
sql() {
	psql -q -X -h "$PG" -U spoold -d spoold -v ON_ERROR_STOP=1 "$@"
}
