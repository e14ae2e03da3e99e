/*
 * Linux's TCP tracepoints (include/trace/events/tcp.h, 6.18) as ustack fires them: under their
 * names, where Linux fires them, as often, with the tracepoint's TP_printk fields as the
 * event's detail — tcp_probe, tcp_receive_reset, tcp_destroy_sock, tcp_rcv_space_adjust,
 * tcp_retransmit_synack, tcp_send_reset, tcp_retransmit_skb — and, through the control socket,
 * the lines `ustack trace` prints from them (trace-cmd report's layout).
 *
 * The DUT is 192.0.2.2; the peer (192.0.2.1) opens connections from port 40000 to port 80.
 */
#include "testwire.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/diag.h>
#include <ustack/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PORT 80
#define ADDRS "saddr=192.0.2.2 daddr=192.0.2.1 saddrv6=::ffff:192.0.2.2 daddrv6=::ffff:192.0.2.1"

/* ---- what the subscriber saw: every step event, its detail copied ---------------------- */

#define REC_MAX 512
struct rec_ev {
	char name[40];
	char detail[512];
	int old_state, new_state;
	uint16_t lport, rport;
};
static struct rec_ev recs[REC_MAX];
static int nrecs;

static void record(void *arg, const struct ustack_trace_event *ev)
{
	(void)arg;
	if (ev->kind != USTACK_TRACE_STEP || nrecs == REC_MAX)
		return;
	struct rec_ev *r = &recs[nrecs++];
	snprintf(r->name, sizeof(r->name), "%s", ev->name);
	snprintf(r->detail, sizeof(r->detail), "%s", ev->detail ? ev->detail : "");
	r->old_state = ev->old_state;
	r->new_state = ev->new_state;
	r->lport = ev->lport;
	r->rport = ev->rport;
}

static int subscribe(struct tw *t)
{
	nrecs = 0;
	int id = ustack_trace_subscribe(t->st, record, NULL);
	assert_true(id >= 0);
	return id;
}

static int count(const char *name)
{
	int n = 0;
	for (int i = 0; i < nrecs; i++)
		n += !strcmp(recs[i].name, name);
	return n;
}

/* The nth (from 0) event of that name; fails the test if there is none. */
static const struct rec_ev *nth(const char *name, int k)
{
	for (int i = 0; i < nrecs; i++)
		if (!strcmp(recs[i].name, name) && k-- == 0)
			return &recs[i];
	fail_msg("no event %s", name);
	return NULL;
}

/* detail must be prefix followed by "sock_cookie=HEX" and nothing else; returns the cookie */
static unsigned long long expect_sk_event(const struct rec_ev *e, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(e->detail, prefix, n))
		fail_msg("%s: got \"%s\", wanted \"%s...\"", e->name, e->detail, prefix);
	const char *c = e->detail + n;
	assert_memory_equal(c, "sock_cookie=", 12);
	char *end;
	unsigned long long cookie = strtoull(c + 12, &end, 16);
	assert_true(cookie != 0);
	assert_string_equal(end, "");
	return cookie;
}

static void establish(struct tw *t, struct tw_conn *c)
{
	struct tw_opts mss = { 0 };
	tw_opt_mss(&mss, 1460); /* no timestamps, no SACK: every segment predictable */
	tw_accept_conn(t, c, PORT, mss.b, mss.len);
}

/* ---- tcp_receive_reset, tcp_probe, tcp_destroy_sock --------------------------------- */

/* A RST at rcv_nxt: tcp_rcv_established's tcp_probe for it, then tcp_reset's
 * tcp_receive_reset — once each; closing the socket then destroys it (tcp_v4_destroy_sock),
 * once, and the listener after it. */
