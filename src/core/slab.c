/* Object caches and large tables (core/slab.h). */
#include "core/slab.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_SIZE (2u << 20) /* one huge page */
#define HUGE_MIN SLAB_SIZE


/* At the head of each slab, which is aligned to SLAB_SIZE so that an object finds its slab
 * by masking its address. */
struct slab {
	struct slab *next, **pprev; /* on the cache's partial list, or neither */
	void *free;                 /* free objects, each holding the next's address */
	char *fresh;                /* objects never yet handed out start here */
	char *end;
	size_t inuse;
};

/* A SLAB_SIZE-aligned mapping of size bytes (a multiple of SLAB_SIZE): map one slab more
 * and trim both ends. */
static void *map_aligned(size_t size)
{
	char *p = mmap(NULL, size + SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *a = (char *)(((uintptr_t)p + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + size < p + size + SLAB_SIZE)
		munmap(a + size, (size_t)(p + size + SLAB_SIZE - (a + size)));
	madvise(a, size, MADV_HUGEPAGE); /* a hint: without THP the slab is 4 KB pages */
	return a;
}

#ifndef SLAB_PLAIN
static void partial_add(struct kmem_cache *c, struct slab *s)
{
	s->next = c->partial;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &c->partial;
	c->partial = s;
}

static void partial_del(struct slab *s)
{
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	s->next = NULL;
	s->pprev = NULL;
}

static struct slab *slab_new(struct kmem_cache *c)
{
	struct slab *s = c->empty;
	if (s) {
		c->empty = NULL;
		return s;
	}
	if (!(s = map_aligned(SLAB_SIZE)))
		return NULL;
	s->next = NULL;
	s->pprev = NULL;
	s->free = NULL;
	s->fresh = (char *)s + ((sizeof(*s) + 63) & ~(size_t)63);
	s->end = (char *)s + SLAB_SIZE;
	s->inuse = 0;
	return s;
}
#endif

void *kmem_cache_zalloc(struct kmem_cache *c)
{
#ifdef SLAB_PLAIN
	void *p = calloc(1, c->size);
	c->live += p != NULL;
	return p;
#else
	struct slab *s = c->partial;
	if (!s) {
		if (!(s = slab_new(c)))
			return NULL;
		partial_add(c, s);
	}
	void *obj = s->free;
	if (obj) {
		memcpy(&s->free, obj, sizeof(void *));
		memset(obj, 0, c->size);
	} else {
		obj = s->fresh; /* never used: still the kernel's zeroes */
		s->fresh += c->size;
	}
	s->inuse++;
	if (!s->free && s->fresh + c->size > s->end)
		partial_del(s); /* full */
	c->live++;
	return obj;
#endif
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
	c->live--;
#ifdef SLAB_PLAIN
	free(obj);
#else
	struct slab *s = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(SLAB_SIZE - 1));
	bool was_full = !s->pprev;
	memcpy(obj, &s->free, sizeof(void *));
	s->free = obj;
	if (was_full)
		partial_add(c, s);
	if (--s->inuse)
		return;
	/* wholly free: keep it as the spare, or give it back */
	partial_del(s);
	if (c->empty)
		munmap(s, SLAB_SIZE);
	else
		c->empty = s;
#endif
}

void kmem_cache_destroy(struct kmem_cache *c)
{
#ifdef SLAB_PLAIN
	(void)c;
#else
	while (c->partial) {
		struct slab *s = c->partial;
		partial_del(s);
		munmap(s, SLAB_SIZE);
	}
	if (c->empty)
		munmap(c->empty, SLAB_SIZE);
	c->empty = NULL;
	/* full slabs are on no list: a cache destroyed with objects in use leaks them, as
	 * Linux's kmem_cache_destroy complains of; the stack frees every socket first */
#endif
}

void *vzalloc_huge(size_t size)
{
	if (size < HUGE_MIN)
		return calloc(1, size);
	size = (size + SLAB_SIZE - 1) & ~(size_t)(SLAB_SIZE - 1);
	return map_aligned(size); /* the kernel's pages: zeroed */
}

void vfree_huge(void *p, size_t size)
{
	if (size < HUGE_MIN)
		free(p);
	else if (p)
		munmap(p, (size + SLAB_SIZE - 1) & ~(size_t)(SLAB_SIZE - 1));
}
