/*
 * spoold.h - the server's process-wide state, shared by its modules.
 */
#ifndef SPOOLD_SPOOLD_H
#define SPOOLD_SPOOLD_H

#include <stdint.h>
#include <ev.h>
#include <gnutls/gnutls.h>

#include "smtp_server.h"
#include "spoold_conf.h"

/* TLS credentials, shared by configurations that name the same files: the
 * key is usually readable by root only, and a reload runs after the
 * privilege drop. */
struct spoold_tls {
	int				 refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t		 prio;
};

/* One loaded configuration and what is derived from it.  Sessions hold a
 * reference, so a reload (SIGHUP) never changes a session's rules midway. */
struct spoold_rt {
	int				 refs;
	struct spoold_conf		*conf;
	struct smtp_server_config	 smtp;
	struct spoold_tls		*tls;		/* NULL without tls-cert */
	struct spoold_tls		*client;	/* delivery runs' STARTTLS; trust
							 * loaded when a domain has tls verify */
	int				 client_trust;	/* CA certificates in client */
};

struct listener;
struct inbound;

struct spoold {
	struct ev_loop		*loop;
	struct spoold_rt	*rt;		/* for new sessions */
	struct spool		*spool;
	struct committer	*committer;
	struct dns		*dns;		/* NULL: no resolver (logged) */
	uint64_t		 next_id;
	struct listener		*listeners;
	struct inbound		*sessions;
	unsigned		 nsessions;
	int			 stopping;
	int			 drain_only;	/* too little space: no new mail */
	int			 exit_status;
	const char		*listen_file;
};

/* spoold exits with this after a storage I/O error (EX_TEMPFAIL) */
#define EXIT_STORAGE	75

extern struct spoold spoold;

/* spoold_stop - stop accepting, answer every message being stored, say 421
 * to the other sessions, then exit with status (the highest asked for) */
void	spoold_stop(int status, const char *why);
/* spoold_storage_failed - a commit failed with an I/O error: stop */
void	spoold_storage_failed(const char *what);

struct spoold_rt *rt_ref(struct spoold_rt *);
void	rt_unref(struct spoold_rt *);

/* listener.c */
int	listeners_open(const struct spoold_conf *, const char *listen_file);
void	listeners_start(void);
void	listeners_stop(void);
/* listeners_own - sa is where one of our SMTP listeners is (a delivery to
 * it would be a loop) */
int	listeners_own(const struct sockaddr *);
/* listeners_same - the new configuration listens where the running one does */
int	listeners_same(const struct spoold_conf *, const struct spoold_conf *);

/* control.c: DATADIR/control.sock for spoolctl flush */
int	control_open(const char *datadir);
void	control_close(void);

/* inbound.c: SMTP sessions of the smtp listeners */
/* inbound_addr_key - what per-address limits count: an IPv4 address, or the
 * /64 of an IPv6 one */
void	inbound_addr_key(const struct sockaddr *, char *dst, size_t len);
void	inbound_accept(int fd, const struct sockaddr *peer);
void	inbound_shutdown_all(void);

#endif
