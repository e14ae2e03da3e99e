/*
 * The TAP driver: the kernel's /dev/net/tun in IFF_TAP|IFF_NO_PI mode hands ustack whole
 * Ethernet frames, and takes them back on write.  The run loop waits in epoll for frames or
 * for the stack's next timer, whichever comes first, then reads what is queued, a bounded
 * burst per wake-up.
 *
 * Offloads (IFF_VNET_HDR, TUNSETOFFLOAD with TUN_F_CSUM | TUN_F_TSO4), what a virtio NIC
 * gives a guest.  Every frame each way is preceded by a struct virtio_net_hdr.  Sending, TCP
 * hands the device whole TSO packets of up to 64 KB (GSO_TCPV4, NEEDS_CSUM with the
 * pseudo-header sum in the checksum field), which the kernel cuts into the segments ustack
 * would have sent — one write instead of forty.  Receiving, the kernel keeps its own TSO and
 * GRO packets whole and leaves their checksums to the local receiver (NEEDS_CSUM: partial,
 * DATA_VALID: checked), which ustack then does not verify: memory-to-memory, as Linux's own
 * veth does.  Off when the wire is impaired (netem queues MTU-sized frames) or when
 * USTACK_TAP_OFFLOAD=off is in the environment (to measure without).
 */
#include <ustack/link.h>
#include "link/loop.h"
#include "link/netem.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ETH_FRAME_MAX (14 + 4 + 65535) /* Ethernet (a VLAN tag), then a whole IPv4 packet */
#define TAP_RX_BATCH 32                 /* frames handed to the stack at once */
#define TAP_RX_BUF (512u << 10)         /* where they wait: 32 of 1500 bytes, or 7 of 64 KB */

struct ustack_tap {
	int fd;
	struct link_loop loop;
	bool vnet_hdr; /* every frame each way behind a virtio_net_hdr */
	bool offload;  /* ... and TSO/checksum offloads on (not while impaired) */
	char name[IFNAMSIZ];
	uint8_t *rxbuf; /* TAP_RX_BUF: received frames, until the burst is handed over */
	struct ustack *st;
	int ifindex;
	/* optional impairment of the wire, each way (ustack_tap_impair) */
	bool impaired;
	pthread_mutex_t mu;
	struct netem em;
	struct netem_queue rxq, txq;
};

struct ustack_tap *ustack_tap_open(const char *name)
{
	if (!name || strlen(name) >= IFNAMSIZ) {
		errno = EINVAL;
		return NULL;
	}
	struct ustack_tap *tap = calloc(1, sizeof(*tap));
	if (!tap)
		return NULL;
	tap->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	tap->rxbuf = malloc(TAP_RX_BUF);
	if (tap->fd < 0 || !tap->rxbuf)
		goto fail;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	const char *off = getenv("USTACK_TAP_OFFLOAD");
	tap->vnet_hdr = !off || strcmp(off, "off") != 0;
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | (tap->vnet_hdr ? IFF_VNET_HDR : 0));
	memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
	if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	int hsz = (int)sizeof(struct virtio_net_hdr);
	if (tap->vnet_hdr && ioctl(tap->fd, TUNSETVNETHDRSZ, &hsz) < 0)
		goto fail;
	memcpy(tap->name, ifr.ifr_name, IFNAMSIZ);
	if (link_if_up(tap->name) < 0)
		goto fail;
	if (link_loop_init(&tap->loop) < 0)
		goto fail;
	return tap;
fail:;
	int e = errno;
	if (tap->fd >= 0)
		close(tap->fd);
	free(tap->rxbuf);
	free(tap);
	errno = e;
	return NULL;
}

void ustack_tap_close(struct ustack_tap *tap)
{
	if (!tap)
		return;
	if (tap->impaired) {
		netem_fini(&tap->em);
		pthread_mutex_destroy(&tap->mu);
	}
	close(tap->fd);
	link_loop_fini(&tap->loop);
	free(tap->rxbuf);
	free(tap);
}

int ustack_tap_fd(const struct ustack_tap *tap)
{
	return tap->fd;
}

int ustack_tap_impair(struct ustack_tap *tap, const struct ustack_memlink_params *p)
{
	if (tap->impaired || tap->st) {
		errno = EBUSY; /* before attaching, once */
		return -1;
	}
	struct ustack_memlink_params q = p ? *p : (struct ustack_memlink_params){ 0 };
	q.tso = 0; /* the TAP's frames are the MTU's while impaired (its offloads are off) */
	if (netem_init(&tap->em, &q, 2) < 0)
		return -1;
	pthread_mutex_init(&tap->mu, NULL);
	tap->impaired = true;
	return 0;
}

/* A TAP write takes one whole frame or fails; EAGAIN means the kernel's queue is full,
 * which the stack treats as a drop, like a full NIC ring. */
