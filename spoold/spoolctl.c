/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spoolctl.c - the postmaster's view of the spool: list, show, delete, stats,
 * the quarantine (quarantine, release ID) and the verify cache (verify,
 * unverify).
 *
 * Reads open the same LMDB environment as spoold, read-only, so they work
 * while spoold runs.  Changes (delete, hold, release; flush and bounce)
 * go to the running spoold over DATADIR/control.sock, so its queue owner
 * applies them like any other change; only when no spoold runs do delete,
 * unverify, hold and release (of a domain or of quarantined messages) write the
 * environment themselves (LMDB's writer lock
 * keeps a spoold started meanwhile waiting).  Output is one record a line
 * with the key first, for awk; --json gives the same as JSON.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "schedule.h"
#include "smtp_cmd.h"
#include "spool.h"
#include "spoold_conf.h"


static int json;
static time_t now;
/* Where the walk callbacks write: memory, printed after the read transaction
 * ended, so a pager reading slowly never pins an LMDB snapshot (which would
 * keep spoold from reusing freed pages). */
static FILE *out;

/* json_str - a JSON string literal on stdout */
static void
json_str(const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* safe_text - client-supplied text made printable for a terminal */
static const char *
safe_text(const char *s, char *buf, size_t len)
{
	return log_escape(buf, len, s, 512);
}

static long long
age_of(int64_t arrival)
{
	return arrival > 0 && now > arrival ? (long long)(now - arrival) : 0;
}

/* out_begin - collect output in memory */
static char *out_mem;
static size_t out_len;

static int
out_begin(void)
{
	if ((out = open_memstream(&out_mem, &out_len)) == NULL) {
		perror("spoolctl: open_memstream");
		return -1;
	}
	return 0;
}

/* out_end - print what was collected */
static void
out_end(void)
{
	fclose(out);
	fwrite(out_mem, 1, out_len, stdout);
	free(out_mem);
	out = stdout;
}

/* show_when - a time for people: "2026-11-22T15:04:05+0000" */
static const char *
show_when(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	localtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm);
	return buf;
}

/* next_attempt - when spoold tries domain on its own next, for people:
 * a time, "at spoold's next look" or "when the site asks ..."; NULL when it
 * is held (the held line says so) */
static const char *
next_attempt(const char *domain, const struct domain_conf *d, const struct spool_route *rt,
    char *buf, size_t len)
{
	int64_t t = schedule_next_attempt(domain, d, rt);

	if (rt != NULL && (rt->flags & ROUTE_HELD))
		return NULL;
	if (t == SCHEDULE_NEVER)
		return "when the site asks (ETRN, ATRN or spoolctl flush)";
	if (t <= now)
		return "at spoold's next look";
	return show_when(t, buf, len);
}

/* next_attempt_json - the same as a JSON value: a time, "now" or null */
static void
next_attempt_json(const char *domain, const struct domain_conf *d, const struct spool_route *rt)
{
	int64_t t = schedule_next_attempt(domain, d, rt);
	char when[32];

	if (t == SCHEDULE_NEVER)
		fprintf(out, "null");
	else if (t <= now)
		fprintf(out, "\"now\"");
	else
		fprintf(out, "\"%s\"", show_when(t, when, sizeof(when)));
}

/* ---- quarantine counts per domain ---- */

struct qcount {
	char		 domain[SMTP_DOMAIN_MAX + 1];
	uint64_t	 n;
	int		 shown;
};

struct qtally {
	struct qcount	*c;
	size_t		 n;
};

static struct qcount *
qtally_find(struct qtally *t, const char *domain)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->c[i].domain, domain) == 0)
			return &t->c[i];
	return NULL;
}

/* qtally_cb - a quarantined message counts once in each of its domains */
static int
qtally_cb(const struct spool_envelope *e, const struct spool_quarantine *q, void *arg)
{
	struct qtally *t = arg;

	for (size_t i = 0; i < e->nrcpts; i++) {
		const char *d = spool_rcpt_domain(e->rcpts[i].addr);
		struct qcount *c, *n;
		int dup = 0;

		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(spool_rcpt_domain(e->rcpts[j].addr), d) == 0;
		if (dup || e->rcpts[i].done)
			continue;
		if ((c = qtally_find(t, d)) == NULL) {
			if ((n = realloc(t->c, (t->n + 1) * sizeof(*n))) == NULL)
				return 1;
			t->c = n;
			c = &t->c[t->n++];
			memset(c, 0, sizeof(*c));
			snprintf(c->domain, sizeof(c->domain), "%s", d);
		}
		c->n++;
	}
	return 0;
}

static uint64_t
qtally_of(struct qtally *t, const char *domain)
{
	struct qcount *c = qtally_find(t, domain);

	if (c == NULL)
		return 0;
	c->shown = 1;
	return c->n;
}

/* ---- list ---- */

struct list_state {
	const struct spoold_conf	*cf;
	struct spool			*sp;
	int				 first;
	char				 seen_prev[SMTP_DOMAIN_MAX + 1];
	struct qtally			 q;
};

