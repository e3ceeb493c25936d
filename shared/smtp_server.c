/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_server.c - SMTP server session state machine (RFC 5321, 2920, 3207),
 * with AUTH (RFC 4954) and ATRN (RFC 2645) for the ODMR service.
 *
 * SECURITY: everything read here is hostile.  Lines are bounded before CRLF
 * arrives (io_getline), the DATA stream is parsed by smtp_data.c, client text
 * is escaped before it is logged, and replies come only from the reply table.
 *
 * One command table drives the session: check_* validates the command in the
 * current state and sends the refusal, proceed_* acts and sends the success.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cidr.h"
#include "io.h"
#include "log.h"
#include "smtp_data.h"
#include "smtp_server.h"
#include "xclient.h"

enum smtp_state {
	STATE_INIT,		/* greeting sent, no EHLO/HELO yet */
	STATE_READY,		/* EHLO/HELO done, no transaction */
	STATE_MAIL,		/* MAIL accepted */
	STATE_RCPT,		/* at least one RCPT accepted */
	STATE_DATA,		/* receiving the message */
	STATE_COMMIT,		/* the program is storing the message */
	STATE_RCPT_WAIT,	/* the program is judging a recipient */
	STATE_TLS,		/* STARTTLS handshake */
	STATE_AUTH,		/* in a SASL exchange: the next line is a response */
	STATE_AUTH_WAIT,	/* a failed AUTH is answered after the delay */
	STATE_AUTH_PENDING,	/* the program's SASL step runs: no line is read */
	STATE_QUIT,		/* closing once the output is sent */
	STATE_TURNED,		/* ATRN: the connection belongs to a delivery run */
};

#define S(x)	(1u << (x))

/* A closing session gets this long to have its last reply read; a client
 * that never reads must not hold a connection slot for ever. */
#define SMTP_CLOSE_DEADLINE	10.0

#define SMTP_NCOUNTED	16	/* the verbs of commands[], and one for unknown */

struct smtp_session {
	uint64_t			 id;
	struct ev_loop			*loop;
	struct io			*io;		/* NULL once turned */
	const char			*tag;		/* "smtp" or "odmr", for the log */
	enum smtp_state			 state;
	const struct smtp_server_config	*cfg;
	const struct smtp_server_ops	*ops;
	void				*arg;
	struct sockaddr_storage		 peer, local;
	char				 peer_text[64];
	char				 helo[SMTP_DOMAIN_MAX + 1];
	int				 esmtp;
	int				 xclient_ok;	/* started from an xclient_from address */
	unsigned			 errors;
	unsigned			 messages;
	/* per command of commands[] (the last: unknown), for the disconnect line */
	unsigned			 cmd_tried[SMTP_NCOUNTED], cmd_ok[SMTP_NCOUNTED];
	int				 counting;	/* the one awaiting its reply, or -1 */
	struct smtp_message		*msg;		/* transaction being built */
	struct smtp_data		 data;
	int				 data_too_big;
	int				 data_spill_failed;
	int				 processing;	/* inside smtp_session_process */
	int				 shutting_down;
	struct smtp_rcpt		 judged;	/* STATE_RCPT_WAIT: the recipient */
	enum smtp_state			 judged_from;	/* and the state to go back to */
	int				 peer_eof;	/* peer closed its side */
	int				 streaming;	/* the body goes to ops->data_body */
	int				 quit_seen;
	int				 stream_aborted;	/* data_abort was called */
	int				 data_paused;
	unsigned			 junk;		/* junk commands since the last message */
	/* the DATA deadline and rate: a 1 s tick while in DATA */
	ev_timer			 data_clock;
	ev_tstamp			 data_since, data_tick, data_held;
	uint64_t			 data_bytes;	/* as received, before unstuffing */
	ev_timer			 kick;		/* resume from the loop */
	/* AUTH */
	char				 mech[32];	/* of the attempt in progress */
	char				 user[256];	/* the authenticated identity */
	unsigned			 auth_failures;
	enum smtp_reply_id		 auth_delayed;	/* the reply the delay holds back */
	ev_tstamp			 auth_line_at;	/* the last AUTH line came then */
	ev_timer			 auth_delay, auth_deadline;
};

struct smtp_command {
	const char	*verb;
	unsigned	 services;	/* S(SMTP_SERVICE_*) that have it */
	unsigned	 states;	/* where the command is allowed */
	int		(*check)(struct smtp_session *, const char *arg);
	void		(*proceed)(struct smtp_session *, const char *arg);
};

static uint64_t session_counter;

static void smtp_session_process(struct smtp_session *);
static void smtp_session_free(struct smtp_session *);
static void smtp_kick(struct ev_loop *, ev_timer *, int);
static void smtp_data_clock(struct ev_loop *, ev_timer *, int);
static int smtp_junk_over(struct smtp_session *);

static const char *
strstate(enum smtp_state st)
{
#define CASE(x) case x: return #x
	switch (st) {
	CASE(STATE_INIT);
	CASE(STATE_READY);
	CASE(STATE_MAIL);
	CASE(STATE_RCPT);
	CASE(STATE_DATA);
	CASE(STATE_COMMIT);
	CASE(STATE_RCPT_WAIT);
	CASE(STATE_TLS);
	CASE(STATE_AUTH);
	CASE(STATE_AUTH_WAIT);
	CASE(STATE_AUTH_PENDING);
	CASE(STATE_QUIT);
	CASE(STATE_TURNED);
	}
#undef CASE
	return "STATE_?";
}

static void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (log_verbose() > 1)
		log_debug("%016llx %s state %s -> %s", (unsigned long long)s->id, s->tag,
		    strstate(s->state), strstate(st));
	if (st == STATE_QUIT && s->state != STATE_QUIT) {
		io_pause_read(s->io);	/* nothing more is read, so nothing restarts the timer */
		io_set_timeout(s->io, SMTP_CLOSE_DEADLINE, 0);
	}
	if (s->state == STATE_DATA && st != STATE_DATA)
		ev_timer_stop(s->loop, &s->data_clock);
	s->state = st;
}

static void smtp_reply(struct smtp_session *, enum smtp_reply_id, const char *);
static const char *smtp_counting_verb(const struct smtp_session *);

/* smtp_replied - tell the program (its counters) what was answered */
static void
smtp_replied(struct smtp_session *s, int code, const char *line, size_t len)
{
	char first[256];
	size_t n = strcspn(line, "\r\n");

	if (s->ops->replied == NULL)
		return;
	snprintf(first, sizeof(first), "%.*s", (int)(n < len ? n : len), line);
	s->ops->replied(s->arg, s, smtp_counting_verb(s), code, first);
}

/* smtp_command_answered - the reply (its code) to the command being
 * counted: a 2xx counts as done, a 3xx waits for the final reply (DATA's
 * 354, AUTH's 334), a 4xx/5xx counts as tried only */
static void
smtp_command_answered(struct smtp_session *s, int code)
{
	if (s->counting < 0 || (code >= 300 && code < 400))
		return;
	if (code < 300)
		s->cmd_ok[s->counting]++;
	s->counting = -1;
}

/* smtp_reply_args - the one way a session answers.  Counts client errors,
 * and a 421 closes the session once it has been sent. */
static void
smtp_reply_args(struct smtp_session *s, enum smtp_reply_id id, const char *const *args, size_t nargs)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	char line[1024];
	size_t len;
	int code;

	len = smtp_reply_format(line, sizeof(line), id, 1, args, nargs);
	io_write(s->io, line, len);
	code = r->code != 0 ? r->code : atoi(line);
	smtp_replied(s, code, line, len);
	smtp_command_answered(s, code);
	if (code >= 500)
		s->errors++;
	if (code == 421) {
		smtp_enter_state(s, STATE_QUIT);
		return;
	}
	if (s->errors >= s->cfg->max_errors && s->state != STATE_QUIT) {
		char esc[80];

		log_role(s->tag, "%016llx: too many errors from unknown[%s] helo=<%s>",
		    (unsigned long long)s->id, s->peer_text, log_escape(esc, sizeof(esc), s->helo, 64));
		smtp_reply(s, R_TOO_MANY_ERRORS, s->cfg->hostname);
	}
}

static void
smtp_reply(struct smtp_session *s, enum smtp_reply_id id, const char *arg)
{
	smtp_reply_args(s, id, &arg, 1);
}

