/*
 * USTACK_API marks what libustack exports.  The library is built with hidden visibility, so
 * only the declarations in these public headers that carry it are visible to a program that
 * links the shared library; everything else in it (the stack's internals, whatever their
 * names) stays private, as libuv's UV_EXTERN does.
 */
#ifndef USTACK_EXPORT_H
#define USTACK_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define USTACK_API __attribute__((visibility("default")))
#else
#define USTACK_API
#endif

#endif
