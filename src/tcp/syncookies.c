/*
 * SYN cookies (Linux's net/ipv4/syncookies.c; D. J. Bernstein's idea, RFC 4987 §3.6).
 *
 * Why: a listener keeps a request socket per half-open connection, and its SYN queue is
 * bounded by the listen backlog.  A flood of SYNs from forged addresses fills it, and every
 * legitimate SYN after that would be dropped.  With cookies, a SYN that finds the queue full
 * (net.ipv4.tcp_syncookies = 1), or any SYN (= 2), is answered without keeping anything: the
 * little that must survive until the final ACK is encoded in our ISN, which the peer echoes
 * back in that ACK, and a keyed hash makes it unforgeable.  The ACK then creates the child
 * straight away (cookie_v4_check → tcp_get_cookie_sock), so the flood costs CPU per SYN but no
 * memory at all.
 *
 * The ISN (secure_tcp_syn_cookie), with count the minutes of the stack's clock:
 *
 *     H0(saddr, daddr, sport, dport, 0) + peer's ISN + (count << 24)
 *         + ((H1(saddr, daddr, sport, dport, count) + mss index) & 0xffffff)
 *
 * H0 and H1 are SipHash-2-4 under two per-stack keys from the CSPRNG, over the four 32-bit
 * words (addresses and ports as on the wire, count) as Linux's siphash_4u32.  The top 8 bits
 * carry the minute, so a cookie older than MAX_SYNCOOKIE_AGE (2) counter ticks is refused; the
 * low 24 bits carry the MSS as an index into msstab (536, 1300, 1440, 1460 — the peer's MSS is
 * rounded down to one of them).  A forger must guess H1's low 24 bits for a 4-tuple: 1 in 4
 * million per try, and H0 moves the whole value out of reach of an off-path guess at the ISN.
 *
 * What is traded away: the request socket would have remembered window scale and
 * SACK-permitted.  With timestamps on, our SYN-ACK's TSval carries them in its 6 low bits
 * (cookie_init_timestamp: wscale in bits 0-3, 0xf for none; SACK in bit 4; ECN in bit 5,
 * which ustack never sets), rounded down so that it never runs ahead of the clock, and the
 * peer echoes them in every TSecr.  Without timestamps they are lost: the SYN-ACK offers none
 * of the three, as Linux's tcp_clear_options does, and the connection runs without them.
 *
 * When cookies are checked: an ACK reaching a listener is taken for a cookie only if that
 * listener sent one within TCP_SYNCOOKIE_VALID (2 minutes; tcp_synq_no_recent_overflow);
 * otherwise, or with a bad cookie (TcpExtSyncookiesFailed), the ACK finds no connection and
 * is answered with a RST, as Linux answers it.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define COOKIEBITS 24 /* the upper 8 bits hold the counter */
#define COOKIEMASK ((1u << COOKIEBITS) - 1)
#define MAX_SYNCOOKIE_AGE 2
#define TCP_SYNCOOKIE_PERIOD_US (60u * 1000000u)
#define TCP_SYNCOOKIE_VALID_MS (MAX_SYNCOOKIE_AGE * 60u * 1000u)

/* cookie_init_timestamp's option bits in the TSval */
#define TS_OPT_WSCALE_MASK 0xfu
#define TS_OPT_SACK (1u << 4)
#define TS_OPT_ECN (1u << 5)
#define TSBITS 6

/* MSS values (the 2011 survey Linux cites): the peer's MSS is rounded down to one of these */
static const uint16_t msstab[] = { 536, 1300, 1440, 1460 };
#define NMSS (sizeof(msstab) / sizeof(msstab[0]))

/* tcp_cookie_time: minutes of the stack's clock */
static uint32_t tcp_cookie_time(const struct ustack *st)
{
	return (uint32_t)(st->now / TCP_SYNCOOKIE_PERIOD_US);
}

/* cookie_hash: siphash_4u32(saddr, daddr, sport << 16 | dport, count) under key c; addresses
 * and ports as they are on the wire (network order), as Linux hashes them. */
static uint32_t cookie_hash(const struct ustack *st, uint32_t saddr, uint32_t daddr, uint16_t sport,
			    uint16_t dport, uint32_t count, int c)
{
	uint32_t w[4] = { htonl(saddr), htonl(daddr), (uint32_t)htons(sport) << 16 | htons(dport), count };
	uint8_t msg[16];
	for (int i = 0; i < 4; i++) /* little-endian words, as siphash_4u32 packs them */
		for (int b = 0; b < 4; b++)
			msg[i * 4 + b] = (uint8_t)(w[i] >> (8 * b));
	return (uint32_t)secret_hash(&st->secrets, c ? SECRET_SYNCOOKIE1 : SECRET_SYNCOOKIE0, msg, sizeof(msg));
}

static uint32_t secure_tcp_syn_cookie(const struct ustack *st, uint32_t saddr, uint32_t daddr, uint16_t sport,
				      uint16_t dport, uint32_t sseq, uint32_t data)
{
	uint32_t count = tcp_cookie_time(st);
	return cookie_hash(st, saddr, daddr, sport, dport, 0, 0) + sseq + (count << COOKIEBITS) +
	       ((cookie_hash(st, saddr, daddr, sport, dport, count, 1) + data) & COOKIEMASK);
}

