/*
 * libustack-packetdrill.so: lets packetdrill (--so_filename) test ustack instead of the kernel.
 *
 * packetdrill drives a "stack under test" through a table of function pointers, each taking a
 * userdata pointer and then the arguments of the POSIX call of the same name; it injects the
 * script's inbound packets with netdev_send and collects outbound ones with netdev_receive.  The
 * table is declared here from that description (packetdrill's own header is not used).
 *
 * Time is virtual: packetdrill reads the clock only through gettimeofday/usleep here, so the
 * stack runs on a clock this adapter owns.  usleep() advances it (running due timers); each
 * gettimeofday() advances it by a microsecond, since packetdrill spins on it while waiting; and
 * netdev_receive(), asked for a packet none is queued for, moves time to the stack's next timer.
 *
 * Threads: packetdrill runs calls with a time range ("0...0.2 connect()") on a second thread.
 * ustack's blocking calls sleep on a condition variable, which is what packetdrill waits to see
 * before it goes on injecting packets.
 *
 * Descriptors are real eventfds of this process (packetdrill closes leftovers with libc close()),
 * mapped to ustack's own descriptors.
 *
 * Sysctls: scripts configure the kernel of the namespace packetdrill runs in (`sysctl -q ...`);
 * at each socket(), listen(), connect(), setsockopt(), sendto() and sendmsg() the adapter copies
 * every net.* value ustack knows from /proc/sys, so scripts configure ustack the way they
 * configure Linux — also between two calls on one socket (net.ipv4.tcp_fastopen is turned off
 * and on around a sendto).  Not on every read and write: those must stay quick.
 *
 * Shell commands that look into the stack (`nstat`, `ip tcp_metrics flush`) run in other
 * processes: with --so_flags ctl=NAME the adapter serves the instance's control socket, and
 * tests/packetdrill/run puts shims first on packetdrill's PATH that send those commands to
 * `ustack nstat` / `ustack tcp_metrics --name NAME`, as they reach the kernel on Linux.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ustack/diag.h>
#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>


/* The interface packetdrill expects, in its order. */
struct packetdrill_interface {
	void *userdata;
	void (*free)(void *userdata);
	int (*socket)(void *userdata, int domain, int type, int protocol);
	int (*bind)(void *userdata, int sockfd, const struct sockaddr *addr, socklen_t addrlen);
	int (*listen)(void *userdata, int sockfd, int backlog);
	int (*accept)(void *userdata, int sockfd, struct sockaddr *addr, socklen_t *addrlen);
	int (*connect)(void *userdata, int sockfd, const struct sockaddr *addr, socklen_t addrlen);
	ssize_t (*read)(void *userdata, int fd, void *buf, size_t count);
	ssize_t (*readv)(void *userdata, int fd, const struct iovec *iov, int iovcnt);
	ssize_t (*recv)(void *userdata, int sockfd, void *buf, size_t len, int flags);
	ssize_t (*recvfrom)(void *userdata, int sockfd, void *buf, size_t len, int flags,
			    struct sockaddr *src_addr, socklen_t *addrlen);
	ssize_t (*recvmsg)(void *userdata, int sockfd, struct msghdr *msg, int flags);
	ssize_t (*write)(void *userdata, int fd, const void *buf, size_t count);
	ssize_t (*writev)(void *userdata, int fd, const struct iovec *iov, int iovcnt);
	ssize_t (*send)(void *userdata, int sockfd, const void *buf, size_t len, int flags);
	ssize_t (*sendto)(void *userdata, int sockfd, const void *buf, size_t len, int flags,
			  const struct sockaddr *dest_addr, socklen_t addrlen);
	ssize_t (*sendmsg)(void *userdata, int sockfd, const struct msghdr *msg, int flags);
	int (*fcntl)(void *userdata, int fd, int cmd, ...);
	int (*ioctl)(void *userdata, int fd, unsigned long request, ...);
	int (*close)(void *userdata, int fd);
	int (*shutdown)(void *userdata, int sockfd, int how);
	int (*getsockopt)(void *userdata, int sockfd, int level, int optname, void *optval,
			  socklen_t *optlen);
	int (*setsockopt)(void *userdata, int sockfd, int level, int optname, const void *optval,
			  socklen_t optlen);
	int (*poll)(void *userdata, struct pollfd *fds, nfds_t nfds, int timeout);
	int (*netdev_send)(void *userdata, const void *buf, size_t count);
	int (*netdev_receive)(void *userdata, void *buf, size_t *count, long long *time_usecs);
	int (*usleep)(void *userdata, useconds_t usec);
	int (*gettimeofday)(void *userdata, struct timeval *tv, struct timezone *tz);
	int (*epoll_create)(void *userdata, int size);
	int (*epoll_ctl)(void *userdata, int epfd, int op, int fd, struct epoll_event *event);
	int (*epoll_wait)(void *userdata, int epfd, struct epoll_event *events, int maxevents, int timeout);
	int (*pipe)(void *userdata, int pipefd[2]);
	int (*splice)(void *userdata, int fd_in, off_t *off_in, int fd_out, off_t *off_out,
		      size_t len, unsigned int flags);
};

int packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc);

#define QMAX 1024
#define FRAME_MAX 2048          /* a frame kept in its queue slot */
#define FRAME_JUMBO_MAX (65535 + 14) /* the largest (mtu=65535): in the slot's own big buffer */
#define FDMAP 65536

struct out_pkt {
	uint8_t b[FRAME_MAX];
	uint8_t *big; /* made on the slot's first jumbo frame, kept */
	size_t len;
	uint64_t t;
};

struct pd {
	struct ustack_clock clock;
	uint64_t now_us; /* virtual time; atomic access: two packetdrill threads use it */
	struct ustack *st;
	int ifindex;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct out_pkt *q;
	unsigned qhead, qcount;
	int map[FDMAP]; /* eventfd → ustack descriptor + 1 (0: not ours) */
	unsigned in_calls; /* threads inside a call that may block (atomic) */
	struct ustack_ctl *ctl; /* the control socket (so_flags ctl=NAME), or NULL */
};

static uint64_t pd_now(void *arg)
{
	return __atomic_load_n(&((struct pd *)arg)->now_us, __ATOMIC_ACQUIRE);
}

/* Before virtual time moves on, every thread inside a blocking call must be asleep in it or
 * have returned: in real time, a read woken by data returns long before the script's next
 * event; in virtual time the main thread could otherwise jump ahead of it.  Bounded in real
 * time (about a second) so a stuck caller cannot hang the run. */
static void pd_settle(struct pd *pd)
{
	for (int i = 0; i < 20000; i++) {
		if (__atomic_load_n(&pd->in_calls, __ATOMIC_ACQUIRE) <= ustack_sleeping_callers(pd->st)) {
			/* a call that just returned: give packetdrill's syscall thread a moment to
			 * record its result (an accept's new descriptor) before time moves on */
			if (i) {
				struct timespec grace = { 0, 2000000 };
				nanosleep(&grace, NULL);
			}
			return;
		}
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
	}
}

static void pd_enter(struct pd *pd)
{
	__atomic_add_fetch(&pd->in_calls, 1, __ATOMIC_ACQ_REL);
}

static long pd_leave(struct pd *pd, long rc)
{
	int e = errno;
	__atomic_sub_fetch(&pd->in_calls, 1, __ATOMIC_ACQ_REL);
	errno = e;
	return rc;
}

static void pd_advance_to(struct pd *pd, uint64_t t)
{
	pd_settle(pd);
	uint64_t cur = pd_now(pd);
	while (t > cur && !__atomic_compare_exchange_n(&pd->now_us, &cur, t, false, __ATOMIC_ACQ_REL,
						      __ATOMIC_ACQUIRE))
		;
	ustack_timers_run(pd->st);
}

static int pd_xmit(void *link, const void *frame, size_t len)
{
	struct pd *pd = link;
	if (len > FRAME_JUMBO_MAX)
		return -1;
	pthread_mutex_lock(&pd->qlock);
	if (pd->qcount == QMAX) {
		pthread_mutex_unlock(&pd->qlock);
		return -1;
	}
	struct out_pkt *p = &pd->q[(pd->qhead + pd->qcount) % QMAX];
	if (len > FRAME_MAX && !p->big && !(p->big = malloc(FRAME_JUMBO_MAX))) {
		pthread_mutex_unlock(&pd->qlock);
		return -1;
	}
	memcpy(len > FRAME_MAX ? p->big : p->b, frame, len);
	p->len = len;
	p->t = pd_now(pd);
	pd->qcount++;
	pthread_cond_broadcast(&pd->qcond);
	pthread_mutex_unlock(&pd->qlock);
	return 0;
}

