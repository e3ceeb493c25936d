/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * reload.h - SIGHUP: the configuration file is read, parsed and checked on
 * a thread of its own, then handed to the loop, which swaps it in at once.
 * A session never waits for a parse, however many domains the file holds.
 *
 * A SIGHUP during a parse is not lost: once that parse is in, the file is
 * read again.  An old configuration's memory is freed off the loop too.
 */
#ifndef SPOOLD_RELOAD_H
#define SPOOLD_RELOAD_H

#include <ev.h>

#include "spoold_conf.h"

/* reload_apply - on the loop, with what the thread parsed: cf (the
 * caller's from then on), or NULL when the file had errors (logged); 0
 * when cf runs now (cf stays valid until the loop next runs), -1 (logged)
 * when the running configuration stays */
typedef int reload_apply(struct spoold_conf *cf);

void	reload_init(struct ev_loop *, const char *path, reload_apply *);
/* reload_request - SIGHUP: start a parse, or ask for one more */
void	reload_request(void);
/* reload_request_for - the same for another reason than a SIGHUP, said in
 * the log line ("reloading FILE" + why): a static string */
void	reload_request_for(const char *why);
/* reload_stop - wait for a parse under way and drop its result */
void	reload_stop(void);

/* reload_free_conf - free cf, off the loop when it is big (a detached
 * thread; freeing 100,000 domain blocks takes longer than a session may
 * wait) */
void	reload_free_conf(struct spoold_conf *cf);

#endif
