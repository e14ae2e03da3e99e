/* Reassembly with bounded memory, and fragmentation of what ustack sends. */
#include "testwire.h"
#include "net/net.h"

#include <errno.h>
#include <string.h>

static uint8_t msg[4000];

/* Sends the ICMP echo message in pieces at the given offsets (multiples of 8). */
static void send_piece(struct tw *t, uint16_t ipid, size_t total, size_t off, size_t len)
{
	uint8_t f[1600];
	int more = off + len < total;
	tw_send(t, f, tw_frag(f, TW_PEER_IP, TW_DUT_IP, ipid, msg, off, len, more));
}

static void test_reassembles_and_reply_is_fragmented(void **state)
{
	struct tw *t = *state;
	size_t total = tw_icmp_echo_msg(msg, 0x55, 1, 2992); /* 3000 bytes of ICMP */
	/* out of order: last, first, middle */
	send_piece(t, 9, total, 2960, total - 2960);
	send_piece(t, 9, total, 0, 1480);
	tw_expect_none(t);
	send_piece(t, 9, total, 1480, 1480);
	assert_int_equal(tw_counter(t, "IpReasmReqds"), 3);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 1);
	assert_int_equal(tw_counter(t, "IcmpInEchos"), 1);
	/* the 3020-byte reply leaves in three fragments of 1480, 1480 and 40 payload bytes */
	size_t off = 0;
	uint16_t id = 0;
	uint8_t reply[3000];
	for (int i = 0; i < 3; i++) {
		struct tw_frame *r = tw_expect(t);
		const uint8_t *iph = r->b + ETH;
		size_t plen = tw_rd16(iph + 2) - 20u;
		uint16_t fo = tw_rd16(iph + 6);
		assert_int_equal(tw_csum(iph, 20), 0);
		if (i == 0)
			id = tw_rd16(iph + 4);
		assert_int_equal(tw_rd16(iph + 4), id);
		assert_int_equal((fo & 0x1fff) * 8u, off);
		assert_int_equal(!!(fo & 0x2000), i < 2);
		assert_int_equal(plen, i < 2 ? 1480 : 40);
		memcpy(reply + off, iph + 20, plen);
		off += plen;
	}
	tw_expect_none(t);
	assert_int_equal(off, total);
	assert_int_equal(reply[0], 0); /* echo reply */
	assert_memory_equal(reply + 8, msg + 8, total - 8);
	assert_int_equal(tw_csum(reply, total), 0);
	assert_int_equal(tw_counter(t, "IpFragOKs"), 1);
	assert_int_equal(tw_counter(t, "IpFragCreates"), 3);
	assert_int_equal(t->st->net->frag.mem, 0);
}

static void test_duplicate_fragment_dropped_alone(void **state)
{
	struct tw *t = *state;
	size_t total = tw_icmp_echo_msg(msg, 0x55, 2, 1592);
	send_piece(t, 10, total, 0, 800);
	send_piece(t, 10, total, 0, 800); /* exact duplicate */
	send_piece(t, 10, total, 800, total - 800);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 1);
	assert_int_equal(tw_counter(t, "IpReasmFails"), 0);
	tw_expect(t);
	tw_expect(t);
}

static void test_overlap_kills_the_queue(void **state)
{
	struct tw *t = *state;
	size_t total = tw_icmp_echo_msg(msg, 0x55, 3, 1592);
	send_piece(t, 11, total, 0, 800);
	send_piece(t, 11, total, 400, 800); /* overlaps the first */
	assert_int_equal(tw_counter(t, "IpExtReasmOverlaps"), 1);
	assert_int_equal(tw_counter(t, "IpReasmFails"), 1);
	send_piece(t, 11, total, 800, total - 800); /* starts a new queue that never completes */
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 0);
}

