/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_env.h - the LMDB mechanics under the spool, kept apart from its data
 * model (as Postfix keeps them in util/slmdb.c): the environment, the map
 * that grows up to max-spool-size, the map another process grew
 * (MDB_MAP_RESIZED), stale reader slots, and one retry policy for writes.
 *
 * Only spool_env.c and spool.c include <lmdb.h>.  Functions return LMDB rc
 * values (0 is success); spool.c maps them to enum spool_err.
 *
 * Transactions: every top-level transaction runs inside spool_env_read or
 * spool_env_write, which begin and end it (and hold this process's resize
 * lock across it, since LMDB resizes the map only when no transaction of
 * the process is open); nested ones inside spool_env_nested.  No caller
 * begins or ends a transaction itself, so none outlives a call.
 */
#ifndef SPOOLD_SPOOL_ENV_H
#define SPOOLD_SPOOL_ENV_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

/* A record that cannot be decoded (a data error, never an I/O error) and a
 * message body that could not be read while storing: private rc values
 * next to LMDB's. */
#define SPOOL_RC_BADRECORD	MDB_INCOMPATIBLE
#define SPOOL_RC_BODY		(-1)
/* A spool written by a newer spoold (its schema version is unknown). */
#define SPOOL_RC_SCHEMA		(-2)

struct spool_env;

/* spool_val - a key or value LMDB only reads: LMDB's MDB_val has no const,
 * but mdb_get, mdb_put and mdb_del never write through a key (and mdb_put
 * only copies a value), so a const pointer may go in by way of uintptr_t */
static inline MDB_val
spool_val(const void *p, size_t len)
{
	MDB_val v = { len, (void *)(uintptr_t)p };

	return v;
}

/* spool_env_open - open or create the environment in dir (max_size caps
 * the map), clearing stale reader slots; 0, or an rc with the reason */
int	spool_env_open(struct spool_env **, const char *dir, uint64_t max_size, int rdonly,
	    char *err, size_t errlen);
void	spool_env_close(struct spool_env *);
int	spool_env_rdonly(const struct spool_env *);

/* spool_env_setup - fn in the first transaction (write, or read-only for a
 * read-only environment), committed so the databases it opens stay open */
int	spool_env_setup(struct spool_env *, int (*fn)(MDB_txn *, void *), void *arg);

/* spool_env_read - fn inside one read-only transaction */
int	spool_env_read(struct spool_env *, int (*fn)(MDB_txn *, void *), void *arg);

/* spool_env_write - fn inside one write transaction, then the commit with
 * LMDB's full sync: 0 means it is on disk.  When fn (or the commit) says
 * MDB_MAP_FULL, the transaction is dropped, the map grows (doubling, up to
 * max-spool-size) and fn runs again from the start; once the map is at its
 * maximum, fn runs once more with at_limit set, and must then fail alone
 * what does not fit rather than say MDB_MAP_FULL. */
int	spool_env_write(struct spool_env *, int (*fn)(MDB_txn *, int at_limit, void *), void *arg);

/* spool_env_nested - fn inside a transaction nested in parent, which fails
 * alone: committed into parent when fn returns 0, dropped otherwise */
int	spool_env_nested(MDB_txn *parent, int (*fn)(MDB_txn *, void *), void *arg);

struct spool_env_usage {
	uint64_t	map_size;	/* the map now */
	uint64_t	map_max;	/* max-spool-size */
	uint64_t	map_used;	/* up to the highest page written */
	uint64_t	map_free;	/* what can still be stored: the map up to
					 * max-spool-size less the pages the
					 * databases hold */
	uint64_t	disk_free;	/* on the file system holding the spool */
	unsigned	readers, max_readers;
};

/* spool_env_usage - inside a read transaction; dbis are the databases
 * whose pages count as in use (mdb_stat, LMDB's documented statistics) */
int	spool_env_usage(struct spool_env *, MDB_txn *, const MDB_dbi *dbis, size_t n,
	    struct spool_env_usage *);

/* spool_env_read_at_random - advise the kernel that the map is read at
 * random (on) or in order again (off).  While on, a fault on a page not in
 * memory reads that page only, not the device's read-ahead around it
 * (read_ahead_kb: 128 KiB by default, 8 MiB on some virtual disks): a
 * B-tree lookup on a cold spool costs a fraction of a millisecond instead
 * of 9-20 ms, but bodies read in order cost more faults.  A hint: errors are
 * ignored, and a map that grows meanwhile goes back to the default. */
void	spool_env_read_at_random(struct spool_env *, int on);

/* spool_env_disk_short - the file system has less than want bytes free (a
 * failed write was then the disk, not the device: LMDB reports a short
 * write on a full disk as EIO) */
int	spool_env_disk_short(const struct spool_env *, uint64_t want);

#endif
