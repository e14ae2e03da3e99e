/* ISNs, port selection, trace events, and the smaller API corners of the handshake. */
#include "testwire.h"
#include "tcp/tcp.h"
#include <ustack/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <netinet/tcp.h>
#include <string.h>

static void test_isn_keyed_and_clocked(void **state)
{
	struct tw *t = *state;
	stack_lock(t->st);
	uint32_t a = secure_tcp_seq(t->st, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	uint32_t b = secure_tcp_seq(t->st, TW_DUT_IP, TW_PEER_IP, 40001, 80);
	uint32_t a_again = secure_tcp_seq(t->st, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	stack_unlock(t->st);
	assert_int_equal(a, a_again); /* same tuple, same instant */
	assert_true(a != b);          /* one port apart: unrelated (keyed hash) */
	/* the clock part ticks every 64 ns: 1 ms later the ISN has moved 15625 */
	t->vc.now_us += 1000;
	stack_lock(t->st);
	t->st->now = t->vc.now_us;
	uint32_t a_later = secure_tcp_seq(t->st, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	stack_unlock(t->st);
	assert_int_equal(a_later - a, 15625);
	/* another stack (another secret) gives another ISN for the same tuple */
	struct ustack_config cfg = { .clock = &t->vc.clock };
	struct ustack *other = ustack_create(&cfg);
	stack_lock(other);
	uint32_t o = secure_tcp_seq(other, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	stack_unlock(other);
	assert_true(o != a_later);
	ustack_destroy(other);
	/* timestamp offsets: per 4-tuple, from the same hash as the ISN (Linux 6.18's
	 * secure_tcp_seq_and_ts_off: its high half), and none with tcp_timestamps = 2 */
	stack_lock(t->st);
	struct tcp_seq_and_ts_off s1 = secure_tcp_seq_and_ts_off(t->st, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	struct tcp_seq_and_ts_off s2 = secure_tcp_seq_and_ts_off(t->st, TW_DUT_IP, TW_PEER_IP, 40001, 80);
	struct tcp_seq_and_ts_off s3 = secure_tcp_seq_and_ts_off(t->st, TW_DUT_IP, TW_FAR_IP, 40000, 80);
	t->st->sysctl.tcp_timestamps = 2;
	struct tcp_seq_and_ts_off s4 = secure_tcp_seq_and_ts_off(t->st, TW_DUT_IP, TW_PEER_IP, 40000, 80);
	stack_unlock(t->st);
	assert_int_equal(s1.seq, a_later);
	assert_true(s1.ts_off != s2.ts_off); /* one port apart */
	assert_true(s1.ts_off != s3.ts_off);
	assert_true(s1.ts_off != s1.seq - (uint32_t)((t->vc.now_us * 1000u) >> 6)); /* the other half */
	assert_int_equal(s4.ts_off, 0);
	assert_int_equal(s4.seq, s1.seq);
}

static int connect_to(struct tw *t, uint32_t ip, uint16_t port)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	return fd;
}

static void test_ephemeral_ports_rfc6056(void **state)
{
	struct tw *t = *state;
	/* consecutive connects to one destination: distinct ports, the range's low parity first
	 * (even, as 32768 is), spread rather than sequential */
	uint16_t ports[64];
	int sequential = 0;
	for (int i = 0; i < 64; i++) {
		connect_to(t, TW_PEER_IP, 80);
		ports[i] = tw_expect_tcp(t).sport;
		assert_true(ports[i] >= 32768 && ports[i] <= 60999);
		assert_int_equal(ports[i] % 2, 0);
		for (int j = 0; j < i; j++)
			assert_true(ports[j] != ports[i]);
		if (i && ports[i] == ports[i - 1] + 2)
			sequential++;
	}
	assert_true(sequential < 60); /* the perturbation table adds random steps */
	/* the same seed gives the same ports: reproducible in tests */
	struct tw t2;
	tw_init(&t2);
	tw_learn_peer(&t2);
	t2.auto_arp = 1;
	connect_to(&t2, TW_PEER_IP, 80);
	assert_int_equal(tw_expect_tcp(&t2).sport, ports[0]);
	tw_fini(&t2);
	/* bind(port 0) starts from the other parity */
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in any = { .sin_family = AF_INET };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&any, sizeof(any)), 0);
	socklen_t len = sizeof(any);
	ustack_getsockname(t->st, fd, (struct sockaddr *)&any, &len);
	assert_int_equal(ntohs(any.sin_port) % 2, 1);
}

static void test_bound_port_connect_needs_unique_tuple(void **state)
{
	struct tw *t = *state;
	int one = 1;
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(5555) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	int a = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int b = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ustack_setsockopt(t->st, a, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ustack_setsockopt(t->st, b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(ustack_bind(t->st, a, (struct sockaddr *)&me, sizeof(me)), 0);
	assert_int_equal(ustack_bind(t->st, b, (struct sockaddr *)&me, sizeof(me)), 0);
	assert_int_equal(ustack_connect(t->st, a, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(tw_expect_tcp(t).sport, 5555);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, b, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EADDRNOTAVAIL); /* the same 4-tuple */
	to.sin_port = htons(81);
	assert_int_equal(ustack_connect(t->st, b, (struct sockaddr *)&to, sizeof(to)), -1);
	assert_int_equal(errno, EINPROGRESS);
}

struct steps {
	char names[64][40];
	int n;
};

static void record(void *arg, const struct ustack_trace_event *ev)
{
	struct steps *s = arg;
	if (ev->kind != USTACK_TRACE_STEP || s->n == 64 || !ev->old_state)
		return; /* TCP steps only: they carry states */
	snprintf(s->names[s->n++], 40, "%s", ev->name);
	if (s->n > 1) { /* from inet_hash_connect on, the full 4-tuple */
		assert_int_equal(ntohl(ev->laddr.s_addr), TW_DUT_IP);
		assert_int_equal(ntohl(ev->raddr.s_addr), TW_PEER_IP);
		assert_int_equal(ev->rport, 80);
		assert_true(ev->lport >= 32768);
	}
}

static void test_trace_follows_the_seed(void **state)
{
	struct tw *t = *state;
	struct steps s = { .n = 0 };
	int id = ustack_trace_subscribe(t->st, record, &s);
	assert_true(id >= 0);
	int fd = connect_to(t, TW_PEER_IP, 80);
	struct tw_seg syn = tw_expect_tcp(t);
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, 80, syn.sport, 7, syn.seq + 1, TW_SYN | TW_ACK, 1000, NULL, 0));
	tw_expect_tcp(t);
	ustack_trace_unsubscribe(t->st, id);
	static const char *const want[] = { "tcp_v4_connect", "inet_hash_connect", "tcp_set_state",
					    "tcp_connect", "tcp_send_syn", "tcp_rcv_synsent_state_process",
					    "tcp_set_state", "sk_state_change" };
	assert_int_equal(s.n, 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(s.names[i], want[i]);
	(void)fd;
}

/* Connects to the peer's `port` and completes the handshake (the peer's ISN 7, no options):
 * c is the established connection. */
static void establish_to(struct tw *t, struct tw_conn *c, uint16_t port)
{
	int fd = connect_to(t, TW_PEER_IP, port);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN);
	*c = (struct tw_conn){ .lfd = -1, .fd = fd, .iss = syn.seq, .peer_isn = 7, .port = syn.sport, .peer_port = port };
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, port, syn.sport, 7, tw_dut_seq(c, 0), TW_SYN | TW_ACK, 1000, NULL, 0));
	tw_expect_seg(t, c, TW_ACK, 0, 0, 0);
}

static void test_estab_reset_and_close(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish_to(t, &c, 80);
	int fd = c.fd;
	/* a RST at rcv_nxt resets the connection: ECONNRESET, TcpEstabResets */
	tw_peer_send(t, &c, 0, 0, TW_RST, 0, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(tw_counter(t, "TcpEstabResets"), 1);
	assert_int_equal(tw_counter(t, "TcpCurrEstab"), 0);
	int err = 0;
	socklen_t len = sizeof(err);
	ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len);
	assert_int_equal(err, ECONNRESET);
	/* RFC 5961 §3.2: a RST in the window but not at rcv_nxt gets a challenge ACK; one
	 * outside the window is dropped silently */
	struct tw_conn c2;
	establish_to(t, &c2, 81);
	tw_peer_send(t, &c2, 4992, 0, TW_RST, 0, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, c2.fd), TCP_ESTABLISHED);
	tw_expect_seg(t, &c2, TW_ACK, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPChallengeACK"), 1);
	tw_peer_send(t, &c2, 500000, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, c2.fd), TCP_ESTABLISHED);
	/* close() of an established connection sends FIN */
	assert_int_equal(ustack_close(t->st, c2.fd), 0);
	tw_expect_seg(t, &c2, TW_FIN | TW_ACK, 0, 0, 0);
}

