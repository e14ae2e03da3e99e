/* The TCP header and options: Linux's exact option layouts, tolerant parsing, checksums. */
#include "testwire.h"
#include "wire/tcp.h"

#include <string.h>

#define SRC 0xc0000201u
#define DST 0xc0000202u

static void assert_tcp_csum(const uint8_t *seg, size_t len)
{
	assert_int_equal(tw_tcp_csum(seg, len, SRC, DST), 0);
}

static size_t emit(uint8_t *b, uint8_t flags, const struct tcp_opts *o, size_t plen)
{
	struct tcp_repr r = { .sport = 40000, .dport = 80, .seq = 0x01020304, .ack = 0x0a0b0c0d,
			      .flags = flags, .window = 64240, .plen = plen };
	r.opt = *o;
	size_t h = tcp_emit(b, &r, SRC, DST);
	assert_tcp_csum(b, h + plen);
	return h;
}

static void test_linux_syn_layout(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_opts o = { .mss_ok = true, .mss = 1460, .sack_ok = true, .ts_ok = true,
			      .tsval = 0x11223344, .tsecr = 0, .ws_ok = true, .wscale = 7 };
	size_t h = emit(b, TCPHDR_SYN, &o, 0);
	/* what `tcpdump -x` shows for a Linux SYN: mss, sackOK+TS folded, nop+wscale */
	static const uint8_t want[] = {
		0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d,
		0xa0, 0x02, 0xfa, 0xf0, /* csum */ 0, 0, 0x00, 0x00,
		0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44,
		0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07 };
	assert_int_equal(h, 40);
	b[16] = b[17] = 0;
	assert_memory_equal(b, want, sizeof(want));
}

static void test_layout_without_timestamps(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_opts o = { .mss_ok = true, .mss = 1460, .sack_ok = true, .ws_ok = true, .wscale = 7 };
	size_t h = emit(b, TCPHDR_SYN | TCPHDR_ACK, &o, 0);
	static const uint8_t want[] = { 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
					0x01, 0x03, 0x03, 0x07 };
	assert_int_equal(h, 32);
	assert_memory_equal(b + 20, want, sizeof(want));
	/* nothing but MSS */
	struct tcp_opts m = { .mss_ok = true, .mss = 536 };
	assert_int_equal(emit(b, TCPHDR_SYN, &m, 0), 24);
	static const uint8_t want_m[] = { 0x02, 0x04, 0x02, 0x18 };
	assert_memory_equal(b + 20, want_m, 4);
}

static void test_non_syn_omits_syn_only_options(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_opts o = { .mss_ok = true, .mss = 1460, .sack_ok = true, .ws_ok = true, .wscale = 7,
			      .ts_ok = true, .tsval = 5, .tsecr = 6 };
	size_t h = emit(b, TCPHDR_ACK, &o, 0);
	static const uint8_t want[] = { 0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 5, 0, 0, 0, 6 };
	assert_int_equal(h, 32);
	assert_memory_equal(b + 20, want, sizeof(want));
}

static void test_sack_blocks_fit_the_room(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_opts o = { .ts_ok = true, .tsval = 1, .tsecr = 2, .nsack = 4,
			      .sack = { { 10, 20 }, { 30, 40 }, { 50, 60 }, { 70, 80 } } };
	size_t h = emit(b, TCPHDR_ACK, &o, 0);
	/* with timestamps only three blocks fit in 40 bytes of options */
	assert_int_equal(h, 20 + 12 + 4 + 24);
	assert_int_equal(b[32], 1);
	assert_int_equal(b[33], 1);
	assert_int_equal(b[34], TCPOPT_SACK);
	assert_int_equal(b[35], 26);
	struct tcp_repr r;
	assert_int_equal(tcp_parse(b, h, SRC, DST, &r), TCP_OK);
	assert_int_equal(r.opt.nsack, 3);
	assert_int_equal(r.opt.sack[2].start, 50);
	assert_int_equal(r.opt.sack[2].end, 60);
	/* without timestamps, four */
	o.ts_ok = false;
	h = emit(b, TCPHDR_ACK, &o, 0);
	assert_int_equal(h, 20 + 4 + 32);
}

