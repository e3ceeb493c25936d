/*
 * spool.c - the LMDB spool; see spool.h for the contract.
 *
 * The only file that includes <lmdb.h>.  Functions return LMDB rc values
 * internally and translate them at the API boundary (spool_err_of).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <lmdb.h>

#include "log.h"
#include "spool.h"

#define SPOOL_INITIAL_MAP	(64ULL * 1024 * 1024)
#define SPOOL_SCHEMA		1

struct spool {
	MDB_env			*env;
	MDB_dbi			 msg, body, queue, domain, meta, route;
	int			 have_route;	/* a read-only open of an older spool may lack it */
	uint64_t		 max_size;
	int			 rdonly;
	char			*dir;
	/* Held shared by every transaction of this process and exclusively to
	 * resize the map: LMDB allows mdb_env_set_mapsize() only when this
	 * process has no transaction open. */
	pthread_rwlock_t	 resize_lock;
};

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

static enum spool_err
spool_err_of(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:	return SPOOL_OK;
	case MDB_NOTFOUND:	return SPOOL_ENOTFOUND;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:		return SPOOL_EFULL;
	default:		return SPOOL_EIO;
	}
}

/* spool_txn_begin - a transaction with the resize lock held shared; adopts a
 * map another process has grown (MDB_MAP_RESIZED) */
static int
spool_txn_begin(struct spool *sp, MDB_txn *parent, unsigned flags, MDB_txn **txn)
{
	int rc, tries = 0;

	if (parent != NULL)
		return mdb_txn_begin(sp->env, parent, flags, txn);
	for (;;) {
		pthread_rwlock_rdlock(&sp->resize_lock);
		rc = mdb_txn_begin(sp->env, NULL, flags, txn);
		if (rc != MDB_MAP_RESIZED || ++tries > 3)
			break;
		pthread_rwlock_unlock(&sp->resize_lock);
		pthread_rwlock_wrlock(&sp->resize_lock);
		rc = mdb_env_set_mapsize(sp->env, 0);
		pthread_rwlock_unlock(&sp->resize_lock);
		if (rc != 0)
			return rc;
	}
	if (rc != 0)
		pthread_rwlock_unlock(&sp->resize_lock);
	return rc;
}

static void
spool_txn_abort(struct spool *sp, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&sp->resize_lock);
}

static int
spool_txn_commit(struct spool *sp, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);	/* frees txn on failure too */

	pthread_rwlock_unlock(&sp->resize_lock);
	return rc;
}

/* spool_grow - double the map up to max_size; SPOOL_EFULL at the cap */
static enum spool_err
spool_grow(struct spool *sp)
{
	MDB_envinfo info;
	uint64_t size;
	int rc;

	pthread_rwlock_wrlock(&sp->resize_lock);
	mdb_env_info(sp->env, &info);
	if ((uint64_t)info.me_mapsize >= sp->max_size) {
		pthread_rwlock_unlock(&sp->resize_lock);
		return SPOOL_EFULL;
	}
	size = (uint64_t)info.me_mapsize * 2;
	if (size > sp->max_size)
		size = sp->max_size;
	rc = mdb_env_set_mapsize(sp->env, (size_t)size);
	pthread_rwlock_unlock(&sp->resize_lock);
	if (rc != 0) {
		log_warnx("spool: cannot grow the map to %llu bytes: %s", (unsigned long long)size,
		    mdb_strerror(rc));
		return SPOOL_EIO;
	}
	log_info("spool: map grown to %llu bytes (max-spool-size %llu)", (unsigned long long)size,
	    (unsigned long long)sp->max_size);
	return SPOOL_OK;
}

/* spool_grow_possible - the map is below max-spool-size */
static int
spool_grow_possible(struct spool *sp)
{
	MDB_envinfo info;

	mdb_env_info(sp->env, &info);
	return (uint64_t)info.me_mapsize < sp->max_size;
}

/* spool_check_schema - refuse a spool written by a newer spoold */
static int
spool_check_schema(struct spool *sp, MDB_txn *txn)
{
	MDB_val k = { 7, "version" }, v;
	unsigned char ver[4] = { 0, 0, 0, SPOOL_SCHEMA };
	int rc = mdb_get(txn, sp->meta, &k, &v);

	if (rc == MDB_NOTFOUND && !sp->rdonly) {
		v.mv_size = sizeof(ver);
		v.mv_data = ver;
		return mdb_put(txn, sp->meta, &k, &v, 0);
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 4 || memcmp(v.mv_data, ver, 4) != 0)
		return MDB_INCOMPATIBLE;
	return 0;
}

