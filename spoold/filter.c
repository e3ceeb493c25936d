/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * filter.c - the milter chain and what its verdicts do to a message; see
 * filter.h.
 *
 * Each filter sees the message as received (as Postfix's smtpd_milters
 * do); the changes of all of them are applied once the last has answered,
 * in the order the filters came, to a rewritten copy of the message: the
 * header block as a list, then the body (or the replacement a filter sent).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter.h"
#include "headers.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "runtime.h"
#include "smtp_cmd.h"

struct filter {
	struct ev_loop			*loop;
	const struct spoold_rt		*rt;
	struct smtp_message		*m;
	filter_rcpt_cb			*rcpt_ok;
	filter_done_cb			*done;
	void				*arg;
	struct milter_input		 in;
	char				 queue_id[20], sender[SMTP_PATH_MAX * 2 + 2];
	/* the client as the filters are told, copied: the caller's text may
	 * be gone by the time a filter is asked */
	char				 client[64], tls[64], cipher[96];
	char				**rcpts;	/* local@domain, for the filters */
	size_t				 nrcpts;	/* of those, as the filters saw them */
	size_t				 i;		/* the filter being asked */
	struct milter_job		*job;
	struct milter_result		**results;	/* one per filter that passed it */
	size_t				 nresults;
	struct filter_outcome		 out;
	ev_timer			 later;
};

/* One header of the block, as raw lines ("Name: value\r\n", folds and all). */
struct header {
	char	*raw;
	size_t	 len;
};

struct headers {
	struct header	*h;
	size_t		 n;
};

int
filter_wanted(const struct spoold_rt *rt, const struct smtp_message *m)
{
	if (rt->n_milters == 0)
		return 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct domain_conf *d = spoold_conf_domain(rt->conf, m->rcpts[i].to.domain);

		if (d == NULL || d->filter)
			return 1;
	}
	return 0;
}

static void
filter_free(struct filter *f)
{
	if (f->job != NULL)
		milter_cancel(f->job);
	ev_timer_stop(f->loop, &f->later);
	for (size_t i = 0; i < f->nrcpts && f->rcpts != NULL; i++)
		free(f->rcpts[i]);
	free(f->rcpts);
	for (size_t i = 0; i < f->nresults; i++)
		milter_result_free(f->results[i]);
	free(f->results);
	free(f);
}

static void
filter_finish(struct filter *f)
{
	f->done(f->arg, &f->out);
	filter_free(f);
}

static void
filter_refuse(struct filter *f, enum smtp_reply_id id, const char *line)
{
	f->out.action = FILTER_REFUSE;
	f->out.reply = id;
	if (line != NULL)
		snprintf(f->out.line, sizeof(f->out.line), "%s", line);
}

/* ---- rewriting the message ---- */

/* put_crlf_text - p into b with every LF that has no CR before it made a
 * CRLF (a filter's text must not bring the bare LFs refused from clients) */
static int
put_crlf_text(struct buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r') && buf_append(b, "\r", 1) == -1)
			return -1;
		if (buf_append(b, p + i, 1) == -1)
			return -1;
	}
	return 0;
}

static void
headers_free(struct headers *hs)
{
	for (size_t i = 0; i < hs->n; i++)
		free(hs->h[i].raw);
	free(hs->h);
	hs->h = NULL;
	hs->n = 0;
}

static int
headers_insert(struct headers *hs, size_t at, char *raw, size_t len)
{
	struct header *n = realloc(hs->h, (hs->n + 1) * sizeof(*n));

	if (n == NULL)
		return -1;
	hs->h = n;
	if (at > hs->n)
		at = hs->n;
	memmove(&hs->h[at + 1], &hs->h[at], (hs->n - at) * sizeof(*n));
	hs->h[at].raw = raw;
	hs->h[at].len = len;
	hs->n++;
	return 0;
}

/* headers_parse - the header block of body as a list, and where its body
 * starts */
