/*
 * The timers of an established connection at the wire, and the socket options that steer
 * them: keepalive (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT), TCP_USER_TIMEOUT, the retransmission
 * budget of tcp_retries2, and the choice of congestion control (TCP_CONGESTION).
 *
 * The fixture accepts one connection from the peer (SYN with MSS 1460 only, so no timestamps
 * or SACK: every byte of every segment is predictable).
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <string.h>

#define PORT 80

static void establish(struct tw *t, struct tw_conn *c)
{
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460);
	tw_accept_conn(t, c, PORT, mss.b, mss.len);
}

static void setopt(struct tw *t, int fd, int level, int name, int v)
{
	assert_int_equal(ustack_setsockopt(t->st, fd, level, name, &v, sizeof(v)), 0);
}

/* A keepalive probe: a bare ACK one byte behind snd_una (RFC 9293 §3.8.4), here the ISN. */
static void expect_probe(struct tw *t, const struct tw_conn *c)
{
	tw_expect_seg(t, c, TW_ACK, (uint32_t)-1, 0, 0);
}

static void test_keepalive_probes_then_reset(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	setopt(t, c.fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	setopt(t, c.fd, IPPROTO_TCP, TCP_KEEPIDLE, 10);
	setopt(t, c.fd, IPPROTO_TCP, TCP_KEEPINTVL, 5);
	setopt(t, c.fd, IPPROTO_TCP, TCP_KEEPCNT, 2);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
	assert_int_equal(v, 10);
	/* silent for 10 s: the first probe, not a moment before */
	tw_advance(t, 9999);
	tw_expect_none(t);
	tw_advance(t, 1);
	expect_probe(t, &c);
	assert_int_equal(tw_counter(t, "TcpExtTCPKeepAlive"), 1);
	/* the peer answers: silence is measured again from its answer */
	tw_peer_send(t, &c, 0, 0, TW_ACK, 65535, NULL, 0);
	tw_advance(t, 9999);
	tw_expect_none(t);
	tw_advance(t, 1);
	expect_probe(t, &c);
	/* now nobody answers: probes every 5 s; after TCP_KEEPCNT (2) unanswered, a RST, and
	 * the application sees ETIMEDOUT */
	tw_advance(t, 5000);
	expect_probe(t, &c);
	tw_advance(t, 5000);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 0, 0, 0);
	char buf[8];
	assert_int_equal(ustack_recv(t->st, c.fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_CLOSE);
	assert_int_equal(tw_counter(t, "TcpExtTCPKeepAlive"), 3);
}

static void test_keepalive_option_ranges(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	int v = 0;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = 32768; /* MAX_TCP_KEEPIDLE + 1 */
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = 128; /* MAX_TCP_KEEPCNT + 1 */
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	v = -1;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v)), -1);
	assert_int_equal(errno, EINVAL);
	/* defaults come from the sysctls */
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
	assert_int_equal(v, 75);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
	assert_int_equal(v, 9);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
	assert_int_equal(v, 0);
}

/* Data nobody acknowledges: retransmissions with a doubling RTO, ETIMEDOUT once
 * TCP_USER_TIMEOUT has passed since the first transmission — and no RST (tcp_write_err). */
static void test_user_timeout_ends_retransmissions(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	setopt(t, c.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 3000);
	assert_int_equal(ustack_send(t->st, c.fd, "hello", 5, 0), 5);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 5); /* PSH: the end of what was written */
	/* RTO 1 s (no RTT sample from a handshake that the peer completed at once is 1 ms,
	 * floored at 200 ms): resent at 0.2, 0.6, 1.4, 3.0 s ... */
	int resent = 0;
	for (int ms = 0; ms < 4000 && ustack_tcp_state(t->st, c.fd) == TCP_ESTABLISHED; ms += 10) {
		tw_advance(t, 10);
		while (t->count) {
			tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 5);
			resent++;
		}
	}
	assert_true(resent >= 3);
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_CLOSE);
	assert_int_equal(t->vc.now_us, 3000000); /* the RTO is clamped to the deadline */
	char buf[8];
	assert_int_equal(ustack_recv(t->st, c.fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), (uint64_t)resent);
}

/* tcp_retries2 bounds the retransmissions by time: with 3, tcp_model_timeout from a 200 ms
 * RTO is 0.2 · (2⁴ − 1) = 3 s. */
