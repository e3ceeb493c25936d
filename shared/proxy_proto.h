/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * proxy_proto.h - HAProxy's PROXY protocol header, versions 1 (text) and 2
 * (binary), as in haproxy's doc/proxy-protocol.txt: what a load balancer
 * says about the client before the client's own bytes.  Parsing only, no
 * I/O: the caller feeds what it has read so far and is told how many bytes
 * the header took, so not one byte after it is taken from the protocol that
 * follows.
 */
#ifndef SHARED_PROXY_PROTO_H
#define SHARED_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

/* proxy-protocol.txt 2.1: a v1 line is at most 107 bytes, CRLF included */
#define PROXY_V1_MAX		107
/* v2: a 16-byte header and its length field's bytes of addresses and TLVs;
 * what we take of the latter (the spec's 2.2 allows 65535; HAProxy sends
 * 12 or 36 without TLVs, and a few hundred with its SSL ones) */
#define PROXY_V2_HEAD		16
#define PROXY_V2_BODY_MAX	1536
#define PROXY_HEADER_MAX	(PROXY_V2_HEAD + PROXY_V2_BODY_MAX)

struct proxy_header {
	int			 version;	/* 1 or 2 */
	/* v2 LOCAL (a health check of the proxy's own), v1 UNKNOWN, or an
	 * address family we cannot use (v2 UNSPEC, UNIX): keep the
	 * connection's own addresses; src and dst are not set */
	int			 local;
	struct sockaddr_storage	 src, dst;	/* the client, and where it connected */
};

/* proxy_parse - the header at the start of p[0..n): its length once it is
 * all there (h filled in), 0 when more bytes are needed to tell, or -1 when
 * it is not a valid header (*why says what is wrong; a prefix that can
 * never become one is refused at once, without waiting for more). */
int	proxy_parse(const void *p, size_t n, struct proxy_header *h, const char **why);

#endif