static int
headers_parse(const struct msgbody *body, struct headers *hs, uint64_t *body_off)
{
	struct header_line hl;
	size_t len, pos = 0;
	char *block, *raw;
	int rc;

	if (headers_read(body, &block, &len, body_off) == -1)
		return -1;
	while ((rc = header_next(block, len, &pos, &hl)) == 1) {
		if ((raw = malloc(hl.rawlen)) == NULL) {
			rc = -1;
			break;
		}
		memcpy(raw, hl.raw, hl.rawlen);
		if ((rc = headers_insert(hs, hs->n, raw, hl.rawlen)) == -1) {
			free(raw);
			break;
		}
	}
	free(block);
	return rc;
}

/* header_is - header h is called name (case does not matter) */
static int
header_is(const struct header *h, const char *name)
{
	size_t n = strlen(name);

	return h->len > n && h->raw[n] == ':' && strncasecmp(h->raw, name, n) == 0;
}

/* header_make - "name: value\r\n" with the value's line breaks as CRLF */
static int
header_make(const char *name, const char *value, char **raw, size_t *len)
{
	struct buf b;

	buf_init(&b);
	if (buf_append(&b, name, strlen(name)) == -1 || buf_append(&b, ": ", 2) == -1 ||
	    put_crlf_text(&b, value, strlen(value)) == -1 || buf_append(&b, "\r\n", 2) == -1) {
		buf_free(&b);
		return -1;
	}
	*len = buf_used(&b);
	if ((*raw = malloc(*len)) == NULL) {
		buf_free(&b);
		return -1;
	}
	memcpy(*raw, buf_head(&b), *len);
	buf_free(&b);
	return 0;
}

/* header_change - CHGHEADER: the index-th (1-based) header called name,
 * counted as the filter saw them, our Received: included, which itself is
 * never changed; an empty value deletes the header, one that is not there
 * is added */
static int
header_change(struct headers *hs, const struct milter_change *c)
{
	uint32_t seen = 0;
	char *raw;
	size_t len;

	for (size_t i = 0; i < hs->n; i++) {
		if (!header_is(&hs->h[i], c->name) || ++seen != (c->index ? c->index : 1))
			continue;
		if (i == 0)
			return 0;	/* our Received: stays as it is */
		free(hs->h[i].raw);
		if (c->value[0] == '\0') {
			memmove(&hs->h[i], &hs->h[i + 1], (hs->n - i - 1) * sizeof(hs->h[0]));
			hs->n--;
			return 0;
		}
		hs->h[i].raw = NULL;
		if (header_make(c->name, c->value, &hs->h[i].raw, &hs->h[i].len) == -1)
			return -1;
		return 0;
	}
	if (c->value[0] == '\0' || header_make(c->name, c->value, &raw, &len) == -1)
		return c->value[0] == '\0' ? 0 : -1;
	if (headers_insert(hs, hs->n, raw, len) == -1) {
		free(raw);
		return -1;
	}
	return 0;
}

static int
header_add(struct headers *hs, const struct milter_change *c, size_t at)
{
	char *raw;
	size_t len;

	if (header_make(c->name, c->value, &raw, &len) == -1)
		return -1;
	if (headers_insert(hs, at, raw, len) == -1) {
		free(raw);
		return -1;
	}
	return 0;
}

/* path_of - "<local@domain>" (or without brackets) as a path, canonical */
static int
path_of(const char *arg, const char *verb, struct smtp_rcpt *r, struct smtp_mail *mail)
{
	char line[SMTP_PATH_MAX + 16];
	const char *a = arg[0] == '<' ? arg + 1 : arg;
	size_t n = strcspn(a, ">");

	snprintf(line, sizeof(line), "%s:<%.*s>", verb, (int)n, a);
	if (r != NULL)
		return smtp_parse_rcpt(line, r, 1) == SMTP_PARSE_OK ? 0 : -1;
	return smtp_parse_mail(line, mail, 1) == SMTP_PARSE_OK ? 0 : -1;
}

/* rcpt_add - a filter's new recipient, if spoold would have taken it at
 * RCPT and it is not there yet */
