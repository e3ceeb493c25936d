/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * session.c - accept, limits and the session list for every listener; see
 * session.h.  One table of connection rates and one count for both ports,
 * so a limit written once holds for each.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "runtime.h"
#include "session.h"

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
session_limit(const struct session_service *svc, const struct spoold_conf *cf, const char *addr)
{
	if (sessions.stopping)
		return R_SHUTDOWN;
	if (sessions.count >= cf->max_connections)
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

void
sessions_accept(const struct session_service *svc, int fd, const struct sockaddr *peer)
{
	struct session *s;
	enum smtp_reply_id refuse;

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
	sockaddr_limit_key(peer, s->addr, sizeof(s->addr));
	refuse = session_limit(svc, sessions.rt->conf, s->addr);
	s->rt = rt_ref(sessions.rt);
	session_link(s);
	s->smtp = smtp_session_new(sessions.loop, fd, peer, svc->config(s->rt), svc->ops, s, refuse);
	if (s->smtp == NULL) {
		log_warnx("%s: cannot start a session", svc->name);
		close(fd);
		session_closed(s);
	}
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
		smtp_session_shutdown(s->smtp);
	}
}
