/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_spool.c - unit tests for the LMDB spool (spoold/spool.c) and its
 * record layout (spoold/spool_record.c): put/list/walk/read/delete, domain
 * counters, the id counter across reopen, a bad body failing alone, map
 * full at max-spool-size, and encode/decode of every record.  Each test
 * works in its own mkdtemp directory.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "smtp_cmd.h"		/* RET_*, NOTIFY_*: constants only */
#include "spool.h"
#include "spool_record.h"

#include <lmdb.h>		/* to write a broken record behind the spool's back */

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MiB		(1024ULL * 1024)

/* ---- fixtures ---- */

static char dir[64];

static void
make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/spoold-test-spool-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
remove_dir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

static struct spool *
open_spool(uint64_t max_size)
{
	struct spool *sp;
	char err[256] = "";
	enum spool_err rc = spool_open(&sp, dir, max_size, 0, err, sizeof(err));

	ck_assert_msg(rc == SPOOL_OK && sp != NULL, "spool_open %s: %s (%s)", dir, spool_strerror(rc), err);
	return sp;
}

/* ---- the spool's changes, one at a time (spoold applies them in batches
 * through the committer; these are the tests' shorthand) ---- */

static enum spool_err
apply_one(struct spool *sp, const struct spool_change *ch)
{
	enum spool_err result;

	spool_apply_changes(sp, &ch, 1, &result);
	return result;
}

/* spool_rcpts_done - recipients idx[0..n) of id are finished */
static enum spool_err
spool_rcpts_done(struct spool *sp, uint64_t id, const unsigned *idx, size_t n)
{
	struct spool_change ch = { .kind = CHANGE_DONE, .id = id, .idx = idx, .nidx = n };

	return apply_one(sp, &ch);
}

/* spool_rcpt_defer - recipient index of id (under domain) stays, with reply */
static enum spool_err
spool_rcpt_defer(struct spool *sp, uint64_t id, const char *domain, unsigned index,
    const char *reply, int64_t next_try)
{
	struct spool_change ch = { .kind = CHANGE_DEFER, .id = id, .domain = domain,
	    .index = index, .reply = reply, .next_try = next_try };

	return apply_one(sp, &ch);
}

/* The queue entry of one recipient, found by walking its domain. */
struct find_qentry {
	uint64_t		 id;
	unsigned		 index;
	struct spool_qentry	*q;
	int			 found;
};

static int
find_qentry_cb(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *q,
    size_t nidx, void *arg)
{
	struct find_qentry *f = arg;

	for (size_t i = 0; e->id == f->id && i < nidx; i++)
		if (idx[i] == f->index) {
			*f->q = q[i];	/* a copy that owns its reply: the walk frees q's */
			f->q->mem = strdup(q[i].last_reply ? q[i].last_reply : "");
			f->q->last_reply = f->q->mem;
			f->found = 1;
			return 1;
		}
	return 0;
}

static enum spool_err
spool_get_qentry(struct spool *sp, uint64_t id, const char *domain, unsigned index,
    struct spool_qentry *q)
{
	struct find_qentry f = { id, index, q, 0 };
	enum spool_err rc = spool_domain_walk(sp, domain, find_qentry_cb, &f);

	return rc != SPOOL_OK ? rc : f.found ? SPOOL_OK : SPOOL_ENOTFOUND;
}

/* A message under construction: envelope, recipients and an in-memory body. */
struct tmsg {
	struct spool_newmsg	 m;
	struct spool_rcpt	 rcpts[4];
	char			*body;
	int			 fail;		/* read_body returns -1 */
};

static int
read_mem(void *arg, uint64_t off, void *dst, size_t len)
{
	struct tmsg *t = arg;

	if (t->fail)
		return -1;
	ck_assert_uint_le(off + len, t->m.env.size);
	memcpy(dst, t->body + off, len);
	return 0;
}

/* body_byte - a pattern that differs in every position of a 64 KiB chunk
 * and from chunk to chunk */
static char
body_byte(uint64_t id, uint64_t i)
{
	return (char)((i * 131 + i / SPOOL_CHUNK * 7 + id * 13) & 0xff);
}

/* tmsg_init - message id with size bytes of body and the given recipients */
static void
tmsg_init(struct tmsg *t, uint64_t id, int64_t arrival, size_t size, const char *const *rcpts, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->body = malloc(size ? size : 1);
	ck_assert_ptr_nonnull(t->body);
	for (size_t i = 0; i < size; i++)
		t->body[i] = body_byte(id, i);
	t->m.env.id = id;
	t->m.env.arrival = arrival;
	t->m.env.size = size;
	t->m.env.sender = "sender@origin.example";
	t->m.env.envid = "";
	t->m.env.client = "192.0.2.10";
	t->m.env.helo = "client.origin.example";
	ck_assert_uint_le(n, NELEM(t->rcpts));
	for (size_t i = 0; i < n; i++) {
		t->rcpts[i].addr = rcpts[i];
		t->rcpts[i].orcpt_type = "";
		t->rcpts[i].orcpt = "";
	}
	t->m.env.rcpts = t->rcpts;
	t->m.env.nrcpts = n;
	t->m.read_body = read_mem;
	t->m.body_arg = t;
}

static void
tmsg_free(struct tmsg *t)
{
	free(t->body);
	t->body = NULL;
}

/* put - store msgs[0..n) in one batch; results in res */
static enum spool_err
put(struct spool *sp, struct tmsg *msgs, size_t n, enum spool_err *res)
{
	struct spool_newmsg *list[16];

	ck_assert_uint_le(n, NELEM(list));
	for (size_t i = 0; i < n; i++)
		list[i] = &msgs[i].m;
	return spool_put_messages(sp, list, n, res);
}

/* check_body - the stored body of t reads back intact */
static void
check_body(struct spool *sp, const struct tmsg *t)
{
	size_t size = (size_t)t->m.env.size;
	char *got = malloc(size ? size : 1);
	enum spool_err rc;

	ck_assert_ptr_nonnull(got);
	rc = spool_read_body(sp, t->m.env.id, 0, got, size);
	ck_assert_msg(rc == SPOOL_OK, "id %llu: read_body: %s", (unsigned long long)t->m.env.id,
	    spool_strerror(rc));
	ck_assert_msg(memcmp(got, t->body, size) == 0, "id %llu: body differs",
	    (unsigned long long)t->m.env.id);
	free(got);
}

/* ---- the three-message scenario ----
 *   id 1, arrival 1000, 7 bytes:   u1@one, u2@one, u3@two
 *   id 2, arrival 1001, 100 bytes: u4@two
 *   id 3, arrival 1002, 200 KiB:   u5@one
 */
static const char *const rcpts1[] = { "u1@one.example", "u2@one.example", "u3@two.example" };
static const char *const rcpts2[] = { "u4@two.example" };
static const char *const rcpts3[] = { "u5@one.example" };
#define BIG	(200 * 1024 + 17)

static void
three_init(struct tmsg *m)
{
	tmsg_init(&m[0], 1, 1000, 7, rcpts1, 3);
	tmsg_init(&m[1], 2, 1001, 100, rcpts2, 1);
	tmsg_init(&m[2], 3, 1002, BIG, rcpts3, 1);
}

static void
three_put(struct spool *sp, struct tmsg *m)
{
	enum spool_err res[3];

	three_init(m);
	ck_assert_int_eq(put(sp, m, 3, res), SPOOL_OK);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(res[i], SPOOL_OK);
}

static void
three_free(struct tmsg *m)
{
	for (size_t i = 0; i < 3; i++)
		tmsg_free(&m[i]);
}

/* domain list recorder */
struct dlist {
	char			name[8][64];
	struct spool_counters	c[8];
	size_t			n;
	size_t			stop_after;	/* 0: never */
};

static int
dlist_cb(const struct spool_domain_info *di, void *arg)
{
	struct dlist *l = arg;

	ck_assert_uint_lt(l->n, NELEM(l->name));
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", di->domain);
	l->c[l->n++] = di->counters;
	return l->stop_after && l->n >= l->stop_after;
}