static void test_retries2_budget(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_retries2", "3");
	struct tw_conn c;
	establish(t, &c);
	assert_int_equal(ustack_send(t->st, c.fd, "x", 1, 0), 1);
	tw_expect_tcp(t);
	int ms = 0;
	for (; ms < 20000 && ustack_tcp_state(t->st, c.fd) == TCP_ESTABLISHED; ms += 10) {
		tw_advance(t, 10);
		while (t->count)
			tw_expect_tcp(t);
	}
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_CLOSE);
	assert_true(ms >= 3000 && ms <= 3300);
	char b;
	assert_int_equal(ustack_recv(t->st, c.fd, &b, 1, 0), -1);
	assert_int_equal(errno, ETIMEDOUT);
}

static void test_tcp_congestion_option(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	char name[16] = { 0 };
	socklen_t len = sizeof(name);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
	assert_string_equal(name, "cubic"); /* Linux's default */
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);
	memset(name, 0, sizeof(name));
	len = sizeof(name);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
	assert_string_equal(name, "reno");
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 0), -1);
	assert_int_equal(errno, EINVAL); /* do_tcp_setsockopt: optlen < 1 */
	/* the sysctl sets the default for new sockets */
	tw_sysctl(t, "net.ipv4.tcp_congestion_control", "reno");
	int fd2 = ustack_socket(t->st, AF_INET, SOCK_STREAM, 0);
	memset(name, 0, sizeof(name));
	len = sizeof(name);
	assert_int_equal(ustack_getsockopt(t->st, fd2, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
	assert_string_equal(name, "reno");
}

/* SO_LINGER reads back what was set; a non-blocking close does not wait. */
struct closer {
	struct tw *t;
	int fd, rc;
};

static void *close_thread(void *p)
{
	struct closer *c = p;
	c->rc = ustack_close(c->t->st, c->fd);
	return NULL;
}

static void test_linger_option(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	struct linger lg = { 1, 5 }, out;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	socklen_t len = sizeof(out);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, SOL_SOCKET, SO_LINGER, &out, &len), 0);
	assert_int_equal(out.l_onoff, 1);
	assert_int_equal(out.l_linger, 5);
	/* a non-blocking socket lingers too, as Linux's (inet_release ignores O_NONBLOCK; a
	 * close() on 6.18 with {1, 2} and the FIN unanswered took 2.03 s) */
	struct closer cl = { t, c.fd, -2 };
	pthread_t th;
	pthread_create(&th, NULL, close_thread, &cl);
	tw_wait_sleepers(t, 1);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 0, 0, 0);
	assert_int_equal(cl.rc, -2); /* still waiting for the FIN's ACK */
	tw_peer_send(t, &c, 0, 1, TW_ACK, 65535, NULL, 0);
	pthread_join(th, NULL);
	assert_int_equal(cl.rc, 0);
}

/* A new DUT in the fixture (a second listener on the same port needs one) */
static void fresh_stack(struct tw *t)
{
	tw_fini(t);
	tw_init(t);
	tw_learn_peer(t);
	t->auto_arp = 1;
}

/*
 * A blocking close() with SO_LINGER waits for our FIN to be acknowledged in every state, as
 * Linux's __tcp_close does — also after shutdown(SHUT_WR), where it used to return at once and
 * a program that then exited lost what was still in flight.  It returns when the ACK comes, or
 * when the linger time runs out.  With unread data it resets, in FIN_WAIT2 too.
 */
