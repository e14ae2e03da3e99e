/*
 * Packet buffers, after Linux's sk_buff: a segment is written once, then each layer pushes
 * its header in front into reserved headroom, so no layer copies the payload.
 *
 * Buffers come from a per-stack pool with a free list; after warm-up the hot paths allocate
 * nothing.  The pool is bounded (PKT_POOL_MAX): when it is exhausted the send fails and the
 * caller counts a drop, so nothing from the network makes memory grow without bound.  The
 * rare packet larger than a pool buffer (a reassembled datagram echoed back) gets heap storage.
 */
#ifndef USTACK_CORE_PKT_H
#define USTACK_CORE_PKT_H

#include <stdint.h>
#include <stddef.h>

#define PKT_HEADROOM 128 /* Ethernet + IPv4 + TCP with options fit with room to spare */
#define PKT_BUF_SIZE 2048
#define PKT_POOL_MAX 65536
/* A TSO packet's storage: 64 KB of IP packet, its link header and headroom.  A few are kept
 * (PKT_BIG_KEEP) so that a bulk sender on a TSO device allocates nothing per packet. */
#define PKT_BIG_SIZE (65536 + PKT_HEADROOM)
#define PKT_BIG_KEEP 16

struct pkt {
	struct pkt *next;   /* queue link (neighbour queue, free list) */
	uint8_t *head;      /* start of storage */
	uint8_t *data;      /* first valid byte */
	uint32_t len;       /* valid bytes */
	uint32_t cap;       /* storage size */
	uint8_t heap;       /* storage is malloc'ed, not inline */
	uint16_t gso_size;  /* a TSO packet (USTACK_IF_TSO): the MSS the device cuts it by */
	uint8_t csum_partial; /* TCP's checksum left to the device (CHECKSUM_PARTIAL): the
	                       * pseudo-header's sum in the field, at 16 from the transport header */
	uint8_t buf[PKT_BUF_SIZE];
};

struct pkt_pool {
	struct pkt *free;
	void *big_free;     /* spare PKT_BIG_SIZE storage, each holding the next's address */
	unsigned big_nfree;
	size_t total; /* buffers ever allocated (≤ PKT_POOL_MAX) */
	size_t in_use;
};

struct ustack;
/* A packet with `headroom` bytes in front and room for `size` bytes of data. */
struct pkt *pkt_alloc(struct ustack *st, size_t headroom, size_t size);
void pkt_free(struct ustack *st, struct pkt *p);
void pkt_pool_destroy(struct pkt_pool *pool);

static inline uint8_t *pkt_push(struct pkt *p, size_t n)
{
	p->data -= n;
	p->len += (uint32_t)n;
	return p->data;
}
static inline uint8_t *pkt_put(struct pkt *p, size_t n)
{
	uint8_t *tail = p->data + p->len;
	p->len += (uint32_t)n;
	return tail;
}
static inline void pkt_pull(struct pkt *p, size_t n)
{
	p->data += n;
	p->len -= (uint32_t)n;
}
static inline size_t pkt_headroom(const struct pkt *p) { return (size_t)(p->data - p->head); }

#endif