static void
check_counters(const struct spool_counters *c, uint64_t messages, uint64_t bytes, int64_t oldest,
    const char *what)
{
	ck_assert_msg(c->messages == messages, "%s: messages %llu, want %llu", what,
	    (unsigned long long)c->messages, (unsigned long long)messages);
	ck_assert_msg(c->bytes == bytes, "%s: bytes %llu, want %llu", what,
	    (unsigned long long)c->bytes, (unsigned long long)bytes);
	ck_assert_msg(c->oldest == oldest, "%s: oldest %lld, want %lld", what,
	    (long long)c->oldest, (long long)oldest);
}

/* walk recorder: "id:idx,idx;" per message */
struct wlog {
	char	text[512];
	size_t	calls;
	size_t	stop_after;
};

static int
walk_cb(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *q,
    size_t nidx, void *arg)
{
	struct wlog *w = arg;
	size_t len = strlen(w->text);

	snprintf(w->text + len, sizeof(w->text) - len, "%llu:", (unsigned long long)e->id);
	for (size_t i = 0; i < nidx; i++) {
		len = strlen(w->text);
		snprintf(w->text + len, sizeof(w->text) - len, "%s%u", i ? "," : "", idx[i]);
		/* the index names a recipient of this domain */
		ck_assert_uint_lt(idx[i], e->nrcpts);
	}
	len = strlen(w->text);
	snprintf(w->text + len, sizeof(w->text) - len, ";");
	ck_assert_str_eq(e->sender, "sender@origin.example");
	w->calls++;
	return w->stop_after && w->calls >= w->stop_after;
}

static const char *
walk(struct spool *sp, const char *domain, struct wlog *w)
{
	enum spool_err rc;

	rc = spool_domain_walk(sp, domain, walk_cb, w);
	ck_assert_msg(rc == SPOOL_OK, "walk %s: %s", domain, spool_strerror(rc));
	return w->text;
}

/* ---- spool tests ---- */

START_TEST(test_put_list_walk)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct dlist l = { .n = 0 };
	struct wlog w = { .calls = 0 };
	struct spool_counters c;
	struct spool_stats st;

	three_put(sp, m);
	ck_assert_int_eq(spool_domain_list(sp, dlist_cb, &l), SPOOL_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.name[0], "one.example");
	ck_assert_str_eq(l.name[1], "two.example");
	check_counters(&l.c[0], 2, 7 + BIG, 1000, "one.example");
	check_counters(&l.c[1], 2, 7 + 100, 1000, "two.example");

	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 2, 7 + BIG, 1000, "counters one.example");
	ck_assert_int_eq(spool_domain_counters(sp, "none.example", &c), SPOOL_OK);
	check_counters(&c, 0, 0, 0, "counters none.example");

	ck_assert_str_eq(walk(sp, "one.example", &w), "1:0,1;3:0;");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "two.example", &w), "1:2;2:0;");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "none.example", &w), "");
	ck_assert_uint_eq(w.calls, 0);
	/* a prefix or an extension of a domain is another domain */
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "one.exampl", &w), "");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "one.example.net", &w), "");

	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_eq(st.messages, 3);
	ck_assert_uint_eq(st.domains, 2);
	ck_assert_uint_eq(st.map_max, 64 * MiB);
	ck_assert_uint_ge(st.map_size, st.map_used);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* a non-zero return from a callback stops the walk or the listing */
START_TEST(test_callbacks_stop)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct dlist l = { .stop_after = 1 };
	struct wlog w = { .stop_after = 1 };
	/* a walk in slices goes on after the last domain it saw */
	static const struct { const char *after; size_t n; const char *first; } slices[] = {
		{ "", 2, "one.example" }, { "one.example", 1, "two.example" },
		{ "o", 2, "one.example" }, { "one.examplf", 1, "two.example" },
		{ "two.example", 0, NULL }, { "zzz", 0, NULL },
	};

	three_put(sp, m);
	ck_assert_int_eq(spool_domain_list(sp, dlist_cb, &l), SPOOL_OK);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(walk(sp, "one.example", &w), "1:0,1;");
	ck_assert_uint_eq(w.calls, 1);
	for (size_t i = 0; i < NELEM(slices); i++) {
		struct dlist s = { .n = 0 };

		ck_assert_int_eq(spool_domain_list_after(sp, slices[i].after, dlist_cb, &s), SPOOL_OK);
		ck_assert_msg(s.n == slices[i].n, "after \"%s\": %zu domains", slices[i].after, s.n);
		if (s.n > 0)
			ck_assert_str_eq(s.name[0], slices[i].first);
	}
	three_free(m);
	spool_close(sp);
}
END_TEST

/* messages with recipients in several domains, interleaved ids */
START_TEST(test_walk_many)
{
	struct spool *sp = open_spool(64 * MiB);
	static const char *const a[] = { "x@a.example" };
	static const char *const ab[] = { "x@b.example", "y@a.example", "z@b.example", "w@a.example" };
	struct tmsg m[10];
	enum spool_err res[10];
	struct wlog w = { .calls = 0 };

	for (size_t i = 0; i < 10; i++)
		tmsg_init(&m[i], 100 + i, 5000 + (int64_t)i, 10, i % 2 ? ab : a, i % 2 ? 4 : 1);
	ck_assert_int_eq(put(sp, m, 10, res), SPOOL_OK);
	ck_assert_str_eq(walk(sp, "a.example", &w),
	    "100:0;101:1,3;102:0;103:1,3;104:0;105:1,3;106:0;107:1,3;108:0;109:1,3;");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "b.example", &w), "101:0,2;103:0,2;105:0,2;107:0,2;109:0,2;");
	for (size_t i = 0; i < 10; i++)
		tmsg_free(&m[i]);
	spool_close(sp);
}
END_TEST

START_TEST(test_read_body)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	const struct tmsg *big = &m[2];
	static const struct { uint64_t off; size_t len; } reads[] = {
		{ 0, 1 }, { 0, SPOOL_CHUNK }, { SPOOL_CHUNK - 6, 20 }, { SPOOL_CHUNK, 1 },
		{ SPOOL_CHUNK - 1, 2 }, { 2 * SPOOL_CHUNK - 1, 2 }, { 1, 2 * SPOOL_CHUNK + 5 },
		{ 3 * SPOOL_CHUNK, BIG - 3 * SPOOL_CHUNK }, { BIG - 1, 1 }, { 12345, 0 },
	};
	char *buf = malloc(BIG);
	enum spool_err rc;

	ck_assert_ptr_nonnull(buf);
	three_put(sp, m);
	for (size_t i = 0; i < 3; i++)
		check_body(sp, &m[i]);
	for (size_t i = 0; i < NELEM(reads); i++) {
		memset(buf, 0, BIG);
		rc = spool_read_body(sp, 3, reads[i].off, buf, reads[i].len);
		ck_assert_msg(rc == SPOOL_OK, "read %zu: %s", i, spool_strerror(rc));
		ck_assert_msg(memcmp(buf, big->body + reads[i].off, reads[i].len) == 0, "read %zu differs", i);
	}
	/* in odd-sized pieces, as a delivery would */
	for (uint64_t off = 0; off < BIG; off += 9973) {
		size_t len = BIG - off < 9973 ? (size_t)(BIG - off) : 9973;

		ck_assert_int_eq(spool_read_body(sp, 3, off, buf, len), SPOOL_OK);
		ck_assert_int_eq(memcmp(buf, big->body + off, len), 0);
	}
	ck_assert_int_eq(spool_read_body(sp, 99, 0, buf, 1), SPOOL_ENOTFOUND);
	ck_assert_int_ne(spool_read_body(sp, 3, BIG, buf, 1), SPOOL_OK);
	ck_assert_int_ne(spool_read_body(sp, 3, BIG - 1, buf, 2), SPOOL_OK);
	ck_assert_int_ne(spool_read_body(sp, 1, 0, buf, 8), SPOOL_OK);
	free(buf);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* bodies of 0 bytes and of exact multiples of the chunk size */
