/*
 * Offloads (USTACK_IF_TSO, USTACK_RX_CSUM_OK): a sender whose link segments (the TAP driver's
 * virtio TSO) hands it whole TSO packets with a partial checksum; the link here cuts them the
 * way Linux's tcp_gso_segment does — IP IDs counting up, sequence numbers advancing, FIN and
 * PSH on the last segment only, each checksum completed from the pseudo-header sum the stack
 * left — and a second stack, which checks every checksum, receives the result.  So the test
 * proves the packets' layout and their partial checksums, and that the segments on the wire
 * are the ones TCP would have sent itself.  Then the receiving side: a frame the link vouches
 * for is taken with a wrong checksum, one it does not is dropped.  Then checksum offload alone
 * on a link with xmit_offload (AF_XDP's TX metadata, a TAP's NEEDS_CSUM): every TCP segment,
 * and nothing else, reaches the link with gso_size 0 and its checksum partial, and a segment
 * the stack must fragment has its checksum completed first (ip_do_fragment's
 * skb_checksum_help), as no device completes one across fragments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testwire.h" /* tw_rd16 and the like; the stacks here are the test's own */
#include <ustack/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QMAX 4096
#define FMAX 1600

struct wire {
	uint8_t frames[QMAX][FMAX];
	size_t len[QMAX];
	unsigned head, n;
};

static struct ustack_vclock vc;
static struct ustack *a, *b;
static int ia, ib;
static struct wire to_a, to_b;
static unsigned tso_packets, tso_max_segs, bad_layout;

static void push(struct wire *w, const uint8_t *f, size_t len)
{
	assert_true(len <= FMAX);
	assert_true(w->n < QMAX);
	unsigned i = (w->head + w->n++) % QMAX;
	memcpy(w->frames[i], f, len);
	w->len[i] = len;
}


static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += tw_rd16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static unsigned csum_frames, plain_tcp_frames, plain_tcp_bad; /* the checksum-offload link's */

static int xmit_a(void *link, const void *frame, size_t len)
{
	(void)link;
	const uint8_t *f = frame;
	/* a TCP segment (or its first fragment) through the plain xmit: its checksum computed */
	if (len >= 34 && tw_rd16(f + 12) == 0x0800 && f[23] == 6) {
		plain_tcp_frames++;
		size_t ip = 14, ihl = (size_t)(f[ip] & 0x0f) * 4;
		bool frag = tw_rd16(f + ip + 6) & 0x3fff;
		if (!frag && len > ip + ihl + 17) {
			uint32_t ps = (tw_rd32(f + ip + 12) >> 16) + (tw_rd32(f + ip + 12) & 0xffff) +
				      (tw_rd32(f + ip + 16) >> 16) + (tw_rd32(f + ip + 16) & 0xffff) + 6 +
				      (uint32_t)(len - ip - ihl);
			if (fold(sum16(f + ip + ihl, len - ip - ihl, ps)) != 0xffff)
				plain_tcp_bad++;
		}
	}
	push(&to_b, frame, len);
	return 0;
}

static int xmit_b(void *link, const void *frame, size_t len)
{
	(void)link;
	push(&to_a, frame, len);
	return 0;
}

