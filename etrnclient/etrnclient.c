/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * etrnclient.c - the site's side: a cron job (-1), a daemon, or one ad-hoc
 * run from the command line; see etrnclient(8).
 *
 * Each server block is a job with its own libev timer.  A run takes a lock
 * file per server, so a cron run and the daemon never pull from the same
 * server at once (the second says so and exits 75).  A run is the block's
 * sessions one after the other, ETRN first, then ODMR; each has its own
 * log line and status, and the run's status is the worse of them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <ev.h>

#include "ec_conf.h"
#include "ec_sasl.h"
#include "log.h"
#include "relay.h"
#include "upstream.h"

#define BACKOFF_FIRST	30.0	/* the first retry after a failure */
#define JITTER		0.1	/* +-10% on every interval */

struct job {
	const struct ec_server	*srv;
	ev_timer		 timer;
	struct upstream		*up;
	int			 running;
	int			 lock_fd;
	unsigned		 failures;
	ev_tstamp		 started;	/* the session running */
	int			 ran;		/* at least once (-1 waits for all) */
	enum ec_method		 method;	/* the session running */
	int			 status;	/* the run's: its worst session's */
};

static struct {
	struct ev_loop		*loop;
	struct ec_conf		*cf;
	struct job		*jobs;
	size_t			 njobs;
	int			 oneshot;
	uint64_t		 timeout_override;	/* --timeout, or 0 */
	const char		*lock_dir_override;	/* --lock-dir, or NULL */
	int			 quiet;		/* -1 from cron: syslog; stderr
						 * only for a failed server */
	int			 reload_pending;
	int			 stopping;
	int			 worst;		/* -1: the worst exit status of all runs */
	ev_signal		 sig_hup, sig_usr1, sig_term, sig_int;
} ec;

static void job_start(struct job *);

/* severity - which of two exit statuses a cron job should report */
static int
severity(int status)
{
	switch (status) {
	case EC_EX_OK:		return 0;
	case EC_EX_TEMPFAIL:	return 1;
	case EC_EX_UNAVAILABLE:	return 2;
	default:		return 3;	/* NOPERM, CONFIG */
	}
}

static double
jitter(double secs)
{
	return secs * (1.0 - JITTER + 2.0 * JITTER * ((double)random() / RAND_MAX));
}

/* job_next - when to run again: the interval, or a backoff that doubles
 * from 30 s after each failure, never beyond the interval */
static double
job_next(const struct job *j)
{
	double every = (double)j->srv->every, d = BACKOFF_FIRST;

	if (j->failures == 0)
		return jitter(every);
	for (unsigned i = 1; i < j->failures && d < every; i++)
		d *= 2;
	return jitter(d < every ? d : every);
}

/* job_lock - the server's lock file; -1 when another run holds it, -2
 * when there can be no lock file (a configuration matter) */
