#!/bin/sh
# t34-reload.sh - SIGHUP against what runs: a restart-only directive
# changed in the file (datadir, resolver, listen) keeps its running value
# (a body over 256 KiB is still spilled into the running datadir, not
# the new one that does not exist) and is warned about at every reload
# until a restart; reverting it warns nothing; SIGHUPs in a burst end on
# the file's last version; a reload of 20,000 domain blocks is parsed off
# the loop while a session keeps being answered.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need_swaks

write_conf "junk-command-limit 0"	# the probe's NOOPs
sed -i 's/^max-message-size .*/max-message-size 2M/' "$SPOOLD_CONF"
cp "$SPOOLD_CONF" "$T/orig.conf"
start_spoold

# hup N - SIGHUP, then wait for the Nth reload outcome in the log
hup() {
	kill -HUP "$SPOOLD_PID"
	_i=0
	until [ "$(grep -c -E 'reloaded: |reload failed' "$SPOOLD_LOG")" -ge "$1" ]; do
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "no reload outcome number $1 within 10 s"; sleep 0.05
	done
}
warnings() {	# the count of "keeps the running value" warnings so far
	grep -c 'changed in .*; the running value.* until spoold restarts' "$SPOOLD_LOG" || true
}
big_message() {
	python3 -c 'print(("x" * 99 + "\n") * 4000)' >"$T/big"	# 400 KB: spilled
	sw -f a@client.test -t big@example.test --body "$T/big"
	[ -n "$(sw_queued)" ] || fail "$1: a 400 KB message was not accepted: $(tail -5 "$T/swaks.out")"
}

# ---- datadir changed: kept, warned at every reload ----
sed -i "s#^datadir .*#datadir $T/elsewhere#" "$SPOOLD_CONF"
hup 1
grep -q "reload: datadir changed in $SPOOLD_CONF; the running value stays until spoold restarts" "$SPOOLD_LOG" ||
	fail "no warning for the changed datadir: $(grep reload "$SPOOLD_LOG")"
big_message "datadir changed"
[ -e "$T/elsewhere" ] && fail "the new datadir was used before a restart"
hup 2
[ "$(warnings)" = 2 ] || fail "the second reload with the same change did not warn again ($(warnings) warnings)"
cp "$T/orig.conf" "$SPOOLD_CONF"
hup 3
[ "$(warnings)" = 2 ] || fail "reverting datadir to the running value warned"
big_message "datadir reverted"
say "datadir changed: kept as running (a spilled body stored there), warned at each reload; reverted: no warning"

# ---- several restart-only directives in one line; then a new domain
# still takes effect at once ----
sed -i "s#^listen smtp .*#listen smtp 127.0.0.1:0 127.0.0.2:0#" "$SPOOLD_CONF"
echo "resolver 127.0.0.1:53" >>"$SPOOLD_CONF"
printf 'domain new.test {\n    recipients any\n}\n' >>"$SPOOLD_CONF"
hup 4
grep -q "reload: listen/metrics-listen, resolver changed in $SPOOLD_CONF; the running values stay until spoold restarts" "$SPOOLD_LOG" ||
	fail "no warning naming listen and resolver: $(grep 'reload:' "$SPOOLD_LOG" | tail -2)"
sw -f a@client.test -t u@new.test
[ -n "$(sw_queued)" ] || fail "a domain added with restart-only changes was not taken"
say "listen and resolver changed: one warning naming both; the new domain is taken at once"

# ---- a burst of SIGHUPs ends on the file's last version ----
cp "$T/orig.conf" "$SPOOLD_CONF"
n=$(grep -c -E 'reloaded: |reload failed' "$SPOOLD_LOG")
for i in 1 2 3 4 5; do
	cp "$T/orig.conf" "$SPOOLD_CONF"
	printf 'domain burst%d.test {\n    recipients any\n}\n' "$i" >>"$SPOOLD_CONF"
	kill -HUP "$SPOOLD_PID"
done
_i=0
until sw -f a@client.test -t u@burst5.test && [ -n "$(sw_queued)" ]; do
	_i=$((_i + 1)); [ $_i -le 100 ] || fail "burst5.test (the last version) not taken"; sleep 0.1
done
sw -f a@client.test -t u@burst4.test
sw_expect '55[0-9] ' "burst4.test, from an older version, is refused"
say "five SIGHUPs in a burst: the file's last version runs"

# ---- 20,000 domains: parsed off the loop, a session answered meanwhile ----
python3 - "$SPOOLD_CONF" <<'PY'
import sys
with open(sys.argv[1], "a") as f:
    for i in range(20000):
        f.write("domain d%05d.example {\n    recipients any\n}\n" % i)
PY
n=$(grep -c 'reloaded: ' "$SPOOLD_LOG")
python3 - "$SMTP_PORT" "$SPOOLD_PID" "$SPOOLD_LOG" "$n" >"$T/probe.out" <<'PY'
import os, signal, socket, sys, time
port, pid, log, before = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), 10)
f = s.makefile("rb")
f.readline()
os.kill(pid, signal.SIGHUP)
worst, n = 0.0, 0
t_end = time.time() + 30
while time.time() < t_end:
    t = time.perf_counter()
    s.sendall(b"NOOP\r\n")
    if not f.readline().startswith(b"250"):
        sys.exit("NOOP not answered 250")
    worst = max(worst, time.perf_counter() - t)
    n += 1
    time.sleep(0.001)
    if open(log).read().count("reloaded: ") > before:
        break
print("noops %d worst %.1f ms" % (n, worst * 1000))
PY
grep -q 'reloaded: 2000[0-9] domains (parsed in [0-9.]* s off the loop, swapped in [0-9.]* ms)' "$SPOOLD_LOG" ||
	fail "no reload of 20,000 domains logged: $(grep 'reload' "$SPOOLD_LOG" | tail -2)"
say "20,000 domain blocks: $(grep -o 'parsed in [^)]*' "$SPOOLD_LOG" | tail -1); a session meanwhile: $(cat "$T/probe.out") (timings are reported, not judged)"
stop_spoold
check_sanitizers
