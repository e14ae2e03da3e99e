/*
 * The AF_XDP driver: ustack owns one queue of a real (or veth) interface, as a DPDK
 * application owns a NIC, through an XDP socket (Documentation/networking/af_xdp.rst).
 *
 * The shape.  One UMEM, an mmap'd area of 4096-byte frames registered with the kernel, holds
 * every frame either way.  Four rings of descriptors join it to the kernel: the fill ring
 * (frames ustack lends the kernel to receive into), the RX ring (frames received), the TX
 * ring (frames to send) and the completion ring (sent frames given back).  The first half of
 * the frames circulate fill → RX → fill, the second half are the TX pool: TX → completion →
 * pool.  Each ring has one producer and one consumer, so no lock is needed as long as each
 * side of each ring stays on one thread:
 *   - fill and RX: one thread at a time (xdp_rx): the run loop's, or an application thread's
 *     poll (ustack_xdp_poll; the loop's rx_taken lets one in);
 *   - TX and completion: ustack's xmit, called under the stack's lock (any thread);
 *   - the kick that tells the kernel to send (sendto) may come from any thread: it reads no
 *     ring of ours, and the kernel serialises it (xs->mutex).
 *
 * Received frames are handed to the stack where the kernel put them, in the UMEM, up to 64 at
 * a time under one hold of its lock (ustack_input_burst): no copy between ring and stack (the
 * stack copies payload into a socket's queue, as Linux's TCP does on recvmsg), then the
 * frames go back on the fill ring.  A sent frame is copied once into a UMEM frame, the DMA a
 * NIC would do.  Kicks are batched: xmit only puts frames on the TX ring, and the stack's
 * doorbell, rung once as it releases its lock, kicks once for all of them (a short kick
 * before the release, a long one after: xdp_doorbell); on the run loop's own thread the kick
 * waits for the end of its turn (and on an application thread's, for the end of its poll),
 * so a burst of received segments and the timers are answered by one sendto().
 * xsk_generic_xmit takes max_tx_budget frames per call, raised to the ring's size where the
 * kernel allows (XDP_MAX_TX_SKB_BUDGET, Linux 6.17); a burst of 64 is kicked as it goes.
 *
 * The XDP program is ustack's own, six instructions: redirect every frame of the queue to
 * the socket in an XSKMAP, or pass it to the kernel when there is none
 * (bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)).  It is attached by a BPF link,
 * so it goes with the process however the process ends: a crashed ustack leaves no program
 * behind to black-hole the interface.  Native mode (the driver runs it, veth included) is
 * tried first, generic (skb) mode after, unless the caller chose one.  veth has no
 * zero-copy mode: the kernel copies into the UMEM (XDP_COPY), which is what is measured.
 *
 * Checksums: AF_XDP's receive side carries no checksum state, so frames from a local sender
 * whose checksum was left to "hardware" (CHECKSUM_PARTIAL: Linux over veth, `ethtool -k`
 * tx-checksumming on) arrive with a partial sum and are dropped as bad (TcpInCsumErrors).  The
 * peer of a veth must therefore send complete checksums: `ethtool -K PEER tx off`, as the
 * tests do.  The send side has TX metadata (Linux 6.8, turned on by XDP_UMEM_TX_METADATA_LEN
 * in 6.11): a request in front of a frame's data, which in copy mode xsk_build_skb turns into
 * a CHECKSUM_PARTIAL skb.  So TCP leaves its checksums to the kernel (USTACK_IF_CSUM):
 * completed by the device, or in software by validate_xmit_skb for one without checksum
 * offload, and trusted as a local sender's by a veth's peer — neither ustack nor the peer
 * reads the payload to sum it (ustack -> Linux at 64 KB frames: README's figures).  TSO
 * and GRO do not arise: attaching XDP to a veth turns the peer's GSO off (veth_xdp_set).
 *
 * Jumbo frames.  With GSO gone, what is left to make each frame carry more is the MTU.  A
 * frame larger than a UMEM frame needs multi-buffer AF_XDP (XDP_USE_SG, Linux 6.6): it comes
 * and goes as a chain of descriptors, each but the last marked XDP_PKT_CONTD, and the XDP
 * program must say it takes such frames (BPF_F_XDP_HAS_FRAGS), which is also what lets a veth
 * raise its MTU past a page.  Both are asked for when the interface's MTU needs them, and
 * fallen back from; ustack's MTU defaults to the interface's (ustack_xdp_mtu).  The frames
 * lent for receiving are laid out so that a chain's parts lie end to end, and the stack
 * takes it in place (xdp_rx_data).  At 64 KB a frame costs the per-frame work of a TSO
 * packet, and the copies are what remains (bench/xdp.sh; README's figures).
 */
#include <ustack/link.h>
#include "link/loop.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9 /* Linux 6.17's if_xdp.h */
#endif

/* Multi-buffer AF_XDP (Linux 6.6; Debian 12's if_xdp.h predates it) */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

/* TX metadata (Linux 6.8; the flag that turns it on, 6.11): a request in front of a sent
 * frame's data, here for checksum offload (Documentation/networking/xsk-tx-metadata.rst) */
#ifndef XDP_UMEM_TX_METADATA_LEN
#define XDP_UMEM_TX_METADATA_LEN (1 << 2)
#endif
#ifndef XDP_TX_METADATA
#define XDP_TX_METADATA (1 << 1)
#endif
#ifndef XDP_TXMD_FLAGS_CHECKSUM
#define XDP_TXMD_FLAGS_CHECKSUM (1 << 1)
#endif
/* the kernel's struct xdp_umem_reg since 6.8, with tx_metadata_len */
struct xdp_umem_reg_md {
	uint64_t addr, len;
	uint32_t chunk_size, headroom, flags, tx_metadata_len;
};
/* the kernel's struct xsk_tx_metadata: flags, then the request (or, once sent, the completion) */
struct xdp_tx_md {
	uint64_t flags;
	uint16_t csum_start, csum_offset;
	uint32_t pad;
	uint64_t launch_time;
};
#define XDP_TX_MD_LEN ((uint32_t)sizeof(struct xdp_tx_md)) /* 24: a multiple of 8, as required */

