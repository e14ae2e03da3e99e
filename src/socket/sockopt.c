/*
 * Socket options (Linux's sock_setsockopt/sk_getsockopt in net/core/sock.c and
 * do_tcp_setsockopt/do_tcp_getsockopt in net/ipv4/tcp.c): getsockopt and setsockopt dispatch
 * on the level first, as Linux does, so an option of a level ustack does not serve is
 * ENOPROTOOPT whatever its length; each level's handler then checks the length, then reads
 * the value.
 */
#include "socket/socket.h"
#include <ustack/socket.h>

#include "net/netdev.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* the timeouts' option numbers, old (struct timeval) and new (64-bit fields): the same
 * layout on 64-bit Linux, where glibc's SO_RCVTIMEO is the old one */
#ifndef SO_RCVTIMEO_OLD
#define SO_RCVTIMEO_OLD 20
#define SO_SNDTIMEO_OLD 21
#endif
#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif

#ifndef IFNAMSIZ
#define IFNAMSIZ 16 /* <net/if.h>, whose struct ifaddr is not ours */
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* include/uapi/linux/in.h */
#endif

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	socklen_t n = *len < sizeof(int) ? *len : (socklen_t)sizeof(int);
	memcpy(val, &v, n);
	*len = n;
	return 0;
}

/* Copies out at most *len bytes of an option's value and sets *len to what was copied. */
static int copy_out(void *val, socklen_t *len, const void *v, size_t vlen)
{
	if (!val || !len)
		return -EFAULT;
	if ((int)*len < 0)
		return -EINVAL;
	socklen_t n = *len < vlen ? *len : (socklen_t)vlen;
	memcpy(val, v, n);
	*len = n;
	return 0;
}

/* An int option's value: the length is checked before the value is read (EINVAL, then
 * EFAULT), as Linux's copy_from_sockptr callers do. */
static int get_int_opt(const void *val, socklen_t len, int *v)
{
	if (len < (socklen_t)sizeof(int))
		return -EINVAL;
	if (!val)
		return -EFAULT;
	memcpy(v, val, sizeof(*v));
	return 0;
}

