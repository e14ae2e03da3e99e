#include "core/lock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static long futex(void *word, int op, uint32_t val, const struct timespec *ts,
		  uint32_t val3)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, val3);
}

/* Contended: mark the lock waited for (2) and sleep until it is let go.  The exchange both
 * takes a free lock and marks a held one, so a thread that takes it here leaves 2 behind and
 * its release wakes the next waiter, if any (mutex3's one spare wake). */
void stack_mutex_lock_slow(struct stack_mutex *m)
{
	int err = errno; /* a refused sleep's EAGAIN is not the caller's */
	uint32_t c = atomic_load_explicit(&m->state, memory_order_relaxed);
	if (c != 2)
		c = atomic_exchange_explicit(&m->state, 2, memory_order_acquire);
	while (c != 0) {
		futex(&m->state, FUTEX_WAIT_PRIVATE, 2, NULL, 0);
		c = atomic_exchange_explicit(&m->state, 2, memory_order_acquire);
	}
	errno = err;
}

void stack_mutex_wake(struct stack_mutex *m)
{
	int err = errno;
	futex(&m->state, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
	errno = err;
}

int stack_wait_gen(struct stack_mutex *m, uint32_t *gen, uint32_t seen, const struct timespec *deadline)
{
	int saved = errno;
	stack_mutex_unlock(m);
	/* The word is written only under m, so the kernel's read is the one unlocked access;
	 * FUTEX_WAIT_BITSET takes an absolute deadline on the clock asked for. */
	long r = futex(gen,
		       FUTEX_WAIT_BITSET_PRIVATE | (deadline ? FUTEX_CLOCK_REALTIME : 0), seen,
		       deadline, FUTEX_BITSET_MATCH_ANY);
	int err = r < 0 ? errno : 0;
	/* Taken as any caller takes it: no sleeper was moved onto m (there is no requeue), and a
	 * thread woken from m's own wait marks it 2 again itself. */
	stack_mutex_lock(m);
	errno = saved;
	/* as pthread_cond_timedwait: ETIMEDOUT, EINVAL for a deadline that is not a time; a
	 * refused sleep (EAGAIN: the word moved) or a signal (EINTR) is a wake-up */
	return err == ETIMEDOUT || err == EINVAL ? err : 0;
}

void stack_wake_gen(uint32_t *gen)
{
	futex(gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0);
}
