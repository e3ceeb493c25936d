/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * queue.c - the loop side's owner of the spool; see queue.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"

/* After a commit failed for lack of space, new mail is refused at MAIL
 * (RFC 3463 4.3.1) rather than after its data has been sent, until a commit
 * succeeds again or this long has passed. */
#define SPOOL_FULL_HOLDOFF	30.0

/* Drain-only: with less free space than drain-threshold in the map or on
 * the disk, new mail gets 452 4.3.1 at MAIL while ETRN, ATRN and delivery
 * runs go on and make room; it ends by itself when space is back.  Looked
 * at every few seconds, not per message. */
#define SPACE_CHECK_INTERVAL	2.0

struct queue {
	struct ev_loop		*loop;
	struct spool		*spool;
	struct committer	*committer;
	struct queue_hooks	 hooks;
	uint64_t		 next_id;
	ev_tstamp		 full_until;
	int			 drain_only;
	uint64_t		 drain_threshold;
	ev_timer		 space;
};

/* queue_outcome - every request's result, before its owner sees it: the
 * one place the storage-failure policy is decided */
static void
queue_outcome(void *arg, const struct commit_req *req)
{
	struct queue *q = arg;

	if (req->result == SPOOL_EIO)
		q->hooks.storage_failed(q->hooks.arg, req->kind == COMMIT_STORE ?
		    "commit failed with an I/O error" :
		    req->change.kind == CHANGE_VERIFY || req->change.kind == CHANGE_VERIFY_SWEEP ||
		    req->change.kind == CHANGE_UNVERIFY ?
		    "recording an address verification failed with an I/O error" :
		    "recording a delivery outcome failed with an I/O error");
	if (req->kind == COMMIT_STORE && req->result == SPOOL_EFULL)
		q->full_until = ev_now(q->loop) + SPOOL_FULL_HOLDOFF;
	else if (req->kind == COMMIT_STORE && req->result == SPOOL_OK)
		q->full_until = 0;
	if (req->kind == COMMIT_CHANGE && req->result == SPOOL_OK && req->change.dsn != NULL) {
		const struct spool_envelope *d = &req->change.dsn->env;

		log_role(LOG_QMGR, "%016llx: from=<>, size=%llu, nrcpt=%zu (queue active)",
		    (unsigned long long)d->id, (unsigned long long)d->size, d->nrcpts);
		if (q->hooks.queued != NULL)
			q->hooks.queued(q->hooks.arg, spool_rcpt_domain(d->rcpts[0].addr));
	}
	/* after the commit, as Postfix's queue manager says it */
	if (req->kind == COMMIT_CHANGE && req->result == SPOOL_OK && req->removed)
		log_role(LOG_QMGR, "%016llx: removed", (unsigned long long)req->change.id);
}

static void
queue_space_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue *q = w->data;
	uint64_t map_free, disk_free, want = q->drain_threshold;
	int low;

	if (spool_free_space(q->spool, &map_free, &disk_free) != SPOOL_OK)
		return;
	low = map_free < want || disk_free < want;
	if (low != q->drain_only)
		log_warnx("drain-only %s: %llu bytes free in the spool map, %llu on disk, threshold "
		    "%llu%s", low ? "on" : "off", (unsigned long long)map_free,
		    (unsigned long long)disk_free, (unsigned long long)want,
		    low ? ": new mail gets 452 4.3.1; ETRN, ATRN and deliveries go on" : "");
	q->drain_only = low;
}

struct queue *
queue_open(struct ev_loop *loop, struct spool *spool, const struct queue_hooks *hooks,
    char *err, size_t errlen)
{
	struct queue *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->loop = loop;
	q->spool = spool;
	q->hooks = *hooks;
	if (spool_next_id(spool, &q->next_id) != SPOOL_OK) {
		snprintf(err, errlen, "cannot read the spool's message counter");
		free(q);
		return NULL;
	}
	if ((q->committer = committer_start(loop, spool, queue_outcome, q)) == NULL) {
		snprintf(err, errlen, "cannot start the committer thread");
		free(q);
		return NULL;
	}
	ev_timer_init(&q->space, queue_space_check, 0., SPACE_CHECK_INTERVAL);
	q->space.data = q;
	ev_timer_start(loop, &q->space);
	return q;
}

void
queue_close(struct queue *q, unsigned long long *messages, unsigned long long *batches)
{
	ev_timer_stop(q->loop, &q->space);
	committer_stop(q->committer, messages, batches);
	free(q);
}

