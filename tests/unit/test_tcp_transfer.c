/* Data end to end: two ustack instances over the in-memory link, clean and impaired. */
#include "testwire.h"
#include <ustack/diag.h>
#include <ustack/socket.h>

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <stdlib.h>


struct pair {
	struct ustack_vclock vc;
	struct ustack *a, *b;
	struct ustack_memlink *ml;
	int cfd, sfd, lfd;
};

static void pair_connect(struct pair *p, const struct ustack_memlink_params *mp)
{
	memset(p, 0, sizeof(*p));
	tw_pair_init(&p->vc, &p->a, &p->b, &p->ml, mp);
	p->lfd = ustack_socket(p->b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(5001), .sin_addr.s_addr = htonl(TW_DUT_IP) };
	assert_int_equal(ustack_bind(p->b, p->lfd, (struct sockaddr *)&s, sizeof(s)), 0);
	assert_int_equal(ustack_listen(p->b, p->lfd, 16), 0);
	p->cfd = ustack_socket(p->a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(ustack_connect(p->a, p->cfd, (struct sockaddr *)&s, sizeof(s)), -1);
	assert_int_equal(errno, EINPROGRESS);
	for (int i = 0; i < 200 && (p->sfd = ustack_accept4(p->b, p->lfd, NULL, NULL, SOCK_NONBLOCK)) < 0; i++)
		ustack_memlink_run(p->ml, &p->vc, p->vc.now_us + 100000);
	assert_true(p->sfd >= 3);
}

static void pair_fini(struct pair *p)
{
	tw_pair_fini(p->a, p->b, p->ml);
}

/* Moves `total` bytes a → b (pattern i*7 mod 251), reading at b, in bounded virtual time. */
static size_t transfer(struct pair *p, size_t total, uint64_t max_virtual_us)
{
	uint8_t chunk[16384], in[16384];
	size_t sent = 0, got = 0;
	uint64_t deadline = p->vc.now_us + max_virtual_us;
	while (got < total && p->vc.now_us < deadline) {
		while (sent < total) {
			size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
			for (size_t i = 0; i < n; i++)
				chunk[i] = (uint8_t)((sent + i) * 7 % 251);
			ssize_t w = ustack_send(p->a, p->cfd, chunk, n, 0);
			if (w <= 0)
				break;
			sent += (size_t)w;
		}
		for (;;) {
			ssize_t r = ustack_recv(p->b, p->sfd, in, sizeof(in), 0);
			if (r <= 0)
				break;
			for (ssize_t i = 0; i < r; i++)
				if (in[i] != (uint8_t)((got + (size_t)i) * 7 % 251))
					fail_msg("byte %zu differs", got + (size_t)i);
			got += (size_t)r;
		}
		ustack_memlink_run(p->ml, &p->vc, p->vc.now_us + 1000);
	}
	return got;
}

static void test_clean_link_megabytes(void **state)
{
	(void)state;
	struct pair p;
	/* a queue deep enough for any window: nothing is lost, nothing is resent */
	struct ustack_memlink_params mp = { .delay_us = 500, .queue_limit = 65536 };
	pair_connect(&p, &mp);
	assert_int_equal(transfer(&p, 4 << 20, 60000000ull), 4 << 20);
	uint64_t rt = 1;
	ustack_counter_get(p.a, "TcpRetransSegs", &rt);
	assert_int_equal(rt, 0);
	assert_int_equal(ustack_memlink_dropped(p.ml), 0);
	/* the receiver's buffer grew past its 128 KiB start as the reader kept up
	 * (tcp_rcv_space_adjust), so the window did not limit the transfer */
	int rcvbuf = 0;
	socklen_t len = sizeof(rcvbuf);
	assert_int_equal(ustack_getsockopt(p.b, p.sfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len), 0);
	assert_true(rcvbuf > 131072);
	pair_fini(&p);
}

static void test_lossy_reordering_link(void **state)
{
	(void)state;
	struct pair p;
	struct ustack_memlink_params mp = { .seed = 11, .delay_us = 2000, .jitter_us = 500,
					    .loss = 0.03, .duplicate = 0.01, .reorder = 0.02 };
	pair_connect(&p, &mp);
	assert_int_equal(transfer(&p, 1 << 20, 600000000ull), 1 << 20);
	uint64_t rt = 0;
	ustack_counter_get(p.a, "TcpRetransSegs", &rt);
	assert_true(rt > 0);
	pair_fini(&p);
}

/* Heavy loss for many round trips, where recovery, loss probes, RTOs and window probes all
 * take turns: the transfer must finish, in a bounded (virtual) time, without the connection
 * ever stalling or dying (each of those happened to an earlier version of ustack). */
static void test_heavy_loss_many_megabytes(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 6; seed++) {
		struct pair p;
		struct ustack_memlink_params mp = { .seed = seed, .delay_us = 500, .loss = 0.05 };
		pair_connect(&p, &mp);
		assert_int_equal(transfer(&p, 16 << 20, 600000000ull), 16 << 20);
		assert_int_equal(ustack_tcp_state(p.a, p.cfd), TCP_ESTABLISHED);
		uint64_t probes = 0, sack = 0;
		ustack_counter_get(p.a, "TcpExtTCPLossProbes", &probes);
		ustack_counter_get(p.a, "TcpExtTCPSackRecovery", &sack);
		assert_true(probes > 0 && sack > 0);
		pair_fini(&p);
	}
}

static void test_orderly_close_both_ways(void **state)
{
	(void)state;
	struct pair p;
	pair_connect(&p, NULL);
	assert_int_equal(transfer(&p, 100000, 10000000), 100000);
	/* a closes: FIN; b reads end of stream, closes too; both sockets end up gone */
	assert_int_equal(ustack_close(p.a, p.cfd), 0);
	ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 100000);
	uint8_t buf[16];
	assert_int_equal(ustack_recv(p.b, p.sfd, buf, sizeof(buf), 0), 0);
	assert_int_equal(ustack_tcp_state(p.b, p.sfd), TCP_CLOSE_WAIT);
	assert_int_equal(ustack_close(p.b, p.sfd), 0);
	ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 100000);
	uint64_t tw = 9;
	ustack_counter_get(p.a, "TcpExtTW", &tw);
	assert_int_equal(tw, 1); /* a is in TIME_WAIT for 60 s: counted as it enters, as Linux */
	struct ustack_sockstat ss;
	assert_int_equal(ustack_sockstat(p.a, &ss), 0);
	assert_int_equal(ss.tcp_tw, 1);
	ustack_memlink_run(p.ml, &p.vc, p.vc.now_us + 61000000ull);
	assert_int_equal(ustack_sockstat(p.a, &ss), 0);
	assert_int_equal(ss.tcp_tw, 0);
	uint64_t est = 9;
	ustack_counter_get(p.a, "TcpCurrEstab", &est);
	assert_int_equal(est, 0);
	ustack_counter_get(p.b, "TcpCurrEstab", &est);
	assert_int_equal(est, 0);
	pair_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_link_megabytes),
		cmocka_unit_test(test_lossy_reordering_link),
		cmocka_unit_test(test_heavy_loss_many_megabytes),
		cmocka_unit_test(test_orderly_close_both_ways),
	};
	return cmocka_run_group_tests_name("tcp_transfer", tests, NULL, NULL);
}
