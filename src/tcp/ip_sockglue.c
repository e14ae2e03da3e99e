/*
 * A socket's error queue (Linux's sk_error_queue: sock_queue_err_skb and
 * sock_dequeue_err_skb in net/core/skbuff.c, ip_icmp_error and ip_recv_error in
 * net/ipv4/ip_sockglue.c).
 *
 * Messages come from MSG_ZEROCOPY's completions (zerocopy.c), SO_TIMESTAMPING's transmit
 * timestamps (tcp_timestamping.c) and, with IP_RECVERR, from the ICMP errors that end a
 * connection attempt (tcp_v4_err).  recvmsg(MSG_ERRQUEUE) takes the
 * oldest: its payload (an ICMP error's quote, from the TCP header on) as data, MSG_TRUNC if
 * the buffer is shorter; msg_name, for an ICMP error, the address and port the quoted segment
 * was sent to; and an IP_RECVERR control message — struct sock_extended_err followed by the
 * offender, the ICMP error's sender (SO_EE_OFFENDER).  An ICMP error left behind the one taken
 * becomes the socket's pending error, as sock_dequeue_err_skb does; the last one taken clears it.
 * POLLERR stays up while anything waits.  The queue and the zerocopy state share one
 * allocation, made on first use, so that a socket that needs neither pays 8 bytes.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct sock_ext *sk_ext(struct sock *sk)
{
	if (!sk->ext)
		sk->ext = calloc(1, sizeof(*sk->ext));
	return sk->ext;
}

bool sk_errq_pending(const struct sock *sk)
{
	return sk->ext && sk->ext->eq_n;
}

/* A new message at the queue's tail, zeroed, with len bytes of payload — a copy of data, or
 * left for the caller to fill when data is NULL; NULL (nothing queued) when memory is short,
 * or when the queue holds SK_ERRQ_MAX already and this is not a zerocopy completion (Linux
 * bounds the queue by the receive buffer, but queues zerocopy notifications whatever it holds). */
struct sk_err_msg *sk_errq_push(struct sock *sk, bool zerocopy, const void *data, size_t len)
{
	struct sock_ext *x = sk_ext(sk);
	if (!x || (!zerocopy && x->eq_n >= SK_ERRQ_MAX) || len > UINT32_MAX)
		return NULL;
	if (x->eq_n == x->eq_cap) {
		uint32_t cap = x->eq_cap ? x->eq_cap * 2u : 4u;
		if (cap > UINT16_MAX)
			return NULL;
		struct sk_err_msg *v = ring_regrow(x->errq, sizeof(*v), x->eq_head, x->eq_n, x->eq_cap, cap);
		if (!v)
			return NULL;
		free(x->errq);
		x->errq = v;
		x->eq_cap = (uint16_t)cap;
		x->eq_head = 0;
	}
	uint8_t *payload = len ? malloc(len) : NULL;
	if (len && !payload)
		return NULL;
	if (data && len)
		memcpy(payload, data, len);
	struct sk_err_msg *m = &x->errq[(x->eq_head + x->eq_n) % x->eq_cap];
	memset(m, 0, sizeof(*m));
	m->payload = payload;
	m->plen = (uint32_t)len;
	x->eq_n++;
	return m;
}

static bool is_icmp_err(const struct sk_err_msg *m)
{
	return m->ee.ee_origin == SO_EE_ORIGIN_ICMP;
}

/* skb_errqueue_purge: what IP_RECVERR queued goes when it is turned off — not the zerocopy
 * completions and timestamps, which the application asked for otherwise */
void sk_error_queue_purge(struct sock *sk)
{
	struct sock_ext *x = sk->ext;
	if (!x)
		return;
	uint16_t kept = 0;
	for (uint16_t i = 0; i < x->eq_n; i++) {
		struct sk_err_msg *m = &x->errq[(x->eq_head + i) % x->eq_cap];
		if (is_icmp_err(m)) {
			free(m->payload);
			continue;
		}
		x->errq[(x->eq_head + kept) % x->eq_cap] = *m;
		kept++;
	}
	x->eq_n = kept;
}

/* everything, when the socket goes */
static void sk_error_queue_free(struct sock *sk)
{
	struct sock_ext *x = sk->ext;
	for (; x && x->eq_n; x->eq_n--, x->eq_head = (uint16_t)((x->eq_head + 1u) % x->eq_cap))
		free(x->errq[x->eq_head].payload);
}

/* sk_clone_lock: what a child copies of its listener's extension */
void sk_ext_clone(struct sock *sk, const struct sock *lsk)
{
	const struct sock_ext *l = lsk->ext;
	if (!l || (!l->mark && !l->priority && !l->tsflags && !l->rcvlowat && !l->bound_dev_if) || !sk_ext(sk))
		return;
	sk->ext->mark = l->mark;
	sk->ext->priority = l->priority;
	sk->ext->tsflags = l->tsflags;
	sk->ext->rcvlowat = l->rcvlowat;
	sk->ext->bound_dev_if = l->bound_dev_if;
}

