/*
 * Building and sending segments (Linux's net/ipv4/tcp_output.c, and the reply paths of
 * tcp_ipv4.c): the SYN of tcp_connect(), SYN-ACKs, ACKs and resets.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>

uint16_t tcp_advmss(const struct ustack_route_result *rt)
{
	return (uint16_t)(rt->mtu - IPV4_HLEN - TCP_HLEN);
}

static unsigned ilog2_u32(uint32_t v)
{
	return 31u - (unsigned)__builtin_clz(v | 1);
}

/*
 * tcp_select_initial_window: the window a SYN or SYN-ACK offers and the scale that lets it
 * later grow to the largest buffer this socket could have — or, with a window clamp (a
 * receive buffer locked by SO_RCVBUF: half of it, tcp_full_space), to that clamp only, so a
 * small locked buffer offers wscale 0.  Since Linux 6.10 the initial window is no longer held
 * to 64 KB (only the SYN's own field is): with scaling, the first ACK may offer all of it.
 */
void tcp_select_initial_window(struct ustack *st, uint32_t space, uint32_t mss, uint32_t *rcv_wnd,
			       uint8_t *rcv_wscale, bool wscale_ok, uint32_t clamp)
{
	const uint32_t window_clamp = clamp ? clamp : 65535u << TCP_MAX_WSCALE;
	if (space > window_clamp)
		space = window_clamp;
	if (space > mss)
		space = space / mss * mss; /* a whole number of segments */
	*rcv_wnd = wscale_ok ? space : space < 65535u ? space : 65535u;
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
	uint32_t plen = seg->payload ? seg->plen : 0;
	struct pkt *p = pkt_alloc(st, PKT_HEADROOM, hlen + plen);
	if (!p)
		return -ENOBUFS;
	bool tso = seg->gso_size && plen > seg->gso_size;
	/* a device that completes checksums (USTACK_IF_CSUM: the in-memory link, as loopback;
	 * AF_XDP with TX metadata; a TAP with its offloads) */
	const struct netdev *dev = tso ? NULL : netdev_get(st, rt->ifindex);
	/* the header's fields one by one: an initialiser would clear the options too, which
	 * tcp_emit_opts takes from seg (one packet in and out of a handshake each, so it shows) */
	struct tcp_repr r;
	r.sport = seg->lport;
	r.dport = seg->rport;
	r.seq = seg->seq;
	r.ack = seg->ack;
	r.flags = seg->flags;
	r.window = seg->window;
	r.urg = seg->urg;
	r.plen = plen;
	r.partial_csum = tso || (dev && (dev->offloads & USTACK_IF_CSUM));
	uint8_t *b = pkt_put(p, hlen + plen);
	if (plen) /* the payload is copied once, from the send ring into the packet */
		tcp_buf_peek(seg->payload, seg->off, b + hlen, plen);
	tcp_emit_opts(b, &r, &seg->opt, seg->laddr, seg->raddr);
	p->csum_partial = r.partial_csum;
	if (tso) {
		p->gso_size = seg->gso_size;
		MIB_ADD(st, TcpOutSegs, (plen + seg->gso_size - 1) / seg->gso_size); /* tcp_skb_pcount */
	} else {
		MIB_INC(st, TcpOutSegs);
	}
	if (seg->flags & TCPHDR_RST)
		MIB_INC(st, TcpOutRsts);
	struct ip_tx tx = { .saddr = seg->laddr, .daddr = seg->raddr, .proto = IPPROTO_TCP_, .tos = seg->tos,
			    .ttl = seg->ttl,
			    .df = seg->df, .id_set = seg->id_set, .id = seg->id };
	return ip_output(st, p, &tx, rt);
}

/* A segment of sk's.  With ECN, every segment but a SYN carries ECE while a CE mark waits for
 * the peer's CWR (tcp_ecn_send; RFC 3168 §6.1.3). */
static void seg_from_sock(struct tcp_seg_out *seg, struct sock *sk, uint8_t flags)
{
	if ((sk->ecn_flags & (TCP_ECN_OK | TCP_ECN_DEMAND_CWR)) == (TCP_ECN_OK | TCP_ECN_DEMAND_CWR) &&
	    !(flags & TCPHDR_SYN))
		flags |= TCPHDR_ECE;
	/* field by field, not a compound literal: clearing the whole thing (SACK blocks, a
	 * cookie) cost more than building the segment, on every segment sent */
	seg->laddr = sk->node.laddr;
	seg->raddr = sk->node.raddr;
	seg->lport = sk->node.lport;
	seg->rport = sk->node.rport;
	seg->seq = seg->ack = 0;
	seg->flags = flags;
	seg->window = 0;
	tcp_opts_clear(&seg->opt);
	/* ip_dont_fragment; IP_TOS without the ECN bits (tcp_ecn_send sets them) */
	seg->df = sk->pmtudisc == IP_PMTUDISC_WANT || sk->pmtudisc == IP_PMTUDISC_DO;
	seg->tos = (uint8_t)(sk->tos & ~3u);
	seg->ttl = sk->ttl;
	seg->id_set = true;
	seg->id = sk->inet_id++;
	seg->payload = NULL;
	seg->off = seg->plen = 0;
	seg->urg = 0;
	seg->gso_size = 0;
}

static void ts_option(struct ustack *st, struct tcp_opts *o, uint32_t ts_off, uint32_t tsecr)
{
	o->ts_ok = true;
	o->tsval = tcp_clock_ms(st) + ts_off;
	o->tsecr = tsecr;
}

/*
 * The SYN, first sent by tcp_connect() and resent by the retransmit timer.  In SYN_RECV (a
 * simultaneous open, or a Fast Open child) it is our SYN-ACK, carrying only what both sides
 * offered.  An active Fast Open's first SYN carries its request's option — a cookie, or an
 * empty one asking for a cookie — if it fits after the others (tcp_syn_options), and data_len
 * bytes of data from the send ring.
 */
