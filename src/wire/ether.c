#include "wire/ether.h"
#include "wire/bytes.h"

#include <string.h>

const uint8_t eth_broadcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

int eth_parse(const uint8_t *f, size_t len, struct eth_repr *r)
{
	if (len < ETH_HLEN)
		return -1;
	memcpy(r->dst, f, ETH_ALEN);
	memcpy(r->src, f + 6, ETH_ALEN);
	r->type = rd16(f + 12);
	return 0;
}

void eth_emit(uint8_t *f, const struct eth_repr *r)
{
	memcpy(f, r->dst, ETH_ALEN);
	memcpy(f + 6, r->src, ETH_ALEN);
	wr16(f + 12, r->type);
}

bool eth_is_broadcast(const uint8_t *mac)
{
	return memcmp(mac, eth_broadcast, ETH_ALEN) == 0;
}

bool eth_is_multicast(const uint8_t *mac)
{
	return mac[0] & 1;
}
