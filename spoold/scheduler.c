/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * scheduler.c - spontaneous delivery runs and expiry; see scheduler.h.
 * One timer: a look walks the domain list, then starts the runs that are
 * due and expires what is too old.  It goes SCHEDULER_LOOK_SLICE domains
 * a pass of the loop (each slice one short read transaction, names and
 * counters copied out): 10,000 domains in one go held every session up for
 * 10 ms, and for 0.5 s on a spool not in the page cache (issue 14).
 *
 * At the start a thread reads the domain list once (the warm-up) and the
 * first look waits for it: on a spool not in the page cache, the look's
 * slices read it from the disk on the loop otherwise, and ETRN replies in
 * the first second and a half waited 25-45 ms behind them.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "despool.h"
#include "log.h"
#include "queue.h"
#include "runtime.h"
#include "schedule.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"
#include "scheduler.h"

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	struct spoold_rt	*rt;		/* the running configuration */
	ev_timer		 tick;
	int			 stopped;
	/* Expiries and delay notices handed to the committer and not yet
	 * committed: no new pass starts before they are, or one message
	 * could get two DSNs. */
	unsigned		 expiring;
	/* the look under way: its time, what it may still expire, and the
	 * last domain it went through ("" before the first slice) */
	int			 looking;
	time_t			 look_now;
	unsigned		 budget;
	char			 after[SMTP_DOMAIN_MAX + 1];
	pthread_t		 warmer;
	int			 warming;	/* atomic: the warm-up is reading */
	int			 warmer_started;
} sched;

#define SCHEDULER_LOOK_SLICE	128	/* domains a pass of the loop */

static void
expired(void *arg, enum spool_err result)
{
	sched.expiring--;
}

struct seen {
	char			 name[SMTP_DOMAIN_MAX + 1];
	struct spool_counters	 c;
};

struct look {
	struct seen	*d;
	size_t		 n, cap;
	size_t		 walked;	/* domains, with mail or not */
	char		 last[SMTP_DOMAIN_MAX + 1];
};

/* collect - the next slice's domains with mail (the walk must not block:
 * copy only) */
static int
collect(const struct spool_domain_info *di, void *arg)
{
	struct look *l = arg;

	snprintf(l->last, sizeof(l->last), "%s", di->domain);
	if (++l->walked == SCHEDULER_LOOK_SLICE && di->counters.messages == 0)
		return 1;
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
	return l->walked == SCHEDULER_LOOK_SLICE;
}

/* due - a spontaneous run for this domain may start now */
static int
due(const char *domain, const struct domain_conf *d, time_t now)
{
	struct spool_route rt;
	int64_t next;

	if (queue_route(sched.queue, domain, &rt) != SPOOL_OK)
		return schedule_next_attempt(domain, d, NULL) <= now;
	next = schedule_next_attempt(domain, d, &rt);
	spool_route_free(&rt);
	return next <= now;
}

static void
start_run(const char *name, const struct domain_conf *d)
{
	char buf[SMTP_DOMAIN_MAX + 1];
	/* a domain that is not configured: by MX, as any MTA would */
	struct domain_conf outside = {
		.name = buf, .mode = MODE_BACKUP, .tls = TLS_MAY,
		.route = { .kind = ROUTE_MX }, .retry = SCHEDULE_RETRY_OUTSIDE,
	};
	unsigned long long queued;
	const char *reason = "";

	snprintf(buf, sizeof(buf), "%s", name);
	if (despool_start(d ? d : &outside, sched.rt, NULL, &queued, &reason) == DESPOOL_FAILED)
		log_warnx("delivery run domain=%s: cannot start: %s", name, reason);
}

