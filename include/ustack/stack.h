/*
 * ustack — a userspace TCP/IPv4 stack that follows Linux's connection machinery.
 *
 * A stack instance owns everything below the socket API: interfaces, addresses, the
 * neighbour (ARP) cache, routes, sysctls, counters and timers.  There are no globals, so
 * several instances live side by side in one process (the demo and the tests put a client
 * and a server stack on the two ends of an in-memory link).
 *
 * The stack never reads the wall clock.  It is driven by explicit input — a received frame
 * (ustack_input), the passage of time (ustack_timers_run), an API call — and reads time from
 * the clock it was given, so the same inputs give the same outputs.
 *
 * Threading: every public call takes the instance's lock, so one thread may feed frames and
 * time while others make API calls on the same instance.
 *
 * Errors: functions returning int return 0 (or a non-negative value) on success and -1 with
 * errno set on failure, as POSIX calls do.
 */
#ifndef USTACK_STACK_H
#define USTACK_STACK_H

#include <ustack/export.h>

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ustack;

/* ---- time ---------------------------------------------------------------------------- */

/* A clock returns microseconds on a monotonic time line of its own choosing. */
struct ustack_clock {
	uint64_t (*now_us)(void *arg);
	void *arg;
};

/* The host's CLOCK_MONOTONIC, for real links. */
USTACK_API const struct ustack_clock *ustack_clock_monotonic(void);

/* Virtual time for tests and simulations: the caller moves it forward by hand. */
struct ustack_vclock {
	struct ustack_clock clock; /* pass &vc->clock to ustack_create */
	uint64_t now_us;
};
USTACK_API void ustack_vclock_init(struct ustack_vclock *vc, uint64_t start_us);

/* ---- instances ----------------------------------------------------------------------- */

struct ustack_config {
	const struct ustack_clock *clock; /* required */
	/*
	 * Secrets for ISNs, port offsets, cookies and IP IDs come from libsodium's CSPRNG.  A test
	 * that needs byte-exact reproducible output may give a 32-byte seed instead; never do that
	 * on a real network (RFC 6528 §3 needs the secret to be unguessable).
	 */
	const uint8_t *secret_seed;
	const char *name; /* shown by the tracer and the demo; optional */
};

USTACK_API struct ustack *ustack_create(const struct ustack_config *cfg);
USTACK_API void ustack_destroy(struct ustack *st);
USTACK_API const char *ustack_name(const struct ustack *st);
USTACK_API uint64_t ustack_now(struct ustack *st); /* the instance's current time, µs */
/*
 * What a kernel goes on sending after a process exits: the connections the application has
 * closed whose data or FIN the peer has not yet acknowledged (orphans in FIN_WAIT1, CLOSING
 * or LAST_ACK).  A process that hosts the stack keeps it running until this is 0 before it
 * exits (ustack_tap_drain), or its peers lose the tail of what it wrote.  *lost, if given:
 * how many such connections ended instead without their FIN acknowledged — reset by the
 * peer, given up after tcp_orphan_retries, aborted — since the instance began.
 */
USTACK_API unsigned ustack_undelivered(struct ustack *st, uint64_t *lost);

/* ---- interfaces, addresses, routes --------------------------------------------------- */

enum ustack_link_type {
	USTACK_LINK_ETHER = 1, /* Ethernet II frames, ARP for neighbours (TAP, memlink) */
	USTACK_LINK_RAWIP = 2, /* bare IPv4 packets, no link header (TUN, packetdrill)  */
};

/* How the stack hands a frame to a link driver.  The driver copies what it needs. */
typedef int (*ustack_xmit_fn)(void *link, const void *frame, size_t len);

/*
 * Offloads (Linux's NETIF_F_TSO with NETIF_F_HW_CSUM).  A link that sets USTACK_IF_TSO and
 * xmit_offload takes TCP/IPv4 packets of up to 64 KB that TCP would otherwise cut into
 * segments itself: each handed to xmit_offload with gso_size (the MSS: every segment but the
 * last carries that much data) and its TCP checksum left partial — the pseudo-header sum in
 * the checksum field, to be completed over the bytes from csum_start (csum_offset is where
 * the field is, from there), as a virtio_net_hdr with NEEDS_CSUM and GSO_TCPV4 says it.  The
 * link cuts the packet into segments (or has a kernel do it), numbering the IP IDs up from the
 * packet's and putting FIN and PSH on the last segment only.  Frames that need none of this
 * still go through xmit.
 */
