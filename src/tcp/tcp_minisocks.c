/*
 * The mini-sockets of a connection's edges (Linux's net/ipv4/tcp_minisocks.c): the request
 * socket meeting the segments that follow its SYN-ACK (tcp_check_req), the child that takes
 * the rest of the segment that completed the handshake (tcp_child_process), and TIME_WAIT
 * (tcp_time_wait).
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <stdlib.h>

static bool tcp_in_window(uint32_t seq, uint32_t end_seq, uint32_t s_win, uint32_t e_win)
{
	if (seq == s_win)
		return true;
	if (after(end_seq, s_win) && before(seq, e_win))
		return true;
	return seq == e_win && seq == end_seq;
}

/* tcp_oow_rate_limited for a request socket: a SYN-ACK again, or an ACK to an out-of-window
 * segment, at most every net.ipv4.tcp_invalid_ratelimit; data never waits
 * (TcpExtTCPACKSkippedSynRecv counts what was held back). */
static bool reqsk_oow_rate_limited(struct ustack *st, struct request_sock *req, const struct tcp_repr *th)
{
	if ((th->plen || (th->flags & TCPHDR_FIN)) && !(th->flags & TCPHDR_SYN))
		return false;
	uint32_t now = tcp_clock_ms(st);
	if (req->last_oow_ack_ms && now - req->last_oow_ack_ms < (uint32_t)st->sysctl.tcp_invalid_ratelimit) {
		MIB_INC(st, TcpExtTCPACKSkippedSynRecv);
		return true;
	}
	req->last_oow_ack_ms = now ? now : 1;
	return false;
}

/*
 * tcp_check_req: a segment for a request socket (RFC 9293 §3.10.7.3, SYN-RECEIVED, as Linux
 * orders the checks): the SYN again (our SYN-ACK was lost: send it again, rate limited);
 * an ACK of something we never sent (RST); a segment outside the window (an ACK, rate
 * limited); RST or SYN in window (the request goes, with a RST for the SYN); then the final
 * ACK — unless the accept queue is full, in which case the request waits for the peer's next
 * ACK (or, with tcp_abort_on_overflow, is reset).  The ACK builds the child
 * (tcp_v4_syn_recv_sock), which goes to the accept queue.  Returns the child.
 */
struct sock *tcp_check_req(struct ustack *st, struct request_sock *req, const struct ipv4_repr *ip,
			   const struct tcp_repr *th)
{
	struct sock *lsk = req->listener;
	tcp_trace(st, "tcp_check_req", &req->node, TCP_SYN_RECV, TCP_SYN_RECV);
	/* A retransmitted SYN: the SYN-ACK was lost.  Resend it, at most every
	 * tcp_invalid_ratelimit (500 ms) (tcp_oow_rate_limited), and push the timer out. */
	if (th->seq == req->rcv_isn && (th->flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) == TCPHDR_SYN) {
		if (!reqsk_oow_rate_limited(st, req, th))
			inet_rtx_syn_ack(st, req);
		reqsk_timer_rearm(st, req);
		return NULL;
	}
	/* RFC 9293 §3.10.7.4: an ACK of something we never sent gets a RST. */
	if ((th->flags & TCPHDR_ACK) && th->ack != req->snt_isn + 1) {
		tcp_v4_send_reset(st, ip, th);
		return NULL;
	}
	uint32_t wnd = req->rcv_wnd;
	uint32_t end_seq = th->seq + (uint32_t)th->plen + !!(th->flags & TCPHDR_SYN) + !!(th->flags & TCPHDR_FIN);
	if (!tcp_in_window(th->seq, end_seq, req->rcv_isn + 1, req->rcv_isn + 1 + wnd)) {
		if (!(th->flags & TCPHDR_RST) && !reqsk_oow_rate_limited(st, req, th))
			tcp_v4_reqsk_send_ack(st, req);
		return NULL;
	}
	if (th->flags & (TCPHDR_RST | TCPHDR_SYN)) {
		MIB_INC(st, TcpAttemptFails);
		if (!(th->flags & TCPHDR_RST))
			tcp_v4_send_reset(st, ip, th);
		MIB_INC(st, TcpExtEmbryonicRsts);
		reqsk_queue_drop(st, req);
		return NULL;
	}
	if (!(th->flags & TCPHDR_ACK))
		return NULL;
	if (sk_acceptq_is_full(lsk)) {
		/* listen_overflow */
		MIB_INC(st, TcpExtListenOverflows);
		MIB_INC(st, TcpExtListenDrops);
		tcp_trace(st, "listen_overflow", &req->node, TCP_SYN_RECV, TCP_SYN_RECV);
		if (!st->sysctl.tcp_abort_on_overflow) {
			req->acked = 1;
			return NULL;
		}
		tcp_v4_send_reset(st, ip, th);
		MIB_INC(st, TcpExtEmbryonicRsts);
		reqsk_queue_drop(st, req);
		return NULL;
	}
	struct sock *sk = tcp_v4_syn_recv_sock(st, req, th);
	if (!sk) {
		MIB_INC(st, TcpExtListenDrops);
		return NULL;
	}
	reqsk_put(st, req); /* the child took its place in the established hash */
	return tcp_child_establish(st, lsk, sk) < 0 ? NULL : sk;
}

int tcp_child_establish(struct ustack *st, struct sock *lsk, struct sock *sk)
{
	if (tcp_data_init(st, sk) < 0) {
		sk_free(st, sk);
		return -1;
	}
	sk->delivered++; /* the SYN-ACK (tcp_rcv_state_process's SYN_RECV: tcp_ack does not count it) */
	tcp_set_state(st, sk, TCP_ESTABLISHED);
	tcp_reset_keepalive_timer(st, sk);
	inet_csk_reqsk_queue_add(st, lsk, sk);
	return 0;
}

/* tcp_child_process: the child takes the rest of the segment that completed its handshake —
 * data or a FIN that came with the final ACK. */
void tcp_child_process(struct ustack *st, struct sock *child, const struct ipv4_repr *ip,
		       const struct tcp_repr *th)
{
	if (th->plen || (th->flags & TCPHDR_FIN))
		tcp_rcv_state_process(st, child, ip, th);
}

void tcp_time_wait(struct ustack *st, struct sock *sk)
{
	tcp_set_state(st, sk, TCP_TIME_WAIT);
	timer_cancel(st, &sk->timers.retransmit);
	timer_cancel(st, &sk->timers.delack);
	if (sk->fd < 0)
		tcp_data_free(st, sk); /* an orphan needs its 4-tuple for 2·MSL, not its buffers */
	timer_arm(st, &sk->timers.sk, st->now + (uint64_t)TCP_TIMEWAIT_LEN_MS * 1000u);
	sk_wake_sk(st, sk);
}
