/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_reply.c - the reply table.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

static const struct smtp_reply replies[R__COUNT] = {
	{ R_GREETING,	220, NULL,	"%s ESMTP spoold",			"RFC 5321 4.2" },
	{ R_BYE,	221, "2.0.0",	"%s closing connection",		"RFC 5321 4.1.1.10" },
	{ R_EHLO,	250, NULL,	"%s",					"RFC 5321 4.1.1.1" },
	{ R_HELO,	250, NULL,	"%s",					"RFC 5321 4.1.1.1" },
	{ R_RSET,	250, "2.0.0",	"Ok",					"RFC 5321 4.1.1.5" },
	{ R_NOOP,	250, "2.0.0",	"Ok",					"RFC 5321 4.1.1.9" },
	{ R_VRFY,	252, "2.5.0",	"Cannot VRFY user, but will accept message and attempt delivery", "RFC 5321 3.5.3" },
	{ R_HELP,	214, "2.0.0",	"Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS ETRN; see RFC 5321", "RFC 5321 4.1.1.8" },
	{ R_MAIL_OK,	250, "2.1.0",	"Sender ok",				"RFC 3463 3.2" },
	{ R_RCPT_OK,	250, "2.1.5",	"Recipient ok",				"RFC 3463 3.2" },
	{ R_DATA_GO,	354, NULL,	"End data with <CR><LF>.<CR><LF>",	"RFC 5321 4.1.1.4" },
	{ R_QUEUED,	250, "2.0.0",	"Ok: queued as %s",			"RFC 5321 4.1.1.4" },
	{ R_STARTTLS_GO, 220, "2.0.0",	"Ready to start TLS",			"RFC 3207 4" },

	{ R_SHUTDOWN,	421, "4.3.2",	"%s Service shutting down, try again later", "RFC 5321 3.8" },
	{ R_TIMEOUT,	421, "4.4.2",	"%s Timeout, closing connection",	"RFC 5321 4.5.3.2" },
	/* a slowloris: Postfix's smtpd_per_record_deadline and smtpd_min_data_rate */
	{ R_DATA_TOTAL_TIMEOUT, 421, "4.4.2", "%s Timeout: the message took too long, closing connection", "RFC 5321 4.5.3.2" },
	{ R_DATA_TOO_SLOW, 421, "4.4.2", "%s Timeout: message data arrives too slowly, closing connection", "RFC 5321 4.5.3.2" },
	{ R_TOO_MANY_CONNS, 421, "4.7.0", "%s Too many connections, try again later", "RFC 5321 3.8" },
	{ R_TOO_MANY_CONNS_IP, 421, "4.7.0", "%s Too many connections from your address, try again later", "RFC 5321 3.8" },
	{ R_TOO_MANY_ERRORS, 421, "4.7.0", "%s Too many errors, closing connection", "RFC 5321 3.8" },
	{ R_TOO_MANY_JUNK, 421, "4.7.0", "%s Too many NOOP, RSET, VRFY, HELP or ETRN commands, closing connection", "RFC 5321 3.8" },
	{ R_LINE_FLOOD,	421, "4.7.0",	"%s Line too long, closing connection", "RFC 5321 4.5.3.1.4" },
	{ R_RATE_CONNECTIONS, 421, "4.7.0", "%s Too many connections from your address per minute, try again later", "RFC 5321 3.8" },
	{ R_RATE_MESSAGES, 421, "4.7.0", "%s Too many messages from your address per minute, try again later", "RFC 5321 3.8" },
	{ R_TLS_UNAVAILABLE, 454, "4.7.0", "TLS not available",			"RFC 3207 4" },
	{ R_TLS_RATE,	454, "4.7.0",	"TLS not available: too many new TLS sessions from your address, try again later", "RFC 3207 4" },
	{ R_LOCAL_ERROR, 451, "4.3.0",	"Local error in processing, try again later", "RFC 5321 4.2.2" },
	{ R_STORAGE_ERROR, 451, "4.3.0", "Could not store the message, try again later", "RFC 5321 6.1" },
	{ R_SPOOL_FULL,	452, "4.3.1",	"Insufficient system storage, try again later", "RFC 3463 3.4" },
	{ R_TOO_MANY_RCPTS, 452, "4.5.3", "Too many recipients",		"RFC 5321 4.5.3.1.10" },
	{ R_NO_MEMORY,	451, "4.3.0",	"Out of memory, try again later",	"RFC 5321 4.2.2" },
	{ R_QUOTA,	452, "4.2.2",	"Quota exceeded for %s, try again later", "RFC 3463 3.3" },
	/* as Postfix's "Temporary lookup failure" for a table that did not answer */
	{ R_LOOKUP_TEMP, 451, "4.3.0",	"Temporary lookup failure, try again later", "RFC 3463 3.4" },

	{ R_UNRECOGNIZED, 500, "5.5.2",	"Command unrecognized",			"RFC 5321 4.2.4" },
	{ R_LINE_TOO_LONG, 500, "5.5.2", "Line too long",			"RFC 5321 4.5.3.1.4" },
	{ R_SYNTAX,	501, "5.5.4",	"Syntax: %s",				"RFC 5321 4.2.2" },
	{ R_SYNTAX_PARAM, 501, "5.5.4",	"Invalid parameter: %s",		"RFC 5321 4.2.2" },
	{ R_BAD_SEQUENCE, 503, "5.5.1",	"Bad sequence of commands",		"RFC 5321 4.2.2" },
	{ R_HELO_FIRST,	503, "5.5.1",	"Send EHLO or HELO first",		"RFC 5321 4.1.4" },
	{ R_NESTED_MAIL, 503, "5.5.1",	"Sender already specified",		"RFC 5321 4.1.4" },
	{ R_NEED_MAIL,	503, "5.5.1",	"Need MAIL command first",		"RFC 5321 4.1.4" },
	{ R_NEED_RCPT,	503, "5.5.1",	"Need RCPT command first",		"RFC 5321 4.1.4" },
	{ R_TLS_ACTIVE,	503, "5.5.1",	"TLS already active",			"RFC 3207 4.2" },
	{ R_UNKNOWN_PARAM, 555, "5.5.4", "Unsupported parameter %s",		"RFC 5321 4.1.1.11" },
	{ R_BAD_SENDER,	553, "5.1.7",	"Bad sender address syntax",		"RFC 3463 3.2" },
	{ R_BAD_RECIPIENT, 553, "5.1.3", "Bad recipient address syntax",	"RFC 3463 3.2" },
	{ R_NON_ASCII_ADDRESS, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8", "RFC 6531 3.5" },
	{ R_SIZE_EXCEEDED_EARLY, 552, "5.3.4", "Message size exceeds fixed limit", "RFC 1870 6" },
	{ R_SIZE_EXCEEDED, 552, "5.3.4", "Message size exceeds fixed limit",	"RFC 1870 6" },
	{ R_RELAY_DENIED, 554, "5.7.1",	"Relay access denied",			"RFC 3463 3.8" },
	{ R_UNKNOWN_USER, 550, "5.1.1",	"Recipient address rejected: user unknown", "RFC 3463 3.2" },
	{ R_BAD_LINE_ENDING, 550, "5.6.0", "Message refused: bare CR or LF in data (RFC 5321 2.3.8)", "RFC 5321 2.3.8" },
	{ R_NUL_IN_DATA, 550, "5.6.0",	"Message refused: NUL character in data", "RFC 5321 2.3.8" },
	{ R_LOOP,	554, "5.4.6",	"Too many Received: headers, mail loop suspected", "RFC 5321 6.3" },
	{ R_PIPELINING,	554, "5.5.0",	"Improper use of pipelining: data sent before the 354 reply", "RFC 2920 3.1" },
	{ R_NOT_IMPLEMENTED, 502, "5.5.1", "Command not implemented",		"RFC 5321 4.2.4" },

	{ R_ETRN_STARTED, 250, "2.0.0",	"Queuing for node %s started",		"RFC 1985 5" },
	{ R_ETRN_NONE,	251, "2.0.0",	"OK no messages waiting for node %s",	"RFC 1985 5" },
	{ R_ETRN_COUNT,	253, "2.0.0",	"%s pending messages for node %s started", "RFC 1985 5" },
	{ R_ETRN_UNABLE, 458, "4.3.0",	"Unable to queue messages for node %s: %s", "RFC 1985 5" },
	{ R_ETRN_RATE,	458, "4.7.0",	"Unable to queue messages for node %s: too many ETRN requests, try again later", "RFC 1985 5" },
	{ R_ETRN_DENIED, 459, "4.7.1",	"Node %s not allowed",			"RFC 1985 5" },
	{ R_ETRN_NO_ARG, 500, "5.5.2",	"Syntax Error: ETRN needs a node",	"RFC 1985 5" },
	{ R_ETRN_BAD_ARG, 501, "5.5.4",	"Syntax Error in Parameters: not a domain, @domain or #queue", "RFC 1985 5" },

	{ R_AUTH_CHALLENGE, 334, NULL,	"%s",					"RFC 4954 4" },
	{ R_AUTH_OK,	235, "2.7.0",	"Authentication successful",		"RFC 4954 6" },
	{ R_AUTH_FAILED, 535, "5.7.8",	"Authentication credentials invalid",	"RFC 4954 6" },
	{ R_AUTH_TEMP,	454, "4.7.0",	"Temporary authentication failure",	"RFC 4954 6" },
	{ R_AUTH_ENCRYPT, 538, "5.7.11", "Encryption required for requested authentication mechanism", "RFC 4954 6" },
	{ R_AUTH_REQUIRED, 530, "5.7.0", "Authentication required",		"RFC 4954 6" },
	{ R_AUTH_MECH,	504, "5.5.4",	"Unrecognized authentication type",	"RFC 4954 4" },
	{ R_AUTH_BASE64, 501, "5.5.2",	"Cannot Base64-decode Client responses", "RFC 4954 4" },
	{ R_AUTH_CANCELLED, 501, "5.7.0", "Authentication cancelled",		"RFC 4954 4" },
	{ R_AUTH_ALREADY, 503, "5.5.1",	"Already authenticated",		"RFC 4954 4" },
	{ R_AUTH_TOO_LONG, 500, "5.5.6", "Authentication Exchange line is too long", "RFC 4954 4" },
	{ R_AUTH_TOO_MANY, 421, "4.7.0", "%s Too many authentication failures, closing connection", "RFC 5321 3.8" },
	{ R_TLS_REQUIRED, 530, "5.7.0",	"Must issue a STARTTLS command first",	"RFC 3207 4" },

	{ R_XCLIENT_DENIED, 550, "5.7.0", "Error: insufficient authorization",	"Postfix XCLIENT_README" },
	{ R_XCLIENT_ATTR, 501, "5.5.4",	"Bad XCLIENT attribute: %s",		"Postfix XCLIENT_README" },

	{ R_ODMR_GREETING, 220, NULL,	"%s ESMTP spoold on-demand mail relay ready", "RFC 2645 5.1" },
	{ R_ATRN_TURN,	250, "2.0.0",	"OK now reversing the connection",	"RFC 2645 5.2.1" },
	{ R_ATRN_REFUSED, 450, "4.7.1",	"ATRN request refused",			"RFC 2645 5.2.1" },
	{ R_ATRN_BUSY,	451, "4.3.0",	"Unable to process ATRN request now",	"RFC 2645 5.2.1" },
	{ R_ATRN_NO_MAIL, 453, "4.2.0",	"You have no mail",			"RFC 2645 5.2.1" },
	{ R_ATRN_PIPELINED, 554, "5.5.0", "ATRN must not be pipelined, closing connection", "RFC 2920 3.1" },

	{ R_RELAY_OK,	250, "2.0.0",	"Ok: the local MTA took it: %s",	"RFC 5321 4.1.1.4" },
	{ R_RELAY_TEMP,	451, "4.4.0",	"The local MTA refused it for now: %s",	"RFC 3463 3.5" },
	{ R_RELAY_PERM,	554, "5.0.0",	"The local MTA refused it: %s",		"RFC 3463 3.5" },
	{ R_RELAY_DOWN,	451, "4.4.1",	"The local MTA is not reachable: %s",	"RFC 3463 3.5" },
	{ R_RELAY_NOT_LISTED, 450, "4.7.1", "Not a domain this site pulls here: it stays with you", "RFC 3463 3.8" },
	{ R_RELAY_ONE_RCPT, 452, "4.5.3", "One recipient per message here: send the others in a new transaction", "RFC 5321 4.5.3.1.10" },

	{ R_FILTER_REJECT, 550, "5.7.1", "Message rejected by the content filter", "RFC 3463 3.8" },
	{ R_FILTER_TEMPFAIL, 451, "4.7.1", "The content filter says: try again later", "RFC 3463 3.8" },
	/* not sent to a client: the deferral a second look records */
	{ R_FILTER_HELD, 451, "4.7.1", "Held for a second look by the content filters: %s", "RFC 3463 3.8" },
	{ R_FILTER_UNAVAILABLE, 451, "4.7.1", "Content filter unavailable, try again later", "RFC 3463 3.8" },
	{ R_FILTER_REPLY, 0, NULL,	"%s",					"milter protocol (SMFIR_REPLYCODE)" },
	{ R_FILTER_RCPT_REJECT, 550, "5.7.1", "Recipient rejected by the content filter", "RFC 5321 4.2.2, RFC 3463 3.8" },
	{ R_FILTER_RCPT_TEMPFAIL, 451, "4.7.1", "Recipient deferred by the content filter, try again later", "RFC 5321 4.2.2, RFC 3463 3.8" },

	/* as Postfix's reject_unverified_recipient: 5xx only for what the
	 * primary refused itself, 4xx whenever it could not be asked */
	{ R_VERIFY_UNDELIVERABLE, 550, "5.1.1", "Recipient address rejected: undeliverable address: %s", "RFC 3463 3.2" },
	{ R_VERIFY_UNKNOWN, 450, "4.1.1", "Recipient address rejected: unverified address: %s; try again later", "RFC 3463 3.2, RFC 5321 4.2.5" },
	{ R_VERIFY_BUSY, 450, "4.7.1", "Recipient address rejected: unverified address: too many address verifications now, try again later", "RFC 3463 3.8" },

	{ R_DSN_NO_DOMAIN, 550, "5.1.2", "%s",				"RFC 3463 3.2, RFC 7505 4" },
	{ R_DSN_EXPIRED, 450, "4.4.7",	"delivery time expired: not delivered in %s (max-age)", "RFC 3463 3.5" },
	{ R_DSN_WAITING, 451, "4.4.1",	"not delivered yet: waiting for the site to ask for its mail", "RFC 3463 3.5" },
	{ R_DSN_RETURNED, 550, "5.0.0",	"returned to the sender by the postmaster", "RFC 3463 3.1" },

	{ R_CTL_FLUSH_STARTED, 253, NULL, "%s messages for %s: delivery started", "RFC 1985 (as ETRN)" },
	{ R_CTL_FLUSH_NONE, 251, NULL,	"no messages waiting for %s",		"RFC 1985 (as ETRN)" },
	{ R_CTL_FLUSH_UNABLE, 458, NULL, "cannot deliver %s now: %s",		"RFC 1985 (as ETRN)" },
	{ R_CTL_NOT_DOMAIN, 550, NULL,	"%s is not a configured domain",	"spoolctl(8)" },
	{ R_CTL_BAD_DOMAIN, 501, NULL,	"not a domain name",			"spoolctl(8)" },
	{ R_CTL_BAD_ID,	501, NULL,	"not a queue id (16 hex digits, as spoolctl show prints)", "spoolctl(8)" },
	{ R_CTL_NO_MESSAGE, 550, NULL,	"%s: no such message",			"spoolctl(8)" },
	{ R_CTL_BOUNCED, 250, NULL,	"%s: %s bounced",			"spoolctl(8)" },
	{ R_CTL_DONE,	250, NULL,	"%s %s",				"spoolctl(8)" },
	{ R_CTL_FAILED,	451, NULL,	"%s: %s",				"spoolctl(8)" },
	{ R_CTL_NO_MEMORY, 451, NULL,	"out of memory",			"spoolctl(8)" },
	{ R_CTL_UNKNOWN, 500, NULL,	"unknown request (try: flush DOMAIN, bounce ID, delete ID, hold DOMAIN, release DOMAIN, release ID, unverify ADDRESS, stats)", "spoolctl(8)" },
	{ R_CTL_TOO_LONG, 500, NULL,	"request too long",			"spoolctl(8)" },
	{ R_CTL_QUARANTINED, 550, NULL,	"%s is quarantined: release or delete it (no DSN for filtered mail)", "spoolctl(8)" },
	{ R_CTL_NOT_QUARANTINED, 550, NULL, "%s: no such message in the quarantine", "spoolctl(8)" },
	{ R_CTL_STATS,	250, NULL,	"running totals follow (Prometheus text format)", "spoolctl(8)" },
	{ R_CTL_NO_STATS, 451, NULL,	"the running totals are not available (see the log)", "spoolctl(8)" },
	{ R_CTL_BAD_ADDRESS, 501, NULL,	"not an address (local@domain)",	"spoolctl(8)" },
	{ R_CTL_NOT_VERIFIED, 550, NULL, "%s: not in the cache",		"spoolctl(8)" },
};

const struct smtp_reply *
smtp_reply_get(enum smtp_reply_id id)
{
	if ((unsigned)id >= R__COUNT)
		return &replies[R_LOCAL_ERROR];
	return &replies[id];
}

/* smtp_reply_expand - copy text into dst replacing %s markers with args */
static size_t
smtp_reply_expand(char *dst, size_t room, const char *text,
    const char *const *args, size_t nargs)
{
	size_t o = 0, a = 0;
	const char *p;

	for (p = text; *p != '\0' && o < room; p++) {
		if (p[0] == '%' && p[1] == 's') {
			const char *arg = a < nargs && args[a] ? args[a] : "";
			size_t n = strlen(arg);

			a++;
			p++;
			if (n > room - o)
				n = room - o;
			memcpy(dst + o, arg, n);
			o += n;
			continue;
		}
		dst[o++] = *p;
	}
	return o;
}

size_t
smtp_reply_format(char *dst, size_t dstlen, enum smtp_reply_id id, int enhanced,
    const char *const *args, size_t nargs)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	int n;
	size_t o;

	if (dstlen < 8)
		return 0;
	if (r->code == 0)	/* a line made elsewhere and checked there */
		n = 0;
	else if (enhanced && r->status)
		n = snprintf(dst, dstlen, "%d %s ", r->code, r->status);
	else
		n = snprintf(dst, dstlen, "%d ", r->code);
	/* snprintf returns the untruncated length: keep room for CRLF NUL */
	o = (size_t)n < dstlen - 3 ? (size_t)n : dstlen - 3;
	o += smtp_reply_expand(dst + o, dstlen - o - 3, r->text, args, nargs);
	/* Client text echoed in a reply must not break the line or carry
	 * terminal escapes: only printable ASCII goes out. */
	for (size_t i = 0; i < o; i++)
		if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] > 0x7e)
			dst[i] = dst[i] == '\r' || dst[i] == '\n' ? ' ' : '?';
	dst[o++] = '\r';
	dst[o++] = '\n';
	dst[o] = '\0';
	return o;
}