static void test_fcntl_shutdown_and_poll_corners(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	assert_int_equal(ustack_fcntl(t->st, fd, F_GETFL, 0) & O_NONBLOCK, 0);
	assert_int_equal(ustack_fcntl(t->st, fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(ustack_fcntl(t->st, fd, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK);
	errno = 0;
	assert_int_equal(ustack_fcntl(t->st, fd, F_DUPFD, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* shutdown of an unconnected socket: ENOTCONN; a bad how: EINVAL */
	errno = 0;
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_RDWR), -1);
	assert_int_equal(errno, ENOTCONN);
	errno = 0;
	assert_int_equal(ustack_shutdown(t->st, fd, 7), -1);
	assert_int_equal(errno, EINVAL);
	/* a fresh socket polls writable and hung up, as tcp_poll says for TCP_CLOSE — and, shut
	 * down though the shutdown said ENOTCONN (inet_shutdown records it anyway), readable */
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN | POLLOUT }, { .fd = 4242, .events = POLLIN } };
	assert_int_equal(ustack_poll(t->st, p, 2, 0), 2);
	assert_int_equal(p[0].revents, POLLIN | POLLOUT | POLLHUP);
	assert_int_equal(p[1].revents, POLLNVAL);
	/* a listener: TCP_INFO shows the accept queue as Linux does */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9000) };
	ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	assert_int_equal(ustack_listen(t->st, fd, 7), 0);
	assert_int_equal(ustack_listen(t->st, fd, 9), 0); /* again: only the backlog changes */
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_state, TCP_LISTEN);
	assert_int_equal(ti.tcpi_sacked, 9);
	assert_int_equal(ti.tcpi_unacked, 0);
	int v = 0;
	len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
	assert_int_equal(v, 1);
	errno = 0;
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, 9999, &v, &len), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &v, 2), -1);
	assert_int_equal(errno, EINVAL);
	/* shutdown(SHUT_RD) on a listener stops listening */
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_RD), 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	/* SO_RCVBUF is doubled and capped like Linux's */
	v = 100000;
	ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	len = sizeof(v);
	ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
	assert_int_equal(v, 200000);
}

