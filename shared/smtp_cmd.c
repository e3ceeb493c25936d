/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_cmd.c - SMTP command line parsers.
 *
 * SECURITY: every byte here comes from the network.  Parsers write only into
 * the fixed-size fields of the caller's struct and never allocate.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_cmd.h"

const char *
smtp_cmd_split(const char *line, char *verb, size_t verblen)
{
	size_t i = 0;

	while (line[i] != '\0' && line[i] != ' ' && i + 1 < verblen) {
		verb[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	verb[i] = '\0';
	while (line[i] != '\0' && line[i] != ' ')
		i++;		/* an overlong verb is simply unknown */
	while (line[i] == ' ')
		i++;
	return line + i;
}

int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p++, n, cp, min;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; min = 0x80; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; min = 0x800; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; min = 0x10000; }
		else return 0;
		if ((size_t)(end - p) < n)
			return 0;
		while (n--) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

static int
has_high_bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* smtp_literal_valid - "[1.2.3.4]" or "[IPv6:...]" (RFC 5321 4.1.3) */
static int
smtp_literal_valid(const char *d)
{
	char tmp[SMTP_DOMAIN_MAX + 1];
	unsigned char addr[16];
	size_t len = strlen(d);

	if (len < 3 || d[len - 1] != ']' || len - 2 >= sizeof(tmp))
		return 0;
	memcpy(tmp, d + 1, len - 2);
	tmp[len - 2] = '\0';
	if (strncasecmp(tmp, "ipv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1;
	return inet_pton(AF_INET, tmp, addr) == 1;
}

int
smtp_domain_canon(char *d, int utf8_ok)
{
	size_t len = strlen(d), label = 0, i;

	if (len == 0)
		return -1;
	if (d[0] == '[') {
		if (!smtp_literal_valid(d))
			return -1;
		for (i = 0; i < len; i++)
			d[i] = (char)tolower((unsigned char)d[i]);
		return 0;
	}
	if (d[len - 1] == '.')
		d[--len] = '\0';
	if (len == 0 || len > 253)
		return -1;
	if (has_high_bit(d) && (!utf8_ok || !utf8_valid(d, len)))
		return -1;
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.' || c == '\0') {
			/* RFC 1035 2.3.1: no empty label, no hyphen at either end */
			if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c >= 0x80))
			return -1;
		d[i] = (char)tolower(c);
		label++;
	}
	return 0;
}

