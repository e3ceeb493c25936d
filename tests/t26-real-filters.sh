#!/bin/sh
# t26-real-filters.sh - real content filters over the milter protocol:
# rspamd (its rspamd_proxy worker in milter mode, scanning itself) refuses
# GTUBE with a 5xx and a "soft reject" with a 4xx in the SMTP dialogue,
# nothing stored, and its headers reach the site on a clean message;
# clamav-milter (behind rspamd, both filters in a row) with clamd on a
# signature database written here refuses an EICAR attachment with a 5xx
# and lets a clean attachment through.  Each daemon runs privately in $T,
# with no network: rspamd's DNS points at a closed port, its network and
# Redis modules are off.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_sink
need_swaks
need rspamd clamd clamav-milter md5sum

RSPAMD_PORT=$(free_port)
CLAM_PORT=$(free_port)
SINK_PORT=$(free_port)

# port_open PORT - something accepts on 127.0.0.1:PORT
port_open() {
	python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null
}

# daemon_fail NAME LOG... - a filter daemon did not come up: fail with its logs
daemon_fail() {
	_what=$1
	shift
	_msg="$_what did not start"
	for _l in "$@"; do
		[ -f "$_l" ] && _msg="$_msg
---- $_l (last 30 lines):
$(grep -v 'duplicate symbol name' "$_l" | tail -n 30)"
	done
	fail "$_msg"
}

# ---- rspamd ----
. "$top_srcdir/tests/rspamd-private.sh"
rspamd_private_config "$T/rspamd" "$RSPAMD_PORT"
rspamd_private_run "$T/rspamd" >"$T/rspamd.out" 2>&1 &
echo $! >"$T/rspamd.pid"
_i=0
until port_open "$RSPAMD_PORT"; do
	alive "$(cat "$T/rspamd.pid")" || daemon_fail rspamd "$T/rspamd.out" "$T/rspamd/rspamd.log"
	_i=$((_i + 1))
	[ $_i -le 600 ] || daemon_fail "rspamd (60 s)" "$T/rspamd.out" "$T/rspamd/rspamd.log"
	sleep 0.1
done

# ---- clamd and clamav-milter ----
mkdir -p "$T/clamdb"
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$T/eicar.com"
[ "$(wc -c <"$T/eicar.com")" -eq 68 ] || error "the EICAR file is not 68 bytes"
echo "$(md5sum <"$T/eicar.com" | cut -d' ' -f1):68:Spoold.Test.EICAR" >"$T/clamdb/test.hdb"
printf 'a harmless attachment\n' >"$T/clean.txt"
cat >"$T/clamd.conf" <<EOF
LocalSocket $T/clamd.sock
DatabaseDirectory $T/clamdb
Foreground yes
LogFile $T/clamd.log
LogTime yes
User root
TemporaryDirectory $T
EOF
cat >"$T/clamav-milter.conf" <<EOF
MilterSocket inet:$CLAM_PORT@127.0.0.1
ClamdSocket unix:$T/clamd.sock
OnInfected Reject
OnFail Defer
Foreground yes
LogFile $T/clamav-milter.log
LogTime yes
LogInfected Basic
User root
AddHeader Replace
EOF
clamd -c "$T/clamd.conf" >"$T/clamd.out" 2>&1 &
echo $! >"$T/clamd.pid"
_i=0
until python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect('$T/clamd.sock')
s.sendall(b'zPING\0'); sys.exit(0 if s.recv(10).startswith(b'PONG') else 1)" 2>/dev/null; do
	alive "$(cat "$T/clamd.pid")" || daemon_fail clamd "$T/clamd.out" "$T/clamd.log"
	_i=$((_i + 1))
	[ $_i -le 600 ] || daemon_fail "clamd (60 s)" "$T/clamd.out" "$T/clamd.log"
	sleep 0.1
done
clamav-milter -c "$T/clamav-milter.conf" >"$T/clamav-milter.out" 2>&1 &
echo $! >"$T/clamav-milter.pid"
_i=0
until port_open "$CLAM_PORT"; do
	alive "$(cat "$T/clamav-milter.pid")" ||
		daemon_fail clamav-milter "$T/clamav-milter.out" "$T/clamav-milter.log"
	_i=$((_i + 1))
	[ $_i -le 600 ] || daemon_fail "clamav-milter (60 s)" "$T/clamav-milter.out" "$T/clamav-milter.log"
	sleep 0.1
done

