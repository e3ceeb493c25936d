/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_queue.c - unit tests for spoold's loop-side modules, linked alone
 * (they form no cycle): the queue owner (spoold/queue.c), bounce
 * composition (spoold/bounce.c) and the delivery run's state machine
 * (spoold/despool.c), each over a temp spool and a private ev_loop.  The
 * site a run delivers to is the shared SMTP server engine on a loopback
 * port in this process, answering by recipient: "nobody" 550, "later" 451,
 * anyone else 250.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bounce.h"
#include "despool.h"
#include "log.h"
#include "queue.h"
#include "runtime.h"
#include "smtp_cmd.h"
#include "smtp_server.h"
#include "spool.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- fixture: a spool, a queue, a loop, a configuration ---- */

static char dir[64];
static struct ev_loop *loop;
static struct spool *sp;
static struct queue *q;
static struct spoold_rt *rt;
static int storage_failures;
static char queued_for[8][64];
static size_t nqueued;

/* the site: a listening socket and what it was sent */
static int site_fd = -1, site_port;
static ev_io site_watcher;
static unsigned site_messages;
/* site_hold: the site keeps its reply to the dot until site_release() */
static int site_hold;
static struct smtp_session *site_waiting;
static struct smtp_server_config site_cfg = {
	.hostname = "site-peer.test", .max_message_size = 10 * 1024 * 1024, .max_recipients = 100,
	.max_errors = 20, .timeout_idle = 10, .timeout_data = 10, .timeout_tls = 10,
	.spill_threshold = 1024 * 1024,
};

static void
on_storage_failed(void *arg, const char *what)
{
	storage_failures++;
}

static void
on_queued(void *arg, const char *domain)
{
	if (nqueued < NELEM(queued_for))
		snprintf(queued_for[nqueued++], sizeof(queued_for[0]), "%s", domain);
}

static int
never_self(const struct sockaddr *sa)
{
	return 0;
}

static void
remove_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
}

static void
remove_dir(void)
{
	remove_files();
	rmdir(dir);
}

/* open_queue - the queue over the spool in dir, as spoold.c wires it */
static void
open_queue(uint64_t max_size)
{
	static const struct queue_hooks hooks = {
		.storage_failed = on_storage_failed, .queued = on_queued,
	};
	char err[256] = "";

	ck_assert_int_eq(spool_open(&sp, dir, max_size, 0, err, sizeof(err)), SPOOL_OK);
	ck_assert_ptr_nonnull(q = queue_open(loop, sp, &hooks, err, sizeof(err)));
	bounce_init(q);
	despool_init(loop, q, NULL, never_self);
}

static void
close_queue(void)
{
	unsigned long long m, b;

	despool_close();
	queue_close(q, &m, &b);
	spool_close(sp);
	q = NULL;
	sp = NULL;
}

/* spoold.conf for the tests: the site's domain delivers to the site */
#define SITE_CONF \
    "hostname mx.test\n" \
    "datadir %s\n" \
    "listen smtp 127.0.0.1:0\n" \
    "domain site.test {\n" \
    "    etrn-from 127.0.0.1\n" \
    "    deliver-to [127.0.0.1]:%d\n" \
    "    recipients any\n" \
    "}\n"

/* configure - SITE_CONF with the spool's directory and the site's port */
static void
configure(void)
{
	char buf[2048], err[256];
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;

	snprintf(buf, sizeof(buf), SITE_CONF, dir, site_port);
	cf = spoold_conf_parse_text("test.conf", buf, &errs);
	ck_assert_msg(cf != NULL, "config: %s", errs.count ? errs.msgs[0] : "?");
	conf_errors_free(&errs);
	ck_assert_ptr_nonnull(rt = rt_new(cf, NULL, err, sizeof(err)));
}

static void site_start(void);
static void site_stop(void);

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/spoold-test-queue-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	loop = ev_loop_new(EVFLAG_AUTO);
	storage_failures = 0;
	nqueued = 0;
	site_messages = 0;
	site_hold = 0;
	site_waiting = NULL;
	site_start();
	configure();
	open_queue(64 * 1024 * 1024);
}

