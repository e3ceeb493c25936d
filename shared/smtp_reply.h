/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_reply.h - every SMTP reply either program sends, in one table.
 *
 * A reply text may hold "%s" markers; smtp_reply_format() replaces them, in
 * order, with the arguments given (never interpreting them as a format), so
 * client-supplied text can be echoed safely.  Nothing else writes "250 ":
 * not the DSNs spoold composes (their Diagnostic-Code) nor the replies of
 * its control socket, which are in this table too.
 */
#ifndef SHARED_SMTP_REPLY_H
#define SHARED_SMTP_REPLY_H

#include <stddef.h>

enum smtp_reply_id {
	R_GREETING,
	R_BYE,
	R_EHLO,
	R_HELO,
	R_RSET,
	R_NOOP,
	R_VRFY,
	R_HELP,
	R_MAIL_OK,
	R_RCPT_OK,
	R_DATA_GO,
	R_QUEUED,
	R_STARTTLS_GO,

	R_SHUTDOWN,
	R_TIMEOUT,
	R_DATA_TOTAL_TIMEOUT,
	R_DATA_TOO_SLOW,
	R_TOO_MANY_CONNS,
	R_TOO_MANY_CONNS_IP,
	R_TOO_MANY_ERRORS,
	R_TOO_MANY_JUNK,
	R_LINE_FLOOD,
	R_RATE_CONNECTIONS,
	R_RATE_MESSAGES,
	R_TLS_UNAVAILABLE,
	R_TLS_RATE,
	R_LOCAL_ERROR,
	R_STORAGE_ERROR,
	R_SPOOL_FULL,
	R_TOO_MANY_RCPTS,
	R_NO_MEMORY,
	R_QUOTA,
	R_LOOKUP_TEMP,		/* the customer database cannot say now */

	R_UNRECOGNIZED,
	R_LINE_TOO_LONG,
	R_SYNTAX,
	R_SYNTAX_PARAM,
	R_BAD_SEQUENCE,
	R_HELO_FIRST,
	R_NESTED_MAIL,
	R_NEED_MAIL,
	R_NEED_RCPT,
	R_TLS_ACTIVE,
	R_UNKNOWN_PARAM,
	R_BAD_SENDER,
	R_BAD_RECIPIENT,
	R_NON_ASCII_ADDRESS,
	R_SIZE_EXCEEDED_EARLY,
	R_SIZE_EXCEEDED,
	R_RELAY_DENIED,
	R_UNKNOWN_USER,
	R_BAD_LINE_ENDING,
	R_NUL_IN_DATA,
	R_LOOP,
	R_PIPELINING,
	R_NOT_IMPLEMENTED,

	/* RFC 1985 ETRN; its codes predate enhanced status codes, which RFC
	 * 2034 still wants on them once ENHANCEDSTATUSCODES is advertised */
	R_ETRN_STARTED,
	R_ETRN_NONE,
	R_ETRN_COUNT,
	R_ETRN_UNABLE,
	R_ETRN_RATE,
	R_ETRN_DENIED,
	R_ETRN_NO_ARG,
	R_ETRN_BAD_ARG,

	/* RFC 4954 AUTH */
	R_AUTH_CHALLENGE,
	R_AUTH_OK,
	R_AUTH_FAILED,
	R_AUTH_TEMP,
	R_AUTH_ENCRYPT,
	R_AUTH_REQUIRED,
	R_AUTH_MECH,
	R_AUTH_BASE64,
	R_AUTH_CANCELLED,
	R_AUTH_ALREADY,
	R_AUTH_TOO_LONG,
	R_AUTH_TOO_MANY,
	R_TLS_REQUIRED,

	/* Postfix's XCLIENT (XCLIENT_README) */
	R_XCLIENT_DENIED,
	R_XCLIENT_ATTR,

	/* RFC 2645 ODMR (enhanced codes added as for ETRN) */
	R_ODMR_GREETING,
	R_ATRN_TURN,
	R_ATRN_REFUSED,
	R_ATRN_BUSY,
	R_ATRN_NO_MAIL,
	R_ATRN_PIPELINED,

