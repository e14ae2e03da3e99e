/*
 * ARP and the neighbour cache (Linux's net/ipv4/arp.c over net/core/neighbour.c).
 *
 * An entry follows Linux's NUD states (RFC 4861 §7.3.2 applied to ARP):
 *   INCOMPLETE: a broadcast request is out; packets wait in a queue bounded by
 *               neigh.default.unres_qlen_bytes (the oldest is dropped first, counted in
 *               arp_cache.unresolved_discards).  After mcast_solicit requests, one every
 *               retrans_time_ms, resolution fails: the queue is dropped (res_failed).
 *   REACHABLE:  confirmed by a reply; after a random reachable time in
 *               [base/2, 3·base/2] it turns STALE without traffic.
 *   STALE:      still used to send; the first use starts DELAY.
 *   DELAY:      after delay_first_probe_time without confirmation → PROBE.
 *   PROBE:      unicast requests, ucast_solicit of them, then the entry fails.
 * Requests for one of our addresses are answered (arp_ignore=0) and create a STALE entry for
 * the asker, as neigh_event_ns does; replies and gratuitous ARP only update entries that
 * exist (arp_accept=0), so unsolicited traffic cannot fill the cache.  The cache holds at most
 * neigh.default.gc_thresh3 entries; a periodic sweep removes entries stale for gc_stale_time.
 */
#include "net/net.h"
#include "net/icmp.h"
#include "wire/icmp.h"
#include "wire/arp.h"
#include "wire/ether.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void neigh_timer(struct ustack *st, struct utimer *t);
static void neigh_gc_timer(struct ustack *st, struct utimer *t);

/*
 * arp_hashfn: the address (mixed with the device) times a random odd number, the top bits
 * taken.  Every transmitted packet looks its next hop up here, so Linux keeps it to one
 * multiplication rather than a SipHash: the table's entries are bounded by gc_thresh3 and
 * a chain costs only that many compares, so a keyed multiply is enough to keep a remote
 * sender from choosing a bucket it cannot see.
 */
static unsigned neigh_hash(struct ustack *st, int ifindex, uint32_t ip)
{
	uint32_t val = ip ^ (uint32_t)ifindex * 0x61c88647u; /* hash32_ptr(dev): the device mixed in */
	return (val * st->net->neigh.hash_rnd) >> (32 - NEIGH_HASH_SHIFT);
}

void neigh_init(struct ustack *st)
{
	/* neigh_hash_alloc: get_random_u32() | 1 (from the stack's keys, so a seeded stack's
	 * buckets are the same every run) */
	static const char tag[] = "neigh_hash_rnd";
	st->net->neigh.hash_rnd = (uint32_t)secret_hash(&st->secrets, SECRET_HASH, tag, sizeof(tag)) | 1u;
	timer_init(&st->net->neigh.gc_timer, neigh_gc_timer);
}

static struct neighbour *neigh_find(struct ustack *st, int ifindex, uint32_t ip)
{
	for (struct neighbour *n = st->net->neigh.hash[neigh_hash(st, ifindex, ip)]; n; n = n->hnext)
		if (n->ifindex == ifindex && n->ip == ip)
			return n;
	return NULL;
}

static void neigh_drop_queue(struct ustack *st, struct neighbour *n)
{
	while (n->queue) {
		struct pkt *p = n->queue;
		n->queue = p->next;
		ARPSTAT_INC(st, unresolved_discards);
		pkt_free(st, p);
	}
	n->queue_tail = NULL;
	n->queue_bytes = 0;
}

static void neigh_free(struct ustack *st, struct neighbour *n)
{
	struct neighbour **pp = &st->net->neigh.hash[neigh_hash(st, n->ifindex, n->ip)];
	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	timer_cancel(st, &n->timer);
	neigh_drop_queue(st, n);
	st->net->neigh.entries--;
	st->mib[ARPSTAT_entries] = st->net->neigh.entries;
	ARPSTAT_INC(st, destroys);
	free(n);
}

