/*
 * The listener (Linux's net/ipv4/inet_connection_sock.c): binding a port (inet_csk_get_port),
 * and the accept queue — children whose handshake completed, waiting for accept() — as named
 * functions: inet_csk_reqsk_queue_add puts a child on it, inet_csk_accept takes the oldest
 * off, inet_csk_listen_stop resets what nobody accepted when the listener stops.  The SYN
 * queue (request sockets) and SYN-ACK retransmission are request_sock.c's.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>

/*
 * inet_csk_bind_conflict (inet_bind_conflict with relax and reuseport_ok, as bind() and
 * listen() call it): two sockets may share a port when they are bound to different specific
 * addresses; when both set SO_REUSEADDR and the other one does not listen; or when both set
 * SO_REUSEPORT (Linux also asks for the same owner uid; a ustack instance has one owner).
 */
static bool inet_csk_bind_conflict(struct ustack *st, const struct sock *sk, const struct bind_bucket *b)
{
	for (const struct sock *o = b->owners; o; o = o->bind_next) {
		if (o == sk)
			continue;
		if (sk->node.laddr && o->node.laddr && sk->node.laddr != o->node.laddr)
			continue;
		if (sk->reuseaddr && o->reuseaddr && o->node.state != TCP_LISTEN)
			continue;
		if (sk->reuseport && o->reuseport)
			continue;
		return true;
	}
	return inet_bind_conn_conflict(sk, b) || inet_twsk_bind_conflict(st, sk, b);
}

/*
 * The fast path (Linux's tb->fastreuse, tb->fastreuseport).  A port a listener shares with
 * its million accepted connections would make every bind() or listen() to it walk them all,
 * only to find what the bucket can remember: that every socket that bound or listened there
 * set SO_REUSEADDR and none listens (fastreuse: a newcomer with SO_REUSEADDR cannot conflict),
 * or that all set SO_REUSEPORT (FASTREUSEPORT_ANY: a newcomer with it cannot conflict), or that
 * the last ones that did were on fast_rcv_saddr and the walk found the rest compatible
 * (FASTREUSEPORT_STRICT: a newcomer with it on that address, or on any if that is the
 * wildcard, cannot conflict).  Connections a listener accepts inherit its port without
 * changing the flags, as Linux's __inet_inherit_port; TIME_WAIT entries are not consulted on
 * the fast path, as in Linux.  (Linux also matches the owner's uid; an instance has one.)
 */
static bool sk_reuseport_match(const struct bind_bucket *b, const struct sock *sk)
{
	if (b->fastreuseport <= 0 || !sk->reuseport)
		return false;
	if (b->fastreuseport == FASTREUSEPORT_ANY)
		return true;
	return b->fast_rcv_saddr == sk->node.laddr || !b->fast_rcv_saddr; /* ipv4_rcv_saddr_equal */
}

static bool inet_csk_fast_ok(const struct bind_bucket *b, const struct sock *sk, bool listening)
{
	return (b->fastreuse > 0 && sk->reuseaddr && !listening) || sk_reuseport_match(b, sk);
}

/* inet_csk_update_fastreuse: sk has the port; a first owner sets the flags, the others can
 * only narrow them (a listener or a socket without SO_REUSEADDR ends fastreuse; one without
 * SO_REUSEPORT ends fastreuseport; one with it that the flags did not cover, having passed the
 * walk, makes them STRICT on its address). */
void inet_csk_update_fastreuse(struct bind_bucket *b, const struct sock *sk, bool listening)
{
	bool reuse = sk->reuseaddr && !listening;
	bool first = !b->has_tw && !b->nconn && (!b->owners || (b->owners == sk && !sk->bind_next));
	if (first) {
		b->fastreuse = reuse;
		b->fastreuseport = sk->reuseport ? FASTREUSEPORT_ANY : 0;
		b->fast_rcv_saddr = sk->node.laddr;
		return;
	}
	if (!reuse)
		b->fastreuse = 0;
	if (!sk->reuseport) {
		b->fastreuseport = 0;
	} else if (!sk_reuseport_match(b, sk)) {
		b->fastreuseport = FASTREUSEPORT_STRICT;
		b->fast_rcv_saddr = sk->node.laddr;
	}
}

/*
 * inet_csk_listen_start's get_port again: Linux moves the socket to LISTEN and asks for its
 * own port once more, so the fast path's SO_REUSEADDR arm is off (`reuse` is false for a
 * listener) and, unless the bucket's SO_REUSEPORT flags cover it, the whole walk runs as for
 * bind().  It refuses what has changed since bind(): another holder that listens now (two
 * sockets with SO_REUSEADDR may share a port, not both listen on it), SO_REUSEADDR or
 * SO_REUSEPORT cleared on either side since, connections and TIME_WAIT entries on the port
 * without them — a listener without SO_REUSEADDR shut down and listening again while a
 * connection it accepted, or that connection's TIME_WAIT entry, holds the port: EADDRINUSE,
 * the restart failure SO_REUSEADDR exists for.  Each case as this machine's Linux 6.18 answers
 * it, including the stale fast path: a holder that clears SO_REUSEPORT after bind() leaves the
 * bucket's flags as they were, so the other may still listen.
 */
int inet_csk_listen_check_port(struct ustack *st, const struct sock *sk)
{
	if (inet_csk_fast_ok(sk->tb, sk, true))
		return 0;
	return inet_csk_bind_conflict(st, sk, sk->tb) ? -EADDRINUSE : 0;
}

