/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * inbound.c - spoold's policy for the SMTP port (the engine's ops for
 * "listen smtp" sessions): which recipients to take, the per-address rates,
 * ETRN, and storing each message through the queue before the 250 goes out.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "despool.h"
#include "filter.h"
#include "inbound.h"
#include "log.h"
#include "metrics.h"
#include "pgsql.h"
#include "queue.h"
#include "ratelimit.h"
#include "recipients.h"
#include "runtime.h"
#include "session.h"
#include "verify.h"

/* A message on its way to the spool: the commit request (first: done()
 * gets it back) and what it reads; before that, while the content filters
 * look at it, filter.  session is NULL once the client went. */
struct stored {
	struct commit_req	 req;
	struct session		*session;
	struct smtp_message	*msg;
	struct filter		*filter;
	struct spool_rcpt	*rcpts;
	char			*addrs;
	char			 quarantine[360];	/* the filter's reason, or "" */
	int			 unscanned;		/* a filter was down */
};

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	/* per client address, in the current minute */
	struct rate_table	 etrns, messages;
} inbound;

void
inbound_init(struct ev_loop *loop, struct queue *q)
{
	inbound.loop = loop;
	inbound.queue = q;
}

/* inbound_over_quota - the domain holds as much as its quota allows: more
 * is refused for now (452 4.2.2) until a pull makes room */
static int
inbound_over_quota(const struct domain_conf *d)
{
	struct spool_counters c;

	if ((d->quota_bytes == 0 && d->quota_messages == 0) ||
	    queue_counters(inbound.queue, d->name, &c) != SPOOL_OK)
		return 0;
	return (d->quota_bytes && c.bytes >= d->quota_bytes) ||
	    (d->quota_messages && c.messages >= d->quota_messages);
}

/* A recipient whose answer takes time: its lookup in PostgreSQL, then
 * (recipients verify, when not listed) a probe of the primary, then the
 * filters' judge.  What they need afterwards is kept here (the engine
 * keeps m as it is while it waits). */
struct pending {
	struct verify_wait		 wait;
	struct session			*in;		/* set once asked */
	const struct smtp_message	*m;
	struct smtp_rcpt		 r;
	struct pgsql_lookup		*lookup;	/* under way, or NULL */
	int				 need_lookup;	/* check_rcpt: ask PostgreSQL */
	int				 need_probe;	/* check_rcpt: ask the primary */
	int				 probing;	/* verify_ask made */
};

/* the %s of a verification's reply, until the reply is sent */
static char verify_text[VERIFY_TEXT_MAX];

/* A domain's list (recipients FILE or pgsql:FILE) on an address. */
enum listed { LISTED, NOT_LISTED, NO_LIST, LOOKUP_NEEDED, LOOKUP_DOWN };

static enum listed
rcpt_listed(const struct domain_conf *d, const struct smtp_rcpt *r)
{
	int cached;

	if (d->recipients != NULL)
		return recipients_match(d->recipients, r->to.local, r->to.domain) ? LISTED : NOT_LISTED;
	if (d->recipients_map == NULL)
		return NO_LIST;
	if ((cached = pgsql_lookup_cached(d->recipients_map, r->to.local, r->to.domain)) != -1) {
		metrics_inc(MC_PGSQL_LOOKUP_CACHED);
		return cached ? LISTED : NOT_LISTED;
	}
	return pgsql_lookup_ready(d->recipients_map) ? LOOKUP_NEEDED : LOOKUP_DOWN;
}

/* rcpt_verify - recipients verify: what is known of r without a probe;
 * *ask (NULL: no probe may start, as for a recipient a filter adds) is
 * set when a probe must decide */
static enum smtp_reply_id
rcpt_verify(struct session *in, const struct domain_conf *d, const struct smtp_rcpt *r,
    const char **reply_arg, int *ask)
{
	enum verify_status st = verify_lookup(in->rt, d, r->to.local, r->to.domain,
	    smtp_session_id(in->smtp), verify_text, sizeof(verify_text));

	if (st == VERIFY_ASK && ask != NULL) {
		*ask = 1;
		return R_RCPT_OK;	/* for now: inbound_judge_rcpt asks */
	}
	*reply_arg = verify_text;
	return verify_reply(st);
}

