/*
 * The retransmission timer for connection setup (Linux's tcp_timer.c: tcp_retransmit_timer,
 * tcp_write_timeout).
 *
 * A SYN is resent when the RTO expires, starting from 1 s (RFC 6298 §2.1).  Linux ≥ 6.17
 * keeps the first net.ipv4.tcp_syn_linear_timeouts retries at the initial RTO before backing
 * off exponentially.  When to give up is not a count but a time budget (retransmits_timed_out
 * with tcp_model_timeout): what the classic doubling schedule would take for N retries,
 * (2^(N+1) − 1) s for N = TCP_SYNCNT or net.ipv4.tcp_syn_retries, checked when the timer
 * fires.  So with the defaults (N = 6, linear 4) SYNs go at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35,
 * 67 s and ETIMEDOUT comes at 131 s; with linear timeouts off, 0, 1, 3, 7, 15, 31, 63 s and
 * 127 s — both measured against Linux 6.18.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>


/* tcp_model_timeout: how long `boundary` retransmissions take with doubling from the initial
 * RTO, the doubling capped at TCP_RTO_MAX. */
static uint64_t tcp_model_timeout_us(unsigned boundary)
{
	const unsigned thresh = 6; /* ilog2(TCP_RTO_MAX / TCP_TIMEOUT_INIT) = ilog2(120) */
	uint64_t ms;
	if (boundary <= thresh)
		ms = ((2ull << boundary) - 1) * TCP_TIMEOUT_INIT_MS;
	else
		ms = ((2ull << thresh) - 1) * TCP_TIMEOUT_INIT_MS + (uint64_t)(boundary - thresh) * TCP_RTO_MAX_MS;
	return ms * 1000u;
}

void tcp_reset_xmit_timer(struct ustack *st, struct sock *sk)
{
	timer_arm(st, &sk->retrans_timer, st->now + (uint64_t)sk->rto_ms * 1000u);
}

void tcp_retransmit_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, retrans_timer));
	if (sk->node.state != TCP_SYN_SENT && sk->node.state != TCP_SYN_RECV)
		return;
	/* tcp_write_timeout → retransmits_timed_out */
	unsigned retry_until = sk->syn_retries ? sk->syn_retries : (unsigned)st->sysctl.tcp_syn_retries;
	if (sk->retransmits && st->now - sk->retrans_stamp >= tcp_model_timeout_us(retry_until)) {
		tcp_trace(st, "tcp_write_err", &sk->node, sk->node.state, TCP_CLOSE);
		tcp_done(st, sk, ETIMEDOUT);
		return;
	}
	MIB_INC(st, TcpExtTCPTimeouts);
	sk->retransmits++;
	sk->total_rto++;
	tcp_retransmit_syn(st, sk);
	if (sk->node.state != TCP_SYN_SENT || sk->total_rto > st->sysctl.tcp_syn_linear_timeouts) {
		sk->backoff++;
		sk->rto_ms = sk->rto_ms * 2 < TCP_RTO_MAX_MS ? sk->rto_ms * 2 : TCP_RTO_MAX_MS;
	}
	tcp_reset_xmit_timer(st, sk);
}
