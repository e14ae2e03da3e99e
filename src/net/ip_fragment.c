/*
 * IPv4 reassembly (Linux's net/ipv4/ip_fragment.c over inet_fragment.c).
 *
 * ustack reassembles, with memory bounded the way Linux bounds it: every fragment held is
 * charged to a per-stack total, and while that total is above net.ipv4.ipfrag_high_thresh
 * every arriving fragment is refused (IpReasmFails) — so a flood of fragments that never
 * complete costs at most ipfrag_high_thresh bytes.  A queue that does not complete within
 * net.ipv4.ipfrag_time seconds is dropped (IpReasmTimeout, IpReasmFails) and, if its first
 * fragment arrived, answered with ICMP time exceeded (fragment reassembly), as RFC 792 and
 * Linux do.  Overlapping fragments kill the whole queue (IpExtReasmOverlaps): Linux stopped
 * accepting overlaps in 4.19 for the same reason RFC 5722 gives for IPv6; an exact duplicate
 * is dropped alone.
 */
#include "net/net.h"
#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

#include <stdlib.h>
#include <string.h>

struct frag {
	struct frag *next;
	uint16_t off, end;
	uint8_t data[];
};

struct ipq {
	struct ipq *next;
	uint32_t saddr, daddr;
	uint16_t id;
	uint8_t proto;
	bool first_in, last_in;
	bool first_l2_bcast; /* the first fragment came in a link-layer broadcast frame */
	uint32_t len;  /* payload length, final once last_in */
	uint32_t meat; /* payload bytes held */
	struct frag *frags; /* sorted by offset, non-overlapping */
	uint8_t hdr[60 + 8]; /* first fragment's header and 8 payload bytes, for ICMP */
	uint8_t hdr_len, ihl;
	size_t mem;
	struct utimer timer;
};

static unsigned ipq_hash(struct ustack *st, uint32_t saddr, uint32_t daddr, uint16_t id, uint8_t proto)
{
	uint32_t key[3] = { saddr, daddr, (uint32_t)id << 8 | proto };
	return (unsigned)secret_hash(&st->secrets, SECRET_HASH, key, sizeof(key)) & (IPQ_HASH_SIZE - 1);
}

static void ipq_kill(struct ustack *st, struct ipq *q)
{
	struct ipq **pp = &st->net->frag.hash[ipq_hash(st, q->saddr, q->daddr, q->id, q->proto)];
	while (*pp != q)
		pp = &(*pp)->next;
	*pp = q->next;
	timer_cancel(st, &q->timer);
	while (q->frags) {
		struct frag *f = q->frags;
		q->frags = f->next;
		free(f);
	}
	st->net->frag.mem -= q->mem;
	st->net->frag.nqueues--;
	free(q);
}

/* ip_expire */
static void ipq_expire(struct ustack *st, struct utimer *t)
{
	struct ipq *q = (struct ipq *)((char *)t - offsetof(struct ipq, timer));
	MIB_INC(st, IpReasmFails);
	MIB_INC(st, IpReasmTimeout);
	trace_drop(st, "FRAG_REASM_TIMEOUT", 0);
	if (q->first_in)
		icmp_send(st, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0, q->hdr, q->hdr_len, q->first_l2_bcast);
	ipq_kill(st, q);
}

static struct ipq *ipq_find(struct ustack *st, const struct ipv4_repr *ip)
{
	unsigned h = ipq_hash(st, ip->saddr, ip->daddr, ip->id, ip->proto);
	for (struct ipq *q = st->net->frag.hash[h]; q; q = q->next)
		if (q->saddr == ip->saddr && q->daddr == ip->daddr && q->id == ip->id &&
		    q->proto == ip->proto)
			return q;
	struct ipq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->saddr = ip->saddr;
	q->daddr = ip->daddr;
	q->id = ip->id;
	q->proto = ip->proto;
	q->mem = sizeof(*q);
	st->net->frag.mem += q->mem;
	st->net->frag.nqueues++;
	timer_init(&q->timer, ipq_expire);
	timer_arm(st, &q->timer, st->now + (uint64_t)st->sysctl.ipfrag_time * 1000000u);
	q->next = st->net->frag.hash[h];
	st->net->frag.hash[h] = q;
	return q;
}

