/* IPv4 receive validation: every malformed header is dropped and counted as Linux counts it. */
#include "testwire.h"
#include "wire/checksum.h"

#include <stdlib.h>
#include <string.h>

struct drop_case {
	const char *what;
	const char *counter;
};

/* A valid echo request to the DUT, to be broken one field at a time. */
static size_t good(uint8_t *f)
{
	return tw_echo(f, TW_PEER_IP, TW_DUT_IP, 0x42, 1, 16);
}

static void refresh_csum(uint8_t *f)
{
	tw_wr16(f + ETH + 10, 0);
	tw_wr16(f + ETH + 10, tw_csum(f + ETH, (size_t)(f[ETH] & 0xf) * 4));
}

static void expect_drop(struct tw *t, const uint8_t *f, size_t n, const char *counter)
{
	uint64_t before = tw_counter(t, counter);
	uint64_t rx = tw_counter(t, "IpInReceives");
	uint64_t deliv = tw_counter(t, "IpInDelivers");
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, counter), before + 1);
	assert_int_equal(tw_counter(t, "IpInReceives"), rx + 1);
	assert_int_equal(tw_counter(t, "IpInDelivers"), deliv);
}

static void test_good_packet_delivered(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	tw_send(t, f, good(f));
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->b[ETH + 20], 0); /* echo reply */
	assert_int_equal(tw_counter(t, "IpInDelivers"), 1);
	assert_int_equal(tw_counter(t, "IpInHdrErrors"), 0);
}

static void test_short_header(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	good(f);
	expect_drop(t, f, ETH + 19, "IpInHdrErrors");
}

static void test_bad_version(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	f[ETH] = 0x65;
	refresh_csum(f);
	expect_drop(t, f, n, "IpInHdrErrors");
}

static void test_ihl_below_five(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	f[ETH] = 0x44;
	expect_drop(t, f, n, "IpInHdrErrors");
}

static void test_ihl_beyond_frame(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	good(f);
	f[ETH] = 0x4f; /* 60-byte header in a 40-byte packet */
	expect_drop(t, f, ETH + 40, "IpInHdrErrors");
}

static void test_bad_checksum(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	f[ETH + 10] ^= 0x55;
	uint64_t hdr = tw_counter(t, "IpInHdrErrors");
	expect_drop(t, f, n, "IpExtInCsumErrors");
	assert_int_equal(tw_counter(t, "IpInHdrErrors"), hdr + 1); /* Linux bumps both */
}

static void test_total_length_beyond_frame(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	tw_wr16(f + ETH + 2, (uint16_t)(n - ETH + 1));
	refresh_csum(f);
	expect_drop(t, f, n, "IpExtInTruncatedPkts");
}

static void test_total_length_below_header(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	tw_wr16(f + ETH + 2, 19);
	refresh_csum(f);
	expect_drop(t, f, n, "IpInHdrErrors");
}

static void test_malformed_options(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	/* 24-byte header with an option whose length runs past the header */
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	tw_ip_hdr(f + ETH, 1, TW_PEER_IP, TW_DUT_IP, 24 + 8, 1, 0, 64);
	f[ETH] = 0x46;
	f[ETH + 20] = 0x07; /* record route */
	f[ETH + 21] = 9;    /* but only 4 bytes of options */
	f[ETH + 22] = 4;
	f[ETH + 23] = 0;
	size_t m = tw_icmp_echo_msg(f + ETH + 24, 1, 1, 0);
	refresh_csum(f);
	expect_drop(t, f, ETH + 24 + m, "IpInHdrErrors");
}

static void test_well_formed_options_accepted(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	size_t m = tw_icmp_echo_msg(f + ETH + 24, 1, 1, 0);
	tw_ip_hdr(f + ETH, 1, TW_PEER_IP, TW_DUT_IP, (uint16_t)(24 + m), 1, 0, 64);
	f[ETH] = 0x46;
	f[ETH + 20] = 1; /* NOP NOP NOP EOL */
	f[ETH + 21] = 1;
	f[ETH + 22] = 1;
	f[ETH + 23] = 0;
	refresh_csum(f);
	tw_send(t, f, ETH + 24 + m);
	tw_expect(t);
}