/* tcp_gso_segment, by hand: what a kernel does with a virtio GSO_TCPV4 packet. */
static int xmit_a_tso(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	(void)link;
	const uint8_t *f = frame;
	size_t ip = 14, ihl = (size_t)(f[ip] & 0x0f) * 4, th = ip + ihl;
	size_t doff = (size_t)(f[th + 12] >> 4) * 4, hdr = th + doff;
	if (off->csum_start != th || off->csum_offset != 16 || tw_rd16(f + ip + 2) != len - ip)
		bad_layout++;
	/* the stack left the pseudo-header's sum, for the whole packet's TCP length */
	uint32_t pseudo = (tw_rd32(f + ip + 12) >> 16) + (tw_rd32(f + ip + 12) & 0xffff) + (tw_rd32(f + ip + 16) >> 16) +
			  (tw_rd32(f + ip + 16) & 0xffff) + 6 + (uint32_t)(len - th);
	if (tw_rd16(f + th + 16) != fold(pseudo))
		bad_layout++;
	size_t payload = len - hdr, gso = off->gso_size;
	unsigned segs = (unsigned)((payload + gso - 1) / gso);
	tso_packets++;
	if (segs > tso_max_segs)
		tso_max_segs = segs;
	uint8_t flags = f[th + 13];
	for (unsigned s = 0; s < segs; s++) {
		size_t plen = s + 1 < segs ? gso : payload - gso * (segs - 1);
		uint8_t seg[FMAX];
		memcpy(seg, f, hdr);
		memcpy(seg + hdr, f + hdr + s * gso, plen);
		tw_wr16(seg + ip + 2, (uint16_t)(ihl + doff + plen));
		tw_wr16(seg + ip + 4, (uint16_t)(tw_rd16(f + ip + 4) + s));
		tw_wr16(seg + ip + 10, 0);
		tw_wr16(seg + ip + 10, (uint16_t)~fold(sum16(seg + ip, ihl, 0)));
		tw_wr32(seg + th + 4, tw_rd32(f + th + 4) + (uint32_t)(s * gso));
		seg[th + 13] = s + 1 < segs ? (uint8_t)(flags & ~0x09) : flags; /* FIN, PSH: the last */
		uint32_t ps = (tw_rd32(seg + ip + 12) >> 16) + (tw_rd32(seg + ip + 12) & 0xffff) + (tw_rd32(seg + ip + 16) >> 16) +
			      (tw_rd32(seg + ip + 16) & 0xffff) + 6 + (uint32_t)(doff + plen);
		tw_wr16(seg + th + 16, 0);
		tw_wr16(seg + th + 16, (uint16_t)~fold(sum16(seg + th, doff + plen, ps)));
		push(&to_b, seg, hdr + plen);
	}
	return 0;
}

/* A device that completes checksums (Linux's NETIF_F_HW_CSUM without TSO): one segment, its
 * checksum completed from the pseudo-header sum the stack left, as the kernel's
 * skb_checksum_help does for an AF_XDP request or a virtio NEEDS_CSUM. */
static int xmit_a_csum(void *link, const void *frame, size_t len, const struct ustack_tx_offload *off)
{
	(void)link;
	const uint8_t *f = frame;
	size_t ip = 14, ihl = (size_t)(f[ip] & 0x0f) * 4, th = ip + ihl;
	if (off->gso_size || off->csum_start != th || off->csum_offset != 16 || tw_rd16(f + 12) != 0x0800 ||
	    f[ip + 9] != 6 || tw_rd16(f + ip + 2) != len - ip)
		bad_layout++;
	uint32_t pseudo = (tw_rd32(f + ip + 12) >> 16) + (tw_rd32(f + ip + 12) & 0xffff) + (tw_rd32(f + ip + 16) >> 16) +
			  (tw_rd32(f + ip + 16) & 0xffff) + 6 + (uint32_t)(len - th);
	if (tw_rd16(f + th + 16) != fold(pseudo))
		bad_layout++;
	uint8_t seg[FMAX];
	assert_true(len <= FMAX);
	memcpy(seg, f, len);
	/* the field holds the pseudo-header's sum: the sum over the segment as it is */
	tw_wr16(seg + th + 16, (uint16_t)~fold(sum16(seg + th, len - th, 0)));
	csum_frames++;
	push(&to_b, seg, len);
	return 0;
}

/* Delivers everything queued both ways, moving time on when the wire is quiet. */
static void run(unsigned ms)
{
	for (unsigned t = 0; t <= ms; t++) {
		for (int guard = 0; guard < 100000 && (to_a.n || to_b.n); guard++) {
			if (to_b.n) {
				unsigned i = to_b.head;
				to_b.head = (to_b.head + 1) % QMAX;
				to_b.n--;
				ustack_input(b, ib, to_b.frames[i], to_b.len[i]);
			}
			if (to_a.n) {
				unsigned i = to_a.head;
				to_a.head = (to_a.head + 1) % QMAX;
				to_a.n--;
				ustack_input(a, ia, to_a.frames[i], to_a.len[i]);
			}
		}
		vc.now_us += 1000;
		ustack_timers_run(a);
		ustack_timers_run(b);
	}
}

