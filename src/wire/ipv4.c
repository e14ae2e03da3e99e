#include "wire/ipv4.h"
#include "wire/bytes.h"
#include "wire/checksum.h"

/* Walks the options as Linux's ip_options_compile() does for well-formedness. */
static bool options_ok(const uint8_t *o, size_t len, bool *srr)
{
	size_t i = 0;
	while (i < len) {
		uint8_t type = o[i];
		if (type == 0) /* end of list */
			break;
		if (type == 1) { /* no-op */
			i++;
			continue;
		}
		if (i + 1 >= len)
			return false;
		uint8_t olen = o[i + 1];
		if (olen < 2 || olen > len - i)
			return false;
		if (type == 0x83 || type == 0x89)
			*srr = true;
		i += olen;
	}
	return true;
}

enum ipv4_parse_err ipv4_parse(const uint8_t *b, size_t len, struct ipv4_repr *r)
{
	r->l2_bcast = r->bcast = false;
	if (len < IPV4_HLEN)
		return IPV4_ERR_SHORT;
	if ((b[0] >> 4) != 4 || (b[0] & 0xf) < 5)
		return IPV4_ERR_VERSION;
	r->ihl = (uint8_t)((b[0] & 0xf) * 4);
	if (r->ihl > len)
		return IPV4_ERR_HDRLEN;
	if (csum_fold(csum_partial(b, r->ihl, 0)) != 0)
		return IPV4_ERR_CSUM;
	r->tot_len = rd16(b + 2);
	r->tos = b[1];
	r->id = rd16(b + 4);
	uint16_t fo = rd16(b + 6);
	r->df = fo & IP_DF;
	r->mf = fo & IP_MF;
	r->frag_off = (uint16_t)((fo & IP_OFFMASK) * 8);
	r->ttl = b[8];
	r->proto = b[9];
	r->saddr = rd32(b + 12);
	r->daddr = rd32(b + 16);
	/* Fields are filled before the length checks, so an ICMP error quoting a truncated
	 * datagram can still read them. */
	if (r->tot_len > len)
		return IPV4_ERR_TRUNCATED;
	if (r->tot_len < r->ihl)
		return IPV4_ERR_TOTLEN;
	r->srr = false;
	r->csum_ok = false;
	r->gso_size = 0;
	if (r->ihl > IPV4_HLEN && !options_ok(b + IPV4_HLEN, r->ihl - IPV4_HLEN, &r->srr))
		return IPV4_ERR_OPTIONS;
	return IPV4_OK;
}

void ipv4_emit(uint8_t *b, const struct ipv4_repr *r)
{
	b[0] = 0x45;
	b[1] = r->tos;
	wr16(b + 2, r->tot_len);
	wr16(b + 4, r->id);
	wr16(b + 6, (uint16_t)((r->df ? IP_DF : 0) | (r->mf ? IP_MF : 0) | (r->frag_off / 8)));
	b[8] = r->ttl;
	b[9] = r->proto;
	wr16(b + 10, 0);
	wr32(b + 12, r->saddr);
	wr32(b + 16, r->daddr);
	wr16(b + 10, csum_fold(csum_partial(b, IPV4_HLEN, 0)));
}

const char *ipv4_parse_err_str(enum ipv4_parse_err e)
{
	static const char *const s[] = { "ok", "short header", "bad version or ihl",
					 "ihl beyond frame", "bad checksum", "truncated",
					 "tot_len below ihl", "bad options" };
	return (unsigned)e < sizeof(s) / sizeof(s[0]) ? s[e] : "?";
}
