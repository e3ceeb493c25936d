/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_ec_conf.c - libFuzzer target for etrnclient.conf's keyword tables
 * (on the shared tokenizer).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ec_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = { 0 };
	char *text;

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* password files are not read: the fuzzer must not touch the disk */
	if (strstr(text, "password-file") == NULL)
		ec_conf_free(ec_conf_parse_text("fuzz.conf", text, &errs));
	conf_errors_free(&errs);
	free(text);
	return 0;
}
