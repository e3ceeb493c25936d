/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * relay.c - the turned ODMR session: receive from the provider, pass each
 * message on to the local MTA; see relay.h.
 *
 * Each message gets its own connection to the local MTA (on loopback or a
 * unix socket that costs little, and a local MTA that went down between two
 * messages is noticed at once), opened at the provider's DATA so the body
 * streams through.  Its verdict becomes the reply to the provider's dot.
 */
#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "buf.h"
#include "io.h"
#include "log.h"
#include "smtp_client.h"
#include "smtp_cmd.h"
#include "smtp_server.h"
#include "relay.h"
#include "upstream.h"

#define RELAY_MAX_MESSAGE	(1024ULL * 1024 * 1024)
/* Message data waiting for the local MTA: above HIGH the provider is not
 * read any more, below LOW it is again.  This is all the memory a message
 * of any size takes. */
#define RELAY_BUF_HIGH		(256 * 1024)
#define RELAY_BUF_LOW		(64 * 1024)

struct relay;

/* One message on its way from the provider to the local MTA. */
struct relay_msg {
	struct relay		*r;
	struct smtp_client	*client;	/* talking to the local MTA */
	int			 connecting;	/* ... or about to */
	struct smtp_client_msg	 cm;
	struct buf		 buf;		/* arrived, not yet passed on */
	struct smtp_message	*m;		/* from message(), freed with rm */
	struct smtp_client_rcpt	 rcpt;
	char			 sender[600], to[600];
	char			 envid[SMTP_ENVID_MAX + 1];
	char			 orcpt_type[32], orcpt[SMTP_ORCPT_MAX + 1];
	int			 ended;		/* the provider's dot: the message passed */
	int			 aborted;	/* refused by the engine, or the provider left */
	int			 waiting;	/* the client wants more data */
	int			 offered, rcpt_code, final_code;
	char			 text[512];
};

struct relay {
	struct relay		*next;
	struct ev_loop		*loop;
	const struct ec_conf	*cf;
	const struct ec_server	*srv;
	relay_done		*done;
	void			*arg;
	struct smtp_session	*session;
	struct smtp_server_config cfg;
	struct relay_msg	*inflight;
	int			 closed;	/* the provider's session is over */
	unsigned		 live;		/* relay_msgs not yet freed */
	struct sockaddr_storage	 local;		/* relay-to, resolved at the start */
	socklen_t		 locallen;	/* 0: could not be resolved */
	/* per domain, for the run's log line: relayed, not relayed */
	struct { char name[SMTP_DOMAIN_MAX + 1]; unsigned long ok, not; } dom[16];
	size_t			 ndom;
	int			 paused;	/* the provider is not being read */
	unsigned		 rcpts;		/* in the transaction being built */
	uint64_t		 ids;
	struct relay_result	 res;
};

static struct relay *relays;

static void relay_finish(struct relay *);

/* ---- the local MTA side ---- */

static const struct smtp_client_msg *
relay_next(void *arg)
{
	struct relay_msg *rm = arg;

	if (rm->offered++)
		return NULL;	/* one message per connection */
	return &rm->cm;
}

static void
relay_rcpt(void *arg, const struct smtp_client_msg *m, size_t i, int code, const char *reply)
{
	struct relay_msg *rm = arg;

	rm->rcpt_code = code;
	if (code / 100 != 2)
		snprintf(rm->text, sizeof(rm->text), "%s", reply);
}

static void
relay_sent(void *arg, const struct smtp_client_msg *m, int code, const char *reply)
{
	struct relay_msg *rm = arg;

	rm->final_code = code;
	snprintf(rm->text, sizeof(rm->text), "%s", reply);
}

/* relay_read_stream - the client takes what has arrived; reading the
 * provider resumes once the buffer is low again */
