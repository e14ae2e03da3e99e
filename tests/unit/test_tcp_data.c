/*
 * The data path at the wire: each mechanism of an established connection, with the exact
 * segments the DUT sends (flags, seq/ack, window, options, payload length) and what the API
 * returns.  The peer opens the connection (port 40000, ISN 1000) to a DUT listener on port 80;
 * most tests negotiate only MSS 1460, so no option hides in the arithmetic.
 */
#include "testwire.h"
#include <ustack/diag.h>
#include <ustack/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>

#define PORT 80
#define PEER 40000

static struct tw_conn conn;
static uint8_t f[TW_FRAME_MAX];

/* The connection most tests use: the peer's SYN offers MSS 1460 alone. */
static void accept_conn(struct tw *t)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_accept_conn(t, &conn, PORT, o.b, o.len);
}

/* MSS 1460, SACK permitted, timestamps (TSval 5000, TSecr 0), as Linux lays them out; the
 * SYN-ACK answered rtt_ms later (the handshake's RTT sets the minimum RTT). */
static void accept_sack_ts_conn(struct tw *t, unsigned rtt_ms)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 5000, 0);
	tw_accept_conn_rtt(t, &conn, PORT, o.b, o.len, rtt_ms);
}

static void test_segmentation_nagle_minshall(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[5100];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	/* 5000 bytes: three full segments and the 620-byte tail at once (the initial window is
	 * 10 segments), PSH on the last; the first byte of each segment is where it belongs */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 5000, 0), 5000);
	for (int i = 0; i < 3; i++) {
		struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, (uint32_t)i * 1460, 0, 1460);
		assert_int_equal(s.payload[0], (uint8_t)(i * 1460));
		assert_int_equal(s.win, 64240); /* 44 × 1460: no scaling, a whole number of MSS */
	}
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 4380, 0, 620);
	tw_expect_none(t);
	/* 100 more bytes: a small segment is in flight, so Nagle (Minshall) holds them */
	assert_int_equal(ustack_send(t->st, conn.fd, buf + 5000, 100, 0), 100);
	tw_expect_none(t);
	/* an ACK short of the small segment changes nothing; the one covering it releases them */
	tw_peer_send(t, &conn, 0, 2920, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 0, 5000, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 5000, 0, 100);
	/* TCP_NODELAY: small segments go at once even with one in flight */
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 10, 0), 10);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 5100, 0, 10);
}

static void test_peer_window_limits_and_zero_window_probe(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[4000];
	/* a smaller window from the handshake ACK's sequence number is no update (Linux's
	 * tcp_may_update_window: from the same segment number only a larger or zero window) */
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 2000, NULL, 0);
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_PSH, 2000, "x", 1);
	tw_expect_seg(t, &conn, TW_ACK, 0, 1, 0);
	/* from a newer one it is: 2000 bytes go as one TSO packet, 1460 + 540 with PSH — the
	 * window's partial segment too, as tcp_mss_split_point sends it when Nagle has nothing
	 * in flight to wait for (measured on 6.18.44) */
	tw_peer_send(t, &conn, 1, 0, TW_ACK, 2000, NULL, 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), 4000);
	tw_expect_seg(t, &conn, TW_ACK, 0, 1, 1460);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1460, 1, 540);
	tw_expect_none(t);
	/* everything acknowledged, window 0: nothing may be sent; the probe timer asks */
	tw_peer_send(t, &conn, 1, 2000, TW_ACK, 0, NULL, 0);
	tw_expect_none(t);
	/* the RTO: the handshake's RTT (~0) + the 200 ms floor = 200.001 ms, whole ms up, as
	 * Linux's usecs_to_jiffies (ss shows rto:201 on loopback) */
	tw_advance(t, 200);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 1999, 1, 0); /* snd_una − 1, no data */
	tw_advance(t, 401);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 1999, 1, 0); /* backed off: 402 ms */
	/* the window opens: the rest follows at once, PSH at its end */
	tw_peer_send(t, &conn, 1, 2000, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 2000, 1, 1460);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 3460, 1, 540);
}

struct writer {
	struct tw *t;
	int fd;
	size_t len;
	ssize_t rc;
};

static void *write_thread(void *p)
{
	struct writer *w = p;
	static uint8_t big[20000];
	w->rc = ustack_send(w->t->st, w->fd, big, w->len, 0);
	return NULL;
}

static uint32_t wmem_queued(struct tw *t, int fd)
{
	uint32_t mi[9];
	socklen_t len = sizeof(mi);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_MEMINFO, mi, &len), 0);
	return mi[5];
}

/*
 * The send buffer is charged as Linux charges it — each skb's truesize, its bytes plus 832 of
 * overhead, the cuts made at transmission included (SO_MEMINFO's wmem_queued) — and a writer
 * blocked on it is woken only when a third of the buffer is free (sk_stream_write_space), not
 * by every ACK that frees something (upstream blocking-write.pkt, which passes on 6.18.44).
 */
static void test_blocked_writer_wakes_at_a_third_free(void **state)
{
	struct tw *t = *state;
	/* the peer's windows are 4000 from its SYN on: skbs of two segments (half the largest
	 * window, tcp_xmit_size_goal), cwnd 10 */
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1000);
	memset(&conn, 0, sizeof(conn));
	conn.port = PORT;
	conn.peer_port = 40000;
	conn.peer_isn = 1000;
	conn.lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	assert_int_equal(ustack_bind(t->st, conn.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, conn.lfd, 8), 0);
	tw_send(t, f, tw_tcp(f, conn.peer_port, PORT, conn.peer_isn, 0, TW_SYN, 4000, o.b, o.len));
	conn.iss = tw_expect_tcp(t).seq;
	tw_send(t, f, tw_tcp(f, conn.peer_port, PORT, conn.peer_isn + 1, conn.iss + 1, TW_ACK, 4000, NULL, 0));
	conn.fd = ustack_accept4(t->st, conn.lfd, NULL, NULL, 0);
	assert_true(conn.fd >= 0);
	int v = 4000; /* sk_sndbuf 8000 */
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	struct writer w = { t, conn.fd, 8000, -2 };
	pthread_t th;
	pthread_create(&th, NULL, write_thread, &w);
	tw_wait_sleepers(t, 1);
	/* three skbs of 2000 were taken (the third only while the charge was under 8000) */
	assert_int_equal(wmem_queued(t, conn.fd), 6000 + 3 * 832);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1000, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK, 2000, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 3000, 0, 1000);
	/* the first skb acknowledged: the third goes, and 4000 + 2 × 832 = 5664 stays charged,
	 * more than two thirds of 8000 — the writer sleeps on */
	tw_peer_send(t, &conn, 0, 2000, TW_ACK, 4000, NULL, 0);
	assert_int_equal(ustack_sleeping_callers(t->st), 1);
	assert_int_equal(wmem_queued(t, conn.fd), 4000 + 2 * 832);
	tw_expect_seg(t, &conn, TW_ACK, 4000, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 5000, 0, 1000);
	/* the second one: 2000 + 832 is at most two thirds: writable, the writer takes its
	 * last 2000 bytes and returns */
	tw_peer_send(t, &conn, 0, 4000, TW_ACK, 4000, NULL, 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 8000);
	tw_expect_seg(t, &conn, TW_ACK, 6000, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 7000, 0, 1000);
}

/* Out-of-order data raises an accepted socket's receive buffer at once (tcp_rcvbuf_grow from
 * tcp_data_queue_ofo, Linux 6.16+): to twice the window that covers the last RTT's reading
 * plus the out-of-order span (selftest tcp_ooo-before-and-after-accept, 6.18.44). */
static void test_ooo_data_grows_rcvbuf(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	assert_int_equal(v, 131072);
	static uint8_t d[1000];
	tw_peer_send(t, &conn, 50000, 0, TW_ACK, 65535, d, sizeof(d));
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0); /* the duplicate ACK */
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	assert_int_equal(v, 2 * (2 * 14600 + 51000)); /* rcvq_space 10 × 1460, span to 51000 */
}

/* Linux's delayed ACK engine in a request-response exchange: the first request is ACKed at
 * once (quick-ack mode); an answer sent within ato of it makes the connection pingpong, so the
 * next request's ACK waits for the answer to carry it; a delayed ACK that has to go alone
 * (no answer within ato) ends pingpong, and quick ACKs come back. */
static void test_pingpong_delays_acks(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	char buf[200];
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_PSH, 65535, "request-1", 9);
	tw_expect_seg(t, &conn, TW_ACK, 0, 9, 0); /* quick-ack mode */
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_ato, 40000);
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 9);
	tw_advance(t, 5);
	assert_int_equal(ustack_send(t->st, conn.fd, "answer-1", 8, 0), 8); /* within ato: pingpong */
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 9, 8);
	tw_advance(t, 5);
	tw_peer_send(t, &conn, 9, 8, TW_ACK | TW_PSH, 65535, "request-2", 9);
	tw_expect_none(t); /* no quick ACK: the answer will carry it */
	tw_advance(t, 5);
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 9);
	assert_int_equal(ustack_send(t->st, conn.fd, "answer-2", 8, 0), 8);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 8, 18, 8);
	/* no answer this time: the delayed ACK goes alone after ato, and pingpong ends */
	tw_advance(t, 5);
	tw_peer_send(t, &conn, 18, 16, TW_ACK | TW_PSH, 65535, "request-3", 9);
	tw_expect_none(t);
	tw_advance(t, 40);
	tw_expect_seg(t, &conn, TW_ACK, 16, 27, 0);
	assert_int_equal(tw_counter(t, "TcpExtDelayedACKs"), 1);
	tw_advance(t, 100);
	tw_peer_send(t, &conn, 27, 16, TW_ACK | TW_PSH, 65535, "request-4", 9);
	tw_expect_seg(t, &conn, TW_ACK, 16, 36, 0); /* quick again */
}

