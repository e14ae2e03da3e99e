/*
 * Urgent data at the wire (tcp_urg.c): the URG bit and pointer on what a MSG_OOB write sends,
 * retransmissions and ACKs included, until the peer acknowledges it; and the receiver's side —
 * the mark that stops a read, recv(MSG_OOB), SIOCATMARK, SIOCINQ, POLLPRI, SO_OOBINLINE —
 * each as Linux 6.18 behaves (measured with packetdrill on this project's kernel; the scripts
 * are tests/packetdrill/scripts/urgent-*.pkt).
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static struct tw_conn conn;

#define TW_URG 0x20

/* A segment from the peer with the URG bit and pointer (tw_tcp_data leaves the pointer 0). */
static size_t urg_seg(uint8_t *f, uint32_t rseq, uint16_t urg, const char *d, size_t len)
{
	size_t n = tw_tcp_data(f, conn.peer_port, 80, tw_peer_seq(&conn, rseq), tw_dut_seq(&conn, 0),
			       TW_ACK | TW_PSH | TW_URG, 1000, NULL, 0, (const uint8_t *)d, len);
	uint8_t *th = f + 14 + 20;
	tw_wr16(th + 18, urg);
	tw_wr16(th + 16, 0);
	tw_wr16(th + 16, tw_tcp_csum(th, n - 34, TW_PEER_IP, TW_DUT_IP));
	return n;
}

/* The last frame's TCP urgent pointer (tw_seg does not carry it). */
static uint16_t last_urg(struct tw *t)
{
	struct tw_frame *fr = &t->out[(t->head + TW_MAX_FRAMES - 1) % TW_MAX_FRAMES];
	return tw_rd16(fr->b + 14 + 20 + 18);
}

static void accept_mss1000(struct tw *t)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1000);
	tw_accept_conn(t, &conn, 80, o.b, o.len);
}

static int ioctl_v(struct tw *t, unsigned long req)
{
	int v = -1;
	assert_int_equal(ustack_ioctl(t->st, conn.fd, req, &v), 0);
	return v;
}

/* A 3000-byte MSG_OOB write goes in three MSS segments, each pointing at the write's end
 * (snd_up = write_seq); the retransmission after a timeout points from its own sequence
 * number; a partial ACK keeps urgent mode, and so do ACKs we send meanwhile (they start at
 * snd_nxt, past the pointer: no URG); the full ACK ends it, and the next write has none. */
static void test_send_urgent(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	static uint8_t d[3000];
	assert_int_equal(ustack_send(t->st, conn.fd, d, sizeof(d), MSG_OOB), 3000);
	struct tw_seg s = tw_expect_seg(t, &conn, TW_ACK | TW_URG, 0, 0, 1000);
	assert_int_equal(last_urg(t), 3000);
	tw_expect_seg(t, &conn, TW_ACK | TW_URG, 1000, 0, 1000);
	assert_int_equal(last_urg(t), 2000);
	tw_expect_seg(t, &conn, TW_ACK | TW_URG | TW_PSH, 2000, 0, 1000);
	assert_int_equal(last_urg(t), 1000);
	(void)s;
	tw_peer_send(t, &conn, 0, 1000, TW_ACK, 65535, NULL, 0);
	/* the peer's data: our ACK carries no URG (it starts at snd_nxt = snd_up) */
	tw_peer_send(t, &conn, 0, 1000, TW_ACK | TW_PSH, 65535, "hi", 2);
	tw_advance(t, 40);
	tw_expect_seg(t, &conn, TW_ACK, 3000, 2, 0);
	assert_int_equal(last_urg(t), 0);
	/* the RTO resends from snd_una, pointing 2000 ahead */
	for (int i = 0; i < 400 && !t->count; i++)
		tw_advance(t, 5);
	tw_expect_seg(t, &conn, TW_ACK | TW_URG, 1000, 2, 1000);
	assert_int_equal(last_urg(t), 2000);
	tw_peer_send(t, &conn, 2, 3000, TW_ACK, 65535, NULL, 0);
	while (t->count)
		tw_expect_tcp(t);
	/* urgent mode is over: a small write is plain, Nagle or not */
	assert_int_equal(ustack_send(t->st, conn.fd, "x", 1, 0), 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_PSH, 3000, 2, 1);
	assert_int_equal(last_urg(t), 0);
}

/* Urgent mode overrides Nagle and the cork: a 1-byte MSG_OOB write goes at once, with URG,
 * while an earlier small segment is unacknowledged and TCP_CORK is on. */