/* rcpt_unlisted - r is not on the list (or the list cannot say, id the
 * reply for that): asked of the primary with recipients verify, else
 * refused now, never accepted and bounced later */
static enum smtp_reply_id
rcpt_unlisted(struct session *in, const struct domain_conf *d, const struct smtp_rcpt *r,
    enum smtp_reply_id id, const char **reply_arg, int *probe)
{
	return d->recipients_verify ? rcpt_verify(in, d, r, reply_arg, probe) : id;
}

/* rcpt_policy - whether spoold takes r: the one rule for RCPT and for the
 * recipients a content filter adds (lookup and probe NULL: nothing may
 * be asked, what is not known is refused).  *lookup or *probe set: the
 * answer waits for inbound_judge_rcpt. */
static enum smtp_reply_id
rcpt_policy(struct session *in, const struct smtp_rcpt *r, const char **reply_arg,
    int *lookup, int *probe)
{
	const struct spoold_rt *rt = in->rt;
	const struct domain_conf *d = spoold_conf_domain(rt->conf, r->to.domain);
	enum smtp_reply_id id = R_RCPT_OK;

	/* Not in the copy of the database's domains while it is down: maybe
	 * a customer added since, so "try later", never a 5xx. */
	if (d == NULL)
		return rt->conf->domains_map != NULL && !pgsql_domains_current(rt->conf) ? R_LOOKUP_TEMP :
		    R_RELAY_DENIED;
	switch (rcpt_listed(d, r)) {
	case LISTED:
		break;
	case NO_LIST:	/* recipients any, or verify alone */
		if (d->recipients_verify)
			id = rcpt_verify(in, d, r, reply_arg, probe);
		break;
	case NOT_LISTED:
		id = rcpt_unlisted(in, d, r, R_UNKNOWN_USER, reply_arg, probe);
		break;
	case LOOKUP_NEEDED:
		if (lookup == NULL)
			return R_LOOKUP_TEMP;
		*lookup = 1;	/* inbound_judge_rcpt asks */
		break;
	case LOOKUP_DOWN:	/* the primary may still know it */
		id = rcpt_unlisted(in, d, r, R_LOOKUP_TEMP, reply_arg, probe);
		break;
	}
	if (id != R_RCPT_OK)
		return id;
	if (inbound_over_quota(d)) {
		*reply_arg = d->name;
		return R_QUOTA;
	}
	return R_RCPT_OK;
}

static enum smtp_reply_id
inbound_check_rcpt(void *arg, struct smtp_session *s, const struct smtp_rcpt *r,
    const char **reply_arg)
{
	struct session *in = arg;
	struct pending *p;
	enum smtp_reply_id id;
	int lookup = 0, probe = 0;

	free(in->pending);	/* made for a recipient the engine did not take */
	in->pending = NULL;
	if ((id = rcpt_policy(in, r, reply_arg, &lookup, &probe)) != R_RCPT_OK || (!lookup && !probe))
		return id;
	/* room for the answer now, when a refusal can still be said */
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return R_NO_MEMORY;
	p->need_lookup = lookup;
	p->need_probe = probe;
	in->pending = p;
	return R_RCPT_OK;
}

static void inbound_filter_client(struct smtp_session *, struct filter_client *, char *, size_t);
static void inbound_rcpt_judged(void *, enum smtp_reply_id, const char *);

static int inbound_judge_filters(struct session *, struct smtp_session *,
    const struct smtp_message *, const struct smtp_rcpt *);

/* pending_done - the recipient's lookups are over: a refusal now, else
 * the filters' judge, if any */
static void
pending_done(struct pending *p, enum smtp_reply_id id, const char *text)
{
	struct session *in = p->in;
	const struct smtp_message *m = p->m;
	struct smtp_rcpt r = p->r;

	in->pending = NULL;
	free(p);
	if (id == R_RCPT_OK && inbound_judge_filters(in, in->smtp, m, &r))
		return;
	smtp_session_rcpt_done(in->smtp, id, text);
}

