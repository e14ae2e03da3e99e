/*
 * ICMP errors reaching TCP (tcp_v4_err): hard errors end a connection attempt with their errno,
 * soft ones wait for a timeout, fragmentation-needed lowers the path MTU and resends in
 * smaller segments, quotes with a sequence number outside the window are ignored (RFC 5927),
 * and a neighbour that never answers ends connect() with EHOSTUNREACH, as Linux's
 * ipv4_link_failure does.
 */
#include "testwire.h"
#include <ustack/socket.h>

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <string.h>

static uint8_t f[TW_FRAME_MAX];
static uint8_t last_ip[TW_FRAME_MAX]; /* the IP packet of the DUT's last segment */
static size_t last_ip_len;

static struct tw_seg expect_kept(struct tw *t)
{
	struct tw_seg s = tw_expect_tcp(t);
	struct tw_frame *fr = &t->out[(t->head + TW_MAX_FRAMES - 1) % TW_MAX_FRAMES];
	last_ip_len = fr->len - ETH;
	memcpy(last_ip, fr->b + ETH, last_ip_len);
	return s;
}

/* An ICMP error from `from` about the DUT's last segment, quoting its IP header and the first
 * 8 bytes of TCP (RFC 792's minimum); seq_delta shifts the quoted sequence number. */
static size_t icmp_err(uint8_t *fr, uint32_t from, uint8_t type, uint8_t code, uint16_t mtu, int32_t seq_delta)
{
	tw_eth(fr, TW_DUT_MAC, TW_PEER_MAC, 0x0800);
	uint8_t *icmp = fr + 34;
	memset(icmp, 0, 8);
	icmp[0] = type;
	icmp[1] = code;
	tw_wr16(icmp + 6, mtu);
	memcpy(icmp + 8, last_ip, 28);
	tw_wr32(icmp + 8 + 24, tw_rd32(last_ip + 24) + (uint32_t)seq_delta);
	tw_wr16(icmp + 2, tw_csum(icmp, 36));
	tw_ip_hdr(fr + 14, 1, from, TW_DUT_IP, 20 + 36, 0x3333, 0, 64);
	return 34 + 36;
}

/* A connection the peer opened, its SYN offering MSS 1460 alone. */
static void accept_conn(struct tw *t, struct tw_conn *c)
{
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460);
	tw_accept_conn(t, c, 80, mss.b, mss.len);
}

/* A non-blocking connect to ip:80, with IP_RECVERR set first if asked. */
static int connect_nb_recverr(struct tw *t, uint32_t ip, int recverr)
{
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(ustack_setsockopt(t->st, fd, IPPROTO_IP, IP_RECVERR, &recverr, sizeof(recverr)), 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(ip) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	return fd;
}

static int connect_nb(struct tw *t, uint32_t ip)
{
	return connect_nb_recverr(t, ip, 0);
}

static int so_error(struct tw *t, int fd)
{
	int e = -1;
	socklen_t len = sizeof(e);
	assert_int_equal(ustack_getsockopt(t->st, fd, SOL_SOCKET, SO_ERROR, &e, &len), 0);
	return e;
}

static void test_port_unreachable_refuses_connect(void **state)
{
	struct tw *t = *state;
	int fd = connect_nb(t, TW_PEER_IP);
	assert_int_equal(expect_kept(t).flags, TW_SYN);
	/* a quote whose sequence number is not our SYN's: ignored, counted */
	tw_send(t, f, icmp_err(f, TW_PEER_IP, 3, 3, 0, 12345));
	assert_int_equal(tw_counter(t, "TcpExtOutOfWindowIcmps"), 1);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	/* the real one: connect() fails with ECONNREFUSED, nothing is sent */
	tw_send(t, f, icmp_err(f, TW_PEER_IP, 3, 3, 0, 0));
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(so_error(t, fd), ECONNREFUSED);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 1);
	assert_int_equal(tw_counter(t, "IcmpInDestUnreachs"), 2);
	/* no timer left behind */
	tw_advance(t, 5000);
	tw_expect_none(t);
}

static void test_soft_error_reported_on_timeout(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	accept_conn(t, &c);
	int ut = 2000;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut)), 0);
	assert_int_equal(ustack_send(t->st, c.fd, "data", 4, 0), 4);
	expect_kept(t);
	/* host unreachable on an established connection is soft: nothing changes now */
	tw_send(t, f, icmp_err(f, TW_PEER_IP, 3, 1, 0, 0));
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_ESTABLISHED);
	char b;
	assert_int_equal(ustack_recv(t->st, c.fd, &b, 1, 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* but when the connection times out, the error is the ICMP's, not ETIMEDOUT */
	for (int i = 0; i < 300 && ustack_tcp_state(t->st, c.fd) == TCP_ESTABLISHED; i++) {
		tw_advance(t, 10);
		while (t->count)
			tw_expect_tcp(t);
	}
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_CLOSE);
	assert_int_equal(ustack_recv(t->st, c.fd, &b, 1, 0), -1);
	assert_int_equal(errno, EHOSTUNREACH);
}