static int setup_with(unsigned offloads, ustack_xmit_offload_fn xo)
{
	memset(&to_a, 0, sizeof(to_a));
	memset(&to_b, 0, sizeof(to_b));
	tso_packets = tso_max_segs = bad_layout = 0;
	csum_frames = plain_tcp_frames = plain_tcp_bad = 0;
	ustack_vclock_init(&vc, 0);
	static const uint8_t sa[32] = { 1 }, sb[32] = { 2 };
	struct ustack_config ca = { .clock = &vc.clock, .secret_seed = sa, .name = "tso" };
	struct ustack_config cb = { .clock = &vc.clock, .secret_seed = sb, .name = "peer" };
	a = ustack_create(&ca);
	b = ustack_create(&cb);
	struct ustack_if_config ic = { .name = "eth0", .type = USTACK_LINK_ETHER, .mtu = 1500, .xmit = xmit_a,
				       .offloads = offloads, .xmit_offload = xo };
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	memcpy(ic.mac, ma, 6);
	ia = ustack_if_add(a, &ic);
	struct ustack_if_config jc = { .name = "eth0", .type = USTACK_LINK_ETHER, .mtu = 1500, .xmit = xmit_b };
	memcpy(jc.mac, mb, 6);
	ib = ustack_if_add(b, &jc);
	struct in_addr aa = { htonl(0xc0000201) }, ab = { htonl(0xc0000202) };
	ustack_addr_add(a, ia, aa, 24);
	ustack_addr_add(b, ib, ab, 24);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_with(USTACK_IF_TSO, xmit_a_tso);
}

static int setup_csum(void **state)
{
	(void)state;
	return setup_with(USTACK_IF_CSUM, xmit_a_csum);
}

static int teardown(void **state)
{
	(void)state;
	ustack_destroy(a);
	ustack_destroy(b);
	return 0;
}

