/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_data.h - the DATA phase byte parser (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Only <CRLF>.<CRLF> ends the data: "\n.\n", "\r.\r", "\r\n.\n" and the like do
 * not.  A bare CR or LF anywhere, or a NUL, is recorded so the whole message
 * can be refused after the real end (no SMTP smuggling can get a second
 * message past us).  Leading dots are removed (dot-unstuffing) and the
 * Received: headers in the header section are counted.
 *
 * Pure code: bytes in, unstuffed bytes out through a callback.
 */
#ifndef SHARED_SMTP_DATA_H
#define SHARED_SMTP_DATA_H

#include <stddef.h>

enum smtp_data_state {
	DATA_BOL,		/* at the start of a line (after CRLF) */
	DATA_BOL_DOT,		/* a line began with '.' */
	DATA_BOL_DOT_CR,	/* a line began with ".\r" */
	DATA_MID,		/* inside a line */
	DATA_CR,		/* saw CR, want LF */
	DATA_END,		/* saw CRLF.CRLF */
};

#define DATA_BARE_LF	0x01
#define DATA_BARE_CR	0x02
#define DATA_NUL	0x04
#define DATA_8BIT	0x08

typedef void smtp_data_sink(void *arg, const char *, size_t);

struct smtp_data {
	enum smtp_data_state	 state;
	unsigned		 flags;		/* DATA_* seen so far */
	size_t			 size;		/* bytes emitted */
	int			 in_headers;
	int			 hdr_match;	/* chars of "received:" matched, -1 no */
	unsigned		 received;	/* Received: headers counted */
	smtp_data_sink		*sink;
	void			*arg;
};

void	smtp_data_init(struct smtp_data *, smtp_data_sink *, void *arg);
/* smtp_data_feed - consume bytes until the end marker; returns how many were
 * consumed (less than len only when the end was found) */
size_t	smtp_data_feed(struct smtp_data *, const char *, size_t len);
static inline int smtp_data_done(const struct smtp_data *d) { return d->state == DATA_END; }

#endif
