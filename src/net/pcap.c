/* Capture files through libpcap, stamped with the stack's own (possibly virtual) clock. */
#include "net/net.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <ustack/link.h>
#include <stdlib.h>

struct capture {
	pcap_t *pcap;
	pcap_dumper_t *dumper;
};

int ustack_pcap_start(struct ustack *st, int ifindex, const char *path)
{
	stack_lock(st);
	struct netdev *dev = netdev_get(st, ifindex);
	int rc = -1;
	if (!dev) {
		errno = ENODEV;
		goto out;
	}
	netdev_pcap_close(dev);
	struct capture *c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	errno = 0;
	c->pcap = pcap_open_dead(dev->type == USTACK_LINK_ETHER ? DLT_EN10MB : DLT_RAW, 65535);
	c->dumper = c->pcap ? pcap_dump_open(c->pcap, path) : NULL;
	if (!c->dumper) {
		/* fopen (in pcap_dump_open) or malloc leaves the errno that says what is wrong
		 * (ENOENT, EACCES, EISDIR, ENOMEM, ...); EIO only when there is none */
		int err = errno ? errno : EIO;
		if (c->pcap)
			pcap_close(c->pcap);
		free(c);
		errno = err;
		goto out;
	}
	dev->pcap = c;
	rc = 0;
out:
	stack_unlock(st);
	return rc;
}

void netdev_pcap_write(struct ustack *st, struct netdev *dev, const uint8_t *f, size_t len)
{
	struct capture *c = dev->pcap;
	if (!c)
		return;
	struct pcap_pkthdr h = {
		.ts = { .tv_sec = (time_t)(st->now / 1000000u), .tv_usec = (suseconds_t)(st->now % 1000000u) },
		.caplen = (bpf_u_int32)len,
		.len = (bpf_u_int32)len,
	};
	pcap_dump((u_char *)c->dumper, &h, f);
	pcap_dump_flush(c->dumper);
}

void netdev_pcap_close(struct netdev *dev)
{
	struct capture *c = dev->pcap;
	if (!c)
		return;
	pcap_dump_close(c->dumper);
	pcap_close(c->pcap);
	free(c);
	dev->pcap = NULL;
}
