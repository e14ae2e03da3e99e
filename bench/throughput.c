/*
 * Bulk TCP throughput between two ustack stacks over the in-memory link, on one core: one
 * thread runs both stacks, the link, and both applications (a sender writing 64 KiB at a time,
 * a receiver reading and discarding).  MTU 1500, default buffers, timestamps and SACK on, as
 * Linux negotiates them.  The figure counts payload bytes delivered to the receiving
 * application per second of CPU time — everything both TCP endpoints do, plus copying every
 * byte into the sender's ring, into a frame, out of the frame, and out to the application.
 *
 *   build/gcc/bench/bench_throughput [megabytes] [mtu] [loss-percent] [csum]
 *
 * csum 1 lets the link complete TCP checksums (USTACK_IF_CSUM), as two sockets over Linux's
 * loopback never compute them: the same segments, no checksum work.  csum 2 also lets TCP's
 * TSO packets (up to 64 KB) cross the link whole (USTACK_IF_TSO), as GSO packets cross Linux's
 * veth and loopback: the per-segment work is paid per 64 KB.
 *
 * Beside it, in the same run, Linux's loopback doing the same in one thread (two TCP sockets on
 * 127.0.0.1, non-blocking, the same 64 KiB writes and reads): the kernel's CPU time is the
 * process's system time, so both figures are bytes per second of one core.  Linux's loopback
 * has a 64 KB MTU and GSO, so compare it with csum 2.
 *
 * ustack ↔ Linux over TAP and Linux ↔ Linux over veth are measured by bench/throughput_tap.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Linux's loopback, the same loop: Gbit/s per second of CPU, or a negative number. */
static double linux_loopback(uint64_t total)
{
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), s = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (s = accept(l, NULL, NULL)) < 0) {
		perror("bench_throughput: linux loopback");
		for (int fd = 0, fds[3] = { l, c, s }; fd < 3; fd++)
			if (fds[fd] >= 0)
				close(fds[fd]);
		return -1;
	}
	fcntl(c, F_SETFL, O_NONBLOCK);
	fcntl(s, F_SETFL, O_NONBLOCK);
	static uint8_t buf[65536];
	memset(buf, 0x5a, sizeof(buf));
	uint64_t sent = 0, got = 0;
	double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	for (long rounds = 0; got < total && rounds < 100000000L; rounds++) {
		while (sent < total) {
			size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
			ssize_t w = send(c, buf, n, 0);
			if (w <= 0)
				break;
			sent += (uint64_t)w;
		}
		for (ssize_t r; (r = recv(s, buf, sizeof(buf), 0)) > 0;)
			got += (uint64_t)r;
	}
	double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	close(c);
	close(s);
	close(l);
	return got == total ? (double)got * 8 / cpu / 1e9 : -1;
}

int main(int argc, char **argv)
{
	long mb = argc > 1 ? atol(argv[1]) : 4096;
	unsigned mtu = argc > 2 ? (unsigned)atoi(argv[2]) : 1500;
	double loss = argc > 3 ? atof(argv[3]) / 100 : 0; /* percent, for looking at recovery */
	int csum = argc > 4 ? atoi(argv[4]) : 0; /* 0, 1 (checksum offload), 2 (and TSO) */
	static const uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 0xa }, mac_b[6] = { 2, 0, 0, 0, 0, 0xb };
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	struct ustack_config ca = { .clock = &vc.clock, .name = "a" }, cb = { .clock = &vc.clock, .name = "b" };
	struct ustack *a = ustack_create(&ca), *b = ustack_create(&cb);
	struct ustack_memlink_params mp = { .queue_limit = 4096, .loss = loss, .seed = 1, .csum_offload = csum >= 1, .tso = csum >= 2 };
	struct ustack_memlink *ml = ustack_memlink_create(&vc.clock, &mp);
	int ia = ustack_memlink_attach(ml, 0, a, "m0", mac_a, mtu);
	int ib = ustack_memlink_attach(ml, 1, b, "m0", mac_b, mtu);
	struct in_addr addr_a = { htonl(0xc0000201u) }, addr_b = { htonl(0xc0000202u) };
	ustack_addr_add(a, ia, addr_a, 24);
	ustack_addr_add(b, ib, addr_b, 24);
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(5001), .sin_addr = addr_b };
	ustack_bind(b, lfd, (struct sockaddr *)&s, sizeof(s));
	ustack_listen(b, lfd, 16);
	int cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ustack_connect(a, cfd, (struct sockaddr *)&s, sizeof(s));
	int sfd = -1;
	for (int i = 0; i < 100 && sfd < 0; i++) {
		ustack_memlink_run(ml, &vc, vc.now_us + 10000);
		sfd = ustack_accept4(b, lfd, NULL, NULL, SOCK_NONBLOCK);
	}
	if (sfd < 0) {
		fprintf(stderr, "bench_throughput: no connection\n");
		return 1;
	}
	static uint8_t buf[65536];
	memset(buf, 0x5a, sizeof(buf));
	uint64_t total = (uint64_t)mb << 20, sent = 0, got = 0;
	double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t v0 = vc.now_us;
	for (long rounds = 0; got < total && rounds < 100000000L; rounds++) {
		while (sent < total) {
			size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
			ssize_t w = ustack_send(a, cfd, buf, n, 0);
			if (w <= 0)
				break;
			sent += (uint64_t)w;
		}
		for (ssize_t r; (r = ustack_recv(b, sfd, buf, sizeof(buf), 0)) > 0;)
			got += (uint64_t)r;
		/* deliver what is on the wire (the link has no delay); time moves only when the
		 * link is idle, so delayed ACKs and timers still fire */
		if (ustack_memlink_deliver(ml) == 0)
			ustack_memlink_run(ml, &vc, vc.now_us + 1000);
	}
	double wall = now_s(CLOCK_MONOTONIC) - w0, cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	uint64_t retrans = 0, segs = 0;
	ustack_counter_get(a, "TcpRetransSegs", &retrans);
	ustack_counter_get(a, "TcpOutSegs", &segs);
	printf("ustack ↔ ustack, in-memory link%s, MTU %u, one core: %llu MiB in %.3f s CPU (%.3f s wall)\n",
	       csum >= 2 ? " (TSO packets whole, as veth)" : csum ? " (checksum offload, as loopback)" : "", mtu, (unsigned long long)(got >> 20), cpu, wall);
	printf("  %.2f Gbit/s per core, %.0f segments/s, %llu retransmitted, %.3f s of virtual time\n",
	       (double)got * 8 / cpu / 1e9, (double)segs / cpu, (unsigned long long)retrans,
	       (double)(vc.now_us - v0) / 1e6);
	if (getenv("BENCH_COUNTERS"))
		for (size_t i = 0; i < ustack_counter_count(); i++) {
			uint64_t va = ustack_counter_value(a, i), vb = ustack_counter_value(b, i);
			if (va || vb)
				printf("  %-28s a %-10llu b %llu\n", ustack_counter_name(i), (unsigned long long)va,
				       (unsigned long long)vb);
		}
	printf("  link dropped %llu\n", (unsigned long long)ustack_memlink_dropped(ml));
	if (loss == 0) {
		double lg = linux_loopback(total);
		if (lg > 0)
			printf("Linux, loopback (MTU 65536, GSO), one thread: %.2f Gbit/s per core; ustack / Linux %.2fx\n",
			       lg, (double)got * 8 / cpu / 1e9 / lg);
	}
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
	return got == total ? 0 : 1;
}
