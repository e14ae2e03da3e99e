/*
 * Finding sockets, and choosing ports (Linux's net/ipv4/inet_hashtables.c and
 * inet_connection_sock.c).
 *
 * Three tables, as in Linux: the established hash (4-tuple → socket or request socket), the
 * listening hash (port → listeners), and the bind hash (port → the sockets holding it).  Each
 * lookup is O(1) on average; nothing walks the list of connections.
 *
 * Ephemeral ports follow RFC 6056 algorithm 4 as Linux's __inet_hash_connect() does: a keyed
 * hash of (saddr, daddr, dport) picks a starting offset, perturbed per hash bucket by a table
 * that advances after each success, and the search walks the range two ports at a time (first
 * the parity of the range's low end, then the other; bind(port 0) starts with the other
 * parity).  A port already used by connect()ed sockets is shared as long as the full 4-tuple
 * is unique, so one port can serve many destinations; a port held by bind() is skipped.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <errno.h>
#include <stdlib.h>

#ifdef SLAB_PLAIN /* built with AddressSanitizer (core/slab.h) */
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

/* The established hash starts small and doubles as it fills (at half load, below), up to
 * EHASH_MAX buckets (Linux sizes its table once from memory, thash_entries; a userspace stack
 * may hold one connection or ten million): an instance costs 2 KB here, not 512 KB. */
#define EHASH_MIN (1u << 8)
#define EHASH_MAX (1u << 24)
/*
 * Buckets per entry before the table doubles: 2, a load factor of ½.  At a million sockets
 * the table is out of the cache and so is every socket, and a lookup that misses — connect()'s
 * check that its 4-tuple is free, a SYN's look before the listener — pays one cache miss per
 * stranger on the chain (perf annotate: 70% of inet_lookup_established on the first load of
 * a stranger, 27% on the bucket).  Half the load, half the strangers, for 8 more bytes of
 * bucket per connection.  (A lookup that hits mostly finds its entry at or near the chain's
 * head: entries go in first, and a connection's packets follow its insert.)
 */
#define EHASH_LOAD 2u
#define PERTURB_SIZE 256u

static inline uint32_t rol32(uint32_t w, unsigned s)
{
	return w << s | w >> (32 - s);
}

/*
 * inet_ehashfn: the 4-tuple's bucket, keyed by a random secret so that a peer cannot aim its
 * connections at one chain (RFC 4987 §3.6) — Linux's __inet_ehashfn, jhash_3words of the two
 * addresses and the ports with inet_ehash_secret: Bob Jenkins' final mix of three words, a
 * dozen operations.  Every segment in, and every port connect() tries, hashes a 4-tuple; a
 * SipHash here was an eighth of a handshake's cost.  (The ISN, the timestamp offset, the port
 * offset and the cookies keep their SipHash, as Linux's do.)
 *
 * The local port is not mixed in but added (Linux 6.15's "inet: change lport contribution to
 * inet_ehashfn()"): hash(laddr, lport, raddr, rport) == hash(laddr, 0, raddr, rport) + lport.
 * connect()'s port search hashes the 4-tuple once, with port 0, and each port it tries is an
 * addition (inet_hash_connect's hash_port0, as Linux's); and the ports it tries, and those of
 * successive connections to one destination, a few apart, land a few buckets apart — in the
 * cache line the last try loaded, or the next, where each was a cache miss at a million
 * connections.  A remote peer still cannot aim at a chain: its address and port are mixed
 * with the secret, and the local port of an incoming connection is the listener's.
 */
