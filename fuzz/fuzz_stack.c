/*
 * The whole stack in virtual time.  An input is a configuration byte and then a stream of
 * operations: segments from TCP peers, other packets, time steps, socket calls.  Every frame
 * the stack sends is checked by the oracle (fuzz_common.c) and learned by the peer model, so
 * that segments in the input name their sequence and acknowledgment numbers relative to what
 * the stack sent (the next in-order byte, "everything you sent", a SACK block 2000 bytes into
 * your window), which lets the fuzzer get past the listener into every TCP state.
 *
 * Format (all multi-byte fields big-endian; a truncated input reads as zeros):
 *
 *   config  u8   bit0 Ethernet link (else raw IP); bit1 relative mode, passive: the peer
 *                192.0.2.1:40000 connects to a listener on port 80 first (listener fd 3,
 *                accepted fd 4); bit2 relative mode, active: the stack connects to
 *                192.0.2.1:5001 and the peer accepts (next free fd); bit3 SACK, bit4
 *                timestamps, bit5 window scale in both handshakes; bit6 format every frame
 *                with the tracer's printers; bit7 a sysctl pair (u8 sel, u8 val) follows
 *   then operations until the input ends (at most 512), an op byte each, op % 8:
 *   0,1 SEG   u8 flow: bit7 clear and flows known → flows[flow % n]; else the flow
 *                  (peer 192.0.2.1|.3 by bit0, port 40000+bits1-2, stack port
 *                  80|81|5001|22 by bits3-4)
 *             u8 TCP flags
 *             u8 mode: bits0-1 seq: 0 peer's next byte, 1 stack's rcv_nxt + s16,
 *                  2 peer's next + s16, 3 absolute u32; bits2-3 ack: 0 all the stack sent,
 *                  1 stack's snd_una + u16, 2 snd_una (a duplicate), 3 absolute u32;
 *                  bit4 timestamp option; bit5 SACK blocks; bit6 raw options; bit7 extras
 *             [s16|u32 seq] [u16|u32 ack] u16 window, u8 payload length (0..127, then
 *             steps up to 1460)
 *             extras u8 (its fields follow it in bit order): bit0 bad TCP checksum, bit1 old TSval (- u16), bit2 urgent
 *                  pointer u16, bit3 bad IP checksum, bit4 as two IP fragments (u8 × 8 bytes),
 *                  bit5 trailing junk (u8 bytes), bit6 payload from the input, bit7 IP options
 *             SACK: u8 n (1..4 blocks), each u16 start, u16 length, relative to snd_una
 *             raw options: u8 length, bytes (appended while they fit in 40 bytes)
 *   2   TIME  u8 t: <100 t ms; <200 (t-100)×50 ms; <250 (t-200)×5 s; else to the next
 *             timer, t-249 times
 *   3,4 SOCK  a socket call, see fz_socket_op (descriptors 3..10, all non-blocking)
 *   5   ICMP  an error quoting the stack's last segment on a flow: u8 flow, u8 kind,
 *             u8 mode (quote length, seq offset, checksum, source), [fields]
 *   6   RAW   u8 fix-up flags, u16 length, bytes: any IPv4 packet
 *   7   MISC  u8 sub, sub % 8: 0 ping (u16 length), 1 an echo request in fragments (u16 length,
 *             u8 fragment size ×8, u8 order), 2 ARP from a peer, 3 sysctl (u8 sel, u8 val),
 *             4 interface MTU (u16), 5 read every counter, 6-7 a SYN flood to port 80
 *
 * ustack_destroy ends every input, with whatever connections are still open.
 */
#include "fuzz_common.h"

#include <ustack/socket.h>

#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;
static struct fz_peer peer;