static void
inbound_rcpt_verified(void *arg, enum smtp_reply_id id, const char *text)
{
	pending_done(arg, id, text);
}

/* pending_probe - ask the primary (verify_lookup then verify_ask, as
 * verify.h wants them: one after the other) */
static void
pending_probe(struct pending *p)
{
	struct session *in = p->in;
	const struct domain_conf *d = spoold_conf_domain(in->rt->conf, p->r.to.domain);
	const char *reply_arg = NULL;
	enum smtp_reply_id id;
	int ask = 0;

	if ((id = rcpt_verify(in, d, &p->r, &reply_arg, &ask)) != R_RCPT_OK || !ask) {
		pending_done(p, id, reply_arg);
		return;
	}
	p->probing = 1;
	verify_ask(&p->wait, in->rt, d, p->r.to.local, p->r.to.domain, smtp_session_id(in->smtp),
	    inbound_rcpt_verified, p);
}

/* inbound_looked_up - PostgreSQL's answer on the recipient waiting */
static void
inbound_looked_up(void *arg, int found)
{
	struct pending *p = arg;
	const struct domain_conf *d = spoold_conf_domain(p->in->rt->conf, p->r.to.domain);

	p->lookup = NULL;
	if (found == 1)
		pending_done(p, inbound_over_quota(d) ? R_QUOTA : R_RCPT_OK, d->name);
	else if (d->recipients_verify)	/* not listed, or no answer: the primary may know */
		pending_probe(p);
	else
		pending_done(p, found == 0 ? R_UNKNOWN_USER : R_LOOKUP_TEMP, NULL);
}

/* inbound_judge_rcpt - what takes time before a recipient's 250, as
 * check_rcpt left it: its lookup in PostgreSQL, a probe of the primary;
 * then the content filters */
static int
inbound_judge_rcpt(void *arg, struct smtp_session *s, const struct smtp_message *m,
    const struct smtp_rcpt *r)
{
	struct session *in = arg;
	struct pending *p = in->pending;

	if (p == NULL || p->in != NULL)
		return inbound_judge_filters(in, s, m, r);
	p->in = in;		/* asked */
	p->m = m;
	p->r = *r;
	if (p->need_lookup) {
		const struct domain_conf *d = spoold_conf_domain(in->rt->conf, r->to.domain);

		p->lookup = pgsql_lookup(d->recipients_map, r->to.local, r->to.domain,
		    inbound_looked_up, p);
		return 1;
	}
	p->probing = 1;
	verify_ask(&p->wait, in->rt, spoold_conf_domain(in->rt->conf, r->to.domain), r->to.local,
	    r->to.domain, smtp_session_id(s), inbound_rcpt_verified, p);
	return 1;
}

/* inbound_judge_filters - the content filters that answer at RCPT judge r
 * before its 250, so a refusal is a 5xx to this recipient, never a
 * recipient dropped after the 250 */
static int
inbound_judge_filters(struct session *in, struct smtp_session *s, const struct smtp_message *m,
    const struct smtp_rcpt *r)
{
	struct filter_client cl;
	char tls[128];

	if (!filter_rcpt_wanted(in->rt, r))
		return 0;
	inbound_filter_client(s, &cl, tls, sizeof(tls));
	/* no queue id before DATA: the session's, as in the session's log lines */
	in->judging = filter_rcpt_start(inbound.loop, in->rt, &cl, m->helo, &m->mail, r,
	    smtp_session_id(s), inbound_rcpt_judged, in);
	return in->judging != NULL;	/* out of memory: taken without them */
}

/* filter_rcpt_ok - may a content filter add r.  The message is accepted
 * already, so nothing can be asked now.  Where the domain's list cannot
 * answer (the database down or the address not cached, the primary not
 * asked) the filter, the postmaster's own, is trusted as Postfix trusts a
 * milter's recipients: better the mail than the recipient lost.  What is
 * known not to be taken (no such domain, a 5xx, the quota) is left out. */
