/*
 * scheduler.h - what spoold does on its own, on a timer:
 *
 *  - delivery runs nobody asked for: domains with "mode backup" and mail
 *    queued under domains that are not configured (the DSNs to senders
 *    elsewhere).  One attempt per domain, not per message: at first at once,
 *    then after each failure after "retry", doubling up to 2 hours (or
 *    "retry" when that is longer), with 20% jitter.  When an attempt gets
 *    through, the run drains the whole domain.  "mode hold" domains and
 *    domains held with spoolctl hold wait for ETRN, ATRN or spoolctl flush.
 *  - expiry: a recipient older than its domain's max-age (hold domains
 *    too) fails with one DSN (4.4.7) in the same transaction, a few hundred
 *    messages at a time so sessions never stall.
 */
#ifndef SPOOLD_SCHEDULER_H
#define SPOOLD_SCHEDULER_H

/* How often the spool is looked at at most (shorter when a backup domain's
 * retry is shorter), and the retry of outside domains. */
#define SCHEDULER_TICK		60.0
#define SCHEDULER_RETRY		(15 * 60)
#define SCHEDULER_BACKOFF_MAX	(2 * 3600)
/* Messages expired per look; more are left for the next one, soon after. */
#define SCHEDULER_EXPIRE_BATCH	256

void	scheduler_start(void);
/* scheduler_kick - look soon (mail was queued for an outside domain) */
void	scheduler_kick(void);
void	scheduler_stop(void);

#endif
