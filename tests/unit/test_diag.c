/* The diag snapshot (ss's view): listeners with their queues, connections in their states, a
 * request socket as SYN-RECV, TIME_WAIT, timers, and a buffer too small. */
#include "testwire.h"
#include <ustack/diag.h>
#include <ustack/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>

static const struct ustack_diag_sock *find(const struct ustack_diag_sock *v, int n, int state, uint16_t lport,
					   uint16_t rport)
{
	for (int i = 0; i < n; i++)
		if (v[i].state == state && v[i].lport == lport && v[i].rport == rport)
			return &v[i];
	fail_msg("no socket in state %d %u -> %u", state, lport, rport);
	return NULL;
}

/* one the peer's SYN from sport to port made, answered with an ACK: in the accept queue */
static void handshake(struct tw *t, uint16_t sport, uint16_t port, int complete)
{
	uint8_t f[128];
	while (t->count) /* what the DUT sent before: not this test's subject */
		tw_expect(t);
	tw_send(t, f, tw_tcp(f, sport, port, 5000, 0, TW_SYN, 65535, NULL, 0));
	struct tw_seg s = tw_expect_tcp(t);
	assert_int_equal(s.flags, TW_SYN | TW_ACK);
	if (complete)
		tw_send(t, f, tw_tcp(f, sport, port, 5001, s.seq + 1, TW_ACK, 65535, NULL, 0));
}

static void test_snapshot(void **state)
{
	struct tw *t = *state;
	struct tw_conn c, c2;
	tw_accept_conn(t, &c, 80, NULL, 0);  /* listener on 80, ESTABLISHED 192.0.2.2:80 - :40000 */
	tw_accept_conn(t, &c2, 81, NULL, 0); /* listener on 81, the connection goes to TIME_WAIT */

	/* conn 1: 5 bytes unread, 3 bytes unacknowledged */
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 65535, "hello", 5);
	assert_int_equal(ustack_send(t->st, c.fd, "abc", 3, 0), 3);
	/* conn 2: we close first; the peer's FIN+ACK puts us in TIME_WAIT */
	assert_int_equal(ustack_close(t->st, c2.fd), 0);
	tw_peer_send(t, &c2, 0, 1, TW_FIN | TW_ACK, 65535, NULL, 0);
	/* a request socket (40001) and a child waiting for accept() (40002) on 80 */
	handshake(t, 40001, 80, 0);
	handshake(t, 40002, 80, 1);

	struct ustack_diag_sock v[16];
	size_t total = 0;
	int n = ustack_diag_snapshot(t->st, v, 16, &total);
	assert_int_equal(n, 6);
	assert_int_equal(total, 6);

	const struct ustack_diag_sock *l = find(v, n, TCP_LISTEN, 80, 0);
	assert_int_equal(l->recv_q, 1); /* the accept queue */
	assert_int_equal(l->send_q, 8); /* the backlog */
	assert_int_equal(l->syn_qlen, 1);
	assert_int_equal(l->fd, c.lfd);
	assert_int_equal(l->laddr.s_addr, 0);
	assert_int_equal(l->timer, USTACK_DIAG_TIMER_OFF);
	l = find(v, n, TCP_LISTEN, 81, 0);
	assert_int_equal(l->recv_q, 0);

	const struct ustack_diag_sock *e = find(v, n, TCP_ESTABLISHED, 80, 40000);
	assert_int_equal(ntohl(e->laddr.s_addr), TW_DUT_IP);
	assert_int_equal(ntohl(e->raddr.s_addr), TW_PEER_IP);
	assert_int_equal(e->fd, c.fd);
	assert_int_equal(e->recv_q, 5);
	assert_int_equal(e->send_q, 3);
	assert_true(e->has_info);
	assert_int_equal(e->info.tcpi_state, TCP_ESTABLISHED);
	assert_int_equal(e->info.tcpi_bytes_received, 5);
	assert_string_equal(e->cong, "cubic");
	assert_int_equal(e->timer, USTACK_DIAG_TIMER_ON); /* the RTO for "abc" */
	assert_true(e->expires_ms > 0 && e->expires_ms <= e->info.tcpi_rto / 1000);
	assert_int_equal(e->skmem.rmem_alloc, 5);
	assert_int_equal(e->skmem.wmem_queued, 3);

	const struct ustack_diag_sock *child = find(v, n, TCP_ESTABLISHED, 80, 40002);
	assert_int_equal(child->fd, -1); /* not accepted yet */

	const struct ustack_diag_sock *r = find(v, n, TCP_SYN_RECV, 80, 40001);
	assert_true(r->is_request);
	assert_false(r->has_info);
	assert_int_equal(ntohl(r->raddr.s_addr), TW_PEER_IP);
	assert_int_equal(r->timer, USTACK_DIAG_TIMER_ON); /* the SYN-ACK's retransmission, 1 s */
	assert_int_equal(r->expires_ms, 1000);
	assert_int_equal(r->retrans, 0);

	const struct ustack_diag_sock *w = find(v, n, TCP_TIME_WAIT, 81, 40000);
	assert_int_equal(w->fd, -1);
	assert_int_equal(w->timer, USTACK_DIAG_TIMER_TIMEWAIT);
	assert_int_equal(w->expires_ms, 60000);
	assert_false(w->has_info);

	/* time passes: the timers count down, the SYN-ACK is resent */
	tw_advance(t, 1000);
	n = ustack_diag_snapshot(t->st, v, 16, &total);
	r = find(v, n, TCP_SYN_RECV, 80, 40001);
	assert_int_equal(r->retrans, 1);
	assert_int_equal(r->expires_ms, 2000);
	w = find(v, n, TCP_TIME_WAIT, 81, 40000);
	assert_int_equal(w->expires_ms, 59000);

	/* a buffer too small: what fits, and how many there are */
	n = ustack_diag_snapshot(t->st, v, 2, &total);
	assert_int_equal(n, 2);
	assert_int_equal(total, 6);
	n = ustack_diag_snapshot(t->st, NULL, 0, &total);
	assert_int_equal(n, 0);
	assert_int_equal(total, 6);
	assert_int_equal(ustack_diag_snapshot(t->st, NULL, 1, NULL), -1);
	assert_int_equal(errno, EINVAL);
}

