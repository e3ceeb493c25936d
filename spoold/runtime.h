/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * runtime.h - one loaded configuration and what is derived from it: TLS
 * credentials and the SMTP engine's settings for each listener kind.
 * Sessions and runs hold a reference, so a reload (SIGHUP) never changes a
 * session's rules midway; the last reference frees it.
 */
#ifndef SPOOLD_RUNTIME_H
#define SPOOLD_RUNTIME_H

#include <stddef.h>
#include <gnutls/gnutls.h>

#include "milter.h"
#include "smtp_server.h"
#include "spoold_conf.h"

/* TLS credentials, shared by configurations that name the same files: the
 * key is usually readable by root only, and a reload runs after the
 * privilege drop. */
struct spoold_tls {
	int				 refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t		 prio;
	/* when cred is another's (a reload that changed only tls-priority
	 * keeps the loaded key): the one holding it, referenced */
	struct spoold_tls		*cred_owner;
};

struct spoold_rt {
	int				 refs;
	struct spoold_conf		*conf;
	struct smtp_server_config	 smtp;		/* "listen smtp" sessions */
	struct smtp_server_config	 odmr;		/* "listen odmr" sessions */
	struct spoold_tls		*tls;		/* NULL without tls-cert */
	struct spoold_tls		*client;	/* delivery runs' STARTTLS; trust
							 * loaded when a domain has tls verify */
	int				 client_trust;	/* CA certificates in client */
	struct milter_target		*milters;	/* the content filters, in order */
	size_t				 n_milters;
};

/* rt_new - the runtime for cf, which it takes over; the credentials of old
 * (NULL at start) are reused where cf names the same files.  NULL with
 * "file:line: why" in err (cf is then still the caller's). */
struct spoold_rt *rt_new(struct spoold_conf *cf, const struct spoold_rt *old, char *err,
    size_t errlen);
struct spoold_rt *rt_ref(struct spoold_rt *);
void	rt_unref(struct spoold_rt *);
/* rt_set_conf_free - how the last rt_unref frees its configuration
 * (spoold: off the loop when big); NULL: spoold_conf_free */
void	rt_set_conf_free(void (*)(struct spoold_conf *));

#endif
