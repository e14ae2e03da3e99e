/*
 * TCP Fast Open (RFC 7413, tcp_fastopen.c) at the wire, on both sides.
 *
 * Server: a cookie request gets Linux's cookie (checked against this file's own SipHash of the
 * addresses under the sysctl's key, itself pinned to a cookie this machine's kernel sent); a
 * good cookie with data makes a child at once — readable and writable in SYN_RECV, its SYN-ACK
 * acknowledging the data and resent by the child's own timer; a bad cookie, a full Fast Open
 * queue, a listener without TCP_FASTOPEN, SYN cookies: a normal handshake.  The backup key.
 * Client: the cookie request, the cached cookie and MSS sizing the next SYN's data, data the
 * SYN-ACK left unacknowledged sent again at once, resent SYNs without data or option,
 * TCP_FASTOPEN_CONNECT, and Linux's errno for each misuse.  The key sysctl's format.
 */
#include "testwire.h"
#include <ustack/diag.h>
#include <ustack/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define LPORT 8080
#define PEER_ISN 1000u
#define KEY "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4" /* packetdrill's common defaults */
#define TFO_OPT 34
#define TFO_EXP 254

static uint8_t f[TW_FRAME_MAX];

/* ---- the cookie, written again from Linux's proc_tcp_fastopen_key and
 * __tcp_fastopen_cookie_gen_cipher: the words little-endian, SipHash of saddr ‖ daddr ---- */
static void ref_cookie(const char *key, uint32_t saddr, uint32_t daddr, uint8_t out[8])
{
	unsigned w[4];
	assert_int_equal(sscanf(key, "%x-%x-%x-%x", &w[0], &w[1], &w[2], &w[3]), 4);
	uint8_t k[16], msg[8];
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 4; b++)
			k[4 * i + b] = (uint8_t)(w[i] >> (8 * b));
	uint32_t be[2] = { htonl(saddr), htonl(daddr) };
	memcpy(msg, be, sizeof(msg));
	crypto_shorthash_siphash24(out, msg, sizeof(msg), k);
}

static void test_reference_cookie_is_linuxs(void **state)
{
	(void)state;
	/* what Linux 6.18 sent for 192.0.2.1 → 198.51.100.1 under the defaults' key */
	static const uint8_t linux_cookie[8] = { 0x10, 0x82, 0xc9, 0x24, 0x40, 0x32, 0xbf, 0x10 };
	uint8_t c[8];
	ref_cookie(KEY, 0xc0000201u, 0xc6336401u, c);
	assert_memory_equal(c, linux_cookie, 8);
}

/* TCP_INFO of fd */
static struct ustack_tcp_info info_of(struct tw *t, int fd)
{
	struct ustack_tcp_info ti;
	socklen_t tl = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
	return ti;
}

/* close with SO_LINGER {1, 0}: a RST, and nothing left behind */
static void abort_close(struct tw *t, int fd)
{
	assert_int_equal(ustack_setsockopt(t->st, fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 },
					   sizeof(struct linger)), 0);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

/* ---- server side ---- */

/* A listener on LPORT; with qlen ≥ 0, TCP_FASTOPEN and the sysctl's server bit (3: client
 * and server) — the option alone does not enable it, as in Linux. */
static int tfo_listener(struct tw *t, int qlen)
{
	if (qlen >= 0)
		tw_sysctl(t, "net.ipv4.tcp_fastopen", "3");
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(LPORT) };
	assert_int_equal(ustack_bind(t->st, fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (qlen >= 0)
		assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)), 0);
	assert_int_equal(ustack_listen(t->st, fd, 8), 0);
	return fd;
}

static struct tw_conn conn_from(uint16_t sport)
{
	return (struct tw_conn){ .lfd = -1, .fd = -1, .peer_isn = PEER_ISN, .port = LPORT, .peer_port = sport };
}

/* A SYN from c's port with a Fast Open option (cookie of clen bytes; 0: a request; exp: the
 * experimental 254/0xF989 form) and dlen bytes of data. */
static void send_tfo_syn(struct tw *t, const struct tw_conn *c, const uint8_t *cookie, size_t clen, bool exp,
			 const uint8_t *data, size_t dlen)
{
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_opt_wscale(&o, 7);
	if (exp) {
		uint8_t v[2 + 16] = { 0xf9, 0x89 };
		if (clen)
			memcpy(v + 2, cookie, clen);
		tw_opt_raw(&o, TFO_EXP, v, 2 + clen);
	} else if (cookie) {
		tw_opt_raw(&o, TFO_OPT, cookie, clen);
	}
	tw_send(t, f, tw_tcp_data(f, c->peer_port, LPORT, PEER_ISN, 0, TW_SYN, 65535, o.b, o.len, data, dlen));
}

