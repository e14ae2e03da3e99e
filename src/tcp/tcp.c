/*
 * The application's side of a connection (Linux's net/ipv4/tcp.c): tcp_sendmsg, tcp_recvmsg,
 * tcp_close, tcp_shutdown, and the socket calls built on them.
 *
 * Data moves through two rings per connection (tcp_buf.h), sized from SO_SNDBUF/SO_RCVBUF and
 * allocated when data first flows.  The send buffer's limit (snd_limit, Linux's sk_sndbuf) is
 * sized by tcp_sndbuf_expand from the congestion window, up to net.ipv4.tcp_wmem[2], unless
 * SO_SNDBUF fixed it (SOCK_SNDBUF_LOCK); what it is charged is the skbs' truesize
 * (tcp_wmem_queued).  As in Linux, the limit is checked when a write starts a new skb, so the
 * ring may hold up to one skb more than it.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"
#include <ustack/socket.h>

#include "core/slab.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

/*
 * The ring cache.  A connection's first byte each way allocates its ring (192 KB to receive
 * and 16 KB to send at the default buffer sizes), and its end frees them.  At tens of
 * thousands of short connections a second that was, per connection, a malloc above glibc's
 * mmap threshold, page faults on the fresh pages and an munmap.  Like Linux's per-CPU page
 * fragment caches, a few freed rings of the size connections start with wait for the next
 * connection, their pages already faulted in; a ring that grew (autotuning, a writer's doubling)
 * is freed.
 * Under AddressSanitizer the cache is off, so that a use after free of a ring is still caught.
 */
static void ring_cache_drain(struct tcp_ring_cache *c)
{
	while (c->n)
		free(c->ring[--c->n]);
}

/* The cache's size is the one connections ask for first (ring_get), never what a ring grew to:
 * an autotuned 48 MB ring is freed, not kept.  A different first size (the sysctls changed,
 * SO_RCVBUF) becomes the cache's, and the rings of the old one go. */
static int ring_get(struct tcp_ring_cache *c, struct tcp_buf *b, uint32_t size)
{
	if (b->data)
		return 0;
#ifndef SLAB_PLAIN
	if (c->size != size) {
		ring_cache_drain(c);
		c->size = size;
	} else if (c->n) {
		*b = (struct tcp_buf){ .data = c->ring[--c->n], .size = size };
		return 0;
	}
#else
	(void)c;
#endif
	return tcp_buf_reserve(b, size);
}

static void ring_put(struct tcp_ring_cache *c, struct tcp_buf *b)
{
#ifndef SLAB_PLAIN
	if (b->data && c->n < TCP_RING_CACHE && b->size == c->size) {
		c->ring[c->n++] = b->data;
		*b = (struct tcp_buf){ 0 };
		return;
	}
#else
	(void)c;
#endif
	tcp_buf_free(b);
}

void tcp_ring_cache_destroy(struct ustack *st)
{
	ring_cache_drain(&st->tcp->rcv_rings);
	ring_cache_drain(&st->tcp->snd_rings);
}

/* The receive ring, allocated on first use; -1 when memory is short (the segment is dropped
 * and the peer will send it again). */
int tcp_rcv_ring(struct ustack *st, struct sock *sk)
{
	return ring_get(&st->tcp->rcv_rings, &sk->rcvq, sk->rcv_limit + sk->rcv_limit / 2);
}

/* The send ring, allocated on the first write (or Fast Open's data); -1 when memory is short. */
int tcp_snd_ring(struct ustack *st, struct sock *sk)
{
	if (!sk->snd_limit)
		sk->snd_limit = (uint32_t)(sk->sndbuf > 4096 ? sk->sndbuf : 4096);
	return ring_get(&st->tcp->snd_rings, &sk->sndq, sk->snd_limit);
}

int tcp_data_init(struct ustack *st, struct sock *sk)
{
	/* a locked buffer offers half of itself, Linux's tcp_full_space at its default scaling
	 * ratio; an unlocked one grows (tcp_rcv_space_adjust) */
	uint32_t rz = sk->rcvbuf_locked ? (uint32_t)sk->rcvbuf / 2 : (uint32_t)(sk->rcvbuf > 4096 ? sk->rcvbuf : 4096);
	/* The receive ring holds half again what the windows offer: a window that may not
	 * shrink is rounded up to the scale on every ACK (RFC 7323 §2.4, Linux's
	 * tcp_select_window), so the peer may send a little past the buffer — Linux absorbs
	 * that in the slack of its memory accounting, ustack in this margin. */
	/* The rings themselves are allocated when the first byte needs them (tcp_rcv_ring,
	 * tcp_sendmsg): a connection that never carries data in one direction costs nothing
	 * there, as Linux allocates skbs only for data. */
	sk->rcv_limit = rz;
	sk->data_init = true;
	sk->write_seq = sk->snd_nxt;
	sk->snd_sml = sk->snd_una; /* no small segment yet: not even Fast Open's SYN data */
	sk->pushed_seq = sk->snd_nxt;
	sk->rack.lost_edge = sk->snd_una;
	sk->snd_max = sk->snd_nxt;
	sk->high_seq = sk->snd_una; /* no recovery yet: not even for Fast Open's SYN data */
	sk->snd_wl1 = sk->irs;
	sk->snd_wl2 = sk->snd_una;
	sk->max_window = sk->snd_wnd;
	sk->rcv_adv = sk->rcv_nxt + sk->rcv_wnd;
	sk->rcv_ssthresh = sk->rcv_wnd < tcp_window_clamp(sk) ? sk->rcv_wnd : tcp_window_clamp(sk);
	sk->quickack = TCP_QUICKACKS;
	/* tcp_init_buffer_space: the first measurement expects an initial window's worth */
	uint32_t initwin = TCP_INIT_CWND * tcp_advmss_now(sk);
	sk->rcvq_space = sk->rcv_wnd < initwin ? sk->rcv_wnd : initwin;
	sk->rcvq_space_time = (uint32_t)st->now;
	sk->reordering = (uint16_t)st->sysctl.tcp_reordering;
	/* tcp_init_congestion_control: the algorithm is fixed when the connection starts */
	if (!sk->ca_setsockopt)
		sk->ca_ops = tcp_cong_default(st);
	sk->ca_ops->init(st, sk);
	timer_init(&sk->timers.delack, tcp_delack_timer);
	timer_init(&sk->timers.sk, tcp_tw_timer);
	sk->rcv_tstamp = st->now;
	sk->lrcvtime = sk->lsndtime = st->now; /* TCP_INFO's "last data" clocks start here, as Linux's */
	if (!sk->snd_limit)
		sk->snd_limit = (uint32_t)sk->sndbuf;
	tcp_sndbuf_expand(st, sk); /* tcp_init_buffer_space */
	return 0;
}

