/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * atrn.h - the argument of ATRN (RFC 2645 5.2.1): "domain[,domain]...".
 * Pure code.
 */
#ifndef SPOOLD_ATRN_H
#define SPOOLD_ATRN_H

#include <stddef.h>

#include "smtp_cmd.h"

#define ATRN_MAX_DOMAINS	64

/* atrn_parse - arg into names[0..*n) (canonical, no repeats; at most max);
 * -1 for an empty item, a bad name, a trailing comma or too many */
int	atrn_parse(const char *arg, char (*names)[SMTP_DOMAIN_MAX + 1], size_t max, size_t *n);

#endif
