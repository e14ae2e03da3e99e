/*
 * `ustack nc`: a netcat over ustack on a TAP device.
 *
 *   ustack nc [link options] HOST PORT          connect, then copy stdin ⇄ the connection
 *   ustack nc -l [link options] PORT             accept one connection, the same
 *   ustack nc -l --serve MODE [link options] PORT  accept connections until SIGTERM:
 *        echo (send back what arrives), discard (read to the end), send:N (send N bytes of
 *        the counting pattern, then FIN)
 *
 * Like OpenBSD's nc -N: end of stdin half-closes the connection (shutdown(SHUT_WR) → FIN),
 * and the program ends once the peer has closed its side too.  The last close lingers
 * (SO_LINGER) until the FIN is acknowledged, because when the process exits the stack is gone
 * and an unacknowledged FIN would leave the peer retransmitting to nobody.  Exit status 0
 * after a clean close, 1 with the error's message otherwise (e.g. "Connection refused").
 *
 * The send:N pattern is the byte stream of 32-bit little-endian counters 0, 1, 2, … cut at N
 * bytes, so a peer can check what arrived without a copy of it
 * (python: array('I', range((N + 3) // 4)).tobytes()[:N]).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/tcp.h>
#include <ustack/socket.h>

#include "tapcli.h"

#define NC_BUF 65536
#define NC_MAX_SERVED 1024 /* connections served at once; more wait in the accept queue */
#define NC_FASTOPEN_QLEN 16 /* --fastopen: the listener's queue of Fast Open children */

enum serve_mode { SERVE_NONE, SERVE_ECHO, SERVE_DISCARD, SERVE_SEND };

struct nc_args {
	int listen, verbose, backlog;
	int fastopen; /* -l --fastopen: the listener's TCP_FASTOPEN queue length, 0 if off */
	int accept_delay_ms; /* --serve: the application is busy this long before accepting */
	enum serve_mode serve;
	uint64_t send_bytes;
};

struct nc {
	struct nc_args a;
	struct tap_stack ts;
	struct sockaddr_in addr; /* the peer (connect) or the local port (listen) */
	int err;                 /* errno of the first failure, 0 if none */
	const char *what;        /* what failed */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int served[NC_MAX_SERVED]; /* descriptors of connections being served */
	int nserved;
	atomic_bool stopping;
};

static void nc_fail(struct nc *nc, const char *what, int err)
{
	pthread_mutex_lock(&nc->mu);
	if (!nc->err) {
		nc->err = err;
		nc->what = what;
	}
	pthread_mutex_unlock(&nc->mu);
}

/* Sends all of buf; 0, or -1 with errno. */
static int send_all(struct ustack *st, int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = ustack_send(st, fd, buf, len, 0);
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- one connection, stdin ⇄ socket ------------------------------------------------------ */

struct session {
	struct nc *nc;
	int fd;
	atomic_bool dead; /* the connection failed: the stdin pump stops */
};

/* stdin → connection; on end of stdin, FIN (half-close). */
static void *stdin_pump(void *arg)
{
	struct session *s = arg;
	struct ustack *st = s->nc->ts.st;
	static uint8_t buf[NC_BUF];
	for (;;) {
		/* poll with a timeout so that a connection that died is noticed even while the
		 * terminal has nothing to say */
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, 100);
		if (atomic_load(&s->dead))
			return NULL;
		if (r < 0 && errno != EINTR) {
			nc_fail(s->nc, "stdin", errno);
			return NULL;
		}
		if (r <= 0)
			continue;
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			nc_fail(s->nc, "stdin", errno);
			return NULL;
		}
		if (n == 0) {
			if (ustack_shutdown(st, s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
				nc_fail(s->nc, "shutdown", errno);
			return NULL;
		}
		if (send_all(st, s->fd, buf, (size_t)n) < 0) {
			nc_fail(s->nc, "send", errno);
			return NULL;
		}
	}
}

/* Copies both ways until the peer's FIN and the end of stdin, then closes. */
static void session_run(struct nc *nc, int fd)
{
	struct ustack *st = nc->ts.st;
	struct session s = { .nc = nc, .fd = fd };
	if (nc->a.verbose) {
		fprintf(stderr, "ustack nc: connected\n");
		print_tcp_info(stderr, "", st, fd);
	}
	pthread_t in;
	pthread_create(&in, NULL, stdin_pump, &s);
	static uint8_t buf[NC_BUF];
	for (;;) {
		ssize_t n = ustack_recv(st, fd, buf, sizeof(buf), 0);
		if (n == 0)
			break;
		if (n < 0) {
			nc_fail(nc, "recv", errno);
			atomic_store(&s.dead, true);
			break;
		}
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
			nc_fail(nc, "stdout", errno);
			atomic_store(&s.dead, true);
			break;
		}
	}
	pthread_join(in, NULL);
	/* a plain close, as netcat's: what is still in flight is delivered after the process is
	 * done, as a kernel would (tap_stack_drain) */
	ustack_close(st, fd);
}

