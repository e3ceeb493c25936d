/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_env.c - LMDB environment, map growth and the write retry policy;
 * see spool_env.h.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "log.h"
#include "spool_env.h"

#define SPOOL_INITIAL_MAP	(64ULL * 1024 * 1024)
#define SPOOL_MAX_DBS		12
/* Write attempts, each after growing the map: enough to double 64 MiB past
 * any max-spool-size a 64-bit host can map. */
#define SPOOL_WRITE_TRIES	40

struct spool_env {
	MDB_env			*env;
	uint64_t		 max_size;
	int			 rdonly;
	char			*dir;
	/* Held shared by every transaction of this process and exclusively to
	 * resize the map: LMDB allows mdb_env_set_mapsize() only when this
	 * process has no transaction open. */
	pthread_rwlock_t	 resize_lock;
};

/* txn_begin - a top-level transaction with the resize lock held shared;
 * adopts a map another process has grown (MDB_MAP_RESIZED) */
static int
txn_begin(struct spool_env *se, unsigned flags, MDB_txn **txn)
{
	int rc, tries = 0;

	for (;;) {
		pthread_rwlock_rdlock(&se->resize_lock);
		rc = mdb_txn_begin(se->env, NULL, flags, txn);
		if (rc != MDB_MAP_RESIZED || ++tries > 3)
			break;
		pthread_rwlock_unlock(&se->resize_lock);
		pthread_rwlock_wrlock(&se->resize_lock);
		rc = mdb_env_set_mapsize(se->env, 0);
		pthread_rwlock_unlock(&se->resize_lock);
		if (rc != 0)
			return rc;
	}
	if (rc != 0)
		pthread_rwlock_unlock(&se->resize_lock);
	return rc;
}

static void
txn_abort(struct spool_env *se, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&se->resize_lock);
}

static int
txn_commit(struct spool_env *se, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);	/* frees txn on failure too */

	pthread_rwlock_unlock(&se->resize_lock);
	return rc;
}

/* grow - double the map up to max_size; MDB_MAP_FULL at the cap */
static int
grow(struct spool_env *se)
{
	MDB_envinfo info;
	uint64_t size;
	int rc;

	pthread_rwlock_wrlock(&se->resize_lock);
	mdb_env_info(se->env, &info);
	if ((uint64_t)info.me_mapsize >= se->max_size) {
		pthread_rwlock_unlock(&se->resize_lock);
		return MDB_MAP_FULL;
	}
	size = (uint64_t)info.me_mapsize * 2;
	if (size > se->max_size)
		size = se->max_size;
	rc = mdb_env_set_mapsize(se->env, (size_t)size);
	pthread_rwlock_unlock(&se->resize_lock);
	if (rc != 0) {
		log_warnx("spool: cannot grow the map to %llu bytes: %s", (unsigned long long)size,
		    mdb_strerror(rc));
		return rc;
	}
	log_info("spool: map grown to %llu bytes (max-spool-size %llu)", (unsigned long long)size,
	    (unsigned long long)se->max_size);
	return 0;
}

/* env_size - an opened environment's first map: SPOOL_INITIAL_MAP, less
 * when max-spool-size is smaller, never less than the file has */
static int
env_size(struct spool_env *se)
{
	MDB_envinfo info;
	uint64_t size = se->max_size < SPOOL_INITIAL_MAP ? se->max_size : SPOOL_INITIAL_MAP;

	mdb_env_info(se->env, &info);
	if (se->rdonly || size <= (uint64_t)info.me_mapsize)
		return 0;
	return mdb_env_set_mapsize(se->env, (size_t)size);
}

