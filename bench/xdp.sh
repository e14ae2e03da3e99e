#!/usr/bin/env bash
# AF_XDP against the Linux kernel, beside Linux against itself over the same veth, in one run:
#   bulk: ustack → Linux and Linux → ustack (`ustack nc --serve`, ustack on veth0 by AF_XDP),
#         then Linux → Linux with veth0 given to the kernel (its default offloads: GSO/GRO);
#   iperf3, each way: under `ustack run --xdp` against Linux's iperf3 server, then the same
#         two with both ends the kernel's (skipped without iperf3);
#   ping-pong: a blocking python3 client (64 bytes, recv() until they are back) under
#         `ustack run --xdp` against a Linux echo server, then the same client on the kernel;
#   connections per second: bench_connrate's client in the peer namespace against its own
#         echo listener run under `ustack run --xdp` (the preload library), then run by Linux.
# Needs root; makes its own namespaces (documentation addresses only), removes them.
#
# MTU (default 1500) is the veth pair's, both ends, for every run; above 3,800 AF_XDP needs
# multi-buffer (Linux 6.6), ustack's MTU following the interface's.
#
#   bench/xdp.sh BUILD-DIR [megabytes] [seconds] [concurrency] [mtu]    e.g. bench/xdp.sh build/rel
set -euo pipefail
build=${1:?usage: xdp.sh BUILD-DIR [megabytes] [seconds] [concurrency] [mtu]}
MB=${2:-1024}
SECS=${3:-5}
CONC=${4:-64}
MTU=${5:-1500}
bin=$build/ustack
connrate=$build/bench/bench_connrate
BYTES=$((MB * 1024 * 1024))
NS=ustack-xbench-$$
NS2=$NS-peer
PID=
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$NS2" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip netns add "$NS2"
ip -n "$NS" link set lo up
ip -n "$NS2" link set lo up
ip -n "$NS" link add veth0 type veth peer name veth1 netns "$NS2"
ip -n "$NS" link set veth0 mtu "$MTU"
ip -n "$NS2" link set veth1 mtu "$MTU"
ip -n "$NS2" addr add 192.0.2.1/24 dev veth1
ip -n "$NS2" link set veth1 up
ip netns exec "$NS2" ethtool -K veth1 tx off >/dev/null # complete checksums (src/link/xdp.c)
# the load generator's ports: reuse TIME_WAIT ones, all of them
ip netns exec "$NS2" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"

