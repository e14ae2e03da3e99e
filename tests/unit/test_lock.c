/* The stack's futex mutex and generation wait (core/lock.h): exclusion under contention, a
 * wake-up reaching a sleeper, a wait refused when the word already moved, deadlines, errno. */
#include "testwire.h"
#include "core/lock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <time.h>

#define ROUNDS 200000

static struct stack_mutex mu = STACK_MUTEX_INIT;
static uint32_t gen;
static unsigned long counter;

static void *incrementer(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		stack_mutex_lock(&mu);
		/* a read and a write apart, so an overlap of two holders loses an increment */
		unsigned long v = counter;
		__asm__ __volatile__("" ::: "memory");
		counter = v + 1;
		stack_mutex_unlock(&mu);
	}
	return NULL;
}

/* Three threads on two CPUs take the lock 600,000 times between them: every increment lands,
 * which a lock that let two holders in at once (or lost a waiter's wake-up: a hang) would not
 * give.  The contended path is taken: a holder preempted with the lock held is routine here. */
static void test_exclusion(void **state)
{
	(void)state;
	counter = 0;
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, incrementer, NULL), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(counter, 3ul * ROUNDS);
	assert_int_equal(atomic_load(&mu.state), 0);
}

static int taker_done;

static void *taker(void *arg)
{
	(void)arg;
	stack_mutex_lock(&mu);
	taker_done = 1;
	stack_mutex_unlock(&mu);
	return NULL;
}

/* Taken while the process had one thread (a plain store), let go once it has two: the
 * release must see the waiter that came meanwhile.  Runs first, before any thread exists. */
static void test_single_threaded_then_not(void **state)
{
	(void)state;
	assert_true(__libc_single_threaded);
	stack_mutex_lock(&mu);
	assert_int_equal(atomic_load(&mu.state), 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, taker, NULL), 0);
	assert_false(__libc_single_threaded);
	/* bounded: the taker marks the lock waited for (2) before it sleeps */
	for (int i = 0; i < 10000000 && atomic_load(&mu.state) != 2; i++)
		sched_yield();
	assert_int_equal(atomic_load(&mu.state), 2);
	assert_int_equal(taker_done, 0);
	stack_mutex_unlock(&mu); /* sees 2: wakes the taker */
	pthread_join(th, NULL);
	assert_int_equal(taker_done, 1);
	assert_int_equal(atomic_load(&mu.state), 0);
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

struct sleeper {
	pthread_t th;
	pid_t tid;
	int ready, rc, wakes;
};

/* Sleeps until gen moves, as sk_wait_event does; a 10 s deadline turns a lost wake-up into a
 * failure (ETIMEDOUT) rather than a hung test. */
static void *sleeper(void *arg)
{
	struct sleeper *s = arg;
	struct timespec dl;
	deadline_in(&dl, 10000);
	stack_mutex_lock(&mu);
	uint32_t seen = gen;
	s->tid = gettid();
	s->ready = 1;
	int rc = 0;
	while (gen == seen && rc != ETIMEDOUT) {
		rc = stack_wait_gen(&mu, &gen, seen, &dl);
		s->wakes++;
	}
	s->rc = rc;
	stack_mutex_unlock(&mu);
	return NULL;
}

/* The thread's scheduler state from /proc: 'S' while it sleeps in a futex. */
static char task_state(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces */
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Three callers asleep on the word — each seen asleep in the kernel first, so that the wake
 * and not a refused sleep ends their wait — are all woken by one bump and wake, once each. */
static void test_wake_reaches_sleepers(void **state)
{
	(void)state;
	enum { N = 3 };
	struct sleeper s[N];
	memset(s, 0, sizeof(s));
	for (int k = 0; k < N; k++)
		assert_int_equal(pthread_create(&s[k].th, NULL, sleeper, &s[k]), 0);
	for (int k = 0; k < N; k++) {
		/* bounded: each marks itself ready at once.  Once ready is seen under the lock,
		 * the sleeper can block nowhere but on gen, so 'S' means asleep there. */
		int ready = 0;
		for (int i = 0; i < 10000000 && !ready; i++) {
			stack_mutex_lock(&mu);
			ready = s[k].ready;
			stack_mutex_unlock(&mu);
			if (!ready)
				sched_yield();
		}
		assert_int_equal(ready, 1);
		char st = '?';
		for (int i = 0; i < 10000000 && (st = task_state(s[k].tid)) != 'S'; i++)
			sched_yield();
		assert_int_equal(st, 'S');
	}
	stack_mutex_lock(&mu);
	gen++;
	stack_wake_gen(&gen);
	stack_mutex_unlock(&mu);
	for (int k = 0; k < N; k++) {
		pthread_join(s[k].th, NULL);
		assert_int_equal(s[k].rc, 0);     /* not ETIMEDOUT: the wake reached it */
		assert_int_equal(s[k].wakes, 1); /* one wait, ended by the one wake */
	}
}

static void test_moved_word_and_deadlines(void **state)
{
	(void)state;
	struct timespec dl;
	stack_mutex_lock(&mu);

	/* a deadline that is not a time: EINVAL, as pthread_cond_timedwait */
	struct timespec bad = { .tv_sec = 1, .tv_nsec = 1000000000 };
	assert_int_equal(stack_wait_gen(&mu, &gen, gen, &bad), EINVAL);
	assert_false(stack_mutex_trylock(&mu));

	/* the word moved since it was read: no sleep, the lock is held again on return */
	errno = EBADF;
	deadline_in(&dl, 30000);
	assert_int_equal(stack_wait_gen(&mu, &gen, gen + 1, &dl), 0);
	assert_false(stack_mutex_trylock(&mu));
	assert_int_equal(errno, EBADF); /* the caller's errno, not the futex's EAGAIN */

	/* a deadline already past, and one 20 ms ahead with no waker */
	deadline_in(&dl, -5000);
	assert_int_equal(stack_wait_gen(&mu, &gen, gen, &dl), ETIMEDOUT);
	assert_false(stack_mutex_trylock(&mu));
	deadline_in(&dl, 20);
	struct timespec t1;
	assert_int_equal(stack_wait_gen(&mu, &gen, gen, &dl), ETIMEDOUT);
	clock_gettime(CLOCK_REALTIME, &t1);
	assert_true(t1.tv_sec > dl.tv_sec || (t1.tv_sec == dl.tv_sec && t1.tv_nsec >= dl.tv_nsec));
	assert_int_equal(errno, EBADF);
	assert_false(stack_mutex_trylock(&mu));

	stack_mutex_unlock(&mu);
	assert_true(stack_mutex_trylock(&mu));
	stack_mutex_unlock(&mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_threaded_then_not), /* first: before any thread */
		cmocka_unit_test(test_exclusion),
		cmocka_unit_test(test_wake_reaches_sleepers),
		cmocka_unit_test(test_moved_word_and_deadlines),
	};
	return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
