/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * control.h - DATADIR/control.sock, mode 0600: spoolctl's requests to the
 * running spoold (flush, bounce, delete, hold, release,
 * unverify).
 */
#ifndef SPOOLD_CONTROL_H
#define SPOOLD_CONTROL_H

#include <ev.h>

struct queue;
struct spoold_rt;

/* control_open - listen on DATADIR/control.sock; -1 (logged) when it
 * cannot: spoolctl flush and bounce will not work then (delete, hold and
 * release write the spool themselves) */
int	control_open(struct ev_loop *, struct queue *, struct spoold_rt *, const char *datadir);
/* control_configure - the running configuration (SIGHUP) */
void	control_configure(struct spoold_rt *);
void	control_close(void);

#endif
