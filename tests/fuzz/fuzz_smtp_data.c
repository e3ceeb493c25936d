/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA parser.  Feeds the input
 * in chunks whose sizes come from the first byte and checks invariants: the
 * output never exceeds the input, and the end marker is found at the same
 * place however the input is split.
 */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
count_sink(void *arg, const char *p, size_t n)
{
	*(size_t *)arg += n;
}

static size_t
run(const uint8_t *data, size_t size, size_t chunk, size_t *out, struct smtp_data *d)
{
	size_t off = 0;

	*out = 0;
	smtp_data_init(d, count_sink, out);
	while (off < size && !smtp_data_done(d)) {
		size_t n = size - off < chunk ? size - off : chunk;

		off += smtp_data_feed(d, (const char *)data + off, n);
	}
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data a, b;
	size_t out_a, out_b, used_a, used_b;

	if (size < 1)
		return 0;
	used_a = run(data + 1, size - 1, size, &out_a, &a);
	used_b = run(data + 1, size - 1, 1 + data[0] % 7, &out_b, &b);
	assert(used_a == used_b);
	assert(out_a == out_b && out_a == a.size);
	assert(a.flags == b.flags && a.received == b.received);
	assert(out_a <= used_a + 1);	/* a held-back CR may come out late */
	return 0;
}