#define XDP_FRAME_SIZE 4096u       /* XSK_UMEM__DEFAULT_FRAME_SIZE: one page a frame */
/* The most descriptors one packet spans: a copy-mode socket's skb holds its first in the
 * linear part and the rest as page fragments, MAX_SKB_FRAGS (17) of them (xsk_build_skb) */
#define XDP_PKT_DESCS_MAX 18u
/* The MTU one UMEM frame carries: the frame less the kernel's XDP headroom, an Ethernet header
 * and a VLAN tag (what a single-buffer XDP program allows a veth too) */
#define XDP_FRAME_MTU_MAX (XDP_FRAME_SIZE - XDP_PACKET_HEADROOM - 18u)
/* What the kernel copies into each UMEM frame of a received chain but the last: the frame
 * less its XDP headroom (__xsk_rcv fills every part to xsk_pool_get_rx_frame_size) */
#define XDP_RX_PART (XDP_FRAME_SIZE - XDP_PACKET_HEADROOM - XSK_UMEM__DEFAULT_FRAME_HEADROOM)
#define XDP_RING_SIZE 4096u        /* each of the four rings */
#define XDP_RX_BURST 64u           /* frames taken per wake-up: timers are never starved */
/* descriptors looked at per wake-up: a burst of frames of up to four parts each (a 16 KB MTU;
 * larger frames make shorter bursts) */
#define XDP_RX_DESCS (4u * XDP_RX_BURST)
#define XDP_TX_KICK_BATCH 64u      /* descriptors on the TX ring before a kick, mid-turn */
#define XDP_KICK_TRIES 64          /* sendto() calls per kick, EAGAIN each */
/* descriptors waiting (eight 1500-byte frames, half a 64 KB one) past which an application
 * thread kicks only once it has released the stack's lock (xdp_doorbell) */
#define XDP_KICK_LONG 8u

struct ustack_xdp {
	struct link_loop loop;
	char name[IF_NAMESIZE];
	unsigned ifindex_dev; /* the kernel's */
	unsigned queue, flags;
	bool native, zerocopy;
	bool sg; /* multi-buffer (XDP_USE_SG): a frame may span several UMEM frames */
	bool unaligned; /* the UMEM's frames may start anywhere (XDP_UMEM_UNALIGNED_CHUNK_FLAG) */
	uint32_t rx_stride; /* bytes between the frames lent for receiving (xdp_rx_data) */
	uint32_t tx_descs_max; /* descriptors a sent frame may span */
	uint8_t *gather; /* a burst's multi-buffer frames, made contiguous for the stack */
	/* the UMEM and its rings (xdp_bind) */
	uint8_t *area;
	size_t area_size;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	void *ring_map[4]; /* fill, completion, RX, TX: each ring's mapping */
	size_t ring_len[4];
	int fd;
	/* TX metadata: every sent frame's data starts tx_off bytes into its UMEM frame, behind
	 * room for a struct xdp_tx_md (0: the kernel has none) */
	uint32_t tx_off;
	bool tx_csum; /* metadata in copy mode: TCP's checksums left to the kernel (ustack_xdp_open) */
	/* the TX pool: frames not on the TX or completion ring (under the stack's lock) */
	uint64_t *tx_free;
	uint32_t tx_nfree;
	atomic_uint tx_pending; /* on the TX ring, not yet kicked */
	atomic_int tx_kicking;  /* a thread is in xdp_kick's sendto() */
	/* the XDP program, its map, and the BPF link that attaches it */
	int map_fd, prog_fd, link_fd;
	/* ustack's side */
	struct ustack *st;
	int ifindex;
	/* counted by the driver (the kernel's own are in XDP_STATISTICS) */
	atomic_uint_fast64_t rx_frames, rx_oversize, rx_gathered, tx_frames, tx_no_frame, tx_kick_errors, tx_csum_frames;
};

/* The run loop's thread during its turn, or an application thread during its poll: frames
 * it sends are kicked once at the end. */
static __thread struct ustack_xdp *xdp_batching;

/*
 * Where received frames land.  A jumbo frame comes as a chain of UMEM frames, and the kernel
 * fills every part but the last to the brim: XDP_RX_PART bytes after the frame's XDP headroom
 * (__xsk_rcv copies the packet into one xsk_buff after another, each to
 * xsk_pool_get_rx_frame_size).  The parts take the fill ring's entries in turn.  So the
 * frames lent for receiving are spaced XDP_RX_PART apart rather than a UMEM frame apart
 * (rx_stride), which an unaligned UMEM allows (XDP_UMEM_UNALIGNED_CHUNK_FLAG: a frame may
 * start anywhere), and are lent back in the order they came: one part's data then ends where
 * the next part's begins, the next frame's headroom lying under the last XDP_PACKET_HEADROOM
 * bytes of this one's — headroom the kernel's copy never writes (ustack's XDP program adds no
 * metadata).  A chain is then one run of bytes, handed to the stack in place (xdp_rx) instead
 * of being copied together; only a chain that wraps from the last frame of the region to the
 * first is copied (rx_gathered).  Copy mode only: a zero-copy driver DMAs into the frames, and
 * a frame across two pages needs the pages contiguous (xp_desc_crosses_non_contig_pg).
 *
 * In an unaligned UMEM the kernel writes a received frame's address as its UMEM frame's
 * start, with the offset of the data in the top 16 bits (xp_get_handle); in an aligned one,
 * as the data's address.
 */