/* smtp_reply_lines - a multi-line 250 (EHLO): lines[0] first */
static void
smtp_reply_lines(struct smtp_session *s, enum smtp_reply_id id, const char **lines, size_t n)
{
	char buf[2048];

	size_t len = smtp_reply_format_lines(buf, sizeof(buf), id, lines, n);

	io_write(s->io, buf, len);
	smtp_replied(s, smtp_reply_get(id)->code, buf, len);
	smtp_command_answered(s, smtp_reply_get(id)->code);
}

void
smtp_message_free(struct smtp_message *m)
{
	if (m == NULL)
		return;
	msgbody_free(&m->body);
	free(m->rcpts);
	free(m);
}

/* smtp_txn_reset - forget the transaction (RSET, HELO, after DATA) */
static void
smtp_txn_reset(struct smtp_session *s)
{
	smtp_message_free(s->msg);
	s->msg = NULL;
	if (s->state == STATE_MAIL || s->state == STATE_RCPT || s->state == STATE_DATA ||
	    s->state == STATE_RCPT_WAIT)
		smtp_enter_state(s, STATE_READY);
}

/* ---- HELO / EHLO ---- */

static int
check_helo(struct smtp_session *s, const char *arg)
{
	size_t len = strlen(arg);

	if (len == 0 || len >= sizeof(s->helo) || strpbrk(arg, " \t") != NULL) {
		smtp_reply(s, R_SYNTAX, "EHLO hostname");
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 0x21 || (unsigned char)arg[i] > 0x7e) {
			smtp_reply(s, R_SYNTAX, "EHLO hostname");
			return 0;
		}
	return 1;
}

static void
smtp_helo_common(struct smtp_session *s, const char *arg, int esmtp)
{
	smtp_txn_reset(s);
	strcpy(s->helo, arg);
	s->esmtp = esmtp;
	smtp_enter_state(s, STATE_READY);
}

static void
proceed_helo(struct smtp_session *s, const char *arg)
{
	smtp_helo_common(s, arg, 0);
	smtp_reply(s, R_HELO, s->cfg->hostname);
}

/* smtp_ehlo_odmr - RFC 2645 5.1.1: AUTH and ATRN MUST be listed */
static void
smtp_ehlo_odmr(struct smtp_session *s)
{
	char mechs[512] = "", auth[540];
	const char *lines[8];
	size_t n = 0;

	if (s->ops->auth_mechs)
		s->ops->auth_mechs(s->arg, s, mechs, sizeof(mechs));
	snprintf(auth, sizeof(auth), "AUTH %s", mechs);
	lines[n++] = s->cfg->hostname;
	lines[n++] = auth;
	lines[n++] = "ATRN";
	lines[n++] = "ENHANCEDSTATUSCODES";
	if (s->cfg->tls_cred && !io_is_tls(s->io))
		lines[n++] = "STARTTLS";
	smtp_reply_lines(s, R_EHLO, lines, n);
}

static void
proceed_ehlo(struct smtp_session *s, const char *arg)
{
	char size[40];
	const char *lines[16];
	size_t n = 0;

	smtp_helo_common(s, arg, 1);
	if (s->cfg->service == SMTP_SERVICE_ODMR) {
		smtp_ehlo_odmr(s);
		return;
	}
	snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)s->cfg->max_message_size);
	lines[n++] = s->cfg->hostname;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "DSN";
	if (s->cfg->tls_cred && !io_is_tls(s->io))
		lines[n++] = "STARTTLS";
	if (s->ops->etrn)
		lines[n++] = "ETRN";
	if (s->xclient_ok)
		lines[n++] = "XCLIENT ADDR NAME PORT PROTO HELO LOGIN";
	lines[n++] = "HELP";
	smtp_reply_lines(s, R_EHLO, lines, n);
}

/* ---- STARTTLS (RFC 3207) ---- */

static int
check_starttls(struct smtp_session *s, const char *arg)
{
	enum smtp_reply_id verdict;

	if (s->cfg->tls_cred == NULL) {
		smtp_reply(s, R_NOT_IMPLEMENTED, NULL);
		return 0;
	}
	if (io_is_tls(s->io)) {
		smtp_reply(s, R_TLS_ACTIVE, NULL);
		return 0;
	}
	if (*arg != '\0') {
		smtp_reply(s, R_SYNTAX, "STARTTLS");
		return 0;
	}
	if (s->ops->check_starttls && (verdict = s->ops->check_starttls(s->arg, s)) != R__COUNT) {
		log_role(s->tag, "%016llx: reject: STARTTLS from unknown[%s]: %d %s",
		    (unsigned long long)s->id, s->peer_text, smtp_reply_get(verdict)->code,
		    smtp_reply_get(verdict)->text);
		smtp_reply(s, verdict, NULL);
		return 0;
	}
	return 1;
}

static void
proceed_starttls(struct smtp_session *s, const char *arg)
{
	if (io_start_tls_server(s->io, s->cfg->tls_cred, s->cfg->tls_prio) == -1) {
		log_role_warn(s->tag, "%016llx: STARTTLS failed: %s", (unsigned long long)s->id,
		    io_error(s->io));
		smtp_reply(s, R_TLS_UNAVAILABLE, NULL);
		return;
	}
	smtp_txn_reset(s);
	smtp_reply(s, R_STARTTLS_GO, NULL);	/* sent in clear, then the handshake */
	smtp_enter_state(s, STATE_TLS);
	io_set_timeout(s->io, s->cfg->timeout_tls, 0);
}

/* ---- MAIL ---- */

/* smtp_param_refused - the reply for a parser's verdict on MAIL/RCPT */
static void
smtp_param_refused(struct smtp_session *s, enum smtp_parse rc, const char *bad,
    const char *usage, enum smtp_reply_id bad_addr)
{
	char param[64];

	if (bad) {
		size_t n = strcspn(bad, " =");

		snprintf(param, sizeof(param), "%.*s", (int)(n < 40 ? n : 40), bad);
	}
	switch (rc) {
	case SMTP_PARSE_RELAY:
		smtp_reply(s, R_RELAY_DENIED, NULL);
		break;
	case SMTP_PARSE_NONASCII:
		smtp_reply(s, R_NON_ASCII_ADDRESS, NULL);
		break;
	case SMTP_PARSE_PARAM:
		smtp_reply(s, R_UNKNOWN_PARAM, bad ? param : "");
		break;
	case SMTP_PARSE_PARAM_VALUE:
		smtp_reply(s, R_SYNTAX_PARAM, bad ? param : "");
		break;
	default:
		smtp_reply(s, bad_addr == R__COUNT ? R_SYNTAX : bad_addr, usage);
		break;
	}
}

static int
check_mail(struct smtp_session *s, const char *arg)
{
	struct smtp_mail mail;
	enum smtp_reply_id verdict;
	enum smtp_parse rc;

	if (s->state == STATE_INIT) {
		smtp_reply(s, R_HELO_FIRST, NULL);
		return 0;
	}
	if (s->state != STATE_READY) {
		smtp_reply(s, R_NESTED_MAIL, NULL);
		return 0;
	}
	if ((rc = smtp_parse_mail(arg, &mail, 1)) != SMTP_PARSE_OK) {
		smtp_param_refused(s, rc, mail.bad_param, "MAIL FROM:<address>",
		    strncasecmp(arg, "FROM:", 5) == 0 ? R_BAD_SENDER : R__COUNT);
		return 0;
	}
	if (mail.size > s->cfg->max_message_size) {
		smtp_reply(s, R_SIZE_EXCEEDED_EARLY, NULL);
		return 0;
	}
	if (s->ops->check_mail && (verdict = s->ops->check_mail(s->arg, s, &mail)) != R_MAIL_OK) {
		smtp_reply(s, verdict, NULL);
		return 0;
	}
	if ((s->msg = calloc(1, sizeof(*s->msg))) == NULL) {
		smtp_reply(s, R_NO_MEMORY, NULL);
		return 0;
	}
	/* from here on smtp_message_free() may run: the body must be valid */
	msgbody_init(&s->msg->body, s->cfg->spill_dir, s->cfg->spill_threshold);
	s->msg->mail = mail;
	return 1;
}

static void
proceed_mail(struct smtp_session *s, const char *arg)
{
	smtp_enter_state(s, STATE_MAIL);
	smtp_reply(s, R_MAIL_OK, NULL);
}

/* ---- RCPT ---- */

/* smtp_rcpt_duplicate - the transaction already has this recipient (domains
 * are canonical; local parts are case-sensitive, RFC 5321 2.4) */
static int
smtp_rcpt_duplicate(const struct smtp_message *m, const struct smtp_rcpt *r)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		if (strcmp(m->rcpts[i].to.domain, r->to.domain) == 0 &&
		    strcmp(m->rcpts[i].to.local, r->to.local) == 0)
			return 1;
	return 0;
}