# wait_line FILE REGEX: readiness, bounded (10 s)
wait_line() {
	for ((i = 0; i < 500; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	cat "$1"
	echo "no '$2' in $1" >&2
	exit 1
}
rate() { awk -v s="$1" -v b="$BYTES" 'BEGIN { printf "%.2f Gbit/s", b * 8 / s / 1e9 }'; }
out=$(mktemp)

# recv/send in python3, as bench/throughput_tap.sh: read BYTES, or send BYTES and wait for the close
recv_py='import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); n = int(sys.argv[3])
buf = bytearray(1 << 18); got = 0; t = time.monotonic()
while got < n:
    r = s.recv_into(buf)
    if not r: break
    got += r
print(f"{time.monotonic() - t:.3f} {got}")'
send_py='import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10); n = int(sys.argv[3])
buf = b"\x5a" * (1 << 18); sent = 0; t = time.monotonic()
while sent < n:
    sent += s.send(buf[: min(len(buf), n - sent)])
s.shutdown(socket.SHUT_WR); s.recv(1)
print(f"{time.monotonic() - t:.3f} {sent}")'

ip netns exec "$NS" "$bin" nc -l --serve "send:$BYTES" --xdp veth0 --addr 192.0.2.2/24 5001 >"$out" 2>&1 &
PID=$!
wait_line "$out" "serving on port"
read -r s _ < <(ip netns exec "$NS2" python3 -c "$recv_py" 192.0.2.2 5001 "$BYTES")
echo "ustack → Linux (AF_XDP, veth, MTU $MTU): $MB MiB in $s s = $(rate "$s")"
kill -TERM $PID; wait $PID || true

ip netns exec "$NS" "$bin" nc -l --serve discard --xdp veth0 --addr 192.0.2.2/24 5002 >"$out" 2>&1 &
PID=$!
wait_line "$out" "serving on port"
read -r s _ < <(ip netns exec "$NS2" python3 -c "$send_py" 192.0.2.2 5002 "$BYTES")
echo "Linux → ustack (AF_XDP, veth, MTU $MTU): $MB MiB in $s s = $(rate "$s")"
kill -TERM $PID; wait $PID || true
grep -E "^xdp_(rx_dropped|rx_ring_full|tx_no_frame)" "$out" | sed 's/^/  /' || true

# iperf3_vs LABEL CLIENT-NS [-R] CLIENT-PREFIX...: iperf3 for SECS seconds from CLIENT-NS to
# Linux's iperf3 server in NS2 (one test, then it exits); prints the receiver's rate and the
# whole machine's CPU for the test.  Skipped without iperf3.
iperf3_vs() {
	command -v iperf3 >/dev/null || return 0
	local label=$1 ns=$2 dir=$3 i t0 t1
	shift 3
	ip netns exec "$NS2" iperf3 -s -1 -B 192.0.2.1 >/dev/null 2>&1 &
	local srv=$!
	for ((i = 0; i < 500; i++)); do
		[ -n "$(ip netns exec "$NS2" ss -Hltn "sport = :5201")" ] && break
		sleep 0.02
	done
	t0=$(busy_ticks)
	ip netns exec "$ns" timeout $((SECS + 30)) "$@" iperf3 -c 192.0.2.1 -t "$SECS" -f g $dir >"$out" 2>&1 || true
	t1=$(busy_ticks)
	wait $srv || true
	awk -v l="$label" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
		'/receiver/ { r = $(NF - 2) " " $(NF - 1) } END { printf "%s: %s, machine CPU %.2f s\n", l, r ? r : "FAILED", t / hz }' "$out"
}
# busy_ticks: the machine's CPU time so far, every CPU, in clock ticks (/proc/stat's user, nice,
# system, irq, softirq)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# an unmodified sender and receiver: iperf3 under `ustack run --xdp` (the preload library; its
# select() runs to completion while waiting for room), the Linux iperf3 server the peer
iperf3_vs "iperf3, ustack → Linux (AF_XDP, ustack run, MTU $MTU)" "$NS" "" \
	"$bin" run --xdp veth0 --addr 192.0.2.2/24 --
iperf3_vs "iperf3, Linux → ustack (AF_XDP, ustack run, MTU $MTU)" "$NS" -R \
	"$bin" run --xdp veth0 --addr 192.0.2.2/24 --

# pingpong_vs LABEL CLIENT-NS CLIENT-PREFIX...: a blocking request-response loop, as simple
# clients are written: python3 in CLIENT-NS sends 64 bytes and waits in recv() for them to come
# back from an echo server in NS2, for SECS seconds; round trips a second and the whole
# machine's CPU a round trip
pingpong_vs() {
	local label=$1 ns=$2 r
	shift 2
	: >"$out"
	ip netns exec "$NS2" timeout $((SECS + 30)) python3 -c '
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", 5205)); l.listen(1); print("ready", flush=True)
c, _ = l.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while d := c.recv(64):
    c.sendall(d)' >"$out" 2>&1 &
	local srv=$!
	wait_line "$out" "ready"
	# the machine's CPU (/proc/stat, as busy_ticks) for the loop alone, not the start and end
	r=$(ip netns exec "$ns" timeout $((SECS + 30)) "$@" python3 -c '
import socket, sys, time
def busy():
    with open("/proc/stat") as f:
        v = f.readline().split()
    return int(v[1]) + int(v[2]) + int(v[3]) + int(v[6]) + int(v[7])
s = socket.create_connection(("192.0.2.1", 5205)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
m, n, b0, t = b"x" * 64, 0, busy(), time.monotonic()
while time.monotonic() - t < float(sys.argv[1]):
    s.sendall(m); k = 0
    while k < 64:
        d = s.recv(64 - k)
        if not d:
            sys.exit("the echo server closed")
        k += len(d)
    n += 1
print(n, f"{time.monotonic() - t:.3f}", busy() - b0)' "$SECS" 2>&1) || true
	wait $srv || true
	awk -v l="$label" -v r="$r" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		split(r, f, " ")
		if (f[1] > 0 && f[2] > 0)
			printf "%s: %d round trips/s, machine %.1f us CPU a round trip\n", l, f[1] / f[2], f[3] * 1e6 / hz / f[1]
		else
			printf "%s: FAILED (%s)\n", l, r }'
}
# blocking calls under `ustack run` hold the device as epoll_wait does (run to completion)
pingpong_vs "ping-pong, ustack client (AF_XDP, ustack run, blocking recv)" "$NS" \
	"$bin" run --xdp veth0 --addr 192.0.2.2/24 --

# connrate_vs LABEL SERVER-COMMAND...: the load generator against the echo listener that
# SERVER-COMMAND starts in NS
connrate_vs() {
	local label=$1
	shift
	ip netns exec "$NS" "$@" >"$out" 2>&1 &
	PID=$!
	wait_line "$out" "serving on port"
	local t0 t1
	t0=$(busy_ticks)
	r=$(ip netns exec "$NS2" "$connrate" -c "$CONC" -d "$SECS" 192.0.2.2 7)
	t1=$(busy_ticks)
	kill -TERM $PID; wait $PID || true
	PID=
	echo "connections/s, Linux client → $label: $r"
	grep "CPU" "$out" | sed 's/^/  /'
	awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${r%% *}" \
		'BEGIN { if (n > 0) printf "  machine: %.1f us CPU a connection (client, listener, softirqs)\n", t * 1e6 / hz / n }'
}
# The listener's own CPU is not a like-for-like figure on its own: Linux runs its listener's
# receive processing in the client's softirqs (veth's transmit hands the segment over on the
# sender's CPU), where ustack's receive runs on ustack's threads; hence the machine's.
connrate_vs "ustack listener (AF_XDP, ustack run)" timeout 120 "$bin" run --xdp veth0 --addr 192.0.2.2/24 -- \
	"$connrate" -l 7
# the same veth, the kernel's now: no XDP program, veth0 addressed, default offloads
ip -n "$NS" addr add 192.0.2.2/24 dev veth0
connrate_vs "Linux listener (veth)" "$connrate" -l 7

# linux_sink PORT LABEL: Linux → Linux over the veth into a python3 sink on PORT
linux_sink() {
	ip netns exec "$NS" python3 -c '
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.2", int(sys.argv[1]))); l.listen(1); print("ready", flush=True); c, _ = l.accept()
buf = bytearray(1 << 18)
while c.recv_into(buf): pass
c.close()' "$1" >"$out" &
	local sink=$!
	wait_line "$out" "ready"
	read -r s _ < <(ip netns exec "$NS2" python3 -c "$send_py" 192.0.2.2 "$1" "$BYTES")
	wait $sink
	echo "Linux → Linux (veth, MTU $MTU, $2): $MB MiB in $s s = $(rate "$s")"
}
linux_sink 5003 "veth1 tx-checksumming off"
ip netns exec "$NS2" ethtool -K veth1 tx on >/dev/null
linux_sink 5004 "default offloads"
iperf3_vs "iperf3, Linux → Linux (veth, MTU $MTU, default offloads)" "$NS" ""
iperf3_vs "iperf3, Linux → Linux reversed (-R)" "$NS" -R
pingpong_vs "ping-pong, Linux client (veth, blocking recv)" "$NS"
rm -f "$out"
