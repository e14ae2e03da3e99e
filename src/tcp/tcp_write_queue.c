/*
 * The write queue's skb boundaries.  ustack keeps a connection's unacknowledged and unsent
 * bytes in one ring, but Linux keeps them in skbs, and where those begin and end shows on the
 * wire: a segment never spans two skbs when first sent, PSH comes from the skb (tcp_mark_push),
 * MSG_EOR stops later writes from joining an skb (tcp_skb_can_collapse_to), and a
 * retransmission cuts an skb (tcp_fragment) or joins small ones (tcp_retrans_try_collapse).
 * So the ring carries a record per skb — where it ends and its PSH/EOR marks — built the way
 * tcp_sendmsg_locked builds skbs: data joins the last skb while its unsent part is shorter
 * than the size goal, else a new one starts.
 *
 * Records are a ring of (end, flags), oldest first; the first starts at wq_start.  Lookups are
 * binary searches.  The ring grows by doubling on the write path up to TCP_WQ_MAX records
 * (never per packet); past that, new data joins the last record, so nothing from a peer or an
 * application makes it grow without bound — the boundaries just get coarser, as Linux's would
 * under memory pressure.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <stdlib.h>

#define TCP_WQ_MAX 1024u
/* sk_gso_max_size less MAX_TCP_HEADER + 1, as tcp_xmit_size_goal sizes skbs for a device with
 * the legacy 64 KB GSO limit; the pacing-based TSO size below is bounded by it too */
#define TCP_GSO_MAX_SIZE (65536u - 321u)

