/*
 * ICMP (Linux's net/ipv4/icmp.c).  Echo requests are answered from the address they were
 * sent to; errors are sent only where RFC 1122 §3.2.2 allows (never about an ICMP error, a
 * non-first fragment, or a broadcast) and through Linux's global token bucket
 * (icmp_msgs_per_sec, icmp_msgs_burst) for the types in icmp_ratemask.
 */
#include "net/net.h"
#include "wire/bytes.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

#include <errno.h>
#include <string.h>

/* ICMPMSGIN_INC_STATS: Linux's In<Type> columns of /proc/net/snmp are its counts by type,
 * taken before the message is looked at, so a message dropped after is counted too. */
static void count_in_type(struct ustack *st, uint8_t type)
{
	switch (type) {
	case ICMP_ECHOREPLY: MIB_INC(st, IcmpMsgInType0); MIB_INC(st, IcmpInEchoReps); break;
	case ICMP_DEST_UNREACH: MIB_INC(st, IcmpMsgInType3); MIB_INC(st, IcmpInDestUnreachs); break;
	case ICMP_ECHO: MIB_INC(st, IcmpMsgInType8); MIB_INC(st, IcmpInEchos); break;
	case ICMP_TIME_EXCEEDED: MIB_INC(st, IcmpMsgInType11); MIB_INC(st, IcmpInTimeExcds); break;
	case ICMP_PARAMETERPROB: MIB_INC(st, IcmpInParmProbs); break;
	case ICMP_TIMESTAMP: MIB_INC(st, IcmpMsgInType13); MIB_INC(st, IcmpInTimestamps); break;
	case ICMP_TIMESTAMPREPLY: MIB_INC(st, IcmpMsgInType14); MIB_INC(st, IcmpInTimestampReps); break;
	default: break;
	}
}

static void count_out_type(struct ustack *st, uint8_t type)
{
	MIB_INC(st, IcmpOutMsgs);
	switch (type) {
	case ICMP_ECHOREPLY: MIB_INC(st, IcmpMsgOutType0); MIB_INC(st, IcmpOutEchoReps); break;
	case ICMP_DEST_UNREACH: MIB_INC(st, IcmpMsgOutType3); MIB_INC(st, IcmpOutDestUnreachs); break;
	case ICMP_ECHO: MIB_INC(st, IcmpMsgOutType8); MIB_INC(st, IcmpOutEchos); break;
	case ICMP_TIME_EXCEEDED: MIB_INC(st, IcmpMsgOutType11); MIB_INC(st, IcmpOutTimeExcds); break;
	default: break;
	}
}

/* icmp_global_allow: a token bucket refilled at icmp_msgs_per_sec, at most burst deep. */
static bool icmp_global_allow(struct ustack *st, uint8_t type, uint8_t code)
{
	if (type > 18 || !((1u << type) & (unsigned)st->sysctl.icmp_ratemask) ||
	    (type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED))
		return true;
	uint64_t elapsed = st->now - st->net->icmp.stamp_us;
	if (elapsed >= 20000) { /* Linux refills at most every 20 ms */
		uint64_t incr = (uint64_t)st->sysctl.icmp_msgs_per_sec * elapsed / 1000000u;
		uint64_t c = st->net->icmp.credit + incr;
		st->net->icmp.credit = (uint32_t)(c > (uint64_t)st->sysctl.icmp_msgs_burst ?
					     (uint64_t)st->sysctl.icmp_msgs_burst : c);
		st->net->icmp.stamp_us = st->now;
	}
	if (!st->net->icmp.credit) {
		MIB_INC(st, IcmpOutRateLimitGlobal);
		return false;
	}
	st->net->icmp.credit--;
	return true;
}

/* Builds and routes one ICMP message whose body (after the 8-byte header) is body, counted
 * as type count_as (Linux counts by the flow's ICMP type, which its replies leave 0). */
static int icmp_push(struct ustack *st, const struct icmp_repr *h, uint8_t count_as, const uint8_t *body,
		     size_t body_len, uint32_t saddr, uint32_t daddr, uint8_t tos)
{
	struct ustack_route_result rt;
	int rc = ip_route_connect(st, daddr, saddr, &rt);
	if (rc < 0) {
		MIB_INC(st, IpOutNoRoutes);
		MIB_INC(st, IcmpOutErrors);
		return rc;
	}
	struct pkt *p = pkt_alloc(st, PKT_HEADROOM, ICMP_HLEN + body_len);
	if (!p) {
		MIB_INC(st, IcmpOutErrors);
		return -ENOBUFS;
	}
	uint8_t *b = pkt_put(p, ICMP_HLEN + body_len);
	memcpy(b + ICMP_HLEN, body, body_len);
	icmp_emit(b, ICMP_HLEN + body_len, h);
	count_out_type(st, count_as);
	struct ip_tx tx = { .saddr = ntohl(rt.saddr.s_addr), .daddr = daddr,
			    .proto = IPPROTO_ICMP_, .tos = tos };
	return ip_output(st, p, &tx, &rt);
}

