/* The timer wheel, in virtual time: exact expiry, order, cancel, re-arm, next-expiry bound. */
#include "testwire.h"
#include "core/stack.h"

#include <stdlib.h>

struct rec_timer {
	struct utimer t;
	int id;
	uint64_t want_us;
	uint64_t period_us;
};

static struct { int id; uint64_t at; } fired[20000];
static int nfired;

static void on_fire(struct ustack *st, struct utimer *t)
{
	struct rec_timer *r = (struct rec_timer *)t;
	fired[nfired].id = r->id;
	fired[nfired].at = st->now;
	nfired++;
	if (r->period_us)
		timer_arm(st, t, st->now + r->period_us);
}

static struct ustack *mk(struct ustack_vclock *vc)
{
	ustack_vclock_init(vc, 0);
	struct ustack_config cfg = { .clock = &vc->clock };
	struct ustack *st = ustack_create(&cfg);
	assert_non_null(st);
	nfired = 0;
	return st;
}

static void test_exact_times_across_levels(void **state)
{
	(void)state;
	struct ustack_vclock vc;
	struct ustack *st = mk(&vc);
	/* chosen to straddle every level boundary of the wheel */
	static const uint64_t ms[] = { 5, 1, 256, 255, 257, 1000, 16383, 16384, 65536, 65537,
				       127000, 1048575, 1048576, 3600000, 7200003 };
	enum { N = sizeof(ms) / sizeof(ms[0]) };
	struct rec_timer r[N];
	for (int i = 0; i < N; i++) {
		timer_init(&r[i].t, on_fire);
		r[i].id = i;
		r[i].period_us = 0;
		r[i].want_us = ms[i] * 1000;
		timer_arm(st, &r[i].t, r[i].want_us);
	}
	/* one jump of more than two hours: every timer still sees its own time */
	vc.now_us = 8000000ull * 1000;
	ustack_timers_run(st);
	assert_int_equal(nfired, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(fired[i].at, r[fired[i].id].want_us);
		if (i)
			assert_true(fired[i].at >= fired[i - 1].at);
	}
	assert_int_equal(ustack_timers_next(st), UINT64_MAX);
	ustack_destroy(st);
}

static void test_never_early_sub_ms(void **state)
{
	(void)state;
	struct ustack_vclock vc;
	struct ustack *st = mk(&vc);
	struct rec_timer r = { .id = 1 };
	timer_init(&r.t, on_fire);
	timer_arm(st, &r.t, 1500); /* 1.5 ms rounds up to the 2 ms tick */
	vc.now_us = 1999;
	ustack_timers_run(st);
	assert_int_equal(nfired, 0);
	vc.now_us = 2000;
	ustack_timers_run(st);
	assert_int_equal(nfired, 1);
	assert_int_equal(fired[0].at, 2000);
	ustack_destroy(st);
}

static void test_cancel_and_rearm(void **state)
{
	(void)state;
	struct ustack_vclock vc;
	struct ustack *st = mk(&vc);
	struct rec_timer a = { .id = 1 }, b = { .id = 2 };
	timer_init(&a.t, on_fire);
	timer_init(&b.t, on_fire);
	timer_arm(st, &a.t, 300000);
	timer_arm(st, &b.t, 400000);
	timer_cancel(st, &a.t);
	timer_cancel(st, &a.t); /* cancelling twice is harmless */
	assert_false(timer_pending(&a.t));
	timer_arm(st, &b.t, 100000); /* re-arming moves it */
	vc.now_us = 1000000;
	ustack_timers_run(st);
	assert_int_equal(nfired, 1);
	assert_int_equal(fired[0].id, 2);
	assert_int_equal(fired[0].at, 100000);
	ustack_destroy(st);
}

static void test_periodic_rearm_in_callback(void **state)
{
	(void)state;
	struct ustack_vclock vc;
	struct ustack *st = mk(&vc);
	struct rec_timer p = { .id = 7, .period_us = 1000000 };
	timer_init(&p.t, on_fire);
	timer_arm(st, &p.t, 1000000);
	vc.now_us = 10000000; /* ten periods in one step */
	ustack_timers_run(st);
	assert_int_equal(nfired, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(fired[i].at, (uint64_t)(i + 1) * 1000000);
	timer_cancel(st, &p.t);
	ustack_destroy(st);
}

static void test_random_order_and_next_bound(void **state)
{
	(void)state;
	struct ustack_vclock vc;
	struct ustack *st = mk(&vc);
	enum { N = 5000 };
	static struct rec_timer r[N];
	srand(12345);
	uint64_t min_due = UINT64_MAX;
	for (int i = 0; i < N; i++) {
		timer_init(&r[i].t, on_fire);
		r[i].id = i;
		r[i].period_us = 0;
		r[i].want_us = ((uint64_t)rand() % 20000000u + 1) * 1000;
		timer_arm(st, &r[i].t, r[i].want_us);
		if (r[i].want_us < min_due)
			min_due = r[i].want_us;
	}
	/* Drive purely by the wheel's own next-expiry bound, as a run loop would. */
	int steps = 0;
	while (nfired < N) {
		uint64_t next = ustack_timers_next(st);
		assert_true(next != UINT64_MAX);
		if (nfired == 0)
			assert_true(next <= min_due);
		assert_true(next > vc.now_us);
		vc.now_us = next;
		ustack_timers_run(st);
		assert_true(++steps < 200000);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(fired[i].at, r[fired[i].id].want_us);
		if (i)
			assert_true(fired[i].at >= fired[i - 1].at);
	}
	ustack_destroy(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_times_across_levels),
		cmocka_unit_test(test_never_early_sub_ms),
		cmocka_unit_test(test_cancel_and_rearm),
		cmocka_unit_test(test_periodic_rearm_in_callback),
		cmocka_unit_test(test_random_order_and_next_bound),
	};
	return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
