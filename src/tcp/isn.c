/*
 * Initial sequence numbers and timestamp offsets (Linux's net/core/secure_seq.c).
 *
 * RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where F is a
 * keyed hash (SipHash-2-4 here, as in Linux) and M a timer.  RFC 6528 suggests a 4 µs timer;
 * ustack follows Linux, whose seq_scale() ticks every 64 ns (2^6 ns), which keeps the 32-bit
 * space from wrapping within an MSL on fast links (a period of 274 s).  The timer runs on the
 * stack's own clock, so ISNs are reproducible in virtual time with a seeded secret.
 *
 * Timestamps (RFC 7323 §7.1, Linux's tcp_v4_init_ts_off): each address pair gets its own
 * random offset added to a 1 ms clock, so TSvals reveal neither uptime nor other peers' clocks.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

uint32_t secure_tcp_seq(struct ustack *st, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint32_t key[3] = { laddr, raddr, (uint32_t)lport << 16 | rport };
	uint32_t hash = (uint32_t)secret_hash(&st->secrets, SECRET_ISN, key, sizeof(key));
	return hash + (uint32_t)((st->now * 1000u) >> 6);
}

uint32_t secure_tcp_ts_off(struct ustack *st, uint32_t laddr, uint32_t raddr)
{
	if (st->sysctl.tcp_timestamps != 1) /* 2: timestamps without random offsets */
		return 0;
	uint32_t key[2] = { laddr, raddr };
	return (uint32_t)secret_hash(&st->secrets, SECRET_TS_OFF, key, sizeof(key));
}

uint32_t tcp_clock_ms(struct ustack *st)
{
	return (uint32_t)(st->now / 1000u);
}
