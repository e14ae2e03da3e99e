/*
 * SO_TIMESTAMPING's transmit timestamps at the wire (tcp_timestamping.c): the option's checks
 * in sock_set_timestamping's order, and the error queue's messages — SCHED and SND when the
 * segment holding a write's last byte goes out (again on a retransmission), ACK on the first
 * cumulative ACK past it — with their keys, times and payloads, as Linux 6.18 reports them
 * (measured on this project's kernel; tests/packetdrill/scripts/timestamping-*.pkt).
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static struct tw_conn conn;

static void accept_mss1000(struct tw *t)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1000);
	tw_opt_sackok(&o);
	tw_accept_conn(t, &conn, 80, o.b, o.len);
}

struct ts_msg {
	ssize_t rc;
	int flags;
	struct sock_extended_err ee;
	int64_t us; /* SCM_TIMESTAMPING's software time; -1: no such cmsg */
};

static struct ts_msg read_errq(struct tw *t, size_t iov_len)
{
	static uint8_t data[4096];
	uint8_t ctl[256];
	struct iovec iov = { data, iov_len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct ts_msg r = { .us = -1 };
	r.rc = ustack_recvmsg(t->st, conn.fd, &m, MSG_ERRQUEUE);
	if (r.rc < 0)
		return r;
	r.flags = m.msg_flags;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
			struct timespec ts[3];
			memcpy(ts, CMSG_DATA(c), sizeof(ts));
			r.us = (int64_t)ts[0].tv_sec * 1000000 + ts[0].tv_nsec / 1000;
			assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(ts)));
		} else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) {
			memcpy(&r.ee, CMSG_DATA(c), sizeof(r.ee));
		} else {
			fail_msg("unexpected cmsg %d/%d", c->cmsg_level, c->cmsg_type);
		}
	}
	return r;
}

static void expect_ts(struct ts_msg m, int type, uint32_t key)
{
	assert_int_equal(m.ee.ee_errno, ENOMSG);
	assert_int_equal(m.ee.ee_origin, SO_EE_ORIGIN_TIMESTAMPING);
	assert_int_equal(m.ee.ee_info, type);
	assert_int_equal(m.ee.ee_data, key);
}

/* setsockopt's checks, in sock_set_timestamping's order, and getsockopt's view */
static void test_timestamping_option(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	int v = 1 << 19; /* beyond SOF_TIMESTAMPING_TX_COMPLETION */
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	short s2 = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &s2, sizeof(s2)), -1);
	assert_int_equal(errno, EINVAL);
	v = 1 << 16; /* OPT_ID_TCP without OPT_ID */
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = SOF_TIMESTAMPING_OPT_STATS; /* without OPT_TSONLY */
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = SOF_TIMESTAMPING_OPT_ID; /* on the listener: no sequence space */
	assert_int_equal(ustack_setsockopt(t->st, conn.lfd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), 0);
	int got[2] = { -1, -1 };
	socklen_t len = sizeof(got);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, got, &len), 0);
	assert_int_equal(len, 8);
	assert_int_equal(got[0], v);
	assert_int_equal(got[1], 0);
	len = sizeof(got);
	assert_int_equal(ustack_getsockopt(t->st, conn.fd, SOL_SOCKET, 65 /* _NEW */, got, &len), 0);
	assert_int_equal(got[0], 0); /* set through the old number */
}

/*
 * Two writes: the first segment's SCHED and SND come with the send, keyed 999 (OPT_ID from
 * snd_una), the payload the Ethernet frame; a retransmission after the RTO stamps them again;
 * the cumulative ACK past byte 999 — 30 ms of virtual time later — stamps ACK, with the data
 * as payload; a SACK alone stamps nothing.  POLLERR while messages wait.
 */