uint64_t
queue_new_id(struct queue *q)
{
	return q->next_id++;
}

uint64_t
queue_peek_id(const struct queue *q)
{
	return q->next_id;
}

void
queue_submit(struct queue *q, struct commit_req *req)
{
	committer_submit(q->committer, req);
}

unsigned
queue_pending(const struct queue *q)
{
	return committer_pending(q->committer);
}

int
queue_accepting(const struct queue *q)
{
	return !q->drain_only && ev_now(q->loop) >= q->full_until;
}

void
queue_set_drain_threshold(struct queue *q, uint64_t bytes)
{
	q->drain_threshold = bytes;
}

void
queue_read_at_random(struct queue *q, int on)
{
	spool_read_at_random(q->spool, on);
}

enum spool_err
queue_counters(struct queue *q, const char *domain, struct spool_counters *c)
{
	return spool_domain_counters(q->spool, domain, c);
}

enum spool_err
queue_ids(struct queue *q, const char *domain, uint64_t **ids, size_t *n)
{
	return spool_domain_ids(q->spool, domain, ids, n);
}

enum spool_err
queue_envelope(struct queue *q, uint64_t id, struct spool_envelope *e)
{
	return spool_get_envelope(q->spool, id, e);
}

enum spool_err
queue_read_body(struct queue *q, uint64_t id, uint64_t off, void *dst, size_t len)
{
	return spool_read_body(q->spool, id, off, dst, len);
}

enum spool_err
queue_route(struct queue *q, const char *domain, struct spool_route *rt)
{
	return spool_get_route(q->spool, domain, rt);
}

enum spool_err
queue_domains(struct queue *q, int (*cb)(const struct spool_domain_info *, void *), void *arg)
{
	return spool_domain_list(q->spool, cb, arg);
}

enum spool_err
queue_domains_after(struct queue *q, const char *after,
    int (*cb)(const struct spool_domain_info *, void *), void *arg)
{
	return spool_domain_list_after(q->spool, after, cb, arg);
}

enum spool_err
queue_stats(struct queue *q, struct spool_stats *st)
{
	return spool_get_stats(q->spool, st);
}

enum spool_err
queue_quarantine_walk(struct queue *q, spool_quarantine_cb *cb, void *arg)
{
	return spool_quarantine_walk(q->spool, cb, arg);
}

enum spool_err
queue_walk(struct queue *q, const char *domain, spool_walk_cb *cb, void *arg)
{
	return spool_domain_walk(q->spool, domain, cb, arg);
}

/* A change the queue composes itself (delete, hold), with its caller's
 * callback. */
struct queue_op {
	struct commit_req	 req;		/* first: done() gets it back */
	void			(*done)(void *, enum spool_err);
	void			*arg;
	char			 domain[SPOOL_DOMAIN_MAX + 1];
	char			 reason[360];	/* quarantine */
};

static void
queue_op_done(struct commit_req *req)
{
	struct queue_op *op = (struct queue_op *)req;

	op->done(op->arg, req->result);
	free(op);
}

static struct queue_op *
queue_op_new(enum spool_change_kind kind, void (*done)(void *, enum spool_err), void *arg)
{
	struct queue_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->done = done;
	op->arg = arg;
	op->req.kind = COMMIT_CHANGE;
	op->req.done = queue_op_done;
	op->req.change.kind = kind;
	op->req.change.domain = op->domain;
	return op;
}

static int queue_by_id(struct queue *, enum spool_change_kind, uint64_t, const char *,
    void (*)(void *, enum spool_err), void *);

int
queue_delete(struct queue *q, uint64_t id, void (*done)(void *, enum spool_err), void *arg)
{
	return queue_by_id(q, CHANGE_DELETE, id, NULL, done, arg);
}

int
queue_hold(struct queue *q, const char *domain, int held, void (*done)(void *, enum spool_err),
    void *arg)
{
	struct queue_op *op;

	if (strlen(domain) > SPOOL_DOMAIN_MAX || (op = queue_op_new(CHANGE_HOLD, done, arg)) == NULL)
		return -1;
	snprintf(op->domain, sizeof(op->domain), "%s", domain);
	op->req.change.held = held;
	queue_submit(q, &op->req);
	return 0;
}

/* queue_by_id - a change of one message (delete, release, scanned,
 * quarantine) */
