/* The server side: listen, request sockets, SYN-ACK, the two queues, accept (seed phases 4, 6). */
#include "testwire.h"
#include "tcp/tcp.h"
#include <ustack/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>

#define LPORT 8080
#define CLIENT_ISN 0x20000000u

static int listener(struct tw *t, int backlog)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LPORT) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, fd, backlog), 0);
	return fd;
}

/* Linux's SYN: mss 1460, sackOK, TS val 1000 ecr 0, nop, wscale 7 */
static struct tw_opts linux_syn(void)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 1000, 0);
	tw_opt_wscale(&o, 7);
	return o;
}

/* a SYN from sport, with options o (none if NULL) */
static void send_syn(struct tw *t, uint16_t sport, const struct tw_opts *o)
{
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, sport, LPORT, CLIENT_ISN, 0, TW_SYN, 64240, o ? o->b : NULL, o ? o->len : 0));
}

/* The connection a SYN from sport makes, answered with ISN isn: the request's, then the child's. */
static struct tw_conn conn_of(uint16_t sport, uint32_t isn)
{
	return (struct tw_conn){ .lfd = -1, .fd = -1, .iss = isn, .peer_isn = CLIENT_ISN, .port = LPORT,
				 .peer_port = sport };
}

static struct tw_seg expect_synack(struct tw *t, uint16_t sport)
{
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.sport, LPORT);
	assert_int_equal(s.dport, sport);
	assert_int_equal(s.ack, CLIENT_ISN + 1);
	return s;
}

/* the handshake's final ACK */
static void send_ack(struct tw *t, uint16_t sport, uint32_t server_isn)
{
	struct tw_conn c = conn_of(sport, server_isn);
	tw_peer_send(t, &c, 0, 0, TW_ACK, 502, NULL, 0);
}

static void test_synack_exact_and_accept(void **state)
{
	struct tw *t = *state;
	struct tw_opts syn = linux_syn();
	int lfd = listener(t, 128);
	assert_int_equal(ustack_tcp_state(t->st, lfd), TCP_LISTEN);
	send_syn(t, 50000, &syn);
	struct tw_seg sa = expect_synack(t, 50000);
	/* Linux: window 65160 (45 × 1448), IP ID 0 with DF, mss 1460, sackOK + TS echoing 1000,
	 * nop + wscale 10 */
	assert_int_equal(sa.win, 65160);
	assert_int_equal(sa.ip_id, 0);
	assert_true(sa.df);
	assert_int_equal(sa.optlen, 20);
	static const uint8_t head[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10 };
	assert_memory_equal(sa.opts, head, 8);
	assert_int_equal(tw_rd32(sa.opts + 12), 1000);
	static const uint8_t tail[] = { 1, 3, 3, 10 };
	assert_memory_equal(sa.opts + 16, tail, 4);
	uint32_t isn = sa.seq;

	int fd = ustack_accept(t->st, lfd, NULL, NULL);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, EAGAIN);
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 0);

	send_ack(t, 50000, isn);
	tw_expect_none(t);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	fd = ustack_accept(t->st, lfd, (struct sockaddr *)&peer, &len);
	assert_true(fd >= 3);
	assert_int_equal(len, sizeof(peer));
	assert_int_equal(ntohl(peer.sin_addr.s_addr), TW_PEER_IP);
	assert_int_equal(ntohs(peer.sin_port), 50000);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	assert_int_equal(tw_counter(t, "TcpPassiveOpens"), 1);
	assert_int_equal(tw_counter(t, "TcpCurrEstab"), 1);
	int mss = 0;
	len = sizeof(mss);
	ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
	assert_int_equal(mss, 1448);
	/* and no timer left behind: the SYN-ACK is not resent */
	tw_advance(t, 70000);
	tw_expect_none(t);
}

static void test_synack_without_timestamps_or_scaling(void **state)
{
	struct tw *t = *state;
	listener(t, 128);
	struct tw_opts mss_sack = { 0 };
	tw_opt_mss(&mss_sack, 1460);
	tw_opt_sackok(&mss_sack);
	send_syn(t, 50001, &mss_sack);
	struct tw_seg sa = expect_synack(t, 50001);
	assert_int_equal(sa.win, 64240); /* 44 × 1460 */
	static const uint8_t want[] = { 2, 4, 0x05, 0xb4, 1, 1, 4, 2 };
	assert_int_equal(sa.optlen, sizeof(want));
	assert_memory_equal(sa.opts, want, sizeof(want));
	/* and a SYN without options gets mss only */
	send_syn(t, 50002, NULL);
	sa = expect_synack(t, 50002);
	assert_int_equal(sa.optlen, 4);
}

