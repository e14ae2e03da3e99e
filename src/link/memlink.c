/*
 * The in-memory link: two stacks joined by a wire that lives in this process.
 *
 * Frames in flight wait in preallocated slots (no malloc per frame), kept in order of their
 * delivery time, per direction.  Impairments follow netem's model and draw from the link's
 * own seeded PRNG, so a test that loses "5% of frames" loses the same frames on every run:
 *   loss: the frame vanishes;  duplicate: it is delivered twice;
 *   delay + jitter: it is delivered delay + U[0, jitter] later;
 *   reorder: it skips the delay and overtakes the frames queued before it.
 * A full queue drops the frame, as a full transmit ring would.
 */
#include <ustack/link.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ML_FRAME_MAX (USTACK_MTU_MAX + 14)

struct ml_slot {
	struct ml_slot *next;
	uint64_t due;
	uint32_t len;
	uint8_t data[ML_FRAME_MAX];
};

struct ml_end {
	struct ustack_memlink *ml;
	int side;
	struct ustack *st;
	int ifindex;
};

struct ustack_memlink {
	pthread_mutex_t lock;
	const struct ustack_clock *clock;
	struct ustack_memlink_params p;
	uint64_t prng;
	struct ml_end end[2];
	struct ml_slot *head[2], *tail[2]; /* direction d carries side d → side 1-d */
	unsigned inflight[2];
	struct ml_slot *free;
	struct ml_slot *slots;
	ustack_memlink_filter_fn filter;
	void *filter_arg;
	uint64_t dropped;
};

