/*
 * TIME_WAIT entries (Linux's net/ipv4/inet_timewait_sock.c): their memory, their place in the
 * established and bind hashes, and the death row that ends them.
 *
 * Memory.  An entry is 64 bytes (struct inet_timewait_sock).  Entries live in 2 MB chunks of
 * 32,768, mapped on huge pages; slot 0 of each chunk holds the chunk's number, so that an
 * entry's index — what the death row links with, 4 bytes instead of an 8-byte pointer — is
 * found from its address alone, and index 0 (chunk 0's header) means "none".  Freed entries
 * go on a free list through dr_next; chunks stay until the instance goes, as many as the
 * most TIME_WAIT entries it ever held needed.  net.ipv4.tcp_max_tw_buckets bounds them: past
 * it a closing connection skips TIME_WAIT (TcpExtTCPTimeWaitOverflow), as Linux's does.
 *
 * The death row.  An entry in TIME_WAIT waits TCP_TIMEWAIT_LEN (60 s) from when it was last
 * scheduled: entering TIME_WAIT, or rescheduled by a retransmitted FIN or an ACK
 * (inet_twsk_reschedule).  All those waits being equal, their row is a FIFO ordered by
 * expiry: scheduling appends, rescheduling moves to the tail, both O(1).  An orphan's entry in
 * the FIN_WAIT2 substate waits tcp_fin_time (tcp_fin_timeout, or 3.5·RTO if longer), so its
 * row is kept in order by a short walk back from the tail.  One timer, armed for the earlier
 * head, ends the entries whose time has come, each at its own millisecond.  (Linux gives each
 * entry a timer of its own; ustack's timers are 32 bytes, half an entry.)
 *
 * The port.  An entry keeps its port from bind() (inet_twsk_hashdance_schedule puts it on
 * the bucket, as Linux's tw_tb does) without a link of its own: the port counts entries by
 * address and SO_REUSEADDR/SO_REUSEPORT flags (struct tw_bind_row, in rows kept beside the
 * bucket in its page, the bucket's has_tw saying there are any), which is all
 * inet_csk_bind_conflict asks of them.  A port's rows are few: its connections share the
 * listener's address and flags.  Whether the socket had its port from connect()
 * (TW_CONNECT_BIND) decides whether the entry holds the bucket's flags narrowed (nbind).
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <stdlib.h>
#include <string.h>

#define TW_CHUNK_SHIFT 15 /* 32,768 entries of 64 bytes: 2 MB */
#define TW_CHUNK (1u << TW_CHUNK_SHIFT)
#define TW_CHUNK_BYTES ((size_t)TW_CHUNK * sizeof(struct inet_timewait_sock))

_Static_assert(sizeof(struct inet_timewait_sock) == 64, "a TIME_WAIT entry is 64 bytes");

static struct inet_timewait_sock *tw_at(const struct tcp_state_tables *t, uint32_t i)
{
	return &t->tw_chunks[i >> TW_CHUNK_SHIFT][i & (TW_CHUNK - 1)];
}

static uint32_t tw_index(const struct inet_timewait_sock *tw)
{
	const struct inet_timewait_sock *base =
		(const struct inet_timewait_sock *)((uintptr_t)tw & ~(uintptr_t)(TW_CHUNK_BYTES - 1));
	uint32_t chunk;
	memcpy(&chunk, base, sizeof(chunk)); /* slot 0: the chunk's number */
	return chunk << TW_CHUNK_SHIFT | (uint32_t)(tw - base);
}

static struct inet_timewait_sock *tw_alloc(struct tcp_state_tables *t)
{
	uint32_t i = t->tw_free;
	if (i) {
		struct inet_timewait_sock *tw = tw_at(t, i);
		t->tw_free = tw->dr_next;
		return tw;
	}
	if (!(t->tw_fresh & (TW_CHUNK - 1))) { /* the last chunk is used up (or there is none) */
		uint32_t n = t->tw_nchunks;
		if (n >= (UINT32_MAX >> TW_CHUNK_SHIFT))
			return NULL;
		struct inet_timewait_sock **c = realloc(t->tw_chunks, (n + 1) * sizeof(*c));
		if (!c)
			return NULL;
		t->tw_chunks = c;
		if (!(c[n] = vzalloc_huge(TW_CHUNK_BYTES)))
			return NULL;
		memcpy(&c[n][0], &n, sizeof(n));
		t->tw_nchunks = n + 1;
		t->tw_fresh = n << TW_CHUNK_SHIFT | 1; /* slot 0 is the header */
	}
	return tw_at(t, t->tw_fresh++);
}