/* RFC 5322 3.2.3 atext */
static int
is_atext(unsigned char c, int utf8)
{
	if (isalnum(c))
		return 1;
	if (c >= 0x80)
		return utf8;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* parse_local_part - dot-atom or quoted-string; *p advanced past it */
static enum smtp_parse
parse_local_part(const char **pp, struct smtp_path *path, int is_rcpt)
{
	const char *p = *pp;
	size_t o = 0;

	if (*p == '"') {
		int relay_char = 0;

		path->local[o++] = *p++;
		while (*p != '"') {
			if (*p == '\0' || (unsigned char)*p < 0x20 || *p == 0x7f)
				return SMTP_PARSE_SYNTAX;
			if (*p == '\\') {
				/* RFC 5321 4.1.2 quoted-pairSMTP: %d92 %d32-126 */
				if ((unsigned char)p[1] < 0x20 || (unsigned char)p[1] > 0x7e ||
				    o + 2 > SMTP_LOCAL_MAX)
					return SMTP_PARSE_SYNTAX;
				path->local[o++] = *p++;
			}
			if (*p == '@' || *p == '%' || *p == '!')
				relay_char = 1;
			if (o + 1 > SMTP_LOCAL_MAX)
				return SMTP_PARSE_SYNTAX;
			path->local[o++] = *p++;
		}
		if (o + 1 > SMTP_LOCAL_MAX)	/* the closing quote counts too */
			return SMTP_PARSE_SYNTAX;
		path->local[o++] = *p++;
		if (relay_char && is_rcpt)
			return SMTP_PARSE_RELAY;
	} else {
		const char *start = p;

		while (*p != '@' && *p != '>' && *p != '\0') {
			if (*p == '.' ? (p == start || p[1] == '.' || p[1] == '@')
			    : !is_atext((unsigned char)*p, 1))
				return SMTP_PARSE_SYNTAX;
			if (o + 1 > SMTP_LOCAL_MAX)
				return SMTP_PARSE_SYNTAX;
			path->local[o++] = *p++;
		}
		if (o == 0)
			return SMTP_PARSE_SYNTAX;
	}
	path->local[o] = '\0';
	*pp = p;
	if (is_rcpt && strpbrk(path->local, "%!") != NULL)
		return SMTP_PARSE_RELAY;
	return SMTP_PARSE_OK;
}

/* skip_source_route - "@a,@b:" (RFC 5321 4.1.2 A-d-l); servers ignore it */
static int
skip_source_route(const char **pp)
{
	const char *p = *pp;

	if (*p != '@')
		return 0;
	p = strchr(p, ':');
	if (p == NULL)
		return -1;
	*pp = p + 1;
	return 1;
}

/* parse_path - "<...>" into path; *pp advanced past '>' */
static enum smtp_parse
parse_path(const char **pp, struct smtp_path *path, int is_rcpt, int utf8_ok)
{
	const char *p = *pp, *end;
	enum smtp_parse rc;
	size_t dlen;
	int route;

	memset(path, 0, sizeof(*path));
	if (*p++ != '<')
		return SMTP_PARSE_SYNTAX;
	if (*p == '>' && !is_rcpt) {
		path->null = 1;
		*pp = p + 1;
		return SMTP_PARSE_OK;
	}
	/* RFC 5321 4.1.1.3: RCPT TO:<Postmaster> without a domain; the
	 * server supplies its own name (domain left empty here) */
	if (is_rcpt && strncasecmp(p, "postmaster>", 11) == 0) {
		strcpy(path->local, "postmaster");
		*pp = p + 11;
		return SMTP_PARSE_OK;
	}
	if ((route = skip_source_route(&p)) == -1)
		return SMTP_PARSE_SYNTAX;
	if (route && is_rcpt)
		return SMTP_PARSE_RELAY;
	if ((rc = parse_local_part(&p, path, is_rcpt)) != SMTP_PARSE_OK)
		return rc;
	if (*p++ != '@')
		return SMTP_PARSE_SYNTAX;
	if ((end = strchr(p, '>')) == NULL)
		return SMTP_PARSE_SYNTAX;
	dlen = (size_t)(end - p);
	if (dlen == 0 || dlen > SMTP_DOMAIN_MAX || memchr(p, '@', dlen) != NULL)
		return is_rcpt && memchr(p, '@', dlen) ? SMTP_PARSE_RELAY : SMTP_PARSE_SYNTAX;
	memcpy(path->domain, p, dlen);
	path->domain[dlen] = '\0';
	path->utf8 = has_high_bit(path->local) || has_high_bit(path->domain);
	if (path->utf8 && !utf8_valid(path->local, strlen(path->local)))
		return SMTP_PARSE_SYNTAX;
	if (smtp_domain_canon(path->domain, 1) == -1)
		return SMTP_PARSE_SYNTAX;
	if (strlen(path->local) + 1 + strlen(path->domain) + 2 > SMTP_PATH_MAX)
		return SMTP_PARSE_SYNTAX;
	if (path->utf8 && !utf8_ok)
		return SMTP_PARSE_NONASCII;
	*pp = end + 1;
	return SMTP_PARSE_OK;
}

/* expect_keyword - "FROM:" / "TO:" with optional spaces after the colon */
static const char *
expect_keyword(const char *arg, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(arg, kw, n) != 0)
		return NULL;
	arg += n;
	while (*arg == ' ')
		arg++;
	return arg;
}

/* next_param - split "KEY=VALUE" at p into key/value; returns the end */
static const char *
next_param(const char *p, char *key, size_t keylen, const char **val, size_t *vallen)
{
	size_t k = 0;

	while (*p && *p != ' ' && *p != '=') {
		if (k + 1 < keylen)
			key[k++] = (char)toupper((unsigned char)*p);
		p++;
	}
	key[k] = '\0';
	*val = NULL;
	*vallen = 0;
	if (*p == '=') {
		*val = ++p;
		while (*p && *p != ' ')
			p++;
		*vallen = (size_t)(p - *val);
	}
	while (*p == ' ')
		p++;
	return p;
}

