/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * smtp_send.c - drive shared/smtp_client.c from the command line, for the
 * integration tests: send the message on standard input (CRLF lines, as
 * spoold stores them) to ADDRESS:PORT and print every outcome.
 *
 *   smtp_send [-s] [-T] ADDRESS PORT FROM RCPT... < message
 *     -s  the message needs SMTPUTF8     -T  require TLS (no certificate check)
 *
 * Output: "rcpt I CODE TEXT", "sent CODE TEXT", then "done ok" or
 * "done error: WHY".  Exit status 0 only for "done ok".
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "log.h"
#include "smtp_client.h"

static struct smtp_client_msg msg;
static int offered, status = 1;

static const struct smtp_client_msg *
send_next(void *arg)
{
	return offered++ ? NULL : &msg;
}

static void
send_rcpt(void *arg, const struct smtp_client_msg *m, size_t i, int code, const char *reply)
{
	printf("rcpt %zu %d %s\n", i, code, reply);
}

static void
send_sent(void *arg, const struct smtp_client_msg *m, int code, const char *reply)
{
	printf("sent %d %s\n", code, reply);
}

static void
send_done(void *arg, const char *error)
{
	if (error)
		printf("done error: %s\n", error);
	else
		printf("done ok\n");
	status = error ? 1 : 0;
	ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static int
read_stdin_body(void *arg, uint64_t off, void *dst, size_t len)
{
	memcpy(dst, buf_head(arg) + off, len);
	return 0;
}

static const struct smtp_client_ops ops = {
	.next = send_next, .rcpt = send_rcpt, .sent = send_sent, .done = send_done,
};

static void
on_connect(struct io *io, enum io_event ev, void *arg)
{
	struct smtp_client_params *p = arg;

	if (ev != IO_CONNECTED) {
		printf("done error: connect: %s\n", io_error(io));
		io_free(io);
		ev_break(EV_DEFAULT, EVBREAK_ALL);
		return;
	}
	if (smtp_client_start(io, p, &ops, NULL) == NULL) {
		printf("done error: out of memory\n");
		ev_break(EV_DEFAULT, EVBREAK_ALL);
	}
}

int
main(int argc, char **argv)
{
	struct smtp_client_params p = { .helo_name = "smtp-send.test", .peer_name = "peer",
	    .timeout_banner = 10, .timeout_command = 10, .timeout_data = 10, .timeout_block = 10,
	    .timeout_eom = 10 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct smtp_client_rcpt *to;
	struct buf body;
	char chunk[65536];
	size_t n;
	int ch;

	while ((ch = getopt(argc, argv, "sT")) != -1) {
		if (ch == 's')
			msg.smtputf8 = 1;
		else if (ch == 'T')
			p.tls_required = 1;
		else
			return 64;
	}
	if (argc - optind < 4 || inet_pton(AF_INET, argv[optind], &sin.sin_addr) != 1)
		return 64;
	log_init("smtp_send", 1, 0);
	sin.sin_port = htons((uint16_t)atoi(argv[optind + 1]));
	buf_init(&body);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_append(&body, chunk, n);
	for (size_t i = 0; i < buf_used(&body); i++)
		if ((unsigned char)buf_head(&body)[i] >= 0x80)
			msg.eight_bit = 1;
	msg.sender = argv[optind + 2];
	msg.nrcpts = (size_t)(argc - optind - 3);
	if ((to = calloc(msg.nrcpts ? msg.nrcpts : 1, sizeof(*to))) == NULL)
		return 1;
	for (size_t i = 0; i < msg.nrcpts; i++)
		to[i].addr = argv[optind + 3 + (int)i];
	msg.rcpts = to;
	msg.size = buf_used(&body);
	msg.read_body = read_stdin_body;
	msg.body_arg = &body;
	if (io_connect(EV_DEFAULT, (struct sockaddr *)&sin, sizeof(sin), on_connect, &p) == NULL) {
		perror("smtp_send: connect");
		return 1;
	}
	ev_run(EV_DEFAULT, 0);
	buf_free(&body);
	return status;
}
