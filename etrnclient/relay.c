/*
 * relay.c - the turned ODMR session: receive from the provider, pass each
 * message on to the local MTA; see relay.h.
 *
 * Each message gets its own connection to the local MTA (on loopback or a
 * unix socket that costs little, and a local MTA that went down between two
 * messages is noticed at once).  Its verdict becomes the reply to the
 * provider's final dot.
 */
#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "io.h"
#include "log.h"
#include "smtp_client.h"
#include "smtp_server.h"
#include "relay.h"
#include "upstream.h"

#define RELAY_SPILL_THRESHOLD	(256 * 1024)
#define RELAY_MAX_MESSAGE	(1024ULL * 1024 * 1024)

struct relay;

/* One message on its way to the local MTA. */
struct relay_msg {
	struct relay		*r;
	struct smtp_message	*m;
	struct smtp_client_msg	 cm;
	const char		*rcpt;
	char			 sender[600], to[600];
	unsigned		 notify;
	const char		*orcpt_type, *orcpt;
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
	unsigned		 rcpts;		/* in the transaction being built */
	uint64_t		 ids;
	struct relay_result	 res;
};

static struct relay *relays;

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

/* relay_verdict - the reply the provider gets for this message */
static enum smtp_reply_id
relay_verdict(const struct relay_msg *rm, const char *error)
{
	int code = rm->rcpt_code / 100 != 2 && rm->rcpt_code != 0 ? rm->rcpt_code :
	    rm->final_code;

	if (code / 100 == 2 && rm->rcpt_code / 100 == 2)
		return R_RELAY_OK;
	if (code / 100 == 5)
		return R_RELAY_PERM;
	if (code / 100 == 4)
		return R_RELAY_TEMP;
	(void)error;
	return R_RELAY_DOWN;	/* no verdict: connection trouble */
}

static void relay_msg_end(struct relay_msg *, const char *error);
static void relay_finish(struct relay *);

static void
relay_client_done(void *arg, const char *error)
{
	relay_msg_end(arg, error);
}

static const struct smtp_client_ops relay_client_ops = {
	.next = relay_next, .rcpt = relay_rcpt, .sent = relay_sent, .done = relay_client_done,
};

static int
relay_read_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct relay_msg *rm = arg;

	return msgbody_read(&rm->m->body, off, dst, len);
}

/* relay_msg_end - the local MTA's verdict goes back to the provider */
static void
relay_msg_end(struct relay_msg *rm, const char *error)
{
	struct relay *r = rm->r;
	enum smtp_reply_id id = relay_verdict(rm, error);
	char esc[600];

	if (id == R_RELAY_DOWN)
		snprintf(rm->text, sizeof(rm->text), "%s", error ? error : "no reply");
	log_info("relay to=<%s> local=%s status=%s (%s)", log_escape(esc, sizeof(esc), rm->to, 512),
	    r->srv->relay == EC_RELAY_LMTP ? r->srv->relay_path : r->srv->relay_host,
	    id == R_RELAY_OK ? "sent" : id == R_RELAY_PERM ? "refused" : "deferred", rm->text);
	if (id == R_RELAY_OK)
		r->res.relayed++;
	else {
		r->res.refused++;
		if (id != R_RELAY_PERM)
			r->res.status = EC_EX_TEMPFAIL;	/* it stays at the ISP */
	}
	r->inflight = NULL;
	smtp_message_free(rm->m);
	if (r->session != NULL)
		smtp_session_message_done(r->session, id, rm->text);
	free(rm);
	if (r->closed)
		relay_finish(r);
}

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

	if (ev != IO_CONNECTED) {
		char why[300];

		snprintf(why, sizeof(why), "connect: %s", ev == IO_TIMEOUT ? "timed out" : io_error(io));
		io_free(io);
		relay_msg_end(rm, why);
		return;
	}
	if (smtp_client_start(io, &p, &relay_client_ops, rm) == NULL) {
		io_free(io);
		relay_msg_end(rm, "out of memory");
	}
}