/* ---- descriptors ---------------------------------------------------------------------- */

static int ufd(struct pd *pd, int fd)
{
	if (fd < 0 || fd >= FDMAP || !pd->map[fd]) {
		errno = EBADF;
		return -1;
	}
	return pd->map[fd] - 1;
}

#define UFD(pd, fd)                  \
	int u = ufd(pd, fd);         \
	if (u < 0)                   \
		return -1;

/* Wraps a new ustack descriptor in an eventfd. */
static int wrap(struct pd *pd, int u)
{
	if (u < 0)
		return -1;
	int efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0 || efd >= FDMAP) {
		int e = efd < 0 ? errno : EMFILE;
		if (efd >= 0)
			close(efd);
		ustack_close(pd->st, u);
		errno = e;
		return -1;
	}
	pd->map[efd] = u + 1;
	return efd;
}

/* Copies the net.* sysctls ustack knows from this namespace's /proc/sys. */
static void sync_sysctls(struct pd *pd)
{
	for (size_t i = 0; i < ustack_sysctl_count(); i++) {
		const char *name = ustack_sysctl_name(i);
		char path[256], val[256];
		snprintf(path, sizeof(path), "/proc/sys/%s", name);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(val, sizeof(val), f))
			ustack_sysctl_set(pd->st, name, val); /* a value ustack refuses keeps its own */
		fclose(f);
	}
}

static int pd_socket(void *ud, int domain, int type, int protocol)
{
	struct pd *pd = ud;
	sync_sysctls(pd);
	return wrap(pd, ustack_socket(pd->st, domain, type, protocol));
}

static int pd_bind(void *ud, int fd, const struct sockaddr *a, socklen_t l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	return ustack_bind(pd->st, u, a, l);
}

static int pd_listen(void *ud, int fd, int backlog)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	sync_sysctls(pd);
	return ustack_listen(pd->st, u, backlog);
}

static int pd_accept(void *ud, int fd, struct sockaddr *a, socklen_t *l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd_enter(pd);
	int r = (int)pd_leave(pd, ustack_accept(pd->st, u, a, l));
	return wrap(pd, r);
}

static int pd_connect(void *ud, int fd, const struct sockaddr *a, socklen_t l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	sync_sysctls(pd);
	pd_enter(pd);
	return pd_leave(pd, ustack_connect(pd->st, u, a, l));
}

/* Scatter/gather and msghdr forms are not wired yet: they fail cleanly rather than pretend. */

static ssize_t pd_read(void *ud, int fd, void *b, size_t n)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd_enter(pd);
	return pd_leave(pd, ustack_read(pd->st, u, b, n));
}
/* Vectors are gathered into (scattered from) one buffer around a single ustack call, so the
 * call sees one write (read) as the kernel's tcp_sendmsg (tcp_recvmsg) would. */
static size_t iov_total(const struct iovec *v, int c)
{
	size_t n = 0;
	for (int i = 0; i < c; i++)
		n += v[i].iov_len;
	return n;
}

/* A buffer for the vector's total, or NULL with errno (EINVAL, EFAULT as the kernel). */
static uint8_t *iov_buf(const struct iovec *v, int c, size_t *n)
{
	if (c < 0 || (c && !v)) {
		errno = c < 0 ? EINVAL : EFAULT;
		return NULL;
	}
	*n = iov_total(v, c);
	uint8_t *tmp = malloc(*n ? *n : 1);
	if (!tmp)
		errno = ENOMEM;
	return tmp;
}

static ssize_t pd_recv_iov(struct pd *pd, int u, const struct iovec *v, int c, int f)
{
	size_t n;
	uint8_t *tmp = iov_buf(v, c, &n);
	if (!tmp)
		return -1;
	pd_enter(pd);
	ssize_t r = pd_leave(pd, ustack_recv(pd->st, u, tmp, n, f));
	for (ssize_t off = 0, i = 0; r > 0 && off < r && i < c; i++) {
		size_t k = (size_t)(r - off) < v[i].iov_len ? (size_t)(r - off) : v[i].iov_len;
		memcpy(v[i].iov_base, tmp + off, k);
		off += (ssize_t)k;
	}
	free(tmp);
	return r;
}

