/*
 * Object caches (core/slab.c): objects come back zeroed and distinct across many slabs, a
 * freed object is handed out again before new memory, and a cache emptied and refilled
 * works as new.  (Under AddressSanitizer the caches are calloc/free: the same checks hold.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/slab.h"

#include <stdlib.h>
#include <string.h>

struct obj {
	uint64_t words[128]; /* 1 KB, a socket's size */
};

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void test_many_slabs(void **state)
{
	(void)state;
	struct kmem_cache c = KMEM_CACHE_INIT(struct obj);
	enum { N = 5000 }; /* about 2.5 slabs of 2 MB */
	struct obj **o = calloc(N, sizeof(*o));
	assert_non_null(o);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			o[i] = kmem_cache_zalloc(&c);
			assert_non_null(o[i]);
			for (int w = 0; w < 128; w++)
				assert_int_equal(o[i]->words[w], 0);
			memset(o[i], 0xa5, sizeof(*o[i])); /* dirty: the next round must see zeroes */
		}
		assert_int_equal(c.live, N);
		uintptr_t *sorted = malloc(N * sizeof(*sorted));
		assert_non_null(sorted);
		memcpy(sorted, o, N * sizeof(*sorted));
		qsort(sorted, N, sizeof(*sorted), cmp_ptr);
		for (int i = 1; i < N; i++)
			assert_true(sorted[i] - sorted[i - 1] >= sizeof(struct obj)); /* no overlap */
		free(sorted);
		/* free every other one, then the rest: slabs go partial, then empty */
		for (int i = 0; i < N; i += 2)
			kmem_cache_free(&c, o[i]);
		for (int i = 1; i < N; i += 2)
			kmem_cache_free(&c, o[i]);
		assert_int_equal(c.live, 0);
	}
	/* the object freed last is the next one out (LIFO: the cache-hot one) */
	struct obj *a = kmem_cache_zalloc(&c), *b = kmem_cache_zalloc(&c);
	kmem_cache_free(&c, b);
	struct obj *again = kmem_cache_zalloc(&c);
#ifndef SLAB_PLAIN
	assert_ptr_equal(again, b);
#endif
	kmem_cache_free(&c, a);
	kmem_cache_free(&c, again);
	kmem_cache_destroy(&c);
	free(o);
}

static void test_vzalloc_huge(void **state)
{
	(void)state;
	size_t sizes[] = { 64, 4096, 2u << 20, 8u << 20 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *p = vzalloc_huge(sizes[i]);
		assert_non_null(p);
		assert_int_equal(p[0], 0);
		assert_int_equal(p[sizes[i] - 1], 0);
		p[sizes[i] - 1] = 1;
		vfree_huge(p, sizes[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_slabs),
		cmocka_unit_test(test_vzalloc_huge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
