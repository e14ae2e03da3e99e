/*
 * The routing table: longest-prefix match, then lowest metric, like Linux's main table.
 *
 * ustack's table is a short array kept sorted by (prefix length desc, metric asc), so the
 * first match is the answer.  Routes are configuration, not traffic: a host stack holds a
 * handful (connected subnets, a default route), so a linear walk of a sorted array beats a
 * trie here; TCP caches the result in the socket, as Linux caches the dst, so it is not
 * repeated per packet.
 */
#ifndef USTACK_NET_ROUTE_H
#define USTACK_NET_ROUTE_H

#include <ustack/stack.h>

#define ROUTE_MAX 64

struct route_entry {
	uint32_t dst; /* host order, masked */
	unsigned prefixlen;
	uint32_t gateway, prefsrc;
	int ifindex;
	unsigned mtu, metric;
};

struct route_table {
	struct route_entry e[ROUTE_MAX];
	int n;
};

/*
 * The seed's ip_route_connect(): finds how to reach daddr and, when saddr is 0, selects the
 * source address.  Returns 0 or a negative errno (-ENETUNREACH, -EINVAL).
 */
int ip_route_connect(struct ustack *st, uint32_t daddr, uint32_t saddr,
		     struct ustack_route_result *res);

/* What a socket asks of the route beyond the addresses (Linux's flowi4: flowi4_oif,
 * RTO_ONLINK scope for SO_DONTROUTE, FLOWI_FLAG_ANYSRC for IP_TRANSPARENT). */
struct route_key {
	int oif;      /* SO_BINDTODEVICE: only routes out of this device; 0: any */
	bool onlink;  /* SO_DONTROUTE: only routes without a gateway */
	bool anysrc;  /* IP_TRANSPARENT: saddr need not be ours */
};

/* ip_route_connect with a socket's constraints (ip_route_output_key). */
int ip_route_output(struct ustack *st, uint32_t daddr, uint32_t saddr, const struct route_key *key,
		    struct ustack_route_result *res);
int route_insert(struct ustack *st, const struct route_entry *r);

#endif