	/* etrnclient's turned session: what the local MTA said */
	R_RELAY_OK,
	R_RELAY_TEMP,
	R_RELAY_PERM,
	R_RELAY_DOWN,
	R_RELAY_NOT_LISTED,
	R_RELAY_ONE_RCPT,

	/* the content filters' verdicts at the end of DATA */
	R_FILTER_REJECT,
	R_FILTER_TEMPFAIL,
	R_FILTER_HELD,
	R_FILTER_UNAVAILABLE,
	R_FILTER_REPLY,
	R_FILTER_RCPT_REJECT,
	R_FILTER_RCPT_TEMPFAIL,		/* a filter's own line (checked by its client): code 0 */

	/* recipients verify: what the primary said to a RCPT probe */
	R_VERIFY_UNDELIVERABLE,
	R_VERIFY_UNKNOWN,
	R_VERIFY_BUSY,

	/* spoold's own reasons in DSNs (Diagnostic-Code) and the queue */
	R_DSN_NO_DOMAIN,
	R_DSN_EXPIRED,
	R_DSN_WAITING,
	R_DSN_RETURNED,

	/* the control socket (spoolctl): no enhanced codes */
	R_CTL_FLUSH_STARTED,
	R_CTL_FLUSH_NONE,
	R_CTL_FLUSH_UNABLE,
	R_CTL_NOT_DOMAIN,
	R_CTL_BAD_DOMAIN,
	R_CTL_BAD_ID,
	R_CTL_NO_MESSAGE,
	R_CTL_BOUNCED,
	R_CTL_DONE,
	R_CTL_FAILED,
	R_CTL_NO_MEMORY,
	R_CTL_UNKNOWN,
	R_CTL_TOO_LONG,
	R_CTL_QUARANTINED,
	R_CTL_NOT_QUARANTINED,
	R_CTL_STATS,
	R_CTL_NO_STATS,
	R_CTL_BAD_ADDRESS,
	R_CTL_NOT_VERIFIED,

	R__COUNT
};

struct smtp_reply {
	enum smtp_reply_id	 id;
	int			 code;		/* 0: the whole line is the argument */
	const char		*status;	/* RFC 3463 enhanced code, or NULL */
	const char		*text;
	const char		*rfc;		/* where the code comes from */
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id);

/* smtp_reply_format - write the reply line(s) with CRLF into dst; returns the
 * length, clipped to dstlen-1.  args is an array of nargs strings for the
 * %s markers; a missing one is left empty.  enhanced: include the status. */
size_t	smtp_reply_format(char *dst, size_t dstlen, enum smtp_reply_id,
	    int enhanced, const char *const *args, size_t nargs);

/* smtp_reply_text - the same line without CRLF ("550 5.1.2 text"), for a
 * DSN's Diagnostic-Code, a queue entry or the control socket */
size_t	smtp_reply_text(char *dst, size_t dstlen, enum smtp_reply_id, int enhanced,
	    const char *const *args, size_t nargs);

/* smtp_reply_format_lines - a multi-line reply (EHLO's): each of lines[0..n)
 * with the code and "-", the last with " "; whole lines only, clipped to
 * dstlen.  Returns the length. */
size_t	smtp_reply_format_lines(char *dst, size_t dstlen, enum smtp_reply_id,
	    const char *const *lines, size_t n);

/* A peer's reply has at most this many lines: our EHLO lists a dozen, and a
 * peer that sends thousands only makes us parse (OpenSMTPD aborts too). */
#define SMTP_REPLY_MAX_LINES	100

/* smtp_reply_parse_line - one line of a reply from a peer: "250-text" or
 * "250 text".  Sets *code and *last (no continuation follows) and returns
 * the text after the separator, or NULL when the line is not a reply line. */
const char *smtp_reply_parse_line(const char *line, int *code, int *last);

#endif
