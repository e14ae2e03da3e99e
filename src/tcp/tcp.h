/*
 * TCP's connection machinery: sockets, request sockets, the hash tables that find them, and
 * the functions of the seed's walk-through, each named after the Linux function it mirrors.
 */
#ifndef USTACK_TCP_TCP_H
#define USTACK_TCP_TCP_H

#include <linux/errqueue.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ustack/stack.h>

#include "core/stack.h"
#include "core/slab.h"
#include "core/timer.h"
#include "net/net.h"
#include "wire/tcp.h"
#include "wire/ipv4.h"
#include "tcp/tcp_buf.h"

struct ustack;
struct netdev;

/* States by Linux's numbering (include/net/tcp_states.h), which glibc's <netinet/tcp.h>
 * shares (TCP_ESTABLISHED = 1 ... TCP_CLOSING = 11), so tools and TCP_INFO read the same. */
#include <netinet/tcp.h>
#define TCP_NEW_SYN_RECV 12

/* struct socket's states (include/uapi/linux/net.h): connect() answers from these. */
enum { SS_UNCONNECTED = 1, SS_CONNECTING, SS_CONNECTED, SS_DISCONNECTING };

#define TCP_TIMEOUT_INIT_MS 1000u /* RFC 6298 §2.1 initial RTO */
#define TCP_RTO_MAX_MS 120000u
/* TCP_MSS_DEFAULT (536, RFC 9293 §3.7.1: when the peer sends no MSS) comes from glibc */
#define TCP_INIT_CWND 10u         /* RFC 6928 */
#define TCP_INFINITE_SSTHRESH 0x7fffffffu
#define TCP_MIN_MSS 88u           /* Linux's floor for an MSS we accept or advertise */
#define TCPOLEN_TSTAMP_ALIGNED 12u /* the timestamp option with its two NOPs */
#define TCP_MAX_SYNCNT 127
#define TCP_TIMEOUT_MIN_MS 2u /* 2 jiffies at HZ=1000 */
#define TCP_RTO_MIN_MS 200u       /* Linux's floor for the RTO */
#define TCP_DELACK_MAX_MS 200u
#define TCP_DELACK_MIN_MS 40u
#define TCP_TIMEWAIT_LEN_MS 60000u /* 2·MSL as Linux keeps it */
#define TCP_QUICKACKS 16u
#define TCP_ATO_MIN_MS 40u        /* the delayed ACK's shortest timeout (HZ / 25) */

/* Both full sockets and request sockets live in the established hash, keyed by 4-tuple,
 * as in Linux (request sockets are TCP_NEW_SYN_RECV entries of the ehash).  A chain's links
 * are words that point at the next entry and say a little about it (inet_hashtables.c, "Link
 * words"): follow one with inet_ehash_next. */
struct ehash_node {
	uintptr_t next;        /* a link word; its bit 0 says this entry is in the table */
	uint32_t laddr, raddr; /* host order */
	uint16_t lport, rport;
	uint8_t state;         /* TCP_NEW_SYN_RECV marks a request_sock, TCP_TIME_WAIT a timewait */
	/* what would be padding, used by a TIME_WAIT entry (inet_timewait_sock) only */
	uint8_t tw_flags, tw_rcv_wscale, tw_tos;
};

struct sock;

/*
 * A connection in TIME_WAIT (Linux's inet_timewait_sock with tcp_timewait_sock): what is left
 * of a connection once both FINs are acknowledged, kept 2·MSL (60 s) to answer a retransmitted
 * FIN and to keep old duplicates of this 4-tuple out of the next connection.  Linux swaps the
 * 2 KB socket for a 256-byte timewait socket (tcp_time_wait → inet_twsk_alloc); ustack keeps
 * 64 bytes, so a million cost 64 MB: the hash node (with three bytes of flags, window scale and
 * TOS in what would be its padding), the death row's links as pool indices, and the few
 * numbers an ACK, PAWS, a SYN reopening the connection and tcp_tw_reuse need.  The timestamp
 * offset is recomputed from its keyed hash rather than kept; the ACK's window is kept scaled.
 */
#define TW_TSTAMP 1u     /* timestamps were on: ts_recent and its stamp mean something */
#define TW_TS_OFF 2u     /* our timestamps carry the per-pair random offset */
#define TW_REUSE 4u      /* SO_REUSEADDR: bind() may take the port over */
#define TW_REUSEPORT 8u  /* SO_REUSEPORT */
#define TW_FW2 16u       /* tw_substate FIN_WAIT2: an orphan waiting for the peer's FIN */
#define TW_CONNECT_BIND 32u /* the socket had its port from connect() (tw_connect_bind) */
struct inet_timewait_sock {
	struct ehash_node node;    /* state TCP_TIME_WAIT */
	uint32_t dr_next, dr_prev; /* the death row, oldest first: pool indices, 0 for none */
	uint32_t expires_ms;       /* when it goes (tcp_clock_ms) */
	uint32_t snd_nxt, rcv_nxt;
	uint32_t ts_recent;
	uint32_t last_oow_ack_ms;  /* tw_last_oow_ack_time, plus one: 0 for none */
	uint16_t ts_recent_stamp;  /* seconds (mod 2^16) ts_recent was taken */
	uint16_t rcv_wnd;          /* the window field of our ACKs (tw_rcv_wnd >> tw_rcv_wscale) */
	uint8_t spare[8];          /* free since the hash lost its back pointers: an entry stays one
				    * cache line, and a pool chunk a power of two of them */
};

/*
 * A request socket: what a listener remembers of a half-open connection between SYN and
 * final ACK.  Deliberately small — a SYN flood's cost per entry (see bench/).
 */
struct request_sock {
	struct ehash_node node;
	struct sock *listener;
	uint32_t snt_isn, rcv_isn;
	uint32_t ts_recent, ts_off;
	struct utimer timer;
	uint16_t mss;         /* the peer's MSS option, or TCP_MSS_DEFAULT */
	uint8_t snd_wscale, rcv_wscale;
	uint8_t num_retrans, num_timeout;
	uint8_t wscale_ok : 1, sack_ok : 1, tstamp_ok : 1, acked : 1;
	uint8_t cookie : 1;   /* rebuilt from a SYN cookie (syncookies.c): never hashed, no timer */
	uint8_t ecn_ok : 1;   /* the SYN asked for ECN (ECE and CWR) and we agree (RFC 3168 §6.1.1) */
	uint32_t last_oow_ack_ms; /* rate limit for SYN-ACKs to retransmitted SYNs */
	uint32_t rcv_wnd;         /* the window our SYN-ACK offered */
	uint32_t snt_synack_us;   /* low bits of the stack clock when the SYN-ACK left: the RTT */
};

/* A Fast Open cookie (RFC 7413 §4.1.1) as Linux's struct tcp_fastopen_cookie: len -1 when
 * there is none, 0 for a cookie request, else 4..16 bytes; exp when it travels in the
 * experimental option 254/0xF989. */
struct tcp_fastopen_cookie {
	int8_t len;
	bool exp;
	uint8_t val[TCP_FASTOPEN_COOKIE_MAX];
};

/* The data of a sendto(MSG_FASTOPEN) or of the first write after TCP_FASTOPEN_CONNECT while
 * the SYN that may carry it is built (Linux's tcp_fastopen_request); it lives on the caller's
 * stack for the length of that call. */
struct tcp_fastopen_request {
	struct tcp_fastopen_cookie cookie; /* what the SYN carries: -1 none, 0 a request */
	const uint8_t *data;
	size_t size;   /* bytes offered */
	size_t copied; /* bytes the SYN took */
};

/* A listener's Fast Open state (fastopen_queue in Linux's request_sock_queue), allocated when
 * TCP_FASTOPEN (or net.ipv4.tcp_fastopen's 0x400) first gives it a queue. */
struct tfo_rst { /* a child the peer reset before its handshake ended: counted for 60 s */
	struct tfo_rst *next;
	uint64_t expires;
};
struct fastopen_queue {
	int max_qlen;  /* TCP_FASTOPEN's value: children in SYN_RECV at most */
	int qlen;      /* children still in SYN_RECV, and the reset ones not yet expired */
	struct tfo_rst *rst_head, *rst_tail;
	int nkeys;     /* TCP_FASTOPEN_KEY: this listener's own keys; 0: the sysctl's */
	uint8_t key[2][16];
};

/* A port in use, and the sockets holding it (Linux's inet_bind_bucket). */
/* The TIME_WAIT entries of a port that share an address and SO_REUSEADDR/SO_REUSEPORT
 * flags, counted: what bind() must not take over (inet_timewait_sock.c). */
struct tw_bind_row {
	struct tw_bind_row *next;
	uint32_t laddr;
	uint8_t reuse, reuseport;
	uint32_t count;
};

/* tb->fastreuseport (Linux's FASTREUSEPORT_*) */
#define FASTREUSEPORT_ANY 1    /* every owner set SO_REUSEPORT */
#define FASTREUSEPORT_STRICT 2 /* ... those on fast_rcv_saddr (or all, if it is the wildcard) */

struct bind_bucket {
	struct sock *owners;
	uint16_t port;
	/* Linux's tb->fastreuse and fastreuseport: -1 in a bucket connect() made (shared by
	 * 4-tuple); else what every bind() and listen() of the port so far allows a newcomer
	 * without walking the owners (inet_csk_update_fastreuse, inet_connection_sock.c) */
	int8_t fastreuse, fastreuseport;
	uint32_t fast_rcv_saddr;
	uint32_t nowners; /* sockets holding the port: on the owners list, or counted in nconn */
	/* its holders, sockets and TIME_WAIT entries, that connect() did not bind: with none
	 * left, the flags go back to -1 (inet_bind_bucket_release) */
	uint32_t nbind : 31;
	/* TIME_WAIT entries hold the port: their rows hang off the page (bhash_page.tw_rows), out
	 * of the bucket, which connect() and close() touch and so is kept to half a line */
	uint32_t has_tw : 1;
	/* Sockets connect() bound here, counted, not listed, while their address and flags are
	 * the row's (those of the first such socket; inet_bind_hash_connect) */
	uint32_t nconn : 30;
	uint32_t conn_reuse : 1, conn_reuseport : 1;
	uint32_t conn_laddr;
};
_Static_assert(sizeof(struct bind_bucket) == 32, "two bind buckets to a cache line");

