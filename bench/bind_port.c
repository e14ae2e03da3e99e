/*
 * bind() and listen() on a port that carries many accepted connections: the bind bucket's fast
 * path (Linux's tb->fastreuse / fastreuseport) against the walk over the port's owners.
 *
 * A server stack listens on port 80 with SO_REUSEPORT and accepts N connections (a client
 * stack over the in-memory link, from several addresses so that the 4-tuples suffice), which
 * all stay open and own the port with it.  Then, timed, on that port:
 *   reuseport bind+listen  another SO_REUSEPORT listener joins the group (the fast path:
 *                          FASTREUSEPORT_ANY; the walk would pass every connection);
 *   plain bind (refused)   a socket without either option: EADDRINUSE, found by the walk at
 *                          the first owner it meets (flat either way: a conflict ends a walk
 *                          early, only a socket that conflicts with nobody walked them all).
 * Each is repeated (the joined listener closed again) and the mean printed.
 *
 *   build/rel/bench/bench_bind_port [connections ...]     (default 1000 10000 100000 200000)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>
#include "benchpair.h"

#define NADDR 8 /* client addresses: 8 × 64k 4-tuples to the one port */

static struct bench_pair pair; /* the client (pair.a) and the server (pair.b) */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sock(struct ustack *st, int reuseport)
{
	int fd = ustack_socket(st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ustack_setsockopt(st, fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof(reuseport));
	return fd;
}

static int bind_listen(int fd, int listen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
	if (ustack_bind(pair.b, fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return listen ? ustack_listen(pair.b, fd, 4096) : 0;
}

static int run(long n)
{
	bench_pair_create(&pair);
	for (int i = 0; i < NADDR; i++) /* 192.0.2.10/24, then .11 to .17 as /32s (no second route) */
		if (ustack_addr_add(pair.a, pair.ia, (struct in_addr){ htonl(0xc000020au + (uint32_t)i) }, i ? 32 : 24) < 0) {
			fprintf(stderr, "address %d: %s\n", i, strerror(errno));
			return -1;
		}
	ustack_addr_add(pair.b, pair.ib, (struct in_addr){ htonl(0xc0000202u) }, 24);
	char v[32];
	snprintf(v, sizeof(v), "%ld", n + 1024);
	ustack_sysctl_set(pair.a, "fs.nr_open", v);
	ustack_sysctl_set(pair.b, "fs.nr_open", v);
	ustack_sysctl_set(pair.a, "net.ipv4.ip_local_port_range", "1024 65535");
	int lfd = sock(pair.b, 1);
	if (bind_listen(lfd, 1) < 0) {
		fprintf(stderr, "listen: %s\n", strerror(errno));
		return -1;
	}
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(0xc0000202u) };
	for (long i = 0; i < n; i++) {
		int c = ustack_socket(pair.a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in from = { .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(0xc000020au + (uint32_t)(i % NADDR)) };
		if (c < 0 || ustack_bind(pair.a, c, (struct sockaddr *)&from, sizeof(from)) < 0 ||
		    (ustack_connect(pair.a, c, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
			fprintf(stderr, "connection %ld: %s\n", i, strerror(errno));
			return -1;
		}
		while (ustack_memlink_deliver(pair.ml) > 0)
			;
		if (ustack_accept(pair.b, lfd, NULL, NULL) < 0) {
			fprintf(stderr, "accept %ld: %s\n", i, strerror(errno));
			return -1;
		}
	}
	enum { REPS = 200 };
	double t0 = now_s();
	for (int r = 0; r < REPS; r++) {
		int fd = sock(pair.b, 1);
		if (bind_listen(fd, 1) < 0) {
			fprintf(stderr, "reuseport bind+listen: %s\n", strerror(errno));
			return -1;
		}
		ustack_close(pair.b, fd);
	}
	double join = (now_s() - t0) / REPS;
	t0 = now_s();
	for (int r = 0; r < REPS; r++) {
		int fd = sock(pair.b, 0);
		if (bind_listen(fd, 0) == 0 || errno != EADDRINUSE) {
			fprintf(stderr, "plain bind was not refused\n");
			return -1;
		}
		ustack_close(pair.b, fd);
	}
	double refused = (now_s() - t0) / REPS;
	printf("  %9ld   %12.2f us   %12.2f us\n", n, join * 1e6, refused * 1e6);
	ustack_memlink_destroy(pair.ml);
	ustack_destroy(pair.a);
	ustack_destroy(pair.b);
	return 0;
}

int main(int argc, char **argv)
{
	long def[] = { 1000, 10000, 100000, 200000 };
	printf("bind()/listen() on port 80 with N accepted connections on it (mean of 200)\n");
	printf("  %9s   %15s   %15s\n", "N", "reuseport join", "plain, refused");
	if (argc < 2) {
		for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++)
			if (run(def[i]) < 0)
				return 1;
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		long n = strtol(argv[i], &end, 10);
		if (*end || n < 0 || n > NADDR * 64000L) {
			fprintf(stderr, "bench_bind_port: bad count '%s' (0-%ld)\n", argv[i], NADDR * 64000L);
			return 2;
		}
		if (run(n) < 0)
			return 1;
	}
	return 0;
}
