/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql_rows.c - the domains query's rows made into domain blocks, and
 * their durable copy in the spool; see pgsql_rows.h.  Runs on the
 * PostgreSQL thread (pgsql.c).
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "pgsql_rows.h"
#include "spoold_conf.h"

static const char *const row_directives[] = {
	"mode", "etrn-from", "atrn-user", "deliver-to", "tls", "quota", "max-age", "retry",
	"delay-warning", "recipients", "filter", "archive-to", NULL
};

/* column_directive - the directive a column is named after (etrn_from:
 * etrn-from), or NULL */
static const char *
column_directive(const char *col)
{
	char name[32];
	size_t i;

	for (i = 0; col[i] && i < sizeof(name) - 1; i++)
		name[i] = col[i] == '_' ? '-' : (char)tolower((unsigned char)col[i]);
	name[i] = '\0';
	for (i = 0; row_directives[i] != NULL; i++)
		if (strcmp(row_directives[i], name) == 0)
			return row_directives[i];
	return NULL;
}

int
pgsql_value_words(const char *v, char *out, size_t len)
{
	size_t n = strlen(v), j = 0;

	if (n >= 2 && v[0] == '{' && v[n - 1] == '}')
		v++, n -= 2;
	if (n == 1 && (v[0] == 't' || v[0] == 'f')) {
		snprintf(out, len, "%s", v[0] == 't' ? "on" : "off");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '#' || ch == '{' || ch == '}' ||
		    ch == '\\')
			return -1;
		if (j + 1 >= len)
			return -1;
		out[j++] = ch == ',' ? ' ' : (char)ch;
	}
	out[j] = '\0';
	return 0;
}

/* row_block - row r of res as a domain block in b; -1 (why in err) when
 * a value cannot be one */
static int
row_block(PGresult *res, int r, int col_domain, const char **dirs, struct buf *b, char *err,
    size_t errlen)
{
	char words[4096];

	if (PQgetisnull(res, r, col_domain) || pgsql_value_words(PQgetvalue(res, r, col_domain), words,
	    sizeof(words)) == -1 || strchr(words, ' ') != NULL || words[0] == '\0') {
		snprintf(err, errlen, "the domain column is not a domain name");
		return -1;
	}
	/* the query's row number, for the reload's messages: the rows left
	 * out here are not in the text, so its blocks are not the rows */
	buf_printf(b, "domain %s { # row %d\n", words, r + 1);
	for (int f = 0; f < PQnfields(res); f++) {
		const char *v = PQgetvalue(res, r, f);

		if (dirs[f] == NULL || PQgetisnull(res, r, f) || *v == '\0')
			continue;
		if (pgsql_value_words(v, words, sizeof(words)) == -1) {
			snprintf(err, errlen, "column %s: the value holds a character a directive cannot",
			    PQfname(res, f));
			return -1;
		}
		if (words[strspn(words, " ")] != '\0')
			buf_printf(b, "%s %s\n", dirs[f], words);
	}
	buf_printf(b, "}\n");
	return 0;
}

char *
pgsql_rows_text(const char *path, PGresult *res, size_t *kept)
{
	const char *dirs[64];
	int col_domain = PQfnumber(res, "domain"), nf = PQnfields(res);
	struct buf all, one;
	char err[512];

	if (col_domain < 0 || nf > 64) {
		log_warnx("pgsql: %s: the query must return a column named domain (and at most 63 "
		    "more); keeping the rows served", path);
		return NULL;
	}
	for (int f = 0; f < nf; f++) {
		dirs[f] = f == col_domain ? NULL : column_directive(PQfname(res, f));
		if (f != col_domain && dirs[f] == NULL) {
			log_warnx("pgsql: %s: column %s is not a domain directive (mode, etrn_from, "
			    "atrn_user, deliver_to, tls, quota, max_age, retry, delay_warning, recipients, "
			    "filter, archive_to); keeping the rows served", path, PQfname(res, f));
			return NULL;
		}
	}
	buf_init(&all);
	buf_init(&one);
	*kept = 0;
	/* What the values say is checked where the rows join the
	 * configuration (spoold_conf_add_domains, at each reload): here only
	 * that each value can be a directive's words. */
	for (int r = 0; r < PQntuples(res); r++) {
		buf_clear(&one);
		if (row_block(res, r, col_domain, dirs, &one, err, sizeof(err)) == 0) {
			buf_append(&all, buf_head(&one), buf_used(&one));
			(*kept)++;
			continue;
		}
		log_warnx("pgsql:%s row %d: %s; the row is left out", path, r + 1, err);
		metrics_inc(MC_PGSQL_ROWS_REJECTED);
	}
	buf_append(&all, "", 1);
	buf_free(&one);
	return all.b_data;
}

int
pgsql_rows_keep(const char *datadir, const char *text)
{
	char path[4096], tmp[4096 + 8], head[256], when[32];
	time_t now = time(NULL);
	int fd, dfd, ok;

	snprintf(path, sizeof(path), "%s/%s", datadir, SPOOLD_PGSQL_COPY);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(head, sizeof(head), "# spoold: the last domain rows read from PostgreSQL, at %s"
	    "# (served while the database cannot be reached; do not edit)\n", ctime_r(&now, when));
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		return -1;
	ok = write(fd, head, strlen(head)) == (ssize_t)strlen(head) &&
	    write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fsync(fd) == 0;
	if (close(fd) == -1 || !ok || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	if ((dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		ok = fsync(dfd) == 0;
		close(dfd);
		if (!ok)
			return -1;
	}
	return 0;
}