static void
teardown(void)
{
	close_queue();
	site_stop();
	rt_unref(rt);
	ev_loop_destroy(loop);
	remove_dir();
}

/* ---- the loop ---- */

static void
tick(struct ev_loop *l, ev_timer *w, int revents)
{
}

/* spin_until - run the loop until pred() or 10 s */
static int
spin_until(int (*pred)(void))
{
	ev_timer t;
	ev_tstamp until = ev_now(loop) + 10;

	ev_timer_init(&t, tick, 0.01, 0.01);
	ev_timer_start(loop, &t);
	while (!pred() && ev_now(loop) < until)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	return pred();
}

static int
nothing_pending(void)
{
	return queue_pending(q) == 0;
}

static int
site_idle(void)
{
	return !despool_busy("site.test") && queue_pending(q) == 0;
}

/* ---- the site ---- */

static enum smtp_reply_id
site_check_rcpt(void *arg, struct smtp_session *s, const struct smtp_rcpt *r, const char **a)
{
	if (strcmp(r->to.local, "nobody") == 0)
		return R_UNKNOWN_USER;
	if (strcmp(r->to.local, "later") == 0)
		return R_STORAGE_ERROR;
	return R_RCPT_OK;
}

static uint64_t
site_new_id(void *arg)
{
	return site_messages + 1;
}

static void
site_message(void *arg, struct smtp_session *s, struct smtp_message *m)
{
	site_messages++;
	smtp_message_free(m);
	if (site_hold) {
		site_waiting = s;
		return;
	}
	smtp_session_message_done(s, R_QUEUED, "1");
}

static int
site_has_waiting(void)
{
	return site_waiting != NULL;
}

static void
site_release(void)
{
	site_hold = 0;
	smtp_session_message_done(site_waiting, R_QUEUED, "1");
	site_waiting = NULL;
}

static const struct smtp_server_ops site_ops = {
	.check_rcpt = site_check_rcpt, .new_id = site_new_id, .message = site_message,
};

static void
site_accept(struct ev_loop *l, ev_io *w, int revents)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(site_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd != -1 && smtp_session_new(l, fd, (struct sockaddr *)&ss, &site_cfg, &site_ops, NULL,
	    R__COUNT) == NULL)
		close(fd);
}

static void
site_start(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ne(site_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), -1);
	ck_assert_int_eq(bind(site_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(site_fd, 16), 0);
	ck_assert_int_eq(getsockname(site_fd, (struct sockaddr *)&sin, &len), 0);
	site_port = ntohs(sin.sin_port);
	ev_io_init(&site_watcher, site_accept, site_fd, EV_READ);
	ev_io_start(loop, &site_watcher);
}

/* site_down - nothing listens on the site's port any more */
static void
site_stop(void)
{
	if (site_fd == -1)
		return;
	ev_io_stop(loop, &site_watcher);
	close(site_fd);
	site_fd = -1;
}

/* ---- storing through the queue ---- */

struct stored {
	struct commit_req	 req;		/* first: done() gets it back */
	struct spool_rcpt	 rcpts[4];
	const char		*body;
	enum spool_err		 result;
	int			 done;
};

static int
stored_body(void *arg, uint64_t off, void *dst, size_t len)
{
	struct stored *st = arg;

	memcpy(dst, st->body + off, len);
	return 0;
}

static void
stored_done(struct commit_req *req)
{
	struct stored *st = (struct stored *)req;

	st->result = req->result;
	st->done = 1;
}

/* store_submit - one message from sender to rcpts (NULL-terminated) to
 * the queue; notify applies to every recipient; free it once done */
