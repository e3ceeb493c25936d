/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * pgsql.c - the PostgreSQL thread and its connections; see pgsql.h.
 *
 * Each lookup file has a connection, a state machine of its own:
 *
 *   DOWN --timer--> CONNECTING --ok--> LISTEN --ok--> QUERY --rows--> IDLE
 *     ^                 |                 |             ^  |          | |
 *     +----- failure, timeout, lost ------+-------------+--+----------+ |
 *                                                       +--- NOTIFY ----+
 *
 * (LISTEN only with a notify channel; a recipients connection goes from
 * IDLE to QUERY for each address asked, and a NOTIFY there drops the
 * loop's cache.)  The loop and the thread talk through two message queues
 * under one lock, each with an ev_async.
 */
#include "config.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "pgsql.h"
#include "pgsql_rows.h"

#define BACKOFF_MIN	1.0	/* seconds before a reconnect, doubling */
#define BACKOFF_MAX	30.0
#define QUEUE_MAX	1000	/* lookups waiting for one connection */
#define CACHE_BUCKETS	16384
#define CACHE_MAX	200000	/* entries; past it the cache starts afresh */
#define ADDR_MAX	520

enum pg_state { PG_DOWN, PG_CONNECTING, PG_LISTEN, PG_QUERY, PG_IDLE };

static const char *const state_names[] = { "DOWN", "CONNECTING", "LISTEN", "QUERY", "IDLE" };

enum msg_kind {
	M_MAP,		/* loop -> thread: a lookup file, new or changed */
	M_UNMAP,	/* loop -> thread: a lookup file no longer used */
	M_LOOKUP,	/* loop -> thread: is this address there */
	M_RESULT,	/* thread -> loop: the answer */
	M_CHANGED,	/* thread -> loop: new domain rows */
	M_STATE,	/* thread -> loop: a recipients connection up or down */
	M_FLUSH,	/* thread -> loop: a NOTIFY, the cache goes */
};

struct msg {
	struct msg		*next;
	enum msg_kind		 kind;
	struct pgsql_map	*map;		/* M_MAP: a copy, for the thread */
	int			 is_domains;	/* M_MAP, M_UNMAP */
	char			*path;		/* the lookup file */
	uint64_t		 id;		/* M_LOOKUP, M_RESULT */
	char			 local[ADDR_MAX], domain[ADDR_MAX];
	int			 result;	/* M_RESULT 1/0/-1, M_STATE 1 up */
	ev_tstamp		 queued;	/* M_LOOKUP: on the connection's queue */
};

struct msg_queue {
	struct msg	*head, *tail;
};

/* ---- the thread's side ---- */

struct pg_conn {
	struct pg_conn		*next;
	struct pgsql_map	*map;
	int			 is_domains;
	enum pg_state		 state;
	PGconn			*conn;
	int			 fd;
	ev_io			 io;
	ev_timer		 timer;
	double			 backoff;
	size_t			 attempt;	/* failures: the host to start from */
	ev_tstamp		 sent;		/* when the query went */
	int			 again;		/* domains: a NOTIFY during the query */
	PGresult		*result;	/* of the query under way */
	struct msg_queue	 waiting;	/* lookups, asked one at a time */
	size_t			 n_waiting;
	struct msg		*asking;	/* the lookup under way */
};

static struct {
	struct ev_loop		*loop;		/* spoold's */
	struct ev_loop		*tloop;		/* the thread's */
	pthread_t		 thread;
	int			 running;
	ev_async		 wake;		/* on tloop */
	ev_async		 back;		/* on loop */
	void			(*changed)(void);
	char			*datadir;
	pthread_mutex_t		 lock;
	/* under lock */
	struct msg_queue	 to_thread, to_loop;
	int			 stop;
	char			*domains_text;	/* the rows served */
	/* the thread's */
	struct pg_conn		*conns;
	char			*rows_copy;	/* the last rows written */
} pg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int domains_current;	/* atomic: the thread writes, the loop reads */
/* the rows published (the thread, under lock): the database's answer is
 * current only for a configuration that holds them (the reload it calls
 * for is in, and the session started after it) */
static uint64_t rows_published;	/* atomic */

static void
queue_put(struct msg_queue *q, struct msg *m)
{
	m->next = NULL;
	if (q->tail != NULL)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
}

static struct msg *
queue_take(struct msg_queue *q)
{
	struct msg *m = q->head;

	if (m != NULL && (q->head = m->next) == NULL)
		q->tail = NULL;
	return m;
}

static struct msg *
msg_new(enum msg_kind kind, const char *path)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (m == NULL || (path != NULL && (m->path = strdup(path)) == NULL))
		fatalx("out of memory");
	m->kind = kind;
	return m;
}

static void
msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	pgsql_map_free(m->map);
	free(m->path);
	free(m);
}

static void
post_to_loop(struct msg *m)
{
	pthread_mutex_lock(&pg.lock);
	queue_put(&pg.to_loop, m);
	pthread_mutex_unlock(&pg.lock);
	ev_async_send(pg.loop, &pg.back);
}

static void
post_to_thread(struct msg *m)
{
	pthread_mutex_lock(&pg.lock);
	queue_put(&pg.to_thread, m);
	pthread_mutex_unlock(&pg.lock);
	ev_async_send(pg.tloop, &pg.wake);
}

