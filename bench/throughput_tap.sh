#!/usr/bin/env bash
# Bulk TCP throughput against the Linux kernel, beside Linux against itself, in one run:
#   ustack → Linux and Linux → ustack over a TAP device (`ustack nc --serve`), and
#   Linux → Linux over a veth pair between two namespaces.
# The Linux applications are python3 (sendall / recv_into of 256 KiB), the same on every
# path.  Needs root; makes its own namespaces (documentation addresses only), removes them.
#
#   bench/throughput_tap.sh build/gcc/ustack [megabytes]
set -euo pipefail
bin=${1:?usage: throughput_tap.sh PATH-TO-ustack [megabytes]}
MB=${2:-1024}
BYTES=$((MB * 1024 * 1024))
NS=ustack-bench-$$
NS2=ustack-bench2-$$
USTACK_PID=
cleanup() {
	[ -n "$USTACK_PID" ] && kill -TERM "$USTACK_PID" 2>/dev/null && wait "$USTACK_PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$NS2" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip netns add "$NS2"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" addr add 192.0.2.1/24 dev tap0
ip -n "$NS" link set tap0 up
ip -n "$NS" link add veth0 type veth peer name veth1 netns "$NS2"
ip -n "$NS" addr add 198.51.100.1/24 dev veth0
ip -n "$NS2" addr add 198.51.100.2/24 dev veth1
ip -n "$NS" link set veth0 up
ip -n "$NS2" link set veth1 up
ip -n "$NS2" link set lo up

# recv_py HOST PORT: connect, read BYTES, print seconds
recv_py() {
	python3 - "$@" "$BYTES" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(100):
    try:
        s = socket.create_connection((host, port), timeout=10); break
    except OSError:
        time.sleep(0.05)
buf = bytearray(1 << 18); got = 0; t = time.monotonic()
while got < n:
    r = s.recv_into(buf)
    if not r: break
    got += r
print(f"{time.monotonic() - t:.3f} {got}")
PY
}
# send_py HOST PORT: connect, send BYTES, print seconds until the peer has them all (it closes)
send_py() {
	python3 - "$@" "$BYTES" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(100):
    try:
        s = socket.create_connection((host, port), timeout=10); break
    except OSError:
        time.sleep(0.05)
buf = b"\x5a" * (1 << 18); sent = 0; t = time.monotonic()
while sent < n:
    sent += s.send(buf[: min(len(buf), n - sent)])
s.shutdown(socket.SHUT_WR)
s.recv(1)  # the receiver closes once it has read everything
print(f"{time.monotonic() - t:.3f} {sent}")
PY
}
rate() { awk -v s="$1" -v b="$BYTES" 'BEGIN { printf "%.2f Gbit/s", b * 8 / s / 1e9 }'; }

ip netns exec "$NS" "$bin" nc -l --serve send:$BYTES --tap tap0 --addr 192.0.2.2/24 5001 >/dev/null 2>&1 &
USTACK_PID=$!
read -r s _ < <(ip netns exec "$NS" bash -c "$(declare -f recv_py); BYTES=$BYTES recv_py 192.0.2.2 5001")
echo "ustack → Linux (TAP, MTU 1500): $MB MiB in $s s = $(rate "$s")"
kill -TERM $USTACK_PID; wait $USTACK_PID || true

ip netns exec "$NS" "$bin" nc -l --serve discard --tap tap0 --addr 192.0.2.2/24 5002 >/dev/null 2>&1 &
USTACK_PID=$!
read -r s _ < <(ip netns exec "$NS" bash -c "$(declare -f send_py); BYTES=$BYTES send_py 192.0.2.2 5002")
echo "Linux → ustack (TAP, MTU 1500): $MB MiB in $s s = $(rate "$s")"
kill -TERM $USTACK_PID; wait $USTACK_PID || true
USTACK_PID=

ip netns exec "$NS2" python3 -c '
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.51.100.2", 5003)); l.listen(1); c, _ = l.accept(); buf = bytearray(1 << 18)
while c.recv_into(buf): pass
c.close()' &
sink=$!
read -r s _ < <(ip netns exec "$NS" bash -c "$(declare -f send_py); BYTES=$BYTES send_py 198.51.100.2 5003")
wait $sink
echo "Linux → Linux (veth, MTU 1500): $MB MiB in $s s = $(rate "$s")"