/* sock_getsockopt: SOL_SOCKET options (Linux's sk_getsockopt in net/core/sock.c). */
static int sock_getsockopt(struct ustack *st, struct sock *sk, int name, void *val, socklen_t *len)
{
	int v;
	if (name == SO_MEMINFO) {
		/* SK_MEMINFO_VARS: rmem_alloc, rcvbuf, wmem_alloc, sndbuf, fwd_alloc,
		 * wmem_queued, optmem, backlog, drops */
		uint32_t mi[9] = { sk->rcvq.len + sk->ofo_bytes, (uint32_t)sk->rcvbuf,
				   sk->data_init ? sk->snd_max - sk->snd_una : 0, (uint32_t)sk->sndbuf, 0,
				   tcp_wmem_queued(sk), 0, 0, 0 };
		return copy_out(val, len, mi, sizeof(mi));
	}
	if (name == USTACK_SO_TIMESTAMPING_OLD || name == USTACK_SO_TIMESTAMPING_NEW) {
		/* struct so_timestamping { flags, bind_phc }, cut to the caller's length */
		int ts[2] = { (int)sock_get_timestamping(sk, name), 0 };
		return copy_out(val, len, ts, sizeof(ts));
	}
	switch (name) {
	case SO_ERROR:
		v = sk->err ? sk->err : sk->soft_err;
		sk->err = 0;
		sk->soft_err = 0;
		break;
	case SO_TYPE: v = SOCK_STREAM; break;
	case SO_DOMAIN: v = AF_INET; break;
	case SO_PROTOCOL: v = IPPROTO_TCP; break;
	case SO_REUSEADDR: v = sk->reuseaddr; break;
	case SO_REUSEPORT: v = sk->reuseport; break;
	case SO_ACCEPTCONN: v = sk->node.state == TCP_LISTEN; break;
	case SO_RCVBUF: v = sk->rcvbuf; break;
	case SO_SNDBUF: v = sk->sndbuf; break;
	case SO_KEEPALIVE: v = sk->keepalive; break;
	case SO_ZEROCOPY: v = sk->zerocopy; break;
	case SO_MARK: v = sk->ext ? (int)sk->ext->mark : 0; break;
	case SO_PRIORITY: v = sk->ext ? (int)sk->ext->priority : 0; break;
	case SO_RCVLOWAT: v = sk_rcvlowat(sk); break;
	case SO_SNDLOWAT: v = 1; break; /* fixed in Linux */
	case SO_OOBINLINE: v = sk->oobinline; break;
	case SO_BROADCAST: v = sk->broadcast; break;
	case SO_DONTROUTE: v = sk->dontroute; break;
	case SO_DEBUG: v = sk->sodebug; break;
	case SO_BINDTOIFINDEX: v = sk_bound_dev_if(sk); break;
	case SO_BINDTODEVICE: {
		/* sock_getbindtodevice: nothing bound reads as 0 bytes; else the name, which
		 * needs room for IFNAMSIZ */
		if (!len || (int)*len < 0)
			return -EINVAL;
		struct netdev *dev = sk_bound_dev_if(sk) ? netdev_get(st, sk_bound_dev_if(sk)) : NULL;
		if (!dev) {
			*len = 0;
			return 0;
		}
		if (*len < IFNAMSIZ)
			return -EINVAL;
		return copy_out(val, len, dev->name, strnlen(dev->name, sizeof(dev->name) - 1) + 1);
	}
	case SO_LINGER: {
		struct linger lg = { .l_onoff = sk->linger >= 0, .l_linger = sk->linger > 0 ? sk->linger : 0 };
		if (!len || *len < (socklen_t)sizeof(int))
			return -EINVAL;
		return copy_out(val, len, &lg, sizeof(lg));
	}
	case SO_RCVTIMEO_OLD:
	case SO_SNDTIMEO_OLD:
	case SO_RCVTIMEO_NEW:
	case SO_SNDTIMEO_NEW: {
		/* sock_get_timeout: waiting for ever reads as 0 s 0 µs; a shorter buffer gets the
		 * start of the timeval */
		uint32_t ms = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW ? sk->rcvtimeo : sk->sndtimeo;
		struct { int64_t sec, usec; } tv = { 0, 0 };
		if (ms != SK_TIMEO_NONE) {
			tv.sec = ms / 1000;
			tv.usec = (int64_t)(ms % 1000) * 1000;
		}
		if (!len || (int)*len < 0)
			return -EINVAL;
		return copy_out(val, len, &tv, sizeof(tv));
	}
	default: return -ENOPROTOOPT;
	}
	return put_int(val, len, v);
}

