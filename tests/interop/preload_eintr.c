/*
 * Run under `ustack run` by preload.sh: a blocking call on a ustack socket and a signal, as
 * with the kernel's sockets.  A handler without SA_RESTART makes recv() and accept() fail with
 * EINTR; with SA_RESTART the recv() goes on after the handler and returns the data that comes
 * later (sent by the peer only once the handler has run, so nothing depends on timing) — the
 * handler set by sigaction or by signal() (glibc's has SA_RESTART), and beside a handler of
 * the other kind on another signal (the library cannot tell which one ran there).  A blocking
 * send that has sent part returns its count when a handler runs, even with SA_RESTART.  And
 * sendmmsg's messages reach the peer; SO_RCVTIMEO ends a recv with EAGAIN, and makes a signal
 * interrupt it even under SA_RESTART, as Linux's sock_intr_errno does.  A vfork() child that
 * closes the connection before it exits closes its own descriptor only (the child has a copy
 * of the descriptor table): the parent's connection carries on.
 *
 *   preload_eintr PEER-ADDRESS PORT LISTEN-PORT
 * Prints one "ok ..." line per check and exits 0, or says what failed and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t fired;
static int conn;

static void on_alarm(int sig)
{
	(void)sig;
	fired++;
}

static void install(int sig, int flags)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = flags };
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void alarm_soon(void)
{
	struct itimerval it = { .it_value = { 0, 100000 } }; /* in 100 ms, once */
	setitimer(ITIMER_REAL, &it, NULL);
}

static void handle(int flags)
{
	install(SIGALRM, flags);
	alarm_soon();
}

