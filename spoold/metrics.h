/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics.h - spoold's running totals, for Prometheus (metrics-listen) and
 * spoolctl stats.
 *
 * The counters are bumped where things happen (sessions, the queue, the
 * delivery runs, the filters, the committer thread) with relaxed atomic
 * adds: nothing waits, and a scrape reads them from another thread.  They
 * start at zero with each spoold process, as Prometheus counters may.
 *
 * metrics_render() writes them in the text exposition format (version
 * 0.0.4); metrics_spool.c adds what the spool holds now.  Both run on the
 * metrics thread (metrics_http.c), never on the loop.
 */
#ifndef SPOOLD_METRICS_H
#define SPOOLD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum metrics_counter {
	MC_CONNECTIONS_SMTP,
	MC_CONNECTIONS_ODMR,
	MC_MESSAGES_ACCEPTED,		/* 250 after DATA, stored (or discarded) */
	MC_BYTES_ACCEPTED,
	MC_RECIPIENTS_ACCEPTED,
	MC_QUARANTINED_ARRIVAL,		/* stored into the quarantine */
	MC_QUARANTINED_RESCAN,		/* moved there by a second look */
	MC_DELIVERY_SENT,		/* per recipient, as the log's status= */
	MC_DELIVERY_DEFERRED,
	MC_DELIVERY_BOUNCED,
	MC_DSN_FAILURE,			/* DSNs queued to senders */
	MC_DSN_DELAY,
	MC_MILTER_PASS,			/* one per filter asked */
	MC_MILTER_REJECT,
	MC_MILTER_TEMPFAIL,
	MC_MILTER_REPLY,
	MC_MILTER_DISCARD,
	MC_MILTER_QUARANTINE,
	MC_MILTER_FAILED,
	MC_RUNS_STARTED,		/* delivery runs: ETRN, ATRN, flush, backup */
	MC_PGSQL_ERRORS,		/* PostgreSQL: connections lost or refused, queries failed */
	MC_PGSQL_ROWS_REJECTED,		/* domain rows left out (invalid, or in the file too) */
	MC_PGSQL_LOOKUP_FOUND,		/* recipients lookups asked of the database */
	MC_PGSQL_LOOKUP_NOTFOUND,
	MC_PGSQL_LOOKUP_FAILED,		/* no answer: 451 unless the cache had one */
	MC_PGSQL_LOOKUP_CACHED,		/* answered from the cache */
	MC_VERIFY_DELIVERABLE,		/* recipient probes, by result */
	MC_VERIFY_UNDELIVERABLE,
	MC_VERIFY_UNKNOWN,
	MC_VERIFY_CACHE_HIT,		/* RCPTs answered from the verify cache */
	MC_VERIFY_STALE,		/* ... from a positive entry due for a refresh */
	MC_VERIFY_JOINED,		/* RCPTs that waited for a probe in flight */
	MC_VERIFY_BUSY,			/* RCPTs given 450 by the probe limits */
	MC__COUNT
};

enum metrics_gauge {
	MG_SESSIONS,			/* client connections open now */
	MG_START_TIME,			/* the process's start, Unix time */
	MG_PGSQL_DOMAINS_UP,		/* 1: connected, and the rows are current */
	MG_PGSQL_DOMAINS,		/* rows in the copy served */
	MG_PGSQL_DOMAINS_TIME,		/* when that copy was read, Unix time */
	MG__COUNT
};

void	metrics_init(void);
void	metrics_inc(enum metrics_counter);
void	metrics_add(enum metrics_counter, uint64_t);
void	metrics_set(enum metrics_gauge, int64_t);

/* metrics_reply - a reply a session sent: service "smtp" or "odmr",
 * command the verb it answers ("CONNECT" for the greeting), line the
 * reply's first line.  ETRN and ATRN replies are counted by code, every
 * other 4xx/5xx as a rejection by command, code and enhanced status code;
 * the rest is not counted.  Loop thread only. */
void	metrics_reply(const char *service, const char *command, int code, const char *line);

/* metrics_commit - one committer batch: how many requests, how long the
 * commit took (the fsync included); from the committer thread */
void	metrics_commit(size_t batch, double seconds);

/* metrics_render - the counters' exposition text, appended to out (the
 * spool's series: metrics_spool.h) */
void	metrics_render(struct buf *out);

/* For the other parts of the text (buf_printf for the rest): a family's
 * HELP and TYPE lines, a label value escaped into dst. */
void	metrics_family(struct buf *out, const char *name, const char *type, const char *help);
const char *metrics_label(const char *v, char *dst, size_t len);

#endif
