/*
 * The socket API: POSIX calls with a stack instance in front.  Descriptors are small integers
 * private to the instance.  Argument checks and errno values are Linux's.
 *
 * Blocking calls (connect, accept on a blocking socket, poll with a timeout) sleep until the
 * stack wakes them — the seed's sk_state_change — so another thread must keep feeding the
 * instance frames and time meanwhile (a TAP run loop does).
 */
#ifndef USTACK_SOCKET_H
#define USTACK_SOCKET_H

#include <ustack/export.h>

#include <poll.h>
#include <sys/types.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

USTACK_API int ustack_socket(struct ustack *st, int domain, int type, int protocol);
USTACK_API int ustack_bind(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len);
USTACK_API int ustack_listen(struct ustack *st, int fd, int backlog);
USTACK_API int ustack_accept(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
USTACK_API int ustack_accept4(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len, int flags);
USTACK_API int ustack_connect(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len);
USTACK_API int ustack_close(struct ustack *st, int fd);
USTACK_API int ustack_shutdown(struct ustack *st, int fd, int how);
USTACK_API int ustack_getsockopt(struct ustack *st, int fd, int level, int name, void *val, socklen_t *len);
USTACK_API int ustack_setsockopt(struct ustack *st, int fd, int level, int name, const void *val, socklen_t len);
USTACK_API int ustack_getsockname(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
USTACK_API int ustack_getpeername(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
/* Data: MSG_DONTWAIT (and MSG_NOSIGNAL, accepted: ustack raises no signals), MSG_MORE,
 * MSG_EOR, MSG_OOB (urgent data), MSG_ZEROCOPY (with SO_ZEROCOPY) for send; MSG_DONTWAIT,
 * MSG_PEEK, MSG_WAITALL, MSG_OOB (the urgent byte) for recv — a read stops at the urgent mark,
 * and waits for SO_RCVLOWAT bytes.  Writing to a connection that cannot send fails with EPIPE;
 * reading returns 0 at the end of the stream. */
USTACK_API ssize_t ustack_send(struct ustack *st, int fd, const void *buf, size_t len, int flags);
/* With MSG_FASTOPEN (or after connect() with TCP_FASTOPEN_CONNECT) the address is where to
 * connect, and the SYN carries the data (RFC 7413); otherwise it is ignored, as for TCP. */
USTACK_API ssize_t ustack_sendto(struct ustack *st, int fd, const void *buf, size_t len, int flags,
				 const struct sockaddr *addr, socklen_t addrlen);
USTACK_API ssize_t ustack_sendmsg(struct ustack *st, int fd, const struct msghdr *msg, int flags);
USTACK_API ssize_t ustack_recv(struct ustack *st, int fd, void *buf, size_t len, int flags);
/* sendmsg: iovecs, and SOL_SOCKET control messages (SO_TIMESTAMPING for this write only).
 * recvmsg: iovecs; with TCP_INQ, a TCP_CM_INQ control message (bytes left to read);
 * MSG_ERRQUEUE takes the oldest message of the error queue (zerocopy completions,
 * SO_TIMESTAMPING's timestamps, IP_RECVERR's ICMP errors) with its IP_RECVERR control message. */
USTACK_API ssize_t ustack_recvmsg(struct ustack *st, int fd, struct msghdr *msg, int flags);
USTACK_API ssize_t ustack_write(struct ustack *st, int fd, const void *buf, size_t len);
USTACK_API ssize_t ustack_read(struct ustack *st, int fd, void *buf, size_t len);

/* epoll over ustack's sockets: level- and edge-triggered (EPOLLET), EPOLLONESHOT; a
 * blocking wait sleeps until a watched socket wakes or the timeout passes.  ustack_close
 * closes an instance too.  Nested instances are not supported (EPERM). */
USTACK_API int ustack_epoll_create(struct ustack *st, int size);
USTACK_API int ustack_epoll_ctl(struct ustack *st, int epfd, int op, int fd, struct epoll_event *ev);
USTACK_API int ustack_epoll_wait(struct ustack *st, int epfd, struct epoll_event *evs, int maxevents, int timeout_ms);

/* F_GETFL and F_SETFL (O_NONBLOCK). */
USTACK_API int ustack_fcntl(struct ustack *st, int fd, int cmd, int arg);
USTACK_API int ustack_poll(struct ustack *st, struct pollfd *fds, nfds_t nfds, int timeout_ms);
/*
 * fn(arg) runs under the instance's lock whenever a socket's readiness may have changed (data,
 * space, a state change, an error): for a program that waits on ustack's sockets and the
 * kernel's descriptors at once (the preload library's poll and epoll_wait).  It must be quick
 * and must not call into ustack — a write to an eventfd.  fn NULL removes it.
 */
USTACK_API void ustack_set_sock_wake(struct ustack *st, void (*fn)(void *arg), void *arg);

/* A listener's SYN queue (request sockets), accept queue, and the limit of both. */
USTACK_API int ustack_listen_queues(struct ustack *st, int fd, int *syn_qlen, int *accept_qlen, int *max_backlog);
/* ioctl: SIOCINQ/FIONREAD (bytes ready to read, up to an urgent mark), SIOCATMARK (the next
 * byte read is the urgent one), SIOCOUTQ (bytes not yet acknowledged), SIOCOUTQNSD (bytes not
 * yet sent); EINVAL on a listener (but SIOCATMARK), ENOTTY for anything else. */
USTACK_API int ustack_ioctl(struct ustack *st, int fd, unsigned long req, int *arg);
/* How many callers are asleep in a blocking call (connect, accept, send, recv, poll, a
 * lingering close).  A driver of virtual time compares it with the callers it has inside the
 * API, and lets a woken caller run before it moves the clock on. */
USTACK_API unsigned ustack_sleeping_callers(struct ustack *st);

/*
 * getsockopt(IPPROTO_TCP, TCP_INFO) fills Linux's struct tcp_info (include/uapi/linux/tcp.h,
 * as of 6.18, Accurate ECN fields included), declared here so that a program can read all of it;
 * glibc's shorter struct tcp_info is a prefix of it, and a shorter buffer gets a prefix, as
 * from Linux.  For a listener tcpi_unacked/tcpi_sacked are the accept queue and its limit.
 * Fields ustack does not keep (pacing, chrono times, ECN) are 0.  TCP_CC_INFO answers with
 * zero bytes for cubic and reno (Linux's have no get_info); SO_MEMINFO gives the nine
 * counters of SK_MEMINFO_VARS.
 */
struct ustack_tcp_info {
	uint8_t tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff, tcpi_options;
	uint8_t tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
	uint8_t tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;
	uint32_t tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
	uint32_t tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
	uint32_t tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
	uint32_t tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh, tcpi_snd_cwnd;
	uint32_t tcpi_advmss, tcpi_reordering, tcpi_rcv_rtt, tcpi_rcv_space, tcpi_total_retrans;
	uint64_t tcpi_pacing_rate, tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received;
	uint32_t tcpi_segs_out, tcpi_segs_in, tcpi_notsent_bytes, tcpi_min_rtt;
	uint32_t tcpi_data_segs_in, tcpi_data_segs_out;
	uint64_t tcpi_delivery_rate, tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
	uint32_t tcpi_delivered, tcpi_delivered_ce;
	uint64_t tcpi_bytes_sent, tcpi_bytes_retrans;
	uint32_t tcpi_dsack_dups, tcpi_reord_seen, tcpi_rcv_ooopack, tcpi_snd_wnd, tcpi_rcv_wnd;
	uint32_t tcpi_rehash;
	uint16_t tcpi_total_rto, tcpi_total_rto_recoveries;
	uint32_t tcpi_total_rto_time;
	uint32_t tcpi_received_ce; /* Accurate ECN (Linux 6.18): ustack has no ECN, all 0 */
	uint32_t tcpi_delivered_e1_bytes, tcpi_delivered_e0_bytes, tcpi_delivered_ce_bytes;
	uint32_t tcpi_received_e1_bytes, tcpi_received_e0_bytes, tcpi_received_ce_bytes;
	uint32_t tcpi_ecn_mode : 2, tcpi_accecn_opt_seen : 2, tcpi_accecn_fail_mode : 4, tcpi_options2 : 24;
};

/* The TCP state of a descriptor's socket, as Linux numbers them (TCP_ESTABLISHED = 1, ...). */
USTACK_API int ustack_tcp_state(struct ustack *st, int fd);
USTACK_API const char *ustack_tcp_state_name(int state);

#ifdef __cplusplus
}
#endif
#endif
