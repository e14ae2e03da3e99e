/*
 * libustack-preload.so: unmodified programs over ustack (`ustack run -- PROGRAM`, which sets
 * LD_PRELOAD and the environment, as torsocks does).
 *
 * TCP over IPv4 goes to a ustack instance that lives in the process; everything else — Unix
 * sockets, UDP, IPv6, files, pipes — goes to the kernel untouched.  The instance starts at the
 * first socket(AF_INET, SOCK_STREAM) on a TAP device named by the environment (USTACK_TAP,
 * USTACK_ADDR, USTACK_GW, USTACK_MTU, USTACK_MAC, USTACK_PCAP, USTACK_NAME, and USTACK_SYSCTL:
 * NAME=VALUE lines), with its run loop on a thread of its own and a control socket for
 * `ustack ss` and the other tools.
 *
 * Descriptors are real kernel descriptors: each ustack socket stands behind an eventfd of this
 * process (close-on-exec), so its number is one the kernel will not hand out twice, and a
 * program may keep it beside its other descriptors in poll, select and epoll.  Every call that
 * takes a descriptor is interposed; the ones that name a ustack socket go to ustack with the
 * C library's semantics and errno, the rest to the C library (found with dlsym(RTLD_NEXT)).
 *
 * Waiting on both kinds at once: the stack calls a hook whenever a socket's readiness may have
 * changed (ustack_set_sock_wake).  A waiter — a thread in poll/select, or an epoll instance
 * that holds ustack sockets — owns an eventfd that the kernel side of its wait includes; it
 * arms itself, checks ustack's sockets without blocking, then sleeps in the kernel; the hook
 * writes to the eventfd of every armed waiter, so a change after the check ends the sleep.
 * An epoll instance keeps its ustack sockets in a ustack epoll instance of its own, which
 * gives level, edge and one-shot semantics and the caller's epoll_data back.  The device's
 * descriptor is in it too: a thread in epoll_wait takes the device's received frames itself
 * and sleeps holding them from the run loop (ustack_tap_poll), so that on a busy server a
 * frame wakes the program's thread alone, as Linux's busy polling with IRQ suspension keeps
 * the interrupt off while the application keeps polling (not with USTACK_BUSY_POLL, whose
 * run loop takes every frame).  poll and select do the same while they wait for room to
 * write in a ustack socket, and so do blocking calls (one thread at a time); waiting to read
 * in poll or select, a thread leaves the frames to the run loop (and ends its hold before it
 * sleeps).
 *
 * Blocking is the library's: ustack's side of every socket is non-blocking, the program's
 * O_NONBLOCK is kept here (per open file description, shared by dup), and a call that would
 * block waits in the kernel — in poll, with the thread's waiter eventfd, which the stack's
 * hook writes, and the device — so that a signal interrupts it as it would the kernel's own:
 * EINTR without SA_RESTART, restarted with it, a partial transfer returning its count
 * (block_wait, which keeps the process's signal dispositions to tell the two apart).
 *
 * After fork() the child cannot use the parent's ustack sockets (it gets EBADF and a message
 * once; closing them is fine) nor open new ones (the parent holds the TAP device); vfork() is
 * _Fork() here (my_pid).  What is not (yet) as the kernel: stdio streams opened on a ustack
 * descriptor (fdopen) do not reach it, since the C library writes to them from inside;
 * descriptors closed behind the library's back (close_range) are not noticed; a signal
 * handler that siglongjmps out of a ustack call (the kernel runs handlers only once its own
 * locks are let go; here one may run while the thread holds the stack's lock, and jumping out
 * leaves it held) deadlocks the stack — handlers that set a flag are fine.  At exit() the
 * library closes the program's ustack sockets and keeps the stack running until their data and
 * FINs are acknowledged (ustack_tap_drain), as a kernel would; a process killed by a signal
 * loses that.
 */
#include <ustack/diag.h>
#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>
#include <ustack/sysctl.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define FDMAP_MAX (1 << 20) /* descriptors the library can stand behind */
#define WAKE_MAGIC 0x7573746b77616b65ull /* "ustkwake": an epoll instance's own eventfd */
#define DEV_MAGIC 0x7573746b64657669ull  /* "ustkdevi": the device, in an epoll instance */

/* ---- the C library's functions -------------------------------------------------------- */

static struct {
	int (*socket)(int, int, int);
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*shutdown)(int, int);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	sighandler_t (*signal)(int, sighandler_t);
	sighandler_t (*bsd_signal)(int, sighandler_t);
	sighandler_t (*sysv_signal)(int, sighandler_t);
	sighandler_t (*__sysv_signal)(int, sighandler_t);
	sighandler_t (*ssignal)(int, sighandler_t);
	sighandler_t (*sigset)(int, sighandler_t);
	int (*siginterrupt)(int, int);
} real;

static void resolve(void)
{
#define R(name) real.name = dlsym(RTLD_NEXT, #name)
	R(socket), R(close), R(read), R(write), R(poll), R(ppoll), R(epoll_ctl), R(epoll_wait);
	R(epoll_pwait), R(fcntl), R(fcntl64), R(ioctl), R(dup), R(dup2), R(dup3), R(bind), R(listen), R(accept);
	R(accept4), R(connect), R(shutdown), R(getsockopt), R(setsockopt), R(getsockname);
	R(getpeername), R(readv), R(writev), R(send), R(recv), R(sendto), R(recvfrom), R(sendmsg);
	R(recvmsg), R(sendfile), R(select), R(pselect), R(sigaction), R(signal), R(bsd_signal);
	R(sysv_signal), R(__sysv_signal), R(ssignal), R(sigset), R(siginterrupt);
#undef R
}

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
#define REAL(name) (pthread_once(&resolve_once, resolve), real.name)

/* ---- the instance ---------------------------------------------------------------------- */

static struct {
	struct ustack *st;
	struct ustack_tap *tap; /* one of the two: USTACK_TAP */
	struct ustack_xdp *xdp; /* ... or USTACK_XDP */
	struct ustack_ctl *ctl;
	pthread_t loop;
	int err;         /* why it could not start (errno), once tried */
	bool inert;      /* no USTACK_TAP: every socket is the kernel's */
	bool busy;       /* USTACK_BUSY_POLL: the run loop takes every frame, no thread holds them */
	pid_t pid;       /* the process that owns it: a forked child does not */
} us;

static pthread_once_t start_once = PTHREAD_ONCE_INIT;

/*
 * This process's ID without a system call per socket call: getpid() on every intercepted
 * call was seven of the twenty system calls a connection cost bench_connrate's listener.
 * fork() keeps it true through fork handlers registered when the library is loaded, so
 * before most others: a child's handlers run in the order they were registered, the
 * parent's prepare handlers in the reverse, and from prepare to child (or parent) my_pid()
 * asks the kernel, so that another library's child handler that runs before ours (closing
 * inherited descriptors, say) is told it is the child.  vfork() would not keep it true: its
 * child shares the parent's memory, this variable included, and would take the parent's
 * sockets for its own (a close() there would close the parent's connection).  So the
 * library's vfork() is _Fork(): a child of its own memory which, as vfork's, runs no fork
 * handlers and may call only async-signal-safe functions; what a program cannot have from it
 * is vfork's sharing (a child's writes seen by the parent) and the parent's suspension until
 * the child's exec.  posix_spawn's child runs only the C library's own calls, never these.
 * What it cannot see: a child made by the raw clone or fork system call, or by _Fork()
 * called directly.
 */
static _Atomic pid_t self_pid;
static atomic_bool forking;
static void atfork_prepare(void) { atomic_store(&forking, true); }
static void atfork_parent(void) { atomic_store(&forking, false); }
static void atfork_child(void)
{
	atomic_store(&self_pid, getpid());
	atomic_store(&forking, false);
}

static pid_t my_pid(void)
{
	if (atomic_load_explicit(&forking, memory_order_relaxed))
		return getpid();
	return atomic_load_explicit(&self_pid, memory_order_relaxed);
}

static void sig_scan(void);

__attribute__((constructor)) static void preload_init(void)
{
	atomic_store(&self_pid, getpid());
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	sig_scan();
}

static pid_t fork_for_vfork(void)
{
	pid_t pid = _Fork();
	if (pid == 0)
		atomic_store(&self_pid, getpid());
	return pid;
}

pid_t vfork(void)
{
	return fork_for_vfork();
}

pid_t __vfork(void); /* the C library exports it too */
pid_t __vfork(void)
{
	return fork_for_vfork();
}

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(line, sizeof(line), "ustack preload[%d]: ", (int)getpid());
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	if (len < sizeof(line) - 1)
		line[len++] = '\n';
	ssize_t w = REAL(write)(STDERR_FILENO, line, len);
	(void)w;
}

/* This thread sleeps holding the device (USTACK_POLL_SLEEP not yet followed by _AWAKE): set
 * still on its next epoll_wait, poll or select, the thread left its wait without returning
 * (siglongjmp from a signal handler), and says it is awake then. */
static __thread bool dev_asleep;

/* One thread at a time sleeps holding the device in a blocking call or in poll/select: a
 * program with a thread per connection, each blocked in recv(), would otherwise have every
 * frame wake all of them (epoll instances have the device with EPOLLEXCLUSIVE instead).  The
 * one that holds takes the bursts and wakes the others through their eventfds, as the run
 * loop would.  (A thread that leaves its wait by siglongjmp keeps the slot until its next
 * such wait, or its exit: dev_hold_dtor.) */
static atomic_int blk_holder;
static __thread bool blk_holds;

static bool blk_hold_take(void)
{
	int free_slot = 0;
	if (!blk_holds && atomic_compare_exchange_strong(&blk_holder, &free_slot, 1))
		blk_holds = true;
	return blk_holds;
}

static void blk_hold_put(void)
{
	if (blk_holds) {
		blk_holds = false;
		atomic_store(&blk_holder, 0);
	}
}

/* A thread that ends asleep holding the device — cancelled in its wait (epoll_wait, poll and
 * select are cancellation points), or pthread_exit from a signal handler — must not hold it
 * for ever: a key's destructor, armed as it falls asleep, says it is awake.  Not a cleanup
 * handler around the wait: a siglongjmp out of the wait would leave the handler registered
 * on a dead stack frame, for the next cancellation to run. */
static pthread_key_t dev_hold_key;
static pthread_once_t dev_hold_once = PTHREAD_ONCE_INIT;
static int dev_poll(unsigned flags);
static void dev_hold_dtor(void *arg)
{
	(void)arg;
	if (dev_asleep)
		dev_poll(USTACK_POLL_AWAKE | USTACK_POLL_RELEASE);
	blk_hold_put();
}
static void dev_hold_init(void) { pthread_key_create(&dev_hold_key, dev_hold_dtor); }

