/*
 * The out-of-order queue: data that arrived above a hole (Linux's tcp_data_queue_ofo,
 * tcp_ofo_queue and tcp_prune_ofo_queue in tcp_input.c), and the SACK blocks that describe it
 * to the sender (tcp_sack_new_ofo_skb, tcp_sack_remove; RFC 2018 §4).
 *
 * Where the bytes live.  Out-of-order data is written straight into the receive ring, at the
 * place it will occupy once the hole is filled: byte s sits (s - rcv_nxt) past the ring's
 * in-order tail.  That place never moves — in-order data and the application's reads move
 * rcv_nxt and the tail together — so when the hole fills, the data is already where it
 * belongs and only the ring's length grows.  The queue itself is a set of runs: disjoint,
 * non-adjacent [seq, end) ranges, each a node of a treap (a binary search tree ordered by
 * seq, heap-ordered by a random priority, so its depth is O(log n) whatever order the peer
 * sends in).  A segment that overlaps or touches runs is merged with them into one run, so
 * overlapping retransmissions are stored once and counted once; 135 segments of 1448 bytes
 * starting one byte apart make a single run of 1,582 bytes.
 *
 * What that bounds.  Memory: the bytes are in the ring the receive buffer sized; what comes
 * on top is one node per run, and runs are capped at one per TCP_OFO_RUN_COST bytes of ring.
 * A peer that would go past the cap (one-byte segments with one-byte gaps) has the queue
 * pruned from its highest run down, as Linux's tcp_prune_ofo_queue drops the skbs furthest
 * from rcv_nxt first (TcpExtOfoPruned) and forgets its SACK blocks; a segment that would
 * itself land above every run is dropped instead (TcpExtTCPOFODrop).  Time: O(log n) per
 * segment, O(1) for the common case of data extending the highest run (Linux's
 * ooo_last_skb), and the SACK blocks are kept as Linux keeps them (the block of the latest
 * segment first), never rebuilt by walking the queue.
 *
 * The segment that fills the hole always fits: the ring holds half again the largest window
 * we offer, so in-order data within the window never has to be refused to make room for data
 * above it.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <stdlib.h>
#include <string.h>

struct ofo_node {
	struct ofo_node *l, *r;
	uint32_t seq, end;
	uint32_t prio;
};

/* One run may be kept per this many bytes of receive ring (at least TCP_OFO_MIN_RUNS):
 * the nodes then cost at most an eighth of the ring.  Linux's equivalent bound is the skb
 * truesize charged to sk_rcvbuf for every out-of-order segment. */
#define TCP_OFO_RUN_COST 256u
#define TCP_OFO_MIN_RUNS 64u
#define TCP_OFO_FREE_MAX 4096u /* nodes the stack keeps for reuse */
#define TCP_NUM_SACKS 4


/* ---- nodes: a per-stack free list, so the data path does not call malloc ---- */

static struct ofo_node *ofo_node_get(struct ustack *st, uint32_t seq, uint32_t end)
{
	struct ofo_node *n = st->tcp->ofo_free;
	if (n) {
		st->tcp->ofo_free = n->l;
		st->tcp->ofo_nfree--;
	} else if (!(n = malloc(sizeof(*n)))) {
		return NULL;
	}
	n->l = n->r = NULL;
	n->seq = seq;
	n->end = end;
	n->prio = prng_u32(&st->secrets);
	return n;
}

static void ofo_node_put(struct ustack *st, struct ofo_node *n)
{
	if (st->tcp->ofo_nfree >= TCP_OFO_FREE_MAX) {
		free(n);
		return;
	}
	n->l = st->tcp->ofo_free;
	st->tcp->ofo_free = n;
	st->tcp->ofo_nfree++;
}

void tcp_ofo_cache_destroy(struct ustack *st)
{
	while (st->tcp->ofo_free) {
		struct ofo_node *n = st->tcp->ofo_free;
		st->tcp->ofo_free = n->l;
		free(n);
	}
	st->tcp->ofo_nfree = 0;
}

/* ---- the treap ---- */

