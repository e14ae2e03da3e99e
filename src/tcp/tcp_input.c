/*
 * Receiving segments (Linux's tcp_input.c): the state machine past the lookup that
 * tcp_v4_rcv (tcp_ipv4.c) does.
 *
 *   tcp_rcv_state_process   every state of a full socket: SYN_SENT (tcp_rcv_synsent), the
 *                           simultaneous open's SYN_RECV, then tcp_rcv_established
 *   tcp_rcv_established     RFC 9293 §3.10.7.4's checks in order (PAWS, tcp_sequence,
 *                           RST, SYN, ACK), tcp_ack, tcp_data_queue, tcp_fin
 *   tcp_ack                 window update, RTT, clean the retransmission queue, SACK and
 *                           RACK, fast recovery (tcp_enter_recovery), congestion control
 *   tcp_data_queue          in-order data to the receive ring, the rest to tcp_ofo.c
 *   tcp_conn_request        the listener's SYN handler: a request socket and the SYN-ACK
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ustack/socket.h>

static const char *const state_names[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

const char *ustack_tcp_state_name(int state)
{
	return state > 0 && state <= TCP_NEW_SYN_RECV ? state_names[state] : "?";
}

/* A step of a connection (its 4-tuple in host order), with detail if any. */
static void tcp_trace_detail(struct ustack *st, const char *name, uint32_t laddr, uint16_t lport, uint32_t raddr,
			     uint16_t rport, int old_state, int new_state, const char *detail)
{
	if (!st->ntrace)
		return;
	struct ustack_trace_event ev = {
		.kind = USTACK_TRACE_STEP, .name = name, .detail = detail,
		.laddr.s_addr = htonl(laddr), .raddr.s_addr = htonl(raddr),
		.lport = lport, .rport = rport,
		.old_state = old_state, .new_state = new_state,
	};
	trace_emit_event(st, &ev);
}

void tcp_trace(struct ustack *st, const char *name, const struct ehash_node *n, int old_state,
	       int new_state)
{
	tcp_trace_detail(st, name, n->laddr, n->lport, n->raddr, n->rport, old_state, new_state, NULL);
}

/* ---- Linux's tracepoints (tcp.h says which, and where they fire) ---------------------- */

/* show_tcp_state_name: TCP_ESTABLISHED ... TCP_NEW_SYN_RECV */
static const char *tp_state_name(int state)
{
	static const char *const names[] = {
		"TCP_UNKNOWN",    "TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV",  "TCP_FIN_WAIT1",
		"TCP_FIN_WAIT2",  "TCP_TIME_WAIT",   "TCP_CLOSE",    "TCP_CLOSE_WAIT", "TCP_LAST_ACK",
		"TCP_LISTEN",     "TCP_CLOSING",     "TCP_NEW_SYN_RECV",
	};
	return state > 0 && state <= TCP_NEW_SYN_RECV ? names[state] : "TCP_UNKNOWN";
}

/* DEFINE_RST_REASON's names, as __print_symbolic shows them */
static const char *rst_reason_name(enum sk_rst_reason reason)
{
	static const char *const names[] = {
		[SK_RST_REASON_NOT_SPECIFIED] = "NOT_SPECIFIED",
		[SK_RST_REASON_NO_SOCKET] = "NO_SOCKET",
		[SK_RST_REASON_TCP_INVALID_ACK_SEQUENCE] = "TCP_INVALID_ACK_SEQUENCE",
		[SK_RST_REASON_TCP_RFC7323_PAWS] = "TCP_RFC7323_PAWS",
		[SK_RST_REASON_TCP_TOO_OLD_ACK] = "TCP_TOO_OLD_ACK",
		[SK_RST_REASON_TCP_ACK_UNSENT_DATA] = "TCP_ACK_UNSENT_DATA",
		[SK_RST_REASON_TCP_FLAGS] = "TCP_FLAGS",
		[SK_RST_REASON_TCP_OLD_ACK] = "TCP_OLD_ACK",
		[SK_RST_REASON_TCP_ABORT_ON_DATA] = "TCP_ABORT_ON_DATA",
		[SK_RST_REASON_TCP_TIMEWAIT_SOCKET] = "TCP_TIMEWAIT_SOCKET",
		[SK_RST_REASON_INVALID_SYN] = "INVALID_SYN",
		[SK_RST_REASON_TCP_ABORT_ON_CLOSE] = "TCP_ABORT_ON_CLOSE",
		[SK_RST_REASON_TCP_ABORT_ON_LINGER] = "TCP_ABORT_ON_LINGER",
		[SK_RST_REASON_TCP_ABORT_ON_MEMORY] = "TCP_ABORT_ON_MEMORY",
		[SK_RST_REASON_TCP_STATE] = "TCP_STATE",
		[SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT] = "TCP_KEEPALIVE_TIMEOUT",
		[SK_RST_REASON_TCP_DISCONNECT_WITH_DATA] = "TCP_DISCONNECT_WITH_DATA",
	};
	return (unsigned)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "NOT_SPECIFIED";
}

/* %pI4 of an address in host order */
static const char *ip4_str(char buf[16], uint32_t a)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
	return buf;
}

/* "sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c", the part every
 * socket event shares: an IPv4 socket's v6 fields are its addresses v4-mapped
 * (TP_STORE_V4MAPPED), which %pI6c prints as ::ffff:a.b.c.d */
static int tp_addrs(char *buf, size_t size, const struct ehash_node *n)
{
	char sa[16], da[16];
	ip4_str(sa, n->laddr);
	ip4_str(da, n->raddr);
	return snprintf(buf, size, "sport=%u dport=%u saddr=%s daddr=%s saddrv6=::ffff:%s daddrv6=::ffff:%s",
			n->lport, n->rport, sa, da, sa, da);
}

/* tcp_current_ssthresh: in CWR or recovery the threshold itself, else no less than three
 * quarters of the window */
static uint32_t tcp_current_ssthresh(const struct sock *sk)
{
	if (sk->in_cwr || sk->in_recovery)
		return sk->ssthresh;
	uint32_t q = (sk->cwnd >> 1) + (sk->cwnd >> 2);
	return sk->ssthresh > q ? sk->ssthresh : q;
}

/*
 * tcp_probe: "family=%s src=%pISpc dest=%pISpc mark=%#x data_len=%d snd_nxt=%#x snd_una=%#x
 * snd_cwnd=%u ssthresh=%u snd_wnd=%u srtt=%u rcv_wnd=%u sock_cookie=%llx skbaddr=%p
 * skaddr=%p".  Linux's snd_nxt never goes back after a timeout: ustack's snd_max; srtt is
 * srtt_us >> 3, ustack's srtt_us unscaled; the kernel prints %#x of 0 as 0x0.
 */
void tcp_trace_probe(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	char d[512], sa[16], da[16];
	snprintf(d, sizeof(d),
		 "family=AF_INET src=%s:%u dest=%s:%u mark=0x%x data_len=%u snd_nxt=0x%x snd_una=0x%x snd_cwnd=%u "
		 "ssthresh=%u snd_wnd=%u srtt=%u rcv_wnd=%u sock_cookie=%llx skbaddr=%p skaddr=%p",
		 ip4_str(sa, sk->node.laddr), sk->node.lport, ip4_str(da, sk->node.raddr), sk->node.rport, 0u,
		 (unsigned)th->plen, sk->snd_max, sk->snd_una, sk->cwnd, tcp_current_ssthresh(sk), sk->snd_wnd,
		 sk->srtt_us, sk->rcv_wnd, (unsigned long long)sock_gen_cookie(st, sk), (const void *)th,
		 (const void *)sk);
	tcp_trace_detail(st, "tcp_probe", sk->node.laddr, sk->node.lport, sk->node.raddr, sk->node.rport,
			 sk->node.state, sk->node.state, d);
}

/* tcp_event_sk (tcp_receive_reset, tcp_destroy_sock, tcp_rcv_space_adjust): "family=%s
 * sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c sock_cookie=%llx" */
void tcp_trace_sk(struct ustack *st, const char *name, struct sock *sk)
{
	char d[256];
	int n = snprintf(d, sizeof(d), "family=AF_INET ");
	n += tp_addrs(d + n, sizeof(d) - (size_t)n, &sk->node);
	snprintf(d + n, sizeof(d) - (size_t)n, " sock_cookie=%llx", (unsigned long long)sock_gen_cookie(st, sk));
	tcp_trace_detail(st, name, sk->node.laddr, sk->node.lport, sk->node.raddr, sk->node.rport, sk->node.state,
			 sk->node.state, d);
}

/* tcp_retransmit_synack: "family=%s sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c
 * daddrv6=%pI6c", from the request (ir_num, ir_rmt_port, ir_loc_addr, ir_rmt_addr) */
void tcp_trace_retransmit_synack(struct ustack *st, const struct ehash_node *req)
{
	char d[256];
	int n = snprintf(d, sizeof(d), "family=AF_INET ");
	tp_addrs(d + n, sizeof(d) - (size_t)n, req);
	tcp_trace_detail(st, "tcp_retransmit_synack", req->laddr, req->lport, req->raddr, req->rport, req->state,
			 req->state, d);
}

/* tcp_retransmit_skb (Linux ≥ 6.17, with err): "skbaddr=%p skaddr=%p family=%s sport=%hu
 * dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c state=%s err=%d" */
void tcp_trace_retransmit_skb(struct ustack *st, const struct sock *sk, int err)
{
	char d[320];
	int n = snprintf(d, sizeof(d), "skbaddr=%p skaddr=%p family=AF_INET ", (const void *)NULL, (const void *)sk);
	n += tp_addrs(d + n, sizeof(d) - (size_t)n, &sk->node);
	snprintf(d + n, sizeof(d) - (size_t)n, " state=%s err=%d", tp_state_name(sk->node.state), err);
	tcp_trace_detail(st, "tcp_retransmit_skb", sk->node.laddr, sk->node.lport, sk->node.raddr, sk->node.rport,
			 sk->node.state, sk->node.state, d);
}

/*
 * tcp_send_reset: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s".  A full
 * socket gives the addresses (TP_STORE_ADDR_PORTS: a listener's remote end is 0.0.0.0:0);
 * without one they are the segment's, turned round to read as the RST goes; state 0 prints
 * UNKNOWN.
 */
void tcp_trace_send_reset(struct ustack *st, const struct sock *sk, int state, const struct ipv4_repr *ip,
			  const struct tcp_repr *th, enum sk_rst_reason reason)
{
	uint32_t laddr = 0, raddr = 0;
	uint16_t lport = 0, rport = 0;
	if (sk) {
		laddr = sk->node.laddr;
		raddr = sk->node.raddr;
		lport = sk->node.lport;
		rport = sk->node.rport;
	} else if (ip && th) {
		laddr = ip->daddr;
		raddr = ip->saddr;
		lport = th->dport;
		rport = th->sport;
	}
	char d[256], sa[16], da[16];
	snprintf(d, sizeof(d), "skbaddr=%p skaddr=%p src=%s:%u dest=%s:%u state=%s reason=%s", (const void *)th,
		 (const void *)sk, ip4_str(sa, laddr), lport, ip4_str(da, raddr), rport,
		 state ? tp_state_name(state) : "UNKNOWN", rst_reason_name(reason));
	tcp_trace_detail(st, "tcp_send_reset", laddr, lport, raddr, rport, state, state, d);
}