/*
 * A connect in progress, as Linux's ss -ti state syn-sent shows it (checked against 6.18):
 * "0 1 ... timer:(on,1000ms,0) cubic rto:1000 mss:524 pmtu:1500 rcvmss:88 advmss:1460 cwnd:10
 * segs_out:1 unacked:1 rcv_ssthresh:64240" — Send-Q is the SYN; nothing negotiated yet; the
 * MSS is TCP_MSS_DEFAULT less the timestamp option; after an RTO, the Loss state.  TCP_INFO
 * by getsockopt says the same.
 */
static void test_syn_sent(void **state)
{
	struct tw *t = *state;
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN);

	struct ustack_diag_sock v[4];
	size_t total = 0;
	int n = ustack_diag_snapshot(t->st, v, 4, &total);
	assert_int_equal(n, 1);
	const struct ustack_diag_sock *d = &v[0];
	assert_int_equal(d->state, TCP_SYN_SENT);
	assert_int_equal(d->recv_q, 0);
	assert_int_equal(d->send_q, 1); /* the SYN */
	assert_int_equal(d->timer, USTACK_DIAG_TIMER_ON);
	assert_int_equal(d->expires_ms, 1000);
	const struct ustack_tcp_info *i = &d->info;
	assert_int_equal(i->tcpi_state, TCP_SYN_SENT);
	assert_int_equal(i->tcpi_options, 0);
	assert_int_equal(i->tcpi_snd_wscale, 0);
	assert_int_equal(i->tcpi_rcv_wscale, 0);
	assert_int_equal(i->tcpi_snd_mss, 524);
	assert_int_equal(i->tcpi_rcv_mss, 88);
	assert_int_equal(i->tcpi_advmss, 1460);
	assert_int_equal(i->tcpi_snd_cwnd, 10);
	assert_int_equal(i->tcpi_snd_ssthresh, 0x7fffffff);
	assert_int_equal(i->tcpi_unacked, 1);
	assert_int_equal(i->tcpi_segs_out, 1);
	assert_int_equal(i->tcpi_retrans, 0);
	assert_int_equal(i->tcpi_ca_state, 0);
	assert_int_equal(i->tcpi_rcv_space, 0);
	assert_int_equal(i->tcpi_rcv_ssthresh, syn.win); /* unscaled in a SYN */
	struct ustack_tcp_info g;
	socklen_t glen = sizeof(g);
	assert_int_equal(ustack_getsockopt(t->st, fd, IPPROTO_TCP, TCP_INFO, &g, &glen), 0);
	assert_int_equal(g.tcpi_snd_mss, 524);
	assert_int_equal(g.tcpi_unacked, 1);

	/* the SYN is resent after 1 s: Loss, one lost and one retransmitted, two sent */
	tw_advance(t, 1000);
	syn = tw_expect_tcp(t);
	assert_int_equal(syn.flags, TW_SYN);
	n = ustack_diag_snapshot(t->st, v, 4, &total);
	assert_int_equal(n, 1);
	assert_int_equal(d->send_q, 1);
	assert_int_equal(d->retrans, 1);
	assert_int_equal(i->tcpi_ca_state, 4); /* TCP_CA_Loss */
	assert_int_equal(i->tcpi_lost, 1);
	assert_int_equal(i->tcpi_retrans, 1);
	assert_int_equal(i->tcpi_total_retrans, 1);
	assert_int_equal(i->tcpi_segs_out, 2);
	assert_int_equal(i->tcpi_unacked, 1);
	ustack_close(t->st, fd);
}