static void conn_step(struct pg_conn *);
static void conn_send_next(struct pg_conn *);

static void
conn_enter(struct pg_conn *c, enum pg_state s)
{
	log_debug("pgsql: %s: %s -> %s", c->map->path, state_names[c->state], state_names[s]);
	c->state = s;
}

/* conn_deadline - an answer is due within the file's timeout (on), or
 * nothing is awaited (off) */
static void
conn_deadline(struct pg_conn *c, int on)
{
	ev_timer_stop(pg.tloop, &c->timer);
	if (on) {
		ev_timer_set(&c->timer, (double)c->map->timeout, 0.);
		ev_timer_start(pg.tloop, &c->timer);
	}
}

/* conn_watch - the socket, for reading or writing or both */
static void
conn_watch(struct pg_conn *c, int events)
{
	int fd = PQsocket(c->conn);

	if (ev_is_active(&c->io) && (fd != c->fd || (c->io.events & (EV_READ | EV_WRITE)) != events))
		ev_io_stop(pg.tloop, &c->io);
	if (!ev_is_active(&c->io) && fd >= 0) {
		ev_io_set(&c->io, fd, events);
		ev_io_start(pg.tloop, &c->io);
	}
	c->fd = fd;
}

static void
lookup_answer(struct msg *m, int result)
{
	m->kind = M_RESULT;
	m->result = result;
	metrics_inc(result == 1 ? MC_PGSQL_LOOKUP_FOUND : result == 0 ? MC_PGSQL_LOOKUP_NOTFOUND :
	    MC_PGSQL_LOOKUP_FAILED);
	post_to_loop(m);
}

static void
set_domains_current(int up)
{
	__atomic_store_n(&domains_current, up, __ATOMIC_RELAXED);
	metrics_set(MG_PGSQL_DOMAINS_UP, up);
}

/* conn_fail - the connection is gone: lookups get "cannot say", the
 * domains go on from the copy; a reconnect after the back-off */
static void
conn_fail(struct pg_conn *c, const char *what)
{
	const char *why = c->conn != NULL ? PQerrorMessage(c->conn) : "out of memory";
	char reason[256];
	struct msg *m;

	snprintf(reason, sizeof(reason), "%s", why != NULL && *why ? why : "closed");
	reason[strcspn(reason, "\n")] = '\0';
	log_warnx("pgsql: %s: %s: %s; %s, reconnecting in %.0f s", c->map->path, what, reason,
	    c->is_domains ? "serving the last good copy of the domains" :
	    "addresses not in the cache get 451", c->backoff);
	metrics_inc(MC_PGSQL_ERRORS);
	ev_io_stop(pg.tloop, &c->io);
	PQclear(c->result);
	c->result = NULL;
	if (c->conn != NULL)
		PQfinish(c->conn);
	c->conn = NULL;
	if (c->asking != NULL)
		lookup_answer(c->asking, -1);
	c->asking = NULL;
	while ((m = queue_take(&c->waiting)) != NULL)
		lookup_answer(m, -1);
	c->n_waiting = 0;
	if (c->is_domains)
		set_domains_current(0);
	else if (c->state != PG_DOWN) {
		m = msg_new(M_STATE, c->map->path);
		m->result = 0;
		post_to_loop(m);
	}
	if (c->state == PG_CONNECTING)
		c->attempt++;	/* none could be reached: the next host first */
	conn_enter(c, PG_DOWN);
	ev_timer_stop(pg.tloop, &c->timer);
	ev_timer_set(&c->timer, c->backoff, 0.);
	ev_timer_start(pg.tloop, &c->timer);
	c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2;
}

/* rotate_list - "a,b,c" from its element first % n on ("b,c,a"), when it
 * has n elements; NULL (the value as it is) otherwise */
static char *
rotate_list(const char *list, size_t n, size_t first)
{
	size_t count = 1, len = strlen(list), at = 0;
	const char *p;
	char *out;

	for (p = list; (p = strchr(p, ',')) != NULL; p++)
		count++;
	if (count != n || first % n == 0 || (out = malloc(len + 2)) == NULL)
		return NULL;
	for (p = list; at < first % n; p++)	/* the first's start */
		at += *p == ',';
	snprintf(out, len + 2, "%s,%.*s", p, (int)(p - list - 1), list);
	return out;
}

/* connect_start - PQconnectStart, the hosts from the attempt's on: libpq
 * tries the next host when one refuses, not when one never answers (the
 * file's timeout ends the whole attempt), so each attempt after a failure
 * starts from the next host, or a host gone silent first in the list
 * would hide the others for good */
