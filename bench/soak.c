/*
 * Soak: millions of connect / transfer / close cycles between two stacks on the in-memory
 * link, in virtual time, with the process's resident memory sampled as they go.  A stack that
 * leaks anything per connection — a socket, a request socket, an out-of-order node, a timer, a
 * bind bucket — grows here; one that does not stays flat once TIME_WAIT has filled.
 *
 * One cycle: the client connects (port from the ephemeral range), writes 1000 bytes, the
 * server reads them and answers 1000, both close (client first, so the client's side holds
 * TIME_WAIT for 60 s of virtual time); each cycle then advances the clock 5 ms, which keeps
 * about 12,000 connections in TIME_WAIT at any moment — within the 28,232 ports of
 * ip_local_port_range, as a busy client would be.
 *
 *   build/gcc/bench/bench_soak [cycles, default 10000000]
 *
 * Prints RSS every tenth of the run and exits 1 if, once TIME_WAIT has filled (the first
 * sample at or after 2 × 60 s of virtual time), a later sample exceeds it by more than 5%.
 *
 * glibc is told not to give the top of its heap back after every free (M_TRIM_THRESHOLD):
 * each connection allocates its receive and send rings (about 200 kB each at the default
 * buffer sizes) and frees them at close, and without this every cycle pays two brk() calls
 * and their page faults — 90% of the time.  That cost is real and belongs to the fast-path
 * work (a per-stack ring cache); the soak measures growth, not speed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>

#define STEP_US 5000u
#define XFER 1000

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, long i)
{
	fprintf(stderr, "bench_soak: %s failed at cycle %ld: %s\n", what, i, strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	long n = 10000000;
	if (argc > 1) {
		char *end;
		n = strtol(argv[1], &end, 10);
		if (*end || n < 10) {
			fprintf(stderr, "usage: bench_soak [cycles >= 10]\n");
			return 2;
		}
	}
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	static const uint8_t sa_seed[32] = { 1 }, sb_seed[32] = { 2 };
	struct ustack_config ca = { .clock = &vc.clock, .secret_seed = sa_seed, .name = "client" };
	struct ustack_config cb = { .clock = &vc.clock, .secret_seed = sb_seed, .name = "server" };
	struct ustack *a = ustack_create(&ca), *b = ustack_create(&cb);
	struct ustack_memlink *ml = ustack_memlink_create(&vc.clock, NULL);
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	int ia = ustack_memlink_attach(ml, 0, a, "m0", ma, 1500);
	int ib = ustack_memlink_attach(ml, 1, b, "m0", mb, 1500);
	struct in_addr aa = { htonl(0xc0000201) }, ab = { htonl(0xc0000202) };
	ustack_addr_add(a, ia, aa, 24);
	ustack_addr_add(b, ib, ab, 24);
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = ab };
	if (ustack_bind(b, lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || ustack_listen(b, lfd, 4096) < 0)
		return fail("listen", 0);

	static uint8_t out[XFER], in[XFER];
	for (int i = 0; i < XFER; i++)
		out[i] = (uint8_t)i;
	long base = 0, max = 0;
	double t0 = now_s();
	printf("%12s %10s %10s\n", "cycles", "rss_kb", "cycles/s");
	for (long i = 0; i < n; i++) {
		int cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (cfd < 0)
			return fail("socket", i);
		if (ustack_connect(a, cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
			return fail("connect", i);
		ustack_memlink_run(ml, &vc, vc.now_us);
		int afd = ustack_accept4(b, lfd, NULL, NULL, SOCK_NONBLOCK);
		if (afd < 0)
			return fail("accept", i);
		if (ustack_send(a, cfd, out, XFER, 0) != XFER)
			return fail("client send", i);
		ustack_memlink_run(ml, &vc, vc.now_us);
		if (ustack_recv(b, afd, in, XFER, 0) != XFER || memcmp(in, out, XFER))
			return fail("server recv", i);
		if (ustack_send(b, afd, out, XFER, 0) != XFER)
			return fail("server send", i);
		ustack_memlink_run(ml, &vc, vc.now_us);
		if (ustack_recv(a, cfd, in, XFER, 0) != XFER)
			return fail("client recv", i);
		ustack_close(a, cfd);
		ustack_memlink_run(ml, &vc, vc.now_us);
		ustack_close(b, afd);
		ustack_memlink_run(ml, &vc, vc.now_us + STEP_US);
		if ((i + 1) % (n / 10) == 0) {
			long r = rss_kb();
			if (!base && (uint64_t)(i + 1) * STEP_US >= 2 * 60000000ull)
				base = r;
			else if (base && r > max)
				max = r;
			printf("%12ld %10ld %10.0f\n", i + 1, r, (double)(i + 1) / (now_s() - t0));
			fflush(stdout);
		}
	}
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
	double growth = base ? 100.0 * (double)(max - base) / (double)base : 0;
	if (!base) {
		printf("too few cycles to reach TIME_WAIT's steady state (%u needed)\n", 2 * 60000000u / STEP_US);
		return 2;
	}
	printf("RSS once TIME_WAIT filled %ld kB, largest later %ld kB: %+.1f%% (limit +5%%)\n", base, max, growth);
	return growth > 5.0 ? 1 : 0;
}
