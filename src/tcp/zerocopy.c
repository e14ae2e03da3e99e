/*
 * MSG_ZEROCOPY for TCP (Linux's msg_zerocopy_* in net/core/skbuff.c).
 *
 * With SO_ZEROCOPY set, each send with MSG_ZEROCOPY that queues data takes the next
 * notification id (sk_zckey); when the peer has acknowledged all of that call's data, a
 * notification goes on the socket's error queue (ip_sockglue.c) — consecutive ids merge into
 * one [lo, hi] range, as __msg_zerocopy_callback merges them — and poll reports POLLERR until
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
#include <stdlib.h>
#include <string.h>

/* __msg_zerocopy_callback: id is done; it extends the newest notification when it follows it */
static void zc_complete(struct sock *sk, uint32_t id)
{
	struct sock_ext *x = sk->ext;
	if (x->eq_n) {
		struct sk_err_msg *t = &x->errq[(x->eq_head + x->eq_n - 1u) % x->eq_cap];
		if (t->ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && t->ee.ee_data + 1u == id) {
			t->ee.ee_data = id;
			return;
		}
	}
	struct sk_err_msg *m = sk_errq_push(sk, true, NULL, 0);
	if (!m)
		return; /* out of memory: the application sees the id missing, as after ENOBUFS */
	m->ee.ee_origin = SO_EE_ORIGIN_ZEROCOPY;
	m->ee.ee_code = SO_EE_CODE_ZEROCOPY_COPIED;
	m->ee.ee_info = id;
	m->ee.ee_data = id;
}

void sk_zerocopy_acked(struct sock *sk)
{
	struct sock_ext *x = sk->ext;
	while (x && x->n) {
		struct zc_pending *p = &x->pend[x->head];
		if (after(p->end, sk->snd_una))
			break;
		zc_complete(sk, p->id);
		x->head = (uint16_t)((x->head + 1u) % x->cap);
		x->n--;
	}
}

/* Room for one more pending send (the state itself on first use): 0, or -ENOBUFS. */
int sk_zerocopy_reserve(struct sock *sk)
{
	struct sock_ext *x = sk_ext(sk);
	if (!x)
		return -ENOBUFS;
	if (x->n < x->cap)
		return 0;
	if (x->cap >= TCP_ZC_MAX)
		return -ENOBUFS;
	uint32_t cap = x->cap ? x->cap * 2u : 8u;
	struct zc_pending *v = ring_regrow(x->pend, sizeof(*v), x->head, x->n, x->cap, cap);
	if (!v)
		return -ENOBUFS;
	free(x->pend);
	x->pend = v;
	x->cap = (uint16_t)cap;
	x->head = 0;
	return 0;
}

/* A zerocopy send queued data up to end (sk_zerocopy_reserve made room): the next id. */
void sk_zerocopy_sent(struct sock *sk, uint32_t end)
{
	struct sock_ext *x = sk->ext;
	x->pend[(x->head + x->n) % x->cap] = (struct zc_pending){ x->zckey++, end };
	x->n++;
	sk_zerocopy_acked(sk); /* already acknowledged (a blocking send that waited) */
}