static void test_syn_backlog_last_quarter_without_cookies(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "0");
	tw_sysctl(t, "net.ipv4.tcp_max_syn_backlog", "8");
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };
	ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	ustack_listen(t->st, fd, 100);
	uint8_t f[128];
	int answered = 0;
	for (uint16_t p = 0; p < 10; p++) {
		tw_send(t, f, tw_tcp(f, (uint16_t)(30000 + p), 8080, 1, 0, TW_SYN, 1000, NULL, 0));
		while (t->count) {
			tw_expect_tcp(t);
			answered++;
		}
	}
	/* 8 - qlen < 8/4 stops new requests at 7 pending */
	assert_int_equal(answered, 7);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 3);
	int sq = 0;
	ustack_listen_queues(t->st, fd, &sq, NULL, NULL);
	assert_int_equal(sq, 7);
}

static void test_syn_mss_from_route_mtu(void **state)
{
	struct tw *t = *state;
	/* a host route with MTU 1400: the SYN offers 1400 - 40 */
	struct ustack_route r = { .dst.s_addr = htonl(TW_PEER_IP), .prefixlen = 32, .ifindex = t->ifindex, .mtu = 1400 };
	assert_int_equal(ustack_route_add(t->st, &r), 0);
	connect_to(t, TW_PEER_IP, 80);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.opts[0], 2);
	assert_int_equal(tw_rd16(syn.opts + 2), 1360);
	assert_int_equal(syn.win, 65280); /* 48 × 1360 */
	/* and TCP_MAXSEG below that wins */
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int v = 1000;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)), 0);
	v = 50;
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(81), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	syn = tw_expect_tcp(t);
	assert_int_equal(tw_rd16(syn.opts + 2), 1000);
}