/* Splits t into runs starting before `seq` (*l) and the rest (*r). */
static void treap_split(struct ofo_node *t, uint32_t seq, struct ofo_node **l, struct ofo_node **r)
{
	while (t) {
		if (before(t->seq, seq)) {
			*l = t;
			l = &t->r;
			t = t->r;
		} else {
			*r = t;
			r = &t->l;
			t = t->l;
		}
	}
	*l = *r = NULL;
}

/* Joins two treaps, every run of a below every run of b. */
static struct ofo_node *treap_merge(struct ofo_node *a, struct ofo_node *b)
{
	struct ofo_node *root = NULL, **link = &root;
	while (a && b) {
		if (a->prio >= b->prio) {
			*link = a;
			link = &a->r;
			a = a->r;
		} else {
			*link = b;
			link = &b->l;
			b = b->l;
		}
	}
	*link = a ? a : b;
	return root;
}

static struct ofo_node *treap_first(struct ofo_node *t)
{
	while (t && t->l)
		t = t->l;
	return t;
}

static struct ofo_node *treap_last(struct ofo_node *t)
{
	while (t && t->r)
		t = t->r;
	return t;
}

/* Removes and returns the highest run of *t. */
static struct ofo_node *treap_pop_last(struct ofo_node **t)
{
	while (*t && (*t)->r)
		t = &(*t)->r;
	struct ofo_node *n = *t;
	if (n)
		*t = n->l;
	return n;
}

/* Removes and returns the lowest run of *t. */
static struct ofo_node *treap_pop_first(struct ofo_node **t)
{
	while (*t && (*t)->l)
		t = &(*t)->l;
	struct ofo_node *n = *t;
	if (n)
		*t = n->r;
	return n;
}

/* Frees a whole subtree (runs swallowed by a new segment [lo, hi)), counting what it held;
 * what the segment brought again is its D-SACK (tcp_data_queue_ofo's tcp_dsack_extend, in
 * sequence order: the in-order walk). */
static void treap_free(struct ustack *st, struct sock *sk, struct ofo_node *t, uint32_t lo, uint32_t hi)
{
	while (t) {
		treap_free(st, sk, t->l, lo, hi); /* depth is O(log n) */
		struct ofo_node *r = t->r;
		sk->ofo_bytes -= t->end - t->seq;
		sk->ofo_runs--;
		if (!before(t->seq, lo) && !after(t->end, hi))
			MIB_INC(st, TcpExtTCPOFOMerge); /* the new segment covers it whole */
		if (before(t->seq, hi))
			tcp_dsack_extend(st, sk, t->seq, after(t->end, hi) ? hi : t->end);
		ofo_node_put(st, t);
		t = r;
	}
}

static uint32_t tcp_ofo_max_runs(const struct sock *sk)
{
	uint32_t n = sk->rcvq.size / TCP_OFO_RUN_COST;
	return n > TCP_OFO_MIN_RUNS ? n : TCP_OFO_MIN_RUNS;
}

/* ---- SACK blocks (tcp_sack_new_ofo_skb and friends) ---- */

/* tcp_sack_extend: does [seq, end) touch the block?  Then the block grows to cover it. */
static bool tcp_sack_extend(struct sack_range *sp, uint32_t seq, uint32_t end)
{
	if (after(seq, sp->end) || after(sp->start, end))
		return false;
	if (before(seq, sp->start))
		sp->start = seq;
	if (after(end, sp->end))
		sp->end = end;
	return true;
}

/* tcp_sack_maybe_coalesce: the first block grew; swallow the others it now touches. */
static void tcp_sack_maybe_coalesce(struct sock *sk)
{
	struct sack_range *sp = sk->rx_sack;
	for (unsigned i = 1; i < sk->rx_nsack;) {
		if (tcp_sack_extend(sp, sk->rx_sack[i].start, sk->rx_sack[i].end)) {
			memmove(&sk->rx_sack[i], &sk->rx_sack[i + 1], (sk->rx_nsack - i - 1) * sizeof(*sp));
			sk->rx_nsack--;
			continue;
		}
		i++;
	}
}

/* tcp_sack_new_ofo_skb: the block holding the newest segment goes first (RFC 2018 §4), the
 * others follow most recent first; a fifth is forgotten. */
