/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_smtp_reply.c - unit tests for shared/smtp_reply.c: the reply table is
 * consistent, and smtp_reply_format() substitutes arguments literally, keeps
 * client text from breaking the line and never writes past its buffer.
 * Links only smtp_reply.c.
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* status_ok - RFC 3463 2: class "." subject "." detail, 1-3 digits each */
static int
status_ok(const char *s)
{
	int parts = 0;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (;;) {
		size_t n = 0;

		while (isdigit((unsigned char)s[n]))
			n++;
		if (n == 0 || n > 3 || (parts == 0 && n != 1))
			return 0;
		s += n;
		parts++;
		if (*s == '\0')
			return parts == 3;
		if (*s++ != '.')
			return 0;
	}
}

START_TEST(test_table_entry)
{
	const struct smtp_reply *r = smtp_reply_get((enum smtp_reply_id)_i);
	const char *p;

	ck_assert_msg(r->id == (enum smtp_reply_id)_i, "entry %d has id %d", _i, r->id);
	/* code 0: the line comes whole from its producer (a filter's, checked) */
	ck_assert_msg((r->code >= 200 && r->code <= 599) || (r->code == 0 && r->id == R_FILTER_REPLY),
	    "entry %d: code %d", _i, r->code);
	ck_assert_msg(r->text != NULL && r->text[0] != '\0', "entry %d: no text", _i);
	ck_assert_msg(r->rfc != NULL && r->rfc[0] != '\0', "entry %d: no RFC reference", _i);
	ck_assert_msg(strpbrk(r->text, "\r\n") == NULL, "entry %d: CR or LF in text", _i);
	/* the only % allowed is the %s marker */
	for (p = strchr(r->text, '%'); p != NULL; p = strchr(p + 2, '%'))
		ck_assert_msg(p[1] == 's', "entry %d: stray %% in \"%s\"", _i, r->text);
	if (r->status != NULL) {
		ck_assert_msg(status_ok(r->status), "entry %d: bad status \"%s\"", _i, r->status);
		ck_assert_msg(r->status[0] - '0' == r->code / 100, "entry %d: status %s with code %d",
		    _i, r->status, r->code);
	}
}
END_TEST

START_TEST(test_status_syntax)
{
	ck_assert(status_ok("2.0.0"));
	ck_assert(status_ok("5.7.11"));
	ck_assert(status_ok("4.123.456"));
	ck_assert(!status_ok("3.0.0"));
	ck_assert(!status_ok("5.0"));
	ck_assert(!status_ok("5.0.0.0"));
	ck_assert(!status_ok("55.0.0"));
	ck_assert(!status_ok("5..0"));
	ck_assert(!status_ok("5.0.1234"));
}
END_TEST

/* codes the DESIGN brief says users' tools expect */
START_TEST(test_expected_codes)
{
	static const struct { enum smtp_reply_id id; int code; const char *status; } want[] = {
		{ R_RELAY_DENIED, 554, "5.7.1" },
		{ R_UNKNOWN_USER, 550, "5.1.1" },
		{ R_SIZE_EXCEEDED, 552, "5.3.4" },
		{ R_TOO_MANY_RCPTS, 452, "4.5.3" },
		{ R_SPOOL_FULL, 452, "4.3.1" },
		{ R_LINE_TOO_LONG, 500, "5.5.2" },
		{ R_BAD_SEQUENCE, 503, "5.5.1" },
		{ R_TIMEOUT, 421, "4.4.2" },
		{ R_TOO_MANY_CONNS, 421, "4.7.0" },
		{ R_LOOP, 554, "5.4.6" },
		{ R_BAD_LINE_ENDING, 550, "5.6.0" },
		{ R_XCLIENT_DENIED, 550, "5.7.0" },
		{ R_XCLIENT_ATTR, 501, "5.5.4" },
	};

	for (size_t i = 0; i < NELEM(want); i++) {
		const struct smtp_reply *r = smtp_reply_get(want[i].id);

		ck_assert_int_eq(r->code, want[i].code);
		ck_assert_str_eq(r->status, want[i].status);
	}
}
END_TEST

START_TEST(test_get_out_of_range)
{
	ck_assert_int_eq(smtp_reply_get(R__COUNT)->id, R_LOCAL_ERROR);
	ck_assert_int_eq(smtp_reply_get((enum smtp_reply_id)-1)->id, R_LOCAL_ERROR);
}
END_TEST

struct format_case {
	const char		*name;
	enum smtp_reply_id	 id;
	int			 enhanced;
	const char		*arg;		/* NULL: no argument given */
	const char		*want;
};

static const struct format_case format_cases[] = {
	{ "queued enhanced", R_QUEUED, 1, "0000000000000001", "250 2.0.0 Ok: queued as 0000000000000001\r\n" },
	{ "queued plain", R_QUEUED, 0, "X", "250 Ok: queued as X\r\n" },
	{ "no status to add", R_DATA_GO, 1, NULL, "354 End data with <CR><LF>.<CR><LF>\r\n" },
	{ "greeting", R_GREETING, 1, "mx.example", "220 mx.example ESMTP spoold\r\n" },
	{ "missing argument left empty", R_GREETING, 1, NULL, "220  ESMTP spoold\r\n" },
	{ "argument not a format", R_SYNTAX, 1, "%s%n%x%%", "501 5.5.4 Syntax: %s%n%x%%\r\n" },
	{ "CRLF injection", R_QUEUED, 1, "x\r\n250 2.0.0 fake", "250 2.0.0 Ok: queued as x  250 2.0.0 fake\r\n" },
	{ "bare LF injection", R_UNKNOWN_PARAM, 1, "A\nB\rC", "555 5.5.4 Unsupported parameter A B C\r\n" },
	{ "no marker, argument ignored", R_RSET, 1, "ignored", "250 2.0.0 Ok\r\n" },
};