/* check_tcp_syn_cookie: the data (MSS index) of a cookie, or out of range if it is bad or
 * older than MAX_SYNCOOKIE_AGE counter ticks. */
static uint32_t check_tcp_syn_cookie(const struct ustack *st, uint32_t cookie, uint32_t saddr, uint32_t daddr,
				     uint16_t sport, uint16_t dport, uint32_t sseq)
{
	uint32_t count = tcp_cookie_time(st);
	cookie -= cookie_hash(st, saddr, daddr, sport, dport, 0, 0) + sseq;
	uint32_t diff = (count - (cookie >> COOKIEBITS)) & (UINT32_MAX >> COOKIEBITS);
	if (diff >= MAX_SYNCOOKIE_AGE)
		return UINT32_MAX;
	return (cookie - cookie_hash(st, saddr, daddr, sport, dport, count - diff, 1)) & COOKIEMASK;
}

/*
 * tcp_synq_overflow: the listener sent a cookie; remember when (at most once a second, as
 * Linux writes it).  0 means never, so a stack whose clock starts at 0 does not take its first
 * two minutes for a flood.
 */
static void tcp_synq_overflow(struct ustack *st, struct sock *lsk)
{
	uint32_t now = tcp_clock_ms(st);
	uint32_t last = lsk->synq_overflow_ms;
	if (last && now - last <= 1000u)
		return;
	now = now ? now : 1;
	lsk->synq_overflow_ms = now;
	/* a SO_REUSEPORT group shares the stamp (Linux keeps it in the group, synq_overflow_ts):
	 * the cookie ACK may reach another member once the group has changed */
	if (lsk->reuseport)
		for (struct sock *o = st->tcp->lhash[lsk->node.lport & (LHASH_SIZE - 1)]; o; o = o->lnext)
			if (o->reuseport && o->node.lport == lsk->node.lport && o->node.laddr == lsk->node.laddr)
				o->synq_overflow_ms = now;
}

/* tcp_synq_no_recent_overflow: no cookie went out in the last TCP_SYNCOOKIE_VALID (with
 * Linux's one-second slack below the stamp) — an ACK now cannot be answering one. */
static bool tcp_synq_no_recent_overflow(struct ustack *st, const struct sock *lsk)
{
	uint32_t last = lsk->synq_overflow_ms;
	if (!last)
		return true;
	uint32_t now = tcp_clock_ms(st), lo = last - 1000u;
	return !(TCP_SYNCOOKIE_VALID_MS + 1000u >= now - lo); /* !time_between32(now, lo, last + VALID) */
}

/*
 * tcp_syn_flood_action: the SYN queue is full (or tcp_syncookies = 2).  Cookies if they are
 * on (TcpExtTCPReqQFullDoCookies), else the SYN is dropped (TcpExtTCPReqQFullDrop); the first
 * time for a listener, unless cookies are always on, the kernel's log line — here a trace
 * event of kind USTACK_TRACE_LOG, which the CLI prints on stderr.
 */
bool tcp_syn_flood_action(struct ustack *st, struct sock *lsk)
{
	int syncookies = st->sysctl.tcp_syncookies;
	bool want_cookie = syncookies != 0;
	if (want_cookie)
		MIB_INC(st, TcpExtTCPReqQFullDoCookies);
	else
		MIB_INC(st, TcpExtTCPReqQFullDrop);
	if (!lsk->synflood_warned && syncookies != 2) {
		lsk->synflood_warned = true;
		char msg[128];
		struct in_addr a = { htonl(lsk->node.laddr) };
		snprintf(msg, sizeof(msg), "TCP: Possible SYN flooding on port %s:%u. %s.", inet_ntoa(a),
			 lsk->node.lport, want_cookie ? "Sending cookies" : "Dropping request");
		trace_emit(st, USTACK_TRACE_LOG, "tcp_syn_flood_action", 0, NULL, 0, msg);
	}
	return want_cookie;
}

/* cookie_v4_init_sequence (with cookie_init_sequence's bookkeeping): the ISN of a cookie
 * SYN-ACK; *mss is rounded down to the table. */
uint32_t cookie_v4_init_sequence(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
				 const struct tcp_repr *th, uint16_t *mss)
{
	tcp_synq_overflow(st, lsk);
	MIB_INC(st, TcpExtSyncookiesSent);
	unsigned idx = NMSS - 1;
	while (idx && *mss < msstab[idx])
		idx--;
	*mss = msstab[idx];
	return secure_tcp_syn_cookie(st, ip->saddr, ip->daddr, th->sport, th->dport, th->seq, idx);
}

/* cookie_init_timestamp: the TSval (before ts_off) of a cookie SYN-ACK, in ms, carrying the
 * options the request socket would have kept; never ahead of the clock. */