/* A range the peer has SACKed (the sender's scoreboard, tcp_sack.c). */
#define TCP_SACK_SLOTS 8
struct sack_range {
	uint32_t start, end;
};

struct epitem;
struct eventpoll;

/* MSG_ZEROCOPY (tcp/zerocopy.c): a send's id and the end of its data */
struct zc_pending {
	uint32_t id, end;
};
#define TCP_ZC_MAX 1024u /* pending zerocopy sends per socket */

/* A ring of n elements of `size` bytes from head, copied to the front of a new array of
 * newcap (the growth of the write queue's, zerocopy's and the error queue's rings); NULL when
 * memory is short, the old ring untouched. */
static inline void *ring_regrow(const void *old, size_t size, uint32_t head, uint32_t n, uint32_t cap,
				uint32_t newcap)
{
	uint8_t *v = malloc((size_t)newcap * size);
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		memcpy(v + (size_t)i * size, (const uint8_t *)old + (size_t)((head + i) % cap) * size, size);
	return v;
}

/* One message on a socket's error queue (tcp/ip_sockglue.c): an skb of Linux's
 * sk_error_queue with its sock_exterr_skb — the extended error, and what
 * recvmsg(MSG_ERRQUEUE) returns with it. */
struct sk_err_msg {
	struct sock_extended_err ee;
	uint32_t offender;   /* SO_EE_OFFENDER's address (host order); 0: none */
	uint32_t name_addr;  /* msg_name: the quoted packet's destination (host order); 0: none */
	uint16_t name_port;  /* ... and its port (host order) */
	uint32_t plen;       /* payload bytes: an ICMP error's quote from the transport header on, a
	                      * timestamped frame or data */
	uint8_t *payload;
	uint64_t tstamp_us;  /* SCM_TIMESTAMPING's software time (the stack's wall clock, µs) */
};
#define TCP_URG_VALID 0x0100  /* tp->urg_data: the byte is here (its value in the low 8 bits) */
#define TCP_URG_NOTYET 0x0200 /* a pointer came, its byte has not */
#define TCP_URG_READ 0x0400   /* recv(MSG_OOB) took it */
#define SK_ERRQ_MAX 256u
/* SO_TIMESTAMPING's option numbers (= SCM_TIMESTAMPING's), old and 64-bit-time; glibc's
 * SO_TIMESTAMPING is the old one on x86-64 */
#define USTACK_SO_TIMESTAMPING_OLD 37
#define USTACK_SO_TIMESTAMPING_NEW 65
/* SOF_TIMESTAMPING_TX_{HARDWARE,SOFTWARE,SCHED,ACK,COMPLETION}: the flags a write records */
#define SK_TS_TX_RECORD_MASK (1u | 2u | (1u << 8) | (1u << 9) | (1u << 18)) /* messages other than zerocopy's kept on one error queue */

/* What few sockets use, allocated on first use (sk->ext): MSG_ZEROCOPY's ids, the error
 * queue, urgent data, SO_TIMESTAMPING, and options kept for the application. */
struct sock_ext {
	uint64_t cookie;         /* sk_cookie (sock_gen_cookie): 0 until first asked, then never reused */
	int rcvlowat;            /* SO_RCVLOWAT (sk_rcvlowat); 0 stands for Linux's default, 1 */
	int bound_dev_if;        /* SO_BINDTODEVICE / SO_BINDTOIFINDEX; 0: any device */
	uint32_t mark;           /* SO_MARK: kept for the application (ustack has no fwmark routing) */
	uint32_t priority;       /* SO_PRIORITY of what is sent (ustack has no qdisc to apply it) */
	/* urgent data (tcp_urg.c): tp->snd_up while sk->urg_mode; the byte the peer marked */
	uint32_t snd_up;         /* one past the last urgent byte written (BSD's pointer) */
	uint32_t urg_seq;        /* the received urgent byte's sequence number */
	uint16_t urg_data;       /* 0, TCP_URG_NOTYET, TCP_URG_VALID | the byte, or TCP_URG_READ */
	uint32_t tsflags;        /* SO_TIMESTAMPING (sk_tsflags) */
	uint32_t tskey;          /* OPT_ID's base: snd_una, or write_seq with OPT_ID_TCP */
	bool tstamp_new;         /* set through SO_TIMESTAMPING_NEW: cmsgs use its number */
	bool ts_used;            /* some write asked for timestamps: records may carry keys */
	uint32_t zckey;          /* the next zerocopy notification id */
	struct zc_pending *pend; /* zerocopy sends not yet acknowledged, oldest first */
	uint16_t head, n, cap;
	uint16_t eq_head, eq_n, eq_cap;
	struct sk_err_msg *errq; /* the error queue (sk_error_queue), oldest first */
};

/* One skb of the write queue (tcp_write_queue.c): where it ends, and its marks. */
#define TCP_SKB_PSH 1u /* tcp_mark_push */
#define TCP_SKB_EOR 2u /* MSG_EOR: nothing joins it */
#define TCP_SKB_TS_SCHED 4u  /* SO_TIMESTAMPING: its byte tskey wants SCM_TSTAMP_SCHED, */
#define TCP_SKB_TS_SND 8u    /* ... SCM_TSTAMP_SND, */
#define TCP_SKB_TS_ACK 16u   /* ... SCM_TSTAMP_ACK (shinfo->tx_flags, txstamp_ack) */
#define TCP_SKB_TS_ANY (TCP_SKB_TS_SCHED | TCP_SKB_TS_SND | TCP_SKB_TS_ACK)
struct tcp_skb_rec {
	uint32_t end;
	uint32_t tskey; /* the last byte of the last write that asked for timestamps */
	uint8_t flags;
	uint8_t nfrags; /* a MSG_ZEROCOPY skb's page fragments (at most MAX_SKB_FRAGS); 0: copied */
};
#define TCP_MAX_SKB_FRAGS 17u

/* A MSG_ZEROCOPY write's page fragments, as Linux pins them (zerocopy_fill_skb_from_iter):
 * each iovec's pages, a page continuing the previous fragment merged into it. */
struct tcp_zc_frags {
	const uint32_t *len; /* bytes of each fragment, in order */
	uint32_t n;
};

/* When a run of data was sent (tcp_recovery.c's transmit log). */
struct tcp_tx_stamp {
	uint32_t start, end;
	uint64_t t_us;
	bool retrans;
};

/* CUBIC's per-connection state (bictcp in Linux's tcp_cubic.c), in segments and ms. */
struct cubic_state {
	uint32_t cnt;            /* segments ACKed per one-segment increase */
	uint32_t last_max_cwnd;  /* W_max */
	uint32_t last_cwnd;      /* cwnd when cnt was last computed, and when (bictcp_update */
	uint32_t last_time_ms;   /*   recomputes only on a change or every HZ/32) */
	uint32_t epoch_start_ms; /* start of the current growth epoch, 0 = none */
	uint32_t k_ms;           /* K: time to grow back to W_max */
	uint32_t origin_point;
	uint32_t tcp_cwnd;       /* what Reno would have (TCP-friendly region) */
	uint32_t ack_cnt;
	uint32_t delay_min_us;   /* the least RTT since the last loss (HyStart's and the curve's) */
	/* HyStart (tcp_cubic.c's hystart_update): the round, its ACK train, its least RTT */
	uint32_t round_start_us, last_ack_us, end_seq, curr_rtt_us;
	uint8_t sample_cnt;      /* RTT samples this round, up to HYSTART_MIN_SAMPLES */
	uint8_t found;           /* slow start ended by HyStart: no more rounds until a loss */
};

struct sock;
struct ustack;
struct tcp_cong_ops {
	const char *name;
	void (*init)(struct ustack *st, struct sock *sk);
	uint32_t (*ssthresh)(struct ustack *st, struct sock *sk); /* on loss: the new ssthresh */
	void (*cong_avoid)(struct ustack *st, struct sock *sk, uint32_t acked);
	/* CA_EVENT_TX_START: data goes out with nothing in flight, after idle_ms of idleness */
	void (*tx_start)(struct sock *sk, uint32_t idle_ms);
	/* pkts_acked: an ACK delivered data; rtt_us is its newest segment's RTT, -1 if unknown */
	void (*pkts_acked)(struct ustack *st, struct sock *sk, int32_t rtt_us);
	/* set_state(TCP_CA_Loss): a retransmission timeout */
	void (*set_loss)(struct ustack *st, struct sock *sk);
};

/*
 * A socket.  Its members are grouped as Linux layers them — sock (the generic socket), then
 * inet_connection_sock (a connection-oriented socket: listener queues, retransmission timer),
 * then tcp_sock — and within each group ordered for packing (eight-byte members, then four,
 * two, one), so that the groups read as units and the struct stays within 1 KB (1024 bytes on
 * x86-64; `pahole -C sock` shows the holes).  Parts that work as a unit are named structs, as
 * Linux names them: the accept queue (icsk_accept_queue), the timers, RACK (tp->rack), PRR,
 * the keepalive options.
 */
