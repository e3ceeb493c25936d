/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * bounce.h - failing recipients for good: they leave the queue and, when the
 * sender and its NOTIFY ask for it, a failure DSN to the sender is stored in
 * the same transaction (through the committer, so it is group-committed and
 * the loop never waits on the disk).
 *
 * The DSN is an ordinary spooled message from <> to the original sender: a
 * sender in a domain spoold spools gets it with that domain's mail; any other
 * is queued under its own domain and goes out by MX.  No DSN is ever made for
 * mail from <> (so notifications never loop) or with NOTIFY=NEVER.
 */
#ifndef SPOOLD_BOUNCE_H
#define SPOOLD_BOUNCE_H

#include <stddef.h>

#include "spool.h"

struct queue;

/* bounce_init - DSNs are read from and stored through q */
void	bounce_init(struct queue *q);

struct bounce_rcpt {
	unsigned	 index;		/* the recipient's index in the envelope */
	const char	*reply;		/* why: a peer's reply or spoold's reason */
};

/* bounce_submit - fail the recipients rc[0..n) of e.  reporting_mta is
 * this host's name; remote_mta names the host that refused them (NULL when
 * spoold decided).  done(arg, result) runs
 * once it is committed (SPOOL_ENOTFOUND: the message was gone already); arg
 * may be NULL and done too.  Returns 0, or -1 when nothing was submitted
 * (out of memory; the recipients stay queued). */
int	bounce_submit(const struct spool_envelope *e, const struct bounce_rcpt *rc, size_t n,
	    const char *reporting_mta, const char *remote_mta,
	    void (*done)(void *arg, enum spool_err), void *arg);

/* bounce_warn - a delay notice (RFC 3464 Action: delayed) for the
 * recipients rc[0..n) of e queued under domain, when NOTIFY asks for DELAY
 * (or is absent); they stay queued, marked so no second notice is sent.
 * The mark and the notice are one transaction. */
int	bounce_warn(const struct spool_envelope *e, const char *domain,
	    const struct bounce_rcpt *rc, size_t n, const char *reporting_mta,
	    void (*done)(void *arg, enum spool_err), void *arg);

#endif
