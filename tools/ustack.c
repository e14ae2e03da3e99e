/*
 * The `ustack` command: run the stack on a TAP device or an AF_XDP queue, show what it does, inspect defaults.
 *
 *   ustack up {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [--mtu N] [--mac M] [--pcap FILE] [-o k=v]...
 *             [--listen PORT]
 *   ustack connect {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [--send TEXT [--fastopen]] [-c N] HOST PORT
 *   ustack ping {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [-c N] [-s SIZE] HOST
 *   ustack demo [--drop-syn N] [--drop-synack N] [--loss P] [--seed S] [--ping N | --fastopen]
 *   ustack sysctl [--name N] [-n] [-a | -w NAME=VALUE | NAME[=VALUE]...]
 *   ustack ls | ss | nstat | trace | tcp_metrics | pcap  (observe.c: a running instance, through its control socket)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <ustack/diag.h>
#include <ustack/link.h>
#include <ustack/stack.h>
#include <ustack/socket.h>
#include <ustack/sysctl.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "cliparse.h"
#include "ladder.h"
#include "tapcli.h"

/* `ustack up --listen PORT`: an application thread blocked in accept(), woken by the stack. */
struct acceptor {
	struct ustack *st;
	int lfd;
	pthread_t thread;
};

static void *accept_loop(void *arg)
{
	struct acceptor *ac = arg;
	for (;;) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int fd = ustack_accept(ac->st, ac->lfd, (struct sockaddr *)&peer, &len);
		if (fd < 0)
			return NULL; /* the listener was closed: shutting down */
		printf("accepted %s:%u on fd %d\n", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port), fd);
		print_tcp_info(stdout, "", ac->st, fd);
		fflush(stdout);
	}
}

struct up_args {
	uint16_t listen_port;
	int backlog;
};

static int up_opt(void *ctx, int c, const char *arg)
{
	struct up_args *a = ctx;
	switch (c) {
	case 'l':
		return cli_port(cli_opt(), arg, &a->listen_port);
	case 'b':
		return cli_int(cli_opt(), arg, 0, 65535, "a number", &a->backlog);
	case 'h':
		printf("usage: ustack up {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [--mtu N] [--listen PORT] [options]\n\n"
		       "Brings a ustack instance up on a TAP device and answers ARP and ping until\n"
		       "SIGINT or SIGTERM; then prints its counters.\n\n"
		       "  --listen PORT     accept TCP connections on PORT (1-65535) and print each\n"
		       "                    one's negotiated options (connections are held open)\n"
		       "  --backlog N       listen backlog (0-65535, default 128)\n" LINK_OPTS_HELP);
		return 1;
	default:
		return -1;
	}
}

static int cmd_up(int argc, char **argv)
{
	static const struct option longopts[] = { { "listen", required_argument, 0, 'l' },
						  { "backlog", required_argument, 0, 'b' },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	struct link_opts o;
	struct up_args a = { .backlog = 128 };
	int rc = tap_getopt(argc, argv, "h", longopts, &o, up_opt, &a);
	if (rc >= 0)
		return rc;
	if (cli_no_operands(argc, argv) < 0)
		return CLI_USAGE;
	int listen_port = a.listen_port, backlog = a.backlog;
	struct tap_stack ts;
	rc = tap_stack_open(&ts, &o);
	if (rc)
		return rc;
	struct acceptor ac = { .st = ts.st, .lfd = -1 };
	if (listen_port) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port) };
		ac.lfd = ustack_socket(ts.st, AF_INET, SOCK_STREAM, 0);
		if (ac.lfd < 0 || ustack_bind(ts.st, ac.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    ustack_listen(ts.st, ac.lfd, backlog) < 0) {
			cli_error("--listen", "port %d: %s", listen_port, strerror(errno));
			tap_stack_close(&ts);
			return 1;
		}
		pthread_create(&ac.thread, NULL, accept_loop, &ac);
	}
	printf("ustack: up on %s, %s/%u, mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u\n", o.dev,
	       inet_ntoa(o.addr), o.prefixlen, o.mac[0], o.mac[1], o.mac[2], o.mac[3], o.mac[4], o.mac[5], o.mtu);
	if (ts.ctl)
		printf("ustack: control socket %s\n", ustack_ctl_path(ts.ctl));
	if (listen_port)
		printf("ustack: listening on port %d\n", listen_port);
	if (ts.xdp)
		printf("ustack: AF_XDP on %s queue %u, %s%s\n", o.xdp_ifname, o.xdp_queue, ustack_xdp_mode(ts.xdp),
		       o.xdp_flags & USTACK_XDP_BUSY_POLL ? ", busy-polling" : "");
	fflush(stdout);
	rc = link_run(&ts);
	if (listen_port) {
		ustack_close(ts.st, ac.lfd); /* wakes the acceptor */
		pthread_join(ac.thread, NULL);
	}
	printf("ustack: stopping\n");
	print_counters(stdout, ts.st);
	print_link_stats(stdout, &ts);
	tap_stack_close(&ts);
	return rc < 0 ? 1 : 0;
}

