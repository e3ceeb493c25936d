/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * despool.c - delivery runs; see despool.h.
 *
 * A run is a state machine (enum run_state, one run_enter_state that logs
 * each transition at debug level, as OpenSMTPD's mta_session.c does):
 *
 *   RUN_NEW        -> RUN_RESOLVING (a name), RUN_LAUNCHING (an address),
 *                     RUN_SESSION (ATRN: the customer's own connection)
 *   RUN_RESOLVING  -> RUN_CONNECTING, RUN_BOUNCING (null MX, no such
 *                     domain), RUN_DRAINING
 *   RUN_LAUNCHING  -> RUN_CONNECTING, RUN_DRAINING
 *   RUN_CONNECTING -> RUN_SESSION, RUN_CONNECTING (the next address),
 *                     RUN_DRAINING
 *   RUN_SESSION    -> RUN_CONNECTING (it failed before a message was
 *                     offered: the next address), RUN_DRAINING
 *   RUN_BOUNCING   -> RUN_DRAINING
 *   RUN_DRAINING   -> freed once every outcome is committed, or
 *                     RUN_CONNECTING when an ETRN came meanwhile
 *
 * Once connected it takes a snapshot of the domain's message ids (one
 * short read transaction), then reads each envelope and body in short
 * transactions as the SMTP client asks for them: no transaction is held
 * across network I/O.  A run that cannot start leaves the log of why each
 * message waits to a thread of despool's own (a log job), off the loop.
 * Outcomes go to the queue as changes, so they are group-committed and the
 * loop never waits for the disk; a run is over only once every one of them
 * is committed (RUN_DRAINING), so a second run never re-sends what the
 * first delivered.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "cidr.h"
#include "dsn.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_client.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"
#include "rescan.h"
#include "route.h"
#include "workers.h"
#include "despool.h"

enum run_state {
	RUN_NEW,		/* made, nothing started yet */
	RUN_RESOLVING,		/* the route's name is being looked up */
	RUN_LAUNCHING,		/* a literal route: snapshot and dial from the loop */
	RUN_CONNECTING,		/* dialling targets[ti] */
	RUN_SESSION,		/* the SMTP client offers the snapshot */
	RUN_BOUNCING,		/* the domain takes no mail: its snapshot goes back */
	RUN_DRAINING,		/* over; its outcomes are being committed */
};

/* The peer's verdict on one recipient of the message being offered. */
struct verdict {
	unsigned	 idx;		/* the recipient's index in the envelope */
	int		 code;		/* 0 (not yet), the RCPT or dot reply's code */
	char		*refusal;	/* a 5xx (bounced when the message is settled)
					 * or a 452 (offered again) */
};

/* The message being offered: what the client sends, and the verdicts. */
struct offer {
	struct spool_envelope	 env;
	int			 loaded;	/* env is decoded (and must be freed) */
	struct smtp_client_rcpt	*to;		/* the recipients in this domain */
	struct verdict		*v;		/* v[i] is to[i]'s */
	size_t			 n;
	struct smtp_client_msg	 msg;
	int			 round_sent;	/* the last offer's dot got a 2xx */
	int			 scanned;	/* the rescan passed it: offer it now */
};

struct despool {
	struct despool		*next;
	enum run_state		 state;
	char			 domain[SMTP_DOMAIN_MAX + 1];
	char			 relay[400];	/* "mx.example[192.0.2.1]:25" for the log */
	char			 remote[300];	/* the peer, for Remote-MTA in DSNs */
	char			 address[64];	/* the peer's address, as text */
	enum tls_policy		 tls;
	struct route		 how;		/* copy of the domain's deliver-to */
	struct route_lookup	*lookup;	/* RUN_RESOLVING */
	struct route_target	 targets[ROUTE_MAX_TARGETS];
	size_t			 ntargets, ti;	/* the addresses to try, the one tried */
	struct io		*connecting;	/* RUN_CONNECTING */
	struct smtp_client	*client;	/* RUN_SESSION */
	ev_timer		 kick;		/* RUN_LAUNCHING, RUN_BOUNCING */
	unsigned		 offered;	/* messages handed to this session */
	char			 why[512];	/* why it could not start */
	/* ATRN: several domains over a connection the customer dialled */
	int			 atrn;
	char			(*domains)[SMTP_DOMAIN_MAX + 1];
	size_t			 ndomains, di;	/* domain is domains[di] */
	struct spoold_rt	*rt;		/* the configuration it started with */
	uint64_t		*ids;		/* the snapshot, oldest first */
	size_t			 nids, pos;
	struct offer		 o;
	unsigned long		 delivered, deferred, bounced;
	char			 last_deferral[200];	/* a 4xx of this session */
	time_t			 started;
	ev_tstamp		 t_start;	/* the run began */
	ev_tstamp		 t_ready;	/* the session could take mail: 0 before */
	ev_tstamp		 t_offer;	/* the message being offered was */
	unsigned		 pending;	/* changes not yet committed */
	unsigned		 unrecorded;	/* deliveries among them */
	int			 window_full;	/* the client waits for a commit */
	struct rescan		*rescan;	/* the client waits for the filters */
	int			 again;		/* an ETRN came meanwhile: run once more */
};

/* A change on its way to the queue, with the memory it points to. */
struct change {
	struct commit_req	 req;		/* first: done() gets it back */
	struct despool		*run;		/* NULL: no run waits for it */
	char			 domain[SMTP_DOMAIN_MAX + 1];
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
	struct workers		*log_pool;	/* started at the first log job */
} ctx;

#define RUN_ROLE(r)	((r)->atrn ? LOG_ODMR : LOG_SMTP)

static void run_end(struct despool *);
static void offer_settle(struct despool *);
static int run_connect(struct despool *);
static int run_snapshot(struct despool *);

void
despool_init(struct ev_loop *loop, struct queue *q, struct dns *dns,
    int (*is_self)(const struct sockaddr *))
{
	ctx.loop = loop;
	ctx.queue = q;
	ctx.dns = dns;
	ctx.is_self = is_self;
	ctx.runs = NULL;
	ctx.stopping = 0;
}

/* ---- states ---- */

static const char *
run_strstate(enum run_state st)
{
#define CASE(x) case x: return #x
	switch (st) {
	CASE(RUN_NEW);
	CASE(RUN_RESOLVING);
	CASE(RUN_LAUNCHING);
	CASE(RUN_CONNECTING);
	CASE(RUN_SESSION);
	CASE(RUN_BOUNCING);
	CASE(RUN_DRAINING);
	}
#undef CASE
	return "RUN_?";
}

static void
run_enter_state(struct despool *r, enum run_state st)
{
	if (log_verbose() > 1)
		log_debug("delivery run domain=%s state %s -> %s", r->domain, run_strstate(r->state),
		    run_strstate(st));
	r->state = st;
}

/* run_over - the session (or the attempt to have one) is over: the run
 * ends once its outcomes are committed */
static void
run_over(struct despool *r)
{
	run_enter_state(r, RUN_DRAINING);
	if (r->pending == 0)
		run_end(r);
}

/* run_committed - one of the run's changes is on disk (or failed) */
static void
run_committed(struct despool *r)
{
	if (--r->pending == 0 && r->state == RUN_DRAINING)
		run_end(r);
}

/* ---- outcomes, through the queue ---- */

/* A run is never more than delivery-window deliveries ahead of the disk: a
 * crash repeats at most these (the site got them, the spool does not know
 * yet).  See DEF_DELIVERY_WINDOW. */
static int
run_window_full(const struct despool *r)
{
	return r->unrecorded >= r->rt->conf->delivery_window;
}

/* run_recorded - a delivery is on disk: a client waiting for room in the
 * window goes on */
static void
run_recorded(struct despool *r)
{
	r->unrecorded--;
	if (r->window_full && !run_window_full(r) && r->client != NULL) {
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
		run_recorded(r);
	free(ch);
	if (r != NULL)
		run_committed(r);
}

/* change_new - a change of kind for domain (r may be NULL: no run waits) */
static struct change *
change_new(struct despool *r, enum spool_change_kind kind, const char *domain, size_t nidx)
{
	struct change *ch = calloc(1, sizeof(*ch) + nidx * sizeof(unsigned));

	if (ch == NULL)
		return NULL;
	snprintf(ch->domain, sizeof(ch->domain), "%s", domain);
	ch->req.kind = COMMIT_CHANGE;
	ch->req.done = change_done;
	ch->req.change.kind = kind;
	ch->req.change.domain = ch->domain;
	ch->req.change.idx = ch->idx;
	ch->req.change.reply = ch->reply;
	ch->run = r;
	return ch;
}

static void
change_submit(struct despool *r, struct change *ch)
{
	if (r != NULL)
		r->pending++;
	queue_submit(ctx.queue, &ch->req);
}

/* run_record - the recipients idx[0..n) of the message offered: delivered
 * (CHANGE_DONE) or put off with reply (CHANGE_DEFER, one index) */
static void
run_record(struct despool *r, enum spool_change_kind kind, const unsigned *idx, size_t n,
    const char *reply)
{
	struct change *ch = change_new(r, kind, r->domain, n);

	if (ch == NULL) {
		log_warnx("%s: out of memory recording an outcome (the mail stays queued)", r->domain);
		return;
	}
	memcpy(ch->idx, idx, n * sizeof(unsigned));
	snprintf(ch->reply, sizeof(ch->reply), "%s", reply ? reply : "");
	ch->req.change.id = r->o.env.id;
	ch->req.change.nidx = n;
	ch->req.change.index = n > 0 ? idx[0] : 0;
	if (kind == CHANGE_DONE)
		r->unrecorded++;
	change_submit(r, ch);
}

/* route_record - how the session with domain's site went: why it failed,
 * or "" for a good one (r may be NULL when no run started); when the next
 * attempt is due follows from it (schedule.h) */
static void
route_record(struct despool *r, const char *domain, const char *why)
{
	struct change *ch = change_new(r, CHANGE_ROUTE, domain, 0);

	if (ch == NULL)
		return;
	snprintf(ch->reply, sizeof(ch->reply), "%s", why);
	change_submit(r, ch);
}

/* run_route_record - route_record for every domain of the run */
static void
run_route_record(struct despool *r, const char *why)
{
	if (!r->atrn) {
		route_record(r, r->domain, why);
		return;
	}
	for (size_t i = 0; i < r->ndomains; i++)
		route_record(r, r->domains[i], why);
}

/* log_seconds - a delay as Postfix writes it: two digits, whole seconds
 * from 100 on */
static const char *
log_seconds(double t, char *dst, size_t len)
{
	/* %.2g of 99.5 would be "1e+02" */
	snprintf(dst, len, t < 0.01 ? "0" : t < 10 ? "%.2g" : "%.0f", t < 0.01 ? 0 : t);
	return dst;
}

/* What a run's recipient lines say of it: the run's own fields, or a log
 * job's copy of them. */
struct run_view {
	const char	*relay, *role;
	ev_tstamp	 t_start, t_ready, t_offer;
};

static struct run_view
run_view(const struct despool *r)
{
	return (struct run_view){ r->relay, RUN_ROLE(r), r->t_start, r->t_ready, r->t_offer };
}

/* run_log_rcpt - one line per recipient, Postfix's: delays=a/b/c/d is the
 * time before the spool (0: counted in b), in the spool until this run,
 * setting the session up (DNS, connect, greeting, TLS, EHLO), and sending */
static void
run_log_rcpt(const struct run_view *r, ev_tstamp now, uint64_t id, time_t arrival,
    const char *addr, const char *status, const char *reply)
{
	char to[LOG_ESCAPE_SIZE(SMTP_PATH_MAX)], dsn[16], d0[16], d1[16], d2[16], d3[16];
	ev_tstamp ready = r->t_ready > 0 ? r->t_ready : now;
	ev_tstamp offer = r->t_ready > 0 && r->t_offer > 0 ? r->t_offer : now;

	metrics_inc(strcmp(status, "sent") == 0 ? MC_DELIVERY_SENT :
	    strcmp(status, "bounced") == 0 ? MC_DELIVERY_BOUNCED : MC_DELIVERY_DEFERRED);
	dsn_status(reply, dsn, sizeof(dsn));
	if (strcmp(status, "deferred") == 0 && !isdigit((unsigned char)reply[0]))
		snprintf(dsn, sizeof(dsn), "4.4.1");	/* no reply: the connection failed */
	/* reply is escaped already (smtp_client keeps peer text printable) */
	log_role(r->role, "%016llx: to=<%s>, relay=%s, delay=%s, "
	    "delays=0/%s/%s/%s, dsn=%s, status=%s (%s)", (unsigned long long)id,
	    log_escape(to, sizeof(to), addr, SMTP_PATH_MAX), r->relay[0] != '\0' ? r->relay : "none",
	    log_seconds(now - (ev_tstamp)arrival, d0, sizeof(d0)),
	    log_seconds(r->t_start - (ev_tstamp)arrival, d1, sizeof(d1)),
	    log_seconds(ready - r->t_start, d2, sizeof(d2)),
	    log_seconds(now - offer, d3, sizeof(d3)), dsn, status, reply);
}

/* run_log - recipient i of the message offered */
static void
run_log(struct despool *r, size_t i, const char *status, const char *reply)
{
	if (strcmp(status, "deferred") == 0)	/* for the route record */
		snprintf(r->last_deferral, sizeof(r->last_deferral), "%s", reply);
	struct run_view v = run_view(r);

	run_log_rcpt(&v, ev_now(ctx.loop), r->o.env.id, r->o.env.arrival, r->o.to[i].addr, status,
	    reply);
}

#define RUN_LOG_WAITING_MAX	1000	/* messages listed when a run cannot start */
/* The messages a run could not offer are logged by a thread of despool's
 * own (workers.c), from a log job that holds what the lines need: each
 * line needs the message's envelope, and on a spool that is not in the
 * page cache each read is a disk read (a major fault on the map); on the
 * loop, 100 of them in one go held every session up (issue 14: ETRN
 * replies of 20-30 ms at the 99th percentile).  The run itself is over at
 * once, as before, so an ETRN that comes meanwhile starts the next one. */
#define RUN_LOG_QUEUE		1024	/* log jobs waiting for the thread */

struct log_job {
	struct work		 work;	/* first: the pool hands it back */
	struct run_view		 view;	/* relay and role point into this job */
	char			 domain[SMTP_DOMAIN_MAX + 1];
	char			 relay[400];
	char			 why[512];
	uint64_t		*ids;	/* NULL: the thread takes the snapshot */
	size_t			 nids, pos;
};

/* log_job_unlisted - one line for the messages of j not listed: the stop
 * came first, or the thread is RUN_LOG_QUEUE jobs behind */
static void
log_job_unlisted(const struct log_job *j, const char *because)
{
	struct spool_counters c;
	unsigned long long n = j->ids != NULL ? (unsigned long long)(j->nids - j->pos) :
	    queue_counters(ctx.queue, j->domain, &c) == SPOOL_OK ? c.messages : 0;

	if (n > 0)
		log_role(LOG_SMTP, "delivery run domain=%s: %llu messages deferred (%s), not listed "
		    "one by one: %s", j->domain, n, j->why, because);
}

/* log_job_run - on the log thread (at nice 10: on a busy machine the loop
 * must win the CPU from it): a status=deferred line for each recipient in
 * the domain of each message, as Postfix's queue manager logs them, so
 * "grep ID" and pflogsumm show why the mail waits; at most
 * RUN_LOG_WAITING_MAX messages, then one line.  A message gone meanwhile
 * (a later run delivered it) is not listed. */
static void
log_job_run(struct work *w)
{
	struct log_job *j = (struct log_job *)w;
	static __thread int niced;
	struct spool_envelope env;
	size_t listed = 0;

	if (!niced++)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);	/* Linux: this thread */
	if (j->ids == NULL && queue_ids(ctx.queue, j->domain, &j->ids, &j->nids) != SPOOL_OK) {
		j->ids = NULL;
		j->nids = 0;
	}
	for (; j->pos < j->nids && listed < RUN_LOG_WAITING_MAX; j->pos++) {
		if (queue_envelope(ctx.queue, j->ids[j->pos], &env) != SPOOL_OK)
			continue;
		for (size_t i = 0; i < env.nrcpts; i++)
			if (!env.rcpts[i].done &&
			    strcmp(spool_rcpt_domain(env.rcpts[i].addr), j->domain) == 0)
				run_log_rcpt(&j->view, ev_time(), env.id, env.arrival,
				    env.rcpts[i].addr, "deferred", j->why);
		spool_envelope_free(&env);
		listed++;
	}
	if (j->pos < j->nids)
		log_role(LOG_SMTP, "delivery run domain=%s: %zu more messages deferred (%s), not "
		    "listed one by one", j->domain, j->nids - j->pos, j->why);
}

static void
log_job_free(struct log_job *j)
{
	free(j->ids);
	free(j);
}

/* log_job_done - on the loop (ran 0: the stop took the job from the queue
 * before the thread did; listing it then could keep the stop reading the
 * disk for minutes) */
static void
log_job_done(struct work *w, int ran)
{
	struct log_job *j = (struct log_job *)w;

	if (!ran)
		log_job_unlisted(j, "spoold is stopping");
	log_job_free(j);
}

/* log_job_new - what r's log needs, and the rest of its snapshot, which r
 * gives up; NULL when out of memory */
static struct log_job *
log_job_new(struct despool *r, const char *why)
{
	struct log_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->work.run = log_job_run;
	j->work.done = log_job_done;
	snprintf(j->domain, sizeof(j->domain), "%s", r->domain);
	snprintf(j->relay, sizeof(j->relay), "%s", r->relay);
	snprintf(j->why, sizeof(j->why), "%s", why);
	j->view = run_view(r);
	j->view.relay = j->relay;
	j->ids = r->ids;
	j->nids = r->nids;
	j->pos = r->pos;
	r->ids = NULL;
	r->nids = r->pos = 0;
	return j;
}

/* run_log_waiting - the run never got to offer the rest of its snapshot
 * (or had none): a log job lists why each message waits, and the run is
 * over */
static void
run_log_waiting(struct despool *r, const char *why)
{
	struct log_job *j;

	if (r->atrn || (r->ids != NULL && r->pos >= r->nids)) {
		run_over(r);
		return;
	}
	if ((j = log_job_new(r, why)) == NULL)
		log_warnx("delivery run domain=%s: out of memory: its deferrals are not logged",
		    r->domain);
	else if (ctx.log_pool == NULL &&
	    (ctx.log_pool = workers_start(ctx.loop, 1, RUN_LOG_QUEUE)) == NULL) {
		log_job_unlisted(j, "no thread to list them");
		log_job_free(j);
	} else if (workers_submit(ctx.log_pool, &j->work) == -1) {
		log_job_unlisted(j, "the log is behind");
		log_job_free(j);
	}
	run_over(r);
}

/* run_defer - recipient i waits, with the peer's reply */
static void
run_defer(struct despool *r, size_t i, const char *reply)
{
	run_log(r, i, "deferred", reply);
	run_record(r, CHANGE_DEFER, &r->o.v[i].idx, 1, reply);
	r->deferred++;
}

/* ---- the message offered ---- */

static void
offer_forget(struct offer *o)
{
	if (o->loaded)
		spool_envelope_free(&o->env);
	o->loaded = 0;
	for (size_t i = 0; o->v != NULL && i < o->n; i++)
		free(o->v[i].refusal);
	free(o->to);
	free(o->v);
	o->to = NULL;
	o->v = NULL;
	o->n = 0;
}

static int
offer_read_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct despool *r = arg;

	return queue_read_body(ctx.queue, r->o.env.id, off, dst, len) == SPOOL_OK ? 0 : -1;
}

