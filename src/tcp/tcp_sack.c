/*
 * The sender's SACK scoreboard and SACK-based loss recovery (RFC 2018, RFC 6675; Linux's
 * tcp_sacktag_write_queue and the SACK side of tcp_fastretrans_alert).
 *
 * The scoreboard is the set of ranges above snd_una the peer has SACKed, kept sorted and
 * merged in a fixed array in the socket (a peer reports at most 4 blocks per ACK; if the array
 * fills, the lowest range is forgotten, which only makes recovery resend a little more).
 * Blocks that are not plausible — reaching past what was sent, inverted, or entirely below
 * snd_una (a D-SACK, RFC 2883: counted, not used) — are ignored, as tcp_is_sackblock_valid
 * does.
 *
 * Recovery starts when `reordering` segments' worth is SACKed above a hole (Linux's
 * sacked_out + 1 > reordering; net.ipv4.tcp_reordering = 3 to begin with, raised when the path
 * is seen to reorder), or on that many duplicate ACKs.  A hole byte counts as lost when at
 * least `reordering` segments are SACKed above it (RFC 6675 IsLost with DupThresh =
 * reordering).  While in
 * recovery, every ACK lets the sender send while cwnd exceeds the pipe (§5 step C): first the
 * next lost hole above HighRxt, then new data, with cwnd set by PRR (RFC 6937, tcp_input.c's
 * tcp_cwnd_reduction).  Recovery ends when snd_una reaches the recovery point (snd_max when it
 * began), with cwnd = ssthresh.  With net.ipv4.tcp_recovery & 1 (the default, as Linux), which
 * holes are lost is RACK's call instead (tcp_recovery.c: data sent before the latest
 * delivered data, longer ago than an RTT plus a reordering window, and retransmissions lost
 * again), and recovery starts when RACK has marked a loss.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seq.h"


/* Adds [start, end) to the sorted, disjoint scoreboard, merging what it touches. */
static void sack_insert(struct sock *sk, uint32_t start, uint32_t end)
{
	struct sack_range *r = sk->sacked;
	unsigned n = sk->nsacked, i = 0;
	while (i < n && before(r[i].end, start))
		i++;
	unsigned j = i;
	while (j < n && !after(r[j].start, end)) { /* overlaps or touches: absorb */
		if (before(r[j].start, start))
			start = r[j].start;
		if (after(r[j].end, end))
			end = r[j].end;
		j++;
	}
	/* replace r[i..j) by the merged range */
	if (j == i) {
		if (n == TCP_SACK_SLOTS) {
			if (i == 0)
				return; /* lower than everything kept: forget it */
			/* forget the lowest range to make room */
			for (unsigned k = 1; k < n; k++)
				r[k - 1] = r[k];
			n--;
			i--;
		}
		for (unsigned k = n; k > i; k--)
			r[k] = r[k - 1];
		n++;
	} else if (j > i + 1) {
		for (unsigned k = j; k < n; k++)
			r[k - (j - i - 1)] = r[k];
		n -= j - i - 1;
	}
	r[i].start = start;
	r[i].end = end;
	sk->nsacked = (uint8_t)n;
}

/*
 * tcp_check_sack_reordering: data SACKed now below data SACKed before, which we never
 * retransmitted, was not lost but overtaken — the path reorders.  Linux then raises the
 * duplicate threshold (tp->reordering) to the distance seen, up to tcp_max_reordering, so that
 * the next reordering does not start a spurious recovery.
 */
static void tcp_check_sack_reordering(struct ustack *st, struct sock *sk, uint32_t start, uint32_t end)
{
	if (!sk->nsacked)
		return;
	uint32_t fack = sk->sacked[sk->nsacked - 1].end;
	start = tcp_sack_skip(sk, start); /* the lowest newly SACKed byte (state->reord) */
	if (!before(start, end) || !before(start, fack))
		return;
	if (tcp_txlog_retransmitted(sk, start))
		return; /* our retransmission arriving, not reordering (only !TCPCB_RETRANS counts) */
	uint32_t mss = tcp_mss_now(sk), metric = fack - start;
	if (metric > sk->reordering * mss) {
		uint32_t r = (metric + mss - 1) / mss;
		uint32_t max = (uint32_t)st->sysctl.tcp_max_reordering;
		sk->reordering = (uint16_t)(r < max ? r : max);
	}
	MIB_INC(st, TcpExtTCPSACKReorder);
	sk->reord_seen++;
}

