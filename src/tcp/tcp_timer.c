/*
 * The retransmission timer for connection setup (Linux's tcp_timer.c: tcp_retransmit_timer,
 * tcp_write_timeout).
 *
 * A SYN is resent when the RTO expires, starting from 1 s (RFC 6298 §2.1).  Linux ≥ 6.17
 * keeps the first net.ipv4.tcp_syn_linear_timeouts retries at the initial RTO before backing
 * off exponentially (default 4: SYNs at 0, 1, 2, 3, 4, 5, 7 s and ETIMEDOUT at 11 s with
 * tcp_syn_retries = 6); with 0 it is the classic 0, 1, 3, 7, 15, 31, 63 s and ETIMEDOUT at
 * 127 s.  The count of retries comes from TCP_SYNCNT, else net.ipv4.tcp_syn_retries.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>


void tcp_reset_xmit_timer(struct ustack *st, struct sock *sk)
{
	timer_arm(st, &sk->retrans_timer, st->now + (uint64_t)sk->rto_ms * 1000u);
}

void tcp_retransmit_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, retrans_timer));
	if (sk->node.state != TCP_SYN_SENT && sk->node.state != TCP_SYN_RECV)
		return;
	/* tcp_write_timeout */
	int retry_until = sk->syn_retries ? sk->syn_retries : st->sysctl.tcp_syn_retries;
	if (sk->retransmits >= retry_until) {
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
