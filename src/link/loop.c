/* The link drivers' shared run loop (loop.h). */
#include "link/loop.h"

#include <ustack/stack.h>

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

int link_loop_init(struct link_loop *l)
{
	l->st = NULL;
	l->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->stopfd >= 0 && l->kickfd >= 0)
		return 0;
	int e = errno;
	link_loop_fini(l);
	errno = e;
	return -1;
}

void link_loop_fini(struct link_loop *l)
{
	if (l->stopfd >= 0)
		close(l->stopfd);
	if (l->kickfd >= 0)
		close(l->kickfd);
	l->stopfd = l->kickfd = -1;
}

static void eventfd_post(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one)); /* async-signal-safe: one write(2) */
	(void)r;
}

static void eventfd_clear(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

void link_loop_kick(void *loop)
{
	eventfd_post(((struct link_loop *)loop)->kickfd);
}

void link_loop_stop(struct link_loop *l)
{
	eventfd_post(l->stopfd);
}

/* When the loop must wake: the stack's next timer (at most a minute away, or the deadline),
 * or what the driver itself is waiting for, whichever comes first. */
static uint64_t next_wakeup(struct link_loop *l, const struct link_loop_ops *ops, void *arg, uint64_t now,
			    uint64_t deadline_us)
{
	uint64_t cap = now + 60000000u < deadline_us ? now + 60000000u : deadline_us;
	uint64_t next = ustack_sleep_until(l->st, cap);
	return ops->next ? ops->next(arg, next) : next;
}

int link_loop_run(struct link_loop *l, const struct link_loop_ops *ops, void *arg, uint64_t deadline_us,
		  bool drain)
{
	if (!l->st) {
		errno = EINVAL;
		return -1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	struct epoll_event sv = { .events = EPOLLIN, .data.u32 = 1 };
	struct epoll_event kv = { .events = EPOLLIN, .data.u32 = 2 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ops->fd, &ev) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l->stopfd, &sv) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, l->kickfd, &kv) < 0) {
		int e = errno;
		close(ep);
		errno = e;
		return -1;
	}
	const struct ustack_clock *clk = ustack_clock_monotonic();
	int rc = 0;
	for (;;) {
		uint64_t now = clk->now_us(NULL);
		if (now >= deadline_us || (drain && !ustack_undelivered(l->st, NULL)))
			break;
		/* Sleep until the next timer (at most a minute, or the deadline); a timer armed
		 * meanwhile by another thread kicks us awake through kickfd.  Busy, never sleep. */
		int timeout = 0;
		if (!ops->busy) {
			uint64_t next = next_wakeup(l, ops, arg, now, deadline_us);
			timeout = next <= now ? 0 : (int)((next - now + 999) / 1000);
		}
		struct epoll_event out[3];
		int n = epoll_wait(ep, out, 3, timeout);
		ustack_awake(l->st);
		if (n < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		bool stop = false, rx = ops->busy;
		for (int i = 0; i < n; i++) {
			if (out[i].data.u32 == 1)
				stop = true;
			else if (out[i].data.u32 == 2)
				eventfd_clear(l->kickfd);
			else
				rx = true;
		}
		if (rx)
			ops->rx(arg);
		if (ops->due)
			ops->due(arg, clk->now_us(NULL));
		ustack_timers_run(l->st);
		if (ops->flush)
			ops->flush(arg);
		if (stop) {
			eventfd_clear(l->stopfd);
			rc = 1;
			break;
		}
	}
	close(ep);
	return rc;
}

/* One ioctl on the interface: SIOCGIFFLAGS then, for link_if_up, SIOCSIFFLAGS with IFF_UP. */
static int link_ifreq(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	memset(ifr, 0, sizeof(*ifr));
	memcpy(ifr->ifr_name, name, strnlen(name, IFNAMSIZ - 1));
	int rc = ioctl(s, req, ifr);
	if (rc == 0 && req == SIOCGIFFLAGS && !(ifr->ifr_flags & IFF_UP)) {
		ifr->ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, ifr);
	}
	int e = errno;
	close(s);
	errno = e;
	return rc;
}

int link_if_up(const char *name)
{
	struct ifreq ifr;
	return link_ifreq(name, SIOCGIFFLAGS, &ifr);
}

int link_if_mac(const char *name, uint8_t mac[6])
{
	struct ifreq ifr;
	if (link_ifreq(name, SIOCGIFHWADDR, &ifr) < 0)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

int link_if_mtu(const char *name)
{
	struct ifreq ifr;
	if (link_ifreq(name, SIOCGIFMTU, &ifr) < 0)
		return -1;
	return ifr.ifr_mtu;
}
