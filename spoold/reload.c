/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * reload.c - the configuration parsed off the loop; see reload.h.
 *
 *   IDLE --SIGHUP--> PARSING --parsed--> (apply on the loop) --> IDLE
 *                      |  SIGHUP meanwhile: again = 1, and once the
 *                      |  result is applied, PARSING once more
 */
#include "config.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "pgsql.h"
#include "reload.h"

/* Below this many domains freeing is quicker than starting a thread. */
#define FREE_OFF_LOOP_DOMAINS	1000

static struct {
	struct ev_loop		*loop;
	char			*path;
	reload_apply		*apply;
	ev_async		 parsed;
	int			 parsing;	/* loop: a thread is at work */
	int			 again;		/* loop: a SIGHUP came meanwhile */
	int			 stopped;	/* frees wait from here on (exit) */
	const char		*why;		/* for the log: "" (SIGHUP) or why else */
	pthread_t		 thread;
	/* thread -> loop, under lock */
	pthread_mutex_t		 lock;
	int			 done;
	struct spoold_conf	*result;
	double			 parse_time;
} rl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* add_pgsql_rows - the domain rows PostgreSQL gave last, into cf */
static void
add_pgsql_rows(struct spoold_conf *cf, struct conf_errors *errs)
{
	char name[4200], *text;
	size_t before, left_out;

	if (cf == NULL || cf->domains_map == NULL || (text = pgsql_domains_text(&cf->pgsql_rows_gen)) == NULL)
		return;
	snprintf(name, sizeof(name), "pgsql:%s", cf->domains_map->path);
	before = cf->n_domains;
	left_out = spoold_conf_add_domains(cf, name, text, errs);
	free(text);
	log_info("%s: %zu domain%s in force, %zu left out", name, cf->n_domains - before,
	    cf->n_domains - before == 1 ? "" : "s", left_out);
	metrics_add(MC_PGSQL_ROWS_REJECTED, left_out);
	metrics_set(MG_PGSQL_DOMAINS, (int64_t)(cf->n_domains - before));
}

static void *
reload_parse(void *arg)
{
	struct conf_errors errs = { 0 };
	struct spoold_conf *cf;
	ev_tstamp t0 = ev_time();

	(void)arg;
	cf = spoold_conf_load(rl.path, &errs);
	add_pgsql_rows(cf, &errs);
	for (size_t i = 0; i < errs.count; i++)
		log_warnx("%s", errs.msgs[i]);
	conf_errors_free(&errs);
	pthread_mutex_lock(&rl.lock);
	rl.result = cf;
	rl.parse_time = ev_time() - t0;
	rl.done = 1;
	pthread_mutex_unlock(&rl.lock);
	ev_async_send(rl.loop, &rl.parsed);
	return NULL;
}

static void
reload_start(void)
{
	log_info("reloading %s%s", rl.path, rl.why);
	rl.why = "";
	rl.again = 0;
	if (pthread_create(&rl.thread, NULL, reload_parse, NULL) != 0) {
		log_warnx("reload failed: no thread to parse the configuration on; keeping the "
		    "running configuration");
		return;
	}
	rl.parsing = 1;
}

static void
reload_parsed(struct ev_loop *loop, ev_async *w, int revents)
{
	struct spoold_conf *cf;
	double parse_time;
	ev_tstamp t0;
	int done;

	(void)loop, (void)w, (void)revents;
	pthread_mutex_lock(&rl.lock);
	done = rl.done;
	cf = rl.result;
	parse_time = rl.parse_time;
	rl.done = 0;
	rl.result = NULL;
	pthread_mutex_unlock(&rl.lock);
	if (!done)
		return;
	pthread_join(rl.thread, NULL);	/* it has finished: this does not wait */
	rl.parsing = 0;
	t0 = ev_time();
	if (rl.apply(cf) == 0)
		log_info("reloaded: %zu domain%s (parsed in %.3f s off the loop, swapped in %.1f ms)",
		    cf->n_domains, cf->n_domains == 1 ? "" : "s", parse_time, (ev_time() - t0) * 1e3);
	if (rl.again)
		reload_start();
}

void
reload_init(struct ev_loop *loop, const char *path, reload_apply *apply)
{
	rl.loop = loop;
	/* the configuration that holds path goes at the next reload */
	if ((rl.path = strdup(path)) == NULL)
		fatalx("out of memory");
	rl.apply = apply;
	rl.why = "";
	ev_async_init(&rl.parsed, reload_parsed);
	ev_async_start(loop, &rl.parsed);
	ev_unref(loop);		/* the watcher alone does not keep the loop running */
}

void
reload_request_for(const char *why)
{
	rl.why = why;
	reload_request();
}

void
reload_request(void)
{
	if (rl.parsing) {
		rl.again = 1;
		return;
	}
	reload_start();
}

void
reload_stop(void)
{
	/* a detached free still running at exit would look like a leak */
	rl.stopped = 1;
	if (rl.parsing) {
		pthread_join(rl.thread, NULL);
		rl.parsing = 0;
		spoold_conf_free(rl.result);
		rl.result = NULL;
		rl.done = 0;
	}
	if (rl.loop != NULL && ev_is_active(&rl.parsed)) {
		ev_ref(rl.loop);
		ev_async_stop(rl.loop, &rl.parsed);
	}
}

static void *
free_conf(void *arg)
{
	spoold_conf_free(arg);
	/* a configuration of 100,000 domains is tens of MB freed at once on
	 * a thread of its own: hand it back (glibc keeps a thread's freed
	 * memory in its arena otherwise, and each reload grows the RSS) */
	malloc_trim(0);
	return NULL;
}

void
reload_free_conf(struct spoold_conf *cf)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc = -1;

	if (cf == NULL)
		return;
	if (!rl.stopped && cf->n_domains >= FREE_OFF_LOOP_DOMAINS && pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, free_conf, cf);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0)
		spoold_conf_free(cf);
}
