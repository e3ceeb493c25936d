/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool.h - the message spool, kept in one LMDB environment in datadir.
 *
 * No caller sees LMDB: spool.c (the data model) and spool_env.c (the
 * mechanics) hide its recoverable conditions (MDB_MAP_FULL: the map grows
 * up to the configured maximum; MDB_MAP_RESIZED: another process grew it;
 * stale readers after a crash: cleared at open) behind a narrow API whose
 * errors are:
 *
 *   SPOOL_OK        success
 *   SPOOL_ENOTFOUND no such message or domain
 *   SPOOL_EFULL     the map is at max-spool-size or the disk is full (452 4.3.1)
 *   SPOOL_EIO       any other storage error (451 4.3.0); spoold stops on it
 *   SPOOL_EFORMAT   a record that does not decode, or of an unknown format
 *                   version: refused, not guessed, and never taken for EIO
 *   SPOOL_EBODY     the message body could not be read from its temp file
 *
 * Transaction rules: every function opens and ends its own transaction; no
 * transaction outlives a call, so none is ever held across network I/O.
 * Write functions commit with LMDB's default full sync (never MDB_NOSYNC,
 * MDB_NOMETASYNC, MDB_MAPASYNC or MDB_WRITEMAP): when they return SPOOL_OK
 * the data is on disk.  Write functions may be called from one thread (the
 * committer) while others read.  LMDB serialises writers across processes,
 * but while spoold runs every change goes through it (spoolctl asks over
 * the control socket); spoolctl writes itself only when no spoold runs.
 *
 * Layout (named databases):
 *   msg     id(8)                  envelope (spool_record.h)
 *   body    id(8) chunk(4)         body bytes, in chunks of SPOOL_CHUNK
 *   queue   domain NUL id(8) idx(2) queue entry: a domain's mail is one
 *                                  key range, in arrival (id) order
 *   domain  domain                 counters, updated in the same transaction
 *   route   domain                 how the last delivery attempts went
 *   quarantine id(8)               a quarantined message (its recipients
 *                                  then have no queue entries)
 *   verify  address (lower case)   an address verification result
 *                                  (recipients verify), until it expires
 *   meta    "version", "next_id"
 */
#ifndef SPOOLD_SPOOL_H
#define SPOOLD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "spool_record.h"

enum spool_err {
	SPOOL_OK = 0,
	SPOOL_ENOTFOUND,
	SPOOL_EFULL,
	SPOOL_EIO,
	SPOOL_EFORMAT,
	SPOOL_EBODY,
};

#define SPOOL_CHUNK		(64 * 1024)
#define SPOOL_RDONLY		0x01

struct spool;

/* A message to store: the envelope plus a way to read the body. */
struct spool_newmsg {
	struct spool_envelope	 env;		/* env.id is the message id */
	int			(*read_body)(void *arg, uint64_t off, void *dst, size_t len);
	void			*body_arg;
	const char		*quarantine;	/* the reason: kept, not queued;
						 * NULL: queued for delivery */
};

struct spool_domain_info {
	const char		*domain;
	struct spool_counters	 counters;
};

struct spool_stats {
	uint64_t	messages;	/* stored messages */
	uint64_t	domains;	/* domains with mail */
	uint64_t	quarantined;	/* of the messages, quarantined */
	uint64_t	map_size;	/* current map size */
	uint64_t	map_used;	/* bytes of pages in use */
	uint64_t	map_max;	/* max-spool-size */
	unsigned	readers;	/* reader slots in use */
	unsigned	max_readers;
};

const char *spool_strerror(enum spool_err);

/* spool_open - open or create the environment in dir.  max_size caps the
 * map.  Clears stale reader slots left by a crashed process.
 * Errors: SPOOL_EIO (with a reason in err), SPOOL_EFORMAT (newer schema). */
enum spool_err spool_open(struct spool **, const char *dir, uint64_t max_size,
    int flags, char *err, size_t errlen);
void	spool_close(struct spool *);

/* spool_next_id - the first unused message id (read once at start-up; the
 * caller hands out ids from there and spool_put_messages records them) */
enum spool_err spool_next_id(struct spool *, uint64_t *);

