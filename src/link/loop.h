/*
 * The run loop every link driver shares (TAP, AF_XDP): sleep in epoll until the device has
 * frames, the stack's next timer is due, another thread armed an earlier timer (the kick), or
 * someone asked the loop to stop; then let the driver take a burst of frames, run the due
 * timers, and let the driver flush what the stack sent meanwhile.
 */
#ifndef USTACK_LINK_LOOP_H
#define USTACK_LINK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct ustack;

struct link_loop {
	int stopfd, kickfd; /* eventfds: ustack_*_stop (async-signal-safe), the stack's wakeup */
	struct ustack *st;
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

/* The kernel's interface `name`, through an ioctl on a throwaway socket (<net/if.h> names):
 * link_if_up brings it up (IFF_UP) if it is not; link_if_mac reads its MAC address, link_if_mtu
 * its MTU.  0 (link_if_mtu: the MTU), or -1 with errno. */
int link_if_up(const char *name);
int link_if_mac(const char *name, uint8_t mac[6]);
int link_if_mtu(const char *name);

#endif