static void tcp_sack_new_ofo(struct sock *sk, uint32_t seq, uint32_t end)
{
	for (unsigned i = 0; i < sk->rx_nsack; i++) {
		if (tcp_sack_extend(&sk->rx_sack[i], seq, end)) {
			struct sack_range b = sk->rx_sack[i];
			memmove(&sk->rx_sack[1], &sk->rx_sack[0], i * sizeof(b));
			sk->rx_sack[0] = b;
			if (sk->rx_nsack > 1)
				tcp_sack_maybe_coalesce(sk);
			return;
		}
	}
	unsigned n = sk->rx_nsack < TCP_NUM_SACKS ? sk->rx_nsack : TCP_NUM_SACKS - 1;
	memmove(&sk->rx_sack[1], &sk->rx_sack[0], n * sizeof(sk->rx_sack[0]));
	sk->rx_sack[0] = (struct sack_range){ seq, end };
	sk->rx_nsack = (uint8_t)(n + 1);
}

/* tcp_sack_remove: blocks rcv_nxt has reached are gone. */
static void tcp_sack_remove(struct sock *sk)
{
	if (!sk->ofo) {
		sk->rx_nsack = 0;
		return;
	}
	for (unsigned i = 0; i < sk->rx_nsack;) {
		if (!before(sk->rcv_nxt, sk->rx_sack[i].start)) {
			memmove(&sk->rx_sack[i], &sk->rx_sack[i + 1], (sk->rx_nsack - i - 1) * sizeof(sk->rx_sack[0]));
			sk->rx_nsack--;
			continue;
		}
		i++;
	}
}

/* ---- the queue ---- */

/*
 * tcp_prune_ofo_queue: drop runs from the highest down until `need` runs may be added, but
 * never one below the incoming segment (it would land last: dropping it is cheaper than
 * dropping data the peer already sent before it).  The SACK blocks are forgotten: the peer
 * learns of the loss as from a reneging receiver (RFC 2018 §8).  True when anything went.
 */
static bool tcp_prune_ofo_queue(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t need)
{
	uint32_t max = tcp_ofo_max_runs(sk);
	bool pruned = false;
	while (sk->ofo && sk->ofo_runs + need > max) {
		struct ofo_node *last = treap_last(sk->ofo);
		if (!after(last->seq, seq))
			break;
		last = treap_pop_last(&sk->ofo);
		sk->ofo_bytes -= last->end - last->seq;
		sk->ofo_runs--;
		ofo_node_put(st, last);
		pruned = true;
	}
	if (pruned) {
		MIB_INC(st, TcpExtOfoPruned);
		trace_drop(st, "TCP_OFO_QUEUE_PRUNE", 0);
		sk->ofo_last = treap_last(sk->ofo);
		sk->rx_nsack = 0;
	}
	return pruned;
}

/*
 * tcp_data_queue_ofo: [seq, seq + len) arrived above rcv_nxt.  Its bytes go to their place in
 * the ring; the run set absorbs it, merging every run it overlaps or touches.
 */