/* The SYN-ACK: acknowledging `acked` bytes of SYN data; c->iss learnt from it. */
static struct tw_seg expect_synack(struct tw *t, struct tw_conn *c, uint32_t acked)
{
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	assert_int_equal(s.dport, c->peer_port);
	assert_int_equal(s.ack, PEER_ISN + 1 + acked);
	assert_int_equal(s.plen, 0);
	c->iss = s.seq;
	return s;
}

static const uint8_t data10[10] = "0123456789";

static void test_cookie_request_gets_linux_cookie(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	int lfd = tfo_listener(t, 16);
	struct tw_conn c = conn_from(40001);
	send_tfo_syn(t, &c, NULL, 0, false, NULL, 0);
	tw_expect_tcp(t); /* a SYN without a Fast Open option asks for nothing */
	/* the request: an empty option (34, 2) */
	c = conn_from(40002);
	send_tfo_syn(t, &c, (const uint8_t *)"", 0, false, NULL, 0);
	struct tw_seg s = expect_synack(t, &c, 0);
	uint8_t want[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, want);
	size_t len;
	const uint8_t *cookie = tw_seg_opt(&s, TFO_OPT, &len);
	assert_non_null(cookie);
	assert_int_equal(len, 8);
	assert_memory_equal(cookie, want, 8);
	/* Linux's layout: MSS, NOP NOP sackOK, NOP wscale, then 34 10 cookie NOP NOP */
	static const uint8_t head[] = { 2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3 };
	assert_int_equal(s.optlen, 24);
	assert_memory_equal(s.opts, head, sizeof(head));
	assert_int_equal(s.opts[12], TFO_OPT);
	assert_int_equal(s.opts[13], 10);
	assert_int_equal(s.opts[22], 1);
	assert_int_equal(s.opts[23], 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenCookieReqd"), 1);
	/* the experimental form is answered in kind */
	c = conn_from(40003);
	send_tfo_syn(t, &c, NULL, 0, true, NULL, 0);
	s = expect_synack(t, &c, 0);
	const uint8_t *exp = tw_seg_opt(&s, TFO_EXP, &len);
	assert_non_null(exp);
	assert_int_equal(len, 10);
	assert_int_equal(tw_rd16(exp), 0xf989);
	assert_memory_equal(exp + 2, want, 8);
	assert_null(tw_seg_opt(&s, TFO_OPT, &len));
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_good_cookie_child_before_final_ack(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	int lfd = tfo_listener(t, 16);
	uint8_t cookie[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, cookie);
	struct tw_conn c = conn_from(40010);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	struct tw_seg s = expect_synack(t, &c, 10); /* the data acknowledged */
	size_t len;
	assert_null(tw_seg_opt(&s, TFO_OPT, &len)); /* a good cookie is not sent back */
	assert_int_equal(s.ip_id, 0);
	/* the child is in the accept queue already, in SYN_RECV, its data readable */
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_RECV);
	uint8_t buf[64];
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, data10, 10);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_options & (TCPI_OPT_SYN_DATA | 128), TCPI_OPT_SYN_DATA | 128);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenPassive"), 1);
	/* it may send before its handshake ends */
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(ustack_write(t->st, fd, "hello", 5), 5);
	c.peer_isn = PEER_ISN + 10; /* relative to the end of the SYN's data */
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 5);
	/* the final ACK (covering the 5 bytes too): ESTABLISHED, the SYN-ACK timer stops */
	tw_peer_send(t, &c, 0, 5, TW_ACK, 502, NULL, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	tw_advance(t, 5000);
	tw_expect_none(t);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_child_synack_retransmitted(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	tw_sysctl(t, "net.ipv4.tcp_synack_retries", "1");
	int lfd = tfo_listener(t, 16);
	uint8_t cookie[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, cookie);
	struct tw_conn c = conn_from(40011);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	expect_synack(t, &c, 10);
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	/* the child's own timer: 1 s, then 2 s later, one more time than tcp_synack_retries; the
	 * resent SYN-ACK has no cookie either */
	tw_advance(t, 999);
	tw_expect_none(t);
	tw_advance(t, 1);
	struct tw_seg s = expect_synack(t, &c, 10);
	size_t len;
	assert_null(tw_seg_opt(&s, TFO_OPT, &len));
	tw_advance(t, 2000);
	expect_synack(t, &c, 10);
	assert_int_equal(tw_counter(t, "TcpExtTCPSynRetrans"), 2);
	tw_advance(t, 4000); /* no third: the connection times out */
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	uint8_t buf[16];
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), 10); /* the data stays readable */
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_bad_cookie_normal_handshake(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	int lfd = tfo_listener(t, 16);
	uint8_t bad[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, want[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, want);
	struct tw_conn c = conn_from(40020);
	send_tfo_syn(t, &c, bad, 8, false, data10, sizeof(data10));
	struct tw_seg s = expect_synack(t, &c, 0); /* only the ISN acknowledged */
	size_t len;
	const uint8_t *cookie = tw_seg_opt(&s, TFO_OPT, &len); /* and a good cookie offered */
	assert_non_null(cookie);
	assert_int_equal(len, 8);
	assert_memory_equal(cookie, want, 8);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenPassiveFail"), 1);
	assert_int_equal(ustack_accept(t->st, lfd, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	tw_peer_send(t, &c, 0, 0, TW_ACK, 502, NULL, 0);
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	uint8_t buf[16];
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), -1); /* the SYN's data was not taken */
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_backup_key_accepted(void **state)
{
	struct tw *t = *state;
	const char *old = "01020304-05060708-090a0b0c-0d0e0f10";
	char both[128];
	snprintf(both, sizeof(both), "%s,%s", KEY, old);
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", both);
	char back[128];
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_fastopen_key", back, sizeof(back)), 0);
	assert_string_equal(back, both);
	int lfd = tfo_listener(t, 16);
	uint8_t oldc[8], primary[8];
	ref_cookie(old, TW_PEER_IP, TW_DUT_IP, oldc);
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, primary);
	struct tw_conn c = conn_from(40030);
	send_tfo_syn(t, &c, oldc, 8, false, data10, sizeof(data10));
	struct tw_seg s = expect_synack(t, &c, 10); /* accepted, and the primary's cookie handed out */
	size_t len;
	const uint8_t *cookie = tw_seg_opt(&s, TFO_OPT, &len);
	assert_non_null(cookie);
	assert_memory_equal(cookie, primary, 8);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenPassiveAltKey"), 1);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_queue_limit_and_reset_children(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	int lfd = tfo_listener(t, 1);
	int q, ql = sizeof(q);
	assert_int_equal(ustack_getsockopt(t->st, lfd, IPPROTO_TCP, TCP_FASTOPEN, &q, (socklen_t *)&ql), 0);
	assert_int_equal(q, 1);
	uint8_t cookie[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, cookie);
	struct tw_conn a = conn_from(40040), b = conn_from(40041), d = conn_from(40042);
	send_tfo_syn(t, &a, cookie, 8, false, data10, sizeof(data10));
	expect_synack(t, &a, 10);
	/* the queue (1) is full: a normal handshake, without even a cookie */
	send_tfo_syn(t, &b, cookie, 8, false, data10, sizeof(data10));
	struct tw_seg s = expect_synack(t, &b, 0);
	size_t len;
	assert_null(tw_seg_opt(&s, TFO_OPT, &len));
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenListenOverflow"), 1);
	/* the peer resets the first child: it stays counted for 60 s (rskq_rst) */
	a.peer_isn = PEER_ISN + 10;
	tw_peer_send(t, &a, 0, 0, TW_RST, 0, NULL, 0);
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	uint8_t buf[16];
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), 10);
	assert_int_equal(ustack_read(t->st, fd, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ECONNRESET);
	send_tfo_syn(t, &d, cookie, 8, false, data10, sizeof(data10));
	expect_synack(t, &d, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenListenOverflow"), 2);
	tw_advance(t, 60000);
	while (t->count) /* the normal SYN-ACKs' retransmissions */
		tw_expect_tcp(t);
	d.peer_port = 40043;
	send_tfo_syn(t, &d, cookie, 8, false, data10, sizeof(data10));
	expect_synack(t, &d, 10);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

static void test_listener_enabling_and_syn_cookies(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	uint8_t cookie[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, cookie);
	/* tcp_fastopen = 1 (the client only) and no TCP_FASTOPEN: no child, no cookie */
	int lfd = tfo_listener(t, -1);
	struct tw_conn c = conn_from(40050);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	struct tw_seg s = expect_synack(t, &c, 0);
	size_t len;
	assert_null(tw_seg_opt(&s, TFO_OPT, &len));
	assert_int_equal(ustack_close(t->st, lfd), 0);
	/* 0x403 (written in hex, as sysctl(8) takes it): every listener, its queue the backlog */
	tw_sysctl(t, "net.ipv4.tcp_fastopen", "0x403");
	lfd = tfo_listener(t, -1);
	int q;
	socklen_t ql = sizeof(q);
	assert_int_equal(ustack_getsockopt(t->st, lfd, IPPROTO_TCP, TCP_FASTOPEN, &q, &ql), 0);
	assert_int_equal(q, 8);
	c = conn_from(40051);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	expect_synack(t, &c, 10);
	/* a SYN answered with a SYN cookie keeps nothing, so no Fast Open either */
	tw_sysctl(t, "net.ipv4.tcp_syncookies", "2");
	c = conn_from(40052);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	s = expect_synack(t, &c, 0);
	assert_null(tw_seg_opt(&s, TFO_OPT, &len));
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenPassive"), 1);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

/* An ICMP error from the peer quoting the first 28 bytes of the DUT's frame q (its IP header
 * and the TCP ports and sequence number). */
static size_t icmp_quoting(uint8_t *fr, const struct tw_frame *q, uint8_t type, uint8_t code)
{
	tw_eth(fr, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	uint8_t *icmp = fr + 34;
	memset(icmp, 0, 8);
	icmp[0] = type;
	icmp[1] = code;
	memcpy(icmp + 8, q->b + ETH, 28);
	tw_wr16(icmp + 2, tw_csum(icmp, 36));
	tw_ip_hdr(fr + 14, 1, TW_PEER_IP, TW_DUT_IP, 20 + 36, 0x3333, 0, 64);
	return 34 + 36;
}

/* tcp_req_err drops a request on an unreachable net or host (and on time exceeded or a
 * parameter problem), silently, but not on a port unreachable; tcp_v4_err ends a Fast Open
 * child nobody has accepted yet, and leaves an accepted one a soft error, as a connected
 * socket.  An error quoting the child's SYN-ACK is in its window. */
static void test_icmp_errors_for_requests_and_children(void **state)
{
	struct tw *t = *state;
	uint8_t fr[TW_FRAME_MAX];
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", KEY);
	int lfd = tfo_listener(t, 16);
	/* a request: port unreachable keeps it, host unreachable drops it */
	struct tw_conn c = conn_from(40060);
	send_tfo_syn(t, &c, NULL, 0, false, NULL, 0);
	struct tw_frame synack = *tw_expect(t);
	tw_send(t, fr, icmp_quoting(fr, &synack, 3, 3));
	tw_send(t, fr, icmp_quoting(fr, &synack, 3, 1));
	assert_int_equal(tw_counter(t, "TcpExtListenDrops"), 1);
	c.iss = tw_rd32(synack.b + ETH + 20 + 4);
	tw_peer_send(t, &c, 0, 0, TW_ACK, 502, NULL, 0);
	struct tw_seg r = tw_expect_tcp(t); /* no request any more: the ACK is reset */
	assert_int_equal(r.flags, TW_RST);
	/* a child not accepted yet ends with the error */
	uint8_t cookie[8];
	ref_cookie(KEY, TW_PEER_IP, TW_DUT_IP, cookie);
	c = conn_from(40061);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	synack = *tw_expect(t);
	tw_send(t, fr, icmp_quoting(fr, &synack, 3, 1));
	assert_int_equal(tw_counter(t, "TcpExtOutOfWindowIcmps"), 0);
	int fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	int err;
	socklen_t el = sizeof(err);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
	assert_int_equal(err, EHOSTUNREACH);
	assert_int_equal(ustack_close(t->st, fd), 0);
	/* an accepted one lives on (a soft error, for a timeout to report) */
	c = conn_from(40062);
	send_tfo_syn(t, &c, cookie, 8, false, data10, sizeof(data10));
	synack = *tw_expect(t);
	fd = ustack_accept4(t->st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 3);
	tw_send(t, fr, icmp_quoting(fr, &synack, 3, 1));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_RECV);
	assert_int_equal(ustack_close(t->st, fd), 0);
	assert_int_equal(ustack_close(t->st, lfd), 0);
}

/* ---- client side ---- */

#define SERVER_PORT 80

static int client_socket(struct tw *t)
{
	return ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
}

/* the peer as a server: the address and length arguments of sendto and connect */
#define SERVER                                                                                          \
	(const struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(SERVER_PORT), \
							.sin_addr.s_addr = htonl(TW_PEER_IP) },                  \
		sizeof(struct sockaddr_in)

/* The DUT's SYN: its Fast Open option (NULL, or the cookie's bytes in *clen: 0 a request),
 * its data length; c becomes the connection it opens. */
static struct tw_seg expect_syn(struct tw *t, struct tw_conn *c, size_t plen, const uint8_t **cookie, size_t *clen)
{
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN);
	assert_int_equal(s.dport, SERVER_PORT);
	assert_int_equal(s.plen, plen);
	*c = (struct tw_conn){ .lfd = -1, .fd = -1, .iss = s.seq, .peer_isn = PEER_ISN, .port = s.sport,
			       .peer_port = SERVER_PORT };
	*cookie = tw_seg_opt(&s, TFO_OPT, clen);
	return s;
}

/* The server's SYN-ACK to c: acking `acked` bytes of the SYN's data, with MSS mss and a
 * cookie (clen 0: none). */
static void send_synack(struct tw *t, const struct tw_conn *c, uint32_t acked, uint16_t mss, const uint8_t *cookie,
			size_t clen)
{
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, mss);
	tw_opt_sackok(&o);
	tw_opt_wscale(&o, 7);
	if (clen)
		tw_opt_raw(&o, TFO_OPT, cookie, clen);
	tw_send(t, f, tw_tcp(f, SERVER_PORT, c->port, PEER_ISN, c->iss + 1 + acked, TW_SYN | TW_ACK, 65535, o.b,
			     o.len));
}

static const uint8_t srv_cookie[4] = { 0xab, 0xcd, 0x12, 0x34 };
static uint8_t payload[4000];

/* A cookie request (a data-less sendto MSG_FASTOPEN: EINPROGRESS), answered with srv_cookie and
 * MSS mss; the connection closed again. */
static void warm_cache(struct tw *t, uint16_t mss)
{
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 0, MSG_FASTOPEN, SERVER), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	struct tw_seg s = expect_syn(t, &c, 0, &cookie, &clen);
	assert_non_null(cookie);
	assert_int_equal(clen, 0);
	/* Linux's layout: MSS, sackOK TS, NOP wscale, then 34 2 NOP NOP */
	assert_int_equal(s.optlen, 24);
	static const uint8_t tail[] = { TFO_OPT, 2, 1, 1 };
	assert_memory_equal(s.opts + 20, tail, sizeof(tail));
	send_synack(t, &c, 0, mss, srv_cookie, sizeof(srv_cookie));
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_fastopen_client_fail, 1); /* TFO_COOKIE_UNAVAILABLE */
	assert_int_equal(ti.tcpi_options & TCPI_OPT_SYN_DATA, 0);
	assert_int_equal(ti.tcpi_delivered, 1);
	abort_close(t, fd);
	tw_expect_tcp(t); /* its RST */
}

