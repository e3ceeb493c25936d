/*
 * inbound.c - spoold's policy for the SMTP receiver: which recipients to take,
 * connection limits, and storing each message through the committer before
 * the 250 goes out.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "committer.h"
#include "despool.h"
#include "log.h"
#include "ratelimit.h"
#include "recipients.h"
#include "spool.h"
#include "spoold.h"

struct inbound {
	struct inbound		*prev, *next;
	struct smtp_session	*session;
	struct spoold_rt	*rt;
	char			 addr[64];	/* for the per-address count: IPv4, or IPv6 /64 */
	struct stored		*storing;	/* message being committed */
};

/* A message on its way to the spool: the commit request and what it reads. */
struct stored {
	struct commit_req	 req;
	struct smtp_message	*msg;
	struct spool_rcpt	*rcpts;
	char			*addrs;
};

/* inbound_addr_key - what max-connections-per-ip counts: an IPv4 address, or
 * an IPv6 /64, since one host commonly has a whole /64 to send from */
void
inbound_addr_key(const struct sockaddr *sa, char *dst, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct in6_addr net;

	if (sa->sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		sockaddr_text(sa, dst, len);
		return;
	}
	net = s6->sin6_addr;
	memset(net.s6_addr + 8, 0, 8);
	if (inet_ntop(AF_INET6, &net, dst, (socklen_t)len) == NULL || strlen(dst) + 4 > len)
		snprintf(dst, len, "?");
	else
		strcat(dst, "/64");
}

static unsigned
inbound_count_addr(const char *addr)
{
	unsigned n = 0;

	for (struct inbound *in = spoold.sessions; in; in = in->next)
		if (strcmp(in->addr, addr) == 0)
			n++;
	return n;
}

/* inbound_over_quota - the domain holds as much as its quota allows: more
 * is refused for now (452 4.2.2) until a pull makes room */
static int
inbound_over_quota(const struct domain_conf *d)
{
	struct spool_counters c;

	if ((d->quota_bytes == 0 && d->quota_messages == 0) ||
	    spool_domain_counters(spoold.spool, d->name, &c) != SPOOL_OK)
		return 0;
	return (d->quota_bytes && c.bytes >= d->quota_bytes) ||
	    (d->quota_messages && c.messages >= d->quota_messages);
}

static enum smtp_reply_id
inbound_check_rcpt(void *arg, struct smtp_session *s, const struct smtp_rcpt *r,
    const char **reply_arg)
{
	struct inbound *in = arg;
	const struct domain_conf *d = spoold_conf_domain(in->rt->conf, r->to.domain);

	if (d == NULL)
		return R_RELAY_DENIED;
	/* Unknown users are refused now, never accepted and bounced later. */
	if (d->recipients && !recipients_match(d->recipients, r->to.local, r->to.domain))
		return R_UNKNOWN_USER;
	if (inbound_over_quota(d)) {
		*reply_arg = d->name;
		return R_QUOTA;
	}
	return R_RCPT_OK;
}

/* After a commit failed for lack of space, new mail is refused at MAIL
 * (RFC 3463 4.3.1) rather than after its data has been sent, until a commit
 * succeeds again or this long has passed. */
#define SPOOL_FULL_HOLDOFF	30.0

static ev_tstamp spool_full_until;

/* Per client address, in the current minute. */
static struct rate_table etrn_rates, conn_rates, msg_rates;

static enum smtp_reply_id
inbound_check_mail(void *arg, struct smtp_session *s, const struct smtp_mail *m)
{
	struct inbound *in = arg;

	if (ev_now(spoold.loop) < spool_full_until || spoold.drain_only)
		return R_SPOOL_FULL;
	if (rate_exceeded(&msg_rates, in->addr, in->rt->conf->rate_messages, ev_now(spoold.loop)))
		return R_RATE_MESSAGES;
	return R_MAIL_OK;
}

