/* The client side of the handshake, at the wire and at the API (seed phases 1–3 and 5). */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>

#define PEER_PORT 80
#define PEER_ISN 0x10000000u

static struct sockaddr_in peer_addr(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip) };
	return a;
}

static int nb_socket(struct tw *t)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 3);
	return fd;
}

static int start_connect(struct tw *t, int fd)
{
	struct sockaddr_in a = peer_addr(TW_PEER_IP, PEER_PORT);
	errno = 0;
	int rc = ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	return rc < 0 ? errno : 0;
}

/* The SYN Linux sends by default: mss 1460, sackOK + TS, nop + wscale 10. */
static struct tw_seg expect_syn(struct tw *t)
{
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	assert_int_equal(s.dport, PEER_PORT);
	assert_true(s.sport >= 32768 && s.sport <= 60999);
	assert_int_equal(s.ack, 0);
	assert_int_equal(s.win, 64240);
	assert_true(s.df);
	assert_int_equal(s.ttl, 64);
	assert_int_equal(s.optlen, 20);
	static const uint8_t head[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10 };
	static const uint8_t tail[] = { 0, 0, 0, 0, 1, 3, 3, 10 };
	assert_memory_equal(s.opts, head, sizeof(head));
	assert_memory_equal(s.opts + 12, tail, sizeof(tail)); /* TSecr 0, nop, wscale 10 */
	assert_int_equal(s.plen, 0);
	return s;
}

static void send_synack(struct tw *t, const struct tw_seg *syn, const uint8_t *opts, size_t optlen)
{
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn->sport, PEER_ISN, syn->seq + 1, TW_SYN | TW_ACK, 29200, opts, optlen));
}

static void test_connect_sends_linux_syn_and_completes(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	uint32_t tsval = tw_rd32(syn.opts + 8);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	assert_int_equal(start_connect(t, fd), EALREADY);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 0);
	assert_int_equal(tw_counter(t, "TcpActiveOpens"), 1);

	tw_advance(t, 5);
	/* mss 1400, sackOK + TS (val 777, ecr our tsval), nop + wscale 7 */
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1400);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 777, tsval);
	tw_opt_wscale(&o, 7);
	send_synack(t, &syn, o.b, o.len);
	struct tw_conn c = { .fd = fd, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport, .peer_port = PEER_PORT };
	struct tw_seg ack = tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	assert_int_equal(ack.win, 63); /* 64240 scaled by 2^10, rounded up */
	assert_int_equal(ack.optlen, 12);
	assert_int_equal(ack.opts[0], 1);
	assert_int_equal(ack.opts[1], 1);
	assert_int_equal(ack.opts[2], 8);
	assert_int_equal(tw_rd32(ack.opts + 4), tsval + 5); /* 5 ms later on the same clock */
	assert_int_equal(tw_rd32(ack.opts + 8), 777);
	assert_true(ack.df);
	tw_expect_none(t);

	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLOUT);
	int err = -1;
	socklen_t len = sizeof(err);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	assert_int_equal(err, 0);
	/* __inet_stream_connect: the next connect() reports success, the one after EISCONN */
	assert_int_equal(start_connect(t, fd), 0);
	assert_int_equal(start_connect(t, fd), EISCONN);
	struct sockaddr_in a;
	len = sizeof(a);
	assert_int_equal(ustack_getpeername(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohs(a.sin_port), PEER_PORT);
	assert_int_equal(ntohl(a.sin_addr.s_addr), TW_PEER_IP);
	len = sizeof(a);
	assert_int_equal(ustack_getsockname(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohs(a.sin_port), syn.sport);
	assert_int_equal(ntohl(a.sin_addr.s_addr), TW_DUT_IP);
	/* the peer's MSS less 12 bytes of timestamps */
	int mss = 0;
	len = sizeof(mss);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 1388);
	assert_int_equal(tw_counter(t, "TcpCurrEstab"), 1);
}

