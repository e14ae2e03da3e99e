/*
 * IPv4 input and reassembly.
 *
 *   1. ipv4_parse on the whole input: each verdict up to the options agrees with an
 *      independent reading of the header (Linux's ip_rcv_core order), and a parsed header emits
 *      back (ipv4_emit) to the same fields.
 *   2. the input as a script for a stack on a raw-IP link (192.0.2.2/24, listening on TCP port
 *      80): packets with fix-ups, and datagrams cut into fragments in any order, size, overlap
 *      and with any timing, through ip_rcv and ip_defrag to ICMP and TCP; replies bigger than
 *      the MTU come back fragmented and every fragment is checked by the oracle.
 *
 *        records until the input ends (at most 256), r = u8, r % 6:
 *        0 PKT    u8 fix-ups, u16 length, bytes: bit0 tot_len = length, bit1 header
 *                 checksum, bit2 daddr = the stack, bit3 saddr = 192.0.2.1, bit4 ihl 5,
 *                 bit5 the flags/offset word = u16, bit6 protocol = u8, bit7 TCP/ICMP
 *                 checksum (unfragmented)
 *        1 DGRAM  u8 slot (4 slots), u8 kind (ICMP echo, TCP SYN to port 80, UDP, protocol
 *                 99; bit2: from 192.0.2.3), u16 payload length (% 9000): a datagram to cut
 *        2 FRAG   u8 slot, u16 offset in 8-byte units, u16 length, u8 flags (bit0 MF from
 *                 bit1 instead of "not last", bit2 sent twice, bit3 DF, bit4 TTL 1, bit5 other
 *                 IP ID): one fragment of the slot's datagram
 *        3 ALL    u8 slot, u8 fragment size (×8 bytes), u8 order (bit0 reversed, bit1 even
 *                 ones first, bit2 drop the last, bit3 drop the first): all fragments
 *        4 TIME   u8: <100 ×100 ms; <250 (t-100) s; else to the next timer
 *        5 SYSCTL u8 sel, u8 val among net.ipv4.ip* (reassembly memory, timeout, TTL, ...)
 */
#include "fuzz_common.h"
#include "wire/ipv4.h"

#include <ustack/socket.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;

static void check_parse(const uint8_t *data, size_t size)
{
	struct ipv4_repr r;
	enum ipv4_parse_err e = ipv4_parse(data, size, &r);
	enum ipv4_parse_err want;
	size_t ihl = size ? (size_t)(data[0] & 15) * 4 : 0;
	if (size < 20)
		want = IPV4_ERR_SHORT;
	else if (data[0] >> 4 != 4 || ihl < 20)
		want = IPV4_ERR_VERSION;
	else if (ihl > size)
		want = IPV4_ERR_HDRLEN;
	else if (fz_csum(data, ihl) != 0)
		want = IPV4_ERR_CSUM;
	else if (fz_rd16(data + 2) > size)
		want = IPV4_ERR_TRUNCATED;
	else if (fz_rd16(data + 2) < ihl)
		want = IPV4_ERR_TOTLEN;
	else
		want = IPV4_OK;
	if (e != want && !(want == IPV4_OK && e == IPV4_ERR_OPTIONS && ihl > 20))
		abort();
	if (ipv4_parse_err_str(e)[0] == '?')
		abort();
	if (e != IPV4_OK)
		return;
	if (r.ihl != ihl || r.tot_len < r.ihl || r.tot_len > size)
		abort();
	static uint8_t buf[65536];
	ipv4_emit(buf, &r);
	struct ipv4_repr r2;
	if (ipv4_parse(buf, r.tot_len, &r2) != IPV4_OK)
		abort();
	if (r2.tos != r.tos || r2.ttl != r.ttl || r2.proto != r.proto || r2.tot_len != r.tot_len ||
	    r2.id != r.id || r2.df != r.df || r2.mf != r.mf || r2.frag_off != r.frag_off ||
	    r2.saddr != r.saddr || r2.daddr != r.daddr || r2.ihl != 20)
		abort();
}

