#include "testwire.h"

#include <sched.h>
#include <time.h>
#include <ustack/socket.h>

#include <stdio.h>
#include <string.h>

const uint8_t TW_DUT_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
const uint8_t TW_PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };

uint16_t tw_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
uint32_t tw_rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
void tw_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
void tw_wr32(uint8_t *p, uint32_t v) { tw_wr16(p, (uint16_t)(v >> 16)); tw_wr16(p + 2, (uint16_t)v); }

/* The plainest RFC 1071 sum: 16-bit big-endian words, carries folded at the end. */
uint16_t tw_csum(const uint8_t *b, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int tw_xmit(void *link, const void *frame, size_t len)
{
	struct tw *t = link;
	t->sent++;
	if (t->count == TW_MAX_FRAMES || len > TW_FRAME_MAX)
		return -1;
	struct tw_frame *f = &t->out[(t->head + t->count) % TW_MAX_FRAMES];
	memcpy(f->b, frame, len);
	f->len = len;
	f->time_us = t->vc.now_us;
	t->count++;
	return 0;
}

void tw_init(struct tw *t)
{
	static const uint8_t seed[32] = { 42 };
	memset(t, 0, sizeof(*t));
	ustack_vclock_init(&t->vc, 0);
	struct ustack_config cfg = { .clock = &t->vc.clock, .secret_seed = seed, .name = "dut" };
	t->st = ustack_create(&cfg);
	assert_non_null(t->st);
	struct ustack_if_config ic = { .name = "eth0", .type = USTACK_LINK_ETHER, .mtu = 1500,
				       .xmit = tw_xmit, .link = t };
	memcpy(ic.mac, TW_DUT_MAC, 6);
	t->ifindex = ustack_if_add(t->st, &ic);
	assert_int_equal(t->ifindex, 1);
	struct in_addr a = { htonl(TW_DUT_IP) };
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, a, 24), 0);
}

void tw_fini(struct tw *t)
{
	ustack_destroy(t->st);
	t->st = NULL;
}

void tw_send(struct tw *t, const uint8_t *frame, size_t len)
{
	ustack_input(t->st, t->ifindex, frame, len);
}

void tw_print(const char *what, const struct tw_frame *f)
{
	char line[256];
	ustack_frame_format(line, sizeof(line), USTACK_LINK_ETHER, f->b, f->len);
	print_message("%s at %.3f ms: %s\n", what, (double)f->time_us / 1000.0, line);
}

/* With auto_arp, answer every ARP request the DUT sent for the peer and hide it, as a live
 * peer would answer (the DUT's neighbour entry re-probes after going STALE). */
static void tw_pump_arp(struct tw *t)
{
	if (!t->auto_arp)
		return;
	for (int round = 0; round < 4; round++) {
		struct tw_frame keep[TW_MAX_FRAMES];
		unsigned nkeep = 0, answered = 0;
		while (t->count) {
			struct tw_frame *f = &t->out[t->head];
			t->head = (t->head + 1) % TW_MAX_FRAMES;
			t->count--;
			if (tw_rd16(f->b + 12) == 0x0806 && tw_rd16(f->b + ETH + 6) == 1 &&
			    tw_rd32(f->b + ETH + 24) == TW_PEER_IP)
				answered++;
			else
				keep[nkeep++] = *f;
		}
		t->head = 0;
		for (unsigned i = 0; i < nkeep; i++)
			t->out[i] = keep[i];
		t->count = nkeep;
		if (!answered)
			return;
		uint8_t r[64];
		size_t n = tw_arp(r, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
		tw_send(t, r, n);
	}
}

struct tw_frame *tw_expect(struct tw *t)
{
	tw_pump_arp(t);
	if (!t->count)
		fail_msg("expected the stack to send a frame at %.3f ms, it sent none",
			 (double)t->vc.now_us / 1000.0);
	struct tw_frame *f = &t->out[t->head];
	t->head = (t->head + 1) % TW_MAX_FRAMES;
	t->count--;
	return f;
}

void tw_expect_none(struct tw *t)
{
	tw_pump_arp(t);
	if (t->count) {
		tw_print("unexpected frame", &t->out[t->head]);
		fail_msg("expected no frame, the stack sent %u", t->count);
	}
}

void tw_advance(struct tw *t, uint64_t ms)
{
	t->vc.now_us += ms * 1000u;
	ustack_timers_run(t->st);
	tw_pump_arp(t);
}

uint64_t tw_counter(struct tw *t, const char *name)
{
	uint64_t v = 0;
	if (ustack_counter_get(t->st, name, &v) != 0)
		fail_msg("no counter named %s", name);
	return v;
}

void tw_sysctl(struct tw *t, const char *name, const char *value)
{
	if (ustack_sysctl_set(t->st, name, value) != 0)
		fail_msg("sysctl %s=%s failed", name, value);
}

size_t tw_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	tw_wr16(f + 12, type);
	return 14;
}