static int
job_lock(struct job *j)
{
	char path[1024];

	(void)mkdir(ec.cf->lock_dir, 0755);
	snprintf(path, sizeof(path), "%s/%s.lock", ec.cf->lock_dir, j->srv->name);
	if ((j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("server=%s: cannot create the lock file %s (set lock-dir to a directory "
		    "this user may write)", j->srv->name, path);
		return -2;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		log_warnx("server=%s: another etrnclient is pulling from this server now (%s is "
		    "locked); not running", j->srv->name, path);
		close(j->lock_fd);
		j->lock_fd = -1;
		return -1;
	}
	return 0;
}

static void
job_unlock(struct job *j)
{
	if (j->lock_fd != -1)
		close(j->lock_fd);	/* releases the flock */
	j->lock_fd = -1;
}

static void maybe_exit(void);
static void maybe_reload(void);

/* job_log - the one line per session postmasters grep for */
static void
job_log(const struct job *j, const struct upstream_result *r)
{
	const struct ec_session *ss = &j->srv->sess[j->method];
	const char *method = ec_method_name(j->method);
	char domains[1024] = "";

	for (size_t i = 0; i < ss->n_domains; i++) {
		if (i > 0)
			strncat(domains, ",", sizeof(domains) - strlen(domains) - 1);
		strncat(domains, ss->domains[i], sizeof(domains) - strlen(domains) - 1);
	}
	log_info("server=%s method=%s domains=%s outcome=\"%s\" relayed=%lu not_relayed=%lu "
	    "duration=%.1fs status=%d", j->srv->name, method, domains[0] ? domains : "(all)",
	    r->summary, r->relayed, r->refused, ev_now(ec.loop) - j->started, r->status);
	/* from cron, what went wrong is the one thing worth a mail to root */
	if (ec.quiet && r->status != EC_EX_OK)
		fprintf(stderr, "etrnclient: server=%s method=%s domains=%s outcome=\"%s\" "
		    "relayed=%lu not_relayed=%lu status=%d\n", j->srv->name, method,
		    domains[0] ? domains : "(all)", r->summary, r->relayed, r->refused, r->status);
}

/* job_note - a session's outcome: its line, and the run's status is the
 * worse of the two (a block with ETRN and ODMR fails as its worse half) */
static void
job_note(struct job *j, const struct upstream_result *r)
{
	job_log(j, r);
	if (severity(r->status) > severity(j->status))
		j->status = r->status;
}

/* job_finish - the run is over: the lock goes, the next one is planned */
static void
job_finish(struct job *j)
{
	j->running = 0;
	j->ran = 1;
	job_unlock(j);
	if (severity(j->status) > severity(ec.worst))
		ec.worst = j->status;
	j->failures = j->status == EC_EX_OK ? 0 : j->failures + 1;
	if (!ec.oneshot && !ec.stopping) {
		ev_timer_set(&j->timer, job_next(j), 0.);
		ev_timer_start(ec.loop, &j->timer);
	}
	maybe_reload();
	maybe_exit();
}

static void job_session_done(void *, const struct upstream_result *);

/* job_session - start the first session from method on that the block
 * asks for (ETRN, then ODMR); 0 when none is left or etrnclient stops */
static int
job_session(struct job *j, int from)
{
	struct upstream_result fail = { .status = EC_EX_TEMPFAIL };

	for (int m = from; m < EC_NMETHODS && !ec.stopping; m++) {
		if (!j->srv->sess[m].on)
			continue;
		j->method = (enum ec_method)m;
		j->started = ev_now(ec.loop);
		if ((j->up = upstream_start(ec.loop, ec.cf, j->srv, j->method, job_session_done,
		    j)) != NULL)
			return 1;
		snprintf(fail.summary, sizeof(fail.summary), "cannot start");	/* out of memory */
		job_note(j, &fail);
	}
	return 0;
}

/* job_session_done - one session is over; the other (if any) runs whatever
 * this one's outcome: they ask different things, on different ports */
static void
job_session_done(void *arg, const struct upstream_result *r)
{
	struct job *j = arg;

	j->up = NULL;
	job_note(j, r);
	if (!job_session(j, (int)j->method + 1))
		job_finish(j);
}

static void
job_start(struct job *j)
{
	struct upstream_result fail = { .status = EC_EX_TEMPFAIL };
	int rc;

	if (j->running || ec.stopping)
		return;
	j->started = ev_now(ec.loop);
	j->status = EC_EX_OK;
	if ((rc = job_lock(j)) < 0) {
		if (rc == -2)
			fail.status = EC_EX_CONFIG;
		j->ran = 1;
		snprintf(fail.summary, sizeof(fail.summary), rc == -2 ? "no lock file" :
		    "locked by another run");
		for (int m = 0; m < EC_NMETHODS; m++)	/* a line per session, as a run has */
			if (j->srv->sess[m].on) {
				j->method = (enum ec_method)m;
				job_note(j, &fail);
			}
		if (severity(j->status) > severity(ec.worst))
			ec.worst = j->status;
		if (!ec.oneshot) {	/* try again later, as after a failure */
			ev_timer_set(&j->timer, job_next(j), 0.);
			ev_timer_start(ec.loop, &j->timer);
		}
		maybe_exit();
		return;
	}
	j->running = 1;
	if (!job_session(j, 0))
		job_finish(j);	/* every session failed to start (out of memory) */
}


static void
job_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	job_start(w->data);
}