/* ---- ustack connect ------------------------------------------------------------------- */

#define CONNECT_LINGER_S 5 /* closing a connection before the next: how long its FIN may wait */
#define CONNECT_DRAIN_MS 10000 /* --send: how long the data may take to be acknowledged */

struct connect_args {
	const char *send; /* --send TEXT, or NULL */
	int fastopen, count;
};

struct connector {
	struct connect_args a;
	struct ustack *st;
	struct tap_stack *ts;
	struct sockaddr_in to;
	int fd, rc, err;
};

/* Waits until what was sent has been acknowledged (SIOCOUTQ 0), bounded in time. */
static void connect_drain(struct ustack *st, int fd)
{
	for (int i = 0; i < CONNECT_DRAIN_MS / 10; i++) {
		int outq = 0;
		if (ustack_ioctl(st, fd, SIOCOUTQ, &outq) < 0 || outq == 0)
			return;
		usleep(10000);
	}
}

/* One connection: connect(), then --send's text; or with --fastopen both at once,
 * sendto(MSG_FASTOPEN) (the text in the SYN when a cookie for the server is cached). */
static int connect_one(struct connector *cn)
{
	struct ustack *st = cn->st;
	size_t len = cn->a.send ? strlen(cn->a.send) : 0;
	cn->fd = ustack_socket(st, AF_INET, SOCK_STREAM, 0);
	if (cn->fd < 0)
		return -1;
	if (cn->a.fastopen) {
		if (ustack_sendto(st, cn->fd, cn->a.send, len, MSG_FASTOPEN, (struct sockaddr *)&cn->to,
				  sizeof(cn->to)) < 0)
			return -1;
	} else {
		if (ustack_connect(st, cn->fd, (struct sockaddr *)&cn->to, sizeof(cn->to)) < 0)
			return -1;
		for (size_t off = 0; off < len;) {
			ssize_t n = ustack_send(st, cn->fd, cn->a.send + off, len - off, 0);
			if (n < 0)
				return -1;
			off += (size_t)n;
		}
	}
	struct sockaddr_in me;
	socklen_t slen = sizeof(me);
	ustack_getsockname(st, cn->fd, (struct sockaddr *)&me, &slen);
	char peer[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &cn->to.sin_addr, peer, sizeof(peer));
	printf("connected %s:%u -> %s:%u", inet_ntoa(me.sin_addr), ntohs(me.sin_port), peer, ntohs(cn->to.sin_port));
	if (len)
		printf(", sent %zu bytes%s", len, cn->a.fastopen ? " with sendto(MSG_FASTOPEN)" : "");
	printf("\n");
	print_tcp_info(stdout, "", st, cn->fd);
	fflush(stdout);
	if (len)
		connect_drain(st, cn->fd);
	return 0;
}