static void tw_free(struct tcp_state_tables *t, struct inet_timewait_sock *tw)
{
	memset(tw, 0, sizeof(*tw));
	tw->dr_next = t->tw_free;
	t->tw_free = tw_index(tw);
}

/* In the stack's µs: expires_ms is tcp_clock_ms's, 32 bits that wrap every 49 days, so the
 * distance from now is what counts (minutes at most, unless the clock jumps weeks at once). */
uint64_t inet_twsk_expires_us(const struct ustack *st, const struct inet_timewait_sock *tw)
{
	uint64_t now_ms = st->now / 1000u;
	int32_t left = (int32_t)(tw->expires_ms - (uint32_t)now_ms);
	return (now_ms + (uint64_t)(left > 0 ? left : 0)) * 1000u;
}

/* ---- the death row: two lists, each in order of expiry ---- */

static uint32_t *dr_head(struct tcp_state_tables *t, const struct inet_timewait_sock *tw)
{
	return (tw->node.tw_flags & TW_FW2) ? &t->fw2_head : &t->tw_head;
}

static uint32_t *dr_tail(struct tcp_state_tables *t, const struct inet_timewait_sock *tw)
{
	return (tw->node.tw_flags & TW_FW2) ? &t->fw2_tail : &t->tw_tail;
}

static void dr_unlink(struct tcp_state_tables *t, struct inet_timewait_sock *tw)
{
	if (tw->dr_prev)
		tw_at(t, tw->dr_prev)->dr_next = tw->dr_next;
	else
		*dr_head(t, tw) = tw->dr_next;
	if (tw->dr_next)
		tw_at(t, tw->dr_next)->dr_prev = tw->dr_prev;
	else
		*dr_tail(t, tw) = tw->dr_prev;
	tw->dr_next = tw->dr_prev = 0;
}

/* After the last entry that goes no later.  TIME_WAIT's all wait 60 s: that is the tail.  The
 * FIN_WAIT2 substate waits max(tcp_fin_timeout, 3.5·RTO), so an entry may go before the last
 * few: the walk back is short, and bounded — past DR_WALK_MAX the entry waits its turn behind
 * later ones (late by as much as their waits are longer: only when tcp_fin_timeout was
 * lowered, or RTOs were long, with more than DR_WALK_MAX such entries waiting). */
#define DR_WALK_MAX 64
static void dr_insert(struct tcp_state_tables *t, struct inet_timewait_sock *tw)
{
	uint32_t i = tw_index(tw), after = *dr_tail(t, tw);
	for (int walk = 0; after && walk < DR_WALK_MAX; walk++) {
		struct inet_timewait_sock *o = tw_at(t, after);
		if ((int32_t)(o->expires_ms - tw->expires_ms) <= 0)
			break;
		after = o->dr_prev;
	}
	uint32_t before = after ? tw_at(t, after)->dr_next : *dr_head(t, tw);
	tw->dr_prev = after;
	tw->dr_next = before;
	if (after)
		tw_at(t, after)->dr_next = i;
	else
		*dr_head(t, tw) = i;
	if (before)
		tw_at(t, before)->dr_prev = i;
	else
		*dr_tail(t, tw) = i;
}

/* The timer follows the heads: armed for the earlier, or stopped with both rows empty. */
static void dr_arm(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	uint64_t at = UINT64_MAX;
	if (t->tw_head)
		at = inet_twsk_expires_us(st, tw_at(t, t->tw_head));
	if (t->fw2_head) {
		uint64_t f = inet_twsk_expires_us(st, tw_at(t, t->fw2_head));
		at = f < at ? f : at;
	}
	if (at == UINT64_MAX)
		timer_cancel(st, &t->tw_timer);
	else if (!timer_pending(&t->tw_timer) || timer_expires_us(&t->tw_timer) != at)
		timer_arm(st, &t->tw_timer, at);
}

/* tw_timer_handler → inet_twsk_kill: every entry whose time is over goes, silently — TIME_WAIT
 * and the FIN_WAIT2 substate alike (Linux counted it, TcpExtTW, when it came). */
static void tw_timer_fire(struct ustack *st, struct utimer *tm)
{
	(void)tm;
	struct tcp_state_tables *t = st->tcp;
	for (int row = 0; row < 2; row++) {
		uint32_t *head = row ? &t->fw2_head : &t->tw_head;
		while (*head) {
			struct inet_timewait_sock *tw = tw_at(t, *head);
			if (inet_twsk_expires_us(st, tw) > st->now)
				break;
			int state = (tw->node.tw_flags & TW_FW2) ? TCP_FIN_WAIT2 : TCP_TIME_WAIT;
			tcp_trace(st, "inet_twsk_kill", &tw->node, state, TCP_CLOSE);
			inet_twsk_deschedule_put(st, tw);
		}
	}
	dr_arm(st);
}

