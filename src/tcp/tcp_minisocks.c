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

/*
 * tcp_time_wait: both FINs are acknowledged (or ours is, and the peer's came).  A 64-byte entry
 * (inet_timewait_sock.c) takes over the 4-tuple for 2·MSL and the socket is done with: closed
 * for an application that still holds it (recv() drains what is left, then 0; the state is
 * CLOSE, as Linux's tcp_done leaves it), freed for an orphan.  Past tcp_max_tw_buckets the
 * connection closes without TIME_WAIT (TcpExtTCPTimeWaitOverflow).
 */
static void tcp_time_wait_state(struct ustack *st, struct sock *sk, bool fin_wait2, uint32_t timeo_ms)
{
	/* at least 3.5·RTO — long enough for two retransmissions of the peer's FIN to reach
	 * us; TIME_WAIT proper is always 60 s */
	uint32_t rto = (sk->rto_ms << 2) - (sk->rto_ms >> 1);
	if (timeo_ms < rto)
		timeo_ms = rto;
	if (!fin_wait2)
		timeo_ms = TCP_TIMEWAIT_LEN_MS;
	timer_cancel(st, &sk->timers.delack);
	timer_cancel(st, &sk->timers.sk);
	if (!inet_twsk_hashdance_schedule(st, sk, fin_wait2, timeo_ms))
		MIB_INC(st, TcpExtTCPTimeWaitOverflow);
	tcp_done(st, sk, 0);
}

void tcp_time_wait(struct ustack *st, struct sock *sk)
{
	tcp_time_wait_state(st, sk, false, TCP_TIMEWAIT_LEN_MS);
}

/* tcp_fin_time: how long an orphan waits in FIN_WAIT2 for the peer's FIN —
 * net.ipv4.tcp_fin_timeout, or 3.5·RTO if that is longer. */
uint32_t tcp_fin_time_ms(const struct ustack *st, const struct sock *sk)
{
	uint32_t fin = (uint32_t)st->sysctl.tcp_fin_timeout * 1000u;
	uint32_t rto = (sk->rto_ms << 2) - (sk->rto_ms >> 1);
	return fin > rto ? fin : rto;
}

/*
 * An orphan reached FIN_WAIT2 (tcp_rcv_state_process's FIN_WAIT1 step, __tcp_close): it has
 * nothing left to send, only the peer's FIN to wait for, so — as Linux does — it gives its
 * socket up for a timewait entry in the FIN_WAIT2 substate, which takes the FIN into TIME_WAIT
 * proper, resets data or a SYN, and goes silently when tcp_fin_time is up.  A wait longer than
 * TIME_WAIT's 60 s starts on the socket's timer (tcp_keepalive_timer), for the excess.
 */
bool tcp_fin_wait2_orphan(struct ustack *st, struct sock *sk)
{
	uint32_t tmo = tcp_fin_time_ms(st, sk);
	if (tmo > TCP_TIMEWAIT_LEN_MS) {
		timer_arm(st, &sk->timers.sk, st->now + (uint64_t)(tmo - TCP_TIMEWAIT_LEN_MS) * 1000u);
		return false;
	}
	tcp_time_wait_state(st, sk, true, tmo);
	return true;
}

/* tcp_keepalive_timer's FIN_WAIT2 step: the excess over 60 s is over — the rest as a timewait
 * entry; if there is none (tcp_fin_timeout lowered meanwhile), a RST. */
void tcp_fin_wait2_timeout(struct ustack *st, struct sock *sk)
{
	uint32_t tmo = tcp_fin_time_ms(st, sk);
	if (tmo > TCP_TIMEWAIT_LEN_MS) {
		tcp_time_wait_state(st, sk, true, tmo - TCP_TIMEWAIT_LEN_MS);
		return;
	}
	tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_STATE, sk->node.state);
	tcp_done(st, sk, 0);
}

/* tcp_timewait_check_oow_rate_limit: an ACK for an out-of-window segment, at most every
 * tcp_invalid_ratelimit — but data and FINs are always answered (tcp_oow_rate_limited). */