#define USTACK_IF_TSO 1u
/*
 * Checksum offload alone (NETIF_F_HW_CSUM without TSO), for a link between two stacks that
 * never leaves memory, as Linux's loopback: TCP segments go through xmit with their checksum
 * left partial, as above, and the link hands them to the other stack with USTACK_RX_CSUM_OK
 * (a local sender's CHECKSUM_PARTIAL, which the receiver trusts).  Segments are still cut at
 * the MSS, and every other protocol's checksum is computed.  No xmit_offload needed; a link
 * that has one (a device that completes checksums itself: AF_XDP's TX metadata, a TAP's
 * virtio_net_hdr) gets each such segment through it instead, with gso_size 0 and where the
 * checksum starts and lies, as TSO packets come.  A segment the stack must fragment has its
 * checksum completed first, as Linux's ip_do_fragment does.
 */
#define USTACK_IF_CSUM 2u
struct ustack_tx_offload {
	uint16_t gso_size;
	uint16_t csum_start, csum_offset; /* from the start of the frame */
};
typedef int (*ustack_xmit_offload_fn)(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off);

/*
 * The doorbell (Linux's xmit_more: a driver rings its NIC once for a burst of frames).  A link
 * may queue frames in xmit without telling the device; the stack then calls flush once, before
 * it releases its lock, after every API call, received frame or timer run that transmitted,
 * and flush_unlocked once it has released it (a caller about to sleep in the stack lets it go
 * for that too).  flush_unlocked must not call into the stack, nor touch what xmit shares with
 * flush without a lock of its own (another thread may be in the stack by then); and a link
 * must not be closed while a thread may still be inside, or returning from, a call on the
 * stack it is attached to.
 */
typedef void (*ustack_flush_fn)(void *link);

struct ustack_if_config {
	const char *name;          /* e.g. "tap0"; at most 15 bytes like IFNAMSIZ */
	enum ustack_link_type type;
	uint8_t mac[6];            /* ETHER only */
	unsigned mtu;              /* IP MTU, 68..USTACK_MTU_MAX */
	ustack_xmit_fn xmit;
	void *link;                /* first argument of xmit */
	int tx_capture_by_link;    /* nonzero: the driver delays or drops frames after xmit and
	                            * reports each as it goes on the wire (ustack_capture_wire_tx),
	                            * so captures show the wire (link.h) */
	unsigned offloads;         /* USTACK_IF_TSO (with xmit_offload), USTACK_IF_CSUM */
	ustack_xmit_offload_fn xmit_offload;
	ustack_flush_fn flush;     /* optional: the doorbell, above */
	/* optional: rung once the stack's lock is released, after flush (a caller about to
	 * sleep in the stack lets the lock go for it): for a doorbell whose work is long and
	 * needs nothing of the stack's (AF_XDP's copy-mode kick) */
	ustack_flush_fn flush_unlocked;
};
/* IPv4's own limit (Linux's IP_MAX_MTU): a jumbo-frame link (veth, AF_XDP multi-buffer, memlink)
 * carries whole IP packets of up to 64 KB; the MSS follows (mtu - 40). */
#define USTACK_MTU_MAX 65535

/* Adds an interface in state UP; returns its ifindex (≥ 1). */
USTACK_API int ustack_if_add(struct ustack *st, const struct ustack_if_config *cfg);
USTACK_API int ustack_if_set_mtu(struct ustack *st, int ifindex, unsigned mtu);
/* The interface's link type (enum ustack_link_type), or -1 with ENODEV. */
USTACK_API int ustack_if_type(struct ustack *st, int ifindex);

/*
 * Adds an address like `ip addr add A/N dev IF`: also installs the connected route
 * (proto kernel, scope link, src A), as Linux does.
 */
USTACK_API int ustack_addr_add(struct ustack *st, int ifindex, struct in_addr addr, unsigned prefixlen);

struct ustack_route {
	struct in_addr dst;     /* network */
	unsigned prefixlen;     /* 0 = default route */
	struct in_addr gateway; /* 0 = on-link */
	int ifindex;
	struct in_addr prefsrc; /* 0 = choose from the interface (Linux's inet_select_addr) */
	unsigned mtu;           /* 0 = the interface's MTU */
	unsigned metric;        /* lower wins among equal prefixes */
};
USTACK_API int ustack_route_add(struct ustack *st, const struct ustack_route *r);
USTACK_API int ustack_route_del(struct ustack *st, struct in_addr dst, unsigned prefixlen);

/* The answer of ip_route_connect(): where a packet to daddr goes and from which address. */
struct ustack_route_result {
	int ifindex;
	struct in_addr nexthop; /* gateway, or daddr itself when on-link */
	struct in_addr saddr;   /* chosen source address */
	unsigned mtu;
};
/* saddr 0 lets the route choose.  Fails with ENETUNREACH when no route matches, EINVAL for
 * a saddr that is not ours (Linux's ip_route_output_key for a non-local source). */
