/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * log.h - one line per event, to stderr (foreground) or syslog facility mail.
 *
 * Lines about mail say which part of the daemon speaks, as Postfix names its
 * daemons ("smtpd", "smtp", "cleanup", "qmgr", "bounce", ...): the syslog tag
 * is then IDENT/ROLE[PID], so pflogsumm --syslog-name=IDENT and a
 * postmaster's habits read them.  On stderr each line carries the same
 * prefix as a syslog file (RFC 3339 time, host, tag), so a foreground log
 * is a mail.log too.  Warnings start "warning: ", as Postfix's do.
 *
 * Client-supplied text must go through log_escape() before it is logged, so a
 * hostile peer cannot forge log lines or smuggle terminal escapes.
 */
#ifndef SHARED_LOG_H
#define SHARED_LOG_H

#include <stddef.h>
#include <stdarg.h>

#define LOG_ATTR(f, a) __attribute__((format(printf, f, a)))

void log_init(const char *ident, int foreground, int verbose);
int  log_verbose(void);

/* the roles */
#define LOG_SMTPD	"smtpd"		/* SMTP sessions coming in, ETRN */
#define LOG_ODMR	"odmr"		/* ODMR sessions, ATRN, the turned delivery */
#define LOG_CLEANUP	"cleanup"	/* the message's content: filters, message-id */
#define LOG_QMGR	"qmgr"		/* the queue: stored, removed, expired */
#define LOG_SMTP	"smtp"		/* deliveries out */
#define LOG_BOUNCE	"bounce"	/* delivery status notifications */
#define LOG_CONTROL	"control"	/* what spoolctl asked for */
#define LOG_VERIFY	"verify"	/* recipient probes (recipients verify) */

/* log_role - info (log_role_warn: a warning) as ROLE */
void log_role(const char *role, const char *fmt, ...) LOG_ATTR(2, 3);
void log_role_warn(const char *role, const char *fmt, ...) LOG_ATTR(2, 3);

void log_debug(const char *fmt, ...) LOG_ATTR(1, 2);
void log_info(const char *fmt, ...) LOG_ATTR(1, 2);
void log_warnx(const char *fmt, ...) LOG_ATTR(1, 2);
void log_warn(const char *fmt, ...) LOG_ATTR(1, 2);	/* appends strerror(errno) */
void log_crit(const char *fmt, ...) LOG_ATTR(1, 2);
void fatal(const char *fmt, ...) LOG_ATTR(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_ATTR(1, 2) __attribute__((noreturn));

/* log_escape - copy at most max input bytes of s into dst (size dstlen) with
 * control and non-ASCII bytes as \xNN; returns dst.  Clipped text ends "...". */
char *log_escape(char *dst, size_t dstlen, const char *s, size_t max);
/* LOG_ESCAPE_SIZE - a dst that holds max input bytes escaped (each may
 * become four), the "..." and the NUL: nothing is clipped silently */
#define LOG_ESCAPE_SIZE(max)	((max) * 4 + 12)

#endif