static int
spool_open_dbs(struct spool *sp)
{
	unsigned flags = sp->rdonly ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, sp->rdonly ? MDB_RDONLY : 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, "msg", flags, &sp->msg)) != 0 ||
	    (rc = mdb_dbi_open(txn, "body", flags, &sp->body)) != 0 ||
	    (rc = mdb_dbi_open(txn, "queue", flags, &sp->queue)) != 0 ||
	    (rc = mdb_dbi_open(txn, "domain", flags, &sp->domain)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", flags, &sp->meta)) != 0 ||
	    (rc = spool_check_schema(sp, txn)) != 0) {
		spool_txn_abort(sp, txn);
		return rc;
	}
	/* added after the first spools were written: open or create it, and a
	 * read-only open of a spool without it just has no route records */
	if ((rc = mdb_dbi_open(txn, "route", flags, &sp->route)) == 0)
		sp->have_route = 1;
	else if (rc != MDB_NOTFOUND) {
		spool_txn_abort(sp, txn);
		return rc;
	}
	return spool_txn_commit(sp, txn);
}

enum spool_err
spool_open(struct spool **out, const char *dir, uint64_t max_size, int flags, char *err,
    size_t errlen)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	MDB_envinfo info;
	int rc, dead = 0;

	*out = NULL;
	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return SPOOL_EIO;
	}
	sp->max_size = max_size;
	sp->rdonly = (flags & SPOOL_RDONLY) != 0;
	if ((sp->dir = strdup(dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(sp);
		return SPOOL_EIO;
	}
	pthread_rwlock_init(&sp->resize_lock, NULL);
	if ((rc = mdb_env_create(&sp->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(sp->env, 8)) != 0 ||
	    (rc = mdb_env_open(sp->env, dir, MDB_NOTLS | (sp->rdonly ? MDB_RDONLY : 0), 0600)) != 0) {
		snprintf(err, errlen, "cannot open spool in %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	mdb_env_info(sp->env, &info);
	if (!sp->rdonly && (uint64_t)info.me_mapsize < SPOOL_INITIAL_MAP) {
		uint64_t size = max_size < SPOOL_INITIAL_MAP ? max_size : SPOOL_INITIAL_MAP;

		if (size > (uint64_t)info.me_mapsize && (rc = mdb_env_set_mapsize(sp->env, (size_t)size)) != 0) {
			snprintf(err, errlen, "cannot size the spool map: %s", mdb_strerror(rc));
			goto fail;
		}
	}
	/* Reader slots of a process killed with -9 would pin old pages. */
	(void)mdb_reader_check(sp->env, &dead);
	if (dead > 0)
		log_info("spool: cleared %d stale reader slot%s", dead, dead == 1 ? "" : "s");
	if ((rc = spool_open_dbs(sp)) != 0) {
		snprintf(err, errlen, "cannot open spool databases in %s: %s", dir,
		    rc == MDB_INCOMPATIBLE ? "written by a newer spoold (unknown schema version)" :
		    mdb_strerror(rc));
		mdb_env_close(sp->env);
		sp->env = NULL;
		spool_close(sp);
		return rc == MDB_INCOMPATIBLE ? SPOOL_EFORMAT : rc == MDB_NOTFOUND ? SPOOL_ENOTFOUND : SPOOL_EIO;
	}
	*out = sp;
	return SPOOL_OK;
fail:
	spool_close(sp);
	return spool_err_of(rc) == SPOOL_EFULL ? SPOOL_EFULL : SPOOL_EIO;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->env)
		mdb_env_close(sp->env);
	pthread_rwlock_destroy(&sp->resize_lock);
	free(sp->dir);
	free(sp);
}

static int
spool_get_next_id(struct spool *sp, MDB_txn *txn, uint64_t *id)
{
	MDB_val k = { 7, "next_id" }, v;
	int rc = mdb_get(txn, sp->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		*id = 1;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*id = spool_get_be64(v.mv_data);
	return 0;
}

enum spool_err
spool_next_id(struct spool *sp, uint64_t *id)
{
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	rc = spool_get_next_id(sp, txn, id);
	spool_txn_abort(sp, txn);
	return spool_err_of(rc);
}

/* ---- counters ---- */

static int
spool_counters_get(struct spool *sp, MDB_txn *txn, const char *domain, struct spool_counters *c)
{
	MDB_val k = { strlen(domain), (void *)domain }, v;
	int rc = mdb_get(txn, sp->domain, &k, &v);

	memset(c, 0, sizeof(*c));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	return spool_counters_decode(v.mv_data, v.mv_size, c) == 0 ? 0 : MDB_CORRUPTED;
}

static int
spool_counters_put(struct spool *sp, MDB_txn *txn, const char *domain, const struct spool_counters *c)
{
	unsigned char enc[SPOOL_COUNTERS_LEN];
	MDB_val k = { strlen(domain), (void *)domain }, v = { sizeof(enc), enc };

	if (c->messages == 0) {
		int rc = mdb_del(txn, sp->domain, &k, NULL);

		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	spool_counters_encode(c, enc);
	return mdb_put(txn, sp->domain, &k, &v, 0);
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
	unsigned char key[12];
	uint64_t off = 0;
	uint32_t chunk = 0;
	int rc;

	do {
		size_t len = m->env.size - off > SPOOL_CHUNK ? SPOOL_CHUNK : (size_t)(m->env.size - off);
		MDB_val k = { sizeof(key), key }, v = { len, NULL };

		spool_be64(key, m->env.id);
		key[8] = (unsigned char)(chunk >> 24);
		key[9] = (unsigned char)(chunk >> 16);
		key[10] = (unsigned char)(chunk >> 8);
		key[11] = (unsigned char)chunk;
		/* MDB_RESERVE: read the body straight into the page */
		if ((rc = mdb_put(txn, sp->body, &k, &v, MDB_RESERVE)) != 0)
			return rc;
		if (len > 0 && m->read_body(m->body_arg, off, v.mv_data, len) == -1)
			return -1;
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

		buf_clear(b);
		if (spool_qentry_encode(&q, b) == -1)
			return ENOMEM;
		v.mv_size = buf_used(b);
		v.mv_data = buf_head(b);
		if ((rc = mdb_put(txn, sp->queue, &k, &v, 0)) != 0)
			return rc;
	}
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		struct spool_counters c;
		const char *d = spool_rcpt_domain(m->env.rcpts[i].addr);

		if (!first_of_domain(&m->env, i, 0))
			continue;
		if ((rc = spool_counters_get(sp, txn, d, &c)) != 0)
			return rc;
		c.messages++;
		c.bytes += m->env.size;
		if (c.oldest == 0 || m->env.arrival < c.oldest)
			c.oldest = m->env.arrival;
		if ((rc = spool_counters_put(sp, txn, d, &c)) != 0)
			return rc;
	}
	return 0;
}

/* spool_put_one - one message in a nested transaction; -1: body unreadable */
static int
spool_put_one(struct spool *sp, MDB_txn *parent, struct spool_newmsg *m, struct buf *b)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, parent, 0, &txn)) != 0)
		return rc;
	spool_be64(idkey, m->env.id);
	buf_clear(b);
	if (spool_envelope_encode(&m->env, b) == -1) {
		rc = ENOMEM;
		goto abort;
	}
	v.mv_size = buf_used(b);
	v.mv_data = buf_head(b);
	if ((rc = mdb_put(txn, sp->msg, &k, &v, MDB_NOOVERWRITE)) != 0 ||
	    (rc = spool_put_body(sp, txn, m)) != 0 ||
	    (rc = spool_put_queue(sp, txn, m, b)) != 0)
		goto abort;
	return mdb_txn_commit(txn);
abort:
	mdb_txn_abort(txn);
	return rc;
}

