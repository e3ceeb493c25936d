/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * control.c - the control socket: DATADIR/control.sock, mode 0600, for
 * spoolctl.  One request line, one reply line, then the connection closes.
 *
 *   flush DOMAIN   start a delivery run as an authorized ETRN would
 *   bounce ID      fail every pending recipient of message ID, with a DSN
 *                  to its sender
 *   delete ID      remove message ID, with no DSN
 *   hold DOMAIN    no spontaneous delivery runs for DOMAIN
 *   release DOMAIN spontaneous runs again
 *   release ID     queue quarantined message ID for delivery (an ID is
 *                  16 hex digits, as spoolctl prints it)
 *   unverify ADDRESS  the verify cache forgets ADDRESS (recipients
 *                  verify): its next RCPT is asked of the primary again
 *   stats          the running totals: a 250 line, then the text of GET
 *                  /metrics (Prometheus exposition format) to the end
 *
 * bounce, delete, hold, release and unverify go through the queue like every other
 * change (spoold's one writer): the reply comes once it is committed.
 * Replies begin with an SMTP-like code: 2xx done, 4xx try again, 5xx no.
 *
 * SECURITY: only the spoold user and root can connect (file mode); the
 * request is still parsed as hostile input and bounded.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bounce.h"
#include "control.h"
#include "despool.h"
#include "io.h"
#include "log.h"
#include "metrics_http.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_cmd.h"
#include "smtp_reply.h"

#define CONTROL_LINE_MAX	512
#define CONTROL_TIMEOUT		10.0

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	struct spoold_rt	*rt;		/* the running configuration */
	int			 fd;
	ev_io			 watcher;
	struct sockaddr_un	 addr;
} control = { .fd = -1 };

void
control_configure(struct spoold_rt *rt)
{
	struct spoold_rt *old = control.rt;

	control.rt = rt_ref(rt);
	if (old != NULL)
		rt_unref(old);
}

/* ctl - a reply from the table into reply, with up to two arguments */
static void
ctl(char *reply, size_t len, enum smtp_reply_id id, const char *a1, const char *a2)
{
	const char *args[2] = { a1, a2 };

	smtp_reply_text(reply, len, id, 0, args, 2);
}

/* control_flush - "flush DOMAIN": the reply line for it */
static void
control_flush(const char *arg, char *reply, size_t len)
{
	char name[SMTP_DOMAIN_MAX + 1];
	const struct domain_conf *d;
	unsigned long long queued = 0;
	const char *reason = "";
	char count[24];

	snprintf(name, sizeof(name), "%s", arg);
	if (strlen(arg) >= sizeof(name) || smtp_domain_canon(name, 1) == -1 ||
	    (d = spoold_conf_domain(control.rt->conf, name)) == NULL) {
		ctl(reply, len, R_CTL_NOT_DOMAIN, name, NULL);
		return;
	}
	switch (despool_start(d, control.rt, NULL, &queued, &reason)) {
	case DESPOOL_STARTED:
	case DESPOOL_JOINED:
		snprintf(count, sizeof(count), "%llu", queued);
		ctl(reply, len, R_CTL_FLUSH_STARTED, count, name);
		break;
	case DESPOOL_EMPTY:
		ctl(reply, len, R_CTL_FLUSH_NONE, name, NULL);
		break;
	case DESPOOL_NO_ROUTE:
	case DESPOOL_FAILED:
		ctl(reply, len, R_CTL_FLUSH_UNABLE, name, reason);
		break;
	}
	log_role(LOG_CONTROL, "flush %s: %s", name, reply);
}

/* One connection.  A bounce replies after its commit, by which time the
 * client may be gone: then io is NULL and the commit's callback frees it. */
struct control_conn {
	struct io	*io;
	int		 waiting;	/* for a commit */
	const char	*verb;		/* of the request waiting */
	uint64_t	 id;		/* bounce, delete */
	size_t		 n;		/* bounce: recipients */
	char		 domain[SMTP_DOMAIN_MAX + 1];	/* hold, release */
	char		 addr[SPOOL_VERIFY_KEY_MAX + 1];	/* unverify */
	struct metrics_waiter wait;		/* stats */
};

