/* The in-memory link: delivery, delay, seeded impairments (reproducible), bounds; and two
 * stacks pinging across it in virtual time. */
#include "testwire.h"
#include <ustack/socket.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <string.h>


struct pair {
	struct ustack_vclock vc;
	struct ustack *a, *b;
	struct ustack_memlink *ml;
	int replies;
};

static void on_reply(void *arg, struct in_addr from, uint16_t id, uint16_t seq, size_t len, uint8_t ttl)
{
	(void)from; (void)id; (void)seq; (void)len; (void)ttl;
	((struct pair *)arg)->replies++;
}

static void pair_init(struct pair *p, const struct ustack_memlink_params *mp)
{
	memset(p, 0, sizeof(*p));
	tw_pair_init(&p->vc, &p->a, &p->b, &p->ml, mp);
	ustack_set_echo_reply_handler(p->a, on_reply, p);
}

static void pair_fini(struct pair *p)
{
	tw_pair_fini(p->a, p->b, p->ml);
}

static int ping_n(struct pair *p, int n)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(ustack_ping(p->a, (struct in_addr){ htonl(TW_DUT_IP) }, 1, (uint16_t)i, 32), 0);
		ustack_memlink_run(p->ml, &p->vc, p->vc.now_us + 1000000);
	}
	return p->replies;
}

static void test_ping_across_clean_link_with_delay(void **state)
{
	(void)state;
	struct pair p;
	struct ustack_memlink_params mp = { .delay_us = 2500 };
	pair_init(&p, &mp);
	assert_int_equal(ustack_ping(p.a, (struct in_addr){ htonl(TW_DUT_IP) }, 1, 1, 32), 0);
	/* ARP out and back (2 × 2.5 ms), then echo out and back: 10 ms */
	ustack_memlink_run(p.ml, &p.vc, 9999);
	assert_int_equal(p.replies, 0);
	ustack_memlink_run(p.ml, &p.vc, 10000);
	assert_int_equal(p.replies, 1);
	assert_int_equal(ping_n(&p, 9), 10);
	assert_int_equal(ustack_memlink_dropped(p.ml), 0);
	pair_fini(&p);
}

static void test_loss_is_seeded_and_reproducible(void **state)
{
	(void)state;
	int got[2];
	uint64_t dropped[2];
	for (int run = 0; run < 2; run++) {
		struct pair p;
		struct ustack_memlink_params mp = { .seed = 99, .delay_us = 1000, .loss = 0.3 };
		pair_init(&p, &mp);
		got[run] = ping_n(&p, 100);
		dropped[run] = ustack_memlink_dropped(p.ml);
		pair_fini(&p);
	}
	assert_int_equal(got[0], got[1]);
	assert_int_equal(dropped[0], dropped[1]);
	/* 0.7² ≈ 49% of round trips survive */
	assert_true(got[0] > 30 && got[0] < 70);
	assert_true(dropped[0] > 0);
}

static void test_total_loss_and_filter(void **state)
{
	(void)state;
	struct pair p;
	struct ustack_memlink_params mp = { .loss = 1.0 };
	pair_init(&p, &mp);
	assert_int_equal(ping_n(&p, 3), 0);
	pair_fini(&p);
}

static int drop_echo_requests(void *arg, int dir, const uint8_t *f, size_t len)
{
	(void)arg;
	return dir == 0 && len > 34 && tw_rd16(f + 12) == 0x0800 && f[34] == 8;
}

static void test_filter_drops_chosen_frames(void **state)
{
	(void)state;
	struct pair p;
	pair_init(&p, NULL);
	ustack_memlink_set_filter(p.ml, drop_echo_requests, NULL);
	assert_int_equal(ping_n(&p, 3), 0);
	assert_int_equal(ustack_memlink_dropped(p.ml), 3);
	ustack_memlink_set_filter(p.ml, NULL, NULL);
	assert_int_equal(ping_n(&p, 1), 1);
	pair_fini(&p);
}

