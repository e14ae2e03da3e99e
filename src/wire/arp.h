/* ARP for IPv4 over Ethernet (RFC 826). */
#ifndef USTACK_WIRE_ARP_H
#define USTACK_WIRE_ARP_H

#include <stddef.h>
#include <stdint.h>

#define ARP_LEN 28
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

struct arp_repr {
	uint16_t op;
	uint8_t sha[6], tha[6];
	uint32_t spa, tpa; /* host order */
};

enum arp_parse_err { ARP_OK = 0, ARP_ERR_SHORT, ARP_ERR_FORMAT, ARP_ERR_OP };
/* Accepts only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4), op 1 or 2. */
enum arp_parse_err arp_parse(const uint8_t *b, size_t len, struct arp_repr *r);
void arp_emit(uint8_t *b, const struct arp_repr *r);

#endif
