/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * milter.c - the milter client state machine; see milter.h.
 *
 * SECURITY: the filter is trusted to judge mail, not to be well-behaved:
 * its packets are bounded (MILTER_REPLY_MAX) and parsed by
 * milter_proto.c, a reply that does not fit the stage fails the job, and
 * every wait has a timeout, so a broken filter costs one message its
 * default action and never the session or spoold.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "headers.h"
#include "io.h"
#include "log.h"
#include "milter.h"
#include "smtp_cmd.h"

enum mstate {
	M_CONNECTING,		/* dialling the filter */
	M_OPTNEG,		/* our options sent, its answer awaited */
	M_CONNECT,		/* the stages, in order */
	M_HELO,
	M_MAIL,
	M_RCPT,
	M_DATA,
	M_HEADER,
	M_EOH,
	M_BODY,
	M_EOB,			/* changes and the final verdict awaited */
	M_DONE,
};

struct milter_job {
	struct ev_loop			*loop;
	const struct milter_target	*t;
	const struct milter_input	*in;
	milter_done_cb			*done;
	void				*arg;
	struct io			*io;
	enum mstate			 state;
	int				 waiting;	/* for a reply to the last packet */
	uint32_t			 actions, protocol;	/* negotiated */
	size_t				 rcpt;		/* M_RCPT: the one sent */
	char				*headers;	/* the header block, read whole */
	size_t				 hlen, hpos;	/* its length; M_HEADER: next line */
	uint64_t			 body_off;	/* M_BODY: next chunk */
	ev_timer			 later;		/* a failure at the start, from the loop */
	ev_timer			 reap;		/* the free, after the callers up the stack */
	char				 later_why[120];
	struct milter_result		*res;
	struct buf			 out;
};

static void job_step(struct milter_job *);

static const char *
strstate(enum mstate st)
{
	static const char *const names[] = { "M_CONNECTING", "M_OPTNEG", "M_CONNECT", "M_HELO",
	    "M_MAIL", "M_RCPT", "M_DATA", "M_HEADER", "M_EOH", "M_BODY", "M_EOB", "M_DONE" };

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "M_?";
}

static void
job_enter(struct milter_job *j, enum mstate st)
{
	if (log_verbose() > 1)
		log_debug("%s milter %s state %s -> %s", j->in->queue_id, j->t->name,
		    strstate(j->state), strstate(st));
	j->state = st;
}

void
milter_result_free(struct milter_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nchanges; i++) {
		free(r->changes[i].name);
		free(r->changes[i].value);
	}
	free(r->changes);
	free(r->rcpt_rejected);
	buf_free(&r->body);
	free(r);
}

static void
job_free(struct milter_job *j)
{
	ev_timer_stop(j->loop, &j->later);
	ev_timer_stop(j->loop, &j->reap);
	if (j->io != NULL)
		io_free(j->io);
	buf_free(&j->out);
	free(j->headers);
	milter_result_free(j->res);
	free(j);
}

/* job_finish - the verdict is in (or the job failed): tell the caller */
static void
job_finish(struct milter_job *j, enum milter_verdict v, const char *why)
{
	struct milter_result *r = j->res;

	static const unsigned char quit[5] = { 0, 0, 0, 1, MILTER_QUIT };

	if (j->state == M_DONE)
		return;
	/* SMFIC_QUIT once the filter spoke (libmilter takes a close as much,
	 * but other filters log it): 5 bytes into an idle socket's buffer, so
	 * written at once or not at all, never waited for */
	if (j->io != NULL && j->state > M_OPTNEG)
		(void)io_send_last(j->io, quit, sizeof(quit));	/* -1: it has gone */
	job_enter(j, M_DONE);
	if (j->io != NULL) {
		io_free(j->io);
		j->io = NULL;
	}
	r->verdict = v;
	if (why != NULL)
		snprintf(r->reply, sizeof(r->reply), "%s", why);
	j->res = NULL;
	j->done(j->arg, r);
	/* freed from the loop: the reply parser up the stack still holds j
	 * (and sees M_DONE) */
	ev_timer_start(j->loop, &j->reap);
}

static void
job_reap(struct ev_loop *loop, ev_timer *w, int revents)
{
	job_free(w->data);
}

/* job_fail - the filter misbehaved or went away: the default action */
static void
job_fail(struct milter_job *j, const char *why)
{
	log_warnx("%s milter %s: %s in %s", j->in->queue_id, j->t->name, why, strstate(j->state));
	job_finish(j, MILTER_FAILED, why);
}

/* ---- sending ---- */

/* job_send - what was put into out goes to the filter; a reply is awaited
 * when expect (with the command timeout, or the eom one at M_EOB) */
