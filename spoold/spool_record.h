/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_record.h - the versioned byte layout of every record in the spool.
 *
 * Every record starts with a format version byte; a decoder refuses versions
 * it does not know (SPOOL_EFORMAT) instead of guessing.  Integers are
 * big-endian; strings are a 16-bit length and the bytes.  Pure code: the
 * LMDB side lives in spool.c.
 *
 * Ownership, one rule for every record struct: its strings (and an
 * envelope's recipients) are views it never frees one by one.  A struct a
 * caller fills in to be encoded borrows them, literals included; a decoded
 * one points into a single block the decoder allocated, kept in mem, which
 * the record's _free() releases (mem is NULL in a borrowing struct, so
 * _free() is safe on either).  Decoders return 0, or -1 for a truncated or
 * malformed record, an unknown version, or no memory.
 */
#ifndef SPOOLD_SPOOL_RECORD_H
#define SPOOLD_SPOOL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SPOOL_RECORD_VERSION	1

/* The longest domain a key or record holds (RFC 5321 4.5.3.1.2; the same
 * as smtp_cmd.h's SMTP_DOMAIN_MAX). */
#define SPOOL_DOMAIN_MAX	255

/* envelope flags */
#define ENV_SMTPUTF8	0x01
#define ENV_8BITMIME	0x02	/* BODY=8BITMIME was given */
#define ENV_8BIT_SEEN	0x04	/* the body has 8-bit bytes */
#define ENV_UNSCANNED	0x08	/* stored while a content filter was down
				 * (milter-default-action accept): offered
				 * to the filters again before it leaves */

struct spool_rcpt {
	const char	*addr;		/* local@domain */
	const char	*orcpt_type;	/* "" when no ORCPT */
	const char	*orcpt;
	unsigned	 notify;	/* NOTIFY_* from smtp_cmd.h */
	unsigned	 done;		/* delivered or bounced */
};

struct spool_envelope {
	uint64_t		 id;
	int64_t			 arrival;
	uint64_t		 size;
	unsigned		 flags;
	unsigned		 ret;		/* RET_* from smtp_cmd.h */
	const char		*sender;	/* "" for <> */
	const char		*envid;
	const char		*client;
	const char		*helo;
	struct spool_rcpt	*rcpts;
	size_t			 nrcpts;
	void			*mem;		/* decoded: the block it all lives in */
};

/* One recipient's place in a domain's queue. */
#define QENTRY_RECORD_VERSION	2	/* 1 had no flags */
#define QENTRY_WARNED		0x01	/* its delay notice went out */

struct spool_qentry {
	unsigned	 flags;
	unsigned	 rcpt_index;
	uint32_t	 attempts;
	int64_t		 next_try;	/* information only (schedule.h decides) */
	const char	*last_reply;
	void		*mem;		/* decoded: the block last_reply lives in */
};

/* How the last delivery attempts for a domain went (the route, not one
 * recipient): connection failures land here, visible in spoolctl show. */
#define ROUTE_RECORD_VERSION	2	/* 1 had no flags */
#define ROUTE_HELD		0x01	/* spoolctl hold: no spontaneous runs */

struct spool_route {
	unsigned	 flags;
	int64_t		 last_attempt;
	int64_t		 next_try;	/* information only (schedule.h decides) */
	uint32_t	 failures;	/* in a row; 0 after a good session */
	const char	*last_error;	/* "" after a good session */
	void		*mem;		/* decoded: the block last_error lives in */
};

/* A quarantined message: kept, never delivered, until spoolctl release
 * queues it or quarantine-max-age removes it.  Its recipients have no
 * queue entries meanwhile and count in no domain's counters. */
#define QUARANTINE_RECORD_VERSION	1

struct spool_quarantine {
	int64_t		 since;
	const char	*reason;	/* "milter NAME: the filter's reason" */
	void		*mem;
};

/* An address verification result (recipients verify): what the domain's
 * primary said to a RCPT probe, kept until expires. */
#define VERIFY_RECORD_VERSION	1

struct spool_verify {
	int		 valid;		/* 1: deliverable (2xx), 0: undeliverable (5xx) */
	int64_t		 checked;	/* when the primary said so */
	int64_t		 expires;	/* then the entry no longer counts */
	const char	*reply;		/* the primary's reply, escaped */
	void		*mem;
};

struct spool_counters {
	uint64_t	messages;
	uint64_t	bytes;
	int64_t		oldest;		/* arrival of the oldest message, 0 if none */
};

int	spool_envelope_encode(const struct spool_envelope *, struct buf *);
int	spool_envelope_decode(const void *, size_t, struct spool_envelope *);
void	spool_envelope_free(struct spool_envelope *);

int	spool_qentry_encode(const struct spool_qentry *, struct buf *);
int	spool_qentry_decode(const void *, size_t, struct spool_qentry *);
void	spool_qentry_free(struct spool_qentry *);

int	spool_route_encode(const struct spool_route *, struct buf *);
int	spool_route_decode(const void *, size_t, struct spool_route *);
void	spool_route_free(struct spool_route *);

int	spool_quarantine_encode(const struct spool_quarantine *, struct buf *);
int	spool_quarantine_decode(const void *, size_t, struct spool_quarantine *);
void	spool_quarantine_free(struct spool_quarantine *);

int	spool_verify_encode(const struct spool_verify *, struct buf *);
int	spool_verify_decode(const void *, size_t, struct spool_verify *);
void	spool_verify_free(struct spool_verify *);

#define SPOOL_COUNTERS_LEN	25
void	spool_counters_encode(const struct spool_counters *, unsigned char out[SPOOL_COUNTERS_LEN]);
int	spool_counters_decode(const void *, size_t, struct spool_counters *);

/* Keys.  queue: domain NUL id(8) index(2); body: id(8) chunk(4). */
#define SPOOL_QKEY_MAX	(SPOOL_DOMAIN_MAX + 1 + 8 + 2)
#define SPOOL_BKEY_LEN	12
size_t	spool_qkey(unsigned char *key, const char *domain, uint64_t id, unsigned index);
/* spool_bkey - the key of chunk of message id's body; its length */
size_t	spool_bkey(unsigned char key[SPOOL_BKEY_LEN], uint64_t id, uint32_t chunk);
int	spool_qkey_parse(const void *, size_t, const char **domain, size_t *dlen,
	    uint64_t *id, unsigned *index);
void	spool_be64(unsigned char *, uint64_t);
/* spool_rcpt_domain - the domain of a stored recipient address ("" if none) */
const char *spool_rcpt_domain(const char *addr);
uint64_t spool_get_be64(const unsigned char *);

#endif
