/*
 * SO_TIMESTAMPING for TCP's transmit side, in software (Linux's sock_set_timestamping in
 * net/core/sock.c, tcp_tx_timestamp in tcp.c, __skb_tstamp_tx in skbuff.c, tcp_ack_tstamp in
 * tcp_input.c).
 *
 * A write's last byte is its key: the skb holding it (ustack's write-queue record) carries the
 * write's record flags — TX_SCHED, TX_SOFTWARE, TX_ACK — and the key; a later write that joins
 * the same unsent skb and asks again moves the key to its own last byte, so the earlier write's
 * stamps are lost, as in Linux.  Each time a segment holding a key goes to the device (first
 * sent or resent), SCM_TSTAMP_SCHED then SCM_TSTAMP_SND are queued with a copy of the frame;
 * the first cumulative ACK past the key (never a SACK) queues SCM_TSTAMP_ACK with the skb's
 * data.  Each waits on the error queue (ip_sockglue.c) for recvmsg(MSG_ERRQUEUE): ENOMSG,
 * SO_EE_ORIGIN_TIMESTAMPING, ee_info the type, ee_data the key counted from OPT_ID's base (the
 * bytes acknowledged when OPT_ID was set, or written with OPT_ID_TCP), and, with the report
 * flag SOFTWARE, an SCM_TIMESTAMPING of the time on the stack's wall clock (st->wall_off).
 * OPT_TSONLY drops the payload.  No hardware stamps (TX_HARDWARE records nothing), no PHC, and
 * OPT_STATS's netlink attributes are not produced (the flag is accepted, as Linux accepts it).
 */
#include "core/stack.h"
#include "net/net.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <stdlib.h>
#include <string.h>

/* Linux 6.18's flags beyond what Debian's headers name */
#define TS_OPT_ID_TCP (1u << 16)
#define TS_MASK 0x7ffffu /* up to SOF_TIMESTAMPING_TX_COMPLETION (1 << 18) */

/* sock_set_timestamping, in its order: unknown bits, OPT_ID_TCP alone, OPT_ID on a socket with
 * no sequence space yet, OPT_STATS without OPT_TSONLY, BIND_PHC without a PHC. */
int sock_set_timestamping(struct sock *sk, int optname, const void *val, socklen_t len)
{
	struct { int flags, bind_phc; } ts = { 0, 0 };
	if (len < (socklen_t)sizeof(int))
		return -EINVAL;
	if (!val)
		return -EFAULT;
	memcpy(&ts, val, len == sizeof(ts) ? sizeof(ts) : sizeof(int));
	uint32_t f = (uint32_t)ts.flags;
	if (f & ~TS_MASK)
		return -EINVAL;
	if ((f & TS_OPT_ID_TCP) && !(f & SOF_TIMESTAMPING_OPT_ID))
		return -EINVAL;
	struct sock_ext *x = sk->ext;
	uint32_t old = x ? x->tsflags : 0;
	if (!f && !x)
		return 0;
	if (!(x = sk_ext(sk)))
		return -ENOMEM;
	if ((f & SOF_TIMESTAMPING_OPT_ID) && !(old & SOF_TIMESTAMPING_OPT_ID)) {
		if (sk->node.state == TCP_CLOSE || sk->node.state == TCP_LISTEN)
			return -EINVAL;
		x->tskey = (f & TS_OPT_ID_TCP) ? (sk->data_init ? sk->write_seq : sk->snd_nxt) : sk->snd_una;
	}
	if ((f & SOF_TIMESTAMPING_OPT_STATS) && !(f & SOF_TIMESTAMPING_OPT_TSONLY))
		return -EINVAL;
	if (f & SOF_TIMESTAMPING_BIND_PHC) /* no clock of a device to bind to */
		return sk_bound_dev_if(sk) ? -EINVAL : -EOPNOTSUPP;
	x->tsflags = f;
	x->tstamp_new = optname == USTACK_SO_TIMESTAMPING_NEW;
	return 0;
}

/* sk_getsockopt's flags: the new option number reads none unless they were set through it */
uint32_t sock_get_timestamping(const struct sock *sk, int optname)
{
	const struct sock_ext *x = sk->ext;
	return x && (optname == USTACK_SO_TIMESTAMPING_OLD || x->tstamp_new) ? x->tsflags : 0;
}