/* The window scale a SYN offers, -1 if none. */
static int syn_wscale(const struct tw_seg *s)
{
	for (size_t i = 0; i + 2 < s->optlen;) {
		if (s->opts[i] == 1) {
			i++;
			continue;
		}
		if (s->opts[i] == 3)
			return s->opts[i + 2];
		i += s->opts[i + 1] ? s->opts[i + 1] : 1;
	}
	return -1;
}

/* A receive buffer locked small by SO_RCVBUF before connect() or listen() clamps the windows to
 * half of it (tcp_full_space) and so the scale offered (Linux 6.18, measured: SO_RCVBUF 2048 →
 * SYN window 1460, wscale 0; 65536 → 64240, wscale 1), and the first ACK offers that much —
 * in whole segments while unscaled (__tcp_select_window).  Unlocked, the scale comes from
 * tcp_rmem[2]. */
static void test_locked_rcvbuf_clamps_window_and_scale(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int v = 2048;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.win, 1460);
	assert_int_equal(syn_wscale(&syn), 0);
	/* the peer answers with wscale 7: our first ACK offers one whole segment */
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_wscale(&o, 7);
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, tw_tcp(f, 80, syn.sport, 5000, syn.seq + 1, TW_SYN | TW_ACK, 65535, o.b, o.len));
	assert_int_equal(tw_expect_tcp(t).win, 1460);
	int fd2 = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	v = 65536;
	assert_int_equal(ustack_setsockopt(t->st, fd2, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
	a.sin_port = htons(81);
	ustack_connect(t->st, fd2, (struct sockaddr *)&a, sizeof(a));
	syn = tw_expect_tcp(t);
	assert_int_equal(syn.win, 64240);
	assert_int_equal(syn_wscale(&syn), 1);
	tw_send(t, f, tw_tcp(f, 81, syn.sport, 5000, syn.seq + 1, TW_SYN | TW_ACK, 65535, o.b, o.len));
	assert_int_equal(tw_expect_tcp(t).win, 32120); /* 64240 >> 1: the window never shrinks */
	int fd3 = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	a.sin_port = htons(82);
	ustack_connect(t->st, fd3, (struct sockaddr *)&a, sizeof(a));
	syn = tw_expect_tcp(t);
	assert_int_equal(syn_wscale(&syn), 10); /* ilog2(32 MB) − 15 */
}

/* setsockopt and getsockopt dispatch on the level first, then check the length, then read the
 * value — Linux's order (do_sock_setsockopt → sk_setsockopt / do_tcp_setsockopt): a level
 * ustack does not serve is ENOPROTOOPT however short the option, a short int option is
 * EINVAL, and a NULL value with a good length is EFAULT. */
static void test_sockopt_argument_order(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	uint8_t one = 1;
	int v = 1;
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_UDP, 1, &one, 1), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	/* an IP option takes a single byte (IP_TOS 0x11: the ECN bits stay the connection's) */
	uint8_t tos = 0x11;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_IP, IP_TOS, &tos, 1), 0);
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_KEEPALIVE, &one, 1), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_NODELAY, NULL, sizeof(int)), -1);
	assert_int_equal(errno, EFAULT);
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, 9999, &v, sizeof(v)), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), 0);
	socklen_t len = sizeof(v);
	v = 0;
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_IP, IP_TOS, &v, &len), 0);
	assert_int_equal(v, 0x10);
	errno = 0;
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_IP, IP_MTU, &v, &len), -1);
	assert_int_equal(errno, ENOTCONN);
	errno = 0;
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_IP, 4 /* IP_OPTIONS */, &v, &len), -1);
	assert_int_equal(errno, ENOPROTOOPT);
}

/* IP-level options on the wire: IP_TOS in every segment's TOS byte (its ECN bits left to
 * ECN), IP_TTL in the TTL, IP_MTU_DISCOVER's DONT clearing DF; a child inherits them. */
