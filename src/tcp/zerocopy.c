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
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>



static void zc_complete(struct zc_state *z, uint32_t id)
{
	if (z->err_n) {
		struct zc_range *t = &z->err[(z->err_head + z->err_n - 1u) % TCP_ZC_ERRQ];
		if (t->hi + 1u == id) {
			t->hi = id;
			return;
		}
	}
	if (z->err_n == TCP_ZC_ERRQ) { /* ids complete in order: this only merges a gap */
		z->err[(z->err_head + z->err_n - 1u) % TCP_ZC_ERRQ].hi = id;
		return;
	}
	z->err[(z->err_head + z->err_n) % TCP_ZC_ERRQ] = (struct zc_range){ id, id };
	z->err_n++;
}

void sk_zerocopy_acked(struct sock *sk)
{
	struct zc_state *z = sk->zc;
	while (z && z->n) {
		struct zc_pending *p = &z->pend[z->head];
		if (after(p->end, sk->snd_una))
			break;
		zc_complete(z, p->id);
		z->head = (uint16_t)((z->head + 1u) % z->cap);
		z->n--;
	}
}

/* Room for one more pending send (the state itself on first use): 0, or -ENOBUFS. */
int sk_zerocopy_reserve(struct sock *sk)
{
	if (!sk->zc && !(sk->zc = calloc(1, sizeof(*sk->zc))))
		return -ENOBUFS;
	struct zc_state *z = sk->zc;
	if (z->n < z->cap)
		return 0;
	if (z->cap >= TCP_ZC_MAX)
		return -ENOBUFS;
	uint32_t cap = z->cap ? z->cap * 2u : 8u;
	struct zc_pending *v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOBUFS;
	for (uint32_t i = 0; i < z->n; i++)
		v[i] = z->pend[(z->head + i) % z->cap];
	free(z->pend);
	z->pend = v;
	z->cap = (uint16_t)cap;
	z->head = 0;
	return 0;
}

/* A zerocopy send queued data up to end (sk_zerocopy_reserve made room): the next id. */
void sk_zerocopy_sent(struct sock *sk, uint32_t end)
{
	struct zc_state *z = sk->zc;
	z->pend[(z->head + z->n) % z->cap] = (struct zc_pending){ z->zckey++, end };
	z->n++;
	sk_zerocopy_acked(sk); /* already acknowledged (a blocking send that waited) */
}

void sk_zerocopy_free(struct sock *sk)
{
	if (sk->zc)
		free(sk->zc->pend);
	free(sk->zc);
	sk->zc = NULL;
}

/* ip_recv_error: the oldest notification, or -EAGAIN. */
ssize_t sk_recv_error(struct sock *sk, struct msghdr *msg)
{
	struct zc_state *z = sk->zc;
	if (!z || !z->err_n)
		return -EAGAIN;
	struct zc_range r = z->err[z->err_head];
	z->err_head = (uint8_t)((z->err_head + 1u) % TCP_ZC_ERRQ);
	z->err_n--;
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
	msg->msg_controllen = sk_put_cmsg(msg, SOL_IP, IP_RECVERR, &errhdr, sizeof(errhdr));
	msg->msg_namelen = 0;
	return 0;
}
