/*
 * Shared pieces of the libFuzzer targets: an input reader, a stack under test in virtual time
 * whose every output frame is checked (the "oracle": well-formed IPv4, valid checksums), frame
 * builders with checksums computed here (independently of ustack's emitters), and a model of
 * the TCP peer that learns the stack's sequence numbers from the segments it sends, so that a
 * fuzz input can say "acknowledge everything you sent" or "send the next in-order byte"
 * instead of guessing 32-bit numbers.
 *
 * Everything is static state reset per input: libFuzzer runs one input at a time.
 */
#ifndef USTACK_FUZZ_COMMON_H
#define USTACK_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ustack/stack.h>

/* ---- the input ---- */

struct fz_in {
	const uint8_t *p;
	size_t n;
};
/* Each returns 0 (or a short run) once the input is exhausted. */
uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);
/* Up to want bytes; *got says how many there were. */
const uint8_t *fz_bytes(struct fz_in *in, size_t want, size_t *got);
static inline bool fz_more(const struct fz_in *in) { return in->n > 0; }

/* ---- checksums and byte order (independent of src/wire) ---- */

uint32_t fz_sum(const uint8_t *b, size_t len, uint32_t sum);
uint16_t fz_fold(uint32_t sum);
uint16_t fz_csum(const uint8_t *b, size_t len);
/* TCP/UDP checksum over seg with the IPv4 pseudo-header (addresses in host order). */
uint16_t fz_l4_csum(const uint8_t *seg, size_t len, uint32_t src, uint32_t dst, uint8_t proto);
/* Fix-ups of a raw IPv4 packet (header length ihl, valid: 20 <= ihl <= len): the TCP or ICMP
 * checksum over what the total length covers, and the header checksum. */
void fz_fix_l4_csum(uint8_t *pkt, size_t len, size_t ihl);
void fz_fix_ip_csum(uint8_t *pkt, size_t ihl);
uint16_t fz_rd16(const uint8_t *p);
uint32_t fz_rd32(const uint8_t *p);
void fz_wr16(uint8_t *p, uint16_t v);
void fz_wr32(uint8_t *p, uint32_t v);

/* ---- the stack under test ---- */

#define FZ_STACK_IP 0xc0000202u /* 192.0.2.2/24 */
#define FZ_PEER_IP 0xc0000201u  /* 192.0.2.1, also the default gateway */
#define FZ_PEER2_IP 0xc0000203u /* 192.0.2.3 */
#define FZ_FAR_IP 0xc6336401u   /* 198.51.100.1, beyond the gateway */
#define FZ_MTU 1500
#define FZ_FRAME_MAX 1600

extern const uint8_t FZ_STACK_MAC[6];
/* A peer's MAC is derived from its address: 02:00:a.b.c.d */
void fz_peer_mac(uint32_t ip, uint8_t mac[6]);

/* A hook that sees every frame the stack sends (after the oracle checked it).  It runs under
 * the stack's lock: it must not call into the stack. */
typedef void (*fz_tx_hook)(const uint8_t *frame, size_t len, void *arg);

struct fz {
	struct ustack_vclock vc;
	struct ustack *st;
	int ifindex;
	enum ustack_link_type type;
	uint64_t nsent;
	fz_tx_hook hook;
	void *hook_arg;
	bool auto_arp;     /* answer the stack's ARP requests for the peers */
	uint32_t arp_want[4]; /* addresses asked for since the last fz_pump */
	unsigned narp_want;
	int trace_id;
	uint16_t ip_id;    /* of the peers' packets */
	int epfds[4];      /* epoll instances made by fz_socket_op (their numbers are not small) */
	unsigned nep;
};

/* A stack with 192.0.2.2/24 on one interface (Ethernet or raw IP), a default route via
 * 192.0.2.1, a fixed secret seed, virtual time at start_us. */
void fz_init(struct fz *f, enum ustack_link_type type, uint64_t start_us);
void fz_fini(struct fz *f);
/* Also formats every frame in and out with ustack_frame_format (exercises the printers). */
void fz_trace_frames(struct fz *f);
/* Delivers an IPv4 packet (prepends an Ethernet header on an Ethernet link). */
void fz_send_ip(struct fz *f, const uint8_t *ip, size_t len);
/* Delivers a link-level frame as it is. */
void fz_send_raw(struct fz *f, const uint8_t *frame, size_t len);
/* Moves virtual time by ms and runs the timers, then answers ARP. */
void fz_advance(struct fz *f, uint64_t ms);
/* Moves virtual time to the next armed timer (if any, at most cap_ms away). */
void fz_advance_next(struct fz *f, uint64_t cap_ms);
/* Answers the ARP requests the stack sent (when auto_arp). */
void fz_pump(struct fz *f);
void fz_sysctl(struct fz *f, const char *name, const char *value);
/* Sets one of a table of sysctls (sel) to one of four values (val & 3), good and bad. */
void fz_sysctl_op(struct fz *f, uint8_t sel, uint8_t val);
/* The same among the sysctls whose name starts with prefix. */
void fz_sysctl_op_prefix(struct fz *f, const char *prefix, uint8_t sel, uint8_t val);

