/*
 * The socket layer: argument checks, blocking and wake-ups (Linux's net/socket.c, af_inet.c's
 * inet_stream_connect/inet_accept/inet_listen/inet_bind, and inet_connection_sock.c's
 * inet_csk_accept).
 *
 * Descriptors (file.c) are the lowest free integers from 3 up, as a process's would be.  Every
 * caller that blocks sleeps on one wake-up word per stack (core/lock.h) and re-checks its own
 * condition when woken; the stack wakes every sleeper on every state change (the seed's
 * sk_state_change).  Waiters are few — an application's blocking calls — so one broadcast
 * beats per-socket bookkeeping.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

int ustack_socket(struct ustack *st, int domain, int type, int protocol)
{
	if (domain != AF_INET) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (base != SOCK_STREAM) {
		errno = base == SOCK_DGRAM || base == SOCK_RAW ? EPROTONOSUPPORT : ESOCKTNOSUPPORT;
		return -1;
	}
	if (protocol != 0 && protocol != IPPROTO_TCP) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	stack_lock(st);
	struct sock *sk = sk_alloc(st);
	int rc = sk ? fd_alloc(st, sk) : -ENOMEM;
	if (rc < 0 && sk)
		sk_free(st, sk);
	else if (sk)
		sk->nonblock = type & SOCK_NONBLOCK;
	return leave(st, rc);
}

static int check_sockaddr(const struct sockaddr *addr, socklen_t len, const struct sockaddr_in **sin)
{
	if (!addr || len < (socklen_t)sizeof(struct sockaddr_in))
		return -EINVAL;
	*sin = (const struct sockaddr_in *)(const void *)addr;
	return 0;
}

int ustack_bind(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len)
{
	ENTER(st, fd, sk);
	const struct sockaddr_in *sin;
	int rc = check_sockaddr(addr, len, &sin);
	if (rc < 0)
		return leave(st, rc);
	uint32_t a = ntohl(sin->sin_addr.s_addr);
	/* inet_bind: AF_UNSPEC is accepted only with INADDR_ANY, for old programs */
	if (sin->sin_family != AF_INET && !(sin->sin_family == AF_UNSPEC && a == 0))
		return leave(st, -EAFNOSUPPORT);
	/* inet_addr_valid_or_nonlocal: our address, or any with IP_FREEBIND, IP_TRANSPARENT or
	 * net.ipv4.ip_nonlocal_bind */
	if (a && !netdev_by_local_addr(st, a) && !sk->freebind && !sk->transparent && !st->sysctl.ip_nonlocal_bind)
		return leave(st, -EADDRNOTAVAIL);
	if (sk->node.state != TCP_CLOSE || sk->tb)
		return leave(st, -EINVAL);
	sk->node.laddr = a;
	if (!sin->sin_port && sk->bind_address_no_port && a) {
		/* IP_BIND_ADDRESS_NO_PORT: the address now, the port when connect() knows the
		 * 4-tuple (so that many connections may share it, RFC 6056 §3.2) */
		sk->bound_addr = true;
		return leave(st, 0);
	}
	rc = inet_csk_get_port(st, sk, ntohs(sin->sin_port));
	if (rc < 0) {
		sk->node.laddr = 0;
		return leave(st, rc);
	}
	sk->bound_addr = a != 0;
	sk->bound_port = sin->sin_port != 0;
	return leave(st, 0);
}

int ustack_listen(struct ustack *st, int fd, int backlog)
{
	ENTER(st, fd, sk);
	if (sk->node.state != TCP_CLOSE && sk->node.state != TCP_LISTEN)
		return leave(st, -EINVAL);
	if (sk->ss != SS_UNCONNECTED || sk->hashed) /* inet_listen */
		return leave(st, -EINVAL);
	/* __sys_listen: a backlog beyond somaxconn (or negative) becomes somaxconn */
	if ((unsigned)backlog > (unsigned)st->sysctl.somaxconn)
		backlog = st->sysctl.somaxconn;
	sk->max_ack_backlog = backlog;
	if (sk->node.state == TCP_LISTEN)
		return leave(st, 0);
	int rc = sk->tb ? inet_csk_listen_check_port(st, sk) : inet_csk_get_port(st, sk, 0); /* autobind */
	if (rc < 0)
		return leave(st, rc);
	inet_csk_update_fastreuse(sk->tb, sk, true); /* a listener: no SO_REUSEADDR fast path */
	/* Fast Open on every listener without TCP_FASTOPEN (the sysctl's 0x400 with 0x2), its
	 * queue as long as the backlog — unless TCP_FASTOPEN already gave it one */
	int tfo = st->sysctl.tcp_fastopen;
	if ((tfo & TFO_SERVER_WO_SOCKOPT1) && (tfo & TFO_SERVER_ENABLE) &&
	    !(sk->accept_queue.fastopenq && sk->accept_queue.fastopenq->max_qlen)) {
		rc = tcp_fastopen_queue_tune(st, sk, backlog);
		if (rc < 0)
			return leave(st, rc);
		tcp_fastopen_init_key_once(st);
	}
	tcp_set_state(st, sk, TCP_LISTEN);
	inet_listen_hash(st, sk);
	return leave(st, 0);
}