static void *connect_thread(void *arg)
{
	struct connector *cn = arg;
	for (int i = 0; i < cn->a.count; i++) {
		if (i) { /* the previous one ends with its FIN acknowledged, the stack still running */
			struct linger lg = { .l_onoff = 1, .l_linger = CONNECT_LINGER_S };
			ustack_setsockopt(cn->st, cn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			ustack_close(cn->st, cn->fd);
		}
		cn->rc = connect_one(cn);
		cn->err = errno;
		if (cn->rc < 0)
			break;
	}
	link_stop(cn->ts);
	return NULL;
}

static int connect_opt(void *ctx, int c, const char *arg)
{
	struct connect_args *a = ctx;
	switch (c) {
	case 'F':
		a->fastopen = 1;
		return 0;
	case 's':
		if (!*arg) {
			cli_error(cli_opt(), "needs some text");
			return -1;
		}
		a->send = arg;
		return 0;
	case 'c':
		return cli_int(cli_opt(), arg, 1, 1000, "a count", &a->count);
	case 'h':
		printf("usage: ustack connect {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [options] HOST PORT\n\n"
		       "Opens a TCP connection from a ustack instance on a TAP device: a blocking\n"
		       "connect() on an application thread while the run loop feeds the stack.\n"
		       "Prints the negotiated options and exits 0, or the error (e.g. \"Connection\n"
		       "refused\") and exits 1.  The connection is then closed (FIN).\n\n"
		       "  --send TEXT       send TEXT once connected (and wait for its ACK)\n"
		       "  --fastopen        with --send: TCP Fast Open (RFC 7413), connect and send in\n"
		       "                    one sendto(MSG_FASTOPEN): the SYN asks for a cookie, or\n"
		       "                    carries TEXT if the stack has one for HOST\n"
		       "  -c, --count N     N connections (1-1000, default 1) one after another from\n"
		       "                    the same stack (a Fast Open cookie learnt by one serves\n"
		       "                    the next); each is closed before the next opens\n" LINK_OPTS_HELP);
		return 1;
	default:
		return -1;
	}
}

static int cmd_connect(int argc, char **argv)
{
	static const struct option longopts[] = { { "send", required_argument, 0, 's' },
						  { "fastopen", no_argument, 0, 'F' },
						  { "count", required_argument, 0, 'c' },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	struct link_opts o;
	struct connector cn = { .to = { .sin_family = AF_INET }, .a = { .count = 1 } };
	int rc = tap_getopt(argc, argv, "hc:", longopts, &o, connect_opt, &cn.a);
	if (rc >= 0)
		return rc;
	uint16_t port;
	if (optind != argc - 2) {
		cli_error(NULL, "want HOST PORT (see ustack connect --help)");
		return CLI_USAGE;
	}
	if (cli_ipv4("HOST", argv[optind], &cn.to.sin_addr) < 0 || cli_port("PORT", argv[optind + 1], &port) < 0)
		return CLI_USAGE;
	if (cn.a.fastopen && !cn.a.send) {
		cli_error("--fastopen", "needs --send TEXT (the data for the SYN)");
		return CLI_USAGE;
	}
	cn.to.sin_port = htons(port);
	struct tap_stack ts;
	rc = tap_stack_open(&ts, &o);
	if (rc)
		return rc;
	cn.st = ts.st;
	cn.ts = &ts;
	pthread_t th;
	pthread_create(&th, NULL, connect_thread, &cn);
	link_run(&ts);
	pthread_join(th, NULL);
	if (cn.rc < 0) {
		fprintf(stderr, "ustack connect: %s:%d: %s\n", argv[optind], port, strerror(cn.err));
		tap_stack_close(&ts);
		return 1;
	}
	ustack_close(ts.st, cn.fd);
	/* the FIN (and --send's data) reach the server before the process ends */
	unsigned undelivered = tap_stack_drain(&ts, "connect");
	tap_stack_close(&ts);
	return undelivered ? 1 : 0;
}

/* ---- ustack ping ---------------------------------------------------------------------- */

struct ping_state {
	struct ustack *st;
	uint64_t sent_at[65536];
	int received;
	int want;
	struct tap_stack *ts;
};

static void ping_reply(void *arg, struct in_addr from, uint16_t id, uint16_t seq, size_t len, uint8_t ttl)
{
	struct ping_state *p = arg;
	(void)id;
	uint64_t now = ustack_clock_monotonic()->now_us(NULL);
	printf("%zu bytes from %s: icmp_seq=%u ttl=%u time=%.3f ms\n", len + 8, inet_ntoa(from), seq, ttl,
	       (double)(now - p->sent_at[seq]) / 1000.0);
	fflush(stdout);
	if (++p->received == p->want)
		link_stop(p->ts);
}

struct ping_args {
	int count;
	uint64_t size;
};

static int ping_opt(void *ctx, int c, const char *arg)
{
	struct ping_args *a = ctx;
	switch (c) {
	case 'c':
		return cli_int(cli_opt(), arg, 1, 65535, "a count", &a->count);
	case 's': /* the largest payload of one IPv4 datagram */
		return cli_size(cli_opt(), arg, 65535 - 20 - 8, "a size", &a->size);
	case 'h':
		printf("usage: ustack ping {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [-c N] [-s SIZE] HOST\n\n"
		       "Sends N echo requests (one a second) from a ustack instance on a TAP device\n"
		       "and prints the replies, like ping(8).  Exits 0 if every reply came back.\n\n"
		       "  -c, --count N     requests to send (1-65535, default 3)\n"
		       "  -s, --size SIZE   payload bytes (0-65507, default 56)\n" LINK_OPTS_HELP);
		return 1;
	default:
		return -1;
	}
}

static int cmd_ping(int argc, char **argv)
{
	static const struct option longopts[] = { { "count", required_argument, 0, 'c' },
						  { "size", required_argument, 0, 's' },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	struct link_opts o;
	struct ping_args a = { .count = 3, .size = 56 };
	int rc = tap_getopt(argc, argv, "hc:s:", longopts, &o, ping_opt, &a);
	if (rc >= 0)
		return rc;
	int count = a.count, size = (int)a.size;
	struct in_addr dst;
	if (optind != argc - 1) {
		cli_error(NULL, "want one HOST (see ustack ping --help)");
		return CLI_USAGE;
	}
	if (cli_ipv4("HOST", argv[optind], &dst) < 0)
		return CLI_USAGE;
	struct tap_stack ts;
	rc = tap_stack_open(&ts, &o);
	if (rc)
		return rc;
	static struct ping_state p;
	p.st = ts.st;
	p.want = count;
	p.ts = &ts;
	ustack_set_echo_reply_handler(ts.st, ping_reply, &p);
	printf("PING %s: %d data bytes\n", argv[optind], size);
	fflush(stdout);
	for (int i = 0; i < count && p.received < count; i++) {
		p.sent_at[i + 1] = ustack_clock_monotonic()->now_us(NULL);
		if (ustack_ping(ts.st, dst, (uint16_t)getpid(), (uint16_t)(i + 1), (size_t)size) < 0) {
			cli_error(NULL, "%s", strerror(errno));
			tap_stack_close(&ts);
			return 1;
		}
		uint64_t wait_ms = i == count - 1 ? 2000 : 1000;
		if (link_run_until(&ts, p.sent_at[i + 1] + wait_ms * 1000) != 0)
			break; /* all replies in, or interrupted */
	}
	printf("%d packets transmitted, %d received\n", count, p.received);
	tap_stack_close(&ts);
	return p.received == count ? 0 : 1;
}

/* ---- ustack demo ---------------------------------------------------------------------- */

struct demo_state {
	struct ladder *ladder;
	struct ustack_vclock *vc;
	int replies;
	int drop_syn, drop_synack;
};

static void demo_echo_reply(void *arg, struct in_addr from, uint16_t id, uint16_t seq,
			    size_t len, uint8_t ttl)
{
	struct demo_state *d = arg;
	char text[128];
	snprintf(text, sizeof(text), "reply from %s: seq=%u id=%u %zu bytes ttl=%u", inet_ntoa(from),
		 seq, id, len, ttl);
	ladder_note(d->ladder, 0, d->vc->now_us, text);
	d->replies++;
}

/* --drop-syn / --drop-synack: lose the first N of them on the wire. */
static int demo_filter(void *arg, int dir, const uint8_t *f, size_t len)
{
	struct demo_state *d = arg;
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6)
		return 0;
	uint8_t flags = f[14 + (f[14] & 0xf) * 4 + 13];
	int *budget = NULL;
	if (dir == 0 && flags == 0x02)
		budget = &d->drop_syn;
	else if (dir == 1 && flags == 0x12)
		budget = &d->drop_synack;
	if (!budget || *budget <= 0)
		return 0;
	(*budget)--;
	ladder_note(d->ladder, dir, d->vc->now_us, "  x lost on the link");
	return 1;
}

static int demo_ping(struct ustack *a, struct ustack_memlink *ml, struct ustack_vclock *vc,
		     struct in_addr to, int count, struct demo_state *d)
{
	ustack_set_echo_reply_handler(a, demo_echo_reply, d);
	for (int i = 1; i <= count; i++) {
		if (ustack_ping(a, to, 0x1234, (uint16_t)i, 56) < 0)
			cli_error(NULL, "ping: %s", strerror(errno));
		ustack_memlink_run(ml, vc, vc->now_us + 1000000);
	}
	printf("\n%d packets transmitted, %d received\n", count, d->replies);
	return d->replies > 0 ? 0 : 1;
}

/* Runs the link in 1 ms steps until done(arg) or 200 s of virtual time have passed. */
static void demo_run_until(struct ustack_memlink *ml, struct ustack_vclock *vc, int (*done)(void *), void *arg)
{
	uint64_t deadline = vc->now_us + 200000000ull;
	while (vc->now_us < deadline && !done(arg))
		ustack_memlink_run(ml, vc, vc->now_us + 1000);
}

/* One connection of the Fast Open demo: client a's cfd to server b's listener lfd. */
struct demo_conn {
	struct ustack *a, *b;
	struct ustack_memlink *ml;
	struct demo_state *d;
	int cfd, lfd, afd;
};

/* the client is connected (or gave up) */
static int demo_client_done(void *arg)
{
	struct demo_conn *c = arg;
	return ustack_tcp_state(c->a, c->cfd) != TCP_SYN_SENT;
}

/* the server has a connection to accept (or the client gave up) */
static int demo_server_queued(void *arg)
{
	struct demo_conn *c = arg;
	int syn_q, acc_q, max_q;
	ustack_listen_queues(c->b, c->lfd, &syn_q, &acc_q, &max_q);
	return acc_q > 0 || ustack_tcp_state(c->a, c->cfd) == TCP_CLOSE;
}

/* the server's connection has data (or an error, or the end) */
static int demo_server_readable(void *arg)
{
	struct demo_conn *c = arg;
	struct pollfd p = { .fd = c->afd, .events = POLLIN };
	return ustack_poll(c->b, &p, 1, 0) != 0;
}

static void demo_note(struct demo_conn *c, int side, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void demo_note(struct demo_conn *c, int side, const char *fmt, ...)
{
	char text[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ladder_note(c->d->ladder, side, c->d->vc->now_us, text);
}

/*
 * The client's sendto(msg, MSG_FASTOPEN) — or, if that could not put the data in the SYN
 * (EINPROGRESS: no cookie yet), a send() once connected, as an application would retry — and
 * the server's accept() and read() as soon as each can return.  0, or -1 if no connection.
 */
static int demo_fastopen_conn(struct demo_conn *c, const char *msg, const struct sockaddr_in *to)
{
	struct ustack_vclock *vc = c->d->vc;
	size_t len = strlen(msg);
	c->cfd = ustack_socket(c->a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	demo_note(c, 0, "sendto(\"%s\", %zu, MSG_FASTOPEN)", msg, len);
	ssize_t n = ustack_sendto(c->a, c->cfd, msg, len, MSG_FASTOPEN, (const struct sockaddr *)to, sizeof(*to));
	if (n < 0 && errno != EINPROGRESS) {
		demo_note(c, 0, "sendto() = -1 %s", strerror(errno));
		return -1;
	}
	demo_note(c, 0, n < 0 ? "sendto() = -1 EINPROGRESS" : "sendto() = %zd", n);
	if (n < 0) {
		demo_run_until(c->ml, vc, demo_client_done, c);
		if (ustack_tcp_state(c->a, c->cfd) != TCP_ESTABLISHED)
			return -1;
		n = ustack_send(c->a, c->cfd, msg, len, 0);
		demo_note(c, 0, "send(\"%s\", %zu) = %zd", msg, len, n);
	}
	demo_run_until(c->ml, vc, demo_server_queued, c);
	c->afd = ustack_accept(c->b, c->lfd, NULL, NULL);
	if (c->afd < 0) {
		demo_note(c, 1, "accept(): %s", strerror(errno));
		return -1;
	}
	demo_note(c, 1, "accept() = %d in %s", c->afd, ustack_tcp_state_name(ustack_tcp_state(c->b, c->afd)));
	demo_run_until(c->ml, vc, demo_server_readable, c);
	char buf[64];
	ssize_t r = ustack_recv(c->b, c->afd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[r > 0 ? r : 0] = 0;
	demo_note(c, 1, "read() = %zd \"%s\" in %s", r, buf, ustack_tcp_state_name(ustack_tcp_state(c->b, c->afd)));
	demo_run_until(c->ml, vc, demo_client_done, c);
	ustack_memlink_run(c->ml, vc, vc->now_us + 50000); /* the last ACKs, delayed ones too */
	return 0;
}

static uint64_t demo_counter(struct ustack *st, const char *name)
{
	uint64_t v = 0;
	ustack_counter_get(st, name, &v);
	return v;
}

/*
 * --fastopen: two connections to a listener with Fast Open on.  The first sendto(MSG_FASTOPEN)
 * has no cookie for the server: its SYN asks for one (an empty option) and carries no data,
 * the call says EINPROGRESS, and the data goes once connected.  The SYN-ACK brought a cookie,
 * so the second one's SYN carries the cookie and the data, and the server's application reads
 * it from a child still in SYN_RECV: before the final ACK, one round trip early.
 */
static int demo_fastopen(struct ustack *a, struct ustack *b, struct ustack_memlink *ml, struct in_addr addr_b,
			 struct demo_state *d)
{
	int qlen = 16;
	printf("ustack demo: TCP Fast Open (RFC 7413) to 192.0.2.2:80 over an in-memory link (1 ms one way), "
	       "virtual time\n\n");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = addr_b };
	struct demo_conn c[2] = { { .a = a, .b = b, .ml = ml, .d = d, .cfd = -1, .afd = -1 } };
	c[0].lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (ustack_sysctl_set(b, "net.ipv4.tcp_fastopen", "3") < 0 || c[0].lfd < 0 ||
	    ustack_bind(b, c[0].lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || ustack_listen(b, c[0].lfd, 128) < 0 ||
	    ustack_setsockopt(b, c[0].lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) < 0) {
		fprintf(stderr, "ustack demo: server: %s\n", strerror(errno));
		return 1;
	}
	c[1] = c[0];
	printf("server: sysctl net.ipv4.tcp_fastopen=3 (client and server); socket(), bind(192.0.2.2:80),\n"
	       "        listen(128), setsockopt(TCP_FASTOPEN, %d): LISTEN with Fast Open\n"
	       "client: net.ipv4.tcp_fastopen=1 (the default: client); no cookie for 192.0.2.2 yet\n\n", qlen);
	ladder_init(d->ladder, stdout, a, "client 192.0.2.1", b, "server 192.0.2.2");
	printf("connection 1: no cookie yet, so the SYN asks for one (FO) and carries no data\n\n");
	ladder_header(d->ladder);
	int rc = demo_fastopen_conn(&c[0], "hello 1", &sa);
	printf("\nconnection 2: with the cookie from the first SYN-ACK (FO <cookie>), the SYN carries it\n"
	       "and the data\n\n");
	ladder_header(d->ladder);
	if (!rc)
		rc = demo_fastopen_conn(&c[1], "hello 2", &sa);
	ladder_detach(d->ladder);
	for (int i = 0; i < 2; i++) {
		if (c[i].afd < 0)
			continue;
		printf("%sconnection %d, negotiated:\n", i ? "" : "\n", i + 1);
		print_tcp_info(stdout, "client", a, c[i].cfd);
		print_tcp_info(stdout, "server", b, c[i].afd);
	}
	printf("\nclient: TcpExtTCPFastOpenActive %llu, TcpExtTCPFastOpenActiveFail %llu\n"
	       "server: TcpExtTCPFastOpenCookieReqd %llu, TcpExtTCPFastOpenPassive %llu, TcpExtTCPFastOpenPassiveFail %llu\n",
	       (unsigned long long)demo_counter(a, "TcpExtTCPFastOpenActive"),
	       (unsigned long long)demo_counter(a, "TcpExtTCPFastOpenActiveFail"),
	       (unsigned long long)demo_counter(b, "TcpExtTCPFastOpenCookieReqd"),
	       (unsigned long long)demo_counter(b, "TcpExtTCPFastOpenPassive"),
	       (unsigned long long)demo_counter(b, "TcpExtTCPFastOpenPassiveFail"));
	if (rc)
		printf("no connection\n");
	return rc ? 1 : 0;
}

static int cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "drop-syn", required_argument, 0, 'd' }, { "drop-synack", required_argument, 0, 'D' },
		{ "loss", required_argument, 0, 'l' }, { "seed", required_argument, 0, 's' },
		{ "ping", required_argument, 0, 'p' }, { "counters", no_argument, 0, 'c' },
		{ "fastopen", no_argument, 0, 'f' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int c, ping = 0, counters = 0, fastopen = 0;
	double loss = 0;
	uint64_t seed = 1;
	struct demo_state d = { 0 };
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
		int bad = 0;
		switch (c) {
		case 'd': bad = cli_int(cli_opt(), optarg, 0, 1000, "a count", &d.drop_syn); break;
		case 'D': bad = cli_int(cli_opt(), optarg, 0, 1000, "a count", &d.drop_synack); break;
		case 'l': bad = cli_real(cli_opt(), optarg, 0, 1, "a probability", &loss); break;
		case 's': bad = cli_u64(cli_opt(), optarg, 0, UINT64_MAX, "a seed", &seed); break;
		case 'p': bad = cli_int(cli_opt(), optarg, 1, 1000, "a count", &ping); break;
		case 'c': counters = 1; break;
		case 'f': fastopen = 1; break;
		case 'h':
			printf("usage: ustack demo [--drop-syn N] [--drop-synack N] [--loss P] [--seed S]\n"
			       "                   [--ping N | --fastopen] [--counters]\n\n"
			       "Two ustack instances in this process — client 192.0.2.1 and server 192.0.2.2 —\n"
			       "joined by an in-memory link with 1 ms of delay, in virtual time.  The client\n"
			       "connects to port 80, the server accepts, and the ladder shows what happened:\n"
			       "each side's steps and states, every frame with flags, seq/ack and options.\n"
			       "  --drop-syn N     lose the client's first N SYNs (0-1000; see the 1 s\n"
			       "                   retransmissions)\n"
			       "  --drop-synack N  lose the server's first N SYN-ACKs (0-1000)\n"
			       "  --loss P         lose any frame with probability P (0-1)\n"
			       "  --seed S         seed for the link's impairments (default 1)\n"
			       "  --ping N         send N pings instead of connecting (1-1000)\n"
			       "  --fastopen       two connections with TCP Fast Open instead: the first\n"
			       "                   SYN asks for a cookie, the second carries it and data\n"
			       "  --counters       print both stacks' counters at the end\n");
			return 0;
		default:
			return CLI_USAGE;
		}
		if (bad)
			return CLI_USAGE;
	}
	if (cli_no_operands(argc, argv) < 0)
		return CLI_USAGE;
	if (fastopen && ping) {
		cli_error("--fastopen", "cannot be combined with --ping");
		return CLI_USAGE;
	}
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	static const uint8_t seed_a[32] = { 1 }, seed_b[32] = { 2 };
	struct ustack_config ca = { .clock = &vc.clock, .secret_seed = seed_a, .name = "client" };
	struct ustack_config cb = { .clock = &vc.clock, .secret_seed = seed_b, .name = "server" };
	struct ustack *a = ustack_create(&ca), *b = ustack_create(&cb);
	struct ustack_memlink_params mp = { .seed = seed, .delay_us = 1000, .loss = loss };
	struct ustack_memlink *ml = ustack_memlink_create(&vc.clock, &mp);
	if (!a || !b || !ml) {
		fprintf(stderr, "ustack demo: %s\n", strerror(errno));
		return 1;
	}
	static const uint8_t mac_a[6] = { 0x02, 0, 0, 0, 0, 1 }, mac_b[6] = { 0x02, 0, 0, 0, 0, 2 };
	int ia = ustack_memlink_attach(ml, 0, a, "mem0", mac_a, 1500);
	int ib = ustack_memlink_attach(ml, 1, b, "mem0", mac_b, 1500);
	struct in_addr addr_a, addr_b;
	inet_pton(AF_INET, "192.0.2.1", &addr_a);
	inet_pton(AF_INET, "192.0.2.2", &addr_b);
	ustack_addr_add(a, ia, addr_a, 24);
	ustack_addr_add(b, ib, addr_b, 24);

	struct ladder lad;
	d.ladder = &lad;
	d.vc = &vc;
	ustack_memlink_set_filter(ml, demo_filter, &d);
	int rc = 0;
	if (ping) {
		ladder_init(&lad, stdout, a, "client 192.0.2.1", b, "server 192.0.2.2");
		printf("ustack demo: ping over an in-memory link (1 ms one way), virtual time\n\n");
		ladder_header(&lad);
		rc = demo_ping(a, ml, &vc, addr_b, ping, &d);
		ladder_detach(&lad);
		goto out;
	}
	if (fastopen) {
		rc = demo_fastopen(a, b, ml, addr_b, &d);
		goto out;
	}
	printf("ustack demo: connect() to 192.0.2.2:80 over an in-memory link (1 ms one way), virtual time\n\n");
	/* the server: socket, bind, listen (before the ladder starts, as a server would be up) */
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = addr_b };
	if (lfd < 0 || ustack_bind(b, lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || ustack_listen(b, lfd, 128) < 0) {
		fprintf(stderr, "ustack demo: server: %s\n", strerror(errno));
		return 1;
	}
	printf("server: socket(), bind(192.0.2.2:80), listen(128): LISTEN\n\n");
	ladder_init(&lad, stdout, a, "client 192.0.2.1", b, "server 192.0.2.2");
	ladder_header(&lad);
	int cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (ustack_connect(a, cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		fprintf(stderr, "ustack demo: connect: %s\n", strerror(errno));
		return 1;
	}
	/* run until the server has the connection queued (bounded: 200 s of virtual time) */
	int acc_q = 0, syn_q = 0, max_q = 0;
	uint64_t deadline = vc.now_us + 200000000ull;
	while (vc.now_us < deadline) {
		ustack_memlink_run(ml, &vc, vc.now_us + 1000);
		ustack_listen_queues(b, lfd, &syn_q, &acc_q, &max_q);
		if (acc_q || ustack_tcp_state(a, cfd) == TCP_CLOSE)
			break;
	}
	ustack_memlink_run(ml, &vc, vc.now_us + 2000);
	ustack_listen_queues(b, lfd, &syn_q, &acc_q, &max_q);
	int afd = ustack_accept(b, lfd, NULL, NULL);
	ladder_detach(&lad);
	printf("\nqueues on the listener before accept(): SYN queue %d, accept queue %d (limit %d)\n",
	       syn_q, acc_q, max_q);
	if (afd < 0) {
		int err = 0;
		socklen_t len = sizeof(err);
		ustack_getsockopt(a, cfd, SOL_SOCKET, SO_ERROR, &err, &len);
		printf("no connection: %s\n", err ? strerror(err) : strerror(errno));
		rc = 1;
	} else {
		printf("accept() returned fd %d; negotiated:\n", afd);
		print_tcp_info(stdout, "client", a, cfd);
		print_tcp_info(stdout, "server", b, afd);
	}
out:
	if (counters) {
		printf("\nclient ");
		print_counters(stdout, a);
		printf("\nserver ");
		print_counters(stdout, b);
	}
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ustack COMMAND [options]   (ustack COMMAND --help for more)\n\n"
		   "commands:\n"
		   "  up       run ustack on a TAP device or AF_XDP queue; answers ARP and ping\n"
		   "  ping     send echo requests from ustack on a TAP device\n"
		   "  connect  open a TCP connection from ustack on a TAP device\n"
		   "  nc       netcat over ustack on a TAP device (connect, -l, --serve)\n"
		   "  run      run an unmodified program with its TCP over ustack (-- PROGRAM ARGS)\n"
		   "  demo     connect() between two stacks over an in-memory link, as a ladder diagram\n"
		   "  sysctl   sysctls of a running instance (read, -w), or their defaults\n"
		   "  ls       list the running instances (their control sockets)\n"
		   "  ss       sockets of a running instance, like ss(8)\n"
		   "  nstat    counters of a running instance, like nstat(8)\n"
		   "  trace    stream a running instance's events, like trace-cmd\n"
		   "  tcp_metrics  what a running instance remembers per server, like ip tcp_metrics\n"
		   "  pcap     capture a running instance's frames into a pcap file, like tcpdump -w\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	cli_set_command(cmd);
	if (!strcmp(cmd, "up"))
		return cmd_up(argc - 1, argv + 1);
	if (!strcmp(cmd, "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(cmd, "ping"))
		return cmd_ping(argc - 1, argv + 1);
	if (!strcmp(cmd, "connect"))
		return cmd_connect(argc - 1, argv + 1);
	if (!strcmp(cmd, "nc"))
		return cmd_nc(argc - 1, argv + 1);
	if (!strcmp(cmd, "sysctl"))
		return cmd_sysctl(argc - 1, argv + 1);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc - 1, argv + 1);
	if (!strcmp(cmd, "ss"))
		return cmd_ss(argc - 1, argv + 1);
	if (!strcmp(cmd, "nstat"))
		return cmd_nstat(argc - 1, argv + 1);
	if (!strcmp(cmd, "trace"))
		return cmd_trace(argc - 1, argv + 1);
	if (!strcmp(cmd, "tcp_metrics"))
		return cmd_tcp_metrics(argc - 1, argv + 1);
	if (!strcmp(cmd, "pcap"))
		return cmd_pcap(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "ustack: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
