/* The TAP-device plumbing shared by `ustack up`, `connect`, `ping` and `nc` (tapcli.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ustack/trace.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

#include <sodium.h>
#include <ustack/diag.h>
#include <ustack/socket.h>
#include <ustack/sysctl.h>

#include "tapcli.h"

#ifndef TCPI_OPT_TFO_CHILD
#define TCPI_OPT_TFO_CHILD 128 /* Linux 6.16's, not yet in glibc's <netinet/tcp.h> */
#endif

/* --impair delay=50,jitter=10,loss=5,dup=1,reorder=25,seed=7: milliseconds and percents */
static int parse_impair(const char *spec, struct ustack_memlink_params *p)
{
	static const char keys[] = "delay, jitter, loss, dup, reorder, seed";
	char buf[256];
	if (!*spec || strlen(spec) >= sizeof(buf)) {
		cli_error("--impair", "'%s' is not KEY=VALUE,... (%s)", spec, keys);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	*p = (struct ustack_memlink_params){ .seed = 1, .queue_limit = 8192 };
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			cli_error("--impair", "'%s' is not KEY=VALUE (%s)", kv, keys);
			return -1;
		}
		*eq = 0;
		const char *val = eq + 1;
		char opt[32];
		snprintf(opt, sizeof(opt), "--impair %s", kv);
		double v;
		uint64_t seed;
		if (!strcmp(kv, "delay") || !strcmp(kv, "jitter")) {
			if (cli_real(opt, val, 0, 10000, "a time in ms", &v) < 0)
				return -1;
			*(kv[0] == 'd' ? &p->delay_us : &p->jitter_us) = (uint32_t)(v * 1000);
		} else if (!strcmp(kv, "loss") || !strcmp(kv, "dup") || !strcmp(kv, "reorder")) {
			if (cli_real(opt, val, 0, 100, "a percentage", &v) < 0)
				return -1;
			*(kv[0] == 'l' ? &p->loss : kv[0] == 'd' ? &p->duplicate : &p->reorder) = v / 100;
		} else if (!strcmp(kv, "seed")) {
			if (cli_u64(opt, val, 0, UINT64_MAX, "a seed", &seed) < 0)
				return -1;
			p->seed = seed;
		} else {
			cli_error("--impair", "unknown key '%s' (%s)", kv, keys);
			return -1;
		}
	}
	return 0;
}

