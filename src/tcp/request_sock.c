/*
 * The listener's side of the handshake: request sockets in the SYN queue, SYN-ACK
 * retransmission, and the final ACK that turns a request into a full socket on the accept
 * queue (Linux's tcp_conn_request in tcp_input.c, tcp_check_req in tcp_minisocks.c,
 * reqsk_timer_handler in inet_connection_sock.c).
 *
 * Why request sockets: a half-open connection costs only a small struct in the established
 * hash until its final ACK proves the peer exists, so a flood of SYNs costs ~100 bytes each
 * instead of a full socket.  Two queues bound a listener, as in Linux:
 *  - the SYN queue (request sockets) by the listen backlog, which (like the accept queue and
 *    since Linux 6.x) holds backlog + 1: a SYN beyond it is dropped and
 *    counted in TcpExtTCPReqQFullDrop — where SYN cookies will take over (next issue);
 *    with tcp_syncookies=0 the last quarter of tcp_max_syn_backlog is also kept free;
 *  - the accept queue by min(backlog, net.core.somaxconn): a final ACK arriving when it is
 *    full is dropped (TcpExtListenOverflows, TcpExtListenDrops) and the request kept, so the
 *    peer's retransmission completes the handshake once the application accepts — slowness,
 *    not an error — unless tcp_abort_on_overflow=1, which answers with a RST.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <stdlib.h>


static void reqsk_timer_handler(struct ustack *st, struct utimer *t);

static uint64_t reqsk_timeout_us(const struct request_sock *req)
{
	uint64_t ms = (uint64_t)TCP_TIMEOUT_INIT_MS << req->num_timeout;
	return (ms < TCP_RTO_MAX_MS ? ms : TCP_RTO_MAX_MS) * 1000u;
}

/* reqsk_put: the request socket is done with; the last one of a listener the application
 * closed meanwhile frees it (sk_free). */
static void reqsk_put(struct ustack *st, struct request_sock *req)
{
	struct sock *lsk = req->listener;
	timer_cancel(st, &req->timer);
	lsk->reqsk_qlen--;
	st->tcp.nreqsk--;
	free(req);
	if (!lsk->reqsk_qlen && lsk->dead)
		sk_free(st, lsk);
}

void reqsk_queue_drop(struct ustack *st, struct request_sock *req)
{
	inet_ehash_remove(&req->node);
	reqsk_put(st, req);
}

static void reqsk_rtx_synack(struct ustack *st, struct request_sock *req)
{
	req->num_retrans++;
	MIB_INC(st, TcpRetransSegs);
	MIB_INC(st, TcpExtTCPSynRetrans);
	tcp_send_synack(st, req);
}

/* reqsk_timer_handler: resend the SYN-ACK with exponential backoff, give up after
 * tcp_synack_retries (or the listener's TCP_SYNCNT). */
static void reqsk_timer_handler(struct ustack *st, struct utimer *t)
{
	struct request_sock *req = (struct request_sock *)((char *)t - offsetof(struct request_sock, timer));
	int max = req->listener->syn_retries ? req->listener->syn_retries : st->sysctl.tcp_synack_retries;
	if (req->num_timeout >= max || req->listener->node.state != TCP_LISTEN) {
		tcp_trace(st, "inet_csk_reqsk_queue_drop", &req->node, TCP_SYN_RECV, TCP_CLOSE);
		reqsk_queue_drop(st, req);
		return;
	}
	reqsk_rtx_synack(st, req);
	req->num_timeout++;
	timer_arm(st, &req->timer, st->now + reqsk_timeout_us(req));
}

