#include "core/timer.h"
#include "core/stack.h"

#include <string.h>

static inline unsigned ln_shift(int level) /* level ≥ 1 */
{
	return WHEEL_L0_BITS + (unsigned)(level - 1) * WHEEL_LN_BITS;
}

void wheel_init(struct timer_wheel *w, uint64_t now_us)
{
	memset(w, 0, sizeof(*w));
	w->clk = now_us / USEC_PER_TICK;
}

void timer_init(struct utimer *t, utimer_fn fn)
{
	t->next = NULL;
	t->pprev = NULL;
	t->expires = 0;
	t->fn = fn;
}

static void slot_push(struct utimer **slot, struct utimer *t)
{
	t->next = *slot;
	if (t->next)
		t->next->pprev = &t->next;
	*slot = t;
	t->pprev = slot;
}

static void wheel_place(struct timer_wheel *w, struct utimer *t)
{
	uint64_t e = t->expires;
	uint64_t delta = e > w->clk ? e - w->clk : 0;

	if (e < w->clk)
		e = w->clk; /* already due: fire on the next run */
	if (delta < WHEEL_L0_SIZE) {
		unsigned i = (unsigned)(e & (WHEEL_L0_SIZE - 1));
		slot_push(&w->l0[i], t);
		w->l0_map[i / 64] |= 1ull << (i % 64);
		return;
	}
	for (int level = 1; level < WHEEL_LEVELS; level++) {
		unsigned shift = ln_shift(level);
		if (delta < (1ull << (shift + WHEEL_LN_BITS)) || level == WHEEL_LEVELS - 1) {
			if (level == WHEEL_LEVELS - 1 && delta >= (1ull << (shift + WHEEL_LN_BITS))) {
				/* beyond 49 days: clamp to the wheel's reach */
				e = w->clk + (1ull << (shift + WHEEL_LN_BITS)) - 1;
				t->expires = e;
			}
			unsigned i = (unsigned)((e >> shift) & (WHEEL_LN_SIZE - 1));
			slot_push(&w->ln[level - 1][i], t);
			w->ln_map[level - 1] |= 1ull << i;
			return;
		}
	}
}

static void slot_unlink(struct timer_wheel *w, struct utimer *t)
{
	struct utimer **slot_head = NULL;
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	/* If the slot became empty, clear its bit.  pprev points into the slot array only
	 * for the first element, so find the slot by address range. */
	if ((const char *)t->pprev >= (const char *)w->l0 &&
	    (const char *)t->pprev < (const char *)w->l0 + sizeof(w->l0)) {
		slot_head = t->pprev;
		if (!*slot_head) {
			unsigned i = (unsigned)(slot_head - &w->l0[0]);
			w->l0_map[i / 64] &= ~(1ull << (i % 64));
		}
	} else if ((const char *)t->pprev >= (const char *)w->ln &&
		   (const char *)t->pprev < (const char *)w->ln + sizeof(w->ln)) {
		slot_head = t->pprev;
		if (!*slot_head) {
			size_t off = (size_t)(slot_head - &w->ln[0][0]);
			w->ln_map[off / WHEEL_LN_SIZE] &= ~(1ull << (off % WHEEL_LN_SIZE));
		}
	}
	t->next = NULL;
	t->pprev = NULL;
}

void timer_cancel(struct ustack *st, struct utimer *t)
{
	if (!timer_pending(t))
		return;
	slot_unlink(&st->wheel, t);
	st->wheel.pending--;
}

void timer_arm(struct ustack *st, struct utimer *t, uint64_t expires_us)
{
	timer_cancel(st, t);
	/* round up: a timer never fires before its time */
	t->expires = (expires_us + USEC_PER_TICK - 1) / USEC_PER_TICK;
	wheel_place(&st->wheel, t);
	st->wheel.pending++;
	if (st->wakeup && st->sleep_until && expires_us < st->sleep_until) {
		st->sleep_until = expires_us;
		st->wakeup(st->wakeup_arg);
	}
}

