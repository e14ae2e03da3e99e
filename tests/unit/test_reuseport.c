/*
 * SO_REUSEPORT and IP_BIND_ADDRESS_NO_PORT: which binds Linux allows and refuses (EADDRINUSE
 * exactly where it gives it), listeners sharing a port by the 4-tuple's hash, a listener of
 * the group closing mid-handshake with net.ipv4.tcp_migrate_req 0 and 1, and clients sharing
 * a source port towards different destinations.
 */
#include "testwire.h"
#include "tcp/tcp.h"
#include <ustack/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#define PORT 8090
#define CLIENT_ISN 0x30000000u

static uint8_t f[TW_FRAME_MAX];

static int sock_opt(struct tw *t, int reuseaddr, int reuseport)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(int)), 0);
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof(int)), 0);
	return fd;
}

static int bind_port(struct tw *t, int fd, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	return ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a));
}

static void test_bind_rules(void **state)
{
	struct tw *t = *state;
	int a = sock_opt(t, 0, 1), b = sock_opt(t, 0, 1), c = sock_opt(t, 0, 0), d = sock_opt(t, 1, 0);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, a, SOL_SOCKET, SO_REUSEPORT, &v, &len), 0);
	assert_int_equal(v, 1);
	assert_int_equal(bind_port(t, a, PORT), 0);
	assert_int_equal(bind_port(t, b, PORT), 0); /* both SO_REUSEPORT */
	errno = 0;
	assert_int_equal(bind_port(t, c, PORT), -1); /* not on this one */
	assert_int_equal(errno, EADDRINUSE);
	errno = 0;
	assert_int_equal(bind_port(t, d, PORT), -1); /* SO_REUSEADDR is not enough */
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ustack_listen(t->st, a, 8), 0);
	assert_int_equal(ustack_listen(t->st, b, 8), 0); /* and both may listen */
	int e = sock_opt(t, 0, 1);
	assert_int_equal(bind_port(t, e, PORT), 0); /* a third joins the group */
	/* SO_REUSEADDR alone: both bind while neither listens, but only one may listen */
	int g = sock_opt(t, 1, 0), h = sock_opt(t, 1, 0);
	assert_int_equal(bind_port(t, g, PORT + 1), 0);
	assert_int_equal(bind_port(t, h, PORT + 1), 0);
	assert_int_equal(ustack_listen(t->st, g, 8), 0);
	errno = 0;
	assert_int_equal(ustack_listen(t->st, h, 8), -1);
	assert_int_equal(errno, EADDRINUSE);
}

static int bind_addr_port(struct tw *t, int fd, uint32_t addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	return ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a));
}

/*
 * The bind bucket's fast path (Linux's tb->fastreuse and tb->fastreuseport,
 * inet_csk_update_fastreuse): what it remembers, and that the answers stay those of the walk
 * it saves — FASTREUSEPORT_ANY while every owner set SO_REUSEPORT, STRICT on the address of the
 * last one the flags did not cover, fastreuse while every owner has SO_REUSEADDR and none
 * listens.
 */
static void test_bind_fast_path(void **state)
{
	struct tw *t = *state;
	const uint16_t any = PORT + 10, strict = PORT + 11, reuse = PORT + 12;
	/* ANY: a group of SO_REUSEPORT sockets; others still refused by the walk */
	int a = sock_opt(t, 0, 1), b = sock_opt(t, 0, 1), c = sock_opt(t, 0, 0), d = sock_opt(t, 1, 0);
	assert_int_equal(bind_port(t, a, any), 0);
	struct bind_bucket *tb = inet_bind_bucket_find(t->st, any);
	assert_non_null(tb);
	assert_int_equal(tb->fastreuseport, FASTREUSEPORT_ANY);
	assert_int_equal(tb->fastreuse, 0);
	assert_int_equal(ustack_listen(t->st, a, 8), 0);
	assert_int_equal(bind_port(t, b, any), 0);
	assert_int_equal(ustack_listen(t->st, b, 8), 0);
	assert_int_equal(tb->fastreuseport, FASTREUSEPORT_ANY);
	assert_int_equal(bind_port(t, c, any), -1);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(bind_port(t, d, any), -1);
	assert_int_equal(errno, EADDRINUSE);
	/* STRICT: a plain socket on a foreign address (IP_FREEBIND), then SO_REUSEPORT ones on ours */
	int one = 1;
	int e = sock_opt(t, 0, 0), f1 = sock_opt(t, 0, 1), g = sock_opt(t, 0, 1), h = sock_opt(t, 0, 1);
	assert_int_equal(ustack_setsockopt(t->st, e, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)), 0);
	assert_int_equal(bind_addr_port(t, e, 0xcb007105u /* 203.0.113.5 */, strict), 0);
	tb = inet_bind_bucket_find(t->st, strict);
	assert_int_equal(tb->fastreuseport, 0);
	assert_int_equal(bind_addr_port(t, f1, TW_DUT_IP, strict), 0); /* the walk: other address */
	assert_int_equal(tb->fastreuseport, FASTREUSEPORT_STRICT);
	assert_int_equal(tb->fast_rcv_saddr, TW_DUT_IP);
	assert_int_equal(bind_addr_port(t, g, TW_DUT_IP, strict), 0); /* the fast path */
	assert_int_equal(bind_port(t, h, strict), -1); /* the wildcard is not STRICT's: the walk */
	assert_int_equal(errno, EADDRINUSE);
	/* fastreuse: SO_REUSEADDR sockets while none listens */
	int i = sock_opt(t, 1, 0), j = sock_opt(t, 1, 0), k = sock_opt(t, 1, 0);
	assert_int_equal(bind_port(t, i, reuse), 0);
	tb = inet_bind_bucket_find(t->st, reuse);
	assert_int_equal(tb->fastreuse, 1);
	assert_int_equal(tb->fastreuseport, 0);
	assert_int_equal(bind_port(t, j, reuse), 0);
	assert_int_equal(ustack_listen(t->st, i, 8), 0);
	assert_int_equal(tb->fastreuse, 0);
	assert_int_equal(ustack_listen(t->st, j, 8), -1); /* one listener of SO_REUSEADDR */
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(bind_port(t, k, reuse), -1); /* a listener holds it now */
	assert_int_equal(errno, EADDRINUSE);
	/* a port connect() made is not bind()'s: fastreuse -1 until a bind() narrows it */
	tb = inet_bind_bucket_create(t->st, PORT + 13, -1);
	assert_int_equal(tb->fastreuse, -1);
	assert_int_equal(tb->fastreuseport, -1);
}

