/*
 * The TCP header (RFC 9293 §3.1) and its options: MSS (RFC 9293 §3.7.1), window scale and
 * timestamps (RFC 7323), SACK (RFC 2018), Fast Open cookies (RFC 7413, and the experimental
 * option 254/0xF989 Linux still accepts).
 *
 * Parsing never fails on options: like Linux's tcp_parse_options(), a malformed option list
 * is read up to the first bad option and the rest ignored, and an option of the wrong length
 * for its kind is skipped.  Which options count (MSS only on a SYN, ...) is the protocol's
 * business, not the parser's.
 */
#ifndef USTACK_WIRE_TCP_H
#define USTACK_WIRE_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCP_HLEN 20
#define TCP_MAX_OPTLEN 40

#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define TCPHDR_PSH 0x08
#define TCPHDR_ACK 0x10
#define TCPHDR_URG 0x20
#define TCPHDR_ECE 0x40
#define TCPHDR_CWR 0x80

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WINDOW 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TIMESTAMP 8
#define TCPOPT_FASTOPEN 34
#define TCPOPT_EXP 254
#define TCPOPT_FASTOPEN_MAGIC 0xF989

#define TCP_MAX_WSCALE 14
#define TCP_FASTOPEN_COOKIE_MIN 4
#define TCP_FASTOPEN_COOKIE_MAX 16

struct tcp_sack_block {
	uint32_t start, end;
};

struct tcp_opts {
	bool mss_ok, ws_ok, sack_ok, ts_ok, fastopen;
	bool fastopen_exp;  /* carried as option 254 with the 0xF989 magic */
	uint16_t mss;
	uint8_t wscale;     /* as sent; the receiver clamps to 14 */
	uint32_t tsval, tsecr;
	uint8_t nsack;
	struct tcp_sack_block sack[4];
	uint8_t cookie_len; /* 0 with fastopen set: a cookie request */
	uint8_t cookie[TCP_FASTOPEN_COOKIE_MAX];
};

struct tcp_repr {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t doff;  /* header length in bytes */
	uint8_t flags;
	uint16_t window, urg;
	struct tcp_opts opt;
	const uint8_t *payload;
	size_t plen;
	bool partial_csum; /* tcp_emit: leave the checksum to the device (TSO) */
};

/* Checks in the order of Linux's tcp_v4_rcv(); the comments name its counters. */
enum tcp_parse_err {
	TCP_OK = 0,
	TCP_ERR_SHORT,  /* fewer bytes than a header: dropped, TcpInSegs only      */
	TCP_ERR_DOFF,   /* data offset < 5: TcpInErrs                               */
	TCP_ERR_HDRLEN, /* data offset beyond the segment: dropped, TcpInSegs only  */
	TCP_ERR_CSUM,   /* checksum: TcpInCsumErrors + TcpInErrs                    */
};

/* saddr/daddr (host order) are the IPv4 addresses for the pseudo-header checksum.  With
 * TCP_ERR_CSUM every field is still filled in (for printers); with other errors none is. */
enum tcp_parse_err tcp_parse(const uint8_t *b, size_t len, uint32_t saddr, uint32_t daddr,
			     struct tcp_repr *r);
/* The same without the checksum, for a segment the device vouched for (CHECKSUM_UNNECESSARY). */
enum tcp_parse_err tcp_parse_trusted(const uint8_t *b, size_t len, struct tcp_repr *r);
void tcp_parse_options(const uint8_t *o, size_t len, struct tcp_opts *opt);

/* Bytes the options of opt take on the wire, padded to a multiple of 4. */
size_t tcp_options_len(const struct tcp_opts *opt, bool syn);
/*
 * Writes options in Linux's order and layout (tcp_options_write): MSS; then SACK-permitted
 * folded with timestamps as [SACK_PERM, TS] or [NOP, NOP, TS]; window scale as [NOP, WS];
 * SACK-permitted alone as [NOP, NOP, SACK_PERM]; SACK blocks after [NOP, NOP]; Fast Open.
 * Returns the bytes written (= tcp_options_len).
 */
size_t tcp_options_write(uint8_t *o, const struct tcp_opts *opt, bool syn);
/*
 * Writes header + options in front of r->plen payload bytes already at b + header length, and
 * the checksum over all of it.  Returns the header length.
 */
size_t tcp_emit(uint8_t *b, const struct tcp_repr *r, uint32_t saddr, uint32_t daddr);
/* The same with the options apart: r->opt is not read (a sender keeps its own, and copying
 * them into a repr costs as much as the rest of the header). */
size_t tcp_emit_opts(uint8_t *b, const struct tcp_repr *r, const struct tcp_opts *opt, uint32_t saddr,
		     uint32_t daddr);
/* No options: every field zero but the SACK blocks and the cookie's bytes, which are read only
 * as far as nsack and cookie_len say (clearing those too doubled the cost of a header). */
static inline void tcp_opts_clear(struct tcp_opts *o)
{
	o->mss_ok = o->ws_ok = o->sack_ok = o->ts_ok = o->fastopen = o->fastopen_exp = false;
	o->mss = 0;
	o->wscale = 0;
	o->tsval = o->tsecr = 0;
	o->nsack = 0;
	o->cookie_len = 0;
}
/* tcpdump-style flags: "S", "S.", ".", "R.", "F.", "P." ... */
/* tcpdump's flag letters ("S.", "FP.", all eight: "SFRPUEW."), NUL-terminated */
#define TCP_FLAGS_STR 9
void tcp_flags_str(uint8_t flags, char out[TCP_FLAGS_STR]);

#endif
