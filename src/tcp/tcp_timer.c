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
static uint64_t tcp_model_timeout_us(unsigned boundary, unsigned rto_base_ms)
{
	unsigned thresh = 0; /* ilog2(TCP_RTO_MAX / rto_base) */
	while ((rto_base_ms << (thresh + 1)) <= TCP_RTO_MAX_MS)
		thresh++;
	uint64_t ms;
	if (boundary <= thresh)
		ms = ((2ull << boundary) - 1) * rto_base_ms;
	else
		ms = ((2ull << thresh) - 1) * rto_base_ms + (uint64_t)(boundary - thresh) * TCP_RTO_MAX_MS;
	return ms * 1000u;
}

void tcp_reset_xmit_timer(struct ustack *st, struct sock *sk)
{
	timer_arm(st, &sk->timers.retransmit, st->now + (uint64_t)sk->rto_ms * 1000u);
}

void tcp_rearm_rto(struct ustack *st, struct sock *sk)
{
	if (sk->fastopen_rsk)
		return; /* the timer resends a Fast Open child's SYN-ACK until its final ACK */
	sk->tlp_pending = false;
	sk->reo_pending = false;
	sk->rto_deadline = st->now + (uint64_t)sk->rto_ms * 1000u;
	timer_arm(st, &sk->timers.retransmit, sk->rto_deadline);
}

/*
 * tcp_schedule_loss_probe — RACK-TLP's tail loss probe (RFC 8985 §7) as Linux arms it: on a
 * SACK connection not in recovery, with data in flight, a probe timer of two smoothed RTTs
 * (plus the 200 ms delayed-ACK allowance when a single segment is out, else 2 ms), or 1 s
 * without an RTT sample — unless the RTO would fire sooner.  A lost tail then costs a probe
 * and a fast recovery instead of an RTO.  net.ipv4.tcp_early_retrans 3 or 4 enables it.
 */
bool tcp_schedule_loss_probe(struct ustack *st, struct sock *sk, bool advancing_rto)
{
	int er = st->sysctl.tcp_early_retrans;
	if ((er != 3 && er != 4) || !sk->sack_ok || sk->in_recovery || sk->retransmits ||
	    sk->snd_una == sk->snd_max || sk->fastopen_rsk) /* no probe before a Fast Open 3WHS ends */
		return false;
	uint64_t pto;
	if (sk->srtt_us) {
		uint32_t mss = tcp_mss_now(sk);
		bool one = sk->snd_max - sk->snd_una <= mss + 1;
		pto = 2ull * sk->srtt_us + (one ? TCP_RTO_MIN_MS : TCP_TIMEOUT_MIN_MS) * 1000ull;
	} else {
		pto = TCP_TIMEOUT_INIT_MS * 1000ull;
	}
	pto = (pto + 999) / 1000 * 1000; /* whole milliseconds, as jiffies */
	uint64_t at = st->now + pto;
	uint64_t rto_at = advancing_rto || !timer_pending(&sk->timers.retransmit) || sk->tlp_pending
				  ? st->now + (uint64_t)sk->rto_ms * 1000u : sk->rto_deadline;
	if (rto_at < at)
		at = rto_at;
	if (!advancing_rto && timer_pending(&sk->timers.retransmit) && !sk->tlp_pending)
		; /* keep the RTO's deadline for when the probe is done */
	else
		sk->rto_deadline = st->now + (uint64_t)sk->rto_ms * 1000u;
	sk->tlp_pending = true;
	sk->reo_pending = false;
	timer_arm(st, &sk->timers.retransmit, at);
	return true;
}

/* tcp_set_xmit_timer: after an ACK, the loss probe if it applies, else the RTO. */
void tcp_set_xmit_timer(struct ustack *st, struct sock *sk)
{
	if (!tcp_schedule_loss_probe(st, sk, true))
		tcp_rearm_rto(st, sk);
}

/* tcp_write_err: the peer is gone — the application sees ETIMEDOUT (or the soft error an
 * ICMP message left); Linux counts every such end, orphan or not. */