static void test_client_cookie_then_data_in_syn(void **state)
{
	struct tw *t = *state;
	warm_cache(t, 940);
	/* the cookie and MSS are cached: 940 − 40 bytes of option room = 900 in the SYN */
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 2000, MSG_FASTOPEN, SERVER), 900);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	struct tw_seg s = expect_syn(t, &c, 900, &cookie, &clen);
	assert_non_null(cookie);
	assert_int_equal(clen, 4);
	assert_memory_equal(cookie, srv_cookie, 4);
	assert_memory_equal(s.payload, payload, 900);
	/* still connecting: EALREADY for another Fast Open, EAGAIN for a write */
	assert_int_equal(ustack_sendto(t->st, fd, payload, 10, MSG_FASTOPEN, SERVER), -1);
	assert_int_equal(errno, EALREADY);
	assert_int_equal(ustack_write(t->st, fd, payload, 10), -1);
	assert_int_equal(errno, EAGAIN);
	send_synack(t, &c, 900, 1460, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK, 900, 0, 0);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_options & TCPI_OPT_SYN_DATA, TCPI_OPT_SYN_DATA);
	assert_int_equal(ti.tcpi_delivered, 1); /* the SYN and its data count once */
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenActive"), 1);
	/* after the handshake MSG_FASTOPEN is an ordinary send */
	assert_int_equal(ustack_sendto(t->st, fd, payload + 900, 100, MSG_FASTOPEN, SERVER), 100);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 900, 0, 100);
	abort_close(t, fd);
}

