/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * spoold.c - the spooling SMTP server: start-up, signals, reload, shutdown.
 * The composition root: the one place that creates the modules, hands each
 * what it needs, wires their events to each other and knows the shutdown
 * order.  No other module reaches into this file's state.
 *
 * SECURITY: started as root, spoold binds its listeners and reads its TLS key,
 * then drops to the configured user (setgroups, setgid, setuid, in that
 * order, each fatal on failure) before it opens the spool or reads a byte
 * from the network.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "auth.h"
#include "bounce.h"
#include "control.h"
#include "callout.h"
#include "despool.h"
#include "dns.h"
#include "inbound.h"
#include "listener.h"
#include "pgsql.h"
#include "reload.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "odmr.h"
#include "queue.h"
#include "runtime.h"
#include "scheduler.h"
#include "session.h"
#include "verify.h"
#include "spool.h"

#define SHUTDOWN_GRACE		30.0		/* seconds to finish commits on SIGTERM */

static struct {
	struct ev_loop		*loop;
	struct spoold_rt	*rt;		/* the running configuration */
	struct spool		*spool;
	struct queue		*queue;
	struct dns		*dns;		/* NULL: no resolver (logged) */
	int			 stopping;
	int			 exit_status;
	const char		*listen_file;
} spoold;

static void spoold_stop(int status, const char *why);

static ev_signal sig_hup, sig_term, sig_int;
static ev_timer shutdown_timer;
static ev_tstamp shutdown_started;

static void
log_warning(const char *msg)
{
	const char *w = strstr(msg, "warning: ");
	int at = w != NULL ? (int)(w - msg) : 0;

	/* "FILE:LINE: warning: TEXT": the log adds its own "warning: " */
	if (w != NULL)
		log_warnx("%.*s%s", at, msg, w + 9);
	else
		log_warnx("%s", msg);
}

/* print_warning - for -n: the same form as the errors, on stderr */
static void
print_warning(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

/* print_errors - the start-up's configuration errors, on stderr, before spoold
 * detaches: whoever started it sees them (a reload logs its own) */
static void
print_errors(struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
	conf_errors_free(errs);
}

static struct spoold_conf *
load_config(const char *path)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = spoold_conf_load(path, &errs);

	print_errors(&errs);
	return cf;
}

/* add_pgsql_copy - at start: the domain rows kept in the spool join cf,
 * served until the database answers; the copy (to hand to pgsql_start),
 * or NULL when there is none */
static char *
add_pgsql_copy(struct spoold_conf *cf)
{
	struct conf_errors errs = { 0 };
	char name[4200];
	char *copy;

	if (cf == NULL || cf->domains_map == NULL || (copy = spoold_conf_read_pgsql_copy(cf->datadir)) == NULL)
		return NULL;
	snprintf(name, sizeof(name), "%s/%s", cf->datadir, SPOOLD_PGSQL_COPY);
	spoold_conf_add_domains(cf, name, copy, &errs);
	print_errors(&errs);
	return copy;
}

/* pgsql_changed - new domain rows: a reload takes them in (parsed off
 * the loop with the file, as at a SIGHUP) */
static void
pgsql_changed(void)
{
	if (!spoold.stopping)
		reload_request_for(" for the new domain rows from PostgreSQL");
}

/* configure_all - every module that follows the running configuration
 * gets rt (sessions and runs keep the one they started with) */
static void
configure_all(struct spoold_rt *rt)
{
	sessions_configure(rt);
	scheduler_configure(rt);
	control_configure(rt);
	auth_configure(rt);
	queue_set_drain_threshold(spoold.queue, rt->conf->drain_threshold);
}

/* keep_string - a restart-only string directive: the running value stays
 * in cf; 1 when the file said something else */
static int
keep_string(char **field, const char *running)
{
	int changed = (*field == NULL) != (running == NULL) ||
	    (running != NULL && strcmp(*field, running) != 0);

	if (changed) {
		free(*field);
		*field = running != NULL ? strdup(running) : NULL;
		if (running != NULL && *field == NULL)
			fatalx("out of memory");
	}
	return changed;
}

