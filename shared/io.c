/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * io.c - connection I/O over libev, with optional GnuTLS.
 *
 * The only file that drives ev_io watchers of connections and GnuTLS records.
 * Reads fill a bounded input buffer; writes drain an output buffer when the
 * socket is writable, so replies to a pipelined batch go out together.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "log.h"

enum io_tls_state {
	TLS_NONE,
	TLS_WAIT_FLUSH,		/* STARTTLS reply still being sent in clear */
	TLS_HANDSHAKE,
	TLS_UP,
};

struct io {
	int			 fd;
	struct ev_loop		*loop;
	ev_io			 rw, ww;
	ev_timer		 timer;
	double			 timeout;
	int			 timer_on_input;	/* any input restarts the timer */
	struct buf		 in, out;
	io_callback		*cb;
	void			*arg;
	gnutls_session_t	 tls;
	enum io_tls_state	 tls_state;
	int			 paused;	/* consumer asked us not to read */
	int			 skipping;	/* discarding the rest of an overlong line */
	size_t			 skipped;	/* bytes of it discarded so far */
	int			 flood;		/* more than IO_SKIP_MAX of it */
	int			 eof;
	int			 busy;		/* nesting depth of callbacks */
	int			 dead;		/* io_free() called inside a callback */
	int			 broken;	/* output could not be queued */
	int			 connecting;	/* io_connect() in progress */
	char			 err[256];
};

static void io_update_watchers(struct io *);
static void io_destroy(struct io *);


/* io_emit - deliver one event; returns 0 when the io is gone afterwards */
static int
io_emit(struct io *io, enum io_event ev)
{
	io->busy++;
	io->cb(io, ev, io->arg);
	io->busy--;
	if (io->dead) {
		if (io->busy == 0)
			io_destroy(io);
		return 0;
	}
	return 1;
}

static void
io_set_error(struct io *io, const char *what, const char *why)
{
	char copy[160];

	snprintf(copy, sizeof(copy), "%s", why);	/* why may be io->err itself */
	snprintf(io->err, sizeof(io->err), "%.32s: %s", what, copy);
}

/* io_fail - report an error once and stop all I/O */
static int
io_fail(struct io *io, const char *what, const char *why)
{
	io_set_error(io, what, why);
	ev_io_stop(io->loop, &io->rw);
	ev_io_stop(io->loop, &io->ww);
	ev_timer_stop(io->loop, &io->timer);
	return io_emit(io, IO_ERROR);
}

/* io_fail_verify - the peer's certificate did not pass: say why, in
 * GnuTLS's words ("The certificate is NOT trusted. ...") */
static void
io_fail_verify(struct io *io)
{
	unsigned status = gnutls_session_get_verify_cert_status(io->tls);
	gnutls_datum_t out = { NULL, 0 };
	char why[300];

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
		snprintf(why, sizeof(why), "%.*s", (int)out.size, (const char *)out.data);
		gnutls_free(out.data);
	} else
		snprintf(why, sizeof(why), "status 0x%x", status);
	io_fail(io, "TLS certificate verification", why);
}

/* io_tls_handshake - one step of the non-blocking handshake */
static void
io_tls_handshake(struct io *io)
{
	int rc = gnutls_handshake(io->tls);

	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		io_update_watchers(io);
		return;
	}
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		io_fail_verify(io);
		return;
	}
	if (rc < 0) {
		io_fail(io, "TLS handshake", gnutls_strerror(rc));
		return;
	}
	io->tls_state = TLS_UP;
	if (io_emit(io, IO_TLSREADY))
		io_consumed(io);
}

/* io_drop_skipped - discard input up to and including the next LF; past
 * IO_SKIP_MAX discarded bytes of one line the peer is flooding */
static void
io_drop_skipped(struct io *io)
{
	char *lf = buf_used(&io->in) ? memchr(buf_head(&io->in), '\n', buf_used(&io->in)) : NULL;
	size_t n = lf == NULL ? buf_used(&io->in) : (size_t)(lf - buf_head(&io->in)) + 1;

	io->skipped += n;
	buf_consume(&io->in, n);
	if (io->skipped > IO_SKIP_MAX) {
		io->flood = 1;
		buf_clear(&io->in);
		return;
	}
	if (lf != NULL) {
		io->skipping = 0;
		io->skipped = 0;
	}
}

