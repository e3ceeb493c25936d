/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_dns_mx.c - unit tests for the parts of shared/dns.c that do no I/O:
 * dns_mx_select() (RFC 5321 §5.1 ordering and "we are an MX" pruning, RFC
 * 7505 null MX) and dns_name_valid().  Links dns.c (hence c-ares and libev,
 * which these tests never call).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXMX		8

struct mx_case {
	const char	*name;
	struct dns_mx	 in[MAXMX];
	size_t		 n;
	const char	*self[3];	/* NULL-terminated */
	const char	*want[MAXMX];	/* hosts kept, in order, NULL-terminated */
	int		 null_mx;
	int		 self_listed;
};

static const struct mx_case mx_cases[] = {
	{ "sorted by preference",
	    { { 20, "c.test" }, { 5, "a.test" }, { 10, "b.test" } }, 3,
	    { NULL }, { "a.test", "b.test", "c.test" }, 0, 0 },
	{ "equal preferences keep answer order",
	    { { 10, "x1.test" }, { 5, "a.test" }, { 10, "x2.test" }, { 10, "x3.test" } }, 4,
	    { NULL }, { "a.test", "x1.test", "x2.test", "x3.test" }, 0, 0 },
	{ "one record",
	    { { 0, "mx.test" } }, 1,
	    { "other.test", NULL }, { "mx.test" }, 0, 0 },
	{ "no records",
	    { { 0, "" } }, 0,
	    { "mx.test", NULL }, { NULL }, 0, 0 },
	{ "self not listed",
	    { { 10, "a.test" }, { 20, "b.test" } }, 2,
	    { "c.test", "d.test", NULL }, { "a.test", "b.test" }, 0, 0 },
	{ "self is the best MX: no route",
	    { { 20, "b.test" }, { 10, "me.test" } }, 2,
	    { "me.test", NULL }, { NULL }, 0, 1 },
	{ "self tied for best: the tie goes too",
	    { { 10, "other.test" }, { 10, "me.test" }, { 20, "b.test" } }, 3,
	    { "me.test", NULL }, { NULL }, 0, 1 },
	{ "self in the middle drops equal and worse",
	    { { 30, "c.test" }, { 10, "a.test" }, { 20, "me.test" }, { 20, "b.test" },
	      { 40, "d.test" }, { 15, "a2.test" } }, 6,
	    { "me.test", NULL }, { "a.test", "a2.test" }, 0, 1 },
	{ "self listed twice: the best one counts",
	    { { 30, "me.test" }, { 10, "a.test" }, { 20, "alias.test" }, { 25, "b.test" } }, 4,
	    { "me.test", "alias.test", NULL }, { "a.test" }, 0, 1 },
	{ "self last",
	    { { 10, "a.test" }, { 20, "b.test" }, { 30, "me.test" } }, 3,
	    { "me.test", NULL }, { "a.test", "b.test" }, 0, 1 },
	{ "self: case and trailing dot of the host ignored",
	    { { 10, "a.test" }, { 20, "MX.Example.ORG." } }, 2,
	    { "mx.example.org", NULL }, { "a.test" }, 0, 1 },
	{ "self: trailing dot of our name ignored",
	    { { 10, "a.test" }, { 20, "mx.example.org" } }, 2,
	    { "mx.example.org.", NULL }, { "a.test" }, 0, 1 },
	{ "self: a longer or shorter name is another host",
	    { { 10, "mx.example.org.evil" }, { 20, "mx.example.or" }, { 30, "x.mx.example.org" } }, 3,
	    { "mx.example.org", NULL },
	    { "mx.example.org.evil", "mx.example.or", "x.mx.example.org" }, 0, 0 },
	{ "null MX as \"\"",
	    { { 0, "" } }, 1,
	    { NULL }, { NULL }, 1, 0 },
	{ "null MX as \".\"",
	    { { 0, "." } }, 1,
	    { "me.test", NULL }, { NULL }, 1, 0 },
	{ "null MX with a preference other than 0 is still null MX",
	    { { 10, "." } }, 1,
	    { NULL }, { NULL }, 1, 0 },
	{ "null MX among others is not null MX; the root is dropped",
	    { { 0, "." }, { 10, "a.test" } }, 2,
	    { NULL }, { "a.test" }, 0, 0 },
	{ "\"\" among others is dropped",
	    { { 20, "b.test" }, { 0, "" }, { 10, "a.test" } }, 3,
	    { NULL }, { "a.test", "b.test" }, 0, 0 },
};

START_TEST(test_mx_select)
{
	const struct mx_case *c = &mx_cases[_i];
	struct dns_mx mx[MAXMX];
	size_t nself = 0, nwant = 0, kept;
	int null_mx = -1, self_listed = -1;

	memcpy(mx, c->in, sizeof(mx));
	while (c->self[nself] != NULL)
		nself++;
	while (nwant < MAXMX && c->want[nwant] != NULL)
		nwant++;
	kept = dns_mx_select(mx, c->n, c->self, nself, &null_mx, &self_listed);
	ck_assert_msg(kept == nwant, "%s: kept %zu, want %zu", c->name, kept, nwant);
	for (size_t i = 0; i < nwant; i++)
		ck_assert_msg(strcmp(mx[i].host, c->want[i]) == 0, "%s: [%zu] is %s, want %s",
		    c->name, i, mx[i].host, c->want[i]);
	ck_assert_msg(null_mx == c->null_mx, "%s: null_mx %d", c->name, null_mx);
	ck_assert_msg(self_listed == c->self_listed, "%s: self_listed %d", c->name, self_listed);
}
END_TEST