static void test_synack_retransmission_schedule(void **state)
{
	struct tw *t = *state;
	struct tw_opts syn = linux_syn();
	listener(t, 128);
	send_syn(t, 50003, &syn);
	struct tw_seg first = expect_synack(t, 50003);
	uint32_t isn = first.seq, tsval0 = tw_rd32(first.opts + 8);
	static const int at[] = { 1, 3, 7, 15, 31 }; /* tcp_synack_retries = 5 */
	int now = 0;
	for (int i = 0; i < 5; i++) {
		tw_advance(t, (uint64_t)(at[i] - now) * 1000 - 1);
		tw_expect_none(t);
		tw_advance(t, 1);
		struct tw_seg r = expect_synack(t, 50003);
		assert_int_equal(r.seq, isn);
		/* each copy: a fresh TSval (ms since the first), the SYN's TSval still echoed */
		assert_int_equal(tw_rd32(r.opts + 8) - tsval0, (uint32_t)at[i] * 1000);
		assert_int_equal(tw_rd32(r.opts + 12), 1000);
		now = at[i];
	}
	tw_advance(t, 63000 - 31000 - 1);
	tw_expect_none(t);
	tw_advance(t, 1); /* at 63 s the request is dropped, silently */
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPSynRetrans"), 5);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), 5);
	/* the final ACK now finds no request: RST */
	send_ack(t, 50003, isn);
	struct tw_conn c = conn_of(50003, isn);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
}

static void test_retransmitted_syn_gets_synack_again(void **state)
{
	struct tw *t = *state;
	struct tw_opts syn = linux_syn();
	listener(t, 128);
	send_syn(t, 50004, &syn);
	uint32_t isn = expect_synack(t, 50004).seq;
	tw_advance(t, 700);
	send_syn(t, 50004, &syn);
	assert_int_equal(expect_synack(t, 50004).seq, isn);
	/* a second copy within 500 ms is not answered (tcp_invalid_ratelimit) */
	tw_advance(t, 100);
	send_syn(t, 50004, &syn);
	tw_expect_none(t);
	send_ack(t, 50004, isn);
	assert_true(ustack_accept(t->st, 3, NULL, NULL) >= 3);
}

static void test_syn_queue_full_drops(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "0");
	tw_sysctl(t, "net.ipv4.tcp_max_syn_backlog", "4096");
	listener(t, 2);
	for (uint16_t p = 51000; p < 51003; p++) {
		send_syn(t, p, NULL);
		expect_synack(t, p);
	}
	send_syn(t, 51003, NULL); /* the SYN queue holds backlog + 1 */
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPReqQFullDrop"), 1);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
}

/*
 * Three clients against a backlog of 1: the accept queue holds two (sk_acceptq_is_full uses
 * >), so the third final ACK overflows.  Handshakes interleave so that no SYN meets a full
 * queue (a SYN that does is dropped too, counted as an overflow).  Returns the third ISN.
 */
static uint32_t fill_and_overflow(struct tw *t, uint16_t base)
{
	uint32_t isn[3];
	send_syn(t, base, NULL);
	isn[0] = expect_synack(t, base).seq;
	send_syn(t, (uint16_t)(base + 1), NULL);
	isn[1] = expect_synack(t, (uint16_t)(base + 1)).seq;
	send_ack(t, base, isn[0]);
	send_syn(t, (uint16_t)(base + 2), NULL);
	isn[2] = expect_synack(t, (uint16_t)(base + 2)).seq;
	send_ack(t, (uint16_t)(base + 1), isn[1]);
	assert_int_equal(tw_counter(t, "TcpExtListenOverflows"), 0);
	send_ack(t, (uint16_t)(base + 2), isn[2]);
	assert_int_equal(tw_counter(t, "TcpExtListenOverflows"), 1);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
	return isn[2];
}

