/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_http.c - libFuzzer target for the request head GET /metrics reads:
 * the input is split into lines as the I/O layer would (LF ends a line, a
 * CR before it goes), each fed to http_request_feed until it answers.
 * Checks that the answer is one of the statuses it promises and that
 * nothing past a line is read.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request rq = { 0 };
	size_t off = 0;

	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t raw = nl != NULL ? (size_t)(nl - (data + off)) : size - off, len = raw;
		char *line = malloc(len + 1);	/* exact size: ASan sees an overread */
		int rc;

		if (line == NULL)
			return 0;
		memcpy(line, data + off, len);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		rc = http_request_feed(&rq, line, len);
		free(line);
		if (rc != 0 && rc != 200 && rc != 400 && rc != 404 && rc != 405 && rc != 431)
			abort();
		if (rc != 0)
			break;
		off += raw + (nl != NULL);	/* the line and its LF */
	}
	return 0;
}
