/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_milter.c - libFuzzer target for the milter reply parser: the input
 * is a stream of packets as a filter (any filter) might send them.  Checks
 * that every string the parser hands out ends inside the packet, that a
 * body chunk lies inside it, and that a REPLYCODE line that passes the
 * check is one printable line with a 4xx/5xx code.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const char *s, const uint8_t *p, size_t len)
{
	if (s == NULL)
		return;
	if ((const uint8_t *)s < p || (const uint8_t *)s + strlen(s) >= p + len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct milter_msg m;
	long n;

	while ((n = milter_packet_len(data, size, MILTER_REPLY_MAX)) > 0) {
		if (milter_parse(data, (size_t)n, &m) != MILTER_R_BAD) {
			inside(m.name, data, (size_t)n);
			inside(m.value, data, (size_t)n);
			if (m.data != NULL && ((const uint8_t *)m.data < data ||
			    (const uint8_t *)m.data + m.len > data + n))
				abort();
			if (m.kind == MILTER_R_REPLYCODE && milter_replycode_ok(m.value) &&
			    (strpbrk(m.value, "\r\n") != NULL || (m.value[0] != '4' && m.value[0] != '5')))
				abort();
		}
		data += n;
		size -= (size_t)n;
	}
	return 0;
}