static void test_accept_queue_overflow_is_slowness_not_error(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 1);
	uint32_t isn = fill_and_overflow(t, 52000);
	tw_expect_none(t); /* dropped, not refused */
	/* a new SYN meets the full accept queue and is dropped as well */
	send_syn(t, 52010, NULL);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtListenOverflows"), 2);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	/* the request survived; its SYN-ACK timer fires and the client's ACK completes it */
	tw_advance(t, 1000);
	expect_synack(t, 52002);
	send_ack(t, 52002, isn);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_int_equal(ustack_accept(t->st, lfd, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(tw_counter(t, "TcpPassiveOpens"), 3);
}

static void test_abort_on_overflow_resets(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_abort_on_overflow", "1");
	listener(t, 1);
	uint32_t isn = fill_and_overflow(t, 53000);
	struct tw_conn c = conn_of(53002, isn);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	tw_advance(t, 2000);
	tw_expect_none(t); /* the request is gone */
}

static void test_backlog_capped_by_somaxconn(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.core.somaxconn", "1");
	int lfd = listener(t, 1000); /* effective backlog 1 */
	fill_and_overflow(t, 55000);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_int_equal(ustack_accept(t->st, lfd, NULL, NULL), -1);
}

static void test_segments_without_a_socket_get_rst(void **state)
{
	struct tw *t = *state;
	uint8_t f[128];
	/* SYN to a closed port: RST|ACK acknowledging the SYN */
	tw_send(t, f, tw_tcp(f, 40000, 9, 1234, 0, TW_SYN, 1000, NULL, 0));
	struct tw_seg r = tw_expect_tcp(t);
	assert_int_equal(r.flags, TW_RST | TW_ACK);
	assert_int_equal(r.seq, 0);
	assert_int_equal(r.ack, 1235);
	assert_int_equal(r.win, 0);
	assert_int_equal(r.optlen, 0);
	/* ACK to a closed port: RST with seq = its ack */
	tw_send(t, f, tw_tcp(f, 40000, 9, 1234, 5678, TW_ACK, 1000, NULL, 0));
	r = tw_expect_tcp(t);
	assert_int_equal(r.flags, TW_RST);
	assert_int_equal(r.seq, 5678);
	/* never a RST for a RST */
	tw_send(t, f, tw_tcp(f, 40000, 9, 1234, 5678, TW_RST | TW_ACK, 0, NULL, 0));
	tw_expect_none(t);
	/* an ACK at a listener with no request: RST */
	listener(t, 8);
	tw_send(t, f, tw_tcp(f, 40001, LPORT, 1, 99, TW_ACK, 1000, NULL, 0));
	r = tw_expect_tcp(t);
	assert_int_equal(r.flags, TW_RST);
	assert_int_equal(r.seq, 99);
	assert_int_equal(tw_counter(t, "TcpOutRsts"), 3);
	/* a bad checksum is counted, not answered */
	tw_tcp(f, 40000, 9, 1234, 0, TW_SYN, 1000, NULL, 0);
	f[34 + 16] ^= 0xff;
	tw_send(t, f, 54);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpInCsumErrors"), 1);
	assert_int_equal(tw_counter(t, "TcpInErrs"), 1);
}

static void test_bad_ack_and_rst_for_request(void **state)
{
	struct tw *t = *state;
	listener(t, 8);
	send_syn(t, 54000, NULL);
	struct tw_conn c = conn_of(54000, expect_synack(t, 54000).seq);
	/* an ACK of something we never sent */
	tw_peer_send(t, &c, 0, 6, TW_ACK, 100, NULL, 0);
	tw_expect_seg(t, &c, TW_RST, 6, 0, 0);
	/* a segment outside the window offered by the SYN-ACK gets an ACK, nothing more */
	tw_peer_send(t, &c, 200000, 0, TW_ACK, 100, NULL, 0);
	struct tw_seg r = tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	assert_int_equal(r.win, 64240);
	assert_int_equal(r.ip_id, 0);
	/* the request is still there; a RST in window removes it */
	tw_peer_send(t, &c, 0, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 1);
	tw_advance(t, 2000);
	tw_expect_none(t); /* no SYN-ACK retransmission for a dropped request */
}

static void test_bind_and_listen_errors(void **state)
{
	struct tw *t = *state;
	int a = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	int b = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7000) };
	assert_int_equal(ustack_bind(t->st, a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	errno = 0;
	assert_int_equal(ustack_bind(t->st, b, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EADDRINUSE);
	errno = 0;
	assert_int_equal(ustack_bind(t->st, a, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINVAL); /* already bound */
	/* SO_REUSEADDR on both, neither listening: allowed */
	int one = 1, c = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0), d = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	ustack_setsockopt(t->st, c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ustack_setsockopt(t->st, d, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(7001);
	assert_int_equal(ustack_bind(t->st, c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_bind(t->st, d, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* ... but once one listens, the other cannot */
	assert_int_equal(ustack_listen(t->st, c, 5), 0);
	int e = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	ustack_setsockopt(t->st, e, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	errno = 0;
	assert_int_equal(ustack_bind(t->st, e, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EADDRINUSE);
	/* an address that is not ours */
	struct sockaddr_in other = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000209) };
	errno = 0;
	assert_int_equal(ustack_bind(t->st, e, (struct sockaddr *)&other, sizeof(other)), -1);
	assert_int_equal(errno, EADDRNOTAVAIL);
	other.sin_family = AF_INET6;
	errno = 0;
	assert_int_equal(ustack_bind(t->st, e, (struct sockaddr *)&other, sizeof(other)), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	/* accept on a socket that does not listen; bad descriptors */
	errno = 0;
	assert_int_equal(ustack_accept(t->st, e, NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(ustack_accept(t->st, 12345, NULL, NULL), -1);
	assert_int_equal(errno, EBADF);
	errno = 0;
	assert_int_equal(ustack_listen(t->st, -1, 5), -1);
	assert_int_equal(errno, EBADF);
	/* listen without bind picks a port */
	int g = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	assert_int_equal(ustack_listen(t->st, g, 5), 0);
	struct sockaddr_in got;
	socklen_t len = sizeof(got);
	assert_int_equal(ustack_getsockname(t->st, g, (struct sockaddr *)&got, &len), 0);
	assert_true(ntohs(got.sin_port) >= 32768 && ntohs(got.sin_port) <= 60999);
	errno = 0;
	assert_int_equal(ustack_getpeername(t->st, g, (struct sockaddr *)&got, &len), -1);
	assert_int_equal(errno, ENOTCONN);
	/* after close the port is free again */
	assert_int_equal(ustack_close(t->st, a), 0);
	sa.sin_port = htons(7000);
	assert_int_equal(ustack_bind(t->st, b, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* a non-blocking connect() to the peer's port from an ephemeral port; its SYN consumed */
static int connect_to(struct tw *t, uint16_t port, int reuseaddr)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (reuseaddr)
		ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN);
	return fd;
}

static int bind_to(struct tw *t, uint32_t addr, uint16_t port, int reuseaddr)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	if (reuseaddr)
		ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	errno = 0;
	int rc = ustack_bind(t->st, fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	ustack_close(t->st, fd);
	errno = err;
	return rc;
}

static int connect_fails(struct tw *t, uint16_t port)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	int rc = ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a));
	int err = errno;
	ustack_close(t->st, fd);
	return rc < 0 ? err : 0;
}

/*
 * A port connect() chose is held against bind() as Linux holds it (inet_csk_bind_conflict on a
 * bucket __inet_hash_connect made, tb->fastreuse -1): a connected socket never listens, so a
 * bind() with SO_REUSEADDR passes only when every socket on the port set it too — read as it
 * is now, not when the socket connected — and a bind() to the wildcard or to the connections'
 * own address is refused otherwise.  ustack counts connect()ed sockets of one address and the
 * same flags in the bucket instead of listing them (inet_bind_hash_connect): this checks the
 * count, the list beside it, and a socket moving from one to the other.  And Linux's awkward
 * case: a bind() that shares the port narrows the bucket's flags (inet_csk_update_fastreuse),
 * and while it holds the port connect() passes it by as held by bind(); once it is gone the
 * flags are -1 again (Linux 6.17, "tcp: Update bind bucket state on port release") and
 * connect() takes the port.  The sequence and its results are Linux 6.18's, run in a network
 * namespace with python.
 */
static void test_connected_port_held_against_bind(void **state)
{
	struct tw *t = *state;
	int one = 1, zero = 0;
	tw_sysctl(t, "net.ipv4.ip_local_port_range", "6000 6000"); /* every connect() on 6000 */
	int a = connect_to(t, 80, 0);
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	assert_int_equal(ustack_getsockname(t->st, a, (struct sockaddr *)&me, &len), 0);
	assert_int_equal(ntohs(me.sin_port), 6000);
	assert_int_equal(ntohl(me.sin_addr.s_addr), TW_DUT_IP);
	assert_int_equal(bind_to(t, 0, 6000, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(bind_to(t, TW_DUT_IP, 6000, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(bind_to(t, 0, 6000, 1), -1); /* the connected one lacks SO_REUSEADDR */
	assert_int_equal(errno, EADDRINUSE);
	/* another address (not ours: IP_FREEBIND) shares the port with it */
	int o = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	assert_int_equal(ustack_setsockopt(t->st, o, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)), 0);
	struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = htons(6000),
				     .sin_addr.s_addr = htonl(0xc6336407) }; /* 198.51.100.7 */
	assert_int_equal(ustack_bind(t->st, o, (struct sockaddr *)&other, sizeof(other)), 0);
	assert_int_equal(ustack_close(t->st, o), 0);

	/* two more on the port, to other destinations: one with SO_REUSEADDR, one without */
	int b = connect_to(t, 81, 1);
	int c = connect_to(t, 82, 0);
	len = sizeof(me);
	assert_int_equal(ustack_getsockname(t->st, c, (struct sockaddr *)&me, &len), 0);
	assert_int_equal(ntohs(me.sin_port), 6000);
	assert_int_equal(ustack_close(t->st, a), 0);
	assert_int_equal(bind_to(t, 0, 6000, 1), -1); /* c lacks it */
	assert_int_equal(errno, EADDRINUSE);
	/* set after connect(): what the conflict test reads */
	assert_int_equal(ustack_setsockopt(t->st, c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	int k = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	ustack_setsockopt(t->st, k, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(6000) };
	assert_int_equal(ustack_bind(t->st, k, (struct sockaddr *)&any, sizeof(any)), 0);
	assert_int_equal(bind_to(t, 0, 6000, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	/* while the bound socket holds the port, connect() passes it by; then takes it again */
	assert_int_equal(connect_fails(t, 83), EADDRNOTAVAIL);
	assert_int_equal(ustack_close(t->st, k), 0);
	int d = connect_to(t, 83, 0);
	len = sizeof(me);
	assert_int_equal(ustack_getsockname(t->st, d, (struct sockaddr *)&me, &len), 0);
	assert_int_equal(ntohs(me.sin_port), 6000);
	/* cleared again, and the sockets gone one by one */
	assert_int_equal(ustack_setsockopt(t->st, b, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero)), 0);
	assert_int_equal(bind_to(t, 0, 6000, 1), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_close(t->st, b), 0);
	assert_int_equal(bind_to(t, 0, 6000, 1), -1); /* d lacks it */
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_close(t->st, d), 0);
	assert_int_equal(bind_to(t, 0, 6000, 1), 0);
	assert_int_equal(bind_to(t, 0, 6000, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_close(t->st, c), 0);
	assert_int_equal(bind_to(t, 0, 6000, 0), 0);
	assert_int_equal(bind_to(t, TW_DUT_IP, 6000, 0), 0);
	/* a socket bound to the connections' own address holds the port against connect() too */
	struct sockaddr_in own = { .sin_family = AF_INET, .sin_port = htons(6000), .sin_addr.s_addr = htonl(TW_DUT_IP) };
	k = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	assert_int_equal(ustack_bind(t->st, k, (struct sockaddr *)&own, sizeof(own)), 0);
	assert_int_equal(connect_fails(t, 84), EADDRNOTAVAIL);
	assert_int_equal(ustack_close(t->st, k), 0);
	tw_expect_none(t); /* closing a connection in SYN_SENT sends nothing */
}

static void test_closing_listener_resets_unaccepted(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	send_syn(t, 56000, NULL);
	uint32_t isn = expect_synack(t, 56000).seq;
	send_ack(t, 56000, isn);
	send_syn(t, 56001, NULL); /* and two still half-open */
	uint32_t isn1 = expect_synack(t, 56001).seq;
	send_syn(t, 56003, NULL);
	expect_synack(t, 56003);
	assert_int_equal(ustack_close(t->st, lfd), 0);
	struct tw_conn c = conn_of(56000, isn);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 0, 0, 0);
	/* a request notices on its next segment: dropped, and the ACK finds no socket → RST */
	send_ack(t, 56001, isn1);
	c = conn_of(56001, isn1);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	tw_advance(t, 5000);
	tw_expect_none(t); /* the other vanishes at its timer, without a SYN-ACK */
	/* and with the last request gone the closed listener's memory went too */
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nreqsk, 0);
	assert_int_equal(t->st->tcp->nsocks, 0);
	stack_unlock(t->st);
	/* and the port answers RST now */
	send_syn(t, 56002, NULL);
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST | TW_ACK);
}

/*
 * shutdown(SHUT_RD) on a listener — the usual way to wake threads blocked in accept() — stops
 * it listening (inet_shutdown → tcp_disconnect → inet_csk_listen_stop); close() after it must
 * still leave its memory to the request sockets that point at it.  This was a remotely
 * triggered use-after-free: the SYN-ACK timer, or the peer's final ACK, read the freed
 * listener.  Both paths are driven here, under ASan in CI.
 */
static void test_shutdown_then_close_listener_with_requests(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	send_syn(t, 57000, NULL);
	uint32_t isn0 = expect_synack(t, 57000).seq;
	send_syn(t, 57001, NULL);
	expect_synack(t, 57001);
	/* SHUT_WR on a listener does nothing and returns 0 (inet_shutdown) */
	assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_WR), 0);
	assert_int_equal(ustack_tcp_state(t->st, lfd), TCP_LISTEN);
	assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RD), 0);
	assert_int_equal(ustack_tcp_state(t->st, lfd), TCP_CLOSE);
	errno = 0;
	assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RD), -1); /* now not connected */
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(ustack_close(t->st, lfd), 0);
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nreqsk, 2);
	assert_int_equal(t->st->tcp->nsocks, 1); /* the listener's memory waits for them */
	stack_unlock(t->st);
	/* the final ACK of one: its listener is not listening — dropped, then no socket: RST */
	send_ack(t, 57000, isn0);
	struct tw_conn c = conn_of(57000, isn0);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	/* the other's SYN-ACK timer fires: dropped without a retransmission */
	tw_advance(t, 1000);
	tw_expect_none(t);
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nreqsk, 0);
	assert_int_equal(t->st->tcp->nsocks, 0);
	stack_unlock(t->st);
	tw_advance(t, 60000);
	tw_expect_none(t);
}

/* A listener shut down keeps the port the application bound (SOCK_BINDPORT_LOCK): listen()
 * again listens there, and meanwhile nobody else may bind it.  An autobound port is let go,
 * and listen() picks a new one — both as this machine's Linux does. */
static void test_relisten_after_shutdown_keeps_bound_port(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RDWR), 0);
	int other = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LPORT) };
	errno = 0;
	assert_int_equal(ustack_bind(t->st, other, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	struct sockaddr_in got;
	socklen_t len = sizeof(got);
	assert_int_equal(ustack_getsockname(t->st, lfd, (struct sockaddr *)&got, &len), 0);
	assert_int_equal(ntohs(got.sin_port), LPORT);
	send_syn(t, 57010, NULL);
	expect_synack(t, 57010);
	/* closed with that request pending: both sockets go once it does */
	assert_int_equal(ustack_close(t->st, lfd), 0);
	assert_int_equal(ustack_close(t->st, other), 0);
	tw_advance(t, 2000);
	tw_expect_none(t);
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nsocks, 0);
	stack_unlock(t->st);
}