static void test_options_follow_sysctls(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_timestamps", "0");
	tw_sysctl(t, "net.ipv4.tcp_sack", "0");
	tw_sysctl(t, "net.ipv4.tcp_window_scaling", "0");
	int fd = nb_socket(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.optlen, 4);
	static const uint8_t mss_only[] = { 2, 4, 0x05, 0xb4 };
	assert_memory_equal(s.opts, mss_only, 4);
	assert_int_equal(s.win, 64240);
	/* without window scaling the handshake ACK carries the window unscaled */
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460);
	send_synack(t, &s, mss.b, mss.len);
	struct tw_seg ack = tw_expect_tcp(t);
	assert_int_equal(ack.optlen, 0);
	assert_int_equal(ack.win, 64240);
}

static void test_peer_without_options(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	struct tw_seg syn = expect_syn(t);
	send_synack(t, &syn, NULL, 0);
	struct tw_seg ack = tw_expect_tcp(t);
	/* no timestamps, no scaling: nothing negotiated, window unscaled */
	assert_int_equal(ack.optlen, 0);
	assert_int_equal(ack.win, 64240);
	int mss = 0;
	socklen_t len = sizeof(mss);
	ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
	assert_int_equal(mss, 536); /* RFC 9293: no MSS option means 536 */
}

static void test_rst_refuses(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	struct tw_seg syn = expect_syn(t);
	uint8_t f[128];
	/* a RST without ACK is not acceptable in SYN_SENT: ignored */
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, 0, 0, TW_RST, 0, NULL, 0));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, 0, syn.seq + 1, TW_RST | TW_ACK, 0, NULL, 0));
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN | POLLOUT | POLLERR | POLLHUP);
	int err = 0;
	socklen_t len = sizeof(err);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	assert_int_equal(err, ECONNREFUSED);
	len = sizeof(err);
	ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len);
	assert_int_equal(err, 0); /* reported once */
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 1);
	/* The socket still names the address and port it used (tcp_done lets the port go but
	 * keeps inet_sport), until connect() again meets the closed socket: with the error
	 * already read it fails ECONNABORTED (__inet_stream_connect's sock_error), and
	 * tcp_disconnect's inet_reset_saddr clears the address; the next connect() starts over
	 * — each as this machine's Linux 6.18 answers a non-blocking socket. */
	struct sockaddr_in got;
	socklen_t glen = sizeof(got);
	assert_int_equal(ustack_getsockname(t->st, fd, (struct sockaddr *)&got, &glen), 0);
	assert_int_equal(got.sin_addr.s_addr, htonl(TW_DUT_IP));
	assert_int_equal(ntohs(got.sin_port), syn.sport);
	assert_int_equal(start_connect(t, fd), ECONNABORTED);
	assert_int_equal(ustack_getsockname(t->st, fd, (struct sockaddr *)&got, &glen), 0);
	assert_int_equal(got.sin_addr.s_addr, 0);
	assert_int_equal(ntohs(got.sin_port), syn.sport);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg again = expect_syn(t);
	tw_send(t, f, tw_tcp(f, PEER_PORT, again.sport, 0, again.seq + 1, TW_RST | TW_ACK, 0, NULL, 0));
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 2);
	/* no timer left: nothing more is sent */
	tw_advance(t, 200000);
	tw_expect_none(t);
}

static void test_bad_ack_in_syn_sent_gets_rst(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	struct tw_seg syn = expect_syn(t);
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, syn.seq + 1000, TW_SYN | TW_ACK, 1000, NULL, 0));
	struct tw_seg r = tw_expect_tcp(t);
	assert_int_equal(r.flags, TW_RST);
	assert_int_equal(r.seq, syn.seq + 1000);
	assert_int_equal(r.ip_id, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	assert_int_equal(tw_counter(t, "TcpOutRsts"), 1);
	/* an ACK of the ISN itself (not of the SYN) is just as bad */
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, syn.seq, TW_ACK, 1000, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
}

/* RFC 7323 §5.5 for a SYN-ACK (tcp_rcv_synsent_state_process): its TSecr must be one of our
 * timestamps from the first SYN on; else it is old or forged — RST, stay in SYN_SENT
 * (TcpExtPAWSActive) — and a good one afterwards still completes the handshake. */