/* do_tcp_getsockopt: IPPROTO_TCP options (Linux's net/ipv4/tcp.c). */
static int do_tcp_getsockopt(struct ustack *st, struct sock *sk, int name, void *val, socklen_t *len)
{
	int v;
	if (name == TCP_INFO) {
		if (!val || !len)
			return -EFAULT;
		if ((int)*len < 0)
			return -EINVAL;
		struct ustack_tcp_info ti;
		tcp_get_info(st, sk, &ti);
		return copy_out(val, len, &ti, sizeof(ti));
	}
	if (name == TCP_CC_INFO) {
		if (!len)
			return -EFAULT;
		*len = 0; /* cubic and reno report nothing (no get_info in Linux either) */
		return 0;
	}
	if (name == TCP_FASTOPEN_KEY) { /* the listener's own keys, raw; none: 0 bytes */
		if (!len || (int)*len < 0)
			return -EFAULT;
		uint8_t key[32];
		size_t n = tcp_fastopen_get_key(sk, key);
		return copy_out(val, len, key, n);
	}
	switch (name) {
	case TCP_FASTOPEN: v = sk->accept_queue.fastopenq ? sk->accept_queue.fastopenq->max_qlen : 0; break;
	case TCP_FASTOPEN_CONNECT: v = sk->fastopen_connect; break;
	case TCP_FASTOPEN_NO_COOKIE: v = sk->fastopen_no_cookie; break;
	case TCP_SYNCNT: v = sk->syn_retries ? sk->syn_retries : st->sysctl.tcp_syn_retries; break;
	case TCP_NODELAY: v = sk->nodelay; break;
	case TCP_CORK: v = sk->cork; break;
	case TCP_NOTSENT_LOWAT: v = (int)sk->notsent_lowat; break; /* the socket's own: 0 if unset */
	case TCP_INQ: v = sk->recvmsg_inq; break;
	case TCP_MAXSEG:
		v = sk->node.state == TCP_ESTABLISHED ? sk->mss_cache : sk->user_mss ? sk->user_mss : TCP_MSS_DEFAULT;
		break;
	case TCP_KEEPIDLE: v = sk->keepalive_opts.idle ? sk->keepalive_opts.idle : st->sysctl.tcp_keepalive_time; break;
	case TCP_KEEPINTVL: v = sk->keepalive_opts.intvl ? sk->keepalive_opts.intvl : st->sysctl.tcp_keepalive_intvl; break;
	case TCP_KEEPCNT: v = sk->keepalive_opts.cnt ? sk->keepalive_opts.cnt : st->sysctl.tcp_keepalive_probes; break;
	case TCP_USER_TIMEOUT: v = (int)sk->user_timeout_ms; break;
	case TCP_CONGESTION: {
		if (!len || (int)*len < 0)
			return -EINVAL;
		char cname[16] = { 0 };
		snprintf(cname, sizeof(cname), "%s", sk->ca_ops->name);
		return copy_out(val, len, cname, sizeof(cname));
	}
	default: return -ENOPROTOOPT;
	}
	return put_int(val, len, v);
}

static int do_ip_getsockopt(struct ustack *st, struct sock *sk, int name, void *val, socklen_t *len);

int ustack_getsockopt(struct ustack *st, int fd, int level, int name, void *val, socklen_t *len)
{
	ENTER(st, fd, sk);
	switch (level) {
	case IPPROTO_IP: return leave(st, do_ip_getsockopt(st, sk, name, val, len));
	case SOL_SOCKET: return leave(st, sock_getsockopt(st, sk, name, val, len));
	case IPPROTO_TCP: return leave(st, do_tcp_getsockopt(st, sk, name, val, len));
	default: return leave(st, -ENOPROTOOPT);
	}
}

/* sock_bindtoindex: SO_BINDTODEVICE's and SO_BINDTOIFINDEX's end — a device that exists, or
 * 0 to unbind (kept in the extension, allocated only for a real binding) */
static int sock_bindtoindex(struct ustack *st, struct sock *sk, int ifindex)
{
	if (ifindex < 0)
		return -EINVAL;
	if (ifindex && !netdev_get(st, ifindex))
		return -ENODEV;
	if (!ifindex && !sk->ext)
		return 0;
	if (!sk_ext(sk))
		return -ENOMEM;
	sk->ext->bound_dev_if = ifindex;
	return 0;
}

/* sock_setsockopt: SOL_SOCKET options (Linux's sk_setsockopt in net/core/sock.c): the
 * length is checked before the value is read, as Linux does. */
