/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_server.h - the receiving side of SMTP (RFC 5321), on top of io.h.
 *
 * The engine runs the session state machine, parses commands and the DATA
 * stream, and sends every reply through the reply table.  The program using
 * it decides policy through smtp_server_ops: which recipients to accept and
 * what to do with a received message.  spoold stores it; etrnclient relays
 * it as it arrives (the streaming ops below).
 *
 * One engine serves two services.  SMTP_SERVICE_MAIL is the MTA's port;
 * SMTP_SERVICE_ODMR is the ODMR provider's (RFC 2645): EHLO, STARTTLS,
 * AUTH (RFC 4954), ATRN, NOOP, RSET and QUIT, everything else 502.  AUTH
 * and ATRN are the same state machine as the rest, with the SASL work and
 * the turn in the program's ops.
 */
#ifndef SHARED_SMTP_SERVER_H
#define SHARED_SMTP_SERVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <ev.h>
#include <gnutls/gnutls.h>

#include "msgbody.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"

/* RFC 5321 4.5.3.1.4: 512 octets per command line, CRLF included.  MAIL and
 * RCPT may be longer by what their extensions add (RFC 1870, RFC 3461 4). */
#define SMTP_LINE_MAX		512
#define SMTP_LINE_MAX_PARAMS	1024
#define SMTP_MAX_RECEIVED	100	/* RFC 5321 6.3 loop detection */

struct smtp_session;
struct io;
struct cidr;

enum smtp_service {
	SMTP_SERVICE_MAIL,	/* RFC 5321 mail transfer, ETRN */
	SMTP_SERVICE_ODMR,	/* RFC 2645 provider: AUTH, then ATRN */
};

/* What a session needs from its program's configuration.  The program keeps
 * it alive for as long as the session lives: a reload gives only new
 * sessions the new configuration. */
struct smtp_server_config {
	enum smtp_service		 service;
	const char			*hostname;
	uint64_t			 max_message_size;
	unsigned			 max_recipients;
	unsigned			 max_errors;
	/* NOOP, RSET, VRFY, HELP and ETRNs that start nothing; 0: no limit.
	 * As in Postfix, a stored message starts the count again. */
	unsigned			 junk_limit;
	double				 timeout_idle;
	double				 timeout_data;		/* per read in DATA */
	/* The DATA phase as a whole: at most timeout_data_total, and after
	 * min_data_rate_grace an average of min_data_rate bytes a second
	 * (0: no minimum).  Time the program held the data back (pause) does
	 * not count. */
	double				 timeout_data_total;
	double				 min_data_rate;
	double				 min_data_rate_grace;
	double				 timeout_tls;
	gnutls_certificate_credentials_t tls_cred;	/* NULL: no STARTTLS */
	gnutls_priority_t		 tls_prio;
	const char			*spill_dir;	/* for large bodies */
	size_t				 spill_threshold;
	/* ODMR: every AUTH and ATRN only under TLS (530 5.7.0 before it;
	 * mechanisms that need TLS of their own are auth_start's 538); the
	 * time a session has to authenticate, whatever it sends meanwhile
	 * (0: no limit) */
	int				 auth_requires_tls;
	double				 auth_deadline;
	/* XCLIENT (Postfix's XCLIENT_README), SMTP_SERVICE_MAIL only: the
	 * addresses a session may start from to send it (none: nobody may,
	 * 550 5.7.0); a proxy in front of us says who its client is */
	const struct cidr		*xclient_from;
	size_t				 n_xclient_from;
};

/* What the program's SASL step said (RFC 4954). */
enum smtp_auth_result {
	SMTP_AUTH_DONE,		/* 235; out holds the authenticated identity */
	SMTP_AUTH_MORE,		/* 334 with the base64 challenge in out */
	SMTP_AUTH_FAIL,		/* 535 after a delay, counted */
	SMTP_AUTH_TEMP,		/* 454: the back end is down */
	SMTP_AUTH_NOMECH,	/* 504: not a mechanism offered here */
	SMTP_AUTH_ENCRYPT,	/* 538: a plaintext mechanism without TLS */
	SMTP_AUTH_BASE64,	/* 501: the client's line is not base64 */
	SMTP_AUTH_PENDING,	/* the program answers later, once, with
				 * smtp_session_auth_done() */
};

/* A failed AUTH is answered this long after its last line arrived, whatever
 * the reason, so the reply time does not tell whether a user exists (a
 * back end slower than this answers later: its own time). */
