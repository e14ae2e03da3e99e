/*
 * One-line printers for every wire format ustack speaks, in tcpdump's style.  The tracer,
 * the demo and failing tests all describe packets with these.
 */
#include "wire/arp.h"
#include "wire/bytes.h"
#include "wire/ether.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"
#include <ustack/trace.h>

#include <stdarg.h>
#include <stdio.h>

struct out {
	char *buf;
	size_t size, len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
			  o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void put_ip(struct out *o, uint32_t a)
{
	put(o, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

/* tcpdump's layout: Flags [S.], seq 1, ack 2, win 3, options [mss 1460,...], length 0 */
static void print_tcp(struct out *o, const uint8_t *p, size_t plen)
{
	struct tcp_repr t;
	/* checksums are not judged here, as tcpdump does not judge them without -v: with
	 * offloads a partial one is what a TSO packet or a local sender's segment carries */
	enum tcp_parse_err e = tcp_parse_trusted(p, plen, &t);
	if (e != TCP_OK) {
		put(o, "TCP [malformed, %zu bytes]", plen);
		return;
	}
	char fl[TCP_FLAGS_STR];
	tcp_flags_str(t.flags, fl);
	put(o, "%u > %u: Flags [%s], seq %u", t.sport, t.dport, fl, t.seq);
	if (t.flags & TCPHDR_ACK)
		put(o, ", ack %u", t.ack);
	put(o, ", win %u", t.window);
	const struct tcp_opts *op = &t.opt;
	if (op->mss_ok || op->ws_ok || op->sack_ok || op->ts_ok || op->nsack || op->fastopen) {
		const char *sep = "";
		put(o, ", options [");
		if (op->mss_ok) {
			put(o, "%smss %u", sep, op->mss);
			sep = ",";
		}
		if (op->sack_ok) {
			put(o, "%ssackOK", sep);
			sep = ",";
		}
		if (op->ts_ok) {
			put(o, "%sTS val %u ecr %u", sep, op->tsval, op->tsecr);
			sep = ",";
		}
		if (op->ws_ok) {
			put(o, "%swscale %u", sep, op->wscale);
			sep = ",";
		}
		for (unsigned i = 0; i < op->nsack; i++) {
			put(o, "%ssack %u:%u", sep, op->sack[i].start, op->sack[i].end);
			sep = ",";
		}
		if (op->fastopen) {
			put(o, "%stfo%s", sep, op->cookie_len ? " cookie " : " cookiereq");
			for (unsigned i = 0; i < op->cookie_len; i++)
				put(o, "%02x", op->cookie[i]);
		}
		put(o, "]");
	}
	put(o, ", length %zu", t.plen);
}

static void print_ipv4(struct out *o, const uint8_t *b, size_t len)
{
	struct ipv4_repr ip;
	enum ipv4_parse_err e = ipv4_parse(b, len, &ip);
	if (e != IPV4_OK) {
		put(o, "IP [%s, %zu bytes]", ipv4_parse_err_str(e), len);
		return;
	}
	put(o, "IP ");
	put_ip(o, ip.saddr);
	put(o, " > ");
	put_ip(o, ip.daddr);
	put(o, ": ");
	if (ip.mf || ip.frag_off)
		put(o, "frag id %u off %u%s, ", ip.id, ip.frag_off, ip.mf ? "+" : "");
	const uint8_t *p = b + ip.ihl;
	size_t plen = ip.tot_len - ip.ihl;
	if (ip.proto == IPPROTO_TCP_ && !ip.frag_off && !ip.mf) {
		print_tcp(o, p, plen);
	} else if (ip.proto == IPPROTO_ICMP_ && !ip.frag_off) {
		struct icmp_repr ic;
		if (icmp_parse(p, plen, &ic) == 0) {
			put(o, "ICMP %s", icmp_type_str(ic.type));
			if (ic.type == ICMP_ECHO || ic.type == ICMP_ECHOREPLY)
				put(o, ", id %u, seq %u", ic.rest >> 16, ic.rest & 0xffff);
			else
				put(o, " code %u", ic.code);
			put(o, ", length %zu", plen);
		} else {
			put(o, "ICMP [truncated]");
		}
	} else {
		put(o, "proto %u, length %zu", ip.proto, plen);
	}
	put(o, " (ttl %u, id %u%s)", ip.ttl, ip.id, ip.df ? ", DF" : "");
}

size_t ustack_frame_format(char *buf, size_t size, enum ustack_link_type type,
			   const uint8_t *frame, size_t len)
{
	struct out o = { buf, size, 0 };
	if (size)
		buf[0] = 0;
	if (type == USTACK_LINK_RAWIP) {
		print_ipv4(&o, frame, len);
		return o.len;
	}
	struct eth_repr e;
	if (eth_parse(frame, len, &e) < 0) {
		put(&o, "[runt frame, %zu bytes]", len);
		return o.len;
	}
	if (e.type == ETH_P_ARP) {
		struct arp_repr a;
		if (arp_parse(frame + ETH_HLEN, len - ETH_HLEN, &a) != ARP_OK) {
			put(&o, "ARP [malformed]");
		} else if (a.op == ARPOP_REQUEST) {
			put(&o, "ARP who-has ");
			put_ip(&o, a.tpa);
			put(&o, " tell ");
			put_ip(&o, a.spa);
		} else {
			put(&o, "ARP reply ");
			put_ip(&o, a.spa);
			put(&o, " is-at %02x:%02x:%02x:%02x:%02x:%02x", a.sha[0], a.sha[1], a.sha[2],
			    a.sha[3], a.sha[4], a.sha[5]);
		}
	} else if (e.type == ETH_P_IP) {
		print_ipv4(&o, frame + ETH_HLEN, len - ETH_HLEN);
	} else {
		put(&o, "ethertype 0x%04x, length %zu", e.type, len);
	}
	return o.len;
}