/* keep_listens - the running listen and metrics-listen lines stay in cf */
static int
keep_listens(struct spoold_conf *cf, const struct spoold_conf *run)
{
	if (listeners_same(run, cf))
		return 0;
	for (size_t i = 0; i < cf->n_listens; i++) {
		free(cf->listens[i].text);
		free(cf->listens[i].proxy_from);
	}
	free(cf->listens);
	if ((cf->listens = calloc(run->n_listens ? run->n_listens : 1, sizeof(*cf->listens))) == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < run->n_listens; i++) {
		const struct listen_addr *r = &run->listens[i];

		cf->listens[i] = *r;
		if ((cf->listens[i].text = strdup(r->text)) == NULL)
			fatalx("out of memory");
		if (r->n_proxy_from > 0) {
			if ((cf->listens[i].proxy_from = calloc(r->n_proxy_from,
			    sizeof(*r->proxy_from))) == NULL)
				fatalx("out of memory");
			memcpy(cf->listens[i].proxy_from, r->proxy_from,
			    r->n_proxy_from * sizeof(*r->proxy_from));
		}
	}
	cf->n_listens = run->n_listens;
	return 1;
}

/* keep_running_values - what takes effect only at a restart (the
 * listeners, the spool, the resolver, SASL's service and threads, the user, the
 * pidfile) keeps its running value in the new configuration, so a big
 * body is never spilled into a datadir spoold does not use; each such
 * change is said at every reload until a restart, and reverting one is
 * not a change */
static void
keep_running_values(struct spoold_conf *cf, const struct spoold_conf *run)
{
	char changed[256] = "";

#define KEPT(name) \
	snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed), "%s%s", \
	    changed[0] ? ", " : "", name)
	if (keep_listens(cf, run))
		KEPT("listen/metrics-listen");
	if (keep_string(&cf->datadir, run->datadir))
		KEPT("datadir");
	if (cf->max_spool_size != run->max_spool_size) {
		cf->max_spool_size = run->max_spool_size;
		KEPT("max-spool-size");
	}
	if (keep_string(&cf->resolver, run->resolver))
		KEPT("resolver");
	if (keep_string(&cf->sasl_service, run->sasl_service))
		KEPT("sasl-service");
	if (cf->sasl_workers != run->sasl_workers) {
		cf->sasl_workers = run->sasl_workers;
		KEPT("sasl-workers");
	}
	if (keep_string(&cf->user, run->user))
		KEPT("user");
	if (keep_string(&cf->pidfile, run->pidfile))
		KEPT("pidfile");
#undef KEPT
	if (changed[0] != '\0')
		log_warnx("reload: %s changed in %s; the running value%s stay%s until spoold "
		    "restarts", changed, cf->path, strchr(changed, ',') ? "s" : "",
		    strchr(changed, ',') ? "" : "s");
}

/* apply_config - a parsed configuration (reload.c): checked against what
 * runs, then swapped in at once for new sessions; NULL: it had errors */
static int
apply_config(struct spoold_conf *cf)
{
	struct spoold_rt *rt;
	char err[1024];

	if (spoold.stopping) {	/* the modules have let go of their configuration */
		spoold_conf_free(cf);
		return -1;
	}
	if (cf == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		return -1;
	}
	keep_running_values(cf, spoold.rt->conf);
	if ((rt = rt_new(cf, spoold.rt, err, sizeof(err))) == NULL) {
		reload_free_conf(cf);
		log_warnx("%s", err);
		log_warnx("reload failed: keeping the running configuration");
		return -1;
	}
	rt_unref(spoold.rt);
	spoold.rt = rt;
	configure_all(rt);
	pgsql_update(rt->conf);
	return 0;
}

/* reload - SIGHUP: the file is parsed off the loop (reload.c) */
static void
reload(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (spoold.stopping) {
		log_info("SIGHUP ignored: shutting down");
		return;
	}
	reload_request();
}

static void
shutdown_finish(void)
{
	unsigned long long messages, batches;

	metrics_stop();		/* it reads through the queue */
	pgsql_stop();		/* no lookup is waited for any more */
	despool_close();	/* so does the delivery runs' log thread */
	queue_close(spoold.queue, &messages, &batches);
	spoold.queue = NULL;
	log_info("stopped: %llu messages stored in %llu commits since start", messages, batches);
	ev_break(spoold.loop, EVBREAK_ALL);
}