static int tcp_send_syn(struct ustack *st, struct sock *sk, uint32_t data_len, bool retrans)
{
	bool synack = sk->node.state == TCP_SYN_RECV;
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, synack ? TCPHDR_SYN | TCPHDR_ACK : TCPHDR_SYN);
	/* ECN (tcp_ecn_send_syn, tcp_ecn_send_synack): a SYN that asks for it carries ECE and
	 * CWR — a resent one not, with tcp_ecn_fallback (RFC 3168 §6.1.1.1: a middlebox may drop
	 * such SYNs); our SYN-ACK agrees with ECE */
	if (sk->ecn_flags & TCP_ECN_OK) {
		if (synack)
			seg.flags |= TCPHDR_ECE;
		else if (!retrans || !st->sysctl.tcp_ecn_fallback)
			seg.flags |= TCPHDR_ECE | TCPHDR_CWR;
	}
	if (synack && sk->fastopen_rsk)
		seg.id = 0; /* as the request's SYN-ACK (ip_build_and_send_pkt) */
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
	const struct tcp_fastopen_request *fo = sk->fastopen_req;
	if (!synack && fo && fo->cookie.len >= 0) {
		size_t base = fo->cookie.exp ? 4u : 2u;
		size_t need = (base + (size_t)fo->cookie.len + 3u) & ~3u;
		if (TCP_MAX_OPTLEN - tcp_options_len(&seg.opt, true) >= need) {
			tcp_fastopen_cookie_to_opts(&fo->cookie, &seg.opt);
			sk->syn_fastopen = 1;
			sk->syn_fastopen_exp = fo->cookie.exp;
		}
	}
	if (data_len) {
		seg.payload = &sk->sndq;
		seg.off = 0;
		seg.plen = data_len;
	}
	tcp_trace(st, synack ? "tcp_send_synack" : "tcp_send_syn", &sk->node, sk->node.state, sk->node.state);
	/* __tcp_transmit_skb counts every segment the socket sends; a Fast Open child's SYN-ACK
	 * goes through its request socket (tcp_rtx_synack), as does a listener's */
	if (!synack || !sk->fastopen_rsk)
		sk->segs_out++;
	return tcp_transmit(st, &seg, &sk->rt);
}

/*
 * tcp_send_syn_data: an active Fast Open's SYN.  With a cookie (or none needed) it carries as
 * much of the request's data as fits one segment of the server's cached MSS, bounded by
 * TCP_MAXSEG and the path, less the 40 bytes of option space a middlebox might add to a SYN
 * (__tcp_mtu_to_mss − MAX_TCP_OPTION_SPACE): 1420 bytes on a 1500-byte path.  The data sits in
 * the send ring from iss + 1 like any written data, so that what the SYN-ACK does not
 * acknowledge is sent again after the handshake.  Without a cookie the SYN asks for one and the
 * data waits.  Resent SYNs carry neither data nor the option.
 */
static int tcp_send_syn_data(struct ustack *st, struct sock *sk)
{
	struct tcp_fastopen_request *fo = sk->fastopen_req;
	uint16_t mss = sk->advmss; /* if the cache has no MSS */
	uint32_t space = 0;
	int rc;
	if (!tcp_fastopen_cookie_check(st, sk, &mss, &fo->cookie)) {
		if (fo->cookie.len > 0)
			fo->cookie.len = 0; /* a cookie request instead */
		rc = tcp_send_syn(st, sk, 0, false);
		if (rc < 0 && rc != -ENOBUFS)
			sk->syn_fastopen = 0;
		fo->cookie.len = -1;
		return rc;
	}
	if (sk->user_mss && sk->user_mss < mss) /* tcp_mss_clamp */
		mss = sk->user_mss;
	uint32_t pmss = sk->rt.mtu - IPV4_HLEN - TCP_HLEN;
	if (pmss > mss)
		pmss = mss;
	if (pmss < (uint32_t)st->sysctl.tcp_min_snd_mss)
		pmss = (uint32_t)st->sysctl.tcp_min_snd_mss;
	space = pmss > MAX_TCP_OPTION_SPACE ? pmss - MAX_TCP_OPTION_SPACE : 0;
	if (space > fo->size)
		space = (uint32_t)fo->size;
	if (space) {
		if (tcp_snd_ring(st, sk) < 0)
			space = 0;
		else
			space = tcp_buf_push(&sk->sndq, fo->data, space);
	}
	if (space) {
		sk->write_seq = sk->iss + 1 + space;
		tcp_wq_add(sk, space, true, true);
		tcp_mark_push(sk); /* the data goes again as ACK|PSH if it must */
		sk->snd_nxt = sk->write_seq;
		tcp_txlog_sent(sk, sk->iss + 1, sk->write_seq, st->now);
		tcp_chrono_start(st, sk, TCP_CHRONO_BUSY);
	}
	fo->copied = space;
	rc = tcp_send_syn(st, sk, space, false);
	sk->syn_data = space > 0;
	fo->cookie.len = -1;
	return rc;
}

int tcp_connect(struct ustack *st, struct sock *sk)
{
	/* A socket connecting again (its last connection ended, a failed connect() reported it)
	 * starts without the old connection's data: its queued and unread bytes go
	 * (tcp_data_free), and with them its sequence state, whose write_seq would have a
	 * TCP_NODELAY or a timer send from an empty ring — a division by zero fuzz_stack found.
	 * Linux resets the socket then (tcp_disconnect, from __inet_stream_connect's sock_error:
	 * tcp_write_queue_purge and the rest); tcp_finish_connect sets the new state up.  For a
	 * socket's first connect there is nothing to free. */
	tcp_data_free(st, sk);
	sk->data_init = false;
	/* tcp_connect_init */
	sk->advmss = tcp_advmss(&sk->rt);
	if (sk->user_mss && sk->user_mss < sk->advmss)
		sk->advmss = sk->user_mss;
	sk->mss_clamp = sk->user_mss ? sk->user_mss : 65535;
	tcp_select_initial_window(st, (uint32_t)sk->rcvbuf / 2, sk->advmss, &sk->rcv_wnd,
				  &sk->rcv_wscale, st->sysctl.tcp_window_scaling != 0, tcp_rcvbuf_clamp(sk));
	/* What the SYN offers; the SYN-ACK decides what is negotiated. */
	sk->tstamp_ok = st->sysctl.tcp_timestamps != 0;
	sk->sack_ok = st->sysctl.tcp_sack != 0;
	sk->wscale_ok = st->sysctl.tcp_window_scaling != 0;
	sk->ecn_flags = st->sysctl.tcp_ecn == 1 ? TCP_ECN_OK : 0; /* 2 only accepts */
	sk->snd_una = sk->iss;
	sk->snd_nxt = sk->iss + 1;
	sk->rcv_nxt = 0;
	/* tcp_connect_init also forgets an error nobody read (a disconnect's ECONNRESET) and
	 * the last connection's largest window */
	sk->err = 0;
	sk->max_window = 0;
	sk->retransmits = sk->backoff = sk->total_rto = 0;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	sk->retrans_stamp = st->now;
	MIB_INC(st, TcpActiveOpens);
	tcp_trace(st, "tcp_connect", &sk->node, sk->node.state, sk->node.state);
	/* Send off SYN; include data in Fast Open. */
	int rc = sk->fastopen_req ? tcp_send_syn_data(st, sk) : tcp_send_syn(st, sk, 0, false);
	tcp_reset_xmit_timer(st, sk);
	/* A SYN lost to a full pool is retransmitted like one lost on the wire (Linux keeps
	 * it queued too), so the connect does not fail here. */
	return rc == -ENOBUFS ? 0 : rc;
}

