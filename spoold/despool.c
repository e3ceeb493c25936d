/*
 * despool.c - delivery runs; see despool.h.
 *
 * A run takes a snapshot of the domain's message ids (one short read
 * transaction), then reads each envelope and body in short transactions as
 * the SMTP client asks for them: no transaction is held across network I/O.
 * Outcomes go to the committer as changes, so they are group-committed and
 * the loop never waits for the disk.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "cidr.h"
#include "dsn.h"
#include "io.h"
#include "log.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_client.h"
#include "smtp_cmd.h"
#include "route.h"
#include "despool.h"

struct despool {
	struct despool		*next;
	char			 domain[256];
	char			 relay[400];	/* "mx.example[192.0.2.1]:25" for the log */
	char			 remote[300];	/* the peer, for Remote-MTA in DSNs */
	char			 address[64];	/* the peer's address, as text */
	enum tls_policy		 tls;
	struct route		 how;		/* copy of the domain's deliver-to */
	struct route_lookup	*lookup;	/* while the route is being resolved */
	struct route_target	 targets[ROUTE_MAX_TARGETS];
	size_t			 ntargets, ti;	/* the addresses to try, the one tried */
	unsigned		 offered;	/* messages handed to this session */
	char			 why[480];	/* why it could not start */
	/* ATRN: several domains over a connection the customer dialled */
	char			(*domains)[256];
	size_t			 ndomains, di;	/* domain is domains[di] */
	int			 turned;
	struct spoold_rt	*rt;		/* the configuration it started with */
	struct io		*connecting;	/* until the client takes over */
	struct smtp_client	*client;
	uint64_t		*ids;		/* the snapshot, oldest first */
	size_t			 nids, pos;
	/* the message being offered */
	struct spool_envelope	 env;
	int			 have_env;
	const char		**rcpts;
	unsigned		*idx;		/* envelope index of rcpts[i] */
	int			*codes;		/* the peer's verdict on rcpts[i] */
	char			**refusals;	/* its text, for a 5xx to bounce */
	unsigned		*notify;	/* DSN parameters passed on */
	const char		**orcpt_type, **orcpt;
	size_t			 n;
	struct smtp_client_msg	 msg;
	unsigned long		 delivered, deferred, bounced;
	int			 round_sent;	/* the last offer's dot got a 2xx */
	char			 last_deferral[200];	/* a 4xx of this session */
	time_t			 started;
	unsigned		 pending;	/* changes not yet committed */
	unsigned		 unrecorded;	/* deliveries among them */
	int			 window_full;	/* the client waits for a commit */
	int			 ended;		/* the SMTP session is over */
	int			 again;		/* an ETRN came meanwhile: run once more */
	ev_timer		 kick;		/* the launch, just after the ETRN reply */
};

/* A change on its way to the committer, with the memory it points to. */
struct change {
	struct commit_req	 req;
	struct despool		*run;
	char			 domain[256];
	char			 reply[512];
	unsigned		 idx[];
};

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	struct dns		*dns;		/* NULL: no resolver */
	int			(*is_self)(const struct sockaddr *);
	struct despool		*runs;
	int			 stopping;
} ctx;

void
despool_init(struct ev_loop *loop, struct queue *q, struct dns *dns,
    int (*is_self)(const struct sockaddr *))
{
	ctx.loop = loop;
	ctx.queue = q;
	ctx.dns = dns;
	ctx.is_self = is_self;
}

static void despool_end(struct despool *);
static void despool_settle(struct despool *);

/* A run is never more than delivery-window deliveries ahead of the disk: a
 * crash repeats at most these (the site got them, the spool does not know
 * yet).  See DEF_DELIVERY_WINDOW. */
static int
despool_window_full(const struct despool *r)
{
	return r->unrecorded >= r->rt->conf->delivery_window;
}

/* despool_recorded - a delivery is on disk: a client waiting for room in
 * the window goes on */
static void
despool_recorded(struct despool *r)
{
	r->unrecorded--;
	if (r->window_full && !despool_window_full(r) && r->client != NULL) {
		r->window_full = 0;
		smtp_client_resume(r->client);
	}
}

static void
change_done(struct commit_req *req)
{
	struct change *ch = (struct change *)req;
	struct despool *r = ch->run;

	if (req->result != SPOOL_OK && req->result != SPOOL_ENOTFOUND)
		log_warnx("%016llx %s: cannot record the delivery outcome%s: %s",
		    (unsigned long long)ch->req.change.id, ch->domain,
		    req->change.kind == CHANGE_ROUTE ? "" : " (it may be delivered again)",
		    spool_strerror(req->result));
	if (r != NULL && req->change.kind == CHANGE_DONE)
		despool_recorded(r);
	free(ch);
	if (r != NULL && --r->pending == 0 && r->ended)
		despool_end(r);
}

