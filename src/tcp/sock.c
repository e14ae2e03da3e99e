/*
 * The socket object and its waiting (Linux's net/core/sock.c: sk_alloc, sk_free, sk_wait_event,
 * the sk_data_ready family; put_cmsg from net/core/scm.c).  It sits in tcp/ because ustack's one
 * kind of socket is TCP's and struct sock is tcp.h's; what the socket layer above needs from
 * here (epoll's wake-ups) it registers as a hook, so that nothing here calls upward.
 *
 * Every blocking call sleeps on one wake-up word per stack (tcp->wake_gen, a futex:
 * core/lock.h) and re-checks its own condition when woken; the stack bumps it and wakes all on
 * every state change (the seed's sk_state_change).  Waiters are few — an application's
 * blocking calls — so one broadcast beats per-socket bookkeeping.
 */
#include "core/stack.h"
#include "tcp/tcp.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <ustack/socket.h>

static void sk_wait_timer(struct ustack *st, struct utimer *t)
{
	struct sock *sk = (struct sock *)((char *)t - offsetof(struct sock, timers.wait));
	sk->wait_expired = true;
	sk_wake_sk(st, sk);
}

static void sk_timeo_fire(struct ustack *st, struct utimer *t)
{
	struct sk_timeo *to = (struct sk_timeo *)((char *)t - offsetof(struct sk_timeo, t));
	to->expired = true;
	sk_wake(st);
}

void sk_timeo_start(struct ustack *st, struct sk_timeo *to, uint32_t timeo_ms)
{
	to->expired = false;
	timer_init(&to->t, sk_timeo_fire);
	if (timeo_ms != SK_TIMEO_NONE && timeo_ms)
		timer_arm(st, &to->t, st->now + (uint64_t)timeo_ms * 1000u);
}

void sk_timeo_stop(struct ustack *st, struct sk_timeo *to)
{
	timer_cancel(st, &to->t);
}

struct sock *sk_alloc(struct ustack *st)
{
	struct sock *sk = kmem_cache_zalloc(&st->tcp->sock_cache);
	if (!sk)
		return NULL;
	sk->fd = -1;
	sk->node.state = TCP_CLOSE;
	sk->ss = SS_UNCONNECTED;
	sk->linger = -1;
	sk->rcvtimeo = sk->sndtimeo = SK_TIMEO_NONE;
	sk->pmtudisc = IP_PMTUDISC_WANT;
	sk->rcvbuf = st->sysctl.tcp_rmem[1];
	sk->sndbuf = st->sysctl.tcp_wmem[1];
	sk->inet_id = (uint16_t)prng_u32(&st->secrets);
	sk->ca_ops = tcp_cong_default(st);
	timer_init(&sk->timers.retransmit, tcp_retransmit_timer);
	timer_init(&sk->timers.wait, sk_wait_timer);
	st->tcp->nsocks++;
	return sk;
}

/*
 * sk_free: the socket is gone for the application and for the network.  Its memory may have to
 * wait: every request socket of a listener points at it, as in Linux, where each holds a
 * reference (sock_hold in inet_reqsk_alloc) and the last sock_put frees the listener.  So a
 * listener closed (or shut down, then closed) with half-open connections pending is torn down
 * here — unhashed, its port released, its timers stopped — and marked dead; the last request
 * socket to go (reqsk_put) frees it.  Until then every path that reaches it through a request
 * socket sees a socket that is not listening, and drops the request.
 */
void sk_free(struct ustack *st, struct sock *sk)
{
	if (!sk->dead) {
		bool owed = tcp_owes_peer(sk);
		/* tcp_v4_destroy_sock's trace: the TCP state goes, once per socket, addresses intact */
		trace_tcp_destroy_sock(st, sk);
		timer_cancel(st, &sk->timers.retransmit);
		timer_cancel(st, &sk->timers.delack);
		timer_cancel(st, &sk->timers.sk);
		timer_cancel(st, &sk->timers.wait);
		tcp_fastopen_active_disable_ofo_check(st, sk); /* tcp_v4_destroy_sock */
		tcp_data_free(st, sk);
		reqsk_fastopen_remove(st, sk, false); /* a Fast Open child leaves its listener's queue */
		inet_ehash_remove(st, &sk->node);
		inet_listen_unhash(st, sk);
		inet_put_port(st, sk);
		sk->node.state = TCP_CLOSE;
		sk->fd = -1;
		sk->dead = true;
		tcp_account_owing(st, sk, owed);
	}
	if (sk->accept_queue.qlen || sk->refcnt)
		return;
	st->tcp->nsocks--;
	tcp_fastopen_queue_free(sk);
	sk_ext_free(sk); /* the cookie, options and error queue: here, with the socket itself */
	kmem_cache_free(&st->tcp->sock_cache, sk);
}