/* `ip tcp_metrics` on the cache: the cookie and MSS a server gave, per destination; flush
 * and delete forget them (delete of what is not there: ESRCH), and the next Fast Open asks
 * for a cookie again. */
static void test_tcp_metrics_show_and_flush(void **state)
{
	struct tw *t = *state;
	struct ustack_tcp_metrics m[4];
	size_t total = 99;
	assert_int_equal(ustack_tcp_metrics_snapshot(t->st, m, 4, &total), 0);
	assert_int_equal(total, 0);
	warm_cache(t, 940);
	tw_advance(t, 1500);
	assert_int_equal(ustack_tcp_metrics_snapshot(t->st, m, 4, &total), 1);
	assert_int_equal(total, 1);
	assert_int_equal(ntohl(m[0].daddr.s_addr), TW_PEER_IP);
	assert_int_equal(ntohl(m[0].saddr.s_addr), TW_DUT_IP);
	assert_int_equal(m[0].fo_mss, 940);
	assert_int_equal(m[0].fo_cookie_len, 4);
	assert_memory_equal(m[0].fo_cookie, srv_cookie, 4);
	assert_int_equal(m[0].fo_syn_drops, 0);
	assert_true(m[0].age_ms >= 1500);
	/* the same through the control socket, in ip tcp_metrics' words */
	char dir[] = "/tmp/ustack-tm-XXXXXX", line[512];
	assert_non_null(mkdtemp(dir));
	setenv("USTACK_RUN_DIR", dir, 1);
	struct ustack_ctl *ctl = ustack_ctl_start(t->st, "tm");
	assert_non_null(ctl);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ustack_ctl_path(ctl));
	int cfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(cfd, "tcp_metrics\n", 12), 12);
	FILE *cf = fdopen(cfd, "r");
	assert_non_null(fgets(line, sizeof(line), cf));
	assert_string_equal(line, "ok\n");
	assert_non_null(fgets(line, sizeof(line), cf));
	assert_int_equal(strncmp(line, "192.0.2.1 age 1.", 16), 0);
	assert_non_null(strstr(line, "sec fo_mss 940 fo_cookie abcd1234 source 192.0.2.2\n"));
	assert_null(fgets(line, sizeof(line), cf));
	fclose(cf);
	ustack_ctl_stop(ctl);
	rmdir(dir);
	struct in_addr other = { htonl(TW_PEER_IP + 1) }, peer = { htonl(TW_PEER_IP) };
	assert_int_equal(ustack_tcp_metrics_flush(t->st, &other, 1), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(ustack_tcp_metrics_flush(t->st, &other, 0), 0);
	assert_int_equal(ustack_tcp_metrics_flush(t->st, &peer, 1), 1);
	assert_int_equal(ustack_tcp_metrics_snapshot(t->st, m, 4, &total), 0);
	assert_int_equal(ustack_tcp_metrics_flush(t->st, NULL, 1), -1);
	assert_int_equal(errno, EINVAL);
	/* forgotten: the next Fast Open is a cookie request again */
	warm_cache(t, 1460);
	assert_int_equal(ustack_tcp_metrics_flush(t->st, NULL, 0), 1);
	warm_cache(t, 1460);
}