static void test_ip_options_on_the_wire(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	tw_accept_conn(t, &c, 8080, NULL, 0);
	int tos = 0x13, ttl = 7, dont = IP_PMTUDISC_DONT;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)), 0);
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)), 0);
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont)), 0);
	assert_int_equal(ustack_write(t->st, c.fd, "x", 1), 1);
	struct tw_seg s = tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 1);
	assert_int_equal(s.tos, 0x10); /* no ECN here: the ECN bits stay clear */
	assert_int_equal(s.ttl, 7);
	assert_false(s.df);
	int v;
	socklen_t l = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_IP, IP_MTU, &v, &l), 0);
	assert_int_equal(v, 1500);
	int bad = 256;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_TTL, &bad, sizeof(bad)), -1);
	assert_int_equal(errno, EINVAL);
	bad = -1; /* back to the sysctl's */
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_TTL, &bad, sizeof(bad)), 0);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_IP, IP_TTL, &v, &l), 0);
	assert_int_equal(v, 64);
	/* SO_MARK and SO_PRIORITY are kept, and read back */
	int mark = 666, prio = 6;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio)), 0);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, SOL_SOCKET, SO_MARK, &v, &l), 0);
	assert_int_equal(v, 666);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, SOL_SOCKET, SO_PRIORITY, &v, &l), 0);
	assert_int_equal(v, 6);
	/* a listener's options go to its children */
	assert_int_equal(ustack_setsockopt(t->st, c.lfd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)), 0);
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, tw_tcp(f, 40001, 8080, 100, 0, TW_SYN, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).ttl, 7);
}

/* SOL_SOCKET and IP options as Linux 6.18 answers them (measured with a kernel socket):
 * SO_RCVLOWAT 0 reads back 1 and a negative one the cap, half of tcp_rmem[2]; SO_SNDLOWAT reads
 * 1 and cannot be set; SO_BINDTODEVICE takes a name (ENODEV for an unknown one, "" unbinds) and
 * reads it back only into IFNAMSIZ bytes; IP_FREEBIND lets bind() take an address that is not
 * ours, but connect() from it still fails (EINVAL) — only IP_TRANSPARENT sends from a foreign
 * address; SO_DONTROUTE keeps to on-link routes. */
static void test_socket_options_as_linux(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
	assert_int_equal(v, 1);
	v = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)), 0);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
	assert_int_equal(v, 1);
	v = -5;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)), 0);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
	assert_int_equal(v, 33554432 / 2); /* ustack's tcp_rmem[2], 32 MB */
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_SNDLOWAT, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_SNDLOWAT, &v, sizeof(v)), -1);
	assert_int_equal(errno, ENOPROTOOPT);
	/* SO_BINDTODEVICE */
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, "nope", 5), -1);
	assert_int_equal(errno, ENODEV);
	char name[16] = { 0 };
	len = sizeof(name);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0);
	assert_int_equal(len, 0); /* not bound */
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, "eth0", 4), 0);
	len = 8;
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len), -1);
	assert_int_equal(errno, EINVAL);
	len = sizeof(name);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(name, "eth0");
	len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_BINDTOIFINDEX, &v, &len), 0);
	assert_int_equal(v, t->ifindex);
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_BINDTODEVICE, "", 0), 0);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_BINDTOIFINDEX, &v, &len), 0);
	assert_int_equal(v, 0);
	v = 99;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_BINDTOIFINDEX, &v, sizeof(v)), -1);
	assert_int_equal(errno, ENODEV);
	/* IP_FREEBIND */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5555), .sin_addr.s_addr = htonl(0xcb007109) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRNOTAVAIL);
	uint8_t on = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_IP, IP_FREEBIND, &on, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_IP, IP_FREEBIND, &on, 1), 0);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_IP, IP_FREEBIND, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&peer, sizeof(peer)), -1);
	assert_int_equal(errno, EINVAL);
	tw_expect_none(t);
	/* IP_TRANSPARENT: the SYN leaves from the foreign address */
	int fd2 = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	v = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd2, IPPROTO_IP, IP_TRANSPARENT, &v, sizeof(v)), 0);
	a.sin_port = htons(5556);
	assert_int_equal(ustack_bind(t->st, fd2, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_connect(t->st, fd2, (struct sockaddr *)&peer, sizeof(peer)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN);
	assert_int_equal(syn.sport, 5556);
	struct tw_frame *fr = &t->out[(t->head + TW_MAX_FRAMES - 1) % TW_MAX_FRAMES];
	assert_int_equal(tw_rd32(fr->b + 14 + 12), 0xcb007109); /* the IP source */
	/* SO_DONTROUTE: a destination behind the gateway is unreachable; SO_BROADCAST and
	 * SO_OOBINLINE read back */
	int fd3 = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(ustack_setsockopt(t->st, fd3, SOL_SOCKET, SO_DONTROUTE, &v, sizeof(v)), 0);
	assert_int_equal(ustack_setsockopt(t->st, fd3, SOL_SOCKET, SO_BROADCAST, &v, sizeof(v)), 0);
	assert_int_equal(ustack_setsockopt(t->st, fd3, SOL_SOCKET, SO_OOBINLINE, &v, sizeof(v)), 0);
	struct sockaddr_in far = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_FAR_IP) };
	assert_int_equal(ustack_connect(t->st, fd3, (struct sockaddr *)&far, sizeof(far)), -1);
	assert_int_equal(errno, ENETUNREACH);
	v = 0;
	assert_int_equal(ustack_getsockopt(t->st, fd3, SOL_SOCKET, SO_BROADCAST, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ustack_getsockopt(t->st, fd3, SOL_SOCKET, SO_OOBINLINE, &v, &len), 0);
	assert_int_equal(v, 1);
}