static void
job_send(struct milter_job *j, int expect)
{
	io_write(j->io, buf_head(&j->out), buf_used(&j->out));
	buf_clear(&j->out);
	j->waiting = expect;
	if (expect)
		io_set_timeout(j->io, j->state == M_EOB ? j->t->timeout_eom :
		    j->t->timeout_command, 0);
}

static int
put_macro(struct milter_job *j, char stage, const char *name, const char *value)
{
	return milter_put_macros(&j->out, stage, &name, &value, 1);
}

static int
put_connect_macros(struct milter_job *j)
{
	const struct milter_input *in = j->in;
	char port[8];
	const char *names[] = { "j", "_", "{daemon_name}", "{client_addr}", "{client_port}",
	    "{client_name}" };
	char self[600];
	const char *values[6];

	snprintf(port, sizeof(port), "%d", in->client_port);
	snprintf(self, sizeof(self), "%s [%s]", in->client_name, in->client_addr);
	values[0] = in->hostname;
	values[1] = self;
	values[2] = "spoold";
	values[3] = in->client_addr;
	values[4] = port;
	values[5] = in->client_name;
	return milter_put_macros(&j->out, MILTER_CONNECT, names, values, 6);
}

/* What one step did: */
enum step {
	STEP_NEXT,	/* the stage is over (sent unanswered, or left out): the next one */
	STEP_WAIT,	/* sent; the reply decides */
	STEP_MORE,	/* a piece of a repeated stage sent unanswered: this stage again */
	STEP_NOMEM,
	STEP_BADMSG,	/* the message's header block is not "Name: value" lines */
};

/* sent - what to do after a packet of a stage whose reply flag is nr */
static enum step
sent(struct milter_job *j, uint32_t nr, enum step unanswered)
{
	job_send(j, !(j->protocol & nr));
	return j->waiting ? STEP_WAIT : unanswered;
}

static enum step
step_connect(struct milter_job *j)
{
	const struct milter_input *in = j->in;

	if (j->protocol & MILTER_P_NOCONNECT)
		return STEP_NEXT;
	if (put_connect_macros(j) == -1 || milter_put_connect(&j->out, in->client_name,
	    in->client_family, (uint16_t)in->client_port, in->client_addr) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_CONN, STEP_NEXT);
}

static enum step
step_helo(struct milter_job *j)
{
	const char *names[] = { "{tls_version}", "{cipher}", "{auth_authen}" };
	const char *values[] = { j->in->tls_version, j->in->cipher, j->in->auth_authen };

	if (j->protocol & MILTER_P_NOHELO)
		return STEP_NEXT;
	if (milter_put_macros(&j->out, MILTER_HELO, names, values, 3) == -1 ||
	    milter_put_strings(&j->out, MILTER_HELO, &j->in->helo, 1) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_HELO, STEP_NEXT);
}

/* put_path - MAIL or RCPT with "<addr>" */
static int
put_path(struct milter_job *j, char cmd, const char *addr)
{
	char path[SMTP_PATH_MAX * 2 + 4];
	const char *args[1] = { path };

	snprintf(path, sizeof(path), "<%s>", addr);
	return milter_put_strings(&j->out, cmd, args, 1);
}

static enum step
step_mail(struct milter_job *j)
{
	/* one MACRO packet a stage: libmilter keeps only the last */
	const char *names[] = { "i", "{mail_addr}" };
	const char *values[] = { j->in->queue_id, j->in->sender };

	if (j->protocol & MILTER_P_NOMAIL)
		return STEP_NEXT;
	if (milter_put_macros(&j->out, MILTER_MAIL, names, values, 2) == -1 ||
	    put_path(j, MILTER_MAIL, j->in->sender) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_MAIL, STEP_NEXT);
}

/* step_rcpt - the next recipient (j->rcpt counts those sent) */
static enum step
step_rcpt(struct milter_job *j)
{
	const char *to;

	if ((j->protocol & MILTER_P_NORCPT) || j->rcpt >= j->in->nrcpts)
		return STEP_NEXT;
	to = j->in->rcpts[j->rcpt++];
	if (put_macro(j, MILTER_RCPT, "{rcpt_addr}", to) == -1 || put_path(j, MILTER_RCPT, to) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_RCPT, STEP_MORE);
}

static enum step
step_data(struct milter_job *j)
{
	if (j->protocol & MILTER_P_NODATA)
		return STEP_NEXT;
	if (milter_put(&j->out, MILTER_DATA, NULL, 0) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_DATA, STEP_NEXT);
}

