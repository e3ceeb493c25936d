/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * milter.h - one message through one filter (Sendmail milter protocol v6),
 * on the loop, without blocking: connect to the filter, negotiate, then
 * the message's stages in order (connect, helo, mail, each rcpt, data, each
 * header, eoh, the body in 65,535-byte chunks, end of message), each with
 * its macros as Postfix sends them, waiting for a reply only where the
 * filter asked for one; then quit.
 *
 * The message is handed over once it is complete (after the client's final
 * dot, before it is stored), so the verdict and the changes can apply
 * before the 250.  A filter that misbehaves (garbage, an oversized packet,
 * a reply out of place, a dropped socket, a timeout) ends the job with
 * MILTER_FAILED and why; nothing else happens to the session.
 */
#ifndef SPOOLD_MILTER_H
#define SPOOLD_MILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <ev.h>

#include "buf.h"
#include "msgbody.h"
#include "milter_proto.h"

/* A filter, as "milter NAME unix:PATH | inet:HOST:PORT" names it. */
struct milter_target {
	const char		*name;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	double			 timeout_connect, timeout_command, timeout_eom;
};

/* What a filter is told about the message; everything borrowed for the
 * job's life. */
struct milter_input {
	const char		*hostname;	/* j, {daemon_name}: this host */
	const char		*client_addr;	/* {client_addr} */
	int			 client_port;
	char			 client_family;	/* '4' or '6' */
	const char		*client_name;	/* {client_name}: "unknown" without rDNS */
	const char		*helo;
	const char		*tls_version, *cipher;	/* "" without TLS */
	const char		*auth_authen;	/* "" without AUTH */
	const char		*queue_id;	/* i */
	const char		*sender;	/* without <>, "" for the null sender */
	const char		*const *rcpts;
	size_t			 nrcpts;
	const struct msgbody	*body;		/* the message as received, Received: first */
	int			 rcpt_only;	/* RCPT time: connect to the recipients, then
						 * the verdict on them; body is NULL */
};

enum milter_verdict {
	MILTER_PASS,		/* accept or continue: store it, with the changes */
	MILTER_REJECT,		/* 5xx for the message */
	MILTER_TEMPFAIL,	/* 4xx for the message */
	MILTER_REPLY,		/* the filter's own (checked) reply line */
	MILTER_DISCARD,		/* 250, then forget it */
	MILTER_FAILED,		/* the filter could not be asked: the default action */
};

/* A change asked for at the end of the message. */
struct milter_change {
	enum milter_reply	 kind;		/* ADDHEADER ... CHGFROM */
	uint32_t		 index;
	char			*name;		/* header name, address */
	char			*value;		/* header value */
};

struct milter_result {
	enum milter_verdict	 verdict;
	char			 reply[512];	/* MILTER_REPLY: the line; MILTER_FAILED: why */
	char			 quarantine[256];	/* the reason, "" when not quarantined */
	unsigned char		*rcpt_rejected;	/* [nrcpts]: refused at RCPT (4 or 5: its
						 * class), 0 not */
	struct milter_change	*changes;
	size_t			 nchanges;
	int			 body_replaced;
	struct buf		 body;		/* the new body when replaced */
	int			 rcpt_judged;	/* it negotiated replies at RCPT */
};

typedef void milter_done_cb(void *arg, struct milter_result *);

struct milter_job;

/* milter_start - ask target about in; done(arg, result) comes exactly once
 * from the loop, unless milter_cancel came first, and the result is the
 * callee's from then on (milter_result_free); the job is gone after done.
 * NULL when out of memory. */
struct milter_job *milter_start(struct ev_loop *, const struct milter_target *,
    const struct milter_input *in, milter_done_cb *done, void *arg);
/* milter_cancel - no callback; the connection is dropped */
void	milter_cancel(struct milter_job *);
void	milter_result_free(struct milter_result *);

#endif
