/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * route.h - where a domain's mail goes.  A route that is a name: the MX
 * hosts of the domain (RFC 5321 5.1, RFC 7505) or one host's addresses,
 * resolved on the loop through dns.h into a list of addresses to try in
 * order.  A route that is an address (requester, [ip]) needs no lookup:
 * route_literal gives its one target at once.
 */
#ifndef SPOOLD_ROUTE_H
#define SPOOLD_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "smtp_cmd.h"

struct dns;
struct route_lookup;

/* At most this many MX hosts and addresses are tried in one run (as
 * Postfix's smtp_mx_address_limit: more only makes a dead site slower). */
#define ROUTE_MAX_HOSTS		5
#define ROUTE_MAX_TARGETS	10

struct route_target {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 name[SMTP_DOMAIN_MAX + 1];	/* the host name (TLS, logs) */
};

enum route_result {
	ROUTE_OK,
	ROUTE_TEMPFAIL,		/* try later: DNS trouble, no address, we are the best MX */
	ROUTE_PERMFAIL,		/* the domain takes no mail: null MX, no such domain */
};

/* why is NULL with ROUTE_OK; t[0..n) in the order to try; both valid during
 * the call only */
typedef void route_cb(void *arg, enum route_result, const struct route_target *t, size_t n,
    const char *why);

/* route_mx - the MX hosts of domain (the domain itself when it has no MX),
 * without self and every MX not better than self, each host's addresses
 * with port.  The callback comes later from the loop, exactly once unless
 * cancelled.  NULL when out of memory (no callback). */
struct route_lookup *route_mx(struct dns *, const char *domain, int port, const char *self,
    route_cb *, void *arg);
/* route_host - the addresses of one host name, with port */
struct route_lookup *route_host(struct dns *, const char *host, int port, route_cb *, void *arg);
/* route_cancel - no callback will come */
void	route_cancel(struct route_lookup *);

struct route;

/* route_is_literal - the route needs no lookup (requester, [address]) */
int	route_is_literal(const struct route *);
/* route_literal - the one target of a requester or [address] route
 * (requester: the ETRN client's address, NULL without one; the port is the
 * route's, else 25): 0, or -1 with a static reason.  Pure. */
int	route_literal(const struct route *, const struct sockaddr *requester,
	    struct route_target *t, const char **reason);

#endif