static ssize_t pd_send_iov(struct pd *pd, int u, const struct iovec *v, int c, int f,
			   const struct sockaddr *a, socklen_t l)
{
	size_t n;
	uint8_t *tmp = iov_buf(v, c, &n);
	if (!tmp)
		return -1;
	for (size_t off = 0, i = 0; i < (size_t)c; off += v[i].iov_len, i++) {
		if (v[i].iov_len && !v[i].iov_base) {
			free(tmp);
			errno = EFAULT;
			return -1;
		}
		memcpy(tmp + off, v[i].iov_base, v[i].iov_len);
	}
	pd_enter(pd);
	ssize_t r = pd_leave(pd, ustack_sendto(pd->st, u, tmp, n, f, a, l));
	free(tmp);
	return r;
}

static ssize_t pd_readv(void *ud, int fd, const struct iovec *v, int c)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	return pd_recv_iov(pd, u, v, c, 0);
}
static ssize_t pd_recv(void *ud, int fd, void *b, size_t n, int f)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd_enter(pd);
	return pd_leave(pd, ustack_recv(pd->st, u, b, n, f));
}
/* TCP's recvfrom and recvmsg leave the address alone (msg_namelen 0), as Linux's do. */
static ssize_t pd_recvfrom(void *ud, int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	(void)a;
	if (l)
		*l = 0;
	pd_enter(pd);
	return pd_leave(pd, ustack_recv(pd->st, u, b, n, f));
}
static ssize_t pd_recvmsg(void *ud, int fd, struct msghdr *m, int f)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	if (!m) {
		errno = EFAULT;
		return -1;
	}
	pd_enter(pd);
	return pd_leave(pd, ustack_recvmsg(pd->st, u, m, f));
}
static ssize_t pd_write(void *ud, int fd, const void *b, size_t n)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd_enter(pd);
	return pd_leave(pd, ustack_write(pd->st, u, b, n));
}
static ssize_t pd_writev(void *ud, int fd, const struct iovec *v, int c)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	return pd_send_iov(pd, u, v, c, 0, NULL, 0);
}
static ssize_t pd_send(void *ud, int fd, const void *b, size_t n, int f)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd_enter(pd);
	return pd_leave(pd, ustack_send(pd->st, u, b, n, f));
}
/* The address of sendto/sendmsg is where a Fast Open (MSG_FASTOPEN) connects; on a connected
 * socket it is ignored, as tcp_sendmsg does. */
static ssize_t pd_sendto(void *ud, int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	sync_sysctls(pd);
	pd_enter(pd);
	return pd_leave(pd, ustack_sendto(pd->st, u, b, n, f, a, l));
}
static ssize_t pd_sendmsg(void *ud, int fd, const struct msghdr *m, int f)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	sync_sysctls(pd);
	if (!m) {
		errno = EFAULT;
		return -1;
	}
	if (m->msg_controllen || (f & MSG_ZEROCOPY)) {
		/* control messages (a write's SO_TIMESTAMPING), or a zerocopy write whose iovecs'
		 * pages bound its skbs: ustack's sendmsg, which sees the iovecs */
		pd_enter(pd);
		return pd_leave(pd, ustack_sendmsg(pd->st, u, m, f));
	}
	return pd_send_iov(pd, u, m->msg_iov, (int)m->msg_iovlen, f, m->msg_name, m->msg_namelen);
}

static int pd_fcntl(void *ud, int fd, int cmd, ...)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	va_list ap;
	va_start(ap, cmd);
	int arg = (cmd == F_SETFL) ? va_arg(ap, int) : 0;
	va_end(ap);
	return ustack_fcntl(pd->st, u, cmd, arg);
}

static int pd_ioctl(void *ud, int fd, unsigned long req, ...)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	va_list ap;
	va_start(ap, req);
	int *arg = va_arg(ap, int *);
	va_end(ap);
	return ustack_ioctl(pd->st, u, req, arg);
}

static int pd_close(void *ud, int fd)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	pd->map[fd] = 0;
	pd_enter(pd);
	int rc = (int)pd_leave(pd, ustack_close(pd->st, u));
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static int pd_shutdown(void *ud, int fd, int how)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	return ustack_shutdown(pd->st, u, how);
}