uint32_t cookie_init_timestamp(const struct request_sock *req, uint32_t now_ms)
{
	uint32_t options = req->wscale_ok ? req->snd_wscale : TS_OPT_WSCALE_MASK;
	if (req->sack_ok)
		options |= TS_OPT_SACK;
	if (req->ecn_ok)
		options |= TS_OPT_ECN;
	uint32_t ts = (now_ms >> TSBITS) << TSBITS | options;
	if (ts > now_ms)
		ts -= 1u << TSBITS;
	return ts;
}

/* cookie_timestamp_decode: the options a cookie ACK's TSecr carries back, if the sysctls
 * still allow them; false when they do not (the ACK is then refused). */
static bool cookie_timestamp_decode(struct ustack *st, struct request_sock *req, const struct tcp_repr *th,
				    uint32_t tsecr)
{
	req->tstamp_ok = req->sack_ok = req->wscale_ok = req->ecn_ok = 0;
	req->snd_wscale = 0;
	if (!th->opt.ts_ok)
		return true; /* no timestamps: no SACK, no window scaling (tcp_clear_options) */
	if (!st->sysctl.tcp_timestamps)
		return false;
	req->tstamp_ok = 1;
	req->ecn_ok = (tsecr & TS_OPT_ECN) && st->sysctl.tcp_ecn; /* cookie_ecn_ok */
	req->sack_ok = !!(tsecr & TS_OPT_SACK);
	if (req->sack_ok && !st->sysctl.tcp_sack)
		return false;
	if ((tsecr & TS_OPT_WSCALE_MASK) == TS_OPT_WSCALE_MASK)
		return true;
	req->wscale_ok = 1;
	req->snd_wscale = (uint8_t)(tsecr & TS_OPT_WSCALE_MASK);
	return st->sysctl.tcp_window_scaling != 0;
}

/*
 * cookie_v4_check: an ACK (no SYN) for a listener.  Returns the listener when the segment is
 * not a cookie ACK, or a bad one — it then goes on as any segment for a listener does (an ACK
 * gets a RST); the child when the cookie was good (the rest of the segment is the child's,
 * tcp_child_process); NULL when it was good but the child could not be made (a full accept
 * queue: dropped, and the peer will retransmit).
 */
struct sock *cookie_v4_check(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
			     const struct tcp_repr *th)
{
	if (!st->sysctl.tcp_syncookies || !(th->flags & TCPHDR_ACK) || (th->flags & TCPHDR_RST))
		return lsk;
	/* cookie_tcp_check */
	if (tcp_synq_no_recent_overflow(st, lsk))
		return lsk;
	uint32_t idx = check_tcp_syn_cookie(st, th->ack - 1, ip->saddr, ip->daddr, th->sport, th->dport, th->seq - 1);
	if (idx >= NMSS) {
		MIB_INC(st, TcpExtSyncookiesFailed);
		return lsk;
	}
	MIB_INC(st, TcpExtSyncookiesRecv);
	/* cookie_tcp_reqsk_alloc: the request socket the SYN would have made, on the stack */
	struct request_sock req;
	memset(&req, 0, sizeof(req));
	req.node.laddr = ip->daddr;
	req.node.raddr = ip->saddr;
	req.node.lport = th->dport;
	req.node.rport = th->sport;
	req.node.state = TCP_NEW_SYN_RECV;
	req.listener = lsk;
	req.cookie = 1;
	req.mss = msstab[idx];
	req.snt_isn = th->ack - 1;
	req.rcv_isn = th->seq - 1;
	uint32_t tsecr = 0;
	if (th->opt.ts_ok && th->opt.tsecr) {
		req.ts_off = secure_tcp_seq_and_ts_off(st, ip->daddr, ip->saddr, th->dport, th->sport).ts_off;
		tsecr = th->opt.tsecr - req.ts_off;
	}
	if (!cookie_timestamp_decode(st, &req, th, tsecr))
		return lsk;
	req.ts_recent = req.tstamp_ok ? th->opt.tsval : 0;
	/* redo what the SYN-ACK did: the window and its scale, from the (rounded) MSS */
	tcp_select_initial_window(st, (uint32_t)lsk->rcvbuf / 2, req.mss, &req.rcv_wnd, &req.rcv_wscale,
				  req.wscale_ok, tcp_rcvbuf_clamp(lsk));
	/* tcp_get_cookie_sock → tcp_v4_syn_recv_sock, whose accept-queue check drops the ACK */
	if (sk_acceptq_is_full(lsk)) {
		MIB_INC(st, TcpExtListenOverflows);
		MIB_INC(st, TcpExtListenDrops);
		trace_drop(st, "TCP_LISTEN_OVERFLOW", 0);
		return NULL;
	}
	struct sock *child = tcp_v4_syn_recv_sock(st, &req, th);
	if (!child) {
		MIB_INC(st, TcpExtListenDrops);
		return NULL;
	}
	tcp_trace(st, "tcp_get_cookie_sock", &child->node, TCP_LISTEN, TCP_SYN_RECV);
	return tcp_child_establish(st, lsk, child) < 0 ? NULL : child;
}