static void
control_reply(struct control_conn *cc, const char *reply)
{
	io_print(cc->io, reply);
	io_print(cc->io, "\n");
	io_pause_read(cc->io);	/* one request per connection */
}

/* control_answer - the change a request waited for is committed (or
 * failed): its reply, or nothing when the client has gone meanwhile */
static void
control_answer(struct control_conn *cc, const char *reply)
{
	cc->waiting = 0;
	if (cc->io == NULL) {
		free(cc);
		return;
	}
	control_reply(cc, reply);
}

/* control_committed - the change of a bounce, delete, hold or release is
 * on disk (or failed): its reply */
static void
control_committed(void *arg, enum spool_err result)
{
	struct control_conn *cc = arg;
	int by_id = cc->domain[0] == '\0';
	char what[SMTP_DOMAIN_MAX + 20], reply[400], n[40];

	if (by_id)
		snprintf(what, sizeof(what), "%016llx", (unsigned long long)cc->id);
	else
		snprintf(what, sizeof(what), "%s", cc->domain);
	snprintf(n, sizeof(n), "%zu recipient%s", cc->n, cc->n == 1 ? "" : "s");
	if (result == SPOOL_OK && strcmp(cc->verb, "bounce") == 0)
		ctl(reply, sizeof(reply), R_CTL_BOUNCED, what, n);
	else if (result == SPOOL_OK)
		ctl(reply, sizeof(reply), R_CTL_DONE, what, strcmp(cc->verb, "delete") == 0 ?
		    "deleted" : strcmp(cc->verb, "hold") == 0 ? "held" : "released");
	else if (result == SPOOL_ENOTFOUND && by_id && strcmp(cc->verb, "release") == 0)
		ctl(reply, sizeof(reply), R_CTL_NOT_QUARANTINED, what, NULL);
	else if (result == SPOOL_ENOTFOUND && by_id)
		ctl(reply, sizeof(reply), R_CTL_NO_MESSAGE, what, NULL);
	else
		ctl(reply, sizeof(reply), R_CTL_FAILED, what, spool_strerror(result));
	log_role(LOG_CONTROL, "%s %s: %s", cc->verb, what, reply);
	control_answer(cc, reply);
}

/* control_id - a queue id as spoolctl show prints it; -1 with the reply */
static int
control_id(const char *arg, uint64_t *id, char *reply, size_t len)
{
	char *end;

	*id = strtoull(arg, &end, 16);
	if (*arg == '\0' || *end != '\0' || strlen(arg) > 16) {
		ctl(reply, len, R_CTL_BAD_ID, NULL, NULL);
		return -1;
	}
	return 0;
}

/* control_delete - "delete ID": 0 when the reply comes later, else -1 with
 * the reply in reply */
static int
control_delete(struct control_conn *cc, const char *arg, char *reply, size_t len)
{
	if (control_id(arg, &cc->id, reply, len) == -1)
		return -1;
	cc->verb = "delete";
	if (queue_delete(control.queue, cc->id, control_committed, cc) == -1) {
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
		return -1;
	}
	cc->waiting = 1;
	return 0;
}

/* control_is_id - arg is a queue id as spoolctl prints it (16 hex digits):
 * "release ID" then means the quarantine, "release DOMAIN" the hold */
static int
control_is_id(const char *arg)
{
	return strlen(arg) == 16 && strspn(arg, "0123456789abcdefABCDEF") == 16;
}

/* control_release - "release ID": 0 when the reply comes later, else -1
 * with the reply in reply */
static int
control_release(struct control_conn *cc, const char *arg, char *reply, size_t len)
{
	if (control_id(arg, &cc->id, reply, len) == -1)
		return -1;
	cc->verb = "release";
	if (queue_release(control.queue, cc->id, control_committed, cc) == -1) {
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
		return -1;
	}
	cc->waiting = 1;
	return 0;
}

/* control_hold - "hold DOMAIN" (held 1) or "release DOMAIN" (0): 0 when
 * the reply comes later, else -1 with the reply in reply */