static int
any_running(void)
{
	for (size_t i = 0; i < ec.njobs; i++)
		if (ec.jobs[i].running)
			return 1;
	return 0;
}

static void
maybe_exit(void)
{
	for (size_t i = 0; ec.oneshot && !ec.stopping && i < ec.njobs; i++)
		if (!ec.jobs[i].ran)
			return;		/* -1: every server gets its run */
	if ((ec.oneshot || ec.stopping) && !any_running())
		ev_break(ec.loop, EVBREAK_ALL);
}

/* jobs_setup - one job per server of ec.cf; the first run of each comes
 * soon (spread over a few seconds) in the daemon, at once with -1 */
static void
jobs_setup(void)
{
	ec.njobs = ec.cf->n_servers;
	if ((ec.jobs = calloc(ec.njobs ? ec.njobs : 1, sizeof(*ec.jobs))) == NULL)
		fatal("calloc");
	for (size_t i = 0; i < ec.njobs; i++) {
		struct job *j = &ec.jobs[i];

		j->srv = &ec.cf->servers[i];
		j->lock_fd = -1;
		ev_timer_init(&j->timer, job_timer, ec.oneshot ? 0. : jitter(2.0), 0.);
		j->timer.data = j;
		ev_timer_start(ec.loop, &j->timer);
	}
}

static void
jobs_clear(void)
{
	for (size_t i = 0; i < ec.njobs; i++)
		ev_timer_stop(ec.loop, &ec.jobs[i].timer);
	free(ec.jobs);
	ec.jobs = NULL;
	ec.njobs = 0;
}

/* override_lock_dir - --lock-dir wins over the file's lock-dir (and the
 * default /run/etrnclient of the one-off forms) */
static void
override_lock_dir(struct ec_conf *cf)
{
	if (ec.lock_dir_override == NULL || cf == NULL)
		return;
	free(cf->lock_dir);
	cf->lock_dir = conf_xstrdup(ec.lock_dir_override);
}

/* maybe_reload - SIGHUP takes effect once no run is using the old file */
static void
maybe_reload(void)
{
	struct conf_errors errs = { 0 };
	struct ec_conf *cf;

	if (!ec.reload_pending || any_running())
		return;
	ec.reload_pending = 0;
	if ((cf = ec_conf_load(ec.cf->path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			log_warnx("%s", errs.msgs[i]);
		conf_errors_free(&errs);
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	jobs_clear();
	if (ec.timeout_override)
		cf->timeout = ec.timeout_override;
	override_lock_dir(cf);
	ec_conf_free(ec.cf);
	ec.cf = cf;
	jobs_setup();
	log_info("reloaded %s: %zu server%s", cf->path, cf->n_servers, cf->n_servers == 1 ? "" : "s");
}

static void
on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("SIGHUP: reloading %s%s", ec.cf->path, any_running() ? " after the runs in progress" : "");
	ec.reload_pending = 1;
	maybe_reload();
}

static void
on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("SIGUSR1: running every server now");
	for (size_t i = 0; i < ec.njobs; i++) {
		ev_timer_stop(loop, &ec.jobs[i].timer);
		job_start(&ec.jobs[i]);
	}
}

static void
on_term(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("stopping (signal %d)", w->signum);
	ec.stopping = 1;
	for (size_t i = 0; i < ec.njobs; i++) {
		ev_timer_stop(loop, &ec.jobs[i].timer);
		if (ec.jobs[i].up != NULL)
			upstream_abort(ec.jobs[i].up);
	}
	maybe_exit();
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: etrnclient -c FILE [-f] [-1] [-n] [-v] [--timeout DURATION] [--lock-dir DIR]\n"
	    "       etrnclient --etrn HOST[:PORT] [--tls may|require|verify] [--ca FILE] DOMAIN...\n"
	    "       etrnclient --odmr HOST[:PORT] --user NAME --password-file FILE\n"
	    "                  --relay HOST:PORT|lmtp:/path [--tls ...] [--ca FILE] [DOMAIN...]\n"
	    "  -c FILE   the configuration (etrnclient.conf(5))\n"
	    "  -f        foreground, log to stderr\n"
	    "  -1        run every server once, then exit (for cron: log to syslog, print\n"
	    "            only the servers that failed; with -f, everything on stderr)\n"
	    "  -n        check the configuration and exit\n"
	    "  -v        more logging\n"
	    "  --timeout DURATION   a command's reply (default 5m; ATRN waits 10m at least)\n"
	    "  --lock-dir DIR       where the per-server locks go (default: the file's\n"
	    "                       lock-dir, or /run/etrnclient)\n"
	    "exit status: 0 done, 75 try later, 69 refused, 77 authentication failed,\n"
	    "             64 usage, 78 configuration\n"
	    "  -V, --version  print the version;  -h, --help  this text\n");
	exit(status);
}

