/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics_http.c - the metrics thread and the HTTP side of metrics-listen;
 * see metrics_http.h.
 *
 * The HTTP is the least a Prometheus server (or curl) needs: one request
 * per connection, GET or HEAD of /metrics, the reply with Content-Length
 * and "Connection: close".  Everything else gets its 4xx.  The request is
 * hostile input like any other: lines and header count are bounded, and a
 * connection that does not finish its request in time is closed.
 *
 * SECURITY: the metrics name the customer domains with mail waiting.  Bind
 * metrics-listen to a management address; there is no authentication.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "http_request.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "metrics_spool.h"

#define HTTP_TIMEOUT		10.0
#define HTTP_CONNS_MAX		32

struct http_conn;

/* ---- the metrics thread ---- */

static struct {
	struct ev_loop		*loop;
	struct queue		*queue;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	int			 started, stopping;
	int			 want;		/* loop -> thread: render once more */
	struct buf		*made;		/* thread -> loop, NULL when failed */
	int			 made_ready;
	ev_async		 async;
	/* loop only */
	int			 rendering;
	struct metrics_waiter	*waiters;
	struct http_conn	*conns;		/* open, for metrics_stop */
	unsigned		 nconns;
} mt;

static void *
metrics_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mt.lock);
	for (;;) {
		struct buf *b;

		while (!mt.want && !mt.stopping)
			pthread_cond_wait(&mt.wake, &mt.lock);
		if (mt.stopping)
			break;
		mt.want = 0;
		pthread_mutex_unlock(&mt.lock);
		if ((b = calloc(1, sizeof(*b))) != NULL) {
			buf_init(b);
			metrics_render(b);
			/* a spool read error still leaves the counters to show */
			(void)metrics_spool_render(mt.queue, b);
		}
		pthread_mutex_lock(&mt.lock);
		mt.made = b;
		mt.made_ready = 1;
		ev_async_send(mt.loop, &mt.async);
	}
	pthread_mutex_unlock(&mt.lock);
	return NULL;
}

/* metrics_made - the thread has rendered: every waiter gets it, including
 * those that came after the rendering began (a few milliseconds older
 * than they asked for, which no scrape can tell) */
static void
metrics_made(struct ev_loop *loop, ev_async *w, int revents)
{
	struct metrics_waiter *list;
	struct buf *b;

	(void)loop, (void)w, (void)revents;
	pthread_mutex_lock(&mt.lock);
	if (!mt.made_ready) {
		pthread_mutex_unlock(&mt.lock);
		return;
	}
	b = mt.made;
	mt.made = NULL;
	mt.made_ready = 0;
	pthread_mutex_unlock(&mt.lock);
	mt.rendering = 0;
	list = mt.waiters;
	mt.waiters = NULL;
	while (list != NULL) {
		struct metrics_waiter *w2 = list;

		list = w2->next;
		if (list != NULL)
			list->prev = NULL;	/* w2 may be freed by its done() */
		w2->prev = w2->next = NULL;
		w2->done(w2, b);
	}
	if (b != NULL) {
		buf_free(b);
		free(b);
	}
}

int
metrics_start(struct ev_loop *loop, struct queue *q)
{
	mt.loop = loop;
	mt.queue = q;
	pthread_mutex_init(&mt.lock, NULL);
	pthread_cond_init(&mt.wake, NULL);
	ev_async_init(&mt.async, metrics_made);
	ev_async_start(loop, &mt.async);
	ev_unref(loop);		/* the watcher alone does not keep the loop running */
	if (pthread_create(&mt.thread, NULL, metrics_main, NULL) != 0) {
		log_warnx("metrics: cannot start the metrics thread; /metrics and spoolctl stats "
		    "will answer 503");
		ev_ref(loop);
		ev_async_stop(loop, &mt.async);
		return -1;
	}
	mt.started = 1;
	return 0;
}

void
metrics_ask(struct metrics_waiter *w)
{
	if (!mt.started) {
		w->done(w, NULL);
		return;
	}
	w->prev = NULL;
	w->next = mt.waiters;
	if (mt.waiters != NULL)
		mt.waiters->prev = w;
	mt.waiters = w;
	if (mt.rendering)
		return;
	mt.rendering = 1;
	pthread_mutex_lock(&mt.lock);
	mt.want = 1;
	pthread_cond_signal(&mt.wake);
	pthread_mutex_unlock(&mt.lock);
}

