/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * schedule.h - when spoold tries a domain on its own: pure decisions from
 * the domain's configuration and its delivery history (struct spool_route),
 * shared by the scheduler, which acts on them, and spoolctl show, which
 * prints them, so the two never disagree.
 *
 * Only "mode backup" domains and domains that are not configured (mail for
 * senders elsewhere: DSNs) are tried on their own.  After a failure the
 * next attempt waits "retry", doubling with each failure in a row up to 2
 * hours (or "retry" when that is longer), with +-20% jitter that is the
 * same for one domain and failure count.  A held domain (spoolctl hold)
 * and a "mode hold" domain wait for ETRN, ATRN or spoolctl flush.
 */
#ifndef SPOOLD_SCHEDULE_H
#define SPOOLD_SCHEDULE_H

#include <stdint.h>

#include "spool_record.h"
#include "spoold_conf.h"

#define SCHEDULE_RETRY_OUTSIDE	(15 * 60)	/* domains that are not configured */
#define SCHEDULE_BACKOFF_MAX	(2 * 3600)

/* schedule_never - no attempt of spoold's own (held, or not a backup) */
#define SCHEDULE_NEVER		INT64_MAX

/* schedule_backoff - the wait after the n-th failure in a row (n >= 1) */
double	schedule_backoff(const char *domain, unsigned n, double retry);

/* schedule_next_attempt - when spoold next tries domain on its own: 0 for
 * "at the next look", SCHEDULE_NEVER, or a time.  d is the domain's block
 * (NULL: not configured), rt its history (NULL: none recorded). */
int64_t	schedule_next_attempt(const char *domain, const struct domain_conf *d,
	    const struct spool_route *rt);

#endif