size_t tw_arp(uint8_t *f, uint16_t op, const uint8_t sha[6], uint32_t spa, const uint8_t tha[6],
	      uint32_t tpa, const uint8_t eth_dst[6])
{
	tw_eth(f, eth_dst, sha, 0x0806);
	uint8_t *a = f + 14;
	tw_wr16(a, 1);
	tw_wr16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	tw_wr16(a + 6, op);
	memcpy(a + 8, sha, 6);
	tw_wr32(a + 14, spa);
	memcpy(a + 18, tha, 6);
	tw_wr32(a + 24, tpa);
	return 42;
}

void tw_learn_peer(struct tw *t)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, zero[6] = { 0 };
	uint8_t f[64];
	size_t n = tw_arp(f, 1, TW_PEER_MAC, TW_PEER_IP, zero, TW_DUT_IP, bcast);
	tw_send(t, f, n);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(tw_rd16(r->b + 12), 0x0806);
	tw_expect_none(t);
}

void tw_ip_hdr(uint8_t *f, uint8_t proto, uint32_t src, uint32_t dst, uint16_t tot_len,
	       uint16_t id, uint16_t frag, uint8_t ttl)
{
	f[0] = 0x45;
	f[1] = 0;
	tw_wr16(f + 2, tot_len);
	tw_wr16(f + 4, id);
	tw_wr16(f + 6, frag);
	f[8] = ttl;
	f[9] = proto;
	tw_wr16(f + 10, 0);
	tw_wr32(f + 12, src);
	tw_wr32(f + 16, dst);
	tw_wr16(f + 10, tw_csum(f, 20));
}

size_t tw_icmp_echo_msg(uint8_t *m, uint16_t id, uint16_t seq, size_t payload)
{
	m[0] = 8;
	m[1] = 0;
	tw_wr16(m + 2, 0);
	tw_wr16(m + 4, id);
	tw_wr16(m + 6, seq);
	for (size_t i = 0; i < payload; i++)
		m[8 + i] = (uint8_t)i;
	tw_wr16(m + 2, tw_csum(m, 8 + payload));
	return 8 + payload;
}

size_t tw_echo(uint8_t *f, uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, size_t payload)
{
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	size_t m = tw_icmp_echo_msg(f + 34, id, seq, payload);
	tw_ip_hdr(f + 14, 1, src, dst, (uint16_t)(20 + m), 0x1111, 0, 64);
	return 34 + m;
}

size_t tw_frag(uint8_t *f, uint32_t src, uint32_t dst, uint16_t ipid, const uint8_t *datagram,
	       size_t off, size_t len, int more)
{
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	memcpy(f + 34, datagram + off, len);
	tw_ip_hdr(f + 14, 1, src, dst, (uint16_t)(20 + len), ipid,
		  (uint16_t)((more ? 0x2000 : 0) | (off / 8)), 64);
	return 34 + len;
}

/* cmocka fixtures: a fresh DUT per test, optionally with the peer already in its ARP cache. */
static struct tw fixture;

int tw_setup(void **state)
{
	tw_init(&fixture);
	*state = &fixture;
	return 0;
}

int tw_setup_learned(void **state)
{
	tw_setup(state);
	tw_learn_peer(&fixture); /* replies go out at once, not behind ARP */
	return 0;
}

int tw_setup_peer(void **state)
{
	tw_setup_learned(state);
	fixture.auto_arp = 1;
	return 0;
}

int tw_teardown(void **state)
{
	tw_fini(*state);
	return 0;
}