void tcp_data_free(struct ustack *st, struct sock *sk)
{
	ring_put(&st->tcp->snd_rings, &sk->sndq);
	tcp_wq_free(sk);
	tcp_txlog_free(sk);
	/* (sk->ext outlives the data: the socket's cookie and options stay through TIME_WAIT;
	 * sk_free frees it) */
	ring_put(&st->tcp->rcv_rings, &sk->rcvq);
	tcp_ofo_purge(st, sk);
}

/* tcp_close_state: the state a close or SHUT_WR moves to, and whether a FIN must follow. */
static bool tcp_close_state(struct ustack *st, struct sock *sk)
{
	switch (sk->node.state) {
	case TCP_SYN_RECV:
		/* A simultaneous open not yet complete has no data state to put a FIN after (a Fast
		 * Open child, closed before its final ACK, has): the FIN waits for the peer's ACK,
		 * as RFC 9293 §3.10.4 has it for CLOSE in SYN-RECEIVED ("queue for processing after
		 * entering ESTABLISHED state"); shut_wr remembers it, and tcp_rcv_state_process
		 * sends it once the open completes.  (Linux sends it at once, after its SYN-ACK;
		 * found by fuzz_stack: the FIN went at sequence 0 from an empty send ring.) */
		if (!sk->data_init)
			return false;
		tcp_set_state(st, sk, TCP_FIN_WAIT1);
		return true;
	case TCP_ESTABLISHED:
		tcp_set_state(st, sk, TCP_FIN_WAIT1);
		return true;
	case TCP_CLOSE_WAIT:
		tcp_set_state(st, sk, TCP_LAST_ACK);
		return true;
	default:
		return false;
	}
}

/*
 * RFC 793's ABORT as Linux's tcp_disconnect does it, the part that ends the connection: to
 * TCP_CLOSE, and a RST to a peer that has state to lose — in the states tcp_need_reset names
 * (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1, FIN_WAIT2, SYN_RECV), and in CLOSING or LAST_ACK only
 * while something is unsent ("the last check adjusts for discrepancy of Linux wrt. RFC
 * states": our FIN already went, so has everything before it unless snd_nxt is short of
 * write_seq, which counts the FIN: Linux's snd_nxt, ustack's snd_max, as a timeout moves
 * ustack's snd_nxt back).  SYN_SENT sends nothing: nothing was agreed.  The error
 * the application sees is ECONNRESET wherever a connection or an attempt was cut.  A socket
 * without a descriptor is freed here (tcp_done).
 */
static void tcp_abort_conn(struct ustack *st, struct sock *sk)
{
	int old = sk->node.state;
	int err = 0;
	tcp_set_state(st, sk, TCP_CLOSE); /* first, as Linux: and an abort is no TcpAttemptFails */
	if (old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT || old == TCP_FIN_WAIT1 || old == TCP_FIN_WAIT2 ||
	    old == TCP_SYN_RECV) {
		tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_STATE, TCP_CLOSE);
		err = ECONNRESET;
	} else if ((old == TCP_CLOSING || old == TCP_LAST_ACK) && sk->snd_max != sk->write_seq + sk->fin_queued) {
		tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_DISCONNECT_WITH_DATA, TCP_CLOSE);
		err = ECONNRESET;
	} else if (old == TCP_SYN_SENT) {
		err = ECONNRESET;
	}
	timer_cancel(st, &sk->timers.delack); /* tcp_clear_xmit_timers, with tcp_done's */
	if (sk->fd >= 0 && err)
		sk->err = err;
	tcp_done(st, sk, 0);
}

/* Linux's tp->write_seq, which ustack keeps only while data flows: on a socket that never
 * connected 0, from connect() the ISN, past the SYN (and its data) once it went — snd_nxt
 * says both — and after a disconnect the next ISN it chose. */
static uint32_t tcp_linux_write_seq(const struct sock *sk)
{
	if (sk->data_init)
		return sk->write_seq + sk->fin_queued;
	return sk->iss_set ? sk->iss : sk->snd_nxt;
}

/*
 * What tcp_disconnect resets for the next connection besides the data: Linux's list (the
 * delayed-ACK state, RTT estimates, RTO and backoff, the congestion window and its
 * algorithm's state, the SACK scoreboard, recovery, RACK and the loss probe, SOCK_DONE and
 * urgent data, Fast Open's flags, and TCP_INFO's counts), so that nothing of the old
 * connection steers the new one — a loss probe still marked pending would leave the next
 * SYN's timer doing nothing.  Options set by the application (TCP_NODELAY, keepalive
 * times, the buffers, TCP_MAXSEG) stay, as in Linux; tcp_connect sets up the rest.
 */
