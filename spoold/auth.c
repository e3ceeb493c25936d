/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * auth.c - Cyrus SASL glue for ODMR's AUTH; see auth.h.
 *
 * spoold.conf decides the SASL options: the option callback answers from
 * the running configuration's sasl-option lines, then from spoold's
 * defaults (auxprop with sasldb, a mechanism list without ANONYMOUS or
 * GSSAPI), and only then lets SASL read its own /etc/sasl2/<service>.conf.
 *
 * Threads: every call that may reach a password back end (sasl_server_new,
 * _start, _step, and SCRAM's fake challenge) runs on a worker (workers.c),
 * each attempt's sasl_conn_t on one thread at a time: the loop hands it over
 * with the job and takes it back only in the job's done().  Workers never
 * read the running configuration: an attempt gets its own copy of the
 * sasl-option lines, which its connection's option callback answers from.
 * SASL's init and done stay on the main thread, with real mutexes set
 * before the init (the library's own are no-ops).
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "cidr.h"
#include "log.h"
#include "runtime.h"
#include "auth.h"
#include "workers.h"

/* The external security layer a TLS session counts as. */
#define AUTH_TLS_SSF		256
/* attempts waiting for a thread beyond those running (then 454) */
#define AUTH_QUEUE_MAX		256
/* RFC 4954 4: a line is at most 12,288 octets, so is what it decodes to */
#define AUTH_IN_MAX		12288
#define AUTH_OUT_MAX		16384

struct auth_opt {
	char	*key, *value;
};

struct auth {
	struct work	 work;		/* the call in flight */
	sasl_conn_t	*conn;		/* its thread's while busy */
	int		 busy;		/* a worker has it */
	int		 abandoned;	/* auth_free came while busy */
	auth_report_fn	*report;
	void		*arg;
	/* what the connection is made with */
	char		 hostname[256];
	int		 tls;
	char		 local[80], peer[80];	/* "a.b.c.d;port", or "" */
	struct auth_opt	*opts;		/* the sasl-option lines, copied */
	size_t		 nopts;
	sasl_callback_t	 callbacks[2];
	/* the call: set by the loop, then the worker's until done() */
	int		 starting;	/* sasl_server_start, else _step */
	char		 mech[32];
	int		 initial;	/* an initial response was given */
	char		 in[AUTH_IN_MAX];
	unsigned	 inlen;
	enum auth_result res;
	char		 out[AUTH_OUT_MAX];	/* AUTH_MORE: the base64 challenge */
	char		 user[256];
	int		 fake;		/* a SCRAM exchange for a user that does not exist */
	int		 scram_first;	/* SCRAM without initial response: 1 SHA-1, 2 SHA-256 */
};

static const struct {
	const char	*key, *value;
} defaults[] = {
	{ "pwcheck_method",	"auxprop" },
	{ "auxprop_plugin",	"sasldb" },
	{ "mech_list",		"SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN" },
};

static int initialized;
static pthread_t main_thread;
static struct workers *workers;
/* the running configuration, whose sasl-option lines SASL reads */
static struct spoold_rt *running;

void
auth_configure(struct spoold_rt *rt)
{
	struct spoold_rt *old = running;

	running = rt != NULL ? rt_ref(rt) : NULL;
	rt_unref(old);
}

/* auth_default - spoold's own value for option, or NULL */
static const char *
auth_default(const char *option)
{
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (strcmp(defaults[i].key, option) == 0)
			return defaults[i].value;
	return NULL;
}

static int
auth_found(const char *value, const char **result, unsigned *len)
{
	if (value == NULL)
		return SASL_FAIL;	/* SASL may look in its own file */
	*result = value;
	if (len != NULL)
		*len = (unsigned)strlen(value);
	return SASL_OK;
}

/* auth_getopt - SASL_CB_GETOPT for the library (its init, auth_mechs):
 * spoold.conf first, then our defaults.  A worker only gets here for an
 * option its attempt's copy did not have, and must not read running. */
static int
auth_getopt(void *context, const char *plugin, const char *option, const char **result,
    unsigned *len)
{
	const struct spoold_conf *cf = running != NULL ? running->conf : NULL;

	if (!pthread_equal(pthread_self(), main_thread))
		return SASL_FAIL;
	for (size_t i = 0; cf != NULL && i < cf->n_sasl_opts; i++)
		if (strcmp(cf->sasl_opts[i].key, option) == 0)
			return auth_found(cf->sasl_opts[i].value, result, len);
	return auth_found(auth_default(option), result, len);
}

/* auth_conn_getopt - SASL_CB_GETOPT of one attempt's connection: its copy
 * of the options, then our defaults, on whichever thread has it */
static int
auth_conn_getopt(void *context, const char *plugin, const char *option, const char **result,
    unsigned *len)
{
	const struct auth *a = context;

	for (size_t i = 0; i < a->nopts; i++)
		if (strcmp(a->opts[i].key, option) == 0)
			return auth_found(a->opts[i].value, result, len);
	return auth_found(auth_default(option), result, len);
}

static int
auth_log(void *context, int level, const char *message)
{
	char esc[400];

	/* SASL's own messages never carry the password */
	if (level <= SASL_LOG_ERR)
		log_warnx("sasl: %s", log_escape(esc, sizeof(esc), message, 300));
	else if (level <= SASL_LOG_NOTE)
		log_info("sasl: %s", log_escape(esc, sizeof(esc), message, 300));
	return SASL_OK;
}

/* auth_proxy - the identity is the authentication id: a client asking to
 * act as someone else is refused */
static int
auth_proxy(sasl_conn_t *conn, void *context, const char *requested, unsigned rlen,
    const char *authid, unsigned alen, const char *realm, unsigned urlen,
    struct propctx *props)
{
	if (rlen != alen || strncmp(requested, authid, alen) != 0) {
		sasl_seterror(conn, 0, "authorization id differs from authentication id");
		return SASL_NOAUTHZ;
	}
	return SASL_OK;
}

/* SASL stores every callback as int (*)(void); going through void (*)(void),
 * which matches any function type, says the cast is meant */
#define SASL_CB(f)	((int (*)(void))(void (*)(void))(f))

static sasl_callback_t callbacks[] = {
	{ SASL_CB_GETOPT,	SASL_CB(auth_getopt),	NULL },
	{ SASL_CB_LOG,		SASL_CB(auth_log),	NULL },
	{ SASL_CB_PROXY_POLICY,	SASL_CB(auth_proxy),	NULL },
	{ SASL_CB_LIST_END,	NULL,				NULL },
};

/* ---- SASL's mutexes (its own do nothing) ---- */

static void *
auth_mutex_alloc(void)
{
	pthread_mutex_t *m = malloc(sizeof(*m));

	if (m != NULL && pthread_mutex_init(m, NULL) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

static int
auth_mutex_lock(void *m)
{
	return pthread_mutex_lock(m) == 0 ? 0 : -1;
}

static int
auth_mutex_unlock(void *m)
{
	return pthread_mutex_unlock(m) == 0 ? 0 : -1;
}

static void
auth_mutex_free(void *m)
{
	pthread_mutex_destroy(m);
	free(m);
}

/* A secret for the salts of users that do not exist: random, made once per
 * process (a restart changes them; a real user's salt does not change). */
static unsigned char fake_secret[32];
static int fake_secret_ok;

int
auth_init(struct ev_loop *loop, const char *service, unsigned nworkers, char *err,
    size_t errlen)
{
	/* SASL keeps the pointer, not a copy: it must outlive every reload */
	static char appname[128];
	int rc;

	if (initialized)
		return 0;
	main_thread = pthread_self();
	fake_secret_ok = getrandom(fake_secret, sizeof(fake_secret), 0) ==
	    (ssize_t)sizeof(fake_secret);
	snprintf(appname, sizeof(appname), "%s", service);
	sasl_set_mutex(auth_mutex_alloc, auth_mutex_lock, auth_mutex_unlock, auth_mutex_free);
	if ((rc = sasl_server_init(callbacks, appname)) != SASL_OK) {
		snprintf(err, errlen, "%s", sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	/* without threads the calls run on the loop, as they must then */
	if ((workers = workers_start(loop, nworkers, AUTH_QUEUE_MAX)) == NULL)
		log_warnx("sasl: no worker thread: AUTH runs on the event loop");
	initialized = 1;
	return 0;
}

void
auth_done(void)
{
	/* first: a thread may be in a SASL call; what comes back is dropped
	 * or answered (done() of every job), then SASL can go */
	workers_stop(workers);
	workers = NULL;
	if (initialized)
		sasl_server_done();
	initialized = 0;
	auth_configure(NULL);
}

/* ipport - "a.b.c.d;port", the form SASL wants (some mechanisms use it) */
static void
ipport(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[64];

	buf[0] = '\0';
	if (sa == NULL)
		return;
	sockaddr_text(sa, addr, sizeof(addr));
	snprintf(buf, len, "%s;%d", addr, sockaddr_port(sa));
}

/* auth_conn - a fresh SASL connection with the properties for this state
 * of the session: no plaintext mechanism without TLS, never anonymous, and
 * no SASL security layer (spoold does not wrap its I/O in one).  cb: the
 * connection's own callbacks (NULL: the library's). */
static sasl_conn_t *
auth_conn(const char *hostname, int tls, const char *local, const char *peer,
    const sasl_callback_t *cb)
{
	sasl_security_properties_t sp = {
		.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0,
		.security_flags = SASL_SEC_NOANONYMOUS | (tls ? 0 : SASL_SEC_NOPLAINTEXT),
	};
	sasl_ssf_t ssf = AUTH_TLS_SSF;
	sasl_conn_t *conn;

	if (!initialized || sasl_server_new("smtp", hostname, NULL, *local ? local : NULL,
	    *peer ? peer : NULL, cb, 0, &conn) != SASL_OK)
		return NULL;
	if (sasl_setprop(conn, SASL_SEC_PROPS, &sp) != SASL_OK ||
	    (tls && sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf) != SASL_OK)) {
		sasl_dispose(&conn);
		return NULL;
	}
	return conn;
}

/* auth_mechs - on the loop: listing the mechanisms asks no back end */
void
auth_mechs(const char *hostname, int tls, const struct sockaddr *local,
    const struct sockaddr *peer, char *out, size_t outlen)
{
	char l[80], p[80];
	sasl_conn_t *conn;
	const char *list;
	unsigned len;
	int count;

	out[0] = '\0';
	ipport(local, l, sizeof(l));
	ipport(peer, p, sizeof(p));
	if ((conn = auth_conn(hostname, tls, l, p, NULL)) == NULL)
		return;
	if (sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count) == SASL_OK)
		snprintf(out, outlen, "%.*s", (int)len, list);
	sasl_dispose(&conn);
}

/* auth_fold - SASL's many results into the four outcomes (and a few
 * protocol errors that have their own reply) */
static enum auth_result
auth_fold(int rc)
{
	switch (rc) {
	case SASL_OK:
		return AUTH_DONE;
	case SASL_CONTINUE:
		return AUTH_MORE;
	case SASL_NOMECH:
		return AUTH_NOMECH;
	case SASL_TOOWEAK:
	case SASL_ENCRYPT:
		return AUTH_ENCRYPT;
	case SASL_TRYAGAIN:
	case SASL_UNAVAIL:
	case SASL_NOMEM:
		return AUTH_TEMP;
	default:
		return AUTH_FAIL;	/* BADAUTH, NOUSER, NOAUTHZ, BADPROT, ... */
	}
}

/* auth_reply - after a SASL call: the challenge as base64, or who it is */
static enum auth_result
auth_reply(struct auth *a, int rc, const char *sout, unsigned soutlen)
{
	enum auth_result res = auth_fold(rc);
	const void *v = NULL;
	unsigned n;

	if (res == AUTH_TEMP) {
		/* The client only hears 454: say here why.  The code's own text:
		 * a plugin need not set a message (ldapdb with its server down
		 * returns SASL_UNAVAIL alone), and sasl_errdetail() then shows
		 * whatever the connection last noted, unrelated. */
		const char *port = strchr(a->peer, ';');

		log_warnx("sasl: %s from unknown[%.*s]:%s: %s (SASL %d); AUTH answered 454, "
		    "a temporary failure", a->mech, port != NULL ? (int)(port - a->peer) : 0,
		    a->peer, port != NULL ? port + 1 : "", sasl_errstring(rc, NULL, NULL), rc);
	}
	if (res == AUTH_MORE &&
	    sasl_encode64(sout, soutlen, a->out, (unsigned)sizeof(a->out), &n) != SASL_OK)
		return AUTH_TEMP;
	if (res == AUTH_DONE) {
		if (sasl_getprop(a->conn, SASL_USERNAME, &v) != SASL_OK || v == NULL)
			return AUTH_FAIL;
		snprintf(a->user, sizeof(a->user), "%s", (const char *)v);
	}
	return res;
}

/* auth_decode - base64 from the client into the attempt; -1 when malformed */
static int
auth_decode(struct auth *a, const char *in)
{
	if (strcmp(in, "=") == 0) {	/* RFC 4954 4: an empty initial response */
		a->inlen = 0;
		return 0;
	}
	return sasl_decode64(in, (unsigned)strlen(in), a->in, (unsigned)sizeof(a->in),
	    &a->inlen) == SASL_OK ? 0 : -1;
}

/* auth_fake_scram - the server-first message a real user would get (RFC
 * 5802 5.1), in the shape Cyrus gives it (a 32-character nonce of ours, a
 * 32-byte salt that stays the same for a name, 4096 rounds), after as much
 * work as a real one costs: SCRAM then fails like a wrong password and does
 * not tell who exists.  a->in is the client-first message. */
static enum auth_result
auth_fake_scram(struct auth *a, int sha256)
{
	unsigned char rnd[24], salt[32], key[32];
	char nonce[64], salt64[64], first[13000];
	const char *in = a->in;
	unsigned inlen = a->inlen;
	const char *user = memmem(in, inlen, "n=", 2), *r = memmem(in, inlen, ",r=", 3);
	size_t ulen, nlen;
	unsigned n;
	gnutls_datum_t pw = { rnd, sizeof(rnd) };

	if (user == NULL || r == NULL || !fake_secret_ok ||
	    getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return AUTH_FAIL;
	user += 2;
	ulen = strcspn(user, ",");
	r += 3;
	nlen = strcspn(r, ",");
	if ((size_t)(user - in) + ulen > inlen || (size_t)(r - in) + nlen > inlen)
		return AUTH_FAIL;
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, fake_secret, sizeof(fake_secret), user, ulen,
	    salt) < 0 ||
	    gnutls_pbkdf2(sha256 ? GNUTLS_MAC_SHA256 : GNUTLS_MAC_SHA1, &pw,
	    &(gnutls_datum_t){ salt, sizeof(salt) }, 4096, key, sizeof(key)) < 0 ||
	    sasl_encode64((const char *)rnd, sizeof(rnd), nonce, sizeof(nonce), &n) != SASL_OK ||
	    sasl_encode64((const char *)salt, sizeof(salt), salt64, sizeof(salt64), &n) != SASL_OK)
		return AUTH_FAIL;
	if ((size_t)snprintf(first, sizeof(first), "r=%.*s%s,s=%s,i=4096", (int)nlen, r, nonce,
	    salt64) >= sizeof(first))
		return AUTH_FAIL;
	explicit_bzero(key, sizeof(key));
	if (sasl_encode64(first, (unsigned)strlen(first), a->out, (unsigned)sizeof(a->out),
	    &n) != SASL_OK)
		return AUTH_FAIL;
	a->fake = 1;
	return AUTH_MORE;
}

/* ---- one call, on a worker ---- */

/* auth_run_start - sasl_server_new and _start */
static enum auth_result
auth_run_start(struct auth *a)
{
	const char *sout = NULL;
	unsigned soutlen = 0;
	enum auth_result res;
	int scram = strncasecmp(a->mech, "SCRAM-", 6) == 0;
	int sha256 = strncasecmp(a->mech, "SCRAM-SHA-256", 13) == 0;
	int rc;

	if ((a->conn = auth_conn(a->hostname, a->tls, a->local, a->peer, a->callbacks)) == NULL)
		return AUTH_TEMP;
	rc = sasl_server_start(a->conn, a->mech, a->initial ? a->in : NULL, a->inlen, &sout,
	    &soutlen);
	res = auth_reply(a, rc, sout, soutlen);
	if (res == AUTH_FAIL && scram && a->initial) {
		sasl_dispose(&a->conn);
		return auth_fake_scram(a, sha256);
	}
	if (res == AUTH_MORE && scram && !a->initial)
		a->scram_first = sha256 ? 2 : 1;
	return res;
}

/* auth_run_step - sasl_server_step */
static enum auth_result
auth_run_step(struct auth *a)
{
	const char *sout = NULL;
	unsigned soutlen = 0;
	enum auth_result res;
	int rc;

	/* a separate statement: sout and soutlen are only set by the call */
	rc = sasl_server_step(a->conn, a->in, a->inlen, &sout, &soutlen);
	res = auth_reply(a, rc, sout, soutlen);
	if (res == AUTH_FAIL && a->scram_first) {
		/* the client-first message came now (no initial response): an
		 * unknown user gets the same fake challenge as above */
		sasl_dispose(&a->conn);
		res = auth_fake_scram(a, a->scram_first == 2);
		a->fake = 1;
	}
	a->scram_first = 0;
	return res;
}

static void
auth_run(struct work *w)
{
	struct auth *a = (struct auth *)((char *)w - offsetof(struct auth, work));

	a->res = a->starting ? auth_run_start(a) : auth_run_step(a);
}

static void auth_dispose(struct auth *);

/* auth_ran - back on the loop: the attempt is the loop's again */
static void
auth_ran(struct work *w, int ran)
{
	struct auth *a = (struct auth *)((char *)w - offsetof(struct auth, work));

	a->busy = 0;
	if (!ran)
		a->res = AUTH_TEMP;	/* stopping before a thread took it */
	if (a->abandoned) {
		auth_dispose(a);
		return;
	}
	/* last: report may free a, or start its next call */
	a->report(a->arg, a, a->res, a->res == AUTH_MORE ? a->out : "");
}

/* auth_submit - the call to a worker (AUTH_PENDING), or when there is none
 * here and now; 454 when the queue is full */
static enum auth_result
auth_submit(struct auth *a)
{
	if (workers == NULL) {
		auth_run(&a->work);
		return a->res;
	}
	a->work.run = auth_run;
	a->work.done = auth_ran;
	if (workers_submit(workers, &a->work) == -1) {
		log_warnx("sasl: %d attempts wait for a thread: AUTH answered 454",
		    AUTH_QUEUE_MAX);
		return AUTH_TEMP;
	}
	a->busy = 1;
	return AUTH_PENDING;
}

/* ---- the API ---- */

/* auth_copy_opts - the running sasl-option lines, for a's connection */
static int
auth_copy_opts(struct auth *a)
{
	const struct spoold_conf *cf = running != NULL ? running->conf : NULL;

	if (cf == NULL || cf->n_sasl_opts == 0)
		return 0;
	if ((a->opts = calloc(cf->n_sasl_opts, sizeof(*a->opts))) == NULL)
		return -1;
	for (; a->nopts < cf->n_sasl_opts; a->nopts++) {
		struct auth_opt *o = &a->opts[a->nopts];

		o->key = strdup(cf->sasl_opts[a->nopts].key);
		o->value = strdup(cf->sasl_opts[a->nopts].value);
		if (o->key == NULL || o->value == NULL) {
			a->nopts++;	/* freed with the rest */
			return -1;
		}
	}
	return 0;
}

struct auth *
auth_new(const char *hostname, int tls, const struct sockaddr *local,
    const struct sockaddr *peer, auth_report_fn *report, void *arg)
{
	struct auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if (auth_copy_opts(a) == -1) {
		auth_dispose(a);
		return NULL;
	}
	snprintf(a->hostname, sizeof(a->hostname), "%s", hostname);
	a->tls = tls;
	ipport(local, a->local, sizeof(a->local));
	ipport(peer, a->peer, sizeof(a->peer));
	a->callbacks[0] = (sasl_callback_t){ SASL_CB_GETOPT, SASL_CB(auth_conn_getopt), a };
	a->callbacks[1] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	a->report = report;
	a->arg = arg;
	return a;
}

enum auth_result
auth_start(struct auth *a, const char *mech, const char *initial)
{
	/* The password itself would cross in clear: never without TLS, whatever
	 * require-tls says.  The reply is RFC 4954 6's 538 5.7.11, defined for
	 * exactly this: this mechanism may only be used once the connection is
	 * encrypted (and, as 6 asks, it is not listed before).  RFC 3207 4's
	 * 530 5.7.0 "Must issue a STARTTLS command first" says the policy wants
	 * TLS before any command: require-tls all's answer, not this one. */
	if (!a->tls && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0))
		return AUTH_ENCRYPT;
	if (initial != NULL && auth_decode(a, initial) == -1)
		return AUTH_BASE64;
	if (!initialized)
		return AUTH_TEMP;
	snprintf(a->mech, sizeof(a->mech), "%s", mech);
	a->initial = initial != NULL;
	a->starting = 1;
	return auth_submit(a);
}

enum auth_result
auth_step(struct auth *a, const char *response)
{
	if (a->busy)
		return AUTH_TEMP;	/* the caller reads no line while a step runs */
	if (auth_decode(a, response) == -1)
		return AUTH_BASE64;
	if (a->fake)
		return AUTH_FAIL;
	a->starting = 0;
	return auth_submit(a);
}

const char *
auth_challenge(struct auth *a)
{
	return a->out;
}

const char *
auth_user(struct auth *a)
{
	return a->user;
}

/* auth_dispose - the attempt and its connection, no worker having it */
static void
auth_dispose(struct auth *a)
{
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	for (size_t i = 0; i < a->nopts; i++) {
		free(a->opts[i].key);
		free(a->opts[i].value);
	}
	free(a->opts);
	explicit_bzero(a->in, sizeof(a->in));
	free(a);
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	if (a->busy) {
		a->abandoned = 1;	/* auth_ran frees it */
		return;
	}
	auth_dispose(a);
}