/* inet_csk_accept */
int ustack_accept4(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	ENTER(st, fd, lsk);
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return leave(st, -EINVAL);
	if (lsk->node.state != TCP_LISTEN)
		return leave(st, -EINVAL);
	if (!lsk->accept_queue.head) { /* inet_csk_wait_for_connect, for sock_rcvtimeo */
		struct sk_timeo to;
		int rc = 0;
		sk_timeo_start(st, &to, lsk->rcvtimeo);
		while (!lsk->accept_queue.head) {
			if (lsk->nonblock || !lsk->rcvtimeo || to.expired) {
				rc = -EAGAIN;
				break;
			}
			sk_wait_event(st);
			/* the descriptor first: a listener closed meanwhile may be freed already */
			if (sock_lookup_fd(st, fd) != lsk || lsk->node.state != TCP_LISTEN) {
				rc = -EINVAL; /* closed or shut down meanwhile */
				break;
			}
		}
		sk_timeo_stop(st, &to);
		if (rc)
			return leave(st, rc);
	}
	struct sock *sk = lsk->accept_queue.head;
	int rc = fd_alloc(st, sk); /* before it leaves the queue: EMFILE leaves it there */
	if (rc < 0)
		return leave(st, rc);
	inet_csk_accept(st, lsk);
	sk->nonblock = flags & SOCK_NONBLOCK;
	sk->ss = SS_CONNECTED;
	if (addr && len) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(sk->node.rport),
					   .sin_addr.s_addr = htonl(sk->node.raddr) };
		memcpy(addr, &sin, *len < sizeof(sin) ? *len : sizeof(sin));
		*len = sizeof(sin);
	}
	return leave(st, rc);
}

int ustack_accept(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len)
{
	return ustack_accept4(st, fd, addr, len, 0);
}

/*
 * __inet_stream_connect: what connect() answers depends on the socket's SS_* state as much as
 * on the TCP state — a second connect() after a non-blocking one succeeded returns 0, a third
 * EISCONN; after one failed, the next reports the error (or ECONNABORTED) and the one after
 * that starts afresh.  A connect deferred by TCP_FASTOPEN_CONNECT returns 0 at once and is
 * completed by the first write (is_sendmsg): EINPROGRESS then, EISCONN to connect() again.
 */
static int inet_stream_connect(struct ustack *st, struct sock *sk, int fd, const struct sockaddr *addr,
			       socklen_t len, bool nonblock, bool is_sendmsg)
{
	int rc;
	/* AF_UNSPEC: "disconnect" — Linux aborts whatever the socket is doing (tcp_disconnect)
	 * and leaves it unconnected, to connect or listen again; 0 (sendmsg_fastopen refused
	 * it before: EOPNOTSUPP) */
	if (addr && addr->sa_family == AF_UNSPEC) {
		tcp_disconnect(st, sk);
		sk->ss = SS_UNCONNECTED;
		return 0;
	}
	switch (sk->ss) {
	case SS_DISCONNECTING: /* a shutdown() ended the connect: nothing but AF_UNSPEC revives it */
		return -EINVAL;
	case SS_CONNECTED:
		return -EISCONN;
	case SS_CONNECTING:
		rc = sk->defer_connect ? (is_sendmsg ? -EINPROGRESS : -EISCONN) : -EALREADY;
		break;
	default: {
		if (sk->node.state != TCP_CLOSE)
			return -EISCONN;
		const struct sockaddr_in *sin;
		rc = check_sockaddr(addr, len, &sin); /* tcp_v4_connect's checks */
		if (rc < 0)
			return rc;
		if (sin->sin_family != AF_INET)
			return -EAFNOSUPPORT;
		rc = tcp_v4_connect(st, sk, ntohl(sin->sin_addr.s_addr), ntohs(sin->sin_port));
		if (rc < 0)
			return rc;
		sk->ss = SS_CONNECTING;
		if (sk->defer_connect)
			return 0;
		rc = -EINPROGRESS;
		break;
	}
	}
	if (sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV) {
		/* inet_wait_for_connect for sock_sndtimeo: when it runs out, EINPROGRESS, and the
		 * handshake goes on */
		if (nonblock || !sk->sndtimeo)
			return rc;
		struct sk_timeo to;
		sk_timeo_start(st, &to, sk->sndtimeo);
		while ((sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV) && !to.expired) {
			sk_wait_event(st);
			if (sock_lookup_fd(st, fd) != sk) {
				sk_timeo_stop(st, &to);
				return -EBADF; /* closed by another thread meanwhile */
			}
		}
		sk_timeo_stop(st, &to);
		if (sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV)
			return rc;
	}
	if (sk->node.state == TCP_CLOSE) { /* RST, timeout, or an error: sock_error */
		rc = sk->err ? -sk->err : -ECONNABORTED;
		sk->err = 0;
		sk->ss = SS_UNCONNECTED;
		tcp_disconnect(st, sk); /* the address goes, the next ISN is set */
		return rc;
	}
	sk->ss = SS_CONNECTED;
	return 0;
}

