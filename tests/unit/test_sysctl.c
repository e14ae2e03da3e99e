/* Sysctls: Linux's names and defaults, range checks that keep the old value on failure. */
#include "testwire.h"

#include <errno.h>
#include <string.h>

static void get(struct ustack *st, const char *name, const char *want)
{
	char buf[128];
	assert_int_equal(ustack_sysctl_get(st, name, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void set_fails(struct ustack *st, const char *name, const char *value, int err)
{
	errno = 0;
	assert_int_equal(ustack_sysctl_set(st, name, value), -1);
	assert_int_equal(errno, err);
}

static void test_linux_defaults(void **state)
{
	struct tw *t = *state;
	get(t->st, "net.core.somaxconn", "4096");
	get(t->st, "net.ipv4.ip_local_port_range", "32768\t60999");
	get(t->st, "net.ipv4.tcp_syncookies", "1");
	get(t->st, "net.ipv4.tcp_syn_retries", "6");
	get(t->st, "net.ipv4.tcp_synack_retries", "5");
	get(t->st, "net.ipv4.tcp_syn_linear_timeouts", "4");
	get(t->st, "net.ipv4.tcp_timestamps", "1");
	get(t->st, "net.ipv4.tcp_sack", "1");
	get(t->st, "net.ipv4.tcp_window_scaling", "1");
	get(t->st, "net.ipv4.tcp_abort_on_overflow", "0");
	get(t->st, "net.ipv4.tcp_fastopen", "1");
	get(t->st, "net.ipv4.tcp_max_syn_backlog", "2048");
	get(t->st, "net.ipv4.tcp_rmem", "4096\t131072\t33554432");
	get(t->st, "net.ipv4.tcp_congestion_control", "cubic");
	get(t->st, "net.ipv4.ipfrag_high_thresh", "4194304");
	get(t->st, "net.ipv4.ipfrag_time", "30");
	get(t->st, "net.ipv4.ip_default_ttl", "64");
	get(t->st, "net.ipv4.neigh.default.unres_qlen_bytes", "212992");
	/* /proc/sys path form, as sysctl(8) accepts */
	get(t->st, "net/ipv4/tcp_sack", "1");
}

static void test_set_and_read_back(void **state)
{
	struct tw *t = *state;
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.ip_local_port_range", "1024 65535"), 0);
	get(t->st, "net.ipv4.ip_local_port_range", "1024\t65535");
	assert_int_equal(ustack_sysctl_set(t->st, "net.core.somaxconn", " 128\n"), 0);
	get(t->st, "net.core.somaxconn", "128");
	/* a short vector changes only the leading values, like proc_dointvec */
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.tcp_wmem", "8192"), 0);
	get(t->st, "net.ipv4.tcp_wmem", "8192\t16384\t4194304");
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.tcp_congestion_control", "reno"), 0);
	get(t->st, "net.ipv4.tcp_congestion_control", "reno");
}

static void test_range_errors_keep_old_value(void **state)
{
	struct tw *t = *state;
	set_fails(t->st, "net.ipv4.tcp_syn_retries", "0", EINVAL);   /* min 1 */
	set_fails(t->st, "net.ipv4.tcp_syn_retries", "128", EINVAL); /* max 127 */
	get(t->st, "net.ipv4.tcp_syn_retries", "6");
	set_fails(t->st, "net.ipv4.ip_default_ttl", "256", EINVAL);
	set_fails(t->st, "net.ipv4.ip_default_ttl", "0", EINVAL);
	get(t->st, "net.ipv4.ip_default_ttl", "64");
	set_fails(t->st, "net.ipv4.tcp_sack", "2", EINVAL);
	set_fails(t->st, "net.core.somaxconn", "-1", EINVAL);
	set_fails(t->st, "net.core.somaxconn", "12abc", EINVAL);
	set_fails(t->st, "net.core.somaxconn", "", EINVAL);
	set_fails(t->st, "net.core.somaxconn", "99999999999", EINVAL);
	set_fails(t->st, "net.core.somaxconn", "1 2", EINVAL); /* too many values */
	get(t->st, "net.core.somaxconn", "4096");
	/* ip_local_port_range: low ≤ high, low ≥ ip_unprivileged_port_start, each ≤ 65535 */
	set_fails(t->st, "net.ipv4.ip_local_port_range", "60000 50000", EINVAL);
	set_fails(t->st, "net.ipv4.ip_local_port_range", "1000 2000", EINVAL);
	set_fails(t->st, "net.ipv4.ip_local_port_range", "40000 65536", EINVAL);
	get(t->st, "net.ipv4.ip_local_port_range", "32768\t60999");
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.ip_unprivileged_port_start", "500"), 0);
	assert_int_equal(ustack_sysctl_set(t->st, "net.ipv4.ip_local_port_range", "1000 2000"), 0);
	/* ipfrag_high_thresh may not go below low_thresh */
	set_fails(t->st, "net.ipv4.ipfrag_high_thresh", "1000", EINVAL);
	set_fails(t->st, "net.ipv4.tcp_rmem", "5000 4000 6000", EINVAL);
	/* Linux answers ENOENT for a congestion control it does not have */
	set_fails(t->st, "net.ipv4.tcp_congestion_control", "bbr9", ENOENT);
	get(t->st, "net.ipv4.tcp_congestion_control", "cubic");
}

static void test_unknown_name_and_small_buffer(void **state)
{
	struct tw *t = *state;
	char buf[4];
	set_fails(t->st, "net.ipv4.tcp_nonexistent", "1", ENOENT);
	errno = 0;
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.nope", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(ustack_sysctl_get(t->st, "net.ipv4.ip_local_port_range", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ERANGE);
	/* every listed name reads back */
	char big[128];
	for (size_t i = 0; i < ustack_sysctl_count(); i++)
		assert_int_equal(ustack_sysctl_get(t->st, ustack_sysctl_name(i), big, sizeof(big)), 0);
	assert_null(ustack_sysctl_name(ustack_sysctl_count()));
}

static void test_ttl_sysctl_reaches_the_wire(void **state)
{
	struct tw *t = *state;
	tw_learn_peer(t);
	tw_sysctl(t, "net.ipv4.ip_default_ttl", "17");
	uint8_t f[128];
	tw_send(t, f, tw_echo(f, TW_PEER_IP, TW_DUT_IP, 1, 1, 8));
	struct tw_frame *r = tw_expect(t);
	assert_int_equal(r->b[ETH + 8], 17);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_linux_defaults, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_set_and_read_back, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_range_errors_keep_old_value, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_name_and_small_buffer, tw_setup, tw_teardown),
		cmocka_unit_test_setup_teardown(test_ttl_sysctl_reaches_the_wire, tw_setup, tw_teardown),
	};
	return cmocka_run_group_tests_name("sysctl", tests, NULL, NULL);
}
