/*
 * Congestion control (Linux's tcp_cong.c, tcp_cubic.c): the algorithm a socket uses is chosen
 * by net.ipv4.tcp_congestion_control or TCP_CONGESTION, as in Linux; "cubic" (the default,
 * RFC 9438) and "reno" (RFC 5681) exist.  Windows count segments, as Linux's snd_cwnd does.
 *
 * Slow start is common to both (tcp_slow_start: one segment per segment ACKed, RFC 5681 §3.1).
 * In congestion avoidance Reno adds one segment per window of ACKs; CUBIC grows towards
 * W(t) = C·(t − K)³ + W_max from the time of the last reduction, never slower than the Reno it
 * would compete with (RFC 9438 §4.3, Linux's tcp_friendliness), and reduces by β = 717/1024
 * (≈ 0.7) instead of ½, remembering a lower W_max when losses come before reaching the old one
 * (fast convergence, §4.7).  A timeout forgets it all (cubictcp_state(TCP_CA_Loss)).
 *
 * HyStart (Linux's hystart_update, both detectors as hystart_detect's default 3): slow start
 * ends before a loss when a round's ACKs keep coming back-to-back for longer than half the
 * minimum delay (an ACK train as long as the path's pipe), or when the least RTT of a round's
 * first eight samples rises more than an eighth of the minimum above it (clamped to 4–16 ms):
 * ssthresh becomes cwnd, and CUBIC's curve takes over from there.  Only above 16 segments.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <math.h>
#include <string.h>

#define CUBIC_BETA 717u         /* /1024: the multiplicative decrease, Linux's default */
#define CUBIC_C 0.4             /* RFC 9438 §5: segments per second³ */
#define CUBIC_BETA_SCALE (8u * (1024u + CUBIC_BETA) / 3u / (1024u - CUBIC_BETA)) /* Reno's rate, ×8 */

/* tcp_cong_avoid_ai: one more segment for every w segments ACKed. */
static void tcp_cong_avoid_ai(struct sock *sk, uint32_t w, uint32_t acked)
{
	if (sk->cwnd_cnt >= w) { /* w shrank since the last step: take it now */
		sk->cwnd_cnt = 0;
		sk->cwnd++;
	}
	sk->cwnd_cnt += acked;
	if (sk->cwnd_cnt >= w) {
		uint32_t delta = sk->cwnd_cnt / w;
		sk->cwnd_cnt -= delta * w;
		sk->cwnd += delta;
	}
}

/* ---- Reno ---- */

static uint32_t reno_ssthresh(struct ustack *st, struct sock *sk)
{
	(void)st;
	return sk->cwnd / 2 > 2 ? sk->cwnd / 2 : 2;
}

static void reno_cong_avoid(struct ustack *st, struct sock *sk, uint32_t acked)
{
	(void)st;
	tcp_cong_avoid_ai(sk, sk->cwnd, acked);
}

static void reno_init(struct ustack *st, struct sock *sk)
{
	(void)st;
	(void)sk;
}

/* ---- CUBIC ---- */

#define HYSTART_ACK_TRAIN 1
#define HYSTART_DELAY 2
#define HYSTART_DETECT (HYSTART_ACK_TRAIN | HYSTART_DELAY) /* hystart_detect's default */
#define HYSTART_LOW_WINDOW 16u      /* hystart_low_window */
#define HYSTART_ACK_DELTA_US 2000u  /* hystart_ack_delta_us */
#define HYSTART_MIN_SAMPLES 8u
#define HYSTART_DELAY_MIN 4000u     /* µs */
#define HYSTART_DELAY_MAX 16000u

/* bictcp_hystart_reset: a new round starts now and ends when what was sent so far is ACKed */
static void hystart_reset(struct ustack *st, struct sock *sk)
{
	struct cubic_state *ca = &sk->cubic;
	ca->round_start_us = ca->last_ack_us = (uint32_t)st->now;
	ca->end_seq = sk->snd_max; /* Linux's snd_nxt, which a timeout does not pull back */
	ca->curr_rtt_us = ~0u;
	ca->sample_cnt = 0;
}

/* bictcp_reset + bictcp_hystart_reset: at the start, and after every timeout */
static void cubic_init(struct ustack *st, struct sock *sk)
{
	memset(&sk->cubic, 0, sizeof(sk->cubic));
	hystart_reset(st, sk);
}

/* hystart_ack_delay: how long a TSO burst takes to leave at the pacing rate, at most 1 ms; the
 * train threshold allows for it.  The rate is tcp_update_pacing_rate's (mss·cwnd/srtt, doubled
 * in slow start). */
static uint32_t hystart_ack_delay(const struct sock *sk)
{
	if (!sk->srtt_us)
		return 0;
	uint64_t rate = (uint64_t)tcp_mss_now(sk) * sk->cwnd * 1000000u / sk->srtt_us * 2u; /* bytes/s */
	if (!rate)
		return 0;
	uint64_t d = 65536ull * 4u * 1000000u / rate;
	return d < 1000u ? (uint32_t)d : 1000u;
}

