/*
 * The run loop every link driver shares (TAP, AF_XDP): sleep in epoll until the device has
 * frames, the stack's next timer is due, another thread armed an earlier timer (the kick), or
 * someone asked the loop to stop; then let the driver take a burst of frames, run the due
 * timers, and let the driver flush what the stack sent meanwhile.
 */
#ifndef USTACK_LINK_LOOP_H
#define USTACK_LINK_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ustack;

struct link_loop {
	int stopfd, kickfd; /* eventfds: ustack_*_stop (async-signal-safe), the stack's wakeup */
	struct ustack *st;
	/* run to completion (link_loop_poll) */
	atomic_int rx_taken;        /* a thread is taking a burst: the device's receive side */
	atomic_uint rx_bursts;      /* bursts taken, by any thread */
	atomic_int app_waiting;     /* application threads asleep with the device in their wait */
	_Atomic uint64_t app_until; /* an application thread polls the device until then (µs) */
	atomic_int loop_idle;       /* the loop sleeps past the hold: an application waking kicks it */
	atomic_int app_stalled;     /* the holder left frames waiting: the loop takes them until it polls */
	atomic_int loop_held;       /* the loop has the device out of its wait (an application holds it) */
	/* the loop's patience with a holder (USTACK_POLL_HOLD_US and loop.c's defaults; a test
	 * may change them) */
	atomic_uint hold_us;
	uint32_t idle_after_us, idle_sleep_us, stall_us;
};

struct link_loop_ops {
	int fd;                                  /* the device's descriptor, waited on for EPOLLIN */
	bool busy;                               /* never sleep: poll the device every turn */
	void (*rx)(void *arg);                   /* a bounded burst of received frames */
	void (*due)(void *arg, uint64_t now);    /* each turn, before the timers (may be NULL) */
	void (*flush)(void *arg);                /* each turn, after the timers (may be NULL) */
	uint64_t (*next)(void *arg, uint64_t t); /* an earlier wake-up than t, or t (may be NULL) */
};

int link_loop_init(struct link_loop *l);
void link_loop_fini(struct link_loop *l);
/* Makes a sleeping loop look at the stack's timers again (ustack_set_wakeup's function). */
void link_loop_kick(void *loop);
void link_loop_stop(struct link_loop *l);
/*
 * Runs until link_loop_stop (1), the monotonic deadline (0), or with drain once no closed
 * connection owes its peer (0); -1 with errno on error.
 */
int link_loop_run(struct link_loop *l, const struct link_loop_ops *ops, void *arg, uint64_t deadline_us,
		  bool drain);

/*
 * An application thread's poll (ustack_xdp_poll, ustack_tap_poll): a burst of received frames
 * if no other thread is taking one, and the device's receive side held from the run loop
 * (USTACK_POLL_*).  1 if it ran a burst (whether or not frames were waiting), 0 if another
 * thread was in one or the call was USTACK_POLL_SLEEP or _RELEASE; -1 with EINVAL before the
 * device is attached (attach first, then let other threads poll).
 */
int link_loop_poll(struct link_loop *l, const struct link_loop_ops *ops, void *arg, unsigned flags);

/* The kernel's interface `name`, through an ioctl on a throwaway socket (<net/if.h> names):
 * link_if_up brings it up (IFF_UP) if it is not; link_if_mac reads its MAC address, link_if_mtu
 * its MTU, link_if_driver its driver's name (ethtool -i).  0 (link_if_mtu: the MTU), or -1
 * with errno. */
int link_if_up(const char *name);
int link_if_mac(const char *name, uint8_t mac[6]);
int link_if_mtu(const char *name);
int link_if_driver(const char *name, char *driver, size_t size);

#endif
