/* IPv4 input, output and reassembly. */
#ifndef USTACK_NET_IP_H
#define USTACK_NET_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ustack/stack.h>
#include "core/timer.h"
#include "wire/ipv4.h"

struct netdev;
struct pkt;
struct ustack;

/* ---- input (ip_input.c) ---- */
void ip_rcv(struct ustack *st, struct netdev *dev, const uint8_t *b, size_t len, bool l2_bcast, bool csum_ok,
	    uint16_t gso_size);
/* Hands a complete datagram (header + payload) to its protocol. */
void ip_local_deliver(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
		      const uint8_t *b, size_t len);

/* ---- output (ip_output.c) ---- */
struct ip_tx {
	uint32_t saddr, daddr; /* host order */
	uint8_t proto, tos, ttl;
	bool df;
	bool id_set; /* use id as given (a connected socket's inet_id) */
	uint16_t id;
};
/* p holds the transport header and payload at p->data.  Pushes the IPv4 header, fragments
 * when allowed, and sends through the route.  Consumes p; returns 0 or a negative errno
 * (-EMSGSIZE when DF forbids fragmenting, -ENOBUFS). */
int ip_output(struct ustack *st, struct pkt *p, const struct ip_tx *tx,
	      const struct ustack_route_result *rt);
uint16_t ip_select_ident(struct ustack *st, uint32_t saddr, uint32_t daddr, uint8_t proto);

#define IP_IDENTS_SZ 2048

/* ---- reassembly (ip_fragment.c) ---- */
struct ipq;
#define IPQ_HASH_SIZE 64
struct ipfrag_state {
	struct ipq *hash[IPQ_HASH_SIZE];
	size_t mem; /* bytes held by all queues, bounded by ipfrag_high_thresh */
	unsigned nqueues;
};
/*
 * Feeds one fragment.  Returns 1 and a malloc'ed complete datagram in *out (the caller frees
 * it) when this fragment completed one; 0 when queued or dropped (dropped ones are counted).
 * *l2_bcast is then the first fragment's ip->l2_bcast: the datagram is the first fragment's
 * skb grown (ip_frag_reasm's skb_morph), its pkt_type with it.
 */
int ip_defrag(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
	      const uint8_t *b, uint8_t **out, size_t *outlen, bool *l2_bcast);
void ipfrag_destroy(struct ustack *st);

#endif
