/*
 * What a hostile or broken peer can send an established connection, and what ustack must do
 * with it — as Linux does, and never more work or memory than the receive buffer allows:
 * overlapping and scattered out-of-order data (tcp_data_queue_ofo, tcp_prune_ofo_queue), a
 * tiny or zero MSS (tcp_min_snd_mss), floods of out-of-window segments (tcp_oow_rate_limited),
 * segments without the timestamps the connection agreed on (RFC 7323 §3.2), and segments in
 * link-layer broadcast frames (tcp_v4_rcv's PACKET_HOST check).
 *
 * The peer opens the connection (port 40000, ISN 1000) to a DUT listener on port 80.
 */
#include "testwire.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/socket.h>
#include <ustack/trace.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>

#define PORT 80

static struct tw_conn conn;

/* The connection most tests use: MSS 1460 and SACK permitted, no timestamps. */
static void accept_sack_conn(struct tw *t)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_accept_conn(t, &conn, PORT, o.b, o.len);
}

/* The peer's byte at relative sequence k: the same value whichever segment carries it. */
static uint8_t pattern(uint32_t k) { return (uint8_t)(k * 7 + 3); }

static void peer_data(struct tw *t, uint32_t rseq, uint32_t len, const struct tw_opts *o)
{
	static uint8_t d[1500];
	for (uint32_t i = 0; i < len; i++)
		d[i] = pattern(rseq + i);
	tw_peer_send_opts(t, &conn, o, rseq, 0, TW_ACK, 65535, d, len);
}

/* Forgets what the DUT sent (tests that send thousands of segments). */
static void drain(struct tw *t)
{
	t->head = t->count = 0;
}

/* The ACK the DUT sent last, taken apart; its SACK blocks relative to the peer's ISN + 1. */
struct ack_seen {
	uint32_t rack;
	unsigned nsack;
	uint32_t sack[4][2];
};

static struct ack_seen last_ack(struct tw *t)
{
	assert_true(t->count > 0);
	while (t->count > 1) {
		t->head = (t->head + 1) % TW_MAX_FRAMES;
		t->count--;
	}
	struct tw_seg s = tw_expect_tcp(t);
	struct ack_seen a = { .rack = s.ack - tw_peer_seq(&conn, 0) };
	assert_int_equal(s.flags, TW_ACK);
	size_t n = 0;
	const uint8_t *sack = tw_seg_opt(&s, TW_OPT_SACK, &n);
	for (size_t b = 0; sack && b + 8 <= n && a.nsack < 4; b += 8, a.nsack++) {
		a.sack[a.nsack][0] = tw_rd32(sack + b) - tw_peer_seq(&conn, 0);
		a.sack[a.nsack][1] = tw_rd32(sack + b + 4) - tw_peer_seq(&conn, 0);
	}
	return a;
}

static void expect_readable(struct tw *t, uint32_t from, uint32_t n)
{
	static uint8_t buf[1 << 16];
	assert_true(n <= sizeof(buf));
	ssize_t got = ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0);
	assert_int_equal(got, n);
	for (uint32_t i = 0; i < n; i++)
		if (buf[i] != pattern(from + i))
			fail_msg("byte %u: %u, want %u", from + i, buf[i], pattern(from + i));
}

static uint32_t ofo_runs(struct tw *t)
{
	stack_lock(t->st);
	struct sock *sk = sock_lookup_fd(t->st, conn.fd);
	uint32_t n = sk->ofo_runs;
	stack_unlock(t->st);
	return n;
}

/*
 * 135 segments of 1448 bytes starting at rcv_nxt+1, +2, … hold only 1,582 distinct bytes.
 * Linux trims and merges them (tcp_data_queue_ofo); they used to be stored whole and counted
 * again until the out-of-order queue filled the buffer and the byte that fills the hole was
 * refused for good.  Now: one run, one SACK block growing by a byte per segment, and the
 * hole's byte makes all 1,583 readable.  Each segment after the first also brings 1447
 * bytes again: Linux D-SACKs them (tcp_dsack_set for the partial overlap, RFC 2883), in the
 * first block, ahead of the run's.
 */