/* smtp_rcpt_postmaster - RCPT TO:<Postmaster> is postmaster@hostname; the
 * program's policy then decides on it like on any other address */
static void
smtp_rcpt_postmaster(struct smtp_session *s, struct smtp_rcpt *r)
{
	snprintf(r->to.domain, sizeof(r->to.domain), "%s", s->cfg->hostname);
	(void)smtp_domain_canon(r->to.domain, 0);
}

/* smtp_log_sender - the transaction's sender, escaped, for a log line */
static const char *
smtp_log_sender(const struct smtp_session *s, char *dst, size_t len)
{
	const struct smtp_path *p = s->msg != NULL ? &s->msg->mail.from : NULL;
	char addr[SMTP_LOCAL_MAX * 4 + SMTP_DOMAIN_MAX + 3] = "";

	if (p != NULL && !p->null)
		snprintf(addr, sizeof(addr), "%s@%s", p->local, p->domain);
	return log_escape(dst, len, addr, sizeof(addr));
}

/* smtp_rcpt_refused - the refusal of r, logged */
static void
smtp_rcpt_refused(struct smtp_session *s, const struct smtp_rcpt *r, enum smtp_reply_id verdict,
    const char *reply_arg)
{
	char esc[300], escd[300], from[LOG_ESCAPE_SIZE(SMTP_PATH_MAX)], helo[LOG_ESCAPE_SIZE(64)];
	char text[512], textesc[LOG_ESCAPE_SIZE(512)];

	/* the reply may quote the client's address: escaped like the rest */
	smtp_reply_text(text, sizeof(text), verdict, 1, &reply_arg, 1);
	text[strcspn(text, "\r\n")] = '\0';
	log_escape(textesc, sizeof(textesc), text, sizeof(text));
	/* Postfix's form, so pflogsumm counts it; the session id for NOQUEUE */
	log_role(s->tag, "%016llx: reject: RCPT from unknown[%s]: %s; from=<%s> to=<%s@%s> "
	    "proto=ESMTP helo=<%s>", (unsigned long long)s->id, s->peer_text, textesc,
	    smtp_log_sender(s, from, sizeof(from)), log_escape(esc, sizeof(esc), r->to.local, 64),
	    log_escape(escd, sizeof(escd), r->to.domain, 64),
	    log_escape(helo, sizeof(helo), s->helo, 64));
	smtp_reply(s, verdict, reply_arg);
}

static int
check_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_rcpt rcpt, *n;
	enum smtp_reply_id verdict;
	enum smtp_parse rc;
	const char *reply_arg = NULL;

	if (s->state != STATE_MAIL && s->state != STATE_RCPT) {
		smtp_reply(s, s->state == STATE_INIT ? R_HELO_FIRST : R_NEED_MAIL, NULL);
		return 0;
	}
	if ((rc = smtp_parse_rcpt(arg, &rcpt, s->msg->mail.smtputf8)) != SMTP_PARSE_OK) {
		smtp_param_refused(s, rc, rcpt.bad_param, "RCPT TO:<address>",
		    strncasecmp(arg, "TO:", 3) == 0 ? R_BAD_RECIPIENT : R__COUNT);
		return 0;
	}
	if (rcpt.to.domain[0] == '\0')		/* <Postmaster>: ours */
		smtp_rcpt_postmaster(s, &rcpt);
	if (smtp_rcpt_duplicate(s->msg, &rcpt)) {
		smtp_reply(s, R_RCPT_OK, NULL);	/* RFC 5321 3.3: once is enough */
		return 0;
	}
	if (s->msg->nrcpts >= s->cfg->max_recipients) {
		smtp_reply(s, R_TOO_MANY_RCPTS, NULL);
		return 0;
	}
	if ((verdict = s->ops->check_rcpt(s->arg, s, &rcpt, &reply_arg)) != R_RCPT_OK) {
		smtp_rcpt_refused(s, &rcpt, verdict, reply_arg);
		return 0;
	}
	if ((n = realloc(s->msg->rcpts, (s->msg->nrcpts + 1) * sizeof(*n))) == NULL) {
		smtp_reply(s, R_NO_MEMORY, NULL);
		return 0;
	}
	s->msg->rcpts = n;
	strcpy(s->msg->helo, s->helo);	/* for the judge (DATA sets it again) */
	if (s->ops->judge_rcpt != NULL && s->ops->judge_rcpt(s->arg, s, s->msg, &rcpt)) {
		s->judged = rcpt;
		s->judged_from = s->state;
		smtp_enter_state(s, STATE_RCPT_WAIT);	/* no command is read meanwhile */
		return 0;
	}
	s->msg->rcpts[s->msg->nrcpts++] = rcpt;
	return 1;
}

const struct smtp_rcpt *
smtp_session_judged(const struct smtp_session *s)
{
	return s->state == STATE_RCPT_WAIT ? &s->judged : NULL;
}

const struct smtp_message *
smtp_session_message(const struct smtp_session *s)
{
	return s->msg;
}

void
smtp_session_rcpt_done(struct smtp_session *s, enum smtp_reply_id id, const char *arg)
{
	if (s->state != STATE_RCPT_WAIT)
		return;
	if (id == R_RCPT_OK) {
		s->msg->rcpts[s->msg->nrcpts++] = s->judged;	/* room made before */
		smtp_enter_state(s, STATE_RCPT);
		smtp_reply(s, R_RCPT_OK, NULL);
	} else {
		smtp_enter_state(s, s->judged_from);
		smtp_rcpt_refused(s, &s->judged, id, arg);
	}
	if (s->shutting_down && s->state != STATE_QUIT) {
		smtp_txn_reset(s);
		smtp_reply(s, R_SHUTDOWN, s->cfg->hostname);
	}
	if (!s->processing && s->state != STATE_QUIT)
		smtp_session_process(s);
	if (s->peer_eof && s->state != STATE_QUIT && s->state != STATE_COMMIT &&
	    s->state != STATE_RCPT_WAIT)
		smtp_enter_state(s, STATE_QUIT);	/* answer what was sent, then close */
}

static void
proceed_rcpt(struct smtp_session *s, const char *arg)
{
	smtp_enter_state(s, STATE_RCPT);
	smtp_reply(s, R_RCPT_OK, NULL);
}

/* ---- DATA ---- */

static int
check_data(struct smtp_session *s, const char *arg)
{
	if (s->state == STATE_INIT || s->state == STATE_READY) {
		smtp_reply(s, s->state == STATE_INIT ? R_HELO_FIRST : R_NEED_MAIL, NULL);
		return 0;
	}
	if (s->state == STATE_MAIL) {
		smtp_reply(s, R_NEED_RCPT, NULL);
		return 0;
	}
	if (*arg != '\0') {
		smtp_reply(s, R_SYNTAX, "DATA");
		return 0;
	}
	/* RFC 2920 3.1: DATA ends a pipelined group; anything already sent
	 * would be taken as message text the client never meant. */
	if (io_pending(s->io) > 0) {
		log_role(s->tag, "%016llx: improper command pipelining after DATA from unknown[%s]",
		    (unsigned long long)s->id, s->peer_text);
		smtp_reply(s, R_PIPELINING, NULL);
		smtp_enter_state(s, STATE_QUIT);
		return 0;
	}
	return 1;
}

/* smtp_data_sink - unstuffed message bytes from the DATA parser */
static void
smtp_data_store(void *arg, const char *p, size_t len)
{
	struct smtp_session *s = arg;

	if (s->data_too_big || s->data_spill_failed)
		return;
	/* RFC 1870: the limit is on what the client sends; our own Received:
	 * header does not count (s->data.size already includes p) */
	if (s->data.size > s->cfg->max_message_size) {
		s->data_too_big = 1;	/* read to the end, store nothing more */
		return;
	}
	if (s->streaming) {
		/* a message that will be refused at its end stops flowing now */
		if (s->data.flags & (DATA_BARE_LF | DATA_BARE_CR | DATA_NUL)) {
			if (!s->stream_aborted && s->ops->data_abort != NULL)
				s->ops->data_abort(s->arg, s);
			s->stream_aborted = 1;
			return;
		}
		s->ops->data_body(s->arg, s, p, len);
		return;
	}
	if (msgbody_append(&s->msg->body, p, len) == -1) {
		log_warn("%016llx: cannot buffer message body", (unsigned long long)s->id);
		s->data_spill_failed = 1;
	}
}

