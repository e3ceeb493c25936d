/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_read.c - the spool's reads: envelopes, bodies, a domain's counters,
 * queue and ids, the domain list, routes, the usage, the quarantine; each
 * one read transaction (spool_env_read) over the records spool.c writes.
 * See spool.h for the contract.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_env.h"
#include "spool_int.h"
#include "spool_record.h"

/* ---- messages and domains ---- */

/* The read functions: each runs one read transaction through
 * spool_env_read, with its arguments in one of these. */
struct read_envelope {
	struct spool		*sp;
	uint64_t		 id;
	struct spool_envelope	*e;
};

static int
read_envelope(MDB_txn *txn, void *arg)
{
	struct read_envelope *a = arg;

	return spool_envelope_in(a->sp, txn, a->id, a->e);
}

enum spool_err
spool_get_envelope(struct spool *sp, uint64_t id, struct spool_envelope *e)
{
	struct read_envelope a = { sp, id, e };

	return spool_err_of(spool_env_read(sp->env, read_envelope, &a));
}

struct read_body {
	struct spool	*sp;
	uint64_t	 id, off;
	char		*dst;
	size_t		 len;
};

static int
read_body(MDB_txn *txn, void *arg)
{
	struct read_body *a = arg;
	unsigned char key[SPOOL_BKEY_LEN];
	int rc = 0;

	while (a->len > 0 && rc == 0) {
		uint64_t chunk = a->off / SPOOL_CHUNK, in = a->off % SPOOL_CHUNK;
		MDB_val k = { spool_bkey(key, a->id, (uint32_t)chunk), key }, v;
		size_t n;

		if ((rc = mdb_get(txn, a->sp->body, &k, &v)) != 0)
			break;
		if (in >= v.mv_size)
			return SPOOL_RC_BADRECORD;	/* a chunk shorter than its place */
		n = v.mv_size - in < a->len ? v.mv_size - (size_t)in : a->len;
		memcpy(a->dst, (char *)v.mv_data + in, n);
		a->dst += n;
		a->off += n;
		a->len -= n;
	}
	return rc;
}

enum spool_err
spool_read_body(struct spool *sp, uint64_t id, uint64_t off, void *dst, size_t len)
{
	struct read_body a = { sp, id, off, dst, len };

	return spool_err_of(spool_env_read(sp->env, read_body, &a));
}

struct read_counters {
	struct spool		*sp;
	const char		*domain;
	struct spool_counters	*c;
};

static int
read_counters(MDB_txn *txn, void *arg)
{
	struct read_counters *a = arg;

	return spool_counters_get(a->sp, txn, a->domain, a->c);
}

enum spool_err
spool_domain_counters(struct spool *sp, const char *domain, struct spool_counters *c)
{
	struct read_counters a = { sp, domain, c };

	return spool_err_of(spool_env_read(sp->env, read_counters, &a));
}

struct read_list {
	struct spool	*sp;
	const char	*after;		/* NULL: from the first domain */
	int		(*cb)(const struct spool_domain_info *, void *);
	void		*arg;
};

/* list_first - the cursor at the first domain after a->after */
static int
list_first(const struct read_list *a, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
	size_t len = a->after != NULL ? strlen(a->after) : 0;
	int rc;

	if (len == 0)
		return mdb_cursor_get(cur, k, v, MDB_FIRST);
	*k = spool_val(a->after, len);
	if ((rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE)) == 0 && k->mv_size == len &&
	    memcmp(k->mv_data, a->after, len) == 0)
		rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
	return rc;
}

