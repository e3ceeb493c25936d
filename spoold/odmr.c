/*
 * odmr.c - the ODMR provider session (RFC 2645) on "listen odmr" (port 366).
 *
 * A small SMTP profile: EHLO, STARTTLS, AUTH (auth.c, Cyrus SASL), ATRN,
 * NOOP, RSET, QUIT; everything else is 502.  After ATRN's 250 the
 * connection is handed to a delivery run (despool_turn) and spoold becomes
 * the SMTP client on it, keeping the TLS session as it is.
 *
 * SECURITY: everything read here is hostile.  AUTH payloads are never
 * logged; a failed AUTH is answered after the same delay whatever the
 * reason, so the reply time does not tell whether a user exists; failures
 * are limited per connection and per client address.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "auth.h"
#include "cidr.h"
#include "despool.h"
#include "io.h"
#include "log.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"
#include "spoold.h"
#include "odmr.h"
#include "ratelimit.h"

/* RFC 4954 4: a SASL response line may be 12,288 octets. */
#define AUTH_LINE_MAX		12288
/* A failed AUTH is answered this long after its last line arrived. */
#define AUTH_FAIL_DELAY		1.0
/* Failed AUTHs: per connection, and per client address in a window. */
#define AUTH_FAIL_MAX_CONN	3
#define AUTH_FAIL_MAX_ADDR	10
#define AUTH_FAIL_WINDOW	600.0
#define AUTH_FAIL_MAX_TRACKED	10000
#define ATRN_MAX_DOMAINS	64
/* A session has this long to authenticate, whatever it sends meanwhile
 * (NOOP must not keep a connection slot for ever). */
#define ODMR_AUTH_DEADLINE	120.0

enum odmr_state {
	ODMR_INIT,		/* greeting sent */
	ODMR_READY,		/* EHLO done */
	ODMR_AUTH,		/* in a SASL exchange: the next line is a response */
	ODMR_AUTH_WAIT,		/* a failure is being answered after the delay */
	ODMR_AUTHED,		/* ATRN allowed */
	ODMR_TLS,		/* STARTTLS handshake */
	ODMR_QUIT,		/* closing once the output is sent */
};

#define S(x)	(1u << (x))

struct odmr {
	struct odmr		*prev, *next;
	uint64_t		 id;
	struct io		*io;
	struct spoold_rt	*rt;
	enum odmr_state		 state;
	struct sockaddr_storage	 peer, local;
	char			 peer_text[64];
	char			 addr_key[64];	/* for the per-address limit */
	ev_timer		 deadline;	/* to authenticate */
	char			 helo[256];
	char			 mech[32];	/* of the attempt in progress */
	struct auth		*auth;
	char			 user[256];	/* the authenticated identity */
	unsigned		 failures, errors;
	ev_timer		 delay;
	enum smtp_reply_id	 delayed;	/* the reply the delay holds back */
};

struct odmr_command {
	const char	*verb;
	unsigned	 states;
	int		(*check)(struct odmr *, const char *arg);
	void		(*proceed)(struct odmr *, const char *arg);
};

/* Failed AUTHs per client address in the current window. */
struct auth_fails {
	struct auth_fails	*next;
	char			 addr[64];
	ev_tstamp		 window;
	unsigned		 count;
};

static struct odmr *sessions;
static struct auth_fails *fails;
static unsigned nfails;		/* entries in fails */
static uint64_t odmr_counter;

static void odmr_process(struct odmr *);
static void odmr_free(struct odmr *, const char *why);

static const char *
strstate(enum odmr_state st)
{
	static const char *const names[] = { "ODMR_INIT", "ODMR_READY", "ODMR_AUTH",
	    "ODMR_AUTH_WAIT", "ODMR_AUTHED", "ODMR_TLS", "ODMR_QUIT" };

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "ODMR_?";
}

static void
odmr_enter(struct odmr *o, enum odmr_state st)
{
	if (log_verbose() > 1)
		log_debug("%016llx odmr state %s -> %s", (unsigned long long)o->id,
		    strstate(o->state), strstate(st));
	if (st == ODMR_QUIT && o->state != ODMR_QUIT) {
		io_pause_read(o->io);
		io_set_timeout(o->io, 10.0, 0);	/* as long as an SMTP session gets */
	}
	o->state = st;
}

