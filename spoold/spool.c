/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool.c - the spool's data model over LMDB; see spool.h for the contract.
 *
 * Records, keys and their invariants (counters, the queue ranges, bodies)
 * as functions over a transaction: opening, storing and every change; the
 * reads are spool_read.c's (spool_int.h is what the two share), the
 * environment, map growth and the retry policy spool_env.c's.  Functions return LMDB rc values (and
 * spool_env.h's SPOOL_RC_*) internally and translate them once, at the API
 * boundary (spool_err_of).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "spool.h"
#include "spool_env.h"
#include "spool_int.h"

#define SPOOL_SCHEMA		1

/* spool_err_of - the one translation: a record that does not decode is a
 * data error (SPOOL_EFORMAT: refused, logged, never the "stop and exit"
 * of SPOOL_EIO, which would repeat after every restart) */
enum spool_err
spool_err_of(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:	return SPOOL_OK;
	case MDB_NOTFOUND:	return SPOOL_ENOTFOUND;
	case SPOOL_RC_BADRECORD: return SPOOL_EFORMAT;
	case SPOOL_RC_BODY:	return SPOOL_EBODY;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:		return SPOOL_EFULL;
	default:		return SPOOL_EIO;
	}
}


const char *
spool_strerror(enum spool_err e)
{
	switch (e) {
	case SPOOL_OK:		return "ok";
	case SPOOL_ENOTFOUND:	return "not found";
	case SPOOL_EFULL:	return "spool full (max-spool-size or disk)";
	case SPOOL_EIO:		return "storage error";
	case SPOOL_EFORMAT:	return "unknown record format";
	case SPOOL_EBODY:	return "cannot read message body";
	}
	return "?";
}

/* spool_check_schema - refuse a spool written by a newer spoold */
static int
spool_check_schema(struct spool *sp, MDB_txn *txn)
{
	MDB_val k = spool_val("version", 7), v;
	unsigned char ver[4] = { 0, 0, 0, SPOOL_SCHEMA };
	int rc = mdb_get(txn, sp->meta, &k, &v);

	if (rc == MDB_NOTFOUND && !spool_env_rdonly(sp->env)) {
		v.mv_size = sizeof(ver);
		v.mv_data = ver;
		return mdb_put(txn, sp->meta, &k, &v, 0);
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 4 || memcmp(v.mv_data, ver, 4) != 0)
		return SPOOL_RC_SCHEMA;
	return 0;
}

/* open_dbs - the named databases, in the first transaction */
static int
open_dbs(MDB_txn *txn, void *arg)
{
	struct spool *sp = arg;
	unsigned flags = spool_env_rdonly(sp->env) ? 0 : MDB_CREATE;
	int rc;

	if ((rc = mdb_dbi_open(txn, "msg", flags, &sp->msg)) != 0 ||
	    (rc = mdb_dbi_open(txn, "body", flags, &sp->body)) != 0 ||
	    (rc = mdb_dbi_open(txn, "queue", flags, &sp->queue)) != 0 ||
	    (rc = mdb_dbi_open(txn, "domain", flags, &sp->domain)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", flags, &sp->meta)) != 0 ||
	    (rc = spool_check_schema(sp, txn)) != 0)
		return rc;
	/* added after the first spools were written: open or create it, and a
	 * read-only open of a spool without it just has no route records */
	if ((rc = mdb_dbi_open(txn, "route", flags, &sp->route)) == 0)
		sp->have_route = 1;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_dbi_open(txn, "quarantine", flags, &sp->quarantine)) == 0)
		sp->have_quarantine = 1;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_dbi_open(txn, "verify", flags, &sp->verify)) == 0)
		sp->have_verify = 1;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_open(struct spool **out, const char *dir, uint64_t max_size, int flags, char *err,
    size_t errlen)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	int rc;

	*out = NULL;
	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return SPOOL_EIO;
	}
	if ((rc = spool_env_open(&sp->env, dir, max_size, (flags & SPOOL_RDONLY) != 0, err,
	    errlen)) != 0) {
		free(sp);
		return spool_err_of(rc) == SPOOL_EFULL ? SPOOL_EFULL : SPOOL_EIO;
	}
	if ((rc = spool_env_setup(sp->env, open_dbs, sp)) != 0) {
		snprintf(err, errlen, "cannot open spool databases in %s: %s", dir,
		    rc == SPOOL_RC_SCHEMA ? "written by a newer spoold (unknown schema version)" :
		    mdb_strerror(rc));
		spool_close(sp);
		return rc == SPOOL_RC_SCHEMA ? SPOOL_EFORMAT : rc == MDB_NOTFOUND ? SPOOL_ENOTFOUND :
		    SPOOL_EIO;
	}
	*out = sp;
	return SPOOL_OK;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	spool_env_close(sp->env);
	free(sp);
}

