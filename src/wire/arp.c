#include "wire/arp.h"
#include "wire/bytes.h"

#include <string.h>

enum arp_parse_err arp_parse(const uint8_t *b, size_t len, struct arp_repr *r)
{
	if (len < ARP_LEN)
		return ARP_ERR_SHORT;
	if (rd16(b) != 1 || rd16(b + 2) != 0x0800 || b[4] != 6 || b[5] != 4)
		return ARP_ERR_FORMAT;
	r->op = rd16(b + 6);
	if (r->op != ARPOP_REQUEST && r->op != ARPOP_REPLY)
		return ARP_ERR_OP;
	memcpy(r->sha, b + 8, 6);
	r->spa = rd32(b + 14);
	memcpy(r->tha, b + 18, 6);
	r->tpa = rd32(b + 24);
	return ARP_OK;
}

void arp_emit(uint8_t *b, const struct arp_repr *r)
{
	wr16(b, 1);
	wr16(b + 2, 0x0800);
	b[4] = 6;
	b[5] = 4;
	wr16(b + 6, r->op);
	memcpy(b + 8, r->sha, 6);
	wr32(b + 14, r->spa);
	memcpy(b + 18, r->tha, 6);
	wr32(b + 24, r->tpa);
}