/* odmr_reply - the one way a session answers; 421 closes, and too many 5xx
 * end the session as on the SMTP port */
static void
odmr_reply(struct odmr *o, enum smtp_reply_id id, const char *arg)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	char line[1024];
	size_t len = smtp_reply_format(line, sizeof(line), id, 1, &arg, 1);

	io_write(o->io, line, len);
	if (r->code >= 500)
		o->errors++;
	if (r->code == 421) {
		odmr_enter(o, ODMR_QUIT);
		return;
	}
	if (o->errors >= DEF_MAX_ERRORS && o->state != ODMR_QUIT)
		odmr_reply(o, R_TOO_MANY_ERRORS, o->rt->conf->hostname);
}

static int
odmr_require_tls(const struct odmr *o)
{
	return o->rt->conf->require_tls && o->rt->tls != NULL && !io_is_tls(o->io);
}

/* ---- failed AUTHs per address ---- */

/* auth_fails_of - the count for addr in its current window (created) */
static struct auth_fails *
auth_fails_of(const char *addr)
{
	ev_tstamp now = ev_now(spoold.loop);
	struct auth_fails **pp, *f;

	for (pp = &fails; (f = *pp) != NULL;) {
		if (now - f->window >= AUTH_FAIL_WINDOW) {
			*pp = f->next;
			free(f);
			nfails--;
			continue;
		}
		if (strcmp(f->addr, addr) == 0)
			return f;
		pp = &f->next;
	}
	/* bounded: past this many addresses in the window, new ones are not
	 * tracked (the per-connection limit still holds for them) */
	if (nfails >= AUTH_FAIL_MAX_TRACKED || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	f->window = now;
	f->next = fails;
	fails = f;
	nfails++;
	return f;
}

static int
auth_address_blocked(const char *addr)
{
	struct auth_fails *f = auth_fails_of(addr);

	return f != NULL && f->count >= AUTH_FAIL_MAX_ADDR;
}

/* ---- EHLO, STARTTLS, the small commands ---- */

static int
check_ehlo(struct odmr *o, const char *arg)
{
	size_t len = strlen(arg);

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 0x21 || (unsigned char)arg[i] > 0x7e)
			len = 0;
	if (len == 0 || len >= sizeof(o->helo)) {
		odmr_reply(o, R_SYNTAX, "EHLO hostname");
		return 0;
	}
	return 1;
}

static void
proceed_ehlo(struct odmr *o, const char *arg)
{
	char mechs[512], auth[540];
	const char *lines[8];
	size_t n = 0;
	char buf[2048];

	snprintf(o->helo, sizeof(o->helo), "%s", arg);
	if (o->state == ODMR_INIT)
		odmr_enter(o, ODMR_READY);
	auth_mechs(io_is_tls(o->io), (struct sockaddr *)&o->local, (struct sockaddr *)&o->peer,
	    mechs, sizeof(mechs));
	snprintf(auth, sizeof(auth), "AUTH %s", mechs);
	lines[n++] = o->rt->conf->hostname;
	lines[n++] = auth;		/* RFC 2645 5.1.1: AUTH and ATRN MUST be listed */
	lines[n++] = "ATRN";
	lines[n++] = "ENHANCEDSTATUSCODES";
	if (o->rt->tls != NULL && !io_is_tls(o->io))
		lines[n++] = "STARTTLS";
	io_write(o->io, buf, smtp_reply_format_lines(buf, sizeof(buf), R_EHLO, lines, n));
}

static int
check_starttls(struct odmr *o, const char *arg)
{
	if (o->rt->tls == NULL) {
		odmr_reply(o, R_NOT_IMPLEMENTED, NULL);
		return 0;
	}
	if (io_is_tls(o->io)) {
		odmr_reply(o, R_TLS_ACTIVE, NULL);
		return 0;
	}
	if (*arg != '\0') {
		odmr_reply(o, R_SYNTAX, "STARTTLS");
		return 0;
	}
	if (rate_exceeded(&rate_tls_handshakes, o->addr_key, o->rt->conf->rate_tls,
	    ev_now(io_loop(o->io)))) {
		log_info("%016llx odmr STARTTLS refused from %s: rate-tls", (unsigned long long)o->id,
		    o->peer_text);
		odmr_reply(o, R_TLS_RATE, NULL);
		return 0;
	}
	return 1;
}