static void test_receive_reset_once(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	int id = subscribe(t);
	establish(t, &c);
	/* the handshake's last ACK goes to a child that Linux holds in SYN_RECV: no probe */
	assert_int_equal(count("tcp_probe"), 0);
	nrecs = 0;
	tw_peer_send(t, &c, 0, 0, TW_RST, 0, NULL, 0);
	tw_expect_none(t);
	assert_int_equal(count("tcp_probe"), 1);
	assert_int_equal(count("tcp_receive_reset"), 1);
	assert_int_equal(count("tcp_send_reset"), 0);
	const struct rec_ev *e = nth("tcp_receive_reset", 0);
	assert_int_equal(e->old_state, TCP_ESTABLISHED);
	assert_int_equal(e->lport, PORT);
	assert_int_equal(e->rport, 40000);
	unsigned long long cookie = expect_sk_event(e, "family=AF_INET sport=80 dport=40000 " ADDRS " ");
	assert_int_equal(count("tcp_destroy_sock"), 0); /* the application still holds it */

	assert_int_equal(ustack_close(t->st, c.fd), 0);
	assert_int_equal(count("tcp_destroy_sock"), 1);
	/* the same socket: the same cookie, for its whole life */
	assert_int_equal(expect_sk_event(nth("tcp_destroy_sock", 0), "family=AF_INET sport=80 dport=40000 " ADDRS " "),
			 cookie);
	assert_int_equal(ustack_close(t->st, c.lfd), 0);
	assert_int_equal(count("tcp_destroy_sock"), 2);
	unsigned long long lcookie = expect_sk_event(nth("tcp_destroy_sock", 1),
						     "family=AF_INET sport=80 dport=0 saddr=0.0.0.0 daddr=0.0.0.0 "
						     "saddrv6=::ffff:0.0.0.0 daddrv6=::ffff:0.0.0.0 ");
	assert_true(lcookie != cookie);
	ustack_trace_unsubscribe(t->st, id);
}

/* The paths that end a connection on a RST without tcp_reset's error choice still fire it: a
 * refused connect (SYN_SENT); before that, an unacceptable SYN-ACK is reset
 * (tcp_send_reset from tcp_v4_send_reset, TCP_INVALID_ACK_SEQUENCE). */
static void test_refused_connect(void **state)
{
	struct tw *t = *state;
	int id = subscribe(t);
	int fd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(TW_PEER_IP) };
	assert_int_equal(ustack_connect(t->st, fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EINPROGRESS);
	struct tw_seg syn = tw_expect_tcp(t);
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, 80, syn.sport, 7777, syn.seq + 1000, TW_SYN | TW_ACK, 1000, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST);
	assert_int_equal(count("tcp_send_reset"), 1);
	char want[256];
	snprintf(want, sizeof(want), " skaddr=%p src=192.0.2.2:%u dest=192.0.2.1:80 state=TCP_SYN_SENT "
		 "reason=TCP_INVALID_ACK_SEQUENCE", (void *)sock_lookup_fd(t->st, fd), syn.sport);
	const char *d = nth("tcp_send_reset", 0)->detail;
	assert_memory_equal(d, "skbaddr=0x", 10); /* the segment that caused it */
	assert_non_null(strstr(d, want));
	assert_string_equal(strstr(d, want), want);
	/* a RST without ACK is not for SYN_SENT to honour; one acknowledging the SYN is */
	tw_send(t, f, tw_tcp(f, 80, syn.sport, 0, 0, TW_RST, 0, NULL, 0));
	assert_int_equal(count("tcp_receive_reset"), 0);
	tw_send(t, f, tw_tcp(f, 80, syn.sport, 0, syn.seq + 1, TW_RST | TW_ACK, 0, NULL, 0));
	assert_int_equal(count("tcp_receive_reset"), 1);
	const struct rec_ev *e = nth("tcp_receive_reset", 0);
	assert_int_equal(e->old_state, TCP_SYN_SENT);
	char prefix[160];
	snprintf(prefix, sizeof(prefix), "family=AF_INET sport=%u dport=80 " ADDRS " ", syn.sport);
	expect_sk_event(e, prefix);
	assert_int_equal(count("tcp_probe"), 0); /* nothing arrived in ESTABLISHED */
	ustack_trace_unsubscribe(t->st, id);
}

/* ---- tcp_retransmit_synack ----------------------------------------------------------- */

