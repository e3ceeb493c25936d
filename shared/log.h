/*
 * log.h - one line per event, to stderr (foreground) or syslog facility mail.
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
