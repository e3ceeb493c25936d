/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * http_request.h - the HTTP/1.x request head that GET /metrics needs read,
 * line by line, apart from any I/O so that it can be fuzzed.  The head is
 * hostile input: lines and header count are bounded, and a NUL, a line
 * past the bound or anything but "METHOD /PATH HTTP/1.x" is a 400.
 */
#ifndef SPOOLD_HTTP_REQUEST_H
#define SPOOLD_HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_LINE_MAX		8192
#define HTTP_HEADERS_MAX	100

struct http_request {
	int		 lines;		/* seen so far */
	unsigned	 headers;
	int		 head;		/* HEAD: no body in the reply */
	int		 metrics;	/* the path is /metrics (a query string aside) */
};

/* http_request_feed - one line (without its CRLF, len bytes, NUL-ended):
 * 0 for more, 200 when the head is complete and asks for /metrics, or the
 * status to answer: 400 (malformed), 404 (another path), 405 (not GET or
 * HEAD), 431 (too many headers) */
int	http_request_feed(struct http_request *, const char *line, size_t len);

#endif