static void
proceed_starttls(struct odmr *o, const char *arg)
{
	if (io_start_tls_server(o->io, o->rt->tls->cred, o->rt->tls->prio) == -1) {
		log_warnx("%016llx odmr STARTTLS failed: %s", (unsigned long long)o->id,
		    io_error(o->io));
		odmr_reply(o, R_TLS_UNAVAILABLE, NULL);
		return;
	}
	odmr_reply(o, R_STARTTLS_GO, NULL);
	odmr_enter(o, ODMR_TLS);
	io_set_timeout(o->io, (double)o->rt->conf->timeout_tls, 0);
}

static int
check_no_arg(struct odmr *o, const char *arg)
{
	if (*arg != '\0') {
		odmr_reply(o, R_SYNTAX, "no argument allowed");
		return 0;
	}
	return 1;
}

static int
check_any(struct odmr *o, const char *arg)
{
	return 1;
}

static void
proceed_noop(struct odmr *o, const char *arg)
{
	odmr_reply(o, R_NOOP, NULL);
}

static void
proceed_quit(struct odmr *o, const char *arg)
{
	odmr_reply(o, R_BYE, o->rt->conf->hostname);
	odmr_enter(o, ODMR_QUIT);
}

/* ---- AUTH (RFC 4954) ---- */

static void
odmr_auth_failed_now(struct odmr *o)
{
	odmr_enter(o, o->user[0] ? ODMR_AUTHED : ODMR_READY);
	if (o->failures >= AUTH_FAIL_MAX_CONN || auth_address_blocked(o->addr_key))
		odmr_reply(o, R_AUTH_TOO_MANY, o->rt->conf->hostname);
	else
		odmr_reply(o, o->delayed, NULL);
}

static void
odmr_delay_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct odmr *o = w->data;

	if (o->state != ODMR_AUTH_WAIT)
		return;		/* a 421 (timeout, shutdown) came first */
	odmr_auth_failed_now(o);
	odmr_process(o);	/* what the client sent meanwhile */
}

/* odmr_auth_failed - count it, and answer after the fixed delay */
static void
odmr_auth_failed(struct odmr *o, enum smtp_reply_id id)
{
	struct auth_fails *f = auth_fails_of(o->addr_key);

	auth_free(o->auth);
	o->auth = NULL;
	o->failures++;
	if (f != NULL)
		f->count++;
	log_info("%016llx odmr auth failed mech=%s from %s (%u on this connection)",
	    (unsigned long long)o->id, o->mech, o->peer_text, o->failures);
	o->delayed = id;
	odmr_enter(o, ODMR_AUTH_WAIT);
	ev_timer_set(&o->delay, AUTH_FAIL_DELAY, 0.);
	ev_timer_start(spoold.loop, &o->delay);
}

/* odmr_auth_result - the reply for what auth_start/auth_step said */
static void
odmr_auth_result(struct odmr *o, struct auth *a, enum auth_result res, const char *challenge)
{
	char esc[300];

	switch (res) {
	case AUTH_DONE:
		snprintf(o->user, sizeof(o->user), "%s", auth_user(a));
		auth_free(a);
		o->auth = NULL;
		ev_timer_stop(spoold.loop, &o->deadline);
		log_info("%016llx odmr auth ok user=%s mech=%s from %s", (unsigned long long)o->id,
		    log_escape(esc, sizeof(esc), o->user, 200), o->mech, o->peer_text);
		odmr_enter(o, ODMR_AUTHED);
		odmr_reply(o, R_AUTH_OK, NULL);
		return;
	case AUTH_MORE:
		o->auth = a;
		odmr_enter(o, ODMR_AUTH);
		odmr_reply(o, R_AUTH_CHALLENGE, challenge);
		return;
	case AUTH_FAIL:
		odmr_auth_failed(o, R_AUTH_FAILED);
		return;
	default:
		break;
	}
	auth_free(a);
	o->auth = NULL;
	odmr_enter(o, ODMR_READY);
	odmr_reply(o, res == AUTH_TEMP ? R_AUTH_TEMP : res == AUTH_NOMECH ? R_AUTH_MECH :
	    res == AUTH_ENCRYPT ? R_AUTH_ENCRYPT : R_AUTH_BASE64, NULL);
}