static void test_fastopen_cookie_layouts(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_opts o = { .fastopen = true, .cookie_len = 8,
			      .cookie = { 1, 2, 3, 4, 5, 6, 7, 8 } };
	size_t h = emit(b, TCPHDR_SYN, &o, 0);
	static const uint8_t want[] = { 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1 };
	assert_int_equal(h, 32);
	assert_memory_equal(b + 20, want, sizeof(want));
	o.fastopen_exp = true;
	h = emit(b, TCPHDR_SYN, &o, 0);
	static const uint8_t want_exp[] = { 254, 12, 0xf9, 0x89, 1, 2, 3, 4, 5, 6, 7, 8 };
	assert_int_equal(h, 32);
	assert_memory_equal(b + 20, want_exp, sizeof(want_exp));
	struct tcp_repr r;
	assert_int_equal(tcp_parse(b, h, SRC, DST, &r), TCP_OK);
	assert_true(r.opt.fastopen && r.opt.fastopen_exp);
	assert_int_equal(r.opt.cookie_len, 8);
	assert_memory_equal(r.opt.cookie, o.cookie, 8);
	/* a cookie request: the bare option */
	struct tcp_opts req = { .fastopen = true };
	h = emit(b, TCPHDR_SYN, &req, 0);
	assert_int_equal(h, 24);
	assert_int_equal(b[20], 34);
	assert_int_equal(b[21], 2);
	assert_int_equal(tcp_parse(b, h, SRC, DST, &r), TCP_OK);
	assert_true(r.opt.fastopen);
	assert_int_equal(r.opt.cookie_len, 0);
}

static size_t raw_segment(uint8_t *b, const uint8_t *opts, size_t optlen)
{
	memset(b, 0, 20);
	tw_wr16(b, 1);
	tw_wr16(b + 2, 2);
	b[12] = (uint8_t)(((20 + optlen) / 4) << 4);
	b[13] = TCPHDR_SYN;
	if (optlen)
		memcpy(b + 20, opts, optlen);
	tw_wr16(b + 16, tw_tcp_csum(b, 20 + optlen, SRC, DST));
	return 20 + optlen;
}

/* tcp_options_len counts without writing: the same as what tcp_options_write writes, for every
 * combination of options, SACK block count and cookie, on a SYN and on other segments. */
static void test_options_len_counts_what_is_written(void **state)
{
	(void)state;
	for (unsigned m = 0; m < 64 * 5 * 2; m++) {
		struct tcp_opts o;
		memset(&o, 0, sizeof(o));
		o.mss_ok = m & 1, o.ws_ok = m >> 1 & 1, o.sack_ok = m >> 2 & 1, o.ts_ok = m >> 3 & 1;
		o.fastopen = m >> 4 & 1, o.fastopen_exp = m >> 5 & 1;
		o.nsack = (uint8_t)(m / 64 % 5);
		o.cookie_len = o.fastopen && (m / 320) ? (uint8_t)(4 + m % 13) : 0;
		if (o.cookie_len > TCP_FASTOPEN_COOKIE_MAX)
			o.cookie_len = TCP_FASTOPEN_COOKIE_MAX;
		for (int syn = 0; syn < 2; syn++) {
			uint8_t out[128];
			assert_int_equal(tcp_options_len(&o, syn), tcp_options_write(out, &o, syn));
		}
	}
}