void tcp_set_state(struct ustack *st, struct sock *sk, int state)
{
	int old = sk->node.state;
	if (old == state)
		return;
	/* TcpCurrEstab counts ESTABLISHED and CLOSE_WAIT (RFC 4022's tcpCurrEstab) */
	bool was = old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT;
	bool is = state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT;
	if (is && !was)
		MIB_INC(st, TcpCurrEstab);
	if (was && !is) {
		st->mib[MIB_TcpCurrEstab]--;
		if (state == TCP_CLOSE)
			MIB_INC(st, TcpEstabResets);
	}
	bool owed = tcp_owes_peer(sk);
	sk->node.state = (uint8_t)state;
	tcp_account_owing(st, sk, owed);
	tcp_trace(st, "tcp_set_state", &sk->node, old, state);
}

void tcp_account_owing(struct ustack *st, struct sock *sk, bool owed)
{
	bool owes = tcp_owes_peer(sk);
	if (owes == owed)
		return;
	if (owes) {
		st->tcp->undelivered++;
		return;
	}
	st->tcp->undelivered--;
	/* delivered: FIN_WAIT2 and TIME_WAIT mean our FIN was acknowledged, as does LAST_ACK's
	 * end with snd_una past it; a reset, a timeout or an abort ends it otherwise */
	bool delivered = sk->node.state == TCP_FIN_WAIT2 || sk->node.state == TCP_TIME_WAIT ||
			 (sk->fin_queued && sk->snd_una == sk->write_seq + 1);
	if (!delivered)
		st->tcp->undelivered_lost++;
}

/* tcp_done: the connection is over; err (if any) is what the application will see. */
void tcp_done(struct ustack *st, struct sock *sk, int err)
{
	if (sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV)
		MIB_INC(st, TcpAttemptFails);
	tcp_set_state(st, sk, TCP_CLOSE);
	timer_cancel(st, &sk->timers.retransmit);
	reqsk_fastopen_remove(st, sk, false); /* a Fast Open child's place in its listener's queue */
	inet_ehash_remove(st, &sk->node);
	sk->hashed = false;
	if (!sk->bound_port)
		inet_put_port(st, sk);
	if (err)
		sk->err = err;
	sk->shut_rd = sk->shut_wr = true;
	if (sk->fd < 0 && !sk->parent && !sk->lingering)
		sk_free(st, sk);
	else
		sk_wake_sk(st, sk);
}

/*
 * tcp_sync_mss (__tcp_mtu_to_mss): the path's MSS, clamped by the peer's, never below
 * net.ipv4.tcp_min_snd_mss (48), less the timestamp option every segment will carry.  The
 * floor is what keeps a peer that announces MSS 1 (or 0..11, which with timestamps would
 * underflow) from making us send one-byte segments — or none at all (the SACK-panic family,
 * CVE-2019-11477/11479); Linux applies it after the clamp and before the options.
 */
void tcp_sync_mss(struct ustack *st, struct sock *sk)
{
	uint32_t mss = sk->rt.mtu - IPV4_HLEN - TCP_HLEN;
	if (mss > sk->mss_clamp)
		mss = sk->mss_clamp;
	if (mss < (uint32_t)st->sysctl.tcp_min_snd_mss)
		mss = (uint32_t)st->sysctl.tcp_min_snd_mss;
	sk->mss_cache = (uint16_t)(mss - (sk->tstamp_ok ? 12u : 0u));
}

/* The peer's SYN (or SYN-ACK): its ISN, and which of the options we offered it offered too. */
static void tcp_negotiate(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	sk->ts_recent_stamp_ms = tcp_clock_ms(st);
	sk->irs = th->seq;
	sk->rcv_nxt = th->seq + 1;
	sk->snd_wnd = th->window; /* RFC 7323 §2.2: never scaled in a SYN */
	sk->wscale_ok = sk->wscale_ok && th->opt.ws_ok;
	if (sk->wscale_ok) {
		sk->snd_wscale = th->opt.wscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : th->opt.wscale;
	} else {
		sk->snd_wscale = sk->rcv_wscale = 0;
		if (sk->rcv_wnd > 65535u)
			sk->rcv_wnd = 65535u;
	}
	sk->sack_ok = sk->sack_ok && th->opt.sack_ok;
	sk->tstamp_ok = sk->tstamp_ok && th->opt.ts_ok;
	if (sk->tstamp_ok)
		sk->ts_recent = th->opt.tsval;
	/* tcp_parse_options: an MSS option of 0 is ignored (as if absent: 536) */
	uint16_t peer_mss = th->opt.mss_ok && th->opt.mss ? th->opt.mss : TCP_MSS_DEFAULT;
	if (peer_mss < sk->mss_clamp)
		sk->mss_clamp = peer_mss;
}

/* tcp_finish_connect: MSS and congestion control (RFC 6928's initial window), ESTABLISHED,
 * and wake the connect()ing thread. */

static void tcp_finish_connect(struct ustack *st, struct sock *sk)
{
	tcp_sync_mss(st, sk);
	sk->cwnd = TCP_INIT_CWND;
	sk->ssthresh = 0x7fffffff;
	timer_cancel(st, &sk->timers.retransmit);
	/* the handshake's round trip is the first RTT sample, unless the SYN was resent (Karn) */
	if (!sk->retransmits)
		tcp_rtt_estimator(sk, (uint32_t)(st->now - sk->retrans_stamp));
	sk->retransmits = sk->backoff = 0;
	if (tcp_data_init(st, sk) < 0) /* which starts lrcvtime, as tcp_finish_connect does */
		return;
	tcp_set_state(st, sk, TCP_ESTABLISHED);
	tcp_reset_keepalive_timer(st, sk);
	tcp_trace(st, "sk_state_change", &sk->node, TCP_ESTABLISHED, TCP_ESTABLISHED);
	sk_wake_sk(st, sk);
}

/* A SYN-ACK acknowledged our SYN and `ack - iss - 1` bytes of the data a Fast Open SYN
 * carried (tcp_ack's part in SYN_SENT): those leave the send ring. */
static void tcp_synsent_ack_data(struct ustack *st, struct sock *sk, uint32_t ack)
{
	uint32_t acked = ack - sk->iss - 1;
	sk->snd_una = ack;
	sk->delivered++; /* the SYN; with its data, counted once (tcp_rcv_fastopen_synack) */
	if (!acked)
		return;
	tcp_buf_consume(&sk->sndq, acked);
	tcp_wq_acked(sk);
	int32_t ca_rtt;
	tcp_txlog_acked(sk, ack, st->now, &ca_rtt);
	if (sk->ext && sk->ext->n)
		sk_zerocopy_acked(sk); /* a MSG_ZEROCOPY Fast Open's data is delivered */
	sk->bytes_acked += acked;
}

/* tcp_fastopen_add_skb: data (and a FIN) that came with a Fast Open SYN-ACK, in order. */
static void tcp_fastopen_add_skb(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	if (th->plen && tcp_rcv_ring(st, sk) == 0) {
		uint32_t n = tcp_buf_push(&sk->rcvq, th->payload, (uint32_t)th->plen);
		sk->rcv_nxt += n;
		sk->bytes_received += n;
		sk->data_segs_in++;
		sk_wake_sk(st, sk);
	}
	/* a FIN too: CLOSE_WAIT, and the caller's ACK covers it (tcp_fin schedules, not sends) */
	if ((th->flags & TCPHDR_FIN) && sk->rcv_nxt == th->seq + 1 + th->plen) {
		sk->rcv_nxt++;
		sk->fin_rcvd = true;
		tcp_set_state(st, sk, TCP_CLOSE_WAIT);
		sk_wake_sk(st, sk);
	}
}

/*
 * tcp_rcv_fastopen_synack: the answer to an active Fast Open's SYN.  The cache learns the
 * server's MSS and cookie — an unsolicited cookie is ignored; a SYN-ACK to a resent SYN that
 * neither brings a cookie nor acknowledges the data suggests the SYN with data was dropped on
 * the way; a request that got no cookie tries the experimental option next time (and after
 * that RFC 7413's again).  Data the SYN-ACK did not acknowledge is sent again at once, the
 * first segment carrying the ACK of the SYN-ACK (TcpExtTCPFastOpenActiveFail); true then.
 */
static bool tcp_rcv_fastopen_synack(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	struct tcp_fastopen_cookie cookie;
	tcp_fastopen_cookie_from_opts(&th->opt, &cookie);
	bool data = sk->syn_data && sk->snd_una != sk->snd_max;
	uint16_t mss = th->opt.mss_ok ? th->opt.mss : 0;
	bool syn_drop = false;
	uint8_t try_exp = 0;
	if (!sk->syn_fastopen)
		cookie.len = -1;
	else if (sk->total_retrans)
		syn_drop = cookie.len < 0 && data;
	else if (cookie.len < 0 && !sk->syn_data)
		try_exp = sk->syn_fastopen_exp ? 2 : 1;
	tcp_fastopen_cache_set(st, sk, mss, &cookie, syn_drop, try_exp);
	if (data) {
		sk->fastopen_client_fail = sk->total_retrans ? TFO_SYN_RETRANSMITTED : TFO_DATA_NOT_ACKED;
		/* tcp_mark_skb_lost, then tcp_xmit_retransmit_queue: the data stays marked lost, so
		 * the first SACK for what follows it starts recovery and sends it again */
		uint32_t lost_end = sk->snd_max;
		sk->snd_nxt = sk->snd_una;
		tcp_write_xmit(st, sk);
		sk->rack.lost_edge = lost_end;
		sk->high_rxt = lost_end; /* retransmitted outside recovery: TCP_INFO's retrans */
		tcp_rearm_rto(st, sk);
		MIB_INC(st, TcpExtTCPFastOpenActiveFail);
		return true;
	}
	sk->syn_data_acked = sk->syn_data;
	if (sk->syn_data_acked)
		MIB_INC(st, TcpExtTCPFastOpenActive);
	tcp_fastopen_add_skb(st, sk, th);
	return false;
}