/* The device's received frames taken by the calling thread (ustack_tap_poll, with its
 * USTACK_POLL_* flags): 1 if it ran a burst */
/* This thread has polled the device since it last let it go (dev_release) */
static __thread bool dev_polled;

/* The device's descriptor, for a thread's wait */
static int dev_fd(void)
{
	return us.xdp ? ustack_xdp_fd(us.xdp) : ustack_tap_fd(us.tap);
}

static int dev_poll(unsigned flags)
{
	int err = errno; /* a wait's EINTR must reach the program */
	if (!dev_asleep)
		flags &= ~USTACK_POLL_AWAKE; /* one AWAKE a SLEEP: the count is shared */
	if (flags & USTACK_POLL_SLEEP) {
		if (!dev_asleep) {
			pthread_once(&dev_hold_once, dev_hold_init);
			pthread_setspecific(dev_hold_key, &dev_asleep); /* non-NULL: the destructor runs */
		}
		dev_asleep = true;
	} else if (flags & USTACK_POLL_AWAKE)
		dev_asleep = false;
	dev_polled = !(flags & USTACK_POLL_RELEASE);
	int rc = us.xdp ? ustack_xdp_poll(us.xdp, flags) : ustack_tap_poll(us.tap, flags);
	errno = err;
	return rc;
}

/* About to sleep where the device is not (poll or select for reading, a blocking call): this
 * thread's epoll_wait, poll or select would otherwise hold the device's frames from the run
 * loop for the rest of a millisecond — or, if it left its wait by a signal handler's
 * siglongjmp, until the loop found the frames stalled. */
static void dev_release(void)
{
	if (!us.busy && (dev_polled || dev_asleep))
		dev_poll(USTACK_POLL_RELEASE | USTACK_POLL_AWAKE);
}

static void *run_loop(void *arg)
{
	(void)arg;
	if (us.xdp)
		ustack_xdp_run(us.xdp);
	else
		ustack_tap_run(us.tap);
	return NULL;
}