static int
rcpt_add(struct filter *f, const char *arg)
{
	struct smtp_message *m = f->m;
	struct smtp_rcpt r, *n;
	enum filter_added ok = FILTER_ADDED_REFUSED;
	char esc[LOG_ESCAPE_SIZE(100)];

	memset(&r, 0, sizeof(r));
	if (path_of(arg, "TO", &r, NULL) == 0 && r.to.domain[0] != '\0')
		ok = f->rcpt_ok(f->arg, &r);
	if (ok == FILTER_ADDED_REFUSED) {
		log_role(LOG_CLEANUP, "%s: milter: recipient %s not added: not one spoold takes", f->queue_id,
		    log_escape(esc, sizeof(esc), arg, 100));
		return 0;
	}
	if (ok == FILTER_ADDED_UNCHECKED)
		log_role(LOG_CLEANUP, "%s: milter: recipient %s added unchecked: its domain's recipient "
		    "list cannot answer now", f->queue_id, log_escape(esc, sizeof(esc), arg, 100));
	for (size_t i = 0; i < m->nrcpts; i++)
		if (strcmp(m->rcpts[i].to.local, r.to.local) == 0 &&
		    strcmp(m->rcpts[i].to.domain, r.to.domain) == 0)
			return 0;
	if ((n = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(*n))) == NULL)
		return -1;
	m->rcpts = n;
	m->rcpts[m->nrcpts++] = r;
	return 0;
}

static void
rcpt_remove(struct smtp_message *m, size_t i)
{
	memmove(&m->rcpts[i], &m->rcpts[i + 1], (m->nrcpts - i - 1) * sizeof(m->rcpts[0]));
	m->nrcpts--;
}

static void
rcpt_del(struct smtp_message *m, const char *arg)
{
	struct smtp_rcpt r;

	memset(&r, 0, sizeof(r));
	if (path_of(arg, "TO", &r, NULL) == -1)
		return;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (strcmp(m->rcpts[i].to.local, r.to.local) == 0 &&
		    strcmp(m->rcpts[i].to.domain, r.to.domain) == 0) {
			rcpt_remove(m, i);
			return;
		}
}

static void
sender_change(struct smtp_message *m, const char *arg)
{
	struct smtp_mail mail;

	memset(&mail, 0, sizeof(mail));
	if (path_of(arg, "FROM", NULL, &mail) == 0)
		m->mail.from = mail.from;
}

