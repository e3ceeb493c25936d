/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics_http.h - GET /metrics on the metrics-listen sockets, and the
 * thread that renders the text.
 *
 * A scrape never blocks the loop: the request is read and the reply
 * written through the I/O layer, and the text (which reads the spool) is
 * made on the metrics thread.  Requests that arrive while a rendering is
 * under way share it.  The control socket's "stats" asks the same way.
 */
#ifndef SPOOLD_METRICS_HTTP_H
#define SPOOLD_METRICS_HTTP_H

#include <sys/socket.h>
#include <ev.h>

#include "buf.h"

struct queue;

/* One wait for the text; done() runs on the loop, once, with the text (or
 * NULL when it could not be made). */
struct metrics_waiter {
	struct metrics_waiter	*prev, *next;
	void			(*done)(struct metrics_waiter *, const struct buf *text);
};

/* metrics_start - the thread, over the queue's reads; -1 (logged) if it
 * cannot */
int	metrics_start(struct ev_loop *, struct queue *);
/* metrics_stop - end the thread and every connection (before the queue
 * closes) */
void	metrics_stop(void);

void	metrics_ask(struct metrics_waiter *);
void	metrics_cancel(struct metrics_waiter *);

/* metrics_http_accept - a connection on a metrics-listen socket */
void	metrics_http_accept(int fd, const struct sockaddr *peer);

#endif
