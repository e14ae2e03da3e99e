/* The Internet checksum (RFC 1071), shared by IPv4, ICMP and TCP. */
#ifndef USTACK_WIRE_CHECKSUM_H
#define USTACK_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Unfolded 32-bit partial sum of a buffer, to be combined and folded. */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
/* Folds and complements: the value to store in a checksum field. */
uint16_t csum_fold(uint32_t sum);
/* Pseudo-header sum for TCP/UDP over IPv4 (addresses in host order). */
uint32_t csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len);

#endif
