/*
 * The impairment model shared by the in-memory link and the TAP driver, after Linux's netem:
 * each frame may be lost, duplicated, delayed (delay + uniform jitter), or let through at once
 * ahead of those queued before it (reordering).  Random draws come from the model's own
 * seeded PRNG, so the same seed loses the same frames.  Frames in flight wait in slots
 * allocated once (no malloc per frame), kept per queue in order of delivery time; a full queue
 * drops the frame, as a full transmit ring would.  Not thread-safe: the owner locks.
 */
#ifndef USTACK_LINK_NETEM_H
#define USTACK_LINK_NETEM_H

#include <stddef.h>
#include <stdint.h>
#include <ustack/link.h>

/* A slot's own storage: an Ethernet frame at the usual MTU; larger frames (jumbo, TSO) take a
 * big buffer. */
#define NETEM_FRAME_MAX (1500 + 14)
/* The largest frame: a 64 KB IPv4 packet behind its Ethernet header (a TSO packet left whole,
 * or a jumbo frame). */
#define NETEM_GSO_MAX (65535 + 14)

/* A buffer for a frame larger than a slot's own, taken from a pool that only grows: once a
 * transfer has warmed it up, no frame allocates. */
struct netem_big {
	struct netem_big *next_free, *next_all;
	uint8_t data[NETEM_GSO_MAX];
};

struct netem_slot {
	struct netem_slot *next;
	uint64_t due;
	uint32_t len;
	uint16_t gso_size;        /* a TSO packet carried whole: its MSS (else 0) */
	uint8_t *data;            /* small, or a big buffer's data */
	struct netem_big *big;
	uint8_t small[NETEM_FRAME_MAX];
};

struct netem_queue {
	struct netem_slot *head, *tail;
	unsigned inflight;
};

struct netem {
	struct ustack_memlink_params p;
	uint64_t prng;
	struct netem_slot *free, *slots;
	struct netem_big *big_free, *big_all;
	unsigned nbig, big_limit; /* big buffers made, and at most (one per slot) */
	uint64_t dropped;
};

/* Slots for `nqueues` queues of p->queue_limit frames each (default 1024), of frames of up to
 * NETEM_GSO_MAX bytes.  0 or -1. */
int netem_init(struct netem *n, const struct ustack_memlink_params *p, unsigned nqueues);
void netem_fini(struct netem *n);
/* A uniform draw in [0, 1). */
double netem_rand(struct netem *n);
/* Puts a frame on the wire at `now`: lost, or queued once or twice with its delivery time. */
void netem_send(struct netem *n, struct netem_queue *q, const void *frame, size_t len, uint16_t gso_size,
		uint64_t now);
/* Queues one copy for delivery at `due`, unimpaired (or drops it when the queue is full). */
void netem_enqueue(struct netem *n, struct netem_queue *q, const void *frame, size_t len, uint16_t gso_size,
		   uint64_t due);
/* The head of q if it is due at `now`, taken off the queue; give it back with netem_release. */
struct netem_slot *netem_take(struct netem_queue *q, uint64_t now);
void netem_release(struct netem *n, struct netem_slot *s);

#endif
