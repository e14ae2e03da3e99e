/*
 * The IPv4 layer's share of a stack instance (Linux's struct netns_ipv4 and the per-net
 * parts of net/ipv4): interfaces, routes, neighbours, reassembly, ICMP's rate limit, IP IDs,
 * and the protocol handlers above IP.
 *
 * Layers call downward only (socket → tcp → net → core → wire).  IP hands a segment, or an
 * ICMP error quoting one, to the protocol registered for its number (inet_add_protocol, as
 * Linux's inet_protos): net/ never names TCP.  Each layer sets up and tears down its state
 * through pernet operations (core/stack.h) that the instance runs in order.
 */
#ifndef USTACK_NET_NET_H
#define USTACK_NET_NET_H

#include "core/stack.h"
#include "net/arp.h"
#include "net/icmp.h"
#include "net/ip.h"
#include "net/netdev.h"
#include "net/route.h"

/* A transport protocol above IP (Linux's struct net_protocol). */
struct net_protocol {
	/* a datagram for it, payload after the IP header */
	void (*handler)(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip, const uint8_t *b,
			size_t len);
	/* an ICMP error that quotes one of its packets: the quoted IP header and what follows */
	void (*err_handler)(struct ustack *st, uint8_t type, uint8_t code, uint32_t info, uint32_t offender,
			    const struct ipv4_repr *inner, const uint8_t *th, size_t len);
};

struct ipv4_net {
	struct netdev devs[NETDEV_MAX];
	int ndevs;
	struct route_table routes;
	struct neigh_table neigh;
	struct ipfrag_state frag;
	struct icmp_state icmp;
	uint32_t ip_idents[IP_IDENTS_SZ];
	const struct net_protocol *protos[256];
	/* A transmit timestamp wanted for the packet being sent (SO_TIMESTAMPING's SCHED and SND,
	 * taken where Linux takes them, at the device): dev_xmit hands done() the frame. */
	struct tx_tstamp_req {
		void *owner;
		uint32_t key;
		uint8_t types;
		void (*done)(struct ustack *st, void *owner, uint32_t key, uint8_t types, const uint8_t *frame,
			     size_t len);
	} tx_ts;
};

int inet_add_protocol(struct ustack *st, const struct net_protocol *prot, uint8_t protocol);

extern const struct pernet_operations ipv4_net_ops;

#endif