struct sock {
	/* ---- sock: identity, the descriptor, socket-level options and errors ---- */
	struct ehash_node node;  /* laddr/lport/raddr/rport and state */
	struct sock *bind_next;  /* owners of the same bind bucket */
	struct sock **bind_pprev; /* ... and what points here: removal in O(1); NULL with tb set:
				   * counted in the bucket's connect() row instead */
	struct bind_bucket *tb;
	/* A socket is on the listening hash while it listens, on an accept queue while it is a
	 * child nobody has accepted: never both, so the two links share their place. */
	union {
		struct sock *lnext;        /* listener hash chain */
		struct sock *acceptq_next; /* a child's place in its listener's accept queue */
	};
	struct epitem *ep_items; /* epoll items watching this socket (socket/epoll.c) */
	struct sock_ext *ext;    /* zerocopy ids, the error queue: NULL until first needed */
	struct ustack_route_result rt;
	int fd;                  /* -1 once closed by the application */
	int err;                 /* sk_err: reported once by SO_ERROR or the next call */
	int soft_err;
	int rcvbuf, sndbuf;
	int linger;              /* SO_LINGER: -1 off, else seconds */
	uint32_t rcvtimeo, sndtimeo; /* SO_RCVTIMEO/SO_SNDTIMEO (sk_rcvtimeo) in ms: SK_TIMEO_NONE
	                          * waits for ever, 0 not at all */
	uint16_t inet_id;
	uint8_t ss;              /* the socket's SS_* state, as struct socket keeps it in Linux */
	bool nonblock, reuseaddr, bound_addr, bound_port, hashed, listening_hashed;
	bool shut_rd, shut_wr;
	bool dead;               /* sk_free ran; the memory waits for request sockets or sleepers */
	uint16_t refcnt;         /* callers asleep on it (sk_hold); request sockets count apart */
	bool connect_bind : 1;   /* connect() chose the port (SOCK_CONNECT_BIND) */
	bool rcvbuf_locked : 1;  /* SO_RCVBUF was set: no autotuning (SOCK_RCVBUF_LOCK) */
	bool sndbuf_locked : 1;  /* SO_SNDBUF was set: the send ring does not grow */
	bool keepalive : 1;      /* SO_KEEPALIVE */
	bool reuseport : 1;      /* SO_REUSEPORT: listeners share the port, by 4-tuple hash */
	bool bind_address_no_port : 1; /* IP_BIND_ADDRESS_NO_PORT: bind() leaves the port to connect() */
	bool zerocopy : 1;       /* SO_ZEROCOPY */
	bool lingering : 1;      /* close() waits in sk_stream_wait_close: do not free on tcp_done */
	bool wait_expired : 1;
	bool recverr : 1;        /* IP_RECVERR: ICMP errors are hard errors and go on the error queue */
	bool freebind : 1;       /* IP_FREEBIND: bind() to an address not (yet) ours */
	bool transparent : 1;    /* IP_TRANSPARENT: the same, for a transparent proxy */
	bool oobinline : 1;      /* SO_OOBINLINE: urgent data stays in the stream */
	bool broadcast : 1;      /* SO_BROADCAST, SO_DONTROUTE, SO_DEBUG: kept and read back (no */
	bool dontroute : 1;      /*   meaning for TCP in Linux beyond SO_DONTROUTE's on-link route */
	bool sodebug : 1;        /*   lookup, which ip_route_connect applies) */
	bool urg_mode : 1;       /* tcp_urg_mode: urgent data sent and not yet acknowledged */
	uint8_t tos;             /* IP_TOS (its ECN bits are the connection's, set per segment) */
	uint8_t ttl;             /* IP_TTL; 0: net.ipv4.ip_default_ttl */
	uint8_t pmtudisc;        /* IP_MTU_DISCOVER: IP_PMTUDISC_WANT (DF, path MTU discovery) by default */
	/* (tcp_sock's, here where the sock group's bytes leave room) */
	uint32_t notsent_lowat;  /* TCP_NOTSENT_LOWAT; 0: net.ipv4.tcp_notsent_lowat (as Linux) */

	/* ---- inet_connection_sock: the listener's queues, the timers, retransmission ---- */
	/* the listener's queues (icsk_accept_queue, Linux's request_sock_queue) */
	struct request_sock_queue {
		struct sock *head, *tail; /* children waiting for accept(), oldest first */
		struct fastopen_queue *fastopenq; /* bounds Fast Open children; NULL until enabled */
		int qlen;                 /* request sockets in the SYN queue */
	} accept_queue;
	struct sock *parent;     /* a child's listener until accept() */
	const struct tcp_cong_ops *ca_ops;
	uint64_t retrans_stamp;  /* µs: first (re)transmission of the SYN */
	uint64_t rto_deadline;   /* µs: when the RTO armed last would fire */
	/* the timers (icsk_retransmit_timer, icsk_delack_timer, sk_timer) */
	struct {
		struct utimer retransmit; /* SYN, SYN-ACK, RTO, loss probe, RACK's reordering */
		struct utimer delack;
		struct utimer sk;         /* TIME_WAIT, FIN_WAIT2 of an orphan, keepalive */
		struct utimer wait;       /* the lingering close's deadline, on the stack's clock */
	} timers;
	int max_ack_backlog;     /* listen(fd, n), capped at net.core.somaxconn */
	int ack_backlog;         /* children waiting in the accept queue */
	uint32_t rto_ms;
	uint32_t user_timeout_ms;/* TCP_USER_TIMEOUT; 0: off */
	uint32_t synq_overflow_ms; /* a listener's last cookie SYN-ACK (tcp_synq_overflow); 0: never */
	uint8_t retransmits, backoff, total_rto;
	uint8_t syn_retries;     /* TCP_SYNCNT; 0 = net.ipv4.tcp_syn_retries */
	uint8_t probes_out;      /* keepalive or zero-window probes unanswered */
	bool ca_setsockopt;      /* chosen by TCP_CONGESTION rather than the sysctl */
	bool synflood_warned;    /* the "Possible SYN flooding" line was logged for this listener */
	bool in_cwr;             /* icsk_ca_state TCP_CA_CWR: the window comes down once for an ECN echo */

	/* ---- tcp_sock: sequence space and negotiated options ---- */
	uint32_t iss, irs;
	uint32_t snd_una, snd_nxt, snd_wnd;
	uint32_t rcv_nxt, rcv_wnd;
	uint32_t ts_recent, ts_off;
	uint32_t ts_recent_stamp_ms; /* when ts_recent was last updated (tcp_clock_ms) */
	uint16_t advmss, mss_cache, mss_clamp, user_mss;
	uint8_t snd_wscale, rcv_wscale;
	bool wscale_ok, sack_ok, tstamp_ok;
	bool iss_set;            /* the ISN was chosen by TIME_WAIT reuse (tcp_twsk_unique) */

	/* ---- tcp_sock: Fast Open (tcp_fastopen.c); the flags first, in the sequence state's hole ---- */
	uint8_t fastopen_connect : 1;   /* TCP_FASTOPEN_CONNECT */
	uint8_t fastopen_no_cookie : 1; /* TCP_FASTOPEN_NO_COOKIE */
	uint8_t defer_connect : 1;      /* connect() deferred to the first write (DEFER_CONNECT) */
	uint8_t syn_fastopen : 1;       /* the SYN carried a Fast Open option */
	uint8_t syn_fastopen_exp : 1;   /* ... the experimental one */
	uint8_t syn_fastopen_ch : 1;    /* the blackhole pause had expired: reset it on success */
	uint8_t syn_data : 1;           /* the SYN carried data */
	uint8_t syn_data_acked : 1;     /* ... and the SYN-ACK acknowledged all of it */
	uint8_t fastopen_client_fail : 2; /* TFO_* of tcpi_fastopen_client_fail */
	uint8_t syn_fastopen_child : 1; /* a passive Fast Open made this socket (TCPI_OPT_TFO_CHILD) */
	uint8_t ofo_lone_fin : 1;       /* a FIN without data came out of order (the blackhole check) */
	/* (the receive side's, placed here where the pointers below leave room) */
	uint32_t ato_ms;         /* icsk_ack.ato: the delayed ACK's timeout, adapted to the data's pace */
	struct tcp_fastopen_request *fastopen_req; /* an active open's SYN data, while it is built */
	struct sock *fastopen_rsk; /* a passive child before its final ACK: its listener (held) */

	/* ---- tcp_sock: the send side (tcp.c, tcp_output.c, tcp_write_queue.c) ---- */
	struct tcp_buf sndq;     /* bytes snd_una .. write_seq */
	struct tcp_skb_rec *wq;  /* the write queue's skbs from wq_start (tcp_write_queue.c) */
	struct tcp_tx_stamp *txlog; /* send times of unacknowledged data, oldest first */
	uint32_t write_seq;      /* sequence number after the last byte written */
	uint32_t snd_max;        /* highest sequence number sent (snd_nxt may go back after a timeout) */
	uint32_t snd_wl1, snd_wl2, max_window;
	uint32_t wq_start;
	uint32_t pushed_seq;     /* write_seq at the last PSH mark (forced_push) */
	uint32_t snd_limit;      /* the send buffer (sk_sndbuf): a new skb starts only below it */
	uint32_t snd_sml;        /* end of the last small segment sent (Minshall's Nagle) */
	uint32_t last_seg_seq;   /* start of the newest segment sent (what a probe resends) */
	uint16_t wq_head, wq_n, wq_cap;
	uint16_t txlog_head, txlog_n, txlog_cap;
	bool fin_queued;         /* close/shutdown: a FIN follows write_seq */
	bool nodelay;
	bool cork;               /* TCP_CORK: only full segments go until uncorked */
	bool more;               /* tcp_push of a MSG_MORE send: a partial tail waits */

	/* ---- tcp_sock: the receive side (tcp.c, tcp_input.c, tcp_ofo.c) ---- */
	struct tcp_buf rcvq;     /* in-order bytes not yet read */
	struct ofo_node *ofo;    /* out-of-order runs, in the receive ring past rcvq (tcp_ofo.c) */
	struct ofo_node *ofo_last; /* the highest run (Linux's ooo_last_skb) */
	uint64_t bytes_read;     /* copied to the application (copied_seq) */
	uint32_t rcvq_space_seq;  /* tcp_rcv_space_adjust's last measurement: bytes_read then (low */
	uint32_t rcvq_space_time; /* 32 bits; differences wrap safely), and st->now (µs, ditto) */
	uint64_t rcv_tstamp;     /* µs: when the peer last sent us something acceptable */
	struct sack_range rx_sack[4]; /* SACK blocks we report, newest first (selective_acks) */
	uint32_t rcv_limit;      /* what windows may offer of rcvq (the rest absorbs window creep) */
	uint32_t rcvq_space;     /* bytes the application read in the last receiver RTT */
	uint32_t rcv_rtt_us;     /* the receiver's RTT estimate (rcv_rtt_est) */
	uint32_t ofo_bytes;      /* bytes those runs hold */
	uint32_t ofo_runs;
	uint32_t rcv_adv;        /* right edge of the window we advertised (never shrinks) */
	uint32_t rcv_ssthresh;   /* the window grows up to this, which in-order data raises */
	uint32_t quickack;       /* ACK every segment for this many more (Linux's quick-ack) */
	uint32_t rcv_unacked;    /* bytes received since our last ACK */
	uint32_t last_oow_ack_ms;/* challenge/duplicate ACK rate limit (tcp_invalid_ratelimit) */
	uint8_t rx_nsack;
	bool data_init;          /* established: sequence state for data is set up */
	bool fin_rcvd;
	bool recvmsg_inq;        /* TCP_INQ: recvmsg reports what is left to read (TCP_CM_INQ) */
	bool oow_ack_sent;
	uint8_t ecn_flags;       /* TCP_ECN_*: RFC 3168 ECN negotiated, and where its signals stand */
	bool ack_now;            /* ICSK_ACK_NOW: the next data is ACKed at once, pingpong or not */
	uint8_t pingpong;        /* replies follow requests: delay ACKs to ride on the replies */

