/*
 * Timers: a hierarchical timing wheel (the classic Linux 2.6 "cascading" wheel).
 *
 * Why a wheel: TCP arms and re-arms timers on nearly every segment (retransmit, delayed ACK,
 * keepalive), and most are cancelled before they fire.  A wheel makes arm and cancel O(1) —
 * a list insertion or removal — where a heap would cost O(log n) each time.  Why cascading
 * rather than Linux ≥ 4.8's non-cascading wheel: the newer wheel lets a timer fire up to
 * 12.5% late to avoid cascades, and ustack's tests check SYN retransmissions to the
 * millisecond, so ustack keeps expiry exact and pays the (amortised O(1)) cascade.
 *
 * One tick is 1 ms.  Level 0 has 256 slots of one tick; levels 1–4 have 64 slots each,
 * covering 2^32 ticks (49 days); longer timeouts are clamped.  A timer due at tick T fires
 * when the clock reaches T·1000 µs, and the stack's "now" during its callback is T·1000 µs,
 * so a caller that advances virtual time by minutes at once still sees every timer fire at
 * its own time, in order.
 */
#ifndef USTACK_CORE_TIMER_H
#define USTACK_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct ustack;
struct utimer;
typedef void (*utimer_fn)(struct ustack *st, struct utimer *t);

struct utimer {
	struct utimer *next, **pprev; /* pprev == NULL: not armed */
	uint64_t expires;             /* tick */
	utimer_fn fn;
};

#define WHEEL_L0_BITS 8
#define WHEEL_LN_BITS 6
#define WHEEL_L0_SIZE (1u << WHEEL_L0_BITS)
#define WHEEL_LN_SIZE (1u << WHEEL_LN_BITS)
#define WHEEL_LEVELS 5

struct timer_wheel {
	uint64_t clk; /* the next tick to process */
	uint64_t pending;
	struct utimer *l0[WHEEL_L0_SIZE];
	struct utimer *ln[WHEEL_LEVELS - 1][WHEEL_LN_SIZE];
	uint64_t l0_map[WHEEL_L0_SIZE / 64]; /* non-empty slots, to skip idle stretches */
	uint64_t ln_map[WHEEL_LEVELS - 1];
};

#define USEC_PER_TICK 1000u

void wheel_init(struct timer_wheel *w, uint64_t now_us);
void timer_init(struct utimer *t, utimer_fn fn);
/* Arms (or re-arms) t to fire at absolute time expires_us. */
void timer_arm(struct ustack *st, struct utimer *t, uint64_t expires_us);
void timer_cancel(struct ustack *st, struct utimer *t);
static inline bool timer_pending(const struct utimer *t) { return t->pprev != 0; }
/* when an armed timer fires, in µs of the stack's clock (a whole tick) */
static inline uint64_t timer_expires_us(const struct utimer *t) { return t->expires * USEC_PER_TICK; }
/* Fires everything due by now_us; sets st->now to each timer's tick while it runs. */
void wheel_run(struct ustack *st, uint64_t now_us);
uint64_t wheel_next(const struct timer_wheel *w);

#endif