static inline uint8_t *xdp_rx_data(const struct ustack_xdp *x, uint64_t addr)
{
	return x->area + xsk_umem__add_offset_to_addr(addr);
}

/* The UMEM frame a received descriptor's data is in, to lend back. */
static inline uint64_t xdp_rx_frame(const struct ustack_xdp *x, uint64_t addr)
{
	return x->unaligned ? xsk_umem__extract_addr(addr) : addr & ~(uint64_t)(XDP_FRAME_SIZE - 1);
}

/* The program, as the BPF instruction set spells it (kernel's include/linux/filter.h has the
 * macros; uapi has only the opcodes). */
static int xdp_prog_load(int map_fd, bool frags)
{
	const struct bpf_insn insns[] = {
		/* r2 = ctx->rx_queue_index */
		{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
		  .off = offsetof(struct xdp_md, rx_queue_index) },
		/* r1 = &xsks (a 64-bit immediate: two instructions) */
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
		{ .code = 0 },
		/* r3 = XDP_PASS: the action when the queue has no socket */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS },
		/* r0 = bpf_redirect_map(r1, r2, r3) */
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	/* frags: the program takes multi-buffer frames (it reads nothing of the frame), so the
	 * driver may hand it frames larger than a page: veth then allows the peer an MTU of up to
	 * 17 pages more (veth_xdp_set) */
	LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_flags = frags ? BPF_F_XDP_HAS_FRAGS : 0);
	return bpf_prog_load(BPF_PROG_TYPE_XDP, "ustack_xsk", "GPL", insns, sizeof(insns) / sizeof(insns[0]), &o);
}

/* Attaches the program to the device by a BPF link: native first unless told. */
static int xdp_attach_prog(struct ustack_xdp *x)
{
	x->map_fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "ustack_xsks", 4, 4, x->queue + 1, NULL);
	if (x->map_fd < 0)
		return -1;
	if (bpf_map_update_elem(x->map_fd, &x->queue, &x->fd, 0) < 0)
		return -1;
	x->prog_fd = xdp_prog_load(x->map_fd, x->sg);
	if (x->prog_fd < 0)
		return -1;
	int err = 0;
	if (!(x->flags & USTACK_XDP_SKB)) {
		LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_DRV_MODE);
		x->link_fd = bpf_link_create(x->prog_fd, (int)x->ifindex_dev, BPF_XDP, &o);
		if (x->link_fd >= 0) {
			x->native = true;
			return 0;
		}
		err = errno;
		if (x->flags & USTACK_XDP_NATIVE || err == EBUSY || err == EEXIST)
			return -1; /* asked for native; or the device has a program already */
	}
	LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_SKB_MODE);
	x->link_fd = bpf_link_create(x->prog_fd, (int)x->ifindex_dev, BPF_XDP, &o);
	if (x->link_fd < 0 && err)
		errno = err; /* the native mode's reason is the more telling */
	return x->link_fd < 0 ? -1 : 0;
}