static void test_linger_waits_after_shutdown(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	int fl = ustack_fcntl(t->st, c.fd, F_GETFL, 0);
	ustack_fcntl(t->st, c.fd, F_SETFL, fl & ~O_NONBLOCK);
	struct linger lg = { 1, 5 };
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	static const uint8_t data[100];
	assert_int_equal(ustack_send(t->st, c.fd, data, sizeof(data), 0), 100);
	assert_int_equal(ustack_shutdown(t->st, c.fd, SHUT_WR), 0);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 100);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 100, 0, 0);
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_FIN_WAIT1);
	struct closer cl = { t, c.fd, -2 };
	pthread_t th;
	pthread_create(&th, NULL, close_thread, &cl);
	tw_wait_sleepers(t, 1); /* close() sleeps: nothing acknowledged yet */
	assert_int_equal(cl.rc, -2);
	tw_peer_send(t, &c, 0, 101, TW_ACK, 65535, NULL, 0); /* the data and the FIN */
	pthread_join(th, NULL);
	assert_int_equal(cl.rc, 0);

	/* again, with no ACK: close() returns after the 5 s of linger */
	struct tw_conn d;
	fresh_stack(t);
	establish(t, &d);
	fl = ustack_fcntl(t->st, d.fd, F_GETFL, 0);
	ustack_fcntl(t->st, d.fd, F_SETFL, fl & ~O_NONBLOCK);
	assert_int_equal(ustack_setsockopt(t->st, d.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	assert_int_equal(ustack_shutdown(t->st, d.fd, SHUT_WR), 0);
	tw_expect_seg(t, &d, TW_FIN | TW_ACK, 0, 0, 0);
	struct closer cd = { t, d.fd, -2 };
	pthread_create(&th, NULL, close_thread, &cd);
	tw_wait_sleepers(t, 1);
	tw_advance(t, 5000);
	pthread_join(th, NULL);
	assert_int_equal(cd.rc, 0);

	/* FIN_WAIT2 with unread data: close() resets (tcp_close's unread-data rule) */
	struct tw_conn e;
	fresh_stack(t);
	establish(t, &e);
	assert_int_equal(ustack_shutdown(t->st, e.fd, SHUT_WR), 0);
	tw_expect_seg(t, &e, TW_FIN | TW_ACK, 0, 0, 0);
	tw_peer_send(t, &e, 0, 1, TW_ACK, 65535, data, 10);
	tw_expect_seg(t, &e, TW_ACK, 1, 10, 0); /* its ACK */
	assert_int_equal(ustack_tcp_state(t->st, e.fd), TCP_FIN_WAIT2);
	assert_int_equal(ustack_close(t->st, e.fd), 0);
	tw_expect_seg(t, &e, TW_RST | TW_ACK, 1, 10, 0);
}

static unsigned undelivered(struct tw *t, uint64_t *lost)
{
	return ustack_undelivered(t->st, lost);
}

/*
 * What a kernel goes on sending after the process exits: a closed connection owes its peer
 * until our FIN is acknowledged (FIN_WAIT1, CLOSING, LAST_ACK), and ustack_undelivered counts
 * it — through a shutdown(SHUT_WR) before the close too.  Delivered when the ACK comes; lost
 * when the peer resets it first.
 */
static void test_orphans_owe_until_fin_acked(void **state)
{
	struct tw *t = *state;
	static const uint8_t data[100];
	uint64_t lost = 99;
	struct tw_conn c;
	establish(t, &c);
	assert_int_equal(undelivered(t, &lost), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(ustack_send(t->st, c.fd, data, sizeof(data), 0), 100);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 100);
	assert_int_equal(undelivered(t, NULL), 0); /* open: the application still holds it */
	assert_int_equal(ustack_close(t->st, c.fd), 0);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 100, 0, 0);
	assert_int_equal(undelivered(t, NULL), 1);
	tw_peer_send(t, &c, 0, 100, TW_ACK, 65535, NULL, 0); /* the data, not the FIN */
	assert_int_equal(undelivered(t, NULL), 1);
	tw_peer_send(t, &c, 0, 101, TW_ACK, 65535, NULL, 0);
	assert_int_equal(undelivered(t, &lost), 0); /* FIN_WAIT2: all delivered */
	assert_int_equal(lost, 0);

	/* LAST_ACK: the peer closed first; our FIN's ACK ends it */
	struct tw_conn d;
	fresh_stack(t);
	establish(t, &d);
	tw_peer_send(t, &d, 0, 0, TW_FIN | TW_ACK, 65535, NULL, 0);
	tw_advance(t, 200); /* its ACK, now or delayed */
	while (t->count)
		tw_expect_tcp(t);
	assert_int_equal(ustack_shutdown(t->st, d.fd, SHUT_WR), 0); /* LAST_ACK, still open */
	tw_expect_seg(t, &d, TW_FIN | TW_ACK, 0, 1, 0);
	assert_int_equal(undelivered(t, NULL), 0);
	assert_int_equal(ustack_close(t->st, d.fd), 0); /* now an orphan that owes its FIN */
	assert_int_equal(undelivered(t, NULL), 1);
	tw_peer_send(t, &d, 1, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(undelivered(t, &lost), 0);
	assert_int_equal(lost, 0);

	/* reset by the peer before our FIN was acknowledged: lost */
	struct tw_conn e;
	fresh_stack(t);
	establish(t, &e);
	assert_int_equal(ustack_send(t->st, e.fd, data, 10, 0), 10);
	tw_expect_seg(t, &e, TW_ACK | TW_PSH, 0, 0, 10);
	assert_int_equal(ustack_close(t->st, e.fd), 0);
	tw_expect_seg(t, &e, TW_FIN | TW_ACK, 10, 0, 0);
	assert_int_equal(undelivered(t, NULL), 1);
	tw_peer_send(t, &e, 0, 0, TW_RST, 0, NULL, 0);
	assert_int_equal(undelivered(t, &lost), 0);
	assert_int_equal(lost, 1);
}

/* Time from now until the orphan of conn c is given up on, its retransmissions answered by
 * nobody; every segment the stack sends meanwhile is c's data or FIN. */
static int ms_until_given_up(struct tw *t)
{
	int ms = 0;
	for (; ms < 400000 && undelivered(t, NULL); ms += 100) {
		tw_advance(t, 100);
		while (t->count)
			tw_expect_tcp(t);
	}
	return ms;
}

/*
 * tcp_orphan_retries: an orphan is given up on after tcp_orphan_retries retransmissions'
 * time (tcp_write_timeout's SOCK_DEAD case) — the default 0 meaning 8 while the RTO is below
 * TCP_RTO_MAX: 0.2 · (2⁹ − 1) = 102.2 s from a 200 ms RTO (checked when the RTO fires: the
 * ninth, at 102.7 s with this connection's 201 ms RTO), where a socket the application still
 * holds waits tcp_retries2's 924 s.  No RST (tcp_write_err); TcpExtTCPAbortOnTimeout.
 */
static void test_orphan_retries(void **state)
{
	struct tw *t = *state;
	uint64_t lost = 0;
	struct tw_conn c;
	establish(t, &c);
	assert_int_equal(ustack_send(t->st, c.fd, "x", 1, 0), 1);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 1);
	assert_int_equal(ustack_close(t->st, c.fd), 0);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 1, 0, 0);
	int ms = ms_until_given_up(t);
	assert_true(ms >= 102200 && ms <= 103500); /* at the RTO that passes the budget */
	assert_int_equal(undelivered(t, &lost), 0);
	assert_int_equal(lost, 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnTimeout"), 1);

	/* net.ipv4.tcp_orphan_retries = 2: 0.2 · (2³ − 1) = 1.4 s */
	struct tw_conn d;
	fresh_stack(t);
	tw_sysctl(t, "net.ipv4.tcp_orphan_retries", "2");
	establish(t, &d);
	assert_int_equal(ustack_send(t->st, d.fd, "x", 1, 0), 1);
	tw_expect_seg(t, &d, TW_ACK | TW_PSH, 0, 0, 1);
	assert_int_equal(ustack_close(t->st, d.fd), 0);
	tw_expect_seg(t, &d, TW_FIN | TW_ACK, 1, 0, 0);
	ms = ms_until_given_up(t);
	assert_true(ms >= 1400 && ms <= 1700);
	assert_int_equal(undelivered(t, &lost), 0);
	assert_int_equal(lost, 1);
}