static struct stored *
store_submit(const char *sender, const char *const *rcpts, unsigned notify, const char *body)
{
	struct stored *st = calloc(1, sizeof(*st));
	struct spool_envelope *e;
	uint64_t id = queue_new_id(q);
	size_t n = 0;

	ck_assert_ptr_nonnull(st);
	e = &st->req.msg.env;
	while (rcpts[n] != NULL) {
		st->rcpts[n] = (struct spool_rcpt){ .addr = rcpts[n], .orcpt_type = "",
		    .orcpt = "", .notify = notify };
		n++;
	}
	*e = (struct spool_envelope){ .id = id, .arrival = 1000 + (int64_t)id,
	    .size = strlen(body), .sender = sender, .envid = "", .client = "192.0.2.1",
	    .helo = "client.test", .rcpts = st->rcpts, .nrcpts = n };
	st->body = body;
	st->req.kind = COMMIT_STORE;
	st->req.msg.read_body = stored_body;
	st->req.msg.body_arg = st;
	st->req.done = stored_done;
	queue_submit(q, &st->req);
	return st;
}

/* store - the same, committed; its id */
static uint64_t
store(const char *sender, const char *const *rcpts, unsigned notify, const char *body)
{
	struct stored *st = store_submit(sender, rcpts, notify, body);
	uint64_t id = st->req.msg.env.id;

	ck_assert(spin_until(nothing_pending));
	ck_assert_msg(st->result == SPOOL_OK, "store: %s", spool_strerror(st->result));
	free(st);
	return id;
}

static uint64_t
messages_in(const char *domain)
{
	struct spool_counters c;

	ck_assert_int_eq(queue_counters(q, domain, &c), SPOOL_OK);
	return c.messages;
}

static const char body[] = "Subject: test\r\n\r\nhello\r\n";

/* deliver - start a run for site.test and wait until it is over */
static enum despool_start
deliver(void)
{
	const struct domain_conf *d = spoold_conf_domain(rt->conf, "site.test");
	unsigned long long queued = 0;
	const char *reason = "";
	enum despool_start st;

	ck_assert_ptr_nonnull(d);
	st = despool_start(d, rt, NULL, &queued, &reason);
	ck_assert_msg(spin_until(site_idle), "the run did not end");
	return st;
}

/* route_of - the delivery history of domain */
static void
route_of(const char *domain, struct spool_route *r)
{
	ck_assert_int_eq(queue_route(q, domain, r), SPOOL_OK);
}

/* ---- the queue owner ---- */

/* ids are handed out in one place, and carry on after a restart */
START_TEST(test_queue_ids)
{
	static const char *const to[] = { "a@site.test", NULL };
	uint64_t first = queue_peek_id(q), id;

	ck_assert_uint_eq(queue_new_id(q), first);
	ck_assert_uint_eq(queue_peek_id(q), first + 1);
	id = store("s@x.test", to, 0, body);
	close_queue();
	open_queue(64 * 1024 * 1024);
	ck_assert_uint_gt(queue_peek_id(q), id);
}
END_TEST

/* a store that finds the spool full stops new mail at MAIL for a while;
 * the next one that fits lets it in again; neither is a storage failure */
START_TEST(test_queue_full_policy)
{
	static const char *const to[] = { "a@site.test", NULL };
	size_t big = 3 * 1024 * 1024;
	char *huge = malloc(big + 1);
	struct stored st = { 0 };

	close_queue();
	remove_files();			/* a new spool: a map never grown */
	open_queue(1024 * 1024);	/* max-spool-size 1M */
	ck_assert(queue_accepting(q));
	memset(huge, 'x', big);
	huge[big] = '\0';
	st.rcpts[0] = (struct spool_rcpt){ .addr = to[0], .orcpt_type = "", .orcpt = "" };
	st.req.msg.env = (struct spool_envelope){ .id = queue_new_id(q), .arrival = 1, .size = big,
	    .sender = "s@x.test", .envid = "", .client = "", .helo = "", .rcpts = st.rcpts,
	    .nrcpts = 1 };
	st.body = huge;
	st.req.kind = COMMIT_STORE;
	st.req.msg.read_body = stored_body;
	st.req.msg.body_arg = &st;
	st.req.done = stored_done;
	queue_submit(q, &st.req);
	ck_assert(spin_until(nothing_pending));
	ck_assert_int_eq(st.result, SPOOL_EFULL);
	ck_assert(!queue_accepting(q));
	store("s@x.test", to, 0, body);
	ck_assert(queue_accepting(q));
	ck_assert_int_eq(storage_failures, 0);
	free(huge);
}
END_TEST

