/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * recipients.c - recipient lists as an open-addressing hash set.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "recipients.h"
#include "smtp_cmd.h"

struct recipients {
	char	**slots;
	size_t	  nslots;	/* power of two */
	size_t	  count;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 1099511628211ULL;
	}
	return h;
}

static int
recipients_grow(struct recipients *r)
{
	size_t n = r->nslots ? r->nslots * 2 : 64;
	char **slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < r->nslots; i++) {
		if (r->slots[i] == NULL)
			continue;
		size_t j = hash_str(r->slots[i]) & (n - 1);

		while (slots[j])
			j = (j + 1) & (n - 1);
		slots[j] = r->slots[i];
	}
	free(r->slots);
	r->slots = slots;
	r->nslots = n;
	return 0;
}

static int
recipients_has(const struct recipients *r, const char *key)
{
	if (r->nslots == 0)
		return 0;
	for (size_t j = hash_str(key) & (r->nslots - 1); r->slots[j]; j = (j + 1) & (r->nslots - 1))
		if (strcasecmp(r->slots[j], key) == 0)
			return 1;
	return 0;
}

static int
recipients_add(struct recipients *r, const char *key)
{
	size_t j;

	if (recipients_has(r, key))
		return 0;
	if ((r->count + 1) * 2 > r->nslots && recipients_grow(r) == -1)
		return -1;
	for (j = hash_str(key) & (r->nslots - 1); r->slots[j]; j = (j + 1) & (r->nslots - 1))
		;
	if ((r->slots[j] = strdup(key)) == NULL)
		return -1;
	r->count++;
	return 0;
}

/* recipients_line - validate one entry; returns its canonical form or NULL */
static char *
recipients_entry(char *line)
{
	char *at, *end;

	while (isspace((unsigned char)*line))
		line++;
	if ((end = strchr(line, '#')) != NULL)
		*end = '\0';
	end = line + strlen(line);
	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*line == '\0')
		return line;
	if ((at = strrchr(line, '@')) == NULL || strpbrk(line, " \t") != NULL)
		return NULL;
	if (smtp_domain_canon(at + 1, 1) == -1)
		return NULL;
	return line;
}

struct recipients *
recipients_load(const char *path, char *err, size_t errlen)
{
	struct recipients *r = calloc(1, sizeof(*r));
	FILE *fp = fopen(path, "r");
	char line[1024], *e;
	int lineno = 0;

	if (r == NULL || fp == NULL) {
		snprintf(err, errlen, "recipients file %s: %s", path, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if ((e = recipients_entry(line)) == NULL) {
			snprintf(err, errlen, "%s:%d: not an address or @domain", path, lineno);
			goto fail;
		}
		if (*e != '\0' && recipients_add(r, e) == -1) {
			snprintf(err, errlen, "recipients file %s: out of memory", path);
			goto fail;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "recipients file %s: read error", path);
		goto fail;
	}
	fclose(fp);
	return r;
fail:
	if (fp)
		fclose(fp);
	recipients_free(r);
	return NULL;
}

int
recipients_match(const struct recipients *r, const char *local, const char *domain)
{
	char key[SMTP_PATH_MAX * 2 + 2];

	snprintf(key, sizeof(key), "@%s", domain);
	if (recipients_has(r, key))
		return 1;
	snprintf(key, sizeof(key), "%s@%s", local, domain);
	return recipients_has(r, key);
}

size_t
recipients_count(const struct recipients *r)
{
	return r->count;
}

void
recipients_free(struct recipients *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nslots; i++)
		free(r->slots[i]);
	free(r->slots);
	free(r);
}
