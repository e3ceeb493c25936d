/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_cmd.h - parsers for SMTP command lines (RFC 5321 4.1, RFC 1870, 3461,
 * 6152, 6531).  Pure functions: no I/O, no allocation; the input is hostile.
 */
#ifndef SHARED_SMTP_CMD_H
#define SHARED_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */
#define SMTP_ENVID_MAX	100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX	500	/* RFC 3461 4.2 */

enum smtp_parse {
	SMTP_PARSE_OK,
	SMTP_PARSE_SYNTAX,	/* malformed command or address */
	SMTP_PARSE_RELAY,	/* %, !, source route or quoted @: a relay trick */
	SMTP_PARSE_NONASCII,	/* UTF-8 address without SMTPUTF8 */
	SMTP_PARSE_PARAM,	/* unknown parameter (555) */
	SMTP_PARSE_PARAM_VALUE,	/* known parameter with a bad value (501) */
};

enum smtp_body { BODY_7BIT, BODY_8BITMIME };
enum smtp_ret { RET_UNSET, RET_FULL, RET_HDRS };

/* NOTIFY bits, RFC 3461 4.1; zero means not given */
#define NOTIFY_NEVER	0x01
#define NOTIFY_SUCCESS	0x02
#define NOTIFY_FAILURE	0x04
#define NOTIFY_DELAY	0x08

struct smtp_path {
	char	local[SMTP_LOCAL_MAX * 4 + 1];	/* UTF-8 may take 4 bytes a char */
	char	domain[SMTP_DOMAIN_MAX + 1];	/* lower-cased, no trailing dot;
						 * "" for RCPT TO:<Postmaster> */
	int	null;				/* <> */
	int	utf8;				/* has non-ASCII */
};

struct smtp_mail {
	struct smtp_path from;
	uint64_t	size;		/* SIZE=, 0 if not given */
	enum smtp_body	body;
	int		smtputf8;
	enum smtp_ret	ret;
	char		envid[SMTP_ENVID_MAX + 1];	/* decoded xtext */
	int		size_given, body_given;	/* each at most once */
	const char	*bad_param;	/* points into the input on PARAM errors */
};

struct smtp_rcpt {
	struct smtp_path to;
	unsigned	notify;
	char		orcpt_type[32];
	char		orcpt[SMTP_ORCPT_MAX + 1];	/* decoded xtext */
	const char	*bad_param;
};

/* smtp_cmd_split - the verb of line (upper-cased into verb, at most verblen-1
 * chars) and a pointer to its argument (spaces skipped; "" if none) */
const char	*smtp_cmd_split(const char *line, char *verb, size_t verblen);

/* smtp_parse_mail - "FROM:<path> params" (the text after the verb).
 * utf8_ok: the server offers SMTPUTF8. */
enum smtp_parse	 smtp_parse_mail(const char *arg, struct smtp_mail *, int utf8_ok);
/* smtp_parse_rcpt - "TO:<path> params"; smtputf8: the transaction asked for it */
enum smtp_parse	 smtp_parse_rcpt(const char *arg, struct smtp_rcpt *, int smtputf8);

/* smtp_domain_canon - validate a domain or address literal and lower-case it
 * in place, dropping one trailing dot; 0 ok, -1 invalid */
int		 smtp_domain_canon(char *domain, int utf8_ok);

/* xtext (RFC 3461 4): decode into dst (dstlen incl. NUL); -1 when malformed,
 * too long, or it would decode to a control character */
int		 xtext_decode(const char *src, size_t srclen, char *dst, size_t dstlen);
/* xtext_encode - encode src; returns needed length, output clipped to dstlen */
size_t		 xtext_encode(const char *src, char *dst, size_t dstlen);

/* utf8_valid - well-formed UTF-8 (no overlongs, no surrogates) */
int		 utf8_valid(const char *s, size_t len);

#endif
