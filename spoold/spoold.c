/*
 * spoold.c - the spooling SMTP server: start-up, signals, reload, shutdown.
 *
 * SECURITY: started as root, spoold binds its listeners and reads its TLS key,
 * then drops to the configured user (setgroups, setgid, setuid, in that
 * order, each fatal on failure) before it opens the spool or reads a byte
 * from the network.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "committer.h"
#include "auth.h"
#include "despool.h"
#include "odmr.h"
#include "dns.h"
#include "scheduler.h"
#include "log.h"
#include "spool.h"
#include "spoold.h"

#define SPILL_THRESHOLD		(256 * 1024)	/* bodies past this go to a temp file */
#define SHUTDOWN_GRACE		30.0		/* seconds to finish commits on SIGTERM */

struct spoold spoold;

static ev_signal sig_hup, sig_term, sig_int;
static ev_timer shutdown_timer;
static ev_tstamp shutdown_started;

static void
tls_unref(struct spoold_tls *tls)
{
	if (tls == NULL || --tls->refs > 0)
		return;
	if (tls->cred)
		gnutls_certificate_free_credentials(tls->cred);
	if (tls->prio)
		gnutls_priority_deinit(tls->prio);
	free(tls);
}

static int
same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* tls_reusable - old's credentials serve cf too: same files, same priority */
static struct spoold_tls *
tls_reusable(const struct spoold_rt *old, const struct spoold_conf *cf)
{
	if (old == NULL || old->tls == NULL || !same_string(old->conf->tls_cert, cf->tls_cert) ||
	    !same_string(old->conf->tls_key, cf->tls_key) ||
	    !same_string(old->conf->tls_priority, cf->tls_priority))
		return NULL;
	old->tls->refs++;
	return old->tls;
}

static int
needs_verify(const struct spoold_conf *cf)
{
	for (size_t i = 0; i < cf->n_domains; i++)
		if (cf->domains[i].tls == TLS_VERIFY)
			return 1;
	return 0;
}

/* client_reusable - old's client credentials serve cf too */
static struct spoold_tls *
client_reusable(const struct spoold_rt *old, const struct spoold_conf *cf)
{
	if (old == NULL || old->client == NULL || !same_string(old->conf->tls_ca, cf->tls_ca) ||
	    !same_string(old->conf->tls_priority, cf->tls_priority) ||
	    needs_verify(old->conf) != needs_verify(cf))
		return NULL;
	old->client->refs++;
	return old->client;
}

/* client_load - the credentials delivery runs use for STARTTLS.  The CA
 * certificates for "tls verify" are read here, as root before the privilege
 * drop, and only when a domain needs them. */
