/*
 * ECN (RFC 3168) at the wire, as Linux 6.18's classic ECN: the SYN's ECE+CWR with
 * net.ipv4.tcp_ecn=1 (and not on a resent SYN, tcp_ecn_fallback), the SYN-ACK's ECE when a
 * listener agrees (tcp_ecn 1 or 2, and the SYN itself not ECN-capable), ECT(0) on new data
 * only, a CE mark echoed with ECE on every segment until the peer's CWR, and the sender's
 * one reduction per window for an echo (CWR state, ssthresh from CUBIC, CWR on the next new
 * data), with TCP_INFO's TCPI_OPT_ECN, TCPI_OPT_ECN_SEEN and ca_state.
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>

#define LPORT 8080
#define PEER_PORT 80
#define PEER_ISN 5000u
#define TW_ECE 0x40
#define TW_CWR 0x80
#define ECT0 2
#define CE 3

static uint8_t f[TW_FRAME_MAX];
static uint8_t payload[14600]; /* the largest write below: ten full segments */

/* The ECN field of a frame the peer sends (TOS; the IP checksum again). */
static void set_ecn(uint8_t *fr, uint8_t ecn)
{
	fr[ETH + 1] = ecn;
	tw_wr16(fr + ETH + 10, 0);
	tw_wr16(fr + ETH + 10, tw_csum(fr + ETH, 20));
}

static struct ustack_tcp_info info(struct tw *t, int fd)
{
	struct ustack_tcp_info ti;
	socklen_t l = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &ti, &l), 0);
	return ti;
}

/* A connection the DUT opens to the peer; the SYN-ACK's ECN flags are `synack_ecn`. Returns the
 * fd, c the connection. */
static int active_open(struct tw *t, struct tw_conn *c, uint8_t syn_ecn_want, uint8_t synack_ecn)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PEER_PORT),
				 .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN | syn_ecn_want);
	assert_int_equal(syn.tos & 3, 0); /* a SYN is never ECN-capable */
	*c = (struct tw_conn){ .lfd = -1, .fd = fd, .iss = syn.seq, .peer_isn = PEER_ISN, .port = syn.sport,
			       .peer_port = PEER_PORT };
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_advance(t, 20); /* a 20 ms path: RTT samples RACK can work with */
	tw_send(t, f, tw_tcp(f, PEER_PORT, syn.sport, PEER_ISN, syn.seq + 1, TW_SYN | TW_ACK | synack_ecn, 65535, o.b,
			     o.len));
	tw_expect_seg(t, c, TW_ACK, 0, 0, 0);
	return fd;
}

static void test_active_ecn_negotiation(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	/* the default (2) accepts ECN but does not ask for it */
	int fd = active_open(t, &c, 0, 0);
	assert_int_equal(info(t, fd).tcpi_options & TCPI_OPT_ECN, 0);
	assert_int_equal(ustack_close(t->st, fd), 0);
	tw_expect_tcp(t); /* FIN */
	/* 1 asks: SYN with ECE and CWR; a SYN-ACK with ECE alone agrees */
	tw_sysctl(t, "net.ipv4.tcp_ecn", "1");
	fd = active_open(t, &c, TW_ECE | TW_CWR, TW_ECE);
	assert_int_equal(info(t, fd).tcpi_options & TCPI_OPT_ECN, TCPI_OPT_ECN);
	assert_int_equal(ustack_write(t->st, fd, payload, 100), 100);
	struct tw_seg s = tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 100);
	assert_int_equal(s.tos & 3, ECT0); /* new data: ECT(0) */
	tw_peer_send(t, &c, 0, 100, TW_ACK, 502, payload, 10);
	s = tw_expect_seg(t, &c, TW_ACK, 100, 10, 0);
	assert_int_equal(s.tos & 3, 0); /* a pure ACK: not ECN-capable */
	assert_int_equal(ustack_close(t->st, fd), 0);
	tw_expect_tcp(t); /* its RST: 10 bytes were never read */
	/* a SYN-ACK with ECE and CWR (a reflected SYN's flags) does not agree */
	fd = active_open(t, &c, TW_ECE | TW_CWR, TW_ECE | TW_CWR);
	assert_int_equal(info(t, fd).tcpi_options & TCPI_OPT_ECN, 0);
	assert_int_equal(ustack_write(t->st, fd, payload, 100), 100);
	s = tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 100);
	assert_int_equal(s.tos & 3, 0);
}

