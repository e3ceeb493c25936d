/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql.h - customer domains and recipients in PostgreSQL.
 *
 * One thread of its own, with its own libev loop, holds the connections
 * and drives libpq's asynchronous API: nothing on spoold's loop ever waits
 * for the database.
 *
 * Domains ("domains pgsql:FILE"): the query's rows become domain blocks
 * (the same directives as the file's); the thread LISTENs on the file's
 * notify channel and reads the rows again at each NOTIFY, so a change is
 * in within a second, without a reload of the file.  The last good rows
 * are kept in the spool (DATADIR/pgsql-domains.conf, written and synced
 * before use) and served while the database cannot be reached.
 *
 * Recipients ("recipients pgsql:FILE"): one query per address, answered
 * on the loop through a callback; answers are cached for the file's
 * cache-ttl (and kept past it while the database is down), a NOTIFY on
 * the file's channel drops the cache, and one lookup per address is in
 * flight at a time.
 */
#ifndef SPOOLD_PGSQL_H
#define SPOOLD_PGSQL_H

#include <ev.h>

#include "pgsql_map.h"
#include "spoold_conf.h"

/* pgsql_start - the thread, for cf's domains map (if any) and lookup
 * files; changed() runs on loop when new domain rows are in (then
 * pgsql_domains_text() has them).  copy: the rows start-up read (taken). */
int	pgsql_start(struct ev_loop *loop, const struct spoold_conf *cf, char *copy,
	    void (*changed)(void));
/* pgsql_update - a reload: lookup files named for the first time, or
 * changed, get their connection */
void	pgsql_update(const struct spoold_conf *cf);
void	pgsql_stop(void);

/* pgsql_domains_text - the rows served now, as domain blocks (a copy to
 * free), and *gen which rows they are (for spoold_conf.pgsql_rows_gen);
 * NULL when there are none.  Any thread. */
char	*pgsql_domains_text(uint64_t *gen);
/* pgsql_domains_current - 1 when the database answered and cf holds its
 * rows; 0 while the copy is served, or when newer rows are not in cf yet
 * (the reload under way, or a session started before it): what is not
 * in cf then gets "try later" */
int	pgsql_domains_current(const struct spoold_conf *cf);

/* A recipients lookup's answer: 1 the address is there, 0 it is not, -1
 * the database could not say. */
typedef void pgsql_lookup_done(void *arg, int found);
struct pgsql_lookup;

/* pgsql_lookup_cached - the cache's answer (1, 0), or -1: not cached */
int	pgsql_lookup_cached(const struct pgsql_map *, const char *local, const char *domain);
/* pgsql_lookup_ready - 1 when the file's database can be asked now (else
 * what is not cached gets 451 at once) */
int	pgsql_lookup_ready(const struct pgsql_map *);
/* pgsql_lookup - ask; done() runs later, on the loop, never before this
 * returns, unless cancelled.  One lookup an address is under way at a
 * time: a second caller waits for the same answer. */
struct pgsql_lookup *pgsql_lookup(const struct pgsql_map *, const char *local, const char *domain,
	    pgsql_lookup_done *done, void *arg);
void	pgsql_lookup_cancel(struct pgsql_lookup *);
/* pgsql_lookups_stop - shutting down: the lookups under way are answered
 * -1 (451) now, not when the database answers or times out, and none is
 * asked from here on */
void	pgsql_lookups_stop(void);

#endif