static void tcp_write_err(struct ustack *st, struct sock *sk)
{
	tcp_trace(st, "tcp_write_err", &sk->node, sk->node.state, TCP_CLOSE);
	MIB_INC(st, TcpExtTCPAbortOnTimeout);
	tcp_done(st, sk, sk->soft_err ? sk->soft_err : ETIMEDOUT);
}

/*
 * tcp_orphan_retries: how many retransmissions (or zero-window probes) an orphan gets before
 * it is given up on — net.ipv4.tcp_orphan_retries, where its default 0 means 8 (over 100 s
 * from a 200 ms RTO) for a connection still "alive" (its RTO below TCP_RTO_MAX), and 0 for
 * one an ICMP error already marked.  Nobody will read the error, and a kernel cannot keep
 * every closed connection for tcp_retries2's 15 minutes.
 */
static unsigned tcp_orphan_retries(const struct ustack *st, const struct sock *sk, bool alive)
{
	unsigned retries = (unsigned)st->sysctl.tcp_orphan_retries;
	if (sk->soft_err && !alive)
		retries = 0;
	if (retries == 0 && alive)
		retries = 8;
	return retries;
}

/* Data (or a FIN) went unacknowledged for an RTO (RFC 6298 §5): go back to snd_una with one
 * segment of window (RFC 5681 §3.1), back the timer off, and give up — ETIMEDOUT — once
 * tcp_retries2's time budget is spent (tcp_model_timeout from a 200 ms base: about 924 s for
 * the default 15).  With nothing outstanding but a zero window, the timer probes the window. */
static void tcp_data_retransmit_timer(struct ustack *st, struct sock *sk)
{
	if (sk->snd_una == sk->snd_max) {
		if (sk->write_seq != sk->snd_una) { /* tcp_probe_timer */
			/* a peer that keeps its window shut still answers; one that never answers
			 * is given up on after tcp_retries2 probes, or TCP_USER_TIMEOUT */
			if (!sk->probes_out)
				sk->probe_stamp = st->now;
			/* an orphan: tcp_orphan_retries probes, none once the backoff has hit
			 * TCP_RTO_MAX and that many backoffs are spent */
			unsigned max_probes = (unsigned)st->sysctl.tcp_retries2;
			if (tcp_orphaned(sk)) {
				/* inet_csk_rto_backoff: the backed-off RTO, not the RTO itself */
				uint64_t backed = (uint64_t)sk->rto_ms << (sk->backoff < 20 ? sk->backoff : 20);
				bool alive = backed < TCP_RTO_MAX_MS;
				max_probes = tcp_orphan_retries(st, sk, alive);
				if (!alive && sk->backoff >= max_probes) {
					tcp_write_err(st, sk);
					return;
				}
			}
			if ((sk->user_timeout_ms && sk->probes_out &&
			     st->now - sk->probe_stamp >= (uint64_t)sk->user_timeout_ms * 1000u) ||
			    (!sk->user_timeout_ms && sk->probes_out >= max_probes)) {
				tcp_write_err(st, sk);
				return;
			}
			tcp_send_probe(st, sk);
			sk->probes_out++;
			if (sk->backoff < st->sysctl.tcp_retries2) /* tcp_send_probe0's cap */
				sk->backoff++;
			/* tcp_probe0_when: the probes back off on their own clock, max(RTO, 200 ms) <<
			 * backoff; the RTO itself is left alone, so the first data after the window
			 * opens, and the idle test then (tcp_slow_start_after_idle_check), see it whole */
			uint64_t base = sk->rto_ms > TCP_RTO_MIN_MS ? sk->rto_ms : TCP_RTO_MIN_MS;
			uint64_t when = base << (sk->backoff < 20 ? sk->backoff : 20);
			if (when > TCP_RTO_MAX_MS)
				when = TCP_RTO_MAX_MS;
			sk->tlp_pending = sk->reo_pending = false;
			sk->rto_deadline = st->now + when * 1000u;
			timer_arm(st, &sk->timers.retransmit, sk->rto_deadline);
		}
		return;
	}
	if (!sk->retransmits)
		sk->retrans_stamp = st->now - (uint64_t)sk->rto_ms * 1000u; /* when the head left */
	/* retransmits_timed_out: TCP_USER_TIMEOUT if set, else tcp_retries2's time budget, or
	 * an orphan's tcp_orphan_retries (tcp_write_timeout's SOCK_DEAD case) */
	unsigned retry_until = (unsigned)st->sysctl.tcp_retries2;
	if (tcp_orphaned(sk))
		retry_until = tcp_orphan_retries(st, sk, sk->rto_ms < TCP_RTO_MAX_MS);
	uint64_t budget = sk->user_timeout_ms ? (uint64_t)sk->user_timeout_ms * 1000u
					      : tcp_model_timeout_us(retry_until, TCP_RTO_MIN_MS);
	if (sk->retransmits && st->now - sk->retrans_stamp >= budget) {
		tcp_write_err(st, sk);
		return;
	}
	MIB_INC(st, TcpExtTCPTimeouts);
	/* tcp_enter_loss */
	if (!sk->retransmits)
		sk->ssthresh = sk->ca_ops->ssthresh(st, sk);
	sk->cwnd = 1;
	sk->cwnd_cnt = 0;
	if (sk->ca_ops->set_loss) /* tcp_set_ca_state(TCP_CA_Loss), every timeout */
		sk->ca_ops->set_loss(st, sk);
	sk->in_recovery = false;
	sk->in_cwr = false;
	sk->dupacks = 0;
	sk->high_seq = sk->snd_max;
	sk->high_rxt = sk->snd_una; /* the SACK scoreboard stays: go-back-N skips what it holds */
	sk->snd_nxt = sk->snd_una;
	sk->retransmits++;
	sk->total_rto++;
	sk->backoff++;
	sk->rto_ms = sk->rto_ms * 2 < TCP_RTO_MAX_MS ? sk->rto_ms * 2 : TCP_RTO_MAX_MS;
	timer_cancel(st, &sk->timers.retransmit);
	/* go-back-N: tcp_write_xmit resends from snd_una, and each segment it resends fires
	 * tcp_retransmit_skb (tcp_send_data), as each skb tcp_retransmit_skb resends does */
	tcp_write_xmit(st, sk);
	/* tcp_clamp_rto_to_user_timeout: the next firing comes no later than the moment
	 * TCP_USER_TIMEOUT runs out, so the error is reported on time */
	uint64_t at = st->now + (uint64_t)sk->rto_ms * 1000u;
	if (sk->user_timeout_ms) {
		uint64_t deadline = sk->retrans_stamp + (uint64_t)sk->user_timeout_ms * 1000u;
		if (deadline < at)
			at = deadline > st->now ? deadline : st->now + 1000u;
	}
	timer_arm(st, &sk->timers.retransmit, at);
}

