/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * listener.c - listening sockets: bind before privileges are dropped, accept
 * without blocking, and pause (never spin) when out of file descriptors.
 */
#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cidr.h"
#include "listener.h"
#include "log.h"

#define ACCEPT_PAUSE	1.0	/* seconds to wait after EMFILE/ENFILE */
#define ACCEPT_BURST	64	/* accepts per wakeup, so one listener cannot starve the rest */

struct listener {
	struct listener		*next;
	enum listen_kind	 kind;
	size_t			 index;		/* in the configuration's listens[] */
	char			*text;
	int			 fd;
	ev_io			 io;
	ev_timer		 pause;
};

static struct {
	struct ev_loop		*loop;
	struct listener		*head;
	listener_accept_fn	*accept;
	int			 stopped;
} listeners;

static void
listener_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct listener *l = w->data;

	if (!listeners.stopped)
		ev_io_start(loop, &l->io);
}

static void
listener_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("listener %s: accept paused for %.0fs", l->text, ACCEPT_PAUSE);
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->pause, ACCEPT_PAUSE, 0);
				ev_timer_start(loop, &l->pause);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("listener %s: accept", l->text);
			return;
		}
		listeners.accept(l->kind, l->index, fd, (struct sockaddr *)&ss);
	}
}

/* listener_bind - one socket, bound and listening */
static int
listener_bind(const struct listen_addr *la)
{
	int fd, on = 1;

	if ((fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("listen %s: socket", la->text);
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (la->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&la->ss, la->sslen) == -1) {
		log_warn("listen %s: bind", la->text);
		close(fd);
		return -1;
	}
	if (listen(fd, 511) == -1) {
		log_warn("listen %s: listen", la->text);
		close(fd);
		return -1;
	}
	return fd;
}

/* listener_describe - "smtp 127.0.0.1:2525": the address actually bound */
static void
listener_describe(int fd, enum listen_kind kind, char *dst, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[64];

	getsockname(fd, (struct sockaddr *)&ss, &sl);
	sockaddr_text((struct sockaddr *)&ss, addr, sizeof(addr));
	snprintf(dst, len, ss.ss_family == AF_INET6 ? "%s [%s]:%d" : "%s %s:%d",
	    kind == LISTEN_SMTP ? "smtp" : kind == LISTEN_ODMR ? "odmr" : "metrics", addr, sockaddr_port((struct sockaddr *)&ss));
}

/* listener_write_file - the bound addresses, for tests that listen on port 0;
 * written to a temp name and renamed, so a reader never sees half of it */
static int
listener_write_file(const char *path)
{
	char tmp[4096], line[128];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL) {
		log_warn("listen-file %s", tmp);
		return -1;
	}
	for (struct listener *l = listeners.head; l; l = l->next) {
		listener_describe(l->fd, l->kind, line, sizeof(line));
		fprintf(fp, "%s\n", line);
	}
	if (fclose(fp) == EOF || rename(tmp, path) == -1) {
		log_warn("listen-file %s", path);
		return -1;
	}
	return 0;
}

int
listeners_open(const struct spoold_conf *cf, const char *listen_file)
{
	for (size_t i = 0; i < cf->n_listens; i++) {
		const struct listen_addr *la = &cf->listens[i];
		struct listener *l;
		int fd;

		if ((fd = listener_bind(la)) == -1)
			return -1;
		if ((l = calloc(1, sizeof(*l))) == NULL || (l->text = strdup(la->text)) == NULL)
			fatalx("out of memory");
		l->kind = la->kind;
		l->index = i;
		l->fd = fd;
		ev_io_init(&l->io, listener_accept, fd, EV_READ);
		ev_init(&l->pause, listener_resume);
		l->io.data = l->pause.data = l;
		l->next = listeners.head;
		listeners.head = l;
	}
	if (listen_file && listener_write_file(listen_file) == -1)
		return -1;
	return 0;
}

void
listeners_start(struct ev_loop *loop, listener_accept_fn *accept)
{
	char line[128];

	listeners.loop = loop;
	listeners.accept = accept;
	for (struct listener *l = listeners.head; l; l = l->next) {
		ev_io_start(loop, &l->io);
		listener_describe(l->fd, l->kind, line, sizeof(line));
		log_info("listening: %s", line);
	}
}

void
listeners_stop(void)
{
	struct listener *l, *next;

	listeners.stopped = 1;
	for (l = listeners.head; l; l = next) {
		next = l->next;
		if (listeners.loop != NULL) {
			ev_io_stop(listeners.loop, &l->io);
			ev_timer_stop(listeners.loop, &l->pause);
		}
		close(l->fd);
		free(l->text);
		free(l);
	}
	listeners.head = NULL;
}

int
listeners_same(const struct spoold_conf *a, const struct spoold_conf *b)
{
	if (a->n_listens != b->n_listens)
		return 0;
	for (size_t i = 0; i < a->n_listens; i++)
		if (a->listens[i].kind != b->listens[i].kind ||
		    strcmp(a->listens[i].text, b->listens[i].text) != 0)
			return 0;
	return 1;
}

/* is_local_address - sa is an address of this host (loopback, or on one of
 * its interfaces) */
static int
is_local_address(const struct sockaddr *sa)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (sa->sa_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127)
		return 1;
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr))
		return 1;
	if (getifaddrs(&ifa) == -1)
		return 0;
	for (i = ifa; i != NULL && !found; i = i->ifa_next)
		found = i->ifa_addr != NULL && i->ifa_addr->sa_family == sa->sa_family &&
		    sockaddr_same_host(i->ifa_addr, sa);
	freeifaddrs(ifa);
	return found;
}

int
listeners_own(const struct sockaddr *sa)
{
	for (struct listener *l = listeners.head; l; l = l->next) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (l->kind != LISTEN_SMTP || getsockname(l->fd, (struct sockaddr *)&ss, &len) == -1 ||
		    ss.ss_family != sa->sa_family ||
		    sockaddr_port((struct sockaddr *)&ss) != sockaddr_port(sa))
			continue;
		if (sockaddr_same_host((struct sockaddr *)&ss, sa) ||
		    (sockaddr_is_any((struct sockaddr *)&ss) && is_local_address(sa)))
			return 1;
	}
	return 0;
}