static enum filter_added
filter_rcpt_ok(void *arg, const struct smtp_rcpt *r)
{
	struct stored *st = arg;
	const struct spoold_rt *rt = st->session->rt;
	const struct domain_conf *d;
	const char *reply_arg = NULL;

	switch (rcpt_policy(st->session, r, &reply_arg, NULL, NULL)) {
	case R_RCPT_OK:
		return FILTER_ADDED_TAKEN;
	case R_LOOKUP_TEMP:
	case R_VERIFY_UNKNOWN:
	case R_VERIFY_BUSY:
		/* rcpt_policy said so before its quota check: the quota
		 * still refuses (452 at RCPT) */
		d = spoold_conf_domain(rt->conf, r->to.domain);
		return d != NULL && !inbound_over_quota(d) ? FILTER_ADDED_UNCHECKED :
		    FILTER_ADDED_REFUSED;
	default:
		return FILTER_ADDED_REFUSED;
	}
}

static void
inbound_rcpt_judged(void *arg, enum smtp_reply_id id, const char *line)
{
	struct session *in = arg;

	in->judging = NULL;
	smtp_session_rcpt_done(in->smtp, id, line);
}

static enum smtp_reply_id
inbound_check_mail(void *arg, struct smtp_session *s, const struct smtp_mail *m)
{
	struct session *in = arg;

	if (!queue_accepting(inbound.queue))
		return R_SPOOL_FULL;
	if (rate_exceeded(&inbound.messages, in->addr, in->rt->conf->rate_messages,
	    ev_now(inbound.loop)))
		return R_RATE_MESSAGES;
	return R_MAIL_OK;
}

static uint64_t
inbound_new_id(void *arg)
{
	return queue_new_id(inbound.queue);
}

static int
stored_read_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct stored *st = arg;

	return msgbody_read(&st->msg->body, off, dst, len);
}

static void
stored_free(struct stored *st)
{
	smtp_message_free(st->msg);
	free(st->rcpts);
	free(st->addrs);
	free(st);
}

/* A message's lines, in Postfix's forms, so pflogsumm and a postmaster's
 * "grep ID mail.log" read them as they read Postfix's:
 *   smtpd:   ID: client=unknown[ADDR], session=SID     (received, with the
 *            link to the session's own lines)
 *   cleanup: ID: message-id=<...>
 *            ID: milter-reject|milter-discard|milter-hold|reject:
 *                END-OF-MESSAGE from unknown[ADDR]: TEXT; from=<> to=<> ...
 *   qmgr:    ID: from=<SENDER>, size=N, nrcpt=N (queue active)
 * The removal and the deliveries follow from the queue and despool. */

static const char *
stored_sender(const struct smtp_message *m, char *dst, size_t len)
{
	char addr[SMTP_PATH_MAX * 2 + 2] = "";

	if (!m->mail.from.null)
		snprintf(addr, sizeof(addr), "%s@%s", m->mail.from.local, m->mail.from.domain);
	return log_escape(dst, len, addr, sizeof(addr));
}

/* stored_log_client - the message's first line, once its data is in */
static void
stored_log_client(const struct smtp_message *m)
{
	log_role(LOG_SMTPD, "%016llx: client=unknown[%s], session=%016llx",
	    (unsigned long long)m->id, m->client, (unsigned long long)m->session);
}

/* stored_log_verdict - what became of it before the queue, as KIND */
static void
stored_log_verdict(const struct stored *st, const char *kind, const char *text)
{
	const struct smtp_message *m = st->msg;
	char from[LOG_ESCAPE_SIZE(SMTP_PATH_MAX * 2 + 2)], to[LOG_ESCAPE_SIZE(SMTP_PATH_MAX * 2 + 2)];
	char addr[SMTP_PATH_MAX * 2 + 2] = "", helo[LOG_ESCAPE_SIZE(64)], esc[LOG_ESCAPE_SIZE(300)];

	if (m->nrcpts > 0)
		snprintf(addr, sizeof(addr), "%s@%s", m->rcpts[0].to.local, m->rcpts[0].to.domain);
	log_role(LOG_CLEANUP, "%016llx: %s: END-OF-MESSAGE from unknown[%s]: %s; from=<%s> to=<%s> "
	    "proto=ESMTP helo=<%s>", (unsigned long long)m->id, kind, m->client,
	    log_escape(esc, sizeof(esc), text, 300), stored_sender(m, from, sizeof(from)),
	    log_escape(to, sizeof(to), addr, sizeof(addr)),
	    log_escape(helo, sizeof(helo), m->helo, 64));
}

