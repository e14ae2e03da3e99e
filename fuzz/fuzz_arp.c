/*
 * ARP and the neighbour cache.
 *
 *   1. arp_parse on the whole input: its verdict agrees with the header bytes, and a parsed
 *      packet emits back (arp_emit) to the same 28 bytes.
 *   2. the input as a script for a stack on an Ethernet link (192.0.2.2/24), exercising the
 *      NUD state machine (INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED), its queue of
 *      packets waiting for resolution, its timers and its garbage collection:
 *
 *        config u8: bit0 the harness answers the stack's ARP requests itself
 *        records until the input ends (at most 256), r = u8, r % 6:
 *        0 ARP   u8 fix-ups, then 28 bytes of ARP body (missing bytes are zero); fix-ups:
 *                bit0 valid htype/ptype/hlen/plen, bit1 op = request (bit2: reply), bit3 tpa =
 *                the stack, bit4 spa = 192.0.2.x (x = body[17]), bit5 broadcast (else to
 *                the stack's MAC), bit6 Ethernet source = sha, bit7 sha = the MAC of spa
 *        1 TIME  u8: <128 ×10 ms; <250 (t-128) s; else to the next timer
 *        2 PING  u8 host (192.0.2.x, or beyond the gateway when bit7), u16 payload length
 *        3 SYSCTL u8 sel, u8 val (neighbour sysctls)
 *        4 ECHO  an echo request from 192.0.2.x (u8 x): the reply needs the neighbour
 *        5 TCP   the stack connects to 192.0.2.x:80 (u8 x), its SYN waits for the neighbour
 */
#include "fuzz_common.h"
#include "wire/arp.h"
#include "net/arp.h"

#include <ustack/socket.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;

static void check_parse(const uint8_t *data, size_t size)
{
	struct arp_repr r;
	enum arp_parse_err e = arp_parse(data, size, &r);
	if (size < ARP_LEN) {
		if (e != ARP_ERR_SHORT)
			abort();
		return;
	}
	bool fmt = fz_rd16(data) == 1 && fz_rd16(data + 2) == 0x0800 && data[4] == 6 && data[5] == 4;
	uint16_t op = fz_rd16(data + 6);
	enum arp_parse_err want = !fmt ? ARP_ERR_FORMAT : (op == 1 || op == 2) ? ARP_OK : ARP_ERR_OP;
	if (e != want)
		abort();
	if (e != ARP_OK)
		return;
	uint8_t out[ARP_LEN];
	arp_emit(out, &r);
	if (memcmp(out, data, ARP_LEN) != 0)
		abort();
}

static void arp_frame(struct fz_in *in)
{
	uint8_t fix = fz_u8(in);
	uint8_t body[28] = { 0 };
	size_t got;
	const uint8_t *b = fz_bytes(in, 28, &got);
	memcpy(body, b, got);
	if (fix & 1) {
		fz_wr16(body, 1);
		fz_wr16(body + 2, 0x0800);
		body[4] = 6;
		body[5] = 4;
	}
	if (fix & 2)
		fz_wr16(body + 6, 1);
	if (fix & 4)
		fz_wr16(body + 6, 2);
	if (fix & 8)
		fz_wr32(body + 24, FZ_STACK_IP);
	if (fix & 16)
		fz_wr32(body + 14, (FZ_STACK_IP & 0xffffff00u) | body[17]);
	if (fix & 128)
		fz_peer_mac(fz_rd32(body + 14), body + 8);
	uint8_t fr[14 + 28];
	if (fix & 32)
		memset(fr, 0xff, 6);
	else
		memcpy(fr, FZ_STACK_MAC, 6);
	if (fix & 64)
		memcpy(fr + 6, body + 8, 6);
	else
		fz_peer_mac(FZ_PEER_IP, fr + 6);
	fz_wr16(fr + 12, 0x0806);
	memcpy(fr + 14, body, 28);
	fz_send_raw(&fz, fr, sizeof(fr));
}

static uint32_t host(uint8_t x)
{
	return (x & 0x80) ? FZ_FAR_IP + (x & 7) : (FZ_STACK_IP & 0xffffff00u) | (x & 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);

	struct fz_in in = { data, size };
	uint8_t cfg = fz_u8(&in);
	fz_init(&fz, USTACK_LINK_ETHER, 1000000);
	fz.auto_arp = cfg & 1;
	int fd = -1;
	for (int n = 0; n < 256 && fz_more(&in); n++) {
		uint8_t r = fz_u8(&in);
		switch (r % 6) {
		case 0:
			arp_frame(&in);
			break;
		case 1: {
			uint8_t t = fz_u8(&in);
			if (t < 128)
				fz_advance(&fz, (uint64_t)t * 10);
			else if (t < 250)
				fz_advance(&fz, (uint64_t)(t - 128) * 1000);
			else
				fz_advance_next(&fz, 3600 * 1000);
			break;
		}
		case 2: {
			uint32_t dst = host(fz_u8(&in));
			uint16_t len = fz_u16(&in);
			(void)ustack_ping(fz.st, (struct in_addr){ htonl(dst) }, 1, (uint16_t)n, len % 1473);
			fz_pump(&fz);
			break;
		}
		case 3: {
			uint8_t sel = fz_u8(&in);
			fz_sysctl_op_prefix(&fz, "net.ipv4.neigh.", sel, fz_u8(&in));
			break;
		}
		case 4: {
			uint32_t src = host(fz_u8(&in) & 0x7f);
			uint8_t pkt[20 + 16];
			memset(pkt + 20, 0, 16);
			pkt[20] = 8;
			fz_wr16(pkt + 24, 0x77);
			fz_wr16(pkt + 22, fz_csum(pkt + 20, 16));
			fz_ip_hdr(pkt, 1, src, FZ_STACK_IP, sizeof(pkt), (uint16_t)n, 0, 64);
			fz_send_ip(&fz, pkt, sizeof(pkt));
			break;
		}
		default: {
			uint32_t dst = host(fz_u8(&in));
			if (fd >= 0)
				(void)ustack_close(fz.st, fd);
			fd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80),
						 .sin_addr = { htonl(dst) } };
			(void)ustack_connect(fz.st, fd, (struct sockaddr *)&a, sizeof(a));
			fz_pump(&fz);
			break;
		}
		}
		/* the cache never reports a state outside the NUD set */
		uint8_t mac[6];
		enum nud_state s = neigh_lookup_state(fz.st, fz.ifindex, FZ_PEER_IP, mac);
		if ((int)s < 0 || s > NUD_FAILED)
			abort();
	}
	fz_fini(&fz);
	return 0;
}