#define SMTP_AUTH_FAIL_DELAY	1.0
/* Failed AUTHs one connection may make before it is closed (421). */
#define SMTP_AUTH_FAIL_MAX	3
/* RFC 4954 4: a SASL response line may be 12,288 octets. */
#define SMTP_AUTH_LINE_MAX	12288

/* One received message, owned by the program once handed over. */
struct smtp_message {
	uint64_t		 id;
	uint64_t		 session;	/* the session's id, for the log */
	time_t			 arrival;
	struct smtp_mail	 mail;
	struct smtp_rcpt	*rcpts;
	size_t			 nrcpts;
	struct msgbody		 body;		/* Received: header included */
	int			 eight_bit;	/* 8-bit bytes were seen */
	char			 helo[SMTP_DOMAIN_MAX + 1];
	char			 client[64];	/* peer address text */
};

void smtp_message_free(struct smtp_message *);

struct smtp_server_ops {
	/* check_mail - R_MAIL_OK or a refusal (e.g. R_SPOOL_FULL); optional */
	enum smtp_reply_id (*check_mail)(void *arg, struct smtp_session *,
	    const struct smtp_mail *);
	/* check_rcpt - R_RCPT_OK or a refusal; *reply_arg may fill a %s */
	enum smtp_reply_id (*check_rcpt)(void *arg, struct smtp_session *,
	    const struct smtp_rcpt *, const char **reply_arg);
	/* judge_rcpt - a recipient check_rcpt took, for a second opinion that
	 * takes time (the content filters'): 1 when the program answers
	 * later, once, with smtp_session_rcpt_done() (no command is read
	 * meanwhile), 0 to take it now; optional */
	int (*judge_rcpt)(void *arg, struct smtp_session *, const struct smtp_message *,
	    const struct smtp_rcpt *);
	/* check_starttls - R__COUNT to go ahead, or the refusal (R_TLS_RATE);
	 * optional */
	enum smtp_reply_id (*check_starttls)(void *arg, struct smtp_session *);
	/* new_id - an id for the next message (used in Received: and logs) */
	uint64_t (*new_id)(void *arg);
	/* message - takes ownership of msg and later, exactly once, calls
	 * smtp_session_message_done() unless closed() came first */
	void (*message)(void *arg, struct smtp_session *, struct smtp_message *msg);
	/* closed - the session is going away; forget every pointer to it */
	void (*closed)(void *arg, struct smtp_session *);
	/* etrn - RFC 1985, optional (no ETRN in EHLO, 502 without it): node is
	 * validated and lower-cased ("domain", "@domain" or "#queue"); the
	 * program answers with one of the R_ETRN_* replies, filling count (for
	 * 253) and reason (for 458); R_ETRN_RATE also counts as a client error */
	enum smtp_reply_id (*etrn)(void *arg, struct smtp_session *, const char *node,
	    char *count, size_t countlen, const char **reason);
	/* Streaming, optional (etrnclient's relay): with data_start set, the
	 * body is not kept but handed over as it arrives.  data_start comes
	 * after the 354 with the envelope (msg stays the engine's until
	 * message()); data_body gets each piece, our Received: line first;
	 * then message() (with an empty body) once the end is in and the
	 * message passed the checks, or data_abort() when it did not (bare
	 * CR/LF, NUL, too big, a loop: the engine refuses it itself). */
	void (*data_start)(void *arg, struct smtp_session *, const struct smtp_message *);
	void (*data_body)(void *arg, struct smtp_session *, const char *, size_t);
	void (*data_abort)(void *arg, struct smtp_session *);
	/* AUTH (RFC 4954), for SMTP_SERVICE_ODMR.  auth_mechs: the mechanism
	 * list for EHLO.  auth_start: mech and its base64 initial response
	 * (NULL: none; "=": an empty one); auth_step: the client's answer to a
	 * challenge; both keep the exchange in the program's per-session state
	 * and fill out as the result says, or say SMTP_AUTH_PENDING and answer
	 * with smtp_session_auth_done() (no command is read meanwhile).
	 * auth_cancel: the exchange ends unfinished (the client's "*", a long
	 * line, a timeout, the session closing, also while an answer is
	 * pending: then it must never come).
	 * auth_blocked: the client's address has failed too often (421);
	 * auth_failed: count one failure against it. */
	void (*auth_mechs)(void *arg, struct smtp_session *, char *out, size_t outlen);
	enum smtp_auth_result (*auth_start)(void *arg, struct smtp_session *, const char *mech,
	    const char *initial, char *out, size_t outlen);
	enum smtp_auth_result (*auth_step)(void *arg, struct smtp_session *, const char *response,
	    char *out, size_t outlen);
	void (*auth_cancel)(void *arg, struct smtp_session *);
	int (*auth_blocked)(void *arg, struct smtp_session *);
	void (*auth_failed)(void *arg, struct smtp_session *);
	/* ATRN (RFC 2645 5.2.1), for SMTP_SERVICE_ODMR, after AUTH: atrn
	 * decides (R_ATRN_TURN to turn; R_ATRN_PIPELINED closes; any other
	 * reply is sent, R_SYNTAX with the usage); then turn, with the same
	 * argument, takes io, on which the engine sends the 250 and lets go of
	 * it, the session ending without closing the connection.  turn -1: io
	 * untouched, 451. */
	enum smtp_reply_id (*atrn)(void *arg, struct smtp_session *, const char *domains);
	int (*turn)(void *arg, struct smtp_session *, const char *domains, struct io *io);
	/* replied - every reply sent, for the program's counters: command is
	 * the verb answered ("CONNECT" before the first command, "SESSION"
	 * for a reply to none, such as a timeout, "UNKNOWN" for an unknown
	 * verb), line the reply's first line without CRLF; optional */
	void (*replied)(void *arg, struct smtp_session *, const char *command, int code,
	    const char *line);
	/* client_changed - XCLIENT made smtp_session_peer() another client:
	 * R__COUNT for the new 220, or the refusal the limits call for (a
	 * 421, which closes); optional */
	enum smtp_reply_id (*client_changed)(void *arg, struct smtp_session *);
};

