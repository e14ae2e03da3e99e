/*
 * The link driver's side of the stack: the doorbell (ustack_if_config.flush, Linux's
 * xmit_more, and its part rung once the lock is released, flush_unlocked), bursts of received frames (ustack_input_burst), trace subscriptions by kind, and
 * the connection rings' cache; and the established hash's growth without a pause.
 *
 * Two stacks joined by a link of the test's own that behaves as a NIC whose driver only
 * queues in xmit: a frame reaches the other side when the doorbell rings, never before.  So
 * a stack that forgot to ring would never connect, and one that rang per frame is seen in the
 * counts: one ring per API call, received frame or timer run that transmitted, none for those
 * that did not.
 */
#include "testwire.h"
#include "core/stack.h"
#include "core/slab.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/diag.h>
#include <ustack/socket.h>
#include <ustack/trace.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#define QMAX 512
#define FMAX 1600

struct side {
	struct ustack *st;
	int ifindex;
	/* queued by xmit, not yet rung */
	uint8_t q[QMAX][FMAX];
	size_t qlen[QMAX];
	unsigned nq;
	unsigned xmits, rings;
	unsigned afters, afters_unlocked; /* flush_unlocked calls; those made with the lock free */
	unsigned wired; /* frames put on the wire by rings, ever (atomic: read by another thread) */
	struct side *peer;
	/* on the wire to the peer: delivered by pump() */
	uint8_t wire[QMAX][FMAX];
	size_t wlen[QMAX];
	unsigned nw;
	int drop; /* the doorbell throws the queued frames away */
};

static struct ustack_vclock vc;
static struct side A, B;

static int side_xmit(void *link, const void *frame, size_t len)
{
	struct side *s = link;
	assert_true(len <= FMAX && s->nq < QMAX);
	memcpy(s->q[s->nq], frame, len);
	s->qlen[s->nq++] = len;
	s->xmits++;
	return 0;
}

/* The doorbell: what xmit queued goes on the wire, and the stack is still locked (it rings
 * before it lets go), so this may not call into it. */
static void side_flush(void *link)
{
	struct side *s = link;
	s->rings++;
	assert_true(s->nq > 0); /* rung only after a transmission */
	for (unsigned i = 0; i < s->nq && !s->drop; i++) {
		assert_true(s->peer->nw < QMAX);
		memcpy(s->peer->wire[s->peer->nw], s->q[i], s->qlen[i]);
		s->peer->wlen[s->peer->nw++] = s->qlen[i];
		__atomic_add_fetch(&s->wired, 1, __ATOMIC_RELEASE);
	}
	s->nq = 0;
}

/* The doorbell's second part (flush_unlocked): rung once the lock is released — seen here as
 * the lock being free (the test that counts it runs on one thread) — by an API call's end or a
 * caller about to sleep in the stack. */
static void side_after(void *link)
{
	struct side *s = link;
	__atomic_add_fetch(&s->afters, 1, __ATOMIC_RELEASE);
	if (stack_mutex_trylock(&s->st->lock)) {
		stack_mutex_unlock(&s->st->lock);
		__atomic_add_fetch(&s->afters_unlocked, 1, __ATOMIC_RELEASE);
	}
}

static void side_init(struct side *s, const char *name, uint8_t last, uint32_t ip)
{
	static const uint8_t seed[32] = { 7 };
	memset(s, 0, sizeof(*s));
	struct ustack_config c = { .clock = &vc.clock, .secret_seed = seed, .name = name };
	s->st = ustack_create(&c);
	assert_non_null(s->st);
	struct ustack_if_config ic = {
		.name = "nic0", .type = USTACK_LINK_ETHER, .mac = { 2, 0, 0, 0, 0, last }, .mtu = 1500,
		.xmit = side_xmit, .flush = side_flush, .flush_unlocked = side_after, .link = s,
	};
	s->ifindex = ustack_if_add(s->st, &ic);
	assert_true(s->ifindex > 0);
	assert_int_equal(ustack_addr_add(s->st, s->ifindex, (struct in_addr){ htonl(ip) }, 24), 0);
}

