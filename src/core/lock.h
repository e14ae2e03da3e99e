/*
 * The stack's lock and its sleepers' wait: a futex mutex and a wait on a generation word.
 *
 * Every public entry point takes the instance's one lock and lets it go (stack_lock,
 * stack_unlock), so a handshake between two stacks on one thread takes and releases it a dozen
 * times, uncontended every time.  glibc's pthread_mutex_lock/unlock pay ~50 instructions a
 * round trip for that (the mutex kind's dispatch, the owner's thread ID, the user count, the
 * lock-elision check); the mutex below pays one compare-and-swap to take and one exchange to
 * release, and enters the kernel only when another thread holds it.  It is the three-state
 * futex mutex of Drepper's "Futexes Are Tricky" (mutex3), the shape of glibc's own low-level
 * lock (lll_lock) under its mutexes: 0 free, 1 held, 2 held and perhaps waited for.
 * A holder that finds 2 when it lets go wakes one waiter; a waiter always sets 2 before it
 * sleeps, so no wake-up is lost, at the price of a spare wake when the last waiter leaves.
 * While the process has one thread (glibc's __libc_single_threaded: cleared by the first
 * pthread_create, itself a full barrier; glibc 2.36 never sets it again, and a release that
 * finds 2 takes the waking path whatever it says) there is no one to exclude, and the lock is a
 * plain load and store, as glibc's mutexes are then: a locked instruction costs a drain of
 * the store buffer, which after a packet's worth of header writes is most of a round trip.
 *
 * The sleepers' wait (stack_wait_gen) is a condition variable reduced to what the stack needs:
 * a blocked caller reads a generation word under the lock, lets the lock go and sleeps on the
 * word while it still holds that value; a waker bumps the word under the lock and wakes all.
 * A bump between the release and the sleep makes the kernel refuse the sleep (the futex
 * compares the word first), so that wake-up is not lost either.  Wake-ups without a bump (a
 * signal) return as spurious ones, which every caller already re-checks for.
 */
#ifndef USTACK_CORE_LOCK_H
#define USTACK_CORE_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include <time.h>

struct stack_mutex {
	_Atomic uint32_t state; /* 0 free, 1 held, 2 held with possible waiters */
};

#define STACK_MUTEX_INIT { 0 }

void stack_mutex_lock_slow(struct stack_mutex *m);
void stack_mutex_wake(struct stack_mutex *m);

static inline void stack_mutex_lock(struct stack_mutex *m)
{
	if (__libc_single_threaded) {
		/* no other thread to race: a plain load and store, as glibc's own mutexes do then
		 * (a locked instruction waits for every store before it to drain) */
		if (__builtin_expect(atomic_load_explicit(&m->state, memory_order_relaxed) == 0, 1)) {
			atomic_store_explicit(&m->state, 1, memory_order_relaxed);
			return;
		}
	} else {
		uint32_t free_ = 0;
		if (__builtin_expect(atomic_compare_exchange_strong_explicit(&m->state, &free_, 1,
									   memory_order_acquire,
									   memory_order_relaxed), 1))
			return;
	}
	stack_mutex_lock_slow(m);
}

/* true if m was free and is now held by the caller */
static inline bool stack_mutex_trylock(struct stack_mutex *m)
{
	uint32_t free_ = 0;
	return atomic_compare_exchange_strong_explicit(&m->state, &free_, 1, memory_order_acquire,
						       memory_order_relaxed);
}

static inline void stack_mutex_unlock(struct stack_mutex *m)
{
	if (__libc_single_threaded && atomic_load_explicit(&m->state, memory_order_relaxed) == 1) {
		atomic_store_explicit(&m->state, 0, memory_order_release);
		return;
	}
	if (__builtin_expect(atomic_exchange_explicit(&m->state, 0, memory_order_release) != 1, 0))
		stack_mutex_wake(m);
}

/*
 * With m held and *gen read under it: let m go, sleep while *gen is still that value (until the
 * CLOCK_REALTIME instant deadline, if given), take m again.  Returns 0 (woken, or spuriously),
 * ETIMEDOUT, or EINVAL (a deadline with tv_nsec outside [0, 1e9)).  *gen is written only
 * under m; stack_wake_gen wakes the sleepers.
 */
int stack_wait_gen(struct stack_mutex *m, uint32_t *gen, uint32_t seen, const struct timespec *deadline);
/* Wakes every caller asleep on gen (after the caller bumped it under the lock). */
void stack_wake_gen(uint32_t *gen);

#endif
