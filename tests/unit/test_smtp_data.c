/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_smtp_data.c - unit tests for shared/smtp_data.c, the DATA phase
 * parser: end marker, dot-unstuffing, smuggling variants, flags and the
 * Received: count.  Every case runs twice: the input in one call, then one
 * byte per call, and both must give the same result.  Links only
 * smtp_data.c.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define OUT_MAX		4096

struct sink {
	char	data[OUT_MAX];
	size_t	len;
	size_t	calls;
};

static void
sink_append(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	ck_assert_uint_le(s->len + n, sizeof(s->data));
	ck_assert_uint_gt(n, 0);
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->calls++;
}

struct data_case {
	const char	*name;
	const char	*input;
	size_t		 len;		/* 0: strlen(input) */
	int		 done;
	size_t		 consumed;	/* when done: bytes up to the end marker */
	const char	*out;
	size_t		 outlen;	/* 0: strlen(out) */
	unsigned	 flags;
	unsigned	 received;
};

#define MAIL_CMD	"MAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y.example>\r\nDATA\r\nsmuggled\r\n.\r\n"

static const struct data_case data_cases[] = {
	{ "empty message", ".\r\n", 0, 1, 3, "", 0, 0, 0 },
	{ "one line", "a\r\n.\r\n", 0, 1, 6, "a\r\n", 0, 0, 0 },
	{ "two lines", "a\r\nbc\r\n.\r\n", 0, 1, 10, "a\r\nbc\r\n", 0, 0, 0 },
	{ "dot-stuffed", "..x\r\n.\r\n", 0, 1, 8, ".x\r\n", 0, 0, 0 },
	{ "dot-stuffed lone dot", "..\r\n.\r\n", 0, 1, 7, ".\r\n", 0, 0, 0 },
	{ "dot-stuffed twice", "...\r\n.\r\n", 0, 1, 8, "..\r\n", 0, 0, 0 },
	{ "dot mid-line kept", "a.b\r\n.\r\n", 0, 1, 8, "a.b\r\n", 0, 0, 0 },
	{ "dot at end of line kept", "a.\r\n.\r\n", 0, 1, 7, "a.\r\n", 0, 0, 0 },
	{ "empty lines", "\r\n\r\n.\r\n", 0, 1, 7, "\r\n\r\n", 0, 0, 0 },
	{ "bytes after the end not consumed", "a\r\n.\r\nQUIT\r\n", 0, 1, 6, "a\r\n", 0, 0, 0 },
	{ "pipelined command after the end", "a\r\n.\r\n" MAIL_CMD, 0, 1, 6, "a\r\n", 0, 0, 0 },
	{ "no end yet", "a\r\nb\r\n", 0, 0, 0, "a\r\nb\r\n", 0, 0, 0 },
	{ "dot line without CRLF yet", "a\r\n.", 0, 0, 0, "a\r\n", 0, 0, 0 },
	{ "dot CR without LF yet", "a\r\n.\r", 0, 0, 0, "a\r\n", 0, 0, 0 },

	/* SMTP smuggling: only CRLF.CRLF ends the data */
	{ "LF.LF does not end", "a\n.\n" MAIL_CMD, 0, 1, 4 + sizeof(MAIL_CMD) - 1,
	  "a\n.\n" "MAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y.example>\r\nDATA\r\nsmuggled\r\n", 0,
	  DATA_BARE_LF, 0 },
	{ "LF.LF alone", "a\n.\nMAIL FROM:<x@y>", 0, 0, 0, "a\n.\nMAIL FROM:<x@y>", 0, DATA_BARE_LF, 0 },
	{ "CRLF.LF does not end", "a\r\n.\nb\r\n.\r\n", 0, 1, 11, "a\r\n\nb\r\n", 0, DATA_BARE_LF, 0 },
	{ "CR.CR does not end", "a\r.\r\n.\r\n", 0, 1, 8, "a\r.\r\n", 0, DATA_BARE_CR, 0 },
	{ "CR.CRLF does not end", "a\r.\r\nb\r\n.\r\n", 0, 1, 11, "a\r.\r\nb\r\n", 0, DATA_BARE_CR, 0 },
	{ "LF.CRLF does not end", "a\n.\r\n", 0, 0, 0, "a\n.\r\n", 0, DATA_BARE_LF, 0 },
	{ "LF.CRLF then the real end", "a\n.\r\n.\r\n", 0, 1, 8, "a\n.\r\n", 0, DATA_BARE_LF, 0 },
	{ "CRLF.CR then text", "a\r\n.\rb\r\n.\r\n", 0, 1, 11, "a\r\n\rb\r\n", 0, DATA_BARE_CR, 0 },
	{ "CRLF.CRCRLF", "a\r\n.\r\r\n.\r\n", 0, 1, 10, "a\r\n\r\r\n", 0, DATA_BARE_CR, 0 },
	{ "bare LF mid-line", "a\nb\r\n.\r\n", 0, 1, 8, "a\nb\r\n", 0, DATA_BARE_LF, 0 },
	{ "bare CR mid-line", "a\rb\r\n.\r\n", 0, 1, 8, "a\rb\r\n", 0, DATA_BARE_CR, 0 },
	{ "bare LF at start", "\n.\r\n.\r\n", 0, 1, 7, "\n.\r\n", 0, DATA_BARE_LF, 0 },
	{ "CRCRLF", "a\r\r\n.\r\n", 0, 1, 7, "a\r\r\n", 0, DATA_BARE_CR, 0 },

	/* other flags */
	{ "NUL inside", "a\0b\r\n.\r\n", 8, 1, 8, "a\0b\r\n", 5, DATA_NUL, 0 },
	{ "NUL at start of line", "\0\r\n.\r\n", 6, 1, 6, "\0\r\n", 3, DATA_NUL, 0 },
	{ "NUL after dot", ".\0\r\n.\r\n", 7, 1, 7, "\0\r\n", 3, DATA_NUL, 0 },
	{ "8-bit byte", "caf\xc3\xa9\r\n.\r\n", 0, 1, 10, "caf\xc3\xa9\r\n", 0, DATA_8BIT, 0 },
	{ "8-bit byte at start", "\xff\r\n.\r\n", 0, 1, 6, "\xff\r\n", 0, DATA_8BIT, 0 },
	{ "8-bit in header", "Subject: \xe9\r\n\r\nx\r\n.\r\n", 0, 1, 20, "Subject: \xe9\r\n\r\nx\r\n", 0, DATA_8BIT, 0 },
	{ "all flags", "\xe9\0\r\x0a\n.\r\n", 8, 0, 0, "\xe9\0\r\n\n.\r\n", 8,
	  DATA_8BIT | DATA_NUL | DATA_BARE_LF, 0 },
	{ "all flags and CR", "\xe9\0\rx\n.\r\n.\r\n", 11, 1, 11, "\xe9\0\rx\n.\r\n", 8,
	  DATA_8BIT | DATA_NUL | DATA_BARE_LF | DATA_BARE_CR, 0 },

	/* Received: counting */
	{ "one received", "Received: from a\r\n\r\nbody\r\n.\r\n", 0, 1, 29,
	  "Received: from a\r\n\r\nbody\r\n", 0, 0, 1 },
	{ "received case-insensitive", "received: x\r\nRECEIVED: y\r\nReCeIvEd:z\r\n\r\n.\r\n", 0, 1, 43,
	  "received: x\r\nRECEIVED: y\r\nReCeIvEd:z\r\n\r\n", 0, 0, 3 },
	{ "received after other headers", "From: a\r\nReceived: x\r\nTo: b\r\nReceived: y\r\n\r\n.\r\n", 0, 1, 47,
	  "From: a\r\nReceived: x\r\nTo: b\r\nReceived: y\r\n\r\n", 0, 0, 2 },
	{ "received in body not counted", "From: a\r\n\r\nReceived: x\r\nReceived: y\r\n.\r\n", 0, 1, 40,
	  "From: a\r\n\r\nReceived: x\r\nReceived: y\r\n", 0, 0, 0 },
	{ "received continuation not counted", "Subject: a\r\n Received: x\r\n\tReceived: y\r\n\r\n.\r\n", 0, 1, 45,
	  "Subject: a\r\n Received: x\r\n\tReceived: y\r\n\r\n", 0, 0, 0 },
	{ "received mid-line not counted", "X-Received: a\r\nSubject: Received: b\r\n\r\n.\r\n", 0, 1, 42,
	  "X-Received: a\r\nSubject: Received: b\r\n\r\n", 0, 0, 0 },
	{ "received without colon", "Received x\r\nReceived : y\r\nReceive: z\r\n\r\n.\r\n", 0, 1, 43,
	  "Received x\r\nReceived : y\r\nReceive: z\r\n\r\n", 0, 0, 0 },
	{ "received dot-stuffed", ".Received: x\r\n\r\n.\r\n", 0, 1, 19, "Received: x\r\n\r\n", 0, 0, 1 },
	{ "received in a message without body", "Received: x\r\n.\r\n", 0, 1, 16, "Received: x\r\n", 0, 0, 1 },
	{ "received after a body line", "Received: x\r\n\r\nb\r\nReceived: y\r\n\r\nReceived: z\r\n.\r\n", 0, 1, 49,
	  "Received: x\r\n\r\nb\r\nReceived: y\r\n\r\nReceived: z\r\n", 0, 0, 1 },
};

