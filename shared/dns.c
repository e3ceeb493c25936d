/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * dns.c - MX and address lookups with c-ares, driven by libev.
 *
 * The only file that includes <ares.h>.  c-ares says which of its sockets it
 * wants watched (ARES_OPT_SOCK_STATE_CB): one ev_io each.  It says when its
 * next retransmission or timeout is due (ares_timeout): one ev_timer,
 * re-armed after every call into c-ares.  Both feed ares_process_fd().
 *
 * c-ares's callbacks only copy the answer out and put the query on a done
 * list; a zero timer hands the results to the program from the loop.  So no
 * callback runs inside dns_mx()/dns_addr() (c-ares answers some queries on
 * the spot) or inside c-ares (where dns_free() -> ares_destroy() would pull
 * the channel from under it).
 *
 * Trusts nothing in answers: MX host names are checked like query names.
 */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>
#include <ev.h>

#include "dns.h"

/* c-ares doubles the timeout at each round over the servers: a query to one
 * dead server fails after 3 + 6 = 9 s.  A slow answer is not lost by the
 * retransmission: c-ares still takes a reply to the first one. */
#define DNS_TIMEOUT_MS	3000
#define DNS_TRIES	2
#define DNS_LABEL_MAX	63

struct dns_sock {
	struct dns		*dns;
	ev_io			 w;
	struct dns_sock		*next;
};

struct dns {
	struct ev_loop		*loop;
	ares_channel		 channel;
	ev_timer		 timer;		/* c-ares's next timeout */
	ev_timer		 kick;		/* zero timer: deliver the done list */
	struct dns_sock		*socks;
	struct dns_query	*done;		/* finished, callback not yet called */
	struct dns_query	**done_tail;
	int			 delivering;	/* inside dns_on_kick() */
	int			 dead;		/* dns_free() called from a callback */
	int			 destroying;	/* inside ares_destroy() */
};

enum dns_qstate {
	Q_ARES,			/* c-ares holds it */
	Q_DONE,			/* on the done list */
	Q_DELIVERING,		/* its callback is running */
};

struct dns_query {
	struct dns		*dns;
	enum dns_qstate		 state;
	int			 cancelled;
	dns_mx_cb		*mx_cb;		/* one of mx_cb, addr_cb */
	dns_addr_cb		*addr_cb;
	void			*arg;
	int			 port;
	enum dns_status		 status;
	struct dns_mx		*mx;
	struct sockaddr_storage	*addrs;
	size_t			 n;
	char			 why[128];
	struct dns_query	*next;		/* done list */
};

/* c-ares keeps library state of its own (on Windows, Winsock); once a process */
static int dns_library_ready;

static void dns_destroy(struct dns *);

const char *
dns_strstatus(enum dns_status st)
{
	switch (st) {
	case DNS_OK:		return "OK";
	case DNS_NXDOMAIN:	return "NXDOMAIN";
	case DNS_NODATA:	return "NODATA";
	case DNS_TEMPFAIL:	return "TEMPFAIL";
	case DNS_BADNAME:	return "BADNAME";
	}
	return "?";
}

/* dns_status_of - our status for a c-ares failure */
static enum dns_status
dns_status_of(int rc)
{
	switch (rc) {
	case ARES_SUCCESS:	return DNS_OK;
	case ARES_ENOTFOUND:	return DNS_NXDOMAIN;
	case ARES_ENODATA:	return DNS_NODATA;
	case ARES_EBADNAME:	return DNS_BADNAME;
	default:		return DNS_TEMPFAIL;	/* ETIMEOUT, ESERVFAIL, EREFUSED, ... */
	}
}

/* dns_label_char - 1 for a letter, digit, '-' or '_' (ASCII, whatever the locale) */
static int
dns_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* '_' is outside RFC 1123 §2.1's letters-digits-hyphen, but published host
 * names have it and refusing them gains nothing. */
int
dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0 || name[i - 1] == '-')
				return 0;
			label = 0;
		} else if (!dns_label_char(name[i]) || (name[i] == '-' && label == 0) ||
		    ++label > DNS_LABEL_MAX)
			return 0;
	}
	return label > 0 && name[len - 1] != '-';
}

/* dns_port_ok - the port of one "ip:port" entry: 1..65535 digits up to end */
static int
dns_port_ok(const char *p, const char *end)
{
	unsigned long port = 0;

	if (p == end)
		return 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
			return 0;
	}
	return port > 0;
}