struct dgram {
	uint8_t hdr[20];
	uint8_t data[9000 + 40];
	size_t len;  /* payload (the IP datagram's data) */
	uint16_t id;
};
static struct dgram slots[4];
static uint16_t gen;

static void op_pkt(struct fz_in *in)
{
	uint8_t fix = fz_u8(in);
	uint16_t want = fz_u16(in) % (FZ_MTU + 1);
	size_t len;
	const uint8_t *b = fz_bytes(in, want, &len);
	uint16_t frag = (fix & 0x20) ? fz_u16(in) : 0;
	uint8_t proto = (fix & 0x40) ? fz_u8(in) : 0;
	static uint8_t pkt[FZ_MTU];
	memcpy(pkt, b, len);
	if (len >= 20) {
		if (fix & 0x10)
			pkt[0] = 0x45;
		size_t ihl = (size_t)(pkt[0] & 15) * 4;
		if (fix & 1)
			fz_wr16(pkt + 2, (uint16_t)len);
		if (fix & 4)
			fz_wr32(pkt + 16, FZ_STACK_IP);
		if (fix & 8)
			fz_wr32(pkt + 12, FZ_PEER_IP);
		if (fix & 0x20)
			fz_wr16(pkt + 6, frag);
		if (fix & 0x40)
			pkt[9] = proto;
		if ((fix & 0x80) && ihl >= 20 && ihl <= len && !(fz_rd16(pkt + 6) & 0x3fff)) {
			fz_fix_l4_csum(pkt, len, ihl);
		}
		if ((fix & 2) && ihl >= 20 && ihl <= len) {
			fz_fix_ip_csum(pkt, ihl);
		}
	}
	fz_send_ip(&fz, pkt, len);
}

static void op_dgram(struct fz_in *in)
{
	struct dgram *d = &slots[fz_u8(in) & 3];
	uint8_t kind = fz_u8(in);
	size_t plen = fz_u16(in) % 9000;
	uint32_t src = (kind & 4) ? FZ_PEER2_IP : FZ_PEER_IP;
	uint8_t proto;
	uint8_t *p = d->data;
	for (size_t i = 0; i < plen + 20; i++)
		p[i] = (uint8_t)(i * 7);
	switch (kind & 3) {
	case 0: /* ICMP echo request */
		proto = 1;
		d->len = 8 + plen;
		memset(p, 0, 8);
		p[0] = 8;
		fz_wr16(p + 4, 0x4242);
		fz_wr16(p + 6, gen);
		fz_wr16(p + 2, fz_csum(p, d->len));
		break;
	case 1: /* TCP SYN to the listener, with a payload */
		proto = 6;
		d->len = 20 + plen;
		memset(p, 0, 20);
		fz_wr16(p, (uint16_t)(30000 + gen));
		fz_wr16(p + 2, 80);
		fz_wr32(p + 4, 1000u * gen);
		p[12] = 0x50;
		p[13] = 0x02;
		fz_wr16(p + 14, 65535);
		fz_wr16(p + 16, fz_l4_csum(p, d->len, src, FZ_STACK_IP, 6));
		break;
	case 2: /* UDP to port 9 */
		proto = 17;
		d->len = 8 + plen;
		fz_wr16(p, 5000);
		fz_wr16(p + 2, 9);
		fz_wr16(p + 4, (uint16_t)d->len);
		fz_wr16(p + 6, 0);
		fz_wr16(p + 6, fz_l4_csum(p, d->len, src, FZ_STACK_IP, 17));
		break;
	default:
		proto = 99;
		d->len = plen;
		break;
	}
	d->id = (uint16_t)(0x100 + gen++);
	fz_ip_hdr(d->hdr, proto, src, FZ_STACK_IP, 20, d->id, 0, 64);
}

