/*
 * IPv4 receive: Linux's ip_rcv → ip_rcv_core (header checks) → ip_rcv_finish (route input:
 * is it ours?) → ip_local_deliver (reassembly) → the protocol handler.
 *
 * Every check that fails drops the packet and bumps the counter Linux bumps for the same
 * failure, so `nstat` on ustack reads like `nstat` on Linux.  ustack is a host, not a router
 * (ip_forward=0): a datagram for an address that is not ours counts IpInAddrErrors.
 *
 * TTL: Linux does not check the TTL of datagrams it delivers locally — TTL guards against
 * forwarding loops, and a host that does not forward accepts TTL 0 or 1 — so ustack accepts
 * them too (tests pin this down).
 */
#include "net/net.h"
#include "wire/ipv4.h"

#include <stdlib.h>

static bool martian_source(uint32_t s)
{
	/* ip_route_input_slow's martian_source checks: multicast, limited broadcast, zeronet,
	 * loopback arriving from the wire. */
	return (s >> 28) == 0xe || s == 0xffffffffu || (s >> 24) == 0 || (s >> 24) == 127;
}

void ip_local_deliver(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
		      const uint8_t *b, size_t len)
{
	const uint8_t *payload = b + ip->ihl;
	size_t plen = len - ip->ihl;

	switch (ip->proto) {
	case IPPROTO_ICMP_:
		MIB_INC(st, IpInDelivers);
		icmp_rcv(st, dev, ip, payload, plen);
		break;
	default:
		if (st->net->protos[ip->proto]) { /* inet_protos: TCP */
			MIB_INC(st, IpInDelivers);
			st->net->protos[ip->proto]->handler(st, dev, ip, payload, plen);
			break;
		}
		/* No handler: Linux counts IpInUnknownProtos and answers protocol unreachable. */
		MIB_INC(st, IpInUnknownProtos);
		trace_drop(st, "IP_NOPROTO", dev->ifindex);
		icmp_send(st, 3, 2, 0, b, len, ip->l2_bcast);
		break;
	}
}

void ip_rcv(struct ustack *st, struct netdev *dev, const uint8_t *b, size_t len, bool l2_bcast, bool csum_ok,
	    uint16_t gso_size)
{
	struct ipv4_repr ip;

	MIB_INC(st, IpInReceives);
	MIB_ADD(st, IpExtInOctets, len);
	enum ipv4_parse_err err = ipv4_parse(b, len, &ip);
	switch (err) {
	case IPV4_OK:
		break;
	case IPV4_ERR_CSUM:
		MIB_INC(st, IpExtInCsumErrors);
		MIB_INC(st, IpInHdrErrors);
		trace_drop(st, "IP_CSUM", dev->ifindex);
		return;
	case IPV4_ERR_TRUNCATED:
		MIB_INC(st, IpExtInTruncatedPkts);
		trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
		return;
	default:
		MIB_INC(st, IpInHdrErrors);
		trace_drop(st, "IP_INHDR", dev->ifindex);
		return;
	}
	len = ip.tot_len; /* drop link-layer padding (pskb_trim_rcsum) */
	ip.csum_ok = csum_ok; /* a fragment's is not: the reassembled datagram is parsed anew */
	ip.gso_size = gso_size;

	bool local = netdev_by_local_addr(st, ip.daddr) != NULL;
	bool bcast = !local && netdev_is_broadcast(dev, ip.daddr);
	ip.l2_bcast = l2_bcast;
	ip.bcast = bcast;
	if (!local && !bcast) {
		if ((ip.daddr >> 28) == 0xe) {
			/* multicast for a group we have not joined */
			trace_drop(st, "IP_NOT_OUR_GROUP", dev->ifindex);
			return;
		}
		MIB_INC(st, IpInAddrErrors);
		trace_drop(st, "IP_INADDRERRORS", dev->ifindex);
		return;
	}
	if (martian_source(ip.saddr) || netdev_is_broadcast(dev, ip.saddr)) {
		trace_drop(st, "IP_INVALID_SOURCE", dev->ifindex);
		return;
	}
	if (ip.srr) {
		/* accept_source_route=0 */
		trace_drop(st, "IP_NOSRR", dev->ifindex);
		return;
	}
	/* ip_rcv_finish_core counts by the route (RTN_BROADCAST), not by the frame: a datagram to
	 * one of our addresses in a link-layer broadcast frame is taken as unicast (RFC 1122
	 * §3.3.6 lets a host drop it; Linux does only with drop_unicast_in_l2_multicast=1), and
	 * measured on Linux 6.18, counts as neither IpExtInBcastPkts nor, for TCP, TcpInSegs */
	if (bcast)
		MIB_INC(st, IpExtInBcastPkts);

	if (ip.mf || ip.frag_off) {
		uint8_t *whole;
		size_t wlen;
		bool first_l2_bcast;
		if (ip_defrag(st, dev, &ip, b, &whole, &wlen, &first_l2_bcast) == 1) {
			struct ipv4_repr full;
			if (ipv4_parse(whole, wlen, &full) == IPV4_OK) {
				full.l2_bcast = first_l2_bcast;
				full.bcast = bcast;
				ip_local_deliver(st, dev, &full, whole, wlen);
			}
			free(whole);
		}
		return;
	}
	ip_local_deliver(st, dev, &ip, b, len);
}