static int
spool_get_next_id(struct spool *sp, MDB_txn *txn, uint64_t *id)
{
	MDB_val k = spool_val("next_id", 7), v;
	int rc = mdb_get(txn, sp->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		*id = 1;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return SPOOL_RC_BADRECORD;
	*id = spool_get_be64(v.mv_data);
	return 0;
}

struct next_id_read {
	struct spool	*sp;
	uint64_t	*id;
};

static int
next_id_read(MDB_txn *txn, void *arg)
{
	struct next_id_read *a = arg;

	return spool_get_next_id(a->sp, txn, a->id);
}

enum spool_err
spool_next_id(struct spool *sp, uint64_t *id)
{
	struct next_id_read a = { sp, id };

	return spool_err_of(spool_env_read(sp->env, next_id_read, &a));
}

/* ---- counters ---- */

int
spool_counters_get(struct spool *sp, MDB_txn *txn, const char *domain, struct spool_counters *c)
{
	MDB_val k = spool_val(domain, strlen(domain)), v;
	int rc = mdb_get(txn, sp->domain, &k, &v);

	memset(c, 0, sizeof(*c));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return spool_counters_decode(v.mv_data, v.mv_size, c) == 0 ? 0 : SPOOL_RC_BADRECORD;
}

static int
spool_counters_put(struct spool *sp, MDB_txn *txn, const char *domain, const struct spool_counters *c)
{
	unsigned char enc[SPOOL_COUNTERS_LEN];
	MDB_val k = spool_val(domain, strlen(domain)), v = { sizeof(enc), enc };

	if (c->messages == 0) {
		int rc = mdb_del(txn, sp->domain, &k, NULL);

		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	spool_counters_encode(c, enc);
	return mdb_put(txn, sp->domain, &k, &v, 0);
}

static int spool_oldest(struct spool *, MDB_txn *, const char *, int64_t *);

/* counters_adjust - the one place a domain's counters change: message e
 * joins domain (delta 1) or leaves it (delta -1, after its queue entries
 * there are gone, so the oldest left is found again) */
static int
counters_adjust(struct spool *sp, MDB_txn *txn, const char *domain,
    const struct spool_envelope *e, int delta)
{
	struct spool_counters c;
	int rc;

	if ((rc = spool_counters_get(sp, txn, domain, &c)) != 0)
		return rc;
	if (delta > 0) {
		c.messages++;
		c.bytes += e->size;
		if (c.oldest == 0 || e->arrival < c.oldest)
			c.oldest = e->arrival;
	} else {
		c.messages = c.messages > 0 ? c.messages - 1 : 0;
		c.bytes = c.bytes > e->size ? c.bytes - e->size : 0;
		if ((rc = spool_oldest(sp, txn, domain, &c.oldest)) != 0)
			return rc;
	}
	return spool_counters_put(sp, txn, domain, &c);
}

/* first_of_domain - rcpts[i] is the first recipient in its domain */
static int
first_of_domain(const struct spool_envelope *e, size_t i, int pending_only)
{
	const char *d = spool_rcpt_domain(e->rcpts[i].addr);

	for (size_t j = 0; j < i; j++)
		if ((!pending_only || !e->rcpts[j].done) && strcmp(spool_rcpt_domain(e->rcpts[j].addr), d) == 0)
			return 0;
	return 1;
}

/* ---- storing ---- */

static int
spool_put_body(struct spool *sp, MDB_txn *txn, struct spool_newmsg *m)
{
	unsigned char key[SPOOL_BKEY_LEN];
	uint64_t off = 0;
	uint32_t chunk = 0;
	int rc;

	do {
		size_t len = m->env.size - off > SPOOL_CHUNK ? SPOOL_CHUNK : (size_t)(m->env.size - off);
		MDB_val k = { spool_bkey(key, m->env.id, chunk), key }, v = { len, NULL };

		/* MDB_RESERVE: read the body straight into the page */
		if ((rc = mdb_put(txn, sp->body, &k, &v, MDB_RESERVE)) != 0)
			return rc;
		if (len > 0 && m->read_body(m->body_arg, off, v.mv_data, len) == -1)
			return SPOOL_RC_BODY;
		off += len;
		chunk++;
	} while (off < m->env.size);
	return 0;
}

static int
spool_put_queue(struct spool *sp, MDB_txn *txn, struct spool_newmsg *m, struct buf *b)
{
	unsigned char key[SPOOL_QKEY_MAX];
	int rc;

	for (size_t i = 0; i < m->env.nrcpts; i++) {
		struct spool_qentry q = { .rcpt_index = (unsigned)i, .last_reply = "" };
		MDB_val k = { spool_qkey(key, spool_rcpt_domain(m->env.rcpts[i].addr), m->env.id, (unsigned)i), key };
		MDB_val v;

		if (m->env.rcpts[i].done)
			continue;
		buf_clear(b);
		if (spool_qentry_encode(&q, b) == -1)
			return ENOMEM;
		v.mv_size = buf_used(b);
		v.mv_data = buf_head(b);
		if ((rc = mdb_put(txn, sp->queue, &k, &v, 0)) != 0)
			return rc;
	}
	for (size_t i = 0; i < m->env.nrcpts; i++)
		if (!m->env.rcpts[i].done && first_of_domain(&m->env, i, 1) && (rc = counters_adjust(sp, txn,
		    spool_rcpt_domain(m->env.rcpts[i].addr), &m->env, 1)) != 0)
			return rc;
	return 0;
}

/* ---- quarantine: id(8) -> since, reason ---- */

static int
spool_quarantine_put(struct spool *sp, MDB_txn *txn, uint64_t id, int64_t since,
    const char *reason)
{
	struct spool_quarantine q = { .since = since, .reason = reason };
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	struct buf b;
	int rc;

	if (!sp->have_quarantine)
		return EINVAL;
	spool_be64(idkey, id);
	buf_init(&b);
	if (spool_quarantine_encode(&q, &b) == -1) {
		buf_free(&b);
		return ENOMEM;
	}
	v.mv_size = buf_used(&b);
	v.mv_data = buf_head(&b);
	rc = mdb_put(txn, sp->quarantine, &k, &v, 0);
	buf_free(&b);
	return rc;
}

/* spool_quarantine_get - message id's quarantine record (q may be NULL:
 * only whether it is quarantined); MDB_NOTFOUND when it is not */
int
spool_quarantine_get(struct spool *sp, MDB_txn *txn, uint64_t id, struct spool_quarantine *q)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	int rc;

	if (!sp->have_quarantine)
		return MDB_NOTFOUND;
	spool_be64(idkey, id);
	if ((rc = mdb_get(txn, sp->quarantine, &k, &v)) != 0)
		return rc;
	if (q != NULL && spool_quarantine_decode(v.mv_data, v.mv_size, q) == -1)
		return SPOOL_RC_BADRECORD;
	return 0;
}

static int
spool_quarantine_del(struct spool *sp, MDB_txn *txn, uint64_t id)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey };

	spool_be64(idkey, id);
	return mdb_del(txn, sp->quarantine, &k, NULL);
}

