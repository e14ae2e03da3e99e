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

#define NADDR 8 /* client addresses: 8 × 64k 4-tuples to the one port */

static struct ustack *ua, *ub;
static struct ustack_memlink *ml;
static struct ustack_vclock vc;

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
	if (ustack_bind(ub, fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return listen ? ustack_listen(ub, fd, 4096) : 0;
}

static int run(long n)
{
	ustack_vclock_init(&vc, 0);
	static const uint8_t sa_seed[32] = { 1 }, sb_seed[32] = { 2 };
	struct ustack_config ca = { .clock = &vc.clock, .secret_seed = sa_seed, .name = "client" };
	struct ustack_config cb = { .clock = &vc.clock, .secret_seed = sb_seed, .name = "server" };
	ua = ustack_create(&ca);
	ub = ustack_create(&cb);
	ml = ustack_memlink_create(&vc.clock, NULL);
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	int ia = ustack_memlink_attach(ml, 0, ua, "m0", ma, 1500);
	int ib = ustack_memlink_attach(ml, 1, ub, "m0", mb, 1500);
	for (int i = 0; i < NADDR; i++) /* 192.0.2.10/24, then .11 to .17 as /32s (no second route) */
		if (ustack_addr_add(ua, ia, (struct in_addr){ htonl(0xc000020au + (uint32_t)i) }, i ? 32 : 24) < 0) {
			fprintf(stderr, "address %d: %s\n", i, strerror(errno));
			return -1;
		}
	ustack_addr_add(ub, ib, (struct in_addr){ htonl(0xc0000202u) }, 24);
	char v[32];
	snprintf(v, sizeof(v), "%ld", n + 1024);
	ustack_sysctl_set(ua, "fs.nr_open", v);
	ustack_sysctl_set(ub, "fs.nr_open", v);
	ustack_sysctl_set(ua, "net.ipv4.ip_local_port_range", "1024 65535");
	int lfd = sock(ub, 1);
	if (bind_listen(lfd, 1) < 0) {
		fprintf(stderr, "listen: %s\n", strerror(errno));
		return -1;
	}
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(0xc0000202u) };
	for (long i = 0; i < n; i++) {
		int c = ustack_socket(ua, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in from = { .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(0xc000020au + (uint32_t)(i % NADDR)) };
		if (c < 0 || ustack_bind(ua, c, (struct sockaddr *)&from, sizeof(from)) < 0 ||
		    (ustack_connect(ua, c, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)) {
			fprintf(stderr, "connection %ld: %s\n", i, strerror(errno));
			return -1;
		}
		while (ustack_memlink_deliver(ml) > 0)
			;
		if (ustack_accept(ub, lfd, NULL, NULL) < 0) {
			fprintf(stderr, "accept %ld: %s\n", i, strerror(errno));
			return -1;
		}
	}
	enum { REPS = 200 };
	double t0 = now_s();
	for (int r = 0; r < REPS; r++) {
		int fd = sock(ub, 1);
		if (bind_listen(fd, 1) < 0) {
			fprintf(stderr, "reuseport bind+listen: %s\n", strerror(errno));
			return -1;
		}
		ustack_close(ub, fd);
	}
	double join = (now_s() - t0) / REPS;
	t0 = now_s();
	for (int r = 0; r < REPS; r++) {
		int fd = sock(ub, 0);
		if (bind_listen(fd, 0) == 0 || errno != EADDRINUSE) {
			fprintf(stderr, "plain bind was not refused\n");
			return -1;
		}
		ustack_close(ub, fd);
	}
	double refused = (now_s() - t0) / REPS;
	printf("  %9ld   %12.2f us   %12.2f us\n", n, join * 1e6, refused * 1e6);
	ustack_memlink_destroy(ml);
	ustack_destroy(ua);
	ustack_destroy(ub);
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
