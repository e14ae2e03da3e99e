/*
 * Connection cost as connections accumulate: ustack (two stacks over the in-memory link, one
 * thread) beside Linux's loopback, in the same run.
 *
 * At each level — 1k, 10k, 100k, 1M open connections by default, counted as endpoints (a
 * client and a server socket are two, as `ss` counts them on a host that runs both) — the
 * connections stay open, 10,000 per listening port, and three rates are timed:
 *   fill/s        the connections opened to reach the level from the one before: the rate
 *                 with memory growing (malloc, page faults), and the slowest of them (the
 *                 established hash doubling, say: the pause a connection saw);
 *   new/s         connect + handshake + accept of a batch of connections that then stay open
 *                 for the batch (closed untimed afterwards, so the level holds; one batch
 *                 untimed first, so the memory is in hand and the figure is the tables' cost);
 *   setup+close/s connect + handshake + accept + close of both ends (RST, SO_LINGER {1,0},
 *                 so no TIME_WAIT piles up), one connection at a time.
 * and memory per open connection: the process's resident memory (ustack, from after the two
 * stacks were made) or the kernel's slab growth (Linux, whole machine), divided
 * by the endpoints open.  ustack runs in virtual time that never moves here: no timer work.
 *
 * Linux stops at its descriptor limit (fs.nr_open, 1,048,576 by default): one process cannot
 * hold more sockets.  ustack's limit is its own fs.nr_open, raised here to fit.
 *
 *   build/rel/bench/bench_scaling [--ustack-only] [level ...]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>
#include "benchpair.h"

#define PER_PORT 10000  /* open connections per listening port */
#define PORT_BASE 20000 /* listening ports from here; PORT_BASE - 1 for setup+close */
#define MIN_TIMED 0.3   /* seconds each figure is timed for, at least */
#define BATCH 500       /* new connections timed at a time: the same at every level, so that
			 * their own memory is as hot at 1M as at 1k and the figure is the tables' */

static double now_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One side of the comparison: open a connection that stays, close one, do a whole one. */
struct side {
	const char *name;
	int (*open_pair)(struct side *s, long idx); /* 0, or -1 */
	void (*close_pair)(struct side *s, long idx);
	int (*setup_close)(struct side *s);
	size_t (*mem)(void);
	int *cfd, *afd;
	int *lfd; /* by listening port - PORT_BASE */
	long nports;
};

/* ---- ustack ---- */

static struct bench_pair pair; /* the client (pair.a) and the server (pair.b) */
static const struct in_addr addr_a = { 0x010200c0 }, addr_b = { 0x020200c0 }; /* 192.0.2.1, .2 */