/* smtp_received_header - RFC 5321 4.4 trace line, first in the stored body */
static void
smtp_received_header(struct smtp_session *s)
{
	struct smtp_message *m = s->msg;
	char hdr[2048], date[64], forwho[600] = "", tls[128];
	const char *proto;
	struct tm tm;
	int len;

	localtime_r(&m->arrival, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (m->mail.smtputf8)
		proto = io_is_tls(s->io) ? "UTF8SMTPS" : "UTF8SMTP";	/* RFC 6531 3.7.3 */
	else if (s->esmtp)
		proto = io_is_tls(s->io) ? "ESMTPS" : "ESMTP";		/* RFC 3848 */
	else
		proto = "SMTP";
	if (m->nrcpts == 1)
		snprintf(forwho, sizeof(forwho), "\r\n\tfor <%s@%s>", m->rcpts[0].to.local,
		    m->rcpts[0].to.domain);
	if (io_tls_info(s->io, tls, sizeof(tls)) != NULL) {
		char t[140];

		snprintf(t, sizeof(t), "\r\n\t(using %s)", tls);
		strcpy(tls, t);
	} else
		tls[0] = '\0';
	len = snprintf(hdr, sizeof(hdr),
	    "Received: from %s ([%s])\r\n\tby %s (spoold) with %s id %016llx%s%s;\r\n\t%s\r\n",
	    s->helo, s->peer_text, s->cfg->hostname, proto, (unsigned long long)m->id, tls,
	    forwho, date);
	smtp_data_store(s, hdr, (size_t)len < sizeof(hdr) ? (size_t)len : sizeof(hdr) - 1);
}

/* smtp_data_clock_start - the per-read timeout alone lets a client that
 * drips a byte now and then hold a session for ever; this clock bounds the
 * whole DATA phase and its average rate */
static void
smtp_data_clock_start(struct smtp_session *s)
{
	ev_tstamp now = ev_now(s->loop);

	s->data_since = s->data_tick = now;
	s->data_held = 0;
	s->data_bytes = 0;
	if (s->cfg->timeout_data_total > 0 || s->cfg->min_data_rate > 0) {
		ev_timer_set(&s->data_clock, 1., 1.);
		ev_timer_start(s->loop, &s->data_clock);
	}
}

/* smtp_data_overdue - R_DATA_TOTAL_TIMEOUT or R_DATA_TOO_SLOW when the
 * client has had its time, else R__COUNT; elapsed: time that counted */
static enum smtp_reply_id
smtp_data_overdue(struct smtp_session *s, ev_tstamp now, double *elapsed)
{
	const struct smtp_server_config *cfg = s->cfg;

	if (s->data_paused)	/* held back by us, not by the client */
		s->data_held += now - s->data_tick;
	s->data_tick = now;
	*elapsed = now - s->data_since - s->data_held;
	if (cfg->timeout_data_total > 0 && *elapsed >= cfg->timeout_data_total)
		return R_DATA_TOTAL_TIMEOUT;
	if (cfg->min_data_rate > 0 && *elapsed >= cfg->min_data_rate_grace &&
	    (double)s->data_bytes < cfg->min_data_rate * *elapsed)
		return R_DATA_TOO_SLOW;
	return R__COUNT;
}

/* smtp_data_clock - once a second in DATA: close a slowloris with a 421,
 * storing nothing of its message */
static void
smtp_data_clock(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;
	enum smtp_reply_id verdict;
	double elapsed;

	if (s->state != STATE_DATA)
		return;
	if ((verdict = smtp_data_overdue(s, ev_now(loop), &elapsed)) == R__COUNT)
		return;
	log_role(s->tag, "%016llx: %s in DATA from unknown[%s]: %llu bytes in %.0f s",
	    (unsigned long long)s->id, verdict == R_DATA_TOO_SLOW ? "too slow" : "deadline",
	    s->peer_text, (unsigned long long)s->data_bytes, elapsed);
	if (s->streaming && !s->stream_aborted && s->ops->data_abort != NULL)
		s->ops->data_abort(s->arg, s);
	s->stream_aborted = 1;
	smtp_txn_reset(s);
	smtp_reply(s, verdict, s->cfg->hostname);
}

static void
proceed_data(struct smtp_session *s, const char *arg)
{
	struct smtp_message *m = s->msg;

	m->id = s->ops->new_id(s->arg);
	m->session = s->id;
	m->arrival = time(NULL);
	strcpy(m->helo, s->helo);
	strcpy(m->client, s->peer_text);
	s->data_too_big = s->data_spill_failed = 0;
	s->streaming = s->ops->data_start != NULL;
	s->data_paused = s->stream_aborted = 0;
	smtp_data_init(&s->data, smtp_data_store, s);
	if (s->streaming)
		s->ops->data_start(s->arg, s, m);
	smtp_received_header(s);
	smtp_enter_state(s, STATE_DATA);
	io_set_timeout(s->io, s->cfg->timeout_data, 1);
	smtp_data_clock_start(s);
	smtp_reply(s, R_DATA_GO, NULL);
}

/* smtp_data_verdict - the reply a complete message has earned before storage,
 * or R__COUNT when it may be stored */
static enum smtp_reply_id
smtp_data_verdict(struct smtp_session *s)
{
	if (s->data.flags & (DATA_BARE_LF | DATA_BARE_CR))
		return R_BAD_LINE_ENDING;
	if (s->data.flags & DATA_NUL)
		return R_NUL_IN_DATA;
	if (s->data_too_big)
		return R_SIZE_EXCEEDED;
	if (s->data_spill_failed)
		return s->msg->body.err == ENOSPC || s->msg->body.err == EDQUOT ?
		    R_SPOOL_FULL : R_LOCAL_ERROR;
	if (s->data.received > SMTP_MAX_RECEIVED)
		return R_LOOP;
	return R__COUNT;
}

/* smtp_data_end - the end marker arrived: refuse, or hand the message over */
static void
smtp_data_end(struct smtp_session *s)
{
	enum smtp_reply_id verdict = smtp_data_verdict(s);
	struct smtp_message *m;

	io_set_timeout(s->io, s->cfg->timeout_idle, 0);
	if (verdict != R__COUNT) {
		log_role(s->tag, "%016llx: reject: END-OF-MESSAGE from unknown[%s]: %d %s; "
		    "size=%zu flags=%#x", (unsigned long long)s->id, s->peer_text,
		    smtp_reply_get(verdict)->code, smtp_reply_get(verdict)->text,
		    s->data.size, s->data.flags);
		if (s->streaming && !s->stream_aborted && s->ops->data_abort != NULL)
			s->ops->data_abort(s->arg, s);
		smtp_txn_reset(s);
		smtp_reply(s, verdict, NULL);
		return;
	}
	m = s->msg;
	s->msg = NULL;
	m->eight_bit = (s->data.flags & DATA_8BIT) != 0;
	smtp_enter_state(s, STATE_COMMIT);
	io_set_timeout(s->io, 0, 0);	/* storing may take a while; we owe the reply */
	s->ops->message(s->arg, s, m);
}

/* smtp_data_read - feed buffered input to the DATA parser */
static void
smtp_data_read(struct smtp_session *s)
{
	struct buf *in = io_input(s->io);
	size_t n;

	if (buf_used(in) == 0 || s->data_paused)
		return;
	n = smtp_data_feed(&s->data, buf_head(in), buf_used(in));
	buf_consume(in, n);
	s->data_bytes += n;
	if (smtp_data_done(&s->data))
		smtp_data_end(s);
}

void
smtp_session_message_done(struct smtp_session *s, enum smtp_reply_id id, const char *arg)
{
	if (s->state != STATE_COMMIT)
		return;
	if (smtp_reply_get(id)->code / 100 == 2) {	/* stored, or relayed */
		s->messages++;
		s->junk = 0;
	}
	smtp_enter_state(s, STATE_READY);
	smtp_reply(s, id, arg);
	if (s->shutting_down && s->state != STATE_QUIT)
		smtp_reply(s, R_SHUTDOWN, s->cfg->hostname);
	io_set_timeout(s->io, s->cfg->timeout_idle, 0);
	if (!s->processing)
		smtp_session_process(s);
	if (s->peer_eof && s->state != STATE_QUIT && s->state != STATE_COMMIT)
		smtp_enter_state(s, STATE_QUIT);	/* answer what was sent, then close */
}

/* ---- ETRN (RFC 1985) ---- */

/* smtp_etrn_node - validate and lower-case "domain", "@domain" or "#queue"
 * into node; the argument is hostile: only a host name, an address literal or
 * a plain queue name gets through */
static int
smtp_etrn_node(const char *arg, char *node, size_t len)
{
	size_t skip = arg[0] == '@' || arg[0] == '#';

	if (strlen(arg) >= len || arg[skip] == '\0')
		return -1;
	strcpy(node, arg);
	if (node[0] != '#')
		return smtp_domain_canon(node + skip, 0);
	for (char *p = node + 1; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return -1;
		*p = (char)tolower((unsigned char)*p);
	}
	return strlen(node) <= 65 ? 0 : -1;
}

static int
check_etrn(struct smtp_session *s, const char *arg)
{
	char node[SMTP_DOMAIN_MAX + 2];

	if (s->ops->etrn == NULL) {
		smtp_reply(s, R_NOT_IMPLEMENTED, NULL);
		return 0;
	}
	if (s->state != STATE_READY) {	/* RFC 1985 5: not inside a transaction */
		smtp_reply(s, s->state == STATE_INIT ? R_HELO_FIRST : R_BAD_SEQUENCE, NULL);
		return 0;
	}
	if (*arg == '\0') {
		smtp_reply(s, R_ETRN_NO_ARG, NULL);
		return 0;
	}
	if (smtp_etrn_node(arg, node, sizeof(node)) == -1) {
		smtp_reply(s, R_ETRN_BAD_ARG, NULL);
		return 0;
	}
	return 1;
}

static void
proceed_etrn(struct smtp_session *s, const char *arg)
{
	char node[SMTP_DOMAIN_MAX + 2], count[24] = "";
	const char *reason = "", *args[2];
	enum smtp_reply_id id;

	(void)smtp_etrn_node(arg, node, sizeof(node));	/* checked already */
	if (smtp_junk_over(s))
		return;
	id = s->ops->etrn(s->arg, s, node, count, sizeof(count), &reason);
	if ((id == R_ETRN_STARTED || id == R_ETRN_COUNT) && s->junk > 0)
		s->junk--;	/* it did something: not junk */
	args[0] = id == R_ETRN_COUNT ? count : node;
	args[1] = id == R_ETRN_COUNT ? node : reason;
	log_role(s->tag, "%016llx: etrn node=%s from unknown[%s] reply=%d",
	    (unsigned long long)s->id, node, s->peer_text, smtp_reply_get(id)->code);
	if (id == R_ETRN_RATE)
		s->errors++;	/* flooding with ETRN counts toward the error limit */
	smtp_reply_args(s, id, args, 2);
}

/* ---- AUTH (RFC 4954), ODMR only ---- */

/* smtp_tls_first - AUTH and ATRN wait for STARTTLS where the policy says
 * every command does (spoold's require-tls all): RFC 3207 4's 530 5.7.0,
 * whatever the mechanism.  A mechanism that needs TLS on its own (PLAIN,
 * LOGIN) is the program's matter: 538 from auth_start (SMTP_AUTH_ENCRYPT). */
static int
smtp_tls_first(const struct smtp_session *s)
{
	return s->cfg->auth_requires_tls && s->cfg->tls_cred != NULL && !io_is_tls(s->io);
}

static void
smtp_auth_cancel(struct smtp_session *s)
{
	if ((s->state == STATE_AUTH || s->state == STATE_AUTH_PENDING) && s->ops->auth_cancel)
		s->ops->auth_cancel(s->arg, s);
}

static void
smtp_auth_failed_now(struct smtp_session *s)
{
	smtp_enter_state(s, STATE_READY);
	if (s->auth_failures >= SMTP_AUTH_FAIL_MAX ||
	    (s->ops->auth_blocked && s->ops->auth_blocked(s->arg, s)))
		smtp_reply(s, R_AUTH_TOO_MANY, s->cfg->hostname);
	else
		smtp_reply(s, s->auth_delayed, NULL);
}

static void
smtp_auth_delay_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	if (s->state != STATE_AUTH_WAIT)
		return;		/* a 421 (timeout, shutdown) came first */
	smtp_auth_failed_now(s);
	if (!s->processing)
		smtp_session_process(s);	/* what the client sent meanwhile */
}

