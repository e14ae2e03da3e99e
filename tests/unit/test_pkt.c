/* Packet buffers: headroom discipline and a pool that stops growing after warm-up. */
#include "testwire.h"
#include "core/stack.h"

#include <string.h>

static void test_push_put_pull(void **state)
{
	struct tw *t = *state;
	stack_lock(t->st);
	struct pkt *p = pkt_alloc(t->st, PKT_HEADROOM, 100);
	assert_non_null(p);
	assert_int_equal(pkt_headroom(p), PKT_HEADROOM);
	memset(pkt_put(p, 100), 0xaa, 100);
	uint8_t *h = pkt_push(p, 20);
	assert_ptr_equal(h, p->data);
	assert_int_equal(p->len, 120);
	assert_int_equal(pkt_headroom(p), PKT_HEADROOM - 20);
	pkt_pull(p, 20);
	assert_int_equal(p->data[0], 0xaa);
	pkt_free(t->st, p);
	/* larger than a pool buffer: heap storage, same interface */
	struct pkt *big = pkt_alloc(t->st, PKT_HEADROOM, 9000);
	assert_non_null(big);
	memset(pkt_put(big, 9000), 1, 9000);
	pkt_free(t->st, big);
	stack_unlock(t->st);
}

static void test_pool_stops_growing(void **state)
{
	struct tw *t = *state;
	uint8_t f[256];
	size_t n = tw_echo(f, TW_PEER_IP, TW_DUT_IP, 1, 1, 56);
	for (int i = 0; i < 10; i++) { /* warm up */
		tw_send(t, f, n);
		tw_expect(t);
	}
	size_t total = t->st->pool.total;
	for (int i = 0; i < 10000; i++) {
		tw_send(t, f, n);
		tw_expect(t);
	}
	assert_int_equal(t->st->pool.total, total);
	assert_int_equal(t->st->pool.in_use, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push_put_pull, tw_setup_learned, tw_teardown),
		cmocka_unit_test_setup_teardown(test_pool_stops_growing, tw_setup_learned, tw_teardown),
	};
	return cmocka_run_group_tests_name("pkt", tests, NULL, NULL);
}