/* apply_changes - one filter's changes to the header list and envelope */
static int
apply_changes(struct filter *f, struct headers *hs, const struct milter_result *r)
{
	for (size_t i = 0; i < r->nchanges; i++) {
		const struct milter_change *c = &r->changes[i];
		int rc = 0;

		switch (c->kind) {
		case MILTER_R_ADDHEADER: rc = header_add(hs, c, hs->n); break;
		case MILTER_R_INSHEADER:	/* never above our Received: */
			rc = header_add(hs, c, c->index < 1 ? 1 : c->index);
			break;
		case MILTER_R_CHGHEADER: rc = header_change(hs, c); break;
		case MILTER_R_ADDRCPT: rc = rcpt_add(f, c->name); break;
		case MILTER_R_DELRCPT: rcpt_del(f->m, c->name); break;
		case MILTER_R_CHGFROM: sender_change(f->m, c->name); break;
		default: break;
		}
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* rewrite - the new message: the header list, the empty line, the body
 * (a filter's replacement, the last one given, or the original's) */
static int
rewrite(struct filter *f, struct headers *hs, uint64_t body_off, const struct buf *newbody)
{
	struct smtp_message *m = f->m;
	struct msgbody nb;
	char chunk[65536];
	int rc = 0;

	msgbody_init(&nb, m->body.spill_dir, m->body.threshold);
	for (size_t i = 0; i < hs->n && rc == 0; i++)
		rc = msgbody_append(&nb, hs->h[i].raw, hs->h[i].len);
	if (rc == 0)
		rc = msgbody_append(&nb, "\r\n", 2);
	if (newbody != NULL) {
		struct buf crlf;

		buf_init(&crlf);
		if (rc == 0 && (rc = put_crlf_text(&crlf, buf_head(newbody), buf_used(newbody))) == 0)
			rc = msgbody_append(&nb, buf_head(&crlf), buf_used(&crlf));
		buf_free(&crlf);
	} else
		for (uint64_t off = body_off; off < m->body.size && rc == 0;) {
			size_t n = m->body.size - off > sizeof(chunk) ? sizeof(chunk) :
			    (size_t)(m->body.size - off);

			if ((rc = msgbody_read(&m->body, off, chunk, n)) == 0)
				rc = msgbody_append(&nb, chunk, n);
			off += n;
		}
	if (rc == -1) {
		msgbody_free(&nb);
		return -1;
	}
	msgbody_free(&m->body);
	m->body = nb;
	return 0;
}

/* last_body - the last replacement body among the results, or NULL */
static const struct buf *
last_body(const struct filter *f)
{
	const struct buf *b = NULL;

	for (size_t i = 0; i < f->nresults; i++)
		if (f->results[i]->body_replaced)
			b = &f->results[i]->body;
	return b;
}

/* refuse_rcpts - the recipients some filter refused at RCPT leave (from
 * the last, so the indexes the filters saw hold); the worst class, or 0 */
static int
refuse_rcpts(struct filter *f)
{
	int worst = 0;

	for (size_t i = f->in.nrcpts; i-- > 0;) {
		int class = 0;

		for (size_t k = 0; k < f->nresults; k++)
			if (f->results[k]->rcpt_rejected[i] > class)
				class = f->results[k]->rcpt_rejected[i];
		if (class == 0)
			continue;
		rcpt_remove(f->m, i);
		worst = class > worst ? class : worst;
	}
	return worst;
}

/* apply_all - every filter's changes, in the filters' order */
static int
apply_all(struct filter *f, struct headers *hs)
{
	for (size_t k = 0; k < f->nresults; k++)
		if (apply_changes(f, hs, f->results[k]) == -1)
			return -1;
	return 0;
}

/* filter_apply - every filter passed it: their recipient refusals and
 * changes, then the rewritten message */
static void
filter_apply(struct filter *f)
{
	struct smtp_message *m = f->m;
	struct headers hs = { NULL, 0 };
	uint64_t body_off = 0;
	int refused = refuse_rcpts(f), changed = 0;

	for (size_t k = 0; k < f->nresults; k++)
		changed |= f->results[k]->nchanges > 0 || f->results[k]->body_replaced;
	if (changed && (headers_parse(&m->body, &hs, &body_off) == -1 ||
	    apply_all(f, &hs) == -1 || rewrite(f, &hs, body_off, last_body(f)) == -1)) {
		log_warnx("%s: out of memory applying a filter's changes", f->queue_id);
		headers_free(&hs);
		filter_refuse(f, R_NO_MEMORY, NULL);
		return;
	}
	headers_free(&hs);
	if (m->nrcpts == 0 && refused) {
		filter_refuse(f, refused == 4 ? R_FILTER_TEMPFAIL : R_FILTER_REJECT, NULL);
		return;
	}
	f->out.action = m->nrcpts == 0 ? FILTER_DISCARD : FILTER_STORE;	/* all removed */
}

/* ---- the chain ---- */

static void filter_next(struct filter *);

/* filter_failed - the filter could not be asked: milter-default-action */
static void
filter_failed(struct filter *f, const char *why)
{
	switch (f->rt->conf->milter_default) {
	case MILTER_DEFAULT_TEMPFAIL:
		log_role(LOG_CLEANUP, "%s: milter %s: unavailable (%s): tempfail", f->queue_id, f->out.by, why);
		filter_refuse(f, R_FILTER_UNAVAILABLE, NULL);
		filter_finish(f);
		return;
	case MILTER_DEFAULT_REJECT:
		log_role(LOG_CLEANUP, "%s: milter %s: unavailable (%s): reject", f->queue_id, f->out.by, why);
		filter_refuse(f, R_FILTER_REJECT, NULL);
		filter_finish(f);
		return;
	case MILTER_DEFAULT_ACCEPT:
		log_role(LOG_CLEANUP, "%s: milter %s: unavailable (%s): accepted without it, marked unscanned",
		    f->queue_id, f->out.by, why);
		f->out.unscanned = 1;
		break;
	}
	f->i++;
	filter_next(f);
}

static const char *
verdict_text(enum milter_verdict v)
{
	switch (v) {
	case MILTER_PASS:	return "pass";
	case MILTER_REJECT:	return "reject";
	case MILTER_TEMPFAIL:	return "tempfail";
	case MILTER_REPLY:	return "reply";
	case MILTER_DISCARD:	return "discard";
	case MILTER_FAILED:	return "failed";
	}
	return "?";
}

/* filter_count - one filter's verdict in the totals */
static void
filter_count(const struct milter_result *r)
{
	static const enum metrics_counter by_verdict[] = {
		[MILTER_PASS] = MC_MILTER_PASS, [MILTER_REJECT] = MC_MILTER_REJECT,
		[MILTER_TEMPFAIL] = MC_MILTER_TEMPFAIL, [MILTER_REPLY] = MC_MILTER_REPLY,
		[MILTER_DISCARD] = MC_MILTER_DISCARD, [MILTER_FAILED] = MC_MILTER_FAILED,
	};

	metrics_inc(r->verdict == MILTER_PASS && r->quarantine[0] != '\0' ?
	    MC_MILTER_QUARANTINE : by_verdict[r->verdict]);
}

static void
filter_verdict(void *arg, struct milter_result *r)
{
	struct filter *f = arg;
	struct milter_result **n;
	char esc[LOG_ESCAPE_SIZE(200)];

	f->job = NULL;
	filter_count(r);
	log_role(LOG_CLEANUP, "%s: milter %s: %s%s%s%s", f->queue_id, f->out.by, verdict_text(r->verdict),
	    r->verdict == MILTER_REPLY ? " " : "", r->verdict == MILTER_REPLY ?
	    log_escape(esc, sizeof(esc), r->reply, 200) : "", r->nchanges || r->body_replaced ?
	    " (with changes)" : "");
	switch (r->verdict) {
	case MILTER_FAILED:
		snprintf(esc, sizeof(esc), "%s", r->reply);
		milter_result_free(r);
		filter_failed(f, esc);
		return;
	case MILTER_REJECT:
	case MILTER_TEMPFAIL:
	case MILTER_REPLY:
		filter_refuse(f, r->verdict == MILTER_REJECT ? R_FILTER_REJECT :
		    r->verdict == MILTER_TEMPFAIL ? R_FILTER_TEMPFAIL : R_FILTER_REPLY, r->reply);
		milter_result_free(r);
		filter_finish(f);
		return;
	case MILTER_DISCARD:
		f->out.action = FILTER_DISCARD;
		milter_result_free(r);
		filter_finish(f);
		return;
	case MILTER_PASS:
		break;
	}
	if ((n = realloc(f->results, (f->nresults + 1) * sizeof(*n))) == NULL) {
		milter_result_free(r);
		filter_refuse(f, R_NO_MEMORY, NULL);
		filter_finish(f);
		return;
	}
	f->results = n;
	f->results[f->nresults++] = r;
	if (r->quarantine[0] != '\0' && f->out.quarantine[0] == '\0') {
		snprintf(f->out.quarantine, sizeof(f->out.quarantine), "milter %s: %s", f->out.by,
		    r->quarantine);
		for (char *c = f->out.quarantine; *c; c++)	/* shown by spoolctl */
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		log_role(LOG_CLEANUP, "%s: milter %s: quarantine: %s", f->queue_id, f->out.by,
		    log_escape(esc, sizeof(esc), r->quarantine, 200));
	}
	f->i++;
	filter_next(f);
}

/* filter_next - ask filter i, or apply what they all said */
static void
filter_next(struct filter *f)
{
	const struct milter_target *t;

	if (f->i >= f->rt->n_milters) {
		snprintf(f->out.by, sizeof(f->out.by), "chain");
		filter_apply(f);
		filter_finish(f);
		return;
	}
	t = &f->rt->milters[f->i];
	snprintf(f->out.by, sizeof(f->out.by), "%s", t->name);
	if ((f->job = milter_start(f->loop, t, &f->in, filter_verdict, f)) == NULL)
		filter_failed(f, "out of memory");
}

static void
filter_later(struct ev_loop *loop, ev_timer *w, int revents)
{
	filter_next(w->data);
}

struct filter *
filter_start(struct ev_loop *loop, const struct spoold_rt *rt, const struct filter_client *cl,
    struct smtp_message *m, filter_rcpt_cb *rcpt_ok, filter_done_cb *done, void *arg)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->rcpts = calloc(m->nrcpts ? m->nrcpts : 1, sizeof(*f->rcpts))) == NULL) {
		free(f);
		return NULL;
	}
	f->loop = loop;
	f->rt = rt;
	f->m = m;
	f->rcpt_ok = rcpt_ok;
	f->done = done;
	f->arg = arg;
	ev_timer_init(&f->later, filter_later, 0., 0.);
	f->later.data = f;
	snprintf(f->queue_id, sizeof(f->queue_id), "%016llx", (unsigned long long)m->id);
	snprintf(f->client, sizeof(f->client), "%s", cl->addr);
	snprintf(f->tls, sizeof(f->tls), "%s", cl->tls_version);
	snprintf(f->cipher, sizeof(f->cipher), "%s", cl->cipher);
	if (!m->mail.from.null)
		snprintf(f->sender, sizeof(f->sender), "%s@%s", m->mail.from.local,
		    m->mail.from.domain);
	for (size_t i = 0; i < m->nrcpts; i++, f->nrcpts++)
		if (asprintf(&f->rcpts[i], "%s@%s", m->rcpts[i].to.local, m->rcpts[i].to.domain) ==
		    -1) {
			f->rcpts[i] = NULL;
			filter_free(f);
			return NULL;
		}
	f->in = (struct milter_input){
		.hostname = rt->conf->hostname, .client_addr = f->client, .client_port = cl->port,
		.client_family = cl->family, .client_name = "unknown", .helo = m->helo,
		.tls_version = f->tls, .cipher = f->cipher, .auth_authen = "",
		.queue_id = f->queue_id, .sender = f->sender,
		.rcpts = (const char *const *)f->rcpts, .nrcpts = m->nrcpts, .body = &m->body,
	};
	ev_timer_start(loop, &f->later);	/* the first filter from the loop */
	return f;
}