static int
val_is(const char *val, size_t len, const char *word)
{
	return val && strlen(word) == len && strncasecmp(val, word, len) == 0;
}

static int
parse_u64(const char *val, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (val == NULL || len == 0 || len > 20)	/* RFC 1870: 1*20DIGIT */
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(val[i] - '0');

		if (!isdigit((unsigned char)val[i]))
			return -1;
		/* beyond 2^64-1 it is simply too big: saturate */
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*out = n;
	return 0;
}

static enum smtp_parse
mail_param(struct smtp_mail *m, const char *key, const char *val, size_t vlen, int utf8_ok)
{
	if (strcmp(key, "SIZE") == 0) {
		if (m->size_given++ || parse_u64(val, vlen, &m->size) == -1)
			return SMTP_PARSE_PARAM_VALUE;
		return SMTP_PARSE_OK;
	}
	if (strcmp(key, "BODY") == 0) {
		if (m->body_given++)
			return SMTP_PARSE_PARAM_VALUE;
		if (val_is(val, vlen, "7BIT"))
			m->body = BODY_7BIT;
		else if (val_is(val, vlen, "8BITMIME"))
			m->body = BODY_8BITMIME;
		else
			return SMTP_PARSE_PARAM_VALUE;
		return SMTP_PARSE_OK;
	}
	if (strcmp(key, "SMTPUTF8") == 0 && utf8_ok) {
		if (m->smtputf8 || val)
			return SMTP_PARSE_PARAM_VALUE;
		m->smtputf8 = 1;
		return SMTP_PARSE_OK;
	}
	if (strcmp(key, "RET") == 0) {
		/* RFC 3461 4.3: at most once; a repeat is a bad value (501) */
		if (m->ret != RET_UNSET)
			return SMTP_PARSE_PARAM_VALUE;
		if (val_is(val, vlen, "FULL"))
			m->ret = RET_FULL;
		else if (val_is(val, vlen, "HDRS"))
			m->ret = RET_HDRS;
		else
			return SMTP_PARSE_PARAM_VALUE;
		return SMTP_PARSE_OK;
	}
	if (strcmp(key, "ENVID") == 0) {
		/* RFC 3461 4.4: at most once */
		if (m->envid[0] != '\0' || val == NULL ||
		    xtext_decode(val, vlen, m->envid, sizeof(m->envid)) <= 0)
			return SMTP_PARSE_PARAM_VALUE;
		for (const char *e = m->envid; *e; e++)	/* printable US-ASCII only */
			if ((unsigned char)*e > 0x7e)
				return SMTP_PARSE_PARAM_VALUE;
		return SMTP_PARSE_OK;
	}
	return SMTP_PARSE_PARAM;
}

enum smtp_parse
smtp_parse_mail(const char *arg, struct smtp_mail *m, int utf8_ok)
{
	const char *p, *val;
	char key[16];
	size_t vlen;
	enum smtp_parse rc;

	memset(m, 0, sizeof(*m));
	if ((p = expect_keyword(arg, "FROM:")) == NULL)
		return SMTP_PARSE_SYNTAX;
	/* The path may be UTF-8 only when SMTPUTF8 is among the parameters, so
	 * parse it permissively and check after the parameters. */
	if ((rc = parse_path(&p, &m->from, 0, utf8_ok)) != SMTP_PARSE_OK)
		return rc;
	if (*p != ' ' && *p != '\0')
		return SMTP_PARSE_SYNTAX;
	while (*p == ' ')
		p++;
	while (*p) {
		const char *start = p;

		p = next_param(p, key, sizeof(key), &val, &vlen);
		if ((rc = mail_param(m, key, val, vlen, utf8_ok)) != SMTP_PARSE_OK) {
			m->bad_param = start;
			return rc;
		}
	}
	if (m->from.utf8 && !m->smtputf8)
		return SMTP_PARSE_NONASCII;
	return SMTP_PARSE_OK;
}

static unsigned
notify_word(const char *w, size_t len)
{
	if (len == 5 && strncasecmp(w, "NEVER", 5) == 0)
		return NOTIFY_NEVER;
	if (len == 7 && strncasecmp(w, "SUCCESS", 7) == 0)
		return NOTIFY_SUCCESS;
	if (len == 7 && strncasecmp(w, "FAILURE", 7) == 0)
		return NOTIFY_FAILURE;
	if (len == 5 && strncasecmp(w, "DELAY", 5) == 0)
		return NOTIFY_DELAY;
	return 0;
}

