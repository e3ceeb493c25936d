/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_proxy_proto.c - unit tests for shared/proxy_proto.c: v1 and v2
 * headers parsed to the right addresses and length (never past the header),
 * short input asks for more, and malformed or oversized headers are
 * refused.  Links only proxy_proto.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define V2SIG		"\r\n\r\n\0\r\nQUIT\n"

struct pcase {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 want;		/* proxy_parse's return */
	int		 local;
	const char	*src;		/* address text, when want > 0 and !local */
	int		 sport;
};

#define T(s)	s, sizeof(s) - 1
static const struct pcase cases[] = {
	{ "v1 tcp4", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n", 0, 44, 0, "192.0.2.7", 40000 },
	{ "v1 tcp4, SMTP after", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n", 0, 44, 0,
	    "192.0.2.7", 40000 },
	{ "v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 1 25\r\n", 0, 41, 0, "2001:db8::7", 1 },
	{ "v1 unknown", "PROXY UNKNOWN\r\n", 0, 15, 1, NULL, 0 },
	{ "v1 unknown, more", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 0, 35, 1, NULL, 0 },
	{ "v1 partial", "PROXY TCP4 192.0.2.7 ", 0, 0, 0, NULL, 0 },
	{ "v1 prefix", "PRO", 0, 0, 0, NULL, 0 },
	{ "empty", "", 0, 0, 0, NULL, 0 },
	{ "smtp command", "EHLO example.com\r\n", 0, -1, 0, NULL, 0 },
	{ "lower case", "proxy TCP4 192.0.2.7 198.51.100.1 40000 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 bare LF", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\n", 0, -1, 0, NULL, 0 },
	{ "v1 two spaces", "PROXY TCP4  192.0.2.7 198.51.100.1 40000 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 port too big", "PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 port leading 0", "PROXY TCP4 192.0.2.7 198.51.100.1 0250 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 port sign", "PROXY TCP4 192.0.2.7 198.51.100.1 +25 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 v6 in tcp4", "PROXY TCP4 2001:db8::7 2001:db8::1 1 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 bad address", "PROXY TCP4 192.0.2.777 198.51.100.1 1 25\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 missing port", "PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 extra field", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 udp", "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 NUL", T("PROXY TCP4 192.0.2.7\0 198.51.100.1 1 2\r\n"), -1, 0, NULL, 0 },
	{ "v1 107 bytes", "PROXY UNKNOWN 0123456789012345678901234567890123456789012345678901234567890"
	    "123456789012345678901234567890\r\n", 0, 107, 1, NULL, 0 },
	{ "v1 108 bytes", "PROXY UNKNOWN 0123456789012345678901234567890123456789012345678901234567890"
	    "1234567890123456789012345678901\r\n", 0, -1, 0, NULL, 0 },
	{ "v1 107 without LF", "PROXY UNKNOWN 0123456789012345678901234567890123456789012345678901234567"
	    "89012345678901234567890123456789012", 0, -1, 0, NULL, 0 },
	{ "v2 tcp4", T(V2SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01" "\x9c\x40\x00\x19"),
	    28, 0, "192.0.2.7", 40000 },
	{ "v2 tcp4, SMTP after", T(V2SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01"
	    "\x9c\x40\x00\x19" "EHLO x\r\n"), 28, 0, "192.0.2.7", 40000 },
	{ "v2 tcp4 with TLV", T(V2SIG "\x21\x11\x00\x10" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01"
	    "\x9c\x40\x00\x19" "\x04\x00\x01\x00"), 32, 0, "192.0.2.7", 40000 },
	{ "v2 tcp6", T(V2SIG "\x21\x21\x00\x24" "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" "\x00\x01\x00\x19"), 52, 0, "2001:db8::7", 1 },
	{ "v2 local", T(V2SIG "\x20\x00\x00\x00"), 16, 1, NULL, 0 },
	{ "v2 local with addresses", T(V2SIG "\x20\x11\x00\x0c" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01"
	    "\x9c\x40\x00\x19"), 28, 1, NULL, 0 },
	{ "v2 unspec", T(V2SIG "\x21\x00\x00\x00"), 16, 1, NULL, 0 },
	{ "v2 sig prefix", T(V2SIG), 0, 0, NULL, 0 },
	{ "v2 sig part", T("\r\n\r\n\0"), 0, 0, NULL, 0 },
	{ "v2 partial body", T(V2SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x07"), 0, 0, NULL, 0 },
	{ "v2 bad sig", T("\r\n\r\n\0\r\nQUIT\r\x21\x11\x00\x0c"), -1, 0, NULL, 0 },
	{ "v2 version 1", T(V2SIG "\x11\x11\x00\x0c"), -1, 0, NULL, 0 },
	{ "v2 command 2", T(V2SIG "\x22\x11\x00\x0c"), -1, 0, NULL, 0 },
	{ "v2 too long", T(V2SIG "\x21\x11\x06\x01"), -1, 0, NULL, 0 },
	{ "v2 longest", T(V2SIG "\x21\x00\x06\x00"), 0, 0, NULL, 0 },
	{ "v2 short inet", T(V2SIG "\x21\x11\x00\x08" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01"), -1, 0,
	    NULL, 0 },
	{ "v2 udp", T(V2SIG "\x21\x12\x00\x0c" "\xc0\x00\x02\x07" "\xc6\x33\x64\x01" "\x9c\x40\x00\x19"),
	    -1, 0, NULL, 0 },
	{ "v2 family 4", T(V2SIG "\x21\x41\x00\x00"), -1, 0, NULL, 0 },
};

START_TEST(test_parse)
{
	const struct pcase *c = &cases[_i];
	size_t len = c->len ? c->len : strlen(c->in);
	char *in = malloc(len ? len : 1), text[INET6_ADDRSTRLEN];	/* exact size: ASan sees an overread */
	struct proxy_header h;
	const char *why;
	int rc;

	ck_assert_ptr_nonnull(in);
	memcpy(in, c->in, len);
	memset(&h, 0x55, sizeof(h));
	rc = proxy_parse(in, len, &h, &why);
	ck_assert_msg(rc == c->want, "%s: got %d, want %d (%s)", c->name, rc, c->want, why);
	if (rc < 0)
		ck_assert_msg(why[0] != '\0', "%s: no reason", c->name);
	if (rc > 0) {
		ck_assert_int_eq(h.local, c->local);
		ck_assert_int_eq(h.version, c->in[0] == 'P' ? 1 : 2);
	}
	if (rc > 0 && !c->local) {
		const void *a = h.src.ss_family == AF_INET ?
		    (const void *)&((struct sockaddr_in *)&h.src)->sin_addr :
		    (const void *)&((struct sockaddr_in6 *)&h.src)->sin6_addr;
		int port = ntohs(h.src.ss_family == AF_INET ? ((struct sockaddr_in *)&h.src)->sin_port :
		    ((struct sockaddr_in6 *)&h.src)->sin6_port);

		ck_assert_ptr_nonnull(inet_ntop(h.src.ss_family, a, text, sizeof(text)));
		ck_assert_str_eq(text, c->src);
		ck_assert_int_eq(port, c->sport);
		ck_assert_int_eq(h.dst.ss_family, h.src.ss_family);
	}
	free(in);
}
END_TEST

/* every prefix of a valid header asks for more, never refuses it */
START_TEST(test_prefixes)
{
	const struct pcase *c = &cases[_i];
	size_t len = c->len ? c->len : strlen(c->in);
	struct proxy_header h;
	const char *why;

	if (c->want <= 0)
		return;
	for (size_t n = 0; n < (size_t)c->want; n++) {
		char *in = malloc(n ? n : 1);

		ck_assert_ptr_nonnull(in);
		memcpy(in, c->in, n);
		ck_assert_msg(proxy_parse(in, n, &h, &why) == 0, "%s: prefix %zu of %zu", c->name, n,
		    len);
		free(in);
	}
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy_proto");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse, 0, (int)NELEM(cases));
	tcase_add_loop_test(tc, test_prefixes, 0, (int)NELEM(cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proxy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