static void test_synack_with_bad_tsecr_gets_rst(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	struct tw_seg syn = expect_syn(t);
	uint32_t tsval = tw_rd32(syn.opts + 8);
	tw_advance(t, 10);
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_ts(&o, 777, tsval + 11); /* a TSval we have not sent yet */
	send_synack(t, &syn, o.b, o.len);
	struct tw_seg r = tw_expect_tcp(t);
	assert_int_equal(r.flags, TW_RST);
	assert_int_equal(r.seq, syn.seq + 1);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	assert_int_equal(tw_counter(t, "TcpExtPAWSActive"), 1);
	o.len = 0;
	tw_opt_mss(&o, 1460);
	tw_opt_ts(&o, 778, tsval);
	send_synack(t, &syn, o.b, o.len);
	assert_int_equal(tw_expect_tcp(t).flags, TW_ACK);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
}

/* Retransmissions at the given seconds, then ETIMEDOUT at the last. */
static void check_schedule(struct tw *t, int fd, const int *at, int n, int fail_at)
{
	struct tw_seg syn = expect_syn(t);
	uint32_t tsval0 = tw_rd32(syn.opts + 8);
	int now = 0;
	for (int i = 0; i < n; i++) {
		tw_advance(t, (uint64_t)(at[i] - now) * 1000 - 1);
		tw_expect_none(t);
		tw_advance(t, 1);
		struct tw_seg r = tw_expect_tcp(t);
		assert_int_equal(r.flags, TW_SYN);
		assert_int_equal(r.seq, syn.seq);
		assert_int_equal(r.sport, syn.sport);
		assert_int_equal(tw_rd32(r.opts + 8), tsval0 + (uint32_t)at[i] * 1000);
		now = at[i];
	}
	tw_advance(t, (uint64_t)(fail_at - now) * 1000 - 1);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	tw_advance(t, 1);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	int err = 0;
	socklen_t len = sizeof(err);
	ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len);
	assert_int_equal(err, ETIMEDOUT);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), (uint64_t)n);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), (uint64_t)n);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 1);
}

static void test_syn_schedule_linear_default(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	/* Linux ≥ 6.17, tcp_syn_linear_timeouts = 4: four retries at 1 s, then doubling; the
	 * connection times out when the classic schedule for tcp_syn_retries = 6 would have
	 * (tcp_model_timeout: 127 s), at the first timer after that — 131 s (measured on 6.18) */
	static const int at[] = { 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 };
	check_schedule(t, fd, at, 10, 131);
}

static void test_syn_schedule_classic(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syn_linear_timeouts", "0");
	int fd = nb_socket(t);
	start_connect(t, fd);
	static const int at[] = { 1, 3, 7, 15, 31, 63 };
	check_schedule(t, fd, at, 6, 127);
}

static void test_tcp_syncnt(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	int v = 0;
	errno = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_SYNCNT, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = 128;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_SYNCNT, &v, sizeof(v)), -1);
	v = 2;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_SYNCNT, &v, sizeof(v)), 0);
	start_connect(t, fd);
	/* budget (2 << 2) - 1 = 7 s, spent at 1 s steps then doubling (measured on 6.18) */
	static const int at[] = { 1, 2, 3, 4, 5 };
	check_schedule(t, fd, at, 5, 7);
	/* and sysctl tcp_syn_retries applies when TCP_SYNCNT is not set: 3 s for 1 retry */
	tw_sysctl(t, "net.ipv4.tcp_syn_retries", "1");
	int fd2 = nb_socket(t);
	start_connect(t, fd2);
	expect_syn(t);
	tw_advance(t, 1000);
	tw_expect_tcp(t);
	tw_advance(t, 1000);
	tw_expect_tcp(t);
	tw_advance(t, 999);
	assert_int_equal(ustack_tcp_state(t->st, fd2), TCP_SYN_SENT);
	tw_advance(t, 1);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd2), TCP_CLOSE);
}

