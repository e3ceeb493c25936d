/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * auth.c - Cyrus SASL glue for ODMR's AUTH; see auth.h.
 *
 * spoold.conf decides the SASL options: the option callback answers from
 * the running configuration's sasl-option lines, then from spoold's
 * defaults (auxprop with sasldb, a mechanism list without ANONYMOUS or
 * GSSAPI), and only then lets SASL read its own /etc/sasl2/<service>.conf.
 */
#include "config.h"

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

/* The external security layer a TLS session counts as. */
#define AUTH_TLS_SSF		256

struct auth {
	sasl_conn_t	*conn;
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
/* the running configuration, whose sasl-option lines SASL reads */
static struct spoold_rt *running;

void
auth_configure(struct spoold_rt *rt)
{
	struct spoold_rt *old = running;

	running = rt != NULL ? rt_ref(rt) : NULL;
	rt_unref(old);
}

/* auth_getopt - SASL_CB_GETOPT: spoold.conf first, then our defaults */
static int
auth_getopt(void *context, const char *plugin, const char *option, const char **result,
    unsigned *len)
{
	const struct spoold_conf *cf = running != NULL ? running->conf : NULL;

	for (size_t i = 0; cf != NULL && i < cf->n_sasl_opts; i++)
		if (strcmp(cf->sasl_opts[i].key, option) == 0) {
			*result = cf->sasl_opts[i].value;
			goto found;
		}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (strcmp(defaults[i].key, option) == 0) {
			*result = defaults[i].value;
			goto found;
		}
	return SASL_FAIL;	/* SASL may look in its own file */
found:
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
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

int
auth_init(const char *service, char *err, size_t errlen)
{
	/* SASL keeps the pointer, not a copy: it must outlive every reload */
	static char appname[128];
	int rc;

	if (initialized)
		return 0;
	snprintf(appname, sizeof(appname), "%s", service);
	if ((rc = sasl_server_init(callbacks, appname)) != SASL_OK) {
		snprintf(err, errlen, "%s", sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	initialized = 1;
	return 0;
}

void
auth_done(void)
{
	if (initialized)
		sasl_server_done();
	initialized = 0;
	auth_configure(NULL);
}

/* ipport - "a.b.c.d;port", the form SASL wants (some mechanisms use it) */
static const char *
ipport(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[64];

	if (sa == NULL)
		return NULL;
	sockaddr_text(sa, addr, sizeof(addr));
	snprintf(buf, len, "%s;%d", addr, sockaddr_port(sa));
	return buf;
}

/* auth_conn - a fresh SASL connection with the properties for this state
 * of the session: no plaintext mechanism without TLS, never anonymous, and
 * no SASL security layer (spoold does not wrap its I/O in one) */
static sasl_conn_t *
auth_conn(const char *hostname, int tls, const struct sockaddr *local,
    const struct sockaddr *peer)
{
	sasl_security_properties_t sp = {
		.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0,
		.security_flags = SASL_SEC_NOANONYMOUS | (tls ? 0 : SASL_SEC_NOPLAINTEXT),
	};
	sasl_ssf_t ssf = AUTH_TLS_SSF;
	char l[80], p[80];
	sasl_conn_t *conn;

	if (!initialized || sasl_server_new("smtp", hostname, NULL,
	    ipport(local, l, sizeof(l)), ipport(peer, p, sizeof(p)), NULL, 0, &conn) != SASL_OK)
		return NULL;
	if (sasl_setprop(conn, SASL_SEC_PROPS, &sp) != SASL_OK ||
	    (tls && sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf) != SASL_OK)) {
		sasl_dispose(&conn);
		return NULL;
	}
	return conn;
}

void
auth_mechs(const char *hostname, int tls, const struct sockaddr *local,
    const struct sockaddr *peer, char *out, size_t outlen)
{
	sasl_conn_t *conn = auth_conn(hostname, tls, local, peer);
	const char *list;
	unsigned len;
	int count;

	out[0] = '\0';
	if (conn == NULL)
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
auth_reply(struct auth *a, int rc, const char *sout, unsigned soutlen, char *out, size_t outlen)
{
	enum auth_result res = auth_fold(rc);
	const void *v = NULL;
	unsigned n;

	if (res == AUTH_MORE && sasl_encode64(sout, soutlen, out, (unsigned)outlen, &n) != SASL_OK)
		return AUTH_TEMP;
	if (res == AUTH_DONE) {
		if (sasl_getprop(a->conn, SASL_USERNAME, &v) != SASL_OK || v == NULL)
			return AUTH_FAIL;
		snprintf(a->user, sizeof(a->user), "%s", (const char *)v);
	}
	return res;
}

/* auth_decode - base64 from the client into buf; -1 when malformed */
static int
auth_decode(const char *in, char *buf, size_t buflen, unsigned *len)
{
	if (strcmp(in, "=") == 0) {	/* RFC 4954 4: an empty initial response */
		*len = 0;
		return 0;
	}
	return sasl_decode64(in, (unsigned)strlen(in), buf, (unsigned)buflen, len) == SASL_OK ? 0 : -1;
}

/* A secret for the salts of users that do not exist: random, made once per
 * process (a restart changes them; a real user's salt does not change). */
static unsigned char fake_secret[32];
static int fake_secret_ok;

/* auth_fake_scram - the server-first message a real user would get (RFC
 * 5802 5.1), in the shape Cyrus gives it (a 32-character nonce of ours, a
 * 32-byte salt that stays the same for a name, 4096 rounds), after as much
 * work as a real one costs: SCRAM then fails like a wrong password and does
 * not tell who exists.  in is the client-first message. */
static enum auth_result
auth_fake_scram(struct auth **ap, int sha256, const char *in, unsigned inlen, char *out,
    size_t outlen)
{
	unsigned char rnd[24], salt[32], key[32];
	char nonce[64], salt64[64], first[13000];
	const char *user = memmem(in, inlen, "n=", 2), *r = memmem(in, inlen, ",r=", 3);
	size_t ulen, nlen;
	unsigned n;
	gnutls_datum_t pw = { rnd, sizeof(rnd) };
	struct auth *a;

	if (!fake_secret_ok)
		fake_secret_ok = getrandom(fake_secret, sizeof(fake_secret), 0) ==
		    (ssize_t)sizeof(fake_secret);
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
	    salt64) >= sizeof(first) || (a = calloc(1, sizeof(*a))) == NULL)
		return AUTH_FAIL;
	if (sasl_encode64(first, (unsigned)strlen(first), out, (unsigned)outlen, &n) != SASL_OK) {
		free(a);
		return AUTH_FAIL;
	}
	explicit_bzero(key, sizeof(key));
	a->fake = 1;
	*ap = a;
	return AUTH_MORE;
}

enum auth_result
auth_start(struct auth **ap, const char *hostname, const char *mech, const char *initial,
    int tls, const struct sockaddr *local, const struct sockaddr *peer, char *out, size_t outlen)
{
	struct auth *a;
	char in[12288];
	unsigned inlen = 0;
	const char *sout = NULL;
	unsigned soutlen = 0;
	enum auth_result res;
	int rc;

	*ap = NULL;
	/* The password itself would cross in clear: never without TLS, whatever
	 * require-tls says.  The reply is RFC 4954 6's 538 5.7.11, defined for
	 * exactly this: this mechanism may only be used once the connection is
	 * encrypted (and, as 6 asks, it is not listed before).  RFC 3207 4's
	 * 530 5.7.0 "Must issue a STARTTLS command first" says the policy wants
	 * TLS before any command: require-tls all's answer, not this one. */
	if (!tls && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0))
		return AUTH_ENCRYPT;
	if (initial != NULL && auth_decode(initial, in, sizeof(in), &inlen) == -1)
		return AUTH_BASE64;
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->conn = auth_conn(hostname, tls, local, peer)) == NULL) {
		free(a);
		return AUTH_TEMP;
	}
	rc = sasl_server_start(a->conn, mech, initial ? in : NULL, inlen, &sout, &soutlen);
	res = auth_reply(a, rc, sout, soutlen, out, outlen);
	if (res == AUTH_DONE || res == AUTH_MORE)
		*ap = a;
	else
		auth_free(a);
	if (res == AUTH_FAIL && strncasecmp(mech, "SCRAM-", 6) == 0 && initial != NULL)
		return auth_fake_scram(ap, strncasecmp(mech, "SCRAM-SHA-256", 13) == 0, in, inlen,
		    out, outlen);
	if (res == AUTH_MORE && strncasecmp(mech, "SCRAM-", 6) == 0 && initial == NULL)
		a->scram_first = strncasecmp(mech, "SCRAM-SHA-256", 13) == 0 ? 2 : 1;
	return res;
}

enum auth_result
auth_step(struct auth *a, const char *response, char *out, size_t outlen)
{
	char in[12288];
	unsigned inlen;
	const char *sout = NULL;
	unsigned soutlen = 0;
	enum auth_result res;
	int rc;

	if (auth_decode(response, in, sizeof(in), &inlen) == -1)
		return AUTH_BASE64;
	if (a->fake)
		return AUTH_FAIL;
	/* a separate statement: sout and soutlen are only set by the call */
	rc = sasl_server_step(a->conn, in, inlen, &sout, &soutlen);
	res = auth_reply(a, rc, sout, soutlen, out, outlen);
	if (res == AUTH_FAIL && a->scram_first) {
		/* the client-first message came now (no initial response): an
		 * unknown user gets the same fake challenge as above */
		struct auth *fake = NULL;
		int sha256 = a->scram_first == 2;

		sasl_dispose(&a->conn);
		res = auth_fake_scram(&fake, sha256, in, inlen, out, outlen);
		a->fake = 1;
		free(fake);
	}
	a->scram_first = 0;
	return res;
}

const char *
auth_user(struct auth *a)
{
	return a->user;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	free(a);
}