static int group(struct tw *t, int *fds, int n, uint16_t port)
{
	for (int i = 0; i < n; i++) {
		fds[i] = sock_opt(t, 0, 1);
		assert_int_equal(bind_port(t, fds[i], port), 0);
		assert_int_equal(ustack_listen(t->st, fds[i], 128), 0);
	}
	return n;
}

static int accept_qlen(struct tw *t, int fd)
{
	int aq = -1;
	assert_int_equal(ustack_listen_queues(t->st, fd, NULL, &aq, NULL), 0);
	return aq;
}

/* the handshake's final ACK on c */
static void final_ack(struct tw *t, const struct tw_conn *c)
{
	tw_peer_send(t, c, 0, 0, TW_ACK, 502, NULL, 0);
}

/* A handshake from sport, completed if ack; returns its connection (the SYN-ACK's ISN in iss). */
static struct tw_conn handshake(struct tw *t, uint16_t sport, uint16_t port, bool ack)
{
	tw_send(t, f, tw_tcp(f, sport, port, CLIENT_ISN, 0, TW_SYN, 64240, NULL, 0));
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	struct tw_conn c = { .lfd = -1, .fd = -1, .iss = s.seq, .peer_isn = CLIENT_ISN, .port = port, .peer_port = sport };
	if (ack)
		final_ack(t, &c);
	return c;
}

/* Four listeners share 400 connections by the 4-tuple's hash: each gets some, none most, and
 * the segments of one connection always reach the same one. */
static void test_spread_over_four_listeners(void **state)
{
	struct tw *t = *state;
	int fds[4];
	group(t, fds, 4, PORT);
	for (uint16_t p = 0; p < 400; p++)
		handshake(t, (uint16_t)(20000 + p), PORT, true);
	tw_expect_none(t);
	int total = 0;
	for (int i = 0; i < 4; i++) {
		int q = accept_qlen(t, fds[i]);
		assert_true(q >= 60 && q <= 140); /* 100 each, give or take the hash */
		total += q;
	}
	assert_int_equal(total, 400);
	/* 400 connections: the established hash doubled from its 256 buckets, all still found */
	stack_lock(t->st);
	assert_true(t->st->tcp->ehash_mask + 1 >= 512);
	assert_int_equal(t->st->tcp->ehash_count, 400);
	stack_unlock(t->st);
	/* a SYN's retransmission reaches the listener that holds its request */
	int before[4];
	for (int i = 0; i < 4; i++)
		before[i] = accept_qlen(t, fds[i]);
	struct tw_conn c = handshake(t, 30000, PORT, false);
	tw_send(t, f, tw_tcp(f, 30000, PORT, CLIENT_ISN, 0, TW_SYN, 64240, NULL, 0));
	tw_advance(t, 600);
	tw_send(t, f, tw_tcp(f, 30000, PORT, CLIENT_ISN, 0, TW_SYN, 64240, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).seq, c.iss); /* the same request answers */
	final_ack(t, &c);
	int grew = 0;
	for (int i = 0; i < 4; i++)
		grew += accept_qlen(t, fds[i]) - before[i];
	assert_int_equal(grew, 1);
	assert_int_equal(tw_counter(t, "TcpPassiveOpens"), 401);
	/* the children inherit SO_REUSEPORT (sk_clone_lock): a fifth member may still join */
	int fifth = sock_opt(t, 0, 1);
	assert_int_equal(bind_port(t, fifth, PORT), 0);
}