/* io_read_some - one read into the input buffer: >0 bytes, 0 EOF, -1 again, -2 error */
static ssize_t
io_read_some(struct io *io)
{
	size_t room = IO_INBUF_MAX - buf_used(&io->in);
	ssize_t n;

	if (buf_reserve(&io->in, room) == -1) {
		io_set_error(io, "read", "out of memory");
		return -2;
	}
	if (io->tls_state == TLS_UP) {
		n = gnutls_record_recv(io->tls, buf_tail(&io->in), room);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return -1;
		if (n == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (n < 0) {
			io_set_error(io, "TLS read", gnutls_strerror((int)n));
			return -2;
		}
	} else {
		n = read(io->fd, buf_tail(&io->in), room);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return -1;
		if (n == -1) {
			io_set_error(io, "read", strerror(errno));
			return -2;
		}
	}
	io->in.b_len += (size_t)n;
	return n;
}

/* io_fill - read until the socket is empty or the buffer full; -1 on error */
static int
io_fill(struct io *io, int *got)
{
	ssize_t n;

	*got = 0;
	while (buf_used(&io->in) < IO_INBUF_MAX) {
		n = io_read_some(io);
		if (n == -2)
			return -1;
		if (n == -1)
			break;
		if (n == 0) {
			io->eof = 1;
			break;
		}
		*got = 1;
		if (io->skipping)
			io_drop_skipped(io);
		if (io->flood)
			break;
		/* GnuTLS may hold decrypted data that the socket will never
		 * signal again; keep reading while it does. */
		if (io->tls_state == TLS_UP && gnutls_record_check_pending(io->tls) > 0)
			continue;
		if ((size_t)n < 4096)
			break;
	}
	return 0;
}

static void
io_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct io *io = w->data;
	int got;

	if (io->tls_state == TLS_HANDSHAKE) {
		io_tls_handshake(io);
		return;
	}
	if (io->paused || io->tls_state == TLS_WAIT_FLUSH)
		return;
	if (io_fill(io, &got) == -1) {
		io_fail(io, "connection", io->err);
		return;
	}
	if (got && io->timeout > 0 && io->timer_on_input)
		ev_timer_again(loop, &io->timer);
	if ((buf_used(&io->in) > 0 && !io->skipping) || io->flood)
		if (!io_emit(io, IO_DATAIN))
			return;
	if (io->eof && !io->paused) {
		ev_io_stop(loop, &io->rw);
		if (!io_emit(io, IO_DISCONNECTED))
			return;
	}
	io_consumed(io);
}

/* io_flush - send queued output; 0 drained, 1 more to send, -1 error */
static int
io_flush(struct io *io)
{
	ssize_t n;

	while (buf_used(&io->out) > 0) {
		size_t len = buf_used(&io->out);

		if (io->tls_state == TLS_UP) {
			n = gnutls_record_send(io->tls, buf_head(&io->out), len > 16384 ? 16384 : len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				return 1;
			if (n < 0) {
				io_set_error(io, "TLS write", gnutls_strerror((int)n));
				return -1;
			}
		} else {
			n = send(io->fd, buf_head(&io->out), len, MSG_NOSIGNAL);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				return 1;
			if (n == -1) {
				io_set_error(io, "write", strerror(errno));
				return -1;
			}
		}
		buf_consume(&io->out, (size_t)n);
	}
	return 0;
}

/* io_connect_done - the socket became writable: did the connect work? */
static void
io_connect_done(struct io *io)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		io_fail(io, "connect", strerror(err));
		return;
	}
	io->connecting = 0;
	io_update_watchers(io);
	if (io_emit(io, IO_CONNECTED))
		io_consumed(io);
}

static void
io_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct io *io = w->data;
	int rc;

	if (io->connecting) {
		io_connect_done(io);
		return;
	}
	if (io->tls_state == TLS_HANDSHAKE) {
		io_tls_handshake(io);
		return;
	}
	if (io->broken) {
		io_fail(io, "write", "out of memory queueing output");
		return;
	}
	if ((rc = io_flush(io)) == -1) {
		io_fail(io, "connection", io->err);
		return;
	}
	if (rc == 1)
		return;
	ev_io_stop(loop, &io->ww);
	if (io->tls_state == TLS_WAIT_FLUSH) {
		io->tls_state = TLS_HANDSHAKE;
		io_tls_handshake(io);
		return;
	}
	if (io_emit(io, IO_LOWAT))
		io_consumed(io);
}

static void
io_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct io *io = w->data;

	ev_timer_stop(loop, &io->timer);
	io_emit(io, IO_TIMEOUT);
}

/* io_update_watchers - start exactly the watchers the current state needs */
static void
io_update_watchers(struct io *io)
{
	int want_read, want_write;

	if (io->dead)
		return;
	if (io->tls_state == TLS_HANDSHAKE) {
		int dir = gnutls_record_get_direction(io->tls);

		want_read = dir == 0;
		want_write = dir == 1;
	} else if (io->connecting) {
		want_read = 0;
		want_write = 1;
	} else {
		want_read = !io->paused && !io->eof && io->tls_state != TLS_WAIT_FLUSH &&
		    buf_used(&io->in) < IO_INBUF_MAX;
		want_write = buf_used(&io->out) > 0 || io->tls_state == TLS_WAIT_FLUSH;
	}
	if (want_read && !ev_is_active(&io->rw))
		ev_io_start(io->loop, &io->rw);
	else if (!want_read && ev_is_active(&io->rw))
		ev_io_stop(io->loop, &io->rw);
	if (want_write && !ev_is_active(&io->ww))
		ev_io_start(io->loop, &io->ww);
	else if (!want_write && ev_is_active(&io->ww))
		ev_io_stop(io->loop, &io->ww);
}

