/*
 * Byte rings for a connection's send and receive queues.  A socket allocates each once (and
 * doubles it when it must grow), so the data path moves bytes without allocating: the send
 * ring holds everything from snd_una to the last byte the application wrote, the receive ring
 * the in-order bytes the application has not read yet.
 */
#ifndef USTACK_TCP_TCP_BUF_H
#define USTACK_TCP_TCP_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tcp_buf {
	uint8_t *data;
	uint32_t size, head, len;
};

static inline uint32_t tcp_buf_space(const struct tcp_buf *b) { return b->size - b->len; }

/* Grows the ring to at least `size` bytes, keeping its first `keep` bytes from the head —
 * its contents, and for the receive ring the out-of-order data stored past them; 0 or -1. */
static inline int tcp_buf_reserve_keep(struct tcp_buf *b, uint32_t size, uint32_t keep)
{
	if (size <= b->size)
		return 0;
	uint8_t *d = malloc(size);
	if (!d)
		return -1;
	for (uint32_t i = 0, at = b->head; i < keep;) {
		uint32_t run = keep - i < b->size - at ? keep - i : b->size - at;
		memcpy(d + i, b->data + at, run);
		i += run;
		at = 0;
	}
	free(b->data);
	b->data = d;
	b->size = size;
	b->head = 0;
	return 0;
}

static inline int tcp_buf_reserve(struct tcp_buf *b, uint32_t size)
{
	return tcp_buf_reserve_keep(b, size, b->len);
}

/* Appends up to n bytes; returns how many fit. */
static inline uint32_t tcp_buf_push(struct tcp_buf *b, const uint8_t *src, uint32_t n)
{
	if (n > tcp_buf_space(b))
		n = tcp_buf_space(b);
	uint32_t tail = (uint32_t)(((uint64_t)b->head + b->len) % (b->size ? b->size : 1));
	uint32_t first = n < b->size - tail ? n : b->size - tail;
	memcpy(b->data + tail, src, first);
	memcpy(b->data, src + first, n - first);
	b->len += n;
	return n;
}

/* Copies n bytes starting `off` bytes past the head (which must exist). */
static inline void tcp_buf_peek(const struct tcp_buf *b, uint32_t off, uint8_t *dst, uint32_t n)
{
	uint32_t at = (uint32_t)(((uint64_t)b->head + off) % b->size);
	uint32_t first = n < b->size - at ? n : b->size - at;
	memcpy(dst, b->data + at, first);
	memcpy(dst + first, b->data, n - first);
}

static inline void tcp_buf_consume(struct tcp_buf *b, uint32_t n)
{
	/* the head is not reset when the ring empties: out-of-order data past it may be placed
	 * relative to it (the receive side resets it when there is none, tcp_recvmsg) */
	b->head = (uint32_t)(((uint64_t)b->head + n) % (b->size ? b->size : 1));
	b->len -= n;
}

static inline void tcp_buf_free(struct tcp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

#endif
