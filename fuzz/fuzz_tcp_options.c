/*
 * TCP header and options.
 *
 *   1. tcp_parse_options on the first 40 bytes of the input (a header's worth): bounded
 *      results; written back with tcp_options_write (as on a SYN and as on other segments),
 *      the length agrees with tcp_options_len and re-parsing gives the same options (SACK
 *      blocks: as many as fit).  tcp_parse on the whole input as a segment: the header and
 *      payload agree with the bytes; tcp_emit of what was parsed parses back to the same
 *      segment with a valid checksum.
 *   2. the options in a handshake and a connection: the input is
 *
 *        ctrl u8: bit0 active open (the options go in the peer's SYN-ACK; else in its SYN to
 *                 a listener), bit1 SACK block edges in the options are rewritten relative to
 *                 the stack's snd_una (edge = snd_una + low 16 bits), bit2 TSecr rewritten to
 *                 the stack's last TSval, bit3 the stack sends 20000 bytes after the handshake,
 *                 bit4 the peer sends data, bits5-6 time between segments (0, 1, 40, 250 ms)
 *        then chunks: u8 head (bits0-5 length ≤ 40, bits6-7 what carries them: 0 an ACK of
 *                 all the stack sent, 1 a duplicate ACK, 2 an ACK of one more segment, 3 100
 *                 bytes of data), options
 *
 *      The first chunk goes in the SYN (or SYN-ACK), the next in the handshake's ACK (passive
 *      open), the rest in segments of the connection; then timers run and the socket closes.
 */
#include "fuzz_common.h"
#include "wire/tcp.h"

#include <ustack/socket.h>

#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;
static struct fz_peer peer;

static void same_opts(const struct tcp_opts *a, const struct tcp_opts *b, bool syn, unsigned nsack)
{
	if (syn && (a->mss_ok != b->mss_ok || (a->mss_ok && a->mss != b->mss)))
		abort();
	if (syn && (a->ws_ok != b->ws_ok || (a->ws_ok && a->wscale != b->wscale)))
		abort();
	if (syn && a->sack_ok != b->sack_ok)
		abort();
	if (a->ts_ok != b->ts_ok || (a->ts_ok && (a->tsval != b->tsval || a->tsecr != b->tsecr)))
		abort();
	if (b->nsack != nsack || memcmp(a->sack, b->sack, nsack * sizeof(a->sack[0])) != 0)
		abort();
	if (a->fastopen != b->fastopen)
		abort();
	if (a->fastopen && (a->fastopen_exp != b->fastopen_exp || a->cookie_len != b->cookie_len ||
			    memcmp(a->cookie, b->cookie, a->cookie_len) != 0))
		abort();
}

static void check_options(const uint8_t *o, size_t len)
{
	struct tcp_opts opt;
	tcp_parse_options(o, len, &opt);
	if (opt.nsack > 4 || opt.cookie_len > TCP_FASTOPEN_COOKIE_MAX || (opt.cookie_len && !opt.fastopen))
		abort();
	for (int syn = 0; syn < 2; syn++) {
		uint8_t out[128];
		size_t n = tcp_options_write(out, &opt, syn);
		if (n > sizeof(out) || n != tcp_options_len(&opt, syn) || (n & 3))
			abort();
		struct tcp_opts back;
		tcp_parse_options(out, n, &back);
		/* the SACK blocks that fit after the other options (tcp_established_options) */
		size_t before = (syn && opt.mss_ok ? 4 : 0) + (opt.ts_ok ? 12 : 0) +
				(syn && opt.sack_ok && !opt.ts_ok ? 4 : 0) + (syn && opt.ws_ok ? 4 : 0);
		unsigned room = (unsigned)(TCP_MAX_OPTLEN - before - 4) / 8;
		same_opts(&opt, &back, syn, opt.nsack < room ? opt.nsack : room);
	}
}

static void check_segment(const uint8_t *b, size_t len)
{
	const uint32_t src = FZ_PEER_IP, dst = FZ_STACK_IP;
	struct tcp_repr r;
	enum tcp_parse_err e = tcp_parse(b, len, src, dst, &r);
	if (len < TCP_HLEN) {
		if (e != TCP_ERR_SHORT)
			abort();
		return;
	}
	size_t doff = (size_t)(b[12] >> 4) * 4;
	enum tcp_parse_err want = doff < 20 ? TCP_ERR_DOFF : doff > len ? TCP_ERR_HDRLEN :
				  fz_l4_csum(b, len, src, dst, 6) ? TCP_ERR_CSUM : TCP_OK;
	if (e != want)
		abort();
	if (e != TCP_OK && e != TCP_ERR_CSUM)
		return;
	if (r.doff != doff || r.sport != fz_rd16(b) || r.dport != fz_rd16(b + 2) || r.seq != fz_rd32(b + 4) ||
	    r.ack != fz_rd32(b + 8) || r.flags != b[13] || r.window != fz_rd16(b + 14) ||
	    r.urg != fz_rd16(b + 18) || r.payload != b + doff || r.plen != len - doff)
		abort();
	char fl[16];
	tcp_flags_str(r.flags, fl);
	/* emit what was parsed; it must parse back (when its options fit a header) */
	bool syn = r.flags & TCPHDR_SYN;
	size_t optlen = tcp_options_len(&r.opt, syn);
	if (optlen > TCP_MAX_OPTLEN || r.plen > 65535 - 60)
		return;
	static uint8_t out[65536];
	size_t hlen = TCP_HLEN + optlen;
	memcpy(out + hlen, r.payload, r.plen);
	if (tcp_emit(out, &r, src, dst) != hlen)
		abort();
	struct tcp_repr r2;
	if (tcp_parse(out, hlen + r.plen, src, dst, &r2) != TCP_OK)
		abort();
	if (r2.sport != r.sport || r2.dport != r.dport || r2.seq != r.seq || r2.ack != r.ack ||
	    r2.flags != r.flags || r2.window != r.window || r2.urg != r.urg || r2.plen != r.plen ||
	    r2.doff != hlen)
		abort();
}