/* The SYN again: in Linux the SYN is the retransmission queue's head, resent by
 * tcp_retransmit_skb, whose __tcp_retransmit_skb fires trace_tcp_retransmit_skb once it has
 * tried, with what sending returned. */
int tcp_retransmit_syn(struct ustack *st, struct sock *sk)
{
	sk->total_retrans++;
	MIB_INC(st, TcpRetransSegs);
	MIB_INC(st, TcpExtTCPSynRetrans);
	int rc = tcp_send_syn(st, sk, 0, true);
	trace_tcp_retransmit_skb(st, sk, rc);
	return rc;
}

/* tcp_rtx_synack for a Fast Open child: trace_tcp_retransmit_synack once the SYN-ACK went */
int tcp_rtx_synack(struct ustack *st, struct sock *sk)
{
	int rc = tcp_send_syn(st, sk, 0, true);
	if (rc == 0)
		trace_tcp_retransmit_synack(st, &sk->node);
	return rc;
}

/*
 * tcp_cwnd_restart (RFC 5681 §4.1, RFC 2861): a connection idle for longer than an RTO no
 * longer knows the path, so before sending again its window comes back toward the initial
 * one — halved for each RTO of idleness, never below min(cwnd, 10) — remembering what it had
 * in ssthresh (tcp_current_ssthresh: at least three quarters of it).
 */
static void tcp_cwnd_restart(struct sock *sk, uint64_t idle_ms)
{
	uint32_t restart = sk->cwnd < TCP_INIT_CWND ? sk->cwnd : TCP_INIT_CWND;
	uint32_t cwnd = sk->cwnd;
	if (!sk->in_cwr && !sk->in_recovery) {
		uint32_t three_quarters = (cwnd >> 1) + (cwnd >> 2);
		if (sk->ssthresh < three_quarters)
			sk->ssthresh = three_quarters;
	}
	int64_t delta = (int64_t)idle_ms;
	while ((delta -= sk->rto_ms) > 0 && cwnd > restart)
		cwnd >>= 1;
	sk->cwnd = cwnd > restart ? cwnd : restart;
	sk->cwnd_cnt = 0;
}

/* tcp_slow_start_after_idle_check: as a write starts a new skb with nothing in flight, after
 * more than an RTO without sending (net.ipv4.tcp_slow_start_after_idle, on by default). */
void tcp_slow_start_after_idle_check(struct ustack *st, struct sock *sk)
{
	if (!st->sysctl.tcp_slow_start_after_idle || sk->snd_una != sk->snd_max)
		return;
	uint64_t idle_ms = (st->now - sk->lsndtime) / 1000u;
	if (idle_ms > sk->rto_ms)
		tcp_cwnd_restart(sk, idle_ms);
}

/*
 * __tcp_select_window — Linux 6.18's, line for line (ustack's rcv_limit is tcp_full_space,
 * what of it the queued data leaves free tcp_space, the clamp tcp_init_buffer_space's): the free
 * space, but no more than rcv_ssthresh, which starts at the handshake's window and grows as data
 * arrives (tcp_grow_window); short of half the buffer it is rounded down to the scale and goes to
 * 0 below a segment or a sixteenth of the buffer (receiver-side silly window avoidance, RFC 9293
 * §3.8.6.2.2); scaled, it is rounded up to the scale, unscaled kept to whole segments.
 * tcp_select_window then never moves the right edge left (RFC 7323 §2.4), rounding a window that
 * would shrink up to the scale instead (Linux's first ACK: 64240 → 63 × 1024).
 */
uint32_t __tcp_select_window(const struct sock *sk)
{
	uint32_t scale = 1u << sk->rcv_wscale;
	int64_t mss = sk->mss_cache;                   /* icsk_ack.rcv_mss */
	int64_t allowed = sk->rcv_limit;               /* tcp_full_space */
	int64_t free_space = tcp_rcv_space(sk);        /* tcp_space */
	int64_t full = tcp_window_clamp(sk) < allowed ? tcp_window_clamp(sk) : allowed;
	if (mss > full) {
		mss = full;
		if (mss <= 0)
			return 0;
	}
	/* short of half the buffer: the window may close, but never by rounding up, and it goes
	 * to zero early — below a segment or a sixteenth of the buffer — so that the peer stops
	 * before data would be dropped for memory */
	if (free_space < full / 2) {
		free_space &= ~(int64_t)(scale - 1);
		if (free_space < allowed / 16 || free_space < mss)
			return 0;
	}
	if (free_space > sk->rcv_ssthresh)
		free_space = sk->rcv_ssthresh;
	if (sk->rcv_wscale) /* enough that scaling does not round it away */
		return (uint32_t)((free_space + scale - 1) & ~(int64_t)(scale - 1));
	/* unscaled: a whole number of segments, kept while within a segment of the free space */
	int64_t window = sk->rcv_wnd;
	if (window <= free_space - mss || window > free_space)
		window = free_space / mss * mss;
	else if (mss == full && free_space > window + full / 2)
		window = free_space;
	return (uint32_t)window;
}

uint16_t tcp_select_window(struct sock *sk)
{
	uint32_t scale = 1u << sk->rcv_wscale;
	uint32_t win;
	if (!sk->data_init) {
		win = (sk->rcv_wnd + scale - 1) & ~(scale - 1);
	} else {
		win = __tcp_select_window(sk);
		uint32_t edge = sk->rcv_adv - sk->rcv_nxt;
		if ((int32_t)(sk->rcv_adv - sk->rcv_nxt) > 0 && win < edge)
			win = (edge + scale - 1) & ~(scale - 1); /* never shrink */
		sk->rcv_wnd = win;
	}
	sk->rcv_adv = sk->rcv_nxt + win;
	uint32_t field = win >> sk->rcv_wscale;
	return (uint16_t)(field > 65535u ? 65535u : field);
}

/* The options of an established connection's segment: timestamps, and SACK blocks that
 * describe the out-of-order data we hold (RFC 2018 §4). */