void tcp_data_queue_ofo(struct ustack *st, struct sock *sk, uint32_t seq, const uint8_t *data, uint32_t len)
{
	uint32_t off = seq - sk->rcv_nxt;
	uint32_t room = sk->rcvq.size - sk->rcvq.len; /* the ring past rcv_nxt */
	if (!len || off >= room) {
		MIB_INC(st, TcpExtTCPOFODrop);
		return;
	}
	if (len > room - off)
		len = room - off; /* beyond the ring: the peer sends it again */
	uint32_t end = seq + len;

	/* the common case: at or past the end of the highest run */
	struct ofo_node *last = sk->ofo_last;
	if (last && !before(seq, last->seq) && !after(end, last->end)) {
		MIB_INC(st, TcpExtTCPOFOMerge); /* all of it is here already */
		tcp_dsack_set(st, sk, seq, end);
		tcp_sack_new_ofo(sk, seq, end);
		return;
	}
	bool extends_last = last && !before(seq, last->seq) && !after(seq, last->end);
	if (!extends_last && sk->ofo_runs + 1 > tcp_ofo_max_runs(sk) &&
	    (!tcp_prune_ofo_queue(st, sk, seq, 1) || sk->ofo_runs + 1 > tcp_ofo_max_runs(sk))) {
		/* nothing above it to give up, or not enough (tcp_try_rmem_schedule failed) */
		MIB_INC(st, TcpExtTCPOFODrop);
		trace_drop(st, "TCP_OFODROP", 0);
		return;
	}
	last = sk->ofo_last;
	extends_last = last && !before(seq, last->seq) && !after(seq, last->end);
	if (extends_last) {
		if (before(seq, last->end))
			tcp_dsack_set(st, sk, seq, last->end); /* its head was here already */
		uint32_t grown = end - last->end;
		last->end = end;
		sk->ofo_bytes += grown;
	} else {
		struct ofo_node *lo, *mid, *hi;
		/* runs below seq (the highest of them may reach seq), runs starting within
		 * [seq, end] (all swallowed), runs above */
		treap_split(sk->ofo, seq, &lo, &mid);
		treap_split(mid, end + 1, &mid, &hi);
		uint32_t nseq = seq, nend = end;
		struct ofo_node *below = treap_last(lo);
		struct ofo_node *top = treap_last(mid);
		if (below && !before(below->end, seq)) {
			if (!before(below->end, end)) { /* all of it is here already */
				sk->ofo = treap_merge(treap_merge(lo, mid), hi);
				MIB_INC(st, TcpExtTCPOFOMerge);
				tcp_dsack_set(st, sk, seq, end);
				tcp_sack_new_ofo(sk, seq, end);
				return;
			}
			if (before(seq, below->end))
				tcp_dsack_set(st, sk, seq, below->end); /* its head was here already */
			nseq = below->seq;
			treap_pop_last(&lo);
			sk->ofo_bytes -= below->end - below->seq;
			sk->ofo_runs--;
			ofo_node_put(st, below);
		}
		if (top && after(top->end, nend))
			nend = top->end;
		treap_free(st, sk, mid, seq, end);
		struct ofo_node *node = ofo_node_get(st, nseq, nend);
		if (!node) { /* out of memory: drop the segment, keep the rest */
			MIB_INC(st, TcpExtTCPOFODrop);
			sk->ofo = treap_merge(lo, hi);
			sk->ofo_last = treap_last(sk->ofo);
			sk->rx_nsack = 0;
			return;
		}
		sk->ofo_bytes += nend - nseq;
		sk->ofo_runs++;
		/* insert between lo and hi: a one-node treap merged in keeps the heap order */
		sk->ofo = treap_merge(treap_merge(lo, node), hi);
		if (!hi)
			sk->ofo_last = node;
	}
	/* the bytes, at their place in the ring (rewriting what was there with the same data) */
	uint32_t at = (uint32_t)(((uint64_t)sk->rcvq.head + sk->rcvq.len + off) % sk->rcvq.size);
	uint32_t first = len < sk->rcvq.size - at ? len : sk->rcvq.size - at;
	memcpy(sk->rcvq.data + at, data, first);
	memcpy(sk->rcvq.data, data + first, len - first);
	sk->rcv_ooopack++;
	MIB_INC(st, TcpExtTCPOFOQueue);
	tcp_sack_new_ofo(sk, seq, end);
	/* tcp_data_queue_ofo's end: the buffer grows (tcp_grow_window's share there is left out:
	 * Linux grows the window from out-of-order data only while the skbs' truesize leaves it
	 * room, which ustack, counting bytes, would overstate — measured: tcp_ooo_rcv_mss.pkt) */
	tcp_rcvbuf_grow_ofo(st, sk, sk->ofo_last ? sk->ofo_last->end - sk->rcv_nxt : 0);
}

/* tcp_ofo_queue: rcv_nxt moved; runs it reached join the in-order data (they are in place
 * already), and their SACK blocks go.  Returns the bytes that became readable. */
