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
 *
 * Queues (IFF_MULTI_QUEUE, ustack_tap_open_queues), what a multi-queue virtio NIC gives a
 * guest with several vCPUs: a descriptor a queue, each read by a thread of its own (queue 0 by
 * the run loop), all feeding the one stack.  The kernel's tun driver picks the queue of each
 * frame it sends us by flow (tun_automq_select_queue): the queue on which the flow was last
 * written by us (tun_flow_update, a table keyed by the frame's symmetric hash that forgets a
 * flow after 3 s without a write), or, for a flow it has not seen, its hash spread over the
 * queues.  So ustack writes each flow on one queue, chosen by a hash of its addresses and
 * ports, and the flow's frames come back on that queue: its reads and writes stay on one
 * thread, as RSS keeps a flow on one CPU, and a flow moves only if the kernel forgets it — a
 * moment when two of its frames may be handed to the stack out of order, which tun's own
 * comment accepts ("a very small possibility of OOO during switching").  The stack's lock is
 * still one: what runs in parallel is the device's side, the reads and the kernel's work
 * behind each write and read.
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define ETH_FRAME_MAX (14 + 4 + 65535) /* Ethernet (a VLAN tag), then a whole IPv4 packet */
#define TAP_RX_BATCH 32                 /* frames handed to the stack at once */
#define TAP_RX_BUF (512u << 10)         /* where they wait: 32 of 1500 bytes, or 7 of 64 KB */

/* One queue of the device: its descriptor, where its received frames wait, and (queues past
 * the first) the thread that reads it.  A cache line of its own for its counters. */
struct tap_queue {
	_Alignas(64) int fd;
	unsigned index;
	uint8_t *rxbuf; /* TAP_RX_BUF: received frames, until the burst is handed over */
	struct ustack_tap *tap;
	pthread_t thread;
	bool running; /* the thread was started (joined at close) */
	_Atomic uint64_t rx_frames, tx_frames;
};

struct ustack_tap {
	struct tap_queue *q; /* nq of them */
	unsigned nq;
	int qstop; /* eventfd: the queue threads end */
	struct link_loop loop;
	bool vnet_hdr; /* every frame each way behind a virtio_net_hdr */
	bool offload;  /* ... and TSO/checksum offloads on (not while impaired) */
	char name[IFNAMSIZ];
	struct ustack *st;
	int ifindex;
	/* optional impairment of the wire, each way (ustack_tap_impair) */
	bool impaired;
	pthread_mutex_t mu;
	struct netem em;
	struct netem_queue rxq, txq;
};

/* One queue's descriptor: TUNSETIFF on the device (the name the first got, if the caller's
 * was a pattern such as "tap%d"), and the virtio_net_hdr's size.  A device has one queue
 * unless created with IFF_MULTI_QUEUE, which every open must then say (tun_set_iff): one
 * queue asked of a multi_queue device is opened as one of its queues. */