static void test_quickack_then_delayed_ack(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	uint8_t data[100] = { 0 };
	/* the first 16 data segments are acknowledged at once (Linux's quick-ack mode) */
	for (uint32_t i = 0; i < 16; i++) {
		tw_peer_send(t, &conn, i * 100, 0, TW_ACK | TW_PSH, 65535, data, 100);
		tw_expect_seg(t, &conn, TW_ACK, 0, (i + 1) * 100, 0);
	}
	/* then the delayed-ACK timer: 40 ms */
	tw_peer_send(t, &conn, 1600, 0, TW_ACK | TW_PSH, 65535, data, 100);
	tw_expect_none(t);
	tw_advance(t, 39);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 0, 1700, 0);
	assert_int_equal(tw_counter(t, "TcpExtDelayedACKs"), 1);
	/* two full-sized segments are acknowledged without waiting */
	static uint8_t full[1460];
	tw_peer_send(t, &conn, 1700, 0, TW_ACK, 65535, full, 1460);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 3160, 0, TW_ACK, 65535, full, 1460);
	tw_expect_seg(t, &conn, TW_ACK, 0, 4620, 0);
	char buf[8192];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 4620);
}

/* Limited transmit (RFC 3042) without SACK, as Linux's reno "sacked_out": each of the first
 * two duplicate ACKs lets one new segment go; a later cumulative ACK grows cwnd only by what
 * it delivers beyond what the duplicates already counted. */
static void test_limited_transmit_without_sack(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[15 * 1460];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < 10; i++)
		tw_expect_seg(t, &conn, i == 4 || i == 9 ? TW_ACK | TW_PSH : TW_ACK, (uint32_t)i * 1460, 0, 1460);
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 10 * 1460, 0, 1460);
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 11 * 1460, 0, 1460);
	tw_expect_none(t);
	/* three segments acknowledged, two of them counted already: cwnd 10 → 11, and with 9
	 * in flight two more go */
	tw_peer_send(t, &conn, 0, 3 * 1460, TW_ACK, 65535, NULL, 0);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_snd_cwnd, 11);
	tw_expect_seg(t, &conn, TW_ACK, 12 * 1460, 0, 1460);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 13 * 1460, 0, 1460); /* one TSO packet's end */
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPRenoRecovery"), 0);
}

static void test_fast_retransmit_on_three_dupacks(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[14600];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	/* two TSO packets' worth (tcp_cwnd_test: half the window each), PSH ending each */
	for (int i = 0; i < 10; i++)
		tw_expect_seg(t, &conn, i == 4 || i == 9 ? TW_ACK | TW_PSH : TW_ACK, (uint32_t)i * 1460, 0, 1460);
	/* the second segment was lost: the peer acknowledges the first, then three duplicates */
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1460, 0, 1460); /* fast retransmit, before any timer */
	assert_int_equal(tw_counter(t, "TcpExtTCPRenoRecovery"), 1);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 0);
	/* a partial ACK (NewReno, RFC 6582): the next hole goes at once too */
	tw_peer_send(t, &conn, 0, 4380, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 4380, 0, 1460);
	/* the full ACK ends recovery */
	tw_peer_send(t, &conn, 0, 14600, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_total_retrans, 2);
	assert_int_equal(ti.tcpi_snd_ssthresh, 7); /* CUBIC: 10 × 717/1024 */
}

static void test_out_of_order_data_and_sack_blocks(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	/* timestamps are on: every peer segment must carry them (TSval 5001) */
	struct tw_opts ts = { 0 };
	tw_opt_ts(&ts, 5001, 0);
	uint8_t a[100], b[100];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	/* the second hundred bytes first: a duplicate ACK at once, with a SACK block for them */
	tw_peer_send_opts(t, &conn, &ts, 100, 0, TW_ACK, 65535, b, 100);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0);
	/* NOP NOP TS(10) NOP NOP SACK(10): Linux's layout, timestamps first */
	assert_int_equal(s.optlen, 24);
	assert_int_equal(s.opts[12], 1);
	assert_int_equal(s.opts[13], 1);
	assert_int_equal(s.opts[14], 5);
	assert_int_equal(s.opts[15], 10);
	assert_int_equal(tw_rd32(s.opts + 16), tw_peer_seq(&conn, 100));
	assert_int_equal(tw_rd32(s.opts + 20), tw_peer_seq(&conn, 200));
	assert_int_equal(tw_counter(t, "TcpExtTCPOFOQueue"), 1);
	char buf[512];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN); /* nothing in order yet */
	/* the hole is filled: one ACK for both, no SACK block left */
	tw_peer_send_opts(t, &conn, &ts, 0, 0, TW_ACK, 65535, a, 100);
	s = tw_expect_seg(t, &conn, TW_ACK, 0, 200, 0);
	assert_int_equal(s.optlen, 12);
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 200);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[199], 'b');
}

/*
 * While we hold out-of-order data every segment we send carries a SACK block, and its data is
 * that much shorter: tcp_current_mss (Linux subtracts tcp_established_options' size beyond
 * tcp_header_len) — 1448 less NOP NOP SACK(10), 1436, so that the frame is still 1514 bytes,
 * never over the MTU.  A retransmission of a full-sized segment sent before is cut to 1436
 * too (tcp_retransmit_skb's tcp_fragment at cur_mss), the rest left for the window after it.
 */
static void test_sack_blocks_shorten_data_segments(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_early_retrans", "0"); /* no loss probe before the timeout */
	accept_sack_ts_conn(t, 0);
	struct tw_opts ts = { 0 };
	tw_opt_ts(&ts, 5001, 0);
	static char data[8000];
	memset(data, 'd', sizeof(data));
	/* one full segment before any hole: 1448 */
	assert_int_equal(ustack_send(t->st, conn.fd, data, 1448, 0), 1448);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 1448);
	assert_int_equal(s.optlen, 12);
	/* the peer's bytes 100-199 before 0-99: a SACK block from now on */
	uint8_t b[100];
	memset(b, 'b', sizeof(b));
	tw_peer_send_opts(t, &conn, &ts, 100, 0, TW_ACK, 65535, b, 100);
	s = tw_expect_seg(t, &conn, TW_ACK, 1448, 0, 0);
	assert_int_equal(s.optlen, 24);
	/* new data: 1436 a segment, each with the block, 1514 bytes a frame */
	assert_int_equal(ustack_send(t->st, conn.fd, data, 3000, 0), 3000);
	s = tw_expect_seg(t, &conn, TW_ACK, 1448, 0, 1436);
	assert_int_equal(s.optlen, 24);
	assert_int_equal(s.opts[14], TW_OPT_SACK);
	assert_int_equal(20 + 20 + s.optlen + s.plen, 1500);
	s = tw_expect_seg(t, &conn, TW_ACK, 1448 + 1436, 0, 1436);
	assert_int_equal(s.optlen, 24);
	s = tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1448 + 2 * 1436, 0, 3000 - 2 * 1436);
	/* the timeout: the first segment again, but 1436 of it, and nothing more (cwnd 1) */
	for (int ms = 0; ms < 3000 && !t->count; ms += 10)
		tw_advance(t, 10);
	s = tw_expect_seg(t, &conn, TW_ACK, 0, 0, 1436);
	assert_int_equal(s.optlen, 24);
	tw_expect_none(t);
	/* the peer acknowledges it: the other 12 bytes of that segment go next */
	tw_peer_send_opts(t, &conn, &ts, 200, 1436, TW_ACK, 65535, NULL, 0);
	s = tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1436, 0, 12);
}

static void test_paws_drops_old_timestamps(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	struct tw_opts old = { 0 };
	tw_opt_ts(&old, 4998, 0); /* 2 behind 5000, the SYN's: beyond TCP_PAWS_WINDOW */
	uint8_t d[10] = { 0 };
	tw_peer_send_opts(t, &conn, &old, 0, 0, TW_ACK, 65535, d, 10);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0); /* a duplicate ACK; the data is not taken */
	assert_int_equal(tw_counter(t, "TcpExtPAWSEstab"), 1);
	char buf[16];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* one behind is jitter PAWS tolerates (TCP_PAWS_WINDOW): the data is taken */
	old.len = 0;
	tw_opt_ts(&old, 4999, 0);
	tw_peer_send_opts(t, &conn, &old, 0, 0, TW_ACK, 65535, d, 10);
	tw_expect_seg(t, &conn, TW_ACK, 0, 10, 0);
	assert_int_equal(tw_counter(t, "TcpExtPAWSEstab"), 1);
	/* a pure duplicate ACK reordered behind a newer one is no old duplicate
	 * (tcp_disordered_ack: same window, within an RTO's worth of timestamps): nothing
	 * answers it, nothing counts it, and ts_recent does not go back */
	old.len = 0;
	tw_opt_ts(&old, 5001, 0);
	tw_peer_send_opts(t, &conn, &old, 10, 0, TW_ACK, 65535, NULL, 0);
	old.len = 0;
	tw_opt_ts(&old, 4900, 0);
	tw_peer_send_opts(t, &conn, &old, 10, 0, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtPAWSEstab"), 1);
	assert_int_equal(ustack_send(t->st, conn.fd, d, 1, 0), 1);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 10, 1);
	assert_int_equal(tw_rd32(s.opts + 8), 5001); /* TSecr: still the newest */
}