uint32_t tcp_ofo_queue(struct ustack *st, struct sock *sk)
{
	uint32_t moved = 0, dsack_high = sk->rcv_nxt;
	struct ofo_node *n;
	while ((n = treap_first(sk->ofo)) && !after(n->seq, sk->rcv_nxt)) {
		treap_pop_first(&sk->ofo);
		/* the in-order segment that filled the hole also brought this run's head again */
		if (before(n->seq, dsack_high))
			tcp_dsack_extend(st, sk, n->seq, before(n->end, dsack_high) ? n->end : dsack_high);
		if (after(n->end, sk->rcv_nxt)) {
			uint32_t more = n->end - sk->rcv_nxt;
			sk->rcvq.len += more;
			sk->rcv_nxt = n->end;
			moved += more;
		}
		sk->ofo_bytes -= n->end - n->seq;
		sk->ofo_runs--;
		if (sk->ofo_last == n)
			sk->ofo_last = NULL;
		ofo_node_put(st, n);
	}
	if (sk->rx_nsack)
		tcp_sack_remove(sk);
	return moved;
}

/* How far past the ring's in-order bytes the queue reaches: what growing the ring keeps. */
uint32_t tcp_ofo_span(const struct sock *sk)
{
	return sk->ofo_last ? sk->ofo_last->end - sk->rcv_nxt : 0;
}

void tcp_ofo_purge(struct ustack *st, struct sock *sk)
{
	struct ofo_node *n;
	while ((n = treap_pop_first(&sk->ofo)))
		ofo_node_put(st, n);
	sk->ofo_last = NULL;
	sk->ofo_bytes = 0;
	sk->ofo_runs = 0;
	sk->rx_nsack = 0;
}

/*
 * D-SACK (RFC 2883): the receiver tells the sender which segment arrived twice — its
 * retransmission was spurious, or the network duplicated it — in the first SACK block of
 * the next segment it sends, below the cumulative ACK (an old duplicate) or inside a SACK
 * block (a duplicate above the hole).  Linux's tcp_dsack_set: one range, replaced by a
 * newer duplicate, counted as TcpExtTCPDSACKOldSent or TcpExtTCPDSACKOfoSent; needs SACK
 * on the connection and net.ipv4.tcp_dsack.  The range is kept as a start and a 16-bit
 * length (a duplicate is at most one segment; extended ranges are cut at 64 KiB).
 */
void tcp_dsack_set(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t end_seq)
{
	if (!sk->sack_ok || !st->sysctl.tcp_dsack || !after(end_seq, seq))
		return;
	if (before(seq, sk->rcv_nxt))
		MIB_INC(st, TcpExtTCPDSACKOldSent);
	else
		MIB_INC(st, TcpExtTCPDSACKOfoSent);
	uint32_t len = end_seq - seq;
	sk->dsack_start = seq;
	sk->dsack_len = (uint16_t)(len > 0xffffu ? 0xffffu : len);
}

/* tcp_dsack_extend: a second duplicate range joins the pending one when it overlaps or
 * touches it (tcp_sack_extend); one that does not is forgotten.  With none pending, set. */
void tcp_dsack_extend(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t end_seq)
{
	if (!sk->dsack_len) {
		tcp_dsack_set(st, sk, seq, end_seq);
		return;
	}
	struct sack_range r = { sk->dsack_start, sk->dsack_start + sk->dsack_len };
	if (!tcp_sack_extend(&r, seq, end_seq))
		return;
	uint32_t len = r.end - r.start;
	sk->dsack_start = r.start;
	sk->dsack_len = (uint16_t)(len > 0xffffu ? 0xffffu : len);
}

/* The SACK blocks for an outgoing segment: a pending D-SACK first — sent once, as Linux's
 * tcp_options_write clears rx_opt.dsack — then the out-of-order runs, most recent first
 * (RFC 2018 §4). */
void tcp_ofo_sack_blocks(struct sock *sk, struct tcp_opts *o)
{
	if (sk->dsack_len) {
		o->sack[o->nsack++] = (struct tcp_sack_block){ .start = sk->dsack_start,
								 .end = sk->dsack_start + sk->dsack_len };
		sk->dsack_len = 0;
	}
	for (unsigned i = 0; i < sk->rx_nsack && o->nsack < TCP_NUM_SACKS; i++)
		o->sack[o->nsack++] = (struct tcp_sack_block){ .start = sk->rx_sack[i].start, .end = sk->rx_sack[i].end };
}