/* inbound_check_starttls - rate-tls: a handshake costs far more than a
 * command (Postfix's smtpd_client_new_tls_session_rate_limit) */
static enum smtp_reply_id
inbound_check_starttls(void *arg, struct smtp_session *s)
{
	struct inbound *in = arg;

	if (rate_exceeded(&rate_tls_handshakes, in->addr, in->rt->conf->rate_tls, ev_now(spoold.loop)))
		return R_TLS_RATE;
	return R__COUNT;
}

static uint64_t
inbound_new_id(void *arg)
{
	return spoold.next_id++;
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

/* stored_log - one line per message, the postmaster's record of it */
static void
stored_log(struct stored *st, const char *status)
{
	const struct smtp_message *m = st->msg;
	char from[SMTP_PATH_MAX * 2 + 8];

	log_escape(from, sizeof(from), st->req.msg.env.sender, SMTP_PATH_MAX);
	log_info("%016llx from=<%s> size=%llu nrcpt=%zu client=%s status=%s",
	    (unsigned long long)m->id, from, (unsigned long long)m->body.size, m->nrcpts,
	    m->client, status);
}

static void
inbound_commit_done(struct commit_req *r)
{
	struct stored *st = (struct stored *)r;
	struct inbound *in = r->owner;
	char id[20];

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)st->msg->id);
	if (r->result == SPOOL_EFULL)
		spool_full_until = ev_now(spoold.loop) + SPOOL_FULL_HOLDOFF;
	else if (r->result == SPOOL_OK)
		spool_full_until = 0;
	else if (r->result == SPOOL_EIO)
		spoold_storage_failed("commit failed with an I/O error");
	stored_log(st, r->result != SPOOL_OK ? spool_strerror(r->result) :
	    in == NULL ? "stored (client gone before the reply)" : "stored");
	if (in != NULL) {
		in->storing = NULL;
		if (r->result == SPOOL_OK)
			smtp_session_message_done(in->session, R_QUEUED, id);
		else
			smtp_session_message_done(in->session,
			    r->result == SPOOL_EFULL ? R_SPOOL_FULL : R_STORAGE_ERROR, NULL);
	}
	stored_free(st);
}

/* stored_new - the spool's view of a received message */
static struct stored *
stored_new(struct smtp_message *m)
{
	struct stored *st = calloc(1, sizeof(*st));
	struct spool_envelope *e;
	size_t each = SMTP_PATH_MAX * 2 + 2, off = 0;

	if (st == NULL || (st->rcpts = calloc(m->nrcpts, sizeof(*st->rcpts))) == NULL ||
	    (st->addrs = malloc(each * (m->nrcpts + 1))) == NULL) {
		if (st)
			free(st->rcpts);
		free(st);
		return NULL;
	}
	st->msg = m;
	e = &st->req.msg.env;
	e->id = m->id;
	e->arrival = m->arrival;
	e->size = m->body.size;
	e->flags = (m->mail.smtputf8 ? ENV_SMTPUTF8 : 0) |
	    (m->mail.body == BODY_8BITMIME ? ENV_8BITMIME : 0) | (m->eight_bit ? ENV_8BIT_SEEN : 0);
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
	e->nrcpts = m->nrcpts;
	st->req.kind = COMMIT_STORE;
	st->req.msg.read_body = stored_read_body;
	st->req.msg.body_arg = st;
	st->req.done = inbound_commit_done;
	return st;
}

static void
inbound_message(void *arg, struct smtp_session *s, struct smtp_message *m)
{
	struct inbound *in = arg;
	struct stored *st = stored_new(m);

	if (st == NULL) {
		smtp_message_free(m);
		smtp_session_message_done(s, R_NO_MEMORY, NULL);
		return;
	}
	st->req.owner = in;
	in->storing = st;
	committer_submit(spoold.committer, &st->req);
}

