/*
 * Wire-level test helpers.  A test is a dialogue with one stack under test (the DUT):
 *
 *     tw_send(&t, frame, len);                  // the peer sends a crafted frame
 *     struct tw_frame *f = tw_expect(&t);       // the DUT's next frame on the wire
 *     assert_int_equal(f->b[ETH + 9], 1);       // check its exact bytes
 *     tw_advance(&t, 1000);                     // move virtual time 1000 ms, run timers
 *
 * and on a TCP connection, with seq/ack relative to each side's ISN (below):
 *
 *     tw_peer_send(&t, &c, 0, 0, TW_ACK, 65535, "hi", 2);  // the peer's first 2 bytes
 *     tw_expect_seg(&t, &c, TW_ACK, 0, 2, 0);               // the DUT acknowledges them
 *
 * Frames are built here independently of ustack's own emitters (including the checksum),
 * so a bug in an emitter cannot hide itself in its own test.
 */
#ifndef USTACK_TESTWIRE_H
#define USTACK_TESTWIRE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ustack/stack.h>
#include <ustack/sysctl.h>
#include <ustack/link.h>
#include <ustack/trace.h>

#define TW_MAX_FRAMES 256
#define TW_FRAME_MAX 2048
#define ETH 14 /* offset of the IP header in an Ethernet frame */

struct tw_frame {
	uint8_t b[TW_FRAME_MAX];
	size_t len;
	uint64_t time_us;
};

struct tw {
	struct ustack_vclock vc;
	struct ustack *st;
	int ifindex;
	struct tw_frame out[TW_MAX_FRAMES];
	unsigned head, count;
	uint64_t sent; /* frames the DUT ever sent */
	int auto_arp;  /* the peer answers the DUT's ARP requests, and they are not shown */
};

extern const uint8_t TW_DUT_MAC[6];  /* 02:00:00:00:00:02 */
extern const uint8_t TW_PEER_MAC[6]; /* 02:00:00:00:00:01 */
#define TW_DUT_IP 0xc0000202u  /* 192.0.2.2, the stack under test */
#define TW_PEER_IP 0xc0000201u /* 192.0.2.1 */
#define TW_FAR_IP 0xc6336401u  /* 198.51.100.1, beyond the gateway */

/* A DUT with 192.0.2.2/24 on an Ethernet interface, MTU 1500, virtual time 0. */
void tw_init(struct tw *t);
void tw_fini(struct tw *t);
void tw_send(struct tw *t, const uint8_t *frame, size_t len);
struct tw_frame *tw_expect(struct tw *t);      /* fails the test if nothing was sent */
void tw_expect_none(struct tw *t);             /* fails the test if something was sent */
void tw_advance(struct tw *t, uint64_t ms);     /* move time and run due timers */
uint64_t tw_counter(struct tw *t, const char *name);
void tw_sysctl(struct tw *t, const char *name, const char *value);
/* The peer asks who has 192.0.2.2; the DUT answers and learns the peer (reply consumed). */
void tw_learn_peer(struct tw *t);

/* cmocka fixtures: *state becomes a fresh struct tw (learned: the peer is in the ARP cache). */
int tw_setup(void **state);
int tw_setup_learned(void **state);
/* learned, and the peer keeps answering the DUT's ARP probes (for tests that span seconds) */
int tw_setup_peer(void **state);
int tw_teardown(void **state);

/* ---- builders; each returns the frame length ---- */
uint16_t tw_csum(const uint8_t *b, size_t len);
size_t tw_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type);
size_t tw_arp(uint8_t *f, uint16_t op, const uint8_t sha[6], uint32_t spa, const uint8_t tha[6],
	      uint32_t tpa, const uint8_t eth_dst[6]);
/* An IPv4 header at f (20 bytes) with a valid checksum. frag is the raw flags/offset word. */
void tw_ip_hdr(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, uint16_t tot_len,
	       uint16_t id, uint16_t frag, uint8_t ttl);
/* Ethernet + IPv4 + ICMP echo request with payload bytes i & 0xff. */
size_t tw_echo(uint8_t *f, uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, size_t payload);
/* Ethernet + IPv4 fragment of an ICMP echo datagram: `datagram` is the full ICMP message. */
size_t tw_frag(uint8_t *f, uint32_t src, uint32_t dst, uint16_t ipid, const uint8_t *datagram,
	       size_t off, size_t len, int more);
/* Builds the full ICMP echo message (header + payload) of the given payload length. */
size_t tw_icmp_echo_msg(uint8_t *m, uint16_t id, uint16_t seq, size_t payload);

/* ---- TCP ---- */
/* Ethernet + IPv4 + TCP from the peer (TW_PEER_IP) to the DUT, options as raw bytes. */
size_t tw_tcp(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
	      uint16_t win, const uint8_t *opts, size_t optlen);
/* A TCP segment the DUT sent, checked (IPv4, protocol 6, both checksums) and taken apart.
 * opts points into the capture ring: copy what you need before the next tw_ call. */
struct tw_seg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts;
	size_t optlen, plen;
	const uint8_t *payload; /* into the capture ring, like opts */
	uint16_t ip_id;
	uint8_t ttl;
	uint8_t tos; /* its low two bits are the ECN field (RFC 3168 §5) */
	int df;
};
struct tw_seg tw_expect_tcp(struct tw *t);
/* The same with a payload. */
size_t tw_tcp_data(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		   uint16_t win, const uint8_t *opts, size_t optlen, const uint8_t *data, size_t dlen);

/* One connection between the peer and the DUT: the two ISNs and ports its dialogue is relative
 * to.  tw_accept_conn makes one the peer (port 40000, ISN 1000) opened to a DUT listener on
 * `port`, with the peer's SYN options `opts`; fd is the accepted socket, non-blocking. */
