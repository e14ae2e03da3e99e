#include "wire/tcp.h"
#include "wire/bytes.h"
#include "wire/checksum.h"

#include <string.h>

void tcp_parse_options(const uint8_t *o, size_t len, struct tcp_opts *opt)
{
	tcp_opts_clear(opt);
	/* tcp_parse_aligned_timestamp: nearly every segment of a connection with timestamps
	 * carries exactly NOP, NOP, TIMESTAMP(10), which is read without the walk */
	if (len == 12 && rd32(o) == (TCPOPT_NOP << 24 | TCPOPT_NOP << 16 | TCPOPT_TIMESTAMP << 8 | 10)) {
		opt->ts_ok = true;
		opt->tsval = rd32(o + 4);
		opt->tsecr = rd32(o + 8);
		return;
	}
	size_t i = 0;
	while (i < len) {
		uint8_t kind = o[i];
		if (kind == TCPOPT_EOL)
			return;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return;
		uint8_t size = o[i + 1];
		if (size < 2 || size > len - i)
			return; /* "silly options", or a partial one: stop, as Linux does */
		const uint8_t *v = o + i + 2;
		switch (kind) {
		case TCPOPT_MSS:
			if (size == 4) {
				opt->mss_ok = true;
				opt->mss = rd16(v);
			}
			break;
		case TCPOPT_WINDOW:
			if (size == 3) {
				opt->ws_ok = true;
				opt->wscale = v[0];
			}
			break;
		case TCPOPT_SACK_PERM:
			if (size == 2)
				opt->sack_ok = true;
			break;
		case TCPOPT_TIMESTAMP:
			if (size == 10) {
				opt->ts_ok = true;
				opt->tsval = rd32(v);
				opt->tsecr = rd32(v + 4);
			}
			break;
		case TCPOPT_SACK:
			if (size >= 10 && (size - 2) % 8 == 0) {
				unsigned n = (size - 2u) / 8u;
				opt->nsack = (uint8_t)(n > 4 ? 4 : n);
				for (unsigned k = 0; k < opt->nsack; k++) {
					opt->sack[k].start = rd32(v + 8 * k);
					opt->sack[k].end = rd32(v + 8 * k + 4);
				}
			}
			break;
		case TCPOPT_FASTOPEN:
		case TCPOPT_EXP: {
			const uint8_t *c = v;
			size_t clen = size - 2u;
			if (kind == TCPOPT_EXP) {
				if (size < 4 || rd16(v) != TCPOPT_FASTOPEN_MAGIC)
					break;
				c += 2;
				clen -= 2;
			}
			/* RFC 7413 §4.1.1: empty (a request) or 4..16 bytes, even length */
			if (clen == 0 || (clen >= TCP_FASTOPEN_COOKIE_MIN && clen <= TCP_FASTOPEN_COOKIE_MAX &&
					  !(clen & 1))) {
				opt->fastopen = true;
				opt->fastopen_exp = kind == TCPOPT_EXP;
				opt->cookie_len = (uint8_t)clen;
				memcpy(opt->cookie, c, clen);
			}
			break;
		}
		default:
			break;
		}
		i += size;
	}
}

enum tcp_parse_err tcp_parse(const uint8_t *b, size_t len, uint32_t saddr, uint32_t daddr,
			     struct tcp_repr *r)
{
	enum tcp_parse_err e = tcp_parse_trusted(b, len, r);
	if (e != TCP_OK)
		return e;
	/* Checked last so that a printer can still show a segment with a bad checksum. */
	uint32_t sum = csum_pseudo(saddr, daddr, 6, (uint16_t)len);
	return csum_fold(csum_partial(b, len, sum)) == 0 ? TCP_OK : TCP_ERR_CSUM;
}

enum tcp_parse_err tcp_parse_trusted(const uint8_t *b, size_t len, struct tcp_repr *r)
{
	if (len < TCP_HLEN)
		return TCP_ERR_SHORT;
	r->doff = (uint8_t)((b[12] >> 4) * 4);
	if (r->doff < TCP_HLEN)
		return TCP_ERR_DOFF;
	if (r->doff > len)
		return TCP_ERR_HDRLEN;
	r->sport = rd16(b);
	r->dport = rd16(b + 2);
	r->seq = rd32(b + 4);
	r->ack = rd32(b + 8);
	r->flags = b[13];
	r->window = rd16(b + 14);
	r->urg = rd16(b + 18);
	tcp_parse_options(b + TCP_HLEN, r->doff - TCP_HLEN, &r->opt);
	r->payload = b + r->doff;
	r->plen = len - r->doff;
	r->partial_csum = false; /* a field of what is emitted: a parsed segment has none */
	return TCP_OK;
}

/* What tcp_options_write will write, counted without writing it (tcp_syn_options and
 * tcp_established_options size the header the same way before building it). */
