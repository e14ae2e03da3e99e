/*
 * Watching a running stack, as Linux users do with ss(8), nstat(8), sysctl(8) and trace-cmd.
 *
 * ustack_diag_snapshot() is Linux's inet_diag/tcp_diag: one call takes the instance's lock once
 * and copies out a record for every TCP socket the stack has — listeners, full sockets in every
 * state (TIME_WAIT included), and request sockets (listed in state TCP_SYN_RECV, as Linux lists
 * them).  Its cost is proportional to the sockets; it is for diagnostics, never the data path.
 *
 * The control socket (ustack_ctl_start) serves these, the counters, the sysctls and a live
 * trace to `ustack ss`, `nstat`, `sysctl` and `trace` in other processes of the same user.
 */
#ifndef USTACK_DIAG_H
#define USTACK_DIAG_H

#include <ustack/export.h>

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include "socket.h"
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pending timer of a socket, numbered as inet_diag's idiag_timer (and named as ss -o). */
enum ustack_diag_timer {
	USTACK_DIAG_TIMER_OFF = 0,
	USTACK_DIAG_TIMER_ON = 1,        /* retransmission: SYN, SYN-ACK, RTO, loss probe, RACK */
	USTACK_DIAG_TIMER_KEEPALIVE = 2, /* sk_timer: keepalive, an orphan's FIN_WAIT2 */
	USTACK_DIAG_TIMER_TIMEWAIT = 3,
	USTACK_DIAG_TIMER_PROBE = 4,     /* zero-window probe (ss: "persist") */
};

/* SK_MEMINFO_VARS, as ss -m prints them (skmem:(r,rb,t,tb,f,w,o,bl,d)). */
struct ustack_diag_skmem {
	uint32_t rmem_alloc, rcvbuf, wmem_alloc, sndbuf, fwd_alloc, wmem_queued, optmem, backlog, drops;
};

struct ustack_diag_sock {
	int state;                  /* Linux's numbering (TCP_ESTABLISHED = 1 ...); request sockets:
	                             * TCP_SYN_RECV (3), with is_request set */
	int fd;                     /* the descriptor, or -1 (an orphan, a child not yet accepted,
	                             * a request socket) */
	struct in_addr laddr, raddr;
	uint16_t lport, rport;      /* host order */
	uint32_t recv_q, send_q;    /* ss's Recv-Q / Send-Q: a listener's accept queue and backlog;
	                             * else bytes not yet read / not yet acknowledged */
	uint32_t syn_qlen;          /* a listener's request sockets */
	uint8_t timer;              /* enum ustack_diag_timer */
	uint8_t retrans;            /* retransmissions, or probes, of that timer */
	uint8_t shutdown;           /* 1: no more receives (shutdown or FIN), 2: no more sends */
	uint8_t is_request;         /* a request socket (Linux's TCP_NEW_SYN_RECV) */
	uint8_t has_info;           /* info is filled (not for request and TIME_WAIT sockets, as Linux) */
	uint32_t expires_ms;        /* until the timer fires */
	char cong[16];              /* congestion control ("cubic", "reno"), or "" */
	struct ustack_diag_skmem skmem;
	struct ustack_tcp_info info;
};

/*
 * Fills buf with up to n records (in no particular order) and returns how many it wrote; *total
 * (if not NULL) gets how many sockets there are, so that a caller can retry with a bigger
 * buffer when *total > n.  All from one consistent moment.  -1 with errno only for bad arguments.
 */
USTACK_API int ustack_diag_snapshot(struct ustack *st, struct ustack_diag_sock *buf, size_t n, size_t *total);

/* ss's state name ("ESTAB", "SYN-SENT", "LISTEN", "TIME-WAIT", "UNCONN" for CLOSE ...). */
USTACK_API const char *ustack_diag_state_name(int state);

/*
 * /proc/net/sockstat's counts, from which `ss -s` prints its summary ("TCP: inuse N orphan N
 * tw N alloc N"): one moment, under the lock once.
 */