static int tap_queue_open(struct ustack_tap *tap, const char *name, bool multi)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	short flags = (short)(IFF_TAP | IFF_NO_PI | (tap->vnet_hdr ? IFF_VNET_HDR : 0));
	for (int attempt = 0; attempt < 2; attempt++) {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = (short)(flags | (multi ? IFF_MULTI_QUEUE : 0));
		memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
		if (ioctl(fd, TUNSETIFF, &ifr) == 0)
			break;
		if (errno != EINVAL || multi || tap->nq > 1 || attempt) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		multi = true; /* one queue of a multi_queue device */
	}
	int hsz = (int)sizeof(struct virtio_net_hdr);
	if (tap->vnet_hdr && ioctl(fd, TUNSETVNETHDRSZ, &hsz) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	memcpy(tap->name, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

static int tap_queues_start(struct ustack_tap *tap);
static void tap_queues_stop(struct ustack_tap *tap);

struct ustack_tap *ustack_tap_open(const char *name)
{
	return ustack_tap_open_queues(name, 1);
}

struct ustack_tap *ustack_tap_open_queues(const char *name, unsigned queues)
{
	if (!name || strlen(name) >= IFNAMSIZ || queues < 1 || queues > USTACK_TAP_QUEUES_MAX) {
		errno = EINVAL;
		return NULL;
	}
	struct ustack_tap *tap = calloc(1, sizeof(*tap));
	if (!tap)
		return NULL;
	tap->qstop = -1;
	tap->q = aligned_alloc(64, queues * sizeof(*tap->q));
	if (!tap->q) {
		free(tap);
		return NULL;
	}
	memset(tap->q, 0, queues * sizeof(*tap->q));
	for (unsigned i = 0; i < queues; i++)
		tap->q[i].fd = -1;
	const char *off = getenv("USTACK_TAP_OFFLOAD");
	tap->vnet_hdr = !off || strcmp(off, "off") != 0;
	tap->qstop = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (tap->qstop < 0)
		goto fail;
	for (unsigned i = 0; i < queues; i++) {
		struct tap_queue *q = &tap->q[i];
		q->index = i;
		q->tap = tap;
		q->rxbuf = malloc(TAP_RX_BUF);
		if (!q->rxbuf)
			goto fail;
		q->fd = tap_queue_open(tap, i ? tap->name : name, queues > 1);
		tap->nq = i + 1; /* what close must undo */
		if (q->fd < 0)
			goto fail;
	}
	if (link_if_up(tap->name) < 0)
		goto fail;
	if (link_loop_init(&tap->loop) < 0)
		goto fail;
	return tap;
fail:;
	int e = errno;
	for (unsigned i = 0; i < tap->nq; i++) {
		if (tap->q[i].fd >= 0)
			close(tap->q[i].fd);
		free(tap->q[i].rxbuf);
	}
	if (tap->qstop >= 0)
		close(tap->qstop);
	free(tap->q);
	free(tap);
	errno = e;
	return NULL;
}

void ustack_tap_close(struct ustack_tap *tap)
{
	if (!tap)
		return;
	tap_queues_stop(tap);
	if (tap->impaired) {
		netem_fini(&tap->em);
		pthread_mutex_destroy(&tap->mu);
	}
	for (unsigned i = 0; i < tap->nq; i++) {
		close(tap->q[i].fd);
		free(tap->q[i].rxbuf);
	}
	close(tap->qstop);
	link_loop_fini(&tap->loop);
	free(tap->q);
	free(tap);
}

int ustack_tap_fd(const struct ustack_tap *tap)
{
	return tap->q[0].fd;
}

unsigned ustack_tap_queues(const struct ustack_tap *tap)
{
	return tap->nq;
}

int ustack_tap_queue_stats(const struct ustack_tap *tap, unsigned q, struct ustack_tap_queue_stats *out)
{
	if (!tap || !out || q >= tap->nq) {
		errno = EINVAL;
		return -1;
	}
	out->rx_frames = atomic_load_explicit(&tap->q[q].rx_frames, memory_order_relaxed);
	out->tx_frames = atomic_load_explicit(&tap->q[q].tx_frames, memory_order_relaxed);
	return 0;
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

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * The queue a frame goes out on, and so the one its flow's frames come back on (the file's
 * comment): a hash of its addresses and, for TCP and UDP (not a fragment past the first), its
 * ports; queue 0 for what is not IPv4 (ARP).  Any hash that keeps a flow on one queue would
 * do — the kernel learns the pairing from our writes rather than computing ours — so this is
 * Fibonacci hashing of the XOR of the four, whose top bits pick the queue.
 */
static unsigned tap_tx_queue(const struct ustack_tap *tap, const uint8_t *f, size_t len)
{
	if (tap->nq == 1 || len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return 0;
	const uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	uint32_t h = load32(ip + 12) ^ load32(ip + 16);
	bool first = !((ip[6] & 0x1f) | ip[7]); /* fragment offset 0 */
	if ((ip[9] == 6 || ip[9] == 17) && first && ihl >= 20 && len >= 14 + ihl + 4)
		h ^= load32(ip + ihl); /* both ports */
	h *= 0x9e3779b1u;
	return (unsigned)(((uint64_t)h * tap->nq) >> 32);
}

/* A TAP write takes one whole frame or fails; EAGAIN means the kernel's queue is full,
 * which the stack treats as a drop, like a full NIC ring. */
static int tap_write(struct ustack_tap *tap, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	struct tap_queue *q = &tap->q[tap_tx_queue(tap, frame, len)];
	if (!tap->vnet_hdr) {
		ssize_t n = write(q->fd, frame, len);
		if (n != (ssize_t)len)
			return -1;
		atomic_fetch_add_explicit(&q->tx_frames, 1, memory_order_relaxed);
		return 0;
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
	ssize_t n = writev(q->fd, iov, 2);
	if (n != (ssize_t)(sizeof(h) + len))
		return -1;
	atomic_fetch_add_explicit(&q->tx_frames, 1, memory_order_relaxed);
	return 0;
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
	if (tap->st) {
		errno = EBUSY; /* once */
		return -1;
	}
	/* offloads, unless the wire is impaired: netem holds frames of the MTU.  They are the
	 * device's features (tun_set_offload): one ioctl, on any of its queues. */
	int fd = tap->q[0].fd;
	tap->offload = tap->vnet_hdr && !tap->impaired &&
		       ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0;
	if (tap->vnet_hdr && !tap->offload && ioctl(fd, TUNSETOFFLOAD, 0ul) < 0)
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
	if (tap_queues_start(tap) < 0)
		return -1;
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
static void tap_rx_queue(struct tap_queue *q)
{
	struct ustack_tap *tap = q->tap;
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
		uint8_t *frame = q->rxbuf + off;
		ssize_t len = read(q->fd, frame, most);
		if (len <= (ssize_t)hs)
			break;
		if ((size_t)len > most)
			continue; /* tun_put_user cut it to our buffer and said how long it was */
		atomic_fetch_add_explicit(&q->rx_frames, 1, memory_order_relaxed);
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
	/* the run loop delivers them when due, and may be asleep (unless this is the loop) */
	if (delayed && (tap_polling || q->index))
		link_loop_kick(&tap->loop);
}

/* Queue 0's burst, the run loop's and an application's (link_loop_ops.rx) */
static void tap_rx(void *arg)
{
	struct ustack_tap *tap = arg;
	tap_rx_queue(&tap->q[0]);
}

/* A queue past the first: its frames as they come, until ustack_tap_close.  Timers are the
 * run loop's; a timer armed here wakes it (ustack_set_wakeup). */
static void *tap_queue_thread(void *arg)
{
	struct tap_queue *q = arg;
	struct pollfd p[2] = { { .fd = q->fd, .events = POLLIN }, { .fd = q->tap->qstop, .events = POLLIN } };
	for (;;) {
		int n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents)
			break;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break; /* the device is gone (tun_chr_poll: EPOLLERR once it is deleted) */
		if (p[0].revents & POLLIN)
			tap_rx_queue(q);
	}
	return NULL;
}

/* The queue threads, with every signal blocked (a program's handlers run on its own threads,
 * as with the kernel's softirqs); on failure the ones started are stopped. */
static int tap_queues_start(struct ustack_tap *tap)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = 0;
	for (unsigned i = 1; i < tap->nq && !err; i++) {
		err = pthread_create(&tap->q[i].thread, NULL, tap_queue_thread, &tap->q[i]);
		tap->q[i].running = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		return 0;
	tap_queues_stop(tap);
	errno = err;
	return -1;
}

static void tap_queues_stop(struct ustack_tap *tap)
{
	uint64_t one = 1;
	ssize_t r = write(tap->qstop, &one, sizeof(one)); /* once: the threads only poll it */
	(void)r;
	for (unsigned i = 1; i < tap->nq; i++)
		if (tap->q[i].running)
			pthread_join(tap->q[i].thread, NULL);
	for (unsigned i = 1; i < tap->nq; i++)
		tap->q[i].running = false;
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
	const struct link_loop_ops ops = { .fd = tap->q[0].fd, .rx = tap_rx, .due = tap_due, .next = tap_next_wakeup };
	return link_loop_run(&tap->loop, &ops, tap, deadline_us, drain);
}

/* An application thread's burst (link_loop_poll). */
int ustack_tap_poll(struct ustack_tap *tap, unsigned flags)
{
	const struct link_loop_ops ops = { .fd = tap->q[0].fd, .rx = tap_rx };
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
