/*
 * Ethernet framing.  The input is one frame as it arrives on the wire.
 *
 *   1. eth_parse: fails exactly when the frame is shorter than a header; a parsed header emits
 *      back (eth_emit) to the same 14 bytes; the broadcast/multicast predicates agree with the
 *      bytes.
 *   2. the tcpdump-style printer (ustack_frame_format) on the frame, as an Ethernet frame and
 *      as a raw IP packet, with a large and a truncating buffer.
 *   3. the frame into a stack on an Ethernet link (192.0.2.2, MAC 02:00:00:00:00:02) that
 *      listens on port 80, twice with timers run in between, so that what the frame started
 *      (an ARP entry, a reassembly queue, a request socket) meets its timers; then
 *      ustack_destroy.  Every frame the stack sends back is checked by the oracle.
 */
#include "fuzz_common.h"
#include "wire/ether.h"

#include <ustack/socket.h>
#include <ustack/trace.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz fz;

static void check_parse(const uint8_t *data, size_t size)
{
	struct eth_repr e;
	int rc = eth_parse(data, size, &e);
	if ((rc == 0) != (size >= ETH_HLEN))
		abort();
	if (rc != 0)
		return;
	uint8_t out[ETH_HLEN];
	eth_emit(out, &e);
	if (memcmp(out, data, ETH_HLEN) != 0)
		abort();
	bool bcast = memcmp(data, "\xff\xff\xff\xff\xff\xff", 6) == 0;
	if (eth_is_broadcast(e.dst) != bcast)
		abort();
	if (eth_is_multicast(e.dst) != (bool)(data[0] & 1))
		abort();
}

static void check_print(const uint8_t *data, size_t size)
{
	static const enum ustack_link_type types[2] = { USTACK_LINK_ETHER, USTACK_LINK_RAWIP };
	for (int i = 0; i < 2; i++) {
		char line[1024], tiny[5];
		size_t n = ustack_frame_format(line, sizeof(line), types[i], data, size);
		if (n < sizeof(line) && strlen(line) != n)
			abort();
		size_t m = ustack_frame_format(tiny, sizeof(tiny), types[i], data, size);
		if (m != n || strlen(tiny) >= sizeof(tiny))
			abort();
		(void)ustack_frame_format(NULL, 0, types[i], data, size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_print(data, size);

	fz_init(&fz, USTACK_LINK_ETHER, 1000000);
	int lfd = ustack_socket(fz.st, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
	(void)ustack_bind(fz.st, lfd, (struct sockaddr *)&a, sizeof(a));
	(void)ustack_listen(fz.st, lfd, 4);
	fz_send_raw(&fz, data, size);
	fz_advance(&fz, 1000);
	fz_send_raw(&fz, data, size);
	for (int i = 0; i < 4; i++)
		fz_advance_next(&fz, 120 * 1000);
	fz_fini(&fz);
	return 0;
}