/* Sends [off, off+len) of the slot's datagram as a fragment. */
static void send_frag(struct dgram *d, size_t off, size_t len, bool mf, uint8_t flags)
{
	static uint8_t pkt[20 + 2048];
	if (off > d->len)
		off = d->len;
	if (len > d->len - off)
		len = d->len - off;
	if (len > sizeof(pkt) - 20)
		len = sizeof(pkt) - 20;
	memcpy(pkt, d->hdr, 20);
	memcpy(pkt + 20, d->data + off, len);
	uint16_t fo = (uint16_t)((mf ? 0x2000 : 0) | ((flags & 8) ? 0x4000 : 0) | ((off / 8) & 0x1fff));
	fz_ip_hdr(pkt, d->hdr[9], fz_rd32(d->hdr + 12), FZ_STACK_IP, (uint16_t)(20 + len),
		  (flags & 0x20) ? (uint16_t)(d->id ^ 1) : d->id, fo, (flags & 16) ? 1 : 64);
	fz_send_ip(&fz, pkt, 20 + len);
	if (flags & 4)
		fz_send_ip(&fz, pkt, 20 + len);
}

static void op_frag(struct fz_in *in)
{
	struct dgram *d = &slots[fz_u8(in) & 3];
	size_t off = (size_t)fz_u16(in) * 8 % (d->len + 16);
	size_t len = fz_u16(in) % 2049;
	uint8_t flags = fz_u8(in);
	bool mf = (flags & 1) ? (flags & 2) : off + len < d->len;
	send_frag(d, off, len, mf, flags);
}

static void op_all(struct fz_in *in)
{
	struct dgram *d = &slots[fz_u8(in) & 3];
	size_t step = (size_t)(fz_u8(in) | 1) * 8;
	uint8_t order = fz_u8(in);
	if (step > 1480)
		step = 1480;
	size_t n = (d->len + step - 1) / step;
	if (!n)
		n = 1;
	size_t seq[64];
	size_t k = 0;
	if (n > 64)
		n = 64;
	if (order & 2) {
		for (size_t i = 0; i < n; i += 2)
			seq[k++] = i;
		for (size_t i = 1; i < n; i += 2)
			seq[k++] = i;
	} else {
		for (size_t i = 0; i < n; i++)
			seq[k++] = i;
	}
	for (size_t j = 0; j < n; j++) {
		size_t i = (order & 1) ? seq[n - 1 - j] : seq[j];
		if (((order & 4) && i == n - 1) || ((order & 8) && i == 0))
			continue;
		size_t off = i * step;
		send_frag(d, off, step, off + step < d->len, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);

	struct fz_in in = { data, size };
	fz_init(&fz, USTACK_LINK_RAWIP, 1000000);
	memset(slots, 0, sizeof(slots));
	gen = 0;
	int lfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
	(void)ustack_bind(fz.st, lfd, (struct sockaddr *)&a, sizeof(a));
	(void)ustack_listen(fz.st, lfd, 4);
	for (int n = 0; n < 256 && fz_more(&in); n++) {
		switch (fz_u8(&in) % 6) {
		case 0: op_pkt(&in); break;
		case 1: op_dgram(&in); break;
		case 2: op_frag(&in); break;
		case 3: op_all(&in); break;
		case 4: {
			uint8_t t = fz_u8(&in);
			if (t < 100)
				fz_advance(&fz, (uint64_t)t * 100);
			else if (t < 250)
				fz_advance(&fz, (uint64_t)(t - 100) * 1000);
			else
				fz_advance_next(&fz, 3600 * 1000);
			break;
		}
		default: {
			uint8_t sel = fz_u8(&in);
			fz_sysctl_op_prefix(&fz, "net.ipv4.ip", sel, fz_u8(&in));
			break;
		}
		}
	}
	fz_fini(&fz);
	return 0;
}