START_TEST(test_body_sizes)
{
	static const size_t sizes[] = { 0, 1, SPOOL_CHUNK - 1, SPOOL_CHUNK, SPOOL_CHUNK + 1, 2 * SPOOL_CHUNK };
	static const char *const r[] = { "a@sizes.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[NELEM(sizes)];
	enum spool_err res[NELEM(sizes)];
	struct spool_counters c;
	uint64_t total = 0;
	char one;

	for (size_t i = 0; i < NELEM(sizes); i++) {
		tmsg_init(&m[i], i + 1, 100, sizes[i], r, 1);
		total += sizes[i];
	}
	ck_assert_int_eq(put(sp, m, NELEM(sizes), res), SPOOL_OK);
	for (size_t i = 0; i < NELEM(sizes); i++)
		check_body(sp, &m[i]);
	ck_assert_int_eq(spool_read_body(sp, 1, 0, &one, 0), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "sizes.example", &c), SPOOL_OK);
	check_counters(&c, NELEM(sizes), total, 100, "sizes.example");
	for (size_t i = 0; i < NELEM(sizes); i++) {
		ck_assert_int_eq(spool_delete_message(sp, i + 1), SPOOL_OK);
		tmsg_free(&m[i]);
	}
	ck_assert_int_eq(spool_domain_counters(sp, "sizes.example", &c), SPOOL_OK);
	check_counters(&c, 0, 0, 0, "sizes.example after delete");
	spool_close(sp);
}
END_TEST

START_TEST(test_envelope_round_trip)
{
	static const char *const r[] = { "first@one.example", "second@two.example", "third@one.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg t;
	struct spool_envelope e;
	enum spool_err res[1];

	tmsg_init(&t, 42, 1700000000, 5, r, 3);
	t.m.env.sender = "";		/* <> */
	t.m.env.envid = "QQ314159+id";
	t.m.env.flags = ENV_SMTPUTF8 | ENV_8BITMIME | ENV_8BIT_SEEN;
	t.m.env.ret = RET_HDRS;
	t.m.env.client = "2001:db8::7";
	t.m.env.helo = "[IPv6:2001:db8::7]";
	t.rcpts[0].orcpt_type = "rfc822";
	t.rcpts[0].orcpt = "first@orig.example";
	t.rcpts[0].notify = NOTIFY_SUCCESS | NOTIFY_FAILURE;
	t.rcpts[1].notify = NOTIFY_NEVER;
	t.rcpts[2].orcpt_type = "utf-8";
	t.rcpts[2].orcpt = "th\xc3\xafrd@orig.example";
	t.rcpts[2].notify = NOTIFY_DELAY;
	ck_assert_int_eq(put(sp, &t, 1, res), SPOOL_OK);

	ck_assert_int_eq(spool_get_envelope(sp, 42, &e), SPOOL_OK);
	ck_assert_uint_eq(e.id, 42);
	ck_assert_int_eq(e.arrival, 1700000000);
	ck_assert_uint_eq(e.size, 5);
	ck_assert_uint_eq(e.flags, ENV_SMTPUTF8 | ENV_8BITMIME | ENV_8BIT_SEEN);
	ck_assert_uint_eq(e.ret, RET_HDRS);
	ck_assert_str_eq(e.sender, "");
	ck_assert_str_eq(e.envid, "QQ314159+id");
	ck_assert_str_eq(e.client, "2001:db8::7");
	ck_assert_str_eq(e.helo, "[IPv6:2001:db8::7]");
	ck_assert_uint_eq(e.nrcpts, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(e.rcpts[i].addr, r[i]);
		ck_assert_str_eq(e.rcpts[i].orcpt_type, t.rcpts[i].orcpt_type);
		ck_assert_str_eq(e.rcpts[i].orcpt, t.rcpts[i].orcpt);
		ck_assert_uint_eq(e.rcpts[i].notify, t.rcpts[i].notify);
		ck_assert_uint_eq(e.rcpts[i].done, 0);
	}
	spool_envelope_free(&e);
	ck_assert_ptr_null(e.rcpts);
	ck_assert_int_eq(spool_get_envelope(sp, 43, &e), SPOOL_ENOTFOUND);
	tmsg_free(&t);
	spool_close(sp);
}
END_TEST

START_TEST(test_delete)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct dlist l = { .n = 0 };
	struct wlog w = { .calls = 0 };
	struct spool_envelope e;
	struct spool_counters c;
	char byte;

	three_put(sp, m);
	ck_assert_int_eq(spool_delete_message(sp, 1), SPOOL_OK);
	ck_assert_int_eq(spool_domain_list(sp, dlist_cb, &l), SPOOL_OK);
	ck_assert_uint_eq(l.n, 2);
	check_counters(&l.c[0], 1, BIG, 1002, "one.example after 1");
	check_counters(&l.c[1], 1, 100, 1001, "two.example after 1");
	ck_assert_str_eq(walk(sp, "one.example", &w), "3:0;");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "two.example", &w), "2:0;");
	ck_assert_int_eq(spool_get_envelope(sp, 1, &e), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_read_body(sp, 1, 0, &byte, 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_delete_message(sp, 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_delete_message(sp, 99), SPOOL_ENOTFOUND);

	/* the domain record goes with its last message */
	ck_assert_int_eq(spool_delete_message(sp, 2), SPOOL_OK);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(spool_domain_list(sp, dlist_cb, &l), SPOOL_OK);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.name[0], "one.example");
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 0, 0, 0, "two.example after 2");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "two.example", &w), "");

	/* message 3 is untouched */
	check_body(sp, &m[2]);
	ck_assert_int_eq(spool_delete_message(sp, 3), SPOOL_OK);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(spool_domain_list(sp, dlist_cb, &l), SPOOL_OK);
	ck_assert_uint_eq(l.n, 0);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* quarantine records */
static int
qwalk_cb(const struct spool_envelope *e, const struct spool_quarantine *q, void *arg)
{
	struct wlog *w = arg;
	size_t len = strlen(w->text);

	snprintf(w->text + len, sizeof(w->text) - len, "%llu:%s;", (unsigned long long)e->id,
	    q->reason);
	w->calls++;
	return 0;
}

/* a quarantined message: stored with its body, in no queue and no
 * counter; never part of a DONE (no bounce); released into the queue as
 * at arrival; deleted without touching any counter; expired by age */
