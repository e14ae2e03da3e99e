/*
 * A SYN flood against one ustack listener, on one core: forged SYNs from random sources
 * (every one a new 4-tuple, as `hping3 --rand-source` sends them) handed to the stack as
 * frames, the SYN-ACKs it sends counted and thrown away — and, mixed in, legitimate clients
 * that complete their handshake with the cookie they get back and are accepted.
 *
 *   build/gcc/bench/bench_synflood [syns, default 5000000] [one legitimate client per N, default 1000]
 *
 * The listener has a backlog of 128 and net.ipv4.tcp_syncookies = 1 (Linux's default): the
 * first SYNs fill its SYN queue, every later one is answered with a cookie.  The figure is SYNs
 * turned into SYN-ACKs per second of CPU: parsing each SYN, the cookie, building and handing out
 * the SYN-ACK (the forged frames are built beforehand).  bench/synflood.sh runs this beside the
 * Linux kernel under the same kind of flood.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>

#include "benchwire.h"

#define DUT 0xc0000202u /* 192.0.2.2 */

static uint64_t synacks;
static uint32_t last_seq, last_dst;
static uint16_t last_dport;
static int xmit(void *link, const void *frame, size_t len)
{
	(void)link;
	const uint8_t *p = frame;
	if (len >= 40 && p[9] == 6 && (p[33] & 0x12) == 0x12) {
		synacks++;
		last_dst = (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19];
		last_dport = (uint16_t)(p[22] << 8 | p[23]);
		last_seq = (uint32_t)p[24] << 24 | (uint32_t)p[25] << 16 | (uint32_t)p[26] << 8 | p[27];
	}
	return 0;
}

/* A raw IPv4 + TCP segment from src:sport to the listener (port 80). */
static size_t seg(uint8_t *f, uint32_t src, uint16_t sport, uint32_t seq, uint32_t ack, uint8_t flags,
		  const uint8_t *opt, size_t optlen)
{
	return bw_tcp4(f, src, DUT, sport, 80, seq, ack, flags, opt, optlen, 0);
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *counter(struct ustack *st, const char *name, char *buf)
{
	uint64_t v = 0;
	ustack_counter_get(st, name, &v);
	snprintf(buf, 32, "%llu", (unsigned long long)v);
	return buf;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 5000000;
	long every = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	if (n < 1 || every < 1) {
		fprintf(stderr, "usage: bench_synflood [syns >= 1] [legitimate client every N >= 1]\n");
		return 2;
	}
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	static const uint8_t seed[32] = { 9 };
	struct ustack_config cfg = { .clock = &vc.clock, .secret_seed = seed, .name = "flooded" };
	struct ustack *st = ustack_create(&cfg);
	struct ustack_if_config ic = { .name = "raw0", .type = USTACK_LINK_RAWIP, .mtu = 1500, .xmit = xmit };
	int ifi = ustack_if_add(st, &ic);
	ustack_addr_add(st, ifi, (struct in_addr){ htonl(DUT) }, 24);
	struct ustack_route def = { .prefixlen = 0, .gateway = { htonl(0xc0000201) }, .ifindex = ifi };
	ustack_route_add(st, &def); /* SYN-ACKs to the forged sources leave through the gateway */
	int lfd = ustack_socket(st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
	ustack_bind(st, lfd, (struct sockaddr *)&a, sizeof(a));
	ustack_listen(st, lfd, 128);

	/* Linux's SYN: mss 1460, sackOK, TS, wscale 7 */
	uint8_t opts[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	/* The forged SYNs are built beforehand (a ring of 65,536 random 4-tuples: no state is
	 * kept for a cookie, so a repeat costs what a new one does), so that the CPU time measured
	 * is the stack's, not the flooder's. */
	enum { NFORGED = 65536, FLEN = 60 };
	static uint8_t forged[NFORGED][FLEN];
	uint8_t f[128];
	uint64_t rng = 0x243f6a8885a308d3ull;
	for (int k = 0; k < NFORGED; k++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		uint32_t src = (uint32_t)rng, seq = (uint32_t)(rng >> 32);
		if ((src >> 24) == 0 || (src >> 24) == 127 || (src >> 28) >= 0xe || (src >> 8) == (DUT >> 8))
			src = 0xcb007100u | (src & 0xff); /* keep to routable unicast: 203.0.113.x */
		uint16_t sport = (uint16_t)(1024 + (rng >> 48) % 60000);
		seg(forged[k], src, sport, seq, 0, 0x02, opts, sizeof(opts));
	}
	long legit = 0, served = 0;
	double c0 = cpu_s();
	for (long i = 0; i < n; i++) {
		if (i % every == every - 1) { /* a legitimate client: SYN, then the ACK */
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			uint32_t src, seq = (uint32_t)(rng >> 32);
			uint16_t sport = (uint16_t)(1024 + (rng >> 48) % 60000);
			legit++;
			src = 0xc6336400u | (uint32_t)(1 + legit % 250); /* 198.51.100.x */
			uint64_t before = synacks;
			ustack_input(st, ifi, f, seg(f, src, sport, seq, 0, 0x02, opts, sizeof(opts)));
			if (synacks == before || last_dst != src || last_dport != sport)
				continue;
			ustack_input(st, ifi, f, seg(f, src, sport, seq + 1, last_seq + 1, 0x10, NULL, 0));
			int fd = ustack_accept(st, lfd, NULL, NULL);
			if (fd >= 0) {
				served++;
				struct linger lg = { 1, 0 };
				ustack_setsockopt(st, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				ustack_close(st, fd);
			}
			continue;
		}
		ustack_input(st, ifi, forged[i % NFORGED], FLEN);
	}
	double cpu = cpu_s() - c0;
	char b1[32], b2[32], b3[32];
	printf("ustack, one core: %ld SYNs (%ld from legitimate clients) in %.3f s CPU\n", n, legit, cpu);
	printf("  %.0f SYN/s turned into SYN-ACKs per core (%llu SYN-ACKs)\n", (double)n / cpu,
	       (unsigned long long)synacks);
	printf("  legitimate clients served: %ld of %ld (%.1f%%)\n", served, legit,
	       legit ? 100.0 * (double)served / (double)legit : 100.0);
	printf("  SyncookiesSent %s, SyncookiesRecv %s, TCPReqQFullDoCookies %s\n",
	       counter(st, "TcpExtSyncookiesSent", b1), counter(st, "TcpExtSyncookiesRecv", b2),
	       counter(st, "TcpExtTCPReqQFullDoCookies", b3));
	ustack_destroy(st);
	return served == legit ? 0 : 1;
}
