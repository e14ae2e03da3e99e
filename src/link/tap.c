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
 * the run loop), all feeding the one stack.  Each flow is kept on one queue both ways, as RSS
 * keeps a flow on one CPU: ustack writes a frame on the queue a symmetric hash of its
 * addresses and ports picks (tap_flow_queue), and a steering program of ustack's own
 * (TUNSETSTEERINGEBPF, tap_steering_load) makes the kernel pick the same queue for the frames
 * it sends us, the same hash computed on them.  Without it (a kernel that refuses the program)
 * tun's own steering applies (tun_automq_select_queue), which learns from our writes
 * (tun_flow_update) — but only up to 4,096 flows written within 3 s, and a flow quiet for 3 s
 * is forgotten, so that its next frames may come on another queue, out of order with the
 * last.  What runs in parallel is the reading of the queues; a write runs under the stack's
 * one lock (the stack transmits holding it), and with it the kernel's own processing of the
 * frame (tun_get_user hands it to the kernel's receive path in the writer's context).
 */
#include <ustack/link.h>
#include "link/loop.h"
#include "link/netem.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
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
 * the first) the thread that reads it.  The counters have a cache line of their own: tx_frames
 * is counted by whichever thread transmits. */
struct tap_queue {
	_Alignas(64) int fd;
	unsigned index;
	uint8_t *rxbuf; /* TAP_RX_BUF: received frames, until the burst is handed over */
	struct ustack_tap *tap;
	pthread_t thread;
	bool running; /* the thread was started (joined at close) */
	_Alignas(64) _Atomic uint64_t rx_frames, tx_frames;
};

struct ustack_tap {
	struct tap_queue *q; /* nq of them */
	unsigned nq;
	int qstop; /* eventfd: the queue threads end */
	int steering_fd; /* the steering program (tap_steering_load), or -1 */
	atomic_bool draining; /* ustack_tap_drain's loop: a burst on another queue wakes it */
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
 * was a pattern such as "tap%d"), and the virtio_net_hdr's size (the device's, set again by
 * each queue: harmless).  A device has one queue unless created with IFF_MULTI_QUEUE, which
 * every open must then say (tun_set_iff): one queue asked of a multi_queue device is opened
 * as one of its queues. */
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
		if (errno != EINVAL || multi || attempt) {
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
static void tap_steering_attach(struct ustack_tap *tap);
static void tap_steering_detach(struct ustack_tap *tap);

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
	tap->qstop = tap->steering_fd = -1;
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
	if (queues > 1)
		tap_steering_attach(tap);
	if (link_if_up(tap->name) < 0)
		goto fail;
	if (link_loop_init(&tap->loop) < 0)
		goto fail;
	return tap;
fail:;
	int e = errno;
	tap_steering_detach(tap);
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
	tap_steering_detach(tap);
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

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/*
 * The queue of a flow, either way: Fibonacci hashing of the XOR of its addresses and (TCP and
 * UDP, not a fragment) of its two ports, whose top bits pick the queue.  XOR makes it the same
 * for both directions, so that the steering program (below), computing it on the frames the
 * kernel sends us, finds the queue we write the flow on.  Fragments — any, the first too — are
 * hashed by their addresses alone, as the later ones carry no ports: a datagram's pieces then
 * go out and come in on one queue.  What is not IPv4 (ARP) goes on queue 0.  In host order:
 * the steering program's packet loads (BPF_ABS) convert to it.
 */
static unsigned tap_flow_queue(unsigned nq, const uint8_t *f, size_t len)
{
	if (nq == 1 || len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14] >> 4 != 4)
		return 0;
	const uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 15) * 4;
	uint32_t h = be32(ip + 12) ^ be32(ip + 16);
	bool frag = (be16(ip + 6) & 0x3fff) != 0; /* MF, or an offset */
	if ((ip[9] == 6 || ip[9] == 17) && !frag && len >= 14 + ihl + 4)
		h ^= be16(ip + ihl) ^ be16(ip + ihl + 2);
	h *= 0x9e3779b1u;
	return (unsigned)(((uint64_t)h * nq) >> 32);
}