static PGconn *
connect_start(const char *conninfo, size_t attempt)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
	const char **keys, **values;
	char *rotated[3] = { NULL, NULL, NULL };
	size_t n = 0, hosts = 1, r = 0;
	PGconn *conn;

	if (opts == NULL)
		return PQconnectStart(conninfo);
	for (o = opts; o->keyword != NULL; o++) {
		n++;
		if (o->val != NULL && (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)) {
			size_t c = 1;

			for (const char *p = o->val; (p = strchr(p, ',')) != NULL; p++)
				c++;
			hosts = c > hosts ? c : hosts;
		}
	}
	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL || (values = calloc(n + 1, sizeof(*values))) == NULL)
		fatalx("out of memory");
	n = 0;
	for (o = opts; o->keyword != NULL; o++) {
		char *rot = NULL;

		if (o->val == NULL)
			continue;
		if (hosts > 1 && r < 3 && (strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0 || strcmp(o->keyword, "port") == 0))
			rot = rotated[r++] = rotate_list(o->val, hosts, attempt);
		keys[n] = o->keyword;
		values[n++] = rot != NULL ? rot : o->val;
	}
	conn = PQconnectStartParams(keys, values, 0);
	for (r = 0; r < 3; r++)
		free(rotated[r]);
	free(keys);
	free(values);
	PQconninfoFree(opts);
	return conn;
}

static void
conn_connect(struct pg_conn *c)
{
	/* PQconnectStart resolves a host name before it returns: on this
	 * thread, that holds no session */
	if ((c->conn = connect_start(c->map->conninfo, c->attempt)) == NULL ||
	    PQstatus(c->conn) == CONNECTION_BAD) {
		conn_fail(c, "cannot connect");
		return;
	}
	conn_enter(c, PG_CONNECTING);
	conn_watch(c, EV_WRITE);
	conn_deadline(c, 1);
}

/* conn_send - a query on its way; the answer comes to conn_step */
static void
conn_send(struct pg_conn *c, const char *sql, enum pg_state next)
{
	int rc;

	if (!PQsendQuery(c->conn, sql)) {
		conn_fail(c, "cannot send a query");
		return;
	}
	conn_enter(c, next);
	rc = PQflush(c->conn);
	if (rc == -1) {
		conn_fail(c, "cannot send a query");
		return;
	}
	conn_watch(c, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
	conn_deadline(c, 1);
}

static void
conn_connected(struct pg_conn *c)
{
	char sql[128];

	if (PQsetnonblocking(c->conn, 1) == -1) {
		conn_fail(c, "cannot make the connection non-blocking");
		return;
	}
	log_info("pgsql: %s: connected to %s%s%s", c->map->path, PQhost(c->conn),
	    c->map->notify ? ", listening on " : "", c->map->notify ? c->map->notify : "");
	c->backoff = BACKOFF_MIN;
	if (!c->is_domains) {
		struct msg *m = msg_new(M_STATE, c->map->path);

		m->result = 1;
		post_to_loop(m);
	}
	if (c->map->notify != NULL) {
		/* before the rows are read: no change between them is missed */
		snprintf(sql, sizeof(sql), "LISTEN %s", c->map->notify);
		conn_send(c, sql, PG_LISTEN);
	} else
		conn_send_next(c);
}

static void
domains_publish(char *text)
{
	pthread_mutex_lock(&pg.lock);
	free(pg.domains_text);
	pg.domains_text = strdup(text);
	__atomic_add_fetch(&rows_published, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pg.lock);
	metrics_set(MG_PGSQL_DOMAINS_TIME, (int64_t)time(NULL));
	post_to_loop(msg_new(M_CHANGED, NULL));
}

/* domains_rows - the query's answer: in use once on disk */
static void
domains_rows(struct pg_conn *c, PGresult *res)
{
	size_t kept = 0;
	ev_tstamp t0 = ev_time();
	char *text = pgsql_rows_text(c->map->path, res, &kept);
	ev_tstamp t1 = ev_time();

	if (text == NULL) {
		metrics_inc(MC_PGSQL_ERRORS);
		return;
	}
	if (pg.rows_copy != NULL && strcmp(pg.rows_copy, text) == 0) {
		free(text);		/* nothing changed: nothing to reload */
		metrics_set(MG_PGSQL_DOMAINS_TIME, (int64_t)time(NULL));
		set_domains_current(1);
		return;
	}
	if (pgsql_rows_keep(pg.datadir, text) == -1) {
		log_warn("pgsql: %s: cannot keep the rows in %s/%s; serving the last copy kept",
		    c->map->path, pg.datadir, SPOOLD_PGSQL_COPY);
		metrics_inc(MC_PGSQL_ERRORS);
		free(text);
		return;
	}
	log_info("pgsql: %s: %zu row%s read (query %.3f s, made into domain blocks in %.3f s, kept in "
	    "%.3f s)", c->map->path, kept, kept == 1 ? "" : "s", t0 - c->sent, t1 - t0, ev_time() - t1);
	free(pg.rows_copy);
	pg.rows_copy = text;
	domains_publish(text);
	set_domains_current(1);
}

/* ---- the state machine ---- */

static int
escape_value(void *arg, char *dst, size_t len, const char *src)
{
	int err = 0;

	if (len < 2 * strlen(src) + 1)
		return -1;
	PQescapeStringConn(arg, dst, src, strlen(src), &err);
	return err ? -1 : 0;
}

/* conn_send_next - what the connection does next once idle */
static void
conn_send_next(struct pg_conn *c)
{
	char *sql;

	if (c->is_domains) {
		c->again = 0;
		c->sent = ev_time();
		conn_send(c, c->map->query, PG_QUERY);
		return;
	}
	if ((c->asking = queue_take(&c->waiting)) == NULL) {
		conn_enter(c, PG_IDLE);
		conn_watch(c, EV_READ);	/* NOTIFYs, and a lost connection */
		conn_deadline(c, 0);
		return;
	}
	c->n_waiting--;
	if (ev_now(pg.tloop) - c->asking->queued > (double)c->map->timeout) {
		/* behind slow queries past the file's timeout: "cannot say"
		 * now, not after every query before it (a session waited for
		 * the sum, up to its idle timeout) */
		lookup_answer(c->asking, -1);
		c->asking = NULL;
		conn_send_next(c);
		return;
	}
	sql = pgsql_map_expand(c->map->query, c->asking->local, c->asking->domain, escape_value,
	    c->conn);
	if (sql == NULL) {
		lookup_answer(c->asking, -1);
		c->asking = NULL;
		conn_send_next(c);
		return;
	}
	conn_send(c, sql, PG_QUERY);
	free(sql);
}

static void
conn_notified(struct pg_conn *c)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(c->conn)) != NULL) {
		/* recipients: the address the payload names, or all of them */
		if (!c->is_domains) {
			struct msg *m = msg_new(M_FLUSH, c->map->path);

			snprintf(m->local, sizeof(m->local), "%s", n->extra != NULL ? n->extra : "");
			post_to_loop(m);
		}
		any = 1;
		PQfreemem(n);
	}
	if (!any || !c->is_domains)
		return;
	if (c->state == PG_IDLE)
		conn_send_next(c);
	else
		c->again = 1;
}

