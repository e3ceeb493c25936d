/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * test_workers.c - unit tests for spoold/workers.c, linked alone: run() on
 * a pool thread, done() once on the loop thread; jobs side by side; the
 * bounded queue; the stop, which answers the jobs no thread took with
 * ran 0.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "workers.h"

#define NJOBS	8

struct job {
	struct work	 work;
	int		 ran_on_worker;	/* run() was not on the loop thread */
	int		 done_on_loop;
	int		 dones, ran;
	unsigned	 sleep_ms;
	int		 gated;		/* run() waits for the gate */
};

static struct ev_loop *loop;
static pthread_t loop_thread;
static int ndone;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;

static void
job_run(struct work *w)
{
	struct job *j = (struct job *)w;

	j->ran_on_worker = !pthread_equal(pthread_self(), loop_thread);
	if (j->gated) {
		pthread_mutex_lock(&gate_lock);
		gate_entered = 1;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
		pthread_mutex_unlock(&gate_lock);
	}
	if (j->sleep_ms > 0)
		usleep(j->sleep_ms * 1000);
}

static void
job_done(struct work *w, int ran)
{
	struct job *j = (struct job *)w;

	j->done_on_loop = pthread_equal(pthread_self(), loop_thread);
	j->dones++;
	j->ran = ran;
	ndone++;
}

static void
job_init(struct job *j, unsigned sleep_ms, int gated)
{
	*j = (struct job){ .sleep_ms = sleep_ms, .gated = gated };
	j->work.run = job_run;
	j->work.done = job_done;
}

static void
tick(struct ev_loop *l, ev_timer *t, int revents)
{
}

/* run_until - the loop until n jobs are done, 10 s at most */
static void
run_until(int n)
{
	ev_timer guard;
	ev_tstamp end = ev_time() + 10;

	ev_timer_init(&guard, tick, 0.05, 0.05);
	ev_timer_start(loop, &guard);
	while (ndone < n && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
}

static void
setup(void)
{
	loop = ev_loop_new(EVFLAG_AUTO);
	loop_thread = pthread_self();
	ndone = 0;
	gate_open = gate_entered = 0;
}

static void
teardown(void)
{
	ev_loop_destroy(loop);
}

static void
wait_gate_entered(void)
{
	pthread_mutex_lock(&gate_lock);
	while (!gate_entered)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void
open_gate(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

START_TEST(test_run_then_done)
{
	struct workers *p = workers_start(loop, 2, 16);
	struct job jobs[NJOBS];

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < NJOBS; i++) {
		job_init(&jobs[i], 5, 0);
		ck_assert_int_eq(workers_submit(p, &jobs[i].work), 0);
	}
	run_until(NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		ck_assert_int_eq(jobs[i].dones, 1);
		ck_assert_int_eq(jobs[i].ran, 1);
		ck_assert(jobs[i].ran_on_worker);
		ck_assert(jobs[i].done_on_loop);
	}
	workers_stop(p);
	for (int i = 0; i < NJOBS; i++)
		ck_assert_int_eq(jobs[i].dones, 1);	/* not again at the stop */
}
END_TEST

/* 8 jobs of 200 ms on 4 threads: about 0.4 s, one after the other 1.6 s */
START_TEST(test_side_by_side)
{
	struct workers *p = workers_start(loop, 4, 16);
	struct job jobs[NJOBS];
	ev_tstamp t0 = ev_time();

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < NJOBS; i++) {
		job_init(&jobs[i], 200, 0);
		ck_assert_int_eq(workers_submit(p, &jobs[i].work), 0);
	}
	run_until(NJOBS);
	ck_assert_int_eq(ndone, NJOBS);
	ck_assert_double_lt(ev_time() - t0, 1.2);
	workers_stop(p);
}
END_TEST

START_TEST(test_queue_bounded)
{
	struct workers *p = workers_start(loop, 1, 2);
	struct job busy, a, b, c;

	ck_assert_ptr_nonnull(p);
	job_init(&busy, 0, 1);
	job_init(&a, 0, 0);
	job_init(&b, 0, 0);
	job_init(&c, 0, 0);
	ck_assert_int_eq(workers_submit(p, &busy.work), 0);
	wait_gate_entered();		/* taken: the queue is empty again */
	ck_assert_int_eq(workers_submit(p, &a.work), 0);
	ck_assert_int_eq(workers_submit(p, &b.work), 0);
	ck_assert_int_eq(workers_submit(p, &c.work), -1);
	open_gate();
	run_until(3);
	ck_assert_int_eq(busy.dones + a.dones + b.dones, 3);
	ck_assert_int_eq(c.dones, 0);
	workers_stop(p);
	ck_assert_int_eq(c.dones, 0);
}
END_TEST

static void *
open_gate_later(void *arg)
{
	usleep(100 * 1000);	/* workers_stop has said stop by then */
	open_gate();
	return NULL;
}

/* the stop lets the running job end, answers it, and answers the queued
 * ones with ran 0 without running them */
START_TEST(test_stop)
{
	struct workers *p = workers_start(loop, 1, 16);
	struct job busy, queued[3];
	pthread_t t;

	ck_assert_ptr_nonnull(p);
	job_init(&busy, 0, 1);
	ck_assert_int_eq(workers_submit(p, &busy.work), 0);
	wait_gate_entered();
	for (int i = 0; i < 3; i++) {
		job_init(&queued[i], 0, 0);
		ck_assert_int_eq(workers_submit(p, &queued[i].work), 0);
	}
	ck_assert_int_eq(pthread_create(&t, NULL, open_gate_later, NULL), 0);
	workers_stop(p);
	pthread_join(t, NULL);
	ck_assert_int_eq(busy.dones, 1);
	ck_assert_int_eq(busy.ran, 1);
	ck_assert(busy.done_on_loop);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(queued[i].dones, 1);
		ck_assert_int_eq(queued[i].ran, 0);
		ck_assert(!queued[i].ran_on_worker);
	}
}
END_TEST

static Suite *
workers_suite(void)
{
	Suite *s = suite_create("workers");
	TCase *tc = tcase_create("pool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_run_then_done);
	tcase_add_test(tc, test_side_by_side);
	tcase_add_test(tc, test_queue_bounded);
	tcase_add_test(tc, test_stop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(workers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