void tcp_delack_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, timers.delack));
	if (sk->rcv_unacked) {
		/* tcp_delack_timer_handler: a delayed ACK that had to go alone — in pingpong the
		 * answers stopped coming: leave it; else the data is slower than ato thought */
		if (!sk->pingpong) {
			uint32_t ato = sk->ato_ms << 1;
			sk->ato_ms = ato < sk->rto_ms ? ato : sk->rto_ms;
		} else {
			sk->pingpong = 0;
			sk->ato_ms = TCP_ATO_MIN_MS;
		}
		MIB_INC(st, TcpExtDelayedACKs);
		tcp_send_ack(st, sk);
	}
}

static uint32_t keepalive_time_s(const struct ustack *st, const struct sock *sk)
{
	return sk->keepalive_opts.idle ? sk->keepalive_opts.idle : (uint32_t)st->sysctl.tcp_keepalive_time;
}

void tcp_reset_keepalive_timer(struct ustack *st, struct sock *sk)
{
	if (sk->keepalive && (sk->node.state == TCP_ESTABLISHED || sk->node.state == TCP_CLOSE_WAIT))
		timer_arm(st, &sk->timers.sk, st->now + (uint64_t)keepalive_time_s(st, sk) * 1000000u);
	else if (sk->node.state == TCP_ESTABLISHED || sk->node.state == TCP_CLOSE_WAIT)
		timer_cancel(st, &sk->timers.sk);
}