/* despool_change - queue a DONE (idx list) or DEFER (one index) change */
static void
despool_change(struct despool *r, enum spool_change_kind kind, const unsigned *idx, size_t n,
    const char *reply)
{
	struct change *ch = calloc(1, sizeof(*ch) + n * sizeof(unsigned));

	if (ch == NULL) {
		log_warnx("%s: out of memory recording an outcome (the mail stays queued)", r->domain);
		return;
	}
	memcpy(ch->idx, idx, n * sizeof(unsigned));
	snprintf(ch->domain, sizeof(ch->domain), "%s", r->domain);
	snprintf(ch->reply, sizeof(ch->reply), "%s", reply ? reply : "");
	ch->req.kind = COMMIT_CHANGE;
	ch->req.done = change_done;
	ch->req.change.kind = kind;
	ch->req.change.id = r->env.id;
	ch->req.change.idx = ch->idx;
	ch->req.change.nidx = n;
	ch->req.change.domain = ch->domain;
	ch->req.change.index = n > 0 ? idx[0] : 0;
	ch->req.change.reply = ch->reply;
	ch->run = r;
	r->pending++;
	if (kind == CHANGE_DONE)
		r->unrecorded++;
	queue_submit(ctx.queue, &ch->req);
}

/* despool_route_record - how the session with domain's site went: why it
 * failed, or "" for a good one (r may be NULL when no run started); when
 * the next attempt is due follows from it (schedule.h) */
static void
despool_route_record(struct despool *r, const char *domain, const char *why)
{
	struct change *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return;
	snprintf(ch->domain, sizeof(ch->domain), "%s", domain);
	snprintf(ch->reply, sizeof(ch->reply), "%s", why);
	ch->req.kind = COMMIT_CHANGE;
	ch->req.done = change_done;
	ch->req.change.kind = CHANGE_ROUTE;
	ch->req.change.domain = ch->domain;
	ch->req.change.reply = ch->reply;
	ch->run = r;
	if (r != NULL)
		r->pending++;
	queue_submit(ctx.queue, &ch->req);
}

/* despool_log - one line per recipient, as postmasters know it */
static void
despool_log(struct despool *r, size_t i, const char *status, const char *reply)
{
	char to[600], dsn[16];

	if (strcmp(status, "deferred") == 0)	/* for the route record */
		snprintf(r->last_deferral, sizeof(r->last_deferral), "%s", reply);
	dsn_status(reply, dsn, sizeof(dsn));
	/* reply is escaped already (smtp_client keeps peer text printable) */
	log_info("%016llx to=<%s> relay=%s delay=%lds dsn=%s status=%s (%s)",
	    (unsigned long long)r->env.id, log_escape(to, sizeof(to), r->rcpts[i], 512), r->relay,
	    (long)(time(NULL) - r->env.arrival), dsn, status, reply);
}

static void
despool_forget_message(struct despool *r)
{
	if (r->have_env)
		spool_envelope_free(&r->env);
	r->have_env = 0;
	for (size_t i = 0; r->refusals != NULL && i < r->n; i++)
		free(r->refusals[i]);
	free(r->rcpts);
	free(r->idx);
	free(r->codes);
	free(r->refusals);
	free(r->notify);
	free(r->orcpt_type);
	free(r->orcpt);
	r->notify = NULL;
	r->orcpt_type = r->orcpt = NULL;
	r->rcpts = NULL;
	r->idx = NULL;
	r->codes = NULL;
	r->refusals = NULL;
	r->n = 0;
}

static int
despool_read_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct despool *r = arg;

	return queue_read_body(ctx.queue, r->env.id, off, dst, len) == SPOOL_OK ? 0 : -1;
}

