/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * callout.c - the recipient probe's state machine; see callout.h.
 *
 *   CALLOUT_LAUNCHING  -> CALLOUT_CONNECTING (a literal route, dialled
 *                         from the loop so the callback never comes from
 *                         inside callout_start)
 *   CALLOUT_RESOLVING  -> CALLOUT_CONNECTING, CALLOUT_DONE (no route)
 *   CALLOUT_CONNECTING -> CALLOUT_SESSION, CALLOUT_CONNECTING (the next
 *                         address), CALLOUT_DONE
 *   CALLOUT_SESSION    -> CALLOUT_DONE (the RCPT got a reply, or nothing
 *                         is left to try), CALLOUT_CONNECTING (the session
 *                         failed before the RCPT reply: the next address)
 *
 * A timer over the whole probe (verify-timeout) ends it in any state with
 * CALLOUT_UNKNOWN.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callout.h"
#include "cidr.h"
#include "io.h"
#include "log.h"
#include "route.h"
#include "runtime.h"
#include "smtp_client.h"

enum callout_state {
	CALLOUT_LAUNCHING,
	CALLOUT_RESOLVING,
	CALLOUT_CONNECTING,
	CALLOUT_SESSION,
	CALLOUT_DONE,
};

struct callout {
	enum callout_state	 state;
	struct spoold_rt	*rt;
	char			 addr[SMTP_PATH_MAX * 2 + 2];
	char			 domain[SMTP_DOMAIN_MAX + 1];
	struct route		 how;		/* the domain's deliver-to (host borrowed from rt) */
	enum tls_policy		 tls;
	struct route_lookup	*lookup;	/* CALLOUT_RESOLVING */
	struct route_target	 targets[ROUTE_MAX_TARGETS];
	size_t			 ntargets, ti;
	struct io		*connecting;	/* CALLOUT_CONNECTING */
	struct smtp_client	*client;	/* CALLOUT_SESSION */
	struct smtp_client_rcpt	 rcpt;
	struct smtp_client_msg	 msg;
	int			 offered;	/* the probe went to this session */
	int			 code;		/* the RCPT reply's, 0 before */
	char			 reply[512];	/* it, or why there is none */
	char			 relay[400];
	char			 address[64];
	ev_timer		 timer;		/* the whole probe; the launch */
	callout_done_cb		*done;
	void			*arg;
	int			 cancelled;
};

static struct {
	struct ev_loop	*loop;
	struct dns	*dns;
	int		(*is_self)(const struct sockaddr *);
} ctx;

static int callout_connect_next(struct callout *);

void
callout_init(struct ev_loop *loop, struct dns *dns, int (*is_self)(const struct sockaddr *))
{
	ctx.loop = loop;
	ctx.dns = dns;
	ctx.is_self = is_self;
}

const char *
callout_strresult(enum callout_result r)
{
	switch (r) {
	case CALLOUT_DELIVERABLE:	return "deliverable";
	case CALLOUT_UNDELIVERABLE:	return "undeliverable";
	case CALLOUT_UNKNOWN:		return "unknown";
	}
	return "?";
}

static const char *
callout_strstate(enum callout_state st)
{
#define CASE(x) case x: return #x
	switch (st) {
	CASE(CALLOUT_LAUNCHING);
	CASE(CALLOUT_RESOLVING);
	CASE(CALLOUT_CONNECTING);
	CASE(CALLOUT_SESSION);
	CASE(CALLOUT_DONE);
	}
#undef CASE
	return "CALLOUT_?";
}

static void
callout_enter_state(struct callout *co, enum callout_state st)
{
	if (log_verbose() > 1)
		log_debug("callout to=<%s> state %s -> %s", co->addr, callout_strstate(co->state),
		    callout_strstate(st));
	co->state = st;
}

static void
callout_free(struct callout *co)
{
	ev_timer_stop(ctx.loop, &co->timer);
	if (co->lookup != NULL)
		route_cancel(co->lookup);
	if (co->connecting != NULL)
		io_free(co->connecting);
	rt_unref(co->rt);
	free(co);
}

/* callout_finish - the result, once; co is gone afterwards */
static void
callout_finish(struct callout *co, enum callout_result res)
{
	callout_enter_state(co, CALLOUT_DONE);
	if (!co->cancelled)
		co->done(co->arg, res, co->code, co->relay[0] != '\0' ? co->relay : "none",
		    co->reply);
	callout_free(co);
}

/* callout_unknown - no verdict from the primary: why */
static void
callout_unknown(struct callout *co, const char *why)
{
	if (co->code == 0 && why != co->reply)
		snprintf(co->reply, sizeof(co->reply), "%s", why);
	callout_finish(co, CALLOUT_UNKNOWN);
}