int ustack_connect(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len)
{
	ENTER(st, fd, sk);
	if (addr && len < (socklen_t)sizeof(sa_family_t))
		return leave(st, -EINVAL);
	return leave(st, inet_stream_connect(st, sk, fd, addr, len, sk->nonblock, false));
}

static bool closing_state(int state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_CLOSING || state == TCP_LAST_ACK;
}

/* sk_stream_wait_close: SO_LINGER with a timeout makes close() wait (up to l_linger seconds
 * of the stack's clock) until our FIN is acknowledged; close() returns 0 either way. */
static void sk_stream_wait_close(struct ustack *st, struct sock *sk)
{
	sk->lingering = true;
	sk->wait_expired = false;
	timer_arm(st, &sk->timers.wait, st->now + (uint64_t)sk->linger * 1000000u);
	while (closing_state(sk->node.state) && !sk->wait_expired)
		sk_wait_event(st);
	timer_cancel(st, &sk->timers.wait);
	sk->lingering = false;
	if (sk->node.state == TCP_CLOSE)
		sk_free(st, sk); /* tcp_done left it to us */
	else if (sk->node.state == TCP_FIN_WAIT2)
		tcp_fin_wait2_orphan(st, sk); /* the orphan's wait for the peer's FIN */
}

int ustack_close(struct ustack *st, int fd)
{
	if (ep_is_epoll_fd(fd))
		return ep_close(st, fd);
	ENTER(st, fd, sk);
	fd_free(st, fd);
	sk->fd = -1;
	tcp_account_owing(st, sk, false); /* after a shutdown(SHUT_WR), an orphan that owes */
	ep_sk_release(sk);
	switch (sk->node.state) {
	case TCP_LISTEN:
		inet_csk_listen_stop(st, sk);
		sk_free(st, sk); /* pending request sockets keep its memory (sk_free) */
		break;
	case TCP_SYN_SENT:
		/* tcp_close in SYN_SENT: nothing was agreed, nothing is sent (SO_LINGER {1, 0}
		 * still counts, as __tcp_close counts it before tcp_disconnect) */
		if (sk->linger == 0)
			MIB_INC(st, TcpExtTCPAbortOnData);
		tcp_set_state(st, sk, TCP_CLOSE);
		sk_free(st, sk);
		break;
	case TCP_SYN_RECV:
		if (!sk->fastopen_rsk) {
			/* a simultaneous open not yet complete: ustack aborts it (Linux would
			 * queue a FIN for after the handshake) */
			tcp_send_active_reset(st, sk);
			tcp_done(st, sk, 0);
			break;
		}
		/* a Fast Open child: FIN_WAIT1, as from ESTABLISHED */
		/* fall through */
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		/* __tcp_close, whatever the state: unread data or SO_LINGER {1, 0} resets; else a
		 * FIN if none went yet (a shutdown(SHUT_WR) sent it); then, with SO_LINGER, wait
		 * until our FIN is acknowledged — after a shutdown too, or an application that
		 * exits at close() would lose what is still in flight — and on a non-blocking
		 * socket too: inet_release passes the linger time whatever O_NONBLOCK says.  An
		 * orphan until done. */
		if (!tcp_close(st, sk) && sk->linger > 0)
			sk_stream_wait_close(st, sk);
		break;
	default: /* TCP_CLOSE: reset, timed out, or its connection handed to TIME_WAIT */
		sk_free(st, sk);
		break;
	}
	sk_wake(st);
	return leave(st, 0);
}

