/*
 * SYN cookies (syncookies.c) at the wire: when a listener sends them (tcp_syncookies 1 and 2),
 * what the cookie SYN-ACK carries — checked against this file's own implementation of Linux's
 * encoding (secure_tcp_syn_cookie, cookie_init_timestamp) under the stack's keys — and what a
 * cookie ACK does: good, forged, expired, unexpected, with data, into a full accept queue.
 */
#include "testwire.h"
#include "tcp/tcp.h"
#include <ustack/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <string.h>

#define LPORT 8080
#define CLIENT_ISN 0x20000000u

/* ---- the encoding, written again from Linux's syncookies.c ---- */

static uint32_t ref_hash(struct tw *t, int c, uint16_t sport, uint32_t count)
{
	/* siphash_4u32(saddr, daddr, sport << 16 | dport, count): words as on the wire, packed
	 * little-endian into 16 bytes */
	uint32_t w[4] = { htonl(TW_PEER_IP), htonl(TW_DUT_IP), (uint32_t)htons(sport) << 16 | htons(LPORT), count };
	uint8_t msg[16], out[8];
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 4; b++)
			msg[i * 4 + b] = (uint8_t)(w[i] >> (8 * b));
	crypto_shorthash_siphash24(out, msg, sizeof(msg), t->st->secrets.key[c ? SECRET_SYNCOOKIE1 : SECRET_SYNCOOKIE0]);
	return (uint32_t)out[0] | (uint32_t)out[1] << 8 | (uint32_t)out[2] << 16 | (uint32_t)out[3] << 24;
}

/* the cookie for a SYN with CLIENT_ISN from sport, MSS table index idx, at minute count */
static uint32_t ref_cookie(struct tw *t, uint16_t sport, uint32_t idx, uint32_t count)
{
	return ref_hash(t, 0, sport, 0) + CLIENT_ISN + (count << 24) + ((ref_hash(t, 1, sport, count) + idx) & 0xffffff);
}

static int listener(struct tw *t, int backlog)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LPORT) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, fd, backlog), 0);
	return fd;
}

static uint8_t f[TW_FRAME_MAX];

/* a SYN from sport, with options o (none if NULL) */
static void send_syn(struct tw *t, uint16_t sport, const struct tw_opts *o)
{
	tw_send(t, f, tw_tcp(f, sport, LPORT, CLIENT_ISN, 0, TW_SYN, 64240, o ? o->b : NULL, o ? o->len : 0));
}

/* The connection a SYN from sport makes, answered with ISN (or cookie) isn. */
static struct tw_conn conn_of(uint16_t sport, uint32_t isn)
{
	return (struct tw_conn){ .lfd = -1, .fd = -1, .iss = isn, .peer_isn = CLIENT_ISN, .port = LPORT,
				 .peer_port = sport };
}

static struct tw_seg expect_synack(struct tw *t, uint16_t sport)
{
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.dport, sport);
	assert_int_equal(s.ack, CLIENT_ISN + 1);
	return s;
}

/* the final ACK for a SYN-ACK with ISN `isn`, optionally with options (timestamps) and data */
static void send_ack(struct tw *t, uint16_t sport, uint32_t isn, const struct tw_opts *o, const uint8_t *data,
		     size_t dlen)
{
	struct tw_conn c = conn_of(sport, isn);
	tw_peer_send_opts(t, &c, o, 0, 0, TW_ACK, 502, data, dlen);
}

static unsigned nreqsk(struct tw *t)
{
	stack_lock(t->st);
	unsigned n = t->st->tcp->nreqsk;
	stack_unlock(t->st);
	return n;
}

/* MSS 1460, SACK permitted, TS val 1000, NOP, wscale 7 (Linux's SYN) */
static struct tw_opts linux_syn(void)
{
	struct tw_opts o = { 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_ts(&o, 1000, 0);
	tw_opt_wscale(&o, 7);
	return o;
}

/* tcp_syncookies = 2: every SYN gets a cookie.  With timestamps (here without a random offset,
 * tcp_timestamps = 2, so the TSval is the cookie's own), the TSval's low six bits carry wscale 7
 * and SACK; the ACK that echoes it gets a child with both, no request socket ever existing. */
static void test_cookie_synack_with_timestamps(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	tw_sysctl(t, "net.ipv4.tcp_timestamps", "2");
	int lfd = listener(t, 128);
	tw_advance(t, 90 * 1000 + 7); /* minute 1, and a clock that is not a multiple of 64 ms */
	struct tw_opts syn = linux_syn();
	send_syn(t, 50000, &syn);
	struct tw_seg sa = expect_synack(t, 50000);
	assert_int_equal(sa.seq, ref_cookie(t, 50000, 3 /* 1460 */, 1));
	assert_int_equal(nreqsk(t), 0);
	/* options as for any SYN-ACK: mss, SACK, TS, wscale */
	static const uint8_t head[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10 };
	assert_int_equal(sa.optlen, 20);
	assert_memory_equal(sa.opts, head, 8);
	uint32_t tsval = tw_rd32(sa.opts + 8), now_ms = 90007;
	assert_int_equal(tw_rd32(sa.opts + 12), 1000);
	assert_int_equal(tsval & 63, 7 | 16);           /* wscale 7, SACK */
	assert_true(tsval <= now_ms && now_ms - tsval < 128); /* rounded down, never ahead */
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesSent"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPReqQFullDoCookies"), 1);
	/* the ACK echoes the TSval */
	struct tw_opts ts = { 0 };
	tw_opt_ts(&ts, 1001, tsval);
	send_ack(t, 50000, sa.seq, &ts, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesRecv"), 1);
	int fd = ustack_accept(t->st, lfd, NULL, NULL);
	assert_true(fd >= 3);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	struct ustack_tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE),
			 TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
	assert_int_equal(ti.tcpi_snd_wscale, 7);
	assert_int_equal(ti.tcpi_rcv_wscale, 10);
	int mss = 0;
	len = sizeof(mss);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 1448); /* 1460 from the table, less the timestamps */
	assert_int_equal(tw_counter(t, "TcpPassiveOpens"), 1);
}

