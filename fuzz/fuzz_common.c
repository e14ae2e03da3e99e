#include "fuzz_common.h"

#include <ustack/socket.h>
#include <ustack/sysctl.h>
#include <ustack/trace.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/errqueue.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the input ---- */

uint8_t fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

uint16_t fz_u16(struct fz_in *in)
{
	uint16_t hi = fz_u8(in);
	return (uint16_t)(hi << 8 | fz_u8(in));
}

uint32_t fz_u32(struct fz_in *in)
{
	uint32_t hi = fz_u16(in);
	return hi << 16 | fz_u16(in);
}

const uint8_t *fz_bytes(struct fz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;
	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* ---- checksums ---- */

uint32_t fz_sum(const uint8_t *b, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

uint16_t fz_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t fz_csum(const uint8_t *b, size_t len) { return fz_fold(fz_sum(b, len, 0)); }

uint16_t fz_l4_csum(const uint8_t *seg, size_t len, uint32_t src, uint32_t dst, uint8_t proto)
{
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint32_t)len;
	return fz_fold(fz_sum(seg, len, sum));
}

void fz_fix_l4_csum(uint8_t *pkt, size_t len, size_t ihl)
{
	size_t tot = fz_rd16(pkt + 2);
	if (tot > len || tot < ihl)
		tot = len;
	uint8_t *l4 = pkt + ihl;
	size_t l4len = tot - ihl;
	if (pkt[9] == 6 && l4len >= 20) {
		fz_wr16(l4 + 16, 0);
		fz_wr16(l4 + 16, fz_l4_csum(l4, l4len, fz_rd32(pkt + 12), fz_rd32(pkt + 16), 6));
	} else if (pkt[9] == 1 && l4len >= 4) {
		fz_wr16(l4 + 2, 0);
		fz_wr16(l4 + 2, fz_csum(l4, l4len));
	}
}

void fz_fix_ip_csum(uint8_t *pkt, size_t ihl)
{
	fz_wr16(pkt + 10, 0);
	fz_wr16(pkt + 10, fz_csum(pkt, ihl));
}

uint16_t fz_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
uint32_t fz_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
void fz_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
void fz_wr32(uint8_t *p, uint32_t v)
{
	fz_wr16(p, (uint16_t)(v >> 16));
	fz_wr16(p + 2, (uint16_t)v);
}

/* ---- the oracle ---- */

__attribute__((noreturn, format(printf, 1, 2)))
static void oracle_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz oracle: the stack sent a malformed frame: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void check_ipv4(const uint8_t *b, size_t len)
{
	if (len < 20)
		oracle_fail("IPv4 packet of %zu bytes", len);
	if (b[0] >> 4 != 4 || (b[0] & 15) < 5)
		oracle_fail("version/ihl byte 0x%02x", b[0]);
	size_t ihl = (size_t)(b[0] & 15) * 4;
	size_t tot = fz_rd16(b + 2);
	if (ihl > len || tot < ihl || tot > len)
		oracle_fail("ihl %zu tot_len %zu in %zu bytes", ihl, tot, len);
	if (tot > FZ_MTU)
		oracle_fail("tot_len %zu above the MTU", tot);
	if (fz_csum(b, ihl) != 0)
		oracle_fail("bad IPv4 header checksum");
	uint16_t fo = fz_rd16(b + 6);
	if (fo & 0x8000)
		oracle_fail("reserved fragment bit set");
	if ((fo & 0x2000) && (tot - ihl) % 8)
		oracle_fail("non-last fragment of %zu bytes", tot - ihl);
	if (fo & 0x3fff)
		return; /* a fragment: the transport checksum spans the datagram */
	const uint8_t *l4 = b + ihl;
	size_t l4len = tot - ihl;
	uint32_t src = fz_rd32(b + 12), dst = fz_rd32(b + 16);
	if (b[9] == 6) {
		if (l4len < 20)
			oracle_fail("TCP segment of %zu bytes", l4len);
		size_t doff = (size_t)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > l4len)
			oracle_fail("TCP data offset %zu in %zu bytes", doff, l4len);
		if (fz_l4_csum(l4, l4len, src, dst, 6) != 0)
			oracle_fail("bad TCP checksum");
	} else if (b[9] == 1) {
		if (l4len < 8)
			oracle_fail("ICMP message of %zu bytes", l4len);
		if (fz_csum(l4, l4len) != 0)
			oracle_fail("bad ICMP checksum");
	}
}

void fz_check_tx(enum ustack_link_type type, const uint8_t *frame, size_t len)
{
	if (type == USTACK_LINK_RAWIP) {
		check_ipv4(frame, len);
		return;
	}
	if (len < 14 || len > 14 + FZ_MTU)
		oracle_fail("Ethernet frame of %zu bytes", len);
	if (memcmp(frame + 6, FZ_STACK_MAC, 6) != 0)
		oracle_fail("source MAC is not the interface's");
	uint16_t et = fz_rd16(frame + 12);
	if (et == 0x0800) {
		check_ipv4(frame + 14, len - 14);
	} else if (et == 0x0806) {
		const uint8_t *a = frame + 14;
		if (len < 14 + 28 || fz_rd16(a) != 1 || fz_rd16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4 ||
		    (fz_rd16(a + 6) != 1 && fz_rd16(a + 6) != 2))
			oracle_fail("malformed ARP");
		if (memcmp(a + 8, FZ_STACK_MAC, 6) != 0)
			oracle_fail("ARP sender MAC is not the interface's");
	} else {
		oracle_fail("ethertype 0x%04x", et);
	}
}

/* ---- the stack ---- */

const uint8_t FZ_STACK_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };

void fz_peer_mac(uint32_t ip, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0;
	fz_wr32(mac + 2, ip);
}

static bool is_peer_addr(uint32_t ip)
{
	return (ip & 0xffffff00u) == (FZ_STACK_IP & 0xffffff00u) && ip != FZ_STACK_IP &&
	       (ip & 0xff) != 0 && (ip & 0xff) != 0xff;
}

/* FUZZ_VERBOSE=1 in the environment prints every frame in and out (to read a reproducer). */
static void show(const struct fz *f, const char *dir, const uint8_t *b, size_t len)
{
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (!verbose)
		return;
	char line[512];
	ustack_frame_format(line, sizeof(line), f->type, b, len);
	fprintf(stderr, "%10.3f ms %s %s\n", (double)f->vc.now_us / 1000.0, dir, line);
}

