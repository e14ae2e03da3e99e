/*
 * Looking into a running instance through its control socket (ustack_ctl_start), as Linux's
 * tools look into the kernel:
 *
 *   ustack ls                                   running instances
 *   ustack ss [--name N] [-tanlioem] [-H] [--json] [state S]... [sport = :P] [dport = :P] [dst A] [src A]
 *   ustack nstat [--name N] [-a] [-z] [-r] [-n] [-s] [--json] [PATTERN...]
 *   ustack sysctl [--name N] [-n] [-a | -w NAME=VALUE | NAME[=VALUE]...]
 *   ustack trace [--name N] [-e EVENT]...
 *
 * Without --name, the one instance running in this network namespace (as Linux's ss and sysctl
 * show their own namespace); `ustack sysctl` without any lists the defaults, as before.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <ustack/diag.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>

#include "cliparse.h"
#include "ladder.h"
#include "tapcli.h"

#define MAX_INSTANCES 64

/* ---- the client side of the protocol ---------------------------------------------------- */

static int ctl_path(const char *name, char *path, size_t len)
{
	char dir[200];
	if (ustack_ctl_dir(dir, sizeof(dir)) < 0)
		return -1;
	if ((size_t)snprintf(path, len, "%s/%s.sock", dir, name) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Sends one request to NAME's control socket; returns the answer's stream after its "ok" line,
 * or NULL with errno (and the server's reason in why, if it gave one).  timeout_s 0: none.
 */
static FILE *ctl_request(const char *name, const char *req, int timeout_s, char *why, size_t whylen)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	why[0] = 0;
	if (ctl_path(name, path, sizeof(path)) < 0)
		return NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, sizeof(sa.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char line[600];
	int n = snprintf(line, sizeof(line), "%s\n", req);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || n < 0 || (size_t)n >= sizeof(line)) {
		int err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	/* a refusal comes before the request is read: a failed send still has an answer to read */
	int send_err = send(fd, line, (size_t)n, MSG_NOSIGNAL) == n ? 0 : errno;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return NULL;
	}
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		errno = send_err ? send_err : ECONNRESET;
		return NULL;
	}
	line[strcspn(line, "\n")] = 0;
	if (!strcmp(line, "ok"))
		return f;
	int err = EPROTO;
	char text[512] = "";
	if (sscanf(line, "err %d %511[^\n]", &err, text) < 1)
		err = EPROTO;
	snprintf(why, whylen, "%s", text);
	fclose(f);
	errno = err > 0 ? err : EPROTO;
	return NULL;
}

struct instance {
	char name[80];
	char netns[64];
	int pid;
	unsigned uid;
	unsigned long sockets;
};

static void my_netns(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/ns/net", buf, len - 1);
	if (n <= 0)
		snprintf(buf, len, "-");
	else
		buf[n] = 0;
}

/* The live instances of the control directory (stale sockets skipped), up to max. */
static int list_instances(struct instance *v, int max)
{
	char dir[200];
	if (ustack_ctl_dir(dir, sizeof(dir)) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		size_t len = strlen(e->d_name);
		if (len < 6 || len - 5 >= sizeof(v[n].name) || strcmp(e->d_name + len - 5, ".sock"))
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%.*s", (int)(len - 5), e->d_name);
		char why[128], line[512];
		FILE *f = ctl_request(v[n].name, "ls-info", 2, why, sizeof(why));
		if (!f)
			continue; /* stale (nobody answers), or not ours */
		v[n].netns[0] = 0;
		v[n].pid = 0;
		if (fgets(line, sizeof(line), f))
			sscanf(line, "name=%*s pid=%d uid=%u netns=%63s stack=%*s sockets=%lu", &v[n].pid, &v[n].uid,
			       v[n].netns, &v[n].sockets);
		fclose(f);
		n++;
	}
	closedir(d);
	return n;
}

/*
 * The instance a command looks at: --name's, else the only one in this network namespace.
 * Returns 0 with *name set, 1 when there is none (only when none_ok), or the exit status after
 * a message.
 */
static int pick_instance(const char *given, char *name, size_t len, bool none_ok)
{
	if (given) {
		snprintf(name, len, "%s", given);
		return 0;
	}
	static struct instance v[MAX_INSTANCES];
	int n = list_instances(v, MAX_INSTANCES), found = 0;
	char ns[64];
	my_netns(ns, sizeof(ns));
	char names[256] = "";
	for (int i = 0; i < n; i++) {
		if (strcmp(v[i].netns, ns))
			continue;
		/* a name that does not fit is cut, visibly short (instance names are < 80 bytes) */
		if (!found++ && snprintf(name, len, "%s", v[i].name) >= (int)len)
			name[0] = 0;
		size_t l = strlen(names);
		if (snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", v[i].name) >= (int)(sizeof(names) - l))
			names[l] = 0; /* the list of candidates is only a hint */
	}
	if (found == 1)
		return 0;
	if (!found && none_ok)
		return 1;
	if (!found)
		cli_error(NULL, "no ustack instance is running in this network namespace (see ustack ls; --name NAME)");
	else
		cli_error(NULL, "%d instances are running here (%s): choose one with --name", found, names);
	return 1;
}

/* A request's failure, said as the command's. */
static int request_error(const char *name, const char *why)
{
	int err = errno;
	if (err == ENOENT || err == ECONNREFUSED)
		cli_error("--name", "%s: no such instance running (see ustack ls)", name);
	else if (err == EACCES && *why)
		cli_error("--name", "%s: %s", name, why);
	else
		cli_error("--name", "%s: %s%s%s", name, strerror(err), *why ? ": " : "", why);
	return 1;
}

/* ---- ustack ls ---------------------------------------------------------------------------- */

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
		if (c != 'h')
			return CLI_USAGE;
		printf("usage: ustack ls\n\n"
		       "Lists the ustack instances running for this user (their control sockets in\n"
		       "/run/ustack for root, else $XDG_RUNTIME_DIR/ustack; $USTACK_RUN_DIR overrides):\n"
		       "name, process, sockets, and the network namespace of their device.\n");
		return 0;
	}
	if (cli_no_operands(argc, argv) < 0)
		return CLI_USAGE;
	static struct instance v[MAX_INSTANCES];
	int n = list_instances(v, MAX_INSTANCES);
	char ns[64];
	my_netns(ns, sizeof(ns));
	printf("%-20s %-8s %-8s %s\n", "NAME", "PID", "SOCKETS", "NETNS");
	for (int i = 0; i < n; i++)
		printf("%-20s %-8d %-8lu %s%s\n", v[i].name, v[i].pid, v[i].sockets, v[i].netns,
		       strcmp(v[i].netns, ns) ? "" : " (this one)");
	return 0;
}

/* ---- ustack ss ---------------------------------------------------------------------------- */

/* iproute2's SS_* bits are TCP's states */
#define SS_ALL ((1u << 12) - 2)
#define SS_CONN (SS_ALL & ~((1u << TCP_LISTEN) | (1u << TCP_CLOSE) | (1u << TCP_TIME_WAIT) | (1u << TCP_SYN_RECV)))

