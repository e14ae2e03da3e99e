#include "core/stack.h"

#include <errno.h>
#include <string.h>

static const char *const mib_names[MIB_MAX] = {
#define X(n) #n,
	USTACK_MIB_LIST(X)
#undef X
#define X(n) "arp_cache." #n,
	USTACK_ARP_STAT_LIST(X)
#undef X
};

size_t ustack_counter_count(void)
{
	return MIB_MAX;
}

const char *ustack_counter_name(size_t i)
{
	return i < MIB_MAX ? mib_names[i] : NULL;
}

uint64_t ustack_counter_value(struct ustack *st, size_t i)
{
	uint64_t v = 0;
	if (i >= MIB_MAX)
		return 0;
	stack_lock(st);
	v = st->mib[i];
	stack_unlock(st);
	return v;
}

int ustack_counter_get(struct ustack *st, const char *name, uint64_t *value)
{
	for (size_t i = 0; i < MIB_MAX; i++) {
		if (strcmp(mib_names[i], name) == 0) {
			*value = ustack_counter_value(st, i);
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}
