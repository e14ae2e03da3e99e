#include "core/stack.h"

#include <errno.h>

void trace_emit(struct ustack *st, enum ustack_trace_kind kind, const char *name, int ifindex,
		const uint8_t *frame, size_t len, const char *detail)
{
	if (!st->ntrace)
		return;
	struct netdev *dev = ifindex ? netdev_get(st, ifindex) : NULL;
	struct ustack_trace_event ev = {
		.kind = kind,
		.time_us = st->now,
		.stack = st->name,
		.name = name,
		.ifindex = ifindex,
		.frame = frame,
		.len = len,
		.link_type = dev ? dev->type : USTACK_LINK_RAWIP,
		.detail = detail,
	};
	for (int i = 0; i < TRACE_SUBS_MAX; i++)
		if (st->trace[i].fn)
			st->trace[i].fn(st->trace[i].arg, &ev);
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
