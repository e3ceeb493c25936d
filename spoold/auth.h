/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * auth.h - SASL authentication (RFC 4954) for the ODMR listener, with Cyrus
 * libsasl2.  Only auth.c includes <sasl/sasl.h>.
 *
 * Every outcome is folded into four, as Postfix does: done, more (a
 * challenge to send), fail (535: wrong password and unknown user alike, so
 * accounts cannot be probed) and temporary (454: the back end is down).
 * Each AUTH attempt gets a fresh SASL connection (CVE-2011-1720).  Payloads
 * are never logged.  The SASL calls that may wait on a back end (saslauthd,
 * an SQL or LDAP auxprop) run on worker threads, their results coming back
 * on the loop, so a slow back end holds up only the sessions it answers.
 */
#ifndef SPOOLD_AUTH_H
#define SPOOLD_AUTH_H

#include <stddef.h>
#include <sys/socket.h>
#include <ev.h>

struct spoold_rt;
struct auth;

enum auth_result {
	AUTH_DONE,		/* 235; auth_user() names who */
	AUTH_MORE,		/* 334 with the challenge (auth_challenge()) */
	AUTH_FAIL,		/* 535 5.7.8 */
	AUTH_TEMP,		/* 454 4.7.0 */
	AUTH_NOMECH,		/* 504 5.5.4: not a mechanism offered here */
	AUTH_ENCRYPT,		/* 538 5.7.11: a plaintext mechanism without TLS */
	AUTH_BASE64,		/* 501 5.5.2: the client's line is not base64 */
	AUTH_PENDING,		/* the SASL call runs on a worker: report() comes */
};

/* auth_report_fn - a call's result, on the loop, once: out is the base64
 * challenge for AUTH_MORE ("" otherwise), valid until the next call on a
 * or auth_free(a), which report may do */
typedef void auth_report_fn(void *arg, struct auth *a, enum auth_result, const char *out);

/* auth_init - SASL's mutexes, sasl_server_init with service (spoold.conf's
 * sasl-service) as the application name, and nworkers threads (its
 * sasl-workers), on the main thread before any other call.  -1 with a
 * reason when SASL cannot start; without threads the calls run on the loop
 * (logged). */
int	auth_init(struct ev_loop *, const char *service, unsigned nworkers, char *err,
	    size_t errlen);
/* auth_configure - the running configuration: its sasl-option lines reach
 * SASL through the option callback; an attempt copies them when it is
 * made (auth_new), which is what its worker reads */
void	auth_configure(struct spoold_rt *);
/* auth_done - the workers joined (each job's report: results of the ones
 * still wanted, AUTH_TEMP for those never run), then sasl_server_done */
void	auth_done(void);

/* auth_mechs - the mechanisms to list in EHLO ("SCRAM-SHA-256 CRAM-MD5"),
 * PLAIN and LOGIN only with tls; "" when none.  hostname is the server's
 * name (the realm).  On the loop: no back end is asked. */
void	auth_mechs(const char *hostname, int tls, const struct sockaddr *local,
	    const struct sockaddr *peer, char *out, size_t outlen);

/* auth_new - one AUTH attempt (each gets a fresh SASL connection), with
 * a copy of the running sasl-option lines; report gets the results of its
 * calls.  NULL without memory. */
struct auth *auth_new(const char *hostname, int tls, const struct sockaddr *local,
	    const struct sockaddr *peer, auth_report_fn *report, void *arg);
/* auth_start - begin with mech and the base64 initial response (NULL:
 * none given; "=" is an empty one).  AUTH_PENDING: the SASL call runs on
 * a worker and report() gives its result later (never AUTH_PENDING);
 * anything else is the result now, without report() (ENCRYPT, BASE64, TEMP
 * when too many wait; every result when no worker could start). */
enum auth_result auth_start(struct auth *, const char *mech, const char *initial);
/* auth_step - the client's base64 answer to a challenge, the same way */
enum auth_result auth_step(struct auth *, const char *response);
/* auth_challenge - after an AUTH_MORE given now: the base64 challenge */
const char *auth_challenge(struct auth *);
/* auth_user - the authenticated identity after AUTH_DONE */
const char *auth_user(struct auth *);
/* auth_free - also while a call runs: its result is then dropped and the
 * attempt freed once the worker has let go of it (never two threads on
 * one SASL connection) */
void	auth_free(struct auth *);

#endif
