/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_client.c - SMTP client session state machine; see smtp_client.h.
 *
 * Entering a state sends that state's command; a reply in a state picks the
 * next state (OpenSMTPD's smtp_client.c split).  With PIPELINING the MAIL,
 * RCPT and DATA commands of a message go out together (RFC 2920 3.1) and
 * their replies are taken in order by the same states.
 *
 * SECURITY: replies are peer input: lines are bounded by io_getline, parsed
 * strictly, and clipped before they reach the program or the log.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io.h"
#include "log.h"
#include "smtp_cmd.h"
#include "smtp_client.h"
#include "smtp_reply.h"

#define CLIENT_REPLY_MAX	1024	/* one reply line, CRLF included */
#define CLIENT_TEXT_MAX		512	/* reply text kept for the program */
#define CLIENT_CHUNK		(16 * 1024)
#define CLIENT_OUT_HIGH		(64 * 1024)	/* stop reading the body above this */

enum client_state {
	CLIENT_BANNER,
	CLIENT_EHLO,
	CLIENT_HELO,
	CLIENT_STARTTLS,
	CLIENT_TLS,
	CLIENT_READY,
	CLIENT_MAIL,
	CLIENT_RCPT,
	CLIENT_DATA,
	CLIENT_BODY,
	CLIENT_EOM,
	CLIENT_RSET,
	CLIENT_QUIT,
};

/* what the peer's EHLO offered */
#define EXT_PIPELINING	0x01
#define EXT_SIZE	0x02
#define EXT_8BITMIME	0x04
#define EXT_SMTPUTF8	0x08
#define EXT_STARTTLS	0x10
#define EXT_DSN		0x20

struct smtp_client {
	struct io			*io;
	enum client_state		 state;
	struct smtp_client_params	 p;
	const struct smtp_client_ops	*ops;
	void				*arg;
	unsigned			 ext;
	uint64_t			 peer_size;
	const struct smtp_client_msg	*msg;
	size_t				 rcpt_sent;	/* RCPT commands written */
	size_t				 rcpt_replied;
	size_t				 rcpt_ok;
	int				 mail_failed;
	int				 discard_eom;	/* "." sent only to end a DATA */
	uint64_t			 body_off;
	int				 body_bol;	/* the next body byte starts a line */
	char				 text[CLIENT_TEXT_MAX];	/* the reply so far */
	int				 code;		/* its code */
	unsigned			 lines;		/* its lines so far */
	int				 waiting;	/* next() said smtp_client_wait */
	int				 finished;	/* done() was called */
};

const struct smtp_client_msg smtp_client_wait;

static void client_next(struct smtp_client *);
static void client_fail(struct smtp_client *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static const char *
strstate(enum client_state st)
{
#define CASE(x) case x: return #x
	switch (st) {
	CASE(CLIENT_BANNER);
	CASE(CLIENT_EHLO);
	CASE(CLIENT_HELO);
	CASE(CLIENT_STARTTLS);
	CASE(CLIENT_TLS);
	CASE(CLIENT_READY);
	CASE(CLIENT_MAIL);
	CASE(CLIENT_RCPT);
	CASE(CLIENT_DATA);
	CASE(CLIENT_BODY);
	CASE(CLIENT_EOM);
	CASE(CLIENT_RSET);
	CASE(CLIENT_QUIT);
	}
#undef CASE
	return "CLIENT_?";
}

static void
client_enter(struct smtp_client *c, enum client_state st, double timeout)
{
	if (log_verbose() > 1)
		log_debug("smtp client %s: %s -> %s", c->p.peer_name, strstate(c->state), strstate(st));
	c->state = st;
	io_set_timeout(c->io, timeout, 0);
}

/* client_in_step - nothing unread may wait when we start a new command: a
 * reply nobody asked for would be taken as the answer to the next command */
static int
client_in_step(struct smtp_client *c)
{
	if (io_pending(c->io) == 0)
		return 1;
	client_fail(c, "the peer sent a reply nobody asked for in %s", strstate(c->state));
	return 0;
}

/* client_finish - report the end once and free the io; the client itself
 * is freed by whoever called in (client_io_event, smtp_client_abort), so
 * code on the way back out may still look at c->finished */
static void
client_finish(struct smtp_client *c, const char *error)
{
	if (c->finished)
		return;
	c->finished = 1;
	c->ops->done(c->arg, error);
	io_free(c->io);
}

static void
client_fail(struct smtp_client *c, const char *fmt, ...)
{
	char why[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	client_finish(c, why);
}

/* client_quit - say goodbye; the session ends at the 221 or the close */
static void
client_quit(struct smtp_client *c)
{
	if (!client_in_step(c))
		return;
	io_writeline(c->io, "QUIT");
	client_enter(c, CLIENT_QUIT, c->p.timeout_command);
}

/* ---- greeting, EHLO, STARTTLS ---- */

static void
client_ehlo(struct smtp_client *c)
{
	c->ext = 0;
	c->peer_size = 0;
	/* RFC 2033 4.1: LMTP says LHLO and has no HELO to fall back to */
	io_writeline(c->io, "%s %s", c->p.lmtp ? "LHLO" : "EHLO", c->p.helo_name);
	client_enter(c, CLIENT_EHLO, c->p.timeout_command);
}

/* client_ehlo_line - note one extension of a 250 reply to EHLO */
static void
client_ehlo_line(struct smtp_client *c, const char *text)
{
	static const struct { const char *kw; unsigned bit; } exts[] = {
		{ "PIPELINING", EXT_PIPELINING }, { "8BITMIME", EXT_8BITMIME },
		{ "SMTPUTF8", EXT_SMTPUTF8 }, { "STARTTLS", EXT_STARTTLS }, { "DSN", EXT_DSN },
	};

	if (strncasecmp(text, "SIZE", 4) == 0 && (text[4] == ' ' || text[4] == '\0')) {
		c->ext |= EXT_SIZE;
		c->peer_size = strtoull(text + 4, NULL, 10);	/* 0: no fixed limit */
		return;
	}
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcasecmp(text, exts[i].kw) == 0)
			c->ext |= exts[i].bit;
}

/* client_after_hello - STARTTLS if we can, else start sending */
static void
client_after_hello(struct smtp_client *c)
{
	if (!io_is_tls(c->io) && c->p.tls_cred && (c->ext & EXT_STARTTLS)) {
		io_writeline(c->io, "STARTTLS");
		client_enter(c, CLIENT_STARTTLS, c->p.timeout_command);
		return;
	}
	if (!io_is_tls(c->io) && c->p.tls_required) {
		/* nothing more in clear, not even QUIT */
		client_fail(c, "TLS is required and %s", c->p.tls_cred == NULL ?
		    "no TLS client credentials are set up" :
		    "the peer does not offer STARTTLS");
		return;
	}
	client_enter(c, CLIENT_READY, c->p.timeout_command);
	client_next(c);
}

static void
client_reply_banner(struct smtp_client *c, int code)
{
	const char *name = c->text[3] == ' ' ? c->text + 4 : "";
	size_t len = strcspn(name, " ");

	if (code != 220) {
		client_fail(c, "greeting: %s", c->text);
		return;
	}
	/* RFC 5321 5.2: a peer that greets with our own name is ourselves */
	if (c->p.loop_name != NULL && len == strlen(c->p.loop_name) &&
	    strncasecmp(name, c->p.loop_name, len) == 0) {
		client_fail(c, "mail loops back to myself: the greeting names %s, this host", c->p.loop_name);
		return;
	}
	client_ehlo(c);
}

static void
client_reply_ehlo(struct smtp_client *c, int code)
{
	if (code / 100 == 2) {
		client_after_hello(c);
		return;
	}
	if (code / 100 == 5 && c->state == CLIENT_EHLO && !io_is_tls(c->io) && !c->p.lmtp) {
		io_writeline(c->io, "HELO %s", c->p.helo_name);	/* RFC 5321 3.2 */
		client_enter(c, CLIENT_HELO, c->p.timeout_command);
		return;
	}
	client_fail(c, "%s: %s", c->state == CLIENT_EHLO ? "EHLO" : "HELO", c->text);
}

static void
client_reply_starttls(struct smtp_client *c, int code)
{
	if (code != 220) {
		if (c->p.tls_required) {
			client_fail(c, "STARTTLS refused: %s", c->text);
			return;
		}
		client_enter(c, CLIENT_READY, c->p.timeout_command);
		client_next(c);
		return;
	}
	if (io_start_tls_client(c->io, c->p.tls_cred, c->p.tls_prio, c->p.peer_name,
	    c->p.tls_verify_name) == -1) {
		client_fail(c, "STARTTLS: %s", io_error(c->io));
		return;
	}
	client_enter(c, CLIENT_TLS, c->p.timeout_command);
}

/* ---- one message ---- */

/* client_refuse_all - every recipient gets the same verdict */
static void
client_refuse_all(struct smtp_client *c, int code, const char *text)
{
	for (size_t i = 0; i < c->msg->nrcpts; i++)
		c->ops->rcpt(c->arg, c->msg, i, code, text);
}

/* client_unsendable - why this peer cannot take the message, or NULL */
static const char *
client_unsendable(struct smtp_client *c, int *code, char *buf, size_t len)
{
	const struct smtp_client_msg *m = c->msg;

	if (m->smtputf8 && !(c->ext & EXT_SMTPUTF8)) {
		*code = 553;	/* RFC 6531 3.4: bounce, never downgrade */
		return "5.6.7 the message needs SMTPUTF8, which the peer does not offer";
	}
	if ((c->ext & EXT_SIZE) && c->peer_size > 0 && m->size > c->peer_size) {
		*code = 552;
		snprintf(buf, len, "5.3.4 message size %llu exceeds the peer's limit of %llu",
		    (unsigned long long)m->size, (unsigned long long)c->peer_size);
		return buf;
	}
	if (m->eight_bit && !(c->ext & EXT_8BITMIME)) {
		*code = 450;	/* deferred: maybe the next peer or a later try can */
		return "4.6.0 8-bit message and the peer does not offer 8BITMIME";
	}
	return NULL;
}

/* client_rcpt_dsn - " NOTIFY=... ORCPT=..." for recipient i, when the peer
 * offers DSN and the message has them */
static void
client_rcpt_dsn(struct smtp_client *c, size_t i, char *out, size_t len)
{
	const struct smtp_client_rcpt *r = &c->msg->rcpts[i];
	unsigned n = r->notify;
	char enc[SMTP_ORCPT_MAX + 1];

	out[0] = '\0';
	if (!(c->ext & EXT_DSN))
		return;
	if (n & NOTIFY_NEVER)
		snprintf(out, len, " NOTIFY=NEVER");
	else if (n != 0)
		snprintf(out, len, " NOTIFY=%s%s%s", n & NOTIFY_SUCCESS ? "SUCCESS," : "",
		    n & NOTIFY_FAILURE ? "FAILURE," : "", n & NOTIFY_DELAY ? "DELAY," : "");
	if (out[0] != '\0' && out[strlen(out) - 1] == ',')
		out[strlen(out) - 1] = '\0';
	/* RFC 3461 4.2: at most 500 characters; a longer one is left out */
	if (r->orcpt_type && r->orcpt_type[0] != '\0' && r->orcpt != NULL &&
	    strlen(r->orcpt_type) + 1 + xtext_encode(r->orcpt, enc, sizeof(enc)) <= SMTP_ORCPT_MAX)
		snprintf(out + strlen(out), len - strlen(out), " ORCPT=%s;%s", r->orcpt_type, enc);
}

static void
client_send_rcpt(struct smtp_client *c)
{
	char dsn[SMTP_ORCPT_MAX + 64];
	size_t i = c->rcpt_sent++;

	client_rcpt_dsn(c, i, dsn, sizeof(dsn));
	io_writeline(c->io, "RCPT TO:<%s>%s", c->msg->rcpts[i].addr, dsn);
}

/* client_send_mail - MAIL, and with PIPELINING every RCPT and DATA too */
static void
client_send_mail(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	char params[96 + SMTP_ENVID_MAX * 3] = "", envid[SMTP_ENVID_MAX * 3 + 1];

	if ((c->ext & EXT_SIZE) && m->size > 0)	/* a stream may not know its size */
		snprintf(params, sizeof(params), " SIZE=%llu", (unsigned long long)m->size);
	if (m->eight_bit && (c->ext & EXT_8BITMIME))
		strcat(params, " BODY=8BITMIME");
	if (m->smtputf8)
		strcat(params, " SMTPUTF8");
	if ((c->ext & EXT_DSN) && m->ret != RET_UNSET)
		strcat(params, m->ret == RET_FULL ? " RET=FULL" : " RET=HDRS");
	if ((c->ext & EXT_DSN) && m->envid && m->envid[0] != '\0' &&
	    xtext_encode(m->envid, envid, sizeof(envid)) <= SMTP_ENVID_MAX) {	/* RFC 3461 4.4 */
		strcat(params, " ENVID=");
		strcat(params, envid);
	}
	c->rcpt_sent = c->rcpt_replied = c->rcpt_ok = 0;
	c->mail_failed = c->discard_eom = 0;
	if (!client_in_step(c))
		return;
	io_writeline(c->io, "MAIL FROM:<%s>%s", m->sender, params);
	if (c->ext & EXT_PIPELINING) {
		while (c->rcpt_sent < m->nrcpts)
			client_send_rcpt(c);
		if (!m->probe)
			io_writeline(c->io, "DATA");
	}
	client_enter(c, CLIENT_MAIL, c->p.timeout_command);
}

/* client_next - offer the program's next message, or QUIT */
static void
client_next(struct smtp_client *c)
{
	const char *why;
	char buf[160];
	int code;

	while ((c->msg = c->ops->next(c->arg)) != NULL) {
		if (c->msg == &smtp_client_wait) {
			c->msg = NULL;
			c->waiting = 1;
			return;
		}
		if (c->msg->nrcpts == 0)
			continue;
		if ((why = client_unsendable(c, &code, buf, sizeof(buf))) == NULL) {
			client_send_mail(c);
			return;
		}
		/* in the form of a peer's reply, so the program logs it alike;
		 * for a probe, no verdict on the recipient: a 4xx */
		if (c->msg->probe && code / 100 == 5)
			code -= 100;
		snprintf(c->text, sizeof(c->text), "%d %s", code, why);
		client_refuse_all(c, code, c->text);
		c->text[0] = '\0';
	}
	client_quit(c);
}

static void
client_reset(struct smtp_client *c)
{
	if (!client_in_step(c))
		return;
	io_writeline(c->io, "RSET");
	client_enter(c, CLIENT_RSET, c->p.timeout_command);
}

static void
client_reply_mail(struct smtp_client *c, int code)
{
	if (code / 100 != 2) {
		c->mail_failed = 1;
		/* a probe's MAIL refused says nothing of the recipient: a 4xx */
		client_refuse_all(c, c->msg->probe && code / 100 == 5 ? code - 100 : code, c->text);
		if (!(c->ext & EXT_PIPELINING)) {
			client_reset(c);
			return;
		}
	} else if (!(c->ext & EXT_PIPELINING))
		client_send_rcpt(c);
	client_enter(c, CLIENT_RCPT, c->p.timeout_command);
}

static void
client_reply_rcpt(struct smtp_client *c, int code)
{
	size_t i = c->rcpt_replied++;

	io_restart_timer(c->io);	/* RFC 5321 4.5.3.2.3: the timeout is per RCPT */
	if (!c->mail_failed) {
		c->ops->rcpt(c->arg, c->msg, i, code, c->text);
		if (code / 100 == 2)
			c->rcpt_ok++;
	}
	if (c->rcpt_replied < c->msg->nrcpts) {
		if (!(c->ext & EXT_PIPELINING))
			client_send_rcpt(c);
		return;
	}
	if (c->msg->probe) {		/* the replies were all it asked for */
		client_reset(c);
		return;
	}
	if (!(c->ext & EXT_PIPELINING)) {
		if (c->rcpt_ok == 0) {
			client_reset(c);
			return;
		}
		io_writeline(c->io, "DATA");
	}
	client_enter(c, CLIENT_DATA, c->p.timeout_data);
}

/* ---- the body ---- */

/* client_stuff - queue body bytes with dot-stuffing (RFC 5321 4.5.2) */
static void
client_stuff(struct smtp_client *c, const char *p, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (c->body_bol && p[i] == '.') {
			io_write(c->io, p + start, i - start);
			io_write(c->io, ".", 1);
			start = i;
		}
		/* a dot after a bare CR is stuffed too: a peer that took
		 * <CR>.<CR><LF> as the end must not see one (smuggling) */
		c->body_bol = p[i] == '\n' || p[i] == '\r';
	}
	io_write(c->io, p + start, len - start);
}

/* client_end_body - the final dot, on a line of its own */
static void
client_end_body(struct smtp_client *c)
{
	if (!c->body_bol)
		io_write(c->io, "\r\n", 2);	/* the dot must start a line */
	io_write(c->io, ".\r\n", 3);
	client_enter(c, CLIENT_EOM, c->p.timeout_eom);
}

/* client_stream - queue what a streamed body has so far */
static void
client_stream(struct smtp_client *c)
{
	char chunk[CLIENT_CHUNK];
	int end = 0;
	long n;

	while (io_queued(c->io) < CLIENT_OUT_HIGH) {
		if ((n = c->msg->read_stream(c->msg->body_arg, chunk, sizeof(chunk), &end)) < 0) {
			client_fail(c, "the message being relayed was abandoned");
			return;
		}
		if (n > 0) {
			client_stuff(c, chunk, (size_t)n);
			c->body_off += (uint64_t)n;
			io_restart_timer(c->io);
		}
		if (end) {
			client_end_body(c);
			return;
		}
		if (n == 0)
			return;		/* smtp_client_resume() brings more */
	}
}

/* client_body - queue the body while the output buffer has room */
static void
client_body(struct smtp_client *c)
{
	char chunk[CLIENT_CHUNK];

	if (c->msg->read_stream != NULL) {
		client_stream(c);
		return;
	}
	while (c->body_off < c->msg->size && io_queued(c->io) < CLIENT_OUT_HIGH) {
		uint64_t left = c->msg->size - c->body_off;
		size_t n = left > sizeof(chunk) ? sizeof(chunk) : (size_t)left;

		if (c->msg->read_body(c->msg->body_arg, c->body_off, chunk, n) == -1) {
			/* the peer must not take a truncated message: drop the
			 * connection before the final dot */
			client_fail(c, "cannot read the body of the message being sent");
			return;
		}
		client_stuff(c, chunk, n);
		c->body_off += n;
	}
	io_restart_timer(c->io);	/* progress: the block timeout starts again */
	if (c->body_off < c->msg->size)
		return;
	client_end_body(c);
}

static void
client_reply_data(struct smtp_client *c, int code)
{
	if (code == 354 && (c->mail_failed || c->rcpt_ok == 0)) {
		/* RFC 2920 3.1: every RCPT failed but DATA was pipelined */
		io_write(c->io, ".\r\n", 3);
		c->discard_eom = 1;
		client_enter(c, CLIENT_EOM, c->p.timeout_eom);
		return;
	}
	if (code / 100 == 2 || (code / 100 == 3 && code != 354)) {
		/* a success before any data was sent is no delivery: treat the
		 * peer as broken and leave the message queued */
		client_fail(c, "DATA answered %s, not 354", c->text);
		return;
	}
	if (code != 354) {
		if (!c->mail_failed && c->rcpt_ok > 0)
			c->ops->sent(c->arg, c->msg, code, c->text);
		client_reset(c);
		return;
	}
	c->body_off = 0;
	c->body_bol = 1;	/* an empty body needs no CRLF before the dot */
	client_enter(c, CLIENT_BODY, c->p.timeout_block);
	client_body(c);
}

static void
client_reply_eom(struct smtp_client *c, int code)
{
	if (c->discard_eom) {
		client_reset(c);
		return;
	}
	c->ops->sent(c->arg, c->msg, code, c->text);
	client_enter(c, CLIENT_READY, c->p.timeout_command);
	client_next(c);
}

/* ---- replies and events ---- */

/* client_reply - a complete reply in the current state */
static void
client_reply(struct smtp_client *c, int code)
{
	switch (c->state) {
	case CLIENT_BANNER:	client_reply_banner(c, code); break;
	case CLIENT_EHLO:
	case CLIENT_HELO:	client_reply_ehlo(c, code); break;
	case CLIENT_STARTTLS:	client_reply_starttls(c, code); break;
	case CLIENT_MAIL:	client_reply_mail(c, code); break;
	case CLIENT_RCPT:	client_reply_rcpt(c, code); break;
	case CLIENT_DATA:	client_reply_data(c, code); break;
	case CLIENT_EOM:	client_reply_eom(c, code); break;
	case CLIENT_RSET:
		client_enter(c, CLIENT_READY, c->p.timeout_command);
		client_next(c);
		break;
	case CLIENT_QUIT:	client_finish(c, NULL); break;
	case CLIENT_TLS:
	case CLIENT_READY:
	case CLIENT_BODY:
		client_fail(c, "unexpected reply in %s: %s", strstate(c->state), c->text);
		break;
	}
}

/* client_read - replies buffered so far; returns 0 once c is gone */
static int
client_read(struct smtp_client *c)
{
	char *line, esc[120];
	size_t len;
	int toolong, code, last;
	const char *text;

	while (!c->finished && (line = io_getline(c->io, CLIENT_REPLY_MAX, &len, &toolong)) != NULL) {
		if ((text = smtp_reply_parse_line(line, &code, &last)) == NULL) {
			client_fail(c, "not an SMTP reply in %s: %s", strstate(c->state),
			    log_escape(esc, sizeof(esc), line, 80));
			return 0;
		}
		if (c->text[0] != '\0' && code != c->code) {
			client_fail(c, "a reply mixes codes %d and %d in %s", c->code, code,
			    strstate(c->state));
			return 0;
		}
		c->code = code;
		if (++c->lines > SMTP_REPLY_MAX_LINES) {
			client_fail(c, "a reply of more than %d lines in %s", SMTP_REPLY_MAX_LINES,
			    strstate(c->state));
			return 0;
		}
		if (c->state == CLIENT_EHLO && code / 100 == 2 && c->text[0] != '\0')
			client_ehlo_line(c, text);
		if (c->text[0] == '\0' || last)
			snprintf(c->text, sizeof(c->text), "%d %s", code, log_escape(esc,
			    sizeof(esc), text, 100));
		if (!last)
			continue;
		c->lines = 0;
		client_reply(c, code);
		if (c->finished)
			return 0;
		c->text[0] = '\0';
	}
	if (!c->finished && toolong) {
		client_fail(c, "reply line too long in %s", strstate(c->state));
		return 0;
	}
	return !c->finished;
}

/* client_event - what one io event means in the current state */
/* client_log_tls - Postfix's line: "Verified" when the certificate chained
 * and matched the name (the handshake fails otherwise), "Untrusted" when
 * it was not checked (tls may, tls encrypt) */
static void
client_log_tls(struct smtp_client *c)
{
	char info[128], *colon;

	if (io_tls_info(c->io, info, sizeof(info)) == NULL)
		return;
	if ((colon = strchr(info, ':')) != NULL)
		*colon++ = '\0';
	log_role(c->p.log_role, "%s TLS connection established to %s: %s with cipher %s",
	    c->p.tls_verify_name != NULL ? "Verified" : "Untrusted",
	    c->p.log_peer != NULL ? c->p.log_peer : c->p.peer_name, info,
	    colon != NULL ? colon : "?");
}

static void
client_event(struct smtp_client *c, struct io *io, enum io_event ev)
{
	switch (ev) {
	case IO_DATAIN:
		client_read(c);
		return;
	case IO_LOWAT:
		if (c->state == CLIENT_BODY)
			client_body(c);
		return;
	case IO_TLSREADY:
		client_log_tls(c);
		client_ehlo(c);		/* RFC 3207 4.2: start over */
		return;
	case IO_TIMEOUT:
		client_fail(c, "timeout in %s", strstate(c->state));
		return;
	case IO_DISCONNECTED:
		if (c->state == CLIENT_QUIT)
			client_finish(c, NULL);
		else
			client_fail(c, "connection lost in %s", strstate(c->state));
		return;
	case IO_ERROR:
		client_fail(c, "%s in %s", io_error(io), strstate(c->state));
		return;
	case IO_CONNECTED:
		return;
	}
}

static void
client_io_event(struct io *io, enum io_event ev, void *arg)
{
	struct smtp_client *c = arg;

	client_event(c, io, ev);
	if (c->finished)
		free(c);
}

struct smtp_client *
smtp_client_start(struct io *io, const struct smtp_client_params *p,
    const struct smtp_client_ops *ops, void *arg)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->io = io;
	c->p = *p;
	c->p.tls_required |= p->tls_verify_name != NULL;
	c->ops = ops;
	c->arg = arg;
	io_set_callback(io, client_io_event, c);
	/* Nothing is buffered in io at this point: the ODMR provider refuses
	 * an ATRN with bytes after it (554), so the customer's 220 comes as
	 * a read event like any greeting. */
	client_enter(c, CLIENT_BANNER, p->timeout_banner);
	return c;
}

void
smtp_client_resume(struct smtp_client *c)
{
	if (c->state == CLIENT_BODY && !c->finished)
		client_body(c);
	else if (c->state == CLIENT_READY && c->waiting && !c->finished) {
		c->waiting = 0;
		client_next(c);
	}
	if (c->finished)
		free(c);
}

void
smtp_client_abort(struct smtp_client *c, const char *why)
{
	client_fail(c, "%s", why);
	free(c);
}