static void test_overlapping_ofo_is_merged(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	for (uint32_t i = 1; i <= 135; i++) {
		peer_data(t, i, 1448, NULL);
		struct ack_seen a = last_ack(t);
		assert_int_equal(a.rack, 0);
		assert_int_equal(a.nsack, i == 1 ? 1 : 2);
		if (i > 1) { /* the D-SACK: [i, the run's end before this segment) */
			assert_int_equal(a.sack[0][0], i);
			assert_int_equal(a.sack[0][1], i - 1 + 1448);
		}
		assert_int_equal(a.sack[a.nsack - 1][0], 1);
		assert_int_equal(a.sack[a.nsack - 1][1], i + 1448);
	}
	assert_int_equal(tw_counter(t, "TcpExtTCPDSACKOfoSent"), 134);
	assert_int_equal(ofo_runs(t), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFOQueue"), 135);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFODrop"), 0);
	/* a segment inside what is held: nothing new (TCPOFOMerge), D-SACKed whole, same block */
	peer_data(t, 100, 500, NULL);
	struct ack_seen a = last_ack(t);
	assert_int_equal(a.nsack, 2);
	assert_int_equal(a.sack[0][0], 100);
	assert_int_equal(a.sack[0][1], 600);
	assert_int_equal(a.sack[1][1], 135 + 1448);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFOMerge"), 1);
	/* the hole */
	peer_data(t, 0, 1, NULL);
	a = last_ack(t);
	assert_int_equal(a.rack, 1583);
	assert_int_equal(a.nsack, 0);
	expect_readable(t, 0, 1583);
	assert_int_equal(ofo_runs(t), 0);
}

/* RFC 2018 §4 as Linux keeps its blocks (tcp_sack_new_ofo_skb): the block holding the newest
 * segment first, then the others most recent first; at most 4 (3 with timestamps); a segment
 * that bridges two blocks makes one of them; blocks go as rcv_nxt passes them. */
static void test_sack_blocks_most_recent_first(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	peer_data(t, 1000, 100, NULL);
	peer_data(t, 3000, 100, NULL);
	peer_data(t, 2000, 100, NULL);
	struct ack_seen a = last_ack(t);
	assert_int_equal(a.nsack, 3);
	static const uint32_t want1[3][2] = { { 2000, 2100 }, { 3000, 3100 }, { 1000, 1100 } };
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(a.sack[i][0], want1[i][0]);
		assert_int_equal(a.sack[i][1], want1[i][1]);
	}
	peer_data(t, 4000, 100, NULL);
	peer_data(t, 5000, 100, NULL); /* a fifth: the oldest (1000) is no longer reported */
	a = last_ack(t);
	assert_int_equal(a.nsack, 4);
	static const uint32_t want2[4][2] = { { 5000, 5100 }, { 4000, 4100 }, { 2000, 2100 }, { 3000, 3100 } };
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(a.sack[i][0], want2[i][0]);
		assert_int_equal(a.sack[i][1], want2[i][1]);
	}
	/* 2100..3000 bridges two blocks: they become one, first */
	peer_data(t, 2100, 900, NULL);
	a = last_ack(t);
	assert_int_equal(a.nsack, 3);
	assert_int_equal(a.sack[0][0], 2000);
	assert_int_equal(a.sack[0][1], 3100);
	assert_int_equal(a.sack[1][0], 5000);
	assert_int_equal(a.sack[2][0], 4000);
	/* the hole below 1000: rcv_nxt reaches 1100; the blocks above stay */
	peer_data(t, 0, 1000, NULL);
	a = last_ack(t);
	assert_int_equal(a.rack, 1100);
	assert_int_equal(a.nsack, 3);
	expect_readable(t, 0, 1100);
}