/* offer_load - the pending recipients of message id in the run's domain:
 * 1 when there are some, 0 when it is gone (delivered or deleted
 * meanwhile), -1 when it cannot be read now (out of memory, storage) */
static int
offer_load(struct despool *r, uint64_t id)
{
	struct offer *o = &r->o;
	enum spool_err rc;

	if ((rc = queue_envelope(ctx.queue, id, &o->env)) != SPOOL_OK)
		return rc == SPOOL_ENOTFOUND ? 0 : -1;
	o->loaded = 1;
	/* quarantined since the snapshot (a second look in another run) */
	if (queue_get_quarantine(ctx.queue, id, NULL) == SPOOL_OK)
		return 0;
	if ((o->to = calloc(o->env.nrcpts, sizeof(*o->to))) == NULL ||
	    (o->v = calloc(o->env.nrcpts, sizeof(*o->v))) == NULL)
		return -1;
	for (size_t i = 0; i < o->env.nrcpts; i++) {
		const struct spool_rcpt *sr = &o->env.rcpts[i];

		if (sr->done || strcmp(spool_rcpt_domain(sr->addr), r->domain) != 0)
			continue;
		o->to[o->n] = (struct smtp_client_rcpt){ .addr = sr->addr, .notify = sr->notify,
		    .orcpt_type = sr->orcpt_type, .orcpt = sr->orcpt };
		o->v[o->n++].idx = (unsigned)i;
	}
	return o->n > 0;
}

