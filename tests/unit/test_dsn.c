/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_dsn.c - unit tests for spoold/dsn.c: NOTIFY rules, status codes
 * taken from replies, and the composed report's structure (RFC 3464), with
 * hostile reply text, ENVID and ORCPT that must not add lines or parts.
 * Links dsn.c, buf.c and smtp_cmd.c (for xtext).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"
#include "dsn.h"

static const char ORIG[] =
    "Subject: hello\r\nFrom: a@home.test\r\nMessage-ID: <m1@home.test>\r\n\r\nthe body\r\n";

START_TEST(test_notify)
{
	ck_assert(dsn_notify_allows(0, DSN_FAILED));
	ck_assert(dsn_notify_allows(0, DSN_DELAYED));
	ck_assert(!dsn_notify_allows(NOTIFY_NEVER, DSN_FAILED));
	ck_assert(!dsn_notify_allows(NOTIFY_SUCCESS, DSN_FAILED));
	ck_assert(dsn_notify_allows(NOTIFY_SUCCESS | NOTIFY_FAILURE, DSN_FAILED));
	ck_assert(!dsn_notify_allows(NOTIFY_FAILURE, DSN_DELAYED));
	ck_assert(dsn_notify_allows(NOTIFY_DELAY, DSN_DELAYED));
}
END_TEST

START_TEST(test_status)
{
	static const struct { const char *reply, *status; } t[] = {
		{ "550 5.1.1 no such user", "5.1.1" },
		{ "550-5.7.1 multi", "5.7.1" },
		{ "550 no enhanced code", "5.0.0" },
		{ "552 5.3.4 too big", "5.3.4" },
		{ "554 4.4.7 wrong class", "5.0.0" },	/* class must match the reply */
		{ "451 4.3.0 try later", "4.3.0" },
		{ "550 5.1234.1 bad", "5.0.0" },
		{ "550 5.1.1234 bad", "5.0.0" },
		{ "", "5.0.0" },
		{ "garbage", "5.0.0" },
	};
	char out[16];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		dsn_status(t[i].reply, out, sizeof(out));
		ck_assert_msg(strcmp(out, t[i].status) == 0, "\"%s\" gave %s, want %s", t[i].reply,
		    out, t[i].status);
	}
}
END_TEST

static char *
compose(struct dsn_report *r, int *eight_bit)
{
	struct buf b;
	char *s;

	buf_init(&b);
	ck_assert_int_eq(dsn_compose(r, &b, eight_bit), 0);
	s = strndup(buf_head(&b), buf_used(&b));
	buf_free(&b);
	return s;
}

static struct dsn_rcpt rc[2] = {
	{ "u1@site.test", "rfc822", "orig@site.test", "550 5.1.1 no such user", "[192.0.2.1]" },
	{ "u2@site.test", "", "", "552 5.3.4 too big", "[192.0.2.1]" },
};

static struct dsn_report
report(void)
{
	return (struct dsn_report){ .reporting_mta = "mx.test", .queue_id = 0x1234,
	    .sender = "a@home.test", .envid = "env-1", .arrival = 1700000000, .now = 1700000600,
	    .action = DSN_FAILED, .rcpts = rc, .nrcpts = 2, .orig = ORIG,
	    .origlen = sizeof(ORIG) - 1, .orig_complete = 1 };
}

START_TEST(test_compose_fields)
{
	struct dsn_report r = report();
	int e8 = -1;
	char *s = compose(&r, &e8);

	ck_assert_int_eq(e8, 0);
	ck_assert_ptr_nonnull(strstr(s, "\r\nTo: <a@home.test>\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;"));
	ck_assert_ptr_nonnull(strstr(s, "\r\nAuto-Submitted: auto-replied\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; mx.test\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "\r\nOriginal-Envelope-Id: env-1\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "\r\nArrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; u1@site.test\r\n"
	    "Original-Recipient: rfc822; orig@site.test\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; [192.0.2.1]\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; u2@site.test\r\n"
	    "Action: failed\r\nStatus: 5.3.4\r\n"));
	/* RET not FULL: the header only */
	ck_assert_ptr_nonnull(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n"));
	ck_assert_ptr_null(strstr(s, "the body"));
	ck_assert_ptr_nonnull(strstr(s, "<u1@site.test>: host [192.0.2.1] said: 550 5.1.1 no such user\r\n"));
	/* no bare LF anywhere */
	for (char *p = strchr(s, '\n'); p != NULL; p = strchr(p + 1, '\n'))
		ck_assert_msg(p > s && p[-1] == '\r', "bare LF at %td", p - s);
	free(s);
}
END_TEST

START_TEST(test_compose_full_and_8bit)
{
	static const char orig8[] = "Subject: caf\xc3\xa9\r\n\r\nbody \xc3\xa9\r\n";
	struct dsn_report r = report();
	int e8 = 0;
	char *s;

	r.ret_full = 1;
	r.orig = orig8;
	r.origlen = sizeof(orig8) - 1;
	s = compose(&r, &e8);
	ck_assert_int_eq(e8, 1);
	ck_assert_ptr_nonnull(strstr(s, "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\nSubject: caf\xc3\xa9\r\n\r\nbody"));
	free(s);
	/* RET=FULL but only the start was read: headers only */
	r.orig_complete = 0;
	s = compose(&r, &e8);
	ck_assert_ptr_nonnull(strstr(s, "text/rfc822-headers"));
	ck_assert_ptr_null(strstr(s, "body \xc3\xa9"));
	free(s);
}
END_TEST

START_TEST(test_compose_hostile)
{
	static struct dsn_rcpt bad[1] = {
		{ "u1@site.test", "rfc822", "x\r\nAction: delivered",
		  "550 5.1.1 evil\r\nContent-Type: text/html\r\n\r\n--boundary", "[192.0.2.1]\r\nX: y" },
	};
	/* the original contains what the first boundary would be */
	static const char orig[] = "Subject: x\r\n\r\n--0000000000001234.1700000600.0=_spoold\r\n";
	struct dsn_report r = report();
	int e8;
	char *s;

	r.rcpts = bad;
	r.nrcpts = 1;
	r.envid = "e\r\nBcc: victim@example.com";
	r.orig = orig;
	r.origlen = sizeof(orig) - 1;
	r.ret_full = 1;
	s = compose(&r, &e8);
	ck_assert_ptr_null(strstr(s, "\r\nContent-Type: text/html"));
	ck_assert_ptr_null(strstr(s, "\r\nBcc:"));
	ck_assert_ptr_null(strstr(s, "\r\nAction: delivered"));
	ck_assert_ptr_null(strstr(s, "\r\nX: y"));
	ck_assert_ptr_nonnull(strstr(s, "Original-Envelope-Id: e+0D+0ABcc:+20victim@example.com\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "boundary=\"0000000000001234.1700000600.1=_spoold\""));
	free(s);
}
END_TEST

START_TEST(test_compose_no_header_section)
{
	static const char orig[] = "\r\nonly a body\r\n";
	struct dsn_report r = report();
	int e8;
	char *s;

	r.orig = orig;
	r.origlen = sizeof(orig) - 1;
	s = compose(&r, &e8);
	ck_assert_ptr_null(strstr(s, "only a body"));
	ck_assert_ptr_nonnull(strstr(s, "text/rfc822-headers\r\n\r\n\r\n--"));
	free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dsn");
	TCase *tc = tcase_create("dsn");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_compose_fields);
	tcase_add_test(tc, test_compose_full_and_8bit);
	tcase_add_test(tc, test_compose_hostile);
	tcase_add_test(tc, test_compose_no_header_section);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