static void test_errors_before_any_packet(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	struct sockaddr_in far = peer_addr(TW_FAR_IP, 80);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&far, sizeof(far)), -1);
	assert_int_equal(errno, ENETUNREACH);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&far, sizeof(far) - 1), -1);
	assert_int_equal(errno, EINVAL);
	struct sockaddr_in bad = far;
	bad.sin_family = AF_INET6;
	errno = 0;
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&bad, sizeof(bad)), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, 999, (struct sockaddr *)&far, sizeof(far)), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(ustack_socket(t->st, AF_INET6, SOCK_STREAM, 0), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	errno = 0;
	assert_int_equal(ustack_socket(t->st, AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
	assert_int_equal(errno, EPROTONOSUPPORT);
	tw_expect_none(t);
}

static void test_port_exhaustion_and_sharing(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.ip_local_port_range", "40000 40001");
	int a = nb_socket(t), b = nb_socket(t), c = nb_socket(t);
	assert_int_equal(start_connect(t, a), EINPROGRESS);
	assert_int_equal(start_connect(t, b), EINPROGRESS);
	uint16_t pa = tw_expect_tcp(t).sport, pb = tw_expect_tcp(t).sport;
	assert_true(pa != pb);
	assert_true(pa >= 40000 && pa <= 40001 && pb >= 40000 && pb <= 40001);
	assert_int_equal(start_connect(t, c), EADDRNOTAVAIL);
	tw_expect_none(t);
	/* Linux leaves no trace of the search: the socket names 0.0.0.0:0 again, as before it
	 * (inet_sport is set only on success; the route's source address goes back) */
	struct sockaddr_in got;
	socklen_t glen = sizeof(got);
	assert_int_equal(ustack_getsockname(t->st, c, (struct sockaddr *)&got, &glen), 0);
	assert_int_equal(got.sin_addr.s_addr, 0);
	assert_int_equal(got.sin_port, 0);
	/* the same two ports still serve another destination: only the 4-tuple must be unique */
	struct sockaddr_in other = peer_addr(TW_PEER_IP, 443);
	assert_int_equal(ustack_connect(t->st, c, (struct sockaddr *)&other, sizeof(other)), -1);
	assert_int_equal(errno, EINPROGRESS);
	uint16_t pc = tw_expect_tcp(t).sport;
	assert_true(pc == 40000 || pc == 40001);
}

/* A connect whose SYN the peer's SYN crosses: our SYN again as a SYN-ACK (the same ISN), the
 * socket in SYN_RECV.  Our SYN, returned. */
static struct tw_seg cross_syns(struct tw *t, int fd)
{
	start_connect(t, fd);
	struct tw_seg syn = expect_syn(t);
	uint8_t f[128];
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, 0, TW_SYN, 8192, o.b, o.len));
	struct tw_seg sa = tw_expect_tcp(t);
	assert_int_equal(sa.flags, TW_SYN | TW_ACK);
	assert_int_equal(sa.seq, syn.seq); /* the same ISN */
	assert_int_equal(sa.ack, PEER_ISN + 1);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_RECV);
	return syn;
}

static void test_simultaneous_open(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	struct tw_seg syn = cross_syns(t, fd);
	/* the peer's SYN-ACK acknowledges our SYN */
	uint8_t f[128];
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, syn.seq + 1, TW_SYN | TW_ACK, 8192, o.b, o.len));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
}

/* shutdown(SHUT_WR) while a simultaneous open is in SYN_RECV: the FIN waits for the peer's ACK
 * of our SYN (RFC 9293 §3.10.4: CLOSE in SYN-RECEIVED is queued until ESTABLISHED), then
 * goes right after the SYN, and the close runs its course.  (Before, the FIN was queued on
 * data state not yet set up: sequence 0, from an empty send ring — a division by zero that
 * fuzz_stack found.  A close() there aborts the open with a RST, as before.) */
static void test_shutdown_in_simultaneous_open(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	struct tw_seg syn = cross_syns(t, fd);
	uint8_t f[128];
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_WR), 0);
	tw_expect_none(t); /* no FIN before the open completes */
	tw_advance(t, 100);
	tw_expect_none(t); /* nor from a timer */
	/* the peer's ACK of our SYN completes it: the FIN follows at once */
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN + 1, syn.seq + 1, TW_ACK, 8192, NULL, 0));
	struct tw_seg fin = tw_expect_tcp(t);
	assert_int_equal(fin.flags, TW_FIN | TW_ACK);
	assert_int_equal(fin.seq, syn.seq + 1);
	assert_int_equal(fin.ack, PEER_ISN + 1);
	assert_int_equal(fin.plen, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_FIN_WAIT1);
	/* the peer acknowledges it and closes too: our last ACK, then TIME_WAIT's quiet (the
	 * socket itself TCP_CLOSE, its connection handed to a timewait entry, as Linux's) */
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN + 1, syn.seq + 2, TW_FIN | TW_ACK, 8192, NULL, 0));
	struct tw_seg last = tw_expect_tcp(t);
	assert_int_equal(last.flags, TW_ACK);
	assert_int_equal(last.seq, syn.seq + 2);
	assert_int_equal(last.ack, PEER_ISN + 2);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	tw_advance(t, 70000);
	tw_expect_none(t);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

