/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * route.c - MX and host lookups for delivery runs; see route.h.  One lookup
 * is a small sequence: the MX query, then one address query per selected
 * host in preference order, appending what each gives.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "route.h"
#include "smtp_cmd.h"
#include "spoold_conf.h"

struct route_lookup {
	struct dns		*dns;
	struct dns_query	*q;
	route_cb		*cb;
	void			*arg;
	int			 port;
	struct dns_mx		 hosts[ROUTE_MAX_HOSTS];
	size_t			 nhosts, next;
	struct route_target	 t[ROUTE_MAX_TARGETS];
	size_t			 nt;
	char			 domain[SMTP_DOMAIN_MAX + 1];	/* route_mx: the domain and our name */
	char			 self[SMTP_DOMAIN_MAX + 1];
	char			 why[300];	/* the last host's failure */
};

static void route_next_host(struct route_lookup *);

static void
route_finish(struct route_lookup *l, enum route_result res, const char *why)
{
	l->q = NULL;
	l->cb(l->arg, res, res == ROUTE_OK ? l->t : NULL, res == ROUTE_OK ? l->nt : 0,
	    res == ROUTE_OK ? NULL : why);
	free(l);
}

static void
route_got_addrs(void *arg, enum dns_status st, const struct sockaddr_storage *a, size_t n,
    const char *why)
{
	struct route_lookup *l = arg;
	const char *host = l->hosts[l->next - 1].host;

	l->q = NULL;
	if (st != DNS_OK)
		snprintf(l->why, sizeof(l->why), "%s: %s", host,
		    st == DNS_TEMPFAIL ? why : "no address");
	for (size_t i = 0; st == DNS_OK && i < n && l->nt < ROUTE_MAX_TARGETS; i++) {
		struct route_target *t = &l->t[l->nt++];

		t->ss = a[i];
		t->len = a[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
		    sizeof(struct sockaddr_in);
		memcpy(t->name, host, strlen(host) + 1);	/* both 256 bytes */
	}
	route_next_host(l);
}

/* route_next_host - look up the next host, or report what was found */
static void
route_next_host(struct route_lookup *l)
{
	char why[400];

	if (l->next < l->nhosts && l->nt < ROUTE_MAX_TARGETS) {
		l->q = dns_addr(l->dns, l->hosts[l->next++].host, l->port, route_got_addrs, l);
		if (l->q != NULL)
			return;
		snprintf(l->why, sizeof(l->why), "out of memory");
	}
	if (l->nt > 0) {
		route_finish(l, ROUTE_OK, NULL);
		return;
	}
	snprintf(why, sizeof(why), "no address to deliver to (%s)", l->why);
	route_finish(l, ROUTE_TEMPFAIL, why);
}

static void
route_got_mx(void *arg, enum dns_status st, const struct dns_mx *mx, size_t n, const char *why)
{
	struct route_lookup *l = arg;
	const char *selfs[1] = { l->self };
	struct dns_mx *all;
	int null_mx = 0, self_listed = 0;
	char text[800];
	size_t kept;

	l->q = NULL;
	if (st == DNS_NODATA) {		/* RFC 5321 5.1: the domain is its own MX */
		l->nhosts = 1;
		l->hosts[0].pref = 0;
		snprintf(l->hosts[0].host, sizeof(l->hosts[0].host), "%s", l->domain);
		route_next_host(l);
		return;
	}
	if (st != DNS_OK) {
		snprintf(text, sizeof(text), "MX lookup for %s: %s", l->domain,
		    st == DNS_NXDOMAIN ? "no such domain" : st == DNS_BADNAME ? "not a valid name" : why);
		route_finish(l, st == DNS_TEMPFAIL ? ROUTE_TEMPFAIL : ROUTE_PERMFAIL, text);
		return;
	}
	if ((all = malloc(n * sizeof(*all))) == NULL) {
		route_finish(l, ROUTE_TEMPFAIL, "out of memory");
		return;
	}
	memcpy(all, mx, n * sizeof(*all));
	kept = dns_mx_select(all, n, selfs, 1, &null_mx, &self_listed);
	if (kept == 0) {
		if (null_mx)
			snprintf(text, sizeof(text), "%s has a null MX: it accepts no mail (RFC 7505)",
			    l->domain);
		else if (self_listed)
			snprintf(text, sizeof(text), "this host (%s) is the best MX for %s: no route",
			    l->self, l->domain);
		else
			snprintf(text, sizeof(text), "%s has no usable MX", l->domain);
		free(all);
		route_finish(l, null_mx ? ROUTE_PERMFAIL : ROUTE_TEMPFAIL, text);
		return;
	}
	l->nhosts = kept < ROUTE_MAX_HOSTS ? kept : ROUTE_MAX_HOSTS;
	memcpy(l->hosts, all, l->nhosts * sizeof(*all));
	free(all);
	route_next_host(l);
}

static struct route_lookup *
route_new(struct dns *dns, int port, route_cb *cb, void *arg)
{
	struct route_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->dns = dns;
	l->port = port;
	l->cb = cb;
	l->arg = arg;
	return l;
}

struct route_lookup *
route_mx(struct dns *dns, const char *domain, int port, const char *self, route_cb *cb, void *arg)
{
	struct route_lookup *l = route_new(dns, port, cb, arg);

	if (l == NULL)
		return NULL;
	snprintf(l->domain, sizeof(l->domain), "%s", domain);
	snprintf(l->self, sizeof(l->self), "%s", self);
	if ((l->q = dns_mx(dns, domain, route_got_mx, l)) == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

struct route_lookup *
route_host(struct dns *dns, const char *host, int port, route_cb *cb, void *arg)
{
	struct route_lookup *l = route_new(dns, port, cb, arg);

	if (l == NULL)
		return NULL;
	l->nhosts = l->next = 1;
	snprintf(l->hosts[0].host, sizeof(l->hosts[0].host), "%s", host);
	if ((l->q = dns_addr(dns, host, port, route_got_addrs, l)) == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
route_cancel(struct route_lookup *l)
{
	if (l->q != NULL)
		dns_cancel(l->q);
	free(l);
}

int
route_is_literal(const struct route *how)
{
	return how->kind == ROUTE_REQUESTER || (how->kind == ROUTE_HOST && how->host[0] == '[');
}

/* literal_address - "[192.0.2.1]" or "[ipv6:2001:db8::1]" into ss; -1 if
 * it is neither */
static int
literal_address(const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char lit[SMTP_DOMAIN_MAX + 1];
	size_t l = strlen(host);

	if (l < 2 || host[0] != '[' || host[l - 1] != ']')
		return -1;
	snprintf(lit, sizeof(lit), "%.*s", (int)(l - 2), host + 1);
	if (inet_pton(AF_INET, lit, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (strncmp(lit, "ipv6:", 5) == 0 && inet_pton(AF_INET6, lit + 5, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		return -1;
	return 0;
}

int
route_literal(const struct route *how, const struct sockaddr *requester, struct route_target *t,
    const char **reason)
{
	uint16_t port = (uint16_t)(how->port ? how->port : 25);

	memset(t, 0, sizeof(*t));
	if (how->kind == ROUTE_REQUESTER) {
		if (requester == NULL) {
			*reason = "deliver-to requester needs an ETRN from the site";
			return -1;
		}
		memcpy(&t->ss, requester, requester->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	} else if (how->kind != ROUTE_HOST || literal_address(how->host, &t->ss) == -1) {
		*reason = "deliver-to address is not usable";
		return -1;
	}
	if (t->ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&t->ss)->sin6_port = htons(port);
		t->len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&t->ss)->sin_port = htons(port);
		t->len = sizeof(struct sockaddr_in);
	}
	return 0;
}