/* Without timestamps there is nowhere to keep SACK and window scaling: the SYN-ACK offers
 * neither, and the MSS is rounded down to the table (1400 → 1300). */
static void test_cookie_without_timestamps(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	int lfd = listener(t, 128);
	struct tw_opts syn = { 0 };
	tw_opt_mss(&syn, 1400);
	tw_opt_sackok(&syn);
	tw_opt_wscale(&syn, 7);
	send_syn(t, 50001, &syn);
	struct tw_seg sa = expect_synack(t, 50001);
	assert_int_equal(sa.seq, ref_cookie(t, 50001, 1 /* 1300 */, 0));
	static const uint8_t want[] = { 2, 4, 0x05, 0xb4 };
	assert_int_equal(sa.optlen, sizeof(want));
	assert_memory_equal(sa.opts, want, sizeof(want));
	send_ack(t, 50001, sa.seq, NULL, NULL, 0);
	int fd = ustack_accept(t->st, lfd, NULL, NULL);
	assert_true(fd >= 3);
	int mss = 0;
	socklen_t len = sizeof(mss);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
	assert_int_equal(mss, 1300);
	struct ustack_tcp_info ti;
	len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE), 0);
	/* an MSS below the table's first entry still gets 536; none at all, too */
	struct tw_opts tiny = { 0 };
	tw_opt_mss(&tiny, 256);
	send_syn(t, 50002, &tiny);
	assert_int_equal(expect_synack(t, 50002).seq, ref_cookie(t, 50002, 0, 0));
	send_syn(t, 50003, NULL);
	assert_int_equal(expect_synack(t, 50003).seq, ref_cookie(t, 50003, 0, 0));
}

static unsigned nlog;
static char lastlog[160];
static void on_trace(void *arg, const struct ustack_trace_event *ev)
{
	(void)arg;
	if (ev->kind == USTACK_TRACE_LOG) {
		nlog++;
		snprintf(lastlog, sizeof(lastlog), "%s", ev->detail);
	}
}

/* tcp_syncookies = 1: cookies only once the SYN queue is full (backlog 1 holds 2), with the
 * kernel's warning once per listener; the requests already queued carry on as usual. */
static void test_cookies_when_syn_queue_full(void **state)
{
	struct tw *t = *state;
	nlog = 0;
	ustack_trace_subscribe(t->st, on_trace, NULL);
	int lfd = listener(t, 1);
	send_syn(t, 51000, NULL);
	uint32_t isn0 = expect_synack(t, 51000).seq;
	send_syn(t, 51001, NULL);
	expect_synack(t, 51001);
	assert_int_equal(nreqsk(t), 2);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesSent"), 0);
	send_syn(t, 51002, NULL);
	struct tw_seg c = expect_synack(t, 51002);
	assert_int_equal(c.seq, ref_cookie(t, 51002, 0, 0));
	assert_int_equal(nreqsk(t), 2);
	assert_int_equal(tw_counter(t, "TcpExtTCPReqQFullDoCookies"), 1);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesSent"), 1);
	assert_int_equal(nlog, 1);
	assert_string_equal(lastlog, "TCP: Possible SYN flooding on port 0.0.0.0:8080. Sending cookies.");
	send_syn(t, 51003, NULL);
	expect_synack(t, 51003);
	assert_int_equal(nlog, 1); /* once per listener */
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesSent"), 2);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 0);
	/* a request and a cookie both complete */
	send_ack(t, 51000, isn0, NULL, NULL, 0);
	send_ack(t, 51002, c.seq, NULL, NULL, 0);
	tw_expect_none(t);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesRecv"), 1);
}

