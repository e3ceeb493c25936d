/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * dns_lookup.c - drive shared/dns.c from the command line, for
 * tests/t14-dns.sh: one MX or address lookup, every record printed.
 *
 *   dns_lookup [-s SERVERS] [-c | -x | -F] mx|addr NAME [PORT]
 *     -s  the servers, as dns_new() takes them (default: /etc/resolv.conf)
 *     -c  cancel the query at once: no callback may come
 *     -x  free the resolver with the query pending: no callback may come
 *     -F  start the query twice and free the resolver in the first
 *         callback: the second may not come
 *
 * Output: "mx PREF HOST" or "addr IP PORT" per record, then
 * "status STATUS" or "status STATUS: WHY".  Exit status 0 for DNS_OK (and
 * for -c and -x when no callback came), 1 for another status, 2 when the
 * resolver could not be made, 3 when the API broke a promise (a callback
 * from inside dns_mx()/dns_addr(), or one that should not have come).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "dns.h"

struct lookup {
	struct dns	*dns;
	int		 starting;	/* inside dns_mx()/dns_addr() */
	int		 calls;		/* callbacks so far */
	int		 allowed;	/* callbacks that may come */
	int		 free_in_cb;	/* -F */
	int		 status;	/* exit status */
};

/* lookup_status - the status line; the exit status; 3 if the callback is
 * one that must not come */
static void
lookup_status(struct lookup *l, enum dns_status st, const char *why)
{
	if (why != NULL)
		printf("status %s: %s\n", dns_strstatus(st), why);
	else
		printf("status %s\n", dns_strstatus(st));
	l->status = st == DNS_OK ? 0 : 1;
	if (l->starting) {
		printf("error: callback from inside the call\n");
		l->status = 3;
	}
	if (++l->calls > l->allowed) {
		printf("error: a callback that should not have come\n");
		l->status = 3;
	}
	if (l->free_in_cb) {
		dns_free(l->dns);
		l->dns = NULL;
	}
	fflush(stdout);
}

static void
on_mx(void *arg, enum dns_status st, const struct dns_mx *mx, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++)
		printf("mx %u %s\n", mx[i].pref, mx[i].host[0] != '\0' ? mx[i].host : ".");
	lookup_status(arg, st, why);
}

static void
on_addr(void *arg, enum dns_status st, const struct sockaddr_storage *addrs, size_t n,
    const char *why)
{
	char ip[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < n; i++) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&addrs[i];
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addrs[i];

		if (addrs[i].ss_family == AF_INET6)
			printf("addr %s %u\n", inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)),
			    ntohs(sin6->sin6_port));
		else
			printf("addr %s %u\n", inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)),
			    ntohs(sin->sin_port));
	}
	lookup_status(arg, st, why);
}

/* lookup_start - one query as the arguments say; NULL when none was made */
static struct dns_query *
lookup_start(struct lookup *l, char **argv, int argc)
{
	struct dns_query *q = NULL;

	l->starting = 1;
	if (strcmp(argv[0], "mx") == 0)
		q = dns_mx(l->dns, argv[1], on_mx, l);
	else
		q = dns_addr(l->dns, argv[1], argc > 2 ? atoi(argv[2]) : 25, on_addr, l);
	l->starting = 0;
	return q;
}

static void
usage(void)
{
	fprintf(stderr, "usage: dns_lookup [-s servers] [-c | -x | -F] mx|addr name [port]\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	struct lookup l = { .status = 1, .allowed = 1 };
	struct dns_query *q;
	const char *servers = NULL;
	char err[256];
	int ch, cancel = 0, destroy = 0;

	while ((ch = getopt(argc, argv, "s:cxF")) != -1) {
		switch (ch) {
		case 's':	servers = optarg; break;
		case 'c':	cancel = 1; break;
		case 'x':	destroy = 1; break;
		case 'F':	l.free_in_cb = 1; break;
		default:	usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc > 3 || (strcmp(argv[0], "mx") != 0 && strcmp(argv[0], "addr") != 0))
		usage();
	if ((l.dns = dns_new(EV_DEFAULT, servers, err, sizeof(err))) == NULL) {
		printf("error: %s\n", err);
		return 2;
	}
	if ((q = lookup_start(&l, argv, argc)) == NULL ||
	    (l.free_in_cb && lookup_start(&l, argv, argc) == NULL)) {
		printf("error: out of memory or bad port\n");
		return 2;
	}
	if (cancel || destroy) {
		l.allowed = 0;
		l.status = 0;
	}
	if (cancel)
		dns_cancel(q);
	if (destroy) {
		dns_free(l.dns);
		l.dns = NULL;
	}
	ev_run(EV_DEFAULT, 0);
	dns_free(l.dns);
	if (l.calls == 0)
		printf("no callback\n");
	return l.status;
}