static void established_options(struct ustack *st, struct sock *sk, struct tcp_opts *o)
{
	if (sk->tstamp_ok)
		ts_option(st, o, sk->ts_off, sk->ts_recent);
	if (sk->sack_ok)
		tcp_ofo_sack_blocks(sk, o);
}

void tcp_send_ack(struct ustack *st, struct sock *sk)
{
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, TCPHDR_ACK);
	seg.seq = sk->snd_nxt;
	seg.ack = sk->rcv_nxt;
	seg.window = tcp_select_window(sk);
	established_options(st, sk, &seg.opt);
	tcp_urg_set_pointer(sk, &seg);
	sk->rcv_unacked = 0;
	timer_cancel(st, &sk->timers.delack);
	sk->segs_out++;
	tcp_transmit(st, &seg, &sk->rt);
}

/* A data (and/or FIN) segment from the send ring: [seq, seq + len). */
static int tcp_send_data(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len, bool fin, bool psh)
{
	/* the size the caller cut at, before the options below use up a D-SACK */
	uint32_t mss = tcp_current_mss(sk);
	struct tcp_seg_out seg;
	uint8_t flags = TCPHDR_ACK;
	if (fin)
		flags |= TCPHDR_FIN;
	if (len && psh)
		flags |= TCPHDR_PSH;
	seg_from_sock(&seg, sk, flags);
	/* tcp_ecn_send: new data is ECT(0), and the first after a reduction says CWR; a
	 * retransmission or a bare FIN is not ECN-capable (RFC 3168 §6.1.5) */
	if ((sk->ecn_flags & TCP_ECN_OK) && len && !before(seq, sk->snd_max)) {
		seg.tos |= INET_ECN_ECT_0;
		if (sk->ecn_flags & TCP_ECN_QUEUE_CWR) {
			sk->ecn_flags &= (uint8_t)~TCP_ECN_QUEUE_CWR;
			seg.flags |= TCPHDR_CWR;
		}
	}
	seg.seq = seq;
	seg.ack = sk->rcv_nxt;
	seg.window = tcp_select_window(sk);
	established_options(st, sk, &seg.opt);
	seg.payload = &sk->sndq;
	seg.off = seq - sk->snd_una;
	seg.plen = len;
	/* more than a segment goes only to a TSO device (tcp_write_xmit): one packet, cut there */
	uint32_t segs = len > mss ? (len + mss - 1) / mss : 1;
	if (segs > 1) {
		seg.gso_size = (uint16_t)mss;
		sk->inet_id = (uint16_t)(sk->inet_id + segs - 1); /* the device numbers the rest */
	}
	tcp_urg_set_pointer(sk, &seg);
	sk->rcv_unacked = 0;
	timer_cancel(st, &sk->timers.delack);
	sk->segs_out += segs;
	/* below snd_max: sent before — every retransmission (go-back-N after a timeout, fast
	 * retransmit, the loss probe's, RACK's) comes through here, one segment at a time */
	bool rexmit = (int32_t)(seq - sk->snd_max) < 0;
	if (len) {
		if (sk->snd_una == sk->snd_max && sk->ca_ops->tx_start) /* tcp_event_data_sent */
			sk->ca_ops->tx_start(sk, (uint32_t)((st->now - sk->lsndtime) / 1000u));
		if (sk->in_recovery)
			sk->prr.out += segs; /* PRR counts what recovery sends */
		sk->data_segs_out += segs;
		sk->bytes_sent += len;
		sk->lsndtime = st->now;
		/* tcp_event_data_sent: an answer within ato of the data it answers: pingpong */
		if ((st->now - sk->lrcvtime) / 1000u < sk->ato_ms && sk->pingpong < 255)
			sk->pingpong++;
		if (rexmit) {
			sk->bytes_retrans += len;
			tcp_txlog_retrans(sk, seq, seq + len, st->now);
		} else {
			tcp_txlog_sent(sk, seq, seq + len, st->now);
		}
	}
	if (sk->ext && sk->ext->ts_used)
		tcp_tx_timestamp_request(st, sk, seq, len);
	int rc = tcp_transmit(st, &seg, &sk->rt);
	st->net->tx_ts.owner = NULL; /* not taken: the packet never reached a device */
	if (rexmit) /* __tcp_retransmit_skb's trace, after the attempt, with its result */
		trace_tcp_retransmit_skb(st, sk, rc);
	return rc;
}

/* tcp_limit_reno_sacked: the duplicate ACKs a non-SACK sender counts as delivered segments,
 * never all of what is in flight */
static uint32_t tcp_reno_sacked(const struct sock *sk, uint32_t mss, uint32_t in_flight)
{
	uint32_t segs = (in_flight + mss - 1) / mss;
	uint32_t sacked = sk->dupacks < segs ? sk->dupacks : (segs ? segs - 1 : 0);
	uint32_t bytes = sacked * mss;
	return bytes < in_flight ? bytes : in_flight;
}

/* tcp_check_probe_timer: with nothing in flight no ACK will come, so a sender that holds
 * data back needs a timer running (the zero-window probe, or tcp_write_wakeup after an RTO). */
static void tcp_check_probe_timer(struct ustack *st, struct sock *sk)
{
	if (sk->snd_una == sk->snd_max && !timer_pending(&sk->timers.retransmit))
		tcp_rearm_rto(st, sk);
}

/* A retransmission after a timeout (go-back-N, __tcp_retransmit_skb): at most what was sent,
 * up to the next SACKed range, cut and joined along the write queue's skbs. */
static uint32_t tcp_rexmit_len(const struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len, bool *psh)
{
	uint32_t sent = sk->snd_max - seq;
	if (len > sent)
		len = sent;
	for (unsigned i = 0; i < sk->nsacked; i++) /* up to the next SACKed range */
		if ((int32_t)(sk->sacked[i].start - seq) > 0) {
			if (len > sk->sacked[i].start - seq)
				len = sk->sacked[i].start - seq;
			break;
		}
	return len ? tcp_wq_rexmit_len(st, sk, seq, len, psh) : 0;
}

/* tcp_nagle_test, with TCP_CORK and MSG_MORE: must the partial segment [seq, seq + len), all
 * that is unsent, wait? */