/* The socket, its rings and its UMEM let go (a bind to redo, or the end). */
static void xdp_unbind(struct ustack_xdp *x)
{
	for (int i = 0; i < 4; i++) {
		if (x->ring_map[i])
			munmap(x->ring_map[i], x->ring_len[i]);
		x->ring_map[i] = NULL;
	}
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

/* Ring `i` (fill, completion, RX, TX) mapped and described for libxdp's inline ring functions,
 * as its xsk_umem__create and xsk_socket__create describe theirs: a producer's cached_cons
 * runs a ring ahead of the consumer, the room it starts with.  0, or -1 with errno. */
static int xdp_ring_map(struct ustack_xdp *x, int i, const struct xdp_ring_offset *off, void *ring)
{
	static const off_t pgoff[4] = { XDP_UMEM_PGOFF_FILL_RING, XDP_UMEM_PGOFF_COMPLETION_RING, XDP_PGOFF_RX_RING,
					XDP_PGOFF_TX_RING };
	size_t entry = i < 2 ? sizeof(uint64_t) : sizeof(struct xdp_desc);
	x->ring_len[i] = off->desc + XDP_RING_SIZE * entry;
	void *m = mmap(NULL, x->ring_len[i], PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x->fd, pgoff[i]);
	if (m == MAP_FAILED)
		return -1;
	x->ring_map[i] = m;
	struct xsk_ring_prod r = {
		.mask = XDP_RING_SIZE - 1, .size = XDP_RING_SIZE,
		.producer = (uint32_t *)((uint8_t *)m + off->producer),
		.consumer = (uint32_t *)((uint8_t *)m + off->consumer),
		.ring = (uint8_t *)m + off->desc, .flags = (uint32_t *)((uint8_t *)m + off->flags),
	};
	r.cached_prod = *r.producer;
	r.cached_cons = *r.consumer + (i == 0 || i == 3 ? XDP_RING_SIZE : 0);
	memcpy(ring, &r, sizeof(r)); /* xsk_ring_cons is the same struct under another name */
	return 0;
}

/*
 * The UMEM and the socket bound to the queue: multi-buffer if want_sg (and the kernel has it),
 * the UMEM unaligned if asked (xdp_rx_data), with room for TX metadata if tx_md and the kernel
 * has it (Linux 6.11; XDP_UMEM_REG refuses the flag before).  ustack makes these itself, as
 * libxdp's xsk_umem__create and xsk_socket__create would, because Debian's libxdp (1.3) has
 * no way to ask for TX metadata.  0, or -1 with errno.
 */
static int xdp_bind(struct ustack_xdp *x, const struct ustack_xdp_config *cfg, bool want_sg, bool unaligned,
		    bool tx_md)
{
	x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (x->fd < 0)
		return -1;
	struct xdp_umem_reg_md mr = {
		.addr = (uint64_t)(uintptr_t)x->area, .len = x->area_size, .chunk_size = XDP_FRAME_SIZE,
		.headroom = XSK_UMEM__DEFAULT_FRAME_HEADROOM,
		.flags = (unaligned ? XDP_UMEM_UNALIGNED_CHUNK_FLAG : 0) | (tx_md ? XDP_UMEM_TX_METADATA_LEN : 0),
		.tx_metadata_len = tx_md ? XDP_TX_MD_LEN : 0,
	};
	int rc = setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr));
	if (rc < 0 && tx_md && errno == EINVAL) { /* a kernel before 6.11: without */
		tx_md = false;
		mr.flags &= ~(uint32_t)XDP_UMEM_TX_METADATA_LEN;
		mr.tx_metadata_len = 0;
		rc = setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &mr, sizeof(mr));
	}
	if (rc < 0)
		goto fail;
	static const int ring_opt[4] = { XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING };
	for (int i = 0; i < 4; i++) {
		unsigned n = XDP_RING_SIZE;
		if (setsockopt(x->fd, SOL_XDP, ring_opt[i], &n, sizeof(n)) < 0)
			goto fail;
	}
	struct xdp_mmap_offsets off;
	socklen_t olen = sizeof(off);
	if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &olen) < 0)
		goto fail;
	if (xdp_ring_map(x, 0, &off.fr, &x->fill) < 0 || xdp_ring_map(x, 1, &off.cr, &x->comp) < 0 ||
	    xdp_ring_map(x, 2, &off.rx, &x->rx) < 0 || xdp_ring_map(x, 3, &off.tx, &x->tx) < 0)
		goto fail;
	/* copy mode in generic XDP; else the kernel's choice, zero-copy where the driver can.
	 * Multi-buffer (XDP_USE_SG) only for an interface whose MTU is past one UMEM frame: a
	 * driver with zero-copy but without zero-copy multi-buffer falls back to copy mode when
	 * asked for it (xp_assign_dev), which a 1500-byte MTU would pay for nothing.  A kernel
	 * before 6.6 refuses the flag (EINVAL): then without, and the MTU stays what one UMEM
	 * frame holds (ustack_xdp_mtu, ustack_xdp_attach).
	 * EBUSY: the queue has a socket, or had one a moment ago: a closed socket's UMEM is
	 * released by a kernel work item (xp_release_deferred), so the queue of a process that
	 * has just exited stays taken for a little while.  Bounded: 100 tries, 10 ms apart.  A
	 * failed bind leaves the socket unbound (xsk_bind), free to try again. */
	struct sockaddr_xdp sxdp = {
		.sxdp_family = AF_XDP, .sxdp_ifindex = x->ifindex_dev, .sxdp_queue_id = x->queue,
		.sxdp_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | (cfg->flags & USTACK_XDP_SKB ? XDP_COPY : 0) |
					 (want_sg ? XDP_USE_SG : 0)),
	};
	for (int tries = 0;; tries++) {
		rc = bind(x->fd, (const struct sockaddr *)&sxdp, sizeof(sxdp));
		if (rc < 0 && (errno == EINVAL || errno == EOPNOTSUPP) && sxdp.sxdp_flags & XDP_USE_SG) {
			sxdp.sxdp_flags &= (uint16_t)~XDP_USE_SG;
			continue;
		}
		if (rc == 0 || errno != EBUSY || tries == 100)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	if (rc < 0)
		goto fail;
	x->sg = sxdp.sxdp_flags & XDP_USE_SG;
	x->unaligned = unaligned;
	struct xdp_options opts;
	olen = sizeof(opts);
	x->zerocopy = getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &opts, &olen) == 0 && opts.flags & XDP_OPTIONS_ZEROCOPY;
	x->tx_off = tx_md ? XDP_TX_MD_LEN : 0;
	return 0;
fail:;
	int err = errno;
	xdp_unbind(x);
	errno = err;
	return -1;
}