static enum step
step_header(struct milter_job *j)
{
	struct header_line hl;
	const char *value;
	size_t vlen;
	char *h;
	int rc;

	if ((rc = header_next(j->headers, j->hlen, &j->hpos, &hl)) <= 0)
		return rc == 0 ? STEP_NEXT : STEP_BADMSG;
	if (j->protocol & MILTER_P_NOHDRS)
		return STEP_MORE;	/* read past, nothing sent */
	value = hl.value;
	vlen = hl.valuelen;
	if (!(j->protocol & MILTER_P_HDR_LEADSPC) && vlen > 0 && *value == ' ') {
		value++;
		vlen--;
	}
	if ((h = malloc(hl.namelen + vlen + 2)) == NULL)
		return STEP_NOMEM;
	memcpy(h, hl.name, hl.namelen);
	h[hl.namelen] = '\0';
	memcpy(h + hl.namelen + 1, value, vlen);
	h[hl.namelen + 1 + vlen] = '\0';
	rc = milter_put(&j->out, MILTER_HEADER, h, hl.namelen + vlen + 2);
	free(h);
	if (rc == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_HDR, STEP_MORE);
}

static enum step
step_eoh(struct milter_job *j)
{
	if (j->protocol & MILTER_P_NOEOH)
		return STEP_NEXT;
	if (milter_put(&j->out, MILTER_EOH, NULL, 0) == -1)
		return STEP_NOMEM;
	return sent(j, MILTER_P_NR_EOH, STEP_NEXT);
}

/* step_body - the next chunk of the body (after the header block) */
static enum step
step_body(struct milter_job *j)
{
	uint64_t size = j->in->body->size;
	size_t n;
	char *chunk;
	int rc;

	if ((j->protocol & MILTER_P_NOBODY) || j->body_off >= size)
		return STEP_NEXT;
	n = size - j->body_off > MILTER_CHUNK ? MILTER_CHUNK : (size_t)(size - j->body_off);
	if ((chunk = malloc(n)) == NULL)
		return STEP_NOMEM;
	rc = msgbody_read(j->in->body, j->body_off, chunk, n) == -1 ? -1 :
	    milter_put(&j->out, MILTER_BODY, chunk, n);
	free(chunk);
	if (rc == -1)
		return STEP_NOMEM;
	j->body_off += n;
	return sent(j, MILTER_P_NR_BODY, STEP_MORE);
}

static enum step
step_eob(struct milter_job *j)
{
	if (put_macro(j, MILTER_EOB, "i", j->in->queue_id) == -1 ||
	    milter_put(&j->out, MILTER_EOB, NULL, 0) == -1)
		return STEP_NOMEM;
	job_send(j, 1);
	return STEP_WAIT;
}

static enum step
step(struct milter_job *j)
{
	switch (j->state) {
	case M_CONNECT:	return step_connect(j);
	case M_HELO:	return step_helo(j);
	case M_MAIL:	return step_mail(j);
	case M_RCPT:	return step_rcpt(j);
	case M_DATA:	return step_data(j);
	case M_HEADER:	return step_header(j);
	case M_EOH:	return step_eoh(j);
	case M_BODY:	return step_body(j);
	case M_EOB:	return step_eob(j);
	case M_CONNECTING:
	case M_OPTNEG:
	case M_DONE:
		break;
	}
	return STEP_WAIT;
}

/* job_step - send stages until one awaits a reply */
static void
job_step(struct milter_job *j)
{
	while (!j->waiting && j->state >= M_CONNECT && j->state < M_DONE) {
		switch (step(j)) {
		case STEP_NEXT:
			if (j->in->rcpt_only && j->state == M_RCPT) {
				job_finish(j, MILTER_PASS, NULL);
				return;
			}
			job_enter(j, j->state + 1);
			break;
		case STEP_MORE:
		case STEP_WAIT:
			break;
		case STEP_NOMEM:
			job_fail(j, "out of memory");
			return;
		case STEP_BADMSG:
			job_fail(j, "the message's header block is not Name: value lines");
			return;
		}
	}
}

/* ---- replies ---- */

/* job_refusal - a reject, tempfail or replycode: for one recipient at
 * RCPT, for the message at any other stage */