/* dns_server_ok - one entry of a server list: empty and port checks only;
 * c-ares parses the address (and would wrap a port above 65535) */
static int
dns_server_ok(const char *s, const char *end)
{
	const char *colon;

	if (s == end)
		return 0;
	if (*s == '[') {
		const char *rb = memchr(s, ']', (size_t)(end - s));

		/* c-ares takes brackets only with a port */
		return rb != NULL && rb[1] == ':' && dns_port_ok(rb + 2, end);
	}
	colon = memchr(s, ':', (size_t)(end - s));
	if (colon == NULL || memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
		return 1;	/* no port, or a bare IPv6 address */
	return dns_port_ok(colon + 1, end);
}

/* dns_servers_check - 0 when every entry of servers looks right, else -1 with err */
static int
dns_servers_check(const char *servers, char *err, size_t errlen)
{
	const char *s = servers, *end;

	do {
		if ((end = strchr(s, ',')) == NULL)
			end = s + strlen(s);
		if (!dns_server_ok(s, end)) {
			snprintf(err, errlen, "bad DNS server \"%.*s\": want ip[:port], [ipv6]:port",
			    (int)(end - s > 64 ? 64 : end - s), s);
			return -1;
		}
		s = end + 1;
	} while (*end != '\0');
	return 0;
}

/* dns_rearm - the timer set to c-ares's next deadline, or stopped when idle */
static void
dns_rearm(struct dns *dns)
{
	struct timeval tv;

	ev_timer_stop(dns->loop, &dns->timer);
	if (ares_timeout(dns->channel, NULL, &tv) == NULL)
		return;
	ev_timer_set(&dns->timer, (double)tv.tv_sec + (double)tv.tv_usec / 1e6, 0.);
	ev_timer_start(dns->loop, &dns->timer);
}

/* dns_on_sock - a socket c-ares watches is ready */
static void
dns_on_sock(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_sock *s = w->data;
	struct dns *dns = s->dns;
	ares_socket_t fd = w->fd;

	/* s may be freed in here: c-ares closes sockets it is done with */
	ares_process_fd(dns->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_rearm(dns);
}

/* dns_on_timer - a retransmission or a timeout is due */
static void
dns_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns *dns = w->data;

	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(dns);
}

/* dns_sock_state - c-ares's ARES_OPT_SOCK_STATE_CB: watch fd for what it
 * asks; neither read nor write means it closed fd */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_sock **sp, *s;

	for (sp = &dns->socks; *sp != NULL && (*sp)->w.fd != fd; sp = &(*sp)->next)
		;
	if ((s = *sp) != NULL)
		ev_io_stop(dns->loop, &s->w);
	if (!readable && !writable) {
		if (s != NULL) {
			*sp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		/* XXX out of memory: the socket goes unwatched and its queries
		 * end on c-ares's timer, as timeouts */
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return;
		s->dns = dns;
		s->next = dns->socks;
		dns->socks = s;
	}
	ev_io_init(&s->w, dns_on_sock, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	s->w.data = s;
	ev_io_start(dns->loop, &s->w);
}

/* dns_query_free - q and its results */
static void
dns_query_free(struct dns_query *q)
{
	free(q->mx);
	free(q->addrs);
	free(q);
}

/* dns_done_pop - the first query of the done list, unlinked; NULL if empty */
static struct dns_query *
dns_done_pop(struct dns *dns)
{
	struct dns_query *q = dns->done;

	if (q != NULL && (dns->done = q->next) == NULL)
		dns->done_tail = &dns->done;
	return q;
}

/* dns_done_unlink - take q off the done list */
static void
dns_done_unlink(struct dns_query *q)
{
	struct dns *dns = q->dns;
	struct dns_query **qp;

	for (qp = &dns->done; *qp != NULL; qp = &(*qp)->next) {
		if (*qp == q) {
			if ((*qp = q->next) == NULL)
				dns->done_tail = qp;
			return;
		}
	}
}

/* dns_deliver - q's callback with its results */
static void
dns_deliver(struct dns_query *q)
{
	const char *why = q->status == DNS_OK ? NULL : q->why;

	if (q->mx_cb != NULL)
		q->mx_cb(q->arg, q->status, q->mx, q->n, why);
	else
		q->addr_cb(q->arg, q->status, q->addrs, q->n, why);
}

/* dns_on_kick - deliver every finished query; the callbacks may add more to
 * the list (delivered in this same pass) or free the resolver */
static void
dns_on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns *dns = w->data;
	struct dns_query *q;

	dns->delivering = 1;
	while (!dns->dead && (q = dns_done_pop(dns)) != NULL) {
		q->state = Q_DELIVERING;
		dns_deliver(q);
		dns_query_free(q);
	}
	dns->delivering = 0;
	if (dns->dead)
		dns_destroy(dns);
}

/* dns_finish - q's outcome, queued for delivery from the loop */
static void
dns_finish(struct dns_query *q, enum dns_status st, const char *why)
{
	struct dns *dns = q->dns;

	q->status = st;
	snprintf(q->why, sizeof(q->why), "%s", why != NULL ? why : "");
	q->state = Q_DONE;
	/* at the tail: callbacks come in the order the answers did */
	q->next = NULL;
	*dns->done_tail = q;
	dns->done_tail = &q->next;
	if (!dns->delivering)
		ev_timer_start(dns->loop, &dns->kick);
}

/* dns_finish_ares - q failed in c-ares with rc */
static void
dns_finish_ares(struct dns_query *q, int rc)
{
	dns_finish(q, dns_status_of(rc), ares_strerror(rc));
}

/* dns_released - 1 when c-ares's callback for q is to be ignored and q has
 * been freed: q was cancelled, or its resolver is being destroyed */
static int
dns_released(struct dns_query *q)
{
	if (!q->cancelled && !q->dns->destroying)
		return 0;
	dns_query_free(q);
	return 1;
}

/* dns_mx_is_root - host is the root: the target of a null MX (RFC 7505) */
static int
dns_mx_is_root(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

/* dns_mx_copy - the usable records of the answer into q; -1 out of memory.
 * A host name that fails dns_name_valid() (c-ares shows odd bytes escaped)
 * can have no address: that record is skipped. */
static int
dns_mx_copy(struct dns_query *q, const struct ares_mx_reply *head)
{
	const struct ares_mx_reply *r;
	const char *host;
	size_t n = 0;

	for (r = head; r != NULL; r = r->next)
		n++;
	if (n > 0 && (q->mx = calloc(n, sizeof(*q->mx))) == NULL)
		return -1;
	for (r = head; r != NULL; r = r->next) {
		if (dns_mx_is_root(r->host))
			host = "";
		else if (dns_name_valid(r->host))
			host = r->host;
		else
			continue;
		q->mx[q->n].pref = r->priority;
		snprintf(q->mx[q->n].host, sizeof(q->mx[q->n].host), "%s", host);
		q->n++;
	}
	return 0;
}

/* dns_on_mx - c-ares's answer to an MX query */
static void
dns_on_mx(void *arg, int rc, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_mx_reply *head = NULL;

	if (dns_released(q))
		return;
	if (rc == ARES_SUCCESS)
		rc = ares_parse_mx_reply(abuf, alen, &head);
	if (rc != ARES_SUCCESS)
		dns_finish_ares(q, rc);
	else if (dns_mx_copy(q, head) == -1)
		dns_finish(q, DNS_TEMPFAIL, "out of memory");
	else if (q->n == 0)
		dns_finish(q, DNS_TEMPFAIL, "no valid MX host name in the answer");
	else
		dns_finish(q, DNS_OK, NULL);
	ares_free_data(head);
}

/* dns_addr_copy - the IPv4 and IPv6 addresses of ai into q, with q's port;
 * -1 out of memory */
static int
dns_addr_copy(struct dns_query *q, const struct ares_addrinfo *ai)
{
	const struct ares_addrinfo_node *node;
	size_t n = 0;

	for (node = ai->nodes; node != NULL; node = node->ai_next)
		n++;
	if (n > 0 && (q->addrs = calloc(n, sizeof(*q->addrs))) == NULL)
		return -1;
	for (node = ai->nodes; node != NULL; node = node->ai_next) {
		struct sockaddr_storage *ss = &q->addrs[q->n];

		if (node->ai_family == AF_INET && node->ai_addrlen == sizeof(struct sockaddr_in)) {
			memcpy(ss, node->ai_addr, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)q->port);
		} else if (node->ai_family == AF_INET6 &&
		    node->ai_addrlen == sizeof(struct sockaddr_in6)) {
			memcpy(ss, node->ai_addr, sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)q->port);
		} else
			continue;
		q->n++;
	}
	return 0;
}