static void test_client_data_not_acked_is_resent(void **state)
{
	struct tw *t = *state;
	warm_cache(t, 1460);
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 700, MSG_FASTOPEN, SERVER), 700);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	expect_syn(t, &c, 700, &cookie, &clen);
	/* the server took only the SYN: the data goes again at once, with the ACK */
	send_synack(t, &c, 0, 1460, NULL, 0);
	struct tw_seg s = tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 700);
	assert_memory_equal(s.payload, payload, 700);
	tw_expect_none(t);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_options & TCPI_OPT_SYN_DATA, 0);
	assert_int_equal(ti.tcpi_fastopen_client_fail, 2); /* TFO_DATA_NOT_ACKED */
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenActiveFail"), 1);
	tw_peer_send(t, &c, 0, 700, TW_ACK, 502, NULL, 0);
	abort_close(t, fd);
}

/* The SYN's data the SYN-ACK left unacknowledged stays marked lost after it goes again
 * (tcp_mark_skb_lost): TCP_INFO counts it retransmitted, and the first SACK for what followed
 * it starts recovery, which sends it once more at once. */
static void test_client_unacked_syn_data_stays_lost(void **state)
{
	struct tw *t = *state;
	warm_cache(t, 1460);
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 1420, MSG_FASTOPEN, SERVER), 1420);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	expect_syn(t, &c, 1420, &cookie, &clen);
	tw_advance(t, 20);
	struct tw_opts o = { .len = 0 };
	tw_opt_mss(&o, 1460);
	tw_opt_sackok(&o);
	tw_send(t, f, tw_tcp(f, SERVER_PORT, c.port, PEER_ISN, c.iss + 1, TW_SYN | TW_ACK, 65535, o.b, o.len));
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 1420);
	assert_int_equal(ustack_write(t->st, fd, payload, 2920), 2920);
	tw_expect_seg(t, &c, TW_ACK, 1420, 0, 1460);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 2880, 0, 1460);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_retrans, 1);
	assert_int_equal(ti.tcpi_unacked, 3);
	tw_advance(t, 20);
	struct tw_opts sack = { .len = 0 };
	const uint32_t blocks[1][2] = { { 1420, 4340 } };
	tw_opt_sack(&sack, tw_dut_seq(&c, 0), blocks, 1);
	tw_peer_send_opts(t, &c, &sack, 0, 0, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 1420); /* at once, no timer */
	abort_close(t, fd);
}