static void
job_refusal(struct milter_job *j, const struct milter_msg *m)
{
	if (m->kind == MILTER_R_REPLYCODE && !milter_replycode_ok(m->value)) {
		char why[200], esc[LOG_ESCAPE_SIZE(80)];

		snprintf(why, sizeof(why), "a reply line that may not go to a client: %s",
		    log_escape(esc, sizeof(esc), m->value, 80));
		job_fail(j, why);
		return;
	}
	if (j->state == M_RCPT) {	/* that recipient only (RFC 5321: RCPT time) */
		j->res->rcpt_rejected[j->rcpt - 1] = m->kind == MILTER_R_TEMPFAIL ? 4 :
		    m->kind == MILTER_R_REJECT ? 5 : (unsigned char)(m->value[0] - '0');
		if (m->kind == MILTER_R_REPLYCODE)
			snprintf(j->res->reply, sizeof(j->res->reply), "%s", m->value);
		return;
	}
	if (m->kind == MILTER_R_REPLYCODE)
		snprintf(j->res->reply, sizeof(j->res->reply), "%s", m->value);
	job_finish(j, m->kind == MILTER_R_REJECT ? MILTER_REJECT : m->kind == MILTER_R_TEMPFAIL ?
	    MILTER_TEMPFAIL : MILTER_REPLY, NULL);
}

/* change_allowed - the change is one we offered and it accepted */
static int
change_allowed(const struct milter_job *j, enum milter_reply kind)
{
	uint32_t need = kind == MILTER_R_ADDHEADER ? MILTER_F_ADDHDRS :
	    kind == MILTER_R_INSHEADER ? MILTER_F_ADDHDRS :
	    kind == MILTER_R_CHGHEADER ? MILTER_F_CHGHDRS :
	    kind == MILTER_R_REPLBODY ? MILTER_F_CHGBODY :
	    kind == MILTER_R_ADDRCPT ? MILTER_F_ADDRCPT | MILTER_F_ADDRCPT_PAR :
	    kind == MILTER_R_DELRCPT ? MILTER_F_DELRCPT :
	    kind == MILTER_R_CHGFROM ? MILTER_F_CHGFROM : MILTER_F_QUARANTINE;

	return (j->actions & need) != 0;
}

/* job_change - a change at the end of the message, kept for the caller */
static int
job_change(struct milter_job *j, const struct milter_msg *m)
{
	struct milter_result *r = j->res;
	struct milter_change *c;

	if (j->state != M_EOB || !change_allowed(j, m->kind))
		return -1;
	if (m->kind == MILTER_R_QUARANTINE) {
		snprintf(r->quarantine, sizeof(r->quarantine), "%s", m->name[0] ? m->name :
		    "quarantined by a filter");
		return 0;
	}
	if (m->kind == MILTER_R_REPLBODY) {
		r->body_replaced = 1;
		return buf_append(&r->body, m->data, m->len) == -1 ? -2 : 0;
	}
	if ((c = realloc(r->changes, (r->nchanges + 1) * sizeof(*c))) == NULL)
		return -2;
	r->changes = c;
	c = &r->changes[r->nchanges];
	c->kind = m->kind;
	c->index = m->index;
	c->name = strdup(m->name);
	c->value = m->value != NULL ? strdup(m->value) : NULL;
	if (c->name == NULL || (m->value != NULL && c->value == NULL)) {
		free(c->name);
		free(c->value);
		return -2;
	}
	r->nchanges++;
	return 0;
}

/* job_optneg - the filter's answer to our options: what it takes of them */
static void
job_optneg(struct milter_job *j, const struct milter_msg *m)
{
	if (m->kind != MILTER_R_OPTNEG || m->version < 2 || m->version > MILTER_VERSION) {
		job_fail(j, "no valid option negotiation");
		return;
	}
	j->actions = m->actions & MILTER_F_OFFERED;
	j->protocol = m->protocol & MILTER_P_OFFERED;
	j->waiting = 0;
	j->res->rcpt_judged = !(j->protocol & (MILTER_P_NORCPT | MILTER_P_NR_RCPT));
	if (j->in->rcpt_only && !j->res->rcpt_judged) {
		job_finish(j, MILTER_PASS, NULL);	/* it has nothing to say now */
		return;
	}
	job_enter(j, M_CONNECT);
	job_step(j);
}

