/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * upstream.c - the client side of ETRN and ODMR towards the ISP; see
 * upstream.h.  One state machine: entering a state sends its command, a
 * complete reply in a state picks the next one (OpenSMTPD's client split).
 *
 * SECURITY: with "tls require" or "tls verify" nothing but EHLO and
 * STARTTLS is ever sent in clear, and AUTH never offers a plaintext
 * mechanism without TLS.  The password is never logged.
 */
#include "config.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ec_sasl.h"
#include "io.h"
#include "log.h"
#include "relay.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"
#include "upstream.h"

#define UP_TLS_PRIORITY		"NORMAL:-VERS-TLS1.0:-VERS-TLS1.1"
#define UP_CONNECT_TIMEOUT	30.0
#define UP_TEXT_MAX		512

enum up_state {
	UP_CONNECT, UP_BANNER, UP_EHLO, UP_STARTTLS, UP_TLS, UP_AUTH, UP_ETRN, UP_ATRN,
	UP_QUIT, UP_RELAY,
};

struct upstream {
	struct ev_loop			*loop;
	const struct ec_conf		*cf;
	const struct ec_server		*srv;
	enum ec_method			 method;
	const struct ec_session		*sess;		/* &srv->sess[method] */
	upstream_done			*done;
	void				*arg;
	enum up_state			 state;
	struct io			*io;
	struct addrinfo			*addrs, *next_addr;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t		 prio;
	struct ec_sasl			*sasl;
	/* what the server offers (from EHLO) */
	int				 has_starttls, has_etrn, has_atrn;
	char				 mechs[400];
	/* the reply being read */
	char				 text[UP_TEXT_MAX];
	unsigned			 lines;		/* of the reply so far */
	size_t				 di;		/* ETRN: the domain asked about */
	struct upstream_result		 res;
	int				 finished;
	int				 reading;	/* inside up_read: free later */
	int				 sasl_done;	/* the client side of SASL is through */
	ev_timer			 soon;		/* a failure before the start */
};

static const char *
strstate(enum up_state st)
{
	static const char *const names[] = { "CONNECT", "BANNER", "EHLO", "STARTTLS", "TLS",
	    "AUTH", "ETRN", "ATRN", "QUIT", "RELAY" };

	return names[st];
}

static void
up_free(struct upstream *u)
{
	ev_timer_stop(u->loop, &u->soon);
	if (u->io != NULL)
		io_free(u->io);
	ec_sasl_free(u->sasl);
	if (u->addrs != NULL)
		freeaddrinfo(u->addrs);
	if (u->cred != NULL)
		gnutls_certificate_free_credentials(u->cred);
	if (u->prio != NULL)
		gnutls_priority_deinit(u->prio);
	free(u);
}

/* up_finish - report once, then go */
static void
up_finish(struct upstream *u)
{
	if (u->finished)
		return;
	u->finished = 1;
	u->done(u->arg, &u->res);
	if (!u->reading)
		up_free(u);	/* else up_read frees it on its way out */
}

/* up_note - status and why, after what the summary holds */
static void
up_note(struct upstream *u, int status, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
up_note(struct upstream *u, int status, const char *fmt, va_list ap)
{
	size_t len = strlen(u->res.summary);

	if (status > u->res.status)
		u->res.status = status;
	if (len > 0 && len + 2 < sizeof(u->res.summary)) {	/* after what was there */
		memcpy(u->res.summary + len, "; ", 3);
		len += 2;
	}
	vsnprintf(u->res.summary + len, sizeof(u->res.summary) - len, fmt, ap);
}

/* up_fail - the session ends with status and why */
static void
up_fail(struct upstream *u, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
up_fail(struct upstream *u, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	up_note(u, status, fmt, ap);
	va_end(ap);
	up_finish(u);
}

static void
up_soon(struct ev_loop *loop, ev_timer *w, int revents)
{
	up_finish(w->data);
}

/* up_fail_soon - the same for a session that cannot even start: reported
 * from the loop like any other, so the caller gets u first */
static struct upstream *
up_fail_soon(struct upstream *u, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static struct upstream *
up_fail_soon(struct upstream *u, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	up_note(u, status, fmt, ap);
	va_end(ap);
	ev_timer_start(u->loop, &u->soon);
	return u;
}

/* status_of - what a refusal means for the exit status */
static int
status_of(int code)
{
	return code / 100 == 5 ? EC_EX_UNAVAILABLE : EC_EX_TEMPFAIL;
}

static void
up_enter(struct upstream *u, enum up_state st, double timeout)
{
	if (log_verbose() > 1)
		log_debug("%s: %s -> %s", u->srv->name, strstate(u->state), strstate(st));
	u->state = st;
	io_set_timeout(u->io, timeout, 0);
}

/* ---- connecting ---- */

static void up_event(struct io *, enum io_event, void *);

/* up_dial - the next address of the server; 0, or -1 when none is left */
static int
up_dial(struct upstream *u)
{
	while (u->next_addr != NULL) {
		struct addrinfo *ai = u->next_addr;

		u->next_addr = ai->ai_next;
		if ((u->io = io_connect(u->loop, ai->ai_addr, ai->ai_addrlen, up_event, u)) != NULL) {
			u->state = UP_CONNECT;
			io_set_timeout(u->io, UP_CONNECT_TIMEOUT, 0);
			return 0;
		}
	}
	return -1;
}

/* up_tls_setup - credentials for STARTTLS: with "tls verify" the CA file
 * or the system's CAs; -1 with the reason in the result */
static int
up_tls_setup(struct upstream *u)
{
	int rc;

	if (gnutls_certificate_allocate_credentials(&u->cred) < 0 ||
	    gnutls_priority_init(&u->prio, UP_TLS_PRIORITY, NULL) < 0)
		return -1;
	if (u->srv->tls != EC_TLS_VERIFY)
		return 0;
	rc = u->srv->ca ? gnutls_certificate_set_x509_trust_file(u->cred, u->srv->ca,
	    GNUTLS_X509_FMT_PEM) : gnutls_certificate_set_x509_system_trust(u->cred);
	if (rc <= 0) {
		snprintf(u->res.summary, sizeof(u->res.summary), "no CA certificates for tls verify "
		    "(%s): ", u->srv->ca ? u->srv->ca : "system");
		return -1;
	}
	return 0;
}

/* ---- the states ---- */

static void
up_ehlo(struct upstream *u)
{
	u->has_starttls = u->has_etrn = u->has_atrn = 0;
	u->mechs[0] = '\0';
	io_writeline(u->io, "EHLO %s", u->cf->hostname);
	up_enter(u, UP_EHLO, (double)u->cf->timeout);
}

static void up_next_etrn(struct upstream *);
static void up_auth_start(struct upstream *);

/* up_after_ehlo - STARTTLS when there is a reason to, else the work */
static void
up_after_ehlo(struct upstream *u)
{
	int tls = io_is_tls(u->io);

	if (!tls && (u->has_starttls || u->srv->tls != EC_TLS_MAY)) {
		if (!u->has_starttls) {
			up_fail(u, EC_EX_TEMPFAIL, "TLS is required and %s does not offer STARTTLS",
			    u->srv->name);
			return;
		}
		io_writeline(u->io, "STARTTLS");
		up_enter(u, UP_STARTTLS, (double)u->cf->timeout);
		return;
	}
	if (u->method == EC_ETRN) {
		if (!u->has_etrn) {
			up_fail(u, EC_EX_UNAVAILABLE, "%s does not offer ETRN", u->srv->name);
			return;
		}
		u->di = 0;
		up_next_etrn(u);
		return;
	}
	if (!u->has_atrn || u->mechs[0] == '\0') {
		up_fail(u, EC_EX_UNAVAILABLE, "%s does not offer %s", u->srv->name,
		    u->has_atrn ? "AUTH" : "ATRN");
		return;
	}
	up_auth_start(u);
}

/* up_ehlo_line - one line of the EHLO reply: the extensions we use */
static void
up_ehlo_line(struct upstream *u, const char *text)
{
	if (strcasecmp(text, "STARTTLS") == 0)
		u->has_starttls = 1;
	else if (strcasecmp(text, "ETRN") == 0)
		u->has_etrn = 1;
	else if (strncasecmp(text, "ATRN", 4) == 0 && (text[4] == '\0' || text[4] == ' '))
		u->has_atrn = 1;
	else if (strncasecmp(text, "AUTH ", 5) == 0)
		snprintf(u->mechs, sizeof(u->mechs), "%s", text + 5);
}

static void
up_quit(struct upstream *u)
{
	io_writeline(u->io, "QUIT");
	up_enter(u, UP_QUIT, (double)u->cf->timeout);
}

/* up_next_etrn - ETRN for the next domain (RFC 1985), or QUIT */
static void
up_next_etrn(struct upstream *u)
{
	if (u->di == u->sess->n_domains) {
		up_quit(u);
		return;
	}
	io_writeline(u->io, "ETRN %s", u->sess->domains[u->di]);
	up_enter(u, UP_ETRN, (double)u->cf->timeout);
}

/* up_etrn_reply - every RFC 1985 reply is an outcome for that domain; a
 * 251 for one never stops the others (fetchmail's mistake) */
static void
up_etrn_reply(struct upstream *u, int code)
{
	size_t len = strlen(u->res.summary);
	/* RFC 1985: 458 is "try later"; 459 (not allowed) is as final as 5xx */
	int st = code >= 250 && code <= 253 ? EC_EX_OK : code == 459 ? EC_EX_UNAVAILABLE :
	    status_of(code);

	snprintf(u->res.summary + len, sizeof(u->res.summary) - len, "%s%s=%d",
	    len ? " " : "", u->sess->domains[u->di], code);
	if (st > u->res.status)
		u->res.status = st;
	log_info("server=%s etrn %s: %d %s", u->srv->name, u->sess->domains[u->di], code, u->text);
	u->di++;
	up_next_etrn(u);
}

static void
up_auth_start(struct upstream *u)
{
	const char *mech = NULL;
	char out[12288], err[256];
	enum ec_sasl_result r;

	r = ec_sasl_start(&u->sasl, u->srv->name, u->srv->user, u->srv->password,
	    io_is_tls(u->io), u->mechs, &mech, out, sizeof(out), err, sizeof(err));
	if (r == EC_SASL_FAIL) {
		up_fail(u, EC_EX_UNAVAILABLE, "no usable AUTH mechanism (%s offers %s%s): %s",
		    u->srv->name, u->mechs, io_is_tls(u->io) ? "" : ", in clear", err);
		return;
	}
	u->sasl_done = r == EC_SASL_OK;
	log_info("server=%s auth mech=%s user=%s", u->srv->name, mech, u->srv->user);
	io_writeline(u->io, out[0] ? "AUTH %s %s" : "AUTH %s%s", mech, out);
	up_enter(u, UP_AUTH, (double)u->cf->timeout);
}

static void
up_atrn(struct upstream *u)
{
	char list[490] = "";	/* "ATRN " + this + CRLF within 512 (RFC 5321) */
	size_t len = 0;

	for (size_t i = 0; i < u->sess->n_domains; i++) {
		size_t dl = strlen(u->sess->domains[i]);

		if (len + dl + 1 >= sizeof(list)) {
			/* too long for one line: ask for everything the identity
			 * owns (RFC 2645), which covers the list */
			list[0] = '\0';
			break;
		}
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? "," : "",
		    u->sess->domains[i]);
	}
	io_writeline(u->io, list[0] ? "ATRN %s" : "ATRN%s", list);
	/* RFC 2645 5.2.1: the provider may take its time finding the mail */
	up_enter(u, UP_ATRN, (double)(u->cf->timeout > EC_ATRN_TIMEOUT ? u->cf->timeout :
	    EC_ATRN_TIMEOUT));
}

static void
up_auth_reply(struct upstream *u, int code)
{
	char out[12288], err[256];

	if (code == 235 && !u->sasl_done) {
		up_fail(u, EC_EX_NOPERM, "AUTH: the server claims success before proving itself");
		return;
	}
	if (code == 235) {
		up_atrn(u);
		return;
	}
	if (code != 334) {
		up_fail(u, code == 535 || code == 530 ? EC_EX_NOPERM : status_of(code),
		    "AUTH refused: %d %s", code, u->text);
		return;
	}
	switch (ec_sasl_step(u->sasl, u->text, out, sizeof(out), err, sizeof(err))) {
	case EC_SASL_FAIL:
		io_writeline(u->io, "*");	/* RFC 4954 4: give up this exchange */
		up_fail(u, EC_EX_NOPERM, "AUTH: %s", err);
		return;
	case EC_SASL_OK:
		u->sasl_done = 1;
		break;
	case EC_SASL_CONTINUE:
		break;
	}
	io_writeline(u->io, "%s", out);
}

static void
up_relay_done(void *arg, const struct relay_result *rr)
{
	struct upstream *u = arg;

	u->io = NULL;		/* the relay freed it */
	u->res.relayed = rr->relayed;
	u->res.refused = rr->refused;
	up_fail(u, rr->status, "%s", rr->summary);
}

/* up_atrn_reply - RFC 2645's replies; 250 turns the line round */
static void
up_atrn_reply(struct upstream *u, int code)
{
	struct io *io = u->io;

	switch (code) {
	case 250:
		u->state = UP_RELAY;
		u->io = NULL;
		if (relay_start(u->loop, io, u->cf, u->srv, up_relay_done, u) == -1) {
			u->io = io;
			up_fail(u, EC_EX_TEMPFAIL, "cannot start relaying");
		}
		return;
	case 453:	/* You have no mail: success, nothing to do */
		snprintf(u->res.summary, sizeof(u->res.summary), "no mail waiting");
		up_quit(u);
		return;
	case 530:
		up_fail(u, EC_EX_NOPERM, "ATRN: %d %s", code, u->text);
		return;
	case 450:	/* RFC 2645: refused (not all the domains are ours) */
		up_fail(u, EC_EX_UNAVAILABLE, "ATRN: %d %s", code, u->text);
		return;
	default:
		up_fail(u, status_of(code), "ATRN: %d %s", code, u->text);
		return;
	}
}

/* up_reply - a complete reply in the current state */
static void
up_reply(struct upstream *u, int code)
{
	switch (u->state) {
	case UP_BANNER:
		if (code != 220)
			up_fail(u, status_of(code), "greeting: %d %s", code, u->text);
		else
			up_ehlo(u);
		return;
	case UP_EHLO:
		if (code != 250)
			up_fail(u, status_of(code), "EHLO: %d %s", code, u->text);
		else
			up_after_ehlo(u);
		return;
	case UP_STARTTLS:
		if (code != 220) {
			up_fail(u, EC_EX_TEMPFAIL, "STARTTLS refused: %d %s", code, u->text);
			return;
		}
		if (io_start_tls_client(u->io, u->cred, u->prio, u->srv->name,
		    u->srv->tls == EC_TLS_VERIFY ? u->srv->name : NULL) == -1) {
			up_fail(u, EC_EX_TEMPFAIL, "STARTTLS: %s", io_error(u->io));
			return;
		}
		up_enter(u, UP_TLS, (double)u->cf->timeout);
		return;
	case UP_AUTH:
		up_auth_reply(u, code);
		return;
	case UP_ETRN:
		up_etrn_reply(u, code);
		return;
	case UP_ATRN:
		up_atrn_reply(u, code);
		return;
	case UP_QUIT:
		up_finish(u);
		return;
	default:
		up_fail(u, EC_EX_TEMPFAIL, "unexpected reply %d in %s", code, strstate(u->state));
		return;
	}
}

/* up_read - complete replies from the buffered lines */
static void
up_read(struct upstream *u)
{
	char *line;
	size_t len;
	int toolong, code, last;

	u->reading = 1;
	while (!u->finished && u->state != UP_RELAY && u->state != UP_TLS) {
		const char *text;

		line = io_getline(u->io, 2048, &len, &toolong);
		if (toolong) {	/* never skip one: the next line is not the reply */
			up_fail(u, EC_EX_TEMPFAIL, "a reply line over 2048 bytes in %s",
			    strstate(u->state));
			break;
		}
		if (line == NULL)
			break;
		text = smtp_reply_parse_line(line, &code, &last);
		if (text == NULL) {
			up_fail(u, EC_EX_TEMPFAIL, "garbage from the server in %s", strstate(u->state));
			break;	/* not return: up_free below, once reading is over */
		}
		if (++u->lines > SMTP_REPLY_MAX_LINES) {
			up_fail(u, EC_EX_TEMPFAIL, "a reply of more than %d lines in %s",
			    SMTP_REPLY_MAX_LINES, strstate(u->state));
			break;
		}
		if (u->state == UP_EHLO && code == 250)
			up_ehlo_line(u, text);
		if (!last)
			continue;
		u->lines = 0;
		snprintf(u->text, sizeof(u->text), "%s", text);
		for (char *p = u->text; *p; p++)	/* server text goes to logs */
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		up_reply(u, code);
	}
	u->reading = 0;
	if (u->finished) {
		up_free(u);
		return;
	}
	if (u->io != NULL && u->state != UP_RELAY)
		io_consumed(u->io);
}

static void
up_event(struct io *io, enum io_event ev, void *arg)
{
	struct upstream *u = arg;

	switch (ev) {
	case IO_CONNECTED:
		up_enter(u, UP_BANNER, (double)u->cf->timeout);
		return;
	case IO_DATAIN:
		up_read(u);
		return;
	case IO_TLSREADY:
		up_ehlo(u);	/* RFC 3207 4.2: ask again what is offered */
		return;
	case IO_LOWAT:
		return;
	case IO_TIMEOUT:
		if (u->state == UP_CONNECT)
			break;
		up_fail(u, EC_EX_TEMPFAIL, "timeout in %s", strstate(u->state));
		return;
	case IO_DISCONNECTED:
	case IO_ERROR:
		if (u->state == UP_CONNECT)
			break;
		up_fail(u, EC_EX_TEMPFAIL, "%s in %s", ev == IO_ERROR ? io_error(io) :
		    "connection lost", strstate(u->state));
		return;
	}
	/* this address did not answer: the next one */
	log_info("server=%s: cannot connect: %s", u->srv->name,
	    ev == IO_TIMEOUT ? "timed out" : io_error(io));
	io_free(u->io);
	u->io = NULL;
	if (up_dial(u) == -1)
		up_fail(u, EC_EX_TEMPFAIL, "cannot connect to %s port %d", u->srv->name, u->sess->port);
}

struct upstream *
upstream_start(struct ev_loop *loop, const struct ec_conf *cf, const struct ec_server *srv,
    enum ec_method method, upstream_done *done, void *arg)
{
	struct upstream *u = calloc(1, sizeof(*u));
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	char port[8], host[SMTP_DOMAIN_MAX + 1];
	size_t hl = strlen(srv->name);
	int rc;

	if (u == NULL)
		return NULL;
	u->loop = loop;
	u->cf = cf;
	u->srv = srv;
	u->method = method;
	u->sess = &srv->sess[method];
	u->done = done;
	u->arg = arg;
	ev_timer_init(&u->soon, up_soon, 0., 0.);
	u->soon.data = u;
	if (up_tls_setup(u) == -1)
		return up_fail_soon(u, EC_EX_CONFIG, "cannot set up TLS");
	snprintf(port, sizeof(port), "%d", u->sess->port);
	/* a literal may be written [2001:db8::1] */
	snprintf(host, sizeof(host), "%.*s", (int)(srv->name[0] == '[' ? hl - 2 : hl),
	    srv->name + (srv->name[0] == '['));
	/* getaddrinfo blocks, briefly: it honours /etc/hosts, which a site
	 * may well use for its ISP's name */
	if ((rc = getaddrinfo(host, port, &hints, &u->addrs)) != 0)
		return up_fail_soon(u, EC_EX_TEMPFAIL, "cannot resolve %s: %s", srv->name,
		    gai_strerror(rc));
	u->next_addr = u->addrs;
	if (up_dial(u) == -1)
		return up_fail_soon(u, EC_EX_TEMPFAIL, "cannot connect to %s", srv->name);
	return u;
}

void
upstream_abort(struct upstream *u)
{
	if (u->state == UP_RELAY)
		relay_abort_all();	/* relay_done comes back here */
	else
		up_fail(u, EC_EX_TEMPFAIL, "stopped");
}
