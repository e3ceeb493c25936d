/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * verify.c - the verification cache, the probes in flight and their limits;
 * see verify.h.  The probe itself is callout.c's.
 *
 * A probe lives from its start until its result is on disk: while the
 * result is being committed (storing), a RCPT for the address is answered
 * from the probe, so no second probe starts before the spool knows.
 *
 * A refresh is a probe nobody waits for: a RCPT found a positive entry
 * older than verify-positive-refresh, got its 250 from the cache and left
 * the probe running.  Its 2xx or 5xx replaces the entry; when the primary
 * cannot tell (4xx, no connection, verify-timeout) the old entry stays as
 * it was and the probe rests for VERIFY_REFRESH_RETRY, so the stale entry
 * is not probed again at every RCPT meanwhile (Postfix keeps a probe time
 * in the entry for this; ours is in memory only: a restart forgets it).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callout.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "runtime.h"
#include "verify.h"

struct verify_probe {
	struct verify_probe	*next;
	char			 key[SPOOL_VERIFY_KEY_MAX + 1];	/* lower case */
	struct callout		*callout;	/* NULL once it answered */
	struct verify_wait	*waiters;
	uint64_t		 sid;		/* the first asker's session */
	ev_tstamp		 started;
	int			 refresh;	/* of a positive entry: the cache answers */
	ev_timer		 rest;		/* a refresh with no verdict, resting */
	int			 storing;	/* the result is being committed */
	int			 valid;		/* when storing */
	char			 reply[VERIFY_TEXT_MAX];
	uint64_t		 positive_expire, negative_expire;	/* its configuration's */
	char			 primary[SMTP_DOMAIN_MAX + 16];	/* its key */
};

/* A primary (the route, not the host: "mx:DOMAIN" or "HOST:PORT"): its
 * probes in the current minute, and a pause after it was not there. */
struct verify_primary {
	struct verify_primary	*next;
	char			 key[SMTP_DOMAIN_MAX + 16];
	ev_tstamp		 window;	/* the minute counted */
	uint64_t		 count;
	ev_tstamp		 down_until;
};

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	struct verify_probe	*probes;
	unsigned		 nprobes;	/* with a callout running */
	struct verify_primary	*primaries;
	ev_timer		 sweep;
	int			 stopping;
} vctx;

/* verify_key - lower-case local@domain into key; -1 when too long */
static int
verify_key(char *key, size_t len, const char *local, const char *domain)
{
	int n = snprintf(key, len, "%s@%s", local, domain);

	if (n < 0 || (size_t)n >= len)
		return -1;
	for (; *key; key++)
		*key = (char)tolower((unsigned char)*key);
	return 0;
}