void icmp_send(struct ustack *st, uint8_t type, uint8_t code, uint32_t info,
	       const uint8_t *orig, size_t orig_len, bool orig_l2_bcast)
{
	/* "No replies to physical multicast/broadcast" (skb_in->pkt_type != PACKET_HOST) */
	if (orig_l2_bcast)
		return;
	struct ipv4_repr ip;
	enum ipv4_parse_err e = ipv4_parse(orig, orig_len, &ip);
	if (e != IPV4_OK && e != IPV4_ERR_TRUNCATED) /* a quote may be cut short */
		return;
	/* RFC 1122 §3.2.2: not about broadcasts, non-first fragments, or ICMP errors. */
	if ((ip.daddr >> 28) == 0xe || ip.daddr == 0xffffffffu || ip.frag_off)
		return;
	for (int i = 0; i < st->net->ndevs; i++)
		if (netdev_is_broadcast(&st->net->devs[i], ip.daddr))
			return;
	if (ip.proto == IPPROTO_ICMP_ && orig_len >= (size_t)ip.ihl + 1) {
		uint8_t t = orig[ip.ihl];
		if (t != ICMP_ECHO && t != ICMP_ECHOREPLY && t != 13 && t != 14)
			return;
	}
	if (!icmp_global_allow(st, type, code))
		return;
	/* Quote as much of the datagram as fits in 576 bytes (RFC 1812 §4.3.2.3, Linux). */
	size_t room = 576 - IPV4_HLEN - ICMP_HLEN;
	size_t qlen = orig_len < room ? orig_len : room;
	struct icmp_repr h = { .type = type, .code = code, .rest = info };
	uint32_t saddr = netdev_by_local_addr(st, ip.daddr) ? ip.daddr : 0;
	/* Linux sends errors with tos = (orig tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL */
	icmp_push(st, &h, h.type, orig, qlen, saddr, ip.saddr, (uint8_t)((ip.tos & 0x1e) | 0xc0));
}

/* icmp_unreach → icmp_socket_deliver: an error quoting one of our TCP segments goes to TCP's
 * error handler; the quote must hold the whole IP header and 8 bytes beyond it. */
static void icmp_socket_deliver(struct ustack *st, const struct icmp_repr *h, uint32_t offender, const uint8_t *q,
				size_t len)
{
	if (len < IPV4_HLEN || (q[0] >> 4) != 4 || (size_t)(q[0] & 15) * 4 < IPV4_HLEN ||
	    len < (size_t)(q[0] & 15) * 4 + 8) {
		MIB_INC(st, IcmpInErrors);
		return;
	}
	size_t ihl = (size_t)(q[0] & 15) * 4;
	struct ipv4_repr inner = {
		.ihl = (uint8_t)ihl, .proto = q[9],
		.saddr = (uint32_t)q[12] << 24 | (uint32_t)q[13] << 16 | (uint32_t)q[14] << 8 | q[15],
		.daddr = (uint32_t)q[16] << 24 | (uint32_t)q[17] << 16 | (uint32_t)q[18] << 8 | q[19],
	};
	const struct net_protocol *prot = st->net->protos[inner.proto];
	if (prot && prot->err_handler && netdev_by_local_addr(st, inner.saddr))
		prot->err_handler(st, h->type, h->code, h->rest, offender, &inner, q + ihl, len - ihl);
}

void icmp_local_error(struct ustack *st, uint8_t type, uint8_t code, const uint8_t *pkt, size_t len)
{
	/* Linux sends the error to itself over loopback: counted out and in */
	count_out_type(st, type);
	MIB_INC(st, IcmpOutMsgs);
	MIB_INC(st, IcmpInMsgs);
	count_in_type(st, type);
	struct icmp_repr h = { .type = type, .code = code };
	/* from ourselves: the quoted packet's source */
	uint32_t self = len >= IPV4_HLEN ? (uint32_t)pkt[12] << 24 | (uint32_t)pkt[13] << 16 | (uint32_t)pkt[14] << 8 | pkt[15] : 0;
	icmp_socket_deliver(st, &h, self, pkt, len);
}

