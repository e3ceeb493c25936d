/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * rescan.h - a message stored unscanned (a content filter was down and
 * milter-default-action accept let it in) is offered to the filters again
 * before it leaves: by an ETRN, ATRN, flush or backup run, just before it
 * is sent.  A verdict that would have refused it at SMTP time quarantines
 * it now: the sender had a 250, so it is never bounced (no backscatter) and
 * never lost.  Only the verdict counts: changes a filter asks for now are
 * not applied, since the stored copy is not rewritten.
 */
#ifndef SPOOLD_RESCAN_H
#define SPOOLD_RESCAN_H

#include <ev.h>

#include "spool_record.h"

struct spoold_rt;
struct queue;
struct rescan;

enum rescan_result {
	RESCAN_PASSED,		/* the filters passed it: deliver (ENV_UNSCANNED goes) */
	RESCAN_UNSCANNED,	/* still down, milter-default-action accept: deliver
				 * as it is, still unscanned */
	RESCAN_QUARANTINE,	/* refused or quarantined: reason says why */
	RESCAN_LATER,		/* a filter said "not now" (4xx), or the message
				 * could not be read: it stays queued */
};

typedef void rescan_done_cb(void *arg, enum rescan_result, const char *reason);

/* rescan_wanted - e is unscanned and rt has filters for one of its
 * pending recipients' domains */
int	rescan_wanted(const struct spoold_rt *, const struct spool_envelope *e);
/* rescan_start - e (the caller's, read for the start only) through rt's
 * filters; done(arg, result, reason) comes once from the loop unless
 * rescan_cancel came first.  NULL when out of memory. */
struct rescan *rescan_start(struct ev_loop *, const struct spoold_rt *, struct queue *,
    const struct spool_envelope *e, rescan_done_cb *done, void *arg);
void	rescan_cancel(struct rescan *);

#endif