static void test_duplicates_delivered_twice(void **state)
{
	(void)state;
	struct pair p;
	struct ustack_memlink_params mp = { .seed = 5, .duplicate = 1.0 };
	pair_init(&p, &mp);
	ping_n(&p, 1);
	/* every frame doubled in both directions: the echo request arrives twice, and each
	 * of the two replies arrives twice */
	assert_int_equal(p.replies, 4);
	uint64_t echos = 0;
	assert_int_equal(ustack_counter_get(p.b, "IcmpInEchos", &echos), 0);
	assert_int_equal(echos, 2);
	pair_fini(&p);
}

struct rec {
	uint16_t seq[64];
	int n;
};

/* Records the sequence numbers of echo requests as they reach side 1. */
static void rec_trace(void *arg, const struct ustack_trace_event *ev)
{
	struct rec *r = arg;
	if (ev->kind == USTACK_TRACE_PKT_RX && ev->len >= 42 && tw_rd16(ev->frame + 12) == 0x0800 &&
	    ev->frame[34] == 8 && r->n < 64)
		r->seq[r->n++] = tw_rd16(ev->frame + 40);
}

static int burst(struct ustack_memlink_params *mp, struct rec *r, uint64_t *dropped)
{
	struct pair p;
	pair_init(&p, mp);
	ping_n(&p, 1); /* resolve ARP first */
	ustack_trace_subscribe(p.b, rec_trace, r);
	for (int i = 0; i < 20; i++) { /* 20 requests, 1 ms apart, with a 10 ms delay */
		assert_int_equal(ustack_ping(p.a, (struct in_addr){ htonl(TW_DUT_IP) }, 1, (uint16_t)(100 + i), 8), 0);
		ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 1000);
	}
	ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 100000);
	*dropped = ustack_memlink_dropped(p.ml);
	int replies = p.replies;
	pair_fini(&p);
	return replies;
}

static void test_reorder_and_queue_limit(void **state)
{
	(void)state;
	struct rec r = { .n = 0 };
	uint64_t dropped;
	struct ustack_memlink_params mp = { .seed = 3, .delay_us = 10000, .reorder = 0.3 };
	assert_int_equal(burst(&mp, &r, &dropped), 21);
	assert_int_equal(dropped, 0);
	assert_int_equal(r.n, 20);
	int inversions = 0, sum = 0;
	for (int i = 0; i < r.n; i++) {
		sum += r.seq[i] - 100;
		if (i && r.seq[i] < r.seq[i - 1])
			inversions++;
	}
	assert_int_equal(sum, 190); /* each one exactly once */
	assert_true(inversions > 0);

	/* at most 4 frames in flight per direction: a 10-deep burst overflows */
	struct rec r2 = { .n = 0 };
	struct ustack_memlink_params small = { .delay_us = 10000, .queue_limit = 4 };
	int got = burst(&small, &r2, &dropped);
	assert_true(dropped > 0);
	assert_true(got < 21);
	assert_true(r2.n < 20);
}

