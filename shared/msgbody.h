/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * msgbody.h - a message body being received: in memory up to a threshold,
 * then in an unlinked temporary file, so a large message never sits whole in
 * memory and a crash leaves nothing behind on disk.
 */
#ifndef SHARED_MSGBODY_H
#define SHARED_MSGBODY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

struct msgbody {
	struct buf	 mem;
	int		 fd;		/* -1 while in memory */
	uint64_t	 size;
	const char	*spill_dir;
	size_t		 threshold;
	int		 failed;	/* an append failed: errno in err */
	int		 err;
};

void	msgbody_init(struct msgbody *, const char *spill_dir, size_t threshold);
/* msgbody_append - 0, or -1 with errno (ENOSPC, EIO, ENOMEM); after a failure
 * every later append fails too */
int	msgbody_append(struct msgbody *, const void *, size_t);
/* msgbody_read - copy len bytes at off into dst; 0, or -1 with errno */
int	msgbody_read(const struct msgbody *, uint64_t off, void *dst, size_t len);
void	msgbody_free(struct msgbody *);
/* msgbody_header - the first header field called name (no colon, any case)
 * in the header section (read from the first 64 KiB), unfolded, blanks
 * trimmed, clipped to len-1, into dst; 1 when found, else 0 and dst "" */
int	msgbody_header(const struct msgbody *, const char *name, char *dst, size_t len);

#endif
