#include "net/net.h"

#include <errno.h>
#include <string.h>

static bool route_matches(const struct route_entry *r, uint32_t daddr)
{
	return (daddr & prefix_mask(r->prefixlen)) == r->dst;
}

int route_insert(struct ustack *st, const struct route_entry *r)
{
	struct route_table *t = &st->net->routes;
	int pos = 0;

	for (int i = 0; i < t->n; i++) {
		const struct route_entry *e = &t->e[i];
		if (e->dst == r->dst && e->prefixlen == r->prefixlen && e->metric == r->metric) {
			errno = EEXIST;
			return -1;
		}
	}
	if (t->n == ROUTE_MAX) {
		errno = ENOBUFS;
		return -1;
	}
	while (pos < t->n && (t->e[pos].prefixlen > r->prefixlen ||
			      (t->e[pos].prefixlen == r->prefixlen && t->e[pos].metric <= r->metric)))
		pos++;
	memmove(&t->e[pos + 1], &t->e[pos], sizeof(t->e[0]) * (size_t)(t->n - pos));
	t->e[pos] = *r;
	t->n++;
	return 0;
}

int ip_route_connect(struct ustack *st, uint32_t daddr, uint32_t saddr,
		     struct ustack_route_result *res)
{
	static const struct route_key none;
	return ip_route_output(st, daddr, saddr, &none, res);
}

/*
 * ip_route_output (__ip_route_output_key): the longest matching route, within what the socket
 * allows.  A source address must be ours (-EINVAL otherwise) unless the socket is transparent:
 * IP_FREEBIND lets bind() take a foreign address, but connect() from it fails until the address
 * is configured, as in Linux.  A socket bound to a device uses only that device's routes, and
 * if none matches, Linux assumes the destination is on that link ("routing tables are
 * wrong") and so does ustack.
 */
int ip_route_output(struct ustack *st, uint32_t daddr, uint32_t saddr, const struct route_key *key,
		    struct ustack_route_result *res)
{
	if (saddr && !key->anysrc && !netdev_by_local_addr(st, saddr))
		return -EINVAL;
	if (key->oif && !netdev_get(st, key->oif))
		return -ENODEV;
	for (int i = 0; i < st->net->routes.n; i++) {
		const struct route_entry *r = &st->net->routes.e[i];
		if (!route_matches(r, daddr))
			continue;
		if ((key->oif && r->ifindex != key->oif) || (key->onlink && r->gateway))
			continue;
		struct netdev *dev = netdev_get(st, r->ifindex);
		if (!dev)
			continue;
		uint32_t nh = r->gateway ? r->gateway : daddr;
		uint32_t src = saddr ? saddr : r->prefsrc ? r->prefsrc : inet_select_addr(st, dev, nh);
		if (!src)
			return -EADDRNOTAVAIL;
		res->ifindex = dev->ifindex;
		res->nexthop.s_addr = htonl(nh);
		res->saddr.s_addr = htonl(src);
		res->mtu = r->mtu && r->mtu < dev->mtu ? r->mtu : dev->mtu;
		return 0;
	}
	if (key->oif) { /* on link through the bound device */
		struct netdev *dev = netdev_get(st, key->oif);
		uint32_t src = saddr ? saddr : inet_select_addr(st, dev, daddr);
		if (!src)
			return -EADDRNOTAVAIL;
		res->ifindex = dev->ifindex;
		res->nexthop.s_addr = htonl(daddr);
		res->saddr.s_addr = htonl(src);
		res->mtu = dev->mtu;
		return 0;
	}
	return -ENETUNREACH;
}

int ustack_route_add(struct ustack *st, const struct ustack_route *ur)
{
	if (!ur || ur->prefixlen > 32) {
		errno = EINVAL;
		return -1;
	}
	struct route_entry r = {
		.dst = ntohl(ur->dst.s_addr),
		.prefixlen = ur->prefixlen,
		.gateway = ntohl(ur->gateway.s_addr),
		.prefsrc = ntohl(ur->prefsrc.s_addr),
		.ifindex = ur->ifindex,
		.mtu = ur->mtu,
		.metric = ur->metric,
	};
	/* Linux: "Invalid prefix for given prefix length" */
	if (r.dst & ~prefix_mask(r.prefixlen)) {
		errno = EINVAL;
		return -1;
	}
	int rc = 0;
	stack_lock(st);
	if (r.prefsrc && !netdev_by_local_addr(st, r.prefsrc)) {
		errno = EINVAL;
		rc = -1;
	} else if (r.gateway) {
		/* The gateway must be on-link through a route without a gateway of its own
		 * ("Nexthop has invalid gateway"). */
		int oif = 0;
		for (int i = 0; i < st->net->routes.n && !oif; i++)
			if (!st->net->routes.e[i].gateway && route_matches(&st->net->routes.e[i], r.gateway) &&
			    (!r.ifindex || st->net->routes.e[i].ifindex == r.ifindex))
				oif = st->net->routes.e[i].ifindex;
		if (!oif) {
			errno = ENETUNREACH;
			rc = -1;
		} else {
			r.ifindex = oif;
		}
	} else if (!netdev_get(st, r.ifindex)) {
		errno = ENODEV;
		rc = -1;
	}
	if (rc == 0)
		rc = route_insert(st, &r);
	stack_unlock(st);
	return rc;
}

int ustack_route_del(struct ustack *st, struct in_addr dst, unsigned prefixlen)
{
	uint32_t d = ntohl(dst.s_addr);
	int rc = -1;
	stack_lock(st);
	struct route_table *t = &st->net->routes;
	for (int i = 0; i < t->n; i++) {
		if (t->e[i].dst == d && t->e[i].prefixlen == prefixlen) {
			memmove(&t->e[i], &t->e[i + 1], sizeof(t->e[0]) * (size_t)(t->n - i - 1));
			t->n--;
			rc = 0;
			break;
		}
	}
	stack_unlock(st);
	if (rc)
		errno = ESRCH;
	return rc;
}

int ustack_route_lookup(struct ustack *st, struct in_addr daddr, struct in_addr saddr,
			struct ustack_route_result *out)
{
	stack_lock(st);
	int rc = ip_route_connect(st, ntohl(daddr.s_addr), ntohl(saddr.s_addr), out);
	stack_unlock(st);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}
