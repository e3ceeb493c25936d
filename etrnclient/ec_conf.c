/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ec_conf.c - etrnclient.conf keyword tables and checks.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "smtp_cmd.h"
#include "ec_conf.h"

#define DEF_LOCK_DIR	"/run/etrnclient"

/* ---- server blocks ---- */

static void
kw_method(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;

	s->method_set = 1;
	if (strcmp(argv[1], "etrn") == 0)
		s->method = EC_ETRN;
	else if (strcmp(argv[1], "odmr") == 0)
		s->method = EC_ODMR;
	else
		conf_error(c, "method: \"%.32s\" is not etrn or odmr", argv[1]);
}

static void
kw_port(struct conf_ctx *c, void *t, int argc, char **argv)
{
	uint64_t v;

	if (conf_parse_uint(argv[1], 65535, &v) == -1 || v == 0)
		conf_error(c, "port: \"%.16s\" is not a TCP port", argv[1]);
	else
		((struct ec_server *)t)->port = (int)v;
}

static void
kw_domains(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;

	for (int i = 1; i < argc; i++) {
		char d[SMTP_DOMAIN_MAX + 2];

		snprintf(d, sizeof(d), "%s", argv[i]);
		if (strlen(argv[i]) > SMTP_DOMAIN_MAX || smtp_domain_canon(d, 0) == -1 || d[0] == '[') {
			conf_error(c, "domains: \"%.64s\" is not a domain name", argv[i]);
			continue;
		}
		s->domains = conf_xgrow(s->domains, s->n_domains + 1, sizeof(char *));
		s->domains[s->n_domains++] = conf_xstrdup(d);
	}
}

static void
kw_user(struct conf_ctx *c, void *t, int argc, char **argv)
{
	((struct ec_server *)t)->user = conf_xstrdup(argv[1]);
}

static void
kw_password_file(struct conf_ctx *c, void *t, int argc, char **argv)
{
	((struct ec_server *)t)->password_file = conf_xstrdup(argv[1]);
}

static void
kw_ca(struct conf_ctx *c, void *t, int argc, char **argv)
{
	((struct ec_server *)t)->ca = conf_xstrdup(argv[1]);
}

static void
kw_tls(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;

	if (strcmp(argv[1], "may") == 0)
		s->tls = EC_TLS_MAY;
	else if (strcmp(argv[1], "require") == 0)
		s->tls = EC_TLS_REQUIRE;
	else if (strcmp(argv[1], "verify") == 0)
		s->tls = EC_TLS_VERIFY;
	else
		conf_error(c, "tls: \"%.32s\" is not may, require or verify", argv[1]);
}

static void
kw_every(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;

	if (conf_parse_duration(argv[1], &s->every) == -1 || s->every == 0)
		conf_error(c, "every: bad duration \"%.40s\" (a number with s, m, h or d)", argv[1]);
}

int
ec_parse_relay(const char *text, struct ec_server *s)
{
	const char *colon;
	uint64_t port;

	if (strncmp(text, "lmtp:", 5) == 0) {
		if (text[5] != '/')
			return -1;
		s->relay = EC_RELAY_LMTP;
		s->relay_path = conf_xstrdup(text + 5);
		return 0;
	}
	if ((colon = strrchr(text, ':')) == NULL || colon == text ||
	    conf_parse_uint(colon + 1, 65535, &port) == -1 || port == 0)
		return -1;
	s->relay = EC_RELAY_SMTP;
	s->relay_port = (int)port;
	if (text[0] == '[' && colon[-1] == ']')	/* [addr]:port */
		s->relay_host = strndup(text + 1, (size_t)(colon - text) - 2);
	else
		s->relay_host = strndup(text, (size_t)(colon - text));
	if (s->relay_host == NULL)
		abort();
	return 0;
}

static void
kw_relay_to(struct conf_ctx *c, void *t, int argc, char **argv)
{
	if (ec_parse_relay(argv[1], t) == -1)
		conf_error(c, "relay-to: \"%.64s\" is not HOST:PORT, [ADDRESS]:PORT or lmtp:/path",
		    argv[1]);
}

