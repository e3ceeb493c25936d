/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * proxy_proto.c - the PROXY protocol header parser (see proxy_proto.h).
 *
 * SECURITY: the bytes come from whoever connected; the caller trusts what
 * they say only from the addresses configured to send them.  Every length
 * is checked against what was received before it is used.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy_proto.h"

/* proxy-protocol.txt 2.2: the v2 signature */
static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_sig[] = "PROXY ";

#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_AF_UNSPEC	0x0
#define V2_AF_INET	0x1
#define V2_AF_INET6	0x2
#define V2_AF_UNIX	0x3
#define V2_STREAM	0x1

/* starts_as - the first n bytes of p agree with sig (n capped at its length) */
static int
starts_as(const unsigned char *p, size_t n, const void *sig, size_t siglen)
{
	return memcmp(p, sig, n < siglen ? n : siglen) == 0;
}

/* v1_port - a decimal port, 0 to 65535, no sign, no leading zero */
static int
v1_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5 || (i == 1 && s[0] == '0'))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* v1_addr - address text of family af and port text into ss */
static int
v1_addr(int af, const char *addr, const char *port, struct sockaddr_storage *ss)
{
	uint16_t p;

	memset(ss, 0, sizeof(*ss));
	if (v1_port(port, &p) == -1)
		return -1;
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		return inet_pton(AF_INET, addr, &s4->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		return inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1 ? 0 : -1;
	}
}

/* v1_fields - split line at single spaces (2.1: exactly one between fields) */
static int
v1_fields(char *line, char **f, int max)
{
	int n = 0;

	for (char *p = line;; p++) {
		if (n == max)
			return -1;
		f[n++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return n;
		*p = '\0';
	}
}

/* proxy_parse_v1 - "PROXY TCP4 SRC DST SPORT DPORT\r\n" (2.1) */
static int
proxy_parse_v1(const unsigned char *p, size_t n, struct proxy_header *h, const char **why)
{
	char line[PROXY_V1_MAX], *f[7];
	size_t len;
	int nf, af;

	for (len = 0; len < n && len < PROXY_V1_MAX && p[len] != '\n'; len++)
		;
	if (len == n && n < PROXY_V1_MAX)
		return 0;
	if (len == PROXY_V1_MAX || len < 2 || p[len - 1] != '\r') {
		*why = len == PROXY_V1_MAX ? "v1 line longer than 107 bytes" : "v1 line without CRLF";
		return -1;
	}
	memcpy(line, p, len - 1);
	line[len - 1] = '\0';
	if (strlen(line) != len - 1) {
		*why = "NUL in v1 line";
		return -1;
	}
	h->version = 1;
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == '\0' || line[13] == ' ')) {
		h->local = 1;	/* 2.1: the rest of the line is to be ignored */
		return (int)len + 1;
	}
	nf = v1_fields(line + sizeof(v1_sig) - 1, f, 6);
	af = nf >= 1 && strcmp(f[0], "TCP4") == 0 ? AF_INET :
	    nf >= 1 && strcmp(f[0], "TCP6") == 0 ? AF_INET6 : AF_UNSPEC;
	if (af == AF_UNSPEC) {
		*why = "v1 protocol not TCP4, TCP6 or UNKNOWN";
		return -1;
	}
	if (nf != 5 || v1_addr(af, f[1], f[3], &h->src) == -1 ||
	    v1_addr(af, f[2], f[4], &h->dst) == -1) {
		*why = "v1 addresses or ports not valid";
		return -1;
	}
	h->local = 0;
	return (int)len + 1;
}

/* v2_inet - the IPv4 or IPv6 addresses of a v2 PROXY header (2.2) */
static int
v2_inet(int af, const unsigned char *b, size_t blen, struct proxy_header *h)
{
	size_t alen = af == AF_INET ? 4 : 16;
	uint16_t sport, dport;

	if (blen < 2 * alen + 4)
		return -1;
	sport = (uint16_t)(b[2 * alen] << 8 | b[2 * alen + 1]);
	dport = (uint16_t)(b[2 * alen + 2] << 8 | b[2 * alen + 3]);
	memset(&h->src, 0, sizeof(h->src));
	memset(&h->dst, 0, sizeof(h->dst));
	if (af == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src, *d = (struct sockaddr_in *)&h->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, b, 4);
		memcpy(&d->sin_addr, b + 4, 4);
		s->sin_port = htons(sport);
		d->sin_port = htons(dport);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src,
		    *d = (struct sockaddr_in6 *)&h->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, b, 16);
		memcpy(&d->sin6_addr, b + 16, 16);
		s->sin6_port = htons(sport);
		d->sin6_port = htons(dport);
	}
	return 0;
}

/* proxy_parse_v2 - the binary header: signature, version and command,
 * family and transport, length, then addresses and TLVs (ignored) */
static int
proxy_parse_v2(const unsigned char *p, size_t n, struct proxy_header *h, const char **why)
{
	unsigned cmd, fam, proto;
	size_t blen;

	if (n < PROXY_V2_HEAD)
		return 0;
	cmd = p[12] & 0x0f;
	fam = p[13] >> 4;
	proto = p[13] & 0x0f;
	blen = (size_t)p[14] << 8 | p[15];
	if ((p[12] >> 4) != 2 || (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)) {
		*why = "v2 version or command not known";
		return -1;
	}
	if (blen > PROXY_V2_BODY_MAX) {
		*why = "v2 header longer than we take";
		return -1;
	}
	if (n < PROXY_V2_HEAD + blen)
		return 0;
	h->version = 2;
	h->local = 1;
	if (cmd == V2_CMD_LOCAL || fam == V2_AF_UNSPEC || fam == V2_AF_UNIX)
		return (int)(PROXY_V2_HEAD + blen);
	if ((fam != V2_AF_INET && fam != V2_AF_INET6) || proto != V2_STREAM ||
	    v2_inet(fam == V2_AF_INET ? AF_INET : AF_INET6, p + PROXY_V2_HEAD, blen, h) == -1) {
		*why = "v2 family, transport or addresses not valid";
		return -1;
	}
	h->local = 0;
	return (int)(PROXY_V2_HEAD + blen);
}

int
proxy_parse(const void *data, size_t n, struct proxy_header *h, const char **why)
{
	const unsigned char *p = data;

	*why = "";
	if (n == 0)
		return 0;
	if (starts_as(p, n, v2_sig, sizeof(v2_sig)))
		return n < sizeof(v2_sig) ? 0 : proxy_parse_v2(p, n, h, why);
	if (starts_as(p, n, v1_sig, sizeof(v1_sig) - 1))
		return n < sizeof(v1_sig) - 1 ? 0 : proxy_parse_v1(p, n, h, why);
	*why = "not a PROXY header";
	return -1;
}