void
filter_cancel(struct filter *f)
{
	filter_free(f);
}

/* ---- RCPT time ---- */

struct filter_rcpt {
	struct ev_loop			*loop;
	const struct spoold_rt		*rt;
	filter_rcpt_done_cb		*done;
	void				*arg;
	struct milter_input		 in;
	char				 queue_id[20], sender[SMTP_PATH_MAX * 2 + 2];
	char				 rcpt[SMTP_PATH_MAX * 2 + 2], helo[SMTP_DOMAIN_MAX + 1];
	char				 client[64], tls[64], cipher[64];
	const char			*rcpts[1];
	size_t				 i;
	struct milter_job		*job;
	ev_timer			 later;
	ev_timer			 deadline;	/* for all the filters together */
	double				 judge_for;	/* its length, for the log */
};

/* All the filters' answers to one RCPT within half the idle timeout (at
 * most 60 s): the client waits without a reply meanwhile, and a chain of
 * slow filters must not run into its own session's idle timeout. */
#define RCPT_JUDGE_MAX	60.0

/* Filters that negotiated no replies at RCPT (most content scanners):
 * not asked at RCPT again for RCPT_UNJUDGED_FOR seconds. */
#define RCPT_UNJUDGED_MAX	16
#define RCPT_UNJUDGED_FOR	300.0
static struct {
	char	name[64];
	double	until;
} unjudged[RCPT_UNJUDGED_MAX];

