/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics.c - the running totals and their exposition text; see metrics.h.
 *
 * Writers: the loop thread (everything but the commit histograms) and the
 * committer thread (those).  Reader: the metrics thread.  Every count is a
 * relaxed atomic; the reply table grows by one slot at a time from the
 * loop, its key written before the slot count is published (release), so
 * the reader never sees half a key.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "metrics.h"

#define RELAXED		__ATOMIC_RELAXED

static const struct {
	const char	*family;	/* consecutive entries share one family */
	const char	*labels;	/* "" for none */
	const char	*help;
} counter_info[MC__COUNT] = {
	[MC_CONNECTIONS_SMTP] = { "spoold_connections_total", "service=\"smtp\"",
	    "Client connections accepted, by listener." },
	[MC_CONNECTIONS_ODMR] = { "spoold_connections_total", "service=\"odmr\"", NULL },
	[MC_MESSAGES_ACCEPTED] = { "spoold_messages_accepted_total", "",
	    "Messages answered 250 after DATA (committed to the spool, or discarded by a filter)." },
	[MC_BYTES_ACCEPTED] = { "spoold_accepted_bytes_total", "",
	    "Bytes of the messages accepted." },
	[MC_RECIPIENTS_ACCEPTED] = { "spoold_recipients_accepted_total", "",
	    "Recipients of the messages accepted." },
	[MC_QUARANTINED_ARRIVAL] = { "spoold_quarantined_total", "stage=\"arrival\"",
	    "Messages put into the quarantine: on arrival, or by a second look." },
	[MC_QUARANTINED_RESCAN] = { "spoold_quarantined_total", "stage=\"rescan\"", NULL },
	[MC_DELIVERY_SENT] = { "spoold_deliveries_total", "status=\"sent\"",
	    "Recipients whose delivery ended (sent, bounced) or was put off (deferred)." },
	[MC_DELIVERY_DEFERRED] = { "spoold_deliveries_total", "status=\"deferred\"", NULL },
	[MC_DELIVERY_BOUNCED] = { "spoold_deliveries_total", "status=\"bounced\"", NULL },
	[MC_DSN_FAILURE] = { "spoold_dsn_total", "type=\"failure\"",
	    "Delivery status notifications queued to senders." },
	[MC_DSN_DELAY] = { "spoold_dsn_total", "type=\"delay\"", NULL },
	[MC_MILTER_PASS] = { "spoold_milter_verdicts_total", "verdict=\"pass\"",
	    "Content filter verdicts, one per filter asked (failed: it could not be asked)." },
	[MC_MILTER_REJECT] = { "spoold_milter_verdicts_total", "verdict=\"reject\"", NULL },
	[MC_MILTER_TEMPFAIL] = { "spoold_milter_verdicts_total", "verdict=\"tempfail\"", NULL },
	[MC_MILTER_REPLY] = { "spoold_milter_verdicts_total", "verdict=\"reply\"", NULL },
	[MC_MILTER_DISCARD] = { "spoold_milter_verdicts_total", "verdict=\"discard\"", NULL },
	[MC_MILTER_QUARANTINE] = { "spoold_milter_verdicts_total", "verdict=\"quarantine\"", NULL },
	[MC_MILTER_FAILED] = { "spoold_milter_verdicts_total", "verdict=\"failed\"", NULL },
	[MC_RUNS_STARTED] = { "spoold_delivery_runs_total", "",
	    "Delivery runs started (ETRN, ATRN, spoolctl flush, backup retries)." },
	[MC_PGSQL_ERRORS] = { "spoold_pgsql_errors_total", "",
	    "PostgreSQL connections lost or refused and queries failed." },
	[MC_PGSQL_ROWS_REJECTED] = { "spoold_pgsql_rows_rejected_total", "",
	    "Domain rows from PostgreSQL left out: invalid, or a domain the file has too." },
	[MC_PGSQL_LOOKUP_FOUND] = { "spoold_pgsql_lookups_total", "result=\"found\"",
	    "Recipient lookups in PostgreSQL (cached: answered from the cache; failed: no answer)." },
	[MC_PGSQL_LOOKUP_NOTFOUND] = { "spoold_pgsql_lookups_total", "result=\"notfound\"", NULL },
	[MC_PGSQL_LOOKUP_FAILED] = { "spoold_pgsql_lookups_total", "result=\"failed\"", NULL },
	[MC_PGSQL_LOOKUP_CACHED] = { "spoold_pgsql_lookups_total", "result=\"cached\"", NULL },
	[MC_VERIFY_DELIVERABLE] = { "spoold_verify_probes_total", "result=\"deliverable\"",
	    "Recipient probes to primaries (recipients verify), by result." },
	[MC_VERIFY_UNDELIVERABLE] = { "spoold_verify_probes_total", "result=\"undeliverable\"", NULL },
	[MC_VERIFY_UNKNOWN] = { "spoold_verify_probes_total", "result=\"unknown\"", NULL },
	[MC_VERIFY_CACHE_HIT] = { "spoold_verify_answers_total", "source=\"cache\"",
	    "RCPTs of verified domains answered without a probe of their own: from the cache, "
	    "from a positive entry due for a refresh (stale: a probe refreshes it in the "
	    "background), by joining a probe in flight, or 450 by the probe limits." },
	[MC_VERIFY_STALE] = { "spoold_verify_answers_total", "source=\"stale\"", NULL },
	[MC_VERIFY_JOINED] = { "spoold_verify_answers_total", "source=\"joined\"", NULL },
	[MC_VERIFY_BUSY] = { "spoold_verify_answers_total", "source=\"limit\"", NULL },
};

