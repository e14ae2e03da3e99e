/*
 * TCP over IPv4 (Linux's net/ipv4/tcp_ipv4.c): the seed's entry points on both sides.
 *
 *   connect()  → tcp_v4_connect: route (ip_route_connect), ephemeral port and unique 4-tuple
 *                (inet_hash_connect), ISN and timestamp offset, SYN_SENT, tcp_connect
 *   a segment  → tcp_v4_rcv: checksum and header, then the established hash (a connection,
 *                or a request socket waiting for its final ACK: tcp_check_req), then the
 *                listeners (tcp_conn_request), else tcp_v4_send_reset
 *   final ACK  → tcp_v4_syn_recv_sock: the full socket that replaces the request socket
 *
 * Call order on input: tcp_v4_rcv → tcp_rcv_state_process (tcp_input.c) for sockets,
 * tcp_check_req → tcp_child_process (tcp_minisocks.c) for request sockets,
 * tcp_conn_request (tcp_input.c) for listeners.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <ustack/socket.h>

/* tcp_v4_connect: the seed's phases 1–3 */
int tcp_v4_connect(struct ustack *st, struct sock *sk, uint32_t daddr, uint16_t dport)
{
	tcp_trace(st, "tcp_v4_connect", &sk->node, TCP_CLOSE, TCP_CLOSE);
	/* 1. ip_route_connect: the route, and our address if we are not bound to one */
	struct route_key key = { sk_bound_dev_if(sk), sk->dontroute, sk->transparent };
	int rc = ip_route_output(st, daddr, sk->node.laddr, &key, &sk->rt);
	if (rc < 0) {
		if (rc == -ENETUNREACH)
			MIB_INC(st, IpOutNoRoutes);
		return rc;
	}
	uint32_t saddr = ntohl(sk->rt.saddr.s_addr);
	uint32_t old_laddr = sk->node.laddr;
	sk->node.laddr = saddr;
	sk->node.raddr = daddr;
	sk->node.rport = dport;
	/* 2. inet_hash_connect: an ephemeral port unless bound, unique 4-tuple */
	rc = inet_hash_connect(st, sk);
	if (rc < 0) {
		sk->node.laddr = old_laddr;
		sk->node.raddr = 0;
		sk->node.rport = 0;
		return rc;
	}
	tcp_trace(st, "inet_hash_connect", &sk->node, TCP_CLOSE, TCP_CLOSE);
	/* 3. ISN and timestamp offset (RFC 6528, RFC 7323 §7.1).  The seed shows the ISN in
	 * tcp_connect(); Linux picks it here, in tcp_v4_connect, and so does ustack. */
	struct tcp_seq_and_ts_off so = secure_tcp_seq_and_ts_off(st, saddr, daddr, sk->node.lport, dport);
	if (!sk->iss_set) /* else above the TIME_WAIT connection's sequence space it replaces */
		sk->iss = so.seq;
	sk->iss_set = false;
	sk->snd_nxt = sk->iss; /* until the SYN goes: Linux's write_seq (tcp_disconnect) */
	sk->ts_off = so.ts_off;
	sk->inet_id = (uint16_t)prng_u32(&st->secrets);
	/* (a socket connecting again after its last connection ended went through
	 * tcp_disconnect, which opened both directions; a shutdown() before any connect stays,
	 * as Linux's sk_shutdown does) */
	/* 4. SYN_SENT, 5–6. send the SYN and arm the retransmit timer — unless
	 * TCP_FASTOPEN_CONNECT defers both to the first write, which brings the data */
	tcp_set_state(st, sk, TCP_SYN_SENT);
	struct tcp_fastopen_request fo;
	if (tcp_fastopen_defer_connect(st, sk, &fo))
		return 0;
	rc = tcp_connect(st, sk);
	if (sk->fastopen_req == &fo)
		sk->fastopen_req = NULL;
	if (rc < 0) {
		tcp_done(st, sk, 0);
		sk->err = 0;
	}
	return rc;
}

