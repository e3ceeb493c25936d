/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * committer.h - group commit: messages from every session that finished DATA
 * while the previous commit was syncing are stored together in one LMDB
 * write transaction by a dedicated thread, so fsync latency is paid once per
 * batch rather than once per message, and never on the event loop.
 *
 * Delivery runs send their changes (recipients delivered or deferred) the same
 * way, so removals are group-committed too and never wait on the loop.
 *
 * The loop thread submits requests; the committer thread stores them and
 * wakes the loop (ev_async), which calls each request's done() with the
 * outcome.  A request's owner may go away meanwhile (the client hung up):
 * it sets req->owner to NULL (loop thread only) and done() skips the reply;
 * the message is stored all the same (the client never saw a 250, so it may
 * send it again: a duplicate, never a loss).  A batch holds at most 1024
 * messages and 32 MiB, since LMDB keeps a transaction's pages in memory.
 */
#ifndef SPOOLD_COMMITTER_H
#define SPOOLD_COMMITTER_H

#include <ev.h>

#include "spool.h"

enum commit_kind {
	COMMIT_STORE,		/* a new message: msg */
	COMMIT_CHANGE,		/* delivered or deferred recipients: change */
};

struct commit_req {
	struct commit_req	*next;
	enum commit_kind	 kind;
	struct spool_newmsg	 msg;
	struct spool_change	 change;
	enum spool_err		 result;
	int			 removed;	/* a change removed the message */
	void			(*done)(struct commit_req *);
	void			*owner;		/* NULL once forgotten */
};

struct committer;

/* committer_start - the thread, storing into spool; outcome (optional)
 * sees every request's result on the loop just before its done(), for a
 * policy that holds for all of them (queue.c's).  NULL when the thread
 * cannot start. */
struct committer *committer_start(struct ev_loop *, struct spool *,
    void (*outcome)(void *arg, const struct commit_req *), void *arg);
void	committer_submit(struct committer *, struct commit_req *);
/* committer_pending - requests submitted whose done() has not run yet */
unsigned committer_pending(const struct committer *);
/* committer_stop - finish what was submitted, report it, stop the thread;
 * gives the messages stored and commits made since the start */
void	committer_stop(struct committer *, unsigned long long *messages,
	    unsigned long long *batches);

#endif