static void test_urgent_overrides_nagle_and_cork(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)), 0);
	assert_int_equal(ustack_send(t->st, conn.fd, "abc", 3, 0), 3);
	tw_expect_none(t); /* corked */
	assert_int_equal(ustack_send(t->st, conn.fd, "!", 1, MSG_OOB), 1);
	tw_expect_seg(t, &conn, TW_ACK | TW_URG | TW_PSH, 0, 0, 4);
	assert_int_equal(last_urg(t), 4);
	/* zero bytes with MSG_OOB: nothing, no urgent mode change */
	assert_int_equal(ustack_send(t->st, conn.fd, "", 0, MSG_OOB), 0);
	tw_expect_none(t);
}

/* The receiver: bytes 1..10 with urg 5 mark the 5th byte (BSD: seq + urg − 1).  SIOCINQ counts
 * up to it, a read stops before it, SIOCATMARK says the reader is there, POLLPRI says the byte
 * is in, recv(MSG_OOB) returns it (MSG_PEEK leaves it), and the next read skips it. */
static void test_receive_urgent(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	char b[32];
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB), -1);
	assert_int_equal(errno, EINVAL); /* nothing urgent yet */
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, urg_seg(f, 0, 5, "abcdXfghij", 10));
	assert_int_equal(ioctl_v(t, SIOCINQ), 4);
	assert_int_equal(ioctl_v(t, SIOCATMARK), 0);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 0, 0), 0); /* no room: 0 at once (fuzz_stack
								       * found it spinning) */
	struct pollfd p = { .fd = conn.fd, .events = POLLIN | POLLPRI };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN | POLLPRI);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), 4); /* up to the mark */
	assert_memory_equal(b, "abcd", 4);
	assert_int_equal(ioctl_v(t, SIOCATMARK), 1);
	assert_int_equal(ioctl_v(t, SIOCINQ), 0);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB | MSG_PEEK), 1);
	assert_int_equal(b[0], 'X');
	struct iovec iov = { b, 8 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	assert_int_equal(ustack_recvmsg(t->st, conn.fd, &m, MSG_OOB), 1);
	assert_int_equal(b[0], 'X');
	assert_int_equal(m.msg_flags, MSG_OOB);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB), -1);
	assert_int_equal(errno, EINVAL); /* read already */
	assert_int_equal(ioctl_v(t, SIOCATMARK), 1); /* until the reader passes the mark */
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), 5); /* the byte skipped */
	assert_memory_equal(b, "fghij", 5);
	assert_int_equal(ioctl_v(t, SIOCATMARK), 0);
}

/* SO_OOBINLINE: the byte stays in the stream; a read still stops at the mark, MSG_OOB is
 * EINVAL, and the next read starts with the urgent byte. */
static void test_receive_urgent_inline(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	int one = 1;
	assert_int_equal(ustack_setsockopt(t->st, conn.fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)), 0);
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, urg_seg(f, 0, 5, "abcdXfghij", 10));
	char b[32];
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ioctl_v(t, SIOCINQ), 10);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), 4);
	assert_int_equal(ioctl_v(t, SIOCATMARK), 1);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), 6);
	assert_memory_equal(b, "Xfghij", 6);
}

/* The pointer before its byte (urg beyond the segment): EAGAIN until the byte comes, then
 * POLLPRI; a retransmitted old pointer is not a new mark. */
static void test_receive_urgent_notyet(void **state)
{
	struct tw *t = *state;
	accept_mss1000(t);
	uint8_t f[TW_FRAME_MAX];
	tw_send(t, f, urg_seg(f, 0, 8, "abcde", 5)); /* the 8th byte: in the next segment */
	char b[32];
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB), -1);
	assert_int_equal(errno, EAGAIN);
	struct pollfd p = { .fd = conn.fd, .events = POLLIN | POLLPRI };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN);
	tw_peer_send(t, &conn, 5, 0, TW_ACK | TW_PSH, 1000, "fgXij", 5);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(p.revents, POLLIN | POLLPRI);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, 1, MSG_OOB), 1);
	assert_int_equal(b[0], 'X');
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), MSG_WAITALL), 7); /* stops at the mark */
	assert_memory_equal(b, "abcdefg", 7);
	assert_int_equal(ustack_recv(t->st, conn.fd, b, sizeof(b), 0), 2);
	assert_memory_equal(b, "ij", 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_send_urgent),
		T(test_urgent_overrides_nagle_and_cork),
		T(test_receive_urgent),
		T(test_receive_urgent_inline),
		T(test_receive_urgent_notyet),
	};
	return cmocka_run_group_tests_name("tcp_urg", tests, NULL, NULL);
}