/* offer_msg - what the client sends for the loaded message */
static void
offer_msg(struct despool *r)
{
	struct offer *o = &r->o;

	o->msg = (struct smtp_client_msg){
		.sender = o->env.sender, .rcpts = o->to, .nrcpts = o->n, .size = o->env.size,
		.eight_bit = (o->env.flags & (ENV_8BIT_SEEN | ENV_8BITMIME)) != 0,
		.smtputf8 = (o->env.flags & ENV_SMTPUTF8) != 0,
		.ret = o->env.ret, .envid = o->env.envid,
		.read_body = offer_read_body, .body_arg = r,
	};
}

/* offer_refused - recipient i was refused for good: keep the reply until
 * the message is settled, so its recipients share one DSN */
static void
offer_refused(struct despool *r, size_t i, int code, const char *reply)
{
	struct verdict *v = &r->o.v[i];

	v->code = code;
	free(v->refusal);
	if ((v->refusal = strdup(reply)) == NULL) {
		/* without the text no DSN can be written: retry later instead */
		v->code = 450;
		run_log(r, i, "deferred", "out of memory recording a refusal");
		run_record(r, CHANGE_DEFER, &v->idx, 1, reply);
		r->deferred++;
	}
}

/* offer_defer_held - the 452s that will not go again now wait like any
 * recipient refused for now */