/* parse_notify - RFC 3461 4.1: NEVER alone, or a list of the other three */
static int
parse_notify(const char *val, size_t vlen, unsigned *out)
{
	unsigned bits = 0, b;
	size_t i = 0, start;

	if (val == NULL || vlen == 0)
		return -1;
	while (i <= vlen) {
		start = i;
		while (i < vlen && val[i] != ',')
			i++;
		if ((b = notify_word(val + start, i - start)) == 0 || (bits & b))
			return -1;
		bits |= b;
		i++;
	}
	if ((bits & NOTIFY_NEVER) && bits != NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

/* parse_orcpt - "addr-type;xtext" (RFC 3461 4.2) */
static int
parse_orcpt(struct smtp_rcpt *r, const char *val, size_t vlen)
{
	const char *semi = val ? memchr(val, ';', vlen) : NULL;
	size_t tlen;

	if (semi == NULL)
		return -1;
	tlen = (size_t)(semi - val);
	if (tlen == 0 || tlen >= sizeof(r->orcpt_type))
		return -1;
	for (size_t i = 0; i < tlen; i++) {
		if (!isalnum((unsigned char)val[i]) && val[i] != '-')
			return -1;
		r->orcpt_type[i] = (char)tolower((unsigned char)val[i]);
	}
	r->orcpt_type[tlen] = '\0';
	return xtext_decode(semi + 1, vlen - tlen - 1, r->orcpt, sizeof(r->orcpt)) > 0 ? 0 : -1;
}

enum smtp_parse
smtp_parse_rcpt(const char *arg, struct smtp_rcpt *r, int smtputf8)
{
	const char *p, *val;
	char key[16];
	size_t vlen;
	enum smtp_parse rc;

	memset(r, 0, sizeof(*r));
	if ((p = expect_keyword(arg, "TO:")) == NULL)
		return SMTP_PARSE_SYNTAX;
	if ((rc = parse_path(&p, &r->to, 1, smtputf8)) != SMTP_PARSE_OK)
		return rc;
	if (*p != ' ' && *p != '\0')
		return SMTP_PARSE_SYNTAX;
	while (*p == ' ')
		p++;
	while (*p) {
		const char *start = p;
		int bad = 0;

		p = next_param(p, key, sizeof(key), &val, &vlen);
		/* RFC 3461 4.1, 4.2: each at most once; a repeat is a bad value */
		if (strcmp(key, "NOTIFY") == 0)
			bad = r->notify != 0 || parse_notify(val, vlen, &r->notify) == -1;
		else if (strcmp(key, "ORCPT") == 0)
			bad = r->orcpt_type[0] != '\0' || parse_orcpt(r, val, vlen) == -1;
		else {
			r->bad_param = start;
			return SMTP_PARSE_PARAM;
		}
		if (bad) {
			r->bad_param = start;
			return SMTP_PARSE_PARAM_VALUE;
		}
	}
	return SMTP_PARSE_OK;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;	/* RFC 3461 4: upper-case hex only */
}

int
xtext_decode(const char *src, size_t srclen, char *dst, size_t dstlen)
{
	size_t o = 0;

	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '+') {
			int hi, lo;

			if (i + 2 >= srclen)
				return -1;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
			if (c < 0x20 || c == 0x7f)
				return -1;
		} else if (c < 0x21 || c > 0x7e || c == '=')
			return -1;
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return (int)o;
}

size_t
xtext_encode(const char *src, char *dst, size_t dstlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0, w = 0;	/* w: bytes written, a prefix of the encoding */

	for (; *src; src++) {
		unsigned char c = (unsigned char)*src;
		int plain = c >= 0x21 && c <= 0x7e && c != '+' && c != '=';
		size_t need = plain ? 1 : 3;

		if (w == o && o + need < dstlen) {
			if (plain)
				dst[o] = (char)c;
			else {
				dst[o] = '+';
				dst[o + 1] = hex[c >> 4];
				dst[o + 2] = hex[c & 15];
			}
			w = o + need;
		}
		o += need;
	}
	if (dstlen > 0)
		dst[w] = '\0';
	return o;
}
