/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * dsn.c - composing delivery status notifications; see dsn.h.
 *
 * Trusts nothing it is given: addresses, ENVID, ORCPT and reply texts come
 * from clients and peers, so each goes through clean_*() before it is
 * written, and the MIME boundary is checked against the returned message.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_cmd.h"
#include "dsn.h"

int
dsn_notify_allows(unsigned notify, enum dsn_action a)
{
	if (notify == 0)
		return 1;
	if (notify & NOTIFY_NEVER)
		return 0;
	return (notify & (a == DSN_FAILED ? NOTIFY_FAILURE : NOTIFY_DELAY)) != 0;
}

/* enhanced_code - the length of an RFC 3463 code "c.sss.ddd" at p, or 0 */
static size_t
enhanced_code(const char *p)
{
	size_t i = 0, digits;

	if (p[0] < '2' || p[0] > '5' || p[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; isdigit((unsigned char)p[i]) && digits < 3; digits++)
			i++;
		if (digits == 0 || (part == 0 && p[i] != '.'))
			return 0;
		if (part == 0)
			i++;
	}
	return isdigit((unsigned char)p[i]) ? 0 : i;
}

void
dsn_status(const char *reply, char *out, size_t outlen)
{
	const char *p = reply;
	size_t n;
	char cls = reply[0] >= '2' && reply[0] <= '5' ? reply[0] : '5';

	while (isdigit((unsigned char)*p))
		p++;
	while (*p == ' ' || *p == '-')
		p++;
	if ((n = enhanced_code(p)) > 0 && p[0] == cls) {
		snprintf(out, outlen, "%.*s", (int)n, p);
		return;
	}
	snprintf(out, outlen, "%c.0.0", cls);
}

/* clean_text - s as printable ASCII for a report line: anything else
 * becomes '?', and it stops at max bytes */
static const char *
clean_text(char *dst, size_t dstlen, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max && i + 1 < dstlen; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
	return dst;
}

/* clean_xtext - s as xtext (RFC 3461 4), the form RFC 3464 2.1.2 wants for
 * an address or envelope id that is not plain printable ASCII */
static const char *
clean_xtext(char *dst, size_t dstlen, const char *s)
{
	if (xtext_encode(s, dst, dstlen) >= dstlen)
		dst[dstlen - 1] = '\0';
	return dst;
}

static void
rfc5322_date(time_t t, char *out, size_t len)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, len, "%s, %d %s %d %02d:%02d:%02d +0000", day[tm.tm_wday], tm.tm_mday,
	    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* returned_part - how much of the original goes back, and as what */
static size_t
returned_part(const struct dsn_report *r, int *full)
{
	const char *end;
	size_t n;

	*full = r->ret_full && r->orig_complete && r->origlen <= DSN_FULL_MAX;
	if (*full)
		return r->origlen;
	n = r->origlen < DSN_HEADERS_MAX ? r->origlen : DSN_HEADERS_MAX;
	if (n >= 2 && memcmp(r->orig, "\r\n", 2) == 0)
		return 0;	/* no header section at all */
	if ((end = memmem(r->orig, n, "\r\n\r\n", 4)) != NULL)
		return (size_t)(end - r->orig) + 2;
	/* cut at the last whole line */
	while (n > 0 && r->orig[n - 1] != '\n')
		n--;
	return n;
}

static int
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

static int
put_header(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	char date[64];
	int failed = r->action == DSN_FAILED;

	rfc5322_date(r->now, date, sizeof(date));
	return buf_printf(b, "Date: %s\r\n"
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Message-ID: <%016llx.%lld.dsn@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n",
	    date, r->reporting_mta, r->sender,
	    failed ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)",
	    (unsigned long long)r->queue_id, (long long)r->now, r->reporting_mta, boundary);
}

static int
put_human(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	char addr[SMTP_PATH_MAX * 4], reply[600], mta[300];

	if (buf_printf(b, "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "\r\n"
	    "This is the mail system at host %s.\r\n"
	    "\r\n", boundary, r->reporting_mta) == -1)
		return -1;
	if (buf_printf(b, r->action == DSN_FAILED ?
	    "I'm sorry to have to inform you that your message could not\r\n"
	    "be delivered to one or more recipients. It is returned below.\r\n"
	    "\r\n"
	    "For further assistance, please contact <postmaster@%s>.\r\n"
	    "\r\n" :
	    "This is a warning only: your message has not been delivered yet to\r\n"
	    "one or more recipients. The mail system will go on trying; you do not\r\n"
	    "need to send it again.\r\n"
	    "\r\n"
	    "For further assistance, please contact <postmaster@%s>.\r\n"
	    "\r\n", r->reporting_mta) == -1)
		return -1;
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *d = &r->rcpts[i];

		clean_text(addr, sizeof(addr), d->addr, SMTP_PATH_MAX * 2);
		clean_text(reply, sizeof(reply), d->reply, 512);
		if (d->remote_mta != NULL)
			clean_text(mta, sizeof(mta), d->remote_mta, 256);
		if (buf_printf(b, d->remote_mta ? "<%s>: host %s said: %s\r\n" : "<%s>: %s%s\r\n",
		    addr, d->remote_mta ? mta : "", reply) == -1)
			return -1;
	}
	return buf_printf(b, "\r\n");
}