	/* ---- tcp_sock: loss recovery — SACK scoreboard, RACK (RFC 8985), PRR (RFC 6937), TLP ----
	 * (connection state only, rack to tlp_retrans: tcp_disconnect zeroes the range) */
	struct tcp_rack {         /* RACK (RFC 8985): loss by time (tcp_recovery.c) */
		uint64_t mstamp;  /* when the most recently sent data delivered was sent */
		uint32_t end_seq, rtt_us;
		uint32_t lost_edge; /* holes below it are lost (RACK's marks, as one edge) */
		bool on;          /* net.ipv4.tcp_recovery & 1, read at each ACK */
		bool advanced;
	} rack;
	struct sack_range sacked[TCP_SACK_SLOTS]; /* SACKed above snd_una, sorted, disjoint */
	struct {                  /* PRR (RFC 6937): recovery's window, in segments */
		uint32_t prior_cwnd, delivered, out;
	} prr;
	uint32_t high_rxt;       /* RFC 6675 HighRxt: end of the last hole retransmitted */
	uint32_t high_seq;       /* snd_nxt when recovery began (RFC 6582) */
	uint32_t tlp_high_seq;   /* snd_max when the probe went; 0: none outstanding */
	uint16_t reordering;     /* duplicate threshold, in segments (tp->reordering) */
	uint8_t dupacks;
	uint8_t nsacked;
	bool in_recovery;
	bool reo_pending;         /* retrans_timer is RACK's reordering timer */
	bool tlp_pending;        /* retrans_timer is the loss probe's, not the RTO's */
	bool tlp_retrans;        /* the probe was a retransmission */

	/* ---- tcp_sock: RTT, congestion control, keepalive ---- */
	struct cubic_state cubic;
	uint8_t chrono_type;     /* tcp_chrono: 0 none, 1 busy, 2 rwnd-limited, 3 sndbuf-limited */
	bool cwnd_limited;       /* the last send stopped at cwnd */
	bool is_cwnd_limited;    /* tcp_cwnd_validate: cwnd limited sending in this window */
	uint64_t probe_stamp;    /* µs: first unanswered zero-window probe */
	uint32_t srtt_us, rttvar_us;   /* RFC 6298, in µs (srtt 0: no sample yet) */
	uint32_t rtt_min_us;
	uint32_t cwnd, ssthresh;
	uint32_t cwnd_cnt;       /* congestion avoidance: ACKed segments toward the next cwnd step */
	uint32_t max_packets_out;/* tcp_cwnd_validate: ... else the most segments in flight in it */
	uint32_t cwnd_usage_seq; /* the window those describe ends here */
	uint32_t chrono_start_ms;
	uint32_t chrono_stat[3]; /* ms spent busy, rwnd-limited, sndbuf-limited */
	struct {                  /* TCP_KEEPIDLE, TCP_KEEPINTVL (s), TCP_KEEPCNT; 0: the sysctl */
		uint16_t idle, intvl;
		uint8_t cnt;
	} keepalive_opts;
	uint16_t dsack_len;      /* a D-SACK to send, [dsack_start, + dsack_len); 0: none */

	/* ---- tcp_sock: TCP_INFO's accounting (RFC 4898's names, as Linux keeps them) ----
	 * (connection state only, to the end: tcp_disconnect zeroes it) */
	uint64_t bytes_acked, bytes_received;
	uint64_t bytes_sent, bytes_retrans;
	uint64_t lsndtime, lrcvtime; /* µs: last data sent; last in-order data received (icsk_ack.lrcvtime) */
	uint32_t segs_out, segs_in, data_segs_out, data_segs_in;
	uint32_t rcv_ooopack, reord_seen, dsack_dups, delivered;
	uint32_t total_retrans;
	uint32_t dsack_start;    /* see dsack_len (the two fill the struct's holes) */
};

struct ofo_node;

/* The descriptor table (socket/file.c): sockets by descriptor, and FDT_LEVELS bitmaps, level
 * 0 one bit per descriptor in use, level n+1 one bit per full word of level n. */
#define FDT_LEVELS 4
#define BHASH_PAGE 256
#define BHASH_PAGES (65536 / BHASH_PAGE)
struct fdtable {
	struct sock **fds;
	uint64_t *bits[FDT_LEVELS];
	size_t cap;     /* slots in fds: a power of two, from 64 */
	size_t next_fd; /* every slot below is in use (Linux's next_fd) */
	size_t used;
};

/* A few freed connection rings of one size, for the next connection (tcp_rcv_ring). */
#define TCP_RING_CACHE 32
struct tcp_ring_cache {
	uint8_t *ring[TCP_RING_CACHE];
	uint32_t size;
	unsigned n;
};

/* A page of the bind hash: the buckets of BHASH_PAGE consecutive ports, in place, and which
 * of them are in use (inet_hashtables.c). */
struct bhash_page {
	uint64_t used[BHASH_PAGE / 64];
	struct bind_bucket b[BHASH_PAGE];
	struct tw_bind_row *tw_rows[BHASH_PAGE]; /* TIME_WAIT entries by address and flags */
};

struct tcp_state_tables {
	uintptr_t *ehash;           /* chains' heads: link words (inet_hashtables.c) */
	uint32_t ehash_mask;
	/* a doubling in progress (inet_hashtables.c, ehash_migrate): the old table's buckets below
	 * ehash_migrated are in ehash, the others still in ehash_old */
	uintptr_t *ehash_old;
	uint32_t ehash_old_mask, ehash_migrated;
	uint32_t ehash_count;       /* entries: the table doubles when they reach half its size */
	uint32_t ehash_secret;      /* inet_ehash_secret: keys the 4-tuple's hash */
	struct sock **lhash;       /* listeners, by port */
	struct bhash_page *bhash[BHASH_PAGES]; /* by port: pages made on first use */
	uint32_t table_perturb[256]; /* RFC 6056 algorithm 4's per-bucket offsets */
	struct fdtable fdt;         /* descriptors (socket/file.c) */
	struct kmem_cache sock_cache, reqsk_cache;
	struct tcp_ring_cache rcv_rings, snd_rings; /* freed rings of the common size (tcp.c) */
	unsigned nsocks, nreqsk;
	unsigned sleepers;          /* callers asleep in sk_wait_event */
	uint32_t wake_gen;          /* sk_wake calls: every blocked caller sleeps on this word
	                             * (stack_wait_gen), and a change wakes all */
	struct eventpoll **eps;     /* epoll instances (socket/epoll.c) */
	int neps;
	void (*ep_wake)(struct ustack *st, struct sock *sk); /* the socket layer's hook (sk_wake_sk) */
	struct ofo_node *ofo_free;  /* out-of-order run nodes kept for reuse (tcp_ofo.c) */
	unsigned ofo_nfree;
	/* tcp_cong_default's: the ops for the sysctl's name as it was when looked up (Linux keeps
	 * the pointer, set when the sysctl is written) */
	char cong_name[16];
	const struct tcp_cong_ops *cong_ops;
	struct tfo_metrics **tfo_cache; /* Fast Open cookies by destination (tcp_fastopen.c) */
	uint64_t tfo_active_disable_stamp; /* µs: active Fast Open paused then (blackhole) */
	unsigned tfo_active_disable_times; /* ... for the how-many-th time in a row */
	uint64_t sock_cookie_last;  /* the last cookie sock_gen_cookie gave */
	void (*wake_hook)(void *arg); /* ustack_set_sock_wake's, run by sk_wake */
	void *wake_hook_arg;
	/* TIME_WAIT (inet_timewait_sock.c): entries in chunks of a pool, by index; the death
	 * row, oldest first; one timer for its head */
	struct inet_timewait_sock **tw_chunks;
	uint32_t tw_nchunks, tw_free, tw_fresh, tw_count;
	uint32_t tw_head, tw_tail;  /* TIME_WAIT: all wait 60 s, so a FIFO */
	uint32_t fw2_head, fw2_tail; /* the FIN_WAIT2 substate: kept in order of expiry */
	struct utimer tw_timer;
	uint32_t tw_isn;            /* a SYN that reopens a TIME_WAIT connection: its ISN */
	unsigned undelivered;       /* orphans that still owe their peer data or a FIN */
	uint64_t undelivered_lost;  /* ... that ended without their FIN acknowledged */
};

#define LHASH_SIZE 256

/* ---- tcp_ipv4.c / inet_hashtables.c ---- */
int tcp_tables_init(struct ustack *st);
void tcp_tables_destroy(struct ustack *st);
void tcp_sockets_destroy(struct ustack *st);
struct ehash_node *inet_lookup_established(struct ustack *st, uint32_t laddr, uint16_t lport,
					   uint32_t raddr, uint16_t rport);
/* The listener for a segment from raddr:rport: the best address match, and within a
 * SO_REUSEPORT group the one the 4-tuple's hash picks (reuseport_select_sock). */
struct sock *inet_lookup_listener(struct ustack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
				  uint16_t rport, int dif);
void inet_ehash_insert(struct ustack *st, struct ehash_node *n);
/* A walk over every entry (diag, teardown): chains 0 .. inet_ehash_chains() - 1, the old
 * table's unmigrated ones included while the table doubles; a chain may be NULL (empty). */