static void op_raw(struct fz_in *in)
{
	uint8_t ctrl = fz_u8(in);
	uint16_t want = fz_u16(in) % (FZ_MTU + 1);
	size_t len;
	const uint8_t *b = fz_bytes(in, want, &len);
	static uint8_t pkt[FZ_MTU];
	memcpy(pkt, b, len);
	if (len >= 20) {
		size_t ihl = (size_t)(pkt[0] & 15) * 4;
		if (ctrl & 0x40) {
			pkt[0] = 0x45;
			ihl = 20;
		}
		if (ctrl & 1)
			fz_wr16(pkt + 2, (uint16_t)len);
		if (ctrl & 4)
			fz_wr32(pkt + 16, FZ_STACK_IP);
		if (ctrl & 8)
			fz_wr32(pkt + 12, FZ_PEER_IP);
		if ((ctrl & 0x10) && ihl >= 20 && ihl <= len && !(fz_rd16(pkt + 6) & 0x3fff)) {
			fz_fix_l4_csum(pkt, len, ihl);
		}
		if ((ctrl & 2) && ihl >= 20 && ihl <= len) {
			fz_fix_ip_csum(pkt, ihl);
		}
	}
	if ((ctrl & 0x80) && fz.type == USTACK_LINK_ETHER) {
		/* as a broadcast frame */
		static uint8_t fr[14 + FZ_MTU];
		memset(fr, 0xff, 6);
		fz_peer_mac(FZ_PEER_IP, fr + 6);
		fz_wr16(fr + 12, (ctrl & 0x20) ? 0x0806 : 0x0800);
		memcpy(fr + 14, pkt, len);
		fz_send_raw(&fz, fr, 14 + len);
		return;
	}
	fz_send_ip(&fz, pkt, len);
}

/* An echo request of any size from the peer, cut into fragments of frag×8 bytes, in order or
 * last first. */
static void echo_fragments(struct fz_in *in)
{
	static uint8_t msg[65536];
	uint16_t plen = fz_u16(in);
	uint8_t frag = fz_u8(in), order = fz_u8(in);
	size_t mlen = 8 + (size_t)plen % 9000;
	msg[0] = 8;
	msg[1] = 0;
	fz_wr16(msg + 2, 0);
	fz_wr16(msg + 4, 0x1234);
	fz_wr16(msg + 6, order);
	for (size_t i = 8; i < mlen; i++)
		msg[i] = (uint8_t)i;
	fz_wr16(msg + 2, fz_csum(msg, mlen));
	size_t step = (size_t)(frag ? frag : 185) * 8;
	size_t nfr = (mlen + step - 1) / step;
	uint16_t id = (uint16_t)(0x4000 + order);
	for (size_t k = 0; k < nfr && k < 64; k++) {
		size_t i = (order & 1) ? nfr - 1 - k : k;
		size_t off = i * step, len = mlen - off < step ? mlen - off : step;
		static uint8_t pkt[20 + 2048];
		memcpy(pkt + 20, msg + off, len);
		bool more = off + len < mlen;
		fz_ip_hdr(pkt, 1, FZ_PEER_IP, FZ_STACK_IP, (uint16_t)(20 + len), id,
			  (uint16_t)((more ? 0x2000 : 0) | (off / 8)), 64);
		fz_send_ip(&fz, pkt, 20 + len);
		if ((order & 2) && k == 0) /* a duplicate of the first one */
			fz_send_ip(&fz, pkt, 20 + len);
	}
}