/* A message stored in a nested transaction of its own. */
struct put_one {
	struct spool		*sp;
	struct spool_newmsg	*m;
	struct buf		*b;
};

static int
put_one_in(MDB_txn *txn, void *arg)
{
	struct put_one *a = arg;
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	int rc;

	spool_be64(idkey, a->m->env.id);
	buf_clear(a->b);
	if (spool_envelope_encode(&a->m->env, a->b) == -1)
		return ENOMEM;
	v.mv_size = buf_used(a->b);
	v.mv_data = buf_head(a->b);
	if ((rc = mdb_put(txn, a->sp->msg, &k, &v, MDB_NOOVERWRITE)) != 0 ||
	    (rc = spool_put_body(a->sp, txn, a->m)) != 0)
		return rc;
	if (a->m->quarantine != NULL)
		return spool_quarantine_put(a->sp, txn, a->m->env.id, a->m->env.arrival,
		    a->m->quarantine);
	return spool_put_queue(a->sp, txn, a->m, a->b);
}

/* spool_put_one - one message in a nested transaction (SPOOL_RC_BODY: its
 * body could not be read) */
static int
spool_put_one(struct spool *sp, MDB_txn *parent, struct spool_newmsg *m, struct buf *b)
{
	struct put_one a = { sp, m, b };

	return spool_env_nested(parent, put_one_in, &a);
}

static int
spool_put_next_id(struct spool *sp, MDB_txn *txn, uint64_t next)
{
	MDB_val k = spool_val("next_id", 7), v;
	unsigned char enc[8];
	uint64_t cur;
	int rc;

	if ((rc = spool_get_next_id(sp, txn, &cur)) != 0)
		return rc;
	if (next <= cur)
		return 0;
	spool_be64(enc, next);
	v.mv_size = 8;
	v.mv_data = enc;
	return mdb_put(txn, sp->meta, &k, &v, 0);
}

/* A batch of new messages, each in a nested transaction so one bad
 * message fails alone. */
struct put_batch {
	struct spool		*sp;
	struct spool_newmsg	*const *msgs;
	size_t			 n;
	enum spool_err		*results;
};

/* put_batch_in - the batch in txn; MDB_MAP_FULL asks spool_env_write to
 * grow the map, unless at_limit, when a message that does not fit fails
 * alone */
static int
put_batch_in(MDB_txn *txn, int at_limit, void *arg)
{
	struct put_batch *a = arg;
	uint64_t next = 0;
	struct buf b;
	int rc;

	buf_init(&b);
	for (size_t i = 0; i < a->n; i++) {
		rc = spool_put_one(a->sp, txn, a->msgs[i], &b);
		if (rc == MDB_MAP_FULL && !at_limit) {
			buf_free(&b);
			return rc;
		}
		a->results[i] = spool_err_of(rc);
		if (rc == 0 && a->msgs[i]->env.id >= next)
			next = a->msgs[i]->env.id + 1;
	}
	buf_free(&b);
	return spool_put_next_id(a->sp, txn, next);
}

enum spool_err
spool_put_messages(struct spool *sp, struct spool_newmsg *const *msgs, size_t n,
    enum spool_err *results)
{
	struct put_batch a = { sp, msgs, n, results };
	enum spool_err all = SPOOL_OK;
	uint64_t want = 1024 * 1024;
	int rc;