#define KW(name, min, max, fn)	{ name, min, max, fn, NULL, NULL, NULL, 0 }
#define KWR(name, min, max, fn)	{ name, min, max, fn, NULL, NULL, NULL, 1 }

static const struct conf_keyword server_keywords[] = {
	KW("method",		1, 1,	kw_method),
	KW("port",		1, 1,	kw_port),
	KWR("domains",		1, -1,	kw_domains),
	KW("user",		1, 1,	kw_user),
	KW("password-file",	1, 1,	kw_password_file),
	KW("tls",		1, 1,	kw_tls),
	KW("ca",		1, 1,	kw_ca),
	KW("every",		1, 1,	kw_every),
	KW("relay-to",		1, 1,	kw_relay_to),
	{ NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }
};

static void *
open_server(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_conf *cf = t;
	struct ec_server *s;

	if (argc != 2) {
		conf_error(c, "server takes one host name: server HOST {");
		return NULL;
	}
	for (size_t i = 0; i < cf->n_servers; i++)
		if (strcmp(cf->servers[i].name, argv[1]) == 0) {
			conf_error(c, "server %s is already defined at line %d", argv[1],
			    cf->servers[i].line);
			return NULL;
		}
	cf->servers = conf_xgrow(cf->servers, cf->n_servers + 1, sizeof(*cf->servers));
	s = &cf->servers[cf->n_servers++];
	memset(s, 0, sizeof(*s));
	s->name = conf_xstrdup(argv[1]);
	s->line = conf_line(c);
	s->every = EC_DEF_EVERY;
	return s;
}

/* ---- top level ---- */

static void
kw_hostname(struct conf_ctx *c, void *t, int argc, char **argv)
{
	((struct ec_conf *)t)->hostname = conf_xstrdup(argv[1]);
}

static void
kw_lock_dir(struct conf_ctx *c, void *t, int argc, char **argv)
{
	((struct ec_conf *)t)->lock_dir = conf_xstrdup(argv[1]);
}

static void
kw_timeout(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_conf *cf = t;

	if (conf_parse_duration(argv[1], &cf->timeout) == -1 || cf->timeout == 0)
		conf_error(c, "timeout: bad duration \"%.40s\"", argv[1]);
}

static const struct conf_keyword top_keywords[] = {
	KW("hostname",		1, 1,	kw_hostname),
	KW("lock-dir",		1, 1,	kw_lock_dir),
	KW("timeout",		1, 1,	kw_timeout),
	{ "server",		1, 1,	NULL, open_server, server_keywords, NULL, 1 },
	{ NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }
};

/* ---- checks once the whole file is read ---- */

/* read_password - the first line of the file; refused when others may
 * read it (the password would be as good as public) */
static void
read_password(struct ec_server *s, const char *where, struct conf_errors *errs)
{
	struct stat st;
	char line[1024];
	FILE *fp;

	if ((fp = fopen(s->password_file, "r")) == NULL) {
		conf_add_error(errs, "%s: password-file %s: %s", where, s->password_file,
		    strerror(errno));
		return;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077) != 0) {
		conf_add_error(errs, "%s: password-file %s is readable by group or others (mode %03o): "
		    "chmod 600 %s", where, s->password_file, (unsigned)(st.st_mode & 0777),
		    s->password_file);
		fclose(fp);
		return;
	}
	if (fgets(line, sizeof(line), fp) == NULL || (line[strcspn(line, "\r\n")] = '\0',
	    line[0] == '\0'))
		conf_add_error(errs, "%s: password-file %s is empty", where, s->password_file);
	else
		s->password = conf_xstrdup(line);
	explicit_bzero(line, sizeof(line));
	fclose(fp);
}