static void connect_pair(int *cfd, int *sfd)
{
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(0xc0000202) };
	assert_int_equal(ustack_bind(b, lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(ustack_listen(b, lfd, 8), 0);
	*cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(ustack_connect(a, *cfd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, EINPROGRESS);
	run(1);
	*sfd = ustack_accept4(b, lfd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(*sfd >= 0);
}

static uint64_t counter(struct ustack *st, const char *name)
{
	uint64_t v = 0;
	assert_int_equal(ustack_counter_get(st, name, &v), 0);
	return v;
}

/* n bytes of a pattern from a (cfd) to b (sfd), sent and read as they fit, all of them
 * arriving intact within a bounded number of rounds. */
static void transfer(int cfd, int sfd, size_t n)
{
	uint8_t *out = malloc(n), *in = malloc(n);
	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	size_t sent = 0, got = 0;
	for (int round = 0; round < 20000 && got < n; round++) {
		if (sent < n) {
			ssize_t r = ustack_send(a, cfd, out + sent, n - sent, 0);
			if (r > 0)
				sent += (size_t)r;
		}
		run(0);
		ssize_t r;
		while ((r = ustack_recv(b, sfd, in + got, n - got, 0)) > 0)
			got += (size_t)r;
		run(1);
	}
	assert_int_equal(got, n);
	assert_memory_equal(in, out, n);
	free(out);
	free(in);
}

/* Bulk data from the TSO side: whole packets of many segments, every one of them intact at
 * the receiver, the sender's TcpOutSegs counting segments, not packets. */
static void test_tso_bulk(void **state)
{
	(void)state;
	int cfd, sfd;
	connect_pair(&cfd, &sfd);
	enum { N = 1 << 20 };
	uint64_t segs0 = counter(a, "TcpOutSegs");
	transfer(cfd, sfd, N);
	assert_true(tso_packets > 0);
	assert_true(tso_max_segs >= 10); /* the initial window goes as one packet */
	assert_int_equal(bad_layout, 0);
	assert_int_equal(counter(b, "TcpInCsumErrors"), 0);
	/* every data segment counted once: the receiver saw as many as the sender says it sent */
	uint64_t out_segs = counter(a, "TcpOutSegs") - segs0;
	assert_true(out_segs >= N / 1448);
	assert_int_equal(counter(a, "TcpRetransSegs"), 0);
}

/* The receive side: a segment with a wrong checksum is dropped (TcpInCsumErrors) unless the
 * link vouches for it (USTACK_RX_CSUM_OK), as a virtio_net_hdr's NEEDS_CSUM does. */
static void test_rx_csum_ok(void **state)
{
	(void)state;
	int cfd, sfd;
	connect_pair(&cfd, &sfd);
	assert_int_equal(ustack_send(a, cfd, "hello", 5, 0), 5);
	/* take the data segment off the wire before b sees it */
	for (int i = 0; i < 10 && !to_b.n; i++)
		run(0);
	assert_int_equal(to_b.n, 1);
	uint8_t f[FMAX];
	size_t len = to_b.len[to_b.head];
	memcpy(f, to_b.frames[to_b.head], len);
	to_b.n = 0;
	f[14 + 20 + 16] ^= 0x55; /* a wrong TCP checksum */
	ustack_input(b, ib, f, len);
	assert_int_equal(counter(b, "TcpInCsumErrors"), 1);
	char buf[8];
	assert_int_equal(ustack_recv(b, sfd, buf, sizeof(buf), 0), -1);
	assert_int_equal(errno, EAGAIN);
	ustack_input_flags(b, ib, f, len, USTACK_RX_CSUM_OK);
	assert_int_equal(counter(b, "TcpInCsumErrors"), 1);
	assert_int_equal(ustack_recv(b, sfd, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
}

/* Checksum offload alone: the handshake and data both ways, every segment of a's through
 * xmit_offload with its checksum partial (none through xmit), every ARP and ping through
 * xmit; b, which checks every checksum, gets it all. */
static void test_csum_offload(void **state)
{
	(void)state;
	int cfd, sfd;
	connect_pair(&cfd, &sfd);
	enum { N = 200000 };
	transfer(cfd, sfd, N);
	/* and back: b's segments to a, whose ACKs (partial) b checks too */
	assert_int_equal(ustack_send(b, sfd, "pong", 4, 0), 4);
	run(1);
	char buf[8];
	assert_int_equal(ustack_recv(a, cfd, buf, sizeof(buf), 0), 4);
	assert_true(csum_frames >= N / 1448);
	assert_int_equal(plain_tcp_frames, 0);
	assert_int_equal(bad_layout, 0);
	assert_int_equal(tso_packets, 0);
	assert_int_equal(counter(b, "TcpInCsumErrors"), 0);
	assert_int_equal(counter(a, "TcpRetransSegs"), 0);
}

/* A segment larger than the path's MTU with DF clear (IP_PMTUDISC_DONT, the device's MTU
 * lowered under an established connection): the stack fragments it, and its checksum, which
 * no device can complete across fragments, is completed before: b reassembles it and finds
 * the checksum right. */
static void test_csum_offload_fragment(void **state)
{
	(void)state;
	int cfd, sfd;
	connect_pair(&cfd, &sfd);
	int dont = IP_PMTUDISC_DONT;
	assert_int_equal(ustack_setsockopt(a, cfd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont)), 0);
	assert_int_equal(ustack_if_set_mtu(a, ia, 576), 0);
	static uint8_t out[1400], in[1400];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 5 + 1);
	uint64_t frags0 = counter(a, "IpFragCreates");
	assert_int_equal(ustack_send(a, cfd, out, sizeof(out), 0), (ssize_t)sizeof(out));
	size_t got = 0;
	for (int round = 0; round < 100 && got < sizeof(out); round++) {
		run(1);
		ssize_t n;
		while ((n = ustack_recv(b, sfd, in + got, sizeof(in) - got, 0)) > 0)
			got += (size_t)n;
	}
	assert_int_equal(got, sizeof(out));
	assert_memory_equal(in, out, sizeof(out));
	assert_true(counter(a, "IpFragCreates") - frags0 >= 3);
	assert_true(plain_tcp_frames >= 3); /* the fragments: through xmit, whole */
	assert_int_equal(plain_tcp_bad, 0);
	assert_int_equal(bad_layout, 0);
	assert_int_equal(counter(b, "TcpInCsumErrors"), 0);
	assert_true(counter(b, "IpReasmOKs") >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tso_bulk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_csum_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_offload, setup_csum, teardown),
		cmocka_unit_test_setup_teardown(test_csum_offload_fragment, setup_csum, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