/* conn_answered - a query's last result is in */
static void
conn_answered(struct pg_conn *c)
{
	PGresult *res = c->result;
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;

	c->result = NULL;
	if (!ok) {
		log_warnx("pgsql: %s: %s failed: %s", c->map->path, c->state == PG_LISTEN ? "LISTEN" :
		    "the query", res != NULL ? PQresultErrorMessage(res) : "no result");
		metrics_inc(MC_PGSQL_ERRORS);
	}
	if (c->state == PG_QUERY && c->is_domains && ok)
		domains_rows(c, res);
	if (c->state == PG_QUERY && !c->is_domains) {
		/* only rows say "not there": a statement that returns none (not
		 * a SELECT) cannot, and must not refuse every address with 550 */
		if (st == PGRES_COMMAND_OK)
			log_warnx("pgsql: %s: the query returns no rows (is it a SELECT?); addresses get "
			    "451", c->map->path);
		lookup_answer(c->asking, st != PGRES_TUPLES_OK ? -1 : PQntuples(res) > 0);
		c->asking = NULL;
	}
	PQclear(res);
	/* a NOTIFY read with the answer was parsed by PQgetResult, after
	 * conn_read looked: seen now, or it would wait for the next one */
	conn_notified(c);
	if (c->state == PG_QUERY && c->is_domains && !ok) {
		/* nothing would ask again before the next NOTIFY: a query that
		 * failed once (a lock timeout, a table renamed for a migration)
		 * left the copy served for good; again after the back-off */
		conn_fail(c, "the domains query failed");
		return;
	}
	if (c->state == PG_QUERY && c->is_domains && !c->again) {
		conn_enter(c, PG_IDLE);
		conn_watch(c, EV_READ);
		conn_deadline(c, 0);
		return;
	}
	conn_send_next(c);
}

static void
conn_read(struct pg_conn *c)
{
	PGresult *r;

	if (!PQconsumeInput(c->conn)) {
		conn_fail(c, "connection lost");
		return;
	}
	conn_notified(c);
	if (c->state == PG_IDLE || c->state == PG_DOWN)
		return;
	while (!PQisBusy(c->conn)) {
		if ((r = PQgetResult(c->conn)) == NULL) {
			conn_answered(c);
			return;
		}
		if (PQresultStatus(r) == PGRES_COPY_OUT || PQresultStatus(r) == PGRES_COPY_IN ||
		    PQresultStatus(r) == PGRES_COPY_BOTH) {
			/* PQgetResult would give the COPY again and again: this
			 * loop would spin, the thread's timers with it */
			PQclear(r);
			conn_fail(c, "the query starts a COPY");
			return;
		}
		PQclear(c->result);	/* the last one is the answer */
		c->result = r;
	}
}

static void
conn_poll_connect(struct pg_conn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->conn);

	/* PQconnectPoll may have closed the socket and opened another for
	 * the next host or address, often under the same number: epoll
	 * forgot the old one when it was closed, so the watcher is set up
	 * again each time, or the new socket is never watched (and the
	 * timeout, not the next host, ends the attempt) */
	ev_io_stop(pg.tloop, &c->io);
	switch (st) {
	case PGRES_POLLING_READING:
		conn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		conn_watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		conn_connected(c);
		break;
	default:
		conn_fail(c, "cannot connect");
		break;
	}
}

static void
conn_step(struct pg_conn *c)
{
	switch (c->state) {
	case PG_CONNECTING:
		conn_poll_connect(c);
		break;
	case PG_LISTEN:
	case PG_QUERY:
		switch (PQflush(c->conn)) {
		case -1:
			conn_fail(c, "connection lost");
			return;
		case 0:		/* all sent: only the answer is awaited */
			conn_watch(c, EV_READ);
			break;
		}
		conn_read(c);
		break;
	case PG_IDLE:
		conn_read(c);
		break;
	case PG_DOWN:
		break;
	}
}

