/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_int.h - what spool.c (the writes) and spool_read.c (the reads)
 * share: the handle's databases and the one error translation.  Not for
 * the rest of spoold, which sees spool.h.
 */
#ifndef SPOOLD_SPOOL_INT_H
#define SPOOLD_SPOOL_INT_H

#include <lmdb.h>

#include "spool.h"
#include "spool_env.h"

struct spool {
	struct spool_env	*env;
	MDB_dbi			 msg, body, queue, domain, meta, route, quarantine, verify;
	int			 have_route;	/* a read-only open of an older spool may lack it */
	int			 have_quarantine;	/* the same */
	int			 have_verify;	/* the same */
};

/* spool_err_of - an LMDB rc (or SPOOL_RC_*) as the API's error */
enum spool_err spool_err_of(int rc);

/* spool_envelope_in - message id's envelope, inside txn; an LMDB rc */
int	spool_envelope_in(struct spool *, MDB_txn *, uint64_t id, struct spool_envelope *);

/* spool_counters_get - domain's counters, inside txn (zero when it has no
 * record); an LMDB rc */
int	spool_counters_get(struct spool *, MDB_txn *, const char *domain, struct spool_counters *);

/* spool_quarantine_get - message id's quarantine record (q may be NULL:
 * only whether it is quarantined); MDB_NOTFOUND when it is not */
int	spool_quarantine_get(struct spool *, MDB_txn *, uint64_t id, struct spool_quarantine *q);

/* spool_queue_range - k is the first key of domain's range in the queue
 * db (start: room for the domain and its NUL) */
void	spool_queue_range(const char *domain, size_t dlen, unsigned char *start, MDB_val *k);

/* spool_queue_key_of - 0 with the id and recipient index of k when k is
 * still in domain's range, -1 past it */
int	spool_queue_key_of(const MDB_val *k, const char *domain, size_t dlen, uint64_t *id,
	    unsigned *index);

#endif