/* A socket whose connection was reset connects again (the connect() after the reset reports
 * it, the next starts afresh, as __inet_stream_connect has it): the new connection carries no
 * data state of the old one's — a TCP_NODELAY while its SYN is out sends nothing, and its
 * first byte goes at the new ISN + 1.  (Before, the old write_seq had TCP_NODELAY send from
 * the freed send ring: a division by zero fuzz_stack found.) */
static void test_reconnect_after_reset(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	uint8_t f[128];
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, syn.seq + 1, TW_SYN | TW_ACK, 8192, o.b, o.len));
	assert_int_equal(tw_expect_tcp(t).flags, TW_ACK);
	assert_int_equal(ustack_send(t->st, fd, "ab", 2, 0), 2);
	assert_int_equal(tw_expect_tcp(t).plen, 2);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN + 1, 0, TW_RST, 0, NULL, 0));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(start_connect(t, fd), ECONNRESET);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn2 = expect_syn(t);
	/* __inet_stream_connect's sock_error disconnected it: write_seq + max_window + 2 */
	assert_int_equal(syn2.seq, syn.seq + 1 + 2 + 8192 + 2);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	tw_expect_none(t);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn2.sport, PEER_ISN + 5000, syn2.seq + 1, TW_SYN | TW_ACK, 8192, o.b, o.len));
	assert_int_equal(tw_expect_tcp(t).flags, TW_ACK);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	assert_int_equal(ustack_send(t->st, fd, "x", 1, 0), 1);
	struct tw_seg d = tw_expect_tcp(t);
	assert_int_equal(d.seq, syn2.seq + 1);
	assert_int_equal(d.plen, 1);
	assert_int_equal(d.payload[0], 'x');
}

struct blocking_arg {
	struct tw *t;
	int fd, rc, err;
};

static void *blocking_connect(void *p)
{
	struct blocking_arg *a = p;
	struct sockaddr_in addr = peer_addr(TW_PEER_IP, PEER_PORT);
	a->rc = ustack_connect(a->t->st, a->fd, (struct sockaddr *)&addr, sizeof(addr));
	a->err = errno;
	return NULL;
}

static void test_blocking_connect_woken_by_synack(void **state)
{
	struct tw *t = *state;
	struct blocking_arg a = { .t = t, .fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0) };
	pthread_t th;
	pthread_create(&th, NULL, blocking_connect, &a);
	tw_wait_sleepers(t, 1); /* the SYN is out and connect() sleeps */
	assert_int_equal(ustack_tcp_state(t->st, a.fd), TCP_SYN_SENT);
	struct tw_seg syn = expect_syn(t);
	send_synack(t, &syn, NULL, 0);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	tw_expect_tcp(t); /* the ACK */
}

static void test_blocking_connect_refused(void **state)
{
	struct tw *t = *state;
	struct blocking_arg a = { .t = t, .fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0) };
	pthread_t th;
	pthread_create(&th, NULL, blocking_connect, &a);
	tw_wait_sleepers(t, 1);
	struct tw_seg syn = expect_syn(t);
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, 0, syn.seq + 1, TW_RST | TW_ACK, 0, NULL, 0));
	pthread_join(th, NULL);
	assert_int_equal(a.rc, -1);
	assert_int_equal(a.err, ECONNREFUSED);
}

/* SO_SNDTIMEO bounds a blocking connect (inet_wait_for_connect with sock_sndtimeo): it
 * returns EINPROGRESS when the time is up, and the handshake goes on — a later SYN-ACK
 * completes it, and the next connect() says EISCONN. */