static struct verify_probe *
verify_probe_find(const char *key)
{
	for (struct verify_probe *p = vctx.probes; p; p = p->next)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

static void
verify_probe_unlink(struct verify_probe *p)
{
	for (struct verify_probe **pp = &vctx.probes; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

/* verify_probe_resting - p is a refresh that got no verdict: nothing runs */
static int
verify_probe_resting(const struct verify_probe *p)
{
	return p->refresh && p->callout == NULL && !p->storing;
}

static void
verify_probe_free(struct verify_probe *p)
{
	ev_timer_stop(vctx.loop, &p->rest);
	verify_probe_unlink(p);
	free(p);
}

/* ---- primaries: the rate and the pause ---- */

static void
verify_primary_key(const struct domain_conf *d, char *key, size_t len)
{
	if (d->route.kind == ROUTE_MX)
		snprintf(key, len, "mx:%s", d->name);
	else
		snprintf(key, len, "%s:%d", d->route.host ? d->route.host : "?",
		    d->route.port ? d->route.port : 25);
}

/* verify_primary - the primary named key, made when create (NULL when
 * out of memory); entries idle for a minute (and not paused) go on the
 * way, so only a pointer got just now may be used */
static struct verify_primary *
verify_primary(const char *key, int create)
{
	ev_tstamp now = ev_now(vctx.loop);
	struct verify_primary **pp, *pr;

	for (pp = &vctx.primaries; (pr = *pp) != NULL;) {
		if (strcmp(pr->key, key) == 0)
			return pr;
		if (now - pr->window >= 60. && pr->down_until <= now) {
			*pp = pr->next;
			free(pr);
			continue;
		}
		pp = &pr->next;
	}
	if (!create || (pr = calloc(1, sizeof(*pr))) == NULL)
		return NULL;
	snprintf(pr->key, sizeof(pr->key), "%s", key);
	pr->window = now;
	pr->next = vctx.primaries;
	vctx.primaries = pr;
	return pr;
}

/* verify_primary_full - no new probe may go to pr now */
static int
verify_primary_full(struct verify_primary *pr, uint64_t rate)
{
	ev_tstamp now = ev_now(vctx.loop);

	if (now - pr->window >= 60.) {
		pr->window = now;
		pr->count = 0;
	}
	return pr->count >= rate;
}

/* ---- answers ---- */

enum smtp_reply_id
verify_reply(enum verify_status st)
{
	switch (st) {
	case VERIFY_VALID:	return R_RCPT_OK;
	case VERIFY_INVALID:	return R_VERIFY_UNDELIVERABLE;
	case VERIFY_BUSY:	return R_VERIFY_BUSY;
	case VERIFY_UNKNOWN:
	case VERIFY_ASK:	break;
	}
	return R_VERIFY_UNKNOWN;
}

/* verify_cached - the spool's entry for key, if it still counts; *due
 * set when it is a positive one older than refresh seconds */
static enum verify_status
verify_cached(const char *key, uint64_t refresh, char *text, size_t len, int *due)
{
	int64_t now = (int64_t)time(NULL);
	struct spool_verify vr;
	enum verify_status st = VERIFY_ASK;

	*due = 0;
	if (queue_verify_get(vctx.queue, key, &vr) != SPOOL_OK)
		return VERIFY_ASK;	/* none, or unreadable: ask again */
	if (vr.expires > now) {
		st = vr.valid ? VERIFY_VALID : VERIFY_INVALID;
		snprintf(text, len, "%s", vr.reply);
		*due = vr.valid && now - vr.checked >= (int64_t)refresh;
	}
	spool_verify_free(&vr);
	return st;
}

/* verify_may_probe - whether the limits let a probe of d's primary start
 * now: VERIFY_ASK, else VERIFY_UNKNOWN (paused, why in text) or
 * VERIFY_BUSY */
static enum verify_status
verify_may_probe(const struct spoold_rt *rt, const struct domain_conf *d, char *text, size_t len)
{
	char pkey[SMTP_DOMAIN_MAX + 16];
	struct verify_primary *pr;

	verify_primary_key(d, pkey, sizeof(pkey));
	if ((pr = verify_primary(pkey, 0)) != NULL && pr->down_until > ev_now(vctx.loop)) {
		snprintf(text, len, "the primary did not answer lately");
		return VERIFY_UNKNOWN;
	}
	if (vctx.nprobes >= VERIFY_MAX_PROBES ||
	    (pr != NULL && verify_primary_full(pr, rt->conf->verify_rate)))
		return VERIFY_BUSY;
	return VERIFY_ASK;
}

static struct verify_probe *verify_probe_start(struct spoold_rt *, const struct domain_conf *,
    const char *key, const char *addr, uint64_t sid);

/* verify_refresh - key's positive entry is due: a probe in the background
 * when the limits allow one now (else a later RCPT tries again) */
static void
verify_refresh(struct spoold_rt *rt, const struct domain_conf *d, const char *key,
    const char *local, const char *domain, uint64_t sid)
{
	char addr[SPOOL_VERIFY_KEY_MAX + 1], why[64];
	struct verify_probe *p;

	if (verify_may_probe(rt, d, why, sizeof(why)) != VERIFY_ASK)
		return;
	snprintf(addr, sizeof(addr), "%s@%s", local, domain);
	if ((p = verify_probe_start(rt, d, key, addr, sid)) != NULL)
		p->refresh = 1;
}

enum verify_status
verify_lookup(struct spoold_rt *rt, const struct domain_conf *d, const char *local,
    const char *domain, uint64_t sid, char *text, size_t len)
{
	char key[SPOOL_VERIFY_KEY_MAX + 1];
	struct verify_probe *p;
	enum verify_status st;
	int due;

	snprintf(text, len, vctx.stopping ? "spoold is shutting down" : "cannot verify it now");
	if (vctx.stopping || verify_key(key, sizeof(key), local, domain) == -1)
		return VERIFY_UNKNOWN;
	if ((p = verify_probe_find(key)) != NULL && p->storing) {
		snprintf(text, len, "%s", p->reply);
		metrics_inc(MC_VERIFY_CACHE_HIT);
		return p->valid ? VERIFY_VALID : VERIFY_INVALID;
	}
	if (p != NULL && !p->refresh)
		return VERIFY_ASK;	/* join it */
	/* p, if any, is a refresh, running or resting: the entry answers */
	if ((st = verify_cached(key, rt->conf->verify_positive_refresh, text, len, &due)) !=
	    VERIFY_ASK) {
		metrics_inc(due ? MC_VERIFY_STALE : MC_VERIFY_CACHE_HIT);
		if (due && p == NULL)
			verify_refresh(rt, d, key, local, domain, sid);
		return st;
	}
	if (p != NULL && p->callout != NULL)
		return VERIFY_ASK;	/* it expired while its refresh runs: join that */
	if (p != NULL)
		verify_probe_free(p);	/* the entry a resting refresh kept is gone */
	if ((st = verify_may_probe(rt, d, text, len)) == VERIFY_BUSY)
		metrics_inc(MC_VERIFY_BUSY);
	return st;
}

static void
verify_now_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct verify_wait *vw = w->data;

	vw->cb(vw->arg, vw->id, vw->text);
}

/* verify_answer_soon - vw's answer, from the loop */
static void
verify_answer_soon(struct verify_wait *vw, enum smtp_reply_id id, const char *text)
{
	vw->id = id;
	snprintf(vw->text, sizeof(vw->text), "%s", text);
	ev_timer_init(&vw->now, verify_now_cb, 0., 0.);
	vw->now.data = vw;
	ev_timer_start(vctx.loop, &vw->now);
}

/* verify_answer_all - every waiter of p, one at a time (a callback may
 * cancel another waiter, or ask again) */
static void
verify_answer_all(struct verify_probe *p, enum smtp_reply_id id, const char *text)
{
	struct verify_wait *vw;

	while ((vw = p->waiters) != NULL) {
		p->waiters = vw->next;
		vw->probe = NULL;
		vw->cb(vw->arg, id, text);
	}
}

/* ---- a probe's end ---- */

static void
verify_stored(void *arg, enum spool_err result)
{
	struct verify_probe *p = arg;

	if (result != SPOOL_OK)
		log_role_warn(LOG_VERIFY, "to=<%s>: cannot keep the result: %s", p->key,
		    spool_strerror(result));
	verify_probe_free(p);
}

/* verify_log - one line per probe, as Postfix's verify results read; a
 * refresh says whether its answer replaced the entry or the old one stays */
static void
verify_log(const struct verify_probe *p, enum callout_result res, const char *relay,
    const char *reply)
{
	char to[LOG_ESCAPE_SIZE(SPOOL_VERIFY_KEY_MAX)];
	const char *refresh = !p->refresh ? "" : res == CALLOUT_UNKNOWN ? ", refresh=kept" :
	    ", refresh=replaced";

	log_role(LOG_VERIFY, "%016llx: to=<%s>, relay=%s, delay=%.2g, status=%s (%s)%s",
	    (unsigned long long)p->sid, log_escape(to, sizeof(to), p->key, SPOOL_VERIFY_KEY_MAX),
	    relay, ev_now(vctx.loop) - p->started, callout_strresult(res), reply, refresh);
	metrics_inc(res == CALLOUT_DELIVERABLE ? MC_VERIFY_DELIVERABLE :
	    res == CALLOUT_UNDELIVERABLE ? MC_VERIFY_UNDELIVERABLE : MC_VERIFY_UNKNOWN);
}

/* verify_keep - the primary's verdict goes to the spool; p answers for
 * the address until it is there */
static void
verify_keep(struct verify_probe *p, int valid)
{
	int64_t now = (int64_t)time(NULL);
	struct spool_verify vr = {
		.valid = valid, .checked = now, .reply = p->reply,
		.expires = now + (int64_t)(valid ? p->positive_expire : p->negative_expire),
	};

	p->storing = 1;
	p->valid = valid;
	if (queue_verify_put(vctx.queue, p->key, &vr, verify_stored, p) == -1)
		p->storing = 0;		/* out of memory: answered, not kept */
	verify_answer_all(p, valid ? R_RCPT_OK : R_VERIFY_UNDELIVERABLE, p->reply);
	if (!p->storing)
		verify_probe_free(p);
}

static void
verify_rest_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	verify_probe_free(w->data);	/* the next RCPT may refresh again */
}

/* verify_probe_rest - a refresh without a verdict stays, answering
 * nothing, so the RCPTs that find the entry it kept start no probe */
static void
verify_probe_rest(struct verify_probe *p)
{
	ev_timer_set(&p->rest, VERIFY_REFRESH_RETRY, 0.);
	ev_timer_start(vctx.loop, &p->rest);
}

static void
verify_probe_done(void *arg, enum callout_result res, int code, const char *relay,
    const char *reply)
{
	struct verify_probe *p = arg;
	struct verify_primary *pr;

	p->callout = NULL;
	vctx.nprobes--;
	verify_log(p, res, relay, reply);
	snprintf(p->reply, sizeof(p->reply), "%.200s", reply);
	if (res != CALLOUT_UNKNOWN) {
		verify_keep(p, res == CALLOUT_DELIVERABLE);
		return;
	}
	/* the primary was not there: a pause, so the RCPTs that follow get
	 * their 450 at once instead of waiting for a dead host each */
	if (code == 0 && (pr = verify_primary(p->primary, 1)) != NULL)
		pr->down_until = ev_now(vctx.loop) + VERIFY_DOWN_HOLDOFF;
	if (p->refresh && p->waiters == NULL) {
		verify_probe_rest(p);	/* the entry stays as it was */
		return;
	}
	verify_probe_unlink(p);		/* a new RCPT starts afresh */
	verify_answer_all(p, R_VERIFY_UNKNOWN, p->reply);
	free(p);
}

/* verify_probe_start - a probe of key, or NULL (out of memory, no way to
 * the primary) */
static struct verify_probe *
verify_probe_start(struct spoold_rt *rt, const struct domain_conf *d, const char *key,
    const char *addr, uint64_t sid)
{
	struct verify_probe *p = calloc(1, sizeof(*p));
	struct verify_primary *pr;

	if (p == NULL)
		return NULL;
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->sid = sid;
	p->started = ev_now(vctx.loop);
	ev_timer_init(&p->rest, verify_rest_over, 0., 0.);
	p->rest.data = p;
	p->positive_expire = rt->conf->verify_positive_expire;
	p->negative_expire = rt->conf->verify_negative_expire;
	verify_primary_key(d, p->primary, sizeof(p->primary));
	if ((p->callout = callout_start(rt, d, addr, verify_probe_done, p)) == NULL) {
		free(p);
		return NULL;	/* nothing went to the primary: no slot of its rate used */
	}
	if ((pr = verify_primary(p->primary, 1)) != NULL) {
		verify_primary_full(pr, rt->conf->verify_rate);	/* a new minute? */
		pr->count++;
	}
	vctx.nprobes++;
	p->next = vctx.probes;
	vctx.probes = p;
	return p;
}

void
verify_ask(struct verify_wait *vw, struct spoold_rt *rt, const struct domain_conf *d,
    const char *local, const char *domain, uint64_t sid, verify_cb *cb, void *arg)
{
	char key[SPOOL_VERIFY_KEY_MAX + 1], addr[SPOOL_VERIFY_KEY_MAX + 1];
	struct verify_probe *p;

	memset(vw, 0, sizeof(*vw));
	vw->cb = cb;
	vw->arg = arg;
	snprintf(addr, sizeof(addr), "%s@%s", local, domain);
	if (verify_key(key, sizeof(key), local, domain) == -1) {
		verify_answer_soon(vw, R_VERIFY_UNKNOWN, "address too long");
		return;
	}
	if ((p = verify_probe_find(key)) != NULL && p->storing) {
		verify_answer_soon(vw, p->valid ? R_RCPT_OK : R_VERIFY_UNDELIVERABLE, p->reply);
		return;
	}
	if (p != NULL && verify_probe_resting(p)) {
		verify_probe_free(p);	/* nothing to join: a probe of its own */
		p = NULL;
	}
	if (p != NULL)
		metrics_inc(MC_VERIFY_JOINED);	/* one probe per address at a time */
	else if ((p = verify_probe_start(rt, d, key, addr, sid)) == NULL) {
		verify_answer_soon(vw, R_VERIFY_UNKNOWN, "cannot start a probe");
		return;
	}
	vw->probe = p;
	vw->next = p->waiters;
	p->waiters = vw;
}

void
verify_cancel(struct verify_wait *vw)
{
	ev_timer_stop(vctx.loop, &vw->now);
	if (vw->probe == NULL)
		return;
	for (struct verify_wait **pp = &vw->probe->waiters; *pp; pp = &(*pp)->next)
		if (*pp == vw) {
			*pp = vw->next;
			break;
		}
	vw->probe = NULL;
}

/* ---- the sweep, start and stop ---- */

static void
verify_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (queue_verify_sweep(vctx.queue, (int64_t)time(NULL), NULL, NULL) == -1)
		log_role_warn(LOG_VERIFY, "out of memory: expired results stay until the next sweep");
}