/* ---- the SMTP session ---- */

static const struct smtp_client_msg *
callout_next(void *arg)
{
	struct callout *co = arg;

	if (co->offered)
		return NULL;	/* QUIT */
	co->offered = 1;
	return &co->msg;
}

static void
callout_rcpt(void *arg, const struct smtp_client_msg *m, size_t i, int code, const char *reply)
{
	struct callout *co = arg;

	co->code = code;
	snprintf(co->reply, sizeof(co->reply), "%s", reply);
}

static void
callout_sent(void *arg, const struct smtp_client_msg *m, int code, const char *reply)
{
	/* never: a probe sends no DATA */
}

/* callout_session_done - the session is over (the client frees itself
 * after this returns) */
static void
callout_session_done(void *arg, const char *error)
{
	struct callout *co = arg;

	co->client = NULL;
	if (co->cancelled)
		return;		/* callout_cancel frees it */
	if (co->code != 0) {	/* the RCPT reply decides, whatever came after */
		callout_finish(co, co->code / 100 == 2 ? CALLOUT_DELIVERABLE :
		    co->code / 100 == 5 ? CALLOUT_UNDELIVERABLE : CALLOUT_UNKNOWN);
		return;
	}
	snprintf(co->reply, sizeof(co->reply), "%s: %s", co->relay, error ? error : "no reply to RCPT");
	co->offered = 0;
	co->ti++;
	if (callout_connect_next(co) == -1)
		callout_unknown(co, co->reply);
}

static const struct smtp_client_ops callout_ops = {
	.next = callout_next, .rcpt = callout_rcpt, .sent = callout_sent,
	.done = callout_session_done,
};

/* ---- connecting ---- */

static void
callout_params(const struct callout *co, const struct route_target *t,
    struct smtp_client_params *p)
{
	const struct spoold_conf *cf = co->rt->conf;
	int named = t->name[0] != '\0' && t->name[0] != '[';

	memset(p, 0, sizeof(*p));
	p->helo_name = cf->hostname;
	p->loop_name = cf->hostname;
	p->peer_name = named ? t->name : co->relay;
	p->log_peer = co->relay;
	p->log_role = LOG_VERIFY;
	p->timeout_banner = (double)cf->timeout_smtp_greeting;
	p->timeout_command = (double)cf->timeout_smtp_command;
	p->tls_cred = co->rt->client->cred;
	p->tls_prio = co->rt->client->prio;
	p->tls_required = co->tls != TLS_MAY;	/* as a delivery: the address is mail too */
	p->tls_verify_name = co->tls != TLS_VERIFY ? NULL : named ? t->name : co->address;
}

static void
callout_connected(struct io *io, enum io_event ev, void *arg)
{
	struct callout *co = arg;
	struct smtp_client_params p;

	co->connecting = NULL;
	if (ev == IO_CONNECTED) {
		callout_params(co, &co->targets[co->ti], &p);
		if ((co->client = smtp_client_start(io, &p, &callout_ops, co)) != NULL) {
			callout_enter_state(co, CALLOUT_SESSION);
			return;
		}
		snprintf(co->reply, sizeof(co->reply), "out of memory");
	} else
		snprintf(co->reply, sizeof(co->reply), "connect to %s: %s", co->relay,
		    ev == IO_TIMEOUT ? "timed out" : io_error(io));
	io_free(io);
	co->ti++;
	if (callout_connect_next(co) == -1)
		callout_unknown(co, co->reply);
}

/* callout_describe - relay and address for target t */
static void
callout_describe(struct callout *co, const struct route_target *t)
{
	int port = sockaddr_port((const struct sockaddr *)&t->ss);

	sockaddr_text((const struct sockaddr *)&t->ss, co->address, sizeof(co->address));
	if (t->name[0] != '\0' && t->name[0] != '[')
		snprintf(co->relay, sizeof(co->relay), "%s[%s]:%d", t->name, co->address, port);
	else
		snprintf(co->relay, sizeof(co->relay), "[%s]:%d", co->address, port);
}

/* callout_connect_next - dial targets[ti], or the next one that can be
 * dialled; -1 when none is left (co->reply says why) */
static int
callout_connect_next(struct callout *co)
{
	for (; co->ti < co->ntargets; co->ti++) {
		const struct route_target *t = &co->targets[co->ti];

		callout_describe(co, t);
		if (ctx.is_self((const struct sockaddr *)&t->ss)) {
			/* RFC 5321 5.2: never to ourselves */
			snprintf(co->reply, sizeof(co->reply), "%s is this spoold's own listener: the "
			    "route loops", co->relay);
			continue;
		}
		co->connecting = io_connect(ctx.loop, (const struct sockaddr *)&t->ss, t->len,
		    callout_connected, co);
		if (co->connecting == NULL) {
			snprintf(co->reply, sizeof(co->reply), "cannot start a connection");
			continue;
		}
		io_set_timeout(co->connecting, (double)co->rt->conf->timeout_smtp_connect, 0);
		callout_enter_state(co, CALLOUT_CONNECTING);
		return 0;
	}
	return -1;
}