static void
offer_defer_held(struct despool *r)
{
	for (size_t i = 0; r->o.loaded && i < r->o.n; i++) {
		if (r->o.v[i].code != 452)
			continue;
		run_defer(r, i, r->o.v[i].refusal);
		r->o.v[i].code = 451;
	}
}

/* offer_again - recipients the peer refused with 452 (too many recipients,
 * RFC 5321 4.5.3.1.10) go again at once in a new transaction, as long as
 * the last one got a message through; 1 when the message is offered again,
 * else they are deferred like any 4xx */
static int
offer_again(struct despool *r)
{
	struct offer *o = &r->o;
	size_t k = 0;

	if (!o->round_sent) {
		offer_defer_held(r);
		return 0;
	}
	o->round_sent = 0;
	for (size_t i = 0; i < o->n; i++) {
		if (o->v[i].code != 452) {
			free(o->v[i].refusal);
			continue;
		}
		o->to[k] = o->to[i];
		o->v[k] = (struct verdict){ .idx = o->v[i].idx };
		free(o->v[i].refusal);
		k++;
	}
	o->n = k;
	o->msg.nrcpts = k;
	if (k > 0)
		r->offered++;
	return k > 0;
}

static void
offer_bounced(void *arg, enum spool_err result)
{
	run_committed(arg);
}

/* offer_settle - the message's outcome is known: the recipients refused
 * for good leave the queue together, with one DSN to the sender */