static int fail(const char *what)
{
	printf("FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
	return 1;
}

/* once the handler has run, ask the peer for its byte */
static void *go_after_signal(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000 && !fired; i++) { /* bounded: 10 s */
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	if (send(conn, "go", 2, 0) != 2)
		perror("send go");
	return NULL;
}

/* A recv that a SIGALRM interrupts, its handler set by sigaction with flags (or by signal()
 * when flags is -1), and a SIGUSR1 handler beside it with usr1_flags (none when -1), then the
 * byte the peer sends once the handler has run: 0 if the recv was restarted and got it. */
static int restarted(int flags, int usr1_flags)
{
	if (usr1_flags >= 0)
		install(SIGUSR1, usr1_flags);
	fired = 0;
	pthread_t th;
	pthread_create(&th, NULL, go_after_signal, NULL);
	if (flags >= 0)
		install(SIGALRM, flags);
	else
		signal(SIGALRM, on_alarm);
	alarm_soon();
	char c = 0;
	ssize_t n = recv(conn, &c, 1, 0);
	pthread_join(th, NULL);
	if (usr1_flags >= 0)
		signal(SIGUSR1, SIG_DFL);
	return n == 1 && c == 'x' && fired == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: preload_eintr PEER PORT LISTEN-PORT\n");
		return 2;
	}
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	inet_pton(AF_INET, argv[1], &peer.sin_addr);
	conn = socket(AF_INET, SOCK_STREAM, 0);
	if (conn < 0 || connect(conn, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return fail("connect");
	char c;

	handle(0);
	errno = 0;
	if (recv(conn, &c, 1, 0) != -1 || errno != EINTR || fired != 1)
		return fail("recv interrupted without SA_RESTART: want -1 EINTR");
	printf("ok recv: EINTR from a handler without SA_RESTART\n");

	if (restarted(SA_RESTART, -1) < 0)
		return fail("recv with SA_RESTART: want the byte sent after the handler ran");
	printf("ok recv: restarted after a handler with SA_RESTART, then the data\n");

	/* signal() is BSD's in glibc: SA_RESTART (the library must see a handler set this way,
	 * over one without) */
	install(SIGALRM, 0);
	if (restarted(-1, -1) < 0)
		return fail("recv with signal()'s handler: want the byte sent after the handler ran");
	printf("ok recv: restarted after a handler set by signal()\n");

	/* beside a handler of the other kind on another signal, each kind as it is */
	if (restarted(SA_RESTART, 0) < 0)
		return fail("recv with SA_RESTART beside a SIGUSR1 handler without: want the byte");
	printf("ok recv: restarted with SA_RESTART, another signal's handler without it\n");
	install(SIGUSR1, SA_RESTART);
	fired = 0;
	handle(0);
	errno = 0;
	if (recv(conn, &c, 1, 0) != -1 || errno != EINTR || fired != 1)
		return fail("recv without SA_RESTART beside a SIGUSR1 handler with it: want -1 EINTR");
	printf("ok recv: EINTR without SA_RESTART, another signal's handler with it\n");
	signal(SIGUSR1, SIG_DFL);

	/* vfork: the child's close is its own, as posix_spawn's file actions and shells' are */
	pid_t pid = vfork();
	if (pid == 0) {
		close(conn);
		_exit(0);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("vfork");
	printf("ok vfork: the child closed its copy of the descriptor\n");

	/* sendmmsg: two messages, both sent, in order (the peer prints what it got) */
	struct iovec a = { "ab", 2 }, b = { "cd", 2 };
	struct mmsghdr mm[2] = { { .msg_hdr = { .msg_iov = &a, .msg_iovlen = 1 } },
				 { .msg_hdr = { .msg_iov = &b, .msg_iovlen = 1 } } };
	if (sendmmsg(conn, mm, 2, 0) != 2 || mm[0].msg_len != 2 || mm[1].msg_len != 2)
		return fail("sendmmsg");
	printf("ok sendmmsg: 2 messages\n");

	/* SO_RCVTIMEO: EAGAIN once it runs out (the peer sends nothing more) */
	struct timeval tv = { 0, 200000 };
	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return fail("SO_RCVTIMEO");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	if (recv(conn, &c, 1, 0) != -1 || errno != EAGAIN)
		return fail("recv with SO_RCVTIMEO: want -1 EAGAIN");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (waited < 0.19)
		return fail("recv with SO_RCVTIMEO returned early");
	printf("ok recv: EAGAIN after SO_RCVTIMEO's 200 ms (%.3f s)\n", waited);

	/* with a timeout, a signal interrupts even under SA_RESTART (sock_intr_errno) */
	tv.tv_sec = 30;
	tv.tv_usec = 0;
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	fired = 0;
	handle(SA_RESTART);
	errno = 0;
	if (recv(conn, &c, 1, 0) != -1 || errno != EINTR || fired != 1)
		return fail("recv with SO_RCVTIMEO and SA_RESTART: want -1 EINTR");
	printf("ok recv: EINTR under SA_RESTART when SO_RCVTIMEO is set, as Linux\n");

	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
	if (l < 0 || bind(l, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(l, 1) < 0)
		return fail("listen");
	fired = 0;
	handle(0);
	errno = 0;
	if (accept(l, NULL, NULL) != -1 || errno != EINTR || fired != 1)
		return fail("accept interrupted: want -1 EINTR");
	printf("ok accept: EINTR from a handler without SA_RESTART\n");
	close(l);

	/* A blocking send that has filled the buffers (the peer reads nothing after "hold") returns
	 * what went when a handler runs, even with SA_RESTART: Linux's tcp_sendmsg returns its
	 * count, and only a call that moved nothing is restarted.  A second connection tells the
	 * peer to read again; it says how many bytes came after "hold". */
	if (send(conn, "hold", 4, 0) != 4)
		return fail("send hold");
	size_t big = 64u << 20;
	char *buf = calloc(1, big);
	if (!buf)
		return fail("calloc");
	fired = 0;
	handle(SA_RESTART);
	ssize_t sent = send(conn, buf, big, 0);
	free(buf);
	if (sent <= 0 || (size_t)sent >= big || fired != 1)
		return fail("send filling the buffers, a handler with SA_RESTART: want a partial count");
	printf("ok send: %zd of %zu bytes, a handler with SA_RESTART having run\n", sent, big);
	int again = socket(AF_INET, SOCK_STREAM, 0);
	if (again < 0 || connect(again, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return fail("connect again");
	close(again);
	close(conn);
	return 0;
}
