/*
 * odmr.h - the ODMR provider sessions of "listen odmr" (RFC 2645).
 */
#ifndef SPOOLD_ODMR_H
#define SPOOLD_ODMR_H

#include <stdint.h>
#include <sys/socket.h>

/* odmr_accept - a session on an accepted socket of an ODMR listener */
void	odmr_accept(int fd, const struct sockaddr *peer);
/* odmr_shutdown_all - 421 to every session (SIGTERM) */
void	odmr_shutdown_all(void);
/* odmr_alive - the session with this id still exists */
int	odmr_alive(uint64_t id);

#endif