/* tcp_rcv_synsent_state_process (RFC 9293 §3.10.7.3) */
static void tcp_rcv_synsent(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			    const struct tcp_repr *th)
{
	tcp_trace(st, "tcp_rcv_synsent_state_process", &sk->node, sk->node.state, sk->node.state);
	if (th->flags & TCPHDR_ACK) {
		/* An ACK that does not acknowledge our SYN: reset it, stay in SYN_SENT. */
		if (!after(th->ack, sk->snd_una) || after(th->ack, sk->snd_nxt)) {
			/* "Previous FIN/ACK or RST/ACK might be ignored": Linux resends the SYN
			 * almost at once (TCP_TIMEOUT_MIN) if it has not retransmitted yet. */
			if (sk->retransmits == 0)
				timer_arm(st, &sk->timers.retransmit, st->now + TCP_TIMEOUT_MIN_MS * 1000u);
			tcp_v4_send_reset_reason(st, sk, ip, th, SK_RST_REASON_TCP_INVALID_ACK_SEQUENCE);
			return;
		}
		/* RFC 7323 §5.5 (PAWS) for the SYN-ACK: it must echo a timestamp of ours, between
		 * the first SYN and now — else it is old, or forged: RST, stay in SYN_SENT */
		if (th->opt.ts_ok && th->opt.tsecr &&
		    !between(th->opt.tsecr - sk->ts_off, (uint32_t)(sk->retrans_stamp / 1000u), tcp_clock_ms(st))) {
			MIB_INC(st, TcpExtPAWSActive);
			tcp_v4_send_reset_reason(st, sk, ip, th, SK_RST_REASON_TCP_RFC7323_PAWS);
			return;
		}
		if (th->flags & TCPHDR_RST) {
			/* tcp_reset: in SYN_SENT the answer is ECONNREFUSED */
			trace_tcp_receive_reset(st, sk);
			tcp_done(st, sk, ECONNREFUSED);
			return;
		}
		if (!(th->flags & TCPHDR_SYN))
			return;
		/* A good SYN-ACK.  Linux wakes connect() before sending the ACK. */
		tcp_negotiate(st, sk, th);
		/* tcp_ecn_rcv_synack: ECN if the SYN-ACK says ECE and not CWR (RFC 3168 §6.1.1) */
		if ((th->flags & (TCPHDR_ECE | TCPHDR_CWR)) != TCPHDR_ECE)
			sk->ecn_flags = 0;
		tcp_synsent_ack_data(st, sk, th->ack);
		tcp_finish_connect(st, sk);
		if ((sk->syn_fastopen || sk->syn_data) && tcp_rcv_fastopen_synack(st, sk, th))
			return;
		/* a writer waits for this connect (a blocking sendto(MSG_FASTOPEN) with data the SYN
		 * did not take: sk_write_pending): save the ACK — its data will carry it — in
		 * quick-ack mode, the timer at TCP_DELACK_MAX in case it does not */
		if (sk->fastopen_req && sk->fastopen_req->copied < sk->fastopen_req->size) {
			tcp_enter_quickack_mode(sk, TCP_QUICKACKS);
			sk->rcv_unacked++;
			timer_arm(st, &sk->timers.delack, st->now + (uint64_t)TCP_DELACK_MAX_MS * 1000u);
			return;
		}
		tcp_send_ack(st, sk);
		return;
	}
	if (th->flags & TCPHDR_RST)
		return; /* a RST without ACK cannot be ours to honour */
	if (th->flags & TCPHDR_SYN) {
		/* Crossed SYNs: a simultaneous open (RFC 9293 §3.5, figure 8). */
		tcp_negotiate(st, sk, th);
		if ((th->flags & (TCPHDR_ECE | TCPHDR_CWR)) != (TCPHDR_ECE | TCPHDR_CWR))
			sk->ecn_flags = 0; /* tcp_ecn_rcv_syn */
		tcp_set_state(st, sk, TCP_SYN_RECV);
		tcp_retransmit_syn(st, sk); /* our SYN again, now as a SYN-ACK */
	}
}

/* ---- established connections (tcp_rcv_established, tcp_ack, tcp_data_queue) ---------- */

/* RFC 6298 §2, with Linux's floor: RTO = SRTT + max(4·RTTVAR, 200 ms), at most 120 s. */
void tcp_rtt_estimator(struct sock *sk, uint32_t m)
{
	if (!m)
		m = 1;
	if (!sk->rtt_min_us || m < sk->rtt_min_us)
		sk->rtt_min_us = m;
	if (!sk->srtt_us) {
		sk->srtt_us = m;
		sk->rttvar_us = m / 2;
	} else {
		uint32_t err = m > sk->srtt_us ? m - sk->srtt_us : sk->srtt_us - m;
		sk->rttvar_us = sk->rttvar_us - sk->rttvar_us / 4 + err / 4;
		sk->srtt_us = sk->srtt_us - sk->srtt_us / 8 + m / 8;
	}
	uint64_t var = (uint64_t)sk->rttvar_us * 4;
	if (var < TCP_RTO_MIN_MS * 1000u)
		var = TCP_RTO_MIN_MS * 1000u;
	uint64_t rto_ms = (sk->srtt_us + var + 999) / 1000;
	sk->rto_ms = (uint32_t)(rto_ms > TCP_RTO_MAX_MS ? TCP_RTO_MAX_MS : rto_ms);
}

/*
 * tcp_sequence (Linux 6.17+): is the segment acceptable (RFC 9293 §3.10.7.4)?  Old if it ends
 * before rcv_nxt; beyond the window if it starts past its right edge — or merely ends past it
 * while unread data waits in the receive queue ("tcp: do not accept packets beyond window":
 * only an empty queue may take a segment the window does not cover, so a peer cannot make
 * the receiver hold more than it offered).  0 when acceptable.
 */
enum { TCP_SEQ_OK, TCP_SEQ_OLD, TCP_SEQ_BEYOND };
static int tcp_sequence(const struct sock *sk, uint32_t seq, uint32_t end_seq)
{
	uint32_t win = (int32_t)(sk->rcv_adv - sk->rcv_nxt) > 0 ? sk->rcv_adv - sk->rcv_nxt : 0;
	if (before(end_seq, sk->rcv_nxt))
		return TCP_SEQ_OLD;
	if (after(end_seq, sk->rcv_nxt + win) && (after(seq, sk->rcv_nxt + win) || sk->rcvq.len))
		return TCP_SEQ_BEYOND;
	return TCP_SEQ_OK;
}

/*
 * tcp_oow_rate_limited: at most one ACK to out-of-window segments per
 * net.ipv4.tcp_invalid_ratelimit (500 ms) per connection, so two confused peers cannot
 * ping-pong ACKs forever.  Segments that occupy sequence space (data or FIN) without SYN are
 * not part of such a loop, and Linux 6.18 answers every one of them — an attacker flooding
 * out-of-window data gets one ACK per segment, a constant cost per packet, exactly as from the
 * kernel.  A skipped ACK is counted under `skipped_mib` (TcpExtTCPACKSkipped{Seq,PAWS,Challenge}).
 */
bool tcp_oow_rate_limited(struct ustack *st, struct sock *sk, const struct tcp_repr *th,
			  enum mib_id skipped_mib)
{
	if (th && (th->plen || (th->flags & TCPHDR_FIN)) && !(th->flags & TCPHDR_SYN))
		return false;
	uint32_t now = tcp_clock_ms(st);
	if (sk->oow_ack_sent && (int32_t)(now - sk->last_oow_ack_ms) >= 0 &&
	    now - sk->last_oow_ack_ms < (uint32_t)st->sysctl.tcp_invalid_ratelimit) {
		st->mib[skipped_mib]++;
		return true;
	}
	sk->oow_ack_sent = true;
	sk->last_oow_ack_ms = now;
	return false;
}

/* tcp_send_dupack, for a segment PAWS or the window refused: one that brought old data
 * again says our ACK of it was lost (TcpExtDelayedACKLost) — ACK every segment for a while,
 * and D-SACK what came twice. */
static void tcp_send_dupack_limited(struct ustack *st, struct sock *sk, const struct tcp_repr *th,
				    enum mib_id skipped_mib)
{
	if (tcp_oow_rate_limited(st, sk, th, skipped_mib))
		return;
	uint32_t end_seq = th->seq + (uint32_t)th->plen + !!(th->flags & TCPHDR_SYN) + !!(th->flags & TCPHDR_FIN);
	if (end_seq != th->seq && before(th->seq, sk->rcv_nxt)) {
		MIB_INC(st, TcpExtDelayedACKLost);
		tcp_enter_quickack_mode(sk, TCP_QUICKACKS);
		tcp_dsack_set(st, sk, th->seq, after(end_seq, sk->rcv_nxt) ? sk->rcv_nxt : end_seq);
	}
	tcp_send_ack(st, sk);
}

/* tcp_send_challenge_ack (RFC 5961 §3.2, §4.2, §5.2): an ACK that tells a blind attacker
 * nothing and a real peer where we are; counted only when sent. */
static void tcp_send_challenge_ack(struct ustack *st, struct sock *sk)
{
	if (tcp_oow_rate_limited(st, sk, NULL, MIB_TcpExtTCPACKSkippedChallenge))
		return;
	MIB_INC(st, TcpExtTCPChallengeACK);
	tcp_send_ack(st, sk);
}

/* tcp_reset: the error a RST leaves depends on the state (Linux's tcp_reset, which first of
 * all fires trace_tcp_receive_reset). */
static void tcp_reset(struct ustack *st, struct sock *sk)
{
	trace_tcp_receive_reset(st, sk);
	int err = sk->node.state == TCP_CLOSE_WAIT ? EPIPE : ECONNRESET;
	if (sk->node.state == TCP_TIME_WAIT || sk->node.state == TCP_LAST_ACK || sk->node.state == TCP_CLOSING)
		err = 0;
	tcp_done(st, sk, err);
}

/*
 * tcp_cwnd_reduction — Proportional Rate Reduction (RFC 6937) as Linux does it: while the
 * flight is above ssthresh, send in proportion to what the peer reports delivered
 * (ssthresh/prior_cwnd of it); below, catch up to ssthresh no faster than slow start
 * (PRR-SSRB).  The first ACK of recovery always lets the fast retransmit go.
 */
static void tcp_cwnd_reduction(struct sock *sk, uint32_t newly_acked_sacked, uint32_t newly_lost, bool una_advanced)
{
	if (!newly_acked_sacked || !sk->prr.prior_cwnd)
		return;
	uint32_t mss = tcp_mss_now(sk);
	uint32_t in_flight = (tcp_sack_pipe(sk) + mss - 1) / mss;
	int64_t delta = (int64_t)sk->ssthresh - in_flight;
	sk->prr.delivered += newly_acked_sacked;
	int64_t sndcnt;
	if (delta < 0) {
		sndcnt = (int64_t)(((uint64_t)sk->ssthresh * sk->prr.delivered + sk->prr.prior_cwnd - 1) / sk->prr.prior_cwnd) -
			 sk->prr.out;
	} else {
		sndcnt = (int64_t)sk->prr.delivered - sk->prr.out;
		if (sndcnt < newly_acked_sacked)
			sndcnt = newly_acked_sacked;
		if (una_advanced && !newly_lost)
			sndcnt++;
		if (sndcnt > delta)
			sndcnt = delta;
	}
	if (sndcnt < (sk->prr.out ? 0 : 1))
		sndcnt = sk->prr.out ? 0 : 1;
	sk->cwnd = in_flight + (uint32_t)sndcnt;
}

/*
 * Fast recovery (RFC 5681 §3.2) entered on `reordering` duplicate ACKs, or — with SACK — when
 * losses are known (RACK's marks, or RFC 6675's SACKed segments above a hole).  With SACK
 * the window comes down by PRR from what it was to ssthresh while the lost data is resent;
 * without it, NewReno's (RFC 6582: cwnd = ssthresh + 3, inflated by each further duplicate
 * ACK).  Either way the first unacknowledged segment goes again at once.
 */
