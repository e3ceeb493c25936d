/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * scheduler.h - what spoold does on its own, on a timer:
 *
 *  - delivery runs nobody asked for: domains with "mode backup" and mail
 *    queued under domains that are not configured (the DSNs to senders
 *    elsewhere).  One attempt per domain, not per message, when
 *    schedule.h says it is due.  When an attempt gets through, the run
 *    drains the whole domain.
 *  - expiry: a recipient older than its domain's max-age (hold domains
 *    too) fails with one DSN (4.4.7) in the same transaction, a few hundred
 *    messages at a time so sessions never stall.
 */
#ifndef SPOOLD_SCHEDULER_H
#define SPOOLD_SCHEDULER_H

#include <ev.h>

struct queue;
struct spoold_rt;

/* How often the spool is looked at at most (shorter when a backup domain's
 * retry is shorter). */
#define SCHEDULER_TICK		60.0
/* Messages expired per look; more are left for the next one, soon after. */
#define SCHEDULER_EXPIRE_BATCH	256

/* scheduler_start - look at q now and then, by the configuration rt */
void	scheduler_start(struct ev_loop *, struct queue *q, struct spoold_rt *rt);
/* scheduler_configure - the running configuration (SIGHUP) */
void	scheduler_configure(struct spoold_rt *);
/* scheduler_queued - mail was queued for domain: look soon if spoold
 * itself must send it (a domain that is not configured) */
void	scheduler_queued(const char *domain);
void	scheduler_stop(void);

#endif
