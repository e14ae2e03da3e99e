# Shared set-up for real-peer tests: a network namespace of the test's own, a TAP device in
# it with the Linux kernel on 192.0.2.1/24, and ustack on the other end as 192.0.2.2/24.
# Only documentation addresses, only inside the namespace made here; removed on exit.

skip() { echo "SKIP: $*"; exit 77; }

interop_require() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, TAP)"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	command -v ip >/dev/null || skip "no iproute2"
}

interop_setup() {
	NS="ustack-test-$$"
	TMP=$(mktemp -d)
	USTACK_PID=
	trap interop_cleanup EXIT
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" tuntap add dev tap0 mode tap
	ip -n "$NS" addr add 192.0.2.1/24 dev tap0
	ip -n "$NS" link set tap0 up
}

# Runs from the EXIT trap under the scripts' `set -e`: every step may fail (ustack may already
# have died, with a non-zero status) without stopping the ones after it, or the namespace
# would be left behind.
interop_cleanup() {
	if [ -n "${USTACK_PID:-}" ]; then
		kill -TERM "$USTACK_PID" 2>/dev/null || true
		wait "$USTACK_PID" 2>/dev/null || true
	fi
	ip netns del "$NS" 2>/dev/null || true
	[ -z "${NS2:-}" ] || ip netns del "$NS2" 2>/dev/null || true
	rm -rf "$TMP"
}

# interop_router: a second namespace NS2 with a Linux host on 198.51.100.2, joined by a veth
# pair to NS, which routes between it and ustack's 192.0.2.0/24 — so that drops in NS's forward
# path are loss on the wire for both ends (a drop on a host's own egress is reported back to
# its TCP, which then does not count a retransmission).
interop_router() {
	NS2="$NS-peer"
	ip netns add "$NS2"
	ip -n "$NS2" link set lo up
	ip -n "$NS" link add veth0 type veth peer name veth1 netns "$NS2"
	ip -n "$NS" addr add 198.51.100.1/24 dev veth0
	ip -n "$NS2" addr add 198.51.100.2/24 dev veth1
	ip -n "$NS" link set veth0 up
	ip -n "$NS2" link set veth1 up
	ip -n "$NS2" route add default via 198.51.100.1
	ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1
}

# Readiness, never a fixed sleep: each wait polls for the event itself (a line printed, a port
# listening) in a loop bounded both in count and in time, and fails the test once the time is up
# or the process that should have made it happen has exited.  The optional PID is that process.

# wait_for_line FILE REGEX TIMEOUT-S [PID]: until a line of FILE matches REGEX (grep -E).
wait_for_line() {
	local file=$1 re=$2 timeout=$3 pid=${4:-} i deadline
	deadline=$(($(date +%s%N) + timeout * 1000000000))
	for ((i = 0; i < timeout * 50; i++)); do
		grep -qE -- "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -qE -- "$re" "$file" 2>/dev/null && return 0
			break
		fi
		[ "$(date +%s%N)" -lt "$deadline" ] || break
		sleep 0.02
	done
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: process $pid exited without a line matching '$re' in $(basename "$file"):"
	else
		echo "FAIL: no line matching '$re' in $(basename "$file") within ${timeout} s:"
	fi
	cat "$file" 2>/dev/null
	exit 1
}

# wait_for_listener NETNS PORT TIMEOUT-S [PID]: until a TCP socket in NETNS listens on PORT.
wait_for_listener() {
	local ns=$1 port=$2 timeout=$3 pid=${4:-} i deadline
	deadline=$(($(date +%s%N) + timeout * 1000000000))
	for ((i = 0; i < timeout * 50; i++)); do
		[ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port")" ] && return 0
		[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || break
		[ "$(date +%s%N)" -lt "$deadline" ] || break
		sleep 0.02
	done
	echo "FAIL: nothing listening on port $port in $ns within ${timeout} s"
	exit 1
}

# linux_sink PORT [NETNS ADDR]: a Linux server (in NS on 192.0.2.1 unless given) that reads one
# connection to its end and prints "<bytes> <sha256>", the options Linux negotiated with
# ustack (TCP_INFO: tcpi_options, byte 5; scales, byte 6) and "ms=<accept to end of stream>".
linux_sink() {
	ip netns exec "${2:-$NS}" timeout 120 python3 - "$1" "${3:-192.0.2.1}" <<'PY'
import hashlib, socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[2], int(sys.argv[1])))
l.listen(1)
l.settimeout(30)
c, _ = l.accept()
start = time.monotonic()
c.settimeout(60)
ti = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    h.update(d)
    n += len(d)
c.close()
ms = round((time.monotonic() - start) * 1000)
print(n, h.hexdigest(), f"options={ti[5]:#x} snd_wscale={ti[6] & 15} ms={ms}", flush=True)
PY
}

# nc_listening PID FILE PORT: waits for `ustack nc -l -v` (PID, stderr in FILE) to listen on PORT.
nc_listening() { wait_for_line "$2" "^ustack nc: listening on port $3\$" 10 "$1"; }
# nc_serving PID FILE PORT: the same for `ustack nc -l --serve`.
nc_serving() { wait_for_line "$2" "^ustack nc: serving on port $3\$" 10 "$1"; }

# ustack_start BIN [extra args...]: runs `ustack up` on tap0 in the namespace, bounded in time,
# and returns once it has printed that it is up (its listener, with --listen, exists by then).
ustack_start() {
	local bin=$1
	shift
	ip netns exec "$NS" timeout 120 "$bin" up --tap tap0 --addr 192.0.2.2/24 "$@" >"$TMP/ustack.out" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$TMP/ustack.out" "^ustack: up" 10 "$USTACK_PID"
}

# ustack_stop: SIGTERM, wait, and expect a clean exit.
ustack_stop() {
	kill -TERM "$USTACK_PID"
	local rc=0
	wait "$USTACK_PID" || rc=$?
	USTACK_PID=
	cat "$TMP/ustack.out"
	[ "$rc" -eq 0 ] || { echo "FAIL: ustack exited with $rc"; exit 1; }
}

# counter NAME: a counter's value from the output of a stopped ustack (0 if absent).
counter() {
	awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' "$TMP/ustack.out"
}
