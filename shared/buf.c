/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * buf.c - byte buffers.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_free(struct buf *b)
{
	free(b->b_data);
	buf_init(b);
}

void
buf_clear(struct buf *b)
{
	b->b_off = b->b_len = 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
	size_t need, size;
	char *p;

	if (b->b_off > 0 && b->b_size - b->b_len < n) {
		memmove(b->b_data, b->b_data + b->b_off, b->b_len - b->b_off);
		b->b_len -= b->b_off;
		b->b_off = 0;
	}
	need = b->b_len + n;
	if (need <= b->b_size)
		return 0;
	size = b->b_size ? b->b_size : 1024;
	while (size < need)
		size *= 2;
	if ((p = realloc(b->b_data, size)) == NULL)
		return -1;
	b->b_data = p;
	b->b_size = size;
	return 0;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) == -1)
		return -1;
	memcpy(b->b_data + b->b_len, data, len);
	b->b_len += len;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	b->b_off += n;
	if (b->b_off >= b->b_len)
		b->b_off = b->b_len = 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n + 1) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(buf_tail(b), (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->b_len += (size_t)n;
	return 0;
}
