/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * bounce.c - removal of failed recipients together with their DSN; see
 * bounce.h.  The original is read from the spool here, on the loop, in short
 * read transactions: at most DSN_FULL_MAX bytes, usually just the header.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "smtp_cmd.h"
#include "bounce.h"

static struct queue *queue;

void
bounce_init(struct queue *q)
{
	queue = q;
}

struct bounce {
	struct commit_req	 req;		/* first: done() gets it back */
	uint64_t		 id;
	void			(*done)(void *, enum spool_err);
	void			*arg;
	struct buf		 body;		/* the DSN */
	struct spool_rcpt	 to;		/* the original sender */
	char			 sender[SMTP_PATH_MAX * 4 + 2];
	char			 domain[SMTP_DOMAIN_MAX + 1];	/* WARN: where the entries are */
	unsigned		 idx[];
};

/* bounce_original - the part of the original a DSN returns, read into b;
 * *complete when all of it is there */
static int
bounce_original(const struct spool_envelope *e, struct buf *b, int *complete)
{
	uint64_t want = e->size;

	if (!(e->ret == RET_FULL && e->size <= DSN_FULL_MAX) && want > DSN_HEADERS_MAX)
		want = DSN_HEADERS_MAX;
	*complete = want == e->size;
	if (want == 0)
		return 0;
	if (buf_reserve(b, (size_t)want) == -1 ||
	    queue_read_body(queue, e->id, 0, buf_tail(b), (size_t)want) != SPOOL_OK)
		return -1;
	b->b_len += (size_t)want;
	return 0;
}

/* bounce_wanted - the recipients whose NOTIFY asks for a failure notice */
static size_t
bounce_wanted(const struct spool_envelope *e, const struct bounce_rcpt *rc, size_t n,
    const char *remote_mta, enum dsn_action action, struct dsn_rcpt *out)
{
	size_t k = 0;

	if (e->sender[0] == '\0')
		return 0;
	for (size_t j = 0; j < n; j++) {
		const struct spool_rcpt *r = &e->rcpts[rc[j].index];

		if (!dsn_notify_allows(r->notify, action))
			continue;
		out[k].addr = r->addr;
		out[k].orcpt_type = r->orcpt_type;
		out[k].orcpt = r->orcpt;
		out[k].reply = rc[j].reply;
		out[k++].remote_mta = remote_mta;
	}
	return k;
}

/* bounce_compose - the DSN for the wanted recipients into bo; 0, or -1 */
static int
bounce_compose(struct bounce *bo, const struct spool_envelope *e, const char *reporting_mta,
    const struct dsn_rcpt *dr, size_t k, enum dsn_action action)
{
	struct dsn_report rep = {
		.reporting_mta = reporting_mta, .queue_id = e->id,
		.sender = e->sender, .envid = e->envid, .arrival = e->arrival, .now = time(NULL),
		.action = action, .rcpts = dr, .nrcpts = k, .ret_full = e->ret == RET_FULL,
	};
	struct spool_envelope *de = &bo->req.change.dsn->env;
	struct buf orig;
	int eight_bit = 0, rc = -1;

	buf_init(&orig);
	if (bounce_original(e, &orig, &rep.orig_complete) == 0) {
		rep.orig = buf_head(&orig);
		rep.origlen = buf_used(&orig);
		rc = dsn_compose(&rep, &bo->body, &eight_bit);
	}
	buf_free(&orig);
	if (rc == -1)
		return -1;
	snprintf(bo->sender, sizeof(bo->sender), "%s", e->sender);
	bo->to = (struct spool_rcpt){ .addr = bo->sender, .orcpt_type = "", .orcpt = "" };
	de->id = queue_new_id(queue);
	de->arrival = rep.now;
	de->size = buf_used(&bo->body);
	de->flags = (eight_bit ? ENV_8BITMIME | ENV_8BIT_SEEN : 0) | (e->flags & ENV_SMTPUTF8);
	de->sender = "";
	de->envid = "";
	de->client = "";
	de->helo = "";
	de->rcpts = &bo->to;
	de->nrcpts = 1;
	return 0;
}