/* USTACK_SYSCTL: NAME=VALUE per line; 0, or -1 having said why */
static int apply_sysctls(const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	if (!copy)
		return -1;
	int rc = 0;
	for (char *line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq) {
			say("USTACK_SYSCTL: '%s' is not NAME=VALUE", line);
			rc = -1;
			break;
		}
		*eq = 0;
		if (ustack_sysctl_set(us.st, line, eq + 1) < 0) {
			say("USTACK_SYSCTL: %s=%s: %s", line, eq + 1, strerror(errno));
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

/* The environment `ustack run` sets, read and checked once. */
static int start_stack(void)
{
	const char *tap = getenv("USTACK_TAP"), *addr = getenv("USTACK_ADDR"), *xdp = getenv("USTACK_XDP");
	struct ustack_xdp_config xc = { 0 };
	char xif[IF_NAMESIZE];
	if (xdp && *xdp) {
		/* IFNAME[@QUEUE], USTACK_XDP_MODE native|skb|auto, USTACK_BUSY_POLL=1 (`ustack run --xdp`) */
		const char *at = strrchr(xdp, '@'), *mode = getenv("USTACK_XDP_MODE"), *bp = getenv("USTACK_BUSY_POLL");
		size_t n = at ? (size_t)(at - xdp) : strlen(xdp);
		char *end = NULL;
		unsigned long q = at ? strtoul(at + 1, &end, 10) : 0;
		if (!n || n >= sizeof(xif) || (at && (!at[1] || *end || q > 1023))) {
			say("USTACK_XDP: '%s' is not IFNAME[@QUEUE]", xdp);
			return EINVAL;
		}
		snprintf(xif, sizeof(xif), "%.*s", (int)n, xdp);
		xc.ifname = tap = xif;
		xc.queue = (unsigned)q;
		if (mode && !strcmp(mode, "skb"))
			xc.flags |= USTACK_XDP_SKB;
		else if (mode && !strcmp(mode, "native"))
			xc.flags |= USTACK_XDP_NATIVE;
		else if (mode && *mode && strcmp(mode, "auto")) {
			say("USTACK_XDP_MODE: '%s' is not native, skb or auto", mode);
			return EINVAL;
		}
		if (bp && !strcmp(bp, "1")) {
			xc.flags |= USTACK_XDP_BUSY_POLL;
			us.busy = true;
		}
	}
	if (!tap || !*tap) {
		us.inert = true;
		return 0;
	}
	char a[64];
	struct in_addr in, gw;
	unsigned prefix = 24;
	if (!addr || strlen(addr) >= sizeof(a)) {
		say("USTACK_ADDR (A.B.C.D/N) is not set");
		return EINVAL;
	}
	snprintf(a, sizeof(a), "%s", addr);
	char *slash = strchr(a, '/');
	if (slash) {
		*slash = 0;
		char *end;
		unsigned long p = strtoul(slash + 1, &end, 10);
		if (*end || p > 32) {
			say("USTACK_ADDR: bad prefix length in '%s'", addr);
			return EINVAL;
		}
		prefix = (unsigned)p;
	}
	if (inet_pton(AF_INET, a, &in) != 1) {
		say("USTACK_ADDR: '%s' is not an IPv4 address", addr);
		return EINVAL;
	}
	unsigned mtu = 0; /* unset: 1500, or the AF_XDP interface's own */
	const char *m = getenv("USTACK_MTU");
	if (m && *m) {
		char *end;
		unsigned long v = strtoul(m, &end, 10);
		if (*end || v < 68 || v > USTACK_MTU_MAX) {
			say("USTACK_MTU: '%s' is not 68-%u", m, USTACK_MTU_MAX);
			return EINVAL;
		}
		mtu = (unsigned)v;
	}
	uint8_t mac[6];
	bool have_mac = false;
	const char *macs = getenv("USTACK_MAC");
	if (macs && *macs) {
		unsigned b[6];
		char extra;
		if (sscanf(macs, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6) {
			say("USTACK_MAC: '%s' is not xx:xx:xx:xx:xx:xx", macs);
			return EINVAL;
		}
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)b[i];
		have_mac = true;
	} else if (!xc.ifname) {
		if (sodium_init() < 0)
			return EIO;
		randombytes_buf(mac, sizeof(mac));
		mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
	}
	struct ustack_config cfg = { .clock = ustack_clock_monotonic(), .name = "ustack" };
	us.st = ustack_create(&cfg);
	if (!us.st)
		return errno;
	const char *sc = getenv("USTACK_SYSCTL");
	if (sc && *sc && apply_sysctls(sc) < 0)
		return EINVAL;
	int ifindex;
	if (xc.ifname) {
		us.xdp = ustack_xdp_open(&xc);
		if (!us.xdp || (!have_mac && ustack_xdp_mac(us.xdp, mac) < 0)) { /* the device's own MAC */
			int err = errno;
			say("AF_XDP on %s queue %u: %s", xc.ifname, xc.queue, strerror(err));
			return err;
		}
		if (!mtu) { /* the device's, as much of it as the socket carries */
			int dm = ustack_xdp_mtu(us.xdp);
			mtu = dm < 0 ? 1500 : (unsigned)dm;
		}
		ifindex = ustack_xdp_attach(us.xdp, us.st, mac, mtu);
	} else {
		/* USTACK_TAP_QUEUES: the device's queues (`ustack run --queues`), a thread each */
		const char *qs = getenv("USTACK_TAP_QUEUES");
		unsigned long nq = 1;
		if (qs && *qs) {
			char *end;
			nq = strtoul(qs, &end, 10);
			if (*end || nq < 1 || nq > USTACK_TAP_QUEUES_MAX) {
				say("USTACK_TAP_QUEUES: '%s' is not 1-%u", qs, USTACK_TAP_QUEUES_MAX);
				return EINVAL;
			}
		}
		us.tap = ustack_tap_open_queues(tap, (unsigned)nq);
		if (!us.tap) {
			int err = errno;
			say("TAP device %s (%lu queue%s): %s%s", tap, nq, nq == 1 ? "" : "s", strerror(err),
			    err == EINVAL && nq > 1 ? " (a device made without multi_queue has one queue)" : "");
			return err;
		}
		ifindex = ustack_tap_attach(us.tap, us.st, mac, mtu ? mtu : 1500);
	}
	if (ifindex < 0 || ustack_addr_add(us.st, ifindex, in, prefix) < 0) {
		int err = errno;
		say("configuring %s: %s", tap, strerror(err));
		return err;
	}
	const char *g = getenv("USTACK_GW");
	if (g && *g) {
		struct ustack_route r = { .ifindex = ifindex };
		if (inet_pton(AF_INET, g, &gw) != 1) {
			say("USTACK_GW: '%s' is not an IPv4 address", g);
			return EINVAL;
		}
		r.gateway = gw;
		if (ustack_route_add(us.st, &r) < 0) {
			int err = errno;
			say("default route via %s: %s", g, strerror(err));
			return err;
		}
	}
	const char *pcap = getenv("USTACK_PCAP");
	if (pcap && *pcap && ustack_pcap_start(us.st, ifindex, pcap) < 0) {
		int err = errno;
		say("USTACK_PCAP: %s: %s", pcap, strerror(err));
		return err;
	}
	/* The library's threads (the control socket's, the run loop) take no signal: they are
	 * created with every signal blocked, which they inherit.  A signal sent to the process
	 * then runs the program's handler on one of the program's own threads, as without the
	 * library — where it interrupts the call that thread is blocked in (EINTR), and where a
	 * handler that siglongjmps lands on the stack it was set up on. */
	sigset_t all, was;
	sigfillset(&all);
	/* (a fault in them — SIGSEGV, SIGBUS, SIGFPE, SIGILL — is the thread's own: left open, so
	 * that the program's crash handler still runs) */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	/* the control socket: `ustack ss --name NAME` sees the program's sockets */
	const char *name = getenv("USTACK_NAME");
	char nm[96];
	snprintf(nm, sizeof(nm), "%s", name && *name ? name : tap);
	us.ctl = ustack_ctl_start(us.st, nm);
	if (!us.ctl && !(name && *name)) {
		snprintf(nm, sizeof(nm), "%s-%d", tap, (int)getpid());
		us.ctl = ustack_ctl_start(us.st, nm);
	}
	int ctl_err = errno;
	int rc = pthread_create(&us.loop, NULL, run_loop, NULL);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (!us.ctl)
		say("no control socket '%s': %s (ustack ss cannot see this program)", nm, strerror(ctl_err));
	if (rc != 0)
		return EAGAIN;
	us.pid = my_pid(); /* running: the owner, which preload_exit drains (0 until then) */
	return 0;
}

static void wake_waiters(void *arg);

static void start_once_fn(void)
{
	us.err = start_stack();
	if (us.err)
		say("ustack could not start (%s); TCP/IPv4 sockets fail with that error", strerror(us.err));
	else if (!us.inert)
		ustack_set_sock_wake(us.st, wake_waiters, NULL);
}

/* The instance for a new TCP/IPv4 socket: 1 (use ustack), 0 (inert: the kernel's), or -1
 * with errno. */
static int stack_for_new_socket(void)
{
	if (us.pid && us.pid != my_pid()) {
		say("a forked child cannot open ustack sockets: the parent holds the TAP device");
		errno = EPERM;
		return -1;
	}
	pthread_once(&start_once, start_once_fn);
	if (us.err) {
		errno = us.err;
		return -1;
	}
	return us.inert ? 0 : 1;
}

/* ---- descriptors: kernel stand-ins for ustack sockets ----------------------------------- */

struct ufile {
	int ufd;             /* the ustack descriptor (non-blocking in ustack, always) */
	atomic_int refs;     /* kernel descriptors that stand for it (dup), and calls in progress */
	atomic_bool nonblock; /* the program's O_NONBLOCK */
	atomic_uint rcvtimeo, sndtimeo; /* SO_RCVTIMEO/SO_SNDTIMEO in ms: UINT_MAX none, 0 no wait */
};

static _Atomic(struct ufile *) *fdmap;
static int fdmap_size;
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;

static void fdmap_init(void)
{
	struct rlimit rl;
	rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 65536;
	if (n == RLIM_INFINITY || n > FDMAP_MAX)
		n = FDMAP_MAX;
	if (n < 1024)
		n = 1024;
	fdmap = calloc((size_t)n, sizeof(*fdmap));
	fdmap_size = fdmap ? (int)n : 0;
}
static pthread_once_t fdmap_once = PTHREAD_ONCE_INIT;

/* The ustack socket behind kernel descriptor fd, or NULL. */
static struct ufile *ours(int fd)
{
	if (fd < 0 || !fdmap || fd >= fdmap_size)
		return NULL;
	return atomic_load_explicit(&fdmap[fd], memory_order_acquire);
}

/* A ustack descriptor used from a forked child: EBADF, said once. */
static bool foreign(int fd)
{
	if (us.pid == my_pid())
		return false;
	static atomic_bool said;
	if (!atomic_exchange(&said, true))
		say("descriptor %d is a ustack socket of process %d: a forked child cannot use it (EBADF)", fd,
		    (int)us.pid);
	errno = EBADF;
	return true;
}

static atomic_bool exiting; /* preload_exit has begun: closes do not linger */

/* A forked child: the stack, its locks and the waiters belong to the parent. */
static bool in_child(void)
{
	return us.pid && us.pid != my_pid();
}

/*
 * The socket behind fd for the length of one call: a reference, so that another thread's
 * close() of fd cannot free it (or let ustack reuse its descriptor) under the call — as a
 * kernel file stays open until the calls on it return.  put() drops it, and the last
 * reference closes the ustack socket.
 */
static struct ufile *get(int fd)
{
	pthread_mutex_lock(&map_mu);
	struct ufile *f = ours(fd);
	if (f)
		atomic_fetch_add(&f->refs, 1);
	pthread_mutex_unlock(&map_mu);
	return f;
}

/* The last reference closes the socket: lingering with SO_LINGER as ustack's close does (as
 * Linux's, whatever O_NONBLOCK says) — except when the process is exiting, where Linux's
 * inet_release passes no linger time (PF_EXITING); SO_LINGER {1, 0} still resets then. */
static void put(struct ufile *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (!in_child()) {
		struct linger lg;
		socklen_t len = sizeof(lg);
		if (atomic_load(&exiting) && ustack_getsockopt(us.st, f->ufd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 &&
		    lg.l_onoff && lg.l_linger > 0) {
			lg = (struct linger){ 0, 0 };
			ustack_setsockopt(us.st, f->ufd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		ustack_close(us.st, f->ufd);
	}
	free(f);
}

static void put_ufile(struct ufile **f)
{
	if (*f)
		put(*f);
}

/* The socket call's head: fd is not ours → the C library's call; a forked child's → EBADF;
 * else uf holds a reference until the function returns. */
#define OURS_OR(fd, call)                                                                                   \
	struct ufile *uf __attribute__((cleanup(put_ufile))) = NULL;                                        \
	if (!ours(fd))                                                                                      \
		return call;                                                                                \
	if (foreign(fd))                                                                                    \
		return -1;                                                                                  \
	if (!(uf = get(fd)))                                                                                \
		return call

/* A kernel descriptor to stand for ustack descriptor ufd (made non-blocking in ustack; the
 * program sees nonblock); -1 with errno (ufd closed). */
static int stand_in(int ufd, bool nonblock)
{
	pthread_once(&fdmap_once, fdmap_init);
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd >= 0 && fd >= fdmap_size) {
		REAL(close)(fd);
		fd = -1;
		errno = EMFILE;
	}
	struct ufile *f = fd >= 0 ? malloc(sizeof(*f)) : NULL;
	if (!f) {
		int err = fd >= 0 ? ENOMEM : errno;
		if (fd >= 0)
			REAL(close)(fd);
		ustack_close(us.st, ufd);
		errno = err;
		return -1;
	}
	f->ufd = ufd;
	atomic_init(&f->refs, 1);
	atomic_init(&f->nonblock, nonblock);
	atomic_init(&f->rcvtimeo, UINT_MAX);
	atomic_init(&f->sndtimeo, UINT_MAX);
	ustack_fcntl(us.st, ufd, F_SETFL, O_NONBLOCK);
	atomic_store_explicit(&fdmap[fd], f, memory_order_release);
	return fd;
}

/* Forgets kernel descriptor fd (if it still stands for f); the socket closes with its last
 * reference.  A forked child only forgets: the parent's locks may be held forever there. */
static void release(int fd, struct ufile *f)
{
	if (in_child()) {
		atomic_store(&fdmap[fd], NULL);
		return;
	}
	pthread_mutex_lock(&map_mu);
	bool was = atomic_load(&fdmap[fd]) == f;
	if (was)
		atomic_store(&fdmap[fd], NULL);
	pthread_mutex_unlock(&map_mu);
	if (was)
		put(f);
}

/* ---- waiters ------------------------------------------------------------------------------ */

/* A kernel epoll instance that holds ustack sockets: they live in a ustack epoll instance,
 * whose readiness reaches the kernel's wait through the waiter's eventfd (WAKE_MAGIC). */
struct uepoll {
	int uep;
	struct waiter *w;
	atomic_int refs; /* the epoll descriptor, and waits in progress */
};
static _Atomic(struct uepoll *) *epmap; /* by kernel descriptor */

struct waiter {
	int efd;
	atomic_int armers; /* threads armed on it: one per thread's own; any for an epoll's */
	bool shared;       /* an epoll instance's: several threads may wait on it at once */
	struct waiter *next;
};

static struct waiter *waiters;
static pthread_mutex_t waiters_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int armed_count;

/* The stack's hook, under its lock: end the sleep of every armed waiter. */
static void wake_waiters(void *arg)
{
	(void)arg;
	if (!atomic_load_explicit(&armed_count, memory_order_acquire))
		return;
	pthread_mutex_lock(&waiters_mu);
	for (struct waiter *w = waiters; w; w = w->next) {
		int n = atomic_exchange(&w->armers, 0);
		if (n > 0) {
			atomic_fetch_sub(&armed_count, n);
			uint64_t one = 1;
			ssize_t r = REAL(write)(w->efd, &one, sizeof(one));
			(void)r;
		}
	}
	pthread_mutex_unlock(&waiters_mu);
}

/* A thread's own waiter has a blocking eventfd (block_wait sleeps reading it); an epoll
 * instance's is non-blocking, since several threads may drain it. */
static struct waiter *waiter_new(bool shared)
{
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->shared = shared;
	w->efd = eventfd(0, EFD_CLOEXEC | (shared ? EFD_NONBLOCK : 0));
	if (w->efd < 0) {
		free(w);
		return NULL;
	}
	pthread_mutex_lock(&waiters_mu);
	w->next = waiters;
	waiters = w;
	pthread_mutex_unlock(&waiters_mu);
	return w;
}

static void waiter_free(struct waiter *w)
{
	pthread_mutex_lock(&waiters_mu);
	for (struct waiter **p = &waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	atomic_fetch_sub(&armed_count, atomic_exchange(&w->armers, 0));
	pthread_mutex_unlock(&waiters_mu);
	REAL(close)(w->efd);
	free(w);
}

/* Before checking ustack: the global count first, so that the hook's fast path never sees
 * an armed waiter uncounted. */
static void arm(struct waiter *w)
{
	atomic_fetch_add(&armed_count, 1);
	atomic_fetch_add(&w->armers, 1);
}

/* Takes back one arming if the hook has not taken it: true if it was still there. */
static bool unarm(struct waiter *w)
{
	int n = atomic_load(&w->armers);
	while (n > 0)
		if (atomic_compare_exchange_weak(&w->armers, &n, n - 1)) {
			atomic_fetch_sub(&armed_count, 1);
			return true;
		}
	return false;
}

/*
 * After the kernel's wait.  A thread's own waiter: exactly one write follows each arming the
 * hook takes, so if the arming is still ours nothing was written, else the hook's write is
 * there or on its way and is consumed (a blocking read), leaving the eventfd empty for the
 * next wait.  An epoll's shared waiter: its eventfd is drained without blocking — another
 * thread woken by the same write may have drained it already, and the next hook writes again
 * for whoever is still armed.  errno stays what the wait left (EINTR must reach the program).
 */
static void disarm(struct waiter *w)
{
	int err = errno;
	uint64_t v;
	ssize_t r;
	if (w->shared) {
		unarm(w);
		r = REAL(read)(w->efd, &v, sizeof(v));
	} else if (!unarm(w)) {
		do
			r = REAL(read)(w->efd, &v, sizeof(v));
		while (r < 0 && errno == EINTR);
	}
	(void)r;
	errno = err;
}

/* disarm after a poll that had the thread's own eventfd in it: readable, the eventfd is
 * drained whether or not the arming is still ours — a write left over from an arming the
 * hook took while the thread was elsewhere (a siglongjmp out of an earlier wait) would
 * otherwise end every later poll at once, nothing ever reading it.  The read cannot block:
 * only this thread reads its eventfd (a signal handler making a blocking ustack call between
 * the poll and here would break that, as it would break the call it interrupted). */
static void disarm_polled(struct waiter *w, bool readable)
{
	if (!readable || w->shared) {
		disarm(w);
		return;
	}
	int err = errno;
	unarm(w);
	uint64_t v;
	ssize_t r = REAL(read)(w->efd, &v, sizeof(v)); /* readable, and no other thread reads it */
	(void)r;
	errno = err;
}

static pthread_key_t thread_waiter_key;
static pthread_once_t thread_waiter_once = PTHREAD_ONCE_INIT;
static void thread_waiter_dtor(void *w) { waiter_free(w); }
static void thread_waiter_init(void) { pthread_key_create(&thread_waiter_key, thread_waiter_dtor); }

static struct waiter *thread_waiter(void)
{
	pthread_once(&thread_waiter_once, thread_waiter_init);
	struct waiter *w = pthread_getspecific(thread_waiter_key);
	if (!w && (w = waiter_new(false)) != NULL)
		pthread_setspecific(thread_waiter_key, w);
	return w;
}

/*
 * Whether a signal's handler restarts a blocking call, as the kernel would: a wait in poll
 * cannot tell, since the kernel never restarts poll after a handler (signal(7)), so the
 * library keeps the process's dispositions in two masks — the signals caught with SA_RESTART
 * and those caught without — read from the kernel as the library loads, then again for each
 * signal the program changes through the C library (sigaction, signal and the rest are
 * interposed below).  While every caught signal has SA_RESTART (or none is caught), a poll
 * interrupted by a handler is one the kernel would have restarted; while none has, one it
 * would have ended with EINTR; with both kinds there is no knowing which ran, and a blocking
 * call waits in a read of its eventfd, which the kernel restarts or not itself.  Dispositions
 * changed behind the library's back (a raw rt_sigaction, glibc's own calls inside system())
 * are not seen; a handler reset by SA_RESETHAND leaves its bit, which can only make the masks
 * say "mixed" where one kind is left.  The C library's own signals (SIGCANCEL, SIGSETXID) are
 * not in the masks (glibc refuses to report them), and SIGSETXID, which glibc sends every
 * thread when one calls setuid(), interrupts a poll too: while the program's handlers all
 * lack SA_RESTART, a blocking call then returns EINTR where the kernel would have restarted
 * it (python, whose handlers lack it, retries the call itself).
 */
enum { SIG_RESTARTS, SIG_INTERRUPTS, SIG_MIXED };
static _Atomic uint64_t sig_restart, sig_norestart; /* bit sig - 1: caught, with/without SA_RESTART */
/* sig_note runs in signal handlers (a handler may call sigaction): no lock behind the atomics */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

/* The kernel's disposition of sig: 0 not caught, 1 caught with SA_RESTART, 2 without; -1 */
static int sig_kind(int sig)
{
	struct sigaction sa;
	if (REAL(sigaction)(sig, NULL, &sa) < 0)
		return -1;
	if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
		return 0;
	return sa.sa_flags & SA_RESTART ? 1 : 2;
}

/* The kernel's disposition of sig, into the masks.  Async-signal-safe: a handler may call
 * sigaction. */
static void sig_note(int sig)
{
	if (sig < 1 || sig > 64)
		return;
	uint64_t bit = 1ull << (sig - 1);
	/* the new kind's bit set before the old one's cleared, so that a signal this thread notes
	 * is never in neither mask (two threads noting the same signal at once may, for a moment);
	 * and again if another thread changed it meanwhile (bounded) */
	int k = sig_kind(sig);
	for (int tries = 0; k >= 0 && tries < 8; tries++) {
		if (k == 1)
			atomic_fetch_or(&sig_restart, bit);
		if (k == 2)
			atomic_fetch_or(&sig_norestart, bit);
		if (k != 1)
			atomic_fetch_and(&sig_restart, ~bit);
		if (k != 2)
			atomic_fetch_and(&sig_norestart, ~bit);
		int again = sig_kind(sig);
		if (again == k)
			break;
		k = again;
	}
}

/* At load (preload_init), before the program has threads or a system() of its own under way */
static void sig_scan(void)
{
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sig_note(sig);
}

static int sig_mode(void)
{
	uint64_t r = atomic_load(&sig_restart), n = atomic_load(&sig_norestart);
	return !n ? SIG_RESTARTS : !r ? SIG_INTERRUPTS : SIG_MIXED;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int rc = REAL(sigaction)(sig, act, old);
	if (rc == 0 && act)
		sig_note(sig);
	return rc;
}

/* signal() and its other names: glibc's own, then the disposition it left noted */
#define SIGNAL_WRAPPER(name)                                  \
	sighandler_t name(int sig, sighandler_t h);           \
	sighandler_t name(int sig, sighandler_t h)            \
	{                                                     \
		sighandler_t rc = REAL(name)(sig, h);         \
		sig_note(sig);                                \
		return rc;                                    \
	}
SIGNAL_WRAPPER(signal)
SIGNAL_WRAPPER(bsd_signal)    /* BSD's, as glibc's signal() */
SIGNAL_WRAPPER(sysv_signal)   /* System V's: SA_RESETHAND, no SA_RESTART */
SIGNAL_WRAPPER(__sysv_signal) /* signal() itself for a program built to strict ISO C or POSIX */
SIGNAL_WRAPPER(ssignal)       /* SVID's, glibc's signal() under another name */
SIGNAL_WRAPPER(sigset)        /* System V's, with SIG_HOLD */
#undef SIGNAL_WRAPPER

int siginterrupt(int sig, int flag)
{
	int rc = REAL(siginterrupt)(sig, flag);
	sig_note(sig);
	return rc;
}

/*
 * A blocking call's wait for ustack socket ufd to be ready for events (or in error): 0 once it
 * is; -1 with EINTR when a signal the kernel would not restart the call after came first, or
 * EAGAIN at deadline_ns (SO_RCVTIMEO/SO_SNDTIMEO; 0: none).  progress: the call has moved
 * data already, and returns its count if a handler runs, SA_RESTART or not, as Linux's
 * tcp_sendmsg and tcp_recvmsg do (only a call that moved nothing is restarted).
 *
 * The thread sleeps in poll with its eventfd, which the stack's hook writes.  With a deadline
 * a signal always ends the wait with EINTR, as Linux's sock_intr_errno does when the socket
 * has a timeout; without one, a handler's EINTR from poll is a restart or not as the signal
 * masks tell (sig_mode).  When they cannot tell, the thread sleeps in a blocking read of the
 * eventfd instead, which the kernel itself restarts after a handler with SA_RESTART, as it
 * restarts its own blocking socket calls (sk_wait_event's -ERESTARTSYS) — a partial transfer
 * then goes on rather than returning its count.
 *
 * Run to completion, as in epoll_wait: each round starts with a burst of the device's frames
 * taken by this thread, and the sleep has the device's descriptor in it, holding the frames
 * from the run loop (USTACK_POLL_SLEEP), so that the frame a blocked thread waits for wakes
 * it, not the run loop that would take it and then wake the thread (a blocking ping-pong over
 * AF_XDP: half as many round trips again, README).  One thread at a time (blk_holder); not
 * with USTACK_BUSY_POLL, nor when the masks cannot tell.
 */
static int timeout_ms(long long sec, long long usec);
static uint64_t now_ns(void);

static int block_wait(int ufd, short events, uint64_t deadline_ns, bool progress)
{
	struct waiter *w = thread_waiter();
	if (!w) {
		errno = ENOMEM;
		return -1;
	}
	unsigned dflags = dev_asleep ? USTACK_POLL_AWAKE : 0; /* still asleep: left a wait by siglongjmp */
	bool dev_ok = true;                                    /* the device not in error */
	for (;;) {
		/* whether a handler's EINTR from poll can be told restarted or not */
		bool known = deadline_ns || sig_mode() != SIG_MIXED;
		bool hold = known && dev_ok && !us.busy && blk_hold_take();
		if (hold)
			dev_poll(dflags); /* a burst: the frames that woke us, or that may make it ready */
		else if (dflags)
			dev_poll(USTACK_POLL_AWAKE | USTACK_POLL_RELEASE);
		if (!hold)
			blk_hold_put(); /* kept since a siglongjmp out of a wait: let another hold */
		dflags = 0;
		arm(w);
		struct pollfd p = { .fd = ufd, .events = events };
		if (ustack_poll(us.st, &p, 1, 0) != 0) {
			disarm(w);
			blk_hold_put();
			return 0; /* ready, or an error the call itself will report */
		}
		int ms = -1;
		if (deadline_ns) {
			uint64_t now = now_ns();
			ms = now >= deadline_ns ? 0 : timeout_ms(0, (long long)((deadline_ns - now + 999) / 1000));
			if (!ms) {
				disarm(w);
				blk_hold_put();
				errno = EAGAIN;
				return -1;
			}
		}
		if (!hold)
			dev_release();
		if (!known) {
			uint64_t v;
			if (REAL(read)(w->efd, &v, sizeof(v)) < 0) {
				disarm(w);
				return -1; /* EINTR (errno kept by disarm) */
			}
			unarm(w); /* a stale count read (an arming left by a siglongjmp): still ours */
			continue; /* the hook took the arming and wrote: look again */
		}
		struct pollfd e[2] = { { .fd = w->efd, .events = POLLIN }, { .fd = dev_fd(), .events = POLLIN } };
		if (hold)
			dev_poll(USTACK_POLL_SLEEP);
		int r = REAL(poll)(e, hold ? 2 : 1, ms);
		if (hold) {
			dflags = USTACK_POLL_AWAKE;
			blk_hold_put();
		}
		disarm_polled(w, r > 0 && e[0].revents); /* the hook's write, if it came, consumed */
		if (r > 0 && hold && e[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			dev_ok = false;
		if (r > 0 || (r < 0 && errno == EINTR && !deadline_ns && !progress && sig_mode() == SIG_RESTARTS))
			continue; /* woken, or a handler the kernel would have restarted the call after */
		if (r == 0)
			errno = EAGAIN;
		if (dflags)
			dev_poll(dflags); /* no longer asleep (errno kept) */
		return -1;
	}
}

/* When a call with timeout ms (UINT_MAX: none) started now must give up, for block_wait. */
static uint64_t deadline_of(unsigned ms)
{
	return ms == UINT_MAX ? 0 : now_ns() + (uint64_t)ms * 1000000u;
}

/* Milliseconds left of a poll timeout that started at start (ns), -1 for none. */
static int ms_left(int timeout, uint64_t start)
{
	if (timeout < 0)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t el = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec - start) / 1000000u;
	return el >= (uint64_t)timeout ? 0 : timeout - (int)el;
}

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* A timeout of sec and usec in ms, rounded up, at most INT_MAX (callers reject negatives). */
static int timeout_ms(long long sec, long long usec)
{
	if (sec > INT_MAX / 1000)
		return INT_MAX;
	long long ms = sec * 1000 + (usec + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ---- socket calls ------------------------------------------------------------------------ */

/* Linux raises SIGPIPE for a write to a connection that cannot send, unless MSG_NOSIGNAL. */
static ssize_t pipe_signal(ssize_t rc, int flags)
{
	if (rc < 0 && errno == EPIPE && !(flags & MSG_NOSIGNAL)) {
		int err = errno;
		raise(SIGPIPE);
		errno = err;
	}
	return rc;
}

int socket(int domain, int type, int protocol)
{
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (domain != AF_INET || base != SOCK_STREAM || (protocol != 0 && protocol != IPPROTO_TCP))
		return REAL(socket)(domain, type, protocol);
	int use = stack_for_new_socket();
	if (use <= 0)
		return use < 0 ? -1 : REAL(socket)(domain, type, protocol);
	int ufd = ustack_socket(us.st, domain, base | SOCK_NONBLOCK, protocol);
	return ufd < 0 ? -1 : stand_in(ufd, type & SOCK_NONBLOCK);
}

static void epoll_put(struct uepoll *e);

/* fd, an epoll instance that held ustack sockets, is closing (or being replaced by dup2) */
static void epoll_forget(int fd)
{
	if (!epmap || fd < 0 || fd >= fdmap_size || !atomic_load(&epmap[fd]))
		return;
	if (in_child()) {
		atomic_store(&epmap[fd], NULL);
		return;
	}
	pthread_mutex_lock(&map_mu);
	struct uepoll *e = atomic_exchange(&epmap[fd], NULL);
	pthread_mutex_unlock(&map_mu);
	if (e)
		epoll_put(e);
}

int close(int fd)
{
	struct ufile *f = ours(fd);
	if (f)
		release(fd, f);
	epoll_forget(fd);
	return REAL(close)(fd);
}

int bind(int fd, const struct sockaddr *a, socklen_t l)
{
	OURS_OR(fd, REAL(bind)(fd, a, l));
	return (ustack_bind(us.st, uf->ufd, a, l));
}

int listen(int fd, int backlog)
{
	OURS_OR(fd, REAL(listen)(fd, backlog));
	return (ustack_listen(us.st, uf->ufd, backlog));
}

static int accept_ours(struct ufile *uf, struct sockaddr *a, socklen_t *l, int flags)
{
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	unsigned timeo = atomic_load(&uf->rcvtimeo);
	uint64_t deadline = deadline_of(timeo);
	for (;;) {
		int ufd = ustack_accept4(us.st, uf->ufd, a, l, SOCK_NONBLOCK);
		if (ufd >= 0)
			return stand_in(ufd, flags & SOCK_NONBLOCK);
		if (errno != EAGAIN || atomic_load(&uf->nonblock) || !timeo || block_wait(uf->ufd, POLLIN, deadline, false) < 0)
			return -1;
	}
}

int accept4(int fd, struct sockaddr *a, socklen_t *l, int flags)
{
	OURS_OR(fd, REAL(accept4)(fd, a, l, flags));
	return accept_ours(uf, a, l, flags);
}

int accept(int fd, struct sockaddr *a, socklen_t *l)
{
	OURS_OR(fd, REAL(accept)(fd, a, l));
	return accept_ours(uf, a, l, 0);
}

/* A blocking connect waits for the handshake's end and reports how it ended; a
 * signal leaves it going on, and a second connect() then says EALREADY, as Linux's. */
int connect(int fd, const struct sockaddr *a, socklen_t l)
{
	OURS_OR(fd, REAL(connect)(fd, a, l));
	if (ustack_connect(us.st, uf->ufd, a, l) == 0)
		return 0;
	unsigned timeo = atomic_load(&uf->sndtimeo);
	if (errno != EINPROGRESS || atomic_load(&uf->nonblock) || !timeo)
		return -1;
	if (block_wait(uf->ufd, POLLOUT, deadline_of(timeo), false) < 0) {
		if (errno == EAGAIN) /* SO_SNDTIMEO ran out: the handshake goes on */
			errno = EINPROGRESS;
		return -1;
	}
	/* How it ended, from connect() itself as the kernel's waiting connect reports it: 0, or
	 * the error with the socket disconnected (__inet_stream_connect's sock_error), so that
	 * the next connect() starts afresh instead of answering ECONNABORTED. */
	return ustack_connect(us.st, uf->ufd, a, l);
}

int shutdown(int fd, int how)
{
	OURS_OR(fd, REAL(shutdown)(fd, how));
	return (ustack_shutdown(us.st, uf->ufd, how));
}

int getsockopt(int fd, int level, int name, void *v, socklen_t *l)
{
	OURS_OR(fd, REAL(getsockopt)(fd, level, name, v, l));
	return (ustack_getsockopt(us.st, uf->ufd, level, name, v, l));
}

int setsockopt(int fd, int level, int name, const void *v, socklen_t l)
{
	OURS_OR(fd, REAL(setsockopt)(fd, level, name, v, l));
	int rc = ustack_setsockopt(us.st, uf->ufd, level, name, v, l);
	if (rc == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO || name == 66 || name == 67)) {
		/* the library waits, so it keeps the timeout (ustack checked the value: a whole
		 * timeval, µs in range): negative "no wait", 0/0 for ever, else ms rounded up */
		struct { int64_t sec, usec; } tv;
		memcpy(&tv, v, sizeof(tv));
		unsigned ms = tv.sec < 0 ? 0 : !tv.sec && !tv.usec ? UINT_MAX : (unsigned)timeout_ms(tv.sec, tv.usec);
		atomic_store(name == SO_RCVTIMEO || name == 66 ? &uf->rcvtimeo : &uf->sndtimeo, ms);
	}
	return rc;
}

int getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
	OURS_OR(fd, REAL(getsockname)(fd, a, l));
	return (ustack_getsockname(us.st, uf->ufd, a, l));
}

int getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
	OURS_OR(fd, REAL(getpeername)(fd, a, l));
	return (ustack_getpeername(us.st, uf->ufd, a, l));
}

/* Whether a call may wait: not on O_NONBLOCK, MSG_DONTWAIT, or a timeout of 0 */
static bool blocking(struct ufile *uf, int flags, unsigned timeo)
{
	return !atomic_load(&uf->nonblock) && !(flags & MSG_DONTWAIT) && timeo;
}

/* recv on the program's terms: a blocking one waits for data (MSG_WAITALL: for all of it,
 * or the end, an error or a signal — which then returns what came). */
/* receive flags that Linux's tcp_recvmsg ignores (or that only touch the control data) */
#define RECV_IGNORED (MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)

static ssize_t recv_ours(struct ufile *uf, void *b, size_t n, int flags)
{
	flags &= ~RECV_IGNORED;
	unsigned timeo = atomic_load(&uf->rcvtimeo);
	uint64_t deadline = deadline_of(timeo);
	bool block = blocking(uf, flags, timeo), all = block && (flags & MSG_WAITALL) && !(flags & MSG_PEEK);
	size_t got = 0;
	for (;;) {
		ssize_t r = ustack_recv(us.st, uf->ufd, (uint8_t *)b + got, n - got, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			if (!all || got == n)
				return (ssize_t)got;
			continue;
		}
		if (r == 0 || (errno != EAGAIN || !block))
			return got ? (ssize_t)got : r;
		if (block_wait(uf->ufd, POLLIN, deadline, got > 0) < 0)
			return got ? (ssize_t)got : -1;
	}
}

/* send on the program's terms: a blocking one sends everything, waiting for room; a signal
 * returns what went, or EINTR if nothing did. */
static ssize_t send_ours(struct ufile *uf, const void *b, size_t n, int flags, const struct sockaddr *a, socklen_t al)
{
	unsigned timeo = atomic_load(&uf->sndtimeo);
	uint64_t deadline = deadline_of(timeo);
	bool block = blocking(uf, flags, timeo);
	size_t sent = 0;
	if ((flags & MSG_FASTOPEN) && block) {
		/* connect and send in one: the handshake's wait is ustack's own (not interruptible) */
		ustack_fcntl(us.st, uf->ufd, F_SETFL, 0);
		ssize_t r = ustack_sendto(us.st, uf->ufd, b, n, flags, a, al);
		int err = errno;
		ustack_fcntl(us.st, uf->ufd, F_SETFL, O_NONBLOCK);
		errno = err;
		return pipe_signal(r, flags);
	}
	for (;;) {
		ssize_t r = ustack_sendto(us.st, uf->ufd, (const uint8_t *)b + sent, n - sent, flags | MSG_DONTWAIT, a, al);
		if (r >= 0) {
			sent += (size_t)r;
			if (sent == n || !block)
				return (ssize_t)sent;
			continue;
		}
		if (errno != EAGAIN || !block)
			return sent ? (ssize_t)sent : pipe_signal(-1, flags);
		if (block_wait(uf->ufd, POLLOUT, deadline, sent > 0) < 0)
			return sent ? (ssize_t)sent : -1;
	}
}

/* recvmsg/readv: the first data that comes (no MSG_WAITALL across iovecs) */
static ssize_t recvmsg_ours(struct ufile *uf, struct msghdr *m, int flags)
{
	flags &= ~RECV_IGNORED;
	if (flags & MSG_ERRQUEUE) /* never waits, in Linux either */
		return ustack_recvmsg(us.st, uf->ufd, m, flags | MSG_DONTWAIT);
	unsigned timeo = atomic_load(&uf->rcvtimeo);
	uint64_t deadline = deadline_of(timeo);
	for (;;) {
		ssize_t r = ustack_recvmsg(us.st, uf->ufd, m, flags | MSG_DONTWAIT);
		if (r >= 0 || errno != EAGAIN || !blocking(uf, flags, timeo))
			return r;
		if (block_wait(uf->ufd, POLLIN, deadline, false) < 0)
			return -1;
	}
}

/* sendmsg/writev: as send_ours, over a copy of the iovecs advanced past what went */
static ssize_t sendmsg_ours(struct ufile *uf, const struct msghdr *m, int flags)
{
	if (!m || m->msg_iovlen > IOV_MAX || (m->msg_iovlen && !m->msg_iov))
		return ustack_sendmsg(us.st, uf->ufd, m && (!m->msg_iovlen || m->msg_iov) ? m : NULL,
				      flags | MSG_DONTWAIT); /* its errno (EFAULT, EMSGSIZE) */
	unsigned timeo = atomic_load(&uf->sndtimeo);
	uint64_t deadline = deadline_of(timeo);
	bool block = blocking(uf, flags, timeo);
	struct iovec iov[m->msg_iovlen ? m->msg_iovlen : 1];
	size_t total = 0;
	for (size_t i = 0; i < m->msg_iovlen; i++) {
		iov[i] = m->msg_iov[i];
		total += iov[i].iov_len;
	}
	struct msghdr mm = *m;
	mm.msg_iov = iov;
	size_t sent = 0;
	for (;;) {
		ssize_t r = ustack_sendmsg(us.st, uf->ufd, &mm, flags | MSG_DONTWAIT);
		if (r >= 0) {
			sent += (size_t)r;
			if (sent == total || !block)
				return (ssize_t)sent;
			for (size_t k = (size_t)r; k && mm.msg_iovlen;) { /* past what went */
				size_t t = k < mm.msg_iov[0].iov_len ? k : mm.msg_iov[0].iov_len;
				mm.msg_iov[0].iov_base = (uint8_t *)mm.msg_iov[0].iov_base + t;
				mm.msg_iov[0].iov_len -= t;
				k -= t;
				if (!mm.msg_iov[0].iov_len) {
					mm.msg_iov++;
					mm.msg_iovlen--;
				}
			}
			continue;
		}
		if (errno != EAGAIN || !block)
			return sent ? (ssize_t)sent : pipe_signal(-1, flags);
		if (block_wait(uf->ufd, POLLOUT, deadline, sent > 0) < 0)
			return sent ? (ssize_t)sent : -1;
	}
}

ssize_t read(int fd, void *b, size_t n)
{
	OURS_OR(fd, REAL(read)(fd, b, n));
	return recv_ours(uf, b, n, 0);
}

ssize_t write(int fd, const void *b, size_t n)
{
	OURS_OR(fd, REAL(write)(fd, b, n));
	return send_ours(uf, b, n, 0, NULL, 0);
}

ssize_t recv(int fd, void *b, size_t n, int flags)
{
	OURS_OR(fd, REAL(recv)(fd, b, n, flags));
	return recv_ours(uf, b, n, flags);
}

ssize_t send(int fd, const void *b, size_t n, int flags)
{
	OURS_OR(fd, REAL(send)(fd, b, n, flags));
	return send_ours(uf, b, n, flags, NULL, 0);
}

/* TCP's recvfrom leaves the address alone and says it is empty (tcp_recvmsg sets no name). */
ssize_t recvfrom(int fd, void *b, size_t n, int flags, struct sockaddr *a, socklen_t *l)
{
	OURS_OR(fd, REAL(recvfrom)(fd, b, n, flags, a, l));
	ssize_t rc = recv_ours(uf, b, n, flags);
	if (rc >= 0 && a && l)
		*l = 0;
	return rc;
}

ssize_t sendto(int fd, const void *b, size_t n, int flags, const struct sockaddr *a, socklen_t l)
{
	OURS_OR(fd, REAL(sendto)(fd, b, n, flags, a, l));
	return send_ours(uf, b, n, flags, a, l);
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	OURS_OR(fd, REAL(recvmsg)(fd, m, flags));
	if (m && m->msg_name)
		m->msg_namelen = 0;
	return recvmsg_ours(uf, m, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	OURS_OR(fd, REAL(sendmsg)(fd, m, flags));
	return sendmsg_ours(uf, m, flags);
}

/* sendmmsg/recvmmsg: message by message, as many as go; an error after the first is left for
 * the next call, as Linux's ___sys_sendmsg loop does */
int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	OURS_OR(fd, ((int (*)(int, struct mmsghdr *, unsigned int, int))dlsym(RTLD_NEXT, "sendmmsg"))(fd, v, n, flags));
	unsigned int i = 0;
	for (; i < n && i < UIO_MAXIOV; i++) {
		ssize_t r = sendmsg_ours(uf, &v[i].msg_hdr, flags);
		if (r < 0)
			return i ? (int)i : -1;
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *tmo)
{
	OURS_OR(fd, ((int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *))dlsym(RTLD_NEXT,
													   "recvmmsg"))(fd, v, n, flags, tmo));
	unsigned int i = 0;
	for (; i < n && i < UIO_MAXIOV; i++) {
		if (v[i].msg_hdr.msg_name)
			v[i].msg_hdr.msg_namelen = 0;
		/* after the first message, only what is there already (MSG_WAITFORONE's rule) */
		int f = flags & ~MSG_WAITFORONE;
		ssize_t r = recvmsg_ours(uf, &v[i].msg_hdr, i && (flags & MSG_WAITFORONE) ? f | MSG_DONTWAIT : f);
		if (r < 0)
			return i ? (int)i : -1;
		v[i].msg_len = (unsigned int)r;
		if (r == 0)
			return (int)i + 1;
	}
	return (int)i;
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	OURS_OR(fd, REAL(readv)(fd, iov, cnt));
	if (cnt < 0 || cnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	return recvmsg_ours(uf, &m, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	OURS_OR(fd, REAL(writev)(fd, iov, cnt));
	if (cnt < 0 || cnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
	return sendmsg_ours(uf, &m, 0);
}

/* The fortified C library's checked variants (_FORTIFY_SOURCE, as Debian builds programs). */
ssize_t __read_chk(int fd, void *b, size_t n, size_t buflen);
ssize_t __read_chk(int fd, void *b, size_t n, size_t buflen)
{
	if (n > buflen)
		abort(); /* __chk_fail's verdict */
	return read(fd, b, n);
}
ssize_t __recv_chk(int fd, void *b, size_t n, size_t buflen, int flags);
ssize_t __recv_chk(int fd, void *b, size_t n, size_t buflen, int flags)
{
	if (n > buflen)
		abort();
	return recv(fd, b, n, flags);
}
ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t buflen, int flags, struct sockaddr *a, socklen_t *l);
ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t buflen, int flags, struct sockaddr *a, socklen_t *l)
{
	if (n > buflen)
		abort();
	return recvfrom(fd, b, n, flags, a, l);
}

/* sendfile to a ustack socket: read the file, send what was read; the file's offset (or
 * *offset) moves by what was sent. */
static ssize_t sendfile_ours(struct ufile *uf, int in, off_t *offset, size_t count)
{
	enum { CHUNK = 65536 };
	uint8_t *buf = malloc(CHUNK); /* not static TLS: that would come out of every thread's stack */
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	size_t done = 0;
	ssize_t rc = 0;
	while (done < count) {
		size_t want = count - done < CHUNK ? count - done : CHUNK;
		ssize_t n = offset ? pread(in, buf, want, *offset) : REAL(read)(in, buf, want);
		if (n <= 0) {
			if (n < 0 && !done)
				rc = -1;
			break;
		}
		ssize_t w = send_ours(uf, buf, (size_t)n, 0, NULL, 0);
		if (w < 0) {
			int err = errno;
			if (!offset)
				lseek(in, -n, SEEK_CUR); /* what was read and not sent stays in the file */
			errno = err;
			if (!done)
				rc = -1;
			break;
		}
		if (offset)
			*offset += w;
		else if (w < n)
			lseek(in, w - n, SEEK_CUR); /* a signal cut the send short */
		done += (size_t)w;
		if (w < n)
			break;
	}
	int err = errno;
	free(buf);
	errno = err;
	return rc < 0 ? -1 : (ssize_t)done;
}

ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
	OURS_OR(out, REAL(sendfile)(out, in, offset, count));
	return sendfile_ours(uf, in, offset, count);
}
ssize_t sendfile64(int out, int in, off_t *offset, size_t count)
{
	return sendfile(out, in, offset, count);
}

/* fcntl and fcntl64 (what programs built with _FILE_OFFSET_BITS=64 call) */
static int fcntl_any(int (*next)(int, int, ...), int fd, int cmd, long arg)
{
	if (cmd != F_GETFL && cmd != F_SETFL && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
		return next(fd, cmd, arg); /* the descriptor's own (FD_CLOEXEC), owner, locks ... */
	OURS_OR(fd, next(fd, cmd, arg));
	switch (cmd) {
	case F_GETFL: /* a socket's file: O_RDWR, and the program's O_NONBLOCK */
		return O_RDWR | (atomic_load(&uf->nonblock) ? O_NONBLOCK : 0);
	case F_SETFL:
		atomic_store(&uf->nonblock, (arg & O_NONBLOCK) != 0);
		return 0;
	case F_DUPFD:
	case F_DUPFD_CLOEXEC: {
		int nfd = next(fd, cmd, arg);
		if (nfd >= 0) {
			if (nfd >= fdmap_size) {
				REAL(close)(nfd);
				errno = EMFILE;
				return -1;
			}
			atomic_fetch_add(&uf->refs, 1);
			atomic_store(&fdmap[nfd], uf);
		}
		return nfd;
	}
	default:
		return next(fd, cmd, arg);
	}
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long); /* every command's argument fits (an int or a pointer) */
	va_end(ap);
	return fcntl_any(REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_any(REAL(fcntl64) ? REAL(fcntl64) : REAL(fcntl), fd, cmd, arg);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *argp = va_arg(ap, void *);
	va_end(ap);
	if (req == FIOCLEX || req == FIONCLEX || req == FIOASYNC)
		return REAL(ioctl)(fd, req, argp); /* the descriptor's */
	OURS_OR(fd, REAL(ioctl)(fd, req, argp));
	if (req == FIONBIO) {
		if (!argp) {
			errno = EFAULT;
			return -1;
		}
		atomic_store(&uf->nonblock, *(int *)argp != 0);
		return 0;
	}
	return ustack_ioctl(us.st, uf->ufd, req, (int *)argp);
}

/* dup and friends: descriptor rc (the kernel's new one) now stands for uf's socket, or (uf
 * NULL) for whatever the kernel's call made it; what stood there before is let go. */
static int dup_onto(int oldfd, struct ufile *uf, int rc)
{
	if (rc < 0 || rc == oldfd)
		return rc;
	if (rc >= fdmap_size) {
		if (uf) {
			REAL(close)(rc);
			errno = EMFILE;
			return -1;
		}
		return rc;
	}
	struct ufile *prev = ours(rc);
	if (prev == uf)
		return rc; /* already stands for it (dup2 onto a dup of the same socket) */
	if (prev)
		release(rc, prev);
	if (uf) {
		atomic_fetch_add(&uf->refs, 1);
		atomic_store(&fdmap[rc], uf);
	}
	return rc;
}

int dup(int fd)
{
	struct ufile *uf = ours(fd) ? get(fd) : NULL;
	int rc = dup_onto(fd, uf, REAL(dup)(fd));
	if (uf)
		put(uf);
	return rc;
}

int dup2(int oldfd, int newfd)
{
	struct ufile *uf = ours(oldfd) ? get(oldfd) : NULL;
	int rc = REAL(dup2)(oldfd, newfd);
	if (rc >= 0 && oldfd != newfd)
		epoll_forget(newfd); /* the kernel closed the instance that was there */
	if (uf || ours(newfd))
		rc = dup_onto(oldfd, uf, rc);
	if (uf)
		put(uf);
	return rc;
}

int dup3(int oldfd, int newfd, int flags)
{
	struct ufile *uf = ours(oldfd) ? get(oldfd) : NULL;
	int rc = REAL(dup3)(oldfd, newfd, flags);
	if (rc >= 0)
		epoll_forget(newfd);
	if (uf || ours(newfd))
		rc = dup_onto(oldfd, uf, rc);
	if (uf)
		put(uf);
	return rc;
}

/* ---- poll and select ---------------------------------------------------------------------- */

/* Entries poll_mixed and select_mixed keep on the stack (a few KB): a program's poll or select
 * of up to this many descriptors allocates nothing.  Longer arrays take one allocation. */
#define POLL_STACK_FDS 64

/*
 * poll over both kinds: ustack's sockets are checked in ustack, the kernel's descriptors in
 * the kernel, with the thread's waiter eventfd beside them so that a change in ustack ends
 * the kernel's sleep.  Returns what poll(2) would; revents of every entry set.
 *
 * Run to completion, as epoll_wait_mixed, while a ustack socket is polled for POLLOUT: each
 * round begins with a burst of the device's frames taken by this thread, and the sleep has
 * the device in it, holding its frames from the run loop (src/link/loop.c has the essay) —
 * Linux's busy polling serves poll and select too (net.core.busy_poll, sk_busy_loop from
 * sock_poll).  Without it a program waiting in select for room to write, iperf3's sender, had
 * every burst of ACKs wake the run loop, which woke the program, the two trading the stack's
 * lock.  A reader's frames are left to the run loop: its copying of each segment into the
 * socket runs beside the program's reads (bulk receiving lost a fifth to a third when this
 * thread took them).  One thread at a time holds, here and in blocking calls (blk_holder):
 * poll has no EPOLLEXCLUSIVE, and the device would wake every thread asleep with it.  A
 * device in error (POLLERR: a TAP whose interface went) ends the hold for the call, which
 * would otherwise wake at once, round after round.
 */
static int poll_mixed(struct pollfd *fds, nfds_t n, int timeout, const sigset_t *mask)
{
	struct waiter *w = thread_waiter();
	struct pollfd kf_s[POLL_STACK_FDS + 2], ufds_s[POLL_STACK_FDS];
	nfds_t kidx_s[POLL_STACK_FDS], uidx_s[POLL_STACK_FDS];
	struct pollfd *kf = kf_s, *ufds = ufds_s;
	nfds_t *kidx = kidx_s, *uidx = uidx_s;
	void *heap = NULL;
	if (n > POLL_STACK_FDS) {
		/* one block: kf's n + 2 entries, ufds's n, then the two index arrays */
		heap = malloc((2 * n + 2) * sizeof(struct pollfd) + 2 * n * sizeof(nfds_t));
		if (heap) {
			kf = heap;
			ufds = kf + n + 2;
			kidx = (nfds_t *)(void *)(ufds + n);
			uidx = kidx + n;
		}
	}
	if (!w || (n > POLL_STACK_FDS && !heap)) {
		free(heap);
		errno = ENOMEM;
		return -1;
	}
	nfds_t nk = 0, nu = 0;
	bool room = false;  /* waiting for room to write in one of ustack's sockets */
	bool dev_ok = true; /* the device not in error */
	for (nfds_t i = 0; i < n; i++) {
		struct ufile *uf = ours(fds[i].fd);
		if (uf && us.pid == my_pid()) {
			ufds[nu] = (struct pollfd){ .fd = uf->ufd, .events = fds[i].events };
			uidx[nu++] = i;
			room |= (fds[i].events & POLLOUT) != 0;
		} else {
			kf[nk] = fds[i];
			kidx[nk++] = i;
		}
	}
	kf[nk] = (struct pollfd){ .fd = w->efd, .events = POLLIN };
	kf[nk + 1] = (struct pollfd){ .fd = dev_fd(), .events = POLLIN };
	uint64_t start = now_ns();
	unsigned dflags = dev_asleep ? USTACK_POLL_AWAKE : 0;
	int rc;
	for (;;) {
		if (room)
			dev_poll(dflags);
		else if (dflags) /* asleep since a siglongjmp out of a wait, and not holding now */
			dev_poll(USTACK_POLL_AWAKE | USTACK_POLL_RELEASE);
		dflags = 0;
		arm(w);
		int ru = ustack_poll(us.st, ufds, nu, 0);
		int left = ru > 0 ? 0 : ms_left(timeout, start);
		bool hold = left && room && dev_ok && !us.busy && blk_hold_take(); /* one thread at a time */
		if (!hold)
			blk_hold_put(); /* kept since a siglongjmp out of a wait: let another hold */
		if (left && nu && !hold)
			dev_release();
		struct timespec ts = { left / 1000, (long)(left % 1000) * 1000000L };
		nfds_t nkf = nk + 1 + hold;
		if (hold)
			dev_poll(USTACK_POLL_SLEEP);
		int rk = mask ? REAL(ppoll)(kf, nkf, left < 0 ? NULL : &ts, mask) : REAL(poll)(kf, nkf, left);
		dflags = hold ? USTACK_POLL_AWAKE : 0;
		if (hold)
			blk_hold_put();
		disarm_polled(w, rk > 0 && kf[nk].revents);
		if (rk < 0) { /* EINTR, as the kernel's */
			if (dflags)
				dev_poll(dflags);
			rc = -1;
			break;
		}
		if (kf[nk].revents)
			rk--;
		if (hold && kf[nk + 1].revents) {
			rk--;
			dev_ok = !(kf[nk + 1].revents & (POLLERR | POLLHUP | POLLNVAL));
		}
		if (rk > 0 || left == 0) {
			if (dflags)
				dev_poll(dflags); /* no longer asleep; the frames that woke it taken */
			if (rk > 0 && ru <= 0)
				ru = ustack_poll(us.st, ufds, nu, 0); /* as of now too */
			rc = (ru > 0 ? ru : 0) + rk;
			break;
		}
		/* only the stack's wake-up or the device's frames: look at the sockets again */
	}
	for (nfds_t i = 0; i < nk; i++)
		fds[kidx[i]].revents = rc < 0 ? 0 : kf[i].revents;
	for (nfds_t i = 0; i < nu; i++)
		fds[uidx[i]].revents = rc < 0 ? 0 : ufds[i].revents;
	free(heap);
	return rc;
}

static bool any_ours(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if (ours(fds[i].fd))
			return true;
	return false;
}

/* glibc declares poll's array write-only (access attribute), so gcc thinks reading the
 * caller's events is reading uninitialized memory */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!us.st || in_child() || !fds || !any_ours(fds, n))
		return REAL(poll)(fds, n, timeout);
	return poll_mixed(fds, n, timeout, NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		abort();
	return poll(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
	if (!us.st || in_child() || !fds || !any_ours(fds, n) ||
	    (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000L)))
		return REAL(ppoll)(fds, n, tmo, mask); /* the kernel's answer, EINVAL included */
	return poll_mixed(fds, n, tmo ? timeout_ms(tmo->tv_sec, tmo->tv_nsec / 1000) : -1, mask);
}

int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		abort();
	return ppoll(fds, n, tmo, mask);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* select through poll: each set bit is one event, as select(2) counts them. */
static int select_mixed(int nfds, fd_set *r, fd_set *wr, fd_set *ex, int timeout, const sigset_t *mask)
{
	/* the descriptors asked about, counted first: a high one alone stays on the stack */
	size_t want = 0;
	for (int fd = 0; fd < nfds; fd++)
		want += (r && FD_ISSET(fd, r)) || (wr && FD_ISSET(fd, wr)) || (ex && FD_ISSET(fd, ex));
	struct pollfd p_s[POLL_STACK_FDS];
	struct pollfd *p = want <= POLL_STACK_FDS ? p_s : malloc(want * sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	nfds_t n = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (wr && FD_ISSET(fd, wr) ? POLLOUT : 0) |
				   (ex && FD_ISSET(fd, ex) ? POLLPRI : 0));
		if (ev)
			p[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	int rc = poll_mixed(p, n, timeout, mask);
	for (nfds_t i = 0; rc >= 0 && i < n; i++)
		if (p[i].revents & POLLNVAL) { /* select's EBADF leaves the sets as they were */
			errno = EBADF;
			rc = -1;
		}
	if (rc >= 0) {
		rc = 0;
		for (int fd = 0; fd < nfds; fd++) {
			if (r)
				FD_CLR(fd, r);
			if (wr)
				FD_CLR(fd, wr);
			if (ex)
				FD_CLR(fd, ex);
		}
		for (nfds_t i = 0; i < n; i++) {
			short re = p[i].revents;
			if (r && (p[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR)))
				FD_SET(p[i].fd, r), rc++;
			if (wr && (p[i].events & POLLOUT) && (re & (POLLOUT | POLLERR)))
				FD_SET(p[i].fd, wr), rc++;
			if (ex && (p[i].events & POLLPRI) && (re & POLLPRI))
				FD_SET(p[i].fd, ex), rc++;
		}
	}
	if (p != p_s)
		free(p);
	return rc;
}

static bool any_ours_in(int nfds, fd_set *r, fd_set *wr, fd_set *ex)
{
	if (!us.st || in_child())
		return false;
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (((r && FD_ISSET(fd, r)) || (wr && FD_ISSET(fd, wr)) || (ex && FD_ISSET(fd, ex))) && ours(fd))
			return true;
	return false;
}

int select(int nfds, fd_set *r, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	if (nfds < 0 || nfds > FD_SETSIZE || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) ||
	    !any_ours_in(nfds, r, wr, ex))
		return REAL(select)(nfds, r, wr, ex, tv); /* the kernel's answer, EINVAL included */
	int ms = tv ? timeout_ms(tv->tv_sec, tv->tv_usec) : -1;
	uint64_t start = now_ns();
	int rc = select_mixed(nfds, r, wr, ex, ms, NULL);
	if (tv) { /* Linux writes back the time not slept */
		int left = ms_left(ms, start);
		tv->tv_sec = left / 1000;
		tv->tv_usec = (left % 1000) * 1000;
	}
	return rc;
}

int pselect(int nfds, fd_set *r, fd_set *wr, fd_set *ex, const struct timespec *ts, const sigset_t *mask)
{
	if (nfds < 0 || nfds > FD_SETSIZE || (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)) ||
	    !any_ours_in(nfds, r, wr, ex))
		return REAL(pselect)(nfds, r, wr, ex, ts, mask);
	int ms = ts ? timeout_ms(ts->tv_sec, ts->tv_nsec / 1000) : -1;
	return select_mixed(nfds, r, wr, ex, ms, mask);
}

/* ---- epoll -------------------------------------------------------------------------------- */



static struct uepoll *epoll_of(int epfd, bool create)
{
	pthread_once(&fdmap_once, fdmap_init);
	if (epfd < 0 || epfd >= fdmap_size) {
		errno = EBADF;
		return NULL;
	}
	pthread_mutex_lock(&map_mu);
	if (!epmap)
		epmap = calloc((size_t)fdmap_size, sizeof(*epmap));
	struct uepoll *e = epmap ? atomic_load(&epmap[epfd]) : NULL;
	int err = epmap ? 0 : ENOMEM;
	if (!e && create && epmap) {
		/* the first ustack socket in epfd: a ustack epoll instance, and a waiter whose
		 * eventfd goes into the kernel's (which also tells whether epfd is one: EBADF,
		 * EINVAL as epoll_ctl's) */
		e = calloc(1, sizeof(*e));
		err = ENOMEM;
		if (e && (e->uep = ustack_epoll_create(us.st, 1)) < 0)
			err = errno;
		else if (e && !(e->w = waiter_new(true)))
			err = errno ? errno : ENOMEM;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_MAGIC };
		/* the device too, a frame waking one of the instances that hold it (EEXIST: a dup of
		 * an instance that has it already); not with busy polling, whose run loop takes
		 * every frame */
		struct epoll_event dv = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = DEV_MAGIC };
		int dfd = dev_fd();
		if (e && e->w && (REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, e->w->efd, &ev) < 0 ||
				  (!us.busy && REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, dfd, &dv) < 0 && errno != EEXIST)))
			err = errno;
		else if (e && e->w)
			err = 0;
		if (err || !e) {
			if (e && e->w)
				waiter_free(e->w);
			if (e && e->uep >= 0)
				ustack_close(us.st, e->uep);
			free(e);
			e = NULL;
		} else {
			atomic_init(&e->refs, 1); /* the descriptor's */
			atomic_store(&epmap[epfd], e);
		}
	}
	if (e)
		atomic_fetch_add(&e->refs, 1); /* the caller's */
	pthread_mutex_unlock(&map_mu);
	if (!e && err)
		errno = err;
	return e;
}

