/*
 * scheduler.c - spontaneous delivery runs; see scheduler.h.  One timer: a
 * tick walks the domain list (one short read transaction, names copied
 * out), then starts a run for each outside domain whose last failure is
 * older than the retry interval.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "despool.h"
#include "log.h"
#include "spool.h"
#include "spoold.h"
#include "scheduler.h"

static ev_timer tick;

struct due {
	char	(*names)[256];
	size_t	 n, cap;
};

/* collect - outside domains with mail (the walk must not block: names are
 * only copied here) */
static int
collect(const struct spool_domain_info *di, void *arg)
{
	struct due *d = arg;

	if (di->counters.messages == 0 || spoold_conf_domain(spoold.rt->conf, di->domain) != NULL)
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		void *p = realloc(d->names, cap * sizeof(*d->names));

		if (p == NULL)
			return 1;
		d->names = p;
		d->cap = cap;
	}
	snprintf(d->names[d->n++], sizeof(d->names[0]), "%s", di->domain);
	return 0;
}

/* due_now - no failure recorded, or the last one is old enough */
static int
due_now(const char *domain, time_t now)
{
	struct spool_route rt;
	int due;

	if (spool_get_route(spoold.spool, domain, &rt) != SPOOL_OK)
		return 1;
	due = rt.failures == 0 || rt.next_try <= (int64_t)now;
	spool_route_free(&rt);
	return due;
}

static void
start_outside(const char *name)
{
	struct domain_conf d = {
		.name = (char *)name, .mode = MODE_BACKUP, .tls = TLS_MAY,
		.route = { .kind = ROUTE_MX }, .retry = SCHEDULER_RETRY,
	};
	unsigned long long queued;
	const char *reason = "";

	if (despool_start(&d, NULL, &queued, &reason) == DESPOOL_FAILED)
		log_warnx("delivery run domain=%s: cannot start: %s", name, reason);
}

static void
scheduler_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct due d = { NULL, 0, 0 };
	time_t now = time(NULL);

	if (!spoold.stopping && spool_domain_list(spoold.spool, collect, &d) == SPOOL_OK)
		for (size_t i = 0; i < d.n; i++)
			if (due_now(d.names[i], now))
				start_outside(d.names[i]);
	free(d.names);
	ev_timer_set(w, SCHEDULER_TICK, 0.);
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
