/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_policy.c - unit tests for spoold's pure decisions, table-driven:
 * when a domain is tried next (spoold/schedule.c: the backoff, its cap and
 * jitter, hold and held domains, with the clock given as the last attempt),
 * the ATRN argument (spoold/atrn.c), literal routes (route_literal in
 * spoold/route.c) and the per-address limit key (shared/cidr.c).
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrn.h"
#include "cidr.h"
#include "route.h"
#include "schedule.h"
#include "spoold_conf.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- schedule.c ---- */

struct backoff_case {
	unsigned	 failures;
	double		 retry;
	double		 base;		/* the wait before jitter */
};

static const struct backoff_case backoff_cases[] = {
	{ 1, 60, 60 },			/* the first failure waits retry */
	{ 2, 60, 120 },			/* then it doubles */
	{ 3, 60, 240 },
	{ 7, 60, 3840 },
	{ 8, 60, 7200 },		/* capped at 2 hours */
	{ 30, 60, 7200 },
	{ 1, 3 * 3600, 3 * 3600 },	/* a retry above the cap is the cap */
	{ 5, 3 * 3600, 3 * 3600 },
	{ 3, 1, 4 },
};

START_TEST(test_backoff)
{
	const struct backoff_case *c = &backoff_cases[_i];
	double d = schedule_backoff("site.example", c->failures, c->retry);

	ck_assert_msg(d >= c->base * 0.8 && d <= c->base * 1.2,
	    "%u failures, retry %.0f: %.1f s, want %.0f +-20%%", c->failures, c->retry, d, c->base);
	/* the same domain and count always give the same wait, so successive
	 * looks agree on when it is due */
	ck_assert(d == schedule_backoff("site.example", c->failures, c->retry));
}
END_TEST

/* the jitter spreads domains: not every domain waits the same */
START_TEST(test_backoff_spread)
{
	char name[32];
	double first = schedule_backoff("d0.example", 3, 60);
	int differ = 0;

	for (int i = 1; i < 20; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		differ += schedule_backoff(name, 3, 60) != first;
	}
	ck_assert_int_ge(differ, 15);
}
END_TEST

struct next_case {
	const char	*name;
	int		 configured;	/* else the domain has no block */
	enum domain_mode mode;
	int		 have_route;
	unsigned	 flags, failures;
	int64_t		 last_attempt;
	int64_t		 want_min, want_max;	/* SCHEDULE_NEVER for both: never */
};

static const struct next_case next_cases[] = {
	{ "backup, never tried: at the next look", 1, MODE_BACKUP, 0, 0, 0, 0, 0, 0 },
	{ "backup, last attempt good: at the next look", 1, MODE_BACKUP, 1, 0, 0, 5000, 0, 0 },
	{ "backup, 1 failure: retry later", 1, MODE_BACKUP, 1, 0, 1, 5000, 5000 + 48, 5000 + 72 },
	{ "backup, 3 failures: 4 retries later", 1, MODE_BACKUP, 1, 0, 3, 5000, 5000 + 192,
	    5000 + 288 },
	{ "backup, held", 1, MODE_BACKUP, 1, ROUTE_HELD, 2, 5000, SCHEDULE_NEVER, SCHEDULE_NEVER },
	{ "hold domain: only when the site asks", 1, MODE_HOLD, 1, 0, 3, 5000, SCHEDULE_NEVER,
	    SCHEDULE_NEVER },
	{ "hold domain, never tried", 1, MODE_HOLD, 0, 0, 0, 0, SCHEDULE_NEVER, SCHEDULE_NEVER },
	{ "not configured, 2 failures: 15 minutes doubled", 0, MODE_HOLD, 1, 0, 2, 100000,
	    100000 + 1440, 100000 + 2160 },
	{ "not configured, held", 0, MODE_HOLD, 1, ROUTE_HELD, 0, 0, SCHEDULE_NEVER,
	    SCHEDULE_NEVER },
};

START_TEST(test_next_attempt)
{
	const struct next_case *c = &next_cases[_i];
	char name[] = "site.example";
	struct domain_conf d = { .name = name, .mode = c->mode, .retry = 60 };
	struct spool_route rt = { .flags = c->flags, .failures = c->failures,
	    .last_attempt = c->last_attempt, .last_error = "" };
	int64_t t = schedule_next_attempt("site.example", c->configured ? &d : NULL,
	    c->have_route ? &rt : NULL);

	ck_assert_msg(t >= c->want_min && t <= c->want_max, "%s: %lld, want %lld..%lld", c->name,
	    (long long)t, (long long)c->want_min, (long long)c->want_max);
}
END_TEST

/* the time is never earlier than the backoff: a look at that second finds
 * the domain due */
START_TEST(test_next_attempt_rounds_up)
{
	char name[] = "x.example";
	struct domain_conf d = { .name = name, .mode = MODE_BACKUP, .retry = 7 };
	struct spool_route rt = { .failures = 2, .last_attempt = 1000, .last_error = "" };
	int64_t t = schedule_next_attempt("x.example", &d, &rt);

	ck_assert((double)(t - 1000) >= schedule_backoff("x.example", 2, 7));
	ck_assert((double)(t - 1000) < schedule_backoff("x.example", 2, 7) + 1);
}
END_TEST

/* ---- atrn.c ---- */

struct atrn_case {
	const char	*arg;
	int		 rc;
	size_t		 n;
	const char	*names[3];
};

static const struct atrn_case atrn_cases[] = {
	{ "a.example", 0, 1, { "a.example" } },
	{ "A.Example,b.example", 0, 2, { "a.example", "b.example" } },
	{ "a.example,a.example", 0, 1, { "a.example" } },	/* repeats once */
	{ "a.example,", -1, 0, { NULL } },			/* trailing comma */
	{ ",a.example", -1, 0, { NULL } },			/* empty item */
	{ "a..example", -1, 0, { NULL } },
	{ "a.example b.example", -1, 0, { NULL } },
	{ "", 0, 0, { NULL } },
};

