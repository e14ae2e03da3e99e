#include <ustack/stack.h>

#include <time.h>

static uint64_t monotonic_now(void *arg)
{
	struct timespec ts;
	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const struct ustack_clock monotonic = { monotonic_now, NULL };

const struct ustack_clock *ustack_clock_monotonic(void)
{
	return &monotonic;
}

static uint64_t vclock_now(void *arg)
{
	return ((const struct ustack_vclock *)arg)->now_us;
}

void ustack_vclock_init(struct ustack_vclock *vc, uint64_t start_us)
{
	vc->clock.now_us = vclock_now;
	vc->clock.arg = vc;
	vc->now_us = start_us;
}