/* SO_RCVLOWAT: poll reports POLLIN only once that many bytes are in order, a blocking read
 * waits for them (a non-blocking one takes what is there), and a listener's value goes to
 * its children. */
static void test_rcvlowat(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	tw_accept_conn(t, &c, 8080, NULL, 0);
	int v = 5;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)), 0);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 65535, "abc", 3);
	struct pollfd p = { .fd = c.fd, .events = POLLIN };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 0);
	tw_peer_send(t, &c, 3, 0, TW_ACK | TW_PSH, 65535, "de", 2);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_true(p.revents & POLLIN);
	char b[16];
	assert_int_equal(ustack_recv(t->st, c.fd, b, sizeof(b), 0), 5);
	tw_peer_send(t, &c, 5, 0, TW_ACK | TW_PSH, 65535, "f", 1);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 0);
	assert_int_equal(ustack_recv(t->st, c.fd, b, sizeof(b), 0), 1); /* non-blocking: what is there */
	/* the FIN makes it readable whatever the mark */
	tw_peer_send(t, &c, 6, 0, TW_ACK | TW_FIN, 65535, NULL, 0);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	/* inherited */
	while (t->count)
		tw_expect_tcp(t); /* the ACKs of the data and the FIN */
	assert_int_equal(ustack_setsockopt(t->st, c.lfd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)), 0);
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, tw_tcp(f, 40001, 8080, 100, 0, TW_SYN, 65535, NULL, 0));
	struct tw_seg sa = tw_expect_tcp(t);
	tw_send(t, f, tw_tcp(f, 40001, 8080, 101, sa.seq + 1, TW_ACK, 65535, NULL, 0));
	int cfd = ustack_accept(t->st, c.lfd, NULL, NULL);
	assert_true(cfd >= 0);
	socklen_t len = sizeof(v);
	v = 0;
	assert_int_equal(ustack_getsockopt(t->st, cfd, SOL_SOCKET, SO_RCVLOWAT, &v, &len), 0);
	assert_int_equal(v, 5);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_isn_keyed_and_clocked),
		T(test_ephemeral_ports_rfc6056),
		T(test_bound_port_connect_needs_unique_tuple),
		T(test_trace_follows_the_seed),
		T(test_estab_reset_and_close),
		T(test_fcntl_shutdown_and_poll_corners),
		T(test_syn_backlog_last_quarter_without_cookies),
		T(test_syn_mss_from_route_mtu),
		T(test_locked_rcvbuf_clamps_window_and_scale),
		T(test_sockopt_argument_order),
		T(test_ip_options_on_the_wire),
		T(test_socket_options_as_linux),
		T(test_rcvlowat),
	};
	return cmocka_run_group_tests_name("tcp_misc", tests, NULL, NULL);
}