/* smtp_auth_failed - count it, and answer the fixed delay after the line
 * that failed (at once when the back end took longer than that) */
static void
smtp_auth_failed(struct smtp_session *s, enum smtp_reply_id id)
{
	ev_tstamp left = SMTP_AUTH_FAIL_DELAY - (ev_now(s->loop) - s->auth_line_at);

	s->auth_failures++;
	if (s->ops->auth_failed)
		s->ops->auth_failed(s->arg, s);
	log_role_warn(s->tag, "%016llx: unknown[%s]: SASL %s authentication failed (%u on this "
	    "connection)", (unsigned long long)s->id, s->peer_text, s->mech, s->auth_failures);
	s->auth_delayed = id;
	smtp_enter_state(s, STATE_AUTH_WAIT);
	ev_timer_set(&s->auth_delay, left > 0 ? left : 0., 0.);
	ev_timer_start(s->loop, &s->auth_delay);
}

/* smtp_auth_result - the reply for what the program's SASL step said */
static void
smtp_auth_result(struct smtp_session *s, enum smtp_auth_result res, const char *out)
{
	char esc[LOG_ESCAPE_SIZE(200)];

	switch (res) {
	case SMTP_AUTH_DONE:
		snprintf(s->user, sizeof(s->user), "%s", out);
		ev_timer_stop(s->loop, &s->auth_deadline);
		log_role(s->tag, "%016llx: auth ok from unknown[%s], sasl_method=%s, "
		    "sasl_username=%s", (unsigned long long)s->id, s->peer_text, s->mech,
		    log_escape(esc, sizeof(esc), s->user, 200));
		smtp_enter_state(s, STATE_READY);
		smtp_reply(s, R_AUTH_OK, NULL);
		return;
	case SMTP_AUTH_MORE:
		smtp_enter_state(s, STATE_AUTH);
		smtp_reply(s, R_AUTH_CHALLENGE, out);
		return;
	case SMTP_AUTH_PENDING:
		smtp_enter_state(s, STATE_AUTH_PENDING);	/* smtp_session_auth_done */
		return;
	case SMTP_AUTH_FAIL:
		smtp_auth_failed(s, R_AUTH_FAILED);
		return;
	case SMTP_AUTH_TEMP:
	case SMTP_AUTH_NOMECH:
	case SMTP_AUTH_ENCRYPT:
	case SMTP_AUTH_BASE64:
		break;
	}
	smtp_enter_state(s, STATE_READY);
	smtp_reply(s, res == SMTP_AUTH_TEMP ? R_AUTH_TEMP : res == SMTP_AUTH_NOMECH ? R_AUTH_MECH :
	    res == SMTP_AUTH_ENCRYPT ? R_AUTH_ENCRYPT : R_AUTH_BASE64, NULL);
}

static int
check_auth(struct smtp_session *s, const char *arg)
{
	if (s->state == STATE_INIT) {
		smtp_reply(s, R_HELO_FIRST, NULL);
		return 0;
	}
	if (s->user[0] != '\0') {
		smtp_reply(s, R_AUTH_ALREADY, NULL);
		return 0;
	}
	if (smtp_tls_first(s)) {
		smtp_reply(s, R_TLS_REQUIRED, NULL);
		return 0;
	}
	if (*arg == '\0') {
		smtp_reply(s, R_SYNTAX, "AUTH mechanism [initial-response]");
		return 0;
	}
	if (s->ops->auth_blocked && s->ops->auth_blocked(s->arg, s)) {
		smtp_reply(s, R_AUTH_TOO_MANY, s->cfg->hostname);
		return 0;
	}
	return 1;
}

static void
proceed_auth(struct smtp_session *s, const char *arg)
{
	char out[SMTP_AUTH_LINE_MAX];
	size_t mlen = strcspn(arg, " ");
	const char *initial = arg[mlen] == ' ' ? arg + mlen + 1 : NULL;

	snprintf(s->mech, sizeof(s->mech), "%.*s", (int)(mlen < sizeof(s->mech) - 1 ? mlen :
	    sizeof(s->mech) - 1), arg);
	for (char *p = s->mech; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			*p = '?';
	out[0] = '\0';
	s->auth_line_at = ev_now(s->loop);
	smtp_auth_result(s, s->ops->auth_start(s->arg, s, s->mech, initial, out, sizeof(out)), out);
}

/* smtp_auth_line - a response line in a SASL exchange */
static void
smtp_auth_line(struct smtp_session *s, const char *line)
{
	char out[SMTP_AUTH_LINE_MAX];

	if (strcmp(line, "*") == 0) {	/* RFC 4954 4: the client gives up */
		smtp_auth_cancel(s);
		smtp_enter_state(s, STATE_READY);
		smtp_reply(s, R_AUTH_CANCELLED, NULL);
		return;
	}
	out[0] = '\0';
	s->auth_line_at = ev_now(s->loop);
	smtp_auth_result(s, s->ops->auth_step(s->arg, s, line, out, sizeof(out)), out);
}

void
smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result res, const char *out)
{
	if (s->state != STATE_AUTH_PENDING || res == SMTP_AUTH_PENDING)
		return;
	smtp_auth_result(s, res, out);
	if (!s->processing && s->state != STATE_QUIT)
		smtp_session_process(s);	/* what the client sent meanwhile */
}

