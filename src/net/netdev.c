/*
 * Interfaces.  Receive is Linux's netif_receive_skb → eth_type_trans → the protocol handler
 * (ip_rcv, arp_rcv); transmit is dev_queue_xmit → the driver.  Frames for another host's MAC
 * are dropped before IP sees them (PACKET_OTHERHOST), as Linux does, without an IP counter.
 */
#include "net/net.h"
#include "wire/ether.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct netdev *netdev_get(struct ustack *st, int ifindex)
{
	if (ifindex < 1 || ifindex > st->net->ndevs)
		return NULL;
	return &st->net->devs[ifindex - 1];
}

int ustack_if_add(struct ustack *st, const struct ustack_if_config *cfg)
{
	if (!cfg || !cfg->xmit || (cfg->type != USTACK_LINK_ETHER && cfg->type != USTACK_LINK_RAWIP) ||
	    cfg->mtu < 68 || cfg->mtu > USTACK_MTU_MAX) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	if (st->net->ndevs == NETDEV_MAX) {
		stack_unlock(st);
		errno = ENOBUFS;
		return -1;
	}
	struct netdev *dev = &st->net->devs[st->net->ndevs++];
	memset(dev, 0, sizeof(*dev));
	dev->ifindex = st->net->ndevs;
	snprintf(dev->name, sizeof(dev->name), "%s", cfg->name ? cfg->name : "eth");
	dev->type = cfg->type;
	st->trace_link_type[dev->ifindex] = (uint8_t)cfg->type;
	memcpy(dev->mac, cfg->mac, 6);
	dev->mtu = cfg->mtu;
	dev->xmit = cfg->xmit;
	dev->flush = cfg->flush;
	dev->flush_unlocked = cfg->flush_unlocked;
	dev->link = cfg->link;
	if (cfg->xmit_offload) {
		dev->xmit_offload = cfg->xmit_offload;
		dev->offloads = cfg->offloads & USTACK_IF_TSO;
	}
	dev->offloads |= cfg->offloads & USTACK_IF_CSUM;
	dev->tx_capture_by_link = cfg->tx_capture_by_link != 0;
	int idx = dev->ifindex;
	stack_unlock(st);
	return idx;
}

int ustack_if_type(struct ustack *st, int ifindex)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	int type = dev ? (int)dev->type : -1;
	stack_unlock(st);
	if (!dev)
		errno = ENODEV;
	return type;
}

int ustack_if_set_mtu(struct ustack *st, int ifindex, unsigned mtu)
{
	int rc = 0;
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	if (!dev) {
		errno = ENODEV;
		rc = -1;
	} else if (mtu < 68 || mtu > USTACK_MTU_MAX) {
		errno = EINVAL;
		rc = -1;
	} else {
		dev->mtu = mtu;
	}
	stack_unlock(st);
	return rc;
}

int ustack_addr_add(struct ustack *st, int ifindex, struct in_addr addr, unsigned prefixlen)
{
	uint32_t a = ntohl(addr.s_addr);
	if (prefixlen > 32 || a == 0 || a == 0xffffffffu || (a >> 28) == 0xe) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	int rc = 0;
	if (!dev) {
		errno = ENODEV;
		rc = -1;
	} else if (netdev_by_local_addr(st, a)) {
		errno = EEXIST;
		rc = -1;
	} else if (dev->naddrs == IFADDR_MAX) {
		errno = ENOBUFS;
		rc = -1;
	} else {
		/* A second address in a subnet the device already has is secondary (Linux's
		 * IFA_F_SECONDARY): fib_add_ifaddr adds no prefix route for it, the primary's stays
		 * (and with it the primary as the subnet's preferred source). */
		bool secondary = false;
		for (int i = 0; i < dev->naddrs; i++)
			secondary |= dev->addrs[i].prefixlen == prefixlen &&
				     !((dev->addrs[i].addr ^ a) & prefix_mask(prefixlen));
		uint32_t m = prefix_mask(prefixlen);
		dev->addrs[dev->naddrs++] = (struct ifaddr){
			.addr = a, .prefixlen = prefixlen,
			.broadcast = prefixlen < 31 ? (a & m) | ~m : 0xffffffffu,
		};
		/* the connected route Linux adds with the address (proto kernel scope link) */
		struct route_entry r = { .dst = a & prefix_mask(prefixlen), .prefixlen = prefixlen,
					 .prefsrc = a, .ifindex = ifindex };
		if (prefixlen < 32 && !secondary && route_insert(st, &r) < 0) {
			dev->naddrs--;
			rc = -1;
		}
	}
	stack_unlock(st);
	return rc;
}

