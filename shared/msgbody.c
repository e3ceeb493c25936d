/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * msgbody.c - message bodies in memory or in an unlinked temp file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "msgbody.h"

void
msgbody_init(struct msgbody *b, const char *spill_dir, size_t threshold)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->mem);
	b->fd = -1;
	b->spill_dir = spill_dir;
	b->threshold = threshold;
}

/* msgbody_tmpfile - an anonymous file in dir (O_TMPFILE where supported) */
static int
msgbody_tmpfile(const char *dir)
{
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/body.XXXXXX", dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -1;
	(void)unlink(path);
	return fd;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* msgbody_spill - move what is in memory to a temp file */
static int
msgbody_spill(struct msgbody *b)
{
	if ((b->fd = msgbody_tmpfile(b->spill_dir)) == -1)
		return -1;
	if (write_all(b->fd, buf_head(&b->mem), buf_used(&b->mem)) == -1)
		return -1;
	buf_free(&b->mem);
	return 0;
}

int
msgbody_append(struct msgbody *b, const void *data, size_t len)
{
	if (b->failed) {
		errno = b->err;
		return -1;
	}
	if (b->fd == -1 && buf_used(&b->mem) + len > b->threshold && msgbody_spill(b) == -1)
		goto fail;
	if (b->fd == -1) {
		if (buf_append(&b->mem, data, len) == -1) {
			errno = ENOMEM;
			goto fail;
		}
	} else if (write_all(b->fd, data, len) == -1)
		goto fail;
	b->size += len;
	return 0;
fail:
	b->failed = 1;
	b->err = errno;
	return -1;
}

int
msgbody_read(const struct msgbody *b, uint64_t off, void *dst, size_t len)
{
	if (off + len > b->size) {
		errno = EINVAL;
		return -1;
	}
	if (b->fd == -1) {
		memcpy(dst, buf_head(&b->mem) + off, len);
		return 0;
	}
	while (len > 0) {
		ssize_t n = pread(b->fd, dst, len, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		dst = (char *)dst + n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}


void
msgbody_free(struct msgbody *b)
{
	buf_free(&b->mem);
	if (b->fd != -1)
		close(b->fd);
	b->fd = -1;
	b->size = 0;
}

#define MSGBODY_HEADER_SCAN	65536

/* header_value - the value of the field at p (its name already matched),
 * up to the next line that does not start with a blank, unfolded */
static void
header_value(const char *p, const char *end, char *dst, size_t len)
{
	size_t o = 0;

	while (p < end) {
		if (*p == '\n') {
			if (p + 1 >= end || (p[1] != ' ' && p[1] != '\t'))
				break;
		} else if (*p != '\r' && o + 1 < len && (o > 0 || (*p != ' ' && *p != '\t')))
			dst[o++] = *p == '\t' ? ' ' : *p;
		p++;
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

int
msgbody_header(const struct msgbody *b, const char *name, char *dst, size_t len)
{
	size_t n = b->size < MSGBODY_HEADER_SCAN ? (size_t)b->size : MSGBODY_HEADER_SCAN;
	size_t nlen = strlen(name);
	char *buf;
	const char *p, *end;

	if (len == 0)
		return 0;
	dst[0] = '\0';
	if (n == 0 || (buf = malloc(n)) == NULL)
		return 0;
	if (msgbody_read(b, 0, buf, n) == -1) {
		free(buf);
		return 0;
	}
	for (p = buf, end = buf + n; p < end; ) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (*p == '\r' || *p == '\n')
			break;	/* the blank line: the end of the header */
		if ((size_t)(end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			header_value(p + nlen + 1, end, dst, len);
			free(buf);
			return 1;
		}
		if (eol == NULL)
			break;
		p = eol + 1;
	}
	free(buf);
	return 0;
}