/* ss's scan_state */
static int scan_state(const char *s, unsigned *bits)
{
	static const char *const names[] = { [TCP_ESTABLISHED] = "established", [TCP_SYN_SENT] = "syn-sent",
					     [TCP_SYN_RECV] = "syn-recv",	    [TCP_FIN_WAIT1] = "fin-wait-1",
					     [TCP_FIN_WAIT2] = "fin-wait-2",	    [TCP_TIME_WAIT] = "time-wait",
					     [TCP_CLOSE] = "unconnected",	    [TCP_CLOSE_WAIT] = "close-wait",
					     [TCP_LAST_ACK] = "last-ack",	    [TCP_LISTEN] = "listening",
					     [TCP_CLOSING] = "closing" };
	if (!strcasecmp(s, "close") || !strcasecmp(s, "closed"))
		*bits = 1u << TCP_CLOSE;
	else if (!strcasecmp(s, "syn-rcv"))
		*bits = 1u << TCP_SYN_RECV;
	else if (!strcasecmp(s, "all"))
		*bits = SS_ALL;
	else if (!strcasecmp(s, "connected"))
		*bits = SS_ALL & ~((1u << TCP_CLOSE) | (1u << TCP_LISTEN));
	else if (!strcasecmp(s, "synchronized"))
		*bits = SS_ALL & ~((1u << TCP_CLOSE) | (1u << TCP_LISTEN) | (1u << TCP_SYN_SENT));
	else if (!strcasecmp(s, "bucket"))
		*bits = (1u << TCP_SYN_RECV) | (1u << TCP_TIME_WAIT);
	else if (!strcasecmp(s, "big"))
		*bits = SS_ALL & ~((1u << TCP_SYN_RECV) | (1u << TCP_TIME_WAIT));
	else {
		for (unsigned i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
			if (names[i] && !strcasecmp(s, names[i])) {
				*bits = 1u << i;
				return 0;
			}
		}
		return -1;
	}
	return 0;
}

struct ss_filter {
	unsigned states;
	int sport, dport;        /* -1: any */
	bool sport_ne, dport_ne;
	bool have_dst, have_src;
	struct in_addr dst, src; /* with prefix lengths */
	unsigned dst_len, src_len;
};

struct ss_opts {
	const char *name;
	bool all, listening, numeric, info, options, memory, extended, json, no_header, summary;
	struct ss_filter f;
};

/* one record of the server's "sock k=v ..." lines */
struct ss_rec {
	int state, fd;
	unsigned req, rq, sq, synq, timer, exp, retrans, shut;
	char src[32], dst[32];
	struct in_addr la, ra;
	unsigned lport, rport;
	unsigned skmem[9];
	bool has_info;
	char cong[16];
	unsigned opts, swscale, rwscale, rto, backoff, rtt, rttvar, ato, mss, pmtu, rcvmss, advmss, cwnd, ssthresh;
	unsigned long long bytes_sent, bytes_retrans, bytes_acked, bytes_received, busy, rwnd_limited, sndbuf_limited;
	unsigned segs_out, segs_in, data_segs_out, data_segs_in, lastsnd, lastrcv, lastack, delivered;
	unsigned unacked, sacked, lost, retr, retr_total, dsack_dups, reordering, reord_seen, rcv_rtt, rcv_space;
	unsigned rcv_ssthresh, notsent, minrtt, rcv_ooopack, snd_wnd, rcv_wnd;
};

static int split_addr(const char *s, struct in_addr *a, unsigned *port)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%s", s);
	char *colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = 0;
	*port = (unsigned)strtoul(colon + 1, NULL, 10);
	return inet_pton(AF_INET, buf, a) == 1 ? 0 : -1;
}

static int parse_rec(char *line, struct ss_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->reordering = 3;
	if (strncmp(line, "sock ", 5))
		return -1;
	char *save = NULL;
	for (char *kv = strtok_r(line + 5, " \n", &save); kv; kv = strtok_r(NULL, " \n", &save)) {
		char *v = strchr(kv, '=');
		if (!v)
			continue;
		*v++ = 0;
		unsigned long long x = strtoull(v, NULL, 10);
		unsigned u = (unsigned)x;
#define U(k, f)                 \
	else if (!strcmp(kv, k)) \
		r->f = u;
#define L(k, f)                 \
	else if (!strcmp(kv, k)) \
		r->f = x;
		if (!strcmp(kv, "state"))
			r->state = (int)u;
		else if (!strcmp(kv, "fd"))
			r->fd = atoi(v);
		else if (!strcmp(kv, "src"))
			snprintf(r->src, sizeof(r->src), "%s", v);
		else if (!strcmp(kv, "dst"))
			snprintf(r->dst, sizeof(r->dst), "%s", v);
		else if (!strcmp(kv, "skmem"))
			sscanf(v, "%u,%u,%u,%u,%u,%u,%u,%u,%u", &r->skmem[0], &r->skmem[1], &r->skmem[2], &r->skmem[3],
			       &r->skmem[4], &r->skmem[5], &r->skmem[6], &r->skmem[7], &r->skmem[8]);
		else if (!strcmp(kv, "cong")) {
			r->has_info = true;
			snprintf(r->cong, sizeof(r->cong), "%s", strcmp(v, "-") ? v : "");
		} else if (!strcmp(kv, "wscale"))
			sscanf(v, "%u,%u", &r->swscale, &r->rwscale);
		else if (!strcmp(kv, "rtt"))
			sscanf(v, "%u,%u", &r->rtt, &r->rttvar);
		else if (!strcmp(kv, "retr"))
			sscanf(v, "%u,%u", &r->retr, &r->retr_total);
		U("req", req) U("rq", rq) U("sq", sq) U("synq", synq) U("timer", timer) U("exp", exp)
		U("retrans", retrans) U("shut", shut) U("opts", opts) U("rto", rto) U("backoff", backoff)
		U("ato", ato) U("mss", mss) U("pmtu", pmtu) U("rcvmss", rcvmss) U("advmss", advmss)
		U("cwnd", cwnd) U("ssthresh", ssthresh) L("bytes_sent", bytes_sent)
		L("bytes_retrans", bytes_retrans) L("bytes_acked", bytes_acked) L("bytes_received", bytes_received)
		U("segs_out", segs_out) U("segs_in", segs_in) U("data_segs_out", data_segs_out)
		U("data_segs_in", data_segs_in) U("lastsnd", lastsnd) U("lastrcv", lastrcv) U("lastack", lastack)
		U("delivered", delivered) L("busy", busy) L("rwnd_limited", rwnd_limited)
		L("sndbuf_limited", sndbuf_limited) U("unacked", unacked) U("sacked", sacked) U("lost", lost)
		U("dsack_dups", dsack_dups) U("reordering", reordering) U("reord_seen", reord_seen)
		U("rcv_rtt", rcv_rtt) U("rcv_space", rcv_space) U("rcv_ssthresh", rcv_ssthresh)
		U("notsent", notsent) U("minrtt", minrtt) U("rcv_ooopack", rcv_ooopack) U("snd_wnd", snd_wnd)
		U("rcv_wnd", rcv_wnd)
#undef U
#undef L
	}
	if (split_addr(r->src, &r->la, &r->lport) < 0 || split_addr(r->dst, &r->ra, &r->rport) < 0)
		return -1;
	return 0;
}

static bool in_prefix(struct in_addr a, struct in_addr net, unsigned len)
{
	uint32_t mask = len ? htonl(0xffffffffu << (32 - len)) : 0;
	return ((a.s_addr ^ net.s_addr) & mask) == 0;
}

static bool ss_match(const struct ss_filter *f, const struct ss_rec *r)
{
	if (!(f->states & (1u << r->state)))
		return false;
	if (f->sport >= 0 && ((unsigned)f->sport == r->lport) == f->sport_ne)
		return false;
	if (f->dport >= 0 && ((unsigned)f->dport == r->rport) == f->dport_ne)
		return false;
	if (f->have_dst && !in_prefix(r->ra, f->dst, f->dst_len))
		return false;
	if (f->have_src && !in_prefix(r->la, f->src, f->src_len))
		return false;
	return true;
}

/* iproute2's print_ms_timer */
static const char *ms_timer(unsigned timeout, char *buf, size_t len)
{
	unsigned secs = timeout / 1000, minutes = secs / 60, msecs = timeout % 1000;
	secs %= 60;
	size_t o = 0;
	buf[0] = 0;
	if (minutes) {
		msecs = 0;
		o += (size_t)snprintf(buf + o, len - o, "%umin", minutes);
		if (minutes > 9)
			secs = 0;
	}
	if (secs) {
		if (secs > 9)
			msecs = 0;
		o += (size_t)snprintf(buf + o, len - o, "%u%s", secs, msecs ? "." : "sec");
	}
	if (msecs)
		snprintf(buf + o, len - o, "%03ums", msecs);
	return buf;
}

