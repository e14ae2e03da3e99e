/* ARP and the neighbour cache: replies, resolution, queueing, NUD states, bounds, bad input. */
#include "testwire.h"
#include "net/net.h"

#include <string.h>

static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t ZERO[6] = { 0 };

static struct in_addr ip(uint32_t a) { return (struct in_addr){ htonl(a) }; }

static enum nud_state nud(struct tw *t, uint32_t a)
{
	return neigh_lookup_state(t->st, t->ifindex, a, NULL);
}

static void expect_request(struct tw *t, const uint8_t *eth_dst, uint32_t target)
{
	struct tw_frame *f = tw_expect(t);
	uint8_t want[42];
	/* Linux's arp_solicit: broadcast with a zero target MAC, or unicast probe to the
	 * cached MAC with the target MAC also zero (RFC 826 leaves tha unset in requests). */
	tw_arp(want, 1, TW_DUT_MAC, TW_DUT_IP, ZERO, target, eth_dst);
	assert_int_equal(f->len, 42);
	assert_memory_equal(f->b, want, 42);
}

static void test_request_for_us_gets_exact_reply(void **state)
{
	struct tw *t = *state;
	uint8_t f[64];
	size_t n = tw_arp(f, 1, TW_PEER_MAC, TW_PEER_IP, ZERO, TW_DUT_IP, BCAST);
	tw_send(t, f, n);
	struct tw_frame *r = tw_expect(t);
	uint8_t want[42];
	tw_arp(want, 2, TW_DUT_MAC, TW_DUT_IP, TW_PEER_MAC, TW_PEER_IP, TW_PEER_MAC);
	assert_int_equal(r->len, 42);
	assert_memory_equal(r->b, want, 42);
	tw_expect_none(t);
	/* the asker is learned, STALE (neigh_event_ns) */
	assert_int_equal(nud(t, TW_PEER_IP), NUD_STALE);
	assert_int_equal(tw_counter(t, "arp_cache.rcv_probes_mcast"), 1);
}

static void test_not_for_us_and_unsolicited_learn_nothing(void **state)
{
	struct tw *t = *state;
	uint8_t f[64];
	size_t n = tw_arp(f, 1, TW_PEER_MAC, TW_PEER_IP, ZERO, 0xc0000209, BCAST);
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
	/* an unsolicited reply and a gratuitous ARP create no entry (arp_accept=0) */
	n = tw_arp(f, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_send(t, f, n);
	n = tw_arp(f, 1, TW_PEER_MAC, TW_PEER_IP, ZERO, TW_PEER_IP, BCAST);
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
	assert_int_equal(tw_counter(t, "arp_cache.entries"), 0);
}

static void test_rfc5227_probe_answered_not_learned(void **state)
{
	struct tw *t = *state;
	uint8_t f[64];
	size_t n = tw_arp(f, 1, TW_PEER_MAC, 0, ZERO, TW_DUT_IP, BCAST);
	tw_send(t, f, n);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(tw_rd16(r->b + ETH + 6), 2);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
}

static void test_resolution_retries_then_fails(void **state)
{
	struct tw *t = *state;
	assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 1, 1, 8), 0);
	expect_request(t, BCAST, TW_PEER_IP);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_INCOMPLETE);
	tw_advance(t, 999);
	tw_expect_none(t);
	tw_advance(t, 1); /* retrans_time_ms = 1000 */
	expect_request(t, BCAST, TW_PEER_IP);
	tw_advance(t, 1000);
	expect_request(t, BCAST, TW_PEER_IP); /* mcast_solicit = 3 requests in all */
	tw_advance(t, 1000);
	tw_expect_none(t);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
	assert_int_equal(tw_counter(t, "arp_cache.res_failed"), 1);
	assert_int_equal(tw_counter(t, "arp_cache.unresolved_discards"), 1);
	tw_advance(t, 10000);
	tw_expect_none(t);
}

static void test_reply_flushes_queue_in_order(void **state)
{
	struct tw *t = *state;
	for (uint16_t s = 1; s <= 3; s++)
		assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 7, s, 8), 0);
	expect_request(t, BCAST, TW_PEER_IP);
	tw_expect_none(t); /* one request, three packets waiting */
	uint8_t f[64];
	size_t n = tw_arp(f, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_advance(t, 5);
	tw_send(t, f, n);
	for (uint16_t s = 1; s <= 3; s++) {
		struct tw_frame *e = tw_expect(t);
		assert_memory_equal(e->b, TW_PEER_MAC, 6);
		assert_memory_equal(e->b + 6, TW_DUT_MAC, 6);
		assert_int_equal(tw_rd16(e->b + 12), 0x0800);
		assert_int_equal(e->b[ETH + 20], 8); /* echo request */
		assert_int_equal(tw_rd16(e->b + ETH + 26), s);
	}
	assert_int_equal(nud(t, TW_PEER_IP), NUD_REACHABLE);
	tw_advance(t, 5000);
	tw_expect_none(t); /* no more requests once resolved */
}

static void test_queue_bounded_by_unres_qlen_bytes(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.neigh.default.unres_qlen_bytes", "200");
	for (uint16_t s = 1; s <= 5; s++) /* 84-byte datagrams: two fit in 200 bytes */
		assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 7, s, 56), 0);
	expect_request(t, BCAST, TW_PEER_IP);
	assert_int_equal(tw_counter(t, "arp_cache.unresolved_discards"), 3);
	uint8_t f[64];
	size_t n = tw_arp(f, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_send(t, f, n);
	assert_int_equal(tw_rd16(tw_expect(t)->b + ETH + 26), 4); /* the oldest were dropped */
	assert_int_equal(tw_rd16(tw_expect(t)->b + ETH + 26), 5);
	tw_expect_none(t);
}