/*
 * tcp_keepalive_timer: after keepalive_time of silence from the peer, a probe (a bare ACK
 * one byte behind snd_una, which the peer must answer) every keepalive_intvl; after
 * keepalive_probes unanswered — or TCP_USER_TIMEOUT of silence once probing began — reset
 * the connection and report ETIMEDOUT.  Nothing is probed while data is outstanding: the
 * retransmission timer watches the peer then.
 */
static void tcp_keepalive_timer(struct ustack *st, struct sock *sk)
{
	uint64_t when = (uint64_t)keepalive_time_s(st, sk) * 1000000u;
	uint64_t intvl = (uint64_t)(sk->keepalive_opts.intvl ? sk->keepalive_opts.intvl : st->sysctl.tcp_keepalive_intvl) * 1000000u;
	unsigned probes = sk->keepalive_opts.cnt ? sk->keepalive_opts.cnt : (unsigned)st->sysctl.tcp_keepalive_probes;
	if (sk->snd_max != sk->snd_una || sk->write_seq != sk->snd_una) {
		timer_arm(st, &sk->timers.sk, st->now + when);
		return;
	}
	uint64_t elapsed = st->now - sk->rcv_tstamp;
	if (elapsed < when) {
		timer_arm(st, &sk->timers.sk, st->now + when - elapsed);
		return;
	}
	if ((sk->user_timeout_ms && elapsed >= (uint64_t)sk->user_timeout_ms * 1000u && sk->probes_out) ||
	    (!sk->user_timeout_ms && sk->probes_out >= probes)) {
		tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT, sk->node.state);
		tcp_write_err(st, sk);
		return;
	}
	MIB_INC(st, TcpExtTCPKeepAlive);
	tcp_send_probe(st, sk);
	sk->probes_out++;
	timer_arm(st, &sk->timers.sk, st->now + intvl);
}

/* sk_timer: an orphan in FIN_WAIT2 whose wait was longer than 60 s has waited the excess
 * (tcp_fin_wait2_timeout: the rest as a timewait entry), or keepalive.  (TIME_WAIT and the
 * FIN_WAIT2 substate have their own timer: inet_timewait_sock.c.) */
void tcp_tw_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, timers.sk));
	if (sk->node.state == TCP_ESTABLISHED || sk->node.state == TCP_CLOSE_WAIT) {
		if (sk->keepalive)
			tcp_keepalive_timer(st, sk);
		return;
	}
	if (sk->node.state == TCP_FIN_WAIT2 && sk->fd < 0)
		tcp_fin_wait2_timeout(st, sk);
}

void tcp_retransmit_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, timers.retransmit));
	if (sk->fastopen_rsk) {
		tcp_fastopen_synack_timer(st, sk);
		return;
	}
	if (sk->reo_pending) {
		sk->reo_pending = false;
		if (sk->node.state != TCP_CLOSE && sk->node.state != TCP_TIME_WAIT && sk->data_init)
			tcp_rack_reo_timeout(st, sk);
		return;
	}
	if (sk->tlp_pending) {
		sk->tlp_pending = false;
		if (sk->node.state != TCP_CLOSE && sk->node.state != TCP_TIME_WAIT && sk->data_init)
			tcp_send_loss_probe(st, sk);
		return;
	}
	if (sk->node.state != TCP_SYN_SENT && sk->node.state != TCP_SYN_RECV) {
		if (sk->node.state != TCP_CLOSE && sk->node.state != TCP_TIME_WAIT && sk->node.state != TCP_LISTEN)
			tcp_data_retransmit_timer(st, sk);
		return;
	}
	/* tcp_write_timeout → retransmits_timed_out */
	unsigned retry_until = sk->syn_retries ? sk->syn_retries : (unsigned)st->sysctl.tcp_syn_retries;
	bool expired = sk->retransmits &&
		       st->now - sk->retrans_stamp >= tcp_model_timeout_us(retry_until, TCP_TIMEOUT_INIT_MS);
	tcp_fastopen_active_detect_blackhole(st, sk, expired);
	if (expired) {
		tcp_trace(st, "tcp_write_err", &sk->node, sk->node.state, TCP_CLOSE);
		MIB_INC(st, TcpExtTCPAbortOnTimeout); /* tcp_write_err's, for a SYN too */
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