/* ip_frag_reasm: one buffer, the first fragment's header with MF/offset cleared. */
static int ipq_reasm(struct ustack *st, struct ipq *q, uint8_t **out, size_t *outlen, bool *l2_bcast)
{
	size_t total = (size_t)q->ihl + q->len;
	if (total > 0xffff) {
		MIB_INC(st, IpReasmFails);
		trace_drop(st, "FRAG_OVERSIZE", 0);
		ipq_kill(st, q);
		return 0;
	}
	uint8_t *b = malloc(total);
	if (!b) {
		MIB_INC(st, IpReasmFails);
		ipq_kill(st, q);
		return 0;
	}
	memcpy(b, q->hdr, q->ihl);
	for (struct frag *f = q->frags; f; f = f->next)
		memcpy(b + q->ihl + f->off, f->data, (size_t)(f->end - f->off));
	wr16(b + 2, (uint16_t)total);
	wr16(b + 6, rd16(b + 6) & IP_DF);
	wr16(b + 10, 0);
	wr16(b + 10, csum_fold(csum_partial(b, q->ihl, 0)));
	MIB_INC(st, IpReasmOKs);
	*l2_bcast = q->first_l2_bcast;
	ipq_kill(st, q);
	*out = b;
	*outlen = total;
	return 1;
}

static void ipq_discard(struct ustack *st, struct ipq *q, const char *why)
{
	MIB_INC(st, IpReasmFails);
	trace_drop(st, why, 0);
	ipq_kill(st, q);
}

int ip_defrag(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
	      const uint8_t *b, uint8_t **out, size_t *outlen, bool *l2_bcast)
{
	(void)dev;
	MIB_INC(st, IpReasmReqds);
	if (st->net->frag.mem > (size_t)st->sysctl.ipfrag_high_thresh) {
		MIB_INC(st, IpReasmFails);
		trace_drop(st, "FRAG_REASM_MEM", dev->ifindex);
		return 0;
	}
	struct ipq *q = ipq_find(st, ip);
	if (!q) {
		MIB_INC(st, IpReasmFails);
		return 0;
	}
	uint32_t off = ip->frag_off;
	uint32_t end = off + (uint32_t)(ip->tot_len - ip->ihl);
	if (end + ip->ihl > 0xffff) { /* ip_frag_reasm's "Oversized IP packet" */
		ipq_discard(st, q, "FRAG_OVERSIZE");
		return 0;
	}

	if (!ip->mf) {
		if (end < q->len || (q->last_in && end != q->len)) {
			ipq_discard(st, q, "FRAG_BAD_END");
			return 0;
		}
		q->last_in = true;
		q->len = end;
	} else {
		end &= ~7u; /* non-final fragments carry multiples of 8 bytes */
		if (end > q->len) {
			if (q->last_in) {
				ipq_discard(st, q, "FRAG_BEYOND_END");
				return 0;
			}
			q->len = end;
		}
	}
	if (end == off) {
		ipq_discard(st, q, "FRAG_EMPTY");
		return 0;
	}
	/* inet_frag_queue_insert: exact duplicates are dropped, any other overlap kills. */
	struct frag **pp = &q->frags;
	while (*pp && (*pp)->end <= off)
		pp = &(*pp)->next;
	if (*pp && (*pp)->off < end) {
		if ((*pp)->off == off && (*pp)->end == end) {
			trace_drop(st, "DUP_FRAG", dev->ifindex);
			return 0;
		}
		MIB_INC(st, IpExtReasmOverlaps);
		ipq_discard(st, q, "FRAG_OVERLAP");
		return 0;
	}
	struct frag *f = malloc(sizeof(*f) + (end - off));
	if (!f) {
		ipq_discard(st, q, "NOMEM");
		return 0;
	}
	f->off = (uint16_t)off;
	f->end = (uint16_t)end;
	memcpy(f->data, b + ip->ihl, end - off);
	f->next = *pp;
	*pp = f;
	size_t charge = sizeof(*f) + (end - off);
	q->mem += charge;
	st->net->frag.mem += charge;
	q->meat += end - off;
	if (off == 0) {
		q->first_in = true;
		q->first_l2_bcast = ip->l2_bcast;
		q->ihl = ip->ihl;
		q->hdr_len = (uint8_t)(ip->ihl + (ip->tot_len - ip->ihl >= 8 ? 8 : ip->tot_len - ip->ihl));
		memcpy(q->hdr, b, q->hdr_len);
	}
	if (q->first_in && q->last_in && q->meat == q->len)
		return ipq_reasm(st, q, out, outlen, l2_bcast);
	return 0;
}

void ipfrag_destroy(struct ustack *st)
{
	for (unsigned i = 0; i < IPQ_HASH_SIZE; i++)
		while (st->net->frag.hash[i])
			ipq_kill(st, st->net->frag.hash[i]);
}
