/* Routing: longest-prefix match, metrics, default route, source selection, errors, MTU. */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <string.h>

static struct in_addr ip(uint32_t a) { return (struct in_addr){ htonl(a) }; }

static int lookup(struct tw *t, uint32_t dst, uint32_t src, struct ustack_route_result *r)
{
	return ustack_route_lookup(t->st, ip(dst), ip(src), r);
}

static void test_connected_route_from_address(void **state)
{
	struct tw *t = *state;
	struct ustack_route_result r;
	assert_int_equal(lookup(t, 0xc0000263, 0, &r), 0); /* 192.0.2.99 on-link */
	assert_int_equal(r.ifindex, t->ifindex);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc0000263);
	assert_int_equal(ntohl(r.saddr.s_addr), TW_DUT_IP);
	assert_int_equal(r.mtu, 1500);
}

/* A second address in the subnet is secondary, as `ip addr add` makes it: no second connected
 * route (that was EEXIST), the primary stays the subnet's preferred source, and the secondary
 * is ours for bind() and as a source.  A duplicate address is still EEXIST. */
static void test_secondary_address(void **state)
{
	struct tw *t = *state;
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, ip(0xc0000203), 24), 0); /* 192.0.2.3/24 */
	struct ustack_route_result r;
	assert_int_equal(lookup(t, 0xc0000263, 0, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), TW_DUT_IP); /* the primary */
	assert_int_equal(lookup(t, 0xc0000263, 0xc0000203, &r), 0); /* ours: a valid source */
	assert_int_equal(ntohl(r.saddr.s_addr), 0xc0000203);
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(81), .sin_addr = ip(0xc0000203) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ustack_close(t->st, fd);
	errno = 0;
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, ip(0xc0000203), 24), -1);
	assert_int_equal(errno, EEXIST);
	/* another prefix length is another subnet: a route of its own */
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, ip(0xc0000281), 25), 0); /* 192.0.2.129/25 */
	assert_int_equal(lookup(t, 0xc00002fe, 0, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), 0xc0000281); /* the /25's, longest prefix */
}

