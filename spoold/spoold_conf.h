/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spoold_conf.h - spoold.conf: the directives, their defaults and the parsed
 * configuration (the contract is DESIGN.md section 5 and spoold.conf(5) in
 * the README).
 */
#ifndef SPOOLD_CONF_H
#define SPOOLD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"
#include "conf.h"

#define DEF_MAX_MESSAGE_SIZE	(50ULL * 1024 * 1024)
#define DEF_MAX_RECIPIENTS	1000
#define DEF_MAX_CONNECTIONS	1000
#define DEF_MAX_CONNECTIONS_IP	50
#define DEF_MAX_SPOOL_SIZE	(4ULL * 1024 * 1024 * 1024)
#define DEF_TIMEOUT_IDLE	300	/* RFC 5321 4.5.3.2.7: at least 5 minutes */
#define DEF_TIMEOUT_DATA	600
#define DEF_TIMEOUT_TLS		60
#define DEF_MAX_AGE		(30 * 86400)
#define DEF_RETRY		(15 * 60)
#define DEF_SASL_SERVICE	"spoold"
/* SASL steps at once (threads), for back ends that block (saslauthd, sql) */
#define DEF_SASL_WORKERS	4
#define MAX_SASL_WORKERS	64
#define DEF_TLS_PRIORITY	"NORMAL:-VERS-TLS1.0:-VERS-TLS1.1"
#define DEF_MAX_ERRORS		20
#define DEF_ETRN_RATE		30	/* ETRN commands per client address per minute */
/* A slow or dripping client: the whole DATA phase is bounded, and after the
 * grace period it must have kept up this average (Postfix's
 * smtpd_min_data_rate is 500 too). */
#define DEF_TIMEOUT_DATA_TOTAL	600
#define DEF_MIN_DATA_RATE	500	/* bytes per second */
#define DEF_MIN_DATA_RATE_GRACE	30
/* NOOP, RSET, VRFY, HELP and an ETRN that starts nothing, per session
 * (Postfix's smtpd_junk_command_limit) */
#define DEF_JUNK_COMMAND_LIMIT	100
/* TLS handshakes per client address per minute, both ports together:
 * the most expensive thing a client can ask for */
#define DEF_RATE_TLS		60
/* deliveries a run may make before the earliest is on disk: what a crash
 * can make it deliver twice.  Group commit records a run's deliveries some
 * 5 to 10 at a time at full speed, so 16 is seldom reached; 1 makes every
 * delivery wait for its own fsync (about 6x slower here). */
#define DEF_DELIVERY_WINDOW	16
/* milter-timeout connect|command|eom, as Postfix's milter_*_timeout */
#define DEF_MILTER_CONNECT	30
#define DEF_MILTER_COMMAND	30
#define DEF_MILTER_EOM		300
#define DEF_QUARANTINE_MAX_AGE	(30 * 86400)
/* recipients verify: how long the primary's answer to a RCPT probe counts.
 * A positive one long (Postfix's address_verify_positive_expire_time is
 * 31d too): a mailbox seldom goes, and while the primary is down the
 * cache is what answers.  A negative one briefly, 1h (Postfix: 3d): a
 * mailbox just created at the primary must not be refused at the backup
 * for days, and the rate limit keeps a dictionary attack from turning the
 * short lifetime into a storm of probes. */
#define DEF_VERIFY_POSITIVE_EXPIRE	(31 * 86400)
#define DEF_VERIFY_NEGATIVE_EXPIRE	3600
/* A positive answer older than this is still used, but the RCPT that hits
 * it starts a probe in the background (Postfix's
 * address_verify_positive_refresh_time is 7d too): a mailbox removed at
 * the primary is noticed within a week, not after the full 31 days. */
#define DEF_VERIFY_POSITIVE_REFRESH	(7 * 86400)
#define DEF_VERIFY_RATE			60	/* probes per primary per minute */
#define DEF_VERIFY_TIMEOUT		30	/* a whole probe, connect to RCPT reply */

enum listen_kind { LISTEN_SMTP, LISTEN_ODMR, LISTEN_METRICS };
enum domain_mode { MODE_HOLD, MODE_BACKUP };
/* require-tls: what waits for STARTTLS on the ODMR port.  yes: the
 * mechanisms that send the password in clear (PLAIN, LOGIN); all: every
 * AUTH and ATRN.  PLAIN and LOGIN never go in clear whatever it says
 * (auth.c), so no acts as yes. */