/* stored_log_queued - committed: the message-id and the envelope */
static void
stored_log_queued(const struct stored *st, const char *note)
{
	const struct smtp_message *m = st->msg;
	char from[LOG_ESCAPE_SIZE(SMTP_PATH_MAX * 2 + 2)], mid[200], esc[LOG_ESCAPE_SIZE(200)];

	(void)msgbody_header(&m->body, "Message-ID", mid, sizeof(mid));
	log_role(LOG_CLEANUP, "%016llx: message-id=%s", (unsigned long long)m->id,
	    mid[0] != '\0' ? log_escape(esc, sizeof(esc), mid, sizeof(mid)) : "<>");
	log_role(LOG_QMGR, "%016llx: from=<%s>, size=%llu, nrcpt=%zu (%s)", (unsigned long long)m->id,
	    stored_sender(m, from, sizeof(from)), (unsigned long long)m->body.size,
	    st->req.msg.env.nrcpts, note);
}

/* stored_count - a 250 after DATA for st's message, in the totals */
static void
stored_count(const struct stored *st)
{
	metrics_inc(MC_MESSAGES_ACCEPTED);
	metrics_add(MC_BYTES_ACCEPTED, st->msg->body.size);
	metrics_add(MC_RECIPIENTS_ACCEPTED, st->msg->nrcpts);
	if (st->quarantine[0] != '\0')
		metrics_inc(MC_QUARANTINED_ARRIVAL);
}

static void
inbound_commit_done(struct commit_req *r)
{
	struct stored *st = (struct stored *)r;
	struct session *in = st->session;
	char id[20];

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)st->msg->id);
	if (r->result != SPOOL_OK) {
		char why[200];

		snprintf(why, sizeof(why), "%s %s", smtp_reply_get(r->result == SPOOL_EFULL ?
		    R_SPOOL_FULL : R_STORAGE_ERROR)->status, spool_strerror(r->result));
		stored_log_verdict(st, "reject", why);
	} else {
		stored_count(st);
		if (st->quarantine[0] != '\0')
			stored_log_verdict(st, "milter-hold", st->quarantine);
		stored_log_queued(st, st->quarantine[0] != '\0' ? "quarantined" :
		    st->unscanned ? "queue active, not scanned" :
		    in == NULL ? "queue active, the client left before the reply" : "queue active");
	}
	if (in != NULL) {
		in->policy = NULL;
		if (r->result == SPOOL_OK)
			smtp_session_message_done(in->smtp, R_QUEUED, id);
		else
			smtp_session_message_done(in->smtp,
			    r->result == SPOOL_EFULL ? R_SPOOL_FULL : R_STORAGE_ERROR, NULL);
	}
	stored_free(st);
}

/* archive_of - the archive-to address of recipient i's domain, when no
 * recipient before it (or the archive itself) already brings it */
static const char *
archive_of(const struct spoold_rt *rt, const struct smtp_message *m, size_t i)
{
	const struct domain_conf *d = spoold_conf_domain(rt->conf, m->rcpts[i].to.domain), *o;
	char addr[SMTP_PATH_MAX * 2 + 2];

	if (d == NULL || d->archive_to == NULL)
		return NULL;
	for (size_t j = 0; j < m->nrcpts; j++) {
		snprintf(addr, sizeof(addr), "%s@%s", m->rcpts[j].to.local, m->rcpts[j].to.domain);
		if (strcmp(addr, d->archive_to) == 0)
			return NULL;	/* the archive is a recipient already */
		if (j < i && (o = spoold_conf_domain(rt->conf, m->rcpts[j].to.domain)) != NULL &&
		    o->archive_to != NULL && strcmp(o->archive_to, d->archive_to) == 0)
			return NULL;	/* added for an earlier recipient */
	}
	return d->archive_to;
}