/*
 * One-byte segments with one-byte gaps, highest first: each would be a run of its own.  The
 * runs a connection may hold are capped by its receive buffer; past the cap the queue is
 * pruned from the top (TcpExtOfoPruned) as Linux's tcp_prune_ofo_queue does, and a segment
 * that would land above every run is dropped instead (TcpExtTCPOFODrop).  What is kept is
 * still delivered byte-exact once the holes fill.
 */
static void test_scattered_ofo_is_bounded_by_the_buffer(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	stack_lock(t->st);
	struct sock *sk = sock_lookup_fd(t->st, conn.fd);
	stack_unlock(t->st);
	for (uint32_t k = 60001; k >= 3; k -= 2) {
		peer_data(t, k, 1, NULL);
		drain(t);
	}
	assert_true(tw_counter(t, "TcpExtOfoPruned") > 0);
	uint32_t cap = ofo_runs(t);
	assert_true(cap >= 64);
	assert_true((uint64_t)cap * 256 <= sk->rcvq.size); /* a node per 256 bytes of ring at most */
	/* ascending now: each lands above every run; with the queue full they are dropped */
	uint64_t drops = tw_counter(t, "TcpExtTCPOFODrop");
	peer_data(t, 62001, 1, NULL);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFODrop"), drops + 1);
	assert_int_equal(ofo_runs(t), cap);
	/* the holes fill from the bottom: everything up to the first pruned byte arrives */
	peer_data(t, 0, 3, NULL);
	for (uint32_t k = 4; k < 2 * cap + 2; k += 2)
		peer_data(t, k, 1, NULL);
	drain(t);
	peer_data(t, 2 * cap + 2, 0, NULL); /* a bare ACK to see where we are */
	expect_readable(t, 0, 2 * cap + 2);
	assert_int_equal(ofo_runs(t), 0);
}

/* A connection from a peer offering MSS `mss` and timestamps (TSval 5000), no SACK. */
static void accept_mss_ts_conn(struct tw *t, struct tw_conn *c, uint16_t port, uint16_t mss)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, mss);
	tw_opt_ts(&o, 5000, 0);
	tw_accept_conn(t, c, port, o.b, o.len);
}

/* A peer MSS below net.ipv4.tcp_min_snd_mss (48) is floored, 0 is ignored (536), and the
 * timestamp option is taken from what is left: MSS 1 sends 36-byte segments, not 1-byte
 * ones, and MSS 0..11 cannot underflow the effective MSS. */
