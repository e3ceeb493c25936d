/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * milter_proto.c - milter packets; see milter_proto.h.
 *
 * SECURITY: milter_parse reads what a filter sent, which may be anything:
 * every length is checked against the packet, every string must end inside
 * it, and a reply this parser does not know is MILTER_R_BAD, never guessed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "milter_proto.h"

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
set32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

long
milter_packet_len(const unsigned char *p, size_t n, size_t max)
{
	uint32_t len;

	if (n < 4)
		return 0;
	len = get32(p);
	if (len == 0 || len > max)
		return -1;
	return n - 4 < len ? 0 : (long)len + 4;
}

/* str_at - a NUL-terminated string starting at d[*off] and ending inside
 * d[0..n): the string, with *off past its NUL; NULL if it runs over */
static const char *
str_at(const char *d, size_t n, size_t *off)
{
	const char *s = d + *off, *nul;

	if (*off >= n || (nul = memchr(s, '\0', n - *off)) == NULL)
		return NULL;
	*off += (size_t)(nul - s) + 1;
	return s;
}

/* parse_pair - "name NUL value NUL", after a 4-byte index when indexed */
static enum milter_reply
parse_pair(enum milter_reply kind, const char *d, size_t n, int indexed, struct milter_msg *m)
{
	size_t off = 0;

	if (indexed) {
		if (n < 4)
			return MILTER_R_BAD;
		m->index = get32((const unsigned char *)d);
		off = 4;
	}
	if ((m->name = str_at(d, n, &off)) == NULL || (m->value = str_at(d, n, &off)) == NULL ||
	    m->name[0] == '\0')
		return MILTER_R_BAD;
	return kind;
}

/* parse_one - a single string (an address, a reason, a reply line), with
 * anything after its NUL ignored (ADDRCPT_PAR's and CHGFROM's arguments) */
static enum milter_reply
parse_one(enum milter_reply kind, const char *d, size_t n, struct milter_msg *m)
{
	size_t off = 0;

	if ((m->name = str_at(d, n, &off)) == NULL)
		return MILTER_R_BAD;
	m->value = m->name;
	return kind;
}

static enum milter_reply
parse_optneg(const char *d, size_t n, struct milter_msg *m)
{
	const unsigned char *u = (const unsigned char *)d;

	if (n < 12)
		return MILTER_R_BAD;
	m->version = get32(u);
	m->actions = get32(u + 4);
	m->protocol = get32(u + 8);
	return MILTER_R_OPTNEG;
}

/* no_data - a reply that carries nothing (libmilter sends none) */
static enum milter_reply
no_data(enum milter_reply kind, size_t n)
{
	return n == 0 ? kind : MILTER_R_BAD;
}

enum milter_reply
milter_parse(const unsigned char *p, size_t len, struct milter_msg *m)
{
	const char *d = (const char *)p + 5;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (len < 5 || get32(p) != len - 4)
		return m->kind = MILTER_R_BAD;
	n = len - 5;
	switch (p[4]) {
	case 'a': m->kind = no_data(MILTER_R_ACCEPT, n); break;
	case 'c': m->kind = no_data(MILTER_R_CONTINUE, n); break;
	case 'r': m->kind = no_data(MILTER_R_REJECT, n); break;
	case 't': m->kind = no_data(MILTER_R_TEMPFAIL, n); break;
	case 'd': m->kind = no_data(MILTER_R_DISCARD, n); break;
	case 's': m->kind = no_data(MILTER_R_SKIP, n); break;
	case 'p': m->kind = no_data(MILTER_R_PROGRESS, n); break;
	case 'y': m->kind = parse_one(MILTER_R_REPLYCODE, d, n, m); break;
	case 'q': m->kind = parse_one(MILTER_R_QUARANTINE, d, n, m); break;
	case '+':
	case '2': m->kind = parse_one(MILTER_R_ADDRCPT, d, n, m); break;
	case '-': m->kind = parse_one(MILTER_R_DELRCPT, d, n, m); break;
	case 'e': m->kind = parse_one(MILTER_R_CHGFROM, d, n, m); break;
	case 'h': m->kind = parse_pair(MILTER_R_ADDHEADER, d, n, 0, m); break;
	case 'i': m->kind = parse_pair(MILTER_R_INSHEADER, d, n, 1, m); break;
	case 'm': m->kind = parse_pair(MILTER_R_CHGHEADER, d, n, 1, m); break;
	case 'b':
		m->kind = MILTER_R_REPLBODY;
		m->data = d;
		m->len = n;
		break;
	case 'O': m->kind = parse_optneg(d, n, m); break;
	default: m->kind = MILTER_R_BAD; break;
	}
	return m->kind;
}