static int
rcpt_unjudged(const char *name, double now)
{
	for (size_t i = 0; i < RCPT_UNJUDGED_MAX; i++)
		if (strcmp(unjudged[i].name, name) == 0 && unjudged[i].until > now)
			return 1;
	return 0;
}

static void
rcpt_unjudged_note(const char *name, double now)
{
	size_t k = 0;

	for (size_t i = 0; i < RCPT_UNJUDGED_MAX; i++) {
		if (strcmp(unjudged[i].name, name) == 0) {
			k = i;
			break;
		}
		if (unjudged[i].until < unjudged[k].until)
			k = i;	/* the oldest note makes room */
	}
	snprintf(unjudged[k].name, sizeof(unjudged[k].name), "%s", name);
	unjudged[k].until = now + RCPT_UNJUDGED_FOR;
}

int
filter_rcpt_wanted(const struct spoold_rt *rt, const struct smtp_rcpt *r)
{
	const struct domain_conf *d;
	double now;

	if (rt->n_milters == 0 || (d = spoold_conf_domain(rt->conf, r->to.domain)) == NULL ||
	    !d->filter)
		return 0;
	now = ev_time();
	for (size_t i = 0; i < rt->n_milters; i++)
		if (!rcpt_unjudged(rt->milters[i].name, now))
			return 1;
	return 0;
}

