/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ec_conf.c - etrnclient.conf keyword tables and checks.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "smtp_cmd.h"
#include "ec_conf.h"

#define DEF_LOCK_DIR	"/run/etrnclient"

const char *
ec_method_name(enum ec_method m)
{
	return m == EC_ODMR ? "odmr" : "etrn";
}

/* ---- server blocks ---- */

/* method_of - "etrn" or "odmr"; -1 for anything else */
static int
method_of(const char *word)
{
	if (strcmp(word, "etrn") == 0)
		return EC_ETRN;
	if (strcmp(word, "odmr") == 0)
		return EC_ODMR;
	return -1;
}

static void
kw_method(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;
	int m = method_of(argv[1]);

	s->method_set = 1;
	s->method_line = conf_line(c);
	if (m == -1)
		conf_error(c, "method: \"%.32s\" is not etrn or odmr", argv[1]);
	else
		s->method = (enum ec_method)m;
}

/* kw_port - "port N" (a block with one session) or "port etrn|odmr N" */
static void
kw_port(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;
	int m = argc == 3 ? method_of(argv[1]) : -1;
	int *port = argc == 2 ? &s->port : m != -1 ? &s->sess[m].port : NULL;
	int *line = argc == 2 ? &s->port_line : m != -1 ? &s->sess[m].port_line : NULL;
	uint64_t v;

	if (port == NULL) {
		conf_error(c, "port: \"%.32s\" is not etrn or odmr (port [etrn|odmr] N)", argv[1]);
		return;
	}
	if (*line != 0) {	/* port is repeatable, but once per session */
		conf_error(c, "\"port%s%s\" given twice (first at line %d)", argc == 3 ? " " : "",
		    argc == 3 ? argv[1] : "", *line);
		return;
	}
	*line = conf_line(c);
	if (conf_parse_uint(argv[argc - 1], 65535, &v) == -1 || v == 0)
		conf_error(c, "port: \"%.16s\" is not a TCP port", argv[argc - 1]);
	else
		*port = (int)v;
}

/* add_domains - argv[1..] to a list; each must be a domain name */
static void
add_domains(struct conf_ctx *c, int argc, char **argv, char ***list, size_t *n)
{
	for (int i = 1; i < argc; i++) {
		char d[SMTP_DOMAIN_MAX + 2];

		snprintf(d, sizeof(d), "%s", argv[i]);
		if (strlen(argv[i]) > SMTP_DOMAIN_MAX || smtp_domain_canon(d, 0) == -1 || d[0] == '[') {
			conf_error(c, "%s: \"%.64s\" is not a domain name", argv[0], argv[i]);
			continue;
		}
		*list = conf_xgrow(*list, *n + 1, sizeof(char *));
		(*list)[(*n)++] = conf_xstrdup(d);
	}
}

static void
kw_domains(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_server *s = t;

	if (s->domains_line == 0)
		s->domains_line = conf_line(c);
	add_domains(c, argc, argv, &s->domains, &s->n_domains);
}

/* kw_session - "etrn DOMAIN..." or "odmr [DOMAIN...]": that session, so a
 * block may hold one of each */