/* ---- the route ---- */

static void
callout_resolved(void *arg, enum route_result res, const struct route_target *t, size_t n,
    const char *why)
{
	struct callout *co = arg;

	co->lookup = NULL;
	if (res != ROUTE_OK) {
		/* even a domain that takes no mail is no verdict on one address */
		callout_unknown(co, why);
		return;
	}
	memcpy(co->targets, t, n * sizeof(*t));
	co->ntargets = n;
	co->ti = 0;
	if (callout_connect_next(co) == -1)
		callout_unknown(co, co->reply);
}

static void
callout_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct callout *co = w->data;
	char why[sizeof(co->relay) + 80];

	if (co->state == CALLOUT_LAUNCHING) {
		ev_timer_set(&co->timer, (double)co->rt->conf->verify_timeout, 0.);
		ev_timer_start(ctx.loop, &co->timer);
		if (callout_connect_next(co) == -1)
			callout_unknown(co, co->reply);
		return;
	}
	snprintf(why, sizeof(why), "%s%sno answer within %llu s (verify-timeout)",
	    co->relay, co->relay[0] != '\0' ? ": " : "",
	    (unsigned long long)co->rt->conf->verify_timeout);
	if (co->client != NULL) {
		co->code = 0;	/* a 4xx so far is superseded by the time out */
		snprintf(co->reply, sizeof(co->reply), "%s", why);
		co->cancelled = 1;	/* the session's done() must not go on */
		smtp_client_abort(co->client, "verify-timeout");
		co->cancelled = 0;
		co->client = NULL;
	}
	callout_unknown(co, why);
}

/* callout_route - look the route up, or take its literal target */
static int
callout_route(struct callout *co)
{
	const char *reason = NULL;
	int port = co->how.port ? co->how.port : co->how.kind == ROUTE_MX ?
	    (int)co->rt->conf->mx_port : 25;

	if (route_is_literal(&co->how)) {
		if (route_literal(&co->how, NULL, &co->targets[0], &reason) == -1)
			return -1;
		co->ntargets = 1;
		ev_timer_set(&co->timer, 0., 0.);	/* dial from the loop */
		callout_enter_state(co, CALLOUT_LAUNCHING);
		return 0;
	}
	if (ctx.dns == NULL)
		return -1;
	co->lookup = co->how.kind == ROUTE_MX ?
	    route_mx(ctx.dns, co->domain, port, co->rt->conf->hostname, callout_resolved, co) :
	    route_host(ctx.dns, co->how.host, port, callout_resolved, co);
	if (co->lookup == NULL)
		return -1;
	ev_timer_set(&co->timer, (double)co->rt->conf->verify_timeout, 0.);
	callout_enter_state(co, CALLOUT_RESOLVING);
	return 0;
}

struct callout *
callout_start(struct spoold_rt *rt, const struct domain_conf *d, const char *addr,
    callout_done_cb *done, void *arg)
{
	struct callout *co = calloc(1, sizeof(*co));

	if (co == NULL)
		return NULL;
	co->rt = rt_ref(rt);
	snprintf(co->addr, sizeof(co->addr), "%s", addr);
	snprintf(co->domain, sizeof(co->domain), "%s", d->name);
	co->how = d->route;	/* its host lives as long as rt */
	co->tls = d->tls;
	co->done = done;
	co->arg = arg;
	co->rcpt.addr = co->addr;
	co->msg.sender = "";	/* MAIL FROM:<>: no bounce can come of a probe */
	co->msg.rcpts = &co->rcpt;
	co->msg.nrcpts = 1;
	co->msg.probe = 1;
	co->msg.ret = RET_UNSET;
	for (const char *p = addr; *p; p++)
		co->msg.smtputf8 |= (unsigned char)*p >= 0x80;
	ev_timer_init(&co->timer, callout_timer, 0., 0.);
	co->timer.data = co;
	if (callout_route(co) == -1) {
		callout_free(co);
		return NULL;
	}
	ev_timer_start(ctx.loop, &co->timer);
	return co;
}

void
callout_cancel(struct callout *co)
{
	co->cancelled = 1;
	if (co->client != NULL)
		smtp_client_abort(co->client, "the probe was cancelled");
	co->client = NULL;
	callout_free(co);
}