static void tcp_enter_recovery(struct ustack *st, struct sock *sk, uint32_t delivered, uint32_t newly_lost,
			       bool una_advanced)
{
	if (sk->in_cwr) { /* already reducing for an ECN echo: no second reduction */
		sk->in_cwr = false;
	} else {
		sk->prr.prior_cwnd = sk->cwnd;
		sk->ssthresh = sk->ca_ops->ssthresh(st, sk);
		sk->prr.delivered = sk->prr.out = 0;
	}
	sk->in_recovery = true;
	sk->high_seq = sk->snd_max;
	tcp_trace(st, "tcp_enter_recovery", &sk->node, sk->node.state, sk->node.state);
	if (sk->sack_ok) {
		MIB_INC(st, TcpExtTCPSackRecovery);
		uint32_t mss = tcp_mss_now(sk);
		sk->high_rxt = sk->snd_una;
		tcp_cwnd_reduction(sk, delivered ? delivered : 1, newly_lost, una_advanced);
		/* the head again — as much of it as its skb holds, in one packet of as many
		 * segments as the reduced window leaves room for (tcp_xmit_retransmit_queue) */
		uint32_t pipe = tcp_sack_pipe(sk);
		uint32_t segs = sk->cwnd * mss > pipe ? (sk->cwnd * mss - pipe) / mss : 0;
		if (segs < 1)
			segs = 1; /* the fast retransmit always goes */
		if (segs > tcp_tso_segs(st, sk, mss))
			segs = tcp_tso_segs(st, sk, mss);
		/* segs segments of what a segment carries now (tcp_retransmit_skb's cur_mss * segs) */
		uint32_t most = segs * tcp_current_mss(sk);
		uint32_t hole = sk->nsacked && after(sk->sacked[0].start, sk->snd_una) ? sk->sacked[0].start - sk->snd_una
										       : most;
		uint32_t sent = tcp_retransmit_skb(st, sk, sk->snd_una, hole < most ? hole : most);
		uint32_t end = sk->snd_una + (sent ? sent : mss);
		sk->high_rxt = (int32_t)(end - sk->snd_max) > 0 ? sk->snd_max : end;
		tcp_sack_recovery_xmit(st, sk);
		return;
	}
	MIB_INC(st, TcpExtTCPRenoRecovery);
	sk->cwnd = sk->ssthresh + 3;
	tcp_retransmit_head(st, sk);
}

/* Recovery may start once the last one (or an RTO's go-back) is over — snd_una at its
 * recovery point — or at once from CWR, whose reduction recovery takes over (Linux enters
 * Recovery from any state below it). */
static bool tcp_may_enter_recovery(const struct sock *sk)
{
	return sk->in_cwr || !before(sk->snd_una, sk->high_seq);
}

/* tcp_rack_reo_timeout: the reordering window has passed for data RACK was waiting on: what
 * it now finds lost is retransmitted — recovery starts if it had not — and the RTO takes the
 * timer back. */
void tcp_rack_reo_timeout(struct ustack *st, struct sock *sk)
{
	uint32_t lost_before = tcp_sack_lost_total(sk);
	sk->rack.advanced = true;
	tcp_rack_mark_lost(st, sk);
	if (tcp_sack_lost_total(sk) != lost_before) {
		uint32_t mss = tcp_mss_now(sk);
		uint32_t newly_lost = (tcp_sack_lost_total(sk) - lost_before + mss - 1) / mss;
		if (!sk->in_recovery && tcp_may_enter_recovery(sk)) {
			tcp_enter_recovery(st, sk, 1, newly_lost, false);
		} else if (sk->in_recovery) {
			tcp_cwnd_reduction(sk, 1, newly_lost, false);
			tcp_sack_recovery_xmit(st, sk);
		}
	}
	tcp_rearm_rto(st, sk);
}

/* tcp_process_tlp_ack: the answer to a loss probe.  If the probe was new data, or a
 * retransmission answered by a pure duplicate ACK (the original arrived too), nothing was
 * lost; if a retransmitted probe's ACK moves past the probe, it repaired a loss, and the
 * window is reduced once, as a recovery would (TcpExtTCPLossProbeRecovery). */
static void tcp_process_tlp_ack(struct ustack *st, struct sock *sk, uint32_t ack, bool advanced)
{
	if (!sk->tlp_high_seq || before(ack, sk->tlp_high_seq))
		return;
	if (sk->tlp_retrans && after(ack, sk->tlp_high_seq) && advanced) {
		sk->ssthresh = sk->ca_ops->ssthresh(st, sk);
		sk->cwnd = sk->ssthresh;
		MIB_INC(st, TcpExtTCPLossProbeRecovery);
	}
	sk->tlp_high_seq = 0;
}

/* Segments an ACK reported delivered (cumulatively or newly SACKed) and newly lost. */
static uint32_t ack_delivered(const struct sock *sk, uint32_t una_before, uint32_t sacked_before)
{
	uint32_t mss = tcp_mss_now(sk);
	int64_t b = (int64_t)(sk->snd_una - una_before) + tcp_sacked_bytes(sk) - sacked_before;
	return b > 0 ? (uint32_t)((b + mss - 1) / mss) : 0;
}

static uint32_t ack_newly_lost(const struct sock *sk, uint32_t lost_before)
{
	uint32_t mss = tcp_mss_now(sk);
	uint32_t lost = sk->sack_ok ? tcp_sack_lost_total(sk) : 0;
	return lost > lost_before ? (lost - lost_before + mss - 1) / mss : 0;
}

/* The SACK side of tcp_fastretrans_alert, once an ACK is taken in: in recovery, PRR sizes the
 * window for what the ACK reported delivered and NextSeg fills it; outside, recovery starts
 * when `recover` says losses are known and the last recovery or RTO is over. */
static void tcp_sack_fastretrans(struct ustack *st, struct sock *sk, bool recover, uint32_t una_before,
				 uint32_t sacked_before, uint32_t lost_before)
{
	uint32_t delivered = ack_delivered(sk, una_before, sacked_before);
	uint32_t newly_lost = ack_newly_lost(sk, lost_before);
	bool una_advanced = sk->snd_una != una_before;
	if (sk->in_recovery) {
		tcp_cwnd_reduction(sk, delivered, newly_lost, una_advanced);
		tcp_sack_recovery_xmit(st, sk); /* RFC 6675 §5 step (C) */
	} else if (recover && tcp_may_enter_recovery(sk)) {
		tcp_enter_recovery(st, sk, delivered, newly_lost, una_advanced);
	}
}

/* tcp_ecn_rcv_ecn_echo: the peer saw congestion (ECE on an ACK of an ECN connection) */
static bool tcp_ecn_rcv_ecn_echo(const struct sock *sk, const struct tcp_repr *th)
{
	return (th->flags & TCPHDR_ECE) && !(th->flags & TCPHDR_SYN) && (sk->ecn_flags & TCP_ECN_OK);
}

/*
 * tcp_enter_cwr (RFC 3168 §6.1.2): an ECN echo is a loss without the loss — the window comes
 * down as in recovery (ssthresh from the congestion control, PRR toward it), once per window
 * of data: until what was sent when the echo came is acknowledged, further echoes change
 * nothing.  The next new segment tells the peer with CWR.
 */
static void tcp_enter_cwr(struct ustack *st, struct sock *sk)
{
	sk->prr.prior_cwnd = sk->cwnd;
	sk->ssthresh = sk->ca_ops->ssthresh(st, sk);
	sk->prr.delivered = sk->prr.out = 0;
	sk->high_seq = sk->snd_max;
	sk->tlp_high_seq = 0;
	sk->cwnd_cnt = 0;
	sk->in_cwr = true;
	sk->ecn_flags |= TCP_ECN_QUEUE_CWR;
	tcp_trace(st, "tcp_enter_cwr", &sk->node, sk->node.state, sk->node.state);
}

/* An ACK in CWR: PRR brings the window down for what it delivered; once something above the
 * reduction's start is acknowledged the reduction ends at ssthresh (tcp_end_cwnd_reduction). */
static void tcp_cwr_progress(struct sock *sk, uint32_t una_before, uint32_t sacked_before)
{
	if (after(sk->snd_una, sk->high_seq)) {
		sk->in_cwr = false;
		sk->cwnd = sk->ssthresh;
		return;
	}
	tcp_cwnd_reduction(sk, ack_delivered(sk, una_before, sacked_before), 0, sk->snd_una != una_before);
}

/* tcp_ack_update_window (RFC 9293 §3.10.7.4, SND.WL1/WL2): the window of a segment newer
 * than the one that last set it.  True when it changed (such an ACK is no duplicate). */
static bool tcp_ack_update_window(struct sock *sk, const struct tcp_repr *th, uint32_t ack)
{
	uint32_t wnd = (uint32_t)th->window << sk->snd_wscale;
	bool changed = false;
	/* tcp_may_update_window: a newer ACK or a newer segment — or, from the same segment
	 * number, only a larger window or a zero one (Linux's reading of RFC 9293 §3.10.7.4's
	 * SND.WL1 = SEG.SEQ case: a reordered older ACK cannot shrink the window) */
	if (before(sk->snd_una, ack) || before(sk->snd_wl1, th->seq) ||
	    (sk->snd_wl1 == th->seq && (wnd > sk->snd_wnd || !wnd))) {
		changed = wnd != sk->snd_wnd;
		sk->snd_wnd = wnd;
		sk->snd_wl1 = th->seq;
		sk->snd_wl2 = ack;
		if (wnd > sk->max_window)
			sk->max_window = wnd;
	}
	return changed;
}

/*
 * tcp_clean_rtx_queue: snd_una moved to `ack`.  What it covers leaves the send ring and the
 * write queue, zerocopy sends complete, the RTT is sampled (tcp_ack_update_rtt: from the send
 * time of the oldest newly acknowledged data never retransmitted, else the echoed timestamp,
 * RFC 7323 §4), the backoff ends, and the SACK scoreboard drops what is below snd_una.
 * Returns the segments newly delivered; *fin_acked when the ACK covers our FIN, and
 * *cwnd_limited whether the window was in use before this ACK (tcp_is_cwnd_limited).
 */