/* dns_on_addr - c-ares's answer to an address lookup.
 * XXX c-ares 1.18 reports the status of whichever of the A and AAAA queries
 * ended last when neither found an address: a quick NODATA after the other
 * one's timeout reads as NODATA, not TEMPFAIL.  Timeouts take seconds, so
 * the other order (TEMPFAIL, right) is the usual one. */
static void
dns_on_addr(void *arg, int rc, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_query *q = arg;

	if (dns_released(q)) {
		ares_freeaddrinfo(ai);
		return;
	}
	if (rc != ARES_SUCCESS)
		dns_finish_ares(q, rc);
	else if (dns_addr_copy(q, ai) == -1)
		dns_finish(q, DNS_TEMPFAIL, "out of memory");
	else if (q->n == 0)
		dns_finish(q, DNS_NODATA, "no IPv4 or IPv6 address");
	else
		dns_finish(q, DNS_OK, NULL);
	ares_freeaddrinfo(ai);
}

/* dns_query_new - a query on dns, counted as c-ares's until dns_finish(); NULL
 * out of memory */
static struct dns_query *
dns_query_new(struct dns *dns, void *arg)
{
	struct dns_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->dns = dns;
	q->arg = arg;
	q->state = Q_ARES;
	return q;
}

/* dns_absolute - name with one trailing dot into fqdn (DNS_NAME_MAX + 2
 * bytes), so that c-ares applies no search list: a mail domain is always
 * fully qualified (RFC 5321 §2.3.5) */