struct ustack_xdp *ustack_xdp_open(const struct ustack_xdp_config *cfg)
{
	if (!cfg || !cfg->ifname || !*cfg->ifname || strlen(cfg->ifname) >= IF_NAMESIZE ||
	    (cfg->flags & ~(USTACK_XDP_SKB | USTACK_XDP_NATIVE | USTACK_XDP_BUSY_POLL)) ||
	    (cfg->flags & USTACK_XDP_SKB && cfg->flags & USTACK_XDP_NATIVE) || cfg->queue > 1023) {
		errno = EINVAL;
		return NULL;
	}
	unsigned ifindex = if_nametoindex(cfg->ifname);
	if (!ifindex) {
		errno = ENODEV;
		return NULL;
	}
	struct ustack_xdp *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->fd = x->map_fd = x->prog_fd = x->link_fd = -1;
	x->loop.stopfd = x->loop.kickfd = -1;
	snprintf(x->name, sizeof(x->name), "%s", cfg->ifname);
	x->ifindex_dev = ifindex;
	x->queue = cfg->queue;
	x->flags = cfg->flags;
	int err;
	if (link_loop_init(&x->loop) < 0 || link_if_up(x->name) < 0)
		goto fail;
	/* two rings' worth of frames: the fill ring's, and the TX pool's */
	x->area_size = (size_t)XDP_FRAME_SIZE * XDP_RING_SIZE * 2;
	x->area = mmap(NULL, x->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		goto fail;
	}
	/* the UMEM is the process's own: a child of fork() has no use for 32 MB of pinned pages
	 * copied (a pinned page is copied at fork, not shared copy-on-write) */
	(void)madvise(x->area, x->area_size, MADV_DONTFORK);
	x->tx_free = malloc(sizeof(uint64_t) * XDP_RING_SIZE);
	if (!x->tx_free)
		goto fail;
	/* jumbo frames: multi-buffer, and frames that may start anywhere (xdp_rx_data) */
	bool want_sg = link_if_mtu(x->name) > (int)XDP_FRAME_MTU_MAX;
	if (xdp_bind(x, cfg, want_sg, want_sg, true) < 0)
		goto fail;
	if (x->unaligned && (x->zerocopy || !x->sg)) {
		/* the frames end to end are for multi-buffer in copy mode: a zero-copy socket (or one
		 * the kernel gave no multi-buffer) gets an aligned UMEM, a frame a page, as at 1500 */
		xdp_unbind(x);
		if (xdp_bind(x, cfg, want_sg, false, true) < 0)
			goto fail;
	}
	/* TX checksum offload in copy mode, where the kernel's xsk_build_skb makes the request
	 * a CHECKSUM_PARTIAL skb, which the device (or the kernel in software, for one without
	 * NETIF_F_HW_CSUM) completes, and a veth's peer takes as a local sender's.  A zero-copy
	 * driver may ignore the request (it has xsk_tx_metadata_ops or not; only netlink tells),
	 * so there the stack computes every checksum.  So does it on virtio_net, the one driver
	 * with IFF_TX_SKB_NO_LINEAR: its copy-mode skbs are built by xsk_build_skb_zerocopy,
	 * which read no TX metadata until late 2025 ("xsk: wrap generic metadata handling onto
	 * separate function"): the request would be dropped silently, and every segment
	 * leave with only its pseudo-header's sum. */
	char driver[32] = "";
	(void)link_if_driver(x->name, driver, sizeof(driver));
	x->tx_csum = x->tx_off && !x->zerocopy && strcmp(driver, "virtio_net") != 0;
	if (x->sg && !(x->gather = malloc((size_t)XDP_RX_DESCS * XDP_FRAME_SIZE)))
		goto fail;
	/* A copy-mode socket's skb takes a chain of up to MAX_SKB_FRAGS + 1; a zero-copy driver
	 * takes xdp_zc_max_segs, which only netlink tells (af_xdp.rst: "usually at least five"),
	 * and drops a longer chain without completing it, its frames lost to the pool: so one
	 * descriptor a frame there (chains are still received) */
	x->tx_descs_max = x->sg && !x->zerocopy ? XDP_PKT_DESCS_MAX : 1;
	x->rx_stride = x->unaligned ? XDP_RX_PART : XDP_FRAME_SIZE;
	/* a kick sends the whole TX ring, not 32 frames (no such option before Linux 6.17: 32) */
	unsigned budget = XDP_RING_SIZE;
	(void)setsockopt(x->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget));
	/* the fill ring full: every RX frame lent to the kernel */
	uint32_t idx = 0;
	if (xsk_ring_prod__reserve(&x->fill, XDP_RING_SIZE, &idx) != XDP_RING_SIZE) {
		errno = ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < XDP_RING_SIZE; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * x->rx_stride;
	xsk_ring_prod__submit(&x->fill, XDP_RING_SIZE);
	for (uint32_t i = 0; i < XDP_RING_SIZE; i++)
		x->tx_free[x->tx_nfree++] = (uint64_t)(XDP_RING_SIZE + i) * XDP_FRAME_SIZE;
	if (xdp_attach_prog(x) < 0)
		goto fail;
	return x;
fail:
	err = errno;
	ustack_xdp_close(x);
	errno = err ? err : EIO;
	return NULL;
}

void ustack_xdp_close(struct ustack_xdp *x)
{
	if (!x)
		return;
	if (x->link_fd >= 0)
		close(x->link_fd); /* detaches the program */
	if (x->prog_fd >= 0)
		close(x->prog_fd);
	if (x->map_fd >= 0)
		close(x->map_fd);
	xdp_unbind(x);
	if (x->area)
		munmap(x->area, x->area_size);
	free(x->tx_free);
	free(x->gather);
	link_loop_fini(&x->loop);
	free(x);
}

int ustack_xdp_fd(const struct ustack_xdp *x)
{
	return x->fd;
}

const char *ustack_xdp_mode(const struct ustack_xdp *x)
{
	static const char *const mode[2][2][2] = {
		{ { "generic (skb), copy", "generic (skb), copy, multi-buffer" },
		  { "generic (skb), zero-copy", "generic (skb), zero-copy, multi-buffer" } },
		{ { "native, copy", "native, copy, multi-buffer" },
		  { "native, zero-copy", "native, zero-copy, multi-buffer" } },
	};
	return mode[x->native][x->zerocopy][x->sg];
}

int ustack_xdp_mac(const struct ustack_xdp *x, uint8_t mac[6])
{
	return link_if_mac(x->name, mac);
}

/* The largest MTU this socket sends and receives whole. */
static unsigned xdp_mtu_max(const struct ustack_xdp *x)
{
	return x->tx_descs_max > 1 ? USTACK_MTU_MAX : XDP_FRAME_MTU_MAX;
}

int ustack_xdp_mtu(const struct ustack_xdp *x)
{
	int mtu = link_if_mtu(x->name);
	return mtu > (int)xdp_mtu_max(x) ? (int)xdp_mtu_max(x) : mtu;
}