/* Rewrites SACK edges and TSecr in raw options (walking them as the parser does). */
static void relocate(uint8_t *o, size_t len, const struct fz_flow *fl, uint8_t ctrl)
{
	for (size_t i = 0; i < len;) {
		if (o[i] == 0)
			return;
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len || o[i + 1] < 2 || o[i + 1] > len - i)
			return;
		if (o[i] == 5 && (ctrl & 2))
			for (size_t k = i + 2; k + 4 <= i + o[i + 1]; k += 4)
				fz_wr32(o + k, fl->st_una + (fz_rd32(o + k) & 0xffff));
		if (o[i] == 8 && o[i + 1] == 10 && (ctrl & 4))
			fz_wr32(o + i + 6, fl->st_tsval);
		i += o[i + 1];
	}
}

static const uint8_t *chunk(struct fz_in *in, uint8_t *head, size_t *len)
{
	*head = fz_u8(in);
	return fz_bytes(in, (size_t)(*head & 63) % (TCP_MAX_OPTLEN + 1), len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_options(data, size < TCP_MAX_OPTLEN ? size : TCP_MAX_OPTLEN);
	check_segment(data, size);

	struct fz_in in = { data, size };
	uint8_t ctrl = fz_u8(&in);
	fz_init(&fz, USTACK_LINK_RAWIP, 1000000);
	fz_peer_init(&peer, &fz);
	static const unsigned gaps[4] = { 0, 1, 40, 250 };
	unsigned gap = gaps[(ctrl >> 5) & 3];
	uint8_t head, o[TCP_MAX_OPTLEN];
	size_t olen;
	const uint8_t *c = chunk(&in, &head, &olen);
	memcpy(o, c, olen);
	struct fz_flow *fl = NULL;
	int fd = -1;
	if (ctrl & 1) {
		fd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5001),
					 .sin_addr = { htonl(FZ_PEER_IP) } };
		(void)ustack_connect(fz.st, fd, (struct sockaddr *)&a, sizeof(a));
		if (peer.nflows) {
			fl = &peer.flows[0];
			relocate(o, olen, fl, ctrl);
			(void)fz_peer_accept(&peer, fl, o, olen);
		}
	} else {
		int lfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
		(void)ustack_bind(fz.st, lfd, (struct sockaddr *)&a, sizeof(a));
		(void)ustack_listen(fz.st, lfd, 4);
		fl = fz_flow_get(&peer, FZ_PEER_IP, 40000, 80);
		struct fz_seg s = { .flags = TCPHDR_SYN, .seq = fl->p_isn, .win = 65535, .opts = o,
				    .optlen = olen, .track = true };
		fz_peer_send(&peer, fl, &s);
		if (fl->st_known) {
			c = chunk(&in, &head, &olen);
			memcpy(o, c, olen);
			relocate(o, olen, fl, ctrl);
			struct fz_seg ack = { .flags = TCPHDR_ACK, .seq = fl->p_nxt, .ack = fl->st_nxt,
					      .win = 65535, .opts = o, .optlen = olen, .track = true };
			fz_peer_send(&peer, fl, &ack);
			fd = ustack_accept4(fz.st, lfd, NULL, NULL, SOCK_NONBLOCK);
		}
	}
	if (fd >= 0 && (ctrl & 8)) {
		static uint8_t buf[20000];
		(void)ustack_send(fz.st, fd, buf, sizeof(buf), MSG_DONTWAIT);
	}
	for (int n = 0; fl && n < 64 && fz_more(&in); n++) {
		c = chunk(&in, &head, &olen);
		memcpy(o, c, olen);
		relocate(o, olen, fl, ctrl);
		struct fz_seg s = { .flags = TCPHDR_ACK, .seq = fl->p_nxt, .ack = fl->st_nxt, .win = 65535,
				    .opts = o, .optlen = olen, .track = true };
		switch (head >> 6) {
		case 1: s.ack = fl->st_una; break;
		case 2: s.ack = fl->st_una + 1448; break;
		case 3:
			if (ctrl & 16) {
				s.plen = 100;
				s.flags |= TCPHDR_PSH;
			}
			s.ack = fl->st_una;
			break;
		default: break;
		}
		fz_peer_send(&peer, fl, &s);
		if (gap)
			fz_advance(&fz, gap);
		if (fd >= 0 && (n & 7) == 7) {
			static uint8_t rbuf[4096];
			(void)ustack_recv(fz.st, fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			struct ustack_tcp_info ti;
			socklen_t tl = sizeof(ti);
			(void)ustack_getsockopt(fz.st, fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
		}
	}
	for (int i = 0; i < 3; i++)
		fz_advance_next(&fz, 10 * 1000);
	if (fd >= 0)
		(void)ustack_close(fz.st, fd);
	fz_advance(&fz, 200);
	fz_fini(&fz);
	return 0;
}
