/*
 * What every `ustack` subcommand that runs on a TAP device shares: the link options
 * (--tap, --addr, --gw, --mtu, --mac, --pcap, -o), one option parser for them, and a stack
 * brought up on the device from them.
 */
#ifndef USTACK_TOOLS_TAPCLI_H
#define USTACK_TOOLS_TAPCLI_H

#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>

#include <ustack/link.h>
#include <ustack/stack.h>

#include "cliparse.h"

#define MAX_SYSCTL_OPTS 32

struct link_opts {
	const char *tap;
	unsigned tap_queues;            /* --queues N: the TAP device's queues (0: not given, one) */
	const char *xdp;                /* --xdp IFNAME[@QUEUE]: the interface's name, */
	char xdp_ifname[IF_NAMESIZE];   /* ... its name alone */
	unsigned xdp_queue, xdp_flags;  /* ... @QUEUE, and USTACK_XDP_* from --xdp-mode, --busy-poll */
	const char *dev;                /* the device either names */
	struct in_addr addr, gw;
	unsigned prefixlen, mtu;
	uint8_t mac[6];
	int have_addr, have_gw, have_mac, have_mtu;
	const char *pcap;
	const char *sysctl[MAX_SYSCTL_OPTS];
	int nsysctl;
	struct ustack_memlink_params impair;
	int have_impair, have_xdp_opt;
	const char *name; /* --name: the control socket's instance name (default: the device's) */
};

#define LINK_OPTS_HELP \
	"  --tap NAME        TAP device to attach to (an existing persistent one, or a new one)\n" \
	"  --xdp IF[@Q]      or: queue Q (default 0) of interface IF by AF_XDP; its peer must send\n" \
	"                    complete checksums (a veth's: ethtool -K PEER tx off)\n" \
	"  --xdp-mode M      native (fail without), skb (generic XDP), or auto (default: native,\n" \
	"                    else skb)\n" \
	"  --busy-poll       with --xdp: never sleep, poll the rings (keeps a core busy)\n" \
	"  --queues N        with --tap: N queues (1-256; the device multi_queue), a thread each\n" \
	"  --addr A/N        ustack's unicast address and prefix length (0-32), e.g. 192.0.2.2/24\n" \
	"  --gw G            default gateway (on the --addr subnet)\n" \
	"  --mtu N           interface MTU (68-65535; default 1500, with --xdp the interface's)\n" \
	"  --mac M           ustack's unicast MAC address (default: random, locally administered)\n" \
	"  --pcap FILE       capture every frame to FILE\n" \
	"  -o, --sysctl K=V  set a sysctl, e.g. -o net.ipv4.icmp_echo_ignore_all=1\n" \
	"  --impair SPEC     impair the wire each way, like netem: delay=MS,jitter=MS (0-10000),\n" \
	"                    loss=PCT,dup=PCT,reorder=PCT (0-100), seed=N (e.g. delay=50,reorder=25)\n" \
	"  --name NAME       the instance's name for ustack ss/nstat/sysctl/trace (default: the\n" \
	"                    device's); its control socket is NAME.sock in /run/ustack (root) or\n" \
	"                    $XDG_RUNTIME_DIR/ustack ($USTACK_RUN_DIR overrides)\n"

enum { OPT_TAP = 1000, OPT_ADDR, OPT_GW, OPT_MTU, OPT_MAC, OPT_PCAP, OPT_IMPAIR, OPT_NAME, OPT_XDP, OPT_XDP_MODE,
       OPT_BUSY_POLL, OPT_QUEUES };
#define LINK_LONGOPTS \
	{ "tap", required_argument, 0, OPT_TAP }, { "addr", required_argument, 0, OPT_ADDR }, \
	{ "gw", required_argument, 0, OPT_GW }, { "mtu", required_argument, 0, OPT_MTU }, \
	{ "mac", required_argument, 0, OPT_MAC }, { "pcap", required_argument, 0, OPT_PCAP }, \
	{ "sysctl", required_argument, 0, 'o' }, { "impair", required_argument, 0, OPT_IMPAIR }, \
	{ "name", required_argument, 0, OPT_NAME }, { "xdp", required_argument, 0, OPT_XDP }, \
	{ "xdp-mode", required_argument, 0, OPT_XDP_MODE }, { "busy-poll", no_argument, 0, OPT_BUSY_POLL }, \
	{ "queues", required_argument, 0, OPT_QUEUES }