/* inet_csk_get_port: `port`, or with 0 a free one (inet_csk_find_open_port). */
int inet_csk_get_port(struct ustack *st, struct sock *sk, uint16_t port)
{
	struct bind_bucket *b;
	if (port) {
		b = inet_bind_bucket_find(st, port);
		if (b && !inet_csk_fast_ok(b, sk, false) && inet_csk_bind_conflict(st, sk, b))
			return -EADDRINUSE;
		if (!b && !(b = inet_bind_bucket_create(st, port, 0)))
			return -ENOBUFS;
		inet_bind_hash(b, sk);
		inet_csk_update_fastreuse(b, sk, false);
		return 0;
	}
	/* inet_csk_find_open_port: a random start, the other parity first */
	int low = st->sysctl.ip_local_port_range[0], high = st->sysctl.ip_local_port_range[1] + 1;
	uint32_t remaining = (uint32_t)(high - low);
	if (remaining > 1)
		remaining &= ~1u;
	uint32_t offset = prng_below(&st->secrets, remaining) | 1u;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < remaining; i += 2) {
			uint32_t p = (uint32_t)low + ((offset + i) % remaining);
			b = inet_bind_bucket_find(st, (uint16_t)p);
			if (b && inet_csk_bind_conflict(st, sk, b))
				continue;
			if (!b && !(b = inet_bind_bucket_create(st, (uint16_t)p, 0)))
				return -ENOBUFS;
			inet_bind_hash(b, sk);
			inet_csk_update_fastreuse(b, sk, false);
			return 0;
		}
		offset ^= 1u;
	}
	return -EADDRINUSE;
}

/* inet_csk_reqsk_queue_add: a child onto the accept queue, and accept() woken. */
void inet_csk_reqsk_queue_add(struct ustack *st, struct sock *lsk, struct sock *sk)
{
	sk->parent = lsk;
	sk->acceptq_next = NULL;
	if (lsk->accept_queue.tail)
		lsk->accept_queue.tail->acceptq_next = sk;
	else
		lsk->accept_queue.head = sk;
	lsk->accept_queue.tail = sk;
	lsk->ack_backlog++;
	tcp_trace(st, "inet_csk_reqsk_queue_add", &sk->node, sk->node.state, sk->node.state);
	sk_wake_sk(st, lsk);
}

/* inet_csk_accept (reqsk_queue_remove): the oldest child off the accept queue, or NULL. */
struct sock *inet_csk_accept(struct ustack *st, struct sock *lsk)
{
	struct sock *sk = lsk->accept_queue.head;
	if (!sk)
		return NULL;
	lsk->accept_queue.head = sk->acceptq_next;
	if (!lsk->accept_queue.head)
		lsk->accept_queue.tail = NULL;
	lsk->ack_backlog--;
	sk->acceptq_next = NULL;
	sk->parent = NULL;
	tcp_trace(st, "inet_csk_accept", &sk->node, sk->node.state, sk->node.state);
	return sk;
}

/*
 * inet_csk_listen_stop: children nobody accepted are reset — or, with net.ipv4.tcp_migrate_req
 * and SO_REUSEPORT, handed to another listener of the group.  Request sockets are not hunted
 * down (that would walk the whole established hash): as in Linux, each one notices that its
 * listener stopped listening when its timer fires or a segment arrives, and migrates
 * (reqsk_migrate) or goes away; the listener's memory waits for the last of them.
 */
void inet_csk_listen_stop(struct ustack *st, struct sock *lsk)
{
	inet_listen_unhash(st, lsk);
	tcp_set_state(st, lsk, TCP_CLOSE);
	while (lsk->accept_queue.head) {
		struct sock *sk = lsk->accept_queue.head;
		lsk->accept_queue.head = sk->acceptq_next;
		sk->parent = NULL;
		/* with tcp_migrate_req another listener of the SO_REUSEPORT group takes it */
		if (st->sysctl.tcp_migrate_req && lsk->reuseport) {
			struct sock *nsk = inet_lookup_listener(st, sk->node.laddr, sk->node.lport, sk->node.raddr,
								sk->node.rport, sk_bound_dev_if(lsk));
			if (nsk && nsk != lsk && nsk->reuseport) {
				MIB_INC(st, TcpExtTCPMigrateReqSuccess);
				lsk->ack_backlog--;
				inet_csk_reqsk_queue_add(st, nsk, sk);
				continue;
			}
			MIB_INC(st, TcpExtTCPMigrateReqFailure);
		}
		if (sk->node.state != TCP_CLOSE) /* a child reset while queued gets nothing more */
			tcp_send_active_reset(st, sk);
		tcp_done(st, sk, 0);
	}
	lsk->accept_queue.tail = NULL;
	lsk->ack_backlog = 0;
	/* tcp_set_state(TCP_CLOSE): a port the application chose stays bound (SOCK_BINDPORT_LOCK),
	 * so listen() again listens where it did; an autobound one is free at once */
	if (!lsk->bound_port)
		inet_put_port(st, lsk);
	sk_wake_sk(st, lsk);
}

/* At stack teardown: children still queued, reset or not, go silently. */
void inet_csk_acceptq_purge(struct ustack *st, struct sock *lsk)
{
	while (lsk->accept_queue.head) {
		struct sock *sk = lsk->accept_queue.head;
		lsk->accept_queue.head = sk->acceptq_next;
		sk->parent = NULL;
		sk_free(st, sk);
	}
	lsk->accept_queue.tail = NULL;
	lsk->ack_backlog = 0;
}