static void hystart_update(struct ustack *st, struct sock *sk, uint32_t delay)
{
	struct cubic_state *ca = &sk->cubic;
	if (after(sk->snd_una, ca->end_seq))
		hystart_reset(st, sk);
	if (sk->cwnd < HYSTART_LOW_WINDOW)
		return;
	if (HYSTART_DETECT & HYSTART_ACK_TRAIN) {
		uint32_t now = (uint32_t)st->now;
		if ((int32_t)(now - ca->last_ack_us) <= (int32_t)HYSTART_ACK_DELTA_US) {
			ca->last_ack_us = now;
			/* unpaced (ustack paces nothing: SK_PACING_NONE): half, as ACKs come in bursts */
			uint32_t threshold = (ca->delay_min_us + hystart_ack_delay(sk)) >> 1;
			if ((int32_t)(now - ca->round_start_us) > (int32_t)threshold) {
				ca->found = 1;
				MIB_INC(st, TcpExtTCPHystartTrainDetect);
				MIB_ADD(st, TcpExtTCPHystartTrainCwnd, sk->cwnd);
				sk->ssthresh = sk->cwnd;
			}
		}
	}
	if (HYSTART_DETECT & HYSTART_DELAY) {
		if (ca->curr_rtt_us > delay)
			ca->curr_rtt_us = delay;
		if (ca->sample_cnt < HYSTART_MIN_SAMPLES) {
			ca->sample_cnt++;
		} else {
			uint32_t thresh = ca->delay_min_us >> 3;
			thresh = thresh < HYSTART_DELAY_MIN ? HYSTART_DELAY_MIN : thresh > HYSTART_DELAY_MAX ? HYSTART_DELAY_MAX : thresh;
			if (ca->curr_rtt_us > ca->delay_min_us + thresh) {
				ca->found = 1;
				MIB_INC(st, TcpExtTCPHystartDelayDetect);
				MIB_ADD(st, TcpExtTCPHystartDelayCwnd, sk->cwnd);
				sk->ssthresh = sk->cwnd;
			}
		}
	}
}

/* cubictcp_acked: the least delay since the last loss (not in the second after a reduction,
 * while queues drain), and HyStart while in slow start */
static void cubic_pkts_acked(struct ustack *st, struct sock *sk, int32_t rtt_us)
{
	struct cubic_state *ca = &sk->cubic;
	if (rtt_us < 0)
		return;
	if (ca->epoch_start_ms && (int32_t)(tcp_clock_ms(st) - ca->epoch_start_ms) < 1000)
		return;
	uint32_t delay = rtt_us ? (uint32_t)rtt_us : 1u;
	if (!ca->delay_min_us || ca->delay_min_us > delay)
		ca->delay_min_us = delay;
	if (!ca->found && sk->cwnd < sk->ssthresh)
		hystart_update(st, sk, delay);
}

static void cubic_set_loss(struct ustack *st, struct sock *sk)
{
	cubic_init(st, sk);
}

static uint32_t cubic_ssthresh(struct ustack *st, struct sock *sk)
{
	(void)st;
	struct cubic_state *ca = &sk->cubic;
	ca->epoch_start_ms = 0;
	if (sk->cwnd < ca->last_max_cwnd) /* fast convergence: release bandwidth sooner */
		ca->last_max_cwnd = sk->cwnd * (1024u + CUBIC_BETA) / (2u * 1024u);
	else
		ca->last_max_cwnd = sk->cwnd;
	uint32_t s = sk->cwnd * CUBIC_BETA / 1024u;
	return s > 2 ? s : 2;
}