START_TEST(test_quarantine)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct wlog w = { .calls = 0 };
	struct spool_counters c;
	struct spool_stats st;
	struct spool_quarantine q;
	enum spool_err res[3];
	const unsigned u1 = 0;
	uint64_t *ids;
	size_t n;

	three_init(m);
	m[0].m.quarantine = "milter a: spam";
	m[0].m.env.flags |= ENV_UNSCANNED;	/* a filter down, another held it */
	m[1].m.quarantine = "milter b: virus";
	ck_assert_int_eq(put(sp, m, 3, res), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 1, BIG, 1002, "one.example: only the queued message");
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 0, 0, 0, "two.example: nothing queued");
	ck_assert_str_eq(walk(sp, "one.example", &w), "3:0;");
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(spool_quarantine_walk(sp, qwalk_cb, &w), SPOOL_OK);
	ck_assert_str_eq(w.text, "1:milter a: spam;2:milter b: virus;");
	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_eq(st.messages, 3);
	ck_assert_uint_eq(st.quarantined, 2);
	check_body(sp, &m[0]);
	ck_assert_int_eq(spool_get_quarantine(sp, 1, &q), SPOOL_OK);
	ck_assert_int_eq(q.since, 1000);
	spool_quarantine_free(&q);
	ck_assert_int_eq(spool_get_quarantine(sp, 3, NULL), SPOOL_ENOTFOUND);

	/* no bounce of a quarantined message: nothing changes */
	ck_assert_int_eq(spool_rcpts_done(sp, 1, &u1, 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_get_quarantine(sp, 1, NULL), SPOOL_OK);

	/* expiry: the ones quarantined before the time given */
	ck_assert_int_eq(spool_quarantine_expired(sp, 1001, &ids, &n), SPOOL_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], 1);
	free(ids);

	/* release: queued, its age counted from the release (a message held
	 * longer than max-age must not bounce at once), no second look */
	{
		time_t before = time(NULL);
		struct spool_envelope e;

		ck_assert_int_eq(spool_release_message(sp, 1), SPOOL_OK);
		ck_assert_int_eq(spool_get_envelope(sp, 1, &e), SPOOL_OK);
		ck_assert_int_ge(e.arrival, before);
		ck_assert_int_eq(e.flags & ENV_UNSCANNED, 0);
		spool_envelope_free(&e);
		ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
		ck_assert_uint_eq(c.messages, 1);
		ck_assert_uint_eq(c.bytes, 7);
		ck_assert_int_ge(c.oldest, before);
	}
	ck_assert_int_eq(spool_release_message(sp, 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_release_message(sp, 3), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 2, 7 + BIG, 1002, "one.example after the release");
	memset(&w, 0, sizeof(w));
	ck_assert_str_eq(walk(sp, "one.example", &w), "1:0,1;3:0;");
	/* an expiry that comes after the release leaves the message alone */
	{
		struct spool_change ch = { .kind = CHANGE_DELETE, .id = 1, .if_quarantined = 1 };
		const struct spool_change *list = &ch;
		enum spool_err r;

		spool_apply_changes(sp, &list, 1, &r);
		ck_assert_int_eq(r, SPOOL_ENOTFOUND);
		memset(&w, 0, sizeof(w));
		ck_assert_str_eq(walk(sp, "one.example", &w), "1:0,1;3:0;");
	}

	/* delete of a quarantined one: its record and body go, no counter moves */
	ck_assert_int_eq(spool_delete_message(sp, 2), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	ck_assert_uint_eq(c.messages, 1);	/* the released one, aged from its release */
	ck_assert_uint_eq(c.bytes, 7);
	ck_assert_int_gt(c.oldest, 1000);
	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_eq(st.messages, 2);
	ck_assert_uint_eq(st.quarantined, 0);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(spool_quarantine_walk(sp, qwalk_cb, &w), SPOOL_OK);
	ck_assert_str_eq(w.text, "");
	three_free(m);
	spool_close(sp);
}
END_TEST

/* recipients finish one by one: counters follow, the message goes last */
START_TEST(test_rcpts_done)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct wlog w = { .calls = 0 };
	struct spool_envelope e;
	struct spool_counters c;
	const unsigned u1 = 0, u2_u3[] = { 1, 2 };
	char byte;

	three_put(sp, m);
	/* u1@one of message 1: u2@one still pending, so one.example keeps it */
	ck_assert_int_eq(spool_rcpts_done(sp, 1, &u1, 1), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 2, 7 + BIG, 1000, "one.example after u1");
	ck_assert_str_eq(walk(sp, "one.example", &w), "1:1;3:0;");
	ck_assert_int_eq(spool_get_envelope(sp, 1, &e), SPOOL_OK);
	ck_assert_uint_eq(e.rcpts[0].done, 1);
	ck_assert_uint_eq(e.rcpts[1].done, 0);
	spool_envelope_free(&e);
	/* done again: skipped, nothing changes */
	ck_assert_int_eq(spool_rcpts_done(sp, 1, &u1, 1), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 2, 7 + BIG, 1000, "one.example after u1 twice");
	/* u2 and u3: the message is gone, oldest of one.example moves to 3 */
	ck_assert_int_eq(spool_rcpts_done(sp, 1, u2_u3, 2), SPOOL_OK);
	ck_assert_int_eq(spool_get_envelope(sp, 1, &e), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_read_body(sp, 1, 0, &byte, 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 1, BIG, 1002, "one.example after message 1");
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 1, 100, 1001, "two.example after message 1");
	ck_assert_int_eq(spool_rcpts_done(sp, 1, &u1, 1), SPOOL_ENOTFOUND);
	check_body(sp, &m[2]);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* a DONE change with a DSN: the recipients go and the DSN is stored in the
 * same transaction; if the DSN cannot be stored, the recipients stay */
START_TEST(test_done_with_dsn)
{
	static const char *const to_sender[] = { "sender@origin.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3], dsn;
	struct spool_counters c;
	const unsigned u3 = 2, u4 = 0;
	struct spool_change ch = { .kind = CHANGE_DONE, .id = 1, .idx = &u3, .nidx = 1 };
	const struct spool_change *list = &ch;
	enum spool_err res;
	uint64_t id;

	three_put(sp, m);
	tmsg_init(&dsn, 7, 2000, 300, to_sender, 1);
	dsn.m.env.sender = "";
	ch.dsn = &dsn.m;
	ck_assert_int_eq(spool_apply_changes(sp, &list, 1, &res), SPOOL_OK);
	ck_assert_int_eq(res, SPOOL_OK);
	check_body(sp, &dsn);
	ck_assert_int_eq(spool_domain_counters(sp, "origin.example", &c), SPOOL_OK);
	check_counters(&c, 1, 300, 2000, "origin.example holds the DSN");
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 1, 100, 1001, "two.example after the bounce of u3");
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 8);
	tmsg_free(&dsn);

	/* the DSN's body cannot be read: nothing changes */
	tmsg_init(&dsn, 8, 2001, 10, to_sender, 1);
	dsn.fail = 1;
	ch.id = 2;
	ch.idx = &u4;
	ch.dsn = &dsn.m;
	ck_assert_int_ne(spool_apply_changes(sp, &list, 1, &res), SPOOL_OK);
	ck_assert_int_ne(res, SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 1, 100, 1001, "two.example keeps message 2");
	ck_assert_int_eq(spool_domain_counters(sp, "origin.example", &c), SPOOL_OK);
	check_counters(&c, 1, 300, 2000, "origin.example: still one DSN");
	tmsg_free(&dsn);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* the ids of a domain's messages, once each, oldest first */
START_TEST(test_domain_ids)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	uint64_t *ids;
	size_t n;

	three_put(sp, m);
	ck_assert_int_eq(spool_domain_ids(sp, "one.example", &ids, &n), SPOOL_OK);
	ck_assert_uint_eq(n, 2);	/* message 1 has two recipients there */
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 3);
	free(ids);
	ck_assert_int_eq(spool_domain_ids(sp, "two.example", &ids, &n), SPOOL_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	free(ids);
	ck_assert_int_eq(spool_domain_ids(sp, "one.exampl", &ids, &n), SPOOL_OK);
	ck_assert_uint_eq(n, 0);
	free(ids);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* corrupt_counters - write a counter record for domain that does not
 * decode, with LMDB directly (what a bad disk or a bug would leave) */
static void
corrupt_counters(const char *domain)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char key[64], bad[] = "bad";
	MDB_val k = { strlen(domain), key }, v = { 3, bad };

	snprintf(key, sizeof(key), "%s", domain);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "domain", 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* a malformed counter record is a data error (SPOOL_EFORMAT), never an I/O
 * error: spoold stops and exits on SPOOL_EIO, and would again after every
 * restart; mail for other domains is stored as ever */
START_TEST(test_bad_counter_record)
{
	static const char *const to_two[] = { "u9@two.example" };
	static const char *const to_one[] = { "u8@one.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct spool_counters c;
	enum spool_err res[2];
	struct tmsg m[3], more[2];

	three_put(sp, m);
	spool_close(sp);
	corrupt_counters("two.example");
	sp = open_spool(64 * MiB);
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_EFORMAT);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	tmsg_init(&more[0], 10, 2000, 5, to_two, 1);
	tmsg_init(&more[1], 11, 2001, 5, to_one, 1);
	put(sp, more, 2, res);
	ck_assert_int_eq(res[0], SPOOL_EFORMAT);
	ck_assert_int_eq(res[1], SPOOL_OK);
	ck_assert_int_eq(spool_rcpts_done(sp, 2, (const unsigned[]){ 0 }, 1), SPOOL_EFORMAT);
	tmsg_free(&more[0]);
	tmsg_free(&more[1]);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* a deferred recipient keeps its place and records the reply */
START_TEST(test_rcpt_defer)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct spool_qentry q;
	struct spool_counters c;

	three_put(sp, m);
	ck_assert_int_eq(spool_rcpt_defer(sp, 1, "two.example", 2, "451 4.3.0 try later", 5000), SPOOL_OK);
	ck_assert_int_eq(spool_rcpt_defer(sp, 1, "two.example", 2, "452 4.2.2 full", 6000), SPOOL_OK);
	ck_assert_int_eq(spool_get_qentry(sp, 1, "two.example", 2, &q), SPOOL_OK);
	ck_assert_uint_eq(q.attempts, 2);
	ck_assert_int_eq(q.next_try, 6000);
	ck_assert_str_eq(q.last_reply, "452 4.2.2 full");
	spool_qentry_free(&q);
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 2, 107, 1000, "two.example unchanged");
	ck_assert_int_eq(spool_rcpt_defer(sp, 1, "one.example", 2, "x", 1), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_rcpt_defer(sp, 9, "two.example", 0, "x", 1), SPOOL_ENOTFOUND);
	three_free(m);
	spool_close(sp);
}
END_TEST