/* An ACK of data never sent is judged before the segment's timestamp is taken (Linux 6.18:
 * tcp_ack's checks, then tcp_replace_ts_recent): a high TSval on it leaves ts_recent alone, so
 * the peer's next segment, with its real clock, is not dropped by PAWS.  An old ACK inside the
 * window is acceptable, and its timestamp is taken. */
static void test_unacceptable_ack_keeps_ts_recent(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	struct tw_opts o = { 0 };
	tw_opt_ts(&o, 200000, 0);
	tw_peer_send_opts(t, &conn, &o, 0, 9999, TW_ACK | TW_FIN, 65535, NULL, 0);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0); /* the challenge */
	assert_int_equal(tw_rd32(s.opts + 8), 5000);                /* TSecr: the SYN's */
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_ESTABLISHED); /* FIN not taken */
	o.len = 0;
	tw_opt_ts(&o, 5001, 0);
	uint8_t d[10] = { 0 };
	tw_peer_send_opts(t, &conn, &o, 0, 0, TW_ACK | TW_PSH, 65535, d, 10);
	tw_advance(t, 200);
	s = tw_expect_seg(t, &conn, TW_ACK, 0, 10, 0);
	assert_int_equal(tw_rd32(s.opts + 8), 5001);
	assert_int_equal(tw_counter(t, "TcpExtPAWSEstab"), 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPChallengeACK"), 1);
}

static void test_rfc5961_rst_and_syn(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	/* a RST in the window but not at rcv_nxt: a challenge ACK, the connection lives */
	tw_peer_send(t, &conn, 1000, 0, TW_RST, 0, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPChallengeACK"), 1);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_ESTABLISHED);
	/* a SYN on the connection: challenge ACK again, but rate-limited (500 ms) */
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460);
	tw_send(t, f, tw_tcp(f, PEER, PORT, 77777, 0, TW_SYN, 65535, mss.b, mss.len));
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPSYNChallenge"), 1);
	tw_advance(t, 500);
	tw_send(t, f, tw_tcp(f, PEER, PORT, 77777, 0, TW_SYN, 65535, mss.b, mss.len));
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPChallengeACK"), 2);
	assert_int_equal(tw_counter(t, "TcpExtTCPACKSkippedChallenge"), 1);
	/* an ACK for data never sent: dropped, data and all, and challenged (6.18's tcp_ack,
	 * RFC 5961 §5.2) — rate-limited as every challenge is */
	tw_advance(t, 500);
	tw_peer_send(t, &conn, 0, 5000, TW_ACK, 65535, "x", 1);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPChallengeACK"), 3);
	tw_peer_send(t, &conn, 0, 5000, TW_ACK, 65535, "x", 1);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPACKSkippedChallenge"), 2);
	char c;
	assert_int_equal(ustack_recv(t->st, conn.fd, &c, 1, 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* the RST exactly at rcv_nxt resets: ECONNRESET */
	tw_peer_send(t, &conn, 0, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(ustack_recv(t->st, conn.fd, &c, 1, 0), -1);
	assert_int_equal(errno, ECONNRESET);
}

static void test_passive_close(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_FIN | TW_PSH, 65535, "bye", 3);
	/* the FIN half-closes: our answers will carry the ACK (tcp_fin enters pingpong), which
	 * waits as a delayed ACK — ato, 40 ms after the first data */
	tw_expect_none(t);
	tw_advance(t, 40);
	tw_expect_seg(t, &conn, TW_ACK, 0, 4, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_CLOSE_WAIT);
	char buf[8];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 3);
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 0); /* end of stream */
	/* we may still send in CLOSE_WAIT */
	assert_int_equal(ustack_send(t->st, conn.fd, "ok", 2, 0), 2);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 4, 2);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_FIN, 2, 4, 0); /* LAST_ACK */
	tw_peer_send(t, &conn, 4, 3, TW_ACK, 65535, NULL, 0);
	/* gone: a further segment meets no socket and is reset */
	tw_peer_send(t, &conn, 4, 3, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_RST, 3, 0, 0);
}

/* TIME_WAIT entries of the DUT (sockstat's tw) */
static uint32_t tw_count(struct tw *t)
{
	struct ustack_sockstat ss;
	assert_int_equal(ustack_sockstat(t->st, &ss), 0);
	return ss.tcp_tw;
}

static void test_active_close_time_wait(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	assert_int_equal(ustack_shutdown(t->st, conn.fd, SHUT_WR), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_FIN, 0, 0, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_FIN_WAIT1);
	assert_int_equal(ustack_send(t->st, conn.fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPIPE);
	tw_peer_send(t, &conn, 0, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_FIN_WAIT2);
	/* half-closed: the peer may still send, and we read it */
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_PSH, 65535, "late", 4);
	tw_expect_seg(t, &conn, TW_ACK, 1, 4, 0);
	tw_peer_send(t, &conn, 4, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 5, 0);
	/* the socket is done with (Linux's tcp_done after tcp_time_wait: CLOSE); a TIME_WAIT
	 * entry of its own holds the connection, counted as it comes */
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_CLOSE);
	assert_int_equal(tw_counter(t, "TcpExtTW"), 1);
	assert_int_equal(tw_count(t), 1);
	char buf[8];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 4);
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 0);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	/* TIME_WAIT answers a retransmitted FIN with the ACK again */
	tw_advance(t, 30000);
	tw_peer_send(t, &conn, 4, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 5, 0);
	/* which restarts 2·MSL: still there 59.999 s later, gone at 60 s */
	tw_advance(t, 59999);
	assert_int_equal(tw_count(t), 1);
	tw_advance(t, 1);
	assert_int_equal(tw_count(t), 0);
	tw_peer_send(t, &conn, 5, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST);
}

static void test_close_with_unread_data_resets(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_PSH, 65535, "unread", 6);
	tw_expect_seg(t, &conn, TW_ACK, 0, 6, 0);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	/* RFC 2525 §2.17, Linux's tcp_close: RST, not FIN, so the peer knows data was lost */
	tw_expect_seg(t, &conn, TW_RST | TW_ACK, 0, 6, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnClose"), 1);
	tw_expect_none(t);
}

static void test_linger_zero_resets(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	struct linger lg = { 1, 0 };
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	tw_expect_seg(t, &conn, TW_RST | TW_ACK, 0, 0, 0);
	tw_expect_none(t); /* no TIME_WAIT, no FIN */
}

static void test_rto_go_back_n(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[4380];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), 4380);
	for (int i = 0; i < 3; i++)
		tw_expect_seg(t, &conn, i == 2 ? TW_ACK | TW_PSH : TW_ACK, (uint32_t)i * 1460, 0, 1460);
	/* all lost: after the RTO (201 ms: the handshake's RTT is ~0), the first segment only
	 * (cwnd 1), then the RTO doubles */
	tw_advance(t, 200);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 1460);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 1);
	tw_advance(t, 401);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 1460);
	/* its ACK lets two more go (slow start from 1) */
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1460, 0, 1460);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 2920, 0, 1460);
}

/* An active open from a bound port with timestamps, closed by us: TIME_WAIT.  Returns the
 * DUT's snd_nxt at the end (after its FIN). */
static uint32_t active_conn_to_time_wait(struct tw *t, uint16_t lport, uint32_t peer_isn)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(lport) };
	if (lport) /* else the ephemeral port connect() finds */
		assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&me, sizeof(me)), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&to, sizeof(to)), -1);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	lport = s.sport;
	struct tw_conn c = { .fd = fd, .iss = s.seq, .peer_isn = peer_isn, .port = lport, .peer_port = PORT };
	size_t n = 0;
	const uint8_t *ts = tw_seg_opt(&s, TW_OPT_TS, &n);
	assert_non_null(ts);
	assert_int_equal(n, 8);
	uint32_t tsval = tw_rd32(ts);
	struct tw_opts synack = { 0 };
	tw_opt_mss(&synack, 1460);
	tw_opt_ts(&synack, 100, tsval);
	tw_send(t, f, tw_tcp(f, PORT, lport, peer_isn, tw_dut_seq(&c, 0), TW_SYN | TW_ACK, 65535, synack.b, synack.len));
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	assert_int_equal(ustack_close(t->st, fd), 0);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 0, 0, 0);
	struct tw_opts ts101 = { 0 };
	tw_opt_ts(&ts101, 101, tsval);
	tw_peer_send_opts(t, &c, &ts101, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK, 1, 1, 0); /* TIME_WAIT */
	return tw_dut_seq(&c, 1);
}