/* despool_load - the pending recipients of message id in this domain */
static int
despool_load(struct despool *r, uint64_t id)
{
	struct spool_envelope *e = &r->env;

	if (queue_envelope(ctx.queue, id, e) != SPOOL_OK)
		return 0;	/* delivered or deleted meanwhile */
	r->have_env = 1;
	r->rcpts = calloc(e->nrcpts, sizeof(*r->rcpts));
	r->idx = calloc(e->nrcpts, sizeof(*r->idx));
	r->codes = calloc(e->nrcpts, sizeof(*r->codes));
	r->refusals = calloc(e->nrcpts, sizeof(*r->refusals));
	r->notify = calloc(e->nrcpts, sizeof(*r->notify));
	r->orcpt_type = calloc(e->nrcpts, sizeof(*r->orcpt_type));
	r->orcpt = calloc(e->nrcpts, sizeof(*r->orcpt));
	if (r->rcpts == NULL || r->idx == NULL || r->codes == NULL || r->refusals == NULL ||
	    r->notify == NULL || r->orcpt_type == NULL || r->orcpt == NULL)
		return 0;
	for (size_t i = 0; i < e->nrcpts; i++) {
		if (e->rcpts[i].done || strcmp(spool_rcpt_domain(e->rcpts[i].addr), r->domain) != 0)
			continue;
		r->rcpts[r->n] = e->rcpts[i].addr;
		r->notify[r->n] = e->rcpts[i].notify;
		r->orcpt_type[r->n] = e->rcpts[i].orcpt_type;
		r->orcpt[r->n] = e->rcpts[i].orcpt;
		r->idx[r->n++] = (unsigned)i;
	}
	return r->n > 0;
}

/* despool_next_domain - an ATRN run moves on to its next domain: 1 when
 * that one has a snapshot to go through */
static int
despool_next_domain(struct despool *r)
{
	while (r->di + 1 < r->ndomains) {
		snprintf(r->domain, sizeof(r->domain), "%s", r->domains[++r->di]);
		free(r->ids);
		r->ids = NULL;
		r->pos = r->nids = 0;
		if (queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) == SPOOL_OK && r->nids > 0)
			return 1;
	}
	return 0;
}

static void despool_defer_held(struct despool *);

/* despool_again - recipients the peer refused with 452 (too many
 * recipients, RFC 5321 4.5.3.1.10) go again at once in a new transaction,
 * as long as the last one made progress; 1 when the message is offered
 * again, else they are deferred like any 4xx */
static int
despool_again(struct despool *r)
{
	size_t k = 0;
	int progress = 0;

	/* progress: the last round got a message through, not just a RCPT */
	progress = r->round_sent;
	r->round_sent = 0;
	if (!progress) {
		despool_defer_held(r);
		return 0;
	}
	for (size_t i = 0; i < r->n; i++) {
		if (r->codes[i] != 452) {
			free(r->refusals[i]);
			continue;
		}
		r->rcpts[k] = r->rcpts[i];
		r->idx[k] = r->idx[i];
		r->notify[k] = r->notify[i];
		r->orcpt_type[k] = r->orcpt_type[i];
		r->orcpt[k] = r->orcpt[i];
		free(r->refusals[i]);
		r->refusals[k] = NULL;
		r->codes[k++] = 0;
	}
	for (size_t i = k; i < r->n; i++)
		r->refusals[i] = NULL;
	r->n = k;
	r->msg.nrcpts = k;
	if (k > 0)
		r->offered++;
	return k > 0;
}

static const struct smtp_client_msg *
despool_next(void *arg)
{
	struct despool *r = arg;

	if (despool_window_full(r)) {
		r->window_full = 1;
		return &smtp_client_wait;
	}
	despool_settle(r);
	if (despool_again(r))
		return &r->msg;
	despool_forget_message(r);
	while (r->pos < r->nids || despool_next_domain(r)) {
		if (!despool_load(r, r->ids[r->pos++])) {
			despool_forget_message(r);
			continue;
		}
		memset(&r->msg, 0, sizeof(r->msg));
		r->msg.sender = r->env.sender;
		r->msg.rcpts = r->rcpts;
		r->msg.nrcpts = r->n;
		r->msg.size = r->env.size;
		r->msg.eight_bit = (r->env.flags & (ENV_8BIT_SEEN | ENV_8BITMIME)) != 0;
		r->msg.smtputf8 = (r->env.flags & ENV_SMTPUTF8) != 0;
		r->msg.ret = r->env.ret;
		r->msg.envid = r->env.envid;
		r->msg.notify = r->notify;
		r->msg.orcpt_type = r->orcpt_type;
		r->msg.orcpt = r->orcpt;
		r->msg.read_body = despool_read_body;
		r->msg.body_arg = r;
		r->offered++;
		return &r->msg;
	}
	return NULL;
}

/* despool_refused - recipient i was refused for good: keep the reply until
 * the message is settled, so its recipients share one DSN */
