/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spool_record.c - encoding and decoding of spool records.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "spool.h"		/* SPOOL_VERIFY_KEY_MAX */
#include "spool_record.h"

void
spool_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t
spool_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* writer side */

static int
put_u8(struct buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	return buf_append(b, &c, 1);
}

static int
put_u16(struct buf *b, unsigned v)
{
	unsigned char p[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	return buf_append(b, p, 2);
}

static int
put_u64(struct buf *b, uint64_t v)
{
	unsigned char p[8];

	spool_be64(p, v);
	return buf_append(b, p, 8);
}

static int
put_str(struct buf *b, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len > 0xffff)
		return -1;
	if (put_u16(b, (unsigned)len) == -1)
		return -1;
	return buf_append(b, s ? s : "", len);
}

/* reader side: a cursor that fails once and stays failed; strings are
 * copied into the record's one block (arena), which the decoded struct
 * keeps in its mem field */

struct rd {
	const unsigned char	*p;
	size_t			 left;
	int			 bad;
	char			*arena;
	size_t			 used, size;
};

static const unsigned char *
rd_take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static unsigned
get_u8(struct rd *r)
{
	const unsigned char *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static unsigned
get_u16(struct rd *r)
{
	const unsigned char *p = rd_take(r, 2);

	return p ? (unsigned)(p[0] << 8 | p[1]) : 0;
}

static uint64_t
get_u64(struct rd *r)
{
	const unsigned char *p = rd_take(r, 8);

	return p ? spool_get_be64(p) : 0;
}

static const char *
get_str(struct rd *r)
{
	size_t len = get_u16(r);
	const unsigned char *p = rd_take(r, len);
	char *s;

	if (p == NULL || r->size - r->used < len + 1) {
		r->bad = 1;
		return "";
	}
	s = r->arena + r->used;
	memcpy(s, p, len);
	s[len] = '\0';
	r->used += len + 1;
	return s;
}

/* rd_arena - room for n strings of the record (at most its length in all)
 * after reserve bytes for the caller; NULL when out of memory */
static void *
rd_arena(struct rd *r, size_t reserve, size_t n)
{
	r->size = reserve + r->left + n;
	if ((r->arena = malloc(r->size)) == NULL)
		return NULL;
	r->used = reserve;
	return r->arena;
}

/* envelope_nrcpts - the recipient count of an envelope record (read ahead,
 * to size its block); 0 if it is cut short */
static size_t
envelope_nrcpts(const void *data, size_t len)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };

	(void)rd_take(&r, 1 + 8 + 8 + 1 + 1);
	for (int i = 0; i < 4; i++)
		(void)rd_take(&r, get_u16(&r));
	return r.bad ? 0 : get_u16(&r);
}

int
spool_envelope_encode(const struct spool_envelope *e, struct buf *b)
{
	int rc = 0;

	rc |= put_u8(b, SPOOL_RECORD_VERSION);
	rc |= put_u64(b, (uint64_t)e->arrival);
	rc |= put_u64(b, e->size);
	rc |= put_u8(b, e->flags);
	rc |= put_u8(b, e->ret);
	rc |= put_str(b, e->sender);
	rc |= put_str(b, e->envid);
	rc |= put_str(b, e->client);
	rc |= put_str(b, e->helo);
	rc |= put_u16(b, (unsigned)e->nrcpts);
	for (size_t i = 0; i < e->nrcpts && rc == 0; i++) {
		rc |= put_str(b, e->rcpts[i].addr);
		rc |= put_str(b, e->rcpts[i].orcpt_type);
		rc |= put_str(b, e->rcpts[i].orcpt);
		rc |= put_u8(b, e->rcpts[i].notify);
		rc |= put_u8(b, e->rcpts[i].done);
	}
	return rc ? -1 : 0;
}

int
spool_envelope_decode(const void *data, size_t len, struct spool_envelope *e)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };
	size_t n = envelope_nrcpts(data, len), head = n * sizeof(struct spool_rcpt);

	memset(e, 0, sizeof(*e));
	/* the recipients first (aligned: malloc's), then 4 + 3 per recipient
	 * strings */
	if ((e->mem = rd_arena(&r, head, 4 + 3 * n)) == NULL)
		return -1;
	e->rcpts = n > 0 ? e->mem : NULL;
	memset(e->mem, 0, head);
	if (get_u8(&r) != SPOOL_RECORD_VERSION) {
		spool_envelope_free(e);
		return -1;
	}
	e->arrival = (int64_t)get_u64(&r);
	e->size = get_u64(&r);
	e->flags = get_u8(&r);
	e->ret = get_u8(&r);
	e->sender = get_str(&r);
	e->envid = get_str(&r);
	e->client = get_str(&r);
	e->helo = get_str(&r);
	if ((e->nrcpts = get_u16(&r)) != n)
		r.bad = 1;
	for (size_t i = 0; i < e->nrcpts && !r.bad; i++) {
		e->rcpts[i].addr = get_str(&r);
		e->rcpts[i].orcpt_type = get_str(&r);
		e->rcpts[i].orcpt = get_str(&r);
		e->rcpts[i].notify = get_u8(&r);
		e->rcpts[i].done = get_u8(&r);
	}
	if (r.bad) {
		spool_envelope_free(e);
		return -1;
	}
	return 0;
}

