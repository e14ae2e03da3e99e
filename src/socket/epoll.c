/*
 * epoll over ustack's sockets (Linux's fs/eventpoll.c, as TCP sockets see it).
 *
 * An instance is a list of watched descriptors.  Level-triggered items report whenever their
 * socket's poll mask meets the events asked for.  Edge-triggered ones (EPOLLET) report only
 * after a wake-up of their socket since the last report — ep_poll_callback putting the item
 * on the ready list — and then report the whole current mask, as ep_send_events does: new
 * data arriving while unread data waits is a new edge, reading part of it is not.  The stack
 * wakes a socket (sk_wake_sk) where Linux calls sk_data_ready, sk_write_space or
 * sk_state_change, which puts the socket's items (usually none or one) on their instances'
 * ready lists, so epoll_wait looks only at ready items, never at every watched socket.
 * EPOLLONESHOT disables an item after one report until EPOLL_CTL_MOD.  Closing a socket's
 * descriptor removes its items (eventpoll_release).
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "socket/socket.h"
#include <ustack/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct epitem {
	struct eventpoll *ep;
	struct sock *sk;
	int fd;
	uint32_t events;
	epoll_data_t data;
	struct epitem *sk_next;            /* the socket's watchers */
	struct epitem *ep_prev, *ep_next;  /* the instance's items */
	struct epitem *rd_prev, *rd_next;  /* the ready list */
	bool on_rdlist;
};

struct eventpoll {
	struct epitem *items;
	struct epitem *rd_head, *rd_tail;
};

#define EPFD_BASE (1 << 30) /* above every socket descriptor (fs.nr_open's maximum) */
#define EP_MAX 4096

static int ep_err(int e)
{
	errno = e;
	return -1;
}

static struct eventpoll *ep_get(struct ustack *st, int epfd)
{
	int i = epfd - EPFD_BASE;
	return i >= 0 && i < st->tcp->neps ? st->tcp->eps[i] : NULL;
}

bool ep_is_epoll_fd(int fd)
{
	return fd >= EPFD_BASE;
}

static void rd_add(struct epitem *it)
{
	struct eventpoll *ep = it->ep;
	if (it->on_rdlist)
		return;
	it->on_rdlist = true;
	it->rd_next = NULL;
	it->rd_prev = ep->rd_tail;
	if (ep->rd_tail)
		ep->rd_tail->rd_next = it;
	else
		ep->rd_head = it;
	ep->rd_tail = it;
}

static void rd_del(struct epitem *it)
{
	struct eventpoll *ep = it->ep;
	if (!it->on_rdlist)
		return;
	it->on_rdlist = false;
	if (it->rd_prev)
		it->rd_prev->rd_next = it->rd_next;
	else
		ep->rd_head = it->rd_next;
	if (it->rd_next)
		it->rd_next->rd_prev = it->rd_prev;
	else
		ep->rd_tail = it->rd_prev;
}

/* Unlinks an item from its instance, its socket and the ready list, and frees it. */
static void ep_remove(struct epitem *it)
{
	rd_del(it);
	if (it->ep_prev)
		it->ep_prev->ep_next = it->ep_next;
	else
		it->ep->items = it->ep_next;
	if (it->ep_next)
		it->ep_next->ep_prev = it->ep_prev;
	for (struct epitem **pp = &it->sk->ep_items; *pp; pp = &(*pp)->sk_next)
		if (*pp == it) {
			*pp = it->sk_next;
			break;
		}
	free(it);
}

/* ep_poll_callback: a wake-up of the socket puts its items on their ready lists. */
/* ep_poll_callback for every item watching the socket (tcp/sock.c's sk_wake_sk calls it) */
static void ep_wake_sk(struct ustack *st, struct sock *sk)
{
	(void)st;
	for (struct epitem *it = sk->ep_items; it; it = it->sk_next)
		rd_add(it);
}

/* eventpoll_release: a socket's descriptor is closed, its items go. */
void ep_sk_release(struct sock *sk)
{
	while (sk->ep_items)
		ep_remove(sk->ep_items);
}

/* epoll_create: size is only checked (> 0), as Linux does. */
int ustack_epoll_create(struct ustack *st, int size)
{
	if (size <= 0)
		return ep_err(EINVAL);
	stack_lock(st);
	struct tcp_state_tables *t = st->tcp;
	int i = 0;
	while (i < t->neps && t->eps[i])
		i++;
	if (i == t->neps) {
		int n = t->neps ? t->neps * 2 : 8;
		struct eventpoll **e = n <= EP_MAX ? realloc(t->eps, sizeof(*e) * (size_t)n) : NULL;
		if (!e) {
			stack_unlock(st);
			return ep_err(EMFILE);
		}
		memset(e + t->neps, 0, sizeof(*e) * (size_t)(n - t->neps));
		t->eps = e;
		t->neps = n;
	}
	struct eventpoll *ep = calloc(1, sizeof(*ep));
	t->eps[i] = ep;
	stack_unlock(st);
	return ep ? EPFD_BASE + i : ep_err(ENOMEM);
}

int ep_close(struct ustack *st, int epfd)
{
	stack_lock(st);
	struct eventpoll *ep = ep_get(st, epfd);
	if (!ep) {
		stack_unlock(st);
		return ep_err(EBADF);
	}
	st->tcp->eps[epfd - EPFD_BASE] = NULL;
	while (ep->items)
		ep_remove(ep->items);
	free(ep);
	stack_unlock(st);
	return 0;
}