static int sock_setsockopt(struct ustack *st, struct sock *sk, int name, const void *val, socklen_t len)
{
	if (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD || name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW) {
		/* sock_set_timeout: a whole timeval (EINVAL), µs in range (EDOM); negative seconds
		 * mean "do not wait", 0 s 0 µs "wait for ever"; kept in ms, rounded up (ustack's
		 * jiffy is a millisecond: Linux rounds to its HZ, 4 ms at this machine's 250) */
		struct { int64_t sec, usec; } tv;
		if (len < (socklen_t)sizeof(tv))
			return -EINVAL;
		if (!val)
			return -EFAULT;
		memcpy(&tv, val, sizeof(tv));
		if (tv.usec < 0 || tv.usec >= 1000000)
			return -EDOM;
		uint32_t ms = SK_TIMEO_NONE;
		if (tv.sec < 0)
			ms = 0;
		else if ((tv.sec || tv.usec) && tv.sec < (int64_t)(SK_TIMEO_NONE / 1000u) - 1)
			ms = (uint32_t)(tv.sec * 1000 + (tv.usec + 999) / 1000);
		else if (tv.sec || tv.usec)
			ms = SK_TIMEO_NONE - 1; /* about 49 days: the longest kept */
		*(name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW ? &sk->rcvtimeo : &sk->sndtimeo) = ms;
		return 0;
	}
	if (name == USTACK_SO_TIMESTAMPING_OLD || name == USTACK_SO_TIMESTAMPING_NEW)
		return sock_set_timestamping(sk, name, val, len);
	if (name == SO_BINDTODEVICE) {
		/* sock_setbindtodevice: up to IFNAMSIZ - 1 bytes of a name, not necessarily
		 * terminated; an empty name unbinds; an unknown one is ENODEV */
		char dname[IFNAMSIZ] = { 0 };
		if ((int)len < 0)
			return -EINVAL;
		size_t n = len < IFNAMSIZ - 1 ? (size_t)len : IFNAMSIZ - 1;
		if (n && !val)
			return -EFAULT;
		memcpy(dname, val, n);
		int ifindex = 0;
		if (dname[0]) {
			const struct netdev *dev = netdev_by_name(st, dname);
			if (!dev)
				return -ENODEV;
			ifindex = dev->ifindex;
		}
		return sock_bindtoindex(st, sk, ifindex);
	}
	if (name == SO_LINGER) {
		struct linger lg;
		if (len < (socklen_t)sizeof(lg))
			return -EINVAL;
		if (!val)
			return -EFAULT;
		memcpy(&lg, val, sizeof(lg));
		sk->linger = lg.l_onoff ? (lg.l_linger < 0 ? 0 : lg.l_linger) : -1;
		return 0;
	}
	int v;
	int rc = get_int_opt(val, len, &v);
	if (rc < 0)
		return rc;
	switch (name) {
	case SO_REUSEPORT: /* takes effect at the next bind() (sk_reuseport) */
		sk->reuseport = v != 0;
		inet_bind_flags_changed(sk);
		return 0;
	case SO_REUSEADDR:
		sk->reuseaddr = v != 0;
		inet_bind_flags_changed(sk);
		return 0;
	case SO_KEEPALIVE:
		sk->keepalive = v != 0;
		tcp_reset_keepalive_timer(st, sk);
		return 0;
	case SO_ZEROCOPY:
		if (v < 0 || v > 1)
			return -EINVAL;
		sk->zerocopy = v;
		return 0;
	case SO_MARK: /* the instance's owner has Linux's CAP_NET_ADMIN over it */
	case SO_PRIORITY:
		if (!v && !sk->ext)
			return 0;
		if (!sk_ext(sk))
			return -ENOMEM;
		*(name == SO_MARK ? &sk->ext->mark : &sk->ext->priority) = (uint32_t)v;
		return 0;
	case SO_RCVLOWAT: /* negative: INT_MAX; the protocol bounds it (tcp_set_rcvlowat) */
		tcp_set_rcvlowat(st, sk, v < 0 ? INT_MAX : v);
		return 0;
	case SO_OOBINLINE:
		sk->oobinline = v != 0;
		return 0;
	case SO_BROADCAST:
		sk->broadcast = v != 0;
		return 0;
	case SO_DONTROUTE:
		sk->dontroute = v != 0;
		return 0;
	case SO_DEBUG:
		sk->sodebug = v != 0;
		return 0;
	case SO_BINDTOIFINDEX:
		return sock_bindtoindex(st, sk, v);
	case SO_RCVBUF: { /* sock_setsockopt: doubled for overhead, capped by rmem_max */
		sk->rcvbuf_locked = true; /* and no autotuning from now on */
		unsigned u = (unsigned)v < (unsigned)st->sysctl.rmem_max ? (unsigned)v : (unsigned)st->sysctl.rmem_max;
		sk->rcvbuf = (int)(u * 2 < 2304 ? 2304 : u * 2);
		return 0;
	}
	case SO_SNDBUF: {
		sk->sndbuf_locked = true;
		unsigned u = (unsigned)v < (unsigned)st->sysctl.wmem_max ? (unsigned)v : (unsigned)st->sysctl.wmem_max;
		sk->sndbuf = (int)(u * 2 < 4608 ? 4608 : u * 2);
		sk->snd_limit = (uint32_t)sk->sndbuf;
		return 0;
	}
	default:
		return -ENOPROTOOPT;
	}
}