/* Moves every timer of one higher-level slot down to where it now belongs. */
static void cascade(struct timer_wheel *w, int level, unsigned idx)
{
	struct utimer *list = w->ln[level - 1][idx];
	w->ln[level - 1][idx] = NULL;
	w->ln_map[level - 1] &= ~(1ull << idx);
	while (list) {
		struct utimer *t = list;
		list = t->next;
		t->next = NULL;
		t->pprev = NULL;
		wheel_place(w, t);
	}
}

/* First non-empty level-0 slot at or after index i (no wrap), or -1. */
static int l0_find(const struct timer_wheel *w, unsigned i)
{
	for (unsigned word = i / 64; word < WHEEL_L0_SIZE / 64; word++) {
		uint64_t bits = w->l0_map[word];
		if (word == i / 64)
			bits &= ~0ull << (i % 64);
		if (bits)
			return (int)(word * 64 + (unsigned)__builtin_ctzll(bits));
	}
	return -1;
}

void wheel_run(struct ustack *st, uint64_t now_us)
{
	struct timer_wheel *w = &st->wheel;
	uint64_t now_tick = now_us / USEC_PER_TICK;

	while (w->clk <= now_tick) {
		unsigned idx = (unsigned)(w->clk & (WHEEL_L0_SIZE - 1));
		if (!w->pending) {
			w->clk = now_tick + 1;
			break;
		}
		if (idx == 0) {
			for (int level = 1; level < WHEEL_LEVELS; level++) {
				unsigned li = (unsigned)((w->clk >> ln_shift(level)) & (WHEEL_LN_SIZE - 1));
				cascade(w, level, li);
				if (li != 0)
					break;
			}
		}
		/* Skip empty level-0 slots up to the next cascade point or now. */
		int next = l0_find(w, idx);
		uint64_t boundary = (w->clk | (WHEEL_L0_SIZE - 1)) + 1;
		uint64_t target = next < 0 ? boundary : w->clk + (unsigned)next - idx;
		if (target > now_tick + 1)
			target = now_tick + 1;
		if (target != w->clk) {
			w->clk = target;
			continue;
		}
		/* Run this slot; callbacks may re-arm into it (they land in a later tick since
		 * expiry ≥ clk+1 after we advance, or here if already due: run them too). */
		st->now = w->clk * USEC_PER_TICK > st->now ? w->clk * USEC_PER_TICK : st->now;
		w->clk++;
		for (;;) {
			struct utimer *t = w->l0[idx];
			if (!t)
				break;
			slot_unlink(w, t);
			w->pending--;
			t->fn(st, t);
		}
	}
	if (now_us > st->now)
		st->now = now_us;
}

uint64_t wheel_next(const struct timer_wheel *w)
{
	if (!w->pending)
		return UINT64_MAX;
	unsigned idx = (unsigned)(w->clk & (WHEEL_L0_SIZE - 1));
	int i = l0_find(w, idx);
	if (i >= 0)
		return (w->clk + (unsigned)i - idx) * USEC_PER_TICK;
	/* Everything else lies at or beyond the next level-0 boundary; each higher level's
	 * first non-empty slot gives the time it cascades, a lower bound for its timers. */
	uint64_t best = (w->clk | (WHEEL_L0_SIZE - 1)) + 1;
	bool l0_wrapped = false;
	for (unsigned word = 0; word < WHEEL_L0_SIZE / 64; word++)
		l0_wrapped |= w->l0_map[word] != 0;
	if (l0_wrapped)
		return best * USEC_PER_TICK;
	uint64_t lb = UINT64_MAX;
	for (int level = 1; level < WHEEL_LEVELS; level++) {
		uint64_t map = w->ln_map[level - 1];
		if (!map)
			continue;
		unsigned shift = ln_shift(level);
		uint64_t base = w->clk >> shift;
		unsigned cur = (unsigned)(base & (WHEEL_LN_SIZE - 1));
		for (unsigned d = 1; d <= WHEEL_LN_SIZE; d++) {
			unsigned j = (cur + d) & (WHEEL_LN_SIZE - 1);
			if (map & (1ull << j)) {
				uint64_t at = (base + d) << shift;
				if (at < lb)
					lb = at;
				break;
			}
		}
	}
	if (lb < best)
		lb = best;
	return lb * USEC_PER_TICK;
}