static int pd_getsockopt(void *ud, int fd, int level, int name, void *v, socklen_t *l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	return ustack_getsockopt(pd->st, u, level, name, v, l);
}

static int pd_setsockopt(void *ud, int fd, int level, int name, const void *v, socklen_t l)
{
	struct pd *pd = ud;
	UFD(pd, fd);
	sync_sysctls(pd);
	return ustack_setsockopt(pd->st, u, level, name, v, l);
}

static int pd_poll(void *ud, struct pollfd *fds, nfds_t n, int timeout)
{
	struct pd *pd = ud;
	struct pollfd *uf = calloc(n ? n : 1, sizeof(*uf));
	if (!uf)
		return -1;
	for (nfds_t i = 0; i < n; i++) {
		uf[i] = fds[i];
		uf[i].fd = fds[i].fd < 0 ? -1 : (fds[i].fd < FDMAP && pd->map[fds[i].fd] ? pd->map[fds[i].fd] - 1 : INT_MAX); /* no descriptor of ustack's */
	}
	/* A poll that waits does so on virtual time: it sleeps in ustack (counted as a
	 * sleeper, so virtual time may move on) in short real slices, until something is ready
	 * or the clock packetdrill drives passes its timeout. */
	int rc = ustack_poll(pd->st, uf, n, 0);
	if (!rc && timeout != 0) {
		uint64_t deadline = pd_now(pd) + (uint64_t)(timeout > 0 ? timeout : 0) * 1000u;
		pd_enter(pd);
		while (rc == 0 && (timeout < 0 || pd_now(pd) < deadline))
			rc = ustack_poll(pd->st, uf, n, 1);
		pd_leave(pd, 0);
	}
	for (nfds_t i = 0; i < n; i++)
		fds[i].revents = uf[i].revents;
	free(uf);
	return rc;
}

/* ---- the wire and the clock ----------------------------------------------------------- */

static int pd_netdev_send(void *ud, const void *buf, size_t count)
{
	struct pd *pd = ud;
	ustack_input(pd->st, pd->ifindex, buf, count);
	return 0;
}

