/*
 * MSG_ZEROCOPY for TCP (Linux's msg_zerocopy_* in net/core/skbuff.c, ip_recv_error).
 *
 * With SO_ZEROCOPY set, each send with MSG_ZEROCOPY that queues data takes the next
 * notification id (sk_zckey); when the peer has acknowledged all of that call's data, a
 * notification goes on the socket's error queue — consecutive ids merge into one [lo, hi]
 * range, as __msg_zerocopy_callback merges them — and poll reports POLLERR until
 * recvmsg(MSG_ERRQUEUE) takes it: a zero-length read whose IP_RECVERR control message holds a
 * struct sock_extended_err with origin SO_EE_ORIGIN_ZEROCOPY and ee_info..ee_data = lo..hi.
 * ustack always copies into its send ring, so every notification says
 * SO_EE_CODE_ZEROCOPY_COPIED — what Linux says too whenever it had to copy (loopback, tun):
 * the application may reuse its buffer at once and is told that no pages were pinned.
 * Pending ids are bounded; past TCP_ZC_MAX a zerocopy send fails with ENOBUFS, as Linux's
 * does when the notification cannot be allocated (optmem).
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>


static bool after32(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static void zc_complete(struct sock *sk, uint32_t id)
{
	if (sk->zc_err_n) {
		struct zc_range *t = &sk->zc_err[(sk->zc_err_head + sk->zc_err_n - 1u) % TCP_ZC_ERRQ];
		if (t->hi + 1u == id) {
			t->hi = id;
			return;
		}
	}
	if (sk->zc_err_n == TCP_ZC_ERRQ) { /* ids complete in order: this only merges a gap */
		sk->zc_err[(sk->zc_err_head + sk->zc_err_n - 1u) % TCP_ZC_ERRQ].hi = id;
		return;
	}
	sk->zc_err[(sk->zc_err_head + sk->zc_err_n) % TCP_ZC_ERRQ] = (struct zc_range){ id, id };
	sk->zc_err_n++;
}

void sk_zerocopy_acked(struct sock *sk)
{
	while (sk->zc_n) {
		struct zc_pending *p = &sk->zc_pend[sk->zc_head];
		if (after32(p->end, sk->snd_una))
			break;
		zc_complete(sk, p->id);
		sk->zc_head = (uint16_t)((sk->zc_head + 1u) % sk->zc_cap);
		sk->zc_n--;
	}
}

/* A zerocopy send queued data up to end: it takes the next id.  0, or -ENOBUFS. */
int sk_zerocopy_sent(struct sock *sk, uint32_t end)
{
	if (sk->zc_n == sk->zc_cap) {
		if (sk->zc_cap >= TCP_ZC_MAX)
			return -ENOBUFS;
		uint32_t cap = sk->zc_cap ? sk->zc_cap * 2u : 8u;
		struct zc_pending *v = malloc(cap * sizeof(*v));
		if (!v)
			return -ENOBUFS;
		for (uint32_t i = 0; i < sk->zc_n; i++)
			v[i] = sk->zc_pend[(sk->zc_head + i) % sk->zc_cap];
		free(sk->zc_pend);
		sk->zc_pend = v;
		sk->zc_cap = (uint16_t)cap;
		sk->zc_head = 0;
	}
	sk->zc_pend[(sk->zc_head + sk->zc_n) % sk->zc_cap] = (struct zc_pending){ sk->zckey++, end };
	sk->zc_n++;
	sk_zerocopy_acked(sk); /* already acknowledged (a blocking send that waited) */
	return 0;
}

void sk_zerocopy_free(struct sock *sk)
{
	free(sk->zc_pend);
	sk->zc_pend = NULL;
	sk->zc_head = sk->zc_n = sk->zc_cap = 0;
}

/* ip_recv_error: the oldest notification, or -EAGAIN. */
ssize_t sk_recv_error(struct sock *sk, struct msghdr *msg)
{
	if (!sk->zc_err_n)
		return -EAGAIN;
	struct zc_range r = sk->zc_err[sk->zc_err_head];
	sk->zc_err_head = (uint8_t)((sk->zc_err_head + 1u) % TCP_ZC_ERRQ);
	sk->zc_err_n--;
	struct {
		struct sock_extended_err ee;
		struct sockaddr_in offender; /* none for a zerocopy notification */
	} errhdr;
	memset(&errhdr, 0, sizeof(errhdr));
	errhdr.ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
	errhdr.ee.ee_code = SO_EE_CODE_ZEROCOPY_COPIED;
	errhdr.ee.ee_info = r.lo;
	errhdr.ee.ee_data = r.hi;
	msg->msg_flags = MSG_ERRQUEUE;
	size_t used = 0;
	if (msg->msg_control && msg->msg_controllen >= CMSG_LEN(sizeof(errhdr))) {
		struct cmsghdr *c = msg->msg_control;
		c->cmsg_level = SOL_IP;
		c->cmsg_type = IP_RECVERR;
		c->cmsg_len = CMSG_LEN(sizeof(errhdr));
		memcpy(CMSG_DATA(c), &errhdr, sizeof(errhdr));
		used = CMSG_SPACE(sizeof(errhdr)) < msg->msg_controllen ? CMSG_SPACE(sizeof(errhdr)) : msg->msg_controllen;
	} else {
		msg->msg_flags |= MSG_CTRUNC;
	}
	msg->msg_controllen = used;
	msg->msg_namelen = 0;
	return 0;
}
