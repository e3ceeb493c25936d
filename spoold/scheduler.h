/*
 * scheduler.h - delivery runs nobody asked for.  Mail queued under a domain
 * that is not configured (the DSNs to senders elsewhere) goes out by MX on
 * its own: soon after it is queued, then again every retry interval (15
 * minutes) while the destination fails.  Configured domains wait for ETRN,
 * ATRN or spoolctl flush.
 */
#ifndef SPOOLD_SCHEDULER_H
#define SPOOLD_SCHEDULER_H

/* How often the spool is looked at, and the wait after a failure. */
#define SCHEDULER_TICK		60.0
#define SCHEDULER_RETRY		(15 * 60)

void	scheduler_start(void);
/* scheduler_kick - look soon (mail was queued for an outside domain) */
void	scheduler_kick(void);
void	scheduler_stop(void);

#endif