/*
 * The steering program: tap_flow_queue in BPF, run by tun on each frame it sends us
 * (tun_ebpf_select_queue: its result modulo the queues), a socket filter reading the packet
 * relative to its network header (SKF_NET_OFF: BPF_ABS and BPF_IND loads, which return 0 from
 * the program if the packet is too short).  With it tun neither learns nor forgets flows: the
 * pairing is the hash's.  Spelt as the instruction set is (xdp.c's program: uapi has only the
 * opcodes).  r6 holds the packet (the loads' implicit operand), r7 the header length, r8 the
 * hash, r9 the ports.
 */
#define INSN(c, d, s_, o, i) { .code = (c), .dst_reg = (d), .src_reg = (s_), .off = (o), .imm = (i) }
static int tap_steering_load(unsigned nq)
{
	enum { R0, R1, R6 = 6, R7, R8, R9 };
	const int net = SKF_NET_OFF;
	const struct bpf_insn insns[] = {
		/* 0 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0),
		/* 1 */ INSN(BPF_ALU64 | BPF_MOV | BPF_K, R9, 0, 0, 0),
		/* 2: not IPv4 (skb->protocol, in network order): queue 0 */
		INSN(BPF_LDX | BPF_MEM | BPF_W, R0, R6, offsetof(struct __sk_buff, protocol), 0),
		/* 3 */ INSN(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 25, (int32_t)htons(ETH_P_IP)), /* -> 29 */
		/* 4: version and header length */
		INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, net + 0),
		/* 5 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0),
		/* 6 */ INSN(BPF_ALU64 | BPF_AND | BPF_K, R7, 0, 0, 15),
		/* 7 */ INSN(BPF_ALU64 | BPF_LSH | BPF_K, R7, 0, 0, 2),
		/* 8 */ INSN(BPF_ALU64 | BPF_RSH | BPF_K, R0, 0, 0, 4),
		/* 9 */ INSN(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 19, 4), /* -> 29 */
		/* 10: the addresses */
		INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, net + 12),
		/* 11 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, R8, R0, 0, 0),
		/* 12 */ INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, net + 16),
		/* 13 */ INSN(BPF_ALU64 | BPF_XOR | BPF_X, R8, R0, 0, 0),
		/* 14: a fragment, or neither TCP nor UDP: the addresses alone */
		INSN(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, net + 6),
		/* 15 */ INSN(BPF_JMP | BPF_JSET | BPF_K, R0, 0, 7, 0x3fff), /* -> 23 */
		/* 16 */ INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, net + 9),
		/* 17 */ INSN(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 1, IPPROTO_TCP), /* -> 19 */
		/* 18 */ INSN(BPF_JMP | BPF_JNE | BPF_K, R0, 0, 4, IPPROTO_UDP), /* -> 23 */
		/* 19: the ports, behind the header */
		INSN(BPF_LD | BPF_IND | BPF_H, 0, R7, 0, net + 0),
		/* 20 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, R9, R0, 0, 0),
		/* 21 */ INSN(BPF_LD | BPF_IND | BPF_H, 0, R7, 0, net + 2),
		/* 22 */ INSN(BPF_ALU64 | BPF_XOR | BPF_X, R9, R0, 0, 0),
		/* 23: the hash, its top bits scaled to the queues */
		INSN(BPF_ALU64 | BPF_XOR | BPF_X, R8, R9, 0, 0),
		/* 24 */ INSN(BPF_ALU | BPF_MUL | BPF_K, R8, 0, 0, (int32_t)0x9e3779b1u),
		/* 25 */ INSN(BPF_ALU64 | BPF_MUL | BPF_K, R8, 0, 0, (int32_t)nq),
		/* 26 */ INSN(BPF_ALU64 | BPF_RSH | BPF_K, R8, 0, 0, 32),
		/* 27 */ INSN(BPF_ALU64 | BPF_MOV | BPF_X, R0, R8, 0, 0),
		/* 28 */ INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		/* 29: queue 0 */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0),
		/* 30 */ INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	return bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "ustack_tapq", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), NULL);
}

