/*
 * The control socket: how `ustack ss`, `nstat`, `sysctl` and `trace` look into a running
 * instance from another process, as ss(8) asks the kernel through a netlink socket.
 *
 * A Unix stream socket NAME.sock in ustack_ctl_dir() (0700), mode 0600, served by a thread of
 * its own so that traffic never waits for it.  Each client is checked with SO_PEERCRED (same
 * uid, or root), sends one request line (at most CTL_LINE_MAX bytes, within CTL_IO_TIMEOUT_S)
 * and gets "ok" or "err ERRNO TEXT", then the answer's lines, then the end of the stream.
 * Every answer comes from one call into the stack (one snapshot, under its lock once); the
 * stack's lock is never held while a client is written to.
 *
 * "trace" streams until the client goes: the subscriber runs under the stack's lock, so it
 * only formats a line into a non-blocking pipe (dropping, and counting, what does not fit);
 * a thread per trace client copies the pipe to the client.
 *
 * Built on the public API only, as the rest of link/.
 */
#include <ustack/diag.h>
#include <ustack/link.h>
#include <ustack/sysctl.h>
#include <ustack/trace.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_LINE_MAX 512      /* a request line, newline included */
#define CTL_IO_TIMEOUT_S 5    /* a client that neither asks nor reads within this is dropped */
#define CTL_TRACE_MAX 4       /* trace clients at once (each holds a trace subscription) */
#define CTL_TRACE_PIPE (1 << 20) /* bytes of trace lines waiting for a slow client */
#define CTL_NAME_MAX 64

struct ctl_trace {
	struct ustack_ctl *ctl;
	int fd;            /* the client */
	int pipe[2];       /* subscriber → thread */
	int sub;           /* trace subscription id, or capture id (pcap) */
	bool pcap;         /* a live capture: pcap records, not trace lines */
	uint64_t drops;    /* lines that did not fit (written under the stack lock) */
	pthread_t thread;
	bool used, done;
};

struct ustack_ctl {
	struct ustack *st;
	int lfd, stopfd;
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char name[CTL_NAME_MAX + 1];
	char netns[64];
	ino_t ino;
	struct ctl_trace traces[CTL_TRACE_MAX];
};

