#!/bin/sh
# t39-sasl-async.sh - SASL steps run off the event loop (issue 14.2).  The
# back end is a real slow one: Cyrus's sql auxprop (libsasl2-modules-sql)
# against a private PostgreSQL in $T (a unix socket only, run as nobody),
# whose query sleeps 2 s.  While one client's AUTH waits on it, another
# session's NOOPs are answered at once; two AUTHs run side by side; a wrong
# password is still 535 after at least the failure delay; a client that
# hangs up while its step runs, or a SIGTERM then, costs nothing (the
# step's result is dropped, spoold exits 0, no sanitizer report); with
# sasl-workers 1 the two AUTHs take turns.  Then saslauthd (rimap, against
# a Python IMAP server that takes 2 s a LOGIN) with AUTH PLAIN over TLS:
# the other session is served meanwhile there too.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
ls /usr/lib/*/sasl2/libsql.so* >/dev/null 2>&1 ||
	fail "Cyrus SASL's sql auxprop is not installed (libsasl2-modules-sql; contrib/deps.sh test)"
pg_start
sql >"$T/psql.out" 2>&1 <<'EOF' ||
CREATE TABLE users (name text PRIMARY KEY, password text NOT NULL);
INSERT INTO users VALUES ('alice', 'secret'), ('bob', 'other');
EOF
	fail "psql: $(cat "$T/psql.out")"
say "a private PostgreSQL on a unix socket in the test directory, users alice and bob"

# ---- spoold: sql auxprop, a 2 s query for every property asked ----
SELECT="SELECT password FROM users WHERE name = '%u' AND '%p' = 'userPassword' AND pg_sleep(2) IS NOT NULL"
write_conf "listen odmr 127.0.0.1:0" \
    "sasl-option auxprop_plugin sql" \
    "sasl-option sql_engine pgsql" \
    "sasl-option sql_hostnames $PG" \
    "sasl-option sql_user spoold" \
    "sasl-option sql_database spoold" \
    "sasl-option sql_select $SELECT" \
    "sasl-option mech_list CRAM-MD5 PLAIN"
cat >>"$SPOOLD_CONF" <<EOF
domain cust.test {
    atrn-user alice
    recipients any
}
EOF
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
[ -n "$ODMR_PORT" ] || fail "no odmr line in the listen file: $(cat "$T/listen")"

# probe MODE [plain] - the Python side (plain: AUTH PLAIN over TLS); prints its measures, exits 1 on a surprise
probe() {
	python3 - "$ODMR_PORT" "$@" <<'PY'
import base64, hashlib, hmac, socket, ssl, sys, threading, time
port, mode = int(sys.argv[1]), sys.argv[2]
plain = len(sys.argv) > 3 and sys.argv[3] == "plain"   # PLAIN over TLS, else CRAM-MD5

class Client:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), 30)
        self.f = self.s.makefile("rb")
        self.reply()
        self.cmd("EHLO c.test")
        if plain:
            assert self.cmd("STARTTLS").startswith("220")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.s = ctx.wrap_socket(self.s)
            self.f = self.s.makefile("rb")
            self.cmd("EHLO c.test")
    def reply(self):
        while True:
            r = self.f.readline().decode()
            if r[3:4] != "-":
                return r.strip()
    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()
    def cram(self, user, password):
        """AUTH up to the line the back end answers sent"""
        if plain:
            tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
            self.s.sendall(b"AUTH PLAIN " + tok + b"\r\n")
            return
        r = self.cmd("AUTH CRAM-MD5")
        assert r.startswith("334 "), r
        ch = base64.b64decode(r[4:])
        d = hmac.new(password.encode(), ch, hashlib.md5).hexdigest()
        self.s.sendall(base64.b64encode((user + " " + d).encode()) + b"\r\n")

def timed_auth(user, password, out, key, sent=None):
    c = Client()
    c.cram(user, password)
    t = time.time()
    if sent:
        sent.set()
    r = c.reply()
    out[key] = (r, time.time() - t, time.time())
    c.cmd("QUIT")

if mode == "noop":
    # one session waits 2 s on the back end; another's NOOPs meanwhile,
    # each sent after that session's line went out
    other = Client()
    res, sent = {}, threading.Event()
    th = threading.Thread(target=timed_auth, args=("alice", "secret", res, "a", sent))
    th.start()
    sent.wait(10)
    noops, t0 = [], time.time()
    while th.is_alive() and time.time() - t0 < 10:
        t = time.time()
        r = other.cmd("NOOP")
        assert r.startswith("250"), r
        noops.append((time.time() - t, time.time()))
        time.sleep(0.05)
    th.join()
    reply, took, at = res["a"]
    rtts = [rtt for rtt, _ in noops]
    print("auth: %s after %.2fs; %d NOOPs meanwhile, the slowest %.1f ms" % (reply, took,
          len(rtts), 1000 * max(rtts, default=0)))
    assert reply.startswith("235"), reply
    assert took >= 1.8, "the back end was not slow: %.2fs" % took
    # robust: with the loop blocked for the lookup, no NOOP could be both
    # answered within 1 s and before the AUTH's 235
    inside = [rtt for rtt, done in noops if rtt < 1.0 and done < at]
    assert inside, noops
elif mode in ("parallel", "serial"):
    res, ths = {}, []
    t = time.time()
    for k, (u, p) in enumerate((("alice", "secret"), ("bob", "other"))):
        ths.append(threading.Thread(target=timed_auth, args=(u, p, res, k)))
        ths[-1].start()
    for th in ths:
        th.join()
    total = time.time() - t
    print("two AUTHs at once: %s / %s, %.2fs in all" % (res[0][0], res[1][0], total))
    assert res[0][0].startswith("235") and res[1][0].startswith("235"), res
    # one thread (sasl-workers 1): the second waits for the first
    assert mode == "parallel" or total >= 3.8, total
elif mode == "wrong":
    res = {}
    timed_auth("alice", "wrong", res, "w")
    print("wrong password: %s after %.2fs" % res["w"][:2])
    assert res["w"][0].startswith("535") and res["w"][1] >= 0.9, res
elif mode == "hangup":
    # the client leaves while its step runs; the next one is served
    for _ in range(3):
        c = Client()
        c.cram("alice", "secret")
        c.s.close()
    time.sleep(0.2)
    res = {}
    timed_auth("alice", "secret", res, "n")
    print("after 3 hang-ups mid-step: %s after %.2fs" % res["n"][:2])
    assert res["n"][0].startswith("235"), res
elif mode == "pending":
    # a step under way when spoold is told to stop: the 421 (or the close)
    c = Client()
    c.cram("alice", "secret")
    print("ready", flush=True)
    r = c.f.readline().decode().strip()
    print("while pending, at the stop: %r" % r)
    assert r == "" or r.startswith("421"), r
PY
}

probe noop >"$T/noop.out" 2>&1 || fail "NOOPs while an AUTH waits on the back end: $(cat "$T/noop.out")"
say "$(head -n 1 "$T/noop.out"): the other session is served while the lookup runs"
probe parallel >"$T/par.out" 2>&1 || fail "two AUTHs at once: $(cat "$T/par.out")"
say "$(head -n 1 "$T/par.out") (one after the other would be 4 s or more)"
probe wrong >"$T/wrong.out" 2>&1 || fail "a wrong password: $(cat "$T/wrong.out")"
say "$(cat "$T/wrong.out"): still 535, no sooner than the failure delay"
probe hangup >"$T/hangup.out" 2>&1 || fail "hang-ups mid-step: $(cat "$T/hangup.out")"
sleep 2.2	# the abandoned steps come back and are dropped
say "$(cat "$T/hangup.out"): results of the steps whose clients left are dropped"

# ---- SIGTERM while a step runs: workers joined, then SASL done; exit 0 ----
probe pending >"$T/pending.out" 2>&1 &
_probe=$!
_i=0
until grep -q '^ready' "$T/pending.out" 2>/dev/null; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "the pending probe did not start: $(cat "$T/pending.out")"; sleep 0.05
done
sleep 0.3
stop_spoold
wait $_probe || fail "a step pending at the stop: $(cat "$T/pending.out")"
say "SIGTERM while a step waits on the back end: $(tail -n 1 "$T/pending.out"), spoold exits 0"

# ---- sasl-workers 1: the same two AUTHs, now one after the other ----
printf 'sasl-workers 1\n' >>"$SPOOLD_CONF"
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
probe serial >"$T/serial.out" 2>&1 || fail "two AUTHs with sasl-workers 1: $(cat "$T/serial.out")"
say "sasl-workers 1: $(head -n 1 "$T/serial.out" | sed 's/^two AUTHs at once: //') (one thread: one after the other)"
sed -i 's/^sasl-workers 1$/sasl-workers 8/' "$SPOOLD_CONF"
kill -HUP "$SPOOLD_PID"
_i=0
until grep -q "reload: sasl-workers changed in $SPOOLD_CONF; the running value stays until spoold restarts" "$SPOOLD_LOG"; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "a reload changing sasl-workers did not say it waits for a restart"; sleep 0.05
done
say "a reload changing sasl-workers says the running value stays until a restart"
stop_spoold

# ---- saslauthd (rimap) against an IMAP server that takes 2 s a LOGIN ----
need saslauthd setsid
cat >"$T/imap.py" <<'EOF'
import os, socket, sys, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def serve(c):
    c.sendall(b"* OK slow IMAP ready\r\n")
    for line in c.makefile("rb"):
        tag, cmd = (line.split(b" ", 2) + [b""])[:2]
        if cmd.upper() != b"LOGIN":
            c.sendall(b"* BYE\r\n" + tag + b" OK\r\n")
            break
        time.sleep(2)
        c.sendall(tag + (b" OK done\r\n" if b'"secret"' in line else b" NO failed\r\n"))
    c.close()
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
EOF
python3 "$T/imap.py" "$T/imap.port" >"$T/imap.log" 2>&1 &
echo $! >"$T/imap.pid"
_i=0
until [ -s "$T/imap.port" ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "the IMAP server did not start"; sleep 0.05
done
mkdir -p "$T/mux"
# its own session: at SIGTERM saslauthd signals its whole process group
setsid saslauthd -d -a rimap -O "127.0.0.1/$(cat "$T/imap.port")" -m "$T/mux" -n 5 >"$T/saslauthd.log" 2>&1 &
echo $! >"$T/saslauthd.pid"
_i=0
until [ -S "$T/mux/mux" ]; do
	_i=$((_i + 1)); [ $_i -le 200 ] || fail "saslauthd made no socket"; sleep 0.05
done
make_cert
write_conf "listen odmr 127.0.0.1:0" "tls-cert $T/cert.pem" "tls-key $T/key.pem" \
    "sasl-option pwcheck_method saslauthd" "sasl-option saslauthd_path $T/mux/mux" \
    "sasl-option mech_list PLAIN"
start_spoold
ODMR_PORT=$(sed -n 's/^odmr 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/listen")
probe noop plain >"$T/noop-sa.out" 2>&1 || fail "NOOPs while saslauthd waits: $(cat "$T/noop-sa.out")"
say "saslauthd (rimap, 2 s a LOGIN), AUTH PLAIN over TLS: $(head -n 1 "$T/noop-sa.out" | sed 's/^auth: //')"
stop_spoold
check_sanitizers
