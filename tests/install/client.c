/*
 * A program built against the installed library the way a user builds one:
 *   cc client.c $(pkg-config --cflags --libs ustack)
 * Two stacks on the in-memory link in virtual time; the client connects, sends a line, the
 * server echoes it.  Only the public API (include/ustack) is used.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ustack/link.h>
#include <ustack/socket.h>
#include <ustack/stack.h>

int main(void)
{
	struct ustack_vclock vc;
	ustack_vclock_init(&vc, 0);
	struct ustack_config ca = { .clock = &vc.clock, .name = "client" };
	struct ustack_config cb = { .clock = &vc.clock, .name = "server" };
	struct ustack *a = ustack_create(&ca), *b = ustack_create(&cb);
	struct ustack_memlink *ml = ustack_memlink_create(&vc.clock, NULL);
	if (!a || !b || !ml)
		return 1;
	static const uint8_t ma[6] = { 2, 0, 0, 0, 0, 1 }, mb[6] = { 2, 0, 0, 0, 0, 2 };
	int ia = ustack_memlink_attach(ml, 0, a, "m0", ma, 1500);
	int ib = ustack_memlink_attach(ml, 1, b, "m0", mb, 1500);
	struct in_addr aa = { htonl(0xc0000201) }, ab = { htonl(0xc0000202) };
	ustack_addr_add(a, ia, aa, 24);
	ustack_addr_add(b, ib, ab, 24);
	int lfd = ustack_socket(b, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(7), .sin_addr = ab };
	if (ustack_bind(b, lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || ustack_listen(b, lfd, 8) < 0)
		return 1;
	int cfd = ustack_socket(a, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (ustack_connect(a, cfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != EINPROGRESS)
		return 1;
	ustack_memlink_run(ml, &vc, vc.now_us + 10000);
	int afd = ustack_accept(b, lfd, NULL, NULL);
	const char msg[] = "hello over ustack\n";
	char buf[64] = { 0 };
	if (afd < 0 || ustack_send(a, cfd, msg, sizeof(msg) - 1, 0) != (ssize_t)sizeof(msg) - 1)
		return 1;
	ustack_memlink_run(ml, &vc, vc.now_us + 10000);
	ssize_t n = ustack_recv(b, afd, buf, sizeof(buf) - 1, 0);
	if (n != (ssize_t)sizeof(msg) - 1 || ustack_send(b, afd, buf, (size_t)n, 0) != n)
		return 1;
	ustack_memlink_run(ml, &vc, vc.now_us + 10000);
	memset(buf, 0, sizeof(buf));
	n = ustack_recv(a, cfd, buf, sizeof(buf) - 1, 0);
	printf("echoed: %s", n > 0 ? buf : "(nothing)\n");
	ustack_memlink_destroy(ml);
	ustack_destroy(a);
	ustack_destroy(b);
	return n == (ssize_t)sizeof(msg) - 1 && !strcmp(buf, msg) ? 0 : 1;
}