struct caller {
	struct tw *t;
	int fd, op; /* 0 recv, 1 accept */
	ssize_t rc;
	int err;
};

static void *call_thread(void *p)
{
	struct caller *c = p;
	char b[8];
	c->rc = c->op ? ustack_accept(c->t->st, c->fd, NULL, NULL) : ustack_recv(c->t->st, c->fd, b, sizeof(b), 0);
	c->err = errno;
	return NULL;
}

static void set_timeo(struct tw *t, int fd, int name, int64_t sec, int64_t usec, int want_rc, int want_errno)
{
	struct { int64_t sec, usec; } tv = { sec, usec };
	int rc = ustack_setsockopt(t->st, fd, SOL_SOCKET, name, &tv, sizeof(tv));
	assert_int_equal(rc, want_rc);
	if (rc < 0)
		assert_int_equal(errno, want_errno);
}

static void expect_timeo(struct tw *t, int fd, int name, int64_t sec, int64_t usec)
{
	struct { int64_t sec, usec; } tv = { -7, -7 };
	socklen_t len = sizeof(tv);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, name, &tv, &len), 0);
	assert_int_equal(len, sizeof(tv));
	assert_int_equal(tv.sec, sec);
	assert_int_equal(tv.usec, usec);
}

/*
 * SO_RCVTIMEO and SO_SNDTIMEO as Linux's sock_set_timeout/sock_get_timeout (checked on this
 * machine's 6.18): a whole timeval or EINVAL, µs out of range EDOM, 0 s 0 µs for ever (read
 * back as 0/0), negative seconds "do not wait" (read back as 0/0 too), values rounded up to
 * the jiffy (ustack's is 1 ms; Linux's HZ here is 250: 1500 µs reads back as 4000 µs there,
 * 2000 µs here).  A blocking recv or accept ends with EAGAIN when the time runs out — on the
 * stack's clock — and at once with a negative timeout; a blocking connect returns EINPROGRESS
 * and the handshake goes on.
 */