static void
despool_refused(struct despool *r, size_t i, int code, const char *reply)
{
	r->codes[i] = code;
	free(r->refusals[i]);
	if ((r->refusals[i] = strdup(reply)) == NULL) {
		/* without the text no DSN can be written: retry later instead */
		r->codes[i] = 450;
		despool_log(r, i, "deferred", "out of memory recording a refusal");
		despool_change(r, CHANGE_DEFER, &r->idx[i], 1, reply);
		r->deferred++;
	}
}

static void
despool_rcpt(void *arg, const struct smtp_client_msg *m, size_t i, int code, const char *reply)
{
	struct despool *r = arg;

	r->codes[i] = code;
	if (code / 100 == 2)
		return;
	if (code / 100 == 5) {
		despool_refused(r, i, code, reply);
		return;
	}
	if (code == 452 && (r->refusals[i] = strdup(reply)) != NULL)
		return;		/* held: despool_again decides */
	r->codes[i] = code == 452 ? 451 : code;
	despool_log(r, i, "deferred", reply);
	despool_change(r, CHANGE_DEFER, &r->idx[i], 1, reply);
	r->deferred++;
}

/* despool_defer_held - the 452s that will not go again now wait like
 * any recipient refused for now */
static void
despool_defer_held(struct despool *r)
{
	for (size_t i = 0; r->have_env && i < r->n; i++) {
		if (r->codes[i] != 452)
			continue;
		despool_log(r, i, "deferred", r->refusals[i]);
		despool_change(r, CHANGE_DEFER, &r->idx[i], 1, r->refusals[i]);
		r->deferred++;
		r->codes[i] = 451;
	}
}

static void
despool_sent(void *arg, const struct smtp_client_msg *m, int code, const char *reply)
{
	struct despool *r = arg;
	unsigned *done = calloc(r->n ? r->n : 1, sizeof(*done));
	size_t nd = 0;

	r->round_sent = code / 100 == 2;
	for (size_t i = 0; i < r->n; i++) {
		if (r->codes[i] / 100 != 2)
			continue;
		if (code / 100 == 2) {
			despool_log(r, i, "sent", reply);
			if (done)
				done[nd++] = r->idx[i];
			r->delivered++;
		} else if (code / 100 == 5)
			despool_refused(r, i, code, reply);
		else {
			despool_log(r, i, "deferred", reply);
			despool_change(r, CHANGE_DEFER, &r->idx[i], 1, reply);
			r->deferred++;
		}
	}
	if (nd > 0)
		despool_change(r, CHANGE_DONE, done, nd, NULL);
	else if (code / 100 == 2 && done == NULL)
		log_warnx("%s: out of memory recording deliveries (they may be repeated)", r->domain);
	free(done);
}

static void
despool_bounced(void *arg, enum spool_err result)
{
	struct despool *r = arg;

	if (--r->pending == 0 && r->ended)
		despool_end(r);
}

/* despool_settle - the message's outcome is known: the recipients refused
 * for good leave the queue together, with one DSN to the sender */