static void
list_row(struct list_state *ls, const char *domain, const struct spool_counters *c)
{
	const struct domain_conf *d = spoold_conf_domain(ls->cf, domain);
	struct spool_route rt;

	if (json) {
		fprintf(out, "%s\n  {\"domain\": ", ls->first ? "" : ",");
		json_str(domain);
		fprintf(out, ", \"messages\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"oldest_age\": %lld, "
		    "\"quarantined\": %" PRIu64 ", \"configured\": %s", c->messages, c->bytes,
		    c->messages ? age_of(c->oldest) : 0, qtally_of(&ls->q, domain), d ? "true" : "false");
		if (d != NULL && (d->quota_bytes || d->quota_messages))
			fprintf(out, ", \"quota_messages\": %" PRIu64 ", \"quota_bytes\": %" PRIu64,
			    d->quota_messages, d->quota_bytes);
		if (spool_get_route(ls->sp, domain, &rt) == SPOOL_OK) {
			fprintf(out, ", \"held\": %s, \"last_attempt\": %lld, \"failures\": %u, "
			    "\"last_error\": ", rt.flags & ROUTE_HELD ? "true" : "false",
			    (long long)rt.last_attempt, rt.failures);
			json_str(rt.last_error);
			fprintf(out, ", \"next_attempt\": ");
			next_attempt_json(domain, d, &rt);
			spool_route_free(&rt);
		}
		fprintf(out, "}");
	} else {
		char quota[120] = "", qm[24] = "-", qb[24] = "-";

		if (d != NULL && (d->quota_bytes || d->quota_messages)) {
			if (d->quota_messages)
				snprintf(qm, sizeof(qm), "%" PRIu64, d->quota_messages);
			if (d->quota_bytes)
				snprintf(qb, sizeof(qb), "%" PRIu64, d->quota_bytes);
			snprintf(quota, sizeof(quota), "  (quota: %" PRIu64 "/%s messages, %" PRIu64
			    "/%s bytes)", c->messages, qm, c->bytes, qb);
		}
		fprintf(out, "%-40s %8" PRIu64 " %12" PRIu64 " %10lld %11" PRIu64 "%s%s\n", domain,
		    c->messages, c->bytes, c->messages ? age_of(c->oldest) : 0,
		    qtally_of(&ls->q, domain), d ? "" : "  (not configured)", quota);
	}
	ls->first = 0;
}

/* list_configured_before - configured domains without mail that sort
 * before name (name NULL: all that are left) */
static void
list_configured_before(struct list_state *ls, const char *name)
{
	static const struct spool_counters zero;

	for (size_t i = 0; i < ls->cf->n_domains; i++) {
		const char *d = ls->cf->domains[i].name;

		if (strcmp(d, ls->seen_prev) <= 0 && ls->seen_prev[0] != '\0')
			continue;
		if (name != NULL && strcmp(d, name) >= 0)
			break;
		list_row(ls, d, &zero);
	}
}

static int
list_cb(const struct spool_domain_info *di, void *arg)
{
	struct list_state *ls = arg;

	list_configured_before(ls, di->domain);
	list_row(ls, di->domain, &di->counters);
	snprintf(ls->seen_prev, sizeof(ls->seen_prev), "%s", di->domain);
	return 0;
}

static int
cmd_list(struct spool *sp, const struct spoold_conf *cf)
{
	struct list_state ls = { .cf = cf, .sp = sp, .first = 1 };
	enum spool_err rc;

	static const struct spool_counters zero;

	if (out_begin() == -1)
		return EX_SOFTWARE;
	if (json)
		fprintf(out, "[");
	else
		fprintf(out, "%-40s %8s %12s %10s %11s\n", "# domain", "messages", "bytes", "oldest(s)",
		    "quarantined");
	if ((rc = spool_quarantine_walk(sp, qtally_cb, &ls.q)) == SPOOL_OK)
		rc = spool_domain_list(sp, list_cb, &ls);
	list_configured_before(&ls, NULL);
	for (size_t i = 0; i < ls.q.n; i++)	/* only quarantined mail, not configured */
		if (!ls.q.c[i].shown)
			list_row(&ls, ls.q.c[i].domain, &zero);
	free(ls.q.c);
	if (json)
		fprintf(out, "\n]\n");
	out_end();
	if (rc != SPOOL_OK) {
		fprintf(stderr, "spoolctl: list: %s\n", spool_strerror(rc));
		return EX_SOFTWARE;
	}
	return 0;
}

/* ---- show ---- */

struct show_state {
	int				 first;
	size_t				 count;
	const char			*domain;
	const struct domain_conf	*d;
	const struct spool_route	*rt;	/* NULL: no history */
};

static void
show_json(struct show_state *ss, const struct spool_envelope *e, const unsigned *idx,
    const struct spool_qentry *q, size_t nidx)
{
	char when[32];

	fprintf(out, "%s\n  {\"id\": \"%016" PRIx64 "\", \"arrival\": \"%s\", \"size\": %" PRIu64
	    ", \"sender\": ", ss->first ? "" : ",", e->id, show_when(e->arrival, when, sizeof(when)),
	    e->size);
	json_str(e->sender);
	if (e->flags & ENV_UNSCANNED)
		fprintf(out, ", \"unscanned\": true");
	fprintf(out, ", \"recipients\": [");
	for (size_t i = 0; i < nidx; i++) {
		fprintf(out, "%s{\"address\": ", i ? ", " : "");
		json_str(idx[i] < e->nrcpts ? e->rcpts[idx[i]].addr : "?");
		fprintf(out, ", \"attempts\": %u", q[i].attempts);
		if (q[i].attempts > 0) {
			fprintf(out, ", \"last_reply\": ");
			json_str(q[i].last_reply ? q[i].last_reply : "");
			/* the domain's next attempt: recipients are not
			 * scheduled one by one */
			fprintf(out, ", \"next_try\": ");
			next_attempt_json(ss->domain, ss->d, ss->rt);
		}
		fprintf(out, "}");
	}
	fprintf(out, "]}");
}

