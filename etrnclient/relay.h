/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * relay.h - etrnclient's side of a turned ODMR connection (RFC 2645 5.3):
 * it is the SMTP server there (shared/smtp_server.c) and hands every
 * message to the local MTA (relay-to: SMTP, or LMTP over a unix socket)
 * with the shared delivery engine (shared/smtp_client.c).  The provider
 * gets 250 only after the local MTA's 250; the local MTA down or refusing
 * for now gives 451, so the mail stays at the ISP.  etrnclient keeps no
 * spool: the local MTA's transaction opens when the provider starts the
 * data and the message flows through (at most 256 KiB of it in memory; the
 * provider is not read while that much waits).
 *
 * One recipient per transaction (452 4.5.3 to the others, RFC 5321
 * 4.5.3.1.10): the single reply to the final dot is then exactly that
 * recipient's fate at the local MTA, LMTP included.
 */
#ifndef ETRNCLIENT_RELAY_H
#define ETRNCLIENT_RELAY_H

#include <ev.h>

#include "ec_conf.h"

struct io;

struct relay_result {
	int		 status;	/* EC_EX_OK, or EC_EX_TEMPFAIL when anything stayed */
	char		 summary[512];
	unsigned long	 relayed, refused;
};

typedef void relay_done(void *arg, const struct relay_result *);

/* relay_start - serve the turned connection io (the relay owns it from
 * here; a TLS session goes on); done() once it ends.  -1: io untouched */
int	relay_start(struct ev_loop *, struct io *, const struct ec_conf *,
	    const struct ec_server *, relay_done *, void *arg);
/* relay_abort_all - end every turned session now (SIGTERM) */
void	relay_abort_all(void);

#endif