static int
check_auth(struct odmr *o, const char *arg)
{
	if (o->state == ODMR_INIT) {
		odmr_reply(o, R_HELO_FIRST, NULL);
		return 0;
	}
	if (o->user[0] != '\0') {
		odmr_reply(o, R_AUTH_ALREADY, NULL);
		return 0;
	}
	if (odmr_require_tls(o)) {
		odmr_reply(o, R_TLS_REQUIRED, NULL);
		return 0;
	}
	if (*arg == '\0') {
		odmr_reply(o, R_SYNTAX, "AUTH mechanism [initial-response]");
		return 0;
	}
	if (auth_address_blocked(o->addr_key)) {
		odmr_reply(o, R_AUTH_TOO_MANY, o->rt->conf->hostname);
		return 0;
	}
	return 1;
}

static void
proceed_auth(struct odmr *o, const char *arg)
{
	char challenge[AUTH_LINE_MAX];
	const char *initial;
	size_t mlen = strcspn(arg, " ");
	enum auth_result res;
	struct auth *a;

	snprintf(o->mech, sizeof(o->mech), "%.*s", (int)(mlen < 31 ? mlen : 31), arg);
	for (char *p = o->mech; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';
	initial = arg[mlen] == ' ' ? arg + mlen + 1 : NULL;
	res = auth_start(&a, o->mech, initial, io_is_tls(o->io), (struct sockaddr *)&o->local,
	    (struct sockaddr *)&o->peer, challenge, sizeof(challenge));
	odmr_auth_result(o, a, res, challenge);
}

/* odmr_auth_line - a response line in a SASL exchange */
static void
odmr_auth_line(struct odmr *o, const char *line)
{
	char challenge[AUTH_LINE_MAX];
	enum auth_result res;

	if (strcmp(line, "*") == 0) {	/* RFC 4954 4: the client gives up */
		auth_free(o->auth);
		o->auth = NULL;
		odmr_enter(o, ODMR_READY);
		odmr_reply(o, R_AUTH_CANCELLED, NULL);
		return;
	}
	res = auth_step(o->auth, line, challenge, sizeof(challenge));
	odmr_auth_result(o, o->auth, res, challenge);
}

/* ---- ATRN (RFC 2645 5.2.1) ---- */

static int
owns(const struct domain_conf *d, const char *user)
{
	for (size_t i = 0; d != NULL && i < d->n_atrn_users; i++)
		if (strcmp(d->atrn_users[i], user) == 0)
			return 1;
	return 0;
}

/* atrn_parse - "d1,d2,..." into names (canonical, no repeats); -1 if bad */
static int
atrn_parse(const char *arg, char (*names)[SMTP_DOMAIN_MAX + 1], size_t *n)
{
	const char *p = arg;

	*n = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		size_t k;

		if (len == 0 || len > SMTP_DOMAIN_MAX || *n == ATRN_MAX_DOMAINS)
			return -1;
		snprintf(names[*n], SMTP_DOMAIN_MAX + 1, "%.*s", (int)len, p);
		if (smtp_domain_canon(names[*n], 0) == -1)
			return -1;
		for (k = 0; k < *n && strcmp(names[k], names[*n]) != 0; k++)
			;
		*n += k == *n;
		p += len;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	return 0;
}

/* atrn_domains - the domains an ATRN asks for: the ones named, every one
 * of them owned by the user (else R_ATRN_REFUSED), or with no argument all
 * the user owns.  R__COUNT when they are fine. */
static enum smtp_reply_id
atrn_domains(struct odmr *o, const char *arg, char (*names)[SMTP_DOMAIN_MAX + 1], size_t *n)
{
	const struct spoold_conf *cf = o->rt->conf;

	if (*arg != '\0') {
		if (atrn_parse(arg, names, n) == -1)
			return R_SYNTAX;
		for (size_t i = 0; i < *n; i++)
			if (!owns(spoold_conf_domain(cf, names[i]), o->user))
				return R_ATRN_REFUSED;	/* all or nothing, no hint which */
		return R__COUNT;
	}
	*n = 0;
	for (size_t i = 0; i < cf->n_domains && *n < ATRN_MAX_DOMAINS; i++)
		if (owns(&cf->domains[i], o->user))
			snprintf(names[(*n)++], SMTP_DOMAIN_MAX + 1, "%s", cf->domains[i].name);
	return *n > 0 ? R__COUNT : R_ATRN_REFUSED;
}

static int
check_atrn(struct odmr *o, const char *arg)
{
	if (odmr_require_tls(o)) {
		odmr_reply(o, R_TLS_REQUIRED, NULL);
		return 0;
	}
	if (o->user[0] == '\0') {
		odmr_reply(o, R_AUTH_REQUIRED, NULL);
		return 0;
	}
	return 1;
}

/* odmr_turn - 250, and the connection goes to a delivery run */
static void
odmr_turn(struct odmr *o, const char *const *list, size_t n)
{
	struct io *io = o->io;

	/* the run first (it takes io and our configuration, whose TLS
	 * credentials the session goes on using), then the 250 */
	if (despool_turn(list, n, io, o->rt, o->user, o->peer_text) == -1) {
		odmr_reply(o, R_ATRN_BUSY, NULL);
		return;
	}
	odmr_reply(o, R_ATRN_TURN, NULL);
	o->io = NULL;	/* the run owns it now */
	odmr_free(o, "turned");
}

static void
proceed_atrn(struct odmr *o, const char *arg)
{
	char names[ATRN_MAX_DOMAINS][SMTP_DOMAIN_MAX + 1], esc[300];
	const char *list[ATRN_MAX_DOMAINS];
	enum smtp_reply_id id;
	size_t n = 0;

	if ((id = atrn_domains(o, arg, names, &n)) == R__COUNT) {
		for (size_t i = 0; i < n; i++)
			list[i] = names[i];
		switch (despool_atrn_check(list, n)) {
		case DESPOOL_ATRN_OK:
			/* RFC 2920 3.1: what follows ATRN would be read as the
			 * customer's replies once the line is turned */
			id = io_pending(o->io) > 0 ? R_ATRN_PIPELINED : R_ATRN_TURN;
			break;
		case DESPOOL_ATRN_NO_MAIL:
			id = R_ATRN_NO_MAIL;
			break;
		case DESPOOL_ATRN_BUSY:
			id = R_ATRN_BUSY;
			break;
		}
	}
	log_info("%016llx odmr atrn user=%s domains=%zu from %s reply=%d", (unsigned long long)o->id,
	    log_escape(esc, sizeof(esc), o->user, 200), n, o->peer_text, smtp_reply_get(id)->code);
	if (id == R_ATRN_TURN) {
		odmr_turn(o, list, n);
		return;
	}
	if (id == R_ATRN_PIPELINED) {
		odmr_reply(o, id, NULL);
		odmr_enter(o, ODMR_QUIT);
		return;
	}
	odmr_reply(o, id, id == R_SYNTAX ? "ATRN [domain[,domain]...]" : NULL);
}

/* ---- dispatch ---- */

#define CMD_STATES	(S(ODMR_INIT) | S(ODMR_READY) | S(ODMR_AUTHED))

static const struct odmr_command commands[] = {
	{ "EHLO",	CMD_STATES,	check_ehlo,	proceed_ehlo },
	{ "STARTTLS",	CMD_STATES,	check_starttls,	proceed_starttls },
	{ "AUTH",	CMD_STATES,	check_auth,	proceed_auth },
	{ "ATRN",	CMD_STATES,	check_atrn,	proceed_atrn },
	{ "NOOP",	CMD_STATES,	check_any,	proceed_noop },
	{ "RSET",	CMD_STATES,	check_no_arg,	proceed_noop },
	{ "QUIT",	CMD_STATES,	check_no_arg,	proceed_quit },
	{ NULL,		0,		NULL,		NULL },
};

static void
odmr_command(struct odmr *o, const char *line, size_t len)
{
	const struct odmr_command *c;
	const char *arg;
	char verb[16];

	arg = smtp_cmd_split(line, verb, sizeof(verb));
	if (strlen(line) != len) {
		odmr_reply(o, R_UNRECOGNIZED, NULL);
		return;
	}
	for (c = commands; c->verb && strcmp(c->verb, verb) != 0; c++)
		;
	if (c->verb == NULL) {	/* RFC 2645 5.4: anything else */
		odmr_reply(o, R_NOT_IMPLEMENTED, NULL);
		return;
	}
	if (len > 510) {
		odmr_reply(o, R_LINE_TOO_LONG, NULL);
		return;
	}
	if (c->check(o, arg))
		c->proceed(o, arg);
}

/* odmr_process - work through buffered lines as far as the state allows */
static void
odmr_process(struct odmr *o)
{
	char *line;
	size_t len;
	int toolong;

	while (o != NULL && o->io != NULL && (S(o->state) & (CMD_STATES | S(ODMR_AUTH))) &&
	    io_queued(o->io) <= IO_INBUF_MAX) {
		int in_auth = o->state == ODMR_AUTH;

		line = io_getline(o->io, in_auth ? AUTH_LINE_MAX + 2 : 1024, &len, &toolong);
		if (toolong == IO_LINE_FLOOD) {
			log_info("%016llx odmr line flood from %s: more than %u bytes without LF",
			    (unsigned long long)o->id, o->peer_text, IO_SKIP_MAX);
			auth_free(o->auth);
			o->auth = NULL;
			odmr_reply(o, R_LINE_FLOOD, o->rt->conf->hostname);
			break;
		}
		if (toolong) {
			if (in_auth) {
				auth_free(o->auth);
				o->auth = NULL;
				odmr_enter(o, ODMR_READY);
			}
			odmr_reply(o, in_auth ? R_AUTH_TOO_LONG : R_LINE_TOO_LONG, NULL);
			continue;
		}
		if (line == NULL)
			break;
		io_restart_timer(o->io);
		if (in_auth)
			odmr_auth_line(o, line);
		else {
			uint64_t id = o->id;

			odmr_command(o, line, len);
			if (!odmr_alive(id))
				return;		/* turned: the session is gone */
		}
	}
	if (o != NULL && o->io != NULL)
		io_consumed(o->io);
}

static void
odmr_event(struct io *io, enum io_event ev, void *arg)
{
	struct odmr *o = arg;
	char tls[128];

	switch (ev) {
	case IO_DATAIN: {
		uint64_t id = o->id;

		odmr_process(o);
		if (odmr_alive(id) && o->state == ODMR_QUIT && io_queued(io) == 0)
			odmr_free(o, "quit");
		return;
	}
	case IO_LOWAT:
		if (o->state == ODMR_QUIT)
			odmr_free(o, "quit");
		else
			odmr_process(o);
		return;
	case IO_TLSREADY:
		/* RFC 3207 4.2: forget what was learnt before TLS */
		o->helo[0] = '\0';
		if (o->user[0] != '\0') {	/* authenticate again, in time */
			o->user[0] = '\0';
			ev_timer_set(&o->deadline, ODMR_AUTH_DEADLINE, 0.);
			ev_timer_start(spoold.loop, &o->deadline);
		}
		odmr_enter(o, ODMR_INIT);
		io_set_timeout(io, (double)o->rt->conf->timeout_idle, 0);
		log_info("%016llx odmr TLS established from %s %s", (unsigned long long)o->id,
		    o->peer_text, io_tls_info(io, tls, sizeof(tls)));
		return;
	case IO_TIMEOUT:
		if (o->state == ODMR_QUIT || o->state == ODMR_TLS) {
			odmr_free(o, "timeout");
			return;
		}
		odmr_reply(o, R_TIMEOUT, o->rt->conf->hostname);
		return;
	case IO_DISCONNECTED:
		odmr_free(o, "lost connection");
		return;
	case IO_ERROR:
		odmr_free(o, io_error(io));
		return;
	case IO_CONNECTED:
		return;
	}
}

static void
odmr_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct odmr *o = w->data;

	if (o->user[0] == '\0' && o->state != ODMR_QUIT) {
		log_info("%016llx odmr no AUTH within %.0fs from %s", (unsigned long long)o->id,
		    ODMR_AUTH_DEADLINE, o->peer_text);
		odmr_reply(o, R_TIMEOUT, o->rt->conf->hostname);
	}
}

