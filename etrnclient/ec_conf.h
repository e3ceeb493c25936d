/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ec_conf.h - etrnclient.conf: server blocks (the contract is DESIGN.md
 * section 5 and etrnclient.conf(5)).  The same syntax and -n check as
 * spoold.conf.
 */
#ifndef ETRNCLIENT_EC_CONF_H
#define ETRNCLIENT_EC_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define EC_DEF_EVERY		(15 * 60)
#define EC_DEF_TIMEOUT		300		/* a command's reply, RFC 5321 4.5.3.2 */
#define EC_ATRN_TIMEOUT		(10 * 60)	/* RFC 2645 5.2.1: at least 10 minutes */

/* In the order a run makes the sessions: ETRN's replies come at once (the
 * ISP delivers on a connection of its own), ODMR lasts as long as the mail. */
enum ec_method { EC_ETRN, EC_ODMR, EC_NMETHODS };
enum ec_tls { EC_TLS_MAY, EC_TLS_REQUIRE, EC_TLS_VERIFY };
enum ec_relay { EC_RELAY_NONE, EC_RELAY_SMTP, EC_RELAY_LMTP };

/* One session of a run with the server: ETRN for its domains, or ODMR
 * (AUTH, ATRN, the relay) for its domains or, with none, every domain the
 * identity may pull. */
struct ec_session {
	int		 on;		/* the block asks for it */
	int		 line;		/* its "etrn"/"odmr" (or "method") line */
	int		 port;		/* 25 for ETRN, 366 for ODMR unless given */
	int		 port_line;	/* its "port etrn|odmr N", 0: none */
	char		**domains;
	size_t		 n_domains;
};

struct ec_server {
	char		*name;		/* the host to dial */
	int		 line;
	/* what the run does, once the file is checked: sess[EC_ETRN], then
	 * sess[EC_ODMR], each if on */
	struct ec_session sess[EC_NMETHODS];
	/* the one-session spelling as written ("method", "domains", a bare
	 * "port N"; the command line's too), folded into sess[] by the checks */
	int		 method_set, method_line;
	enum ec_method	 method;
	int		 port, port_line;
	char		**domains;
	size_t		 n_domains;
	int		 domains_line;
	char		*user;
	char		*password_file;
	char		*password;	/* read from password_file */
	enum ec_tls	 tls;
	char		*ca;
	uint64_t	 every;
	enum ec_relay	 relay;
	char		*relay_host;	/* SMTP: host or address */
	int		 relay_port;
	char		*relay_path;	/* LMTP: unix socket */
};

struct ec_conf {
	char			*path;
	char			*hostname;	/* our EHLO name */
	char			*lock_dir;
	uint64_t		 timeout;
	struct ec_server	*servers;
	size_t			 n_servers;
};

/* ec_conf_load - parse path; NULL with every error in errs */
struct ec_conf	*ec_conf_load(const char *path, struct conf_errors *errs);
/* ec_conf_parse_text - the same for text in memory (tests, fuzzing) */
struct ec_conf	*ec_conf_parse_text(const char *name, const char *text, struct conf_errors *errs);
/* ec_conf_adhoc - one server from the command line, checked like a file */
struct ec_conf	*ec_conf_adhoc(const struct ec_server *, struct conf_errors *errs);
void		 ec_conf_free(struct ec_conf *);

/* ec_method_name - "etrn", "odmr" */
const char	*ec_method_name(enum ec_method);

/* ec_parse_relay - "host:port", "[addr]:port" or "lmtp:/path"; 0, -1 */
int	ec_parse_relay(const char *text, struct ec_server *);

#endif