static void tcp_reset_conn_state(struct sock *sk)
{
	sk->retrans_stamp = sk->rto_deadline = 0;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	sk->retransmits = sk->backoff = sk->total_rto = sk->probes_out = 0;
	sk->in_cwr = false;
	sk->irs = sk->snd_una = sk->snd_wnd = sk->rcv_nxt = sk->rcv_wnd = 0;
	sk->ts_recent = sk->ts_recent_stamp_ms = 0;
	sk->snd_wscale = sk->rcv_wscale = 0;
	sk->wscale_ok = sk->sack_ok = sk->tstamp_ok = false;
	sk->syn_fastopen = sk->syn_fastopen_exp = sk->syn_fastopen_ch = 0;
	sk->syn_data = sk->syn_data_acked = sk->fastopen_client_fail = 0;
	sk->syn_fastopen_child = sk->ofo_lone_fin = 0;
	sk->ato_ms = 0;
	sk->write_seq = sk->snd_max = sk->snd_wl1 = sk->snd_wl2 = 0;
	sk->wq_start = sk->pushed_seq = sk->snd_sml = sk->last_seg_seq = 0;
	sk->fin_queued = sk->more = false;
	sk->urg_mode = false;
	if (sk->ext) {
		sk->ext->snd_up = sk->ext->urg_seq = 0;
		sk->ext->urg_data = 0;
	}
	sk->rcvq_space_seq = sk->rcvq_space_time = 0;
	sk->rcv_tstamp = 0;
	memset(sk->rx_sack, 0, sizeof(sk->rx_sack));
	sk->rcvq_space = sk->rcv_rtt_us = 0;
	sk->rcv_adv = sk->rcv_ssthresh = sk->quickack = sk->rcv_unacked = 0;
	sk->last_oow_ack_ms = 0;
	sk->rx_nsack = 0;
	sk->fin_rcvd = sk->oow_ack_sent = sk->ack_now = false;
	sk->ecn_flags = 0;
	sk->pingpong = 0;
	/* the recovery group, rack .. tlp_retrans, is all state (reordering is read from its
	 * sysctl when the next connection starts) */
	memset(&sk->rack, 0, offsetof(struct sock, tlp_retrans) + sizeof(sk->tlp_retrans) - offsetof(struct sock, rack));
	memset(&sk->cubic, 0, sizeof(sk->cubic));
	sk->chrono_type = 0;
	sk->cwnd_limited = sk->is_cwnd_limited = false;
	sk->probe_stamp = 0;
	sk->srtt_us = sk->rttvar_us = sk->rtt_min_us = 0;
	sk->cwnd = TCP_INIT_CWND;
	sk->ssthresh = 0x7fffffff; /* TCP_INFINITE_SSTHRESH */
	sk->cwnd_cnt = sk->max_packets_out = sk->cwnd_usage_seq = 0;
	sk->chrono_start_ms = 0;
	memset(sk->chrono_stat, 0, sizeof(sk->chrono_stat));
	sk->dsack_len = 0;
	/* TCP_INFO's accounting, bytes_acked to the end of the socket */
	memset(&sk->bytes_acked, 0, sizeof(*sk) - offsetof(struct sock, bytes_acked));
}

/*
 * tcp_disconnect: connect() with AF_UNSPEC, shutdown() of a listener or of a connect in
 * progress, and __inet_stream_connect's error path after a connect failed.  The connection is
 * aborted (tcp_abort_conn; a listener stops, resetting what nobody accepted), its data and
 * timers go, and the socket is as it was before connect() — unconnected, both directions
 * open, its local address forgotten unless bind() chose it (inet_bhash2_reset_saddr); the
 * port is kept if bind() chose it, else let go (tcp_set_state), though getsockname() still
 * names it, as Linux's inet_sport does.  Two things survive, as in Linux: the error
 * (ECONNRESET for a cut connection or attempt, for SO_ERROR or the next call), and the
 * sequence space: the next connect() starts at write_seq + max_window + 2 instead of a fresh
 * ISN (tcp_v4_connect draws one only while write_seq is 0), so a socket never connected
 * sends its next SYN with sequence number 2 — Linux 6.18's, on this machine's wire.
 */
int tcp_disconnect(struct ustack *st, struct sock *sk)
{
	uint32_t seq = tcp_linux_write_seq(sk) + sk->max_window + 2;
	if (sk->node.state == TCP_LISTEN)
		inet_csk_listen_stop(st, sk);
	else if (sk->node.state != TCP_CLOSE)
		tcp_abort_conn(st, sk);
	timer_cancel(st, &sk->timers.retransmit);
	timer_cancel(st, &sk->timers.delack);
	timer_cancel(st, &sk->timers.sk); /* keepalive: tcp_data_init sets it up again */
	tcp_fastopen_active_disable_ofo_check(st, sk);
	tcp_data_free(st, sk);
	sk->data_init = false;
	tcp_reset_conn_state(sk);
	sk->node.raddr = 0;
	sk->node.rport = 0;
	if (!sk->bound_addr)
		sk->node.laddr = 0;
	sk->shut_rd = sk->shut_wr = false;
	sk->iss = seq ? seq : 1;
	sk->iss_set = true;
	sk->fastopen_req = NULL;
	sk->defer_connect = 0;
	sk_wake_sk(st, sk); /* sk_error_report */
	return 0;
}

/* tcp_close: the application lets go.  Unread data means the peer's bytes will never be
 * read: reset (RFC 2525 §2.17, TcpExtTCPAbortOnClose).  SO_LINGER {1, 0} aborts
 * (tcp_disconnect's first part).  Otherwise a FIN, and the orphan lives on until the
 * handshake of the close completes. */
int tcp_close(struct ustack *st, struct sock *sk)
{
	sk->shut_rd = sk->shut_wr = true;
	if (sk->rcvq.len || sk->ofo_bytes) {
		MIB_INC(st, TcpExtTCPAbortOnClose);
		/* __tcp_close drops the unread data first (so the RST's window is an empty
		 * buffer's), moves to TCP_CLOSE, then resets: TCP_ABORT_ON_CLOSE */
		ring_put(&st->tcp->rcv_rings, &sk->rcvq);
		tcp_ofo_purge(st, sk);
		tcp_send_active_reset_reason(st, sk, SK_RST_REASON_TCP_ABORT_ON_CLOSE, TCP_CLOSE);
		tcp_done(st, sk, 0);
		return 1;
	}
	if (sk->linger == 0) {
		MIB_INC(st, TcpExtTCPAbortOnData);
		tcp_abort_conn(st, sk);
		return 1;
	}
	if (tcp_close_state(st, sk))
		tcp_send_fin(st, sk);
	/* already in FIN_WAIT2 (a shutdown(SHUT_WR) was acknowledged): the orphan waits for the
	 * peer's FIN as a timewait entry; after a lingering close(), the caller sees to it */
	if (sk->node.state == TCP_FIN_WAIT2 && sk->linger <= 0)
		return tcp_fin_wait2_orphan(st, sk) ? 1 : 0;
	return 0;
}

void tcp_shutdown_wr(struct ustack *st, struct sock *sk)
{
	if (tcp_close_state(st, sk))
		tcp_send_fin(st, sk);
}

static bool can_send(const struct sock *sk)
{
	return sk->node.state == TCP_ESTABLISHED || sk->node.state == TCP_CLOSE_WAIT ||
	       tcp_passive_fastopen(sk);
}

/* tcp_push: the end of a write marks its last skb PSH unless MSG_MORE says more follows (or
 * forced_push says the peer waited long enough), then sends what may go — holding a partial
 * tail back if MSG_MORE corks it. */
