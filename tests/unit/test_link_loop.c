/*
 * The link drivers' run loop handing the device's received frames to an application thread
 * (link_loop_poll, ustack_tap_poll and ustack_xdp_poll's engine; src/link/loop.c's essay):
 * Linux's busy polling with IRQ suspension, where the application that polls keeps the
 * interrupt (here the run loop) off the queue while it comes back in time.
 *
 * The device is an eventfd: a write is that many frames arriving, a burst (fake_rx) reads
 * them all and counts them to the run loop's thread or to the application's.  Each check is a
 * fact that a wrong hand-over breaks at once — frames taken by the loop while the application
 * holds the device, frames never taken once it has gone — so the waits are bounded (five
 * seconds) and never the thing measured; what must not happen is watched for 50 ms, in which
 * a loop that ignored the hold would have taken the frames many times over.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "link/loop.h"
#include <ustack/link.h>
#include <ustack/stack.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct fake {
	struct ustack *st;
	struct link_loop l;
	struct link_loop_ops ops;
	int dev;
	pthread_t loop_thread;
	atomic_uint loop_frames, app_frames;
	atomic_uint turns; /* the loop's turns (its due callback) */
	atomic_int in_rx, block_rx;
};

static struct fake F;
static __thread bool on_loop_thread;

/* A burst: every frame waiting, counted to whoever took it.  With block_rx set it waits
 * inside (bounded) until the test lets it go, so that another thread's poll finds it busy. */
static void fake_rx(void *arg)
{
	struct fake *f = arg;
	atomic_store(&f->in_rx, 1);
	for (int i = 0; i < 5000 && atomic_load(&f->block_rx); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	uint64_t v;
	if (read(f->dev, &v, sizeof(v)) == (ssize_t)sizeof(v))
		atomic_fetch_add(on_loop_thread ? &f->loop_frames : &f->app_frames, (unsigned)v);
	atomic_store(&f->in_rx, 0);
}

static void fake_due(void *arg, uint64_t now)
{
	(void)now;
	atomic_fetch_add(&((struct fake *)arg)->turns, 1);
}

static void *loop_main(void *arg)
{
	struct fake *f = arg;
	on_loop_thread = true;
	link_loop_run(&f->l, &f->ops, f, UINT64_MAX, false);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	struct ustack_config cfg = { .clock = ustack_clock_monotonic() };
	F.st = ustack_create(&cfg);
	F.dev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!F.st || F.dev < 0 || link_loop_init(&F.l) < 0)
		return -1;
	F.l.st = F.st;
	ustack_set_wakeup(F.st, link_loop_kick, &F.l);
	F.ops = (struct link_loop_ops){ .fd = F.dev, .rx = fake_rx, .due = fake_due };
	atomic_store(&F.turns, 0);
	atomic_store(&F.loop_frames, 0);
	atomic_store(&F.app_frames, 0);
	atomic_store(&F.in_rx, 0);
	atomic_store(&F.block_rx, 0);
	return 0;
}

static void start(void)
{
	assert_int_equal(pthread_create(&F.loop_thread, NULL, loop_main, &F), 0);
}

static int teardown(void **state)
{
	(void)state;
	atomic_store(&F.block_rx, 0);
	link_loop_stop(&F.l);
	pthread_join(F.loop_thread, NULL);
	link_loop_fini(&F.l);
	close(F.dev);
	ustack_destroy(F.st);
	return 0;
}

static void frames(unsigned n)
{
	uint64_t v = n;
	assert_int_equal(write(F.dev, &v, sizeof(v)), (ssize_t)sizeof(v));
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 }, NULL);
}

/* Until *c reaches want, five seconds at most: its value then. */
static unsigned wait_for(atomic_uint *c, unsigned want)
{
	for (int i = 0; i < 5000 && atomic_load(c) < want; i++)
		sleep_ms(1);
	return atomic_load(c);
}

static bool dev_has_frames(void)
{
	struct pollfd p = { .fd = F.dev, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/* Nobody polls: the run loop takes what arrives, as it always has. */
static void test_loop_takes_frames(void **state)
{
	(void)state;
	start();
	frames(2);
	assert_int_equal(wait_for(&F.loop_frames, 2), 2);
	assert_int_equal(atomic_load(&F.app_frames), 0);
}

/* An application thread asleep with the device in its wait holds it: the loop leaves its
 * frames alone, and the thread takes them on waking.  Then, the thread gone about its
 * business for longer than the hold, the loop takes the device back. */
static void test_sleeping_application_holds_device(void **state)
{
	(void)state;
	F.l.stall_us = 60000000; /* no stall taken for one here */
	start();
	sleep_ms(5); /* the loop asleep, the device in its wait */
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_SLEEP), 0);
	frames(3);
	sleep_ms(50);
	assert_int_equal(atomic_load(&F.loop_frames), 0);
	assert_true(dev_has_frames());
	/* awake, the thread takes them (the hold long enough that a busy machine pausing it
	 * between its hold and its burst cannot let the loop in first) */
	atomic_store(&F.l.hold_us, 60000000);
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_AWAKE), 1);
	assert_int_equal(atomic_load(&F.app_frames), 3);
	/* then polls once more and does not come back */
	atomic_store(&F.l.hold_us, USTACK_POLL_HOLD_US);
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, 0), 1);
	link_loop_kick(&F.l); /* the loop may be asleep for the long hold */
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
	assert_int_equal(atomic_load(&F.app_frames), 3);
}