# ---- spoold with rspamd ----
site_conf() {
	cat >>"$SPOOLD_CONF" <<EOF
domain site.test {
    etrn-from 127.0.0.1
    deliver-to [127.0.0.1]:$SINK_PORT
    recipients any
}
EOF
}
write_conf "milter rspamd inet:127.0.0.1:$RSPAMD_PORT" "milter-timeout eom 30s"
site_conf
start_spoold

# send SUBJECT [SWAKS-OPTION...] - a message to a@site.test
send() {
	_subject=$1
	shift
	sw -f sender@client.test -t a@site.test --header "Subject: $_subject" "$@"
}

n=$(domain_count site.test)
send "gtube" --body 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
sw_expect '5[0-9][0-9] ' "rspamd and GTUBE"
[ "$(domain_count site.test)" = "$n" ] || fail "the GTUBE message was stored"
say "rspamd refuses GTUBE in the dialogue: $(grep -E '^<[-~*]* +5[0-9][0-9] ' "$T/swaks.out" | tail -n 1 | sed 's/^<[-~*]* *//'); not stored"

send "SOFTREJECT-TEST"
sw_expect '4[0-9][0-9] ' "rspamd's soft reject"
[ "$(domain_count site.test)" = "$n" ] || fail "the soft-rejected message was stored"
say "rspamd's soft reject is a 4xx in the dialogue: $(grep -E '^<[-~*]* +4[0-9][0-9] ' "$T/swaks.out" | tail -n 1 | sed 's/^<[-~*]* *//'); not stored"

send "rspamd-clean"
[ -n "$(sw_queued)" ] || fail "a clean message was not stored after rspamd: $(cat "$T/swaks.out")"
say "a clean message passes rspamd and is stored"

# ---- spoold with rspamd, then clamav-milter ----
stop_spoold
write_conf "milter rspamd inet:127.0.0.1:$RSPAMD_PORT" \
    "milter clamav inet:127.0.0.1:$CLAM_PORT" "milter-timeout eom 30s"
site_conf
start_spoold

n=$(domain_count site.test)
send "eicar" --attach-type application/octet-stream --attach "@$T/eicar.com"
sw_expect '5[0-9][0-9] ' "clamav-milter and EICAR"
[ "$(domain_count site.test)" = "$n" ] || fail "the EICAR message was stored"
grep -q 'Spoold.Test.EICAR' "$T/clamav-milter.log" "$T/clamd.log" 2>/dev/null ||
	fail "neither clamd nor clamav-milter logged the test signature"
say "clamav-milter refuses an EICAR attachment in the dialogue: $(grep -E '^<[-~*]* +5[0-9][0-9] ' "$T/swaks.out" | tail -n 1 | sed 's/^<[-~*]* *//'); not stored"

send "clamav-clean" --attach-type text/plain --attach "@$T/clean.txt"
[ -n "$(sw_queued)" ] || fail "a clean attachment was not stored after both filters: $(cat "$T/swaks.out")"
say "a clean attachment passes rspamd and clamav-milter and is stored"

# ---- what the site gets ----
sink
etrn 127.0.0.1 site.test
wait_count site.test 0
# dump_of SUBJECT - the sink's copy of the message with that subject
dump_of() {
	grep -l "^Subject: $1\$" "$T"/dump/* 2>/dev/null | head -n 1
}
f=$(dump_of rspamd-clean)
[ -n "$f" ] || fail "the clean message was not delivered: $(ls "$T/dump")"
grep -q '^X-Spamd-Result: ' "$f" && grep -q '^X-Rspamd-Server: ' "$f" && grep -q '^X-Rspamd-Queue-Id: ' "$f" ||
	fail "rspamd's headers are not in the delivered copy:
$(sed '/^$/q' "$f")"
say "rspamd's X-Spamd-Result, X-Rspamd-Server and X-Rspamd-Queue-Id are in the copy the site gets"
f=$(dump_of clamav-clean)
[ -n "$f" ] || fail "the clean attachment was not delivered: $(ls "$T/dump")"
grep -q '^X-Virus-Scanned: clamav-milter' "$f" && grep -q '^X-Virus-Status: Clean' "$f" && grep -q '^X-Spamd-Result: ' "$f" ||
	fail "clamav-milter's or rspamd's headers are not in the delivered copy:
$(sed '/^$/q' "$f")"
say "both filters' headers (X-Virus-Scanned, X-Virus-Status: Clean, X-Spamd-Result) are in the copy the site gets"
check_sanitizers