static int
queue_by_id(struct queue *q, enum spool_change_kind kind, uint64_t id, const char *reason,
    void (*done)(void *, enum spool_err), void *arg)
{
	struct queue_op *op = queue_op_new(kind, done, arg);

	if (op == NULL)
		return -1;
	op->req.change.id = id;
	if (reason != NULL) {
		snprintf(op->reason, sizeof(op->reason), "%s", reason);
		op->req.change.reply = op->reason;
	}
	queue_submit(q, &op->req);
	return 0;
}

int
queue_expire_quarantined(struct queue *q, uint64_t id, void (*done)(void *, enum spool_err),
    void *arg)
{
	struct queue_op *op = queue_op_new(CHANGE_DELETE, done, arg);

	if (op == NULL)
		return -1;
	op->req.change.id = id;
	op->req.change.if_quarantined = 1;
	queue_submit(q, &op->req);
	return 0;
}

int
queue_release(struct queue *q, uint64_t id, void (*done)(void *, enum spool_err), void *arg)
{
	return queue_by_id(q, CHANGE_RELEASE, id, NULL, done, arg);
}

int
queue_quarantine(struct queue *q, uint64_t id, const char *reason,
    void (*done)(void *, enum spool_err), void *arg)
{
	return queue_by_id(q, CHANGE_QUARANTINE, id, reason, done, arg);
}

int
queue_scanned(struct queue *q, uint64_t id, void (*done)(void *, enum spool_err), void *arg)
{
	return queue_by_id(q, CHANGE_SCANNED, id, NULL, done, arg);
}

enum spool_err
queue_quarantine_expired(struct queue *q, int64_t before, uint64_t **ids, size_t *n)
{
	return spool_quarantine_expired(q->spool, before, ids, n);
}

enum spool_err
queue_get_quarantine(struct queue *q, uint64_t id, struct spool_quarantine *qr)
{
	return spool_get_quarantine(q->spool, id, qr);
}

/* A verification result (or a sweep) on its way to the spool. */
struct queue_verify_op {
	struct commit_req	 req;		/* first: done() gets it back */
	struct spool_verify	 vr;
	char			 addr[SPOOL_VERIFY_KEY_MAX + 1];
	char			 reply[512];
	void			(*done)(void *, enum spool_err);
	void			*arg;
};

static void
queue_verify_done(struct commit_req *req)
{
	struct queue_verify_op *op = (struct queue_verify_op *)req;

	if (op->done != NULL)
		op->done(op->arg, req->result);
	free(op);
}

static struct queue_verify_op *
queue_verify_op_new(enum spool_change_kind kind, void (*done)(void *, enum spool_err), void *arg)
{
	struct queue_verify_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->done = done;
	op->arg = arg;
	op->req.kind = COMMIT_CHANGE;
	op->req.done = queue_verify_done;
	op->req.change.kind = kind;
	op->req.change.domain = op->addr;
	return op;
}

int
queue_verify_put(struct queue *q, const char *addr, const struct spool_verify *vr,
    void (*done)(void *, enum spool_err), void *arg)
{
	struct queue_verify_op *op;

	if (strlen(addr) > SPOOL_VERIFY_KEY_MAX ||
	    (op = queue_verify_op_new(CHANGE_VERIFY, done, arg)) == NULL)
		return -1;
	snprintf(op->addr, sizeof(op->addr), "%s", addr);
	snprintf(op->reply, sizeof(op->reply), "%s", vr->reply != NULL ? vr->reply : "");
	op->vr = *vr;
	op->vr.reply = op->reply;
	op->vr.mem = NULL;
	op->req.change.verify = &op->vr;
	queue_submit(q, &op->req);
	return 0;
}

int
queue_unverify(struct queue *q, const char *addr, void (*done)(void *, enum spool_err), void *arg)
{
	struct queue_verify_op *op;

	if (strlen(addr) > SPOOL_VERIFY_KEY_MAX ||
	    (op = queue_verify_op_new(CHANGE_UNVERIFY, done, arg)) == NULL)
		return -1;
	snprintf(op->addr, sizeof(op->addr), "%s", addr);
	queue_submit(q, &op->req);
	return 0;
}

int
queue_verify_sweep(struct queue *q, int64_t before, void (*done)(void *, enum spool_err),
    void *arg)
{
	struct queue_verify_op *op = queue_verify_op_new(CHANGE_VERIFY_SWEEP, done, arg);

	if (op == NULL)
		return -1;
	op->req.change.next_try = before;
	queue_submit(q, &op->req);
	return 0;
}

enum spool_err
queue_verify_get(struct queue *q, const char *addr, struct spool_verify *vr)
{
	return spool_get_verify(q->spool, addr, vr);
}
