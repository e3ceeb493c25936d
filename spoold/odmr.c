/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * odmr.c - the policy of "listen odmr" sessions (RFC 2645, port 366): the
 * engine (shared/smtp_server.c, SMTP_SERVICE_ODMR) runs the dialogue; this
 * file decides who may authenticate (SASL through auth.c, a failure limit
 * per client address), which domains an ATRN may ask for, and hands the
 * turned connection to a delivery run (despool_turn), which becomes the
 * SMTP client on it, keeping the TLS session as it is.
 *
 * SECURITY: everything read here is hostile.  AUTH payloads are never
 * logged; failures are limited per connection (the engine) and per client
 * address (here).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "atrn.h"
#include "despool.h"
#include "io.h"
#include "log.h"
#include "odmr.h"
#include "runtime.h"

/* Failed AUTHs per client address in a window. */
#define AUTH_FAIL_MAX_ADDR	10
#define AUTH_FAIL_WINDOW	600.0
#define AUTH_FAIL_MAX_TRACKED	10000

/* Failed AUTHs per client address in the current window. */
struct auth_fails {
	struct auth_fails	*next;
	char			 addr[64];
	ev_tstamp		 window;
	unsigned		 count;
};

static struct {
	struct ev_loop		*loop;
	struct auth_fails	*fails;
	unsigned		 nfails;	/* entries in fails */
} odmr;

void
odmr_init(struct ev_loop *loop)
{
	odmr.loop = loop;
}

/* ---- failed AUTHs per address ---- */