static void test_malformed_options_tolerated_like_linux(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_repr r;
	/* MSS, then an option claiming length 1: parsing stops, MSS kept */
	static const uint8_t silly[] = { 2, 4, 0x05, 0xb4, 8, 1, 0, 0 };
	assert_int_equal(tcp_parse(b, raw_segment(b, silly, sizeof(silly)), SRC, DST, &r), TCP_OK);
	assert_true(r.opt.mss_ok);
	assert_false(r.opt.ts_ok);
	/* an option running past the header: stop */
	static const uint8_t partial[] = { 1, 3, 3, 7, 8, 10, 0, 0 };
	assert_int_equal(tcp_parse(b, raw_segment(b, partial, sizeof(partial)), SRC, DST, &r), TCP_OK);
	assert_true(r.opt.ws_ok);
	assert_false(r.opt.ts_ok);
	/* wrong sizes for their kind are skipped, the rest still read */
	static const uint8_t wrong[] = { 2, 3, 5, 3, 4, 7, 1, 1, 4, 3, 0, 1, 3, 3, 15, 0 };
	assert_int_equal(tcp_parse(b, raw_segment(b, wrong, sizeof(wrong)), SRC, DST, &r), TCP_OK);
	assert_false(r.opt.mss_ok);
	assert_false(r.opt.sack_ok);
	assert_true(r.opt.ws_ok); /* the well-formed window scale at the end */
	assert_int_equal(r.opt.wscale, 15);
	/* and after EOL nothing is read */
	static const uint8_t eol[] = { 0, 2, 4, 5, 0xb4, 0, 0, 0 };
	assert_int_equal(tcp_parse(b, raw_segment(b, eol, sizeof(eol)), SRC, DST, &r), TCP_OK);
	assert_false(r.opt.mss_ok);
	/* window scale beyond 14 is parsed as sent: the receiver clamps it (Linux warns) */
	static const uint8_t ws[] = { 1, 3, 3, 15 };
	assert_int_equal(tcp_parse(b, raw_segment(b, ws, sizeof(ws)), SRC, DST, &r), TCP_OK);
	assert_int_equal(r.opt.wscale, 15);
	/* a Fast Open cookie of odd length is not a cookie */
	static const uint8_t tfo_odd[] = { 34, 7, 1, 2, 3, 4, 5, 1 };
	assert_int_equal(tcp_parse(b, raw_segment(b, tfo_odd, sizeof(tfo_odd)), SRC, DST, &r), TCP_OK);
	assert_false(r.opt.fastopen);
}

/* The tests' own option builder (testwire's tw_opt_*) lays options out as Linux's peers do, so
 * that a crafted SYN or ACK in any test is one a real stack sends: its bytes against the
 * layouts written out, read back by tcp_parse; and tw_seg_opt finds an option past NOPs. */
