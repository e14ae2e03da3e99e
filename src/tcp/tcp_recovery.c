/*
 * Loss detection by time: the transmit log and RACK (RFC 8985; Linux's tcp_recovery.c, with
 * the send times Linux keeps in each skb, skb_mstamp_ns).
 *
 * The transmit log records when each run of data was (re)sent.  The ACK that covers data takes
 * an RTT sample from the oldest newly acknowledged piece that was never retransmitted, as
 * tcp_clean_rtx_queue does (seq_rtt from first_ackt) — on every ACK, not one timed segment per
 * round trip, so SRTT follows a queue that builds up as Linux's does.  Segments sent in one
 * instant share an entry; a retransmission cuts its range out with its own time.  At
 * TCP_TXLOG_MAX entries new data joins the last one (its samples then come out older, never
 * wrong in kind).  Lookups are binary searches by sequence; nothing is allocated per packet
 * (the log grows by doubling).
 *
 * RACK reads the log: delivered data moves RACK's clock; data sent before it and longer ago than
 * an RTT plus a reordering window is lost — fresh data as one edge below which every hole is
 * lost, a retransmission lost again by where it starts.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <stdlib.h>


#define TCP_TXLOG_MAX 4096u

static struct tcp_tx_stamp *txs(const struct sock *sk, uint32_t i)
{
	return &sk->txlog[(sk->txlog_head + i) % sk->txlog_cap];
}

static bool txlog_grow(struct sock *sk)
{
	if (sk->txlog_cap >= TCP_TXLOG_MAX)
		return false;
	uint32_t cap = sk->txlog_cap ? sk->txlog_cap * 2u : 16u;
	struct tcp_tx_stamp *v = malloc(cap * sizeof(*v));
	if (!v)
		return false;
	for (uint32_t i = 0; i < sk->txlog_n; i++)
		v[i] = *txs(sk, i);
	free(sk->txlog);
	sk->txlog = v;
	sk->txlog_cap = (uint16_t)cap;
	sk->txlog_head = 0;
	return true;
}

void tcp_txlog_free(struct sock *sk)
{
	free(sk->txlog);
	sk->txlog = NULL;
	sk->txlog_head = sk->txlog_n = sk->txlog_cap = 0;
}

/* New data [seq, end) went out at now. */
void tcp_txlog_sent(struct sock *sk, uint32_t seq, uint32_t end, uint64_t now)
{
	if (sk->txlog_n) {
		struct tcp_tx_stamp *last = txs(sk, sk->txlog_n - 1u);
		if (last->end == seq && (last->t_us == now || (sk->txlog_n == sk->txlog_cap && !txlog_grow(sk)))) {
			last->end = end;
			return;
		}
	}
	if (sk->txlog_n == sk->txlog_cap && !txlog_grow(sk))
		return;
	*txs(sk, sk->txlog_n) = (struct tcp_tx_stamp){ .start = seq, .end = end, .t_us = now };
	sk->txlog_n++;
}

