/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * log.c - logging to stderr or syslog(LOG_MAIL).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_to_stderr = 1;
static int log_level_verbose;
static const char *log_ident = "spoold";
static const char *log_open_role;	/* the role syslog's tag is open with */
static char log_host[256];		/* for the stderr prefix */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* log_init - choose the destination once, at start-up */
void
log_init(const char *ident, int foreground, int verbose)
{
	log_ident = ident;
	log_to_stderr = foreground;
	log_level_verbose = verbose;
	log_open_role = NULL;
	if (gethostname(log_host, sizeof(log_host)) == -1 || log_host[0] == '\0')
		snprintf(log_host, sizeof(log_host), "localhost");
	log_host[strcspn(log_host, ".")] = '\0';	/* as syslog: the short name */
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}


int
log_verbose(void)
{
	return log_level_verbose;
}

/* same_role - roles are compared by name: the LOG_* strings are one object
 * only where the linker merges them */
static int
same_role(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* log_tag - "IDENT" or "IDENT/ROLE" into dst */
static const char *
log_tag(const char *role, char *dst, size_t len)
{
	if (role == NULL)
		return log_ident;
	snprintf(dst, len, "%s/%s", log_ident, role);
	return dst;
}

/* log_stamp - RFC 3339 local time with microseconds, as rsyslog's file
 * format writes it: pflogsumm reads either that or the traditional one */
static void
log_stamp(char *dst, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char day[32], zone[8];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);	/* +hhmm */
	snprintf(dst, len, "%s.%06d%.3s:%.2s", day, (int)(ts.tv_nsec / 1000) % 1000000, zone, zone + 3);
}

/* log_vemit - format one line and send it where it belongs */
static void
log_vemit(int prio, const char *role, const char *fmt, va_list ap, const char *suffix)
{
	static char tags[8][64];	/* syslog keeps the ident's pointer */
	static const char *tag_roles[8];
	const char *label = prio == LOG_WARNING ? "warning: " :
	    prio == LOG_CRIT ? "fatal: " : prio == LOG_ERR ? "error: " : "";
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_stderr) {
		char stamp[80], tag[64];

		log_stamp(stamp, sizeof(stamp));
		fprintf(stderr, "%s %s %s[%ld]: %s%s%s%s\n", stamp, log_host,
		    log_tag(role, tag, sizeof(tag)), (long)getpid(), label, line,
		    suffix ? ": " : "", suffix ? suffix : "");
		fflush(stderr);
		return;
	}
	/* the committer thread logs too: the tag and the line go together */
	pthread_mutex_lock(&log_lock);
	if (!same_role(role, log_open_role)) {
		size_t i;

		for (i = 0; i < 8 && tag_roles[i] != NULL && !same_role(tag_roles[i], role); i++)
			;
		if (i < 8 && tag_roles[i] == NULL) {
			log_tag(role, tags[i], sizeof(tags[i]));
			tag_roles[i] = role;
		}
		/* more than 8 roles: the bare ident rather than a wrong tag */
		openlog(role == NULL || i >= 8 ? log_ident : tags[i], LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_open_role = i < 8 ? role : NULL;
	}
	syslog(prio, "%s%s%s%s", label, line, suffix ? ": " : "", suffix ? suffix : "");
	pthread_mutex_unlock(&log_lock);
}

#define LOG_BODY(prio, role, suffix) do {		\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vemit(prio, role, fmt, ap, suffix);		\
	va_end(ap);					\
} while (0)

void
log_role(const char *role, const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, role, NULL);
}

void
log_role_warn(const char *role, const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, role, NULL);
}

void
log_debug(const char *fmt, ...)
{
	if (log_level_verbose > 0)
		LOG_BODY(LOG_DEBUG, NULL, NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, NULL, NULL);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, NULL, NULL);
}

void
log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);

	LOG_BODY(LOG_WARNING, NULL, err);
}

void
log_crit(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, NULL, NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *err = strerror(errno);

	LOG_BODY(LOG_CRIT, NULL, err);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, NULL, NULL);
	exit(1);
}

char *
log_escape(char *dst, size_t dstlen, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (dstlen == 0)
		return dst;
	for (i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= dstlen)
			break;
		if (c < 0x20 || c >= 0x7f || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else
			dst[o++] = (char)c;
	}
	if (s[i] != '\0' && o + 4 < dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}