/* Returns 1 if the option was a link option, 0 if not, -1 on a bad value. */
static int link_opt(struct link_opts *o, int c, const char *arg)
{
	int mtu;
	switch (c) {
	case OPT_TAP:
		if (cli_ifname("--tap", arg) < 0)
			return -1;
		o->tap = arg;
		return 1;
	case OPT_XDP: {
		/* IFNAME[@QUEUE] */
		const char *at = strrchr(arg, '@');
		size_t n = at ? (size_t)(at - arg) : strlen(arg);
		char q[32], name[64];
		snprintf(name, sizeof(name), "%.*s", (int)n, arg);
		if (cli_ifname("--xdp", name) < 0)
			return -1;
		memcpy(o->xdp_ifname, name, n + 1); /* n < IF_NAMESIZE: cli_ifname checked */
		int queue = 0;
		snprintf(q, sizeof(q), "--xdp %s@", o->xdp_ifname);
		if (at && cli_int(q, at + 1, 0, 1023, "a queue number", &queue) < 0)
			return -1;
		o->xdp = arg;
		o->xdp_queue = (unsigned)queue;
		return 1;
	}
	case OPT_XDP_MODE:
		o->xdp_flags &= ~(USTACK_XDP_SKB | USTACK_XDP_NATIVE);
		if (!strcmp(arg, "skb"))
			o->xdp_flags |= USTACK_XDP_SKB;
		else if (!strcmp(arg, "native"))
			o->xdp_flags |= USTACK_XDP_NATIVE;
		else if (strcmp(arg, "auto")) {
			cli_error("--xdp-mode", "'%s' is not native, skb or auto", arg);
			return -1;
		}
		o->have_xdp_opt = 1;
		return 1;
	case OPT_BUSY_POLL:
		o->xdp_flags |= USTACK_XDP_BUSY_POLL;
		o->have_xdp_opt = 1;
		return 1;
	case OPT_QUEUES: {
		int n;
		if (cli_int("--queues", arg, 1, (int)USTACK_TAP_QUEUES_MAX, "a number of queues", &n) < 0)
			return -1;
		o->tap_queues = (unsigned)n;
		return 1;
	}
	case OPT_ADDR:
		if (cli_prefix("--addr", arg, &o->addr, &o->prefixlen) < 0)
			return -1;
		o->have_addr = 1;
		return 1;
	case OPT_GW:
		if (cli_unicast("--gw", arg, &o->gw) < 0)
			return -1;
		o->have_gw = 1;
		return 1;
	case OPT_MTU:
		if (cli_int("--mtu", arg, 68, USTACK_MTU_MAX, "an MTU", &mtu) < 0)
			return -1;
		o->mtu = (unsigned)mtu;
		o->have_mtu = 1;
		return 1;
	case OPT_MAC:
		if (cli_mac("--mac", arg, o->mac) < 0)
			return -1;
		o->have_mac = 1;
		return 1;
	case OPT_PCAP:
		if (!*arg) {
			cli_error("--pcap", "needs a file name");
			return -1;
		}
		o->pcap = arg;
		return 1;
	case OPT_IMPAIR:
		if (parse_impair(arg, &o->impair) < 0)
			return -1;
		o->have_impair = 1;
		return 1;
	case OPT_NAME:
		if (cli_instance_name("--name", arg) < 0)
			return -1;
		o->name = arg;
		return 1;
	case 'o': {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg) {
			cli_error(cli_opt(), "'%s' is not NAME=VALUE", arg);
			return -1;
		}
		if (o->nsysctl == MAX_SYSCTL_OPTS) {
			cli_error(cli_opt(), "more than %d", MAX_SYSCTL_OPTS);
			return -1;
		}
		o->sysctl[o->nsysctl++] = arg;
		return 1;
	}
	default:
		return 0;
	}
}

/* On a new stack, before the device is opened, so that a bad -o costs no device and prints
 * no "configuring" line.  0, or the exit status with the message printed. */
int tap_apply_sysctls(struct ustack *st, const struct link_opts *o)
{
	for (int i = 0; i < o->nsysctl; i++) {
		char name[128], buf[128];
		const char *eq = strchr(o->sysctl[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - o->sysctl[i]), o->sysctl[i]);
		if (ustack_sysctl_set(st, name, eq + 1) == 0)
			continue;
		int err = errno;
		/* ENOENT is also a value's answer (a congestion control ustack does not have, as
		 * Linux says), so ask whether the name exists */
		if (err == ENOENT && ustack_sysctl_get(st, name, buf, sizeof(buf)) < 0 && errno == ENOENT)
			cli_error("-o", "unknown sysctl '%s'", name);
		else
			cli_error("-o", "bad value '%s' for %s (%s)", eq + 1, name,
				  err == ENOENT ? "not available" : strerror(err));
		return CLI_USAGE;
	}
	return 0;
}