/* show_text - the message line, then one indented line per recipient that
 * was tried: attempts, the domain's next attempt, the last reply */
static void
show_text(struct show_state *ss, const struct spool_envelope *e, const unsigned *idx,
    const struct spool_qentry *q, size_t nidx)
{
	char buf[1100], when[32];
	const char *next;

	fprintf(out, "%016" PRIx64 " %s %8" PRIu64 " <%s>", e->id,
	    show_when(e->arrival, when, sizeof(when)), e->size, safe_text(e->sender, buf, sizeof(buf)));
	for (size_t i = 0; i < nidx; i++)
		fprintf(out, " %s", idx[i] < e->nrcpts ? safe_text(e->rcpts[idx[i]].addr, buf,
		    sizeof(buf)) : "?");
	fprintf(out, "\n");
	if (e->flags & ENV_UNSCANNED)
		fprintf(out, "    not scanned: a content filter was down when it came; the filters "
		    "see it before it leaves\n");
	for (size_t i = 0; i < nidx; i++) {
		char reply[1100];

		if (q[i].attempts == 0)
			continue;
		next = next_attempt(ss->domain, ss->d, ss->rt, when, sizeof(when));
		fprintf(out, "    %s: %u attempt%s, next %s, last: %s\n",
		    idx[i] < e->nrcpts ? safe_text(e->rcpts[idx[i]].addr, buf, sizeof(buf)) : "?",
		    q[i].attempts, q[i].attempts == 1 ? "" : "s",
		    next != NULL ? next : "when released (spoolctl release)",
		    safe_text(q[i].last_reply ? q[i].last_reply : "", reply, sizeof(reply)));
	}
}

static int
show_cb(const struct spool_envelope *e, const unsigned *idx, const struct spool_qentry *q,
    size_t nidx, void *arg)
{
	struct show_state *ss = arg;

	if (json)
		show_json(ss, e, idx, q, nidx);
	else
		show_text(ss, e, idx, q, nidx);
	ss->first = 0;
	ss->count++;
	return 0;
}

/* show_route - "# last attempt ...: why" when delivery to domain was
 * tried, then when spoold will try on its own next (what schedule.h says,
 * the same decision the scheduler makes) */
static void
show_route(const struct show_state *ss)
{
	char when[40];
	const char *next;

	if (ss->rt != NULL && (ss->rt->flags & ROUTE_HELD))
		fprintf(out, "# held (spoolctl hold): no retries until spoolctl release\n");
	if (ss->rt != NULL && ss->rt->last_attempt != 0) {
		show_when(ss->rt->last_attempt, when, sizeof(when));
		if (ss->rt->failures > 0)
			fprintf(out, "# last attempt %s failed (%u in a row): %s\n", when,
			    ss->rt->failures, ss->rt->last_error);
		else
			fprintf(out, "# last attempt %s: ok\n", when);
		if ((next = next_attempt(ss->domain, ss->d, ss->rt, when, sizeof(when))) != NULL)
			fprintf(out, "# next attempt: %s\n", next);
	}
}