void tcp_v4_rcv(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
		const uint8_t *b, size_t len)
{
	/* skb->pkt_type != PACKET_HOST: a segment that came in a link-layer broadcast or
	 * multicast frame, even to one of our addresses, is dropped before it is counted (on
	 * Linux 6.18: IpInDelivers, no TcpInSegs, no answer) — so a reset sent to every station
	 * reaches no connection */
	if (ip->l2_bcast) {
		trace_drop(st, "NOT_SPECIFIED", dev->ifindex);
		return;
	}
	MIB_INC(st, TcpInSegs);
	/* A segment to an IP broadcast address (ip->bcast) goes on like any other: no socket has
	 * that address, a listener on INADDR_ANY drops a SYN (tcp_conn_request), and without a
	 * socket no reset is sent (tcp_v4_send_reset_reason) */
	struct tcp_repr th;
	switch (ip->csum_ok ? tcp_parse_trusted(b, len, &th) : tcp_parse(b, len, ip->saddr, ip->daddr, &th)) {
	case TCP_OK:
		break;
	case TCP_ERR_CSUM:
		MIB_INC(st, TcpInCsumErrors);
		MIB_INC(st, TcpInErrs);
		trace_drop(st, "TCP_CSUM", dev->ifindex);
		return;
	case TCP_ERR_DOFF:
		MIB_INC(st, TcpInErrs);
		trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
		return;
	default:
		trace_drop(st, "PKT_TOO_SMALL", dev->ifindex);
		return;
	}
	struct ehash_node *n = inet_lookup_established(st, ip->daddr, th.dport, ip->saddr, th.sport);
	if (n && n->state == TCP_TIME_WAIT) {
		/* do_time_wait */
		struct inet_timewait_sock *tw = (struct inet_timewait_sock *)n;
		uint32_t isn = 0;
		enum tcp_tw_status status = tcp_timewait_state_process(st, tw, &th, &isn);
		if (status == TCP_TW_SYN) {
			/* a new connection in the old one's place, if someone listens: the entry goes,
			 * the listener takes the SYN with the ISN chosen for it */
			struct sock *lsk = inet_lookup_listener(st, ip->daddr, th.dport, ip->saddr, th.sport, dev->ifindex);
			if (lsk) {
				inet_twsk_deschedule_put(st, tw);
				if (th.flags & TCPHDR_FIN) { /* the listener's TCP_FLAGS drop */
					trace_drop(st, "TCP_FLAGS", dev->ifindex);
					return;
				}
				st->tcp->tw_isn = isn;
				tcp_trace(st, "tcp_rcv_state_process", &lsk->node, TCP_LISTEN, TCP_LISTEN);
				tcp_conn_request(st, lsk, ip, &th);
				st->tcp->tw_isn = 0;
				return;
			}
			status = TCP_TW_ACK;
		}
		if (status == TCP_TW_ACK || status == TCP_TW_ACK_OOW) {
			tcp_v4_timewait_ack(st, tw, status);
		} else if (status == TCP_TW_RST) {
			tcp_v4_send_reset_reason(st, NULL, ip, &th, SK_RST_REASON_TCP_TIMEWAIT_SOCKET);
			inet_twsk_deschedule_put(st, tw);
		}
		return;
	}
	if (n && n->state == TCP_NEW_SYN_RECV) {
		struct request_sock *req = (struct request_sock *)n;
		if (req->listener->node.state == TCP_LISTEN || reqsk_migrate(st, req)) {
			/* tcp_child_process: the new socket takes the rest of the segment — data
			 * or a FIN that came with the handshake's last ACK */
			struct sock *child = tcp_check_req(st, req, ip, &th);
			if (child)
				tcp_child_process(st, child, ip, &th);
			return;
		}
		/* its listener is gone: drop the request and look again (Linux's
		 * inet_csk_reqsk_queue_drop_and_put, then "goto lookup") */
		reqsk_queue_drop(st, req);
		n = NULL;
	}
	if (n) {
		struct sock *sk = (struct sock *)n;
		/* tcp_v4_do_rcv hands an ESTABLISHED socket's segments to tcp_rcv_established, whose
		 * first act is trace_tcp_probe; no other state's (a child completing its handshake
		 * comes through tcp_child_process, in SYN_RECV for Linux: no probe either) */
		if (sk->node.state == TCP_ESTABLISHED)
			trace_tcp_probe(st, sk, &th);
		tcp_rcv_state_process(st, sk, ip, &th);
		return;
	}
	struct sock *lsk = inet_lookup_listener(st, ip->daddr, th.dport, ip->saddr, th.sport, dev->ifindex);
	if (lsk) {
		if (!(th.flags & TCPHDR_SYN)) { /* tcp_v4_cookie_check */
			struct sock *nsk = cookie_v4_check(st, lsk, ip, &th);
			if (!nsk)
				return;
			if (nsk != lsk) {
				tcp_child_process(st, nsk, ip, &th);
				return;
			}
		}
		tcp_trace(st, "tcp_rcv_state_process", &lsk->node, TCP_LISTEN, TCP_LISTEN);
		if (th.flags & TCPHDR_ACK) {
			/* an ACK for no request and no good cookie: RST (a peer with stale
			 * state, a forged or expired cookie) — tcp_rcv_state_process's
			 * TCP_FLAGS, answered by tcp_v4_do_rcv with the listener as the socket */
			tcp_v4_send_reset_reason(st, lsk, ip, &th, SK_RST_REASON_TCP_FLAGS);
			return;
		}
		if ((th.flags & (TCPHDR_RST | TCPHDR_SYN | TCPHDR_FIN)) != TCPHDR_SYN) {
			trace_drop(st, "TCP_FLAGS", dev->ifindex);
			return;
		}
		tcp_conn_request(st, lsk, ip, &th);
		return;
	}
	trace_drop(st, "NO_SOCKET", dev->ifindex);
	tcp_v4_send_reset_reason(st, NULL, ip, &th, SK_RST_REASON_NO_SOCKET);
}

