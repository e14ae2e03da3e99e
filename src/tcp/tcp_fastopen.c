/*
 * TCP Fast Open (RFC 7413), as Linux's net/ipv4/tcp_fastopen.c has it: data in the SYN, readable
 * by the server's application one round trip before a normal handshake would deliver it.
 *
 * Why a cookie: a server that accepted data in any SYN would do work (and, for a request, send
 * a reply) for a forged source address.  So the server first hands a client a cookie — a MAC of
 * the client's and server's addresses under a server secret (SipHash, keyed by
 * net.ipv4.tcp_fastopen_key or the listener's TCP_FASTOPEN_KEY, the backup key still accepted)
 * — in the SYN-ACK that answers an empty Fast Open option; later SYNs carry the cookie with
 * data, and a SYN whose cookie checks out gets a full child socket at once (state SYN_RECV, in
 * the accept queue, its data readable) and a SYN-ACK that acknowledges the data.  An invalid
 * cookie costs the client only the optimisation: the SYN-ACK acknowledges the ISN alone and
 * carries a fresh cookie, and the data is sent again after the handshake.
 *
 * Server side:  tcp_try_fastopen (from tcp_conn_request), tcp_fastopen_create_child, the
 *               listener's own queue bound (TCP_FASTOPEN's value; tcp_fastopen_queue_check),
 *               and the child's life before its final ACK: tcp_fastopen_check_req,
 *               tcp_fastopen_synack_timer, tcp_rcv_synrecv_state_fastopen.
 * Client side:  the per-destination cookie and MSS cache (Linux keeps it in tcp_metrics),
 *               tcp_fastopen_cookie_check, tcp_fastopen_defer_connect (TCP_FASTOPEN_CONNECT),
 *               and blackhole detection — a middlebox that drops SYNs with data must not cost
 *               every later connection a timeout, so active Fast Open pauses after one
 *               (net.ipv4.tcp_fastopen_blackhole_timeout_sec, doubling up to 64 times).
 *               The SYN with data itself is tcp_output.c's tcp_send_syn_data, and the answer to
 *               it tcp_input.c's tcp_rcv_fastopen_synack, where Linux has them.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"
#include <ustack/diag.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys and cookies ------------------------------------------------------------------ */

/* tcp_fastopen_init_key_once: the first listener to enable Fast Open gives the stack a random
 * key if none was written (from the stack's CSPRNG secrets, as Linux's get_random_bytes). */
void tcp_fastopen_init_key_once(struct ustack *st)
{
	if (st->sysctl.tcp_fastopen_nkeys)
		return;
	memcpy(st->sysctl.tcp_fastopen_key[0], st->secrets.key[SECRET_FASTOPEN], 16);
	st->sysctl.tcp_fastopen_nkeys = 1;
}

/* tcp_fastopen_get_ctx: the listener's own keys if TCP_FASTOPEN_KEY set some, else the
 * stack's. */
static const uint8_t (*tfo_keys(const struct ustack *st, const struct sock *lsk, int *n))[16]
{
	if (lsk->accept_queue.fastopenq && lsk->accept_queue.fastopenq->nkeys) {
		*n = lsk->accept_queue.fastopenq->nkeys;
		return (const uint8_t(*)[16])lsk->accept_queue.fastopenq->key;
	}
	*n = st->sysctl.tcp_fastopen_nkeys;
	return (const uint8_t(*)[16])st->sysctl.tcp_fastopen_key;
}

/* __tcp_fastopen_cookie_gen_cipher: SipHash of the SYN's source and destination addresses, as
 * they sit in its IP header, the 8 bytes little-endian. */
static void cookie_gen(const uint8_t key[16], uint32_t saddr, uint32_t daddr, struct tcp_fastopen_cookie *foc)
{
	uint8_t msg[8] = {
		(uint8_t)(saddr >> 24), (uint8_t)(saddr >> 16), (uint8_t)(saddr >> 8), (uint8_t)saddr,
		(uint8_t)(daddr >> 24), (uint8_t)(daddr >> 16), (uint8_t)(daddr >> 8), (uint8_t)daddr,
	};
	siphash24_bytes(foc->val, msg, sizeof(msg), key);
	foc->len = TCP_FASTOPEN_COOKIE_SIZE;
}