enum require_tls { REQUIRE_TLS_NO, REQUIRE_TLS_YES, REQUIRE_TLS_ALL };
enum tls_policy { TLS_MAY, TLS_REQUIRE, TLS_VERIFY };
enum route_kind { ROUTE_NONE, ROUTE_REQUESTER, ROUTE_HOST, ROUTE_MX };

struct listen_addr {
	enum listen_kind	 kind;
	char			*text;		/* as written */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	/* "proxy-protocol-from CIDR..." on its listen line: a connection
	 * from these starts with a PROXY header (HAProxy's), and only these
	 * may send one; its own copy, freed with the configuration */
	struct cidr		*proxy_from;
	size_t			 n_proxy_from;
};

struct route {
	enum route_kind	 kind;
	char		*host;		/* ROUTE_HOST: name or [literal] */
	int		 port;		/* 0: 25 */
};

struct sasl_opt {
	char	*key;
	char	*value;
};

struct recipients;		/* recipients.h */
struct pgsql_map;		/* pgsql_map.h */

struct domain_conf {
	char			*name;		/* canonical: lower case, no dot */
	enum domain_mode	 mode;
	struct cidr		*etrn_from;
	size_t			 n_etrn_from;
	char			**atrn_users;
	size_t			 n_atrn_users;
	struct route		 route;
	enum tls_policy		 tls;
	uint64_t		 quota_bytes;		/* 0: none */
	uint64_t		 quota_messages;	/* 0: none */
	uint64_t		 max_age;
	uint64_t		 retry;
	uint64_t		 delay_warning;		/* 0: no delay notices */
	int			 recipients_any;
	int			 recipients_verify;	/* "recipients [FILE] verify": not
						 * listed (or no list): ask the primary */
	char			*recipients_file;
	int			 recipients_line;
	struct recipients	*recipients;	/* loaded list, or NULL for any */
	char			*recipients_pgsql;	/* "recipients pgsql:FILE" */
	const struct pgsql_map	*recipients_map;	/* its lookup (cf->pg_maps) */
	int			 filter;	/* "filter on" (default): the milters see its mail */
	char			*archive_to;	/* local@domain: a copy of every message
						 * stored, one more recipient; or NULL */
	int			 line;		/* where it was defined */
	int			 from_pgsql;	/* a row of "domains pgsql:" */
};

/* milter NAME unix:/path | inet:ADDRESS:PORT: a content filter, asked in
 * the order given */
struct milter_conf {
	char			*name;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 line;
};

/* What a message gets when no filter could be asked. */
enum milter_default { MILTER_DEFAULT_TEMPFAIL, MILTER_DEFAULT_ACCEPT, MILTER_DEFAULT_REJECT };