static void tcp_push(struct ustack *st, struct sock *sk, int flags)
{
	if (!(flags & MSG_MORE) || tcp_forced_push(sk))
		tcp_mark_push(sk);
	if (flags & MSG_OOB)
		tcp_mark_urg(sk);
	sk->more = flags & MSG_MORE;
	tcp_write_xmit(st, sk);
	/* the cork was for this push (TCP_NAGLE_CORK as its nonagle argument): an ACK later
	 * pushes with the socket's own Nagle setting and lets the tail go */
	sk->more = false;
}

/*
 * tcp_sendmsg_locked: copy into the send ring skb by skb (tcp_write_queue.c).  Data joins the
 * last skb while its unsent part is below the size goal; a new skb needs the stream to have
 * memory free (TCP_NOTSENT_LOWAT is checked here, per skb, as Linux does).  A full skb goes
 * at once — with PSH if forced_push — and the rest goes with tcp_push at the end of the write,
 * or before the writer sleeps for space.
 */
/* A zerocopy write's place in its fragments: fragment i, off bytes into it. */
struct zc_cursor {
	uint32_t i, off;
};

/* The bytes the next k fragments hold from the cursor (the current one's rest counts as one). */
static uint32_t zc_frag_room(const struct tcp_zc_frags *zf, struct zc_cursor c, uint32_t k)
{
	uint64_t bytes = 0;
	for (uint32_t i = c.i; i < zf->n && k; i++, k--)
		bytes += zf->len[i] - (i == c.i ? c.off : 0);
	return bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
}

/* Moves the cursor n bytes on; returns the fragments those bytes touched. */
static uint32_t zc_frag_advance(const struct tcp_zc_frags *zf, struct zc_cursor *c, uint32_t n)
{
	uint32_t touched = 0;
	while (n && c->i < zf->n) {
		uint32_t left = zf->len[c->i] - c->off, k = n < left ? n : left;
		touched++;
		n -= k;
		c->off += k;
		if (c->off == zf->len[c->i]) {
			c->i++;
			c->off = 0;
		}
	}
	return touched;
}

static ssize_t tcp_sendmsg_timeo(struct ustack *st, struct sock *sk, int fd, const uint8_t *buf, size_t len,
				 int flags, uint32_t tsflags, const struct tcp_zc_frags *zf, const struct sk_timeo *to)
{
	bool nonblock = sk->nonblock || (flags & MSG_DONTWAIT) || !sk->sndtimeo;
	size_t copied = 0;
	struct zc_cursor zcur = { 0, 0 };
	bool zc_own_tail = false; /* the tail skb is this zerocopy write's */
	for (;;) {
		if (sk->err) {
			int e = sk->err;
			sk->err = 0;
			return copied ? (ssize_t)copied : -e;
		}
		if ((sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV) &&
		    !tcp_passive_fastopen(sk)) {
			/* sk_stream_wait_connect (a Fast Open child may send at once) */
			if (nonblock)
				return copied ? (ssize_t)copied : -EAGAIN;
		} else if (sk->shut_wr || !can_send(sk)) {
			return copied ? (ssize_t)copied : -EPIPE;
		} else {
			if (copied == len) {
				if (copied) {
					if (flags & MSG_EOR)
						tcp_wq_mark_eor(sk);
					tcp_tx_timestamp(sk, tsflags); /* out: before the push */
					tcp_push(st, sk, flags);
				}
				return (ssize_t)copied;
			}
			uint32_t mss = tcp_current_mss(sk); /* tcp_send_mss */
			if (tcp_snd_ring(st, sk) < 0)
				return copied ? (ssize_t)copied : -ENOMEM;
			/* tcp_xmit_size_goal(sk, mss, !(flags & MSG_OOB)): urgent data goes in MSS skbs */
			uint32_t size_goal = (flags & MSG_OOB) ? mss : tcp_size_goal(sk, mss);
			uint32_t room = tcp_wq_tail_room(sk, size_goal);
			if (zf && room && !zc_own_tail)
				room = 0; /* another write's skb: -EEXIST, a fresh one */
			if (zf && room && tcp_wq_tail_nfrags(sk) >= TCP_MAX_SKB_FRAGS) {
				tcp_mark_push(sk); /* -EMSGSIZE: the full skb is pushed, a fresh one */
				room = 0;
			}
			bool new_skb = !room;
			/* sk_stream_memory_free, for a new skb only: the skbs' truesize */
			if (new_skb)
				room = tcp_wmem_queued(sk) < sk->snd_limit &&
				       tcp_stream_memory_free(sk, st->sysctl.tcp_notsent_lowat, 0) ? size_goal : 0;
			if (zf && room) { /* at most MAX_SKB_FRAGS fragments an skb (skb_zerocopy_iter_stream) */
				uint32_t have = new_skb ? 0 : tcp_wq_tail_nfrags(sk);
				uint32_t fr = zc_frag_room(zf, zcur, TCP_MAX_SKB_FRAGS - have);
				if (room > fr)
					room = fr;
			}
			size_t want = len - copied < room ? len - copied : room;
			if (want > tcp_buf_space(&sk->sndq)) {
				/* an skb may take the ring past the limit: grow it by doubling, so
				 * that a steady writer does not copy the ring again and again */
				uint32_t need = sk->sndq.len + (uint32_t)want;
				uint32_t size = sk->sndq.size * 2 > need ? sk->sndq.size * 2 : need;
				if (tcp_buf_reserve(&sk->sndq, size) < 0)
					want = tcp_buf_space(&sk->sndq);
			}
			uint32_t n = tcp_buf_push(&sk->sndq, buf + copied, (uint32_t)want);
			if (n) {
				if (new_skb) { /* tcp_skb_entail */
					tcp_slow_start_after_idle_check(st, sk);
					tcp_chrono_start(st, sk, TCP_CHRONO_BUSY);
				}
				sk->write_seq += n;
				tcp_wq_add(sk, n, new_skb, copied == 0);
				if (zf) {
					tcp_wq_add_frags(sk, zc_frag_advance(zf, &zcur, n));
					zc_own_tail = true;
				}
				copied += n;
				/* the write's last skb is never sent here, full or not (goto out): the
				 * push at the end marks it and sends it */
				if (copied == len || tcp_wq_tail_room(sk, size_goal) || (flags & MSG_OOB))
					continue; /* the skb is not full yet; urgent data waits for tcp_push */
				if (tcp_forced_push(sk))
					tcp_mark_push(sk);
				sk->more = false;
				tcp_write_xmit(st, sk); /* tcp_push_one / __tcp_push_pending_frames */
				continue;
			}
			/* wait_for_space: what was written so far goes, marked PSH */
			if (copied)
				tcp_push(st, sk, flags & ~MSG_MORE);
			if (tcp_wmem_queued(sk) >= sk->snd_limit)
				tcp_chrono_start(st, sk, TCP_CHRONO_SNDBUF_LIMITED);
			if (nonblock)
				return copied ? (ssize_t)copied : -EAGAIN;
		}
		sk_hold(sk);
		sk_wait_event(st);
		if (sk_put(st, sk) || sk->fd != fd)
			return -EBADF; /* closed by another thread meanwhile */
		if (to->expired) /* SO_SNDTIMEO: sk_stream_wait_memory's end */
			return copied ? (ssize_t)copied : -EAGAIN;
	}
}