static int fz_xmit(void *link, const void *frame, size_t len)
{
	struct fz *f = link;
	const uint8_t *b = frame;
	f->nsent++;
	show(f, "<", b, len);
	fz_check_tx(f->type, b, len);
	if (f->type == USTACK_LINK_ETHER && fz_rd16(b + 12) == 0x0806 && fz_rd16(b + 14 + 6) == 1) {
		uint32_t tpa = fz_rd32(b + 14 + 24);
		if (f->auto_arp && is_peer_addr(tpa) && f->narp_want < 4) {
			bool dup = false;
			for (unsigned i = 0; i < f->narp_want; i++)
				dup |= f->arp_want[i] == tpa;
			if (!dup)
				f->arp_want[f->narp_want++] = tpa;
		}
	}
	if (f->hook)
		f->hook(b, len, f->hook_arg);
	return 0;
}

void fz_init(struct fz *f, enum ustack_link_type type, uint64_t start_us)
{
	static const uint8_t seed[32] = { 0x75, 0x73, 0x74, 0x61, 0x63, 0x6b }; /* "ustack" */
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->auto_arp = true;
	f->trace_id = -1;
	for (int i = 0; i < 4; i++)
		f->epfds[i] = -1;
	ustack_vclock_init(&f->vc, start_us);
	struct ustack_config cfg = { .clock = &f->vc.clock, .secret_seed = seed, .name = "fuzz" };
	f->st = ustack_create(&cfg);
	if (!f->st)
		abort();
	struct ustack_if_config ic = { .name = "fz0", .type = type, .mtu = FZ_MTU, .xmit = fz_xmit,
				       .link = f };
	memcpy(ic.mac, FZ_STACK_MAC, 6);
	f->ifindex = ustack_if_add(f->st, &ic);
	if (f->ifindex < 1)
		abort();
	if (ustack_addr_add(f->st, f->ifindex, (struct in_addr){ htonl(FZ_STACK_IP) }, 24) != 0)
		abort();
	struct ustack_route r = { .prefixlen = 0, .gateway = { htonl(FZ_PEER_IP) }, .ifindex = f->ifindex };
	if (ustack_route_add(f->st, &r) != 0)
		abort();
}

void fz_fini(struct fz *f)
{
	ustack_destroy(f->st);
	f->st = NULL;
}

static void trace_fn(void *arg, const struct ustack_trace_event *ev)
{
	(void)arg;
	if (ev->kind != USTACK_TRACE_PKT_RX && ev->kind != USTACK_TRACE_PKT_TX)
		return;
	char line[512], tiny[8];
	size_t n = ustack_frame_format(line, sizeof(line), ev->link_type, ev->frame, ev->len);
	if (n < sizeof(line) && strlen(line) != n)
		abort();
	/* a truncating buffer must still give the full length and a terminated prefix */
	size_t m = ustack_frame_format(tiny, sizeof(tiny), ev->link_type, ev->frame, ev->len);
	if (m != n || strlen(tiny) >= sizeof(tiny))
		abort();
}

void fz_trace_frames(struct fz *f)
{
	f->trace_id = ustack_trace_subscribe(f->st, trace_fn, NULL);
}

void fz_send_raw(struct fz *f, const uint8_t *frame, size_t len)
{
	show(f, ">", frame, len);
	ustack_input(f->st, f->ifindex, frame, len);
	fz_pump(f);
}

void fz_send_ip(struct fz *f, const uint8_t *ip, size_t len)
{
	if (f->type == USTACK_LINK_RAWIP) {
		fz_send_raw(f, ip, len);
		return;
	}
	static uint8_t fr[14 + 65536];
	if (len > sizeof(fr) - 14)
		len = sizeof(fr) - 14;
	memcpy(fr, FZ_STACK_MAC, 6);
	fz_peer_mac(len >= 16 ? fz_rd32(ip + 12) : FZ_PEER_IP, fr + 6);
	fz_wr16(fr + 12, 0x0800);
	memcpy(fr + 14, ip, len);
	fz_send_raw(f, fr, len + 14);
}

void fz_pump(struct fz *f)
{
	for (int round = 0; round < 4 && f->narp_want; round++) {
		uint32_t want[4];
		unsigned n = f->narp_want;
		memcpy(want, f->arp_want, sizeof(want));
		f->narp_want = 0;
		for (unsigned i = 0; i < n; i++) {
			uint8_t r[42];
			memcpy(r, FZ_STACK_MAC, 6);
			fz_peer_mac(want[i], r + 6);
			fz_wr16(r + 12, 0x0806);
			uint8_t *a = r + 14;
			fz_wr16(a, 1);
			fz_wr16(a + 2, 0x0800);
			a[4] = 6;
			a[5] = 4;
			fz_wr16(a + 6, 2);
			fz_peer_mac(want[i], a + 8);
			fz_wr32(a + 14, want[i]);
			memcpy(a + 18, FZ_STACK_MAC, 6);
			fz_wr32(a + 24, FZ_STACK_IP);
			ustack_input(f->st, f->ifindex, r, sizeof(r));
		}
	}
}

void fz_advance(struct fz *f, uint64_t ms)
{
	f->vc.now_us += ms * 1000u;
	ustack_timers_run(f->st);
	fz_pump(f);
}

void fz_advance_next(struct fz *f, uint64_t cap_ms)
{
	uint64_t next = ustack_timers_next(f->st);
	if (next == UINT64_MAX)
		return;
	uint64_t cap = f->vc.now_us + cap_ms * 1000u;
	if (next > cap)
		next = cap;
	if (next > f->vc.now_us)
		f->vc.now_us = next;
	ustack_timers_run(f->st);
	fz_pump(f);
}

void fz_sysctl(struct fz *f, const char *name, const char *value)
{
	(void)ustack_sysctl_set(f->st, name, value);
}

