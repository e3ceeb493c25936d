/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_smtp_cmd.c - libFuzzer target for the MAIL/RCPT/xtext parsers.
 * The first byte picks the parser, the rest is the command argument.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *arg, verb[16], out[600];
	struct smtp_mail m;
	struct smtp_rcpt r;

	if (size < 1 || size > 4096)
		return 0;
	if ((arg = malloc(size)) == NULL)
		return 0;
	memcpy(arg, data + 1, size - 1);
	arg[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0: (void)smtp_parse_mail(arg, &m, data[0] & 0x10); break;
	case 1: (void)smtp_parse_rcpt(arg, &r, data[0] & 0x10); break;
	case 2: (void)xtext_decode(arg, strlen(arg), out, sizeof(out)); break;
	case 3: (void)smtp_cmd_split(arg, verb, sizeof(verb)); break;
	case 4: {
		char d[300];

		if (strlen(arg) < sizeof(d)) {
			strcpy(d, arg);
			(void)smtp_domain_canon(d, data[0] & 0x10);
		}
		(void)xtext_encode(arg, out, sizeof(out));
		break;
	}
	}
	free(arg);
	return 0;
}