/* smtp_session_new - start a session on an accepted socket.  refuse: if not
 * R__COUNT, send that reply (a 421) instead of the greeting and close. */
struct smtp_session *smtp_session_new(struct ev_loop *, int fd,
    const struct sockaddr *peer, const struct smtp_server_config *,
    const struct smtp_server_ops *, void *arg, enum smtp_reply_id refuse);

/* smtp_session_new_io - the same on a connection that exists already (the
 * turned ODMR connection, with its TLS session): the session takes io */
struct smtp_session *smtp_session_new_io(struct io *, const struct sockaddr *peer,
    const struct smtp_server_config *, const struct smtp_server_ops *, void *arg,
    enum smtp_reply_id refuse);

/* smtp_session_rcpt_done - the program's verdict on the recipient
 * judge_rcpt() took: R_RCPT_OK or a refusal (arg fills its %s; the whole
 * line for R_FILTER_REPLY) */
void smtp_session_rcpt_done(struct smtp_session *, enum smtp_reply_id, const char *arg);

/* smtp_session_auth_done - the result of a SASL step that auth_start or
 * auth_step said was SMTP_AUTH_PENDING, with out as that result says (not
 * SMTP_AUTH_PENDING again); ignored unless one is pending */
void smtp_session_auth_done(struct smtp_session *, enum smtp_auth_result, const char *out);

/* smtp_session_message_done - the program's verdict on a message: R_QUEUED
 * (with the id text as argument) or a 4xx/5xx reply. */
void smtp_session_message_done(struct smtp_session *, enum smtp_reply_id,
    const char *arg);

/* smtp_session_pause_data - stop reading message data until
 * smtp_session_resume_data (the program's buffer is full); the resume
 * takes effect from the loop, never inside the call */
void smtp_session_pause_data(struct smtp_session *);
void smtp_session_resume_data(struct smtp_session *);

/* smtp_session_shutdown - say 421 and close; a session waiting for its
 * message to be stored first gets its answer, then the 421 */
void smtp_session_shutdown(struct smtp_session *);

uint64_t smtp_session_id(const struct smtp_session *);
/* smtp_session_judged - the recipient judge_rcpt took for a later answer,
 * and its message; NULL when none waits */
const struct smtp_rcpt *smtp_session_judged(const struct smtp_session *);
const struct smtp_message *smtp_session_message(const struct smtp_session *);
const struct sockaddr *smtp_session_peer(const struct smtp_session *);
/* smtp_session_local - the address the client connected to */
const struct sockaddr *smtp_session_local(const struct smtp_session *);
const char *smtp_session_peer_text(const struct smtp_session *);
int smtp_session_quit_seen(const struct smtp_session *);	/* the client said QUIT */
int smtp_session_tls(const struct smtp_session *);		/* under TLS now */
/* smtp_session_tls_info - "TLSv1.3:AES-256-GCM" style, or NULL without TLS */
const char *smtp_session_tls_info(struct smtp_session *, char *, size_t);
/* smtp_session_user - the AUTH identity, "" before a successful AUTH */
const char *smtp_session_user(const struct smtp_session *);
/* smtp_session_pipelined - more input waits after the current command */
int smtp_session_pipelined(const struct smtp_session *);

#endif
