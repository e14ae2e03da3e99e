/*
 * An instance and its layers (ustack_create, ustack_destroy): the core from core/stack.c, then
 * each layer's pernet operations bottom up — IPv4 (interfaces, neighbours, reassembly, ICMP),
 * TCP (hash tables, sockets; it registers itself with IP), sockets (epoll) — and top down
 * again at the end, as Linux's register_pernet_subsys list runs.  This is the one place that
 * knows every layer; none of them knows the layers above it.
 */
#include "core/stack.h"
#include "net/net.h"
#include "tcp/tcp.h"

#include <errno.h>

static const struct pernet_operations *const pernet_list[] = {
	&ipv4_net_ops,
	&tcp_net_ops,
	&sock_net_ops,
};
#define NPERNET (sizeof(pernet_list) / sizeof(pernet_list[0]))

static void pernet_exit_from(struct ustack *st, size_t n)
{
	while (n--)
		if (pernet_list[n]->exit)
			pernet_list[n]->exit(st);
}

struct ustack *ustack_create(const struct ustack_config *cfg)
{
	struct ustack *st = stack_alloc(cfg);
	if (!st)
		return NULL;
	for (size_t i = 0; i < NPERNET; i++) {
		if (pernet_list[i]->init && pernet_list[i]->init(st) < 0) {
			int err = errno ? errno : ENOMEM;
			pernet_exit_from(st, i + 1); /* exits cope with a partial init */
			stack_free(st);
			errno = err;
			return NULL;
		}
	}
	return st;
}

void ustack_destroy(struct ustack *st)
{
	if (!st)
		return;
	pernet_exit_from(st, NPERNET);
	stack_free(st);
}
