/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * workers.c - the thread pool for blocking calls; see workers.h.  Built
 * like committer.c: a mutex-guarded list to the threads, another back, and
 * an ev_async that wakes the loop.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "workers.h"

#define WORKERS_MAX	64

struct workers {
	struct ev_loop	*loop;
	pthread_t	 thread[WORKERS_MAX];
	unsigned	 nthreads;
	unsigned	 maxqueue, queued;	/* jobs not taken yet */
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	struct work	*todo, **todo_tail;	/* loop -> threads */
	struct work	*done, **done_tail;	/* threads -> loop */
	int		 stopping;
	ev_async	 async;
};

/* workers_take - the next job, waiting for one; NULL once stopping */
static struct work *
workers_take(struct workers *p)
{
	struct work *w;

	pthread_mutex_lock(&p->lock);
	while (p->todo == NULL && !p->stopping)
		pthread_cond_wait(&p->wake, &p->lock);
	if ((w = p->stopping ? NULL : p->todo) != NULL) {
		if ((p->todo = w->next) == NULL)
			p->todo_tail = &p->todo;
		p->queued--;
	}
	pthread_mutex_unlock(&p->lock);
	return w;
}

static void *
workers_main(void *arg)
{
	struct workers *p = arg;
	struct work *w;

	while ((w = workers_take(p)) != NULL) {
		w->run(w);
		w->next = NULL;
		pthread_mutex_lock(&p->lock);
		*p->done_tail = w;
		p->done_tail = &w->next;
		pthread_mutex_unlock(&p->lock);
		ev_async_send(p->loop, &p->async);
	}
	return NULL;
}

/* workers_on_async - in the loop: the finished jobs' done() */
static void
workers_on_async(struct ev_loop *loop, ev_async *a, int revents)
{
	struct workers *p = a->data;
	struct work *w, *next;

	pthread_mutex_lock(&p->lock);
	w = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->lock);
	for (; w != NULL; w = next) {
		next = w->next;
		w->done(w, 1);
	}
}

struct workers *
workers_start(struct ev_loop *loop, unsigned nthreads, unsigned maxqueue)
{
	struct workers *p = calloc(1, sizeof(*p));
	sigset_t all, old;

	if (p == NULL)
		return NULL;
	p->loop = loop;
	p->maxqueue = maxqueue;
	p->todo_tail = &p->todo;
	p->done_tail = &p->done;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	ev_async_init(&p->async, workers_on_async);
	p->async.data = p;
	ev_async_start(loop, &p->async);
	/* signals are the loop's (ev_signal): the threads never take one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->nthreads < nthreads && p->nthreads < WORKERS_MAX; p->nthreads++)
		if (pthread_create(&p->thread[p->nthreads], NULL, workers_main, p) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads < nthreads)
		log_warnx("workers: %u of %u threads started", p->nthreads, nthreads);
	if (p->nthreads == 0) {
		workers_stop(p);
		return NULL;
	}
	return p;
}

int
workers_submit(struct workers *p, struct work *w)
{
	int rc = -1;

	w->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->queued < p->maxqueue && !p->stopping) {
		*p->todo_tail = w;
		p->todo_tail = &w->next;
		p->queued++;
		pthread_cond_signal(&p->wake);
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
workers_stop(struct workers *p)
{
	struct work *w, *next;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->thread[i], NULL);
	workers_on_async(p->loop, &p->async, 0);	/* what finished meanwhile */
	for (w = p->todo; w != NULL; w = next) {	/* never taken */
		next = w->next;
		w->done(w, 0);
	}
	ev_async_stop(p->loop, &p->async);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p);
}
