/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * despool.h - delivery runs: one domain's queued mail handed to the site,
 * over a connection spoold dials, by the shared SMTP client engine.
 *
 * One run per domain at a time; asking again while it runs joins it.  A
 * recipient leaves the spool only after the peer's 250 to the final dot
 * (through the committer, so a crash in between gives a duplicate, never a
 * loss); a 4xx keeps it with the reply and a next try.
 */
#ifndef SPOOLD_DESPOOL_H
#define SPOOLD_DESPOOL_H

#include <stddef.h>
#include <sys/socket.h>
#include <ev.h>

#include "spoold_conf.h"

struct dns;
struct io;
struct queue;
struct spoold_rt;

/* despool_init - runs read and record through q, resolve with dns (NULL:
 * routes by name wait, saying why) and never dial an address is_self says
 * is one of this spoold's own listeners (RFC 5321 5.2: a loop) */
void	despool_init(struct ev_loop *, struct queue *q, struct dns *dns,
	    int (*is_self)(const struct sockaddr *));

enum despool_start {
	DESPOOL_STARTED,	/* a run began */
	DESPOOL_JOINED,		/* one was already running */
	DESPOOL_EMPTY,		/* nothing queued */
	DESPOOL_NO_ROUTE,	/* the route cannot be used (reason says why) */
	DESPOOL_FAILED,		/* local trouble (reason says what) */
};

/* despool_start - start delivering d's mail with the configuration rt (the
 * run keeps a reference); requester is the ETRN client (for "deliver-to
 * requester"), NULL for spoolctl flush and the scheduler.  *queued gets
 * the messages waiting; *reason (a static string) says why for
 * DESPOOL_NO_ROUTE and DESPOOL_FAILED. */
enum despool_start despool_start(const struct domain_conf *d, struct spoold_rt *rt,
    const struct sockaddr *requester, unsigned long long *queued, const char **reason);
enum despool_atrn {
	DESPOOL_ATRN_OK,	/* mail waits, nothing is running: turn */
	DESPOOL_ATRN_NO_MAIL,	/* 453 */
	DESPOOL_ATRN_BUSY,	/* 451: a run holds one of them (or the spool is unreadable) */
};

/* despool_atrn_check - may an ATRN for domains[0..n) turn now? */
enum despool_atrn despool_atrn_check(const char *const *domains, size_t n);
/* despool_turn - ATRN (RFC 2645): deliver domains[0..n) over io, which the
 * customer dialled and is about to be told 250.  The run owns io from here:
 * it waits for the customer's 220 and delivers with the same rules as any
 * run, with the session's configuration rt.  who and peer are for the log.
 * -1 (io untouched) when it cannot. */
int	despool_turn(const char *const *domains, size_t n, struct io *io, struct spoold_rt *rt,
	    const char *who, const char *peer);

/* despool_busy - a run holds domain */
int	despool_busy(const char *domain);

/* despool_stop_all - end every run now and start no more; undelivered
 * mail simply stays */
void	despool_stop_all(void);
/* despool_close - after despool_stop_all, before the queue closes: waits
 * for the thread that logs what failed runs leave queued */
void	despool_close(void);

#endif