/* epfd's instance with a reference for the caller, or NULL */
static struct uepoll *epoll_get(int epfd)
{
	if (!epmap || epfd < 0 || epfd >= fdmap_size || !atomic_load(&epmap[epfd]) || in_child())
		return NULL;
	pthread_mutex_lock(&map_mu);
	struct uepoll *e = atomic_load(&epmap[epfd]);
	if (e)
		atomic_fetch_add(&e->refs, 1);
	pthread_mutex_unlock(&map_mu);
	return e;
}

static void epoll_put(struct uepoll *e)
{
	if (atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	ustack_close(us.st, e->uep);
	waiter_free(e->w);
	free(e);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	OURS_OR(fd, REAL(epoll_ctl)(epfd, op, fd, ev));
	/* the first ustack socket in epfd: its waiter's eventfd goes into the kernel's instance,
	 * which also tells whether epfd is one (EBADF, EINVAL as epoll_ctl's) */
	struct uepoll *e = epoll_of(epfd, op == EPOLL_CTL_ADD);
	if (!e) {
		if (op != EPOLL_CTL_ADD)
			errno = ENOENT; /* never added */
		return -1;
	}
	int rc = ustack_epoll_ctl(us.st, e->uep, op, uf->ufd, ev);
	int err = errno;
	epoll_put(e);
	errno = err;
	return rc;
}

/* The kernel's wait, asleep with the device in it (DEV_MAGIC), holding its frames from the run
 * loop until woken (the caller's USTACK_POLL_AWAKE) — or cancelled: epoll_wait is a
 * cancellation point, and a thread cancelled in it stops holding the device as it ends
 * (dev_hold_dtor). */
static int dev_sleep(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
	dev_poll(USTACK_POLL_SLEEP);
	return mask ? REAL(epoll_pwait)(epfd, evs, max, timeout, mask) : REAL(epoll_wait)(epfd, evs, max, timeout);
}

/* The library's own entries (WAKE_MAGIC, DEV_MAGIC) taken out of n events: how many are left */
static int magic_filter(struct epoll_event *evs, int n)
{
	int out = 0;
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 != WAKE_MAGIC && evs[i].data.u64 != DEV_MAGIC)
			evs[out++] = evs[i];
	return out;
}