uint32_t inet_ehash_chains(const struct tcp_state_tables *t);
struct ehash_node *inet_ehash_chain(const struct tcp_state_tables *t, uint32_t i);
/* The entry after n on its chain, or NULL. */
struct ehash_node *inet_ehash_next(const struct ehash_node *n);
void inet_ehash_remove(struct ustack *st, struct ehash_node *n);
int inet_hash_connect(struct ustack *st, struct sock *sk);
void inet_put_port(struct ustack *st, struct sock *sk);
void inet_bind_bucket_release(struct ustack *st, struct bind_bucket *b);
struct bind_bucket *inet_bind_bucket_find(struct ustack *st, uint16_t port);
struct bind_bucket *inet_bind_bucket_create(struct ustack *st, uint16_t port, int8_t fastreuse);
void inet_bind_hash(struct bind_bucket *b, struct sock *sk);
/* SO_REUSEADDR or SO_REUSEPORT changed on sk: a socket counted in its bucket's connect() row
 * whose flags are no longer the row's goes onto the owners list. */
void inet_bind_flags_changed(struct sock *sk);
/* Would the connect()ed sockets counted in b's row stop sk binding its port?  (The rule of
 * inet_csk_bind_conflict for a socket that does not listen.) */
bool inet_bind_conn_conflict(const struct sock *sk, const struct bind_bucket *b);
void inet_listen_hash(struct ustack *st, struct sock *sk);
void inet_listen_unhash(struct ustack *st, struct sock *sk);

/* ---- inet_connection_sock.c: binding, and the accept queue ---- */
int inet_csk_get_port(struct ustack *st, struct sock *sk, uint16_t port);
int inet_csk_listen_check_port(struct ustack *st, const struct sock *sk);
/* After a port is granted to sk (bind(), listen()): the bucket's fast-path flags. */
void inet_csk_update_fastreuse(struct bind_bucket *b, const struct sock *sk, bool listening);
void inet_csk_reqsk_queue_add(struct ustack *st, struct sock *lsk, struct sock *child);
struct sock *inet_csk_accept(struct ustack *st, struct sock *lsk);
void inet_csk_listen_stop(struct ustack *st, struct sock *lsk);
void inet_csk_acceptq_purge(struct ustack *st, struct sock *lsk);

/* inet_csk_reqsk_queue_is_full: the SYN queue holds backlog + 1 (> since Linux 6.x) */
static inline bool inet_csk_reqsk_queue_is_full(const struct sock *lsk)
{
	return lsk->accept_queue.qlen > lsk->max_ack_backlog;
}

/* sk_acceptq_is_full: so does the accept queue */
static inline bool sk_acceptq_is_full(const struct sock *lsk)
{
	return lsk->ack_backlog > lsk->max_ack_backlog;
}

/* ---- tcp_ipv4.c ---- */
extern const struct pernet_operations tcp_net_ops;
extern const struct pernet_operations sock_net_ops; /* socket/epoll.c */
int tcp_v4_connect(struct ustack *st, struct sock *sk, uint32_t daddr, uint16_t dport);
struct sock *tcp_v4_syn_recv_sock(struct ustack *st, struct request_sock *req, const struct tcp_repr *th);
void tcp_v4_reqsk_send_ack(struct ustack *st, struct request_sock *req);

/* ---- isn.c (net/core/secure_seq.c) ---- */
struct tcp_seq_and_ts_off {
	uint32_t seq, ts_off;
};
struct tcp_seq_and_ts_off secure_tcp_seq_and_ts_off(struct ustack *st, uint32_t laddr, uint32_t raddr,
						      uint16_t lport, uint16_t rport);
uint32_t secure_tcp_seq(struct ustack *st, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport);
uint32_t tcp_clock_ms(struct ustack *st);

/* ---- tcp_output.c ---- */
struct tcp_seg_out {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	struct tcp_opts opt;
	bool df;
	uint8_t tos;   /* the IP header's TOS byte: its low bits are the ECN field */
	uint8_t ttl;   /* 0: net.ipv4.ip_default_ttl */
	bool id_set;
	uint16_t id;
	const struct tcp_buf *payload; /* optional: plen bytes from off past its head */
	uint32_t off, plen;
	uint16_t urg;  /* the urgent pointer, with TCPHDR_URG in flags */
	uint16_t gso_size; /* a TSO packet of several segments of this size (USTACK_IF_TSO) */
};
/* A TSO packet's data at most: an IPv4 packet's 65535 bytes less IP and TCP headers. */
#define TCP_TSO_MAX (65535u - 20u - 60u)
int tcp_transmit(struct ustack *st, const struct tcp_seg_out *seg, const struct ustack_route_result *rt);
int tcp_connect(struct ustack *st, struct sock *sk);
int tcp_retransmit_syn(struct ustack *st, struct sock *sk);
/* A Fast Open child's SYN-ACK again (tcp_rtx_synack), before its final ACK */
int tcp_rtx_synack(struct ustack *st, struct sock *sk);

void tcp_send_ack(struct ustack *st, struct sock *sk);
/* The SYN-ACK of a request: with foc (len ≥ 0) a Fast Open cookie option; acknowledging
 * syn_data bytes of data beyond the SYN (a Fast Open child took them). */
int tcp_send_synack(struct ustack *st, struct request_sock *req, const struct tcp_fastopen_cookie *foc,
		    uint32_t syn_data);
/* tcp_openreq_init_rwin: the request's window and scale, from the route to its peer */
int tcp_openreq_init_rwin(struct ustack *st, struct request_sock *req, struct ustack_route_result *rt,
			  uint16_t *advmss);
/* Why a RST goes: Linux's enum sk_rst_reason (include/net/rstreason.h, 6.18), TCP's part, in
 * its order; tcp_send_reset prints the name (rst_reason_name). */
enum sk_rst_reason {
	SK_RST_REASON_NOT_SPECIFIED,
	SK_RST_REASON_NO_SOCKET,
	SK_RST_REASON_TCP_INVALID_ACK_SEQUENCE,
	SK_RST_REASON_TCP_RFC7323_PAWS,
	SK_RST_REASON_TCP_TOO_OLD_ACK,
	SK_RST_REASON_TCP_ACK_UNSENT_DATA,
	SK_RST_REASON_TCP_FLAGS,
	SK_RST_REASON_TCP_OLD_ACK,
	SK_RST_REASON_TCP_ABORT_ON_DATA,
	SK_RST_REASON_TCP_TIMEWAIT_SOCKET,
	SK_RST_REASON_INVALID_SYN,
	SK_RST_REASON_TCP_ABORT_ON_CLOSE,
	SK_RST_REASON_TCP_ABORT_ON_LINGER,
	SK_RST_REASON_TCP_ABORT_ON_MEMORY,
	SK_RST_REASON_TCP_STATE,
	SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT,
	SK_RST_REASON_TCP_DISCONNECT_WITH_DATA,
};
/* tcp_v4_send_reset(sk, skb, reason): the RST that answers segment th.  sk is the socket
 * Linux hands it (the listener, or the connection; NULL when none was found), which
 * tcp_send_reset's fields come from. */
void tcp_v4_send_reset_reason(struct ustack *st, const struct sock *sk, const struct ipv4_repr *ip,
			      const struct tcp_repr *th, enum sk_rst_reason reason);
/* ... with no socket and no reason, for callers that know neither */
void tcp_v4_send_reset(struct ustack *st, const struct ipv4_repr *ip, const struct tcp_repr *th);
/* tcp_send_active_reset(sk, priority, reason).  `state` is the one Linux's socket is in as the
 * RST goes, which tcp_send_reset prints: __tcp_close and tcp_disconnect move to TCP_CLOSE
 * first, the timers do not. */
void tcp_send_active_reset_reason(struct ustack *st, struct sock *sk, enum sk_rst_reason reason, int state);
/* ... as tcp_disconnect sends it (TCP_STATE, in TCP_CLOSE): an abort by the application */
void tcp_send_active_reset(struct ustack *st, struct sock *sk);
void tcp_select_initial_window(struct ustack *st, uint32_t space, uint32_t mss, uint32_t *rcv_wnd,
			       uint8_t *rcv_wscale, bool wscale_ok, uint32_t clamp);
/* the clamp a socket's receive buffer puts on its windows: half a locked SO_RCVBUF, else 0 */
static inline uint32_t tcp_rcvbuf_clamp(const struct sock *sk)
{
	return sk->rcvbuf_locked ? (uint32_t)sk->rcvbuf / 2 : 0;
}
uint16_t tcp_advmss(const struct ustack_route_result *rt);

/* ---- tcp_input.c ---- */
void tcp_v4_rcv(struct ustack *st, struct netdev *dev, const struct ipv4_repr *ip,
		const uint8_t *b, size_t len);
void tcp_set_state(struct ustack *st, struct sock *sk, int state);

/*
 * A blocking call's SO_RCVTIMEO/SO_SNDTIMEO: a timer on the stack's clock (so virtual time
 * drives it), kept on the caller's stack for the length of the call, that marks the wait
 * expired and wakes the sleepers.  Not armed for SK_TIMEO_NONE; a timeout of 0 means the call
 * does not wait at all (the caller treats it as non-blocking, as Linux's timeo == 0).
 */
#define SK_TIMEO_NONE UINT32_MAX
struct sk_timeo {
	struct utimer t;
	bool expired;
};
void sk_timeo_start(struct ustack *st, struct sk_timeo *to, uint32_t timeo_ms);
void sk_timeo_stop(struct ustack *st, struct sk_timeo *to);

/*
 * An orphan that still owes its peer data or our FIN — what a kernel goes on sending after
 * the process exits: closed by the application (no descriptor, no listener to hand it out),
 * in FIN_WAIT1, CLOSING or LAST_ACK, i.e. our FIN not yet acknowledged.
 */
static inline bool tcp_owes_peer(const struct sock *sk)
{
	return sk->fd < 0 && !sk->parent && !sk->dead &&
	       (sk->node.state == TCP_FIN_WAIT1 || sk->node.state == TCP_CLOSING || sk->node.state == TCP_LAST_ACK);
}
/* Keeps st->tcp->undelivered right across a change of sk's state or descriptor: owed is
 * tcp_owes_peer(sk) from before the change. */
