/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * dsn.h - delivery status notifications (RFC 3464, 3461, 3463, 6522).
 *
 * dsn_compose() writes the notification as a complete message: header,
 * a multipart/report with a human-readable part, a message/delivery-status
 * part with one block per recipient, and the original message's header
 * (RET=HDRS, the default) or the whole message (RET=FULL, when it is small
 * enough).  Pure code: the caller reads the original from the spool and
 * stores the result; nothing here does I/O.  Every field that came from a
 * client or a peer is made printable ASCII before it is written, so a
 * reply text can never add a header or a MIME part.
 */
#ifndef SPOOLD_DSN_H
#define SPOOLD_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

/* Returned content bigger than this goes back as headers only (like
 * Postfix's bounce_size_limit, but larger: a DSN carrying a 1 MiB message
 * is still a small message). */
#define DSN_FULL_MAX		(1024 * 1024)
/* The original header section is cut here (a header this big is abuse). */
#define DSN_HEADERS_MAX		(64 * 1024)

enum dsn_action { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
	const char	*addr;		/* the recipient as spooled */
	const char	*orcpt_type;	/* "" when no ORCPT was given */
	const char	*orcpt;
	const char	*reply;		/* "550 5.1.1 no such user" or spoold's own reason */
	const char	*remote_mta;	/* host or [ip] that gave reply, NULL for local reasons */
};

struct dsn_report {
	const char		*reporting_mta;	/* our hostname */
	uint64_t		 queue_id;
	const char		*sender;	/* the original envelope sender */
	const char		*envid;		/* "" when no ENVID */
	int64_t			 arrival;
	time_t			 now;
	enum dsn_action		 action;
	const struct dsn_rcpt	*rcpts;
	size_t			 nrcpts;
	/* the original message, or its first bytes; full = it is all there */
	const char		*orig;
	size_t			 origlen;
	int			 ret_full;	/* RET=FULL was asked for */
	int			 orig_complete;
};

/* dsn_notify_allows - does a recipient's NOTIFY (bits from smtp_cmd.h, 0 =
 * not given) ask for this kind of notice?  Absent NOTIFY means failures
 * and delays (RFC 3461 4.1). */
int	dsn_notify_allows(unsigned notify, enum dsn_action);

/* dsn_status - the RFC 3463 status for a reply: its enhanced code when it
 * has one of the right class, else one derived from the reply code */
void	dsn_status(const char *reply, char *out, size_t outlen);

/* dsn_compose - append the whole notification (header and body, CRLF line
 * ends) to out.  Returns 0, or -1 on ENOMEM.  *eight_bit is set when the
 * returned original carries 8-bit bytes. */
int	dsn_compose(const struct dsn_report *, struct buf *out, int *eight_bit);

#endif