/* The parts of a block [start, end) the scoreboard does not hold yet go to RACK. */
static void sack_news(struct sock *sk, uint32_t start, uint32_t end, uint64_t now)
{
	uint32_t at = start;
	for (unsigned i = 0; i <= sk->nsacked && before(at, end); i++) {
		uint32_t held_start = i < sk->nsacked ? sk->sacked[i].start : end;
		uint32_t held_end = i < sk->nsacked ? sk->sacked[i].end : end;
		if (!after(held_end, at))
			continue; /* a range below what is left of the block */
		uint32_t news_end = before(held_start, end) ? held_start : end;
		if (before(at, news_end))
			tcp_rack_sacked(sk, at, news_end, now);
		if (after(held_end, at))
			at = held_end;
	}
}

void tcp_sacktag(struct ustack *st, struct sock *sk, const struct tcp_repr *th)
{
	for (unsigned b = 0; b < th->opt.nsack; b++) {
		uint32_t start = th->opt.sack[b].start, end = th->opt.sack[b].end;
		if (!before(start, end) || after(end, sk->snd_max) || end - start > sk->snd_max - sk->snd_una + 1)
			continue; /* not a block we could have caused */
		/* tcp_check_dsack (RFC 2883): a first block below this ACK's cumulative point, or
		 * inside the second block, reports a duplicate, not new data */
		if (b == 0 && (before(start, th->ack) ||
			       (th->opt.nsack > 1 && !before(start, th->opt.sack[1].start) &&
				!after(end, th->opt.sack[1].end)))) {
			MIB_INC(st, TcpExtTCPDSACKRecv);
			sk->dsack_dups++;
			continue;
		}
		if (!after(end, sk->snd_una))
			continue; /* old news (an ACK overtaken by a later one) */
		if (before(start, sk->snd_una))
			start = sk->snd_una;
		sack_news(sk, start, end, st->now); /* RACK's clock may move */
		tcp_check_sack_reordering(st, sk, start, end);
		sack_insert(sk, start, end);
	}
}

/* After snd_una moved: what it passed leaves the scoreboard. */
void tcp_sack_clean(struct sock *sk)
{
	unsigned k = 0;
	for (unsigned i = 0; i < sk->nsacked; i++) {
		struct sack_range r = sk->sacked[i];
		if (!after(r.end, sk->snd_una))
			continue;
		if (before(r.start, sk->snd_una))
			r.start = sk->snd_una;
		sk->sacked[k++] = r;
	}
	sk->nsacked = (uint8_t)k;
	if (before(sk->high_rxt, sk->snd_una))
		sk->high_rxt = sk->snd_una;
}

uint32_t tcp_sacked_bytes(const struct sock *sk)
{
	uint32_t b = 0;
	for (unsigned i = 0; i < sk->nsacked; i++)
		b += sk->sacked[i].end - sk->sacked[i].start;
	return b;
}

/* SACKed segments (Linux's sacked_out): each range counted in MSS-sized pieces. */
uint32_t tcp_sacked_segs(const struct sock *sk)
{
	uint32_t mss = tcp_mss_now(sk), segs = 0;
	for (unsigned i = 0; i < sk->nsacked; i++)
		segs += (sk->sacked[i].end - sk->sacked[i].start + mss - 1) / mss;
	return segs;
}

/* The sequence below which every hole byte is lost: RACK's edge (tcp_recovery & 1, Linux's
 * default), else RFC 6675's IsLost — DupThresh (reordering) segments SACKed above it. */
static uint32_t sack_lost_edge(const struct sock *sk)
{
	if (sk->rack.on)
		return after(sk->rack.lost_edge, sk->snd_una) && !after(sk->rack.lost_edge, sk->snd_max)
			       ? sk->rack.lost_edge : sk->snd_una;
	uint32_t mss = tcp_mss_now(sk), above = 0;
	for (unsigned i = sk->nsacked; i-- > 0;) {
		above += sk->sacked[i].end - sk->sacked[i].start;
		if (above >= sk->reordering * mss)
			return sk->sacked[i].start;
	}
	return sk->snd_una; /* nothing is known lost */
}

/* If seq is SACKed, the end of its range (so a retransmission can skip it), else seq. */
uint32_t tcp_sack_skip(const struct sock *sk, uint32_t seq)
{
	for (unsigned i = 0; i < sk->nsacked; i++)
		if (!before(seq, sk->sacked[i].start) && before(seq, sk->sacked[i].end))
			return sk->sacked[i].end;
	return seq;
}

