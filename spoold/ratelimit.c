/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ratelimit.c - per-address event counts; see ratelimit.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define RATE_WINDOW	60.0

struct rate_table rate_tls_handshakes;

struct rate_entry {
	struct rate_entry	*next;
	char			 addr[64];
	double			 window;	/* start of its minute */
	uint64_t		 count;
};

int
rate_exceeded(struct rate_table *t, const char *addr, uint64_t limit, double now)
{
	struct rate_entry **pp, *e;

	if (limit == 0)
		return 0;
	for (pp = &t->head; (e = *pp) != NULL;) {
		if (now - e->window >= RATE_WINDOW) {	/* prune as we go */
			*pp = e->next;
			free(e);
			continue;
		}
		if (strcmp(e->addr, addr) == 0)
			return ++e->count > limit;
		pp = &e->next;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return 0;
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	e->window = now;
	e->count = 1;
	e->next = t->head;
	t->head = e;
	return e->count > limit;
}