/* stored_archives - one more recipient per archive-to of the recipients'
 * domains: the same stored message, queued under the archive's own domain;
 * NOTIFY=NEVER, so the sender never hears of the archive */
static size_t
stored_archives(struct stored *st, size_t at, size_t each)
{
	const struct smtp_message *m = st->msg;
	size_t n = 0, nr = m->nrcpts;

	for (size_t i = 0; i < nr; i++) {
		const char *a = st->session != NULL ? archive_of(st->session->rt, m, i) : NULL;
		size_t k = at + n;

		if (a == NULL)
			continue;
		snprintf(st->addrs + each * (k + 1), each, "%s", a);
		st->rcpts[k].addr = st->addrs + each * (k + 1);
		st->rcpts[k].orcpt_type = st->rcpts[k].orcpt = "";
		st->rcpts[k].notify = NOTIFY_NEVER;
		n++;
	}
	return n;
}

/* stored_envelope - the spool's view of the message, as the filters left
 * it, with the archive copies; -1 when out of memory */
static int
stored_envelope(struct stored *st)
{
	struct smtp_message *m = st->msg;
	struct spool_envelope *e;
	size_t each = SMTP_PATH_MAX * 2 + 2, off = 0, room = m->nrcpts * 2;

	/* room for an archive per recipient at most */
	if ((st->rcpts = calloc(room ? room : 1, sizeof(*st->rcpts))) == NULL ||
	    (st->addrs = malloc(each * (room + 1))) == NULL)
		return -1;
	e = &st->req.msg.env;
	e->id = m->id;
	e->arrival = m->arrival;
	e->size = m->body.size;
	e->flags = (m->mail.smtputf8 ? ENV_SMTPUTF8 : 0) |
	    (m->mail.body == BODY_8BITMIME ? ENV_8BITMIME : 0) | (m->eight_bit ? ENV_8BIT_SEEN : 0) |
	    (st->unscanned && st->quarantine[0] == '\0' ? ENV_UNSCANNED : 0);	/* held anyway */
	e->ret = m->mail.ret;
	e->sender = st->addrs;
	if (m->mail.from.null)
		st->addrs[0] = '\0';
	else
		snprintf(st->addrs, each, "%s@%s", m->mail.from.local, m->mail.from.domain);
	e->envid = m->mail.envid;
	e->client = m->client;
	e->helo = m->helo;
	for (size_t i = 0; i < m->nrcpts; i++) {
		off += each;
		snprintf(st->addrs + off, each, "%s@%s", m->rcpts[i].to.local, m->rcpts[i].to.domain);
		st->rcpts[i].addr = st->addrs + off;
		st->rcpts[i].orcpt_type = m->rcpts[i].orcpt_type;
		st->rcpts[i].orcpt = m->rcpts[i].orcpt;
		st->rcpts[i].notify = m->rcpts[i].notify;
	}
	e->rcpts = st->rcpts;
	e->nrcpts = m->nrcpts + stored_archives(st, m->nrcpts, each);
	st->req.kind = COMMIT_STORE;
	st->req.msg.read_body = stored_read_body;
	st->req.msg.body_arg = st;
	st->req.msg.quarantine = st->quarantine[0] != '\0' ? st->quarantine : NULL;
	st->req.done = inbound_commit_done;
	return 0;
}

/* stored_submit - to the queue; the reply comes with the commit */
static void
stored_submit(struct stored *st)
{
	if (stored_envelope(st) == -1) {
		struct session *in = st->session;

		stored_free(st);
		in->policy = NULL;
		smtp_session_message_done(in->smtp, R_NO_MEMORY, NULL);
		return;
	}
	queue_submit(inbound.queue, &st->req);
}