/* bictcp_update: how many segments must be ACKed for cwnd to grow by one (ca->cnt). */
static void cubic_update(struct ustack *st, struct sock *sk, uint32_t acked)
{
	struct cubic_state *ca = &sk->cubic;
	uint32_t now = tcp_clock_ms(st);
	uint32_t cwnd = sk->cwnd;
	if (!now)
		now = 1; /* 0 means "no epoch" */
	ca->ack_cnt += acked;
	/* bictcp_update recomputes only when cwnd changed or HZ/32 (31 ms here) went by, and the
	 * curve at most once per tick (a reduction zeroes the epoch, forcing it) */
	if (ca->last_cwnd == cwnd && (int32_t)(now - ca->last_time_ms) <= 31)
		return;
	uint32_t cnt = ca->cnt;
	if (ca->epoch_start_ms && now == ca->last_time_ms)
		goto tcp_friendliness;
	ca->last_cwnd = cwnd;
	ca->last_time_ms = now;
	if (!ca->epoch_start_ms) {
		ca->epoch_start_ms = now;
		ca->ack_cnt = acked;
		ca->tcp_cwnd = cwnd;
		if (ca->last_max_cwnd <= cwnd) {
			ca->k_ms = 0;
			ca->origin_point = cwnd;
		} else {
			ca->k_ms = (uint32_t)(cbrt((double)(ca->last_max_cwnd - cwnd) / CUBIC_C) * 1000.0);
			ca->origin_point = ca->last_max_cwnd;
		}
	}
	/* t is measured from the epoch plus one minimum RTT: where cwnd will be when this
	 * ACK's effect returns (Linux adds delay_min the same way) */
	double t = (double)(now - ca->epoch_start_ms) / 1000.0 + (double)ca->delay_min_us / 1e6;
	double d = t - (double)ca->k_ms / 1000.0;
	double target = (double)ca->origin_point + CUBIC_C * d * d * d;
	if (target < 1)
		target = 1;
	cnt = 100u * cwnd; /* at or above the target: only a small increment (plateau) */
	if (target > cwnd) {
		double c = (double)cwnd / (target - cwnd);
		if (c < cnt)
			cnt = (uint32_t)c; /* far below the target: fast; just below: slow */
	}
	if (ca->last_max_cwnd == 0 && cnt > 20)
		cnt = 20; /* no loss yet: grow at least 5% per RTT */
tcp_friendliness:;
	/* TCP-friendly region (RFC 9438 §4.3): at least as fast as Reno would be */
	uint32_t delta = (cwnd * CUBIC_BETA_SCALE) >> 3;
	if (!delta)
		delta = 1;
	while (ca->ack_cnt > delta) {
		ca->ack_cnt -= delta;
		ca->tcp_cwnd++;
	}
	if (ca->tcp_cwnd > cwnd) {
		uint32_t max_cnt = cwnd / (ca->tcp_cwnd - cwnd);
		if (cnt > max_cnt)
			cnt = max_cnt;
	}
	ca->cnt = cnt > 2 ? cnt : 2;
}

static void cubic_cong_avoid(struct ustack *st, struct sock *sk, uint32_t acked)
{
	cubic_update(st, sk, acked);
	tcp_cong_avoid_ai(sk, sk->cubic.cnt, acked);
}

/* bictcp_cwnd_event(CA_EVENT_TX_START): the application left the connection idle; CUBIC's
 * epoch moves by as long, so the window keeps to its curve instead of leaping along it for
 * time nobody used. */
static void cubic_tx_start(struct sock *sk, uint32_t idle_ms)
{
	struct cubic_state *ca = &sk->cubic;
	if (ca->epoch_start_ms && idle_ms)
		ca->epoch_start_ms += idle_ms;
}

static const struct tcp_cong_ops tcp_cong_list[] = {
	{ "cubic", cubic_init, cubic_ssthresh, cubic_cong_avoid, cubic_tx_start, cubic_pkts_acked, cubic_set_loss },
	{ "reno", reno_init, reno_ssthresh, reno_cong_avoid, NULL, NULL, NULL },
};

const struct tcp_cong_ops *tcp_cong_find(const char *name)
{
	for (size_t i = 0; i < sizeof(tcp_cong_list) / sizeof(tcp_cong_list[0]); i++)
		if (!strcmp(tcp_cong_list[i].name, name))
			return &tcp_cong_list[i];
	return NULL;
}

/* Every new socket asks; the name is looked up again only when the sysctl's bytes changed. */
const struct tcp_cong_ops *tcp_cong_default(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	_Static_assert(sizeof(t->cong_name) == sizeof(st->sysctl.tcp_congestion_control), "same size");
	if (!t->cong_ops || memcmp(t->cong_name, st->sysctl.tcp_congestion_control, sizeof(t->cong_name))) {
		const struct tcp_cong_ops *ops = tcp_cong_find(st->sysctl.tcp_congestion_control);
		memcpy(t->cong_name, st->sysctl.tcp_congestion_control, sizeof(t->cong_name));
		t->cong_ops = ops ? ops : &tcp_cong_list[0];
	}
	return t->cong_ops;
}

/* tcp_cong_avoid: called for every ACK that advances snd_una outside recovery. */
void tcp_cong_on_ack(struct ustack *st, struct sock *sk, uint32_t acked)
{
	if (sk->cwnd < sk->ssthresh) { /* tcp_slow_start */
		uint32_t room = sk->ssthresh - sk->cwnd;
		uint32_t n = acked < room ? acked : room;
		sk->cwnd += n;
		acked -= n;
		if (!acked)
			return;
	}
	sk->ca_ops->cong_avoid(st, sk, acked);
}

/* tcp_is_cwnd_limited: cwnd limited sending in the last window — or, in slow start, it is
 * still less than twice the most that was in flight then, so an application that keeps a
 * flight of data going lets the window double each round as Linux's does. */
bool tcp_is_cwnd_limited(const struct sock *sk)
{
	if (sk->is_cwnd_limited)
		return true;
	if (sk->cwnd < sk->ssthresh)
		return sk->cwnd < 2 * sk->max_packets_out;
	return false;
}
