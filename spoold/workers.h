/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * workers.h - a small pool of threads for calls that may block (SASL's
 * password checks: saslauthd, an SQL or LDAP auxprop), so the event loop
 * never waits on them.
 *
 * The loop thread submits a job; one of the threads calls its run(); the
 * loop is woken (ev_async) and calls its done(), on the loop thread, once.
 * The pool never looks inside a job: what run() may touch while it runs is
 * the owner's rule (auth.c: only the job's own SASL connection).  The queue
 * is bounded: a job refused is the caller's to answer (a 454, say).
 */
#ifndef SPOOLD_WORKERS_H
#define SPOOLD_WORKERS_H

#include <ev.h>

struct work {
	struct work	*next;			/* the pool's */
	void		(*run)(struct work *);	/* on a worker thread */
	/* done - on the loop thread, after run(); ran is 0 for a job the stop
	 * took from the queue before a thread did */
	void		(*done)(struct work *, int ran);
};

struct workers;

/* workers_start - nthreads threads and a queue of at most maxqueue jobs
 * not yet taken; NULL when not one thread can start */
struct workers *workers_start(struct ev_loop *, unsigned nthreads, unsigned maxqueue);
/* workers_submit - 0, or -1 when the queue is full (the job is untouched) */
int	workers_submit(struct workers *, struct work *);
/* workers_stop - let the running jobs end, join the threads, then call
 * done() for every job (those never run with ran 0) and free the pool */
void	workers_stop(struct workers *);

#endif
