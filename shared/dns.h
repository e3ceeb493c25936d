/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * dns.h - a non-blocking stub resolver for mail routing: MX records and the
 * addresses of hosts, looked up with c-ares on the program's libev loop.
 *
 * Only dns.c includes <ares.h>.  Every callback comes from the loop, never
 * from inside dns_mx() or dns_addr(), and never from inside c-ares: a
 * callback may start new queries, cancel others or dns_free() the resolver.
 *
 * Names are looked up as fully-qualified (no search list) and in the DNS
 * only (no /etc/hosts), as mail routing wants: the domain's published
 * records decide where its mail goes.
 *
 * Statuses, and what a mailer makes of them:
 *   DNS_OK        records found
 *   DNS_NXDOMAIN  the name does not exist (RFC 5321 §5.1: permanent)
 *   DNS_NODATA    the name exists, with no record of that type (for MX:
 *                 use the domain's own address, RFC 5321 §5.1 implicit MX)
 *   DNS_TEMPFAIL  timeout, SERVFAIL, refused, no server, out of memory,
 *                 an answer with nothing usable in it: try again later
 *   DNS_BADNAME   the name is not a syntactically valid host name; no
 *                 query was sent
 */
#ifndef SHARED_DNS_H
#define SHARED_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct ev_loop;
struct dns;
struct dns_query;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,		/* name does not exist */
	DNS_NODATA,		/* exists, no record of that type */
	DNS_TEMPFAIL,		/* timeout, SERVFAIL, refused, no server */
	DNS_BADNAME,
};

/* The longest name in text form, no trailing dot (RFC 1035 2.3.4: 255
 * octets in wire form); a host field holds any name an answer carries
 * (up to 255 octets) and its NUL. */
#define DNS_NAME_MAX	253
#define DNS_HOST_SIZE	256

struct dns_mx {
	unsigned	pref;
	char		host[DNS_HOST_SIZE];	/* no trailing dot; "" for the root (null MX) */
};

/* why: NULL with DNS_OK, else a short reason (c-ares's text for a failed
 * query), valid during the call.  The records too are valid during the call
 * only: copy what is kept. */
typedef void dns_mx_cb(void *arg, enum dns_status, const struct dns_mx *mx, size_t n,
    const char *why);
typedef void dns_addr_cb(void *arg, enum dns_status, const struct sockaddr_storage *addrs,
    size_t n, const char *why);

/* dns_new - a resolver on loop; servers NULL reads /etc/resolv.conf, else
 * "ip[:port][,ip[:port]...]" with IPv6 as [::1]:53.  NULL with a reason in
 * err.  A dead server makes a query fail after about 9 s (3 s, then 6 s). */
struct dns	*dns_new(struct ev_loop *, const char *servers, char *err, size_t errlen);
/* dns_free - stop everything; pending queries' callbacks are NOT called and
 * their dns_query pointers become invalid.  Allowed inside a callback. */
void		 dns_free(struct dns *);

/* dns_mx - the MX records of name, in the order of the answer (see
 * dns_mx_select).  The callback comes later from the loop, always exactly
 * once unless cancelled.  NULL when out of memory: no callback then. */
struct dns_query *dns_mx(struct dns *, const char *name, dns_mx_cb *, void *arg);
/* dns_addr - the A and AAAA addresses of name, in the resolver's order (RFC
 * 6724 sorting), each with port set.  An IPv4 literal comes back as is,
 * without a query.
 * Callback as for dns_mx; NULL when out of memory or port is not 0..65535. */
struct dns_query *dns_addr(struct dns *, const char *name, int port, dns_addr_cb *, void *arg);
/* dns_cancel - the callback of q will not be called.  q is freed when c-ares
 * lets go of it (at the latest when the query times out), so q must not be
 * used afterwards.  Only before q's callback has returned. */
void		 dns_cancel(struct dns_query *);

/* dns_strstatus - "OK", "NXDOMAIN", "NODATA", "TEMPFAIL", "BADNAME" */
const char	*dns_strstatus(enum dns_status);

/* dns_name_valid - 1 when name may be looked up: labels of 1 to 63 letters,
 * digits, '-' (not first or last) and '_', at most 253 characters, one
 * trailing dot allowed; 0 otherwise */
int		 dns_name_valid(const char *name);

/* dns_mx_select - the MX hosts to try, in order (RFC 5321 §5.1, RFC 7505);
 * no I/O.  Sorts mx[0..n) by preference, stable: equal preferences keep the
 * order of the answer (servers rotate equal records already; a caller that
 * wants more spreading shuffles each run of equals itself).  Hosts "" and "."
 * are dropped.  When a host equals one of self_names (case-insensitive, a
 * trailing dot ignored) that MX and every MX of equal or worse (numerically
 * >=) preference are dropped.  Returns the count kept, in mx[0..count).
 *   *null_mx = 1 when the set is a null MX (one record, host "" or ".",
 *     RFC 7505 §3): the domain takes no mail; 0 is returned.
 *   *self_listed = 1 when one of self_names was found: with 0 kept, "we are
 *     the best MX for this domain: no route" is the thing to report.
 * null_mx and self_listed may be NULL. */
size_t		 dns_mx_select(struct dns_mx *mx, size_t n, const char *const *self_names,
		    size_t nself, int *null_mx, int *self_listed);

#endif
