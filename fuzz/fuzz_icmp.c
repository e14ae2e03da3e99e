/*
 * ICMP: the message parser, and ICMP into a stack with TCP connections for errors to hit.
 *
 *   1. icmp_parse / icmp_csum_ok on the whole input agree with an independent reading, and
 *      icmp_emit gives back the same header with a valid checksum.
 *   2. a stack on a raw-IP link (192.0.2.2/24) with an established connection (the peer
 *      192.0.2.1:40000 connected to port 80, SACK and timestamps; 8000 bytes in flight from
 *      the stack) and a connection in SYN_SENT (to 192.0.2.1:9), then the input as a script:
 *
 *        records until the input ends (at most 256), r = u8, r % 6:
 *        0 MSG   u8 length, bytes: an ICMP message as it is; u8 fix-ups: bit0 checksum,
 *                bit1 from 198.51.100.1, bit2 to the broadcast address, bit3 in two fragments
 *        1 ERR   an error quoting the stack's last segment on a flow (fz_icmp_error_op:
 *                u8 flow, u8 kind, u8 mode, ...): unreachables and fragmentation needed
 *                (path MTU), time exceeded, parameter problem, source quench
 *        2 TIME  u8 (fz_time_op)
 *        3 SOCK  a socket call (fz_socket_op), e.g. SO_ERROR, recv, send, connect again
 *        4 SEG   a segment from a peer, relative to what the stack sent (fz_seg_op)
 *        5 PING  u8: a ping from the stack (bit7: to 198.51.100.1), or an echo reply to it
 */
#include "fuzz_common.h"
#include "wire/icmp.h"

#include <ustack/socket.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;
static struct fz_peer peer;
static unsigned replies;

static void check_parse(const uint8_t *data, size_t size)
{
	struct icmp_repr r;
	int rc = icmp_parse(data, size, &r);
	if ((rc == 0) != (size >= ICMP_HLEN))
		abort();
	if ((icmp_csum_ok(data, size) != 0) != (fz_csum(data, size) == 0))
		abort();
	if (icmp_type_str(size ? data[0] : 0) == NULL)
		abort();
	if (rc != 0)
		return;
	if (r.type != data[0] || r.code != data[1] || r.rest != fz_rd32(data + 4))
		abort();
	static uint8_t buf[65536];
	size_t len = size < sizeof(buf) ? size : sizeof(buf);
	memcpy(buf, data, len);
	icmp_emit(buf, len, &r);
	if (!icmp_csum_ok(buf, len) || buf[0] != data[0] || buf[1] != data[1] ||
	    memcmp(buf + 4, data + 4, len - 4) != 0)
		abort();
}

static void on_reply(void *arg, struct in_addr from, uint16_t id, uint16_t seq, size_t len, uint8_t ttl)
{
	(void)arg, (void)from, (void)id, (void)seq, (void)len, (void)ttl;
	replies++;
}

static void op_msg(struct fz_in *in)
{
	size_t got;
	const uint8_t *b = fz_bytes(in, fz_u8(in), &got);
	uint8_t fix = fz_u8(in);
	static uint8_t pkt[20 + 256];
	memcpy(pkt + 20, b, got);
	if ((fix & 1) && got >= 4) {
		fz_wr16(pkt + 22, 0);
		fz_wr16(pkt + 22, fz_csum(pkt + 20, got));
	}
	uint32_t src = (fix & 2) ? FZ_FAR_IP : FZ_PEER_IP;
	uint32_t dst = (fix & 4) ? (FZ_STACK_IP | 0xff) : FZ_STACK_IP;
	size_t split = (got / 2) & ~(size_t)7;
	if ((fix & 8) && split) {
		static uint8_t fr[20 + 256];
		fz_ip_hdr(fr, 1, src, dst, (uint16_t)(20 + split), 99, 0x2000, 64);
		memcpy(fr + 20, pkt + 20, split);
		fz_send_ip(&fz, fr, 20 + split);
		fz_ip_hdr(fr, 1, src, dst, (uint16_t)(20 + got - split), 99, (uint16_t)(split / 8), 64);
		memcpy(fr + 20, pkt + 20 + split, got - split);
		fz_send_ip(&fz, fr, 20 + got - split);
		return;
	}
	fz_ip_hdr(pkt, 1, src, dst, (uint16_t)(20 + got), 98, 0, 64);
	fz_send_ip(&fz, pkt, 20 + got);
}

static void op_ping(struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	uint32_t dst = (b & 0x80) ? FZ_FAR_IP : FZ_PEER_IP;
	if (!(b & 0x40)) {
		(void)ustack_ping(fz.st, (struct in_addr){ htonl(dst) }, 0x99, b & 7, (size_t)(b & 0x3f) * 40);
		return;
	}
	/* an echo reply as if to one of those pings */
	uint8_t pkt[20 + 8 + 16];
	uint8_t *ic = pkt + 20;
	memset(ic, 0, 24);
	fz_wr16(ic + 4, 0x99);
	fz_wr16(ic + 6, b & 7);
	fz_wr16(ic + 2, fz_csum(ic, 24));
	fz_ip_hdr(pkt, 1, dst, FZ_STACK_IP, sizeof(pkt), 5, 0, (uint8_t)(b & 0x20 ? 1 : 60));
	fz_send_ip(&fz, pkt, sizeof(pkt));
}

static void setup(void)
{
	ustack_set_echo_reply_handler(fz.st, on_reply, NULL);
	int lfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
	(void)ustack_bind(fz.st, lfd, (struct sockaddr *)&a, sizeof(a));
	(void)ustack_listen(fz.st, lfd, 4);
	struct fz_flow *fl = fz_flow_get(&peer, FZ_PEER_IP, 40000, 80);
	uint8_t o[20];
	size_t n = fz_syn_opts(&peer, o, 1460, true, true, 7);
	if (fz_peer_connect(&peer, fl, o, n, true)) {
		int fd = ustack_accept4(fz.st, lfd, NULL, NULL, SOCK_NONBLOCK);
		static uint8_t buf[8000];
		(void)ustack_send(fz.st, fd, buf, sizeof(buf), MSG_DONTWAIT);
	}
	int cfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in c = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr = { htonl(FZ_PEER_IP) } };
	(void)ustack_connect(fz.st, cfd, (struct sockaddr *)&c, sizeof(c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);

	struct fz_in in = { data, size };
	fz_init(&fz, USTACK_LINK_RAWIP, 1000000);
	fz_peer_init(&peer, &fz);
	replies = 0;
	setup();
	for (int n = 0; n < 256 && fz_more(&in); n++) {
		switch (fz_u8(&in) % 6) {
		case 0: op_msg(&in); break;
		case 1: fz_icmp_error_op(&peer, &in); break;
		case 2: fz_time_op(&fz, fz_u8(&in)); break;
		case 3: fz_socket_op(&fz, &in); break;
		case 4: fz_seg_op(&peer, &in); break;
		default: op_ping(&in); break;
		}
	}
	fz_fini(&fz);
	return 0;
}