/* shutdown_check - exit once every stored message has had its reply */
static void
shutdown_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	if ((sessions_count() == 0 && queue_pending(spoold.queue) == 0) ||
	    ev_now(loop) - shutdown_started > SHUTDOWN_GRACE) {
		ev_timer_stop(loop, w);
		shutdown_finish();
	}
}

/* open_resolver - the DNS resolver of delivery runs; without one, routes by
 * name wait (and say why) while address routes still work */
static void
open_resolver(const struct spoold_conf *cf)
{
	char err[256];

	if ((spoold.dns = dns_new(spoold.loop, cf->resolver, err, sizeof(err))) == NULL)
		log_warnx("no DNS resolver%s%s: %s; deliver-to mx and host names will not be "
		    "delivered", cf->resolver ? " for " : "", cf->resolver ? cf->resolver : "", err);
}

/* open_auth - Cyrus SASL for the ODMR listener, when there is one */
static void
open_auth(const struct spoold_conf *cf)
{
	char err[256];

	for (size_t i = 0; i < cf->n_listens; i++)
		if (cf->listens[i].kind == LISTEN_ODMR) {
			/* before the init: plugins (sql, ldapdb) read their
			 * options then, through the option callback */
			auth_configure(spoold.rt);
			if (auth_init(spoold.loop, cf->sasl_service, (unsigned)cf->sasl_workers, err,
			    sizeof(err)) == -1)
				log_warnx("SASL cannot start (%s): AUTH on the ODMR listener will "
				    "fail with 454", err);
			return;
		}
}

static void
spoold_stop(int status, const char *why)
{
	if (status > spoold.exit_status)
		spoold.exit_status = status;
	if (spoold.stopping)
		return;
	log_info("shutting down (%s)", why);
	spoold.stopping = 1;
	reload_stop();		/* a parse under way is dropped */
	listeners_stop();
	control_close();
	scheduler_stop();
	despool_stop_all();	/* undelivered mail simply stays queued */
	verify_stop_all();	/* a recipient waiting for a probe gets 450 */
	sessions_shutdown();	/* 421, after the answer to a message being stored */
	pgsql_lookups_stop();	/* a recipient waiting for PostgreSQL gets 451 */
	shutdown_started = ev_now(spoold.loop);
	ev_timer_init(&shutdown_timer, shutdown_check, 0.0, 0.05);
	ev_timer_start(spoold.loop, &shutdown_timer);
}

/* storage_failed - the queue's hook for a commit with an I/O error */
static void
storage_failed(void *arg, const char *what)
{
	/* After a failed fsync Linux may have marked the unwritten pages
	 * clean ("fsyncgate"): carrying on could acknowledge mail on top of
	 * storage that lies.  Stop, and let the supervisor start a spoold
	 * that reopens the spool from its last good commit. */
	log_crit("spool: %s: refusing mail and exiting with status %d; check the disk, then "
	    "restart spoold (systemd does, with Restart=on-failure)", what, EX_TEMPFAIL);
	spoold_stop(EX_TEMPFAIL, "storage I/O error");
}

/* mail_queued - the queue's hook: a notification was queued for domain */
static void
mail_queued(void *arg, const char *domain)
{
	scheduler_queued(domain);
}

/* accept_connection - the listeners' hook: each kind runs its service */
static void
accept_connection(enum listen_kind kind, size_t index, int fd, const struct sockaddr *peer)
{
	if (kind == LISTEN_METRICS)
		metrics_http_accept(fd, peer);
	else
		sessions_accept(kind == LISTEN_ODMR ? &odmr_service : &inbound_service, index, fd,
		    peer);
}

/* terminate - SIGTERM: stop accepting, answer what is being stored, exit */
static void
terminate(struct ev_loop *loop, ev_signal *w, int revents)
{
	char why[32];

	snprintf(why, sizeof(why), "signal %d", w->signum);
	spoold_stop(0, why);
}

