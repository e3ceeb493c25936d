/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * session.c - accept, limits and the session list for every listener; see
 * session.h.  One table of connection rates and one count for both ports,
 * so a limit written once holds for each.
 *
 * A listener's proxy-protocol-from addresses (HAProxy's) must start with a
 * PROXY header, and only they may: the header is read here, before the
 * session exists, on the io the session then takes, so the client's bytes
 * after it stay in the buffer for SMTP.  Everyone else's header is just an
 * unknown command to the SMTP engine.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "io.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "ratelimit.h"
#include "runtime.h"
#include "session.h"

/* HAProxy sends the header as it connects: a peer that takes longer is
 * not one, and must not hold a connection slot */
#define SESSION_PROXY_TIMEOUT	10.0

static struct {
	struct ev_loop		*loop;
	struct spoold_rt	*rt;		/* for new sessions */
	struct session		*head;
	unsigned		 count;
	int			 stopping;
	struct rate_table	 connections;	/* rate-connections, per address */
} sessions;

void
sessions_init(struct ev_loop *loop)
{
	sessions.loop = loop;
}

void
sessions_configure(struct spoold_rt *rt)
{
	struct spoold_rt *old = sessions.rt;

	if (sessions.stopping)
		return;
	sessions.rt = rt_ref(rt);
	rt_unref(old);
}

unsigned
sessions_count(void)
{
	return sessions.count;
}

/* count_addr - sessions of service from the same address (or IPv6 /64) */
static unsigned
count_addr(const struct session_service *svc, const char *addr)
{
	unsigned n = 0;

	for (struct session *s = sessions.head; s; s = s->next)
		n += s->service == svc && strcmp(s->addr, addr) == 0;
	return n;
}

/* session_limit - R__COUNT, or the 421 that the connection limits call for */
static enum smtp_reply_id
session_limit(const struct session_service *svc, const struct spoold_conf *cf, const char *addr,
    unsigned self)
{
	if (sessions.stopping)
		return R_SHUTDOWN;
	/* self: the session is counted already (it read a PROXY header) */
	if (sessions.count - self >= cf->max_connections)
		return R_TOO_MANY_CONNS;
	if (count_addr(svc, addr) >= cf->max_connections_ip)
		return R_TOO_MANY_CONNS_IP;
	if (rate_exceeded(&sessions.connections, addr, cf->rate_connections, ev_now(sessions.loop)))
		return R_RATE_CONNECTIONS;
	return R__COUNT;
}

/* session_check_starttls - rate-tls, for both ports: a handshake costs far
 * more than a command (Postfix's smtpd_client_new_tls_session_rate_limit) */
enum smtp_reply_id
session_check_starttls(void *arg, struct smtp_session *smtp)
{
	struct session *s = arg;

	if (rate_exceeded(&rate_tls_handshakes, s->addr, s->rt->conf->rate_tls,
	    ev_now(sessions.loop)))
		return R_TLS_RATE;
	return R__COUNT;
}

void
session_replied(void *arg, struct smtp_session *smtp, const char *command, int code,
    const char *line)
{
	struct session *s = arg;

	(void)smtp;
	metrics_reply(s->service->name, command, code, line);
}

enum smtp_reply_id
session_client_changed(void *arg, struct smtp_session *smtp)
{
	struct session *s = arg;
	char addr[sizeof(s->addr)];
	enum smtp_reply_id limit;

	/* The limits were checked against the proxy's address when it
	 * connected: now the client's, as if it had connected itself (this
	 * session, still under the proxy's address, is not counted twice). */
	sockaddr_limit_key(smtp_session_peer(smtp), addr, sizeof(addr));
	limit = session_limit(s->service, s->rt->conf, addr, 1);
	memcpy(s->addr, addr, sizeof(s->addr));
	return limit;
}

static void
session_link(struct session *s)
{
	s->next = sessions.head;
	if (s->next)
		s->next->prev = s;
	sessions.head = s;
	sessions.count++;
	metrics_set(MG_SESSIONS, sessions.count);
}

void
session_closed(struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		sessions.head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	sessions.count--;
	metrics_set(MG_SESSIONS, sessions.count);
	rt_unref(s->rt);
	free(s);
}

/* session_start - the SMTP session, on io (after a PROXY header) or on fd,
 * for the client at peer: limits by its address */
static void
session_start(struct session *s, struct io *io, int fd, const struct sockaddr *peer)
{
	const struct session_service *svc = s->service;
	enum smtp_reply_id refuse;
	char key[sizeof(s->addr)];

	sockaddr_limit_key(peer, key, sizeof(key));
	refuse = session_limit(svc, s->rt->conf, key, io != NULL);
	memcpy(s->addr, key, sizeof(s->addr));
	if (io == NULL)
		session_link(s);
	s->smtp = io != NULL ?
	    smtp_session_new_io(io, peer, svc->config(s->rt), svc->ops, s, refuse) :
	    smtp_session_new(sessions.loop, fd, peer, svc->config(s->rt), svc->ops, s, refuse);
	if (s->smtp == NULL) {
		log_warnx("%s: cannot start a session", svc->name);
		if (io != NULL)
			io_free(io);
		else
			close(fd);
		session_closed(s);
	}
}