static bool tcp_nagle_test(struct ustack *st, struct sock *sk, uint32_t len, uint32_t unsent, uint32_t in_flight,
			   bool fin_pending)
{
	uint32_t mss = tcp_current_mss(sk);
	if (!len || len >= mss || len != unsent || sk->urg_mode)
		return false; /* (urgent data unacknowledged: nothing waits, cork or Nagle) */
	/* corked (TCP_CORK, or MSG_MORE on the last send): a partial segment waits for more
	 * data, or for the cork to come out — with the probe timer running, so that it goes
	 * after an RTO if nothing else comes (tcp_check_probe_timer → tcp_write_wakeup) */
	if ((sk->cork || sk->more) && !fin_pending) {
		tcp_check_probe_timer(st, sk);
		return true;
	}
	/* Nagle as Linux has it (tcp_nagle_check with Minshall's variant): a small segment waits
	 * only while an earlier small segment is unacknowledged */
	return in_flight && !sk->nodelay && !sk->fin_queued && (int32_t)(sk->snd_sml - sk->snd_una) > 0 &&
	       (int32_t)(sk->snd_sml - sk->snd_nxt) <= 0;
}

/* Where a new TSO packet starting at seq ends (tcp_tso_autosize, tcp_cwnd_test's half of the
 * window, the skb, the peer's window); *multi when it holds more than one segment. */
static uint32_t tcp_tso_split(const struct ustack *st, const struct sock *sk, uint32_t seq, uint32_t cwnd_room,
			      uint32_t skb_end, uint32_t wnd_room, bool *multi)
{
	uint32_t mss = tcp_current_mss(sk);
	uint32_t segs = tcp_tso_segs(st, sk, mss);
	uint32_t half = sk->cwnd / 2 ? sk->cwnd / 2 : 1;
	uint32_t room_segs = cwnd_room / mss ? cwnd_room / mss : 1;
	if (segs > half)
		segs = half;
	if (segs > room_segs)
		segs = room_segs;
	if (sk->urg_mode)
		segs = 1; /* tcp_write_xmit: no TSO while urgent (tcp_mss_split_point is skipped) */
	uint32_t bytes = segs * mss;
	if (bytes > skb_end - seq)
		bytes = skb_end - seq;
	if (bytes > wnd_room)
		bytes = wnd_room;
	*multi = bytes > mss;
	return seq + bytes;
}

/* tcp_event_data_sent: [seq, seq + len) (and a FIN) went; the send state follows, and the
 * first data in flight starts a fresh RTO, even if the timer was probing a zero window
 * (tcp_event_new_data_sent). */
static void tcp_event_data_sent(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len, bool fin,
				bool rexmit, uint32_t mss)
{
	if (rexmit) {
		MIB_INC(st, TcpRetransSegs); /* resent after a timeout (go-back-N) */
		sk->total_retrans++;
	}
	sk->snd_nxt = seq + len + (fin ? 1 : 0);
	/* mss: the mss_now the data was cut at (tcp_current_mss before this segment's options
	 * took a D-SACK away) */
	if (!rexmit && len < mss) /* tcp_minshall_update: new data only */
		sk->snd_sml = seq + len;
	if ((int32_t)(sk->snd_nxt - sk->snd_max) > 0)
		sk->snd_max = sk->snd_nxt;
	bool first_in_flight = !rexmit && seq == sk->snd_una;
	if (!rexmit) /* the last segment's start, a TSO packet's too (what a loss probe resends) */
		sk->last_seg_seq = len > mss ? seq + (len - 1) / mss * mss : seq;
	if (!timer_pending(&sk->timers.retransmit) || first_in_flight)
		tcp_rearm_rto(st, sk);
}

/* tcp_cwnd_validate: how much of the window this round used, which decides whether the next
 * ACKs may grow it (tcp_is_cwnd_limited). */
static void tcp_cwnd_validate(struct sock *sk, bool cwnd_stop, bool sent_any)
{
	uint32_t mss = tcp_mss_now(sk);
	uint32_t packets_out = (sk->snd_max - sk->snd_una + mss - 1) / mss;
	bool is_cwnd_limited = cwnd_stop || packets_out >= sk->cwnd;
	if (!sent_any && !is_cwnd_limited)
		return;
	if (!before(sk->snd_una, sk->cwnd_usage_seq) || is_cwnd_limited ||
	    (!sk->is_cwnd_limited && packets_out > sk->max_packets_out)) {
		sk->is_cwnd_limited = is_cwnd_limited;
		sk->max_packets_out = packets_out;
		sk->cwnd_usage_seq = sk->snd_nxt;
	}
}

/*
 * tcp_write_xmit: send what the congestion window (RFC 5681) and the peer's window allow, one
 * MSS at a time, holding back a small segment while another small one is in flight unless
 * TCP_NODELAY (Nagle, RFC 896, with Minshall's refinement as Linux), a partial segment while
 * corked, and a segment the window would cut short while more data waits (sender-side silly
 * window avoidance).  After a timeout it goes back over what the peer has not SACKed.  The
 * FIN goes with the last byte, or alone.
 *
 * New data never spans two skbs of the write queue, and goes in the TSO packets Linux would
 * build — up to tcp_tso_segs segments, half the congestion window (tcp_cwnd_test), the skb
 * and the window — each of which Linux 6.18 sends with PSH when it holds more than one
 * segment (measured through packetdrill's TSO tun: even under MSG_MORE); ustack, sending
 * the segments themselves, puts that PSH on the last of them, as a NIC's TSO does.  A
 * packet of one segment carries PSH only if it ends an skb marked by tcp_mark_push.
 *
 * Over 80 lines: the loop is Linux's, and each test in it decides what the next one sees (the
 * length the window allows is what Nagle tests, and what the split point cuts); the named steps
 * it calls (tcp_nagle_test, tcp_tso_split, tcp_event_data_sent, tcp_cwnd_validate) are apart.
 */
