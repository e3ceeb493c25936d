/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * cidr.h - IPv4/IPv6 networks ("192.0.2.0/24", "2001:db8::/32", "127.0.0.1").
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are matched as IPv4.
 */
#ifndef SHARED_CIDR_H
#define SHARED_CIDR_H

#include <sys/socket.h>

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];
	int		prefix;
};

/* cidr_parse - 0 ok, -1 bad text or host bits set past the prefix */
int	cidr_parse(const char *, struct cidr *);
int	cidr_match(const struct cidr *, const struct sockaddr *);
/* sockaddr_text - "192.0.2.1" or "2001:db8::1" (IPv4-mapped shown as IPv4) */
const char *sockaddr_text(const struct sockaddr *, char *, size_t);
int	sockaddr_port(const struct sockaddr *);
/* sockaddr_same_host - the same address (ports not compared) */
int	sockaddr_same_host(const struct sockaddr *, const struct sockaddr *);
/* sockaddr_limit_key - what per-address limits count: an IPv4 address, or
 * an IPv6 /64 ("2001:db8::/64"), since one host commonly has a whole /64
 * to send from */
void	sockaddr_limit_key(const struct sockaddr *, char *dst, size_t len);
/* sockaddr_is_any - 0.0.0.0 or :: (a wildcard listener) */
int	sockaddr_is_any(const struct sockaddr *);

#endif