static void
despool_settle(struct despool *r)
{
	struct bounce_rcpt *b;
	size_t nb = 0;

	if (!r->have_env || (b = calloc(r->n ? r->n : 1, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		if (r->codes[i] / 100 != 5 || r->refusals[i] == NULL)
			continue;
		despool_log(r, i, "bounced", r->refusals[i]);
		b[nb].index = r->idx[i];
		b[nb++].reply = r->refusals[i];
		r->codes[i] = 0;
	}
	/* no Remote-MTA when spoold decided alone (null MX, no such domain) */
	if (nb > 0 && bounce_submit(&r->env, b, nb, r->rt->conf->hostname,
	    r->remote[0] ? r->remote : NULL, despool_bounced, r) == 0) {
		r->pending++;
		r->bounced += nb;
	}
	free(b);
}

static void
despool_free(struct despool *r)
{
	struct despool **pp;

	for (pp = &ctx.runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	despool_forget_message(r);
	ev_timer_stop(ctx.loop, &r->kick);
	rt_unref(r->rt);
	free(r->how.host);
	free(r->domains);
	free(r->ids);
	free(r);
}


static int despool_connect(struct despool *);

/* despool_next_target - the session with targets[ti] failed before any
 * message was offered: 1 when another address is tried (RFC 5321 5.1) */
static int
despool_next_target(struct despool *r)
{
	while (++r->ti < r->ntargets && !ctx.stopping) {
		if (despool_connect(r) == 0)
			return 1;
	}
	return 0;
}

static void
despool_done(void *arg, const char *error)
{
	struct despool *r = arg;
	char why[900];

	despool_settle(r);
	despool_defer_held(r);
	r->client = NULL;
	r->window_full = 0;	/* a resume is for the client that asked to wait */
	if (error != NULL && r->offered == 0 && r->pending == 0 && !r->turned) {
		log_info("delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay,
		    error);
		if (despool_next_target(r))
			return;
	}
	log_info("delivery run domain=%s relay=%s messages=%zu delivered=%lu deferred=%lu "
	    "bounced=%lu duration=%lds status=%s%s", r->domain, r->relay, r->nids, r->delivered,
	    r->deferred, r->bounced, (long)(time(NULL) - r->started),
	    error ? "incomplete: " : "complete", error ? error : "");
	snprintf(why, sizeof(why), "%s: %s", r->relay, error ? error : "");
	/* a session in which the site took nothing and put everything off is
	 * a failed attempt too: the retry schedule backs off */
	if (error == NULL && r->delivered == 0 && r->bounced == 0 && r->deferred > 0) {
		snprintf(why, sizeof(why), "%s: every recipient deferred (%s)", r->relay,
		    r->last_deferral);
		error = why;
	}
	if (r->turned)
		for (size_t i = 0; i < r->ndomains; i++)
			despool_route_record(r, r->domains[i], error ? why : "");
	else
		despool_route_record(r, r->domain, error ? why : "");
	r->last_deferral[0] = '\0';
	r->ended = 1;
	if (r->pending == 0)
		despool_end(r);
}

static const struct smtp_client_ops despool_ops = {
	.next = despool_next, .rcpt = despool_rcpt, .sent = despool_sent, .done = despool_done,
};

static void
despool_connected(struct io *io, enum io_event ev, void *arg)
{
	struct despool *r = arg;
	const struct route_target *t = &r->targets[r->ti];
	int named = t->name[0] != '\0' && t->name[0] != '[';
	struct smtp_client_params p = {
		.helo_name = r->rt->conf->hostname, .peer_name = named ? t->name : r->relay,
		.loop_name = r->rt->conf->hostname,
		.timeout_banner = (double)r->rt->conf->timeout_smtp_greeting,
		.timeout_command = (double)r->rt->conf->timeout_smtp_command,
		.timeout_data = (double)r->rt->conf->timeout_smtp_data_init,
		.timeout_block = (double)r->rt->conf->timeout_smtp_data_block,
		.timeout_eom = (double)r->rt->conf->timeout_smtp_data_done,
		.tls_cred = r->rt->client->cred, .tls_prio = r->rt->client->prio,
		/* tls may: STARTTLS when offered, the certificate unchecked */
		.tls_required = r->tls != TLS_MAY,
		/* the name the route was looked up by, or the address itself */
		.tls_verify_name = r->tls != TLS_VERIFY ? NULL : named ? t->name : r->address,
	};
	char why[500];

	r->connecting = NULL;
	if (ev == IO_CONNECTED) {
		if ((r->client = smtp_client_start(io, &p, &despool_ops, r)) != NULL)
			return;
		snprintf(why, sizeof(why), "out of memory");
	} else
		snprintf(why, sizeof(why), "connect to %s: %s", r->relay,
		    ev == IO_TIMEOUT ? "timed out" : io_error(io));
	log_info("delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay, why);
	io_free(io);
	if (despool_next_target(r))
		return;
	r->again = 0;	/* the site is not there: the next ETRN tries again */
	r->ended = 1;
	despool_route_record(r, r->domain, why);
	if (r->pending == 0)
		despool_end(r);
}

/* despool_connect - dial targets[ti]; -1 if that cannot even start */
static int
despool_connect(struct despool *r)
{
	const struct route_target *t = &r->targets[r->ti];
	const char *addr = r->address;

	sockaddr_text((const struct sockaddr *)&t->ss, r->address, sizeof(r->address));
	if (t->name[0] != '\0' && t->name[0] != '[') {
		snprintf(r->relay, sizeof(r->relay), "%s[%s]:%d", t->name, addr,
		    sockaddr_port((const struct sockaddr *)&t->ss));
		snprintf(r->remote, sizeof(r->remote), "%s", t->name);
	} else {
		snprintf(r->relay, sizeof(r->relay), "[%s]:%d", addr,
		    sockaddr_port((const struct sockaddr *)&t->ss));
		snprintf(r->remote, sizeof(r->remote), "[%s]", addr);
	}
	r->offered = 0;
	if (ctx.is_self((const struct sockaddr *)&t->ss)) {
		/* RFC 5321 5.2: never deliver to ourselves */
		snprintf(r->why, sizeof(r->why), "%s is this spoold's own listener: the route loops",
		    r->relay);
		log_info("delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay,
		    r->why);
		return -1;
	}
	r->connecting = io_connect(ctx.loop, (const struct sockaddr *)&t->ss, t->len,
	    despool_connected, r);
	if (r->connecting == NULL) {
		snprintf(r->why, sizeof(r->why), "cannot start a connection");
		return -1;
	}
	io_set_timeout(r->connecting, (double)r->rt->conf->timeout_smtp_connect, 0);
	return 0;
}

/* despool_literal - the one target of a requester or [address] route: 0,
 * or -1 with the reason */
static int
despool_literal(struct despool *r, const struct sockaddr *requester, const char **reason)
{
	struct route_target *t = &r->targets[0];
	int port = r->how.port ? r->how.port : 25;

	memset(t, 0, sizeof(*t));
	if (r->how.kind == ROUTE_REQUESTER && requester == NULL) {
		*reason = "deliver-to requester needs an ETRN from the site";
		return -1;
	}
	if (r->how.kind == ROUTE_REQUESTER)
		memcpy(&t->ss, requester, requester->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	else {
		char lit[SMTP_DOMAIN_MAX + 1];
		size_t l = strlen(r->how.host);
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;

		snprintf(lit, sizeof(lit), "%.*s", (int)(l - 2), r->how.host + 1);
		if (inet_pton(AF_INET, lit, &s4->sin_addr) == 1)
			s4->sin_family = AF_INET;
		else if (strncmp(lit, "ipv6:", 5) == 0 && inet_pton(AF_INET6, lit + 5, &s6->sin6_addr) == 1)
			s6->sin6_family = AF_INET6;
		else {
			*reason = "deliver-to address is not usable";
			return -1;
		}
	}
	if (t->ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&t->ss)->sin6_port = htons((uint16_t)port);
		t->len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&t->ss)->sin_port = htons((uint16_t)port);
		t->len = sizeof(struct sockaddr_in);
	}
	r->ntargets = 1;
	return 0;
}

/* despool_launch - snapshot the domain's mail and dial the first target;
 * -1 if it cannot even start */
static int
despool_launch(struct despool *r)
{
	free(r->ids);
	r->ids = NULL;
	r->pos = 0;
	r->ti = 0;
	r->delivered = r->deferred = r->bounced = 0;
	r->ended = r->again = 0;
	r->started = time(NULL);
	snprintf(r->why, sizeof(r->why), "cannot read the spool");
	if (queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) != SPOOL_OK ||
	    (despool_connect(r) == -1 && !despool_next_target(r))) {
		free(r->ids);
		r->ids = NULL;
		return -1;
	}
	log_info("delivery run domain=%s relay=%s messages=%zu started", r->domain, r->relay, r->nids);
	return 0;
}

/* A domain that takes no mail is bounced this many messages at a time, a
 * batch per pass of the loop, so sessions never wait on a big queue. */
#define DESPOOL_BOUNCE_BATCH	256

/* despool_bounce_step - the domain takes no mail at all (null MX, no such
 * domain): the next batch of its snapshot is returned with DSNs (none for
 * the DSNs themselves, which come from <>) */
static void
despool_bounce_step(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct despool *r = w->data;
	char reply[600];

	snprintf(reply, sizeof(reply), "550 5.1.2 %s", r->why);
	for (unsigned k = 0; k < DESPOOL_BOUNCE_BATCH && r->pos < r->nids; k++) {
		if (despool_load(r, r->ids[r->pos++])) {
			for (size_t i = 0; i < r->n; i++)
				despool_refused(r, i, 550, reply);
			despool_settle(r);
		}
		despool_forget_message(r);
	}
	if (r->pos < r->nids && !ctx.stopping) {
		ev_timer_set(w, 0., 0.);
		ev_timer_start(loop, w);
		return;
	}
	despool_route_record(r, r->domain, r->why);
	r->ended = 1;
	if (r->pending == 0)
		despool_end(r);
}

static void
despool_resolved(void *arg, enum route_result res, const struct route_target *t, size_t n,
    const char *why)
{
	struct despool *r = arg;

	r->lookup = NULL;
	if (res == ROUTE_OK) {
		memcpy(r->targets, t, n * sizeof(*t));
		r->ntargets = n;
		if (despool_launch(r) == 0)
			return;
		why = r->why;
	} else
		log_info("delivery run domain=%s status=%s (%s)", r->domain,
		    res == ROUTE_PERMFAIL ? "bounced" : "deferred", why);
	snprintf(r->relay, sizeof(r->relay), "(no route)");
	if (res == ROUTE_PERMFAIL && queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) == SPOOL_OK) {
		snprintf(r->why, sizeof(r->why), "%s", why);
		r->pos = 0;
		ev_timer_init(&r->kick, despool_bounce_step, 0., 0.);
		r->kick.data = r;
		ev_timer_start(ctx.loop, &r->kick);
		return;
	}
	despool_route_record(r, r->domain, why);
	r->ended = 1;
	if (r->pending == 0)
		despool_end(r);
}

/* despool_resolve - look the route's name up; 0, or -1 with the reason */
static int
despool_resolve(struct despool *r, const char **reason)
{
	int port = r->how.port ? r->how.port : r->how.kind == ROUTE_MX ? (int)r->rt->conf->mx_port : 25;

	if (ctx.dns == NULL) {
		*reason = "no DNS resolver (see the log at start-up)";
		return -1;
	}
	r->lookup = r->how.kind == ROUTE_MX ?
	    route_mx(ctx.dns, r->domain, port, r->rt->conf->hostname, despool_resolved, r) :
	    route_host(ctx.dns, r->how.host, port, despool_resolved, r);
	if (r->lookup == NULL) {
		*reason = "out of memory";
		return -1;
	}
	r->started = time(NULL);
	snprintf(r->relay, sizeof(r->relay), "(resolving)");
	log_info("delivery run domain=%s resolving %s", r->domain,
	    r->how.kind == ROUTE_MX ? "MX" : r->how.host);
	return 0;
}

/* despool_end - the session is over and every outcome is committed: run
 * once more if an ETRN asked meanwhile and mail is waiting, else let go */
static void
despool_end(struct despool *r)
{
	struct spool_counters c;

	if (r->again && !ctx.stopping && r->ntargets > 0 && !r->turned &&
	    queue_counters(ctx.queue, r->domain, &c) == SPOOL_OK && c.messages > 0 &&
	    despool_launch(r) == 0)
		return;
	despool_free(r);
}

/* despool_running - the run that holds domain, or NULL */
static struct despool *despool_running(const char *domain);

int
despool_busy(const char *domain)
{
	return despool_running(domain) != NULL;
}

static struct despool *
despool_running(const char *domain)
{
	for (struct despool *r = ctx.runs; r; r = r->next) {
		if (strcmp(r->domain, domain) == 0)
			return r;
		for (size_t i = 0; i < r->ndomains; i++)
			if (strcmp(r->domains[i], domain) == 0)
				return r;
	}
	return NULL;
}

static void
despool_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct despool *r = w->data;

	if (!ctx.stopping && despool_launch(r) == 0)
		return;
	log_info("delivery run domain=%s status=deferred (%s)", r->domain,
	    ctx.stopping ? "shutting down" : r->why);
	despool_route_record(r, r->domain, r->why);
	r->again = 0;
	r->ended = 1;
	if (r->pending == 0)
		despool_end(r);
}