/*
 * Tells the kernel the TX ring has frames: in copy mode this sendto() is the transmission
 * itself, max_tx_budget frames a call (EAGAIN: more are left, or the device was busy).
 *
 * One thread kicks at a time.  Two kicking at once (an application thread's doorbell, the run
 * loop's flush) would only queue on the socket's mutex in the kernel, the second spinning
 * while the first transmits; so a thread that finds a kick in progress leaves its frames to
 * it: the kicker looks at tx_pending again once done, and goes on while there is more
 * (sequentially consistent, so a frame counted while it was kicking is seen).
 */
static void xdp_kick(struct ustack_xdp *x)
{
	for (int round = 0; round < 8; round++) {
		if (!atomic_load(&x->tx_pending) || atomic_exchange(&x->tx_kicking, 1))
			return;
		(void)atomic_exchange(&x->tx_pending, 0); /* reads what it clears: the xmitters' submits */
		bool done = x->zerocopy && !xsk_ring_prod__needs_wakeup(&x->tx); /* the driver polls the ring */
		bool transient = true;
		for (int i = 0; i < XDP_KICK_TRIES && !done; i++) {
			if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
				done = true;
			else if (errno != EAGAIN && errno != EBUSY && errno != ENOBUFS)
				transient = false; /* ENETDOWN, ENXIO: the device is down or gone */
			if (!transient)
				break;
		}
		if (!done) {
			/* frames are left on the ring: the next kick tries again — at the run loop's next
			 * turn if the device was only busy; a device that is down waits for the next
			 * frame sent (else the loop would spin on it) */
			atomic_fetch_add_explicit(&x->tx_kick_errors, 1, memory_order_relaxed);
			atomic_fetch_add(&x->tx_pending, 1);
			atomic_store(&x->tx_kicking, 0);
			if (transient)
				link_loop_kick(&x->loop);
			return;
		}
		atomic_store(&x->tx_kicking, 0);
	}
	if (atomic_load(&x->tx_pending))
		link_loop_kick(&x->loop); /* still more: the run loop's next turn flushes it */
}

/* Frames the kernel has sent, back to the TX pool (under the stack's lock). */
static void xdp_reclaim(struct ustack_xdp *x)
{
	uint32_t idx;
	uint32_t n = xsk_ring_cons__peek(&x->comp, XDP_RING_SIZE, &idx);
	for (uint32_t i = 0; i < n; i++)
		x->tx_free[x->tx_nfree++] = *xsk_ring_cons__comp_addr(&x->comp, idx + i) & ~(uint64_t)(XDP_FRAME_SIZE - 1);
	if (n)
		xsk_ring_cons__release(&x->comp, n);
}

/* ustack's xmit, under the stack's lock: the frame copied into as many UMEM frames as it
 * needs, one descriptor each, all but the last marked XDP_PKT_CONTD (a jumbo frame on a
 * multi-buffer socket; the kernel joins them into one skb).  No frame left in the pool (the
 * kernel is behind) is a drop, as a full NIC ring's.  With TX metadata, each part starts
 * tx_off into its UMEM frame, behind the metadata's room (the kernel checks every descriptor
 * for it, xp_aligned_validate_desc), and a segment whose checksum is left to the kernel
 * (off) says so in its first part's metadata (xsk_skb_metadata). */
static int xdp_send(struct ustack_xdp *x, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	uint32_t room = XDP_FRAME_SIZE - x->tx_off; /* a part's */
	uint32_t n = (uint32_t)((len + room - 1) / room);
	if (!len || n > x->tx_descs_max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (x->tx_nfree < XDP_RING_SIZE / 2)
		xdp_reclaim(x);
	if (x->tx_nfree < n) {
		atomic_fetch_add(&x->tx_pending, 1);
		xdp_kick(x);
		xdp_reclaim(x);
		if (x->tx_nfree < n) {
			atomic_fetch_add_explicit(&x->tx_no_frame, 1, memory_order_relaxed);
			errno = ENOBUFS;
			return -1;
		}
	}
	uint32_t idx;
	if (xsk_ring_prod__reserve(&x->tx, n, &idx) != n) { /* cannot happen: the ring holds the pool */
		errno = ENOBUFS;
		return -1;
	}
	const uint8_t *from = frame;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t part = i + 1 < n ? room : (uint32_t)(len - (size_t)i * room);
		uint64_t addr = x->tx_free[--x->tx_nfree] + x->tx_off;
		memcpy(x->area + addr, from, part);
		from += part;
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + i);
		d->addr = addr;
		d->len = part;
		d->options = i + 1 < n ? XDP_PKT_CONTD : 0;
		if (i == 0 && off) {
			struct xdp_tx_md *md = (struct xdp_tx_md *)(void *)(x->area + addr - XDP_TX_MD_LEN);
			md->flags = XDP_TXMD_FLAGS_CHECKSUM;
			md->csum_start = off->csum_start;
			md->csum_offset = off->csum_offset;
			d->options |= XDP_TX_METADATA;
		}
	}
	xsk_ring_prod__submit(&x->tx, n);
	atomic_fetch_add_explicit(&x->tx_frames, 1, memory_order_relaxed);
	if (off)
		atomic_fetch_add_explicit(&x->tx_csum_frames, 1, memory_order_relaxed);
	/* the doorbell (xdp_doorbell) kicks once the stack is done; a long burst is kicked as
	 * it goes, so that the kernel is never idle waiting for its end */
	if (atomic_fetch_add(&x->tx_pending, n) + n >= XDP_TX_KICK_BATCH)
		xdp_kick(x);
	return 0;
}

static int xdp_xmit(void *link, const void *frame, size_t len)
{
	return xdp_send(link, frame, len, NULL);
}