static void test_testwire_option_builder(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_repr r;
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 0x11223344, 0);
	tw_opt_wscale(&o, 7);
	static const uint8_t syn[] = { 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44,
				       0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07 };
	assert_int_equal(o.len, sizeof(syn));
	assert_memory_equal(o.b, syn, sizeof(syn));
	/* without timestamps sackOK takes a word of its own */
	o = (struct tw_opts){ 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_wscale(&o, 7);
	static const uint8_t no_ts[] = { 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07 };
	assert_int_equal(o.len, sizeof(no_ts));
	assert_memory_equal(o.b, no_ts, sizeof(no_ts));
	/* an ACK's: NOP NOP TS, NOP NOP SACK with edges above a base */
	o = (struct tw_opts){ 0 };
	tw_opt_ts(&o, 5, 6);
	tw_opt_sack(&o, 1000, (const uint32_t[][2]){ { 10, 20 }, { 30, 40 } }, 2);
	tw_opt_sack(&o, 1000, NULL, 0); /* no blocks: no option */
	static const uint8_t ack[] = { 1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 18,
				       0, 0, 0x03, 0xf2, 0, 0, 0x03, 0xfc, 0, 0, 0x04, 0x06, 0, 0, 0x04, 0x10 };
	assert_int_equal(o.len, sizeof(ack));
	assert_memory_equal(o.b, ack, sizeof(ack));
	assert_int_equal(tcp_parse(b, raw_segment(b, o.b, o.len), SRC, DST, &r), TCP_OK);
	assert_true(r.opt.ts_ok);
	assert_int_equal(r.opt.tsecr, 6);
	assert_int_equal(r.opt.nsack, 2);
	assert_int_equal(r.opt.sack[1].start, 1030);
	assert_int_equal(r.opt.sack[1].end, 1040);
	/* an option it has no name for: NOPs after it, as Linux pads Fast Open's cookie */
	o = (struct tw_opts){ 0 };
	tw_opt_mss(&o, 536);
	static const uint8_t cookie[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	tw_opt_raw(&o, 34, cookie, sizeof(cookie));
	static const uint8_t tfo[] = { 2, 4, 0x02, 0x18, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1 };
	assert_int_equal(o.len, sizeof(tfo));
	assert_memory_equal(o.b, tfo, sizeof(tfo));
	assert_int_equal(tcp_parse(b, raw_segment(b, o.b, o.len), SRC, DST, &r), TCP_OK);
	assert_true(r.opt.fastopen);
	assert_int_equal(r.opt.cookie_len, 8);
	/* tw_seg_opt: an option's body, past NOPs; NULL when absent, or after EOL */
	tw_opt_nop(&o);
	tw_opt_wscale(&o, 9);
	struct tw_seg s = { .opts = o.b, .optlen = o.len };
	size_t n = 0;
	const uint8_t *p = tw_seg_opt(&s, 34, &n);
	assert_non_null(p);
	assert_int_equal(n, 8);
	assert_memory_equal(p, cookie, 8);
	p = tw_seg_opt(&s, TW_OPT_WSCALE, &n);
	assert_non_null(p);
	assert_int_equal(n, 1);
	assert_int_equal(p[0], 9);
	assert_null(tw_seg_opt(&s, TW_OPT_TS, &n));
	static const uint8_t eol[] = { 0, 2, 4, 5, 0xb4 };
	s = (struct tw_seg){ .opts = eol, .optlen = sizeof(eol) };
	assert_null(tw_seg_opt(&s, TW_OPT_MSS, &n));
}

static void test_header_errors(void **state)
{
	(void)state;
	uint8_t b[128];
	struct tcp_repr r;
	size_t n = raw_segment(b, NULL, 0);
	assert_int_equal(tcp_parse(b, 19, SRC, DST, &r), TCP_ERR_SHORT);
	b[12] = 4 << 4;
	assert_int_equal(tcp_parse(b, n, SRC, DST, &r), TCP_ERR_DOFF);
	b[12] = 15 << 4;
	assert_int_equal(tcp_parse(b, n, SRC, DST, &r), TCP_ERR_HDRLEN);
	n = raw_segment(b, NULL, 0);
	b[4] ^= 0xff;
	assert_int_equal(tcp_parse(b, n, SRC, DST, &r), TCP_ERR_CSUM);
	assert_int_equal(r.sport, 1); /* fields still filled for printers */
	assert_int_equal(tcp_parse(b, n, SRC + 1, DST, &r), TCP_ERR_CSUM); /* pseudo-header counts */
}

static void test_printer(void **state)
{
	(void)state;
	uint8_t f[128];
	struct tcp_opts o = { .mss_ok = true, .mss = 1460, .sack_ok = true, .ts_ok = true,
			      .tsval = 1, .tsecr = 0, .ws_ok = true, .wscale = 7 };
	size_t h = emit(f + 34, TCPHDR_SYN, &o, 0);
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	tw_ip_hdr(f + 14, 6, SRC, DST, (uint16_t)(20 + h), 1, 0x4000, 64);
	char line[256];
	ustack_frame_format(line, sizeof(line), USTACK_LINK_ETHER, f, 34 + h);
	assert_string_equal(line, "IP 192.0.2.1 > 192.0.2.2: 40000 > 80: Flags [S], seq 16909060, win 64240, "
				  "options [mss 1460,sackOK,TS val 1 ecr 0,wscale 7], length 0 (ttl 64, id 1, DF)");
	char fl[TCP_FLAGS_STR];
	tcp_flags_str(TCPHDR_SYN | TCPHDR_ACK, fl);
	assert_string_equal(fl, "S.");
	tcp_flags_str(TCPHDR_RST | TCPHDR_ACK, fl);
	assert_string_equal(fl, "R.");
	tcp_flags_str(TCPHDR_FIN | TCPHDR_PSH | TCPHDR_ACK, fl);
	assert_string_equal(fl, "FP.");
	/* all eight: one more than the old 8-byte buffer held (found by fuzz_ether) */
	tcp_flags_str(0xff, fl);
	assert_string_equal(fl, "SFRPUEW.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_syn_layout),
		cmocka_unit_test(test_layout_without_timestamps),
		cmocka_unit_test(test_non_syn_omits_syn_only_options),
		cmocka_unit_test(test_sack_blocks_fit_the_room),
		cmocka_unit_test(test_fastopen_cookie_layouts),
		cmocka_unit_test(test_options_len_counts_what_is_written),
		cmocka_unit_test(test_malformed_options_tolerated_like_linux),
		cmocka_unit_test(test_testwire_option_builder),
		cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_printer),
	};
	return cmocka_run_group_tests_name("tcp_wire", tests, NULL, NULL);
}