static int
cmd_show(struct spool *sp, const struct spoold_conf *cf, const char *domain)
{
	struct show_state ss = { .first = 1 };
	struct spool_route rt;
	char canon[300];
	enum spool_err rc;

	snprintf(canon, sizeof(canon), "%s", domain);
	for (char *p = canon; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	ss.domain = canon;
	ss.d = spoold_conf_domain(cf, canon);
	if (spool_get_route(sp, canon, &rt) == SPOOL_OK)
		ss.rt = &rt;
	if (out_begin() == -1) {
		if (ss.rt != NULL)
			spool_route_free(&rt);
		return EX_SOFTWARE;
	}
	if (json)
		fprintf(out, "[");
	else {
		struct qtally q = { NULL, 0 };
		uint64_t nq;

		show_route(&ss);
		if (spool_quarantine_walk(sp, qtally_cb, &q) == SPOOL_OK &&
		    (nq = qtally_of(&q, canon)) > 0)
			fprintf(out, "# %" PRIu64 " more quarantined, not listed here (spoolctl "
			    "quarantine %s)\n", nq, canon);
		free(q.c);
		fprintf(out, "# id             arrival                      size sender recipients...\n");
	}
	rc = spool_domain_walk(sp, canon, show_cb, &ss);
	if (ss.rt != NULL)
		spool_route_free(&rt);
	if (json)
		fprintf(out, "\n]\n");
	out_end();
	if (rc != SPOOL_OK) {
		fprintf(stderr, "spoolctl: show %s: %s\n", canon, spool_strerror(rc));
		return EX_SOFTWARE;
	}
	return 0;
}

/* ---- quarantine ---- */

struct quar_state {
	const char	*domain;	/* NULL: all */
	int		 first;
};

static int
quar_has_domain(const struct spool_envelope *e, const char *domain)
{
	for (size_t i = 0; i < e->nrcpts; i++)
		if (!e->rcpts[i].done && strcmp(spool_rcpt_domain(e->rcpts[i].addr), domain) == 0)
			return 1;
	return 0;
}

static int
quar_cb(const struct spool_envelope *e, const struct spool_quarantine *q, void *arg)
{
	struct quar_state *qs = arg;
	char buf[1100], when[32], since[32];

	if (qs->domain != NULL && !quar_has_domain(e, qs->domain))
		return 0;
	if (json) {
		fprintf(out, "%s\n  {\"id\": \"%016" PRIx64 "\", \"arrival\": \"%s\", \"quarantined\": "
		    "\"%s\", \"size\": %" PRIu64 ", \"sender\": ", qs->first ? "" : ",", e->id,
		    show_when(e->arrival, when, sizeof(when)), show_when(q->since, since,
		    sizeof(since)), e->size);
		json_str(e->sender);
		fprintf(out, ", \"recipients\": [");
		for (size_t i = 0, k = 0; i < e->nrcpts; i++)
			if (!e->rcpts[i].done) {
				fprintf(out, "%s", k++ ? ", " : "");
				json_str(e->rcpts[i].addr);
			}
		fprintf(out, "], \"reason\": ");
		json_str(q->reason);
		fprintf(out, "}");
	} else {
		fprintf(out, "%016" PRIx64 " %s %8" PRIu64 " <%s>", e->id, show_when(e->arrival, when,
		    sizeof(when)), e->size, safe_text(e->sender, buf, sizeof(buf)));
		for (size_t i = 0; i < e->nrcpts; i++)
			if (!e->rcpts[i].done)
				fprintf(out, " %s", safe_text(e->rcpts[i].addr, buf, sizeof(buf)));
		fprintf(out, "\n    %s\n", safe_text(q->reason, buf, sizeof(buf)));
	}
	qs->first = 0;
	return 0;
}

/* cmd_quarantine - the quarantined messages (of DOMAIN): id, arrival,
 * size, sender, recipients, then the filter's reason */
static int
cmd_quarantine(struct spool *sp, const struct spoold_conf *cf, const char *domain)
{
	struct quar_state qs = { NULL, 1 };
	char canon[SMTP_DOMAIN_MAX + 1];
	enum spool_err rc;

	if (domain != NULL) {
		snprintf(canon, sizeof(canon), "%s", domain);
		if (strlen(domain) >= sizeof(canon) || smtp_domain_canon(canon, 1) == -1) {
			fprintf(stderr, "spoolctl: quarantine: %s: not a domain name\n", domain);
			return EX_USAGE;
		}
		qs.domain = canon;
	}
	if (out_begin() == -1)
		return EX_SOFTWARE;
	if (json)
		fprintf(out, "[");
	else
		fprintf(out, "# id             arrival                      size sender recipients...\n"
		    "#     reason (spoolctl release ID delivers it, spoolctl delete ID removes it)\n");
	rc = spool_quarantine_walk(sp, quar_cb, &qs);
	if (json)
		fprintf(out, "\n]\n");
	out_end();
	if (rc != SPOOL_OK) {
		fprintf(stderr, "spoolctl: quarantine: %s\n", spool_strerror(rc));
		return EX_SOFTWARE;
	}
	return 0;
}

/* ---- the running spoold ---- */

/* control_exchange - one request ("VERB ARG", or "VERB" when arg is NULL)
 * to the running spoold over DATADIR/control.sock: 0 with its reply line
 * (no newline) in reply, and with rest set, the connection for what follows
 * the line (the caller closes it); 1 when no spoold is listening there, -1
 * (said on stderr) for any other trouble */
static int
control_exchange(const struct spoold_conf *cf, const char *verb, const char *arg, char *reply,
    size_t len, FILE **rest)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 30 };	/* spoold answers at once, or never */
	FILE *fp;
	int fd;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", cf->datadir) >=
	    sizeof(sun.sun_path)) {
		fprintf(stderr, "spoolctl: %s: datadir path too long for the control socket\n", verb);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int down = errno == ENOENT || errno == ECONNREFUSED;

		if (!down)
			fprintf(stderr, "spoolctl: %s: cannot reach spoold at %s: %s\n", verb,
			    sun.sun_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return down ? 1 : -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((fp = fdopen(fd, "r+")) == NULL) {
		close(fd);
		return -1;
	}
	if (arg != NULL)
		fprintf(fp, "%s %s\n", verb, arg);
	else
		fprintf(fp, "%s\n", verb);
	fflush(fp);
	if (fgets(reply, (int)len, fp) == NULL) {
		fprintf(stderr, "spoolctl: %s: spoold closed the connection without a reply\n", verb);
		fclose(fp);
		return -1;
	}
	reply[strcspn(reply, "\r\n")] = '\0';
	if (rest != NULL)
		*rest = fp;
	else
		fclose(fp);
	return 0;
}

/* control_ask - control_exchange for one reply line; every failure said
 * on stderr (1: no spoold listening, -1: any other) */
static int
control_ask(const struct spoold_conf *cf, const char *verb, const char *arg, char *reply,
    size_t len)
{
	int rc = control_exchange(cf, verb, arg, reply, len, NULL);

	/* said here for every change that needs spoold, also when it stopped
	 * between spoold_running() and the request */
	if (rc == 1)
		fprintf(stderr, "spoolctl: %s: cannot reach spoold at %s/control.sock (is it "
		    "running?)\n", verb, cf->datadir);
	return rc;
}

/* reply_status - the exit status for the reply to a change: the same as
 * when spoolctl writes the spool itself (550: no such message, 65) */
static int
reply_status(const char *reply)
{
	if (reply[0] == '2')
		return 0;
	return reply[0] == '4' ? EX_TEMPFAIL : strncmp(reply, "550", 3) == 0 ? EX_DATAERR :
	    EX_UNAVAILABLE;
}

/* cmd_control - flush or bounce, which only the running spoold can do;
 * its reply line goes to stdout */
static int
cmd_control(const struct spoold_conf *cf, const char *verb, const char *arg)
{
	char reply[700];
	int rc = control_ask(cf, verb, arg, reply, sizeof(reply));

	if (rc != 0)
		return rc == 1 ? EX_UNAVAILABLE : EX_SOFTWARE;
	printf("%s\n", reply);
	return reply[0] == '2' ? 0 : reply[0] == '4' ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

/* spoold_running - a spoold answers on the control socket: changes go to it */
static int
spoold_running(const struct spoold_conf *cf)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, up;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock", cf->datadir);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	up = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return up;
}

/* log_change - a change spoolctl made to the spool itself (no spoold
 * runs): to syslog as spoold's control would log it, tagged spoold/control,
 * so the mail log shows every delete, hold and release whoever made it */
__attribute__((format(printf, 1, 2)))
static void
log_change(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	openlog("spoold/control", LOG_PID, LOG_MAIL);
	syslog(LOG_INFO, "%s (by spoolctl, uid %u; spoold not running)", msg, (unsigned)getuid());
	closelog();
}

/* ---- delete, stats ---- */

static int
parse_id(const char *s, uint64_t *id)
{
	char *end;

	errno = 0;
	*id = strtoull(s, &end, 16);
	return *s == '\0' || *end != '\0' || errno != 0 ? -1 : 0;
}

/* delete_via_spoold - one delete through the running spoold: 0, or the
 * exit status */
static int
delete_via_spoold(const struct spoold_conf *cf, uint64_t id)
{
	char arg[20], reply[700];

	snprintf(arg, sizeof(arg), "%016" PRIx64, id);
	if (control_ask(cf, "delete", arg, reply, sizeof(reply)) != 0)
		return EX_SOFTWARE;
	if (reply[0] == '2')
		printf("%s\n", reply + 4);
	else
		fprintf(stderr, "spoolctl: delete %s\n", reply + 4);
	return reply_status(reply);
}

static int
cmd_delete(struct spool *sp, const struct spoold_conf *cf, int argc, char **argv)
{
	int status = 0;

	for (int i = 0; i < argc; i++) {
		uint64_t id;
		enum spool_err rc;
		int st;

		if (parse_id(argv[i], &id) == -1) {
			fprintf(stderr, "spoolctl: delete: \"%s\" is not a message id (hex, as in show)\n", argv[i]);
			status = EX_USAGE;
			continue;
		}
		if (sp == NULL) {
			if ((st = delete_via_spoold(cf, id)) != 0)
				status = st;
			continue;
		}
		if ((rc = spool_delete_message(sp, id)) != SPOOL_OK) {
			fprintf(stderr, "spoolctl: delete %016" PRIx64 ": %s\n", id, spool_strerror(rc));
			status = rc == SPOOL_ENOTFOUND ? EX_DATAERR : EX_SOFTWARE;
			continue;
		}
		log_change("delete %016" PRIx64 ": deleted", id);
		printf("%016" PRIx64 " deleted\n", id);
	}
	return status;
}

/* is_queue_id - 16 hex digits, as spoolctl prints ids: "release ID" is
 * the quarantine's, "release DOMAIN" the hold's */
static int
is_queue_id(const char *s)
{
	return strlen(s) == 16 && strspn(s, "0123456789abcdefABCDEF") == 16;
}

/* cmd_release_ids - quarantined messages queued for delivery, through the
 * running spoold or directly */
static int
cmd_release_ids(struct spool *sp, const struct spoold_conf *cf, int argc, char **argv)
{
	int status = 0;

	for (int i = 0; i < argc; i++) {
		char reply[700];
		uint64_t id;
		enum spool_err rc;

		if (!is_queue_id(argv[i]) || parse_id(argv[i], &id) == -1) {
			fprintf(stderr, "spoolctl: release: \"%s\" is not a message id (16 hex "
			    "digits, as in spoolctl quarantine)\n", argv[i]);
			status = EX_USAGE;
			continue;
		}
		snprintf(reply, sizeof(reply), "%016" PRIx64, id);
		if (sp == NULL) {
			if (control_ask(cf, "release", reply, reply, sizeof(reply)) != 0) {
				status = EX_SOFTWARE;
				continue;
			}
			if (reply[0] == '2')
				printf("%s\n", reply + 4);
			else {
				fprintf(stderr, "spoolctl: release %s\n", reply + 4);
				status = reply_status(reply);
			}
			continue;
		}
		if ((rc = spool_release_message(sp, id)) != SPOOL_OK) {
			fprintf(stderr, "spoolctl: release %016" PRIx64 ": %s\n", id,
			    rc == SPOOL_ENOTFOUND ? "no such message in the quarantine" :
			    spool_strerror(rc));
			status = rc == SPOOL_ENOTFOUND ? EX_DATAERR : EX_SOFTWARE;
			continue;
		}
		log_change("release %016" PRIx64 ": released from the quarantine", id);
		printf("%016" PRIx64 " released\n", id);
	}
	return status;
}

/* running_totals - the running spoold's counters ("stats" on the control
 * socket): the text after its 250 line, malloc'd, or NULL (no spoold, or
 * it said no: told on stderr) */
static char *
running_totals(const struct spoold_conf *cf)
{
	char line[300], *text = NULL;
	size_t len = 0, n;
	FILE *fp, *mem;
	int rc = control_exchange(cf, "stats", NULL, line, sizeof(line), &fp);

	if (rc == 1)
		fprintf(stderr, "spoolctl: stats: no spoold answers at %s/control.sock: the running "
		    "totals are left out\n", cf->datadir);
	if (rc != 0)
		return NULL;
	if (line[0] != '2') {
		fprintf(stderr, "spoolctl: stats: spoold: %s\n", strlen(line) > 4 ? line + 4 : line);
		fclose(fp);
		return NULL;
	}
	if ((mem = open_memstream(&text, &len)) != NULL) {
		char chunk[8192];

		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			fwrite(chunk, 1, n, mem);
		fclose(mem);
	}
	fclose(fp);
	return text;
}

/* print_totals - the series of the metrics text, comments left out:
 * "name{labels} value" a line, or JSON members "name{labels}": value */
static void
print_totals(const char *text)
{
	int first = 1;

	while (*text != '\0') {
		size_t n = strcspn(text, "\n");

		if (n > 0 && text[0] != '#') {
			const char *sp = memrchr(text, ' ', n);

			if (!json)
				printf("%.*s\n", (int)n, text);
			else if (sp != NULL) {
				printf("%s\n    \"", first ? "" : ",");
				for (const char *c = text; c < sp; c++)
					printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
				printf("\": %.*s", (int)(text + n - sp - 1), sp + 1);
				first = 0;
			}
		}
		text += n + (text[n] == '\n');
	}
	if (json)
		printf("%s", first ? "" : "\n  ");
}

/* cmd_stats - what the spool holds, read from it (works without spoold),
 * then the running spoold's totals: the same counters as GET /metrics */
static int
cmd_stats(struct spool *sp, const struct spoold_conf *cf)
{
	struct spool_stats st;
	enum spool_err rc = spool_get_stats(sp, &st);
	char *totals;

	if (rc != SPOOL_OK) {
		fprintf(stderr, "spoolctl: stats: %s\n", spool_strerror(rc));
		return EX_SOFTWARE;
	}
	totals = running_totals(cf);
	if (json) {
		printf("{\"messages\": %" PRIu64 ", \"quarantined\": %" PRIu64 ", \"domains\": %"
		    PRIu64 ", \"map_size\": %" PRIu64 ", \"map_used\": %" PRIu64 ", \"map_max\": %"
		    PRIu64 ", \"readers\": %u, \"max_readers\": %u,\n  \"running\": ", st.messages,
		    st.quarantined, st.domains, st.map_size, st.map_used, st.map_max, st.readers,
		    st.max_readers);
		if (totals == NULL)
			printf("null");
		else {
			printf("{");
			print_totals(totals);
			printf("}");
		}
		printf("}\n");
	} else {
		printf("messages %" PRIu64 "\nquarantined %" PRIu64 "\ndomains %" PRIu64 "\nmap_size %"
		    PRIu64 "\nmap_used %" PRIu64 "\nmap_max %" PRIu64 "\nreaders %u\nmax_readers %u\n",
		    st.messages, st.quarantined, st.domains, st.map_size, st.map_used, st.map_max,
		    st.readers, st.max_readers);
		if (totals != NULL)
			print_totals(totals);
	}
	free(totals);
	return 0;
}

/* ---- the verify cache (recipients verify) ---- */

/* verify_row - one cached result: address, status (valid, invalid, or
 * expired: no longer used, swept within the hour), age in seconds, when
 * it expires, the primary's reply */
static void
verify_row(const char *key, const struct spool_verify *vr, int first)
{
	const char *status = vr->expires <= now ? "expired" : vr->valid ? "valid" : "invalid";
	char checked[32], expires[32], addr[1100], reply[1100];

	show_when(vr->checked, checked, sizeof(checked));
	show_when(vr->expires, expires, sizeof(expires));
	if (!json) {
		fprintf(out, "%s %s %lld %s %s\n", safe_text(key, addr, sizeof(addr)), status,
		    age_of(vr->checked), expires, safe_text(vr->reply, reply, sizeof(reply)));
		return;
	}
	fprintf(out, "%s\n  {\"address\": ", first ? "" : ",");
	json_str(key);
	fprintf(out, ", \"status\": \"%s\", \"valid\": %s, \"checked\": \"%s\", \"age\": %lld, "
	    "\"expires\": \"%s\", \"reply\": ", status, vr->valid ? "true" : "false", checked,
	    age_of(vr->checked), expires);
	json_str(vr->reply);
	fprintf(out, "}");
}

/* cmd_verify - what the verify cache holds for each address */
static int
cmd_verify(struct spool *sp, int argc, char **argv)
{
	char key[SPOOL_VERIFY_KEY_MAX + 1];
	struct spool_verify vr;
	enum spool_err rc;
	int status = 0, first = 1;

	if (out_begin() == -1)
		return EX_SOFTWARE;
	fprintf(out, json ? "[" : "# address status age(s) expires reply\n");
	for (int i = 0; i < argc; i++) {
		if (spool_verify_key_of(argv[i], key, sizeof(key)) == -1) {
			fprintf(stderr, "spoolctl: verify: \"%s\" is not an address (local@domain)\n",
			    argv[i]);
			status = EX_USAGE;
			continue;
		}
		if ((rc = spool_get_verify(sp, key, &vr)) != SPOOL_OK) {
			fprintf(stderr, "spoolctl: verify %s: %s\n", key, rc == SPOOL_ENOTFOUND ?
			    "not in the cache" : spool_strerror(rc));
			status = rc == SPOOL_ENOTFOUND ? EX_DATAERR : EX_SOFTWARE;
			continue;
		}
		verify_row(key, &vr, first);
		spool_verify_free(&vr);
		first = 0;
	}
	if (json)
		fprintf(out, "\n]\n");
	out_end();
	return status;
}

/* unverify_via_spoold - one address through the running spoold: 0, or
 * the exit status */
static int
unverify_via_spoold(const struct spoold_conf *cf, const char *key)
{
	char reply[700];

	if (control_ask(cf, "unverify", key, reply, sizeof(reply)) != 0)
		return EX_SOFTWARE;
	if (reply[0] == '2')
		printf("%s\n", reply + 4);
	else
		fprintf(stderr, "spoolctl: unverify %s\n", reply + 4);
	return reply_status(reply);
}

/* cmd_unverify - the verify cache forgets each address, so its next RCPT
 * is asked of the primary again (a mailbox just made there) */
static int
cmd_unverify(struct spool *sp, const struct spoold_conf *cf, int argc, char **argv)
{
	char key[SPOOL_VERIFY_KEY_MAX + 1];
	enum spool_err rc;
	int status = 0, st;

	for (int i = 0; i < argc; i++) {
		if (spool_verify_key_of(argv[i], key, sizeof(key)) == -1) {
			fprintf(stderr, "spoolctl: unverify: \"%s\" is not an address (local@domain)\n",
			    argv[i]);
			status = EX_USAGE;
			continue;
		}
		if (sp == NULL) {
			if ((st = unverify_via_spoold(cf, key)) != 0)
				status = st;
			continue;
		}
		if ((rc = spool_unverify(sp, key)) != SPOOL_OK) {
			fprintf(stderr, "spoolctl: unverify %s: %s\n", key, rc == SPOOL_ENOTFOUND ?
			    "not in the cache" : spool_strerror(rc));
			status = rc == SPOOL_ENOTFOUND ? EX_DATAERR : EX_SOFTWARE;
			continue;
		}
		log_change("unverify %s: removed from the verify cache", key);
		printf("%s removed from the verify cache\n", key);
	}
	return status;
}

/* cmd_hold - hold or release: no spontaneous runs for the domain while held
 * (ETRN, ATRN and flush still work); spoold sees it at its next look */
static int
cmd_hold(struct spool *sp, const struct spoold_conf *cf, const char *domain, int held)
{
	char name[SMTP_DOMAIN_MAX + 1], reply[700];
	enum spool_err rc;

	snprintf(name, sizeof(name), "%s", domain);
	if (strlen(domain) >= sizeof(name) || smtp_domain_canon(name, 1) == -1) {
		fprintf(stderr, "spoolctl: %s: not a domain name\n", domain);
		return EX_USAGE;
	}
	if (sp == NULL) {	/* spoold runs: it applies the change */
		if (control_ask(cf, held ? "hold" : "release", name, reply, sizeof(reply)) != 0)
			return EX_SOFTWARE;
		if (reply[0] != '2') {
			fprintf(stderr, "spoolctl: %s %s\n", held ? "hold" : "release", reply + 4);
			return reply_status(reply);
		}
	} else if ((rc = spool_set_hold(sp, name, held)) != SPOOL_OK) {
		fprintf(stderr, "spoolctl: %s %s: %s\n", held ? "hold" : "release", name,
		    spool_strerror(rc));
		return EX_SOFTWARE;
	} else
		log_change("%s %s: %s", held ? "hold" : "release", name, held ? "held" : "released");
	printf("%s %s%s\n", name, held ? "held: no retries until spoolctl release" : "released",
	    spoold_conf_domain(cf, name) == NULL ? " (not a configured domain)" : "");
	return 0;
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: spoolctl [-c FILE] [--json] COMMAND\n"
	    "       spoolctl -V | --version | -h | --help\n"
	    "  list               one line per domain: domain messages bytes oldest-age(s)\n"
	    "                     quarantined\n"
	    "  show DOMAIN        the messages queued for DOMAIN\n"
	    "  quarantine [DOMAIN] the messages a content filter quarantined, with why\n"
	    "  release ID...      queue quarantined messages for delivery\n"
	    "  delete ID...       remove messages, queued or quarantined (no bounce is sent;\n"
	    "                     through the running spoold, or directly when none runs)\n"
	    "  stats              spool totals and map usage; with spoold running, its\n"
	    "                     running totals too (the counters of GET /metrics)\n"
	    "  flush DOMAIN       deliver DOMAIN's mail now (asks the running spoold)\n"
	    "  bounce ID...       return messages to their senders now, with a DSN\n"
	    "                     (asks the running spoold)\n"
	    "  hold DOMAIN        no retries for DOMAIN (ETRN and ATRN still work)\n"
	    "  release DOMAIN     retries again\n"
	    "  retry DOMAIN       try DOMAIN now (the same as flush)\n"
	    "  verify ADDRESS...  the verify cache's result for each address (recipients\n"
	    "                     verify): valid or invalid, age(s), expiry, the reply\n"
	    "  unverify ADDRESS... remove addresses from the verify cache: the next RCPT\n"
	    "                     asks the primary again\n");
	exit(status);
}

