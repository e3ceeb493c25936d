/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * metrics_spool.h - the spool's series of the metrics text (metrics.h has
 * the counters').  Blocks on the spool's reads: the metrics thread only.
 */
#ifndef SPOOLD_METRICS_SPOOL_H
#define SPOOLD_METRICS_SPOOL_H

#include "buf.h"

struct queue;

/* metrics_spool_render - appended to out; -1 when the spool could not be
 * read (spoold_spool_read_ok 0 says so to the scraper) */
int	metrics_spool_render(struct queue *, struct buf *out);

#endif
