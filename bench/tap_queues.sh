#!/usr/bin/env bash
# A multi-queue TAP device: ustack on 1, 2 and 4 queues (`--queues N`, a thread each) against
# Linux clients in the same run, alternating, ROUNDS times:
#   connections/s — bench_connrate (CONC connections at once: connect, 64 bytes each way,
#   close) against bench_connrate's epoll echo server under `ustack run`, with the machine's
#   CPU per connection (client, server, the kernel's side);
#   bulk — STREAMS Linux clients at once, each reading MB megabytes from `--serve send:N`;
#   and the same two loads against Linux itself across a veth pair.
# Needs root; makes its own namespace (documentation addresses only) and removes it.
#
#   bench/tap_queues.sh BUILD-DIR [rounds] [seconds] [concurrency] [streams] [megabytes]
set -euo pipefail
build=${1:?usage: tap_queues.sh BUILD-DIR [rounds] [seconds] [concurrency] [streams] [megabytes]}
ROUNDS=${2:-2}
SECS=${3:-5}
CONC=${4:-64}
STREAMS=${5:-4}
MB=${6:-256}
bin=$build/ustack
connrate=$build/bench/bench_connrate
[ -x "$bin" ] && [ -x "$connrate" ] || { echo "no $bin or $connrate (build first)"; exit 1; }
NS=ustack-benchq-$$
NS2=ustack-benchq2-$$
PID=
out=$(mktemp)
cleanup() {
	[ -z "$PID" ] || { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$NS2" 2>/dev/null || true
	rm -f "$out"
}
trap cleanup EXIT
# A fresh namespace for every measurement: the Linux client's TIME_WAIT sockets of one run
# would lengthen its port search (__inet_hash_connect) in the next.  The Linux peer for the
# same loads is NS2 across a veth pair (default offloads), as bench/xdp.sh compares.
fresh_ns() {
	ip netns del "$NS" 2>/dev/null || true
	ip netns del "$NS2" 2>/dev/null || true
	ip netns add "$NS"
	ip netns add "$NS2"
	ip -n "$NS" link set lo up
	ip -n "$NS2" link set lo up
	ip -n "$NS" tuntap add dev tapm mode tap multi_queue
	ip -n "$NS" addr add 192.0.2.1/24 dev tapm
	ip -n "$NS" link set tapm up
	ip -n "$NS" link add veth0 type veth peer name veth1 netns "$NS2"
	ip -n "$NS" addr add 198.51.100.1/24 dev veth0
	ip -n "$NS2" addr add 198.51.100.2/24 dev veth1
	ip -n "$NS" link set veth0 up
	ip -n "$NS2" link set veth1 up
	# The client's ports: the widest range, and its TIME_WAIT ports reused when timestamps
	# allow (tcp_tw_reuse=1; the default 2 is for loopback only).  Without, its connect()s run
	# out of even ports (Linux leaves odd ones to bind) after ~32,000 connections, whatever the
	# server, and the figure is the client's.  Every variant alike.
	ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
}

# wait_line FILE REGEX: bounded (10 s), and only while the server lives
wait_line() {
	local i
	for ((i = 0; i < 500; i++)); do
		grep -qE "$2" "$1" && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.02
	done
	echo "no '$2' from the server:"
	cat "$1"
	exit 1
}
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
LINK=(--tap tapm --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)
serve() { # QUEUES WHAT: `ustack nc`'s server on the device's first QUEUES queues
	ip netns exec "$NS" timeout 300 "$bin" nc -l --serve "$2" --queues "$1" "${LINK[@]}" 7 >"$out" 2>&1 &
	PID=$!
	wait_line "$out" "serving on port"
}
serve_echo() { # QUEUES: bench_connrate's epoll echo server under `ustack run` (`ustack nc
	# --serve` has a thread a connection: its thread creation would be the measure)
	ip netns exec "$NS" timeout 300 "$bin" run --queues "$1" "${LINK[@]}" -- "$connrate" -l 7 >"$out" 2>&1 &
	PID=$!
	wait_line "$out" "serving on port"
}
stop() {
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
}

# connrate_q QUEUES | linux: the load generator against ustack on QUEUES queues, or against
# the same echo server on Linux in NS2
connrate_q() {
	fresh_ns
	local host=192.0.2.2 label="$1 queue$([ "$1" = 1 ] && echo " " || echo s)"
	if [ "$1" = linux ]; then
		ip netns exec "$NS2" timeout 300 "$connrate" -l 7 >"$out" 2>&1 &
		PID=$!
		wait_line "$out" "serving on port"
		host=198.51.100.2 label="Linux (veth)"
	else
		serve_echo "$1"
	fi
	local t0 t1 r
	t0=$(busy_ticks)
	r=$(ip netns exec "$NS" "$connrate" -c "$CONC" -d "$SECS" "$host" 7)
	t1=$(busy_ticks)
	stop
	awk -v l="$label" -v r="$r" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${r%% *}" 'BEGIN {
		printf "connections/s, %s: %s", l, r
		if (n > 0) printf "; machine %.1f us CPU a connection", t * 1e6 / hz / n
		printf "\n" }'
}

# bulk_q QUEUES | linux: STREAMS readers at once from ustack's send:N server, or from a python3
# server on Linux in NS2 that sends the same
bulk_q() {
	local bytes=$((MB * 1024 * 1024))
	fresh_ns
	local host=192.0.2.2 label="ustack → Linux, $STREAMS streams, $1 queue$([ "$1" = 1 ] && echo " " || echo s)"
	if [ "$1" = linux ]; then
		ip netns exec "$NS2" timeout 300 python3 -c '
import socket, sys, threading
size = int(sys.argv[1])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.51.100.2", 7))
l.listen(64)
print("serving on port 7", flush=True)
block = bytes(1 << 18)
def send(c):
    left = size
    while left:
        left -= c.send(memoryview(block)[:min(left, len(block))])
    c.close()
while True:
    threading.Thread(target=send, args=(l.accept()[0],)).start()
' "$bytes" >"$out" 2>&1 &
		PID=$!
		wait_line "$out" "serving on port"
		host=198.51.100.2 label="Linux → Linux (veth), $STREAMS streams"
	else
		serve "$1" "send:$bytes"
	fi
	local r
	r=$(ip netns exec "$NS" python3 - "$STREAMS" "$bytes" "$host" <<'PY'
import socket, sys, threading, time
n, size, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = [0] * n
def reader(i):
    s = socket.create_connection((host, 7), timeout=10)
    s.shutdown(socket.SHUT_WR)
    buf = bytearray(1 << 18)
    while True:
        r = s.recv_into(buf)
        if not r:
            break
        got[i] += r
ts = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
t = time.monotonic()
for th in ts:
    th.start()
for th in ts:
    th.join()
dt = time.monotonic() - t
print("%d MiB in %.3f s = %.2f Gbit/s%s" % (sum(got) >> 20, dt, sum(got) * 8 / dt / 1e9,
      "" if all(g == size for g in got) else " (SHORT)"))
PY
)
	stop
	echo "bulk $label: $r"
}

echo "# $(date -u +%F) $(uname -r), $(nproc) cores; $CONC connections at once, $STREAMS streams of $MB MiB"
for ((round = 1; round <= ROUNDS; round++)); do
	for q in 1 2 4 linux; do connrate_q $q; done
	for q in 1 2 4 linux; do bulk_q $q; done
done