static void
offer_settle(struct despool *r)
{
	struct offer *o = &r->o;
	struct bounce_rcpt *b;
	size_t nb = 0;

	if (!o->loaded || (b = calloc(o->n ? o->n : 1, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < o->n; i++) {
		if (o->v[i].code / 100 != 5 || o->v[i].refusal == NULL)
			continue;
		run_log(r, i, "bounced", o->v[i].refusal);
		b[nb].index = o->v[i].idx;
		b[nb++].reply = o->v[i].refusal;
		o->v[i].code = 0;
	}
	/* no Remote-MTA when spoold decided alone (null MX, no such domain) */
	if (nb > 0 && bounce_submit(&o->env, b, nb, r->rt->conf->hostname,
	    r->remote[0] ? r->remote : NULL, offer_bounced, r) == 0) {
		r->pending++;
		r->bounced += nb;
	}
	free(b);
}

/* ---- the SMTP client's ops ---- */

/* run_next_domain - an ATRN run moves on to its next domain: 1 when that
 * one has a snapshot to go through */
static int
run_next_domain(struct despool *r)
{
	while (r->atrn && r->di + 1 < r->ndomains) {
		snprintf(r->domain, sizeof(r->domain), "%s", r->domains[++r->di]);
		free(r->ids);
		r->ids = NULL;
		r->pos = r->nids = 0;
		if (queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) == SPOOL_OK && r->nids > 0)
			return 1;
	}
	return 0;
}

static void
rescan_recorded(void *arg, enum spool_err result)
{
	run_committed(arg);
}

/* offer_still_there - the message is queued and not quarantined: a look
 * takes seconds, in which spoolctl or another run may have changed that */
static int
offer_still_there(uint64_t id)
{
	struct spool_envelope env;

	if (queue_get_quarantine(ctx.queue, id, NULL) == SPOOL_OK ||
	    queue_envelope(ctx.queue, id, &env) != SPOOL_OK)
		return 0;
	spool_envelope_free(&env);
	return 1;
}

/* run_rescanned - the filters' second look at the loaded message: offer
 * it (passed, or still no filter and milter-default-action accept), keep
 * it back (quarantine), or leave it queued for another run */
static void
run_rescanned(void *arg, enum rescan_result res, const char *reason)
{
	struct despool *r = arg;
	uint64_t id = r->o.env.id;
	int rc = 0;

	r->rescan = NULL;
	if ((res == RESCAN_PASSED || res == RESCAN_UNSCANNED) && !offer_still_there(id)) {
		/* deleted, or held by another run's look, while this one looked */
		res = RESCAN_LATER;
	}
	switch (res) {
	case RESCAN_PASSED:
		if ((rc = queue_scanned(ctx.queue, id, rescan_recorded, r)) == 0)
			r->pending++;
		r->o.scanned = 1;
		break;
	case RESCAN_UNSCANNED:
		r->o.scanned = 1;
		break;
	case RESCAN_QUARANTINE:
		if ((rc = queue_quarantine(ctx.queue, id, reason, rescan_recorded, r)) == 0) {
			r->pending++;
			metrics_inc(MC_QUARANTINED_RESCAN);
		}
		offer_forget(&r->o);
		break;
	case RESCAN_LATER:
		/* a filter said "not now" (4xx): a deferral like a site's 4xx,
		 * so the run counts it and the retry schedule backs off */
		if (r->o.loaded && offer_still_there(id)) {
			const char *filter_said = reason != NULL && reason[0] != '\0' ? reason : "try again later";
			char why[300];

			smtp_reply_text(why, sizeof(why), R_FILTER_HELD, 1, &filter_said, 1);
			for (size_t i = 0; i < r->o.n; i++)
				run_defer(r, i, why);
		}
		offer_forget(&r->o);
		break;
	}
	if (rc == -1)
		log_warnx("%016llx: out of memory recording the rescan; it is done again later",
		    (unsigned long long)id);
	if (r->client != NULL)
		smtp_client_resume(r->client);
}

/* run_offer - hand the loaded message to the client, timed for the log */
static const struct smtp_client_msg *
run_offer(struct despool *r)
{
	offer_msg(r);
	r->offered++;
	r->t_offer = ev_now(ctx.loop);
	if (r->t_ready == 0)
		r->t_ready = r->t_offer;
	return &r->o.msg;
}

static const struct smtp_client_msg *
run_next(void *arg)
{
	struct despool *r = arg;
	int loaded;

	if (run_window_full(r)) {
		r->window_full = 1;
		return &smtp_client_wait;
	}
	if (r->o.scanned) {	/* the rescan passed it */
		r->o.scanned = 0;
		return run_offer(r);
	}
	offer_settle(r);
	if (offer_again(r)) {
		r->t_offer = ev_now(ctx.loop);
		return &r->o.msg;
	}
	offer_forget(&r->o);
	while (r->pos < r->nids || run_next_domain(r)) {
		if ((loaded = offer_load(r, r->ids[r->pos++])) == 1 &&
		    rescan_wanted(r->rt, &r->o.env)) {
			if ((r->rescan = rescan_start(ctx.loop, r->rt, ctx.queue, &r->o.env,
			    run_rescanned, r)) != NULL)
				return &smtp_client_wait;
			log_warnx("%016llx %s: cannot offer it to the filters again now; it stays "
			    "queued", (unsigned long long)r->o.env.id, r->domain);
			offer_forget(&r->o);
			continue;
		}
		if (loaded == 1)
			return run_offer(r);
		if (loaded == -1)
			log_warnx("%016llx %s: cannot read the message now; it stays queued",
			    (unsigned long long)r->ids[r->pos - 1], r->domain);
		offer_forget(&r->o);
	}
	return NULL;
}

static void
run_rcpt(void *arg, const struct smtp_client_msg *m, size_t i, int code, const char *reply)
{
	struct despool *r = arg;
	struct verdict *v = &r->o.v[i];

	v->code = code;
	if (code / 100 == 2)
		return;
	if (code / 100 == 5) {
		offer_refused(r, i, code, reply);
		return;
	}
	if (code == 452 && (v->refusal = strdup(reply)) != NULL)
		return;		/* held: offer_again decides */
	v->code = code == 452 ? 451 : code;
	run_defer(r, i, reply);
}

static void
run_sent(void *arg, const struct smtp_client_msg *m, int code, const char *reply)
{
	struct despool *r = arg;
	struct offer *o = &r->o;
	unsigned *done = calloc(o->n ? o->n : 1, sizeof(*done));
	size_t nd = 0;

	o->round_sent = code / 100 == 2;
	for (size_t i = 0; i < o->n; i++) {
		if (o->v[i].code / 100 != 2)
			continue;
		if (code / 100 == 2) {
			run_log(r, i, "sent", reply);
			if (done)
				done[nd++] = o->v[i].idx;
			r->delivered++;
		} else if (code / 100 == 5)
			offer_refused(r, i, code, reply);
		else
			run_defer(r, i, reply);
	}
	if (nd > 0)
		run_record(r, CHANGE_DONE, done, nd, NULL);
	else if (code / 100 == 2 && done == NULL)
		log_warnx("%s: out of memory recording deliveries (they may be repeated)", r->domain);
	free(done);
}

/* run_next_target - the session with targets[ti] failed before any message
 * was offered: 1 when another address is being dialled (RFC 5321 5.1) */
static int
run_next_target(struct despool *r)
{
	while (++r->ti < r->ntargets && !ctx.stopping)
		if (run_connect(r) == 0)
			return 1;
	return 0;
}

static void
run_done(void *arg, const char *error)
{
	struct despool *r = arg;
	char why[900];

	if (r->rescan != NULL) {	/* the session went while the filters looked */
		rescan_cancel(r->rescan);
		r->rescan = NULL;
		r->o.scanned = 0;
	}
	offer_settle(r);
	offer_defer_held(r);
	r->client = NULL;
	r->window_full = 0;	/* a resume is for the client that asked to wait */
	if (error != NULL && r->offered == 0 && r->pending == 0 && !r->atrn) {
		log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay,
		    error);
		if (run_next_target(r))
			return;
	}
	log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s messages=%zu delivered=%lu deferred=%lu "
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
	run_route_record(r, error ? why : "");
	r->last_deferral[0] = '\0';
	run_over(r);
}

