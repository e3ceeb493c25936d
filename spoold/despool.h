/*
 * despool.h - delivery runs: one domain's queued mail handed to the site,
 * over a connection spoold dials, by the shared SMTP client engine.
 *
 * One run per domain at a time; asking again while it runs joins it.  A
 * recipient leaves the spool only after the peer's 250 to the final dot
 * (through the committer, so a crash in between gives a duplicate, never a
 * loss); a 4xx keeps it with the reply and a next try.
 */
#ifndef SPOOLD_DESPOOL_H
#define SPOOLD_DESPOOL_H

#include <sys/socket.h>

#include "spoold_conf.h"

enum despool_start {
	DESPOOL_STARTED,	/* a run began */
	DESPOOL_JOINED,		/* one was already running */
	DESPOOL_EMPTY,		/* nothing queued */
	DESPOOL_NO_ROUTE,	/* the route cannot be used (reason says why) */
	DESPOOL_FAILED,		/* local trouble (reason says what) */
};

/* despool_start - start delivering d's mail; requester is the ETRN client
 * (for "deliver-to requester"), NULL for spoolctl flush.  *queued gets the
 * messages waiting. */
enum despool_start despool_start(const struct domain_conf *d, const struct sockaddr *requester,
    unsigned long long *queued, const char **reason);
/* despool_stop_all - end every run now; undelivered mail simply stays */
void	despool_stop_all(void);

#endif
