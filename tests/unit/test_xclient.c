/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_xclient.c - unit tests for shared/xclient.c: XCLIENT's attributes
 * decoded (xtext, IPV6:, [UNAVAILABLE]) and bad ones named.  Links only
 * xclient.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "xclient.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char	*name, *arg;
	const char	*bad;		/* NULL: taken */
	const char	*addr;		/* when ADDR is set */
	int		 port;		/* -1: not set */
	const char	*helo;		/* NULL: not set */
	const char	*login;		/* NULL: not set */
	int		 proto;		/* -1 not set, 0 SMTP, 1 ESMTP */
} cases[] = {
	{ "all", "ADDR=192.0.2.7 NAME=c.example PORT=4242 PROTO=ESMTP HELO=c.example LOGIN=al+2Bice",
	    NULL, "192.0.2.7", 4242, "c.example", "al+ice", 1 },
	{ "ipv6", "addr=IPV6:2001:db8::7 proto=smtp", NULL, "2001:db8::7", -1, NULL, NULL, 0 },
	{ "unavailable", "ADDR=[UNAVAILABLE] PORT=[TEMPUNAVAIL] HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE]",
	    NULL, NULL, -1, "", "", -1 },
	{ "name only", "NAME=[UNAVAILABLE]", NULL, NULL, -1, NULL, NULL, -1 },
	{ "unknown", "ADDR=192.0.2.7 FOO=bar", "FOO", NULL, -1, NULL, NULL, -1 },
	{ "no value sign", "ADDR", "ADDR", NULL, -1, NULL, NULL, -1 },
	{ "no name", "=x", "=x", NULL, -1, NULL, NULL, -1 },
	{ "bad address", "ADDR=192.0.2.777", "ADDR", NULL, -1, NULL, NULL, -1 },
	{ "v6 without IPV6:", "ADDR=2001:db8::7", "ADDR", NULL, -1, NULL, NULL, -1 },
	{ "port too big", "PORT=65536", "PORT", NULL, -1, NULL, NULL, -1 },
	{ "port sign", "PORT=-1", "PORT", NULL, -1, NULL, NULL, -1 },
	{ "port empty", "PORT=", "PORT", NULL, -1, NULL, NULL, -1 },
	{ "proto", "PROTO=LMTP", "PROTO", NULL, -1, NULL, NULL, -1 },
	{ "xtext LF", "HELO=a+0Ab", "HELO", NULL, -1, NULL, NULL, -1 },
	{ "xtext space", "HELO=a+20b", "HELO", NULL, -1, NULL, NULL, -1 },
	{ "xtext short", "HELO=a+4", "HELO", NULL, -1, NULL, NULL, -1 },
	{ "xtext raw =", "LOGIN=a=b", "LOGIN", NULL, -1, NULL, NULL, -1 },
	{ "xtext 8-bit", "LOGIN=\xc3\xa9", "LOGIN", NULL, -1, NULL, NULL, -1 },
};

START_TEST(test_parse)
{
	struct xclient x;
	char bad[40], text[INET6_ADDRSTRLEN];
	const char *rc = xclient_parse(cases[_i].arg, &x, bad, sizeof(bad));

	if (cases[_i].bad != NULL) {
		ck_assert_msg(rc != NULL, "%s: taken", cases[_i].name);
		ck_assert_str_eq(rc, cases[_i].bad);
		return;
	}
	ck_assert_msg(rc == NULL, "%s: refused at %s", cases[_i].name, rc ? rc : "");
	ck_assert_int_eq(x.addr_set, cases[_i].addr != NULL);
	if (x.addr_set) {
		const void *a = x.addr.ss_family == AF_INET ?
		    (const void *)&((struct sockaddr_in *)&x.addr)->sin_addr :
		    (const void *)&((struct sockaddr_in6 *)&x.addr)->sin6_addr;

		ck_assert_ptr_nonnull(inet_ntop(x.addr.ss_family, a, text, sizeof(text)));
		ck_assert_str_eq(text, cases[_i].addr);
	}
	ck_assert_int_eq(x.port_set ? x.port : -1, cases[_i].port);
	ck_assert_int_eq(x.helo_set, cases[_i].helo != NULL);
	if (x.helo_set)
		ck_assert_str_eq(x.helo, cases[_i].helo);
	ck_assert_int_eq(x.login_set, cases[_i].login != NULL);
	if (x.login_set)
		ck_assert_str_eq(x.login, cases[_i].login);
	ck_assert_int_eq(x.proto_set ? x.esmtp : -1, cases[_i].proto);
}
END_TEST

START_TEST(test_too_long)
{
	char arg[600], bad[40];
	struct xclient x;

	memset(arg, 'a', sizeof(arg) - 1);
	memcpy(arg, "LOGIN=", 6);
	arg[sizeof(arg) - 1] = '\0';
	ck_assert_ptr_nonnull(xclient_parse(arg, &x, bad, sizeof(bad)));
	arg[300] = '\0';	/* longer than the 255 LOGIN holds */
	ck_assert_str_eq(xclient_parse(arg, &x, bad, sizeof(bad)), "LOGIN");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("xclient");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_parse, 0, (int)NELEM(cases));
	tcase_add_test(tc, test_too_long);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