static enum tcp_tw_status tcp_tw_oow_rate_limit(struct ustack *st, struct inet_timewait_sock *tw,
						const struct tcp_repr *th, uint32_t end_seq, bool fin_wait2)
{
	if (th->seq != end_seq && !(th->flags & TCPHDR_SYN))
		return TCP_TW_ACK_OOW;
	uint32_t stamp = tcp_clock_ms(st) + 1; /* kept one ahead, so that 0 means none */
	if (tw->last_oow_ack_ms && stamp - tw->last_oow_ack_ms < (uint32_t)st->sysctl.tcp_invalid_ratelimit) {
		if (fin_wait2)
			MIB_INC(st, TcpExtTCPACKSkippedFinWait2);
		else
			MIB_INC(st, TcpExtTCPACKSkippedTimeWait);
		return TCP_TW_SUCCESS;
	}
	tw->last_oow_ack_ms = stamp;
	return TCP_TW_ACK_OOW;
}

/*
 * tcp_timewait_state_process (Linux 6.18, line for line; RFC 9293 §3.10.7.4 and RFC 1337,
 * RFC 7323 §5 for PAWS, RFC 1122 §4.2.2.13 for the reopening SYN).  In the FIN_WAIT2 substate
 * an orphan's entry repeats tcp_rcv_state_process's checks: out of window an ACK, a RST ends
 * it, a SYN or data is reset, the FIN brings TIME_WAIT proper.  In TIME_WAIT:
 *
 * A segment at rcv_nxt with nothing in it is the peer's last ACK again, or a RST: the ACK
 * restarts the 60 s; the RST ends TIME_WAIT ("TIME_WAIT assassination") unless
 * net.ipv4.tcp_rfc1337 says to ignore it.  A SYN newer than the old connection — by sequence
 * or by timestamp — may open a new one: the listener takes it with an ISN above everything
 * this one sent (snd_nxt + 65535 + 2), so that old duplicates cannot be mistaken for new data.
 * Anything else — a retransmitted FIN (our ACK was lost), an old segment, a PAWS-rejected one
 * (TcpExtPAWSTimewait) — restarts the 60 s if it carries an ACK and is answered with our ACK,
 * at most every tcp_invalid_ratelimit unless it carries data or a FIN
 * (TcpExtTCPACKSkippedTimeWait); a RST there is dropped.
 *
 * PAWS here has no jitter window (tcp_paws_reject with 0), ignores a ts_recent older than
 * TCP_PAWS_WRAP, and lets a RST through once ts_recent is a minute old (TCP_PAWS_MSL).
 */
#define TCP_PAWS_WRAP_S 2147u /* INT_MAX / USEC_PER_SEC */
#define TCP_PAWS_MSL_S 60u

