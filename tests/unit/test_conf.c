/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_conf.c - unit tests for the configuration tokenizer (shared/conf.c)
 * and spoold's directives (spoold/spoold_conf.c, spoold/recipients.c): good
 * configurations and their values, bad ones and their "file:line: message",
 * every error collected, size/duration parsers, domain lookup, recipient
 * files, and every shipped contrib/ example.  SRCDIR is the source tree.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "pgsql_map.h"
#include "recipients.h"
#include "spoold_conf.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* the smallest configuration that loads: lines 1-3 */
#define BASE	"hostname mx.example\nlisten smtp 127.0.0.1:2525\ndatadir /var/lib/spoold\n"

/* warnings, captured through conf_warning_hook */
static char warnings[8][512];
static size_t n_warnings;

static void
capture_warning(const char *msg)
{
	if (n_warnings < NELEM(warnings))
		snprintf(warnings[n_warnings], sizeof(warnings[0]), "%s", msg);
	n_warnings++;
}

static void
setup(void)
{
	n_warnings = 0;
	conf_warning_hook = capture_warning;
}

/* parse_ok - text must parse without errors */
static struct spoold_conf *
parse_ok(const char *name, const char *text)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = spoold_conf_parse_text(name, text, &errs);

	ck_assert_msg(cf != NULL && errs.count == 0, "%s: %zu errors, first: %s", name, errs.count,
	    errs.count ? errs.msgs[0] : "(none, but NULL)");
	conf_errors_free(&errs);
	return cf;
}

static int
has_warning(const char *part)
{
	for (size_t i = 0; i < n_warnings && i < NELEM(warnings); i++)
		if (strstr(warnings[i], part) != NULL)
			return 1;
	return 0;
}

/* ---- good configurations ---- */

START_TEST(test_minimal_defaults)
{
	struct spoold_conf *cf = parse_ok("min", BASE);
	const struct sockaddr_in *s4;

	ck_assert_str_eq(cf->hostname, "mx.example");
	ck_assert_str_eq(cf->datadir, "/var/lib/spoold");
	ck_assert_uint_eq(cf->n_listens, 1);
	ck_assert_int_eq(cf->listens[0].kind, LISTEN_SMTP);
	ck_assert_str_eq(cf->listens[0].text, "127.0.0.1:2525");
	s4 = (const struct sockaddr_in *)&cf->listens[0].ss;
	ck_assert_int_eq(s4->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(s4->sin_port), 2525);
	ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(cf->listens[0].sslen, sizeof(struct sockaddr_in));
	ck_assert_ptr_null(cf->user);
	ck_assert_ptr_null(cf->tls_cert);
	ck_assert_ptr_null(cf->tls_key);
	ck_assert_str_eq(cf->tls_priority, DEF_TLS_PRIORITY);
	ck_assert_str_eq(cf->sasl_service, DEF_SASL_SERVICE);
	ck_assert_uint_eq(cf->n_sasl_opts, 0);
	ck_assert_uint_eq(cf->sasl_workers, DEF_SASL_WORKERS);
	ck_assert_uint_eq(cf->max_message_size, DEF_MAX_MESSAGE_SIZE);
	ck_assert_uint_eq(cf->max_recipients, DEF_MAX_RECIPIENTS);
	ck_assert_uint_eq(cf->max_connections, DEF_MAX_CONNECTIONS);
	ck_assert_uint_eq(cf->max_connections_ip, DEF_MAX_CONNECTIONS_IP);
	ck_assert_uint_eq(cf->timeout_idle, DEF_TIMEOUT_IDLE);
	ck_assert_uint_eq(cf->timeout_data, DEF_TIMEOUT_DATA);
	ck_assert_uint_eq(cf->timeout_tls, DEF_TIMEOUT_TLS);
	ck_assert_uint_eq(cf->max_spool_size, DEF_MAX_SPOOL_SIZE);
	ck_assert_uint_eq(cf->timeout_data_total, DEF_TIMEOUT_DATA_TOTAL);
	ck_assert_uint_eq(cf->min_data_rate, DEF_MIN_DATA_RATE);
	ck_assert_uint_eq(cf->min_data_rate_grace, DEF_MIN_DATA_RATE_GRACE);
	ck_assert_uint_eq(cf->junk_command_limit, DEF_JUNK_COMMAND_LIMIT);
	ck_assert_uint_eq(cf->rate_tls, DEF_RATE_TLS);
	ck_assert_uint_eq(cf->delivery_window, DEF_DELIVERY_WINDOW);
	ck_assert_uint_eq(cf->quarantine_max_age, DEF_QUARANTINE_MAX_AGE);
	ck_assert_uint_eq(cf->n_domains, 0);
	ck_assert_int_eq(n_warnings, 0);
	spoold_conf_free(cf);
}
END_TEST