static int connect_from(struct tw *t, uint16_t lport)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(lport) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&me, sizeof(me)), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	return ustack_connect(t->st, fd, (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

static int connect_ephemeral(struct tw *t)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	return ustack_connect(t->st, fd, (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

/*
 * Taking a TIME_WAIT connection's 4-tuple over (tcp_twsk_unique, Linux 6.18).  bind() may
 * share the port with the entry when both set SO_REUSEADDR.  A connect() from a port chosen
 * with bind() takes the 4-tuple over from an entry that saw timestamps whatever tcp_tw_reuse
 * says (Linux's __inet_hash_connect passes no twp then); the ephemeral search only with
 * tcp_tw_reuse = 1 (the default, 2, means loopback only) and once tcp_tw_reuse_delay has
 * passed.  Either way the new ISN is above the old sequence space and TcpExtTWRecycled counts.
 */
static void test_time_wait_reuse(void **state)
{
	struct tw *t = *state;
	/* ephemeral, with one port to choose from */
	tw_sysctl(t, "net.ipv4.ip_local_port_range", "5556 5556");
	uint32_t snd_nxt = active_conn_to_time_wait(t, 0, 8000);
	assert_int_equal(connect_ephemeral(t), -EADDRNOTAVAIL); /* tcp_tw_reuse = 2: loopback only */
	tw_sysctl(t, "net.ipv4.tcp_tw_reuse", "1");
	tw_advance(t, 1000);
	assert_int_equal(connect_ephemeral(t), -EADDRNOTAVAIL); /* tcp_tw_reuse_delay: 1000 ms */
	tw_advance(t, 1);
	assert_int_equal(connect_ephemeral(t), -EINPROGRESS);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	assert_int_equal(s.sport, 5556);
	assert_int_equal(s.seq, snd_nxt + 65535 + 2); /* above the old sequence space */
	assert_int_equal(tw_counter(t, "TcpExtTWRecycled"), 1);

	/* bound: the entry holds the port against a bind() without SO_REUSEADDR ... */
	tw_sysctl(t, "net.ipv4.tcp_tw_reuse", "2");
	snd_nxt = active_conn_to_time_wait(t, 5555, 7000);
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(5555) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&me, sizeof(me)), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_close(t->st, fd), 0);
	/* ... and with it, connect() takes the 4-tuple over at once, tcp_tw_reuse at its default */
	assert_int_equal(connect_from(t, 5555), -EINPROGRESS);
	s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	assert_int_equal(s.sport, 5555);
	assert_int_equal(s.seq, snd_nxt + 65535 + 2);
	assert_int_equal(tw_counter(t, "TcpExtTWRecycled"), 2);
}

/* connect() from the ephemeral range to the peer's dport, SO_REUSEADDR set first when reuse,
 * and the handshake completed (so that nothing is retransmitted later): the connection's
 * source port, or -errno */
static int connect_to_port(struct tw *t, uint16_t dport, int reuse)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (reuse)
		assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)), 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(dport), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	if (ustack_connect(t->st, fd, (struct sockaddr *)&to, sizeof(to)) == 0 || errno != EINPROGRESS) {
		int err = errno;
		ustack_close(t->st, fd);
		return -err;
	}
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	uint8_t b[128];
	tw_send(t, b, tw_tcp(b, dport, s.sport, 3000, s.seq + 1, TW_SYN | TW_ACK, 65535, NULL, 0));
	struct tw_seg a = tw_expect_tcp(t);
	assert_int_equal(a.flags, TW_ACK);
	assert_int_equal(a.ack, 3001);
	return s.sport;
}

/*
 * A port that connect() and bind() share, and TIME_WAIT (Linux 6.17's "tcp: Update bind bucket
 * state on port release", tw_connect_bind).  A bind() beside connect()ed sockets narrows the
 * port's flags, and connect() passes the port by while a holder bind() made is left: the socket
 * itself, then its TIME_WAIT entry.  When the entry goes the flags are -1 again and connect()
 * takes the port.  An entry whose socket had its port from connect() holds nothing of the kind:
 * with it still there, the flags go back to -1 as soon as the bound socket closes.  The bind()
 * beside the counted connections passes because they all set SO_REUSEADDR (their row's flags).
 */
static void test_time_wait_and_shared_port_state(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.ip_local_port_range", "5560 5560");
	assert_int_equal(connect_to_port(t, PORT + 1, 1), 5560);
	assert_int_equal(connect_to_port(t, PORT + 2, 1), 5560);
	/* bound with SO_REUSEADDR beside them, connected to PORT, closed by us: TIME_WAIT */
	active_conn_to_time_wait(t, 5560, 7000);
	assert_int_equal(connect_to_port(t, PORT + 3, 1), -EADDRNOTAVAIL); /* held by bind()'s entry */
	tw_advance(t, 60000);
	assert_int_equal(connect_to_port(t, PORT + 3, 1), 5560); /* the entry gone: the flags are -1 */

	/* now an entry from connect(), beside a socket bind() made that closes */
	tw_sysctl(t, "net.ipv4.ip_local_port_range", "5562 5562");
	active_conn_to_time_wait(t, 0, 9000); /* ephemeral: 5562, to PORT, in TIME_WAIT */
	int k = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, k, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(5562) };
	assert_int_equal(ustack_bind(t->st, k, (struct sockaddr *)&me, sizeof(me)), 0);
	assert_int_equal(connect_to_port(t, PORT + 4, 1), -EADDRNOTAVAIL); /* k holds it */
	assert_int_equal(ustack_close(t->st, k), 0);
	assert_int_equal(connect_to_port(t, PORT + 4, 1), 5562); /* the entry does not */
}

/* The DUT closes an accepted connection first; the peer acknowledges the FIN, sends its own
 * (with timestamps when o is given): the DUT is in TIME_WAIT. */
/* The DUT closes c (no data in flight) and the peer acknowledges the FIN: the orphan is a
 * timewait entry in the FIN_WAIT2 substate. */
static void orphan_to_fin_wait2(struct tw *t, const struct tw_conn *c, const struct tw_opts *o)
{
	assert_int_equal(ustack_close(t->st, c->fd), 0);
	tw_expect_seg(t, c, TW_ACK | TW_FIN, 0, 0, 0);
	tw_peer_send_opts(t, c, o, 0, 1, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_count(t), 1);
}

static void server_to_time_wait(struct tw *t, const struct tw_opts *o)
{
	orphan_to_fin_wait2(t, &conn, o);
	tw_peer_send_opts(t, &conn, o, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(tw_count(t), 1);
}

/*
 * RFC 1122 §4.2.2.13, as Linux 6.18's tcp_timewait_state_process: a SYN may reopen a
 * connection in TIME_WAIT when it is newer than the old one — here by sequence number (no
 * timestamps).  The listener takes it with an ISN above the old connection's sequence space
 * (snd_nxt + 65535 + 2).  An old SYN (below rcv_nxt) is answered with the entry's ACK instead.
 */
static void test_time_wait_syn_reopens(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	server_to_time_wait(t, NULL);
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_send(t, f, tw_tcp(f, PEER, PORT, conn.peer_isn, 0, TW_SYN, 65535, o.b, o.len));
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(s.win, 64240); /* what was left of the window, as it was announced */
	assert_int_equal(s.optlen, 0);  /* no timestamps on this connection */
	assert_int_equal(tw_count(t), 1);
	uint32_t nisn = tw_peer_seq(&conn, 100000);
	tw_send(t, f, tw_tcp(f, PEER, PORT, nisn, 0, TW_SYN, 65535, o.b, o.len));
	s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.seq, tw_dut_seq(&conn, 1) + 65535 + 2);
	assert_int_equal(s.ack, nisn + 1);
	assert_int_equal(tw_count(t), 0);
	struct ustack_sockstat ss;
	assert_int_equal(ustack_sockstat(t->st, &ss), 0);
	assert_int_equal(ss.tcp_reqsk, 1);
}

/* A RST at rcv_nxt ends TIME_WAIT (RFC 1337's "assassination", which Linux allows unless
 * net.ipv4.tcp_rfc1337); one elsewhere is dropped without a word. */
static void test_time_wait_rst(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	server_to_time_wait(t, NULL);
	tw_peer_send(t, &conn, 7, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_count(t), 1);
	tw_peer_send(t, &conn, 1, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_count(t), 0);
}

/* tcp_rfc1337 = 1: the RST is ignored; the entry stays, and answers a retransmitted FIN. */
static void test_time_wait_rfc1337(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_rfc1337", "1");
	accept_conn(t);
	server_to_time_wait(t, NULL);
	tw_peer_send(t, &conn, 1, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_count(t), 1);
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
}

/*
 * PAWS in TIME_WAIT (RFC 7323 §5, tcp_paws_reject with no jitter window): a segment with an
 * older timestamp is counted (TcpExtPAWSTimewait) and answered with the ACK — its timestamps
 * the connection's, TSecr the last one the peer sent — at most every tcp_invalid_ratelimit
 * (TcpExtTCPACKSkippedTimeWait); data is answered every time.
 */
