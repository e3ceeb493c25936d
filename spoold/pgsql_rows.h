/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql_rows.h - the rows of a `domains pgsql:FILE` query as domain blocks
 * (each column named after a domain block's directive), and the copy of
 * them kept in the spool (DATADIR/pgsql-domains.conf).
 */
#ifndef SPOOLD_PGSQL_ROWS_H
#define SPOOLD_PGSQL_ROWS_H

#include <stddef.h>
#include <libpq-fe.h>

/* pgsql_rows_text - the domain blocks of res's valid rows, malloc'd, with
 * *kept of them; a row left out is logged (path names the lookup file)
 * and counted.  NULL (logged) when the result's columns are wrong. */
char	*pgsql_rows_text(const char *path, PGresult *res, size_t *kept);

/* pgsql_rows_keep - text, durably, in datadir's SPOOLD_PGSQL_COPY before it
 * is served (written to a temporary file, synced, renamed, the directory
 * synced): a crash, or a start with the database down, finds it.  -1 with
 * errno when it could not be kept. */
int	pgsql_rows_keep(const char *datadir, const char *text);

/* pgsql_value_words - a column's value v as a directive's words in out: a
 * PostgreSQL array {a,b} and a comma list are words too, t/f (boolean)
 * are on/off.  -1 for what the configuration's syntax could not hold (a
 * quote, a brace, a control character, '#', '\\') or what is too long. */
int	pgsql_value_words(const char *v, char *out, size_t len);

#endif