static int u_listen(int port)
{
	int lfd = ustack_socket(pair.b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = addr_b };
	if (ustack_bind(pair.b, lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || ustack_listen(pair.b, lfd, 4096) < 0) {
		fprintf(stderr, "ustack listen %d: %s\n", port, strerror(errno));
		return -1;
	}
	return lfd;
}

static int u_pair(int port, int lfd, int *cfd, int *afd)
{
	*cfd = ustack_socket(pair.a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = addr_b };
	if (*cfd < 0 || (ustack_connect(pair.a, *cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
		fprintf(stderr, "ustack connect: %s\n", strerror(errno));
		return -1;
	}
	while (ustack_memlink_deliver(pair.ml) > 0)
		;
	*afd = ustack_accept(pair.b, lfd, NULL, NULL);
	if (*afd < 0) {
		fprintf(stderr, "ustack accept: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void u_close(int cfd, int afd)
{
	struct linger lg = { 1, 0 };
	ustack_setsockopt(pair.b, afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ustack_setsockopt(pair.a, cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ustack_close(pair.b, afd);
	ustack_close(pair.a, cfd);
	while (ustack_memlink_deliver(pair.ml) > 0)
		;
}

static int u_open_pair(struct side *s, long idx)
{
	long p = idx / PER_PORT;
	if (s->lfd[p] < 0 && (s->lfd[p] = u_listen(PORT_BASE + (int)p)) < 0)
		return -1;
	return u_pair(PORT_BASE + (int)p, s->lfd[p], &s->cfd[idx], &s->afd[idx]);
}

static void u_close_pair(struct side *s, long idx)
{
	u_close(s->cfd[idx], s->afd[idx]);
}

static int u_setup_close(struct side *s)
{
	static int lfd = -1;
	int cfd, afd;
	(void)s;
	if (lfd < 0 && (lfd = u_listen(PORT_BASE - 1)) < 0)
		return -1;
	if (u_pair(PORT_BASE - 1, lfd, &cfd, &afd) < 0)
		return -1;
	u_close(cfd, afd);
	return 0;
}

/* the process's resident memory: ustack's slabs and tables are mapped, not malloc'd */
static size_t u_mem(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void u_init(long max_endpoints)
{
	bench_pair_create(&pair);
	ustack_addr_add(pair.a, pair.ia, addr_a, 24);
	ustack_addr_add(pair.b, pair.ib, addr_b, 24);
	char v[32];
	snprintf(v, sizeof(v), "%ld", max_endpoints + 1024);
	if (ustack_sysctl_set(pair.a, "fs.nr_open", v) < 0 || ustack_sysctl_set(pair.b, "fs.nr_open", v) < 0)
		fprintf(stderr, "fs.nr_open %s: %s\n", v, strerror(errno));
}

/* ---- Linux, loopback ---- */

static int l_listen(int port)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "linux listen %d: %s\n", port, strerror(errno));
		return -1;
	}
	return lfd;
}

static int l_pair(int port, int lfd, int *cfd, int *afd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (*cfd < 0 || connect(*cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "linux connect: %s\n", strerror(errno));
		if (*cfd >= 0)
			close(*cfd);
		return -1;
	}
	*afd = accept(lfd, NULL, NULL);
	if (*afd < 0) {
		fprintf(stderr, "linux accept: %s\n", strerror(errno));
		close(*cfd);
		return -1;
	}
	return 0;
}

static void l_close(int cfd, int afd)
{
	struct linger lg = { 1, 0 };
	setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(afd);
	close(cfd);
}

static int l_open_pair(struct side *s, long idx)
{
	long p = idx / PER_PORT;
	if (s->lfd[p] < 0 && (s->lfd[p] = l_listen(PORT_BASE + (int)p)) < 0)
		return -1;
	return l_pair(PORT_BASE + (int)p, s->lfd[p], &s->cfd[idx], &s->afd[idx]);
}

static void l_close_pair(struct side *s, long idx)
{
	l_close(s->cfd[idx], s->afd[idx]);
}

static int l_setup_close(struct side *s)
{
	static int lfd = -1;
	int cfd, afd;
	(void)s;
	if (lfd < 0 && (lfd = l_listen(PORT_BASE - 1)) < 0)
		return -1;
	if (l_pair(PORT_BASE - 1, lfd, &cfd, &afd) < 0)
		return -1;
	l_close(cfd, afd);
	return 0;
}

/* the kernel's slab memory (whole machine): what Linux's sockets take — the TCP object, its
 * socket inode, dentry and file — so run it on an otherwise idle machine */
static size_t l_mem(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

/* ---- the levels ---- */

struct figures {
	double fill_per_s, fill_max_us, new_per_s, new_cpu_us, sc_per_s, sc_cpu_us, mem_per_conn;
	bool ok;
};

static struct figures run_level(struct side *s, long *open_pairs, long level, size_t mem0)
{
	struct figures f = { 0 };
	long target = level / 2, from = *open_pairs;
	double fill0 = now_s(CLOCK_MONOTONIC), prev = fill0;
	for (; *open_pairs < target; (*open_pairs)++) {
		if (s->open_pair(s, *open_pairs) < 0)
			return f;
		double t = now_s(CLOCK_MONOTONIC); /* the slowest one: a table's growth, say */
		if ((t - prev) * 1e6 > f.fill_max_us)
			f.fill_max_us = (t - prev) * 1e6;
		prev = t;
	}
	if (*open_pairs > from)
		f.fill_per_s = (double)(*open_pairs - from) / (now_s(CLOCK_MONOTONIC) - fill0);
	f.mem_per_conn = (double)(s->mem() - mem0) / (double)(2 * *open_pairs);
	/* new connections that stay: batches above the level, closed untimed after */
	long batch = BATCH, n = 0;
	double wall = 0, cpu = 0;
	/* one batch untimed first, so that every level is timed with the memory of its batch
	 * already in hand (the fill rate above is the figure with memory growth) */
	for (long i = 0; i < batch; i++)
		if (s->open_pair(s, *open_pairs + i) < 0)
			return f;
	for (long i = 0; i < batch; i++)
		s->close_pair(s, *open_pairs + i);
	while (wall < MIN_TIMED) {
		double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
		for (long i = 0; i < batch; i++)
			if (s->open_pair(s, *open_pairs + i) < 0)
				return f;
		wall += now_s(CLOCK_MONOTONIC) - t0;
		cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		n += batch;
		for (long i = 0; i < batch; i++)
			s->close_pair(s, *open_pairs + i);
	}
	f.new_per_s = (double)n / wall;
	f.new_cpu_us = cpu / (double)n * 1e6;
	/* whole connections, one at a time */
	n = 0;
	wall = cpu = 0;
	while (wall < MIN_TIMED) {
		double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
		for (int i = 0; i < 1000; i++)
			if (s->setup_close(s) < 0)
				return f;
		wall += now_s(CLOCK_MONOTONIC) - t0;
		cpu += now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		n += 1000;
	}
	f.sc_per_s = (double)n / wall;
	f.sc_cpu_us = cpu / (double)n * 1e6;
	f.ok = true;
	return f;
}

static void print_row(const char *who, long level, const struct figures *f)
{
	if (!f->ok) {
		printf("  %-7s %10ld   (could not reach this level)\n", who, level);
		return;
	}
	printf("  %-7s %10ld   %9.0f /s %9.0f us   %9.0f /s %6.2f us   %9.0f /s %6.2f us   %7.0f B\n", who,
	       level, f->fill_per_s, f->fill_max_us, f->new_per_s, f->new_cpu_us, f->sc_per_s, f->sc_cpu_us,
	       f->mem_per_conn);
}

int main(int argc, char **argv)
{
	bool linux_too = true;
	long levels[16];
	int nlevels = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ustack-only"))
			linux_too = false;
		else if (nlevels < 16 && atol(argv[i]) >= 2)
			levels[nlevels++] = atol(argv[i]);
		else {
			fprintf(stderr, "bench_scaling: bad level '%s' (endpoints, at least 2)\n", argv[i]);
			return 2;
		}
	}
	if (!nlevels) {
		static const long def[] = { 1000, 10000, 100000, 1000000 };
		for (nlevels = 0; nlevels < 4; nlevels++)
			levels[nlevels] = def[nlevels];
	}
	long max = 0;
	for (int i = 0; i < nlevels; i++)
		max = levels[i] > max ? levels[i] : max;
	long max_pairs = max / 2 + BATCH;

	struct side u = { "ustack", u_open_pair, u_close_pair, u_setup_close, u_mem, NULL, NULL, NULL, 0 };
	struct side l = { "Linux", l_open_pair, l_close_pair, l_setup_close, l_mem, NULL, NULL, NULL, 0 };
	struct side *sides[2] = { &u, &l };
	for (int k = 0; k < 2; k++) {
		sides[k]->cfd = malloc(sizeof(int) * (size_t)max_pairs);
		sides[k]->afd = malloc(sizeof(int) * (size_t)max_pairs);
		sides[k]->nports = max_pairs / PER_PORT + 1;
		sides[k]->lfd = malloc(sizeof(int) * (size_t)sides[k]->nports);
		if (!sides[k]->cfd || !sides[k]->afd || !sides[k]->lfd)
			return 1;
		for (long p = 0; p < sides[k]->nports; p++)
			sides[k]->lfd[p] = -1;
	}
	u_init(max + 2 * BATCH + 2 * sides[0]->nports);
	size_t umem0 = u_mem(); /* after the stacks: what connections cost, not instances */
	printf("open connections (endpoints), 10,000 per listening port; one thread, one core\n");
	printf("  %-7s %10s   %-11s %12s   %-20s   %-20s   %s\n", "", "open", "fill", "fill slowest", "new (stay open)",
	       "setup+close", "memory/conn");
	long uopen = 0, lopen = 0;
	/* as many descriptors as the kernel allows a process (root may raise the hard limit) */
	struct rlimit rl;
	FILE *nf = fopen("/proc/sys/fs/nr_open", "r");
	unsigned long nr_open = 0;
	if (nf) {
		if (fscanf(nf, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(nf);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	struct rlimit want = { nr_open, nr_open };
	if (!nr_open || setrlimit(RLIMIT_NOFILE, &want) < 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	size_t lmem0 = l_mem();
	for (int i = 0; i < nlevels; i++) {
		struct figures fu = run_level(&u, &uopen, levels[i], umem0);
		print_row("ustack", levels[i], &fu);
		if (linux_too && (rlim_t)(levels[i] + 2 * BATCH + 2 + levels[i] / PER_PORT + 16) <= rl.rlim_cur) {
			struct figures fl = run_level(&l, &lopen, levels[i], lmem0);
			print_row("Linux", levels[i], &fl);
		} else if (linux_too) {
			printf("  %-7s %10ld   (over this process's descriptor limit, %lu)\n", "Linux", levels[i],
			       (unsigned long)rl.rlim_cur);
		}
		fflush(stdout);
	}
	return 0;
}
