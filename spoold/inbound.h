/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * inbound.h - the policy of "listen smtp" sessions: recipients, quotas,
 * rates, ETRN (RFC 1985), and storing each message before its 250.
 */
#ifndef SPOOLD_INBOUND_H
#define SPOOLD_INBOUND_H

#include <ev.h>

#include "session.h"

struct queue;

void	inbound_init(struct ev_loop *, struct queue *);
extern const struct session_service inbound_service;

#endif