int ustack_shutdown(struct ustack *st, int fd, int how)
{
	ENTER(st, fd, sk);
	if (how < SHUT_RD || how > SHUT_RDWR)
		return leave(st, -EINVAL);
	/* inet_shutdown: on a socket that is not connected, ENOTCONN — except a listener, which
	 * stops listening.  A connect() not yet reported ends here: SS_CONNECTED if it
	 * completed, else SS_DISCONNECTING, on which connect() and listen() say EINVAL. */
	int state = sk->node.state;
	if (sk->ss == SS_CONNECTING)
		sk->ss = state == TCP_SYN_SENT || state == TCP_SYN_RECV || state == TCP_CLOSE ? SS_DISCONNECTING
											: SS_CONNECTED;
	if (state == TCP_LISTEN && how == SHUT_WR)
		return leave(st, 0); /* inet_shutdown: no RCV_SHUTDOWN, nothing to do, 0 */
	if (state == TCP_CLOSE) {
		/* ENOTCONN, but the directions are shut all the same ("a hack to wake up other
		 * listeners"): poll says so, and a socket never connected keeps it into its
		 * connection — after shutdown(SHUT_RD), its first read is end of stream, as on
		 * this machine's Linux */
		if (how != SHUT_WR)
			sk->shut_rd = true;
		if (how != SHUT_RD)
			sk->shut_wr = true;
		sk_wake_sk(st, sk);
		return leave(st, -ENOTCONN);
	}
	if (state == TCP_LISTEN || state == TCP_SYN_SENT) {
		/* inet_shutdown: the listener stops, the attempt is abandoned (ECONNRESET for
		 * SO_ERROR), and the socket may connect or listen afresh */
		tcp_disconnect(st, sk);
		sk->ss = SS_UNCONNECTED;
		return leave(st, 0);
	}
	if (how != SHUT_WR)
		sk->shut_rd = true; /* reads now see end of stream */
	if (how != SHUT_RD && !sk->shut_wr) {
		sk->shut_wr = true;
		tcp_shutdown_wr(st, sk); /* FIN after what is queued */
	}
	sk_wake_sk(st, sk);
	return leave(st, 0);
}

int ustack_listen_queues(struct ustack *st, int fd, int *syn_qlen, int *accept_qlen, int *max_backlog)
{
	ENTER(st, fd, sk);
	if (sk->node.state != TCP_LISTEN)
		return leave(st, -EINVAL);
	if (syn_qlen)
		*syn_qlen = sk->accept_queue.qlen;
	if (accept_qlen)
		*accept_qlen = sk->ack_backlog;
	if (max_backlog)
		*max_backlog = sk->max_ack_backlog;
	return leave(st, 0);
}

static int name_out(struct sockaddr *addr, socklen_t *len, uint32_t a, uint16_t p)
{
	if (!addr || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(a) };
	memcpy(addr, &sin, *len < sizeof(sin) ? *len : sizeof(sin));
	*len = sizeof(sin);
	return 0;
}

int ustack_getsockname(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len)
{
	ENTER(st, fd, sk);
	return leave(st, name_out(addr, len, sk->node.laddr, sk->node.lport));
}

int ustack_getpeername(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len)
{
	ENTER(st, fd, sk);
	/* inet_getname: a peer while the connection has one — through FIN_WAIT2, CLOSE_WAIT,
	 * CLOSING and LAST_ACK too; not before the SYN-ACK, nor once closed or disconnected */
	int state = sk->node.state;
	if (!sk->node.rport || state == TCP_CLOSE || state == TCP_SYN_SENT || state == TCP_LISTEN)
		return leave(st, -ENOTCONN);
	return leave(st, name_out(addr, len, sk->node.raddr, sk->node.rport));
}

int ustack_fcntl(struct ustack *st, int fd, int cmd, int arg)
{
	ENTER(st, fd, sk);
	switch (cmd) {
	case F_GETFL:
		return leave(st, O_RDWR | (sk->nonblock ? O_NONBLOCK : 0));
	case F_SETFL:
		sk->nonblock = arg & O_NONBLOCK;
		return leave(st, 0);
	default:
		return leave(st, -EINVAL);
	}
}