/* deleting the newest message leaves "oldest" alone; the oldest moves it */
START_TEST(test_delete_oldest_moves)
{
	static const char *const r[] = { "a@q.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[4];
	enum spool_err res[4];
	struct spool_counters c;

	for (size_t i = 0; i < 4; i++)
		tmsg_init(&m[i], i + 1, 2000 + 10 * (int64_t)i, 10 + i, r, 1);
	ck_assert_int_eq(put(sp, m, 4, res), SPOOL_OK);
	ck_assert_int_eq(spool_delete_message(sp, 4), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "q.example", &c), SPOOL_OK);
	check_counters(&c, 3, 10 + 11 + 12, 2000, "after deleting the newest");
	ck_assert_int_eq(spool_delete_message(sp, 1), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "q.example", &c), SPOOL_OK);
	check_counters(&c, 2, 11 + 12, 2010, "after deleting the oldest");
	ck_assert_int_eq(spool_delete_message(sp, 3), SPOOL_OK);
	ck_assert_int_eq(spool_domain_counters(sp, "q.example", &c), SPOOL_OK);
	check_counters(&c, 1, 11, 2010, "after deleting the middle");
	for (size_t i = 0; i < 4; i++)
		tmsg_free(&m[i]);
	spool_close(sp);
}
END_TEST

START_TEST(test_next_id)
{
	static const char *const r[] = { "a@n.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	enum spool_err res[3];
	uint64_t id = 0;

	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 1);
	three_put(sp, m);
	three_free(m);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 4);
	spool_close(sp);

	sp = open_spool(64 * MiB);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 4);
	tmsg_init(&m[0], 10, 1, 1, r, 1);
	ck_assert_int_eq(put(sp, m, 1, res), SPOOL_OK);
	tmsg_free(&m[0]);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 11);
	/* a lower id stored later does not move the counter back */
	tmsg_init(&m[0], 5, 1, 1, r, 1);
	ck_assert_int_eq(put(sp, m, 1, res), SPOOL_OK);
	tmsg_free(&m[0]);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 11);
	/* deleting the newest does not hand its id out again */
	ck_assert_int_eq(spool_delete_message(sp, 10), SPOOL_OK);
	spool_close(sp);

	sp = open_spool(64 * MiB);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 11);
	spool_close(sp);
}
END_TEST

/* an id already stored is refused, and the old message is kept */
START_TEST(test_duplicate_id)
{
	static const char *const r[] = { "a@dup.example" };
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[2];
	enum spool_err res[2];
	struct spool_counters c;

	tmsg_init(&m[0], 7, 1, 10, r, 1);
	ck_assert_int_eq(put(sp, m, 1, res), SPOOL_OK);
	tmsg_init(&m[1], 7, 2, 20, r, 1);
	ck_assert_int_ne(put(sp, &m[1], 1, res), SPOOL_OK);
	ck_assert_int_ne(res[0], SPOOL_OK);
	check_body(sp, &m[0]);
	ck_assert_int_eq(spool_domain_counters(sp, "dup.example", &c), SPOOL_OK);
	check_counters(&c, 1, 10, 1, "dup.example");
	tmsg_free(&m[0]);
	tmsg_free(&m[1]);
	spool_close(sp);
}
END_TEST

/* a body that cannot be read fails its message alone */
START_TEST(test_bad_body_fails_alone)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	enum spool_err res[3];
	struct spool_envelope e;
	struct spool_counters c;
	struct wlog w = { .calls = 0 };
	uint64_t id;

	three_init(m);
	m[1].fail = 1;
	ck_assert_int_eq(put(sp, m, 3, res), SPOOL_EBODY);
	ck_assert_int_eq(res[0], SPOOL_OK);
	ck_assert_int_eq(res[1], SPOOL_EBODY);
	ck_assert_int_eq(res[2], SPOOL_OK);
	check_body(sp, &m[0]);
	check_body(sp, &m[2]);
	ck_assert_int_eq(spool_get_envelope(sp, 2, &e), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_domain_counters(sp, "two.example", &c), SPOOL_OK);
	check_counters(&c, 1, 7, 1000, "two.example");
	ck_assert_str_eq(walk(sp, "two.example", &w), "1:2;");
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 4);

	/* the last one failing: the id counter follows the stored ones */
	three_free(m);
	spool_close(sp);
	remove_dir();
	make_dir();
	sp = open_spool(64 * MiB);
	three_init(m);
	m[2].fail = 1;
	ck_assert_int_eq(put(sp, m, 3, res), SPOOL_EBODY);
	ck_assert_int_eq(res[2], SPOOL_EBODY);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 3);
	ck_assert_int_eq(spool_domain_counters(sp, "one.example", &c), SPOOL_OK);
	check_counters(&c, 1, 7, 1000, "one.example");
	three_free(m);
	spool_close(sp);
}
END_TEST

/* map full at max-spool-size: SPOOL_EFULL, nothing lost, room after deletes */
START_TEST(test_map_full)
{
	static const char *const r[] = { "a@full.example" };
	enum { MAXMSG = 64 };
	struct spool *sp = open_spool(1 * MiB);
	struct tmsg *m = calloc(MAXMSG + 8, sizeof(*m));
	enum spool_err res[4];
	struct spool_stats st;
	struct spool_counters c;
	size_t stored = 0, n;
	uint64_t next;

	ck_assert_ptr_nonnull(m);
	for (n = 0; n < MAXMSG; n++) {
		enum spool_err rc;

		tmsg_init(&m[n], n + 1, 100 + (int64_t)n, SPOOL_CHUNK, r, 1);
		rc = put(sp, &m[n], 1, res);
		if (rc == SPOOL_EFULL)
			break;
		ck_assert_msg(rc == SPOOL_OK, "message %zu: %s", n + 1, spool_strerror(rc));
		stored++;
	}
	ck_assert_msg(n < MAXMSG, "no SPOOL_EFULL after %d messages of 64 KiB in 1 MiB", MAXMSG);
	ck_assert_int_eq(res[0], SPOOL_EFULL);
	ck_assert_msg(stored >= 4, "only %zu messages of 64 KiB fit in 1 MiB", stored);
	fprintf(stderr, "test_map_full: %zu messages of 64 KiB stored in a 1 MiB map\n", stored);
	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_le(st.map_size, 1 * MiB);
	ck_assert_uint_eq(st.messages, stored);

	/* a batch at the limit: small messages still fit, big ones fail alone */
	for (size_t i = 0; i < 4; i++)
		tmsg_init(&m[MAXMSG + i], 1000 + i, 5000, i % 2 ? 2 * SPOOL_CHUNK : 100, r, 1);
	ck_assert_int_eq(put(sp, &m[MAXMSG], 4, res), SPOOL_EFULL);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_msg(res[i] == (i % 2 ? SPOOL_EFULL : SPOOL_OK), "batch %zu: %s", i,
		    spool_strerror(res[i]));
		if (res[i] == SPOOL_OK)
			check_body(sp, &m[MAXMSG + i]);
	}
	for (size_t i = 0; i < stored; i++)
		check_body(sp, &m[i]);
	spool_close(sp);

	/* every message that got SPOOL_OK survives close and reopen */
	sp = open_spool(1 * MiB);
	for (size_t i = 0; i < stored; i++)
		check_body(sp, &m[i]);
	for (size_t i = 0; i < 4; i++)
		if (res[i] == SPOOL_OK)
			check_body(sp, &m[MAXMSG + i]);
	ck_assert_int_eq(spool_next_id(sp, &next), SPOOL_OK);
	ck_assert_uint_ge(next, stored + 1);

	/* after deleting some, new ones fit again */
	for (size_t i = 0; i < stored / 2; i++) {
		enum spool_err rc = spool_delete_message(sp, i + 1);

		ck_assert_msg(rc == SPOOL_OK, "delete %zu at map full: %s", i + 1, spool_strerror(rc));
	}
	ck_assert_int_eq(spool_domain_counters(sp, "full.example", &c), SPOOL_OK);
	ck_assert_int_eq(c.oldest, 100 + (int64_t)(stored / 2));
	for (size_t i = 0; i < 2; i++) {
		struct tmsg *t = &m[MAXMSG + 4 + i];
		enum spool_err rc;

		tmsg_init(t, 2000 + i, 6000, SPOOL_CHUNK, r, 1);
		rc = put(sp, t, 1, res);
		ck_assert_msg(rc == SPOOL_OK, "new message %zu after deletes: %s", i, spool_strerror(rc));
		check_body(sp, t);
	}
	for (size_t i = stored / 2; i < stored; i++)
		check_body(sp, &m[i]);
	spool_close(sp);
	for (size_t i = 0; i < MAXMSG + 8; i++)
		tmsg_free(&m[i]);
	free(m);
}
END_TEST

