/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * session.h - every client connection of spoold's listeners, whatever the
 * service: accepted here, held to the connection limits here
 * (max-connections, max-connections-per-ip, rate-connections) by the
 * client's address (the one a PROXY header gives, behind a load balancer),
 * kept in one
 * list with one count, and run by the shared SMTP engine with the
 * service's policy (inbound.c for mail, odmr.c for ODMR).
 */
#ifndef SPOOLD_SESSION_H
#define SPOOLD_SESSION_H

#include <sys/socket.h>
#include <ev.h>

#include "smtp_server.h"

struct spoold_rt;
struct session;

/* What a listener kind runs: the engine's ops (their arg is the struct
 * session) and where in the runtime its engine settings are. */
struct session_service {
	const char			*name;		/* "smtp", "odmr" */
	const struct smtp_server_ops	*ops;
	const struct smtp_server_config	*(*config)(const struct spoold_rt *);
};

struct session {
	struct session			*prev, *next;
	const struct session_service	*service;
	struct smtp_session		*smtp;
	struct spoold_rt		*rt;		/* the configuration it started with */
	char				 addr[64];	/* what per-address limits count */
	void				*policy;	/* the service's own state, or NULL */
	void				*judging;	/* a recipient being judged (inbound: its
							 * filter_rcpt), or NULL */
	void				*lookup;	/* its recipients lookup in
							 * PostgreSQL (pgsql_lookup), or NULL */
	struct io			*proxy_io;	/* reading its PROXY header (smtp is
							 * NULL until then), or NULL */
	char				 proxy_text[64];	/* the proxy's address */
};

void	sessions_init(struct ev_loop *);
/* sessions_configure - the configuration new sessions get (start, SIGHUP) */
void	sessions_configure(struct spoold_rt *);
/* sessions_accept - a session of service on a socket accepted by the
 * listener of listens[index]: the greeting, or the 421 the limits call for.
 * From an address of the listener's proxy-protocol-from, the PROXY header
 * first, and the client it names is the session's peer. */
void	sessions_accept(const struct session_service *, size_t index, int fd,
	    const struct sockaddr *peer);
/* session_closed - for the service's closed op, last: the session goes */
void	session_closed(struct session *);
/* sessions_shutdown - no new sessions; 421 to the others (a session
 * storing a message gets its answer first) */
void	sessions_shutdown(void);
unsigned sessions_count(void);
/* session_check_starttls - the engine's check_starttls for every service:
 * rate-tls, one count per client address for both ports */
enum smtp_reply_id session_check_starttls(void *arg, struct smtp_session *);
/* session_replied - the engine's replied for every service: the counters
 * of refusals and of ETRN and ATRN replies (metrics.h) */
void	session_replied(void *arg, struct smtp_session *, const char *command, int code,
	    const char *line);
/* session_client_changed - the engine's client_changed: XCLIENT named
 * another client, whose address the per-address limits count from now on:
 * a 421 when that client has max-connections-per-ip already, or is over
 * rate-connections, as if it had connected itself */
enum smtp_reply_id session_client_changed(void *arg, struct smtp_session *);

#endif
