/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * headers.c - the header block of a stored message; see headers.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "headers.h"

int
headers_read(const struct msgbody *b, char **block, size_t *len, uint64_t *body_off)
{
	size_t want = b->size < HEADERS_MAX ? (size_t)b->size : HEADERS_MAX;
	char *p, *end;

	*block = NULL;
	if ((p = malloc(want + 1)) == NULL || msgbody_read(b, 0, p, want) == -1) {
		free(p);
		return -1;
	}
	p[want] = '\0';
	if ((end = memmem(p, want, "\r\n\r\n", 4)) != NULL) {
		*len = (size_t)(end - p) + 2;	/* the last header's CRLF */
		*body_off = *len + 2;
	} else if (want == b->size) {		/* headers only */
		*len = want;
		*body_off = b->size;
	} else {
		free(p);
		return -1;
	}
	*block = p;
	return 0;
}

int
header_next(const char *block, size_t len, size_t *pos, struct header_line *h)
{
	const char *p = block + *pos, *end = block + len, *colon, *eol;

	if (p >= end)
		return 0;
	for (eol = p; eol + 1 < end; eol++)	/* a CRLF that does not fold */
		if (eol[0] == '\r' && eol[1] == '\n' &&
		    (eol + 2 >= end || (eol[2] != ' ' && eol[2] != '\t')))
			break;
	if (eol + 1 >= end)
		eol = end;
	if ((colon = memchr(p, ':', (size_t)(eol - p))) == NULL || colon == p)
		return -1;
	h->raw = p;
	h->rawlen = (size_t)((eol + 2 <= end ? eol + 2 : end) - p);
	h->name = p;
	h->namelen = (size_t)(colon - p);
	h->value = colon + 1;
	h->valuelen = (size_t)(eol - h->value);
	*pos = (size_t)(p - block) + h->rawlen;
	return 1;
}