size_t tcp_options_len(const struct tcp_opts *opt, bool syn)
{
	size_t n = 0;
	if (syn && opt->mss_ok)
		n += 4;
	if (opt->ts_ok)
		n += 12;                 /* SACK-permitted rides in the timestamps' two NOPs */
	else if (syn && opt->sack_ok)
		n += 4;
	if (syn && opt->ws_ok)
		n += 4;
	if (opt->nsack) {
		unsigned room = (unsigned)(TCP_MAX_OPTLEN - n - 4) / 8;
		unsigned k = opt->nsack < room ? opt->nsack : room;
		if (k)
			n += 4 + 8 * (size_t)k;
	}
	if (opt->fastopen)
		n = (n + (opt->fastopen_exp ? 4u : 2u) + opt->cookie_len + 3u) & ~(size_t)3;
	return n;
}

size_t tcp_options_write(uint8_t *o, const struct tcp_opts *opt, bool syn)
{
	size_t n = 0;
	bool sack_perm = syn && opt->sack_ok;

	if (syn && opt->mss_ok) {
		o[n++] = TCPOPT_MSS;
		o[n++] = 4;
		wr16(o + n, opt->mss);
		n += 2;
	}
	if (opt->ts_ok) {
		if (sack_perm) {
			o[n++] = TCPOPT_SACK_PERM;
			o[n++] = 2;
			sack_perm = false;
		} else {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
		}
		o[n++] = TCPOPT_TIMESTAMP;
		o[n++] = 10;
		wr32(o + n, opt->tsval);
		wr32(o + n + 4, opt->tsecr);
		n += 8;
	}
	if (sack_perm) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_SACK_PERM;
		o[n++] = 2;
	}
	if (syn && opt->ws_ok) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_WINDOW;
		o[n++] = 3;
		o[n++] = opt->wscale;
	}
	if (opt->nsack) {
		/* room after the other options decides how many blocks fit (tcp_established_options) */
		unsigned room = (unsigned)(TCP_MAX_OPTLEN - n - 4) / 8;
		unsigned k = opt->nsack < room ? opt->nsack : room;
		if (k) {
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_NOP;
			o[n++] = TCPOPT_SACK;
			o[n++] = (uint8_t)(2 + 8 * k);
			for (unsigned i = 0; i < k; i++) {
				wr32(o + n, opt->sack[i].start);
				wr32(o + n + 4, opt->sack[i].end);
				n += 8;
			}
		}
	}
	if (opt->fastopen) {
		if (opt->fastopen_exp) {
			o[n++] = TCPOPT_EXP;
			o[n++] = (uint8_t)(4 + opt->cookie_len);
			wr16(o + n, TCPOPT_FASTOPEN_MAGIC);
			n += 2;
		} else {
			o[n++] = TCPOPT_FASTOPEN;
			o[n++] = (uint8_t)(2 + opt->cookie_len);
		}
		memcpy(o + n, opt->cookie, opt->cookie_len);
		n += opt->cookie_len;
		while (n & 3) /* Linux pads the cookie option with NOPs at its end */
			o[n++] = TCPOPT_NOP;
	}
	return n;
}

size_t tcp_emit(uint8_t *b, const struct tcp_repr *r, uint32_t saddr, uint32_t daddr)
{
	return tcp_emit_opts(b, r, &r->opt, saddr, daddr);
}

size_t tcp_emit_opts(uint8_t *b, const struct tcp_repr *r, const struct tcp_opts *opt, uint32_t saddr,
		     uint32_t daddr)
{
	bool syn = r->flags & TCPHDR_SYN;
	size_t optlen = tcp_options_write(b + TCP_HLEN, opt, syn);
	size_t hlen = TCP_HLEN + optlen;
	wr16(b, r->sport);
	wr16(b + 2, r->dport);
	wr32(b + 4, r->seq);
	wr32(b + 8, r->ack);
	b[12] = (uint8_t)((hlen / 4) << 4);
	b[13] = r->flags;
	wr16(b + 14, r->window);
	wr16(b + 16, 0);
	wr16(b + 18, r->urg);
	size_t len = hlen + r->plen;
	uint32_t sum = csum_pseudo(saddr, daddr, 6, (uint16_t)len);
	/* a partial checksum (CHECKSUM_PARTIAL, __tcp_v4_send_check): the pseudo-header's sum,
	 * folded, not complemented — the device completes it over the segment it cuts */
	wr16(b + 16, r->partial_csum ? (uint16_t)~csum_fold(sum) : csum_fold(csum_partial(b, len, sum)));
	return hlen;
}

void tcp_flags_str(uint8_t flags, char out[TCP_FLAGS_STR])
{
	size_t n = 0;
	if (flags & TCPHDR_SYN) out[n++] = 'S';
	if (flags & TCPHDR_FIN) out[n++] = 'F';
	if (flags & TCPHDR_RST) out[n++] = 'R';
	if (flags & TCPHDR_PSH) out[n++] = 'P';
	if (flags & TCPHDR_URG) out[n++] = 'U';
	if (flags & TCPHDR_ECE) out[n++] = 'E';
	if (flags & TCPHDR_CWR) out[n++] = 'W';
	if (flags & TCPHDR_ACK) out[n++] = '.';
	if (!n)
		out[n++] = '-';
	out[n] = 0;
}
