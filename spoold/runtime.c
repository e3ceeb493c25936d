/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * runtime.c - a loaded configuration made ready for use: the TLS
 * credentials it names and the engine settings derived from it; see
 * runtime.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "runtime.h"

#define SPILL_THRESHOLD		(256 * 1024)	/* bodies past this go to a temp file */
/* An ODMR session has this long to authenticate, whatever it sends
 * meanwhile (NOOP must not keep a connection slot for ever). */
#define ODMR_AUTH_DEADLINE	120.0

/* how a configuration no one holds any more is freed */
static void (*conf_free)(struct spoold_conf *) = spoold_conf_free;

static void
tls_unref(struct spoold_tls *tls)
{
	if (tls == NULL || --tls->refs > 0)
		return;
	if (tls->cred_owner != NULL)
		tls_unref(tls->cred_owner);
	else if (tls->cred)
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
	return cf->any_tls_verify;
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
	free(rt->milters);
	conf_free(rt->conf);
	free(rt);
}

void
rt_set_conf_free(void (*fn)(struct spoold_conf *))
{
	conf_free = fn != NULL ? fn : spoold_conf_free;
}

/* tls_load - credentials from tls-cert/tls-key, or old's when it loaded
 * the same files (only tls-priority changed: the key may be root's only,
 * and this runs after the privilege drop); NULL with "file:line: why" */
static struct spoold_tls *
tls_load(const struct spoold_conf *cf, const struct spoold_rt *old, char *err, size_t errlen)
{
	struct spoold_tls *tls = calloc(1, sizeof(*tls));
	const char *errpos = NULL;
	int rc = 0;

	if (tls == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tls->refs = 1;
	if (old != NULL && old->tls != NULL && same_string(old->conf->tls_cert, cf->tls_cert) &&
	    same_string(old->conf->tls_key, cf->tls_key)) {
		tls->cred_owner = old->tls->cred_owner != NULL ? old->tls->cred_owner : old->tls;
		tls->cred_owner->refs++;
		tls->cred = tls->cred_owner->cred;
	} else if ((rc = gnutls_certificate_allocate_credentials(&tls->cred)) < 0 ||
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
struct spoold_rt *
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
	    (rt->tls = tls_load(cf, old, err, errlen)) == NULL) {
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
	rt->smtp.xclient_from = cf->xclient_from;
	rt->smtp.n_xclient_from = cf->n_xclient_from;
	rt->smtp.tls_cred = rt->tls ? rt->tls->cred : NULL;
	rt->smtp.tls_prio = rt->tls ? rt->tls->prio : NULL;
	rt->smtp.spill_dir = cf->datadir;
	rt->smtp.spill_threshold = SPILL_THRESHOLD;
	if (cf->n_milters > 0 && (rt->milters = calloc(cf->n_milters, sizeof(*rt->milters))) == NULL) {
		snprintf(err, errlen, "out of memory");
		rt->conf = NULL;
		rt_unref(rt);
		return NULL;
	}
	for (size_t i = 0; i < cf->n_milters; i++)
		rt->milters[rt->n_milters++] = (struct milter_target){
			.name = cf->milters[i].name, .ss = cf->milters[i].ss, .len = cf->milters[i].len,
			.timeout_connect = (double)cf->milter_timeout_connect,
			.timeout_command = (double)cf->milter_timeout_command,
			.timeout_eom = (double)cf->milter_timeout_eom,
		};
	/* the ODMR port: the same limits, its own commands */
	rt->odmr = rt->smtp;
	rt->odmr.service = SMTP_SERVICE_ODMR;
	/* PLAIN and LOGIN wait for TLS in auth.c whatever require-tls says */
	rt->odmr.auth_requires_tls = cf->require_tls == REQUIRE_TLS_ALL;
	rt->odmr.auth_deadline = ODMR_AUTH_DEADLINE;
	return rt;
}