/* What a child inherits from its listener, as sk_clone_lock copies it: socket options, socket
 * flags (SO_REUSEPORT keeps the port shareable, SO_ZEROCOPY), and TCP_CONGESTION if set there —
 * else the child takes today's default. */
static void sk_clone_opts(struct sock *sk, const struct sock *lsk)
{
	sk->reuseaddr = lsk->reuseaddr;
	sk->reuseport = lsk->reuseport; /* sk_clone_lock copies sk_reuseport: the port stays shareable */
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
	sk->keepalive_opts.idle = lsk->keepalive_opts.idle;
	sk->keepalive_opts.intvl = lsk->keepalive_opts.intvl;
	sk->keepalive_opts.cnt = lsk->keepalive_opts.cnt;
	sk->user_timeout_ms = lsk->user_timeout_ms;
	sk->linger = lsk->linger;
	sk->tos = lsk->tos;
	sk->ttl = lsk->ttl;
	sk->pmtudisc = lsk->pmtudisc;
	sk->recverr = lsk->recverr;
	sk->freebind = lsk->freebind;
	sk->transparent = lsk->transparent;
	sk->oobinline = lsk->oobinline;
	sk->broadcast = lsk->broadcast;
	sk->dontroute = lsk->dontroute;
	sk->sodebug = lsk->sodebug;
	/* sk_userlocks, less SOCK_BINDPORT_LOCK: a child keeps an address its listener was
	 * bound to, but not the port — it lets it go when it closes, and a disconnect()ed child
	 * that connects again takes an ephemeral one, as Linux's do */
	sk->bound_addr = lsk->bound_addr;
	sk->bound_port = false;
	sk_ext_clone(sk, lsk); /* SO_MARK, SO_PRIORITY, SO_RCVLOWAT, SO_BINDTODEVICE, SO_TIMESTAMPING */
	if (lsk->ca_setsockopt) { /* TCP_CONGESTION on the listener; else today's default */
		sk->ca_ops = lsk->ca_ops;
		sk->ca_setsockopt = true;
	}
}

/* tcp_v4_syn_recv_sock: the final ACK made it (or a Fast Open SYN's cookie did); build the full
 * socket. */
