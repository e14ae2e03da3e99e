#ifndef USTACK_CORE_TRACE_H
#define USTACK_CORE_TRACE_H

#include <ustack/trace.h>

#define TRACE_SUBS_MAX 8

struct trace_sub {
	ustack_trace_fn fn;
	void *arg;
	unsigned kinds; /* USTACK_TRACE_KIND mask */
};

struct ustack;
/* Emits an event to every subscriber; cheap when there are none. */
void trace_emit(struct ustack *st, enum ustack_trace_kind kind, const char *name, int ifindex,
		const uint8_t *frame, size_t len, const char *detail);
struct ustack_trace_event;
/* Emits a fully built event (time, stack name and link type are filled in here). */
void trace_emit_event(struct ustack *st, struct ustack_trace_event *ev);
/* A drop, with Linux's drop-reason name (kfree_skb's reason). */
#define trace_drop(st, reason, ifindex) \
	trace_emit((st), USTACK_TRACE_DROP, (reason), (ifindex), NULL, 0, NULL)

#endif
