/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * xclient.h - the attributes of Postfix's XCLIENT command
 * (http://www.postfix.org/XCLIENT_README.html): NAME=VALUE pairs, values
 * in xtext (RFC 3461 4).  Parsing only; smtp_server.c decides who may send
 * it and applies it.
 */
#ifndef SHARED_XCLIENT_H
#define SHARED_XCLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#include "smtp_cmd.h"

/* What one XCLIENT says; a field not set keeps the session's value.
 * [UNAVAILABLE] and [TEMPUNAVAIL] leave ADDR, PORT and PROTO as they are
 * and clear HELO and LOGIN; NAME is read and ignored. */
struct xclient {
	int			 addr_set, port_set, proto_set, helo_set, login_set;
	struct sockaddr_storage	 addr;		/* IPv4, or "IPV6:" IPv6; port 0 */
	int			 port;
	int			 esmtp;		/* PROTO=ESMTP */
	char			 helo[SMTP_DOMAIN_MAX + 1];	/* "": [UNAVAILABLE] */
	char			 login[256];
};

/* xclient_parse - the attributes of arg (the command's argument) into x:
 * NULL, or the name of the first one that is unknown or not valid (in bad,
 * clipped, for the 501) */
const char *xclient_parse(const char *arg, struct xclient *x, char *bad, size_t badlen);

#endif
