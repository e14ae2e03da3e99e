/*
 * Initial sequence numbers and timestamp offsets (Linux's net/core/secure_seq.c).
 *
 * RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where F is a
 * keyed hash (SipHash-2-4 here, as in Linux) and M a timer.  RFC 6528 suggests a 4 µs timer;
 * ustack follows Linux, whose seq_scale() ticks every 64 ns (2^6 ns), which keeps the 32-bit
 * space from wrapping within an MSL on fast links (a period of 274 s).  The timer runs on the
 * stack's own clock, so ISNs are reproducible in virtual time with a seeded secret.
 *
 * Timestamps (RFC 7323 §7.1): each connection gets its own random offset added to a 1 ms
 * clock, so TSvals reveal neither uptime nor other connections' clocks.  Linux 6.18 draws both
 * from one keyed hash of the 4-tuple (secure_tcp_seq_and_ts_off: siphash_3u32 of the
 * addresses and the ports, its low half the ISN's F, its high half the offset) — one hash a
 * connection where there were two, and the offset per 4-tuple where it was per address pair.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

struct tcp_seq_and_ts_off secure_tcp_seq_and_ts_off(struct ustack *st, uint32_t laddr, uint32_t raddr,
						      uint16_t lport, uint16_t rport)
{
	uint32_t key[3] = { laddr, raddr, (uint32_t)lport << 16 | rport };
	uint64_t hash = secret_hash(&st->secrets, SECRET_ISN, key, sizeof(key));
	struct tcp_seq_and_ts_off r = {
		.seq = (uint32_t)hash + (uint32_t)((st->now * 1000u) >> 6), /* seq_scale */
		/* tcp_timestamps 2: timestamps without random offsets */
		.ts_off = st->sysctl.tcp_timestamps == 1 ? (uint32_t)(hash >> 32) : 0,
	};
	return r;
}

uint32_t secure_tcp_seq(struct ustack *st, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	return secure_tcp_seq_and_ts_off(st, laddr, raddr, lport, rport).seq;
}

uint32_t tcp_clock_ms(struct ustack *st)
{
	return (uint32_t)(st->now / 1000u);
}