static struct despool *
despool_new(const struct domain_conf *d, struct spoold_rt *rt)
{
	struct despool *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	snprintf(r->domain, sizeof(r->domain), "%s", d->name);
	r->tls = d->tls;
	r->how.kind = d->route.kind;
	r->how.port = d->route.port;
	r->rt = rt_ref(rt);
	if (d->route.host != NULL && (r->how.host = strdup(d->route.host)) == NULL) {
		despool_free(r);
		return NULL;
	}
	return r;
}

enum despool_start
despool_start(const struct domain_conf *d, struct spoold_rt *rt, const struct sockaddr *requester,
    unsigned long long *queued, const char **reason)
{
	struct spool_counters c;
	struct despool *r;
	int literal = d->route.kind == ROUTE_REQUESTER ||
	    (d->route.kind == ROUTE_HOST && d->route.host[0] == '[');

	if (queue_counters(ctx.queue, d->name, &c) != SPOOL_OK) {
		*reason = "cannot read the spool";
		return DESPOOL_FAILED;
	}
	*queued = c.messages;
	if (c.messages == 0)
		return DESPOOL_EMPTY;
	if ((r = despool_running(d->name)) != NULL) {
		/* mail that came after its snapshot needs one more run */
		r->again = 1;
		return DESPOOL_JOINED;
	}
	if (d->route.kind == ROUTE_NONE) {
		*reason = "no deliver-to route configured";
		despool_route_record(NULL, d->name, *reason);
		return DESPOOL_NO_ROUTE;
	}
	if ((r = despool_new(d, rt)) == NULL) {
		*reason = "out of memory";
		return DESPOOL_FAILED;
	}
	if (literal ? despool_literal(r, requester, reason) == -1 :
	    despool_resolve(r, reason) == -1) {
		despool_route_record(NULL, d->name, *reason);
		despool_free(r);
		return DESPOOL_NO_ROUTE;
	}
	if (literal) {
		/* the snapshot and the connection come from the loop, right
		 * after the ETRN reply: the reply never waits for a domain's
		 * keys to be read */
		ev_timer_init(&r->kick, despool_kick, 0., 0.);
		r->kick.data = r;
		ev_timer_start(ctx.loop, &r->kick);
	}
	r->next = ctx.runs;
	ctx.runs = r;
	return DESPOOL_STARTED;
}