void tcp_write_xmit(struct ustack *st, struct sock *sk)
{
	uint32_t mss = tcp_current_mss(sk); /* mss_now: less the SACK blocks each segment carries */
	bool sent_new = false;
	uint32_t chunk_end = sk->snd_nxt; /* end of the TSO packet being sent; none yet */
	/* a device that segments (USTACK_IF_TSO) takes each TSO packet whole */
	const struct netdev *dev = netdev_get(st, sk->rt.ifindex);
	bool tso_dev = dev && (dev->offloads & USTACK_IF_TSO);
	bool chunk_multi = false;
	bool rwnd_limited = false, cwnd_stop = false, sent_any = false;
	for (int guard = 0; guard < 1024; guard++) {
		uint32_t seq = sk->snd_nxt;
		bool fin_pending = sk->fin_queued && (int32_t)(sk->write_seq + 1 - seq) > 0;
		uint32_t unsent = (int32_t)(sk->write_seq - seq) > 0 ? sk->write_seq - seq : 0;
		if (!unsent && !fin_pending)
			break;
		bool rexmit = (int32_t)(seq - sk->snd_max) < 0; /* going back after a timeout */
		if (rexmit && sk->nsacked) {
			uint32_t skip = tcp_sack_skip(sk, seq);
			if (skip != seq) { /* the peer has it: do not send it again */
				sk->snd_nxt = skip;
				continue;
			}
		}
		/* tcp_cwnd_test: with SACK information, what is in flight is the pipe (RFC 6675):
		 * SACKed data has left the network, so each SACK lets new data go — which also does
		 * what limited transmit (RFC 3042) does, as Linux's packets_out − sacked_out does */
		uint32_t in_flight = sk->nsacked && !rexmit ? tcp_sack_pipe(sk) : seq - sk->snd_una;
		/* limited transmit (RFC 3042) without SACK: Linux counts each duplicate ACK as a
		 * segment that left the network (tcp_add_reno_sack), so the first ones let new data
		 * go before recovery starts */
		if (!sk->sack_ok && !sk->in_recovery && sk->dupacks && !rexmit)
			in_flight -= tcp_reno_sacked(sk, mss, in_flight);
		uint32_t cwnd_room = sk->cwnd * mss > in_flight ? sk->cwnd * mss - in_flight : 0;
		/* tcp_snd_wnd_test */
		uint32_t wnd_end = sk->snd_una + sk->snd_wnd;
		uint32_t wnd_room = (int32_t)(wnd_end - seq) > 0 ? wnd_end - seq : 0;
		uint32_t len = unsent < mss ? unsent : mss;
		bool psh = false;
		uint8_t skb_flags = 0;
		uint32_t skb_end = unsent ? tcp_wq_end(sk, seq, &skb_flags) : seq;
		if (rexmit)
			len = tcp_rexmit_len(st, sk, seq, len, &psh);
		else if (len > skb_end - seq)
			len = skb_end - seq; /* a fresh segment stays within its skb */
		uint32_t want = len;
		if (len > wnd_room)
			len = wnd_room;
		if (len > cwnd_room)
			len = cwnd_room;
		sk->cwnd_limited = cwnd_room < (unsent < mss ? unsent : mss);
		if (unsent && !len) {
			if (wnd_room < want)
				rwnd_limited = true;
			else
				cwnd_stop = true;
			if (!in_flight && !timer_pending(&sk->timers.retransmit))
				tcp_rearm_rto(st, sk); /* zero window: the timer probes it */
			break;
		}
		if (!rexmit && len < want && len < mss) {
			if (wnd_room < want)
				rwnd_limited = true; /* tcp_snd_wnd_test failed */
			else
				cwnd_stop = true;
			/* the window would cut it short: wait for room (sender SWS avoidance) */
			tcp_check_probe_timer(st, sk);
			break;
		}
		if (!rexmit && tcp_nagle_test(st, sk, len, unsent, in_flight, fin_pending))
			break;
		bool fin = fin_pending && seq + len == sk->write_seq;
		if (!len && !fin)
			break;
		if (!rexmit && len) {
			if (!after(chunk_end, seq)) { /* a new TSO packet starts here */
				chunk_end = tcp_tso_split(st, sk, seq, cwnd_room, skb_end, wnd_room, &chunk_multi);
				if (before(chunk_end, skb_end)) { /* tso_fragment: the packet's own skb */
					tcp_wq_split(sk, chunk_end);
					skb_end = tcp_wq_end(sk, seq, &skb_flags);
				}
			}
			/* To a TSO device the packet's whole segments go as one (tcp_transmit_skb of a
			 * TSO skb: the same segments on the wire, cut there); a last, partial segment
			 * still goes alone, under Nagle as before. */
			if (tso_dev && len == mss && after(chunk_end, seq + mss)) {
				uint32_t room = wnd_room < cwnd_room ? wnd_room : cwnd_room;
				uint32_t whole = chunk_end - seq < room ? chunk_end - seq : room;
				if (whole > TCP_TSO_MAX)
					whole = TCP_TSO_MAX;
				whole -= whole % mss;
				if (whole > len) {
					len = whole;
					fin = fin_pending && seq + len == sk->write_seq;
				}
			}
			/* a one-segment packet cut from an skb leaves the PSH to the rest of it
			 * (tso_fragment), so only the skb's last segment carries its mark */
			if (!before(seq + len, chunk_end))
				psh = chunk_multi || (seq + len == skb_end && (skb_flags & TCP_SKB_PSH));
		}
		if (tcp_send_data(st, sk, seq, len, fin, psh) == -ENOBUFS)
			break;
		sent_any = true;
		sent_new |= !rexmit;
		tcp_event_data_sent(st, sk, seq, len, fin, rexmit, mss);
	}
	/* one loss probe per tail: armed after new data goes out (tcp_write_xmit's
	 * tcp_schedule_loss_probe) */
	if (sent_new && !sk->tlp_high_seq)
		tcp_schedule_loss_probe(st, sk, false);
	if (rwnd_limited)
		tcp_chrono_start(st, sk, TCP_CHRONO_RWND_LIMITED);
	else
		tcp_chrono_stop(st, sk, TCP_CHRONO_RWND_LIMITED);
	tcp_cwnd_validate(sk, cwnd_stop, sent_any);
}

/* tcp_send_loss_probe: new data if the window allows one segment of it, else the newest
 * segment again; either way the peer must answer, with SACK blocks that start recovery if the
 * tail was lost.  Then the RTO. */
