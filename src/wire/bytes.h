/*
 * Big-endian field access on byte buffers, free of alignment and aliasing traps.
 *
 * A load or store of the whole word through memcpy, byte-swapped on a little-endian host: one
 * instruction each way (movbe, or mov and bswap) where the byte-by-byte form, which GCC
 * merges only some of the time, built a TCP header one shifted byte at a time and then
 * copied it out of a stack temporary (tcp_emit_opts; about fifty instructions a segment in
 * all, parsing included).
 */
#ifndef USTACK_WIRE_BYTES_H
#define USTACK_WIRE_BYTES_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define WIRE_BE16(v) (v)
#define WIRE_BE32(v) (v)
#else
#define WIRE_BE16(v) __builtin_bswap16(v)
#define WIRE_BE32(v) __builtin_bswap32(v)
#endif

static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return WIRE_BE16(v);
}
static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return WIRE_BE32(v);
}
static inline void wr16(uint8_t *p, uint16_t v)
{
	v = WIRE_BE16(v);
	memcpy(p, &v, sizeof(v));
}
static inline void wr32(uint8_t *p, uint32_t v)
{
	v = WIRE_BE32(v);
	memcpy(p, &v, sizeof(v));
}

#endif