/* expire_message - fail e's recipients in domain: one DSN (Status 4.4.7) */
static void
expire_message(const struct spool_envelope *e, const char *domain, uint64_t max_age)
{
	struct bounce_rcpt *b = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*b));
	char reply[200], esc[600], age[40];
	const char *arg = age;
	size_t n = 0;

	if (b == NULL)
		return;
	if (max_age < 86400)
		snprintf(age, sizeof(age), "%llu seconds", (unsigned long long)max_age);
	else
		snprintf(age, sizeof(age), "%llu days", (unsigned long long)(max_age / 86400));
	smtp_reply_text(reply, sizeof(reply), R_DSN_EXPIRED, 1, &arg, 1);
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].done || strcmp(spool_rcpt_domain(e->rcpts[i].addr), domain) != 0)
			continue;
		log_role(LOG_QMGR, "%016llx: to=<%s>, relay=none, delay=%lld, dsn=4.4.7, status=expired (%s)",
		    (unsigned long long)e->id, log_escape(esc, sizeof(esc), e->rcpts[i].addr, 512),
		    (long long)(time(NULL) - e->arrival), reply);
		b[n].index = (unsigned)i;
		b[n++].reply = reply;
	}
	if (n > 0 && bounce_submit(e, b, n, sched.rt->conf->hostname, NULL, expired, NULL) == 0)
		sched.expiring++;
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

	if (despool_busy(domain) || queue_ids(sched.queue, domain, &ids, &n) != SPOOL_OK)
		return;
	for (size_t k = 0; k < n && *budget > 0; k++) {
		if (queue_envelope(sched.queue, ids[k], &e) != SPOOL_OK)
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

/* waiting_reply - why a recipient never tried is late */
static const char *
waiting_reply(void)
{
	static char text[200];

	if (text[0] == '\0')
		smtp_reply_text(text, sizeof(text), R_DSN_WAITING, 1, NULL, 0);
	return text;
}

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
		    waiting_reply());
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

	if (despool_busy(d->name) || queue_walk(sched.queue, d->name, late_cb, &w) != SPOOL_OK)
		w.budget = *budget;
	*budget = w.budget;
	while (w.head != NULL) {
		struct late *l = w.head;

		w.head = l->next;
		for (size_t i = 0; i < l->n; i++)
			b[i] = (struct bounce_rcpt){ l->idx[i], l->reply[i] ? l->reply[i] :
			    waiting_reply() };
		if (queue_envelope(sched.queue, l->id, &e) == SPOOL_OK) {
			if (bounce_warn(&e, d->name, b, l->n, sched.rt->conf->hostname, expired,
			    NULL) == 0)
				sched.expiring++;
			spool_envelope_free(&e);
		}
		for (size_t i = 0; i < l->n; i++)
			free(l->reply[i]);
		free(l);
	}
}

struct qexpiry {
	uint64_t	id;
	uint64_t	max_age;
};

static void
quarantine_expired(void *arg, enum spool_err result)
{
	struct qexpiry *x = arg;

	sched.expiring--;
	if (result == SPOOL_OK)
		log_role(LOG_QMGR, "%016llx: removed from the quarantine after %llus (quarantine-max-age)",
		    (unsigned long long)x->id, (unsigned long long)x->max_age);
	free(x);
}

/* expire_quarantine - quarantined messages older than
 * quarantine-max-age go, silently (no DSN for what a filter held back);
 * at most budget of them in one look */
static void
expire_quarantine(time_t now, unsigned *budget)
{
	uint64_t max_age = sched.rt->conf->quarantine_max_age, *ids;
	size_t n;

	if (queue_quarantine_expired(sched.queue, (int64_t)now - (int64_t)max_age, &ids, &n) !=
	    SPOOL_OK)
		return;
	for (size_t i = 0; i < n && *budget > 0; i++) {
		struct qexpiry *x = malloc(sizeof(*x));

		if (x == NULL)
			break;
		x->id = ids[i];
		x->max_age = max_age;
		if (queue_expire_quarantined(sched.queue, ids[i], quarantine_expired, x) == -1) {
			free(x);
			break;
		}
		sched.expiring++;
		(*budget)--;
	}
	free(ids);
}

/* look_interval - every SCHEDULER_TICK, or as often as the shortest retry,
 * max-age or delay-warning asks for */
static double
look_interval(void)
{
	const struct spoold_conf *cf = sched.rt->conf;
	double t = SCHEDULER_TICK;

	if ((double)cf->quarantine_max_age < t)
		t = (double)cf->quarantine_max_age;

	if ((double)cf->shortest_domain_timer < t)
		t = (double)cf->shortest_domain_timer;
	return t < 1.0 ? 1.0 : t;
}

/* look_domain - one domain with mail: expire, warn, start its run */
static void
look_domain(const struct seen *s)
{
	const struct domain_conf *d = spoold_conf_domain(sched.rt->conf, s->name);
	uint64_t max_age = d ? d->max_age : DEF_MAX_AGE;
	unsigned before = sched.expiring;
	time_t now = sched.look_now;

	if (sched.expiring == 0 && s->c.oldest > 0 && (uint64_t)(now - s->c.oldest) >= max_age)
		expire_domain(s->name, max_age, now, &sched.budget);
	if (sched.expiring == 0 && d != NULL && d->delay_warning > 0 && s->c.oldest > 0 &&
	    (uint64_t)(now - s->c.oldest) >= d->delay_warning)
		warn_domain(d, now, &sched.budget);
	/* a run's snapshot must not take messages whose expiry is not
	 * committed yet: it waits for the next look */
	if (sched.expiring == before && !despool_busy(s->name) && due(s->name, d, now))
		start_run(s->name, d);
}

/* look_slice - the next SCHEDULER_LOOK_SLICE domains of the look; 1 when
 * there may be more */
static int
look_slice(void)
{
	struct look l = { .d = NULL };
	int more;

	if (queue_domains_after(sched.queue, sched.after, collect, &l) != SPOOL_OK) {
		free(l.d);
		return 0;
	}
	for (size_t i = 0; i < l.n; i++)
		look_domain(&l.d[i]);
	free(l.d);
	more = l.walked == SCHEDULER_LOOK_SLICE;
	snprintf(sched.after, sizeof(sched.after), "%s", l.last);
	return more;
}

