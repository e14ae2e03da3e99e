/*
 * Connections per second, a Linux load generator against any TCP echo listener: CONC
 * connections at once, each connect, send SIZE bytes, receive them back, close, then the next.
 * Its server mode is the echo listener, one thread on epoll, so the same program serves on
 * Linux and under `ustack run` (bench/xdp.sh runs both against the same veth).
 *
 *   connrate -l PORT                                  echo server, until SIGINT/SIGTERM
 *   connrate [-c CONC] [-d SECONDS] [-s SIZE] HOST PORT
 *
 * The client prints "N connections in T s = R/s (E errors)"; the server, at exit, its CPU
 * seconds (user + system) and the connections it served.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 4096
#define MAX_SIZE 65536

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long arg_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "connrate: %s: '%s' is not %ld-%ld\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

/* ---- the echo server ------------------------------------------------------------------- */

static int serve(int port)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4096) < 0) {
		perror("connrate: listen");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	printf("connrate: serving on port %d\n", port);
	fflush(stdout);
	static char buf[MAX_SIZE];
	unsigned long long served = 0;
	while (!stop) {
		struct epoll_event out[256];
		int n = epoll_wait(ep, out, 256, 200);
		for (int i = 0; i < n; i++) {
			int fd = out[i].data.fd;
			if (fd == l) {
				for (int k = 0; k < 256; k++) {
					int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
					if (c < 0)
						break;
					struct epoll_event cv = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cv);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r > 0) {
				if (write(fd, buf, (size_t)r) != r) /* the reply fits the send buffer */
					r = -1;
			}
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(fd); /* epoll forgets it */
				served += r == 0;
			}
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		     (double)ru.ru_stime.tv_usec / 1e6;
	printf("connrate: served %llu connections, %.2f s CPU\n", served, cpu);
	return 0;
}

/* ---- the client ------------------------------------------------------------------------ */

struct conn {
	int fd;
	size_t sent, got;
};

static int conn_open(int ep, struct conn *c, const struct sockaddr_in *to)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	c->sent = c->got = 0;
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static int client(const char *host, int port, int conc, double secs, size_t size)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
		fprintf(stderr, "connrate: HOST: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	static struct conn conns[MAX_CONC];
	static char msg[MAX_SIZE], buf[MAX_SIZE];
	memset(msg, 'c', size);
	int ep = epoll_create1(0);
	unsigned long long done = 0, errors = 0;
	for (int i = 0; i < conc; i++)
		if (conn_open(ep, &conns[i], &to) < 0)
			errors++;
	double t0 = now_s(), end = t0 + secs;
	while (!stop && now_s() < end) {
		struct epoll_event out[256];
		int n = epoll_wait(ep, out, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = out[i].data.ptr;
			bool failed = out[i].events & (EPOLLERR | EPOLLHUP) && c->got < size;
			if (!failed && out[i].events & EPOLLOUT && c->sent < size) {
				ssize_t w = write(c->fd, msg + c->sent, size - c->sent);
				if (w > 0)
					c->sent += (size_t)w;
				else if (errno != EAGAIN)
					failed = true;
				if (c->sent == size) {
					struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!failed && out[i].events & EPOLLIN) {
				ssize_t r = read(c->fd, buf, sizeof(buf));
				if (r > 0)
					c->got += (size_t)r;
				else if (r == 0 || errno != EAGAIN)
					failed = c->got < size;
			}
			if (failed || c->got >= size) {
				close(c->fd);
				if (failed)
					errors++;
				else
					done++;
				if (conn_open(ep, c, &to) < 0)
					errors++;
			}
		}
	}
	double t = now_s() - t0;
	printf("%llu connections in %.2f s = %.0f/s (%llu errors, %d at once, %zu bytes each way)\n", done, t,
	       (double)done / t, errors, conc, size);
	return errors > done / 100 ? 1 : 0;
}

int main(int argc, char **argv)
{
	int conc = 64, listen_port = 0, c;
	double secs = 5;
	size_t size = 64;
	while ((c = getopt(argc, argv, "l:c:d:s:")) != -1) {
		switch (c) {
		case 'l': listen_port = (int)arg_long("-l", optarg, 1, 65535); break;
		case 'c': conc = (int)arg_long("-c", optarg, 1, MAX_CONC); break;
		case 'd': secs = (double)arg_long("-d", optarg, 1, 3600); break;
		case 's': size = (size_t)arg_long("-s", optarg, 1, MAX_SIZE); break;
		default:
			fprintf(stderr, "usage: connrate -l PORT | connrate [-c CONC] [-d SECONDS] [-s SIZE] HOST PORT\n");
			return 2;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (listen_port)
		return serve(listen_port);
	if (argc - optind != 2) {
		fprintf(stderr, "usage: connrate -l PORT | connrate [-c CONC] [-d SECONDS] [-s SIZE] HOST PORT\n");
		return 2;
	}
	return client(argv[optind], (int)arg_long("PORT", argv[optind + 1], 1, 65535), conc, secs, size);
}