static void test_timestamps_sched_snd_ack(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	int v = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK |
		SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), 0);
	static uint8_t d[1000];
	assert_int_equal(ustack_send(t->st, conn.fd, d, 1000, 0), 1000);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 1000);
	struct pollfd p = { .fd = conn.fd, .events = POLLIN };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLERR);
	struct ts_msg sched = read_errq(t, 0);
	assert_int_equal(sched.rc, 0);
	assert_int_equal(sched.flags, MSG_ERRQUEUE | MSG_TRUNC);
	expect_ts(sched, SCM_TSTAMP_SCHED, 999);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t wall = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	assert_true(sched.us > wall - 3600 * 1000000LL && sched.us < wall + 3600 * 1000000LL); /* wall clock */
	struct ts_msg snd = read_errq(t, 4096);
	assert_int_equal(snd.rc, 14 + 20 + 20 + 1000); /* the frame: Ethernet, IP, TCP, data */
	assert_int_equal(snd.flags, MSG_ERRQUEUE);
	expect_ts(snd, SCM_TSTAMP_SND, 999);
	assert_int_equal(snd.us, sched.us);
	assert_int_equal(read_errq(t, 0).rc, -1);
	assert_int_equal(errno, EAGAIN);
	/* the RTO resends it: stamped again, same key */
	for (int i = 0; i < 300 && !t->count; i++)
		tw_advance(t, 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 1000);
	struct ts_msg again = read_errq(t, 0);
	expect_ts(again, SCM_TSTAMP_SCHED, 999);
	assert_true(again.us > sched.us);
	expect_ts(read_errq(t, 0), SCM_TSTAMP_SND, 999);
	/* a second write; its SACK stamps nothing, the cumulative ACK stamps both, in order */
	assert_int_equal(ustack_send(t->st, conn.fd, d, 500, 0), 500);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 1000, 0, 500);
	expect_ts(read_errq(t, 0), SCM_TSTAMP_SCHED, 1499);
	expect_ts(read_errq(t, 0), SCM_TSTAMP_SND, 1499);
	struct tw_opts sack = { 0 };
	const uint32_t blocks[1][2] = { { 1000, 1500 } };
	tw_opt_sack(&sack, tw_dut_seq(&conn, 0), blocks, 1);
	tw_peer_send_opts(t, &conn, &sack, 0, 0, TW_ACK, 65535, NULL, 0);
	assert_int_equal(read_errq(t, 0).rc, -1);
	tw_advance(t, 30);
	tw_peer_send(t, &conn, 0, 1500, TW_ACK, 65535, NULL, 0);
	struct ts_msg ack1 = read_errq(t, 4096);
	expect_ts(ack1, SCM_TSTAMP_ACK, 999);
	assert_int_equal(ack1.rc, 1000); /* the skb's data */
	expect_ts(read_errq(t, 4096), SCM_TSTAMP_ACK, 1499);
	assert_int_equal(read_errq(t, 0).rc, -1);
}

/* OPT_TSONLY: no payload; without SOFTWARE no SCM_TIMESTAMPING; a write that asks nothing
 * stamps nothing; a per-write SCM_TIMESTAMPING cmsg asks for that write only. */
static void test_timestamps_tsonly_and_cmsg(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	int v = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_ID;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, "abc", 3, 0), 3);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 0, 0, 3);
	struct ts_msg m = read_errq(t, 4096);
	assert_int_equal(m.rc, 0);
	assert_int_equal(m.flags, MSG_ERRQUEUE);
	assert_int_equal(m.us, -1); /* no SOFTWARE report flag */
	expect_ts(m, SCM_TSTAMP_SND, 2);
	tw_peer_send(t, &conn, 0, 3, TW_ACK, 65535, NULL, 0);
	/* record flags off for the socket; one write asks through a cmsg */
	v = SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_SOFTWARE;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_TIMESTAMPING, &v, sizeof(v)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, "de", 2, 0), 2);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 3, 0, 2);
	assert_int_equal(read_errq(t, 0).rc, -1);
	tw_peer_send(t, &conn, 0, 5, TW_ACK, 65535, NULL, 0); /* (else Nagle holds the next) */
	uint8_t ctl[CMSG_SPACE(sizeof(uint32_t))] = { 0 };
	struct iovec iov = { "fgh", 3 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SO_TIMESTAMPING;
	c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
	uint32_t f = SOF_TIMESTAMPING_TX_ACK;
	memcpy(CMSG_DATA(c), &f, sizeof(f));
	assert_int_equal(ustack_sendmsg(t->st, conn.fd, &msg, 0), 3);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 5, 0, 3);
	assert_int_equal(read_errq(t, 0).rc, -1);
	tw_peer_send(t, &conn, 0, 8, TW_ACK, 65535, NULL, 0);
	m = read_errq(t, 0);
	expect_ts(m, SCM_TSTAMP_ACK, 7);
	assert_true(m.us > 0);
	/* a report flag in the cmsg is EINVAL, nothing is sent */
	f = SOF_TIMESTAMPING_SOFTWARE;
	memcpy(CMSG_DATA(c), &f, sizeof(f));
	assert_int_equal(ustack_sendmsg(t->st, conn.fd, &msg, 0), -1);
	assert_int_equal(errno, EINVAL);
	tw_expect_none(t);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_timestamping_option),
		T(test_timestamps_sched_snd_ack),
		T(test_timestamps_tsonly_and_cmsg),
	};
	return cmocka_run_group_tests_name("tcp_timestamping", tests, NULL, NULL);
}