static void test_blocking_connect_sndtimeo(void **state)
{
	struct tw *t = *state;
	struct blocking_arg a = { .t = t, .fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0) };
	struct { int64_t sec, usec; } tv = { 0, 400000 };
	assert_int_equal(ustack_setsockopt(t->st, a.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	pthread_t th;
	pthread_create(&th, NULL, blocking_connect, &a);
	tw_wait_sleepers(t, 1);
	struct tw_seg syn = expect_syn(t);
	tw_advance(t, 400);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, -1);
	assert_int_equal(a.err, EINPROGRESS);
	assert_int_equal(ustack_tcp_state(t->st, a.fd), TCP_SYN_SENT);
	send_synack(t, &syn, NULL, 0);
	tw_expect_tcp(t); /* the ACK */
	assert_int_equal(ustack_tcp_state(t->st, a.fd), TCP_ESTABLISHED);
	struct sockaddr_in addr = peer_addr(TW_PEER_IP, PEER_PORT);
	assert_int_equal(ustack_connect(t->st, a.fd, (struct sockaddr *)&addr, sizeof(addr)), 0); /* SS_CONNECTING → connected */
	assert_int_equal(ustack_connect(t->st, a.fd, (struct sockaddr *)&addr, sizeof(addr)), -1);
	assert_int_equal(errno, EISCONN);
}

static void test_close_in_syn_sent_is_silent(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	start_connect(t, fd);
	expect_syn(t);
	/* with SO_LINGER {1, 0} too: no RST, no TcpAttemptFails, one TcpExtTCPAbortOnData (Linux) */
	struct linger lg = { 1, 0 };
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnData"), 1);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 0);
	tw_advance(t, 10000);
	tw_expect_none(t);
	errno = 0;
	assert_int_equal(ustack_close(t->st, fd), -1);
	assert_int_equal(errno, EBADF);
}

/* connect() with an AF_UNSPEC address: "disconnect"; the errno, or 0 */
static int disconnect(struct tw *t, int fd, socklen_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_UNSPEC };
	errno = 0;
	return ustack_connect(t->st, fd, (struct sockaddr *)&sa, len) < 0 ? errno : 0;
}

static int so_error(struct tw *t, int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	return err;
}

