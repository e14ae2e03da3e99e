/*
 * Out-of-order data under attack: what one segment costs the receiver, and what the queue
 * holds, as a peer sends 100,000 one-byte segments with one-byte gaps (each its own run) —
 * ascending, descending and in random order — and then 100,000 segments far outside the
 * window.  The receiver has a 4 MB SO_RCVBUF, but a new connection offers only its initial
 * window (64 kB here; it grows with in-order data, which an attacker does not send), so about
 * 32,768 of the segments fall inside it and each becomes a run; the others are answered as
 * out-of-window segments.  Before the run set, a segment cost 87-247 us and rose linearly
 * with the queue; memory was 32 bytes per payload byte.
 *
 *   build/gcc/bench/bench_ofo [segments, default 100000]
 *
 * Times are wall-clock per segment, averaged over each tenth of the run, so growth with the
 * queue's size shows as a rising column.
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
#include "tcp/tcp.h"
#include "socket/socket.h"
#include "benchwire.h"

#define DUT 0xc0000202u
#define PEER 0xc0000201u

static uint8_t last[2048];
static size_t last_len;
static int xmit(void *link, const void *frame, size_t len)
{
	(void)link;
	if (len <= sizeof(last)) {
		memcpy(last, frame, len);
		last_len = len;
	}
	return 0;
}

/* A raw IPv4 packet from the peer: TCP from port 40000 to 80. */
static size_t seg(uint8_t *f, uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *opt, size_t optlen,
		  size_t dlen)
{
	return bw_tcp4(f, PEER, DUT, 40000, 80, seq, ack, flags, opt, optlen, dlen);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One scenario on a fresh stack; order 0 ascending, 1 descending, 2 random, 3 out of window. */
static void run(long n, int order)
{
	static const char *names[] = { "ascending", "descending", "random", "out-of-window" };
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	static const uint8_t seed[32] = { 7 };
	struct ustack_config cfg = { .clock = &vc.clock, .secret_seed = seed };
	struct ustack *st = ustack_create(&cfg);
	struct ustack_if_config ic = { .name = "raw0", .type = USTACK_LINK_RAWIP, .mtu = 1500, .xmit = xmit };
	int ifi = ustack_if_add(st, &ic);
	ustack_addr_add(st, ifi, (struct in_addr){ htonl(DUT) }, 24);
	ustack_sysctl_set(st, "net.core.rmem_max", "4194304");
	int lfd = ustack_socket(st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int big = 4 << 20;
	ustack_setsockopt(st, lfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
	ustack_bind(st, lfd, (struct sockaddr *)&a, sizeof(a));
	ustack_listen(st, lfd, 8);
	static const uint8_t synopt[] = { 2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 9 }; /* MSS, SACK, wscale 9 */
	uint8_t f[2048];
	ustack_input(st, ifi, f, seg(f, 1000, 0, 0x02, synopt, sizeof(synopt), 0));
	uint32_t iss = bw_rd32(last + 24);
	ustack_input(st, ifi, f, seg(f, 1001, iss + 1, 0x10, NULL, 0, 0));
	int fd = ustack_accept(st, lfd, NULL, NULL);
	if (fd < 0) {
		fprintf(stderr, "bench_ofo: no connection: %s\n", strerror(errno));
		exit(2);
	}
	uint32_t *k = malloc((size_t)n * sizeof(*k));
	for (long i = 0; i < n; i++)
		k[i] = order == 1 ? (uint32_t)(2 * (n - i) + 1) : (uint32_t)(2 * i + 1);
	uint64_t rng = 88172645463325252ull;
	if (order == 2)
		for (long i = n - 1; i > 0; i--) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			long j = (long)(rng % (uint64_t)(i + 1));
			uint32_t t = k[i];
			k[i] = k[j];
			k[j] = t;
		}
	if (order == 3)
		for (long i = 0; i < n; i++)
			k[i] = 100000000u + (uint32_t)i * 1000u;
	printf("%-14s", names[order]);
	long tenth = n / 10;
	for (long i = 0; i < n; i += tenth) {
		double t0 = now_ns();
		for (long j = i; j < i + tenth && j < n; j++)
			ustack_input(st, ifi, f, seg(f, 1001 + k[j], iss + 1, 0x10, NULL, 0, 1));
		printf(" %6.0f", (now_ns() - t0) / (double)tenth);
	}
	stack_lock(st);
	struct sock *sk = sock_lookup_fd(st, fd);
	printf("   runs %6u  bytes %6u  node memory %7zu B\n", sk->ofo_runs, sk->ofo_bytes,
	       (size_t)sk->ofo_runs * 32u);
	stack_unlock(st);
	free(k);
	ustack_destroy(st);
}

int main(int argc, char **argv)
{
	long n = 100000;
	if (argc > 1) {
		char *end;
		n = strtol(argv[1], &end, 10);
		if (*end || n < 10) {
			fprintf(stderr, "usage: bench_ofo [segments >= 10]\n");
			return 2;
		}
	}
	printf("ns per segment, each tenth of %ld one-byte segments (frame build included)\n", n);
	for (int order = 0; order < 4; order++)
		run(n, order);
	return 0;
}