/* A TCP segment whose checksum the kernel completes (USTACK_IF_CSUM; no TSO: gso_size 0).  The
 * kernel wants the checksum's start and field within the first part (xsk_skb_metadata). */
static int xdp_xmit_offload(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	struct ustack_xdp *x = link;
	if (off->gso_size || (size_t)off->csum_start + off->csum_offset + 2 > XDP_FRAME_SIZE - x->tx_off ||
	    (size_t)off->csum_start + off->csum_offset + 2 > len) {
		errno = EINVAL;
		return -1;
	}
	return xdp_send(x, frame, len, off);
}

/*
 * A burst of received frames, handed to the stack in place, then lent back to the kernel.
 *
 * On a multi-buffer socket a frame larger than a UMEM frame (a jumbo MTU) comes as several
 * descriptors, each but the last marked XDP_PKT_CONTD.  The kernel makes a frame's
 * descriptors visible together (they are reserved one by one in __xsk_rcv and published at
 * once by xsk_flush), but a burst's cut may fall inside one: the burst then ends before that
 * frame, which the next turn takes whole.  The stack wants a frame contiguous: a chain whose
 * parts lie end to end in the UMEM (xdp_rx_data) is handed over where it is; the parts of
 * any other are copied end to end into `gather` (the descriptors looked at hold at most
 * XDP_RX_DESCS UMEM frames' worth, its size) and counted (rx_gathered).  A frame of more
 * descriptors than an skb has fragments cannot come from the kernel; it is dropped rather
 * than trusted.
 */
static void xdp_rx(void *arg)
{
	struct ustack_xdp *x = arg;
	uint32_t idx;
	uint32_t n = xsk_ring_cons__peek(&x->rx, x->sg ? XDP_RX_DESCS : XDP_RX_BURST, &idx);
	if (!n) {
		if (xsk_ring_prod__needs_wakeup(&x->fill))
			(void)recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		return;
	}
	uint64_t addrs[XDP_RX_DESCS]; /* each descriptor's UMEM frame, to lend back */
	for (uint32_t i = 0; i < n; i++)
		addrs[i] = xdp_rx_frame(x, xsk_ring_cons__rx_desc(&x->rx, idx + i)->addr);
	struct ustack_rx_frame f[XDP_RX_BURST];
	uint32_t nf = 0, used = 0; /* frames for the stack; descriptors of whole frames */
	size_t gathered = 0;
	for (uint32_t i = 0; i < n && nf < XDP_RX_BURST;) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
		if (!(d->options & XDP_PKT_CONTD)) {
			f[nf++] = (struct ustack_rx_frame){ .data = xdp_rx_data(x, d->addr), .len = d->len };
			used = ++i;
			continue;
		}
		/* a frame in parts: find its last, then take it in place or join the parts */
		uint32_t last = i;
		while (last < n && xsk_ring_cons__rx_desc(&x->rx, idx + last)->options & XDP_PKT_CONTD)
			last++;
		if (last == n)
			break; /* its end is beyond this burst's cut: the next turn's */
		bool whole = last - i + 1 <= XDP_PKT_DESCS_MAX, in_place = whole;
		uint8_t *start = xdp_rx_data(x, d->addr), *end = start;
		for (uint32_t j = i; in_place && j <= last; j++) { /* its parts end to end in the UMEM? */
			const struct xdp_desc *p = xsk_ring_cons__rx_desc(&x->rx, idx + j);
			in_place = p->len <= XDP_FRAME_SIZE && xdp_rx_data(x, p->addr) == end;
			if (in_place)
				end += p->len;
		}
		if (in_place) {
			f[nf++] = (struct ustack_rx_frame){ .data = start, .len = (size_t)(end - start) };
		} else if (whole) {
			size_t len = 0;
			uint8_t *to = x->gather + gathered;
			for (uint32_t j = i; j <= last; j++) {
				const struct xdp_desc *p = xsk_ring_cons__rx_desc(&x->rx, idx + j);
				if (p->len <= XDP_FRAME_SIZE) {
					memcpy(to + len, xdp_rx_data(x, p->addr), p->len);
					len += p->len;
				}
			}
			f[nf++] = (struct ustack_rx_frame){ .data = to, .len = len };
			gathered += len;
			atomic_fetch_add_explicit(&x->rx_gathered, 1, memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&x->rx_oversize, 1, memory_order_relaxed);
		}
		used = i = last + 1;
	}
	if (!used) {
		if (n < XDP_RX_DESCS) {
			/* the head of a frame only: its rest is not yet published.  Put it back and look
			 * at the producer again, which peek does only once its cached entries are used */
			xsk_ring_cons__cancel(&x->rx, n);
			x->rx.cached_prod = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE);
			return;
		}
		/* a frame longer than a whole burst: no kernel makes one; dropped, never waited for */
		atomic_fetch_add_explicit(&x->rx_oversize, 1, memory_order_relaxed);
		used = n;
	}
	/* the descriptors looked at but not taken (a burst's worth of frames reached, or a chain
	 * cut) go back to the ring for the next turn: peek has moved past them */
	xsk_ring_cons__cancel(&x->rx, n - used);
	if (nf)
		ustack_input_burst(x->st, x->ifindex, f, nf);
	xsk_ring_cons__release(&x->rx, used);
	atomic_fetch_add_explicit(&x->rx_frames, nf, memory_order_relaxed);
	/* as many UMEM frames back as came: the fill ring has room, it held them all */
	uint32_t fidx;
	if (xsk_ring_prod__reserve(&x->fill, used, &fidx) == used) {
		for (uint32_t i = 0; i < used; i++)
			*xsk_ring_prod__fill_addr(&x->fill, fidx + i) = addrs[i];
		xsk_ring_prod__submit(&x->fill, used);
	}
}