static void
conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	conn_step(w->data);
}

static void
conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pg_conn *c = w->data;

	(void)loop, (void)revents;
	if (c->state == PG_DOWN)
		conn_connect(c);
	else
		conn_fail(c, "no answer in time");
}

static void
conn_close(struct pg_conn *c)
{
	struct msg *m;

	ev_io_stop(pg.tloop, &c->io);
	ev_timer_stop(pg.tloop, &c->timer);
	PQclear(c->result);
	if (c->conn != NULL)
		PQfinish(c->conn);
	if (c->asking != NULL)
		lookup_answer(c->asking, -1);
	while ((m = queue_take(&c->waiting)) != NULL)
		lookup_answer(m, -1);
	pgsql_map_free(c->map);
	free(c);
}

/* ---- the thread's messages ---- */

static struct pg_conn **
conn_find(const char *path, int is_domains)
{
	struct pg_conn **cp;

	for (cp = &pg.conns; *cp != NULL; cp = &(*cp)->next)
		if ((*cp)->is_domains == is_domains && strcmp((*cp)->map->path, path) == 0)
			break;
	return cp;
}

static void
thread_map(struct msg *m)
{
	struct pg_conn **cp, *c;

	/* changed: a new connection for it; and one domains file at a time */
	for (cp = &pg.conns; *cp != NULL;) {
		c = *cp;
		if (c->is_domains == m->is_domains && (m->is_domains || strcmp(c->map->path, m->path) == 0)) {
			*cp = c->next;
			conn_close(c);
		} else
			cp = &c->next;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatalx("out of memory");
	c->map = m->map;
	m->map = NULL;
	c->is_domains = m->is_domains;
	c->backoff = BACKOFF_MIN;
	c->fd = -1;
	ev_init(&c->io, conn_io);
	c->io.data = c;
	ev_init(&c->timer, conn_timer);
	c->timer.data = c;
	c->next = pg.conns;
	pg.conns = c;
	conn_connect(c);
	msg_free(m);
}

/* thread_unmap - its connection closed; its waiting lookups get "cannot say" */
static void
thread_unmap(struct msg *m)
{
	struct pg_conn **cp = conn_find(m->path, m->is_domains), *c = *cp;

	if (c != NULL) {
		*cp = c->next;
		conn_close(c);
	}
	msg_free(m);
}

static void
thread_lookup(struct msg *m)
{
	struct pg_conn *c = *conn_find(m->path, 0);

	if (c == NULL || c->state == PG_DOWN || c->n_waiting >= QUEUE_MAX) {
		lookup_answer(m, -1);
		return;
	}
	m->queued = ev_now(pg.tloop);
	queue_put(&c->waiting, m);
	c->n_waiting++;
	if (c->state == PG_IDLE)
		conn_send_next(c);
}

static void
thread_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct msg *m;
	int stop;

	(void)w, (void)revents;
	for (;;) {
		pthread_mutex_lock(&pg.lock);
		m = queue_take(&pg.to_thread);
		stop = pg.stop;
		pthread_mutex_unlock(&pg.lock);
		if (stop) {
			msg_free(m);
			ev_break(loop, EVBREAK_ALL);
			return;
		}
		if (m == NULL)
			return;
		if (m->kind == M_MAP)
			thread_map(m);
		else if (m->kind == M_UNMAP)
			thread_unmap(m);
		else
			thread_lookup(m);
	}
}

static void *
thread_main(void *arg)
{
	struct pg_conn *c;

	(void)arg;
	ev_run(pg.tloop, 0);
	while ((c = pg.conns) != NULL) {
		pg.conns = c->next;
		conn_close(c);
	}
	return NULL;
}

/* ---- the loop's side: the recipients cache and the lookups waiting ---- */

struct cache_entry {
	struct cache_entry	*next;
	ev_tstamp		 expires;
	int			 found;
	uint64_t		 epoch;		/* its map's connection, when put */
	char			 key[];		/* path NUL address */
};

struct waiter {
	struct waiter		*next;
	pgsql_lookup_done	*done;		/* NULL: cancelled */
	void			*arg;
};

struct pgsql_lookup {
	struct waiter		 w;
};

struct inflight {
	struct inflight		*next;
	uint64_t		 id;
	ev_tstamp		 ttl;
	char			*key;
	size_t			 keylen;
	int			 flushed;	/* a NOTIFY for it came meanwhile */
	struct waiter		*waiters;
};

struct map_state {
	struct map_state	*next;
	struct pgsql_map	*map;		/* as last sent to the thread */
	int			 is_domains;
	int			 up;
	uint64_t		 epoch;		/* connections made: NOTIFYs between
						 * two were not heard */
};

static struct {
	struct cache_entry	*buckets[CACHE_BUCKETS];
	size_t			 entries;
	struct inflight		*inflight;
	uint64_t		 next_id;
	struct map_state	*maps;
	int			 stopping;	/* pgsql_lookups_stop: none asked */
} lc;