struct tw_conn {
	int lfd, fd;
	uint32_t iss, peer_isn;
	uint16_t port, peer_port;
};
void tw_accept_conn(struct tw *t, struct tw_conn *c, uint16_t port, const uint8_t *opts, size_t optlen);
/* The same, the SYN-ACK answered rtt_ms later: its RTT sample is the connection's first (and
 * its minimum RTT), for tests of RTT-driven timers. */
void tw_accept_conn_rtt(struct tw *t, struct tw_conn *c, uint16_t port, const uint8_t *opts, size_t optlen,
			unsigned rtt_ms);

/* ---- the dialogue on one connection ----
 * Sequence numbers relative to each side's ISN + 1, as tcpdump shows them: 0 is each side's
 * first data byte, so a test reads as the exchange it checks, not as ISN arithmetic.  A
 * tw_conn from tw_accept_conn, or filled by hand for a connection the DUT opened. */
uint32_t tw_dut_seq(const struct tw_conn *c, uint32_t rel);  /* c->iss + 1 + rel */
uint32_t tw_peer_seq(const struct tw_conn *c, uint32_t rel); /* c->peer_isn + 1 + rel */
/* TCP options as the peer sends them, each word-aligned with NOPs the way Linux lays them
 * out, so a test's option bytes are a real stack's: MSS alone; NOP NOP sackOK; NOP NOP TS,
 * or sackOK TS sharing a word when TS follows sackOK (Linux's SYN); NOP wscale; NOP NOP SACK.
 * o.b and o.len are what tw_tcp()/tw_tcp_data() take. */
struct tw_opts {
	uint8_t b[40];
	size_t len;
};
void tw_opt_mss(struct tw_opts *o, uint16_t mss);
void tw_opt_sackok(struct tw_opts *o);
void tw_opt_ts(struct tw_opts *o, uint32_t val, uint32_t ecr);
void tw_opt_wscale(struct tw_opts *o, uint8_t shift);
/* n blocks [start, end), each edge relative to base (tw_dut_seq(c, 0) for a connection's);
 * no option at all for n = 0, so a caller's "no blocks" needs no branch */
void tw_opt_sack(struct tw_opts *o, uint32_t base, const uint32_t (*blocks)[2], unsigned n);
void tw_opt_nop(struct tw_opts *o); /* one NOP, no alignment: for layouts of one's own */
/* kind, length, the bytes, then NOPs to the next word, as Linux pads its Fast Open option;
 * for options the builder has no name for (Fast Open's 34, experiments' 254). */
void tw_opt_raw(struct tw_opts *o, uint8_t kind, const uint8_t *data, size_t len);

/* The peer's segment on c: seq at rseq, acking rack (the ack field is 0 without TW_ACK, as a
 * real stack leaves it); options optional. */
void tw_peer_send(struct tw *t, const struct tw_conn *c, uint32_t rseq, uint32_t rack, uint8_t flags,
		  uint16_t win, const void *data, size_t len);
void tw_peer_send_opts(struct tw *t, const struct tw_conn *c, const struct tw_opts *o, uint32_t rseq,
		       uint32_t rack, uint8_t flags, uint16_t win, const void *data, size_t len);
/* The DUT's next segment on c, failing the test unless its ports, flags, relative seq and ack
 * and payload length are these (without TW_ACK the ack field must be 0).  A macro, so that a
 * failure names the test's line and prints the segment got against the one wanted. */
#define tw_expect_seg(t, c, flags, rseq, rack, plen) \
	tw_expect_seg_at(t, c, flags, rseq, rack, plen, __FILE__, __LINE__)
struct tw_seg tw_expect_seg_at(struct tw *t, const struct tw_conn *c, uint8_t flags, uint32_t rseq, uint32_t rack,
			       size_t plen, const char *file, int line);
/* The body of s's first option of this kind (after kind and length), its length in *len; NULL
 * if s has none.  A malformed option list fails the test: the DUT must never send one. */
const uint8_t *tw_seg_opt(const struct tw_seg *s, uint8_t kind, size_t *len);

/* The TCP checksum over a segment with the IPv4 pseudo-header: 0 when valid. */
uint16_t tw_tcp_csum(const uint8_t *seg, size_t len, uint32_t src, uint32_t dst);
#define TW_SYN 0x02
#define TW_ACK 0x10
#define TW_RST 0x04
#define TW_FIN 0x01
#define TW_PSH 0x08
#define TW_OPT_NOP 1
#define TW_OPT_MSS 2
#define TW_OPT_WSCALE 3
#define TW_OPT_SACKOK 4
#define TW_OPT_SACK 5
#define TW_OPT_TS 8

uint16_t tw_rd16(const uint8_t *p);
uint32_t tw_rd32(const uint8_t *p);
void tw_wr16(uint8_t *p, uint16_t v);
void tw_wr32(uint8_t *p, uint32_t v);
/* Two stacks joined by the in-memory link in virtual time: a (side 0, 192.0.2.1, MAC ...:0a)
 * and b (side 1, 192.0.2.2, MAC ...:0b), seeded secrets, for end-to-end tests. */
void tw_pair_init(struct ustack_vclock *vc, struct ustack **a, struct ustack **b, struct ustack_memlink **ml,
		  const struct ustack_memlink_params *mp);
void tw_pair_fini(struct ustack *a, struct ustack *b, struct ustack_memlink *ml);

/* Waits (bounded: 10 s) until n application threads are asleep in blocking calls on the DUT
 * (ustack_sleeping_callers) — the readiness of a test that drives another thread's blocking
 * call; fails the test on timeout. */
void tw_wait_sleepers(struct tw *t, unsigned n);

/* Prints a frame the way the tracer does, for failure messages. */
void tw_print(const char *what, const struct tw_frame *f);

#endif