static void test_reachable_stale_delay_probe_failed(void **state)
{
	struct tw *t = *state;
	assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 1, 1, 0), 0);
	expect_request(t, BCAST, TW_PEER_IP);
	uint8_t f[64];
	size_t n = tw_arp(f, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_send(t, f, n);
	tw_expect(t);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_REACHABLE);
	/* reachable time is random in [15 s, 45 s) for base_reachable_time_ms = 30000 */
	tw_advance(t, 14999);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_REACHABLE);
	tw_advance(t, 30001);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_STALE);
	tw_expect_none(t);
	/* a STALE entry is still used, and the use starts DELAY */
	assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 1, 2, 0), 0);
	assert_memory_equal(tw_expect(t)->b, TW_PEER_MAC, 6);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_DELAY);
	tw_advance(t, 4999);
	tw_expect_none(t);
	tw_advance(t, 1); /* delay_first_probe_time = 5 s: unicast probes begin */
	expect_request(t, TW_PEER_MAC, TW_PEER_IP);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_PROBE);
	tw_advance(t, 1000);
	expect_request(t, TW_PEER_MAC, TW_PEER_IP);
	tw_advance(t, 1000);
	expect_request(t, TW_PEER_MAC, TW_PEER_IP); /* ucast_solicit = 3 */
	tw_advance(t, 1000);
	tw_expect_none(t);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
	assert_int_equal(tw_counter(t, "arp_cache.res_failed"), 1);
}

static void test_probe_answered_returns_to_reachable(void **state)
{
	struct tw *t = *state;
	tw_learn_peer(t); /* STALE */
	assert_int_equal(ustack_ping(t->st, ip(TW_PEER_IP), 1, 1, 0), 0);
	tw_expect(t);
	tw_advance(t, 5000);
	expect_request(t, TW_PEER_MAC, TW_PEER_IP);
	uint8_t f[64];
	size_t n = tw_arp(f, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_send(t, f, n);
	assert_int_equal(nud(t, TW_PEER_IP), NUD_REACHABLE);
	tw_advance(t, 3000);
	tw_expect_none(t);
}

static void test_malformed_arp_dropped_and_counted(void **state)
{
	struct tw *t = *state;
	uint8_t f[64];
	size_t n = tw_arp(f, 1, TW_PEER_MAC, TW_PEER_IP, ZERO, TW_DUT_IP, BCAST);
	struct ustack_if_stats s0, s1;
	assert_int_equal(ustack_if_stats(t->st, t->ifindex, &s0), 0);

	tw_send(t, f, n - 1); /* one byte short */
	uint8_t bad[64];
	memcpy(bad, f, n);
	bad[ETH + 1] = 6; /* htype 6 (IEEE 802) */
	tw_send(t, bad, n);
	memcpy(bad, f, n);
	bad[ETH + 5] = 16; /* plen 16 */
	tw_send(t, bad, n);
	memcpy(bad, f, n);
	bad[ETH + 7] = 3; /* op 3 (RARP) */
	tw_send(t, bad, n);
	memcpy(bad, f, n);
	tw_wr32(bad + ETH + 14, 0xe0000001); /* multicast sender */
	tw_send(t, bad, n);
	tw_send(t, f, 13); /* runt Ethernet frame */
	tw_expect_none(t);
	assert_int_equal(ustack_if_stats(t->st, t->ifindex, &s1), 0);
	assert_int_equal(s1.rx_dropped - s0.rx_dropped, 5);
	assert_int_equal(s1.rx_length_errors - s0.rx_length_errors, 1);
	assert_int_equal(nud(t, TW_PEER_IP), 0);
	/* still answers a good one */
	tw_send(t, f, n);
	tw_expect(t);
}

static void test_cache_bounded_by_gc_thresh3(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.neigh.default.gc_thresh3", "4");
	uint8_t f[64];
	for (uint32_t i = 0; i < 20; i++) {
		uint8_t mac[6] = { 0x02, 0, 0, 0, 1, (uint8_t)i };
		size_t n = tw_arp(f, 1, mac, 0xc0000210 + i, ZERO, TW_DUT_IP, BCAST);
		tw_send(t, f, n);
		tw_expect(t); /* every request is still answered */
		assert_true(tw_counter(t, "arp_cache.entries") <= 4);
	}
	assert_int_equal(tw_counter(t, "arp_cache.entries"), 4);
	assert_true(tw_counter(t, "arp_cache.forced_gc_runs") >= 16);
	/* the periodic sweep removes entries unused for gc_stale_time */
	tw_advance(t, 120000);
	assert_int_equal(tw_counter(t, "arp_cache.entries"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_request_for_us_gets_exact_reply),
		T(test_not_for_us_and_unsolicited_learn_nothing),
		T(test_rfc5227_probe_answered_not_learned),
		T(test_resolution_retries_then_fails),
		T(test_reply_flushes_queue_in_order),
		T(test_queue_bounded_by_unres_qlen_bytes),
		T(test_reachable_stale_delay_probe_failed),
		T(test_probe_answered_returns_to_reachable),
		T(test_malformed_arp_dropped_and_counted),
		T(test_cache_bounded_by_gc_thresh3),
	};
	return cmocka_run_group_tests_name("arp", tests, NULL, NULL);
}
