/*
 * The socket API: POSIX calls with a stack instance in front.  Descriptors are small integers
 * private to the instance.  Argument checks and errno values are Linux's.
 *
 * Blocking calls (connect, accept on a blocking socket, poll with a timeout) sleep on a
 * condition variable and are woken by the stack — the seed's sk_state_change — so another
 * thread must keep feeding the instance frames and time meanwhile (a TAP run loop does).
 */
#ifndef USTACK_SOCKET_H
#define USTACK_SOCKET_H

#include <poll.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

int ustack_socket(struct ustack *st, int domain, int type, int protocol);
int ustack_bind(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len);
int ustack_listen(struct ustack *st, int fd, int backlog);
int ustack_accept(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
int ustack_accept4(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len, int flags);
int ustack_connect(struct ustack *st, int fd, const struct sockaddr *addr, socklen_t len);
int ustack_close(struct ustack *st, int fd);
int ustack_shutdown(struct ustack *st, int fd, int how);
int ustack_getsockopt(struct ustack *st, int fd, int level, int name, void *val, socklen_t *len);
int ustack_setsockopt(struct ustack *st, int fd, int level, int name, const void *val, socklen_t len);
int ustack_getsockname(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
int ustack_getpeername(struct ustack *st, int fd, struct sockaddr *addr, socklen_t *len);
/* Data: MSG_DONTWAIT (and MSG_NOSIGNAL, accepted: ustack raises no signals) for send;
 * MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL for recv.  Writing to a connection that cannot send
 * fails with EPIPE; reading returns 0 at the end of the stream. */
ssize_t ustack_send(struct ustack *st, int fd, const void *buf, size_t len, int flags);
ssize_t ustack_recv(struct ustack *st, int fd, void *buf, size_t len, int flags);
ssize_t ustack_write(struct ustack *st, int fd, const void *buf, size_t len);
ssize_t ustack_read(struct ustack *st, int fd, void *buf, size_t len);

/* F_GETFL and F_SETFL (O_NONBLOCK). */
int ustack_fcntl(struct ustack *st, int fd, int cmd, int arg);
int ustack_poll(struct ustack *st, struct pollfd *fds, nfds_t nfds, int timeout_ms);

/* A listener's SYN queue (request sockets), accept queue, and the limit of both. */
int ustack_listen_queues(struct ustack *st, int fd, int *syn_qlen, int *accept_qlen, int *max_backlog);
/* ioctl: SIOCINQ/FIONREAD (bytes ready to read), SIOCOUTQ (bytes not yet acknowledged),
 * SIOCOUTQNSD (bytes not yet sent); EINVAL on a listener, ENOTTY for anything else. */
int ustack_ioctl(struct ustack *st, int fd, unsigned long req, int *arg);
/* How many callers are asleep in a blocking call (connect, accept, send, recv, poll, a
 * lingering close).  A driver of virtual time compares it with the callers it has inside the
 * API, and lets a woken caller run before it moves the clock on. */
unsigned ustack_sleeping_callers(struct ustack *st);

/* getsockopt(IPPROTO_TCP, TCP_INFO) fills glibc's struct tcp_info (Linux's layout) with what
 * the connection knows: state, options, scales, MSS, RTO, cwnd; for a listener
 * tcpi_unacked/tcpi_sacked are the accept queue and its limit, as in Linux. */

/* The TCP state of a descriptor's socket, as Linux numbers them (TCP_ESTABLISHED = 1, ...). */
int ustack_tcp_state(struct ustack *st, int fd);
const char *ustack_tcp_state_name(int state);

#ifdef __cplusplus
}
#endif
#endif
