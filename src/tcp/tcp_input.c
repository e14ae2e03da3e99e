/*
 * Receiving segments (Linux's tcp_v4_rcv in tcp_ipv4.c and tcp_rcv_state_process,
 * tcp_rcv_synsent_state_process in tcp_input.c).
 *
 * tcp_v4_rcv validates the header, then looks the segment up: first the established hash (a
 * connection, or a request socket waiting for its final ACK), then the listeners; a segment
 * for no socket is answered with a RST (RFC 9293 §3.10.7.1).
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>
#include <ustack/socket.h>

static bool after(uint32_t a, uint32_t b) { return (int32_t)(b - a) < 0; }

static const char *const state_names[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

const char *ustack_tcp_state_name(int state)
{
	return state > 0 && state <= TCP_NEW_SYN_RECV ? state_names[state] : "?";
}

void tcp_trace(struct ustack *st, const char *name, const struct ehash_node *n, int old_state,
	       int new_state)
{
	if (!st->ntrace)
		return;
	struct ustack_trace_event ev = {
		.kind = USTACK_TRACE_STEP, .name = name,
		.laddr.s_addr = htonl(n->laddr), .raddr.s_addr = htonl(n->raddr),
		.lport = n->lport, .rport = n->rport,
		.old_state = old_state, .new_state = new_state,
	};
	trace_emit_event(st, &ev);
}

void tcp_set_state(struct ustack *st, struct sock *sk, int state)
{
	int old = sk->node.state;
	if (old == state)
		return;
	if (state == TCP_ESTABLISHED)
		MIB_INC(st, TcpCurrEstab);
	if (old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT) {
		st->mib[MIB_TcpCurrEstab]--;
		if (state == TCP_CLOSE)
			MIB_INC(st, TcpEstabResets);
	}
	sk->node.state = (uint8_t)state;
	tcp_trace(st, "tcp_set_state", &sk->node, old, state);
}

/* tcp_done: the connection is over; err (if any) is what the application will see. */
void tcp_done(struct ustack *st, struct sock *sk, int err)
{
	if (sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV)
		MIB_INC(st, TcpAttemptFails);
	tcp_set_state(st, sk, TCP_CLOSE);
	timer_cancel(st, &sk->retrans_timer);
	inet_ehash_remove(&sk->node);
	sk->hashed = false;
	if (!sk->bound_port)
		inet_put_port(st, sk);
	if (err)
		sk->err = err;
	sk->shut_rd = sk->shut_wr = true;
	if (sk->fd < 0 && !sk->parent)
		sk_free(st, sk);
	else
		sk_wake(st);
}

/* tcp_sync_mss: the path's MSS, clamped by the peer's, less the timestamp option that every
 * segment will carry. */
void tcp_sync_mss(struct sock *sk)
{
	uint32_t mss = sk->rt.mtu - IPV4_HLEN - TCP_HLEN;
	if (mss > sk->mss_clamp)
		mss = sk->mss_clamp;
	sk->mss_cache = (uint16_t)(mss - (sk->tstamp_ok ? 12u : 0u));
}

/* The peer's SYN (or SYN-ACK): its ISN, and which of the options we offered it offered too. */
static void tcp_negotiate(struct sock *sk, const struct tcp_repr *th)
{
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
	uint16_t peer_mss = th->opt.mss_ok ? th->opt.mss : TCP_MSS_DEFAULT;
	if (peer_mss < sk->mss_clamp)
		sk->mss_clamp = peer_mss;
}

/* tcp_finish_connect: MSS and congestion control (RFC 6928's initial window), ESTABLISHED,
 * and wake the connect()ing thread. */
