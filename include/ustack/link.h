/*
 * Link drivers.  A driver owns frames only while it transmits them: the stack calls its
 * xmit function with a frame it may copy, and the driver hands received frames to
 * ustack_input().
 */
#ifndef USTACK_LINK_H
#define USTACK_LINK_H

#include <ustack/export.h>

#include <stddef.h>
#include <stdint.h>
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- in-memory link ------------------------------------------------------------------ */

/*
 * Joins two stacks (side 0 and side 1) in one process, with seeded, deterministic
 * impairments applied to each frame in both directions, in the spirit of netem.
 */
struct ustack_memlink_params {
	uint64_t seed;           /* PRNG seed for the impairments */
	uint32_t delay_us;       /* one-way delay */
	uint32_t jitter_us;      /* uniform extra delay 0..jitter */
	double loss;             /* probability a frame is lost, 0..1 */
	double duplicate;        /* probability a frame is delivered twice */
	double reorder;          /* probability a frame skips the delay (arrives early) */
	uint32_t queue_limit;    /* frames in flight per direction; 0 = 1024 */
	int csum_offload;        /* nonzero: TCP checksums left to the link, which vouches for them
	                          * (USTACK_IF_CSUM), as Linux's loopback: never computed */
	int tso;                 /* nonzero: TSO packets of up to 64 KB cross whole (USTACK_IF_TSO,
	                          * with csum_offload), as GSO packets cross Linux's veth and
	                          * loopback: the receiver takes each as one segment, as after GRO.
	                          * memlink only: a TAP has offloads of its own */
};

/* Frame filter: return nonzero to drop the frame (dir 0: side 0 → side 1). */
typedef int (*ustack_memlink_filter_fn)(void *arg, int dir, const uint8_t *frame, size_t len);

struct ustack_memlink;
USTACK_API struct ustack_memlink *ustack_memlink_create(const struct ustack_clock *clock,
					     const struct ustack_memlink_params *params);
USTACK_API void ustack_memlink_destroy(struct ustack_memlink *ml);
/* Adds an Ethernet interface on st joined to the link's given side; returns its ifindex. */
USTACK_API int ustack_memlink_attach(struct ustack_memlink *ml, int side, struct ustack *st,
			  const char *ifname, const uint8_t mac[6], unsigned mtu);
USTACK_API void ustack_memlink_set_filter(struct ustack_memlink *ml, ustack_memlink_filter_fn fn, void *arg);
/* Delivers every frame due by now; returns how many. */
USTACK_API int ustack_memlink_deliver(struct ustack_memlink *ml);
/* Earliest pending delivery (µs), or UINT64_MAX. */
USTACK_API uint64_t ustack_memlink_next(struct ustack_memlink *ml);
/* Frames dropped by impairments, the filter, or a full queue. */
USTACK_API uint64_t ustack_memlink_dropped(struct ustack_memlink *ml);

/*
 * Runs both stacks and the link in virtual time until `until_us` or until nothing is left to
 * do: delivers due frames, runs due timers, and moves the virtual clock to the next event.
 * Returns the number of events processed.
 */
USTACK_API uint64_t ustack_memlink_run(struct ustack_memlink *ml, struct ustack_vclock *vc, uint64_t until_us);

/* ---- TAP ----------------------------------------------------------------------------- */

struct ustack_tap;
/* Opens /dev/net/tun as IFF_TAP|IFF_NO_PI on `name` (an existing persistent device, or a
 * new one), and brings the device up.  On failure returns NULL with errno set. */
USTACK_API struct ustack_tap *ustack_tap_open(const char *name);
/*
 * The same with `queues` queues (IFF_MULTI_QUEUE, 1..USTACK_TAP_QUEUES_MAX; one is
 * ustack_tap_open): a descriptor each, one stack behind them all.  Queue 0 is the run loop's
 * (and ustack_tap_fd's, ustack_tap_poll's); each other queue has a thread of its own from
 * ustack_tap_attach to ustack_tap_close (ustack_tap_stop does not stop them) that hands its
 * frames to the stack: close the device before ustack_destroy.  A flow's frames go out and
 * come in on one queue, picked by a symmetric hash of its addresses and ports (ARP: queue 0),
 * which a steering program of ustack's makes the kernel use too (TUNSETSTEERINGEBPF; needs
 * CAP_BPF — without, tun's own steering, which learns the pairing from our writes for up to
 * 4,096 recent flows: ustack_tap_steering says which).  What runs in parallel is the reading:
 * writes are made under the stack's lock.  A device created without multi_queue takes one
 * queue only (EINVAL).  If attach fails to start the threads, the interface stays in the
 * stack, unusable: destroy both. */
