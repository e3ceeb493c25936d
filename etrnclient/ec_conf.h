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

enum ec_method { EC_ETRN, EC_ODMR };
enum ec_tls { EC_TLS_MAY, EC_TLS_REQUIRE, EC_TLS_VERIFY };
enum ec_relay { EC_RELAY_NONE, EC_RELAY_SMTP, EC_RELAY_LMTP };

struct ec_server {
	char		*name;		/* the host to dial */
	int		 line;
	int		 method_set;
	enum ec_method	 method;
	int		 port;		/* 0: 25 for ETRN, 366 for ODMR */
	char		**domains;
	size_t		 n_domains;
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

/* ec_parse_relay - "host:port", "[addr]:port" or "lmtp:/path"; 0, -1 */
int	ec_parse_relay(const char *text, struct ec_server *);

#endif