void inet_twsk_init(struct ustack *st)
{
	timer_init(&st->tcp->tw_timer, tw_timer_fire);
}

void inet_twsk_reschedule(struct ustack *st, struct inet_timewait_sock *tw)
{
	struct tcp_state_tables *t = st->tcp;
	dr_unlink(t, tw);
	tw->node.tw_flags &= (uint8_t)~TW_FW2; /* the FIN came: TIME_WAIT proper */
	tw->expires_ms = tcp_clock_ms(st) + TCP_TIMEWAIT_LEN_MS;
	dr_insert(t, tw);
	dr_arm(st);
}

/* ---- the bind bucket's rows ---- */

/* The port's rows: beside its bucket in the page, not in it (struct bind_bucket's has_tw) */
static struct tw_bind_row **tw_rows(const struct tcp_state_tables *t, const struct bind_bucket *b)
{
	return &t->bhash[b->port / BHASH_PAGE]->tw_rows[b->port % BHASH_PAGE];
}

static struct tw_bind_row **tw_row_find(const struct tcp_state_tables *t, const struct bind_bucket *b,
					uint32_t laddr, uint8_t flags)
{
	struct tw_bind_row **rp = tw_rows(t, b);
	for (; *rp; rp = &(*rp)->next)
		if ((*rp)->laddr == laddr && (*rp)->reuse == !!(flags & TW_REUSE) &&
		    (*rp)->reuseport == !!(flags & TW_REUSEPORT))
			break;
	return rp;
}

/* inet_bind_conflict's test against the port's TIME_WAIT entries: they never listen, so
 * SO_REUSEADDR on both sides lets bind() through; SO_REUSEPORT on both too (Linux skips the
 * owner check for a timewait socket); another specific address does. */
bool inet_twsk_bind_conflict(struct ustack *st, const struct sock *sk, const struct bind_bucket *b)
{
	if (!b->has_tw)
		return false;
	for (const struct tw_bind_row *r = *tw_rows(st->tcp, b); r; r = r->next) {
		if (sk->node.laddr && r->laddr && sk->node.laddr != r->laddr)
			continue;
		if (sk->reuseaddr && r->reuse)
			continue;
		if (sk->reuseport && r->reuseport)
			continue;
		return true;
	}
	return false;
}

/* ---- life ---- */

/*
 * inet_twsk_alloc + tcp_time_wait's copy + inet_twsk_hashdance_schedule: the entry takes the
 * socket's place in the established hash (the socket leaves it in tcp_done), holds the port,
 * and is scheduled to go in 60 s — counted TcpExtTW now, as Linux counts it.  False, with
 * nothing changed, past net.ipv4.tcp_max_tw_buckets or out of memory.
 */
