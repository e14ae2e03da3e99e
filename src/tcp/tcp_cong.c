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
 * (fast convergence, §4.7).  Linux's HyStart (leaving slow start early on rising delay) is not
 * implemented: ustack leaves slow start on loss, as Reno does.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

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

static void reno_init(struct sock *sk)
{
	(void)sk;
}

/* ---- CUBIC ---- */

static void cubic_init(struct sock *sk)
{
	memset(&sk->cubic, 0, sizeof(sk->cubic));
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
	double t = (double)(now - ca->epoch_start_ms) / 1000.0 + (double)sk->rtt_min_us / 1e6;
	double d = t - (double)ca->k_ms / 1000.0;
	double target = (double)ca->origin_point + CUBIC_C * d * d * d;
	if (target < 1)
		target = 1;
	uint32_t cnt = 100u * cwnd; /* at or above the target: only a small increment (plateau) */
	if (target > cwnd) {
		double c = (double)cwnd / (target - cwnd);
		if (c < cnt)
			cnt = (uint32_t)c; /* far below the target: fast; just below: slow */
	}
	if (ca->last_max_cwnd == 0 && cnt > 20)
		cnt = 20; /* no loss yet: grow at least 5% per RTT */
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
	{ "cubic", cubic_init, cubic_ssthresh, cubic_cong_avoid, cubic_tx_start },
	{ "reno", reno_init, reno_ssthresh, reno_cong_avoid, NULL },
};

const struct tcp_cong_ops *tcp_cong_find(const char *name)
{
	for (size_t i = 0; i < sizeof(tcp_cong_list) / sizeof(tcp_cong_list[0]); i++)
		if (!strcmp(tcp_cong_list[i].name, name))
			return &tcp_cong_list[i];
	return NULL;
}

const struct tcp_cong_ops *tcp_cong_default(struct ustack *st)
{
	const struct tcp_cong_ops *ops = tcp_cong_find(st->sysctl.tcp_congestion_control);
	return ops ? ops : &tcp_cong_list[0];
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