static bool cookie_match(const struct tcp_fastopen_cookie *a, const struct tcp_fastopen_cookie *b)
{
	return a->len == TCP_FASTOPEN_COOKIE_SIZE && a->len == b->len && !memcmp(a->val, b->val, (size_t)a->len);
}

/* tcp_fastopen_cookie_gen_check: 0 if the client's cookie is no cookie of ours, 1 if made
 * with the primary key, 2 with the backup; *valid gets the primary key's cookie either way
 * (len -1 when there is no key at all). */
static int cookie_gen_check(const struct ustack *st, const struct sock *lsk, const struct ipv4_repr *ip,
			    const struct tcp_fastopen_cookie *orig, struct tcp_fastopen_cookie *valid)
{
	int n;
	const uint8_t(*keys)[16] = tfo_keys(st, lsk, &n);
	valid->len = -1;
	for (int i = 0; i < n; i++) {
		struct tcp_fastopen_cookie c;
		cookie_gen(keys[i], ip->saddr, ip->daddr, &c);
		if (!i) {
			c.exp = valid->exp;
			*valid = c;
		}
		if (orig && cookie_match(&c, orig))
			return i + 1;
	}
	return 0;
}

void tcp_fastopen_cookie_from_opts(const struct tcp_opts *o, struct tcp_fastopen_cookie *foc)
{
	foc->len = o->fastopen ? (int8_t)o->cookie_len : -1;
	foc->exp = o->fastopen && o->fastopen_exp;
	if (o->fastopen)
		memcpy(foc->val, o->cookie, o->cookie_len);
}

void tcp_fastopen_cookie_to_opts(const struct tcp_fastopen_cookie *foc, struct tcp_opts *o)
{
	if (!foc || foc->len < 0)
		return;
	o->fastopen = true;
	o->fastopen_exp = foc->exp;
	o->cookie_len = (uint8_t)foc->len;
	memcpy(o->cookie, foc->val, (size_t)foc->len);
}

/* ---- the listener's queue and keys ----------------------------------------------------- */

static struct fastopen_queue *fastopenq_get(struct sock *lsk)
{
	if (!lsk->accept_queue.fastopenq)
		lsk->accept_queue.fastopenq = calloc(1, sizeof(*lsk->accept_queue.fastopenq));
	return lsk->accept_queue.fastopenq;
}

/* fastopen_queue_tune: TCP_FASTOPEN's value (or the listen backlog, with the sysctl's 0x400)
 * bounds the children in SYN_RECV, capped at net.core.somaxconn. */
int tcp_fastopen_queue_tune(struct ustack *st, struct sock *lsk, int backlog)
{
	struct fastopen_queue *q = fastopenq_get(lsk);
	if (!q)
		return -ENOMEM;
	unsigned somax = (unsigned)st->sysctl.somaxconn;
	q->max_qlen = (int)((unsigned)backlog < somax ? (unsigned)backlog : somax);
	return 0;
}

void tcp_fastopen_queue_free(struct sock *lsk)
{
	struct fastopen_queue *q = lsk->accept_queue.fastopenq;
	if (!q)
		return;
	while (q->rst_head) {
		struct tfo_rst *r = q->rst_head;
		q->rst_head = r->next;
		free(r);
	}
	free(q);
	lsk->accept_queue.fastopenq = NULL;
}

/* TCP_FASTOPEN_KEY: 16 bytes (a primary key) or 32 (primary and backup), raw SipHash keys. */
int tcp_fastopen_set_key(struct sock *lsk, const uint8_t *key, size_t len)
{
	if (len != 16 && len != 32)
		return -EINVAL;
	struct fastopen_queue *q = fastopenq_get(lsk);
	if (!q)
		return -ENOMEM;
	memcpy(q->key, key, len);
	q->nkeys = (int)(len / 16);
	return 0;
}

