/* netem.h: the impairment model shared by the in-memory link and the TAP driver. */
#include "link/netem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int netem_init(struct netem *n, const struct ustack_memlink_params *p, unsigned nqueues)
{
	memset(n, 0, sizeof(*n));
	if (p)
		n->p = *p;
	if (!n->p.queue_limit)
		n->p.queue_limit = 1024;
	n->slots = calloc((size_t)nqueues * n->p.queue_limit, sizeof(struct netem_slot));
	if (!n->slots)
		return -1;
	for (unsigned i = 0; i < nqueues * n->p.queue_limit; i++) {
		n->slots[i].data = n->slots[i].small;
		n->slots[i].next = n->free;
		n->free = &n->slots[i];
	}
	/* frames above a slot's own size (TSO packets, jumbo frames) take big buffers, allocated
	 * as they are first needed: a link of 1500-byte frames never has one */
	n->big_limit = nqueues * n->p.queue_limit;
	n->prng = n->p.seed ? n->p.seed : 0x853c49e6748fea9bull;
	return 0;
}

void netem_fini(struct netem *n)
{
	for (struct netem_big *b = n->big_all, *next; b; b = next) {
		next = b->next_all;
		free(b);
	}
	n->big_all = n->big_free = NULL;
	free(n->slots);
	n->slots = n->free = NULL;
}

double netem_rand(struct netem *n)
{
	uint64_t x = n->prng; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	n->prng = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

void netem_enqueue(struct netem *n, struct netem_queue *q, const void *frame, size_t len, uint16_t gso_size,
		   uint64_t due)
{
	struct netem_slot *s = n->free;
	if (!s || q->inflight >= n->p.queue_limit || len > NETEM_GSO_MAX ||
	    (len > NETEM_FRAME_MAX && !n->big_free && n->nbig >= n->big_limit)) {
		n->dropped++;
		return;
	}
	if (len > NETEM_FRAME_MAX) {
		struct netem_big *b = n->big_free;
		if (b) {
			n->big_free = b->next_free;
		} else if ((b = malloc(sizeof(*b)))) { /* the pool grows, up to one per slot */
			b->next_all = n->big_all;
			n->big_all = b;
			n->nbig++;
		} else {
			n->dropped++;
			return;
		}
		s->big = b;
		s->data = b->data;
	}
	n->free = s->next;
	memcpy(s->data, frame, len);
	s->len = (uint32_t)len;
	s->gso_size = gso_size;
	s->due = due;
	q->inflight++;
	/* sorted by due time; equal times keep sending order */
	if (!q->tail || q->tail->due <= due) {
		s->next = NULL;
		if (q->tail)
			q->tail->next = s;
		else
			q->head = s;
		q->tail = s;
		return;
	}
	struct netem_slot **pp = &q->head;
	while ((*pp)->due <= due)
		pp = &(*pp)->next;
	s->next = *pp;
	*pp = s;
}

void netem_send(struct netem *n, struct netem_queue *q, const void *frame, size_t len, uint16_t gso_size,
		uint64_t now)
{
	if (n->p.loss > 0 && netem_rand(n) < n->p.loss) {
		n->dropped++;
		return; /* the wire lost it; the sender cannot tell */
	}
	int copies = n->p.duplicate > 0 && netem_rand(n) < n->p.duplicate ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		uint64_t due = now + n->p.delay_us;
		if (n->p.jitter_us)
			due += (uint64_t)(netem_rand(n) * (n->p.jitter_us + 1.0));
		if (n->p.reorder > 0 && netem_rand(n) < n->p.reorder)
			due = now;
		netem_enqueue(n, q, frame, len, gso_size, due);
	}
}

struct netem_slot *netem_take(struct netem_queue *q, uint64_t now)
{
	struct netem_slot *s = q->head;
	if (!s || s->due > now)
		return NULL;
	q->head = s->next;
	if (!q->head)
		q->tail = NULL;
	q->inflight--;
	return s;
}

void netem_release(struct netem *n, struct netem_slot *s)
{
	if (s->big) {
		s->big->next_free = n->big_free;
		n->big_free = s->big;
		s->big = NULL;
		s->data = s->small;
	}
	s->next = n->free;
	n->free = s;
}
