/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * listener.h - the listening sockets of "listen smtp" and "listen odmr":
 * bound before privileges are dropped, accepting without blocking.
 */
#ifndef SPOOLD_LISTENER_H
#define SPOOLD_LISTENER_H

#include <sys/socket.h>
#include <ev.h>

#include "spoold_conf.h"

/* What to do with an accepted connection (the socket is non-blocking).
 * index: the listener's listen line in the configuration's listens[]; a
 * reload keeps the running lines in the same order (spoold.c). */
typedef void listener_accept_fn(enum listen_kind, size_t index, int fd,
    const struct sockaddr *peer);

/* listeners_open - bind every listen line of cf; the addresses bound go to
 * listen_file (for tests on port 0) when it is set.  -1 (logged) if one
 * cannot be bound. */
int	listeners_open(const struct spoold_conf *, const char *listen_file);
/* listeners_start - accept from here on, handing each connection to accept */
void	listeners_start(struct ev_loop *, listener_accept_fn *accept);
void	listeners_stop(void);
/* listeners_own - sa is where one of our SMTP listeners is (a delivery to
 * it would be a loop) */
int	listeners_own(const struct sockaddr *);
/* listeners_same - the new configuration listens where the running one does */
int	listeners_same(const struct spoold_conf *, const struct spoold_conf *);

#endif
