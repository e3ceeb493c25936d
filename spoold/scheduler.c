/*
 * scheduler.c - spontaneous delivery runs and expiry; see scheduler.h.
 * One timer: a look walks the domain list (one short read transaction,
 * names and counters copied out), then starts the runs that are due and
 * expires what is too old.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "despool.h"
#include "log.h"
#include "spool.h"
#include "spoold.h"
#include "scheduler.h"

static ev_timer tick;
/* Expiries and delay notices handed to the committer and not yet
 * committed: no new pass starts before they are, or one message could get
 * two DSNs. */
static unsigned expiring;

static void
expired(void *arg, enum spool_err result)
{
	expiring--;
}

struct seen {
	char			 name[256];
	struct spool_counters	 c;
};

struct look {
	struct seen	*d;
	size_t		 n, cap;
};

/* collect - every domain with mail (the walk must not block: copy only) */
static int
collect(const struct spool_domain_info *di, void *arg)
{
	struct look *l = arg;

	if (di->counters.messages == 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->d, cap * sizeof(*l->d));

		if (p == NULL)
			return 1;
		l->d = p;
		l->cap = cap;
	}
	snprintf(l->d[l->n].name, sizeof(l->d[0].name), "%s", di->domain);
	l->d[l->n++].c = di->counters;
	return 0;
}

/* backoff - the wait after the n-th failure in a row: retry, doubling up to
 * the cap, with a jitter of +-20% that stays the same for one domain and n
 * (so successive looks agree on when it is due) */
static double
backoff(const char *domain, unsigned n, double retry)
{
	double cap = retry > SCHEDULER_BACKOFF_MAX ? retry : SCHEDULER_BACKOFF_MAX, d = retry;
	unsigned h = n * 2654435761u;

	for (unsigned i = 1; i < n && d < cap; i++)
		d *= 2;
	for (const char *p = domain; *p; p++)
		h = h * 31 + (unsigned char)*p;
	return (d < cap ? d : cap) * (0.8 + 0.4 * (double)(h % 1000) / 1000.0);
}

/* due - a spontaneous run for this domain may start now */
static int
due(const char *domain, double retry, time_t now)
{
	struct spool_route rt;
	int ok;

	if (spool_get_route(spoold.spool, domain, &rt) != SPOOL_OK)
		return 1;
	ok = !(rt.flags & ROUTE_HELD) && (rt.failures == 0 ||
	    (double)(now - rt.last_attempt) >= backoff(domain, rt.failures, retry));
	spool_route_free(&rt);
	return ok;
}

static void
start_run(const char *name, const struct domain_conf *d)
{
	struct domain_conf outside = {
		.name = (char *)name, .mode = MODE_BACKUP, .tls = TLS_MAY,
		.route = { .kind = ROUTE_MX }, .retry = SCHEDULER_RETRY,
	};
	unsigned long long queued;
	const char *reason = "";

	if (despool_start(d ? d : &outside, NULL, &queued, &reason) == DESPOOL_FAILED)
		log_warnx("delivery run domain=%s: cannot start: %s", name, reason);
}

/* expire_message - fail e's recipients in domain: one DSN (Status 4.4.7) */
static void
expire_message(const struct spool_envelope *e, const char *domain, uint64_t max_age)
{
	struct bounce_rcpt *b = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*b));
	char reply[200], esc[600];
	size_t n = 0;

	if (b == NULL)
		return;
	snprintf(reply, sizeof(reply), "450 4.4.7 delivery time expired: not delivered in %llu "
	    "days (max-age)", (unsigned long long)(max_age / 86400));
	if (max_age < 86400)
		snprintf(reply, sizeof(reply), "450 4.4.7 delivery time expired: not delivered in "
		    "%llu seconds (max-age)", (unsigned long long)max_age);
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].done || strcmp(spool_rcpt_domain(e->rcpts[i].addr), domain) != 0)
			continue;
		log_info("%016llx to=<%s> delay=%llds dsn=4.4.7 status=expired (%s)",
		    (unsigned long long)e->id, log_escape(esc, sizeof(esc), e->rcpts[i].addr, 512),
		    (long long)(time(NULL) - e->arrival), reply);
		b[n].index = (unsigned)i;
		b[n++].reply = reply;
	}
	if (n > 0 && bounce_submit(e, b, n, NULL, expired, NULL) == 0)
		expiring++;
	free(b);
}

/* expire_domain - the messages of domain older than max_age, at most
 * *budget of them; the ids come oldest first, so it stops at a young one */
static void
expire_domain(const char *domain, uint64_t max_age, time_t now, unsigned *budget)
{
	struct spool_envelope e;
	uint64_t *ids = NULL;
	size_t n = 0;

	if (despool_busy(domain) || spool_domain_ids(spoold.spool, domain, &ids, &n) != SPOOL_OK)
		return;
	for (size_t k = 0; k < n && *budget > 0; k++) {
		if (spool_get_envelope(spoold.spool, ids[k], &e) != SPOOL_OK)
			continue;
		if ((uint64_t)(now - e.arrival) < max_age) {
			spool_envelope_free(&e);
			break;
		}
		expire_message(&e, domain, max_age);
		spool_envelope_free(&e);
		(*budget)--;
	}
	free(ids);
}

/* A message that has waited delay-warning, with recipients not yet told. */
struct late {
	struct late	*next;
	uint64_t	 id;
	size_t		 n;
	unsigned	 idx[64];
	char		*reply[64];
};