/* Makes room by evicting entries no packet waits on, oldest use first (neigh_forced_gc). */
static bool neigh_forced_gc(struct ustack *st)
{
	struct neighbour *victim = NULL;
	ARPSTAT_INC(st, forced_gc_runs);
	for (unsigned i = 0; i < NEIGH_HASH_SIZE; i++)
		for (struct neighbour *n = st->net->neigh.hash[i]; n; n = n->hnext)
			if ((n->state == NUD_STALE || n->state == NUD_FAILED) &&
			    (!victim || n->used < victim->used))
				victim = n;
	if (!victim)
		return false;
	neigh_free(st, victim);
	return true;
}

static uint64_t reachable_time_us(struct ustack *st)
{
	uint64_t base = (uint64_t)st->sysctl.neigh_base_reachable_time_ms * 1000u;
	return base / 2 + (uint64_t)prng_below(&st->secrets, (uint32_t)(base > UINT32_MAX ? UINT32_MAX : base));
}

static struct neighbour *neigh_create(struct ustack *st, int ifindex, uint32_t ip)
{
	if ((int)st->net->neigh.entries >= st->sysctl.neigh_gc_thresh3 && !neigh_forced_gc(st)) {
		ARPSTAT_INC(st, table_fulls);
		return NULL;
	}
	struct neighbour *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ifindex = ifindex;
	n->ip = ip;
	n->used = n->updated = st->now;
	timer_init(&n->timer, neigh_timer);
	unsigned h = neigh_hash(st, ifindex, ip);
	n->hnext = st->net->neigh.hash[h];
	st->net->neigh.hash[h] = n;
	st->net->neigh.entries++;
	st->mib[ARPSTAT_entries] = st->net->neigh.entries;
	ARPSTAT_INC(st, allocs);
	if (!timer_pending(&st->net->neigh.gc_timer))
		timer_arm(st, &st->net->neigh.gc_timer,
			  st->now + (uint64_t)st->sysctl.neigh_base_reachable_time_ms * 500u);
	return n;
}

/* arp_send: one ARP packet; tha NULL means broadcast (a request). */
static void arp_send(struct ustack *st, struct netdev *dev, uint16_t op, uint32_t tip,
		     const uint8_t *dest_mac, uint32_t sip)
{
	struct pkt *p = pkt_alloc(st, PKT_HEADROOM, ARP_LEN);
	if (!p)
		return;
	struct arp_repr a = { .op = op, .spa = sip, .tpa = tip };
	memcpy(a.sha, dev->mac, 6);
	if (op == ARPOP_REPLY && dest_mac)
		memcpy(a.tha, dest_mac, 6);
	arp_emit(pkt_put(p, ARP_LEN), &a);
	struct eth_repr e = { .type = ETH_P_ARP };
	memcpy(e.dst, dest_mac ? dest_mac : eth_broadcast, 6);
	memcpy(e.src, dev->mac, 6);
	eth_emit(pkt_push(p, ETH_HLEN), &e);
	trace_emit(st, USTACK_TRACE_STEP, op == ARPOP_REQUEST ? "arp_solicit" : "arp_send_reply",
		   dev->ifindex, NULL, 0, NULL);
	dev_xmit(st, dev, p);
}

static void neigh_xmit(struct ustack *st, struct netdev *dev, const uint8_t *mac, struct pkt *p)
{
	struct eth_repr e = { .type = ETH_P_IP };
	memcpy(e.dst, mac, 6);
	memcpy(e.src, dev->mac, 6);
	eth_emit(pkt_push(p, ETH_HLEN), &e);
	dev_xmit(st, dev, p);
}

static void neigh_solicit(struct ustack *st, struct neighbour *n, bool unicast)
{
	struct netdev *dev = netdev_get(st, n->ifindex);
	uint32_t sip = inet_select_addr(st, dev, n->ip);
	n->probes++;
	arp_send(st, dev, ARPOP_REQUEST, n->ip, unicast ? n->mac : NULL, sip);
	timer_arm(st, &n->timer, st->now + (uint64_t)st->sysctl.neigh_retrans_time_ms * 1000u);
}