void print_link_stats(FILE *f, const struct tap_stack *ts)
{
	if (ts->tap && ustack_tap_queues(ts->tap) > 1) {
		fprintf(f, "#TAP queues (the driver's; steering 1: ustack's eBPF program, 0: tun's flow table)\n");
		fprintf(f, "%-32s %d\n", "tap_steering_ebpf", ustack_tap_steering(ts->tap));
		struct ustack_tap_queue_stats q;
		for (unsigned i = 0; ustack_tap_queue_stats(ts->tap, i, &q) == 0; i++) {
			char name[40];
			snprintf(name, sizeof(name), "tap_queue%u_rx_frames", i);
			fprintf(f, "%-32s %llu\n", name, (unsigned long long)q.rx_frames);
			snprintf(name, sizeof(name), "tap_queue%u_tx_frames", i);
			fprintf(f, "%-32s %llu\n", name, (unsigned long long)q.tx_frames);
		}
	}
	struct ustack_xdp_stats x;
	if (!ts->xdp || ustack_xdp_stats(ts->xdp, &x) < 0)
		return;
	fprintf(f, "#AF_XDP (the driver's, and the kernel's XDP_STATISTICS)\n");
	const struct {
		const char *name;
		uint64_t v;
	} c[] = {
		{ "xdp_rx_frames", x.rx_frames }, { "xdp_tx_frames", x.tx_frames },
		{ "xdp_tx_no_frame", x.tx_no_frame }, { "xdp_tx_kick_errors", x.tx_kick_errors },
		{ "xdp_rx_dropped", x.rx_dropped }, { "xdp_rx_invalid_descs", x.rx_invalid },
		{ "xdp_tx_invalid_descs", x.tx_invalid }, { "xdp_rx_ring_full", x.rx_ring_full },
		{ "xdp_rx_fill_ring_empty_descs", x.rx_fill_ring_empty }, { "xdp_rx_oversize", x.rx_oversize },
		{ "xdp_rx_gathered", x.rx_gathered }, { "xdp_tx_csum_offload", x.tx_csum },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (c[i].v)
			fprintf(f, "%-32s %llu\n", c[i].name, (unsigned long long)c[i].v);
}

void print_counters(FILE *f, struct ustack *st)
{
	fprintf(f, "#kernel-style counters (nstat)\n");
	for (size_t i = 0; i < ustack_counter_count(); i++) {
		uint64_t v = ustack_counter_value(st, i);
		if (v)
			fprintf(f, "%-32s %llu\n", ustack_counter_name(i), (unsigned long long)v);
	}
}


int tap_fastopen_server(struct ustack *st)
{
	char buf[32];
	if (ustack_sysctl_get(st, "net.ipv4.tcp_fastopen", buf, sizeof(buf)) < 0) {
		cli_error("--fastopen", "net.ipv4.tcp_fastopen: %s", strerror(errno));
		return -1;
	}
	snprintf(buf, sizeof(buf), "%ld", strtol(buf, NULL, 0) | 0x2);
	if (ustack_sysctl_set(st, "net.ipv4.tcp_fastopen", buf) < 0) {
		cli_error("--fastopen", "net.ipv4.tcp_fastopen=%s: %s", buf, strerror(errno));
		return -1;
	}
	return 0;
}

/* The tun driver's flags of an existing device (sysfs tun_flags: IFF_TAP, IFF_MULTI_QUEUE, ...),
 * or -1 if it is not one of the driver's. */
static long tun_flags(const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%li", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Why ustack_tap_open failed, with what to do about it. */
static void tap_open_error(const char *name, unsigned queues, int err)
{
	char opt[32];
	snprintf(opt, sizeof(opt), "--tap %s", name);
	const char *hint = "";
	if (err == EPERM || err == EACCES)
		hint = " (needs root or CAP_NET_ADMIN)";
	else if (err == ENOENT && access("/dev/net/tun", F_OK) < 0)
		hint = " (no /dev/net/tun: is the tun module loaded?)";
	long tf = err == EINVAL && queues > 1 ? tun_flags(name) : -1;
	if (tf >= 0 && (tf & IFF_TAP) && !(tf & IFF_MULTI_QUEUE)) /* tun_set_iff: the flag must match */
		cli_error("--queues", "%s has one queue (made without multi_queue: ip tuntap del %s mode tap; "
				      "ip tuntap add %s mode tap multi_queue)", name, name, name);
	else if (err == EINVAL && if_nametoindex(name)) /* TUNSETIFF on an interface of another kind */
		cli_error(opt, "not a TAP device (%s)", strerror(err));
	else
		cli_error(opt, "cannot open TAP device: %s%s", strerror(err), hint);
}

static struct tap_stack *running; /* stopped by SIGINT/SIGTERM */

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		link_stop(running);
}

int link_run(struct tap_stack *ts)
{
	return ts->xdp ? ustack_xdp_run(ts->xdp) : ustack_tap_run(ts->tap);
}

int link_run_until(struct tap_stack *ts, uint64_t deadline_us)
{
	return ts->xdp ? ustack_xdp_run_until(ts->xdp, deadline_us) : ustack_tap_run_until(ts->tap, deadline_us);
}

void link_stop(struct tap_stack *ts)
{
	if (ts->xdp) /* both async-signal-safe: a write(2) */
		ustack_xdp_stop(ts->xdp);
	else
		ustack_tap_stop(ts->tap);
}

/* Why ustack_xdp_open failed, with what to do about it. */
static void xdp_open_error(const struct link_opts *o, int err)
{
	const char *hint = "";
	if (err == EPERM || err == EACCES)
		hint = " (needs root, or CAP_NET_ADMIN and CAP_BPF)";
	else if (err == EBUSY || err == EEXIST)
		hint = " (another XDP socket has the queue, or another program the interface)";
	else if ((err == EOPNOTSUPP || err == EINVAL) && o->xdp_flags & USTACK_XDP_NATIVE)
		hint = " (no native XDP in its driver: try --xdp-mode skb)";
	cli_error("--xdp", "%s: cannot open an XDP socket on queue %u: %s%s", o->xdp_ifname, o->xdp_queue,
		  strerror(err), hint);
}

/* Opens and attaches the link the options name: its ifindex, or -1 with the message printed
 * (*usage set for an error of the command line's) and whatever was opened left for link_close. */
static int link_open(struct tap_stack *ts, struct link_opts *o, int *usage)
{
	if (o->xdp) {
		struct ustack_xdp_config xc = { .ifname = o->xdp_ifname, .queue = o->xdp_queue, .flags = o->xdp_flags };
		ts->xdp = ustack_xdp_open(&xc);
		if (!ts->xdp) {
			int err = errno;
			xdp_open_error(o, err);
			*usage = err == ENODEV;
			return -1;
		}
		if (!o->have_mac && ustack_xdp_mac(ts->xdp, o->mac) < 0) { /* the device's own */
			cli_error("--xdp", "%s: its MAC address: %s", o->xdp_ifname, strerror(errno));
			return -1;
		}
		o->have_mac = 1;
		if (!o->have_mtu) { /* the device's own, as its MAC */
			int mtu = ustack_xdp_mtu(ts->xdp);
			if (mtu < 0) {
				cli_error("--xdp", "%s: its MTU: %s", o->xdp_ifname, strerror(errno));
				return -1;
			}
			o->mtu = (unsigned)mtu; /* at most what the socket carries whole */
		}
		int idx = ustack_xdp_attach(ts->xdp, ts->st, o->mac, o->mtu);
		if (idx < 0)
			cli_error(NULL, "configuring %s: %s", o->dev, strerror(errno));
		return idx;
	}
	ts->tap = ustack_tap_open_queues(o->tap, o->tap_queues ? o->tap_queues : 1);
	if (!ts->tap) {
		int err = errno;
		tap_open_error(o->tap, o->tap_queues, err);
		*usage = err == EINVAL && if_nametoindex(o->tap);
		return -1;
	}
	if (o->have_impair && ustack_tap_impair(ts->tap, &o->impair) < 0) {
		cli_error("--impair", "%s", strerror(errno));
		return -1;
	}
	int idx = ustack_tap_attach(ts->tap, ts->st, o->mac, o->mtu);
	if (idx < 0)
		cli_error(NULL, "configuring %s: %s", o->dev, strerror(errno));
	return idx;
}

static void link_close(struct tap_stack *ts)
{
	ustack_xdp_close(ts->xdp);
	ustack_tap_close(ts->tap);
	ts->xdp = NULL;
	ts->tap = NULL;
}


/* What Linux would write to its kernel log (the SYN flood warning, ...) goes to stderr,
 * prefixed with the command, as dmesg would show it. */
static void log_to_stderr(void *arg, const struct ustack_trace_event *ev)
{
	(void)arg;
	if (ev->kind == USTACK_TRACE_LOG && ev->detail)
		fprintf(stderr, "%s: %s\n", cli_command(), ev->detail);
}

int cli_instance_name(const char *opt, const char *s)
{
	size_t n = strlen(s);
	int ok = n && n <= 64 && s[0] != '.';
	for (const char *p = s; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		     *p == '_' || *p == '-';
	if (ok)
		return 0;
	cli_error(opt, "'%s' is not an instance name (1-64 of A-Z a-z 0-9 . _ -, not starting with '.')", s);
	return -1;
}

/*
 * The control socket, so that `ustack ss` and the rest can look in.  With --name its failure
 * is the command's; the default name (the device's) may be taken by an instance in another
 * network namespace, and then this one serves as DEVICE-PID, said on stderr.
 */
static int ctl_open(struct tap_stack *ts, const struct link_opts *o)
{
	char name[80];
	snprintf(name, sizeof(name), "%s", o->name ? o->name : o->dev);
	ts->ctl = ustack_ctl_start(ts->st, name);
	if (ts->ctl)
		return 0;
	int err = errno;
	char path[256];
	if (ustack_ctl_dir(path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "?");
	if (o->name) {
		cli_error("--name", "%s: control socket in %s: %s", o->name,
			  path, err == EADDRINUSE ? "an instance of that name is running" : strerror(err));
		return -1;
	}
	if (err == EADDRINUSE || err == EINVAL) {
		snprintf(name, sizeof(name), "%s-%d", err == EINVAL ? "ustack" : o->dev, (int)getpid());
		ts->ctl = ustack_ctl_start(ts->st, name);
		if (ts->ctl) {
			fprintf(stderr, "ustack %s: control socket: '%s' is taken, serving as '%s'\n", cli_command(),
				o->dev, name);
			return 0;
		}
		err = errno;
	}
	fprintf(stderr, "ustack %s: no control socket in %s: %s (ustack ss cannot see this instance)\n",
		cli_command(), path, strerror(err));
	return 0;
}

int tap_stack_open(struct tap_stack *ts, struct link_opts *o)
{
	ts->ctl = NULL;
	ts->tap = NULL;
	ts->xdp = NULL;
	if (!o->have_mac && !o->xdp) {
		randombytes_buf(o->mac, 6);
		o->mac[0] = (uint8_t)((o->mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
	}
	struct ustack_config cfg = { .clock = ustack_clock_monotonic(), .name = "ustack" };
	ts->st = ustack_create(&cfg);
	if (!ts->st) {
		cli_error(NULL, "%s", strerror(errno));
		return 1;
	}
	ustack_trace_subscribe_kinds(ts->st, USTACK_TRACE_KIND(USTACK_TRACE_LOG), log_to_stderr, NULL);
	int rc = tap_apply_sysctls(ts->st, o);
	if (rc) {
		ustack_destroy(ts->st);
		return rc;
	}
	int usage = 0;
	ts->ifindex = link_open(ts, o, &usage);
	if (ts->ifindex < 0) {
		link_close(ts);
		ustack_destroy(ts->st);
		return usage ? CLI_USAGE : 1;
	}
	if (ustack_addr_add(ts->st, ts->ifindex, o->addr, o->prefixlen) < 0) {
		cli_error(NULL, "configuring %s: %s", o->dev, strerror(errno));
		goto fail;
	}
	if (o->have_gw) {
		struct ustack_route r = { .gateway = o->gw, .ifindex = ts->ifindex };
		if (ustack_route_add(ts->st, &r) < 0) {
			cli_error(NULL, "default route via %s: %s", inet_ntoa(o->gw), strerror(errno));
			goto fail;
		}
	}
	if (o->pcap && ustack_pcap_start(ts->st, ts->ifindex, o->pcap) < 0) {
		cli_error("--pcap", "cannot write '%s': %s", o->pcap, strerror(errno));
		goto fail;
	}
	if (ctl_open(ts, o) < 0)
		goto fail;
	running = ts;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return 0;
fail:
	link_close(ts);
	ustack_destroy(ts->st);
	return 1;
}

unsigned tap_stack_drain(struct tap_stack *ts, const char *cmd)
{
	uint64_t lost = 0;
	/* 1: interrupted, and what is left is counted below */
	if (ts->xdp)
		ustack_xdp_drain(ts->xdp);
	else
		ustack_tap_drain(ts->tap);
	unsigned left = ustack_undelivered(ts->st, &lost);
	if (left)
		fprintf(stderr, "ustack %s: interrupted: %u closed connection%s still owed the peer data or a FIN\n",
			cmd, left, left == 1 ? "" : "s");
	if (lost)
		fprintf(stderr,
			"ustack %s: %llu closed connection%s ended before the peer acknowledged %s data and FIN\n",
			cmd, (unsigned long long)lost, lost == 1 ? "" : "s", lost == 1 ? "its" : "their");
	return left + (unsigned)(lost < UINT_MAX ? lost : UINT_MAX);
}

void tap_stack_close(struct tap_stack *ts)
{
	running = NULL;
	ustack_ctl_stop(ts->ctl); /* the socket goes with the instance */
	link_close(ts);
	ustack_destroy(ts->st);
}

/*
 * The capture file is opened only once the device is up; find out now whether it can be, so
 * that a mistyped path is a usage error with its real errno and costs no device.  (The open
 * itself may still fail, e.g. on a full disk: tap_stack_open reports that.)
 */
static int check_writable(const char *opt, const char *path)
{
	struct stat sb;
	int err = 0;
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			err = EISDIR;
		else if (access(path, W_OK) < 0)
			err = errno;
	} else if (errno != ENOENT) {
		err = errno;
	} else { /* a new file: its directory must be there and writable */
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else
			slash[slash == dir] = 0; /* "/x" → "/" */
		if (stat(dir, &sb) < 0)
			err = errno;
		else if (!S_ISDIR(sb.st_mode))
			err = ENOTDIR;
		else if (access(dir, W_OK | X_OK) < 0)
			err = errno;
	}
	if (!err)
		return 0;
	cli_error(opt, "cannot write '%s': %s", path, strerror(err));
	return -1;
}

/*
 * An existing interface that is not a TAP device makes TUNSETIFF fail with a bare EINVAL;
 * the driver's name (ETHTOOL_GDRVINFO, which needs no privilege, in this process's network
 * namespace) tells first, and without opening /dev/net/tun.  0 if the name is free, a TAP
 * device, or the question cannot be answered (then the open reports what it finds).
 */
static int check_tap_kind(const char *name)
{
	if (strchr(name, '%') || !if_nametoindex(name)) /* "tap%d" names a new device */
		return 0;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&info;
	int rc = ioctl(s, SIOCETHTOOL, &ifr), err = errno;
	int loopback = 0;
	if (rc < 0 && err == EOPNOTSUPP && ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
		loopback = (ifr.ifr_flags & IFF_LOOPBACK) != 0;
	close(s);
	char opt[32];
	snprintf(opt, sizeof(opt), "--tap %s", name);
	info.driver[sizeof(info.driver) - 1] = info.bus_info[sizeof(info.bus_info) - 1] = 0;
	if (rc == 0 && !strcmp(info.driver, "tun")) {
		if (!strcmp(info.bus_info, "tun")) { /* the tun driver says which kind in bus_info */
			cli_error(opt, "not a TAP device (a TUN device: IP packets, not Ethernet frames)");
			return -1;
		}
		return 0;
	}
	if (rc == 0)
		cli_error(opt, "not a TAP device (an existing %s interface)", info.driver);
	else if (err == EOPNOTSUPP)
		cli_error(opt, "not a TAP device (an existing %sinterface)", loopback ? "loopback " : "");
	else
		return 0;
	return -1;
}

static int link_opts_check(struct link_opts *o)
{
	if ((!o->tap && !o->xdp) || !o->have_addr) {
		cli_error(NULL, "--tap (or --xdp) and --addr are required (see ustack %s --help)", cli_command());
		return -1;
	}
	if (o->tap && o->xdp) {
		cli_error("--xdp", "one device: --tap or --xdp, not both");
		return -1;
	}
	if (o->xdp && o->have_impair) {
		cli_error("--impair", "not available with --xdp (the TAP driver's)");
		return -1;
	}
	if (o->xdp && o->tap_queues) {
		cli_error("--queues", "needs --tap (an XDP socket is one queue: --xdp IF@Q)");
		return -1;
	}
	if (!o->xdp && o->have_xdp_opt) {
		cli_error(o->xdp_flags & USTACK_XDP_BUSY_POLL ? "--busy-poll" : "--xdp-mode", "needs --xdp");
		return -1;
	}
	o->dev = o->tap ? o->tap : o->xdp_ifname;
	/* The default route's gateway must be on-link, through --addr's connected route (Linux:
	 * "Nexthop has invalid gateway"); said now rather than after the device is up. */
	uint32_t mask = o->prefixlen ? htonl(0xffffffffu << (32 - o->prefixlen)) : 0;
	if (o->have_gw && ((o->gw.s_addr ^ o->addr.s_addr) & mask)) {
		char gw[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN];
		struct in_addr n = { .s_addr = o->addr.s_addr & mask };
		inet_ntop(AF_INET, &o->gw, gw, sizeof(gw));
		inet_ntop(AF_INET, &n, net, sizeof(net));
		cli_error("--gw", "%s is not on the --addr subnet %s/%u", gw, net, o->prefixlen);
		return -1;
	}
	if (o->pcap && check_writable("--pcap", o->pcap) < 0)
		return -1;
	if (o->xdp && !if_nametoindex(o->xdp_ifname)) {
		cli_error("--xdp", "%s: no such interface", o->xdp_ifname);
		return -1;
	}
	return o->tap ? check_tap_kind(o->tap) : 0;
}

int tap_getopt(int argc, char **argv, const char *shortopts, const struct option *extra,
	       struct link_opts *o, int (*fn)(void *ctx, int c, const char *arg), void *ctx)
{
	static const struct option link_longopts[] = { LINK_LONGOPTS };
	enum { NLINK = sizeof(link_longopts) / sizeof(link_longopts[0]) };
	struct option longopts[NLINK + 16];
	size_t n = 0;
	for (; n < NLINK; n++)
		longopts[n] = link_longopts[n];
	for (const struct option *e = extra; e && e->name && n < NLINK + 15; e++)
		longopts[n++] = *e;
	longopts[n] = (struct option){ 0, 0, 0, 0 };
	char shorts[64];
	snprintf(shorts, sizeof(shorts), "o:%s", shortopts);
	*o = (struct link_opts){ .mtu = 1500 };
	optind = 1;
	int c;
	while ((c = cli_getopt(argc, argv, shorts, longopts)) != -1) {
		if (c == '?')
			return CLI_USAGE;
		int r = link_opt(o, c, optarg);
		if (r < 0)
			return CLI_USAGE;
		if (r)
			continue;
		r = fn(ctx, c, optarg);
		if (r)
			return r > 0 ? 0 : CLI_USAGE;
	}
	return link_opts_check(o) < 0 ? CLI_USAGE : -1;
}

void print_tcp_info(FILE *f, const char *who, struct ustack *st, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (ustack_getsockopt(st, fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return;
	fprintf(f, "  %-7s %-11s mss %u, wscale %s, sack %s, timestamps %s, cwnd %u, retransmits %u\n", who,
	       ustack_tcp_state_name(ti.tcpi_state), ti.tcpi_snd_mss,
	       ti.tcpi_options & TCPI_OPT_WSCALE ? "yes" : "no", ti.tcpi_options & TCPI_OPT_SACK ? "yes" : "no",
	       ti.tcpi_options & TCPI_OPT_TIMESTAMPS ? "yes" : "no", ti.tcpi_snd_cwnd, ti.tcpi_total_retrans);
	if (ti.tcpi_options & TCPI_OPT_WSCALE)
		fprintf(f, "          send scale %u, receive scale %u\n", ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale);
	/* TCPI_OPT_SYN_DATA: the SYN's data was acknowledged by the SYN-ACK (a client's Fast Open),
	 * or accepted with the SYN (a server's: then TCPI_OPT_TFO_CHILD too, Linux 6.16) */
	if (ti.tcpi_options & TCPI_OPT_SYN_DATA)
		fprintf(f, "          fast open: data in the SYN, %s\n",
			ti.tcpi_options & TCPI_OPT_TFO_CHILD ? "accepted with it (TFO child)" : "acknowledged by the SYN-ACK");
}