static void
dns_absolute(char *fqdn, size_t len, const char *name)
{
	snprintf(fqdn, len, "%s%s", name, name[strlen(name) - 1] == '.' ? "" : ".");
}

struct dns_query *
dns_mx(struct dns *dns, const char *name, dns_mx_cb *cb, void *arg)
{
	struct dns_query *q;
	char fqdn[DNS_NAME_MAX + 2];

	if ((q = dns_query_new(dns, arg)) == NULL)
		return NULL;
	q->mx_cb = cb;
	if (!dns_name_valid(name)) {
		dns_finish(q, DNS_BADNAME, "not a valid domain name");
		return q;
	}
	dns_absolute(fqdn, sizeof(fqdn), name);
	ares_query(dns->channel, fqdn, ns_c_in, ns_t_mx, dns_on_mx, q);
	dns_rearm(dns);
	return q;
}

/* dns_addr_literal - q answered with the IPv4 address in4 */
static void
dns_addr_literal(struct dns_query *q, struct in_addr in4)
{
	struct sockaddr_in *sin;

	if ((q->addrs = calloc(1, sizeof(*q->addrs))) == NULL) {
		dns_finish(q, DNS_TEMPFAIL, "out of memory");
		return;
	}
	sin = (struct sockaddr_in *)q->addrs;
	sin->sin_family = AF_INET;
	sin->sin_addr = in4;
	sin->sin_port = htons((uint16_t)q->port);
	q->n = 1;
	dns_finish(q, DNS_OK, NULL);
}

struct dns_query *
dns_addr(struct dns *dns, const char *name, int port, dns_addr_cb *cb, void *arg)
{
	struct ares_addrinfo_hints hints;
	struct dns_query *q;
	struct in_addr in4;
	char fqdn[DNS_NAME_MAX + 2];

	if (port < 0 || port > 65535 || (q = dns_query_new(dns, arg)) == NULL)
		return NULL;
	q->addr_cb = cb;
	q->port = port;
	if (!dns_name_valid(name)) {
		dns_finish(q, DNS_BADNAME, "not a valid host name");
		return q;
	}
	/* not left to c-ares: 1.18 answers a literal for AF_UNSPEC only
	 * after sending it to the server as a name */
	if (inet_pton(AF_INET, name, &in4) == 1) {
		dns_addr_literal(q, in4);
		return q;
	}
	dns_absolute(fqdn, sizeof(fqdn), name);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(dns->channel, fqdn, NULL, &hints, dns_on_addr, q);
	dns_rearm(dns);
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	switch (q->state) {
	case Q_ARES:		/* freed when c-ares calls back */
	case Q_DELIVERING:	/* freed when its callback returns */
		q->cancelled = 1;
		break;
	case Q_DONE:
		dns_done_unlink(q);
		dns_query_free(q);
		break;
	}
}