/*
 * The Fast Open options of do_tcp_setsockopt: TCP_FASTOPEN gives a listener (or a socket about
 * to listen) its Fast Open queue; TCP_FASTOPEN_CONNECT defers a client's connect to its first
 * write (only with the sysctl's client bit, EOPNOTSUPP without); TCP_FASTOPEN_NO_COOKIE does
 * without cookies; TCP_FASTOPEN_KEY sets a listener's own keys (16 bytes, or 32 with a backup).
 * -ENOPROTOOPT for any other option.
 */
static int do_tcp_fastopen_setsockopt(struct ustack *st, struct sock *sk, int name, const void *val, socklen_t len)
{
	if (name == TCP_FASTOPEN_KEY) {
		if (len != 16 && len != 32)
			return -EINVAL;
		if (!val)
			return -EFAULT;
		return tcp_fastopen_set_key(sk, val, (size_t)len);
	}
	if (name != TCP_FASTOPEN && name != TCP_FASTOPEN_CONNECT && name != TCP_FASTOPEN_NO_COOKIE)
		return -ENOPROTOOPT;
	int v;
	int rc = get_int_opt(val, len, &v);
	if (rc < 0)
		return rc;
	bool closed_or_listening = sk->node.state == TCP_CLOSE || sk->node.state == TCP_LISTEN;
	switch (name) {
	case TCP_FASTOPEN:
		if (v < 0 || !closed_or_listening)
			return -EINVAL;
		tcp_fastopen_init_key_once(st);
		return tcp_fastopen_queue_tune(st, sk, v);
	case TCP_FASTOPEN_CONNECT:
		if (v < 0 || v > 1)
			return -EINVAL;
		if (!(st->sysctl.tcp_fastopen & TFO_CLIENT_ENABLE))
			return -EOPNOTSUPP;
		if (sk->node.state != TCP_CLOSE)
			return -EINVAL;
		sk->fastopen_connect = (uint8_t)v;
		return 0;
	default: /* TCP_FASTOPEN_NO_COOKIE */
		if (v < 0 || v > 1 || !closed_or_listening)
			return -EINVAL;
		sk->fastopen_no_cookie = (uint8_t)v;
		return 0;
	}
}

/* do_tcp_setsockopt: IPPROTO_TCP options (Linux's net/ipv4/tcp.c).  Long, as Linux's is: one
 * case per option, each checking and storing its own value; split up, the cases would only
 * scatter. */
