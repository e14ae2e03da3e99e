/*
 * Sysctls, by Linux's names and with Linux's defaults (ustack follows Linux 6.18).
 *
 *   ustack_sysctl_set(st, "net.ipv4.ip_local_port_range", "1024 65535");
 *
 * Values are read and written as text in the format of /proc/sys (vectors separated by
 * white space; reads separate them with a tab, as Linux prints them).  A value that does not
 * parse or is out of range fails with EINVAL and the old value stays, as a write to
 * /proc/sys does; an unknown name fails with ENOENT.
 */
#ifndef USTACK_SYSCTL_H
#define USTACK_SYSCTL_H

#include <ustack/export.h>

#include <stddef.h>
#include "stack.h"

#ifdef __cplusplus
extern "C" {
#endif

USTACK_API int ustack_sysctl_set(struct ustack *st, const char *name, const char *value);
/* Writes the value and a NUL into buf; ERANGE when it does not fit. */
USTACK_API int ustack_sysctl_get(struct ustack *st, const char *name, char *buf, size_t len);

USTACK_API size_t ustack_sysctl_count(void);
USTACK_API const char *ustack_sysctl_name(size_t i);

#ifdef __cplusplus
}
#endif
#endif
