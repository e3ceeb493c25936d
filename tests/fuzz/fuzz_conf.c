/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * fuzz_conf.c - libFuzzer target for the configuration tokenizer,
 * spoold's keyword tables, the rows PostgreSQL gives (domain blocks joining
 * a configuration) and PostgreSQL lookup files.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "pgsql_map.h"
#include "spoold_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE	"hostname mx.fuzz\nlisten smtp 127.0.0.1:25\ndatadir /nonexistent\n" \
		"domain file.fuzz {\nrecipients any\n}\n"

/* only_any - every recipients directive is "any": nothing read from disk */
static int
only_any(const char *text)
{
	for (const char *p = text; (p = strstr(p, "recipients")) != NULL; p++)
		if (strncmp(p, "recipients any", 14) != 0)
			return 0;
	return 1;
}

/* fuzz_rows - text as the rows of "domains pgsql:" */
static void
fuzz_rows(const char *text)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = spoold_conf_parse_text("base.conf", BASE, &errs);

	if (cf != NULL)
		spoold_conf_add_domains(cf, "pgsql:rows", text, &errs);
	spoold_conf_free(cf);
	conf_errors_free(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;
	char *text, err[512];

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* recipients files are not read: the fuzzer must not touch the disk */
	if (strstr(text, "recipients /") == NULL && strstr(text, "recipients .") == NULL &&
	    strstr(text, "pgsql:") == NULL) {
		cf = spoold_conf_parse_text("fuzz.conf", text, &errs);
		spoold_conf_free(cf);
	}
	if (only_any(text))
		fuzz_rows(text);
	pgsql_map_free(pgsql_map_parse("fuzz.cf", text, err, sizeof(err)));
	conf_errors_free(&errs);
	free(text);
	return 0;
}