static int do_tcp_setsockopt(struct ustack *st, struct sock *sk, int name, const void *val, socklen_t len)
{
	int frc = do_tcp_fastopen_setsockopt(st, sk, name, val, len);
	if (frc != -ENOPROTOOPT)
		return frc;
	if (name == TCP_CONGESTION) {
		/* a name of up to TCP_CA_NAME_MAX − 1 bytes, not necessarily terminated; ENOENT
		 * for one that does not exist */
		if (len < 1)
			return -EINVAL;
		if (!val)
			return -EFAULT;
		char cname[16];
		size_t n = len < sizeof(cname) - 1 ? (size_t)len : sizeof(cname) - 1;
		memcpy(cname, val, n);
		cname[n] = 0;
		const struct tcp_cong_ops *ops = tcp_cong_find(cname);
		if (!ops)
			return -ENOENT;
		sk->ca_ops = ops;
		sk->ca_setsockopt = true;
		if (sk->data_init) /* tcp_reinit_congestion_control on a live connection */
			ops->init(st, sk);
		return 0;
	}
	int v;
	int rc = get_int_opt(val, len, &v);
	if (rc < 0)
		return rc;
	switch (name) {
	case TCP_SYNCNT:
		if (v < 1 || v > TCP_MAX_SYNCNT)
			return -EINVAL;
		sk->syn_retries = (uint8_t)v;
		return 0;
	case TCP_MAXSEG:
		/* do_tcp_setsockopt: 0 clears, else TCP_MIN_MSS (88) .. MAX_TCP_WINDOW */
		if (v && (v < 88 || v > 32767))
			return -EINVAL;
		sk->user_mss = (uint16_t)v;
		return 0;
	case TCP_NODELAY:
		sk->nodelay = v != 0;
		if (sk->nodelay && sk->data_init) {
			/* what Nagle — or a cork, this once (TCP_NAGLE_PUSH) — held back goes now */
			bool c = sk->cork;
			sk->cork = sk->more = false;
			tcp_write_xmit(st, sk);
			sk->cork = c;
		}
		return 0;
	case TCP_INQ:
		if (v < 0 || v > 1)
			return -EINVAL;
		sk->recvmsg_inq = v;
		return 0;
	case TCP_NOTSENT_LOWAT:
		/* any value, read as unsigned (do_tcp_setsockopt); a raised mark may make
		 * the socket writable again */
		sk->notsent_lowat = (uint32_t)v;
		sk_wake_sk(st, sk);
		return 0;
	case TCP_CORK:
		/* __tcp_sock_set_cork: uncorking pushes what waited, partial segment and all */
		sk->cork = v != 0;
		if (!sk->cork && sk->data_init) {
			bool nd = sk->nodelay;
			sk->more = false;
			sk->nodelay = true;
			tcp_write_xmit(st, sk);
			sk->nodelay = nd;
		}
		return 0;
	case TCP_KEEPIDLE: /* 1 .. MAX_TCP_KEEPIDLE; a running keepalive restarts from it */
		if (v < 1 || v > 32767)
			return -EINVAL;
		sk->keepalive_opts.idle = (uint16_t)v;
		tcp_reset_keepalive_timer(st, sk);
		return 0;
	case TCP_KEEPINTVL:
		if (v < 1 || v > 32767)
			return -EINVAL;
		sk->keepalive_opts.intvl = (uint16_t)v;
		return 0;
	case TCP_KEEPCNT:
		if (v < 1 || v > 127)
			return -EINVAL;
		sk->keepalive_opts.cnt = (uint8_t)v;
		return 0;
	case TCP_USER_TIMEOUT:
		if (v < 0)
			return -EINVAL;
		sk->user_timeout_ms = (uint32_t)v;
		return 0;
	default:
		return -ENOPROTOOPT;
	}
}

/*
 * do_ip_setsockopt: the IPPROTO_IP options ustack serves; any other is ENOPROTOOPT, as an option
 * Linux does not know is.  Each takes an int or a single byte (do_ip_setsockopt reads what the
 * length allows, and 0 from an empty one).  IP_TOS keeps a TCP socket's ECN bits (they belong
 * to ECN, __ip_sock_set_tos); IP_TTL is 1..255 or -1 for the sysctl's; IP_MTU_DISCOVER's DONT
 * clears DF and ignores fragmentation-needed, WANT (the default) and DO set DF.
 */
