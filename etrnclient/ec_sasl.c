/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ec_sasl.c - Cyrus SASL client glue; see ec_sasl.h.  The password is
 * handed to the library through its callback and never logged.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "ec_sasl.h"

struct ec_sasl {
	sasl_conn_t	*conn;
	const char	*user;
	sasl_secret_t	*secret;
	sasl_callback_t	 cb[4];
};

static int initialized;

static int
get_user(void *context, int id, const char **result, unsigned *len)
{
	struct ec_sasl *s = context;

	if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
		return SASL_BADPARAM;
	*result = s->user;
	if (len != NULL)
		*len = (unsigned)strlen(s->user);
	return SASL_OK;
}

static int
get_pass(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
	struct ec_sasl *s = context;

	*psecret = s->secret;
	return SASL_OK;
}

#define SASL_CB(f)	((int (*)(void))(void (*)(void))(f))

int
ec_sasl_init(char *err, size_t errlen)
{
	int rc;

	if (initialized)
		return 0;
	if ((rc = sasl_client_init(NULL)) != SASL_OK) {
		snprintf(err, errlen, "%s", sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	initialized = 1;
	return 0;
}

static void
sasl_why(sasl_conn_t *conn, int rc, char *err, size_t errlen)
{
	const char *d = conn ? sasl_errdetail(conn) : NULL;

	snprintf(err, errlen, "%s", d ? d : sasl_errstring(rc, NULL, NULL));
}

/* ec_sasl_new - a connection with our callbacks and the security wanted:
 * no plaintext mechanism in clear, no anonymous, no SASL security layer */
static struct ec_sasl *
ec_sasl_new(const char *host, const char *user, const char *password, int tls)
{
	sasl_security_properties_t sp = {
		.min_ssf = 0, .max_ssf = 0, .maxbufsize = 0,
		.security_flags = SASL_SEC_NOANONYMOUS | (tls ? 0 : SASL_SEC_NOPLAINTEXT),
	};
	sasl_ssf_t ssf = 256;
	size_t plen = strlen(password);
	struct ec_sasl *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->secret = calloc(1, sizeof(*s->secret) + plen + 1)) == NULL) {
		free(s);
		return NULL;
	}
	s->user = user;
	s->secret->len = plen;
	memcpy(s->secret->data, password, plen);
	s->cb[0] = (sasl_callback_t){ SASL_CB_USER, SASL_CB(get_user), s };
	s->cb[1] = (sasl_callback_t){ SASL_CB_AUTHNAME, SASL_CB(get_user), s };
	s->cb[2] = (sasl_callback_t){ SASL_CB_PASS, SASL_CB(get_pass), s };
	s->cb[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	if (sasl_client_new("smtp", host, NULL, NULL, s->cb, 0, &s->conn) != SASL_OK ||
	    sasl_setprop(s->conn, SASL_SEC_PROPS, &sp) != SASL_OK ||
	    (tls && sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ssf) != SASL_OK)) {
		ec_sasl_free(s);
		return NULL;
	}
	return s;
}

/* encode - base64 of a SASL output, "=" for an empty one (RFC 4954 4) */
static int
encode(const char *data, unsigned len, char *out, size_t outlen)
{
	unsigned n;

	if (len == 0) {
		snprintf(out, outlen, "=");
		return 0;
	}
	return sasl_encode64(data, len, out, (unsigned)outlen, &n) == SASL_OK ? 0 : -1;
}

enum ec_sasl_result
ec_sasl_start(struct ec_sasl **sp, const char *host, const char *user, const char *password,
    int tls, const char *mechs, const char **mech, char *out, size_t outlen, char *err,
    size_t errlen)
{
	struct ec_sasl *s;
	const char *data = NULL;
	unsigned len = 0;
	int rc;

	*sp = NULL;
	if (!initialized || (s = ec_sasl_new(host, user, password, tls)) == NULL) {
		snprintf(err, errlen, "cannot set up SASL");
		return EC_SASL_FAIL;
	}
	rc = sasl_client_start(s->conn, mechs, NULL, &data, &len, mech);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		sasl_why(s->conn, rc, err, errlen);
		ec_sasl_free(s);
		return EC_SASL_FAIL;
	}
	out[0] = '\0';
	if (data != NULL && encode(data, len, out, outlen) == -1) {
		ec_sasl_free(s);
		snprintf(err, errlen, "initial response too long");
		return EC_SASL_FAIL;
	}
	*sp = s;
	return rc == SASL_OK ? EC_SASL_OK : EC_SASL_CONTINUE;
}

enum ec_sasl_result
ec_sasl_step(struct ec_sasl *s, const char *challenge, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char in[12288];
	unsigned inlen = 0, len = 0;
	const char *data = NULL;
	int rc;

	if (sasl_decode64(challenge, (unsigned)strlen(challenge), in, sizeof(in), &inlen) != SASL_OK) {
		snprintf(err, errlen, "the server's challenge is not base64");
		return EC_SASL_FAIL;
	}
	rc = sasl_client_step(s->conn, in, inlen, NULL, &data, &len);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		sasl_why(s->conn, rc, err, errlen);
		return EC_SASL_FAIL;
	}
	if (encode(data ? data : "", data ? len : 0, out, outlen) == -1) {
		snprintf(err, errlen, "response too long");
		return EC_SASL_FAIL;
	}
	if (len == 0)		/* an empty answer is an empty line, not "=" */
		out[0] = '\0';
	return rc == SASL_OK ? EC_SASL_OK : EC_SASL_CONTINUE;
}

void
ec_sasl_free(struct ec_sasl *s)
{
	if (s == NULL)
		return;
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	if (s->secret != NULL) {
		explicit_bzero(s->secret->data, s->secret->len);
		free(s->secret);
	}
	free(s);
}
