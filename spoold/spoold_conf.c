/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spoold_conf.c - spoold.conf keyword tables and value checks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <unistd.h>

#include "buf.h"
#include "pgsql_map.h"
#include "recipients.h"
#include "smtp_cmd.h"
#include "milter_proto.h"
#include "spoold_conf.h"



/* set_string - a copy of val (conf.c refuses a directive given twice) */
static void
set_string(struct conf_ctx *c, char **dst, const char *kw, const char *val)
{
	*dst = conf_xstrdup(val);
}

static void
set_size(struct conf_ctx *c, uint64_t *dst, const char *kw, const char *val)
{
	if (conf_parse_size(val, dst) == -1)
		conf_error(c, "%s: bad size \"%.40s\" (a number with an optional K, M or G)", kw, val);
}

static void
set_duration(struct conf_ctx *c, uint64_t *dst, const char *kw, const char *val)
{
	if (conf_parse_duration(val, dst) == -1 || *dst == 0)
		conf_error(c, "%s: bad duration \"%.40s\" (a number with s, m, h or d)", kw, val);
}

static void
set_count(struct conf_ctx *c, uint64_t *dst, const char *kw, const char *val)
{
	if (conf_parse_uint(val, 100000000, dst) == -1 || *dst == 0)
		conf_error(c, "%s: bad number \"%.40s\"", kw, val);
}

/* ---- top level ---- */

static void
kw_hostname(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	char tmp[SMTP_DOMAIN_MAX + 1];

	cf->hostname_line = conf_line(c);
	if (strlen(argv[1]) >= sizeof(tmp) || (strcpy(tmp, argv[1]), smtp_domain_canon(tmp, 0)) == -1) {
		conf_error(c, "hostname: \"%.64s\" is not a valid host name", argv[1]);
		return;
	}
	set_string(c, &cf->hostname, argv[0], argv[1]);
}

/* parse_listen_addr - "ADDR:PORT" or "[V6]:PORT" */
static int
parse_listen_addr(const char *text, struct listen_addr *la)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	uint64_t port;
	size_t hlen;

	if (colon == NULL || conf_parse_uint(colon + 1, 65535, &port) == -1)
		return -1;
	hlen = (size_t)(colon - text);
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(&la->ss, 0, sizeof(la->ss));
	if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&la->ss;

		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		la->sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&la->ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		la->sslen = sizeof(*s4);
	}
	return 0;
}

/* listen_proxy_from - the CIDRs after "proxy-protocol-from" on a listen
 * line; -1 when one is not valid (said) or none is given */
static int
listen_proxy_from(struct conf_ctx *c, int argc, char **argv, struct cidr **nets, size_t *n)
{
	int bad = 0;

	if (argc == 0) {
		conf_error(c, "listen: proxy-protocol-from needs at least one ADDRESS or "
		    "ADDRESS/PREFIX");
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		struct cidr net;

		if (cidr_parse(argv[i], &net) == -1) {
			conf_error(c, "listen: proxy-protocol-from: \"%.64s\" is not an address or "
			    "ADDRESS/PREFIX (with no host bits set)", argv[i]);
			bad = 1;
			continue;
		}
		*nets = conf_xgrow(*nets, *n + 1, sizeof(**nets));
		(*nets)[(*n)++] = net;
	}
	return bad ? -1 : 0;
}

/* listen smtp|odmr ADDR:PORT... [proxy-protocol-from CIDR...] */
static void
kw_listen(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	enum listen_kind kind;
	struct cidr *proxy = NULL;
	size_t n_proxy = 0;
	int naddr;

	if (strcmp(argv[1], "smtp") == 0)
		kind = LISTEN_SMTP;
	else if (strcmp(argv[1], "odmr") == 0)
		kind = LISTEN_ODMR;
	else {
		conf_error(c, "listen: \"%.40s\" is not smtp or odmr", argv[1]);
		return;
	}
	for (naddr = 2; naddr < argc && strcmp(argv[naddr], "proxy-protocol-from") != 0; naddr++)
		;
	if (naddr == 2) {
		conf_error(c, "listen %s: no ADDRESS:PORT before proxy-protocol-from", argv[1]);
		return;
	}
	if (naddr < argc &&
	    listen_proxy_from(c, argc - naddr - 1, argv + naddr + 1, &proxy, &n_proxy) == -1) {
		free(proxy);
		return;
	}
	for (int i = 2; i < naddr; i++) {
		struct listen_addr la = { .kind = kind };

		if (parse_listen_addr(argv[i], &la) == -1) {
			conf_error(c, "listen: \"%.64s\" is not ADDRESS:PORT or [IPV6]:PORT", argv[i]);
			continue;
		}
		la.text = conf_xstrdup(argv[i]);
		if (n_proxy > 0) {
			la.proxy_from = conf_xgrow(NULL, n_proxy, sizeof(*proxy));
			memcpy(la.proxy_from, proxy, n_proxy * sizeof(*proxy));
			la.n_proxy_from = n_proxy;
		}
		cf->listens = conf_xgrow(cf->listens, cf->n_listens + 1, sizeof(*cf->listens));
		cf->listens[cf->n_listens++] = la;
	}
	free(proxy);
}

/* metrics-listen ADDR:PORT...: GET /metrics (Prometheus), a listener of
 * its own kind, so it binds, reloads and goes to --listen-file as the
 * others do */
static void
kw_metrics_listen(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	for (int i = 1; i < argc; i++) {
		struct listen_addr la = { .kind = LISTEN_METRICS };

		if (parse_listen_addr(argv[i], &la) == -1) {
			conf_error(c, "metrics-listen: \"%.64s\" is not ADDRESS:PORT or [IPV6]:PORT",
			    argv[i]);
			continue;
		}
		la.text = conf_xstrdup(argv[i]);
		cf->listens = conf_xgrow(cf->listens, cf->n_listens + 1, sizeof(*cf->listens));
		cf->listens[cf->n_listens++] = la;
	}
}

/* xclient-from CIDR...: the proxies (Postfix, nginx) that may say with
 * XCLIENT who their client is */
static void
kw_xclient_from(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	for (int i = 1; i < argc; i++) {
		struct cidr net;

		if (cidr_parse(argv[i], &net) == -1) {
			conf_error(c, "xclient-from: \"%.64s\" is not an address or ADDRESS/PREFIX "
			    "(with no host bits set)", argv[i]);
			continue;
		}
		cf->xclient_from = conf_xgrow(cf->xclient_from, cf->n_xclient_from + 1,
		    sizeof(*cf->xclient_from));
		cf->xclient_from[cf->n_xclient_from++] = net;
	}
}