static const struct smtp_client_ops run_ops = {
	.next = run_next, .rcpt = run_rcpt, .sent = run_sent, .done = run_done,
};

/* ---- connecting ---- */

/* client_params - the SMTP client's settings for this run's configuration */
static void
client_params(const struct despool *r, struct smtp_client_params *p)
{
	const struct spoold_conf *cf = r->rt->conf;

	memset(p, 0, sizeof(*p));
	p->helo_name = cf->hostname;
	p->peer_name = r->relay;
	p->log_peer = r->relay;
	p->log_role = RUN_ROLE(r);
	p->timeout_banner = (double)cf->timeout_smtp_greeting;
	p->timeout_command = (double)cf->timeout_smtp_command;
	p->timeout_data = (double)cf->timeout_smtp_data_init;
	p->timeout_block = (double)cf->timeout_smtp_data_block;
	p->timeout_eom = (double)cf->timeout_smtp_data_done;
}

/* run_snapshot - the ids of the domain's mail, oldest first, once a run:
 * at its first connection; 0, or -1 when they cannot be read */
static int
run_snapshot(struct despool *r)
{
	if (r->ids == NULL && queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) != SPOOL_OK) {
		r->ids = NULL;
		r->nids = 0;
		return -1;
	}
	return 0;
}

static void
run_connected(struct io *io, enum io_event ev, void *arg)
{
	struct despool *r = arg;
	const struct route_target *t = &r->targets[r->ti];
	int named = t->name[0] != '\0' && t->name[0] != '[';
	struct smtp_client_params p;
	char why[500];

	client_params(r, &p);
	p.peer_name = named ? t->name : r->relay;
	p.loop_name = r->rt->conf->hostname;
	p.tls_cred = r->rt->client->cred;
	p.tls_prio = r->rt->client->prio;
	p.tls_required = r->tls != TLS_MAY;	/* tls may: STARTTLS when offered, unchecked */
	/* the name the route was looked up by, or the address itself */
	p.tls_verify_name = r->tls != TLS_VERIFY ? NULL : named ? t->name : r->address;
	r->connecting = NULL;
	if (ev == IO_CONNECTED) {
		if (run_snapshot(r) == -1)
			snprintf(why, sizeof(why), "cannot read the spool");
		else if ((r->client = smtp_client_start(io, &p, &run_ops, r)) != NULL) {
			run_enter_state(r, RUN_SESSION);
			return;
		} else
			snprintf(why, sizeof(why), "out of memory");
	} else
		snprintf(why, sizeof(why), "connect to %s: %s", r->relay,
		    ev == IO_TIMEOUT ? "timed out" : io_error(io));
	log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay, why);
	io_free(io);
	if (run_next_target(r))
		return;
	r->again = 0;	/* the site is not there: the next ETRN tries again */
	route_record(r, r->domain, why);
	run_log_waiting(r, why);	/* then over */
}

/* run_describe - relay and remote for the log and DSNs, from target t */
static void
run_describe(struct despool *r, const struct route_target *t)
{
	int port = sockaddr_port((const struct sockaddr *)&t->ss);

	sockaddr_text((const struct sockaddr *)&t->ss, r->address, sizeof(r->address));
	if (t->name[0] != '\0' && t->name[0] != '[') {
		snprintf(r->relay, sizeof(r->relay), "%s[%s]:%d", t->name, r->address, port);
		snprintf(r->remote, sizeof(r->remote), "%s", t->name);
	} else {
		snprintf(r->relay, sizeof(r->relay), "[%s]:%d", r->address, port);
		snprintf(r->remote, sizeof(r->remote), "[%s]", r->address);
	}
}

/* run_connect - dial targets[ti] (RUN_CONNECTING); -1 if that cannot even
 * start */
static int
run_connect(struct despool *r)
{
	const struct route_target *t = &r->targets[r->ti];

	run_describe(r, t);
	r->offered = 0;
	if (ctx.is_self((const struct sockaddr *)&t->ss)) {
		/* RFC 5321 5.2: never deliver to ourselves */
		snprintf(r->why, sizeof(r->why), "%s is this spoold's own listener: the route loops",
		    r->relay);
		log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s status=deferred (%s)", r->domain, r->relay,
		    r->why);
		return -1;
	}
	r->connecting = io_connect(ctx.loop, (const struct sockaddr *)&t->ss, t->len,
	    run_connected, r);
	if (r->connecting == NULL) {
		snprintf(r->why, sizeof(r->why), "cannot start a connection");
		return -1;
	}
	io_set_timeout(r->connecting, (double)r->rt->conf->timeout_smtp_connect, 0);
	run_enter_state(r, RUN_CONNECTING);
	return 0;
}