/* the map starts small and grows (doubling) up to max-spool-size */
START_TEST(test_map_grows)
{
	static const char *const r[] = { "a@grow.example" };
	struct spool *sp = open_spool(256 * MiB);
	struct tmsg t;
	enum spool_err res[1];
	struct spool_stats st;

	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_le(st.map_size, 64 * MiB);
	/* one 80 MiB message cannot fit the initial 64 MiB map */
	tmsg_init(&t, 1, 1, 80 * MiB, r, 1);
	ck_assert_int_eq(put(sp, &t, 1, res), SPOOL_OK);
	ck_assert_int_eq(spool_get_stats(sp, &st), SPOOL_OK);
	ck_assert_uint_gt(st.map_size, 64 * MiB);
	ck_assert_uint_le(st.map_size, 256 * MiB);
	check_body(sp, &t);
	tmsg_free(&t);
	spool_close(sp);
}
END_TEST

/* map_read_at_random - 1 when every mapping of the spool file says "rr"
 * (VM_RAND_READ) in /proc/self/smaps, 0 when one does not, -1 when there
 * is none */
static int
map_read_at_random(void)
{
	char path[128], line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0, maps = 0, rr = 0;

	ck_assert_ptr_nonnull(f);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {	/* a mapping's first line */
			size_t n = strlen(line), pl = strlen(path);

			in = n >= pl && strcmp(line + n - pl, path) == 0;
			maps += in;
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			strcat(line, " ");
			rr += strstr(line, " rr ") != NULL;
		}
	}
	fclose(f);
	return maps == 0 ? -1 : rr == maps;
}

START_TEST(test_read_at_random)
{
	struct spool *sp = open_spool(64 * MiB);

	ck_assert_int_eq(map_read_at_random(), 0);
	spool_read_at_random(sp, 1);
	ck_assert_int_eq(map_read_at_random(), 1);
	spool_read_at_random(sp, 0);
	ck_assert_int_eq(map_read_at_random(), 0);
	spool_close(sp);
	ck_assert_int_eq(map_read_at_random(), -1);
}
END_TEST

START_TEST(test_rdonly)
{
	struct spool *sp = open_spool(64 * MiB);
	struct tmsg m[3];
	struct spool_envelope e;
	char err[256];
	uint64_t id;

	three_put(sp, m);
	spool_close(sp);
	ck_assert_int_eq(spool_open(&sp, dir, 64 * MiB, SPOOL_RDONLY, err, sizeof(err)), SPOOL_OK);
	ck_assert_int_eq(spool_next_id(sp, &id), SPOOL_OK);
	ck_assert_uint_eq(id, 4);
	ck_assert_int_eq(spool_get_envelope(sp, 3, &e), SPOOL_OK);
	spool_envelope_free(&e);
	check_body(sp, &m[2]);
	ck_assert_int_ne(spool_delete_message(sp, 1), SPOOL_OK);
	spool_close(sp);
	three_free(m);
}
END_TEST

START_TEST(test_open_missing_dir)
{
	struct spool *sp = (struct spool *)&sp;
	char err[256] = "";

	ck_assert_int_eq(spool_open(&sp, "/nonexistent/spoold-spool", 64 * MiB, 0, err, sizeof(err)), SPOOL_EIO);
	ck_assert_ptr_null(sp);
	ck_assert_msg(strstr(err, "/nonexistent/spoold-spool") != NULL, "%s", err);
	ck_assert_str_ne(spool_strerror(SPOOL_EFULL), "?");
}
END_TEST

/* ---- records (pure) ---- */

static void
sample_envelope(struct spool_envelope *e, struct spool_rcpt *r)
{
	memset(e, 0, sizeof(*e));
	memset(r, 0, 2 * sizeof(*r));
	e->arrival = -5;		/* signed values survive */
	e->size = 0x0102030405060708ULL;
	e->flags = ENV_8BITMIME;
	e->ret = RET_FULL;
	e->sender = "s@x.example";
	e->envid = "E";
	e->client = "192.0.2.1";
	e->helo = NULL;			/* stored as "" */
	r[0].addr = "a@y.example";
	r[0].orcpt_type = "rfc822";
	r[0].orcpt = "a@z.example";
	r[0].notify = NOTIFY_FAILURE;
	r[1].addr = "b@y.example";
	r[1].orcpt_type = "";
	r[1].orcpt = "";
	r[1].done = 1;
	e->rcpts = r;
	e->nrcpts = 2;
}

START_TEST(test_record_envelope)
{
	struct spool_envelope in, out;
	struct spool_rcpt r[2];
	struct buf b;

	sample_envelope(&in, r);
	buf_init(&b);
	ck_assert_int_eq(spool_envelope_encode(&in, &b), 0);
	ck_assert_uint_gt(buf_used(&b), 0);
	ck_assert_int_eq((unsigned char)buf_head(&b)[0], SPOOL_RECORD_VERSION);
	ck_assert_int_eq(spool_envelope_decode(buf_head(&b), buf_used(&b), &out), 0);
	ck_assert_int_eq(out.arrival, -5);
	ck_assert_uint_eq(out.size, 0x0102030405060708ULL);
	ck_assert_uint_eq(out.flags, ENV_8BITMIME);
	ck_assert_uint_eq(out.ret, RET_FULL);
	ck_assert_str_eq(out.sender, "s@x.example");
	ck_assert_str_eq(out.envid, "E");
	ck_assert_str_eq(out.client, "192.0.2.1");
	ck_assert_str_eq(out.helo, "");
	ck_assert_uint_eq(out.nrcpts, 2);
	ck_assert_str_eq(out.rcpts[0].addr, "a@y.example");
	ck_assert_str_eq(out.rcpts[0].orcpt_type, "rfc822");
	ck_assert_str_eq(out.rcpts[0].orcpt, "a@z.example");
	ck_assert_uint_eq(out.rcpts[0].notify, NOTIFY_FAILURE);
	ck_assert_uint_eq(out.rcpts[0].done, 0);
	ck_assert_str_eq(out.rcpts[1].addr, "b@y.example");
	ck_assert_str_eq(out.rcpts[1].orcpt_type, "");
	ck_assert_uint_eq(out.rcpts[1].done, 1);
	spool_envelope_free(&out);
	buf_free(&b);
}
END_TEST

