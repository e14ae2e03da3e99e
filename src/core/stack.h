/*
 * The stack instance.  Everything a stack knows lives here; there are no globals, so two
 * instances in one process share nothing but the code.
 */
#ifndef USTACK_CORE_STACK_H
#define USTACK_CORE_STACK_H

#include <ustack/stack.h>

#include "core/lock.h"
#include "core/pkt.h"
#include "core/random.h"
#include "core/snmp.h"
#include "core/sysctl.h"
#include "core/timer.h"
#include "core/trace.h"

#define STACK_IF_MAX 8 /* interfaces per instance (net/netdev.h's NETDEV_MAX) */
#define STACK_DOORBELLS STACK_IF_MAX

struct ustack {
	struct stack_mutex lock; /* core/lock.h: every entry point takes it (stack_lock) */
	const struct ustack_clock *clock;
	uint64_t now; /* µs; refreshed on every entry, never goes backwards */
	int64_t wall_off; /* µs from the clock to CLOCK_REALTIME, fixed at creation: what
	                   * SO_TIMESTAMPING reports (a virtual clock started at the real time
	                   * stays the wall clock of its simulation) */
	char name[32];

	struct timer_wheel wheel;
	struct pkt_pool pool;
	struct secrets secrets;
	struct ustack_sysctls sysctl;
	uint64_t mib[MIB_MAX];

	/* Each layer's own state, set up by its pernet operations (below): core names no
	 * layer above it. */
	struct ipv4_net *net;           /* net/net.h */
	struct tcp_state_tables *tcp;   /* tcp/tcp.h */

	struct trace_sub trace[TRACE_SUBS_MAX];
	int ntrace; /* subscribers of more than USTACK_TRACE_LOG: the packet path's events are made */
	int nlog;   /* subscribers of USTACK_TRACE_LOG */
	uint8_t trace_link_type[STACK_IF_MAX + 1]; /* by ifindex, for the tracer (net/netdev.c sets it) */

	/* A run loop asleep until sleep_until (0: awake) is woken when another thread arms a
	 * timer that is due earlier (a connect() on an application thread, say). */
	void (*wakeup)(void *arg);
	void *wakeup_arg;
	uint64_t sleep_until;

	/* Doorbells owed: links that queued frames since the lock was taken (stack_doorbell). */
	struct stack_doorbell {
		void (*fn)(void *link);    /* under the lock (may be NULL) */
		void (*after)(void *link); /* once it is released (may be NULL) */
		void *link;
	} doorbell[STACK_DOORBELLS];
	unsigned ndoorbell;
};

/*
 * A layer's part in an instance's life (Linux's pernet_operations): init when the instance is
 * created, in layer order from the bottom up; exit when it is destroyed, top down.  The list
 * is the instance's (socket/instance.c), so core calls no layer above it.
 */
struct pernet_operations {
	const char *name;
	int (*init)(struct ustack *st);   /* 0, or -1 with errno */
	void (*exit)(struct ustack *st);  /* must cope with a partial init */
};

/* The instance without its layers (core/stack.c), and its end. */
struct ustack *stack_alloc(const struct ustack_config *cfg);
void stack_free(struct ustack *st);

/* Public entry points bracket their work with these: take the lock and read the clock. */
void stack_lock(struct ustack *st);
/* Rings the doorbells owed (stack_doorbell), releases the lock, then rings their after parts. */
void stack_unlock(struct ustack *st);
/* A link queued a frame and wants fn(link) called once before the lock is released, and
 * after(link) once it is. */
void stack_doorbell(struct ustack *st, void (*fn)(void *link), void (*after)(void *link), void *link);
/* Rings them now, for a caller about to sleep on the instance's wake-up word
 * (tcp/sock.c), or what it sent would wait for the next unlock: the first parts under the lock;
 * then, if a link has an after part, the lock is let go for those and taken again.  Returns
 * whether it was let go (a wake-up may have come meanwhile). */
bool stack_ring_doorbells(struct ustack *st);

#endif
