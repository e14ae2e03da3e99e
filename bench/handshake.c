/*
 * Handshakes per second and memory per socket: ustack (two stacks over the in-memory link,
 * one thread) beside Linux's own loopback doing the same in the same run.
 *
 * One handshake = socket + connect + (SYN, SYN-ACK, ACK) + accept + close of both ends.  Both
 * sides close with RST (SO_LINGER {1,0} on Linux) so neither accumulates TIME_WAIT sockets and
 * runs out of ports: the figure is connection setup, not teardown.  ustack twice: computing
 * and checking every TCP checksum, then with the link completing them (USTACK_IF_CSUM), as two
 * sockets over Linux's loopback never compute them.
 *
 *   build/gcc/bench/bench_handshake [ustack-handshakes] [linux-handshakes]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>
#include "tcp/tcp.h"

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
	double per_sec, cpu_us;
	long n;
};

static struct result bench_ustack(long n, int csum)
{
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	static const uint8_t sa_seed[32] = { 1 }, sb_seed[32] = { 2 };
	struct ustack_config ca = { .clock = &vc.clock, .secret_seed = sa_seed, .name = "client" };
	struct ustack_config cb = { .clock = &vc.clock, .secret_seed = sb_seed, .name = "server" };
	struct ustack *a = ustack_create(&ca), *b = ustack_create(&cb);
	struct ustack_memlink_params mp = { .csum_offload = csum };
	struct ustack_memlink *ml = ustack_memlink_create(&vc.clock, &mp);
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	int ia = ustack_memlink_attach(ml, 0, a, "m0", ma, 1500);
	int ib = ustack_memlink_attach(ml, 1, b, "m0", mb, 1500);
	struct in_addr aa = { htonl(0xc0000201) }, ab = { htonl(0xc0000202) };
	ustack_addr_add(a, ia, aa, 24);
	ustack_addr_add(b, ib, ab, 24);
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = ab };
	ustack_bind(b, lfd, (struct sockaddr *)&sa, sizeof(sa));
	ustack_listen(b, lfd, 4096);

	struct result r = { 0, 0, 0 };
	double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		int cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (ustack_connect(a, cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
			fprintf(stderr, "connect: %s after %ld\n", strerror(errno), i);
			break;
		}
		while (ustack_memlink_deliver(ml) > 0)
			;
		int afd = ustack_accept(b, lfd, NULL, NULL);
		if (afd < 0) {
			fprintf(stderr, "accept: %s after %ld\n", strerror(errno), i);
			break;
		}
		struct linger lg = { 1, 0 }; /* RST on close, as the Linux side does */
		ustack_setsockopt(b, afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		ustack_setsockopt(a, cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		ustack_close(b, afd);
		ustack_close(a, cfd);
		while (ustack_memlink_deliver(ml) > 0)
			;
		r.n++;
	}
	double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	r.per_sec = (double)r.n / (t1 - t0);
	r.cpu_us = (c1 - c0) / (double)r.n * 1e6;
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
	return r;
}

static struct result bench_linux(long n)
{
	struct result r = { 0, 0, 0 };
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		perror("linux loopback");
		return r;
	}
	struct linger lg = { 1, 0 };
	double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		int cfd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("connect");
			close(cfd);
			break;
		}
		int afd = accept(lfd, NULL, NULL);
		setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(afd);
		close(cfd);
		r.n++;
	}
	double t1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	close(lfd);
	r.per_sec = (double)r.n / (t1 - t0);
	r.cpu_us = (c1 - c0) / (double)r.n * 1e6;
	return r;
}

/* Linux's slab object size for a cache, from /proc/slabinfo (root only), or 0. */
static long slab_objsize(const char *cache)
{
	FILE *f = fopen("/proc/slabinfo", "r");
	if (!f)
		return 0;
	char line[512], name[128];
	long objsize = 0, active, num;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %ld %ld %ld", name, &active, &num, &objsize) == 4 && !strcmp(name, cache))
			break;
		else
			objsize = 0;
	fclose(f);
	return objsize;
}

int main(int argc, char **argv)
{
	long nu = argc > 1 ? atol(argv[1]) : 200000;
	long nl = argc > 2 ? atol(argv[2]) : 20000;
	struct result u = bench_ustack(nu, 0);
	struct result uc = bench_ustack(nu, 1);
	struct result l = bench_linux(nl);
	printf("handshakes (connect + accept + close, one thread, one core)\n");
	printf("  %-28s %10.0f /s  %7.2f us CPU each  (%ld)\n", "ustack, in-memory link", u.per_sec, u.cpu_us, u.n);
	printf("  %-28s %10.0f /s  %7.2f us CPU each  (%ld)\n", "ustack, checksums as lo", uc.per_sec, uc.cpu_us,
	       uc.n);
	printf("  %-28s %10.0f /s  %7.2f us CPU each  (%ld)\n", "Linux, loopback", l.per_sec, l.cpu_us, l.n);
	if (l.per_sec > 0)
		printf("  ratio ustack / Linux: %.1fx\n", u.per_sec / l.per_sec);

	/* memory: the structs, and the slab objects they are carved as (core/slab.h) */
	struct kmem_cache rqc = KMEM_CACHE_INIT(struct request_sock), skc = KMEM_CACHE_INIT(struct sock);
	long lrq = slab_objsize("request_sock_TCP"), lsk = slab_objsize("TCP");
	printf("memory per socket (without buffers)\n");
	printf("  %-28s %5zu B (slab object %zu B)   Linux request_sock_TCP: %s%ld B\n", "ustack request socket",
	       sizeof(struct request_sock), rqc.size, lrq ? "" : "320 (reference) ", lrq ? lrq : 320);
	printf("  %-28s %5zu B (slab object %zu B)   Linux TCP: %s%ld B\n", "ustack established socket",
	       sizeof(struct sock), skc.size, lsk ? "" : "2368 (reference) ", lsk ? lsk : 2368);
	return 0;
}