/* dns_channel_init - dns's c-ares channel; an ARES_* code */
static int
dns_channel_init(struct dns *dns)
{
	struct ares_options opts;
	char lookups[] = "b";	/* DNS only: no /etc/hosts, no file read on the loop */

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = dns;
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	opts.lookups = lookups;
	return ares_init_options(&dns->channel, &opts, ARES_OPT_SOCK_STATE_CB |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
}

struct dns *
dns_new(struct ev_loop *loop, const char *servers, char *err, size_t errlen)
{
	struct dns *dns;
	int rc;

	if (!dns_library_ready && (rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	dns_library_ready = 1;
	if (servers != NULL && dns_servers_check(servers, err, errlen) == -1)
		return NULL;
	if ((dns = calloc(1, sizeof(*dns))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	dns->loop = loop;
	dns->done_tail = &dns->done;
	ev_timer_init(&dns->timer, dns_on_timer, 0., 0.);
	dns->timer.data = dns;
	ev_timer_init(&dns->kick, dns_on_kick, 0., 0.);
	dns->kick.data = dns;
	if ((rc = dns_channel_init(dns)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(dns);
		return NULL;
	}
	if (servers != NULL && (rc = ares_set_servers_ports_csv(dns->channel, servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "DNS servers \"%.64s\": %s", servers, ares_strerror(rc));
		dns_destroy(dns);
		return NULL;
	}
	return dns;
}

/* dns_destroy - the resolver and every query it holds, without callbacks */
static void
dns_destroy(struct dns *dns)
{
	struct dns_query *q;
	struct dns_sock *s;

	/* c-ares calls back every pending query (ARES_EDESTRUCTION) and
	 * reports its sockets closed: dns_released() frees the queries,
	 * dns_sock_state() the watchers */
	dns->destroying = 1;
	ares_destroy(dns->channel);
	while ((q = dns_done_pop(dns)) != NULL)
		dns_query_free(q);
	while ((s = dns->socks) != NULL) {
		dns->socks = s->next;
		ev_io_stop(dns->loop, &s->w);
		free(s);
	}
	ev_timer_stop(dns->loop, &dns->timer);
	ev_timer_stop(dns->loop, &dns->kick);
	free(dns);
}

void
dns_free(struct dns *dns)
{
	if (dns == NULL)
		return;
	if (dns->delivering) {
		dns->dead = 1;	/* dns_on_kick() finishes the job */
		return;
	}
	dns_destroy(dns);
}

/* dns_name_eq - a and b are the same domain name: case-insensitive, a
 * trailing dot ignored */
static int
dns_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* dns_mx_sort - stable sort by preference.  An insertion sort: n is the MX
 * count of one answer, and it keeps equal preferences in answer order. */
static void
dns_mx_sort(struct dns_mx *mx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct dns_mx tmp = mx[i];
		size_t j = i;

		for (; j > 0 && mx[j - 1].pref > tmp.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = tmp;
	}
}

/* dns_mx_is_self - host is one of our names */
static int
dns_mx_is_self(const char *host, const char *const *self_names, size_t nself)
{
	for (size_t i = 0; i < nself; i++)
		if (dns_name_eq(host, self_names[i]))
			return 1;
	return 0;
}

size_t
dns_mx_select(struct dns_mx *mx, size_t n, const char *const *self_names, size_t nself,
    int *null_mx, int *self_listed)
{
	size_t kept = 0;

	if (null_mx != NULL)
		*null_mx = n == 1 && dns_mx_is_root(mx[0].host);
	if (self_listed != NULL)
		*self_listed = 0;
	/* RFC 7505 §3: a null MX must be alone; among others the root is
	 * still no host to deliver to */
	for (size_t i = 0; i < n; i++)
		if (!dns_mx_is_root(mx[i].host))
			mx[kept++] = mx[i];
	dns_mx_sort(mx, kept);
	/* RFC 5321 §5.1: when we are listed, only MX with a lower preference
	 * value than ours are tried; sorted, the first of ours is the best */
	for (size_t i = 0; i < kept; i++) {
		if (dns_mx_is_self(mx[i].host, self_names, nself)) {
			for (kept = i; kept > 0 && mx[kept - 1].pref == mx[i].pref; kept--)
				;
			if (self_listed != NULL)
				*self_listed = 1;
			break;
		}
	}
	return kept;
}
