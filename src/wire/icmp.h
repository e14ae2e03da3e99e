/* ICMP for IPv4 (RFC 792). */
#ifndef USTACK_WIRE_ICMP_H
#define USTACK_WIRE_ICMP_H

#include <stddef.h>
#include <stdint.h>

#define ICMP_HLEN 8
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_TIMESTAMP 13
#define ICMP_TIMESTAMPREPLY 14
#define ICMP_EXT_ECHO 42 /* RFC 8335 PROBE */
#define NR_ICMP_TYPES 18
#define ICMP_ADDRESS 17
#define ICMP_ADDRESSREPLY 18
#define ICMP_NET_UNREACH 0
#define ICMP_HOST_UNREACH 1
#define ICMP_PROT_UNREACH 2
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_EXC_FRAGTIME 1

struct icmp_repr {
	uint8_t type, code;
	uint32_t rest; /* the 4 bytes after the checksum: id/seq, mtu, pointer */
};

/* -1 when shorter than a header; the checksum is checked separately by icmp_csum_ok. */
int icmp_parse(const uint8_t *b, size_t len, struct icmp_repr *r);
int icmp_csum_ok(const uint8_t *b, size_t len);
/* Writes the header over b[0..8) and the checksum over b[0..len). */
void icmp_emit(uint8_t *b, size_t len, const struct icmp_repr *r);
const char *icmp_type_str(uint8_t type);

#endif