static uint32_t tcp_clean_rtx_queue(struct ustack *st, struct sock *sk, const struct tcp_repr *th, uint32_t ack,
				    bool *fin_acked, bool *cwnd_limited)
{
	uint32_t mss = tcp_mss_now(sk);
	uint32_t acked = ack - sk->snd_una;
	*fin_acked = sk->fin_queued && ack == sk->write_seq + 1;
	uint32_t data = acked - (*fin_acked ? 1 : 0);
	if (sk->ext && sk->ext->ts_used) /* tcp_ack_tstamp: while the data is still here */
		tcp_ack_tstamp(st, sk, sk->snd_una, ack);
	tcp_buf_consume(&sk->sndq, data < sk->sndq.len ? data : sk->sndq.len);
	if (!sk->sndq.len)
		sk->sndq.head = 0; /* an empty ring starts again at its front: fewer pages touched */
	sk->snd_una = ack;
	tcp_urg_acked(sk);
	tcp_wq_acked(sk);
	if (sk->ext && sk->ext->n)
		sk_zerocopy_acked(sk); /* notifications for zerocopy sends now delivered */
	if (before(sk->snd_nxt, ack))
		sk->snd_nxt = ack;
	/* the recovery point follows snd_una outside recovery, so that comparisons with it stay
	 * within half the sequence space however much data goes by */
	if (!sk->in_recovery && !sk->in_cwr && after(ack, sk->high_seq))
		sk->high_seq = ack;
	sk->bytes_acked += acked; /* tcp_snd_una_update: the FIN counts too */
	int32_t ca_rtt;
	uint32_t rtt_us = tcp_txlog_acked(sk, ack, st->now, &ca_rtt);
	if (rtt_us) {
		tcp_rtt_estimator(sk, rtt_us);
	} else if (sk->tstamp_ok && th->opt.ts_ok && th->opt.tsecr && !sk->retransmits) {
		/* tcp_ack_update_rtt: the echoed timestamp, for the estimator and for CC */
		rtt_us = (tcp_clock_ms(st) - (th->opt.tsecr - sk->ts_off)) * 1000u;
		tcp_rtt_estimator(sk, rtt_us);
		ca_rtt = (int32_t)(rtt_us > INT32_MAX ? INT32_MAX : rtt_us);
	}
	if (sk->ca_ops->pkts_acked) /* before cong_avoid, as tcp_clean_rtx_queue calls it */
		sk->ca_ops->pkts_acked(st, sk, ca_rtt);
	if (sk->retransmits && !sk->tstamp_ok && !sk->srtt_us)
		sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	sk->retransmits = 0;
	sk->backoff = 0;
	uint32_t segs = (data + mss - 1) / mss;
	sk->delivered += segs;
	/* grow only a window that is in use */
	*cwnd_limited = tcp_is_cwnd_limited(sk);
	if (sk->snd_una == sk->write_seq)
		tcp_chrono_stop(st, sk, TCP_CHRONO_BUSY);
	if (sk->chrono_type == TCP_CHRONO_SNDBUF_LIMITED && tcp_wmem_queued(sk) < sk->snd_limit)
		tcp_chrono_stop(st, sk, TCP_CHRONO_SNDBUF_LIMITED); /* tcp_new_space */
	if (sk->nsacked) {
		tcp_sack_clean(sk);
		/* tcp_check_sack_reneging: the ACK stops exactly where a SACKed range begins —
		 * the receiver dropped what it had SACKed; forget the scoreboard */
		if (sk->nsacked && sk->sacked[0].start == sk->snd_una) {
			MIB_INC(st, TcpExtTCPSACKReneging);
			sk->nsacked = 0;
		}
	}
	/* tcp_remove_reno_sacks: without SACK the duplicate ACKs already counted segments as
	 * delivered; what this ACK delivers anew is the rest, at least one */
	if (!sk->sack_ok && sk->dupacks && !sk->in_recovery)
		segs = segs > sk->dupacks ? segs - sk->dupacks : 1;
	sk->dupacks = 0;
	return segs;
}

/* The retransmission timer after an ACK that moved snd_una: off when nothing is in flight;
 * else RACK's reordering timer if it armed one (tcp_identify_packet_loss clears
 * FLAG_SET_XMIT_TIMER), else the loss probe or the RTO. */
static void tcp_ack_rearm(struct ustack *st, struct sock *sk, uint32_t ack)
{
	tcp_process_tlp_ack(st, sk, ack, true);
	bool reo = sk->rack.on && tcp_rack_mark_lost(st, sk);
	if (sk->snd_una == sk->snd_max) {
		timer_cancel(st, &sk->timers.retransmit);
		sk->tlp_pending = sk->reo_pending = false;
	} else if (!reo) {
		tcp_set_xmit_timer(st, sk);
	}
}

/* Our FIN acknowledged (tcp_rcv_state_process's FIN_WAIT1, CLOSING, LAST_ACK steps): 1 when
 * the socket is gone. */
static int tcp_ack_fin(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	switch (sk->node.state) {
	case TCP_FIN_WAIT1:
		tcp_set_state(st, sk, TCP_FIN_WAIT2);
		if (sk->fd < 0 && !sk->lingering && !sk->parent) {
			/* an orphan waits tcp_fin_time for the peer's FIN: as a timewait entry —
			 * unless this very segment brings something new, the FIN or data (which
			 * aborts the connection, TcpExtTCPAbortOnData): the socket takes those
			 * ("bad case": the keepalive timer for the whole wait).  A duplicate (our
			 * ACK of it was lost) is no reason to keep the socket. */
			bool news = (th->plen || (th->flags & TCPHDR_FIN)) &&
				    !before(th->seq + (uint32_t)th->plen + !!(th->flags & TCPHDR_FIN), sk->rcv_nxt + 1);
			if (!news)
				return tcp_fin_wait2_orphan(st, sk) ? 1 : 0;
			timer_arm(st, &sk->timers.sk, st->now + (uint64_t)tcp_fin_time_ms(st, sk) * 1000u);
		}
		sk_wake_sk(st, sk); /* sk_state_change: a lingering close(), poll's waiters */
		return 0;
	case TCP_CLOSING:
		tcp_time_wait(st, sk);
		return 1;
	case TCP_LAST_ACK:
		tcp_done(st, sk, 0);
		return 1;
	default:
		return 0;
	}
}

/* A duplicate ACK (RFC 5681 §2), or one with new SACK information: RACK, then fast recovery
 * by SACK (RFC 6675) or by NewReno's count (RFC 6582). */
static void tcp_ack_no_progress(struct ustack *st, struct sock *sk, const struct tcp_repr *th, bool dupack,
				uint32_t una_before, uint32_t sacked_before, uint32_t lost_before)
{
	if (dupack) {
		if (!th->opt.nsack)
			tcp_process_tlp_ack(st, sk, sk->snd_una, false);
		sk->dupacks++;
		if (sk->rack.on)
			tcp_rack_mark_lost(st, sk);
		if (sk->sack_ok) {
			bool recover = tcp_sack_time_to_recover(sk) || (!sk->rack.on && sk->dupacks >= sk->reordering);
			tcp_sack_fastretrans(st, sk, recover, una_before, sacked_before, lost_before);
		} else if (!sk->in_recovery && tcp_may_enter_recovery(sk) && sk->dupacks >= sk->reordering) {
			tcp_enter_recovery(st, sk, 1, 0, false);
		} else if (sk->in_recovery) {
			sk->cwnd++; /* each further dupack: a segment has left the network */
		}
	} else if (sk->sack_ok && th->opt.nsack) {
		if (sk->rack.on)
			tcp_rack_mark_lost(st, sk);
		/* new SACK information with a window update */
		tcp_sack_fastretrans(st, sk, tcp_sack_time_to_recover(sk), una_before, sacked_before, lost_before);
	}
}

/*
 * tcp_ack_acceptable: tcp_ack's first two checks, which Linux 6.18 makes before the segment's
 * timestamp may move ts_recent.  RFC 5961 §5.2 accepts an ACK in
 * [SND.UNA - MAX.SND.WND, SND.NXT]; outside it the segment is dropped and answered with a
 * (rate-limited) challenge ACK — below, because it is too old to be anything but a blind
 * injection; above, because it acknowledges data never sent (RFC 9293 §3.10.7.4: "send an
 * ACK, drop the segment").  Linux long dropped the second silently; 6.18's stable series
 * challenges it too (42726ec644cb, "tcp: send a challenge ACK on SEG.ACK > SND.NXT"),
 * measured on this project's 6.18.44.  The lower edge is min(max_window, bytes_acked), so that
 * before anything is acknowledged every older ACK is too old.  Linux's snd_nxt, never pulled
 * back by an RTO, is ustack's snd_max.
 */
static bool tcp_ack_acceptable(struct ustack *st, struct sock *sk, uint32_t ack)
{
	if (before(ack, sk->snd_una)) {
		uint64_t max_window = sk->max_window < sk->bytes_acked ? sk->max_window : sk->bytes_acked;
		if (before(ack, sk->snd_una - (uint32_t)max_window)) {
			tcp_send_challenge_ack(st, sk);
			return false;
		}
		return true;
	}
	if (after(ack, sk->snd_max)) {
		tcp_send_challenge_ack(st, sk);
		return false;
	}
	return true;
}

/*
 * tcp_check_space → sk_stream_write_space: what the ACK freed wakes a writer (and pollers,
 * POLLOUT) only once the socket is writable again — a third of the send buffer free and the
 * unsent data under TCP_NOTSENT_LOWAT — not at every ACK: a blocked write returns when Linux's
 * would, having queued no less.  Completions on the error queue (zerocopy) wake it too.
 */
static void tcp_check_space(struct ustack *st, struct sock *sk)
{
	/* tcp_new_space: a buffer short of room grows with the window, unless the window is full
	 * (tcp_should_expand_sndbuf); "short of room" stands for SOCK_NOSPACE, which a writer or
	 * poller that found it unwritable would have set */
	if (!tcp_stream_wspace_ok(sk) && sk->snd_max - sk->snd_una < sk->cwnd * tcp_mss_now(sk))
		tcp_sndbuf_expand(st, sk);
	if ((tcp_stream_wspace_ok(sk) && tcp_stream_memory_free(sk, st->sysctl.tcp_notsent_lowat, 1)) ||
	    sk_errq_pending(sk))
		sk_wake_sk(st, sk);
}

/*
 * tcp_ack: RFC 9293 §3.10.7.4's ACK processing, in Linux's steps, for an ACK that
 * tcp_ack_acceptable let through — tag SACK blocks, update the window, and if snd_una moves,
 * clean the retransmission queue, rearm the timer and let recovery (tcp_fastretrans_alert) or
 * congestion avoidance use what was delivered; otherwise count a duplicate ACK.  Returns 0 to
 * go on, 1 when the socket is gone.
 */
