/*
 * Capture: pcap files through libpcap, and live subscribers (the control socket's
 * `ustack pcap`), fed the same frames with the same timestamps.
 *
 * Timestamps are wall-clock time, so that a capture merges with tcpdump's of the same wire
 * (mergecap, Wireshark): the stack's clock (monotonic, or virtual in tests) plus the offset
 * to CLOCK_REALTIME taken when the device's first capture began, kept for every later one.
 *
 * Which frames: what ustack receives (after an impaired wire, since that is what reached
 * it) and what it sends.  A driver that delays or drops frames after the stack's transmit
 * (the TAP link with --impair) says so (ustack_if_config.tx_capture_by_link) and reports each
 * frame as it really goes on the wire (ustack_capture_wire_tx): a frame the impairment drops
 * is not in the capture, a delayed one carries the time it left.
 */
#include "net/net.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <ustack/link.h>
#include <stdlib.h>
#include <time.h>

struct capture {
	pcap_t *pcap;
	pcap_dumper_t *dumper;
};

/* The device's wall-clock offset, set once (under the stack's lock). */
static void capture_clock(struct ustack *st, struct netdev *dev)
{
	if (dev->cap_wall_set)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	dev->cap_wall_off = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - (int64_t)st->now;
	dev->cap_wall_set = true;
}

int ustack_pcap_start(struct ustack *st, int ifindex, const char *path)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	int rc = -1;
	if (!dev) {
		errno = ENODEV;
		goto out;
	}
	netdev_pcap_close(dev);
	struct capture *c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	errno = 0;
	c->pcap = pcap_open_dead(dev->type == USTACK_LINK_ETHER ? DLT_EN10MB : DLT_RAW, 65535);
	c->dumper = c->pcap ? pcap_dump_open(c->pcap, path) : NULL;
	if (!c->dumper) {
		/* fopen (in pcap_dump_open) or malloc leaves the errno that says what is wrong
		 * (ENOENT, EACCES, EISDIR, ENOMEM, ...); EIO only when there is none */
		int err = errno ? errno : EIO;
		if (c->pcap)
			pcap_close(c->pcap);
		free(c);
		errno = err;
		goto out;
	}
	capture_clock(st, dev);
	dev->pcap = c;
	rc = 0;
out:
	stack_unlock(st);
	return rc;
}

int ustack_capture_add(struct ustack *st, int ifindex, ustack_capture_fn fn, void *arg)
{
	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	int id = -1;
	if (!dev) {
		errno = ENODEV;
	} else {
		for (int i = 0; i < NETDEV_CAPTURE_MAX && id < 0; i++)
			if (!dev->cap[i].fn) {
				dev->cap[i].fn = fn;
				dev->cap[i].arg = arg;
				dev->ncap++;
				id = ifindex * NETDEV_CAPTURE_MAX + i;
			}
		if (id < 0)
			errno = EBUSY;
		else
			capture_clock(st, dev);
	}
	stack_unlock(st);
	return id;
}

int ustack_capture_remove(struct ustack *st, int id)
{
	stack_lock(st);
	struct netdev *dev = id >= 0 ? netdev_get(st, id / NETDEV_CAPTURE_MAX) : NULL;
	int rc = 0;
	if (!dev || !dev->cap[id % NETDEV_CAPTURE_MAX].fn) {
		errno = ENOENT;
		rc = -1;
	} else {
		dev->cap[id % NETDEV_CAPTURE_MAX].fn = NULL;
		dev->ncap--;
	}
	stack_unlock(st);
	return rc;
}

void ustack_capture_wire_tx(struct ustack *st, int ifindex, const uint8_t *frame, size_t len)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	if (dev)
		netdev_pcap_write(st, dev, frame, len);
	stack_unlock(st);
}

void netdev_capture(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len)
{
	uint64_t wall = (uint64_t)((int64_t)st->now + dev->cap_wall_off);
	struct capture *c = dev->pcap;
	if (c) {
		struct pcap_pkthdr h = {
			.ts = { .tv_sec = (time_t)(wall / 1000000u), .tv_usec = (suseconds_t)(wall % 1000000u) },
			.caplen = (bpf_u_int32)(len < 65535 ? len : 65535), /* the snaplen: a TSO frame is cut */
			.len = (bpf_u_int32)len,
		};
		pcap_dump((u_char *)c->dumper, &h, f);
		pcap_dump_flush(c->dumper);
	}
	for (int i = 0; i < NETDEV_CAPTURE_MAX; i++)
		if (dev->cap[i].fn)
			dev->cap[i].fn(dev->cap[i].arg, dev->ifindex, wall, f, len);
}

void netdev_pcap_close(struct netdev *dev)
{
	struct capture *c = dev->pcap;
	if (!c)
		return;
	pcap_dump_close(c->dumper);
	pcap_close(c->pcap);
	free(c);
	dev->pcap = NULL;
}