static bool after32(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static struct tcp_skb_rec *rec(const struct sock *sk, uint32_t i)
{
	return &sk->wq[(sk->wq_head + i) % sk->wq_cap];
}

static uint32_t rec_start(const struct sock *sk, uint32_t i)
{
	return i ? rec(sk, i - 1)->end : sk->wq_start;
}

/* The first record that ends after seq (wq_n if none). */
static uint32_t wq_find(const struct sock *sk, uint32_t seq)
{
	uint32_t lo = 0, hi = sk->wq_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (after32(rec(sk, mid)->end, seq))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void tcp_wq_free(struct sock *sk)
{
	free(sk->wq);
	sk->wq = NULL;
	sk->wq_head = sk->wq_n = sk->wq_cap = 0;
}

/* Acknowledged skbs leave the queue (tcp_clean_rtx_queue). */
void tcp_wq_acked(struct sock *sk)
{
	while (sk->wq_n && !after32(rec(sk, 0)->end, sk->snd_una)) {
		sk->wq_start = rec(sk, 0)->end;
		sk->wq_head = (sk->wq_head + 1) % sk->wq_cap;
		sk->wq_n--;
	}
	if (!sk->wq_n)
		sk->wq_head = 0;
}

static bool wq_grow(struct sock *sk)
{
	if (sk->wq_cap >= TCP_WQ_MAX)
		return false;
	uint32_t cap = sk->wq_cap ? sk->wq_cap * 2 : 8;
	struct tcp_skb_rec *w = malloc(cap * sizeof(*w));
	if (!w)
		return false;
	for (uint32_t i = 0; i < sk->wq_n; i++)
		w[i] = *rec(sk, i);
	free(sk->wq);
	sk->wq = w;
	sk->wq_cap = (uint16_t)cap;
	sk->wq_head = 0;
	return true;
}

/* tcp_xmit_size_goal: how large tcp_sendmsg lets an skb grow, a whole number of segments of
 * at most half the largest window the peer offered (tcp_bound_to_half_wnd). */
uint32_t tcp_size_goal(const struct sock *sk, uint32_t mss)
{
	uint32_t goal = TCP_GSO_MAX_SIZE;
	uint32_t cutoff = sk->max_window > TCP_MSS_DEFAULT ? sk->max_window >> 1 : sk->max_window;
	if (cutoff && goal > cutoff)
		goal = cutoff > 68u - TCP_HLEN ? cutoff : 68u - TCP_HLEN;
	uint32_t segs = goal / mss;
	return (segs ? segs : 1) * mss;
}

/* forced_push: more than half the largest window the peer offered was written since the last
 * PSH — the peer should not wait that long for one. */
bool tcp_forced_push(const struct sock *sk)
{
	return after32(sk->write_seq, sk->pushed_seq + (sk->max_window >> 1));
}

void tcp_mark_push(struct sock *sk)
{
	if (sk->wq_n)
		rec(sk, sk->wq_n - 1)->flags |= TCP_SKB_PSH;
	sk->pushed_seq = sk->write_seq;
}

void tcp_wq_mark_eor(struct sock *sk)
{
	if (sk->wq_n)
		rec(sk, sk->wq_n - 1)->flags |= TCP_SKB_EOR;
}

/* How many bytes may join the last skb: none if it ended a record (MSG_EOR) or went out
 * whole, else what keeps its unsent part within the size goal. */
uint32_t tcp_wq_tail_room(const struct sock *sk, uint32_t size_goal)
{
	if (!sk->wq_n)
		return 0;
	const struct tcp_skb_rec *t = rec(sk, sk->wq_n - 1);
	if (t->flags & TCP_SKB_EOR)
		return 0;
	uint32_t start = rec_start(sk, sk->wq_n - 1);
	uint32_t unsent_from = after32(sk->snd_max, start) ? sk->snd_max : start;
	if (!after32(t->end, unsent_from))
		return 0; /* all of it was sent: Linux moved it to the retransmit queue */
	uint32_t unsent = t->end - unsent_from;
	return unsent < size_goal ? size_goal - unsent : 0;
}

/* n bytes were written (write_seq already counts them), into a new skb or the last one.
 * The first bytes a write adds to an skb clear its PSH (tcp_sendmsg_locked: !copied). */
void tcp_wq_add(struct sock *sk, uint32_t n, bool new_skb, bool first_copy)
{
	if (new_skb && sk->wq_n == sk->wq_cap && !wq_grow(sk))
		new_skb = !sk->wq_n; /* full: join the last record */
	if (new_skb) {
		if (!sk->wq_n)
			sk->wq_start = sk->write_seq - n;
		*rec(sk, sk->wq_n) = (struct tcp_skb_rec){ .end = sk->write_seq };
		sk->wq_n++;
		return;
	}
	struct tcp_skb_rec *t = rec(sk, sk->wq_n - 1);
	t->end = sk->write_seq;
	if (first_copy)
		t->flags &= (uint8_t)~TCP_SKB_PSH;
}

/* The end of the skb holding seq, and its marks. */
uint32_t tcp_wq_end(const struct sock *sk, uint32_t seq, uint8_t *flags)
{
	uint32_t i = wq_find(sk, seq);
	if (i == sk->wq_n) {
		*flags = 0;
		return sk->write_seq;
	}
	*flags = rec(sk, i)->flags;
	return rec(sk, i)->end;
}

/*
 * __tcp_retransmit_skb's segment from seq, at most max bytes of data already sent: an skb
 * longer than that is cut, and the first part does not carry the PSH (tcp_fragment keeps PSH
 * for the second); a shorter one takes the following skbs that fit whole, unless one of them
 * ends a record (tcp_retrans_try_collapse, tcp_skb_can_collapse), and carries any PSH they
 * had.
 */
uint32_t tcp_wq_rexmit_len(const struct ustack *st, const struct sock *sk, uint32_t seq, uint32_t max,
			   bool *psh)
{
	uint32_t i = wq_find(sk, seq);
	*psh = false;
	if (i == sk->wq_n)
		return max;
	const struct tcp_skb_rec *r = rec(sk, i);
	uint32_t len = r->end - seq;
	if (len >= max) {
		*psh = len == max && (r->flags & TCP_SKB_PSH);
		return max;
	}
	*psh = r->flags & TCP_SKB_PSH;
	while (st->sysctl.tcp_retrans_collapse && !(r->flags & TCP_SKB_EOR) && ++i < sk->wq_n) {
		r = rec(sk, i);
		if (r->end - seq > max)
			break;
		len = r->end - seq;
		*psh |= (r->flags & TCP_SKB_PSH) != 0;
	}
	return len;
}

/*
 * tcp_tso_autosize: how many segments Linux puts in one TSO packet — about 1 ms at the pacing
 * rate (tcp_update_pacing_rate: tcp_pacing_ss_ratio % of cwnd per SRTT in slow start,
 * tcp_pacing_ca_ratio % after), plus a share of 64 KB on short paths (tcp_tso_rtt_log), at
 * least tcp_min_tso_segs.  ustack sends MSS-sized segments, so this decides only where a
 * TSO packet's PSH would fall: on the last segment of each.
 */
uint32_t tcp_tso_segs(const struct ustack *st, const struct sock *sk, uint32_t mss)
{
	uint64_t bytes = TCP_GSO_MAX_SIZE;
	if (sk->srtt_us) {
		uint32_t flight = (sk->snd_max - sk->snd_una) / mss;
		uint64_t ratio = sk->cwnd < sk->ssthresh / 2 ? (uint64_t)st->sysctl.tcp_pacing_ss_ratio
							     : (uint64_t)st->sysctl.tcp_pacing_ca_ratio;
		uint64_t rate = (uint64_t)mss * 10000u * ratio * (sk->cwnd > flight ? sk->cwnd : flight) /
				sk->srtt_us; /* bytes per second */
		bytes = rate >> 10;  /* sk_pacing_shift: ~1 ms of it */
		uint32_t r = sk->rtt_min_us ? sk->rtt_min_us >> st->sysctl.tcp_tso_rtt_log : 32;
		if (r < 32)
			bytes += TCP_GSO_MAX_SIZE >> r;
		if (bytes > TCP_GSO_MAX_SIZE)
			bytes = TCP_GSO_MAX_SIZE;
	}
	uint32_t segs = (uint32_t)(bytes / mss);
	return segs > (uint32_t)st->sysctl.tcp_min_tso_segs ? segs : (uint32_t)st->sysctl.tcp_min_tso_segs;
}

/*
 * When each piece of data was sent (skb->skb_mstamp_ns): the ACK that covers data takes an
 * RTT sample from the oldest newly acknowledged piece that was never retransmitted, as
 * tcp_clean_rtx_queue does (seq_rtt from first_ackt) — on every ACK, not one timed segment
 * per round trip, so SRTT follows a queue that builds up as Linux's does.  Segments sent in
 * one instant share an entry; at TCP_TXLOG_MAX entries new data joins the last one (its
 * samples then come out older, never wrong in kind).
 */
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

/* [seq, end) was sent again: no RTT sample from it (Karn's rule, TCPCB_RETRANS). */
/* The first entry that ends after seq (txlog_n if none). */
static uint32_t txlog_find(const struct sock *sk, uint32_t seq)
{
	uint32_t lo = 0, hi = sk->txlog_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (after32(txs(sk, mid)->end, seq))
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
	if (i == sk->txlog_n || !after32(seq, txs(sk, i)->start))
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
		if (!after32(end, e->start))
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
	sk->rack_advanced = true;
	sk->rack_rtt_us = rtt;
	if (xmit > sk->rack_mstamp || (xmit == sk->rack_mstamp && after32(end_seq, sk->rack_end_seq))) {
		sk->rack_mstamp = xmit;
		sk->rack_end_seq = end_seq;
	}
}

/* Was the data at seq ever sent again (TCPCB_RETRANS)? */
bool tcp_txlog_retransmitted(const struct sock *sk, uint32_t seq)
{
	uint32_t i = txlog_find(sk, seq);
	return i < sk->txlog_n && !after32(txs(sk, i)->start, seq) && txs(sk, i)->retrans;
}

/* Newly SACKed [start, end): its latest-sent piece advances RACK. */
void tcp_rack_sacked(struct sock *sk, uint32_t start, uint32_t end, uint64_t now)
{
	uint32_t lo = 0, hi = sk->txlog_n;
	while (lo < hi) { /* the entry holding end - 1 */
		uint32_t mid = lo + (hi - lo) / 2;
		if (after32(txs(sk, mid)->end, end - 1))
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo < sk->txlog_n && after32(end, txs(sk, lo)->start) && after32(txs(sk, lo)->end, start)) {
		const struct tcp_tx_stamp *e = txs(sk, lo);
		rack_advance(sk, e->retrans, end, e->t_us, now);
	}
}

/* The ACK moved snd_una to una: drop what it covers; the RTT sample in µs, or 0 for none. */
uint32_t tcp_txlog_acked(struct sock *sk, uint32_t una, uint64_t now)
{
	uint32_t sample = 0;
	bool found = false;
	while (sk->txlog_n) {
		struct tcp_tx_stamp *e = txs(sk, 0);
		if (!after32(una, e->start))
			break;
		rack_advance(sk, e->retrans, after32(e->end, una) ? una : e->end, e->t_us, now);
		if (!found && !e->retrans) {
			found = true;
			sample = now > e->t_us ? (uint32_t)(now - e->t_us) : 1u;
		}
		if (after32(e->end, una)) {
			e->start = una; /* partly acknowledged (tcp_tso_acked) */
			break;
		}
		sk->txlog_head = (uint16_t)((sk->txlog_head + 1u) % sk->txlog_cap);
		sk->txlog_n--;
	}
	return sample;
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

/* tcp_is_cwnd_limited: cwnd limited sending in the last window — or, in slow start, it is
 * still less than twice the most that was in flight then, so an application that keeps a
 * flight of data going lets the window double each round as Linux's does. */
bool tcp_is_cwnd_limited(const struct sock *sk)
{
	if (sk->is_cwnd_limited)
		return true;
	if (sk->cwnd < sk->ssthresh)
		return sk->cwnd < 2 * sk->max_packets_out;
	return false;
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
		bool before_rack = sk->rack_mstamp > e->t_us ||
				   (sk->rack_mstamp == e->t_us && after32(sk->rack_end_seq, e->start));
		int64_t remaining = (int64_t)(e->t_us + sk->rack_rtt_us + reo) - (int64_t)st->now;
		if (!before_rack || remaining > 0) {
			if (before_rack && (uint64_t)remaining > *timeout_us)
				*timeout_us = (uint32_t)remaining;
			if (!e->retrans)
				fresh_done = true; /* later fresh data was sent later still */
			continue;
		}
		if (e->retrans) {
			if (after32(*rexmit_lost, e->start))
				*rexmit_lost = e->start;
		} else {
			edge = sk->rack_mstamp == e->t_us && after32(e->end, sk->rack_end_seq) ? sk->rack_end_seq : e->end;
		}
	}
	return edge;
}

/* tcp_rack_mark_lost: after an ACK that delivered something, move the lost edge; if more may
 * expire, RACK's reordering timer takes the retransmission timer (true). */
bool tcp_rack_mark_lost(struct ustack *st, struct sock *sk)
{
	if (!sk->rack_advanced)
		return false;
	sk->rack_advanced = false;
	uint32_t timeout, rexmit_lost;
	uint32_t edge = rack_detect_loss(st, sk, &timeout, &rexmit_lost);
	if (after32(edge, sk->rack_lost_edge) || after32(sk->snd_una, sk->rack_lost_edge))
		sk->rack_lost_edge = after32(edge, sk->snd_una) ? edge : sk->snd_una;
	/* a lost retransmission in recovery: NextSeg goes back to it (tcp_mark_skb_lost) */
	if (sk->in_recovery && after32(sk->high_rxt, rexmit_lost) && !after32(sk->snd_una, rexmit_lost)) {
		sk->high_rxt = rexmit_lost;
		if (after32(rexmit_lost, sk->rack_lost_edge))
			sk->rack_lost_edge = rexmit_lost;
	}
	if (!timeout)
		return false;
	sk->tlp_pending = false;
	sk->reo_pending = true;
	timer_arm(st, &sk->retrans_timer, st->now + timeout + TCP_TIMEOUT_MIN_MS * 1000u);
	return true;
}