	for (size_t i = 0; i < n; i++)
		results[i] = SPOOL_EIO;
	if ((rc = spool_env_write(sp->env, put_batch_in, &a)) != 0) {
		enum spool_err e;

		/* LMDB turns a short pwritev on a full disk into EIO: told apart
		 * from a real I/O error by the free space, refusing with 452
		 * 4.3.1 lets senders retry once space is back */
		for (size_t i = 0; i < n; i++)
			want += msgs[i]->env.size * 2;
		e = spool_env_disk_short(sp->env, want) ? SPOOL_EFULL : spool_err_of(rc);
		log_warnx("spool: commit of %zu message%s failed: %s%s", n, n == 1 ? "" : "s",
		    mdb_strerror(rc), e == SPOOL_EFULL && rc != MDB_MAP_FULL ? " (file system full)" : "");
		for (size_t i = 0; i < n; i++)
			results[i] = e;
	}
	for (size_t i = 0; i < n; i++)
		if (results[i] != SPOOL_OK)
			all = results[i];
	return all;
}

/* ---- envelopes ---- */

int
spool_envelope_in(struct spool *sp, MDB_txn *txn, uint64_t id, struct spool_envelope *e)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	int rc;

	spool_be64(idkey, id);
	if ((rc = mdb_get(txn, sp->msg, &k, &v)) != 0)
		return rc;
	if (spool_envelope_decode(v.mv_data, v.mv_size, e) == -1)
		return SPOOL_RC_BADRECORD;
	e->id = id;
	return 0;
}

/* ---- the queue's keys ---- */

/* spool_queue_range - k is the first key of domain's range in the queue db */
void
spool_queue_range(const char *domain, size_t dlen, unsigned char *start, MDB_val *k)
{
	memcpy(start, domain, dlen);
	start[dlen] = '\0';
	k->mv_size = dlen + 1;
	k->mv_data = start;
}

/* spool_queue_key_of - 0 with the id and recipient index of k when k is still in
 * domain's range, -1 past it */
int
spool_queue_key_of(const MDB_val *k, const char *domain, size_t dlen, uint64_t *id, unsigned *index)
{
	const char *d;
	size_t len;

	if (spool_qkey_parse(k->mv_data, k->mv_size, &d, &len, id, index) == -1 ||
	    len != dlen || memcmp(d, domain, dlen) != 0)
		return -1;
	return 0;
}

/* ---- deleting ---- */