static void test_frag_needed_resegments(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	accept_conn(t, &c);
	static uint8_t buf[2920];
	assert_int_equal(ustack_send(t->st, c.fd, buf, sizeof(buf), 0), 2920);
	struct tw_seg s = expect_kept(t);
	assert_int_equal(s.plen, 1460);
	assert_true(s.df); /* path MTU discovery: DF on every segment */
	tw_expect_tcp(t);
	/* a router on the path can only forward 1000 bytes: what is outstanding goes again, at
	 * once, in 960-byte segments (1000 − 40), with no congestion response */
	tw_send(t, f, icmp_err(f, TW_FAR_IP, 3, 4, 1000, 0));
	for (uint32_t off = 0; off < 2920; off += 960) {
		s = tw_expect_tcp(t);
		assert_int_equal(s.seq, tw_dut_seq(&c, off));
		assert_int_equal(s.plen, off + 960 <= 2920 ? 960 : 2920 - off);
	}
	tw_expect_none(t);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), 4);
	assert_int_equal(tw_counter(t, "TcpExtTCPTimeouts"), 0);
	int v = 0;
	socklen_t len = sizeof(v);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len), 0);
	assert_int_equal(v, 960);
	/* a lower MTU than Linux's minimum (552) is taken as 552: 512-byte segments */
	assert_int_equal(ustack_send(t->st, c.fd, buf, 1000, 0), 1000);
	expect_kept(t);
	tw_send(t, f, icmp_err(f, TW_FAR_IP, 3, 4, 200, 0));
	while (t->count)
		tw_expect_tcp(t);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len), 0);
	assert_int_equal(v, 512);
	/* a larger "MTU" never raises it */
	tw_send(t, f, icmp_err(f, TW_FAR_IP, 3, 4, 1400, 0));
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len), 0);
	assert_int_equal(v, 512);
}

static void test_truncated_quote_is_an_icmp_error(void **state)
{
	struct tw *t = *state;
	connect_nb(t, TW_PEER_IP);
	expect_kept(t);
	size_t n = icmp_err(f, TW_PEER_IP, 3, 3, 0, 0);
	/* cut the quote to the IP header + 4 bytes: no sequence number to check */
	uint8_t *icmp = f + 34;
	tw_wr16(icmp + 2, 0);
	tw_wr16(icmp + 2, tw_csum(icmp, 32));
	tw_ip_hdr(f + 14, 1, TW_PEER_IP, TW_DUT_IP, 20 + 32, 0x3334, 0, 64);
	tw_send(t, f, n - 4);
	assert_int_equal(tw_counter(t, "IcmpInErrors"), 1);
	assert_int_equal(tw_counter(t, "TcpAttemptFails"), 0);
}

/* An on-link address nobody answers ARP for: the waiting SYNs fail after mcast_solicit (3)
 * requests, a second apart, and connect() ends with EHOSTUNREACH ("No route to host"). */
static void test_unresolved_neighbour_host_unreachable(void **state)
{
	struct tw *t = *state;
	int fd = connect_nb(t, 0xc0000263u); /* 192.0.2.99 */
	struct tw_frame *fr = tw_expect(t);
	assert_int_equal(tw_rd16(fr->b + 12), 0x0806); /* ARP who-has */
	for (int s = 1; s <= 2; s++) {
		tw_advance(t, 1000);
		while (t->count) /* the next ARP request (SYN retransmissions wait in the queue) */
			assert_int_equal(tw_rd16(tw_expect(t)->b + 12), 0x0806);
	}
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	tw_advance(t, 1000);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(so_error(t, fd), EHOSTUNREACH);
	assert_int_equal(tw_counter(t, "IcmpOutDestUnreachs"), tw_counter(t, "arp_cache.unresolved_discards"));
}

/* IP_RECVERR: the ICMP error that ends a connection attempt also waits on the error queue
 * (ip_icmp_error): POLLERR; recvmsg(MSG_ERRQUEUE) gives the quote from the TCP header on,
 * the address the SYN went to, and struct sock_extended_err with the ICMP's type, code and
 * sender (SO_EE_OFFENDER); taking it clears the pending error (sock_dequeue_err_skb). */
