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
 * Records are a ring of (end, flags, ...), oldest first; the first starts at wq_start.  Lookups
 * are binary searches.  The ring grows by doubling — on the write path, and as packets sent cut
 * records (tcp_wq_split) — up to TCP_WQ_MAX records; past that, new data joins the last record
 * and cuts are skipped, so nothing from a peer or an application makes it grow without bound —
 * the boundaries just get coarser, as Linux's would under memory pressure.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <stdlib.h>

#define TCP_WQ_MAX 4096u /* skbs: new ones, and the cuts each packet sent makes (tso_fragment) */
/* sk_gso_max_size less MAX_TCP_HEADER + 1, as tcp_xmit_size_goal sizes skbs for a device with
 * the legacy 64 KB GSO limit; the pacing-based TSO size below is bounded by it too */
#define TCP_GSO_MAX_SIZE (65536u - 321u)


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
		if (after(rec(sk, mid)->end, seq))
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
	while (sk->wq_n && !after(rec(sk, 0)->end, sk->snd_una)) {
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
	struct tcp_skb_rec *w = ring_regrow(sk->wq, sizeof(*w), sk->wq_head, sk->wq_n, sk->wq_cap, cap);
	if (!w)
		return false;
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
	return after(sk->write_seq, sk->pushed_seq + (sk->max_window >> 1));
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
	uint32_t unsent_from = after(sk->snd_max, start) ? sk->snd_max : start;
	if (!after(t->end, unsent_from))
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

/* tcp_tx_timestamp: the write's last byte (the tail's) asks for the timestamps in bits; a
 * later write that joins the skb and asks too moves the key to its own last byte. */
void tcp_wq_tstamp(struct sock *sk, uint8_t bits)
{
	if (!sk->wq_n || !bits)
		return;
	struct tcp_skb_rec *t = rec(sk, sk->wq_n - 1);
	t->flags |= bits;
	t->tskey = sk->write_seq - 1;
}

/* Does a segment [seq, end) carry a byte some skb asked a timestamp in want for?  The last
 * such skb's key and bits (a collapsed retransmission keeps the later skb's key). */
bool tcp_wq_tstamp_in(const struct sock *sk, uint32_t seq, uint32_t end, uint8_t want, uint32_t *key, uint8_t *bits)
{
	bool found = false;
	for (uint32_t i = wq_find(sk, seq); i < sk->wq_n && before(rec_start(sk, i), end); i++) {
		const struct tcp_skb_rec *r = rec(sk, i);
		if ((r->flags & want) && !before(r->tskey, seq) && before(r->tskey, end)) {
			*key = r->tskey;
			*bits = r->flags & want;
			found = true;
		}
	}
	return found;
}

void tcp_wq_ack_tstamps(struct ustack *st, struct sock *sk, uint32_t prior, uint32_t ack,
			void (*fn)(struct ustack *st, struct sock *sk, uint32_t key, uint32_t start, uint32_t end))
{
	for (uint32_t i = 0; i < sk->wq_n && before(rec_start(sk, i), ack); i++) {
		const struct tcp_skb_rec *r = rec(sk, i);
		if ((r->flags & TCP_SKB_TS_ACK) && !before(r->tskey, prior) && before(r->tskey, ack)) {
			uint32_t start = rec_start(sk, i);
			fn(st, sk, r->tskey, after(prior, start) ? prior : start, r->end);
		}
	}
}

/*
 * tso_fragment / tcp_fragment: Linux sends each packet from an skb of its own, cutting an skb at
 * the end of the packet that leaves with its head; the head loses PSH and EOR to the rest (they
 * mark where the skb ended) and the timestamp request stays with the part holding its byte.
 * The cuts are what later retransmissions see (a resent packet is one of these skbs) and what
 * the send buffer is charged for (each skb has its overhead).  A cut at a boundary, or with
 * the queue at its limit, does nothing: the queue only gets coarser.
 */
void tcp_wq_split(struct sock *sk, uint32_t seq)
{
	uint32_t i = wq_find(sk, seq);
	if (i == sk->wq_n || !after(seq, rec_start(sk, i)))
		return;
	if (sk->wq_n == sk->wq_cap && !wq_grow(sk))
		return;
	for (uint32_t j = sk->wq_n; j > i; j--) /* the records after it: the unsent few, usually */
		*rec(sk, j) = *rec(sk, j - 1);
	sk->wq_n++;
	struct tcp_skb_rec *head = rec(sk, i), *tail = rec(sk, i + 1);
	head->end = seq;
	head->flags &= (uint8_t)~(TCP_SKB_PSH | TCP_SKB_EOR);
	if (tail->flags & TCP_SKB_TS_ANY) { /* tcp_fragment_tstamp */
		if (before(tail->tskey, seq))
			tail->flags &= (uint8_t)~TCP_SKB_TS_ANY;
		else
			head->flags &= (uint8_t)~TCP_SKB_TS_ANY;
	}
}

uint8_t tcp_wq_tail_nfrags(const struct sock *sk)
{
	return sk->wq_n ? rec(sk, sk->wq_n - 1)->nfrags : 0;
}

/* a zerocopy write's bytes that went into the tail skb touched nfrags more fragments */
void tcp_wq_add_frags(struct sock *sk, uint32_t nfrags)
{
	if (!sk->wq_n)
		return;
	struct tcp_skb_rec *t = rec(sk, sk->wq_n - 1);
	uint32_t n = t->nfrags + nfrags;
	t->nfrags = (uint8_t)(n < TCP_MAX_SKB_FRAGS ? n : TCP_MAX_SKB_FRAGS);
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