/* A connection from sport completed and accepted on lfd: its descriptor, the server's ISN in *isn. */
static int accept_from(struct tw *t, int lfd, uint16_t sport, uint32_t *isn)
{
	send_syn(t, sport, NULL);
	*isn = expect_synack(t, sport).seq;
	send_ack(t, sport, *isn);
	int fd = ustack_accept(t->st, lfd, NULL, NULL);
	assert_true(fd >= 0);
	return fd;
}

/* a socket bound to addr:port with the flags given, kept */
static int bound(struct tw *t, uint32_t addr, uint16_t port, int reuseaddr, int reuseport)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
	ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof(reuseport));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int listen_errno(struct tw *t, int fd)
{
	errno = 0;
	return ustack_listen(t->st, fd, 8) < 0 ? errno : 0;
}

/* A listener with these flags on LPORT, shut down (SHUT_RD) with one connection accepted and
 * closed actively, so that its TIME_WAIT entry holds the port; the checks between the steps
 * are the caller's: `expect` is listen()'s answer while the connection or its entry holds it. */
static void relisten_beside_own_connection(struct tw *t, int reuseaddr, int expect, uint16_t sport)
{
	int lfd = bound(t, 0, LPORT, reuseaddr, 0);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	uint32_t isn;
	int fd = accept_from(t, lfd, sport, &isn);
	assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RD), 0);
	assert_int_equal(listen_errno(t, lfd), expect); /* the connection holds the port */
	if (!expect)
		assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RD), 0);
	struct tw_conn c = conn_of(sport, isn);
	assert_int_equal(ustack_close(t->st, fd), 0);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 0, 0, 0);
	tw_peer_send(t, &c, 0, 1, TW_FIN | TW_ACK, 502, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK, 1, 1, 0);
	assert_int_equal(listen_errno(t, lfd), expect); /* ... and its TIME_WAIT entry */
	if (!expect)
		assert_int_equal(ustack_shutdown(t->st, lfd, SHUT_RD), 0);
	tw_advance(t, 61000);
	assert_int_equal(listen_errno(t, lfd), 0); /* the entry gone, nothing holds it */
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

