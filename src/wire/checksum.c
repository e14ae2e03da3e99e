#include "wire/checksum.h"

#include <string.h>

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;

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

uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	/* The sum was taken over native-endian words; on a little-endian host that is the
	 * byte-swapped big-endian sum, so swap back before returning the host-order value. */
	uint16_t r = (uint16_t)~sum;
	const uint16_t one = 1;
	if (*(const uint8_t *)&one)
		r = (uint16_t)(r << 8 | r >> 8);
	return r;
}

uint32_t csum_pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len)
{
	uint8_t ph[12];
	ph[0] = (uint8_t)(saddr >> 24); ph[1] = (uint8_t)(saddr >> 16);
	ph[2] = (uint8_t)(saddr >> 8);  ph[3] = (uint8_t)saddr;
	ph[4] = (uint8_t)(daddr >> 24); ph[5] = (uint8_t)(daddr >> 16);
	ph[6] = (uint8_t)(daddr >> 8);  ph[7] = (uint8_t)daddr;
	ph[8] = 0; ph[9] = proto;
	ph[10] = (uint8_t)(len >> 8); ph[11] = (uint8_t)len;
	return csum_partial(ph, sizeof(ph), 0);
}