struct ustack_sockstat {
	uint32_t sockets_used; /* open socket descriptors ("sockets: used") */
	uint32_t tcp_inuse;    /* hashed TCP sockets: listeners and connections, not TIME_WAIT */
	uint32_t tcp_orphan;   /* closed by the application, still finishing with the peer */
	uint32_t tcp_tw;       /* TIME_WAIT */
	uint32_t tcp_alloc;    /* TCP sockets in memory (not TIME_WAIT, not request sockets) */
	uint32_t tcp_estab;    /* Tcp CurrEstab: ESTABLISHED and CLOSE_WAIT */
	uint32_t tcp_reqsk;    /* request sockets (SYN-RECV) */
};
USTACK_API int ustack_sockstat(struct ustack *st, struct ustack_sockstat *s);

/* ---- ip tcp_metrics: what a client remembers of each server ----------------------------- */

/*
 * One destination's entry, as `ip tcp_metrics show` prints it.  ustack keeps what Fast Open
 * needs (Linux's tcp_metrics holds these beside RTT and cwnd, which ustack does not cache).
 */
struct ustack_tcp_metrics {
	struct in_addr saddr, daddr;
	uint32_t age_ms;            /* since the entry was last used */
	uint16_t fo_mss;            /* the MSS of the server's last SYN-ACK (0: none) */
	uint16_t fo_syn_drops;      /* Fast Open SYNs with data that went unanswered */
	uint32_t fo_syn_drop_ago_ms;/* since the last of them (fo_syn_drops > 0) */
	int8_t fo_cookie_len;       /* the cookie's bytes (0: none yet) */
	uint8_t fo_cookie[16];
};

/*
 * Fills buf with up to n entries and returns how many it wrote; *total (if not NULL) how many
 * there are.  -1 with EINVAL for bad arguments.
 */
USTACK_API int ustack_tcp_metrics_snapshot(struct ustack *st, struct ustack_tcp_metrics *buf, size_t n,
					   size_t *total);
/*
 * `ip tcp_metrics flush` (daddr NULL: all) and `delete ADDRESS`: forgets the entries for that
 * destination.  Returns how many went; for delete (must_exist), -1 with ESRCH when none did,
 * as Linux's tcp_metrics_nl_cmd_del.
 */
USTACK_API int ustack_tcp_metrics_flush(struct ustack *st, const struct in_addr *daddr, int must_exist);

/* ---- the control socket ---------------------------------------------------------------- */

/*
 * Serves a control socket for st on a thread of its own: a Unix stream socket NAME.sock in
 * ustack_ctl_dir(), mode 0600, for clients of the same uid (or root; SO_PEERCRED).  One
 * request line per connection: "ss", "counters", "sysctl NAME", "sysctl -a",
 * "sysctl -w NAME=VALUE", "trace" (streams until the client goes), "ls-info", "tcp_metrics",
 * "sockstat", "tcp_metrics flush [ADDRESS]", "tcp_metrics delete ADDRESS"; the answer is
 * "ok" or "err ERRNO MESSAGE", then lines, then the server closes.  A stale socket (nobody
 * answers) is replaced; a live one fails with EADDRINUSE.  NAME: 1-64 of [A-Za-z0-9._-], not
 * starting with '.'.  Returns NULL with errno on failure.
 */
struct ustack_ctl;
USTACK_API struct ustack_ctl *ustack_ctl_start(struct ustack *st, const char *name);
/* Stops the thread, closes every client and removes the socket.  Before ustack_destroy(st). */
USTACK_API void ustack_ctl_stop(struct ustack_ctl *ctl);
/* The socket's path. */
USTACK_API const char *ustack_ctl_path(const struct ustack_ctl *ctl);
/*
 * The directory of control sockets: $USTACK_RUN_DIR if set, else /run/ustack for root, else
 * $XDG_RUNTIME_DIR/ustack, else /tmp/ustack-UID.  0, or -1 with ERANGE if it does not fit.
 */
USTACK_API int ustack_ctl_dir(char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