static int do_ip_setsockopt(struct sock *sk, int name, const void *val, socklen_t len)
{
	if (name != IP_BIND_ADDRESS_NO_PORT && name != IP_TOS && name != IP_TTL && name != IP_MTU_DISCOVER &&
	    name != IP_RECVERR && name != IP_FREEBIND && name != IP_TRANSPARENT)
		return -ENOPROTOOPT;
	int v = 0;
	if (len >= (socklen_t)sizeof(int)) {
		if (!val)
			return -EFAULT;
		memcpy(&v, val, sizeof(v));
	} else if (len >= 1) {
		if (!val)
			return -EFAULT;
		v = *(const uint8_t *)val;
	}
	switch (name) {
	case IP_TOS:
		sk->tos = (uint8_t)(((unsigned)v & ~3u) | (sk->tos & 3u));
		return 0;
	case IP_TTL:
		if (len < 1)
			return -EINVAL;
		if (v != -1 && (v < 1 || v > 255))
			return -EINVAL;
		sk->ttl = v == -1 ? 0 : (uint8_t)v;
		return 0;
	case IP_MTU_DISCOVER:
		if (v < IP_PMTUDISC_DONT || v > IP_PMTUDISC_OMIT)
			return -EINVAL;
		sk->pmtudisc = (uint8_t)v;
		return 0;
	case IP_RECVERR: /* turned off, what waits on the error queue goes (skb_errqueue_purge) */
		sk->recverr = v != 0;
		if (!v)
			sk_error_queue_purge(sk);
		return 0;
	case IP_FREEBIND:
	case IP_TRANSPARENT: /* (the instance's owner has CAP_NET_ADMIN over it) */
		if (len < 1)
			return -EINVAL;
		if (name == IP_FREEBIND)
			sk->freebind = v != 0;
		else
			sk->transparent = v != 0;
		return 0;
	default: /* IP_BIND_ADDRESS_NO_PORT */
		sk->bind_address_no_port = v != 0;
		return 0;
	}
}

/* do_ip_getsockopt */
static int do_ip_getsockopt(struct ustack *st, struct sock *sk, int name, void *val, socklen_t *len)
{
	switch (name) {
	case IP_BIND_ADDRESS_NO_PORT: return put_int(val, len, sk->bind_address_no_port);
	case IP_TOS: return put_int(val, len, sk->tos);
	case IP_TTL: return put_int(val, len, sk->ttl ? sk->ttl : st->sysctl.ip_default_ttl);
	case IP_MTU_DISCOVER: return put_int(val, len, sk->pmtudisc);
	case IP_RECVERR: return put_int(val, len, sk->recverr);
	case IP_FREEBIND: return put_int(val, len, sk->freebind);
	case IP_TRANSPARENT: return put_int(val, len, sk->transparent);
	case IP_MTU: /* the path's MTU, for a connected socket */
		if (sk->node.state == TCP_CLOSE || sk->node.state == TCP_LISTEN || !sk->node.raddr)
			return -ENOTCONN;
		return put_int(val, len, (int)sk->rt.mtu);
	default: return -ENOPROTOOPT;
	}
}

int ustack_setsockopt(struct ustack *st, int fd, int level, int name, const void *val, socklen_t len)
{
	ENTER(st, fd, sk);
	switch (level) {
	case IPPROTO_IP: return leave(st, do_ip_setsockopt(sk, name, val, len));
	case SOL_SOCKET: return leave(st, sock_setsockopt(st, sk, name, val, len));
	case IPPROTO_TCP: return leave(st, do_tcp_setsockopt(st, sk, name, val, len));
	default: return leave(st, -ENOPROTOOPT);
	}
}
