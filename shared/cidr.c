/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * cidr.c - address matching for access lists.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

int
cidr_parse(const char *text, struct cidr *c)
{
	char tmp[INET6_ADDRSTRLEN + 8], *slash, *end;
	int max, bits;
	long n;

	if (strlen(text) >= sizeof(tmp))
		return -1;
	strcpy(tmp, text);
	memset(c, 0, sizeof(*c));
	if ((slash = strchr(tmp, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, tmp, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return -1;
	c->prefix = max;
	if (slash) {
		n = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || n < 0 || n > max)
			return -1;
		c->prefix = (int)n;
	}
	/* ::ffff:a.b.c.d/N (N >= 96) is IPv4: peers are compared as IPv4 too */
	if (c->family == AF_INET6 && c->prefix >= 96 &&
	    memcmp(c->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->prefix -= 96;
		max = 32;
	}
	/* Host bits past the prefix are a typo worth reporting. */
	for (bits = c->prefix; bits < max; bits++)
		if (c->addr[bits / 8] & (0x80 >> (bits % 8)))
			return -1;
	return 0;
}

static int
prefix_equal(const unsigned char *a, const unsigned char *b, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

/* sockaddr_v4 - the IPv4 address of sa, also when IPv4-mapped; NULL if none */
static const unsigned char *
sockaddr_v4(const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };

	if (sa->sa_family == AF_INET)
		return (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, 12) == 0)
			return a + 12;
	}
	return NULL;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const unsigned char *v4 = sockaddr_v4(sa);

	if (c->family == AF_INET)
		return v4 != NULL && prefix_equal(c->addr, v4, c->prefix);
	if (sa->sa_family != AF_INET6 || v4 != NULL)
		return 0;
	return prefix_equal(c->addr, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, c->prefix);
}

const char *
sockaddr_text(const struct sockaddr *sa, char *dst, size_t len)
{
	const unsigned char *v4 = sockaddr_v4(sa);

	if (v4 != NULL)
		return inet_ntop(AF_INET, v4, dst, (socklen_t)len) ? dst : "?";
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, dst,
		    (socklen_t)len) ? dst : "?";
	snprintf(dst, len, "unix");
	return dst;
}

int
sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

int
sockaddr_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return 0;
}

int
sockaddr_is_any(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

void
sockaddr_limit_key(const struct sockaddr *sa, char *dst, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct in6_addr net;

	if (sa->sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		sockaddr_text(sa, dst, len);
		return;
	}
	net = s6->sin6_addr;
	memset(net.s6_addr + 8, 0, 8);
	if (inet_ntop(AF_INET6, &net, dst, (socklen_t)len) == NULL || strlen(dst) + 4 > len)
		snprintf(dst, len, "?");
	else
		strcat(dst, "/64");
}