static void test_time_wait_paws(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	struct tw_opts o = { 0 };
	tw_opt_ts(&o, 5002, 0);
	server_to_time_wait(t, &o);
	struct tw_opts old = { 0 };
	tw_opt_ts(&old, 4000, 0);
	tw_peer_send_opts(t, &conn, &old, 1, 1, TW_ACK, 65535, NULL, 0);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	size_t n = 0;
	const uint8_t *ts = tw_seg_opt(&s, TW_OPT_TS, &n);
	assert_non_null(ts);
	assert_int_equal(tw_rd32(ts + 4), 5002);
	assert_int_equal(tw_counter(t, "TcpExtPAWSTimewait"), 1);
	tw_peer_send_opts(t, &conn, &old, 1, 1, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPACKSkippedTimeWait"), 1);
	struct tw_opts now = { 0 };
	tw_opt_ts(&now, 5003, 0);
	tw_peer_send_opts(t, &conn, &now, 1, 1, TW_ACK | TW_PSH, 65535, "late", 4);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(tw_count(t), 1);
}

/* Past net.ipv4.tcp_max_tw_buckets a connection closes without TIME_WAIT
 * (TcpExtTCPTimeWaitOverflow): a retransmitted FIN then finds nothing and is reset.  An
 * orphan reaching FIN_WAIT2 finds no room either, and is gone at once, as in Linux. */
static void test_time_wait_overflow(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_max_tw_buckets", "0");
	accept_conn(t);
	assert_int_equal(ustack_shutdown(t->st, conn.fd, SHUT_WR), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_FIN, 0, 0, 0);
	tw_peer_send(t, &conn, 0, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_FIN_WAIT2); /* not an orphan */
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeWaitOverflow"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTW"), 0);
	assert_int_equal(tw_count(t), 0);
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST);
}

/*
 * An orphan in FIN_WAIT2 (Linux's tcp_rcv_state_process, FIN_WAIT1 step): once the peer has
 * acknowledged our FIN the socket gives way to a timewait entry in the FIN_WAIT2 substate,
 * shown by ss as FIN-WAIT-2 with its timer, and takes the peer's FIN into TIME_WAIT proper, 60 s
 * from then.
 */
static void test_fin_wait2_orphan(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fin_timeout", "30");
	accept_conn(t);
	orphan_to_fin_wait2(t, &conn, NULL);
	struct ustack_sockstat ss;
	assert_int_equal(ustack_sockstat(t->st, &ss), 0);
	assert_int_equal(ss.tcp_alloc, 1); /* the listener; the orphan's socket is gone */
	struct ustack_diag_sock d[4];
	size_t total = 0;
	assert_int_equal(ustack_diag_snapshot(t->st, d, 4, &total), 2);
	int row = d[0].state == TCP_FIN_WAIT2 ? 0 : 1;
	assert_int_equal(d[row].state, TCP_FIN_WAIT2);
	assert_int_equal(d[row].timer, USTACK_DIAG_TIMER_TIMEWAIT);
	assert_int_equal(d[row].expires_ms, 30000);
	/* the FIN: TIME_WAIT, 60 s from now */
	tw_advance(t, 20000);
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(ustack_diag_snapshot(t->st, d, 4, &total), 2);
	row = d[0].state == TCP_TIME_WAIT ? 0 : 1;
	assert_int_equal(d[row].state, TCP_TIME_WAIT);
	assert_int_equal(d[row].expires_ms, 60000);
	tw_advance(t, 59999);
	assert_int_equal(tw_count(t), 1);
	tw_advance(t, 1);
	assert_int_equal(tw_count(t), 0);
	tw_expect_none(t);
}

/* The FIN_WAIT2 substate resets data that comes after the application closed, and ends by
 * itself, with no RST, when tcp_fin_timeout is up. */
static void test_fin_wait2_orphan_data_and_timeout(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fin_timeout", "10");
	accept_conn(t);
	orphan_to_fin_wait2(t, &conn, NULL);
	/* a duplicate ACK: nothing */
	tw_peer_send(t, &conn, 0, 1, TW_ACK, 65535, NULL, 0);
	tw_expect_none(t);
	/* silence: gone at 10 s, without a word */
	tw_advance(t, 9999);
	assert_int_equal(tw_count(t), 1);
	tw_advance(t, 1);
	assert_int_equal(tw_count(t), 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnTimeout"), 0);

	/* another orphan, and data after the close this time: RST, and the entry goes */
	struct tw_conn c2;
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_accept_conn(t, &c2, 81, o.b, o.len);
	orphan_to_fin_wait2(t, &c2, NULL);
	tw_peer_send(t, &c2, 0, 1, TW_ACK | TW_PSH, 65535, "late", 4);
	tw_expect_seg(t, &c2, TW_RST, 1, 0, 0);
	assert_int_equal(tw_count(t), 0);
}

/* The segment that acknowledges an orphan's FIN may be a retransmission of data already
 * taken (our ACK of it was lost): nothing new, so the orphan still becomes a FIN_WAIT2 entry,
 * silently — no RST (Linux's FIN_WAIT1 step aborts only on data beyond rcv_nxt).  A SYN+FIN
 * that would reopen a TIME_WAIT connection ends the entry but is dropped by the listener. */
static void test_fin_wait2_duplicate_and_syn_fin(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_PSH, 65535, "abc", 3);
	tw_expect_seg(t, &conn, TW_ACK, 0, 3, 0);
	char buf[4];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 3);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_FIN, 0, 3, 0);
	tw_peer_send(t, &conn, 0, 1, TW_ACK | TW_PSH, 65535, "abc", 3); /* the old data, acking the FIN */
	tw_expect_none(t); /* tcp_time_wait, then "consume": nothing is sent */
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnData"), 0);
	assert_int_equal(tw_count(t), 1);
	/* the FIN: TIME_WAIT; then a SYN+FIN above it: the entry goes, no SYN-ACK */
	tw_peer_send(t, &conn, 3, 1, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 4, 0);
	tw_send(t, f, tw_tcp(f, PEER, PORT, tw_peer_seq(&conn, 100000), 0, TW_SYN | TW_FIN, 65535, NULL, 0));
	tw_expect_none(t);
	assert_int_equal(tw_count(t), 0);
}

/* The peer's ACK with timestamps (TSval 5001) and SACK blocks (relative to the DUT's ISN + 1). */
static void peer_sack(struct tw *t, uint32_t rack, const uint32_t (*blocks)[2], unsigned n)
{
	struct tw_opts o = { 0 };
	tw_opt_ts(&o, 5001, 0);
	tw_opt_sack(&o, tw_dut_seq(&conn, 0), blocks, n);
	tw_peer_send_opts(t, &conn, &o, 0, rack, TW_ACK, 65535, NULL, 0);
}

static void test_sack_recovery_rfc6675(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	tw_sysctl(t, "net.ipv4.tcp_recovery", "0"); /* RFC 6675's IsLost, not RACK */
	const uint32_t M = 1448; /* 1460 less the timestamp option */
	static uint8_t buf[10 * 1448];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (uint32_t i = 0; i < 10; i++)
		tw_expect_seg(t, &conn, i == 4 || i == 9 ? TW_ACK | TW_PSH : TW_ACK, i * M, 0, M);
	/* segments 1 and 4 are lost; the peer SACKs what arrives above them */
	peer_sack(t, M, NULL, 0);
	peer_sack(t, M, (const uint32_t[][2]){ { 2 * M, 3 * M } }, 1);
	peer_sack(t, M, (const uint32_t[][2]){ { 2 * M, 4 * M } }, 1);
	tw_expect_none(t);
	/* three segments SACKed above the hole: recovery (not three duplicate ACKs' worth of
	 * waiting), and only the hole goes again — not the SACKed data, not the second hole,
	 * which has too little SACKed above it to be called lost yet */
	peer_sack(t, M, (const uint32_t[][2]){ { 5 * M, 6 * M }, { 2 * M, 4 * M } }, 2);
	tw_expect_seg(t, &conn, TW_ACK, M, 0, M);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPSackRecovery"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPRenoRecovery"), 0);
	/* TCP_INFO in Linux's full layout tells the same story */
	struct ustack_tcp_info uti;
	socklen_t ulen = sizeof(uti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &uti, &ulen), 0);
	assert_int_equal(ulen, sizeof(uti));
	assert_int_equal(uti.tcpi_ca_state, TCP_CA_Recovery);
	assert_int_equal(uti.tcpi_unacked, 9);
	assert_int_equal(uti.tcpi_sacked, 3);
	assert_int_equal(uti.tcpi_lost, 1); /* the one lost hole (lost_out: resent or not) */
	assert_int_equal(uti.tcpi_retrans, 1);
	assert_int_equal(uti.tcpi_data_segs_out, 11);
	assert_int_equal(uti.tcpi_bytes_retrans, M);
	/* PRR (RFC 6937): 5 in flight, and one segment for the one the ACK reported delivered */
	assert_int_equal(uti.tcpi_snd_cwnd, 6);
	peer_sack(t, M, (const uint32_t[][2]){ { 5 * M, 7 * M }, { 2 * M, 4 * M } }, 2);
	tw_expect_none(t);
	/* three segments above the second hole: it is lost too, and resent */
	peer_sack(t, M, (const uint32_t[][2]){ { 5 * M, 8 * M }, { 2 * M, 4 * M } }, 2);
	tw_expect_seg(t, &conn, TW_ACK, 4 * M, 0, M);
	tw_expect_none(t);
	/* the first retransmission arrives: a partial ACK up to the second hole */
	peer_sack(t, 4 * M, (const uint32_t[][2]){ { 5 * M, 10 * M } }, 1);
	tw_expect_none(t);
	/* then everything: recovery ends with cwnd = ssthresh (CUBIC: 10 × 0.7) */
	peer_sack(t, 10 * M, NULL, 0);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_snd_cwnd, 7);
	assert_int_equal(ti.tcpi_snd_ssthresh, 7);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), 2);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 0);
	/* after an RTO, go-back-N skips what the peer holds: send 4 more, SACK the last two
	 * (tail loss probes off, so that the RTO is what fires) */
	tw_sysctl(t, "net.ipv4.tcp_early_retrans", "0");
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 4 * M, 0), (ssize_t)(4 * M));
	/* cwnd 7: a TSO packet of three (half the window), then the last segment alone — PSH
	 * on both, the second because it ends its skb */
	for (uint32_t i = 10; i < 14; i++)
		tw_expect_seg(t, &conn, i >= 12 ? TW_ACK | TW_PSH : TW_ACK, i * M, 0, M);
	peer_sack(t, 10 * M, (const uint32_t[][2]){ { 12 * M, 14 * M } }, 1);
	for (int ms = 0; ms < 5000 && t->count == 0; ms++)
		tw_advance(t, 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 1);
	tw_expect_seg(t, &conn, TW_ACK, 10 * M, 0, M); /* the RTO: the head */
	peer_sack(t, 11 * M, (const uint32_t[][2]){ { 12 * M, 14 * M } }, 1);
	tw_expect_seg(t, &conn, TW_ACK, 11 * M, 0, M); /* the rest of the hole, and not 12, 13 */
	tw_expect_none(t);
}