/* The first entry that ends after seq (txlog_n if none). */
static uint32_t txlog_find(const struct sock *sk, uint32_t seq)
{
	uint32_t lo = 0, hi = sk->txlog_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (after(txs(sk, mid)->end, seq))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Cuts the entry holding seq in two there (tcp_fragment of the rtx queue's skb), so that a
 * retransmission carries its own time; false if there is no room (then the whole entry
 * counts as resent). */
static bool txlog_split(struct sock *sk, uint32_t seq)
{
	uint32_t i = txlog_find(sk, seq);
	if (i == sk->txlog_n || !after(seq, txs(sk, i)->start))
		return true;
	if (sk->txlog_n == sk->txlog_cap && !txlog_grow(sk))
		return false;
	for (uint32_t j = sk->txlog_n; j > i + 1; j--)
		*txs(sk, j) = *txs(sk, j - 1);
	*txs(sk, i + 1) = *txs(sk, i);
	txs(sk, i)->end = seq;
	txs(sk, i + 1)->start = seq;
	sk->txlog_n++;
	return true;
}

/* [seq, end) was sent again at now: no RTT sample from it (Karn's rule, TCPCB_RETRANS), and
 * RACK times it from this transmission. */
void tcp_txlog_retrans(struct sock *sk, uint32_t seq, uint32_t end, uint64_t now)
{
	txlog_split(sk, seq);
	txlog_split(sk, end);
	for (uint32_t i = txlog_find(sk, seq); i < sk->txlog_n; i++) {
		struct tcp_tx_stamp *e = txs(sk, i);
		if (!after(end, e->start))
			break;
		e->retrans = true;
		e->t_us = now;
	}
}

/* tcp_rack_advance (RFC 8985 §6.2 step 2): delivered data sent after what RACK knew of
 * moves RACK's clock; a retransmission acknowledged sooner than the minimum RTT may be the
 * original's ACK, so it does not. */
static void rack_advance(struct sock *sk, bool retrans, uint32_t end_seq, uint64_t xmit, uint64_t now)
{
	uint32_t rtt = now > xmit ? (uint32_t)(now - xmit) : 0;
	if (retrans && rtt < sk->rtt_min_us)
		return;
	sk->rack.advanced = true;
	sk->rack.rtt_us = rtt;
	if (xmit > sk->rack.mstamp || (xmit == sk->rack.mstamp && after(end_seq, sk->rack.end_seq))) {
		sk->rack.mstamp = xmit;
		sk->rack.end_seq = end_seq;
	}
}

/* Was the data at seq ever sent again (TCPCB_RETRANS)? */
bool tcp_txlog_retransmitted(const struct sock *sk, uint32_t seq)
{
	uint32_t i = txlog_find(sk, seq);
	return i < sk->txlog_n && !after(txs(sk, i)->start, seq) && txs(sk, i)->retrans;
}

/* Newly SACKed [start, end) (none of it SACKed before): each run of it advances RACK, as
 * tcp_sacktag_one does for each newly SACKed skb — a retransmission among them carries the
 * latest send time. */
void tcp_rack_sacked(struct sock *sk, uint32_t start, uint32_t end, uint64_t now)
{
	for (uint32_t i = txlog_find(sk, start); i < sk->txlog_n; i++) {
		const struct tcp_tx_stamp *e = txs(sk, i);
		if (!after(end, e->start))
			break;
		rack_advance(sk, e->retrans, after(e->end, end) ? end : e->end, e->t_us, now);
	}
}

/* The ACK moved snd_una to una: drop what it covers; the RTT sample in µs (from the oldest data
 * never retransmitted, Linux's seq_rtt), or 0 for none; *ca_rtt the newest data's (ca_rtt_us,
 * what congestion control sees), -1 if any of it was retransmitted (Karn) or none. */
uint32_t tcp_txlog_acked(struct sock *sk, uint32_t una, uint64_t now, int32_t *ca_rtt)
{
	uint32_t sample = 0;
	bool found = false, retrans = false;
	*ca_rtt = -1;
	while (sk->txlog_n) {
		struct tcp_tx_stamp *e = txs(sk, 0);
		if (!after(una, e->start))
			break;
		rack_advance(sk, e->retrans, after(e->end, una) ? una : e->end, e->t_us, now);
		retrans |= e->retrans;
		if (!e->retrans) {
			uint32_t s = now > e->t_us ? (uint32_t)(now - e->t_us) : 1u;
			if (!found)
				sample = s;
			found = true;
			*ca_rtt = retrans ? -1 : (int32_t)(s > INT32_MAX ? INT32_MAX : s);
		}
		if (after(e->end, una)) {
			e->start = una; /* partly acknowledged (tcp_tso_acked) */
			break;
		}
		sk->txlog_head = (uint16_t)((sk->txlog_head + 1u) % sk->txlog_cap);
		sk->txlog_n--;
	}
	if (retrans) { /* FLAG_RETRANS_DATA_ACKED: neither sample */
		*ca_rtt = -1;
		return 0;
	}
	return sample;
}

/* tcp_rack_reo_wnd: until the path is seen to reorder, none in recovery or once enough is
 * SACKed (the duplicate threshold, unless tcp_recovery has 4); else a quarter of the minimum
 * RTT, at most the smoothed RTT. */
static uint32_t rack_reo_wnd(const struct ustack *st, const struct sock *sk)
{
	if (!sk->reord_seen) {
		if (sk->in_recovery)
			return 0;
		if (tcp_sacked_segs(sk) >= sk->reordering && !(st->sysctl.tcp_recovery & 4))
			return 0;
	}
	uint32_t w = sk->rtt_min_us / 4;
	return w < sk->srtt_us ? w : sk->srtt_us;
}

/*
 * tcp_rack_detect_loss (RFC 8985 §6.2 step 5): data sent before the most recently delivered
 * data, and longer ago than RACK's RTT plus the reordering window, is lost.  Fresh data goes
 * out in sequence order, so what is lost of it is everything below an edge; a retransmission
 * found lost again is reported by where it starts (*rexmit_lost, or snd_max if none), for
 * recovery to send it once more.  *timeout_us: how long until the next candidate expires.
 */
static uint32_t rack_detect_loss(const struct ustack *st, const struct sock *sk, uint32_t *timeout_us,
				 uint32_t *rexmit_lost)
{
	uint32_t edge = sk->snd_una, reo = rack_reo_wnd(st, sk);
	bool fresh_done = false;
	*timeout_us = 0;
	*rexmit_lost = sk->snd_max;
	for (uint32_t i = 0; i < sk->txlog_n; i++) {
		const struct tcp_tx_stamp *e = txs(sk, i);
		if (!e->retrans && fresh_done)
			continue;
		bool before_rack = sk->rack.mstamp > e->t_us ||
				   (sk->rack.mstamp == e->t_us && after(sk->rack.end_seq, e->start));
		int64_t remaining = (int64_t)(e->t_us + sk->rack.rtt_us + reo) - (int64_t)st->now;
		if (!before_rack || remaining > 0) {
			if (before_rack && (uint64_t)remaining > *timeout_us)
				*timeout_us = (uint32_t)remaining;
			if (!e->retrans)
				fresh_done = true; /* later fresh data was sent later still */
			continue;
		}
		if (e->retrans) {
			if (after(*rexmit_lost, e->start))
				*rexmit_lost = e->start;
		} else {
			edge = sk->rack.mstamp == e->t_us && after(e->end, sk->rack.end_seq) ? sk->rack.end_seq : e->end;
		}
	}
	return edge;
}

/* tcp_rack_mark_lost: after an ACK that delivered something, move the lost edge; if more may
 * expire, RACK's reordering timer takes the retransmission timer (true). */
bool tcp_rack_mark_lost(struct ustack *st, struct sock *sk)
{
	if (!sk->rack.advanced)
		return false;
	sk->rack.advanced = false;
	uint32_t timeout, rexmit_lost;
	uint32_t edge = rack_detect_loss(st, sk, &timeout, &rexmit_lost);
	if (after(edge, sk->rack.lost_edge) || after(sk->snd_una, sk->rack.lost_edge))
		sk->rack.lost_edge = after(edge, sk->snd_una) ? edge : sk->snd_una;
	/* a lost retransmission in recovery: NextSeg goes back to it (tcp_mark_skb_lost) */
	if (sk->in_recovery && after(sk->high_rxt, rexmit_lost) && !after(sk->snd_una, rexmit_lost)) {
		sk->high_rxt = rexmit_lost;
		if (after(rexmit_lost, sk->rack.lost_edge))
			sk->rack.lost_edge = rexmit_lost;
	}
	if (!timeout)
		return false;
	sk->tlp_pending = false;
	sk->reo_pending = true;
	timer_arm(st, &sk->timers.retransmit, st->now + timeout + TCP_TIMEOUT_MIN_MS * 1000u);
	return true;
}
