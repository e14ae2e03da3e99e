/*
 * The descriptor table (Linux's fs/file.c: alloc_fd, find_next_fd, __set_open_fd,
 * __clear_open_fd).
 *
 * POSIX hands out the lowest free descriptor, and programs rely on it (dup2 dances, a
 * server that closes and reopens).  Finding it by walking the table costs one probe per
 * open descriptor: at 100,000 connections that walk was 70% of connection setup.
 *
 * Linux keeps a bitmap of open descriptors, a second bitmap with one bit per full word of
 * the first (full_fds_bits), and next_fd, below which every descriptor is taken; it starts
 * at next_fd and skips full words 64 descriptors at a time.  That is still a walk of
 * (open / 4096) words when the free slot is far above next_fd — a server accepting
 * connection after connection with ten million open walks 2,400 words each time.  ustack
 * carries Linux's idea one step further: FDT_LEVELS bitmaps, each bit of level n+1 set when
 * its word of level n is full, so the lowest free descriptor at or after any point is found
 * by at most FDT_LEVELS word probes up and as many down: O(log64 n), with next_fd kept as
 * Linux keeps it so that the common case (the descriptor just closed) is one probe.
 *
 * The table grows by doubling, up to fs.nr_open descriptors (Linux's limit on
 * RLIMIT_NOFILE; ustack has no rlimit, so the sysctl is the limit).  It never shrinks, as
 * Linux's does not.
 */
#include "core/stack.h"
#include "tcp/tcp.h"
#include "socket/socket.h"

#include <stdlib.h>
#include <string.h>

#define FD_BASE 3 /* 0, 1 and 2 are the process's own */

static size_t level_words(size_t cap, int lvl)
{
	size_t bits = cap;
	for (int i = 0; i <= lvl; i++)
		bits = (bits + 63) / 64;
	return bits ? bits : 1;
}

/* Level lvl's bit for index i (level 0: the descriptor itself; level n: word i of level
 * n-1) is set; a word that fills sets its bit one level up. */
static void fdt_set(struct fdtable *t, size_t i)
{
	for (int lvl = 0; lvl < FDT_LEVELS; lvl++) {
		uint64_t *w = &t->bits[lvl][i / 64];
		*w |= 1ull << (i % 64);
		if (*w != ~0ull)
			return;
		i /= 64;
	}
}

static void fdt_clear(struct fdtable *t, size_t i)
{
	for (int lvl = 0; lvl < FDT_LEVELS; lvl++) {
		uint64_t *w = &t->bits[lvl][i / 64];
		bool was_full = *w == ~0ull;
		*w &= ~(1ull << (i % 64));
		if (!was_full)
			return;
		i /= 64;
	}
}

/* The lowest clear bit at or after pos on level lvl, or SIZE_MAX: the rest of pos's word,
 * then the next word that is not full (found one level up), then its lowest clear bit. */
static size_t fdt_find(const struct fdtable *t, int lvl, size_t pos)
{
	size_t nwords = level_words(t->cap, lvl);
	size_t w = pos / 64;
	if (w >= nwords)
		return SIZE_MAX;
	uint64_t m = t->bits[lvl][w] | ((1ull << (pos % 64)) - 1);
	if (m != ~0ull)
		return w * 64 + (size_t)__builtin_ctzll(~m);
	if (lvl == FDT_LEVELS - 1) {
		/* the top level: at most 64 words at fs.nr_open's maximum */
		for (w++; w < nwords; w++)
			if (t->bits[lvl][w] != ~0ull)
				return w * 64 + (size_t)__builtin_ctzll(~t->bits[lvl][w]);
		return SIZE_MAX;
	}
	size_t nw = fdt_find(t, lvl + 1, w + 1);
	if (nw == SIZE_MAX || nw >= nwords)
		return SIZE_MAX;
	return nw * 64 + (size_t)__builtin_ctzll(~t->bits[lvl][nw]);
}

static int fdt_grow(struct fdtable *t, size_t cap)
{
	struct sock **f = realloc(t->fds, cap * sizeof(*f));
	if (!f)
		return -ENOMEM;
	memset(f + t->cap, 0, (cap - t->cap) * sizeof(*f));
	t->fds = f;
	for (int lvl = 0; lvl < FDT_LEVELS; lvl++) {
		size_t o = t->cap ? level_words(t->cap, lvl) : 0, n = level_words(cap, lvl);
		if (n == o)
			continue;
		uint64_t *b = realloc(t->bits[lvl], n * sizeof(*b));
		if (!b)
			return -ENOMEM; /* the larger fds array is harmless: cap is unchanged */
		memset(b + o, 0, (n - o) * sizeof(*b));
		t->bits[lvl] = b;
	}
	t->cap = cap;
	return 0;
}

/* alloc_fd: the lowest free descriptor, at most fs.nr_open - 1 (EMFILE beyond). */
int fd_alloc(struct ustack *st, struct sock *sk)
{
	struct fdtable *t = &st->tcp->fdt;
	size_t limit = (size_t)st->sysctl.fs_nr_open > FD_BASE ? (size_t)st->sysctl.fs_nr_open - FD_BASE : 0;
	size_t i = t->cap ? fdt_find(t, 0, t->next_fd) : SIZE_MAX;
	if (i == SIZE_MAX || i >= t->cap)
		i = t->cap;
	if (i >= limit)
		return -EMFILE;
	if (i >= t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		int rc = fdt_grow(t, cap);
		if (rc < 0)
			return rc;
	}
	t->fds[i] = sk;
	fdt_set(t, i);
	t->next_fd = i + 1;
	t->used++;
	return sk->fd = (int)i + FD_BASE;
}

void fd_free(struct ustack *st, int fd)
{
	struct fdtable *t = &st->tcp->fdt;
	size_t i = (size_t)(fd - FD_BASE);
	if (fd < FD_BASE || i >= t->cap || !t->fds[i])
		return; /* not a descriptor of ours: callers have checked, this is belt and braces */
	t->fds[i] = NULL;
	fdt_clear(t, i);
	if (i < t->next_fd)
		t->next_fd = i;
	t->used--;
}

struct sock *sock_lookup_fd(struct ustack *st, int fd)
{
	const struct fdtable *t = &st->tcp->fdt;
	if (fd < FD_BASE || (size_t)(fd - FD_BASE) >= t->cap)
		return NULL;
	return t->fds[fd - FD_BASE];
}