START_TEST(test_format)
{
	const struct format_case *tc = &format_cases[_i];
	const char *args[1] = { tc->arg };
	char out[512];
	size_t n;

	n = smtp_reply_format(out, sizeof(out), tc->id, tc->enhanced, args, tc->arg ? 1 : 0);
	ck_assert_msg(strcmp(out, tc->want) == 0, "%s: got \"%s\"", tc->name, out);
	ck_assert_uint_eq(n, strlen(tc->want));
}
END_TEST

START_TEST(test_format_null_arg)
{
	const char *args[1] = { NULL };
	char out[128];

	smtp_reply_format(out, sizeof(out), R_QUEUED, 1, args, 1);
	ck_assert_str_eq(out, "250 2.0.0 Ok: queued as \r\n");
	smtp_reply_format(out, sizeof(out), R_QUEUED, 1, NULL, 0);
	ck_assert_str_eq(out, "250 2.0.0 Ok: queued as \r\n");
}
END_TEST

/* check_line - a well-formed, possibly clipped, reply of length n */
static void
check_line(const char *out, size_t n, size_t dstlen, int code, const char *what)
{
	char digits[4];

	ck_assert_msg(n < dstlen, "%s: length %zu, dstlen %zu", what, n, dstlen);
	ck_assert_msg(out[n] == '\0' && strlen(out) == n, "%s: length %zu but strlen %zu", what, n, strlen(out));
	ck_assert_msg(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n', "%s: no CRLF at the end", what);
	ck_assert_msg(strpbrk(out, "\r\n") == out + n - 2, "%s: CR or LF inside the line", what);
	snprintf(digits, sizeof(digits), "%d", code);
	if (n >= 5 && code != 0)	/* code 0: the argument is the line */
		ck_assert_msg(strncmp(out, digits, 3) == 0, "%s: \"%s\" does not start with the code", what, out);
}

/* every reply, with a long hostile argument, into buffers of every size
 * from 8 to 80: clipped, terminated, CRLF-ended, nothing written past dstlen */
START_TEST(test_format_small_buffers)
{
	enum smtp_reply_id id = (enum smtp_reply_id)_i;
	char arg[600], buf[256];
	const char *args[2] = { arg, arg };

	for (size_t i = 0; i < sizeof(arg) - 1; i++)
		arg[i] = i % 50 == 49 ? '\n' : "abc\r"[i % 4];
	arg[sizeof(arg) - 1] = '\0';
	for (size_t dstlen = 8; dstlen <= 80; dstlen++) {
		for (int enhanced = 0; enhanced <= 1; enhanced++) {
			char what[64];
			size_t n;

			memset(buf, 'Z', sizeof(buf));
			n = smtp_reply_format(buf, dstlen, id, enhanced, args, 2);
			snprintf(what, sizeof(what), "reply %d dstlen %zu enhanced %d", _i, dstlen, enhanced);
			for (size_t j = dstlen; j < sizeof(buf); j++)
				ck_assert_msg(buf[j] == 'Z', "%s: wrote at offset %zu", what, j);
			check_line(buf, n, dstlen, smtp_reply_get(id)->code, what);
		}
	}
}
END_TEST

START_TEST(test_format_tiny_buffer)
{
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	for (size_t dstlen = 0; dstlen < 8; dstlen++)
		ck_assert_uint_eq(smtp_reply_format(buf, dstlen, R_SYNTAX, 1, NULL, 0), 0);
	for (size_t j = 0; j < sizeof(buf); j++)
		ck_assert_int_eq(buf[j], 'Z');
}
END_TEST

/* the sizes the brief names, with a short argument: a clean clip */
START_TEST(test_format_clip_16_64)
{
	const char *args[1] = { "client.example.net" };
	char buf[128];
	size_t n;

	memset(buf, 'Z', sizeof(buf));
	n = smtp_reply_format(buf, 16, R_QUEUED, 1, args, 1);
	ck_assert_uint_eq(n, 15);
	ck_assert_int_eq(memcmp(buf, "250 2.0.0 Ok:\r\n", 16), 0);
	ck_assert_int_eq(buf[16], 'Z');

	memset(buf, 'Z', sizeof(buf));
	n = smtp_reply_format(buf, 64, R_QUEUED, 1, args, 1);
	ck_assert_str_eq(buf, "250 2.0.0 Ok: queued as client.example.net\r\n");
	ck_assert_uint_eq(n, strlen(buf));
	ck_assert_int_eq(buf[64], 'Z');
}
END_TEST

static Suite *
smtp_reply_suite(void)
{
	Suite *s = suite_create("smtp_reply");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_loop_test(tc, test_table_entry, 0, R__COUNT);
	tcase_add_test(tc, test_status_syntax);
	tcase_add_test(tc, test_expected_codes);
	tcase_add_test(tc, test_get_out_of_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_loop_test(tc, test_format, 0, (int)NELEM(format_cases));
	tcase_add_test(tc, test_format_null_arg);
	tcase_add_loop_test(tc, test_format_small_buffers, 0, R__COUNT);
	tcase_add_test(tc, test_format_tiny_buffer);
	tcase_add_test(tc, test_format_clip_16_64);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