static long
relay_read_stream(void *arg, void *dst, size_t len, int *end)
{
	struct relay_msg *rm = arg;
	struct relay *r = rm->r;
	size_t n = buf_used(&rm->buf) < len ? buf_used(&rm->buf) : len;

	if (rm->aborted)
		return -1;
	memcpy(dst, buf_head(&rm->buf), n);
	buf_consume(&rm->buf, n);
	*end = rm->ended && buf_used(&rm->buf) == 0;
	rm->waiting = n == 0 && !*end;
	if (r->paused && buf_used(&rm->buf) < RELAY_BUF_LOW && r->session != NULL) {
		r->paused = 0;
		smtp_session_resume_data(r->session);
	}
	return (long)n;
}

/* relay_verdict - the reply the provider gets for this message */
static enum smtp_reply_id
relay_verdict(const struct relay_msg *rm)
{
	int code = rm->rcpt_code / 100 != 2 && rm->rcpt_code != 0 ? rm->rcpt_code :
	    rm->final_code;

	if (code / 100 == 2 && rm->rcpt_code / 100 == 2)
		return R_RELAY_OK;
	if (code / 100 == 5)
		return R_RELAY_PERM;
	if (code / 100 == 4)
		return R_RELAY_TEMP;
	return R_RELAY_DOWN;	/* no verdict: connection trouble */
}

/* relay_busy - the local MTA's side is not over yet */
static int
relay_busy(const struct relay_msg *rm)
{
	return rm->connecting || rm->client != NULL;
}

static void
relay_msg_free(struct relay_msg *rm)
{
	struct relay *r = rm->r;

	if (r->inflight == rm)
		r->inflight = NULL;
	smtp_message_free(rm->m);
	buf_free(&rm->buf);
	free(rm);
	/* a message abandoned while connecting outlives inflight: r stays
	 * until the last one is gone */
	if (--r->live == 0 && r->closed)
		relay_finish(r);
}

/* relay_count - one more message for the recipient's domain, in the per
 * domain outcome of the run (the first 16 domains; the totals count all) */
static void
relay_count(struct relay *r, const char *rcpt, int ok)
{
	const char *d = strrchr(rcpt, '@') ? strrchr(rcpt, '@') + 1 : rcpt;
	size_t i;

	for (i = 0; i < r->ndom && strcmp(r->dom[i].name, d) != 0; i++)
		;
	if (i == r->ndom) {
		if (r->ndom == sizeof(r->dom) / sizeof(r->dom[0]))
			return;
		snprintf(r->dom[r->ndom++].name, sizeof(r->dom[0].name), "%.255s", d);
	}
	if (ok)
		r->dom[i].ok++;
	else
		r->dom[i].not++;
}

/* relay_answer - both sides are through: the provider gets the local
 * MTA's verdict */
static void
relay_answer(struct relay_msg *rm)
{
	struct relay *r = rm->r;
	enum smtp_reply_id id = relay_verdict(rm);
	char esc[600];

	log_info("relay to=<%s> local=%s status=%s (%s)", log_escape(esc, sizeof(esc), rm->to, 512),
	    r->srv->relay == EC_RELAY_LMTP ? r->srv->relay_path : r->srv->relay_host,
	    id == R_RELAY_OK ? "sent" : id == R_RELAY_PERM ? "refused" : "deferred", rm->text);
	relay_count(r, rm->to, id == R_RELAY_OK);
	if (id == R_RELAY_OK)
		r->res.relayed++;
	else {
		r->res.refused++;
		if (id != R_RELAY_PERM)
			r->res.status = EC_EX_TEMPFAIL;	/* it stays at the ISP */
	}
	if (r->session != NULL)
		smtp_session_message_done(r->session, id, rm->text);
	relay_msg_free(rm);
}

static void
relay_client_done(void *arg, const char *error)
{
	struct relay_msg *rm = arg;
	struct relay *r = rm->r;

	rm->client = NULL;
	if (r->paused && r->session != NULL) {	/* the rest is read and dropped */
		r->paused = 0;
		smtp_session_resume_data(r->session);
	}
	if (relay_verdict(rm) == R_RELAY_DOWN)
		snprintf(rm->text, sizeof(rm->text), "%s", error ? error : "no reply");
	if (rm->aborted)
		relay_msg_free(rm);	/* nobody to answer */
	else if (rm->ended)
		relay_answer(rm);
	/* else the provider is still sending: message() answers */
}