static const struct {
	const char	*name;
	const char	*help;
} gauge_info[MG__COUNT] = {
	[MG_SESSIONS] = { "spoold_sessions", "Client connections open now." },
	[MG_START_TIME] = { "spoold_start_time_seconds", "When this spoold started, in Unix time." },
	[MG_PGSQL_DOMAINS_UP] = { "spoold_pgsql_domains_up",
	    "1 when the domains from PostgreSQL are current; 0 when the last good copy is served." },
	[MG_PGSQL_DOMAINS] = { "spoold_pgsql_domains", "Domains in the copy of the PostgreSQL rows served." },
	[MG_PGSQL_DOMAINS_TIME] = { "spoold_pgsql_domains_time_seconds",
	    "When the copy of the PostgreSQL rows served was read, in Unix time." },
};

/* One (service, command, code, status) seen in a reply. */
#define REPLY_SLOTS	512
struct reply_slot {
	char		 service[8];
	char		 command[16];
	char		 status[12];		/* dsn_status(): enhanced, or from the code */
	int		 code;
	uint64_t	 count;
};

/* Histograms: cumulative at render time, per-bucket here. */
static const double batch_bounds[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 };
static const double latency_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5 };
#define BATCH_BUCKETS	(sizeof(batch_bounds) / sizeof(batch_bounds[0]))
#define LATENCY_BUCKETS	(sizeof(latency_bounds) / sizeof(latency_bounds[0]))

static struct {
	uint64_t		 counters[MC__COUNT];
	int64_t			 gauges[MG__COUNT];
	struct reply_slot	 replies[REPLY_SLOTS];
	size_t			 nreplies;		/* published with release */
	uint64_t		 replies_dropped;	/* the table was full */
	uint64_t		 batch[BATCH_BUCKETS + 1];	/* the last: +Inf */
	uint64_t		 batch_sum, batch_count;
	uint64_t		 latency[LATENCY_BUCKETS + 1];
	uint64_t		 latency_usec_sum, latency_count;
} m;

void
metrics_init(void)
{
	metrics_set(MG_START_TIME, (int64_t)time(NULL));
}

void
metrics_inc(enum metrics_counter c)
{
	__atomic_fetch_add(&m.counters[c], 1, RELAXED);
}

void
metrics_add(enum metrics_counter c, uint64_t n)
{
	__atomic_fetch_add(&m.counters[c], n, RELAXED);
}

void
metrics_set(enum metrics_gauge g, int64_t v)
{
	__atomic_store_n(&m.gauges[g], v, RELAXED);
}

/* reply_slot - the slot for this key, made if new; NULL when full */
static struct reply_slot *
reply_slot(const char *service, const char *command, int code, const char *status)
{
	size_t n = m.nreplies;		/* the loop is the only writer */
	struct reply_slot *r;

	for (size_t i = 0; i < n; i++) {
		r = &m.replies[i];
		if (r->code == code && strcmp(r->command, command) == 0 &&
		    strcmp(r->service, service) == 0 && strcmp(r->status, status) == 0)
			return r;
	}
	if (n == REPLY_SLOTS)
		return NULL;
	r = &m.replies[n];
	snprintf(r->service, sizeof(r->service), "%s", service);
	snprintf(r->command, sizeof(r->command), "%s", command);
	snprintf(r->status, sizeof(r->status), "%s", status);
	r->code = code;
	__atomic_store_n(&m.nreplies, n + 1, __ATOMIC_RELEASE);
	return r;
}

void
metrics_reply(const char *service, const char *command, int code, const char *line)
{
	int by_code = strcmp(command, "ETRN") == 0 || strcmp(command, "ATRN") == 0;
	char status[12] = "";
	struct reply_slot *r;

	if (!by_code && code < 400)
		return;
	if (!by_code)	/* the same status as the log's dsn= */
		dsn_status(line, status, sizeof(status));
	if ((r = reply_slot(service, command, code, status)) == NULL)
		__atomic_fetch_add(&m.replies_dropped, 1, RELAXED);
	else
		__atomic_fetch_add(&r->count, 1, RELAXED);
}

/* bucket - the first bucket whose bound holds v (the last: +Inf) */
static size_t
bucket(const double *bounds, size_t n, double v)
{
	size_t i = 0;

	while (i < n && v > bounds[i])
		i++;
	return i;
}