int
spool_env_open(struct spool_env **out, const char *dir, uint64_t max_size, int rdonly,
    char *err, size_t errlen)
{
	struct spool_env *se = calloc(1, sizeof(*se));
	int rc, dead = 0;

	*out = NULL;
	if (se == NULL || (se->dir = strdup(dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(se);
		return ENOMEM;
	}
	se->max_size = max_size;
	se->rdonly = rdonly;
	pthread_rwlock_init(&se->resize_lock, NULL);
	if ((rc = mdb_env_create(&se->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(se->env, SPOOL_MAX_DBS)) != 0 ||
	    (rc = mdb_env_open(se->env, dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0600)) != 0) {
		snprintf(err, errlen, "cannot open spool in %s: %s", dir, mdb_strerror(rc));
		spool_env_close(se);
		return rc;
	}
	if ((rc = env_size(se)) != 0) {
		snprintf(err, errlen, "cannot size the spool map: %s", mdb_strerror(rc));
		spool_env_close(se);
		return rc;
	}
	/* Reader slots of a process killed with -9 would pin old pages. */
	(void)mdb_reader_check(se->env, &dead);
	if (dead > 0)
		log_info("spool: cleared %d stale reader slot%s", dead, dead == 1 ? "" : "s");
	*out = se;
	return 0;
}

void
spool_env_close(struct spool_env *se)
{
	if (se == NULL)
		return;
	if (se->env)
		mdb_env_close(se->env);
	pthread_rwlock_destroy(&se->resize_lock);
	free(se->dir);
	free(se);
}

int
spool_env_rdonly(const struct spool_env *se)
{
	return se->rdonly;
}


int
spool_env_setup(struct spool_env *se, int (*fn)(MDB_txn *, void *), void *arg)
{
	MDB_txn *txn;
	int rc;

	if ((rc = txn_begin(se, se->rdonly ? MDB_RDONLY : 0, &txn)) != 0)
		return rc;
	if ((rc = fn(txn, arg)) != 0) {
		txn_abort(se, txn);
		return rc;
	}
	return txn_commit(se, txn);
}

int
spool_env_read(struct spool_env *se, int (*fn)(MDB_txn *, void *), void *arg)
{
	MDB_txn *txn;
	int rc;

	if ((rc = txn_begin(se, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = fn(txn, arg);
	txn_abort(se, txn);
	return rc;
}

int
spool_env_write(struct spool_env *se, int (*fn)(MDB_txn *, int, void *), void *arg)
{
	int rc = MDB_MAP_FULL, at_limit = 0;

	for (int tries = 0; tries < SPOOL_WRITE_TRIES && rc == MDB_MAP_FULL; tries++) {
		MDB_txn *txn;

		if ((rc = txn_begin(se, 0, &txn)) != 0)
			return rc;
		if ((rc = fn(txn, at_limit, arg)) == 0)
			rc = txn_commit(se, txn);
		else
			txn_abort(se, txn);
		if (rc != MDB_MAP_FULL || at_limit)
			break;
		if ((rc = grow(se)) == MDB_MAP_FULL)
			at_limit = 1;	/* once more, failing alone what does not fit */
		else if (rc != 0)
			break;
		rc = MDB_MAP_FULL;
	}
	return rc;
}

int
spool_env_nested(MDB_txn *parent, int (*fn)(MDB_txn *, void *), void *arg)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(mdb_txn_env(parent), parent, 0, &txn)) != 0)
		return rc;
	if ((rc = fn(txn, arg)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* db_pages - the pages a database holds */
static uint64_t
db_pages(const MDB_stat *st)
{
	return (uint64_t)st->ms_branch_pages + st->ms_leaf_pages + st->ms_overflow_pages;
}

int
spool_env_usage(struct spool_env *se, MDB_txn *txn, const MDB_dbi *dbis, size_t n,
    struct spool_env_usage *u)
{
	MDB_envinfo info;
	MDB_stat st;
	struct statvfs fs;
	uint64_t held = 2;	/* the two meta pages */
	int rc;

	memset(u, 0, sizeof(*u));
	mdb_env_info(se->env, &info);
	if ((rc = mdb_env_stat(se->env, &st)) != 0)
		return rc;
	held += db_pages(&st);	/* the main database: the names of the others */
	for (size_t i = 0; i < n; i++) {
		MDB_stat ds;

		if ((rc = mdb_stat(txn, dbis[i], &ds)) != 0)
			return rc;
		held += db_pages(&ds);
	}
	u->map_size = info.me_mapsize;
	u->map_max = se->max_size;
	u->map_used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	held *= st.ms_psize;
	u->map_free = held < se->max_size ? se->max_size - held : 0;
	u->disk_free = statvfs(se->dir, &fs) == 0 ? (uint64_t)fs.f_bavail * fs.f_frsize : UINT64_MAX;
	u->readers = info.me_numreaders;
	u->max_readers = info.me_maxreaders;
	return 0;
}

/* advise_file_map - madvise every mapping this process has of fd's file,
 * found in /proc/self/maps: LMDB does not say where its map is (me_mapaddr
 * is set only with MDB_FIXEDMAP).  A hint: what fails is left as it was. */
static void
advise_file_map(int fd, int advice)
{
	char line[512];
	unsigned long long start, end, ino;
	unsigned maj, min;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st) != 0 || (f = fopen("/proc/self/maps", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%llx-%llx %*s %*x %x:%x %llu", &start, &end, &maj, &min, &ino) == 5 &&
		    ino == (unsigned long long)st.st_ino && makedev(maj, min) == st.st_dev)
			(void)madvise((void *)(uintptr_t)start, (size_t)(end - start), advice);
	fclose(f);
}

void
spool_env_read_at_random(struct spool_env *se, int on)
{
	int fd;

	/* shared: the map cannot move while it is advised */
	pthread_rwlock_rdlock(&se->resize_lock);
	if (mdb_env_get_fd(se->env, &fd) == 0)
		advise_file_map(fd, on ? MADV_RANDOM : MADV_NORMAL);
	pthread_rwlock_unlock(&se->resize_lock);
}

int
spool_env_disk_short(const struct spool_env *se, uint64_t want)
{
	struct statvfs st;

	if (statvfs(se->dir, &st) == -1)
		return 0;
	return (uint64_t)st.f_bavail * st.f_frsize < want;
}