/* tcp_poll */
short sk_poll(const struct ustack *st, const struct sock *sk)
{
	short mask = 0;
	int state = sk->node.state;
	if (state == TCP_LISTEN)
		return sk->accept_queue.head ? POLLIN | POLLRDNORM : 0;
	bool closed = state == TCP_CLOSE;
	if ((sk->shut_rd && sk->shut_wr) || closed)
		mask |= POLLHUP;
	if (sk->shut_rd)
		mask |= POLLIN | POLLRDNORM | POLLRDHUP;
	/* at the mark the urgent byte does not count as readable unless it is inline */
	int target = sk_rcvlowat(sk) + (tcp_urg_at_mark(sk) && !sk->oobinline);
	if (tcp_epollin_ready(sk, target) || sk->fin_rcvd)
		mask |= POLLIN | POLLRDNORM;
	if (sk->ext && (sk->ext->urg_data & TCP_URG_VALID))
		mask |= POLLPRI;
	if (sk->fin_rcvd)
		mask |= POLLRDHUP;
	/* sk_stream_is_writeable: writable when half the send buffer is free, and (with
	 * TCP_NOTSENT_LOWAT) when less than half the low-water mark waits unsent */
	if (state != TCP_SYN_SENT && (state != TCP_SYN_RECV || sk->fastopen_rsk) &&
	    (sk->shut_wr || (tcp_stream_wspace_ok(sk) &&
			     tcp_stream_memory_free(sk, st->sysctl.tcp_notsent_lowat, 1))))
		mask |= POLLOUT | POLLWRNORM;
	else if (state == TCP_SYN_SENT && sk->defer_connect)
		mask |= POLLOUT | POLLWRNORM; /* write() will send the SYN with its data */
	if (sk->err || sk_errq_pending(sk)) /* a pending error, or the error queue */
		mask |= POLLERR;
	return mask;
}

int ustack_ioctl(struct ustack *st, int fd, unsigned long req, int *arg)
{
	ENTER(st, fd, sk);
	int v;
	switch (req) {
	case SIOCINQ: /* = FIONREAD; tcp_inq: up to an urgent mark ahead */
		if (sk->node.state == TCP_LISTEN)
			return leave(st, -EINVAL);
		v = sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV ? 0 : tcp_inq(sk);
		break;
	case SIOCATMARK: /* the next byte read is the urgent one (or was: after MSG_OOB took it) */
		v = tcp_urg_at_mark(sk);
		break;
	case SIOCOUTQ:
		if (sk->node.state == TCP_LISTEN)
			return leave(st, -EINVAL);
		v = sk->data_init ? (int)(sk->write_seq - sk->snd_una) : 0;
		break;
	case SIOCOUTQNSD:
		if (sk->node.state == TCP_LISTEN)
			return leave(st, -EINVAL);
		v = sk->data_init && (int32_t)(sk->write_seq - sk->snd_nxt) > 0 ? (int)(sk->write_seq - sk->snd_nxt) : 0;
		break;
	default:
		return leave(st, -ENOTTY);
	}
	if (!arg)
		return leave(st, -EFAULT);
	*arg = v;
	return leave(st, 0);
}

int ustack_tcp_state(struct ustack *st, int fd)
{
	ENTER(st, fd, sk);
	return leave(st, sk->node.state);
}

/* The real-time instant a wait of timeout_ms (> 0) ends, for sk_wait_event_until. */
void sk_wait_deadline(struct timespec *deadline, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, deadline);
	if (timeout_ms > 0) {
		deadline->tv_sec += timeout_ms / 1000;
		deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline->tv_nsec >= 1000000000L) {
			deadline->tv_sec++;
			deadline->tv_nsec -= 1000000000L;
		}
	}
}

int ustack_poll(struct ustack *st, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	struct timespec deadline;
	sk_wait_deadline(&deadline, timeout_ms);
	stack_lock(st);
	for (;;) {
		int ready = 0;
		for (nfds_t i = 0; i < nfds; i++) {
			struct sock *sk = fds[i].fd < 0 ? NULL : sock_lookup_fd(st, fds[i].fd);
			if (fds[i].fd < 0)
				fds[i].revents = 0;
			else if (!sk)
				fds[i].revents = POLLNVAL;
			else
				fds[i].revents = (short)(sk_poll(st, sk) & (fds[i].events | POLLERR | POLLHUP));
			if (fds[i].revents)
				ready++;
		}
		if (ready || timeout_ms == 0)
			return leave(st, ready);
		if (timeout_ms < 0)
			sk_wait_event(st);
		else if (sk_wait_event_until(st, &deadline) == ETIMEDOUT)
			timeout_ms = 0;
	}
}

void ustack_set_sock_wake(struct ustack *st, void (*fn)(void *arg), void *arg)
{
	stack_lock(st);
	st->tcp->wake_hook = fn;
	st->tcp->wake_hook_arg = arg;
	stack_unlock(st);
}

/* ---- data ------------------------------------------------------------------------------ */

/*
 * tcp_sendmsg_fastopen: sendto(MSG_FASTOPEN) — or the first write after a connect that
 * TCP_FASTOPEN_CONNECT deferred — is connect and write in one: the SYN takes what data it can
 * (tcp_send_syn_data), and *copied says how much.  EOPNOTSUPP when active Fast Open is off or
 * the address is AF_UNSPEC, EALREADY while another one is being built.
 */