static int
control_hold(struct control_conn *cc, const char *arg, int held, char *reply, size_t len)
{
	snprintf(cc->domain, sizeof(cc->domain), "%s", arg);
	if (strlen(arg) >= sizeof(cc->domain) || smtp_domain_canon(cc->domain, 1) == -1) {
		ctl(reply, len, R_CTL_BAD_DOMAIN, NULL, NULL);
		return -1;
	}
	cc->verb = held ? "hold" : "release";
	if (queue_hold(control.queue, cc->domain, held, control_committed, cc) == -1) {
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
		return -1;
	}
	cc->waiting = 1;
	return 0;
}

/* control_unverified - an unverify is committed (or failed): its reply */
static void
control_unverified(void *arg, enum spool_err result)
{
	struct control_conn *cc = arg;
	char reply[SPOOL_VERIFY_KEY_MAX + 100];

	if (result == SPOOL_OK)
		ctl(reply, sizeof(reply), R_CTL_DONE, cc->addr, "removed from the verify cache");
	else if (result == SPOOL_ENOTFOUND)
		ctl(reply, sizeof(reply), R_CTL_NOT_VERIFIED, cc->addr, NULL);
	else
		ctl(reply, sizeof(reply), R_CTL_FAILED, cc->addr, spool_strerror(result));
	log_role(LOG_CONTROL, "unverify %s: %s", cc->addr, reply);
	control_answer(cc, reply);
}

/* control_unverify - "unverify ADDRESS": 0 when the reply comes later,
 * else -1 with the reply in reply */
static int
control_unverify(struct control_conn *cc, const char *arg, char *reply, size_t len)
{
	if (spool_verify_key_of(arg, cc->addr, sizeof(cc->addr)) == -1) {
		ctl(reply, len, R_CTL_BAD_ADDRESS, NULL, NULL);
		return -1;
	}
	if (queue_unverify(control.queue, cc->addr, control_unverified, cc) == -1) {
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
		return -1;
	}
	cc->waiting = 1;
	return 0;
}

/* control_bounce - "bounce ID": 0 when the reply comes later, else -1 with
 * the reply in reply */
static int
control_bounce(struct control_conn *cc, const char *arg, char *reply, size_t len)
{
	struct spool_envelope e;
	struct bounce_rcpt *b;
	char why[200];
	uint64_t id;
	int rc = -1;

	if (control_id(arg, &id, reply, len) == -1)
		return -1;
	if (queue_get_quarantine(control.queue, id, NULL) == SPOOL_OK) {
		char what[20];

		snprintf(what, sizeof(what), "%016llx", (unsigned long long)id);
		ctl(reply, len, R_CTL_QUARANTINED, what, NULL);
		return -1;
	}
	smtp_reply_text(why, sizeof(why), R_DSN_RETURNED, 1, NULL, 0);
	if (queue_envelope(control.queue, id, &e) != SPOOL_OK) {
		char what[20];

		snprintf(what, sizeof(what), "%016llx", (unsigned long long)id);
		ctl(reply, len, R_CTL_NO_MESSAGE, what, NULL);
		return -1;
	}
	if ((b = calloc(e.nrcpts ? e.nrcpts : 1, sizeof(*b))) == NULL) {
		spool_envelope_free(&e);
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
		return -1;
	}
	cc->id = id;
	cc->n = 0;
	for (size_t i = 0; i < e.nrcpts; i++)
		if (!e.rcpts[i].done) {
			b[cc->n].index = (unsigned)i;
			b[cc->n++].reply = why;
		}
	if (bounce_submit(&e, b, cc->n, control.rt->conf->hostname, NULL, control_committed,
	    cc) == 0) {
		cc->verb = "bounce";
		cc->waiting = 1;
		rc = 0;
	} else
		ctl(reply, len, R_CTL_NO_MEMORY, NULL, NULL);
	free(b);
	spool_envelope_free(&e);
	return rc;
}

/* control_stats_ready - "stats": the metrics text after a 250 line, the
 * same text GET /metrics serves */
static void
control_stats_ready(struct metrics_waiter *w, const struct buf *text)
{
	struct control_conn *cc = (struct control_conn *)((char *)w - offsetof(struct control_conn,
	    wait));
	char reply[200];

	cc->waiting = 0;
	if (cc->io == NULL) {	/* the client went away meanwhile */
		free(cc);
		return;
	}
	if (text == NULL) {
		ctl(reply, sizeof(reply), R_CTL_NO_STATS, NULL, NULL);
		control_reply(cc, reply);
		return;
	}
	ctl(reply, sizeof(reply), R_CTL_STATS, NULL, NULL);
	control_reply(cc, reply);
	io_write(cc->io, buf_head(text), buf_used(text));
}