/* Events from the ustack instance first (without waiting), then the kernel's, sleeping in
 * the kernel while neither has any; the waiter's own eventfd and the device are never
 * returned.  Each round begins with a burst of the device's frames taken by this thread, and
 * the sleep holds the device from the run loop (dev_sleep): run to completion, so that a
 * frame wakes this thread alone (src/link/loop.c has the essay). */
static int epoll_wait_mixed(struct uepoll *e, int epfd, struct epoll_event *evs, int max, int timeout,
			    const sigset_t *mask)
{
	uint64_t start = now_ns();
	unsigned poll = dev_asleep ? USTACK_POLL_AWAKE : 0;
	for (;;) {
		dev_poll(poll);
		arm(e->w);
		/* one slot at least for the kernel's descriptors, so that a busy ustack socket
		 * cannot starve them */
		int nu = ustack_epoll_wait(us.st, e->uep, evs, max > 1 ? max - 1 : max, 0);
		if (nu < 0 || nu == max) {
			disarm(e->w);
			return nu;
		}
		int left = nu > 0 ? 0 : ms_left(timeout, start);
		bool hold = left && !us.busy;
		int nk = hold ? dev_sleep(epfd, evs + nu, max - nu, left, mask)
			      : mask ? REAL(epoll_pwait)(epfd, evs + nu, max - nu, left, mask)
				     : REAL(epoll_wait)(epfd, evs + nu, max - nu, left);
		poll = hold ? USTACK_POLL_AWAKE : 0;
		disarm(e->w);
		if (nk < 0) { /* EINTR, as the kernel's */
			if (poll)
				dev_poll(poll);
			return nu > 0 ? nu : -1;
		}
		int out = nu + magic_filter(evs + nu, nk);
		if (out > 0 && poll)
			dev_poll(poll); /* no longer asleep */
		if (out > 0 || left == 0)
			return out;
		/* only the stack's wake-up: look at its sockets again */
	}
}

