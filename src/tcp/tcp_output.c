/*
 * Building and sending segments (Linux's net/ipv4/tcp_output.c, and the reply paths of
 * tcp_ipv4.c): the SYN of tcp_connect(), SYN-ACKs, ACKs and resets.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>

uint16_t tcp_advmss(const struct ustack_route_result *rt)
{
	return (uint16_t)(rt->mtu - IPV4_HLEN - TCP_HLEN);
}

static unsigned ilog2_u32(uint32_t v)
{
	return 31u - (unsigned)__builtin_clz(v | 1);
}

/* tcp_select_initial_window: the window a SYN or SYN-ACK offers and the scale that lets it
 * later grow to the largest buffer this socket could have. */
void tcp_select_initial_window(struct ustack *st, uint32_t space, uint32_t mss, uint32_t *rcv_wnd,
			       uint8_t *rcv_wscale, bool wscale_ok)
{
	const uint32_t window_clamp = 65535u << TCP_MAX_WSCALE;
	if (space > window_clamp)
		space = window_clamp;
	if (space > mss)
		space = space / mss * mss; /* a whole number of segments */
	*rcv_wnd = space < 65535u ? space : 65535u;
	*rcv_wscale = 0;
	if (wscale_ok) {
		uint32_t max = space;
		if ((uint32_t)st->sysctl.tcp_rmem[2] > max)
			max = (uint32_t)st->sysctl.tcp_rmem[2];
		if ((uint32_t)st->sysctl.rmem_max > max)
			max = (uint32_t)st->sysctl.rmem_max;
		if (max > window_clamp)
			max = window_clamp;
		int ws = (int)ilog2_u32(max) - 15;
		*rcv_wscale = (uint8_t)(ws < 0 ? 0 : ws > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : ws);
	}
}

int tcp_transmit(struct ustack *st, const struct tcp_seg_out *seg, const struct ustack_route_result *rt)
{
	bool syn = seg->flags & TCPHDR_SYN;
	size_t hlen = TCP_HLEN + tcp_options_len(&seg->opt, syn);
	struct pkt *p = pkt_alloc(st, PKT_HEADROOM, hlen);
	if (!p)
		return -ENOBUFS;
	struct tcp_repr r = {
		.sport = seg->lport, .dport = seg->rport, .seq = seg->seq, .ack = seg->ack,
		.flags = seg->flags, .window = seg->window, .opt = seg->opt, .plen = 0,
	};
	tcp_emit(pkt_put(p, hlen), &r, seg->laddr, seg->raddr);
	MIB_INC(st, TcpOutSegs);
	if (seg->flags & TCPHDR_RST)
		MIB_INC(st, TcpOutRsts);
	struct ip_tx tx = { .saddr = seg->laddr, .daddr = seg->raddr, .proto = IPPROTO_TCP_,
			    .df = seg->df, .id_set = seg->id_set, .id = seg->id };
	return ip_output(st, p, &tx, rt);
}

static void seg_from_sock(struct tcp_seg_out *seg, struct sock *sk, uint8_t flags)
{
	*seg = (struct tcp_seg_out){
		.laddr = sk->node.laddr, .raddr = sk->node.raddr,
		.lport = sk->node.lport, .rport = sk->node.rport,
		.flags = flags, .df = true, .id_set = true, .id = sk->inet_id++,
	};
}

static void ts_option(struct ustack *st, struct tcp_opts *o, uint32_t ts_off, uint32_t tsecr)
{
	o->ts_ok = true;
	o->tsval = tcp_clock_ms(st) + ts_off;
	o->tsecr = tsecr;
}

/* The SYN, first sent by tcp_connect() and resent by the retransmit timer.  In SYN_RECV (a
 * simultaneous open) it is our SYN-ACK, carrying only what both sides offered. */
static int tcp_send_syn(struct ustack *st, struct sock *sk)
{
	bool synack = sk->node.state == TCP_SYN_RECV;
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, synack ? TCPHDR_SYN | TCPHDR_ACK : TCPHDR_SYN);
	seg.seq = sk->iss;
	seg.ack = synack ? sk->rcv_nxt : 0;
	seg.window = (uint16_t)(sk->rcv_wnd < 65535u ? sk->rcv_wnd : 65535u);
	seg.opt.mss_ok = true;
	seg.opt.mss = sk->advmss;
	if (sk->tstamp_ok)
		ts_option(st, &seg.opt, sk->ts_off, synack ? sk->ts_recent : 0);
	seg.opt.sack_ok = sk->sack_ok;
	if (sk->wscale_ok) {
		seg.opt.ws_ok = true;
		seg.opt.wscale = sk->rcv_wscale;
	}
	tcp_trace(st, synack ? "tcp_send_synack" : "tcp_send_syn", &sk->node, sk->node.state, sk->node.state);
	return tcp_transmit(st, &seg, &sk->rt);
}

