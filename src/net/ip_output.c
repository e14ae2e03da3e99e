/*
 * IPv4 transmit: Linux's ip_queue_xmit/ip_local_out → ip_finish_output (fragment if the
 * datagram exceeds the route MTU and DF is clear) → ip_finish_output2 → the neighbour layer.
 */
#include "net/net.h"
#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"

#include <errno.h>
#include <string.h>

/* Linux's ip_select_ident for datagrams without a connected socket: a counter per bucket of
 * a keyed hash of (daddr, saddr, protocol), so IDs are neither global (a side channel) nor
 * predictable across destinations. */
uint16_t ip_select_ident(struct ustack *st, uint32_t saddr, uint32_t daddr, uint8_t proto)
{
	uint32_t key[3] = { daddr, saddr, proto };
	uint64_t h = secret_hash(&st->secrets, SECRET_IP_ID, key, sizeof(key));
	uint32_t *bucket = &st->net->ip_idents[h % IP_IDENTS_SZ];
	return (uint16_t)((h >> 32) + (*bucket)++);
}

static void ip_send_one(struct ustack *st, struct netdev *dev, uint32_t nexthop, struct pkt *p)
{
	MIB_INC(st, IpOutTransmits);
	neigh_output(st, dev, nexthop, p);
}

/* ip_fragment: cut the payload into pieces of (mtu - header) rounded down to 8 bytes.  A
 * checksum left to the device is completed first (ip_do_fragment's skb_checksum_help): no
 * device completes a checksum across fragments. */
static int ip_fragment(struct ustack *st, struct netdev *dev, uint32_t nexthop, struct pkt *p,
		       struct ipv4_repr *h, unsigned mtu)
{
	size_t chunk = (mtu - IPV4_HLEN) & ~7u;
	size_t total = p->len;
	size_t off = 0;

	if (p->csum_partial) {
		wr16(p->data + 16, csum_fold(csum_partial(p->data, p->len, 0)));
		p->csum_partial = 0;
	}

	while (off < total) {
		size_t len = total - off > chunk ? chunk : total - off;
		struct pkt *f = pkt_alloc(st, PKT_HEADROOM, len);
		if (!f) {
			MIB_INC(st, IpFragFails);
			pkt_free(st, p);
			return -ENOBUFS;
		}
		memcpy(pkt_put(f, len), p->data + off, len);
		h->tot_len = (uint16_t)(IPV4_HLEN + len);
		h->frag_off = (uint16_t)off;
		h->mf = off + len < total;
		ipv4_emit(pkt_push(f, IPV4_HLEN), h);
		MIB_INC(st, IpFragCreates);
		ip_send_one(st, dev, nexthop, f);
		off += len;
	}
	MIB_INC(st, IpFragOKs);
	pkt_free(st, p);
	return 0;
}

int ip_output(struct ustack *st, struct pkt *p, const struct ip_tx *tx,
	      const struct ustack_route_result *rt)
{
	struct netdev *dev = netdev_get(st, rt->ifindex);
	uint32_t nexthop = ntohl(rt->nexthop.s_addr);
	size_t total = p->len + IPV4_HLEN;

	MIB_INC(st, IpOutRequests);
	if (!dev || total > 0xffff) {
		MIB_INC(st, IpOutDiscards);
		pkt_free(st, p);
		return -EINVAL;
	}
	MIB_ADD(st, IpExtOutOctets, total);
	struct ipv4_repr h = {
		.tos = tx->tos,
		.ttl = tx->ttl ? tx->ttl : (uint8_t)st->sysctl.ip_default_ttl,
		.proto = tx->proto,
		.tot_len = (uint16_t)total,
		.id = tx->id_set ? tx->id : ip_select_ident(st, tx->saddr, tx->daddr, tx->proto),
		.df = tx->df,
		.saddr = tx->saddr,
		.daddr = tx->daddr,
	};
	unsigned mtu = rt->mtu < dev->mtu ? rt->mtu : dev->mtu;
	if (total > mtu && !p->gso_size) { /* a TSO packet is cut by the device, to its segments */
		if (tx->df) {
			MIB_INC(st, IpFragFails);
			pkt_free(st, p);
			return -EMSGSIZE;
		}
		return ip_fragment(st, dev, nexthop, p, &h, mtu);
	}
	ipv4_emit(pkt_push(p, IPV4_HLEN), &h);
	ip_send_one(st, dev, nexthop, p);
	return 0;
}
