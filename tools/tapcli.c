/* The TAP-device plumbing shared by `ustack up`, `connect`, `ping` and `nc` (tapcli.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>

#include <sodium.h>
#include <ustack/socket.h>
#include <ustack/sysctl.h>

#include "tapcli.h"

static int parse_prefix(const char *s, struct in_addr *a, unsigned *len)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	*len = 32;
	if (slash) {
		char *end;
		unsigned long l = strtoul(slash + 1, &end, 10);
		if (*end || l > 32 || end == slash + 1)
			return -1;
		*len = (unsigned)l;
		*slash = 0;
	}
	return inet_pton(AF_INET, buf, a) == 1 ? 0 : -1;
}

/* --impair delay=50,jitter=10,loss=5,dup=1,reorder=25,seed=7: milliseconds and percents */
static int parse_impair(const char *spec, struct ustack_memlink_params *p)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", spec);
	*p = (struct ustack_memlink_params){ .seed = 1 };
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '='), *end;
		if (!eq)
			return -1;
		*eq = 0;
		double v = strtod(eq + 1, &end);
		if (*end || end == eq + 1 || v < 0)
			return -1;
		if (!strcmp(kv, "delay") && v <= 10000)
			p->delay_us = (uint32_t)(v * 1000);
		else if (!strcmp(kv, "jitter") && v <= 10000)
			p->jitter_us = (uint32_t)(v * 1000);
		else if (!strcmp(kv, "loss") && v <= 100)
			p->loss = v / 100;
		else if (!strcmp(kv, "dup") && v <= 100)
			p->duplicate = v / 100;
		else if (!strcmp(kv, "reorder") && v <= 100)
			p->reorder = v / 100;
		else if (!strcmp(kv, "seed"))
			p->seed = (uint64_t)v;
		else
			return -1;
	}
	p->queue_limit = 8192;
	return 0;
}

/* Returns 1 if the option was a link option, 0 if not, -1 on a bad value. */
static int link_opt(struct link_opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_TAP:
		o->tap = arg;
		return 1;
	case OPT_ADDR:
		if (parse_prefix(arg, &o->addr, &o->prefixlen) < 0) {
			fprintf(stderr, "ustack: bad --addr '%s' (want A.B.C.D/N)\n", arg);
			return -1;
		}
		o->have_addr = 1;
		return 1;
	case OPT_GW:
		if (inet_pton(AF_INET, arg, &o->gw) != 1) {
			fprintf(stderr, "ustack: bad --gw '%s'\n", arg);
			return -1;
		}
		o->have_gw = 1;
		return 1;
	case OPT_MTU: {
		char *end;
		unsigned long m = strtoul(arg, &end, 10);
		if (*end || m < 68 || m > USTACK_MTU_MAX) {
			fprintf(stderr, "ustack: bad --mtu '%s' (68..%d)\n", arg, USTACK_MTU_MAX);
			return -1;
		}
		o->mtu = (unsigned)m;
		return 1;
	}
	case OPT_MAC: {
		unsigned m[6];
		if (sscanf(arg, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
			fprintf(stderr, "ustack: bad --mac '%s'\n", arg);
			return -1;
		}
		for (int i = 0; i < 6; i++)
			o->mac[i] = (uint8_t)m[i];
		o->have_mac = 1;
		return 1;
	}
	case OPT_PCAP:
		o->pcap = arg;
		return 1;
	case OPT_IMPAIR:
		if (parse_impair(arg, &o->impair) < 0) {
			fprintf(stderr, "ustack: bad --impair '%s' (delay=MS,jitter=MS,loss=PCT,dup=PCT,reorder=PCT,seed=N)\n", arg);
			return -1;
		}
		o->have_impair = 1;
		return 1;
	case 'o':
		if (o->nsysctl == MAX_SYSCTL_OPTS || !strchr(arg, '=')) {
			fprintf(stderr, "ustack: bad -o '%s' (want name=value)\n", arg);
			return -1;
		}
		o->sysctl[o->nsysctl++] = arg;
		return 1;
	default:
		return 0;
	}
}

static int apply_sysctls(struct ustack *st, const struct link_opts *o)
{
	for (int i = 0; i < o->nsysctl; i++) {
		char name[128];
		const char *eq = strchr(o->sysctl[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - o->sysctl[i]), o->sysctl[i]);
		if (ustack_sysctl_set(st, name, eq + 1) < 0) {
			fprintf(stderr, "ustack: sysctl %s: %s\n", o->sysctl[i], strerror(errno));
			return -1;
		}
	}
	return 0;
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


static struct ustack_tap *running_tap; /* stopped by SIGINT/SIGTERM */

static void on_signal(int sig)
{
	(void)sig;
	if (running_tap)
		ustack_tap_stop(running_tap);
}


int tap_stack_open(struct tap_stack *ts, struct link_opts *o, const char *cmd)
{
	if (!o->tap || !o->have_addr) {
		fprintf(stderr, "ustack %s: --tap and --addr are required (see ustack %s --help)\n", cmd, cmd);
		return 2;
	}
	if (!o->have_mac) {
		randombytes_buf(o->mac, 6);
		o->mac[0] = (uint8_t)((o->mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
	}
	struct ustack_config cfg = { .clock = ustack_clock_monotonic(), .name = "ustack" };
	ts->st = ustack_create(&cfg);
	ts->tap = ts->st ? ustack_tap_open(o->tap) : NULL;
	if (!ts->tap) {
		fprintf(stderr, "ustack %s: cannot open TAP device %s: %s\n", cmd, o->tap, strerror(errno));
		ustack_destroy(ts->st);
		return 1;
	}
	if (o->have_impair && ustack_tap_impair(ts->tap, &o->impair) < 0) {
		fprintf(stderr, "ustack %s: --impair: %s\n", cmd, strerror(errno));
		goto fail;
	}
	ts->ifindex = ustack_tap_attach(ts->tap, ts->st, o->mac, o->mtu);
	if (ts->ifindex < 0 || ustack_addr_add(ts->st, ts->ifindex, o->addr, o->prefixlen) < 0 ||
	    apply_sysctls(ts->st, o) < 0) {
		fprintf(stderr, "ustack %s: configuring %s: %s\n", cmd, o->tap, strerror(errno));
		goto fail;
	}
	if (o->have_gw) {
		struct ustack_route r = { .gateway = o->gw, .ifindex = ts->ifindex };
		if (ustack_route_add(ts->st, &r) < 0) {
			fprintf(stderr, "ustack %s: default route via %s: %s\n", cmd, inet_ntoa(o->gw), strerror(errno));
			goto fail;
		}
	}
	if (o->pcap && ustack_pcap_start(ts->st, ts->ifindex, o->pcap) < 0) {
		fprintf(stderr, "ustack %s: capture to %s: %s\n", cmd, o->pcap, strerror(errno));
		goto fail;
	}
	running_tap = ts->tap;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return 0;
fail:
	ustack_tap_close(ts->tap);
	ustack_destroy(ts->st);
	return 1;
}

void tap_stack_close(struct tap_stack *ts)
{
	running_tap = NULL;
	ustack_tap_close(ts->tap);
	ustack_destroy(ts->st);
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
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		int r = link_opt(o, c, optarg);
		if (r < 0)
			return 2;
		if (r)
			continue;
		if (c == '?')
			return 2;
		r = fn(ctx, c, optarg);
		if (r)
			return r > 0 ? 0 : 2;
	}
	return -1;
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
}