/* A forged cookie (TcpExtSyncookiesFailed), one from three minutes ago, and any ACK to a
 * listener that sent no cookie in two minutes all find no connection: RST, as Linux. */
static void test_bad_old_and_unexpected_cookie_acks(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	listener(t, 128);
	send_syn(t, 52000, NULL);
	uint32_t cookie = expect_synack(t, 52000).seq;
	/* (a cookie a few units off is another MSS index of the same cookie, and good — as in
	 * Linux, only 2 of the low 24 bits carry data; flipping hashed bits forges it) */
	uint32_t forged = cookie ^ 0x00ff0000u;
	send_ack(t, 52000, forged, NULL, NULL, 0);
	struct tw_conn c = conn_of(52000, forged);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesFailed"), 1);
	/* one minute later the cookie is still good (two counter ticks) ... */
	send_syn(t, 52001, NULL);
	uint32_t c1 = expect_synack(t, 52001).seq;
	tw_advance(t, 60000);
	send_ack(t, 52001, c1, NULL, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesRecv"), 1);
	/* ... two minutes later it is not */
	send_syn(t, 52002, NULL);
	uint32_t c2 = expect_synack(t, 52002).seq;
	tw_advance(t, 120000);
	send_ack(t, 52002, c2, NULL, NULL, 0);
	c = conn_of(52002, c2);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesFailed"), 2);
	/* tcp_syncookies = 1 and no cookie sent for over two minutes: not even checked */
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "1");
	tw_advance(t, 121000);
	c = conn_of(52003, ref_cookie(t, 52003, 0, (uint32_t)(t->vc.now_us / 60000000u)));
	send_ack(t, 52003, c.iss, NULL, NULL, 0);
	tw_expect_seg(t, &c, TW_RST, 0, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesFailed"), 2);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesRecv"), 1);
}

/* Data on the cookie ACK is the child's (tcp_child_process), readable after accept(). */
static void test_data_on_cookie_ack(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	int lfd = listener(t, 128);
	send_syn(t, 53000, NULL);
	uint32_t cookie = expect_synack(t, 53000).seq;
	static const uint8_t hello[] = "GET / HTTP/1.0\r\n\r\n";
	send_ack(t, 53000, cookie, NULL, hello, sizeof(hello) - 1);
	struct tw_conn c = conn_of(53000, cookie);
	tw_expect_seg(t, &c, TW_ACK, 0, sizeof(hello) - 1, 0); /* the data is acknowledged at once (quick ACKs) */
	int fd = ustack_accept(t->st, lfd, NULL, NULL);
	assert_true(fd >= 3);
	char buf[64];
	assert_int_equal(ustack_recv(t->st, fd, buf, sizeof(buf), MSG_DONTWAIT), sizeof(hello) - 1);
	assert_memory_equal(buf, hello, sizeof(hello) - 1);
}

/* A full accept queue drops a cookie ACK silently (ListenOverflows, ListenDrops: the client
 * retransmits) and a SYN too, cookies or not. */
static void test_cookie_ack_into_full_accept_queue(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	int lfd = listener(t, 0); /* the accept queue holds one */
	send_syn(t, 54000, NULL);
	uint32_t c0 = expect_synack(t, 54000).seq;
	send_syn(t, 54001, NULL);
	uint32_t c1 = expect_synack(t, 54001).seq;
	send_ack(t, 54000, c0, NULL, NULL, 0);
	send_ack(t, 54001, c1, NULL, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtListenOverflows"), 1);
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
	send_syn(t, 54002, NULL);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtListenOverflows"), 2);
	/* once accept() makes room, the retransmitted ACK gets in */
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
	send_ack(t, 54001, c1, NULL, NULL, 0);
	assert_true(ustack_accept(t->st, lfd, NULL, NULL) >= 3);
}

/* tcp_syncookies = 0: a full SYN queue drops, with the kernel's other warning. */
static void test_no_cookies_drop_with_warning(void **state)
{
	struct tw *t = *state;
	nlog = 0;
	ustack_trace_subscribe(t->st, on_trace, NULL);
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "0");
	listener(t, 0);
	send_syn(t, 55000, NULL);
	expect_synack(t, 55000);
	send_syn(t, 55001, NULL);
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpExtTCPReqQFullDrop"), 1);
	assert_int_equal(tw_counter(t, "TcpExtSyncookiesSent"), 0);
	assert_int_equal(nlog, 1);
	assert_string_equal(lastlog, "TCP: Possible SYN flooding on port 0.0.0.0:8080. Dropping request.");
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cookie_synack_with_timestamps),
		T(test_cookie_without_timestamps),
		T(test_cookies_when_syn_queue_full),
		T(test_bad_old_and_unexpected_cookie_acks),
		T(test_data_on_cookie_ack),
		T(test_cookie_ack_into_full_accept_queue),
		T(test_no_cookies_drop_with_warning),
	};
	return cmocka_run_group_tests_name("syncookies", tests, NULL, NULL);
}