/* copy_block - the block of domain name in the copy's text (to free), or
 * NULL when it has none */
static char *
copy_block(const char *text, const char *name)
{
	char head[SMTP_DOMAIN_MAX + 16];
	const char *p = text, *end;
	size_t n = (size_t)snprintf(head, sizeof(head), "domain %s {\n", name);

	while (p != NULL && strncmp(p, head, n) != 0)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	if (p == NULL || (end = strstr(p, "\n}\n")) == NULL)
		return NULL;
	return strndup(p, (size_t)(end - p) + 3);
}

/* add_pgsql_copy - the domains spoold last read from PostgreSQL, as it
 * keeps them in the spool (what they say is checked there, not here) */
static void
add_pgsql_copy(struct spoold_conf *cf)
{
	struct conf_errors errs = { 0 };
	char *copy, *block;

	if (cf->domains_map == NULL || (cf->only_domain != NULL && cf->only_domain[0] == '\0') ||
	    (copy = spoold_conf_read_pgsql_copy(cf->datadir)) == NULL)
		return;
	/* one domain's block only, when one is asked about */
	block = cf->only_domain != NULL ? copy_block(copy, cf->only_domain) : copy;
	if (block != NULL)
		spoold_conf_add_domains(cf, SPOOLD_PGSQL_COPY, block, &errs);
	conf_errors_free(&errs);
	if (block != copy)
		free(block);
	free(copy);
}

