#!/bin/bash
# quickstart-check.sh - do what the README's first lines tell a new user to
# do, and fail if any of it does not work: contrib/quickstart.sh builds and
# starts spoold; swaks sends a message to user@example.test on
# 127.0.0.1:2525; spoolctl lists it; ETRN example.test is accepted and the
# run's failure (nothing listens on the demo route) shows in spoolctl show.
#
# Needs nothing but bash and what quickstart.sh installs; contrib/fresh-check.sh
# runs it on a brand-new Debian 12 root.  Uses ./run as quickstart.sh does, and
# leaves it there; a run/spoold.conf from an earlier quickstart is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'quickstart-check: %s\n' "$*"; }
fail() { printf 'quickstart-check: FAIL: %s\n' "$*" >&2; tail -n 30 run/quickstart.log >&2 || true; exit 1; }

mkdir -p run
contrib/quickstart.sh >run/quickstart.log 2>&1 &
qs=$!
trap 'kill -TERM $qs 2>/dev/null; wait $qs 2>/dev/null || true' EXIT

# The build comes first: give it ten minutes to have spoold listening.
for _ in $(seq 1 1200); do
	(exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break
	kill -0 $qs 2>/dev/null || fail "contrib/quickstart.sh exited before spoold listened"
	sleep 0.5
done
(exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null || fail "nothing listens on 127.0.0.1:2525 after 10 minutes"
say "spoold listens on 127.0.0.1:2525"

swaks --server 127.0.0.1:2525 --to user@example.test --from you@example.net >run/swaks.out 2>&1 ||
	fail "swaks: $(tail -n 3 run/swaks.out)"
grep -q '^<- *250 .*queued as' run/swaks.out || fail "swaks got no 250 ... queued as after DATA"
spoold/spoolctl -c run/spoold.conf list >run/list.out || fail "spoolctl list failed"
grep -q '^example\.test ' run/list.out || fail "spoolctl list does not list example.test: $(cat run/list.out)"
say "swaks' message is listed: $(grep '^example\.test ' run/list.out)"

# ETRN by hand, as the README shows it with telnet
exec 3<>/dev/tcp/127.0.0.1/2525
# reply - read one SMTP reply from fd 3 (up to its last line) into $REPLY_LINE
reply() {
	local line
	while IFS= read -r -t 10 line <&3; do
		line=${line%$'\r'}
		REPLY_LINE=$line
		[ "${line:3:1}" = "-" ] || return 0
	done
	fail "no reply from spoold"
}
reply
printf 'EHLO quickstart.test\r\n' >&3; reply
printf 'ETRN example.test\r\n' >&3; reply
case $REPLY_LINE in
25[0-3]\ *) say "ETRN example.test: $REPLY_LINE" ;;
*) fail "ETRN example.test: $REPLY_LINE" ;;
esac
printf 'QUIT\r\n' >&3; reply
exec 3<&-

for _ in $(seq 1 100); do
	spoold/spoolctl -c run/spoold.conf show example.test >run/show.out 2>&1 || fail "spoolctl show failed"
	grep -q '^# last attempt' run/show.out && break
	sleep 0.1
done
grep -q '^# last attempt' run/show.out || fail "spoolctl show example.test says nothing of the run: $(cat run/show.out)"
say "spoolctl show example.test: $(grep '^# last attempt' run/show.out)"
say "OK: the README's first steps work"