/* Delivers what is on the wire each way until both are quiet; returns frames delivered. */
static unsigned pump(void)
{
	unsigned total = 0;
	for (int round = 0; round < 1000; round++) {
		unsigned n = 0;
		struct side *sides[2] = { &A, &B };
		for (int k = 0; k < 2; k++) {
			struct side *s = sides[k];
			unsigned nw = s->nw;
			static uint8_t f[QMAX][FMAX];
			static size_t fl[QMAX];
			memcpy(f, s->wire, sizeof(f[0]) * nw);
			memcpy(fl, s->wlen, sizeof(fl[0]) * nw);
			s->nw = 0;
			for (unsigned i = 0; i < nw; i++)
				ustack_input(s->st, s->ifindex, f[i], fl[i]);
			n += nw;
		}
		total += n;
		if (!n)
			return total;
	}
	fail_msg("the link never went quiet");
	return total;
}

static int setup(void **state)
{
	(void)state;
	ustack_vclock_init(&vc, 0);
	side_init(&A, "a", 0xa, TW_PEER_IP);
	side_init(&B, "b", 0xb, TW_DUT_IP);
	A.peer = &B;
	B.peer = &A;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ustack_destroy(A.st);
	ustack_destroy(B.st);
	return 0;
}

/* A's connection to B:80, accepted; returns A's descriptor, *bfd B's. */
static int connected(int *bfd)
{
	int l = ustack_socket(B.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
	assert_int_equal(ustack_bind(B.st, l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(B.st, l, 8), 0);
	int fd = ustack_socket(A.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sa.sin_addr.s_addr = htonl(TW_DUT_IP);
	A.rings = A.xmits = 0;
	/* the ARP request for B goes out (the SYN waits for its answer): one ring */
	assert_int_equal(ustack_connect(A.st, fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINPROGRESS);
	assert_int_equal(A.xmits, 1);
	assert_int_equal(A.rings, 1);
	assert_int_equal(B.nw, 1); /* on the wire only because it was rung */
	pump();
	*bfd = ustack_accept4(B.st, l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(*bfd >= 0);
	return fd;
}

static void test_doorbell_rings_once_per_burst(void **state)
{
	(void)state;
	int bfd, fd = connected(&bfd);
	/* 10 segments in one send (the initial window): ten xmits, one ring */
	static char data[10 * 1448];
	memset(data, 'x', sizeof(data));
	A.rings = A.xmits = A.afters = A.afters_unlocked = 0;
	assert_int_equal(ustack_send(A.st, fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	assert_int_equal(A.xmits, 10);
	assert_int_equal(A.rings, 1);
	assert_int_equal(A.afters, 1); /* and the second part once, after the lock was let go */
	assert_int_equal(A.afters_unlocked, 1);
	assert_int_equal(B.nw, 10);
	/* B takes the ten frames one ustack_input each: a ring for each ACK it sends (at most
	 * one per frame), and none for the frames it only queued an ACK for */
	B.rings = B.xmits = 0;
	pump();
	assert_true(B.xmits >= 5);
	assert_int_equal(B.rings, B.xmits);
	char buf[sizeof(data)];
	assert_int_equal(ustack_recv(B.st, bfd, buf, sizeof(buf), 0), (ssize_t)sizeof(data));
	/* an API call that sends nothing rings nothing */
	A.rings = A.afters = 0;
	assert_int_equal(ustack_recv(A.st, fd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(A.rings, 0);
	assert_int_equal(A.afters, 0);
	ustack_close(A.st, fd);
	ustack_close(B.st, bfd);
}

/* A retransmission from a timer is rung too: the doorbell is not only the API's. */
static void test_doorbell_rings_after_timers(void **state)
{
	(void)state;
	int bfd, fd = connected(&bfd);
	A.drop = 1; /* the segment is lost */
	assert_int_equal(ustack_send(A.st, fd, "hello", 5, 0), 5);
	A.drop = 0;
	A.rings = A.xmits = 0;
	for (int i = 0; i < 20 && !A.xmits; i++) {
		vc.now_us += 50000;
		ustack_timers_run(A.st);
	}
	assert_int_equal(A.xmits, 1); /* the RTO's retransmission */
	assert_int_equal(A.rings, 1);
	pump();
	char buf[8];
	assert_int_equal(ustack_recv(B.st, bfd, buf, sizeof(buf), 0), 5);
	ustack_close(A.st, fd);
	ustack_close(B.st, bfd);
}

/* A burst taken from a ring (ustack_input_burst) is the frames one by one, under one hold of
 * the lock: all of them are delivered, in order, and the ACKs they call for leave with one
 * doorbell instead of one each.  An unknown interface takes nothing. */
static void test_input_burst(void **state)
{
	(void)state;
	int bfd, fd = connected(&bfd);
	static char data[10 * 1448];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	assert_int_equal(ustack_send(A.st, fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	assert_int_equal(B.nw, 10);
	struct ustack_rx_frame f[10];
	for (unsigned i = 0; i < 10; i++)
		f[i] = (struct ustack_rx_frame){ .data = B.wire[i], .len = B.wlen[i] };
	B.rings = B.xmits = 0;
	ustack_input_burst(B.st, B.ifindex + 1, f, 10); /* no such interface */
	assert_int_equal(B.xmits, 0);
	ustack_input_burst(B.st, B.ifindex, f, 10);
	B.nw = 0;
	assert_true(B.xmits >= 1);
	assert_int_equal(B.rings, 1);
	char buf[sizeof(data)];
	assert_int_equal(ustack_recv(B.st, bfd, buf, sizeof(buf), 0), (ssize_t)sizeof(data));
	assert_memory_equal(buf, data, sizeof(data));
	pump();
	ustack_close(A.st, fd);
	ustack_close(B.st, bfd);
}

/* Opens one more connection A → B:port, accepted on lfd; its two descriptors. */
static void one_more(int lfd, uint16_t port, int *afd, int *bfd)
{
	*afd = ustack_socket(A.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(TW_DUT_IP) };
	assert_int_equal(ustack_connect(A.st, *afd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	pump();
	*bfd = ustack_accept4(B.st, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(*bfd >= 0);
}

/* The rings a closed connection leaves go to the stack's ring cache (tcp.c) and serve the next
 * connection empty: its reader sees only its own bytes.  (Off under ASan: freed, as before.) */
static void test_ring_cache_reuse(void **state)
{
	(void)state;
	int bfd, fd = connected(&bfd);
	assert_int_equal(ustack_send(A.st, fd, "first", 5, 0), 5);
	pump();
	char buf[64];
	assert_int_equal(ustack_recv(B.st, bfd, buf, sizeof(buf), 0), 5);
	const uint8_t *ring = sock_lookup_fd(B.st, bfd)->rcvq.data;
	assert_non_null(ring);
	struct linger lg = { 1, 0 }; /* a reset: both ends gone at once, no TIME_WAIT in the way */
	ustack_setsockopt(A.st, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ustack_close(A.st, fd);
	pump();
	ustack_close(B.st, bfd);
#ifdef SLAB_PLAIN
	assert_int_equal(B.st->tcp->rcv_rings.n, 0);
#else
	assert_int_equal(B.st->tcp->rcv_rings.n, 1);
#endif
	/* the next connection (a new port: the listener's still there) */
	int l2 = ustack_socket(B.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(81) };
	assert_int_equal(ustack_bind(B.st, l2, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(B.st, l2, 8), 0);
	int fd2, b2;
	one_more(l2, 81, &fd2, &b2);
	assert_int_equal(ustack_send(A.st, fd2, "2nd", 3, 0), 3);
	pump();
	memset(buf, 0, sizeof(buf));
	assert_int_equal(ustack_recv(B.st, b2, buf, sizeof(buf), 0), 3);
	assert_string_equal(buf, "2nd");
#ifndef SLAB_PLAIN
	assert_ptr_equal(sock_lookup_fd(B.st, b2)->rcvq.data, ring);
	assert_int_equal(B.st->tcp->rcv_rings.n, 0);
#endif
	/* a ring that grew (SO_RCVLOWAT's tcp_set_rcvlowat here; autotuning alike) is freed */
	int big = 1 << 20;
	assert_int_equal(ustack_setsockopt(B.st, b2, SOL_SOCKET, SO_RCVLOWAT, &big, sizeof(big)), 0);
	assert_true(sock_lookup_fd(B.st, b2)->rcvq.size > B.st->tcp->rcv_rings.size);
	ustack_setsockopt(A.st, fd2, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ustack_close(A.st, fd2);
	pump();
	ustack_close(B.st, b2);
	assert_int_equal(B.st->tcp->rcv_rings.n, 0);
}

/* Every connection carries a byte each way: each end's lookup of the 4-tuple finds it. */
static void all_reachable(const int *afd, const int *bfd, int n)
{
	for (int i = 0; i < n; i++) {
		char c = (char)i, got = 0;
		assert_int_equal(ustack_send(A.st, afd[i], &c, 1, 0), 1);
		assert_int_equal(ustack_send(B.st, bfd[i], &c, 1, 0), 1);
		pump();
		assert_int_equal(ustack_recv(B.st, bfd[i], &got, 1, 0), 1);
		assert_int_equal(got, c);
		assert_int_equal(ustack_recv(A.st, afd[i], &got, 1, 0), 1);
		assert_int_equal(got, c);
	}
}

/*
 * The established hash's link words (inet_hashtables.c): each says its entry's tag and whether
 * it ends its chain, so a lookup can pass a lone stranger without loading it.  Forty thousand
 * entries go in (several doublings, each migrated a few buckets per insert), a third come out
 * and go back, in an order that leaves many a chain's "last" word stale; through all of it
 * every entry present is found as itself, every one removed and every 4-tuple never inserted
 * is not, a walk sees each entry once, and the count ends at zero.
 */
static void test_ehash_link_words(void **state)
{
	(void)state;
	enum { N = 40000 };
	struct ehash_node *e = calloc(N, sizeof(*e));
	bool *in = calloc(N, sizeof(*in));
	assert_non_null(e);
	assert_non_null(in);
	struct ustack *st = B.st;
	uint32_t x = 2463534242u;
	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		/* distinct tuples: the index in the remote address, the rest random */
		e[i] = (struct ehash_node){ .laddr = x, .raddr = 0x0a000000u + (uint32_t)i, .lport = (uint16_t)(x >> 7),
					    .rport = (uint16_t)(x >> 19), .state = TCP_ESTABLISHED };
	}
	uint32_t count0 = st->tcp->ehash_count;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			if (!in[i] && (round == 0 || i % 3 != 0 || round == 2)) {
				inet_ehash_insert(st, &e[i]);
				in[i] = true;
			}
		for (int i = N - 1; i >= 0; i -= 1 + (i % 3 == 1)) /* newest first: stale "last" words */
			if (round < 2 && i % 3 == 0 && in[i]) {
				inet_ehash_remove(st, &e[i]);
				in[i] = false;
			}
		for (int i = 0; i < N; i++) {
			struct ehash_node *f = inet_lookup_established(st, e[i].laddr, e[i].lport, e[i].raddr, e[i].rport);
			assert_ptr_equal(f, in[i] ? &e[i] : NULL);
			/* the same ports and address, another remote address: never inserted */
			assert_null(inet_lookup_established(st, e[i].laddr, e[i].lport, 0x0b000000u + (uint32_t)i, e[i].rport));
		}
		uint32_t seen = 0, want = 0;
		for (uint32_t c = 0; c < inet_ehash_chains(st->tcp); c++)
			for (struct ehash_node *n = inet_ehash_chain(st->tcp, c); n; n = inet_ehash_next(n))
				seen += n >= e && n < e + N;
		for (int i = 0; i < N; i++)
			want += in[i];
		assert_int_equal(seen, want);
		assert_int_equal(st->tcp->ehash_count, count0 + want);
	}
	for (int i = 0; i < N; i++)
		if (in[i])
			inet_ehash_remove(st, &e[i]);
	assert_int_equal(st->tcp->ehash_count, count0);
	free(in);
	free(e);
}

/*
 * The established hash doubles without a pause (inet_hashtables.c, ehash_migrate): while the
 * old table's buckets are being moved a few per insert, every connection is still found —
 * those in buckets already moved and those not — and a walk over the table (the diag snapshot)
 * still sees each once; the old table goes once its last bucket has moved.
 */
static void test_ehash_grows_incrementally(void **state)
{
	(void)state;
	enum { MAX = 600 };
	static int afd[MAX], bfd[MAX];
	int l = ustack_socket(B.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80) };
	assert_int_equal(ustack_bind(B.st, l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(B.st, l, 128), 0);
	struct tcp_state_tables *t = B.st->tcp;
	uint32_t size0 = t->ehash_mask + 1;
	int n = 0;
	while (!t->ehash_old && n < MAX) {
		one_more(l, 80, &afd[n], &bfd[n]);
		n++;
	}
	assert_non_null(t->ehash_old); /* a doubling under way */
	assert_int_equal(t->ehash_mask + 1, 2 * size0);
	assert_int_equal(t->ehash_old_mask + 1, size0);
	assert_true(t->ehash_migrated > 0 && t->ehash_migrated < size0);
	all_reachable(afd, bfd, n);
	size_t total = 0;
	assert_int_equal(ustack_diag_snapshot(B.st, NULL, 0, &total), 0);
	assert_int_equal(total, (size_t)n + 1); /* the children and the listener, each once */
	/* more connections move the rest: the old table goes */
	while (t->ehash_old && n < MAX) {
		one_more(l, 80, &afd[n], &bfd[n]);
		n++;
	}
	assert_null(t->ehash_old);
	assert_true((uint32_t)n < 2 * size0); /* well before the next doubling */
	all_reachable(afd, bfd, n);
	assert_int_equal(ustack_diag_snapshot(B.st, NULL, 0, &total), 0);
	assert_int_equal(total, (size_t)n + 1);
	for (int i = 0; i < n; i++) {
		ustack_close(A.st, afd[i]);
		ustack_close(B.st, bfd[i]);
		pump();
	}
}

struct blocked_send {
	int fd;
	size_t len;
	ssize_t rc;
	atomic_bool done;
};

static void *send_blocking(void *arg)
{
	struct blocked_send *b = arg;
	static char big[256 * 1024];
	b->rc = ustack_send(A.st, b->fd, big, b->len, 0);
	atomic_store(&b->done, true);
	return NULL;
}

/* A caller that goes to sleep in a blocking call (here send(), its buffer full) rings the
 * doorbell first: what it sent is on the wire while it sleeps, not left in the NIC's queue
 * until some other unlock — which, with nothing else running, would never come. */
static void test_doorbell_before_sleeping(void **state)
{
	(void)state;
	int bfd, fd = connected(&bfd);
	assert_int_equal(ustack_fcntl(A.st, fd, F_SETFL, 0), 0); /* blocking from here */
	A.rings = A.xmits = A.afters = 0;
	struct blocked_send b = { .fd = fd, .len = 256 * 1024 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, send_blocking, &b), 0);
	/* Watched without taking A's lock (any unlock would ring what is pending): the initial
	 * window reaches the wire while the sender is inside send(), which then sleeps. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&A.wired, __ATOMIC_ACQUIRE) < 10) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 5)
			fail_msg("the sender's segments never reached the wire");
		sched_yield();
	}
	while (ustack_sleeping_callers(A.st) < 1) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 10)
			fail_msg("the sender never blocked");
		sched_yield();
	}
	assert_true(A.xmits >= 10);
	assert_true(A.rings >= 1);
	assert_true(__atomic_load_n(&A.afters, __ATOMIC_ACQUIRE) >= 1); /* both parts before sleeping */
	assert_true(__atomic_load_n(&A.afters_unlocked, __ATOMIC_ACQUIRE) >= 1); /* the second unlocked */
	assert_int_equal(A.nq, 0);
	assert_int_equal(B.nw, A.xmits);
	/* let it finish: B reads, ACKs flow, the sender wakes and sends the rest */
	static char buf[65536];
	size_t got = 0;
	for (int i = 0; i < 100000 && got < b.len; i++) {
		pump();
		ssize_t r = ustack_recv(B.st, bfd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		else
			sched_yield();
	}
	pthread_join(th, NULL);
	assert_int_equal(b.rc, (ssize_t)b.len);
	assert_int_equal(got, b.len);
	ustack_close(A.st, fd);
	ustack_close(B.st, bfd);
}

static unsigned seen[8];

static void count_kinds(void *arg, const struct ustack_trace_event *ev)
{
	(void)arg;
	if (ev->kind < 8)
		seen[ev->kind]++;
}

/* A subscriber of LOG alone (the CLI's, for the SYN flood line) must not make the packet path
 * format events for nobody: st->ntrace, which the emitters test, stays 0. */
static void test_trace_subscription_by_kind(void **state)
{
	(void)state;
	assert_int_equal(ustack_trace_subscribe_kinds(A.st, 0, count_kinds, NULL), -1);
	assert_int_equal(errno, EINVAL);
	memset(seen, 0, sizeof(seen));
	int id = ustack_trace_subscribe_kinds(A.st, USTACK_TRACE_KIND(USTACK_TRACE_LOG), count_kinds, NULL);
	assert_true(id >= 0);
	assert_int_equal(A.st->ntrace, 0);
	assert_int_equal(A.st->nlog, 1);
	int bfd, fd = connected(&bfd);
	for (int k = 0; k < 8; k++)
		assert_int_equal(seen[k], 0);
	/* one for packets only sees packets */
	int id2 = ustack_trace_subscribe_kinds(A.st, USTACK_TRACE_KIND(USTACK_TRACE_PKT_TX), count_kinds, NULL);
	assert_int_equal(A.st->ntrace, 1);
	assert_int_equal(ustack_send(A.st, fd, "x", 1, 0), 1);
	assert_int_equal(seen[USTACK_TRACE_PKT_TX], 1);
	assert_int_equal(seen[USTACK_TRACE_STEP], 0);
	assert_int_equal(seen[USTACK_TRACE_PKT_RX], 0);
	ustack_trace_unsubscribe(A.st, id2);
	ustack_trace_unsubscribe(A.st, id);
	assert_int_equal(A.st->ntrace, 0);
	assert_int_equal(A.st->nlog, 0);
	/* the catch-all subscription is every kind */
	id = ustack_trace_subscribe(A.st, count_kinds, NULL);
	assert_int_equal(A.st->ntrace, 1);
	assert_int_equal(A.st->nlog, 1);
	ustack_trace_unsubscribe(A.st, id);
	ustack_close(A.st, fd);
	ustack_close(B.st, bfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_doorbell_rings_once_per_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbell_rings_after_timers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_doorbell_before_sleeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_cache_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ehash_grows_incrementally, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ehash_link_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_subscription_by_kind, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