/* control_request - one request line: 0 when its reply comes later (a
 * commit), else -1 with the reply in reply */
static int
control_request(struct control_conn *cc, const char *line, char *reply, size_t len)
{
	if (strcmp(line, "stats") == 0) {
		cc->wait.done = control_stats_ready;
		cc->waiting = 1;
		metrics_ask(&cc->wait);
		return 0;
	}
	if (strncmp(line, "flush ", 6) == 0) {
		control_flush(line + 6, reply, len);
		return -1;
	}
	if (strncmp(line, "bounce ", 7) == 0)
		return control_bounce(cc, line + 7, reply, len);
	if (strncmp(line, "delete ", 7) == 0)
		return control_delete(cc, line + 7, reply, len);
	if (strncmp(line, "hold ", 5) == 0)
		return control_hold(cc, line + 5, 1, reply, len);
	if (strncmp(line, "release ", 8) == 0 && control_is_id(line + 8))
		return control_release(cc, line + 8, reply, len);
	if (strncmp(line, "release ", 8) == 0)
		return control_hold(cc, line + 8, 0, reply, len);
	if (strncmp(line, "unverify ", 9) == 0)
		return control_unverify(cc, line + 9, reply, len);
	ctl(reply, len, R_CTL_UNKNOWN, NULL, NULL);
	return -1;
}

static void
control_event(struct io *io, enum io_event ev, void *arg)
{
	struct control_conn *cc = arg;
	char reply[600], *line;
	size_t len;
	int toolong;

	if (ev != IO_DATAIN) {
		io_free(io);	/* reply sent, or the client went away */
		cc->io = NULL;
		if (!cc->waiting)
			free(cc);
		return;
	}
	if ((line = io_getline(io, CONTROL_LINE_MAX, &len, &toolong)) == NULL) {
		if (toolong) {
			ctl(reply, sizeof(reply), R_CTL_TOO_LONG, NULL, NULL);
			control_reply(cc, reply);
		}
		return;
	}
	if (memchr(line, '\0', len) != NULL) {	/* "unverify a@b<NUL>..." is not a@b's */
		ctl(reply, sizeof(reply), R_CTL_UNKNOWN, NULL, NULL);
		control_reply(cc, reply);
		return;
	}
	if (control_request(cc, line, reply, sizeof(reply)) == 0) {
		io_pause_read(io);	/* the reply comes with the commit */
		return;
	}
	control_reply(cc, reply);
}

static void
control_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control_conn *cc;
	int fd;

	if ((fd = accept4(control.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return;
	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    (cc->io = io_new(loop, fd, control_event, cc)) == NULL) {
		free(cc);
		close(fd);
		return;
	}
	io_set_timeout(cc->io, CONTROL_TIMEOUT, 0);
}

int
control_open(struct ev_loop *loop, struct queue *q, struct spoold_rt *rt, const char *datadir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	control.loop = loop;
	control.queue = q;
	control_configure(rt);

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", datadir) >=
	    sizeof(sun.sun_path)) {
		log_warnx("control socket: datadir path too long; spoolctl flush and bounce will not "
		    "work");
		return -1;
	}
	(void)unlink(sun.sun_path);	/* left by a spoold killed with -9 */
	if ((control.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(control.fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(sun.sun_path, 0600) == -1 || listen(control.fd, 16) == -1) {
		log_warn("control socket %s", sun.sun_path);
		if (control.fd != -1)
			close(control.fd);
		control.fd = -1;
		return -1;
	}
	control.addr = sun;
	ev_io_init(&control.watcher, control_accept, control.fd, EV_READ);
	ev_io_start(loop, &control.watcher);
	return 0;
}

void
control_close(void)
{
	if (control.rt != NULL)
		rt_unref(control.rt);
	control.rt = NULL;
	if (control.fd == -1)
		return;
	ev_io_stop(control.loop, &control.watcher);
	close(control.fd);
	(void)unlink(control.addr.sun_path);
	control.fd = -1;
}