/* Held, the device is out of the loop's wait: its frames, which the loop leaves alone, do not
 * wake it turn after turn (a level-triggered descriptor left in the wait would spin it). */
static void test_held_device_out_of_loop_wait(void **state)
{
	(void)state;
	F.l.stall_us = 60000000;
	start();
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_SLEEP), 0);
	frames(1);
	unsigned t0 = atomic_load(&F.turns);
	sleep_ms(50);
	unsigned turns = atomic_load(&F.turns) - t0;
	assert_true(turns < 500); /* a look a hold at most: about 50, fewer once idle */
	assert_int_equal(atomic_load(&F.loop_frames), 0);
	link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_AWAKE);
}

/* A thread about to wait elsewhere ends its hold at once (USTACK_POLL_RELEASE): the loop,
 * which had the device out of its wait, takes the next frame without waiting the hold out. */
static void test_release_returns_device(void **state)
{
	(void)state;
	F.l.stall_us = 60000000;
	atomic_store(&F.l.hold_us, 60000000);
	start();
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, 0), 1);
	link_loop_kick(&F.l); /* a turn: the loop sees the hold */
	for (int i = 0; i < 5000 && !atomic_load(&F.l.loop_held); i++)
		sleep_ms(1);
	assert_true(atomic_load(&F.l.loop_held));
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_RELEASE), 0);
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
	assert_int_equal(atomic_load(&F.app_frames), 0);
}

static void *cancelled_poller(void *arg)
{
	(void)arg;
	pthread_cancel(pthread_self()); /* pending: acted on at the next cancellation point */
	link_loop_poll(&F.l, &F.ops, &F, 0);
	pthread_testcancel();
	return NULL;
}

/* A thread cancelled while it polls is not cancelled inside the burst (whose read() is a
 * cancellation point): it finishes it, and the receive side is free for the others. */
static void test_cancelled_poller_frees_device(void **state)
{
	(void)state;
	start();
	pthread_t t;
	void *ret = NULL;
	assert_int_equal(pthread_create(&t, NULL, cancelled_poller, NULL), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, PTHREAD_CANCELED);
	assert_int_equal(atomic_load(&F.l.rx_taken), 0);
	/* the poller's hold lapses and the loop takes what comes */
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
}

/* A holder that never wakes (a thread gone from its wait without saying so) cannot stall the
 * device: frames left waiting for stall_us void the hold, until an application polls again. */
static void test_stalled_holder_voided(void **state)
{
	(void)state;
	F.l.stall_us = 2000;
	start();
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_SLEEP), 0);
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 2), 2); /* the loop's again, at once */
	assert_int_equal(atomic_load(&F.app_frames), 0);
	link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_AWAKE);
}

/* A loop that sleeps long beside an idle application (asleep in its wait past idle_after_us)
 * is kicked by the first thread to wake, so that a thread which then stays away is still
 * noticed within a hold, not at the end of the long sleep. */
static void test_idle_loop_kicked_on_wake(void **state)
{
	(void)state;
	F.l.stall_us = 60000000;
	F.l.idle_after_us = 1000;
	F.l.idle_sleep_us = 60000000; /* only the kick can end it within the test's bound */
	start();
	sleep_ms(5); /* the loop asleep, the device in its wait */
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_SLEEP), 0);
	/* a sleeping hold is not announced (that would cost a write per wait): the loop notices
	 * it at its next turn — a frame, a timer; here a kick.  (Found failing under ASan when the
	 * loop had gone to sleep before the hold, so never turned: a race in this test.) */
	unsigned t0 = atomic_load(&F.turns);
	link_loop_kick(&F.l);
	/* that kick consumed (a turn taken) before the idle sleep is looked for: else a loop late
	 * to turn could go idle with it still pending, and it, not AWAKE's, would end the sleep */
	assert_true(wait_for(&F.turns, t0 + 1) > t0);
	for (int i = 0; i < 5000 && !atomic_load(&F.l.loop_idle); i++)
		sleep_ms(1);
	assert_true(atomic_load(&F.l.loop_idle));
	assert_true(link_loop_poll(&F.l, &F.ops, &F, USTACK_POLL_AWAKE) >= 0); /* nothing yet */
	frames(1);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
}

/* One burst at a time: while the loop is inside one, an application's poll takes none. */
static void test_one_consumer_at_a_time(void **state)
{
	(void)state;
	start();
	atomic_store(&F.block_rx, 1);
	frames(1);
	for (int i = 0; i < 5000 && !atomic_load(&F.in_rx); i++)
		sleep_ms(1);
	assert_true(atomic_load(&F.in_rx));
	assert_int_equal(link_loop_poll(&F.l, &F.ops, &F, 0), 0);
	atomic_store(&F.block_rx, 0);
	assert_int_equal(wait_for(&F.loop_frames, 1), 1);
	assert_int_equal(atomic_load(&F.app_frames), 0);
}

/* Before the device is attached to a stack: EINVAL. */
static void test_poll_unattached(void **state)
{
	(void)state;
	struct link_loop l;
	assert_int_equal(link_loop_init(&l), 0);
	errno = 0;
	assert_int_equal(link_loop_poll(&l, &F.ops, &F, 0), -1);
	assert_int_equal(errno, EINVAL);
	link_loop_fini(&l);
	start(); /* for teardown */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loop_takes_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleeping_application_holds_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_device_out_of_loop_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_returns_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_poller_frees_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stalled_holder_voided, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_loop_kicked_on_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_consumer_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_unattached, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