void icmp_rcv(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
	      const uint8_t *b, size_t len)
{
	struct icmp_repr h;
	MIB_INC(st, IcmpInMsgs);
	if (icmp_parse(b, len, &h) < 0) {
		MIB_INC(st, IcmpInErrors);
		trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
		return;
	}
	if (!icmp_csum_ok(b, len)) {
		MIB_INC(st, IcmpInCsumErrors);
		MIB_INC(st, IcmpInErrors);
		trace_drop(st, "ICMP_CSUM", dev->ifindex);
		return;
	}
	count_in_type(st, h.type);
	/* "18 is the highest 'known' ICMP type.  Anything else is a mystery" (icmp_rcv; RFC 1122
	 * §3.2.2: silently discarded) — and counted an error, but for RFC 8335's PROBE, which
	 * Linux ignores quietly while net.ipv4.icmp_echo_enable_probe is 0, as ustack always. */
	if (h.type > NR_ICMP_TYPES) {
		if (h.type != ICMP_EXT_ECHO)
			MIB_INC(st, IcmpInErrors);
		trace_drop(st, "UNHANDLED_PROTO", dev->ifindex);
		return;
	}
	/* To a broadcast address (the route's RTCF_BROADCAST, whatever the frame): RFC 1122
	 * §3.2.2.6 and §3.2.2.8 let a host ignore an echo or timestamp request sent so
	 * (icmp_echo_ignore_broadcasts), and no other type but the address-mask pair may come
	 * that way — Linux counts each such message an error, so an unreachable or a time
	 * exceeded sent to every station reaches no socket. */
	if (ip->bcast) {
		bool request = h.type == ICMP_ECHO || h.type == ICMP_TIMESTAMP;
		if (request ? st->sysctl.icmp_echo_ignore_broadcasts
			    : h.type != ICMP_ADDRESS && h.type != ICMP_ADDRESSREPLY) {
			MIB_INC(st, IcmpInErrors);
			trace_drop(st, "INVALID_PROTO", dev->ifindex);
			return;
		}
	}
	switch (h.type) {
	case ICMP_TIMESTAMP: {
		/* icmp_timestamp (RFC 792): the originate timestamp back, with ours as receive and
		 * transmit timestamps — milliseconds since midnight UT (inet_current_timestamp), on
		 * the stack's wall clock — 12 bytes whatever the request carried past its first 4;
		 * without those 4, an error.  Linux counts the reply as an echo reply (OutType0,
		 * OutEchoReps: icmp_reply leaves the flow's fl4_icmp_type 0, and __ip_make_skb
		 * counts by it), as this machine's /proc/net/snmp shows; so does ustack. */
		if (len < ICMP_HLEN + 4) {
			MIB_INC(st, IcmpInErrors);
			trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
			return;
		}
		uint8_t times[12];
		memcpy(times, b + ICMP_HLEN, 4);
		uint64_t wall_ms = (uint64_t)((int64_t)st->now + st->wall_off) / 1000u;
		uint32_t ms = (uint32_t)(wall_ms % 86400000u);
		for (int i = 0; i < 4; i++)
			times[4 + i] = times[8 + i] = (uint8_t)(ms >> (24 - 8 * i));
		struct icmp_repr r = { .type = ICMP_TIMESTAMPREPLY, .code = 0, .rest = h.rest };
		icmp_push(st, &r, ICMP_ECHOREPLY, times, sizeof(times), ip->bcast ? 0 : ip->daddr, ip->saddr,
			  ip->tos);
		return;
	}
	case ICMP_ECHO: {
		if (st->sysctl.icmp_echo_ignore_all) {
			trace_drop(st, "ICMP_ECHO_IGNORED", dev->ifindex);
			return;
		}
		struct icmp_repr r = { .type = ICMP_ECHOREPLY, .code = 0, .rest = h.rest };
		trace_emit(st, USTACK_TRACE_STEP, "icmp_echo", dev->ifindex, NULL, 0, NULL);
		icmp_push(st, &r, r.type, b + ICMP_HLEN, len - ICMP_HLEN, ip->bcast ? 0 : ip->daddr,
			  ip->saddr, ip->tos);
		return;
	}
	case ICMP_ECHOREPLY:
		if (st->net->icmp.echo_fn) {
			struct in_addr from = { htonl(ip->saddr) };
			st->net->icmp.echo_fn(st->net->icmp.echo_arg, from, (uint16_t)(h.rest >> 16),
					 (uint16_t)h.rest, len - ICMP_HLEN, ip->ttl);
		}
		return;
	case ICMP_DEST_UNREACH:
	case ICMP_TIME_EXCEEDED:
	case ICMP_PARAMETERPROB:
		icmp_socket_deliver(st, &h, ip->saddr, b + ICMP_HLEN, len - ICMP_HLEN);
		return;
	default:
		return;
	}
}

int ustack_ping(struct ustack *st, struct in_addr daddr, uint16_t id, uint16_t seq,
		size_t payload_len)
{
	if (payload_len > 65507) {
		errno = EMSGSIZE;
		return -1;
	}
	uint8_t body[65507];
	for (size_t i = 0; i < payload_len; i++)
		body[i] = (uint8_t)i;
	stack_lock(st);
	struct icmp_repr h = { .type = ICMP_ECHO, .code = 0, .rest = (uint32_t)id << 16 | seq };
	int rc = icmp_push(st, &h, h.type, body, payload_len, 0, ntohl(daddr.s_addr), 0);
	stack_unlock(st);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

void ustack_set_echo_reply_handler(struct ustack *st, ustack_echo_reply_fn fn, void *arg)
{
	stack_lock(st);
	st->net->icmp.echo_fn = fn;
	st->net->icmp.echo_arg = arg;
	stack_unlock(st);
}