void ep_destroy_all(struct ustack *st)
{
	if (!st->tcp)
		return;
	for (int i = 0; i < st->tcp->neps; i++) {
		struct eventpoll *ep = st->tcp->eps[i];
		if (!ep)
			continue;
		while (ep->items)
			ep_remove(ep->items);
		free(ep);
	}
	free(st->tcp->eps);
	st->tcp->eps = NULL;
	st->tcp->neps = 0;
}

static uint32_t ep_want(const struct epitem *it)
{
	return it->events & ~(uint32_t)(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP);
}

static uint32_t ep_mask(struct ustack *st, const struct epitem *it)
{
	return (uint32_t)(uint16_t)sk_poll(st, it->sk) & (ep_want(it) | EPOLLERR | EPOLLHUP);
}

/* epoll_ctl's checks in Linux's order: the instance, the target, then the operation.  The
 * target must be a socket: nested epoll instances are not supported (EPERM, as for a file
 * that cannot be polled). */
int ustack_epoll_ctl(struct ustack *st, int epfd, int op, int fd, struct epoll_event *ev)
{
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && !ev)
		return ep_err(EFAULT);
	stack_lock(st);
	int rc = 0;
	struct eventpoll *ep = ep_get(st, epfd);
	struct sock *sk = sock_lookup_fd(st, fd);
	if (!ep)
		rc = sock_lookup_fd(st, epfd) ? EINVAL : EBADF;
	else if (!sk)
		rc = fd == epfd ? EINVAL : ep_get(st, fd) ? EPERM : EBADF;
	if (rc) {
		stack_unlock(st);
		return ep_err(rc);
	}
	struct epitem *it = sk->ep_items;
	while (it && it->ep != ep)
		it = it->sk_next;
	switch (op) {
	case EPOLL_CTL_ADD:
		if (it) {
			rc = EEXIST;
			break;
		}
		if (!(it = calloc(1, sizeof(*it)))) {
			rc = ENOMEM;
			break;
		}
		*it = (struct epitem){ .ep = ep, .sk = sk, .fd = fd, .events = ev->events, .data = ev->data,
				       .sk_next = sk->ep_items, .ep_next = ep->items };
		sk->ep_items = it;
		if (ep->items)
			ep->items->ep_prev = it;
		ep->items = it;
		if (ep_mask(st, it)) /* ep_insert polls the file once */
			rd_add(it);
		break;
	case EPOLL_CTL_MOD:
		if (!it) {
			rc = ENOENT;
			break;
		}
		it->events = ev->events;
		it->data = ev->data;
		if (ep_mask(st, it))
			rd_add(it);
		break;
	case EPOLL_CTL_DEL:
		if (!it)
			rc = ENOENT;
		else
			ep_remove(it);
		break;
	default:
		rc = EINVAL;
	}
	stack_unlock(st);
	return rc ? ep_err(rc) : 0;
}

/* ep_send_events: each ready item reports its current mask; a level-triggered one goes back
 * on the list (it is looked at again next time), an edge-triggered one waits for the next
 * wake-up, a one-shot one is disabled. */
static int ep_harvest(struct ustack *st, struct eventpoll *ep, struct epoll_event *evs, int max)
{
	int got = 0;
	struct epitem *requeue = NULL, **rq_tail = &requeue;
	while (ep->rd_head && got < max) {
		struct epitem *it = ep->rd_head;
		rd_del(it);
		uint32_t mask = ep_want(it) ? ep_mask(st, it) : 0;
		if (!mask)
			continue;
		evs[got].events = mask;
		evs[got].data = it->data;
		got++;
		if (it->events & EPOLLONESHOT)
			it->events &= (uint32_t)(EPOLLET | EPOLLONESHOT);
		else if (!(it->events & EPOLLET)) {
			it->rd_next = NULL;
			*rq_tail = it;
			rq_tail = &it->rd_next;
		}
	}
	while (requeue) {
		struct epitem *it = requeue;
		requeue = it->rd_next;
		rd_add(it);
	}
	return got;
}

int ustack_epoll_wait(struct ustack *st, int epfd, struct epoll_event *evs, int maxevents, int timeout_ms)
{
	if (maxevents <= 0)
		return ep_err(EINVAL);
	if (!evs)
		return ep_err(EFAULT);
	struct timespec deadline;
	sk_wait_deadline(&deadline, timeout_ms);
	stack_lock(st);
	for (;;) {
		struct eventpoll *ep = ep_get(st, epfd);
		if (!ep) {
			int e = sock_lookup_fd(st, epfd) ? EINVAL : EBADF;
			stack_unlock(st);
			return ep_err(e);
		}
		int got = ep_harvest(st, ep, evs, maxevents);
		if (got || timeout_ms == 0) {
			stack_unlock(st);
			return got;
		}
		if (timeout_ms < 0)
			sk_wait_event(st);
		else if (sk_wait_event_until(st, &deadline) == ETIMEDOUT)
			timeout_ms = 0;
	}
}

/* The socket layer's part in an instance's end: epoll instances go before the sockets they
 * watch (socket/instance.c). */
static int sock_net_init(struct ustack *st)
{
	st->tcp->ep_wake = ep_wake_sk;
	return 0;
}

const struct pernet_operations sock_net_ops = {
	.name = "sock",
	.init = sock_net_init,
	.exit = ep_destroy_all,
};
