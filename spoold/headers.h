/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * headers.h - the header block of a stored message (RFC 5322 2.2): read
 * whole from its msgbody, then walked one header at a time, folded lines
 * and all.  One parser for everything that looks at headers (the milter
 * client, which sends them, and the filter chain, which rewrites them).
 */
#ifndef SPOOLD_HEADERS_H
#define SPOOLD_HEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "msgbody.h"

/* The header block is read whole: past this it is not a mail header. */
#define HEADERS_MAX	(256 * 1024)

/* One header as it stands in the block. */
struct header_line {
	const char	*raw;		/* "Name: value\r\n", folds included */
	size_t		 rawlen;
	const char	*name;
	size_t		 namelen;
	const char	*value;		/* after the colon, leading blank kept */
	size_t		 valuelen;	/* without the final CRLF */
};

/* headers_read - the block (up to and without the empty line) into a
 * malloc'd *block of *len bytes, and where the body starts; -1 when there
 * is none within HEADERS_MAX or on a read error */
int	headers_read(const struct msgbody *, char **block, size_t *len, uint64_t *body_off);

/* header_next - the header at *pos, moving *pos past it: 1, 0 past the
 * last, -1 for a line that is not "Name: value" */
int	header_next(const char *block, size_t len, size_t *pos, struct header_line *h);

#endif