static int
warm_domain(const struct spool_domain_info *d, void *arg)
{
	(void)d, (void)arg;
	return 0;	/* read: that is all it is for */
}

/* warm_up - the domain list and counters read once, off the loop, so the
 * pages the first look needs are in memory when it comes */
static void *
warm_up(void *arg)
{
	ev_tstamp t0 = ev_time();

	(void)arg;
	(void)queue_domains(sched.queue, warm_domain, NULL);
	queue_read_at_random(sched.queue, 0);
	log_debug("scheduler: the domain list read in %.3f s before the first look", ev_time() - t0);
	__atomic_store_n(&sched.warming, 0, __ATOMIC_RELEASE);
	return NULL;
}

static void
scheduler_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (__atomic_load_n(&sched.warming, __ATOMIC_ACQUIRE)) {
		ev_timer_set(w, 0.05, 0.);	/* the first look waits for the warm-up */
		ev_timer_start(loop, w);
		return;
	}
	if (!sched.looking) {
		sched.looking = 1;
		sched.look_now = time(NULL);
		sched.budget = SCHEDULER_EXPIRE_BATCH;
		sched.after[0] = '\0';
	}
	if (!sched.stopped && look_slice()) {
		ev_timer_set(w, 0., 0.);	/* the next slice, after the loop's other work */
		ev_timer_start(loop, w);
		return;
	}
	sched.looking = 0;
	if (!sched.stopped && sched.expiring == 0)
		expire_quarantine(sched.look_now, &sched.budget);
	/* a full batch expired: more may be waiting, look again soon (after
	 * the committer has taken this batch) */
	ev_timer_set(w, sched.budget == 0 || sched.expiring > 0 ? 0.2 : look_interval(), 0.);
	ev_timer_start(loop, w);
}

void
scheduler_start(struct ev_loop *loop, struct queue *q, struct spoold_rt *rt)
{
	sched.loop = loop;
	sched.queue = q;
	scheduler_configure(rt);
	/* Until the warm-up has read the domain list, the spool may not be in
	 * the page cache (after a reboot): the list's pages, and each ETRN's
	 * counters, are then faults, and with the kernel's read-around a fault
	 * on the map read megabytes.  Read at random, the warm-up of 10,000
	 * domains with a million messages took 13 ms instead of 1 s, and ETRN
	 * replies meanwhile a p99 of 1.5 ms instead of 27 (issue 14).  Bodies
	 * are read in order and cost more faults so: only until the warm-up
	 * is over. */
	sched.warming = 1;
	queue_read_at_random(q, 1);
	if (pthread_create(&sched.warmer, NULL, warm_up, NULL) == 0)
		sched.warmer_started = 1;
	else {
		sched.warming = 0;	/* the first look reads it, on the loop */
		queue_read_at_random(q, 0);
	}
	ev_timer_init(&sched.tick, scheduler_tick, 1.0, 0.);
	ev_timer_start(loop, &sched.tick);
}

void
scheduler_configure(struct spoold_rt *rt)
{
	struct spoold_rt *old = sched.rt;

	sched.rt = rt_ref(rt);
	if (old != NULL)
		rt_unref(old);
	/* a reload that shortens a retry or an age counts from now, not from
	 * the look planned under the old one */
	if (!sched.stopped && ev_is_active(&sched.tick) &&
	    ev_timer_remaining(sched.loop, &sched.tick) > look_interval()) {
		ev_timer_stop(sched.loop, &sched.tick);
		ev_timer_set(&sched.tick, look_interval(), 0.);
		ev_timer_start(sched.loop, &sched.tick);
	}
}

void
scheduler_queued(const char *domain)
{
	/* a domain that is not configured: its mail (a DSN to a sender
	 * elsewhere) goes out by MX, soon */
	if (sched.stopped || spoold_conf_domain(sched.rt->conf, domain) != NULL)
		return;
	/* a look due soon stays: restarting it for each message would put it
	 * off for as long as they keep coming */
	if (ev_is_active(&sched.tick) && ev_timer_remaining(sched.loop, &sched.tick) <= 0.2)
		return;
	ev_timer_stop(sched.loop, &sched.tick);
	ev_timer_set(&sched.tick, 0.2, 0.);
	ev_timer_start(sched.loop, &sched.tick);
}

void
scheduler_stop(void)
{
	sched.stopped = 1;
	ev_timer_stop(sched.loop, &sched.tick);
	if (sched.warmer_started)	/* it reads the spool: done before it closes */
		pthread_join(sched.warmer, NULL);
	sched.warmer_started = 0;
	rt_unref(sched.rt);
	sched.rt = NULL;
}