void
verify_init(struct ev_loop *loop, struct queue *q)
{
	vctx.loop = loop;
	vctx.queue = q;
	/* the first a minute after start, then hourly */
	ev_timer_init(&vctx.sweep, verify_sweep, 60., VERIFY_SWEEP_INTERVAL);
	ev_timer_start(loop, &vctx.sweep);
	ev_unref(loop);		/* the sweep alone keeps no loop running */
}

void
verify_stop_all(void)
{
	struct verify_probe *p, *next;
	struct verify_primary *pr;

	if (vctx.loop == NULL || vctx.stopping)
		return;
	vctx.stopping = 1;
	ev_ref(vctx.loop);
	ev_timer_stop(vctx.loop, &vctx.sweep);
	for (p = vctx.probes; p; p = next) {
		next = p->next;
		if (verify_probe_resting(p)) {
			verify_probe_free(p);
			continue;
		}
		if (p->callout == NULL)
			continue;	/* storing: freed when committed */
		callout_cancel(p->callout);
		vctx.nprobes--;
		verify_probe_unlink(p);
		verify_answer_all(p, R_VERIFY_UNKNOWN, "spoold is shutting down");
		free(p);
	}
	while ((pr = vctx.primaries) != NULL) {
		vctx.primaries = pr->next;
		free(pr);
	}
}