/* spoolctl's hold and delete, as the control socket submits them */
static enum spool_err op_result;
static int op_done;

static void
op_finished(void *arg, enum spool_err result)
{
	op_result = result;
	op_done = 1;
}

static int
op_is_done(void)
{
	return op_done;
}

START_TEST(test_queue_hold_delete)
{
	static const char *const to[] = { "a@site.test", NULL };
	struct spool_route r;
	uint64_t id = store("s@x.test", to, 0, body);

	op_done = 0;
	ck_assert_int_eq(queue_hold(q, "site.test", 1, op_finished, NULL), 0);
	ck_assert(spin_until(op_is_done));
	ck_assert_int_eq(op_result, SPOOL_OK);
	route_of("site.test", &r);
	ck_assert(r.flags & ROUTE_HELD);
	spool_route_free(&r);
	op_done = 0;
	ck_assert_int_eq(queue_delete(q, id, op_finished, NULL), 0);
	ck_assert(spin_until(op_is_done));
	ck_assert_int_eq(op_result, SPOOL_OK);
	ck_assert_uint_eq(messages_in("site.test"), 0);
	op_done = 0;
	ck_assert_int_eq(queue_delete(q, id, op_finished, NULL), 0);
	ck_assert(spin_until(op_is_done));
	ck_assert_int_eq(op_result, SPOOL_ENOTFOUND);
}
END_TEST

/* ---- bounce composition ---- */

struct dsn_find {
	uint64_t	 id;
	char		 rcpt[128];
};

static int
find_dsn(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *qe,
    size_t n, void *arg)
{
	struct dsn_find *f = arg;

	ck_assert_str_eq(e->sender, "");	/* RFC 3461: notifications come from <> */
	f->id = e->id;
	snprintf(f->rcpt, sizeof(f->rcpt), "%s", e->rcpts[idx[0]].addr);
	return 1;
}

/* body_has - the stored body of id contains text */
static int
body_has(uint64_t id, const char *text)
{
	struct spool_envelope e;
	char *b;
	int found;

	ck_assert_int_eq(queue_envelope(q, id, &e), SPOOL_OK);
	b = calloc(1, (size_t)e.size + 1);
	ck_assert_int_eq(queue_read_body(q, id, 0, b, (size_t)e.size), SPOOL_OK);
	found = strstr(b, text) != NULL;
	free(b);
	spool_envelope_free(&e);
	return found;
}

static int bounced;

static void
bounce_done(void *arg, enum spool_err result)
{
	ck_assert_int_eq(result, SPOOL_OK);
	bounced = 1;
}

static int
bounce_is_done(void)
{
	return bounced;
}

/* fail_all - bounce every recipient of id with reply */
static void
fail_all(uint64_t id, const char *reply)
{
	struct spool_envelope e;
	struct bounce_rcpt b[4];

	ck_assert_int_eq(queue_envelope(q, id, &e), SPOOL_OK);
	for (size_t i = 0; i < e.nrcpts; i++)
		b[i] = (struct bounce_rcpt){ (unsigned)i, reply };
	bounced = 0;
	ck_assert_int_eq(bounce_submit(&e, b, e.nrcpts, "mx.test", NULL, bounce_done, NULL), 0);
	spool_envelope_free(&e);
	ck_assert(spin_until(bounce_is_done));
}

/* the recipients leave with one DSN to the sender, queued under the
 * sender's domain in the same transaction; the queue says so */