/* inbound_filtered - the content filters' verdict on st's message */
static void
inbound_filtered(void *arg, const struct filter_outcome *o)
{
	struct stored *st = arg;
	struct session *in = st->session;
	char id[20];

	st->filter = NULL;
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)st->msg->id);
	switch (o->action) {
	case FILTER_STORE:
		snprintf(st->quarantine, sizeof(st->quarantine), "%s", o->quarantine);
		st->unscanned = o->unscanned;
		stored_submit(st);
		return;
	case FILTER_DISCARD:
		stored_log_verdict(st, "milter-discard", "milter triggers DISCARD action");
		stored_count(st);
		in->policy = NULL;
		stored_free(st);
		smtp_session_message_done(in->smtp, R_QUEUED, id);	/* RFC: 250, then nothing */
		return;
	case FILTER_REFUSE:
		{
			char why[400];
			const char *line = o->reply == R_FILTER_REPLY ? o->line : NULL;

			smtp_reply_text(why, sizeof(why), o->reply, 1, &line, 1);
			stored_log_verdict(st, "milter-reject", why);
		}
		in->policy = NULL;
		stored_free(st);
		smtp_session_message_done(in->smtp, o->reply, o->reply == R_FILTER_REPLY ?
		    o->line : NULL);
		return;
	}
}

/* inbound_filter_client - what the filters are told of the client */
static void
inbound_filter_client(struct smtp_session *s, struct filter_client *cl, char *tls, size_t len)
{
	const struct sockaddr *peer = smtp_session_peer(s);
	char *colon;

	cl->addr = smtp_session_peer_text(s);
	cl->port = sockaddr_port(peer);
	cl->family = peer->sa_family == AF_INET6 ? '6' : '4';
	cl->tls_version = cl->cipher = "";
	if (smtp_session_tls_info(s, tls, len) != NULL) {
		cl->tls_version = tls;
		if ((colon = strchr(tls, ':')) != NULL) {
			*colon = '\0';
			cl->cipher = colon + 1;
		}
	}
}

static void
inbound_message(void *arg, struct smtp_session *s, struct smtp_message *m)
{
	struct session *in = arg;
	struct stored *st = calloc(1, sizeof(*st));
	struct filter_client cl;
	char tls[128];

	if (st == NULL) {
		smtp_message_free(m);
		smtp_session_message_done(s, R_NO_MEMORY, NULL);
		return;
	}
	st->msg = m;
	st->session = in;
	in->policy = st;
	stored_log_client(m);
	if (!filter_wanted(in->rt, m)) {
		stored_submit(st);
		return;
	}
	inbound_filter_client(s, &cl, tls, sizeof(tls));
	if ((st->filter = filter_start(inbound.loop, in->rt, &cl, m, filter_rcpt_ok,
	    inbound_filtered, st)) == NULL) {
		in->policy = NULL;
		stored_free(st);
		smtp_session_message_done(s, R_NO_MEMORY, NULL);
	}
}

static void
inbound_closed(void *arg, struct smtp_session *s)
{
	struct session *in = arg;
	struct stored *st = in->policy;

	if (in->judging != NULL)	/* the client went before the answer */
		filter_rcpt_cancel(in->judging);
	in->judging = NULL;
	if (in->pending != NULL) {
		struct pending *p = in->pending;

		if (p->probing)
			verify_cancel(&p->wait);
		pgsql_lookup_cancel(p->lookup);
		free(p);
		in->pending = NULL;
	}
	if (st != NULL && st->filter != NULL) {	/* never acknowledged: nothing is lost */
		filter_cancel(st->filter);
		log_role(LOG_CLEANUP, "%016llx: not stored: the client left while the filters looked at it",
		    (unsigned long long)st->msg->id);
		stored_free(st);
	} else if (st != NULL)
		st->session = NULL;	/* stored all the same */
	session_closed(in);
}

/* etrn_allowed - RFC 1985: only the domain's etrn-from addresses may ask */
static int
etrn_allowed(const struct domain_conf *d, const struct sockaddr *peer)
{
	for (size_t i = 0; i < d->n_etrn_from; i++)
		if (cidr_match(&d->etrn_from[i], peer))
			return 1;
	return 0;
}