static void
filter_rcpt_free(struct filter_rcpt *fr)
{
	if (fr->job != NULL)
		milter_cancel(fr->job);
	ev_timer_stop(fr->loop, &fr->later);
	ev_timer_stop(fr->loop, &fr->deadline);
	free(fr);
}

static void
filter_rcpt_finish(struct filter_rcpt *fr, enum smtp_reply_id id, const char *line)
{
	fr->done(fr->arg, id, line);
	filter_rcpt_free(fr);
}

static void filter_rcpt_next(struct filter_rcpt *);

/* rcpt_default - milter-default-action for a filter with no verdict */
static enum smtp_reply_id
rcpt_default(const struct filter_rcpt *fr)
{
	switch (fr->rt->conf->milter_default) {
	case MILTER_DEFAULT_TEMPFAIL: return R_FILTER_UNAVAILABLE;
	case MILTER_DEFAULT_REJECT: return R_FILTER_RCPT_REJECT;
	case MILTER_DEFAULT_ACCEPT: break;
	}
	return R_RCPT_OK;
}

/* filter_rcpt_overdue - no verdict from the filters in time: the filter
 * being asked is given up, the default action decides */
static void
filter_rcpt_overdue(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct filter_rcpt *fr = w->data;
	enum smtp_reply_id id = rcpt_default(fr);

	log_role(LOG_CLEANUP, "%s: milter %s: no verdict at RCPT within %.0fs: %s", fr->queue_id,
	    fr->rt->milters[fr->i < fr->rt->n_milters ? fr->i : 0].name, fr->judge_for,
	    id == R_RCPT_OK ? "accepted without it" :
	    smtp_reply_get(id)->text);
	filter_rcpt_finish(fr, id, NULL);
}

static void
filter_rcpt_verdict(void *arg, struct milter_result *r)
{
	struct filter_rcpt *fr = arg;
	const char *name = fr->rt->milters[fr->i].name;
	char line[sizeof(r->reply)], esc[LOG_ESCAPE_SIZE(200)];
	enum smtp_reply_id id = R_RCPT_OK;

	fr->job = NULL;
	snprintf(line, sizeof(line), "%s", r->reply);
	if (r->verdict == MILTER_FAILED) {
		milter_result_free(r);
		id = rcpt_default(fr);
		log_role(LOG_CLEANUP, "%s: milter %s: unavailable at RCPT (%s): %s", fr->queue_id, name,
		    log_escape(esc, sizeof(esc), line, 200), id == R_RCPT_OK ? "accepted without it" :
		    smtp_reply_get(id)->text);
	} else {
		if (!r->rcpt_judged)
			rcpt_unjudged_note(name, ev_now(fr->loop));
		if (r->verdict == MILTER_REJECT || r->rcpt_rejected[0] == 5)
			id = R_FILTER_RCPT_REJECT;
		else if (r->verdict == MILTER_TEMPFAIL || r->rcpt_rejected[0] == 4)
			id = R_FILTER_RCPT_TEMPFAIL;
		if (r->verdict == MILTER_REPLY || (r->rcpt_rejected[0] && line[0] != '\0'))
			id = R_FILTER_REPLY;
		milter_result_free(r);
		if (id != R_RCPT_OK)
			log_role(LOG_CLEANUP, "%s: milter %s: rcpt <%s> refused: %s", fr->queue_id, name,
			    log_escape(esc, sizeof(esc), fr->rcpt, 200), id == R_FILTER_REPLY ? line :
			    smtp_reply_get(id)->text);
	}
	if (id != R_RCPT_OK) {
		filter_rcpt_finish(fr, id, id == R_FILTER_REPLY ? line : NULL);
		return;
	}
	fr->i++;
	filter_rcpt_next(fr);
}