static void test_peer_mss_floor(void **state)
{
	struct tw *t = *state;
	/* MSS 1, TS: 48 - 12 = 36 */
	accept_mss_ts_conn(t, &conn, PORT, 1);
	int mss = 0;
	socklen_t len = sizeof(mss);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 36);
	static uint8_t buf[100];
	assert_int_equal(ustack_send(t->st, conn.fd, buf, sizeof(buf), 0), 100);
	/* 36 + 36 + 28, all within the initial window, PSH on the write's end */
	for (uint32_t i = 0; i < 3; i++)
		tw_expect_seg(t, &conn, i < 2 ? TW_ACK : TW_ACK | TW_PSH, i * 36, 0, i < 2 ? 36 : 28);
	tw_expect_none(t);
	/* MSS 0 is no MSS: 536 - 12 */
	struct tw_conn c0;
	accept_mss_ts_conn(t, &c0, PORT + 1, 0);
	assert_int_equal(ustack_getsockopt(t->st, c0.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 524);
	/* MSS 11 with timestamps used to underflow to 65535 and send nothing */
	struct tw_conn c11;
	accept_mss_ts_conn(t, &c11, PORT + 2, 11);
	assert_int_equal(ustack_getsockopt(t->st, c11.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 36);
	/* MSS 65535 (no timestamps): the path's 1460, not a clamp of 0 */
	struct tw_opts mssmax = { 0 };
	tw_opt_mss(&mssmax, 65535);
	struct tw_conn cmax;
	tw_accept_conn(t, &cmax, PORT + 4, mssmax.b, mssmax.len);
	assert_int_equal(ustack_getsockopt(t->st, cmax.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 1460);
	/* the floor is a sysctl: 100 */
	tw_sysctl(t, "net.ipv4.tcp_min_snd_mss", "100");
	struct tw_conn c100;
	accept_mss_ts_conn(t, &c100, PORT + 3, 1);
	assert_int_equal(ustack_getsockopt(t->st, c100.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 88);
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.tcp_min_snd_mss", "47"), -1);
	assert_int_equal(errno, EINVAL);
	/* and TCP_MAXSEG below TCP_MIN_MSS (88) is refused, as Linux */
	int v = 87;
	assert_int_equal(ustack_setsockopt(t->st, c100.fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
}

/*
 * Out-of-window segments, as tcp_validate_incoming answers them in Linux 6.18: every one that
 * occupies sequence space (data, FIN) without SYN gets its duplicate ACK — tcp_oow_rate_limited
 * exempts them ("not likely part of an ACK loop"), one ACK per segment is a constant cost —
 * and counts TcpExtBeyondWindow; pure ACKs get at most one per tcp_invalid_ratelimit, the
 * rest counted in TcpExtTCPACKSkippedSeq.  And since 6.17 a segment that starts inside the
 * window but ends past it is refused while unread data waits.
 */
static void test_out_of_window_answers(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	uint64_t sent = t->sent;
	for (uint32_t i = 0; i < 1000; i++) {
		peer_data(t, 1000000 + i * 7919, 100, NULL);
		drain(t);
	}
	assert_int_equal(t->sent - sent, 1000);
	assert_int_equal(tw_counter(t, "TcpExtBeyondWindow"), 1000);
	assert_int_equal(tw_counter(t, "TcpExtTCPACKSkippedSeq"), 0);
	/* pure ACKs far out of window: one ACK, then silence for 500 ms */
	sent = t->sent;
	for (uint32_t i = 0; i < 10; i++)
		peer_data(t, 2000000, 0, NULL);
	assert_int_equal(t->sent - sent, 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPACKSkippedSeq"), 9);
	drain(t);
	tw_advance(t, 499);
	peer_data(t, 2000000, 0, NULL);
	tw_expect_none(t);
	tw_advance(t, 1);
	peer_data(t, 2000000, 0, NULL);
	tw_expect_seg(t, &conn, TW_ACK, 0, 0, 0);
	/* the limit is the sysctl */
	tw_sysctl(t, "net.ipv4.tcp_invalid_ratelimit", "0");
	peer_data(t, 2000000, 0, NULL);
	tw_expect_tcp(t);
	/* unread data, then a segment that starts in the window and ends past it: refused */
	peer_data(t, 0, 100, NULL);
	struct tw_seg s = tw_expect_tcp(t);
	uint32_t right = s.ack - tw_peer_seq(&conn, 0) + s.win; /* the window's right edge, relative */
	uint64_t beyond = tw_counter(t, "TcpExtBeyondWindow");
	peer_data(t, right - 10, 100, NULL);
	assert_int_equal(last_ack(t).rack, 100);
	assert_int_equal(tw_counter(t, "TcpExtBeyondWindow"), beyond + 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFOQueue"), 0);
	/* with the queue read empty, the same segment is taken (out of order) */
	expect_readable(t, 0, 100);
	peer_data(t, right - 10, 100, NULL);
	assert_int_equal(tw_counter(t, "TcpExtTCPOFOQueue"), 1);
}

/*
 * RFC 7323 §3.2 would drop a segment without timestamps on a connection that negotiated them;
 * Linux 6.18 does not (no drop reason, no counter exists for it): PAWS is skipped for it, it
 * is processed, and it does not move ts_recent — our ACKs keep echoing the last timestamp.
 */
static void test_segment_without_timestamps_accepted(void **state)
{
	struct tw *t = *state;
	/* MSS 1460, SACK permitted, TS val 5000 */
	struct tw_opts syn = { 0 };
	tw_opt_mss(&syn, 1460);
	tw_opt_sackok(&syn);
	tw_opt_ts(&syn, 5000, 0);
	tw_accept_conn(t, &conn, PORT, syn.b, syn.len);
	struct tw_opts ts6000 = { 0 };
	tw_opt_ts(&ts6000, 6000, 0);
	peer_data(t, 0, 10, &ts6000);
	tw_expect_seg(t, &conn, TW_ACK, 0, 10, 0);
	/* without timestamps: taken, and the ACK still echoes 6000 */
	peer_data(t, 10, 10, NULL);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK, 0, 20, 0);
	assert_int_equal(s.optlen, 12);
	assert_int_equal(tw_rd32(s.opts + 8), 6000);
	expect_readable(t, 0, 20);
	assert_int_equal(tw_counter(t, "TcpExtPAWSEstab"), 0);
}

/* A FIN ends the stream: data held above it is never delivered (tcp_fin purges the out-of-order
 * queue, as Linux's does), and the ACK covers the data and the FIN, nothing more. */
static void test_fin_below_ofo_data(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	peer_data(t, 10, 10, NULL); /* held out of order: [10, 20) */
	drain(t);
	static uint8_t d[15];
	for (uint32_t i = 0; i < 15; i++)
		d[i] = pattern(i);
	tw_peer_send(t, &conn, 0, 0, TW_ACK | TW_FIN, 65535, d, 15);
	tw_advance(t, 40); /* the FIN's ACK is a delayed one (tcp_fin: pingpong) */
	struct ack_seen a = last_ack(t);
	assert_int_equal(a.rack, 16); /* 15 bytes and the FIN */
	assert_int_equal(a.nsack, 0);
	assert_int_equal(ofo_runs(t), 0);
	expect_readable(t, 0, 15);
	assert_int_equal(ustack_tcp_state(t->st, conn.fd), TCP_CLOSE_WAIT);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	tw_expect_seg(t, &conn, TW_FIN | TW_ACK, 0, 16, 0); /* nothing unread: a FIN, not a RST */
}

/*
 * A retransmission of data already received: Linux's tcp_data_queue counts our lost ACK
 * (TcpExtDelayedACKLost), D-SACKs the duplicate (TcpExtTCPDSACKOldSent) in the next segment
 * only, and sends nothing of the kind with net.ipv4.tcp_dsack=0 or on a connection without
 * SACK.  (tests/packetdrill/scripts/dsack-receiver.pkt checks the bytes against Linux.)
 */
static void test_dsack_for_old_data(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	peer_data(t, 0, 1000, NULL);
	assert_int_equal(last_ack(t).rack, 1000);
	peer_data(t, 0, 1000, NULL);
	struct ack_seen a = last_ack(t);
	assert_int_equal(a.rack, 1000);
	assert_int_equal(a.nsack, 1);
	assert_int_equal(a.sack[0][0], 0);
	assert_int_equal(a.sack[0][1], 1000);
	assert_int_equal(tw_counter(t, "TcpExtDelayedACKLost"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPDSACKOldSent"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPDSACKOfoSent"), 0);
	/* sent once: the next ACK has no block */
	peer_data(t, 1000, 100, NULL);
	a = last_ack(t);
	assert_int_equal(a.rack, 1100);
	assert_int_equal(a.nsack, 0);
	/* switched off: the duplicate is still counted as a lost ACK, without D-SACK */
	tw_sysctl(t, "net.ipv4.tcp_dsack", "0");
	peer_data(t, 1000, 100, NULL);
	a = last_ack(t);
	assert_int_equal(a.rack, 1100);
	assert_int_equal(a.nsack, 0);
	assert_int_equal(tw_counter(t, "TcpExtDelayedACKLost"), 2);
	assert_int_equal(tw_counter(t, "TcpExtTCPDSACKOldSent"), 1);
}

static void test_no_dsack_without_sack(void **state)
{
	struct tw *t = *state;
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_accept_conn(t, &conn, PORT, o.b, o.len);
	peer_data(t, 0, 1000, NULL);
	peer_data(t, 0, 1000, NULL);
	struct ack_seen a = last_ack(t);
	assert_int_equal(a.rack, 1000);
	assert_int_equal(a.nsack, 0);
	assert_int_equal(tw_counter(t, "TcpExtDelayedACKLost"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPDSACKOldSent"), 0);
}

/*
 * A segment that comes in a link-layer broadcast or multicast frame, though addressed to one of
 * our IP addresses: Linux's tcp_v4_rcv drops it first thing (skb->pkt_type != PACKET_HOST),
 * before TcpInSegs — measured on Linux 6.18 with a SYN to a listener in an ff:ff:ff:ff:ff:ff
 * and in a 01:00:5e:00:00:01 frame over a veth: IpInDelivers counted, no TcpInSegs, no
 * IpExtInBcastPkts, no SYN-ACK.  So a reset sent to every station on the link resets nothing.
 */
static const uint8_t MAC_BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MAC_MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };

static int listen_on(struct tw *t, uint16_t port)
{
	int lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	assert_int_equal(ustack_bind(t->st, lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	return lfd;
}

/* A SYN from the peer's port sport to PORT, MSS 1460, in a frame to dst. */
static size_t syn_to(uint8_t *f, uint16_t sport, const uint8_t dst[6])
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	size_t n = tw_tcp(f, sport, PORT, 1000, 0, TW_SYN, 65535, o.b, o.len);
	memcpy(f, dst, 6);
	return n;
}

static void test_syn_in_link_broadcast_frame_dropped(void **state)
{
	struct tw *t = *state;
	listen_on(t, PORT);
	uint8_t f[128];
	tw_send(t, f, syn_to(f, 40001, MAC_BCAST));
	tw_expect_none(t);
	tw_send(t, f, syn_to(f, 40002, MAC_MCAST));
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "IpInDelivers"), 2);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 0);
	assert_int_equal(tw_counter(t, "IpExtInBcastPkts"), 0);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 0);
	/* the same SYN to our MAC address is answered */
	tw_send(t, f, syn_to(f, 40003, TW_DUT_MAC));
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.dport, 40003);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 1);
}

/*
 * A SYN to the subnet's broadcast address in a frame to our MAC address: it is counted and goes
 * on to a listener on INADDR_ANY, whose tcp_v4_conn_request drops it ("never answer to SYNs
 * send to broadcast"), and to a port nobody listens on it gets no reset (not RTN_LOCAL) —
 * measured on Linux 6.18 over a veth: TcpInSegs and TcpExtListenDrops, then TcpInSegs alone.
 */
/* The frame of syn_to sent to daddr:dport instead, both checksums made anew. */
static void readdress(uint8_t *f, size_t n, uint32_t daddr, uint16_t dport)
{
	tw_ip_hdr(f + 14, 6, TW_PEER_IP, daddr, (uint16_t)(n - 14), 0x2222, 0x4000, 64);
	tw_wr16(f + 34 + 2, dport);
	tw_wr16(f + 34 + 16, 0);
	tw_wr16(f + 34 + 16, tw_tcp_csum(f + 34, n - 34, TW_PEER_IP, daddr));
}

/* counts the request sockets made (the inet_reqsk_alloc step) */
static void count_reqsk(void *arg, const struct ustack_trace_event *ev)
{
	if (ev->kind == USTACK_TRACE_STEP && strcmp(ev->name, "inet_reqsk_alloc") == 0)
		++*(int *)arg;
}

static void test_syn_to_ip_broadcast_dropped_by_listener(void **state)
{
	struct tw *t = *state;
	listen_on(t, PORT);
	int reqs = 0;
	int sub = ustack_trace_subscribe(t->st, count_reqsk, &reqs);
	assert_true(sub >= 0);
	uint8_t f[128];
	size_t n = syn_to(f, 40001, TW_DUT_MAC);
	readdress(f, n, 0xc00002ff, PORT); /* to 192.0.2.255 */
	tw_send(t, f, n);
	tw_expect_none(t);
	/* dropped before any request is made: its SYN-ACK could only fail to route */
	assert_int_equal(reqs, 0);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 1);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
	assert_int_equal(tw_counter(t, "IpExtInBcastPkts"), 1);
	/* to a port with no listener: no RST */
	readdress(f, n, 0xc00002ff, PORT + 1);
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 2);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
	assert_int_equal(tw_counter(t, "TcpOutRsts"), 0);
	/* the same SYN to our own address makes one */
	readdress(f, n, TW_DUT_IP, PORT);
	tw_send(t, f, n);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ACK);
	assert_int_equal(reqs, 1);
	ustack_trace_unsubscribe(t->st, sub);
}