static void test_timeout_sends_time_exceeded(void **state)
{
	struct tw *t = *state;
	size_t total = tw_icmp_echo_msg(msg, 0x55, 4, 1592);
	send_piece(t, 12, total, 0, 800);
	tw_advance(t, 29999);
	tw_expect_none(t);
	tw_advance(t, 1); /* ipfrag_time = 30 s */
	assert_int_equal(tw_counter(t, "IpReasmTimeout"), 1);
	assert_int_equal(tw_counter(t, "IpReasmFails"), 1);
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->b[ETH + 20], 11); /* time exceeded */
	assert_int_equal(r->b[ETH + 21], 1);  /* fragment reassembly time exceeded */
	/* quotes the first fragment's header and first 8 bytes */
	assert_int_equal(tw_rd16(r->b + ETH + 2), 20 + 8 + 28);
	assert_int_equal(tw_rd16(r->b + ETH + 28 + 4), 12);
	assert_int_equal(t->st->net->frag.mem, 0);
	/* without the first fragment, the timeout is silent */
	send_piece(t, 13, total, 800, total - 800);
	tw_advance(t, 30000);
	assert_int_equal(tw_counter(t, "IpReasmTimeout"), 2);
	while (t->count) /* only the neighbour layer's unicast ARP probes (DELAY → PROBE) */
		assert_int_equal(tw_rd16(tw_expect(t)->b + 12), 0x0806);
	/* nor when the first fragment came in a link-layer broadcast frame: ip_expire's
	 * icmp_send(head) refuses a datagram that was not PACKET_HOST */
	uint8_t f[1600];
	size_t n = tw_frag(f, TW_PEER_IP, TW_DUT_IP, 14, msg, 0, 800, 1);
	memset(f, 0xff, 6);
	tw_send(t, f, n);
	tw_advance(t, 30000);
	assert_int_equal(tw_counter(t, "IpReasmTimeout"), 3);
	while (t->count)
		assert_int_equal(tw_rd16(tw_expect(t)->b + 12), 0x0806);
	assert_int_equal(tw_counter(t, "IcmpOutTimeExcds"), 1);
}

static void test_memory_bounded_by_high_thresh(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.ipfrag_low_thresh", "10000");
	tw_sysctl(t, "net.ipv4.ipfrag_high_thresh", "20000");
	size_t total = tw_icmp_echo_msg(msg, 0x55, 5, 1592);
	/* a flood of first fragments that never complete, each its own queue */
	for (uint16_t id = 0; id < 1000; id++)
		send_piece(t, (uint16_t)(100 + id), total, 0, 800);
	assert_true(t->st->net->frag.mem <= 20000 + 1600);
	assert_true(tw_counter(t, "IpReasmFails") >= 970);
	tw_advance(t, 30000);
	assert_int_equal(t->st->net->frag.mem, 0);
	assert_int_equal(t->st->net->frag.nqueues, 0);
	/* once the queues expired, reassembly works again */
	send_piece(t, 7, total, 0, 800);
	send_piece(t, 7, total, 800, total - 800);
	assert_int_equal(tw_counter(t, "IpReasmOKs"), 1);
}

static void test_oversize_and_bad_ends(void **state)
{
	struct tw *t = *state;
	uint8_t f[1600];
	memset(msg, 0xab, sizeof(msg));
	/* offset 65000 + 1000 bytes runs past the 65535-byte limit */
	tw_eth(f, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	memset(f + 34, 0, 1000);
	tw_ip_hdr(f + ETH, 1, TW_PEER_IP, TW_DUT_IP, 1020, 20, 65000 / 8, 64);
	tw_send(t, f, 34 + 1000);
	assert_int_equal(tw_counter(t, "IpReasmFails"), 1);
	/* a last fragment ending before data already queued */
	send_piece(t, 21, 3000, 1600, 800); /* MF set */
	tw_send(t, f, tw_frag(f, TW_PEER_IP, TW_DUT_IP, 21, msg, 800, 800, 0)); /* ends at 1600 */
	assert_int_equal(tw_counter(t, "IpReasmFails"), 2);
	/* a zero-length non-final fragment */
	tw_send(t, f, tw_frag(f, TW_PEER_IP, TW_DUT_IP, 22, msg, 8, 0, 1));
	assert_int_equal(tw_counter(t, "IpReasmFails"), 3);
	tw_expect_none(t);
	assert_int_equal(t->st->net->frag.mem, 0);
}

static void test_df_too_big_is_emsgsize(void **state)
{
	struct tw *t = *state;
	/* a datagram over the MTU with DF set cannot leave */
	struct ustack_route_result rt;
	struct in_addr d = { htonl(TW_PEER_IP) }, any = { 0 };
	assert_int_equal(ustack_route_lookup(t->st, d, any, &rt), 0);
	stack_lock(t->st);
	struct pkt *p = pkt_alloc(t->st, PKT_HEADROOM, 1600);
	memset(pkt_put(p, 1600), 0, 1600);
	struct ip_tx tx = { .saddr = TW_DUT_IP, .daddr = TW_PEER_IP, .proto = 253, .df = true };
	int rc = ip_output(t->st, p, &tx, &rt);
	stack_unlock(t->st);
	assert_int_equal(rc, -EMSGSIZE);
	assert_int_equal(tw_counter(t, "IpFragFails"), 1);
	tw_expect_none(t);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_learned, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reassembles_and_reply_is_fragmented),
		T(test_duplicate_fragment_dropped_alone),
		T(test_overlap_kills_the_queue),
		T(test_timeout_sends_time_exceeded),
		T(test_memory_bounded_by_high_thresh),
		T(test_oversize_and_bad_ends),
		T(test_df_too_big_is_emsgsize),
	};
	return cmocka_run_group_tests_name("ip_fragment", tests, NULL, NULL);
}
