#!/usr/bin/env bash
# The installed library as a user meets it: `cmake --install` into a scratch prefix, then build
# client.c with `pkg-config --cflags --libs ustack` (shared, then static) and run it; and the
# shared library exports nothing but the public ustack_* API.
#   pkgconfig.sh BUILD_DIR CC [EXTRA_CFLAGS...]   (EXTRA_CFLAGS: the sanitizer flags of the build)
set -euo pipefail
build=${1:?usage: pkgconfig.sh BUILD_DIR CC [CFLAGS...]}
cc=${2:?usage: pkgconfig.sh BUILD_DIR CC [CFLAGS...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name ustack.pc)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else echo "FAIL: $*"; fail=$((fail + 1)); fi; }

# shared: only ustack_* is exported, the soname is versioned
so=$(readlink -f "$libdir/libustack.so")
others=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^ustack_' || true)
check test -z "$others"
[ -z "$others" ] || echo "exported beyond the API: $(echo "$others" | head -5 | tr '\n' ' ')"
check test "$(nm -D --defined-only "$so" | awk '{print $3}' | grep -c '^ustack_')" -gt 50
check sh -c "readelf -d '$so' | grep -qF 'Library soname: [libustack.so.0.5]'"
# the static archive carries no LTO bytecode (another gcc's -flto link would refuse it)
check sh -c "! objdump -h '$libdir/libustack.a' | grep -q 'gnu.lto_'"

# build and run against the shared library
# shellcheck disable=SC2046
"$cc" "$@" -o "$tmp/client" "$here/client.c" $(pkg-config --cflags --libs ustack)
check sh -c "LD_LIBRARY_PATH='$libdir' '$tmp/client' | grep -q 'echoed: hello over ustack'"
# and with the static library (its dependencies still shared: libpcap's own static
# dependencies are not installed on Debian)
# shellcheck disable=SC2046
"$cc" "$@" -o "$tmp/client-static" "$here/client.c" $(pkg-config --cflags ustack) \
	"$libdir/libustack.a" $(pkg-config --libs libsodium libpcap) -lpthread -lm
check sh -c "'$tmp/client-static' | grep -q 'echoed: hello over ustack'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