void
metrics_commit(size_t batch, double seconds)
{
	__atomic_fetch_add(&m.batch[bucket(batch_bounds, BATCH_BUCKETS, (double)batch)], 1, RELAXED);
	__atomic_fetch_add(&m.batch_sum, batch, RELAXED);
	__atomic_fetch_add(&m.batch_count, 1, RELAXED);
	__atomic_fetch_add(&m.latency[bucket(latency_bounds, LATENCY_BUCKETS, seconds)], 1, RELAXED);
	__atomic_fetch_add(&m.latency_usec_sum, (uint64_t)(seconds * 1e6), RELAXED);
	__atomic_fetch_add(&m.latency_count, 1, RELAXED);
}

/* ---- rendering (the metrics thread) ---- */

static uint64_t
load(const uint64_t *p)
{
	return __atomic_load_n(p, RELAXED);
}


void
metrics_family(struct buf *out, const char *name, const char *type, const char *help)
{
	(void)buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

const char *
metrics_label(const char *v, char *dst, size_t len)
{
	size_t o = 0;

	for (; *v != '\0' && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"')
			dst[o++] = '\\';
		else if (*v == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
			continue;
		}
		dst[o++] = *v;
	}
	dst[o] = '\0';
	return dst;
}

static void
render_counters(struct buf *out)
{
	for (size_t i = 0; i < MC__COUNT; i++) {
		if (counter_info[i].help != NULL)
			metrics_family(out, counter_info[i].family, "counter", counter_info[i].help);
		(void)buf_printf(out, "%s%s%s%s %llu\n", counter_info[i].family,
		    counter_info[i].labels[0] ? "{" : "", counter_info[i].labels,
		    counter_info[i].labels[0] ? "}" : "", (unsigned long long)load(&m.counters[i]));
	}
	for (size_t i = 0; i < MG__COUNT; i++) {
		metrics_family(out, gauge_info[i].name, "gauge", gauge_info[i].help);
		(void)buf_printf(out, "%s %lld\n", gauge_info[i].name,
		    (long long)__atomic_load_n(&m.gauges[i], RELAXED));
	}
}

/* render_replies - the reply table as three families: ETRN replies and
 * ATRN replies by code, the other refusals by command, code and status */
static void
render_replies(struct buf *out)
{
	static const struct {
		const char *command, *family, *help;
	} fam[] = {
		{ "ETRN", "spoold_etrn_replies_total", "Replies to ETRN (RFC 1985), by code." },
		{ "ATRN", "spoold_atrn_replies_total", "Replies to ATRN (RFC 2645), by code." },
		{ NULL, "spoold_rejections_total",
		    "Refusals (4xx and 5xx replies) by command, code and enhanced status code." },
	};
	size_t n = __atomic_load_n(&m.nreplies, __ATOMIC_ACQUIRE);
	char esc[64];

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		metrics_family(out, fam[f].family, "counter", fam[f].help);
		for (size_t i = 0; i < n; i++) {
			const struct reply_slot *r = &m.replies[i];
			int by_code = strcmp(r->command, "ETRN") == 0 || strcmp(r->command, "ATRN") == 0;

			if (fam[f].command != NULL ? strcmp(r->command, fam[f].command) != 0 : by_code)
				continue;
			if (fam[f].command != NULL)
				(void)buf_printf(out, "%s{service=\"%s\",code=\"%d\"} %llu\n", fam[f].family,
				    r->service, r->code, (unsigned long long)load(&r->count));
			else
				(void)buf_printf(out, "%s{service=\"%s\",command=\"%s\",code=\"%d\","
				    "status=\"%s\"} %llu\n", fam[f].family, r->service,
				    metrics_label(r->command, esc, sizeof(esc)), r->code, r->status,
				    (unsigned long long)load(&r->count));
		}
	}
	metrics_family(out, "spoold_rejections_uncounted_total", "counter",
	    "Replies not counted above because their table was full.");
	(void)buf_printf(out, "spoold_rejections_uncounted_total %llu\n",
	    (unsigned long long)load(&m.replies_dropped));
}

static void
render_histogram(struct buf *out, const char *name, const char *help, const double *bounds,
    size_t nb, const uint64_t *buckets, double sum, uint64_t count)
{
	uint64_t cum = 0;

	metrics_family(out, name, "histogram", help);
	for (size_t i = 0; i < nb; i++) {
		cum += load(&buckets[i]);
		(void)buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
	}
	cum += load(&buckets[nb]);
	/* a commit counted between the two reads must not make +Inf smaller
	 * than a bucket below it */
	if (count < cum)
		count = cum;
	(void)buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
	    (unsigned long long)count, name, sum, name, (unsigned long long)count);
}

static void
render_commits(struct buf *out)
{
	render_histogram(out, "spoold_commit_batch_size",
	    "Requests (messages and changes) per spool commit: group commit at work.",
	    batch_bounds, BATCH_BUCKETS, m.batch, (double)load(&m.batch_sum), load(&m.batch_count));
	render_histogram(out, "spoold_commit_duration_seconds",
	    "Time of one spool commit, fsync included: what a 250 after DATA waits for.",
	    latency_bounds, LATENCY_BUCKETS, m.latency, (double)load(&m.latency_usec_sum) / 1e6,
	    load(&m.latency_count));
}

void
metrics_render(struct buf *out)
{
	render_counters(out);
	render_replies(out);
	render_commits(out);
}