/* auth_fails_of - the count for addr in its current window (created) */
static struct auth_fails *
auth_fails_of(const char *addr)
{
	ev_tstamp now = ev_now(odmr.loop);
	struct auth_fails **pp, *f;

	for (pp = &odmr.fails; (f = *pp) != NULL;) {
		if (now - f->window >= AUTH_FAIL_WINDOW) {
			*pp = f->next;
			free(f);
			odmr.nfails--;
			continue;
		}
		if (strcmp(f->addr, addr) == 0)
			return f;
		pp = &f->next;
	}
	/* bounded: past this many addresses in the window, new ones are not
	 * tracked (the per-connection limit still holds for them) */
	if (odmr.nfails >= AUTH_FAIL_MAX_TRACKED || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	f->window = now;
	f->next = odmr.fails;
	odmr.fails = f;
	odmr.nfails++;
	return f;
}

static int
odmr_auth_blocked(void *arg, struct smtp_session *s)
{
	struct session *o = arg;
	struct auth_fails *f = auth_fails_of(o->addr);

	return f != NULL && f->count >= AUTH_FAIL_MAX_ADDR;
}

static void
odmr_auth_failed(void *arg, struct smtp_session *s)
{
	struct session *o = arg;
	struct auth_fails *f = auth_fails_of(o->addr);

	if (f != NULL)
		f->count++;
}

/* ---- SASL (auth.c) ---- */

static void
odmr_auth_mechs(void *arg, struct smtp_session *s, char *out, size_t outlen)
{
	struct session *o = arg;

	auth_mechs(o->rt->conf->hostname, smtp_session_tls(s), smtp_session_local(s),
	    smtp_session_peer(s), out, outlen);
}

static void
odmr_auth_cancel(void *arg, struct smtp_session *s)
{
	struct session *o = arg;

	auth_free(o->policy);
	o->policy = NULL;
}

/* odmr_auth_fold - auth.c's result as the engine's */
static enum smtp_auth_result
odmr_auth_fold(enum auth_result res)
{
	switch (res) {
	case AUTH_DONE:
		return SMTP_AUTH_DONE;
	case AUTH_MORE:
		return SMTP_AUTH_MORE;
	case AUTH_FAIL:
		return SMTP_AUTH_FAIL;
	case AUTH_TEMP:
		return SMTP_AUTH_TEMP;
	case AUTH_NOMECH:
		return SMTP_AUTH_NOMECH;
	case AUTH_ENCRYPT:
		return SMTP_AUTH_ENCRYPT;
	case AUTH_BASE64:
		return SMTP_AUTH_BASE64;
	case AUTH_PENDING:
		return SMTP_AUTH_PENDING;
	}
	return SMTP_AUTH_FAIL;
}

/* odmr_auth_outcome - what auth.c said, for the engine, with the text it
 * goes with in out; the exchange is kept while it goes on or its step runs */
static enum smtp_auth_result
odmr_auth_outcome(struct session *o, struct auth *a, enum auth_result res,
    const char *challenge, char *out, size_t outlen)
{
	/* a challenge longer than a line (RFC 4954 4) cannot be sent */
	if (res == AUTH_MORE && (size_t)snprintf(out, outlen, "%s", challenge) >= outlen)
		res = AUTH_TEMP;
	else if (res == AUTH_DONE)
		snprintf(out, outlen, "%s", auth_user(a));
	if (res != AUTH_MORE && res != AUTH_PENDING) {
		auth_free(a);
		a = NULL;
	}
	o->policy = a;
	return odmr_auth_fold(res);
}

/* odmr_auth_report - a SASL step that ran on a worker: its answer now */
static void
odmr_auth_report(void *arg, struct auth *a, enum auth_result res, const char *challenge)
{
	struct session *o = arg;
	char out[SMTP_AUTH_LINE_MAX];
	enum smtp_auth_result r = odmr_auth_outcome(o, a, res, challenge, out, sizeof(out));

	/* last: the engine may read the next line and step again */
	smtp_session_auth_done(o->smtp, r, out);
}

static enum smtp_auth_result
odmr_auth_start(void *arg, struct smtp_session *s, const char *mech, const char *initial,
    char *out, size_t outlen)
{
	struct session *o = arg;
	struct auth *a;

	if ((a = auth_new(o->rt->conf->hostname, smtp_session_tls(s), smtp_session_local(s),
	    smtp_session_peer(s), odmr_auth_report, o)) == NULL)
		return SMTP_AUTH_TEMP;
	return odmr_auth_outcome(o, a, auth_start(a, mech, initial), auth_challenge(a), out,
	    outlen);
}

static enum smtp_auth_result
odmr_auth_step(void *arg, struct smtp_session *s, const char *response, char *out,
    size_t outlen)
{
	struct session *o = arg;
	struct auth *a = o->policy;

	return odmr_auth_outcome(o, a, auth_step(a, response), auth_challenge(a), out, outlen);
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

/* atrn_domains - the domains an ATRN asks for: the ones named, every one
 * of them owned by the user (else R_ATRN_REFUSED), or with no argument all
 * the user owns.  R__COUNT when they are fine. */
static enum smtp_reply_id
atrn_domains(const struct spoold_conf *cf, const char *user, const char *arg,
    char (*names)[SMTP_DOMAIN_MAX + 1], size_t *n)
{
	if (*arg != '\0') {
		if (atrn_parse(arg, names, ATRN_MAX_DOMAINS, n) == -1)
			return R_SYNTAX;
		for (size_t i = 0; i < *n; i++)
			if (!owns(spoold_conf_domain(cf, names[i]), user))
				return R_ATRN_REFUSED;	/* all or nothing, no hint which */
		return R__COUNT;
	}
	*n = 0;
	for (size_t i = 0; i < cf->n_domains && *n < ATRN_MAX_DOMAINS; i++)
		if (owns(&cf->domains[i], user))
			snprintf(names[(*n)++], SMTP_DOMAIN_MAX + 1, "%s", cf->domains[i].name);
	return *n > 0 ? R__COUNT : R_ATRN_REFUSED;
}

/* atrn_list - the names as the pointer list despool takes */
static void
atrn_list(char (*names)[SMTP_DOMAIN_MAX + 1], size_t n, const char **list)
{
	for (size_t i = 0; i < n; i++)
		list[i] = names[i];
}

static enum smtp_reply_id
odmr_atrn(void *arg, struct smtp_session *s, const char *domains)
{
	struct session *o = arg;
	char names[ATRN_MAX_DOMAINS][SMTP_DOMAIN_MAX + 1], esc[LOG_ESCAPE_SIZE(200)];
	const char *list[ATRN_MAX_DOMAINS];
	const char *user = smtp_session_user(s);
	enum smtp_reply_id id;
	size_t n = 0;

	if ((id = atrn_domains(o->rt->conf, user, domains, names, &n)) == R__COUNT) {
		atrn_list(names, n, list);
		switch (despool_atrn_check(list, n)) {
		case DESPOOL_ATRN_OK:
			/* RFC 2920 3.1: what follows ATRN would be read as the
			 * customer's replies once the line is turned */
			id = smtp_session_pipelined(s) ? R_ATRN_PIPELINED : R_ATRN_TURN;
			break;
		case DESPOOL_ATRN_NO_MAIL:
			id = R_ATRN_NO_MAIL;
			break;
		case DESPOOL_ATRN_BUSY:
			id = R_ATRN_BUSY;
			break;
		}
	}
	log_role(LOG_ODMR, "%016llx: atrn user=%s domains=%zu from unknown[%s] reply=%d",
	    (unsigned long long)smtp_session_id(s), log_escape(esc, sizeof(esc), user, 200), n,
	    smtp_session_peer_text(s), smtp_reply_get(id)->code);
	return id;
}

/* odmr_turn - the connection goes to a delivery run, with this session's
 * configuration (whose TLS credentials the connection goes on using) */
static int
odmr_turn(void *arg, struct smtp_session *s, const char *domains, struct io *io)
{
	struct session *o = arg;
	char names[ATRN_MAX_DOMAINS][SMTP_DOMAIN_MAX + 1];
	const char *list[ATRN_MAX_DOMAINS];
	size_t n = 0;

	if (atrn_domains(o->rt->conf, smtp_session_user(s), domains, names, &n) != R__COUNT)
		return -1;
	atrn_list(names, n, list);
	return despool_turn(list, n, io, o->rt, smtp_session_user(s), smtp_session_peer_text(s));
}

static void
odmr_closed(void *arg, struct smtp_session *s)
{
	struct session *o = arg;

	auth_free(o->policy);	/* an exchange the engine did not cancel */
	session_closed(o);
}

static const struct smtp_server_ops odmr_ops = {
	.check_starttls = session_check_starttls,
	.closed = odmr_closed,
	.auth_mechs = odmr_auth_mechs,
	.auth_start = odmr_auth_start,
	.auth_step = odmr_auth_step,
	.auth_cancel = odmr_auth_cancel,
	.auth_blocked = odmr_auth_blocked,
	.auth_failed = odmr_auth_failed,
	.atrn = odmr_atrn,
	.turn = odmr_turn,
	.replied = session_replied,
};

static const struct smtp_server_config *
odmr_config(const struct spoold_rt *rt)
{
	return &rt->odmr;
}

const struct session_service odmr_service = {
	.name = "odmr", .ops = &odmr_ops, .config = odmr_config,
};
