/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * recipients.h - a domain's list of valid recipients (the "recipients FILE"
 * directive): one address or "@domain" a line, "#" comments.  Matching is
 * case-insensitive, local part included, as postmasters expect.
 */
#ifndef SPOOLD_RECIPIENTS_H
#define SPOOLD_RECIPIENTS_H

#include <stddef.h>

struct recipients;

/* recipients_load - read path; NULL with a message in err (errlen) */
struct recipients *recipients_load(const char *path, char *err, size_t errlen);
/* recipients_match - 1 when local@domain or @domain is listed */
int	recipients_match(const struct recipients *, const char *local, const char *domain);
size_t	recipients_count(const struct recipients *);
void	recipients_free(struct recipients *);

#endif