/* ---- --serve ----------------------------------------------------------------------------- */

/* Four words of the pattern at once (GCC/Clang vector type, lowered for any target). */
typedef uint32_t pattern_v4 __attribute__((vector_size(16)));

/* The counting pattern's bytes [pos, pos + len): byte k is byte k % 4 of the little-endian
 * 32-bit word k / 4.  Where the bytes are word-aligned in the pattern, four words a store on a
 * little-endian host (their bytes are the pattern's as they lie), else a word at a time: a
 * byte at a time cost a fifth of a bulk sender's CPU, a word at a time a tenth at 10 Gbit/s
 * (12 GB/s; the vector loop 33). */
static void pattern_fill(uint8_t *b, unsigned long long pos, size_t len)
{
	size_t i = 0;
	for (; i < len && pos % 4; i++, pos++)
		b[i] = (uint8_t)((pos / 4) >> (8 * (pos % 4)));
	uint32_t w = (uint32_t)(pos / 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	pattern_v4 v = { w, w + 1, w + 2, w + 3 };
	const pattern_v4 four = { 4, 4, 4, 4 };
	for (; i + 16 <= len; i += 16, pos += 16, w += 4, v += four)
		memcpy(b + i, &v, 16);
#endif
	for (; i + 4 <= len; i += 4, pos += 4, w++) {
		const uint8_t le[4] = { (uint8_t)w, (uint8_t)(w >> 8), (uint8_t)(w >> 16), (uint8_t)(w >> 24) };
		memcpy(b + i, le, 4);
	}
	for (; i < len; i++, pos++)
		b[i] = (uint8_t)((pos / 4) >> (8 * (pos % 4)));
}

struct served {
	struct nc *nc;
	int fd;
};

static void *serve_conn(void *arg)
{
	struct served *sv = arg;
	struct nc *nc = sv->nc;
	struct ustack *st = nc->ts.st;
	int fd = sv->fd;
	free(sv);
	uint8_t *buf = malloc(NC_BUF);
	if (buf && nc->a.serve == SERVE_SEND) {
		for (unsigned long long pos = 0; pos < nc->a.send_bytes;) {
			size_t n = nc->a.send_bytes - pos < NC_BUF ? (size_t)(nc->a.send_bytes - pos) : NC_BUF;
			pattern_fill(buf, pos, n);
			if (send_all(st, fd, buf, n) < 0)
				break;
			pos += n;
		}
		ustack_shutdown(st, fd, SHUT_WR);
	}
	for (ssize_t n; buf && (n = ustack_recv(st, fd, buf, NC_BUF, 0)) > 0;) {
		if (nc->a.serve == SERVE_ECHO && send_all(st, fd, buf, (size_t)n) < 0)
			break;
	}
	free(buf);
	if (nc->a.serve == SERVE_ECHO)
		ustack_shutdown(st, fd, SHUT_WR);
	/* no linger: the stack keeps running, and the orphan finishes the close on its own */
	pthread_mutex_lock(&nc->mu);
	for (int i = 0; i < nc->nserved; i++) {
		if (nc->served[i] == fd) {
			nc->served[i] = nc->served[--nc->nserved];
			break;
		}
	}
	ustack_close(st, fd);
	pthread_cond_broadcast(&nc->cv);
	pthread_mutex_unlock(&nc->mu);
	return NULL;
}

static void serve_loop(struct nc *nc, int lfd)
{
	struct ustack *st = nc->ts.st;
	for (;;) {
		pthread_mutex_lock(&nc->mu);
		while (nc->nserved == NC_MAX_SERVED && !atomic_load(&nc->stopping))
			pthread_cond_wait(&nc->cv, &nc->mu);
		pthread_mutex_unlock(&nc->mu);
		int fd = ustack_accept(st, lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* the listener was closed: stopping */
		}
		struct served *sv = malloc(sizeof(*sv));
		pthread_t th;
		pthread_mutex_lock(&nc->mu);
		if (!sv || atomic_load(&nc->stopping)) {
			pthread_mutex_unlock(&nc->mu);
			free(sv);
			ustack_close(st, fd);
			continue;
		}
		*sv = (struct served){ nc, fd };
		nc->served[nc->nserved++] = fd;
		pthread_mutex_unlock(&nc->mu);
		if (pthread_create(&th, NULL, serve_conn, sv) != 0) {
			serve_conn(sv);
			continue;
		}
		pthread_detach(th);
	}
}

/* ---- the application thread ----------------------------------------------------------- */

static int nc_listen_socket(struct nc *nc, int backlog)
{
	struct ustack *st = nc->ts.st;
	int one = 1;
	int fd = ustack_socket(st, AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || ustack_setsockopt(st, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    ustack_bind(st, fd, (struct sockaddr *)&nc->addr, sizeof(nc->addr)) < 0 ||
	    ustack_listen(st, fd, backlog) < 0) {
		nc_fail(nc, "listen", errno);
		return -1;
	}
	if (nc->a.fastopen &&
	    ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_FASTOPEN, &nc->a.fastopen, sizeof(nc->a.fastopen)) < 0) {
		nc_fail(nc, "setsockopt TCP_FASTOPEN", errno);
		return -1;
	}
	return fd;
}

static int listen_fd = -1;

static void *app_thread(void *arg)
{
	struct nc *nc = arg;
	struct ustack *st = nc->ts.st;
	if (nc->a.serve) {
		listen_fd = nc_listen_socket(nc, nc->a.backlog);
		if (listen_fd >= 0) {
			fprintf(stderr, "ustack nc: serving on port %u\n", ntohs(nc->addr.sin_port));
			if (nc->a.accept_delay_ms) {
				/* connections wait in the queues; SIGTERM ends the wait (stopping, cv) */
				struct timespec until;
				clock_gettime(CLOCK_REALTIME, &until);
				until.tv_sec += nc->a.accept_delay_ms / 1000;
				until.tv_nsec += (long)(nc->a.accept_delay_ms % 1000) * 1000000L;
				if (until.tv_nsec >= 1000000000L) {
					until.tv_sec++;
					until.tv_nsec -= 1000000000L;
				}
				pthread_mutex_lock(&nc->mu);
				while (!atomic_load(&nc->stopping) &&
				       pthread_cond_timedwait(&nc->cv, &nc->mu, &until) != ETIMEDOUT)
					;
				pthread_mutex_unlock(&nc->mu);
			}
			serve_loop(nc, listen_fd);
		}
		return NULL; /* the main thread stops the loop (SIGTERM) */
	}
	int fd;
	if (nc->a.listen) {
		int lfd = nc_listen_socket(nc, 1);
		if (lfd < 0)
			goto out;
		if (nc->a.verbose)
			fprintf(stderr, "ustack nc: listening on port %u\n", ntohs(nc->addr.sin_port));
		fd = ustack_accept(st, lfd, NULL, NULL);
		if (fd < 0)
			nc_fail(nc, "accept", errno);
		ustack_close(st, lfd);
	} else {
		fd = ustack_socket(st, AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 && ustack_connect(st, fd, (struct sockaddr *)&nc->addr, sizeof(nc->addr)) < 0) {
			nc_fail(nc, "connect", errno);
			ustack_close(st, fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		session_run(nc, fd);
out:
	link_stop(&nc->ts);
	return NULL;
}

static int nc_opt(void *ctx, int c, const char *arg)
{
	struct nc_args *a = ctx;
	switch (c) {
	case 'l':
		a->listen = 1;
		return 0;
	case 'v':
		a->verbose = 1;
		return 0;
	case 'F':
		a->fastopen = NC_FASTOPEN_QLEN;
		return 0;
	case 'b':
		return cli_int(cli_opt(), arg, 0, 65535, "a number", &a->backlog);
	case 'd': /* an hour: more is a typo, and usleep's argument must not overflow */
		return cli_int(cli_opt(), arg, 0, 3600000, "a time in ms", &a->accept_delay_ms);
	case 's':
		if (!strcmp(arg, "echo"))
			a->serve = SERVE_ECHO;
		else if (!strcmp(arg, "discard"))
			a->serve = SERVE_DISCARD;
		else if (!strncmp(arg, "send:", 5))
			a->serve = SERVE_SEND;
		else {
			cli_error(cli_opt(), "'%s' is not a mode (echo, discard or send:N)", arg);
			return -1;
		}
		if (a->serve == SERVE_SEND) {
			char opt[32];
			snprintf(opt, sizeof(opt), "%s send:N", cli_opt());
			return cli_size(opt, arg + 5, UINT64_MAX, "a byte count", &a->send_bytes);
		}
		return 0;
	case 'h':
		printf("usage: ustack nc [-v] {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [options] HOST PORT\n"
		       "       ustack nc -l [-v] [--serve MODE] {--tap NAME | --xdp IF[@Q]} --addr A/N [options] PORT\n\n"
		       "netcat over ustack on a TAP device: copies stdin to the connection and the\n"
		       "connection to stdout; end of stdin sends FIN (half-close); exits 0 once both\n"
		       "sides have closed, 1 with the error (e.g. \"Connection refused\") otherwise.\n\n"
		       "  -l, --listen      accept one connection on PORT instead of connecting\n"
		       "  --serve MODE      with -l: keep accepting until SIGTERM, each connection\n"
		       "                    served by MODE: echo, discard, or send:N (N bytes of\n"
		       "                    32-bit little-endian counters 0, 1, 2, ..., then FIN;\n"
		       "                    N may end in k, M or G: x1024, x1024^2, x1024^3);\n"
		       "                    prints the counters at exit\n"
		       "  --backlog N       listen backlog for --serve (0-65535, default 128)\n"
		       "  --accept-delay MS with --serve: wait MS (0-3600000) before the first accept(),\n"
		       "                    as a busy application would (connections queue meanwhile)\n"
		       "  --fastopen        with -l: TCP Fast Open (RFC 7413) on the listener:\n"
		       "                    setsockopt(TCP_FASTOPEN, 16), and the server bit (0x2)\n"
		       "                    added to net.ipv4.tcp_fastopen, as Linux needs both\n"
		       "  -v, --verbose     connection details and counters on stderr\n" LINK_OPTS_HELP);
		return 1;
	default:
		return -1;
	}
}

int cmd_nc(int argc, char **argv)
{
	static const struct option longopts[] = { { "listen", no_argument, 0, 'l' },
						  { "serve", required_argument, 0, 's' },
						  { "verbose", no_argument, 0, 'v' },
						  { "backlog", required_argument, 0, 'b' },
						  { "accept-delay", required_argument, 0, 'd' },
						  { "fastopen", no_argument, 0, 'F' },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	static struct nc nc = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct link_opts o;
	nc.a.backlog = 128;
	int rc = tap_getopt(argc, argv, "hlv", longopts, &o, nc_opt, &nc.a);
	if (rc >= 0)
		return rc;
	if (nc.a.serve && !nc.a.listen) {
		cli_error("--serve", "needs -l");
		return CLI_USAGE;
	}
	if (nc.a.fastopen && !nc.a.listen) {
		cli_error("--fastopen", "needs -l (a Fast Open client: ustack connect --fastopen)");
		return CLI_USAGE;
	}
	nc.addr.sin_family = AF_INET;
	const char *host = NULL, *port_s;
	if (nc.a.listen && optind == argc - 1) {
		port_s = argv[optind];
	} else if (!nc.a.listen && optind == argc - 2) {
		host = argv[optind];
		port_s = argv[optind + 1];
		if (cli_ipv4("HOST", host, &nc.addr.sin_addr) < 0)
			return CLI_USAGE;
	} else {
		cli_error(NULL, "want HOST PORT, or -l PORT (see ustack nc --help)");
		return CLI_USAGE;
	}
	uint16_t port;
	if (cli_port("PORT", port_s, &port) < 0)
		return CLI_USAGE;
	nc.addr.sin_port = htons(port);
	signal(SIGPIPE, SIG_IGN);
	rc = tap_stack_open(&nc.ts, &o);
	if (rc)
		return rc;
	if (nc.a.fastopen && tap_fastopen_server(nc.ts.st) < 0) {
		tap_stack_close(&nc.ts);
		return 1;
	}
	pthread_t app;
	pthread_create(&app, NULL, app_thread, &nc);
	rc = link_run(&nc.ts);
	if (nc.a.serve) {
		/* SIGTERM: stop accepting, end the connections being served, let their threads go */
		atomic_store(&nc.stopping, true);
		if (listen_fd >= 0)
			ustack_close(nc.ts.st, listen_fd);
		pthread_mutex_lock(&nc.mu);
		pthread_cond_broadcast(&nc.cv);
		for (int i = 0; i < nc.nserved; i++)
			ustack_shutdown(nc.ts.st, nc.served[i], SHUT_RDWR);
		pthread_mutex_unlock(&nc.mu);
	}
	pthread_join(app, NULL);
	if (nc.a.serve) {
		pthread_mutex_lock(&nc.mu);
		for (int i = 0; i < 100 && nc.nserved; i++) { /* bounded: 100 × 20 ms */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&nc.cv, &nc.mu, &ts);
		}
		pthread_mutex_unlock(&nc.mu);
	}
	int served_left = nc.nserved;
	/* every byte written and every FIN sent reaches the peer before the process ends, or
	 * the exit status says it did not */
	unsigned undelivered = served_left ? 0 : tap_stack_drain(&nc.ts, "nc");
	if (nc.a.serve || nc.a.verbose) {
		print_counters(nc.a.serve ? stdout : stderr, nc.ts.st);
		print_link_stats(nc.a.serve ? stdout : stderr, &nc.ts);
	}
	if (nc.err) {
		if (host)
			fprintf(stderr, "ustack nc: %s %s:%s: %s\n", nc.what, host, port_s, strerror(nc.err));
		else
			fprintf(stderr, "ustack nc: %s: %s\n", nc.what, strerror(nc.err));
	}
	if (!served_left)
		tap_stack_close(&nc.ts); /* else a serving thread may still hold the stack */
	return nc.err || rc < 0 || undelivered ? 1 : 0;
}