void fz_ip_hdr(uint8_t *b, uint8_t proto, uint32_t src, uint32_t dst, uint16_t tot_len,
	       uint16_t id, uint16_t frag, uint8_t ttl)
{
	b[0] = 0x45;
	b[1] = 0;
	fz_wr16(b + 2, tot_len);
	fz_wr16(b + 4, id);
	fz_wr16(b + 6, frag);
	b[8] = ttl;
	b[9] = proto;
	fz_wr16(b + 10, 0);
	fz_wr32(b + 12, src);
	fz_wr32(b + 16, dst);
	fz_wr16(b + 10, fz_csum(b, 20));
}

/* ---- the TCP peer ---- */

static inline bool seq_after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

void fz_peer_init(struct fz_peer *p, struct fz *f)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->ts_base = 0x10000000u;
	f->hook = fz_peer_learn;
	f->hook_arg = p;
}

uint32_t fz_peer_tsval(struct fz_peer *p)
{
	return p->ts_base + (uint32_t)(p->f->vc.now_us / 1000u);
}

struct fz_flow *fz_flow_get(struct fz_peer *p, uint32_t paddr, uint16_t pport, uint16_t sport)
{
	for (unsigned i = 0; i < p->nflows; i++) {
		struct fz_flow *fl = &p->flows[i];
		if (fl->paddr == paddr && fl->pport == pport && fl->sport == sport)
			return fl;
	}
	if (p->nflows == FZ_MAX_FLOWS)
		return NULL;
	struct fz_flow *fl = &p->flows[p->nflows];
	memset(fl, 0, sizeof(*fl));
	fl->used = true;
	fl->paddr = paddr;
	fl->pport = pport;
	fl->sport = sport;
	fl->p_isn = 0x01000000u * (p->nflows + 1) + 0x1000;
	fl->p_nxt = fl->p_isn;
	p->nflows++;
	return fl;
}

void fz_peer_learn(const uint8_t *frame, size_t len, void *arg)
{
	struct fz_peer *p = arg;
	const uint8_t *ip = frame;
	if (p->f->type == USTACK_LINK_ETHER) {
		if (len < 14 || fz_rd16(frame + 12) != 0x0800)
			return;
		ip += 14;
		len -= 14;
	}
	/* the oracle has checked the header already */
	size_t ihl = (size_t)(ip[0] & 15) * 4, tot = fz_rd16(ip + 2);
	if (ip[9] != 6 || (fz_rd16(ip + 6) & 0x3fff))
		return;
	const uint8_t *t = ip + ihl;
	size_t tlen = tot - ihl, doff = (size_t)(t[12] >> 4) * 4;
	uint32_t daddr = fz_rd32(ip + 16);
	uint16_t sport = fz_rd16(t), dport = fz_rd16(t + 2);
	uint8_t flags = t[13];
	uint32_t seq = fz_rd32(t + 4), ack = fz_rd32(t + 8);
	struct fz_flow *fl = NULL;
	for (unsigned i = 0; i < p->nflows; i++)
		if (p->flows[i].paddr == daddr && p->flows[i].pport == dport && p->flows[i].sport == sport)
			fl = &p->flows[i];
	if (!fl) {
		if (!(flags & 0x02))
			return;
		fl = fz_flow_get(p, daddr, dport, sport); /* an active open */
		if (!fl)
			return;
	}
	fl->nseg++;
	size_t plen = tlen - doff;
	if (flags & 0x02) {
		if (!fl->st_known || fl->st_iss != seq) {
			fl->st_known = true;
			fl->st_iss = seq;
			fl->st_una = seq;
			fl->st_nxt = seq + 1;
		}
	}
	if (fl->st_known) {
		uint32_t end = seq + (uint32_t)plen + !!(flags & 0x02) + !!(flags & 0x01);
		if (seq_after(end, fl->st_nxt) && end - fl->st_una < (1u << 30))
			fl->st_nxt = end;
	}
	if (flags & 0x10) {
		fl->rcv_known = true;
		fl->st_rcv_nxt = ack;
	}
	fl->st_win = fz_rd16(t + 14);
	/* the stack's TSval, for our TSecr */
	for (size_t i = 20; i < doff;) {
		uint8_t kind = t[i];
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= doff || t[i + 1] < 2 || t[i + 1] > doff - i)
			break;
		if (kind == 8 && t[i + 1] == 10)
			fl->st_tsval = fz_rd32(t + i + 2);
		i += t[i + 1];
	}
	size_t keep = ihl + doff + (plen < 8 ? plen : 8);
	if (keep > sizeof(fl->last))
		keep = sizeof(fl->last);
	memcpy(fl->last, ip, keep);
	fl->last_len = keep;
}