void
despool_stop_all(void)
{
	struct despool *r, *next;

	ctx.stopping = 1;
	for (r = ctx.runs; r; r = next) {
		next = r->next;
		r->again = 0;
		if (r->client != NULL)
			smtp_client_abort(r->client, "spoold is shutting down");	/* done() runs */
		else if (ev_is_active(&r->kick)) {
			ev_timer_stop(ctx.loop, &r->kick);
			r->ended = 1;
			if (r->pending == 0)
				despool_end(r);
		} else if (r->connecting != NULL || r->lookup != NULL) {
			if (r->connecting != NULL)
				io_free(r->connecting);
			if (r->lookup != NULL)
				route_cancel(r->lookup);
			r->connecting = NULL;
			r->lookup = NULL;
			r->ended = 1;
			if (r->pending == 0)
				despool_end(r);
		}
		/* a run still waiting for its outcomes to be committed goes
		 * when the committer reports them */
	}
}

enum despool_atrn
despool_atrn_check(const char *const *domains, size_t n)
{
	struct spool_counters c;
	int some = 0;

	for (size_t i = 0; i < n; i++) {
		if (despool_running(domains[i]) != NULL)
			return DESPOOL_ATRN_BUSY;
		if (queue_counters(ctx.queue, domains[i], &c) != SPOOL_OK)
			return DESPOOL_ATRN_BUSY;
		some |= c.messages > 0;
	}
	return some ? DESPOOL_ATRN_OK : DESPOOL_ATRN_NO_MAIL;
}