/* the preferences travel with their hosts */
START_TEST(test_mx_select_prefs)
{
	struct dns_mx mx[] = { { 20, "b.test" }, { 10, "a.test" }, { 10, "a2.test" } };
	size_t kept = dns_mx_select(mx, NELEM(mx), NULL, 0, NULL, NULL);

	ck_assert_uint_eq(kept, 3);
	ck_assert_uint_eq(mx[0].pref, 10);
	ck_assert_str_eq(mx[0].host, "a.test");
	ck_assert_uint_eq(mx[1].pref, 10);
	ck_assert_str_eq(mx[1].host, "a2.test");
	ck_assert_uint_eq(mx[2].pref, 20);
	ck_assert_str_eq(mx[2].host, "b.test");
}
END_TEST

/* null_mx and self_listed may be NULL */
START_TEST(test_mx_select_null_flags)
{
	struct dns_mx mx[] = { { 10, "a.test" }, { 20, "me.test" } };
	const char *self[] = { "me.test" };

	ck_assert_uint_eq(dns_mx_select(mx, NELEM(mx), self, 1, NULL, NULL), 1);
}
END_TEST

struct name_case {
	const char	*name;
	int		 valid;
};

static const struct name_case name_cases[] = {
	{ "example.org", 1 },
	{ "example.org.", 1 },
	{ "EXAMPLE.Org", 1 },
	{ "a", 1 },
	{ "a-b.c-d.test", 1 },
	{ "a--b.test", 1 },
	{ "xn--bcher-kva.example", 1 },
	{ "_25._tcp.mx.test", 1 },
	{ "127.0.0.1", 1 },
	{ "0.test", 1 },
	{ "", 0 },
	{ ".", 0 },
	{ "..", 0 },
	{ "a..b", 0 },
	{ ".a.b", 0 },
	{ "a.b..", 0 },
	{ "-a.test", 0 },
	{ "a-.test", 0 },
	{ "a.test-", 0 },
	{ "a.-test", 0 },
	{ "a b.test", 0 },
	{ "a\\.b.test", 0 },
	{ "a:b", 0 },
	{ "::1", 0 },
	{ "[127.0.0.1]", 0 },
	{ "a/b.test", 0 },
	{ "caf\303\251.test", 0 },
	{ "a\tb", 0 },
	{ "a.test\n", 0 },
};

START_TEST(test_name_valid)
{
	const struct name_case *c = &name_cases[_i];

	ck_assert_msg(dns_name_valid(c->name) == c->valid, "\"%s\": want %d", c->name, c->valid);
}
END_TEST

/* name_of - a name of labels of the given length, joined by dots */
static void
name_of(char *dst, size_t total, size_t label)
{
	for (size_t i = 0; i < total; i++)
		dst[i] = (i % (label + 1) == label) ? '.' : 'a';
	dst[total] = '\0';
}

START_TEST(test_name_lengths)
{
	char name[300];

	name_of(name, 63, 63);
	ck_assert(dns_name_valid(name));
	name_of(name, 64, 64);
	ck_assert(!dns_name_valid(name));
	/* 4 labels: 63.63.63.61 = 253 characters */
	name_of(name, 253, 63);
	ck_assert_uint_eq(strlen(name), 253);
	ck_assert(dns_name_valid(name));
	strcat(name, ".");
	ck_assert(dns_name_valid(name));
	name_of(name, 254, 63);
	ck_assert(!dns_name_valid(name));
}
END_TEST

START_TEST(test_strstatus)
{
	ck_assert_str_eq(dns_strstatus(DNS_OK), "OK");
	ck_assert_str_eq(dns_strstatus(DNS_NXDOMAIN), "NXDOMAIN");
	ck_assert_str_eq(dns_strstatus(DNS_NODATA), "NODATA");
	ck_assert_str_eq(dns_strstatus(DNS_TEMPFAIL), "TEMPFAIL");
	ck_assert_str_eq(dns_strstatus(DNS_BADNAME), "BADNAME");
}
END_TEST

static Suite *
dns_mx_suite(void)
{
	Suite *s = suite_create("dns_mx");
	TCase *tc;

	tc = tcase_create("select");
	tcase_add_loop_test(tc, test_mx_select, 0, (int)NELEM(mx_cases));
	tcase_add_test(tc, test_mx_select_prefs);
	tcase_add_test(tc, test_mx_select_null_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, test_name_valid, 0, (int)NELEM(name_cases));
	tcase_add_test(tc, test_name_lengths);
	tcase_add_test(tc, test_strstatus);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dns_mx_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