static int tap_write(struct ustack_tap *tap, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	if (!tap->vnet_hdr) {
		ssize_t n = write(tap->fd, frame, len);
		return n == (ssize_t)len ? 0 : -1;
	}
	struct virtio_net_hdr h = { 0 };
	if (off && !off->gso_size) {
		/* one segment, its checksum left to the kernel: NEEDS_CSUM alone (no GSO), which it
		 * takes as a local sender's CHECKSUM_PARTIAL, trusted, completed only if forwarded */
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.csum_start = off->csum_start;
		h.csum_offset = off->csum_offset;
	} else if (off) {
		const uint8_t *f = frame;
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		if (len > off->csum_start + 13u && (f[off->csum_start + 13] & 0x80))
			h.gso_type |= VIRTIO_NET_HDR_GSO_ECN; /* CWR: on the first segment only (SKB_GSO_TCP_ECN) */
		h.gso_size = off->gso_size;
		h.csum_start = off->csum_start;
		h.csum_offset = off->csum_offset;
		h.hdr_len = (uint16_t)(off->csum_start + (len > off->csum_start + 12u ? (f[off->csum_start + 12] >> 4) * 4 : 20));
	}
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)(uintptr_t)frame, len } };
	ssize_t n = writev(tap->fd, iov, 2);
	return n == (ssize_t)(sizeof(h) + len) ? 0 : -1;
}

static int tap_xmit(void *link, const void *frame, size_t len)
{
	struct ustack_tap *tap = link;
	if (tap->impaired) {
		/* onto the impaired wire; the run loop writes it when it is due (and is woken,
		 * since the sender may be an application thread) */
		pthread_mutex_lock(&tap->mu);
		netem_send(&tap->em, &tap->txq, frame, len, 0, ustack_clock_monotonic()->now_us(NULL));
		pthread_mutex_unlock(&tap->mu);
		link_loop_kick(&tap->loop);
		return 0;
	}
	return tap_write(tap, frame, len, NULL);
}

/* A TSO packet: the kernel cuts it by gso_size and completes each segment's checksum; or one
 * segment whose checksum it completes (gso_size 0). */
static int tap_xmit_offload(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	return tap_write(link, frame, len, off);
}

