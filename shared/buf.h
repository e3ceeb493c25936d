/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * buf.h - a byte buffer with a read offset, for socket I/O.
 *
 * Data lives in b_data[b_off .. b_len).  buf_reserve() compacts before it
 * grows, so a buffer that is drained as fast as it fills never grows.
 */
#ifndef SHARED_BUF_H
#define SHARED_BUF_H

#include <stddef.h>

struct buf {
	char	*b_data;
	size_t	 b_off;		/* first unread byte */
	size_t	 b_len;		/* end of data */
	size_t	 b_size;	/* allocated */
};

void	buf_init(struct buf *);
void	buf_free(struct buf *);
/* buf_reserve - make room for n more bytes; returns 0, or -1 on ENOMEM */
int	buf_reserve(struct buf *, size_t n);
int	buf_append(struct buf *, const void *, size_t);
/* buf_printf - append a formatted string; 0, or -1 on ENOMEM */
int	buf_printf(struct buf *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	buf_consume(struct buf *, size_t);
void	buf_clear(struct buf *);

static inline size_t buf_used(const struct buf *b) { return b->b_len - b->b_off; }
static inline char *buf_head(const struct buf *b) { return b->b_data + b->b_off; }
static inline char *buf_tail(const struct buf *b) { return b->b_data + b->b_len; }
static inline size_t buf_room(const struct buf *b) { return b->b_size - b->b_len; }

#endif
