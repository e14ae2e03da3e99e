/*
 * Urgent data (RFC 9293 §3.8.5, RFC 6093), as Linux 6.18 has it — BSD's reading, which every
 * stack in use follows: the urgent pointer points one past the urgent byte, and "out of band"
 * means one byte the reader may take apart from the stream.
 *
 * Sending (tcp_sendmsg with MSG_OOB, tcp_mark_urg): after the write, snd_up = write_seq, and
 * until the peer acknowledges that far (tcp_clean_rtx_queue) the socket is in urgent mode:
 * every segment that starts before snd_up — data, retransmissions, ACKs, probes, a RST —
 * carries URG with the pointer counted from its own sequence number (__tcp_transmit_skb), and
 * Nagle, TCP_CORK and MSG_MORE hold nothing back (tcp_nagle_test).  The write itself goes in
 * one-MSS skbs, sent only when it is all copied, so that its first segments already point at
 * its end.
 *
 * Receiving (tcp_check_urg, tcp_urg): a new pointer marks byte seq + urg - 1 (seq + urg with
 * net.ipv4.tcp_stdurg), replacing an older mark — whose byte becomes ordinary data, or is lost
 * if the reader sits on it; the byte is taken when the segment holding it arrives, in order or
 * not.  It stays in the receive queue: a read stops at the mark, and the next read skips the
 * byte unless SO_OOBINLINE keeps it in the stream; recv(MSG_OOB) returns it (tcp_recv_urg),
 * POLLPRI says it is there, SIOCATMARK says the reader is at the mark, and SIOCINQ counts only
 * up to it.
 *
 * The state lives in sock_ext, allocated with the first urgent byte sent or received: the
 * fast paths look only at sk->urg_mode and at whether sk->ext exists.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"

#include <errno.h>
#include <sys/socket.h>

/* tcp_mark_urg: a MSG_OOB write ends at write_seq.  Without memory for the state the write
 * goes as ordinary data (Linux's state is in the socket and cannot fail). */
void tcp_mark_urg(struct sock *sk)
{
	struct sock_ext *x = sk_ext(sk);
	if (!x)
		return;
	x->snd_up = sk->write_seq;
	sk->urg_mode = sk->snd_una != x->snd_up;
}

/* __tcp_transmit_skb's urgent pointer for a segment at seg->seq.  One more than 0xFFFF away,
 * the pointer says 0xFFFF ("further on") — but only on a segment at the edge of what was sent,
 * where the peer cannot have seen a closer pointer. */
void tcp_urg_set_pointer(const struct sock *sk, struct tcp_seg_out *seg)
{
	if (!sk->urg_mode || !before(seg->seq, sk->ext->snd_up))
		return;
	if (before(sk->ext->snd_up, seg->seq + 0x10000u)) {
		seg->urg = (uint16_t)(sk->ext->snd_up - seg->seq);
		seg->flags |= TCPHDR_URG;
	} else if (after(seg->seq + 0xFFFFu, sk->snd_max)) {
		seg->urg = 0xFFFF;
		seg->flags |= TCPHDR_URG;
	}
}

/* tcp_write_wakeup on a zero window: with urgent data unacknowledged within reach, a bare ACK
 * at snd_una goes first, so that the peer learns of the pointer (tcp_xmit_probe_skb(sk, 1)). */
bool tcp_urg_probe_first(const struct sock *sk)
{
	return sk->urg_mode && between(sk->ext->snd_up, sk->snd_una + 1, sk->snd_una + 0xFFFFu);
}

/* tcp_clean_rtx_queue: snd_una reached snd_up, urgent mode ends */
void tcp_urg_acked(struct sock *sk)
{
	if (sk->urg_mode && !before(sk->snd_una, sk->ext->snd_up))
		sk->urg_mode = false;
}

/* copied_seq: the next byte the application reads (a FIN counts in rcv_nxt, not in rcvq) */
uint32_t tcp_copied_seq(const struct sock *sk)
{
	return sk->rcv_nxt - sk->rcvq.len - (sk->fin_rcvd ? 1u : 0u);
}

