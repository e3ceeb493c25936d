/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * atrn.c - the ATRN argument; see atrn.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "atrn.h"

int
atrn_parse(const char *arg, char (*names)[SMTP_DOMAIN_MAX + 1], size_t max, size_t *n)
{
	const char *p = arg;

	*n = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		size_t k;

		if (len == 0 || len > SMTP_DOMAIN_MAX || *n == max)
			return -1;
		snprintf(names[*n], SMTP_DOMAIN_MAX + 1, "%.*s", (int)len, p);
		if (smtp_domain_canon(names[*n], 0) == -1)
			return -1;
		for (k = 0; k < *n && strcmp(names[k], names[*n]) != 0; k++)
			;
		*n += k == *n;
		p += len;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	return 0;
}
