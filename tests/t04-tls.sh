#!/bin/sh
# t04-tls.sh - STARTTLS (RFC 3207): offered only with a certificate, swaks and
# gnutls-cli get through, sequence errors, and no plaintext command injection
# across the handshake (CVE-2011-0411).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need certtool gnutls-cli
need_swaks TLS

# ---- without a certificate: no STARTTLS, 502 ----
write_conf
start_spoold
chat <<'EOF' || fail "STARTTLS without a certificate"
expect ^220 
send EHLO client.test\r\n
expect (?s)\A250-mx\.test\n(?!.*STARTTLS).*^250 
send STARTTLS\r\n
expect ^502 5\.5\.1
send NOOP\r\n
expect ^250 
send QUIT\r\n
expect ^221 
EOF
stop_spoold
say "no certificate: STARTTLS not in EHLO, 502 5.5.1"

# ---- with a certificate ----
make_cert
write_conf "tls-cert $T/cert.pem" "tls-key $T/key.pem"
start_spoold

chat <<'EOF' || fail "EHLO with a certificate does not offer STARTTLS"
expect ^220 
send EHLO client.test\r\n
expect (?s)\A250-mx\.test\n.*^250[- ]STARTTLS$
send QUIT\r\n
expect ^221 
EOF
say "certificate: EHLO offers STARTTLS"
fds_baseline

sw --tls -f tls@x.test -t tls@example.test
[ $SW_RC -eq 0 ] || fail "swaks --tls: exit $SW_RC: $(cat "$T/swaks.out")"
grep -q '^=== TLS started' "$T/swaks.out" || fail "swaks --tls: TLS not started: $(cat "$T/swaks.out")"
sw_expect '250 2\.0\.0 Ok: queued as [0-9a-f]{16}$' "swaks --tls"
expect_count example.test 1
say "swaks --tls delivers"

printf 'EHLO gnutls.test\r\nQUIT\r\n' |
    timeout 15 gnutls-cli --insecure --starttls-proto=smtp --port "$SMTP_PORT" 127.0.0.1 \
    >"$T/gnutls-cli.out" 2>&1 || true
grep -q 'Handshake was completed' "$T/gnutls-cli.out" ||
	fail "gnutls-cli --starttls-proto=smtp: no handshake: $(cat "$T/gnutls-cli.out")"
grep -q '^250[- ]mx\.test' "$T/gnutls-cli.out" ||
	fail "gnutls-cli: no EHLO reply inside TLS: $(cat "$T/gnutls-cli.out")"
grep -q '^221 ' "$T/gnutls-cli.out" ||
	fail "gnutls-cli: no QUIT reply inside TLS: $(cat "$T/gnutls-cli.out")"
say "gnutls-cli --starttls-proto=smtp: handshake, EHLO and QUIT inside TLS"

# ---- inside TLS: EHLO again, no second STARTTLS ----
chat <<'EOF' || fail "sequence inside TLS"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send MAIL FROM:<before@x.test>\r\n
expect ^250 
send STARTTLS\r\n
expect ^503 5\.5\.1
send RSET\r\n
expect ^250 
send STARTTLS now\r\n
expect ^501 
send STARTTLS\r\n
expect ^220 
starttls
send MAIL FROM:<tls@x.test>\r\n
expect ^503 5\.5\.1
send EHLO client.test\r\n
expect (?s)\A250-mx\.test\n(?!.*STARTTLS)
send STARTTLS\r\n
expect ^503 5\.5\.1
send MAIL FROM:<tls@x.test>\r\n
expect ^250 
send RCPT TO:<inside@example.test>\r\n
expect ^250 
send DATA\r\n
expect ^354 
send Subject: tls\r\n\r\ninside\r\n.\r\n
expect ^250 2\.0\.0 Ok: queued as [0-9a-f]{16}$
send QUIT\r\n
expect ^221 
EOF
expect_count example.test 2
say "after STARTTLS: MAIL before EHLO 503, EHLO without STARTTLS, second STARTTLS 503, delivery works"

# ---- CVE-2011-0411: plaintext pipelined after STARTTLS is discarded ----
chat <<'EOF' || fail "CVE-2011-0411: a command sent with STARTTLS in plaintext was answered"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send STARTTLS\r\nRSET\r\n
expect ^220 
starttls
expect_silence 1
send EHLO client.test\r\n
expect \A250-mx\.test
send QUIT\r\n
expect ^221 
EOF
chat <<'EOF' || fail "CVE-2011-0411: an injected transaction was executed inside TLS"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<injected@example.test>\r\n
expect ^220 
starttls
expect_silence 1
send MAIL FROM:<good@x.test>\r\n
expect ^503 5\.5\.1
send QUIT\r\n
expect ^221 
EOF
expect_count example.test 2
say "CVE-2011-0411: plaintext after STARTTLS discarded, nothing answered inside TLS"

# ---- a failed handshake costs only that connection ----
chat <<'EOF' || fail "garbage instead of a TLS handshake"
expect ^220 
send EHLO client.test\r\n
expect ^250 
send STARTTLS\r\n
expect ^220 
send this is not a TLS ClientHello\r\n\r\n
sleep 0.3
EOF
chat <<'EOF' || fail "spoold does not answer after a failed handshake"
expect ^220 
send QUIT\r\n
expect ^221 
EOF
say "a failed handshake does not hurt other clients"

fds_unchanged "after the TLS sessions"
say "no descriptor leaked or closed by mistake"

stop_spoold
exit 0