#define STRING_KW(fn, field)						\
static void								\
fn(struct conf_ctx *c, void *t, int argc, char **argv)			\
{									\
	set_string(c, &((struct spoold_conf *)t)->field, argv[0], argv[1]);	\
}
STRING_KW(kw_datadir, datadir)
STRING_KW(kw_pidfile, pidfile)
STRING_KW(kw_tls_key, tls_key)
STRING_KW(kw_tls_ca, tls_ca)
STRING_KW(kw_resolver, resolver)
STRING_KW(kw_sasl_service, sasl_service)

/* The TLS files are loaded by spoold after parsing; remember where they
 * were named so that a bad certificate is reported as file:line too. */
static void
kw_tls_cert(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	cf->tls_cert_line = conf_line(c);
	set_string(c, &cf->tls_cert, argv[0], argv[1]);
}

static void
kw_tls_priority(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	cf->tls_priority_line = conf_line(c);
	set_string(c, &cf->tls_priority, argv[0], argv[1]);
}

static void
kw_max_message_size(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_size(c, &((struct spoold_conf *)t)->max_message_size, argv[0], argv[1]);
}

static void
kw_max_spool_size(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_size(c, &((struct spoold_conf *)t)->max_spool_size, argv[0], argv[1]);
}

static void
kw_max_recipients(struct conf_ctx *c, void *t, int argc, char **argv)
{
	uint64_t *n = &((struct spoold_conf *)t)->max_recipients;

	/* the spool numbers a message's recipients in 16 bits */
	if (conf_parse_uint(argv[1], 65535, n) == -1 || *n == 0)
		conf_error(c, "max-recipients: \"%.40s\" is not a number from 1 to 65535", argv[1]);
}

/* max-connections TOTAL [PER-IP] */
static void
kw_max_connections(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	set_count(c, &cf->max_connections, argv[0], argv[1]);
	if (argc == 3)
		set_count(c, &cf->max_connections_ip, argv[0], argv[2]);
}

static void
kw_etrn_rate(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_count(c, &((struct spoold_conf *)t)->etrn_rate, argv[0], argv[1]);
}

static void
kw_rate(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	uint64_t *dst = strcmp(argv[0], "rate-connections") == 0 ? &cf->rate_connections :
	    strcmp(argv[0], "rate-tls") == 0 ? &cf->rate_tls : &cf->rate_messages;

	if (conf_parse_uint(argv[1], 100000000, dst) == -1)
		conf_error(c, "%s: bad number \"%.40s\" (per client address per minute; 0: no limit)",
		    argv[0], argv[1]);
}

/* min-data-rate BYTES [GRACE]: bytes per second on average over DATA, checked
 * once GRACE (default 30s) has passed since the 354 */
static void
kw_min_data_rate(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	set_size(c, &cf->min_data_rate, "min-data-rate", argv[1]);
	if (argc == 3)
		set_duration(c, &cf->min_data_rate_grace, "min-data-rate", argv[2]);
}

static void
kw_delivery_window(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	if (conf_parse_uint(argv[1], 1000, &cf->delivery_window) == -1 || cf->delivery_window == 0)
		conf_error(c, "delivery-window: bad number \"%.40s\" (1 to 1000)", argv[1]);
}

static void
kw_sasl_workers(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	if (conf_parse_uint(argv[1], MAX_SASL_WORKERS, &cf->sasl_workers) == -1 ||
	    cf->sasl_workers == 0)
		conf_error(c, "sasl-workers: bad number \"%.40s\" (1 to %d)", argv[1],
		    MAX_SASL_WORKERS);
}

static void
kw_junk_command_limit(struct conf_ctx *c, void *t, int argc, char **argv)
{
	if (conf_parse_uint(argv[1], 100000000, &((struct spoold_conf *)t)->junk_command_limit) == -1)
		conf_error(c, "junk-command-limit: bad number \"%.40s\" (per session; 0: no limit)",
		    argv[1]);
}

static void
kw_drain_threshold(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_size(c, &((struct spoold_conf *)t)->drain_threshold, "drain-threshold", argv[1]);
}

static void
kw_require_tls(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	cf->require_tls_line = conf_line(c);
	if (strcmp(argv[1], "yes") == 0)
		cf->require_tls = REQUIRE_TLS_YES;
	else if (strcmp(argv[1], "all") == 0)
		cf->require_tls = REQUIRE_TLS_ALL;
	else if (strcmp(argv[1], "no") == 0)
		cf->require_tls = REQUIRE_TLS_NO;
	else
		conf_error(c, "require-tls: \"%.16s\" is not yes, all or no", argv[1]);
}

static void
kw_mx_port(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	set_count(c, &cf->mx_port, argv[0], argv[1]);
	if (cf->mx_port == 0 || cf->mx_port > 65535)
		conf_error(c, "mx-port: %.16s is not a TCP port", argv[1]);
}

static void
kw_max_connections_ip(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_count(c, &((struct spoold_conf *)t)->max_connections_ip, argv[0], argv[1]);
}

/* timeout idle|data|tls DURATION */
/* timeout WHAT DURATION: the server's idle, data and tls; the delivery
 * client's smtp-* (Postfix's smtp_*_timeout), RFC 5321 4.5.3.2 defaults */
static const struct {
	const char	*what;
	size_t		 offset;
} timeouts[] = {
	{ "idle",		offsetof(struct spoold_conf, timeout_idle) },
	{ "data",		offsetof(struct spoold_conf, timeout_data) },
	{ "data-total",		offsetof(struct spoold_conf, timeout_data_total) },
	{ "tls",		offsetof(struct spoold_conf, timeout_tls) },
	{ "smtp-connect",	offsetof(struct spoold_conf, timeout_smtp_connect) },
	{ "smtp-greeting",	offsetof(struct spoold_conf, timeout_smtp_greeting) },
	{ "smtp-command",	offsetof(struct spoold_conf, timeout_smtp_command) },
	{ "smtp-data-init",	offsetof(struct spoold_conf, timeout_smtp_data_init) },
	{ "smtp-data-block",	offsetof(struct spoold_conf, timeout_smtp_data_block) },
	{ "smtp-data-done",	offsetof(struct spoold_conf, timeout_smtp_data_done) },
};

static void
kw_timeout(struct conf_ctx *c, void *t, int argc, char **argv)
{
	char kw[64];

	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
		if (strcmp(argv[1], timeouts[i].what) == 0) {
			snprintf(kw, sizeof(kw), "timeout %s", timeouts[i].what);
			set_duration(c, (uint64_t *)((char *)t + timeouts[i].offset), kw, argv[2]);
			return;
		}
	conf_error(c, "timeout: \"%.40s\" is not idle, data, data-total, tls, smtp-connect, smtp-greeting, "
	    "smtp-command, smtp-data-init, smtp-data-block or smtp-data-done", argv[1]);
}

