/*
 * Socket diagnostics (Linux's inet_diag.c and tcp_diag.c): one consistent snapshot of every
 * TCP socket of an instance, for ss.  Listeners come from the listening hash, everything else
 * from the established hash — full sockets in any state, TIME_WAIT included, and request
 * sockets (TCP_NEW_SYN_RECV entries), which are shown as SYN-RECV, as inet_diag shows them.
 * Sockets in no hash (created, or bound, but neither listening nor connected) are not listed,
 * as Linux's default dump does not list them either.
 *
 * One lock, one pass over the tables, nothing allocated: the cost is proportional to the
 * sockets and the established hash's size, paid by a diagnostic request, never by packets.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/diag.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint32_t timer_left_ms(const struct ustack *st, const struct utimer *t)
{
	uint64_t at = t->expires * USEC_PER_TICK;
	return at > st->now ? (uint32_t)((at - st->now + 999) / 1000) : 0; /* jiffies_delta_to_msecs */
}

/* inet_diag's idiag_timer for a full socket (inet_sk_diag_fill, inet_twsk_diag_fill). */
static void sock_timer(const struct ustack *st, const struct sock *sk, struct ustack_diag_sock *d)
{
	if (timer_pending(&sk->timers.retransmit)) {
		/* the retransmission timer probes a zero window when nothing is in flight */
		bool probe0 = sk->data_init && sk->snd_una == sk->snd_max && sk->write_seq != sk->snd_una &&
			      !sk->tlp_pending && !sk->reo_pending && sk->node.state != TCP_SYN_SENT;
		d->timer = probe0 ? USTACK_DIAG_TIMER_PROBE : USTACK_DIAG_TIMER_ON;
		d->retrans = probe0 ? sk->probes_out : sk->retransmits;
		d->expires_ms = timer_left_ms(st, &sk->timers.retransmit);
	} else if (timer_pending(&sk->timers.sk)) {
		d->timer = USTACK_DIAG_TIMER_KEEPALIVE;
		d->retrans = sk->probes_out;
		d->expires_ms = timer_left_ms(st, &sk->timers.sk);
	}
}

static void fill_sock(struct ustack *st, const struct sock *sk, struct ustack_diag_sock *d)
{
	memset(d, 0, sizeof(*d));
	d->state = sk->node.state;
	d->fd = sk->fd;
	d->laddr.s_addr = htonl(sk->node.laddr);
	d->raddr.s_addr = htonl(sk->node.raddr);
	d->lport = sk->node.lport;
	d->rport = sk->node.rport;
	if (sk->node.state == TCP_LISTEN) {
		d->recv_q = (uint32_t)sk->ack_backlog; /* as tcp_diag_get_info: the accept queue */
		d->send_q = (uint32_t)sk->max_ack_backlog;
		d->syn_qlen = (uint32_t)sk->accept_queue.qlen;
	} else {
		d->recv_q = sk->rcvq.len; /* rcv_nxt - copied_seq */
		if (sk->data_init)
			d->send_q = sk->write_seq - sk->snd_una;
		else if (sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV)
			/* write_seq - snd_una with the SYN queued, as Linux's tcp_connect_queue_skb
			 * counts it: 1, plus a Fast Open SYN's data */
			d->send_q = (sk->syn_data ? sk->write_seq : sk->iss + 1) - sk->snd_una;
	}
	sock_timer(st, sk, d);
	d->shutdown = (uint8_t)(((sk->shut_rd || sk->fin_rcvd) ? 1 : 0) | (sk->shut_wr ? 2 : 0));
	if (sk->ca_ops)
		snprintf(d->cong, sizeof(d->cong), "%s", sk->ca_ops->name);
	/* SO_MEMINFO's values */
	d->skmem.rmem_alloc = sk->rcvq.len + sk->ofo_bytes;
	d->skmem.rcvbuf = (uint32_t)sk->rcvbuf;
	d->skmem.wmem_alloc = sk->data_init ? sk->snd_max - sk->snd_una : 0;
	d->skmem.sndbuf = (uint32_t)sk->sndbuf;
	d->skmem.wmem_queued = sk->sndq.len;
	tcp_get_info(st, sk, &d->info);
	d->has_info = 1;
}

/* A TIME_WAIT entry (inet_twsk_diag_fill): its 4-tuple, no descriptor, the timewait timer
 * (3) and its time left; no queues, no TCP_INFO. */
static void fill_tw(struct ustack *st, const struct inet_timewait_sock *tw, struct ustack_diag_sock *d)
{
	memset(d, 0, sizeof(*d));
	d->state = (tw->node.tw_flags & TW_FW2) ? TCP_FIN_WAIT2 : TCP_TIME_WAIT; /* tw_substate */
	d->fd = -1;
	d->laddr.s_addr = htonl(tw->node.laddr);
	d->raddr.s_addr = htonl(tw->node.raddr);
	d->lport = tw->node.lport;
	d->rport = tw->node.rport;
	d->timer = USTACK_DIAG_TIMER_TIMEWAIT;
	uint64_t at = inet_twsk_expires_us(st, tw);
	d->expires_ms = at > st->now ? (uint32_t)((at - st->now + 999) / 1000) : 0;
}