void tcp_conn_request(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
		      const struct tcp_repr *th)
{
	/* tcp_syn_flood_action: this is where SYN cookies take over (tcp_syncookies ≥ 1);
	 * until they exist a full SYN queue drops the SYN. */
	if (lsk->reqsk_qlen > lsk->max_ack_backlog) { /* inet_csk_reqsk_queue_is_full (> since 6.x) */
		MIB_INC(st, TcpExtTCPReqQFullDrop);
		goto drop;
	}
	if (lsk->ack_backlog > lsk->max_ack_backlog) { /* sk_acceptq_is_full */
		MIB_INC(st, TcpExtListenOverflows);
		goto drop;
	}
	/* Without cookies, keep the last quarter of tcp_max_syn_backlog for peers proven alive
	 * (ustack keeps no per-peer metrics, so no peer is proven). */
	int max_syn_backlog = st->sysctl.tcp_max_syn_backlog;
	if (!st->sysctl.tcp_syncookies && max_syn_backlog - lsk->reqsk_qlen < (max_syn_backlog >> 2))
		goto drop;

	struct request_sock *req = calloc(1, sizeof(*req));
	if (!req)
		goto drop;
	req->node.laddr = ip->daddr;
	req->node.raddr = ip->saddr;
	req->node.lport = th->dport;
	req->node.rport = th->sport;
	req->node.state = TCP_NEW_SYN_RECV;
	req->listener = lsk;
	req->rcv_isn = th->seq;
	/* tcp_openreq_init: what the SYN offered, as far as our sysctls allow */
	req->mss = th->opt.mss_ok && th->opt.mss ? th->opt.mss : TCP_MSS_DEFAULT; /* 0: ignored */
	req->tstamp_ok = th->opt.ts_ok && st->sysctl.tcp_timestamps;
	req->ts_recent = req->tstamp_ok ? th->opt.tsval : 0;
	req->sack_ok = th->opt.sack_ok && st->sysctl.tcp_sack;
	req->wscale_ok = th->opt.ws_ok && st->sysctl.tcp_window_scaling;
	req->snd_wscale = req->wscale_ok ? (th->opt.wscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : th->opt.wscale) : 0;
	if (req->wscale_ok) /* the scale depends on buffer limits only; the window comes with the SYN-ACK */
		tcp_select_initial_window(st, (uint32_t)lsk->rcvbuf / 2, TCP_MSS_DEFAULT, &req->rcv_wnd,
					  &req->rcv_wscale, true);
	req->snt_isn = secure_tcp_seq(st, ip->daddr, ip->saddr, th->dport, th->sport);
	req->ts_off = req->tstamp_ok ? secure_tcp_ts_off(st, ip->daddr, ip->saddr) : 0;
	timer_init(&req->timer, reqsk_timer_handler);
	inet_ehash_insert(st, &req->node);
	lsk->reqsk_qlen++;
	st->tcp.nreqsk++;
	tcp_trace(st, "inet_reqsk_alloc", &req->node, TCP_LISTEN, TCP_NEW_SYN_RECV);
	if (tcp_send_synack(st, req) < 0) {
		reqsk_queue_drop(st, req);
		goto drop;
	}
	timer_arm(st, &req->timer, st->now + reqsk_timeout_us(req));
	return;
drop:
	MIB_INC(st, TcpExtListenDrops);
	trace_drop(st, "TCP_LISTEN_DROP", 0);
}

/* An ACK from a request socket (tcp_v4_reqsk_send_ack): for out-of-window segments. */
static void reqsk_send_ack(struct ustack *st, struct request_sock *req)
{
	struct ustack_route_result rt;
	if (ip_route_connect(st, req->node.raddr, req->node.laddr, &rt) < 0)
		return;
	struct tcp_seg_out seg = {
		.laddr = req->node.laddr, .raddr = req->node.raddr,
		.lport = req->node.lport, .rport = req->node.rport,
		.seq = req->snt_isn + 1, .ack = req->rcv_isn + 1, .flags = TCPHDR_ACK,
		.df = true, .id_set = true, .id = 0,
	};
	seg.window = (uint16_t)(req->rcv_wnd >> req->rcv_wscale);
	if (req->tstamp_ok) {
		seg.opt.ts_ok = true;
		seg.opt.tsval = tcp_clock_ms(st) + req->ts_off;
		seg.opt.tsecr = req->ts_recent;
	}
	tcp_transmit(st, &seg, &rt);
}

