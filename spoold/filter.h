/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * filter.h - a received message through the configured milters, in the
 * order spoold.conf gives them, before it is stored and before the 250:
 * the first that refuses or discards it decides; the changes the others
 * ask for (headers, body, recipients, sender) are applied to the message
 * in order.  Recipients a filter adds must pass the caller's RCPT rules
 * (relay, listed users, quota).  Our Received: header stays first.
 */
#ifndef SPOOLD_FILTER_H
#define SPOOLD_FILTER_H

#include <ev.h>

#include "smtp_reply.h"
#include "smtp_server.h"

struct spoold_rt;
struct filter;

enum filter_action {
	FILTER_STORE,		/* store it, as changed */
	FILTER_REFUSE,		/* answer reply (and store nothing) */
	FILTER_DISCARD,		/* answer 250 and store nothing */
};

struct filter_outcome {
	enum filter_action	 action;
	enum smtp_reply_id	 reply;		/* FILTER_REFUSE */
	char			 line[512];	/* R_FILTER_REPLY: the filter's own line */
	char			 by[80];	/* the filter that decided, for the log */
	char			 quarantine[360];	/* FILTER_STORE: "milter NAME:
						 * reason" to keep it out of
						 * delivery; "" to deliver it */
	int			 unscanned;	/* FILTER_STORE: a filter was down and
						 * milter-default-action accept let
						 * it through */
};

/* What the filters are told about the client. */
struct filter_client {
	const char	*addr;		/* text */
	int		 port;
	char		 family;	/* '4' or '6' */
	const char	*tls_version, *cipher;	/* "" without TLS */
};

typedef void filter_done_cb(void *arg, const struct filter_outcome *);
/* whether a recipient a filter adds may be added: the caller's RCPT rules */
enum filter_added {
	FILTER_ADDED_REFUSED,	/* not one spoold takes: left out, logged */
	FILTER_ADDED_TAKEN,
	FILTER_ADDED_UNCHECKED,	/* its domain's list cannot say now: taken, logged */
};
typedef enum filter_added filter_rcpt_cb(void *arg, const struct smtp_rcpt *);

/* filter_wanted - rt has milters and one of m's recipients is in a domain
 * with "filter on" */
int	filter_wanted(const struct spoold_rt *, const struct smtp_message *);
/* filter_start - m through rt's milters; m is the caller's, changed in
 * place; rcpt_ok(arg, r) decides on each recipient a filter adds; done(arg,
 * outcome) comes once from the loop unless filter_cancel came first.  NULL
 * when out of memory. */
struct filter *filter_start(struct ev_loop *, const struct spoold_rt *,
    const struct filter_client *, struct smtp_message *m, filter_rcpt_cb *rcpt_ok,
    filter_done_cb *done, void *arg);
void	filter_cancel(struct filter *);

/* At RCPT time: each filter that negotiates replies at RCPT is asked about
 * one recipient (connect, helo, mail, rcpt), in order; the first refusal
 * decides.  done(arg, reply, line) comes once from the loop unless
 * filter_rcpt_cancel came first: R_RCPT_OK, R_FILTER_RCPT_REJECT,
 * R_FILTER_RCPT_TEMPFAIL, R_FILTER_REPLY (line is the filter's own), or
 * what milter-default-action says when a filter cannot be asked.  A filter
 * that asks for no RCPT replies is not asked again for a while. */
struct filter_rcpt;
typedef void filter_rcpt_done_cb(void *arg, enum smtp_reply_id, const char *line);
/* filter_rcpt_wanted - rt has filters that may judge recipients of r's domain */
int	filter_rcpt_wanted(const struct spoold_rt *, const struct smtp_rcpt *r);
struct filter_rcpt *filter_rcpt_start(struct ev_loop *, const struct spoold_rt *,
    const struct filter_client *, const char *helo, const struct smtp_mail *,
    const struct smtp_rcpt *, uint64_t queue_id, filter_rcpt_done_cb *done, void *arg);
void	filter_rcpt_cancel(struct filter_rcpt *);

#endif