void
metrics_cancel(struct metrics_waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else if (mt.waiters == w)
		mt.waiters = w->next;
	else
		return;		/* not waiting */
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

/* ---- one HTTP connection ---- */

enum http_state {
	HTTP_REQUEST,		/* reading the request head */
	HTTP_RENDERING,		/* waiting for the text */
	HTTP_SENDING,
};

struct http_conn {
	struct http_conn	*prev, *next;
	struct io		*io;
	enum http_state		 state;
	int			 head;		/* HEAD: no body */
	struct http_request	 rq;
	char			 peer[64];
	struct metrics_waiter	 wait;
};

static void
http_free(struct http_conn *hc)
{
	metrics_cancel(&hc->wait);
	io_free(hc->io);
	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		mt.conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	free(hc);
	mt.nconns--;
}

/* http_respond - the whole reply, then the connection closes once sent */
static void
http_respond(struct http_conn *hc, const char *status, const char *extra, const char *type,
    const char *body, size_t len)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", status, type, extra, len);
	io_write(hc->io, head, (size_t)n);
	if (!hc->head)
		io_write(hc->io, body, len);
	io_pause_read(hc->io);
	hc->state = HTTP_SENDING;
}

static void
http_error(struct http_conn *hc, const char *status, const char *extra)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);

	http_respond(hc, status, extra, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
http_text_ready(struct metrics_waiter *w, const struct buf *text)
{
	struct http_conn *hc = (struct http_conn *)((char *)w - offsetof(struct http_conn, wait));

	if (text == NULL) {
		http_error(hc, "503 Service Unavailable", "");
		return;
	}
	http_respond(hc, "200 OK", "", "text/plain; version=0.0.4; charset=utf-8", buf_head(text),
	    buf_used(text));
}

static void
http_input(struct http_conn *hc)
{
	char *line;
	size_t len;
	int toolong = 0, status = 0;

	while (hc->state == HTTP_REQUEST &&
	    (line = io_getline(hc->io, HTTP_LINE_MAX, &len, &toolong)) != NULL) {
		if ((status = toolong ? 400 : http_request_feed(&hc->rq, line, len)) != 0)
			break;
	}
	if (hc->state != HTTP_REQUEST || (status == 0 && !toolong))
		return;		/* more to come */
	hc->head = hc->rq.head;
	switch (status) {
	case 200:
		hc->state = HTTP_RENDERING;
		io_pause_read(hc->io);
		hc->wait.done = http_text_ready;
		metrics_ask(&hc->wait);
		return;
	case 404:
		http_error(hc, "404 Not Found", "");
		return;
	case 405:
		http_error(hc, "405 Method Not Allowed", "Allow: GET, HEAD\r\n");
		return;
	case 431:
		http_error(hc, "431 Request Header Fields Too Large", "");
		return;
	default:	/* 400, or a line past HTTP_LINE_MAX */
		http_error(hc, "400 Bad Request", "");
		return;
	}
}

static void
http_event(struct io *io, enum io_event ev, void *arg)
{
	struct http_conn *hc = arg;

	(void)io;
	switch (ev) {
	case IO_DATAIN:
		http_input(hc);
		return;
	case IO_LOWAT:
		if (hc->state == HTTP_SENDING)
			http_free(hc);
		return;
	case IO_TIMEOUT:
		log_info("metrics: %s from %s timed out", hc->state == HTTP_REQUEST ? "request" :
		    hc->state == HTTP_RENDERING ? "the text (still being made) for" : "reply to",
		    hc->peer);
		http_free(hc);
		return;
	default:	/* the scraper went away */
		http_free(hc);
		return;
	}
}

void
metrics_http_accept(int fd, const struct sockaddr *peer)
{
	struct http_conn *hc;

	if (mt.nconns >= HTTP_CONNS_MAX) {
		static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
		    "Connection: close\r\n\r\n";

		struct io *io = io_new(mt.loop, fd, http_event, NULL);

		if (io == NULL) {
			close(fd);
			return;
		}
		(void)io_send_last(io, busy, sizeof(busy) - 1);	/* best effort, never waits */
		io_free(io);
		return;
	}
	if ((hc = calloc(1, sizeof(*hc))) == NULL ||
	    (hc->io = io_new(mt.loop, fd, http_event, hc)) == NULL) {
		free(hc);
		close(fd);
		return;
	}
	mt.nconns++;
	hc->next = mt.conns;
	if (mt.conns != NULL)
		mt.conns->prev = hc;
	mt.conns = hc;
	sockaddr_text(peer, hc->peer, sizeof(hc->peer));
	/* the whole exchange, not per read: a slow scraper cannot hold a slot */
	io_set_timeout(hc->io, HTTP_TIMEOUT, 0);
}

void
metrics_stop(void)
{
	while (mt.conns != NULL)	/* the scrapes still open go */
		http_free(mt.conns);
	if (!mt.started)
		return;
	pthread_mutex_lock(&mt.lock);
	mt.stopping = 1;
	pthread_cond_signal(&mt.wake);
	pthread_mutex_unlock(&mt.lock);
	pthread_join(mt.thread, NULL);
	mt.started = 0;
	if (mt.made != NULL) {
		buf_free(mt.made);
		free(mt.made);
		mt.made = NULL;
	}
	ev_ref(mt.loop);
	ev_async_stop(mt.loop, &mt.async);
	/* other waiters (the control socket's) get nothing */
	while (mt.waiters != NULL) {
		struct metrics_waiter *w = mt.waiters;

		metrics_cancel(w);
		w->done(w, NULL);
	}
}
