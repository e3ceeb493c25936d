/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql_map.h - a PostgreSQL lookup file, as Postfix's pgsql_table(5):
 * "name = value" lines, "#" comments.
 *
 *   hosts    = unix:/var/run/postgresql inet:db1.example:5432 db2.example
 *   user     = spoold
 *   password = secret
 *   dbname   = mail
 *   query    = SELECT 1 FROM mailbox WHERE address = '%s'
 *
 * or "connect = LIBPQ-CONNINFO" instead of hosts/user/password/dbname.
 * In a recipients query %s is the address, %u its local part, %d its
 * domain, %% a percent sign, each escaped for a quoted SQL string (the
 * caller lowers the address's case).  A
 * domains query returns one row per domain (see the README).  notify names
 * a channel to LISTEN on (domains: re-read at once; recipients: the cache
 * is dropped).  cache-ttl bounds how long a recipients answer is reused.
 * Nothing here talks to the database (spoolctl and spoold -n parse it too).
 */
#ifndef SPOOLD_PGSQL_MAP_H
#define SPOOLD_PGSQL_MAP_H

#include <stddef.h>
#include <stdint.h>

#define PGSQL_DEF_CACHE_TTL	300	/* seconds */
#define PGSQL_DEF_TIMEOUT	10	/* connect and query, seconds */

struct pgsql_map {
	char		*path;
	char		*conninfo;	/* for PQconnectStart */
	char		*query;
	char		*notify;	/* channel, or NULL */
	uint64_t	 cache_ttl;
	uint64_t	 timeout;
};

/* pgsql_map_load - read path; NULL with "path:line: why" in err */
struct pgsql_map *pgsql_map_load(const char *path, char *err, size_t errlen);
/* pgsql_map_parse - the same for text in memory (unit tests) */
struct pgsql_map *pgsql_map_parse(const char *name, const char *text, char *err, size_t errlen);
void	pgsql_map_free(struct pgsql_map *);

/* an escape function: src (a query's %s value) for a quoted SQL string
 * into dst of len bytes (libpq's PQescapeStringConn); -1 on failure */
typedef int pgsql_escape_fn(void *arg, char *dst, size_t len, const char *src);

/* pgsql_map_expand - the query with %s, %u, %d and %% replaced; a newly
 * allocated string, or NULL (too long, out of memory, escape failure) */
char	*pgsql_map_expand(const char *query, const char *local, const char *domain,
	    pgsql_escape_fn *, void *arg);

#endif