static void
check_server(struct ec_server *s, const char *path, struct conf_errors *errs)
{
	char where[600];

	if (s->line > 0)
		snprintf(where, sizeof(where), "%s:%d: server %s", path, s->line, s->name);
	else
		snprintf(where, sizeof(where), "%s: server %s", path, s->name);
	if (!s->method_set)
		conf_add_error(errs, "%s: say \"method etrn\" or \"method odmr\"", where);
	if (s->port == 0)
		s->port = s->method == EC_ODMR ? 366 : 25;
	if (s->method == EC_ETRN && s->n_domains == 0)
		conf_add_error(errs, "%s: \"domains\" is required with method etrn", where);
	if (s->method == EC_ODMR && (s->user == NULL || s->password_file == NULL))
		conf_add_error(errs, "%s: method odmr needs \"user\" and \"password-file\"", where);
	if (s->method == EC_ODMR && s->relay == EC_RELAY_NONE)
		conf_add_error(errs, "%s: method odmr needs \"relay-to\" (the local MTA)", where);
	if (s->ca != NULL)
		conf_relative_path(&s->ca, path);
	if (s->password_file != NULL) {
		conf_relative_path(&s->password_file, path);
		read_password(s, where, errs);
	}
}

static struct ec_conf *
ec_conf_new(void)
{
	struct ec_conf *cf = calloc(1, sizeof(*cf));

	if (cf == NULL)
		abort();
	cf->timeout = EC_DEF_TIMEOUT;
	return cf;
}

static void
ec_conf_finish(struct ec_conf *cf, const char *path, struct conf_errors *errs)
{
	char host[SMTP_DOMAIN_MAX + 1];

	if (cf->hostname == NULL) {
		if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		cf->hostname = conf_xstrdup(host);
	}
	if (cf->lock_dir == NULL)
		cf->lock_dir = conf_xstrdup(DEF_LOCK_DIR);
	else
		conf_relative_path(&cf->lock_dir, path);
	for (size_t i = 0; i < cf->n_servers; i++)
		check_server(&cf->servers[i], path, errs);
}

struct ec_conf *
ec_conf_load(const char *path, struct conf_errors *errs)
{
	struct ec_conf *cf;
	size_t before = errs->count;

	if (access(path, R_OK) == -1) {
		conf_add_error(errs, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cf = ec_conf_new();
	cf->path = conf_xstrdup(path);
	conf_parse_file(path, top_keywords, cf, errs);
	if (errs->count == before && cf->n_servers == 0)
		conf_add_error(errs, "%s: no \"server HOST { ... }\" block", path);
	ec_conf_finish(cf, path, errs);
	if (errs->count > before) {
		ec_conf_free(cf);
		return NULL;
	}
	return cf;
}

struct ec_conf *
ec_conf_parse_text(const char *name, const char *text, struct conf_errors *errs)
{
	struct ec_conf *cf = ec_conf_new();
	size_t before = errs->count;

	cf->path = conf_xstrdup(name);
	conf_parse_string(name, text, top_keywords, cf, errs);
	ec_conf_finish(cf, name, errs);
	if (errs->count > before) {
		ec_conf_free(cf);
		return NULL;
	}
	return cf;
}

struct ec_conf *
ec_conf_adhoc(const struct ec_server *tmpl, struct conf_errors *errs)
{
	struct ec_conf *cf = ec_conf_new();
	size_t before = errs->count;

	cf->path = conf_xstrdup("command line");
	cf->servers = conf_xgrow(NULL, 1, sizeof(*cf->servers));
	cf->servers[0] = *tmpl;
	cf->n_servers = 1;
	ec_conf_finish(cf, "command line", errs);
	if (errs->count > before) {
		ec_conf_free(cf);
		return NULL;
	}
	return cf;
}

void
ec_conf_free(struct ec_conf *cf)
{
	if (cf == NULL)
		return;
	for (size_t i = 0; i < cf->n_servers; i++) {
		struct ec_server *s = &cf->servers[i];

		for (size_t j = 0; j < s->n_domains; j++)
			free(s->domains[j]);
		free(s->domains);
		free(s->name);
		free(s->user);
		free(s->password_file);
		if (s->password != NULL)
			explicit_bzero(s->password, strlen(s->password));
		free(s->password);
		free(s->ca);
		free(s->relay_host);
		free(s->relay_path);
	}
	free(cf->servers);
	free(cf->path);
	free(cf->hostname);
	free(cf->lock_dir);
	free(cf);
}