void
spool_envelope_free(struct spool_envelope *e)
{
	free(e->mem);
	memset(e, 0, sizeof(*e));
}

int
spool_qentry_encode(const struct spool_qentry *q, struct buf *b)
{
	int rc = 0;

	rc |= put_u8(b, QENTRY_RECORD_VERSION);
	rc |= put_u8(b, q->flags);
	rc |= put_u16(b, q->rcpt_index);
	rc |= put_u64(b, q->attempts);
	rc |= put_u64(b, (uint64_t)q->next_try);
	rc |= put_str(b, q->last_reply);
	return rc ? -1 : 0;
}

int
spool_qentry_decode(const void *data, size_t len, struct spool_qentry *q)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };
	unsigned version;

	memset(q, 0, sizeof(*q));
	if ((q->mem = rd_arena(&r, 0, 1)) == NULL)
		return -1;
	if ((version = get_u8(&r)) != 1 && version != QENTRY_RECORD_VERSION) {
		spool_qentry_free(q);
		return -1;
	}
	if (version >= 2)
		q->flags = get_u8(&r);
	q->rcpt_index = get_u16(&r);
	q->attempts = (uint32_t)get_u64(&r);
	q->next_try = (int64_t)get_u64(&r);
	q->last_reply = get_str(&r);
	if (r.bad) {
		spool_qentry_free(q);
		return -1;
	}
	return 0;
}

void
spool_qentry_free(struct spool_qentry *q)
{
	free(q->mem);
	q->mem = NULL;
	q->last_reply = NULL;
}

int
spool_route_encode(const struct spool_route *rt, struct buf *b)
{
	int rc = 0;

	rc |= put_u8(b, ROUTE_RECORD_VERSION);
	rc |= put_u8(b, rt->flags);
	rc |= put_u64(b, (uint64_t)rt->last_attempt);
	rc |= put_u64(b, (uint64_t)rt->next_try);
	rc |= put_u64(b, rt->failures);
	rc |= put_str(b, rt->last_error);
	return rc ? -1 : 0;
}

int
spool_route_decode(const void *data, size_t len, struct spool_route *rt)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };
	unsigned version;

	memset(rt, 0, sizeof(*rt));
	if ((rt->mem = rd_arena(&r, 0, 1)) == NULL)
		return -1;
	if ((version = get_u8(&r)) != 1 && version != ROUTE_RECORD_VERSION) {
		spool_route_free(rt);
		return -1;
	}
	if (version >= 2)
		rt->flags = get_u8(&r);
	rt->last_attempt = (int64_t)get_u64(&r);
	rt->next_try = (int64_t)get_u64(&r);
	rt->failures = (uint32_t)get_u64(&r);
	rt->last_error = get_str(&r);
	if (r.bad) {
		spool_route_free(rt);
		return -1;
	}
	return 0;
}

int
spool_verify_encode(const struct spool_verify *vr, struct buf *b)
{
	int rc = 0;

	rc |= put_u8(b, VERIFY_RECORD_VERSION);
	rc |= put_u8(b, vr->valid ? 1 : 0);
	rc |= put_u64(b, (uint64_t)vr->checked);
	rc |= put_u64(b, (uint64_t)vr->expires);
	rc |= put_str(b, vr->reply);
	return rc ? -1 : 0;
}

int
spool_verify_decode(const void *data, size_t len, struct spool_verify *vr)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };

	memset(vr, 0, sizeof(*vr));
	if ((vr->mem = rd_arena(&r, 0, 1)) == NULL)
		return -1;
	if (get_u8(&r) != VERIFY_RECORD_VERSION) {
		spool_verify_free(vr);
		return -1;
	}
	vr->valid = get_u8(&r) != 0;
	vr->checked = (int64_t)get_u64(&r);
	vr->expires = (int64_t)get_u64(&r);
	vr->reply = get_str(&r);
	if (r.bad) {
		spool_verify_free(vr);
		return -1;
	}
	return 0;
}

void
spool_verify_free(struct spool_verify *vr)
{
	free(vr->mem);
	vr->mem = NULL;
	vr->reply = NULL;
}