int tcp_connect(struct ustack *st, struct sock *sk)
{
	/* tcp_connect_init */
	sk->advmss = tcp_advmss(&sk->rt);
	if (sk->user_mss && sk->user_mss < sk->advmss)
		sk->advmss = sk->user_mss;
	sk->mss_clamp = sk->user_mss ? sk->user_mss : 65535;
	tcp_select_initial_window(st, (uint32_t)sk->rcvbuf / 2, sk->advmss, &sk->rcv_wnd,
				  &sk->rcv_wscale, st->sysctl.tcp_window_scaling != 0);
	/* What the SYN offers; the SYN-ACK decides what is negotiated. */
	sk->tstamp_ok = st->sysctl.tcp_timestamps != 0;
	sk->sack_ok = st->sysctl.tcp_sack != 0;
	sk->wscale_ok = st->sysctl.tcp_window_scaling != 0;
	sk->snd_una = sk->iss;
	sk->snd_nxt = sk->iss + 1;
	sk->rcv_nxt = 0;
	sk->retransmits = sk->backoff = sk->total_rto = 0;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	sk->retrans_stamp = st->now;
	MIB_INC(st, TcpActiveOpens);
	tcp_trace(st, "tcp_connect", &sk->node, sk->node.state, sk->node.state);
	int rc = tcp_send_syn(st, sk);
	tcp_reset_xmit_timer(st, sk);
	/* A SYN lost to a full pool is retransmitted like one lost on the wire (Linux keeps
	 * it queued too), so the connect does not fail here. */
	return rc == -ENOBUFS ? 0 : rc;
}

int tcp_retransmit_syn(struct ustack *st, struct sock *sk)
{
	MIB_INC(st, TcpRetransSegs);
	MIB_INC(st, TcpExtTCPSynRetrans);
	tcp_trace(st, "tcp_retransmit_skb", &sk->node, sk->node.state, sk->node.state);
	return tcp_send_syn(st, sk);
}

/* The window field of a non-SYN segment: scaled, rounded up so a small window stays open. */
static uint16_t tcp_window_field(const struct sock *sk)
{
	uint32_t w = (sk->rcv_wnd + (1u << sk->rcv_wscale) - 1) >> sk->rcv_wscale;
	return (uint16_t)(w > 65535u ? 65535u : w);
}

void tcp_send_ack(struct ustack *st, struct sock *sk)
{
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, TCPHDR_ACK);
	seg.seq = sk->snd_nxt;
	seg.ack = sk->rcv_nxt;
	seg.window = tcp_window_field(sk);
	if (sk->tstamp_ok)
		ts_option(st, &seg.opt, sk->ts_off, sk->ts_recent);
	tcp_transmit(st, &seg, &sk->rt);
}

void tcp_send_active_reset(struct ustack *st, struct sock *sk)
{
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, TCPHDR_RST | TCPHDR_ACK);
	seg.seq = sk->snd_nxt;
	seg.ack = sk->rcv_nxt;
	if (sk->tstamp_ok)
		ts_option(st, &seg.opt, sk->ts_off, sk->ts_recent);
	tcp_trace(st, "tcp_send_reset", &sk->node, sk->node.state, sk->node.state);
	tcp_transmit(st, &seg, &sk->rt);
}

int tcp_send_synack(struct ustack *st, struct request_sock *req)
{
	struct ustack_route_result rt;
	int rc = ip_route_connect(st, req->node.raddr, req->node.laddr, &rt);
	if (rc < 0)
		return rc;
	uint16_t advmss = tcp_advmss(&rt);
	if (req->listener->user_mss && req->listener->user_mss < advmss)
		advmss = req->listener->user_mss;
	/* tcp_openreq_init_rwin: the window is a whole number of segments of the MSS left
	 * after timestamps (65160 = 45 × 1448 with them, 64240 = 44 × 1460 without). */
	uint8_t ws;
	tcp_select_initial_window(st, (uint32_t)req->listener->rcvbuf / 2,
				  advmss - (req->tstamp_ok ? 12u : 0u), &req->rcv_wnd, &ws, req->wscale_ok);
	uint32_t rcv_wnd = req->rcv_wnd;
	struct tcp_seg_out seg = {
		.laddr = req->node.laddr, .raddr = req->node.raddr,
		.lport = req->node.lport, .rport = req->node.rport,
		.seq = req->snt_isn, .ack = req->rcv_isn + 1,
		.flags = TCPHDR_SYN | TCPHDR_ACK,
		.window = (uint16_t)(rcv_wnd < 65535u ? rcv_wnd : 65535u),
		.df = true, .id_set = true, .id = 0, /* ip_build_and_send_pkt: DF and ID 0 */
	};
	seg.opt.mss_ok = true;
	seg.opt.mss = advmss;
	if (req->tstamp_ok)
		ts_option(st, &seg.opt, req->ts_off, req->ts_recent);
	seg.opt.sack_ok = req->sack_ok;
	if (req->wscale_ok) {
		seg.opt.ws_ok = true;
		seg.opt.wscale = req->rcv_wscale;
	}
	tcp_trace(st, "tcp_send_synack", &req->node, TCP_LISTEN, TCP_SYN_RECV);
	return tcp_transmit(st, &seg, &rt);
}

/* tcp_v4_send_reset (RFC 9293 §3.10.7.1): never in answer to a RST; if the offending
 * segment had an ACK, the RST takes its sequence number from it, else it ACKs the segment. */
void tcp_v4_send_reset(struct ustack *st, const struct ipv4_repr *ip, const struct tcp_repr *th)
{
	if (th->flags & TCPHDR_RST)
		return;
	struct ustack_route_result rt;
	if (ip_route_connect(st, ip->saddr, ip->daddr, &rt) < 0)
		return;
	struct tcp_seg_out seg = {
		.laddr = ip->daddr, .raddr = ip->saddr, .lport = th->dport, .rport = th->sport,
		.df = true, .id_set = true, .id = 0,
	};
	if (th->flags & TCPHDR_ACK) {
		seg.seq = th->ack;
		seg.flags = TCPHDR_RST;
	} else {
		seg.ack = th->seq + (uint32_t)th->plen + !!(th->flags & TCPHDR_SYN) + !!(th->flags & TCPHDR_FIN);
		seg.flags = TCPHDR_RST | TCPHDR_ACK;
	}
	tcp_transmit(st, &seg, &rt);
}