static double ml_rand(struct ustack_memlink *ml)
{
	uint64_t x = ml->prng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	ml->prng = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

struct ustack_memlink *ustack_memlink_create(const struct ustack_clock *clock,
					     const struct ustack_memlink_params *params)
{
	if (!clock) {
		errno = EINVAL;
		return NULL;
	}
	struct ustack_memlink *ml = calloc(1, sizeof(*ml));
	if (!ml)
		return NULL;
	if (params)
		ml->p = *params;
	if (!ml->p.queue_limit)
		ml->p.queue_limit = 1024;
	ml->slots = calloc(2u * ml->p.queue_limit, sizeof(struct ml_slot));
	if (!ml->slots) {
		free(ml);
		return NULL;
	}
	for (unsigned i = 0; i < 2u * ml->p.queue_limit; i++) {
		ml->slots[i].next = ml->free;
		ml->free = &ml->slots[i];
	}
	pthread_mutex_init(&ml->lock, NULL);
	ml->clock = clock;
	ml->prng = ml->p.seed ? ml->p.seed : 0x853c49e6748fea9bull;
	for (int s = 0; s < 2; s++) {
		ml->end[s].ml = ml;
		ml->end[s].side = s;
	}
	return ml;
}

void ustack_memlink_destroy(struct ustack_memlink *ml)
{
	if (!ml)
		return;
	pthread_mutex_destroy(&ml->lock);
	free(ml->slots);
	free(ml);
}

static void ml_enqueue(struct ustack_memlink *ml, int d, const void *frame, size_t len, uint64_t due)
{
	struct ml_slot *s = ml->free;
	if (!s || ml->inflight[d] >= ml->p.queue_limit) {
		ml->dropped++;
		return;
	}
	ml->free = s->next;
	memcpy(s->data, frame, len);
	s->len = (uint32_t)len;
	s->due = due;
	ml->inflight[d]++;
	/* Keep the queue sorted by due time; equal times keep sending order. */
	if (!ml->tail[d] || ml->tail[d]->due <= due) {
		s->next = NULL;
		if (ml->tail[d])
			ml->tail[d]->next = s;
		else
			ml->head[d] = s;
		ml->tail[d] = s;
		return;
	}
	struct ml_slot **pp = &ml->head[d];
	while ((*pp)->due <= due)
		pp = &(*pp)->next;
	s->next = *pp;
	*pp = s;
}

static int ml_xmit(void *link, const void *frame, size_t len)
{
	struct ml_end *end = link;
	struct ustack_memlink *ml = end->ml;
	int d = end->side;

	if (len > ML_FRAME_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	pthread_mutex_lock(&ml->lock);
	uint64_t now = ml->clock->now_us(ml->clock->arg);
	if ((ml->filter && ml->filter(ml->filter_arg, d, frame, len)) ||
	    (ml->p.loss > 0 && ml_rand(ml) < ml->p.loss)) {
		ml->dropped++;
		pthread_mutex_unlock(&ml->lock);
		return 0; /* the wire lost it; the sender cannot tell */
	}
	int copies = ml->p.duplicate > 0 && ml_rand(ml) < ml->p.duplicate ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		uint64_t due = now + ml->p.delay_us;
		if (ml->p.jitter_us)
			due += (uint64_t)(ml_rand(ml) * (ml->p.jitter_us + 1.0));
		if (ml->p.reorder > 0 && ml_rand(ml) < ml->p.reorder)
			due = now;
		ml_enqueue(ml, d, frame, len, due);
	}
	pthread_mutex_unlock(&ml->lock);
	return 0;
}

int ustack_memlink_attach(struct ustack_memlink *ml, int side, struct ustack *st,
			  const char *ifname, const uint8_t mac[6], unsigned mtu)
{
	if (side < 0 || side > 1 || ml->end[side].st) {
		errno = EINVAL;
		return -1;
	}
	struct ustack_if_config cfg = {
		.name = ifname, .type = USTACK_LINK_ETHER, .mtu = mtu,
		.xmit = ml_xmit, .link = &ml->end[side],
	};
	memcpy(cfg.mac, mac, 6);
	int idx = ustack_if_add(st, &cfg);
	if (idx < 0)
		return -1;
	ml->end[side].st = st;
	ml->end[side].ifindex = idx;
	return idx;
}

void ustack_memlink_set_filter(struct ustack_memlink *ml, ustack_memlink_filter_fn fn, void *arg)
{
	pthread_mutex_lock(&ml->lock);
	ml->filter = fn;
	ml->filter_arg = arg;
	pthread_mutex_unlock(&ml->lock);
}

int ustack_memlink_deliver(struct ustack_memlink *ml)
{
	int n = 0;
	uint64_t now = ml->clock->now_us(ml->clock->arg);
	for (;;) {
		pthread_mutex_lock(&ml->lock);
		/* the earlier of the two directions' heads, so time order holds across both */
		int d = -1;
		for (int k = 0; k < 2; k++)
			if (ml->head[k] && ml->head[k]->due <= now &&
			    (d < 0 || ml->head[k]->due < ml->head[d]->due))
				d = k;
		if (d < 0) {
			pthread_mutex_unlock(&ml->lock);
			return n;
		}
		struct ml_slot *s = ml->head[d];
		ml->head[d] = s->next;
		if (!ml->head[d])
			ml->tail[d] = NULL;
		ml->inflight[d]--;
		pthread_mutex_unlock(&ml->lock);

		/* The lock is not held here: the receiver may transmit in return. */
		struct ml_end *to = &ml->end[1 - d];
		if (to->st)
			ustack_input(to->st, to->ifindex, s->data, s->len);
		n++;

		pthread_mutex_lock(&ml->lock);
		s->next = ml->free;
		ml->free = s;
		pthread_mutex_unlock(&ml->lock);
	}
}

uint64_t ustack_memlink_next(struct ustack_memlink *ml)
{
	uint64_t t = UINT64_MAX;
	pthread_mutex_lock(&ml->lock);
	for (int d = 0; d < 2; d++)
		if (ml->head[d] && ml->head[d]->due < t)
			t = ml->head[d]->due;
	pthread_mutex_unlock(&ml->lock);
	return t;
}

uint64_t ustack_memlink_dropped(struct ustack_memlink *ml)
{
	pthread_mutex_lock(&ml->lock);
	uint64_t v = ml->dropped;
	pthread_mutex_unlock(&ml->lock);
	return v;
}

uint64_t ustack_memlink_run(struct ustack_memlink *ml, struct ustack_vclock *vc, uint64_t until_us)
{
	uint64_t events = 0;
	/* Bounded: a protocol bug that ping-pongs forever ends the run instead of hanging. */
	for (unsigned iter = 0; iter < 10000000u; iter++) {
		events += (uint64_t)ustack_memlink_deliver(ml);
		for (int s = 0; s < 2; s++)
			if (ml->end[s].st)
				ustack_timers_run(ml->end[s].st);
		uint64_t next = ustack_memlink_next(ml);
		for (int s = 0; s < 2; s++)
			if (ml->end[s].st) {
				uint64_t t = ustack_timers_next(ml->end[s].st);
				if (t < next)
					next = t;
			}
		if (next <= vc->now_us)
			continue;
		if (next > until_us) {
			if (until_us != UINT64_MAX && until_us > vc->now_us) {
				vc->now_us = until_us;
				for (int s = 0; s < 2; s++)
					if (ml->end[s].st)
						ustack_timers_run(ml->end[s].st);
			}
			break;
		}
		vc->now_us = next;
		events++;
	}
	return events;
}