static void test_client_resent_syn_is_plain(void **state)
{
	struct tw *t = *state;
	warm_cache(t, 1460);
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 5000, MSG_FASTOPEN, SERVER), 1420);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	expect_syn(t, &c, 1420, &cookie, &clen);
	assert_non_null(cookie);
	tw_advance(t, 1000);
	struct tw_conn c2;
	expect_syn(t, &c2, 0, &cookie, &clen); /* no data, no option */
	assert_null(cookie);
	send_synack(t, &c, 0, 1460, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 0, 0, 1420);
	struct ustack_tcp_info ti = info_of(t, fd);
	assert_int_equal(ti.tcpi_fastopen_client_fail, 3); /* TFO_SYN_RETRANSMITTED */
	abort_close(t, fd);
}

/* A SYN with data lost twice looks like a middlebox eating Fast Open SYNs: with
 * tcp_fastopen_blackhole_timeout_sec set, active Fast Open pauses (TcpExtTCPFastOpenBlackhole):
 * the next SYN carries neither the option nor data, until the pause is over. */
static void test_client_blackhole_pause(void **state)
{
	struct tw *t = *state;
	tw_sysctl(t, "net.ipv4.tcp_fastopen_blackhole_timeout_sec", "60");
	warm_cache(t, 1460);
	int fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 100, MSG_FASTOPEN, SERVER), 100);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	expect_syn(t, &c, 100, &cookie, &clen);
	tw_advance(t, 1000);
	expect_syn(t, &c, 0, &cookie, &clen);
	tw_advance(t, 1000);
	expect_syn(t, &c, 0, &cookie, &clen);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenBlackhole"), 0);
	tw_advance(t, 1000); /* the third timeout: paused */
	expect_syn(t, &c, 0, &cookie, &clen);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenBlackhole"), 1);
	assert_int_equal(tw_counter(t, "TcpExtTCPFastOpenActiveFail"), 1);
	assert_int_equal(ustack_close(t->st, fd), 0);
	fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 100, MSG_FASTOPEN, SERVER), -1);
	assert_int_equal(errno, EINPROGRESS);
	expect_syn(t, &c, 0, &cookie, &clen);
	assert_null(cookie);
	assert_int_equal(ustack_close(t->st, fd), 0);
	tw_advance(t, 60000); /* the pause is over: the cookie is used again */
	while (t->count)
		tw_expect_tcp(t);
	fd = client_socket(t);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 100, MSG_FASTOPEN, SERVER), 100);
	expect_syn(t, &c, 100, &cookie, &clen);
	assert_int_equal(clen, 4);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

