/* Interfaces: addresses, link-layer receive and transmit, statistics. */
#ifndef USTACK_NET_NETDEV_H
#define USTACK_NET_NETDEV_H

#include <ustack/link.h>
#include <ustack/stack.h>
#include <stdbool.h>

#define NETDEV_MAX STACK_IF_MAX
#define IFADDR_MAX 8
#define NETDEV_CAPTURE_MAX 4 /* live captures per device */

struct pkt;

struct ifaddr {
	uint32_t addr; /* host order */
	unsigned prefixlen;
	/* the subnet's directed broadcast (Linux's ifa_broadcast), made when the address is
	 * added; a /31 or /32 has none and keeps the limited one, 255.255.255.255 */
	uint32_t broadcast;
};

struct netdev {
	int ifindex;
	char name[16];
	enum ustack_link_type type;
	uint8_t mac[6];
	unsigned mtu;
	ustack_xmit_fn xmit;
	ustack_xmit_offload_fn xmit_offload; /* with USTACK_IF_TSO in offloads */
	ustack_flush_fn flush;               /* the doorbell, rung by stack_unlock */
	ustack_flush_fn flush_unlocked;      /* ... and its part rung after the unlock */
	unsigned offloads;
	void *link;
	struct ifaddr addrs[IFADDR_MAX];
	int naddrs;
	struct ustack_if_stats stats;
	void *pcap; /* pcap_dumper_t *, when capturing */
	struct {    /* live captures (ustack_capture_add) */
		ustack_capture_fn fn;
		void *arg;
	} cap[NETDEV_CAPTURE_MAX];
	uint8_t ncap;
	bool cap_wall_set;     /* cap_wall_off is set */
	bool tx_capture_by_link; /* the driver reports sent frames as they go on the wire */
	int64_t cap_wall_off;  /* µs from the stack's clock to CLOCK_REALTIME, for captures */
};

struct netdev *netdev_get(struct ustack *st, int ifindex);
/* A frame arrived on dev: link-layer checks, then ARP or IP. */
void netdev_rx(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len, unsigned flags);
/* Capture (net/pcap.c): a no-op unless a pcap file or a live capture is on for dev, which
 * every frame in and out asks here, inline. */
void netdev_capture(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len);
static inline void netdev_pcap_write(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len)
{
	if (dev->pcap || dev->ncap)
		netdev_capture(st, dev, f, len);
}
void netdev_pcap_close(struct netdev *dev);
/* Hands a finished frame (link header included) to the driver and frees the pkt. */
void dev_xmit(struct ustack *st, struct netdev *dev, struct pkt *p);
/* The interface of that name (dev_get_by_name), or NULL. */
struct netdev *netdev_by_name(struct ustack *st, const char *name);
/* The interface owning addr, or NULL (Linux's inet_addr_type == RTN_LOCAL). */
struct netdev *netdev_by_local_addr(struct ustack *st, uint32_t addr);
/* Linux's inet_select_addr(): the source address to use on dev towards nexthop, 0 if none. */
uint32_t inet_select_addr(struct ustack *st, const struct netdev *dev, uint32_t nexthop);
/* addr is a broadcast address for dev (limited or a subnet's directed broadcast). */
bool netdev_is_broadcast(const struct netdev *dev, uint32_t addr);
static inline uint32_t prefix_mask(unsigned len) { return len ? ~0u << (32 - len) : 0; }

#endif