/* tcp_check_urg: the segment's URG field, before its data is queued */
static void tcp_check_urg(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	uint32_t ptr = th->urg;
	if (ptr && !st->sysctl.tcp_stdurg)
		ptr--;
	ptr += th->seq;
	uint32_t copied = tcp_copied_seq(sk);
	if (after(copied, ptr))
		return; /* already read */
	if (before(ptr, sk->rcv_nxt))
		return; /* do not replay an old pointer */
	struct sock_ext *x = sk->ext;
	if (x && x->urg_data && !after(ptr, x->urg_seq))
		return; /* the pointer we have, or an older one */
	if (!x && !(x = sk_ext(sk)))
		return;
	/* the reader sits on the old mark, whose byte it would skip: it goes now, or it would be
	 * read as data after the new mark replaced it */
	if (x->urg_seq == copied && x->urg_data && !sk->oobinline && copied != sk->rcv_nxt && sk->rcvq.len) {
		tcp_buf_consume(&sk->rcvq, 1);
		sk->bytes_read++;
	}
	x->urg_data = TCP_URG_NOTYET;
	x->urg_seq = ptr;
}

/* tcp_urg: a pointer, then its byte, from whichever segment holds it */
void tcp_urg(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	if (th->flags & TCPHDR_URG)
		tcp_check_urg(st, sk, th);
	struct sock_ext *x = sk->ext;
	if (!x || x->urg_data != TCP_URG_NOTYET)
		return;
	uint32_t off = x->urg_seq - th->seq - ((th->flags & TCPHDR_SYN) ? 1u : 0u);
	if (off < th->plen) {
		x->urg_data = (uint16_t)(TCP_URG_VALID | th->payload[off]);
		sk_wake_sk(st, sk);
	}
}

bool tcp_urg_at_mark(const struct sock *sk)
{
	return sk->ext && sk->ext->urg_data && sk->ext->urg_seq == tcp_copied_seq(sk);
}

/*
 * tcp_recv_urg: recv(MSG_OOB).  Never waits.  EINVAL with SO_OOBINLINE, with no urgent data,
 * or once it was read; the byte (MSG_PEEK leaves it), MSG_OOB in msg_flags — and with no room,
 * 0 and MSG_TRUNC, the byte used up all the same; before it arrives, EAGAIN, or 0 after the
 * peer's FIN.
 */
ssize_t tcp_recv_urg(struct sock *sk, uint8_t *buf, size_t len, int flags, int *msg_flags)
{
	struct sock_ext *x = sk->ext;
	if (sk->oobinline || !x || !x->urg_data || x->urg_data == TCP_URG_READ)
		return -EINVAL;
	if (sk->node.state == TCP_CLOSE && !sk->fin_rcvd)
		return -ENOTCONN;
	if (x->urg_data & TCP_URG_VALID) {
		uint8_t c = (uint8_t)x->urg_data;
		if (!(flags & MSG_PEEK))
			x->urg_data = TCP_URG_READ;
		*msg_flags |= MSG_OOB;
		if (!len) {
			*msg_flags |= MSG_TRUNC;
			return 0;
		}
		if (!(flags & MSG_TRUNC))
			buf[0] = c;
		return 1;
	}
	if (sk->node.state == TCP_CLOSE || sk->fin_rcvd || sk->shut_rd)
		return 0;
	return -EAGAIN;
}

/*
 * tcp_recvmsg_locked at the mark: of avail bytes from offset off past copied_seq, how many a
 * read may take without crossing the urgent byte — all of them when the byte is at off and
 * inline; *skip when it is at off and not inline, and must be stepped over first.
 */
uint32_t tcp_urg_read_limit(const struct sock *sk, uint32_t off, uint32_t avail, bool *skip)
{
	*skip = false;
	const struct sock_ext *x = sk->ext;
	if (!x || !x->urg_data)
		return avail;
	uint32_t urg_off = x->urg_seq - (tcp_copied_seq(sk) + off);
	if (urg_off >= avail)
		return avail;
	if (urg_off)
		return urg_off;
	*skip = !sk->oobinline;
	return avail;
}

/* ... and after a read moved copied_seq past the mark, the mark is gone */
void tcp_urg_consumed(struct sock *sk)
{
	struct sock_ext *x = sk->ext;
	if (x && x->urg_data && after(tcp_copied_seq(sk), x->urg_seq))
		x->urg_data = 0;
}

/* tcp_inq (SIOCINQ): what is readable, but only up to a mark ahead */
int tcp_inq(const struct sock *sk)
{
	const struct sock_ext *x = sk->ext;
	uint32_t copied = tcp_copied_seq(sk);
	if (sk->oobinline || !x || !x->urg_data || before(x->urg_seq, copied) ||
	    !before(x->urg_seq, sk->rcv_nxt - (sk->fin_rcvd ? 1u : 0u)))
		return (int)sk->rcvq.len;
	return (int)(x->urg_seq - copied);
}
