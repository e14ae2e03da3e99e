/*
 * Secrets and randomness.
 *
 * Every value an off-path attacker must not predict — ISNs (RFC 6528), ephemeral port
 * offsets (RFC 6056), SYN cookies, Fast Open cookies, IP IDs — is a keyed SipHash of the
 * connection's addresses, as in Linux (net/core/secure_seq.c), with keys drawn once per
 * stack from libsodium's CSPRNG.  Each use gets its own key, so learning one (say, by
 * collecting cookies) reveals nothing about another.
 *
 * A stack created with a seed derives the same keys every time, which tests need for
 * byte-exact replies.  Non-secret randomness (ARP timer jitter, the memlink's impairments)
 * comes from a small PRNG seeded the same way, so runs are reproducible.
 */
#ifndef USTACK_CORE_RANDOM_H
#define USTACK_CORE_RANDOM_H

#include <stdint.h>
#include <stddef.h>

enum secret_use {
	SECRET_ISN,
	SECRET_TS_OFF, /* unused (the offset comes with the ISN, tcp/isn.c): kept, the keys after stay put */
	SECRET_PORT_OFFSET,
	SECRET_SYNCOOKIE0,
	SECRET_SYNCOOKIE1,
	SECRET_FASTOPEN,
	SECRET_IP_ID,
	SECRET_HASH, /* salts for in-memory hash tables (neighbours, fragments) */
	SECRET_MAX
};

struct secrets {
	uint8_t key[SECRET_MAX][16]; /* SipHash-2-4 keys */
	uint64_t prng;                /* xorshift64* state, never zero */
};

void secrets_init(struct secrets *s, const uint8_t *seed32);
/* SipHash-2-4 of msg under the key for `use`. */
uint64_t secret_hash(const struct secrets *s, enum secret_use use, const void *msg, size_t len);
/* SipHash-2-4 under an explicit 16-byte key, its 8 bytes as the reference implementation
 * (and Linux's cpu_to_le64(siphash())) lay them out. */
void siphash24_bytes(uint8_t out[8], const void *msg, size_t len, const uint8_t key[16]);
/* Non-secret pseudo-random numbers (jitter, tie-breaks). */
uint32_t prng_u32(struct secrets *s);
/* Uniform in [0, n), n > 0. */
uint32_t prng_below(struct secrets *s, uint32_t n);

#endif