size_t tcp_fastopen_get_key(const struct sock *lsk, uint8_t out[32])
{
	if (!lsk->accept_queue.fastopenq || !lsk->accept_queue.fastopenq->nkeys)
		return 0;
	memcpy(out, lsk->accept_queue.fastopenq->key, (size_t)lsk->accept_queue.fastopenq->nkeys * 16);
	return (size_t)lsk->accept_queue.fastopenq->nkeys * 16;
}

/*
 * tcp_fastopen_queue_check: is there room for another child in SYN_RECV?  Before the cookie is
 * even computed, so that a flood of Fast Open SYNs past the limit costs no hashing.  Children
 * the peer reset keep their place for 60 s (reqsk_fastopen_remove), so a client cannot free
 * the queue with a RST and fill it again at once; the oldest such place whose time is up is
 * reused.
 */
static bool tcp_fastopen_queue_check(struct ustack *st, struct sock *lsk)
{
	struct fastopen_queue *q = lsk->accept_queue.fastopenq;
	if (!q || !q->max_qlen)
		return false;
	if (q->qlen >= q->max_qlen) {
		struct tfo_rst *r = q->rst_head;
		if (!r || r->expires > st->now) {
			MIB_INC(st, TcpExtTCPFastOpenListenOverflow);
			return false;
		}
		q->rst_head = r->next;
		if (!q->rst_head)
			q->rst_tail = NULL;
		free(r);
		q->qlen--;
	}
	return true;
}

/* tcp_fastopen_no_cookie: Fast Open without a cookie, by the sysctl's bit or the socket's
 * TCP_FASTOPEN_NO_COOKIE. */
static bool tcp_fastopen_no_cookie(const struct ustack *st, const struct sock *sk, int flag)
{
	return (st->sysctl.tcp_fastopen & flag) || sk->fastopen_no_cookie;
}

/* ---- the server: a child from the SYN ---------------------------------------------------- */

/*
 * tcp_fastopen_create_child: the full socket the final ACK would have built, built now from the
 * SYN.  It starts in SYN_RECV holding the SYN's data, its retransmission timer resending the
 * SYN-ACK; it counts in the listener's Fast Open queue (and holds the listener) until the final
 * ACK or its end (reqsk_fastopen_remove).
 */
static struct sock *tcp_fastopen_create_child(struct ustack *st, struct sock *lsk, const struct tcp_repr *th,
					      struct request_sock *req)
{
	struct ustack_route_result rt;
	uint16_t advmss;
	if (tcp_openreq_init_rwin(st, req, &rt, &advmss) < 0)
		return NULL;
	struct sock *sk = tcp_v4_syn_recv_sock(st, req, th);
	if (!sk)
		return NULL;
	if (tcp_data_init(st, sk) < 0 || (th->plen && tcp_rcv_ring(st, sk) < 0)) {
		sk_free(st, sk);
		return NULL;
	}
	/* no SYN-ACK has left yet, so tcp_v4_syn_recv_sock's sample is none: the final ACK
	 * takes it (tcp_rcv_synrecv_state_fastopen) */
	sk->srtt_us = sk->rttvar_us = sk->rtt_min_us = 0;
	sk->rto_ms = TCP_TIMEOUT_INIT_MS;
	lsk->accept_queue.fastopenq->qlen++;
	sk->fastopen_rsk = lsk;
	sk_hold(lsk);
	/* RFC 7323 §2.2: the window of a SYN is never scaled */
	sk->snd_wnd = sk->max_window = th->window;
	/* the SYN-ACK leaves now: its time is the RTT's start (tcp_synack_rtt_meas) */
	sk->retrans_stamp = st->now;
	sk->retransmits = 0;
	timer_arm(st, &sk->timers.retransmit, st->now + (uint64_t)TCP_TIMEOUT_INIT_MS * 1000u);
	/* tcp_fastopen_add_skb: the SYN's data, in order, ready for the application.  (A FIN in
	 * the SYN is left for the peer to send again: rare, and harmless to wait for.) */
	if (th->plen) {
		uint32_t n = tcp_buf_push(&sk->rcvq, th->payload, (uint32_t)th->plen);
		sk->rcv_nxt += n;
		sk->bytes_received += n;
		sk->syn_data_acked = 1;
	}
	sk->rcv_adv = sk->rcv_nxt + sk->rcv_wnd;
	tcp_trace(st, "tcp_fastopen_create_child", &sk->node, TCP_LISTEN, TCP_SYN_RECV);
	return sk;
}