static int
spool_put_next_id(struct spool *sp, MDB_txn *txn, uint64_t next)
{
	MDB_val k = { 7, "next_id" }, v;
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

/* spool_put_batch - one attempt; MDB_MAP_FULL asks the caller to grow, unless
 * tolerate_full, when a message that does not fit fails alone */
static int
spool_put_batch(struct spool *sp, struct spool_newmsg *const *msgs, size_t n,
    enum spool_err *results, int tolerate_full)
{
	MDB_txn *txn;
	uint64_t next = 0;
	struct buf b;
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, 0, &txn)) != 0)
		return rc;
	buf_init(&b);
	for (size_t i = 0; i < n; i++) {
		rc = spool_put_one(sp, txn, msgs[i], &b);
		if (rc == MDB_MAP_FULL && !tolerate_full) {
			buf_free(&b);
			spool_txn_abort(sp, txn);
			return rc;
		}
		results[i] = rc == -1 ? SPOOL_EBODY : spool_err_of(rc);
		if (rc == 0 && msgs[i]->env.id >= next)
			next = msgs[i]->env.id + 1;
	}
	buf_free(&b);
	if ((rc = spool_put_next_id(sp, txn, next)) != 0) {
		spool_txn_abort(sp, txn);
		return rc;
	}
	return spool_txn_commit(sp, txn);
}