/* session_role - the log's name for the service's sessions */
static const char *
session_role(const struct session *s)
{
	return strcmp(s->service->name, "odmr") == 0 ? LOG_ODMR : LOG_SMTPD;
}

/* session_proxy_listed - peer is one of the listener's proxy-protocol-from */
static int
session_proxy_listed(const struct spoold_conf *cf, size_t index, const struct sockaddr *peer)
{
	const struct listen_addr *la = index < cf->n_listens ? &cf->listens[index] : NULL;

	for (size_t i = 0; la != NULL && i < la->n_proxy_from; i++)
		if (cidr_match(&la->proxy_from[i], peer))
			return 1;
	return 0;
}

/* session_proxy_done - the header is in: the session, for the client it
 * names (LOCAL, a health check of the proxy's: for the proxy itself) */
static void
session_proxy_done(struct session *s, struct io *io, const struct proxy_header *h)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char client[64];

	s->proxy_io = NULL;
	if (h->local) {
		if (getpeername(io_fd(io), (struct sockaddr *)&ss, &len) == -1) {
			log_warn("%s: PROXY from %s: getpeername", s->service->name, s->proxy_text);
			io_free(io);
			session_closed(s);
			return;
		}
		log_role(session_role(s), "PROXY v%d from %s: local (the proxy's own connection)",
		    h->version, s->proxy_text);
	} else {
		ss = h->src;
		log_role(session_role(s), "PROXY v%d from %s: client %s:%d", h->version,
		    s->proxy_text, sockaddr_text((struct sockaddr *)&ss, client, sizeof(client)),
		    sockaddr_port((struct sockaddr *)&ss));
	}
	io_set_timeout(io, 0, 0);
	session_start(s, io, -1, (struct sockaddr *)&ss);
}

/* session_proxy_event - the io's events until the PROXY header is in:
 * anything but a valid header ends the connection, said in the log */
static void
session_proxy_event(struct io *io, enum io_event ev, void *arg)
{
	struct session *s = arg;
	struct buf *in = io_input(io);
	struct proxy_header h;
	const char *why;
	int n;

	switch (ev) {
	case IO_DATAIN:
		if ((n = proxy_parse(buf_head(in), buf_used(in), &h, &why)) == 0)
			return;
		if (n > 0) {
			buf_consume(in, (size_t)n);	/* the rest is the client's SMTP */
			session_proxy_done(s, io, &h);
			return;
		}
		break;
	case IO_TIMEOUT:
		why = "no header in time";
		break;
	case IO_DISCONNECTED:
		why = "closed before a whole header";
		break;
	case IO_ERROR:
		why = io_error(io);
		break;
	default:
		return;
	}
	log_role_warn(session_role(s), "PROXY from %s refused: %s; connection closed",
	    s->proxy_text, why);
	s->proxy_io = NULL;
	io_free(io);
	session_closed(s);
}

void
sessions_accept(const struct session_service *svc, size_t index, int fd,
    const struct sockaddr *peer)
{
	struct session *s;

	if (sessions.rt == NULL) {	/* shut down: no new sessions */
		close(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warnx("%s: out of memory, dropping connection", svc->name);
		close(fd);
		return;
	}
	s->service = svc;
	metrics_inc(strcmp(svc->name, "odmr") == 0 ? MC_CONNECTIONS_ODMR : MC_CONNECTIONS_SMTP);
	s->rt = rt_ref(sessions.rt);
	if (!session_proxy_listed(s->rt->conf, index, peer)) {
		session_start(s, NULL, fd, peer);
		return;
	}
	/* counted from now on (max-connections); per address once the
	 * header says which */
	if ((s->proxy_io = io_new(sessions.loop, fd, session_proxy_event, s)) == NULL) {
		log_warnx("%s: out of memory, dropping connection", svc->name);
		close(fd);
		rt_unref(s->rt);
		free(s);
		return;
	}
	sockaddr_text(peer, s->proxy_text, sizeof(s->proxy_text));
	io_set_timeout(s->proxy_io, SESSION_PROXY_TIMEOUT, 0);
	session_link(s);
}

void
sessions_shutdown(void)
{
	struct session *s, *next;

	sessions.stopping = 1;
	rt_unref(sessions.rt);	/* the sessions keep their own */
	sessions.rt = NULL;
	for (s = sessions.head; s; s = next) {
		next = s->next;	/* the session may go away at once */
		if (s->proxy_io != NULL) {	/* no session yet: nothing to say */
			io_free(s->proxy_io);
			session_closed(s);
		} else
			smtp_session_shutdown(s->smtp);
	}
}