/*
 * The kernel's wait alone, on an instance that is not (or no longer, here) ustack's.  One
 * that still holds the library's own descriptors — a forked child's inherited instance, a
 * dup of one, one that outlived the descriptor the library knew it by — reports their events
 * too: never to the program (it would take WAKE_MAGIC for its epoll_data), and without
 * ending a wait that has time left.  While only those come back (the device keeps its level
 * while frames wait for the parent), the wait pauses — 1 ms, doubling to 50 — in a ppoll
 * with the caller's mask, which a signal ends with EINTR as it ends the wait itself.
 */
static int epoll_wait_kernel(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
	uint64_t start = timeout > 0 ? now_ns() : 0;
	long pause_ms = 1;
	for (int left = timeout;;) {
		int n = mask ? REAL(epoll_pwait)(epfd, evs, max, left, mask) : REAL(epoll_wait)(epfd, evs, max, left);
		int out = n > 0 ? magic_filter(evs, n) : n;
		if (out != 0 || timeout == 0 || (timeout > 0 && (left = ms_left(timeout, start)) == 0))
			return out;
		long p = timeout > 0 && left < pause_ms ? left : pause_ms;
		struct timespec ts = { p / 1000, (p % 1000) * 1000000L };
		if (REAL(ppoll)(NULL, 0, &ts, mask) < 0 && errno == EINTR)
			return -1;
		pause_ms = pause_ms < 50 ? pause_ms * 2 : 50;
		if (timeout > 0 && (left = ms_left(timeout, start)) == 0)
			return 0;
	}
}