static void test_rst_in_link_broadcast_frame_resets_nothing(void **state)
{
	struct tw *t = *state;
	accept_sack_conn(t);
	uint8_t f[128];
	size_t n = tw_tcp(f, conn.peer_port, conn.port, tw_peer_seq(&conn, 0), 0, TW_RST, 0, NULL, 0);
	memcpy(f, MAC_BCAST, 6);
	tw_send(t, f, n);
	tw_expect_none(t);
	/* still established: data is taken and acknowledged */
	peer_data(t, 0, 100, NULL);
	assert_int_equal(last_ack(t).rack, 100);
	expect_readable(t, 0, 100);
	/* the same reset to our MAC address ends it */
	n = tw_tcp(f, conn.peer_port, conn.port, tw_peer_seq(&conn, 100), 0, TW_RST, 0, NULL, 0);
	tw_send(t, f, n);
	uint8_t b[8];
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, ECONNRESET);
}

/*
 * A segment in fragments: the datagram ip_frag_reasm builds is the first fragment's skb grown
 * (inet_frag_reasm_prepare's skb_morph), with its pkt_type — the frame the first fragment came
 * in decides, whatever frame brought the others.
 */
static void send_syn_in_fragments(struct tw *t, uint16_t sport, uint16_t ipid, const uint8_t first_dst[6],
				  const uint8_t second_dst[6])
{
	uint8_t syn[128], f[128];
	size_t seglen = syn_to(syn, sport, TW_DUT_MAC) - 34; /* 24 bytes: the header and MSS */
	const uint8_t *seg = syn + 34;
	/* offset 0, 8 bytes, more to come; then offset 8, the rest */
	tw_eth(f, first_dst, TW_PEER_MAC, 0x0800);
	tw_ip_hdr(f + 14, 6, TW_PEER_IP, TW_DUT_IP, 28, ipid, 0x2000, 64);
	memcpy(f + 34, seg, 8);
	tw_send(t, f, 42);
	tw_eth(f, second_dst, TW_PEER_MAC, 0x0800);
	tw_ip_hdr(f + 14, 6, TW_PEER_IP, TW_DUT_IP, (uint16_t)(20 + seglen - 8), ipid, 1, 64);
	memcpy(f + 34, seg + 8, seglen - 8);
	tw_send(t, f, 34 + seglen - 8);
}

static void test_reassembled_segment_takes_first_fragments_frame(void **state)
{
	struct tw *t = *state;
	listen_on(t, PORT);
	send_syn_in_fragments(t, 40001, 0x100, MAC_BCAST, TW_DUT_MAC);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 1);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 0);
	send_syn_in_fragments(t, 40002, 0x101, TW_DUT_MAC, MAC_BCAST);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.dport, 40002);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 2);
	assert_int_equal(tw_counter(t, "TcpInSegs"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_overlapping_ofo_is_merged),
		T(test_sack_blocks_most_recent_first),
		T(test_scattered_ofo_is_bounded_by_the_buffer),
		T(test_peer_mss_floor),
		T(test_out_of_window_answers),
		T(test_segment_without_timestamps_accepted),
		T(test_fin_below_ofo_data),
		T(test_dsack_for_old_data),
		T(test_no_dsack_without_sack),
		T(test_syn_in_link_broadcast_frame_dropped),
		T(test_syn_to_ip_broadcast_dropped_by_listener),
		T(test_rst_in_link_broadcast_frame_resets_nothing),
		T(test_reassembled_segment_takes_first_fragments_frame),
	};
	return cmocka_run_group_tests_name("tcp_robust", tests, NULL, NULL);
}
