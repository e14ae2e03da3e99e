/*
 * ICMP errors for TCP (Linux's tcp_v4_err, tcp_req_err, tcp_v4_mtu_reduced).
 *
 * An ICMP error quotes the IP header and at least 8 bytes of the TCP segment that caused it:
 * enough for the 4-tuple and the sequence number.  RFC 5927's advice, as Linux applies it:
 * the quoted sequence number must lie in [snd_una, snd_nxt] (else TcpExtOutOfWindowIcmps),
 * which a blind attacker cannot easily guess.  Then:
 *   - fragmentation needed (RFC 1191): lower the path MTU, never below Linux's ip_rt_min_pmtu
 *     (552), and send again what is outstanding in segments that fit (tcp_simple_retransmit:
 *     no congestion response — nothing was lost to congestion);
 *   - during connection setup, any other error ends the attempt with its errno (port
 *     unreachable → ECONNREFUSED, host unreachable → EHOSTUNREACH, …: icmp_err_convert);
 *   - on an established connection, errors are soft (RFC 1122 §4.2.3.9): remembered, and
 *     reported only if the connection later times out, instead of ETIMEDOUT.
 * A request socket is dropped only for an unreachable net or host, a time exceeded or a
 * parameter problem quoting its exact ISN (tcp_req_err).
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"
#include "wire/icmp.h"

#include <errno.h>

/* icmp_err_convert: the errno of each unreachable code (Linux's table also says which are
 * "fatal", which only raw and UDP sockets use) */
static const int icmp_err_convert[] = {
	ENETUNREACH,   /* ICMP_NET_UNREACH */
	EHOSTUNREACH,  /* ICMP_HOST_UNREACH */
	ENOPROTOOPT,   /* ICMP_PROT_UNREACH */
	ECONNREFUSED,  /* ICMP_PORT_UNREACH */
	EMSGSIZE,      /* ICMP_FRAG_NEEDED */
	EOPNOTSUPP,    /* ICMP_SR_FAILED */
	ENETUNREACH,   /* ICMP_NET_UNKNOWN */
	EHOSTDOWN,     /* ICMP_HOST_UNKNOWN */
	ENONET,        /* ICMP_HOST_ISOLATED */
	ENETUNREACH,   /* ICMP_NET_ANO */
	EHOSTUNREACH,  /* ICMP_HOST_ANO */
	ENETUNREACH,   /* ICMP_NET_UNR_TOS */
	EHOSTUNREACH,  /* ICMP_HOST_UNR_TOS */
	EHOSTUNREACH,  /* ICMP_PKT_FILTERED */
	EHOSTUNREACH,  /* ICMP_PREC_VIOLATION */
	EHOSTUNREACH,  /* ICMP_PREC_CUTOFF */
};

#define IP_RT_MIN_PMTU 552u

/* tcp_v4_mtu_reduced */
static void tcp_mtu_reduced(struct ustack *st, struct sock *sk, uint32_t mtu)
{
	if (sk->node.state == TCP_CLOSE || sk->node.state == TCP_LISTEN || sk->pmtudisc == IP_PMTUDISC_DONT)
		return; /* IP_PMTUDISC_DONT: no path MTU discovery, and no DF to have caused this */
	if (mtu < IP_RT_MIN_PMTU)
		mtu = IP_RT_MIN_PMTU < sk->rt.mtu ? IP_RT_MIN_PMTU : sk->rt.mtu;
	if (mtu >= sk->rt.mtu)
		return;
	sk->rt.mtu = mtu;
	sk->soft_err = EMSGSIZE;
	tcp_sync_mss(st, sk);
	tcp_trace(st, "tcp_v4_mtu_reduced", &sk->node, sk->node.state, sk->node.state);
	if (sk->node.state == TCP_SYN_SENT) {
		/* a SYN announces no more than the path now carries (tcp_advertise_mss); one that
		 * carried Fast Open data goes again at once, plain, and the data follows the
		 * handshake (tcp_simple_retransmit since Linux 6.12) */
		if (sk->advmss > mtu - IPV4_HLEN - TCP_HLEN)
			sk->advmss = (uint16_t)(mtu - IPV4_HLEN - TCP_HLEN);
		if (sk->syn_data)
			tcp_retransmit_syn(st, sk);
		return;
	}
	/* tcp_simple_retransmit: what is in flight goes again at the new size */
	if (sk->data_init && sk->sndq.data && sk->snd_una != sk->snd_max) {
		sk->high_seq = sk->snd_max;
		sk->snd_nxt = sk->snd_una;
		tcp_write_xmit(st, sk);
	}
}

