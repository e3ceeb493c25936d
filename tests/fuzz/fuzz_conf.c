/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_conf.c - libFuzzer target for the configuration tokenizer and
 * spoold's keyword tables.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "spoold_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;
	char *text;

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* recipients files are not read: the fuzzer must not touch the disk */
	if (strstr(text, "recipients /") == NULL && strstr(text, "recipients .") == NULL) {
		cf = spoold_conf_parse_text("fuzz.conf", text, &errs);
		spoold_conf_free(cf);
	}
	conf_errors_free(&errs);
	free(text);
	return 0;
}