/*
 * listen() asks for its port once more, as Linux's inet_csk_listen_start calls get_port with
 * the socket already in LISTEN: no SO_REUSEADDR fast path for a listener, the whole conflict
 * walk unless the bucket's SO_REUSEPORT flags cover it.  So it refuses what changed since
 * bind(): a connection the listener itself accepted, or that connection's TIME_WAIT entry,
 * when the two lack SO_REUSEADDR (the server restart SO_REUSEADDR is for); SO_REUSEADDR or
 * SO_REUSEPORT cleared after bind() on either side; and it keeps Linux's stale fast path — a
 * holder that clears SO_REUSEPORT after bind() leaves the bucket's flags, so the other still
 * listens.  Each answer is this machine's Linux 6.18's (python in a network namespace).
 */
static void test_listen_rechecks_port(void **state)
{
	struct tw *t = *state;
	int zero = 0;
	relisten_beside_own_connection(t, 0, EADDRINUSE, 57100);
	relisten_beside_own_connection(t, 1, 0, 57101);

	/* SO_REUSEADDR on both at bind(), then cleared by the other holder, or by the listener */
	int a = bound(t, 0, 7001, 1, 0), b = bound(t, 0, 7001, 1, 0);
	ustack_setsockopt(t->st, b, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	assert_int_equal(listen_errno(t, a), EADDRINUSE);
	assert_int_equal(ustack_tcp_state(t->st, a), TCP_CLOSE);
	ustack_close(t->st, a);
	ustack_close(t->st, b);
	a = bound(t, 0, 7002, 1, 0), b = bound(t, 0, 7002, 1, 0);
	ustack_setsockopt(t->st, a, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	assert_int_equal(listen_errno(t, a), EADDRINUSE);
	assert_int_equal(listen_errno(t, b), EADDRINUSE); /* nor b: the walk reads a as it is now */
	ustack_close(t->st, a);
	ustack_close(t->st, b);
	/* the wildcard and a specific address, the specific one's SO_REUSEADDR cleared */
	a = bound(t, 0, 7003, 1, 0), b = bound(t, TW_DUT_IP, 7003, 1, 0);
	ustack_setsockopt(t->st, b, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	assert_int_equal(listen_errno(t, a), EADDRINUSE);
	ustack_close(t->st, a);
	ustack_close(t->st, b);

	/* SO_REUSEPORT on both, then cleared by the other: the bucket still says "all set it" */
	a = bound(t, 0, 7004, 0, 1), b = bound(t, 0, 7004, 0, 1);
	ustack_setsockopt(t->st, b, SOL_SOCKET, SO_REUSEPORT, &zero, sizeof(zero));
	assert_int_equal(listen_errno(t, a), 0);
	assert_int_equal(listen_errno(t, b), EADDRINUSE);
	ustack_close(t->st, a);
	ustack_close(t->st, b);
	/* ... cleared by the listener itself: no fast path, and the walk finds the other */
	a = bound(t, 0, 7005, 0, 1), b = bound(t, 0, 7005, 0, 1);
	ustack_setsockopt(t->st, a, SOL_SOCKET, SO_REUSEPORT, &zero, sizeof(zero));
	assert_int_equal(listen_errno(t, a), EADDRINUSE);
	ustack_close(t->st, a);
	ustack_close(t->st, b);
}

static int disconnect(struct tw *t, int fd)
{
	struct sockaddr_in sa = { .sin_family = AF_UNSPEC };
	errno = 0;
	return ustack_connect(t->st, fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
}

/*
 * connect(AF_UNSPEC) on an accepted connection and on its listener, as Linux's tcp_disconnect
 * (the case of Linux's selftest tcp_fastopen_server_reset-after-disconnect, without Fast
 * Open).  The child resets its peer and may then connect out like any socket — from an
 * ephemeral port: a child does not inherit its listener's SOCK_BINDPORT_LOCK, so its port
 * went with the connection (while getsockname() still names it), and its next SYN continues
 * its sequence space.  The listener stops listening but keeps the port bind() gave it, and
 * listens again.  And getpeername() names the peer for as long as the connection has one:
 * in CLOSE_WAIT and LAST_ACK too (inet_getname), not once it is closed.
 */
static void test_disconnect_child_and_listener(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	uint32_t isn;
	int fd = accept_from(t, lfd, 57300, &isn);
	struct tw_conn c = conn_of(57300, isn);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 502, "0123456789", 10);
	tw_expect_seg(t, &c, TW_ACK, 0, 10, 0);
	assert_int_equal(disconnect(t, fd), 0);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 0, 10, 0);
	tw_expect_none(t);
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(ustack_getsockname(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(a.sin_addr.s_addr, 0); /* the listener's wildcard: nothing kept */
	assert_int_equal(ntohs(a.sin_port), LPORT);
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_fcntl(t->st, fd, F_SETFL, O_NONBLOCK), 0);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&peer, sizeof(peer)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN);
	assert_true(syn.sport != LPORT);
	assert_int_equal(syn.seq, isn + 1 + 502 + 2); /* write_seq + max_window + 2 */
	assert_int_equal(ustack_close(t->st, fd), 0);

	/* the listener: stops (a SYN now meets no one), keeps its port, listens again */
	assert_int_equal(disconnect(t, lfd), 0);
	assert_int_equal(ustack_tcp_state(t->st, lfd), TCP_CLOSE);
	send_syn(t, 57301, NULL);
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST | TW_ACK);
	len = sizeof(a);
	assert_int_equal(ustack_getsockname(t->st, lfd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohs(a.sin_port), LPORT);
	errno = 0;
	assert_int_equal(bind_to(t, 0, LPORT, 0), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	fd = accept_from(t, lfd, 57302, &isn);

	/* getpeername through CLOSE_WAIT and LAST_ACK, then ENOTCONN */
	c = conn_of(57302, isn);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_FIN, 502, NULL, 0);
	tw_advance(t, 200); /* the FIN's ACK is delayed (pingpong mode, as Linux's tcp_fin) */
	tw_expect_seg(t, &c, TW_ACK, 0, 1, 0);
	len = sizeof(a);
	assert_int_equal(ustack_getpeername(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohs(a.sin_port), 57302);
	assert_int_equal(ustack_shutdown(t->st, fd, SHUT_WR), 0);
	tw_expect_seg(t, &c, TW_ACK | TW_FIN, 0, 1, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_LAST_ACK);
	len = sizeof(a);
	assert_int_equal(ustack_getpeername(t->st, fd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(ntohl(a.sin_addr.s_addr), TW_PEER_IP);
	tw_peer_send(t, &c, 1, 1, TW_ACK, 502, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	errno = 0;
	assert_int_equal(ustack_getpeername(t->st, fd, (struct sockaddr *)&a, &len), -1);
	assert_int_equal(errno, ENOTCONN);
}

/* SO_LINGER {1, 0} in LAST_ACK with nothing left unsent: tcp_disconnect resets in CLOSING and
 * LAST_ACK only while snd_nxt is short of write_seq — our FIN, and all before it, went — so
 * the close is silent (TcpExtTCPAbortOnData counted); with data still queued it resets. */
static void test_linger_zero_in_last_ack(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	struct linger lg = { 1, 0 };
	for (int queued = 0; queued < 2; queued++) {
		uint16_t sport = (uint16_t)(57310 + queued);
		uint32_t isn;
		int fd = accept_from(t, lfd, sport, &isn);
		struct tw_conn c = conn_of(sport, isn);
		tw_peer_send(t, &c, 0, 0, TW_ACK | TW_FIN, queued ? 0 : 502, NULL, 0); /* window 0: nothing may go */
		tw_advance(t, 200);
		tw_expect_seg(t, &c, TW_ACK, 0, 1, 0);
		if (queued)
			assert_int_equal(ustack_send(t->st, fd, "abc", 3, 0), 3);
		assert_int_equal(ustack_shutdown(t->st, fd, SHUT_WR), 0);
		if (!queued)
			tw_expect_seg(t, &c, TW_ACK | TW_FIN, 0, 1, 0);
		assert_int_equal(ustack_tcp_state(t->st, fd), TCP_LAST_ACK);
		assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
		assert_int_equal(ustack_close(t->st, fd), 0);
		if (queued)
			tw_expect_seg(t, &c, TW_RST | TW_ACK, 0, 1, 0);
		tw_expect_none(t);
		assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnData"), 1 + queued);
	}
}

/* A child reset while it waits in the accept queue stays there (accept() returns it, and its
 * error), and a stack destroyed before anyone accepts it frees it: no leak (LSan in CI). */
static void test_reset_child_in_accept_queue_freed_at_destroy(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t, 8);
	send_syn(t, 57020, NULL);
	uint32_t isn = expect_synack(t, 57020).seq;
	send_ack(t, 57020, isn);
	struct tw_conn c = conn_of(57020, isn);
	tw_peer_send(t, &c, 0, 0, TW_RST | TW_ACK, 0, NULL, 0);
	tw_expect_none(t);
	send_syn(t, 57021, NULL); /* and one waiting, not reset */
	isn = expect_synack(t, 57021).seq;
	send_ack(t, 57021, isn);
	int qlen = -1, aq = -1, max = -1;
	assert_int_equal(ustack_listen_queues(t->st, lfd, &qlen, &aq, &max), 0);
	assert_int_equal(aq, 2);
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nsocks, 3);
	stack_unlock(t->st);
	/* tw_teardown destroys the stack with both unaccepted */
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_synack_exact_and_accept),
		T(test_synack_without_timestamps_or_scaling),
		T(test_synack_retransmission_schedule),
		T(test_retransmitted_syn_gets_synack_again),
		T(test_syn_queue_full_drops),
		T(test_accept_queue_overflow_is_slowness_not_error),
		T(test_abort_on_overflow_resets),
		T(test_segments_without_a_socket_get_rst),
		T(test_bad_ack_and_rst_for_request),
		T(test_bind_and_listen_errors),
		T(test_connected_port_held_against_bind),
		T(test_backlog_capped_by_somaxconn),
		T(test_closing_listener_resets_unaccepted),
		T(test_shutdown_then_close_listener_with_requests),
		T(test_relisten_after_shutdown_keeps_bound_port),
		T(test_listen_rechecks_port),
		T(test_disconnect_child_and_listener),
		T(test_linger_zero_in_last_ack),
		T(test_reset_child_in_accept_queue_freed_at_destroy),
	};
	return cmocka_run_group_tests_name("tcp_listen", tests, NULL, NULL);
}
