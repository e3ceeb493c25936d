/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * odmr.h - the policy of "listen odmr" sessions (RFC 2645): AUTH through
 * Cyrus SASL, the domains a user owns, and the turn to a delivery run.
 */
#ifndef SPOOLD_ODMR_H
#define SPOOLD_ODMR_H

#include <ev.h>

#include "session.h"

void	odmr_init(struct ev_loop *);
extern const struct session_service odmr_service;

#endif
