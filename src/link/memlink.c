/*
 * The in-memory link: two stacks joined by a wire that lives in this process.
 *
 * Each direction is a queue of the netem model (netem.h): a test that loses "5% of frames"
 * loses the same frames on every run.  With csum_offload, TCP checksums are neither computed
 * nor checked, as between two sockets over Linux's loopback (CHECKSUM_PARTIAL, trusted).
 *
 * With tso, the link also takes the TSO packets TCP builds (up to 64 KB, USTACK_IF_TSO) and
 * hands each to the other stack whole, as Linux's veth and loopback pass a GSO skb to the
 * receiving namespace without segmenting it (veth_xmit → netif_rx; the receiver's TCP takes
 * it as one segment, exactly as it takes a GRO packet).  What TCP decides — how much it
 * sends, when, with which options — is unchanged; only the cost per byte falls, since the
 * per-segment work (headers, lookups, ACK processing) is paid once per 64 KB instead of once
 * per 1448 bytes.  A lost frame loses the whole packet, as netem on a GSO skb does.
 */
#include <ustack/link.h>
#include "link/netem.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct ml_end {
	struct ustack_memlink *ml;
	int side;
	struct ustack *st;
	int ifindex;
};

struct ustack_memlink {
	pthread_mutex_t lock;
	const struct ustack_clock *clock;
	struct netem em;
	struct ml_end end[2];
	struct netem_queue q[2]; /* direction d carries side d → side 1-d */
	ustack_memlink_filter_fn filter;
	void *filter_arg;
	bool csum_offload; /* params->csum_offload: TCP checksums partial, delivered as vouched for */
	bool tso;          /* params->tso: TSO packets carried whole (implies csum_offload) */
};

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
	if (netem_init(&ml->em, params, 2) < 0) {
		free(ml);
		return NULL;
	}
	pthread_mutex_init(&ml->lock, NULL);
	ml->clock = clock;
	ml->tso = params && params->tso;
	ml->csum_offload = ml->tso || (params && params->csum_offload);
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
	netem_fini(&ml->em);
	free(ml);
}

static int ml_send(void *link, const void *frame, size_t len, uint16_t gso_size)
{
	struct ml_end *end = link;
	struct ustack_memlink *ml = end->ml;
	int d = end->side;

	if (len > NETEM_GSO_MAX) { /* a jumbo frame at the largest MTU, or a TSO packet */
		errno = EMSGSIZE;
		return -1;
	}
	pthread_mutex_lock(&ml->lock);
	uint64_t now = ml->clock->now_us(ml->clock->arg);
	if (ml->filter && ml->filter(ml->filter_arg, d, frame, len))
		ml->em.dropped++;
	else
		netem_send(&ml->em, &ml->q[d], frame, len, gso_size, now);
	pthread_mutex_unlock(&ml->lock);
	return 0;
}

static int ml_xmit(void *link, const void *frame, size_t len)
{
	return ml_send(link, frame, len, 0);
}

/* A TSO packet: queued whole, its checksum left partial, its MSS kept for the receiver (as a
 * GSO skb's gso_size crosses veth with it). */
static int ml_xmit_offload(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	return ml_send(link, frame, len, off->gso_size);
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
		.offloads = (ml->csum_offload ? USTACK_IF_CSUM : 0) | (ml->tso ? USTACK_IF_TSO : 0),
		.xmit_offload = ml->tso ? ml_xmit_offload : NULL,
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
	struct netem_slot *done = NULL; /* the frame just delivered: given back with the next take */
	for (;;) {
		pthread_mutex_lock(&ml->lock);
		if (done)
			netem_release(&ml->em, done);
		/* the earlier of the two directions' heads, so time order holds across both */
		int d = -1;
		for (int k = 0; k < 2; k++)
			if (ml->q[k].head && ml->q[k].head->due <= now &&
			    (d < 0 || ml->q[k].head->due < ml->q[d].head->due))
				d = k;
		struct netem_slot *s = d < 0 ? NULL : netem_take(&ml->q[d], now);
		pthread_mutex_unlock(&ml->lock);
		if (!s)
			return n;

		/* The lock is not held here: the receiver may transmit in return. */
		struct ml_end *to = &ml->end[1 - d];
		if (to->st)
			ustack_input_flags(to->st, to->ifindex, s->data, s->len,
					   ml->csum_offload ? USTACK_RX_CSUM_OK | USTACK_RX_GSO_SIZE(s->gso_size) : 0);
		n++;
		done = s;
	}
}

uint64_t ustack_memlink_next(struct ustack_memlink *ml)
{
	uint64_t t = UINT64_MAX;
	pthread_mutex_lock(&ml->lock);
	for (int d = 0; d < 2; d++)
		if (ml->q[d].head && ml->q[d].head->due < t)
			t = ml->q[d].head->due;
	pthread_mutex_unlock(&ml->lock);
	return t;
}

uint64_t ustack_memlink_dropped(struct ustack_memlink *ml)
{
	pthread_mutex_lock(&ml->lock);
	uint64_t v = ml->em.dropped;
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