/* spool_put_messages - store n messages in one write transaction (group
 * commit), each in a nested transaction so one bad message fails alone.
 * results[i] gets each message's outcome: SPOOL_OK only once committed and
 * synced.  Returns SPOOL_OK when every message was stored. */
enum spool_err spool_put_messages(struct spool *, struct spool_newmsg *const *msgs,
    size_t n, enum spool_err *results);

/* spool_delete_message - CHANGE_DELETE in a transaction of its own: remove
 * a message, its body and every queue entry, adjusting the counters of
 * each domain.  SPOOL_ENOTFOUND if absent. */
enum spool_err spool_delete_message(struct spool *, uint64_t id);

/* spool_get_envelope - decode the envelope of id into env (caller frees
 * with spool_envelope_free) */
enum spool_err spool_get_envelope(struct spool *, uint64_t id, struct spool_envelope *);

/* spool_read_body - copy len bytes at off of message id's body into dst */
enum spool_err spool_read_body(struct spool *, uint64_t id, uint64_t off, void *dst, size_t len);

/* spool_domain_list - cb for each domain with counters, in name order; a
 * non-zero return from cb stops the walk.  Runs in one read transaction:
 * cb must not block. */
enum spool_err spool_domain_list(struct spool *,
    int (*cb)(const struct spool_domain_info *, void *), void *arg);
/* spool_domain_list_after - the same from the first domain after `after`
 * (NULL or "": from the first), for a walk in slices: cb stops each */
enum spool_err spool_domain_list_after(struct spool *, const char *after,
    int (*cb)(const struct spool_domain_info *, void *), void *arg);
enum spool_err spool_domain_counters(struct spool *, const char *domain, struct spool_counters *);

/* spool_domain_walk - cb for each message queued for domain, oldest first,
 * with the indexes of its recipients in that domain and their queue entries
 * (attempts, last reply, next try).  The same rules as spool_domain_list
 * apply: one read transaction, cb must not block. */
typedef int spool_walk_cb(const struct spool_envelope *, const unsigned *idx,
    const struct spool_qentry *q, size_t nidx, void *arg);
enum spool_err spool_domain_walk(struct spool *, const char *domain, spool_walk_cb *, void *arg);

/* spool_domain_ids - the ids of the messages queued for domain, oldest first,
 * into a malloc'd array (caller frees); reads keys only */
enum spool_err spool_domain_ids(struct spool *, const char *domain, uint64_t **ids, size_t *n);

enum spool_err spool_get_stats(struct spool *, struct spool_stats *);

/* spool_read_at_random - the spool is read at random for now (on), or in
 * order again (off): see spool_env_read_at_random */
void spool_read_at_random(struct spool *, int on);

/* spool_free_space - what can still be stored: in the map up to
 * max-spool-size (pages never used plus pages freed for reuse) and on the
 * file system holding the spool */
enum spool_err spool_free_space(struct spool *, uint64_t *map_free, uint64_t *disk_free);

/* A change to queued mail, applied by the committer together with others. */
enum spool_change_kind {
	CHANGE_DONE,		/* recipients finished (delivered or bounced) */
	CHANGE_DEFER,		/* one recipient stays, with the peer's reply */
	CHANGE_ROUTE,		/* how a session with the domain's site went */
	CHANGE_WARN,		/* delay notices sent for recipients */
	CHANGE_DELETE,		/* spoolctl delete: the whole message goes, no DSN */
	CHANGE_HOLD,		/* spoolctl hold/release: the domain's ROUTE_HELD */
	CHANGE_RELEASE,		/* spoolctl release ID: quarantine -> queue */
	CHANGE_QUARANTINE,	/* a rescan refused it: queue -> quarantine,
				 * with the reason in reply */
	CHANGE_SCANNED,		/* a rescan passed it: ENV_UNSCANNED cleared */
	CHANGE_VERIFY,		/* an address verification result: verify, for
				 * the address in domain */
	CHANGE_VERIFY_SWEEP,	/* verification results that expired before
				 * next_try go, SPOOL_VERIFY_SWEEP_MAX at most */
	CHANGE_UNVERIFY,	/* spoolctl unverify: the result for the address
				 * in domain goes (SPOOL_ENOTFOUND: none) */
};

/* The longest address a verify key holds (local@domain, RFC 5321 4.5.3.1),
 * and how many expired entries one sweep removes (the transaction stays
 * small; the next sweep takes the rest). */
