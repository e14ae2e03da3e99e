#include "core/pkt.h"
#include "core/stack.h"

#include <stdlib.h>
#include <string.h>

struct pkt *pkt_alloc(struct ustack *st, size_t headroom, size_t size)
{
	struct pkt_pool *pool = &st->pool;
	struct pkt *p = pool->free;

	if (p) {
		pool->free = p->next;
	} else {
		if (pool->total >= PKT_POOL_MAX)
			return NULL;
		p = malloc(sizeof(*p));
		if (!p)
			return NULL;
		pool->total++;
	}
	pool->in_use++;
	p->next = NULL;
	p->heap = 0;
	p->gso_size = 0;
	p->csum_partial = 0;
	p->head = p->buf;
	p->cap = PKT_BUF_SIZE;
	if (headroom + size > PKT_BUF_SIZE && headroom + size <= PKT_BIG_SIZE) {
		void *b = pool->big_free;
		if (b) {
			memcpy(&pool->big_free, b, sizeof(void *));
			pool->big_nfree--;
		} else if (!(b = malloc(PKT_BIG_SIZE))) {
			pkt_free(st, p);
			return NULL;
		}
		p->head = b;
		p->heap = 1;
		p->cap = PKT_BIG_SIZE;
	} else if (headroom + size > PKT_BUF_SIZE) {
		p->head = malloc(headroom + size);
		if (!p->head) {
			p->head = p->buf;
			pkt_free(st, p);
			return NULL;
		}
		p->heap = 1;
		p->cap = (uint32_t)(headroom + size);
	}
	p->data = p->head + headroom;
	p->len = 0;
	return p;
}

void pkt_free(struct ustack *st, struct pkt *p)
{
	if (!p)
		return;
	if (p->heap && p->cap == PKT_BIG_SIZE && st->pool.big_nfree < PKT_BIG_KEEP) {
		memcpy(p->head, &st->pool.big_free, sizeof(void *));
		st->pool.big_free = p->head;
		st->pool.big_nfree++;
	} else if (p->heap) {
		free(p->head);
	}
	p->heap = 0;
	p->next = st->pool.free;
	st->pool.free = p;
	st->pool.in_use--;
}

void pkt_pool_destroy(struct pkt_pool *pool)
{
	while (pool->big_free) {
		void *b = pool->big_free;
		memcpy(&pool->big_free, b, sizeof(void *));
		free(b);
	}
	pool->big_nfree = 0;
	while (pool->free) {
		struct pkt *p = pool->free;
		pool->free = p->next;
		free(p);
	}
	pool->total = 0;
}