static const char *bw(double v, bool numeric, char *buf, size_t len)
{
	if (numeric)
		snprintf(buf, len, "%.0f", v);
	else if (v > 1e9)
		snprintf(buf, len, "%.1fG", v / 1e9);
	else if (v > 1e6)
		snprintf(buf, len, "%.1fM", v / 1e6);
	else if (v > 1e3)
		snprintf(buf, len, "%.1fK", v / 1e3);
	else
		snprintf(buf, len, "%g", v);
	return buf;
}

/* ss -i: tcp_show_info's fields, in its order and format, for those ustack has */
static void ss_info(const struct ss_rec *r, bool numeric, char *o, size_t len)
{
	size_t n = 0;
	char b[64];
#define P(...) n += (size_t)snprintf(o + n, n < len ? len - n : 0, __VA_ARGS__)
	if (r->opts & TCPI_OPT_TIMESTAMPS)
		P(" ts");
	if (r->opts & TCPI_OPT_SACK)
		P(" sack");
	if (r->opts & TCPI_OPT_ECN)
		P(" ecn");
	if (r->opts & TCPI_OPT_ECN_SEEN)
		P(" ecnseen");
	if (r->opts & TCPI_OPT_SYN_DATA)
		P(" fastopen");
	if (r->cong[0])
		P(" %s", r->cong);
	if (r->opts & TCPI_OPT_WSCALE)
		P(" wscale:%u,%u", r->swscale, r->rwscale);
	if (r->rto)
		P(" rto:%g", r->rto / 1000.0);
	if (r->backoff)
		P(" backoff:%u", r->backoff);
	if (r->rtt)
		P(" rtt:%g/%g", r->rtt / 1000.0, r->rttvar / 1000.0);
	if (r->ato)
		P(" ato:%g", r->ato / 1000.0);
	if (r->mss)
		P(" mss:%u", r->mss);
	if (r->pmtu)
		P(" pmtu:%u", r->pmtu);
	if (r->rcvmss)
		P(" rcvmss:%u", r->rcvmss);
	if (r->advmss)
		P(" advmss:%u", r->advmss);
	if (r->cwnd)
		P(" cwnd:%u", r->cwnd);
	if (r->ssthresh && r->ssthresh < 0xffff)
		P(" ssthresh:%u", r->ssthresh);
	if (r->bytes_sent)
		P(" bytes_sent:%llu", r->bytes_sent);
	if (r->bytes_retrans)
		P(" bytes_retrans:%llu", r->bytes_retrans);
	if (r->bytes_acked)
		P(" bytes_acked:%llu", r->bytes_acked);
	if (r->bytes_received)
		P(" bytes_received:%llu", r->bytes_received);
	if (r->segs_out)
		P(" segs_out:%u", r->segs_out);
	if (r->segs_in)
		P(" segs_in:%u", r->segs_in);
	if (r->data_segs_out)
		P(" data_segs_out:%u", r->data_segs_out);
	if (r->data_segs_in)
		P(" data_segs_in:%u", r->data_segs_in);
	if (r->rtt && r->cwnd && r->mss)
		P(" send %sbps", bw((double)r->cwnd * r->mss * 8e6 / r->rtt, numeric, b, sizeof(b)));
	if (r->lastsnd)
		P(" lastsnd:%u", r->lastsnd);
	if (r->lastrcv)
		P(" lastrcv:%u", r->lastrcv);
	if (r->lastack)
		P(" lastack:%u", r->lastack);
	if (r->delivered)
		P(" delivered:%u", r->delivered);
	if (r->busy) {
		P(" busy:%llums", r->busy / 1000);
		if (r->rwnd_limited)
			P(" rwnd_limited:%llums(%.1f%%)", r->rwnd_limited / 1000, 100.0 * r->rwnd_limited / r->busy);
		if (r->sndbuf_limited)
			P(" sndbuf_limited:%llums(%.1f%%)", r->sndbuf_limited / 1000, 100.0 * r->sndbuf_limited / r->busy);
	}
	if (r->unacked)
		P(" unacked:%u", r->unacked);
	if (r->retr || r->retr_total)
		P(" retrans:%u/%u", r->retr, r->retr_total);
	if (r->lost)
		P(" lost:%u", r->lost);
	if (r->sacked && r->state != TCP_LISTEN)
		P(" sacked:%u", r->sacked);
	if (r->dsack_dups)
		P(" dsack_dups:%u", r->dsack_dups);
	if (r->reordering != 3 && r->state != TCP_LISTEN)
		P(" reordering:%u", r->reordering);
	if (r->reord_seen)
		P(" reord_seen:%u", r->reord_seen);
	if (r->rcv_rtt)
		P(" rcv_rtt:%g", r->rcv_rtt / 1000.0);
	if (r->rcv_space)
		P(" rcv_space:%u", r->rcv_space);
	if (r->rcv_ssthresh)
		P(" rcv_ssthresh:%u", r->rcv_ssthresh);
	if (r->notsent)
		P(" notsent:%u", r->notsent);
	if (r->minrtt)
		P(" minrtt:%g", r->minrtt / 1000.0);
	if (r->rcv_ooopack)
		P(" rcv_ooopack:%u", r->rcv_ooopack);
	if (r->snd_wnd)
		P(" snd_wnd:%u", r->snd_wnd);
#undef P
}

static const char *const timer_names[] = { "off", "on", "keepalive", "timewait", "persist", "unknown" };

static void port_str(unsigned port, bool numeric, bool any, char *buf, size_t len)
{
	struct servent *se = NULL;
	if (any)
		snprintf(buf, len, "*");
	else if (!numeric && (se = getservbyport(htons((uint16_t)port), "tcp")))
		snprintf(buf, len, "%s", se->s_name);
	else
		snprintf(buf, len, "%u", port);
}

static void ss_json(const struct ss_rec *r, bool first)
{
	char la[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &r->la, la, sizeof(la));
	inet_ntop(AF_INET, &r->ra, ra, sizeof(ra));
	printf("%s\n  {\"state\":\"%s\",\"recv_q\":%u,\"send_q\":%u,\"local_address\":\"%s\",\"local_port\":%u,"
	       "\"peer_address\":\"%s\",\"peer_port\":%u,\"fd\":%d,\"request\":%s",
	       first ? "" : ",", ustack_diag_state_name(r->state), r->rq, r->sq, la, r->lport, ra, r->rport, r->fd,
	       r->req ? "true" : "false");
	if (r->state == TCP_LISTEN)
		printf(",\"syn_queue\":%u", r->synq);
	printf(",\"timer\":{\"name\":\"%s\",\"expires_ms\":%u,\"retrans\":%u}", timer_names[r->timer < 5 ? r->timer : 5],
	       r->exp, r->retrans);
	printf(",\"skmem\":{\"r\":%u,\"rb\":%u,\"t\":%u,\"tb\":%u,\"f\":%u,\"w\":%u,\"o\":%u,\"bl\":%u,\"d\":%u}",
	       r->skmem[0], r->skmem[1], r->skmem[2], r->skmem[3], r->skmem[4], r->skmem[5], r->skmem[6], r->skmem[7],
	       r->skmem[8]);
	if (r->has_info)
		printf(",\"info\":{\"cong\":\"%s\",\"options\":%u,\"snd_wscale\":%u,\"rcv_wscale\":%u,\"rto_us\":%u,"
		       "\"rtt_us\":%u,\"rttvar_us\":%u,\"mss\":%u,\"pmtu\":%u,\"rcv_mss\":%u,\"advmss\":%u,\"cwnd\":%u,"
		       "\"ssthresh\":%u,\"bytes_sent\":%llu,\"bytes_acked\":%llu,\"bytes_received\":%llu,\"segs_out\":%u,"
		       "\"segs_in\":%u,\"total_retrans\":%u,\"min_rtt_us\":%u,\"snd_wnd\":%u,\"rcv_wnd\":%u}",
		       r->cong, r->opts, r->swscale, r->rwscale, r->rto, r->rtt, r->rttvar, r->mss, r->pmtu, r->rcvmss,
		       r->advmss, r->cwnd, r->ssthresh, r->bytes_sent, r->bytes_acked, r->bytes_received, r->segs_out,
		       r->segs_in, r->retr_total, r->minrtt, r->snd_wnd, r->rcv_wnd);
	printf("}");
}