/* RACK-TLP's tail loss probe (RFC 8985 §7): the last segments of a flight are lost, nothing
 * comes back to trigger recovery; instead of waiting for the RTO, a probe after two RTTs. */
static void test_tail_loss_probe(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 0);
	const uint32_t M = 1448;
	static uint8_t buf[4 * 1448];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (uint32_t i = 0; i < 4; i++)
		tw_expect_seg(t, &conn, i == 3 ? TW_ACK | TW_PSH : TW_ACK, i * M, 0, M);
	/* the first two arrive; the last two are lost */
	peer_sack(t, 2 * M, NULL, 0);
	/* PTO = 2·SRTT (~0 here) + 2 ms, in whole milliseconds: 3 ms, far before the 201 ms RTO;
	 * with no new data to send, the probe is the newest segment again */
	tw_advance(t, 2);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 3 * M, 0, M);
	assert_int_equal(tw_counter(t, "TcpExtTCPLossProbes"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 0);
	/* one probe per tail: the next timer is the RTO (201 ms from the probe) */
	tw_advance(t, 200);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 2 * M, 0, M);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 1);
}

/* Both ends close at once (RFC 9293 §3.6, case 2): FIN_WAIT1 → CLOSING on the peer's FIN,
 * TIME_WAIT when our FIN is acknowledged. */
static void test_simultaneous_close(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	assert_int_equal(ustack_shutdown(t->st, conn.fd, SHUT_WR), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_FIN, 0, 0, 0);
	/* the peer's FIN crosses ours: it does not acknowledge our FIN yet */
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK, 1, 1, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_CLOSING);
	tw_peer_send(t, &conn, 1, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_CLOSE); /* TIME_WAIT: an entry's */
	assert_int_equal(tw_count(t), 1);
	tw_expect_none(t);
	char b;
	assert_int_equal(ustack_recv(t->st, conn.fd, &b, 1, 0), 0);
}

/* TCP_NOTSENT_LOWAT: writes stop while that many bytes wait unsent; POLLOUT comes back when
 * fewer than half of them wait (Linux's tcp_stream_memory_free with wake = 1). */
static void test_notsent_lowat(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, &len), 0);
	assert_int_equal(v, 0); /* the socket's own value; the sysctl (UINT_MAX: no limit) applies */
	char sv[16];
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_notsent_lowat", sv, sizeof(sv)), 0);
	assert_string_equal(sv, "4294967295");
	v = 3000;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v)), 0);
	/* the peer's window takes one segment at a time */
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 1460, NULL, 0);
	/* the mark is checked when a write starts a new skb (tcp_sendmsg_locked), so the first
	 * skb takes the whole write; one segment fits the window — not the skb's end: no PSH */
	static uint8_t buf[40000];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 5000, 0), 5000);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 1460);
	tw_expect_none(t);
	/* 3540 bytes wait unsent (≥ 3000), but their skb is not full: writes join it, up to the
	 * size goal (whole segments), and then a new skb would be needed: EAGAIN, no POLLOUT */
	ssize_t n = ustack_send(t->st, conn.fd, buf, sizeof(buf), 0);
	assert_true(n > 0 && n < (ssize_t)sizeof(buf));
	assert_int_equal((3540 + n) % 1460, 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 100, 0), -1);
	assert_int_equal(errno, EAGAIN);
	struct pollfd pfd = { .fd = conn.fd, .events = POLLOUT };
	assert_int_equal(ustack_poll(t->st, &pfd, 1, 0), 0);
	struct ustack_tcp_info ti;
	len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_notsent_bytes, 3540 + (uint32_t)n);
	/* the peer takes it all as fast as it comes; POLLOUT once less than half the mark
	 * (1500) waits unsent, and not before */
	uint32_t sent = 1460;
	for (int round = 0; round < 64; round++) {
		len = sizeof(ti);
		assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		assert_int_equal(ustack_poll(t->st, &pfd, 1, 0), 2 * ti.tcpi_notsent_bytes < 3000);
		if (2 * ti.tcpi_notsent_bytes < 3000)
			break;
		tw_peer_send(t, &conn, 0, sent, TW_ACK, 65535, NULL, 0);
		while (t->count) {
			struct tw_seg sg = tw_expect_tcp(t);
			sent = sg.seq - tw_dut_seq(&conn, 0) + (uint32_t)sg.plen;
		}
	}
	assert_int_equal(pfd.revents, POLLOUT);
	assert_true(2 * ti.tcpi_notsent_bytes < 3000);
}

/* TCP_CORK and MSG_MORE hold a partial segment back; a full one still goes.  Uncorking pushes
 * it at once; with nothing in flight and the cork left in, the probe timer sends it after an
 * RTO (tcp_check_probe_timer → tcp_write_wakeup), as Linux does. */
static void test_cork_and_msg_more(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[2000];
	int one = 1, zero = 0;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 40, 0), 40);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 40, 0), 40);
	tw_expect_none(t);
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)), 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 80);
	tw_peer_send(t, &conn, 0, 80, TW_ACK, 65535, NULL, 0);
	/* MSG_MORE: 1500 bytes make one full segment now, the 40-byte tail waits */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 1500, MSG_MORE), 1500);
	tw_expect_seg(t, &conn, TW_ACK, 80, 0, 1460);
	tw_expect_none(t);
	/* the next send without MSG_MORE releases it with its own bytes */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 10, 0), 10);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1540, 0, 50);
	tw_peer_send(t, &conn, 0, 1590, TW_ACK, 65535, NULL, 0);
	/* corked with nothing in flight: the held bytes go when the probe timer fires (201 ms) */
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 30, 0), 30);
	tw_expect_none(t);
	tw_advance(t, 200);
	tw_expect_none(t);
	tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1590, 0, 30); /* tcp_push marked it: the send had no MSG_MORE */
}

/* The write queue's skbs show on the wire (tcp_write_queue.c): TSO packets of half the
 * window end in PSH; MSG_EOR stops later writes from joining an skb, whose last segment then
 * goes alone with its PSH; a retransmission joins small skbs (tcp_retrans_try_collapse) but
 * never across an EOR. */
static void test_skb_boundaries_eor_and_psh(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	tw_sysctl(t, "net.ipv4.tcp_early_retrans", "0"); /* the RTO, not a loss probe, resends */
	static uint8_t buf[15000];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 15000, 0), 15000);
	for (uint32_t i = 0; i < 10; i++)
		tw_expect_seg(t, &conn, i == 4 || i == 9 ? TW_ACK | TW_PSH : TW_ACK, i * 1460, 0, 1460);
	tw_expect_none(t); /* 400 bytes wait for the window */
	/* they are unsent: an EOR write joins their skb and closes it; the next write starts
	 * another */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 400, MSG_EOR), 400);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 2920, 0), 2920);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 0, 14600, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 14600, 0, 800);        /* the EOR skb's end, alone */
	tw_expect_seg(t, &conn, TW_ACK, 15400, 0, 1460);                /* a TSO packet of two */
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 16860, 0, 1460);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 0, 18320, TW_ACK, 65535, NULL, 0);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	/* three small records, each sent at once; lost: after the RTO they go again as three
	 * (ustack counts the loss window of one segment in bytes, so all three fit in it) */
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(ustack_send(t->st, conn.fd, buf, 300, MSG_EOR), 300);
		tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 18320 + i * 300, 0, 300);
	}
	for (int ms = 0; ms < 5000 && t->count == 0; ms++)
		tw_advance(t, 1);
	for (uint32_t i = 0; i < 3; i++)
		tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 18320 + i * 300, 0, 300);
	tw_expect_none(t);
	tw_peer_send(t, &conn, 0, 19220, TW_ACK, 65535, NULL, 0);
	/* without EOR the same three writes go out one by one, and come back as one */
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(ustack_send(t->st, conn.fd, buf, 300, 0), 300);
		tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 19220 + i * 300, 0, 300);
	}
	for (int ms = 0; ms < 5000 && t->count == 0; ms++)
		tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 19220, 0, 900);
	tw_expect_none(t);
}