/* job_reply - one packet from the filter */
static void
job_reply(struct milter_job *j, const unsigned char *p, size_t len)
{
	struct milter_msg m;
	int rc;

	milter_parse(p, len, &m);
	if (j->state == M_OPTNEG) {
		job_optneg(j, &m);
		return;
	}
	if (!j->waiting) {
		job_fail(j, "a reply nothing asked for");
		return;
	}
	switch (m.kind) {
	case MILTER_R_PROGRESS:
		io_restart_timer(j->io);
		return;
	case MILTER_R_CONTINUE:
		break;
	case MILTER_R_ACCEPT:
		job_finish(j, MILTER_PASS, NULL);	/* no more from this filter */
		return;
	case MILTER_R_DISCARD:
		job_finish(j, MILTER_DISCARD, NULL);
		return;
	case MILTER_R_REJECT:
	case MILTER_R_TEMPFAIL:
	case MILTER_R_REPLYCODE:
		job_refusal(j, &m);
		if (j->state == M_DONE)
			return;
		break;
	case MILTER_R_SKIP:
		if (j->state != M_BODY) {
			job_fail(j, "SKIP outside the body");
			return;
		}
		j->body_off = j->in->body->size;
		break;
	case MILTER_R_BAD:
	case MILTER_R_OPTNEG:
		job_fail(j, "a reply it should not send");
		return;
	default:
		if ((rc = job_change(j, &m)) == -1)
			job_fail(j, "a change it may not make here");
		else if (rc == -2)
			job_fail(j, "out of memory");
		return;		/* more may come before the verdict */
	}
	if (j->state == M_EOB || (j->in->rcpt_only && j->state == M_RCPT &&
	    j->rcpt >= j->in->nrcpts)) {	/* continue: the verdict */
		job_finish(j, MILTER_PASS, NULL);
		return;
	}
	j->waiting = 0;
	if (j->state != M_RCPT && j->state != M_HEADER && j->state != M_BODY)
		job_enter(j, j->state + 1);
	job_step(j);
}

/* job_read - every whole packet in the input buffer */
static void
job_read(struct milter_job *j)
{
	struct buf *in = io_input(j->io);
	long n;

	while (j->state != M_DONE && (n = milter_packet_len((unsigned char *)buf_head(in),
	    buf_used(in), MILTER_REPLY_MAX)) != 0) {
		if (n < 0) {
			job_fail(j, "a packet longer than 1 MiB, or empty");
			return;
		}
		job_reply(j, (unsigned char *)buf_head(in), (size_t)n);
		if (j->state == M_DONE)
			return;
		buf_consume(in, (size_t)n);
	}
	if (j->state != M_DONE)
		io_consumed(j->io);
}

static void
job_event(struct io *io, enum io_event ev, void *arg)
{
	struct milter_job *j = arg;

	switch (ev) {
	case IO_CONNECTED:
		buf_clear(&j->out);
		if (milter_put_optneg(&j->out, MILTER_F_OFFERED, MILTER_P_OFFERED) == -1) {
			job_fail(j, "out of memory");
			return;
		}
		job_enter(j, M_OPTNEG);
		job_send(j, 1);
		return;
	case IO_DATAIN:
		job_read(j);
		return;
	case IO_LOWAT:
	case IO_TLSREADY:
		return;		/* nothing waits on output; no TLS to filters */
	case IO_TIMEOUT:
		job_fail(j, j->state == M_CONNECTING ? "connect timed out" : "timed out");
		return;
	case IO_DISCONNECTED:
		job_fail(j, "closed the connection");
		return;
	case IO_ERROR:
		job_fail(j, io_error(io));
		return;
	}
}

/* ---- the message ---- */

static void
job_later(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct milter_job *j = w->data;

	job_fail(j, j->later_why);
}

struct milter_job *
milter_start(struct ev_loop *loop, const struct milter_target *t, const struct milter_input *in,
    milter_done_cb *done, void *arg)
{
	struct milter_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->res = calloc(1, sizeof(*j->res))) == NULL ||
	    (j->res->rcpt_rejected = calloc(in->nrcpts ? in->nrcpts : 1, 1)) == NULL) {
		if (j != NULL)
			milter_result_free(j->res);
		free(j);
		return NULL;
	}
	j->loop = loop;
	j->t = t;
	j->in = in;
	j->done = done;
	j->arg = arg;
	buf_init(&j->out);
	buf_init(&j->res->body);
	ev_timer_init(&j->later, job_later, 0., 0.);
	ev_timer_init(&j->reap, job_reap, 0., 0.);
	j->later.data = j->reap.data = j;
	/* a failure here is reported from the loop too, never inside the call */
	if (!in->rcpt_only && headers_read(in->body, &j->headers, &j->hlen, &j->body_off) == -1) {
		snprintf(j->later_why, sizeof(j->later_why), "the message has no header block");
		ev_timer_start(loop, &j->later);
		return j;
	}
	if ((j->io = io_connect(loop, (const struct sockaddr *)&t->ss, t->len, job_event, j)) ==
	    NULL) {
		snprintf(j->later_why, sizeof(j->later_why), "connect: %s", strerror(errno));
		ev_timer_start(loop, &j->later);
		return j;
	}
	io_set_timeout(j->io, t->timeout_connect, 0);
	return j;
}

void
milter_cancel(struct milter_job *j)
{
	job_free(j);
}
