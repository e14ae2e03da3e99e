/* ICMP: echo, errors in and out, rate limiting. */
#ifndef USTACK_NET_ICMP_H
#define USTACK_NET_ICMP_H

#include <stddef.h>
#include <stdint.h>
#include <ustack/stack.h>
#include "wire/ipv4.h"

struct netdev;
struct ustack;

struct icmp_state {
	/* Linux's global token bucket (icmp_global_allow): icmp_msgs_per_sec, burst. */
	uint32_t credit;
	uint64_t stamp_us;
	ustack_echo_reply_fn echo_fn;
	void *echo_arg;
};

/* An error about one of our own packets that never left (a neighbour that did not answer):
 * delivered to the transport as if it had come back over loopback, as Linux's
 * ipv4_link_failure does. */
void icmp_local_error(struct ustack *st, uint8_t type, uint8_t code, const uint8_t *pkt, size_t len);
void icmp_rcv(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
	      const uint8_t *b, size_t len);
/* Sends an ICMP error about the datagram at orig (its IP header first), as Linux's
 * __icmp_send(): never about an ICMP error, a fragment other than the first, a broadcast, or
 * a datagram that came in a link-layer broadcast or multicast frame (orig_l2_bcast, its
 * ipv4_repr's l2_bcast); subject to rate limits. */
void icmp_send(struct ustack *st, uint8_t type, uint8_t code, uint32_t info,
	       const uint8_t *orig, size_t orig_len, bool orig_l2_bcast);

#endif