/* tcp_tx_timestamp: the write is done; its tail skb asks for what tsflags record (the
 * socket's, or a per-write SCM_TIMESTAMPING's) */
void tcp_tx_timestamp(struct sock *sk, uint32_t tsflags)
{
	uint8_t bits = 0;
	if (tsflags & SOF_TIMESTAMPING_TX_SCHED)
		bits |= TCP_SKB_TS_SCHED;
	if (tsflags & SOF_TIMESTAMPING_TX_SOFTWARE)
		bits |= TCP_SKB_TS_SND;
	if (tsflags & SOF_TIMESTAMPING_TX_ACK)
		bits |= TCP_SKB_TS_ACK;
	if (!bits || !sk_ext(sk))
		return;
	sk->ext->ts_used = true;
	tcp_wq_tstamp(sk, bits);
}

/* __skb_complete_tx_timestamp: one message on the error queue, with len bytes of payload
 * (data, or NULL for the caller to fill) unless OPT_TSONLY; NULL if none was queued */
static struct sk_err_msg *tstamp_queue(struct ustack *st, struct sock *sk, uint32_t key, int tstype,
				       const uint8_t *data, size_t len)
{
	struct sock_ext *x = sk->ext;
	if (sk->fd < 0) /* an orphan: nobody will read it */
		return NULL;
	if (x->tsflags & SOF_TIMESTAMPING_OPT_TSONLY)
		len = 0;
	struct sk_err_msg *m = sk_errq_push(sk, false, data, len);
	if (!m)
		return NULL;
	m->ee.ee_errno = ENOMSG;
	m->ee.ee_origin = SO_EE_ORIGIN_TIMESTAMPING;
	m->ee.ee_info = (uint32_t)tstype;
	m->ee.ee_data = (x->tsflags & SOF_TIMESTAMPING_OPT_ID) ? key - x->tskey : 0;
	m->tstamp_us = (uint64_t)((int64_t)st->now + st->wall_off);
	sk_wake_sk(st, sk);
	return m;
}

/* dev_xmit took the frame: SCHED (the queueing discipline, which ustack does not have, takes
 * it at once), then SND (the driver's skb_tx_timestamp) */
static void tcp_tstamp_frame(struct ustack *st, void *owner, uint32_t key, uint8_t types, const uint8_t *frame,
			     size_t len)
{
	struct sock *sk = owner;
	if (types & TCP_SKB_TS_SCHED)
		tstamp_queue(st, sk, key, SCM_TSTAMP_SCHED, frame, len);
	if (types & TCP_SKB_TS_SND)
		tstamp_queue(st, sk, key, SCM_TSTAMP_SND, frame, len);
}

/* A segment [seq, seq + len) is about to go: if it holds a key that asked for SCHED or SND,
 * the device is asked for the frame (tcp_send_data clears the request if it never got there) */
void tcp_tx_timestamp_request(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len)
{
	uint32_t key;
	uint8_t bits;
	if (!len || !tcp_wq_tstamp_in(sk, seq, seq + len, TCP_SKB_TS_SCHED | TCP_SKB_TS_SND, &key, &bits))
		return;
	st->net->tx_ts = (struct tx_tstamp_req){ sk, key, bits, tcp_tstamp_frame };
}

static void ack_tstamp(struct ustack *st, struct sock *sk, uint32_t key, uint32_t start, uint32_t end)
{
	uint32_t len = end - start, off = start - sk->snd_una;
	if (off > sk->sndq.len)
		len = 0;
	else if (len > sk->sndq.len - off)
		len = sk->sndq.len - off;
	struct sk_err_msg *m = tstamp_queue(st, sk, key, SCM_TSTAMP_ACK, NULL, len);
	if (m && m->plen) /* the skb's data, straight from the send ring */
		tcp_buf_peek(&sk->sndq, off, m->payload, m->plen);
}

/* tcp_ack_tstamp: snd_una moves from prior to ack; the keys it passes are delivered */
void tcp_ack_tstamp(struct ustack *st, struct sock *sk, uint32_t prior_snd_una, uint32_t ack)
{
	tcp_wq_ack_tstamps(st, sk, prior_snd_una, ack, ack_tstamp);
}
