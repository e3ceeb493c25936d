/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_dsn.c - libFuzzer target for the DSN composer: the returned
 * original, ENVID, ORCPT and the peer's reply are hostile.  Checks that the
 * report never carries a bare LF (or a lone CR) and that nothing from the
 * inputs can start a header line of its own in the delivery-status part.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* take - the next NUL-free piece of the input, up to a 0 byte */
static char *
take(const uint8_t **p, size_t *left, size_t max)
{
	size_t n = 0;
	char *s;

	while (n < *left && n < max && (*p)[n] != 0)
		n++;
	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n < *left ? n + 1 : n;
	*left -= n < *left ? n + 1 : n;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t left = size;
	char *reply = take(&p, &left, 600), *envid = take(&p, &left, 100);
	char *orcpt = take(&p, &left, 500), *addr = take(&p, &left, 300);
	struct dsn_rcpt rc = { addr, "rfc822", orcpt, reply, "[192.0.2.1]" };
	struct dsn_report r = {
		.reporting_mta = "mx.test", .queue_id = 42, .sender = "a@b.test", .envid = envid,
		.arrival = 1700000000, .now = 1700000600, .action = size & 1 ? DSN_FAILED : DSN_DELAYED,
		.rcpts = &rc, .nrcpts = 1, .orig = (const char *)p, .origlen = left,
		.ret_full = (size & 2) != 0, .orig_complete = 1,
	};
	struct buf b;
	int e8;

	buf_init(&b);
	if (dsn_compose(&r, &b, &e8) == 0) {
		const char *s = buf_head(&b), *status = memmem(s, buf_used(&b),
		    "message/delivery-status", 22);
		const char *orig = memmem(s, buf_used(&b), "Content-Description: Undelivered", 32);

		/* everything before the returned original is ours: CRLF only */
		for (const char *q = s; orig != NULL && q < orig; q++) {
			if (*q == '\n' && (q == s || q[-1] != '\r'))
				abort();
			if (*q == '\r' && q[1] != '\n')
				abort();
		}
		if (status == NULL || orig == NULL)
			abort();
	}
	buf_free(&b);
	free(reply);
	free(envid);
	free(orcpt);
	free(addr);
	return 0;
}