static int tcp_ack(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	uint32_t ack = th->ack;
	sk->rack.on = sk->sack_ok && (st->sysctl.tcp_recovery & 1);
	/* what this ACK reports delivered and lost, for PRR */
	uint32_t una_before = sk->snd_una, sacked_before = tcp_sacked_bytes(sk);
	uint32_t lost_before = sk->sack_ok ? tcp_sack_lost_total(sk) : 0;
	if (sk->sack_ok && th->opt.nsack && sk->sndq.data)
		tcp_sacktag(st, sk, th);
	bool wnd_changed = tcp_ack_update_window(sk, th, ack);
	/* tcp_ack_update_window: a window that changes with data waiting may end an idle period
	 * (a zero window that reopens after long probing): the idle restart applies then too */
	if (wnd_changed && before(sk->snd_max, sk->write_seq))
		tcp_slow_start_after_idle_check(st, sk);
	if (!after(ack, sk->snd_una)) {
		/* RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN, does not move the
		 * window, and comes while data is outstanding. */
		bool dupack = ack == sk->snd_una && !th->plen && !(th->flags & (TCPHDR_SYN | TCPHDR_FIN)) &&
			      !wnd_changed && sk->snd_una != sk->snd_max;
		tcp_ack_no_progress(st, sk, th, dupack, una_before, sacked_before, lost_before);
		return 0;
	}
	bool fin_acked, cwnd_limited;
	uint32_t segs = tcp_clean_rtx_queue(st, sk, th, ack, &fin_acked, &cwnd_limited);
	tcp_ack_rearm(st, sk, ack);
	/* tcp_fastretrans_alert, or congestion avoidance */
	if (sk->in_recovery && !before(ack, sk->high_seq)) {
		sk->in_recovery = false; /* full ACK: deflate (RFC 6582 §3.2 step 3) */
		sk->cwnd = sk->ssthresh;
	} else if (sk->sack_ok && (sk->in_recovery ||
				   (tcp_sack_time_to_recover(sk) && tcp_may_enter_recovery(sk)))) {
		tcp_sack_fastretrans(st, sk, true, una_before, sacked_before, lost_before);
	} else if (sk->in_recovery) {
		tcp_retransmit_head(st, sk); /* partial ACK: the next hole */
		sk->cwnd = sk->cwnd > segs ? sk->cwnd - segs + 1 : 1;
	} else if (sk->in_cwr) {
		tcp_cwr_progress(sk, una_before, sacked_before);
	} else if (cwnd_limited) {
		/* tcp_cong_control's acked_sacked: with SACK, what this ACK delivered anew — data
		 * SACKed before was counted when it was SACKed */
		uint32_t delivered = sk->sack_ok ? ack_delivered(sk, una_before, sacked_before) : segs;
		tcp_cong_on_ack(st, sk, delivered ? delivered : 1);
	}
	if (tcp_ecn_rcv_ecn_echo(sk, th) && !sk->in_recovery && !sk->in_cwr)
		tcp_enter_cwr(st, sk);
	if (fin_acked && tcp_ack_fin(st, sk, th))
		return 1;
	return 0;
}

static int tcp_fin(struct ustack *st, struct sock *sk)
{
	tcp_ofo_purge(st, sk); /* data above the FIN can never be in order: skb_rbtree_purge */
	/* tcp_sack_reset: no SACK block is left to report, not even a D-SACK for the data the
	 * FIN came with (measured: close_no_rst.pkt's ACK of a retransmission + FIN has none) */
	sk->rx_nsack = 0;
	sk->dsack_len = 0;
	sk->rcv_nxt++;
	sk->fin_rcvd = true;
	switch (sk->node.state) {
	case TCP_ESTABLISHED:
		/* the peer is done sending: our answers will carry the ACK (pingpong), which waits
		 * as any delayed ACK does — unless enough data came with the FIN */
		tcp_set_state(st, sk, TCP_CLOSE_WAIT);
		sk->pingpong = 1;
		sk->rcv_unacked++;
		/* at once if enough data came with it, or if the buffer is full (the FIN was forced
		 * in: tcp_try_rmem_schedule failed, ICSK_ACK_NOMEM | ICSK_ACK_NOW) */
		if (sk->rcv_unacked > tcp_mss_now(sk) || !tcp_rcv_space(sk))
			tcp_send_ack(st, sk);
		else
			tcp_send_delayed_ack(st, sk);
		sk_wake_sk(st, sk);
		return 0;
	case TCP_FIN_WAIT1:
		tcp_set_state(st, sk, TCP_CLOSING); /* our FIN is not acknowledged yet */
		break;
	case TCP_FIN_WAIT2:
		tcp_send_ack(st, sk);
		tcp_time_wait(st, sk);
		return 1; /* the socket is closed (an orphan: freed) */
	default:
		break;
	}
	tcp_send_ack(st, sk);
	sk_wake_sk(st, sk);
	return 0;
}

/*
 * Linux's delayed ACK engine (tcp_event_data_recv, tcp_send_delayed_ack, the pingpong count).
 * A receiver ACKs at once while in quick-ack mode — the first segments of a connection, after a
 * long gap, after a CE mark — and every second full segment; otherwise it waits up to ato for
 * data of its own to carry the ACK.  ato follows the data's pace: halved toward 20 ms while
 * segments come fast, doubled when a delayed ACK had to go alone.  A connection that answers
 * within ato of receiving (a request-response exchange) is "pingpong": quick ACKs stop, so the
 * answers carry them; a delayed ACK that goes alone ends that, as does a FIN's half-close
 * entering it (tcp_fin).
 */
static void tcp_incr_quickack(struct sock *sk, unsigned max_quickacks)
{
	unsigned q = sk->rcv_wnd / (2 * tcp_advmss_now(sk));
	if (!q)
		q = 2;
	if (q > max_quickacks)
		q = max_quickacks;
	if (q > sk->quickack)
		sk->quickack = q;
}

void tcp_enter_quickack_mode(struct sock *sk, unsigned max_quickacks)
{
	tcp_incr_quickack(sk, max_quickacks);
	sk->pingpong = 0;
	sk->ato_ms = TCP_ATO_MIN_MS;
}

/* tcp_event_data_recv: in-order data came; ato learns the pace of the data */
static void tcp_event_data_recv(struct ustack *st, struct sock *sk)
{
	if (!sk->ato_ms) { /* the first data: start the engine in quick-ack mode */
		tcp_incr_quickack(sk, TCP_QUICKACKS);
		sk->ato_ms = TCP_ATO_MIN_MS;
	} else {
		uint32_t m = (uint32_t)((st->now - sk->lrcvtime) / 1000u);
		if (m <= TCP_ATO_MIN_MS / 2) {
			sk->ato_ms = sk->ato_ms / 2 + TCP_ATO_MIN_MS / 2;
		} else if (m < sk->ato_ms) {
			sk->ato_ms = sk->ato_ms / 2 + m;
			if (sk->ato_ms > sk->rto_ms)
				sk->ato_ms = sk->rto_ms;
		} else if (m > sk->rto_ms) {
			tcp_incr_quickack(sk, TCP_QUICKACKS); /* the sender seems to restart after idling */
		}
	}
	sk->lrcvtime = st->now;
}

/* tcp_send_delayed_ack: the ACK waits ato (bounded by 200 ms in pingpong, 500 ms else, and by
 * the RTT), or goes at once if a timer already armed is about to fire */
void tcp_send_delayed_ack(struct ustack *st, struct sock *sk)
{
	uint32_t ato = sk->ato_ms;
	if (ato > TCP_DELACK_MIN_MS) {
		uint32_t max_ato = sk->pingpong ? TCP_DELACK_MAX_MS : 500u;
		if (sk->srtt_us) {
			uint32_t rtt = sk->srtt_us / 1000u > TCP_DELACK_MIN_MS ? sk->srtt_us / 1000u : TCP_DELACK_MIN_MS;
			if (rtt < max_ato)
				max_ato = rtt;
		}
		if (ato > max_ato)
			ato = max_ato;
	}
	if (ato > TCP_DELACK_MAX_MS)
		ato = TCP_DELACK_MAX_MS;
	uint64_t at = st->now + (uint64_t)(ato ? ato : 1) * 1000u; /* the next tick at least */
	if (timer_pending(&sk->timers.delack)) {
		uint64_t armed = timer_expires_us(&sk->timers.delack);
		if (armed <= st->now + (uint64_t)ato * 250u) {
			tcp_send_ack(st, sk);
			return;
		}
		if (at >= armed)
			return;
	}
	timer_arm(st, &sk->timers.delack, at);
}

/* __tcp_ack_snd_check for n new in-order bytes: at once in quick-ack mode (not pingpong), when
 * a hole was just filled, or when more than one full segment waits for its ACK (every second
 * segment of a bulk transfer); else delayed. */
static void tcp_ack_snd_check(struct ustack *st, struct sock *sk, uint32_t n, bool had_ofo)
{
	sk->rcv_unacked += n;
	if (had_ofo || sk->ack_now || (sk->quickack && !sk->pingpong)) {
		if (sk->quickack)
			sk->quickack--;
		sk->ack_now = false;
		tcp_send_ack(st, sk);
	} else if (sk->rcv_unacked > tcp_mss_now(sk)) { /* more than one full segment */
		tcp_send_ack(st, sk);
	} else {
		tcp_send_delayed_ack(st, sk);
	}
}

/*
 * __tcp_ecn_check_ce (RFC 3168 §6.1.3): a data segment marked CE means a router on the way is
 * congested: every segment we send carries ECE until the sender says CWR, and the next two
 * ACKs go at once (a sender may be down to a small window).  ECT or CE marks are remembered
 * (TCPI_OPT_ECN_SEEN); after that, a segment without ECT is probably a retransmission, and is
 * also ACKed at once.
 */
static void tcp_ecn_check_ce(struct sock *sk, uint8_t tos)
{
	if (!(sk->ecn_flags & TCP_ECN_OK))
		return;
	switch (tos & INET_ECN_MASK) {
	case INET_ECN_NOT_ECT:
		if (sk->ecn_flags & TCP_ECN_SEEN)
			tcp_enter_quickack_mode(sk, 2);
		break;
	case INET_ECN_CE:
		if (!(sk->ecn_flags & TCP_ECN_DEMAND_CWR)) {
			tcp_enter_quickack_mode(sk, 2);
			sk->ecn_flags |= TCP_ECN_DEMAND_CWR;
		}
		sk->ecn_flags |= TCP_ECN_SEEN;
		break;
	default:
		sk->ecn_flags |= TCP_ECN_SEEN;
		break;
	}
}