ssize_t tcp_sendmsg(struct ustack *st, struct sock *sk, int fd, const uint8_t *buf, size_t len, int flags,
		    uint32_t tsflags, const struct tcp_zc_frags *zf)
{
	struct sk_timeo to;
	sk_timeo_start(st, &to, sk->sndtimeo);
	ssize_t rc = tcp_sendmsg_timeo(st, sk, fd, buf, len, flags, tsflags, zf, &to);
	/* a write cut short (no room, an error, a timeout) marks what it copied too, at out: */
	if (rc > 0 && (size_t)rc < len) /* (the socket is alive: a close meanwhile is EBADF) */
		tcp_tx_timestamp(sk, tsflags);
	sk_timeo_stop(st, &to);
	return rc;
}

/* tcp_cleanup_rbuf: after the application read, tell the peer if the window it may use has
 * at least doubled (Linux's rule: an update that changes little is an ACK the sender would
 * count as a duplicate). */
static void tcp_cleanup_rbuf(struct ustack *st, struct sock *sk)
{
	if (sk->node.state != TCP_ESTABLISHED && sk->node.state != TCP_FIN_WAIT1 &&
	    sk->node.state != TCP_FIN_WAIT2)
		return;
	uint32_t now = (int32_t)(sk->rcv_adv - sk->rcv_nxt) > 0 ? sk->rcv_adv - sk->rcv_nxt : 0;
	uint32_t limit = sk->rcv_limit < (65535u << sk->rcv_wscale) ? sk->rcv_limit : 65535u << sk->rcv_wscale;
	if (2 * now <= limit) {
		uint32_t win = __tcp_select_window(sk);
		if (win && win >= 2 * now)
			tcp_send_ack(st, sk);
	}
}

/*
 * tcp_rcv_space_adjust — receive-buffer autotuning ("dynamic right-sizing"): once per receiver
 * RTT, if the application read more than in the RTT before, the buffer grows to twice what it
 * read plus 16 segments (more while the sender is still speeding up), up to tcp_rmem[2],
 * unless SO_RCVBUF fixed it or net.ipv4.tcp_moderate_rcvbuf is 0.  The ring grows once per
 * step (a copy, not per packet); the window follows as in-order data raises rcv_ssthresh.
 */
static void tcp_rcv_space_adjust(struct ustack *st, struct sock *sk)
{
	trace_tcp_rcv_space_adjust(st, sk); /* first, on every call, as Linux's */
	uint32_t rtt = sk->rcv_rtt_us ? sk->rcv_rtt_us : sk->srtt_us;
	if (!rtt || (uint32_t)st->now - sk->rcvq_space_time < rtt)
		return;
	uint32_t copied = (uint32_t)sk->bytes_read - sk->rcvq_space_seq;
	if (copied > sk->rcvq_space) {
		uint32_t mss = tcp_advmss_now(sk);
		uint64_t rcvwin = ((uint64_t)copied << 1) + 16u * mss;
		if (sk->rcvq_space)
			rcvwin += ((rcvwin * (copied - sk->rcvq_space)) / sk->rcvq_space) << 1;
		if (st->sysctl.tcp_moderate_rcvbuf && !sk->rcvbuf_locked) {
			uint64_t max = (uint64_t)st->sysctl.tcp_rmem[2];
			uint64_t want = rcvwin < max ? rcvwin : max;
			/* the ring keeps the out-of-order data at its place past the in-order bytes */
			if (want > sk->rcv_limit &&
			    tcp_buf_reserve_keep(&sk->rcvq, (uint32_t)(want + want / 2), sk->rcvq.len + tcp_ofo_span(sk)) == 0) {
				sk->rcv_limit = (uint32_t)want;
				sk->rcvbuf = (int)want;
			}
		}
		sk->rcvq_space = copied;
	}
	sk->rcvq_space_seq = (uint32_t)sk->bytes_read;
	sk->rcvq_space_time = (uint32_t)st->now;
}

/*
 * tcp_sndbuf_expand: a send buffer SO_SNDBUF did not fix holds two congestion windows of
 * worst-case skbs (one per segment, the head a power of two: MSS + MAX_TCP_HEADER + the shared
 * info, plus struct sk_buff) — so CUBIC's recovery and a slow application still find room —
 * up to tcp_wmem[2].  At the start of the connection (tcp_init_buffer_space) and whenever a
 * writer found it full and the window is not (tcp_new_space, tcp_should_expand_sndbuf).
 */
void tcp_sndbuf_expand(struct ustack *st, struct sock *sk)
{
	if (sk->sndbuf_locked)
		return;
	uint32_t mss = sk->mss_clamp > sk->mss_cache && sk->mss_clamp != 65535 ? sk->mss_clamp : sk->mss_cache;
	uint32_t per_mss = mss + 320u /* MAX_TCP_HEADER */ + 320u /* skb_shared_info */;
	uint32_t p2 = 1;
	while (p2 < per_mss)
		p2 <<= 1;
	per_mss = p2 + 256u; /* struct sk_buff */
	uint32_t nr = sk->cwnd > TCP_INIT_CWND ? sk->cwnd : TCP_INIT_CWND;
	if (nr < (uint32_t)sk->reordering + 1u)
		nr = sk->reordering + 1u;
	uint64_t mem = 2ull * nr * per_mss;
	if (mem > (uint64_t)st->sysctl.tcp_wmem[2])
		mem = (uint64_t)st->sysctl.tcp_wmem[2];
	if (mem > (uint64_t)sk->sndbuf) {
		sk->sndbuf = (int)mem;
		sk->snd_limit = (uint32_t)mem;
	}
}