void tcp_account_owing(struct ustack *st, struct sock *sk, bool owed);
/* SOCK_DEAD: the application let go and no close() waits on it (sock_orphan runs after
 * __tcp_close's linger) — tcp_orphan_retries bounds its retransmissions. */
static inline bool tcp_orphaned(const struct sock *sk)
{
	return sk->fd < 0 && !sk->parent && !sk->lingering;
}
void tcp_done(struct ustack *st, struct sock *sk, int err);
void tcp_sync_mss(struct ustack *st, struct sock *sk);
void tcp_rtt_estimator(struct sock *sk, uint32_t m_us);

/* ---- tcp_icmp.c ---- */
void tcp_v4_err(struct ustack *st, uint8_t type, uint8_t code, uint32_t info, uint32_t offender,
		const struct ipv4_repr *inner, const uint8_t *th, size_t len);

/* ---- tcp_input.c: the listener's SYN handler ---- */
void tcp_conn_request(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
		      const struct tcp_repr *th);
void tcp_rcv_state_process(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			   const struct tcp_repr *th);
/* one ACK to out-of-window segments per net.ipv4.tcp_invalid_ratelimit; true: hold it back
 * (and count it under skipped_mib) */
bool tcp_oow_rate_limited(struct ustack *st, struct sock *sk, const struct tcp_repr *th,
			  enum mib_id skipped_mib);

/* ---- tcp_minisocks.c ---- */
/* The child when the segment completed the handshake (it may carry data or a FIN too). */
struct sock *tcp_check_req(struct ustack *st, struct request_sock *req, const struct ipv4_repr *ip,
			   const struct tcp_repr *th);
void tcp_child_process(struct ustack *st, struct sock *child, const struct ipv4_repr *ip,
		       const struct tcp_repr *th);

/* ---- syncookies.c ---- */
bool tcp_syn_flood_action(struct ustack *st, struct sock *lsk);
uint32_t cookie_v4_init_sequence(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
				 const struct tcp_repr *th, uint16_t *mss);
uint32_t cookie_init_timestamp(const struct request_sock *req, uint32_t now_ms);
struct sock *cookie_v4_check(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
			     const struct tcp_repr *th);
/* tcp_minisocks.c: a child made from a request (or a cookie) becomes ESTABLISHED and joins
 * the accept queue; -1 when it could not (it is gone) */
int tcp_child_establish(struct ustack *st, struct sock *lsk, struct sock *child);

/* ECN (RFC 3168) as Linux keeps it in tp->ecn_flags */
#define TCP_ECN_OK 1          /* negotiated */
#define TCP_ECN_QUEUE_CWR 2   /* the next new data segment carries CWR */
#define TCP_ECN_DEMAND_CWR 4  /* a CE mark came: every segment carries ECE until the peer's CWR */
#define TCP_ECN_SEEN 8        /* an ECT or CE segment arrived (TCPI_OPT_ECN_SEEN) */
#define INET_ECN_MASK 3
#define INET_ECN_NOT_ECT 0
#define INET_ECN_ECT_0 2
#define INET_ECN_CE 3

/* ---- tcp_fastopen.c: TCP Fast Open (RFC 7413) ---- */
/* net.ipv4.tcp_fastopen's bits (include/net/tcp.h) */
#define TFO_CLIENT_ENABLE 0x1
#define TFO_SERVER_ENABLE 0x2
#define TFO_CLIENT_NO_COOKIE 0x4      /* data in the SYN without a cookie */
#define TFO_SERVER_COOKIE_NOT_REQD 0x200 /* accept SYN data without a cookie */
#define TFO_SERVER_WO_SOCKOPT1 0x400  /* every listener, without TCP_FASTOPEN */
#define TCP_FASTOPEN_COOKIE_SIZE 8    /* what ustack and Linux hand out: a SipHash */
#define MAX_TCP_OPTION_SPACE 40
#ifndef TCPI_OPT_TFO_CHILD
#define TCPI_OPT_TFO_CHILD 128 /* Linux 6.16: a passive Fast Open's child */
#endif
/* tcpi_fastopen_client_fail (enum tcp_fastopen_client_fail) */
enum { TFO_STATUS_UNSPEC, TFO_COOKIE_UNAVAILABLE, TFO_DATA_NOT_ACKED, TFO_SYN_RETRANSMITTED };

void tcp_fastopen_init_key_once(struct ustack *st);
int tcp_fastopen_queue_tune(struct ustack *st, struct sock *lsk, int backlog);
void tcp_fastopen_queue_free(struct sock *lsk);
int tcp_fastopen_set_key(struct sock *lsk, const uint8_t *key, size_t len);
size_t tcp_fastopen_get_key(const struct sock *lsk, uint8_t out[32]);
void tcp_fastopen_cookie_from_opts(const struct tcp_opts *o, struct tcp_fastopen_cookie *foc);
void tcp_fastopen_cookie_to_opts(const struct tcp_fastopen_cookie *foc, struct tcp_opts *o);
struct sock *tcp_try_fastopen(struct ustack *st, struct sock *lsk, const struct ipv4_repr *ip,
			      const struct tcp_repr *th, struct request_sock *req,
			      struct tcp_fastopen_cookie *foc);
bool tcp_fastopen_check_req(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			    const struct tcp_repr *th);
void tcp_rcv_synrecv_state_fastopen(struct ustack *st, struct sock *sk);
void reqsk_fastopen_remove(struct ustack *st, struct sock *sk, bool reset);
void tcp_fastopen_synack_timer(struct ustack *st, struct sock *sk);
bool tcp_fastopen_cookie_check(struct ustack *st, struct sock *sk, uint16_t *mss,
			       struct tcp_fastopen_cookie *cookie);
bool tcp_fastopen_defer_connect(struct ustack *st, struct sock *sk, struct tcp_fastopen_request *fo);
void tcp_fastopen_cache_set(struct ustack *st, const struct sock *sk, uint16_t mss,
			    const struct tcp_fastopen_cookie *cookie, bool syn_lost, uint8_t try_exp);
bool tcp_fastopen_active_detect_blackhole(struct ustack *st, struct sock *sk, bool expired);
void tcp_fastopen_active_disable_ofo_check(struct ustack *st, struct sock *sk);
void tcp_fastopen_cache_destroy(struct ustack *st);
struct ustack_tcp_metrics;
size_t tcp_metrics_fill(struct ustack *st, struct ustack_tcp_metrics *buf, size_t n);
size_t tcp_metrics_flush(struct ustack *st, uint32_t daddr, bool all);
/* tcp_passive_fastopen: a child that may send and be read before its handshake ends */
static inline bool tcp_passive_fastopen(const struct sock *sk)
{
	return sk->node.state == TCP_SYN_RECV && sk->fastopen_rsk;
}

/* ---- request_sock.c: the SYN queue and SYN-ACK retransmission ---- */
struct request_sock *inet_reqsk_alloc(struct ustack *st, struct sock *lsk);
void inet_csk_reqsk_queue_hash_add(struct ustack *st, struct request_sock *req);
void reqsk_queue_drop(struct ustack *st, struct request_sock *req);
void reqsk_put(struct ustack *st, struct request_sock *req);
void inet_rtx_syn_ack(struct ustack *st, struct request_sock *req);
uint64_t reqsk_timeout_us(const struct request_sock *req);
bool reqsk_migrate(struct ustack *st, struct request_sock *req);
void reqsk_timer_rearm(struct ustack *st, struct request_sock *req);

/* The MSS to cut segments with: mss_cache once the connection has one (tcp_sync_mss), else
 * RFC 9293's default 536 (TCP_MSS_DEFAULT). */
static inline uint32_t tcp_mss_now(const struct sock *sk)
{
	return sk->mss_cache ? sk->mss_cache : TCP_MSS_DEFAULT;
}

/*
 * tcp_current_mss: what a data segment sent now may carry.  mss_cache allows for the
 * timestamp option only (tp->tcp_header_len); a segment that also carries SACK blocks — while
 * we hold out-of-order data, or owe a D-SACK — has that much less room, or it would exceed the
 * path MTU.  Linux subtracts tcp_established_options' size beyond tcp_header_len: 4 bytes and
 * 8 a block, as many blocks as fit the 40 bytes of options (3 with timestamps, 4 without), at
 * most the 4 it keeps (D-SACK first).  Sending — tcp_write_xmit, retransmissions, the loss and
 * window probes, sendmsg's size goal — cuts data at this; what counts segments (the
 * congestion window, SACK's pipe) stays at mss_cache, as Linux's tcp_skb_pcount does.
 */
static inline uint32_t tcp_current_mss(const struct sock *sk)
{
	uint32_t mss = tcp_mss_now(sk);
	unsigned eff = sk->sack_ok ? sk->rx_nsack + (sk->dsack_len != 0) : 0;
	if (!eff)
		return mss;
	unsigned room = (40u - (sk->tstamp_ok ? 12u : 0u) - 4u) / 8u;
	unsigned n = eff < room ? eff : room;
	if (n > 4)
		n = 4;
	uint32_t opt = 4u + 8u * n;
	return mss > opt + 8u ? mss - opt : 8u; /* tcp_mss_clamp's floor is far above: never */
}

/* The MSS we announced (what the peer's segments will be), or 536 before there is one. */
static inline uint32_t tcp_advmss_now(const struct sock *sk)
{
	return sk->advmss ? sk->advmss : TCP_MSS_DEFAULT;
}

/* The receive space a window may offer: SO_RCVBUF's worth of the ring, less what is queued. */
/* tp->window_clamp as tcp_init_buffer_space leaves it: at most 64 KB scaled, and with a locked
 * buffer its full space less one segment (tcp_app_win's "force reservation of one segment") */
static inline uint32_t tcp_window_clamp(const struct sock *sk)
{
	uint32_t clamp = 65535u << sk->rcv_wscale;
	if (sk->rcvbuf_locked) {
		uint32_t full = sk->rcv_limit, advmss = sk->advmss ? sk->advmss : 536u, c = full;
		if (c > 2 * advmss)
			c = full - advmss > 2 * advmss ? full - advmss : 2 * advmss;
		if (c < clamp)
			clamp = c;
	}
	return clamp;
}