size_t
smtp_reply_text(char *dst, size_t dstlen, enum smtp_reply_id id, int enhanced,
    const char *const *args, size_t nargs)
{
	size_t len = smtp_reply_format(dst, dstlen, id, enhanced, args, nargs);

	while (len > 0 && (dst[len - 1] == '\r' || dst[len - 1] == '\n'))
		dst[--len] = '\0';
	return len;
}

size_t
smtp_reply_format_lines(char *dst, size_t dstlen, enum smtp_reply_id id,
    const char *const *lines, size_t n)
{
	int code = smtp_reply_get(id)->code;
	size_t len = 0;

	for (size_t i = 0; i < n && len + 1 < dstlen; i++) {
		int w = snprintf(dst + len, dstlen - len, "%d%c%s\r\n", code, i + 1 < n ? '-' : ' ',
		    lines[i]);

		if (w < 0 || (size_t)w >= dstlen - len)	/* no half lines */
			break;
		len += (size_t)w;
	}
	dst[len < dstlen ? len : dstlen - 1] = '\0';
	return len;
}

const char *
smtp_reply_parse_line(const char *line, int *code, int *last)
{
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return NULL;
	/* RFC 5321 4.2: "250" alone is a complete last line too */
	if (line[3] != ' ' && line[3] != '-' && line[3] != '\0')
		return NULL;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = line[3] != '-';
	return line[3] == '\0' ? line + 3 : line + 4;
}