static int epoll_wait_ours(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
	struct uepoll *e = max > 0 ? epoll_get(epfd) : NULL;
	if (!e)
		return epoll_wait_kernel(epfd, evs, max, timeout, mask);
	int rc = epoll_wait_mixed(e, epfd, evs, max, timeout, mask);
	int err = errno;
	epoll_put(e);
	errno = err;
	return rc;
}

int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	return epoll_wait_ours(epfd, evs, max, timeout, NULL);
}

int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout, const sigset_t *mask)
{
	return epoll_wait_ours(epfd, evs, max, timeout, mask);
}

/* epoll_pwait2 (a timespec's timeout, as systemd's sd-event uses) */
int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *tmo, const sigset_t *mask);
int epoll_pwait2(int epfd, struct epoll_event *evs, int max, const struct timespec *tmo, const sigset_t *mask)
{
	struct uepoll *e = max > 0 ? epoll_get(epfd) : NULL;
	if (!e) {
		int (*next)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *) =
			dlsym(RTLD_NEXT, "epoll_pwait2");
		if (!next) {
			errno = ENOSYS;
			return -1;
		}
		int n = next(epfd, evs, max, tmo, mask);
		if (n <= 0)
			return n;
		int out = magic_filter(evs, n);
		if (out > 0 || (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0))
			return out;
		/* only the library's own entries (epoll_wait_kernel): on, to the millisecond */
		return epoll_wait_kernel(epfd, evs, max, tmo ? timeout_ms(tmo->tv_sec, tmo->tv_nsec / 1000) : -1, mask);
	}
	epoll_put(e);
	if (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000L)) {
		errno = EINVAL;
		return -1;
	}
	return epoll_wait_ours(epfd, evs, max, tmo ? timeout_ms(tmo->tv_sec, tmo->tv_nsec / 1000) : -1, mask);
}