START_TEST(test_atrn_parse)
{
	const struct atrn_case *c = &atrn_cases[_i];
	char names[ATRN_MAX_DOMAINS][SMTP_DOMAIN_MAX + 1];
	size_t n = 99;
	int rc = atrn_parse(c->arg, names, ATRN_MAX_DOMAINS, &n);

	ck_assert_msg(rc == c->rc, "\"%s\": rc %d", c->arg, rc);
	if (rc != 0)
		return;
	ck_assert_uint_eq(n, c->n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(names[i], c->names[i]);
}
END_TEST

/* at most max domains */
START_TEST(test_atrn_max)
{
	char names[2][SMTP_DOMAIN_MAX + 1];
	size_t n;

	ck_assert_int_eq(atrn_parse("a.example,b.example", names, 2, &n), 0);
	ck_assert_int_eq(atrn_parse("a.example,b.example,c.example", names, 2, &n), -1);
}
END_TEST

/* ---- route_literal ---- */

struct literal_case {
	enum route_kind	 kind;
	const char	*host;
	int		 port;
	int		 rc;
	int		 family;
	const char	*addr;
	int		 want_port;
};

static const struct literal_case literal_cases[] = {
	{ ROUTE_HOST, "[192.0.2.7]", 0, 0, AF_INET, "192.0.2.7", 25 },
	{ ROUTE_HOST, "[192.0.2.7]", 2525, 0, AF_INET, "192.0.2.7", 2525 },
	{ ROUTE_HOST, "[ipv6:2001:db8::5]", 26, 0, AF_INET6, "2001:db8::5", 26 },
	{ ROUTE_HOST, "[2001:db8::5]", 0, -1, 0, NULL, 0 },	/* RFC 5321 4.1.3: the tag */
	{ ROUTE_HOST, "[999.0.2.7]", 0, -1, 0, NULL, 0 },
	{ ROUTE_HOST, "[]", 0, -1, 0, NULL, 0 },
	{ ROUTE_HOST, "mx.example", 0, -1, 0, NULL, 0 },	/* a name, not a literal */
	{ ROUTE_REQUESTER, NULL, 0, 0, AF_INET, "198.51.100.9", 25 },
	{ ROUTE_REQUESTER, NULL, 2626, 0, AF_INET, "198.51.100.9", 2626 },
};

START_TEST(test_route_literal)
{
	const struct literal_case *c = &literal_cases[_i];
	char host[64];
	struct route how = { .kind = c->kind, .host = c->host ? host : NULL, .port = c->port };
	struct sockaddr_in req = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct route_target t;
	const char *why = NULL;
	char text[64];

	snprintf(host, sizeof(host), "%s", c->host ? c->host : "");
	inet_pton(AF_INET, "198.51.100.9", &req.sin_addr);
	ck_assert_int_eq(route_literal(&how, (struct sockaddr *)&req, &t, &why), c->rc);
	if (c->rc != 0) {
		ck_assert_ptr_nonnull(why);
		return;
	}
	ck_assert_int_eq(t.ss.ss_family, c->family);
	ck_assert_str_eq(sockaddr_text((struct sockaddr *)&t.ss, text, sizeof(text)), c->addr);
	ck_assert_int_eq(sockaddr_port((struct sockaddr *)&t.ss), c->want_port);
}
END_TEST

/* deliver-to requester without a requester (spoolctl flush, the scheduler) */
START_TEST(test_route_requester_missing)
{
	struct route how = { .kind = ROUTE_REQUESTER };
	struct route_target t;
	const char *why = NULL;

	ck_assert_int_eq(route_literal(&how, NULL, &t, &why), -1);
	ck_assert_str_eq(why, "deliver-to requester needs an ETRN from the site");
}
END_TEST

/* ---- sockaddr_limit_key ---- */

START_TEST(test_limit_key)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 }, s6b = s6, mapped = s6;
	char a[64], b[64];

	inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
	sockaddr_limit_key((struct sockaddr *)&s4, a, sizeof(a));
	ck_assert_str_eq(a, "192.0.2.1");
	/* one /64 is one client */
	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &s6.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:bbbb::9", &s6b.sin6_addr);
	sockaddr_limit_key((struct sockaddr *)&s6, a, sizeof(a));
	sockaddr_limit_key((struct sockaddr *)&s6b, b, sizeof(b));
	ck_assert_str_eq(a, "2001:db8:1:2::/64");
	ck_assert_str_eq(a, b);
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &mapped.sin6_addr);
	sockaddr_limit_key((struct sockaddr *)&mapped, a, sizeof(a));
	ck_assert_str_eq(a, "192.0.2.1");
}
END_TEST

static Suite *
policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc;

	tc = tcase_create("schedule");
	tcase_add_loop_test(tc, test_backoff, 0, (int)NELEM(backoff_cases));
	tcase_add_test(tc, test_backoff_spread);
	tcase_add_loop_test(tc, test_next_attempt, 0, (int)NELEM(next_cases));
	tcase_add_test(tc, test_next_attempt_rounds_up);
	suite_add_tcase(s, tc);

	tc = tcase_create("atrn");
	tcase_add_loop_test(tc, test_atrn_parse, 0, (int)NELEM(atrn_cases));
	tcase_add_test(tc, test_atrn_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("routes");
	tcase_add_loop_test(tc, test_route_literal, 0, (int)NELEM(literal_cases));
	tcase_add_test(tc, test_route_requester_missing);
	tcase_add_test(tc, test_limit_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