static void test_rcvtimeo_sndtimeo(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	ustack_fcntl(t->st, c.fd, F_SETFL, 0); /* blocking */
	expect_timeo(t, c.fd, SO_RCVTIMEO, 0, 0);
	set_timeo(t, c.fd, SO_RCVTIMEO, 0, 1500, 0, 0);
	expect_timeo(t, c.fd, SO_RCVTIMEO, 0, 2000);
	set_timeo(t, c.fd, SO_SNDTIMEO, 1, 999999, 0, 0);
	expect_timeo(t, c.fd, SO_SNDTIMEO, 2, 0);
	expect_timeo(t, c.fd, SO_RCVTIMEO, 0, 2000); /* each its own */
	set_timeo(t, c.fd, SO_RCVTIMEO, 0, 1000000, -1, EDOM);
	set_timeo(t, c.fd, SO_RCVTIMEO, 0, -1, -1, EDOM);
	int64_t half = 0;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, SOL_SOCKET, SO_RCVTIMEO, &half, sizeof(half)), -1);
	assert_int_equal(errno, EINVAL);
	socklen_t len = sizeof(half);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, SOL_SOCKET, SO_SNDTIMEO, &half, &len), 0);
	assert_int_equal(len, sizeof(half)); /* the start of the timeval: its seconds */
	assert_int_equal(half, 2);

	/* negative: a blocking recv returns at once */
	set_timeo(t, c.fd, SO_RCVTIMEO, -1, 0, 0, 0);
	expect_timeo(t, c.fd, SO_RCVTIMEO, 0, 0);
	char b[8];
	assert_int_equal(ustack_recv(t->st, c.fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);

	/* 500 ms: still waiting at 499, EAGAIN at 500 */
	set_timeo(t, c.fd, SO_RCVTIMEO, 0, 500000, 0, 0);
	struct caller r = { t, c.fd, 0, -2, 0 };
	pthread_t th;
	pthread_create(&th, NULL, call_thread, &r);
	tw_wait_sleepers(t, 1);
	tw_advance(t, 499);
	tw_wait_sleepers(t, 1);
	assert_int_equal(r.rc, -2);
	tw_advance(t, 1);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.err, EAGAIN);
	/* and data before the time is up is returned as usual */
	pthread_create(&th, NULL, call_thread, &r);
	tw_wait_sleepers(t, 1);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 65535, "hi", 2);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 2);

	/* accept on a blocking listener: EAGAIN after 300 ms */
	ustack_fcntl(t->st, c.lfd, F_SETFL, 0);
	set_timeo(t, c.lfd, SO_RCVTIMEO, 0, 300000, 0, 0);
	struct caller a = { t, c.lfd, 1, -2, 0 };
	pthread_create(&th, NULL, call_thread, &a);
	tw_wait_sleepers(t, 1);
	tw_advance(t, 300);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, -1);
	assert_int_equal(a.err, EAGAIN);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_keepalive_probes_then_reset),
		T(test_keepalive_option_ranges),
		T(test_user_timeout_ends_retransmissions),
		T(test_retries2_budget),
		T(test_tcp_congestion_option),
		T(test_linger_option),
		T(test_linger_waits_after_shutdown),
		T(test_orphans_owe_until_fin_acked),
		T(test_orphan_retries),
		T(test_rcvtimeo_sndtimeo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