static int
bounce_read_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct bounce *bo = arg;

	if (off + len > buf_used(&bo->body))
		return -1;
	memcpy(dst, buf_head(&bo->body) + off, len);
	return 0;
}

static void
bounce_committed(struct commit_req *req)
{
	struct bounce *bo = (struct bounce *)req;
	struct spool_newmsg *dsn = req->change.dsn;

	/* (the queue tells the scheduler about a DSN to a sender elsewhere) */
	if (req->result == SPOOL_OK && dsn != NULL)
		metrics_inc(req->change.kind == CHANGE_WARN ? MC_DSN_DELAY : MC_DSN_FAILURE);
	if (req->result == SPOOL_OK && dsn != NULL)
		log_role(LOG_BOUNCE, "%016llx: sender %s notification: %016llx", (unsigned long long)bo->id,
		    req->change.kind == CHANGE_WARN ? "delay" : "non-delivery",
		    (unsigned long long)dsn->env.id);
	else if (req->result != SPOOL_OK && req->result != SPOOL_ENOTFOUND)
		log_warnx("%016llx cannot record the bounce (the recipients stay queued): %s",
		    (unsigned long long)bo->id, spool_strerror(req->result));
	if (bo->done != NULL)
		bo->done(bo->arg, req->result);
	buf_free(&bo->body);
	free(dsn);
	free(bo);
}

/* notice_submit - the change (DONE: the recipients go; WARN: they stay,
 * marked) with its DSN, when the sender and NOTIFY want one */
static int
notice_submit(const struct spool_envelope *e, const char *domain, const struct bounce_rcpt *rc,
    size_t n, const char *reporting_mta, const char *remote_mta, enum dsn_action action,
    void (*done)(void *, enum spool_err), void *arg)
{
	struct bounce *bo = calloc(1, sizeof(*bo) + n * sizeof(unsigned));
	struct dsn_rcpt *dr = calloc(n ? n : 1, sizeof(*dr));
	size_t k;

	if (bo == NULL || dr == NULL)
		goto fail;
	buf_init(&bo->body);
	for (size_t j = 0; j < n; j++)
		bo->idx[j] = rc[j].index;
	if ((k = bounce_wanted(e, rc, n, remote_mta, action, dr)) > 0) {
		if ((bo->req.change.dsn = calloc(1, sizeof(*bo->req.change.dsn))) == NULL ||
		    bounce_compose(bo, e, reporting_mta, dr, k, action) == -1) {
			buf_free(&bo->body);
			free(bo->req.change.dsn);
			goto fail;
		}
		bo->req.change.dsn->read_body = bounce_read_body;
		bo->req.change.dsn->body_arg = bo;
	}
	free(dr);
	bo->id = e->id;
	bo->done = done;
	bo->arg = arg;
	snprintf(bo->domain, sizeof(bo->domain), "%s", domain ? domain : "");
	bo->req.kind = COMMIT_CHANGE;
	bo->req.done = bounce_committed;
	bo->req.change.kind = action == DSN_FAILED ? CHANGE_DONE : CHANGE_WARN;
	bo->req.change.id = e->id;
	bo->req.change.idx = bo->idx;
	bo->req.change.nidx = n;
	bo->req.change.domain = bo->domain;
	queue_submit(queue, &bo->req);
	return 0;
fail:
	log_warnx("%016llx out of memory composing a DSN (the recipients stay as they are)",
	    (unsigned long long)e->id);
	free(bo);
	free(dr);
	return -1;
}

int
bounce_submit(const struct spool_envelope *e, const struct bounce_rcpt *rc, size_t n,
    const char *reporting_mta, const char *remote_mta, void (*done)(void *, enum spool_err),
    void *arg)
{
	return notice_submit(e, NULL, rc, n, reporting_mta, remote_mta, DSN_FAILED, done, arg);
}

int
bounce_warn(const struct spool_envelope *e, const char *domain, const struct bounce_rcpt *rc,
    size_t n, const char *reporting_mta, void (*done)(void *, enum spool_err), void *arg)
{
	return notice_submit(e, domain, rc, n, reporting_mta, NULL, DSN_DELAYED, done, arg);
}
