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

#endif
