/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * committer.c - the spool writer thread; see committer.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "committer.h"
#include "log.h"
#include "metrics.h"

#define COMMIT_BATCH_MAX	1024
/* Without MDB_WRITEMAP every page of a write transaction sits in memory until
 * the commit, so a batch is also capped by the bytes it stores.  A message
 * bigger than this goes alone. */
#define COMMIT_BATCH_BYTES	(32ULL * 1024 * 1024)

struct committer {
	struct ev_loop		*loop;
	struct spool		*spool;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	struct commit_req	*todo, **todo_tail;	/* loop -> thread */
	struct commit_req	*done, **done_tail;	/* thread -> loop */
	int			 stopping;
	ev_async		 async;
	unsigned		 pending;		/* loop thread only */
	void			(*outcome)(void *, const struct commit_req *);
	void			*outcome_arg;
	unsigned long long	 batches, messages;	/* committer thread; read after join */
};

/* committer_take - up to COMMIT_BATCH_MAX requests, waiting for the first */
static struct commit_req *
committer_take(struct committer *c, size_t *n)
{
	struct commit_req *head, *r, *last;
	uint64_t bytes;

	pthread_mutex_lock(&c->lock);
	while (c->todo == NULL && !c->stopping)
		pthread_cond_wait(&c->wake, &c->lock);
	head = c->todo;
	last = NULL;
	bytes = 0;
	for (r = head, *n = 0; r != NULL && *n < COMMIT_BATCH_MAX; r = r->next, (*n)++) {
		uint64_t size = r->kind == COMMIT_STORE ? r->msg.env.size :
		    r->change.dsn != NULL ? r->change.dsn->env.size : 0;

		if (*n > 0 && bytes + size > COMMIT_BATCH_BYTES)
			break;
		bytes += size;
		last = r;
	}
	if (last != NULL) {
		c->todo = r;
		last->next = NULL;
	}
	if (c->todo == NULL)
		c->todo_tail = &c->todo;
	pthread_mutex_unlock(&c->lock);
	return head;
}

/* committer_store - one transaction for the new messages, one for the
 * changes; returns how many messages were stored */
static size_t
committer_store(struct committer *c, struct commit_req *head)
{
	struct spool_newmsg *msgs[COMMIT_BATCH_MAX] = { NULL };
	const struct spool_change *changes[COMMIT_BATCH_MAX] = { NULL };
	enum spool_err mres[COMMIT_BATCH_MAX], cres[COMMIT_BATCH_MAX];
	size_t nm = 0, nc = 0, stored = 0;
	struct commit_req *r;

	for (r = head; r != NULL; r = r->next) {
		if (r->kind == COMMIT_STORE)
			msgs[nm++] = &r->msg;
		else {
			r->removed = 0;
			r->change.removed = &r->removed;
			changes[nc++] = &r->change;
		}
	}
	if (nm > 0)
		spool_put_messages(c->spool, msgs, nm, mres);
	if (nc > 0)
		spool_apply_changes(c->spool, changes, nc, cres);
	nm = nc = 0;
	for (r = head; r != NULL; r = r->next) {
		if (r->kind == COMMIT_STORE) {
			if ((r->result = mres[nm++]) == SPOOL_OK)
				stored++;
		} else
			r->result = cres[nc++];
	}
	return stored;
}

static void *
committer_main(void *arg)
{
	struct committer *c = arg;
	struct commit_req *head, *tail;
	struct timespec t0, t1;
	size_t n, stored;

	for (;;) {
		head = committer_take(c, &n);
		if (head == NULL)
			break;		/* stopping and nothing left */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		stored = committer_store(c, head);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		metrics_commit(n, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
		for (tail = head; tail->next != NULL; tail = tail->next)
			;
		pthread_mutex_lock(&c->lock);
		*c->done_tail = head;
		c->done_tail = &tail->next;
		pthread_mutex_unlock(&c->lock);
		c->batches++;
		c->messages += stored;
		ev_async_send(c->loop, &c->async);
	}
	return NULL;
}

/* committer_on_async - in the loop: report outcomes to their owners */
static void
committer_on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	struct committer *c = w->data;
	struct commit_req *r, *next;

	pthread_mutex_lock(&c->lock);
	r = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	pthread_mutex_unlock(&c->lock);
	for (; r != NULL; r = next) {
		next = r->next;
		c->pending--;
		if (c->outcome != NULL)
			c->outcome(c->outcome_arg, r);
		r->done(r);
	}
}

struct committer *
committer_start(struct ev_loop *loop, struct spool *spool,
    void (*outcome)(void *, const struct commit_req *), void *arg)
{
	struct committer *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->spool = spool;
	c->outcome = outcome;
	c->outcome_arg = arg;
	c->todo_tail = &c->todo;
	c->done_tail = &c->done;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	ev_async_init(&c->async, committer_on_async);
	c->async.data = c;
	ev_async_start(loop, &c->async);
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
		ev_async_stop(loop, &c->async);
		free(c);
		return NULL;
	}
	return c;
}

void
committer_submit(struct committer *c, struct commit_req *r)
{
	r->next = NULL;
	c->pending++;
	pthread_mutex_lock(&c->lock);
	*c->todo_tail = r;
	c->todo_tail = &r->next;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

unsigned
committer_pending(const struct committer *c)
{
	return c->pending;
}

void
committer_stop(struct committer *c, unsigned long long *messages, unsigned long long *batches)
{
	*messages = *batches = 0;
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	committer_on_async(c->loop, &c->async, 0);	/* outcomes still unreported */
	ev_async_stop(c->loop, &c->async);
	*messages = c->messages;
	*batches = c->batches;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}