/*
 * tcp_try_fastopen: the listener's answer to the Fast Open part of a SYN.  Returns the child
 * when the SYN's cookie is good (or none is required) and the listener's queue has room; else
 * NULL, with *foc what the SYN-ACK is to carry: a fresh cookie in the format the client used
 * (for a request, or an invalid cookie), or nothing (len -1).
 */
struct sock *tcp_try_fastopen(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
			      const struct tcp_repr *th, struct request_sock *req,
			      struct tcp_fastopen_cookie *foc)
{
	bool syn_data = th->plen > 0;
	struct tcp_fastopen_cookie valid = { .len = -1, .exp = foc->exp };
	int ret = 0;
	if (foc->len == 0) /* the client asks for a cookie */
		MIB_INC(st, TcpExtTCPFastOpenCookieReqd);
	if (!((st->sysctl.tcp_fastopen & TFO_SERVER_ENABLE) && (syn_data || foc->len >= 0) &&
	      tcp_fastopen_queue_check(st, lsk))) {
		foc->len = -1;
		return NULL;
	}
	if (tcp_fastopen_no_cookie(st, lsk, TFO_SERVER_COOKIE_NOT_REQD)) {
		ret = 1;
	} else if (foc->len == 0) {
		cookie_gen_check(st, lsk, ip, NULL, &valid);
	} else if (foc->len > 0) {
		ret = cookie_gen_check(st, lsk, ip, foc, &valid);
		if (!ret)
			MIB_INC(st, TcpExtTCPFastOpenPassiveFail);
	}
	if (ret) {
		struct sock *child = tcp_fastopen_create_child(st, lsk, th, req);
		if (child) {
			if (ret == 2) { /* the backup key's cookie: hand out the primary's */
				*foc = valid;
				MIB_INC(st, TcpExtTCPFastOpenPassiveAltKey);
			} else {
				foc->len = -1;
			}
			MIB_INC(st, TcpExtTCPFastOpenPassive);
			child->syn_fastopen_child = 1;
			return child;
		}
		MIB_INC(st, TcpExtTCPFastOpenPassiveFail);
	}
	*foc = valid;
	return NULL;
}

/*
 * reqsk_fastopen_remove: the child leaves SYN_RECV (its final ACK came) or ends.  Its place in
 * the listener's Fast Open queue is freed — unless the peer reset it while the listener still
 * listens: then the place stays taken for 60 s (see tcp_fastopen_queue_check).
 */
void reqsk_fastopen_remove(struct ustack *st, struct sock *sk, bool reset)
{
	struct sock *lsk = sk->fastopen_rsk;
	if (!lsk)
		return;
	sk->fastopen_rsk = NULL;
	struct fastopen_queue *q = lsk->accept_queue.fastopenq;
	struct tfo_rst *r = reset && lsk->node.state == TCP_LISTEN ? malloc(sizeof(*r)) : NULL;
	if (r) {
		r->next = NULL;
		r->expires = st->now + (uint64_t)TCP_TIMEWAIT_LEN_MS * 1000u;
		if (q->rst_tail)
			q->rst_tail->next = r;
		else
			q->rst_head = r;
		q->rst_tail = r;
	} else {
		q->qlen--;
	}
	sk_put(st, lsk);
}

/*
 * tcp_check_req with fastopen = true: a segment for a Fast Open child still in SYN_RECV goes
 * through the request socket's checks first.  The SYN again: our SYN-ACK was lost, resend it.
 * Outside the window: an ACK.  A SYN in the window: a RST for it, but the child lives — a
 * forged SYN must not kill a connection that has data.  A RST in the window resets the child.
 * No ACK: dropped.  True when the segment goes on to the state machine.
 */
