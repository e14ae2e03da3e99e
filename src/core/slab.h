/*
 * Object caches for the structures a busy stack makes and frees by the million — sockets and
 * request sockets (Linux's kmem_cache: the "TCP" and "request_sock_TCP" slabs) — and large
 * zeroed tables (the established hash; Linux's vzalloc/alloc_large_system_hash).
 *
 * Why not malloc alone.  Connection setup with a million sockets open was spent, half of it,
 * in malloc and in page faults: each 1 KB socket a separate malloc block, each new 4 KB page
 * a fault, and every lookup that strays into a million sockets' worth of 4 KB pages a TLB
 * miss.  A cache carves objects from 2 MB slabs that it asks the kernel to back with huge
 * pages (MADV_HUGEPAGE: one fault and one TLB entry per 2 MB), keeps each slab's free objects
 * on its own list, hands out objects from partly used slabs first, and gives a slab back to
 * the kernel when its last object is freed, unless it is the only spare one (as Linux's
 * SLUB keeps a few empty slabs and frees the rest).
 *
 * Built with AddressSanitizer the caches are plain calloc/free, so that a use after free
 * of a socket is still caught.
 */
#ifndef USTACK_CORE_SLAB_H
#define USTACK_CORE_SLAB_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_PLAIN 1
#endif
#endif

struct slab;

struct kmem_cache {
	struct slab *partial; /* slabs with free objects, most recently freed into first */
	struct slab *empty;   /* one spare wholly free slab, kept against churn */
	size_t size;          /* object size, rounded to a cache line */
	size_t live;          /* objects handed out */
};

#define KMEM_CACHE_INIT(type) { NULL, NULL, (sizeof(type) + 63) & ~(size_t)63, 0 }

void *kmem_cache_zalloc(struct kmem_cache *c);
void kmem_cache_free(struct kmem_cache *c, void *obj);
/* At teardown: gives back every slab.  Objects still in use are lost with them. */
void kmem_cache_destroy(struct kmem_cache *c);

/* A zeroed table of `size` bytes: huge-page backed from 2 MB up. */
void *vzalloc_huge(size_t size);
void vfree_huge(void *p, size_t size);

#endif