START_TEST(test_every_top_directive)
{
	static const char text[] =
	    "# a comment line\n"
	    "\n"
	    "hostname mx2.isp.example   # trailing comment\n"
	    "listen smtp 0.0.0.0:25 [::]:25\n"
	    "listen odmr 127.0.0.1:366 [::1]:366\n"
	    "datadir /var/lib/spoold\n"
	    "user spoold\n"
	    "tls-cert /etc/spoold/cert.pem\n"
	    "tls-key /etc/spoold/key.pem\n"
	    "tls-priority \"NORMAL:-VERS-ALL:+VERS-TLS1.3\"\n"
	    "max-message-size 10M\n"
	    "max-recipients 200\n"
	    "max-connections 100 10\n"
	    "\ttimeout idle 30s\n"
	    "timeout data 5m\n"
	    "timeout tls 30\n"
	    "sasl-service spoold-test\n"
	    "sasl-option sasldb_path /var/lib/spoold/sasldb2\n"
	    "sasl-option mech_list CRAM-MD5 PLAIN\n"
	    "sasl-option quoted \"a \\\"b\\\" #c\" d\n"
	    "sasl-workers 16\n"
	    "max-spool-size 2G\n";
	struct spoold_conf *cf = parse_ok("full", text);
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	ck_assert_str_eq(cf->hostname, "mx2.isp.example");
	ck_assert_uint_eq(cf->n_listens, 4);
	ck_assert_int_eq(cf->listens[0].kind, LISTEN_SMTP);
	ck_assert_int_eq(cf->listens[1].kind, LISTEN_SMTP);
	ck_assert_int_eq(cf->listens[2].kind, LISTEN_ODMR);
	ck_assert_int_eq(cf->listens[3].kind, LISTEN_ODMR);
	s4 = (const struct sockaddr_in *)&cf->listens[0].ss;
	ck_assert_int_eq(s4->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(s4->sin_port), 25);
	ck_assert_uint_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	s6 = (const struct sockaddr_in6 *)&cf->listens[1].ss;
	ck_assert_int_eq(s6->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(s6->sin6_port), 25);
	ck_assert(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
	ck_assert_uint_eq(cf->listens[1].sslen, sizeof(struct sockaddr_in6));
	ck_assert_str_eq(cf->listens[1].text, "[::]:25");
	s4 = (const struct sockaddr_in *)&cf->listens[2].ss;
	ck_assert_int_eq(ntohs(s4->sin_port), 366);
	s6 = (const struct sockaddr_in6 *)&cf->listens[3].ss;
	ck_assert_int_eq(s6->sin6_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	ck_assert_int_eq(ntohs(s6->sin6_port), 366);
	ck_assert_str_eq(cf->datadir, "/var/lib/spoold");
	ck_assert_str_eq(cf->user, "spoold");
	ck_assert_str_eq(cf->tls_cert, "/etc/spoold/cert.pem");
	ck_assert_str_eq(cf->tls_key, "/etc/spoold/key.pem");
	ck_assert_str_eq(cf->tls_priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
	ck_assert_uint_eq(cf->max_message_size, 10 * 1024 * 1024);
	ck_assert_uint_eq(cf->max_recipients, 200);
	ck_assert_uint_eq(cf->max_connections, 100);
	ck_assert_uint_eq(cf->max_connections_ip, 10);
	ck_assert_uint_eq(cf->timeout_idle, 30);
	ck_assert_uint_eq(cf->timeout_data, 300);
	ck_assert_uint_eq(cf->timeout_tls, 30);
	ck_assert_str_eq(cf->sasl_service, "spoold-test");
	ck_assert_uint_eq(cf->n_sasl_opts, 3);
	ck_assert_uint_eq(cf->sasl_workers, 16);
	ck_assert_str_eq(cf->sasl_opts[0].key, "sasldb_path");
	ck_assert_str_eq(cf->sasl_opts[0].value, "/var/lib/spoold/sasldb2");
	ck_assert_str_eq(cf->sasl_opts[1].key, "mech_list");
	ck_assert_str_eq(cf->sasl_opts[1].value, "CRAM-MD5 PLAIN");
	ck_assert_str_eq(cf->sasl_opts[2].key, "quoted");
	ck_assert_str_eq(cf->sasl_opts[2].value, "a \"b\" #c d");
	ck_assert_uint_eq(cf->max_spool_size, 2ULL * 1024 * 1024 * 1024);
	spoold_conf_free(cf);
}
END_TEST

START_TEST(test_max_connections_per_ip)
{
	struct spoold_conf *cf = parse_ok("perip", BASE "max-connections 300\nmax-connections-per-ip 7\n");

	ck_assert_uint_eq(cf->max_connections, 300);
	ck_assert_uint_eq(cf->max_connections_ip, 7);
	spoold_conf_free(cf);
}
END_TEST

/* listen ... proxy-protocol-from CIDR...: each address of the line gets the
 * list; a line without it, none */
START_TEST(test_listen_proxy_from)
{
	struct spoold_conf *cf = parse_ok("proxy", BASE
	    "listen smtp 127.0.0.1:2526 [::1]:2526 proxy-protocol-from 10.0.0.0/8 2001:db8::1\n"
	    "listen odmr 127.0.0.1:366\n");
	struct sockaddr_in in = { .sin_family = AF_INET };

	ck_assert_uint_eq(cf->n_listens, 4);
	ck_assert_uint_eq(cf->listens[0].n_proxy_from, 0);
	for (size_t i = 1; i <= 2; i++) {
		ck_assert_int_eq(cf->listens[i].kind, LISTEN_SMTP);
		ck_assert_uint_eq(cf->listens[i].n_proxy_from, 2);
		in.sin_addr.s_addr = htonl(0x0a010203);
		ck_assert(cidr_match(&cf->listens[i].proxy_from[0], (struct sockaddr *)&in));
		in.sin_addr.s_addr = htonl(0x0b010203);
		ck_assert(!cidr_match(&cf->listens[i].proxy_from[0], (struct sockaddr *)&in));
		ck_assert_int_eq(cf->listens[i].proxy_from[1].family, AF_INET6);
	}
	ck_assert_str_eq(cf->listens[2].text, "[::1]:2526");
	ck_assert_uint_eq(cf->listens[3].n_proxy_from, 0);
	spoold_conf_free(cf);
}
END_TEST

/* require-tls: yes unless told, with or without a certificate */
START_TEST(test_require_tls)
{
	static const struct {
		const char	*name, *text;
		enum require_tls want;
	} cases[] = {
		{ "default", BASE, REQUIRE_TLS_YES },
		{ "default-cert", BASE "tls-cert /c.pem\ntls-key /k.pem\n", REQUIRE_TLS_YES },
		{ "yes", BASE "require-tls yes\n", REQUIRE_TLS_YES },
		{ "no", BASE "tls-cert /c.pem\ntls-key /k.pem\nrequire-tls no\n", REQUIRE_TLS_NO },
		{ "all", BASE "require-tls all\ntls-cert /c.pem\ntls-key /k.pem\n", REQUIRE_TLS_ALL },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		struct spoold_conf *cf = parse_ok(cases[i].name, cases[i].text);

		ck_assert_msg(cf->require_tls == cases[i].want, "%s: %d, want %d", cases[i].name,
		    (int)cf->require_tls, (int)cases[i].want);
		spoold_conf_free(cf);
	}
}
END_TEST

static const char domains_text[] =
    BASE
    "domain Example.COM. {\n"
    "    mode hold\n"
    "    etrn-from 203.0.113.0/28 2001:db8::/48 192.0.2.7\n"
    "    atrn-user example other\n"
    "    deliver-to [192.0.2.1]:25\n"
    "    tls may\n"
    "    quota 2G 1000\n"
    "    max-age 30d\n"
    "    retry 15m\n"
    "    recipients any\n"
    "}\n"
    "domain b.example {\n"
    "    mode backup\n"
    "    deliver-to host.example:2525\n"
    "    tls require\n"
    "    recipients any\n"
    "}\n"
    "domain c.example {\n"
    "    deliver-to mx\n"
    "    tls verify\n"
    "    recipients any\n"
    "}\n"
    "domain d.example {\n"
    "    deliver-to requester\n"
    "    etrn-from 192.0.2.9\n"
    "    recipients any\n"
    "}\n"
    "domain e.example {\n"
    "    deliver-to requester:2526\n"
    "    etrn-from 2001:db8::/64\n"
    "    recipients any\n"
    "}\n"
    "domain f.example {\n"
    "    deliver-to [IPv6:2001:DB8::25]:2525\n"
    "    recipients any\n"
    "}\n"
    "domain g.example {\n"
    "    deliver-to Relay.Example\n"
    "    recipients any\n"
    "}\n";

START_TEST(test_domains)
{
	struct spoold_conf *cf = parse_ok("dom", domains_text);
	const struct domain_conf *d;

	ck_assert_uint_eq(cf->n_domains, 7);

	d = spoold_conf_domain(cf, "example.com");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->name, "example.com");
	ck_assert_int_eq(d->line, 4);
	ck_assert_int_eq(d->mode, MODE_HOLD);
	ck_assert_uint_eq(d->n_etrn_from, 3);
	ck_assert_int_eq(d->etrn_from[0].family, AF_INET);
	ck_assert_int_eq(d->etrn_from[0].prefix, 28);
	ck_assert_int_eq(d->etrn_from[1].family, AF_INET6);
	ck_assert_int_eq(d->etrn_from[1].prefix, 48);
	ck_assert_int_eq(d->etrn_from[2].prefix, 32);
	ck_assert_uint_eq(d->n_atrn_users, 2);
	ck_assert_str_eq(d->atrn_users[0], "example");
	ck_assert_str_eq(d->atrn_users[1], "other");
	ck_assert_int_eq(d->route.kind, ROUTE_HOST);
	ck_assert_str_eq(d->route.host, "[192.0.2.1]");
	ck_assert_int_eq(d->route.port, 25);
	ck_assert_int_eq(d->tls, TLS_MAY);
	ck_assert_uint_eq(d->quota_bytes, 2ULL * 1024 * 1024 * 1024);
	ck_assert_uint_eq(d->quota_messages, 1000);
	ck_assert_uint_eq(d->max_age, 30 * 86400);
	ck_assert_uint_eq(d->retry, 15 * 60);
	ck_assert_int_eq(d->recipients_any, 1);
	ck_assert_ptr_null(d->recipients_file);
	ck_assert_ptr_null(d->recipients);

	d = spoold_conf_domain(cf, "b.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->mode, MODE_BACKUP);
	ck_assert_int_eq(d->route.kind, ROUTE_HOST);
	ck_assert_str_eq(d->route.host, "host.example");
	ck_assert_int_eq(d->route.port, 2525);
	ck_assert_int_eq(d->tls, TLS_REQUIRE);
	ck_assert_uint_eq(d->quota_bytes, 0);
	ck_assert_uint_eq(d->quota_messages, 0);
	ck_assert_uint_eq(d->max_age, DEF_MAX_AGE);
	ck_assert_uint_eq(d->retry, DEF_RETRY);

	d = spoold_conf_domain(cf, "c.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->mode, MODE_HOLD);
	ck_assert_int_eq(d->route.kind, ROUTE_MX);
	ck_assert_int_eq(d->tls, TLS_VERIFY);

	d = spoold_conf_domain(cf, "d.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->route.kind, ROUTE_REQUESTER);
	ck_assert_int_eq(d->route.port, 0);
	ck_assert_ptr_null(d->route.host);

	d = spoold_conf_domain(cf, "e.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->route.kind, ROUTE_REQUESTER);
	ck_assert_int_eq(d->route.port, 2526);

	d = spoold_conf_domain(cf, "f.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->route.kind, ROUTE_HOST);
	ck_assert_str_eq(d->route.host, "[ipv6:2001:db8::25]");
	ck_assert_int_eq(d->route.port, 2525);

	d = spoold_conf_domain(cf, "g.example");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->route.kind, ROUTE_HOST);
	ck_assert_str_eq(d->route.host, "relay.example");
	ck_assert_int_eq(d->route.port, 0);

	/* warnings: backscatter for b.example, an etrn-from range with
	 * "deliver-to requester" for e.example; none for d.example */
	ck_assert_msg(has_warning("dom:20: warning: domain b.example: backup MX"), "no backscatter warning");
	ck_assert_msg(has_warning("dom:35: warning: domain e.example: \"deliver-to requester\""),
	    "no requester warning");
	ck_assert_msg(!has_warning("d.example"), "warning for a single etrn-from address");
	ck_assert_msg(!has_warning("tls"), "a warning about tls require/verify");
	ck_assert_int_eq(n_warnings, 2);
	spoold_conf_free(cf);
}
END_TEST

/* Callers pass canonical (lower-case, dotless) names, as smtp_parse_rcpt
 * produces them; the lookup itself is exact. */
/* archive-to: the address made canonical (the domain lower-cased);
 * quarantine-max-age as a duration */
START_TEST(test_archive_quarantine)
{
	struct spoold_conf *cf = parse_ok("arch", BASE "quarantine-max-age 2d\n" "domain a.example {\n"
	    "recipients any\narchive-to Keep@Archive.Example\n}\n");

	ck_assert_uint_eq(cf->quarantine_max_age, 2 * 86400);
	ck_assert_uint_eq(cf->n_domains, 1);
	ck_assert_str_eq(cf->domains[0].archive_to, "Keep@archive.example");
	spoold_conf_free(cf);
}
END_TEST

START_TEST(test_domain_lookup)
{
	struct spoold_conf *cf = parse_ok("lookup", BASE
	    "domain Zeta.Example {\nrecipients any\n}\n"
	    "domain Example.COM {\nrecipients any\n}\n"
	    "domain alpha.example {\nrecipients any\n}\n"
	    "domain mid.example. {\nrecipients any\n}\n");

	ck_assert_uint_eq(cf->n_domains, 4);
	/* kept sorted, for bsearch */
	for (size_t i = 1; i < cf->n_domains; i++)
		ck_assert(strcmp(cf->domains[i - 1].name, cf->domains[i].name) < 0);
	ck_assert_ptr_nonnull(spoold_conf_domain(cf, "example.com"));
	ck_assert_str_eq(spoold_conf_domain(cf, "example.com")->name, "example.com");
	ck_assert_ptr_nonnull(spoold_conf_domain(cf, "zeta.example"));
	ck_assert_ptr_nonnull(spoold_conf_domain(cf, "alpha.example"));
	ck_assert_ptr_nonnull(spoold_conf_domain(cf, "mid.example"));
	ck_assert_ptr_null(spoold_conf_domain(cf, "Example.COM"));
	ck_assert_ptr_null(spoold_conf_domain(cf, "missing.example"));
	ck_assert_ptr_null(spoold_conf_domain(cf, "sub.example.com"));
	ck_assert_ptr_null(spoold_conf_domain(cf, "com"));
	ck_assert_ptr_null(spoold_conf_domain(cf, ""));
	spoold_conf_free(cf);

	cf = parse_ok("empty", BASE);
	ck_assert_ptr_null(spoold_conf_domain(cf, "example.com"));
	spoold_conf_free(cf);
}
END_TEST

/* ---- bad configurations ---- */

struct bad_case {
	const char	*name;
	const char	*text;
	const char	*prefix;	/* "name:LINE: " or "name: " for whole-file errors */
	const char	*msg;		/* a substring of the message */
};

#define DOMAIN_OPEN	"domain a.example {\n"		/* line 4 after BASE */

static const struct bad_case bad_cases[] = {
	{ "unknown", BASE "frobnicate yes\n", "unknown:4: ", "unknown directive \"frobnicate\"" },
	{ "unknown-in-block", BASE DOMAIN_OPEN "recipients any\ncolour blue\n}\n",
	  "unknown-in-block:6: ", "unknown directive \"colour\" in this block" },
	{ "top-level-in-block", BASE DOMAIN_OPEN "recipients any\nhostname x.example\n}\n",
	  "top-level-in-block:6: ", "unknown directive \"hostname\"" },
	{ "block-level-at-top", BASE "mode hold\n", "block-level-at-top:4: ", "unknown directive \"mode\"" },
	{ "bad-size", BASE "max-message-size 10X\n", "bad-size:4: ", "max-message-size: bad size \"10X\"" },
	{ "bad-size-negative", BASE "max-message-size -1\n", "bad-size-negative:4: ", "bad size \"-1\"" },
	{ "bad-spool-size", BASE "max-spool-size 2GB\n", "bad-spool-size:4: ", "max-spool-size: bad size" },
	{ "spool-size-too-small", BASE "max-spool-size 512K\n", "spool-size-too-small: ", "at least 1M" },
	{ "bad-duration", BASE "timeout idle 5x\n", "bad-duration:4: ", "timeout idle: bad duration \"5x\"" },
	{ "zero-duration", BASE "timeout data 0\n", "zero-duration:4: ", "timeout data: bad duration \"0\"" },
	{ "bad-timeout-kind", BASE "timeout forever 5m\n", "bad-timeout-kind:4: ", "\"forever\" is not idle, data, data-total, tls, smtp-connect" },
	{ "bad-min-data-rate", BASE "min-data-rate fast\n", "bad-min-data-rate:4: ", "min-data-rate: bad size \"fast\"" },
	{ "bad-min-data-grace", BASE "min-data-rate 500 soon\n", "bad-min-data-grace:4: ", "min-data-rate: bad duration \"soon\"" },
	{ "bad-junk-limit", BASE "junk-command-limit -1\n", "bad-junk-limit:4: ", "junk-command-limit: bad number \"-1\"" },
	{ "zero-window", BASE "delivery-window 0\n", "zero-window:4: ", "delivery-window: bad number \"0\" (1 to 1000)" },
	{ "milter-spec", BASE "milter av tcp:1.2.3.4:5\n", "milter-spec:4: ", "milter av: \"tcp:1.2.3.4:5\": not unix:/path or inet:ADDRESS:PORT" },
	{ "milter-name", BASE "milter a/b inet:127.0.0.1:5\n", "milter-name:4: ", "milter: \"a/b\" is not a name" },
	{ "milter-host", BASE "milter av inet:localhost:5\n", "milter-host:4: ", "inet: takes an address" },
	{ "milter-port", BASE "milter av inet:127.0.0.1:0\n", "milter-port:4: ", "the port is not a number from 1 to 65535" },
	{ "milter-relative", BASE "milter av unix:run/av.sock\n", "milter-relative:4: ", "unix: needs an absolute path" },
	{ "milter-twice", BASE "milter av inet:127.0.0.1:5\nmilter av inet:127.0.0.1:6\n", "milter-twice:5: ", "milter av is already defined at line 4" },
	{ "milter-timeout", BASE "milter-timeout body 5s\n", "milter-timeout:4: ", "milter-timeout: \"body\" is not connect, command or eom" },
	{ "milter-default", BASE "milter-default-action bounce\n", "milter-default:4: ", "is not tempfail, accept or reject" },
	{ "filter-value", BASE DOMAIN_OPEN "recipients any\nfilter maybe\n}\n", "filter-value:6: ", "filter: \"maybe\" is not on or off" },
	{ "archive-not-address", BASE DOMAIN_OPEN "recipients any\narchive-to archive.example\n}\n", "archive-not-address:6: ", "archive-to: \"archive.example\" is not a mail address" },
	{ "archive-bad-domain", BASE DOMAIN_OPEN "recipients any\narchive-to a@b..c\n}\n", "archive-bad-domain:6: ", "is not a mail address" },
	{ "quarantine-age", BASE "quarantine-max-age forever\n", "quarantine-age:4: ", "quarantine-max-age: bad duration" },
	{ "big-window", BASE "delivery-window 1001\n", "big-window:4: ", "delivery-window: bad number \"1001\" (1 to 1000)" },
	{ "zero-sasl-workers", BASE "sasl-workers 0\n", "zero-sasl-workers:4: ", "sasl-workers: bad number \"0\" (1 to 64)" },
	{ "many-sasl-workers", BASE "sasl-workers 65\n", "many-sasl-workers:4: ", "sasl-workers: bad number \"65\" (1 to 64)" },
	{ "bad-rate-tls", BASE "rate-tls lots\n", "bad-rate-tls:4: ", "rate-tls: bad number \"lots\"" },
	{ "bad-max-age", BASE DOMAIN_OPEN "recipients any\nmax-age 30y\n}\n", "bad-max-age:6: ", "max-age: bad duration" },
	{ "bad-retry", BASE DOMAIN_OPEN "recipients any\nretry m\n}\n", "bad-retry:6: ", "retry: bad duration \"m\"" },
	{ "zero-count", BASE "max-recipients 0\n", "zero-count:4: ",
	  "max-recipients: \"0\" is not a number from 1 to 65535" },
	{ "rcpt-over-16-bits", BASE "max-recipients 65536\n", "rcpt-over-16-bits:4: ",
	  "max-recipients: \"65536\" is not a number from 1 to 65535" },
	{ "bad-count", BASE "max-connections 10 x\n", "bad-count:4: ", "max-connections: bad number \"x\"" },
	{ "unknown-mode", BASE DOMAIN_OPEN "mode park\nrecipients any\n}\n", "unknown-mode:5: ",
	  "mode: \"park\" is not hold or backup" },
	{ "bad-cidr-prefix", BASE DOMAIN_OPEN "recipients any\netrn-from 10.0.0.1/33\n}\n",
	  "bad-cidr-prefix:6: ", "etrn-from: \"10.0.0.1/33\"" },
	{ "cidr-host-bits", BASE DOMAIN_OPEN "recipients any\netrn-from 10.0.0.1/8\n}\n",
	  "cidr-host-bits:6: ", "etrn-from: \"10.0.0.1/8\"" },
	{ "cidr-v6-host-bits", BASE DOMAIN_OPEN "recipients any\netrn-from 2001:db8::1/32\n}\n",
	  "cidr-v6-host-bits:6: ", "etrn-from: \"2001:db8::1/32\"" },
	{ "cidr-garbage", BASE DOMAIN_OPEN "recipients any\netrn-from example.com\n}\n",
	  "cidr-garbage:6: ", "etrn-from: \"example.com\"" },
	{ "duplicate-domain", BASE DOMAIN_OPEN "recipients any\n}\ndomain A.Example. {\nrecipients any\n}\n",
	  "duplicate-domain:7: ", "domain a.example is already defined at line 4" },
	{ "bad-domain-name", BASE "domain -a.example {\nrecipients any\n}\n", "bad-domain-name:4: ",
	  "domain: \"-a.example\" is not a valid domain name" },
	{ "literal-domain", BASE "domain [192.0.2.1] {\nrecipients any\n}\n", "literal-domain:4: ",
	  "is not a valid domain name" },
	{ "domain-two-names", BASE "domain a.example b.example {\nrecipients any\n}\n",
	  "domain-two-names:4: ", "\"domain\" takes 1 argument" },
	{ "domain-without-block", BASE "domain a.example\n", "domain-without-block:4: ", "\"domain\" needs a block" },
	{ "block-on-plain", BASE "user spoold {\n}\n", "block-on-plain:4: ", "\"user\" does not take a block" },
	{ "missing-brace", BASE DOMAIN_OPEN "recipients any\n", "missing-brace:4: ",
	  "block opened here is not closed" },
	{ "stray-brace", BASE "}\n", "stray-brace:4: ", "\"}\" without an open block" },
	{ "one-line-block", BASE "domain a.example { recipients any }\n", "one-line-block:4: ",
	  "\"{\" must end its line" },
	{ "open-brace-mid", BASE "domain a.example { recipients any\nmode hold\n}\n", "open-brace-mid:4: ",
	  "\"{\" must end its line" },
	{ "lone-open-brace", BASE "{\n}\n", "lone-open-brace:4: ", "unknown directive \"{\"" },
	{ "brace-not-alone", BASE DOMAIN_OPEN "recipients any\n} x\n}\n", "brace-not-alone:6: ",
	  "\"}\" must be alone on its line" },
	{ "unterminated-quote", BASE "user \"spoold\n", "unterminated-quote:4: ", "unterminated quoted string" },
	{ "quote-then-text", BASE "user \"spo\"old\n", "quote-then-text:4: ", "followed by a blank" },
	{ "missing-hostname", "listen smtp 127.0.0.1:25\ndatadir /x\n", "missing-hostname: ",
	  "\"hostname\" is required" },
	{ "missing-datadir", "hostname mx.example\nlisten smtp 127.0.0.1:25\n", "missing-datadir: ",
	  "\"datadir\" is required" },
	{ "missing-listen", "hostname mx.example\ndatadir /x\n", "missing-listen: ", "no \"listen smtp" },
	{ "only-odmr-listen", "hostname mx.example\ndatadir /x\nlisten odmr 127.0.0.1:366\n", "only-odmr-listen: ",
	  "no \"listen smtp" },
	{ "bad-hostname", "hostname bad_name\nlisten smtp 127.0.0.1:25\ndatadir /x\n", "bad-hostname:1: ",
	  "is not a valid host name" },
	{ "hostname-twice", BASE "hostname other.example\n", "hostname-twice:4: ",
	  "\"hostname\" given twice (first at line 1)" },
	{ "size-twice", BASE "max-message-size 1M\nmax-message-size 2M\n", "size-twice:5: ",
	  "\"max-message-size\" given twice (first at line 4)" },
	{ "no-recipients", BASE DOMAIN_OPEN "mode hold\n}\n", "no-recipients:6: ",
	  "domain a.example: say which recipients to accept" },
	{ "recipients-twice", BASE DOMAIN_OPEN "recipients any\nrecipients any\n}\n", "recipients-twice:6: ",
	  "\"recipients\" given twice" },
	{ "recipients-missing-file", BASE DOMAIN_OPEN "recipients /nonexistent/spoold-test-rcpts\n}\n",
	  "recipients-missing-file:5: ", "/nonexistent/spoold-test-rcpts" },
	{ "tls-cert-without-key", BASE "tls-cert /etc/spoold/cert.pem\n", "tls-cert-without-key: ",
	  "tls-cert and tls-key go together" },
	{ "tls-key-without-cert", BASE "tls-key /etc/spoold/key.pem\n", "tls-key-without-cert: ",
	  "tls-cert and tls-key go together" },
	{ "listen-bad-kind", BASE "listen imap 127.0.0.1:143\n", "listen-bad-kind:4: ",
	  "listen: \"imap\" is not smtp or odmr" },
	{ "listen-no-port", BASE "listen smtp 127.0.0.1\n", "listen-no-port:4: ", "listen: \"127.0.0.1\" is not" },
	{ "listen-bad-port", BASE "listen smtp 127.0.0.1:65536\n", "listen-bad-port:4: ", "\"127.0.0.1:65536\"" },
	{ "listen-hostname", BASE "listen smtp localhost:25\n", "listen-hostname:4: ", "\"localhost:25\"" },
	{ "listen-v6-unbracketed", BASE "listen smtp ::1:25\n", "listen-v6-unbracketed:4: ", "\"::1:25\"" },
	{ "listen-no-address", BASE "listen smtp\n", "listen-no-address:4: ", "\"listen\" takes at least 2 arguments" },
	{ "twice", BASE "datadir /other\n", "twice:4: ", "\"datadir\" given twice" },
	{ "user-no-arg", BASE "user\n", "user-no-arg:4: ", "\"user\" takes 1 argument" },
	{ "too-many-args", BASE "timeout idle 5m 6m\n", "too-many-args:4: ", "\"timeout\" takes 2 arguments" },
	{ "quota-too-many", BASE DOMAIN_OPEN "recipients any\nquota 1G 10 20\n}\n", "quota-too-many:6: ",
	  "\"quota\" takes at most 2 arguments" },
	{ "bad-quota", BASE DOMAIN_OPEN "recipients any\nquota 2X\n}\n", "bad-quota:6: ", "quota: bad size \"2X\"" },
	{ "bad-tls", BASE DOMAIN_OPEN "recipients any\ntls maybe\n}\n", "bad-tls:6: ",
	  "tls: \"maybe\" is not may, require or verify" },
	{ "deliver-to-twice", BASE DOMAIN_OPEN "recipients any\ndeliver-to mx\ndeliver-to mx\n}\n",
	  "deliver-to-twice:7: ", "\"deliver-to\" given twice" },
	{ "deliver-to-port-0", BASE DOMAIN_OPEN "recipients any\ndeliver-to host.example:0\n}\n",
	  "deliver-to-port-0:6: ", "deliver-to: \"host.example:0\"" },
	{ "deliver-to-unclosed", BASE DOMAIN_OPEN "recipients any\ndeliver-to [192.0.2.1:25\n}\n",
	  "deliver-to-unclosed:6: ", "deliver-to: \"[192.0.2.1:25\"" },
	{ "deliver-to-bad-literal", BASE DOMAIN_OPEN "recipients any\ndeliver-to [192.0.2.300]:25\n}\n",
	  "deliver-to-bad-literal:6: ", "deliver-to: " },
	{ "deliver-to-bad-host", BASE DOMAIN_OPEN "recipients any\ndeliver-to bad_host:25\n}\n",
	  "deliver-to-bad-host:6: ", "deliver-to: \"bad_host:25\"" },
	{ "bad-require-tls", BASE "require-tls maybe\n", "bad-require-tls:4: ",
	  "require-tls: \"maybe\" is not yes, all or no" },
	{ "require-tls-all-no-cert", BASE "require-tls all\n", "require-tls-all-no-cert:4: ",
	  "require-tls all needs tls-cert and tls-key" },
	{ "verify-no-primary", BASE DOMAIN_OPEN "recipients verify\n}\n", "verify-no-primary:5: ",
	  "domain a.example: recipients verify needs a primary to ask" },
	{ "verify-requester", BASE DOMAIN_OPEN "deliver-to requester\netrn-from 192.0.2.1\nrecipients verify\n}\n",
	  "verify-requester:7: ", "recipients verify needs a primary to ask" },
	{ "verify-any", BASE DOMAIN_OPEN "deliver-to mx\nrecipients any verify\n}\n", "verify-any:6: ",
	  "\"any\" takes every address, there is nothing to verify" },
	{ "verify-twice", BASE DOMAIN_OPEN "deliver-to mx\nrecipients verify verify\n}\n", "verify-twice:6: ",
	  "recipients: verify given twice" },
	{ "verify-not-verify", BASE DOMAIN_OPEN "deliver-to mx\nrecipients any check\n}\n",
	  "verify-not-verify:6: ", "recipients: \"check\" after the file: only \"verify\" may follow" },
	{ "verify-bad-expire", BASE "verify-positive-expire 31days\n", "verify-bad-expire:4: ",
	  "verify-positive-expire: bad duration \"31days\"" },
	{ "verify-zero-negative", BASE "verify-negative-expire 0\n", "verify-zero-negative:4: ",
	  "verify-negative-expire: bad duration \"0\"" },
	{ "verify-bad-timeout", BASE "verify-timeout soon\n", "verify-bad-timeout:4: ",
	  "verify-timeout: bad duration \"soon\"" },
	{ "verify-zero-rate", BASE "verify-rate 0\n", "verify-zero-rate:4: ", "verify-rate: bad number \"0\"" },
	{ "verify-bad-refresh", BASE "verify-positive-refresh weekly\n", "verify-bad-refresh:4: ",
	  "verify-positive-refresh: bad duration \"weekly\"" },
	{ "verify-zero-refresh", BASE "verify-positive-refresh 0\n", "verify-zero-refresh:4: ",
	  "verify-positive-refresh: bad duration \"0\"" },
	{ "verify-refresh-equal", BASE "verify-positive-expire 2d\nverify-positive-refresh 48h\n",
	  "verify-refresh-equal:5: ", "verify-positive-refresh 172800s must be shorter than "
	  "verify-positive-expire (172800s)" },
	{ "verify-refresh-longer", BASE "verify-positive-refresh 40d\n", "verify-refresh-longer:4: ",
	  "verify-positive-refresh 3456000s must be shorter than verify-positive-expire (2678400s)" },
	{ "verify-expire-after-refresh", BASE "verify-positive-refresh 1d\nverify-positive-expire 12h\n",
	  "verify-expire-after-refresh:5: ", "verify-positive-expire 43200s must be longer than "
	  "verify-positive-refresh (86400s)" },
	{ "nested-domain", BASE DOMAIN_OPEN "recipients any\ndomain b.example {\n}\n}\n", "nested-domain:6: ",
	  "unknown directive \"domain\" in this block" },
};

START_TEST(test_bad_config)
{
	const struct bad_case *tc = &bad_cases[_i];
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = spoold_conf_parse_text(tc->name, tc->text, &errs);
	int found = 0;

	ck_assert_msg(cf == NULL, "%s: accepted", tc->name);
	ck_assert_msg(errs.count >= 1, "%s: NULL without a message", tc->name);
	for (size_t i = 0; i < errs.count; i++)
		if (strncmp(errs.msgs[i], tc->prefix, strlen(tc->prefix)) == 0 &&
		    strstr(errs.msgs[i] + strlen(tc->prefix), tc->msg) != NULL)
			found = 1;
	ck_assert_msg(found, "%s: no \"%s...%s\" among %zu errors; first: %s", tc->name, tc->prefix,
	    tc->msg, errs.count, errs.msgs[0]);
	/* each bad config has one mistake: exactly one message */
	ck_assert_msg(errs.count == 1, "%s: %zu errors, want 1; second: %s", tc->name, errs.count,
	    errs.count > 1 ? errs.msgs[1] : "");
	conf_errors_free(&errs);
}
END_TEST

/* every error is collected, in line order, before the parse fails */
START_TEST(test_all_errors_collected)
{
	struct conf_errors errs = { 0 };
	static const char text[] =
	    BASE
	    "frobnicate\n"			/* 4 */
	    "max-message-size 10X\n"		/* 5 */
	    "timeout idle never\n";		/* 6 */
	static const char *const want[] = {
	    "three:4: unknown directive", "three:5: max-message-size: bad size", "three:6: timeout idle: bad duration",
	};

	ck_assert_ptr_null(spoold_conf_parse_text("three", text, &errs));
	ck_assert_uint_eq(errs.count, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_msg(strncmp(errs.msgs[i], want[i], strlen(want[i])) == 0, "error %zu: %s", i, errs.msgs[i]);
	conf_errors_free(&errs);
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_null(errs.msgs);
}
END_TEST

/* line errors, block errors and whole-file errors together; errors already
 * in errs are kept */
START_TEST(test_errors_mixed_and_appended)
{
	struct conf_errors errs = { 0 };
	static const char text[] =
	    "listen smtp 127.0.0.1:25\n"		/* 1 */
	    "max-recipients many\n"		/* 2 */
	    "domain a.example {\n"		/* 3 */
	    "    mode relay\n"			/* 4 */
	    "    etrn-from 10.0.0.1/33 10.0.0.0/8 10.1.0.1/8\n"	/* 5: two bad */
	    "}\n"				/* 6: no recipients */
	    "domain b.example {\n"		/* 7: not closed */
	    "    recipients any\n";
	size_t n;

	ck_assert_ptr_null(spoold_conf_parse_text("first", "hostname bad_host\n" "listen smtp x\n", &errs));
	n = errs.count;
	ck_assert_uint_ge(n, 2);
	ck_assert_ptr_null(spoold_conf_parse_text("mixed", text, &errs));
	ck_assert_msg(errs.count - n == 8, "%zu errors", errs.count - n);
	ck_assert(strncmp(errs.msgs[0], "first:1: ", 9) == 0);
	ck_assert_msg(strncmp(errs.msgs[n + 0], "mixed:2: ", 9) == 0, "%s", errs.msgs[n + 0]);
	ck_assert_msg(strncmp(errs.msgs[n + 1], "mixed:4: ", 9) == 0, "%s", errs.msgs[n + 1]);
	ck_assert_msg(strncmp(errs.msgs[n + 2], "mixed:5: ", 9) == 0, "%s", errs.msgs[n + 2]);
	ck_assert_msg(strstr(errs.msgs[n + 2], "10.0.0.1/33") != NULL, "%s", errs.msgs[n + 2]);
	ck_assert_msg(strncmp(errs.msgs[n + 3], "mixed:5: ", 9) == 0, "%s", errs.msgs[n + 3]);
	ck_assert_msg(strstr(errs.msgs[n + 3], "10.1.0.1/8") != NULL, "%s", errs.msgs[n + 3]);
	ck_assert_msg(strncmp(errs.msgs[n + 4], "mixed:6: ", 9) == 0, "%s", errs.msgs[n + 4]);
	ck_assert_msg(strncmp(errs.msgs[n + 5], "mixed:7: ", 9) == 0, "%s", errs.msgs[n + 5]);
	ck_assert_msg(strstr(errs.msgs[n + 6], "\"hostname\" is required") != NULL, "%s", errs.msgs[n + 6]);
	ck_assert_msg(strstr(errs.msgs[n + 7], "\"datadir\" is required") != NULL, "%s", errs.msgs[n + 7]);
	conf_errors_free(&errs);
}
END_TEST

/* ---- value parsers ---- */

struct num_case {
	const char	*input;
	int		 rc;
	uint64_t	 want;
};

static const struct num_case size_cases[] = {
	{ "0", 0, 0 },
	{ "30", 0, 30 },
	{ "512", 0, 512 },
	{ "1b", 0, 1 },
	{ "10K", 0, 10 * 1024 },
	{ "10k", 0, 10 * 1024 },
	{ "50M", 0, 50ULL * 1024 * 1024 },
	{ "2G", 0, 2ULL * 1024 * 1024 * 1024 },
	{ "1T", 0, 1ULL << 40 },
	{ "16777215T", 0, 16777215ULL << 40 },
	{ "16777216T", -1, 0 },			/* 2^64: overflow */
	{ "99999999999999999999", -1, 0 },
	{ "", -1, 0 },
	{ "5x", -1, 0 },
	{ "10X", -1, 0 },
	{ "m", -1, 0 },
	{ "M", -1, 0 },
	{ "10KB", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ " 1", -1, 0 },
	{ "1 ", -1, 0 },
	{ "1.5G", -1, 0 },
	{ "0x10", -1, 0 },
};

START_TEST(test_parse_size)
{
	const struct num_case *tc = &size_cases[_i];
	uint64_t v = 12345;
	int rc = conf_parse_size(tc->input, &v);

	ck_assert_msg(rc == tc->rc, "\"%s\": rc %d", tc->input, rc);
	if (rc == 0)
		ck_assert_msg(v == tc->want, "\"%s\": %llu", tc->input, (unsigned long long)v);
}
END_TEST

static const struct num_case duration_cases[] = {
	{ "0", 0, 0 },
	{ "30", 0, 30 },
	{ "30s", 0, 30 },
	{ "30S", 0, 30 },
	{ "5m", 0, 300 },
	{ "2h", 0, 7200 },
	{ "30d", 0, 30 * 86400 },
	{ "1w", 0, 7 * 86400 },
	{ "99999999999999999999", -1, 0 },
	{ "9999999999999999999d", -1, 0 },	/* overflow after the multiplication */
	{ "", -1, 0 },
	{ "5x", -1, 0 },
	{ "m", -1, 0 },
	{ "5mm", -1, 0 },
	{ "5 m", -1, 0 },
	{ "-5m", -1, 0 },
	{ "1y", -1, 0 },
};

START_TEST(test_parse_duration)
{
	const struct num_case *tc = &duration_cases[_i];
	uint64_t v = 12345;
	int rc = conf_parse_duration(tc->input, &v);

	ck_assert_msg(rc == tc->rc, "\"%s\": rc %d", tc->input, rc);
	if (rc == 0)
		ck_assert_msg(v == tc->want, "\"%s\": %llu", tc->input, (unsigned long long)v);
}
END_TEST

START_TEST(test_parse_uint)
{
	uint64_t v;

	ck_assert_int_eq(conf_parse_uint("65535", 65535, &v), 0);
	ck_assert_uint_eq(v, 65535);
	ck_assert_int_eq(conf_parse_uint("65536", 65535, &v), -1);
	ck_assert_int_eq(conf_parse_uint("0", 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(conf_parse_uint("10K", 1000000, &v), -1);
	ck_assert_int_eq(conf_parse_uint("", 10, &v), -1);
	ck_assert_int_eq(conf_parse_uint("1a", 10, &v), -1);
}
END_TEST

/* ---- recipients files ---- */

/* write_temp - text into a new temp file; its name in path */
static void
write_temp(char *path, size_t len, const char *text)
{
	FILE *fp;
	int fd;

	snprintf(path, len, "/tmp/spoold-test-rcpts-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

START_TEST(test_recipients_file)
{
	char path[64], err[256];
	struct recipients *r;

	write_temp(path, sizeof(path),
	    "user@example.com\n"
	    "@sub.example.com\n"
	    "# a comment\n"
	    "\n"
	    "   Mixed.Case@Example.ORG   # trailing comment\r\n"
	    "user@example.com\n");	/* a repeat is counted once */
	r = recipients_load(path, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_uint_eq(recipients_count(r), 3);
	ck_assert_int_eq(recipients_match(r, "user", "example.com"), 1);
	ck_assert_int_eq(recipients_match(r, "USER", "Example.COM"), 1);
	ck_assert_int_eq(recipients_match(r, "other", "example.com"), 0);
	ck_assert_int_eq(recipients_match(r, "use", "example.com"), 0);
	ck_assert_int_eq(recipients_match(r, "user", "example.co"), 0);
	ck_assert_int_eq(recipients_match(r, "anyone", "sub.example.com"), 1);
	ck_assert_int_eq(recipients_match(r, "Anyone", "SUB.example.com"), 1);
	ck_assert_int_eq(recipients_match(r, "x", "deep.sub.example.com"), 0);
	ck_assert_int_eq(recipients_match(r, "mixed.case", "example.org"), 1);
	ck_assert_int_eq(recipients_match(r, "MIXED.CASE", "EXAMPLE.ORG"), 1);
	ck_assert_int_eq(recipients_match(r, "a comment", "example.com"), 0);
	recipients_free(r);
	unlink(path);
}
END_TEST

START_TEST(test_recipients_many)
{
	char path[64], err[256], line[64];
	struct recipients *r;
	size_t cap = 5000 * 32, n = 0;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	for (int i = 0; i < 5000; i++)
		n += (size_t)snprintf(text + n, cap - n, "user%d@example.com\n", i);
	write_temp(path, sizeof(path), text);
	free(text);
	r = recipients_load(path, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_uint_eq(recipients_count(r), 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(line, sizeof(line), "USER%d", i);
		ck_assert_msg(recipients_match(r, line, "example.com"), "%s", line);
	}
	ck_assert_int_eq(recipients_match(r, "user5000", "example.com"), 0);
	recipients_free(r);
	unlink(path);
}
END_TEST

struct bad_rcpt_case {
	const char	*text;
	int		 line;
};

static const struct bad_rcpt_case bad_rcpt_cases[] = {
	{ "ok@example.com\nnot an address\n", 2 },
	{ "no-at-sign\n", 1 },
	{ "user@\n", 1 },
	{ "user@-bad.example\n", 1 },
	{ "a@b.example\n\n# c\nuser@exa mple.com\n", 4 },
};

START_TEST(test_recipients_bad)
{
	const struct bad_rcpt_case *tc = &bad_rcpt_cases[_i];
	char path[64], err[256], want[128];

	write_temp(path, sizeof(path), tc->text);
	ck_assert_ptr_null(recipients_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:%d: ", path, tc->line);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got \"%s\", want \"%s...\"", err, want);
	unlink(path);
}
END_TEST

START_TEST(test_recipients_missing)
{
	char err[256];

	ck_assert_ptr_null(recipients_load("/nonexistent/spoold-rcpts", err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/spoold-rcpts") != NULL, "%s", err);
}
END_TEST

/* a "recipients FILE" domain loads the list */
START_TEST(test_recipients_in_config)
{
	char path[64], text[512];
	struct spoold_conf *cf;
	const struct domain_conf *d;

	write_temp(path, sizeof(path), "user@example.com\n@sub.example.com\n");
	snprintf(text, sizeof(text), BASE "domain example.com {\n    recipients %s\n}\n", path);
	cf = parse_ok("rcptconf", text);
	d = spoold_conf_domain(cf, "example.com");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->recipients_any, 0);
	ck_assert_str_eq(d->recipients_file, path);
	ck_assert_ptr_nonnull(d->recipients);
	ck_assert_uint_eq(recipients_count(d->recipients), 2);
	ck_assert_int_eq(recipients_match(d->recipients, "user", "example.com"), 1);
	ck_assert_int_eq(recipients_match(d->recipients, "nobody", "example.com"), 0);
	spoold_conf_free(cf);
	unlink(path);
}
END_TEST

/* recipients verify, alone or after a file; the verify-* tunables */
START_TEST(test_recipients_verify)
{
	char path[64], text[1024];
	struct spoold_conf *cf;
	const struct domain_conf *d;

	cf = parse_ok("verify-defaults", BASE "domain v.example {\nmode backup\ndeliver-to mx\n"
	    "recipients verify\n}\n");
	d = spoold_conf_domain(cf, "v.example");
	ck_assert_int_eq(d->recipients_verify, 1);
	ck_assert_int_eq(d->recipients_any, 0);
	ck_assert_ptr_null(d->recipients_file);
	ck_assert_ptr_null(d->recipients);
	ck_assert_uint_eq(cf->verify_positive_expire, 31 * 86400);
	ck_assert_uint_eq(cf->verify_negative_expire, 3600);
	ck_assert_uint_eq(cf->verify_positive_refresh, 7 * 86400);
	ck_assert_uint_eq(cf->verify_rate, 60);
	ck_assert_uint_eq(cf->verify_timeout, 30);
	spoold_conf_free(cf);

	write_temp(path, sizeof(path), "boss@v.example\n");
	snprintf(text, sizeof(text), BASE "verify-positive-expire 7d\nverify-negative-expire 10m\n"
	    "verify-positive-refresh 2s\nverify-rate 5\nverify-timeout 1m\n"
	    "domain v.example {\ndeliver-to [192.0.2.1]:25\nrecipients %s verify\n}\n"
	    "domain w.example {\ndeliver-to primary.example\nrecipients %s\n}\n", path, path);
	cf = parse_ok("verify-file", text);
	d = spoold_conf_domain(cf, "v.example");
	ck_assert_int_eq(d->recipients_verify, 1);
	ck_assert_str_eq(d->recipients_file, path);
	ck_assert_int_eq(recipients_match(d->recipients, "boss", "v.example"), 1);
	ck_assert_int_eq(spoold_conf_domain(cf, "w.example")->recipients_verify, 0);
	ck_assert_uint_eq(cf->verify_positive_expire, 7 * 86400);
	ck_assert_uint_eq(cf->verify_negative_expire, 600);
	ck_assert_uint_eq(cf->verify_positive_refresh, 2);
	ck_assert_uint_eq(cf->verify_rate, 5);
	ck_assert_uint_eq(cf->verify_timeout, 60);
	spoold_conf_free(cf);
	/* an expiry at or under the default refresh, none given: half of it */
	cf = parse_ok("verify-short-expire", BASE "verify-positive-expire 7d\n");
	ck_assert_uint_eq(cf->verify_positive_refresh, 7 * 86400 / 2);
	spoold_conf_free(cf);
	cf = parse_ok("verify-expire-1s", BASE "verify-positive-expire 1s\n");
	ck_assert_uint_eq(cf->verify_positive_refresh, 1);	/* none: it expires first */
	spoold_conf_free(cf);
	unlink(path);
}
END_TEST

/* ---- files ---- */

START_TEST(test_load_file)
{
	char path[64];
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;

	write_temp(path, sizeof(path), BASE "max-message-size 1M\n");
	cf = spoold_conf_load(path, &errs);
	ck_assert_msg(cf != NULL, "%s", errs.count ? errs.msgs[0] : "?");
	ck_assert_str_eq(cf->path, path);
	ck_assert_uint_eq(cf->max_message_size, 1024 * 1024);
	spoold_conf_free(cf);
	unlink(path);

	write_temp(path, sizeof(path), BASE "bogus\n");
	ck_assert_ptr_null(spoold_conf_load(path, &errs));
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_msg(strncmp(errs.msgs[0], path, strlen(path)) == 0 &&
	    strncmp(errs.msgs[0] + strlen(path), ":4: ", 4) == 0, "%s", errs.msgs[0]);
	conf_errors_free(&errs);
	unlink(path);

	ck_assert_ptr_null(spoold_conf_load("/nonexistent/spoold.conf", &errs));
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_msg(strncmp(errs.msgs[0], "/nonexistent/spoold.conf: ", 26) == 0, "%s", errs.msgs[0]);
	conf_errors_free(&errs);
}
END_TEST

/* every shipped spoold example loads; etrnclient's are not ours to check */
/* spoold_conf_load_one: that domain's block, every top-level directive
 * (before and after the blocks), no other block; an error in another block
 * is not read */
START_TEST(test_load_one)
{
	static const struct { const char *want; size_t n; } cases[] = {
		{ "b.example", 1 }, { "", 0 }, { "b.exampl", 0 }, { "c.example", 0 },
	};
	char path[64];
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;

	write_temp(path, sizeof(path), BASE "domain a.example {\n recipients any\n}\n"
	    "domain B.Example. {\n recipients any\n retry 7m\n}\n"
	    "domain b.example.org {\n recipients any\n \"bogus {\"\n}\n"
	    "queue q a.example\nmax-message-size 1M\n");
	for (size_t i = 0; i < NELEM(cases); i++) {
		cf = spoold_conf_load_one(path, cases[i].want, &errs);
		ck_assert_msg(cf != NULL, "%s: %s", cases[i].want, errs.count ? errs.msgs[0] : "?");
		ck_assert_uint_eq(cf->n_domains, cases[i].n);
		ck_assert_uint_eq(cf->max_message_size, 1024 * 1024);
		ck_assert_uint_eq(cf->n_queues, 1);
		if (cases[i].n > 0)
			ck_assert_uint_eq(spoold_conf_domain(cf, "b.example")->retry, 7 * 60);
		spoold_conf_free(cf);
	}
	/* the whole file: the bad line is found */
	ck_assert_ptr_null(spoold_conf_load(path, &errs));
	ck_assert_uint_eq(errs.count, 1);
	conf_errors_free(&errs);
	unlink(path);

	/* the blocks skipped unread still count their lines (a brace in a
	 * comment in one of them included) for an error after them */
	write_temp(path, sizeof(path), BASE "domain a.example {\n recipients any\n"
	    " # a comment with a { brace\n retry 5m\n}\ndomain c.example {\n recipients any\n}\n"
	    "no-such-directive\n");
	for (size_t i = 0; i < 3; i++) {
		const char *want[] = { "b.example", "a.example", "" };

		ck_assert_ptr_null(spoold_conf_load_one(path, want[i], &errs));
		ck_assert_uint_eq(errs.count, 1);
		ck_assert_msg(strncmp(errs.msgs[0], path, strlen(path)) == 0 &&
		    strncmp(errs.msgs[0] + strlen(path), ":12: ", 5) == 0, "%s: %s", want[i], errs.msgs[0]);
		conf_errors_free(&errs);
	}
	unlink(path);
}
END_TEST

START_TEST(test_shipped_examples)
{
	glob_t g;
	int rc = glob(SRCDIR "/contrib/spoold*.conf.example", 0, NULL, &g);
	size_t checked = 0;

	if (rc == GLOB_NOMATCH)
		return;
	ck_assert_int_eq(rc, 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *path = g.gl_pathv[i], *base = strrchr(path, '/') + 1;
		struct conf_errors errs = { 0 };
		struct spoold_conf *cf;
		char buf[65536];
		size_t n;
		FILE *fp;

		if (strncmp(base, "etrnclient", 10) == 0)
			continue;
		fp = fopen(path, "r");
		ck_assert_ptr_nonnull(fp);
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[n] = '\0';
		if (strstr(buf, "hostname") == NULL)
			continue;
		cf = spoold_conf_load(path, &errs);
		for (size_t j = 0; j < errs.count; j++)
			fprintf(stderr, "%s\n", errs.msgs[j]);
		ck_assert_msg(cf != NULL, "%s: %zu errors, first: %s", base, errs.count,
		    errs.count ? errs.msgs[0] : "?");
		ck_assert_ptr_nonnull(cf->hostname);
		spoold_conf_free(cf);
		conf_errors_free(&errs);
		checked++;
	}
	globfree(&g);
	fprintf(stderr, "test_shipped_examples: %zu example(s) loaded\n", checked);
}
END_TEST

/* ---- PostgreSQL lookup files and rows (pgsql_map.c, spoold_conf_add_domains) ---- */

static struct pgsql_map *
map_ok(const char *text)
{
	char err[512] = "";
	struct pgsql_map *m = pgsql_map_parse("t.cf", text, err, sizeof(err));

	ck_assert_msg(m != NULL, "map refused: %s", err);
	return m;
}

START_TEST(test_pgsql_map)
{
	struct pgsql_map *m = map_ok("# comment\nhosts = unix:/run/pg inet:db1:6432 db2\nuser = sp'old\n"
	    "password = a#b\\\\c\ndbname = mail\nquery = SELECT 1\n   FROM t WHERE a = '%s'\n"
	    "notify = spoold_rcpt\ncache-ttl = 10m\ntimeout = 3s\n");

	ck_assert_str_eq(m->conninfo, "host='/run/pg,db1,db2' port='5432,6432,5432' user='sp\\'old' "
	    "password='a#b\\\\\\\\c' dbname='mail' connect_timeout=3 keepalives=1 keepalives_idle=3 "
	    "keepalives_interval=3 keepalives_count=3 application_name=spoold");
	ck_assert_str_eq(m->query, "SELECT 1 FROM t WHERE a = '%s'");
	ck_assert_str_eq(m->notify, "spoold_rcpt");
	ck_assert_uint_eq(m->cache_ttl, 600);
	ck_assert_uint_eq(m->timeout, 3);
	pgsql_map_free(m);
	/* IPv6 in brackets, as Postfix writes it: bare for libpq */
	m = map_ok("hosts = inet:[::1]:6432 [2001:db8::2]\nquery = SELECT 1\n");
	ck_assert_msg(strncmp(m->conninfo, "host='::1,2001:db8::2' port='6432,5432' ", 40) == 0, "%s",
	    m->conninfo);
	pgsql_map_free(m);
	m = map_ok("connect = service=mail\nquery = SELECT 1\n");
	ck_assert_str_eq(m->conninfo, "service=mail connect_timeout=10 keepalives=1 keepalives_idle=10 "
	    "keepalives_interval=10 keepalives_count=3 application_name=spoold");
	ck_assert_ptr_null(m->notify);
	ck_assert_uint_eq(m->cache_ttl, PGSQL_DEF_CACHE_TTL);
	pgsql_map_free(m);
}
END_TEST

static const struct {
	const char	*text, *err;
} bad_map_cases[] = {
	{ "hosts = x\n", "t.cf: query is required" },
	{ "query = a\nquery = b\n", "t.cf:2: query is given twice" },
	{ "querry = a\n", "t.cf:1: unknown name \"querry\"" },
	{ "  more\nquery = a\n", "t.cf:1: a continuation line with nothing to continue" },
	{ "query a\n", "t.cf:1: expected \"name = value\"" },
	{ "query = a\nconnect = x\nuser = y\n", "t.cf: connect replaces hosts" },
	{ "query = a\nnotify = Bad-Name\n", "t.cf: notify: a channel is" },
	{ "query = a\ncache-ttl = soon\n", "t.cf: cache-ttl: \"soon\" is not a duration" },
	{ "query = a\ntimeout = 0\n", "t.cf: timeout: \"0\" is not a duration from 1s to 1h" },
};

START_TEST(test_pgsql_map_bad)
{
	char err[512] = "";
	struct pgsql_map *m = pgsql_map_parse("t.cf", bad_map_cases[_i].text, err, sizeof(err));

	ck_assert_ptr_null(m);
	ck_assert_msg(strncmp(err, bad_map_cases[_i].err, strlen(bad_map_cases[_i].err)) == 0,
	    "case %d: got \"%s\"", _i, err);
}
END_TEST

/* fake_escape - doubles quotes, as PQescapeStringConn does */
static int
fake_escape(void *arg, char *dst, size_t len, const char *src)
{
	size_t j = 0;

	(void)arg;
	for (; *src; src++) {
		if (j + 3 > len)
			return -1;
		if (*src == '\'')
			dst[j++] = '\'';
		dst[j++] = *src;
	}
	dst[j] = '\0';
	return 0;
}

/* the query's row numbers, as the PostgreSQL thread notes them on each
 * block (it leaves out rows it cannot make into one), in the messages */
START_TEST(test_pgsql_row_numbers)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = parse_ok("spoold.conf", BASE);

	ck_assert_uint_eq(spoold_conf_add_domains(cf, "pgsql:x", "domain a.test { # row 4\n"
	    "recipients any\n}\ndomain b.test { # row 9\nmode often\nrecipients any\n}\n"
	    "domain a.test { # row 12\nrecipients any\n}\n", &errs), 2);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_msg(strstr(errs.msgs[0], "pgsql:x row 9:2: mode") != NULL, "%s", errs.msgs[0]);
	ck_assert_msg(strstr(errs.msgs[1], "row 12: domain a.test is also in row 4") != NULL, "%s",
	    errs.msgs[1]);
	conf_errors_free(&errs);
	spoold_conf_free(cf);
}
END_TEST

START_TEST(test_pgsql_expand)
{
	char *q = pgsql_map_expand("SELECT 1 WHERE a='%s' AND u='%u' AND d='%d' AND p LIKE '10%%' AND %x",
	    "o'hara", "example.test", fake_escape, NULL);

	ck_assert_str_eq(q, "SELECT 1 WHERE a='o''hara@example.test' AND u='o''hara' AND "
	    "d='example.test' AND p LIKE '10%' AND %x");
	free(q);
}
END_TEST

START_TEST(test_pgsql_rows)
{
	char dir[] = "/tmp/test_conf.XXXXXX", path[256], conf[4096];
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;
	const struct domain_conf *d;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/domains.cf", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("hosts = unix:/run/postgresql\nquery = SELECT name AS domain FROM d\n", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/rcpts.cf", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("query = SELECT 1 FROM m WHERE a = '%s'\n", fp);
	fclose(fp);
	snprintf(conf, sizeof(conf), BASE "domains pgsql:%s/domains.cf\ndomain file.test {\n"
	    "recipients any\n}\n", dir);
	cf = parse_ok("spoold.conf", conf);
	ck_assert_ptr_nonnull(cf->domains_map);
	/* rows: good, in the file too, bad mode, a duplicate, relative lookup file */
	ck_assert_uint_eq(spoold_conf_add_domains(cf, "pgsql:x", "domain a.test {\nrecipients any\n}\n"
	    "domain file.test {\nrecipients any\n}\ndomain b.test {\nmode often\nrecipients any\n}\n"
	    "domain a.test {\nmode backup\nrecipients any\n}\n"
	    "domain c.test {\nrecipients pgsql:rcpts.cf\n}\n", &errs), 3);
	ck_assert_uint_eq(errs.count, 3);
	ck_assert_msg(strstr(errs.msgs[0], "domain file.test is also defined at spoold.conf:5") != NULL,
	    "%s", errs.msgs[0]);
	ck_assert_msg(strstr(errs.msgs[1], "pgsql:x row 3:2: mode") != NULL, "%s", errs.msgs[1]);
	ck_assert_msg(strstr(errs.msgs[2], "domain a.test is also in row 1") != NULL, "%s", errs.msgs[2]);
	ck_assert_uint_eq(cf->n_domains, 3);
	ck_assert_ptr_nonnull(d = spoold_conf_domain(cf, "a.test"));
	ck_assert_int_eq(d->mode, MODE_HOLD);	/* the first row */
	ck_assert_int_eq(d->from_pgsql, 1);
	ck_assert_ptr_nonnull(d = spoold_conf_domain(cf, "c.test"));
	ck_assert_ptr_nonnull(d->recipients_map);
	ck_assert_str_eq(d->recipients_map->path, path);	/* from the lookup file's directory */
	ck_assert_int_eq(spoold_conf_domain(cf, "file.test")->from_pgsql, 0);
	conf_errors_free(&errs);
	spoold_conf_free(cf);
	unlink(path);
	snprintf(path, sizeof(path), "%s/domains.cf", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("good");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_minimal_defaults);
	tcase_add_test(tc, test_every_top_directive);
	tcase_add_test(tc, test_max_connections_per_ip);
	tcase_add_test(tc, test_listen_proxy_from);
	tcase_add_test(tc, test_require_tls);
	tcase_add_test(tc, test_domains);
	tcase_add_test(tc, test_archive_quarantine);
	tcase_add_test(tc, test_domain_lookup);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_bad_config, 0, (int)NELEM(bad_cases));
	tcase_add_test(tc, test_all_errors_collected);
	tcase_add_test(tc, test_errors_mixed_and_appended);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_parse_size, 0, (int)NELEM(size_cases));
	tcase_add_loop_test(tc, test_parse_duration, 0, (int)NELEM(duration_cases));
	tcase_add_test(tc, test_parse_uint);
	suite_add_tcase(s, tc);

	tc = tcase_create("recipients");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_recipients_file);
	tcase_add_test(tc, test_recipients_verify);
	tcase_add_test(tc, test_recipients_many);
	tcase_add_loop_test(tc, test_recipients_bad, 0, (int)NELEM(bad_rcpt_cases));
	tcase_add_test(tc, test_recipients_missing);
	tcase_add_test(tc, test_recipients_in_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("pgsql");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_pgsql_map);
	tcase_add_loop_test(tc, test_pgsql_map_bad, 0, (int)NELEM(bad_map_cases));
	tcase_add_test(tc, test_pgsql_expand);
	tcase_add_test(tc, test_pgsql_rows);
	tcase_add_test(tc, test_pgsql_row_numbers);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_one);
	tcase_add_test(tc, test_shipped_examples);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