static int
put_status_rcpt(struct buf *b, const struct dsn_report *r, const struct dsn_rcpt *d,
    const char *date)
{
	char addr[SMTP_PATH_MAX * 6], orcpt[SMTP_ORCPT_MAX * 3 + 1], type[40], mta[300];
	char reply[600], status[16];

	dsn_status(d->reply, status, sizeof(status));
	if (r->action == DSN_DELAYED && status[0] == '5')
		status[0] = '4';
	if (buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n",
	    clean_xtext(addr, sizeof(addr), d->addr)) == -1)
		return -1;
	if (d->orcpt_type[0] != '\0' && buf_printf(b, "Original-Recipient: %s; %s\r\n",
	    clean_text(type, sizeof(type), d->orcpt_type, 32),
	    clean_xtext(orcpt, sizeof(orcpt), d->orcpt)) == -1)
		return -1;
	if (buf_printf(b, "Action: %s\r\nStatus: %s\r\n",
	    r->action == DSN_FAILED ? "failed" : "delayed", status) == -1)
		return -1;
	if (d->remote_mta != NULL && buf_printf(b, "Remote-MTA: dns; %s\r\n",
	    clean_text(mta, sizeof(mta), d->remote_mta, 256)) == -1)
		return -1;
	return buf_printf(b, "Diagnostic-Code: %s; %s\r\nLast-Attempt-Date: %s\r\n",
	    d->remote_mta ? "smtp" : "x-spoold", clean_text(reply, sizeof(reply), d->reply, 512),
	    date);
}

static int
put_status(struct buf *b, const struct dsn_report *r, const char *boundary)
{
	char date[64], envid[SMTP_ENVID_MAX * 3 + 1];

	if (buf_printf(b, "--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Spoold-Queue-ID: %016llx\r\n", boundary, r->reporting_mta,
	    (unsigned long long)r->queue_id) == -1)
		return -1;
	if (r->envid[0] != '\0' && buf_printf(b, "Original-Envelope-Id: %s\r\n",
	    clean_xtext(envid, sizeof(envid), r->envid)) == -1)
		return -1;
	rfc5322_date((time_t)r->arrival, date, sizeof(date));
	if (buf_printf(b, "Arrival-Date: %s\r\n", date) == -1)
		return -1;
	rfc5322_date(r->now, date, sizeof(date));
	for (size_t i = 0; i < r->nrcpts; i++)
		if (put_status_rcpt(b, r, &r->rcpts[i], date) == -1)
			return -1;
	return buf_printf(b, "\r\n");
}

static int
put_original(struct buf *b, const struct dsn_report *r, const char *boundary, int *eight_bit)
{
	int full;
	size_t n = returned_part(r, &full);

	*eight_bit = has_8bit(r->orig, n);
	if (buf_printf(b, "--%s\r\n"
	    "Content-Description: %s\r\n"
	    "Content-Type: %s\r\n"
	    "%s"
	    "\r\n", boundary, full ? "Undelivered Message" : "Undelivered Message Headers",
	    full ? "message/rfc822" : "text/rfc822-headers",
	    *eight_bit ? "Content-Transfer-Encoding: 8bit\r\n" : "") == -1)
		return -1;
	if (buf_append(b, r->orig, n) == -1)
		return -1;
	if (n > 0 && r->orig[n - 1] != '\n' && buf_printf(b, "\r\n") == -1)
		return -1;
	return buf_printf(b, "\r\n--%s--\r\n", boundary);
}

/* choose_boundary - one that does not occur in the returned original */
static void
choose_boundary(const struct dsn_report *r, char *out, size_t len)
{
	for (unsigned n = 0;; n++) {
		/* RFC 2046 5.1.1: at most 70 characters */
		snprintf(out, len, "%016llx.%lld.%u=_spoold", (unsigned long long)r->queue_id,
		    (long long)r->now, n);
		if (memmem(r->orig, r->origlen, out, strlen(out)) == NULL)
			return;
	}
}

int
dsn_compose(const struct dsn_report *r, struct buf *out, int *eight_bit)
{
	char boundary[80];

	choose_boundary(r, boundary, sizeof(boundary));
	if (put_header(out, r, boundary) == -1 ||
	    put_human(out, r, boundary) == -1 ||
	    put_status(out, r, boundary) == -1 ||
	    put_original(out, r, boundary, eight_bit) == -1)
		return -1;
	return 0;
}
