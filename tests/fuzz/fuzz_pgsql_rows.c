/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_pgsql_rows.c - libFuzzer target for the domains query's rows made
 * into domain blocks (spoold/pgsql_rows.c), the text a reload then parses.
 * The input is a result: its first byte picks how many columns (1-8), the
 * next one per column picks its name (domain, one of the directives, or
 * an unknown one), then the values, row after row, separated by 0x1f, a
 * lone 0x1e being SQL NULL.  Checks that a row can never become more than
 * its own block: every line of the text is a block's first line, one
 * directive with its words, or "}", and there are as many blocks as rows
 * kept.  That is what keeps a value from adding a domain or a directive.
 */
#include "config.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgsql_rows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rows left out are logged: a line for most inputs, 200 MB in 20 s.  The
 * target links this instead of shared/log.c, so the fuzzer's own report
 * stays readable on stderr. */
void
log_warnx(const char *fmt, ...)
{
	(void)fmt;
}

static const char *const names[] = {
	"domain", "mode", "etrn_from", "atrn_user", "deliver_to", "tls", "quota", "max_age", "retry",
	"delay_warning", "recipients", "filter", "archive_to", "Mode", "colour",
};
#define NNAMES	(sizeof(names) / sizeof(names[0]))

static const char *const directives[] = {
	"mode ", "etrn-from ", "atrn-user ", "deliver-to ", "tls ", "quota ", "max-age ", "retry ",
	"delay-warning ", "recipients ", "filter ", "archive-to ", NULL
};

/* line_ok - one line of the text is one the rows may make */
static int
line_ok(const char *l, size_t len, size_t *blocks)
{
	if (len == 1 && l[0] == '}')
		return 1;
	if (len > 7 && strncmp(l, "domain ", 7) == 0) {
		const char *brace = memchr(l + 7, '{', len - 7);

		/* "domain NAME { # row N": one word, then the brace */
		if (brace == NULL || memchr(l + 7, ' ', (size_t)(brace - l) - 7) != brace - 1 ||
		    strncmp(brace, "{ # row ", 8) != 0)
			return 0;
		(*blocks)++;
		return 1;
	}
	for (size_t i = 0; directives[i] != NULL; i++)
		if (strncmp(l, directives[i], strlen(directives[i])) == 0)
			return memchr(l, '{', len) == NULL && memchr(l, '}', len) == NULL &&
			    memchr(l, '"', len) == NULL && memchr(l, '#', len) == NULL;
	return 0;
}

static void
check_text(const char *text, size_t kept)
{
	size_t blocks = 0;

	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');

		if (nl == NULL || !line_ok(l, (size_t)(nl - l), &blocks)) {
			fprintf(stderr, "a line the rows may not make: %.*s\n", (int)(nl ? nl - l : 80), l);
			abort();
		}
		l = nl + 1;
	}
	if (blocks != kept) {
		fprintf(stderr, "%zu blocks for %zu rows kept\n", blocks, kept);
		abort();
	}
}

/* result - the input as a PGresult; NULL when too short */
static PGresult *
result(const uint8_t *data, size_t size)
{
	PGresult *res;
	PGresAttDesc att[8];
	char name[8][32], *value;
	size_t ncols, pos, start;
	int row = 0, col = 0;

	if (size < 2)
		return NULL;
	ncols = (size_t)(data[0] % 8) + 1;
	if (size < 1 + ncols || (res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK)) == NULL)
		return NULL;
	memset(att, 0, sizeof(att));
	for (size_t c = 0; c < ncols; c++) {
		snprintf(name[c], sizeof(name[c]), "%s", names[data[1 + c] % NNAMES]);
		att[c].name = name[c];
		att[c].typid = 25;
		att[c].typlen = -1;
		att[c].atttypmod = -1;
	}
	if (!PQsetResultAttrs(res, (int)ncols, att) || (value = malloc(size + 1)) == NULL) {
		PQclear(res);
		return NULL;
	}
	for (pos = start = 1 + ncols; pos <= size && row < 64; pos++) {
		size_t len;

		if (pos < size && data[pos] != 0x1f)
			continue;
		len = pos - start;
		memcpy(value, data + start, len);
		value[len] = '\0';
		/* a NUL inside a value ends it, as in a C string from libpq */
		(void)PQsetvalue(res, row, col, value, len == 1 && value[0] == 0x1e ? -1 : (int)strlen(value));
		if (++col == (int)ncols)
			col = 0, row++;
		start = pos + 1;
	}
	free(value);
	return res;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PGresult *res;
	size_t kept = 0;
	char *text;

	if (size > 8192 || (res = result(data, size)) == NULL)
		return 0;
	if ((text = pgsql_rows_text("fuzz.cf", res, &kept)) != NULL) {
		check_text(text, kept);
		free(text);
	}
	PQclear(res);
	return 0;
}