void fz_peer_send(struct fz_peer *p, struct fz_flow *fl, const struct fz_seg *s)
{
	static uint8_t pkt[FZ_FRAME_MAX];
	size_t ihl = s->ip_opts ? 24 : 20;
	size_t optlen = s->optlen > 40 ? 40 : s->optlen;
	size_t thl = 20 + ((optlen + 3) & ~(size_t)3);
	size_t plen = s->plen;
	if (ihl + thl + plen > FZ_MTU)
		plen = FZ_MTU - ihl - thl;
	uint8_t *t = pkt + ihl;
	memset(t, 0, thl);
	fz_wr16(t, fl->pport);
	fz_wr16(t + 2, fl->sport);
	fz_wr32(t + 4, s->seq);
	fz_wr32(t + 8, s->ack);
	t[12] = (uint8_t)((thl / 4) << 4);
	t[13] = s->flags;
	fz_wr16(t + 14, s->win);
	fz_wr16(t + 18, s->urg);
	if (optlen)
		memcpy(t + 20, s->opts, optlen);
	for (size_t i = 20 + optlen; i < thl; i++)
		t[i] = 0; /* EOL padding */
	for (size_t i = 0; i < plen; i++)
		t[thl + i] = s->payload ? s->payload[i] : (uint8_t)(s->seq + i);
	size_t l4 = thl + plen;
	fz_wr16(t + 16, fz_l4_csum(t, l4, fl->paddr, FZ_STACK_IP, 6));
	if (s->bad_csum)
		t[16] ^= 0x5a;
	size_t tot = ihl + l4;
	uint16_t id = ++p->f->ip_id;
	fz_ip_hdr(pkt, 6, fl->paddr, FZ_STACK_IP, (uint16_t)tot, id, 0x4000, 64);
	if (s->ip_opts) {
		pkt[0] = 0x46;
		pkt[20] = 1;
		pkt[21] = 1;
		pkt[22] = 1;
		pkt[23] = 0;
		fz_wr16(pkt + 10, 0);
		fz_wr16(pkt + 10, fz_csum(pkt, 24));
	}
	if (s->bad_ip_csum)
		pkt[10] ^= 0x11;
	size_t split = (size_t)s->frag_at * 8;
	if (split && split < l4) {
		/* two fragments: [0, split) with MF, then the rest */
		static uint8_t fr[FZ_FRAME_MAX];
		memcpy(fr, pkt, ihl + split);
		fz_wr16(fr + 2, (uint16_t)(ihl + split));
		fz_wr16(fr + 6, 0x2000);
		fz_wr16(fr + 10, 0);
		fz_wr16(fr + 10, fz_csum(fr, ihl));
		fz_send_ip(p->f, fr, ihl + split);
		memcpy(fr, pkt, ihl);
		memcpy(fr + ihl, pkt + ihl + split, l4 - split);
		fz_wr16(fr + 2, (uint16_t)(ihl + l4 - split));
		fz_wr16(fr + 6, (uint16_t)(split / 8));
		fz_wr16(fr + 10, 0);
		fz_wr16(fr + 10, fz_csum(fr, ihl));
		fz_send_ip(p->f, fr, ihl + l4 - split);
	} else {
		size_t extra = s->trailing;
		if (tot + extra > sizeof(pkt))
			extra = sizeof(pkt) - tot;
		memset(pkt + tot, 0xee, extra);
		fz_send_ip(p->f, pkt, tot + extra);
	}
	if (s->track) {
		uint32_t end = s->seq + (uint32_t)plen + !!(s->flags & 0x02) + !!(s->flags & 0x01);
		if (!fl->p_syn_sent && (s->flags & 0x02)) {
			fl->p_syn_sent = true;
			fl->p_isn = s->seq;
			fl->p_nxt = end;
		} else if (seq_after(end, fl->p_nxt) && end - fl->p_nxt < (1u << 30)) {
			fl->p_nxt = end;
		}
		if ((s->flags & 0x10) && fl->st_known && seq_after(s->ack, fl->st_una) &&
		    !seq_after(s->ack, fl->st_nxt))
			fl->st_una = s->ack;
	}
}

size_t fz_syn_opts(struct fz_peer *p, uint8_t *o, uint16_t mss, bool sack, bool ts, int wscale)
{
	size_t n = 0;
	o[n++] = 2;
	o[n++] = 4;
	fz_wr16(o + n, mss);
	n += 2;
	if (ts) {
		if (sack) {
			o[n++] = 4;
			o[n++] = 2;
		} else {
			o[n++] = 1;
			o[n++] = 1;
		}
		o[n++] = 8;
		o[n++] = 10;
		fz_wr32(o + n, fz_peer_tsval(p));
		fz_wr32(o + n + 4, 0);
		n += 8;
	} else if (sack) {
		o[n++] = 1;
		o[n++] = 1;
		o[n++] = 4;
		o[n++] = 2;
	}
	if (wscale >= 0) {
		o[n++] = 1;
		o[n++] = 3;
		o[n++] = 3;
		o[n++] = (uint8_t)wscale;
	}
	return n;
}

static size_t ts_opt(struct fz_peer *p, struct fz_flow *fl, uint8_t *o)
{
	o[0] = 1;
	o[1] = 1;
	o[2] = 8;
	o[3] = 10;
	fz_wr32(o + 4, fz_peer_tsval(p));
	fz_wr32(o + 8, fl->st_tsval);
	return 12;
}

bool fz_peer_connect(struct fz_peer *p, struct fz_flow *fl, const uint8_t *opts, size_t optlen,
		     bool ts)
{
	struct fz_seg s = { .flags = 0x02, .seq = fl->p_isn, .win = 65535, .opts = opts, .optlen = optlen,
			    .track = true };
	fl->p_syn_sent = false;
	fl->rcv_known = false;
	fz_peer_send(p, fl, &s);
	if (!fl->st_known || !fl->rcv_known || fl->st_rcv_nxt != fl->p_isn + 1)
		return false;
	uint8_t o[12];
	struct fz_seg a = { .flags = 0x10, .seq = fl->p_nxt, .ack = fl->st_nxt, .win = 65535,
			    .opts = o, .optlen = ts ? ts_opt(p, fl, o) : 0, .track = true };
	fz_peer_send(p, fl, &a);
	return true;
}

bool fz_peer_accept(struct fz_peer *p, struct fz_flow *fl, const uint8_t *opts, size_t optlen)
{
	if (!fl->st_known)
		return false;
	fl->rcv_known = false;
	fl->p_syn_sent = false;
	struct fz_seg s = { .flags = 0x12, .seq = fl->p_isn, .ack = fl->st_iss + 1, .win = 65535,
			    .opts = opts, .optlen = optlen, .track = true };
	fz_peer_send(p, fl, &s);
	return fl->rcv_known && fl->st_rcv_nxt == fl->p_isn + 1;
}

/* ---- operations shared by the targets ---- */

static const uint32_t flow_peers[2] = { FZ_PEER_IP, FZ_PEER2_IP };
static const uint16_t flow_sports[4] = { 80, 81, 5001, 22 };

static struct fz_flow *pick_flow(struct fz_peer *p, struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	if (!(b & 0x80) && p->nflows)
		return &p->flows[b % p->nflows];
	return fz_flow_get(p, flow_peers[b & 1], (uint16_t)(40000 + ((b >> 1) & 3)),
			   flow_sports[(b >> 3) & 3]);
}