static void test_not_our_address(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = tw_echo(f, TW_PEER_IP, 0xc0000209, 1, 1, 8);
	expect_drop(t, f, n, "IpInAddrErrors");
}

static void test_ttl_zero_still_delivered_like_linux(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	f[ETH + 8] = 0;
	refresh_csum(f);
	tw_send(t, f, n);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->b[ETH + 20], 0); /* echo reply */
	assert_int_equal(r->b[ETH + 8], 64);
}

static void test_ethernet_padding_trimmed(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = tw_echo(f, TW_PEER_IP, TW_DUT_IP, 1, 1, 0); /* 42 bytes: padded to 60 on a wire */
	memset(f + n, 0xee, 60 - n);
	tw_send(t, f, 60);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->len, n);
	assert_int_equal(tw_rd16(r->b + ETH + 2), 28);
}

static void test_unknown_protocol_gets_protocol_unreachable(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	tw_ip_hdr(f + ETH, 253, TW_PEER_IP, TW_DUT_IP, 20 + 12, 0x7777, 0, 64); /* RFC 3692 experimental */
	memcpy(f + ETH + 20, "hello world!", 12);
	tw_send(t, f, ETH + 32);
	assert_int_equal(tw_counter(t, "IpInUnknownProtos"), 1);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->b[ETH + 9], 1);                  /* ICMP */
	assert_int_equal(r->b[ETH + 1], 0xc0);               /* tos: internetwork control */
	assert_int_equal(tw_rd32(r->b + ETH + 12), TW_DUT_IP);
	assert_int_equal(tw_rd32(r->b + ETH + 16), TW_PEER_IP);
	assert_int_equal(r->b[ETH + 20], 3);                 /* destination unreachable */
	assert_int_equal(r->b[ETH + 21], 2);                 /* protocol unreachable */
	assert_int_equal(tw_rd32(r->b + ETH + 24), 0);
	assert_memory_equal(r->b + ETH + 28, f + ETH, 32);  /* the whole datagram quoted */
	assert_int_equal(tw_csum(r->b + ETH + 20, r->len - ETH - 20), 0);
	assert_int_equal(tw_counter(t, "IcmpOutDestUnreachs"), 1);
	assert_int_equal(tw_counter(t, "IcmpMsgOutType3"), 1);
}

static void test_other_host_mac_and_martians_dropped(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = good(f);
	f[5] = 0x99; /* another host's MAC */
	tw_send(t, f, n);
	assert_int_equal(tw_counter(t, "IpInReceives"), 0); /* PACKET_OTHERHOST: before IP */
	n = tw_echo(f, 0x7f000001, TW_DUT_IP, 1, 1, 0); /* loopback source from the wire */
	tw_send(t, f, n);
	n = tw_echo(f, 0xe0000001, TW_DUT_IP, 1, 1, 0); /* multicast source */
	tw_send(t, f, n);
	n = tw_echo(f, 0xc00002ff, TW_DUT_IP, 1, 1, 0); /* our subnet's broadcast as source */
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "IpInDelivers"), 0);
}

/* A /31 (RFC 3021, point-to-point) has no directed broadcast: the other end's address, the
 * one with the host bit set, is a host like any other (Linux adds no RTN_BROADCAST for
 * prefixes of 31 or 32), so its echo request is answered — after the ARP it needs. */
