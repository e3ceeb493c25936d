#!/bin/sh
# t43-ldapdb.sh - ODMR's AUTH against users in LDAP: Cyrus's ldapdb auxprop
# (libsasl2-modules-ldap) asking a private OpenLDAP slapd in $T (its own
# slapd.conf, an mdb database, an ldapi:// socket in $T only; not the
# system's slapd).  ldapdb binds as a proxy (DIGEST-MD5, ldapdb_id and
# ldapdb_pw) on behalf of the user (authzid u:USER), which slapd allows by
# the proxy entry's authzTo, and reads the user's userPassword.  CRAM-MD5 for
# a user in LDAP and the ATRN after it deliver the queued mail; PLAIN over
# STARTTLS too; a wrong password and a user not in LDAP get 535.  With slapd
# stopped (SIGSTOP) while an AUTH waits on it, another session's NOOPs are
# answered at once and the AUTH completes once slapd goes on.  With slapd
# down, AUTH gets 454 (temporary), the log says why, spoold serves on, and
# AUTH works again once slapd is back.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
ls /usr/lib/*/sasl2/libldapdb.so* >/dev/null 2>&1 ||
	fail "Cyrus SASL's ldapdb auxprop is not installed (libsasl2-modules-ldap; contrib/deps.sh test)"
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SLAPADD=$(command -v slapadd || echo /usr/sbin/slapadd)
[ -x "$SLAPD" ] && [ -x "$SLAPADD" ] ||
	fail "OpenLDAP's slapd is not installed (slapd; contrib/deps.sh test installs it)"
need ldapwhoami swaks
make_cert
CLIENT="$top_srcdir/tests/odmr_client.py"
# libldap (in ldap-utils and in spoold, through ldapdb) reads no ldap.conf
# or ldaprc: the machine's own LDAP client settings stay out of the test
export LDAPNOINIT=1
# Under ASan (CI's sanitizer run), two leaks of Debian 12's SASL plugins,
# not spoold's, are suppressed: ldapdb frees no search result when the
# search fails (each AUTH of a user not in LDAP), and the DIGEST-MD5 client
# never frees the cipher of the security layer it sets up (each bind).  A
# suppression names the plugin's module, which the default fast unwinder
# does not reach from inside libcrypto or liblber: full stacks here.
printf 'leak:/sasl2/libldapdb.so\nleak:/sasl2/libdigestmd5.so\n' >"$T/lsan.supp"
export LSAN_OPTIONS="suppressions=$T/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

# ---- a private slapd ----
LDAPI="ldapi://$(printf '%s/ldapi' "$T" | sed 's,/,%2F,g')"
SLAPD_PID=

slapd_setup() {
	mkdir -p "$T/ldap-db"
	# The proxy authorization ldapdb needs: the SASL identities
	# (uid=NAME[,cn=REALM],cn=MECH,cn=auth) mapped to entries, and
	# "authz-policy to": the proxy's entry lists whom it may act for
	# (authzTo).  The proxy and each user read their own entry, password
	# included; anonymous may only bind.
	cat >"$T/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $T/slapd.pidfile
sasl-realm test
authz-policy to
authz-regexp "^uid=([^,]+)(,cn=[^,]+)?,cn=[^,]+,cn=auth\$" "uid=\$1,ou=people,dc=test"
database mdb
suffix dc=test
rootdn cn=admin,dc=test
directory $T/ldap-db
maxsize 10485760
access to attrs=userPassword,authzTo by self read by anonymous auth by * none
access to * by self read by users read by anonymous auth
EOF
	cat >"$T/users.ldif" <<'EOF'
dn: dc=test
objectClass: dcObject
objectClass: organization
dc: test
o: test

dn: ou=people,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=spoold,ou=people,dc=test
objectClass: inetOrgPerson
uid: spoold
cn: spoold
sn: proxy
userPassword: proxypw
authzTo: dn.regex:^uid=[^,]+,ou=people,dc=test$

dn: uid=alice,ou=people,dc=test
objectClass: inetOrgPerson
uid: alice
cn: alice
sn: customer
userPassword: secret
EOF
	"$SLAPADD" -f "$T/slapd.conf" -l "$T/users.ldif" >"$T/slapadd.out" 2>&1 ||
		error "slapadd: $(cat "$T/slapadd.out")"
}

# slapd_run - slapd in the foreground (its log: stats), until it answers
slapd_run() {
	echo "==== slapd started $(date '+%T.%N')" >>"$T/slapd.log"
	"$SLAPD" -f "$T/slapd.conf" -h "$LDAPI" -d stats >>"$T/slapd.log" 2>&1 &
	SLAPD_PID=$!
	echo "$SLAPD_PID" >"$T/slapd.pid"
	_i=0
	until ldapwhoami -H "$LDAPI" -x >/dev/null 2>&1; do
		alive "$SLAPD_PID" || fail "slapd exited at its start"
		_i=$((_i + 1)); [ $_i -le 200 ] || fail "slapd does not answer on $LDAPI within 10 s"
		sleep 0.05
	done
}

slapd_stop() {
	kill -CONT "$SLAPD_PID" 2>/dev/null || true	# a stopped slapd cannot exit
	stop_pid "$SLAPD_PID"
	rm -f "$T/slapd.pid"
}

slapd_setup
slapd_run
# what ldapdb does, checked with OpenLDAP's own client first (a failure
# here is the slapd set-up, not spoold): bind as the proxy, then Who am I?
# with the proxied authorization control (RFC 4370) for the user
ldapwhoami -H "$LDAPI" -Y DIGEST-MD5 -U spoold -w proxypw -e '!authzid=u:alice' \
    >"$T/whoami.out" 2>&1 || error "the proxy cannot act for alice: $(cat "$T/whoami.out")"
grep -q '^dn:uid=alice,ou=people,dc=test$' "$T/whoami.out" ||
	error "the proxy acting for alice is not alice's entry: $(cat "$T/whoami.out")"
say "a private slapd on $T/ldapi: the proxy spoold (DIGEST-MD5) may act for alice (authzTo)"

# ---- spoold: ldapdb auxprop ----
write_conf "listen odmr 127.0.0.1:0" "tls-cert $T/cert.pem" "tls-key $T/key.pem" \
    "sasl-option auxprop_plugin ldapdb" \
    "sasl-option ldapdb_uri $LDAPI" \
    "sasl-option ldapdb_id spoold" \
    "sasl-option ldapdb_pw proxypw" \
    "sasl-option ldapdb_mech DIGEST-MD5" \
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

# customer ARG... - tests/odmr_client.py; its transcript in $T/cust.out
customer() {
	python3 "$CLIENT" 127.0.0.1 "$ODMR_PORT" "$@" >"$T/cust.out" 2>&1 || true
}
expect_cust() {
	grep -E -q "$1" "$T/cust.out" || fail "$2: no /$1/ in:
$(cat "$T/cust.out")"
}

# probe MODE ARG... - one-off clients in Python, as in t39; prints what it
# measured, exits 1 on a surprise
probe() {
	python3 - "$ODMR_PORT" "$@" <<'PY'
import base64, hashlib, hmac, os, signal, socket, sys, threading, time
port, mode, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

class Client:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), 30)
        self.f = self.s.makefile("rb")
        self.reply()
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
        """AUTH CRAM-MD5 up to the response, whose answer needs the back end"""
        r = self.cmd("AUTH CRAM-MD5")
        assert r.startswith("334 "), r
        d = hmac.new(password.encode(), base64.b64decode(r[4:]), hashlib.md5).hexdigest()
        self.s.sendall(base64.b64encode((user + " " + d).encode()) + b"\r\n")

if mode == "auth":
    # auth USER PASSWORD: the reply to the response and how long it took
    c = Client()
    c.cram(args[0], args[1])
    t = time.time()
    r = c.reply()
    print("%s after %.2fs" % (r, time.time() - t))
    c.cmd("QUIT")
elif mode == "stopped":
    # stopped SLAPD-PID: slapd stopped for 2 s under an AUTH's lookup; the
    # other session's NOOPs meanwhile, each after the one before was answered
    pid = int(args[0])
    other, waiting, res = Client(), Client(), {}
    def answer():
        res["r"] = waiting.reply()
        res["at"] = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        waiting.cram("alice", "secret")
        th = threading.Thread(target=answer)
        th.start()
        noops, t0 = [], time.time()
        while time.time() - t0 < 2.0:
            t = time.time()
            r = other.cmd("NOOP")
            assert r.startswith("250"), r
            noops.append(time.time() - t)
            time.sleep(0.05)
        early = dict(res)       # nothing may have come while slapd was stopped
    finally:
        cont = time.time()
        os.kill(pid, signal.SIGCONT)
    th.join(20)
    print("slapd stopped 2 s under an AUTH: %d NOOPs meanwhile, the slowest %.1f ms; "
          "the AUTH %s %.2fs after slapd went on" % (len(noops), 1000 * max(noops),
          res.get("r"), res.get("at", cont) - cont))
    assert not early, "answered while slapd was stopped: %r" % early
    assert res.get("r", "").startswith("235"), res
    assert len(noops) >= 5 and max(noops) < 0.5, noops
    waiting.cmd("QUIT")
    other.cmd("QUIT")
elif mode == "down":
    # down: slapd is not running; the AUTH's reply, then another session
    c = Client()
    c.cram("alice", "secret")
    t = time.time()
    r = c.reply()
    print("slapd down: %s after %.2fs" % (r, time.time() - t))
    other = Client()
    n = other.cmd("NOOP")
    print("another session meanwhile: NOOP %s" % n)
    assert n.startswith("250"), n
PY
}

# auth_expect USER PASSWORD REGEX WHAT - a CRAM-MD5 AUTH's reply matches
auth_expect() {
	probe auth "$1" "$2" >"$T/auth.out" 2>&1 || fail "$4: $(cat "$T/auth.out")"
	grep -E -q "^$3" "$T/auth.out" || fail "$4: $(cat "$T/auth.out")"
	say "$4: $(cat "$T/auth.out")"
}

# ---- CRAM-MD5 and ATRN; PLAIN over STARTTLS ----
for _n in 1 2; do
	sw -t "u$_n@cust.test" -f a@x.test
	[ -n "$(sw_queued)" ] || fail "message $_n for cust.test not accepted"
done
mkdir -p "$T/got"
customer --user alice --password secret --mech CRAM-MD5 --atrn cust.test --dir "$T/got"
expect_cust '^< 235 ' "AUTH CRAM-MD5 for alice (in LDAP)"
expect_cust '^< 250 2\.0\.0 OK now reversing the connection' "ATRN after CRAM-MD5"
expect_cust '^event: quit after 2 messages tls=False' "the turned session"
wait_count cust.test 0
[ "$(ls "$T/got" | wc -l)" = 2 ] || fail "the customer stored $(ls "$T/got" | wc -l) messages, expected 2"
say "AUTH CRAM-MD5 with alice's password from LDAP: 235; ATRN cust.test delivered both messages"

sw -t u3@cust.test -f a@x.test
[ -n "$(sw_queued)" ] || fail "message 3 for cust.test not accepted"
customer --tls --user alice --password secret --mech PLAIN --atrn cust.test --dir "$T/got"
expect_cust '^< 235 ' "AUTH PLAIN over STARTTLS for alice"
expect_cust '^event: quit after 1 messages tls=True' "ATRN after PLAIN over TLS"
wait_count cust.test 0
say "AUTH PLAIN over STARTTLS: 235; ATRN delivered under TLS"

# slapd_searches USER - how many times slapd was asked for USER's entry
slapd_searches() {
	grep -c " SRCH base=\"uid=$1,ou=people,dc=test\"" "$T/slapd.log" || true
}

# slapd_looked_up USER BEFORE RESULT - slapd was asked for USER's entry (ldapdb
# reading the password) since it had been BEFORE times, and its last such
# search ended with RESULT ("err=0 .* nentries=1 ": found)
slapd_looked_up() {
	[ "$(slapd_searches "$1")" -gt "$2" ] || fail "slapd was not asked for $1's entry"
	_op=$(sed -n "s/.* \(conn=[0-9]* op=[0-9]*\) SRCH base=\"uid=$1,ou=people,dc=test\".*/\1/p" \
	    "$T/slapd.log" | tail -n 1)
	grep -E -q " $_op SEARCH RESULT .*$3" "$T/slapd.log" ||
		fail "slapd's search for $1 ($_op) did not end with /$3/: $(grep " $_op " "$T/slapd.log")"
}

