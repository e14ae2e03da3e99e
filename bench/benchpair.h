/*
 * Two ustack instances joined by the in-memory link on one virtual clock, as the benchmarks
 * that time whole connections set them up (bench_scaling, bench_bind_port): a "client" and a
 * "server", each with a fixed secret seed so runs draw the same ISNs and ports, MTU 1500.
 */
#ifndef USTACK_BENCH_BENCHPAIR_H
#define USTACK_BENCH_BENCHPAIR_H

#include <ustack/link.h>
#include <ustack/stack.h>

struct bench_pair {
	struct ustack_vclock vc;
	struct ustack *a, *b;      /* client, server */
	struct ustack_memlink *ml;
	int ia, ib;                /* their interfaces on the link */
};

/* p->vc must stay where it is: both stacks keep a pointer to its clock. */
static inline void bench_pair_create(struct bench_pair *p)
{
	ustack_vclock_init(&p->vc, 0);
	static const uint8_t sa_seed[32] = { 1 }, sb_seed[32] = { 2 };
	struct ustack_config ca = { .clock = &p->vc.clock, .secret_seed = sa_seed, .name = "client" };
	struct ustack_config cb = { .clock = &p->vc.clock, .secret_seed = sb_seed, .name = "server" };
	p->a = ustack_create(&ca);
	p->b = ustack_create(&cb);
	p->ml = ustack_memlink_create(&p->vc.clock, NULL);
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	p->ia = ustack_memlink_attach(p->ml, 0, p->a, "m0", ma, 1500);
	p->ib = ustack_memlink_attach(p->ml, 1, p->b, "m0", mb, 1500);
}

#endif
