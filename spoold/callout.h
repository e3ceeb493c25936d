/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * callout.h - one recipient probe ("callout", as Exim names it; Postfix's
 * address verification): ask a domain's primary whether it takes a
 * recipient, with RCPT and without DATA.
 *
 * The primary is reached as a delivery run reaches it (route.h: the
 * domain's deliver-to, MX lookup and mx-port, the domain's tls policy,
 * never this spoold's own listener): EHLO, STARTTLS when the policy says,
 * MAIL FROM:<>, RCPT TO:<address>, RSET, QUIT.  The whole probe is bounded
 * by verify-timeout.  What the primary says is peer input: the reply text
 * comes escaped and clipped from smtp_client.
 */
#ifndef SPOOLD_CALLOUT_H
#define SPOOLD_CALLOUT_H

#include <ev.h>
#include <sys/socket.h>

struct dns;
struct domain_conf;
struct spoold_rt;
struct callout;

enum callout_result {
	CALLOUT_DELIVERABLE,	/* 2xx to RCPT */
	CALLOUT_UNDELIVERABLE,	/* 5xx to RCPT */
	CALLOUT_UNKNOWN,	/* 4xx, a refused MAIL, no connection, a timeout */
};

/* code: the RCPT reply's, 0 when there was none (no connection, no route,
 * a time out: the primary is not there); relay: "host[address]:port", or
 * "none" when no connection was made; reply: the primary's reply to RCPT,
 * or why there is none.  Both valid during the call only. */
typedef void callout_done_cb(void *arg, enum callout_result, int code, const char *relay,
    const char *reply);

void	callout_init(struct ev_loop *, struct dns *, int (*is_self)(const struct sockaddr *));

/* callout_start - probe addr (local@domain) at d's primary, under rt's
 * configuration (held until the end).  done comes later from the loop,
 * exactly once unless cancelled.  NULL when it cannot start (out of
 * memory, no resolver for a route by name): no callback. */
struct callout *callout_start(struct spoold_rt *, const struct domain_conf *d, const char *addr,
    callout_done_cb *done, void *arg);
/* callout_cancel - no callback will come; the probe stops at once */
void	callout_cancel(struct callout *);

/* callout_strresult - "deliverable", "undeliverable", "unknown" (the log's
 * status=) */
const char *callout_strresult(enum callout_result);

#endif