bool tcp_fastopen_check_req(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			    const struct tcp_repr *th)
{
	tcp_trace(st, "tcp_check_req", &sk->node, TCP_SYN_RECV, TCP_SYN_RECV);
	if (th->seq == sk->irs && (th->flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST)) == TCPHDR_SYN) {
		if (!tcp_oow_rate_limited(st, sk, th, MIB_TcpExtTCPACKSkippedSynRecv)) {
			MIB_INC(st, TcpRetransSegs);
			MIB_INC(st, TcpExtTCPSynRetrans);
			sk->total_retrans++;
			tcp_rtx_synack(st, sk);
		}
		return false;
	}
	uint32_t end_seq = th->seq + (uint32_t)th->plen + !!(th->flags & TCPHDR_SYN) + !!(th->flags & TCPHDR_FIN);
	uint32_t rcv_nxt = sk->rcv_nxt, wnd = sk->rcv_wnd;
	bool in_window = th->seq == rcv_nxt || (after(end_seq, rcv_nxt) && before(th->seq, rcv_nxt + wnd)) ||
			 (th->seq == rcv_nxt + wnd && th->seq == end_seq);
	if (!in_window) {
		if (!(th->flags & TCPHDR_RST) && !tcp_oow_rate_limited(st, sk, th, MIB_TcpExtTCPACKSkippedSynRecv))
			tcp_send_ack(st, sk);
		return false;
	}
	if (th->flags & (TCPHDR_RST | TCPHDR_SYN)) {
		MIB_INC(st, TcpAttemptFails);
		if (!(th->flags & TCPHDR_RST)) {
			tcp_v4_send_reset(st, ip, th);
		} else {
			reqsk_fastopen_remove(st, sk, true);
			tcp_done(st, sk, ECONNRESET);
		}
		return false;
	}
	return (th->flags & TCPHDR_ACK) != 0;
}

/*
 * tcp_rcv_synrecv_state_fastopen: the final ACK came.  The SYN-ACK timer's count starts over,
 * the child leaves the listener's Fast Open queue, and the retransmission timer goes back to
 * the data the child may have sent meanwhile.
 */
void tcp_rcv_synrecv_state_fastopen(struct ustack *st, struct sock *sk)
{
	/* tcp_synack_rtt_meas: the SYN-ACK's round trip, unless it was resent (Karn) */
	if (!sk->srtt_us && !sk->retransmits)
		tcp_rtt_estimator(sk, (uint32_t)(st->now - sk->retrans_stamp));
	sk->retransmits = 0;
	reqsk_fastopen_remove(st, sk, false);
	if (sk->snd_max != sk->snd_una)
		tcp_rearm_rto(st, sk);
	else
		timer_cancel(st, &sk->timers.retransmit);
}

/*
 * tcp_fastopen_synack_timer: the child's SYN-ACK again, backing off from 1 s, one more time
 * than a request socket would try (net.ipv4.tcp_synack_retries + 1, or TCP_SYNCNT): once the
 * child may have been accepted, giving up too early would cost an application its connection.
 */
void tcp_fastopen_synack_timer(struct ustack *st, struct sock *sk)
{
	unsigned max = sk->syn_retries ? sk->syn_retries : (unsigned)st->sysctl.tcp_synack_retries + 1;
	if (sk->retransmits >= max) {
		tcp_trace(st, "tcp_write_err", &sk->node, sk->node.state, TCP_CLOSE);
		tcp_done(st, sk, sk->soft_err ? sk->soft_err : ETIMEDOUT);
		return;
	}
	if (sk->retransmits == 1) { /* tcp_enter_loss after a second timeout */
		sk->ssthresh = sk->ca_ops->ssthresh(st, sk);
		sk->cwnd = 1;
		if (sk->ca_ops->set_loss)
			sk->ca_ops->set_loss(st, sk);
	}
	MIB_INC(st, TcpRetransSegs);
	MIB_INC(st, TcpExtTCPSynRetrans);
	sk->total_retrans++;
	tcp_rtx_synack(st, sk);
	sk->retransmits++;
	sk->total_rto++;
	unsigned n = sk->retransmits < 8 ? sk->retransmits : 8;
	uint64_t ms = (uint64_t)TCP_TIMEOUT_INIT_MS << n;
	timer_arm(st, &sk->timers.retransmit, st->now + (ms < TCP_RTO_MAX_MS ? ms : TCP_RTO_MAX_MS) * 1000u);
}

