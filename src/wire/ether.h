/* Ethernet II framing. */
#ifndef USTACK_WIRE_ETHER_H
#define USTACK_WIRE_ETHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806

struct eth_repr {
	uint8_t dst[ETH_ALEN], src[ETH_ALEN];
	uint16_t type;
};

/* 0 on success, -1 when the frame is shorter than a header. */
int eth_parse(const uint8_t *f, size_t len, struct eth_repr *r);
void eth_emit(uint8_t *f, const struct eth_repr *r);
bool eth_is_broadcast(const uint8_t *mac);
bool eth_is_multicast(const uint8_t *mac);
extern const uint8_t eth_broadcast[ETH_ALEN];

#endif
