/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * schedule.c - retry decisions; see schedule.h.  Pure code: no clock, no
 * storage.
 */
#include "config.h"

#include "schedule.h"

/* Knuth's multiplicative hash constant (2^32 / golden ratio): spreads the
 * failure count over the jitter range. */
#define JITTER_HASH	2654435761u

double
schedule_backoff(const char *domain, unsigned n, double retry)
{
	double cap = retry > SCHEDULE_BACKOFF_MAX ? retry : SCHEDULE_BACKOFF_MAX, d = retry;
	unsigned h = n * JITTER_HASH;

	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2;
	for (const char *p = domain; *p; p++)
		h = h * 31 + (unsigned char)*p;
	return (d < cap ? d : cap) * (0.8 + 0.4 * (double)(h % 1000) / 1000.0);
}

/* schedule_retry - the retry the backoff starts from */
static double
schedule_retry(const struct domain_conf *d)
{
	return d != NULL ? (double)d->retry : SCHEDULE_RETRY_OUTSIDE;
}

int64_t
schedule_next_attempt(const char *domain, const struct domain_conf *d,
    const struct spool_route *rt)
{
	double wait;

	if (d != NULL && d->mode != MODE_BACKUP)
		return SCHEDULE_NEVER;
	if (rt == NULL)
		return 0;
	if (rt->flags & ROUTE_HELD)
		return SCHEDULE_NEVER;
	if (rt->failures == 0)
		return 0;
	wait = schedule_backoff(domain, rt->failures, schedule_retry(d));
	/* rounded up: never earlier than the scheduler would start it */
	return rt->last_attempt + (int64_t)wait + ((double)(int64_t)wait < wait);
}
