/*
 * The SYN queue (Linux's request_sock.c and the reqsk_* parts of inet_connection_sock.c):
 * request sockets — what a listener remembers of a half-open connection between SYN and final
 * ACK — and the SYN-ACK's retransmission (reqsk_timer_handler).
 *
 * Why request sockets: a half-open connection costs only a small struct in the established
 * hash until its final ACK proves the peer exists, so a flood of SYNs costs ~100 bytes each
 * instead of a full socket.  The SYN queue is bounded by the listen backlog (tcp_conn_request
 * in tcp_input.c decides), the accept queue by min(backlog, net.core.somaxconn)
 * (inet_connection_sock.c): a final ACK arriving when it is full is dropped
 * (TcpExtListenOverflows, TcpExtListenDrops) and the request kept, so the peer's
 * retransmission completes the handshake once the application accepts — slowness, not an
 * error — unless tcp_abort_on_overflow=1, which answers with a RST (tcp_check_req in
 * tcp_minisocks.c).  A request socket points at its listener, which therefore outlives its
 * close until the last request goes (reqsk_put, sk_free).
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <stdlib.h>

static void reqsk_timer_handler(struct ustack *st, struct utimer *t);

uint64_t reqsk_timeout_us(const struct request_sock *req)
{
	unsigned n = req->num_timeout < 8 ? req->num_timeout : 8; /* 1 s << 7 passes the 120 s cap */
	uint64_t ms = (uint64_t)TCP_TIMEOUT_INIT_MS << n;
	return (ms < TCP_RTO_MAX_MS ? ms : TCP_RTO_MAX_MS) * 1000u;
}

/* reqsk_put: the request socket is done with; the last one of a listener the application
 * closed meanwhile frees it (sk_free). */
void reqsk_put(struct ustack *st, struct request_sock *req)
{
	struct sock *lsk = req->listener;
	timer_cancel(st, &req->timer);
	lsk->accept_queue.qlen--;
	st->tcp->nreqsk--;
	kmem_cache_free(&st->tcp->reqsk_cache, req);
	if (!lsk->accept_queue.qlen && lsk->dead)
		sk_free(st, lsk);
}

void reqsk_queue_drop(struct ustack *st, struct request_sock *req)
{
	inet_ehash_remove(st, &req->node);
	reqsk_put(st, req);
}

/* inet_rtx_syn_ack: the SYN-ACK again (a timeout, or the peer's SYN again), through
 * tcp_rtx_synack, which fires trace_tcp_retransmit_synack once the SYN-ACK went. */
void inet_rtx_syn_ack(struct ustack *st, struct request_sock *req)
{
	req->num_retrans++;
	MIB_INC(st, TcpRetransSegs);
	MIB_INC(st, TcpExtTCPSynRetrans);
	if (tcp_send_synack(st, req, NULL, 0) == 0)
		trace_tcp_retransmit_synack(st, &req->node);
}

/* reqsk_timer_handler: resend the SYN-ACK with exponential backoff, give up after
 * tcp_synack_retries (or the listener's TCP_SYNCNT). */
static void reqsk_timer_handler(struct ustack *st, struct utimer *t)
{
	struct request_sock *req = (struct request_sock *)((char *)t - offsetof(struct request_sock, timer));
	int max = req->listener->syn_retries ? req->listener->syn_retries : st->sysctl.tcp_synack_retries;
	if (req->listener->node.state != TCP_LISTEN && !reqsk_migrate(st, req)) {
		tcp_trace(st, "inet_csk_reqsk_queue_drop", &req->node, TCP_SYN_RECV, TCP_CLOSE);
		reqsk_queue_drop(st, req);
		return;
	}
	if (req->num_timeout >= max) {
		tcp_trace(st, "inet_csk_reqsk_queue_drop", &req->node, TCP_SYN_RECV, TCP_CLOSE);
		reqsk_queue_drop(st, req);
		return;
	}
	inet_rtx_syn_ack(st, req);
	req->num_timeout++;
	timer_arm(st, &req->timer, st->now + reqsk_timeout_us(req));
}

/* inet_reqsk_alloc: a request socket for `lsk`, not yet in any table. */
struct request_sock *inet_reqsk_alloc(struct ustack *st, struct sock *lsk)
{
	struct request_sock *req = kmem_cache_zalloc(&st->tcp->reqsk_cache);
	if (!req)
		return NULL;
	req->node.state = TCP_NEW_SYN_RECV;
	req->listener = lsk;
	timer_init(&req->timer, reqsk_timer_handler);
	return req;
}

/* inet_csk_reqsk_queue_hash_add: into the established hash and the listener's SYN queue. */
void inet_csk_reqsk_queue_hash_add(struct ustack *st, struct request_sock *req)
{
	inet_ehash_insert(st, &req->node);
	req->listener->accept_queue.qlen++;
	st->tcp->nreqsk++;
	tcp_trace(st, "inet_reqsk_alloc", &req->node, TCP_LISTEN, TCP_NEW_SYN_RECV);
}

/* The SYN-ACK timer, from now (after the first SYN-ACK, or a SYN again). */
void reqsk_timer_rearm(struct ustack *st, struct request_sock *req)
{
	timer_arm(st, &req->timer, st->now + reqsk_timeout_us(req));
}

/*
 * reqsk_migrate (reuseport_migrate_sock, then inet_reqsk_clone): the request's listener
 * stopped listening; with net.ipv4.tcp_migrate_req another listener of its SO_REUSEPORT group
 * takes the request over (TcpExtTCPMigrateReqSuccess), chosen by the 4-tuple's hash.  False
 * when there is none, or migration is off (TcpExtTCPMigrateReqFailure when it was tried).
 */
bool reqsk_migrate(struct ustack *st, struct request_sock *req)
{
	struct sock *old = req->listener;
	if (!st->sysctl.tcp_migrate_req || !old->reuseport)
		return false;
	struct sock *nsk = inet_lookup_listener(st, req->node.laddr, req->node.lport, req->node.raddr,
						req->node.rport, sk_bound_dev_if(old));
	if (!nsk || !nsk->reuseport || nsk == old) {
		MIB_INC(st, TcpExtTCPMigrateReqFailure);
		return false;
	}
	req->listener = nsk;
	nsk->accept_queue.qlen++;
	old->accept_queue.qlen--;
	MIB_INC(st, TcpExtTCPMigrateReqSuccess);
	if (!old->accept_queue.qlen && old->dead)
		sk_free(st, old);
	return true;
}
