/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_milter.c - unit tests for the milter protocol codec
 * (spoold/milter_proto.c): packet lengths, every reply a filter may send,
 * malformed ones, REPLYCODE checks, and the packets spoold sends, byte for
 * byte as libmilter expects them.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* packet - cmd and data (n bytes) as a filter would send them, into out */
static size_t
packet(unsigned char *out, char cmd, const void *data, size_t n)
{
	uint32_t len = (uint32_t)n + 1;

	out[0] = (unsigned char)(len >> 24);
	out[1] = (unsigned char)(len >> 16);
	out[2] = (unsigned char)(len >> 8);
	out[3] = (unsigned char)len;
	out[4] = (unsigned char)cmd;
	memcpy(out + 5, data, n);
	return n + 5;
}

struct reply_case {
	char			 cmd;
	const char		*data;
	size_t			 n;
	enum milter_reply	 want;
	uint32_t		 index;
	const char		*name, *value;
};

static const struct reply_case reply_cases[] = {
	{ 'a', "", 0, MILTER_R_ACCEPT, 0, NULL, NULL },
	{ 'c', "", 0, MILTER_R_CONTINUE, 0, NULL, NULL },
	{ 'r', "", 0, MILTER_R_REJECT, 0, NULL, NULL },
	{ 't', "", 0, MILTER_R_TEMPFAIL, 0, NULL, NULL },
	{ 'd', "", 0, MILTER_R_DISCARD, 0, NULL, NULL },
	{ 's', "", 0, MILTER_R_SKIP, 0, NULL, NULL },
	{ 'p', "", 0, MILTER_R_PROGRESS, 0, NULL, NULL },
	{ 'a', "x", 1, MILTER_R_BAD, 0, NULL, NULL },		/* accept carries nothing */
	{ 'y', "554 5.7.1 spam\0", 15, MILTER_R_REPLYCODE, 0, "554 5.7.1 spam", "554 5.7.1 spam" },
	{ 'y', "554 no nul", 10, MILTER_R_BAD, 0, NULL, NULL },
	{ 'q', "virus\0", 6, MILTER_R_QUARANTINE, 0, "virus", NULL },
	{ '+', "<x@a.test>\0", 11, MILTER_R_ADDRCPT, 0, "<x@a.test>", NULL },
	{ '2', "<x@a.test>\0NOTIFY=NEVER\0", 24, MILTER_R_ADDRCPT, 0, "<x@a.test>", NULL },
	{ '-', "<y@a.test>\0", 11, MILTER_R_DELRCPT, 0, "<y@a.test>", NULL },
	{ 'e', "<s@b.test>\0", 11, MILTER_R_CHGFROM, 0, "<s@b.test>", NULL },
	{ 'h', "X-Spam\0yes\0", 11, MILTER_R_ADDHEADER, 0, "X-Spam", "yes" },
	{ 'h', "X-Spam\0yes", 10, MILTER_R_BAD, 0, NULL, NULL },	/* value not ended */
	{ 'h', "\0yes\0", 5, MILTER_R_BAD, 0, NULL, NULL },		/* no name */
	{ 'i', "\0\0\0\2X-A\0b\0", 10, MILTER_R_INSHEADER, 2, "X-A", "b" },
	{ 'm', "\0\0\0\1Subject\0\0", 13, MILTER_R_CHGHEADER, 1, "Subject", "" },
	{ 'm', "\0\0\1", 3, MILTER_R_BAD, 0, NULL, NULL },		/* no room for the index */
	{ 'O', "\0\0\0\6\0\0\0\x3f\0\0\0\0", 12, MILTER_R_OPTNEG, 0, NULL, NULL },
	{ 'O', "\0\0\0\6", 4, MILTER_R_BAD, 0, NULL, NULL },
	{ 'Z', "", 0, MILTER_R_BAD, 0, NULL, NULL },
	{ 'A', "", 0, MILTER_R_BAD, 0, NULL, NULL },		/* a command, not a reply */
};

START_TEST(test_reply)
{
	const struct reply_case *c = &reply_cases[_i];
	unsigned char p[128];
	size_t len = packet(p, c->cmd, c->data, c->n);
	struct milter_msg m;

	ck_assert_int_eq(milter_packet_len(p, len, MILTER_REPLY_MAX), (long)len);
	ck_assert_msg(milter_parse(p, len, &m) == c->want, "'%c' case %d: got %d, want %d",
	    c->cmd, _i, m.kind, c->want);
	if (c->name != NULL)
		ck_assert_str_eq(m.name, c->name);
	if (c->value != NULL)
		ck_assert_str_eq(m.value, c->value);
	if (c->want == MILTER_R_INSHEADER || c->want == MILTER_R_CHGHEADER)
		ck_assert_uint_eq(m.index, c->index);
	if (c->want == MILTER_R_OPTNEG) {
		ck_assert_uint_eq(m.version, 6);
		ck_assert_uint_eq(m.actions, 0x3f);
		ck_assert_uint_eq(m.protocol, 0);
	}
}
END_TEST

/* a replaced body is the packet's bytes, NULs and all */
START_TEST(test_replbody)
{
	unsigned char p[64];
	size_t len = packet(p, 'b', "new\0body\r\n", 10);
	struct milter_msg m;

	ck_assert_int_eq(milter_parse(p, len, &m), MILTER_R_REPLBODY);
	ck_assert_uint_eq(m.len, 10);
	ck_assert(memcmp(m.data, "new\0body\r\n", 10) == 0);
}
END_TEST

