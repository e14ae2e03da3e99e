/* The socket layer's own helpers, shared by its files (socket.c, sockopt.c). */
#ifndef USTACK_SOCKET_SOCKET_H
#define USTACK_SOCKET_SOCKET_H

#include <errno.h>
#include "tcp/tcp.h"

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
