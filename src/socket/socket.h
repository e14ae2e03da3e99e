/* The socket layer's own declarations, shared by its files (socket.c, sockopt.c, epoll.c). */
#ifndef USTACK_SOCKET_SOCKET_H
#define USTACK_SOCKET_SOCKET_H

#include <errno.h>
#include <time.h>
#include "tcp/tcp.h"

/* file.c: descriptors */
int fd_alloc(struct ustack *st, struct sock *sk);
void fd_free(struct ustack *st, int fd);
struct sock *sock_lookup_fd(struct ustack *st, int fd);
/* socket.c: poll */
short sk_poll(const struct ustack *st, const struct sock *sk);
void sk_wait_deadline(struct timespec *deadline, int timeout_ms);
/* epoll.c */
void ep_sk_release(struct sock *sk);
void ep_destroy_all(struct ustack *st);
bool ep_is_epoll_fd(int fd);
int ep_close(struct ustack *st, int epfd);

/* Every entry point: lock, find the socket, or EBADF. */
#define ENTER(st, fd, sk)                         \
	stack_lock(st);                           \
	struct sock *sk = sock_lookup_fd(st, fd); \
	if (!sk) {                                \
		stack_unlock(st);                 \
		errno = EBADF;                    \
		return -1;                        \
	}

static inline int leave(struct ustack *st, int rc)
{
	stack_unlock(st);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc;
}

#endif