START_TEST(test_bounce_one_dsn)
{
	static const char *const to[] = { "a@site.test", "b@site.test", NULL };
	struct dsn_find f = { 0 };
	uint64_t id = store("sender@elsewhere.test", to, 0, body);

	fail_all(id, "550 5.1.1 no such user");
	ck_assert_uint_eq(messages_in("site.test"), 0);
	ck_assert_uint_eq(messages_in("elsewhere.test"), 1);
	ck_assert_int_eq(queue_walk(q, "elsewhere.test", find_dsn, &f), SPOOL_OK);
	ck_assert_str_eq(f.rcpt, "sender@elsewhere.test");
	ck_assert(body_has(f.id, "Final-Recipient: rfc822; a@site.test"));
	ck_assert(body_has(f.id, "Final-Recipient: rfc822; b@site.test"));
	ck_assert(body_has(f.id, "Reporting-MTA: dns; mx.test"));
	ck_assert_uint_eq(nqueued, 1);
	ck_assert_str_eq(queued_for[0], "elsewhere.test");
}
END_TEST

/* NOTIFY=NEVER and mail from <> get no DSN; the recipients go all the same */
START_TEST(test_bounce_no_dsn)
{
	static const char *const to[] = { "a@site.test", NULL };
	uint64_t never = store("sender@elsewhere.test", to, NOTIFY_NEVER, body);
	uint64_t null = store("", to, 0, body);

	fail_all(never, "550 5.1.1 no such user");
	fail_all(null, "550 5.1.1 no such user");
	ck_assert_uint_eq(messages_in("site.test"), 0);
	ck_assert_uint_eq(messages_in("elsewhere.test"), 0);
	ck_assert_uint_eq(nqueued, 0);
}
END_TEST

/* ---- the delivery run ---- */

/* everything delivered: the spool empties, the session counts as good */
START_TEST(test_run_delivers)
{
	static const char *const to[] = { "a@site.test", NULL };
	struct spool_route r;

	for (int i = 0; i < 3; i++)
		store("s@x.test", to, 0, body);
	ck_assert_int_eq(deliver(), DESPOOL_STARTED);
	ck_assert_uint_eq(site_messages, 3);
	ck_assert_uint_eq(messages_in("site.test"), 0);
	route_of("site.test", &r);
	ck_assert_uint_eq(r.failures, 0);
	ck_assert_str_eq(r.last_error, "");
	spool_route_free(&r);
	ck_assert_int_eq(storage_failures, 0);
}
END_TEST

/* a 550 for one recipient bounces it with a DSN (Remote-MTA: the site);
 * the other is delivered */
START_TEST(test_run_refused)
{
	static const char *const to[] = { "nobody@site.test", "ok@site.test", NULL };
	struct dsn_find f = { 0 };

	store("sender@elsewhere.test", to, 0, body);
	deliver();
	ck_assert_uint_eq(site_messages, 1);
	ck_assert_uint_eq(messages_in("site.test"), 0);
	ck_assert_int_eq(queue_walk(q, "elsewhere.test", find_dsn, &f), SPOOL_OK);
	ck_assert(body_has(f.id, "Final-Recipient: rfc822; nobody@site.test"));
	ck_assert(body_has(f.id, "Remote-MTA: dns; [127.0.0.1]"));
	ck_assert(!body_has(f.id, "Final-Recipient: rfc822; ok@site.test"));
}
END_TEST

struct attempts {
	unsigned	 attempts;
	char		 reply[128];
};

static int
first_qentry(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *qe,
    size_t n, void *arg)
{
	struct attempts *a = arg;

	a->attempts = qe[0].attempts;
	snprintf(a->reply, sizeof(a->reply), "%s", qe[0].last_reply ? qe[0].last_reply : "");
	return 1;
}

/* a 4xx for every recipient keeps the mail, with the reply, and the
 * session counts as a failed attempt (so the schedule backs off) */
START_TEST(test_run_deferred)
{
	static const char *const to[] = { "later@site.test", NULL };
	struct attempts a = { 0 };
	struct spool_route r;

	store("s@x.test", to, 0, body);
	deliver();
	ck_assert_uint_eq(messages_in("site.test"), 1);
	ck_assert_int_eq(queue_walk(q, "site.test", first_qentry, &a), SPOOL_OK);
	ck_assert_uint_eq(a.attempts, 1);
	ck_assert_msg(strncmp(a.reply, "451 4.3.0", 9) == 0, "last reply: %s", a.reply);
	route_of("site.test", &r);
	ck_assert_uint_eq(r.failures, 1);
	ck_assert_msg(strstr(r.last_error, "every recipient deferred") != NULL, "%s", r.last_error);
	spool_route_free(&r);
}
END_TEST