static void
inbound_closed(void *arg, struct smtp_session *s)
{
	struct inbound *in = arg;

	if (in->storing)
		in->storing->req.owner = NULL;	/* stored all the same */
	if (in->prev)
		in->prev->next = in->next;
	else
		spoold.sessions = in->next;
	if (in->next)
		in->next->prev = in->prev;
	spoold.nsessions--;
	rt_unref(in->rt);
	free(in);
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
etrn_domain(const struct domain_conf *d, const struct sockaddr *peer, struct etrn_tally *t,
    const char **reason)
{
	unsigned long long queued;

	/* an unknown and a forbidden domain get the same 459 */
	if (d == NULL || !etrn_allowed(d, peer))
		return;
	t->matched++;
	switch (despool_start(d, peer, &queued, reason)) {
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
etrn_nodes(const struct spoold_conf *cf, const char *node, const struct sockaddr *peer,
    struct etrn_tally *t, const char **reason)
{
	const struct queue_conf *q;

	if (node[0] == '#') {
		if ((q = spoold_conf_queue(cf, node + 1)) != NULL)
			for (size_t i = 0; i < q->n_domains; i++)
				etrn_domain(spoold_conf_domain(cf, q->domains[i]), peer, t, reason);
	} else if (node[0] == '@') {
		for (size_t i = 0; i < cf->n_domains; i++)
			if (etrn_covers(cf->domains[i].name, node + 1, 1))
				etrn_domain(&cf->domains[i], peer, t, reason);
	} else
		etrn_domain(spoold_conf_domain(cf, node), peer, t, reason);
}

static enum smtp_reply_id
inbound_etrn(void *arg, struct smtp_session *s, const char *node, char *count, size_t countlen,
    const char **reason)
{
	struct inbound *in = arg;
	const struct spoold_conf *cf = in->rt->conf;
	struct etrn_tally t = { 0 };

	if (rate_exceeded(&etrn_rates, in->addr, cf->etrn_rate, ev_now(spoold.loop)))
		return R_ETRN_RATE;
	etrn_nodes(cf, node, smtp_session_peer(s), &t, reason);
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
	.check_starttls = inbound_check_starttls,
	.new_id = inbound_new_id,
	.message = inbound_message,
	.closed = inbound_closed,
	.etrn = inbound_etrn,
};

/* inbound_limit - R__COUNT, or the 421 that the connection limits call for */
static enum smtp_reply_id
inbound_limit(const struct spoold_conf *cf, const char *addr)
{
	if (spoold.stopping)
		return R_SHUTDOWN;
	if (spoold.nsessions >= cf->max_connections)
		return R_TOO_MANY_CONNS;
	if (inbound_count_addr(addr) >= cf->max_connections_ip)
		return R_TOO_MANY_CONNS_IP;
	if (rate_exceeded(&conn_rates, addr, cf->rate_connections, ev_now(spoold.loop)))
		return R_RATE_CONNECTIONS;
	return R__COUNT;
}

void
inbound_accept(int fd, const struct sockaddr *peer)
{
	struct inbound *in = calloc(1, sizeof(*in));
	enum smtp_reply_id refuse;

	if (in == NULL) {
		log_warnx("inbound: out of memory, dropping connection");
		close(fd);
		return;
	}
	inbound_addr_key(peer, in->addr, sizeof(in->addr));
	refuse = inbound_limit(spoold.rt->conf, in->addr);
	in->rt = rt_ref(spoold.rt);
	in->next = spoold.sessions;
	if (in->next)
		in->next->prev = in;
	spoold.sessions = in;
	spoold.nsessions++;
	in->session = smtp_session_new(spoold.loop, fd, peer, &in->rt->smtp, &inbound_ops, in, refuse);
	if (in->session == NULL) {
		log_warnx("inbound: cannot start a session");
		close(fd);
		inbound_closed(in, NULL);
	}
}

void
inbound_shutdown_all(void)
{
	struct inbound *in, *next;

	for (in = spoold.sessions; in; in = next) {
		next = in->next;	/* the session may go away at once */
		smtp_session_shutdown(in->session);
	}
}