struct sock *tcp_v4_syn_recv_sock(struct ustack *st, struct request_sock *req,
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
	sk_clone_opts(sk, lsk);
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
	sk->ecn_flags = req->ecn_ok ? TCP_ECN_OK : 0; /* tcp_ecn_openreq_child */
	sk->ts_off = req->ts_off;
	sk->ts_recent = req->tstamp_ok && th->opt.ts_ok ? th->opt.tsval : req->ts_recent;
	sk->ts_recent_stamp_ms = tcp_clock_ms(st);
	sk->advmss = tcp_advmss(&sk->rt);
	if (sk->user_mss && sk->user_mss < sk->advmss)
		sk->advmss = sk->user_mss;
	uint16_t user = sk->user_mss ? sk->user_mss : 65535;
	sk->mss_clamp = req->mss < user ? req->mss : user; /* the peer's, capped by TCP_MAXSEG */
	tcp_sync_mss(st, sk);
	sk->rcv_wnd = req->rcv_wnd;
	sk->cwnd = TCP_INIT_CWND;
	sk->ssthresh = 0x7fffffff;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	/* tcp_synack_rtt_meas: the SYN-ACK's round trip is the first sample, unless it was
	 * resent (Karn) */
	if (req->cookie) { /* no send time was kept: the echoed timestamp, if any (tcp_ack_update_rtt) */
		if (req->tstamp_ok && th->opt.ts_ok && th->opt.tsecr)
			tcp_rtt_estimator(sk, (tcp_clock_ms(st) - (th->opt.tsecr - req->ts_off)) * 1000u);
	} else if (!req->num_retrans) {
		tcp_rtt_estimator(sk, (uint32_t)st->now - req->snt_synack_us);
	}
	MIB_INC(st, TcpPassiveOpens);
	tcp_trace(st, "tcp_v4_syn_recv_sock", &sk->node, TCP_NEW_SYN_RECV, TCP_SYN_RECV);
	/* inet_ehash_nolisten: the child takes the request's place in the established hash,
	 * and shares the listener's port (__inet_inherit_port). */
	inet_ehash_remove(st, &req->node);
	inet_ehash_insert(st, &sk->node);
	sk->hashed = true;
	inet_bind_hash(lsk->tb, sk);
	return sk;
}

/* tcp_v4_reqsk_send_ack: an ACK from a request socket, for out-of-window segments. */
void tcp_v4_reqsk_send_ack(struct ustack *st, struct request_sock *req)
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
	uint32_t field = req->rcv_wnd >> req->rcv_wscale;
	seg.window = (uint16_t)(field < 65535u ? field : 65535u);
	if (req->tstamp_ok) {
		seg.opt.ts_ok = true;
		seg.opt.tsval = tcp_clock_ms(st) + req->ts_off;
		seg.opt.tsecr = req->ts_recent;
	}
	tcp_transmit(st, &seg, &rt);
}

/* tcp_v4_send_reset (RFC 9293 §3.10.7.1): never in answer to a RST; if the offending
 * segment had an ACK, the RST takes its sequence number from it, else it ACKs the segment.
 * trace_tcp_send_reset fires as Linux fires it, just before the reply goes out. */
void tcp_v4_send_reset_reason(struct ustack *st, const struct sock *sk, const struct ipv4_repr *ip,
			      const struct tcp_repr *th, enum sk_rst_reason reason)
{
	if (th->flags & TCPHDR_RST)
		return;
	/* no socket, and the segment was not to one of our addresses (rt_type != RTN_LOCAL): a
	 * broadcast gets no reset (with a listener, the route from a broadcast source fails below) */
	if (!sk && ip->bcast)
		return;
	trace_tcp_send_reset(st, sk, sk ? sk->node.state : 0, ip, th, reason);
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

void tcp_v4_send_reset(struct ustack *st, const struct ipv4_repr *ip, const struct tcp_repr *th)
{
	tcp_v4_send_reset_reason(st, NULL, ip, th, SK_RST_REASON_NOT_SPECIFIED);
}

/* tcp_protocol: what IP hands TCP (Linux's inet_protos[IPPROTO_TCP]) */
static const struct net_protocol tcp_protocol = {
	.handler = tcp_v4_rcv,
	.err_handler = tcp_v4_err,
};

static int tcp_sk_init(struct ustack *st)
{
	if (tcp_tables_init(st) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return inet_add_protocol(st, &tcp_protocol, IPPROTO_TCP);
}

static void tcp_sk_exit(struct ustack *st)
{
	if (!st->tcp)
		return;
	tcp_sockets_destroy(st);
	tcp_tables_destroy(st);
}

/* TCP's part in an instance's life (Linux's tcp_sk_ops) */
const struct pernet_operations tcp_net_ops = {
	.name = "tcp",
	.init = tcp_sk_init,
	.exit = tcp_sk_exit,
};