/* ---- the client: the cookie cache ---------------------------------------------------------- */

/*
 * What a client remembers of a server (Linux keeps it in tcp_metrics, by source and
 * destination address): the last cookie it handed out, the MSS of its SYN-ACK (which sizes the
 * data of the next SYN), whether the experimental option format is to be tried, and SYN losses.
 * A hash table of 256 chains of at most TFO_CACHE_DEPTH entries, the oldest reused beyond
 * that (TCP_METRICS_RECLAIM_DEPTH), so no peer can make it grow without bound.
 */
#define TFO_CACHE_BUCKETS 256u
#define TFO_CACHE_DEPTH 5u
struct tfo_metrics {
	struct tfo_metrics *next;
	uint32_t saddr, daddr;
	uint64_t stamp;         /* last use: the oldest is reclaimed */
	uint64_t last_syn_loss; /* µs */
	uint16_t mss;
	uint16_t syn_loss;
	uint8_t try_exp;        /* 1: try the experimental option; 2: back to RFC 7413's */
	struct tcp_fastopen_cookie cookie;
};

static struct tfo_metrics *tcp_get_metrics(struct ustack *st, const struct sock *sk, bool create)
{
	struct tcp_state_tables *t = st->tcp;
	if (!t->tfo_cache) {
		if (!create)
			return NULL;
		t->tfo_cache = calloc(TFO_CACHE_BUCKETS, sizeof(*t->tfo_cache));
		if (!t->tfo_cache)
			return NULL;
	}
	uint32_t key[2] = { sk->node.laddr, sk->node.raddr };
	uint32_t b = (uint32_t)secret_hash(&st->secrets, SECRET_HASH, key, sizeof(key)) % TFO_CACHE_BUCKETS;
	struct tfo_metrics *m, *oldest = NULL;
	unsigned depth = 0;
	for (m = t->tfo_cache[b]; m; m = m->next, depth++) {
		if (m->saddr == key[0] && m->daddr == key[1]) {
			m->stamp = st->now;
			return m;
		}
		if (!oldest || m->stamp < oldest->stamp)
			oldest = m;
	}
	if (!create)
		return NULL;
	if (depth >= TFO_CACHE_DEPTH) {
		m = oldest;
	} else {
		m = malloc(sizeof(*m));
		if (!m)
			return NULL;
		m->next = t->tfo_cache[b];
		t->tfo_cache[b] = m;
	}
	struct tfo_metrics *next = m->next;
	memset(m, 0, sizeof(*m)); /* tcpm_suck_dst: no MSS, no cookie (len 0), no losses */
	m->next = next;
	m->saddr = key[0];
	m->daddr = key[1];
	m->stamp = st->now;
	return m;
}

void tcp_fastopen_cache_destroy(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	if (!t->tfo_cache)
		return;
	for (unsigned b = 0; b < TFO_CACHE_BUCKETS; b++)
		while (t->tfo_cache[b]) {
			struct tfo_metrics *m = t->tfo_cache[b];
			t->tfo_cache[b] = m->next;
			free(m);
		}
	free(t->tfo_cache);
	t->tfo_cache = NULL;
}

/* `ip tcp_metrics show`'s view of the cache (tcp_metrics_nl_dump): up to n entries; returns
 * how many there are.  Under the stack lock. */