static void test_recverr_queues_connect_error(void **state)
{
	struct tw *t = *state;
	int fd = connect_nb_recverr(t, TW_PEER_IP, 1);
	struct tw_seg syn = expect_kept(t);
	tw_send(t, f, icmp_err(f, 0xc0000209u, 3, 3, 0, 0));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_true(p.revents & POLLERR);
	uint8_t data[64], ctl[256];
	struct sockaddr_in from;
	struct iovec iov = { data, sizeof(data) };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	assert_int_equal(ustack_recvmsg(t->st, fd, &m, MSG_ERRQUEUE), 8);
	assert_int_equal(m.msg_flags, MSG_ERRQUEUE);
	assert_int_equal(tw_rd16(data), syn.sport); /* the quoted TCP header */
	assert_int_equal(tw_rd16(data + 2), 80);
	assert_int_equal(m.msg_namelen, sizeof(from));
	assert_int_equal(ntohl(from.sin_addr.s_addr), TW_PEER_IP);
	assert_int_equal(ntohs(from.sin_port), 80);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_level, SOL_IP);
	assert_int_equal(cm->cmsg_type, IP_RECVERR);
	struct sock_extended_err ee;
	memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
	assert_int_equal(ee.ee_errno, ECONNREFUSED);
	assert_int_equal(ee.ee_origin, SO_EE_ORIGIN_ICMP);
	assert_int_equal(ee.ee_type, 3);
	assert_int_equal(ee.ee_code, 3);
	struct sockaddr_in off;
	memcpy(&off, CMSG_DATA(cm) + sizeof(ee), sizeof(off));
	assert_int_equal(off.sin_family, AF_INET);
	assert_int_equal(ntohl(off.sin_addr.s_addr), 0xc0000209u);
	assert_null(CMSG_NXTHDR(&m, cm));
	assert_int_equal(so_error(t, fd), 0); /* the queue's error was the pending one */
	assert_int_equal(ustack_recvmsg(t->st, fd, &m, MSG_ERRQUEUE), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(ustack_poll(t->st, &p, 1, 0), 1);
	assert_false(p.revents & POLLERR);
	/* without IP_RECVERR nothing is queued */
	int fd2 = connect_nb(t, TW_PEER_IP);
	expect_kept(t);
	tw_send(t, f, icmp_err(f, 0xc0000209u, 3, 3, 0, 0));
	assert_int_equal(ustack_recvmsg(t->st, fd2, &m, MSG_ERRQUEUE), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(so_error(t, fd2), ECONNREFUSED);
}

/* IP_RECVERR on a connected socket makes every ICMP error hard at once (tcp_v4_err: sk_err,
 * not sk_err_soft): the next call reports it; the connection itself goes on. */
static void test_recverr_established_errors_are_hard(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	accept_conn(t, &c);
	int on = 1;
	assert_int_equal(ustack_setsockopt(t->st, c.fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)), 0);
	assert_int_equal(ustack_send(t->st, c.fd, "data", 4, 0), 4);
	expect_kept(t);
	tw_send(t, f, icmp_err(f, TW_PEER_IP, 3, 1, 0, 0));
	char b;
	assert_int_equal(ustack_recv(t->st, c.fd, &b, 1, 0), -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_int_equal(ustack_tcp_state(t->st, c.fd), TCP_ESTABLISHED);
	assert_int_equal(ustack_recv(t->st, c.fd, &b, 1, 0), -1);
	assert_int_equal(errno, EAGAIN); /* reported once */
	uint8_t ctl[128];
	struct msghdr m = { .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	assert_int_equal(ustack_recvmsg(t->st, c.fd, &m, MSG_ERRQUEUE), -1); /* nothing queued */
	assert_int_equal(errno, EAGAIN);
}

/*
 * The same port unreachable sent to 192.0.2.255: icmp_rcv counts it an error (IcmpInErrors,
 * beside IcmpInDestUnreachs) and hands it to no socket, since only echo and timestamp
 * requests and address masks may come to a broadcast address — measured on Linux 6.18 over a
 * veth.  An unreachable sent to every station aborts no connect().
 */
static void test_broadcast_unreachable_aborts_nothing(void **state)
{
	struct tw *t = *state;
	int fd = connect_nb(t, TW_PEER_IP);
	assert_int_equal(expect_kept(t).flags, TW_SYN);
	size_t n = icmp_err(f, TW_PEER_IP, 3, 3, 0, 0);
	memset(f, 0xff, 6);
	tw_ip_hdr(f + 14, 1, TW_PEER_IP, 0xc00002ff, 20 + 36, 0x3333, 0, 64); /* to 192.0.2.255 */
	tw_send(t, f, n);
	tw_expect_none(t);
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_SYN_SENT);
	assert_int_equal(tw_counter(t, "IcmpInErrors"), 1);
	assert_int_equal(tw_counter(t, "IcmpInDestUnreachs"), 1);
	assert_int_equal(tw_counter(t, "IpExtInBcastPkts"), 1);
	/* to our own address it refuses the connect */
	tw_send(t, f, icmp_err(f, TW_PEER_IP, 3, 3, 0, 0));
	assert_int_equal(ustack_tcp_state(t->st, fd), TCP_CLOSE);
	assert_int_equal(so_error(t, fd), ECONNREFUSED);
	assert_int_equal(tw_counter(t, "IcmpInDestUnreachs"), 2);
	assert_int_equal(tw_counter(t, "IcmpInErrors"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_port_unreachable_refuses_connect),
		T(test_broadcast_unreachable_aborts_nothing),
		T(test_soft_error_reported_on_timeout),
		T(test_frag_needed_resegments),
		T(test_truncated_quote_is_an_icmp_error),
		T(test_unresolved_neighbour_host_unreachable),
		T(test_recverr_queues_connect_error),
		T(test_recverr_established_errors_are_hard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