/* spool_disk_full - a failed write found too little room on the file system.
 * LMDB turns a short pwritev on a full disk into EIO, so ENOSPC is told from
 * a real I/O error by looking at the free space: refusing with 452 4.3.1
 * lets senders retry once space is back. */
static int
spool_disk_full(struct spool *sp, struct spool_newmsg *const *msgs, size_t n)
{
	struct statvfs st;
	uint64_t want = 1024 * 1024;

	for (size_t i = 0; i < n; i++)
		want += msgs[i]->env.size * 2;
	if (statvfs(sp->dir, &st) == -1)
		return 0;
	return (uint64_t)st.f_bavail * st.f_frsize < want;
}

enum spool_err
spool_put_messages(struct spool *sp, struct spool_newmsg *const *msgs, size_t n,
    enum spool_err *results)
{
	int rc = MDB_MAP_FULL, at_max = 0;
	enum spool_err all = SPOOL_OK;

	for (int tries = 0; tries < 16 && rc == MDB_MAP_FULL; tries++) {
		for (size_t i = 0; i < n; i++)
			results[i] = SPOOL_EIO;
		rc = spool_put_batch(sp, msgs, n, results, at_max);
		if (rc == MDB_MAP_FULL) {
			enum spool_err g = spool_grow(sp);

			if (g == SPOOL_EFULL && at_max)
				break;
			if (g == SPOOL_EFULL)
				at_max = 1;
			else if (g != SPOOL_OK)
				break;
		}
	}
	if (rc != 0) {
		enum spool_err e = spool_disk_full(sp, msgs, n) ? SPOOL_EFULL : spool_err_of(rc);

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

/* ---- reading ---- */

static int
spool_env_get(struct spool *sp, MDB_txn *txn, uint64_t id, struct spool_envelope *e)
{
	unsigned char idkey[8];
	MDB_val k = { sizeof(idkey), idkey }, v;
	int rc;

	spool_be64(idkey, id);
	if ((rc = mdb_get(txn, sp->msg, &k, &v)) != 0)
		return rc;
	if (spool_envelope_decode(v.mv_data, v.mv_size, e) == -1)
		return MDB_INCOMPATIBLE;
	e->id = id;
	return 0;
}

static enum spool_err
spool_err_read(int rc)
{
	return rc == MDB_INCOMPATIBLE ? SPOOL_EFORMAT : spool_err_of(rc);
}

enum spool_err
spool_get_envelope(struct spool *sp, uint64_t id, struct spool_envelope *e)
{
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	rc = spool_env_get(sp, txn, id, e);
	spool_txn_abort(sp, txn);
	return spool_err_read(rc);
}

enum spool_err
spool_read_body(struct spool *sp, uint64_t id, uint64_t off, void *dst, size_t len)
{
	unsigned char key[12];
	MDB_txn *txn;
	int rc = 0;

	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	while (len > 0 && rc == 0) {
		uint64_t chunk = off / SPOOL_CHUNK, in = off % SPOOL_CHUNK;
		MDB_val k = { sizeof(key), key }, v;
		size_t n;

		spool_be64(key, id);
		key[8] = (unsigned char)(chunk >> 24);
		key[9] = (unsigned char)(chunk >> 16);
		key[10] = (unsigned char)(chunk >> 8);
		key[11] = (unsigned char)chunk;
		if ((rc = mdb_get(txn, sp->body, &k, &v)) != 0)
			break;
		if (in >= v.mv_size) {
			rc = MDB_CORRUPTED;
			break;
		}
		n = v.mv_size - in < len ? v.mv_size - (size_t)in : len;
		memcpy(dst, (char *)v.mv_data + in, n);
		dst = (char *)dst + n;
		off += n;
		len -= n;
	}
	spool_txn_abort(sp, txn);
	return spool_err_of(rc);
}

enum spool_err
spool_domain_counters(struct spool *sp, const char *domain, struct spool_counters *c)
{
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	rc = spool_counters_get(sp, txn, domain, c);
	spool_txn_abort(sp, txn);
	return spool_err_of(rc);
}

enum spool_err
spool_domain_list(struct spool *sp, int (*cb)(const struct spool_domain_info *, void *), void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	char name[256];
	int rc;

	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	if ((rc = mdb_cursor_open(txn, sp->domain, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct spool_domain_info di = { .domain = name };

		if (k.mv_size >= sizeof(name) || spool_counters_decode(v.mv_data, v.mv_size, &di.counters) == -1) {
			rc = MDB_INCOMPATIBLE;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (cb(&di, arg) != 0)
			break;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	spool_txn_abort(sp, txn);
	return spool_err_read(rc);
}

/* queue_range - k is the first key of domain's range in the queue db */
static void
queue_range(const char *domain, size_t dlen, unsigned char *start, MDB_val *k)
{
	memcpy(start, domain, dlen);
	start[dlen] = '\0';
	k->mv_size = dlen + 1;
	k->mv_data = start;
}

/* queue_key_of - 0 with the id and recipient index of k when k is still in
 * domain's range, -1 past it */
static int
queue_key_of(const MDB_val *k, const char *domain, size_t dlen, uint64_t *id, unsigned *index)
{
	const char *d;
	size_t len;

	if (spool_qkey_parse(k->mv_data, k->mv_size, &d, &len, id, index) == -1 ||
	    len != dlen || memcmp(d, domain, dlen) != 0)
		return -1;
	return 0;
}

/* walk_emit - hand one message's recipients in the domain to cb */
static int
walk_emit(struct spool *sp, MDB_txn *txn, uint64_t id, const unsigned *idx,
    struct spool_qentry *qs, size_t nidx, spool_walk_cb *cb, void *arg, int *stop)
{
	struct spool_envelope e;
	int rc;

	if ((rc = spool_env_get(sp, txn, id, &e)) == 0) {
		*stop = cb(&e, idx, qs, nidx, arg);
		spool_envelope_free(&e);
	}
	for (size_t i = 0; i < nidx; i++)
		spool_qentry_free(&qs[i]);
	return rc;
}

/* walk_grow - room for one more recipient in the per-message arrays */
static int
walk_grow(unsigned **idx, struct spool_qentry **qs, size_t nidx, size_t *cap)
{
	unsigned *ni;
	struct spool_qentry *nq;

	if (nidx < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 16;
	if ((ni = realloc(*idx, *cap * sizeof(*ni))) == NULL)
		return ENOMEM;
	*idx = ni;
	if ((nq = realloc(*qs, *cap * sizeof(*nq))) == NULL)
		return ENOMEM;
	*qs = nq;
	return 0;
}

enum spool_err
spool_domain_walk(struct spool *sp, const char *domain, spool_walk_cb *cb, void *arg)
{
	unsigned char start[SPOOL_QKEY_MAX];
	size_t dlen = strlen(domain), nidx = 0, cap = 0;
	unsigned *idx = NULL;
	struct spool_qentry *qs = NULL;
	uint64_t cur_id = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, stop = 0;

	if (dlen > SPOOL_DOMAIN_MAX)
		return SPOOL_ENOTFOUND;
	queue_range(domain, dlen, start, &k);
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	if ((rc = mdb_cursor_open(txn, sp->queue, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t id;
		unsigned index;

		if (queue_key_of(&k, domain, dlen, &id, &index) == -1)
			break;
		if (nidx > 0 && id != cur_id) {
			rc = walk_emit(sp, txn, cur_id, idx, qs, nidx, cb, arg, &stop);
			nidx = 0;
			if (rc != 0)
				break;
		}
		if ((rc = walk_grow(&idx, &qs, nidx, &cap)) != 0)
			break;
		if (spool_qentry_decode(v.mv_data, v.mv_size, &qs[nidx]) == -1) {
			rc = MDB_INCOMPATIBLE;
			break;
		}
		cur_id = id;
		idx[nidx++] = index;
	}
	if ((rc == 0 || rc == MDB_NOTFOUND) && nidx > 0 && !stop) {
		rc = walk_emit(sp, txn, cur_id, idx, qs, nidx, cb, arg, &stop);
		nidx = 0;
	}
	for (size_t i = 0; i < nidx; i++)
		spool_qentry_free(&qs[i]);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	free(idx);
	free(qs);
	spool_txn_abort(sp, txn);
	return spool_err_read(rc);
}

enum spool_err
spool_domain_ids(struct spool *sp, const char *domain, uint64_t **ids, size_t *n)
{
	unsigned char start[SPOOL_QKEY_MAX];
	size_t dlen = strlen(domain), cap = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*ids = NULL;
	*n = 0;
	if (dlen > SPOOL_DOMAIN_MAX)
		return SPOOL_OK;
	queue_range(domain, dlen, start, &k);
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	if ((rc = mdb_cursor_open(txn, sp->queue, &cur)) != 0)
		goto out;
	/* keys only: no record is decoded, so an ETRN for a big domain answers fast */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t id;
		unsigned index;

		if (queue_key_of(&k, domain, dlen, &id, &index) == -1)
			break;
		if (*n > 0 && (*ids)[*n - 1] == id)
			continue;	/* another recipient of the same message */
		if (*n == cap) {
			uint64_t *grown = realloc(*ids, (cap = cap ? cap * 2 : 256) * sizeof(*grown));

			if (grown == NULL) {
				rc = ENOMEM;
				break;
			}
			*ids = grown;
		}
		(*ids)[(*n)++] = id;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out:
	spool_txn_abort(sp, txn);
	if (rc != 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return spool_err_of(rc);
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

	queue_range(domain, dlen, start, &k);
	*oldest = 0;
	if ((rc = mdb_cursor_open(txn, sp->queue, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (queue_key_of(&k, domain, dlen, &id, &index) == -1)
		return 0;	/* nothing left in the domain */
	if ((rc = spool_env_get(sp, txn, id, &e)) != 0)
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
	for (size_t i = 0; i < e->nrcpts; i++) {
		const char *d = spool_rcpt_domain(e->rcpts[i].addr);
		struct spool_counters c;

		if (e->rcpts[i].done || !first_of_domain(e, i, 1))
			continue;
		if ((rc = spool_counters_get(sp, txn, d, &c)) != 0)
			return rc;
		c.messages = c.messages > 0 ? c.messages - 1 : 0;
		c.bytes = c.bytes > e->size ? c.bytes - e->size : 0;
		if ((rc = spool_oldest(sp, txn, d, &c.oldest)) != 0 ||
		    (rc = spool_counters_put(sp, txn, d, &c)) != 0)
			return rc;
	}
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

	if ((rc = spool_env_get(sp, txn, id, &e)) != 0)
		return rc;
	spool_be64(idkey, id);
	if ((rc = spool_del_rcpts(sp, txn, &e)) == 0 && (rc = spool_del_body(sp, txn, id)) == 0)
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
	struct spool_counters c;
	int rc;

	for (size_t j = 0; j < e->nrcpts; j++)
		if (!e->rcpts[j].done && strcmp(spool_rcpt_domain(e->rcpts[j].addr), d) == 0)
			return 0;
	if ((rc = spool_counters_get(sp, txn, d, &c)) != 0)
		return rc;
	c.messages = c.messages > 0 ? c.messages - 1 : 0;
	c.bytes = c.bytes > e->size ? c.bytes - e->size : 0;
	if ((rc = spool_oldest(sp, txn, d, &c.oldest)) != 0)
		return rc;
	return spool_counters_put(sp, txn, d, &c);
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
spool_finish(struct spool *sp, MDB_txn *txn, struct spool_envelope *e, const unsigned *idx, size_t n)
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
	return mdb_del(txn, sp->msg, &k, NULL);
}

/* spool_done_in - CHANGE_DONE inside txn */
static int
spool_done_in(struct spool *sp, MDB_txn *txn, uint64_t id, const unsigned *idx, size_t n)
{
	struct spool_envelope e;
	int rc;

	if ((rc = spool_env_get(sp, txn, id, &e)) != 0)
		return rc;
	rc = spool_finish(sp, txn, &e, idx, n);
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
	char *old;
	int rc;

	if (strlen(domain) > SPOOL_DOMAIN_MAX)
		return MDB_NOTFOUND;
	k.mv_size = spool_qkey(key, domain, id, index);
	k.mv_data = key;
	if ((rc = mdb_get(txn, sp->queue, &k, &v)) != 0)
		return rc;
	if (spool_qentry_decode(v.mv_data, v.mv_size, &q) == -1)
		return MDB_INCOMPATIBLE;
	old = q.last_reply;
	fn(&q, ch);
	buf_init(&b);
	rc = spool_qentry_encode(&q, &b) == -1 ? ENOMEM : 0;
	v.mv_size = buf_used(&b);
	v.mv_data = buf_head(&b);
	if (rc == 0)
		rc = mdb_put(txn, sp->queue, &k, &v, 0);
	buf_free(&b);
	free(old);
	return rc;
}

static void
defer_entry(struct spool_qentry *q, const struct spool_change *ch)
{
	q->last_reply = (char *)ch->reply;
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
	MDB_val k = { strlen(ch->domain), (void *)ch->domain }, v;
	struct buf b;
	int rc;

	if (k.mv_size == 0 || k.mv_size > SPOOL_DOMAIN_MAX || !sp->have_route)
		return MDB_NOTFOUND;
	if ((rc = mdb_get(txn, sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, &rt) == -1)
		return MDB_INCOMPATIBLE;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	free(rt.last_error);
	rt.last_error = (char *)ch->reply;
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
	return rc;
}

/* spool_hold_in - CHANGE_HOLD inside txn: the domain's ROUTE_HELD flag */
static int
spool_hold_in(struct spool *sp, MDB_txn *txn, const char *domain, int held)
{
	struct spool_route rt = { 0 };
	MDB_val k = { strlen(domain), (void *)domain }, v;
	struct buf b;
	int rc;

	if (!sp->have_route || k.mv_size == 0 || k.mv_size > SPOOL_DOMAIN_MAX)
		return MDB_NOTFOUND;
	if ((rc = mdb_get(txn, sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, &rt) == -1)
		return MDB_INCOMPATIBLE;
	if (rc == MDB_NOTFOUND) {
		rt.last_error = strdup("");
		rc = rt.last_error == NULL ? ENOMEM : 0;
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

static int
spool_change_in(struct spool *sp, MDB_txn *parent, const struct spool_change *ch)
{
	MDB_txn *txn;
	int rc;

	if ((rc = spool_txn_begin(sp, parent, 0, &txn)) != 0)
		return rc;
	if (ch->kind == CHANGE_DONE) {
		rc = spool_done_in(sp, txn, ch->id, ch->idx, ch->nidx);
		if (rc == 0 && ch->dsn != NULL)
			rc = spool_dsn_in(sp, txn, ch->dsn);
	} else if (ch->kind == CHANGE_ROUTE)
		rc = spool_route_in(sp, txn, ch);
	else if (ch->kind == CHANGE_DELETE)
		rc = spool_delete_in(sp, txn, ch->id);
	else if (ch->kind == CHANGE_HOLD)
		rc = spool_hold_in(sp, txn, ch->domain, ch->held);
	else if (ch->kind == CHANGE_WARN)
		rc = spool_warn_in(sp, txn, ch);
	else
		rc = spool_defer_in(sp, txn, ch);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* spool_apply_round - one transaction over the changes still to do; sets
 * *full when one did not fit.  Returns the commit's rc (or the abort's). */
static int
spool_apply_round(struct spool *sp, const struct spool_change *const *changes, size_t n,
    enum spool_err *results, unsigned char *todo, int *full)
{
	MDB_txn *txn;
	int rc;

	*full = 0;
	if ((rc = spool_txn_begin(sp, NULL, 0, &txn)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!todo[i])
			continue;
		rc = spool_change_in(sp, txn, changes[i]);
		*full |= rc == MDB_MAP_FULL;
		results[i] = spool_err_read(rc);
	}
	if (*full && spool_grow_possible(sp)) {
		spool_txn_abort(sp, txn);	/* grow first, then redo them all */
		return MDB_MAP_FULL;
	}
	if ((rc = spool_txn_commit(sp, txn)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (todo[i] && results[i] != SPOOL_EFULL)
			todo[i] = 0;
	return 0;
}

/* spool_apply_changes - below max-spool-size a change that does not fit
 * makes the map grow and the batch run again; at the limit what fits is
 * committed and the rest tried once more, since pages freed by committed
 * deletions can be reused only by the next transaction */
enum spool_err
spool_apply_changes(struct spool *sp, const struct spool_change *const *changes, size_t n,
    enum spool_err *results)
{
	unsigned char *todo = malloc(n ? n : 1);
	enum spool_err all = SPOOL_OK;
	size_t left = n, before;
	int rc = ENOMEM, full;

	if (todo != NULL)
		memset(todo, 1, n);
	for (int tries = 0; todo != NULL && left > 0 && tries < 32; tries++) {
		rc = spool_apply_round(sp, changes, n, results, todo, &full);
		if (rc == MDB_MAP_FULL) {
			if (spool_grow(sp) != SPOOL_OK)
				break;
			continue;
		}
		if (rc != 0)
			break;
		before = left;
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += todo[i];
		if (left == before)
			break;		/* at the limit and nothing more fits */
	}
	if (rc != 0)
		for (size_t i = 0; i < n; i++)
			if (todo == NULL || todo[i])
				results[i] = spool_err_of(rc);
	free(todo);
	for (size_t i = 0; i < n; i++)
		if (results[i] != SPOOL_OK)
			all = results[i];
	return all;
}

enum spool_err
spool_rcpts_done(struct spool *sp, uint64_t id, const unsigned *idx, size_t n)
{
	struct spool_change ch = { .kind = CHANGE_DONE, .id = id, .idx = idx, .nidx = n };
	const struct spool_change *list = &ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

enum spool_err
spool_rcpt_defer(struct spool *sp, uint64_t id, const char *domain, unsigned index,
    const char *reply, int64_t next_try)
{
	struct spool_change ch = { .kind = CHANGE_DEFER, .id = id, .domain = domain,
	    .index = index, .reply = reply, .next_try = next_try };
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
spool_get_route(struct spool *sp, const char *domain, struct spool_route *rt)
{
	MDB_val k = { strlen(domain), (void *)domain }, v;
	MDB_txn *txn;
	int rc;

	memset(rt, 0, sizeof(*rt));
	if (!sp->have_route || k.mv_size == 0 || k.mv_size > SPOOL_DOMAIN_MAX)
		return SPOOL_ENOTFOUND;
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	if ((rc = mdb_get(txn, sp->route, &k, &v)) == 0 &&
	    spool_route_decode(v.mv_data, v.mv_size, rt) == -1)
		rc = MDB_INCOMPATIBLE;
	spool_txn_abort(sp, txn);
	return spool_err_read(rc);
}

enum spool_err
spool_get_qentry(struct spool *sp, uint64_t id, const char *domain, unsigned index,
    struct spool_qentry *q)
{
	unsigned char key[SPOOL_QKEY_MAX];
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	if (strlen(domain) > SPOOL_DOMAIN_MAX)
		return SPOOL_ENOTFOUND;
	k.mv_size = spool_qkey(key, domain, id, index);
	k.mv_data = key;
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	if ((rc = mdb_get(txn, sp->queue, &k, &v)) == 0 &&
	    spool_qentry_decode(v.mv_data, v.mv_size, q) == -1)
		rc = MDB_INCOMPATIBLE;
	spool_txn_abort(sp, txn);
	return spool_err_read(rc);
}

enum spool_err
spool_get_stats(struct spool *sp, struct spool_stats *st)
{
	MDB_envinfo info;
	MDB_stat ms, env;
	MDB_txn *txn;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	mdb_env_info(sp->env, &info);
	mdb_env_stat(sp->env, &env);
	if ((rc = mdb_stat(txn, sp->msg, &ms)) == 0)
		st->messages = ms.ms_entries;
	if (rc == 0 && (rc = mdb_stat(txn, sp->domain, &ms)) == 0)
		st->domains = ms.ms_entries;
	spool_txn_abort(sp, txn);
	st->map_size = info.me_mapsize;
	st->map_used = (uint64_t)(info.me_last_pgno + 1) * env.ms_psize;
	st->map_max = sp->max_size;
	st->readers = info.me_numreaders;
	st->max_readers = info.me_maxreaders;
	return spool_err_of(rc);
}

/* spool_freelist_pages - pages in LMDB's freelist (dbi 0): each record is a
 * count followed by that many page numbers */
static int
spool_freelist_pages(MDB_txn *txn, uint64_t *pages)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*pages = 0;
	if ((rc = mdb_cursor_open(txn, 0, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
		if (v.mv_size >= sizeof(size_t))
			*pages += *(const size_t *)v.mv_data;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

enum spool_err
spool_free_space(struct spool *sp, uint64_t *map_free, uint64_t *disk_free)
{
	MDB_envinfo info;
	MDB_stat env;
	struct statvfs st;
	uint64_t used, freed = 0;
	MDB_txn *txn;
	int rc;

	*disk_free = statvfs(sp->dir, &st) == 0 ? (uint64_t)st.f_bavail * st.f_frsize : UINT64_MAX;
	if ((rc = spool_txn_begin(sp, NULL, MDB_RDONLY, &txn)) != 0)
		return spool_err_of(rc);
	mdb_env_info(sp->env, &info);
	mdb_env_stat(sp->env, &env);
	rc = spool_freelist_pages(txn, &freed);
	spool_txn_abort(sp, txn);
	used = (uint64_t)(info.me_last_pgno + 1) * env.ms_psize;
	*map_free = (used < sp->max_size ? sp->max_size - used : 0) + freed * env.ms_psize;
	return spool_err_of(rc);
}
