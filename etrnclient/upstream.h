/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * upstream.h - one session with one server: connect, EHLO, STARTTLS per
 * "tls", then either one ETRN per domain (RFC 1985) or AUTH and ATRN (RFC
 * 2645) followed by the relay of the turned session (relay.h), then QUIT.
 * A server block asks for one session of each method at most.
 */
#ifndef ETRNCLIENT_UPSTREAM_H
#define ETRNCLIENT_UPSTREAM_H

#include <sysexits.h>
#include <ev.h>

#include "ec_conf.h"

/* sysexits(3) values: what a cron job's caller and the man page speak */
#define EC_EX_OK		EX_OK
#define EC_EX_USAGE		EX_USAGE
#define EC_EX_UNAVAILABLE	EX_UNAVAILABLE	/* refused for good: 459, 450, 5xx */
#define EC_EX_TEMPFAIL		EX_TEMPFAIL	/* network, 4xx, the local MTA down */
#define EC_EX_NOPERM		EX_NOPERM	/* authentication failed */
#define EC_EX_CONFIG		EX_CONFIG

struct upstream_result {
	int		 status;		/* EC_EX_* */
	char		 summary[2048];		/* per domain, or why it failed */
	unsigned long	 relayed;		/* ODMR: messages the local MTA took */
	unsigned long	 refused;		/* ODMR: messages answered 4xx/5xx */
};

typedef void upstream_done(void *arg, const struct upstream_result *);

struct upstream;

/* upstream_start - start the server's session of that method (its
 * sess[method]); done() is called exactly once, from the loop, never from
 * inside upstream_start.  NULL when it cannot start (out of memory). */
struct upstream *upstream_start(struct ev_loop *, const struct ec_conf *,
    const struct ec_server *, enum ec_method, upstream_done *, void *arg);
/* upstream_abort - stop now (SIGTERM): done() is called with 75 */
void	upstream_abort(struct upstream *);

#endif