static uint64_t
key_hash(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* cache_key - "path NUL local@domain", the address in lower case (the
 * file's own query decides what case means: this is only the cache) */
static size_t
cache_key(char *key, size_t len, const char *path, const char *local, const char *domain)
{
	int n = snprintf(key, len, "%s%c%s@%s", path, '\0', local, domain);

	if (n < 0 || (size_t)n >= len)
		return 0;
	for (char *p = key + strlen(path) + 1; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return (size_t)n;
}

static struct cache_entry *
cache_get(const char *key, size_t len)
{
	struct cache_entry *e = lc.buckets[key_hash(key, len) % CACHE_BUCKETS];

	for (; e != NULL; e = e->next)
		if (memcmp(e->key, key, len + 1) == 0)
			return e;
	return NULL;
}

static void
cache_clear(void)
{
	for (size_t i = 0; i < CACHE_BUCKETS; i++) {
		struct cache_entry *e = lc.buckets[i], *n;

		for (; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
		lc.buckets[i] = NULL;
	}
	lc.entries = 0;
}

/* cache_forget_path - every answer of the lookup file path goes (keys
 * begin "path NUL"); the other files' stay */
static void
cache_forget_path(const char *path)
{
	size_t plen = strlen(path);
	struct cache_entry **ep, *e;

	for (struct inflight *f = lc.inflight; f != NULL; f = f->next)
		if (f->keylen > plen && memcmp(f->key, path, plen + 1) == 0)
			f->flushed = 1;
	for (size_t i = 0; i < CACHE_BUCKETS; i++)
		for (ep = &lc.buckets[i]; (e = *ep) != NULL;) {
			if (strcmp(e->key, path) != 0) {
				ep = &e->next;
				continue;
			}
			*ep = e->next;
			free(e);
			lc.entries--;
		}
}

/* cache_forget - a NOTIFY's payload: that address's answer, or (empty)
 * every answer of path, goes */
static void
cache_forget(const char *path, const char *address)
{
	char key[8192];
	size_t len;
	const char *at = strrchr(address, '@');
	struct cache_entry **ep, *e;
	char local[ADDR_MAX];

	/* a lookup under way may have read the rows before the change: its
	 * answer is given, not cached */
	if (*address == '\0' || at == NULL || (size_t)(at - address) >= sizeof(local)) {
		cache_forget_path(path);
		return;
	}
	snprintf(local, sizeof(local), "%.*s", (int)(at - address), address);
	if ((len = cache_key(key, sizeof(key), path, local, at + 1)) == 0)
		return;
	for (struct inflight *f = lc.inflight; f != NULL; f = f->next)
		if (f->keylen == len && memcmp(f->key, key, len + 1) == 0)
			f->flushed = 1;
	for (ep = &lc.buckets[key_hash(key, len) % CACHE_BUCKETS]; (e = *ep) != NULL; ep = &e->next)
		if (memcmp(e->key, key, len + 1) == 0) {
			*ep = e->next;
			free(e);
			lc.entries--;
			return;
		}
}

static struct map_state *map_state(const char *path, int is_domains);

static void
cache_put(const char *key, size_t len, int found, ev_tstamp ttl)
{
	const struct map_state *s = map_state(key, 0);	/* the key starts with the path */
	struct cache_entry *e = cache_get(key, len);
	size_t b;

	if (ttl <= 0)
		return;
	if (e == NULL) {
		if (lc.entries >= CACHE_MAX)
			cache_clear();
		if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
			return;
		memcpy(e->key, key, len + 1);
		b = key_hash(key, len) % CACHE_BUCKETS;
		e->next = lc.buckets[b];
		lc.buckets[b] = e;
		lc.entries++;
	}
	e->found = found;
	e->expires = ev_now(pg.loop) + ttl;
	e->epoch = s != NULL ? s->epoch : 0;
}

static struct map_state *
map_state(const char *path, int is_domains)
{
	for (struct map_state *s = lc.maps; s != NULL; s = s->next)
		if (s->is_domains == is_domains && strcmp(s->map->path, path) == 0)
			return s;
	return NULL;
}

int
pgsql_lookup_cached(const struct pgsql_map *map, const char *local, const char *domain)
{
	char key[8192];
	size_t len = cache_key(key, sizeof(key), map->path, local, domain);
	const struct map_state *s = map_state(map->path, 0);
	struct cache_entry *e;

	if (len == 0 || (e = cache_get(key, len)) == NULL)
		return -1;
	/* past its time it is asked again, unless the database is down:
	 * then the last answer is better than none; and with a notify
	 * channel, an answer from before the connection was lost too (the
	 * NOTIFYs sent meanwhile were not heard) */
	if (s != NULL && s->up && (e->expires < ev_now(pg.loop) ||
	    (s->map->notify != NULL && e->epoch != s->epoch)))
		return -1;
	return e->found;
}

int
pgsql_lookup_ready(const struct pgsql_map *map)
{
	const struct map_state *s = map_state(map->path, 0);

	return pg.running && !lc.stopping && s != NULL && s->up;
}

struct pgsql_lookup *
pgsql_lookup(const struct pgsql_map *map, const char *local, const char *domain,
    pgsql_lookup_done *done, void *arg)
{
	char key[8192];
	size_t len = cache_key(key, sizeof(key), map->path, local, domain);
	struct inflight *f;
	struct pgsql_lookup *l;
	struct msg *m;

	for (f = lc.inflight; len > 0 && f != NULL; f = f->next)	/* one at a time an address */
		if (f->keylen == len && memcmp(f->key, key, len + 1) == 0)
			break;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatalx("out of memory");
	l->w.done = done;
	l->w.arg = arg;
	if (f != NULL) {
		l->w.next = f->waiters;
		f->waiters = &l->w;
		return l;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL || (f->key = malloc(len + 1)) == NULL)
		fatalx("out of memory");
	memcpy(f->key, key, len + 1);
	f->keylen = len;
	f->waiters = &l->w;
	f->id = ++lc.next_id;
	f->ttl = (ev_tstamp)map->cache_ttl;
	f->next = lc.inflight;
	lc.inflight = f;
	m = msg_new(M_LOOKUP, map->path);
	m->id = f->id;
	if (len == 0 || !pg.running || lc.stopping || strlen(local) >= ADDR_MAX || strlen(domain) >= ADDR_MAX) {
		metrics_inc(MC_PGSQL_LOOKUP_FAILED);
		m->kind = M_RESULT;	/* cannot be asked: answered on the loop's next turn */
		m->result = -1;
		post_to_loop(m);
		return l;
	}
	/* asked in lower case, as it is cached (and as Postfix asks): one
	 * answer for every case of an address, never Bob's refusal cached for
	 * bob by a query that compares case */
	snprintf(m->local, sizeof(m->local), "%s", local);
	snprintf(m->domain, sizeof(m->domain), "%s", domain);
	for (char *p = m->local; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = m->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	post_to_thread(m);
	return l;
}

void
pgsql_lookup_cancel(struct pgsql_lookup *l)
{
	if (l != NULL)
		l->w.done = NULL;	/* freed when the answer comes */
}

static void
loop_result(struct msg *m)
{
	struct inflight **fp, *f;
	struct waiter *w, *next;

	for (fp = &lc.inflight; *fp != NULL && (*fp)->id != m->id; fp = &(*fp)->next)
		;
	if ((f = *fp) == NULL)
		return;
	*fp = f->next;
	if (m->result >= 0 && !f->flushed)
		cache_put(f->key, f->keylen, m->result, f->ttl);
	for (w = f->waiters; w != NULL; w = next) {
		next = w->next;
		if (w->done != NULL)
			w->done(w->arg, m->result);
		free(w);	/* the pgsql_lookup it is the head of */
	}
	free(f->key);
	free(f);
}

void
pgsql_lookups_stop(void)
{
	struct inflight *f;

	lc.stopping = 1;
	/* a done() may ask again (a pipelined RCPT): answered here too */
	while ((f = lc.inflight) != NULL) {
		struct msg m = { .id = f->id, .result = -1 };

		loop_result(&m);
	}
}

static void
loop_back(struct ev_loop *loop, ev_async *w, int revents)
{
	struct msg *m;
	struct map_state *s;
	int changed = 0;

	(void)loop, (void)w, (void)revents;
	for (;;) {
		pthread_mutex_lock(&pg.lock);
		m = queue_take(&pg.to_loop);
		pthread_mutex_unlock(&pg.lock);
		if (m == NULL)
			break;
		switch (m->kind) {
		case M_RESULT: loop_result(m); break;
		case M_CHANGED: changed = 1; break;
		case M_FLUSH: cache_forget(m->path, m->local); break;
		case M_STATE:
			if ((s = map_state(m->path, 0)) != NULL) {
				s->epoch += m->result && !s->up;
				s->up = m->result;
			}
			break;
		default: break;
		}
		msg_free(m);
	}
	if (changed && pg.changed != NULL)
		pg.changed();
}

/* ---- start, update, stop ---- */

static struct pgsql_map *
map_copy(const struct pgsql_map *m)
{
	struct pgsql_map *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->path = strdup(m->path)) == NULL || (c->conninfo = strdup(m->conninfo)) == NULL ||
	    (c->query = strdup(m->query)) == NULL || (m->notify && (c->notify = strdup(m->notify)) == NULL))
		fatalx("out of memory");
	c->cache_ttl = m->cache_ttl;
	c->timeout = m->timeout;
	return c;
}

static int
map_same(const struct pgsql_map *a, const struct pgsql_map *b)
{
	return strcmp(a->conninfo, b->conninfo) == 0 && strcmp(a->query, b->query) == 0 &&
	    (a->notify == NULL) == (b->notify == NULL) && (a->notify == NULL ||
	    strcmp(a->notify, b->notify) == 0) && a->cache_ttl == b->cache_ttl && a->timeout == b->timeout;
}

static int
thread_start(void)
{
	if (pg.running)
		return 0;
	if ((pg.tloop = ev_loop_new(EVFLAG_AUTO)) == NULL)
		return -1;
	ev_async_init(&pg.wake, thread_wake);
	ev_async_start(pg.tloop, &pg.wake);
	if (pthread_create(&pg.thread, NULL, thread_main, NULL) != 0) {
		ev_loop_destroy(pg.tloop);
		return -1;
	}
	pg.running = 1;
	return 0;
}

/* send_map - a lookup file to the thread, when new or changed */
static void
send_map(const struct pgsql_map *map, int is_domains)
{
	struct map_state *s = map_state(map->path, is_domains);
	struct msg *m;

	if (s != NULL && map_same(s->map, map))
		return;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			fatalx("out of memory");
		s->is_domains = is_domains;
		s->next = lc.maps;
		lc.maps = s;
	} else
		pgsql_map_free(s->map);
	s->map = map_copy(map);
	s->up = 0;
	m = msg_new(M_MAP, map->path);
	m->map = map_copy(map);
	m->is_domains = is_domains;
	post_to_thread(m);
}

/* map_named - cf still uses the lookup file of s */
static int
map_named(const struct spoold_conf *cf, const struct map_state *s)
{
	if (s->is_domains)
		return cf->domains_map != NULL && strcmp(cf->domains_map->path, s->map->path) == 0;
	for (size_t i = 0; i < cf->n_pg_maps; i++)
		if (strcmp(cf->pg_maps[i]->path, s->map->path) == 0)
			return 1;
	return 0;
}

/* unmap_unused - the connections of lookup files cf no longer names are
 * closed (a reload dropped them, or no row names them any more); the
 * recipients cache goes with them, or their answers would come back with
 * the file */
static void
unmap_unused(const struct spoold_conf *cf)
{
	struct map_state **sp = &lc.maps, *s;
	struct msg *m;

	while ((s = *sp) != NULL) {
		if (map_named(cf, s)) {
			sp = &s->next;
			continue;
		}
		*sp = s->next;
		log_info("pgsql: %s no longer used: its connection is closed", s->map->path);
		m = msg_new(M_UNMAP, s->map->path);
		m->is_domains = s->is_domains;
		post_to_thread(m);
		if (!s->is_domains)
			cache_forget(s->map->path, "");
		pgsql_map_free(s->map);
		free(s);
	}
}

void
pgsql_update(const struct spoold_conf *cf)
{
	if (pg.running)
		unmap_unused(cf);
	if (cf->domains_map == NULL && cf->n_pg_maps == 0)
		return;
	if (thread_start() == -1) {
		log_warnx("pgsql: no thread for the PostgreSQL connections; domains and recipients from "
		    "PostgreSQL cannot be looked up");
		return;
	}
	if (cf->domains_map != NULL)
		send_map(cf->domains_map, 1);
	for (size_t i = 0; i < cf->n_pg_maps; i++)
		send_map(cf->pg_maps[i], 0);
}

int
pgsql_start(struct ev_loop *loop, const struct spoold_conf *cf, char *copy, void (*changed)(void))
{
	size_t n = 0;

	pg.loop = loop;
	pg.changed = changed;
	if ((pg.datadir = strdup(cf->datadir)) == NULL)
		fatalx("out of memory");
	pg.domains_text = copy;
	pg.rows_copy = copy != NULL ? strdup(copy) : NULL;
	set_domains_current(0);
	for (size_t i = 0; i < cf->n_domains; i++)
		n += cf->domains[i].from_pgsql;
	metrics_set(MG_PGSQL_DOMAINS, (int64_t)n);
	ev_async_init(&pg.back, loop_back);
	ev_async_start(loop, &pg.back);
	ev_unref(loop);		/* the watcher alone does not keep the loop running */
	pgsql_update(cf);
	return 0;
}

void
pgsql_stop(void)
{
	struct map_state *s;
	struct inflight *f;

	if (pg.loop == NULL)
		return;
	if (pg.running) {
		pthread_mutex_lock(&pg.lock);
		pg.stop = 1;
		pthread_mutex_unlock(&pg.lock);
		ev_async_send(pg.tloop, &pg.wake);
		pthread_join(pg.thread, NULL);
		ev_loop_destroy(pg.tloop);
		pg.running = 0;
	}
	while ((f = lc.inflight) != NULL) {	/* their sessions are gone by now */
		struct msg m = { .id = f->id, .result = -1 };

		for (struct waiter *w = f->waiters; w != NULL; w = w->next)
			w->done = NULL;
		loop_result(&m);
	}
	for (struct msg *m; (m = queue_take(&pg.to_thread)) != NULL || (m = queue_take(&pg.to_loop)) != NULL;)
		msg_free(m);
	while ((s = lc.maps) != NULL) {
		lc.maps = s->next;
		pgsql_map_free(s->map);
		free(s);
	}
	cache_clear();
	ev_ref(pg.loop);
	ev_async_stop(pg.loop, &pg.back);
	free(pg.domains_text);
	free(pg.rows_copy);
	free(pg.datadir);
	pg.loop = NULL;
}

char *
pgsql_domains_text(uint64_t *gen)
{
	char *t;

	pthread_mutex_lock(&pg.lock);
	t = pg.domains_text != NULL ? strdup(pg.domains_text) : NULL;
	*gen = __atomic_load_n(&rows_published, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pg.lock);
	return t;
}

int
pgsql_domains_current(const struct spoold_conf *cf)
{
	return __atomic_load_n(&domains_current, __ATOMIC_RELAXED) &&
	    cf->pgsql_rows_gen == __atomic_load_n(&rows_published, __ATOMIC_RELAXED);
}
