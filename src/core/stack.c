#include "core/stack.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stack_lock(struct ustack *st)
{
	stack_mutex_lock(&st->lock);
	uint64_t t = st->clock->now_us(st->clock->arg);
	if (t > st->now)
		st->now = t;
}

/* The doorbells owed, each link once however many frames it queued (stack_doorbell): their
 * first parts now, under the lock; their after parts copied out for the caller to ring once
 * the lock is let go.  Returns how many after parts there are. */
static unsigned doorbells_ring_first(struct ustack *st, struct stack_doorbell *after)
{
	unsigned nafter = 0;
	for (unsigned i = 0; i < st->ndoorbell; i++) {
		struct stack_doorbell *d = &st->doorbell[i];
		if (d->fn)
			d->fn(d->link);
		if (d->after)
			after[nafter++] = *d;
	}
	st->ndoorbell = 0;
	return nafter;
}

bool stack_ring_doorbells(struct ustack *st)
{
	struct stack_doorbell after[STACK_DOORBELLS];
	unsigned nafter = doorbells_ring_first(st, after);
	if (!nafter)
		return false;
	stack_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < nafter; i++)
		after[i].after(after[i].link);
	stack_mutex_lock(&st->lock);
	return true;
}

void stack_doorbell(struct ustack *st, void (*fn)(void *link), void (*after)(void *link), void *link)
{
	for (unsigned i = 0; i < st->ndoorbell; i++)
		if (st->doorbell[i].fn == fn && st->doorbell[i].after == after && st->doorbell[i].link == link)
			return;
	if (st->ndoorbell == STACK_DOORBELLS) { /* one per interface: cannot happen, but ring now */
		if (fn)
			fn(link);
		if (after)
			after(link);
		return;
	}
	st->doorbell[st->ndoorbell++] = (struct stack_doorbell){ .fn = fn, .after = after, .link = link };
}

/* The doorbells' first parts under the lock; their after parts once it is released, so that
 * a link's long work (a copy-mode AF_XDP transmission) does not hold up other threads.  errno
 * is the API call's, whatever a doorbell's system calls leave in it. */
void stack_unlock(struct ustack *st)
{
	int err = errno;
	struct stack_doorbell after[STACK_DOORBELLS];
	unsigned nafter = st->ndoorbell ? doorbells_ring_first(st, after) : 0;
	stack_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < nafter; i++)
		after[i].after(after[i].link);
	errno = err;
}

/* stack_alloc: the instance's core — lock, clock, timers, packet pool, secrets, sysctls,
 * counters — with no layer set up yet (socket/instance.c runs their pernet operations). */
struct ustack *stack_alloc(const struct ustack_config *cfg)
{
	if (!cfg || !cfg->clock || !cfg->clock->now_us) {
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	struct ustack *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->clock = cfg->clock;
	st->now = cfg->clock->now_us(cfg->clock->arg);
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	st->wall_off = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000 - (int64_t)st->now;
	snprintf(st->name, sizeof(st->name), "%s", cfg->name ? cfg->name : "ustack");
	wheel_init(&st->wheel, st->now);
	secrets_init(&st->secrets, cfg->secret_seed);
	sysctl_defaults(&st->sysctl);
	return st;
}

void stack_free(struct ustack *st)
{
	pkt_pool_destroy(&st->pool);
	sodium_memzero(&st->secrets, sizeof(st->secrets));
	free(st);
}

const char *ustack_name(const struct ustack *st)
{
	return st->name;
}

uint64_t ustack_now(struct ustack *st)
{
	stack_lock(st);
	uint64_t t = st->now;
	stack_unlock(st);
	return t;
}

void ustack_timers_run(struct ustack *st)
{
	stack_mutex_lock(&st->lock);
	/* Not stack_lock(): timers must see their own expiry as "now", so the clock is
	 * applied by wheel_run after the due timers ran. */
	wheel_run(st, st->clock->now_us(st->clock->arg));
	stack_unlock(st);
}

uint64_t ustack_timers_next(struct ustack *st)
{
	stack_mutex_lock(&st->lock);
	uint64_t t = wheel_next(&st->wheel);
	stack_mutex_unlock(&st->lock);
	return t;
}

void ustack_set_wakeup(struct ustack *st, void (*fn)(void *arg), void *arg)
{
	stack_lock(st);
	st->wakeup = fn;
	st->wakeup_arg = arg;
	stack_unlock(st);
}

uint64_t ustack_sleep_until(struct ustack *st, uint64_t cap_us)
{
	stack_mutex_lock(&st->lock);
	uint64_t t = wheel_next(&st->wheel);
	if (t > cap_us)
		t = cap_us;
	st->sleep_until = t ? t : 1;
	stack_mutex_unlock(&st->lock);
	return t;
}

void ustack_awake(struct ustack *st)
{
	stack_mutex_lock(&st->lock);
	st->sleep_until = 0;
	stack_mutex_unlock(&st->lock);
}