/* every truncation, and an unknown version, fails */
START_TEST(test_record_envelope_bad)
{
	struct spool_envelope in, out;
	struct spool_rcpt r[2];
	struct buf b;
	char *copy;
	size_t len;

	sample_envelope(&in, r);
	buf_init(&b);
	ck_assert_int_eq(spool_envelope_encode(&in, &b), 0);
	len = buf_used(&b);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf_head(&b), len);
	for (size_t n = 0; n < len; n++) {
		/* a fresh allocation of exactly n bytes, so ASan sees overreads */
		char *p = malloc(n ? n : 1);

		memcpy(p, copy, n);
		ck_assert_msg(spool_envelope_decode(p, n, &out) == -1, "truncated to %zu of %zu decoded", n, len);
		ck_assert_ptr_null(out.sender);
		ck_assert_ptr_null(out.rcpts);
		free(p);
	}
	copy[0] = 2;
	ck_assert_int_eq(spool_envelope_decode(copy, len, &out), -1);
	copy[0] = 0;
	ck_assert_int_eq(spool_envelope_decode(copy, len, &out), -1);
	copy[0] = SPOOL_RECORD_VERSION;
	ck_assert_int_eq(spool_envelope_decode(copy, len, &out), 0);
	spool_envelope_free(&out);
	free(copy);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_envelope_long_string)
{
	struct spool_envelope e = { 0 };
	struct buf b;
	char *s = malloc(70000);

	ck_assert_ptr_nonnull(s);
	memset(s, 'a', 69999);
	s[69999] = '\0';
	e.sender = s;
	buf_init(&b);
	/* a 16-bit length cannot hold it: refused, not truncated */
	ck_assert_int_eq(spool_envelope_encode(&e, &b), -1);
	buf_free(&b);
	free(s);
}
END_TEST

START_TEST(test_record_qentry)
{
	struct spool_qentry in = { .flags = QENTRY_WARNED, .rcpt_index = 513, .attempts = 7,
	    .next_try = 1700000123, .last_reply = "451 4.3.0 try later" }, out;
	/* a version 1 entry (before flags): index 2, attempts 1, next 0, "" */
	static const unsigned char v1[] = { 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct buf b;
	char *copy;
	size_t len;

	buf_init(&b);
	ck_assert_int_eq(spool_qentry_encode(&in, &b), 0);
	ck_assert_int_eq(spool_qentry_decode(buf_head(&b), buf_used(&b), &out), 0);
	ck_assert_uint_eq(out.flags, QENTRY_WARNED);
	ck_assert_uint_eq(out.rcpt_index, 513);
	ck_assert_uint_eq(out.attempts, 7);
	ck_assert_int_eq(out.next_try, 1700000123);
	ck_assert_str_eq(out.last_reply, "451 4.3.0 try later");
	spool_qentry_free(&out);
	len = buf_used(&b);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf_head(&b), len);
	for (size_t n = 0; n < len; n++)
		ck_assert_int_eq(spool_qentry_decode(copy, n, &out), -1);
	copy[0] = 3;	/* a version this code does not know */
	ck_assert_int_eq(spool_qentry_decode(copy, len, &out), -1);
	free(copy);
	buf_free(&b);
	ck_assert_int_eq(spool_qentry_decode(v1, sizeof(v1), &out), 0);
	ck_assert_uint_eq(out.flags, 0);
	ck_assert_uint_eq(out.rcpt_index, 2);
	ck_assert_uint_eq(out.attempts, 1);
	spool_qentry_free(&out);
}
END_TEST

/* verification results: put through the change batch, read, replaced,
 * swept once expired; an undecodable one is swept too */
static enum spool_err
verify_change(struct spool *sp, struct spool_change *ch)
{
	const struct spool_change *list = ch;
	enum spool_err result;

	spool_apply_changes(sp, &list, 1, &result);
	return result;
}

START_TEST(test_verify_cache)
{
	struct spool *sp = open_spool(64 * MiB);
	struct spool_verify good = { .valid = 1, .checked = 1000, .expires = 5000,
	    .reply = "250 2.1.5 Ok" }, bad = { .valid = 0, .checked = 1000, .expires = 2000,
	    .reply = "550 5.1.1 no such user" }, vr;
	struct spool_change ch = { .kind = CHANGE_VERIFY, .domain = "ok@v.example", .verify = &good };
	char longkey[SPOOL_VERIFY_KEY_MAX + 2];

	ck_assert_int_eq(spool_get_verify(sp, "ok@v.example", &vr), SPOOL_ENOTFOUND);
	ck_assert_int_eq(verify_change(sp, &ch), SPOOL_OK);
	ch.domain = "no@v.example";
	ch.verify = &bad;
	ck_assert_int_eq(verify_change(sp, &ch), SPOOL_OK);
	ck_assert_int_eq(spool_get_verify(sp, "ok@v.example", &vr), SPOOL_OK);
	ck_assert_int_eq(vr.valid, 1);
	ck_assert_int_eq(vr.checked, 1000);
	ck_assert_int_eq(vr.expires, 5000);
	ck_assert_str_eq(vr.reply, "250 2.1.5 Ok");
	spool_verify_free(&vr);
	ck_assert_int_eq(spool_get_verify(sp, "no@v.example", &vr), SPOOL_OK);
	ck_assert_int_eq(vr.valid, 0);
	ck_assert_str_eq(vr.reply, "550 5.1.1 no such user");
	spool_verify_free(&vr);
	/* a newer result replaces the older */
	bad.expires = 9000;
	ck_assert_int_eq(verify_change(sp, &ch), SPOOL_OK);
	/* the sweep takes what expired before 6000: ok@ (5000) only */
	memset(&ch, 0, sizeof(ch));
	ch.kind = CHANGE_VERIFY_SWEEP;
	ch.next_try = 6000;
	ck_assert_int_eq(verify_change(sp, &ch), SPOOL_OK);
	ck_assert_int_eq(spool_get_verify(sp, "ok@v.example", &vr), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_get_verify(sp, "no@v.example", &vr), SPOOL_OK);
	ck_assert_int_eq(vr.expires, 9000);
	spool_verify_free(&vr);
	/* keys too long are refused, not truncated */
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	ch.kind = CHANGE_VERIFY;
	ch.domain = longkey;
	ch.verify = &good;
	ck_assert_int_eq(verify_change(sp, &ch), SPOOL_ENOTFOUND);
	ck_assert_int_eq(spool_get_verify(sp, longkey, &vr), SPOOL_ENOTFOUND);
	spool_close(sp);
}
END_TEST

START_TEST(test_record_verify)
{
	struct spool_verify in = { .valid = 1, .checked = 1700000000, .expires = 1702678400,
	    .reply = "250 2.1.5 Ok" }, out;
	struct buf b;
	char *copy;
	size_t len;

	buf_init(&b);
	ck_assert_int_eq(spool_verify_encode(&in, &b), 0);
	ck_assert_int_eq(spool_verify_decode(buf_head(&b), buf_used(&b), &out), 0);
	ck_assert_int_eq(out.valid, 1);
	ck_assert_int_eq(out.checked, 1700000000);
	ck_assert_int_eq(out.expires, 1702678400);
	ck_assert_str_eq(out.reply, "250 2.1.5 Ok");
	spool_verify_free(&out);
	len = buf_used(&b);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf_head(&b), len);
	for (size_t n = 0; n < len; n++)	/* every truncation is refused */
		ck_assert_int_eq(spool_verify_decode(copy, n, &out), -1);
	copy[0] = VERIFY_RECORD_VERSION + 1;	/* a version this code does not know */
	ck_assert_int_eq(spool_verify_decode(copy, len, &out), -1);
	free(copy);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_counters)
{
	struct spool_counters in = { .messages = 3, .bytes = 0x123456789aULL, .oldest = 1700000000 }, out;
	unsigned char enc[SPOOL_COUNTERS_LEN + 1];

	spool_counters_encode(&in, enc);
	ck_assert_int_eq(enc[0], SPOOL_RECORD_VERSION);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(spool_counters_decode(enc, SPOOL_COUNTERS_LEN, &out), 0);
	ck_assert_uint_eq(out.messages, 3);
	ck_assert_uint_eq(out.bytes, 0x123456789aULL);
	ck_assert_int_eq(out.oldest, 1700000000);
	ck_assert_int_eq(spool_counters_decode(enc, SPOOL_COUNTERS_LEN - 1, &out), -1);
	ck_assert_int_eq(spool_counters_decode(enc, SPOOL_COUNTERS_LEN + 1, &out), -1);
	ck_assert_int_eq(spool_counters_decode(enc, 0, &out), -1);
	enc[0] = 2;
	ck_assert_int_eq(spool_counters_decode(enc, SPOOL_COUNTERS_LEN, &out), -1);
}
END_TEST

