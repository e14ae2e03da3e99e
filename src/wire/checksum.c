#include "wire/checksum.h"

#include <string.h>

/* Two 64-bit lanes (SSE2's, NEON's; GCC and Clang lower the vector type for any target). */
typedef uint64_t csum_v2u64 __attribute__((vector_size(16)));

/*
 * The Internet checksum's partial sum (RFC 1071): 16-bit words added in one's complement,
 * carried as a 32-bit sum to fold later.  Linux's x86 version adds 64-bit words with carry
 * (adcq); C has no carry flag, so each 64-bit word is split into its two 32-bit halves, added
 * into 64-bit accumulators with room for the carries (a buffer would need 32 GB to overflow
 * one), and the halves folded at the end: one's-complement addition does not care where its
 * carries land, so any grouping of the words gives the same folded sum (RFC 1071 §2(A), (B)).
 *
 * Long buffers (a jumbo frame, a TSO packet) go 64 bytes a round through four independent
 * vector accumulators, so that no add waits on the one before: about twice the scalar
 * loop's speed on data in cache.  The rest, and short buffers, take the scalar loop.
 */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;

	if (len >= 64) {
		const csum_v2u64 lo = { 0xffffffffu, 0xffffffffu };
		csum_v2u64 a = { 0, 0 }, b = { 0, 0 }, c = { 0, 0 }, d = { 0, 0 };
		do {
			csum_v2u64 w0, w1, w2, w3;
			memcpy(&w0, p, 16);
			memcpy(&w1, p + 16, 16);
			memcpy(&w2, p + 32, 16);
			memcpy(&w3, p + 48, 16);
			a += (w0 & lo) + (w1 & lo);
			b += (w0 >> 32) + (w1 >> 32);
			c += (w2 & lo) + (w3 & lo);
			d += (w2 >> 32) + (w3 >> 32);
			p += 64;
			len -= 64;
		} while (len >= 64);
		a += b + c + d; /* a lane gains < 2^35 a round: no overflow below 32 GB of buffer */
		acc += (a[0] & 0xffffffffu) + (a[0] >> 32) + (a[1] & 0xffffffffu) + (a[1] >> 32);
	}

	/* Eight bytes at a time: the one's-complement sum is byte-order independent as long as
	 * it is folded in the same order, so sum big-endian 16-bit words via 64-bit loads. */
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		acc += (w & 0xffffffffu) + (w >> 32);
		p += 8;
		len -= 8;
	}
	while (len >= 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	while (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		acc += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint16_t w = 0;
		memcpy(&w, p, 1);
		acc += w;
	}
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}