/* odmr_count_addr - ODMR sessions from the same address (or IPv6 /64) */
static unsigned
odmr_count_addr(const char *key)
{
	unsigned n = 0;

	for (struct odmr *o = sessions; o; o = o->next)
		n += strcmp(o->addr_key, key) == 0;
	return n;
}

int
odmr_alive(uint64_t id)
{
	for (struct odmr *o = sessions; o; o = o->next)
		if (o->id == id)
			return 1;
	return 0;
}

void
odmr_accept(int fd, const struct sockaddr *peer)
{
	struct odmr *o = calloc(1, sizeof(*o));
	socklen_t len = sizeof(o->local);
	const struct spoold_conf *cf = spoold.rt->conf;

	if (o == NULL || (o->io = io_new(spoold.loop, fd, odmr_event, o)) == NULL) {
		log_warnx("odmr: out of memory, dropping connection");
		free(o);
		close(fd);
		return;
	}
	o->id = ((uint64_t)time(NULL) << 24) ^ (++odmr_counter | 0x800000);
	o->rt = rt_ref(spoold.rt);
	memcpy(&o->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
	(void)getsockname(fd, (struct sockaddr *)&o->local, &len);
	sockaddr_text(peer, o->peer_text, sizeof(o->peer_text));
	ev_init(&o->delay, odmr_delay_done);
	o->delay.data = o;
	ev_timer_init(&o->deadline, odmr_deadline, ODMR_AUTH_DEADLINE, 0.);
	o->deadline.data = o;
	inbound_addr_key(peer, o->addr_key, sizeof(o->addr_key));
	o->next = sessions;
	if (sessions)
		sessions->prev = o;
	sessions = o;
	spoold.nsessions++;
	io_set_timeout(o->io, (double)cf->timeout_idle, 0);
	if (spoold.stopping || spoold.nsessions > cf->max_connections ||
	    odmr_count_addr(o->addr_key) > cf->max_connections_ip) {
		odmr_reply(o, spoold.stopping ? R_SHUTDOWN : spoold.nsessions > cf->max_connections ?
		    R_TOO_MANY_CONNS : R_TOO_MANY_CONNS_IP, cf->hostname);
		return;
	}
	ev_timer_start(spoold.loop, &o->deadline);
	log_info("%016llx odmr connect from %s port %d", (unsigned long long)o->id, o->peer_text,
	    sockaddr_port(peer));
	odmr_reply(o, R_ODMR_GREETING, cf->hostname);
}

static void
odmr_free(struct odmr *o, const char *why)
{
	char esc[80];

	char uesc[300];

	log_info("%016llx odmr disconnect from %s helo=%s user=%s reason=%s",
	    (unsigned long long)o->id, o->peer_text, log_escape(esc, sizeof(esc), o->helo, 64),
	    o->user[0] ? log_escape(uesc, sizeof(uesc), o->user, 200) : "-", why);
	ev_timer_stop(spoold.loop, &o->delay);
	ev_timer_stop(spoold.loop, &o->deadline);
	if (o->io != NULL)
		io_free(o->io);
	auth_free(o->auth);
	if (o->prev)
		o->prev->next = o->next;
	else
		sessions = o->next;
	if (o->next)
		o->next->prev = o->prev;
	spoold.nsessions--;
	rt_unref(o->rt);
	free(o);
}

void
odmr_shutdown_all(void)
{
	struct odmr *o, *next;

	for (o = sessions; o; o = next) {
		next = o->next;
		if (o->state == ODMR_TLS) {
			odmr_free(o, "shutdown");
			continue;
		}
		if (o->state != ODMR_QUIT)
			odmr_reply(o, R_SHUTDOWN, o->rt->conf->hostname);
	}
}
