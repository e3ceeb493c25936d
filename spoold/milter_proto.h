/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * milter_proto.h - the Sendmail milter protocol, version 6, from the MTA's
 * side: packets to send and the parser of what a filter answers.  Pure code
 * (no I/O), so the parser, which reads hostile bytes, is unit-tested and
 * fuzzed alone.
 *
 * A packet is a 32-bit big-endian length (of what follows), a command byte
 * and its data.  Strings are NUL-terminated.  The MTA opens with OPTNEG
 * (version, the actions it allows, the protocol steps it can leave out);
 * the filter answers with what it wants of them.
 */
#ifndef SPOOLD_MILTER_PROTO_H
#define SPOOLD_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

#define MILTER_VERSION		6
/* A body is sent in chunks of at most this many bytes (libmilter's
 * MILTER_CHUNK_SIZE). */
#define MILTER_CHUNK		65535
/* A reply longer than this is garbage: the longest legitimate one is a
 * replaced body chunk. */
#define MILTER_REPLY_MAX	(1024 * 1024)

/* Commands, MTA to filter (SMFIC_*). */
#define MILTER_ABORT		'A'
#define MILTER_BODY		'B'
#define MILTER_CONNECT		'C'
#define MILTER_MACRO		'D'
#define MILTER_EOB		'E'
#define MILTER_HELO		'H'
#define MILTER_HEADER		'L'
#define MILTER_MAIL		'M'
#define MILTER_EOH		'N'
#define MILTER_OPTNEG		'O'
#define MILTER_QUIT		'Q'
#define MILTER_RCPT		'R'
#define MILTER_DATA		'T'

/* Actions the filter may take at the end of the message (SMFIF_*). */
#define MILTER_F_ADDHDRS	0x01
#define MILTER_F_CHGBODY	0x02
#define MILTER_F_ADDRCPT	0x04
#define MILTER_F_DELRCPT	0x08
#define MILTER_F_CHGHDRS	0x10
#define MILTER_F_QUARANTINE	0x20
#define MILTER_F_CHGFROM	0x40
#define MILTER_F_ADDRCPT_PAR	0x80
#define MILTER_F_ALL		0xff
/* what spoold offers: every action */
#define MILTER_F_OFFERED	MILTER_F_ALL

/* Protocol steps (SMFIP_*): leave a stage out (NO*), expect no reply to it
 * (NR_*), SKIP (the filter may stop the body early). */
#define MILTER_P_NOCONNECT	0x00001
#define MILTER_P_NOHELO		0x00002
#define MILTER_P_NOMAIL		0x00004
#define MILTER_P_NORCPT		0x00008
#define MILTER_P_NOBODY		0x00010
#define MILTER_P_NOHDRS		0x00020
#define MILTER_P_NOEOH		0x00040
#define MILTER_P_NR_HDR		0x00080
#define MILTER_P_NOUNKNOWN	0x00100
#define MILTER_P_NODATA		0x00200
#define MILTER_P_SKIP		0x00400
#define MILTER_P_RCPT_REJ	0x00800
#define MILTER_P_NR_CONN	0x01000
#define MILTER_P_NR_HELO	0x02000
#define MILTER_P_NR_MAIL	0x04000
#define MILTER_P_NR_RCPT	0x08000
#define MILTER_P_NR_DATA	0x10000
#define MILTER_P_NR_UNKN	0x20000
#define MILTER_P_NR_EOH		0x40000
#define MILTER_P_NR_BODY	0x80000
#define MILTER_P_HDR_LEADSPC	0x100000
/* what spoold offers: every step may be left out or unanswered, and SKIP */
#define MILTER_P_OFFERED	0x1ff7ff

/* What a filter said, parsed. */
enum milter_reply {
	MILTER_R_ACCEPT,	/* 'a': accept the message, no more from this filter */
	MILTER_R_CONTINUE,	/* 'c' */
	MILTER_R_REJECT,	/* 'r': 5xx */
	MILTER_R_TEMPFAIL,	/* 't': 4xx */
	MILTER_R_REPLYCODE,	/* 'y': its own code and text (checked) */
	MILTER_R_DISCARD,	/* 'd': 250, not stored */
	MILTER_R_SKIP,		/* 's': no more body */
	MILTER_R_PROGRESS,	/* 'p': still working, the timeout starts again */
	MILTER_R_QUARANTINE,	/* 'q': a modification: keep it, do not deliver */
	MILTER_R_ADDHEADER,	/* 'h' */
	MILTER_R_INSHEADER,	/* 'i' */
	MILTER_R_CHGHEADER,	/* 'm' */
	MILTER_R_REPLBODY,	/* 'b' */
	MILTER_R_ADDRCPT,	/* '+', and '2' (its ESMTP arguments are ignored) */
	MILTER_R_DELRCPT,	/* '-' */
	MILTER_R_CHGFROM,	/* 'e' */
	MILTER_R_OPTNEG,	/* 'O': the answer to ours */
	MILTER_R_BAD,		/* not a reply this parser knows, or malformed */
};

struct milter_msg {
	enum milter_reply	 kind;
	/* OPTNEG */
	uint32_t		 version, actions, protocol;
	/* INSHEADER, CHGHEADER: the index (1-based occurrence for CHGHEADER) */
	uint32_t		 index;
	/* views into the packet: valid until the next parse */
	const char		*name;		/* header name; address; reason */
	const char		*value;		/* header value; REPLYCODE's line */
	const char		*data;		/* REPLBODY's bytes */
	size_t			 len;
};

/* milter_packet_len - a whole packet at p[0..n)?  >0: its total length
 * (header included), 0: need more bytes, -1: a length over max or zero */
long	milter_packet_len(const unsigned char *p, size_t n, size_t max);

/* milter_parse - one whole packet (as milter_packet_len measured it) into
 * m; MILTER_R_BAD when it is not a well-formed reply */
enum milter_reply milter_parse(const unsigned char *p, size_t len, struct milter_msg *m);

/* milter_replycode_ok - a filter's REPLYCODE line may go to the client:
 * a 4xx or 5xx code, a space, an optional enhanced code of the same class,
 * text; one line of printable ASCII; 1 or 0 */
int	milter_replycode_ok(const char *line);

/* milter_target_parse - "unix:/path" or "inet:ADDRESS:PORT" ("inet:[::1]:PORT"
 * for IPv6) into ss and len; 0, or -1 with why */
int	milter_target_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
	    const char **why);

/* Packets to send, appended to b; 0, or -1 (no memory). */
int	milter_put_optneg(struct buf *b, uint32_t actions, uint32_t protocol);
int	milter_put(struct buf *b, char cmd, const void *data, size_t len);
/* milter_put_strings - cmd with NUL-terminated strings s[0..n) */
int	milter_put_strings(struct buf *b, char cmd, const char *const *s, size_t n);
/* milter_put_connect - hostname, family '4' or '6' and port, address */
int	milter_put_connect(struct buf *b, const char *hostname, char family, uint16_t port,
	    const char *addr);
/* milter_put_macros - MACRO for stage cmd: names[i] = values[i] */
int	milter_put_macros(struct buf *b, char cmd, const char *const *names,
	    const char *const *values, size_t n);

#endif
