/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_data.c - DATA phase parser; see smtp_data.h.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "smtp_data.h"

static const char received_hdr[] = "received:";

void
smtp_data_init(struct smtp_data *d, smtp_data_sink *sink, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->state = DATA_BOL;
	d->in_headers = 1;
	d->sink = sink;
	d->arg = arg;
}

/* data_line_start - a new line begins: track the header section */
static void
data_line_start(struct smtp_data *d)
{
	d->hdr_match = d->in_headers ? 0 : -1;
}

/* data_header_char - match "Received:" at the start of header lines */
static void
data_header_char(struct smtp_data *d, unsigned char c)
{
	if (d->hdr_match < 0)
		return;
	if ((size_t)d->hdr_match < sizeof(received_hdr) - 1 &&
	    tolower(c) == received_hdr[d->hdr_match]) {
		if ((size_t)++d->hdr_match == sizeof(received_hdr) - 1) {
			d->received++;
			d->hdr_match = -1;
		}
	} else
		d->hdr_match = -1;
}

static void
data_emit(struct smtp_data *d, const char *p, size_t n)
{
	d->size += n;
	d->sink(d->arg, p, n);
}

/* data_mid_char - one byte inside a line */
static void
data_mid_char(struct smtp_data *d, const char *p)
{
	unsigned char c = (unsigned char)*p;

	if (c == '\r') {
		d->state = DATA_CR;
		return;
	}
	d->state = DATA_MID;
	if (c == '\n')
		d->flags |= DATA_BARE_LF;
	else if (c == '\0')
		d->flags |= DATA_NUL;
	else if (c >= 0x80)
		d->flags |= DATA_8BIT;
	data_header_char(d, c);
	data_emit(d, p, 1);
}

/* data_run - emit the run of ordinary bytes at p; returns its length */
static size_t
data_run(struct smtp_data *d, const char *p, size_t len)
{
	size_t n = 0;

	if (d->hdr_match >= 0)
		return 0;	/* header matching goes byte by byte */
	while (n < len) {
		unsigned char c = (unsigned char)p[n];

		if (c == '\r' || c == '\n' || c == '\0')
			break;
		if (c >= 0x80)
			d->flags |= DATA_8BIT;
		n++;
	}
	if (n > 0)
		data_emit(d, p, n);
	return n;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && d->state != DATA_END) {
		const char *p = buf + i;

		switch (d->state) {
		case DATA_BOL:
			data_line_start(d);
			if (*p == '.')
				d->state = DATA_BOL_DOT;
			else if (*p == '\r' && d->in_headers) {
				d->in_headers = 0;	/* empty line ends the headers */
				d->hdr_match = -1;
				d->state = DATA_CR;
			} else
				data_mid_char(d, p);
			i++;
			break;
		case DATA_BOL_DOT:
			/* RFC 5321 4.5.2: drop the first dot of a line */
			if (*p == '\r')
				d->state = DATA_BOL_DOT_CR;
			else
				data_mid_char(d, p);
			i++;
			break;
		case DATA_BOL_DOT_CR:
			if (*p == '\n') {
				d->state = DATA_END;
				i++;
				break;
			}
			d->flags |= DATA_BARE_CR;
			data_emit(d, "\r", 1);
			d->state = DATA_MID;	/* reprocess this byte */
			break;
		case DATA_MID: {
			size_t n = data_run(d, p, len - i);

			if (n == 0) {
				data_mid_char(d, p);
				n = 1;
			}
			i += n;
			break;
		}
		case DATA_CR:
			if (*p == '\n') {
				data_emit(d, "\r\n", 2);
				d->state = DATA_BOL;
				i++;
				break;
			}
			d->flags |= DATA_BARE_CR;
			data_emit(d, "\r", 1);
			d->state = DATA_MID;	/* reprocess this byte */
			break;
		case DATA_END:
			break;
		}
	}
	return i;
}
