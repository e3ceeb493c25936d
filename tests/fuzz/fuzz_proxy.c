/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol header parser:
 * fed the input whole and then every prefix of it, as bytes would arrive.
 * Checks that a header never claims more bytes than it was given nor more
 * than the bound, that a prefix of an accepted header asks for more, and
 * that an accepted header's addresses are of a family we can use.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header h;
	const char *why;
	uint8_t *copy;
	int rc, prc;

	if (size > 2 * PROXY_HEADER_MAX || (copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);	/* exact size: ASan sees an overread */
	rc = proxy_parse(copy, size, &h, &why);
	if (rc > (int)size || rc > PROXY_HEADER_MAX || (rc < 0 && why[0] == '\0'))
		abort();
	if (rc > 0 && !h.local && ((h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6) ||
	    h.dst.ss_family != h.src.ss_family))
		abort();
	for (size_t n = 0; rc > 0 && n < (size_t)rc; n++)
		if ((prc = proxy_parse(copy, n, &h, &why)) != 0)
			abort();
	free(copy);
	return 0;
}