static void expect_name(struct tw *t, int fd, uint32_t addr, uint16_t port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(ustack_getsockname(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohl(a.sin_addr.s_addr), addr);
	assert_int_equal(ntohs(a.sin_port), port);
}

/*
 * connect(AF_UNSPEC) on a connection (Linux's tcp_disconnect, RFC 793's ABORT): a RST at
 * snd_nxt acknowledging what arrived, TcpEstabResets, and a socket as before connect() — no
 * peer, no local address (the port still named), its unread data gone — that reports
 * ECONNRESET once, then ENOTCONN to recv() and EPIPE to send(), and connects again with the
 * sequence space continued: the next SYN at the old write_seq + max_window + 2.  Each answer
 * is this machine's Linux 6.18's (python and tcpdump in a network namespace).
 */
static void test_disconnect_connection(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	send_synack(t, &syn, NULL, 0); /* no options: the window 29200 unscaled */
	struct tw_conn c = { .fd = fd, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport, .peer_port = PEER_PORT };
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 29200, "hello", 5);
	tw_expect_seg(t, &c, TW_ACK, 0, 5, 0);
	assert_int_equal(ustack_send(t->st, fd, "abc", 3, 0), 3);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 5, 3); /* unacknowledged when we disconnect */

	assert_int_equal(disconnect(t, fd, sizeof(struct sockaddr_in)), 0);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 3, 5, 0);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(tw_counter(t, "TcpEstabResets"), 1);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 0);
	expect_name(t, fd, 0, syn.sport);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	errno = 0;
	assert_int_equal(ustack_getpeername(t->st, fd, (struct sockaddr *)&a, &len), -1);
	assert_int_equal(errno, ENOTCONN);
	char buf[8];
	errno = 0;
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), 0), -1); /* "hello" went */
	assert_int_equal(errno, ECONNRESET);
	errno = 0;
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, ENOTCONN);
	errno = 0;
	assert_int_equal(ustack_send(t->st, fd, "x", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(so_error(t, fd), 0);
	tw_advance(t, 10000);
	tw_expect_none(t); /* no timer of the old connection's is left */

	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn2 = expect_syn(t);
	assert_int_equal(syn2.seq, syn.seq + 1 + 3 + 29200 + 2);
	expect_name(t, fd, TW_DUT_IP, syn2.sport);
}

/*
 * What the next connection must not inherit (tcp_disconnect's reset list): a connection with
 * SACK, timestamps and data in flight has its loss probe armed, the peer's FIN has been
 * taken, keepalive runs — disconnected, the socket connects again, and its SYN is
 * retransmitted on the SYN's own schedule (a loss probe left marked pending once made that
 * timer do nothing), the new connection reads no end of stream, and its keepalive timer
 * runs afresh.
 */
static void test_disconnect_leaves_nothing_behind(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t), one = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), 0);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 500, tw_rd32(syn.opts + 8));
	tw_opt_wscale(&o, 7);
	send_synack(t, &syn, o.b, o.len);
	struct tw_conn c = { .fd = fd, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport, .peer_port = PEER_PORT };
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_FIN, 229, NULL, 0); /* the peer closes: CLOSE_WAIT */
	tw_advance(t, 200);
	tw_expect_seg(t, &c, TW_ACK, 0, 1, 0);
	assert_int_equal(ustack_send(t->st, fd, "abc", 3, 0), 3);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 1, 3); /* in flight: the loss probe is armed */
	assert_int_equal(disconnect(t, fd, sizeof(struct sockaddr_in)), 0);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 3, 1, 0);

	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn2 = expect_syn(t);
	tw_advance(t, 1000);
	struct tw_seg again = tw_expect_tcp(t);
	assert_int_equal(again.flags, TW_SYN);
	assert_int_equal(again.seq, syn2.seq);
	o = (struct tw_opts){ 0 };
	tw_opt_mss(&o, 1460);
	send_synack(t, &again, o.b, o.len);
	struct tw_conn c2 = { .fd = fd, .iss = syn2.seq, .peer_isn = PEER_ISN, .port = syn2.sport, .peer_port = PEER_PORT };
	tw_expect_seg(t, &c2, TW_ACK, 0, 0, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	char buf[4];
	errno = 0;
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), 0), -1); /* no end of stream */
	assert_int_equal(errno, EAGAIN);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI | POLLRDHUP };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 0);
	/* keepalive from this connection's last exchange: 7200 s of silence, then a probe */
	tw_advance(t, 7200u * 1000u + 100u);
	struct tw_seg probe = tw_expect_tcp(t);
	assert_int_equal(probe.flags, TW_ACK);
	assert_int_equal(probe.seq, syn2.seq); /* snd_una - 1 */
	tw_expect_none(t);
}

/*
 * shutdown() on a socket whose connect() has not been reported yet, and on one never
 * connected — Linux's inet_shutdown, its answers taken on this machine: a connect refused
 * and then shut down is dead (SS_DISCONNECTING: connect() and listen() EINVAL, the error
 * still for SO_ERROR) until connect(AF_UNSPEC) revives it; one that completed is connected
 * (connect() then EISCONN); a socket never connected says ENOTCONN but keeps the shutdown
 * — poll reports it, and after shutdown(SHUT_RD) its connection's first read is end of
 * stream.
 */