static const struct smtp_client_ops relay_client_ops = {
	.next = relay_next, .rcpt = relay_rcpt, .sent = relay_sent, .done = relay_client_done,
};

/* relay_addr - where relay-to is; -1 when it cannot be resolved */
static int
relay_addr(const struct ec_server *srv, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char port[8];

	memset(ss, 0, sizeof(*ss));
	if (srv->relay == EC_RELAY_LMTP) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		sun->sun_family = AF_UNIX;
		if (strlen(srv->relay_path) >= sizeof(sun->sun_path))
			return -1;
		strcpy(sun->sun_path, srv->relay_path);
		*len = sizeof(*sun);
		return 0;
	}
	snprintf(port, sizeof(port), "%d", srv->relay_port);
	if (getaddrinfo(srv->relay_host, port, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void
relay_connected(struct io *io, enum io_event ev, void *arg)
{
	struct relay_msg *rm = arg;
	struct relay *r = rm->r;
	struct smtp_client_params p = {
		.helo_name = r->cf->hostname, .peer_name = "local MTA",
		.timeout_banner = 300, .timeout_command = 300, .timeout_data = 120,
		.timeout_block = 180, .timeout_eom = 600, .lmtp = r->srv->relay == EC_RELAY_LMTP,
	};
	char why[300];

	rm->connecting = 0;
	if (ev == IO_CONNECTED && !rm->aborted &&
	    (rm->client = smtp_client_start(io, &p, &relay_client_ops, rm)) != NULL)
		return;
	snprintf(why, sizeof(why), "connect: %s", ev != IO_CONNECTED ? (ev == IO_TIMEOUT ?
	    "timed out" : io_error(io)) : rm->aborted ? "abandoned" : "out of memory");
	io_free(io);
	relay_client_done(rm, why);
}

/* relay_data_start - the provider is about to send a message: open the
 * local MTA's transaction at once, so the data can flow straight on */
static void
relay_data_start(void *arg, struct smtp_session *s, const struct smtp_message *m)
{
	struct relay *r = arg;
	struct relay_msg *rm = calloc(1, sizeof(*rm));
	struct io *io;

	if (rm == NULL)
		fatal("calloc");	/* the engine cannot take a refusal here */
	rm->r = r;
	r->live++;
	buf_init(&rm->buf);
	if (r->paused) {	/* left over from a message that ended early */
		r->paused = 0;
		smtp_session_resume_data(s);
	}
	if (m->mail.from.null)
		rm->sender[0] = '\0';
	else
		snprintf(rm->sender, sizeof(rm->sender), "%s@%s", m->mail.from.local, m->mail.from.domain);
	snprintf(rm->to, sizeof(rm->to), "%s@%s", m->rcpts[0].to.local, m->rcpts[0].to.domain);
	snprintf(rm->envid, sizeof(rm->envid), "%s", m->mail.envid);
	snprintf(rm->orcpt_type, sizeof(rm->orcpt_type), "%s", m->rcpts[0].orcpt_type);
	snprintf(rm->orcpt, sizeof(rm->orcpt), "%s", m->rcpts[0].orcpt);
	rm->rcpt = (struct smtp_client_rcpt){ .addr = rm->to, .notify = m->rcpts[0].notify,
	    .orcpt_type = rm->orcpt_type, .orcpt = rm->orcpt };
	rm->cm = (struct smtp_client_msg){
		.sender = rm->sender, .rcpts = &rm->rcpt, .nrcpts = 1, .size = m->mail.size,
		.eight_bit = m->mail.body == BODY_8BITMIME, .smtputf8 = m->mail.smtputf8,
		.ret = m->mail.ret, .envid = rm->envid,
		.read_stream = relay_read_stream, .body_arg = rm,
	};
	r->inflight = rm;
	if (r->locallen == 0 || (io = io_connect(r->loop, (struct sockaddr *)&r->local, r->locallen,
	    relay_connected, rm)) == NULL) {
		snprintf(rm->text, sizeof(rm->text), "cannot reach relay-to");
		return;		/* no client: the verdict is "down", given at the dot */
	}
	io_set_timeout(io, 30.0, 0);
	rm->connecting = 1;
}

/* relay_data_body - a piece of the message: on to the local MTA */
static void
relay_data_body(void *arg, struct smtp_session *s, const char *p, size_t len)
{
	struct relay *r = arg;
	struct relay_msg *rm = r->inflight;

	if (rm == NULL || !relay_busy(rm))
		return;		/* the local MTA is done with it already: drop */
	if (buf_append(&rm->buf, p, len) == -1)
		fatal("buf_append");
	if (buf_used(&rm->buf) > RELAY_BUF_HIGH && !r->paused) {
		r->paused = 1;
		smtp_session_pause_data(s);
	}
	if (rm->waiting && rm->client != NULL) {
		rm->waiting = 0;
		smtp_client_resume(rm->client);
	}
}

/* relay_data_abort - the engine refused the message after the end (bare
 * CR/LF, NUL, a loop): the local MTA must not get the final dot */
static void
relay_data_abort(void *arg, struct smtp_session *s)
{
	struct relay *r = arg;
	struct relay_msg *rm = r->inflight;

	if (rm == NULL)
		return;
	r->res.refused++;	/* refused here: the provider bounces it */
	rm->aborted = 1;
	r->inflight = NULL;
	if (!relay_busy(rm))
		relay_msg_free(rm);
	else if (rm->client != NULL)
		smtp_client_abort(rm->client, "the provider's message was refused");
	/* a connection still being made ends in relay_connected */
}

/* ---- the provider side ---- */

static enum smtp_reply_id
relay_check_mail(void *arg, struct smtp_session *s, const struct smtp_mail *m)
{
	((struct relay *)arg)->rcpts = 0;
	return R_MAIL_OK;
}

/* relay_domain_ok - a recipient in one of the ODMR session's domains (or
 * any, when it names none: ATRN then asked for all the identity owns); the
 * block's ETRN domains are not asked for here */
static int
relay_domain_ok(const struct ec_session *ss, const char *domain)
{
	if (ss->n_domains == 0)
		return 1;
	for (size_t i = 0; i < ss->n_domains; i++)
		if (strcmp(ss->domains[i], domain) == 0)
			return 1;
	return 0;
}

static enum smtp_reply_id
relay_check_rcpt(void *arg, struct smtp_session *s, const struct smtp_rcpt *rc,
    const char **reply_arg)
{
	struct relay *r = arg;

	/* the local MTA is no open relay; 4xx, because a provider asked with
	 * a bare ATRN may rightly hold more of the identity's domains */
	if (!relay_domain_ok(&r->srv->sess[EC_ODMR], rc->to.domain))
		return R_RELAY_NOT_LISTED;
	if (r->rcpts > 0)
		return R_RELAY_ONE_RCPT;
	r->rcpts++;
	return R_RCPT_OK;
}

static uint64_t
relay_new_id(void *arg)
{
	return ++((struct relay *)arg)->ids;
}

/* relay_message - the provider's dot, and the message passed the checks:
 * the local MTA gets its dot once the data is through */
static void
relay_message(void *arg, struct smtp_session *s, struct smtp_message *m)
{
	struct relay *r = arg;
	struct relay_msg *rm = r->inflight;

	if (rm == NULL) {	/* cannot happen: data_start always comes first */
		smtp_message_free(m);
		smtp_session_message_done(s, R_LOCAL_ERROR, NULL);
		return;
	}
	rm->m = m;
	rm->ended = 1;
	if (!relay_busy(rm)) {
		relay_answer(rm);
		return;
	}
	if (rm->waiting && rm->client != NULL) {
		rm->waiting = 0;
		smtp_client_resume(rm->client);
	}
}

/* relay_finish - the session and any message in flight are over */
static void
relay_finish(struct relay *r)
{
	struct relay **pp;
	size_t len;

	len = (size_t)snprintf(r->res.summary, sizeof(r->res.summary),
	    "relayed %lu, not relayed %lu", r->res.relayed, r->res.refused);
	for (size_t i = 0; i < r->ndom && len < sizeof(r->res.summary); i++)
		len += (size_t)snprintf(r->res.summary + len, sizeof(r->res.summary) - len,
		    "%s%s=%lu/%lu", i ? " " : ": ", r->dom[i].name, r->dom[i].ok, r->dom[i].not);
	for (pp = &relays; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->done(r->arg, &r->res);
	free(r);
}

static void
relay_closed(void *arg, struct smtp_session *s)
{
	struct relay *r = arg;

	struct relay_msg *rm = r->inflight;

	r->session = NULL;
	r->closed = 1;
	if (!smtp_session_quit_seen(s))
		r->res.status = EC_EX_TEMPFAIL;	/* ended without QUIT: mail may wait */
	if (rm == NULL) {
		if (r->live == 0)
			relay_finish(r);
		return;
	}
	/* the provider went away with a message in flight: it never got a
	 * 250, so it keeps its copy; the local MTA must not get the dot unless
	 * it already has it (then at worst a duplicate) */
	r->res.status = EC_EX_TEMPFAIL;
	rm->aborted = 1;
	if (!relay_busy(rm))
		relay_msg_free(rm);	/* finishes the relay */
	else if (rm->client != NULL && !rm->ended)
		smtp_client_abort(rm->client, "the provider went away");
	/* else relay_client_done or relay_connected finishes */
}

static const struct smtp_server_ops relay_server_ops = {
	.check_mail = relay_check_mail, .check_rcpt = relay_check_rcpt,
	.new_id = relay_new_id, .message = relay_message, .closed = relay_closed,
	.data_start = relay_data_start, .data_body = relay_data_body,
	.data_abort = relay_data_abort,
};

int
relay_start(struct ev_loop *loop, struct io *io, const struct ec_conf *cf,
    const struct ec_server *srv, relay_done *done, void *arg)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	const char *tmp = getenv("TMPDIR");

	if (r == NULL)
		return -1;
	r->loop = loop;
	r->cf = cf;
	r->srv = srv;
	r->done = done;
	r->arg = arg;
	/* The peer is the ISP we authenticated to, over a link that may be
	 * slow: no total DATA deadline or minimum rate, only the per-read
	 * timeout; junk commands are capped as on any SMTP server. */
	r->cfg = (struct smtp_server_config){
		.hostname = cf->hostname, .max_message_size = RELAY_MAX_MESSAGE,
		.max_recipients = 1000, .max_errors = 20, .junk_limit = 100,
		.timeout_idle = (double)cf->timeout,
		.timeout_data = (double)cf->timeout, .timeout_tls = 60,
		.spill_dir = tmp && tmp[0] ? tmp : "/tmp", .spill_threshold = RELAY_BUF_HIGH,
	};
	/* once per pull, not per message: getaddrinfo may block */
	if (relay_addr(srv, &r->local, &r->locallen) == -1) {
		r->locallen = 0;
		log_warnx("relay-to %s cannot be resolved: every message stays at the ISP",
		    srv->relay == EC_RELAY_LMTP ? srv->relay_path : srv->relay_host);
	}
	if (getpeername(io_fd(io), (struct sockaddr *)&peer, &plen) == -1)
		memset(&peer, 0, sizeof(peer));
	/* the turned line: we greet, the provider speaks first after that */
	if ((r->session = smtp_session_new_io(io, (struct sockaddr *)&peer, &r->cfg,
	    &relay_server_ops, r, R__COUNT)) == NULL) {
		free(r);
		return -1;
	}
	r->next = relays;
	relays = r;
	return 0;
}

void
relay_abort_all(void)
{
	for (struct relay *r = relays, *next; r; r = next) {
		next = r->next;
		if (r->session != NULL)
			smtp_session_shutdown(r->session);
	}
}