static void
smtp_auth_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	if (s->user[0] != '\0' || s->state == STATE_QUIT || s->state == STATE_TURNED)
		return;
	log_role(s->tag, "%016llx: no AUTH within %.0fs from unknown[%s]", (unsigned long long)s->id,
	    s->cfg->auth_deadline, s->peer_text);
	smtp_auth_cancel(s);
	smtp_reply(s, R_TIMEOUT, s->cfg->hostname);
}

static void
smtp_auth_deadline_start(struct smtp_session *s)
{
	if (s->cfg->auth_deadline <= 0)
		return;
	ev_timer_set(&s->auth_deadline, s->cfg->auth_deadline, 0.);
	ev_timer_start(s->loop, &s->auth_deadline);
}

/* ---- ATRN (RFC 2645 5.2.1), ODMR only ---- */

static int
check_atrn(struct smtp_session *s, const char *arg)
{
	if (smtp_tls_first(s)) {
		smtp_reply(s, R_TLS_REQUIRED, NULL);
		return 0;
	}
	if (s->user[0] == '\0') {
		smtp_reply(s, R_AUTH_REQUIRED, NULL);
		return 0;
	}
	return 1;
}

/* smtp_turn - the program's run takes the connection; the 250 goes out on
 * it and the session ends without closing it (freed from the loop, since
 * the callers up the stack still hold s) */
static void
smtp_turn(struct smtp_session *s, const char *arg)
{
	char line[256];
	struct io *io = s->io;
	size_t len;

	if (s->ops->turn(s->arg, s, arg, io) == -1) {
		smtp_reply(s, R_ATRN_BUSY, NULL);
		return;
	}
	len = smtp_reply_format(line, sizeof(line), R_ATRN_TURN, 1, NULL, 0);
	io_write(io, line, len);
	smtp_replied(s, smtp_reply_get(R_ATRN_TURN)->code, line, len);
	smtp_enter_state(s, STATE_TURNED);
	s->io = NULL;
	ev_timer_set(&s->kick, 0., 0.);
	ev_timer_start(s->loop, &s->kick);
}

static void
proceed_atrn(struct smtp_session *s, const char *arg)
{
	enum smtp_reply_id id = s->ops->atrn(s->arg, s, arg);

	if (id == R_ATRN_TURN) {
		smtp_turn(s, arg);
		return;
	}
	smtp_reply(s, id, id == R_SYNTAX ? "ATRN [domain[,domain]...]" : NULL);
	if (id == R_ATRN_PIPELINED)
		smtp_enter_state(s, STATE_QUIT);
}

/* ---- the small commands ---- */

/* smtp_junk_over - count a command that moves no mail (Postfix's junk
 * commands, and HELP); 1 when it is over the limit and the session is
 * being closed with a 421 instead */
static int
smtp_junk_over(struct smtp_session *s)
{
	if (s->cfg->junk_limit == 0 || ++s->junk <= s->cfg->junk_limit)
		return 0;
	log_role(s->tag, "%016llx: too many junk commands from unknown[%s] (%u)",
	    (unsigned long long)s->id, s->peer_text, s->cfg->junk_limit);
	smtp_txn_reset(s);
	smtp_reply(s, R_TOO_MANY_JUNK, s->cfg->hostname);
	return 1;
}

static int
check_no_arg(struct smtp_session *s, const char *arg)
{
	if (*arg != '\0') {
		smtp_reply(s, R_SYNTAX, "no argument allowed");
		return 0;
	}
	return 1;
}

static int
check_any(struct smtp_session *s, const char *arg)
{
	return 1;
}

static void
proceed_rset(struct smtp_session *s, const char *arg)
{
	if (smtp_junk_over(s))
		return;
	smtp_txn_reset(s);
	smtp_reply(s, R_RSET, NULL);
}

static void
proceed_noop(struct smtp_session *s, const char *arg)
{
	if (smtp_junk_over(s))
		return;
	smtp_reply(s, R_NOOP, NULL);
}

static void
proceed_quit(struct smtp_session *s, const char *arg)
{
	s->quit_seen = 1;
	smtp_reply(s, R_BYE, s->cfg->hostname);
	smtp_enter_state(s, STATE_QUIT);
}

static int
check_vrfy(struct smtp_session *s, const char *arg)
{
	if (*arg == '\0') {
		smtp_reply(s, R_SYNTAX, "VRFY address");
		return 0;
	}
	return 1;
}

static void
proceed_vrfy(struct smtp_session *s, const char *arg)
{
	if (smtp_junk_over(s))
		return;
	smtp_reply(s, R_VRFY, NULL);
}

static void
proceed_help(struct smtp_session *s, const char *arg)
{
	if (smtp_junk_over(s))
		return;
	smtp_reply(s, R_HELP, NULL);
}

/* ---- XCLIENT (Postfix's XCLIENT_README; the attributes: xclient.c) ---- */

static int
check_xclient(struct smtp_session *s, const char *arg)
{
	struct xclient x;
	char bad[40];

	if (!s->xclient_ok) {
		smtp_reply(s, R_XCLIENT_DENIED, NULL);
		return 0;
	}
	if (arg[0] == '\0') {
		smtp_reply(s, R_SYNTAX, "XCLIENT attribute=value ...");
		return 0;
	}
	if (xclient_parse(arg, &x, bad, sizeof(bad)) != NULL) {
		smtp_reply(s, R_XCLIENT_ATTR, bad);
		return 0;
	}
	return 1;
}

/* proceed_xclient - the session goes on as the client named, from the
 * start: a new greeting; with HELO= that client has said hello (MAIL may
 * follow), without it EHLO comes first */
static void
proceed_xclient(struct smtp_session *s, const char *arg)
{
	char bad[40], was[sizeof(s->peer_text)], esc[LOG_ESCAPE_SIZE(64)];
	enum smtp_reply_id refused;
	struct xclient x;
	int port = sockaddr_port((struct sockaddr *)&s->peer);

	(void)xclient_parse(arg, &x, bad, sizeof(bad));
	memcpy(was, s->peer_text, sizeof(was));
	smtp_txn_reset(s);
	if (x.addr_set) {
		s->peer = x.addr;
		port = 0;
	}
	if (x.port_set)
		port = x.port;
	if (s->peer.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&s->peer)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&s->peer)->sin_port = htons((uint16_t)port);
	sockaddr_text((struct sockaddr *)&s->peer, s->peer_text, sizeof(s->peer_text));
	/* the client named has said HELO (or EHLO: PROTO) only if HELO says so */
	strcpy(s->helo, x.helo_set ? x.helo : "");
	if (x.proto_set)
		s->esmtp = x.esmtp;
	if (x.login_set)
		strcpy(s->user, x.login);
	smtp_enter_state(s, s->helo[0] != '\0' ? STATE_READY : STATE_INIT);
	log_role(s->tag, "%016llx: xclient from unknown[%s]: client unknown[%s]:%d helo=<%s>",
	    (unsigned long long)s->id, was, s->peer_text, port,
	    log_escape(esc, sizeof(esc), s->helo, 64));
	if (s->ops->client_changed && (refused = s->ops->client_changed(s->arg, s)) != R__COUNT) {
		smtp_reply(s, refused, s->cfg->hostname);
		return;
	}
	smtp_reply(s, R_GREETING, s->cfg->hostname);
}

#define ANY_CMD_STATE	(S(STATE_INIT) | S(STATE_READY) | S(STATE_MAIL) | S(STATE_RCPT))
#define MAIL		S(SMTP_SERVICE_MAIL)
#define ODMR		S(SMTP_SERVICE_ODMR)

