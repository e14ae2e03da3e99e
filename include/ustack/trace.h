/*
 * Trace events: what the stack does, step by step, named after the Linux function or
 * tracepoint that does the same (net_dev_xmit, netif_receive_skb, arp_send, ...).  Any number
 * of subscribers may listen; they run synchronously under the instance's lock and must not
 * call back into the same instance.
 */
#ifndef USTACK_TRACE_H
#define USTACK_TRACE_H

#include <ustack/export.h>

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ustack_trace_kind {
	USTACK_TRACE_PKT_RX = 1, /* netif_receive_skb: a frame arrived (frame/len set)   */
	USTACK_TRACE_PKT_TX,     /* net_dev_xmit: a frame left (frame/len set)           */
	USTACK_TRACE_DROP,       /* kfree_skb: a packet was dropped; reason names it     */
	USTACK_TRACE_STEP,       /* a named protocol step: arp_solicit, icmp_echo, and TCP's
	                          * tcp_v4_connect, inet_hash_connect, tcp_set_state,
	                          * tcp_connect, tcp_send_syn, tcp_rcv_state_process,
	                          * inet_reqsk_alloc, tcp_send_synack,
	                          * tcp_rcv_synsent_state_process, tcp_check_req,
	                          * tcp_v4_syn_recv_sock, inet_csk_reqsk_queue_add,
	                          * inet_csk_accept, tcp_retransmit_skb, tcp_write_err ... */
	USTACK_TRACE_LOG,        /* what Linux would write to its log (detail: the line),
	                          * e.g. "TCP: Possible SYN flooding on port A:P. Sending cookies." */
};

struct ustack_trace_event {
	enum ustack_trace_kind kind;
	uint64_t time_us;
	const char *stack;    /* the instance's name */
	const char *name;     /* the step or drop reason, Linux's name where one exists */
	int ifindex;
	const uint8_t *frame; /* PKT_RX / PKT_TX: the whole frame as on the link */
	size_t len;
	enum ustack_link_type link_type;
	const char *detail;   /* optional free text */
	/* TCP steps: the connection's 4-tuple (ports in host order) and its state before and
	 * after the step, by Linux's numbering (0 for non-TCP events). */
	struct in_addr laddr, raddr;
	uint16_t lport, rport;
	int old_state, new_state;
};

typedef void (*ustack_trace_fn)(void *arg, const struct ustack_trace_event *ev);

/* Returns a subscription id (≥ 0), or -1 with ENOSPC when all slots are taken. */
USTACK_API int ustack_trace_subscribe(struct ustack *st, ustack_trace_fn fn, void *arg);
/* The same for some kinds only: a mask of USTACK_TRACE_KIND(kind).  A subscriber of LOG alone
 * costs the packet path nothing: events of the other kinds are not even formatted. */
#define USTACK_TRACE_KIND(kind) (1u << (kind))
USTACK_API int ustack_trace_subscribe_kinds(struct ustack *st, unsigned kinds, ustack_trace_fn fn, void *arg);
USTACK_API void ustack_trace_unsubscribe(struct ustack *st, int id);

/* One tcpdump-like line describing a frame ("ARP who-has ...", "IP a > b: ICMP echo ..."). */
USTACK_API size_t ustack_frame_format(char *buf, size_t size, enum ustack_link_type type,
			   const uint8_t *frame, size_t len);

#ifdef __cplusplus
}
#endif
#endif