/* adhoc - a server from --etrn/--odmr and the arguments after them */
struct adhoc {
	struct ec_server	 s;
	const char		*target;
	uint64_t		 timeout;
	int			 set;
};

static void
adhoc_target(struct adhoc *a, const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	uint64_t port;

	/* HOST, HOST:PORT, [v6], [v6]:PORT */
	if (colon != NULL && (hostport[0] != '[' || colon[-1] == ']')) {
		if (conf_parse_uint(colon + 1, 65535, &port) == -1 || port == 0) {
			fprintf(stderr, "etrnclient: %s: bad port\n", hostport);
			exit(EC_EX_USAGE);
		}
		a->s.port = (int)port;
		a->s.name = strndup(hostport, (size_t)(colon - hostport));
	} else
		a->s.name = strdup(hostport);
	if (a->s.name == NULL)
		fatal("strdup");
}

static void
adhoc_option(struct adhoc *a, int ch, const char *arg)
{
	switch (ch) {
	case 'E':
	case 'O':
		if (a->set++)
			usage(EC_EX_USAGE);
		a->s.method_set = 1;
		a->s.method = ch == 'E' ? EC_ETRN : EC_ODMR;
		adhoc_target(a, arg);
		break;
	case 'U': a->s.user = strdup(arg); break;
	case 'P': a->s.password_file = strdup(arg); break;
	case 'C': a->s.ca = strdup(arg); break;
	case 'R':
		if (ec_parse_relay(arg, &a->s) == -1) {
			fprintf(stderr, "etrnclient: --relay %s: not HOST:PORT or lmtp:/path\n", arg);
			exit(EC_EX_USAGE);
		}
		break;
	case 'T':
		if (strcmp(arg, "may") == 0)
			a->s.tls = EC_TLS_MAY;
		else if (strcmp(arg, "require") == 0)
			a->s.tls = EC_TLS_REQUIRE;
		else if (strcmp(arg, "verify") == 0)
			a->s.tls = EC_TLS_VERIFY;
		else
			usage(EC_EX_USAGE);
		break;
	case 't':
		if (conf_parse_duration(arg, &a->timeout) == -1 || a->timeout == 0)
			usage(EC_EX_USAGE);
		break;
	}
}

/* load - the configuration from -c, or the ad-hoc server; exits 78 */
static struct ec_conf *
load(const char *path, struct adhoc *a, int argc, char **argv)
{
	struct conf_errors errs = { 0 };
	struct ec_conf *cf;

	if (a->set) {
		for (int i = 0; i < argc; i++) {
			char *d = argv[i];

			a->s.domains = conf_xgrow(a->s.domains, a->s.n_domains + 1, sizeof(char *));
			a->s.domains[a->s.n_domains++] = conf_xstrdup(d);
		}
		a->s.every = EC_DEF_EVERY;
		cf = ec_conf_adhoc(&a->s, &errs);
	} else
		cf = ec_conf_load(path, &errs);
	/* --timeout overrides the file's, with -c too (and after a reload) */
	ec.timeout_override = a->timeout;
	if (cf != NULL && a->timeout)
		cf->timeout = a->timeout;
	override_lock_dir(cf);
	if (cf == NULL) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		conf_errors_free(&errs);
		exit(EC_EX_CONFIG);
	}
	return cf;
}

