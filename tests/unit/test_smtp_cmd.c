/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_smtp_cmd.c - unit tests for shared/smtp_cmd.c: MAIL/RCPT argument
 * parsers, domain canonicalisation, xtext, UTF-8 validation, verb splitting.
 * Links only smtp_cmd.c.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* repeat - a string of n copies of c (static buffer, one at a time) */
static const char *
repeat(char c, size_t n)
{
	static char buf[1024];

	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* ---- MAIL FROM ---- */

struct mail_case {
	const char	*name;
	const char	*input;
	int		 utf8_ok;
	enum smtp_parse	 want;
	/* checked only when want == SMTP_PARSE_OK */
	const char	*local;
	const char	*domain;
	int		 null;
	uint64_t	 size;
	enum smtp_body	 body;
	int		 smtputf8;
	enum smtp_ret	 ret;
	const char	*envid;
	/* checked for PARAM errors: the start of the offending parameter */
	const char	*bad_param;
};

static const struct mail_case mail_cases[] = {
	{ "plain", "FROM:<a@b.c>", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "keyword case", "from:<a@b.c>", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "null sender", "FROM:<>", 0, SMTP_PARSE_OK, "", "", 1, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "null sender with param", "FROM:<> SIZE=10", 0, SMTP_PARSE_OK, "", "", 1, 10, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "space after colon", "FROM: <x@y>", 0, SMTP_PARSE_OK, "x", "y", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "size", "FROM:<a@b.c> SIZE=12345", 0, SMTP_PARSE_OK, "a", "b.c", 0, 12345, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "size lower-case keyword", "FROM:<a@b.c> size=7", 0, SMTP_PARSE_OK, "a", "b.c", 0, 7, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "size not a number", "FROM:<a@b.c> SIZE=12a", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SIZE=12a" },
	{ "size empty", "FROM:<a@b.c> SIZE=", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SIZE=" },
	{ "size without value", "FROM:<a@b.c> SIZE", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SIZE" },
	/* RFC 1870: 1*20DIGIT; past 2^64-1 the value saturates (and is refused as too big) */
	{ "size 20 digits", "FROM:<a@b.c> SIZE=99999999999999999999", 0, SMTP_PARSE_OK, "a", "b.c", 0, UINT64_MAX, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "size 21 digits", "FROM:<a@b.c> SIZE=100000000000000000000", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SIZE=" },
	{ "size twice", "FROM:<a@b.c> SIZE=10 SIZE=20", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SIZE=20" },
	{ "body twice", "FROM:<a@b.c> BODY=7BIT BODY=8BITMIME", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "BODY=8BITMIME" },
	{ "body 7bit", "FROM:<a@b.c> BODY=7BIT", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "body 8bitmime", "FROM:<a@b.c> BODY=8BITMIME", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_8BITMIME, 0, RET_UNSET, "", NULL },
	{ "body 8bitmime lower", "FROM:<a@b.c> body=8bitmime", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_8BITMIME, 0, RET_UNSET, "", NULL },
	{ "body bad", "FROM:<a@b.c> BODY=BINARYMIME", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "BODY=BINARYMIME" },
	{ "body without value", "FROM:<a@b.c> BODY", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "BODY" },
	{ "smtputf8 offered", "FROM:<a@b.c> SMTPUTF8", 1, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 1, RET_UNSET, "", NULL },
	{ "smtputf8 not offered", "FROM:<a@b.c> SMTPUTF8", 0, SMTP_PARSE_PARAM, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SMTPUTF8" },
	{ "smtputf8 with value", "FROM:<a@b.c> SMTPUTF8=yes", 1, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "SMTPUTF8=yes" },
	{ "utf8 sender with smtputf8", "FROM:<j\xc3\xb6rg@b\xc3\xbc.example> SMTPUTF8", 1, SMTP_PARSE_OK,
	  "j\xc3\xb6rg", "b\xc3\xbc.example", 0, 0, BODY_7BIT, 1, RET_UNSET, "", NULL },
	{ "utf8 sender without smtputf8 param", "FROM:<j\xc3\xb6rg@b.example>", 1, SMTP_PARSE_NONASCII, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "utf8 sender not offered", "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", 0, SMTP_PARSE_NONASCII, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "utf8 sender invalid", "FROM:<j\xc3rg@b.example> SMTPUTF8", 1, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "ret full", "FROM:<a@b.c> RET=FULL", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_FULL, "", NULL },
	{ "ret hdrs", "FROM:<a@b.c> RET=hdrs", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_HDRS, "", NULL },
	{ "ret bad", "FROM:<a@b.c> RET=BODY", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "RET=BODY" },
	{ "ret without value", "FROM:<a@b.c> RET", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "RET" },
	/* RFC 3461 4.3: at most once; a repeat is a bad parameter (501), not an unknown one (555) */
	{ "ret twice", "FROM:<a@b.c> RET=FULL RET=HDRS", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "RET=HDRS" },
	{ "envid", "FROM:<a@b.c> ENVID=QQ314159", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "QQ314159", NULL },
	{ "envid xtext", "FROM:<a@b.c> ENVID=a+2Bb+3Dc", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "a+b=c", NULL },
	{ "envid lower-case hex", "FROM:<a@b.c> ENVID=a+2bb", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=a+2bb" },
	{ "envid control char", "FROM:<a@b.c> ENVID=a+0Ab", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=" },
	{ "envid truncated", "FROM:<a@b.c> ENVID=ab+4", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=" },
	{ "envid raw equals", "FROM:<a@b.c> ENVID=a=b", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=" },
	{ "envid empty", "FROM:<a@b.c> ENVID=", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=" },
	{ "envid twice", "FROM:<a@b.c> ENVID=x ENVID=y", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, 0, 0, 0, 0, NULL, "ENVID=y" },
	{ "all params", "FROM:<a@b.c> SIZE=1 BODY=8BITMIME RET=HDRS ENVID=id1 SMTPUTF8", 1, SMTP_PARSE_OK,
	  "a", "b.c", 0, 1, BODY_8BITMIME, 1, RET_HDRS, "id1", NULL },
	{ "extra spaces between params", "FROM:<a@b.c>  SIZE=1   BODY=7BIT", 0, SMTP_PARSE_OK, "a", "b.c", 0, 1, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "unknown param", "FROM:<a@b.c> FOO=bar", 0, SMTP_PARSE_PARAM, NULL, NULL, 0, 0, 0, 0, 0, NULL, "FOO=bar" },
	{ "unknown param after good", "FROM:<a@b.c> SIZE=5 X-Y", 0, SMTP_PARSE_PARAM, NULL, NULL, 0, 0, 0, 0, 0, NULL, "X-Y" },
	{ "rcpt param on mail", "FROM:<a@b.c> NOTIFY=NEVER", 0, SMTP_PARSE_PARAM, NULL, NULL, 0, 0, 0, 0, 0, NULL, "NOTIFY=NEVER" },
	{ "no keyword", "<a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "wrong keyword", "TO:<a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "space before colon", "FROM :<a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "missing brackets", "FROM:a@b.c", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "missing closing bracket", "FROM:<a@b.c", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "missing opening bracket", "FROM:a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "empty", "FROM:", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "trailing garbage", "FROM:<a@b.c>x", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "trailing garbage after null", "FROM:<>x", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "two addresses", "FROM:<a@b.c><d@e.f>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "no domain", "FROM:<a>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "empty domain", "FROM:<a@>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "empty local part", "FROM:<@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "leading dot in local part", "FROM:<.a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "trailing dot in local part", "FROM:<a.@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "double dot in local part", "FROM:<a..b@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "space in local part", "FROM:<a b@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "quoted local part", "FROM:<\"a b\"@b.c>", 0, SMTP_PARSE_OK, "\"a b\"", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "unterminated quote", "FROM:<\"a b@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	/* a sender is not relayed to: a source route is ignored (RFC 5321 4.1.2) */
	{ "source route on sender", "FROM:<@x.y:a@b.c>", 0, SMTP_PARSE_OK, "a", "b.c", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "domain case folded and dot dropped", "FROM:<Abc@MX.Example.COM.>", 0, SMTP_PARSE_OK,
	  "Abc", "mx.example.com", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "domain two trailing dots", "FROM:<a@b.c..>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "domain underscore", "FROM:<a@b_c.d>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "domain hyphen at label start", "FROM:<a@-b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "two at signs", "FROM:<a@b@c.d>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "ipv4 literal", "FROM:<a@[192.0.2.1]>", 0, SMTP_PARSE_OK, "a", "[192.0.2.1]", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "ipv6 literal", "FROM:<a@[IPv6:2001:db8::1]>", 0, SMTP_PARSE_OK, "a", "[ipv6:2001:db8::1]", 0, 0, BODY_7BIT, 0, RET_UNSET, "", NULL },
	{ "bad ipv4 literal", "FROM:<a@[192.0.2.256]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "short ipv4 literal", "FROM:<a@[192.0.2]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "ipv6 literal without tag", "FROM:<a@[2001:db8::1]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "bad ipv6 literal", "FROM:<a@[IPv6:2001:db8::g]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "unclosed literal", "FROM:<a@[192.0.2.1>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
	{ "empty literal", "FROM:<a@[]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL },
};

START_TEST(test_parse_mail)
{
	const struct mail_case *tc = &mail_cases[_i];
	struct smtp_mail m;
	enum smtp_parse rc;

	memset(&m, 0xa5, sizeof(m));
	rc = smtp_parse_mail(tc->input, &m, tc->utf8_ok);
	ck_assert_msg(rc == tc->want, "%s: \"%s\": got %d, want %d", tc->name, tc->input, rc, tc->want);
	if (tc->want == SMTP_PARSE_OK) {
		ck_assert_msg(strcmp(m.from.local, tc->local) == 0, "%s: local \"%s\"", tc->name, m.from.local);
		ck_assert_msg(strcmp(m.from.domain, tc->domain) == 0, "%s: domain \"%s\"", tc->name, m.from.domain);
		ck_assert_msg(m.from.null == tc->null, "%s: null %d", tc->name, m.from.null);
		ck_assert_msg(m.size == tc->size, "%s: size %llu", tc->name, (unsigned long long)m.size);
		ck_assert_msg(m.body == tc->body, "%s: body %d", tc->name, m.body);
		ck_assert_msg(m.smtputf8 == tc->smtputf8, "%s: smtputf8 %d", tc->name, m.smtputf8);
		ck_assert_msg(m.ret == tc->ret, "%s: ret %d", tc->name, m.ret);
		ck_assert_msg(strcmp(m.envid, tc->envid) == 0, "%s: envid \"%s\"", tc->name, m.envid);
		ck_assert_msg(m.bad_param == NULL, "%s: bad_param set", tc->name);
	}
	if (tc->bad_param != NULL) {
		ck_assert_msg(m.bad_param != NULL, "%s: bad_param not set", tc->name);
		ck_assert_msg(strncmp(m.bad_param, tc->bad_param, strlen(tc->bad_param)) == 0,
		    "%s: bad_param \"%s\", want \"%s...\"", tc->name, m.bad_param, tc->bad_param);
	}
}
END_TEST

/* RFC 5321 4.5.3.1.1: 64 octets of local part, no more */
START_TEST(test_mail_local_part_length)
{
	struct smtp_mail m;
	char line[2048];

	snprintf(line, sizeof(line), "FROM:<%s@b.c>", repeat('l', SMTP_LOCAL_MAX));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_OK);
	ck_assert_uint_eq(strlen(m.from.local), SMTP_LOCAL_MAX);
	snprintf(line, sizeof(line), "FROM:<%s@b.c>", repeat('l', SMTP_LOCAL_MAX + 1));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
	/* quoted local parts obey the same limit, quotes included */
	snprintf(line, sizeof(line), "FROM:<\"%s\"@b.c>", repeat('q', SMTP_LOCAL_MAX - 2));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_OK);
	ck_assert_uint_eq(strlen(m.from.local), SMTP_LOCAL_MAX);
	snprintf(line, sizeof(line), "FROM:<\"%s\"@b.c>", repeat('q', SMTP_LOCAL_MAX - 1));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
	snprintf(line, sizeof(line), "FROM:<\"%s\\q\"@b.c>", repeat('q', SMTP_LOCAL_MAX - 4));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_OK);
	ck_assert_uint_eq(strlen(m.from.local), SMTP_LOCAL_MAX);
	snprintf(line, sizeof(line), "FROM:<\"%s\\q\"@b.c>", repeat('q', SMTP_LOCAL_MAX - 3));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
	snprintf(line, sizeof(line), "FROM:<\"%s\"@b.c>", repeat('q', SMTP_LOCAL_MAX + 10));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
	snprintf(line, sizeof(line), "FROM:<\"%s\"@b.c>", repeat('q', 3000 / 10));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
}
END_TEST

/* RFC 1035 2.3.4 labels of 63 octets; RFC 5321 4.5.3.1.2/3 domain and path */
START_TEST(test_mail_domain_length)
{
	struct smtp_mail m;
	char line[4096], dom[2048];

	snprintf(line, sizeof(line), "FROM:<a@%s.example>", repeat('d', 63));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_OK);
	snprintf(line, sizeof(line), "FROM:<a@%s.example>", repeat('d', 64));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);

	/* four 61-char labels + dots = 247 chars: a valid domain */
	snprintf(dom, sizeof(dom), "%s.", repeat('a', 61));
	snprintf(dom + strlen(dom), sizeof(dom) - strlen(dom), "%s.", repeat('b', 61));
	snprintf(dom + strlen(dom), sizeof(dom) - strlen(dom), "%s.", repeat('c', 61));
	snprintf(dom + strlen(dom), sizeof(dom) - strlen(dom), "%s", repeat('d', 61));
	ck_assert_uint_eq(strlen(dom), 247);
	snprintf(line, sizeof(line), "FROM:<a@%s>", dom);
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_OK);
	ck_assert_str_eq(m.from.domain, dom);
	/* ... but with a 64-char local part the path exceeds 256 octets */
	snprintf(line, sizeof(line), "FROM:<%s@%s>", repeat('l', 64), dom);
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);

	/* 254 chars: too long for a domain (253 without the root dot) */
	snprintf(dom + strlen(dom), sizeof(dom) - strlen(dom), ".%s", repeat('e', 6));
	ck_assert_uint_eq(strlen(dom), 254);
	snprintf(line, sizeof(line), "FROM:<a@%s>", dom);
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);

	/* far too long: must not overflow the fixed-size domain field */
	snprintf(line, sizeof(line), "FROM:<a@%s>", repeat('x', 1000));
	ck_assert_int_eq(smtp_parse_mail(line, &m, 0), SMTP_PARSE_SYNTAX);
}
END_TEST

/* ---- RCPT TO ---- */

struct rcpt_case {
	const char	*name;
	const char	*input;
	int		 smtputf8;
	enum smtp_parse	 want;
	const char	*local;
	const char	*domain;
	unsigned	 notify;
	const char	*orcpt_type;
	const char	*orcpt;
	const char	*bad_param;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "plain", "TO:<a@b.c>", 0, SMTP_PARSE_OK, "a", "b.c", 0, "", "", NULL },
	/* RFC 5321 4.1.1.3: the server fills in its own name */
	{ "postmaster alone", "TO:<Postmaster>", 0, SMTP_PARSE_OK, "postmaster", "", 0, "", "", NULL },
	{ "postmaster notify", "TO:<postmaster> NOTIFY=NEVER", 0, SMTP_PARSE_OK, "postmaster", "", NOTIFY_NEVER, "", "", NULL },
	{ "quoted-pair control", "TO:<\"a\\\rb\"@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "keyword case and space", "to: <a@B.C>", 0, SMTP_PARSE_OK, "a", "b.c", 0, "", "", NULL },
	{ "notify never", "TO:<a@b.c> NOTIFY=NEVER", 0, SMTP_PARSE_OK, "a", "b.c", NOTIFY_NEVER, "", "", NULL },
	{ "notify list", "TO:<a@b.c> NOTIFY=SUCCESS,FAILURE,DELAY", 0, SMTP_PARSE_OK, "a", "b.c",
	  NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY, "", "", NULL },
	{ "notify lower case", "TO:<a@b.c> notify=failure", 0, SMTP_PARSE_OK, "a", "b.c", NOTIFY_FAILURE, "", "", NULL },
	{ "notify never with others", "TO:<a@b.c> NOTIFY=NEVER,SUCCESS", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify others with never", "TO:<a@b.c> NOTIFY=DELAY,NEVER", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify repeated word", "TO:<a@b.c> NOTIFY=DELAY,DELAY", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify unknown word", "TO:<a@b.c> NOTIFY=ALWAYS", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify trailing comma", "TO:<a@b.c> NOTIFY=DELAY,", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify empty", "TO:<a@b.c> NOTIFY=", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=" },
	{ "notify twice", "TO:<a@b.c> NOTIFY=NEVER NOTIFY=DELAY", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "NOTIFY=DELAY" },
	{ "orcpt", "TO:<a@b.c> ORCPT=rfc822;a+40b.c", 0, SMTP_PARSE_OK, "a", "b.c", 0, "rfc822", "a@b.c", NULL },
	{ "orcpt type lower-cased", "TO:<a@b.c> ORCPT=RFC822;x", 0, SMTP_PARSE_OK, "a", "b.c", 0, "rfc822", "x", NULL },
	{ "orcpt and notify", "TO:<a@b.c> NOTIFY=FAILURE ORCPT=rfc822;a@b.c", 0, SMTP_PARSE_OK, "a", "b.c",
	  NOTIFY_FAILURE, "rfc822", "a@b.c", NULL },
	{ "orcpt without type", "TO:<a@b.c> ORCPT=a+40b.c", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "ORCPT=" },
	{ "orcpt empty type", "TO:<a@b.c> ORCPT=;a", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "ORCPT=" },
	{ "orcpt empty address", "TO:<a@b.c> ORCPT=rfc822;", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "ORCPT=" },
	{ "orcpt bad xtext", "TO:<a@b.c> ORCPT=rfc822;a+4", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "ORCPT=" },
	{ "orcpt twice", "TO:<a@b.c> ORCPT=rfc822;x ORCPT=rfc822;y", 0, SMTP_PARSE_PARAM_VALUE, NULL, NULL, 0, NULL, NULL, "ORCPT=rfc822;y" },
	{ "unknown param", "TO:<a@b.c> SIZE=10", 0, SMTP_PARSE_PARAM, NULL, NULL, 0, NULL, NULL, "SIZE=10" },
	{ "percent hack", "TO:<a%b@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "bang path", "TO:<a!b@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "source route", "TO:<@x.y:a@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "source route list", "TO:<@x.y,@z.w:a@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "quoted at", "TO:<\"a@b\"@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "quoted percent", "TO:<\"a%b\"@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "quoted escaped at", "TO:<\"a\\@b\"@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "quoted harmless", "TO:<\"a b\"@c.d>", 0, SMTP_PARSE_OK, "\"a b\"", "c.d", 0, "", "", NULL },
	{ "second at in domain", "TO:<a@b@c.d>", 0, SMTP_PARSE_RELAY, NULL, NULL, 0, NULL, NULL, NULL },
	{ "null recipient", "TO:<>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "missing brackets", "TO:a@b.c", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "trailing garbage", "TO:<a@b.c>>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "wrong keyword", "FROM:<a@b.c>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "utf8 without smtputf8", "TO:<j\xc3\xb6rg@b.example>", 0, SMTP_PARSE_NONASCII, NULL, NULL, 0, NULL, NULL, NULL },
	{ "utf8 domain without smtputf8", "TO:<a@b\xc3\xbc.example>", 0, SMTP_PARSE_NONASCII, NULL, NULL, 0, NULL, NULL, NULL },
	{ "utf8 with smtputf8", "TO:<j\xc3\xb6rg@b\xc3\xbc.example>", 1, SMTP_PARSE_OK,
	  "j\xc3\xb6rg", "b\xc3\xbc.example", 0, "", "", NULL },
	{ "invalid utf8 local", "TO:<j\xff" "rg@b.example>", 1, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "invalid utf8 local without smtputf8", "TO:<j\xc3(rg@b.example>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "overlong utf8 local", "TO:<j\xc0\xafrg@b.example>", 1, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "invalid utf8 domain", "TO:<a@b\xed\xa0\x80.example>", 1, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
	{ "ipv4 literal", "TO:<a@[192.0.2.1]>", 0, SMTP_PARSE_OK, "a", "[192.0.2.1]", 0, "", "", NULL },
	{ "ipv6 literal", "TO:<a@[IPV6:2001:DB8::1]>", 0, SMTP_PARSE_OK, "a", "[ipv6:2001:db8::1]", 0, "", "", NULL },
	{ "bad literal", "TO:<a@[300.0.0.1]>", 0, SMTP_PARSE_SYNTAX, NULL, NULL, 0, NULL, NULL, NULL },
};

START_TEST(test_parse_rcpt)
{
	const struct rcpt_case *tc = &rcpt_cases[_i];
	struct smtp_rcpt r;
	enum smtp_parse rc;

	memset(&r, 0xa5, sizeof(r));
	rc = smtp_parse_rcpt(tc->input, &r, tc->smtputf8);
	ck_assert_msg(rc == tc->want, "%s: \"%s\": got %d, want %d", tc->name, tc->input, rc, tc->want);
	if (tc->want == SMTP_PARSE_OK) {
		ck_assert_msg(strcmp(r.to.local, tc->local) == 0, "%s: local \"%s\"", tc->name, r.to.local);
		ck_assert_msg(strcmp(r.to.domain, tc->domain) == 0, "%s: domain \"%s\"", tc->name, r.to.domain);
		ck_assert_msg(r.to.null == 0, "%s: null", tc->name);
		ck_assert_msg(r.notify == tc->notify, "%s: notify %#x", tc->name, r.notify);
		ck_assert_msg(strcmp(r.orcpt_type, tc->orcpt_type) == 0, "%s: orcpt_type \"%s\"", tc->name, r.orcpt_type);
		ck_assert_msg(strcmp(r.orcpt, tc->orcpt) == 0, "%s: orcpt \"%s\"", tc->name, r.orcpt);
		ck_assert_msg(r.bad_param == NULL, "%s: bad_param set", tc->name);
	}
	if (tc->bad_param != NULL) {
		ck_assert_msg(r.bad_param != NULL, "%s: bad_param not set", tc->name);
		ck_assert_msg(strncmp(r.bad_param, tc->bad_param, strlen(tc->bad_param)) == 0,
		    "%s: bad_param \"%s\", want \"%s...\"", tc->name, r.bad_param, tc->bad_param);
	}
}
END_TEST

START_TEST(test_rcpt_utf8_flag)
{
	struct smtp_rcpt r;

	ck_assert_int_eq(smtp_parse_rcpt("TO:<a@b.c>", &r, 1), SMTP_PARSE_OK);
	ck_assert_int_eq(r.to.utf8, 0);
	ck_assert_int_eq(smtp_parse_rcpt("TO:<\xc3\xa4@b.c>", &r, 1), SMTP_PARSE_OK);
	ck_assert_int_eq(r.to.utf8, 1);
}
END_TEST

/* ---- smtp_domain_canon ---- */

struct canon_case {
	const char	*name;
	const char	*input;
	int		 utf8_ok;
	int		 want;		/* 0 or -1 */
	const char	*out;
};

static const struct canon_case canon_cases[] = {
	{ "lower", "example.com", 0, 0, "example.com" },
	{ "upper", "EXAMPLE.Com", 0, 0, "example.com" },
	{ "trailing dot", "example.com.", 0, 0, "example.com" },
	{ "single label", "localhost", 0, 0, "localhost" },
	{ "digits and hyphen", "a-1.b2.c", 0, 0, "a-1.b2.c" },
	{ "empty", "", 0, -1, NULL },
	{ "dot only", ".", 0, -1, NULL },
	{ "two trailing dots", "example.com..", 0, -1, NULL },
	{ "leading dot", ".example.com", 0, -1, NULL },
	{ "empty label", "a..b", 0, -1, NULL },
	{ "hyphen first", "-a.b", 0, -1, NULL },
	{ "hyphen last", "a-.b", 0, -1, NULL },
	{ "hyphen last label", "a.b-", 0, -1, NULL },
	{ "underscore", "a_b.c", 0, -1, NULL },
	{ "space", "a b.c", 0, -1, NULL },
	{ "at sign", "a@b.c", 0, -1, NULL },
	{ "utf8 not allowed", "b\xc3\xbc.example", 0, -1, NULL },
	{ "utf8 allowed", "B\xc3\xbc.Example", 1, 0, "b\xc3\xbc.example" },
	{ "invalid utf8", "b\xc3.example", 1, -1, NULL },
	{ "ipv4 literal", "[192.0.2.1]", 0, 0, "[192.0.2.1]" },
	{ "ipv6 literal", "[IPv6:2001:DB8::1]", 0, 0, "[ipv6:2001:db8::1]" },
	{ "ipv6 literal v4 tail", "[IPv6:::ffff:192.0.2.1]", 0, 0, "[ipv6:::ffff:192.0.2.1]" },
	{ "bad ipv4 literal", "[192.0.2.1.5]", 0, -1, NULL },
	{ "ipv4 in ipv6 tag", "[IPv6:192.0.2.1]", 0, -1, NULL },
	{ "unclosed literal", "[192.0.2.1", 0, -1, NULL },
	{ "literal trailing dot", "[192.0.2.1].", 0, -1, NULL },
	{ "hostname literal", "[example.com]", 0, -1, NULL },
};

START_TEST(test_domain_canon)
{
	const struct canon_case *tc = &canon_cases[_i];
	char d[SMTP_DOMAIN_MAX + 1];
	int rc;

	snprintf(d, sizeof(d), "%s", tc->input);
	rc = smtp_domain_canon(d, tc->utf8_ok);
	ck_assert_msg(rc == tc->want, "%s: \"%s\": got %d", tc->name, tc->input, rc);
	if (rc == 0)
		ck_assert_msg(strcmp(d, tc->out) == 0, "%s: got \"%s\", want \"%s\"", tc->name, d, tc->out);
}
END_TEST

START_TEST(test_domain_canon_lengths)
{
	char d[2048];	/* only the length matters to the function */

	snprintf(d, sizeof(d), "%s.com", repeat('a', 63));
	ck_assert_int_eq(smtp_domain_canon(d, 0), 0);
	snprintf(d, sizeof(d), "%s.com", repeat('a', 64));
	ck_assert_int_eq(smtp_domain_canon(d, 0), -1);
	/* 253 characters is the longest name, 254 with the root dot */
	snprintf(d, sizeof(d), "%s", repeat('a', 63));
	for (int i = 0; i < 3; i++)
		snprintf(d + strlen(d), sizeof(d) - strlen(d), ".%s", repeat('b', i < 2 ? 63 : 61));
	ck_assert_uint_eq(strlen(d), 253);
	ck_assert_int_eq(smtp_domain_canon(d, 0), 0);
	strcat(d, ".");
	ck_assert_int_eq(smtp_domain_canon(d, 0), 0);
	ck_assert_uint_eq(strlen(d), 253);
	strcat(d, "c");
	ck_assert_int_eq(smtp_domain_canon(d, 0), -1);
}
END_TEST

/* ---- xtext ---- */

struct xdec_case {
	const char	*name;
	const char	*input;
	int		 want;		/* length, or -1 */
	const char	*out;
};

static const struct xdec_case xdec_cases[] = {
	{ "plain", "abc", 3, "abc" },
	{ "empty", "", 0, "" },
	{ "plus", "+2B", 1, "+" },
	{ "equals", "+3D", 1, "=" },
	{ "space", "a+20b", 3, "a b" },
	{ "at", "a+40b.c", 5, "a@b.c" },
	{ "eight-bit", "+C3+A4", 2, "\xc3\xa4" },
	{ "lower-case hex", "+2b", -1, NULL },
	{ "lower-case hex first", "+e9", -1, NULL },
	{ "not hex", "+G0", -1, NULL },
	{ "truncated one digit", "+4", -1, NULL },
	{ "truncated one digit after text", "abc+4", -1, NULL },
	{ "truncated no digit", "abc+", -1, NULL },
	{ "control char encoded", "a+0Ab", -1, NULL },
	{ "nul encoded", "a+00b", -1, NULL },
	{ "del encoded", "+7F", -1, NULL },
	{ "raw equals", "a=b", -1, NULL },
	{ "raw space", "a b", -1, NULL },
	{ "raw control", "a\tb", -1, NULL },
	{ "raw del", "a\x7f", -1, NULL },
	{ "raw eight-bit", "a\xc3\xa4", -1, NULL },
};

START_TEST(test_xtext_decode)
{
	const struct xdec_case *tc = &xdec_cases[_i];
	char out[64];
	int rc;

	rc = xtext_decode(tc->input, strlen(tc->input), out, sizeof(out));
	ck_assert_msg(rc == tc->want, "%s: \"%s\": got %d, want %d", tc->name, tc->input, rc, tc->want);
	if (rc >= 0)
		ck_assert_msg(strcmp(out, tc->out) == 0, "%s: got \"%s\"", tc->name, out);
}
END_TEST

START_TEST(test_xtext_decode_limits)
{
	char out[4];

	/* srclen bounds the input: the "+4" of "+41" is truncated */
	ck_assert_int_eq(xtext_decode("+41", 2, out, sizeof(out)), -1);
	ck_assert_int_eq(xtext_decode("abcdef", 2, out, sizeof(out)), 2);
	ck_assert_str_eq(out, "ab");
	/* the output must fit with its NUL */
	ck_assert_int_eq(xtext_decode("abc", 3, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(xtext_decode("abcd", 4, out, sizeof(out)), -1);
	ck_assert_int_eq(xtext_decode("+41+42+43", 9, out, sizeof(out)), 3);
	ck_assert_str_eq(out, "ABC");
	ck_assert_int_eq(xtext_decode("+41+42+43+44", 12, out, sizeof(out)), -1);
}
END_TEST

struct xenc_case {
	const char	*input;
	const char	*out;
};

static const struct xenc_case xenc_cases[] = {
	{ "abc", "abc" },
	{ "", "" },
	{ "+", "+2B" },
	{ "=", "+3D" },
	{ "a b", "a+20b" },
	{ "a+b=c", "a+2Bb+3Dc" },
	{ "a@b.c", "a@b.c" },
	{ "~!", "~!" },
	{ "\xc3\xa4", "+C3+A4" },
	{ "a\tb", "a+09b" },
};

/* encode, compare, then decode back to the input (when printable) */
START_TEST(test_xtext_round_trip)
{
	const struct xenc_case *tc = &xenc_cases[_i];
	char enc[64], dec[64];
	size_t n;

	n = xtext_encode(tc->input, enc, sizeof(enc));
	ck_assert_uint_eq(n, strlen(tc->out));
	ck_assert_str_eq(enc, tc->out);
	if (strchr(tc->input, '\t') != NULL) {
		/* control characters encode but are refused when decoded */
		ck_assert_int_eq(xtext_decode(enc, n, dec, sizeof(dec)), -1);
		return;
	}
	ck_assert_int_eq(xtext_decode(enc, n, dec, sizeof(dec)), (int)strlen(tc->input));
	ck_assert_str_eq(dec, tc->input);
}
END_TEST

/* every printable and eight-bit byte survives encode + decode */
START_TEST(test_xtext_round_trip_all_bytes)
{
	char src[256], enc[1024], dec[256];
	size_t n = 0, len;

	for (int c = 0x20; c <= 0xff; c++)
		if (c != 0x7f)
			src[n++] = (char)c;
	src[n] = '\0';
	len = xtext_encode(src, enc, sizeof(enc));
	ck_assert_uint_lt(len, sizeof(enc));
	ck_assert_uint_eq(strlen(enc), len);
	ck_assert_int_eq(xtext_decode(enc, len, dec, sizeof(dec)), (int)n);
	ck_assert_int_eq(memcmp(dec, src, n + 1), 0);
}
END_TEST

/* a clipped encoding is a NUL-terminated prefix of the full one, never
 * half an escape or bytes left unwritten */
START_TEST(test_xtext_encode_clip)
{
	const char *src = "a+b=c";
	const char *full = "a+2Bb+3Dc";
	char out[16];

	for (size_t dstlen = 1; dstlen <= strlen(full) + 1; dstlen++) {
		size_t n;

		memset(out, 'X', sizeof(out));
		n = xtext_encode(src, out, dstlen);
		ck_assert_uint_eq(n, strlen(full));
		ck_assert_msg(memchr(out, '\0', dstlen) != NULL, "dstlen %zu: not terminated", dstlen);
		ck_assert_msg(strncmp(out, full, strlen(out)) == 0, "dstlen %zu: \"%s\" is not a prefix",
		    dstlen, out);
		ck_assert_msg(out[dstlen] == 'X', "dstlen %zu: wrote past the end", dstlen);
	}
	memset(out, 'X', sizeof(out));
	ck_assert_uint_eq(xtext_encode(src, out, 0), strlen(full));
	ck_assert_int_eq(out[0], 'X');
	ck_assert_uint_eq(xtext_encode(src, NULL, 0), strlen(full));
}
END_TEST

/* ---- utf8_valid ---- */

struct utf8_case {
	const char	*name;
	const char	*input;
	size_t		 len;		/* 0: strlen */
	int		 want;
};

static const struct utf8_case utf8_cases[] = {
	{ "ascii", "hello", 0, 1 },
	{ "empty", "", 0, 1 },
	{ "two bytes", "\xc3\xa4", 0, 1 },
	{ "smallest two bytes", "\xc2\x80", 0, 1 },
	{ "three bytes", "\xe2\x82\xac", 0, 1 },
	{ "smallest three bytes", "\xe0\xa0\x80", 0, 1 },
	{ "before surrogates", "\xed\x9f\xbf", 0, 1 },
	{ "after surrogates", "\xee\x80\x80", 0, 1 },
	{ "U+FFFF", "\xef\xbf\xbf", 0, 1 },
	{ "four bytes", "\xf0\x9f\x98\x80", 0, 1 },
	{ "U+10FFFF", "\xf4\x8f\xbf\xbf", 0, 1 },
	{ "embedded NUL counted by len", "a\0b", 3, 1 },
	{ "overlong nul", "\xc0\x80", 0, 0 },
	{ "overlong slash", "\xc0\xaf", 0, 0 },
	{ "overlong c1", "\xc1\xbf", 0, 0 },
	{ "overlong three bytes", "\xe0\x80\xaf", 0, 0 },
	{ "overlong three bytes max", "\xe0\x9f\xbf", 0, 0 },
	{ "overlong four bytes", "\xf0\x80\x80\xaf", 0, 0 },
	{ "overlong four bytes max", "\xf0\x8f\xbf\xbf", 0, 0 },
	{ "high surrogate", "\xed\xa0\x80", 0, 0 },
	{ "low surrogate", "\xed\xbf\xbf", 0, 0 },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 0, 0 },
	{ "f5 lead", "\xf5\x80\x80\x80", 0, 0 },
	{ "ff byte", "\xff", 0, 0 },
	{ "fe byte", "a\xfe", 0, 0 },
	{ "lone continuation", "\x80", 0, 0 },
	{ "continuation after ascii", "a\xbf", 0, 0 },
	{ "truncated two", "\xc3", 0, 0 },
	{ "truncated three", "\xe2\x82", 0, 0 },
	{ "truncated four", "\xf0\x9f\x98", 0, 0 },
	{ "truncated by len", "\xe2\x82\xac", 2, 0 },
	{ "ascii in sequence", "\xe2" "a\xac", 0, 0 },
	{ "lead in sequence", "\xe2\xe2\xac", 0, 0 },
};

START_TEST(test_utf8_valid)
{
	const struct utf8_case *tc = &utf8_cases[_i];
	size_t len = tc->len ? tc->len : strlen(tc->input);

	ck_assert_msg(utf8_valid(tc->input, len) == tc->want, "%s", tc->name);
}
END_TEST

/* ---- smtp_cmd_split ---- */

struct split_case {
	const char	*name;
	const char	*line;
	size_t		 verblen;
	const char	*verb;
	const char	*arg;
};

static const struct split_case split_cases[] = {
	{ "mail", "mail FROM:<a@b.c>", 16, "MAIL", "FROM:<a@b.c>" },
	{ "no argument", "QUIT", 16, "QUIT", "" },
	{ "trailing space", "NOOP ", 16, "NOOP", "" },
	{ "many spaces", "EHLO    host.example", 16, "EHLO", "host.example" },
	{ "argument spaces kept", "HELP a b", 16, "HELP", "a b" },
	{ "mixed case", "eHlO x", 16, "EHLO", "x" },
	{ "empty line", "", 16, "", "" },
	{ "leading space", " MAIL x", 16, "", "MAIL x" },
	{ "overlong verb", "ABCDEFGHIJ arg", 5, "ABCD", "arg" },
	{ "verb exactly fits", "ABCD arg", 5, "ABCD", "arg" },
	{ "overlong verb, no arg", "ABCDEFGHIJ", 5, "ABCD", "" },
};

START_TEST(test_cmd_split)
{
	const struct split_case *tc = &split_cases[_i];
	char verb[16];
	const char *arg;

	memset(verb, 'Z', sizeof(verb));
	arg = smtp_cmd_split(tc->line, verb, tc->verblen);
	ck_assert_msg(strcmp(verb, tc->verb) == 0, "%s: verb \"%s\"", tc->name, verb);
	ck_assert_msg(strcmp(arg, tc->arg) == 0, "%s: arg \"%s\"", tc->name, arg);
	ck_assert_msg(arg >= tc->line && arg <= tc->line + strlen(tc->line), "%s: arg outside line", tc->name);
}
END_TEST

static Suite *
smtp_cmd_suite(void)
{
	Suite *s = suite_create("smtp_cmd");
	TCase *tc;

	tc = tcase_create("mail");
	tcase_add_loop_test(tc, test_parse_mail, 0, (int)NELEM(mail_cases));
	tcase_add_test(tc, test_mail_local_part_length);
	tcase_add_test(tc, test_mail_domain_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("rcpt");
	tcase_add_loop_test(tc, test_parse_rcpt, 0, (int)NELEM(rcpt_cases));
	tcase_add_test(tc, test_rcpt_utf8_flag);
	suite_add_tcase(s, tc);

	tc = tcase_create("domain");
	tcase_add_loop_test(tc, test_domain_canon, 0, (int)NELEM(canon_cases));
	tcase_add_test(tc, test_domain_canon_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("xtext");
	tcase_add_loop_test(tc, test_xtext_decode, 0, (int)NELEM(xdec_cases));
	tcase_add_test(tc, test_xtext_decode_limits);
	tcase_add_loop_test(tc, test_xtext_round_trip, 0, (int)NELEM(xenc_cases));
	tcase_add_test(tc, test_xtext_round_trip_all_bytes);
	tcase_add_test(tc, test_xtext_encode_clip);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8_valid, 0, (int)NELEM(utf8_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("split");
	tcase_add_loop_test(tc, test_cmd_split, 0, (int)NELEM(split_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(smtp_cmd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