/* run - feed input whole (step 0) or step bytes a call; check everything */
static void
run(const struct data_case *tc, size_t step)
{
	size_t len = tc->len ? tc->len : strlen(tc->input);
	size_t outlen = tc->outlen ? tc->outlen : strlen(tc->out);
	struct smtp_data d;
	struct sink s;
	size_t used = 0;

	memset(&s, 0, sizeof(s));
	smtp_data_init(&d, sink_append, &s);
	if (step == 0)
		used = smtp_data_feed(&d, tc->input, len);
	else {
		for (size_t off = 0; off < len; off += step) {
			size_t n = len - off < step ? len - off : step;
			size_t got = smtp_data_feed(&d, tc->input + off, n);

			used += got;
			if (smtp_data_done(&d)) {
				ck_assert_msg(got <= n, "%s/%zu: consumed more than given", tc->name, step);
				break;
			}
			ck_assert_msg(got == n, "%s/%zu: consumed %zu of %zu before the end", tc->name, step,
			    got, n);
		}
	}
	ck_assert_msg(smtp_data_done(&d) == tc->done, "%s/%zu: done %d", tc->name, step, smtp_data_done(&d));
	ck_assert_msg(used == (tc->done ? tc->consumed : len), "%s/%zu: consumed %zu", tc->name, step, used);
	ck_assert_msg(s.len == outlen && memcmp(s.data, tc->out, outlen) == 0,
	    "%s/%zu: output (%zu bytes) differs", tc->name, step, s.len);
	ck_assert_msg(d.size == outlen, "%s/%zu: size %zu", tc->name, step, d.size);
	ck_assert_msg(d.flags == tc->flags, "%s/%zu: flags %#x, want %#x", tc->name, step, d.flags, tc->flags);
	ck_assert_msg(d.received == tc->received, "%s/%zu: received %u, want %u", tc->name, step,
	    d.received, tc->received);
	if (smtp_data_done(&d)) {
		/* nothing more is taken after the end */
		ck_assert_uint_eq(smtp_data_feed(&d, "x\r\n.\r\n", 6), 0);
		ck_assert_uint_eq(s.len, outlen);
	}
}

