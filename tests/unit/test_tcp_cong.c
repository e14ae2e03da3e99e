/*
 * Congestion control in isolation: a socket's window driven by simulated rounds of ACKs in
 * virtual time, checked against the shapes RFC 9438 (CUBIC) and RFC 5681 (Reno) prescribe.
 */
#include "testwire.h"
#include "tcp/tcp.h"

#include <string.h>

#define RTT_MS 100

/* One round trip: every segment of the window is ACKed, one ACK per segment. */
static void one_rtt(struct tw *t, struct sock *sk)
{
	uint32_t acks = sk->cwnd;
	for (uint32_t i = 0; i < acks; i++)
		tcp_cong_on_ack(t->st, sk, 1);
	tw_advance(t, RTT_MS);
}

static void setup_sock(struct tw *t, struct sock *sk, const char *cc)
{
	memset(sk, 0, sizeof(*sk));
	sk->ca_ops = tcp_cong_find(cc);
	assert_non_null(sk->ca_ops);
	sk->ca_ops->init(t->st, sk);
	sk->rtt_min_us = RTT_MS * 1000;
	sk->cubic.delay_min_us = RTT_MS * 1000; /* as cubictcp_acked would have it */
	sk->cwnd = 100;
	sk->ssthresh = 0x7fffffff;
}

static void test_cubic_reduction_and_regrowth(void **state)
{
	struct tw *t = *state;
	struct sock sk;
	setup_sock(t, &sk, "cubic");
	/* a loss at 100 segments: β = 717/1024 */
	sk.ssthresh = sk.ca_ops->ssthresh(t->st, &sk);
	assert_int_equal(sk.ssthresh, 70);
	assert_int_equal(sk.cubic.last_max_cwnd, 100);
	sk.cwnd = sk.ssthresh;
	/* W(t) = C·(t − K)³ + W_max with K = ∛((W_max − cwnd)/C) = ∛(30 / 0.4) ≈ 4.22 s, t
	 * counted from the reduction plus one RTT: concave back towards W_max, a plateau
	 * around K, then convex probing beyond.  cwnd follows W a little behind. */
	uint32_t cw[101];
	cw[0] = sk.cwnd;
	for (int r = 1; r <= 100; r++) {
		one_rtt(t, &sk);
		cw[r] = sk.cwnd;
	}
	assert_in_range(cw[10], 84, 89);   /* W(1.1 s) ≈ 87.9 */
	assert_in_range(cw[20], 93, 97);   /* W(2.1 s) ≈ 96.2 */
	assert_in_range(cw[42], 99, 101);  /* W(K) = W_max */
	assert_in_range(cw[60], 101, 104); /* W(6.1 s) ≈ 102.7 */
	assert_in_range(cw[100], 160, 182); /* W(10.1 s) ≈ 181 */
	assert_true(cw[10] - cw[0] > cw[40] - cw[30]); /* concave before K ... */
	assert_true(cw[100] - cw[90] > cw[60] - cw[50]); /* ... convex after */
	/* a second loss below the old W_max: fast convergence remembers less */
	sk.cwnd = 90;
	sk.ssthresh = sk.ca_ops->ssthresh(t->st, &sk);
	assert_int_equal(sk.cubic.last_max_cwnd, 90 * (1024 + 717) / 2048);
	assert_int_equal(sk.ssthresh, 90 * 717 / 1024);
}

static void test_cubic_is_tcp_friendly_at_small_windows(void **state)
{
	struct tw *t = *state;
	struct sock sk;
	setup_sock(t, &sk, "cubic");
	sk.cwnd = 4;
	sk.ssthresh = 4;
	sk.cubic.last_max_cwnd = 5;
	/* with W_max close above, the cubic curve is flat for seconds; the Reno estimate must
	 * still add about one segment per RTT (RFC 9438 §4.3) */
	for (int r = 0; r < 20; r++)
		one_rtt(t, &sk);
	assert_true(sk.cwnd >= 14);
}

static void test_reno_one_segment_per_rtt(void **state)
{
	struct tw *t = *state;
	struct sock sk;
	setup_sock(t, &sk, "reno");
	sk.ssthresh = sk.ca_ops->ssthresh(t->st, &sk);
	assert_int_equal(sk.ssthresh, 50); /* halved */
	sk.cwnd = 50;
	for (int r = 0; r < 10; r++)
		one_rtt(t, &sk);
	assert_int_equal(sk.cwnd, 60);
}

static void test_slow_start_stops_at_ssthresh(void **state)
{
	struct tw *t = *state;
	struct sock sk;
	setup_sock(t, &sk, "reno");
	sk.cwnd = 10;
	sk.ssthresh = 25;
	one_rtt(t, &sk); /* 10 ACKs: 10 → 20 */
	assert_int_equal(sk.cwnd, 20);
	tcp_cong_on_ack(t->st, &sk, 8); /* 5 to ssthresh, the other 3 count towards avoidance */
	assert_int_equal(sk.cwnd, 25);
	assert_int_equal(sk.cwnd_cnt, 3);
}

/* HyStart's delay detector (cubictcp_acked → hystart_update): a round of RTTs 20% above the
 * least one seen ends slow start once eight samples are in — ssthresh = cwnd, counted as
 * Linux counts it — but not below 16 segments, and not when the RTT only falls; a timeout
 * forgets it all (cubictcp_state(TCP_CA_Loss)), so slow start may exit again. */
static void test_hystart_delay_exit(void **state)
{
	struct tw *t = *state;
	struct sock sk;
	setup_sock(t, &sk, "cubic");
	sk.cubic.delay_min_us = 0;
	sk.cwnd = 10;
	sk.snd_una = 1;
	sk.snd_max = 10001;
	sk.ca_ops->pkts_acked(t->st, &sk, 100000); /* round one: 100 ms; cwnd 10 < 16: no test */
	assert_int_equal(sk.cubic.delay_min_us, 100000);
	sk.cwnd = 20;
	sk.snd_una = 10002; /* past the round's end: a new round */
	sk.snd_max = 30001;
	for (int i = 0; i < 8; i++)
		sk.ca_ops->pkts_acked(t->st, &sk, 120000);
	assert_int_equal(sk.ssthresh, 0x7fffffff); /* eight samples: none tested yet */
	sk.ca_ops->pkts_acked(t->st, &sk, 120000); /* 120 ms > 100 + max(12.5, 4) ms */
	assert_int_equal(sk.ssthresh, 20);
	assert_int_equal(tw_counter(t, "TcpExtTCPHystartDelayDetect"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPHystartDelayCwnd"), 20);
	assert_int_equal(tw_counter(t, "TcpExtTCPHystartTrainDetect"), 0);
	/* a timeout: CUBIC's state and HyStart's go (delay_min too) */
	sk.ca_ops->set_loss(t->st, &sk);
	assert_int_equal(sk.cubic.delay_min_us, 0);
	assert_int_equal(sk.cubic.found, 0);
	/* falling RTTs never exit */
	sk.ssthresh = 0x7fffffff;
	sk.ca_ops->pkts_acked(t->st, &sk, 50000);
	sk.snd_una = 30002;
	sk.snd_max = 50001;
	for (int i = 0; i < 12; i++)
		sk.ca_ops->pkts_acked(t->st, &sk, 50000 - (uint32_t)i * 1000);
	assert_int_equal(sk.ssthresh, 0x7fffffff);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cubic_reduction_and_regrowth),
		T(test_cubic_is_tcp_friendly_at_small_windows),
		T(test_reno_one_segment_per_rtt),
		T(test_slow_start_stops_at_ssthresh),
		T(test_hystart_delay_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