static inline uint32_t tcp_rcv_space(const struct sock *sk)
{
	uint32_t used = sk->rcvq.len + sk->ofo_bytes;
	return sk->rcv_limit > used ? sk->rcv_limit - used : 0;
}

void tcp_rcv_rtt_sample(struct ustack *st, struct sock *sk, uint32_t tsecr);

/* Bytes written but not yet sent (tcpi_notsent_bytes). */
static inline uint32_t tcp_notsent_bytes(const struct sock *sk)
{
	return sk->data_init && (int32_t)(sk->write_seq - sk->snd_nxt) > 0 ? sk->write_seq - sk->snd_nxt : 0;
}

/* tcp_stream_memory_free: the application may add data only while fewer bytes than
 * TCP_NOTSENT_LOWAT (or the sysctl, default UINT_MAX) wait unsent; poll's POLLOUT asks for half
 * of it (wake = 1). */
/* sk_stream_wspace ≥ sk_stream_min_wspace: half of what is queued is still free */
/*
 * sk_wmem_queued: what the send queue is charged, as Linux charges skb truesize — the bytes not
 * yet acknowledged plus each skb's own overhead (SKB_TRUESIZE of a TCP skb's head: 832 bytes
 * measured on this project's 6.18.44).  ustack's records mirror Linux's skbs, cuts at
 * transmission included, so the sum matches; it decides when a write may start a new skb
 * (sk_stream_memory_free) and when a blocked writer is woken (sk_stream_is_writeable).
 */
#define TCP_SKB_HEAD_TRUESIZE 832u
static inline uint32_t tcp_wmem_queued(const struct sock *sk)
{
	/* (once the FIN is acknowledged, snd_una is one past write_seq) */
	uint32_t bytes = sk->data_init && (int32_t)(sk->write_seq - sk->snd_una) > 0 ? sk->write_seq - sk->snd_una : 0;
	return bytes + TCP_SKB_HEAD_TRUESIZE * sk->wq_n;
}

/* sk_stream_wspace >= sk_stream_min_wspace: a third of the send buffer free */
static inline bool tcp_stream_wspace_ok(const struct sock *sk)
{
	uint32_t lim = sk->snd_limit, q = tcp_wmem_queued(sk);
	return !sk->sndq.data || (lim > q && lim - q >= q / 2);
}

static inline bool tcp_stream_memory_free(const struct sock *sk, unsigned sysctl_lowat, int wake)
{
	uint32_t lowat = sk->notsent_lowat ? sk->notsent_lowat : sysctl_lowat;
	return ((uint64_t)tcp_notsent_bytes(sk) << wake) < lowat;
}

/* ---- tcp.c: the application side of data transfer ---- */
int tcp_data_init(struct ustack *st, struct sock *sk);
/* The rings, made on the first byte each way (from the ring cache, tcp.c); 0 or -1. */
int tcp_rcv_ring(struct ustack *st, struct sock *sk);
int tcp_snd_ring(struct ustack *st, struct sock *sk);
void tcp_ring_cache_destroy(struct ustack *st);
void tcp_data_free(struct ustack *st, struct sock *sk);
/* Returns 1 when the socket is gone (reset), 0 when it lives on as an orphan. */
int tcp_close(struct ustack *st, struct sock *sk);
int tcp_disconnect(struct ustack *st, struct sock *sk);
struct ustack_tcp_info;
void tcp_get_info(struct ustack *st, const struct sock *sk, struct ustack_tcp_info *ti);
void tcp_shutdown_wr(struct ustack *st, struct sock *sk);
/* tsflags: SO_TIMESTAMPING's record flags for this write (the socket's, or a cmsg's) */
ssize_t tcp_sendmsg(struct ustack *st, struct sock *sk, int fd, const uint8_t *buf, size_t len, int flags,
		    uint32_t tsflags, const struct tcp_zc_frags *zf);
ssize_t tcp_recvmsg(struct ustack *st, struct sock *sk, int fd, uint8_t *buf, size_t len, int flags);
void tcp_set_rcvlowat(struct ustack *st, struct sock *sk, int val);
/* sk_rcvlowat and sk_bound_dev_if, kept in the extension */
static inline int sk_rcvlowat(const struct sock *sk)
{
	return sk->ext && sk->ext->rcvlowat ? sk->ext->rcvlowat : 1;
}
static inline int sk_bound_dev_if(const struct sock *sk)
{
	return sk->ext ? sk->ext->bound_dev_if : 0;
}
void tcp_grow_window(struct sock *sk, uint32_t len);
void tcp_sndbuf_expand(struct ustack *st, struct sock *sk);
void tcp_rcvbuf_grow_ofo(struct ustack *st, struct sock *sk, uint32_t ofo_span);
bool tcp_epollin_ready(const struct sock *sk, int target);

/* ---- tcp_output.c: data ---- */
void tcp_write_xmit(struct ustack *st, struct sock *sk);
/* tcp_write_queue.c */
void tcp_wq_free(struct sock *sk);
void tcp_wq_acked(struct sock *sk);
uint32_t tcp_size_goal(const struct sock *sk, uint32_t mss);
bool tcp_forced_push(const struct sock *sk);
void tcp_mark_push(struct sock *sk);
void tcp_wq_mark_eor(struct sock *sk);
uint32_t tcp_wq_tail_room(const struct sock *sk, uint32_t size_goal);
void tcp_wq_add(struct sock *sk, uint32_t n, bool new_skb, bool first_copy);
uint32_t tcp_wq_end(const struct sock *sk, uint32_t seq, uint8_t *flags);
void tcp_wq_split(struct sock *sk, uint32_t seq);
uint8_t tcp_wq_tail_nfrags(const struct sock *sk);
void tcp_wq_add_frags(struct sock *sk, uint32_t nfrags);
void tcp_wq_tstamp(struct sock *sk, uint8_t bits);
bool tcp_wq_tstamp_in(const struct sock *sk, uint32_t seq, uint32_t end, uint8_t want, uint32_t *key, uint8_t *bits);
/* calls fn for each record with an ACK timestamp whose key [prior, ack) covers, oldest first */
void tcp_wq_ack_tstamps(struct ustack *st, struct sock *sk, uint32_t prior, uint32_t ack,
			void (*fn)(struct ustack *st, struct sock *sk, uint32_t key, uint32_t start, uint32_t end));
uint32_t tcp_wq_rexmit_len(const struct ustack *st, const struct sock *sk, uint32_t seq, uint32_t max,
			   bool *psh);
uint32_t tcp_tso_segs(const struct ustack *st, const struct sock *sk, uint32_t mss);
/* tcp_output.c: tcp_chrono_start/stop, where the time of a connection with data to send goes */
#define TCP_CHRONO_BUSY 1
#define TCP_CHRONO_RWND_LIMITED 2
#define TCP_CHRONO_SNDBUF_LIMITED 3
void tcp_chrono_start(const struct ustack *st, struct sock *sk, uint8_t type);
void tcp_chrono_stop(const struct ustack *st, struct sock *sk, uint8_t type);
void tcp_chrono_stats(const struct ustack *st, const struct sock *sk, uint64_t out_us[3]);
/* tcp_cong.c */
bool tcp_is_cwnd_limited(const struct sock *sk);
/* tcp_output.c: RFC 5681 §4.1's restart of an idle connection (tcp_slow_start_after_idle_check) */
void tcp_slow_start_after_idle_check(struct ustack *st, struct sock *sk);
/* tcp_recovery.c: the transmit log, RTT samples, RACK */
void tcp_txlog_free(struct sock *sk);
void tcp_txlog_sent(struct sock *sk, uint32_t seq, uint32_t end, uint64_t now);
void tcp_txlog_retrans(struct sock *sk, uint32_t seq, uint32_t end, uint64_t now);
uint32_t tcp_txlog_acked(struct sock *sk, uint32_t una, uint64_t now, int32_t *ca_rtt);
void tcp_rack_sacked(struct sock *sk, uint32_t start, uint32_t end, uint64_t now); /* newly SACKed */
bool tcp_txlog_retransmitted(const struct sock *sk, uint32_t seq);
bool tcp_rack_mark_lost(struct ustack *st, struct sock *sk);
void tcp_rack_reo_timeout(struct ustack *st, struct sock *sk); /* tcp_input.c */
void tcp_retransmit_head(struct ustack *st, struct sock *sk);
uint32_t tcp_retransmit_range(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len);
uint32_t tcp_retransmit_skb(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t max_len);
void tcp_send_fin(struct ustack *st, struct sock *sk);
void tcp_send_probe(struct ustack *st, struct sock *sk);
void tcp_send_loss_probe(struct ustack *st, struct sock *sk);
uint16_t tcp_select_window(struct sock *sk);
uint32_t __tcp_select_window(const struct sock *sk);

/* ---- tcp_ofo.c: the out-of-order queue and the SACK blocks we send ---- */
void tcp_data_queue_ofo(struct ustack *st, struct sock *sk, uint32_t seq, const uint8_t *data, uint32_t len);
uint32_t tcp_ofo_queue(struct ustack *st, struct sock *sk);
uint32_t tcp_ofo_span(const struct sock *sk);
void tcp_ofo_purge(struct ustack *st, struct sock *sk);
void tcp_ofo_sack_blocks(struct sock *sk, struct tcp_opts *o);
void tcp_dsack_set(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t end_seq);
void tcp_dsack_extend(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t end_seq);
void tcp_ofo_cache_destroy(struct ustack *st);

/* ---- tcp_input.c: data ---- */
void tcp_rcv_established(struct ustack *st, struct sock *sk, const struct ipv4_repr *ip,
			 const struct tcp_repr *th);

/* ---- tcp_input.c: the delayed ACK engine ---- */
void tcp_enter_quickack_mode(struct sock *sk, unsigned max_quickacks);
void tcp_send_delayed_ack(struct ustack *st, struct sock *sk);

/* ---- inet_timewait_sock.c, tcp_minisocks.c: TIME_WAIT ---- */
enum tcp_tw_status { TCP_TW_SUCCESS, TCP_TW_RST, TCP_TW_ACK, TCP_TW_ACK_OOW, TCP_TW_SYN };
void inet_twsk_init(struct ustack *st);
void inet_twsk_purge(struct ustack *st); /* at teardown: every entry, silently */
/* tcp_time_wait's half: the entry takes sk's place in the hashes and goes on the death row;
 * false when there is no room (tcp_max_tw_buckets, memory) */