void tcp_send_loss_probe(struct ustack *st, struct sock *sk)
{
	if (sk->tlp_high_seq || sk->snd_una == sk->snd_max) {
		tcp_rearm_rto(st, sk);
		return;
	}
	uint32_t mss = tcp_current_mss(sk);
	uint32_t max_before = sk->snd_max;
	uint32_t unsent = (int32_t)(sk->write_seq - sk->snd_nxt) > 0 ? sk->write_seq - sk->snd_nxt : 0;
	uint32_t room = sk->snd_una + sk->snd_wnd - sk->snd_nxt;
	if (unsent && (int32_t)room > 0 && sk->snd_nxt == sk->snd_max) {
		uint32_t len = unsent < mss ? unsent : mss;
		uint8_t skb_flags;
		uint32_t skb_end = tcp_wq_end(sk, sk->snd_nxt, &skb_flags);
		if (len > skb_end - sk->snd_nxt)
			len = skb_end - sk->snd_nxt;
		if (len > room)
			len = room;
		bool fin = sk->fin_queued && sk->snd_nxt + len == sk->write_seq;
		bool psh = sk->snd_nxt + len == skb_end && (skb_flags & TCP_SKB_PSH);
		if (tcp_send_data(st, sk, sk->snd_nxt, len, fin, psh) == 0) {
			sk->last_seg_seq = sk->snd_nxt;
			sk->snd_nxt += len + (fin ? 1 : 0);
			sk->snd_max = sk->snd_nxt; /* snd_nxt was snd_max: new data */
		}
	}
	sk->tlp_retrans = false;
	if (sk->snd_max == max_before) {
		uint32_t seq = (int32_t)(sk->last_seg_seq - sk->snd_una) > 0 ? sk->last_seg_seq : sk->snd_una;
		tcp_retransmit_range(st, sk, seq, mss);
		sk->tlp_retrans = true;
	}
	sk->tlp_high_seq = sk->snd_max;
	MIB_INC(st, TcpExtTCPLossProbes);
	tcp_trace(st, "tcp_send_loss_probe", &sk->node, sk->node.state, sk->node.state);
	tcp_rearm_rto(st, sk);
}

/* A retransmission of up to len bytes from seq (which was sent before), with the FIN if
 * they reach it; returns how many bytes of data it held (skb boundaries may cut it short). */
uint32_t tcp_retransmit_range(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len)
{
	uint32_t data_end = (int32_t)(sk->write_seq - sk->snd_max) < 0 ? sk->write_seq : sk->snd_max;
	if ((int32_t)(data_end - seq) <= 0)
		len = 0;
	else if (len > data_end - seq)
		len = data_end - seq;
	bool psh = false;
	if (len)
		len = tcp_wq_rexmit_len(st, sk, seq, len, &psh);
	bool fin = sk->fin_queued && seq + len == sk->write_seq && sk->snd_max == sk->write_seq + 1;
	if (!len && !fin)
		return 0;
	MIB_INC(st, TcpRetransSegs);
	sk->total_retrans++;
	tcp_send_data(st, sk, seq, len, fin, psh);
	return len;
}

/*
 * __tcp_retransmit_skb with segs > 1, as tcp_xmit_retransmit_queue calls it in recovery: up to
 * max_len bytes (whole segments, as many as cwnd and the TSO size allow) of the skb at seq go as
 * one TSO packet — cut from the skb if it is longer (tcp_fragment) — and, a packet of more than
 * one segment, with PSH on its last (__tcp_transmit_skb's pcount > 1 rule; ustack sends the
 * segments one by one).  A packet of one segment is tcp_retransmit_range's.  Returns the bytes
 * of data sent.
 */
uint32_t tcp_retransmit_skb(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t max_len)
{
	uint32_t mss = tcp_current_mss(sk); /* cur_mss */
	uint8_t fl;
	uint32_t rend = tcp_wq_end(sk, seq, &fl);
	uint32_t data_end = (int32_t)(sk->write_seq - sk->snd_max) < 0 ? sk->write_seq : sk->snd_max;
	uint32_t len = max_len;
	if (len > rend - seq)
		len = rend - seq;
	if ((int32_t)(data_end - seq) <= 0)
		len = 0;
	else if (len > data_end - seq)
		len = data_end - seq;
	if (len <= mss)
		return tcp_retransmit_range(st, sk, seq, mss < max_len ? mss : max_len);
	if (before(seq + len, rend))
		tcp_wq_split(sk, seq + len);
	bool fin = sk->fin_queued && seq + len == sk->write_seq && sk->snd_max == sk->write_seq + 1;
	for (uint32_t off = 0; off < len;) {
		uint32_t piece = len - off < mss ? len - off : mss;
		bool last = off + piece == len;
		MIB_INC(st, TcpRetransSegs);
		sk->total_retrans++;
		tcp_send_data(st, sk, seq + off, piece, last && fin, last);
		off += piece;
	}
	return len;
}

/* Fast retransmit (RFC 5681 §3.2) and NewReno's partial ACKs (RFC 6582): the first segment
 * not yet acknowledged, again. */
void tcp_retransmit_head(struct ustack *st, struct sock *sk)
{
	tcp_retransmit_range(st, sk, sk->snd_una, tcp_current_mss(sk));
}

/* tcp_xmit_probe_skb: a bare ACK at seq — snd_una − 1, a sequence number the peer has seen,
 * so that it must answer with its window; or snd_una, to carry the urgent pointer */
static void tcp_xmit_probe_skb(struct ustack *st, struct sock *sk, uint32_t seq)
{
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, TCPHDR_ACK);
	seg.seq = seq;
	seg.ack = sk->rcv_nxt;
	seg.window = tcp_select_window(sk);
	established_options(st, sk, &seg.opt);
	tcp_urg_set_pointer(sk, &seg);
	tcp_transmit(st, &seg, &sk->rt);
}

/* tcp_write_wakeup: with data waiting and a window too small for a full segment, what fits
 * goes anyway; with no window at all, tcp_xmit_probe_skb: a bare ACK with an old sequence
 * number, which the peer must answer with its current window. */
void tcp_send_probe(struct ustack *st, struct sock *sk)
{
	uint32_t unsent = sk->write_seq - sk->snd_nxt;
	uint32_t room = sk->snd_wnd > sk->snd_nxt - sk->snd_una ? sk->snd_wnd - (sk->snd_nxt - sk->snd_una) : 0;
	if ((int32_t)unsent > 0 && room) {
		uint32_t mss = tcp_current_mss(sk);
		uint32_t len = unsent < room ? unsent : room;
		if (len > mss)
			len = mss;
		uint8_t skb_flags;
		uint32_t skb_end = tcp_wq_end(sk, sk->snd_nxt, &skb_flags);
		if (len > skb_end - sk->snd_nxt)
			len = skb_end - sk->snd_nxt;
		/* tcp_write_wakeup marks what it sends PSH: the peer should answer at once */
		if (tcp_send_data(st, sk, sk->snd_nxt, len, false, true) == 0) {
			sk->snd_nxt += len;
			if ((int32_t)(sk->snd_nxt - sk->snd_max) > 0)
				sk->snd_max = sk->snd_nxt;
		}
		return;
	}
	if (tcp_urg_probe_first(sk)) /* urgent data unacknowledged: an ACK at snd_una first */
		tcp_xmit_probe_skb(st, sk, sk->snd_una);
	tcp_xmit_probe_skb(st, sk, sk->snd_una - 1);
}

