/* The link drivers' shared run loop (loop.h). */
#include "link/loop.h"

#include <ustack/link.h>
#include <ustack/stack.h>

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The loop's patience while an application thread holds the device (link_loop_poll) */
#define LOOP_HOLD_IDLE_AFTER_US 2000u   /* the application asleep this long: the loop sleeps longer */
#define LOOP_HOLD_IDLE_SLEEP_US 100000u /* ... this long at most */
#define LOOP_HOLD_STALL_US 10000u       /* frames seen left this long by a holder void its hold */

int link_loop_init(struct link_loop *l)
{
	l->st = NULL;
	atomic_init(&l->rx_taken, 0);
	atomic_init(&l->app_waiting, 0);
	atomic_init(&l->app_until, 0);
	atomic_init(&l->app_stalled, 0);
	atomic_init(&l->rx_bursts, 0);
	atomic_init(&l->loop_idle, 0);
	atomic_init(&l->loop_held, 0);
	atomic_init(&l->hold_us, USTACK_POLL_HOLD_US);
	l->idle_after_us = LOOP_HOLD_IDLE_AFTER_US;
	l->idle_sleep_us = LOOP_HOLD_IDLE_SLEEP_US;
	l->stall_us = LOOP_HOLD_STALL_US;
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

/*
 * Run to completion: who takes the device's received frames.
 *
 * The run loop's thread exists so that a program which is busy, or blocked in a call that is
 * not ustack's, still has its connections answered, its timers run.  But for a program that
 * spends its life in epoll_wait it is a second thread in every exchange: a frame wakes the
 * loop, the loop's processing makes a socket readable and wakes the program, and the two trade
 * the stack's lock — two wake-ups and a futex or two per burst, more than the burst's own work
 * on a connection-per-request load (bench/xdp.sh: 1.1 context switches a connection, where
 * Linux's listener had a tenth of that).  Linux has the same problem between the NIC's
 * interrupt and the application, and answers it with busy polling and, since 6.13, IRQ
 * suspension (Documentation/networking/napi.rst): an application that polls the queue itself
 * from epoll_wait keeps the device's interrupt off for as long as it comes back within
 * irq_suspend_timeout, and when it stops — or finds nothing and goes to sleep — interrupts,
 * the kernel's own processing, take over again.
 *
 * Here the application's thread does the same through link_loop_poll: before it looks at its
 * sockets it takes a burst itself (when no other thread is in one: rx_taken, the device's
 * receive side has one consumer at a time), and when it has nothing it sleeps with the
 * device's descriptor in its own wait (USTACK_POLL_SLEEP, then USTACK_POLL_AWAKE), so that a
 * frame wakes it directly.  While a thread so sleeps, or has polled within
 * USTACK_POLL_HOLD_US (hold_us), the run loop takes the device out of its own wait
 * (app_polls) and sleeps at most a hold at a time, waking to see whether the application is
 * still there; once it is not, the loop puts the device back in its wait and takes the
 * frames, as before.  Holding the device while asleep goes further than Linux, which lets the
 * interrupt back when epoll_wait sleeps: its softirq costs little, where here the "interrupt"
 * is a thread woken to wake another.
 *
 * Two things keep the hand-over from stalling.  A loop that sleeps long — an application
 * thread asleep in its wait and none polling for more than idle_after_us, an idle program,
 * where waking every hold would be a cost of its own — is kicked by the first application
 * thread that wakes (loop_idle), so that the hold bounds the application's absence from then
 * on; and a thread about to wait elsewhere ends the hold at once (USTACK_POLL_RELEASE),
 * kicking the loop if it has the device out of its wait (loop_held).  And
 * each time the loop wakes while the device is held, it looks whether anyone has taken a burst
 * since its last look; if no one has for stall_us while the device had frames at each look (a
 * thread that left its wait without saying so, longjmp'd out of it by a signal handler), the
 * hold is void (app_stalled) until an application thread polls again.  A loop in its long
 * sleep sees such frames at its next look, and voids the hold within stall_us of it.
 */

/* A burst of received frames, unless another thread is taking one. */
static bool loop_rx(struct link_loop *l, const struct link_loop_ops *ops, void *arg)
{
	if (atomic_load_explicit(&l->rx_taken, memory_order_relaxed) || atomic_exchange(&l->rx_taken, 1))
		return false;
	ops->rx(arg);
	atomic_fetch_add_explicit(&l->rx_bursts, 1, memory_order_relaxed);
	atomic_store(&l->rx_taken, 0);
	return true;
}

int link_loop_poll(struct link_loop *l, const struct link_loop_ops *ops, void *arg, unsigned flags)
{
	if (!l->st) {
		errno = EINVAL;
		return -1;
	}
	if (!(flags & USTACK_POLL_RELEASE)) {
		atomic_store(&l->app_until, ustack_clock_monotonic()->now_us(NULL) +
						    atomic_load_explicit(&l->hold_us, memory_order_relaxed));
		if (atomic_load_explicit(&l->app_stalled, memory_order_relaxed))
			atomic_store(&l->app_stalled, 0);
	}
	if (flags & USTACK_POLL_SLEEP) {
		atomic_fetch_add(&l->app_waiting, 1);
		return 0;
	}
	if (flags & USTACK_POLL_AWAKE) {
		atomic_fetch_sub(&l->app_waiting, 1);
		/* sequentially consistent, after the count: app_hold_sleep's other half */
		if (atomic_load(&l->loop_idle) && atomic_exchange(&l->loop_idle, 0))
			link_loop_kick(l); /* the loop sleeps long: from now on it must look every hold */
	}
	if (flags & USTACK_POLL_RELEASE) {
		atomic_store(&l->app_until, 0);
		if (atomic_load(&l->loop_held) && !atomic_load(&l->app_waiting))
			link_loop_kick(l); /* the loop has the device out of its wait: it puts it back */
		return 0;
	}
	/* Not cancelled half-way through a burst: a thread that died in it would leave rx_taken
	 * (no one would take frames again), a kick's tx_kicking, or the stack's lock held — and
	 * the burst has cancellation points (read, recvfrom, sendto, the wake-up hooks' writes).
	 * Deferred cancellation then acts at the caller's next one, as it would have. */
	int cancel;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	bool took = loop_rx(l, ops, arg);
	if (took && ops->flush)
		ops->flush(arg);
	pthread_setcancelstate(cancel, NULL);
	return took;
}

/* Whether an application thread holds the receive side (link_loop_poll). */
static bool app_polls(struct link_loop *l, uint64_t now)
{
	return !atomic_load(&l->app_stalled) &&
	       (atomic_load(&l->app_waiting) > 0 || now < atomic_load(&l->app_until));
}

/* How long the loop may sleep while the application holds the device: a hold, or longer if
 * a thread is asleep in its wait and none has polled for a while — then loop_idle is set
 * first, and the waiting count looked at again, so that a thread waking in between either is
 * seen here or sees loop_idle and kicks. */
static uint64_t app_hold_sleep(struct link_loop *l, uint64_t now)
{
	uint64_t until = atomic_load(&l->app_until);
	if (atomic_load(&l->app_waiting) > 0 && now >= until + l->idle_after_us) {
		atomic_store(&l->loop_idle, 1);
		if (atomic_load(&l->app_waiting) > 0)
			return l->idle_sleep_us;
		atomic_store(&l->loop_idle, 0);
	}
	return atomic_load_explicit(&l->hold_us, memory_order_relaxed);
}

/* The device has frames waiting: a look without taking them.  (On an AF_XDP socket in copy
 * mode whose TX ring needs a wake-up, the kernel's poll also transmits what is on it, as an
 * application's epoll_wait with the device in it does: frames xmit put there, sent early.) */
static bool dev_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && p.revents & POLLIN;
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
	bool armed = true;   /* the device's descriptor in the wait: no application holds it */
	unsigned bursts = 0;  /* rx_bursts at the last look while the device was held */
	uint64_t stalled = 0; /* since when, looking, no one took a burst of the frames waiting */
	for (;;) {
		uint64_t now = clk->now_us(NULL);
		if (now >= deadline_us || (drain && !ustack_undelivered(l->st, NULL)))
			break;
		/* the device in the wait or out of it: an application thread holds it (busy polling
		 * and draining never leave it to one) */
		bool app = !ops->busy && !drain && app_polls(l, now);
		if (app == armed) {
			ev.events = app ? 0 : EPOLLIN;
			if (epoll_ctl(ep, EPOLL_CTL_MOD, ops->fd, &ev) == 0) {
				armed = !app;
				atomic_store(&l->loop_held, app);
			}
		}
		/* Sleep until the next timer (at most a minute, or the deadline; while an application
		 * holds the device, at most app_hold_sleep); a timer armed meanwhile by another thread
		 * kicks us awake through kickfd.  Busy, never sleep. */
		int timeout = 0;
		if (!ops->busy) {
			uint64_t until = deadline_us;
			if (!armed) {
				/* a look every hold; every stall_us at most once frames have been seen
				 * waiting with no one taking them */
				uint64_t look = app_hold_sleep(l, now);
				if (stalled && look > l->stall_us)
					look = l->stall_us;
				until = now + look < until ? now + look : until;
			}
			uint64_t next = next_wakeup(l, ops, arg, now, until);
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
		atomic_store_explicit(&l->loop_idle, 0, memory_order_relaxed);
		now = clk->now_us(NULL);
		if (rx && (ops->busy || drain || !app_polls(l, now))) {
			/* the device's frames, unless an application thread took the hold while this
			 * loop slept with the device in its wait: the next turn takes it out */
			loop_rx(l, ops, arg);
		} else if (!armed) {
			/* held: has anyone taken a burst since the last look, or are frames left? */
			unsigned b = atomic_load_explicit(&l->rx_bursts, memory_order_relaxed);
			if (b != bursts || !dev_readable(ops->fd)) {
				bursts = b;
				stalled = 0;
			} else if (!stalled) {
				stalled = now;
			} else if (now - stalled >= l->stall_us) {
				atomic_store(&l->app_stalled, 1);
				stalled = 0;
			}
		}
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
	atomic_store(&l->loop_held, 0);
	close(ep);
	return rc;
}

/* One ioctl on the interface, its request filled in but for the name: SIOCGIFFLAGS then, for
 * link_if_up, SIOCSIFFLAGS with IFF_UP. */
static int link_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
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

/* The same with a cleared request. */
static int link_ifreq(const char *name, unsigned long req, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof(*ifr));
	return link_ioctl(name, req, ifr);
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

int link_if_driver(const char *name, char *driver, size_t size)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_data = (void *)&info;
	if (link_ioctl(name, SIOCETHTOOL, &ifr) < 0)
		return -1;
	snprintf(driver, size, "%.*s", (int)sizeof(info.driver), info.driver);
	return 0;
}