int
milter_replycode_ok(const char *line)
{
	size_t i;

	if ((line[0] != '4' && line[0] != '5') || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[3] != ' ')
		return 0;
	/* an enhanced code, when there is one, is of the same class */
	if (isdigit((unsigned char)line[4]) && line[5] == '.' && line[4] != line[0])
		return 0;
	for (i = 4; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			return 0;
	return i > 4 && i <= 510;
}

int
milter_put(struct buf *b, char cmd, const void *data, size_t len)
{
	unsigned char h[5];

	if (len > MILTER_REPLY_MAX)
		return -1;
	set32(h, (uint32_t)len + 1);
	h[4] = (unsigned char)cmd;
	if (buf_append(b, h, sizeof(h)) == -1)
		return -1;
	return len == 0 ? 0 : buf_append(b, data, len);
}

int
milter_put_optneg(struct buf *b, uint32_t actions, uint32_t protocol)
{
	unsigned char d[12];

	set32(d, MILTER_VERSION);
	set32(d + 4, actions);
	set32(d + 8, protocol);
	return milter_put(b, MILTER_OPTNEG, d, sizeof(d));
}

/* put_header - the 5-byte head of a packet of len data bytes, to be
 * followed by exactly that many */
static int
put_header(struct buf *b, char cmd, size_t len)
{
	unsigned char h[5];

	set32(h, (uint32_t)len + 1);
	h[4] = (unsigned char)cmd;
	return buf_append(b, h, sizeof(h));
}

int
milter_put_strings(struct buf *b, char cmd, const char *const *s, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += strlen(s[i]) + 1;
	if (len > MILTER_REPLY_MAX || put_header(b, cmd, len) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (buf_append(b, s[i], strlen(s[i]) + 1) == -1)
			return -1;
	return 0;
}

int
milter_put_connect(struct buf *b, const char *hostname, char family, uint16_t port,
    const char *addr)
{
	size_t hl = strlen(hostname) + 1, al = strlen(addr) + 1;
	unsigned char fp[3] = { (unsigned char)family, (unsigned char)(port >> 8),
	    (unsigned char)port };

	if (put_header(b, MILTER_CONNECT, hl + sizeof(fp) + al) == -1 ||
	    buf_append(b, hostname, hl) == -1 || buf_append(b, fp, sizeof(fp)) == -1)
		return -1;
	return buf_append(b, addr, al);
}

int
milter_put_macros(struct buf *b, char cmd, const char *const *names, const char *const *values,
    size_t n)
{
	size_t len = 1;

	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + 1 + strlen(values[i]) + 1;
	if (put_header(b, MILTER_MACRO, len) == -1 || buf_append(b, &cmd, 1) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (buf_append(b, names[i], strlen(names[i]) + 1) == -1 ||
		    buf_append(b, values[i], strlen(values[i]) + 1) == -1)
			return -1;
	return 0;
}

int
milter_target_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
    const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon;
	long port;
	char *end;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/' || strlen(spec + 5) >= sizeof(sun->sun_path)) {
			*why = "unix: needs an absolute path that fits a socket address";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", spec + 5);
		*len = sizeof(*sun);
		return 0;
	}
	if (strncmp(spec, "inet:", 5) != 0 || (colon = strrchr(spec + 5, ':')) == NULL ||
	    (size_t)(colon - spec - 5) >= sizeof(host)) {
		*why = "not unix:/path or inet:ADDRESS:PORT";
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - spec - 5), spec + 5);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		*why = "the port is not a number from 1 to 65535";
		return -1;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		*why = "inet: takes an address (the filter runs beside spoold, no DNS)";
		return -1;
	}
	return 0;
}