void fz_seg_op(struct fz_peer *p, struct fz_in *in)
{
	struct fz_flow *fl = pick_flow(p, in);
	if (!fl)
		return;
	uint8_t flags = fz_u8(in), mode = fz_u8(in);
	uint32_t seq, ack;
	switch (mode & 3) {
	case 0: seq = fl->p_nxt; break;
	case 1: seq = (fl->rcv_known ? fl->st_rcv_nxt : fl->p_nxt) + (uint32_t)(int16_t)fz_u16(in); break;
	case 2: seq = fl->p_nxt + (uint32_t)(int16_t)fz_u16(in); break;
	default: seq = fz_u32(in); break;
	}
	switch ((mode >> 2) & 3) {
	case 0: ack = fl->st_nxt; break;
	case 1: ack = fl->st_una + fz_u16(in); break;
	case 2: ack = fl->st_una; break;
	default: ack = fz_u32(in); break;
	}
	struct fz_seg s = { .flags = flags, .seq = seq, .ack = ack, .track = (mode & 3) != 3 };
	s.win = fz_u16(in);
	uint8_t pl = fz_u8(in);
	size_t plen = pl < 128 ? pl : (size_t)(pl - 127) * 1460 / 128;
	uint8_t ext = (mode & 0x80) ? fz_u8(in) : 0;
	s.bad_csum = ext & 1;
	uint32_t ts_back = (ext & 2) ? fz_u16(in) : 0;
	s.urg = (ext & 4) ? fz_u16(in) : 0;
	s.bad_ip_csum = ext & 8;
	s.frag_at = (ext & 0x10) ? fz_u8(in) : 0;
	s.trailing = (ext & 0x20) ? fz_u8(in) : 0;
	s.ip_opts = ext & 0x80;

	uint8_t opts[40];
	size_t n = 0;
	if (mode & 0x10) {
		opts[n++] = 1;
		opts[n++] = 1;
		opts[n++] = 8;
		opts[n++] = 10;
		fz_wr32(opts + n, fz_peer_tsval(p) - ts_back);
		fz_wr32(opts + n + 4, fl->st_tsval);
		n += 8;
	}
	if (mode & 0x20) {
		unsigned k = 1 + (fz_u8(in) & 3);
		unsigned room = (unsigned)(40 - n - 4) / 8;
		unsigned put = k < room ? k : room;
		opts[n++] = 1;
		opts[n++] = 1;
		opts[n++] = 5;
		opts[n++] = (uint8_t)(2 + 8 * put);
		for (unsigned i = 0; i < k; i++) {
			uint32_t start = fl->st_una + fz_u16(in);
			uint32_t end = start + fz_u16(in);
			if (i < put) {
				fz_wr32(opts + n, start);
				fz_wr32(opts + n + 4, end);
				n += 8;
			}
		}
	}
	if (mode & 0x40) {
		size_t got;
		const uint8_t *raw = fz_bytes(in, fz_u8(in) % 41, &got);
		if (got > 40 - n)
			got = 40 - n;
		memcpy(opts + n, raw, got);
		n += got;
	}
	s.opts = opts;
	s.optlen = n;
	if (ext & 0x40) {
		size_t got;
		s.payload = fz_bytes(in, plen, &got);
		plen = got;
	}
	s.plen = plen;
	fz_peer_send(p, fl, &s);
}

void fz_time_op(struct fz *f, uint8_t t)
{
	if (t < 100)
		fz_advance(f, t);
	else if (t < 200)
		fz_advance(f, (uint64_t)(t - 100) * 50);
	else if (t < 250)
		fz_advance(f, (uint64_t)(t - 200) * 5000);
	else
		for (int i = 0; i < t - 249; i++)
			fz_advance_next(f, 3 * 3600 * 1000);
}

void fz_icmp_error_op(struct fz_peer *p, struct fz_in *in)
{
	uint8_t fsel = fz_u8(in), kind = fz_u8(in), mode = fz_u8(in);
	static const uint8_t types[9][2] = { { 3, 4 }, { 3, 3 }, { 3, 1 }, { 3, 0 }, { 3, 2 },
					     { 11, 0 }, { 12, 0 }, { 4, 0 }, { 3, 13 } };
	uint8_t type, code;
	uint32_t rest = 0;
	if (kind % 10 == 9) {
		type = fz_u8(in);
		code = fz_u8(in);
	} else {
		type = types[kind % 10][0];
		code = types[kind % 10][1];
	}
	if (type == 3 && code == 4)
		rest = fz_u16(in); /* next-hop MTU */
	else if (type == 12)
		rest = (uint32_t)fz_u8(in) << 24;

	uint8_t quote[128];
	size_t qlen;
	uint32_t src = FZ_PEER_IP;
	if (p->nflows && p->flows[fsel % p->nflows].last_len) {
		struct fz_flow *fl = &p->flows[fsel % p->nflows];
		memcpy(quote, fl->last, fl->last_len);
		qlen = fl->last_len;
		src = fl->paddr;
	} else {
		/* nothing sent yet: a made-up segment from the stack's port 80 */
		memset(quote, 0, 48);
		fz_ip_hdr(quote, 6, FZ_STACK_IP, FZ_PEER_IP, 40, 1, 0x4000, 64);
		fz_wr16(quote + 20, 80);
		fz_wr16(quote + 22, 40000);
		quote[32] = 0x50;
		qlen = 40;
	}
	size_t ihl = (size_t)(quote[0] & 15) * 4;
	switch (mode & 3) {
	case 0: qlen = qlen < ihl + 8 ? qlen : ihl + 8; break;
	case 1: break;
	case 2: qlen = qlen < ihl + 4 ? qlen : ihl + 4; break;
	default: {
		size_t want = fz_u8(in);
		qlen = want < qlen ? want : qlen;
		break;
	}
	}
	if ((mode & 4) && qlen >= ihl + 8)
		fz_wr32(quote + ihl + 4, fz_rd32(quote + ihl + 4) + (uint32_t)(int16_t)fz_u16(in));
	if (mode & 0x20 && qlen >= 20) /* a quote of something else: another protocol */
		quote[9] = (uint8_t)(mode >> 6) * 8 + 1;
	if (mode & 0x10)
		src = (mode & 0x40) ? FZ_FAR_IP : FZ_PEER2_IP;

	uint8_t pkt[20 + 8 + 128];
	size_t icmp_len = 8 + qlen;
	uint8_t *ic = pkt + 20;
	ic[0] = type;
	ic[1] = code;
	fz_wr16(ic + 2, 0);
	fz_wr32(ic + 4, rest);
	memcpy(ic + 8, quote, qlen);
	fz_wr16(ic + 2, fz_csum(ic, icmp_len));
	if (mode & 8)
		ic[2] ^= 0x40;
	fz_ip_hdr(pkt, 1, src, FZ_STACK_IP, (uint16_t)(20 + icmp_len), 7, 0, 64);
	fz_send_ip(p->f, pkt, 20 + icmp_len);
}