/* drop_privileges - Postfix's order: getpwnam, setgroups, setgid, setuid */
static void
drop_privileges(const char *user, const char *datadir)
{
	struct passwd *pw;

	if (getuid() != 0) {
		if (user != NULL)
			log_info("not root: \"user %s\" ignored", user);
		return;
	}
	if (user == NULL) {
		log_warnx("running as root: set \"user\" in the configuration to drop privileges");
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s: no such user", user);
	/* The spool must belong to the user spoold will run as. */
	if (chown(datadir, pw->pw_uid, pw->pw_gid) == -1)
		fatal("chown %s", datadir);
	if (setgroups(1, &pw->pw_gid) == -1)
		fatal("setgroups");
	if (setgid(pw->pw_gid) == -1)
		fatal("setgid");
	if (setuid(pw->pw_uid) == -1)
		fatal("setuid");
	if (setuid(0) != -1)
		fatalx("privileges could not be dropped");
	log_info("running as user %s", user);
}

static void
open_queue(const struct spoold_conf *cf)
{
	static const struct queue_hooks hooks = {
		.storage_failed = storage_failed, .queued = mail_queued,
	};
	char err[512];

	if (spool_open(&spoold.spool, cf->datadir, cf->max_spool_size, 0, err, sizeof(err)) != SPOOL_OK)
		fatalx("%s", err);
	if ((spoold.queue = queue_open(spoold.loop, spoold.spool, &hooks, err, sizeof(err))) == NULL)
		fatalx("%s", err);
}

/* start_modules - in dependency order: each is handed what it uses */
static void
start_modules(const struct spoold_conf *cf)
{
	metrics_init();
	/* without the thread, /metrics and spoolctl stats get no counters */
	(void)metrics_start(spoold.loop, spoold.queue);
	bounce_init(spoold.queue);
	despool_init(spoold.loop, spoold.queue, spoold.dns, listeners_own);
	callout_init(spoold.loop, spoold.dns, listeners_own);
	verify_init(spoold.loop, spoold.queue);
	inbound_init(spoold.loop, spoold.queue);
	odmr_init(spoold.loop);
	sessions_init(spoold.loop);
	scheduler_start(spoold.loop, spoold.queue, spoold.rt);
	/* without the control socket only spoolctl flush and bounce are missing */
	(void)control_open(spoold.loop, spoold.queue, spoold.rt, cf->datadir);
	configure_all(spoold.rt);
	listeners_start(spoold.loop, accept_connection);
}

/* pidfile_open - the pidfile, opened and locked before the privileges go
 * (its directory is root's); -1 when none is configured.  The lock stays
 * with the daemon through the fork, so a second spoold on the same file
 * is refused while the first runs. */
static int
pidfile_open(const char *path)
{
	struct stat st;
	int fd;

	if (path == NULL)
		return -1;
	/* never through a link: its directory may be writable by the user
	 * spoold runs as, and this is root opening it */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
		fatal("pidfile %s", path);
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		fatalx("pidfile %s is not a regular file", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		fatalx("pidfile %s is locked: another spoold runs", path);
	return fd;
}

/* pidfile_write - the daemon's pid, once it is the daemon */
static void
pidfile_write(int fd, const char *path)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());

	if (fd == -1)
		return;
	if (ftruncate(fd, 0) == -1 || pwrite(fd, line, (size_t)n, 0) != n)
		fatal("pidfile %s", path);
}

/* pidfile_remove - at a clean stop; an unprivileged spoold may not unlink
 * it from root's directory: then it is emptied */
static void
pidfile_remove(int fd, const char *path)
{
	if (fd == -1)
		return;
	if (unlink(path) == -1 && ftruncate(fd, 0) == -1)
		log_warn("pidfile %s", path);
	close(fd);
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: spoold -c FILE [-f | -F] [-n] [-v] [-V] [--listen-file FILE]\n"
	    "  -c FILE   configuration (default " SYSCONFDIR "/spoold/spoold.conf)\n"
	    "  -f        foreground, log to stderr (in the form of a syslog file)\n"
	    "  -F        foreground, log to syslog, facility mail (for systemd)\n"
	    "  -n        check the configuration and exit\n"
	    "  -v        more logging (twice: state traces)\n"
	    "  -V        print the version\n"
	    "  --listen-file FILE  write the addresses bound, one a line\n");
	exit(status);
}

