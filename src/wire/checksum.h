/* The Internet checksum (RFC 1071), shared by IPv4, ICMP and TCP. */
#ifndef USTACK_WIRE_CHECKSUM_H
#define USTACK_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Unfolded 32-bit partial sum of a buffer, to be combined and folded. */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
/*
 * Folds and complements: the value to store in a checksum field, in host order.  The sum was
 * taken over native-endian words; on a little-endian host that is the byte-swapped big-endian
 * sum (the one's-complement sum commutes with swapping bytes), so it is swapped back.  Inline:
 * every packet in and out folds two or three sums.
 */
static inline uint16_t csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	uint16_t r = (uint16_t)~sum;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	r = (uint16_t)(r << 8 | r >> 8);
#endif
	return r;
}
/* Pseudo-header sum for TCP/UDP over IPv4 (addresses in host order), as a native-endian
 * partial sum like csum_partial's: the big-endian words summed in host order, then swapped
 * (csum_tcpudp_nofold, without a buffer). */
static inline uint32_t csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len)
{
	uint32_t s = (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) + proto + len;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	s = (s << 8 | s >> 8) & 0xffff;
#endif
	return s;
}

#endif