/* ---- exit -------------------------------------------------------------------------------- */

/*
 * As a kernel does when a process ends: every ustack socket the program still holds is
 * closed, and the stack keeps running until no closed connection owes its peer data or a
 * FIN (ustack_tap_drain, bounded by the stack's own limits); the run loop is stopped first,
 * so that the drain is the only reader of the device.  The instance is not destroyed: other
 * threads may still be inside it until the process is gone.
 */
__attribute__((destructor)) static void preload_exit(void)
{
	if (!us.st || us.pid != my_pid())
		return;
	atomic_store(&exiting, true);
	for (int fd = 0; fdmap && fd < fdmap_size; fd++) {
		struct ufile *f = ours(fd);
		if (f) {
			release(fd, f);
			REAL(close)(fd);
		}
	}
	if (us.xdp) {
		ustack_xdp_stop(us.xdp);
		pthread_join(us.loop, NULL);
		ustack_xdp_drain(us.xdp);
	} else {
		ustack_tap_stop(us.tap);
		pthread_join(us.loop, NULL);
		ustack_tap_drain(us.tap);
	}
	uint64_t lost = 0;
	unsigned left = ustack_undelivered(us.st, &lost);
	if (left)
		say("%u closed connection%s still owed the peer data or a FIN", left, left == 1 ? "" : "s");
	if (lost)
		say("%llu closed connection%s ended before the peer acknowledged %s data and FIN (reset, or given up)",
		    (unsigned long long)lost, lost == 1 ? "" : "s", lost == 1 ? "its" : "their");
	ustack_ctl_stop(us.ctl);
}
