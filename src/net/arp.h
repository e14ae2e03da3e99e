/* The neighbour (ARP) cache; see arp.c for the state machine. */
#ifndef USTACK_NET_ARP_H
#define USTACK_NET_ARP_H

#include <stdint.h>
#include <stddef.h>
#include "core/timer.h"

struct netdev;
struct pkt;
struct ustack;

enum nud_state {
	NUD_INCOMPLETE = 1,
	NUD_REACHABLE,
	NUD_STALE,
	NUD_DELAY,
	NUD_PROBE,
	NUD_FAILED,
};

struct neighbour {
	struct neighbour *hnext; /* hash chain */
	int ifindex;
	uint32_t ip;
	uint8_t mac[6];
	enum nud_state state;
	uint8_t probes;
	uint64_t updated, used; /* µs: last confirmation, last use */
	struct pkt *queue, *queue_tail;
	size_t queue_bytes;
	struct utimer timer;
};

#define NEIGH_HASH_SHIFT 8
#define NEIGH_HASH_SIZE (1u << NEIGH_HASH_SHIFT)

struct neigh_table {
	struct neighbour *hash[NEIGH_HASH_SIZE];
	uint32_t hash_rnd;      /* neigh_hash_alloc's: random and odd */
	unsigned entries;
	struct utimer gc_timer;
};

void neigh_init(struct ustack *st);
void neigh_destroy(struct ustack *st);
/* Received ARP payload (after the Ethernet header). */
void arp_rcv(struct ustack *st, struct netdev *dev, const uint8_t *b, size_t len);
/* Sends an IPv4 packet to nexthop on dev, resolving its link address first if needed.
 * Consumes p. */
void neigh_output(struct ustack *st, struct netdev *dev, uint32_t nexthop, struct pkt *p);
/* For tests and `ustack` tools: the state and address of a cache entry, 0 if none. */
enum nud_state neigh_lookup_state(struct ustack *st, int ifindex, uint32_t ip, uint8_t mac[6]);

#endif