/* A confirmed or learned link address: flush what waited for it. */
static void neigh_update(struct ustack *st, struct neighbour *n, const uint8_t *mac,
			 enum nud_state state)
{
	memcpy(n->mac, mac, 6);
	n->state = state;
	n->probes = 0;
	n->updated = st->now;
	if (state == NUD_REACHABLE)
		timer_arm(st, &n->timer, st->now + reachable_time_us(st));
	else
		timer_cancel(st, &n->timer);
	struct netdev *dev = netdev_get(st, n->ifindex);
	while (n->queue) {
		struct pkt *p = n->queue;
		n->queue = p->next;
		p->next = NULL;
		neigh_xmit(st, dev, n->mac, p);
	}
	n->queue_tail = NULL;
	n->queue_bytes = 0;
}

static void neigh_timer(struct ustack *st, struct utimer *t)
{
	struct neighbour *n = (struct neighbour *)((char *)t - offsetof(struct neighbour, timer));
	switch (n->state) {
	case NUD_INCOMPLETE:
		if (n->probes < st->sysctl.neigh_mcast_solicit) {
			neigh_solicit(st, n, false);
			return;
		}
		/* Resolution failed.  Linux reports it for each waiting packet through
		 * arp_error_report → ipv4_link_failure: ICMP host unreachable to the sender —
		 * us — which ends a connect() with EHOSTUNREACH. */
		ARPSTAT_INC(st, res_failed);
		while (n->queue) {
			struct pkt *p = n->queue;
			n->queue = p->next;
			n->queue_bytes -= p->len;
			ARPSTAT_INC(st, unresolved_discards);
			icmp_local_error(st, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, p->data, p->len);
			pkt_free(st, p);
		}
		n->queue_tail = NULL;
		neigh_free(st, n);
		return;
	case NUD_REACHABLE:
		n->state = NUD_STALE;
		return;
	case NUD_DELAY:
		/* A reply would have made the entry REACHABLE and moved this timer. */
		n->state = NUD_PROBE;
		n->probes = 0;
		neigh_solicit(st, n, true);
		return;
	case NUD_PROBE:
		if (n->probes < st->sysctl.neigh_ucast_solicit) {
			neigh_solicit(st, n, true);
			return;
		}
		ARPSTAT_INC(st, res_failed);
		neigh_free(st, n);
		return;
	default:
		return;
	}
}

/* neigh_periodic_work: sweeps stale entries; runs only while the cache holds any. */
static void neigh_gc_timer(struct ustack *st, struct utimer *t)
{
	uint64_t stale = (uint64_t)st->sysctl.neigh_gc_stale_time * 1000000u;
	ARPSTAT_INC(st, periodic_gc_runs);
	for (unsigned i = 0; i < NEIGH_HASH_SIZE; i++) {
		struct neighbour *n = st->net->neigh.hash[i];
		while (n) {
			struct neighbour *next = n->hnext;
			if (n->state == NUD_STALE && n->used + stale <= st->now)
				neigh_free(st, n);
			n = next;
		}
	}
	if (st->net->neigh.entries)
		timer_arm(st, t, st->now + (uint64_t)st->sysctl.neigh_base_reachable_time_ms * 500u);
}

void neigh_output(struct ustack *st, struct netdev *dev, uint32_t nexthop, struct pkt *p)
{
	if (dev->type == USTACK_LINK_RAWIP) {
		dev_xmit(st, dev, p);
		return;
	}
	if (netdev_is_broadcast(dev, nexthop)) {
		neigh_xmit(st, dev, eth_broadcast, p);
		return;
	}
	ARPSTAT_INC(st, lookups);
	struct neighbour *n = neigh_find(st, dev->ifindex, nexthop);
	if (n && n->state != NUD_INCOMPLETE) {
		ARPSTAT_INC(st, hits);
		n->used = st->now;
		if (n->state == NUD_STALE) {
			n->state = NUD_DELAY;
			timer_arm(st, &n->timer,
				  st->now + (uint64_t)st->sysctl.neigh_delay_first_probe_time * 1000000u);
		}
		neigh_xmit(st, dev, n->mac, p);
		return;
	}
	if (!n) {
		n = neigh_create(st, dev->ifindex, nexthop);
		if (!n) {
			ARPSTAT_INC(st, unresolved_discards);
			pkt_free(st, p);
			return;
		}
		n->state = NUD_INCOMPLETE;
		neigh_solicit(st, n, false);
	}
	/* Queue behind the resolution, dropping the oldest beyond unres_qlen_bytes. */
	p->next = NULL;
	if (n->queue_tail)
		n->queue_tail->next = p;
	else
		n->queue = p;
	n->queue_tail = p;
	n->queue_bytes += p->len;
	while (n->queue_bytes > (size_t)st->sysctl.neigh_unres_qlen_bytes && n->queue) {
		struct pkt *old = n->queue;
		n->queue = old->next;
		if (!n->queue)
			n->queue_tail = NULL;
		n->queue_bytes -= old->len;
		ARPSTAT_INC(st, unresolved_discards);
		pkt_free(st, old);
	}
}

