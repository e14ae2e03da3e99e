/* The IPv4 header (RFC 791): a checked parse into a plain struct, and an emitter. */
#ifndef USTACK_WIRE_IPV4_H
#define USTACK_WIRE_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPV4_HLEN 20
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

struct ipv4_repr {
	uint8_t ihl;        /* header length in bytes */
	uint8_t tos, ttl, proto;
	uint16_t tot_len, id;
	bool df, mf;
	uint16_t frag_off;  /* in bytes */
	uint32_t saddr, daddr; /* host order */
	bool srr;           /* carries a source-route option (LSRR/SSRR) */
	bool csum_ok;       /* not on the wire: the device vouched for the transport checksum
			     * (Linux's skb->ip_summed); ipv4_parse leaves it false */
	uint16_t gso_size;  /* not on the wire: a GRO/GSO packet's segment size, or 0 */
	/* Not on the wire either, set by ip_rcv (false from ipv4_parse): */
	bool l2_bcast;      /* it came in a link-layer broadcast or multicast frame (Linux's
			     * skb->pkt_type PACKET_BROADCAST or PACKET_MULTICAST, not PACKET_HOST) */
	bool bcast;         /* to a broadcast address rather than one of ours (the input
			     * route's RTN_BROADCAST) */
};

/*
 * Validation in the order of Linux's ip_rcv_core(); each failure maps to the counter Linux
 * bumps for it (noted per value).
 */
enum ipv4_parse_err {
	IPV4_OK = 0,
	IPV4_ERR_SHORT,     /* fewer bytes than a header         → IpInHdrErrors       */
	IPV4_ERR_VERSION,   /* version != 4 or ihl < 5           → IpInHdrErrors       */
	IPV4_ERR_HDRLEN,    /* ihl beyond the frame              → IpInHdrErrors       */
	IPV4_ERR_CSUM,      /* bad header checksum               → IpExtInCsumErrors + IpInHdrErrors */
	IPV4_ERR_TRUNCATED, /* tot_len beyond the frame          → IpExtInTruncatedPkts */
	IPV4_ERR_TOTLEN,    /* tot_len shorter than the header   → IpInHdrErrors       */
	IPV4_ERR_OPTIONS,   /* malformed options                 → IpInHdrErrors       */
};

enum ipv4_parse_err ipv4_parse(const uint8_t *b, size_t len, struct ipv4_repr *r);
/* Writes a 20-byte header (no options) with its checksum. */
void ipv4_emit(uint8_t *b, const struct ipv4_repr *r);
const char *ipv4_parse_err_str(enum ipv4_parse_err e);

#endif