static void test_slash31_peer_is_no_broadcast(void **state)
{
	struct tw *t = *state;
	const uint32_t us = 0xc6336400u, peer = 0xc6336401u; /* 198.51.100.0/31, .1 */
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, (struct in_addr){ htonl(us) }, 31), 0);
	uint8_t f[256];
	size_t n = tw_echo(f, peer, us, 7, 1, 8);
	tw_send(t, f, n);
	struct tw_frame *r = tw_expect(t); /* who-has 198.51.100.1: the request was taken */
	assert_int_equal(tw_rd16(r->b + 12), 0x0806);
	assert_int_equal(tw_rd16(r->b + ETH + 6), 1);
	assert_int_equal(tw_rd32(r->b + ETH + 24), peer);
	n = tw_arp(f, 2, TW_PEER_MAC, peer, TW_DUT_MAC, us, TW_DUT_MAC);
	tw_send(t, f, n);
	r = tw_expect(t);
	assert_int_equal(tw_rd16(r->b + 12), 0x0800);
	assert_int_equal(tw_rd32(r->b + ETH + 12), us);
	assert_int_equal(tw_rd32(r->b + ETH + 16), peer);
	assert_int_equal(r->b[ETH + 20], 0); /* echo reply */
	assert_int_equal(tw_counter(t, "IpExtInBcastPkts"), 0);
}

static void test_random_garbage_never_crashes(void **state)
{
	struct tw *t = *state;
	uint8_t f[1600];
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)rand() % sizeof(f);
		size_t keep = (size_t)rand() % 40; /* sometimes keep a plausible prefix */
		good(f);
		for (size_t k = keep; k < n; k++)
			f[k] = (uint8_t)rand();
		if (i & 1)
			refresh_csum(f);
		tw_send(t, f, n);
		while (t->count)
			tw_expect(t);
	}
	/* the stack still works */
	tw_send(t, f, good(f));
	tw_expect(t);
}

/* The stack's checksum helpers (vector and word-at-a-time sums, the inline fold and
 * pseudo-header) give RFC 1071's plainest sum, for every length and alignment, with carries
 * that fold twice: short buffers, every tail after 64-byte rounds, frames, jumbo frames. */
static void test_checksum_matches_rfc1071(void **state)
{
	(void)state;
	static uint8_t seg[65535 + 8];
	uint32_t x = 12345;
	for (int round = 0; round < 3000; round++) {
		size_t len = (size_t)(round % 50 == 0 ? 65535 - round % 71 : round % 7 == 0 ? 1500 + round % 100 : round % 200);
		size_t align = (size_t)round % 8;
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			seg[align + i] = round % 5 == 0 ? 0xff : (uint8_t)(x >> 16); /* all-ones: most carries */
		}
		uint32_t src = round % 3 ? x * 2654435761u : 0xffffffffu, dst = round % 3 ? x ^ 0xdeadbeefu : 0xffffffffu;
		uint16_t mine = csum_fold(csum_partial(seg + align, len, csum_pseudo(src, dst, 6, (uint16_t)len)));
		assert_int_equal(mine, tw_tcp_csum(seg + align, len, src, dst));
		assert_int_equal(csum_fold(csum_partial(seg + align, len, 0)), tw_csum(seg + align, len));
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_learned, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_good_packet_delivered),
		T(test_short_header),
		T(test_bad_version),
		T(test_ihl_below_five),
		T(test_ihl_beyond_frame),
		T(test_bad_checksum),
		T(test_total_length_beyond_frame),
		T(test_total_length_below_header),
		T(test_malformed_options),
		T(test_well_formed_options_accepted),
		T(test_not_our_address),
		T(test_ttl_zero_still_delivered_like_linux),
		T(test_ethernet_padding_trimmed),
		T(test_unknown_protocol_gets_protocol_unreachable),
		T(test_other_host_mac_and_martians_dropped),
		T(test_slash31_peer_is_no_broadcast),
		T(test_random_garbage_never_crashes),
		cmocka_unit_test(test_checksum_matches_rfc1071),
	};
	return cmocka_run_group_tests_name("ipv4", tests, NULL, NULL);
}