/*
 * The stack's doorbell, before it releases its lock: kick, unless this is the run loop's
 * thread in the middle of its turn (a burst of received frames, each answered), whose end
 * kicks once for all (xdp_flush) — or unless the kick is long.  In copy mode the kick is the
 * transmission itself: the kernel copies each frame into an skb and, on a veth, runs the
 * peer's receive path, some tens of microseconds a 64 KB frame.  Made under the lock, it
 * keeps the run loop from the ACKs that open the window, and a bulk sender stalls on its own
 * kicks (ustack -> Linux at MTU 65535: 8.7-10.9 Gbit/s kicking under the lock, 12.8-14.9
 * after it).  So past XDP_KICK_LONG descriptors the application's thread kicks once it has
 * let go (xdp_doorbell_unlocked, the stack's flush_unlocked).  A short kick — a handshake's
 * segment, an ACK, a window update — stays under the lock: measured, kicking those after it
 * cost more CPU a connection than it saved (the run loop then runs beside the kick and
 * contends for the socket's mutex in the kernel).
 */
static void xdp_doorbell(void *link)
{
	struct ustack_xdp *x = link;
	if (xdp_batching != x && atomic_load(&x->tx_pending) < XDP_KICK_LONG)
		xdp_kick(x);
}

static void xdp_doorbell_unlocked(void *link)
{
	struct ustack_xdp *x = link;
	if (xdp_batching != x)
		xdp_kick(x);
}

/* The end of the run loop's turn: what the stack sent during it goes out in one kick. */
static void xdp_flush(void *arg)
{
	struct ustack_xdp *x = arg;
	xdp_kick(x);
}

int ustack_xdp_attach(struct ustack_xdp *x, struct ustack *st, const uint8_t mac[6], unsigned mtu)
{
	if (x->st) {
		errno = EBUSY;
		return -1;
	}
	/* without multi-buffer a frame is one UMEM frame */
	if (mtu > xdp_mtu_max(x)) {
		errno = EINVAL;
		return -1;
	}
	struct ustack_if_config cfg = {
		.name = x->name, .type = USTACK_LINK_ETHER, .mtu = mtu,
		.xmit = xdp_xmit, .flush = xdp_doorbell, .flush_unlocked = xdp_doorbell_unlocked, .link = x,
		.offloads = x->tx_csum ? USTACK_IF_CSUM : 0, .xmit_offload = x->tx_csum ? xdp_xmit_offload : NULL,
	};
	memcpy(cfg.mac, mac, 6);
	int idx = ustack_if_add(st, &cfg);
	if (idx < 0)
		return -1;
	x->st = x->loop.st = st;
	x->ifindex = idx;
	ustack_set_wakeup(st, link_loop_kick, &x->loop);
	return idx;
}

static int xdp_loop(struct ustack_xdp *x, uint64_t deadline_us, bool drain)
{
	const struct link_loop_ops ops = {
		.fd = x->fd, .busy = x->flags & USTACK_XDP_BUSY_POLL, .rx = xdp_rx, .flush = xdp_flush,
	};
	struct ustack_xdp *was = xdp_batching;
	xdp_batching = x;
	int rc = link_loop_run(&x->loop, &ops, x, deadline_us, drain);
	xdp_batching = was;
	xdp_kick(x);
	return rc;
}

/* An application thread's burst (link_loop_poll): its sends kicked once, at the end. */
int ustack_xdp_poll(struct ustack_xdp *x, unsigned flags)
{
	const struct link_loop_ops ops = { .fd = x->fd, .rx = xdp_rx, .flush = xdp_flush };
	struct ustack_xdp *was = xdp_batching;
	xdp_batching = x;
	int rc = link_loop_poll(&x->loop, &ops, x, flags);
	xdp_batching = was;
	return rc;
}

int ustack_xdp_run_until(struct ustack_xdp *x, uint64_t deadline_us)
{
	return xdp_loop(x, deadline_us, false);
}

int ustack_xdp_run(struct ustack_xdp *x)
{
	return xdp_loop(x, UINT64_MAX, false) < 0 ? -1 : 0;
}

int ustack_xdp_drain(struct ustack_xdp *x)
{
	return xdp_loop(x, UINT64_MAX, true);
}

void ustack_xdp_stop(struct ustack_xdp *x)
{
	link_loop_stop(&x->loop);
}

int ustack_xdp_stats(const struct ustack_xdp *x, struct ustack_xdp_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->rx_frames = atomic_load_explicit(&x->rx_frames, memory_order_relaxed);
	out->tx_frames = atomic_load_explicit(&x->tx_frames, memory_order_relaxed);
	out->tx_no_frame = atomic_load_explicit(&x->tx_no_frame, memory_order_relaxed);
	out->rx_oversize = atomic_load_explicit(&x->rx_oversize, memory_order_relaxed);
	out->rx_gathered = atomic_load_explicit(&x->rx_gathered, memory_order_relaxed);
	out->tx_csum = atomic_load_explicit(&x->tx_csum_frames, memory_order_relaxed);
	out->tx_kick_errors = atomic_load_explicit(&x->tx_kick_errors, memory_order_relaxed);
	struct xdp_statistics ks;
	socklen_t len = sizeof(ks);
	memset(&ks, 0, sizeof(ks));
	if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &ks, &len) < 0)
		return -1;
	out->rx_dropped = ks.rx_dropped;
	out->rx_invalid = ks.rx_invalid_descs;
	out->tx_invalid = ks.tx_invalid_descs;
	out->rx_ring_full = ks.rx_ring_full;
	out->rx_fill_ring_empty = ks.rx_fill_ring_empty_descs;
	return 0;
}