static void
kw_session(struct conf_ctx *c, void *t, int argc, char **argv)
{
	struct ec_session *ss = &((struct ec_server *)t)->sess[method_of(argv[0])];

	ss->on = 1;
	ss->line = conf_line(c);
	add_domains(c, argc, argv, &ss->domains, &ss->n_domains);
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
	KW("etrn",		1, -1,	kw_session),
	KW("odmr",		0, -1,	kw_session),
	KWR("port",		1, 2,	kw_port),
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

/* server_error - "file:line: server HOST: message", at line, or at the
 * block's line when line is 0 (the command line has none) */
static void server_error(struct conf_errors *, const char *path, const struct ec_server *,
    int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
server_error(struct conf_errors *errs, const char *path, const struct ec_server *s, int line,
    const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line == 0)
		line = s->line;
	if (line > 0)
		conf_add_error(errs, "%s:%d: server %s: %s", path, line, s->name, msg);
	else
		conf_add_error(errs, "%s: server %s: %s", path, s->name, msg);
}

/* fold_method - the one-session spelling ("method" with "domains") into
 * its session; it does not mix with "etrn"/"odmr" lines */
static void
fold_method(struct ec_server *s, const char *path, struct conf_errors *errs)
{
	struct ec_session *ss = &s->sess[s->method];

	if (s->sess[EC_ETRN].on || s->sess[EC_ODMR].on) {
		if (s->method_set)
			server_error(errs, path, s, s->method_line, "\"method\" is for a block of one "
			    "session; with \"etrn\" or \"odmr\" lines leave it out");
		else if (s->n_domains > 0)
			server_error(errs, path, s, s->domains_line, "\"domains\" goes with "
			    "\"method\"; list the domains on the \"etrn\" or \"odmr\" line");
		return;
	}
	if (!s->method_set) {
		server_error(errs, path, s, 0, "say \"etrn DOMAIN...\", \"odmr [DOMAIN...]\" (or "
		    "both), or \"method etrn|odmr\"");
		return;
	}
	if (s->method == EC_ETRN && s->n_domains == 0)
		server_error(errs, path, s, s->method_line, "\"domains\" is required with method etrn");
	ss->on = 1;
	ss->line = s->method_line;
	ss->domains = s->domains;
	ss->n_domains = s->n_domains;
	s->domains = NULL;
	s->n_domains = 0;
}

/* check_ports - a bare "port N" (or the command line's HOST:PORT) is the
 * one session's; with both it is ambiguous.  Unset ports are the
 * protocols' own. */
static void
check_ports(struct ec_server *s, const char *path, struct conf_errors *errs)
{
	int both = s->sess[EC_ETRN].on && s->sess[EC_ODMR].on;

	for (int m = 0; m < EC_NMETHODS; m++) {
		struct ec_session *ss = &s->sess[m];

		if (ss->port_line != 0 && !ss->on)
			server_error(errs, path, s, ss->port_line, "\"port %s\": the block has no %s "
			    "session", ec_method_name((enum ec_method)m), ec_method_name((enum ec_method)m));
		if (s->port != 0 && ss->on && !both) {
			if (ss->port_line != 0)
				server_error(errs, path, s, s->port_line, "\"port\" and \"port %s\" "
				    "(line %d) both given", ec_method_name((enum ec_method)m), ss->port_line);
			else
				ss->port = s->port;
		}
		if (ss->port == 0)
			ss->port = m == EC_ODMR ? 366 : 25;
	}
	if (s->port != 0 && both)
		server_error(errs, path, s, s->port_line, "\"port\" is ambiguous with both etrn and "
		    "odmr: say \"port etrn N\" or \"port odmr N\"");
}

/* check_overlap - a domain pulled both ways: ETRN would start its run at
 * the ISP and the ATRN find it busy, every time */
static void
check_overlap(struct ec_server *s, const char *path, struct conf_errors *errs)
{
	const struct ec_session *e = &s->sess[EC_ETRN], *o = &s->sess[EC_ODMR];

	for (size_t i = 0; e->on && o->on && i < e->n_domains; i++)
		for (size_t j = 0; j < o->n_domains; j++)
			if (strcmp(e->domains[i], o->domains[j]) == 0)
				server_error(errs, path, s, o->line, "%s is both an etrn and an odmr "
				    "domain (line %d): pull it one way", o->domains[j], e->line);
}

static void
check_server(struct ec_server *s, const char *path, struct conf_errors *errs)
{
	char where[600];

	if (s->line > 0)
		snprintf(where, sizeof(where), "%s:%d: server %s", path, s->line, s->name);
	else
		snprintf(where, sizeof(where), "%s: server %s", path, s->name);
	fold_method(s, path, errs);
	check_ports(s, path, errs);
	check_overlap(s, path, errs);
	if (s->sess[EC_ODMR].on && (s->user == NULL || s->password_file == NULL))
		server_error(errs, path, s, s->sess[EC_ODMR].line, "odmr needs \"user\" and "
		    "\"password-file\"");
	if (s->sess[EC_ODMR].on && s->relay == EC_RELAY_NONE)
		server_error(errs, path, s, s->sess[EC_ODMR].line, "odmr needs \"relay-to\" (the "
		    "local MTA)");
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
		for (int m = 0; m < EC_NMETHODS; m++) {
			for (size_t j = 0; j < s->sess[m].n_domains; j++)
				free(s->sess[m].domains[j]);
			free(s->sess[m].domains);
		}
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