/* run_launch - dial the first target; -1 if it cannot even start.  The
 * snapshot waits for the connection (run_snapshot): a site that is not
 * there costs the loop no read of the domain's ids, which on a cold spool
 * are disk reads (issue 14); messages= is the domain's count now. */
static int
run_launch(struct despool *r)
{
	struct spool_counters c;

	free(r->ids);
	r->ids = NULL;
	r->pos = 0;
	r->ti = 0;
	r->delivered = r->deferred = r->bounced = 0;
	r->again = 0;
	r->started = time(NULL);
	r->t_start = ev_now(ctx.loop);
	r->t_ready = r->t_offer = 0;	/* a run started again by run_end */
	snprintf(r->why, sizeof(r->why), "cannot read the spool");
	r->nids = 0;
	if (queue_counters(ctx.queue, r->domain, &c) != SPOOL_OK ||
	    (run_connect(r) == -1 && !run_next_target(r)))
		return -1;
	log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s messages=%llu started", r->domain,
	    r->relay, (unsigned long long)c.messages);
	metrics_inc(MC_RUNS_STARTED);
	return 0;
}

/* run_kick - RUN_LAUNCHING: the connection comes from the loop, right
 * after the ETRN reply, which never waits for it */
static void
run_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct despool *r = w->data;

	if (!ctx.stopping && run_launch(r) == 0)
		return;
	log_role(RUN_ROLE(r), "delivery run domain=%s status=deferred (%s)", r->domain,
	    ctx.stopping ? "shutting down" : r->why);
	route_record(r, r->domain, r->why);
	r->again = 0;
	if (ctx.stopping)
		run_over(r);
	else
		run_log_waiting(r, r->why);	/* then over */
}

/* ---- a domain that takes no mail ---- */

/* A domain that takes no mail is bounced this many messages at a time, a
 * batch per pass of the loop, so sessions never wait on a big queue. */
#define RUN_BOUNCE_BATCH	256

/* run_bounce_step - RUN_BOUNCING (null MX, no such domain): the next batch
 * of the snapshot goes back with DSNs (none for the DSNs themselves, which
 * come from <>) */
static void
run_bounce_step(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct despool *r = w->data;
	char reply[600];

	const char *why = r->why;

	smtp_reply_text(reply, sizeof(reply), R_DSN_NO_DOMAIN, 1, &why, 1);
	for (unsigned k = 0; k < RUN_BOUNCE_BATCH && r->pos < r->nids; k++) {
		if (offer_load(r, r->ids[r->pos++]) == 1) {
			for (size_t i = 0; i < r->o.n; i++)
				offer_refused(r, i, 550, reply);
			offer_settle(r);
		}
		offer_forget(&r->o);
	}
	if (r->pos < r->nids && !ctx.stopping) {
		ev_timer_set(w, 0., 0.);
		ev_timer_start(loop, w);
		return;
	}
	route_record(r, r->domain, r->why);
	run_over(r);
}

/* run_bounce_all - the route says the domain takes no mail at all */
static int
run_bounce_all(struct despool *r, const char *why)
{
	if (queue_ids(ctx.queue, r->domain, &r->ids, &r->nids) != SPOOL_OK)
		return -1;
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->pos = 0;
	ev_timer_init(&r->kick, run_bounce_step, 0., 0.);
	r->kick.data = r;
	ev_timer_start(ctx.loop, &r->kick);
	run_enter_state(r, RUN_BOUNCING);
	return 0;
}

/* ---- resolving ---- */

static void
run_resolved(void *arg, enum route_result res, const struct route_target *t, size_t n,
    const char *why)
{
	struct despool *r = arg;

	r->lookup = NULL;
	if (res == ROUTE_OK) {
		memcpy(r->targets, t, n * sizeof(*t));
		r->ntargets = n;
		if (run_launch(r) == 0)
			return;
		why = r->why;
	} else
		log_role(RUN_ROLE(r), "delivery run domain=%s status=%s (%s)", r->domain,
		    res == ROUTE_PERMFAIL ? "bounced" : "deferred", why);
	snprintf(r->relay, sizeof(r->relay), "(no route)");
	if (res == ROUTE_PERMFAIL && run_bounce_all(r, why) == 0)
		return;
	route_record(r, r->domain, why);
	run_log_waiting(r, why);	/* then over */
}

/* run_resolve - look the route's name up (RUN_RESOLVING); 0, or -1 with
 * the reason */
static int
run_resolve(struct despool *r, const char **reason)
{
	int port = r->how.port ? r->how.port : r->how.kind == ROUTE_MX ?
	    (int)r->rt->conf->mx_port : 25;

	if (ctx.dns == NULL) {
		*reason = "no DNS resolver (see the log at start-up)";
		return -1;
	}
	r->lookup = r->how.kind == ROUTE_MX ?
	    route_mx(ctx.dns, r->domain, port, r->rt->conf->hostname, run_resolved, r) :
	    route_host(ctx.dns, r->how.host, port, run_resolved, r);
	if (r->lookup == NULL) {
		*reason = "out of memory";
		return -1;
	}
	r->started = time(NULL);
	r->t_start = ev_now(ctx.loop);
	snprintf(r->relay, sizeof(r->relay), "(resolving)");
	log_role(RUN_ROLE(r), "delivery run domain=%s resolving %s", r->domain,
	    r->how.kind == ROUTE_MX ? "MX" : r->how.host);
	run_enter_state(r, RUN_RESOLVING);
	return 0;
}

/* ---- a run's life ---- */