static void test_fastopen_connect_defers_to_write(void **state)
{
	struct tw *t = *state;
	int one = 1;
	/* no cookie yet: connect() asks for one, as a normal non-blocking connect */
	int fd = client_socket(t);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)), 0);
	assert_int_equal(ustack_connect(t->st, fd, SERVER), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_conn c;
	const uint8_t *cookie;
	size_t clen;
	expect_syn(t, &c, 0, &cookie, &clen);
	assert_non_null(cookie);
	assert_int_equal(clen, 0);
	send_synack(t, &c, 0, 1460, srv_cookie, sizeof(srv_cookie));
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 0);
	abort_close(t, fd);
	tw_expect_tcp(t);
	/* with one: connect() returns 0 and sends nothing; the socket is writable; the write
	 * sends the SYN with its data */
	fd = client_socket(t);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)), 0);
	assert_int_equal(ustack_connect(t->st, fd, SERVER), 0);
	tw_expect_none(t);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_int_equal(ustack_connect(t->st, fd, SERVER), -1);
	assert_int_equal(errno, EISCONN);
	assert_int_equal(ustack_write(t->st, fd, payload, 100), 100);
	expect_syn(t, &c, 100, &cookie, &clen);
	assert_int_equal(clen, 4);
	send_synack(t, &c, 100, 1460, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK, 100, 0, 0);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_ESTABLISHED);
	abort_close(t, fd);
}