/* ---- socket calls ---- */

#define FZ_FD_BASE 3
#define FZ_NFDS 8

static const uint32_t peer_addrs[4] = { FZ_PEER_IP, FZ_PEER2_IP, FZ_FAR_IP, 0xc0000209u };
static const uint16_t peer_ports[4] = { 5001, 9, 80, 40000 };
static const uint16_t local_ports[4] = { 80, 81, 0, 40000 };

static uint8_t sendbuf[65536];
static uint8_t recvbuf[65536];

/*
 * u8 call, u8 a (descriptor 3 + (a & 7), and flags in the high bits), then the call's fields;
 * call % 20: 0 socket, 1 bind (u8), 2 listen (s8 backlog), 3 connect (u8: peer and port from
 * the tables, bit7 AF_UNSPEC), 4 accept4, 5 send (u16 length, u8 flags: MSG_MORE/EOR/
 * ZEROCOPY), 6 recv (u16 length, u8 flags: MSG_PEEK/WAITALL), 7 shutdown (how = a >> 3 & 3),
 * 8 close, 9 setsockopt (u8 option, u32 value), 10 getsockopt (TCP_INFO, SO_ERROR, ...),
 * 11 ioctl, 12 poll, 13 names and queue lengths, 14 epoll_create, 15 epoll_ctl (u8),
 * 16 epoll_wait, 17 recvmsg (bit6: MSG_ERRQUEUE), 18 fcntl, 19 write/read.
 */
static void socket_op(struct fz *f, struct fz_in *in);

void fz_socket_op(struct fz *f, struct fz_in *in)
{
	socket_op(f, in);
	fz_pump(f); /* a connect or a send may wait for ARP */
}

