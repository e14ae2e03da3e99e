#include "wire/icmp.h"
#include "wire/bytes.h"
#include "wire/checksum.h"

int icmp_parse(const uint8_t *b, size_t len, struct icmp_repr *r)
{
	if (len < ICMP_HLEN)
		return -1;
	r->type = b[0];
	r->code = b[1];
	r->rest = rd32(b + 4);
	return 0;
}

int icmp_csum_ok(const uint8_t *b, size_t len)
{
	return csum_fold(csum_partial(b, len, 0)) == 0;
}

void icmp_emit(uint8_t *b, size_t len, const struct icmp_repr *r)
{
	b[0] = r->type;
	b[1] = r->code;
	wr16(b + 2, 0);
	wr32(b + 4, r->rest);
	wr16(b + 2, csum_fold(csum_partial(b, len, 0)));
}

const char *icmp_type_str(uint8_t type)
{
	switch (type) {
	case ICMP_ECHOREPLY: return "echo reply";
	case ICMP_DEST_UNREACH: return "unreachable";
	case ICMP_ECHO: return "echo request";
	case ICMP_TIME_EXCEEDED: return "time exceeded";
	case ICMP_PARAMETERPROB: return "parameter problem";
	default: return "type ?";
	}
}
