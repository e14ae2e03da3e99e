/*
 * `ustack run [link options] -- PROGRAM [ARGS...]`: PROGRAM, unmodified, with its TCP/IPv4
 * over a ustack instance of its own (libustack-preload.so), as torsocks runs a program over
 * Tor: the options are checked here, handed to the library through the environment, and the
 * program replaces this process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tapcli.h"

#define PRELOAD_NAME "libustack-preload.so"

/* The library: $USTACK_PRELOAD_LIB, else beside this program (a build tree), else the
 * installed one. */
static int find_library(char *out, size_t size)
{
	const char *env = getenv("USTACK_PRELOAD_LIB");
	if (env && *env) {
		snprintf(out, size, "%s", env);
		return access(out, R_OK);
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(out, size, "%s/%s", dirname(exe), PRELOAD_NAME);
		if (access(out, R_OK) == 0)
			return 0;
	}
#ifdef USTACK_LIBDIR
	snprintf(out, size, "%s/%s", USTACK_LIBDIR, PRELOAD_NAME);
	if (access(out, R_OK) == 0)
		return 0;
#endif
	return -1;
}

static int run_opt(void *ctx, int c, const char *arg)
{
	(void)ctx, (void)arg;
	if (c != 'h')
		return -1;
	printf("usage: ustack run {--tap NAME | --xdp IF[@Q]} --addr A/N [--gw G] [options] -- PROGRAM [ARGS...]\n\n"
	       "Runs PROGRAM with its TCP/IPv4 sockets on a ustack instance of its own on a TAP\n"
	       "device or an AF_XDP queue (libustack-preload.so in LD_PRELOAD); its other sockets, files and pipes\n"
	       "stay the kernel's.  The instance starts at the program's first TCP socket and\n"
	       "serves a control socket (ustack ss --name NAME); at exit, what the program's\n"
	       "connections still had in flight is delivered before the process ends.  The exit\n"
	       "status is PROGRAM's.  The options reach the library as USTACK_TAP, USTACK_TAP_QUEUES (or\n"
	       "USTACK_XDP, USTACK_XDP_MODE, USTACK_BUSY_POLL), USTACK_ADDR, USTACK_GW, USTACK_MTU, USTACK_MAC, USTACK_PCAP, USTACK_NAME and USTACK_SYSCTL.\n\n" LINK_OPTS_HELP
	       "  (--impair is not available with run)\n");
	return 1;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	/* the options end at "--": what follows is the program's, options and all */
	int dash = 1;
	while (dash < argc && strcmp(argv[dash], "--"))
		dash++;
	struct link_opts o;
	int rc = tap_getopt(dash, argv, "h", longopts, &o, run_opt, NULL);
	if (rc >= 0)
		return rc;
	if (optind != dash) {
		cli_error(NULL, "unexpected '%s' (the program goes after --)", argv[optind]);
		return CLI_USAGE;
	}
	if (dash >= argc - 1) {
		cli_error(NULL, "want -- PROGRAM [ARGS...] (see ustack run --help)");
		return CLI_USAGE;
	}
	if (o.have_impair) {
		cli_error("--impair", "not available with run");
		return CLI_USAGE;
	}
	/* the sysctls, checked now on a throwaway instance, so a typo is a usage error here */
	struct ustack_config cfg = { .clock = ustack_clock_monotonic(), .name = "check" };
	struct ustack *check = ustack_create(&cfg);
	if (!check) {
		cli_error(NULL, "%s", strerror(errno));
		return 1;
	}
	rc = tap_apply_sysctls(check, &o);
	ustack_destroy(check);
	if (rc)
		return rc;
	char lib[PATH_MAX];
	if (find_library(lib, sizeof(lib)) < 0) {
		cli_error(NULL, "cannot find %s (set USTACK_PRELOAD_LIB)", PRELOAD_NAME);
		return 1;
	}
	char buf[64];
	if (o.xdp) {
		unsetenv("USTACK_TAP");
		setenv("USTACK_XDP", o.xdp, 1);
		setenv("USTACK_XDP_MODE", o.xdp_flags & USTACK_XDP_SKB ? "skb" : o.xdp_flags & USTACK_XDP_NATIVE ? "native" : "auto", 1);
		setenv("USTACK_BUSY_POLL", o.xdp_flags & USTACK_XDP_BUSY_POLL ? "1" : "0", 1);
	} else {
		unsetenv("USTACK_XDP");
		setenv("USTACK_TAP", o.tap, 1);
	}
	if (o.tap_queues) {
		snprintf(buf, sizeof(buf), "%u", o.tap_queues);
		setenv("USTACK_TAP_QUEUES", buf, 1);
	} else {
		unsetenv("USTACK_TAP_QUEUES");
	}
	snprintf(buf, sizeof(buf), "%s/%u", inet_ntoa(o.addr), o.prefixlen);
	setenv("USTACK_ADDR", buf, 1);
	if (o.have_gw)
		setenv("USTACK_GW", inet_ntoa(o.gw), 1);
	else
		unsetenv("USTACK_GW");
	if (o.have_mtu) {
		snprintf(buf, sizeof(buf), "%u", o.mtu);
		setenv("USTACK_MTU", buf, 1);
	} else {
		unsetenv("USTACK_MTU"); /* the library's default: 1500, or the --xdp interface's */
	}
	if (o.have_mac) {
		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", o.mac[0], o.mac[1], o.mac[2], o.mac[3],
			 o.mac[4], o.mac[5]);
		setenv("USTACK_MAC", buf, 1);
	} else {
		unsetenv("USTACK_MAC");
	}
	if (o.pcap)
		setenv("USTACK_PCAP", o.pcap, 1);
	else
		unsetenv("USTACK_PCAP");
	if (o.name)
		setenv("USTACK_NAME", o.name, 1);
	else
		unsetenv("USTACK_NAME");
	/* NAME=VALUE lines, as -o gave them (checked by tap_getopt against the known sysctls) */
	size_t len = 1;
	for (int i = 0; i < o.nsysctl; i++)
		len += strlen(o.sysctl[i]) + 1;
	char *sc = calloc(1, len);
	if (!sc)
		return 1;
	for (int i = 0; i < o.nsysctl; i++) {
		strcat(sc, o.sysctl[i]);
		strcat(sc, "\n");
	}
	setenv("USTACK_SYSCTL", sc, 1);
	free(sc);
	const char *prev = getenv("LD_PRELOAD");
	char *pre = malloc(strlen(lib) + (prev ? strlen(prev) : 0) + 2);
	if (!pre)
		return 1;
	sprintf(pre, "%s%s%s", lib, prev && *prev ? ":" : "", prev && *prev ? prev : "");
	setenv("LD_PRELOAD", pre, 1);
	free(pre);
	execvp(argv[dash + 1], argv + dash + 1);
	int err = errno;
	fprintf(stderr, "ustack run: %s: %s\n", argv[dash + 1], strerror(err));
	return err == ENOENT ? 127 : 126;
}
