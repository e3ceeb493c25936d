/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * auth.h - SASL authentication (RFC 4954) for the ODMR listener, with Cyrus
 * libsasl2.  Only auth.c includes <sasl/sasl.h>.
 *
 * Every outcome is folded into four, as Postfix does: done, more (a
 * challenge to send), fail (535: wrong password and unknown user alike, so
 * accounts cannot be probed) and temporary (454: the back end is down).
 * Each AUTH attempt gets a fresh SASL connection (CVE-2011-1720).  Payloads
 * are never logged.
 */
#ifndef SPOOLD_AUTH_H
#define SPOOLD_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

struct spoold_rt;
struct auth;

enum auth_result {
	AUTH_DONE,		/* 235; auth_user() names who */
	AUTH_MORE,		/* 334 with the challenge */
	AUTH_FAIL,		/* 535 5.7.8 */
	AUTH_TEMP,		/* 454 4.7.0 */
	AUTH_NOMECH,		/* 504 5.5.4: not a mechanism offered here */
	AUTH_ENCRYPT,		/* 538 5.7.11: a plaintext mechanism without TLS */
	AUTH_BASE64,		/* 501 5.5.2: the client's line is not base64 */
};

/* auth_init - sasl_server_init with service (spoold.conf's sasl-service)
 * as the application name.  -1 with a reason when SASL cannot start. */
int	auth_init(const char *service, char *err, size_t errlen);
/* auth_configure - the running configuration: its sasl-option values reach
 * SASL through the option callback whenever SASL asks (start, SIGHUP) */
void	auth_configure(struct spoold_rt *);
void	auth_done(void);

/* auth_mechs - the mechanisms to list in EHLO ("SCRAM-SHA-256 CRAM-MD5"),
 * PLAIN and LOGIN only with tls; "" when none.  hostname is the server's
 * name (the realm). */
void	auth_mechs(const char *hostname, int tls, const struct sockaddr *local,
	    const struct sockaddr *peer, char *out, size_t outlen);

/* auth_start - begin an attempt with mech and the base64 initial response
 * (NULL: none given; "=" is an empty one).  AUTH_MORE puts the base64
 * challenge in out; AUTH_DONE and AUTH_MORE set *a (free it with
 * auth_free), the other results leave it NULL. */
enum auth_result auth_start(struct auth **a, const char *hostname, const char *mech,
	    const char *initial, int tls, const struct sockaddr *local, const struct sockaddr *peer,
	    char *out, size_t outlen);
/* auth_step - the client's base64 answer to a challenge */
enum auth_result auth_step(struct auth *, const char *response, char *out, size_t outlen);
/* auth_user - the authenticated identity after AUTH_DONE */
const char *auth_user(struct auth *);
void	auth_free(struct auth *);

#endif