START_TEST(test_data_whole)
{
	run(&data_cases[_i], 0);
}
END_TEST

START_TEST(test_data_bytewise)
{
	run(&data_cases[_i], 1);
}
END_TEST

START_TEST(test_data_pairs)
{
	run(&data_cases[_i], 2);
	run(&data_cases[_i], 3);
}
END_TEST

/* a long message split at every possible point gives the same result */
START_TEST(test_data_every_split)
{
	static const char msg[] =
	    "Received: from a\r\nreceived: from b\r\nSubject: x\r\n folded\r\n\r\n"
	    "..dot\r\nline\r\n.\r\n";
	static const char want[] =
	    "Received: from a\r\nreceived: from b\r\nSubject: x\r\n folded\r\n\r\n"
	    ".dot\r\nline\r\n";
	size_t len = sizeof(msg) - 1;

	for (size_t cut = 0; cut <= len; cut++) {
		struct smtp_data d;
		struct sink s;
		size_t used;

		memset(&s, 0, sizeof(s));
		smtp_data_init(&d, sink_append, &s);
		used = smtp_data_feed(&d, msg, cut);
		ck_assert_uint_eq(used, cut);
		used += smtp_data_feed(&d, msg + cut, len - cut);
		ck_assert_msg(smtp_data_done(&d), "cut %zu: not done", cut);
		ck_assert_uint_eq(used, len);
		ck_assert_uint_eq(s.len, sizeof(want) - 1);
		ck_assert_int_eq(memcmp(s.data, want, s.len), 0);
		ck_assert_uint_eq(d.flags, 0);
		ck_assert_msg(d.received == 2, "cut %zu: received %u", cut, d.received);
	}
}
END_TEST

/* a big body goes through in runs, not byte by byte, and arrives intact */
START_TEST(test_data_large)
{
	static char in[3000], out[OUT_MAX];
	struct smtp_data d;
	struct sink s;
	size_t n = 0, o = 0;

	for (int line = 0; line < 100; line++) {
		n += (size_t)snprintf(in + n, sizeof(in) - n, "line %03d abcdefghij\r\n", line);
		o += (size_t)snprintf(out + o, sizeof(out) - o, "line %03d abcdefghij\r\n", line);
	}
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	memset(&s, 0, sizeof(s));
	smtp_data_init(&d, sink_append, &s);
	ck_assert_uint_eq(smtp_data_feed(&d, in, n), n);
	ck_assert(smtp_data_done(&d));
	ck_assert_uint_eq(s.len, o);
	ck_assert_int_eq(memcmp(s.data, out, o), 0);
	ck_assert_uint_lt(s.calls, 100 * 4);
}
END_TEST

static Suite *
smtp_data_suite(void)
{
	Suite *s = suite_create("smtp_data");
	TCase *tc;

	tc = tcase_create("whole");
	tcase_add_loop_test(tc, test_data_whole, 0, (int)NELEM(data_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("bytewise");
	tcase_add_loop_test(tc, test_data_bytewise, 0, (int)NELEM(data_cases));
	tcase_add_loop_test(tc, test_data_pairs, 0, (int)NELEM(data_cases));
	tcase_add_test(tc, test_data_every_split);
	suite_add_tcase(s, tc);

	tc = tcase_create("large");
	tcase_add_test(tc, test_data_large);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_data_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
