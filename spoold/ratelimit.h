/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ratelimit.h - events per client address in a one-minute window: ETRN
 * commands, connections, messages.  Only addresses seen in the last minute
 * are kept, so the table is as small as the traffic.
 */
#ifndef SPOOLD_RATELIMIT_H
#define SPOOLD_RATELIMIT_H

#include <stdint.h>

struct rate_entry;

struct rate_table {
	struct rate_entry	*head;
};

/* rate_exceeded - count one event from addr now; 1 when that makes more
 * than limit in the current minute (limit 0: no limit, nothing counted) */
int	rate_exceeded(struct rate_table *, const char *addr, uint64_t limit, double now);

/* STARTTLS handshakes per client address (rate-tls): one table for the SMTP
 * and the ODMR port, since the cost is the same on both */
extern struct rate_table rate_tls_handshakes;

#endif