static int
check_only(struct spoold_conf *cf)
{
	struct spoold_rt *rt;
	char err[1024];

	if (cf == NULL)
		return 1;
	/* what the start would find only after binding the ports */
	if (cf->user != NULL && getpwnam(cf->user) == NULL) {
		fprintf(stderr, "%s:%d: user %s: no such user\n", cf->path, cf->user_line, cf->user);
		spoold_conf_free(cf);
		return 1;
	}
	if ((rt = rt_new(cf, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		spoold_conf_free(cf);
		return 1;
	}
	rt_unref(rt);
	printf("configuration OK\n");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen-file", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SYSCONFDIR "/spoold/spoold.conf";
	static char abs_path[PATH_MAX];
	char *pidpath = NULL;
	int pidfd = -1;
	int foreground = 0, to_syslog = 0, check = 0, verbose = 0, ch;
	struct spoold_conf *cf;
	char err[1024], *pgsql_copy;

	while ((ch = getopt_long(argc, argv, "c:fFnvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 'F': foreground = to_syslog = 1; break;
		case 'n': check = 1; break;
		case 'v': verbose++; break;
		case 'V': printf("spoold %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(0); break;
		case 'L': spoold.listen_file = optarg; break;
		default: usage(EX_USAGE);
		}
	}
	if (optind != argc)
		usage(EX_USAGE);
	/* daemon() goes to "/": a relative -c would make every SIGHUP fail */
	if (path[0] != '/' && realpath(path, abs_path) != NULL)
		path = abs_path;
	log_init("spoold", (foreground && !to_syslog) || check, verbose);
	conf_warning_hook = check ? print_warning : log_warning;
	cf = load_config(path);
	pgsql_copy = add_pgsql_copy(cf);
	if (check) {
		free(pgsql_copy);
		return check_only(cf);
	}
	if (cf == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if ((spoold.rt = rt_new(cf, NULL, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (mkdir(cf->datadir, 0700) == -1 && errno != EEXIST)
		fatal("datadir %s", cf->datadir);
	if (listeners_open(cf, spoold.listen_file) == -1)
		fatalx("cannot listen; exiting");
	pidfd = pidfile_open(cf->pidfile);
	pidpath = cf->pidfile != NULL ? strdup(cf->pidfile) : NULL;
	drop_privileges(cf->user, cf->datadir);
	/* Before the loop and the spool exist: neither survives a fork. */
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	pidfile_write(pidfd, pidpath);
	spoold.loop = EV_DEFAULT;
	open_queue(cf);

	rt_set_conf_free(reload_free_conf);
	reload_init(spoold.loop, spoold.rt->conf->path, apply_config);
	ev_signal_init(&sig_hup, reload, SIGHUP);
	ev_signal_init(&sig_term, terminate, SIGTERM);
	ev_signal_init(&sig_int, terminate, SIGINT);
	ev_signal_start(spoold.loop, &sig_hup);
	ev_signal_start(spoold.loop, &sig_term);
	ev_signal_start(spoold.loop, &sig_int);
	open_resolver(cf);
	open_auth(cf);
	start_modules(cf);
	/* after the privilege drop: the database sees spoold's user */
	pgsql_start(spoold.loop, cf, pgsql_copy, pgsql_changed);
	log_info("spoold %s ready: %zu domain%s, spool %s, next id %016llx", PACKAGE_VERSION,
	    cf->n_domains, cf->n_domains == 1 ? "" : "s", cf->datadir,
	    (unsigned long long)queue_peek_id(spoold.queue));
	ev_run(spoold.loop, 0);
	if (spoold.dns != NULL)
		dns_free(spoold.dns);
	auth_done();
	reload_stop();
	pgsql_stop();
	metrics_stop();		/* (done already, unless the loop ended otherwise) */
	despool_close();
	spool_close(spoold.spool);
	rt_unref(spoold.rt);
	pidfile_remove(pidfd, pidpath);
	free(pidpath);
	return spoold.exit_status;
}