size_t tcp_metrics_fill(struct ustack *st, struct ustack_tcp_metrics *buf, size_t n)
{
	struct tcp_state_tables *t = st->tcp;
	size_t count = 0;
	if (!t->tfo_cache)
		return 0;
	for (unsigned b = 0; b < TFO_CACHE_BUCKETS; b++)
		for (const struct tfo_metrics *m = t->tfo_cache[b]; m; m = m->next, count++) {
			if (count >= n)
				continue;
			struct ustack_tcp_metrics *e = &buf[count];
			memset(e, 0, sizeof(*e));
			e->saddr.s_addr = htonl(m->saddr); /* the cache keeps host order */
			e->daddr.s_addr = htonl(m->daddr);
			e->age_ms = (uint32_t)((st->now - m->stamp) / 1000u);
			e->fo_mss = m->mss;
			e->fo_syn_drops = m->syn_loss;
			if (m->syn_loss)
				e->fo_syn_drop_ago_ms = (uint32_t)((st->now - m->last_syn_loss) / 1000u);
			if (m->cookie.len > 0 && (size_t)m->cookie.len <= sizeof(e->fo_cookie)) {
				e->fo_cookie_len = (int8_t)m->cookie.len;
				memcpy(e->fo_cookie, m->cookie.val, (size_t)m->cookie.len);
			}
		}
	return count;
}

/* `ip tcp_metrics flush` / `delete` (tcp_metrics_flush_all, tcp_metrics_nl_cmd_del): the
 * entries for daddr, or all; returns how many went. */
size_t tcp_metrics_flush(struct ustack *st, uint32_t daddr /* host order */, bool all)
{
	struct tcp_state_tables *t = st->tcp;
	size_t gone = 0;
	if (!t->tfo_cache)
		return 0;
	for (unsigned b = 0; b < TFO_CACHE_BUCKETS; b++)
		for (struct tfo_metrics **pp = &t->tfo_cache[b]; *pp;) {
			struct tfo_metrics *m = *pp;
			if (all || m->daddr == daddr) {
				*pp = m->next;
				free(m);
				gone++;
			} else {
				pp = &m->next;
			}
		}
	return gone;
}

/* tcp_fastopen_cache_get */
static void tcp_fastopen_cache_get(struct ustack *st, const struct sock *sk, uint16_t *mss,
				   struct tcp_fastopen_cookie *cookie)
{
	struct tfo_metrics *m = tcp_get_metrics(st, sk, false);
	if (!m)
		return;
	if (m->mss)
		*mss = m->mss;
	*cookie = m->cookie;
	if (cookie->len <= 0 && m->try_exp == 1)
		cookie->exp = true;
}

/* tcp_fastopen_cache_set: what a SYN-ACK taught: its MSS, a new cookie (an absent or invalid
 * one keeps the old), the option format to try next, and whether the SYN's data was lost. */
void tcp_fastopen_cache_set(struct ustack *st, const struct sock *sk, uint16_t mss,
			    const struct tcp_fastopen_cookie *cookie, bool syn_lost, uint8_t try_exp)
{
	struct tfo_metrics *m = tcp_get_metrics(st, sk, true);
	if (!m)
		return;
	if (mss)
		m->mss = mss;
	if (cookie && cookie->len > 0)
		m->cookie = *cookie;
	else if (try_exp > m->try_exp && m->cookie.len <= 0 && !m->cookie.exp)
		m->try_exp = try_exp;
	if (syn_lost) {
		m->syn_loss++;
		m->last_syn_loss = st->now;
	} else {
		m->syn_loss = 0;
	}
}

/* ---- the client: blackholes --------------------------------------------------------------- */

/* tcp_fastopen_active_disable: pause active Fast Open for this stack (a blackhole was seen) */
static void tcp_fastopen_active_disable(struct ustack *st)
{
	if (!st->sysctl.tcp_fastopen_blackhole_timeout_sec)
		return;
	st->tcp->tfo_active_disable_stamp = st->now;
	st->tcp->tfo_active_disable_times++;
	MIB_INC(st, TcpExtTCPFastOpenBlackhole);
}

/* tcp_fastopen_active_should_disable: within the pause — the timeout, doubled for each
 * blackhole in a row up to 64 times — no Fast Open; past it, try again, and a success
 * (tcp_fastopen_active_disable_ofo_check) forgets the count. */