#define USTACK_TAP_QUEUES_MAX 256u /* the tun driver's MAX_TAP_QUEUES */
USTACK_API struct ustack_tap *ustack_tap_open_queues(const char *name, unsigned queues);
USTACK_API void ustack_tap_close(struct ustack_tap *tap);
USTACK_API int ustack_tap_fd(const struct ustack_tap *tap);
USTACK_API unsigned ustack_tap_queues(const struct ustack_tap *tap);
/* 1 if ustack's steering program picks the queue of each frame the kernel sends (several
 * queues), 0 if tun's own steering does (or there is one queue). */
USTACK_API int ustack_tap_steering(const struct ustack_tap *tap);
/* Frames read from and written to queue q since the device was opened.  0, or -1 with EINVAL. */
struct ustack_tap_queue_stats {
	uint64_t rx_frames, tx_frames;
};
USTACK_API int ustack_tap_queue_stats(const struct ustack_tap *tap, unsigned q, struct ustack_tap_queue_stats *out);
/* Adds an Ethernet interface on st that sends and receives through the TAP device. */
USTACK_API int ustack_tap_attach(struct ustack_tap *tap, struct ustack *st, const uint8_t mac[6], unsigned mtu);
/*
 * The run loop: epoll on the TAP descriptor, timeouts from the stack's timers.  Returns 0 when
 * ustack_tap_stop() was called (safe from a signal handler or another thread), -1 on error.
 */
USTACK_API int ustack_tap_run(struct ustack_tap *tap);
/* The same loop, returning at the monotonic deadline (µs) too: 1 if stopped, 0 at the
 * deadline, -1 on error. */
USTACK_API int ustack_tap_run_until(struct ustack_tap *tap, uint64_t deadline_us);
USTACK_API void ustack_tap_stop(struct ustack_tap *tap);
/*
 * The loop once the application is done, as a kernel goes on after a process exits: runs
 * until no closed connection owes its peer data or a FIN (ustack_undelivered), which the
 * stack's own limits bound (tcp_orphan_retries, a peer's reset).  0 then; 1 if
 * ustack_tap_stop() came first (a second interrupt); -1 on error.
 */
USTACK_API int ustack_tap_drain(struct ustack_tap *tap);
/* Impairs the wire between the kernel and ustack, each way, with the in-memory link's netem
 * model (loss, duplication, delay + jitter, reordering; seeded) — for kernels without
 * sch_netem.  Call before ustack_tap_attach.  0, or -1 with errno. */
USTACK_API int ustack_tap_impair(struct ustack_tap *tap, const struct ustack_memlink_params *p);

/*
 * Run to completion.  An application thread about to wait for ustack's sockets takes the
 * device's received frames itself (ustack_tap_poll, ustack_xdp_poll: a burst, if no other
 * thread is in one; 1 if it ran one, whether or not frames were waiting, else 0) and may
 * sleep with the device's descriptor (ustack_tap_fd, ustack_xdp_fd) in its own wait.  While
 * it polls again within USTACK_POLL_HOLD_US — Linux's epoll busy polling with IRQ suspension
 * (Documentation/networking/napi.rst, Linux 6.13), the interrupt kept off while the
 * application keeps coming back — or sleeps so (USTACK_POLL_SLEEP, then USTACK_POLL_AWAKE),
 * the run loop leaves the receive side to it and keeps only the timers: a burst wakes one
 * thread, not the run loop and then the application.  The sleeping hold is ustack's own:
 * Linux lets the interrupt back when epoll_wait goes to sleep, its softirq being cheap, where
 * here the run loop is a thread woken to wake another.  Sleepers are counted: each SLEEP
 * takes exactly one AWAKE.  An application that stays away hands the frames back; one about
 * to wait elsewhere may say so (USTACK_POLL_RELEASE, with AWAKE if it had said SLEEP: no
 * burst).  With USTACK_XDP_BUSY_POLL the run loop takes every frame and holds are ignored.
 */
#define USTACK_POLL_SLEEP 1u   /* no burst: the caller is about to sleep with the device's fd in its wait */
#define USTACK_POLL_AWAKE 2u   /* a burst, the caller having woken from that sleep */
#define USTACK_POLL_RELEASE 4u /* no burst: the polling hold ends now (the caller will wait elsewhere) */
#define USTACK_POLL_HOLD_US 1000u
USTACK_API int ustack_tap_poll(struct ustack_tap *tap, unsigned flags);

/* ---- AF_XDP -------------------------------------------------------------------------- */

/*
 * One queue of a network interface, owned by ustack through an XDP socket (src/link/xdp.c):
 * ustack's own XDP program redirects every frame of the queue to it, attached by a BPF link
 * that goes with the process.  Needs root (CAP_NET_ADMIN, CAP_BPF).  Frames must carry
 * complete checksums: a local Linux peer over veth needs `ethtool -K PEER tx off`.
 */