static void socket_op(struct fz *f, struct fz_in *in)
{
	struct ustack *st = f->st;
	uint8_t op = fz_u8(in);
	uint8_t a = fz_u8(in);
	int fd = FZ_FD_BASE + (a & (FZ_NFDS - 1));
	int one = 1;
	switch (op % 20) {
	case 0: { /* socket: mostly a TCP socket, sometimes an invalid one */
		static const int types[4] = { SOCK_STREAM | SOCK_NONBLOCK, SOCK_STREAM | SOCK_NONBLOCK,
					      SOCK_DGRAM | SOCK_NONBLOCK, SOCK_STREAM };
		int type = types[(a >> 3) & 3];
		int domain = (a & 0x80) ? AF_INET6 : AF_INET;
		int s = ustack_socket(st, domain, type, 0);
		if (s >= 0 && !(type & SOCK_NONBLOCK)) /* never keep a blocking socket */
			(void)ustack_fcntl(st, s, F_SETFL, O_NONBLOCK);
		break;
	}
	case 1: { /* bind */
		uint8_t b = fz_u8(in);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(local_ports[b & 3]) };
		static const uint32_t addrs[4] = { 0, FZ_STACK_IP, 0xc0000209u, 0x7f000001u };
		sa.sin_addr.s_addr = htonl(addrs[(b >> 2) & 3]);
		if (b & 0x10)
			sa.sin_port = htons((uint16_t)(1000 + (b >> 5)));
		(void)ustack_bind(st, fd, (struct sockaddr *)&sa, (b & 0x80) ? 8 : sizeof(sa));
		break;
	}
	case 2: /* listen */
		(void)ustack_listen(st, fd, (int8_t)fz_u8(in));
		break;
	case 3: { /* connect (non-blocking), or a disconnect with AF_UNSPEC */
		uint8_t b = fz_u8(in);
		struct sockaddr_in sa = { .sin_family = (b & 0x80) ? AF_UNSPEC : AF_INET,
					  .sin_port = htons(peer_ports[b & 3]) };
		sa.sin_addr.s_addr = htonl(peer_addrs[(b >> 2) & 3]);
		(void)ustack_fcntl(st, fd, F_SETFL, O_NONBLOCK);
		(void)ustack_connect(st, fd, (struct sockaddr *)&sa, sizeof(sa));
		break;
	}
	case 4: { /* accept4, always non-blocking */
		struct sockaddr_in sa;
		socklen_t len = (a & 0x80) ? 4 : sizeof(sa);
		(void)ustack_fcntl(st, fd, F_SETFL, O_NONBLOCK);
		int s = ustack_accept4(st, fd, (a & 0x40) ? NULL : (struct sockaddr *)&sa,
				       (a & 0x40) ? NULL : &len, SOCK_NONBLOCK);
		(void)s;
		break;
	}
	case 5: { /* send */
		uint16_t len = fz_u16(in);
		uint8_t b = fz_u8(in);
		static const int fl[4] = { 0, MSG_MORE, MSG_EOR, MSG_ZEROCOPY };
		if (b & 4) /* MSG_ZEROCOPY needs SO_ZEROCOPY */
			(void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
		(void)ustack_send(st, fd, sendbuf, len, fl[b & 3] | MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	}
	case 6: { /* recv */
		uint16_t len = fz_u16(in);
		uint8_t b = fz_u8(in);
		static const int fl[4] = { 0, MSG_PEEK, MSG_WAITALL, 0 };
		(void)ustack_recv(st, fd, recvbuf, len, fl[b & 3] | MSG_DONTWAIT);
		break;
	}
	case 7: /* shutdown: SHUT_RD, SHUT_WR, SHUT_RDWR, and an invalid one */
		(void)ustack_shutdown(st, fd, (a >> 3) & 3);
		break;
	case 8: /* close a socket, or (bit6) an epoll instance */
		(void)ustack_close(st, (a & 0x40) ? f->epfds[(a >> 3) & 3] : fd);
		break;
	case 9: { /* setsockopt */
		uint8_t b = fz_u8(in);
		int32_t v = (int32_t)fz_u32(in);
		switch (b % 18) {
		case 0: {
			/* on, off, or {1, 0} (the abortive close): a positive linger time makes close()
			 * wait for the FIN's ACK even on a non-blocking socket, as Linux's does, and
			 * nothing would answer it in this single-threaded harness */
			struct linger lg = { .l_onoff = v & 1, .l_linger = 0 };
			(void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			break;
		}
		case 1: v = (int32_t)((uint32_t)v & 0xffff); /* fall through */
		case 2: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)); break;
		case 3: v &= 0x3ffff; (void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)); break;
		case 4: v &= 0x3ffff; (void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)); break;
		case 5: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)); break;
		case 6: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v)); break;
		case 7: (void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)); break;
		case 8: v &= 0xffff; (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)); break;
		case 9: v &= 0xffff; (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v)); break;
		case 10: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)); break;
		case 11: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v)); break;
		case 12: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_SYNCNT, &v, sizeof(v)); break;
		case 13: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v)); break;
		case 14: (void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_INQ, &v, sizeof(v)); break;
		case 15: (void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)); break;
		case 16: {
			static const char *const cc[4] = { "reno", "cubic", "bbr", "" };
			const char *name = cc[v & 3];
			(void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name));
			break;
		}
		default: (void)ustack_setsockopt(st, fd, SOL_SOCKET, SO_ZEROCOPY, &v, sizeof(v)); break;
		}
		break;
	}
	case 10: { /* getsockopt */
		struct ustack_tcp_info ti;
		socklen_t len = sizeof(ti);
		switch ((a >> 3) & 7) {
		case 0:
		case 1:
			(void)ustack_getsockopt(st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
			break;
		case 2: {
			int v;
			len = sizeof(v);
			(void)ustack_getsockopt(st, fd, SOL_SOCKET, SO_ERROR, &v, &len);
			break;
		}
		case 3: {
			int v;
			len = sizeof(v);
			(void)ustack_getsockopt(st, fd, IPPROTO_TCP, TCP_MAXSEG, &v, &len);
			break;
		}
		case 4: {
			struct linger lg;
			len = sizeof(lg);
			(void)ustack_getsockopt(st, fd, SOL_SOCKET, SO_LINGER, &lg, &len);
			break;
		}
		case 5: {
			uint32_t mi[9];
			len = sizeof(mi);
			(void)ustack_getsockopt(st, fd, SOL_SOCKET, SO_MEMINFO, mi, &len);
			break;
		}
		case 6: {
			char name[16];
			len = sizeof(name);
			(void)ustack_getsockopt(st, fd, IPPROTO_TCP, TCP_CONGESTION, name, &len);
			break;
		}
		default:
			len = 8; /* a short TCP_INFO: a prefix */
			(void)ustack_getsockopt(st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
			break;
		}
		break;
	}
	case 11: { /* ioctl */
		static const unsigned long req[3] = { SIOCINQ, SIOCOUTQ, SIOCOUTQNSD };
		int v;
		(void)ustack_ioctl(st, fd, req[((a >> 3) & 3) % 3], &v);
		break;
	}
	case 12: { /* poll every descriptor, never waiting */
		struct pollfd pfd[FZ_NFDS];
		for (int i = 0; i < FZ_NFDS; i++)
			pfd[i] = (struct pollfd){ .fd = FZ_FD_BASE + i, .events = POLLIN | POLLOUT | POLLRDHUP };
		(void)ustack_poll(st, pfd, FZ_NFDS, 0);
		break;
	}
	case 13: { /* names */
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		if (a & 0x40)
			(void)ustack_getpeername(st, fd, (struct sockaddr *)&sa, &len);
		else
			(void)ustack_getsockname(st, fd, (struct sockaddr *)&sa, &len);
		int sq, aq, mb;
		(void)ustack_listen_queues(st, fd, &sq, &aq, &mb);
		(void)ustack_tcp_state(st, fd);
		break;
	}
	case 14: { /* an epoll instance */
		int ep = ustack_epoll_create(st, (a & 0x80) ? 0 : 1);
		if (ep >= 0)
			f->epfds[f->nep++ & 3] = ep;
		break;
	}
	case 15: { /* epoll_ctl: add, modify, delete fd (bit7: an epoll instance) on instance b & 3 */
		uint8_t b = fz_u8(in);
		int epfd = f->epfds[b & 3];
		if (b & 0x80)
			fd = f->epfds[(b >> 2) & 3];
		static const uint32_t evs[4] = { EPOLLIN, EPOLLIN | EPOLLOUT | EPOLLET,
						 EPOLLIN | EPOLLONESHOT, EPOLLRDHUP | EPOLLOUT };
		struct epoll_event ev = { .events = evs[(b >> 3) & 3], .data.fd = fd };
		static const int ops[3] = { EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL };
		(void)ustack_epoll_ctl(st, epfd, ops[((b >> 5) & 3) % 3], fd, &ev);
		break;
	}
	case 16: { /* epoll_wait, never waiting */
		struct epoll_event evs[8];
		(void)ustack_epoll_wait(st, f->epfds[a & 3], evs, 1 + ((a >> 2) & 7), 0);
		break;
	}
	case 17: { /* the error queue (zerocopy notifications) and recvmsg with TCP_INQ */
		uint8_t ctrl[64];
		struct iovec iov[2] = { { recvbuf, 100 }, { recvbuf + 100, 1000 } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctrl,
				    .msg_controllen = sizeof(ctrl) };
		(void)ustack_recvmsg(st, fd, &m, ((a & 0x40) ? MSG_ERRQUEUE : 0) | MSG_DONTWAIT);
		break;
	}
	case 18: { /* fcntl: O_NONBLOCK stays set */
		int fl = ustack_fcntl(st, fd, F_GETFL, 0);
		(void)fl;
		(void)ustack_fcntl(st, fd, F_SETFL, O_NONBLOCK | ((a & 0x40) ? O_APPEND : 0));
		break;
	}
	default: /* write/read wrappers */
		(void)ustack_setsockopt(st, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (a & 0x40)
			(void)ustack_write(st, fd, sendbuf, (size_t)(a & 0x3f) * 100);
		else
			(void)ustack_read(st, fd, recvbuf, (size_t)(a & 0x3f) * 100);
		break;
	}
}

/* ---- sysctls ---- */

struct fz_sysctl_choice {
	const char *name;
	const char *values[4];
};

static const struct fz_sysctl_choice sysctls[] = {
	{ "net.ipv4.tcp_sack", { "0", "1", "1", "0" } },
	{ "net.ipv4.tcp_timestamps", { "0", "1", "2", "1" } },
	{ "net.ipv4.tcp_window_scaling", { "0", "1", "1", "0" } },
	{ "net.ipv4.tcp_abort_on_overflow", { "1", "0", "1", "0" } },
	{ "net.ipv4.tcp_recovery", { "0", "1", "4", "5" } },
	{ "net.ipv4.tcp_early_retrans", { "0", "3", "4", "2" } },
	{ "net.ipv4.tcp_congestion_control", { "reno", "cubic", "reno", "cubic" } },
	{ "net.ipv4.tcp_syn_retries", { "1", "2", "6", "0" } },
	{ "net.ipv4.tcp_synack_retries", { "1", "0", "5", "2" } },
	{ "net.ipv4.tcp_max_syn_backlog", { "4", "1", "2048", "16" } },
	{ "net.ipv4.tcp_syncookies", { "0", "1", "2", "0" } },
	/* Fast Open: server without cookies (SYN data makes a child at once), with cookies, off */
	{ "net.ipv4.tcp_fastopen", { "0x603", "0x403", "1", "0x207" } },
	{ "net.ipv4.tcp_fastopen_key", { "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4", "0-0-0-0", "1-2-3-4,5-6-7-8", "x" } },
	{ "net.ipv4.tcp_fastopen_blackhole_timeout_sec", { "0", "1", "3600", "0" } },
	{ "net.ipv4.tcp_ecn", { "1", "2", "0", "1" } },
	{ "net.ipv4.tcp_ecn_fallback", { "0", "1", "1", "0" } },
	{ "net.ipv4.tcp_tw_reuse", { "1", "0", "2", "1" } },
	{ "net.ipv4.tcp_fin_timeout", { "1", "60", "5", "0" } },
	{ "net.ipv4.tcp_retries2", { "1", "15", "3", "0" } },
	{ "net.ipv4.tcp_moderate_rcvbuf", { "0", "1", "0", "1" } },
	{ "net.ipv4.tcp_rmem", { "4096 8192 16384", "4096 131072 33554432", "1 1 1", "4096 4096 4096" } },
	{ "net.ipv4.tcp_wmem", { "4096 4096 8192", "4096 16384 4194304", "1 1 1", "4096 8192 65536" } },
	{ "net.core.somaxconn", { "1", "0", "4096", "2" } },
	{ "net.ipv4.ip_no_pmtu_disc", { "1", "0", "1", "0" } },
	{ "net.ipv4.tcp_retrans_collapse", { "0", "1", "0", "1" } },
	{ "net.ipv4.tcp_reordering", { "1", "3", "100", "300" } },
	{ "net.ipv4.tcp_notsent_lowat", { "1", "1000", "16384", "4294967295" } },
	{ "net.ipv4.tcp_min_tso_segs", { "1", "2", "16", "255" } },
	{ "net.ipv4.tcp_tso_rtt_log", { "0", "9", "31", "1" } },
	{ "net.ipv4.tcp_pacing_ss_ratio", { "0", "200", "1000", "100" } },
	{ "net.ipv4.tcp_keepalive_time", { "1", "7200", "10", "2" } },
	{ "net.ipv4.tcp_keepalive_probes", { "1", "9", "0", "2" } },
	{ "net.ipv4.tcp_min_snd_mss", { "48", "536", "1460", "88" } },
	{ "net.ipv4.tcp_invalid_ratelimit", { "0", "500", "1", "10" } },
	{ "net.ipv4.tcp_syn_linear_timeouts", { "0", "4", "10", "1" } },
	{ "net.ipv4.icmp_msgs_burst", { "0", "1", "50", "10000" } },
	{ "net.ipv4.icmp_ratemask", { "0", "6168", "4294967295", "1" } },
	{ "net.ipv4.icmp_echo_ignore_all", { "1", "0", "1", "0" } },
	{ "net.ipv4.icmp_echo_ignore_broadcasts", { "0", "1", "0", "1" } },
	{ "net.ipv4.ipfrag_high_thresh", { "4096", "4194304", "65536", "300" } },
	{ "net.ipv4.ipfrag_low_thresh", { "0", "3145728", "1024", "2048" } },
	{ "net.ipv4.ipfrag_time", { "1", "30", "0", "2" } },
	{ "net.ipv4.ip_default_ttl", { "1", "64", "255", "0" } },
	{ "net.ipv4.ip_local_port_range", { "40000 40001", "32768 60999", "1024 1024", "60999 32768" } },
	{ "net.ipv4.neigh.default.base_reachable_time_ms", { "1", "30000", "1000", "0" } },
	{ "net.ipv4.neigh.default.retrans_time_ms", { "1", "1000", "10", "0" } },
	{ "net.ipv4.neigh.default.delay_first_probe_time", { "0", "5", "1", "100" } },
	{ "net.ipv4.neigh.default.mcast_solicit", { "0", "3", "1", "255" } },
	{ "net.ipv4.neigh.default.ucast_solicit", { "0", "3", "1", "255" } },
	{ "net.ipv4.neigh.default.unres_qlen_bytes", { "0", "212992", "100", "1500" } },
	{ "net.ipv4.neigh.default.gc_stale_time", { "0", "60", "1", "3600" } },
	{ "net.ipv4.neigh.default.gc_thresh3", { "1", "1024", "2", "4" } },
	{ "net.core.rmem_max", { "1", "212992", "4096", "100000000" } },
	{ "net.core.wmem_max", { "1", "212992", "4096", "100000000" } },
};

void fz_sysctl_op(struct fz *f, uint8_t sel, uint8_t val)
{
	fz_sysctl_op_prefix(f, "", sel, val);
}

void fz_sysctl_op_prefix(struct fz *f, const char *prefix, uint8_t sel, uint8_t val)
{
	const size_t n = sizeof(sysctls) / sizeof(sysctls[0]), plen = strlen(prefix);
	size_t match = 0;
	for (size_t i = 0; i < n; i++)
		match += strncmp(sysctls[i].name, prefix, plen) == 0;
	if (!match)
		return;
	size_t k = sel % match;
	const struct fz_sysctl_choice *c = NULL;
	for (size_t i = 0; i < n && !c; i++)
		if (strncmp(sysctls[i].name, prefix, plen) == 0 && k-- == 0)
			c = &sysctls[i];
	fz_sysctl(f, c->name, c->values[val & 3]);
	char buf[64];
	(void)ustack_sysctl_get(f->st, c->name, buf, sizeof(buf));
}