static int sendmsg_fastopen(struct ustack *st, struct sock *sk, int fd, const uint8_t *buf, size_t len, int flags,
			    const struct sockaddr *addr, socklen_t addrlen, size_t *copied)
{
	if (!(st->sysctl.tcp_fastopen & TFO_CLIENT_ENABLE) ||
	    (addr && addrlen >= (socklen_t)sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC))
		return -EOPNOTSUPP;
	if (sk->fastopen_req)
		return -EALREADY;
	struct tcp_fastopen_request fo = { .cookie.len = 0, .data = buf, .size = len };
	sk->fastopen_req = &fo;
	int rc = 0;
	if (sk->defer_connect) {
		rc = tcp_connect(st, sk);
		if (rc < 0) {
			tcp_done(st, sk, 0);
			sk->err = 0;
		}
	}
	if (rc == 0)
		rc = inet_stream_connect(st, sk, fd, addr, addrlen, sk->nonblock || (flags & MSG_DONTWAIT), true);
	if (sock_lookup_fd(st, fd) == sk && sk->fastopen_req == &fo) {
		*copied = fo.copied;
		sk->fastopen_req = NULL;
		sk->defer_connect = 0;
	}
	return rc;
}

/*
 * sock_cmsg_send: a sendmsg's control messages.  SO_TIMESTAMPING replaces the socket's record
 * flags for this write (only record flags: EINVAL otherwise); SO_MARK and SO_PRIORITY are
 * checked and, as the socket's own are, without effect here; anything else at SOL_SOCKET is
 * EINVAL, other levels are skipped.  *tsflags: the write's SO_TIMESTAMPING flags.
 */
static int sock_cmsg_send(const struct sock *sk, const struct msghdr *msg, uint32_t *tsflags)
{
	*tsflags = sk->ext ? sk->ext->tsflags : 0;
	if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_len < sizeof(struct cmsghdr) ||
		    c->cmsg_len > msg->msg_controllen - (size_t)((char *)c - (char *)msg->msg_control))
			return -EINVAL; /* CMSG_OK */
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		uint32_t v;
		switch (c->cmsg_type) {
		case USTACK_SO_TIMESTAMPING_OLD:
		case USTACK_SO_TIMESTAMPING_NEW:
			if (c->cmsg_len != CMSG_LEN(sizeof(uint32_t)))
				return -EINVAL;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			if (v & ~SK_TS_TX_RECORD_MASK)
				return -EINVAL;
			*tsflags = (*tsflags & ~SK_TS_TX_RECORD_MASK) | v;
			break;
		case SO_MARK:
		case SO_PRIORITY:
			if (c->cmsg_len != CMSG_LEN(sizeof(uint32_t)))
				return -EINVAL;
			break;
		case SCM_RIGHTS: /* SOL_UNIX's, in truth: ignored, as __sock_cmsg_send does */
		case SCM_CREDENTIALS:
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * zerocopy_fill_skb_from_iter: the page fragments a MSG_ZEROCOPY write would pin — each
 * iovec's pages, a page that continues the previous fragment merged into it — which bound how
 * much of the write one skb takes (MAX_SKB_FRAGS).  *v is allocated; 0, or -ENOBUFS.
 */
static int sock_zc_frags(const struct iovec *iov, size_t n, struct tcp_zc_frags *zf, uint32_t **v)
{
	const uintptr_t page = 4096;
	size_t cap = 0;
	for (size_t i = 0; i < n; i++)
		if (iov[i].iov_len) {
			uintptr_t a = (uintptr_t)iov[i].iov_base;
			cap += (a + iov[i].iov_len - 1) / page - a / page + 1;
		}
	if (!(*v = malloc((cap ? cap : 1) * sizeof(**v))))
		return -ENOBUFS;
	uint32_t count = 0;
	uintptr_t prev_end = 0;
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)iov[i].iov_base, end = a + iov[i].iov_len;
		while (a < end) {
			uintptr_t pg_end = (a & ~(page - 1)) + page;
			uint32_t piece = (uint32_t)((end < pg_end ? end : pg_end) - a);
			if (count && prev_end == a && (a & (page - 1)))
				(*v)[count - 1] += piece;
			else
				(*v)[count++] = piece;
			a += piece;
			prev_end = a;
		}
	}
	zf->len = *v;
	zf->n = count;
	return 0;
}

/* tcp_sendmsg_locked: a Fast Open first (the data the SYN took counts as sent), then the rest
 * of the data as any write.  TCP leaves the address alone once connected. */