/* A stack on a TAP device or an AF_XDP queue, configured from the link options. */
struct ustack_ctl;
struct tap_stack {
	struct ustack *st;
	struct ustack_tap *tap; /* one of the two */
	struct ustack_xdp *xdp;
	int ifindex;
	struct ustack_ctl *ctl; /* the control socket (NULL if it could not be made) */
};

/*
 * Parses argv: link options fill *o, any other option (from `shortopts` or `extra`, a
 * {0}-terminated list) goes to fn(ctx, c, optarg), which returns 0 to go on, 1 after
 * printing help, or -1 on a bad value (with the message printed: cliparse.h).  Then checks
 * what can be checked without touching the device: --tap and --addr given, --gw on the
 * --addr subnet, the --pcap file writable, --tap not an interface of another kind.  Returns
 * -1 when all is well (optind is at the first operand), else the exit status the command
 * should return (0 after help, 2 on a usage error).
 */
int tap_getopt(int argc, char **argv, const char *shortopts, const struct option *extra,
	       struct link_opts *o, int (*fn)(void *ctx, int c, const char *arg), void *ctx);

/* Creates the stack on the monotonic clock, applies the sysctls (a bad one is a usage error,
 * found before the device is opened), attaches the TAP device, applies the other options,
 * and makes SIGINT/SIGTERM stop the run loop.  0, or the exit status with a message printed. */
int tap_stack_open(struct tap_stack *ts, struct link_opts *o);
void tap_stack_close(struct tap_stack *ts);
/* The device's run loop, whichever it is (ustack_tap_run, _run_until, _stop). */
int link_run(struct tap_stack *ts);
int link_run_until(struct tap_stack *ts, uint64_t deadline_us);
void link_stop(struct tap_stack *ts);
/* The -o sysctls on st: 0, or CLI_USAGE with the message printed (unknown name, bad value). */
int tap_apply_sysctls(struct ustack *st, const struct link_opts *o);
/*
 * The command's last act, as a kernel's after a process exits: keeps the stack running until
 * every connection it closed has delivered its data and FIN, or ended otherwise (reset,
 * given up after tcp_orphan_retries); another SIGINT/SIGTERM cuts it short.  Returns how many
 * closed connections did not deliver (said on stderr, named after cmd), 0 if all did.
 */
unsigned tap_stack_drain(struct tap_stack *ts, const char *cmd);

void print_counters(FILE *f, struct ustack *st);
/* The link driver's own counters, if it has any (AF_XDP's). */
void print_link_stats(FILE *f, const struct tap_stack *ts);
/* Server Fast Open for the stack, as `sysctl -w net.ipv4.tcp_fastopen=3` would on Linux: the
 * server bit (0x2) added to net.ipv4.tcp_fastopen.  0, or -1 with the message printed. */
int tap_fastopen_server(struct ustack *st);
void print_tcp_info(FILE *f, const char *who, struct ustack *st, int fd);

/* A control-socket instance name: 1-64 of [A-Za-z0-9._-], not starting with '.'.  0 or -1
 * with the message printed. */
int cli_instance_name(const char *opt, const char *s);

/* `ustack ls`, `ss`, `nstat`, `trace`, `tcp_metrics` and `sysctl` (live or defaults): observe.c */
int cmd_ls(int argc, char **argv);
int cmd_ss(int argc, char **argv);
int cmd_nstat(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_sysctl(int argc, char **argv);
int cmd_tcp_metrics(int argc, char **argv);
int cmd_pcap(int argc, char **argv);

/* `ustack run -- PROGRAM` (run.c) */
int cmd_run(int argc, char **argv);

/* `ustack nc` (nc.c) */
int cmd_nc(int argc, char **argv);

#endif
