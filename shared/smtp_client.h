/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_client.h - the sending side of SMTP (RFC 5321, 2920, 1870, 6152,
 * 6531, 3207), on top of io.h.
 *
 * One state machine for every delivery: spoold's delivery runs (a connection
 * it dialled), the ODMR turn-around (a connection the customer dialled, handed
 * over with io_set_callback) and etrnclient's relay into the local MTA.  It
 * does not care who dialled: it is given a connected io.
 *
 * The program feeds messages through smtp_client_ops and learns each
 * recipient's fate.  A message counts as delivered only when the peer's
 * reply to the final dot is 2xx; a connection lost before that reply leaves
 * the outcome unknown (no sent() call), and the program keeps the message.
 */
#ifndef SHARED_SMTP_CLIENT_H
#define SHARED_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>

struct io;
struct smtp_client;

struct smtp_client_params {
	const char			*helo_name;	/* our name in EHLO/HELO */
	const char			*loop_name;	/* a greeting naming it is a loop; NULL: no check */
	const char			*peer_name;	/* for logs and SNI */
	/* RFC 5321 4.5.3.2 timeouts, seconds */
	double				 timeout_banner;	/* 5 min */
	double				 timeout_command;	/* EHLO, MAIL, RCPT: 5 min */
	double				 timeout_data;		/* DATA's 354: 2 min */
	double				 timeout_block;		/* a body block sent: 3 min */
	double				 timeout_eom;		/* reply to the dot: 10 min */
	/* STARTTLS: NULL cred never starts TLS; tls_required refuses to send
	 * anything in clear when the peer does not offer it */
	gnutls_certificate_credentials_t tls_cred;
	gnutls_priority_t		 tls_prio;
	int				 tls_required;
	/* LMTP (RFC 2033): LHLO.  The program offers one recipient per
	 * message, so the one reply after the dot is that recipient's. */
	int				 lmtp;
	/* non-NULL: the peer's certificate must chain to tls_cred's trust
	 * list and match this name or address (implies tls_required) */
	const char			*tls_verify_name;
	/* the log role of the "TLS connection established" line (log.h) */
	const char			*log_role;
	const char			*log_peer;	/* "mx[addr]:port"; NULL: peer_name */
};

/* One recipient as offered.  The DSN parameters (RFC 3461) are passed on
 * only when the peer offers DSN: notify NOTIFY_* from smtp_cmd.h (0: none
 * given), orcpt decoded (the client encodes it as xtext), orcpt_type ""
 * (or NULL) for none. */
struct smtp_client_rcpt {
	const char	*addr;			/* local@domain */
	unsigned	 notify;
	const char	*orcpt_type;
	const char	*orcpt;
};

/* One message: the program keeps it alive until sent() or done(). */
struct smtp_client_msg {
	const char	*sender;		/* "" for <> */
	const struct smtp_client_rcpt *rcpts;
	size_t		 nrcpts;
	uint64_t	 size;			/* body bytes */
	int		 eight_bit;		/* the body has 8-bit bytes */
	int		 smtputf8;		/* the message needs SMTPUTF8 */
	/* DSN: ret RET_* from smtp_cmd.h, envid decoded; both may be zero */
	unsigned	 ret;
	const char	*envid;
	/* copy len body bytes at off into dst; -1 on a storage error */
	int		(*read_body)(void *arg, uint64_t off, void *dst, size_t len);
	void		*body_arg;
	/* A body that is still arriving (etrnclient's relay): read_stream
	 * instead of read_body gives what is there (0: nothing yet; then
	 * smtp_client_resume() when more came), sets *end once all of it
	 * was given, -1 on trouble (the message is abandoned before the
	 * dot).  size is then the declared SIZE, or 0 if unknown. */
	long		(*read_stream)(void *arg, void *dst, size_t len, int *end);
	/* A recipient probe (address verification, as Postfix's verify and
	 * Exim's callouts): MAIL and RCPT only, never DATA; RSET once the
	 * RCPT replies are in (rcpt() has them all), then the next message.
	 * No body: size 0, read_body NULL.  A MAIL the peer refuses, or a
	 * probe it cannot take (SMTPUTF8 not offered), is no verdict on the
	 * recipients: rcpt() then gets the reply as a 4xx (a 5xx code less
	 * 100), its text as it was. */
	int		 probe;
};

/* What next() returns for "none yet, but do not QUIT": the client waits in
 * its READY state, under the command timeout, until smtp_client_resume(). */
extern const struct smtp_client_msg smtp_client_wait;

struct smtp_client_ops {
	/* next - the next message, NULL to say QUIT, or &smtp_client_wait */
	const struct smtp_client_msg *(*next)(void *arg);
	/* rcpt - the peer's verdict on recipient i (a 2xx is not final: wait
	 * for sent()); also called with a synthesized 4xx/5xx when the message
	 * cannot be offered to this peer (too big, needs SMTPUTF8 or 8BITMIME) */
	void (*rcpt)(void *arg, const struct smtp_client_msg *, size_t i, int code,
	    const char *reply);
	/* sent - the reply to the final dot; 2xx delivers every recipient whose
	 * rcpt() was 2xx */
	void (*sent)(void *arg, const struct smtp_client_msg *, int code, const char *reply);
	/* done - the session is over: error NULL after QUIT/221, else why; the
	 * client and its io are freed right after this returns */
	void (*done)(void *arg, const char *error);
};

/* smtp_client_start - speak SMTP on a connected io, starting by waiting for
 * the peer's 220 greeting.  NULL on ENOMEM. */
struct smtp_client *smtp_client_start(struct io *, const struct smtp_client_params *,
    const struct smtp_client_ops *, void *arg);

/* smtp_client_resume - more of a streamed body is there, or next() may now
 * have a message after it said &smtp_client_wait */
void smtp_client_resume(struct smtp_client *);

/* smtp_client_abort - end the session now (shutdown): done() is called with
 * why, and the outcome of a message in flight stays unknown */
void smtp_client_abort(struct smtp_client *, const char *why);

#endif
