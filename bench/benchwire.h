/*
 * Raw IPv4 + TCP segments for the benchmarks that feed one stack by hand (bench_ofo,
 * bench_synflood): built independently of ustack's emitters, checksums included.
 */
#ifndef USTACK_BENCH_BENCHWIRE_H
#define USTACK_BENCH_BENCHWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void bw_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void bw_wr32(uint8_t *p, uint32_t v) { bw_wr16(p, (uint16_t)(v >> 16)); bw_wr16(p + 2, (uint16_t)v); }
static inline uint32_t bw_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t bw_csum(const uint8_t *b, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* src:sport → dst:dport, window 65535, the options as given, dlen bytes of 'x'; returns the
 * packet's length (20 + 20 + optlen + dlen bytes at f). */
static inline size_t bw_tcp4(uint8_t *f, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
			     uint32_t ack, uint8_t flags, const uint8_t *opt, size_t optlen, size_t dlen)
{
	size_t th = 20 + optlen, tot = 20 + th + dlen;
	memset(f, 0, tot);
	f[0] = 0x45;
	bw_wr16(f + 2, (uint16_t)tot);
	f[8] = 64;
	f[9] = 6;
	bw_wr32(f + 12, src);
	bw_wr32(f + 16, dst);
	bw_wr16(f + 10, bw_csum(f, 20, 0));
	uint8_t *t = f + 20;
	bw_wr16(t, sport);
	bw_wr16(t + 2, dport);
	bw_wr32(t + 4, seq);
	bw_wr32(t + 8, ack);
	t[12] = (uint8_t)((th / 4) << 4);
	t[13] = flags;
	bw_wr16(t + 14, 65535);
	if (optlen)
		memcpy(t + 20, opt, optlen);
	memset(t + th, 'x', dlen);
	uint32_t pseudo = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + (uint32_t)(th + dlen);
	bw_wr16(t + 16, bw_csum(t, th + dlen, pseudo));
	return tot;
}

#endif