static void op_misc(struct fz_in *in)
{
	uint8_t sub = fz_u8(in);
	switch (sub % 8) {
	case 0: {
		static const uint32_t dst[4] = { FZ_PEER_IP, FZ_PEER2_IP, FZ_FAR_IP, 0xc00002ffu };
		uint16_t len = fz_u16(in);
		(void)ustack_ping(fz.st, (struct in_addr){ htonl(dst[(sub >> 3) & 3]) }, 7, (uint16_t)sub,
				  len % 4000);
		break;
	}
	case 1:
		echo_fragments(in);
		break;
	case 2: { /* ARP from a peer: request for us, gratuitous, or reply */
		if (fz.type != USTACK_LINK_ETHER)
			break;
		uint32_t who = (sub & 0x80) ? FZ_PEER2_IP : FZ_PEER_IP;
		uint8_t r[42];
		uint8_t *a = r + 14;
		memset(r, 0xff, 6);
		fz_peer_mac(who, r + 6);
		if (sub & 0x40)
			r[7] ^= 0x10; /* a changed MAC */
		fz_wr16(r + 12, 0x0806);
		fz_wr16(a, 1);
		fz_wr16(a + 2, 0x0800);
		a[4] = 6;
		a[5] = 4;
		fz_wr16(a + 6, (sub & 0x10) ? 2 : 1);
		memcpy(a + 8, r + 6, 6);
		fz_wr32(a + 14, who);
		memset(a + 18, 0, 6);
		fz_wr32(a + 24, (sub & 0x20) ? who : FZ_STACK_IP);
		fz_send_raw(&fz, r, sizeof(r));
		break;
	}
	case 3: {
		uint8_t sel = fz_u8(in);
		fz_sysctl_op(&fz, sel, fz_u8(in));
		break;
	}
	case 4:
		(void)ustack_if_set_mtu(fz.st, fz.ifindex, 68 + fz_u16(in) % (FZ_MTU - 67));
		break;
	case 5: {
		uint64_t sum = 0;
		for (size_t i = 0; i < ustack_counter_count(); i++)
			sum += ustack_counter_value(fz.st, i);
		struct ustack_if_stats ifs;
		(void)ustack_if_stats(fz.st, fz.ifindex, &ifs);
		(void)sum;
		break;
	}
	default: /* a SYN flood step: SYNs from many ports to port 80 */
		for (unsigned i = 0; i < (sub >> 3) + 1u; i++) {
			struct fz_flow tmp = { .paddr = FZ_PEER2_IP, .pport = (uint16_t)(30000 + i), .sport = 80 };
			struct fz_seg s = { .flags = 0x02, .seq = 1000u * i, .win = 1024 };
			fz_peer_send(&peer, &tmp, &s);
		}
		break;
	}
}

static void prelude(uint8_t cfg)
{
	uint8_t o[20];
	bool sack = cfg & 8, ts = cfg & 16;
	int ws = (cfg & 32) ? 7 : -1;
	if (cfg & 2) {
		int lfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
		(void)ustack_bind(fz.st, lfd, (struct sockaddr *)&a, sizeof(a));
		int qlen = 8; /* Fast Open children, when a sysctl op turns the server bit on */
		(void)ustack_setsockopt(fz.st, lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
		(void)ustack_listen(fz.st, lfd, 8);
		struct fz_flow *fl = fz_flow_get(&peer, FZ_PEER_IP, 40000, 80);
		size_t n = fz_syn_opts(&peer, o, 1460, sack, ts, ws);
		if (fz_peer_connect(&peer, fl, o, n, ts))
			(void)ustack_accept4(fz.st, lfd, NULL, NULL, SOCK_NONBLOCK);
	}
	if (cfg & 4) {
		int fd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5001),
					 .sin_addr = { htonl(FZ_PEER_IP) } };
		(void)ustack_connect(fz.st, fd, (struct sockaddr *)&a, sizeof(a));
		fz_pump(&fz);
		for (unsigned i = 0; i < peer.nflows; i++) {
			struct fz_flow *fl = &peer.flows[i];
			if (fl->pport == 5001 && fl->st_known && !fl->p_syn_sent) {
				size_t n = fz_syn_opts(&peer, o, 1460, sack, ts, ws);
				if (ts) /* the SYN-ACK echoes the stack's TSval */
					fz_wr32(o + 4 + 8, fl->st_tsval);
				(void)fz_peer_accept(&peer, fl, o, n);
				break;
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t cfg = fz_u8(&in);
	fz_init(&fz, (cfg & 1) ? USTACK_LINK_ETHER : USTACK_LINK_RAWIP, 1000000);
	fz_peer_init(&peer, &fz);
	if (cfg & 0x40)
		fz_trace_frames(&fz);
	if (cfg & 0x80) {
		uint8_t sel = fz_u8(&in);
		fz_sysctl_op(&fz, sel, fz_u8(&in));
	}
	prelude(cfg);
	for (int ops = 0; ops < 512 && fz_more(&in); ops++) {
		switch (fz_u8(&in) % 8) {
		case 0:
		case 1: fz_seg_op(&peer, &in); break;
		case 2: fz_time_op(&fz, fz_u8(&in)); break;
		case 3:
		case 4: fz_socket_op(&fz, &in); break;
		case 5: fz_icmp_error_op(&peer, &in); break;
		case 6: op_raw(&in); break;
		default: op_misc(&in); break;
		}
	}
	fz_fini(&fz);
	return 0;
}