#define USTACK_XDP_SKB 1u       /* generic (skb) mode only; default: native, else generic */
#define USTACK_XDP_NATIVE 2u    /* native mode only: fail rather than fall back */
#define USTACK_XDP_BUSY_POLL 4u /* the run loop never sleeps: it polls the rings every turn */
struct ustack_xdp_config {
	const char *ifname;
	unsigned queue; /* the device's RX/TX queue, 0-1023 */
	unsigned flags; /* USTACK_XDP_* */
};
struct ustack_xdp;
/* Opens the socket and its UMEM (32 MB: 8192 frames of 4 KB), brings the device up and attaches the program.
 * NULL with errno: EINVAL (config), ENODEV (no such device), EBUSY (it has an XDP program),
 * EPERM, EOPNOTSUPP (USTACK_XDP_NATIVE on a driver without). */
USTACK_API struct ustack_xdp *ustack_xdp_open(const struct ustack_xdp_config *cfg);
USTACK_API void ustack_xdp_close(struct ustack_xdp *x);
USTACK_API int ustack_xdp_fd(const struct ustack_xdp *x);
/* "native, copy", "native, zero-copy" or "generic (skb), copy", then ", multi-buffer" when
 * the socket takes frames larger than a UMEM frame (XDP_USE_SG, Linux 6.6: asked for when the
 * device's MTU is above 3822) */
USTACK_API const char *ustack_xdp_mode(const struct ustack_xdp *x);
/* The device's own MAC address (a natural choice for ustack's). */
USTACK_API int ustack_xdp_mac(const struct ustack_xdp *x, uint8_t mac[6]);
/* The device's MTU, or the largest this socket carries whole if that is less (3822 without
 * multi-buffer or in zero-copy mode); -1 with errno.  The natural choice for ustack's: the
 * frames the kernel hands the queue are the device's.  ustack_xdp_attach refuses a larger
 * one (EINVAL) where the socket cannot carry it. */
USTACK_API int ustack_xdp_mtu(const struct ustack_xdp *x);
/* As the TAP driver's: an Ethernet interface on st, and the run loop (ustack_tap_run). */
USTACK_API int ustack_xdp_attach(struct ustack_xdp *x, struct ustack *st, const uint8_t mac[6], unsigned mtu);
USTACK_API int ustack_xdp_run(struct ustack_xdp *x);
USTACK_API int ustack_xdp_run_until(struct ustack_xdp *x, uint64_t deadline_us);
USTACK_API int ustack_xdp_drain(struct ustack_xdp *x);
USTACK_API void ustack_xdp_stop(struct ustack_xdp *x);
USTACK_API int ustack_xdp_poll(struct ustack_xdp *x, unsigned flags); /* as ustack_tap_poll */
struct ustack_xdp_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t tx_no_frame;        /* sends dropped: every TX frame still with the kernel */
	uint64_t tx_kick_errors;     /* kicks that left frames on the TX ring */
	/* the kernel's (XDP_STATISTICS) */
	uint64_t rx_dropped;         /* no room in the frame, or filtered */
	uint64_t rx_invalid, tx_invalid;
	uint64_t rx_ring_full;       /* the RX ring was full: ustack was behind */
	uint64_t rx_fill_ring_empty; /* no frame lent to receive into */
	/* the driver's again: received frames of more parts than the kernel makes, dropped */
	uint64_t rx_oversize;
	/* received frames in parts that were not end to end in the UMEM, copied together: where
	 * the frames lent wrap around in copy mode, every one in zero-copy mode */
	uint64_t rx_gathered;
	/* frames sent with their TCP checksum left to the kernel (TX metadata, copy mode) */
	uint64_t tx_csum;
};
USTACK_API int ustack_xdp_stats(const struct ustack_xdp *x, struct ustack_xdp_stats *out);

/* ---- capture ------------------------------------------------------------------------- */

/*
 * Writes every frame ifindex sends or receives to a pcap file, stamped with wall-clock time:
 * the stack's clock plus its offset to CLOCK_REALTIME when the device's first capture began
 * (so a capture merges with tcpdump's).  Sent frames are recorded as they go on the wire when
 * the driver delays or drops them (ustack_if_config.tx_capture_by_link: the impaired TAP).
 */
USTACK_API int ustack_pcap_start(struct ustack *st, int ifindex, const char *path);

/*
 * A live capture: fn sees every frame the pcap file would, with its timestamp (µs since the
 * epoch), called under the stack's lock — it must only copy, never block or call ustack.
 * Returns an id for ustack_capture_remove, or -1 with ENODEV, EINVAL, or EBUSY (4 per device).
 */
typedef void (*ustack_capture_fn)(void *arg, int ifindex, uint64_t wall_us, const uint8_t *frame, size_t len);
USTACK_API int ustack_capture_add(struct ustack *st, int ifindex, ustack_capture_fn fn, void *arg);
USTACK_API int ustack_capture_remove(struct ustack *st, int id);
/* For drivers with tx_capture_by_link: frame left on the wire now. */
USTACK_API void ustack_capture_wire_tx(struct ustack *st, int ifindex, const uint8_t *frame, size_t len);

#ifdef __cplusplus
}
#endif
#endif