bool inet_twsk_hashdance_schedule(struct ustack *st, struct sock *sk, bool fin_wait2, uint32_t timeo_ms);
void inet_twsk_deschedule_put(struct ustack *st, struct inet_timewait_sock *tw);
/* 60 s more; from the FIN_WAIT2 substate, into TIME_WAIT proper */
void inet_twsk_reschedule(struct ustack *st, struct inet_timewait_sock *tw);
uint64_t inet_twsk_expires_us(const struct ustack *st, const struct inet_timewait_sock *tw);
uint32_t tcp_tw_ts_off(struct ustack *st, const struct inet_timewait_sock *tw);
/* bind(): a TIME_WAIT entry of the bucket's port that sk may not share it with */
bool inet_twsk_bind_conflict(struct ustack *st, const struct sock *sk, const struct bind_bucket *b);
enum tcp_tw_status tcp_timewait_state_process(struct ustack *st, struct inet_timewait_sock *tw,
					      const struct tcp_repr *th, uint32_t *tw_isn);
void tcp_v4_timewait_ack(struct ustack *st, struct inet_timewait_sock *tw, enum tcp_tw_status status);

/* ---- tcp_timer.c ---- */
void tcp_delack_timer(struct ustack *st, struct utimer *t);
void tcp_tw_timer(struct ustack *st, struct utimer *t);
void tcp_rearm_rto(struct ustack *st, struct sock *sk);
void tcp_time_wait(struct ustack *st, struct sock *sk);
/* An orphan in FIN_WAIT2: a timewait entry in the FIN_WAIT2 substate for tcp_fin_timeout (true:
 * the socket is gone), or, when that is longer than 60 s, its timer first (false). */
bool tcp_fin_wait2_orphan(struct ustack *st, struct sock *sk);
void tcp_fin_wait2_timeout(struct ustack *st, struct sock *sk);
uint32_t tcp_fin_time_ms(const struct ustack *st, const struct sock *sk);
void tcp_retransmit_timer(struct ustack *st, struct utimer *t);
void tcp_reset_xmit_timer(struct ustack *st, struct sock *sk);
void tcp_reset_keepalive_timer(struct ustack *st, struct sock *sk);
void tcp_set_xmit_timer(struct ustack *st, struct sock *sk);
bool tcp_schedule_loss_probe(struct ustack *st, struct sock *sk, bool advancing_rto);

/* ---- tcp_sack.c ---- */
void tcp_sacktag(struct ustack *st, struct sock *sk, const struct tcp_repr *th);
void tcp_sack_clean(struct sock *sk);
uint32_t tcp_sacked_segs(const struct sock *sk);
uint32_t tcp_sacked_bytes(const struct sock *sk);
uint32_t tcp_sack_skip(const struct sock *sk, uint32_t seq);
uint32_t tcp_sack_pipe(const struct sock *sk);
uint32_t tcp_sack_lost_bytes(const struct sock *sk);
uint32_t tcp_sack_lost_total(const struct sock *sk);
bool tcp_sack_time_to_recover(const struct sock *sk);
void tcp_sack_recovery_xmit(struct ustack *st, struct sock *sk);

/* ---- tcp_cong.c ---- */
const struct tcp_cong_ops *tcp_cong_find(const char *name);
const struct tcp_cong_ops *tcp_cong_default(struct ustack *st);
void tcp_cong_on_ack(struct ustack *st, struct sock *sk, uint32_t acked);

/* ---- sock.c: the socket object, waiting and waking ---- */
struct sock *sk_alloc(struct ustack *st);
void sk_free(struct ustack *st, struct sock *sk);
void sk_hold(struct sock *sk);
bool sk_put(struct ustack *st, struct sock *sk); /* true: the socket is gone */
/* sock_gen_cookie: the socket's cookie, given on first use from the instance's counter */
uint64_t sock_gen_cookie(struct ustack *st, struct sock *sk);
void sk_wake(struct ustack *st);
/* a wake-up of one socket, which also readies its epoll items (through the socket layer's hook) */
void sk_wake_sk(struct ustack *st, struct sock *sk);

/* ---- zerocopy.c ---- */
int sk_zerocopy_reserve(struct sock *sk);
void sk_zerocopy_sent(struct sock *sk, uint32_t end);
void sk_zerocopy_acked(struct sock *sk);

/* ---- tcp_urg.c: urgent data ---- */
void tcp_mark_urg(struct sock *sk);
void tcp_urg_set_pointer(const struct sock *sk, struct tcp_seg_out *seg);
bool tcp_urg_probe_first(const struct sock *sk);
void tcp_urg_acked(struct sock *sk);
void tcp_urg(struct ustack *st, struct sock *sk, const struct tcp_repr *th);
uint32_t tcp_copied_seq(const struct sock *sk);
ssize_t tcp_recv_urg(struct sock *sk, uint8_t *buf, size_t len, int flags, int *msg_flags);
/* what a normal read may take before the urgent mark, and whether to skip the urgent byte */
uint32_t tcp_urg_read_limit(const struct sock *sk, uint32_t off, uint32_t avail, bool *skip);
void tcp_urg_consumed(struct sock *sk);
bool tcp_urg_at_mark(const struct sock *sk);
int tcp_inq(const struct sock *sk);

/* ---- ip_sockglue.c: the error queue ---- */
struct sock_ext *sk_ext(struct sock *sk);
void sk_ext_free(struct sock *sk);
bool sk_errq_pending(const struct sock *sk);
struct sk_err_msg *sk_errq_push(struct sock *sk, bool zerocopy, const void *data, size_t len);
void sk_error_queue_purge(struct sock *sk);
void ip_icmp_error(struct sock *sk, int err, uint8_t type, uint8_t code, uint32_t info, uint32_t offender,
		   uint32_t daddr, uint16_t dport, const uint8_t *payload, size_t plen);
/* SO_TIMESTAMPING (tcp_timestamping.c) */
int sock_set_timestamping(struct sock *sk, int optname, const void *val, socklen_t len);
uint32_t sock_get_timestamping(const struct sock *sk, int optname);
void tcp_tx_timestamp(struct sock *sk, uint32_t tsflags);
void tcp_tx_timestamp_request(struct ustack *st, struct sock *sk, uint32_t seq, uint32_t len);
void tcp_ack_tstamp(struct ustack *st, struct sock *sk, uint32_t prior_snd_una, uint32_t ack);
void sk_ext_clone(struct sock *sk, const struct sock *lsk);
ssize_t sk_recv_error(struct sock *sk, struct msghdr *msg);

/* ---- sock.c: waiting ---- */
struct timespec;
void sk_wait_event(struct ustack *st);
int sk_wait_event_until(struct ustack *st, const struct timespec *deadline);
size_t sk_put_cmsg(struct msghdr *msg, int level, int type, const void *data, size_t len);
size_t sk_put_cmsg_at(struct msghdr *msg, size_t off, int level, int type, const void *data, size_t len);

/* trace helpers */
void tcp_trace(struct ustack *st, const char *name, const struct ehash_node *n, int old_state,
	       int new_state);

/*
 * Linux's TCP tracepoints (include/trace/events/tcp.h, 6.18), under their names, where Linux
 * fires them.  Each event's detail is the tracepoint's TP_printk line, field for field, which
 * `ustack trace` prints after the name (link/ctl.c).  What ustack has no equivalent of is
 * printed as Linux prints a NULL pointer or a zero: skbaddr (ustack keeps no sk_buff, so
 * where there is a segment it is the parsed segment's address) and the mark.
 *
 * The trace_* macros test for a subscriber before anything else, as a tracepoint's static key
 * does: with nobody listening no argument is evaluated and nothing is formatted.
 */
void tcp_trace_probe(struct ustack *st, struct sock *sk, const struct tcp_repr *th);
void tcp_trace_sk(struct ustack *st, const char *name, struct sock *sk);
void tcp_trace_retransmit_synack(struct ustack *st, const struct ehash_node *req);
void tcp_trace_retransmit_skb(struct ustack *st, const struct sock *sk, int err);
void tcp_trace_send_reset(struct ustack *st, const struct sock *sk, int state, const struct ipv4_repr *ip,
			  const struct tcp_repr *th, enum sk_rst_reason reason);
/* tcp_rcv_established's first act, for every segment an ESTABLISHED socket receives */
#define trace_tcp_probe(st, sk, th) \
	do { if ((st)->ntrace) tcp_trace_probe((st), (sk), (th)); } while (0)
/* tcp_reset: a RST was accepted (or, as tcp_reset is called then, data came for an orphan) */
#define trace_tcp_receive_reset(st, sk) \
	do { if ((st)->ntrace) tcp_trace_sk((st), "tcp_receive_reset", (sk)); } while (0)
/* tcp_v4_destroy_sock: the socket's TCP state is torn down (sk_free) */
#define trace_tcp_destroy_sock(st, sk) \
	do { if ((st)->ntrace) tcp_trace_sk((st), "tcp_destroy_sock", (sk)); } while (0)
#define trace_tcp_rcv_space_adjust(st, sk) \
	do { if ((st)->ntrace) tcp_trace_sk((st), "tcp_rcv_space_adjust", (sk)); } while (0)
/* tcp_rtx_synack: a SYN-ACK went again; req is the request socket (or a Fast Open child) */
#define trace_tcp_retransmit_synack(st, req) \
	do { if ((st)->ntrace) tcp_trace_retransmit_synack((st), (req)); } while (0)
/* __tcp_retransmit_skb: one retransmitted segment, err what sending it returned */
#define trace_tcp_retransmit_skb(st, sk, err) \
	do { if ((st)->ntrace) tcp_trace_retransmit_skb((st), (sk), (err)); } while (0)
/* tcp_v4_send_reset (ip/th the segment answered) and tcp_send_active_reset (ip, th NULL) */
#define trace_tcp_send_reset(st, sk, state, ip, th, reason) \
	do { if ((st)->ntrace) tcp_trace_send_reset((st), (sk), (state), (ip), (th), (reason)); } while (0)

#endif