/* The listener holding a request closes before the final ACK.  tcp_migrate_req = 0 (the
 * default): the request goes with it, the ACK finds no connection, RST.  With 1: another
 * listener of the group takes the request (TcpExtTCPMigrateReqSuccess) and the ACK completes
 * the handshake there; so do children waiting in the closed listener's accept queue. */
static void test_close_one_listener_mid_handshake(void **state)
{
	struct tw *t = *state;
	int fds[2];
	group(t, fds, 2, PORT);
	struct tw_conn c = handshake(t, 21000, PORT, false);
	int holder = -1;
	for (int i = 0; i < 2; i++) {
		int q = -1;
		ustack_listen_queues(t->st, fds[i], &q, NULL, NULL);
		if (q == 1)
			holder = i;
	}
	assert_true(holder >= 0);
	assert_int_equal(ustack_close(t->st, fds[holder]), 0);
	final_ack(t, &c);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	int other = fds[1 - holder];
	assert_int_equal(accept_qlen(t, other), 0);

	tw_sysctl(t, "net.ipv4.tcp_migrate_req", "1");
	int more[2];
	group(t, more, 2, PORT + 2);
	/* find a 4-tuple the second listener holds, leaving it one child and one request */
	uint16_t sp = 22000;
	struct tw_conn req = { 0 };
	for (; sp < 22100; sp++) {
		req = handshake(t, sp, PORT + 2, false);
		int q = -1;
		ustack_listen_queues(t->st, more[1], &q, NULL, NULL);
		if (q == 1)
			break;
		final_ack(t, &req);
	}
	uint16_t sp_child = (uint16_t)(sp + 1000);
	for (; sp_child < 23200; sp_child++) {
		handshake(t, sp_child, PORT + 2, true);
		if (accept_qlen(t, more[1]) == 1)
			break;
	}
	assert_int_equal(accept_qlen(t, more[1]), 1);
	int q0 = accept_qlen(t, more[0]);
	assert_int_equal(ustack_close(t->st, more[1]), 0);
	tw_expect_none(t); /* the child was handed on, not reset */
	assert_int_equal(accept_qlen(t, more[0]), q0 + 1);
	final_ack(t, &req);
	tw_expect_none(t);
	assert_int_equal(accept_qlen(t, more[0]), q0 + 2);
	assert_int_equal(tw_counter(t, "TcpExtTCPMigrateReqSuccess"), 2);
	stack_lock(t->st);
	assert_int_equal(t->st->tcp->nreqsk, 0);
	stack_unlock(t->st);
}

/* Clients: with SO_REUSEPORT two sockets bind one source port and connect to different
 * destinations; the same destination twice is EADDRNOTAVAIL.  IP_BIND_ADDRESS_NO_PORT binds
 * the address and leaves the port to connect(). */
static void test_clients_share_a_source_port(void **state)
{
	struct tw *t = *state;
	int a = sock_opt(t, 0, 1), b = sock_opt(t, 0, 1), c = sock_opt(t, 0, 1);
	assert_int_equal(bind_port(t, a, 45000), 0);
	assert_int_equal(bind_port(t, b, 45000), 0);
	assert_int_equal(bind_port(t, c, 45000), 0);
	struct sockaddr_in d1 = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	struct sockaddr_in d2 = d1;
	d2.sin_port = htons(81);
	assert_int_equal(ustack_connect(t->st, a, (struct sockaddr *)&d1, sizeof(d1)), -1);
	assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(ustack_connect(t->st, b, (struct sockaddr *)&d2, sizeof(d2)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg s1 = tw_expect_tcp(t), s2 = tw_expect_tcp(t);
	assert_int_equal(s1.sport, 45000);
	assert_int_equal(s2.sport, 45000);
	assert_int_equal(s1.dport, 80);
	assert_int_equal(s2.dport, 81);
	errno = 0;
	assert_int_equal(ustack_connect(t->st, c, (struct sockaddr *)&d1, sizeof(d1)), -1);
	assert_int_equal(errno, EADDRNOTAVAIL);
	/* IP_BIND_ADDRESS_NO_PORT */
	int n = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, n, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)), 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(TW_DUT_IP) };
	assert_int_equal(ustack_bind(t->st, n, (struct sockaddr *)&me, sizeof(me)), 0);
	struct sockaddr_in got;
	socklen_t len = sizeof(got);
	assert_int_equal(ustack_getsockname(t->st, n, (struct sockaddr *)&got, &len), 0);
	assert_int_equal(ntohl(got.sin_addr.s_addr), TW_DUT_IP);
	assert_int_equal(got.sin_port, 0); /* no port yet */
	assert_int_equal(ustack_connect(t->st, n, (struct sockaddr *)&d1, sizeof(d1)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg s3 = tw_expect_tcp(t);
	assert_true(s3.sport >= 32768 && s3.sport <= 60999);
	int v = 0;
	len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, n, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, &len), 0);
	assert_int_equal(v, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bind_rules),
		T(test_bind_fast_path),
		T(test_spread_over_four_listeners),
		T(test_close_one_listener_mid_handshake),
		T(test_clients_share_a_source_port),
	};
	return cmocka_run_group_tests_name("reuseport", tests, NULL, NULL);
}