static struct spoold_tls *
client_load(const struct spoold_conf *cf, int *trusted, char *err, size_t errlen)
{
	struct spoold_tls *tls = calloc(1, sizeof(*tls));
	int rc;

	*trusted = 0;
	if (tls == NULL || (tls->refs = 1,
	    gnutls_certificate_allocate_credentials(&tls->cred)) < 0 ||
	    gnutls_priority_init(&tls->prio, cf->tls_priority, NULL) < 0) {
		snprintf(err, errlen, "cannot set up TLS client credentials");
		tls_unref(tls);
		return NULL;
	}
	if (!needs_verify(cf))
		return tls;
	rc = cf->tls_ca ? gnutls_certificate_set_x509_trust_file(tls->cred, cf->tls_ca,
	    GNUTLS_X509_FMT_PEM) : gnutls_certificate_set_x509_system_trust(tls->cred);
	if (rc <= 0 && cf->tls_ca != NULL) {
		snprintf(err, errlen, "%s: tls-ca %s: %s", cf->path, cf->tls_ca,
		    rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
		tls_unref(tls);
		return NULL;
	}
	if (rc <= 0)
		log_warnx("no system CA certificates (%s): domains with \"tls verify\" cannot be "
		    "delivered; install ca-certificates or set tls-ca",
		    rc == 0 ? "none found" : gnutls_strerror(rc));
	*trusted = rc > 0 ? rc : 0;
	return tls;
}

struct spoold_rt *
rt_ref(struct spoold_rt *rt)
{
	rt->refs++;
	return rt;
}

void
rt_unref(struct spoold_rt *rt)
{
	if (rt == NULL || --rt->refs > 0)
		return;
	tls_unref(rt->tls);
	tls_unref(rt->client);
	spoold_conf_free(rt->conf);
	free(rt);
}

/* tls_load - credentials from tls-cert/tls-key; NULL with "file:line: why" */
static struct spoold_tls *
tls_load(const struct spoold_conf *cf, char *err, size_t errlen)
{
	struct spoold_tls *tls = calloc(1, sizeof(*tls));
	const char *errpos = NULL;
	int rc;

	if (tls == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tls->refs = 1;
	if ((rc = gnutls_certificate_allocate_credentials(&tls->cred)) < 0 ||
	    (rc = gnutls_certificate_set_x509_key_file(tls->cred, cf->tls_cert, cf->tls_key,
	    GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, errlen, "%s:%d: cannot load tls-cert %s with tls-key %s: %s%s", cf->path,
		    cf->tls_cert_line, cf->tls_cert, cf->tls_key, gnutls_strerror(rc),
		    getuid() != 0 && cf->user ? " (after the privilege drop, the files must be "
		    "readable by the user, or keep their names to reuse the loaded key)" : "");
		tls_unref(tls);
		return NULL;
	}
	if ((rc = gnutls_priority_init(&tls->prio, cf->tls_priority, &errpos)) < 0) {
		snprintf(err, errlen, "%s:%d: tls-priority \"%s\" is invalid near \"%s\": %s", cf->path,
		    cf->tls_priority_line, cf->tls_priority, errpos ? errpos : "?", gnutls_strerror(rc));
		tls_unref(tls);
		return NULL;
	}
	return tls;
}

/* rt_new - everything sessions need from a configuration; NULL with the
 * reason in err */
static struct spoold_rt *
rt_new(struct spoold_conf *cf, const struct spoold_rt *old, char *err, size_t errlen)
{
	struct spoold_rt *rt = calloc(1, sizeof(*rt));

	if (rt == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->refs = 1;
	rt->conf = cf;
	if (cf->tls_cert && (rt->tls = tls_reusable(old, cf)) == NULL &&
	    (rt->tls = tls_load(cf, err, errlen)) == NULL) {
		rt->conf = NULL;
		rt_unref(rt);
		return NULL;
	}
	if ((rt->client = client_reusable(old, cf)) != NULL)
		rt->client_trust = old->client_trust;
	else if ((rt->client = client_load(cf, &rt->client_trust, err, errlen)) == NULL) {
		rt->conf = NULL;
		rt_unref(rt);
		return NULL;
	}
	rt->smtp.hostname = cf->hostname;
	rt->smtp.max_message_size = cf->max_message_size;
	rt->smtp.max_recipients = (unsigned)cf->max_recipients;
	rt->smtp.max_errors = DEF_MAX_ERRORS;
	rt->smtp.junk_limit = (unsigned)cf->junk_command_limit;
	rt->smtp.timeout_idle = (double)cf->timeout_idle;
	rt->smtp.timeout_data = (double)cf->timeout_data;
	rt->smtp.timeout_data_total = (double)cf->timeout_data_total;
	rt->smtp.min_data_rate = (double)cf->min_data_rate;
	rt->smtp.min_data_rate_grace = (double)cf->min_data_rate_grace;
	rt->smtp.timeout_tls = (double)cf->timeout_tls;
	rt->smtp.tls_cred = rt->tls ? rt->tls->cred : NULL;
	rt->smtp.tls_prio = rt->tls ? rt->tls->prio : NULL;
	rt->smtp.spill_dir = cf->datadir;
	rt->smtp.spill_threshold = SPILL_THRESHOLD;
	return rt;
}

static void
log_warning(const char *msg)
{
	log_warnx("%s", msg);
}

/* print_warning - for -n: the same form as the errors, on stderr */
static void
print_warning(const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

static struct spoold_conf *
load_config(const char *path, int to_stderr)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf = spoold_conf_load(path, &errs);

	for (size_t i = 0; i < errs.count; i++) {
		if (to_stderr)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		else
			log_warnx("%s", errs.msgs[i]);
	}
	conf_errors_free(&errs);
	return cf;
}

/* reload - SIGHUP: a new configuration for new sessions, or keep the old */
static void
reload(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct spoold_conf *cf;
	struct spoold_rt *rt;
	const struct spoold_conf *old = spoold.rt->conf;
	char err[1024];

	log_info("reloading %s", old->path);
	if ((cf = load_config(old->path, 0)) == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	if (!listeners_same(old, cf))
		log_warnx("reload: listen addresses changed; restart spoold to apply that");
	if (strcmp(old->datadir, cf->datadir) != 0 || old->max_spool_size != cf->max_spool_size)
		log_warnx("reload: datadir and max-spool-size take effect at the next restart");
	if ((old->resolver == NULL) != (cf->resolver == NULL) ||
	    (old->resolver && strcmp(old->resolver, cf->resolver) != 0))
		log_warnx("reload: resolver takes effect at the next restart");
	if (strcmp(old->sasl_service, cf->sasl_service) != 0)
		log_warnx("reload: sasl-service takes effect at the next restart");
	if ((rt = rt_new(cf, spoold.rt, err, sizeof(err))) == NULL) {
		spoold_conf_free(cf);
		log_warnx("%s", err);
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	rt_unref(spoold.rt);
	spoold.rt = rt;
	log_info("reloaded: %zu domain%s", cf->n_domains, cf->n_domains == 1 ? "" : "s");
}

static void
shutdown_finish(void)
{
	unsigned long long messages, batches;

	committer_stop(spoold.committer, &messages, &batches);
	spoold.committer = NULL;
	log_info("stopped: %llu messages stored in %llu commits since start", messages, batches);
	ev_break(spoold.loop, EVBREAK_ALL);
}

/* shutdown_check - exit once every stored message has had its reply */
static void
shutdown_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	if ((spoold.nsessions == 0 && committer_pending(spoold.committer) == 0) ||
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

/* Drain-only: with less free space than drain-threshold in the map or on
 * the disk, new mail gets 452 4.3.1 at MAIL while ETRN, ATRN and delivery
 * runs go on and make room; it ends by itself when space is back.  Looked
 * at every few seconds, not per message. */
#define SPACE_CHECK_INTERVAL	2.0

static ev_timer space_timer;

static void
space_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	uint64_t map_free, disk_free, want = spoold.rt->conf->drain_threshold;
	int low;

	if (spool_free_space(spoold.spool, &map_free, &disk_free) != SPOOL_OK)
		return;
	low = map_free < want || disk_free < want;
	if (low != spoold.drain_only)
		log_warnx("drain-only %s: %llu bytes free in the spool map, %llu on disk, threshold "
		    "%llu%s", low ? "on" : "off", (unsigned long long)map_free,
		    (unsigned long long)disk_free, (unsigned long long)want,
		    low ? ": new mail gets 452 4.3.1; ETRN, ATRN and deliveries go on" : "");
	spoold.drain_only = low;
}

/* open_auth - Cyrus SASL for the ODMR listener, when there is one */
static void
open_auth(const struct spoold_conf *cf)
{
	char err[256];

	for (size_t i = 0; i < cf->n_listens; i++)
		if (cf->listens[i].kind == LISTEN_ODMR) {
			if (auth_init(err, sizeof(err)) == -1)
				log_warnx("SASL cannot start (%s): AUTH on the ODMR listener will "
				    "fail with 454", err);
			return;
		}
}

void
spoold_stop(int status, const char *why)
{
	if (status > spoold.exit_status)
		spoold.exit_status = status;
	if (spoold.stopping)
		return;
	log_info("shutting down (%s)", why);
	spoold.stopping = 1;
	listeners_stop();
	control_close();
	scheduler_stop();
	ev_timer_stop(spoold.loop, &space_timer);
	despool_stop_all();	/* undelivered mail simply stays queued */
	inbound_shutdown_all();
	odmr_shutdown_all();
	shutdown_started = ev_now(spoold.loop);
	ev_timer_init(&shutdown_timer, shutdown_check, 0.0, 0.05);
	ev_timer_start(spoold.loop, &shutdown_timer);
}

void
spoold_storage_failed(const char *what)
{
	/* After a failed fsync Linux may have marked the unwritten pages
	 * clean ("fsyncgate"): carrying on could acknowledge mail on top of
	 * storage that lies.  Stop, and let the supervisor start a spoold
	 * that reopens the spool from its last good commit. */
	log_crit("spool: %s: refusing mail and exiting with status %d; check the disk, then "
	    "restart spoold (systemd does, with Restart=on-failure)", what, EXIT_STORAGE);
	spoold_stop(EXIT_STORAGE, "storage I/O error");
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
open_spool(const struct spoold_conf *cf)
{
	char err[512];

	if ((spoold.spool == NULL) &&
	    spool_open(&spoold.spool, cf->datadir, cf->max_spool_size, 0, err, sizeof(err)) != SPOOL_OK)
		fatalx("%s", err);
	if (spool_next_id(spoold.spool, &spoold.next_id) != SPOOL_OK)
		fatalx("cannot read the spool's message counter");
	if ((spoold.committer = committer_start(spoold.loop, spoold.spool)) == NULL)
		fatalx("cannot start the committer thread");
}

static void
usage(void)
{
	fprintf(stderr, "usage: spoold -c FILE [-f] [-n] [-v] [-V] [--listen-file FILE]\n"
	    "  -c FILE   configuration (default " SYSCONFDIR "/spoold.conf)\n"
	    "  -f        foreground, log to stderr\n"
	    "  -n        check the configuration and exit\n"
	    "  -v        more logging (twice: state traces)\n"
	    "  -V        print the version\n"
	    "  --listen-file FILE  write the addresses bound, one a line\n");
	exit(64);
}

static int
check_only(struct spoold_conf *cf)
{
	struct spoold_rt *rt;
	char err[1024];

	if (cf == NULL)
		return 1;
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
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SYSCONFDIR "/spoold.conf";
	int foreground = 0, check = 0, verbose = 0, ch;
	struct spoold_conf *cf;
	char err[1024];

	while ((ch = getopt_long(argc, argv, "c:fnvV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 'n': check = 1; break;
		case 'v': verbose++; break;
		case 'V': printf("spoold %s\n", PACKAGE_VERSION); return 0;
		case 'L': spoold.listen_file = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("spoold", foreground || check, verbose);
	conf_warning_hook = check ? print_warning : log_warning;
	cf = load_config(path, 1);
	if (check)
		return check_only(cf);
	if (cf == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if ((spoold.rt = rt_new(cf, NULL, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (mkdir(cf->datadir, 0700) == -1 && errno != EEXIST)
		fatal("datadir %s", cf->datadir);
	if (listeners_open(cf, spoold.listen_file) == -1)
		fatalx("cannot listen; exiting");
	drop_privileges(cf->user, cf->datadir);
	/* Before the loop and the spool exist: neither survives a fork. */
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	spoold.loop = EV_DEFAULT;
	open_spool(cf);

	ev_signal_init(&sig_hup, reload, SIGHUP);
	ev_signal_init(&sig_term, terminate, SIGTERM);
	ev_signal_init(&sig_int, terminate, SIGINT);
	ev_signal_start(spoold.loop, &sig_hup);
	ev_signal_start(spoold.loop, &sig_term);
	ev_signal_start(spoold.loop, &sig_int);
	(void)control_open(cf->datadir);	/* without it only spoolctl flush is missing */
	open_resolver(cf);
	open_auth(cf);
	scheduler_start();
	ev_timer_init(&space_timer, space_check, 0., SPACE_CHECK_INTERVAL);
	ev_timer_start(spoold.loop, &space_timer);
	listeners_start();
	log_info("spoold %s ready: %zu domain%s, spool %s, next id %016llx", PACKAGE_VERSION,
	    cf->n_domains, cf->n_domains == 1 ? "" : "s", cf->datadir,
	    (unsigned long long)spoold.next_id);
	ev_run(spoold.loop, 0);
	if (spoold.dns != NULL)
		dns_free(spoold.dns);
	auth_done();
	spool_close(spoold.spool);
	rt_unref(spoold.rt);
	return spoold.exit_status;
}