static const struct smtp_command commands[] = {
	{ "EHLO",	MAIL | ODMR,	ANY_CMD_STATE,	check_helo,	proceed_ehlo },
	{ "HELO",	MAIL,		ANY_CMD_STATE,	check_helo,	proceed_helo },
	{ "STARTTLS",	MAIL | ODMR,	S(STATE_INIT) | S(STATE_READY), check_starttls, proceed_starttls },
	{ "MAIL",	MAIL,		ANY_CMD_STATE,	check_mail,	proceed_mail },
	{ "RCPT",	MAIL,		ANY_CMD_STATE,	check_rcpt,	proceed_rcpt },
	{ "DATA",	MAIL,		ANY_CMD_STATE,	check_data,	proceed_data },
	{ "AUTH",	ODMR,		ANY_CMD_STATE,	check_auth,	proceed_auth },
	{ "ATRN",	ODMR,		ANY_CMD_STATE,	check_atrn,	proceed_atrn },
	{ "RSET",	MAIL | ODMR,	ANY_CMD_STATE,	check_no_arg,	proceed_rset },
	{ "NOOP",	MAIL | ODMR,	ANY_CMD_STATE,	check_any,	proceed_noop },
	{ "QUIT",	MAIL | ODMR,	ANY_CMD_STATE,	check_no_arg,	proceed_quit },
	{ "VRFY",	MAIL,		ANY_CMD_STATE,	check_vrfy,	proceed_vrfy },
	{ "HELP",	MAIL,		ANY_CMD_STATE,	check_any,	proceed_help },
	{ "ETRN",	MAIL,		ANY_CMD_STATE,	check_etrn,	proceed_etrn },
	/* XCLIENT_README: not inside a transaction */
	{ "XCLIENT",	MAIL,		S(STATE_INIT) | S(STATE_READY), check_xclient, proceed_xclient },
	{ NULL,		0,		0,		NULL,		NULL },
};
_Static_assert(sizeof(commands) / sizeof(commands[0]) == SMTP_NCOUNTED, "SMTP_NCOUNTED");

/* smtp_counting_verb - the command the reply being sent answers */
static const char *
smtp_counting_verb(const struct smtp_session *s)
{
	unsigned tried = 0;

	if (s->counting >= 0)
		return commands[s->counting].verb != NULL ? commands[s->counting].verb : "UNKNOWN";
	for (size_t i = 0; i < SMTP_NCOUNTED; i++)
		tried += s->cmd_tried[i];
	return tried == 0 ? "CONNECT" : "SESSION";
}

static const struct smtp_command *
smtp_lookup(const struct smtp_session *s, const char *verb)
{
	for (const struct smtp_command *c = commands; c->verb; c++)
		if ((c->services & S(s->cfg->service)) && strcmp(c->verb, verb) == 0)
			return c;
	return NULL;
}

/* smtp_known_verb - a real SMTP verb this server does not implement (502,
 * RFC 5321 4.2.4), as opposed to an unknown word (500) */
static int
smtp_known_verb(const char *verb)
{
	static const char *const known[] = { "ATRN", "TURN", "AUTH", "BDAT", "EXPN", NULL };

	for (size_t i = 0; known[i]; i++)
		if (strcmp(known[i], verb) == 0)
			return 1;
	return 0;
}

/* smtp_command - dispatch one command line */
static void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_command *cmd;
	const char *arg;
	char verb[16];

	arg = smtp_cmd_split(line, verb, sizeof(verb));
	cmd = smtp_lookup(s, verb);
	s->counting = cmd != NULL ? (int)(cmd - commands) : SMTP_NCOUNTED - 1;
	s->cmd_tried[s->counting]++;
	if (strlen(line) != len) {	/* a NUL inside the command */
		smtp_reply(s, R_UNRECOGNIZED, NULL);
		return;
	}
	if (cmd == NULL) {
		/* RFC 2645 5.4: on the ODMR port, anything else is 502 */
		smtp_reply(s, smtp_known_verb(verb) || s->cfg->service == SMTP_SERVICE_ODMR ?
		    R_NOT_IMPLEMENTED : R_UNRECOGNIZED, NULL);
		return;
	}
	if (len > SMTP_LINE_MAX - 2 && strcmp(verb, "MAIL") != 0 && strcmp(verb, "RCPT") != 0) {
		smtp_reply(s, R_LINE_TOO_LONG, NULL);
		return;
	}
	if (!(cmd->states & S(s->state))) {
		smtp_reply(s, R_BAD_SEQUENCE, NULL);
		return;
	}
	if (cmd->check(s, arg))
		cmd->proceed(s, arg);
}

/* smtp_command_counts - " ehlo=1 mail=1 rcpt=1/2 ... commands=4/5" as
 * Postfix's disconnect line has them: done/tried where some failed */
static void
smtp_command_counts(const struct smtp_session *s, char *dst, size_t len)
{
	unsigned done = 0, tried = 0;
	size_t o = 0;

	dst[0] = '\0';
	for (size_t i = 0; i < SMTP_NCOUNTED && o < len; i++) {
		char name[16];
		size_t k;

		if (s->cmd_tried[i] == 0)
			continue;
		snprintf(name, sizeof(name), "%s", i < SMTP_NCOUNTED - 1 ? commands[i].verb : "unknown");
		for (k = 0; name[k] != '\0'; k++)
			name[k] = (char)tolower((unsigned char)name[k]);
		o += (size_t)(s->cmd_ok[i] == s->cmd_tried[i] ?
		    snprintf(dst + o, len - o, " %s=%u", name, s->cmd_tried[i]) :
		    snprintf(dst + o, len - o, " %s=%u/%u", name, s->cmd_ok[i], s->cmd_tried[i]));
		done += s->cmd_ok[i];
		tried += s->cmd_tried[i];
	}
	if (o < len)
		(void)(done == tried ? snprintf(dst + o, len - o, " commands=%u", tried) :
		    snprintf(dst + o, len - o, " commands=%u/%u", done, tried));
}

/* smtp_session_line - one line: a command, or a SASL response in AUTH;
 * -1 when there is none to take now */
static int
smtp_session_line(struct smtp_session *s)
{
	int in_auth = s->state == STATE_AUTH, toolong;
	char *line;
	size_t len;

	line = io_getline(s->io, in_auth ? SMTP_AUTH_LINE_MAX + 2 : SMTP_LINE_MAX_PARAMS, &len,
	    &toolong);
	if (toolong == IO_LINE_FLOOD) {
		log_role(s->tag, "%016llx: line flood from unknown[%s]: more than %u bytes without LF",
		    (unsigned long long)s->id, s->peer_text, IO_SKIP_MAX);
		smtp_auth_cancel(s);
		smtp_txn_reset(s);
		smtp_reply(s, R_LINE_FLOOD, s->cfg->hostname);
		return -1;
	}
	if (toolong) {
		smtp_auth_cancel(s);
		if (in_auth)
			smtp_enter_state(s, STATE_READY);
		smtp_reply(s, in_auth ? R_AUTH_TOO_LONG : R_LINE_TOO_LONG, NULL);
		return 0;
	}
	if (line == NULL)
		return -1;
	/* the idle timeout runs from the last complete command */
	io_restart_timer(s->io);
	if (in_auth)
		smtp_auth_line(s, line);
	else
		smtp_command(s, line, len);
	return 0;
}

/* smtp_session_process - work through buffered input as far as the state
 * allows; stops while a message is being stored or output backs up */
static void
smtp_session_process(struct smtp_session *s)
{
	s->processing = 1;
	for (;;) {
		if (s->state == STATE_DATA) {
			smtp_data_read(s);
			if (s->state == STATE_DATA)
				break;
			continue;
		}
		if (!(S(s->state) & (ANY_CMD_STATE | S(STATE_AUTH))))
			break;
		/* A client that never reads our replies cannot make us buffer
		 * without bound: stop until the output drains. */
		if (io_queued(s->io) > IO_INBUF_MAX)
			break;
		if (smtp_session_line(s) == -1)
			break;
	}
	s->processing = 0;
	if (s->io != NULL)
		io_consumed(s->io);
}

static void
smtp_log_close(struct smtp_session *s, const char *why)
{
	char esc[LOG_ESCAPE_SIZE(64)], user[LOG_ESCAPE_SIZE(200) + 8] = "", counts[400];

	if (s->user[0] != '\0') {
		memcpy(user, " user=", 7);
		log_escape(user + 6, sizeof(user) - 6, s->user, 200);
	}
	smtp_command_counts(s, counts, sizeof(counts));
	log_role(s->tag, "%016llx: disconnect from unknown[%s]%s helo=<%s>%s messages=%u "
	    "errors=%u reason=%s", (unsigned long long)s->id, s->peer_text, counts,
	    log_escape(esc, sizeof(esc), s->helo, 64), user, s->messages, s->errors, why);
}

