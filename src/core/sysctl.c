/*
 * The sysctl table: Linux's names, Linux 6.18's defaults, and Linux's range checks, so a
 * script that configures Linux with `sysctl -w` configures ustack the same way.  A write that
 * fails leaves the old value, as a failed write to /proc/sys does.
 */
#include "core/sysctl.h"
#include "core/stack.h"
#include <ustack/sysctl.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SC_UINT: one unsigned int (proc_douintvec); SC_FOKEY: net.ipv4.tcp_fastopen_key's keys */
enum sysctl_kind { SC_INT, SC_UINT, SC_STRING, SC_FOKEY };

struct sysctl_entry {
	const char *name;
	enum sysctl_kind kind;
	size_t off;      /* offset in struct ustack_sysctls */
	int nvals;       /* ints in a vector */
	int min, max;    /* per element */
	int (*check)(const struct ustack_sysctls *cur, const int *v);
};

/* ip_local_port_range: Linux's ipv4_local_port_range() wants low ≤ high and the low end
 * at or above ip_unprivileged_port_start. */
static int check_port_range(const struct ustack_sysctls *cur, const int *v)
{
	return v[1] >= v[0] && v[0] >= cur->ip_unprivileged_port_start;
}

static int check_frag_high(const struct ustack_sysctls *cur, const int *v)
{
	return v[0] >= cur->ipfrag_low_thresh;
}

static int check_frag_low(const struct ustack_sysctls *cur, const int *v)
{
	return v[0] <= cur->ipfrag_high_thresh;
}

/* tcp_rmem/tcp_wmem: Linux only demands each ≥ 1; ustack also keeps min ≤ default ≤ max so
 * buffer sizing never sees an inverted range. */
static int check_mem_triple(const struct ustack_sysctls *cur, const int *v)
{
	(void)cur;
	return v[0] <= v[1] && v[1] <= v[2];
}

