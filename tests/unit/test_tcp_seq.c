/* Sequence arithmetic (tcp/tcp_seq.h): Linux's before/after/between, pinned at the edges —
 * wrap-around, equality, and distance 2^31, where Linux's before() is true both ways. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tcp/tcp_seq.h"

static void test_before_after_wrap(void **state)
{
	(void)state;
	assert_true(before(1, 2));
	assert_false(before(2, 1));
	assert_false(before(5, 5));
	assert_false(after(5, 5));
	assert_true(after(2, 1));
	/* across the wrap: 0xfffffff0 comes before 0x10 */
	assert_true(before(0xfffffff0u, 0x10u));
	assert_true(after(0x10u, 0xfffffff0u));
	/* distance 2^31 - 1: an ordinary answer */
	assert_true(before(0, 0x7fffffffu));
	assert_false(after(0, 0x7fffffffu));
	/* distance exactly 2^31: (s32)(a - b) is INT_MIN either way, so each is before the
	 * other, and after() — written through before() — is true both ways too */
	assert_true(before(0, 0x80000000u));
	assert_true(before(0x80000000u, 0));
	assert_true(after(0, 0x80000000u));
	assert_true(after(0x80000000u, 0));
}

static void test_between(void **state)
{
	(void)state;
	assert_true(between(5, 5, 10));
	assert_true(between(10, 5, 10));
	assert_false(between(11, 5, 10));
	assert_false(between(4, 5, 10));
	assert_true(between(2, 0xfffffff0u, 0x10u)); /* a range across the wrap */
	assert_false(between(0x20u, 0xfffffff0u, 0x10u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_after_wrap),
		cmocka_unit_test(test_between),
	};
	return cmocka_run_group_tests_name("tcp_seq", tests, NULL, NULL);
}