struct spoold_conf {
	char			*path;
	char			*hostname;
	int			 hostname_line;	/* given, even if invalid */
	struct listen_addr	*listens;
	size_t			 n_listens;
	char			*datadir;
	char			*user;
	int			 user_line;	/* for spoold -n's check */
	char			*pidfile;	/* NULL: none */
	char			*tls_cert;
	char			*tls_key;
	char			*tls_priority;
	char			*tls_ca;	/* trust for "tls verify"; NULL: the system's */
	enum require_tls	 require_tls;
	int			 tls_cert_line, tls_priority_line, require_tls_line;	/* for errors */
	uint64_t		 max_message_size;
	uint64_t		 max_recipients;
	uint64_t		 max_connections;
	uint64_t		 max_connections_ip;
	uint64_t		 timeout_idle;
	uint64_t		 timeout_data;
	uint64_t		 timeout_data_total;	/* the whole DATA phase */
	uint64_t		 timeout_tls;
	uint64_t		 min_data_rate;		/* bytes/s in DATA, 0: off */
	uint64_t		 min_data_rate_grace;	/* seconds before it applies */
	uint64_t		 junk_command_limit;	/* per session, 0: none */
	/* the delivery client's (RFC 5321 4.5.3.2), "timeout smtp-..." */
	uint64_t		 timeout_smtp_connect;
	uint64_t		 timeout_smtp_greeting;
	uint64_t		 timeout_smtp_command;
	uint64_t		 timeout_smtp_data_init;
	uint64_t		 timeout_smtp_data_block;
	uint64_t		 timeout_smtp_data_done;
	char			*sasl_service;
	struct sasl_opt		*sasl_opts;
	size_t			 n_sasl_opts;
	uint64_t		 sasl_workers;		/* threads for SASL steps */
	uint64_t		 max_spool_size;
	uint64_t		 etrn_rate;
	uint64_t		 mx_port;
	uint64_t		 rate_connections;	/* per client address per minute, 0: off */
	uint64_t		 rate_messages;
	uint64_t		 rate_tls;		/* STARTTLS per address per minute */
	uint64_t		 delivery_window;	/* deliveries ahead of the disk */
	uint64_t		 drain_threshold;	/* free space below it: drain-only */	/* port of MX hosts (25; tests change it) */
	char			*resolver;	/* "ip[:port],...", NULL: /etc/resolv.conf */
	struct domain_conf	*domains;		/* sorted by name once loaded */
	size_t			 n_domains, domains_cap;
	/* over every domain, worked out once at load (off the loop at a
	 * reload), so nothing on the loop walks 100,000 blocks: a domain has
	 * tls verify; the shortest backup retry, max-age or delay-warning */
	int			 any_tls_verify;
	uint64_t		 shortest_domain_timer;	/* UINT64_MAX: none */
	struct queue_conf	*queues;	/* ETRN #name groups */
	size_t			 n_queues;
	struct milter_conf	*milters;
	size_t			 n_milters;
	uint64_t		 milter_timeout_connect, milter_timeout_command, milter_timeout_eom;
	enum milter_default	 milter_default;
	uint64_t		 quarantine_max_age;	/* then removed, without a DSN */
	/* domains pgsql:FILE: more domains, rows of a PostgreSQL query */
	char			*domains_pgsql;
	int			 domains_pgsql_line;
	struct pgsql_map	*domains_map;
	uint64_t		 pgsql_rows_gen;	/* which rows joined (pgsql_domains_text) */
	/* the lookup files named, each loaded once however many domains
	 * name it */
	struct pgsql_map	**pg_maps;
	size_t			 n_pg_maps;
	/* xclient-from CIDR...: who may send XCLIENT on the SMTP port */
	struct cidr		*xclient_from;
	size_t			 n_xclient_from;
	/* recipients verify: the cache lifetimes, when a positive entry is
	 * refreshed, probes per primary per minute, a probe's time limit
	 * (seconds); the lines where the positive ones were given (0: not) */
	uint64_t		 verify_positive_expire, verify_negative_expire;
	uint64_t		 verify_positive_refresh;
	int			 verify_positive_expire_line, verify_positive_refresh_line;
	uint64_t		 verify_rate, verify_timeout;
	/* spoold_conf_load_one: the one domain block read ("" none), NULL
	 * when every block was */
	char			*only_domain;
};

/* queue NAME DOMAIN...: "ETRN #NAME" asks for all of these domains */
struct queue_conf {
	char			*name;		/* lower case, without the # */
	char			**domains;	/* canonical names of configured domains */
	size_t			 n_domains;
	int			 line;
};

/* spoold_conf_queue - the queue named name (lower case, no #), or NULL */
const struct queue_conf *spoold_conf_queue(const struct spoold_conf *, const char *name);

/* spoold_conf_load - parse path (and the recipients files it names) into a
 * new configuration; NULL with every error in errs */
struct spoold_conf *spoold_conf_load(const char *path, struct conf_errors *errs);
/* spoold_conf_load_one - the same, but of the domain blocks only domain's
 * (canonical; "" for none): spoolctl's, which needs one domain's facts at
 * most and must not spend a parse of 100,000 blocks on it.  The other
 * blocks are skipped unread, so their errors are not found (spoold -n
 * finds them), and the queues' domains are not checked. */
struct spoold_conf *spoold_conf_load_one(const char *path, const char *domain,
    struct conf_errors *errs);
/* spoold_conf_parse_text - the same for text in memory (unit tests) */
struct spoold_conf *spoold_conf_parse_text(const char *name, const char *text,
    struct conf_errors *errs);
void	spoold_conf_free(struct spoold_conf *);

/* spoold_conf_add_domains - domain blocks from PostgreSQL (text, named
 * name in messages: the rows of "domains pgsql:") into cf, loaded from
 * the file.  A block with an error, or naming a domain the file has, is
 * left out with the reason in errs; the rest go in.  Returns how many
 * were left out. */
size_t	spoold_conf_add_domains(struct spoold_conf *cf, const char *name, const char *text,
	    struct conf_errors *errs);
/* the copy of the last rows "domains pgsql:" read, kept in the datadir
 * (pgsql.c writes it) */
#define SPOOLD_PGSQL_COPY	"pgsql-domains.conf"
/* spoold_conf_read_pgsql_copy - the copy's domain blocks (to free), NULL
 * when there is none */
char	*spoold_conf_read_pgsql_copy(const char *datadir);

/* spoold_conf_domain - the configured domain named exactly name, which must
 * be canonical (lower case, no trailing dot: smtp_domain_canon), or NULL */
const struct domain_conf *spoold_conf_domain(const struct spoold_conf *, const char *);

#endif