START_TEST(test_record_qkey)
{
	unsigned char key[SPOOL_QKEY_MAX], a[SPOOL_QKEY_MAX], b[SPOOL_QKEY_MAX];
	char longest[256];
	const char *d;
	size_t len, dlen, la, lb;
	uint64_t id;
	unsigned idx;

	len = spool_qkey(key, "example.com", 0x0102030405060708ULL, 0xabcd);
	ck_assert_uint_eq(len, strlen("example.com") + 11);
	ck_assert_int_eq(spool_qkey_parse(key, len, &d, &dlen, &id, &idx), 0);
	ck_assert_uint_eq(dlen, strlen("example.com"));
	ck_assert_int_eq(memcmp(d, "example.com", dlen), 0);
	ck_assert_uint_eq(id, 0x0102030405060708ULL);
	ck_assert_uint_eq(idx, 0xabcd);

	/* the longest domain fits SPOOL_QKEY_MAX */
	memset(longest, 'd', 255);
	longest[255] = '\0';
	len = spool_qkey(key, longest, 1, 0);
	ck_assert_uint_eq(len, SPOOL_QKEY_MAX);
	ck_assert_int_eq(spool_qkey_parse(key, len, &d, &dlen, &id, &idx), 0);
	ck_assert_uint_eq(dlen, 255);

	/* malformed keys */
	len = spool_qkey(key, "x.example", 9, 1);
	ck_assert_int_eq(spool_qkey_parse(key, len - 1, &d, &dlen, &id, &idx), -1);
	ck_assert_int_eq(spool_qkey_parse(key, strlen("x.example"), &d, &dlen, &id, &idx), -1);
	ck_assert_int_eq(spool_qkey_parse(key, 0, &d, &dlen, &id, &idx), -1);

	/* byte order is (domain, id, index) order, so a domain is one key range
	 * walked oldest first */
	la = spool_qkey(a, "a.example", 255, 9);
	lb = spool_qkey(b, "a.example", 256, 0);
	ck_assert_int_lt(memcmp(a, b, la < lb ? la : lb), 0);
	la = spool_qkey(a, "a.example", 5, 1);
	lb = spool_qkey(b, "a.example", 5, 256);
	ck_assert_int_lt(memcmp(a, b, la < lb ? la : lb), 0);
	la = spool_qkey(a, "a.example", UINT64_MAX, 65535);
	lb = spool_qkey(b, "a.example.net", 0, 0);
	ck_assert_int_lt(memcmp(a, b, la < lb ? la : lb), 0);
}
END_TEST

START_TEST(test_record_be64)
{
	unsigned char p[8];

	spool_be64(p, 0x0102030405060708ULL);
	ck_assert_int_eq(p[0], 1);
	ck_assert_int_eq(p[7], 8);
	ck_assert_uint_eq(spool_get_be64(p), 0x0102030405060708ULL);
	spool_be64(p, UINT64_MAX);
	ck_assert_uint_eq(spool_get_be64(p), UINT64_MAX);
}
END_TEST

/* spool_verify_key_of: what spoolctl verify/unverify and the control
 * socket's "unverify ADDRESS" take, as verify.c keys a RCPT */
START_TEST(test_verify_key_of)
{
	static const struct {
		const char	*name, *in, *want;	/* want NULL: refused */
	} cases[] = {
		{ "plain", "a@b.test", "a@b.test" },
		{ "case", "Bob@Example.TEST", "bob@example.test" },
		{ "angle", "<Bob@x.test>", "bob@x.test" },
		{ "quoted space", "\"John Doe\"@x.test", "\"john doe\"@x.test" },
		{ "quoted angle, angled", "<\"a<b>c\"@x.test>", "\"a<b>c\"@x.test" },
		{ "quoted pair", "\"a\\\"b\"@x.test", "\"a\\\"b\"@x.test" },
		{ "eight bit", "j\xc3\xb6rg@x.test", "j\xc3\xb6rg@x.test" },
		{ "empty", "", NULL },
		{ "null path", "<>", NULL },
		{ "no at", "nobody", NULL },
		{ "no local", "@x.test", NULL },
		{ "no domain", "a@", NULL },
		{ "space", "a b@x.test", NULL },
		{ "tab", "a\t@x.test", NULL },
		{ "CR", "a\r@x.test", NULL },
		{ "escape", "a\x1b[2J@x.test", NULL },
		{ "DEL", "a\x7f@x.test", NULL },
		{ "half angle", "<a@x.test", NULL },
		{ "angle inside", "a@<x.test>", NULL },
		{ "quote open", "\"a b@x.test", NULL },
		{ "quote then junk", "\"a\"b@x.test", NULL },
		{ "quote in domain", "a@x\".test", NULL },
		{ "space in domain", "\"a\"@x .test", NULL },
		{ "quoted pair at end", "\"a\\", NULL },
	};
	char key[SPOOL_VERIFY_KEY_MAX + 1], longer[SPOOL_VERIFY_KEY_MAX + 8];

	for (size_t i = 0; i < NELEM(cases); i++) {
		int rc = spool_verify_key_of(cases[i].in, key, sizeof(key));

		if (cases[i].want == NULL)
			ck_assert_msg(rc == -1, "%s: taken as \"%s\"", cases[i].name, key);
		else {
			ck_assert_msg(rc == 0, "%s: refused", cases[i].name);
			ck_assert_str_eq(key, cases[i].want);
		}
	}
	/* the longest a key holds, and one byte more */
	memset(longer, 'a', sizeof(longer));
	memcpy(longer + SPOOL_VERIFY_KEY_MAX - 7, "@x.test", 8);
	ck_assert_int_eq(spool_verify_key_of(longer, key, sizeof(key)), 0);
	memset(longer, 'a', sizeof(longer));
	memcpy(longer + SPOOL_VERIFY_KEY_MAX - 6, "@x.test", 8);
	ck_assert_int_eq(spool_verify_key_of(longer, key, sizeof(key)), -1);
}
END_TEST

static Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc;

	tc = tcase_create("lmdb");
	tcase_add_checked_fixture(tc, make_dir, remove_dir);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_put_list_walk);
	tcase_add_test(tc, test_callbacks_stop);
	tcase_add_test(tc, test_walk_many);
	tcase_add_test(tc, test_read_body);
	tcase_add_test(tc, test_body_sizes);
	tcase_add_test(tc, test_envelope_round_trip);
	tcase_add_test(tc, test_delete);
	tcase_add_test(tc, test_quarantine);
	tcase_add_test(tc, test_delete_oldest_moves);
	tcase_add_test(tc, test_rcpts_done);
	tcase_add_test(tc, test_done_with_dsn);
	tcase_add_test(tc, test_bad_counter_record);
	tcase_add_test(tc, test_rcpt_defer);
	tcase_add_test(tc, test_domain_ids);
	tcase_add_test(tc, test_next_id);
	tcase_add_test(tc, test_duplicate_id);
	tcase_add_test(tc, test_bad_body_fails_alone);
	tcase_add_test(tc, test_map_full);
	tcase_add_test(tc, test_map_grows);
	tcase_add_test(tc, test_rdonly);
	tcase_add_test(tc, test_read_at_random);
	tcase_add_test(tc, test_verify_cache);
	tcase_add_test(tc, test_open_missing_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("records");
	tcase_add_test(tc, test_record_envelope);
	tcase_add_test(tc, test_record_envelope_bad);
	tcase_add_test(tc, test_record_envelope_long_string);
	tcase_add_test(tc, test_record_qentry);
	tcase_add_test(tc, test_record_verify);
	tcase_add_test(tc, test_record_counters);
	tcase_add_test(tc, test_record_qkey);
	tcase_add_test(tc, test_record_be64);
	tcase_add_test(tc, test_verify_key_of);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spool_suite());
	int failed;

	log_init("test_spool", 1, 0);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