/* etrn_covers - "@name" asks for name and its subdomains, on label
 * boundaries only (a.example.com, never notexample.com) */
static int
etrn_covers(const char *domain, const char *name, int subdomains)
{
	size_t dl = strlen(domain), nl = strlen(name);

	if (strcmp(domain, name) == 0)
		return 1;
	return subdomains && dl > nl && domain[dl - nl - 1] == '.' && strcmp(domain + dl - nl, name) == 0;
}


/* What one ETRN did across the domains it named. */
struct etrn_tally {
	int			 matched, started, unable;
	unsigned long long	 total;
};

/* etrn_domain - start d's delivery run if peer may ask for it */
static void
etrn_domain(const struct domain_conf *d, struct spoold_rt *rt, const struct sockaddr *peer,
    struct etrn_tally *t, const char **reason)
{
	unsigned long long queued;

	/* an unknown and a forbidden domain get the same 459 */
	if (d == NULL || !etrn_allowed(d, peer))
		return;
	t->matched++;
	switch (despool_start(d, rt, peer, &queued, reason)) {
	case DESPOOL_STARTED:
	case DESPOOL_JOINED:
		t->started++;
		t->total += queued;
		break;
	case DESPOOL_EMPTY:
		break;
	case DESPOOL_NO_ROUTE:
	case DESPOOL_FAILED:
		t->unable++;
		break;
	}
}

/* etrn_nodes - "#queue" is its domains; "@name" every domain on or under
 * name; a plain name that one domain */
static void
etrn_nodes(struct spoold_rt *rt, const char *node, const struct sockaddr *peer,
    struct etrn_tally *t, const char **reason)
{
	const struct spoold_conf *cf = rt->conf;
	const struct queue_conf *q;

	if (node[0] == '#') {
		if ((q = spoold_conf_queue(cf, node + 1)) != NULL)
			for (size_t i = 0; i < q->n_domains; i++)
				etrn_domain(spoold_conf_domain(cf, q->domains[i]), rt, peer, t, reason);
	} else if (node[0] == '@') {
		for (size_t i = 0; i < cf->n_domains; i++)
			if (etrn_covers(cf->domains[i].name, node + 1, 1))
				etrn_domain(&cf->domains[i], rt, peer, t, reason);
	} else
		etrn_domain(spoold_conf_domain(cf, node), rt, peer, t, reason);
}

static enum smtp_reply_id
inbound_etrn(void *arg, struct smtp_session *s, const char *node, char *count, size_t countlen,
    const char **reason)
{
	struct session *in = arg;
	struct etrn_tally t = { 0 };

	if (rate_exceeded(&inbound.etrns, in->addr, in->rt->conf->etrn_rate, ev_now(inbound.loop)))
		return R_ETRN_RATE;
	etrn_nodes(in->rt, node, smtp_session_peer(s), &t, reason);
	if (t.matched == 0 && in->rt->conf->domains_map != NULL && !pgsql_domains_current(in->rt->conf)) {
		*reason = "the customer database cannot be reached now";	/* maybe a new one */
		return R_ETRN_UNABLE;
	}
	if (t.matched == 0)
		return R_ETRN_DENIED;
	if (t.started == 0)
		return t.unable ? R_ETRN_UNABLE : R_ETRN_NONE;
	snprintf(count, countlen, "%llu", t.total);
	return R_ETRN_COUNT;
}

static const struct smtp_server_ops inbound_ops = {
	.check_mail = inbound_check_mail,
	.check_rcpt = inbound_check_rcpt,
	.judge_rcpt = inbound_judge_rcpt,
	.check_starttls = session_check_starttls,
	.new_id = inbound_new_id,
	.message = inbound_message,
	.closed = inbound_closed,
	.etrn = inbound_etrn,
	.replied = session_replied,
	.client_changed = session_client_changed,
};

static const struct smtp_server_config *
inbound_config(const struct spoold_rt *rt)
{
	return &rt->smtp;
}

const struct session_service inbound_service = {
	.name = "smtp", .ops = &inbound_ops, .config = inbound_config,
};