/* the filter expression after the options: state S, exclude S, sport/dport OP :P, dst/src A */
static int ss_parse_filter(int argc, char **argv, struct ss_filter *f, bool have_states)
{
	unsigned states = 0;
	bool excl_only = true;
	unsigned exclude = 0;
	for (int i = optind; i < argc; i++) {
		const char *w = argv[i];
		if (!strcmp(w, "and") || !strcmp(w, "(") || !strcmp(w, ")"))
			continue;
		if (!strcmp(w, "state") || !strcmp(w, "exclude") || !strcmp(w, "excl")) {
			unsigned bits;
			if (i + 1 >= argc) {
				cli_error(w, "needs a state name");
				return -1;
			}
			if (scan_state(argv[++i], &bits) < 0) {
				cli_error(w, "wrong state name '%s'", argv[i]);
				return -1;
			}
			if (w[0] == 's') {
				states |= bits;
				excl_only = false;
			} else {
				exclude |= bits;
			}
			continue;
		}
		if (!strcmp(w, "sport") || !strcmp(w, "dport")) {
			bool ne = false;
			if (i + 1 < argc && (!strcmp(argv[i + 1], "=") || !strcmp(argv[i + 1], "==") || !strcmp(argv[i + 1], "eq")))
				i++;
			else if (i + 1 < argc && (!strcmp(argv[i + 1], "!=") || !strcmp(argv[i + 1], "neq") ||
						  !strcmp(argv[i + 1], "ne"))) {
				i++;
				ne = true;
			}
			if (i + 1 >= argc) {
				cli_error(w, "needs a port (:P)");
				return -1;
			}
			const char *p = argv[++i];
			uint16_t port;
			if (*p == ':')
				p++;
			if (cli_port(w, p, &port) < 0)
				return -1;
			if (w[0] == 's') {
				f->sport = port;
				f->sport_ne = ne;
			} else {
				f->dport = port;
				f->dport_ne = ne;
			}
			continue;
		}
		if (!strcmp(w, "dst") || !strcmp(w, "src")) {
			if (i + 1 >= argc) {
				cli_error(w, "needs an address (A or A/N)");
				return -1;
			}
			struct in_addr a;
			unsigned len;
			if (cli_prefix(w, argv[++i], &a, &len) < 0)
				return -1;
			if (w[0] == 'd') {
				f->have_dst = true;
				f->dst = a;
				f->dst_len = len;
			} else {
				f->have_src = true;
				f->src = a;
				f->src_len = len;
			}
			continue;
		}
		cli_error(NULL, "cannot parse filter at '%s' (state S, exclude S, sport = :P, dport = :P, dst A, src A)", w);
		return -1;
	}
	if (!excl_only)
		f->states = states;
	else if (!have_states && exclude)
		f->states = SS_ALL;
	f->states &= ~exclude;
	return 0;
}

/*
 * ss -s: iproute2's print_summary over the instance's sockstat, to the byte (its tab after
 * each transport's name, its padded columns).  ustack has TCP over IPv4 only: RAW, UDP,
 * FRAG and IPv6 are zero.
 */
static int ss_summary(const char *name)
{
	char why[256], line[256];
	FILE *f = ctl_request(name, "sockstat", 10, why, sizeof(why));
	if (!f)
		return request_error(name, why);
	unsigned used = 0, inuse = 0, orphan = 0, tw = 0, alloc = 0, estab = 0, got = 0;
	while (fgets(line, sizeof(line), f)) {
		got += sscanf(line, "sockets: used %u", &used) == 1;
		got += sscanf(line, "TCP: inuse %u orphan %u tw %u alloc %u", &inuse, &orphan, &tw, &alloc) == 4;
		got += sscanf(line, "CurrEstab %u", &estab) == 1;
	}
	fclose(f);
	if (got != 3) {
		cli_error("--name", "%s: %s", name, strerror(EPROTO));
		return 1;
	}
	printf("Total: %u\n", used);
	printf("TCP:   %u (estab %u, closed %d, orphaned %u, timewait %u)\n", alloc + tw, estab,
	       (int)alloc - ((int)inuse - (int)tw), orphan, tw);
	printf("\n");
	printf("Transport Total     IP        IPv6\n");
	printf("RAW\t  %-9d %-9d %-9d\n", 0, 0, 0);
	printf("UDP\t  %-9d %-9d %-9d\n", 0, 0, 0);
	printf("TCP\t  %-9u %-9u %-9d\n", inuse, inuse, 0);
	printf("INET\t  %-9u %-9u %-9d\n", inuse, inuse, 0);
	printf("FRAG\t  %-9d %-9d %-9d\n", 0, 0, 0);
	printf("\n");
	return 0;
}