_n=$(slapd_searches alice)
auth_expect alice wrong '535 ' "a wrong password"
slapd_looked_up alice "$_n" 'err=0 .* nentries=1 '
_n=$(slapd_searches mallory)
auth_expect mallory secret '535 ' "a user not in LDAP"
slapd_looked_up mallory "$_n" 'err=32 .* nentries=0 '
say "slapd was asked both times: alice's entry found (the password differs), mallory's not (noSuchObject)"

# ---- slapd stopped while an AUTH waits on it ----
probe stopped "$SLAPD_PID" >"$T/stopped.out" 2>&1 || {
	kill -CONT "$SLAPD_PID" 2>/dev/null || true
	fail "an AUTH while slapd is stopped: $(cat "$T/stopped.out")"
}
say "$(cat "$T/stopped.out")"

# ---- slapd down: a temporary failure, said so in the log; then back ----
slapd_stop
probe down >"$T/down.out" 2>&1 || fail "AUTH with slapd down: $(cat "$T/down.out")"
grep -q '^slapd down: 454 4\.7\.0 ' "$T/down.out" ||
	fail "AUTH with slapd down is not a temporary failure: $(cat "$T/down.out")"
alive "$SPOOLD_PID" || fail "spoold is gone after an AUTH with slapd down"
grep -E -q "sasl: CRAM-MD5 from unknown\[127\.0\.0\.1\]:[0-9]+: remote authentication server unavailable \(SASL -24\); AUTH answered 454" "$SPOOLD_LOG" ||
	fail "no log line says the LDAP server could not be reached: $(grep 'sasl:' "$SPOOLD_LOG" | tail -n 5)"
say "$(head -n 1 "$T/down.out"), another session served; logged: $(grep -E -m1 'sasl: .*AUTH answered 454' "$SPOOLD_LOG" | sed 's/^.*\(sasl: \)/\1/')"
slapd_run
auth_expect alice secret '235 ' "slapd back: alice again"

stop_spoold
slapd_stop
check_sanitizers