/* The program on the device (one ioctl on any queue: tun_set_ebpf, the device's), or, if the
 * kernel refuses it (no CAP_BPF, say), tun's own steering: the file's comment. */
static void tap_steering_attach(struct ustack_tap *tap)
{
	int fd = tap_steering_load(tap->nq);
	if (fd >= 0 && ioctl(tap->q[0].fd, TUNSETSTEERINGEBPF, &fd) == 0) {
		tap->steering_fd = fd;
		return;
	}
	if (fd >= 0)
		close(fd);
}

/* Before the queues' descriptors close: a persistent device keeps its program otherwise (tun
 * lets it go only with the device), and the next to open it would have frames steered by ours. */
static void tap_steering_detach(struct ustack_tap *tap)
{
	if (tap->steering_fd < 0)
		return;
	int none = -1;
	(void)ioctl(tap->q[0].fd, TUNSETSTEERINGEBPF, &none); /* nothing to do if refused */
	close(tap->steering_fd);
	tap->steering_fd = -1;
}

int ustack_tap_steering(const struct ustack_tap *tap)
{
	return tap->steering_fd >= 0;
}

/* A TAP write takes one whole frame or fails; EAGAIN means the kernel's queue is full,
 * which the stack treats as a drop, like a full NIC ring. */
static int tap_write(struct ustack_tap *tap, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	struct tap_queue *q = &tap->q[tap_flow_queue(tap->nq, frame, len)];
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
	unsigned n = 0, delayed = 0, handed = 0, got = 0;
	size_t off = 0;
	for (int k = 0; k < 256; k++) {
		if (n == TAP_RX_BATCH || TAP_RX_BUF - off < most) {
			handed += n;
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
		got++;
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
	handed += n;
	/* a queue has one reader at a time (its thread; queue 0's rx_taken), so a plain add once
	 * a burst, not a locked one a frame */
	if (got)
		atomic_store_explicit(&q->rx_frames, atomic_load_explicit(&q->rx_frames, memory_order_relaxed) + got,
				      memory_order_relaxed);
	/* the run loop delivers them when due, and may be asleep (unless this is the loop); and
	 * a drain ends when the last ACK is in, which the loop learns only when it wakes */
	if ((delayed && (tap_polling || q->index)) || (q->index && handed && atomic_load(&tap->draining)))
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
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			return NULL; /* ustack_tap_close */
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break; /* the device is gone (tun_chr_poll: EPOLLERR once it is deleted) */
		if (p[0].revents & POLLIN)
			tap_rx_queue(q);
	}
	/* No one reads this queue from now on: take it out of the device's set (tun_detach),
	 * so that tun spreads its flows over the others rather than queueing them here. */
	struct ifreq ifr = { .ifr_flags = IFF_DETACH_QUEUE };
	(void)ioctl(q->fd, TUNSETQUEUE, &ifr); /* refused once the device is gone: nothing to detach */
	return NULL;
}

/* The queue threads, with the program's signals blocked (its handlers run on its own threads);
 * on failure the ones started are stopped. */
static int tap_queues_start(struct ustack_tap *tap)
{
	sigset_t all, old;
	sigfillset(&all);
	/* but a fault in one is the program's to handle (its crash handler, as the preload
	 * leaves these open in its own threads) */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
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
	atomic_store(&tap->draining, drain);
	int rc = link_loop_run(&tap->loop, &ops, tap, deadline_us, drain);
	atomic_store(&tap->draining, false);
	return rc;
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