static void test_client_errnos(void **state)
{
	struct tw *t = *state;
	int one = 1, fd = client_socket(t);
	struct sockaddr_in unspec = { .sin_family = AF_UNSPEC };
	assert_int_equal(ustack_sendto(t->st, fd, payload, 10, MSG_FASTOPEN, (struct sockaddr *)&unspec,
				       sizeof(unspec)), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(ustack_sendto(t->st, fd, payload, 10, MSG_FASTOPEN, NULL, 0), -1);
	assert_int_equal(errno, EINVAL); /* no address to connect to */
	int two = 2;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &two, sizeof(two)), -1);
	assert_int_equal(errno, EINVAL);
	tw_sysctl(t, "net.ipv4.tcp_fastopen", "0");
	assert_int_equal(ustack_sendto(t->st, fd, payload, 10, MSG_FASTOPEN, SERVER), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)), -1);
	assert_int_equal(errno, EOPNOTSUPP);
	int neg = -1;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN, &neg, sizeof(neg)), -1);
	assert_int_equal(errno, EINVAL);
	/* TCP_FASTOPEN_KEY: 16 or 32 bytes, read back as set */
	uint8_t key[32] = { 1, 2, 3 }, out[40];
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key, 3), -1);
	assert_int_equal(errno, EINVAL);
	socklen_t ol = sizeof(out);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, out, &ol), 0);
	assert_int_equal(ol, 0);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key, 32), 0);
	ol = sizeof(out);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, out, &ol), 0);
	assert_int_equal(ol, 32);
	assert_memory_equal(out, key, 32);
	tw_expect_none(t);
	assert_int_equal(ustack_close(t->st, fd), 0);
}

static void test_key_sysctl_format(void **state)
{
	struct tw *t = *state;
	char buf[128];
	/* zeros until a key exists; the first Fast Open listener makes a random one */
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_fastopen_key", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "00000000-00000000-00000000-00000000");
	tw_sysctl(t, "net.ipv4.tcp_fastopen", "3");
	int fd = client_socket(t), q = 4;
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_TCP, TCP_FASTOPEN, &q, sizeof(q)), 0);
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_fastopen_key", buf, sizeof(buf)), 0);
	assert_string_not_equal(buf, "00000000-00000000-00000000-00000000");
	/* %x words, as sscanf_key reads them: short forms and 0x are taken, printed in full */
	tw_sysctl(t, "net.ipv4.tcp_fastopen_key", "1-0x2-a-ffffffff");
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_fastopen_key", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "00000001-00000002-0000000a-ffffffff");
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.tcp_fastopen_key", "1-2-3"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.tcp_fastopen_key", KEY ",zz"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.tcp_fastopen_key", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "00000001-00000002-0000000a-ffffffff"); /* a failed write changes nothing */
	assert_int_equal(ustack_close(t->st, fd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_cookie_is_linuxs),
		cmocka_unit_test_setup_teardown(test_cookie_request_gets_linux_cookie, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_good_cookie_child_before_final_ack, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_child_synack_retransmitted, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_bad_cookie_normal_handshake, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_backup_key_accepted, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_queue_limit_and_reset_children, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_listener_enabling_and_syn_cookies, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_icmp_errors_for_requests_and_children, tw_setup_learned,
						tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_cookie_then_data_in_syn, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_data_not_acked_is_resent, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_metrics_show_and_flush, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_unacked_syn_data_stays_lost, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_resent_syn_is_plain, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_blackhole_pause, tw_setup_peer, tw_teardown),
		cmocka_unit_test_setup_teardown(test_fastopen_connect_defers_to_write, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_client_errnos, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_key_sysctl_format, tw_setup_learned, tw_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
