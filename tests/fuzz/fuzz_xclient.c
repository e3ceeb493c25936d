/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_xclient.c - libFuzzer target for XCLIENT's attribute parser: the
 * input is the command's argument.  Checks that what it takes is printable
 * without blanks (it goes into the log and the Received: header), that an
 * address is IPv4 or IPv6 and a port in range.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xclient x;
	char *arg, bad[40];

	if (size > 4096 || (arg = malloc(size + 1)) == NULL)
		return 0;
	memcpy(arg, data, size);
	arg[size] = '\0';
	if (xclient_parse(arg, &x, bad, sizeof(bad)) == NULL) {
		check_text(x.helo);
		check_text(x.login);
		if (x.addr_set && x.addr.ss_family != AF_INET && x.addr.ss_family != AF_INET6)
			abort();
		if (x.port_set && (x.port < 0 || x.port > 65535))
			abort();
	} else if (strlen(bad) >= sizeof(bad))
		abort();
	free(arg);
	return 0;
}