static void test_shutdown_before_connect_reported(void **state)
{
	struct tw *t = *state;
	uint8_t f[128];
	int fd = nb_socket(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, 0, syn.seq + 1, TW_RST | TW_ACK, 0, NULL, 0));
	errno = 0;
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_RDWR), -1);
	assert_int_equal(errno, ENOTCONN);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP);
	assert_int_equal(start_connect(t, fd), EINVAL);
	assert_int_equal(start_connect(t, fd), EINVAL);
	errno = 0;
	assert_int_equal(ustack_listen(t->st, fd, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(so_error(t, fd), ECONNREFUSED);
	assert_int_equal(disconnect(t, fd, sizeof(struct sockaddr_in)), 0);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	syn = expect_syn(t);

	/* completed, never reported: shut down, then connect() says EISCONN */
	send_synack(t, &syn, NULL, 0);
	struct tw_conn c = { .fd = fd, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport, .peer_port = PEER_PORT };
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_WR), 0);
	tw_expect_seg(t, &c, TW_ACK | TW_FIN, 0, 0, 0);
	assert_int_equal(start_connect(t, fd), EISCONN);

	/* never connected: ENOTCONN, yet shut for reading into its connection */
	int g = nb_socket(t);
	errno = 0;
	assert_int_equal(ustack_shutdown(t->st, g, SHUT_RD), -1);
	assert_int_equal(errno, ENOTCONN);
	p = (struct pollfd){ .fd = g, .events = POLLIN | POLLOUT | POLLRDHUP };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
	assert_int_equal(start_connect(t, g), EINPROGRESS);
	syn = expect_syn(t);
	send_synack(t, &syn, NULL, 0);
	c = (struct tw_conn){ .fd = g, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport, .peer_port = PEER_PORT };
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	char buf[4];
	assert_int_equal(ustack_recv(t->st, g, buf, sizeof(buf), 0), 0);
}

/*
 * Disconnecting what is not a connection.  A socket never connected: 0, no error — and its
 * write_seq, 0, becomes 2, so its first SYN goes with sequence number 2 (twice: 4), as
 * Linux's does, tcp_v4_connect drawing an ISN only while write_seq is 0.  A connect in
 * progress: 0, nothing sent, ECONNRESET for SO_ERROR, the next SYN past the last one; and
 * shutdown() in SYN_SENT is the same disconnect.  A length short of the family: EINVAL.
 */
static void test_disconnect_unconnected_and_syn_sent(void **state)
{
	struct tw *t = *state;
	int fd = nb_socket(t);
	assert_int_equal(disconnect(t, fd, 1), EINVAL);
	assert_int_equal(disconnect(t, fd, sizeof(sa_family_t)), 0);
	assert_int_equal(so_error(t, fd), 0);
	assert_int_equal(disconnect(t, fd, sizeof(struct sockaddr_in)), 0);
	tw_expect_none(t);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	struct tw_seg syn = expect_syn(t);
	assert_int_equal(syn.seq, 4);

	assert_int_equal(disconnect(t, fd, sizeof(struct sockaddr_in)), 0);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(so_error(t, fd), ECONNRESET);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 0);
	expect_name(t, fd, 0, syn.sport);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	syn = expect_syn(t);
	assert_int_equal(syn.seq, 4 + 1 + 2);

	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_RDWR), 0);
	tw_expect_none(t);
	assert_int_equal(so_error(t, fd), ECONNRESET);
	assert_int_equal(start_connect(t, fd), EINPROGRESS);
	syn = expect_syn(t);
	assert_int_equal(syn.seq, 7 + 1 + 2);
	tw_advance(t, 1000);
	assert_int_equal(tw_expect_tcp(t).seq, 10); /* the new SYN's timer, and only its */
	tw_expect_none(t);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_connect_sends_linux_syn_and_completes),
		T(test_options_follow_sysctls),
		T(test_peer_without_options),
		T(test_rst_refuses),
		T(test_bad_ack_in_syn_sent_gets_rst),
		T(test_synack_with_bad_tsecr_gets_rst),
		T(test_syn_schedule_linear_default),
		T(test_syn_schedule_classic),
		T(test_tcp_syncnt),
		T(test_errors_before_any_packet),
		T(test_port_exhaustion_and_sharing),
		T(test_simultaneous_open),
		T(test_blocking_connect_woken_by_synack),
		T(test_blocking_connect_refused),
		T(test_blocking_connect_sndtimeo),
		T(test_close_in_syn_sent_is_silent),
		T(test_shutdown_in_simultaneous_open),
		T(test_reconnect_after_reset),
		T(test_disconnect_connection),
		T(test_disconnect_unconnected_and_syn_sent),
		T(test_disconnect_leaves_nothing_behind),
		T(test_shutdown_before_connect_reported),
	};
	return cmocka_run_group_tests_name("tcp_connect", tests, NULL, NULL);
}
