/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * xclient.c - the attributes of Postfix's XCLIENT command (see xclient.h).
 *
 * SECURITY: the text comes from the client; smtp_server.c lets only an
 * xclient_from address send it.  Every value is xtext-decoded into a
 * bounded buffer and must be printable without blanks, so nothing taken
 * here can break a log line or the Received: header.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xclient.h"

/* the command line's bound (RFC 5321 4.5.3.1.4) bounds the argument */
#define XCLIENT_ARG_MAX	512

/* xclient_xtext - RFC 3461 4 xtext decoded into dst; -1 if not xtext or
 * too long */
static int
xclient_xtext(const char *src, char *dst, size_t len)
{
	size_t o = 0;

	for (const char *p = src; *p != '\0'; p++) {
		unsigned c = (unsigned char)*p;

		if (c == '+') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return -1;
			c = (unsigned)strtoul((char[]){ p[1], p[2], '\0' }, NULL, 16);
			p += 2;
			if (c < 0x21 || c > 0x7e)	/* no controls, no blanks in any value */
				return -1;
		} else if (c < 0x21 || c > 0x7e || c == '=')
			return -1;
		if (o + 1 >= len)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

/* xclient_addr - "192.0.2.7" or "IPV6:2001:db8::7" */
static int
xclient_addr(const char *v, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strncasecmp(v, "IPV6:", 5) == 0) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		return inet_pton(AF_INET6, v + 5, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	return inet_pton(AF_INET, v, &((struct sockaddr_in *)ss)->sin_addr) == 1 ? 0 : -1;
}

/* xclient_attr - one NAME=VALUE into x; 0, or -1 (bad) */
static int
xclient_attr(const char *name, const char *v, struct xclient *x)
{
	int unavail = strcmp(v, "[UNAVAILABLE]") == 0 || strcmp(v, "[TEMPUNAVAIL]") == 0;
	char *end;
	long port;

	if (strcasecmp(name, "NAME") == 0)	/* no reverse DNS here: unknown[ADDR] */
		return 0;
	if (strcasecmp(name, "ADDR") == 0) {
		if (unavail)
			return 0;	/* keep the address we have */
		x->addr_set = 1;
		return xclient_addr(v, &x->addr);
	}
	if (strcasecmp(name, "PORT") == 0) {
		if (unavail)
			return 0;
		port = strtol(v, &end, 10);
		x->port_set = 1;
		x->port = (int)port;
		return isdigit((unsigned char)v[0]) && *end == '\0' && port <= 65535 ? 0 : -1;
	}
	if (strcasecmp(name, "PROTO") == 0) {
		x->proto_set = !unavail;
		x->esmtp = strcasecmp(v, "ESMTP") == 0;
		return unavail || x->esmtp || strcasecmp(v, "SMTP") == 0 ? 0 : -1;
	}
	if (strcasecmp(name, "HELO") == 0) {
		x->helo_set = 1;
		if (unavail)
			return 0;
		return strlen(v) < sizeof(x->helo) ? (strcpy(x->helo, v), 0) : -1;
	}
	if (strcasecmp(name, "LOGIN") == 0) {
		x->login_set = 1;
		if (unavail)
			return 0;
		return strlen(v) < sizeof(x->login) ? (strcpy(x->login, v), 0) : -1;
	}
	return -1;
}

const char *
xclient_parse(const char *arg, struct xclient *x, char *bad, size_t badlen)
{
	char copy[XCLIENT_ARG_MAX], value[XCLIENT_ARG_MAX], *save = NULL, *tok, *eq;

	memset(x, 0, sizeof(*x));
	if (strlen(arg) >= sizeof(copy)) {
		snprintf(bad, badlen, "line too long");
		return bad;
	}
	memcpy(copy, arg, strlen(arg) + 1);
	for (tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(tok, '=')) == NULL || eq == tok)
			goto bad;
		*eq = '\0';	/* the reply names the attribute, not its value */
		if (xclient_xtext(eq + 1, value, sizeof(value)) == -1 ||
		    xclient_attr(tok, value, x) == -1)
			goto bad;
	}
	return NULL;
bad:
	snprintf(bad, badlen, "%.32s", tok);
	return bad;
}
