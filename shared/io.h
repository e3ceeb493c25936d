/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * io.h - one connection: socket, buffers, timeout, optional TLS, libev watchers.
 *
 * Protocol code never touches libev I/O watchers or GnuTLS records: it gets
 * events from this layer and reads lines or raw bytes from its input buffer.
 *
 * Events (delivered to the callback given to io_new):
 *   IO_DATAIN        new bytes are in the input buffer
 *   IO_LOWAT         everything written so far has been sent
 *   IO_TLSREADY      the TLS handshake finished
 *   IO_TIMEOUT       nothing was received for the configured time
 *   IO_DISCONNECTED  the peer closed the connection
 *   IO_ERROR         a socket or TLS error; io_error() says which
 *
 * The callback may call io_free() on the io it was given; the layer defers the
 * free until the callback returns.
 */
#ifndef SHARED_IO_H
#define SHARED_IO_H

#include <stddef.h>
#include <sys/socket.h>
#include <ev.h>
#include <gnutls/gnutls.h>

#include "buf.h"

enum io_event {
	IO_DATAIN,
	IO_LOWAT,
	IO_TLSREADY,
	IO_TIMEOUT,
	IO_DISCONNECTED,
	IO_ERROR,
	IO_CONNECTED,		/* io_connect() succeeded */
};

/* Input is never buffered past this: a peer that sends faster than we consume
 * is simply not read until we catch up. */
#define IO_INBUF_MAX	(64 * 1024)

struct io;
typedef void io_callback(struct io *, enum io_event, void *arg);

struct io	*io_new(struct ev_loop *, int fd, io_callback *, void *arg);
/* io_connect - a non-blocking connection to sa: IO_CONNECTED or IO_ERROR
 * follows from the loop (bound by the timeout set with io_set_timeout).
 * NULL with errno when no socket could be made. */
struct io	*io_connect(struct ev_loop *, const struct sockaddr *, socklen_t,
		    io_callback *, void *arg);
/* io_set_callback - hand the connection to another state machine (the ODMR
 * turn-around, etrnclient's relay) */
void		 io_set_callback(struct io *, io_callback *, void *arg);
void		 io_free(struct io *);
int		 io_fd(const struct io *);
struct ev_loop	*io_loop(const struct io *);
const char	*io_error(const struct io *);

/* io_set_timeout - IO_TIMEOUT after seconds (0: none).  on_input: any input
 * restarts the timer; otherwise only io_restart_timer() does, so a client
 * dripping one byte at a time cannot keep a command open for ever. */
void		 io_set_timeout(struct io *, double seconds, int on_input);
void		 io_restart_timer(struct io *);

/* Output. Data is queued and sent when the socket is writable. */
void		 io_write(struct io *, const void *, size_t);
void		 io_print(struct io *, const char *);
/* io_writeline - one formatted line and CRLF (a command: our text only) */
void		 io_writeline(struct io *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t		 io_queued(const struct io *);
/* io_send_last - a few last bytes before io_free(): sent at once when
 * nothing is queued and the connection is in clear, else dropped; never
 * waits.  0 when sent whole. */
int		 io_send_last(struct io *, const void *, size_t);

/* Input. */
struct buf	*io_input(struct io *);
/* io_getline - the next line without its CRLF or LF, NUL-terminated, valid
 * until control returns to the loop; NULL when no complete line is buffered.
 * A line longer than max sets *toolong to IO_LINE_TOOLONG once: its first
 * part is thrown away, and so is the rest of it when it arrives.  Once more
 * than IO_SKIP_MAX bytes of one line have been thrown away, every call sets
 * IO_LINE_FLOOD: the peer is not speaking the protocol, and the caller
 * closes the connection rather than read on until a timeout. */
#define IO_LINE_TOOLONG	1
#define IO_LINE_FLOOD	2
#define IO_SKIP_MAX	(64 * 1024)
char		*io_getline(struct io *, size_t max, size_t *len, int *toolong);
/* io_pending - bytes received but not yet consumed, including bytes the TLS
 * layer decrypted and has not handed over yet */
size_t		 io_pending(struct io *);
/* io_pause_read - stop reading for good (a session that is closing) */
void		 io_pause_read(struct io *);
/* io_consumed - call after taking input outside an IO_DATAIN callback, so
 * reading resumes (the layer stops reading while its buffer is full) */
void		 io_consumed(struct io *);

/* TLS.  io_start_tls_server() discards any buffered plaintext input (CVE-2011-
 * 0411); output queued before or right after the call (the 220 to STARTTLS)
 * goes out in the clear, then the handshake starts.  -1: TLS could not be set
 * up (io_error() says why), nothing changed; answer 454. */
int		 io_start_tls_server(struct io *, gnutls_certificate_credentials_t,
		    gnutls_priority_t);
/* io_start_tls_client - the client side after the peer's 220 to STARTTLS;
 * servername goes into SNI (not for "[address]").  With verify_name the
 * handshake fails (IO_ERROR, io_error() says why) unless the certificate
 * chains to cred's trust list and matches verify_name (a host name or an IP
 * address); NULL: the certificate is not checked. */
int		 io_start_tls_client(struct io *, gnutls_certificate_credentials_t,
		    gnutls_priority_t, const char *servername, const char *verify_name);
int		 io_is_tls(const struct io *);
/* io_tls_info - "TLSv1.3:AES-256-GCM" style text, or NULL without TLS */
const char	*io_tls_info(struct io *, char *, size_t);

#endif