/* sock_gen_cookie: a 64-bit number for the socket, given the first time anything asks (a
 * tracepoint's sock_cookie) and kept for its life; the instance never gives one twice, as
 * Linux's net cookie generator never does. */
uint64_t sock_gen_cookie(struct ustack *st, struct sock *sk)
{
	struct sock_ext *x = sk_ext(sk);
	if (!x)
		return 0; /* out of memory: no cookie this time ("none", as a tracepoint would show) */
	if (!x->cookie)
		x->cookie = ++st->tcp->sock_cookie_last;
	return x->cookie;
}

/*
 * sk_hold / sk_put around a blocking wait: while a caller sleeps in the stack on a socket,
 * another thread may close its descriptor and the stack free the socket (a RST, an abortive
 * close).  The sleeper's reference keeps the memory — torn down, marked dead — until it
 * wakes; sk_put then frees it and tells the caller that the socket is gone.
 */
void sk_hold(struct sock *sk)
{
	sk->refcnt++;
}

bool sk_put(struct ustack *st, struct sock *sk)
{
	sk->refcnt--;
	if (!sk->dead)
		return false;
	if (!sk->refcnt)
		sk_free(st, sk);
	return true;
}

/* Every blocking call sleeps here, counted, so a driver of virtual time can tell a caller
 * that is asleep from one that was woken and has yet to run (ustack_sleeping_callers).  The
 * waker zeroes the count (sk_wake), since a woken thread is runnable at once even before it
 * gets the lock; a wake-up nobody sent (a timeout, a spurious return) uncounts itself. */
void sk_wait_event(struct ustack *st)
{
	uint32_t gen = st->tcp->wake_gen;
	st->tcp->sleepers++;
	/* what this caller sent goes before it sleeps; if the lock was let go for a link's long
	 * doorbell and a wake-up came meanwhile, this is that wake-up (callers look again) */
	if (!stack_ring_doorbells(st) || st->tcp->wake_gen == gen)
		stack_wait_gen(&st->lock, &st->tcp->wake_gen, gen, NULL);
	if (st->tcp->wake_gen == gen)
		st->tcp->sleepers--;
}

int sk_wait_event_until(struct ustack *st, const struct timespec *deadline)
{
	uint32_t gen = st->tcp->wake_gen;
	st->tcp->sleepers++;
	int rc = 0;
	if (!stack_ring_doorbells(st) || st->tcp->wake_gen == gen)
		rc = stack_wait_gen(&st->lock, &st->tcp->wake_gen, gen, deadline);
	if (st->tcp->wake_gen == gen)
		st->tcp->sleepers--;
	return rc;
}

unsigned ustack_sleeping_callers(struct ustack *st)
{
	stack_lock(st);
	unsigned n = st->tcp->sleepers;
	stack_unlock(st);
	return n;
}

void sk_wake(struct ustack *st)
{
	st->tcp->wake_gen++;
	/* sleepers counts the callers in the wait not yet woken (each counts itself in, under
	 * the lock, before it waits): with none, there is no one to broadcast to */
	if (st->tcp->sleepers) {
		st->tcp->sleepers = 0;
		stack_wake_gen(&st->tcp->wake_gen);
	}
	if (st->tcp->wake_hook) /* a waiter outside the stack (ustack_set_sock_wake) */
		st->tcp->wake_hook(st->tcp->wake_hook_arg);
}

/* sk_wake_sk (sk_data_ready, sk_write_space, sk_state_change): one socket changed; its epoll
 * items are readied through the hook the socket layer registered (socket/epoll.c), and every
 * sleeper re-checks its condition. */
void sk_wake_sk(struct ustack *st, struct sock *sk)
{
	if (sk->ep_items && st->tcp->ep_wake)
		st->tcp->ep_wake(st, sk);
	sk_wake(st);
}

/* put_cmsg: one control message into msg_control at off (the space earlier ones used), or
 * MSG_CTRUNC if it does not fit; the space used up to its end (msg_controllen on return). */
size_t sk_put_cmsg_at(struct msghdr *msg, size_t off, int level, int type, const void *data, size_t len)
{
	if (!msg->msg_control || msg->msg_controllen < off || msg->msg_controllen - off < CMSG_LEN(len)) {
		msg->msg_flags |= MSG_CTRUNC;
		return off;
	}
	struct cmsghdr *c = (struct cmsghdr *)(void *)((char *)msg->msg_control + off);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return off + CMSG_SPACE(len) < msg->msg_controllen ? off + CMSG_SPACE(len) : msg->msg_controllen;
}

size_t sk_put_cmsg(struct msghdr *msg, int level, int type, const void *data, size_t len)
{
	return sk_put_cmsg_at(msg, 0, level, type, data, len);
}
