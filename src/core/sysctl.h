/*
 * Sysctl storage.  The protocol code reads these fields directly (st->sysctl.tcp_syn_retries)
 * so a lookup by name happens only when a user reads or writes one.
 */
#ifndef USTACK_CORE_SYSCTL_H
#define USTACK_CORE_SYSCTL_H

struct ustack_sysctls {
	/* net.core */
	int somaxconn;
	int rmem_default, wmem_default, rmem_max, wmem_max;
	/* net.ipv4: IP */
	int ip_default_ttl;
	int ip_nonlocal_bind;
	int ip_local_port_range[2];
	int ip_unprivileged_port_start;
	int ip_no_pmtu_disc;
	int ipfrag_high_thresh, ipfrag_low_thresh, ipfrag_time;
	/* net.ipv4: ICMP */
	int icmp_echo_ignore_all, icmp_echo_ignore_broadcasts;
	int icmp_ratelimit, icmp_ratemask, icmp_msgs_per_sec, icmp_msgs_burst;
	/* net.ipv4.neigh.default (applies to every interface) */
	int neigh_base_reachable_time_ms, neigh_retrans_time_ms, neigh_delay_first_probe_time;
	int neigh_mcast_solicit, neigh_ucast_solicit, neigh_unres_qlen_bytes;
	int neigh_gc_stale_time, neigh_gc_thresh3;
	int fs_nr_open; /* descriptors a stack may hand out (Linux's cap on RLIMIT_NOFILE) */
	/* net.ipv4: TCP */
	int tcp_syncookies, tcp_max_syn_backlog;
	int tcp_stdurg;
	int tcp_syn_retries, tcp_synack_retries, tcp_syn_linear_timeouts;
	int tcp_timestamps, tcp_sack, tcp_dsack, tcp_window_scaling;
	int tcp_abort_on_overflow, tcp_fastopen, tcp_tw_reuse, tcp_fin_timeout;
	int tcp_max_tw_buckets, tcp_rfc1337;
	int tcp_rmem[3], tcp_wmem[3];
	char tcp_congestion_control[16];
	int tcp_keepalive_time, tcp_keepalive_intvl, tcp_keepalive_probes, tcp_retries2;
	int tcp_orphan_retries;
	int tcp_tw_reuse_delay;
	int tcp_reordering, tcp_max_reordering, tcp_moderate_rcvbuf, tcp_early_retrans;
	unsigned tcp_notsent_lowat;
	int tcp_pacing_ss_ratio, tcp_pacing_ca_ratio, tcp_min_tso_segs, tcp_tso_rtt_log;
	int tcp_retrans_collapse, tcp_recovery;
	int tcp_min_snd_mss;       /* floor under the peer's MSS (the SACK-panic fixes, 2019) */
	int tcp_invalid_ratelimit; /* ms between ACKs to out-of-window segments (tcp_oow_rate_limited) */
	int tcp_migrate_req;       /* a closing SO_REUSEPORT listener hands its connections on */
	int tcp_fastopen_blackhole_timeout_sec; /* active Fast Open's pause after a blackhole */
	int tcp_slow_start_after_idle; /* RFC 5681 §4.1: cwnd restarts after an RTO of idleness */
	int tcp_ecn, tcp_ecn_fallback; /* RFC 3168: 1 ask and accept, 2 accept (the default); fallback */
	/* net.ipv4.tcp_fastopen_key: the SipHash keys of the server's cookies, primary then
	 * backup, as Linux keeps them (16 bytes, the four words little-endian); 0 keys until
	 * written, or until the first listener enables Fast Open (tcp_fastopen_init_key_once) */
	int tcp_fastopen_nkeys;
	unsigned char tcp_fastopen_key[2][16];
};

void sysctl_defaults(struct ustack_sysctls *s);

#endif