/* Checks a frame the stack sent; aborts with a message when it is malformed. */
void fz_check_tx(enum ustack_link_type type, const uint8_t *frame, size_t len);

/* ---- builders ---- */

/* A 20-byte IPv4 header with a valid checksum. frag is the raw flags/offset word. */
void fz_ip_hdr(uint8_t *b, uint8_t proto, uint32_t src, uint32_t dst, uint16_t tot_len,
	       uint16_t id, uint16_t frag, uint8_t ttl);

/* ---- the TCP peer model ---- */

/*
 * A flow is one TCP connection as the peer sees it: the peer's address and port, the stack's
 * port, and what the peer learned from the stack's segments.  Sequence numbers in a fuzz input
 * are relative to this knowledge.
 */
struct fz_flow {
	bool used;
	uint32_t paddr;         /* the peer (host order) */
	uint16_t pport, sport;  /* peer port, stack port */
	/* the stack's side, learned from what it sent */
	bool st_known;          /* saw the stack's SYN or SYN-ACK (st_iss valid) */
	uint32_t st_iss, st_una, st_nxt; /* st_una: the highest ACK the peer sent for it */
	bool rcv_known;
	uint32_t st_rcv_nxt;    /* the ack field of the stack's last ACK */
	uint32_t st_tsval;      /* its last TSval, for our TSecr */
	uint16_t st_win;
	/* the peer's side */
	uint32_t p_isn, p_nxt;
	bool p_syn_sent;
	/* the stack's last segment on this flow (IP header + TCP header + up to 8 payload
	 * bytes), for ICMP errors that quote it */
	uint8_t last[128];
	size_t last_len;
	unsigned nseg;          /* segments the stack sent */
};

#define FZ_MAX_FLOWS 24

struct fz_peer {
	struct fz *f;
	struct fz_flow flows[FZ_MAX_FLOWS];
	unsigned nflows;
	uint32_t ts_base;       /* peer's TSval = ts_base + virtual ms */
};

void fz_peer_init(struct fz_peer *p, struct fz *f);
/* The tx hook to install on the stack: learns from the stack's TCP segments. */
void fz_peer_learn(const uint8_t *frame, size_t len, void *arg);
/* Finds or creates the flow for (paddr, pport, sport); NULL when the table is full. */
struct fz_flow *fz_flow_get(struct fz_peer *p, uint32_t paddr, uint16_t pport, uint16_t sport);
uint32_t fz_peer_tsval(struct fz_peer *p);

/* One segment from the peer.  seq/ack are absolute; options raw (≤ 40 bytes); payload may be
 * NULL (a pattern is sent).  Updates the flow's p_nxt/st_una like a peer would. */
struct fz_seg {
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t win, urg;
	const uint8_t *opts;
	size_t optlen;
	const uint8_t *payload;
	size_t plen;
	bool bad_csum;       /* flip the TCP checksum */
	bool bad_ip_csum;    /* flip the IPv4 header checksum */
	uint16_t frag_at;    /* nonzero: send as two IP fragments split at this many bytes (×8) */
	uint8_t trailing;    /* bytes of junk after tot_len (frame longer than the datagram) */
	bool ip_opts;        /* 4 bytes of IP options (NOPs + EOL) */
	bool track;          /* update p_nxt / st_una from this segment */
};
void fz_peer_send(struct fz_peer *p, struct fz_flow *fl, const struct fz_seg *s);

/* The three-way handshake toward a listener on the stack: SYN with opts, expects a SYN-ACK
 * (learned by the hook), then ACK (with a timestamp if ts).  Returns true if it completed. */
bool fz_peer_connect(struct fz_peer *p, struct fz_flow *fl, const uint8_t *opts, size_t optlen,
		     bool ts);
/* The peer's answer to an active open it saw (the stack's SYN learned on fl): SYN-ACK with
 * opts, and the stack's ACK is learned.  Returns true if the stack answered. */
bool fz_peer_accept(struct fz_peer *p, struct fz_flow *fl, const uint8_t *opts, size_t optlen);
/* Options of a SYN as Linux sends them: MSS, SACK_PERM, TS, NOP, WS (the flags choose which);
 * returns the length written (≤ 20). */
size_t fz_syn_opts(struct fz_peer *p, uint8_t *o, uint16_t mss, bool sack, bool ts, int wscale);

/* ---- operations decoded from the input (formats in fuzz_stack.c) ---- */

/* A segment from a peer with sequence numbers relative to what the stack sent (SEG). */
void fz_seg_op(struct fz_peer *p, struct fz_in *in);
/* A time step: <100 t ms; <200 (t-100)×50 ms; <250 (t-200)×5 s; else the next timer,
 * t-249 times (TIME). */
void fz_time_op(struct fz *f, uint8_t t);
/* An ICMP error quoting the stack's last segment on a flow (ICMP). */
void fz_icmp_error_op(struct fz_peer *p, struct fz_in *in);

/* Runs one socket call decoded from the input on the stack (descriptors 3..10, always
 * non-blocking, and up to four epoll instances); the peers' addresses and ports come from
 * small tables. */
void fz_socket_op(struct fz *f, struct fz_in *in);

#endif