#define F(field) offsetof(struct ustack_sysctls, field)
static const struct sysctl_entry table[] = {
	{ "net.core.somaxconn", SC_INT, F(somaxconn), 1, 0, INT_MAX, NULL },
	{ "net.core.rmem_default", SC_INT, F(rmem_default), 1, 1, INT_MAX, NULL },
	{ "net.core.wmem_default", SC_INT, F(wmem_default), 1, 1, INT_MAX, NULL },
	{ "net.core.rmem_max", SC_INT, F(rmem_max), 1, 1, INT_MAX, NULL },
	{ "net.core.wmem_max", SC_INT, F(wmem_max), 1, 1, INT_MAX, NULL },
	{ "fs.nr_open", SC_INT, F(fs_nr_open), 1, 64, 1 << 30, NULL },
	{ "net.ipv4.ip_default_ttl", SC_INT, F(ip_default_ttl), 1, 1, 255, NULL },
	{ "net.ipv4.ip_nonlocal_bind", SC_INT, F(ip_nonlocal_bind), 1, 0, 1, NULL },
	{ "net.ipv4.ip_local_port_range", SC_INT, F(ip_local_port_range), 2, 1, 65535, check_port_range },
	{ "net.ipv4.ip_unprivileged_port_start", SC_INT, F(ip_unprivileged_port_start), 1, 0, 65535, NULL },
	{ "net.ipv4.ip_no_pmtu_disc", SC_INT, F(ip_no_pmtu_disc), 1, 0, 3, NULL },
	{ "net.ipv4.ipfrag_high_thresh", SC_INT, F(ipfrag_high_thresh), 1, 0, INT_MAX, check_frag_high },
	{ "net.ipv4.ipfrag_low_thresh", SC_INT, F(ipfrag_low_thresh), 1, 0, INT_MAX, check_frag_low },
	{ "net.ipv4.ipfrag_time", SC_INT, F(ipfrag_time), 1, 1, INT_MAX / 1000, NULL },
	{ "net.ipv4.icmp_echo_ignore_all", SC_INT, F(icmp_echo_ignore_all), 1, 0, 1, NULL },
	{ "net.ipv4.icmp_echo_ignore_broadcasts", SC_INT, F(icmp_echo_ignore_broadcasts), 1, 0, 1, NULL },
	{ "net.ipv4.icmp_ratelimit", SC_INT, F(icmp_ratelimit), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.icmp_ratemask", SC_INT, F(icmp_ratemask), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.icmp_msgs_per_sec", SC_INT, F(icmp_msgs_per_sec), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.icmp_msgs_burst", SC_INT, F(icmp_msgs_burst), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.neigh.default.base_reachable_time_ms", SC_INT, F(neigh_base_reachable_time_ms), 1, 1, INT_MAX, NULL },
	{ "net.ipv4.neigh.default.retrans_time_ms", SC_INT, F(neigh_retrans_time_ms), 1, 1, INT_MAX, NULL },
	{ "net.ipv4.neigh.default.delay_first_probe_time", SC_INT, F(neigh_delay_first_probe_time), 1, 0, INT_MAX / 1000, NULL },
	{ "net.ipv4.neigh.default.mcast_solicit", SC_INT, F(neigh_mcast_solicit), 1, 0, 255, NULL },
	{ "net.ipv4.neigh.default.ucast_solicit", SC_INT, F(neigh_ucast_solicit), 1, 0, 255, NULL },
	{ "net.ipv4.neigh.default.unres_qlen_bytes", SC_INT, F(neigh_unres_qlen_bytes), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.neigh.default.gc_stale_time", SC_INT, F(neigh_gc_stale_time), 1, 0, INT_MAX / 1000, NULL },
	{ "net.ipv4.neigh.default.gc_thresh3", SC_INT, F(neigh_gc_thresh3), 1, 1, 1 << 20, NULL },
	{ "net.ipv4.tcp_syncookies", SC_INT, F(tcp_syncookies), 1, 0, 2, NULL },
	{ "net.ipv4.tcp_stdurg", SC_INT, F(tcp_stdurg), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_max_syn_backlog", SC_INT, F(tcp_max_syn_backlog), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.tcp_syn_retries", SC_INT, F(tcp_syn_retries), 1, 1, 127, NULL },
	{ "net.ipv4.tcp_synack_retries", SC_INT, F(tcp_synack_retries), 1, 0, 255, NULL },
	{ "net.ipv4.tcp_syn_linear_timeouts", SC_INT, F(tcp_syn_linear_timeouts), 1, 0, 127, NULL },
	{ "net.ipv4.tcp_timestamps", SC_INT, F(tcp_timestamps), 1, 0, 2, NULL },
	{ "net.ipv4.tcp_sack", SC_INT, F(tcp_sack), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_dsack", SC_INT, F(tcp_dsack), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_window_scaling", SC_INT, F(tcp_window_scaling), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_abort_on_overflow", SC_INT, F(tcp_abort_on_overflow), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_fastopen", SC_INT, F(tcp_fastopen), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.tcp_fastopen_key", SC_FOKEY, F(tcp_fastopen_key), 0, 0, 0, NULL },
	{ "net.ipv4.tcp_ecn", SC_INT, F(tcp_ecn), 1, 0, 2, NULL },
	{ "net.ipv4.tcp_slow_start_after_idle", SC_INT, F(tcp_slow_start_after_idle), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_ecn_fallback", SC_INT, F(tcp_ecn_fallback), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_fastopen_blackhole_timeout_sec", SC_INT, F(tcp_fastopen_blackhole_timeout_sec), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.tcp_tw_reuse", SC_INT, F(tcp_tw_reuse), 1, 0, 2, NULL },
	{ "net.ipv4.tcp_max_tw_buckets", SC_INT, F(tcp_max_tw_buckets), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.tcp_rfc1337", SC_INT, F(tcp_rfc1337), 1, INT_MIN, INT_MAX, NULL },
	{ "net.ipv4.tcp_moderate_rcvbuf", SC_INT, F(tcp_moderate_rcvbuf), 1, 0, 1, NULL },
	{ "net.ipv4.tcp_notsent_lowat", SC_UINT, F(tcp_notsent_lowat), 1, 0, 0, NULL },
	{ "net.ipv4.tcp_early_retrans", SC_INT, F(tcp_early_retrans), 1, 0, 4, NULL },
	{ "net.ipv4.tcp_pacing_ss_ratio", SC_INT, F(tcp_pacing_ss_ratio), 1, 0, 3000, NULL },
	{ "net.ipv4.tcp_pacing_ca_ratio", SC_INT, F(tcp_pacing_ca_ratio), 1, 0, 3000, NULL },
	{ "net.ipv4.tcp_min_tso_segs", SC_INT, F(tcp_min_tso_segs), 1, 1, 255, NULL },
	{ "net.ipv4.tcp_tso_rtt_log", SC_INT, F(tcp_tso_rtt_log), 1, 0, 255, NULL },
	{ "net.ipv4.tcp_retrans_collapse", SC_INT, F(tcp_retrans_collapse), 1, INT_MIN, INT_MAX, NULL },
	{ "net.ipv4.tcp_recovery", SC_INT, F(tcp_recovery), 1, INT_MIN, INT_MAX, NULL },
	{ "net.ipv4.tcp_reordering", SC_INT, F(tcp_reordering), 1, 1, 300, NULL },
	{ "net.ipv4.tcp_max_reordering", SC_INT, F(tcp_max_reordering), 1, 1, 65535, NULL },
	{ "net.ipv4.tcp_tw_reuse_delay", SC_INT, F(tcp_tw_reuse_delay), 1, 1, INT_MAX, NULL },
	{ "net.ipv4.tcp_fin_timeout", SC_INT, F(tcp_fin_timeout), 1, 1, INT_MAX / 1000, NULL },
	{ "net.ipv4.tcp_rmem", SC_INT, F(tcp_rmem), 3, 1, INT_MAX, check_mem_triple },
	{ "net.ipv4.tcp_wmem", SC_INT, F(tcp_wmem), 3, 1, INT_MAX, check_mem_triple },
	{ "net.ipv4.tcp_congestion_control", SC_STRING, F(tcp_congestion_control), 0, 0, 0, NULL },
	{ "net.ipv4.tcp_keepalive_time", SC_INT, F(tcp_keepalive_time), 1, 1, 32767, NULL },
	{ "net.ipv4.tcp_keepalive_intvl", SC_INT, F(tcp_keepalive_intvl), 1, 1, 32767, NULL },
	{ "net.ipv4.tcp_keepalive_probes", SC_INT, F(tcp_keepalive_probes), 1, 1, 127, NULL },
	{ "net.ipv4.tcp_retries2", SC_INT, F(tcp_retries2), 1, 0, 255, NULL },
	{ "net.ipv4.tcp_orphan_retries", SC_INT, F(tcp_orphan_retries), 1, 0, 255, NULL },
	{ "net.ipv4.tcp_min_snd_mss", SC_INT, F(tcp_min_snd_mss), 1, 48, 65535, NULL },
	{ "net.ipv4.tcp_invalid_ratelimit", SC_INT, F(tcp_invalid_ratelimit), 1, 0, INT_MAX, NULL },
	{ "net.ipv4.tcp_migrate_req", SC_INT, F(tcp_migrate_req), 1, 0, 1, NULL },
};
#undef F
#define NENTRIES (sizeof(table) / sizeof(table[0]))

void sysctl_defaults(struct ustack_sysctls *s)
{
	memset(s, 0, sizeof(*s));
	s->somaxconn = 4096;
	s->rmem_default = s->wmem_default = 212992;
	s->rmem_max = s->wmem_max = 4194304; /* Linux 6.18 (4 MB since 6.x; 212992 before) */
	s->ip_default_ttl = 64;
	s->ip_local_port_range[0] = 32768;
	s->ip_local_port_range[1] = 60999;
	s->ip_unprivileged_port_start = 1024;
	s->ipfrag_high_thresh = 4 * 1024 * 1024;
	s->ipfrag_low_thresh = 3 * 1024 * 1024;
	s->ipfrag_time = 30;
	s->icmp_echo_ignore_broadcasts = 1;
	s->icmp_ratelimit = 1000;
	s->icmp_ratemask = 6168;
	s->icmp_msgs_per_sec = 1000;
	s->icmp_msgs_burst = 50;
	s->neigh_base_reachable_time_ms = 30000;
	s->neigh_retrans_time_ms = 1000;
	s->neigh_delay_first_probe_time = 5;
	s->neigh_mcast_solicit = 3;
	s->neigh_ucast_solicit = 3;
	s->neigh_unres_qlen_bytes = 212992;
	s->neigh_gc_stale_time = 60;
	s->neigh_gc_thresh3 = 1024;
	s->fs_nr_open = 1048576;
	s->tcp_syncookies = 1;
	/* Linux sizes this from its established hash: max(128, ehash_entries / 128); 2048
	 * is what a 262144-bucket ehash (a machine with this one's memory) gives. */
	s->tcp_max_syn_backlog = 2048;
	s->tcp_syn_retries = 6;
	s->tcp_synack_retries = 5;
	s->tcp_syn_linear_timeouts = 4;
	s->tcp_timestamps = 1;
	s->tcp_sack = 1;
	s->tcp_dsack = 1;
	s->tcp_window_scaling = 1;
	s->tcp_fastopen = 1;
	s->tcp_ecn = 2;
	s->tcp_slow_start_after_idle = 1;
	s->tcp_ecn_fallback = 1;
	s->tcp_tw_reuse = 2;
	/* Linux: half its established hash's buckets, 131072 for the 262144 a machine with this
	 * one's memory gets (see tcp_max_syn_backlog) */
	s->tcp_max_tw_buckets = 131072;
	s->tcp_fin_timeout = 60;
	s->tcp_keepalive_time = 7200;
	s->tcp_keepalive_intvl = 75;
	s->tcp_keepalive_probes = 9;
	s->tcp_retries2 = 15;
	s->tcp_orphan_retries = 0; /* 8 for a live connection (tcp_orphan_retries()) */
	s->tcp_tw_reuse_delay = 1000;
	s->tcp_reordering = 3;
	s->tcp_min_snd_mss = 48;        /* TCP_MIN_SND_MSS */
	s->tcp_invalid_ratelimit = 500; /* HZ / 2 */
	s->tcp_moderate_rcvbuf = 1;
	s->tcp_early_retrans = 3;
	s->tcp_notsent_lowat = UINT_MAX;
	s->tcp_pacing_ss_ratio = 200;
	s->tcp_pacing_ca_ratio = 120;
	s->tcp_min_tso_segs = 2;
	s->tcp_tso_rtt_log = 9;
	s->tcp_retrans_collapse = 1;
	s->tcp_recovery = 1;
	s->tcp_max_reordering = 300;
	s->tcp_rmem[0] = 4096;
	s->tcp_rmem[1] = 131072;
	s->tcp_rmem[2] = 33554432; /* Linux 6.18 on a machine with this much memory */
	s->tcp_wmem[0] = 4096;
	s->tcp_wmem[1] = 16384;
	s->tcp_wmem[2] = 4194304;
	strcpy(s->tcp_congestion_control, "cubic");
}

static const struct sysctl_entry *find(const char *name)
{
	/* Accept the /proc/sys path form too (net/ipv4/tcp_sack), as sysctl(8) does. */
	for (size_t i = 0; i < NENTRIES; i++) {
		const char *a = table[i].name, *b = name;
		while (*a && (*a == *b || (*a == '.' && *b == '/'))) {
			a++;
			b++;
		}
		if (!*a && !*b)
			return &table[i];
	}
	return NULL;
}

size_t ustack_sysctl_count(void)
{
	return NENTRIES;
}

const char *ustack_sysctl_name(size_t i)
{
	return i < NENTRIES ? table[i].name : NULL;
}

static int parse_ints(const char *s, int *out, int max, int *n)
{
	*n = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		if (*n == max)
			return -1;
		char *end;
		errno = 0;
		long v = strtol(s, &end, 0); /* proc_get_long: base 0, so 0x70403 is taken too */
		if (end == s || errno || v < INT_MIN || v > INT_MAX)
			return -1;
		if (*end && *end != ' ' && *end != '\t' && *end != '\n')
			return -1;
		out[(*n)++] = (int)v;
		s = end;
	}
	return *n ? 0 : -1;
}

/*
 * proc_tcp_fastopen_key: "xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx" for the primary key, then
 * optionally ",xxxxxxxx-..." for the backup.  Each word is read with sscanf's %x, as Linux's
 * sscanf_key does, and stored little-endian (cpu_to_le32), so the 16 bytes are the SipHash key
 * Linux would use and a script that sets a key sees Linux's cookies.
 */
static int fokey_parse(const char *s, unsigned char out[16])
{
	unsigned w[4];
	if (sscanf(s, "%x-%x-%x-%x", &w[0], &w[1], &w[2], &w[3]) != 4)
		return -1;
	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 4; b++)
			out[4 * i + b] = (unsigned char)(w[i] >> (8 * b));
	return 0;
}

static int fokey_set(struct ustack_sysctls *sc, const char *value)
{
	char buf[128];
	unsigned char key[2][16];
	size_t n = strcspn(value, "\n");
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, value, n);
	buf[n] = 0;
	char *backup = strchr(buf, ',');
	if (backup)
		*backup++ = 0;
	if (fokey_parse(buf, key[0]) < 0 || (backup && fokey_parse(backup, key[1]) < 0))
		return -1;
	memcpy(sc->tcp_fastopen_key, key, sizeof(key));
	sc->tcp_fastopen_nkeys = backup ? 2 : 1;
	return 0;
}

/* Read back as Linux prints it: all zeros while no key exists yet. */
static int fokey_get(const struct ustack_sysctls *sc, char *buf, size_t len)
{
	int nkeys = sc->tcp_fastopen_nkeys ? sc->tcp_fastopen_nkeys : 1;
	int n = 0;
	for (int k = 0; k < nkeys; k++) {
		unsigned w[4] = { 0, 0, 0, 0 };
		for (int i = 0; sc->tcp_fastopen_nkeys && i < 4; i++)
			for (int b = 0; b < 4; b++)
				w[i] |= (unsigned)sc->tcp_fastopen_key[k][4 * i + b] << (8 * b);
		int fits = (size_t)n < len;
		n += snprintf(fits ? buf + n : NULL, fits ? len - (size_t)n : 0, "%s%08x-%08x-%08x-%08x",
			      k ? "," : "", w[0], w[1], w[2], w[3]);
	}
	return n;
}

int ustack_sysctl_set(struct ustack *st, const char *name, const char *value)
{
	const struct sysctl_entry *e = find(name);
	if (!e) {
		errno = ENOENT;
		return -1;
	}
	int rc = 0;
	stack_lock(st);
	uint8_t *base = (uint8_t *)&st->sysctl;
	if (e->kind == SC_FOKEY) {
		if (fokey_set(&st->sysctl, value) < 0) {
			errno = EINVAL;
			rc = -1;
		}
	} else if (e->kind == SC_STRING) {
		char v[16];
		size_t n = strcspn(value, " \t\n");
		if (n == 0 || n >= sizeof(v)) {
			errno = EINVAL;
			rc = -1;
		} else {
			memcpy(v, value, n);
			v[n] = 0;
			/* Linux answers ENOENT for a congestion control it does not have. */
			if (strcmp(v, "cubic") && strcmp(v, "reno")) {
				errno = ENOENT;
				rc = -1;
			} else {
				memcpy(base + e->off, v, n + 1);
			}
		}
	} else if (e->kind == SC_UINT) {
		char *end;
		while (*value == ' ' || *value == '\t')
			value++;
		errno = 0;
		unsigned long v = strtoul(value, &end, 0);
		while (*end == ' ' || *end == '\t' || *end == '\n')
			end++;
		if (*value == '-' || end == value || *end || errno || v > UINT_MAX) {
			errno = EINVAL;
			rc = -1;
		} else {
			*(unsigned *)(void *)(base + e->off) = (unsigned)v;
		}
	} else {
		int v[3], n;
		int *cur = (int *)(void *)(base + e->off);
		if (parse_ints(value, v, e->nvals, &n) < 0) {
			errno = EINVAL;
			rc = -1;
		} else {
			/* Like proc_dointvec: a short vector changes only the leading elements. */
			for (int i = n; i < e->nvals; i++)
				v[i] = cur[i];
			for (int i = 0; i < e->nvals; i++)
				if (v[i] < e->min || v[i] > e->max)
					rc = -1;
			if (rc == 0 && e->check && !e->check(&st->sysctl, v))
				rc = -1;
			if (rc == 0)
				memcpy(cur, v, sizeof(int) * (size_t)e->nvals);
			else
				errno = EINVAL;
		}
	}
	stack_unlock(st);
	return rc;
}

int ustack_sysctl_get(struct ustack *st, const char *name, char *buf, size_t len)
{
	const struct sysctl_entry *e = find(name);
	if (!e) {
		errno = ENOENT;
		return -1;
	}
	stack_lock(st);
	const uint8_t *base = (const uint8_t *)&st->sysctl;
	int n;
	if (e->kind == SC_FOKEY) {
		n = fokey_get(&st->sysctl, buf, len);
	} else if (e->kind == SC_STRING) {
		n = snprintf(buf, len, "%s", (const char *)(base + e->off));
	} else if (e->kind == SC_UINT) {
		n = snprintf(buf, len, "%u", *(const unsigned *)(const void *)(base + e->off));
	} else {
		const int *v = (const int *)(const void *)(base + e->off);
		n = 0;
		for (int i = 0; i < e->nvals; i++) {
			int fits = (size_t)n < len;
			int k = snprintf(fits ? buf + n : NULL, fits ? len - (size_t)n : 0, "%s%d",
					 i ? "\t" : "", v[i]);
			n += k;
		}
	}
	stack_unlock(st);
	if (n < 0 || (size_t)n >= len) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}
