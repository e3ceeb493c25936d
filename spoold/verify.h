/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * verify.h - verified recipients for domains with "recipients verify": an
 * address not in the domain's list is asked of its primary (callout.h),
 * and the answer is kept in the spool's verify database, a positive one
 * for verify-positive-expire, a negative one for verify-negative-expire.
 *
 * The rules, as Postfix's reject_unverified_recipient keeps them:
 *   - 250 only for an address the primary took (2xx) within the positive
 *     lifetime; 550 only for one it refused (5xx) within the negative
 *     lifetime; everything else (4xx, no connection, a time out, too many
 *     probes) is 450: the sender tries again, nothing is lost or bounced.
 *   - The cache answers first, so a primary that is down costs nothing for
 *     the addresses it answered lately; an expired entry is never used.
 *   - A positive entry older than verify-positive-refresh still answers
 *     250 at once, and that RCPT starts a refresh probe in the background
 *     (within the limits below); its 2xx or 5xx replaces the entry, its 4xx
 *     leaves it as it was.
 *   - One probe per address at a time: a second RCPT for it waits for the
 *     same probe.  At most verify-rate probes per primary per minute and
 *     VERIFY_MAX_PROBES in all; beyond that 450 at once.  A primary that
 *     could not be reached is not probed again for VERIFY_DOWN_HOLDOFF.
 *
 * Two steps, because the SMTP engine's check_rcpt answers at once and its
 * judge_rcpt later: verify_lookup (in check_rcpt) answers from the cache
 * or says a probe is needed; verify_ask (in judge_rcpt) starts or joins it.
 */
#ifndef SPOOLD_VERIFY_H
#define SPOOLD_VERIFY_H

#include <stdint.h>
#include <ev.h>

#include "smtp_reply.h"

struct domain_conf;
struct queue;
struct spoold_rt;
struct verify_probe;

#define VERIFY_MAX_PROBES	64	/* probes in flight, over every primary */
#define VERIFY_DOWN_HOLDOFF	60.0	/* seconds without probes to a primary not there */
#define VERIFY_SWEEP_INTERVAL	3600.0	/* expired entries leave the spool */
#define VERIFY_REFRESH_RETRY	600.0	/* seconds before a refresh that got no
					 * verdict (4xx, time out) is tried again */
#define VERIFY_TEXT_MAX		256

enum verify_status {
	VERIFY_VALID,		/* 250 */
	VERIFY_INVALID,		/* 550 5.1.1, with the primary's reply */
	VERIFY_UNKNOWN,		/* 450 4.1.1, with why */
	VERIFY_BUSY,		/* 450 4.7.1: no probe allowed now */
	VERIFY_ASK,		/* a probe is needed (or running): verify_ask */
};

/* the answer: R_RCPT_OK, R_VERIFY_UNDELIVERABLE, R_VERIFY_UNKNOWN or
 * R_VERIFY_BUSY, text its %s */
typedef void verify_cb(void *arg, enum smtp_reply_id, const char *text);

/* One RCPT waiting for an answer: the caller's memory, untouched after the
 * callback or verify_cancel. */
struct verify_wait {
	struct verify_wait	*next;
	struct verify_probe	*probe;		/* the probe it waits for, or NULL */
	ev_timer		 now;		/* an answer known at once, from the loop */
	verify_cb		*cb;
	void			*arg;
	enum smtp_reply_id	 id;
	char			 text[VERIFY_TEXT_MAX];
};

/* verify_init - the module on loop, its cache in q; the periodic sweep of
 * expired entries starts */
void	verify_init(struct ev_loop *, struct queue *);
/* verify_stop_all - shutting down: every probe stops, its waiters get 450 */
void	verify_stop_all(void);

/* verify_lookup - what is known of local@domain (d has recipients
 * verify) without a probe: VERIFY_ASK when one is needed, else the answer
 * (text, len: the reply's %s).  A positive entry due for a refresh starts
 * the refresh probe (sid: the session, for the log) and answers. */
enum verify_status verify_lookup(struct spoold_rt *, const struct domain_conf *d,
    const char *local, const char *domain, uint64_t sid, char *text, size_t len);
/* verify_ask - right after verify_lookup said VERIFY_ASK: start or join
 * the probe of local@domain (sid: the session, for the log); cb comes
 * later from the loop, exactly once unless verify_cancel */
void	verify_ask(struct verify_wait *, struct spoold_rt *, const struct domain_conf *d,
	    const char *local, const char *domain, uint64_t sid, verify_cb *cb, void *arg);
/* verify_cancel - the client went: no callback; the probe goes on (its
 * answer is kept for the next one) */
void	verify_cancel(struct verify_wait *);

/* verify_reply - the reply for a verify_lookup status */
enum smtp_reply_id verify_reply(enum verify_status);

#endif