/* nobody answers: the mail stays, the failure is recorded, the run ends */
START_TEST(test_run_site_down)
{
	static const char *const to[] = { "a@site.test", NULL };
	struct spool_route r;

	store("s@x.test", to, 0, body);
	site_stop();
	deliver();
	ck_assert_uint_eq(messages_in("site.test"), 1);
	route_of("site.test", &r);
	ck_assert_uint_eq(r.failures, 1);
	ck_assert_msg(strstr(r.last_error, "connect to [127.0.0.1]") != NULL, "%s", r.last_error);
	spool_route_free(&r);
	ck_assert(!despool_busy("site.test"));
}
END_TEST

/* an ETRN while a run holds the domain joins it, and mail that came after
 * its snapshot goes in one more run */
START_TEST(test_run_again)
{
	static const char *const to[] = { "a@site.test", NULL };
	const struct domain_conf *d = spoold_conf_domain(rt->conf, "site.test");
	unsigned long long queued;
	const char *reason = "";


	store("s@x.test", to, 0, body);
	site_hold = 1;
	ck_assert_int_eq(despool_start(d, rt, NULL, &queued, &reason), DESPOOL_STARTED);
	ck_assert(spin_until(site_has_waiting));	/* in session, the snapshot taken */
	store("s@x.test", to, 0, body);			/* after the snapshot */
	ck_assert_int_eq(despool_start(d, rt, NULL, &queued, &reason), DESPOOL_JOINED);
	site_release();
	ck_assert(spin_until(site_idle));
	ck_assert_uint_eq(messages_in("site.test"), 0);
	ck_assert_uint_eq(site_messages, 2);
}
END_TEST

/* nothing waits: no run */
START_TEST(test_run_empty)
{
	const struct domain_conf *d = spoold_conf_domain(rt->conf, "site.test");
	unsigned long long queued = 9;
	const char *reason = "";

	ck_assert_int_eq(despool_start(d, rt, NULL, &queued, &reason), DESPOOL_EMPTY);
	ck_assert_uint_eq(queued, 0);
	ck_assert(!despool_busy("site.test"));
}
END_TEST

/* stopping ends every run at once, whatever its state; the mail stays
 * queued and no new run starts */
START_TEST(test_run_stop_all)
{
	static const char *const to[] = { "a@site.test", NULL };
	const struct domain_conf *d = spoold_conf_domain(rt->conf, "site.test");
	unsigned long long queued;
	const char *reason = "";

	store("s@x.test", to, 0, body);
	ck_assert_int_eq(despool_start(d, rt, NULL, &queued, &reason), DESPOOL_STARTED);
	despool_stop_all();	/* still RUN_LAUNCHING */
	ck_assert(spin_until(site_idle));
	ck_assert_uint_eq(site_messages, 0);
	ck_assert_uint_eq(messages_in("site.test"), 1);
	ck_assert_int_eq(despool_start(d, rt, NULL, &queued, &reason), DESPOOL_FAILED);
	ck_assert_str_eq(reason, "spoold is shutting down");
}
END_TEST

static Suite *
queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc;

	tc = tcase_create("queue");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_queue_ids);
	tcase_add_test(tc, test_queue_full_policy);
	tcase_add_test(tc, test_queue_hold_delete);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounce");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_bounce_one_dsn);
	tcase_add_test(tc, test_bounce_no_dsn);
	suite_add_tcase(s, tc);

	tc = tcase_create("despool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_run_delivers);
	tcase_add_test(tc, test_run_refused);
	tcase_add_test(tc, test_run_deferred);
	tcase_add_test(tc, test_run_site_down);
	tcase_add_test(tc, test_run_again);
	tcase_add_test(tc, test_run_empty);
	tcase_add_test(tc, test_run_stop_all);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(queue_suite());
	int failed;

	log_init("test_queue", 1, 0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