/* tcp_data_queue: returns 1 when the socket is gone. */
static int tcp_data_queue(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			  const struct tcp_repr *th)
{
	uint32_t seq = th->seq, len = (uint32_t)th->plen;
	const uint8_t *data = th->payload;
	bool fin = th->flags & TCPHDR_FIN;
	int state = sk->node.state;
	if (state != TCP_ESTABLISHED && state != TCP_FIN_WAIT1 && state != TCP_FIN_WAIT2)
		return 0; /* after the peer's FIN nothing more can come */
	if (len && sk->fd < 0 && sk->shut_rd) {
		/* data for an orphan nobody will read: abort (tcp_rcv_state_process calls tcp_reset —
		 * so trace_tcp_receive_reset fires — and returns TCP_ABORT_ON_DATA, and
		 * tcp_v4_do_rcv answers the segment itself with tcp_v4_send_reset, the socket
		 * closed by then but still held: tcp_send_reset shows it in TCP_CLOSE) */
		MIB_INC(st, TcpExtTCPAbortOnData);
		trace_tcp_receive_reset(st, sk);
		sk_hold(sk);
		tcp_done(st, sk, 0);
		tcp_v4_send_reset_reason(st, sk, ip, th, SK_RST_REASON_TCP_ABORT_ON_DATA);
		sk_put(st, sk);
		return 1;
	}
	if (len)
		tcp_ecn_check_ce(sk, ip->tos);
	if (len && tcp_rcv_ring(st, sk) < 0) {
		MIB_INC(st, TcpExtTCPRcvQDrop); /* no memory for it: as if the buffer were full */
		tcp_send_ack(st, sk);
		return 0;
	}
	if (before(seq, sk->rcv_nxt)) {
		uint32_t dup = sk->rcv_nxt - seq;
		if (dup > len || (dup == len && !fin)) {
			/* all old — a retransmission: our ACK was lost, or it was spurious.  Tell
			 * the peer where we are at once, with a D-SACK of what came twice (a
			 * simultaneous open's SYN-ACK lands here for its SYN) */
			MIB_INC(st, TcpExtDelayedACKLost);
			tcp_dsack_set(st, sk, seq, seq + len + fin + !!(th->flags & TCPHDR_SYN));
			tcp_enter_quickack_mode(sk, TCP_QUICKACKS);
			tcp_send_ack(st, sk);
			return 0;
		}
		tcp_dsack_set(st, sk, seq, sk->rcv_nxt); /* partly old: its head came twice */
		data += dup;
		len -= dup;
		seq = sk->rcv_nxt;
	}
	if (len && sk->tstamp_ok && th->opt.ts_ok && th->opt.tsecr)
		tcp_rcv_rtt_sample(st, sk, th->opt.tsecr);
	if (seq != sk->rcv_nxt) {
		if (len)
			tcp_data_queue_ofo(st, sk, seq, data, len);
		else if (fin && !sk->ofo)
			sk->ofo_lone_fin = 1; /* what Linux would hold as its only out-of-order skb */
		tcp_send_ack(st, sk); /* a duplicate ACK, with SACK blocks, at once */
		return 0;
	}
	bool had_ofo = sk->ofo != NULL;
	/* tcp_data_queue's queue_and_out with nothing unread: a segment the buffer cannot hold is
	 * taken anyway (sk_forced_mem_schedule) — the reader will make room, and a peer that sent
	 * past the window gets its data acknowledged and a zero window (measured:
	 * tcp_rcv_zero_wnd_fin.pkt).  One segment's worth at most: the queue must be empty. */
	if (len && !sk->rcvq.len && (int32_t)(sk->rcv_adv - sk->rcv_nxt) > 0 && len > tcp_buf_space(&sk->rcvq))
		tcp_buf_reserve_keep(&sk->rcvq, tcp_ofo_span(sk) > len ? tcp_ofo_span(sk) + len : 2 * len,
				     tcp_ofo_span(sk));
	/* In-order data goes to the ring's tail, which out-of-order data never takes (it waits
	 * at its own place further on, tcp_ofo.c): only a closed window or a ring that cannot
	 * hold the segment refuses it (tcp_try_rmem_schedule failed).  Drop it whole and tell
	 * the peer where we are; it will send again when the window opens. */
	if (len && ((int32_t)(sk->rcv_adv - sk->rcv_nxt) <= 0 || len > tcp_buf_space(&sk->rcvq))) {
		if ((int32_t)(sk->rcv_adv - sk->rcv_nxt) <= 0)
			MIB_INC(st, TcpExtTCPZeroWindowDrop);
		else
			MIB_INC(st, TcpExtTCPRcvQDrop);
		sk->quickack = sk->quickack ? sk->quickack : 1;
		tcp_send_ack(st, sk);
		return 0;
	}
	uint32_t n = len ? tcp_buf_push(&sk->rcvq, data, len) : 0;
	sk->rcv_nxt += n;
	/* what waited behind the hole is in place already — unless this segment ends the stream:
	 * then nothing above it counts (tcp_fin purges the queue, as Linux's does) */
	if (had_ofo && !fin)
		n += tcp_ofo_queue(st, sk);
	sk->bytes_received += n;
	if (n) {
		tcp_grow_window(sk, len);
		sk_wake_sk(st, sk);
	}
	if (n)
		tcp_event_data_recv(st, sk);
	if (fin) {
		sk->rcv_unacked += n; /* the ACK tcp_fin schedules covers the data too */
		return tcp_fin(st, sk);
	}
	if (n)
		tcp_ack_snd_check(st, sk, n, had_ofo);
	return 0;
}

#define TCP_PAWS_WINDOW 1                  /* the timestamp jitter PAWS tolerates */
#define TCP_PAWS_24DAYS_MS (24u * 86400000u) /* a ts_recent this old says nothing (RFC 7323 §5.5) */

/* tcp_disordered_ack: a pure duplicate ACK at rcv_nxt that would not move the window, with a
 * timestamp within an RTO's worth of ts_recent — reordered behind a newer segment, not an old
 * duplicate: PAWS lets it through (it cannot corrupt anything, and a sender counting
 * duplicate ACKs needs it). */
static bool tcp_disordered_ack(const struct sock *sk, const struct tcp_repr *th)
{
	uint32_t seq = th->seq, ack = th->ack;
	uint32_t nwin = (uint32_t)th->window << sk->snd_wscale;
	bool may_update_window = after(ack, sk->snd_una) || after(seq, sk->snd_wl1) ||
				 (seq == sk->snd_wl1 && (nwin > sk->snd_wnd || !nwin));
	return (th->flags & TCPHDR_ACK) && !th->plen && !(th->flags & (TCPHDR_SYN | TCPHDR_FIN)) &&
	       seq == sk->rcv_nxt && ack == sk->snd_una && !may_update_window &&
	       (int32_t)(sk->ts_recent - th->opt.tsval) <= (int32_t)(sk->rto_ms * 1024u / 1000u);
}

/* tcp_paws_discard: a timestamp more than TCP_PAWS_WINDOW behind ts_recent marks an old
 * duplicate — unless ts_recent is 24 days old (the peer's clock may have wrapped since), or
 * none was ever taken, or the segment is a disordered ACK. */
static bool tcp_paws_discard(struct ustack *st, const struct sock *sk, const struct tcp_repr *th)
{
	if ((int32_t)(sk->ts_recent - th->opt.tsval) <= TCP_PAWS_WINDOW)
		return false;
	if (tcp_clock_ms(st) - sk->ts_recent_stamp_ms >= TCP_PAWS_24DAYS_MS || !sk->ts_recent)
		return false;
	return !tcp_disordered_ack(sk, th);
}

/* The states after the handshake: RFC 9293 §3.10.7.4's checks in order, with RFC 5961's
 * answers to RSTs and SYNs that are not exactly where expected.  `syn_ok`: the segment is
 * the SYN-ACK that completed a simultaneous open, which tcp_validate_incoming lets pass. */
static void tcp_rcv_segment(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			    const struct tcp_repr *th, bool syn_ok)
{
	uint32_t seg_len = (uint32_t)th->plen + !!(th->flags & TCPHDR_SYN) + !!(th->flags & TCPHDR_FIN);
	/* tcp_segs_in: a packet GRO or GSO left whole counts the segments it carries (gso_segs) */
	uint32_t segs = ip->gso_size && (uint32_t)th->plen > ip->gso_size
				? ((uint32_t)th->plen + ip->gso_size - 1) / ip->gso_size : 1;
	sk->segs_in += segs;
	if (th->plen)
		sk->data_segs_in += segs;
	/* PAWS (RFC 7323 §5.3): an old timestamp marks an old duplicate — a RST is taken anyway,
	 * a SYN gets a challenge ACK (tcp_validate_incoming) */
	if (sk->tstamp_ok && th->opt.ts_ok && !(th->flags & TCPHDR_RST) && tcp_paws_discard(st, sk, th)) {
		if (th->flags & TCPHDR_SYN) {
			MIB_INC(st, TcpExtTCPSYNChallenge);
			tcp_send_challenge_ack(st, sk);
			return;
		}
		MIB_INC(st, TcpExtPAWSEstab);
		tcp_send_dupack_limited(st, sk, th, MIB_TcpExtTCPACKSkippedPAWS);
		return;
	}
	/* tcp_validate_incoming.  A bare FIN at rcv_nxt is taken into a closed window too: it
	 * costs no buffer (Linux 6.18 accepts it, measured: tcp_rcv_zero_wnd_fin.pkt) */
	bool bare_fin = !th->plen && (th->flags & (TCPHDR_FIN | TCPHDR_SYN)) == TCPHDR_FIN && th->seq == sk->rcv_nxt;
	int seqok = tcp_sequence(sk, th->seq, th->seq + seg_len - (bare_fin ? 1u : 0u));
	if (seqok != TCP_SEQ_OK) {
		if (th->flags & TCPHDR_RST)
			return;
		if (th->flags & TCPHDR_SYN) {
			MIB_INC(st, TcpExtTCPSYNChallenge);
			tcp_send_challenge_ack(st, sk);
		} else {
			if (seqok == TCP_SEQ_BEYOND)
				MIB_INC(st, TcpExtBeyondWindow);
			tcp_send_dupack_limited(st, sk, th, MIB_TcpExtTCPACKSkippedSeq);
		}
		return;
	}
	if (th->flags & TCPHDR_RST) {
		if (th->seq == sk->rcv_nxt)
			tcp_reset(st, sk);
		else /* RFC 5961 §3.2: in window but not exact: challenge */
			tcp_send_challenge_ack(st, sk);
		return;
	}
	if ((th->flags & TCPHDR_SYN) && !syn_ok) { /* RFC 5961 §4.2 */
		MIB_INC(st, TcpExtTCPSYNChallenge);
		tcp_send_challenge_ack(st, sk);
		return;
	}
	if (!(th->flags & TCPHDR_ACK))
		return;
	if (!tcp_ack_acceptable(st, sk, th->ack))
		return;
	sk->rcv_tstamp = st->now; /* keepalive measures silence from here */
	sk->probes_out = 0;       /* the peer answered (tcp_ack) */
	/* RFC 7323 §4.3: remember the timestamp of a segment at the left window edge — once the
	 * ACK is known acceptable: an ACK of data never sent leaves ts_recent alone (6.18.44,
	 * packetdrill's ts_recent/invalid_ack.pkt with the challenge ACK), while an old ACK in
	 * the window still moves it (measured on the same kernel).  Only forward, though: a
	 * timestamp PAWS let through behind it (jitter, a disordered ACK) does not move it back
	 * (tcp_replace_ts_recent). */
	if (sk->tstamp_ok && th->opt.ts_ok && !after(th->seq, sk->rcv_nxt) &&
	    ((int32_t)(th->opt.tsval - sk->ts_recent) >= 0 || !sk->ts_recent ||
	     tcp_clock_ms(st) - sk->ts_recent_stamp_ms >= TCP_PAWS_24DAYS_MS)) { /* tcp_paws_check(0) */
		sk->ts_recent = th->opt.tsval;
		sk->ts_recent_stamp_ms = tcp_clock_ms(st);
	}
	int r = tcp_ack(st, sk, th);
	if (r)
		return;
	/* tcp_ecn_accept_cwr: the sender reduced its window: stop echoing; ACK its data at once,
	 * its window may be down to one segment */
	if ((th->flags & TCPHDR_CWR) && (sk->ecn_flags & TCP_ECN_DEMAND_CWR)) {
		sk->ecn_flags &= (uint8_t)~TCP_ECN_DEMAND_CWR;
		if (th->plen)
			sk->ack_now = true;
	}
	/* step 6: the URG bit (tcp_urg), before the data is queued */
	if ((th->flags & TCPHDR_URG) || (sk->ext && sk->ext->urg_data == TCP_URG_NOTYET))
		tcp_urg(st, sk, th);
	if ((th->plen || (th->flags & TCPHDR_FIN) || syn_ok) && tcp_data_queue(st, sk, ip, th))
		return;
	tcp_write_xmit(st, sk); /* tcp_data_snd_check: what may go goes, then the writers */
	tcp_check_space(st, sk);
}