struct late_walk {
	struct late	*head;
	time_t		 now;
	uint64_t	 after, max_age;
	unsigned	 budget;
};

/* late_cb - collect (copy: the walk's data dies with its transaction) */
static int
late_cb(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *q,
    size_t nidx, void *arg)
{
	struct late_walk *w = arg;
	uint64_t age = (uint64_t)(w->now - e->arrival);
	struct late *l;

	if (age < w->after)
		return 1;		/* oldest first: the rest are younger */
	if (age >= w->max_age || w->budget == 0)
		return w->budget == 0;	/* expiry takes it; or enough for now */
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return 1;
	for (size_t i = 0; i < nidx && l->n < 64; i++) {
		if (q[i].flags & QENTRY_WARNED)
			continue;
		l->idx[l->n] = idx[i];
		l->reply[l->n++] = strdup(q[i].last_reply && q[i].last_reply[0] ? q[i].last_reply :
		    "451 4.4.1 not delivered yet: waiting for the site to ask for its mail");
	}
	if (l->n == 0) {
		free(l);
		return 0;
	}
	l->id = e->id;
	l->next = w->head;
	w->head = l;
	w->budget--;
	return 0;
}

/* warn_domain - delay notices (RFC 3464 Action: delayed) for the messages
 * of domain waiting longer than delay-warning, once per recipient */
static void
warn_domain(const struct domain_conf *d, time_t now, unsigned *budget)
{
	struct late_walk w = { NULL, now, d->delay_warning, d->max_age, *budget };
	struct spool_envelope e;
	struct bounce_rcpt b[64];

	if (despool_busy(d->name) || spool_domain_walk(spoold.spool, d->name, late_cb, &w) != SPOOL_OK)
		w.budget = *budget;
	*budget = w.budget;
	while (w.head != NULL) {
		struct late *l = w.head;

		w.head = l->next;
		for (size_t i = 0; i < l->n; i++)
			b[i] = (struct bounce_rcpt){ l->idx[i], l->reply[i] ? l->reply[i] : "451 4.4.1" };
		if (spool_get_envelope(spoold.spool, l->id, &e) == SPOOL_OK) {
			if (bounce_warn(&e, d->name, b, l->n, expired, NULL) == 0)
				expiring++;
			spool_envelope_free(&e);
		}
		for (size_t i = 0; i < l->n; i++)
			free(l->reply[i]);
		free(l);
	}
}

/* look_interval - every SCHEDULER_TICK, or as often as the shortest retry,
 * max-age or delay-warning asks for */
static double
look_interval(void)
{
	const struct spoold_conf *cf = spoold.rt->conf;
	double t = SCHEDULER_TICK;

	for (size_t i = 0; i < cf->n_domains; i++) {
		const struct domain_conf *d = &cf->domains[i];

		if (d->mode == MODE_BACKUP && (double)d->retry < t)
			t = (double)d->retry;
		if ((double)d->max_age < t)
			t = (double)d->max_age;
		if (d->delay_warning > 0 && (double)d->delay_warning < t)
			t = (double)d->delay_warning;
	}
	return t < 1.0 ? 1.0 : t;
}

static void
scheduler_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	const struct spoold_conf *cf = spoold.rt->conf;
	struct look l = { NULL, 0, 0 };
	unsigned budget = SCHEDULER_EXPIRE_BATCH;
	time_t now = time(NULL);

	if (!spoold.stopping && spool_domain_list(spoold.spool, collect, &l) == SPOOL_OK)
		for (size_t i = 0; i < l.n; i++) {
			const struct domain_conf *d = spoold_conf_domain(cf, l.d[i].name);
			uint64_t max_age = d ? d->max_age : DEF_MAX_AGE;
			unsigned before = expiring;

			if (expiring == 0 && l.d[i].c.oldest > 0 &&
			    (uint64_t)(now - l.d[i].c.oldest) >= max_age)
				expire_domain(l.d[i].name, max_age, now, &budget);
			if (expiring == 0 && d != NULL && d->delay_warning > 0 && l.d[i].c.oldest > 0 &&
			    (uint64_t)(now - l.d[i].c.oldest) >= d->delay_warning)
				warn_domain(d, now, &budget);
			/* a run's snapshot must not take messages whose expiry
			 * is not committed yet: it waits for the next look */
			if (expiring == before && (d == NULL || d->mode == MODE_BACKUP) &&
			    !despool_busy(l.d[i].name) &&
			    due(l.d[i].name, d ? (double)d->retry : SCHEDULER_RETRY, now))
				start_run(l.d[i].name, d);
		}
	free(l.d);
	/* a full batch expired: more may be waiting, look again soon (after
	 * the committer has taken this batch) */
	ev_timer_set(w, budget == 0 || expiring > 0 ? 0.2 : look_interval(), 0.);
	ev_timer_start(loop, w);
}

void
scheduler_start(void)
{
	ev_timer_init(&tick, scheduler_tick, 1.0, 0.);
	ev_timer_start(spoold.loop, &tick);
}

void
scheduler_kick(void)
{
	ev_timer_stop(spoold.loop, &tick);
	ev_timer_set(&tick, 0.2, 0.);
	ev_timer_start(spoold.loop, &tick);
}

void
scheduler_stop(void)
{
	ev_timer_stop(spoold.loop, &tick);
}