static int pd_netdev_receive(void *ud, void *buf, size_t *count, long long *time_usecs)
{
	struct pd *pd = ud;
	int idle_ms = 0;
	for (;;) {
		pthread_mutex_lock(&pd->qlock);
		if (!pd->qcount) {
			/* Give another thread (a blocking call just started) a moment to send. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&pd->qcond, &pd->qlock, &ts);
		}
		if (pd->qcount) {
			struct out_pkt *p = &pd->q[pd->qhead];
			size_t n = p->len < *count ? p->len : *count;
			memcpy(buf, p->len > FRAME_MAX ? p->big : p->b, n);
			*count = n;
			*time_usecs = (long long)p->t;
			pd->qhead = (pd->qhead + 1) % QMAX;
			pd->qcount--;
			pthread_mutex_unlock(&pd->qlock);
			return 0;
		}
		pthread_mutex_unlock(&pd->qlock);
		uint64_t next = ustack_timers_next(pd->st);
		if (next != UINT64_MAX) {
			pd_advance_to(pd, next);
			idle_ms = 0;
			continue;
		}
		if ((idle_ms += 2) >= 1000) {
			fprintf(stderr, "ustack-packetdrill: error: the script expects an outbound packet, but ustack "
					"has none queued and no timer armed (at virtual time %.6f s)\n",
				(double)pd_now(pd) / 1e6);
			exit(EXIT_FAILURE);
		}
	}
}

static int pd_usleep(void *ud, useconds_t us)
{
	struct pd *pd = ud;
	pd_advance_to(pd, pd_now(pd) + us);
	return 0;
}

static int pd_gettimeofday(void *ud, struct timeval *tv, struct timezone *tz)
{
	struct pd *pd = ud;
	(void)tz;
	uint64_t t = __atomic_add_fetch(&pd->now_us, 1, __ATOMIC_ACQ_REL);
	ustack_timers_run(pd->st);
	tv->tv_sec = (time_t)(t / 1000000u);
	tv->tv_usec = (suseconds_t)(t % 1000000u);
	return 0;
}

static int pd_unsupported(void)
{
	errno = ENOSYS;
	return -1;
}
static int pd_epoll_create(void *ud, int size)
{
	struct pd *pd = ud;
	return wrap(pd, ustack_epoll_create(pd->st, size));
}
static int pd_epoll_ctl(void *ud, int e, int op, int fd, struct epoll_event *ev)
{
	struct pd *pd = ud;
	int ue = ufd(pd, e);
	if (ue < 0)
		return -1;
	UFD(pd, fd);
	return ustack_epoll_ctl(pd->st, ue, op, u, ev);
}
static int pd_epoll_wait(void *ud, int e, struct epoll_event *ev, int m, int t)
{
	struct pd *pd = ud;
	UFD(pd, e);
	pd_enter(pd);
	return (int)pd_leave(pd, ustack_epoll_wait(pd->st, u, ev, m, t));
}
static int pd_pipe(void *ud, int fds[2]) { (void)ud; return pipe(fds); }
static int pd_splice(void *ud, int a, off_t *b, int c, off_t *d, size_t e, unsigned f)
{
	(void)ud; (void)a; (void)b; (void)c; (void)d; (void)e; (void)f;
	return pd_unsupported();
}

static void pd_free(void *ud)
{
	struct pd *pd = ud;
	ustack_ctl_stop(pd->ctl);
	ustack_destroy(pd->st);
	pthread_mutex_destroy(&pd->qlock);
	pthread_cond_destroy(&pd->qcond);
	for (unsigned i = 0; pd->q && i < QMAX; i++)
		free(pd->q[i].big);
	free(pd->q);
	free(pd);
}

/* flags: "ip=A,gw=G,mtu=N,ctl=NAME" (each optional); defaults are packetdrill's 192.168.0.1
 * side, and no control socket. */
static void parse_flags(const char *flags, struct in_addr *ip, unsigned *prefix, struct in_addr *gw, unsigned *mtu,
			char *ctl, size_t ctllen)
{
	ctl[0] = 0;
	inet_pton(AF_INET, "192.168.0.1", ip);
	inet_pton(AF_INET, "192.168.0.2", gw);
	*prefix = 16;
	*mtu = 1500;
	if (!flags)
		return;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", flags);
	for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *v = eq + 1;
		if (!strcmp(kv, "ip")) {
			char a[64];
			snprintf(a, sizeof(a), "%s", v);
			char *slash = strchr(a, '/');
			if (slash) {
				*prefix = (unsigned)atoi(slash + 1);
				*slash = 0;
			}
			inet_pton(AF_INET, a, ip);
		} else if (!strcmp(kv, "gw")) {
			inet_pton(AF_INET, v, gw);
		} else if (!strcmp(kv, "mtu")) {
			*mtu = (unsigned)atoi(v);
		} else if (!strcmp(kv, "ctl")) {
			snprintf(ctl, ctllen, "%s", v);
		}
	}
}

/* The instance packetdrill_interface_init made, for the LD_PRELOADed getsockopt below. */
static struct pd *g_pd;

/*
 * With this library also LD_PRELOADed into packetdrill (tests/packetdrill/run does so), the
 * getsockopt calls packetdrill itself makes on a script's socket — TCP_INFO, TCP_CC_INFO and
 * SO_MEMINFO for the `%{ }%` assertions — reach ustack, which answers in Linux's layouts; every
 * other descriptor goes to the C library's getsockopt.
 */
int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct pd *pd = __atomic_load_n(&g_pd, __ATOMIC_ACQUIRE);
	if (pd && fd >= 0 && fd < FDMAP && pd->map[fd])
		return ustack_getsockopt(pd->st, pd->map[fd] - 1, level, name, val, len);
	static int (*real)(int, int, int, void *, socklen_t *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "getsockopt");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd, level, name, val, len);
}