/* Every SYN-ACK sent again — by the request's timer, or for the peer's SYN again — fires
 * tcp_retransmit_synack (tcp_rtx_synack); none is a tcp_retransmit_skb, and nothing is
 * called tcp_rtx_synack any more. */
static void test_retransmit_synack(void **state)
{
	struct tw *t = *state;
	int lfd = ustack_socket(t->st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	assert_int_equal(ustack_bind(t->st, lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(ustack_listen(t->st, lfd, 8), 0);
	int id = subscribe(t);
	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, 50003, PORT, 1000, 0, TW_SYN, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ACK);
	assert_int_equal(count("tcp_retransmit_synack"), 0); /* the first is no retransmission */
	tw_advance(t, 1000);
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ACK);
	assert_int_equal(count("tcp_retransmit_synack"), 1);
	const struct rec_ev *e = nth("tcp_retransmit_synack", 0);
	assert_string_equal(e->detail, "family=AF_INET sport=80 dport=50003 " ADDRS);
	assert_int_equal(e->lport, PORT);
	assert_int_equal(e->rport, 50003);
	/* the peer's SYN again (past tcp_invalid_ratelimit): the SYN-ACK again */
	tw_advance(t, 600);
	tw_send(t, f, tw_tcp(f, 50003, PORT, 1000, 0, TW_SYN, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_SYN | TW_ACK);
	assert_int_equal(count("tcp_retransmit_synack"), 2);
	assert_int_equal(count("tcp_retransmit_synack"), (int)tw_counter(t, "TcpExtTCPSynRetrans"));
	assert_int_equal(count("tcp_retransmit_skb"), 0);
	assert_int_equal(count("tcp_rtx_synack"), 0);
	ustack_trace_unsubscribe(t->st, id);
}

/* ---- tcp_retransmit_skb -------------------------------------------------------------- */

/* Once per segment resent, not once per RTO: three segments lost, the RTO resends the first
 * (cwnd 1), its ACK lets the other two go — three tcp_retransmit_skb, as TcpRetransSegs. */
static void test_retransmit_skb_per_segment(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	static uint8_t data[3 * 1460];
	memset(data, 'x', sizeof(data));
	int id = subscribe(t);
	assert_int_equal(ustack_send(t->st, c.fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 1460);
	tw_expect_seg(t, &c, TW_ACK, 1460, 0, 1460);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 2920, 0, 1460);
	assert_int_equal(count("tcp_retransmit_skb"), 0); /* first transmissions */
	for (int ms = 0; ms < 3000 && !t->count; ms += 10)
		tw_advance(t, 10);
	tw_expect_seg(t, &c, TW_ACK, 0, 0, 1460);
	tw_expect_none(t);
	assert_int_equal(count("tcp_retransmit_skb"), 1);
	char want[256];
	snprintf(want, sizeof(want), "skbaddr=(nil) skaddr=%p family=AF_INET sport=80 dport=40000 " ADDRS
		 " state=TCP_ESTABLISHED err=0", (void *)sock_lookup_fd(t->st, c.fd));
	assert_string_equal(nth("tcp_retransmit_skb", 0)->detail, want);
	tw_peer_send(t, &c, 0, 1460, TW_ACK, 65535, NULL, 0);
	tw_expect_seg(t, &c, TW_ACK, 1460, 0, 1460);
	tw_expect_seg(t, &c, TW_ACK | TW_PSH, 2920, 0, 1460);
	assert_int_equal(count("tcp_retransmit_skb"), 3);
	assert_int_equal(tw_counter(t, "TcpRetransSegs"), 3);
	ustack_trace_unsubscribe(t->st, id);
}

/* ---- tcp_send_reset ------------------------------------------------------------------ */

/* tcp_v4_send_reset's resets (no socket; a listener's) carry the segment that caused them and
 * the reason; an active reset (close with unread data) none, in TCP_CLOSE as __tcp_close. */
static void test_send_reset(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	int id = subscribe(t);
	uint8_t f[128];
	/* nobody on port 81 */
	tw_send(t, f, tw_tcp(f, 40001, 81, 5000, 0, TW_SYN, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST | TW_ACK);
	assert_int_equal(count("tcp_send_reset"), 1);
	const char *d = nth("tcp_send_reset", 0)->detail;
	assert_memory_equal(d, "skbaddr=0x", 10);
	assert_non_null(strstr(d, " skaddr=(nil) src=192.0.2.2:81 dest=192.0.2.1:40001 state=UNKNOWN reason=NO_SOCKET"));
	assert_string_equal(strstr(d, " skaddr="),
			    " skaddr=(nil) src=192.0.2.2:81 dest=192.0.2.1:40001 state=UNKNOWN reason=NO_SOCKET");
	/* an ACK the listener has no request for: the listener is the socket (0.0.0.0:80, no peer) */
	tw_send(t, f, tw_tcp(f, 40002, PORT, 5000, 12345, TW_ACK, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST);
	assert_int_equal(count("tcp_send_reset"), 2);
	char want[160];
	snprintf(want, sizeof(want), " skaddr=%p src=0.0.0.0:80 dest=0.0.0.0:0 state=TCP_LISTEN reason=TCP_FLAGS",
		 (void *)sock_lookup_fd(t->st, c.lfd));
	assert_string_equal(strstr(nth("tcp_send_reset", 1)->detail, " skaddr="), want);
	/* data nobody read, then close(): RST, TCP_ABORT_ON_CLOSE */
	tw_peer_send(t, &c, 0, 0, TW_ACK, 65535, "hello", 5);
	tw_advance(t, 200); /* its delayed ACK */
	while (t->count)
		tw_expect_tcp(t);
	snprintf(want, sizeof(want), "skbaddr=(nil) skaddr=%p src=192.0.2.2:80 dest=192.0.2.1:40000 state=TCP_CLOSE "
		 "reason=TCP_ABORT_ON_CLOSE", (void *)sock_lookup_fd(t->st, c.fd));
	assert_int_equal(ustack_close(t->st, c.fd), 0);
	tw_expect_seg(t, &c, TW_RST | TW_ACK, 0, 5, 0);
	assert_int_equal(count("tcp_send_reset"), 3);
	assert_string_equal(nth("tcp_send_reset", 2)->detail, want);
	ustack_trace_unsubscribe(t->st, id);
}

/* Data for an orphan nobody will read: Linux's tcp_rcv_state_process calls tcp_reset
 * (tcp_receive_reset), the socket is destroyed, then tcp_v4_do_rcv resets the segment with the
 * socket, closed but still held: in that order, the last in TCP_CLOSE, TCP_ABORT_ON_DATA. */
static void test_abort_on_data(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	assert_int_equal(ustack_close(t->st, c.fd), 0);
	tw_expect_seg(t, &c, TW_FIN | TW_ACK, 0, 0, 0);
	int id = subscribe(t);
	tw_peer_send(t, &c, 0, 1, TW_ACK, 65535, "abc", 3);
	tw_expect_seg(t, &c, TW_RST, 1, 0, 0);
	assert_int_equal(tw_counter(t, "TcpExtTCPAbortOnData"), 1);
	int rr = -1, ds = -1, sr = -1;
	for (int i = 0; i < nrecs; i++) {
		if (!strcmp(recs[i].name, "tcp_receive_reset"))
			rr = i;
		else if (!strcmp(recs[i].name, "tcp_destroy_sock"))
			ds = i;
		else if (!strcmp(recs[i].name, "tcp_send_reset"))
			sr = i;
	}
	assert_true(rr >= 0 && rr < ds && ds < sr);
	assert_int_equal(count("tcp_receive_reset") + count("tcp_destroy_sock") + count("tcp_send_reset"), 3);
	const char *d = recs[sr].detail;
	assert_memory_equal(d, "skbaddr=0x", 10);
	const char *tail = " src=192.0.2.2:80 dest=192.0.2.1:40000 state=TCP_CLOSE reason=TCP_ABORT_ON_DATA";
	assert_true(strlen(d) > strlen(tail));
	assert_string_equal(d + strlen(d) - strlen(tail), tail);
	ustack_trace_unsubscribe(t->st, id);
}

/* ---- tcp_probe and tcp_rcv_space_adjust ---------------------------------------------- */

static void test_probe_fields(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	int id = subscribe(t);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 65535, "hello", 5);
	assert_int_equal(count("tcp_probe"), 1);
	const struct rec_ev *e = nth("tcp_probe", 0);
	assert_int_equal(e->old_state, TCP_ESTABLISHED);
	/* Linux's snd_cwnd/ssthresh at the start: 10 and TCP_INFINITE_SSTHRESH; no wscale: the
	 * peer's 65535 as it is */
	char want[256];
	snprintf(want, sizeof(want),
		 "family=AF_INET src=192.0.2.2:80 dest=192.0.2.1:40000 mark=0x0 data_len=5 snd_nxt=%#x snd_una=%#x "
		 "snd_cwnd=10 ssthresh=2147483647 snd_wnd=65535 srtt=", tw_dut_seq(&c, 0), tw_dut_seq(&c, 0));
	size_t n = strlen(want);
	if (strncmp(e->detail, want, n))
		fail_msg("tcp_probe: got \"%s\", wanted \"%s...\"", e->detail, want);
	unsigned srtt = 0, rcv_wnd = 0;
	unsigned long long cookie = 0;
	void *skb = NULL, *skaddr = NULL;
	assert_int_equal(sscanf(e->detail + n, "%u rcv_wnd=%u sock_cookie=%llx skbaddr=%p skaddr=%p", &srtt, &rcv_wnd,
				&cookie, &skb, &skaddr), 5);
	struct ustack_tcp_info ti;
	socklen_t len = sizeof(ti);
	assert_int_equal(ustack_getsockopt(t->st, c.fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(srtt, ti.tcpi_rtt); /* µs, as srtt_us >> 3 */
	assert_true(rcv_wnd > 0);
	assert_true(cookie != 0);
	assert_non_null(skb);
	assert_ptr_equal(skaddr, sock_lookup_fd(t->st, c.fd));

	/* reading runs tcp_rcv_space_adjust: the same socket, the same cookie */
	char buf[16];
	assert_int_equal(ustack_recv(t->st, c.fd, buf, sizeof(buf), 0), 5);
	assert_int_equal(count("tcp_rcv_space_adjust"), 1);
	assert_int_equal(expect_sk_event(nth("tcp_rcv_space_adjust", 0), "family=AF_INET sport=80 dport=40000 " ADDRS " "),
			 cookie);
	ustack_trace_unsubscribe(t->st, id);
}

/* With nobody subscribed, nothing is formatted: the socket is never even given a cookie. */
static void test_silent_without_subscribers(void **state)
{
	struct tw *t = *state;
	struct tw_conn c;
	establish(t, &c);
	struct sock *sk = sock_lookup_fd(t->st, c.fd);
	tw_peer_send(t, &c, 0, 0, TW_ACK | TW_PSH, 65535, "hello", 5);
	char buf[16];
	assert_int_equal(ustack_recv(t->st, c.fd, buf, sizeof(buf), 0), 5);
	assert_int_equal(ustack_send(t->st, c.fd, "x", 1, 0), 1);
	while (t->count) /* the ACK of the data, then ours */
		tw_expect_tcp(t);
	assert_int_equal(ustack_close(t->st, c.lfd), 0); /* tcp_v4_destroy_sock, with nobody to tell */
	assert_true(!sk->ext || sk->ext->cookie == 0);
	int id = subscribe(t);
	tw_peer_send(t, &c, 5, 1, TW_ACK, 65535, NULL, 0);
	assert_int_equal(count("tcp_probe"), 1);
	assert_true(sk->ext && sk->ext->cookie != 0);
	ustack_trace_unsubscribe(t->st, id);
}

/* ---- the lines `ustack trace` prints ------------------------------------------------- */

/* Reads the trace stream until a line containing `what` (or 5 s pass); the line in *out. */
static bool read_line_with(int fd, char *acc, size_t cap, size_t *have, const char *what, char *out, size_t outsz)
{
	for (int waited = 0; waited < 5000;) {
		char *nl;
		while ((nl = memchr(acc, '\n', *have))) {
			size_t l = (size_t)(nl - acc) + 1;
			char line[1024];
			snprintf(line, sizeof(line), "%.*s", (int)l, acc);
			memmove(acc, acc + l, *have - l);
			*have -= l;
			if (strstr(line, what)) {
				snprintf(out, outsz, "%s", line);
				return true;
			}
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		ssize_t r = read(fd, acc + *have, cap - *have - 1);
		if (r <= 0)
			return false;
		*have += (size_t)r;
	}
	return false;
}

static void test_trace_lines(void **state)
{
	struct tw *t = *state;
	char dir[] = "/tmp/ustack-trace-test-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("USTACK_RUN_DIR", dir, 1);
	struct ustack_ctl *ctl = ustack_ctl_start(t->st, "tracetest");
	assert_non_null(ctl);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ustack_ctl_path(ctl));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "trace\n", 6), 6);
	static char acc[1 << 16];
	size_t have = 0;
	char line[1024];
	assert_true(read_line_with(fd, acc, sizeof(acc), &have, "ok", line, sizeof(line))); /* subscribed */

	uint8_t f[128];
	tw_send(t, f, tw_tcp(f, 40001, 81, 5000, 0, TW_SYN, 65535, NULL, 0));
	assert_int_equal(tw_expect_tcp(t).flags, TW_RST | TW_ACK);
	assert_true(read_line_with(fd, acc, sizeof(acc), &have, "tcp_send_reset", line, sizeof(line)));
	/* "          ustack-PID     [000]     0.000000: tcp_send_reset: skbaddr=0x... skaddr=(nil) ..." */
	char head[64];
	snprintf(head, sizeof(head), "%16s-%-7d [000] ", "ustack", (int)getpid());
	assert_memory_equal(line, head, strlen(head));
	const char *ev = strstr(line, ": tcp_send_reset: skbaddr=0x");
	assert_non_null(ev);
	assert_string_equal(strstr(ev, " skaddr="),
			    " skaddr=(nil) src=192.0.2.2:81 dest=192.0.2.1:40001 state=UNKNOWN reason=NO_SOCKET\n");

	struct tw_conn c;
	establish(t, &c);
	tw_peer_send(t, &c, 0, 0, TW_RST, 0, NULL, 0);
	/* the RST reaches tcp_rcv_established first (tcp_probe), then tcp_reset */
	assert_true(read_line_with(fd, acc, sizeof(acc), &have, "tcp_probe", line, sizeof(line)));
	char want[160];
	snprintf(want, sizeof(want), ": tcp_probe: family=AF_INET src=192.0.2.2:80 dest=192.0.2.1:40000 mark=0x0 "
		 "data_len=0 snd_nxt=%#x snd_una=%#x snd_cwnd=10 ", tw_dut_seq(&c, 0), tw_dut_seq(&c, 0));
	assert_non_null(strstr(line, want));
	assert_true(read_line_with(fd, acc, sizeof(acc), &have, "tcp_receive_reset", line, sizeof(line)));
	assert_non_null(strstr(line, ": tcp_receive_reset: family=AF_INET sport=80 dport=40000 " ADDRS " sock_cookie="));
	close(fd);
	ustack_ctl_stop(ctl);
	rmdir(dir);
	unsetenv("USTACK_RUN_DIR");
}

#define T(f) cmocka_unit_test_setup_teardown(f, tw_setup_learned, tw_teardown)
#define TP(f) cmocka_unit_test_setup_teardown(f, tw_setup_peer, tw_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_receive_reset_once),
		T(test_refused_connect),
		TP(test_retransmit_synack),
		TP(test_retransmit_skb_per_segment),
		TP(test_send_reset),
		T(test_abort_on_data),
		T(test_probe_fields),
		T(test_silent_without_subscribers),
		T(test_trace_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