static void tcp_finish_connect(struct ustack *st, struct sock *sk)
{
	tcp_sync_mss(sk);
	sk->cwnd = TCP_INIT_CWND;
	sk->ssthresh = 0x7fffffff;
	timer_cancel(st, &sk->retrans_timer);
	tcp_set_state(st, sk, TCP_ESTABLISHED);
	tcp_trace(st, "sk_state_change", &sk->node, TCP_ESTABLISHED, TCP_ESTABLISHED);
	sk_wake(st);
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
				timer_arm(st, &sk->retrans_timer, st->now + TCP_TIMEOUT_MIN_MS * 1000u);
			tcp_v4_send_reset(st, ip, th);
			return;
		}
		if (th->flags & TCPHDR_RST) {
			/* tcp_reset: in SYN_SENT the answer is ECONNREFUSED */
			tcp_done(st, sk, ECONNREFUSED);
			return;
		}
		if (!(th->flags & TCPHDR_SYN))
			return;
		/* A good SYN-ACK.  Linux wakes connect() before sending the ACK. */
		tcp_negotiate(sk, th);
		sk->snd_una = th->ack;
		tcp_finish_connect(st, sk);
		tcp_send_ack(st, sk);
		return;
	}
	if (th->flags & TCPHDR_RST)
		return; /* a RST without ACK cannot be ours to honour */
	if (th->flags & TCPHDR_SYN) {
		/* Crossed SYNs: a simultaneous open (RFC 9293 §3.5, figure 8). */
		tcp_negotiate(sk, th);
		tcp_set_state(st, sk, TCP_SYN_RECV);
		tcp_retransmit_syn(st, sk); /* our SYN again, now as a SYN-ACK */
	}
}

/* Segments for a full socket past SYN_SENT.  Only what connection setup needs lives here;
 * data, teardown and RFC 5961's checks arrive with the data-transfer work. */
static void tcp_rcv_state_process(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
				  const struct tcp_repr *th)
{
	if (sk->node.state == TCP_SYN_SENT) {
		tcp_rcv_synsent(st, sk, ip, th);
		return;
	}
	tcp_trace(st, "tcp_rcv_state_process", &sk->node, sk->node.state, sk->node.state);
	if (th->flags & TCPHDR_RST) {
		if (th->seq == sk->rcv_nxt)
			tcp_done(st, sk, sk->node.state == TCP_SYN_RECV ? ECONNREFUSED : ECONNRESET);
		return;
	}
	if (sk->node.state == TCP_SYN_RECV && (th->flags & TCPHDR_ACK)) {
		if (th->ack != sk->snd_nxt) {
			tcp_v4_send_reset(st, ip, th);
			return;
		}
		sk->snd_una = th->ack;
		sk->snd_wnd = (uint32_t)th->window << sk->snd_wscale;
		tcp_finish_connect(st, sk);
	}
}

void tcp_v4_rcv(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
		const uint8_t *b, size_t len)
{
	MIB_INC(st, TcpInSegs);
	if (!netdev_by_local_addr(st, ip->daddr)) {
		trace_drop(st, "TCP_NOT_HOST", dev->ifindex); /* pkt_type != PACKET_HOST */
		return;
	}
	struct tcp_repr th;
	switch (tcp_parse(b, len, ip->saddr, ip->daddr, &th)) {
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
	if (n && n->state == TCP_NEW_SYN_RECV) {
		struct request_sock *req = (struct request_sock *)n;
		if (req->listener->node.state == TCP_LISTEN) {
			tcp_check_req(st, req, ip, &th);
			return;
		}
		/* its listener is gone: drop the request and look again (Linux's
		 * inet_csk_reqsk_queue_drop_and_put, then "goto lookup") */
		reqsk_queue_drop(st, req);
		n = NULL;
	}
	if (n) {
		tcp_rcv_state_process(st, (struct sock *)n, ip, &th);
		return;
	}
	struct sock *lsk = inet_lookup_listener(st, ip->daddr, th.dport);
	if (lsk) {
		tcp_trace(st, "tcp_rcv_state_process", &lsk->node, TCP_LISTEN, TCP_LISTEN);
		if (th.flags & TCPHDR_ACK) {
			/* an ACK for no request: RST (a peer with stale state, or a cookie we
			 * cannot check yet) */
			tcp_v4_send_reset(st, ip, &th);
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
	tcp_v4_send_reset(st, ip, &th);
}