/* relay_send - pass m on to the local MTA */
static void
relay_send(struct relay *r, struct smtp_message *m)
{
	struct relay_msg *rm = calloc(1, sizeof(*rm));
	struct sockaddr_storage ss;
	socklen_t len;
	struct io *io;

	if (rm == NULL) {
		smtp_message_free(m);
		smtp_session_message_done(r->session, R_NO_MEMORY, NULL);
		return;
	}
	rm->r = r;
	rm->m = m;
	if (m->mail.from.null)
		rm->sender[0] = '\0';
	else
		snprintf(rm->sender, sizeof(rm->sender), "%s@%s", m->mail.from.local, m->mail.from.domain);
	snprintf(rm->to, sizeof(rm->to), "%s@%s", m->rcpts[0].to.local, m->rcpts[0].to.domain);
	rm->rcpt = rm->to;
	rm->notify = m->rcpts[0].notify;
	rm->orcpt_type = m->rcpts[0].orcpt_type;
	rm->orcpt = m->rcpts[0].orcpt;
	rm->cm = (struct smtp_client_msg){
		.sender = rm->sender, .rcpts = &rm->rcpt, .nrcpts = 1, .size = m->body.size,
		.eight_bit = m->eight_bit || m->mail.body == BODY_8BITMIME,
		.smtputf8 = m->mail.smtputf8, .ret = m->mail.ret, .envid = m->mail.envid,
		.notify = &rm->notify, .orcpt_type = &rm->orcpt_type, .orcpt = &rm->orcpt,
		.read_body = relay_read_body, .body_arg = rm,
	};
	r->inflight = rm;
	if (relay_addr(r->srv, &ss, &len) == -1 ||
	    (io = io_connect(r->loop, (struct sockaddr *)&ss, len, relay_connected, rm)) == NULL) {
		relay_msg_end(rm, "cannot reach relay-to");
		return;
	}
	io_set_timeout(io, 30.0, 0);
}

/* ---- the provider side ---- */

static enum smtp_reply_id
relay_check_mail(void *arg, struct smtp_session *s, const struct smtp_mail *m)
{
	((struct relay *)arg)->rcpts = 0;
	return R_MAIL_OK;
}

static enum smtp_reply_id
relay_check_rcpt(void *arg, struct smtp_session *s, const struct smtp_rcpt *rc,
    const char **reply_arg)
{
	struct relay *r = arg;

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

static void
relay_message(void *arg, struct smtp_session *s, struct smtp_message *m)
{
	relay_send(arg, m);
}

/* relay_finish - the session and any message in flight are over */
static void
relay_finish(struct relay *r)
{
	struct relay **pp;

	snprintf(r->res.summary, sizeof(r->res.summary), "relayed %lu, not relayed %lu",
	    r->res.relayed, r->res.refused);
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

	r->session = NULL;
	r->closed = 1;
	if (r->inflight != NULL) {
		/* the provider went away while the local MTA has the message:
		 * the provider never got a 250, so it keeps its copy */
		r->res.status = EC_EX_TEMPFAIL;
		return;		/* relay_msg_end finishes */
	}
	relay_finish(r);
}

static const struct smtp_server_ops relay_server_ops = {
	.check_mail = relay_check_mail, .check_rcpt = relay_check_rcpt,
	.new_id = relay_new_id, .message = relay_message, .closed = relay_closed,
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
	r->cfg = (struct smtp_server_config){
		.hostname = cf->hostname, .max_message_size = RELAY_MAX_MESSAGE,
		.max_recipients = 1000, .max_errors = 20, .timeout_idle = (double)cf->timeout,
		.timeout_data = (double)cf->timeout, .timeout_tls = 60,
		.spill_dir = tmp && tmp[0] ? tmp : "/tmp", .spill_threshold = RELAY_SPILL_THRESHOLD,
	};
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