/* lengths: incomplete, whole, too long, zero; and a length that lies */
START_TEST(test_packet_len)
{
	unsigned char p[16] = { 0, 0, 0, 1, 'a' };
	struct milter_msg m;

	ck_assert_int_eq(milter_packet_len(p, 3, MILTER_REPLY_MAX), 0);
	ck_assert_int_eq(milter_packet_len(p, 4, MILTER_REPLY_MAX), 0);
	ck_assert_int_eq(milter_packet_len(p, 5, MILTER_REPLY_MAX), 5);
	ck_assert_int_eq(milter_packet_len(p, 9, MILTER_REPLY_MAX), 5);
	p[3] = 0;
	ck_assert_int_eq(milter_packet_len(p, 5, MILTER_REPLY_MAX), -1);
	p[0] = 0x7f;	/* 2 GiB */
	ck_assert_int_eq(milter_packet_len(p, 5, MILTER_REPLY_MAX), -1);
	p[0] = 0;
	p[3] = 9;	/* says 9, has 1 */
	ck_assert_int_eq(milter_parse(p, 5, &m), MILTER_R_BAD);
	ck_assert_int_eq(milter_parse(p, 3, &m), MILTER_R_BAD);
}
END_TEST

struct code_case {
	const char	*line;
	int		 ok;
};

static const struct code_case code_cases[] = {
	{ "550 5.7.1 Spam message rejected", 1 },
	{ "451 4.7.1 Try again later", 1 },
	{ "554 rejected", 1 },
	{ "250 2.0.0 fine", 0 },		/* a filter may only refuse */
	{ "354 go on", 0 },
	{ "550 4.7.1 class mismatch", 0 },
	{ "550", 0 },
	{ "550 ", 0 },
	{ "550-5.7.1 two\r\n550 lines", 0 },
	{ "550 5.7.1 bell\a", 0 },
	{ "55x 5.7.1 x", 0 },
	{ "", 0 },
};

START_TEST(test_replycode_ok)
{
	const struct code_case *c = &code_cases[_i];

	ck_assert_msg(milter_replycode_ok(c->line) == c->ok, "\"%s\"", c->line);
}
END_TEST

/* what spoold sends, as libmilter reads it */
START_TEST(test_put)
{
	static const unsigned char optneg[] = { 0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0, 0xff,
	    0, 0x1f, 0xf7, 0xff };
	static const unsigned char connect[] = { 0, 0, 0, 21, 'C', 'h', 'o', 's', 't', '.', 't',
	    0, '4', 0x04, 0xd2, '1', '9', '2', '.', '0', '.', '2', '.', '1', 0 };
	static const unsigned char mail[] = { 0, 0, 0, 17, 'M', '<', 'a', '@', 'b', '.', 't', '>',
	    0, 'S', 'I', 'Z', 'E', '=', '1', '0', 0 };
	static const unsigned char macros[] = { 0, 0, 0, 11, 'D', 'C', 'j', 0, 'm', 'x', 0, '_',
	    0, 'h', 0 };
	const char *args[] = { "<a@b.t>", "SIZE=10" };
	const char *names[] = { "j", "_" }, *values[] = { "mx", "h" };
	struct buf b;

	buf_init(&b);
	ck_assert_int_eq(milter_put_optneg(&b, MILTER_F_ALL, MILTER_P_OFFERED), 0);
	ck_assert_uint_eq(buf_used(&b), sizeof(optneg));
	ck_assert(memcmp(buf_head(&b), optneg, sizeof(optneg)) == 0);
	buf_clear(&b);
	ck_assert_int_eq(milter_put_connect(&b, "host.t", '4', 1234, "192.0.2.1"), 0);
	ck_assert_uint_eq(buf_used(&b), sizeof(connect));
	ck_assert(memcmp(buf_head(&b), connect, sizeof(connect)) == 0);
	buf_clear(&b);
	ck_assert_int_eq(milter_put_strings(&b, MILTER_MAIL, args, 2), 0);
	ck_assert_uint_eq(buf_used(&b), sizeof(mail));
	ck_assert(memcmp(buf_head(&b), mail, sizeof(mail)) == 0);
	buf_clear(&b);
	ck_assert_int_eq(milter_put_macros(&b, MILTER_CONNECT, names, values, 2), 0);
	ck_assert_uint_eq(buf_used(&b), sizeof(macros));
	ck_assert(memcmp(buf_head(&b), macros, sizeof(macros)) == 0);
	buf_clear(&b);
	ck_assert_int_eq(milter_put(&b, MILTER_EOB, NULL, 0), 0);
	ck_assert_uint_eq(buf_used(&b), 5);
	buf_free(&b);
}
END_TEST

static Suite *
milter_suite(void)
{
	Suite *s = suite_create("milter");
	TCase *tc = tcase_create("proto");

	tcase_add_loop_test(tc, test_reply, 0, (int)NELEM(reply_cases));
	tcase_add_test(tc, test_replbody);
	tcase_add_test(tc, test_packet_len);
	tcase_add_loop_test(tc, test_replycode_ok, 0, (int)NELEM(code_cases));
	tcase_add_test(tc, test_put);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(milter_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