static ssize_t sock_sendmsg(struct ustack *st, int fd, const void *buf, size_t len, int flags,
			    const struct sockaddr *addr, socklen_t addrlen, const struct msghdr *ctl)
{
	ENTER(st, fd, sk);
	uint32_t tsflags;
	int crc = sock_cmsg_send(sk, ctl, &tsflags);
	if (crc < 0)
		return leave(st, crc);
	/* MSG_OOB makes the write's last byte urgent (tcp_urg.c); MSG_ZEROCOPY counts only with
	 * SO_ZEROCOPY (and data), and is completed by a notification (zerocopy.c); the rest of
	 * the flags (MSG_MORE, MSG_EOR, MSG_CONFIRM, ...) only hint at coalescing */
	if (!buf && len)
		return leave(st, -EFAULT);
	bool zc = (flags & MSG_ZEROCOPY) && len && sk->zerocopy;
	if (zc && sk_zerocopy_reserve(sk) < 0) /* msg_zerocopy_realloc, before any data moves */
		return leave(st, -ENOBUFS);
	size_t copied_syn = 0;
	if ((flags & MSG_FASTOPEN) || sk->defer_connect) {
		int rc = sendmsg_fastopen(st, sk, fd, buf, len, flags, addr, addrlen, &copied_syn);
		if (rc == -EINPROGRESS && copied_syn > 0) {
			if (zc) /* the SYN's data is this send's, and its notification */
				sk_zerocopy_sent(sk, sk->write_seq);
			stack_unlock(st);
			return (ssize_t)copied_syn;
		}
		if (rc < 0)
			return leave(st, rc);
		if (sock_lookup_fd(st, fd) != sk)
			return leave(st, -EBADF);
	}
	/* a zerocopy write's skbs hold at most MAX_SKB_FRAGS of its pages */
	struct tcp_zc_frags zf, *zfp = NULL;
	uint32_t *zv = NULL;
	if (zc && !copied_syn) {
		struct iovec one = { (void *)(uintptr_t)buf, len };
		const struct iovec *iov = ctl && ctl->msg_iovlen ? ctl->msg_iov : &one;
		size_t niov = ctl && ctl->msg_iovlen ? ctl->msg_iovlen : 1;
		if (sock_zc_frags(iov, niov, &zf, &zv) < 0)
			return leave(st, -ENOBUFS);
		zfp = &zf;
	}
	ssize_t rc = tcp_sendmsg(st, sk, fd, (const uint8_t *)buf + copied_syn, len - copied_syn,
				 flags & ~MSG_FASTOPEN, tsflags, zfp);
	free(zv);
	if (zc && (rc > 0 || copied_syn) && sock_lookup_fd(st, fd) == sk)
		sk_zerocopy_sent(sk, sk->write_seq);
	if (rc < 0 && copied_syn)
		rc = 0;
	return rc < 0 ? leave(st, (int)rc) : (stack_unlock(st), rc + (ssize_t)copied_syn);
}

ssize_t ustack_sendto(struct ustack *st, int fd, const void *buf, size_t len, int flags,
		      const struct sockaddr *addr, socklen_t addrlen)
{
	return sock_sendmsg(st, fd, buf, len, flags, addr, addrlen, NULL);
}

ssize_t ustack_send(struct ustack *st, int fd, const void *buf, size_t len, int flags)
{
	return ustack_sendto(st, fd, buf, len, flags, NULL, 0);
}

/* sendmsg: the iovecs are gathered into one buffer around a single send, so the call is one
 * write as the kernel's tcp_sendmsg sees it; msg_name matters only to a Fast Open. */
ssize_t ustack_sendmsg(struct ustack *st, int fd, const struct msghdr *msg, int flags)
{
	if (!msg || (msg->msg_iovlen && !msg->msg_iov)) {
		errno = EFAULT;
		return -1;
	}
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len && !msg->msg_iov[i].iov_base) {
			errno = EFAULT;
			return -1;
		}
		total += msg->msg_iov[i].iov_len;
	}
	uint8_t one;
	const void *buf = msg->msg_iovlen == 1 ? msg->msg_iov[0].iov_base : &one;
	uint8_t *tmp = NULL;
	if (msg->msg_iovlen > 1 && total) {
		if (!(tmp = malloc(total))) {
			errno = ENOMEM;
			return -1;
		}
		for (size_t i = 0, off = 0; i < msg->msg_iovlen; off += msg->msg_iov[i].iov_len, i++)
			memcpy(tmp + off, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
		buf = tmp;
	}
	ssize_t rc = sock_sendmsg(st, fd, total ? buf : &one, total, flags, msg->msg_name, msg->msg_namelen, msg);
	free(tmp);
	return rc;
}

