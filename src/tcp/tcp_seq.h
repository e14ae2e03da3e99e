/*
 * Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4), as Linux's include/net/tcp.h has
 * it: one copy for every file.  before(a, b) is true when a comes earlier than b on the
 * sequence circle; after is its mirror, written through before as Linux writes it, so the two
 * agree everywhere — including at distance exactly 2^31, where each of a and b is "before"
 * the other (both calls are true: Linux's semantics, pinned by test_tcp_seq).
 */
#ifndef USTACK_TCP_TCP_SEQ_H
#define USTACK_TCP_TCP_SEQ_H

#include <stdbool.h>
#include <stdint.h>

static inline bool before(uint32_t seq1, uint32_t seq2)
{
	return (int32_t)(seq1 - seq2) < 0;
}
#define after(seq2, seq1) before(seq1, seq2)

/* is s2 <= s1 <= s3? */
static inline bool between(uint32_t seq1, uint32_t seq2, uint32_t seq3)
{
	return seq3 - seq2 >= seq1 - seq2;
}

#endif