static int
read_list(MDB_txn *txn, void *arg)
{
	struct read_list *a = arg;
	char name[SPOOL_DOMAIN_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, a->sp->domain, &cur)) != 0)
		return rc;
	for (rc = list_first(a, cur, &k, &v); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct spool_domain_info di = { .domain = name };

		if (k.mv_size >= sizeof(name) ||
		    spool_counters_decode(v.mv_data, v.mv_size, &di.counters) == -1) {
			rc = SPOOL_RC_BADRECORD;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (a->cb(&di, a->arg) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_domain_list(struct spool *sp, int (*cb)(const struct spool_domain_info *, void *), void *arg)
{
	return spool_domain_list_after(sp, NULL, cb, arg);
}

enum spool_err
spool_domain_list_after(struct spool *sp, const char *after,
    int (*cb)(const struct spool_domain_info *, void *), void *arg)
{
	struct read_list a = { sp, after, cb, arg };

	return spool_err_of(spool_env_read(sp->env, read_list, &a));
}

/* A walk over one domain's queue range: the recipients of the message at
 * hand are gathered, then handed to cb with its envelope. */
struct walk {
	struct spool		*sp;
	const char		*domain;
	size_t			 dlen;
	spool_walk_cb		*cb;
	void			*arg;
	unsigned		*idx;
	struct spool_qentry	*qs;
	size_t			 nidx, cap;
	uint64_t		 id;		/* of the message at hand */
	int			 stop;		/* cb said so */
};

/* walk_emit - hand the message at hand to cb */
static int
walk_emit(MDB_txn *txn, struct walk *w)
{
	struct spool_envelope e;
	int rc;

	if ((rc = spool_envelope_in(w->sp, txn, w->id, &e)) == 0) {
		w->stop = w->cb(&e, w->idx, w->qs, w->nidx, w->arg);
		spool_envelope_free(&e);
	}
	for (size_t i = 0; i < w->nidx; i++)
		spool_qentry_free(&w->qs[i]);
	w->nidx = 0;
	return rc;
}

/* walk_grow - room for one more recipient of the message at hand */
static int
walk_grow(struct walk *w)
{
	unsigned *ni;
	struct spool_qentry *nq;

	if (w->nidx < w->cap)
		return 0;
	w->cap = w->cap ? w->cap * 2 : 16;
	if ((ni = realloc(w->idx, w->cap * sizeof(*ni))) == NULL)
		return ENOMEM;
	w->idx = ni;
	if ((nq = realloc(w->qs, w->cap * sizeof(*nq))) == NULL)
		return ENOMEM;
	w->qs = nq;
	return 0;
}

/* walk_entry - one queue entry: a new message hands the last one over */
static int
walk_entry(MDB_txn *txn, struct walk *w, uint64_t id, unsigned index, const MDB_val *v)
{
	int rc;

	if (w->nidx > 0 && id != w->id && (rc = walk_emit(txn, w)) != 0)
		return rc;
	if (w->stop)
		return 0;
	if ((rc = walk_grow(w)) != 0)
		return rc;
	if (spool_qentry_decode(v->mv_data, v->mv_size, &w->qs[w->nidx]) == -1)
		return SPOOL_RC_BADRECORD;
	w->id = id;
	w->idx[w->nidx++] = index;
	return 0;
}

static int
read_walk(MDB_txn *txn, void *arg)
{
	struct walk *w = arg;
	unsigned char start[SPOOL_QKEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	spool_queue_range(w->domain, w->dlen, start, &k);
	if ((rc = mdb_cursor_open(txn, w->sp->queue, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !w->stop;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t id;
		unsigned index;

		if (spool_queue_key_of(&k, w->domain, w->dlen, &id, &index) == -1 ||
		    (rc = walk_entry(txn, w, id, index, &v)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && w->nidx > 0 && !w->stop)
		rc = walk_emit(txn, w);
	for (size_t i = 0; i < w->nidx; i++)
		spool_qentry_free(&w->qs[i]);
	return rc;
}

enum spool_err
spool_domain_walk(struct spool *sp, const char *domain, spool_walk_cb *cb, void *arg)
{
	struct walk w = { .sp = sp, .domain = domain, .dlen = strlen(domain), .cb = cb, .arg = arg };
	int rc;

	if (w.dlen > SPOOL_DOMAIN_MAX)
		return SPOOL_ENOTFOUND;
	rc = spool_env_read(sp->env, read_walk, &w);
	free(w.idx);
	free(w.qs);
	return spool_err_of(rc);
}

struct read_ids {
	struct spool	*sp;
	const char	*domain;
	size_t		 dlen, cap;
	uint64_t	**ids;
	size_t		*n;
};

/* ids_add - id after the ones so far, unless it is the last one again
 * (another recipient of the same message) */
static int
ids_add(struct read_ids *a, uint64_t id)
{
	uint64_t *grown;

	if (*a->n > 0 && (*a->ids)[*a->n - 1] == id)
		return 0;
	if (*a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		if ((grown = realloc(*a->ids, a->cap * sizeof(*grown))) == NULL)
			return ENOMEM;
		*a->ids = grown;
	}
	(*a->ids)[(*a->n)++] = id;
	return 0;
}

static int
read_ids(MDB_txn *txn, void *arg)
{
	struct read_ids *a = arg;
	unsigned char start[SPOOL_QKEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	spool_queue_range(a->domain, a->dlen, start, &k);
	if ((rc = mdb_cursor_open(txn, a->sp->queue, &cur)) != 0)
		return rc;
	/* keys only: no record is decoded, so an ETRN for a big domain answers fast */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t id;
		unsigned index;

		if (spool_queue_key_of(&k, a->domain, a->dlen, &id, &index) == -1 ||
		    (rc = ids_add(a, id)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_domain_ids(struct spool *sp, const char *domain, uint64_t **ids, size_t *n)
{
	struct read_ids a = { sp, domain, strlen(domain), 0, ids, n };
	int rc;

	*ids = NULL;
	*n = 0;
	if (a.dlen > SPOOL_DOMAIN_MAX)
		return SPOOL_OK;
	if ((rc = spool_env_read(sp->env, read_ids, &a)) != 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return spool_err_of(rc);
}

struct read_route {
	struct spool		*sp;
	const char		*domain;
	struct spool_route	*rt;
};

static int
read_route(MDB_txn *txn, void *arg)
{
	struct read_route *a = arg;
	MDB_val k = spool_val(a->domain, strlen(a->domain)), v;
	int rc;

	if ((rc = mdb_get(txn, a->sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, a->rt) == -1)
		rc = SPOOL_RC_BADRECORD;
	return rc;
}

enum spool_err
spool_get_route(struct spool *sp, const char *domain, struct spool_route *rt)
{
	struct read_route a = { sp, domain, rt };
	size_t len = strlen(domain);

	memset(rt, 0, sizeof(*rt));
	if (!sp->have_route || len == 0 || len > SPOOL_DOMAIN_MAX)
		return SPOOL_ENOTFOUND;
	return spool_err_of(spool_env_read(sp->env, read_route, &a));
}

struct read_usage {
	struct spool		*sp;
	struct spool_env_usage	 u;
	uint64_t		 messages, domains, quarantined;
};

static int
read_usage(MDB_txn *txn, void *arg)
{
	struct read_usage *a = arg;
	struct spool *sp = a->sp;
	MDB_dbi dbis[7] = { sp->msg, sp->body, sp->queue, sp->domain, sp->meta, sp->route,
	    sp->verify };
	MDB_stat ms;
	int rc;

	if ((rc = mdb_stat(txn, sp->msg, &ms)) != 0)
		return rc;
	a->messages = ms.ms_entries;
	if ((rc = mdb_stat(txn, sp->domain, &ms)) != 0)
		return rc;
	a->domains = ms.ms_entries;
	if (sp->have_quarantine) {
		if ((rc = mdb_stat(txn, sp->quarantine, &ms)) != 0)
			return rc;
		a->quarantined = ms.ms_entries;
	}
	/* verify only with route: the databases came in that order */
	return spool_env_usage(sp->env, txn, dbis, !sp->have_route ? 5 : sp->have_verify ? 7 : 6,
	    &a->u);
}

void
spool_read_at_random(struct spool *sp, int on)
{
	spool_env_read_at_random(sp->env, on);
}

enum spool_err
spool_get_stats(struct spool *sp, struct spool_stats *st)
{
	struct read_usage a = { .sp = sp };
	int rc = spool_env_read(sp->env, read_usage, &a);

	memset(st, 0, sizeof(*st));
	st->messages = a.messages;
	st->domains = a.domains;
	st->quarantined = a.quarantined;
	st->map_size = a.u.map_size;
	st->map_used = a.u.map_used;
	st->map_max = a.u.map_max;
	st->readers = a.u.readers;
	st->max_readers = a.u.max_readers;
	return spool_err_of(rc);
}

enum spool_err
spool_free_space(struct spool *sp, uint64_t *map_free, uint64_t *disk_free)
{
	struct read_usage a = { .sp = sp };
	int rc = spool_env_read(sp->env, read_usage, &a);

	*map_free = a.u.map_free;
	*disk_free = rc == 0 ? a.u.disk_free : UINT64_MAX;
	return spool_err_of(rc);
}

/* ---- reading the quarantine ---- */

struct read_quarantine {
	struct spool		*sp;
	spool_quarantine_cb	*cb;
	void			*arg;
	int64_t			 before;	/* expired: since before this */
	uint64_t		*ids;
	size_t			 n, cap;
	uint64_t		 id;
	struct spool_quarantine	*q;
};

static int
read_quarantine_walk(MDB_txn *txn, void *arg)
{
	struct read_quarantine *a = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (!a->sp->have_quarantine)
		return 0;
	if ((rc = mdb_cursor_open(txn, a->sp->quarantine, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct spool_quarantine q;
		struct spool_envelope e;
		int stop;

		if (k.mv_size != 8 || spool_quarantine_decode(v.mv_data, v.mv_size, &q) == -1) {
			rc = SPOOL_RC_BADRECORD;
			break;
		}
		if ((rc = spool_envelope_in(a->sp, txn, spool_get_be64(k.mv_data), &e)) != 0) {
			spool_quarantine_free(&q);
			break;
		}
		stop = a->cb(&e, &q, a->arg);
		spool_envelope_free(&e);
		spool_quarantine_free(&q);
		if (stop)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_quarantine_walk(struct spool *sp, spool_quarantine_cb *cb, void *arg)
{
	struct read_quarantine a = { .sp = sp, .cb = cb, .arg = arg };

	return spool_err_of(spool_env_read(sp->env, read_quarantine_walk, &a));
}

/* read_expired - the ids quarantined before a->before: the records only,
 * no envelope, so a large quarantine is a short walk */
static int
read_expired(MDB_txn *txn, void *arg)
{
	struct read_quarantine *a = arg;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (!a->sp->have_quarantine)
		return 0;
	if ((rc = mdb_cursor_open(txn, a->sp->quarantine, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct spool_quarantine q;
		int old;

		if (k.mv_size != 8 || spool_quarantine_decode(v.mv_data, v.mv_size, &q) == -1)
			continue;	/* left for spoolctl delete; never guessed */
		old = q.since < a->before;
		spool_quarantine_free(&q);
		if (!old)
			continue;
		if (a->n == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 64;
			uint64_t *n = realloc(a->ids, cap * sizeof(*n));

			if (n == NULL) {
				rc = ENOMEM;
				break;
			}
			a->ids = n;
			a->cap = cap;
		}
		a->ids[a->n++] = spool_get_be64(k.mv_data);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_quarantine_expired(struct spool *sp, int64_t before, uint64_t **ids, size_t *n)
{
	struct read_quarantine a = { .sp = sp, .before = before };
	int rc = spool_env_read(sp->env, read_expired, &a);

	if (rc != 0) {
		free(a.ids);
		a.ids = NULL;
		a.n = 0;
	}
	*ids = a.ids;
	*n = a.n;
	return spool_err_of(rc);
}

static int
read_quarantine_one(MDB_txn *txn, void *arg)
{
	struct read_quarantine *a = arg;

	return spool_quarantine_get(a->sp, txn, a->id, a->q);
}

enum spool_err
spool_get_quarantine(struct spool *sp, uint64_t id, struct spool_quarantine *q)
{
	struct read_quarantine a = { .sp = sp, .id = id, .q = q };

	return spool_err_of(spool_env_read(sp->env, read_quarantine_one, &a));
}
