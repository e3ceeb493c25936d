/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * queue.h - the one owner of the queue on the loop side.
 *
 * Every loop-side read of the spool and every submission to the committer
 * goes through here.  It hands out message ids, decides the storage-failure
 * policy once for every request (an I/O error stops spoold; a full spool
 * refuses new mail at MAIL for a while), watches free space (drain-only),
 * and tells its owner when a message was queued for a domain that may
 * need the scheduler (a DSN to a sender elsewhere).
 */
#ifndef SPOOLD_QUEUE_H
#define SPOOLD_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <ev.h>

#include "committer.h"
#include "spool.h"

struct queue;

struct queue_hooks {
	/* storage_failed - a commit failed with an I/O error: stop at once */
	void	(*storage_failed)(void *arg, const char *what);
	/* queued - a notification was queued for domain */
	void	(*queued)(void *arg, const char *domain);
	void	*arg;
};

/* queue_open - the queue over an open spool: reads the next id and starts
 * the committer.  NULL with the reason in err. */
struct queue *queue_open(struct ev_loop *, struct spool *, const struct queue_hooks *,
    char *err, size_t errlen);
/* queue_close - finish what was submitted (each done() runs), stop the
 * committer; the totals since queue_open */
void	queue_close(struct queue *, unsigned long long *messages, unsigned long long *batches);

uint64_t queue_new_id(struct queue *);
uint64_t queue_peek_id(const struct queue *);	/* the next id, for the log */

/* queue_submit - to the committer; req->done() comes later, on the loop */
void	queue_submit(struct queue *, struct commit_req *);
unsigned queue_pending(const struct queue *);

/* queue_accepting - new mail may be taken: no recent "spool full" commit
 * and not drain-only */
int	queue_accepting(const struct queue *);
/* queue_set_drain_threshold - drain-only below this much free space */
void	queue_set_drain_threshold(struct queue *, uint64_t bytes);

/* queue_delete - spoolctl delete: message id goes, with no DSN;
 * queue_hold - spoolctl hold/release: no spontaneous runs for domain while
 * held.  Group-committed like any change; done(arg, result) comes once it
 * is on disk (SPOOL_ENOTFOUND: no such message).  -1: out of memory (or
 * a domain too long), nothing submitted. */
int	queue_delete(struct queue *, uint64_t id, void (*done)(void *arg, enum spool_err),
	    void *arg);
int	queue_hold(struct queue *, const char *domain, int held,
	    void (*done)(void *arg, enum spool_err), void *arg);

/* The quarantine.  queue_release - spoolctl release ID: message id's
 * pending recipients are queued for delivery; queue_quarantine - a rescan
 * refused a queued message: it leaves the queue for the quarantine, with
 * reason; queue_scanned - a rescan passed it.  As queue_delete. */
int	queue_release(struct queue *, uint64_t id, void (*done)(void *arg, enum spool_err),
	    void *arg);
int	queue_quarantine(struct queue *, uint64_t id, const char *reason,
	    void (*done)(void *arg, enum spool_err), void *arg);
int	queue_scanned(struct queue *, uint64_t id, void (*done)(void *arg, enum spool_err),
	    void *arg);
/* queue_expire_quarantined - quarantine-max-age: message id goes, if it
 * is still quarantined (SPOOL_ENOTFOUND: released meanwhile) */
int	queue_expire_quarantined(struct queue *, uint64_t id,
	    void (*done)(void *arg, enum spool_err), void *arg);
enum spool_err queue_quarantine_expired(struct queue *, int64_t before, uint64_t **ids,
    size_t *n);
enum spool_err queue_get_quarantine(struct queue *, uint64_t id, struct spool_quarantine *);

/* Address verification results (recipients verify).  queue_verify_put -
 * addr's result (lower case), group-committed; queue_verify_sweep - the
 * results that expired before `before` go; done (optional, as for
 * queue_delete) once on disk; -1 when out of memory or addr too long.
 * queue_unverify - spoolctl unverify: addr's result goes (done gets
 * SPOOL_ENOTFOUND when there was none).
 * queue_verify_get - addr's result, one short read (SPOOL_ENOTFOUND:
 * none); free it with spool_verify_free. */
int	queue_verify_put(struct queue *, const char *addr, const struct spool_verify *,
	    void (*done)(void *arg, enum spool_err), void *arg);
int	queue_unverify(struct queue *, const char *addr, void (*done)(void *arg, enum spool_err),
	    void *arg);
int	queue_verify_sweep(struct queue *, int64_t before, void (*done)(void *arg, enum spool_err),
	    void *arg);
enum spool_err queue_verify_get(struct queue *, const char *addr, struct spool_verify *);

/* queue_read_at_random - see spool_read_at_random */
void	queue_read_at_random(struct queue *, int on);

/* Reads: each is one short read transaction (see spool.h). */
enum spool_err queue_counters(struct queue *, const char *domain, struct spool_counters *);
enum spool_err queue_ids(struct queue *, const char *domain, uint64_t **ids, size_t *n);
enum spool_err queue_envelope(struct queue *, uint64_t id, struct spool_envelope *);
enum spool_err queue_read_body(struct queue *, uint64_t id, uint64_t off, void *dst, size_t len);
enum spool_err queue_route(struct queue *, const char *domain, struct spool_route *);
enum spool_err queue_domains(struct queue *, int (*cb)(const struct spool_domain_info *, void *),
    void *arg);
/* queue_domains_after - the same from the first domain after `after` */
enum spool_err queue_domains_after(struct queue *, const char *after,
    int (*cb)(const struct spool_domain_info *, void *), void *arg);
enum spool_err queue_walk(struct queue *, const char *domain, spool_walk_cb *, void *arg);
/* The metrics thread's reads: these touch no queue state, only the spool's
 * read transactions, so they may run off the loop (queue_domains too, and
 * queue_ids and queue_envelope, which the delivery runs' log thread uses). */
enum spool_err queue_stats(struct queue *, struct spool_stats *);
enum spool_err queue_quarantine_walk(struct queue *, spool_quarantine_cb *, void *arg);

#endif