/* TCP_INQ: recvmsg says in a TCP_CM_INQ control message how much is left to read, 1 once
 * the FIN is in (tcp_inq_hint), and sets MSG_CTRUNC when msg_control has no room for it. */
static void test_tcp_inq_cmsg(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	int v = 2;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INQ, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INQ, &v, sizeof(v)), 0);
	v = 0;
	socklen_t vl = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INQ, &v, &vl), 0);
	assert_int_equal(v, 1);
	static uint8_t data[3000], got[3000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 65535, data, 1460);
	tw_expect_seg(t, &conn, TW_ACK, 0, 1460, 0); /* quick ACKs at the start */
	tw_peer_send(t, &conn, 1460, 0, TW_ACK, 65535, data + 1460, 1540);
	tw_expect_seg(t, &conn, TW_ACK, 0, 3000, 0);
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
	struct iovec iov[2] = { { got, 400 }, { got + 400, 600 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, 0), 1000);
	assert_memory_equal(got, data, 1000); /* across both iovecs, in order */
	assert_int_equal(m.msg_flags, 0);
	assert_int_equal(m.msg_controllen, CMSG_SPACE(sizeof(int)));
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	assert_non_null(c);
	assert_int_equal(c->cmsg_level, SOL_TCP);
	assert_int_equal(c->cmsg_type, TCP_CM_INQ);
	int inq;
	memcpy(&inq, CMSG_DATA(c), sizeof(inq));
	assert_int_equal(inq, 2000);
	/* no room for the message: the data still comes, flagged MSG_CTRUNC */
	iov[0] = (struct iovec){ got, 500 };
	m = (struct msghdr){ .msg_iov = iov, .msg_iovlen = 1 };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, 0), 500);
	assert_int_equal(m.msg_flags, MSG_CTRUNC);
	assert_int_equal(m.msg_controllen, 0);
	/* the rest, then the FIN: nothing left but the end of the stream, which reads as 1 */
	tw_peer_send(t, &conn, 3000, 0, TW_ACK | TW_FIN, 65535, NULL, 0);
	tw_advance(t, 40); /* the FIN's ACK is a delayed one */
	tw_expect_seg(t, &conn, TW_ACK, 0, 3001, 0);
	iov[0] = (struct iovec){ got, sizeof(got) };
	m = (struct msghdr){ .msg_iov = iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, 0), 1500);
	assert_memory_equal(got, data + 1500, 1500);
	memcpy(&inq, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(inq));
	assert_int_equal(inq, 1);
	assert_int_equal(ustack_recv(t->st, conn.fd, got, sizeof(got), 0), 0);
}

/* RTT samples as tcp_clean_rtx_queue takes them: on every ACK, from the send time of the
 * oldest data it newly covers, never from retransmitted data (Karn) — so SRTT follows a
 * queue building up, without timestamps too. */
static void test_rtt_sample_per_ack(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rtt, 1); /* the handshake's, in the same instant */
	static uint8_t buf[4 * 1460];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < 4; i++)
		(void)tw_expect_tcp(t);
	tw_advance(t, 10);
	tw_peer_send(t, &conn, 0, 1460, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rtt, 1251); /* 1 − 1/8 + 10000/8 */
	tw_advance(t, 10);
	tw_peer_send(t, &conn, 0, 2920, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rtt, 3595); /* 1251 − 156 + 20000/8: the second segment waited longer */
	/* the rest is lost; the RTO resends the head, and its ACK is no sample */
	for (int ms = 0; ms < 5000 && t->count == 0; ms++)
		tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK, 2920, 0, 1460);
	tw_peer_send(t, &conn, 0, 4380, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rtt, 3595);
}

/* TCP_INFO's chronographs (tcp_chrono_start/stop): busy while data waits or flies, and of
 * that, how long the peer's window held it back. */
static void test_chrono_busy_and_rwnd_limited(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 0, NULL, 0); /* the peer shuts its window */
	struct ustack_tcp_info ti;
	socklen_t len = sizeof(ti);
	static uint8_t buf[1000];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), 1000);
	tw_expect_none(t);
	tw_advance(t, 100);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rwnd_limited, 100000);
	assert_int_equal(ti.tcpi_busy_time, 100000);
	tw_peer_send(t, &conn, 0, 0, TW_ACK, 2000, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 1000);
	tw_advance(t, 30);
	tw_peer_send(t, &conn, 0, 1000, TW_ACK, 2000, NULL, 0);
	tw_advance(t, 50); /* idle: nothing counts */
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_rwnd_limited, 100000);
	assert_int_equal(ti.tcpi_busy_time, 130000);
	assert_int_equal(ti.tcpi_sndbuf_limited, 0);
}

/* tcp_cwnd_validate / tcp_is_cwnd_limited: an application that sent a full initial window
 * and nothing more still doubles cwnd in slow start — it grows while below twice the most
 * that was in flight — and no further. */
static void test_slow_start_app_limited(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[10 * 1460];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < 10; i++)
		(void)tw_expect_tcp(t);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	for (uint32_t k = 1; k <= 5; k++) {
		tw_advance(t, 5);
		tw_peer_send(t, &conn, 0, k * 2 * 1460, TW_ACK, 65535, NULL, 0);
		assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		assert_int_equal(ti.tcpi_snd_cwnd, 10 + 2 * k);
	}
	/* a second round with only two segments in flight: 20 ≥ 2 × 2, no growth */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 2 * 1460, 0), 2 * 1460);
	(void)tw_expect_tcp(t);
	(void)tw_expect_tcp(t);
	tw_advance(t, 5);
	tw_peer_send(t, &conn, 0, 12 * 1460, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_snd_cwnd, 20);
}

/* tcp_slow_start_after_idle_check (RFC 5681 §4.1): a write after more than an RTO of
 * idleness finds the window halved per RTO idle, never below min(cwnd, 10), ssthresh at least
 * three quarters of what it was (still unbounded here: no loss yet); with
 * net.ipv4.tcp_slow_start_after_idle=0 nothing changes. */
static void test_slow_start_after_idle(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[20 * 1460];
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	for (int round = 0; round < 2; round++) {
		/* a window of 10, fully used and acknowledged: cwnd 20 */
		uint32_t base = (uint32_t)round * (10 * 1460 + 1); /* round 0 ended with one more byte */
		assert_int_equal(ustack_send(t->st, conn.fd, buf, 10 * 1460, 0), 10 * 1460);
		for (int i = 0; i < 10; i++)
			(void)tw_expect_tcp(t);
		tw_advance(t, 5);
		tw_peer_send(t, &conn, 0, base + 10 * 1460, TW_ACK, 65535, NULL, 0);
		assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		if (round == 0) {
			assert_int_equal(ti.tcpi_snd_cwnd, 20);
			tw_advance(t, 3000); /* idle for many RTOs */
			assert_int_equal(ustack_send(t->st, conn.fd, buf, 1, 0), 1);
			(void)tw_expect_tcp(t);
			assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
			assert_int_equal(ti.tcpi_snd_cwnd, 10);
			assert_int_equal(ti.tcpi_snd_ssthresh, 0x7fffffff); /* max(ssthresh, ¾ cwnd) */
			tw_peer_send(t, &conn, 0, base + 10 * 1460 + 1, TW_ACK, 65535, NULL, 0);
		}
	}
	/* with the sysctl off, the window outlives the idleness */
	tw_sysctl(t, "net.ipv4.tcp_slow_start_after_idle", "0");
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	uint32_t cwnd = ti.tcpi_snd_cwnd;
	tw_advance(t, 3000);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 1, 0), 1);
	(void)tw_expect_tcp(t);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_snd_cwnd, cwnd);
}

/* RACK (RFC 8985): one segment SACKed above three holes is not yet the duplicate threshold,
 * so RACK waits a reordering window (a quarter of the 40 ms minimum RTT) past an RTT since the
 * holes were sent, then marks them lost: recovery starts from the reordering timer, and PRR
 * lets one retransmission go for the one segment delivered. */
static void test_rack_reorder_timer(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 40); /* a 40 ms path */
	const uint32_t M = 1448;
	static uint8_t buf[4 * 1448];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < 4; i++)
		(void)tw_expect_tcp(t);
	tw_advance(t, 40);
	peer_sack(t, 0, (const uint32_t[][2]){ { 3 * M, 4 * M } }, 1);
	tw_expect_none(t); /* within the reordering window */
	tw_advance(t, 11);
	tw_expect_none(t);
	tw_advance(t, 1); /* RTT 40 + window 10 + the timer's 2 ms slack */
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, M);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPSackRecovery"), 1);
	struct ustack_tcp_info uti;
	socklen_t ulen = sizeof(uti);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_INFO, &uti, &ulen), 0);
	assert_int_equal(uti.tcpi_ca_state, TCP_CA_Recovery);
	assert_int_equal(uti.tcpi_lost, 3);
	assert_int_equal(uti.tcpi_snd_cwnd, 1);
	/* the head's ACK: nothing is in flight, so PRR's slow-start bound applies (PRR-SSRB): what
	 * was delivered and one more, since snd_una moved — the two remaining holes */
	peer_sack(t, M, (const uint32_t[][2]){ { 3 * M, 4 * M } }, 1);
	tw_expect_seg(t, &conn, TW_ACK, M, 0, M);
	tw_expect_seg(t, &conn, TW_ACK, 2 * M, 0, M);
	tw_expect_none(t);
}

