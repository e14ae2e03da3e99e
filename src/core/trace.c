#include "core/stack.h"

#include <errno.h>

void trace_emit_event(struct ustack *st, struct ustack_trace_event *ev)
{
	if (!st->ntrace && !(ev->kind == USTACK_TRACE_LOG && st->nlog))
		return;
	bool known = ev->ifindex > 0 && ev->ifindex <= STACK_IF_MAX && st->trace_link_type[ev->ifindex];
	ev->time_us = st->now;
	ev->stack = st->name;
	ev->link_type = known ? st->trace_link_type[ev->ifindex] : USTACK_LINK_RAWIP;
	for (int i = 0; i < TRACE_SUBS_MAX; i++)
		if (st->trace[i].fn && (st->trace[i].kinds & USTACK_TRACE_KIND(ev->kind)))
			st->trace[i].fn(st->trace[i].arg, ev);
}

void trace_emit(struct ustack *st, enum ustack_trace_kind kind, const char *name, int ifindex,
		const uint8_t *frame, size_t len, const char *detail)
{
	if (!st->ntrace && !(kind == USTACK_TRACE_LOG && st->nlog))
		return;
	struct ustack_trace_event ev = {
		.kind = kind, .name = name, .ifindex = ifindex, .frame = frame, .len = len, .detail = detail,
	};
	trace_emit_event(st, &ev);
}

/* The two counts the emitters test before they make an event (tcp.h's trace macros). */
static void trace_count(struct ustack *st, unsigned kinds, int d)
{
	if (kinds & ~USTACK_TRACE_KIND(USTACK_TRACE_LOG))
		st->ntrace += d;
	if (kinds & USTACK_TRACE_KIND(USTACK_TRACE_LOG))
		st->nlog += d;
}

int ustack_trace_subscribe_kinds(struct ustack *st, unsigned kinds, ustack_trace_fn fn, void *arg)
{
	if (!fn || !kinds) {
		errno = EINVAL;
		return -1;
	}
	int id = -1;
	stack_lock(st);
	for (int i = 0; i < TRACE_SUBS_MAX; i++) {
		if (!st->trace[i].fn) {
			st->trace[i].fn = fn;
			st->trace[i].arg = arg;
			st->trace[i].kinds = kinds;
			trace_count(st, kinds, 1);
			id = i;
			break;
		}
	}
	stack_unlock(st);
	if (id < 0)
		errno = ENOSPC;
	return id;
}

int ustack_trace_subscribe(struct ustack *st, ustack_trace_fn fn, void *arg)
{
	return ustack_trace_subscribe_kinds(st, ~0u, fn, arg);
}

void ustack_trace_unsubscribe(struct ustack *st, int id)
{
	stack_lock(st);
	if (id >= 0 && id < TRACE_SUBS_MAX && st->trace[id].fn) {
		st->trace[id].fn = NULL;
		trace_count(st, st->trace[id].kinds, -1);
	}
	stack_unlock(st);
}