static bool tcp_fastopen_active_should_disable(struct ustack *st, struct sock *sk)
{
	unsigned timeout = (unsigned)st->sysctl.tcp_fastopen_blackhole_timeout_sec;
	unsigned times = st->tcp->tfo_active_disable_times;
	if (!timeout || !times)
		return false;
	uint64_t mult = 1u << (times - 1 < 6 ? times - 1 : 6);
	if (st->now < st->tcp->tfo_active_disable_stamp + mult * timeout * 1000000u)
		return true;
	sk->syn_fastopen_ch = 1;
	return false;
}

/* tcp_fastopen_active_disable_ofo_check: at the end of a connection that used Fast Open, a
 * peer that sent nothing in order but a lone FIN out of order looks like a middlebox that ate
 * the SYN's data: pause.  A connection that went well after a pause forgets the count. */
void tcp_fastopen_active_disable_ofo_check(struct ustack *st, struct sock *sk)
{
	if (!sk->syn_fastopen)
		return;
	if (!sk->data_segs_in) {
		if (sk->ofo_lone_fin)
			tcp_fastopen_active_disable(st);
	} else if (sk->syn_fastopen_ch && st->tcp->tfo_active_disable_times) {
		st->tcp->tfo_active_disable_times = 0;
	}
}

/* tcp_fastopen_active_detect_blackhole: the SYN (or the data after it) of a Fast Open
 * connection timed out a second time, or for good: pause active Fast Open. */
bool tcp_fastopen_active_detect_blackhole(struct ustack *st, struct sock *sk, bool expired)
{
	if ((sk->syn_fastopen || sk->syn_data || sk->syn_data_acked) &&
	    (sk->retransmits == 2 || (sk->retransmits < 2 && expired))) {
		tcp_fastopen_active_disable(st);
		MIB_INC(st, TcpExtTCPFastOpenActiveFail);
		return true;
	}
	return false;
}

/* ---- the client: cookies for the SYN ------------------------------------------------------ */

/*
 * tcp_fastopen_cookie_check: may this SYN carry data?  The cache gives the cookie (and the
 * server's MSS); during a blackhole pause no Fast Open at all; with TFO_CLIENT_NO_COOKIE (or
 * TCP_FASTOPEN_NO_COOKIE) data without a cookie option; else only with a cookie, and without
 * one the SYN asks for it (tcpi_fastopen_client_fail = TFO_COOKIE_UNAVAILABLE).
 */
bool tcp_fastopen_cookie_check(struct ustack *st, struct sock *sk, uint16_t *mss,
			       struct tcp_fastopen_cookie *cookie)
{
	tcp_fastopen_cache_get(st, sk, mss, cookie);
	if (tcp_fastopen_active_should_disable(st, sk)) {
		cookie->len = -1;
		return false;
	}
	if (tcp_fastopen_no_cookie(st, sk, TFO_CLIENT_NO_COOKIE)) {
		cookie->len = -1;
		return true;
	}
	if (cookie->len > 0)
		return true;
	sk->fastopen_client_fail = TFO_COOKIE_UNAVAILABLE;
	return false;
}

/*
 * tcp_fastopen_defer_connect (TCP_FASTOPEN_CONNECT): with a cookie at hand connect() sends
 * nothing and returns 0 at once, and the first write sends the SYN with its data; without one
 * the connect goes ahead with a SYN that asks for a cookie — `fo`, the caller's, becomes the
 * socket's Fast Open request for that SYN.
 */
bool tcp_fastopen_defer_connect(struct ustack *st, struct sock *sk, struct tcp_fastopen_request *fo)
{
	if (!sk->fastopen_connect || sk->fastopen_req)
		return false;
	struct tcp_fastopen_cookie cookie = { .len = 0 };
	uint16_t mss;
	if (tcp_fastopen_cookie_check(st, sk, &mss, &cookie)) {
		sk->defer_connect = 1;
		return true;
	}
	memset(fo, 0, sizeof(*fo));
	fo->cookie = cookie;
	sk->fastopen_req = fo;
	return false;
}
