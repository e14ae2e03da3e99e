#include "core/stack.h"

#include <errno.h>

void trace_emit_event(struct ustack *st, struct ustack_trace_event *ev)
{
	if (!st->ntrace)
		return;
	bool known = ev->ifindex > 0 && ev->ifindex <= STACK_IF_MAX && st->trace_link_type[ev->ifindex];
	ev->time_us = st->now;
	ev->stack = st->name;
	ev->link_type = known ? st->trace_link_type[ev->ifindex] : USTACK_LINK_RAWIP;
	for (int i = 0; i < TRACE_SUBS_MAX; i++)
		if (st->trace[i].fn)
			st->trace[i].fn(st->trace[i].arg, ev);
}

void trace_emit(struct ustack *st, enum ustack_trace_kind kind, const char *name, int ifindex,
		const uint8_t *frame, size_t len, const char *detail)
{
	if (!st->ntrace)
		return;
	struct ustack_trace_event ev = {
		.kind = kind, .name = name, .ifindex = ifindex, .frame = frame, .len = len, .detail = detail,
	};
	trace_emit_event(st, &ev);
}

int ustack_trace_subscribe(struct ustack *st, ustack_trace_fn fn, void *arg)
{
	int id = -1;
	stack_lock(st);
	for (int i = 0; i < TRACE_SUBS_MAX; i++) {
		if (!st->trace[i].fn) {
			st->trace[i].fn = fn;
			st->trace[i].arg = arg;
			st->ntrace++;
			id = i;
			break;
		}
	}
	stack_unlock(st);
	if (id < 0)
		errno = ENOSPC;
	return id;
}

void ustack_trace_unsubscribe(struct ustack *st, int id)
{
	stack_lock(st);
	if (id >= 0 && id < TRACE_SUBS_MAX && st->trace[id].fn) {
		st->trace[id].fn = NULL;
		st->ntrace--;
	}
	stack_unlock(st);
}
