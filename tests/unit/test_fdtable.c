/*
 * The descriptor table (socket/file.c): the lowest free descriptor, always, across the
 * table's growth and its bitmaps' levels, and EMFILE at fs.nr_open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static struct ustack_vclock vc;

static int setup(void **state)
{
	static const uint8_t seed[32] = { 7 };
	ustack_vclock_init(&vc, 0);
	struct ustack_config cfg = { .clock = &vc.clock, .secret_seed = seed };
	*state = ustack_create(&cfg);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	ustack_destroy(*state);
	return 0;
}

static int sock(struct ustack *st)
{
	return ustack_socket(st, AF_INET, SOCK_STREAM, 0);
}

static void test_lowest_free(void **state)
{
	struct ustack *st = *state;
	int fds[10];
	for (int i = 0; i < 10; i++) {
		fds[i] = sock(st);
		assert_int_equal(fds[i], 3 + i); /* 0, 1 and 2 are the process's */
	}
	assert_int_equal(ustack_close(st, 9), 0);
	assert_int_equal(ustack_close(st, 5), 0);
	assert_int_equal(sock(st), 5);
	assert_int_equal(sock(st), 9);
	assert_int_equal(sock(st), 13);
	assert_int_equal(ustack_close(st, 5), 0);
	assert_int_equal(ustack_close(st, 5), -1);
	assert_int_equal(errno, EBADF);
}

/* Against a model, with the table grown past a full level-1 word (4096 descriptors) and
 * holes opened and filled everywhere: every socket() returns the model's lowest free. */
static void test_lowest_free_model(void **state)
{
	struct ustack *st = *state;
	enum { N = 9000 };
	bool *open = calloc(N + 64, sizeof(*open));
	assert_non_null(open);
	for (int i = 0; i < N; i++) {
		int fd = sock(st);
		assert_int_equal(fd, 3 + i);
		open[fd] = true;
	}
	srand(1);
	int nopen = N;
	for (int round = 0; round < 20000; round++) {
		int fd = 3 + rand() % N;
		if ((open[fd] && rand() % 2) || (open[fd] && nopen == N)) {
			assert_int_equal(ustack_close(st, fd), 0);
			open[fd] = false;
			nopen--;
		} else if (nopen < N) { /* never past the model's N + 3 */
			int want = 3;
			while (open[want])
				want++;
			int got = sock(st);
			assert_int_equal(got, want);
			open[got] = true;
			nopen++;
		}
	}
	free(open);
}

static void test_emfile_at_nr_open(void **state)
{
	struct ustack *st = *state;
	assert_int_equal(ustack_sysctl_set(st, "fs.nr_open", "63"), -1);
	assert_int_equal(errno, EINVAL); /* Linux's floor: BITS_PER_LONG */
	assert_int_equal(ustack_sysctl_set(st, "fs.nr_open", "64"), 0);
	for (int fd = 3; fd < 64; fd++)
		assert_int_equal(sock(st), fd);
	assert_int_equal(sock(st), -1);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(ustack_close(st, 40), 0);
	assert_int_equal(sock(st), 40);
	assert_int_equal(sock(st), -1);
	assert_int_equal(errno, EMFILE);
	/* raised again: the table grows past its first 64 slots */
	assert_int_equal(ustack_sysctl_set(st, "fs.nr_open", "1048576"), 0);
	for (int fd = 64; fd < 200; fd++)
		assert_int_equal(sock(st), fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lowest_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lowest_free_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_at_nr_open, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