static void test_no_route_is_enetunreach(void **state)
{
	struct tw *t = *state;
	struct ustack_route_result r;
	errno = 0;
	assert_int_equal(lookup(t, TW_FAR_IP, 0, &r), -1);
	assert_int_equal(errno, ENETUNREACH);
	/* a source address that is not ours: EINVAL, as ip_route_output_key */
	errno = 0;
	assert_int_equal(lookup(t, 0xc0000263, 0xc0000209, &r), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_default_route_and_longest_prefix(void **state)
{
	struct tw *t = *state;
	struct ustack_route def = { .gateway = ip(TW_PEER_IP) };
	assert_int_equal(ustack_route_add(t->st, &def), 0);
	/* 198.51.100.0/24 via 192.0.2.254, mtu 1400: more specific than the default */
	struct ustack_route net = { .dst = ip(0xc6336400), .prefixlen = 24, .gateway = ip(0xc00002fe), .mtu = 1400 };
	assert_int_equal(ustack_route_add(t->st, &net), 0);
	/* 198.51.100.128/25 via .253: more specific still */
	struct ustack_route net2 = { .dst = ip(0xc6336480), .prefixlen = 25, .gateway = ip(0xc00002fd) };
	assert_int_equal(ustack_route_add(t->st, &net2), 0);

	struct ustack_route_result r;
	assert_int_equal(lookup(t, TW_FAR_IP, 0, &r), 0);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc00002fe);
	assert_int_equal(r.mtu, 1400);
	assert_int_equal(lookup(t, 0xc6336481, 0, &r), 0);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc00002fd);
	assert_int_equal(r.mtu, 1500);
	assert_int_equal(lookup(t, 0x08080808, 0, &r), 0); /* anything else: default */
	assert_int_equal(ntohl(r.nexthop.s_addr), TW_PEER_IP);
	assert_int_equal(ntohl(r.saddr.s_addr), TW_DUT_IP);
	/* the connected /24 still wins for on-link destinations */
	assert_int_equal(lookup(t, 0xc0000263, 0, &r), 0);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc0000263);

	assert_int_equal(ustack_route_del(t->st, ip(0xc6336480), 25), 0);
	assert_int_equal(lookup(t, 0xc6336481, 0, &r), 0);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc00002fe);
	errno = 0;
	assert_int_equal(ustack_route_del(t->st, ip(0xc6336480), 25), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_metric_breaks_ties(void **state)
{
	struct tw *t = *state;
	struct ustack_route a = { .gateway = ip(0xc00002fe), .metric = 200 };
	struct ustack_route b = { .gateway = ip(0xc00002fd), .metric = 100 };
	assert_int_equal(ustack_route_add(t->st, &a), 0);
	assert_int_equal(ustack_route_add(t->st, &b), 0);
	struct ustack_route_result r;
	assert_int_equal(lookup(t, TW_FAR_IP, 0, &r), 0);
	assert_int_equal(ntohl(r.nexthop.s_addr), 0xc00002fd);
	/* the same prefix and metric again: EEXIST, as `ip route add` */
	errno = 0;
	assert_int_equal(ustack_route_add(t->st, &b), -1);
	assert_int_equal(errno, EEXIST);
}

static void test_bad_routes_rejected(void **state)
{
	struct tw *t = *state;
	/* gateway not reachable on-link: "Nexthop has invalid gateway" */
	struct ustack_route g = { .gateway = ip(0x0a000001) };
	errno = 0;
	assert_int_equal(ustack_route_add(t->st, &g), -1);
	assert_int_equal(errno, ENETUNREACH);
	/* host bits set below the prefix */
	struct ustack_route h = { .dst = ip(0xc6336401), .prefixlen = 24, .ifindex = t->ifindex };
	errno = 0;
	assert_int_equal(ustack_route_add(t->st, &h), -1);
	assert_int_equal(errno, EINVAL);
	/* unknown interface */
	struct ustack_route d = { .dst = ip(0xc6336400), .prefixlen = 24, .ifindex = 9 };
	errno = 0;
	assert_int_equal(ustack_route_add(t->st, &d), -1);
	assert_int_equal(errno, ENODEV);
	/* a preferred source we do not own */
	struct ustack_route p = { .dst = ip(0xc6336400), .prefixlen = 24, .ifindex = t->ifindex,
				  .prefsrc = ip(0xc0000209) };
	errno = 0;
	assert_int_equal(ustack_route_add(t->st, &p), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_source_selection(void **state)
{
	struct tw *t = *state;
	/* a second address on another subnet of the same interface */
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, ip(0xc6336402), 24), 0);
	struct ustack_route_result r;
	/* on-link to 198.51.100.0/24: that subnet's address */
	assert_int_equal(lookup(t, 0xc6336409, 0, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), 0xc6336402);
	/* via a gateway on 192.0.2.0/24: the address on the gateway's subnet */
	struct ustack_route def = { .gateway = ip(TW_PEER_IP) };
	assert_int_equal(ustack_route_add(t->st, &def), 0);
	assert_int_equal(lookup(t, 0x08080808, 0, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), TW_DUT_IP);
	/* a route's preferred source wins */
	struct ustack_route pref = { .dst = ip(0x08080800), .prefixlen = 24, .gateway = ip(TW_PEER_IP),
				     .prefsrc = ip(0xc6336402) };
	assert_int_equal(ustack_route_add(t->st, &pref), 0);
	assert_int_equal(lookup(t, 0x08080808, 0, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), 0xc6336402);
	/* an explicit (bound) source is kept */
	assert_int_equal(lookup(t, 0x08080808, TW_DUT_IP, &r), 0);
	assert_int_equal(ntohl(r.saddr.s_addr), TW_DUT_IP);
	/* duplicate address */
	errno = 0;
	assert_int_equal(ustack_addr_add(t->st, t->ifindex, ip(0xc6336402), 24), -1);
	assert_int_equal(errno, EEXIST);
}

static void test_gateway_used_on_the_wire(void **state)
{
	struct tw *t = *state;
	struct ustack_route def = { .gateway = ip(TW_PEER_IP) };
	assert_int_equal(ustack_route_add(t->st, &def), 0);
	/* pinging a far address resolves the gateway, not the destination */
	assert_int_equal(ustack_ping(t->st, ip(TW_FAR_IP), 1, 1, 0), 0);
	struct tw_frame *f = tw_expect(t);
	assert_int_equal(tw_rd16(f->b + 12), 0x0806);
	assert_int_equal(tw_rd32(f->b + ETH + 24), TW_PEER_IP);
	uint8_t rep[64];
	size_t n = tw_arp(rep, 2, TW_PEER_MAC, TW_PEER_IP, TW_DUT_MAC, TW_DUT_IP, TW_DUT_MAC);
	tw_send(t, rep, n);
	f = tw_expect(t);
	assert_memory_equal(f->b, TW_PEER_MAC, 6);            /* to the gateway's MAC */
	assert_int_equal(tw_rd32(f->b + ETH + 16), TW_FAR_IP); /* for the far address */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_connected_route_from_address, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_secondary_address, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_no_route_is_enetunreach, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_default_route_and_longest_prefix, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_metric_breaks_ties, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_bad_routes_rejected, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_source_selection, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_gateway_used_on_the_wire, tw_setup, tw_teardown),
	};
	return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