#define SPOOL_VERIFY_KEY_MAX	320
#define SPOOL_VERIFY_SWEEP_MAX	10000

/* spool_release_message - CHANGE_RELEASE in a transaction of its own
 * (spoolctl release ID when spoold is not running) */
enum spool_err spool_release_message(struct spool *, uint64_t id);

/* spool_set_hold - CHANGE_HOLD in a transaction of its own (spoolctl when
 * spoold is not running) */
enum spool_err spool_set_hold(struct spool *, const char *domain, int held);

/* spool_unverify - CHANGE_UNVERIFY in a transaction of its own (spoolctl
 * when spoold is not running) */
enum spool_err spool_unverify(struct spool *, const char *addr);

/* spool_verify_key_of - arg (local@domain, or <local@domain> as a log line
 * shows it) as the verify cache keys it, in key (len bytes): lower case,
 * as verify.c makes keys of RCPTs.  A quoted local part ("a b"@x, as RCPT
 * takes it) may hold spaces and <>; no control character anywhere.  -1
 * when arg is no such address.  Pure (spool_record.c): the control socket
 * and spoolctl call it without going through the queue. */
int spool_verify_key_of(const char *arg, char *key, size_t len);

struct spool_change {
	enum spool_change_kind	 kind;
	uint64_t		 id;
	const unsigned		*idx;		/* DONE: recipients finished; WARN:
						 * recipients whose delay notice
						 * (dsn) goes out */
	size_t			 nidx;
	const char		*domain;	/* DEFER, WARN: where queued;
						 * ROUTE, HOLD: the domain */
	unsigned		 index;		/* DEFER: the recipient */
	const char		*reply;		/* DEFER: the peer's reply; ROUTE:
						 * why the session failed, or ""
						 * after a good one */
	int64_t			 next_try;	/* DEFER, ROUTE: kept in the record
						 * for information only; when the
						 * next attempt is due is
						 * schedule.h's decision */
	int			 held;		/* HOLD: set or clear */
	const struct spool_verify *verify;	/* VERIFY: the result */
	int			 if_quarantined;	/* DELETE: only a quarantined
						 * message (expiry: not one
						 * released meanwhile) */
	struct spool_newmsg	*dsn;		/* DONE: a notification stored in
						 * the same transaction, or NULL */
	int			*removed;	/* out, or NULL: set to 1 when the
						 * change removed the message (DONE
						 * of its last recipients, DELETE) */
};

/* spool_apply_changes - apply n changes in one write transaction (group
 * commit), each nested so one failing change (SPOOL_ENOTFOUND: the message
 * was deleted meanwhile) fails alone; results[i] per change.  A DONE change
 * with a dsn stores it in the same nested transaction as the removal, so a
 * bounce is never lost and never sent without the recipients going. */
enum spool_err spool_apply_changes(struct spool *, const struct spool_change *const *changes,
    size_t n, enum spool_err *results);

/* spool_get_route - how delivery to domain went lately (free it with
 * spool_route_free); SPOOL_ENOTFOUND when never recorded */
enum spool_err spool_get_route(struct spool *, const char *domain, struct spool_route *);

/* The quarantine.  spool_quarantine_walk - cb for each quarantined
 * message, in id (arrival) order, under the rules of spool_domain_list;
 * spool_quarantine_expired - the ids quarantined before `before` (caller
 * frees); spool_get_quarantine - message id's record (SPOOL_ENOTFOUND: not
 * quarantined; free it with spool_quarantine_free). */
typedef int spool_quarantine_cb(const struct spool_envelope *, const struct spool_quarantine *,
    void *arg);
enum spool_err spool_quarantine_walk(struct spool *, spool_quarantine_cb *, void *arg);
enum spool_err spool_quarantine_expired(struct spool *, int64_t before, uint64_t **ids,
    size_t *n);
enum spool_err spool_get_quarantine(struct spool *, uint64_t id, struct spool_quarantine *);

/* spool_get_verify - the verification result for addr (lower case); free
 * it with spool_verify_free.  SPOOL_ENOTFOUND when none is kept (expired
 * ones may still be there until a sweep: the caller checks expires). */
enum spool_err spool_get_verify(struct spool *, const char *addr, struct spool_verify *);

#endif