bool inet_twsk_hashdance_schedule(struct ustack *st, struct sock *sk, bool fin_wait2, uint32_t timeo_ms)
{
	struct tcp_state_tables *t = st->tcp;
	struct bind_bucket *b = sk->tb;
	if (!b || t->tw_count >= (uint32_t)st->sysctl.tcp_max_tw_buckets)
		return false;
	uint8_t flags = (uint8_t)((sk->tstamp_ok ? TW_TSTAMP : 0) | (sk->ts_off ? TW_TS_OFF : 0) |
				  (sk->reuseaddr ? TW_REUSE : 0) | (sk->reuseport ? TW_REUSEPORT : 0) |
				  (sk->connect_bind ? TW_CONNECT_BIND : 0));
	uint8_t rowflags = flags; /* the bind row's key: without the substate, which changes */
	flags |= fin_wait2 ? TW_FW2 : 0;
	struct tw_bind_row **rp = tw_row_find(t, b, sk->node.laddr, rowflags);
	if (!*rp) {
		struct tw_bind_row *r = calloc(1, sizeof(*r));
		if (!r)
			return false;
		r->laddr = sk->node.laddr;
		r->reuse = sk->reuseaddr;
		r->reuseport = sk->reuseport;
		*rp = r;
		b->has_tw = 1;
	}
	struct inet_timewait_sock *tw = tw_alloc(t);
	if (!tw) {
		if (!(*rp)->count) {
			struct tw_bind_row *r = *rp;
			*rp = r->next;
			free(r);
			b->has_tw = *tw_rows(t, b) != NULL;
		}
		return false;
	}
	(*rp)->count++;
	b->nbind += !sk->connect_bind;
	tw->node.laddr = sk->node.laddr;
	tw->node.raddr = sk->node.raddr;
	tw->node.lport = sk->node.lport;
	tw->node.rport = sk->node.rport;
	tw->node.state = TCP_TIME_WAIT;
	tw->node.tw_flags = flags;
	tw->node.tw_rcv_wscale = sk->rcv_wscale;
	/* tw_tos = inet->tos, whose ECN bits follow the last segment sent (tcp_ecn_send): here
	 * our ACK of the peer's FIN, or (the FIN_WAIT2 substate) our FIN — Not-ECT, unless that
	 * FIN rode on new data, which Linux's tw would remember as ECT(0) and ustack does not */
	tw->node.tw_tos = (uint8_t)(sk->tos & ~3u);
	tw->snd_nxt = sk->snd_nxt;
	tw->rcv_nxt = sk->rcv_nxt;
	/* tcp_receive_window: what is left of the window we advertised */
	int32_t wnd = (int32_t)(sk->rcv_adv - sk->rcv_nxt);
	uint32_t field = (wnd > 0 ? (uint32_t)wnd : 0u) >> sk->rcv_wscale;
	tw->rcv_wnd = (uint16_t)(field < 65535u ? field : 65535u);
	tw->ts_recent = sk->ts_recent;
	/* the stamp's age, carried over to seconds of the 64-bit clock (the ms one wraps) */
	uint32_t age_ms = tcp_clock_ms(st) - sk->ts_recent_stamp_ms;
	tw->ts_recent_stamp = (uint16_t)((st->now / 1000u - age_ms) / 1000u);
	tw->last_oow_ack_ms = 0;
	tw->expires_ms = tcp_clock_ms(st) + timeo_ms;
	inet_ehash_insert(st, &tw->node);
	dr_insert(t, tw);
	t->tw_count++;
	/* __inet_twsk_schedule: a wait of 4 s or less is a kill, not a TIME_WAIT */
	if (timeo_ms <= 4000u)
		MIB_INC(st, TcpExtTWKilled);
	else
		MIB_INC(st, TcpExtTW);
	dr_arm(st);
	return true;
}

/* inet_twsk_deschedule_put → inet_twsk_kill: off the death row, out of the established hash,
 * its count off the port (the bucket goes with its last user), its memory back to the pool. */
void inet_twsk_deschedule_put(struct ustack *st, struct inet_timewait_sock *tw)
{
	struct tcp_state_tables *t = st->tcp;
	bool was_head = *dr_head(t, tw) == tw_index(tw);
	dr_unlink(t, tw);
	inet_ehash_remove(st, &tw->node);
	struct bind_bucket *b = inet_bind_bucket_find(st, tw->node.lport);
	if (b) {
		struct tw_bind_row **rp = tw_row_find(t, b, tw->node.laddr, (uint8_t)(tw->node.tw_flags & ~TW_FW2));
		if (*rp && !--(*rp)->count) {
			struct tw_bind_row *r = *rp;
			*rp = r->next;
			free(r);
			b->has_tw = *tw_rows(t, b) != NULL;
		}
		b->nbind -= !(tw->node.tw_flags & TW_CONNECT_BIND);
		inet_bind_bucket_release(st, b);
	}
	t->tw_count--;
	tw_free(t, tw);
	if (was_head)
		dr_arm(st);
}

/* At teardown: the entries go with their chunks; the rows with the buckets (tables). */
void inet_twsk_purge(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	timer_cancel(st, &t->tw_timer);
	for (uint32_t c = 0; c < t->tw_nchunks; c++)
		vfree_huge(t->tw_chunks[c], TW_CHUNK_BYTES);
	free(t->tw_chunks);
	t->tw_chunks = NULL;
	t->tw_nchunks = t->tw_free = t->tw_fresh = t->tw_count = 0;
	t->tw_head = t->tw_tail = t->fw2_head = t->fw2_tail = 0;
}

/* tcptw->tw_ts_offset, from the same keyed hash the connection used (tcp/isn.c) */
uint32_t tcp_tw_ts_off(struct ustack *st, const struct inet_timewait_sock *tw)
{
	if (!(tw->node.tw_flags & TW_TS_OFF))
		return 0;
	uint32_t key[3] = { tw->node.laddr, tw->node.raddr, (uint32_t)tw->node.lport << 16 | tw->node.rport };
	return (uint32_t)(secret_hash(&st->secrets, SECRET_ISN, key, sizeof(key)) >> 32);
}