static void
print_warning(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "etrn", required_argument, NULL, 'E' },
		{ "odmr", required_argument, NULL, 'O' },
		{ "user", required_argument, NULL, 'U' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "relay", required_argument, NULL, 'R' },
		{ "tls", required_argument, NULL, 'T' },
		{ "ca", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "lock-dir", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	struct adhoc a = { 0 };
	int foreground = 0, check = 0, verbose = 0, ch;
	char err[256];

	while ((ch = getopt_long(argc, argv, "c:f1nvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case '1': ec.oneshot = 1; break;
		case 'n': check = 1; break;
		case 'L': ec.lock_dir_override = optarg; break;
		case 'v': verbose++; break;
		case '?': usage(EC_EX_USAGE); break;
		case 'h': usage(0); break;
		case 'V': printf("etrnclient %s\n", PACKAGE_VERSION); return 0;
		default: adhoc_option(&a, ch, optarg); break;
		}
	}
	if ((path == NULL) == (a.set == 0) || (path != NULL && optind != argc))
		usage(EC_EX_USAGE);
	if (a.set)
		ec.oneshot = 1;
	/* what the ad-hoc forms cannot do without is a usage error (64) */
	if (a.set && ((a.s.method == EC_ETRN && optind == argc) || (a.s.method == EC_ODMR &&
	    (a.s.user == NULL || a.s.password_file == NULL || a.s.relay == EC_RELAY_NONE)))) {
		fprintf(stderr, "etrnclient: %s\n", a.s.method == EC_ETRN ? "--etrn needs domains" :
		    "--odmr needs --user, --password-file and --relay");
		usage(EC_EX_USAGE);
	}
	/* -1 with a configuration is cron's: syslog, and on stderr only the
	 * servers that failed; -f (or an ad-hoc run) keeps it all on stderr */
	ec.quiet = ec.oneshot && !a.set && !foreground && !check;
	log_init("etrnclient", foreground || (ec.oneshot && !ec.quiet) || check, verbose);
	conf_warning_hook = print_warning;
	ec.cf = load(path, &a, argc - optind, argv + optind);
	if (check) {
		printf("configuration OK\n");
		ec_conf_free(ec.cf);
		return EC_EX_OK;
	}
	if (ec_sasl_init(err, sizeof(err)) == -1)
		log_warnx("SASL client cannot start (%s): ODMR servers will fail", err);
	signal(SIGPIPE, SIG_IGN);
	if (!foreground && !ec.oneshot && daemon(0, 0) == -1)
		fatal("daemon");
	srandom((unsigned)(time(NULL) ^ getpid()));
	ec.loop = EV_DEFAULT;
	ec.worst = EC_EX_OK;
	ev_signal_init(&ec.sig_hup, on_hup, SIGHUP);
	ev_signal_init(&ec.sig_usr1, on_usr1, SIGUSR1);
	ev_signal_init(&ec.sig_term, on_term, SIGTERM);
	ev_signal_init(&ec.sig_int, on_term, SIGINT);
	ev_signal_start(ec.loop, &ec.sig_hup);
	ev_signal_start(ec.loop, &ec.sig_usr1);
	ev_signal_start(ec.loop, &ec.sig_term);
	ev_signal_start(ec.loop, &ec.sig_int);
	jobs_setup();
	if (!ec.oneshot)
		log_info("etrnclient %s started: %zu server%s", PACKAGE_VERSION, ec.njobs,
		    ec.njobs == 1 ? "" : "s");
	ev_run(ec.loop, 0);
	jobs_clear();
	ec_conf_free(ec.cf);
	return ec.oneshot ? ec.worst : EC_EX_OK;
}