int
despool_turn(const char *const *domains, size_t n, struct io *io, struct spoold_rt *rt,
    const char *who, const char *peer)
{
	struct domain_conf d = { .name = (char *)domains[0], .tls = TLS_MAY };
	struct smtp_client_params p;
	struct despool *r;

	/* the session's configuration: its TLS credentials stay alive */
	if (n == 0 || despool_atrn_check(domains, n) != DESPOOL_ATRN_OK ||
	    (r = despool_new(&d, rt)) == NULL)
		return -1;
	if ((r->domains = calloc(n, sizeof(*r->domains))) == NULL) {
		despool_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(r->domains[i], sizeof(r->domains[i]), "%s", domains[i]);
	r->ndomains = n;
	r->turned = 1;
	r->started = time(NULL);
	snprintf(r->relay, sizeof(r->relay), "odmr:%s[%s]", who, peer);
	snprintf(r->remote, sizeof(r->remote), "[%s]", peer);
	/* the first domain with mail; the others follow in despool_next */
	r->di = (size_t)-1;
	r->ndomains = n;
	if (!despool_next_domain(r)) {
		despool_free(r);
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.helo_name = r->rt->conf->hostname;
	p.peer_name = r->relay;
	p.timeout_banner = (double)r->rt->conf->timeout_smtp_greeting;
	p.timeout_command = (double)r->rt->conf->timeout_smtp_command;
	p.timeout_data = (double)r->rt->conf->timeout_smtp_data_init;
	p.timeout_block = (double)r->rt->conf->timeout_smtp_data_block;
	p.timeout_eom = (double)r->rt->conf->timeout_smtp_data_done;
	/* the TLS session, if any, goes on as it is: spoold stays its server */
	if ((r->client = smtp_client_start(io, &p, &despool_ops, r)) == NULL) {
		despool_free(r);
		return -1;
	}
	r->next = ctx.runs;
	ctx.runs = r;
	log_info("delivery run domain=%s relay=%s domains=%zu started", r->domains[0], r->relay, n);
	return 0;
}