/* recv(MSG_OOB): the urgent byte (tcp_recv_urg), never waiting; a listener is ENOTCONN first */
static ssize_t sock_recv_oob(struct sock *sk, void *buf, size_t len, int flags, int *msg_flags)
{
	if (sk->node.state == TCP_LISTEN)
		return -ENOTCONN;
	return tcp_recv_urg(sk, buf, len, flags, msg_flags);
}

ssize_t ustack_recv(struct ustack *st, int fd, void *buf, size_t len, int flags)
{
	ENTER(st, fd, sk);
	if (flags & ~(MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_OOB))
		return leave(st, -EOPNOTSUPP);
	if (!buf && len)
		return leave(st, -EFAULT);
	int mf = 0;
	ssize_t rc = (flags & MSG_OOB) ? sock_recv_oob(sk, buf, len, flags, &mf) : tcp_recvmsg(st, sk, fd, buf, len, flags);
	return rc < 0 ? leave(st, (int)rc) : (stack_unlock(st), rc);
}

/*
 * recvmsg: the iovecs are filled in order (through one bounce buffer when there are several);
 * with TCP_INQ, a TCP_CM_INQ control message says how much is left to read — 1 at the end of
 * the stream, so that a reader knows to read again and see it (tcp_inq_hint) — or MSG_CTRUNC
 * if msg_control has no room for it (put_cmsg).  TCP leaves msg_name alone (msg_namelen 0).
 */
ssize_t ustack_recvmsg(struct ustack *st, int fd, struct msghdr *msg, int flags)
{
	ENTER(st, fd, sk);
	if (flags & ~(MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_ERRQUEUE | MSG_OOB))
		return leave(st, -EOPNOTSUPP);
	if (!msg || (msg->msg_iovlen && !msg->msg_iov))
		return leave(st, -EFAULT);
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len && !msg->msg_iov[i].iov_base)
			return leave(st, -EFAULT);
		total += msg->msg_iov[i].iov_len;
	}
	if (flags & MSG_ERRQUEUE) { /* inet_recv_error: never waits */
		ssize_t e = sk_recv_error(sk, msg);
		return e < 0 ? leave(st, (int)e) : (stack_unlock(st), e);
	}
	if (flags & MSG_OOB) { /* the byte into the first iovec with room */
		struct iovec *v = NULL;
		for (size_t i = 0; i < msg->msg_iovlen && !v; i++)
			if (msg->msg_iov[i].iov_len)
				v = &msg->msg_iov[i];
		int mf = 0;
		ssize_t e = sock_recv_oob(sk, v ? v->iov_base : NULL, v ? 1 : 0, flags, &mf);
		if (e < 0)
			return leave(st, (int)e);
		msg->msg_flags = mf;
		msg->msg_namelen = 0;
		msg->msg_controllen = 0;
		stack_unlock(st);
		return e;
	}
	uint8_t *buf = msg->msg_iovlen == 1 ? msg->msg_iov[0].iov_base : NULL;
	if (msg->msg_iovlen > 1 && total && !(buf = malloc(total)))
		return leave(st, -ENOMEM);
	ssize_t rc = tcp_recvmsg(st, sk, fd, buf, total, flags);
	if (msg->msg_iovlen > 1) {
		for (size_t i = 0, off = 0; rc > 0 && off < (size_t)rc && i < msg->msg_iovlen; i++) {
			size_t k = (size_t)rc - off < msg->msg_iov[i].iov_len ? (size_t)rc - off : msg->msg_iov[i].iov_len;
			memcpy(msg->msg_iov[i].iov_base, buf + off, k);
			off += k;
		}
		free(buf);
	}
	if (rc < 0)
		return leave(st, (int)rc);
	msg->msg_namelen = 0;
	msg->msg_flags = 0;
	size_t used = 0;
	if (sock_lookup_fd(st, fd) == sk && sk->recvmsg_inq) { /* sk may be gone (closed meanwhile) */
		int inq = (int)sk->rcvq.len;
		if (!inq && sk->fin_rcvd)
			inq = 1;
		used = sk_put_cmsg(msg, SOL_TCP, TCP_CM_INQ, &inq, sizeof(inq));
	}
	msg->msg_controllen = used;
	stack_unlock(st);
	return rc;
}

ssize_t ustack_write(struct ustack *st, int fd, const void *buf, size_t len)
{
	return ustack_send(st, fd, buf, len, 0);
}

ssize_t ustack_read(struct ustack *st, int fd, void *buf, size_t len)
{
	return ustack_recv(st, fd, buf, len, 0);
}