void
spool_route_free(struct spool_route *rt)
{
	free(rt->mem);
	rt->mem = NULL;
	rt->last_error = NULL;
}

int
spool_quarantine_encode(const struct spool_quarantine *q, struct buf *b)
{
	int rc = 0;

	rc |= put_u8(b, QUARANTINE_RECORD_VERSION);
	rc |= put_u64(b, (uint64_t)q->since);
	rc |= put_str(b, q->reason);
	return rc ? -1 : 0;
}

int
spool_quarantine_decode(const void *data, size_t len, struct spool_quarantine *q)
{
	struct rd r = { data, len, 0, NULL, 0, 0 };

	memset(q, 0, sizeof(*q));
	if ((q->mem = rd_arena(&r, 0, 1)) == NULL)
		return -1;
	if (get_u8(&r) != QUARANTINE_RECORD_VERSION) {
		spool_quarantine_free(q);
		return -1;
	}
	q->since = (int64_t)get_u64(&r);
	q->reason = get_str(&r);
	if (r.bad) {
		spool_quarantine_free(q);
		return -1;
	}
	return 0;
}

void
spool_quarantine_free(struct spool_quarantine *q)
{
	free(q->mem);
	q->mem = NULL;
	q->reason = NULL;
}

void
spool_counters_encode(const struct spool_counters *c, unsigned char out[SPOOL_COUNTERS_LEN])
{
	out[0] = SPOOL_RECORD_VERSION;
	spool_be64(out + 1, c->messages);
	spool_be64(out + 9, c->bytes);
	spool_be64(out + 17, (uint64_t)c->oldest);
}

int
spool_counters_decode(const void *data, size_t len, struct spool_counters *c)
{
	const unsigned char *p = data;

	if (len != SPOOL_COUNTERS_LEN || p[0] != SPOOL_RECORD_VERSION)
		return -1;
	c->messages = spool_get_be64(p + 1);
	c->bytes = spool_get_be64(p + 9);
	c->oldest = (int64_t)spool_get_be64(p + 17);
	return 0;
}

size_t
spool_bkey(unsigned char key[SPOOL_BKEY_LEN], uint64_t id, uint32_t chunk)
{
	spool_be64(key, id);
	key[8] = (unsigned char)(chunk >> 24);
	key[9] = (unsigned char)(chunk >> 16);
	key[10] = (unsigned char)(chunk >> 8);
	key[11] = (unsigned char)chunk;
	return SPOOL_BKEY_LEN;
}

size_t
spool_qkey(unsigned char *key, const char *domain, uint64_t id, unsigned index)
{
	size_t dlen = strlen(domain);

	memcpy(key, domain, dlen);
	key[dlen] = '\0';
	spool_be64(key + dlen + 1, id);
	key[dlen + 9] = (unsigned char)(index >> 8);
	key[dlen + 10] = (unsigned char)index;
	return dlen + 11;
}

int
spool_qkey_parse(const void *data, size_t len, const char **domain, size_t *dlen,
    uint64_t *id, unsigned *index)
{
	const unsigned char *k = data;
	const unsigned char *nul = memchr(k, '\0', len);

	if (nul == NULL || (size_t)(k + len - nul) != 11)
		return -1;
	*domain = (const char *)k;
	*dlen = (size_t)(nul - k);
	*id = spool_get_be64(nul + 1);
	*index = (unsigned)(nul[9] << 8 | nul[10]);
	return 0;
}

const char *
spool_rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

int
spool_verify_key_of(const char *arg, char *key, size_t len)
{
	size_t n = strlen(arg), i = 0;
	const char *at;

	if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
		arg++;
		n -= 2;
	}
	if (n == 0 || n >= len || n > SPOOL_VERIFY_KEY_MAX)
		return -1;
	for (size_t k = 0; k < n; k++) {
		if ((unsigned char)arg[k] < 0x20 || arg[k] == 0x7f)
			return -1;
		key[k] = (char)(arg[k] >= 'A' && arg[k] <= 'Z' ? arg[k] + 32 : arg[k]);
	}
	key[n] = '\0';
	if (key[0] == '"') {	/* RFC 5321 4.1.2 Quoted-string, as the RCPT parser keeps it */
		for (i = 1; i < n && key[i] != '"'; i++)
			if (key[i] == '\\' && ++i == n)
				return -1;
		if (i++ >= n)
			return -1;	/* not closed */
	}
	at = i > 0 ? key + i : strrchr(key, '@');	/* a quoted local part ends at its '@' */
	if (at == NULL || *at != '@' || at == key || at[1] == '\0' ||
	    strpbrk(key + i, " <>\"") != NULL)
		return -1;
	return 0;
}
