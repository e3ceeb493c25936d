/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql_map.c - PostgreSQL lookup files; see pgsql_map.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "pgsql_map.h"

#define MAP_MAX_SIZE	(64 * 1024)	/* a lookup file, not a table */
#define QUERY_MAX	8192

struct map_fields {
	char	*hosts, *user, *password, *dbname, *connect, *query, *notify;
	char	*cache_ttl, *timeout;
};

static const struct {
	const char	*name;
	size_t		 offset;
} map_keys[] = {
	{ "hosts",	offsetof(struct map_fields, hosts) },
	{ "user",	offsetof(struct map_fields, user) },
	{ "password",	offsetof(struct map_fields, password) },
	{ "dbname",	offsetof(struct map_fields, dbname) },
	{ "connect",	offsetof(struct map_fields, connect) },
	{ "query",	offsetof(struct map_fields, query) },
	{ "notify",	offsetof(struct map_fields, notify) },
	{ "cache-ttl",	offsetof(struct map_fields, cache_ttl) },
	{ "timeout",	offsetof(struct map_fields, timeout) },
};

static void
fields_free(struct map_fields *f)
{
	for (size_t i = 0; i < sizeof(map_keys) / sizeof(map_keys[0]); i++)
		free(*(char **)((char *)f + map_keys[i].offset));
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* set_field - name = value; a continuation (a line starting with a blank)
 * adds to the last value, as in Postfix's files */
static int
set_field(struct map_fields *f, const char *name, const char *value, char ***last)
{
	for (size_t i = 0; i < sizeof(map_keys) / sizeof(map_keys[0]); i++) {
		char **dst = (char **)((char *)f + map_keys[i].offset);

		if (strcmp(map_keys[i].name, name) != 0)
			continue;
		if (*dst != NULL)
			return -2;
		*dst = conf_xstrdup(value);
		*last = dst;
		return 0;
	}
	return -1;
}

static void
add_continuation(char **dst, const char *more)
{
	size_t a = strlen(*dst), b = strlen(more);
	char *n = realloc(*dst, a + b + 2);

	if (n == NULL)
		abort();
	n[a] = ' ';
	memcpy(n + a + 1, more, b + 1);
	*dst = n;
}

static int
parse_lines(const char *name, char *text, struct map_fields *f, char *err, size_t errlen)
{
	char **last = NULL;
	int lineno = 0;

	for (char *line = text, *next; line != NULL; line = next) {
		char *eq, *p;
		int rc;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		/* as in Postfix: a comment is a whole line (a password may hold a #) */
		if (*(p = trim(line)) == '\0' || *p == '#')
			continue;
		if (isspace((unsigned char)line[0])) {
			if (last == NULL) {
				snprintf(err, errlen, "%s:%d: a continuation line with nothing to continue",
				    name, lineno);
				return -1;
			}
			add_continuation(last, trim(line));
			continue;
		}
		if ((eq = strchr(line, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected \"name = value\"", name, lineno);
			return -1;
		}
		*eq = '\0';
		if ((rc = set_field(f, trim(line), trim(eq + 1), &last)) != 0) {
			snprintf(err, errlen, rc == -2 ? "%s:%d: %s is given twice" :
			    "%s:%d: unknown name \"%.40s\" (hosts, user, password, dbname, connect, query, "
			    "notify, cache-ttl, timeout)", name, lineno, trim(line));
			return -1;
		}
	}
	return 0;
}

/* conninfo_add - key='value' with libpq's quoting */
static void
conninfo_add(struct buf *b, const char *key, const char *value)
{
	buf_printf(b, "%s%s='", buf_used(b) ? " " : "", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_append(b, "'", 1);
}

/* hosts_conninfo - Postfix's "unix:/dir inet:host:port host" list as
 * libpq's host=a,b port=p,q (a port for each; 5432 by default) */
static int
hosts_conninfo(struct buf *b, char *hosts)
{
	struct buf h, p;
	int n = 0;

	buf_init(&h);
	buf_init(&p);
	for (char *tok = strtok(hosts, " \t,"); tok != NULL; tok = strtok(NULL, " \t,")) {
		const char *port = "5432";
		char *colon;

		if (strncmp(tok, "unix:", 5) == 0)
			tok += 5;
		else {
			if (strncmp(tok, "inet:", 5) == 0)
				tok += 5;
			if (tok[0] == '[' && (colon = strchr(tok, ']')) != NULL) {
				/* [2001:db8::1]:5432, as Postfix writes an IPv6
				 * address: libpq wants it bare */
				*colon = '\0';
				if (colon[1] == ':')
					port = colon + 2;
				else if (colon[1] != '\0')
					port = "";	/* nothing else may follow */
				tok++;
			} else if (tok[0] != '/' && (colon = strrchr(tok, ':')) != NULL) {
				*colon = '\0';
				port = colon + 1;
			}
		}
		if (*tok == '\0' || *port == '\0')
			continue;
		buf_printf(&h, "%s%s", n ? "," : "", tok);
		buf_printf(&p, "%s%s", n ? "," : "", port);
		n++;
	}
	if (n > 0) {
		buf_append(&h, "", 1);
		buf_append(&p, "", 1);
		conninfo_add(b, "host", buf_head(&h));
		conninfo_add(b, "port", buf_head(&p));
	}
	buf_free(&h);
	buf_free(&p);
	return n;
}

static int
build_conninfo(struct pgsql_map *m, struct map_fields *f, const char *name, char *err, size_t errlen)
{
	struct buf b;

	buf_init(&b);
	if (f->connect != NULL && (f->hosts || f->user || f->password || f->dbname)) {
		snprintf(err, errlen, "%s: connect replaces hosts, user, password and dbname: give one or "
		    "the others", name);
		return -1;
	}
	if (f->connect != NULL)
		buf_printf(&b, "%s", f->connect);
	else {
		if (f->hosts != NULL && hosts_conninfo(&b, f->hosts) == 0) {
			snprintf(err, errlen, "%s: hosts names no host", name);
			buf_free(&b);
			return -1;
		}
		if (f->user != NULL)
			conninfo_add(&b, "user", f->user);
		if (f->password != NULL)
			conninfo_add(&b, "password", f->password);
		if (f->dbname != NULL)
			conninfo_add(&b, "dbname", f->dbname);
	}
	/* TCP keepalives within the timeout: an idle domains connection
	 * waits for NOTIFYs, with nothing sent that would find a peer gone
	 * without a word (a host powered off, a VIP moved); the system's
	 * default finds it after two hours */
	buf_printf(&b, "%sconnect_timeout=%llu keepalives=1 keepalives_idle=%llu keepalives_interval=%llu "
	    "keepalives_count=3 application_name=spoold", buf_used(&b) ? " " : "",
	    (unsigned long long)m->timeout, (unsigned long long)m->timeout,
	    (unsigned long long)m->timeout);
	buf_append(&b, "", 1);
	m->conninfo = conf_xstrdup(buf_head(&b));
	buf_free(&b);
	return 0;
}

static int
map_settings(struct pgsql_map *m, struct map_fields *f, const char *name, char *err, size_t errlen)
{
	m->cache_ttl = PGSQL_DEF_CACHE_TTL;
	m->timeout = PGSQL_DEF_TIMEOUT;
	if (f->cache_ttl != NULL && conf_parse_duration(f->cache_ttl, &m->cache_ttl) == -1) {
		snprintf(err, errlen, "%s: cache-ttl: \"%.40s\" is not a duration (30s, 5m, 1h)", name,
		    f->cache_ttl);
		return -1;
	}
	if (f->timeout != NULL && (conf_parse_duration(f->timeout, &m->timeout) == -1 ||
	    m->timeout == 0 || m->timeout > 3600)) {
		snprintf(err, errlen, "%s: timeout: \"%.40s\" is not a duration from 1s to 1h", name,
		    f->timeout);
		return -1;
	}
	if (f->query == NULL || *f->query == '\0') {
		snprintf(err, errlen, "%s: query is required", name);
		return -1;
	}
	if (strlen(f->query) > QUERY_MAX) {
		snprintf(err, errlen, "%s: query is longer than %d bytes", name, QUERY_MAX);
		return -1;
	}
	if (f->notify != NULL && strspn(f->notify, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
	    strlen(f->notify)) {	/* it goes into LISTEN unquoted */
		snprintf(err, errlen, "%s: notify: a channel is lower-case letters, digits and _", name);
		return -1;
	}
	m->query = conf_xstrdup(f->query);
	m->notify = f->notify != NULL && *f->notify ? conf_xstrdup(f->notify) : NULL;
	return build_conninfo(m, f, name, err, errlen);
}

struct pgsql_map *
pgsql_map_parse(const char *name, const char *text, char *err, size_t errlen)
{
	struct map_fields f = { 0 };
	struct pgsql_map *m;
	char *copy = conf_xstrdup(text);

	if ((m = calloc(1, sizeof(*m))) == NULL)
		abort();
	m->path = conf_xstrdup(name);
	if (parse_lines(name, copy, &f, err, errlen) == -1 || map_settings(m, &f, name, err, errlen) == -1) {
		pgsql_map_free(m);
		m = NULL;
	}
	fields_free(&f);
	free(copy);
	return m;
}

struct pgsql_map *
pgsql_map_load(const char *path, char *err, size_t errlen)
{
	struct pgsql_map *m;
	FILE *fp = fopen(path, "r");
	char *text;
	size_t n;

	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((text = malloc(MAP_MAX_SIZE + 1)) == NULL)
		abort();
	n = fread(text, 1, MAP_MAX_SIZE + 1, fp);
	if (ferror(fp) || n > MAP_MAX_SIZE) {
		snprintf(err, errlen, "%s: %s", path, ferror(fp) ? strerror(errno) : "bigger than 64K");
		fclose(fp);
		free(text);
		return NULL;
	}
	fclose(fp);
	text[n] = '\0';
	m = pgsql_map_parse(path, text, err, errlen);
	free(text);
	return m;
}

void
pgsql_map_free(struct pgsql_map *m)
{
	if (m == NULL)
		return;
	free(m->path);
	if (m->conninfo != NULL)	/* it may hold a password */
		memset(m->conninfo, 0, strlen(m->conninfo));
	free(m->conninfo);
	free(m->query);
	free(m->notify);
	free(m);
}

char *
pgsql_map_expand(const char *query, const char *local, const char *domain, pgsql_escape_fn *escape,
    void *arg)
{
	struct buf b;
	char value[2 * 520 + 1], esc[4 * 520 + 2];

	buf_init(&b);
	for (const char *p = query; *p; p++) {
		const char *v = NULL;

		if (*p != '%' || p[1] == '\0') {
			buf_append(&b, p, 1);
			continue;
		}
		switch (*++p) {
		case '%': buf_append(&b, "%", 1); continue;
		case 's': snprintf(value, sizeof(value), "%s@%s", local, domain); v = value; break;
		case 'u': v = local; break;
		case 'd': v = domain; break;
		default: buf_append(&b, p - 1, 2); continue;	/* as written */
		}
		if (strlen(v) >= sizeof(value) || escape(arg, esc, sizeof(esc), v) == -1) {
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s", esc);
	}
	buf_append(&b, "", 1);
	return b.b_data;	/* the buffer's memory, handed over (nothing consumed) */
}