/* spool_oldest - arrival of the first message left in domain's range */
static int
spool_oldest(struct spool *sp, MDB_txn *txn, const char *domain, int64_t *oldest)
{
	unsigned char start[SPOOL_QKEY_MAX];
	size_t dlen = strlen(domain);
	MDB_cursor *cur;
	MDB_val k, v;
	struct spool_envelope e;
	uint64_t id;
	unsigned index;
	int rc;

	spool_queue_range(domain, dlen, start, &k);
	*oldest = 0;
	if ((rc = mdb_cursor_open(txn, sp->queue, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (spool_queue_key_of(&k, domain, dlen, &id, &index) == -1)
		return 0;	/* nothing left in the domain */
	if ((rc = spool_envelope_in(sp, txn, id, &e)) != 0)
		return rc;
	*oldest = e.arrival;
	spool_envelope_free(&e);
	return 0;
}

static int
spool_del_body(struct spool *sp, MDB_txn *txn, uint64_t id)
{
	unsigned char key[12] = { 0 };
	MDB_cursor *cur;
	MDB_val k = { sizeof(key), key }, v;
	int rc;

	spool_be64(key, id);
	if ((rc = mdb_cursor_open(txn, sp->body, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 12 || memcmp(k.mv_data, key, 8) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* spool_del_rcpts - queue entries of pending recipients, and their counters */
static int
spool_del_rcpts(struct spool *sp, MDB_txn *txn, const struct spool_envelope *e)
{
	unsigned char key[SPOOL_QKEY_MAX];
	int rc;

	for (size_t i = 0; i < e->nrcpts; i++) {
		MDB_val k;

		if (e->rcpts[i].done)
			continue;
		k.mv_size = spool_qkey(key, spool_rcpt_domain(e->rcpts[i].addr), e->id, (unsigned)i);
		k.mv_data = key;
		if ((rc = mdb_del(txn, sp->queue, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	for (size_t i = 0; i < e->nrcpts; i++)
		if (!e->rcpts[i].done && first_of_domain(e, i, 1) && (rc = counters_adjust(sp, txn,
		    spool_rcpt_domain(e->rcpts[i].addr), e, -1)) != 0)
			return rc;
	return 0;
}

enum spool_err
spool_delete_message(struct spool *sp, uint64_t id)
{
	struct spool_change ch = { .kind = CHANGE_DELETE, .id = id };
	const struct spool_change *list = &ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

/* spool_delete_in - CHANGE_DELETE inside txn: the message, its body and
 * every queue entry, with the counters of each domain */
static int
spool_delete_in(struct spool *sp, MDB_txn *txn, uint64_t id)
{
	struct spool_envelope e;
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey };
	int rc;

	if ((rc = spool_envelope_in(sp, txn, id, &e)) != 0)
		return rc;
	spool_be64(idkey, id);
	/* a quarantined message has no queue entries and counts nowhere */
	if ((rc = spool_quarantine_get(sp, txn, id, NULL)) == 0)
		rc = spool_quarantine_del(sp, txn, id);
	else if (rc == MDB_NOTFOUND)
		rc = spool_del_rcpts(sp, txn, &e);
	if (rc == 0 && (rc = spool_del_body(sp, txn, id)) == 0)
		rc = mdb_del(txn, sp->msg, &k, NULL);
	spool_envelope_free(&e);
	return rc;
}

/* spool_domain_settled - after rcpt i of e is done: if no recipient of its
 * domain is pending any more, the domain's counters let go of the message */
static int
spool_domain_settled(struct spool *sp, MDB_txn *txn, const struct spool_envelope *e, size_t i)
{
	const char *d = spool_rcpt_domain(e->rcpts[i].addr);

	for (size_t j = 0; j < e->nrcpts; j++)
		if (!e->rcpts[j].done && strcmp(spool_rcpt_domain(e->rcpts[j].addr), d) == 0)
			return 0;
	return counters_adjust(sp, txn, d, e, -1);
}

/* spool_put_envelope - rewrite e after recipients changed */
static int
spool_put_envelope(struct spool *sp, MDB_txn *txn, const struct spool_envelope *e)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	struct buf b;
	int rc;

	spool_be64(idkey, e->id);
	buf_init(&b);
	if (spool_envelope_encode(e, &b) == -1) {
		buf_free(&b);
		return ENOMEM;
	}
	v.mv_size = buf_used(&b);
	v.mv_data = buf_head(&b);
	rc = mdb_put(txn, sp->msg, &k, &v, 0);
	buf_free(&b);
	return rc;
}

/* spool_finish - mark recipients done, drop their queue entries and counters,
 * and the whole message once no recipient is left */
static int
spool_finish(struct spool *sp, MDB_txn *txn, struct spool_envelope *e, const unsigned *idx, size_t n,
    int *removed)
{
	unsigned char key[SPOOL_QKEY_MAX], idkey[8];
	MDB_val k;
	int rc, left = 0;

	for (size_t j = 0; j < n; j++) {
		size_t i = idx[j];

		if (i >= e->nrcpts || e->rcpts[i].done)
			continue;
		k.mv_size = spool_qkey(key, spool_rcpt_domain(e->rcpts[i].addr), e->id, (unsigned)i);
		k.mv_data = key;
		if ((rc = mdb_del(txn, sp->queue, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
			return rc;
		e->rcpts[i].done = 1;
		if ((rc = spool_domain_settled(sp, txn, e, i)) != 0)
			return rc;
	}
	for (size_t i = 0; i < e->nrcpts; i++)
		left += !e->rcpts[i].done;
	if (left > 0)
		return spool_put_envelope(sp, txn, e);
	spool_be64(idkey, e->id);
	k.mv_size = sizeof(idkey);
	k.mv_data = idkey;
	if ((rc = spool_del_body(sp, txn, e->id)) != 0)
		return rc;
	if ((rc = mdb_del(txn, sp->msg, &k, NULL)) == 0 && removed != NULL)
		*removed = 1;
	return rc;
}

/* spool_done_in - CHANGE_DONE inside txn */
static int
spool_done_in(struct spool *sp, MDB_txn *txn, uint64_t id, const unsigned *idx, size_t n,
    int *removed)
{
	struct spool_envelope e;
	int rc;

	/* a quarantined message is in no run: it is released or deleted,
	 * never bounced (no DSN for spam) */
	if ((rc = spool_quarantine_get(sp, txn, id, NULL)) != MDB_NOTFOUND)
		return rc == 0 ? MDB_NOTFOUND : rc;
	if ((rc = spool_envelope_in(sp, txn, id, &e)) != 0)
		return rc;
	rc = spool_finish(sp, txn, &e, idx, n, removed);
	spool_envelope_free(&e);
	return rc;
}

static int spool_dsn_in(struct spool *, MDB_txn *, struct spool_newmsg *);

/* spool_qentry_update - read, change (with fn) and write back one queue
 * entry inside txn */
static int
spool_qentry_update(struct spool *sp, MDB_txn *txn, const char *domain, uint64_t id,
    unsigned index, void (*fn)(struct spool_qentry *, const struct spool_change *),
    const struct spool_change *ch)
{
	unsigned char key[SPOOL_QKEY_MAX];
	struct spool_qentry q;
	MDB_val k, v;
	struct buf b;
	int rc;

	if (strlen(domain) > SPOOL_DOMAIN_MAX)
		return MDB_NOTFOUND;
	k.mv_size = spool_qkey(key, domain, id, index);
	k.mv_data = key;
	if ((rc = mdb_get(txn, sp->queue, &k, &v)) != 0)
		return rc;
	if (spool_qentry_decode(v.mv_data, v.mv_size, &q) == -1)
		return SPOOL_RC_BADRECORD;
	fn(&q, ch);	/* may point last_reply at the change's (borrowed) */
	buf_init(&b);
	rc = spool_qentry_encode(&q, &b) == -1 ? ENOMEM : 0;
	v.mv_size = buf_used(&b);
	v.mv_data = buf_head(&b);
	if (rc == 0)
		rc = mdb_put(txn, sp->queue, &k, &v, 0);
	buf_free(&b);
	spool_qentry_free(&q);
	return rc;
}

static void
defer_entry(struct spool_qentry *q, const struct spool_change *ch)
{
	q->last_reply = ch->reply;
	q->attempts++;
	q->next_try = ch->next_try;
}

static void
warn_entry(struct spool_qentry *q, const struct spool_change *ch)
{
	q->flags |= QENTRY_WARNED;
}

/* spool_defer_in - CHANGE_DEFER inside txn */
static int
spool_defer_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	return spool_qentry_update(sp, txn, ch->domain, ch->id, ch->index, defer_entry, ch);
}

/* spool_warn_in - CHANGE_WARN inside txn: the recipients are marked and
 * their delay notice stored together */
static int
spool_warn_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	int rc = 0;

	for (size_t i = 0; i < ch->nidx && rc == 0; i++)
		rc = spool_qentry_update(sp, txn, ch->domain, ch->id, ch->idx[i], warn_entry, ch);
	if (rc == 0 && ch->dsn != NULL)
		rc = spool_dsn_in(sp, txn, ch->dsn);
	return rc;
}

/* spool_dsn_in - store a notification inside txn */
static int
spool_dsn_in(struct spool *sp, MDB_txn *txn, struct spool_newmsg *m)
{
	struct buf b;
	int rc;

	buf_init(&b);
	rc = spool_put_one(sp, txn, m, &b);
	buf_free(&b);
	if (rc == -1)
		return EIO;
	return rc != 0 ? rc : spool_put_next_id(sp, txn, m->env.id + 1);
}

/* spool_route_in - CHANGE_ROUTE inside txn: a failure counts up, a good
 * session (reply "") starts the count again */
static int
spool_route_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	struct spool_route rt = { 0 };
	MDB_val k = spool_val(ch->domain, strlen(ch->domain)), v;
	struct buf b;
	int rc;

	if (k.mv_size == 0 || k.mv_size > SPOOL_DOMAIN_MAX || !sp->have_route)
		return MDB_NOTFOUND;
	if ((rc = mdb_get(txn, sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, &rt) == -1)
		return SPOOL_RC_BADRECORD;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	rt.last_error = ch->reply;
	rt.failures = ch->reply[0] != '\0' ? rt.failures + 1 : 0;
	rt.last_attempt = (int64_t)time(NULL);
	rt.next_try = ch->next_try;
	buf_init(&b);
	rc = spool_route_encode(&rt, &b) == -1 ? ENOMEM : 0;
	v.mv_size = buf_used(&b);
	v.mv_data = buf_head(&b);
	if (rc == 0)
		rc = mdb_put(txn, sp->route, &k, &v, 0);
	buf_free(&b);
	spool_route_free(&rt);
	return rc;
}

/* spool_hold_in - CHANGE_HOLD inside txn: the domain's ROUTE_HELD flag */
static int
spool_hold_in(struct spool *sp, MDB_txn *txn, const char *domain, int held)
{
	struct spool_route rt = { 0 };
	MDB_val k = spool_val(domain, strlen(domain)), v;
	struct buf b;
	int rc;

	if (!sp->have_route || k.mv_size == 0 || k.mv_size > SPOOL_DOMAIN_MAX)
		return MDB_NOTFOUND;
	if ((rc = mdb_get(txn, sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, &rt) == -1)
		return SPOOL_RC_BADRECORD;
	if (rc == MDB_NOTFOUND) {
		rt.last_error = "";
		rc = 0;
	}
	rt.flags = held ? rt.flags | ROUTE_HELD : rt.flags & ~ROUTE_HELD;
	buf_init(&b);
	if (rc == 0 && (rc = spool_route_encode(&rt, &b) == -1 ? ENOMEM : 0) == 0) {
		v.mv_size = buf_used(&b);
		v.mv_data = buf_head(&b);
		rc = mdb_put(txn, sp->route, &k, &v, 0);
	}
	buf_free(&b);
	spool_route_free(&rt);
	return rc;
}

/* spool_release_in - CHANGE_RELEASE: a quarantined message's pending
 * recipients are queued (and counted) as at arrival */
static int
spool_release_in(struct spool *sp, MDB_txn *txn, uint64_t id)
{
	struct spool_newmsg m = { 0 };
	struct buf b;
	int rc;

	if ((rc = spool_quarantine_get(sp, txn, id, NULL)) != 0 ||
	    (rc = spool_envelope_in(sp, txn, id, &m.env)) != 0)
		return rc;
	/* The postmaster has judged it: no second look that would hold it
	 * again, and its age (max-age, delay notices) counts from now, or a
	 * message kept longer than max-age would bounce at once */
	m.env.flags &= ~(unsigned)ENV_UNSCANNED;
	m.env.arrival = time(NULL);
	buf_init(&b);
	if ((rc = spool_quarantine_del(sp, txn, id)) == 0 &&
	    (rc = spool_put_envelope(sp, txn, &m.env)) == 0)
		rc = spool_put_queue(sp, txn, &m, &b);
	buf_free(&b);
	spool_envelope_free(&m.env);
	return rc;
}

/* spool_quarantine_in - CHANGE_QUARANTINE: a queued message leaves the
 * queue for the quarantine (a rescan refused it) */
static int
spool_quarantine_in(struct spool *sp, MDB_txn *txn, uint64_t id, const char *reason)
{
	struct spool_envelope e;
	int rc;

	if ((rc = spool_quarantine_get(sp, txn, id, NULL)) != MDB_NOTFOUND)
		return rc == 0 ? 0 : rc;	/* already there */
	if ((rc = spool_envelope_in(sp, txn, id, &e)) != 0)
		return rc;
	e.flags &= ~(unsigned)ENV_UNSCANNED;
	if ((rc = spool_del_rcpts(sp, txn, &e)) == 0 && (rc = spool_put_envelope(sp, txn, &e)) == 0)
		rc = spool_quarantine_put(sp, txn, id, (int64_t)time(NULL), reason ? reason : "");
	spool_envelope_free(&e);
	return rc;
}

/* spool_scanned_in - CHANGE_SCANNED: the filters passed a message stored
 * unscanned */
static int
spool_scanned_in(struct spool *sp, MDB_txn *txn, uint64_t id)
{
	struct spool_envelope e;
	int rc;

	if ((rc = spool_envelope_in(sp, txn, id, &e)) != 0)
		return rc;
	if (e.flags & ENV_UNSCANNED) {
		e.flags &= ~(unsigned)ENV_UNSCANNED;
		rc = spool_put_envelope(sp, txn, &e);
	}
	spool_envelope_free(&e);
	return rc;
}

/* spool_verify_in - CHANGE_VERIFY: the result for address ch->domain
 * (lower case) replaces any older one */
static int
spool_verify_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	MDB_val k = spool_val(ch->domain, strlen(ch->domain)), v;
	struct buf b;
	int rc;

	if (!sp->have_verify || ch->verify == NULL || k.mv_size == 0 ||
	    k.mv_size > SPOOL_VERIFY_KEY_MAX)
		return MDB_NOTFOUND;
	buf_init(&b);
	if ((rc = spool_verify_encode(ch->verify, &b) == -1 ? ENOMEM : 0) == 0) {
		v.mv_size = buf_used(&b);
		v.mv_data = buf_head(&b);
		rc = mdb_put(txn, sp->verify, &k, &v, 0);
	}
	buf_free(&b);
	return rc;
}

/* spool_unverify_in - CHANGE_UNVERIFY: address ch->domain's result goes */
static int
spool_unverify_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	MDB_val k = spool_val(ch->domain, strlen(ch->domain));

	if (!sp->have_verify || k.mv_size == 0 || k.mv_size > SPOOL_VERIFY_KEY_MAX)
		return MDB_NOTFOUND;
	return mdb_del(txn, sp->verify, &k, NULL);
}

/* spool_verify_sweep_in - CHANGE_VERIFY_SWEEP: up to SPOOL_VERIFY_SWEEP_MAX
 * entries that expired before ch->next_try go (one that does not decode
 * goes too: it would never be used) */
static int
spool_verify_sweep_in(struct spool *sp, MDB_txn *txn, const struct spool_change *ch)
{
	struct spool_verify vr;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned n = 0;
	int rc, stale;

	if (!sp->have_verify)
		return 0;
	if ((rc = mdb_cursor_open(txn, sp->verify, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < SPOOL_VERIFY_SWEEP_MAX;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		stale = spool_verify_decode(v.mv_data, v.mv_size, &vr) == -1 ||
		    vr.expires < ch->next_try;
		spool_verify_free(&vr);
		if (stale && (rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		n += stale;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One change in a nested transaction of its own. */
struct change_one {
	struct spool			*sp;
	const struct spool_change	*ch;
};

static int
change_in(MDB_txn *txn, void *arg)
{
	struct change_one *a = arg;
	struct spool *sp = a->sp;
	const struct spool_change *ch = a->ch;
	int rc;

	if (ch->removed != NULL)
		*ch->removed = 0;	/* a retried batch starts over */
	switch (ch->kind) {
	case CHANGE_DONE:
		rc = spool_done_in(sp, txn, ch->id, ch->idx, ch->nidx, ch->removed);
		return rc == 0 && ch->dsn != NULL ? spool_dsn_in(sp, txn, ch->dsn) : rc;
	case CHANGE_DEFER:
		return spool_defer_in(sp, txn, ch);
	case CHANGE_ROUTE:
		return spool_route_in(sp, txn, ch);
	case CHANGE_WARN:
		return spool_warn_in(sp, txn, ch);
	case CHANGE_DELETE:
		if (ch->if_quarantined && (rc = spool_quarantine_get(sp, txn, ch->id, NULL)) != 0)
			return rc;
		if ((rc = spool_delete_in(sp, txn, ch->id)) == 0 && ch->removed != NULL)
			*ch->removed = 1;
		return rc;
	case CHANGE_HOLD:
		return spool_hold_in(sp, txn, ch->domain, ch->held);
	case CHANGE_RELEASE:
		return spool_release_in(sp, txn, ch->id);
	case CHANGE_QUARANTINE:
		return spool_quarantine_in(sp, txn, ch->id, ch->reply);
	case CHANGE_SCANNED:
		return spool_scanned_in(sp, txn, ch->id);
	case CHANGE_VERIFY:
		return spool_verify_in(sp, txn, ch);
	case CHANGE_VERIFY_SWEEP:
		return spool_verify_sweep_in(sp, txn, ch);
	case CHANGE_UNVERIFY:
		return spool_unverify_in(sp, txn, ch);
	}
	return EINVAL;
}

/* A batch of changes; todo[i] while change i still has to be applied. */
struct change_batch {
	struct spool			*sp;
	const struct spool_change	*const *changes;
	size_t				 n;
	enum spool_err			*results;
	unsigned char			*todo;
};

/* change_batch_in - the changes still to do in txn, each nested so one
 * that fails (SPOOL_ENOTFOUND: the message was deleted meanwhile) fails
 * alone; one that does not fit asks for a bigger map unless at_limit */
static int
change_batch_in(MDB_txn *txn, int at_limit, void *arg)
{
	struct change_batch *a = arg;
	int full = 0;

	for (size_t i = 0; i < a->n; i++) {
		struct change_one one = { a->sp, a->changes[i] };
		int rc;

		if (!a->todo[i])
			continue;
		rc = spool_env_nested(txn, change_in, &one);
		full |= rc == MDB_MAP_FULL;
		a->results[i] = spool_err_of(rc);
	}
	return full && !at_limit ? MDB_MAP_FULL : 0;
}

/* spool_apply_changes - at max-spool-size what fits is committed and the
 * rest tried again while that makes progress, since pages freed by
 * committed deletions can be reused only by the next transaction */
enum spool_err
spool_apply_changes(struct spool *sp, const struct spool_change *const *changes, size_t n,
    enum spool_err *results)
{
	struct change_batch a = { sp, changes, n, results, malloc(n ? n : 1) };
	enum spool_err all = SPOOL_OK;
	size_t left = n, before;
	int rc = ENOMEM;

	if (a.todo != NULL)
		memset(a.todo, 1, n);
	while (a.todo != NULL && left > 0) {
		if ((rc = spool_env_write(sp->env, change_batch_in, &a)) != 0)
			break;
		before = left;
		left = 0;
		for (size_t i = 0; i < n; i++) {
			a.todo[i] = a.todo[i] && results[i] == SPOOL_EFULL;
			left += a.todo[i];
		}
		if (left == before)
			break;		/* at the limit and nothing more fits */
	}
	for (size_t i = 0; rc != 0 && i < n; i++)
		if (a.todo == NULL || a.todo[i])
			results[i] = spool_err_of(rc);
	free(a.todo);
	for (size_t i = 0; i < n; i++)
		if (results[i] != SPOOL_OK)
			all = results[i];
	return all;
}

enum spool_err
spool_release_message(struct spool *sp, uint64_t id)
{
	struct spool_change ch = { .kind = CHANGE_RELEASE, .id = id };
	const struct spool_change *list = &ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

enum spool_err
spool_set_hold(struct spool *sp, const char *domain, int held)
{
	struct spool_change ch = { .kind = CHANGE_HOLD, .domain = domain, .held = held };
	const struct spool_change *list = &ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

enum spool_err
spool_unverify(struct spool *sp, const char *addr)
{
	struct spool_change ch = { .kind = CHANGE_UNVERIFY, .domain = addr };
	const struct spool_change *list = &ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

struct read_verify {
	struct spool		*sp;
	const char		*addr;
	struct spool_verify	*vr;
};

static int
read_verify(MDB_txn *txn, void *arg)
{
	struct read_verify *a = arg;
	MDB_val k = spool_val(a->addr, strlen(a->addr)), v;
	int rc;

	if ((rc = mdb_get(txn, a->sp->verify, &k, &v)) == 0 &&
	    spool_verify_decode(v.mv_data, v.mv_size, a->vr) == -1)
		rc = SPOOL_RC_BADRECORD;
	return rc;
}

enum spool_err
spool_get_verify(struct spool *sp, const char *addr, struct spool_verify *vr)
{
	struct read_verify a = { sp, addr, vr };
	size_t len = strlen(addr);

	memset(vr, 0, sizeof(*vr));
	if (!sp->have_verify || len == 0 || len > SPOOL_VERIFY_KEY_MAX)
		return SPOOL_ENOTFOUND;
	return spool_err_of(spool_env_read(sp->env, read_verify, &a));
}

/* A statistics read: the databases' entries and LMDB's usage figures. */