USTACK_API int ustack_route_lookup(struct ustack *st, struct in_addr daddr, struct in_addr saddr,
			struct ustack_route_result *out);

/* ---- driving the stack --------------------------------------------------------------- */

/* One frame received on ifindex.  The stack does not keep the pointer. */
USTACK_API void ustack_input(struct ustack *st, int ifindex, const void *frame, size_t len);
/*
 * The same for a frame the link vouches for: with USTACK_RX_CSUM_OK its TCP checksum is not
 * checked (Linux's CHECKSUM_UNNECESSARY, or CHECKSUM_PARTIAL from a local sender: a
 * virtio_net_hdr with DATA_VALID or NEEDS_CSUM).  Such a frame may be larger than the MTU: a
 * TCP/IPv4 packet of up to 64 KB that a kernel's GRO or GSO left whole.  Such a packet's
 * segment size (a virtio_net_hdr's gso_size, the sender's MSS) goes in the flags' high half,
 * USTACK_RX_GSO_SIZE(mss): TCP then counts the segments it stands for (tcpi_segs_in, as Linux
 * counts gso_segs), where TcpInSegs counts the packet once, as Linux's does.
 */
#define USTACK_RX_CSUM_OK 1u
#define USTACK_RX_GSO_SIZE(mss) ((unsigned)(uint16_t)(mss) << 16)
USTACK_API void ustack_input_flags(struct ustack *st, int ifindex, const void *frame, size_t len, unsigned flags);
/* A burst of frames, as a driver takes them from its ring: the same as one ustack_input_flags
 * each, under one hold of the stack's lock (a budget of 64 is NAPI's). */
struct ustack_rx_frame {
	const void *data;
	size_t len;
	unsigned flags;
};
USTACK_API void ustack_input_burst(struct ustack *st, int ifindex, const struct ustack_rx_frame *frames, unsigned n);

/* Runs every timer due at the clock's current time, each seeing its own expiry as "now". */
USTACK_API void ustack_timers_run(struct ustack *st);

/* A lower bound on the next timer's expiry (µs), or UINT64_MAX when none is armed.  Waking
 * at the bound and finding nothing due is harmless: ask again. */
USTACK_API uint64_t ustack_timers_next(struct ustack *st);

/*
 * For run loops that sleep: ustack_sleep_until(st, cap) returns the time to sleep until
 * (the next timer, at most cap) and records it; while it sleeps, a timer armed earlier by
 * another thread calls the wakeup function (which must be quick and async-safe, e.g. a write
 * to an eventfd).  ustack_awake() marks the loop awake again.
 */
USTACK_API void ustack_set_wakeup(struct ustack *st, void (*fn)(void *arg), void *arg);
USTACK_API uint64_t ustack_sleep_until(struct ustack *st, uint64_t cap_us);
USTACK_API void ustack_awake(struct ustack *st);

/* ---- ICMP echo (ping) ---------------------------------------------------------------- */

/* Sends an ICMP echo request, as `ping` does through a socket. */
USTACK_API int ustack_ping(struct ustack *st, struct in_addr daddr, uint16_t id, uint16_t seq,
		size_t payload_len);
/* Called for each echo reply received. */
typedef void (*ustack_echo_reply_fn)(void *arg, struct in_addr from, uint16_t id, uint16_t seq,
				     size_t payload_len, uint8_t ttl);
USTACK_API void ustack_set_echo_reply_handler(struct ustack *st, ustack_echo_reply_fn fn, void *arg);

/* ---- counters ------------------------------------------------------------------------ */

/*
 * Counters carry Linux's names as `nstat` prints them (IpInReceives, IcmpInEchos,
 * TcpExtListenDrops, ...), plus the neighbour cache's under arp_cache.* as in
 * /proc/net/stat/arp_cache.  Unknown names fail with ENOENT.
 */
USTACK_API int ustack_counter_get(struct ustack *st, const char *name, uint64_t *value);
USTACK_API size_t ustack_counter_count(void);
USTACK_API const char *ustack_counter_name(size_t i);
USTACK_API uint64_t ustack_counter_value(struct ustack *st, size_t i);

/* Per-interface statistics, named as `ip -s link` shows them. */
struct ustack_if_stats {
	uint64_t rx_packets, rx_bytes, rx_errors, rx_dropped, rx_length_errors;
	uint64_t tx_packets, tx_bytes, tx_errors, tx_dropped;
};
USTACK_API int ustack_if_stats(struct ustack *st, int ifindex, struct ustack_if_stats *out);

#ifdef __cplusplus
}
#endif
#endif