int ustack_ctl_dir(char *buf, size_t len)
{
	const char *env = getenv("USTACK_RUN_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/ustack");
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/ustack", xdg);
	else
		n = snprintf(buf, len, "/tmp/ustack-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	if (!n || n > CTL_NAME_MAX || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* The directory: made 0700 if missing; an existing one must be ours and not writable by
 * others (a directory someone else made in /tmp could swap our socket). */
static int ctl_mkdir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	struct stat sb;
	if (lstat(dir, &sb) < 0)
		return -1;
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* ---- writing answers -------------------------------------------------------------------- */

struct out {
	int fd;
	bool err;
	size_t n;
	char buf[8192];
};

static void out_flush(struct out *o)
{
	for (size_t off = 0; off < o->n && !o->err;) {
		ssize_t w = send(o->fd, o->buf + off, o->n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = true;
		else
			off += (size_t)w;
	}
	o->n = 0;
}

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (o->n + len > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->n, line, len);
	o->n += len;
}

static void out_err(struct out *o, int err, const char *what)
{
	outf(o, "err %d %s\n", err, what);
}

/* ---- the requests ----------------------------------------------------------------------- */

static void answer_ss(struct ustack_ctl *ctl, struct out *o)
{
	size_t cap = 64, total = 0;
	struct ustack_diag_sock *v = NULL;
	int n = -1;
	for (int tries = 0; tries < 5; tries++) { /* sockets may come while the buffer grows */
		struct ustack_diag_sock *nv = realloc(v, cap * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		n = ustack_diag_snapshot(ctl->st, v, cap, &total);
		if (n < 0 || total <= cap)
			break;
		cap = total + total / 4 + 16;
	}
	if (n < 0) {
		out_err(o, errno ? errno : ENOMEM, "snapshot failed");
		free(v);
		return;
	}
	outf(o, "ok\n");
	for (int i = 0; i < n; i++) {
		const struct ustack_diag_sock *d = &v[i];
		const struct ustack_tcp_info *ti = &d->info;
		char la[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &d->laddr, la, sizeof(la));
		inet_ntop(AF_INET, &d->raddr, ra, sizeof(ra));
		outf(o, "sock state=%d req=%u fd=%d src=%s:%u dst=%s:%u rq=%u sq=%u synq=%u timer=%u exp=%u "
			"retrans=%u shut=%u skmem=%u,%u,%u,%u,%u,%u,%u,%u,%u",
		     d->state, d->is_request, d->fd, la, d->lport, ra, d->rport, d->recv_q, d->send_q, d->syn_qlen,
		     d->timer, d->expires_ms, d->retrans, d->shutdown, d->skmem.rmem_alloc, d->skmem.rcvbuf,
		     d->skmem.wmem_alloc, d->skmem.sndbuf, d->skmem.fwd_alloc, d->skmem.wmem_queued, d->skmem.optmem,
		     d->skmem.backlog, d->skmem.drops);
		if (d->has_info) {
			outf(o, " cong=%s opts=%u wscale=%u,%u rto=%u backoff=%u rtt=%u,%u ato=%u mss=%u pmtu=%u "
				"rcvmss=%u advmss=%u cwnd=%u ssthresh=%u bytes_sent=%llu bytes_retrans=%llu "
				"bytes_acked=%llu bytes_received=%llu segs_out=%u segs_in=%u data_segs_out=%u "
				"data_segs_in=%u lastsnd=%u lastrcv=%u lastack=%u delivered=%u busy=%llu "
				"rwnd_limited=%llu sndbuf_limited=%llu unacked=%u sacked=%u lost=%u retr=%u,%u "
				"dsack_dups=%u reordering=%u reord_seen=%u rcv_rtt=%u rcv_space=%u rcv_ssthresh=%u "
				"notsent=%u minrtt=%u rcv_ooopack=%u snd_wnd=%u rcv_wnd=%u",
			     d->cong[0] ? d->cong : "-", ti->tcpi_options, ti->tcpi_snd_wscale, ti->tcpi_rcv_wscale,
			     ti->tcpi_rto, ti->tcpi_backoff, ti->tcpi_rtt, ti->tcpi_rttvar, ti->tcpi_ato, ti->tcpi_snd_mss,
			     ti->tcpi_pmtu, ti->tcpi_rcv_mss, ti->tcpi_advmss, ti->tcpi_snd_cwnd, ti->tcpi_snd_ssthresh,
			     (unsigned long long)ti->tcpi_bytes_sent, (unsigned long long)ti->tcpi_bytes_retrans,
			     (unsigned long long)ti->tcpi_bytes_acked, (unsigned long long)ti->tcpi_bytes_received,
			     ti->tcpi_segs_out, ti->tcpi_segs_in, ti->tcpi_data_segs_out, ti->tcpi_data_segs_in,
			     ti->tcpi_last_data_sent, ti->tcpi_last_data_recv, ti->tcpi_last_ack_recv,
			     ti->tcpi_delivered, (unsigned long long)ti->tcpi_busy_time,
			     (unsigned long long)ti->tcpi_rwnd_limited, (unsigned long long)ti->tcpi_sndbuf_limited,
			     ti->tcpi_unacked, ti->tcpi_sacked, ti->tcpi_lost, ti->tcpi_retrans, ti->tcpi_total_retrans,
			     ti->tcpi_dsack_dups, ti->tcpi_reordering, ti->tcpi_reord_seen, ti->tcpi_rcv_rtt,
			     ti->tcpi_rcv_space, ti->tcpi_rcv_ssthresh, ti->tcpi_notsent_bytes, ti->tcpi_min_rtt,
			     ti->tcpi_rcv_ooopack, ti->tcpi_snd_wnd, ti->tcpi_rcv_wnd);
		}
		outf(o, "\n");
	}
	free(v);
}

static void answer_counters(struct ustack_ctl *ctl, struct out *o)
{
	size_t n = ustack_counter_count();
	uint64_t *v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		out_err(o, ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) /* each read takes the lock: a counter at a time, as /proc */
		v[i] = ustack_counter_value(ctl->st, i);
	outf(o, "ok\n");
	for (size_t i = 0; i < n; i++)
		outf(o, "%s %llu\n", ustack_counter_name(i), (unsigned long long)v[i]);
	free(v);
}

static void answer_sysctl(struct ustack_ctl *ctl, struct out *o, char *arg)
{
	char val[256];
	if (!strcmp(arg, "-a")) {
		outf(o, "ok\n");
		for (size_t i = 0; i < ustack_sysctl_count(); i++)
			if (ustack_sysctl_get(ctl->st, ustack_sysctl_name(i), val, sizeof(val)) == 0)
				outf(o, "%s = %s\n", ustack_sysctl_name(i), val);
		return;
	}
	bool write = !strncmp(arg, "-w ", 3);
	char *name = write ? arg + 3 : arg, *value = NULL;
	if (write) {
		char *eq = strchr(name, '=');
		if (!eq || eq == name) {
			out_err(o, EINVAL, "syntax");
			return;
		}
		*eq = 0;
		value = eq + 1;
	}
	if (!*name || strchr(name, ' ')) {
		out_err(o, EINVAL, "syntax");
		return;
	}
	if (write && ustack_sysctl_set(ctl->st, name, value) < 0) {
		int err = errno;
		/* ENOENT is also a value's answer (an unknown congestion control): ask the name */
		bool unknown = err == ENOENT && ustack_sysctl_get(ctl->st, name, val, sizeof(val)) < 0 && errno == ENOENT;
		out_err(o, err, unknown ? "name" : "value");
		return;
	}
	if (ustack_sysctl_get(ctl->st, name, val, sizeof(val)) < 0) {
		out_err(o, errno, errno == ENOENT ? "name" : "value");
		return;
	}
	outf(o, "ok\n%s = %s\n", name, val);
}

static void answer_info(struct ustack_ctl *ctl, struct out *o)
{
	size_t total = 0;
	ustack_diag_snapshot(ctl->st, NULL, 0, &total);
	outf(o, "ok\nname=%s pid=%d uid=%u netns=%s stack=%s sockets=%zu\n", ctl->name, (int)getpid(),
	     (unsigned)geteuid(), ctl->netns, ustack_name(ctl->st), total);
}

/* "tcp_metrics": the entries in `ip tcp_metrics show`'s words (iproute2's process_msg);
 * "tcp_metrics flush [all|ADDRESS]", "tcp_metrics delete ADDRESS": forget them, answering
 * how many went. */
static void answer_tcp_metrics(struct ustack_ctl *ctl, struct out *o, const char *arg)
{
	if (*arg) {
		char verb[16], addr[64] = "";
		struct in_addr a;
		int k = sscanf(arg, " %15s %63s", verb, addr);
		bool del = k >= 1 && !strcmp(verb, "delete"), flush = k >= 1 && !strcmp(verb, "flush");
		bool all = flush && (k < 2 || !strcmp(addr, "all"));
		if ((!del && !flush) || (del && k < 2) || (!all && inet_pton(AF_INET, addr, &a) != 1)) {
			out_err(o, EINVAL, "syntax");
			return;
		}
		int gone = ustack_tcp_metrics_flush(ctl->st, all ? NULL : &a, del);
		if (gone < 0) {
			out_err(o, errno, "no such entry");
			return;
		}
		outf(o, "ok\n%d\n", gone);
		return;
	}
	size_t total = 0;
	ustack_tcp_metrics_snapshot(ctl->st, NULL, 0, &total);
	struct ustack_tcp_metrics *v = calloc(total + 16, sizeof(*v)); /* room for a few new ones */
	if (!v) {
		out_err(o, ENOMEM, "out of memory");
		return;
	}
	int n = ustack_tcp_metrics_snapshot(ctl->st, v, total + 16, NULL);
	outf(o, "ok\n");
	for (int i = 0; i < n; i++) {
		char d[INET_ADDRSTRLEN], s[INET_ADDRSTRLEN], cookie[33] = "";
		inet_ntop(AF_INET, &v[i].daddr, d, sizeof(d));
		inet_ntop(AF_INET, &v[i].saddr, s, sizeof(s));
		for (int b = 0; b < v[i].fo_cookie_len && b < 16; b++)
			snprintf(cookie + 2 * b, 3, "%02x", v[i].fo_cookie[b]);
		outf(o, "%s age %u.%03usec", d, v[i].age_ms / 1000, v[i].age_ms % 1000);
		if (v[i].fo_mss)
			outf(o, " fo_mss %u", v[i].fo_mss);
		if (v[i].fo_syn_drops)
			outf(o, " fo_syn_drops %u/%u.%03usec ago", v[i].fo_syn_drops, v[i].fo_syn_drop_ago_ms / 1000,
			     v[i].fo_syn_drop_ago_ms % 1000);
		if (*cookie)
			outf(o, " fo_cookie %s", cookie);
		outf(o, " source %s\n", s);
	}
	free(v);
}

/* ---- trace ------------------------------------------------------------------------------ */

static const char *tp_state(int s)
{
	static const char *const names[] = { "TCP_UNKNOWN",   "TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV",
					     "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",   "TCP_TIME_WAIT", "TCP_CLOSE",
					     "TCP_CLOSE_WAIT", "TCP_LAST_ACK",   "TCP_LISTEN",    "TCP_CLOSING",
					     "TCP_NEW_SYN_RECV" };
	return s >= 0 && s <= 12 ? names[s] : "TCP_UNKNOWN";
}

/* Linux's TCP tracepoints (include/trace/events/tcp.h) whose event carries, as its detail,
 * the tracepoint's fields exactly as its TP_printk prints them: the line is "NAME: detail". */
static bool tp_fields_in_detail(const char *name)
{
	static const char *const names[] = {
		"tcp_probe",           "tcp_receive_reset",     "tcp_destroy_sock", "tcp_rcv_space_adjust",
		"tcp_retransmit_synack", "tcp_send_reset",      "tcp_retransmit_skb",
	};
	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/* One line in trace-cmd report's layout (COMM-PID [CPU] SECS.USECS: EVENT: FIELDS), with the
 * kernel's tracepoint and fields where Linux has one, ustack's step names otherwise. */
static void trace_line(char *line, size_t size, const struct ustack_trace_event *ev)
{
	char sa[INET_ADDRSTRLEN], da[INET_ADDRSTRLEN], body[512];
	int n = snprintf(line, size, "%16s-%-7d [000] %5llu.%06llu: ", "ustack", (int)getpid(),
			 (unsigned long long)(ev->time_us / 1000000), (unsigned long long)(ev->time_us % 1000000));
	if (n < 0 || (size_t)n >= size)
		return;
	inet_ntop(AF_INET, &ev->laddr, sa, sizeof(sa));
	inet_ntop(AF_INET, &ev->raddr, da, sizeof(da));
	const char *detail = ev->detail ? ev->detail : "";
	switch (ev->kind) {
	case USTACK_TRACE_PKT_RX:
	case USTACK_TRACE_PKT_TX:
		ustack_frame_format(body, sizeof(body), ev->link_type, ev->frame, ev->len);
		snprintf(line + n, size - (size_t)n, "%s: ifindex=%d len=%zu %s\n",
			 ev->kind == USTACK_TRACE_PKT_RX ? "netif_receive_skb" : "net_dev_xmit", ev->ifindex, ev->len,
			 body);
		break;
	case USTACK_TRACE_DROP:
		snprintf(line + n, size - (size_t)n, "kfree_skb: ifindex=%d reason: %s%s%s\n", ev->ifindex,
			 ev->name ? ev->name : "NOT_SPECIFIED", *detail ? " " : "", detail);
		break;
	case USTACK_TRACE_STEP:
		/* tcp:tcp_probe, tcp:tcp_send_reset ...: the stack formatted Linux's fields */
		if (ev->detail && tp_fields_in_detail(ev->name))
			snprintf(line + n, size - (size_t)n, "%s: %s\n", ev->name, ev->detail);
		/* a request socket (NEW_SYN_RECV) is no full socket: Linux traces no state of it */
		else if (ev->old_state != ev->new_state && ev->old_state != 12 && ev->new_state != 12)
			snprintf(line + n, size - (size_t)n,
				 "inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=%u dport=%u "
				 "saddr=%s daddr=%s saddrv6=::ffff:%s daddrv6=::ffff:%s oldstate=%s newstate=%s\n",
				 ev->lport, ev->rport, sa, da, sa, da, tp_state(ev->old_state), tp_state(ev->new_state));
		else if (ev->old_state != ev->new_state)
			snprintf(line + n, size - (size_t)n,
				 "%s: family=AF_INET sport=%u dport=%u saddr=%s daddr=%s oldstate=%s newstate=%s%s%s\n",
				 ev->name ? ev->name : "?", ev->lport, ev->rport, sa, da, tp_state(ev->old_state),
				 tp_state(ev->new_state), *detail ? " " : "", detail);
		else if (ev->lport || ev->rport)
			snprintf(line + n, size - (size_t)n,
				 "%s: family=AF_INET sport=%u dport=%u saddr=%s daddr=%s state=%s%s%s\n",
				 ev->name ? ev->name : "?", ev->lport, ev->rport, sa, da, tp_state(ev->new_state),
				 *detail ? " " : "", detail);
		else
			snprintf(line + n, size - (size_t)n, "%s:%s%s\n", ev->name ? ev->name : "?",
				 *detail ? " " : "", detail);
		break;
	case USTACK_TRACE_LOG:
		snprintf(line + n, size - (size_t)n, "printk: %s\n", detail);
		break;
	default:
		snprintf(line + n, size - (size_t)n, "%s\n", ev->name ? ev->name : "?");
	}
}

/* Under the stack's lock: format, and hand the line to the pipe without ever waiting. */
static void trace_sub(void *arg, const struct ustack_trace_event *ev)
{
	struct ctl_trace *t = arg;
	char line[1024];
	line[0] = 0;
	trace_line(line, sizeof(line), ev);
	size_t len = strlen(line);
	if (len && line[len - 1] != '\n') /* cut short: still one line */
		line[len - 1] = '\n';
	if (write(t->pipe[1], line, len) != (ssize_t)len) /* ≤ PIPE_BUF: all or nothing */
		__atomic_add_fetch(&t->drops, 1, __ATOMIC_RELAXED);
}

static int send_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Ends what the stream subscribed to: the trace, or the live capture. */
static void trace_unsubscribe(struct ctl_trace *t)
{
	if (t->pcap)
		ustack_capture_remove(t->ctl->st, t->sub);
	else
		ustack_trace_unsubscribe(t->ctl->st, t->sub);
}

static void *trace_thread(void *arg)
{
	struct ctl_trace *t = arg;
	uint64_t reported = 0;
	char buf[16384];
	for (;;) {
		struct pollfd p[3] = { { .fd = t->fd, .events = POLLIN }, { .fd = t->pipe[0], .events = POLLIN },
				       { .fd = t->ctl->stopfd, .events = POLLIN } };
		if (poll(p, 3, 1000) < 0 && errno != EINTR)
			break;
		if (p[2].revents)
			break;
		if (p[0].revents) { /* the client went (or sent something: it may only listen) */
			if (recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0 || (p[0].revents & (POLLHUP | POLLERR)))
				break;
		}
		uint64_t drops = __atomic_load_n(&t->drops, __ATOMIC_RELAXED);
		if (drops != reported && !t->pcap) { /* a pcap stream has no place to say so */
			char line[96];
			int n = snprintf(line, sizeof(line), "# %llu events dropped (the reader was slow)\n",
					 (unsigned long long)(drops - reported));
			reported = drops;
			if (send_all(t->fd, line, (size_t)n) < 0)
				break;
		}
		if (p[1].revents & POLLIN) {
			ssize_t r = read(t->pipe[0], buf, sizeof(buf));
			if (r > 0 && send_all(t->fd, buf, (size_t)r) < 0)
				break;
		}
	}
	trace_unsubscribe(t); /* the subscriber writes no more */
	close(t->pipe[0]);
	close(t->pipe[1]);
	close(t->fd);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void reap_traces(struct ustack_ctl *ctl, bool all)
{
	for (int i = 0; i < CTL_TRACE_MAX; i++) {
		struct ctl_trace *t = &ctl->traces[i];
		if (t->used && (all || __atomic_load_n(&t->done, __ATOMIC_ACQUIRE))) {
			pthread_join(t->thread, NULL);
			t->used = false;
		}
	}
}

/* A live capture's subscriber, under the stack's lock: one pcap record (header and frame,
 * less than PIPE_BUF: all or nothing) into the pipe, or a drop. */
static void pcap_sub(void *arg, int ifindex, uint64_t wall_us, const uint8_t *frame, size_t len)
{
	struct ctl_trace *t = arg;
	(void)ifindex;
	uint8_t rec[16 + 2048];
	size_t cap = len < sizeof(rec) - 16 ? len : sizeof(rec) - 16; /* caplen < len: cut, as a snaplen does */
	uint32_t h[4] = { (uint32_t)(wall_us / 1000000u), (uint32_t)(wall_us % 1000000u), (uint32_t)cap, (uint32_t)len };
	len = cap;
	memcpy(rec, h, sizeof(h)); /* the host's byte order: the file's magic says which */
	memcpy(rec + 16, frame, len);
	if (write(t->pipe[1], rec, 16 + len) != (ssize_t)(16 + len))
		__atomic_add_fetch(&t->drops, 1, __ATOMIC_RELAXED);
}

/* Takes the client: hands it to a trace thread, or answers and closes it. */
static void start_trace(struct ustack_ctl *ctl, struct out *o, int pcap_ifindex)
{
	reap_traces(ctl, false);
	int linktype = 0;
	if (pcap_ifindex) {
		int type = ustack_if_type(ctl->st, pcap_ifindex);
		if (type < 0) {
			out_err(o, ENODEV, "no such interface");
			return;
		}
		linktype = type == USTACK_LINK_ETHER ? 1 : 101; /* LINKTYPE_ETHERNET, LINKTYPE_RAW */
	}
	struct ctl_trace *t = NULL;
	for (int i = 0; i < CTL_TRACE_MAX && !t; i++)
		if (!ctl->traces[i].used)
			t = &ctl->traces[i];
	if (!t) {
		out_err(o, EBUSY, "too many trace clients");
		return;
	}
	*t = (struct ctl_trace){ .ctl = ctl, .fd = o->fd, .pcap = pcap_ifindex != 0 };
	if (pipe2(t->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		out_err(o, errno, "pipe");
		return;
	}
	fcntl(t->pipe[1], F_SETPIPE_SZ, CTL_TRACE_PIPE); /* best effort: the default 64 KB otherwise */
	t->sub = t->pcap ? ustack_capture_add(ctl->st, pcap_ifindex, pcap_sub, t) : ustack_trace_subscribe(ctl->st, trace_sub, t);
	if (t->sub < 0) {
		out_err(o, errno, t->pcap ? "no capture free on that interface" : "no trace subscription free");
		close(t->pipe[0]);
		close(t->pipe[1]);
		return;
	}
	outf(o, "ok\n");
	if (t->pcap)
		outf(o, "linktype %d\n", linktype);
	out_flush(o);
	if (pthread_create(&t->thread, NULL, trace_thread, t) != 0) {
		trace_unsubscribe(t);
		close(t->pipe[0]);
		close(t->pipe[1]);
		return;
	}
	t->used = true;
	o->fd = -1; /* the thread has it */
}

/* ---- the server ------------------------------------------------------------------------- */

/* The request line: up to CTL_LINE_MAX bytes ending in a newline; -1 for anything else. */
static int read_request(int fd, char *line)
{
	size_t n = 0;
	while (n < CTL_LINE_MAX) {
		ssize_t r = recv(fd, line + n, CTL_LINE_MAX - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		char *nl = memchr(line + n, '\n', (size_t)r);
		n += (size_t)r;
		if (nl) {
			*nl = 0;
			if (nl > line && nl[-1] == '\r')
				nl[-1] = 0;
			for (char *p = line; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					return -1; /* printable ASCII only */
			return 0;
		}
	}
	return -1;
}

static void serve_client(struct ustack_ctl *ctl, int fd)
{
	struct out o = { .fd = fd };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || (cred.uid != geteuid() && cred.uid != 0)) {
		outf(&o, "err %d refused: uid %u is not the instance's owner\n", EACCES,
		     clen == sizeof(cred) ? (unsigned)cred.uid : 0u);
		out_flush(&o);
		close(fd);
		return;
	}
	struct timeval tv = { .tv_sec = CTL_IO_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char line[CTL_LINE_MAX + 1];
	if (read_request(fd, line) < 0) {
		out_err(&o, EINVAL, "bad request (one line of at most 511 printable characters)");
	} else if (!strcmp(line, "ss")) {
		answer_ss(ctl, &o);
	} else if (!strcmp(line, "counters")) {
		answer_counters(ctl, &o);
	} else if (!strncmp(line, "sysctl ", 7)) {
		answer_sysctl(ctl, &o, line + 7);
	} else if (!strcmp(line, "ls-info")) {
		answer_info(ctl, &o);
	} else if (!strcmp(line, "trace")) {
		start_trace(ctl, &o, 0);
	} else if (!strncmp(line, "pcap", 4) && (!line[4] || line[4] == ' ')) {
		int ifindex = line[4] ? atoi(line + 5) : 1;
		if (ifindex < 1)
			out_err(&o, EINVAL, "syntax");
		else
			start_trace(ctl, &o, ifindex);
	} else if (!strcmp(line, "sockstat")) {
		struct ustack_sockstat ss;
		ustack_sockstat(ctl->st, &ss);
		outf(&o, "ok\nsockets: used %u\nTCP: inuse %u orphan %u tw %u alloc %u mem 0\nCurrEstab %u\nSynRecv %u\n",
		     ss.sockets_used, ss.tcp_inuse, ss.tcp_orphan, ss.tcp_tw, ss.tcp_alloc, ss.tcp_estab, ss.tcp_reqsk);
	} else if (!strcmp(line, "tcp_metrics") || !strncmp(line, "tcp_metrics ", 12)) {
		answer_tcp_metrics(ctl, &o, line + 11);
	} else {
		out_err(&o, EINVAL, "unknown request");
	}
	if (o.fd >= 0) {
		out_flush(&o);
		close(o.fd);
	}
}

static void *ctl_thread(void *arg)
{
	struct ustack_ctl *ctl = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = ctl->lfd, .events = POLLIN }, { .fd = ctl->stopfd, .events = POLLIN } };
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		reap_traces(ctl, false);
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_client(ctl, fd);
	}
	return NULL;
}

/* bind, or replace a socket nobody answers on (a crashed instance's); EADDRINUSE if live */
static int ctl_bind(int fd, const struct sockaddr_un *sa)
{
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -1;
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -1;
	int rc = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)), err = errno;
	close(probe);
	if (rc == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	struct stat sb;
	if (err != ECONNREFUSED || lstat(sa->sun_path, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
		errno = EADDRINUSE;
		return -1;
	}
	unlink(sa->sun_path);
	return bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
}

struct ustack_ctl *ustack_ctl_start(struct ustack *st, const char *name)
{
	if (!st || !name || !name_ok(name)) {
		errno = EINVAL;
		return NULL;
	}
	struct ustack_ctl *ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->st = st;
	ctl->lfd = ctl->stopfd = -1;
	snprintf(ctl->name, sizeof(ctl->name), "%s", name);
	/* which network namespace the instance's device is in: ustack ss in another one does not
	 * pick it by default, as Linux's ss shows its own namespace's sockets */
	if (readlink("/proc/self/ns/net", ctl->netns, sizeof(ctl->netns) - 1) <= 0)
		snprintf(ctl->netns, sizeof(ctl->netns), "-");
	for (char *p = ctl->netns; *p; p++)
		if (*p == ' ')
			*p = '_';
	char dir[sizeof(ctl->path)];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;
	if (ustack_ctl_dir(dir, sizeof(dir)) < 0 || ctl_mkdir(dir) < 0)
		goto fail;
	if ((size_t)snprintf(ctl->path, sizeof(ctl->path), "%s/%s.sock", dir, name) >= sizeof(ctl->path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, ctl->path, sizeof(sa.sun_path));
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ctl->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->lfd < 0 || ctl->stopfd < 0 || ctl_bind(ctl->lfd, &sa) < 0)
		goto fail;
	struct stat sb;
	if (chmod(ctl->path, 0600) < 0 || stat(ctl->path, &sb) < 0 || listen(ctl->lfd, 16) < 0) {
		err = errno;
		unlink(ctl->path);
		errno = err;
		goto fail;
	}
	ctl->ino = sb.st_ino;
	if ((err = pthread_create(&ctl->thread, NULL, ctl_thread, ctl)) != 0) {
		unlink(ctl->path);
		errno = err;
		goto fail;
	}
	return ctl;
fail:
	err = errno;
	if (ctl->lfd >= 0)
		close(ctl->lfd);
	if (ctl->stopfd >= 0)
		close(ctl->stopfd);
	free(ctl);
	errno = err;
	return NULL;
}

void ustack_ctl_stop(struct ustack_ctl *ctl)
{
	if (!ctl)
		return;
	uint64_t one = 1;
	if (write(ctl->stopfd, &one, sizeof(one)) < 0) { /* an eventfd write cannot fail here */
	}
	pthread_join(ctl->thread, NULL);
	reap_traces(ctl, true); /* the stop event ends them too */
	struct stat sb;
	if (stat(ctl->path, &sb) == 0 && sb.st_ino == ctl->ino) /* still ours, not a successor's */
		unlink(ctl->path);
	close(ctl->lfd);
	close(ctl->stopfd);
	free(ctl);
}

const char *ustack_ctl_path(const struct ustack_ctl *ctl)
{
	return ctl->path;
}