/* tcp_v4_syn_recv_sock: the final ACK made it; build the full socket. */
static struct sock *tcp_v4_syn_recv_sock(struct ustack *st, struct request_sock *req,
					 const struct tcp_repr *th)
{
	struct sock *lsk = req->listener;
	struct sock *sk = sk_alloc(st);
	if (!sk)
		return NULL;
	if (ip_route_connect(st, req->node.raddr, req->node.laddr, &sk->rt) < 0) {
		sk_free(st, sk);
		return NULL;
	}
	sk->node.laddr = req->node.laddr;
	sk->node.raddr = req->node.raddr;
	sk->node.lport = req->node.lport;
	sk->node.rport = req->node.rport;
	sk->node.state = TCP_SYN_RECV;
	/* inherited from the listener, as sk_clone_lock copies them */
	sk->reuseaddr = lsk->reuseaddr;
	sk->rcvbuf = lsk->rcvbuf;
	sk->sndbuf = lsk->sndbuf;
	sk->rcvbuf_locked = lsk->rcvbuf_locked;
	sk->sndbuf_locked = lsk->sndbuf_locked;
	sk->user_mss = lsk->user_mss;
	sk->syn_retries = lsk->syn_retries;
	sk->nodelay = lsk->nodelay;
	sk->notsent_lowat = lsk->notsent_lowat;
	sk->keepalive = lsk->keepalive;
	sk->zerocopy = lsk->zerocopy; /* socket flags are inherited (sk_clone_lock) */
	sk->keepidle = lsk->keepidle;
	sk->keepintvl = lsk->keepintvl;
	sk->keepcnt = lsk->keepcnt;
	sk->user_timeout_ms = lsk->user_timeout_ms;
	sk->linger = lsk->linger;
	if (lsk->ca_setsockopt) { /* TCP_CONGESTION on the listener; else today's default */
		sk->ca_ops = lsk->ca_ops;
		sk->ca_setsockopt = true;
	}
	sk->bound_port = true; /* the port is the listener's */
	/* tcp_create_openreq_child */
	sk->iss = req->snt_isn;
	sk->irs = req->rcv_isn;
	sk->snd_una = sk->snd_nxt = req->snt_isn + 1;
	sk->rcv_nxt = req->rcv_isn + 1;
	sk->wscale_ok = req->wscale_ok;
	sk->snd_wscale = req->snd_wscale;
	sk->rcv_wscale = req->rcv_wscale;
	sk->snd_wnd = (uint32_t)th->window << sk->snd_wscale;
	sk->sack_ok = req->sack_ok;
	sk->tstamp_ok = req->tstamp_ok;
	sk->ts_off = req->ts_off;
	sk->ts_recent = req->tstamp_ok && th->opt.ts_ok ? th->opt.tsval : req->ts_recent;
	sk->ts_recent_stamp_ms = tcp_clock_ms(st);
	sk->advmss = tcp_advmss(&sk->rt);
	if (sk->user_mss && sk->user_mss < sk->advmss)
		sk->advmss = sk->user_mss;
	sk->mss_clamp = req->mss < (sk->user_mss ? sk->user_mss : 65535) ? req->mss : sk->user_mss;
	tcp_sync_mss(st, sk);
	sk->rcv_wnd = req->rcv_wnd;
	sk->cwnd = TCP_INIT_CWND;
	sk->ssthresh = 0x7fffffff;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	/* tcp_synack_rtt_meas: the SYN-ACK's round trip is the first sample, unless it was
	 * resent (Karn) */
	if (!req->num_retrans)
		tcp_rtt_estimator(sk, (uint32_t)st->now - req->snt_synack_us);
	MIB_INC(st, TcpPassiveOpens);
	tcp_trace(st, "tcp_v4_syn_recv_sock", &sk->node, TCP_NEW_SYN_RECV, TCP_SYN_RECV);
	/* inet_ehash_nolisten: the child takes the request's place in the established hash,
	 * and shares the listener's port (__inet_inherit_port). */
	inet_ehash_remove(&req->node);
	inet_ehash_insert(st, &sk->node);
	sk->hashed = true;
	sk->tb = lsk->tb;
	sk->bind_next = lsk->tb->owners;
	lsk->tb->owners = sk;
	lsk->tb->nowners++;
	return sk;
}

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

struct sock *tcp_check_req(struct ustack *st, struct request_sock *req, const struct ipv4_repr *ip,
			   const struct tcp_repr *th)
{
	struct sock *lsk = req->listener;
	tcp_trace(st, "tcp_check_req", &req->node, TCP_SYN_RECV, TCP_SYN_RECV);
	/* A retransmitted SYN: the SYN-ACK was lost.  Resend it, at most every
	 * tcp_invalid_ratelimit (500 ms) (tcp_oow_rate_limited), and push the timer out. */
	if (th->seq == req->rcv_isn && (th->flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) == TCPHDR_SYN) {
		if (!reqsk_oow_rate_limited(st, req, th))
			reqsk_rtx_synack(st, req);
		timer_arm(st, &req->timer, st->now + reqsk_timeout_us(req));
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
			reqsk_send_ack(st, req);
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
	if (lsk->ack_backlog > lsk->max_ack_backlog) {
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
	if (tcp_data_init(st, sk) < 0) {
		sk_free(st, sk);
		return NULL;
	}
	tcp_set_state(st, sk, TCP_ESTABLISHED);
	tcp_reset_keepalive_timer(st, sk);
	/* inet_csk_reqsk_queue_add: onto the accept queue, and wake accept() */
	sk->parent = lsk;
	sk->acceptq_next = NULL;
	if (lsk->acceptq_tail)
		lsk->acceptq_tail->acceptq_next = sk;
	else
		lsk->acceptq_head = sk;
	lsk->acceptq_tail = sk;
	lsk->ack_backlog++;
	tcp_trace(st, "inet_csk_reqsk_queue_add", &sk->node, TCP_ESTABLISHED, TCP_ESTABLISHED);
	sk_wake_sk(st, lsk);
	return sk;
}