/* conf_for - the configuration cmd needs: list every domain block; show,
 * hold and release of a domain that one (canonical as spoold's are); the
 * rest none.  The blocks not needed are skipped unread, so that show takes
 * time in proportion to its domain, not to 100,000 configured ones. */
static struct spoold_conf *
conf_for(const char *path, const char *cmd, const char *arg, struct conf_errors *errs)
{
	char name[SMTP_DOMAIN_MAX + 1] = "";

	if (strcmp(cmd, "list") == 0)
		return spoold_conf_load(path, errs);
	if (arg != NULL && strlen(arg) < sizeof(name) && (strcmp(cmd, "show") == 0 ||
	    ((strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0) && !is_queue_id(arg)))) {
		snprintf(name, sizeof(name), "%s", arg);
		if (smtp_domain_canon(name, 1) == -1)
			name[0] = '\0';	/* the command says it is no domain */
	}
	return spoold_conf_load_one(path, name, errs);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SYSCONFDIR "/spoold/spoold.conf", *cmd;
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;
	struct spool *sp;
	char err[512];
	int ch, status, writes;

	while ((ch = getopt_long(argc, argv, "c:jVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(0); break;
		case 'V': printf("spoolctl %s\n", PACKAGE_VERSION); return 0;
		default: usage(EX_USAGE);
		}
	}
	if (optind >= argc)
		usage(EX_USAGE);
	cmd = argv[optind++];
	log_init("spoolctl", 1, 0);
	now = time(NULL);
	if ((cf = conf_for(path, cmd, optind < argc ? argv[optind] : NULL, &errs)) == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		conf_errors_free(&errs);
		return EX_CONFIG;
	}
	add_pgsql_copy(cf);
	out = stdout;
	if (strcmp(cmd, "retry") == 0)	/* try now: what an authorized ETRN does */
		cmd = "flush";
	if (strcmp(cmd, "flush") == 0 || strcmp(cmd, "bounce") == 0) {
		if (optind >= argc || (cmd[0] == 'f' && optind + 1 != argc))
			usage(EX_USAGE);
		for (status = 0; optind < argc && status == 0; optind++)
			status = cmd_control(cf, cmd, argv[optind]);
		spoold_conf_free(cf);
		return status;
	}
	/* Only delete, hold, release and unverify write, and only when no
	 * spoold runs (else they go to it); the others must not create or
	 * lock anything. */
	writes = strcmp(cmd, "delete") == 0 || strcmp(cmd, "hold") == 0 ||
	    strcmp(cmd, "release") == 0 || strcmp(cmd, "unverify") == 0;
	if (writes && spoold_running(cf))
		sp = NULL;
	else if (spool_open(&sp, cf->datadir, cf->max_spool_size, writes ? 0 : SPOOL_RDONLY,
	    err, sizeof(err)) != SPOOL_OK) {
		fprintf(stderr, "spoolctl: %s\n", err);
		spoold_conf_free(cf);
		return EX_UNAVAILABLE;
	}
	/* spoolctl reads records here and there, never bodies: on a spool not
	 * in the page cache each fault then reads a page, not the megabytes
	 * around it (show of 100 messages on a cold spool: 0.03-0.04 s, was
	 * 0.07-0.08 s) */
	if (sp != NULL)
		spool_read_at_random(sp, 1);
	if (strcmp(cmd, "list") == 0 && optind == argc)
		status = cmd_list(sp, cf);
	else if (strcmp(cmd, "show") == 0 && optind + 1 == argc)
		status = cmd_show(sp, cf, argv[optind]);
	else if (strcmp(cmd, "delete") == 0 && optind < argc)
		status = cmd_delete(sp, cf, argc - optind, argv + optind);
	else if (strcmp(cmd, "stats") == 0 && optind == argc)
		status = cmd_stats(sp, cf);
	else if (strcmp(cmd, "quarantine") == 0 && optind + 1 >= argc)
		status = cmd_quarantine(sp, cf, optind < argc ? argv[optind] : NULL);
	else if (strcmp(cmd, "release") == 0 && optind < argc && is_queue_id(argv[optind]))
		status = cmd_release_ids(sp, cf, argc - optind, argv + optind);
	else if (strcmp(cmd, "verify") == 0 && optind < argc)
		status = cmd_verify(sp, argc - optind, argv + optind);
	else if (strcmp(cmd, "unverify") == 0 && optind < argc)
		status = cmd_unverify(sp, cf, argc - optind, argv + optind);
	else if ((strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0) && optind + 1 == argc)
		status = cmd_hold(sp, cf, argv[optind], cmd[0] == 'h');
	else
		usage(EX_USAGE);
	if (sp != NULL)
		spool_close(sp);
	spoold_conf_free(cf);
	return status;
}
