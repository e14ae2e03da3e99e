#include "core/stack.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stack_lock(struct ustack *st)
{
	pthread_mutex_lock(&st->lock);
	uint64_t t = st->clock->now_us(st->clock->arg);
	if (t > st->now)
		st->now = t;
}

/* Each link once, however many frames it queued: the doorbell (stack_doorbell). */
void stack_ring_doorbells(struct ustack *st)
{
	for (unsigned i = 0; i < st->ndoorbell; i++)
		st->doorbell[i].fn(st->doorbell[i].link);
	st->ndoorbell = 0;
}

void stack_doorbell(struct ustack *st, void (*fn)(void *link), void *link)
{
	for (unsigned i = 0; i < st->ndoorbell; i++)
		if (st->doorbell[i].fn == fn && st->doorbell[i].link == link)
			return;
	if (st->ndoorbell == STACK_DOORBELLS) { /* one per interface: cannot happen, but ring now */
		fn(link);
		return;
	}
	st->doorbell[st->ndoorbell].fn = fn;
	st->doorbell[st->ndoorbell++].link = link;
}

void stack_unlock(struct ustack *st)
{
	if (st->ndoorbell)
		stack_ring_doorbells(st);
	pthread_mutex_unlock(&st->lock);
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
	pthread_mutex_init(&st->lock, NULL);
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
	pthread_mutex_destroy(&st->lock);
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
	pthread_mutex_lock(&st->lock);
	/* Not stack_lock(): timers must see their own expiry as "now", so the clock is
	 * applied by wheel_run after the due timers ran. */
	wheel_run(st, st->clock->now_us(st->clock->arg));
	stack_unlock(st);
}

uint64_t ustack_timers_next(struct ustack *st)
{
	pthread_mutex_lock(&st->lock);
	uint64_t t = wheel_next(&st->wheel);
	pthread_mutex_unlock(&st->lock);
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
	pthread_mutex_lock(&st->lock);
	uint64_t t = wheel_next(&st->wheel);
	if (t > cap_us)
		t = cap_us;
	st->sleep_until = t ? t : 1;
	pthread_mutex_unlock(&st->lock);
	return t;
}

void ustack_awake(struct ustack *st)
{
	pthread_mutex_lock(&st->lock);
	st->sleep_until = 0;
	pthread_mutex_unlock(&st->lock);
}