/* A connection from a to b:80 across the link; returns a's descriptor, *s b's accepted one. */
static int tcp_connected(struct pair *p, int *s)
{
	int l = ustack_socket(p->b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_DUT_IP) };
	assert_int_equal(ustack_bind(p->b, l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(p->b, l, 4), 0);
	int c = ustack_socket(p->a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ustack_connect(p->a, c, (struct sockaddr *)&sa, sizeof(sa));
	ustack_memlink_run(p->ml, &p->vc, p->vc.now_us + 100000);
	*s = ustack_accept4(p->b, l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(*s >= 0);
	return c;
}

/* `total` bytes of a pattern from a's c to b's s, in virtual time (100 s at most), then
 * checked byte for byte. */
static void bulk_a_to_b(struct pair *p, int c, int s, size_t total)
{
	enum { MAX = 4 << 20 };
	static char data[MAX], got[MAX];
	assert_true(total <= MAX);
	for (size_t i = 0; i < total; i++)
		data[i] = (char)(i * 13 + (i >> 12));
	size_t sent = 0, rcvd = 0;
	for (int round = 0; round < 100000 && rcvd < total; round++) {
		ssize_t w = ustack_send(p->a, c, data + sent, total - sent, 0);
		if (w > 0)
			sent += (size_t)w;
		ssize_t r;
		while ((r = ustack_recv(p->b, s, got + rcvd, total - rcvd, 0)) > 0)
			rcvd += (size_t)r;
		ustack_memlink_run(p->ml, &p->vc, p->vc.now_us + 1000);
	}
	assert_int_equal(rcvd, total);
	assert_memory_equal(got, data, total);
}

/* Every TCP segment's checksum, as a frame crosses: valid (0 over the segment) or not. */
static unsigned tcp_frames, tcp_valid;
static int count_csums(void *arg, int dir, const uint8_t *f, size_t len)
{
	(void)arg, (void)dir;
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6)
		return 0;
	size_t ihl = (size_t)(f[14] & 15) * 4, tot = (size_t)f[16] << 8 | f[17];
	tcp_frames++;
	tcp_valid += tw_tcp_csum(f + 14 + ihl, tot - ihl, tw_rd32(f + 14 + 12), tw_rd32(f + 14 + 16)) == 0;
	return 0;
}

/* Checksum offload (USTACK_IF_CSUM), as Linux's loopback: TCP segments cross with their
 * checksum partial and are taken, data intact; ICMP's is still computed (ping answers); and
 * without the offload every segment's checksum is whole. */
static void test_csum_offload(void **state)
{
	(void)state;
	for (int offload = 0; offload < 2; offload++) {
		struct pair p;
		struct ustack_memlink_params mp = { .csum_offload = offload };
		pair_init(&p, &mp);
		tcp_frames = tcp_valid = 0;
		ustack_memlink_set_filter(p.ml, count_csums, NULL);
		assert_int_equal(ping_n(&p, 2), 2);
		int s, c = tcp_connected(&p, &s);
		static char data[20000], got[20000];
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (char)(i * 13);
		assert_int_equal(ustack_send(p.a, c, data, sizeof(data), 0), (ssize_t)sizeof(data));
		ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 100000);
		assert_int_equal(ustack_recv(p.b, s, got, sizeof(got), 0), (ssize_t)sizeof(got));
		assert_memory_equal(got, data, sizeof(data));
		assert_true(tcp_frames > 10);
		assert_int_equal(tcp_valid, offload ? 0 : tcp_frames);
		uint64_t bad = 1;
		assert_int_equal(ustack_counter_get(p.b, "TcpInCsumErrors", &bad), 0);
		assert_int_equal(bad, 0);
		pair_fini(&p);
	}
}

/* What crosses with TSO: the largest TCP frame, how many exceed the MTU's 1514 bytes, and
 * whether each one's IP total length is the frame's (a whole packet, not a cut one). */
static size_t tso_largest;
static unsigned tso_big, tso_badlen;
static int watch_tso(void *arg, int dir, const uint8_t *f, size_t len)
{
	(void)arg, (void)dir;
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6)
		return 0;
	size_t tot = (size_t)f[16] << 8 | f[17];
	tso_largest = len > tso_largest ? len : tso_largest;
	tso_big += len > 1514;
	tso_badlen += tot != len - 14;
	return 0;
}

/*
 * TSO across the link (params.tso), as GSO packets cross Linux's veth: TCP's packets of up to
 * 64 KB arrive whole, the bytes intact — with and without loss, where a lost packet is 44
 * segments' worth to recover — and the receiver counts the segments each stood for in
 * tcpi_segs_in (gso_segs), TcpInSegs the packets.  Without tso, nothing crosses above the MTU.
 */