/* Why SYN_RECV resets an ACK it cannot take: tcp_ack's verdict, which tcp_rcv_state_process
 * returns as the reason — data never sent, or older than anything acknowledged (with nothing
 * acknowledged yet, every old ACK is "too old": max_window is min(max_window, bytes_acked)). */
static enum sk_rst_reason tcp_synrecv_bad_ack_reason(const struct sock *sk, uint32_t ack)
{
	return after(ack, sk->snd_nxt) ? SK_RST_REASON_TCP_ACK_UNSENT_DATA : SK_RST_REASON_TCP_TOO_OLD_ACK;
}

void tcp_rcv_established(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			 const struct tcp_repr *th)
{
	tcp_rcv_segment(st, sk, ip, th, false);
}

/* Segments for a full socket past SYN_SENT. */
void tcp_rcv_state_process(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
				  const struct tcp_repr *th)
{
	if (sk->node.state == TCP_SYN_SENT) {
		tcp_rcv_synsent(st, sk, ip, th);
		return;
	}
	tcp_trace(st, "tcp_rcv_state_process", &sk->node, sk->node.state, sk->node.state);
	if (sk->fastopen_rsk) { /* a Fast Open child before its final ACK */
		if (!tcp_fastopen_check_req(st, sk, ip, th))
			return;
		if (sk->node.state == TCP_SYN_RECV) {
			/* an ACK of something never sent gets a RST (tcp_ack's "not acceptable") */
			if (before(th->ack, sk->snd_una) || after(th->ack, sk->snd_nxt)) {
				tcp_v4_send_reset_reason(st, sk, ip, th, tcp_synrecv_bad_ack_reason(sk, th->ack));
				return;
			}
			sk->delivered++; /* the SYN-ACK: tcp_ack does not count it */
			tcp_rcv_synrecv_state_fastopen(st, sk);
			tcp_set_state(st, sk, TCP_ESTABLISHED);
			sk->snd_wnd = (uint32_t)th->window << sk->snd_wscale;
			sk->snd_wl1 = th->seq;
			tcp_reset_keepalive_timer(st, sk);
			sk_wake_sk(st, sk);
		} else {
			reqsk_fastopen_remove(st, sk, false); /* FIN_WAIT1: closed before the ACK */
		}
		tcp_rcv_established(st, sk, ip, th);
		return;
	}
	bool syn_ok = false;
	if (sk->node.state == TCP_SYN_RECV) { /* a simultaneous open */
		if (th->flags & TCPHDR_RST) {
			if (th->seq == sk->rcv_nxt) { /* tcp_validate_incoming → tcp_reset */
				trace_tcp_receive_reset(st, sk);
				tcp_done(st, sk, ECONNREFUSED);
			}
			return;
		}
		if (th->flags & TCPHDR_SYN) {
			/* tcp_validate_incoming: the peer's SYN-ACK, repeating its SYN and
			 * acknowledging all we sent, completes the open (Linux since 6.10); any
			 * other SYN is challenged (RFC 5961 §4.2) */
			syn_ok = (th->flags & TCPHDR_ACK) && !th->plen && !(th->flags & TCPHDR_FIN) &&
				 th->seq + 1 == sk->rcv_nxt && th->ack == sk->snd_nxt;
			if (!syn_ok) {
				MIB_INC(st, TcpExtTCPSYNChallenge);
				tcp_send_challenge_ack(st, sk);
				return;
			}
		}
		if (!(th->flags & TCPHDR_ACK))
			return;
		if (th->ack != sk->snd_nxt) {
			tcp_v4_send_reset_reason(st, sk, ip, th, tcp_synrecv_bad_ack_reason(sk, th->ack));
			return;
		}
		/* the SYN, and the data a Fast Open SYN carried, leave the send ring */
		tcp_synsent_ack_data(st, sk, th->ack);
		sk->snd_wnd = (uint32_t)th->window << sk->snd_wscale;
		tcp_finish_connect(st, sk);
		/* shut for writing (shutdown) while the open was incomplete: its FIN now
		 * (tcp_close_state; a close() then aborted the open) */
		if (sk->shut_wr && sk->node.state == TCP_ESTABLISHED)
			tcp_shutdown_wr(st, sk);
		if (!th->plen && !(th->flags & TCPHDR_FIN) && !syn_ok)
			return;
	}
	tcp_rcv_segment(st, sk, ip, th, syn_ok);
}

/*
 * tcp_conn_request: the listener's SYN handler (seed phase 4).  Two queues bound a listener,
 * as in Linux: the SYN queue (request sockets) by the listen backlog — a SYN beyond it gets a
 * SYN cookie instead (syncookies.c; tcp_syncookies=1, TcpExtTCPReqQFullDoCookies), or always
 * with tcp_syncookies=2, or is dropped with 0 (TcpExtTCPReqQFullDrop), where the last quarter
 * of tcp_max_syn_backlog is also kept free — and the accept queue, whose overflow drops the
 * SYN, cookies or not (TcpExtListenOverflows).  Otherwise a request socket
 * records what the SYN offered (tcp_openreq_init), takes its place in the established hash,
 * and the SYN-ACK goes out with its retransmission timer armed.
 */
void tcp_conn_request(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
		      const struct tcp_repr *th)
{
	int syncookies = st->sysctl.tcp_syncookies;
	bool want_cookie = false;
	/* a SYN that reopened a TIME_WAIT connection (tcp_v4_rcv's TCP_TW_SYN): its ISN is
	 * chosen, and neither cookies nor the SYN queue's last quarter stand in its way */
	uint32_t isn = st->tcp->tw_isn;
	st->tcp->tw_isn = 0;
	/* tcp_v4_conn_request: "Never answer to SYNs send to broadcast or multicast" — counted as
	 * a listen drop (measured on Linux 6.18: a SYN to 192.0.2.255 at a listener on INADDR_ANY,
	 * TcpInSegs and TcpExtListenDrops, no SYN-ACK) */
	if (ip->bcast)
		goto drop;
	if ((syncookies == 2 || inet_csk_reqsk_queue_is_full(lsk)) && !isn) {
		want_cookie = tcp_syn_flood_action(st, lsk);
		if (!want_cookie)
			goto drop;
	}
	if (sk_acceptq_is_full(lsk)) { /* cookies or not */
		MIB_INC(st, TcpExtListenOverflows);
		goto drop;
	}
	/* Without cookies, keep the last quarter of tcp_max_syn_backlog for peers proven alive
	 * (ustack keeps no per-peer metrics, so no peer is proven). */
	int max_syn_backlog = st->sysctl.tcp_max_syn_backlog;
	if (!want_cookie && !isn && !syncookies && max_syn_backlog - lsk->accept_queue.qlen < (max_syn_backlog >> 2))
		goto drop;

	/* a cookie SYN-ACK keeps nothing: its request socket lives on the stack for the reply */
	struct request_sock cookie_req;
	struct request_sock *req = want_cookie ? &cookie_req : inet_reqsk_alloc(st, lsk);
	if (!req)
		goto drop;
	if (want_cookie) {
		memset(req, 0, sizeof(*req));
		req->listener = lsk;
		req->node.state = TCP_NEW_SYN_RECV;
		req->cookie = 1;
	}
	req->node.laddr = ip->daddr;
	req->node.raddr = ip->saddr;
	req->node.lport = th->dport;
	req->node.rport = th->sport;
	req->rcv_isn = th->seq;
	/* tcp_openreq_init: what the SYN offered, as far as our sysctls allow; a cookie without
	 * timestamps has nowhere to keep SACK and window scaling (tcp_clear_options) */
	req->mss = th->opt.mss_ok && th->opt.mss ? th->opt.mss : TCP_MSS_DEFAULT; /* 0: ignored */
	req->tstamp_ok = th->opt.ts_ok && st->sysctl.tcp_timestamps;
	bool options = !want_cookie || req->tstamp_ok;
	req->ts_recent = req->tstamp_ok ? th->opt.tsval : 0;
	req->sack_ok = options && th->opt.sack_ok && st->sysctl.tcp_sack;
	req->wscale_ok = options && th->opt.ws_ok && st->sysctl.tcp_window_scaling;
	req->snd_wscale = req->wscale_ok ? (th->opt.wscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : th->opt.wscale) : 0;
	if (req->wscale_ok) /* the scale depends on buffer limits only; the window comes with the SYN-ACK */
		tcp_select_initial_window(st, (uint32_t)lsk->rcvbuf / 2, TCP_MSS_DEFAULT, &req->rcv_wnd,
					  &req->rcv_wscale, true, tcp_rcvbuf_clamp(lsk));
	/* af_ops->init_seq_and_ts_off: one hash for both, when either is wanted */
	struct tcp_seq_and_ts_off so = { 0 };
	if (req->tstamp_ok || (!want_cookie && !isn))
		so = secure_tcp_seq_and_ts_off(st, ip->daddr, ip->saddr, th->dport, th->sport);
	req->ts_off = req->tstamp_ok ? so.ts_off : 0;
	/* tcp_ecn_create_request: a SYN with ECE and CWR asks for ECN; granted unless tcp_ecn is 0
	 * or the SYN itself came ECN-capable (a sign of a broken path, RFC 3168 §6.1.1) */
	req->ecn_ok = (th->flags & (TCPHDR_ECE | TCPHDR_CWR)) == (TCPHDR_ECE | TCPHDR_CWR) &&
		      st->sysctl.tcp_ecn && (ip->tos & INET_ECN_MASK) == INET_ECN_NOT_ECT;
	if (want_cookie) {
		req->snt_isn = cookie_v4_init_sequence(st, lsk, ip, th, &req->mss);
		tcp_trace(st, "cookie_v4_init_sequence", &req->node, TCP_LISTEN, TCP_LISTEN);
		if (tcp_send_synack(st, req, NULL, 0) < 0)
			goto drop;
		return;
	}
	req->snt_isn = isn ? isn : so.seq;
	/* Fast Open (tcp_fastopen.c): a good cookie makes the child now, with the SYN's data */
	struct tcp_fastopen_cookie foc;
	tcp_fastopen_cookie_from_opts(&th->opt, &foc);
	struct sock *fastopen_sk = tcp_try_fastopen(st, lsk, ip, th, req, &foc);
	if (fastopen_sk) {
		tcp_send_synack(st, req, &foc, fastopen_sk->rcv_nxt - req->rcv_isn - 1);
		inet_csk_reqsk_queue_add(st, lsk, fastopen_sk);
		kmem_cache_free(&st->tcp->reqsk_cache, req); /* never hashed: the child took its place */
		return;
	}
	inet_csk_reqsk_queue_hash_add(st, req);
	if (tcp_send_synack(st, req, &foc, 0) < 0) {
		reqsk_queue_drop(st, req);
		goto drop;
	}
	reqsk_timer_rearm(st, req);
	return;
drop:
	MIB_INC(st, TcpExtListenDrops);
	trace_drop(st, "TCP_LISTEN_DROP", 0);
}