struct netdev *netdev_by_name(struct ustack *st, const char *name)
{
	for (int i = 0; i < st->net->ndevs; i++)
		if (!strncmp(st->net->devs[i].name, name, sizeof(st->net->devs[i].name)))
			return &st->net->devs[i];
	return NULL;
}

struct netdev *netdev_by_local_addr(struct ustack *st, uint32_t addr)
{
	for (int i = 0; i < st->net->ndevs; i++)
		for (int j = 0; j < st->net->devs[i].naddrs; j++)
			if (st->net->devs[i].addrs[j].addr == addr)
				return &st->net->devs[i];
	return NULL;
}

/* Linux's inet_select_addr(): prefer an address of the output device on the same subnet as
 * the next hop, else the device's first (primary) address, else any address we have. */
uint32_t inet_select_addr(struct ustack *st, const struct netdev *dev, uint32_t nexthop)
{
	for (int j = 0; j < dev->naddrs; j++) {
		uint32_t m = prefix_mask(dev->addrs[j].prefixlen);
		if ((dev->addrs[j].addr & m) == (nexthop & m))
			return dev->addrs[j].addr;
	}
	if (dev->naddrs)
		return dev->addrs[0].addr;
	for (int i = 0; i < st->net->ndevs; i++)
		if (st->net->devs[i].naddrs)
			return st->net->devs[i].addrs[0].addr;
	return 0;
}

bool netdev_is_broadcast(const struct netdev *dev, uint32_t addr)
{
	if (addr == 0xffffffffu)
		return true;
	for (int j = 0; j < dev->naddrs; j++)
		if (dev->addrs[j].broadcast == addr)
			return true;
	return false;
}

void netdev_rx(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len, unsigned flags)
{
	bool csum_ok = flags & USTACK_RX_CSUM_OK;
	uint16_t gso_size = csum_ok ? (uint16_t)(flags >> 16) : 0; /* USTACK_RX_GSO_SIZE */
	dev->stats.rx_packets++;
	dev->stats.rx_bytes += len;
	netdev_pcap_write(st, dev, f, len);
	trace_emit(st, USTACK_TRACE_PKT_RX, "netif_receive_skb", dev->ifindex, f, len, NULL);

	if (dev->type == USTACK_LINK_RAWIP) {
		ip_rcv(st, dev, f, len, false, csum_ok, gso_size);
		return;
	}
	struct eth_repr eth;
	if (eth_parse(f, len, &eth) < 0) {
		dev->stats.rx_errors++;
		dev->stats.rx_length_errors++;
		trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
		return;
	}
	bool bcast = eth_is_broadcast(eth.dst);
	if (!bcast && !eth_is_multicast(eth.dst) && memcmp(eth.dst, dev->mac, ETH_ALEN) != 0) {
		trace_drop(st, "OTHERHOST", dev->ifindex);
		return;
	}
	switch (eth.type) {
	case ETH_P_IP:
		ip_rcv(st, dev, f + ETH_HLEN, len - ETH_HLEN, bcast || eth_is_multicast(eth.dst), csum_ok, gso_size);
		break;
	case ETH_P_ARP:
		arp_rcv(st, dev, f + ETH_HLEN, len - ETH_HLEN);
		break;
	default:
		/* Linux counts frames no protocol handles as rx_nohandler; rx_dropped here. */
		dev->stats.rx_dropped++;
		trace_drop(st, "UNHANDLED_PROTO", dev->ifindex);
		break;
	}
}