/* The pseudo-header and the segment laid end to end, as RFC 793 defines the sum (a segment
 * of up to 64 KB: jumbo frames, TSO packets). */
uint16_t tw_tcp_csum(const uint8_t *seg, size_t len, uint32_t src, uint32_t dst)
{
	static uint8_t buf[65535 + 12];
	if (len > 65535)
		return 0;
	tw_wr32(buf, src);
	tw_wr32(buf + 4, dst);
	buf[8] = 0;
	buf[9] = 6;
	tw_wr16(buf + 10, (uint16_t)len);
	memcpy(buf + 12, seg, len);
	return tw_csum(buf, 12 + len);
}

size_t tw_tcp(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
	      uint16_t win, const uint8_t *opts, size_t optlen)
{
	return tw_tcp_data(f, sport, dport, seq, ack, flags, win, opts, optlen, NULL, 0);
}

size_t tw_tcp_data(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		   uint16_t win, const uint8_t *opts, size_t optlen, const uint8_t *data, size_t dlen)
{
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	uint8_t *th = f + 34;
	size_t hlen = 20 + ((optlen + 3) & ~(size_t)3);
	memset(th, 0, hlen);
	tw_wr16(th, sport);
	tw_wr16(th + 2, dport);
	tw_wr32(th + 4, seq);
	tw_wr32(th + 8, ack);
	th[12] = (uint8_t)((hlen / 4) << 4);
	th[13] = flags;
	tw_wr16(th + 14, win);
	if (optlen)
		memcpy(th + 20, opts, optlen);
	if (dlen)
		memcpy(th + hlen, data, dlen);
	tw_wr16(th + 16, tw_tcp_csum(th, hlen + dlen, TW_PEER_IP, TW_DUT_IP));
	tw_ip_hdr(f + 14, 6, TW_PEER_IP, TW_DUT_IP, (uint16_t)(20 + hlen + dlen), 0x2222, 0x4000, 64);
	return 34 + hlen + dlen;
}

struct tw_seg tw_expect_tcp(struct tw *t)
{
	struct tw_frame *f = tw_expect(t);
	struct tw_seg s;
	memset(&s, 0, sizeof(s));
	if (tw_rd16(f->b + 12) != 0x0800 || f->b[ETH + 9] != 6) {
		tw_print("not a TCP segment", f);
		fail_msg("expected a TCP segment");
	}
	const uint8_t *ip = f->b + ETH;
	assert_int_equal(tw_csum(ip, 20), 0);
	size_t tot = tw_rd16(ip + 2);
	assert_int_equal(tot, f->len - ETH);
	const uint8_t *th = ip + 20;
	size_t len = tot - 20;
	assert_int_equal(tw_tcp_csum(th, len, tw_rd32(ip + 12), tw_rd32(ip + 16)), 0);
	s.ip_id = tw_rd16(ip + 4);
	s.df = (tw_rd16(ip + 6) & 0x4000) != 0;
	s.ttl = ip[8];
	s.tos = ip[1];
	s.sport = tw_rd16(th);
	s.dport = tw_rd16(th + 2);
	s.seq = tw_rd32(th + 4);
	s.ack = tw_rd32(th + 8);
	s.flags = th[13];
	s.win = tw_rd16(th + 14);
	size_t hlen = (size_t)(th[12] >> 4) * 4;
	s.opts = th + 20;
	s.optlen = hlen - 20;
	s.plen = len - hlen;
	s.payload = th + hlen;
	return s;
}

void tw_accept_conn(struct tw *t, struct tw_conn *c, uint16_t port, const uint8_t *opts, size_t optlen)
{
	tw_accept_conn_rtt(t, c, port, opts, optlen, 0);
}

