/*
 * The IPv4 layer of an instance (Linux's af_inet.c and the per-net init of net/ipv4):
 * its state, set up and torn down by ipv4_net_ops, and the table of protocols above IP
 * (inet_add_protocol) through which ip_local_deliver and ICMP errors reach them.
 */
#include "net/net.h"

#include <errno.h>
#include <stdlib.h>

int inet_add_protocol(struct ustack *st, const struct net_protocol *prot, uint8_t protocol)
{
	if (st->net->protos[protocol]) {
		errno = EBUSY;
		return -1;
	}
	st->net->protos[protocol] = prot;
	return 0;
}

static int ipv4_net_init(struct ustack *st)
{
	st->net = calloc(1, sizeof(*st->net));
	if (!st->net)
		return -1;
	/* ICMP's global rate limit starts with a full bucket (icmp_global) */
	st->net->icmp.credit = (uint32_t)st->sysctl.icmp_msgs_burst;
	st->net->icmp.stamp_us = st->now;
	neigh_init(st);
	return 0;
}

static void ipv4_net_exit(struct ustack *st)
{
	if (!st->net)
		return;
	neigh_destroy(st);
	ipfrag_destroy(st);
	for (int i = 0; i < st->net->ndevs; i++)
		netdev_pcap_close(&st->net->devs[i]);
	free(st->net);
	st->net = NULL;
}

const struct pernet_operations ipv4_net_ops = {
	.name = "ipv4",
	.init = ipv4_net_init,
	.exit = ipv4_net_exit,
};