/*
 * The dump walks the established hash bucket by bucket, as Linux's inet_diag does, and the
 * local port is added to the 4-tuple's hash, not mixed into it (Linux 6.15, "inet: change lport
 * contribution to inet_ehashfn()"): a client's connections to one server, from ports a few
 * apart, sit in buckets as far apart, so ss lists them in port order — from where the bucket
 * index wraps round.  With the port mixed in, their order would be the hash's, random.
 */
static void test_dump_order_follows_ports(void **state)
{
	struct tw *t = *state;
	enum { N = 16 };
	for (int i = 0; i < N; i++) {
		int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80),
					 .sin_addr.s_addr = htonl(TW_PEER_IP) };
		assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
		assert_int_equal(errno, EINPROGRESS);
		assert_int_equal(tw_expect_tcp(t).flags, TW_SYN);
	}
	struct ustack_diag_sock v[N + 1];
	int n = ustack_diag_snapshot(t->st, v, N + 1, NULL);
	assert_int_equal(n, N);
	/* ports 2 to 16 apart (RFC 6056 algorithm 4's step and Linux's random advance), so the 16
	 * span 30 to 240 ports, within one turn of the table (16 entries keep it at its first 256
	 * buckets): some rotation of the bucket index sorts them.  The test stack's secrets come from
	 * a fixed seed (tw_init), so the ports are the same every run and do not wrap round the end
	 * of the ephemeral range, which would break the order. */
	int rotations = 0;
	for (unsigned c = 0; c < 256; c++) {
		int sorted = 1;
		for (int i = 1; i < n && sorted; i++)
			sorted = ((v[i - 1].lport + c) & 255) <= ((v[i].lport + c) & 255);
		rotations += sorted;
	}
	assert_true(rotations > 0);
	for (int i = 1; i < n; i++)
		assert_int_not_equal(v[i - 1].lport, v[i].lport);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(ustack_diag_state_name(TCP_ESTABLISHED), "ESTAB");
	assert_string_equal(ustack_diag_state_name(TCP_SYN_SENT), "SYN-SENT");
	assert_string_equal(ustack_diag_state_name(TCP_SYN_RECV), "SYN-RECV");
	assert_string_equal(ustack_diag_state_name(TCP_FIN_WAIT1), "FIN-WAIT-1");
	assert_string_equal(ustack_diag_state_name(TCP_TIME_WAIT), "TIME-WAIT");
	assert_string_equal(ustack_diag_state_name(TCP_LISTEN), "LISTEN");
	assert_string_equal(ustack_diag_state_name(TCP_CLOSE), "UNCONN");
	assert_string_equal(ustack_diag_state_name(99), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_syn_sent, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_dump_order_follows_ports, tw_setup_learned, tw_teardown),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