/* sasl-option KEY VALUE... : the words after KEY are joined by one blank */
static void
kw_sasl_option(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	size_t len = 1;
	char *value;

	for (int i = 2; i < argc; i++)
		len += strlen(argv[i]) + 1;
	value = calloc(1, len);
	if (value == NULL)
		abort();
	for (int i = 2; i < argc; i++) {
		if (i > 2)
			strcat(value, " ");
		strcat(value, argv[i]);
	}
	cf->sasl_opts = conf_xgrow(cf->sasl_opts, cf->n_sasl_opts + 1, sizeof(*cf->sasl_opts));
	cf->sasl_opts[cf->n_sasl_opts].key = conf_xstrdup(argv[1]);
	cf->sasl_opts[cf->n_sasl_opts++].value = value;
}

/* queue NAME DOMAIN...: a group for "ETRN #NAME" (RFC 1985 5.3); the
 * domains are checked once the whole file is read */
static void
kw_queue(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	struct queue_conf q = { .line = conf_line(c) };
	const char *n = argv[1][0] == '#' ? argv[1] + 1 : argv[1];

	if (*n == '\0' || strlen(n) > 64 || strspn(n, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(n)) {
		conf_error(c, "queue: \"%.64s\" is not a queue name (letters, digits, - _ .)", argv[1]);
		return;
	}
	q.name = conf_xstrdup(n);
	for (char *p = q.name; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	for (size_t i = 0; i < cf->n_queues; i++)
		if (strcmp(cf->queues[i].name, q.name) == 0) {
			conf_error(c, "queue %s is already defined at line %d", q.name,
			    cf->queues[i].line);
			free(q.name);
			return;
		}
	q.domains = conf_xgrow(NULL, (size_t)argc - 2, sizeof(*q.domains));
	for (int i = 2; i < argc; i++) {
		char d[SMTP_DOMAIN_MAX + 2];

		snprintf(d, sizeof(d), "%s", argv[i]);
		if (strlen(argv[i]) > SMTP_DOMAIN_MAX || smtp_domain_canon(d, 0) == -1) {
			conf_error(c, "queue %s: \"%.64s\" is not a domain name", q.name, argv[i]);
			continue;
		}
		q.domains[q.n_domains++] = conf_xstrdup(d);
	}
	cf->queues = conf_xgrow(cf->queues, cf->n_queues + 1, sizeof(*cf->queues));
	cf->queues[cf->n_queues++] = q;
}

/* ---- domain blocks ---- */

static void
kw_mode(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	if (strcmp(argv[1], "hold") == 0)
		d->mode = MODE_HOLD;
	else if (strcmp(argv[1], "backup") == 0)
		d->mode = MODE_BACKUP;
	else
		conf_error(c, "mode: \"%.40s\" is not hold or backup", argv[1]);
}

static void
kw_etrn_from(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	for (int i = 1; i < argc; i++) {
		struct cidr net;

		if (cidr_parse(argv[i], &net) == -1) {
			conf_error(c, "etrn-from: \"%.64s\" is not an address or ADDRESS/PREFIX "
			    "(with no host bits set)", argv[i]);
			continue;
		}
		d->etrn_from = conf_xgrow(d->etrn_from, d->n_etrn_from + 1, sizeof(*d->etrn_from));
		d->etrn_from[d->n_etrn_from++] = net;
	}
}

static void
kw_atrn_user(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	for (int i = 1; i < argc; i++) {
		d->atrn_users = conf_xgrow(d->atrn_users, d->n_atrn_users + 1, sizeof(char *));
		d->atrn_users[d->n_atrn_users++] = conf_xstrdup(argv[i]);
	}
}

/* parse_route - requester[:port] | [ip]:port | host:port | host | mx */
static int
parse_route(const char *text, struct route *r)
{
	const char *colon;
	char host[SMTP_DOMAIN_MAX + 1];
	uint64_t port = 0;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	if (strcmp(text, "mx") == 0) {
		r->kind = ROUTE_MX;
		return 0;
	}
	colon = text[0] == '[' ? strchr(text, ']') : text;
	if (colon == NULL)
		return -1;
	colon = strchr(colon, ':');
	hlen = colon ? (size_t)(colon - text) : strlen(text);
	if (colon && (conf_parse_uint(colon + 1, 65535, &port) == -1 || port == 0))
		return -1;
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	r->port = (int)port;
	if (strcmp(host, "requester") == 0) {
		r->kind = ROUTE_REQUESTER;
		return 0;
	}
	if (smtp_domain_canon(host, 0) == -1)
		return -1;
	r->kind = ROUTE_HOST;
	r->host = conf_xstrdup(host);
	return 0;
}

static void
kw_deliver_to(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	if (parse_route(argv[1], &d->route) == -1)
		conf_error(c, "deliver-to: \"%.64s\" is not [ADDRESS]:PORT, HOST[:PORT], mx or "
		    "requester[:PORT]", argv[1]);
}

static void
kw_tls(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	if (strcmp(argv[1], "may") == 0)
		d->tls = TLS_MAY;
	else if (strcmp(argv[1], "require") == 0)
		d->tls = TLS_REQUIRE;
	else if (strcmp(argv[1], "verify") == 0)
		d->tls = TLS_VERIFY;
	else
		conf_error(c, "tls: \"%.40s\" is not may, require or verify", argv[1]);
}

/* quota SIZE [MESSAGES] : bytes (K/M/G), then optionally a message count */
static void
kw_quota(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	set_size(c, &d->quota_bytes, "quota", argv[1]);
	if (argc == 3)
		set_count(c, &d->quota_messages, "quota messages", argv[2]);
}

static void
kw_max_age(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_duration(c, &((struct domain_conf *)t)->max_age, argv[0], argv[1]);
}

static void
kw_delay_warning(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_duration(c, &((struct domain_conf *)t)->delay_warning, "delay-warning", argv[1]);
}

static void
kw_retry(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_duration(c, &((struct domain_conf *)t)->retry, argv[0], argv[1]);
}

/* recipients any | FILE | verify | FILE verify: a file's addresses are
 * taken at once; with verify, any other address is asked of the primary
 * (an SMTP callout) instead of refused */
static void
kw_recipients(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	d->recipients_line = conf_line(c);
	if (argc == 3 && strcmp(argv[2], "verify") != 0) {
		conf_error(c, "recipients: \"%.40s\" after the file: only \"verify\" may follow",
		    argv[2]);
		argc = 2;	/* the rest as if it were not there: one error */
	}
	if (strcmp(argv[1], "any") == 0) {
		if (argc == 3)
			conf_error(c, "recipients: \"any\" takes every address, there is nothing to "
			    "verify");
		d->recipients_any = 1;
	} else if (strcmp(argv[1], "verify") == 0) {
		if (argc == 3)
			conf_error(c, "recipients: verify given twice (a file named verify: ./verify)");
		d->recipients_verify = 1;
	} else if (strncmp(argv[1], "pgsql:", 6) == 0) {
		if (argv[1][6] == '\0')
			conf_error(c, "recipients pgsql:FILE: a lookup file is needed");
		d->recipients_pgsql = conf_xstrdup(argv[1] + 6);
		d->recipients_verify = argc == 3;
	} else {
		d->recipients_file = conf_xstrdup(argv[1]);
		d->recipients_verify = argc == 3;
	}
}

/* domains pgsql:FILE */
static void
kw_domains(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	if (strncmp(argv[1], "pgsql:", 6) != 0 || argv[1][6] == '\0') {
		conf_error(c, "domains: expected pgsql:FILE (a PostgreSQL lookup file)");
		return;
	}
	set_string(c, &cf->domains_pgsql, argv[0], argv[1] + 6);
	cf->domains_pgsql_line = conf_line(c);
}

static void
kw_user(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	set_string(c, &cf->user, argv[0], argv[1]);
	cf->user_line = conf_line(c);
}

/* milter NAME unix:/path | inet:ADDRESS:PORT */
static void
kw_milter(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	struct milter_conf m = { .line = conf_line(c) };
	const char *why = "";

	if (strlen(argv[1]) > 64 || strspn(argv[1], "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(argv[1])) {
		conf_error(c, "milter: \"%.64s\" is not a name (letters, digits, - _ .)", argv[1]);
		return;
	}
	for (size_t i = 0; i < cf->n_milters; i++)
		if (strcmp(cf->milters[i].name, argv[1]) == 0) {
			conf_error(c, "milter %s is already defined at line %d", argv[1],
			    cf->milters[i].line);
			return;
		}
	if (milter_target_parse(argv[2], &m.ss, &m.len, &why) == -1) {
		conf_error(c, "milter %s: \"%.100s\": %s", argv[1], argv[2], why);
		return;
	}
	m.name = conf_xstrdup(argv[1]);
	cf->milters = conf_xgrow(cf->milters, cf->n_milters + 1, sizeof(*cf->milters));
	cf->milters[cf->n_milters++] = m;
}

/* milter-timeout connect|command|eom DURATION */
static void
kw_milter_timeout(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	if (strcmp(argv[1], "connect") == 0)
		set_duration(c, &cf->milter_timeout_connect, "milter-timeout connect", argv[2]);
	else if (strcmp(argv[1], "command") == 0)
		set_duration(c, &cf->milter_timeout_command, "milter-timeout command", argv[2]);
	else if (strcmp(argv[1], "eom") == 0)
		set_duration(c, &cf->milter_timeout_eom, "milter-timeout eom", argv[2]);
	else
		conf_error(c, "milter-timeout: \"%.40s\" is not connect, command or eom", argv[1]);
}

/* milter-default-action tempfail|accept|reject */
static void
kw_milter_default(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;

	if (strcmp(argv[1], "tempfail") == 0)
		cf->milter_default = MILTER_DEFAULT_TEMPFAIL;
	else if (strcmp(argv[1], "accept") == 0)
		cf->milter_default = MILTER_DEFAULT_ACCEPT;
	else if (strcmp(argv[1], "reject") == 0)
		cf->milter_default = MILTER_DEFAULT_REJECT;
	else
		conf_error(c, "milter-default-action: \"%.40s\" is not tempfail, accept or reject",
		    argv[1]);
}

/* quarantine-max-age DURATION */
static void
kw_quarantine_max_age(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_duration(c, &((struct spoold_conf *)t)->quarantine_max_age, argv[0], argv[1]);
}

/* archive-to ADDRESS (in a domain block): local@domain, no brackets */
static void
kw_archive_to(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;
	char line[SMTP_PATH_MAX + 16];
	struct smtp_rcpt r;

	snprintf(line, sizeof(line), "TO:<%s>", argv[1]);
	if (strlen(argv[1]) > SMTP_PATH_MAX || strchr(argv[1], '@') == NULL ||
	    smtp_parse_rcpt(line, &r, 0) != SMTP_PARSE_OK || r.to.domain[0] == '\0') {
		conf_error(c, "archive-to: \"%.100s\" is not a mail address (local@domain)", argv[1]);
		return;
	}
	free(d->archive_to);
	if (asprintf(&d->archive_to, "%s@%s", r.to.local, r.to.domain) == -1)
		abort();
}

/* filter on|off (in a domain block) */
static void
kw_filter(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	if (strcmp(argv[1], "on") == 0)
		d->filter = 1;
	else if (strcmp(argv[1], "off") == 0)
		d->filter = 0;
	else
		conf_error(c, "filter: \"%.16s\" is not on or off", argv[1]);
}

/* verify-positive-expire | verify-positive-refresh | verify-negative-expire
 * | verify-timeout DURATION */
static void
kw_verify_duration(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	uint64_t *dst = &cf->verify_timeout;

	if (strcmp(argv[0], "verify-positive-expire") == 0) {
		dst = &cf->verify_positive_expire;
		cf->verify_positive_expire_line = conf_line(c);
	} else if (strcmp(argv[0], "verify-positive-refresh") == 0) {
		dst = &cf->verify_positive_refresh;
		cf->verify_positive_refresh_line = conf_line(c);
	} else if (strcmp(argv[0], "verify-negative-expire") == 0)
		dst = &cf->verify_negative_expire;
	set_duration(c, dst, argv[0], argv[1]);
}

/* verify_check_refresh - a refresh at or after the expiry would never
 * happen: the entry is gone first.  Given, that is an error at the line
 * given last of the two; not given, the default (7d) gives way to half of
 * a shorter expiry, so a configuration from before the directive keeps
 * working. */
static void
verify_check_refresh(struct spoold_conf *cf, const char *name, struct conf_errors *errs)
{
	char refresh[32], expire[32];

	if (cf->verify_positive_refresh < cf->verify_positive_expire)
		return;
	if (cf->verify_positive_refresh_line == 0) {
		/* (1 s: no refresh, the entry expires first) */
		cf->verify_positive_refresh = cf->verify_positive_expire / 2 > 0 ?
		    cf->verify_positive_expire / 2 : cf->verify_positive_expire;
		return;
	}
	snprintf(refresh, sizeof(refresh), "%llus", (unsigned long long)cf->verify_positive_refresh);
	snprintf(expire, sizeof(expire), "%llus", (unsigned long long)cf->verify_positive_expire);
	if (cf->verify_positive_refresh_line > cf->verify_positive_expire_line)
		conf_add_error(errs, "%s:%d: verify-positive-refresh %s must be shorter than "
		    "verify-positive-expire (%s)", name, cf->verify_positive_refresh_line, refresh,
		    expire);
	else
		conf_add_error(errs, "%s:%d: verify-positive-expire %s must be longer than "
		    "verify-positive-refresh (%s)", name, cf->verify_positive_expire_line, expire,
		    refresh);
}

/* verify-rate N: probes per primary per minute */
static void
kw_verify_rate(struct conf_ctx *c, void *t, int argc, char **argv)
{
	set_count(c, &((struct spoold_conf *)t)->verify_rate, argv[0], argv[1]);
}

#define KW(name, min, max, fn)	{ name, min, max, fn, NULL, NULL, NULL, 0 }
/* KWR: a directive that may be repeated, its values adding up */
#define KWR(name, min, max, fn)	{ name, min, max, fn, NULL, NULL, NULL, 1 }

static const struct conf_keyword domain_keywords[] = {
	KW("mode",	1, 1,	kw_mode),
	KWR("etrn-from",	1, -1,	kw_etrn_from),
	KWR("atrn-user",	1, -1,	kw_atrn_user),
	KW("deliver-to",	1, 1,	kw_deliver_to),
	KW("tls",	1, 1,	kw_tls),
	KW("quota",	1, 2,	kw_quota),
	KW("max-age",	1, 1,	kw_max_age),
	KW("retry",	1, 1,	kw_retry),
	KW("delay-warning", 1, 1, kw_delay_warning),
	KW("recipients",	1, 2,	kw_recipients),
	KW("filter",	1, 1,	kw_filter),
	KW("archive-to",	1, 1,	kw_archive_to),
	{ NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }
};

static void *
open_domain(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct spoold_conf *cf = t;
	struct domain_conf *d;
	char name[SMTP_DOMAIN_MAX + 1];

	if (argc != 2) {
		conf_error(c, "domain takes one name: domain NAME {");
		return NULL;
	}
	/* the canonical name is argv[1] lower-cased, without a final dot */
	if (cf->only_domain != NULL && strncasecmp(argv[1], cf->only_domain,
	    strlen(cf->only_domain)) != 0)
		return CONF_SKIP;
	if (strlen(argv[1]) >= sizeof(name) || (strcpy(name, argv[1]), smtp_domain_canon(name, 1)) == -1 ||
	    name[0] == '[') {
		conf_error(c, "domain: \"%.64s\" is not a valid domain name", argv[1]);
		return NULL;
	}
	if (cf->only_domain != NULL && strcmp(name, cf->only_domain) != 0)
		return CONF_SKIP;
	/* a name given twice is found once all are in, sorted (spoold_conf_finish):
	 * a scan here would make 100,000 domains take minutes; the array
	 * doubles for the same reason */
	if (cf->n_domains == cf->domains_cap) {
		cf->domains_cap = cf->domains_cap ? cf->domains_cap * 2 : 16;
		cf->domains = conf_xgrow(cf->domains, cf->domains_cap, sizeof(*cf->domains));
	}
	d = &cf->domains[cf->n_domains++];
	memset(d, 0, sizeof(*d));
	d->name = conf_xstrdup(name);
	d->mode = MODE_HOLD;
	d->tls = TLS_MAY;
	d->max_age = DEF_MAX_AGE;
	d->retry = DEF_RETRY;
	d->filter = 1;
	d->line = conf_line(c);
	/* The array may move when the next domain is added: blocks are closed
	 * before that, and the pointer is used only inside this block. */
	return d;
}

static void
close_domain(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct domain_conf *d = t;

	if (!d->recipients_any && d->recipients_file == NULL && d->recipients_pgsql == NULL &&
	    !d->recipients_verify)
		conf_error(c, "domain %s: say which recipients to accept: \"recipients any\", "
		    "\"recipients FILE\", \"recipients pgsql:FILE\" or \"recipients [FILE] verify\"",
		    d->name);
	if (d->route.kind == ROUTE_REQUESTER && (d->n_etrn_from != 1 ||
	    d->etrn_from[0].prefix != (d->etrn_from[0].family == AF_INET ? 32 : 128)))
		conf_warning(c, "domain %s: \"deliver-to requester\" with an etrn-from range lets any "
		    "host in it pull the domain's mail; list a single address", d->name);
	if (d->mode == MODE_BACKUP && d->recipients_any)
		conf_warning(c, "domain %s: backup MX with \"recipients any\" accepts mail for unknown "
		    "users and bounces it later (backscatter); use \"recipients FILE\"", d->name);
}

static const struct conf_keyword top_keywords[] = {
	KW("hostname",		1, 1,	kw_hostname),
	KWR("listen",		2, -1,	kw_listen),
	KWR("metrics-listen",	1, -1,	kw_metrics_listen),
	KW("datadir",		1, 1,	kw_datadir),
	KW("user",		1, 1,	kw_user),
	KW("pidfile",		1, 1,	kw_pidfile),
	KW("tls-cert",		1, 1,	kw_tls_cert),
	KW("tls-key",		1, 1,	kw_tls_key),
	KW("tls-priority",	1, 1,	kw_tls_priority),
	KW("tls-ca",		1, 1,	kw_tls_ca),
	KW("max-message-size",	1, 1,	kw_max_message_size),
	KW("max-recipients",	1, 1,	kw_max_recipients),
	KW("max-connections",	1, 2,	kw_max_connections),
	KW("max-connections-per-ip", 1, 1, kw_max_connections_ip),
	KWR("timeout",		2, 2,	kw_timeout),
	KW("sasl-service",	1, 1,	kw_sasl_service),
	KWR("sasl-option",	2, -1,	kw_sasl_option),
	KW("sasl-workers",	1, 1,	kw_sasl_workers),
	KW("max-spool-size",	1, 1,	kw_max_spool_size),
	KW("etrn-rate",		1, 1,	kw_etrn_rate),
	KWR("queue",		2, -1,	kw_queue),
	KW("mx-port",		1, 1,	kw_mx_port),
	KW("require-tls",	1, 1,	kw_require_tls),
	KW("rate-connections",	1, 1,	kw_rate),
	KW("rate-messages",	1, 1,	kw_rate),
	KW("rate-tls",		1, 1,	kw_rate),
	KW("min-data-rate",	1, 2,	kw_min_data_rate),
	KW("junk-command-limit", 1, 1,	kw_junk_command_limit),
	KW("delivery-window",	1, 1,	kw_delivery_window),
	KW("drain-threshold",	1, 1,	kw_drain_threshold),
	KW("resolver",		1, 1,	kw_resolver),
	KWR("milter",		2, 2,	kw_milter),
	KWR("milter-timeout",	2, 2,	kw_milter_timeout),
	KW("milter-default-action", 1, 1, kw_milter_default),
	KW("quarantine-max-age", 1, 1, kw_quarantine_max_age),
	KWR("xclient-from",	1, -1,	kw_xclient_from),
	KW("domains",		1, 1,	kw_domains),
	KW("verify-positive-expire", 1, 1, kw_verify_duration),
	KW("verify-positive-refresh", 1, 1, kw_verify_duration),
	KW("verify-negative-expire", 1, 1, kw_verify_duration),
	KW("verify-timeout",	1, 1,	kw_verify_duration),
	KW("verify-rate",	1, 1,	kw_verify_rate),
	{ "domain",		1, 1,	NULL, open_domain, domain_keywords, close_domain, 1 },
	{ NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }
};

static struct spoold_conf *
spoold_conf_new(void)
{
	struct spoold_conf *cf = calloc(1, sizeof(*cf));

	if (cf == NULL)
		abort();
	cf->max_message_size = DEF_MAX_MESSAGE_SIZE;
	cf->milter_timeout_connect = DEF_MILTER_CONNECT;
	cf->milter_timeout_command = DEF_MILTER_COMMAND;
	cf->milter_timeout_eom = DEF_MILTER_EOM;
	cf->quarantine_max_age = DEF_QUARANTINE_MAX_AGE;
	cf->max_recipients = DEF_MAX_RECIPIENTS;
	cf->max_connections = DEF_MAX_CONNECTIONS;
	cf->max_connections_ip = DEF_MAX_CONNECTIONS_IP;
	cf->timeout_idle = DEF_TIMEOUT_IDLE;
	cf->timeout_data = DEF_TIMEOUT_DATA;
	cf->timeout_data_total = DEF_TIMEOUT_DATA_TOTAL;
	cf->min_data_rate = DEF_MIN_DATA_RATE;
	cf->min_data_rate_grace = DEF_MIN_DATA_RATE_GRACE;
	cf->junk_command_limit = DEF_JUNK_COMMAND_LIMIT;
	cf->rate_tls = DEF_RATE_TLS;
	cf->delivery_window = DEF_DELIVERY_WINDOW;
	cf->sasl_workers = DEF_SASL_WORKERS;
	cf->timeout_tls = DEF_TIMEOUT_TLS;
	cf->timeout_smtp_connect = 30;
	cf->timeout_smtp_greeting = 300;
	cf->timeout_smtp_command = 300;
	cf->timeout_smtp_data_init = 120;
	cf->timeout_smtp_data_block = 180;
	cf->timeout_smtp_data_done = 600;
	cf->max_spool_size = DEF_MAX_SPOOL_SIZE;
	cf->etrn_rate = DEF_ETRN_RATE;
	cf->mx_port = 25;
	cf->require_tls = REQUIRE_TLS_YES;
	cf->verify_positive_expire = DEF_VERIFY_POSITIVE_EXPIRE;
	cf->verify_negative_expire = DEF_VERIFY_NEGATIVE_EXPIRE;
	cf->verify_positive_refresh = DEF_VERIFY_POSITIVE_REFRESH;
	cf->verify_rate = DEF_VERIFY_RATE;
	cf->verify_timeout = DEF_VERIFY_TIMEOUT;
	return cf;
}



static int
domain_cmp(const void *a, const void *b)
{
	const struct domain_conf *da = a, *db = b;
	int c = strcmp(da->name, db->name);

	return c != 0 ? c : (da->line > db->line) - (da->line < db->line);
}

/* domain_name_cmp - bsearch: a name against a domain block */
static int
domain_name_cmp(const void *name, const void *d)
{
	return strcmp(name, ((const struct domain_conf *)d)->name);
}

/* map_load_once - the lookup file at path, loaded once a configuration
 * however many domains name it */
static const struct pgsql_map *
map_load_once(struct spoold_conf *cf, const char *path, char *err, size_t errlen)
{
	struct pgsql_map *m;

	for (size_t i = 0; i < cf->n_pg_maps; i++)
		if (strcmp(cf->pg_maps[i]->path, path) == 0)
			return cf->pg_maps[i];
	if ((m = pgsql_map_load(path, err, errlen)) == NULL)
		return NULL;
	cf->pg_maps = conf_xgrow(cf->pg_maps, cf->n_pg_maps + 1, sizeof(*cf->pg_maps));
	cf->pg_maps[cf->n_pg_maps++] = m;
	return m;
}

/* domain_load_lists - what d's recipients directive names: a file, or a
 * PostgreSQL lookup file; relative paths from base's directory */
static int
domain_load_lists(struct spoold_conf *cf, struct domain_conf *d, const char *base, char *err,
    size_t errlen)
{
	/* a callout needs a primary to call: a route of its own (a requester
	 * route has no address until an ETRN comes) */
	if (d->recipients_verify && (d->route.kind == ROUTE_NONE || d->route.kind == ROUTE_REQUESTER)) {
		snprintf(err, errlen, "domain %s: recipients verify needs a primary to ask: "
		    "deliver-to [ADDRESS]:PORT, HOST[:PORT] or mx", d->name);
		return -1;
	}
	if (d->recipients_file != NULL) {
		conf_relative_path(&d->recipients_file, base);
		if ((d->recipients = recipients_load(d->recipients_file, err, errlen)) == NULL)
			return -1;
	}
	if (d->recipients_pgsql != NULL) {
		conf_relative_path(&d->recipients_pgsql, base);
		if ((d->recipients_map = map_load_once(cf, d->recipients_pgsql, err, errlen)) == NULL)
			return -1;
	}
	return 0;
}

/* domains_derive - sorted by name, and what is worked out over them all */
static void
domains_derive(struct spoold_conf *cf)
{
	if (cf->n_domains > 1)	/* qsort(NULL, 0, ...) is undefined */
		qsort(cf->domains, cf->n_domains, sizeof(*cf->domains), domain_cmp);
	cf->any_tls_verify = 0;
	cf->shortest_domain_timer = UINT64_MAX;
	for (size_t i = 0; i < cf->n_domains; i++) {
		const struct domain_conf *d = &cf->domains[i];

		cf->any_tls_verify |= d->tls == TLS_VERIFY;
		if (d->mode == MODE_BACKUP && d->retry < cf->shortest_domain_timer)
			cf->shortest_domain_timer = d->retry;
		if (d->max_age < cf->shortest_domain_timer)
			cf->shortest_domain_timer = d->max_age;
		if (d->delay_warning > 0 && d->delay_warning < cf->shortest_domain_timer)
			cf->shortest_domain_timer = d->delay_warning;
	}
}

/* spoold_conf_finish - defaults and checks that need the whole file */
static void
spoold_conf_finish(struct spoold_conf *cf, const char *name, struct conf_errors *errs)
{
	char err[512];
	size_t n_smtp = 0;

	for (size_t i = 0; i < cf->n_listens; i++)
		n_smtp += cf->listens[i].kind == LISTEN_SMTP;
	if (cf->hostname_line == 0)
		conf_add_error(errs, "%s: \"hostname\" is required", name);
	if (cf->datadir == NULL)
		conf_add_error(errs, "%s: \"datadir\" is required", name);
	if (n_smtp == 0)	/* ODMR alone takes no mail in */
		conf_add_error(errs, "%s: no \"listen smtp ADDRESS:PORT\"", name);
	if ((cf->tls_cert == NULL) != (cf->tls_key == NULL))
		conf_add_error(errs, "%s: tls-cert and tls-key go together", name);
	if (cf->datadir != NULL)
		conf_relative_path(&cf->datadir, name);
	if (cf->pidfile != NULL)
		conf_relative_path(&cf->pidfile, name);
	if (cf->tls_ca != NULL)
		conf_relative_path(&cf->tls_ca, name);
	if (cf->drain_threshold == 0)	/* room for two of the biggest messages */
		cf->drain_threshold = 2 * cf->max_message_size;
	if (cf->require_tls == REQUIRE_TLS_ALL && cf->tls_cert == NULL)	/* else it would let all in clear */
		conf_add_error(errs, "%s:%d: require-tls all needs tls-cert and tls-key (STARTTLS)", name,
		    cf->require_tls_line);
	for (size_t i = 0; i < cf->n_sasl_opts; i++)
		if (strcmp(cf->sasl_opts[i].key, "sasldb_path") == 0)
			conf_relative_path(&cf->sasl_opts[i].value, name);
	if (cf->tls_priority == NULL)
		cf->tls_priority = conf_xstrdup(DEF_TLS_PRIORITY);
	if (cf->sasl_service == NULL)
		cf->sasl_service = conf_xstrdup(DEF_SASL_SERVICE);
	if (cf->max_spool_size < 1024 * 1024)
		conf_add_error(errs, "%s: max-spool-size must be at least 1M", name);
	verify_check_refresh(cf, name, errs);
	if (cf->domains_pgsql != NULL) {
		conf_relative_path(&cf->domains_pgsql, name);
		if ((cf->domains_map = pgsql_map_load(cf->domains_pgsql, err, sizeof(err))) == NULL)
			conf_add_error(errs, "%s:%d: domains: %s", name, cf->domains_pgsql_line, err);
	}
	for (size_t i = 0; i < cf->n_domains; i++)
		if (domain_load_lists(cf, &cf->domains[i], name, err, sizeof(err)) == -1)
			conf_add_error(errs, "%s:%d: %s", name, cf->domains[i].recipients_line, err);
	domains_derive(cf);
	for (size_t i = 1; i < cf->n_domains; i++)	/* sorted by name, then line */
		if (strcmp(cf->domains[i].name, cf->domains[i - 1].name) == 0)
			conf_add_error(errs, "%s:%d: domain %s is already defined at line %d", name,
			    cf->domains[i].line, cf->domains[i].name, cf->domains[i - 1].line);
	for (size_t i = 0; i < cf->n_queues && cf->only_domain == NULL; i++)
		for (size_t j = 0; j < cf->queues[i].n_domains; j++)
			if (spoold_conf_domain(cf, cf->queues[i].domains[j]) == NULL)
				conf_add_error(errs, "%s:%d: queue %s: %s is not a configured domain", name,
				    cf->queues[i].line, cf->queues[i].name, cf->queues[i].domains[j]);
}

struct spoold_conf *
spoold_conf_parse_text(const char *name, const char *text, struct conf_errors *errs)
{
	struct spoold_conf *cf = spoold_conf_new();
	size_t before = errs->count;

	cf->path = conf_xstrdup(name);
	conf_parse_string(name, text, top_keywords, cf, errs);
	spoold_conf_finish(cf, name, errs);
	if (errs->count > before) {
		spoold_conf_free(cf);
		return NULL;
	}
	return cf;
}

/* conf_load - spoold_conf_load, or with only set spoold_conf_load_one */
static struct spoold_conf *
conf_load(const char *path, const char *only, struct conf_errors *errs)
{
	struct spoold_conf *cf;
	size_t before = errs->count;

	if (access(path, R_OK) == -1) {
		conf_add_error(errs, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cf = spoold_conf_new();
	cf->path = conf_xstrdup(path);
	if (only != NULL)
		cf->only_domain = conf_xstrdup(only);
	conf_parse_file(path, top_keywords, cf, errs);
	spoold_conf_finish(cf, path, errs);
	if (errs->count > before) {
		spoold_conf_free(cf);
		return NULL;
	}
	return cf;
}

struct spoold_conf *
spoold_conf_load(const char *path, struct conf_errors *errs)
{
	return conf_load(path, NULL, errs);
}

struct spoold_conf *
spoold_conf_load_one(const char *path, const char *domain, struct conf_errors *errs)
{
	return conf_load(path, domain, errs);
}

const struct domain_conf *
spoold_conf_domain(const struct spoold_conf *cf, const char *name)
{
	if (cf->n_domains == 0)	/* bsearch on NULL is undefined */
		return NULL;
	return bsearch(name, cf->domains, cf->n_domains, sizeof(*cf->domains), domain_name_cmp);
}

const struct queue_conf *
spoold_conf_queue(const struct spoold_conf *cf, const char *name)
{
	for (size_t i = 0; i < cf->n_queues; i++)
		if (strcmp(cf->queues[i].name, name) == 0)
			return &cf->queues[i];
	return NULL;
}

static void
domain_conf_free(struct domain_conf *d)
{
	free(d->name);
	free(d->etrn_from);
	for (size_t i = 0; i < d->n_atrn_users; i++)
		free(d->atrn_users[i]);
	free(d->atrn_users);
	free(d->route.host);
	free(d->recipients_file);
	free(d->recipients_pgsql);
	free(d->archive_to);
	recipients_free(d->recipients);
}

void
spoold_conf_free(struct spoold_conf *cf)
{
	if (cf == NULL)
		return;
	free(cf->path);
	free(cf->only_domain);
	free(cf->hostname);
	for (size_t i = 0; i < cf->n_listens; i++) {
		free(cf->listens[i].text);
		free(cf->listens[i].proxy_from);
	}
	free(cf->listens);
	free(cf->xclient_from);
	free(cf->domains_pgsql);
	pgsql_map_free(cf->domains_map);
	for (size_t i = 0; i < cf->n_pg_maps; i++)
		pgsql_map_free(cf->pg_maps[i]);
	free(cf->pg_maps);
	free(cf->datadir);
	free(cf->user);
	free(cf->pidfile);
	free(cf->tls_cert);
	free(cf->tls_key);
	free(cf->tls_priority);
	free(cf->tls_ca);
	free(cf->resolver);
	free(cf->sasl_service);
	for (size_t i = 0; i < cf->n_sasl_opts; i++) {
		free(cf->sasl_opts[i].key);
		free(cf->sasl_opts[i].value);
	}
	free(cf->sasl_opts);
	for (size_t i = 0; i < cf->n_queues; i++) {
		for (size_t j = 0; j < cf->queues[i].n_domains; j++)
			free(cf->queues[i].domains[j]);
		free(cf->queues[i].domains);
		free(cf->queues[i].name);
	}
	free(cf->queues);
	for (size_t i = 0; i < cf->n_milters; i++)
		free(cf->milters[i].name);
	free(cf->milters);
	for (size_t i = 0; i < cf->n_domains; i++)
		domain_conf_free(&cf->domains[i]);
	free(cf->domains);
	free(cf);
}

/* What a row of "domains pgsql:" may hold: one domain block. */
static const struct conf_keyword row_keywords[] = {
	{ "domain",		1, 1,	NULL, open_domain, domain_keywords, close_domain, 1 },
	{ NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }
};

/* next_block - the length of the domain block text starts with: up to
 * and with its line "}" */
static size_t
next_block(const char *text)
{
	/* line by line, not strstr: a sanitizer's strstr reads the whole
	 * rest of the text at each call, and 100,000 rows took minutes */
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		if (p[1] == '}' && p[2] == '\n')
			return (size_t)(p - text) + 3;
	return strlen(text);
}

/* add_row - one block; 0 when it went in, -1 (reason in errs) when not */
static int
add_row(struct spoold_conf *cf, size_t n_file, const char *name, int row, const char *block,
    struct conf_errors *errs)
{
	struct conf_errors e = { 0 };
	char where[512], err[512];
	size_t before = cf->n_domains;
	struct domain_conf *d, *f;
	const char *tag = strstr(block, " { # row "), *nl = strchr(block, '\n');
	int rc = 0;

	/* the query's row, as the PostgreSQL thread noted it (it leaves out
	 * rows it cannot make into a block): else the block's number */
	if (tag != NULL && (nl == NULL || tag < nl) && atoi(tag + 9) > 0)
		row = atoi(tag + 9);
	snprintf(where, sizeof(where), "%s row %d", name, row);
	conf_parse_string(where, block, row_keywords, cf, &e);
	if (cf->n_domains != before + 1 && e.count == 0)
		conf_add_error(&e, "%s: not one domain block", where);
	if (e.count > 0) {
		for (size_t i = 0; i < e.count; i++)
			conf_add_error(errs, "%s; the row is left out", e.msgs[i]);
		rc = -1;
	} else {
		d = &cf->domains[before];
		d->from_pgsql = 1;
		d->line = row;
		if (n_file > 0 && (f = bsearch(d->name, cf->domains, n_file, sizeof(*f),
		    domain_name_cmp)) != NULL) {
			conf_add_error(errs, "%s: domain %s is also defined at %s:%d: a domain is in the file "
			    "or in PostgreSQL, not both; the row is left out", where, d->name, cf->path,
			    f->line);
			rc = -1;
		} else if (domain_load_lists(cf, d, cf->domains_pgsql != NULL ? cf->domains_pgsql : cf->path,
		    err, sizeof(err)) == -1) {	/* a relative path: from the lookup file's directory */
			conf_add_error(errs, "%s: %s; the row is left out", where, err);
			rc = -1;
		}
	}
	conf_errors_free(&e);
	while (rc == -1 && cf->n_domains > before)
		domain_conf_free(&cf->domains[--cf->n_domains]);
	return rc;
}

/* drop_duplicate_rows - two rows for one name: the first stays */
static size_t
drop_duplicate_rows(struct spoold_conf *cf, const char *name, struct conf_errors *errs)
{
	size_t kept = 0, dropped = 0;

	for (size_t i = 0; i < cf->n_domains; i++) {
		if (kept > 0 && strcmp(cf->domains[i].name, cf->domains[kept - 1].name) == 0) {
			conf_add_error(errs, "%s row %d: domain %s is also in row %d; the row is left out",
			    name, cf->domains[i].line, cf->domains[i].name, cf->domains[kept - 1].line);
			domain_conf_free(&cf->domains[i]);
			dropped++;
			continue;
		}
		cf->domains[kept++] = cf->domains[i];
	}
	cf->n_domains = kept;
	return dropped;
}

size_t
spoold_conf_add_domains(struct spoold_conf *cf, const char *name, const char *text,
    struct conf_errors *errs)
{
	size_t n_file = cf->n_domains, dropped = 0, len;
	int row = 0;

	/* the file's domains are sorted (spoold_conf_finish): looked up by name */
	for (const char *p = text; *p; p += len) {
		char *block;

		len = next_block(p);
		if ((block = strndup(p, len)) == NULL)
			abort();
		if (add_row(cf, n_file, name, ++row, block, errs) == -1)
			dropped++;
		free(block);
	}
	domains_derive(cf);
	dropped += drop_duplicate_rows(cf, name, errs);
	return dropped;
}

char *
spoold_conf_read_pgsql_copy(const char *datadir)
{
	char path[4096];
	struct buf b;
	char chunk[65536];
	FILE *fp;
	size_t n;
	char *t, *p;

	snprintf(path, sizeof(path), "%s/%s", datadir, SPOOLD_PGSQL_COPY);
	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_append(&b, chunk, n) == -1)
			abort();
	fclose(fp);
	buf_append(&b, "", 1);
	t = b.b_data;
	for (p = t; *p == '#';)		/* the header */
		p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : p + strlen(p);
	memmove(t, p, strlen(p) + 1);
	return t;
}