void arp_rcv(struct ustack *st, struct netdev *dev, const uint8_t *b, size_t len)
{
	struct arp_repr a;
	if (arp_parse(b, len, &a) != ARP_OK) {
		dev->stats.rx_dropped++;
		trace_drop(st, "ARP_MALFORMED", dev->ifindex);
		return;
	}
	/* arp_process: never learn multicast or broadcast senders or answer for them. */
	if ((a.tpa >> 28) == 0xe || (a.spa >> 28) == 0xe || a.spa == 0xffffffffu ||
	    netdev_is_broadcast(dev, a.spa)) {
		dev->stats.rx_dropped++;
		trace_drop(st, "ARP_MARTIAN", dev->ifindex);
		return;
	}
	struct netdev *owner = a.tpa ? netdev_by_local_addr(st, a.tpa) : NULL;
	if (a.op == ARPOP_REQUEST && owner) {
		if (a.spa == 0) {
			/* RFC 5227 probe: answer, learn nothing. */
			arp_send(st, dev, ARPOP_REPLY, 0, a.sha, a.tpa);
			return;
		}
		if (eth_is_broadcast(a.tha) || !memcmp(a.tha, "\0\0\0\0\0\0", 6))
			ARPSTAT_INC(st, rcv_probes_mcast);
		else
			ARPSTAT_INC(st, rcv_probes_ucast);
		struct neighbour *n = neigh_find(st, dev->ifindex, a.spa);
		if (!n)
			n = neigh_create(st, dev->ifindex, a.spa);
		if (n) {
			/* A request proves the asker's address, not that it hears us: STALE, unless
			 * an entry already waits for exactly this (then the queue flushes). */
			if (n->state == NUD_INCOMPLETE || memcmp(n->mac, a.sha, 6) != 0 || n->state == 0)
				neigh_update(st, n, a.sha, NUD_STALE);
		}
		arp_send(st, dev, ARPOP_REPLY, a.spa, a.sha, a.tpa);
		return;
	}
	if (a.spa == 0)
		return;
	struct neighbour *n = neigh_find(st, dev->ifindex, a.spa);
	if (!n)
		return; /* arp_accept=0: replies and gratuitous ARP create nothing */
	if (a.op == ARPOP_REPLY && owner && !memcmp(a.tha, dev->mac, 6))
		neigh_update(st, n, a.sha, NUD_REACHABLE);
	else if (memcmp(n->mac, a.sha, 6) != 0 || n->state == NUD_INCOMPLETE)
		neigh_update(st, n, a.sha, NUD_STALE);
}

enum nud_state neigh_lookup_state(struct ustack *st, int ifindex, uint32_t ip, uint8_t mac[6])
{
	struct neighbour *n = neigh_find(st, ifindex, ip);
	if (!n)
		return 0;
	if (mac)
		memcpy(mac, n->mac, 6);
	return n->state;
}

void neigh_destroy(struct ustack *st)
{
	for (unsigned i = 0; i < NEIGH_HASH_SIZE; i++)
		while (st->net->neigh.hash[i])
			neigh_free(st, st->net->neigh.hash[i]);
	timer_cancel(st, &st->net->neigh.gc_timer);
}