static void test_tso_packets_cross_whole(void **state)
{
	(void)state;
	for (int run = 0; run < 3; run++) {
		struct pair p;
		struct ustack_memlink_params mp = { .tso = run > 0, .loss = run == 2 ? 0.02 : 0, .seed = 7 };
		pair_init(&p, &mp);
		tso_largest = tso_big = tso_badlen = 0;
		ustack_memlink_set_filter(p.ml, watch_tso, NULL);
		int s, c = tcp_connected(&p, &s);
		enum { TOTAL = 4 << 20 };
		bulk_a_to_b(&p, c, s, TOTAL);
		assert_int_equal(tso_badlen, 0);
		struct ustack_tcp_info ti;
		socklen_t tl = sizeof(ti);
		assert_int_equal(ustack_getsockopt(p.b, s, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
		uint64_t in_segs = 0, retrans = 0;
		assert_int_equal(ustack_counter_get(p.b, "TcpInSegs", &in_segs), 0);
		assert_int_equal(ustack_counter_get(p.a, "TcpRetransSegs", &retrans), 0);
		/* every data segment of the MSS or less counted once: at least TOTAL / MSS */
		assert_true(ti.tcpi_data_segs_in >= TOTAL / ti.tcpi_rcv_mss);
		if (run == 0) {
			assert_int_equal(tso_big, 0);
			assert_true(tso_largest <= 1514);
			assert_true(in_segs >= TOTAL / 1448);
		} else {
			assert_true(tso_big > 0);
			assert_true(tso_largest > 32768 && tso_largest <= 65535 + 14);
			/* packets, not the segments they carry (recovery resends smaller ones) */
			assert_true(in_segs < ti.tcpi_segs_in / (run == 1 ? 10 : 2));
		}
		if (run == 2)
			assert_true(retrans > 0);
		pair_fini(&p);
	}
}

/* The SYNs' MSS options and the largest TCP frame, as they cross. */
static unsigned jumbo_syn_mss[2];
static size_t jumbo_largest;
static int watch_jumbo(void *arg, int dir, const uint8_t *f, size_t len)
{
	(void)arg;
	if (len < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 6)
		return 0;
	const uint8_t *th = f + 14 + (f[14] & 15) * 4;
	jumbo_largest = len > jumbo_largest ? len : jumbo_largest;
	if (th[13] & TW_SYN && th[20] == TW_OPT_MSS && th[21] == 4)
		jumbo_syn_mss[dir] = (unsigned)th[22] << 8 | th[23];
	return 0;
}

/*
 * A jumbo MTU (the largest is IPv4's, 65535): each SYN offers the MSS its interface's MTU
 * allows (mtu - 40), the connection's segments fill frames of the MTU (the MSS less the
 * timestamp option's 12 bytes), the bytes arrive intact, with and without loss; and an MTU
 * above IPv4's limit is refused, as Linux's dev_set_mtu refuses one above max_mtu.
 */
static void test_jumbo_mtu(void **state)
{
	(void)state;
	static const struct {
		unsigned mtu;
		double loss;
	} runs[] = { { 9000, 0 }, { 65535, 0 }, { 9000, 0.02 } };
	for (size_t run = 0; run < sizeof(runs) / sizeof(runs[0]); run++) {
		struct pair p;
		struct ustack_memlink_params mp = { .loss = runs[run].loss, .seed = 11 };
		pair_init(&p, &mp);
		assert_int_equal(ustack_if_set_mtu(p.a, 1, 65536), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(ustack_if_set_mtu(p.a, 1, runs[run].mtu), 0);
		assert_int_equal(ustack_if_set_mtu(p.b, 1, runs[run].mtu), 0);
		jumbo_syn_mss[0] = jumbo_syn_mss[1] = 0;
		jumbo_largest = 0;
		ustack_memlink_set_filter(p.ml, watch_jumbo, NULL);
		int s, c = tcp_connected(&p, &s);
		assert_int_equal(jumbo_syn_mss[0], runs[run].mtu - 40);
		assert_int_equal(jumbo_syn_mss[1], runs[run].mtu - 40);
		bulk_a_to_b(&p, c, s, 2 << 20);
		assert_int_equal(jumbo_largest, 14 + runs[run].mtu);
		struct ustack_tcp_info ti;
		socklen_t tl = sizeof(ti);
		assert_int_equal(ustack_getsockopt(p.a, c, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
		assert_int_equal(ti.tcpi_snd_mss, runs[run].mtu - 40 - 12);
		if (runs[run].loss > 0) {
			uint64_t retrans = 0;
			assert_int_equal(ustack_counter_get(p.a, "TcpRetransSegs", &retrans), 0);
			assert_true(retrans > 0);
		}
		pair_fini(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_across_clean_link_with_delay),
		cmocka_unit_test(test_csum_offload),
		cmocka_unit_test(test_tso_packets_cross_whole),
		cmocka_unit_test(test_jumbo_mtu),
		cmocka_unit_test(test_loss_is_seeded_and_reproducible),
		cmocka_unit_test(test_total_loss_and_filter),
		cmocka_unit_test(test_filter_drops_chosen_frames),
		cmocka_unit_test(test_duplicates_delivered_twice),
		cmocka_unit_test(test_reorder_and_queue_limit),
	};
	return cmocka_run_group_tests_name("memlink", tests, NULL, NULL);
}