/* tcp_grow_window: data that arrived (in order or not) earns the window room for twice
 * itself, at least two segments, up to the clamp and what the buffer has free. */
void tcp_grow_window(struct sock *sk, uint32_t len)
{
	uint32_t clamp = tcp_window_clamp(sk) < sk->rcv_limit ? tcp_window_clamp(sk) : sk->rcv_limit;
	if (sk->rcv_ssthresh >= clamp || sk->rcv_ssthresh >= tcp_rcv_space(sk))
		return;
	uint32_t incr = 2 * tcp_advmss_now(sk) > 2 * len ? 2 * tcp_advmss_now(sk) : 2 * len;
	uint32_t room = clamp - sk->rcv_ssthresh;
	sk->rcv_ssthresh += incr < room ? incr : room;
}

/*
 * tcp_rcvbuf_grow, as Linux 6.16+ calls it from tcp_data_queue_ofo: out-of-order data means the
 * sender is a window ahead of the reader, so an accepted socket's buffer (unless SO_RCVBUF
 * locked it or tcp_moderate_rcvbuf is off) grows to twice what the reader last took in an RTT
 * plus the span the out-of-order data covers, up to tcp_rmem[2] — at once, not a round trip
 * later when the hole is filled.
 */
void tcp_rcvbuf_grow_ofo(struct ustack *st, struct sock *sk, uint32_t ofo_span)
{
	if (sk->fd < 0 || sk->rcvbuf_locked || !st->sysctl.tcp_moderate_rcvbuf)
		return;
	uint64_t max = (uint64_t)st->sysctl.tcp_rmem[2];
	uint64_t rcvwin = 2ull * sk->rcvq_space + ofo_span;
	/* sk_rcvbuf is memory: tcp_space_from_win at the default scaling ratio, twice the window */
	uint64_t rcvbuf = 2 * rcvwin < max ? 2 * rcvwin : max;
	if (rcvbuf > (uint64_t)sk->rcvbuf)
		sk->rcvbuf = (int)rcvbuf;
	/* the window space ustack counts in bytes follows if the window needs more */
	uint64_t want = rcvwin < max ? rcvwin : max;
	if (want > sk->rcv_limit &&
	    tcp_buf_reserve_keep(&sk->rcvq, (uint32_t)(want + want / 2), sk->rcvq.len + tcp_ofo_span(sk)) == 0)
		sk->rcv_limit = (uint32_t)want;
}

/* tcp_rcv_rtt_measure_ts: a data segment echoing one of our timestamps measures the RTT as
 * the receiver sees it; Linux keeps the smallest recent sample, smoothed. */
void tcp_rcv_rtt_sample(struct ustack *st, struct sock *sk, uint32_t tsecr)
{
	uint32_t sample = (tcp_clock_ms(st) - (tsecr - sk->ts_off)) * 1000u;
	if (!sample)
		sample = 1000u; /* the clock has 1 ms resolution */
	if (!sk->rcv_rtt_us || sample < sk->rcv_rtt_us)
		sk->rcv_rtt_us = sample;
	else
		sk->rcv_rtt_us = sk->rcv_rtt_us - sk->rcv_rtt_us / 8 + sample / 8;
}

/*
 * tcp_set_rcvlowat: SO_RCVLOWAT for TCP.  At most half the buffer may be asked for — half of a
 * locked SO_RCVBUF, else half of tcp_rmem[2] — and 0 means 1.  Without SO_RCVBUF the receive
 * buffer grows to hold what the reader waits for (tcp_space_from_win: twice the window, at
 * Linux's default scaling ratio), so the sender is not stalled short of the mark.
 */
void tcp_set_rcvlowat(struct ustack *st, struct sock *sk, int val)
{
	int cap = sk->rcvbuf_locked ? sk->rcvbuf >> 1 : st->sysctl.tcp_rmem[2] >> 1;
	if (val > cap)
		val = cap;
	if (sk_ext(sk))
		sk->ext->rcvlowat = val ? val : 1;
	sk_wake_sk(st, sk); /* tcp_data_ready: enough may be there already */
	if (sk->rcvbuf_locked)
		return;
	uint64_t space = 2ull * (uint64_t)val;
	if (space > (uint64_t)sk->rcvbuf) {
		sk->rcvbuf = (int)(space > INT32_MAX ? INT32_MAX : space);
		/* a connection's ring follows at once; one not started takes rcvbuf at tcp_data_init */
		if (sk->data_init && (uint32_t)sk->rcvbuf > sk->rcv_limit &&
		    (!sk->rcvq.data || tcp_buf_reserve_keep(&sk->rcvq, (uint32_t)sk->rcvbuf + (uint32_t)sk->rcvbuf / 2,
							    sk->rcvq.len + tcp_ofo_span(sk)) == 0))
			sk->rcv_limit = (uint32_t)sk->rcvbuf;
	}
}

/* tcp_epollin_ready: readable once rcvlowat bytes are in order — or sooner if the window we
 * offer has closed to less than a segment, when waiting for more would wait for ever. */
bool tcp_epollin_ready(const struct sock *sk, int target)
{
	uint32_t avail = sk->rcvq.len;
	if (!avail)
		return false;
	uint32_t wnd = (int32_t)(sk->rcv_adv - sk->rcv_nxt) > 0 ? sk->rcv_adv - sk->rcv_nxt : 0;
	return avail >= (uint32_t)target || wnd <= sk->mss_cache;
}

/*
 * tcp_recvmsg: copy in-order bytes until the target — len with MSG_WAITALL, else
 * min(SO_RCVLOWAT, len) (sock_rcvlowat) — is reached, waiting while a blocking reader is short
 * of it; a non-blocking one, an error, the end of the stream or a timeout return what was
 * copied.
 */