/*
 * sendfile, which packetdrill calls from the C library (the interface has no slot for it):
 * onto one of ustack's sockets it reads the file (pread at *offset, or read from its file
 * position) and sends what it read as one write, as do_sendfile's splice into the socket
 * would; anything else goes to the C library.
 */
ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct pd *pd = __atomic_load_n(&g_pd, __ATOMIC_ACQUIRE);
	if (!pd || out_fd < 0 || out_fd >= FDMAP || !pd->map[out_fd]) {
		static ssize_t (*real)(int, int, off_t *, size_t);
		if (!real)
			*(void **)&real = dlsym(RTLD_NEXT, "sendfile");
		if (!real) {
			errno = ENOSYS;
			return -1;
		}
		return real(out_fd, in_fd, offset, count);
	}
	if (count > (1u << 20))
		count = 1u << 20; /* a bounded chunk, as one call of Linux's may also send less */
	uint8_t *buf = malloc(count ? count : 1);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	ssize_t n = offset ? pread(in_fd, buf, count, *offset) : read(in_fd, buf, count);
	ssize_t sent = n;
	if (n > 0) {
		pd_enter(pd);
		sent = pd_leave(pd, ustack_send(pd->st, pd->map[out_fd] - 1, buf, (size_t)n, 0));
		if (sent > 0 && offset)
			*offset += sent;
		else if (sent > 0 && sent < n)
			lseek(in_fd, sent - n, SEEK_CUR); /* unread what did not go */
	}
	int e = errno;
	free(buf);
	errno = e;
	return sent;
}

int packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc)
{
	struct pd *pd = calloc(1, sizeof(*pd));
	pd->q = calloc(QMAX, sizeof(*pd->q));
	if (!pd || !pd->q) {
		fprintf(stderr, "ustack-packetdrill: out of memory\n");
		exit(EXIT_FAILURE);
	}
	struct timeval tv;
	gettimeofday(&tv, NULL); /* start virtual time at the real time: plausible timestamps */
	pd->now_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	pd->clock.now_us = pd_now;
	pd->clock.arg = pd;
	pthread_mutex_init(&pd->qlock, NULL);
	pthread_cond_init(&pd->qcond, NULL);
	struct ustack_config cfg = { .clock = &pd->clock, .name = "ustack" };
	pd->st = ustack_create(&cfg);
	struct in_addr ip, gw;
	unsigned prefix, mtu;
	char ctl[80];
	parse_flags(flags, &ip, &prefix, &gw, &mtu, ctl, sizeof(ctl));
	struct ustack_if_config ic = { .name = "tun0", .type = USTACK_LINK_RAWIP, .mtu = mtu,
				       .xmit = pd_xmit, .link = pd };
	pd->ifindex = pd->st ? ustack_if_add(pd->st, &ic) : -1;
	struct ustack_route def = { .ifindex = pd->ifindex };
	if (pd->ifindex < 0 || ustack_addr_add(pd->st, pd->ifindex, ip, prefix) < 0 ||
	    ustack_route_add(pd->st, &def) < 0) {
		fprintf(stderr, "ustack-packetdrill: cannot set up the stack: %s\n", strerror(errno));
		exit(EXIT_FAILURE);
	}
	(void)gw; /* a raw-IP link has no next hop to resolve: the default route is on-link */
	if (ctl[0] && !(pd->ctl = ustack_ctl_start(pd->st, ctl))) {
		fprintf(stderr, "ustack-packetdrill: cannot serve control socket %s: %s\n", ctl, strerror(errno));
		exit(EXIT_FAILURE);
	}
	*ifc = (struct packetdrill_interface){
		.userdata = pd, .free = pd_free, .socket = pd_socket, .bind = pd_bind,
		.listen = pd_listen, .accept = pd_accept, .connect = pd_connect, .read = pd_read,
		.readv = pd_readv, .recv = pd_recv, .recvfrom = pd_recvfrom, .recvmsg = pd_recvmsg,
		.write = pd_write, .writev = pd_writev, .send = pd_send, .sendto = pd_sendto,
		.sendmsg = pd_sendmsg, .fcntl = pd_fcntl, .ioctl = pd_ioctl, .close = pd_close,
		.shutdown = pd_shutdown, .getsockopt = pd_getsockopt, .setsockopt = pd_setsockopt,
		.poll = pd_poll, .netdev_send = pd_netdev_send, .netdev_receive = pd_netdev_receive,
		.usleep = pd_usleep, .gettimeofday = pd_gettimeofday, .epoll_create = pd_epoll_create,
		.epoll_ctl = pd_epoll_ctl, .epoll_wait = pd_epoll_wait, .pipe = pd_pipe,
		.splice = pd_splice,
	};
	__atomic_store_n(&g_pd, pd, __ATOMIC_RELEASE);
	return 0;
}