enum tcp_tw_status tcp_timewait_state_process(struct ustack *st, struct inet_timewait_sock *tw,
					      const struct tcp_repr *th, uint32_t *tw_isn)
{
	bool saw_ts = false, paws_reject = false;
	bool rst = th->flags & TCPHDR_RST, syn = th->flags & TCPHDR_SYN, ack = th->flags & TCPHDR_ACK;
	uint16_t now_s = (uint16_t)(st->now / 1000000u); /* from the 64-bit clock: no ms wrap in it */
	tcp_trace(st, "tcp_timewait_state_process", &tw->node, TCP_TIME_WAIT, TCP_TIME_WAIT);
	if ((tw->node.tw_flags & TW_TSTAMP) && th->opt.ts_ok) {
		saw_ts = true;
		bool paws_ok = (int32_t)(th->opt.tsval - tw->ts_recent) >= 0 ||
			       (uint16_t)(now_s - tw->ts_recent_stamp) >= TCP_PAWS_WRAP_S || !tw->ts_recent;
		paws_reject = !paws_ok && !(rst && (uint16_t)(now_s - tw->ts_recent_stamp) >= TCP_PAWS_MSL_S);
	}
	bool fin = th->flags & TCPHDR_FIN;
	uint32_t end_seq = th->seq + (uint32_t)th->plen + syn + fin;
	if (tw->node.tw_flags & TW_FW2) {
		/* the FIN_WAIT2 substate: tcp_rcv_state_process's checks again */
		uint32_t wnd = (uint32_t)tw->rcv_wnd << tw->node.tw_rcv_wscale;
		if (paws_reject || !tcp_in_window(th->seq, end_seq, tw->rcv_nxt, tw->rcv_nxt + wnd))
			return tcp_tw_oow_rate_limit(st, tw, th, end_seq, true);
		if (rst) {
			inet_twsk_deschedule_put(st, tw);
			return TCP_TW_SUCCESS;
		}
		if (syn && !before(th->seq, tw->rcv_nxt))
			return TCP_TW_RST;
		if (!ack || !after(end_seq, tw->rcv_nxt) || end_seq == th->seq)
			return TCP_TW_SUCCESS; /* a duplicate ACK */
		/* data after the application closed (or a FIN past some), reset */
		if (!fin || end_seq != tw->rcv_nxt + 1)
			return TCP_TW_RST;
		/* the FIN: TIME_WAIT proper */
		tw->rcv_nxt = end_seq;
		if (saw_ts) {
			tw->ts_recent = th->opt.tsval;
			tw->ts_recent_stamp = now_s;
		}
		inet_twsk_reschedule(st, tw);
		return TCP_TW_ACK;
	}
	if (!paws_reject && th->seq == tw->rcv_nxt && (th->seq == end_seq || rst)) {
		/* in window: a RST or a bare ACK */
		if (rst) {
			if (!st->sysctl.tcp_rfc1337) {
				inet_twsk_deschedule_put(st, tw);
				return TCP_TW_SUCCESS;
			}
		} else {
			inet_twsk_reschedule(st, tw);
		}
		if (saw_ts) {
			tw->ts_recent = th->opt.tsval;
			tw->ts_recent_stamp = now_s;
		}
		return TCP_TW_SUCCESS;
	}
	if (syn && !rst && !ack && !paws_reject &&
	    (after(th->seq, tw->rcv_nxt) || (saw_ts && (int32_t)(tw->ts_recent - th->opt.tsval) < 0))) {
		uint32_t isn = tw->snd_nxt + 65535u + 2u;
		*tw_isn = isn ? isn : 1;
		return TCP_TW_SYN;
	}
	if (paws_reject)
		MIB_INC(st, TcpExtPAWSTimewait);
	if (rst)
		return TCP_TW_SUCCESS;
	/* "we must reset the TIMEWAIT timer" — but not for an ACK-less SYN, which may be an old
	 * duplicate as much as a new connection with a sequence number below rcv_nxt */
	if (paws_reject || ack)
		inet_twsk_reschedule(st, tw);
	return tcp_tw_oow_rate_limit(st, tw, th, end_seq, false);
}

/* tcp_v4_timewait_ack: our last ACK again — snd_nxt, rcv_nxt, the window that was left, the
 * timestamps if the connection had them; from the stack, not the socket (TTL and DF as
 * Linux's control socket sends them).  The TOS is the connection's, without its ECN bits for
 * an answer to an out-of-window segment. */
void tcp_v4_timewait_ack(struct ustack *st, struct inet_timewait_sock *tw, enum tcp_tw_status status)
{
	struct ustack_route_result rt;
	if (ip_route_connect(st, tw->node.raddr, tw->node.laddr, &rt) < 0)
		return;
	uint8_t tos = tw->node.tw_tos;
	if (status == TCP_TW_ACK_OOW)
		tos &= (uint8_t)~INET_ECN_MASK;
	struct tcp_seg_out seg = {
		.laddr = tw->node.laddr, .raddr = tw->node.raddr,
		.lport = tw->node.lport, .rport = tw->node.rport,
		.seq = tw->snd_nxt, .ack = tw->rcv_nxt, .flags = TCPHDR_ACK,
		.window = tw->rcv_wnd, .tos = tos,
		.df = true, .id_set = true, .id = 0,
	};
	if (tw->ts_recent) { /* tcp_v4_send_ack: the option when there is a tsecr to echo */
		seg.opt.ts_ok = true;
		seg.opt.tsval = tcp_clock_ms(st) + tcp_tw_ts_off(st, tw);
		seg.opt.tsecr = tw->ts_recent;
	}
	tcp_transmit(st, &seg, &rt);
}
