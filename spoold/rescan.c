/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * rescan.c - the filters' second look at a message stored unscanned; see
 * rescan.h.  The message is rebuilt from the spool as the filters would
 * have seen it at the end of DATA (envelope, our Received: first, the
 * body) and goes through the same chain (filter.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "log.h"
#include "queue.h"
#include "rescan.h"
#include "runtime.h"
#include "smtp_cmd.h"

struct rescan {
	struct smtp_message	*m;
	struct filter		*filter;
	rescan_done_cb		*done;
	void			*arg;
	char			 client[64];
};

int
rescan_wanted(const struct spoold_rt *rt, const struct spool_envelope *e)
{
	if (!(e->flags & ENV_UNSCANNED) || rt->n_milters == 0)
		return 0;
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct domain_conf *d;

		if (e->rcpts[i].done)
			continue;
		d = spoold_conf_domain(rt->conf, spool_rcpt_domain(e->rcpts[i].addr));
		if (d == NULL || d->filter)
			return 1;
	}
	return 0;
}

/* path_split - "local@domain" into p ("" for the null sender) */
static void
path_split(const char *addr, struct smtp_path *p)
{
	const char *at = strrchr(addr, '@');

	memset(p, 0, sizeof(*p));
	if (addr[0] == '\0') {
		p->null = 1;
		return;
	}
	if (at == NULL) {
		snprintf(p->local, sizeof(p->local), "%s", addr);
		return;
	}
	snprintf(p->local, sizeof(p->local), "%.*s", (int)(at - addr), addr);
	snprintf(p->domain, sizeof(p->domain), "%s", at + 1);
}

/* message_of - e as the filters saw it at the end of DATA, its body read
 * from the spool; NULL when that cannot be done now */
static struct smtp_message *
message_of(const struct spoold_rt *rt, struct queue *q, const struct spool_envelope *e)
{
	struct smtp_message *m = calloc(1, sizeof(*m));
	char chunk[65536];

	if (m == NULL || (m->rcpts = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*m->rcpts))) == NULL) {
		free(m);
		return NULL;
	}
	m->id = e->id;
	m->arrival = (time_t)e->arrival;
	path_split(e->sender, &m->mail.from);
	snprintf(m->mail.envid, sizeof(m->mail.envid), "%s", e->envid);
	snprintf(m->helo, sizeof(m->helo), "%s", e->helo);
	snprintf(m->client, sizeof(m->client), "%s", e->client);
	for (size_t i = 0; i < e->nrcpts; i++)
		if (!e->rcpts[i].done)
			path_split(e->rcpts[i].addr, &m->rcpts[m->nrcpts++].to);
	msgbody_init(&m->body, rt->smtp.spill_dir, rt->smtp.spill_threshold);
	for (uint64_t off = 0; off < e->size;) {
		size_t n = e->size - off > sizeof(chunk) ? sizeof(chunk) : (size_t)(e->size - off);

		if (queue_read_body(q, e->id, off, chunk, n) != SPOOL_OK ||
		    msgbody_append(&m->body, chunk, n) == -1) {
			smtp_message_free(m);
			return NULL;
		}
		off += n;
	}
	return m;
}

static void
rescan_free(struct rescan *rs)
{
	if (rs->filter != NULL)
		filter_cancel(rs->filter);
	smtp_message_free(rs->m);
	free(rs);
}

/* rescan_rcpt_ok - recipients a filter adds now are not added (the stored
 * copy stays as it is) */
static enum filter_added
rescan_rcpt_ok(void *arg, const struct smtp_rcpt *r)
{
	return FILTER_ADDED_REFUSED;
}

static void
rescan_filtered(void *arg, const struct filter_outcome *o)
{
	struct rescan *rs = arg;
	char reason[LOG_ESCAPE_SIZE(200) + 120], esc[LOG_ESCAPE_SIZE(200)];
	enum rescan_result res;
	int code;

	rs->filter = NULL;
	reason[0] = '\0';
	switch (o->action) {
	case FILTER_STORE:
		res = o->quarantine[0] ? RESCAN_QUARANTINE : o->unscanned ? RESCAN_UNSCANNED :
		    RESCAN_PASSED;
		snprintf(reason, sizeof(reason), "%s", o->quarantine);
		break;
	case FILTER_DISCARD:	/* acknowledged mail is never dropped: kept back */
		res = RESCAN_QUARANTINE;
		snprintf(reason, sizeof(reason), "milter %s: discard (on a second look, after it "
		    "was stored unscanned)", o->by);
		break;
	case FILTER_REFUSE:
		code = o->reply == R_FILTER_REPLY ? atoi(o->line) : smtp_reply_get(o->reply)->code;
		res = code / 100 == 5 ? RESCAN_QUARANTINE : RESCAN_LATER;
		snprintf(reason, sizeof(reason), "milter %s: %s (on a second look, after it was "
		    "stored unscanned)", o->by, o->reply == R_FILTER_REPLY ?
		    log_escape(esc, sizeof(esc), o->line, 200) : smtp_reply_get(o->reply)->text);
		break;
	default:
		res = RESCAN_LATER;
		break;
	}
	log_role(LOG_CLEANUP, "%016llx: rescan: %s%s%s", (unsigned long long)rs->m->id,
	    res == RESCAN_PASSED ? "passed" : res == RESCAN_UNSCANNED ?
	    "filter still unavailable, delivered unscanned" : res == RESCAN_QUARANTINE ?
	    "quarantined" : "not now, stays queued", reason[0] ? ": " : "", reason);
	rs->done(rs->arg, res, reason);
	rescan_free(rs);
}

struct rescan *
rescan_start(struct ev_loop *loop, const struct spoold_rt *rt, struct queue *q,
    const struct spool_envelope *e, rescan_done_cb *done, void *arg)
{
	struct rescan *rs = calloc(1, sizeof(*rs));
	struct filter_client cl = { .addr = rs ? rs->client : "", .port = 0, .family = '4',
	    .tls_version = "", .cipher = "" };

	if (rs == NULL)
		return NULL;
	rs->done = done;
	rs->arg = arg;
	snprintf(rs->client, sizeof(rs->client), "%s", e->client);
	cl.family = strchr(rs->client, ':') != NULL ? '6' : '4';
	if ((rs->m = message_of(rt, q, e)) == NULL ||
	    (rs->filter = filter_start(loop, rt, &cl, rs->m, rescan_rcpt_ok, rescan_filtered,
	    rs)) == NULL) {
		rescan_free(rs);
		return NULL;
	}
	return rs;
}

void
rescan_cancel(struct rescan *rs)
{
	rescan_free(rs);
}