static ssize_t tcp_recvmsg_timeo(struct ustack *st, struct sock *sk, int fd, uint8_t *buf, size_t len, int flags,
				 const struct sk_timeo *to)
{
	bool nonblock = sk->nonblock || (flags & MSG_DONTWAIT) || !sk->rcvtimeo;
	size_t copied = 0;
	size_t lowat = (size_t)sk_rcvlowat(sk);
	size_t target = (flags & MSG_WAITALL) ? len : lowat < len ? lowat : len;
	if (!target)
		target = 1;
	if (sk->node.state == TCP_LISTEN)
		return -ENOTCONN;
	if (!len)
		return 0; /* tcp_recvmsg_locked's loop runs while len > 0 */
	for (;;) {
		if (copied && tcp_urg_at_mark(sk))
			return (ssize_t)copied; /* a read never crosses the urgent mark */
		if (sk->rcvq.len) {
			/* the urgent byte, unless inline, is stepped over — read with MSG_OOB or not */
			bool skip;
			uint32_t off = 0, avail = tcp_urg_read_limit(sk, 0, sk->rcvq.len, &skip);
			if (skip && !(flags & MSG_PEEK)) {
				tcp_buf_consume(&sk->rcvq, 1);
				sk->bytes_read++;
				tcp_urg_consumed(sk);
				continue;
			}
			if (skip) { /* a peek steps over it in its own offset */
				off = 1;
				avail = tcp_urg_read_limit(sk, 1, sk->rcvq.len - 1, &skip);
				if (!avail)
					return copied ? (ssize_t)copied : -EAGAIN;
			}
			uint32_t n = (uint32_t)(len - copied < avail ? len - copied : avail);
			if (!n)
				return (ssize_t)copied; /* nothing can move: never spin */
			tcp_buf_peek(&sk->rcvq, off, buf + copied, n);
			if (!(flags & MSG_PEEK)) {
				tcp_buf_consume(&sk->rcvq, n);
				tcp_urg_consumed(sk);
				/* an empty ring with nothing out of order starts again at its front, so a
				 * reader that keeps up touches only the first pages of a large ring */
				if (!sk->rcvq.len && !sk->ofo)
					sk->rcvq.head = 0;
				sk->bytes_read += n;
				tcp_rcv_space_adjust(st, sk);
				tcp_cleanup_rbuf(st, sk);
			}
			copied += n;
			if (copied >= target || (flags & MSG_PEEK))
				return (ssize_t)copied;
			continue;
		}
		if (sk->err) {
			int e = sk->err;
			sk->err = 0;
			return copied ? (ssize_t)copied : -e;
		}
		if (sk->fin_rcvd || sk->shut_rd)
			return (ssize_t)copied; /* end of stream */
		if (sk->node.state == TCP_CLOSE)
			return copied ? (ssize_t)copied : -ENOTCONN; /* never connected */
		if (nonblock)
			return copied ? (ssize_t)copied : -EAGAIN;
		sk_hold(sk);
		sk_wait_event(st);
		if (sk_put(st, sk) || sk->fd != fd)
			return copied ? (ssize_t)copied : -EBADF;
		if (to->expired && !sk->rcvq.len) /* SO_RCVTIMEO: sock_rcvtimeo's end */
			return copied ? (ssize_t)copied : -EAGAIN;
	}
}

ssize_t tcp_recvmsg(struct ustack *st, struct sock *sk, int fd, uint8_t *buf, size_t len, int flags)
{
	struct sk_timeo to;
	sk_timeo_start(st, &to, sk->rcvtimeo);
	ssize_t rc = tcp_recvmsg_timeo(st, sk, fd, buf, len, flags, &to);
	sk_timeo_stop(st, &to);
	return rc;
}

/* TCP_INFO's view of what is in flight, in segments: unacknowledged, SACKed, lost and
 * retransmitted, and the congestion-avoidance state they put the sender in (icsk_ca_state). */
static void tcp_info_flight(const struct sock *sk, struct ustack_tcp_info *ti)
{
	uint32_t mss = tcp_mss_now(sk);
	ti->tcpi_unacked = (sk->snd_max - sk->snd_una + mss - 1) / mss;
	ti->tcpi_sacked = tcp_sacked_segs(sk);
	if (sk->in_recovery) {
		ti->tcpi_ca_state = TCP_CA_Recovery;
		ti->tcpi_lost = (tcp_sack_lost_total(sk) + mss - 1) / mss;
	} else if (sk->retransmits && sk->data_init) {
		/* after an RTO, whatever the peer has not SACKed counts as lost */
		ti->tcpi_ca_state = TCP_CA_Loss;
		ti->tcpi_lost = ti->tcpi_unacked > ti->tcpi_sacked ? ti->tcpi_unacked - ti->tcpi_sacked : 0;
	} else if (sk->in_cwr) {
		ti->tcpi_ca_state = TCP_CA_CWR;
	} else if (sk->dupacks || sk->nsacked) {
		ti->tcpi_ca_state = TCP_CA_Disorder;
	}
	if ((sk->in_recovery && sk->sack_ok) || (!sk->retransmits && after(sk->high_rxt, sk->snd_una) &&
						  !after(sk->high_rxt, sk->snd_max)))
		ti->tcpi_retrans = (sk->high_rxt - sk->snd_una + mss - 1) / mss;
	else if (sk->retransmits)
		ti->tcpi_retrans = (sk->snd_nxt - sk->snd_una + mss - 1) / mss;
}

/*
 * TCP_INFO of a connect in progress, as Linux shows it (ss -ti state syn-sent): nothing is
 * negotiated yet — rx_opt's tstamp_ok, sack_ok and wscale_ok are set from the SYN-ACK, so no
 * options and no scales, though ECN is (tcp_ecn_send_syn sets TCP_ECN_OK as the SYN goes).
 * The SYN is one packet out (packets_out; with a Fast Open SYN's data, two skbs); after an
 * RTO the retransmit timer has entered Loss (tcp_enter_loss) with the SYN lost and resent.
 * The MSS is tcp_connect_init's tcp_sync_mss against rx_opt.mss_clamp, which tcp_v4_connect
 * set to TCP_MSS_DEFAULT (or TCP_MAXSEG's), less the timestamp option the SYN offers; the
 * receive MSS is tcp_initialize_rcv_mss's, taken while rcv_wnd was still 0: TCP_MIN_MSS.
 * The initial window is tcp_init_sock's; rcv_space is set only once established, and
 * rcv_ssthresh is the window the SYN offers.
 */
