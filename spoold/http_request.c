/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * http_request.c - see http_request.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "http_request.h"

/* request_line - "GET /metrics HTTP/1.1": 0, or the status to answer */
static int
request_line(struct http_request *rq, const char *line)
{
	char method[16], path[HTTP_LINE_MAX], version[16], extra;
	size_t plen;

	if (sscanf(line, "%15s %8191s %15s %c", method, path, version, &extra) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 || path[0] != '/')
		return 400;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return 405;
	rq->head = strcmp(method, "HEAD") == 0;
	plen = strcspn(path, "?");	/* a query string changes nothing */
	rq->metrics = plen == 8 && memcmp(path, "/metrics", 8) == 0;
	return 0;
}

int
http_request_feed(struct http_request *rq, const char *line, size_t len)
{
	int rc;

	if (len > HTTP_LINE_MAX || strlen(line) != len)	/* too long, or a NUL inside */
		return 400;
	if (rq->lines++ == 0)
		return (rc = request_line(rq, line)) != 0 ? rc : 0;
	if (line[0] != '\0')
		return ++rq->headers > HTTP_HEADERS_MAX ? 431 : 0;
	return rq->metrics ? 200 : 404;		/* the blank line: the head is complete */
}