static void
run_free(struct despool *r)
{
	struct despool **pp;

	for (pp = &ctx.runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (r->rescan != NULL)
		rescan_cancel(r->rescan);
	offer_forget(&r->o);
	ev_timer_stop(ctx.loop, &r->kick);
	rt_unref(r->rt);
	free(r->how.host);
	free(r->domains);
	free(r->ids);
	free(r);
}

/* run_end - RUN_DRAINING with every outcome committed: once more if an
 * ETRN asked meanwhile and mail is waiting, else let go */
static void
run_end(struct despool *r)
{
	struct spool_counters c;

	if (r->again && !ctx.stopping && r->ntargets > 0 && !r->atrn &&
	    queue_counters(ctx.queue, r->domain, &c) == SPOOL_OK && c.messages > 0 &&
	    run_launch(r) == 0)
		return;
	run_free(r);
}

static struct despool *
run_new(const char *domain, struct spoold_rt *rt)
{
	struct despool *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	r->rt = rt_ref(rt);
	r->tls = TLS_MAY;
	ev_init(&r->kick, run_kick);
	r->kick.data = r;
	return r;
}

/* run_for_domain - a run for d's route */
static struct despool *
run_for_domain(const struct domain_conf *d, struct spoold_rt *rt)
{
	struct despool *r = run_new(d->name, rt);

	if (r == NULL)
		return NULL;
	r->tls = d->tls;
	r->how.kind = d->route.kind;
	r->how.port = d->route.port;
	if (d->route.host != NULL && (r->how.host = strdup(d->route.host)) == NULL) {
		run_free(r);
		return NULL;
	}
	return r;
}

static void
run_link(struct despool *r)
{
	r->next = ctx.runs;
	ctx.runs = r;
}

/* despool_running - the run that holds domain, or NULL */
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

int
despool_busy(const char *domain)
{
	return despool_running(domain) != NULL;
}

/* run_begin - the first step of a new run by its route: a literal one
 * dials from the loop (RUN_LAUNCHING), a name is looked up; 0, or -1 with
 * the reason */
static int
run_begin(struct despool *r, const struct sockaddr *requester, const char **reason)
{
	if (!route_is_literal(&r->how))
		return run_resolve(r, reason);
	if (route_literal(&r->how, requester, &r->targets[0], reason) == -1)
		return -1;
	r->ntargets = 1;
	ev_timer_set(&r->kick, 0., 0.);
	ev_timer_start(ctx.loop, &r->kick);
	run_enter_state(r, RUN_LAUNCHING);
	return 0;
}

enum despool_start
despool_start(const struct domain_conf *d, struct spoold_rt *rt, const struct sockaddr *requester,
    unsigned long long *queued, const char **reason)
{
	struct spool_counters c;
	struct despool *r;

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
	if (ctx.stopping) {
		*reason = "spoold is shutting down";
		return DESPOOL_FAILED;
	}
	if (d->route.kind == ROUTE_NONE) {
		*reason = "no deliver-to route configured";
		route_record(NULL, d->name, *reason);
		return DESPOOL_NO_ROUTE;
	}
	if ((r = run_for_domain(d, rt)) == NULL) {
		*reason = "out of memory";
		return DESPOOL_FAILED;
	}
	if (run_begin(r, requester, reason) == -1) {
		route_record(NULL, d->name, *reason);
		run_free(r);
		return DESPOOL_NO_ROUTE;
	}
	run_link(r);
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
		switch (r->state) {
		case RUN_SESSION:
			smtp_client_abort(r->client, "spoold is shutting down");	/* done() runs */
			break;
		case RUN_LAUNCHING:
		case RUN_BOUNCING:
			ev_timer_stop(ctx.loop, &r->kick);
			run_over(r);
			break;
		case RUN_CONNECTING:
			io_free(r->connecting);
			r->connecting = NULL;
			run_over(r);
			break;
		case RUN_RESOLVING:
			route_cancel(r->lookup);
			r->lookup = NULL;
			run_over(r);
			break;
		case RUN_NEW:		/* never linked */
		case RUN_DRAINING:
			break;	/* goes when the queue reports its outcomes */
		}
	}
}

void
despool_close(void)
{
	if (ctx.log_pool != NULL)
		workers_stop(ctx.log_pool);	/* the job under way ends, the rest are one line each */
	ctx.log_pool = NULL;
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
	return some && !ctx.stopping ? DESPOOL_ATRN_OK : some ? DESPOOL_ATRN_BUSY :
	    DESPOOL_ATRN_NO_MAIL;
}

int
despool_turn(const char *const *domains, size_t n, struct io *io, struct spoold_rt *rt,
    const char *who, const char *peer)
{
	struct smtp_client_params p;
	struct despool *r;
	char tls[128];

	/* the session's configuration: its TLS credentials stay alive */
	if (n == 0 || despool_atrn_check(domains, n) != DESPOOL_ATRN_OK ||
	    (r = run_new(domains[0], rt)) == NULL)
		return -1;
	if ((r->domains = calloc(n, sizeof(*r->domains))) == NULL) {
		run_free(r);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(r->domains[i], sizeof(r->domains[i]), "%s", domains[i]);
	r->ndomains = n;
	r->atrn = 1;
	r->started = time(NULL);
	r->t_start = ev_now(ctx.loop);
	snprintf(r->relay, sizeof(r->relay), "odmr:%s[%s]", who, peer);
	snprintf(r->remote, sizeof(r->remote), "[%s]", peer);
	/* the first domain with mail; the others follow in run_next */
	r->di = (size_t)-1;
	if (!run_next_domain(r)) {
		run_free(r);
		return -1;
	}
	client_params(r, &p);
	/* the TLS session, if any, goes on as it is: spoold stays its server */
	if ((r->client = smtp_client_start(io, &p, &run_ops, r)) == NULL) {
		run_free(r);
		return -1;
	}
	run_enter_state(r, RUN_SESSION);
	run_link(r);
	/* the turned connection's TLS (spoold its server): said here, as a
	 * delivery over a connection of our own says it in smtp_client */
	log_role(RUN_ROLE(r), "delivery run domain=%s relay=%s domains=%zu started, %s%s",
	    r->domains[0], r->relay, n, io_is_tls(io) ? "TLS " : "no TLS (the mail crosses in clear)",
	    io_is_tls(io) ? io_tls_info(io, tls, sizeof(tls)) : "");
	metrics_inc(MC_RUNS_STARTED);
	return 0;
}