struct io *
io_new(struct ev_loop *loop, int fd, io_callback *cb, void *arg)
{
	struct io *io = calloc(1, sizeof(*io));

	if (io == NULL)
		return NULL;
	io->fd = fd;
	io->loop = loop;
	io->cb = cb;
	io->arg = arg;
	buf_init(&io->in);
	buf_init(&io->out);
	ev_io_init(&io->rw, io_on_read, fd, EV_READ);
	ev_io_init(&io->ww, io_on_write, fd, EV_WRITE);
	ev_init(&io->timer, io_on_timeout);
	io->rw.data = io->ww.data = io->timer.data = io;
	io_update_watchers(io);
	return io;
}

struct io *
io_connect(struct ev_loop *loop, const struct sockaddr *sa, socklen_t salen, io_callback *cb,
    void *arg)
{
	struct io *io;
	int fd;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return NULL;
	if (connect(fd, sa, salen) == -1 && errno != EINPROGRESS) {
		int saved = errno;

		close(fd);
		errno = saved;
		return NULL;
	}
	if ((io = io_new(loop, fd, cb, arg)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	/* Even an immediate success is reported from the loop. */
	io->connecting = 1;
	io_update_watchers(io);
	return io;
}

void
io_set_callback(struct io *io, io_callback *cb, void *arg)
{
	io->cb = cb;
	io->arg = arg;
}

static void
io_destroy(struct io *io)
{
	if (io->tls)
		gnutls_deinit(io->tls);
	buf_free(&io->in);
	buf_free(&io->out);
	free(io);
}

void
io_free(struct io *io)
{
	if (io == NULL || io->dead)
		return;
	ev_io_stop(io->loop, &io->rw);
	ev_io_stop(io->loop, &io->ww);
	ev_timer_stop(io->loop, &io->timer);
	if (io->tls_state == TLS_UP)
		(void)gnutls_bye(io->tls, GNUTLS_SHUT_WR);
	/* Now, not at the deferred free: the caller may release the
	 * credentials this session uses as soon as we return. */
	if (io->tls)
		gnutls_deinit(io->tls);
	io->tls = NULL;
	io->tls_state = TLS_NONE;
	close(io->fd);
	io->dead = 1;
	if (io->busy == 0)
		io_destroy(io);
}

int
io_fd(const struct io *io)
{
	return io->fd;
}

struct ev_loop *
io_loop(const struct io *io)
{
	return io->loop;
}

const char *
io_error(const struct io *io)
{
	return io->err[0] ? io->err : "no error";
}

void
io_set_timeout(struct io *io, double seconds, int on_input)
{
	io->timeout = seconds;
	io->timer_on_input = on_input;
	ev_timer_stop(io->loop, &io->timer);
	if (seconds > 0) {
		io->timer.repeat = seconds;
		ev_timer_again(io->loop, &io->timer);
	}
}

void
io_restart_timer(struct io *io)
{
	if (io->timeout > 0 && !io->dead)
		ev_timer_again(io->loop, &io->timer);
}

void
io_write(struct io *io, const void *data, size_t len)
{
	if (io->dead)
		return;
	if (buf_append(&io->out, data, len) == -1) {
		/* A reply silently dropped would put client and server out of
		 * step: end the connection from the write callback instead. */
		log_warnx("io: out of memory queueing %zu bytes", len);
		io->broken = 1;
		ev_feed_event(io->loop, &io->ww, EV_WRITE);
		return;
	}
	if (!ev_is_active(&io->ww) && io->tls_state != TLS_HANDSHAKE)
		ev_io_start(io->loop, &io->ww);
}

void
io_print(struct io *io, const char *s)
{
	io_write(io, s, strlen(s));
}

void
io_writeline(struct io *io, const char *fmt, ...)
{
	char small[1024], *p = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {	/* a long AUTH line: never cut it */
		if ((p = malloc((size_t)n + 1)) == NULL) {
			io_set_error(io, "write", "out of memory");
			return;
		}
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	io_write(io, p, (size_t)n);
	io_write(io, "\r\n", 2);
	if (p != small)
		free(p);
}

size_t
io_queued(const struct io *io)
{
	return buf_used(&io->out);
}

int
io_send_last(struct io *io, const void *p, size_t len)
{
	if (io->tls_state != TLS_NONE || buf_used(&io->out) > 0)
		return -1;
	return send(io->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

struct buf *
io_input(struct io *io)
{
	return &io->in;
}

char *
io_getline(struct io *io, size_t max, size_t *len, int *toolong)
{
	char *head = buf_head(&io->in), *lf;
	size_t used = buf_used(&io->in), n;

	*toolong = 0;
	if (io->flood) {
		*toolong = IO_LINE_FLOOD;
		return NULL;
	}
	if (used == 0)
		return NULL;	/* memchr(NULL, ...) is undefined even for 0 bytes */
	lf = memchr(head, '\n', used < max ? used : max);
	if (lf == NULL) {
		if (used >= max) {
			*toolong = IO_LINE_TOOLONG;
			io->skipping = 1;
			io->skipped = 0;
			io_drop_skipped(io);
		}
		return NULL;
	}
	n = (size_t)(lf - head);
	buf_consume(&io->in, n + 1);
	if (n > 0 && head[n - 1] == '\r')
		n--;
	head[n] = '\0';
	*len = n;
	return head;
}

size_t
io_pending(struct io *io)
{
	size_t n = buf_used(&io->in);

	if (io->tls_state == TLS_UP)
		n += gnutls_record_check_pending(io->tls);
	return n;
}

void
io_pause_read(struct io *io)
{
	io->paused = 1;
	io_update_watchers(io);
}

/* io_consumed - the consumer took input: read again if there is room.  Bytes
 * GnuTLS has already decrypted will never make the socket readable, so they
 * are fetched from the loop; never from inside this call, so callers need not
 * expect reentry. */
void
io_consumed(struct io *io)
{
	if (io->dead)
		return;
	io_update_watchers(io);
	if (!io->paused && io->tls_state == TLS_UP && buf_used(&io->in) < IO_INBUF_MAX &&
	    gnutls_record_check_pending(io->tls) > 0)
		ev_feed_event(io->loop, &io->rw, EV_READ);
}

/* io_start_tls - set up a session for either side; the handshake starts from
 * the write callback once queued output is out, never inside this call */
static int
io_start_tls(struct io *io, unsigned flags, gnutls_certificate_credentials_t cred,
    gnutls_priority_t prio, const char *servername, const char *verify_name)
{
	int rc;

	if ((rc = gnutls_init(&io->tls, flags | GNUTLS_NONBLOCK)) < 0) {
		io_set_error(io, "TLS init", gnutls_strerror(rc));
		io->tls = NULL;
		return -1;
	}
	if ((rc = gnutls_priority_set(io->tls, prio)) < 0 ||
	    (rc = gnutls_credentials_set(io->tls, GNUTLS_CRD_CERTIFICATE, cred)) < 0 ||
	    (servername && servername[0] != '[' && (rc = gnutls_server_name_set(io->tls,
	    GNUTLS_NAME_DNS, servername, strlen(servername))) < 0)) {
		io_set_error(io, "TLS setup", gnutls_strerror(rc));
		gnutls_deinit(io->tls);
		io->tls = NULL;
		return -1;
	}
	if (flags & GNUTLS_SERVER)
		gnutls_certificate_server_set_request(io->tls, GNUTLS_CERT_IGNORE);
	else if (verify_name != NULL)	/* the handshake fails unless it verifies */
		gnutls_session_set_verify_cert(io->tls, verify_name, 0);
	gnutls_transport_set_int(io->tls, io->fd);
	/* CVE-2011-0411: nothing sent in clear after STARTTLS may be read as if
	 * it had come through the TLS session. */
	buf_clear(&io->in);
	io->skipping = 0;
	io->skipped = 0;
	io->tls_state = TLS_WAIT_FLUSH;
	io_update_watchers(io);
	return 0;
}

int
io_start_tls_server(struct io *io, gnutls_certificate_credentials_t cred,
    gnutls_priority_t prio)
{
	return io_start_tls(io, GNUTLS_SERVER, cred, prio, NULL, NULL);
}

int
io_start_tls_client(struct io *io, gnutls_certificate_credentials_t cred,
    gnutls_priority_t prio, const char *servername, const char *verify_name)
{
	return io_start_tls(io, GNUTLS_CLIENT, cred, prio, servername, verify_name);
}

int
io_is_tls(const struct io *io)
{
	return io->tls_state == TLS_UP;
}

const char *
io_tls_info(struct io *io, char *dst, size_t len)
{
	if (io->tls_state != TLS_UP)
		return NULL;
	snprintf(dst, len, "%s:%s",
	    gnutls_protocol_get_name(gnutls_protocol_get_version(io->tls)),
	    gnutls_cipher_get_name(gnutls_cipher_get(io->tls)));
	return dst;
}