static void
smtp_io_event(struct io *io, enum io_event ev, void *arg)
{
	struct smtp_session *s = arg;

	switch (ev) {
	case IO_DATAIN:
		smtp_session_process(s);
		if (s->state == STATE_QUIT && io_queued(io) == 0) {
			smtp_log_close(s, "quit");
			smtp_session_free(s);
		}
		return;
	case IO_LOWAT:
		if (s->state == STATE_QUIT) {
			smtp_log_close(s, "quit");
			smtp_session_free(s);
			return;
		}
		smtp_session_process(s);
		return;
	case IO_TLSREADY: {
		char tls[128];

		/* RFC 3207 4.2: forget everything learnt before TLS, the AUTH
		 * identity too (authenticate again, in time) */
		s->helo[0] = '\0';
		if (s->user[0] != '\0') {
			s->user[0] = '\0';
			smtp_auth_deadline_start(s);
		}
		smtp_enter_state(s, STATE_INIT);
		io_set_timeout(io, s->cfg->timeout_idle, 0);
		log_role(s->tag, "%016llx: Anonymous TLS connection established from unknown[%s]: %s",
		    (unsigned long long)s->id, s->peer_text, io_tls_info(io, tls, sizeof(tls)));
		return;
	}
	case IO_TIMEOUT:
		log_role(s->tag, "%016llx: timeout after %s from unknown[%s]", (unsigned long long)s->id,
		    strstate(s->state), s->peer_text);
		if (s->state == STATE_QUIT) {
			smtp_log_close(s, "last reply not read in time");
			smtp_session_free(s);
			return;
		}
		if (s->state == STATE_TLS) {
			smtp_log_close(s, "TLS handshake timeout");
			smtp_session_free(s);
			return;
		}
		smtp_auth_cancel(s);
		smtp_reply(s, R_TIMEOUT, s->cfg->hostname);
		return;
	case IO_DISCONNECTED:
		/* A client that half-closes after its last command still gets
		 * its replies, above all the one for a message being stored. */
		s->peer_eof = 1;
		if (s->state == STATE_COMMIT || s->state == STATE_RCPT_WAIT)
			return;
		smtp_auth_cancel(s);	/* a pending step's answer has no reader */
		if (io_queued(io) > 0 && s->state != STATE_DATA) {
			smtp_enter_state(s, STATE_QUIT);
			return;
		}
		smtp_log_close(s, s->state == STATE_DATA ? "lost connection in DATA" : "lost connection");
		smtp_session_free(s);
		return;
	case IO_ERROR:
		smtp_log_close(s, io_error(io));
		smtp_session_free(s);
		return;
	case IO_CONNECTED:	/* a server session never connects */
		return;
	}
}

struct smtp_session *
smtp_session_new_io(struct io *io, const struct sockaddr *peer,
    const struct smtp_server_config *cfg, const struct smtp_server_ops *ops, void *arg,
    enum smtp_reply_id refuse)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	socklen_t plen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	socklen_t llen = sizeof(s->local);

	if (s == NULL)
		return NULL;
	s->io = io;
	s->loop = io_loop(io);
	io_set_callback(io, smtp_io_event, s);
	/* one counter for every service, so ids never collide in the log */
	s->id = ((uint64_t)time(NULL) << 24) ^ ++session_counter;
	s->tag = cfg->service == SMTP_SERVICE_ODMR ? LOG_ODMR : LOG_SMTPD;
	s->counting = -1;
	ev_init(&s->kick, smtp_kick);
	ev_init(&s->data_clock, smtp_data_clock);
	ev_init(&s->auth_delay, smtp_auth_delay_done);
	ev_init(&s->auth_deadline, smtp_auth_deadline);
	s->kick.data = s->data_clock.data = s->auth_delay.data = s->auth_deadline.data = s;
	s->cfg = cfg;
	s->ops = ops;
	s->arg = arg;
	memcpy(&s->peer, peer, plen);
	(void)getsockname(io_fd(io), (struct sockaddr *)&s->local, &llen);
	sockaddr_text(peer, s->peer_text, sizeof(s->peer_text));
	for (size_t i = 0; i < cfg->n_xclient_from && cfg->service == SMTP_SERVICE_MAIL; i++)
		s->xclient_ok |= cidr_match(&cfg->xclient_from[i], peer);
	s->state = STATE_INIT;
	io_set_timeout(s->io, cfg->timeout_idle, 0);
	if (refuse != R__COUNT) {
		log_role(s->tag, "%016llx: reject: CONNECT from unknown[%s]: %d %s; proto=SMTP",
		    (unsigned long long)s->id, s->peer_text, smtp_reply_get(refuse)->code,
		    smtp_reply_get(refuse)->text);
		smtp_reply(s, refuse, cfg->hostname);
		smtp_enter_state(s, STATE_QUIT);
		return s;
	}
	log_role(s->tag, "%016llx: connect from unknown[%s]:%d", (unsigned long long)s->id,
	    s->peer_text, sockaddr_port(peer));
	smtp_auth_deadline_start(s);
	smtp_reply(s, cfg->service == SMTP_SERVICE_ODMR ? R_ODMR_GREETING : R_GREETING,
	    cfg->hostname);
	/* input already in (what followed a PROXY header in its packet) never
	 * makes the socket readable again: take it from the loop */
	if (io_pending(io) > 0) {
		ev_timer_set(&s->kick, 0., 0.);
		ev_timer_start(s->loop, &s->kick);
	}
	return s;
}

struct smtp_session *
smtp_session_new(struct ev_loop *loop, int fd, const struct sockaddr *peer,
    const struct smtp_server_config *cfg, const struct smtp_server_ops *ops, void *arg,
    enum smtp_reply_id refuse)
{
	struct io *io = io_new(loop, fd, smtp_io_event, NULL);
	struct smtp_session *s;

	if (io == NULL)
		return NULL;
	if ((s = smtp_session_new_io(io, peer, cfg, ops, arg, refuse)) == NULL)
		io_free(io);
	return s;
}

static void
smtp_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	if (s->state == STATE_TURNED) {
		smtp_log_close(s, "turned");
		smtp_session_free(s);
		return;
	}
	if (!s->processing)
		smtp_session_process(s);
}

void
smtp_session_pause_data(struct smtp_session *s)
{
	s->data_paused = 1;
}

void
smtp_session_resume_data(struct smtp_session *s)
{
	if (!s->data_paused)
		return;
	s->data_paused = 0;
	ev_timer_set(&s->kick, 0., 0.);
	ev_timer_start(s->loop, &s->kick);
}

static void
smtp_session_free(struct smtp_session *s)
{
	ev_timer_stop(s->loop, &s->kick);
	ev_timer_stop(s->loop, &s->data_clock);
	ev_timer_stop(s->loop, &s->auth_delay);
	ev_timer_stop(s->loop, &s->auth_deadline);
	smtp_auth_cancel(s);
	if (s->io != NULL)
		io_free(s->io);	/* first: its TLS session uses the program's credentials */
	if (s->ops->closed)
		s->ops->closed(s->arg, s);
	smtp_message_free(s->msg);
	free(s);
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutting_down = 1;
	if (s->state == STATE_COMMIT || s->state == STATE_QUIT || s->state == STATE_TURNED ||
	    s->state == STATE_RCPT_WAIT)
		return;		/* 421 after the answer */
	if (s->state == STATE_TLS) {
		smtp_log_close(s, "shutdown");
		smtp_session_free(s);
		return;
	}
	smtp_auth_cancel(s);
	smtp_txn_reset(s);
	smtp_reply(s, R_SHUTDOWN, s->cfg->hostname);
}

uint64_t
smtp_session_id(const struct smtp_session *s)
{
	return s->id;
}

const struct sockaddr *
smtp_session_peer(const struct smtp_session *s)
{
	return (const struct sockaddr *)&s->peer;
}

const char *
smtp_session_peer_text(const struct smtp_session *s)
{
	return s->peer_text;
}

int
smtp_session_quit_seen(const struct smtp_session *s)
{
	return s->quit_seen;
}

const struct sockaddr *
smtp_session_local(const struct smtp_session *s)
{
	return (const struct sockaddr *)&s->local;
}

int
smtp_session_tls(const struct smtp_session *s)
{
	return s->io != NULL && io_is_tls(s->io);
}

const char *
smtp_session_tls_info(struct smtp_session *s, char *buf, size_t len)
{
	return s->io != NULL ? io_tls_info(s->io, buf, len) : NULL;
}

const char *
smtp_session_user(const struct smtp_session *s)
{
	return s->user;
}

int
smtp_session_pipelined(const struct smtp_session *s)
{
	return s->io != NULL && io_pending(s->io) > 0;
}