void tw_accept_conn_rtt(struct tw *t, struct tw_conn *c, uint16_t port, const uint8_t *opts, size_t optlen,
			unsigned rtt_ms)
{
	uint8_t f[TW_FRAME_MAX];
	memset(c, 0, sizeof(*c));
	c->port = port;
	c->peer_port = 40000;
	c->peer_isn = 1000;
	c->lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	assert_int_equal(ustack_bind(t->st, c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, c->lfd, 8), 0);
	tw_send(t, f, tw_tcp(f, c->peer_port, port, c->peer_isn, 0, TW_SYN, 65535, opts, optlen));
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	c->iss = s.seq;
	if (rtt_ms)
		tw_advance(t, rtt_ms);
	tw_send(t, f, tw_tcp(f, c->peer_port, port, c->peer_isn + 1, c->iss + 1, TW_ACK, 65535, NULL, 0));
	c->fd = ustack_accept4(t->st, c->lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(c->fd >= 3);
	tw_expect_none(t);
}

uint32_t tw_dut_seq(const struct tw_conn *c, uint32_t rel) { return c->iss + 1 + rel; }
uint32_t tw_peer_seq(const struct tw_conn *c, uint32_t rel) { return c->peer_isn + 1 + rel; }

static void tw_opt_put(struct tw_opts *o, const uint8_t *b, size_t n)
{
	if (o->len + n > sizeof(o->b))
		fail_msg("TCP options longer than 40 bytes");
	memcpy(o->b + o->len, b, n);
	o->len += n;
}

void tw_opt_nop(struct tw_opts *o)
{
	static const uint8_t nop = TW_OPT_NOP;
	tw_opt_put(o, &nop, 1);
}

/* NOPs up to the point where an option of n bytes ends on a word boundary */
static void tw_opt_align(struct tw_opts *o, size_t n)
{
	while ((o->len + n) % 4)
		tw_opt_nop(o);
}

void tw_opt_mss(struct tw_opts *o, uint16_t mss)
{
	uint8_t b[4] = { TW_OPT_MSS, 4 };
	tw_wr16(b + 2, mss);
	tw_opt_align(o, sizeof(b));
	tw_opt_put(o, b, sizeof(b));
}

void tw_opt_sackok(struct tw_opts *o)
{
	static const uint8_t b[2] = { TW_OPT_SACKOK, 2 };
	tw_opt_align(o, sizeof(b));
	tw_opt_put(o, b, sizeof(b));
}

void tw_opt_ts(struct tw_opts *o, uint32_t val, uint32_t ecr)
{
	static const uint8_t nop_sackok[4] = { TW_OPT_NOP, TW_OPT_NOP, TW_OPT_SACKOK, 2 };
	uint8_t b[10] = { TW_OPT_TS, 10 };
	tw_wr32(b + 2, val);
	tw_wr32(b + 6, ecr);
	if (o->len >= 4 && !memcmp(o->b + o->len - 4, nop_sackok, 4)) {
		/* sackOK in the word before TS: the two share it, as in Linux's SYN */
		o->len -= 4;
		tw_opt_put(o, nop_sackok + 2, 2);
	} else {
		tw_opt_align(o, sizeof(b));
	}
	tw_opt_put(o, b, sizeof(b));
}

void tw_opt_wscale(struct tw_opts *o, uint8_t shift)
{
	const uint8_t b[3] = { TW_OPT_WSCALE, 3, shift };
	tw_opt_align(o, sizeof(b));
	tw_opt_put(o, b, sizeof(b));
}

void tw_opt_sack(struct tw_opts *o, uint32_t base, const uint32_t (*blocks)[2], unsigned n)
{
	uint8_t b[2 + 4 * 8] = { TW_OPT_SACK, (uint8_t)(2 + 8 * n) };
	if (!n)
		return;
	if (n > 4)
		fail_msg("at most 4 SACK blocks fit in TCP options");
	for (unsigned i = 0; i < n; i++) {
		tw_wr32(b + 2 + 8 * i, base + blocks[i][0]);
		tw_wr32(b + 6 + 8 * i, base + blocks[i][1]);
	}
	tw_opt_align(o, 2 + 8 * n);
	tw_opt_put(o, b, 2 + 8 * n);
}

void tw_opt_raw(struct tw_opts *o, uint8_t kind, const uint8_t *data, size_t len)
{
	if (len > sizeof(o->b) - 2)
		fail_msg("a TCP option of %zu bytes cannot fit", len + 2);
	const uint8_t head[2] = { kind, (uint8_t)(2 + len) };
	tw_opt_put(o, head, 2);
	if (len)
		tw_opt_put(o, data, len);
	while (o->len % 4)
		tw_opt_nop(o);
}

void tw_peer_send_opts(struct tw *t, const struct tw_conn *c, const struct tw_opts *o, uint32_t rseq,
		       uint32_t rack, uint8_t flags, uint16_t win, const void *data, size_t len)
{
	uint8_t f[TW_FRAME_MAX];
	uint32_t ack = flags & TW_ACK ? tw_dut_seq(c, rack) : 0;
	tw_send(t, f, tw_tcp_data(f, c->peer_port, c->port, tw_peer_seq(c, rseq), ack, flags, win,
				  o ? o->b : NULL, o ? o->len : 0, data, len));
}

void tw_peer_send(struct tw *t, const struct tw_conn *c, uint32_t rseq, uint32_t rack, uint8_t flags,
		  uint16_t win, const void *data, size_t len)
{
	tw_peer_send_opts(t, c, NULL, rseq, rack, flags, win, data, len);
}

struct tw_seg tw_expect_seg_at(struct tw *t, const struct tw_conn *c, uint8_t flags, uint32_t rseq, uint32_t rack,
			       size_t plen, const char *file, int line)
{
	struct tw_seg s = tw_expect_tcp(t);
	uint32_t got_rseq = s.seq - tw_dut_seq(c, 0), got_rack = s.ack - tw_peer_seq(c, 0);
	int ack_ok = flags & TW_ACK ? got_rack == rack : s.ack == 0;
	if (s.sport != c->port || s.dport != c->peer_port || s.flags != flags || got_rseq != rseq || !ack_ok ||
	    s.plen != plen) {
		print_error("got  %u > %u flags 0x%02x seq %u ack %u (absolute %u) length %zu\n"
			    "want %u > %u flags 0x%02x seq %u ack %u length %zu (seq/ack relative)\n",
			    s.sport, s.dport, s.flags, got_rseq, got_rack, s.ack, s.plen, c->port, c->peer_port,
			    flags, rseq, flags & TW_ACK ? rack : 0, plen);
		_fail(file, line);
	}
	return s;
}

const uint8_t *tw_seg_opt(const struct tw_seg *s, uint8_t kind, size_t *len)
{
	for (size_t i = 0; i < s->optlen;) {
		uint8_t k = s->opts[i];
		if (k == 0) /* end of option list */
			return NULL;
		if (k == TW_OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= s->optlen || s->opts[i + 1] < 2 || i + s->opts[i + 1] > s->optlen)
			fail_msg("malformed TCP options: kind %u at offset %zu", k, i);
		if (k == kind) {
			*len = (size_t)s->opts[i + 1] - 2;
			return s->opts + i + 2;
		}
		i += s->opts[i + 1];
	}
	return NULL;
}

void tw_pair_init(struct ustack_vclock *vc, struct ustack **a, struct ustack **b, struct ustack_memlink **ml,
		  const struct ustack_memlink_params *mp)
{
	static const uint8_t sa[32] = { 1 }, sb[32] = { 2 };
	static const uint8_t mac_a[6] = { 2, 0, 0, 0, 0, 0xa }, mac_b[6] = { 2, 0, 0, 0, 0, 0xb };
	ustack_vclock_init(vc, 0);
	struct ustack_config ca = { .clock = &vc->clock, .secret_seed = sa, .name = "a" };
	struct ustack_config cb = { .clock = &vc->clock, .secret_seed = sb, .name = "b" };
	*a = ustack_create(&ca);
	*b = ustack_create(&cb);
	*ml = ustack_memlink_create(&vc->clock, mp);
	assert_true(*a && *b && *ml);
	int ia = ustack_memlink_attach(*ml, 0, *a, "m0", mac_a, 1500);
	int ib = ustack_memlink_attach(*ml, 1, *b, "m0", mac_b, 1500);
	assert_true(ia > 0 && ib > 0);
	assert_int_equal(ustack_addr_add(*a, ia, (struct in_addr){ htonl(TW_PEER_IP) }, 24), 0);
	assert_int_equal(ustack_addr_add(*b, ib, (struct in_addr){ htonl(TW_DUT_IP) }, 24), 0);
}

void tw_pair_fini(struct ustack *a, struct ustack *b, struct ustack_memlink *ml)
{
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
}

void tw_wait_sleepers(struct tw *t, unsigned n)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (ustack_sleeping_callers(t->st) < n) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 10)
			fail_msg("no thread went to sleep in a blocking call within 10 s");
		sched_yield();
	}
}