void tcp_v4_err(struct ustack *st, uint8_t type, uint8_t code, uint32_t info, uint32_t offender,
		const struct ipv4_repr *inner, const uint8_t *th, size_t len)
{
	if (len < 8) {
		MIB_INC(st, IcmpInErrors); /* not enough of the segment quoted */
		return;
	}
	uint16_t sport = (uint16_t)(th[0] << 8 | th[1]), dport = (uint16_t)(th[2] << 8 | th[3]);
	uint32_t seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
	struct ehash_node *n = inet_lookup_established(st, inner->saddr, sport, inner->daddr, dport);
	if (!n) {
		MIB_INC(st, IcmpInErrors);
		return;
	}
	int err;
	switch (type) {
	case ICMP_PARAMETERPROB:
		err = EPROTO;
		break;
	case ICMP_DEST_UNREACH:
		if (code >= sizeof(icmp_err_convert) / sizeof(icmp_err_convert[0]))
			return;
		err = icmp_err_convert[code];
		break;
	case ICMP_TIME_EXCEEDED:
		err = EHOSTUNREACH;
		break;
	default:
		return;
	}
	if (n->state == TCP_TIME_WAIT)
		return;
	if (n->state == TCP_NEW_SYN_RECV) {
		/* tcp_req_err: the request goes — silently: accept() must not report network errors
		 * — on its own list of errors, not on `fatal`'s: an unreachable net or host, a time
		 * exceeded, a parameter problem */
		struct request_sock *req = (struct request_sock *)n;
		bool abort = type == ICMP_PARAMETERPROB || type == ICMP_TIME_EXCEEDED ||
			     (type == ICMP_DEST_UNREACH && (code == ICMP_NET_UNREACH || code == ICMP_HOST_UNREACH));
		if (seq != req->snt_isn) {
			MIB_INC(st, TcpExtOutOfWindowIcmps);
		} else if (abort) {
			MIB_INC(st, TcpExtListenDrops);
			reqsk_queue_drop(st, req);
		}
		return;
	}
	struct sock *sk = (struct sock *)n;
	if (sk->node.state == TCP_CLOSE)
		return;
	/* a Fast Open child before its final ACK: what is in flight starts with its SYN-ACK */
	uint32_t una = sk->fastopen_rsk ? sk->iss : sk->snd_una;
	if (!between(seq, una, sk->snd_nxt)) {
		MIB_INC(st, TcpExtOutOfWindowIcmps);
		return;
	}
	if (type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED) {
		if (!st->sysctl.ip_no_pmtu_disc)
			tcp_mtu_reduced(st, sk, info & 0xffff);
		return;
	}
	tcp_trace(st, "tcp_v4_err", &sk->node, sk->node.state, sk->node.state);
	/* in SYN_SENT, or a simultaneous open's SYN_RECV, connect() fails with it — and with
	 * IP_RECVERR it waits on the error queue too (ip_icmp_error), with icmp_unreach's info:
	 * a parameter problem's pointer; so does a Fast Open child nobody accepted yet — an
	 * accepted one is treated as connected */
	if ((sk->node.state == TCP_SYN_SENT || sk->node.state == TCP_SYN_RECV) &&
	    !(sk->fastopen_rsk && !sk->parent)) {
		ip_icmp_error(sk, err, type, code, type == ICMP_PARAMETERPROB ? info >> 24 : 0, offender,
			      inner->daddr, dport, th, len);
		tcp_done(st, sk, err);
		return;
	}
	/* Connected, RFC 1122 §4.2.3.9 lets only some errors be hard; Linux keeps trying on all of
	 * them and reports one only on timeout — unless the application asked for errors with
	 * IP_RECVERR, which makes every one a hard error at once (sk_err, reported by the next call
	 * and POLLERR; the connection itself goes on). */
	if (sk->recverr) {
		sk->err = err;
		sk_wake_sk(st, sk);
	} else {
		sk->soft_err = err;
	}
}