static uint32_t inet_ehashfn0(struct ustack *st, uint32_t laddr, uint32_t raddr, uint16_t rport)
{
	uint32_t a = laddr + 0xdeadbeefu, b = raddr + 0xdeadbeefu;
	uint32_t c = (uint32_t)rport + st->tcp->ehash_secret;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static inline uint32_t inet_ehashfn(struct ustack *st, uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
	return lport + inet_ehashfn0(st, laddr, raddr, rport);
}

/*
 * Link words.  A bucket, and each entry's next, is not a bare pointer but a word that also
 * says two things about the entry it points at: six bits of its hash (bits the bucket's index
 * never uses: the table stops at 2^24) and whether it ends its chain.  At a million
 * connections neither the table nor any socket is in the cache, and a lookup that finds
 * nothing — connect() checking that its 4-tuple is free, a SYN looked up before its
 * listener — used to load every stranger on its chain, a cache miss each: now a lone stranger
 * with another tag is passed without loading it (Swiss tables keep tags beside the slots for
 * the same reason).  The word's bits 48-55 hold it: above the 48 bits of address a user-space
 * pointer has on x86-64 and arm64 (Linux maps nothing higher unless asked to, even with 5-level
 * paging or 52-bit addresses), below the top byte, which arm64's top-byte-ignore lets pointer
 * tags use (MTE, HWASan) and is kept as it is.  A pointer with bits in 48-54 is stored bare,
 * which says nothing and costs the load as before; one with bit 55 could not be told from a
 * word and is refused (abort: nothing here maps memory there).  Since the local port is added
 * to the hash (inet_ehashfn), a client's connections to one server differ in their tag only
 * where the addition carries into bits 24-29: two of them on one chain (a table of 2^16
 * buckets or fewer, ports 2^16 apart) look alike and the second is loaded, as Linux loads it.
 *
 * What a word says stays true: it describes the entry it points at, and an entry's tag never
 * changes, nor does an entry that ends its chain ever get a successor (entries go in at the
 * head; a doubling rebuilds the words of what it moves).  Removal copies the removed entry's
 * own next word into its predecessor, the same entry described, and marks the word before
 * that "ends its chain" when the last one went.
 *
 * Chains are singly linked.  Linux's hlist_nulls has a back pointer in every entry, which an
 * insert at the head must write into the entry that was first — a stranger, one more cache
 * miss on nearly half of all inserts (three a connection: the client, the request, the
 * child).  Removal instead walks from the bucket to the entry, past those in front of it on
 * the same chain — mostly ones that went in after it: seldom any for a request socket, which
 * lives a round trip, half a chain on average for a connection.  An entry's own bit 0
 * (EH_HASHED; the entries are 8-byte aligned) says whether it is in the table.
 */
_Static_assert(sizeof(uintptr_t) == 8, "link words need 64-bit pointers");
#define EH_TAG_SHIFT 48
#define EH_FIELD ((uintptr_t)0xff << EH_TAG_SHIFT) /* bits 48-55: what a word says */
#define EH_INFO ((uintptr_t)1 << 55)           /* the word says something: the two fields below */
#define EH_LAST ((uintptr_t)1 << 54)           /* the entry pointed at ends its chain */
#define EH_TAG_MASK ((uintptr_t)0x3f)          /* ... and its tag, bits 48-53 */
#define EH_HASHED ((uintptr_t)1)               /* in an entry's own next word: it is in the table */

static inline struct ehash_node *eh_ptr(uintptr_t w)
{
	return (struct ehash_node *)((w & EH_INFO ? w & ~EH_FIELD : w) & ~EH_HASHED);
}

static inline uintptr_t eh_tag(uint32_t h)
{
	return (uintptr_t)(h >> 24) & EH_TAG_MASK;
}

static inline uintptr_t eh_word(struct ehash_node *n, uint32_t h, bool last)
{
	uintptr_t p = (uintptr_t)n;
	if (p & EH_INFO)
		abort(); /* an address no mapping of ours has: it cannot be told from a word */
	if (p & EH_FIELD)
		return p; /* bits there: stored bare */
	return p | EH_INFO | (last ? EH_LAST : 0) | eh_tag(h) << EH_TAG_SHIFT;
}

struct ehash_node *inet_ehash_next(const struct ehash_node *n)
{
	return eh_ptr(n->next);
}

/* The chain a 4-tuple's hash is on: while the table doubles, the old table's bucket until it
 * has been moved (ehash_migrate), the new table's after. */
static uintptr_t *ehash_head(struct tcp_state_tables *t, uint32_t h)
{
	if (t->ehash_old && (h & t->ehash_old_mask) >= t->ehash_migrated)
		return &t->ehash_old[h & t->ehash_old_mask];
	return &t->ehash[h & t->ehash_mask];
}

int tcp_tables_init(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp = calloc(1, sizeof(*st->tcp));
	if (!t)
		return -1;
	t->ehash = calloc(EHASH_MIN, sizeof(*t->ehash));
	t->lhash = calloc(LHASH_SIZE, sizeof(*t->lhash));
	if (!t->ehash || !t->lhash)
		return -1;
	t->ehash_mask = EHASH_MIN - 1;
	t->ehash_secret = prng_u32(&st->secrets); /* net_get_random_once(&inet_ehash_secret) */
	t->sock_cache = (struct kmem_cache)KMEM_CACHE_INIT(struct sock);
	inet_twsk_init(st);
	t->reqsk_cache = (struct kmem_cache)KMEM_CACHE_INIT(struct request_sock);
	for (unsigned i = 0; i < PERTURB_SIZE; i++)
		t->table_perturb[i] = prng_u32(&st->secrets);
	return 0;
}

void tcp_tables_destroy(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	if (!t)
		return;
	inet_twsk_purge(st);
	vfree_huge(t->ehash, (t->ehash_mask + 1) * sizeof(*t->ehash));
	if (t->ehash_old)
		vfree_huge(t->ehash_old, (t->ehash_old_mask + 1) * sizeof(*t->ehash_old));
	free(t->lhash);
	for (unsigned i = 0; i < BHASH_PAGES; i++) {
		struct bhash_page *pg = t->bhash[i];
		for (unsigned j = 0; pg && j < BHASH_PAGE; j++) {
			while (pg->tw_rows[j]) {
				struct tw_bind_row *r = pg->tw_rows[j];
				pg->tw_rows[j] = r->next;
				free(r);
			}
		}
		if (pg)
			ASAN_UNPOISON_MEMORY_REGION(pg, sizeof(*pg));
		free(pg);
	}
	free(t->fdt.fds);
	kmem_cache_destroy(&t->sock_cache);
	kmem_cache_destroy(&t->reqsk_cache);
	tcp_ring_cache_destroy(st);
	for (int i = 0; i < FDT_LEVELS; i++)
		free(t->fdt.bits[i]);
	tcp_ofo_cache_destroy(st);
	tcp_fastopen_cache_destroy(st);
	free(t);
	st->tcp = NULL;
}

/* The lookup in the bucket of hash h, the 4-tuple's inet_ehashfn. */
static struct ehash_node *__inet_lookup_established(struct ustack *st, uint32_t h, uint32_t laddr,
						    uint16_t lport, uint32_t raddr, uint16_t rport)
{
	uintptr_t want = eh_tag(h) << EH_TAG_SHIFT;
	for (uintptr_t w = *ehash_head(st->tcp, h); w;) {
		bool other = (w & EH_INFO) && (w & (EH_TAG_MASK << EH_TAG_SHIFT)) != want;
		if (other && (w & EH_LAST))
			return NULL; /* a stranger ends the chain: not loaded */
		struct ehash_node *n = eh_ptr(w);
		if (!other && n->laddr == laddr && n->lport == lport && n->raddr == raddr && n->rport == rport)
			return n;
		w = n->next & ~EH_HASHED;
	}
	return NULL;
}

struct ehash_node *inet_lookup_established(struct ustack *st, uint32_t laddr, uint16_t lport,
					   uint32_t raddr, uint16_t rport)
{
	return __inet_lookup_established(st, inet_ehashfn(st, laddr, lport, raddr, rport), laddr, lport, raddr,
					 rport);
}

/* n goes in at the head of the chain at head; h is its hash (for its link word). */
static void ehash_link(uintptr_t *head, struct ehash_node *n, uint32_t h)
{
	n->next = *head | EH_HASHED; /* a head's own bit 0 is clear */
	*head = eh_word(n, h, !(n->next & ~EH_HASHED));
}

/*
 * Growing the established hash without a pause.  The table doubles when it holds half as many
 * entries as buckets (EHASH_LOAD), up to EHASH_MAX.  Moving every entry at once cost a
 * pause proportional to the table — a second at eight million connections, every packet of
 * every connection waiting behind it.  So a doubling only allocates the new table (zeroed
 * pages, mapped lazily) and keeps the old one; each insert then moves the next few old buckets
 * (ehash_migrate), and a bucket not yet moved is looked up where it is (ehash_head).  The next
 * doubling is due only after half as many inserts as the old table had buckets, and each moves
 * four, so a doubling is always over before the next begins (and ehash_grow finishes one
 * that is not, should removals and inserts have kept the count hovering).  A removal finds its
 * entry's chain as a lookup does (ehash_head), in whichever table it is.  Linux has no such
 * problem: it sizes its table once, from memory, at boot (thash_entries).
 */
#define EHASH_MIGRATE_STEP 4 /* old buckets moved per insert */

static void ehash_migrate(struct ustack *st, uint32_t buckets)
{
	struct tcp_state_tables *t = st->tcp;
	for (uint32_t k = 0; t->ehash_old && k < buckets; k++) {
		uintptr_t *old = &t->ehash_old[t->ehash_migrated];
		while (*old) {
			struct ehash_node *n = eh_ptr(*old);
			*old = n->next & ~EH_HASHED;
			uint32_t h = inet_ehashfn(st, n->laddr, n->lport, n->raddr, n->rport);
			ehash_link(&t->ehash[h & t->ehash_mask], n, h);
		}
		if (++t->ehash_migrated > t->ehash_old_mask) {
			vfree_huge(t->ehash_old, (t->ehash_old_mask + 1) * sizeof(*t->ehash_old));
			t->ehash_old = NULL;
			t->ehash_old_mask = t->ehash_migrated = 0;
		}
	}
}

/* A doubling begins: the new table, empty; the old one kept until its buckets are moved.  If
 * memory is short the table stays as it is (chains grow longer). */
static void ehash_grow(struct ustack *st)
{
	struct tcp_state_tables *t = st->tcp;
	if (t->ehash_old)
		ehash_migrate(st, t->ehash_old_mask + 1); /* finish the last one first */
	uint32_t size = (t->ehash_mask + 1) * 2;
	uintptr_t *nt = vzalloc_huge(size * sizeof(*nt));
	if (!nt)
		return;
	t->ehash_old = t->ehash;
	t->ehash_old_mask = t->ehash_mask;
	t->ehash_migrated = 0;
	t->ehash = nt;
	t->ehash_mask = size - 1;
}

void inet_ehash_insert(struct ustack *st, struct ehash_node *n)
{
	struct tcp_state_tables *t = st->tcp;
	if (t->ehash_count >= (t->ehash_mask + 1) / EHASH_LOAD && t->ehash_mask + 1 < EHASH_MAX)
		ehash_grow(st);
	if (t->ehash_old)
		ehash_migrate(st, EHASH_MIGRATE_STEP);
	uint32_t h = inet_ehashfn(st, n->laddr, n->lport, n->raddr, n->rport);
	ehash_link(ehash_head(t, h), n, h);
	t->ehash_count++;
}

uint32_t inet_ehash_chains(const struct tcp_state_tables *t)
{
	return t->ehash_mask + 1 + (t->ehash_old ? t->ehash_old_mask + 1 : 0);
}

struct ehash_node *inet_ehash_chain(const struct tcp_state_tables *t, uint32_t i)
{
	if (i <= t->ehash_mask)
		return eh_ptr(t->ehash[i]);
	i -= t->ehash_mask + 1;
	return t->ehash_old && i >= t->ehash_migrated && i <= t->ehash_old_mask ? eh_ptr(t->ehash_old[i]) : NULL;
}

void inet_ehash_remove(struct ustack *st, struct ehash_node *n)
{
	if (!(n->next & EH_HASHED))
		return;
	uint32_t h = inet_ehashfn(st, n->laddr, n->lport, n->raddr, n->rport);
	/* pp: the word that points at n; before: the one that points at n's predecessor */
	uintptr_t *pp = ehash_head(st->tcp, h), *before = NULL;
	struct ehash_node *p;
	while ((p = eh_ptr(*pp)) != n) {
		if (!p)
			abort(); /* hashed, yet not on its chain: the 4-tuple changed while in the table */
		before = pp;
		pp = &p->next;
	}
	uintptr_t rest = n->next & ~EH_HASHED;
	*pp = rest | (*pp & EH_HASHED); /* the word that described n's successor describes it here too */
	if (!rest && before && (*before & EH_INFO))
		*before |= EH_LAST; /* the predecessor ends the chain now */
	n->next = 0;
	st->tcp->ehash_count--;
}

/*
 * Listeners: a socket bound to the exact address beats one bound to INADDR_ANY (compute_score
 * in Linux).  Listeners that share a port by SO_REUSEPORT form a group (those bound to the
 * same address); the 4-tuple's keyed hash picks one of them (inet_ehashfn, then
 * reuseport_select_sock's reciprocal_scale over the group in the order its members started
 * listening), so the segments of one connection — SYN, retransmitted SYN, cookie ACK — all
 * reach the same listener while the group is unchanged.  The chain is short: the listeners
 * of one port.  A listener bound to a device (SO_BINDTODEVICE) hears only SYNs that came in
 * on it (compute_score's sk_bound_dev_if check); dif is that device.
 */
struct sock *inet_lookup_listener(struct ustack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
				  uint16_t rport, int dif)
{
	struct sock *best = NULL;
	for (struct sock *sk = st->tcp->lhash[lport & (LHASH_SIZE - 1)]; sk; sk = sk->lnext) {
		if (sk->node.lport != lport || sk->node.state != TCP_LISTEN)
			continue;
		if (sk_bound_dev_if(sk) && sk_bound_dev_if(sk) != dif)
			continue;
		if (sk->node.laddr == laddr) {
			best = sk;
			break;
		}
		if (sk->node.laddr == 0 && !best)
			best = sk;
	}
	if (!best || !best->reuseport)
		return best;
	/* the group: reuseport listeners on best's address, newest first in the chain */
	unsigned n = 0;
	for (struct sock *sk = best; sk; sk = sk->lnext)
		if (sk->node.lport == lport && sk->node.state == TCP_LISTEN && sk->reuseport &&
		    sk->node.laddr == best->node.laddr)
			n++;
	uint32_t hash = inet_ehashfn(st, laddr, lport, raddr, rport);
	unsigned k = (unsigned)(((uint64_t)hash * n) >> 32); /* reciprocal_scale */
	unsigned skip = n - 1 - k; /* the chain holds the group newest first */
	for (struct sock *sk = best; sk; sk = sk->lnext)
		if (sk->node.lport == lport && sk->node.state == TCP_LISTEN && sk->reuseport &&
		    sk->node.laddr == best->node.laddr && !skip--)
			return sk;
	return best;
}

void inet_listen_hash(struct ustack *st, struct sock *sk)
{
	struct sock **head = &st->tcp->lhash[sk->node.lport & (LHASH_SIZE - 1)];
	sk->lnext = *head;
	*head = sk;
	sk->listening_hashed = true;
}

void inet_listen_unhash(struct ustack *st, struct sock *sk)
{
	if (!sk->listening_hashed)
		return;
	struct sock **pp = &st->tcp->lhash[sk->node.lport & (LHASH_SIZE - 1)];
	while (*pp != sk)
		pp = &(*pp)->lnext;
	*pp = sk->lnext;
	sk->listening_hashed = false;
}

/*
 * The bind hash: one bucket per local port, as Linux's bhash is keyed by port (and netns).
 * With only 65,536 ports there is nothing to hash: the port indexes a table, in pages of 256
 * made when a port in them is first used, so that an instance with one listener pays 10 KB and
 * one with connections on every port 2.6 MB — and the port search of connect(), which probes
 * port after port, touches no chain.
 *
 * The buckets live in their page, in port order, not each in an allocation of its own (Linux's
 * come from bind_bucket_cachep, one per port, on a chain).  connect() takes ports a few apart
 * (inet_hash_connect), the next connection to a destination the next few: in place, the buckets
 * it reads ascend, a few lines apart, a stride the processor's prefetcher follows, and no line
 * of pointers comes before each.  At a million connections both had been cache misses:
 * callgrind's cache model, 500 new connections at 1M open, 3.9 last-level read misses a
 * connection before, 3.25 after (the model has no prefetcher); new connections at 1M +8%.  A
 * bucket is in use while its bit in the page's map is set; a page stays until the stack goes
 * (2.6 MB at most), and built with AddressSanitizer a bucket not in use is poisoned, so that a
 * use after its release is still caught.
 */
struct bind_bucket *inet_bind_bucket_find(struct ustack *st, uint16_t port)
{
	struct bhash_page *pg = st->tcp->bhash[port / BHASH_PAGE];
	unsigned i = port % BHASH_PAGE;
	return pg && (pg->used[i / 64] >> (i % 64) & 1) ? &pg->b[i] : NULL;
}

struct bind_bucket *inet_bind_bucket_create(struct ustack *st, uint16_t port, int8_t fastreuse)
{
	struct bhash_page **pg = &st->tcp->bhash[port / BHASH_PAGE];
	if (!*pg) {
		if (!(*pg = calloc(1, sizeof(**pg))))
			return NULL;
		ASAN_POISON_MEMORY_REGION((*pg)->b, sizeof((*pg)->b));
	}
	unsigned i = port % BHASH_PAGE;
	struct bind_bucket *b = &(*pg)->b[i];
	ASAN_UNPOISON_MEMORY_REGION(b, sizeof(*b));
	*b = (struct bind_bucket){ .port = port, .fastreuse = fastreuse, .fastreuseport = fastreuse };
	(*pg)->used[i / 64] |= 1ull << (i % 64);
	return b;
}

void inet_bind_hash(struct bind_bucket *b, struct sock *sk)
{
	sk->tb = b;
	sk->bind_next = b->owners;
	if (b->owners)
		b->owners->bind_pprev = &sk->bind_next;
	sk->bind_pprev = &b->owners;
	b->owners = sk;
	b->nowners++;
	b->nbind += !sk->connect_bind;
	sk->node.lport = b->port;
}

/*
 * A socket connect() bound to its port (inet_hash_connect), counted rather than listed.
 *
 * Linux puts every socket that holds a port on its bucket's owners list (sk_add_bind_node, an
 * hlist: a new head writes the old head's pprev).  What reads the list is bind() and listen()
 * of the port, to find a conflict; what writes it is every connect(), and the old head is the
 * socket that took the port last — at a million connections, one connection in 28,000 ago,
 * out of every cache.  That one write cost new connections at 1M 15% (a build without it,
 * pinned pairs), and prefetching its line, for reading or writing, did not help: x86 commits
 * stores in order, so the stores behind one that misses wait with it, the likely reason.
 *
 * A connect()ed socket never listens, so all the conflict test asks of it is its address and
 * its SO_REUSEADDR and SO_REUSEPORT flags — what TIME_WAIT entries are already reduced to
 * (struct tw_bind_row).  The bucket keeps one such row for sockets connect() bound there:
 * the address and flags of the first, and how many share them, which on a client is all of
 * them.  A socket with another address or other flags goes on the list as before, and so does
 * one whose flags change later (inet_bind_flags_changed: Linux's walk reads them live).
 */
static void inet_bind_hash_connect(struct bind_bucket *b, struct sock *sk)
{
	sk->connect_bind = true;
	if (!b->nconn) {
		b->conn_laddr = sk->node.laddr;
		b->conn_reuse = sk->reuseaddr;
		b->conn_reuseport = sk->reuseport;
	} else if (b->conn_laddr != sk->node.laddr || b->conn_reuse != sk->reuseaddr ||
		   b->conn_reuseport != sk->reuseport) {
		inet_bind_hash(b, sk);
		return;
	}
	sk->tb = b;
	sk->bind_next = NULL;
	sk->bind_pprev = NULL;
	b->nconn++;
	b->nowners++;
	sk->node.lport = b->port;
}

static inline bool sk_bind_counted(const struct sock *sk)
{
	return sk->tb && !sk->bind_pprev;
}

void inet_bind_flags_changed(struct sock *sk)
{
	struct bind_bucket *b = sk->tb;
	if (!sk_bind_counted(sk) || (b->conn_reuse == sk->reuseaddr && b->conn_reuseport == sk->reuseport))
		return;
	b->nconn--;
	b->nowners--;
	inet_bind_hash(b, sk);
}

bool inet_bind_conn_conflict(const struct sock *sk, const struct bind_bucket *b)
{
	if (!b->nconn)
		return false;
	if (sk->node.laddr && b->conn_laddr && sk->node.laddr != b->conn_laddr)
		return false; /* (a connected socket's address is never the wildcard) */
	if (sk->reuseaddr && b->conn_reuse) /* the row's sockets never listen */
		return false;
	if (sk->reuseport && b->conn_reuseport)
		return false;
	return true;
}

void inet_put_port(struct ustack *st, struct sock *sk)
{
	struct bind_bucket *b = sk->tb;
	if (!b)
		return;
	sk->bound_port = false;
	if (sk_bind_counted(sk)) {
		b->nconn--;
	} else {
		/* a port shared by every connection a listener accepted: no walk to find our place */
		*sk->bind_pprev = sk->bind_next;
		if (sk->bind_next)
			sk->bind_next->bind_pprev = sk->bind_pprev;
	}
	sk->bind_next = NULL;
	sk->bind_pprev = NULL;
	sk->tb = NULL;
	b->nowners--;
	b->nbind -= !sk->connect_bind;
	sk->connect_bind = false;
	inet_bind_bucket_release(st, b);
}

/* inet_bind_bucket_destroy: the bucket goes with its last socket and TIME_WAIT entry. */
void inet_bind_bucket_release(struct ustack *st, struct bind_bucket *b)
{
	if (b->nowners || b->has_tw) {
		/* Linux 6.17's "tcp: Update bind bucket state on port release": once no holder is
		 * left that connect() did not bind, the flags a bind() narrowed are -1 again, as
		 * in a bucket connect() made, and connect() may take the port again.  (Linux
		 * walks the port's owners for SOCK_CONNECT_BIND; nbind counts them instead.) */
		if (!b->nbind && (b->fastreuse != -1 || b->fastreuseport != -1))
			b->fastreuse = b->fastreuseport = -1;
		return;
	}
	unsigned i = b->port % BHASH_PAGE;
	st->tcp->bhash[b->port / BHASH_PAGE]->used[i / 64] &= ~(1ull << (i % 64));
	ASAN_POISON_MEMORY_REGION(b, sizeof(*b));
}

/*
 * tcp_twsk_unique: may a new connection take over this TIME_WAIT entry's 4-tuple?  Only when
 * the old connection used timestamps: PAWS then tells its duplicates from the new one's
 * segments.  A socket that chose its port with bind() may (Linux passes no twp then); the
 * ephemeral search only with net.ipv4.tcp_tw_reuse = 1 and once tcp_tw_reuse_delay has passed
 * since the entry was made — the default, 2, allows it for loopback traffic only, and ustack
 * has no loopback.  The new connection starts its sequence space above the old one's and
 * takes its timestamp memory.
 */
static bool tcp_twsk_unique(struct ustack *st, struct sock *sk, const struct inet_timewait_sock *tw, bool search)
{
	if (!(tw->node.tw_flags & TW_TSTAMP))
		return false;
	if (search && (tw->node.tw_flags & TW_FW2))
		return false; /* the FIN_WAIT2 substate: Linux forces tcp_tw_reuse off for it */
	/* made (or last rescheduled) 60 s before it goes */
	uint32_t entry_ms = tw->expires_ms - TCP_TIMEWAIT_LEN_MS;
	if (search && (st->sysctl.tcp_tw_reuse != 1 ||
		       (int32_t)(tcp_clock_ms(st) - (entry_ms + (uint32_t)st->sysctl.tcp_tw_reuse_delay)) <= 0))
		return false;
	uint32_t seq = tw->snd_nxt + 65535 + 2;
	sk->iss = seq ? seq : 1;
	sk->iss_set = true;
	sk->ts_recent = tw->ts_recent;
	uint16_t age_s = (uint16_t)((uint16_t)(st->now / 1000000u) - tw->ts_recent_stamp);
	sk->ts_recent_stamp_ms = tcp_clock_ms(st) - (uint32_t)age_s * 1000u;
	return true;
}

/* __inet_check_established: the 4-tuple is free, or held by a TIME_WAIT entry we may
 * replace — which then goes (TcpExtTWRecycled).  sk must already own the port's bucket, so
 * that the bucket outlives the entry's release of it. */
static bool inet_check_established(struct ustack *st, struct sock *sk, uint16_t lport, bool search,
				   uint32_t hash)
{
	struct ehash_node *o = __inet_lookup_established(st, hash, sk->node.laddr, lport, sk->node.raddr,
							 sk->node.rport);
	if (!o)
		return true;
	if (o->state != TCP_TIME_WAIT || !tcp_twsk_unique(st, sk, (struct inet_timewait_sock *)o, search))
		return false;
	MIB_INC(st, TcpExtTWRecycled);
	inet_twsk_deschedule_put(st, (struct inet_timewait_sock *)o);
	return true;
}

int inet_hash_connect(struct ustack *st, struct sock *sk)
{
	struct ehash_node *n = &sk->node;
	uint32_t hash_port0 = inet_ehashfn0(st, n->laddr, n->raddr, n->rport);
	if (sk->tb) {
		/* already bound: the 4-tuple must be unique */
		if (!inet_check_established(st, sk, n->lport, false, hash_port0 + n->lport))
			return -EADDRNOTAVAIL;
		inet_ehash_insert(st, n);
		sk->hashed = true;
		return 0;
	}
	uint32_t key[3] = { n->laddr, n->raddr, n->rport };
	uint64_t port_offset = secret_hash(&st->secrets, SECRET_PORT_OFFSET, key, sizeof(key));
	uint32_t low = (uint32_t)st->sysctl.ip_local_port_range[0];
	uint32_t high = (uint32_t)st->sysctl.ip_local_port_range[1] + 1;
	uint32_t remaining = high - low;
	if (remaining > 1)
		remaining &= ~1u;
	uint32_t *perturb = &st->tcp->table_perturb[port_offset & (PERTURB_SIZE - 1)];
	uint32_t offset = (uint32_t)((*perturb + (port_offset >> 32)) % remaining);
	offset &= ~1u; /* first pass: the parity of the range's low end */
	for (;;) {
		uint32_t port = low + offset;
		for (uint32_t i = 0; i < remaining; i += 2, port += 2) {
			if (port >= high)
				port -= remaining;
			struct bind_bucket *b = inet_bind_bucket_find(st, (uint16_t)port);
			if (b) {
				if (b->fastreuse >= 0 || b->fastreuseport >= 0)
					continue; /* held by bind() */
				struct ehash_node *o = __inet_lookup_established(st, hash_port0 + port, n->laddr,
										 (uint16_t)port, n->raddr, n->rport);
				if (o && (o->state != TCP_TIME_WAIT || st->sysctl.tcp_tw_reuse != 1))
					continue; /* this 4-tuple is taken */
				inet_bind_hash_connect(b, sk);
				/* __inet_check_established again only for a TIME_WAIT entry to take over
				 * (nothing runs between the two lookups: a free 4-tuple stays free) */
				if (o && !inet_check_established(st, sk, (uint16_t)port, true, hash_port0 + port)) {
					inet_put_port(st, sk);
					continue;
				}
			} else if (!(b = inet_bind_bucket_create(st, (uint16_t)port, -1))) {
				return -ENOBUFS;
			} else {
				inet_bind_hash_connect(b, sk);
			}
			inet_ehash_insert(st, n);
			sk->hashed = true;
			/* Advance this bucket's perturbation, by more when the search was short, so
			 * the next port from here is hard to guess (Linux: max(i, random(8)·2) + 2). */
			uint32_t r = prng_below(&st->secrets, 8) * 2;
			*perturb += (i > r ? i : r) + 2;
			return 0;
		}
		offset++;
		if (!(offset & 1) || remaining <= 1)
			return -EADDRNOTAVAIL;
	}
}

/* At stack teardown, silently (no RSTs): first what hangs off listeners — children nobody
 * accepted (some reset meanwhile, so no longer in any hash) and request sockets — while the
 * listeners still exist, then orphans, then every descriptor. */
void tcp_sockets_destroy(struct ustack *st)
{
	struct fdtable *fdt = &st->tcp->fdt;
	for (size_t i = 0; i < fdt->cap; i++)
		if (fdt->fds[i])
			inet_csk_acceptq_purge(st, fdt->fds[i]);
	for (uint32_t b = 0; st->tcp->ehash && b < inet_ehash_chains(st->tcp); b++) {
		struct ehash_node *n = inet_ehash_chain(st->tcp, b);
		while (n) {
			struct ehash_node *next = eh_ptr(n->next);
			if (n->state == TCP_NEW_SYN_RECV)
				reqsk_queue_drop(st, (struct request_sock *)n);
			else if (n->state == TCP_TIME_WAIT)
				inet_twsk_deschedule_put(st, (struct inet_timewait_sock *)n);
			else if (((struct sock *)n)->fd < 0)
				sk_free(st, (struct sock *)n);
			n = next;
		}
	}
	for (size_t i = 0; i < fdt->cap; i++)
		if (fdt->fds[i]) {
			sk_free(st, fdt->fds[i]);
			fdt->fds[i] = NULL;
		}
}