void dev_xmit(struct ustack *st, struct netdev *dev, struct pkt *p)
{
	/* __dev_queue_xmit's SCHED, the driver's skb_tx_timestamp — for the segment's IPv4 frame,
	 * not an ARP request it had to send first */
	bool ip = dev->type == USTACK_LINK_ETHER ? p->len >= 14 && p->data[12] == 0x08 && p->data[13] == 0x00
						 : p->len >= 1 && (p->data[0] >> 4) == 4;
	if (st->net->tx_ts.owner && ip) {
		struct tx_tstamp_req r = st->net->tx_ts;
		st->net->tx_ts.owner = NULL;
		r.done(st, r.owner, r.key, r.types, p->data, p->len);
	}
	if (!dev->tx_capture_by_link) /* else the driver reports it when it goes on the wire */
		netdev_pcap_write(st, dev, p->data, p->len);
	trace_emit(st, USTACK_TRACE_PKT_TX, "net_dev_xmit", dev->ifindex, p->data, p->len, NULL);
	int rc;
	if (p->gso_size || (p->csum_partial && dev->xmit_offload)) {
		/* a TSO packet (only for a device with USTACK_IF_TSO), or a segment whose checksum
		 * is left to a device that says where it is (USTACK_IF_CSUM with xmit_offload):
		 * its TCP checksum is partial */
		size_t l3 = dev->type == USTACK_LINK_ETHER ? ETH_HLEN : 0;
		struct ustack_tx_offload off = {
			.gso_size = p->gso_size,
			.csum_start = (uint16_t)(l3 + (size_t)((p->data[l3] & 0x0f) * 4)),
			.csum_offset = 16, /* offsetof(struct tcphdr, check) */
		};
		rc = dev->xmit_offload(dev->link, p->data, p->len, &off);
	} else {
		rc = dev->xmit(dev->link, p->data, p->len);
	}
	if (rc < 0) {
		dev->stats.tx_errors++;
		dev->stats.tx_dropped++;
	} else {
		dev->stats.tx_packets++;
		dev->stats.tx_bytes += p->len;
		if (dev->flush || dev->flush_unlocked)
			stack_doorbell(st, dev->flush, dev->flush_unlocked, dev->link);
	}
	pkt_free(st, p);
}

int ustack_if_stats(struct ustack *st, int ifindex, struct ustack_if_stats *out)
{
	int rc = 0;
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	if (dev)
		*out = dev->stats;
	else {
		errno = ENODEV;
		rc = -1;
	}
	stack_unlock(st);
	return rc;
}

/* A frame from the link driver (the public entry point of input). */
void ustack_input(struct ustack *st, int ifindex, const void *frame, size_t len)
{
	const uint8_t *f = frame;
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	if (!dev) {
		stack_unlock(st);
		return;
	}
	netdev_rx(st, dev, f, len, 0);
	stack_unlock(st);
}

void ustack_input_flags(struct ustack *st, int ifindex, const void *frame, size_t len, unsigned flags)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	if (dev)
		netdev_rx(st, dev, frame, len, flags);
	stack_unlock(st);
}

/* NAPI's poll, in effect: the burst under one hold of the lock, so an application woken by
 * the first segment finds all of them when it gets the lock, and the replies they call for
 * leave with one doorbell. */
void ustack_input_burst(struct ustack *st, int ifindex, const struct ustack_rx_frame *frames, unsigned n)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	for (unsigned i = 0; dev && i < n; i++)
		netdev_rx(st, dev, frames[i].data, frames[i].len, frames[i].flags);
	stack_unlock(st);
}