/* A MSG_ZEROCOPY write pins its pages, at most MAX_SKB_FRAGS (17) to an skb: eighteen 1-byte
 * iovecs on eighteen pages make an skb of 17 bytes, pushed (PSH) when full, and one of 1 byte,
 * which Nagle holds until the first is acknowledged (zerocopy/maxfrags.pkt, which passes on
 * 6.18.44); the same iovecs copied make one segment, and contiguous bytes of one page are one
 * fragment. */
static void test_msg_zerocopy_17_frags(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)), 0);
	static uint8_t pages[19 * 4096] __attribute__((aligned(4096)));
	struct iovec iov[18];
	for (int i = 0; i < 18; i++)
		iov[i] = (struct iovec){ pages + 4096 * i + 100, 1 };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 18 };
	assert_int_equal(ustack_sendmsg(t->st, conn.fd, &m, 0), 18); /* copied: one skb */
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 18);
	tw_peer_send(t, &conn, 0, 18, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_sendmsg(t->st, conn.fd, &m, MSG_ZEROCOPY), 18);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 18, 0, 17);
	tw_expect_none(t); /* Nagle: a small segment is out */
	tw_peer_send(t, &conn, 0, 35, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 35, 0, 1);
	tw_peer_send(t, &conn, 0, 36, TW_ACK, 65535, NULL, 0);
	/* one page, contiguous: one fragment, however long */
	struct iovec two[2] = { { pages, 1000 }, { pages + 1000, 1000 } };
	struct msghdr m2 = { .msg_iov = two, .msg_iovlen = 2 };
	assert_int_equal(ustack_sendmsg(t->st, conn.fd, &m2, MSG_ZEROCOPY), 2000);
	tw_expect_seg(t, &conn, TW_ACK, 36, 0, 1460);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1496, 0, 540);
}

/* MSG_ZEROCOPY: each send takes an id; once the peer has all of a send's data its id goes on
 * the error queue (consecutive ones merged), POLLERR says so, and recvmsg(MSG_ERRQUEUE) reads
 * it as IP_RECVERR with SO_EE_ORIGIN_ZEROCOPY — "copied", since ustack always copies. */
static void test_msg_zerocopy_notifications(void **state)
{
	struct tw *t = *state;
	accept_conn(t);
	static uint8_t buf[2000];
	int v = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), 0);
	v = 2;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_ZEROCOPY, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	/* without SO_ZEROCOPY the flag is ignored, as Linux ignores it */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 100, MSG_ZEROCOPY), 100);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 100);
	tw_peer_send(t, &conn, 0, 100, TW_ACK, 65535, NULL, 0);
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in))]; } ctl;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, MSG_ERRQUEUE), -1);
	assert_int_equal(errno, EAGAIN);
	v = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_ZEROCOPY, &v, sizeof(v)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 1000, MSG_ZEROCOPY), 1000);
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 0, MSG_ZEROCOPY), 0); /* no data: no id */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 1000, MSG_ZEROCOPY), 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 100, 0, 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1100, 0, 1000);
	struct pollfd pfd = { .fd = conn.fd, .events = POLLOUT };
	assert_int_equal(ustack_poll(t->st, &pfd, 1, 0), 1);
	assert_int_equal(pfd.revents, POLLOUT); /* nothing completed yet */
	tw_peer_send(t, &conn, 0, 1100, TW_ACK, 65535, NULL, 0);
	tw_peer_send(t, &conn, 0, 2100, TW_ACK, 65535, NULL, 0);
	assert_int_equal(ustack_poll(t->st, &pfd, 1, 0), 1);
	assert_int_equal(pfd.revents, POLLOUT | POLLERR);
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, MSG_ERRQUEUE), 0);
	assert_int_equal(m.msg_flags, MSG_ERRQUEUE);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	assert_non_null(c);
	assert_int_equal(c->cmsg_level, SOL_IP);
	assert_int_equal(c->cmsg_type, IP_RECVERR);
	struct sock_extended_err ee;
	memcpy(&ee, CMSG_DATA(c), sizeof(ee));
	assert_int_equal(ee.ee_errno, 0);
	assert_int_equal(ee.ee_origin, SO_EE_ORIGIN_ZEROCOPY);
	assert_int_equal(ee.ee_code, SO_EE_CODE_ZEROCOPY_COPIED);
	assert_int_equal(ee.ee_info, 0); /* ids 0 and 1, in one notification */
	assert_int_equal(ee.ee_data, 1);
	assert_int_equal(ustack_poll(t->st, &pfd, 1, 0), 1);
	assert_int_equal(pfd.revents, POLLOUT);
	/* the next id is 2; a control buffer too small for the message truncates it */
	assert_int_equal(ustack_send(t->st, conn.fd, buf, 10, MSG_ZEROCOPY), 10);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 2100, 0, 10);
	tw_peer_send(t, &conn, 0, 2110, TW_ACK, 65535, NULL, 0);
	m = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, MSG_ERRQUEUE), 0);
	assert_int_equal(m.msg_flags, MSG_ERRQUEUE | MSG_CTRUNC);
}

/* The handshake's last ACK may carry data and a FIN (tcp_child_process): the new socket
 * queues them, acknowledges both, and accept() returns a connection that reads them. */
static void test_data_on_final_ack(void **state)
{
	struct tw *t = *state;
	int lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	assert_int_equal(ustack_bind(t->st, lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460);
	tw_send(t, f, tw_tcp(f, PEER, PORT, 1000, 0, TW_SYN, 65535, mss.b, mss.len));
	conn = (struct tw_conn){ .lfd = lfd, .iss = tw_expect_tcp(t).seq, .peer_isn = 1000, .port = PORT,
				 .peer_port = PEER };
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_FIN, 65535, "hello", 5);
	tw_advance(t, 40); /* the FIN's ACK is a delayed one (tcp_fin: pingpong) */
	tw_expect_seg(t, &conn, TW_ACK, 0, 6, 0); /* data and FIN */
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	char buf[16];
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), 0), 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE_WAIT);
}

/* RACK finds a lost retransmission: once data retransmitted later than it is SACKed, an RTT
 * on, the earlier retransmission counts lost and goes a third time — no RTO needed. */
static void test_rack_lost_retransmission(void **state)
{
	struct tw *t = *state;
	accept_sack_ts_conn(t, 40);
	const uint32_t M = 1448;
	static uint8_t buf[4 * 1448];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < 4; i++)
		(void)tw_expect_tcp(t);
	tw_advance(t, 40);
	peer_sack(t, 0, (const uint32_t[][2]){ { 3 * M, 4 * M } }, 1);
	tw_advance(t, 12); /* the reordering timer: segment 0 again, at 92 ms */
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, M);
	tw_expect_none(t);
	/* the original segment 1 arrives: one delivered, so PRR sends the next hole (at 132 ms) */
	tw_advance(t, 40);
	peer_sack(t, 0, (const uint32_t[][2]){ { M, 2 * M }, { 3 * M, 4 * M } }, 2);
	tw_expect_seg(t, &conn, TW_ACK, 2 * M, 0, M);
	tw_expect_none(t);
	/* that retransmission is SACKed an RTT later: segment 0's, sent 40 ms before it, is lost */
	tw_advance(t, 40);
	peer_sack(t, 0, (const uint32_t[][2]){ { M, 2 * M }, { 2 * M, 4 * M } }, 2);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, M);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_segmentation_nagle_minshall),
		T(test_peer_window_limits_and_zero_window_probe),
		T(test_blocked_writer_wakes_at_a_third_free),
		T(test_ooo_data_grows_rcvbuf),
		T(test_quickack_then_delayed_ack),
		T(test_pingpong_delays_acks),
		T(test_limited_transmit_without_sack),
		T(test_fast_retransmit_on_three_dupacks),
		T(test_out_of_order_data_and_sack_blocks),
		T(test_sack_blocks_shorten_data_segments),
		T(test_paws_drops_old_timestamps),
		T(test_rfc5961_rst_and_syn),
	T(test_unacceptable_ack_keeps_ts_recent),
		T(test_passive_close),
		T(test_active_close_time_wait),
		T(test_close_with_unread_data_resets),
		T(test_linger_zero_resets),
		T(test_rto_go_back_n),
		T(test_time_wait_reuse),
		T(test_time_wait_and_shared_port_state),
		T(test_time_wait_syn_reopens),
		T(test_time_wait_rst),
		T(test_time_wait_rfc1337),
		T(test_time_wait_paws),
		T(test_time_wait_overflow),
		T(test_fin_wait2_orphan),
		T(test_fin_wait2_orphan_data_and_timeout),
		T(test_fin_wait2_duplicate_and_syn_fin),
		T(test_sack_recovery_rfc6675),
		T(test_tail_loss_probe),
		T(test_simultaneous_close),
		T(test_notsent_lowat),
		T(test_cork_and_msg_more),
		T(test_skb_boundaries_eor_and_psh),
		T(test_tcp_inq_cmsg),
		T(test_rtt_sample_per_ack),
		T(test_chrono_busy_and_rwnd_limited),
		T(test_slow_start_app_limited),
		T(test_slow_start_after_idle),
		T(test_rack_reorder_timer),
		T(test_rack_lost_retransmission),
		T(test_msg_zerocopy_notifications),
		T(test_msg_zerocopy_17_frags),
		T(test_data_on_final_ack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