static void test_resent_syn_falls_back(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_ecn", "1");
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PEER_PORT),
				 .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ECE | TW_CWR);
	tw_advance(t, 1000);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN); /* tcp_ecn_fallback: a plain SYN */
	tw_sysctl(t, "net.ipv4.tcp_ecn_fallback", "0");
	tw_advance(t, 1000);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ECE | TW_CWR);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

/* A listener on LPORT and a SYN from sport with ECN flags `ecn` in an IP packet whose ECN
 * field is ip_ecn; returns the SYN-ACK's flags. */
static uint8_t passive_synack(struct tw *t, uint16_t sport, uint8_t ecn, uint8_t ip_ecn)
{
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	size_t n = tw_tcp(f, sport, LPORT, PEER_ISN, 0, TW_SYN | ecn, 65535, o.b, o.len);
	set_ecn(f, ip_ecn);
	tw_send(t, f, n);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.dport, sport);
	assert_int_equal(s.tos & 3, 0);
	return s.flags;
}

static int listener(struct tw *t)
{
	int lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LPORT) };
	assert_int_equal(ustack_bind(t->st, lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, lfd, 16), 0);
	return lfd;
}

static void test_passive_ecn_negotiation(void **state)
{
	struct tw *t = *state;
	int lfd = listener(t);
	/* the default (2) agrees with ECE alone */
	assert_int_equal(passive_synack(t, 40001, TW_ECE | TW_CWR, 0), TW_SYN | TW_ACK | TW_ECE);
	/* half the request, or a SYN that is itself ECN-capable: no */
	assert_int_equal(passive_synack(t, 40002, TW_ECE, 0), TW_SYN | TW_ACK);
	assert_int_equal(passive_synack(t, 40003, TW_ECE | TW_CWR, ECT0), TW_SYN | TW_ACK);
	tw_sysctl(t, "net.ipv4.tcp_ecn", "0");
	assert_int_equal(passive_synack(t, 40004, TW_ECE | TW_CWR, 0), TW_SYN | TW_ACK);
	/* the child of an agreed request has ECN */
	struct tw_conn c = { .lfd = lfd, .fd = -1, .peer_isn = PEER_ISN, .port = LPORT, .peer_port = 40001 };
	tw_advance(t, 900);
	tw_sysctl(t, "net.ipv4.tcp_ecn", "2");
	assert_int_equal(passive_synack(t, 40005, TW_ECE | TW_CWR, 0), TW_SYN | TW_ACK | TW_ECE);
	c.peer_port = 40005;
	struct tw_frame *synack = NULL;
	(void)synack;
	/* the SYN-ACK's ISN: from the listener's answer to the same SYN again */
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	tw_send(t, f, tw_tcp(f, 40005, LPORT, PEER_ISN, 0, TW_SYN | TW_ECE | TW_CWR, 65535, o.b, o.len));
	tw_advance(t, 600); /* the rate limit on SYN-ACKs to a resent SYN */
	while (t->count) {
		struct tw_seg s = tw_expect_tcp(t);
		if (s.dport == 40005)
			c.iss = s.seq;
	}
	assert_true(c.iss != 0);
	tw_peer_send(t, &c, 0, 0, TW_ACK, 502, NULL, 0);
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	assert_int_equal(info(t, fd).tcpi_options & TCPI_OPT_ECN, TCPI_OPT_ECN);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_ce_echoed_until_cwr(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_ecn", "1");
	struct tw_conn c;
	int fd = active_open(t, &c, TW_ECE | TW_CWR, TW_ECE);
	/* ECT(0) data: seen, no echo */
	size_t n = tw_tcp_data(f, PEER_PORT, c.port, tw_peer_seq(&c, 0), tw_dut_seq(&c, 0), TW_ACK, 502, NULL, 0,
			       payload, 100);
	set_ecn(f, ECT0);
	tw_send(t, f, n);
	tw_expect_seg(t, &c, TW_ACK, 0, 100, 0); /* a quick ACK, no ECE */
	assert_int_equal(info(t, fd).tcpi_options & TCPI_OPT_ECN_SEEN, TCPI_OPT_ECN_SEEN);
	/* CE: ECE on the ACK, at once, and on every segment after it */
	n = tw_tcp_data(f, PEER_PORT, c.port, tw_peer_seq(&c, 100), tw_dut_seq(&c, 0), TW_ACK, 502, NULL, 0,
			payload, 100);
	set_ecn(f, CE);
	tw_send(t, f, n);
	tw_expect_seg(t, &c, TW_ACK | TW_ECE, 0, 200, 0);
	assert_int_equal(ustack_write(t->st, fd, payload, 50), 50);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH | TW_ECE, 0, 200, 50);
	tw_peer_send(t, &c, 200, 50, TW_ACK, 502, payload, 10); /* without CWR: the echo goes on */
	tw_expect_seg(t, &c, TW_ACK | TW_ECE, 50, 210, 0);
	tw_peer_send(t, &c, 210, 50, TW_ACK | TW_CWR, 502, payload, 10); /* CWR: it stops */
	tw_expect_seg(t, &c, TW_ACK, 50, 220, 0);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

static void test_echo_reduces_once_per_window(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_ecn", "1");
	struct tw_conn c;
	int fd = active_open(t, &c, TW_ECE | TW_CWR, TW_ECE);
	/* ten segments in flight (the initial window) */
	assert_int_equal(ustack_write(t->st, fd, payload, 14600), 14600);
	for (unsigned i = 0; i < 10; i++) {
		struct tw_seg s = tw_expect_tcp(t);
		assert_int_equal(s.plen, 1460);
		assert_int_equal(s.tos & 3, ECT0);
		assert_int_equal(s.flags & TW_CWR, 0);
	}
	/* an echo: CWR state, ssthresh = 0.7 × 10 (CUBIC), and CWR on the next new data */
	tw_advance(t, 20);
	tw_peer_send(t, &c, 0, 1460, TW_ACK | TW_ECE, 65535, NULL, 0);
	struct ustack_tcp_info ti = info(t, fd);
	assert_int_equal(ti.tcpi_ca_state, 2); /* TCP_CA_CWR */
	assert_int_equal(ti.tcpi_snd_ssthresh, 7);
	assert_int_equal(ustack_write(t->st, fd, payload, 1460), 1460);
	/* PRR lets new data go only in proportion to what is delivered */
	tw_peer_send(t, &c, 0, 2920, TW_ACK | TW_ECE, 65535, NULL, 0);
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags & TW_CWR, TW_CWR);
	assert_int_equal(s.tos & 3, ECT0);
	while (t->count)
		tw_expect_tcp(t);
	/* further echoes in the same window change nothing */
	tw_peer_send(t, &c, 0, 4380, TW_ACK | TW_ECE, 65535, NULL, 0);
	assert_int_equal(info(t, fd).tcpi_snd_ssthresh, 7);
	while (t->count)
		tw_expect_tcp(t);
	/* everything sent before the echo acknowledged, and more: back to Open at ssthresh */
	tw_peer_send(t, &c, 0, 14600 + 1460, TW_ACK, 65535, NULL, 0);
	ti = info(t, fd);
	assert_int_equal(ti.tcpi_ca_state, 0);
	assert_int_equal(ti.tcpi_snd_cwnd, 7);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_active_ecn_negotiation, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_resent_syn_falls_back, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_passive_ecn_negotiation, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_ce_echoed_until_cwr, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_echo_reduces_once_per_window, tw_setup_learned, tw_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
