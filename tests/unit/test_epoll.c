/*
 * epoll over ustack's sockets: what Linux's eventpoll reports for a TCP connection driven by
 * crafted segments — level- and edge-triggered readiness, EPOLLONESHOT, the listener's
 * accept readiness, errnos, and items that go with their socket.
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#define PORT 80
#define PEER 40000

static const uint8_t MSS_ONLY[] = { 2, 4, 0x05, 0xb4 };
static struct tw_conn conn;
static uint8_t f[TW_FRAME_MAX];

static void peer_data(struct tw *t, uint32_t rseq, size_t len)
{
	static uint8_t data[4000];
	tw_send(t, f, tw_tcp_data(f, PEER, PORT, conn.peer_isn + 1 + rseq, conn.iss + 1, TW_ACK, 65535,
				  NULL, 0, data, len));
	(void)tw_expect_tcp(t); /* its ACK */
}

static int wait0(struct tw *t, int ep, struct epoll_event *ev)
{
	return ustack_epoll_wait(t->st, ep, ev, 4, 0);
}

static void test_edge_triggered_in_and_out(void **state)
{
	struct tw *t = *state;
	tw_accept_conn(t, &conn, PORT, MSS_ONLY, sizeof(MSS_ONLY));
	int ep = ustack_epoll_create(t->st, 1);
	assert_true(ep >= 0);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = 0x1234 };
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.fd, &ev), 0);
	struct epoll_event out[4];
	/* added while writable: one report, then nothing until the socket wakes */
	assert_int_equal(wait0(t, ep, out), 1);
	assert_int_equal(out[0].events, EPOLLOUT);
	assert_int_equal(out[0].data.u64, 0x1234);
	assert_int_equal(wait0(t, ep, out), 0);
	/* data: an edge, reporting the whole mask */
	peer_data(t, 0, 1000);
	assert_int_equal(wait0(t, ep, out), 1);
	assert_int_equal(out[0].events, EPOLLIN | EPOLLOUT);
	assert_int_equal(wait0(t, ep, out), 0);
	/* more data while some waits unread is a new edge; reading part of it is not */
	peer_data(t, 1000, 500);
	assert_int_equal(wait0(t, ep, out), 1);
	char buf[100];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 100);
	assert_int_equal(wait0(t, ep, out), 0);
	/* the peer's FIN wakes it too: readable (end of stream) and EPOLLRDHUP if asked */
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_MOD, conn.fd, &ev), 0);
	assert_int_equal(wait0(t, ep, out), 1); /* EPOLL_CTL_MOD polls again */
	tw_send(t, f, tw_tcp(f, PEER, PORT, conn.peer_isn + 1 + 1500, conn.iss + 1, TW_ACK | TW_FIN, 65535, NULL, 0));
	tw_advance(t, 40); /* a FIN's ACK waits as a delayed ACK does (tcp_fin: pingpong) */
	(void)tw_expect_tcp(t);
	assert_int_equal(wait0(t, ep, out), 1);
	assert_int_equal(out[0].events, EPOLLIN | EPOLLRDHUP);
	assert_int_equal(ustack_close(t->st, ep), 0);
}

static void test_level_triggered_and_oneshot(void **state)
{
	struct tw *t = *state;
	tw_accept_conn(t, &conn, PORT, MSS_ONLY, sizeof(MSS_ONLY));
	int ep = ustack_epoll_create(t->st, 8);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = conn.fd };
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.fd, &ev), 0);
	struct epoll_event out[4];
	assert_int_equal(wait0(t, ep, out), 0); /* nothing to read */
	peer_data(t, 0, 300);
	/* level-triggered: reported as long as it holds */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wait0(t, ep, out), 1);
		assert_int_equal(out[0].events, EPOLLIN);
		assert_int_equal(out[0].data.fd, conn.fd);
	}
	char buf[300];
	assert_int_equal(ustack_recv(t->st, conn.fd, buf, sizeof(buf), 0), 300);
	assert_int_equal(wait0(t, ep, out), 0);
	/* one-shot: one report, then disabled until EPOLL_CTL_MOD re-arms it */
	ev.events = EPOLLIN | EPOLLONESHOT;
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_MOD, conn.fd, &ev), 0);
	peer_data(t, 300, 100);
	assert_int_equal(wait0(t, ep, out), 1);
	assert_int_equal(wait0(t, ep, out), 0);
	peer_data(t, 400, 100);
	assert_int_equal(wait0(t, ep, out), 0);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_MOD, conn.fd, &ev), 0);
	assert_int_equal(wait0(t, ep, out), 1);
	/* a short timeout with nothing ready returns 0 */
	assert_int_equal(ustack_epoll_wait(t->st, ep, out, 4, 5), 0);
	/* the listener is readable when a connection waits in its accept queue */
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = conn.lfd };
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_DEL, conn.fd, NULL), 0);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.lfd, &ev), 0);
	assert_int_equal(wait0(t, ep, out), 0);
	tw_send(t, f, tw_tcp(f, PEER + 1, PORT, 5000, 0, TW_SYN, 65535, MSS_ONLY, sizeof(MSS_ONLY)));
	struct tw_seg sa = tw_expect_tcp(t);
	tw_send(t, f, tw_tcp(f, PEER + 1, PORT, 5001, sa.seq + 1, TW_ACK, 65535, NULL, 0));
	assert_int_equal(wait0(t, ep, out), 1);
	assert_int_equal(out[0].data.fd, conn.lfd);
	assert_int_equal(ustack_close(t->st, ep), 0);
}

static void test_errnos_and_close(void **state)
{
	struct tw *t = *state;
	tw_accept_conn(t, &conn, PORT, MSS_ONLY, sizeof(MSS_ONLY));
	struct epoll_event ev = { .events = EPOLLIN }, out[2];
	assert_int_equal(ustack_epoll_create(t->st, 0), -1);
	assert_int_equal(errno, EINVAL);
	int ep = ustack_epoll_create(t->st, 1);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, 999, &ev), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(ustack_epoll_ctl(t->st, conn.fd, EPOLL_CTL_ADD, conn.lfd, &ev), -1);
	assert_int_equal(errno, EINVAL); /* not an epoll instance */
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, ep, &ev), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.fd, NULL), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_MOD, conn.fd, &ev), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.fd, &ev), 0);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, EPOLL_CTL_ADD, conn.fd, &ev), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(ustack_epoll_ctl(t->st, ep, 99, conn.fd, &ev), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_epoll_wait(t->st, ep, out, 0, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_epoll_wait(t->st, conn.fd, out, 2, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* closing the socket takes its item with it: data for nobody wakes nothing */
	peer_data(t, 0, 100);
	assert_int_equal(ustack_close(t->st, conn.fd), 0);
	(void)tw_expect_tcp(t); /* the RST for unread data */
	assert_int_equal(wait0(t, ep, out), 0);
	assert_int_equal(ustack_close(t->st, ep), 0);
	assert_int_equal(ustack_epoll_wait(t->st, ep, out, 2, 0), -1);
	assert_int_equal(errno, EBADF);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_edge_triggered_in_and_out),
		T(test_level_triggered_and_oneshot),
		T(test_errnos_and_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
