#!/usr/bin/env bash
# Unmodified programs over ustack (`ustack run`, the preload library) beside the same programs
# over the kernel, in one run: iperf3's throughput both ways and redis-benchmark's requests/s,
# with the program under test as the client and as the server.  The peer is always the Linux
# kernel in namespace P.  Over ustack the program reaches P through a TAP device (ustack on
# 192.0.2.2, P on 192.0.2.1); over the kernel it runs in namespace K, which reaches P through a
# veth pair (K 198.51.100.2, P 198.51.100.1) — the kernel has no use for a TAP device between
# two of its own stacks, so that path is the kernel's own, and faster by construction (no
# system call per frame, 64 KB segments).  Needs root, iperf3, redis-server and
# redis-benchmark (Debian's); documentation addresses only, namespaces made and removed here.
#
#   bench/preload.sh build/rel/ustack [seconds per iperf3 run, default 5]
set -euo pipefail
bin=${1:?usage: preload.sh PATH-TO-ustack [seconds]}
SECS=${2:-5}
for p in iperf3 redis-server redis-benchmark; do
	command -v "$p" >/dev/null || { echo "preload.sh: needs $p (apt-get install iperf3 redis-server redis-tools)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "preload.sh: needs root (network namespaces, TAP)" >&2; exit 2; }
P=ustack-bench-p-$$
K=ustack-bench-k-$$
TMP=$(mktemp -d)
export USTACK_RUN_DIR="$TMP/run"
cleanup() {
	for pid in ${PIDS:-}; do kill "$pid" 2>/dev/null || true; done
	ip netns del "$P" 2>/dev/null || true
	ip netns del "$K" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$P"
ip netns add "$K"
ip -n "$P" link set lo up
ip -n "$K" link set lo up
ip -n "$P" tuntap add dev tap0 mode tap
ip -n "$P" addr add 192.0.2.1/24 dev tap0
ip -n "$P" link set tap0 up
ip -n "$P" link add veth0 type veth peer name veth1 netns "$K"
ip -n "$P" addr add 198.51.100.1/24 dev veth0
ip -n "$K" addr add 198.51.100.2/24 dev veth1
ip -n "$P" link set veth0 up
ip -n "$K" link set veth1 up
RUN=(ip netns exec "$P" timeout 300 "$bin" run --tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)

listening() { # NETNS PORT: a kernel listener there (bounded wait)
	for ((i = 0; i < 500; i++)); do
		[ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.02
	done
	echo "preload.sh: nothing listens on $2 in $1" >&2
	exit 1
}
ustack_listening() { # NAME PORT
	for ((i = 0; i < 500; i++)); do
		ip netns exec "$P" "$bin" ss --name "$1" -ltn 2>/dev/null >"$TMP/ss" && grep -q ":$2 " "$TMP/ss" && return 0
		sleep 0.02
	done
	echo "preload.sh: $1 does not listen on $2" >&2
	exit 1
}
gbits() { # iperf3 log: the receiver's average, in Gbit/s
	awk '/receiver$/ { for (i = 2; i <= NF; i++) if ($i ~ /bits\/sec$/) { v = $(i - 1);
		u = substr($i, 1, 1); g = u == "G" ? v : u == "M" ? v / 1000 : v / 1e6 } } END { printf "%.2f", g }' "$1"
}
rps() { tr '\r' '\n' <"$1" | sed -n "s/^$2: \([0-9.]*\) requests per second.*/\1/p" | tail -1; }

# iperf3 client: over ustack and over the kernel, to P's server, both directions
ip netns exec "$P" iperf3 -s -D -I "$TMP/iperf.pid"
listening "$P" 5201
PIDS="$(cat "$TMP/iperf.pid")"
"${RUN[@]}" -- iperf3 -c 192.0.2.1 -t "$SECS" >"$TMP/u_c.log" 2>&1
"${RUN[@]}" -- iperf3 -c 192.0.2.1 -t "$SECS" -R >"$TMP/u_cr.log" 2>&1
ip netns exec "$K" iperf3 -c 198.51.100.1 -t "$SECS" >"$TMP/k_c.log" 2>&1
ip netns exec "$K" iperf3 -c 198.51.100.1 -t "$SECS" -R >"$TMP/k_cr.log" 2>&1
kill "$PIDS"; PIDS=

# iperf3 server: over ustack, and over the kernel in K; P's client
"${RUN[@]}" --name bench-iperf -- iperf3 -s -B 192.0.2.2 >"$TMP/u_s.log" 2>&1 &
PIDS=$!
ustack_listening bench-iperf 5201
ip netns exec "$P" iperf3 -c 192.0.2.2 -t "$SECS" >"$TMP/u_sc.log" 2>&1
ip netns exec "$P" iperf3 -c 192.0.2.2 -t "$SECS" -R >"$TMP/u_scr.log" 2>&1
kill -TERM "$PIDS"; wait "$PIDS" 2>/dev/null || true
ip netns exec "$K" iperf3 -s -D -I "$TMP/iperf.pid"
listening "$K" 5201
PIDS="$(cat "$TMP/iperf.pid")"
ip netns exec "$P" iperf3 -c 198.51.100.2 -t "$SECS" >"$TMP/k_sc.log" 2>&1
ip netns exec "$P" iperf3 -c 198.51.100.2 -t "$SECS" -R >"$TMP/k_scr.log" 2>&1
kill "$PIDS"; PIDS=

# redis: redis-benchmark as the program under test against P's server, and redis-server as
# the program under test under P's redis-benchmark
RB=(-q -n 100000 -c 50 -t set,get)
ip netns exec "$P" redis-server --port 6379 --save '' --appendonly no --protected-mode no >/dev/null 2>&1 &
PIDS=$!
listening "$P" 6379
"${RUN[@]}" -- redis-benchmark -h 192.0.2.1 "${RB[@]}" >"$TMP/u_rb.log" 2>&1
ip netns exec "$K" redis-benchmark -h 198.51.100.1 "${RB[@]}" >"$TMP/k_rb.log" 2>&1
kill "$PIDS"; wait "$PIDS" 2>/dev/null || true
"${RUN[@]}" --name bench-redis -- redis-server --bind 192.0.2.2 --save '' --appendonly no --protected-mode no >/dev/null 2>&1 &
PIDS=$!
ustack_listening bench-redis 6379
ip netns exec "$P" redis-benchmark -h 192.0.2.2 "${RB[@]}" >"$TMP/u_rs.log" 2>&1
kill -TERM "$PIDS"; wait "$PIDS" 2>/dev/null || true
ip netns exec "$K" redis-server --port 6379 --save '' --appendonly no --protected-mode no >/dev/null 2>&1 &
PIDS=$!
listening "$K" 6379
ip netns exec "$P" redis-benchmark -h 198.51.100.2 "${RB[@]}" >"$TMP/k_rs.log" 2>&1
kill "$PIDS"; wait "$PIDS" 2>/dev/null || true; PIDS=

printf 'programs over ustack (TAP) and over the kernel (veth), the Linux kernel as the peer, %s s per iperf3 run\n' "$SECS"
printf '  %-44s %14s %14s\n' "" "over ustack" "over kernel"
printf '  %-44s %10s Gb/s %10s Gb/s\n' "iperf3 client, sending" "$(gbits "$TMP/u_c.log")" "$(gbits "$TMP/k_c.log")"
printf '  %-44s %10s Gb/s %10s Gb/s\n' "iperf3 client -R, receiving" "$(gbits "$TMP/u_cr.log")" "$(gbits "$TMP/k_cr.log")"
printf '  %-44s %10s Gb/s %10s Gb/s\n' "iperf3 server, receiving" "$(gbits "$TMP/u_sc.log")" "$(gbits "$TMP/k_sc.log")"
printf '  %-44s %10s Gb/s %10s Gb/s\n' "iperf3 server (client -R), sending" "$(gbits "$TMP/u_scr.log")" "$(gbits "$TMP/k_scr.log")"
for t in SET GET; do
	printf '  %-44s %12s/s %12s/s\n' "redis-benchmark (client) $t, -c 50" "$(rps "$TMP/u_rb.log" $t)" "$(rps "$TMP/k_rb.log" $t)"
done
for t in SET GET; do
	printf '  %-44s %12s/s %12s/s\n' "redis-server under redis-benchmark $t, -c 50" "$(rps "$TMP/u_rs.log" $t)" "$(rps "$TMP/k_rs.log" $t)"
done