/* RFC 6675 SetPipe: bytes outstanding and not SACKed, less the lost ones not yet resent. */
uint32_t tcp_sack_pipe(const struct sock *sk)
{
	uint32_t lost_edge = sack_lost_edge(sk), pipe = 0, at = sk->snd_una;
	for (unsigned i = 0; i <= sk->nsacked; i++) {
		uint32_t hole_end = i < sk->nsacked ? sk->sacked[i].start : sk->snd_max;
		if (after(hole_end, at)) {
			uint32_t lost_end = before(lost_edge, hole_end) ? lost_edge : hole_end;
			uint32_t lost = after(lost_end, at) ? lost_end - at : 0;
			pipe += hole_end - at - lost;
			/* lost bytes below HighRxt were retransmitted: in flight again */
			uint32_t rx_end = before(sk->high_rxt, lost_end) ? sk->high_rxt : lost_end;
			if (after(rx_end, at))
				pipe += rx_end - at;
		}
		if (i < sk->nsacked)
			at = sk->sacked[i].end;
	}
	return pipe;
}

/* Hole bytes below the lost edge and at or above floor. */
static uint32_t sack_lost_above(const struct sock *sk, uint32_t floor)
{
	uint32_t lost_edge = sack_lost_edge(sk), lost = 0, at = sk->snd_una;
	for (unsigned i = 0; i <= sk->nsacked; i++) {
		uint32_t a = before(at, floor) ? floor : at;
		uint32_t hole_end = i < sk->nsacked ? sk->sacked[i].start : sk->snd_max;
		uint32_t b = before(hole_end, lost_edge) ? hole_end : lost_edge;
		if (before(a, b))
			lost += b - a;
		if (i < sk->nsacked)
			at = sk->sacked[i].end;
	}
	return lost;
}

/* Hole bytes lost and not yet retransmitted (above HighRxt). */
uint32_t tcp_sack_lost_bytes(const struct sock *sk)
{
	return sack_lost_above(sk, sk->high_rxt);
}

/* Hole bytes lost, retransmitted or not (Linux's lost_out: TCP_INFO's tcpi_lost). */
uint32_t tcp_sack_lost_total(const struct sock *sk)
{
	return sack_lost_above(sk, sk->snd_una);
}

/* tcp_time_to_recover: with RACK, when it has marked something lost; else when DupThresh
 * segments are SACKed. */
bool tcp_sack_time_to_recover(const struct sock *sk)
{
	if (sk->rack.on)
		return tcp_sack_lost_total(sk) > 0;
	return tcp_sacked_segs(sk) >= sk->reordering;
}

/* NextSeg rule 1: the first lost, not yet retransmitted, hole byte at or above HighRxt, and
 * how much of the hole is lost from there. */
static bool sack_next_lost(const struct sock *sk, uint32_t *seq, uint32_t *len)
{
	uint32_t lost_edge = sack_lost_edge(sk), at = sk->snd_una;
	for (unsigned i = 0; i < sk->nsacked; i++) {
		uint32_t a = before(at, sk->high_rxt) ? sk->high_rxt : at;
		uint32_t b = before(sk->sacked[i].start, lost_edge) ? sk->sacked[i].start : lost_edge;
		if (before(a, b)) {
			*seq = a;
			*len = b - a;
			return true;
		}
		at = sk->sacked[i].end;
	}
	return false;
}

/*
 * RFC 6675 §5 step (C): send while cwnd allows more than the pipe — as Linux's
 * tcp_xmit_retransmit_queue does, each lost skb as one packet of as many segments as cwnd
 * leaves room for (at most the TSO size), which then carries PSH (tcp_retransmit_skb).
 */
void tcp_sack_recovery_xmit(struct ustack *st, struct sock *sk)
{
	uint32_t mss = tcp_mss_now(sk);
	for (int guard = 0; guard < 256; guard++) {
		uint32_t pipe = tcp_sack_pipe(sk);
		if (sk->cwnd * mss < pipe + mss)
			return;
		uint32_t seq, len;
		if (!sack_next_lost(sk, &seq, &len))
			break;
		uint32_t segs = (sk->cwnd * mss - pipe) / mss, tso = tcp_tso_segs(st, sk, mss);
		if (segs > tso)
			segs = tso;
		uint32_t most = segs * tcp_current_mss(sk); /* tcp_retransmit_skb's cur_mss * segs */
		uint32_t max_len = len < most ? len : most;
		/* a hole never extends past what was written, but the FIN may follow it */
		uint32_t sent = tcp_retransmit_skb(st, sk, seq, max_len);
		sk->high_rxt = seq + (sent ? sent : (len < mss ? len : mss));
	}
	tcp_write_xmit(st, sk); /* rule 2: new data, as the pipe allows */
}