int ustack_tap_attach(struct ustack_tap *tap, struct ustack *st, const uint8_t mac[6], unsigned mtu)
{
	/* offloads, unless the wire is impaired: netem holds frames of the MTU */
	tap->offload = tap->vnet_hdr && !tap->impaired &&
		       ioctl(tap->fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0;
	if (tap->vnet_hdr && !tap->offload && ioctl(tap->fd, TUNSETOFFLOAD, 0ul) < 0)
		return -1;
	struct ustack_if_config cfg = {
		.name = tap->name, .type = USTACK_LINK_ETHER, .mtu = mtu,
		.xmit = tap_xmit, .link = tap,
		/* impaired, a sent frame reaches the wire later, or never: captured then */
		.tx_capture_by_link = tap->impaired,
		.offloads = tap->offload ? USTACK_IF_TSO | USTACK_IF_CSUM : 0,
		.xmit_offload = tap->offload ? tap_xmit_offload : NULL,
	};
	memcpy(cfg.mac, mac, 6);
	int idx = ustack_if_add(st, &cfg);
	if (idx < 0)
		return -1;
	tap->st = tap->loop.st = st;
	tap->ifindex = idx;
	ustack_set_wakeup(st, link_loop_kick, &tap->loop);
	return idx;
}

void ustack_tap_stop(struct ustack_tap *tap)
{
	link_loop_stop(&tap->loop); /* async-signal-safe */
}

/* What the impaired wire now owes each side: frames due to ustack, frames due to the kernel. */
static void tap_deliver_due(struct ustack_tap *tap, uint64_t now)
{
	for (int guard = 0; guard < 4096; guard++) {
		pthread_mutex_lock(&tap->mu);
		struct netem_slot *in = netem_take(&tap->rxq, now);
		struct netem_slot *out = in ? NULL : netem_take(&tap->txq, now);
		pthread_mutex_unlock(&tap->mu);
		if (!in && !out)
			return;
		bool lost = false;
		if (in) /* unlocked: ustack may transmit in return */
			ustack_input(tap->st, tap->ifindex, in->data, in->len);
		else if (!(lost = tap_write(tap, out->data, out->len, NULL) < 0)) /* the kernel's queue is full */
			ustack_capture_wire_tx(tap->st, tap->ifindex, out->data, out->len);
		pthread_mutex_lock(&tap->mu);
		tap->em.dropped += lost;
		netem_release(&tap->em, in ? in : out);
		pthread_mutex_unlock(&tap->mu);
	}
}

/* An impaired frame falling due wakes the loop too. */
static uint64_t tap_next_wakeup(void *arg, uint64_t next)
{
	struct ustack_tap *tap = arg;
	if (!tap->impaired)
		return next;
	pthread_mutex_lock(&tap->mu);
	for (int q = 0; q < 2; q++) {
		struct netem_queue *nq = q ? &tap->txq : &tap->rxq;
		if (nq->head && nq->head->due < next)
			next = nq->head->due;
	}
	pthread_mutex_unlock(&tap->mu);
	return next;
}

/* An application thread in its poll (ustack_tap_poll), not the run loop's */
static __thread bool tap_polling;

/*
 * Frames the kernel queued for us, a bounded burst per wake-up so that timers are never
 * starved by a flood; through the impairment queue if there is one.  A read() a frame (a TAP
 * device has no batched read), but they are handed to the stack up to TAP_RX_BATCH at a time
 * (ustack_input_burst), one hold of its lock: a reader woken by the first finds them all, and
 * the ACKs they call for go together.  The frames wait in rxbuf, one after another.
 */
static void tap_rx(void *arg)
{
	struct ustack_tap *tap = arg;
	const struct ustack_clock *clk = ustack_clock_monotonic();
	size_t hs = tap->vnet_hdr ? sizeof(struct virtio_net_hdr) : 0;
	/* a virtio_net_hdr, then up to a 64 KB IP packet (GRO, TSO) behind its Ethernet header */
	const size_t most = hs + ETH_FRAME_MAX;
	struct ustack_rx_frame f[TAP_RX_BATCH];
	unsigned n = 0, delayed = 0;
	size_t off = 0;
	for (int k = 0; k < 256; k++) {
		if (n == TAP_RX_BATCH || TAP_RX_BUF - off < most) {
			ustack_input_burst(tap->st, tap->ifindex, f, n);
			n = 0;
			off = 0;
		}
		uint8_t *frame = tap->rxbuf + off;
		ssize_t len = read(tap->fd, frame, most);
		if (len <= (ssize_t)hs)
			break;
		if ((size_t)len > most)
			continue; /* tun_put_user cut it to our buffer and said how long it was */
		unsigned flags = 0;
		if (hs) {
			struct virtio_net_hdr h;
			memcpy(&h, frame, sizeof(h));
			if (h.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
				flags = USTACK_RX_CSUM_OK;
			if (flags && h.gso_type != VIRTIO_NET_HDR_GSO_NONE) /* GRO'd: its segments' size */
				flags |= USTACK_RX_GSO_SIZE(h.gso_size);
		}
		if (tap->impaired) {
			pthread_mutex_lock(&tap->mu);
			netem_send(&tap->em, &tap->rxq, frame + hs, (size_t)len - hs, 0, clk->now_us(NULL));
			pthread_mutex_unlock(&tap->mu);
			delayed++;
			continue;
		}
		f[n++] = (struct ustack_rx_frame){ .data = frame + hs, .len = (size_t)len - hs, .flags = flags };
		off += ((size_t)len + 63) & ~(size_t)63;
	}
	if (n)
		ustack_input_burst(tap->st, tap->ifindex, f, n);
	if (delayed && tap_polling) /* the run loop delivers them when due, and may be asleep */
		link_loop_kick(&tap->loop);
}

static void tap_due(void *arg, uint64_t now)
{
	struct ustack_tap *tap = arg;
	if (tap->impaired)
		tap_deliver_due(tap, now);
}

/* The run loop; with drain, it also ends once nothing closed owes its peer (ustack_tap_drain). */
static int tap_loop(struct ustack_tap *tap, uint64_t deadline_us, bool drain)
{
	const struct link_loop_ops ops = { .fd = tap->fd, .rx = tap_rx, .due = tap_due, .next = tap_next_wakeup };
	return link_loop_run(&tap->loop, &ops, tap, deadline_us, drain);
}

/* An application thread's burst (link_loop_poll). */
int ustack_tap_poll(struct ustack_tap *tap, unsigned flags)
{
	const struct link_loop_ops ops = { .fd = tap->fd, .rx = tap_rx };
	tap_polling = true;
	int rc = link_loop_poll(&tap->loop, &ops, tap, flags);
	tap_polling = false;
	return rc;
}

int ustack_tap_run_until(struct ustack_tap *tap, uint64_t deadline_us)
{
	return tap_loop(tap, deadline_us, false);
}

int ustack_tap_drain(struct ustack_tap *tap)
{
	return tap_loop(tap, UINT64_MAX, true);
}

int ustack_tap_run(struct ustack_tap *tap)
{
	int rc = ustack_tap_run_until(tap, UINT64_MAX);
	return rc < 0 ? -1 : 0;
}
