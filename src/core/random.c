#include "core/random.h"

#include <sodium.h>
#include <string.h>

void secrets_init(struct secrets *s, const uint8_t *seed32)
{
	uint8_t material[sizeof(s->key) + sizeof(s->prng)];

	if (seed32)
		randombytes_buf_deterministic(material, sizeof(material), seed32);
	else
		randombytes_buf(material, sizeof(material));
	memcpy(s->key, material, sizeof(s->key));
	memcpy(&s->prng, material + sizeof(s->key), sizeof(s->prng));
	if (!s->prng)
		s->prng = 0x9e3779b97f4a7c15ull;
	sodium_memzero(material, sizeof(material));
}

uint64_t secret_hash(const struct secrets *s, enum secret_use use, const void *msg, size_t len)
{
	uint8_t out[crypto_shorthash_siphash24_BYTES];
	uint64_t v;
	crypto_shorthash_siphash24(out, msg, len, s->key[use]);
	memcpy(&v, out, sizeof(v));
	return v;
}

void siphash24_bytes(uint8_t out[8], const void *msg, size_t len, const uint8_t key[16])
{
	crypto_shorthash_siphash24(out, msg, len, key);
}

uint32_t prng_u32(struct secrets *s)
{
	uint64_t x = s->prng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->prng = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

uint32_t prng_below(struct secrets *s, uint32_t n)
{
	return (uint32_t)(((uint64_t)prng_u32(s) * n) >> 32);
}
