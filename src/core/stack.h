/*
 * The stack instance.  Everything a stack knows lives here; there are no globals, so two
 * instances in one process share nothing but the code.
 */
#ifndef USTACK_CORE_STACK_H
#define USTACK_CORE_STACK_H

#include <pthread.h>
#include <ustack/stack.h>

#include "core/pkt.h"
#include "core/random.h"
#include "core/snmp.h"
#include "core/sysctl.h"
#include "core/timer.h"
#include "core/trace.h"
#include "net/arp.h"
#include "net/icmp.h"
#include "net/ip.h"
#include "net/netdev.h"
#include "net/route.h"
#include "tcp/tcp.h"

struct ustack {
	pthread_mutex_t lock;
	const struct ustack_clock *clock;
	uint64_t now; /* µs; refreshed on every entry, never goes backwards */
	char name[32];

	struct timer_wheel wheel;
	struct pkt_pool pool;
	struct secrets secrets;
	struct ustack_sysctls sysctl;
	uint64_t mib[MIB_MAX];

	struct netdev devs[NETDEV_MAX];
	int ndevs;
	struct route_table routes;
	struct neigh_table neigh;
	struct ipfrag_state frag;
	struct icmp_state icmp;
	uint32_t ip_idents[IP_IDENTS_SZ];
	struct tcp_state_tables tcp;

	struct trace_sub trace[TRACE_SUBS_MAX];
	int ntrace;

	/* A run loop asleep until sleep_until (0: awake) is woken when another thread arms a
	 * timer that is due earlier (a connect() on an application thread, say). */
	void (*wakeup)(void *arg);
	void *wakeup_arg;
	uint64_t sleep_until;
};

/* Public entry points bracket their work with these: take the lock and read the clock. */
void stack_lock(struct ustack *st);
void stack_unlock(struct ustack *st);

#endif