int cmd_ss(int argc, char **argv)
{
	enum { OPT_JSON = 2000 };
	static const struct option longopts[] = {
		{ "tcp", no_argument, 0, 't' },	    { "all", no_argument, 0, 'a' },	  { "listening", no_argument, 0, 'l' },
		{ "numeric", no_argument, 0, 'n' }, { "info", no_argument, 0, 'i' },	  { "options", no_argument, 0, 'o' },
		{ "memory", no_argument, 0, 'm' },  { "extended", no_argument, 0, 'e' }, { "no-header", no_argument, 0, 'H' },
		{ "summary", no_argument, 0, 's' },
		{ "json", no_argument, 0, OPT_JSON }, { "name", required_argument, 0, OPT_NAME },
		{ "help", no_argument, 0, 'h' },    { 0, 0, 0, 0 } };
	struct ss_opts s = { .f = { .sport = -1, .dport = -1 } };
	int c;
	optind = 1;
	/* "+": the filter's words (state, sport ...) are operands, in order */
	while ((c = cli_getopt(argc, argv, "+talnioemHs4h", longopts)) != -1) {
		switch (c) {
		case 't': case '4': break; /* ustack has TCP over IPv4 only */
		case 'a': s.all = true; break;
		case 'l': s.listening = true; break;
		case 'n': s.numeric = true; break;
		case 'i': s.info = true; break;
		case 'o': s.options = true; break;
		case 'm': s.memory = true; break;
		case 'e': s.extended = true; break;
		case 'H': s.no_header = true; break;
		case 's': s.summary = true; break;
		case OPT_JSON: s.json = true; break;
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			s.name = optarg;
			break;
		case 'h':
			printf("usage: ustack ss [--name NAME] [-t] [-a | -l] [-n] [-i] [-o] [-m] [-e] [-H] [--json] [FILTER]\n\n"
			       "The sockets of a running ustack instance, like ss(8): one snapshot, taken under\n"
			       "the stack's lock once.  Listeners show the accept queue (Recv-Q) and backlog\n"
			       "(Send-Q); request sockets show as SYN-RECV.\n\n"
			       "  -a, -l            all sockets / listening ones (default: connected, without\n"
			       "                    SYN-RECV and TIME-WAIT, as ss)\n"
			       "  -n                numeric ports\n"
			       "  -i                TCP_INFO, in ss's format (ts sack cubic wscale:a,b rto: rtt: ...)\n"
			       "  -o                timers: timer:(on,200ms,0), keepalive, timewait, persist\n"
			       "  -m                socket memory: skmem:(r,rb,t,tb,f,w,o,bl,d)\n"
			       "  -e                the descriptor and shutdown state (ustack has no inodes)\n"
			       "  -H, --json        no header / JSON for scripts\n"
			       "  -s, --summary     ss -s's summary (from the instance's sockstat)\n"
			       "  --name NAME       the instance (default: the one running in this netns)\n\n"
			       "FILTER: state S | exclude S (S: all, connected, synchronized, bucket, big,\n"
			       "established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed,\n"
			       "close-wait, last-ack, listening, closing), sport = :P, dport = :P, dst A[/N], src A[/N]\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	s.f.states = s.all ? SS_ALL : s.listening ? (1u << TCP_LISTEN) | (1u << TCP_CLOSE) : SS_CONN;
	if (ss_parse_filter(argc, argv, &s.f, s.all || s.listening) < 0)
		return CLI_USAGE;
	char name[80];
	int rc = pick_instance(s.name, name, sizeof(name), false);
	if (rc)
		return rc;
	if (s.summary)
		return ss_summary(name);
	char why[256];
	FILE *f = ctl_request(name, "ss", 10, why, sizeof(why));
	if (!f)
		return request_error(name, why);
	size_t cap = 64, n = 0;
	struct ss_rec *v = malloc(cap * sizeof(*v));
	char line[4096];
	while (v && fgets(line, sizeof(line), f)) {
		if (n == cap) {
			struct ss_rec *nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		if (parse_rec(line, &v[n]) == 0 && ss_match(&s.f, &v[n]))
			n++;
	}
	fclose(f);
	if (!v) {
		cli_error(NULL, "%s", strerror(ENOMEM));
		return 1;
	}
	if (s.json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			ss_json(&v[i], i == 0);
		printf("%s]\n", n ? "\n" : "");
		free(v);
		return 0;
	}
	/* columns as wide as their widest entry, addresses right-aligned up to the ':' */
	bool show_state = (s.f.states & (s.f.states - 1)) != 0; /* ss hides it for a single state */
	int wl = (int)strlen("Local Address"), wlp = 4, wp = (int)strlen("Peer Address"), wpp = 4, wst = 5;
	char (*ports)[2][32] = calloc(n ? n : 1, sizeof(*ports));
	if (!ports) {
		free(v);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &v[i].la, a, sizeof(a));
		wl = (int)strlen(a) > wl ? (int)strlen(a) : wl;
		inet_ntop(AF_INET, &v[i].ra, a, sizeof(a));
		wp = (int)strlen(a) > wp ? (int)strlen(a) : wp;
		bool any = v[i].state == TCP_LISTEN;
		port_str(v[i].lport, s.numeric, false, ports[i][0], sizeof(ports[i][0]));
		port_str(v[i].rport, s.numeric, any, ports[i][1], sizeof(ports[i][1]));
		wlp = (int)strlen(ports[i][0]) > wlp ? (int)strlen(ports[i][0]) : wlp;
		wpp = (int)strlen(ports[i][1]) > wpp ? (int)strlen(ports[i][1]) : wpp;
		int sl = (int)strlen(ustack_diag_state_name(v[i].state));
		wst = sl > wst ? sl : wst;
	}
	if (!s.no_header) {
		if (show_state)
			printf("%-*s ", wst, "State");
		printf("%-6s %-6s %*s:%-*s %*s:%-*s Process\n", "Recv-Q", "Send-Q", wl, "Local Address", wlp, "Port", wp,
		       "Peer Address", wpp, "Port");
	}
	for (size_t i = 0; i < n; i++) {
		const struct ss_rec *r = &v[i];
		char la[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN], t[64], more[2048];
		inet_ntop(AF_INET, &r->la, la, sizeof(la));
		inet_ntop(AF_INET, &r->ra, ra, sizeof(ra));
		if (show_state)
			printf("%-*s ", wst, ustack_diag_state_name(r->state));
		printf("%-6u %-6u %*s:%-*s %*s:%-*s", r->rq, r->sq, wl, la, wlp, ports[i][0], wp, ra, wpp, ports[i][1]);
		if (s.options && r->timer)
			printf(" timer:(%s,%s,%u)", timer_names[r->timer < 5 ? r->timer : 5], ms_timer(r->exp, t, sizeof(t)),
			       r->retrans);
		if (s.extended) {
			if (r->fd >= 0)
				printf(" fd:%d", r->fd);
			printf(" %c-%c", r->shut & 1 ? '-' : '<', r->shut & 2 ? '-' : '>');
		}
		if ((s.memory || s.info) && !r->req && r->state != TCP_TIME_WAIT) {
			printf("\n\t");
			if (s.memory)
				printf(" skmem:(r%u,rb%u,t%u,tb%u,f%u,w%u,o%u,bl%u,d%u)", r->skmem[0], r->skmem[1], r->skmem[2],
				       r->skmem[3], r->skmem[4], r->skmem[5], r->skmem[6], r->skmem[7], r->skmem[8]);
			if (s.info && r->has_info) {
				ss_info(r, s.numeric, more, sizeof(more));
				printf("%s", more);
			}
		}
		printf("\n");
	}
	free(ports);
	free(v);
	return 0;
}

/* ---- ustack nstat ------------------------------------------------------------------------- */

struct counter {
	char name[64];
	unsigned long long val;
};

static int read_counters(FILE *f, struct counter **out)
{
	size_t cap = 256, n = 0;
	struct counter *v = malloc(cap * sizeof(*v));
	char line[256];
	while (v && fgets(line, sizeof(line), f)) {
		if (n == cap) {
			struct counter *nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		if (sscanf(line, "%63s %llu", v[n].name, &v[n].val) == 2 && line[0] != '#')
			n++;
	}
	*out = v;
	return v ? (int)n : -1;
}

int cmd_nstat(int argc, char **argv)
{
	enum { OPT_JSON = 2000 };
	static const struct option longopts[] = { { "ignore", no_argument, 0, 'a' },	  { "zeros", no_argument, 0, 'z' },
						  { "reset", no_argument, 0, 'r' },	  { "nooutput", no_argument, 0, 'n' },
						  { "noupdate", no_argument, 0, 's' },	  { "json", no_argument, 0, OPT_JSON },
						  { "name", required_argument, 0, OPT_NAME }, { "help", no_argument, 0, 'h' },
						  { 0, 0, 0, 0 } };
	bool absolute = false, zeros = false, reset = false, nooutput = false, noupdate = false, json = false;
	const char *given = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "azrnsh", longopts)) != -1) {
		switch (c) {
		case 'a': absolute = true; break;
		case 'z': zeros = true; break;
		case 'r': reset = true; break;
		case 'n': nooutput = true; break;
		case 's': noupdate = true; break;
		case OPT_JSON: json = true; break;
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			given = optarg;
			break;
		case 'h':
			printf("usage: ustack nstat [--name NAME] [-a] [-z] [-r] [-n] [-s] [--json] [PATTERN...]\n\n"
			       "A running instance's counters, like nstat(8): what changed since the last call\n"
			       "(a history file per user and instance, NAME.nstat.uUID beside the control\n"
			       "socket), names as nstat prints them; PATTERNs are shell globs (Tcp*).\n\n"
			       "  -a, --ignore      absolute values, not increments\n"
			       "  -z, --zeros       zeros too\n"
			       "  -r, --reset       forget the history (increments from zero)\n"
			       "  -n, --nooutput    print nothing, only update the history\n"
			       "  -s, --noupdate    do not update the history\n"
			       "  --json            {\"kernel\":{NAME:VALUE,...}}\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	char name[80];
	int rc = pick_instance(given, name, sizeof(name), false);
	if (rc)
		return rc;
	char why[256];
	FILE *f = ctl_request(name, "counters", 10, why, sizeof(why));
	if (!f)
		return request_error(name, why);
	struct counter *cur;
	int n = read_counters(f, &cur);
	fclose(f);
	if (n < 0)
		return 1;
	/* the history: "#ustack NAME pid=P" (a restarted instance starts afresh), then "NAME VALUE" */
	char dir[200], hist[300];
	int pid = 0;
	static struct instance inst[MAX_INSTANCES];
	int ni = list_instances(inst, MAX_INSTANCES);
	for (int i = 0; i < ni; i++)
		if (!strcmp(inst[i].name, name))
			pid = inst[i].pid;
	ustack_ctl_dir(dir, sizeof(dir));
	snprintf(hist, sizeof(hist), "%s/%s.nstat.u%u", dir, name, (unsigned)getuid());
	struct counter *old = NULL;
	int nold = 0;
	FILE *h = reset ? NULL : fopen(hist, "r");
	if (h) {
		char first[128];
		int hpid = -1;
		if (fgets(first, sizeof(first), h) && sscanf(first, "#ustack %*s pid=%d", &hpid) == 1 && hpid == pid)
			nold = read_counters(h, &old);
		fclose(h);
		if (nold < 0)
			nold = 0;
	}
	if (!nooutput) {
		if (json)
			printf("{\"kernel\":{");
		else
			printf("#kernel\n");
		int shown = 0;
		for (int i = 0; i < n; i++) {
			unsigned long long v = cur[i].val;
			if (!absolute) {
				for (int j = 0; j < nold; j++) {
					if (!strcmp(old[j].name, cur[i].name)) {
						v = v >= old[j].val ? v - old[j].val : v;
						break;
					}
				}
			}
			if (!v && !zeros)
				continue;
			bool match = optind >= argc;
			for (int k = optind; k < argc && !match; k++)
				match = fnmatch(argv[k], cur[i].name, 0) == 0;
			if (!match)
				continue;
			if (json)
				printf("%s\"%s\":%llu", shown++ ? "," : "", cur[i].name, v);
			else
				printf("%-32s%-16llu%6.1f\n", cur[i].name, v, 0.0);
		}
		if (json)
			printf("}}\n");
	}
	rc = 0;
	if (!noupdate) {
		char tmp[320];
		snprintf(tmp, sizeof(tmp), "%s.%d", hist, (int)getpid());
		FILE *w = fopen(tmp, "w");
		if (w) {
			fprintf(w, "#ustack %s pid=%d\n", name, pid);
			for (int i = 0; i < n; i++)
				fprintf(w, "%s %llu\n", cur[i].name, cur[i].val);
			if (fclose(w) == 0 && rename(tmp, hist) == 0)
				w = NULL;
			else
				unlink(tmp);
		}
		if (!w)
			(void)0;
		else {
			cli_error(NULL, "cannot write the history %s: %s", hist, strerror(errno));
			rc = 1;
		}
	}
	free(cur);
	free(old);
	return rc;
}

/* ---- ustack trace ------------------------------------------------------------------------- */

static volatile sig_atomic_t trace_stop;
static void on_trace_signal(int sig)
{
	(void)sig;
	trace_stop = 1;
}

#define MAX_EVENTS 16

/* A streaming request (trace, pcap) to the instance, which SIGINT/SIGTERM end: the stream,
 * or NULL with *rc the command's exit status (the message printed). */
static FILE *stream_open(const char *given, const char *req, char *name, size_t size, int *rc)
{
	*rc = pick_instance(given, name, size, false);
	if (*rc)
		return NULL;
	struct sigaction sa = { .sa_handler = on_trace_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char why[256];
	FILE *f = ctl_request(name, req, 0, why, sizeof(why));
	if (!f)
		*rc = request_error(name, why);
	return f;
}

/* A field "KEY=VALUE" of a trace line's body, copied into out (empty if absent). */
static void trace_field(const char *body, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	out[0] = 0;
	for (const char *p = body; (p = strstr(p, key)) != NULL; p += kl)
		if ((p == body || p[-1] == ' ') && p[kl] == '=') {
			p += kl + 1;
			size_t n = strcspn(p, " \n");
			snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
			return;
		}
}

/*
 * `ustack trace --ladder`: the seed's ladder diagram drawn from one instance's trace lines,
 * as they stream — the instance on the left, whoever it talks to on the right.  Each line
 * is one the plain trace prints, so the diagram shows nothing the trace does not:
 * net_dev_xmit is an arrow to the right, netif_receive_skb one from it (its tcpdump-like
 * summary on the arrow), state changes and protocol steps are notes on the left column,
 * drops say why.  Times are ms from the first event drawn.
 */
static void trace_ladder_line(struct ladder *l, const char *line, uint64_t *t0, bool *started)
{
	/* "COMM-PID [CPU] SECS.USECS: EVENT: BODY" */
	const char *p = strstr(line, "] ");
	unsigned long long sec, usec;
	int n = 0;
	if (!p || sscanf(p + 2, "%llu.%6llu: %n", &sec, &usec, &n) != 2 || !n)
		return;
	const char *ev = p + 2 + n, *colon = strstr(ev, ": ");
	if (!colon)
		return;
	char name[64], body[1024], a[32], b[32], text[256];
	snprintf(name, sizeof(name), "%.*s", (int)(colon - ev), ev);
	snprintf(body, sizeof(body), "%s", colon + 2);
	body[strcspn(body, "\n")] = 0;
	if (ladder_is_measurement(name))
		return;
	uint64_t t = sec * 1000000ull + usec;
	if (!*started) {
		*t0 = t;
		*started = true;
	}
	t -= *t0;
	if (!strcmp(name, "net_dev_xmit") || !strcmp(name, "netif_receive_skb")) {
		/* "ifindex=N len=N SUMMARY" */
		const char *sum = strstr(body, " len=");
		sum = sum ? strchr(sum + 1, ' ') : NULL;
		if (sum)
			ladder_frame(l, strcmp(name, "net_dev_xmit") ? 1 : 0, t, sum + 1);
		return;
	}
	if (!strcmp(name, "kfree_skb")) {
		const char *r = strstr(body, "reason: ");
		snprintf(text, sizeof(text), "drop: %.240s", r ? r + 8 : body);
	} else if (!strcmp(name, "printk")) {
		snprintf(text, sizeof(text), "%.250s", body);
	} else {
		/* a state change: "NAME OLD -> NEW", TCP_ dropped as `ustack demo` prints them */
		trace_field(body, "oldstate", a, sizeof(a));
		trace_field(body, "newstate", b, sizeof(b));
		if (*a && *b)
			snprintf(text, sizeof(text), "%.63s %.31s -> %.31s", name, a + (strncmp(a, "TCP_", 4) ? 0 : 4),
				 b + (strncmp(b, "TCP_", 4) ? 0 : 4));
		else
			snprintf(text, sizeof(text), "%s", name);
	}
	ladder_note(l, 0, t, text);
}

int cmd_trace(int argc, char **argv)
{
	enum { OPT_LADDER = OPT_NAME + 1 };
	static const struct option longopts[] = { { "event", required_argument, 0, 'e' },
						  { "name", required_argument, 0, OPT_NAME },
						  { "ladder", no_argument, 0, OPT_LADDER },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *given = NULL, *events[MAX_EVENTS];
	int nev = 0, c;
	bool ladder = false;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "e:h", longopts)) != -1) {
		switch (c) {
		case 'e': {
			if (nev == MAX_EVENTS) {
				cli_error(cli_opt(), "more than %d events", MAX_EVENTS);
				return CLI_USAGE;
			}
			const char *colon = strrchr(optarg, ':'); /* sock:inet_sock_set_state */
			events[nev] = colon ? colon + 1 : optarg;
			if (!*events[nev]) {
				cli_error(cli_opt(), "'%s' is not an event name", optarg);
				return CLI_USAGE;
			}
			nev++;
			break;
		}
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			given = optarg;
			break;
		case OPT_LADDER:
			ladder = true;
			break;
		case 'h':
			printf("usage: ustack trace [--name NAME] [-e EVENT]... [--ladder]\n\n"
			       "Streams a running instance's events until interrupted, one line each in\n"
			       "trace-cmd report's layout: inet_sock_set_state for state changes (the kernel's\n"
			       "fields), net_dev_xmit / netif_receive_skb for frames, kfree_skb with the drop\n"
			       "reason, and ustack's protocol steps by their Linux function names.\n\n"
			       "  -e, --event EVENT only these events (e.g. -e sock:inet_sock_set_state)\n"
			       "      --ladder     draw the events as the seed's ladder diagram: the instance\n"
			       "                   on the left, its peers on the right, frames as arrows\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (cli_no_operands(argc, argv) < 0)
		return CLI_USAGE;
	char name[80];
	int rc;
	FILE *f = stream_open(given, "trace", name, sizeof(name), &rc);
	if (!f)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	fprintf(stderr, "# tracing %s (interrupt to stop)\n", name); /* subscribed: events from now on */
	struct ladder lad;
	char label[96];
	uint64_t t0 = 0;
	bool started = false;
	if (ladder) {
		snprintf(label, sizeof(label), "ustack %s", name);
		ladder_open(&lad, stdout, label, "peers");
		ladder_header(&lad);
	}
	char line[2048];
	while (!trace_stop && fgets(line, sizeof(line), f)) {
		if (nev) {
			/* "COMM-PID [CPU] TIME: EVENT: ..." */
			const char *p = strstr(line, "]");
			p = p ? strstr(p, ": ") : NULL;
			bool match = false;
			for (int i = 0; p && i < nev && !match; i++) {
				size_t l = strlen(events[i]);
				match = !strncmp(p + 2, events[i], l) && p[2 + l] == ':';
			}
			if (!match && line[0] != '#')
				continue;
		}
		if (ladder) {
			if (line[0] != '#')
				trace_ladder_line(&lad, line, &t0, &started);
			if (ferror(stdout))
				break;
		} else if (fputs(line, stdout) == EOF) {
			break;
		}
	}
	fclose(f);
	return 0;
}

/* ---- ustack pcap -------------------------------------------------------------------------- */

/*
 * `ustack pcap FILE`: a running instance's frames into a pcap file until interrupted, as
 * tcpdump -w does for the kernel's: the instance's own capture (the same frames and wall-clock
 * timestamps as --pcap), streamed record by record and flushed after each, so `-` piped to
 * tshark or tcpdump -r - reads it live.  A reader slower than the traffic loses frames in the
 * instance's pipe, never slowing the stack.
 */
int cmd_pcap(int argc, char **argv)
{
	static const struct option longopts[] = { { "interface", required_argument, 0, 'i' },
						  { "name", required_argument, 0, OPT_NAME },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *given = NULL;
	int c;
	long ifindex = 1;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "i:h", longopts)) != -1) {
		switch (c) {
		case 'i': {
			char *end;
			ifindex = strtol(optarg, &end, 10);
			if (*end || end == optarg || ifindex < 1 || ifindex > 64) {
				cli_error(cli_opt(), "'%s' is not an interface index (1, 2, ...)", optarg);
				return CLI_USAGE;
			}
			break;
		}
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			given = optarg;
			break;
		case 'h':
			printf("usage: ustack pcap [--name NAME] [-i IFINDEX] FILE\n\n"
			       "Captures a running instance's frames into FILE (pcap; '-': standard output)\n"
			       "until interrupted, as tcpdump -w: the frames its --pcap would record, with\n"
			       "wall-clock timestamps, sent frames as they go on the wire.\n\n"
			       "  -i, --interface N the instance's interface (default 1, its first)\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (optind + 1 != argc) {
		cli_error(NULL, optind == argc ? "a FILE to write is required ('-': standard output)"
					       : "unexpected argument '%s'", argv[optind + (optind < argc)]);
		return CLI_USAGE;
	}
	const char *path = argv[optind];
	char name[80], req[32], line[64];
	snprintf(req, sizeof(req), "pcap %ld", ifindex);
	int rc;
	FILE *f = stream_open(given, req, name, sizeof(name), &rc);
	if (!f)
		return rc;
	int linktype;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "linktype %d", &linktype) != 1) {
		fclose(f);
		cli_error("--name", "%s: %s", name, strerror(EPROTO));
		return 1;
	}
	FILE *out = strcmp(path, "-") ? fopen(path, "wb") : stdout;
	if (!out) {
		cli_error(NULL, "%s: %s", path, strerror(errno));
		fclose(f);
		return 1;
	}
	/* the file header (pcap 2.4, microseconds, in this host's byte order as its magic says) */
	uint32_t hdr[6] = { 0xa1b2c3d4u, 2u | (4u << 16), 0, 0, 65535, (uint32_t)linktype };
	fwrite(hdr, sizeof(hdr), 1, out);
	fflush(out);
	fprintf(stderr, "# capturing on %s, interface %ld (interrupt to stop)\n", name, ifindex);
	unsigned long packets = 0;
	uint8_t frame[65536];
	uint32_t rec[4];
	/* record by record: fread returns as soon as one is whole, or short on a signal */
	while (!trace_stop && fread(rec, sizeof(rec), 1, f) == 1) {
		if (rec[2] > sizeof(frame) || fread(frame, 1, rec[2], f) != rec[2])
			break;
		if (fwrite(rec, sizeof(rec), 1, out) != 1 || fwrite(frame, 1, rec[2], out) != rec[2] || fflush(out))
			break;
		packets++;
	}
	fclose(f);
	int err = out != stdout ? fclose(out) : fflush(out);
	fprintf(stderr, "%lu packets captured\n", packets);
	if (err) {
		cli_error(NULL, "%s: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- ustack tcp_metrics ------------------------------------------------------------------- */

/*
 * `ip tcp_metrics` for an instance: show [ADDRESS], flush [all|ADDRESS], delete ADDRESS
 * ("address"/"addr" may precede ADDRESS, as ip takes it).  What ustack remembers per
 * destination is Fast Open's: the server's cookie and MSS, and SYN-data losses.
 */
int cmd_tcp_metrics(int argc, char **argv)
{
	static const struct option longopts[] = { { "name", required_argument, 0, OPT_NAME },
						  { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *given = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			given = optarg;
			break;
		case 'h':
			printf("usage: ustack tcp_metrics [--name NAME] [show [ADDRESS] | flush [all | ADDRESS] |\n"
			       "                          delete ADDRESS]\n\n"
			       "What a running instance remembers of each server, as ip tcp_metrics shows\n"
			       "the kernel's: Fast Open's cookie (fo_cookie), the MSS of the server's last\n"
			       "SYN-ACK (fo_mss) and SYNs with data that went unanswered (fo_syn_drops).\n"
			       "flush forgets them (all, or one destination's); delete one that must exist.\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	const char *verb = optind < argc ? argv[optind++] : "show", *addr = NULL;
	if (!strcmp(verb, "list") || !strcmp(verb, "lst"))
		verb = "show";
	if (strcmp(verb, "show") && strcmp(verb, "flush") && strcmp(verb, "delete")) {
		cli_error(NULL, "command \"%s\" is unknown (show, flush, delete)", verb);
		return CLI_USAGE;
	}
	if (optind < argc && (!strcmp(argv[optind], "address") || !strcmp(argv[optind], "addr")))
		optind++;
	if (optind < argc)
		addr = argv[optind++];
	if (optind < argc) {
		cli_error(NULL, "%s: unexpected argument '%s'", verb, argv[optind]);
		return CLI_USAGE;
	}
	struct in_addr a;
	bool all = !addr || (!strcmp(addr, "all") && strcmp(verb, "delete"));
	if (!strcmp(verb, "delete") && !addr) {
		cli_error(NULL, "delete: an address is required");
		return CLI_USAGE;
	}
	if (!all && inet_pton(AF_INET, addr, &a) != 1) {
		cli_error(NULL, "%s: '%s' is not an IPv4 address", verb, addr);
		return CLI_USAGE;
	}
	char name[80];
	int rc = pick_instance(given, name, sizeof(name), false);
	if (rc)
		return rc;
	char req[128], why[256], line[512];
	if (!strcmp(verb, "show"))
		snprintf(req, sizeof(req), "tcp_metrics");
	else
		snprintf(req, sizeof(req), "tcp_metrics %s %s", verb, all ? "all" : addr);
	FILE *f = ctl_request(name, req, 10, why, sizeof(why));
	if (!f) {
		if (errno == ESRCH) { /* delete of an entry there is not: ip's netlink answer */
			cli_error(NULL, "delete %s: No such process", addr);
			return 2;
		}
		return request_error(name, why);
	}
	size_t len = all ? 0 : strlen(addr);
	while (fgets(line, sizeof(line), f))
		if (strcmp(verb, "show") || all || (!strncmp(line, addr, len) && line[len] == ' '))
			fputs(line, stdout); /* show ADDRESS: that destination's line only */
	fclose(f);
	return 0;
}

/* ---- ustack sysctl ------------------------------------------------------------------------ */

/* sysctl(8)'s way of naming a key it could not find: its /proc/sys path */
static void sysctl_no_key(const char *key)
{
	char path[256];
	if (snprintf(path, sizeof(path), "/proc/sys/%s", key) >= (int)sizeof(path))
		path[sizeof(path) - 1] = 0; /* sysctl(8) prints what fits too */
	for (char *p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	cli_error(NULL, "cannot stat %s: %s", path, strerror(ENOENT));
}

/* one NAME or NAME=VALUE against a live instance; 0 or 1 (sysctl(8)'s status) */
static int sysctl_live_one(const char *inst, const char *arg, bool write, bool values_only, bool quiet)
{
	const char *eq = strchr(arg, '=');
	if (write && (!eq || eq == arg)) {
		cli_error(NULL, "\"%s\" must be of the form name=value", arg);
		return 1;
	}
	char req[600], key[256];
	snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
	if (eq)
		snprintf(req, sizeof(req), "sysctl -w %s", arg);
	else
		snprintf(req, sizeof(req), "sysctl %s", arg);
	char why[256], line[600];
	FILE *f = ctl_request(inst, req, 10, why, sizeof(why));
	if (!f) {
		int err = errno;
		if (!strcmp(why, "name"))
			sysctl_no_key(key);
		else if (!strcmp(why, "value"))
			cli_error(NULL, "setting key \"%s\": %s", key, strerror(err));
		else
			return request_error(inst, why);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (quiet && eq)
			continue;
		const char *v = strstr(line, " = ");
		fputs(values_only && v ? v + 3 : line, stdout);
	}
	fclose(f);
	return 0;
}

/*
 * sysctl -p FILE: procps's Preload.  Each line "name = value" (spaces around both trimmed) is
 * written as -w would; blank lines and '#' or ';' comments are skipped; a leading '-' is
 * taken off (procps 4.0.2, Debian 12's, still reports that line's failure); a line without
 * '=' is "FILE(N): invalid syntax, continuing...".  1 if anything failed, as sysctl(8).
 */
static int sysctl_preload(const char *inst, const char *file, bool quiet)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		cli_error(NULL, "cannot open \"%s\": %s", file, strerror(errno));
		return 1;
	}
	char line[1024];
	int rc = 0, n = 0;
	while (fgets(line, sizeof(line), f)) {
		n++;
		char *s = line + strspn(line, " \t");
		s[strcspn(s, "\r\n")] = 0;
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '-')
			s++;
		char *eq = strchr(s, '=');
		if (!eq) {
			cli_error(NULL, "%s(%d): invalid syntax, continuing...", file, n);
			rc = 1;
			continue;
		}
		char *name_end = eq, *val = eq + 1;
		while (name_end > s && (name_end[-1] == ' ' || name_end[-1] == '\t'))
			name_end--;
		*name_end = 0;
		val += strspn(val, " \t");
		size_t vl = strlen(val);
		while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
			val[--vl] = 0;
		char arg[1100];
		snprintf(arg, sizeof(arg), "%s=%s", s, val);
		rc |= sysctl_live_one(inst, arg, true, false, quiet);
	}
	fclose(f);
	return rc;
}

int cmd_sysctl(int argc, char **argv)
{
	static const struct option longopts[] = { { "all", no_argument, 0, 'a' },	{ "values", no_argument, 0, 'n' },
						  { "write", no_argument, 0, 'w' },	{ "quiet", no_argument, 0, 'q' },
						  { "load", no_argument, 0, 'p' },
						  { "name", required_argument, 0, OPT_NAME }, { "help", no_argument, 0, 'h' },
						  { 0, 0, 0, 0 } };
	int c;
	bool all = false, values = false, write = false, quiet = false, load = false;
	const char *given = NULL;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "anwqph", longopts)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case 'p': load = true; break;
		case 'n': values = true; break;
		case 'w': write = true; break;
		case 'q': quiet = true; break;
		case OPT_NAME:
			if (cli_instance_name(cli_opt(), optarg) < 0)
				return CLI_USAGE;
			given = optarg;
			break;
		case 'h':
			printf("usage: ustack sysctl [--name NAME] [-n] [-q] [-a | -w NAME=VALUE... | -p [FILE...] |\n"
			       "                     NAME[=VALUE]...]\n\n"
			       "Reads and writes a running instance's sysctls, like sysctl(8): NAME prints\n"
			       "\"NAME = VALUE\" (-n: the value), NAME=VALUE or -w NAME=VALUE sets it at once, -a\n"
			       "lists them all, -p sets those of FILEs (default /etc/sysctl.conf) as sysctl -p;\n"
			       "unknown names and bad values get sysctl(8)'s messages and exit 1.\n"
			       "The instance is --name's, or the one running in this network namespace; with\n"
			       "none, it lists ustack's defaults (Linux 6.18's) and cannot write.\n");
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (all && optind < argc) {
		cli_error("-a", "takes no NAME ('%s')", argv[optind]);
		return CLI_USAGE;
	}
	if (all && load) {
		cli_error("-p", "cannot be combined with -a");
		return CLI_USAGE;
	}
	char inst[80];
	int rc = pick_instance(given, inst, sizeof(inst), true);
	if (rc == 0 && load) { /* live: the files' settings, in order */
		if (optind == argc)
			return sysctl_preload(inst, "/etc/sysctl.conf", quiet);
		for (int i = optind; i < argc; i++)
			rc |= sysctl_preload(inst, argv[i], quiet);
		return rc;
	}
	if (rc == 0) { /* live */
		if (all || optind == argc) {
			char why[256], line[600];
			FILE *f = ctl_request(inst, "sysctl -a", 10, why, sizeof(why));
			if (!f)
				return request_error(inst, why);
			while (fgets(line, sizeof(line), f)) {
				const char *v = strstr(line, " = ");
				fputs(values && v ? v + 3 : line, stdout);
			}
			fclose(f);
			return 0;
		}
		for (int i = optind; i < argc; i++)
			rc |= sysctl_live_one(inst, argv[i], write, values, quiet);
		return rc;
	}
	if (given || rc != 1)
		return rc;
	if (load) {
		cli_error("-p", "no ustack instance is running here to load settings into (see ustack ls; --name NAME)");
		return 1;
	}
	/* no instance: the defaults, from a stack made for the purpose */
	for (int i = optind; i < argc; i++) {
		if (write || strchr(argv[i], '=')) {
			cli_error(NULL, "no ustack instance is running here to set '%s' on (see ustack ls; --name NAME)",
				  argv[i]);
			return 1;
		}
	}
	struct ustack_config cfg = { .clock = ustack_clock_monotonic() };
	struct ustack *st = ustack_create(&cfg);
	if (!st) {
		cli_error(NULL, "%s", strerror(errno));
		return 1;
	}
	char buf[256];
	rc = 0;
	if (optind == argc) {
		for (size_t i = 0; i < ustack_sysctl_count(); i++)
			if (ustack_sysctl_get(st, ustack_sysctl_name(i), buf, sizeof(buf)) == 0) {
				if (values)
					printf("%s\n", buf);
				else
					printf("%s = %s\n", ustack_sysctl_name(i), buf);
			}
	} else {
		for (int i = optind; i < argc; i++) {
			if (ustack_sysctl_get(st, argv[i], buf, sizeof(buf)) == 0) {
				if (values)
					printf("%s\n", buf);
				else
					printf("%s = %s\n", argv[i], buf);
			} else if (errno == ENOENT) {
				cli_error(NULL, "unknown sysctl '%s'", argv[i]);
				rc = CLI_USAGE;
			} else {
				cli_error(NULL, "%s: %s", argv[i], strerror(errno));
				rc = rc ? rc : 1;
			}
		}
	}
	ustack_destroy(st);
	return rc;
}