static void tcp_info_syn_sent(const struct ustack *st, const struct sock *sk, struct ustack_tcp_info *ti)
{
	ti->tcpi_options &= TCPI_OPT_ECN | TCPI_OPT_ECN_SEEN;
	ti->tcpi_snd_wscale = ti->tcpi_rcv_wscale = 0;
	ti->tcpi_unacked = 1 + (sk->syn_data ? 1u : 0u);
	ti->tcpi_sacked = 0;
	ti->tcpi_ca_state = sk->retransmits ? TCP_CA_Loss : TCP_CA_Open;
	ti->tcpi_lost = ti->tcpi_retrans = sk->retransmits ? 1 : 0;
	uint32_t mss = sk->rt.mtu > IPV4_HLEN + TCP_HLEN ? sk->rt.mtu - IPV4_HLEN - TCP_HLEN : 0;
	uint32_t clamp = sk->user_mss ? sk->user_mss : TCP_MSS_DEFAULT;
	if (mss > clamp)
		mss = clamp;
	if (mss < (uint32_t)st->sysctl.tcp_min_snd_mss)
		mss = (uint32_t)st->sysctl.tcp_min_snd_mss;
	if (st->sysctl.tcp_timestamps)
		mss -= TCPOLEN_TSTAMP_ALIGNED;
	ti->tcpi_snd_mss = mss;
	ti->tcpi_rcv_mss = TCP_MIN_MSS;
	ti->tcpi_snd_cwnd = TCP_INIT_CWND;
	ti->tcpi_snd_ssthresh = TCP_INFINITE_SSTHRESH;
	ti->tcpi_rcv_space = 0;
	ti->tcpi_rcv_ssthresh = sk->rcv_wnd;
}

/* tcp_get_info: Linux's struct tcp_info, as far as ustack keeps its fields (getsockopt
 * TCP_INFO; the layout is Linux 6.18's, in include/ustack/socket.h). */
void tcp_get_info(struct ustack *st, const struct sock *sk, struct ustack_tcp_info *out)
{
	struct ustack_tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	ti.tcpi_state = sk->node.state;
	if (sk->node.state == TCP_LISTEN) {
		/* as Linux: for a listener, the accept queue and its limit */
		ti.tcpi_unacked = (uint32_t)sk->ack_backlog;
		ti.tcpi_sacked = (uint32_t)sk->max_ack_backlog;
	} else {
		uint32_t ms_now = (uint32_t)(st->now / 1000);
		ti.tcpi_retransmits = sk->retransmits;
		ti.tcpi_probes = sk->probes_out;
		ti.tcpi_backoff = sk->backoff;
		ti.tcpi_options = (sk->tstamp_ok ? TCPI_OPT_TIMESTAMPS : 0) | (sk->sack_ok ? TCPI_OPT_SACK : 0) |
				  (sk->wscale_ok ? TCPI_OPT_WSCALE : 0) |
				  (sk->syn_data_acked ? TCPI_OPT_SYN_DATA : 0) |
				  ((sk->ecn_flags & TCP_ECN_OK) ? TCPI_OPT_ECN : 0) |
				  ((sk->ecn_flags & TCP_ECN_SEEN) ? TCPI_OPT_ECN_SEEN : 0) |
				  (sk->syn_fastopen_child ? TCPI_OPT_TFO_CHILD : 0);
		ti.tcpi_fastopen_client_fail = sk->fastopen_client_fail;
		if (sk->wscale_ok) {
			ti.tcpi_snd_wscale = sk->snd_wscale & 0xf;
			ti.tcpi_rcv_wscale = sk->rcv_wscale & 0xf;
		}
		ti.tcpi_rto = sk->rto_ms * 1000u;
		ti.tcpi_ato = sk->ato_ms * 1000u; /* icsk_ack.ato */
		ti.tcpi_snd_mss = sk->mss_cache;
		ti.tcpi_rcv_mss = sk->mss_cache;
		tcp_info_flight(sk, &ti);
		if (sk->data_init) {
			ti.tcpi_last_data_sent = ms_now - (uint32_t)(sk->lsndtime / 1000);
			ti.tcpi_last_data_recv = ms_now - (uint32_t)(sk->lrcvtime / 1000);
			ti.tcpi_last_ack_recv = ms_now - (uint32_t)(sk->rcv_tstamp / 1000);
		}
		ti.tcpi_pmtu = sk->rt.mtu;
		ti.tcpi_rcv_ssthresh = sk->rcv_ssthresh;
		ti.tcpi_rtt = sk->srtt_us;
		ti.tcpi_rttvar = sk->rttvar_us;
		ti.tcpi_snd_ssthresh = sk->ssthresh;
		ti.tcpi_snd_cwnd = sk->cwnd;
		ti.tcpi_advmss = sk->advmss;
		ti.tcpi_reordering = sk->reordering ? sk->reordering : (uint32_t)st->sysctl.tcp_reordering;
		ti.tcpi_rcv_rtt = sk->rcv_rtt_us;
		ti.tcpi_rcv_space = sk->rcvq_space ? sk->rcvq_space : sk->rcv_wnd;
		ti.tcpi_total_retrans = sk->total_retrans;
		ti.tcpi_bytes_acked = sk->bytes_acked;
		ti.tcpi_bytes_received = sk->bytes_received;
		ti.tcpi_segs_out = sk->segs_out;
		ti.tcpi_segs_in = sk->segs_in;
		ti.tcpi_notsent_bytes = tcp_notsent_bytes(sk);
		ti.tcpi_min_rtt = sk->rtt_min_us;
		ti.tcpi_data_segs_in = sk->data_segs_in;
		ti.tcpi_data_segs_out = sk->data_segs_out;
		ti.tcpi_delivered = sk->delivered;
		ti.tcpi_bytes_sent = sk->bytes_sent;
		ti.tcpi_bytes_retrans = sk->bytes_retrans;
		ti.tcpi_dsack_dups = sk->dsack_dups;
		ti.tcpi_reord_seen = sk->reord_seen;
		ti.tcpi_rcv_ooopack = sk->rcv_ooopack;
		ti.tcpi_snd_wnd = sk->snd_wnd;
		ti.tcpi_rcv_wnd = sk->data_init ? sk->rcv_adv - sk->rcv_nxt : sk->rcv_wnd;
		ti.tcpi_total_rto = sk->total_rto;
		if (sk->node.state == TCP_SYN_SENT)
			tcp_info_syn_sent(st, sk, &ti);
		uint64_t chrono[3];
		tcp_chrono_stats(st, sk, chrono);
		ti.tcpi_busy_time = chrono[0] + chrono[1] + chrono[2]; /* tcp_get_info_chrono_stats */
		ti.tcpi_rwnd_limited = chrono[1];
		ti.tcpi_sndbuf_limited = chrono[2];
	}
	*out = ti;
}