/* A request socket: SYN-RECV, its SYN-ACK timer, no queues (inet_req_diag_fill). */
static void fill_req(struct ustack *st, const struct request_sock *req, struct ustack_diag_sock *d)
{
	memset(d, 0, sizeof(*d));
	d->state = TCP_SYN_RECV;
	d->is_request = 1;
	d->fd = -1;
	d->laddr.s_addr = htonl(req->node.laddr);
	d->raddr.s_addr = htonl(req->node.raddr);
	d->lport = req->node.lport;
	d->rport = req->node.rport;
	if (timer_pending(&req->timer)) {
		d->timer = USTACK_DIAG_TIMER_ON;
		d->expires_ms = timer_left_ms(st, &req->timer);
	}
	d->retrans = req->num_retrans;
}

int ustack_diag_snapshot(struct ustack *st, struct ustack_diag_sock *buf, size_t n, size_t *total)
{
	if (!st || (!buf && n)) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	struct tcp_state_tables *t = st->tcp;
	size_t count = 0;
	for (unsigned i = 0; i < LHASH_SIZE; i++) {
		for (struct sock *sk = t->lhash[i]; sk; sk = sk->lnext) {
			if (count < n)
				fill_sock(st, sk, &buf[count]);
			count++;
		}
	}
	for (uint32_t i = 0; i < inet_ehash_chains(t); i++) {
		for (struct ehash_node *e = inet_ehash_chain(t, i); e; e = inet_ehash_next(e)) {
			if (count < n) {
				if (e->state == TCP_NEW_SYN_RECV)
					fill_req(st, (const struct request_sock *)e, &buf[count]);
				else if (e->state == TCP_TIME_WAIT)
					fill_tw(st, (const struct inet_timewait_sock *)e, &buf[count]);
				else
					fill_sock(st, (const struct sock *)e, &buf[count]);
			}
			count++;
		}
	}
	stack_unlock(st);
	if (total)
		*total = count;
	return (int)(count < n ? count : n);
}

const char *ustack_diag_state_name(int state)
{
	/* iproute2's sstate_name, by Linux's numbering */
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTAB",	  [TCP_SYN_SENT] = "SYN-SENT",   [TCP_SYN_RECV] = "SYN-RECV",
		[TCP_FIN_WAIT1] = "FIN-WAIT-1",	  [TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
		[TCP_CLOSE] = "UNCONN",		  [TCP_CLOSE_WAIT] = "CLOSE-WAIT", [TCP_LAST_ACK] = "LAST-ACK",
		[TCP_LISTEN] = "LISTEN",	  [TCP_CLOSING] = "CLOSING",	  [TCP_NEW_SYN_RECV] = "SYN-RECV",
	};
	return state > 0 && state <= TCP_NEW_SYN_RECV ? names[state] : "UNKNOWN";
}

int ustack_tcp_metrics_snapshot(struct ustack *st, struct ustack_tcp_metrics *buf, size_t n, size_t *total)
{
	if (!st || (!buf && n)) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	size_t count = tcp_metrics_fill(st, buf, n);
	stack_unlock(st);
	if (total)
		*total = count;
	return (int)(count < n ? count : n);
}

int ustack_tcp_metrics_flush(struct ustack *st, const struct in_addr *daddr, int must_exist)
{
	if (!st || (must_exist && !daddr)) {
		errno = EINVAL;
		return -1;
	}
	stack_lock(st);
	size_t gone = tcp_metrics_flush(st, daddr ? ntohl(daddr->s_addr) : 0, !daddr);
	stack_unlock(st);
	if (must_exist && !gone) {
		errno = ESRCH;
		return -1;
	}
	return (int)gone;
}

unsigned ustack_undelivered(struct ustack *st, uint64_t *lost)
{
	stack_lock(st);
	unsigned n = st->tcp->undelivered; /* kept by tcp_account_owing: no walk */
	if (lost)
		*lost = st->tcp->undelivered_lost;
	stack_unlock(st);
	return n;
}

/*
 * /proc/net/sockstat (sockstat_seq_show): inuse counts full sockets in the hashes, tw the
 * TIME_WAIT entries, alloc every full socket (closed ones an application still holds too);
 * an orphan is a socket the application closed (no descriptor, no listener waiting to hand
 * it out) that still talks to its peer.  Walks the tables: for diagnostics.
 */
int ustack_sockstat(struct ustack *st, struct ustack_sockstat *s)
{
	if (!st || !s) {
		errno = EINVAL;
		return -1;
	}
	memset(s, 0, sizeof(*s));
	stack_lock(st);
	struct tcp_state_tables *t = st->tcp;
	for (unsigned i = 0; i < LHASH_SIZE; i++)
		for (struct sock *sk = t->lhash[i]; sk; sk = sk->lnext)
			s->tcp_inuse++;
	for (uint32_t i = 0; i < inet_ehash_chains(t); i++)
		for (struct ehash_node *e = inet_ehash_chain(t, i); e; e = inet_ehash_next(e)) {
			if (e->state == TCP_NEW_SYN_RECV || e->state == TCP_TIME_WAIT)
				continue;
			const struct sock *sk = (const struct sock *)e;
			s->tcp_inuse++;
			if (sk->fd < 0 && !sk->parent)
				s->tcp_orphan++;
		}
	s->sockets_used = (uint32_t)t->fdt.used;
	s->tcp_tw = t->tw_count;
	s->tcp_alloc = t->nsocks;
	s->tcp_reqsk = t->nreqsk;
	s->tcp_estab = (uint32_t)st->mib[MIB_TcpCurrEstab];
	stack_unlock(st);
	return 0;
}