static void
filter_rcpt_next(struct filter_rcpt *fr)
{
	double now = ev_now(fr->loop);

	while (fr->i < fr->rt->n_milters && rcpt_unjudged(fr->rt->milters[fr->i].name, now))
		fr->i++;
	if (fr->i >= fr->rt->n_milters) {
		filter_rcpt_finish(fr, R_RCPT_OK, NULL);
		return;
	}
	if ((fr->job = milter_start(fr->loop, &fr->rt->milters[fr->i], &fr->in,
	    filter_rcpt_verdict, fr)) == NULL)
		filter_rcpt_finish(fr, R_NO_MEMORY, NULL);
}

static void
filter_rcpt_later(struct ev_loop *loop, ev_timer *w, int revents)
{
	filter_rcpt_next(w->data);
}

struct filter_rcpt *
filter_rcpt_start(struct ev_loop *loop, const struct spoold_rt *rt, const struct filter_client *cl,
    const char *helo, const struct smtp_mail *mail, const struct smtp_rcpt *r, uint64_t queue_id,
    filter_rcpt_done_cb *done, void *arg)
{
	struct filter_rcpt *fr = calloc(1, sizeof(*fr));

	if (fr == NULL)
		return NULL;
	fr->loop = loop;
	fr->rt = rt;
	fr->done = done;
	fr->arg = arg;
	snprintf(fr->queue_id, sizeof(fr->queue_id), "%016llx", (unsigned long long)queue_id);
	if (!mail->from.null)
		snprintf(fr->sender, sizeof(fr->sender), "%s@%s", mail->from.local,
		    mail->from.domain);
	snprintf(fr->rcpt, sizeof(fr->rcpt), "%s@%s", r->to.local, r->to.domain);
	snprintf(fr->helo, sizeof(fr->helo), "%s", helo);
	snprintf(fr->client, sizeof(fr->client), "%s", cl->addr);
	snprintf(fr->tls, sizeof(fr->tls), "%s", cl->tls_version);
	snprintf(fr->cipher, sizeof(fr->cipher), "%s", cl->cipher);
	fr->rcpts[0] = fr->rcpt;
	fr->in = (struct milter_input){
		.hostname = rt->conf->hostname, .client_addr = fr->client, .client_port = cl->port,
		.client_family = cl->family, .client_name = "unknown", .helo = fr->helo,
		.tls_version = fr->tls, .cipher = fr->cipher, .auth_authen = "",
		.queue_id = fr->queue_id, .sender = fr->sender, .rcpts = fr->rcpts, .nrcpts = 1,
		.body = NULL, .rcpt_only = 1,
	};
	ev_timer_init(&fr->later, filter_rcpt_later, 0., 0.);
	fr->later.data = fr;
	ev_timer_start(loop, &fr->later);	/* the first filter from the loop */
	fr->judge_for = (double)rt->conf->timeout_idle / 2;
	if (fr->judge_for > RCPT_JUDGE_MAX || fr->judge_for <= 0)
		fr->judge_for = RCPT_JUDGE_MAX;
	ev_timer_init(&fr->deadline, filter_rcpt_overdue, fr->judge_for, 0.);
	fr->deadline.data = fr;
	ev_timer_start(loop, &fr->deadline);
	return fr;
}

void
filter_rcpt_cancel(struct filter_rcpt *fr)
{
	filter_rcpt_free(fr);
}