void tcp_send_fin(struct ustack *st, struct sock *sk)
{
	sk->fin_queued = true;
	tcp_trace(st, "tcp_send_fin", &sk->node, sk->node.state, sk->node.state);
	tcp_write_xmit(st, sk);
}

/* tcp_send_active_reset: the RST goes, then trace_tcp_send_reset fires — with no segment
 * (skbaddr NULL: none caused it) and the reason the caller gives.  Like any segment of the
 * socket's (tcp_transmit_skb), it carries the receive window, closed socket or not: Linux's
 * disconnect RST says "win 65535" where no scaling was agreed. */
void tcp_send_active_reset_reason(struct ustack *st, struct sock *sk, enum sk_rst_reason reason, int state)
{
	struct tcp_seg_out seg;
	seg_from_sock(&seg, sk, TCPHDR_RST | TCPHDR_ACK);
	seg.seq = sk->snd_nxt;
	seg.ack = sk->rcv_nxt;
	seg.window = tcp_select_window(sk);
	if (sk->tstamp_ok)
		ts_option(st, &seg.opt, sk->ts_off, sk->ts_recent);
	tcp_urg_set_pointer(sk, &seg);
	tcp_transmit(st, &seg, &sk->rt);
	trace_tcp_send_reset(st, sk, state, NULL, NULL, reason);
}

void tcp_send_active_reset(struct ustack *st, struct sock *sk)
{
	tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_STATE, TCP_CLOSE);
}

int tcp_openreq_init_rwin(struct ustack *st, struct request_sock *req, struct ustack_route_result *rt,
			  uint16_t *advmss)
{
	int rc = ip_route_connect(st, req->node.raddr, req->node.laddr, rt);
	if (rc < 0)
		return rc;
	*advmss = tcp_advmss(rt);
	if (req->listener->user_mss && req->listener->user_mss < *advmss)
		*advmss = req->listener->user_mss;
	/* the window is a whole number of segments of the MSS left after timestamps (65160 =
	 * 45 × 1448 with them, 64240 = 44 × 1460 without) */
	uint8_t ws;
	tcp_select_initial_window(st, (uint32_t)req->listener->rcvbuf / 2,
				  *advmss - (req->tstamp_ok ? 12u : 0u), &req->rcv_wnd, &ws, req->wscale_ok,
				  tcp_rcvbuf_clamp(req->listener));
	return 0;
}

int tcp_send_synack(struct ustack *st, struct request_sock *req, const struct tcp_fastopen_cookie *foc,
		    uint32_t syn_data)
{
	struct ustack_route_result rt;
	uint16_t advmss;
	int rc = tcp_openreq_init_rwin(st, req, &rt, &advmss);
	if (rc < 0)
		return rc;
	uint32_t rcv_wnd = req->rcv_wnd;
	struct tcp_seg_out seg = {
		.laddr = req->node.laddr, .raddr = req->node.raddr,
		.lport = req->node.lport, .rport = req->node.rport,
		.seq = req->snt_isn, .ack = req->rcv_isn + 1 + syn_data,
		.flags = TCPHDR_SYN | TCPHDR_ACK | (req->ecn_ok ? TCPHDR_ECE : 0), /* tcp_ecn_make_synack */
		.window = (uint16_t)(rcv_wnd < 65535u ? rcv_wnd : 65535u),
		/* ip_build_and_send_pkt with the listener's IP options: DF and ID 0 */
		.df = req->listener->pmtudisc == IP_PMTUDISC_WANT || req->listener->pmtudisc == IP_PMTUDISC_DO,
		.id_set = true, .id = 0,
		.tos = (uint8_t)(req->listener->tos & ~3u), .ttl = req->listener->ttl,
	};
	seg.opt.mss_ok = true;
	seg.opt.mss = advmss;
	if (req->tstamp_ok) {
		ts_option(st, &seg.opt, req->ts_off, req->ts_recent);
		if (req->cookie) /* the options ride in the TSval's low bits (syncookies.c) */
			seg.opt.tsval = cookie_init_timestamp(req, tcp_clock_ms(st)) + req->ts_off;
	}
	seg.opt.sack_ok = req->sack_ok;
	if (req->wscale_ok) {
		seg.opt.ws_ok = true;
		seg.opt.wscale = req->rcv_wscale;
	}
	if (foc && foc->len >= 0) { /* tcp_synack_options: the cookie, if it fits */
		size_t need = ((foc->exp ? 4u : 2u) + (size_t)foc->len + 3u) & ~3u;
		if (TCP_MAX_OPTLEN - tcp_options_len(&seg.opt, true) >= need)
			tcp_fastopen_cookie_to_opts(foc, &seg.opt);
	}
	tcp_trace(st, "tcp_send_synack", &req->node, TCP_LISTEN, TCP_SYN_RECV);
	req->snt_synack_us = (uint32_t)st->now;
	return tcp_transmit(st, &seg, &rt);
}

/*
 * The chronographs behind TCP_INFO's tcpi_busy_time, tcpi_rwnd_limited and
 * tcpi_sndbuf_limited (tcp_chrono_start/stop, in jiffies — ms — as Linux keeps them): one
 * runs at a time, the most interesting condition winning; when it stops, busy takes over while
 * data remains, else none.
 */
static uint32_t chrono_now(const struct ustack *st)
{
	return (uint32_t)(st->now / 1000u);
}

static void tcp_chrono_set(const struct ustack *st, struct sock *sk, uint8_t type)
{
	uint32_t now = chrono_now(st);
	if (sk->chrono_type)
		sk->chrono_stat[sk->chrono_type - 1] += now - sk->chrono_start_ms;
	sk->chrono_start_ms = now;
	sk->chrono_type = type;
}

void tcp_chrono_start(const struct ustack *st, struct sock *sk, uint8_t type)
{
	if (type > sk->chrono_type)
		tcp_chrono_set(st, sk, type);
}

void tcp_chrono_stop(const struct ustack *st, struct sock *sk, uint8_t type)
{
	if (sk->write_seq == sk->snd_una) /* tcp_rtx_and_write_queues_empty */
		tcp_chrono_set(st, sk, 0);
	else if (type == sk->chrono_type)
		tcp_chrono_set(st, sk, TCP_CHRONO_BUSY);
}

void tcp_chrono_stats(const struct ustack *st, const struct sock *sk, uint64_t out_us[3])
{
	for (unsigned i = 0; i < 3; i++) {
		uint64_t ms = sk->chrono_stat[i];
		if (sk->chrono_type == i + 1)
			ms += chrono_now(st) - sk->chrono_start_ms;
		out_us[i] = ms * 1000u;
	}
}