void sk_ext_free(struct sock *sk)
{
	if (!sk->ext)
		return;
	sk_error_queue_free(sk);
	free(sk->ext->errq);
	free(sk->ext->pend);
	free(sk->ext);
	sk->ext = NULL;
}

/*
 * ip_icmp_error: with IP_RECVERR, an ICMP error for the socket goes on its error queue —
 * its errno, type, code and info (the MTU of a fragmentation-needed, the pointer of a
 * parameter problem), who sent it, where the quoted segment was going (daddr:dport), and the
 * quote from the TCP header on as payload.
 */
void ip_icmp_error(struct sock *sk, int err, uint8_t type, uint8_t code, uint32_t info, uint32_t offender,
		   uint32_t daddr, uint16_t dport, const uint8_t *payload, size_t plen)
{
	if (!sk->recverr)
		return;
	struct sk_err_msg *m = sk_errq_push(sk, false, payload, plen);
	if (!m)
		return;
	m->ee.ee_errno = (uint32_t)err;
	m->ee.ee_origin = SO_EE_ORIGIN_ICMP;
	m->ee.ee_type = type;
	m->ee.ee_code = code;
	m->ee.ee_info = info;
	m->offender = offender;
	m->name_addr = daddr;
	m->name_port = dport;

}

/* ip_recv_error: the oldest message, or -EAGAIN (never waits). */
ssize_t sk_recv_error(struct sock *sk, struct msghdr *msg)
{
	struct sock_ext *x = sk->ext;
	if (!x || !x->eq_n)
		return -EAGAIN;
	struct sk_err_msg m = x->errq[x->eq_head];
	x->eq_head = (uint16_t)((x->eq_head + 1u) % x->eq_cap);
	x->eq_n--;
	/* sock_dequeue_err_skb: an ICMP error next in line becomes the pending error */
	const struct sk_err_msg *next = x->eq_n ? &x->errq[x->eq_head] : NULL;
	if (next && is_icmp_err(next))
		sk->err = (int)next->ee.ee_errno;
	else if (is_icmp_err(&m))
		sk->err = 0;
	msg->msg_flags = MSG_ERRQUEUE;
	size_t copied = 0;
	for (size_t i = 0; i < msg->msg_iovlen && copied < m.plen; i++) {
		size_t k = m.plen - copied < msg->msg_iov[i].iov_len ? m.plen - copied : msg->msg_iov[i].iov_len;
		memcpy(msg->msg_iov[i].iov_base, m.payload + copied, k);
		copied += k;
	}
	if (copied < m.plen)
		msg->msg_flags |= MSG_TRUNC;
	free(m.payload);
	socklen_t namelen = 0;
	if (is_icmp_err(&m) && msg->msg_name && msg->msg_namelen >= (socklen_t)sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(m.name_port),
					   .sin_addr.s_addr = htonl(m.name_addr) };
		memcpy(msg->msg_name, &sin, sizeof(sin));
		namelen = sizeof(sin);
	}
	msg->msg_namelen = namelen;
	size_t used = 0;
	/* sock_recv_timestamp: SCM_TIMESTAMPING, software time in the first of three, when the
	 * socket asks for software reports now (SOF_TIMESTAMPING_SOFTWARE) */
	if (m.ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING && (x->tsflags & SOF_TIMESTAMPING_SOFTWARE)) {
		struct timespec ts[3];
		memset(ts, 0, sizeof(ts));
		ts[0].tv_sec = (time_t)(m.tstamp_us / 1000000u);
		ts[0].tv_nsec = (long)(m.tstamp_us % 1000000u) * 1000;
		used = sk_put_cmsg_at(msg, used, SOL_SOCKET, x->tstamp_new ? USTACK_SO_TIMESTAMPING_NEW : USTACK_SO_TIMESTAMPING_OLD,
				      ts, sizeof(ts));
	}
	struct {
		struct sock_extended_err ee;
		struct sockaddr_in offender;
	} errhdr;
	memset(&errhdr, 0, sizeof(errhdr));
	errhdr.ee = m.ee;
	if (is_icmp_err(&m)) { /* ipv4_datagram_support_cmsg */
		errhdr.offender.sin_family = AF_INET;
		errhdr.offender.sin_addr.s_addr = htonl(m.offender);
	}
	used = sk_put_cmsg_at(msg, used, SOL_IP, IP_RECVERR, &errhdr, sizeof(errhdr));
	msg->msg_controllen = used;
	return (ssize_t)copied;
}
