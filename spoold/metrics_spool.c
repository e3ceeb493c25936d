/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics_spool.c - the series of what the spool holds now, for the
 * metrics text: the map's usage, and per domain the messages, bytes and
 * oldest age queued and the messages quarantined.  Read through the
 * queue's thread-safe reads, on the metrics thread.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "metrics_spool.h"
#include "queue.h"
#include "spool.h"

static void
render_spool_stats(struct buf *out, const struct spool_stats *st)
{
	static const char *const help[] = {
		"spoold_spool_messages Messages stored (queued and quarantined).",
		"spoold_spool_quarantined Messages in the quarantine.",
		"spoold_spool_domains Domains with mail queued.",
		"spoold_spool_map_size_bytes The LMDB map's current size.",
		"spoold_spool_map_used_bytes Bytes of the map's pages in use.",
		"spoold_spool_map_max_bytes max-spool-size: what the map may grow to.",
	};
	const uint64_t v[] = { st->messages, st->quarantined, st->domains, st->map_size,
	    st->map_used, st->map_max };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *sp = strchr(help[i], ' ');

		(void)buf_printf(out, "# HELP %s\n# TYPE %.*s gauge\n%.*s %llu\n", help[i],
		    (int)(sp - help[i]), help[i], (int)(sp - help[i]), help[i],
		    (unsigned long long)v[i]);
	}
}

/* Per-domain series: four passes over what one read gathered would need
 * it all in memory; instead each family is its own walk (a consistent
 * view per family, which is what a scrape can promise anyway). */
struct domain_pass {
	struct buf	*out;
	int		 which;		/* 0 messages, 1 bytes, 2 oldest age */
	int64_t		 now;
};

static int
render_domain(const struct spool_domain_info *di, void *arg)
{
	struct domain_pass *p = arg;
	char esc[2 * SPOOL_DOMAIN_MAX + 1];
	const struct spool_counters *c = &di->counters;
	static const char *const name[] = { "spoold_domain_messages", "spoold_domain_bytes",
	    "spoold_domain_oldest_age_seconds" };

	if (c->messages == 0)
		return 0;
	metrics_label(di->domain, esc, sizeof(esc));
	if (p->which < 2)
		(void)buf_printf(p->out, "%s{domain=\"%s\"} %llu\n", name[p->which], esc,
		    (unsigned long long)(p->which == 0 ? c->messages : c->bytes));
	else
		(void)buf_printf(p->out, "%s{domain=\"%s\"} %lld\n", name[p->which], esc,
		    (long long)(c->oldest > 0 && p->now > c->oldest ? p->now - c->oldest : 0));
	return 0;
}

/* The quarantine per domain: a message counts once for each domain among
 * its recipients.  Gathered as (domain) strings, sorted, counted in runs. */
struct quarantine_pass {
	char	**names;
	size_t	  n, cap;
	int	  failed;
};

static int
gather_quarantined(const struct spool_envelope *env, const struct spool_quarantine *q, void *arg)
{
	struct quarantine_pass *p = arg;

	(void)q;
	for (size_t i = 0; i < env->nrcpts; i++) {
		const char *d = spool_rcpt_domain(env->rcpts[i].addr);
		int seen = 0;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(spool_rcpt_domain(env->rcpts[j].addr), d) == 0;
		if (seen || d[0] == '\0')
			continue;
		if (p->n == p->cap) {
			size_t cap = p->cap ? p->cap * 2 : 64;
			char **nn = realloc(p->names, cap * sizeof(*nn));

			if (nn == NULL) {
				p->failed = 1;
				return 1;
			}
			p->names = nn;
			p->cap = cap;
		}
		if ((p->names[p->n] = strdup(d)) == NULL) {
			p->failed = 1;
			return 1;
		}
		p->n++;
	}
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
render_quarantine(struct queue *q, struct buf *out)
{
	struct quarantine_pass p = { 0 };
	char esc[2 * SPOOL_DOMAIN_MAX + 1];
	enum spool_err rc = queue_quarantine_walk(q, gather_quarantined, &p);

	metrics_family(out, "spoold_domain_quarantined", "gauge",
	    "Messages in the quarantine with a recipient in the domain.");
	if (p.n > 1)	/* qsort(NULL, 0, ...) is undefined */
		qsort(p.names, p.n, sizeof(*p.names), cmp_names);
	for (size_t i = 0, j; i < p.n; i = j) {
		for (j = i + 1; j < p.n && strcmp(p.names[i], p.names[j]) == 0; j++)
			;
		(void)buf_printf(out, "spoold_domain_quarantined{domain=\"%s\"} %zu\n",
		    metrics_label(p.names[i], esc, sizeof(esc)), j - i);
	}
	for (size_t i = 0; i < p.n; i++)
		free(p.names[i]);
	free(p.names);
	return rc == SPOOL_OK && !p.failed ? 0 : -1;
}

static int
render_spool(struct queue *q, struct buf *out)
{
	static const char *const help[][2] = {
		{ "spoold_domain_messages", "Messages queued for the domain." },
		{ "spoold_domain_bytes", "Bytes queued for the domain." },
		{ "spoold_domain_oldest_age_seconds",
		    "Age of the domain's oldest queued message: mail stuck for it." },
	};
	struct spool_stats st;
	int failed = 0;

	if (queue_stats(q, &st) == SPOOL_OK)
		render_spool_stats(out, &st);
	else
		failed = 1;
	for (int i = 0; i < 3; i++) {
		struct domain_pass p = { out, i, (int64_t)time(NULL) };

		metrics_family(out, help[i][0], "gauge", help[i][1]);
		if (queue_domains(q, render_domain, &p) != SPOOL_OK)
			failed = 1;
	}
	if (render_quarantine(q, out) == -1)
		failed = 1;
	return failed ? -1 : 0;
}


int
metrics_spool_render(struct queue *q, struct buf *out)
{
	int rc = render_spool(q, out);

	metrics_family(out, "spoold_spool_read_ok", "gauge",
	    "1 when this scrape could read the spool, 0 when the spool figures are missing.");
	(void)buf_printf(out, "spoold_spool_read_ok %d\n", rc == 0);
	return rc;
}
