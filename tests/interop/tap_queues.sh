#!/usr/bin/env bash
# Real peer: a multi-queue TAP device (IFF_MULTI_QUEUE, `--queues N`), the Linux kernel on the
# other side.  ustack on four queues, a thread each, serving 64 concurrent echo connections
# from Linux: every byte back, and every queue carrying frames both ways; one connection with
# all its frames, each way, on one queue (ustack's steering program makes the kernel pick the
# queue ustack writes the flow on).  ustack's own client over two queues
# to a Linux sink; a program under `ustack run --queues 2` serving Linux clients; and the
# refusals: a one-queue device, --queues with --xdp, a count out of range.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: tap_queues.sh PATH-TO-ustack}
interop_require
for c in python3 ping; do command -v $c >/dev/null || skip "no $c"; done
interop_setup
export USTACK_RUN_DIR="$TMP/run"
nsx() { ip netns exec "$NS" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
# what this script starts besides ustack (USTACK_PID), ended with it on any exit
sink= runpid=
trap '[ -z "$sink$runpid" ] || kill $sink $runpid 2>/dev/null; interop_cleanup' EXIT
nsx ip tuntap add dev tapm mode tap multi_queue
nsx ip addr add 203.0.113.1/24 dev tapm
nsx ip link set tapm up
LINK=(--tap tapm --mac 02:00:00:00:00:03 --addr 203.0.113.2/24)

# echo_clients N PORT: N concurrent Linux connections to ustack's echo server on PORT, each
# sending 64 KB of its own and reading back exactly that.
echo_clients() {
	nsx timeout 60 python3 - "$1" "$2" <<'PY'
import os, socket, sys, threading
n, port = int(sys.argv[1]), int(sys.argv[2])
errors = []
def client(i):
    try:
        data = os.urandom(65536)
        s = socket.create_connection(("203.0.113.2", port), timeout=20)
        s.settimeout(30)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        if bytes(got) != data:
            errors.append("client %d: %d bytes back, not its 65536" % (i, len(got)))
    except OSError as e:
        errors.append("client %d: %s" % (i, e))
ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    sys.exit("FAIL: " + "; ".join(errors[:5]))
print("%d clients echoed" % n)
PY
}

# 1. Four queues, 64 connections: all echoed, each queue read and written
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 90 "$bin" nc -l --serve echo --queues 4 "${LINK[@]}" 7 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
nc_serving "$USTACK_PID" "$TMP/ustack.out" 7
echo_clients 64 7
ustack_stop >/dev/null
[ "$(counter TcpPassiveOpens)" -ge 64 ] || fail "TcpPassiveOpens $(counter TcpPassiveOpens)"
for q in 0 1 2 3; do
	rx=$(counter tap_queue${q}_rx_frames)
	tx=$(counter tap_queue${q}_tx_frames)
	# with 64 flows hashed over 4 queues, a queue without one has odds of (3/4)^64, 1e-8
	[ "$rx" -gt 0 ] && [ "$tx" -gt 0 ] || { grep tap_queue "$TMP/ustack.out"; fail "queue $q: $rx frames in, $tx out"; }
done
[ "$(counter tap_queue4_rx_frames)" -eq 0 ] || fail "a fifth queue?"
echo "ok 1: 64 Linux clients echoed by ustack on 4 queues, each queue carrying frames both ways"

# one_queue_each_way WHAT: in ustack's printed counts, each queue past the first carried WHAT's
# frames both ways or not at all, and at most one of them did (queue 0 has ARP besides)
one_queue_each_way() {
	local q rx tx used=0
	[ "$(counter tap_steering_ebpf)" -eq 1 ] || fail "the steering program was not attached"
	for q in 1 2 3; do
		rx=$(counter tap_queue${q}_rx_frames)
		tx=$(counter tap_queue${q}_tx_frames)
		{ [ "$rx" -gt 0 ] && [ "$tx" -gt 0 ]; } || { [ "$rx" -eq 0 ] && [ "$tx" -eq 0 ]; } ||
			{ grep tap_ "$TMP/ustack.out"; fail "$1, queue $q: $rx frames in, $tx out: the flow split"; }
		[ "$rx" -eq 0 ] || used=$((used + 1))
	done
	[ "$used" -le 1 ] || { grep tap_ "$TMP/ustack.out"; fail "$1 on $used queues past the first"; }
}

# 1b. The pairing itself, which the spread above would show without it: one connection, and
#     every frame of it, each way, on one queue — the kernel's SYN included, which tun's own
#     steering (a flow table learnt from our writes) would put on a queue of its hash's.  ARP
#     rides queue 0 each way.  Needs ustack's steering program loaded (root has CAP_BPF).
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 90 "$bin" nc -l --serve echo --queues 4 "${LINK[@]}" 7 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
nc_serving "$USTACK_PID" "$TMP/ustack.out" 7
echo_clients 1 7
ustack_stop >/dev/null
one_queue_each_way "one connection"
echo "ok 1b: one connection's frames on one queue both ways (steering program attached)"

# 1c. The program's other path: ICMP, by addresses alone — Linux's pings of 3000 bytes, each
#     request and reply in three fragments, all on one queue each way
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 90 "$bin" up --queues 4 "${LINK[@]}" >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
wait_for_line "$TMP/ustack.out" "^ustack: up" 10 "$USTACK_PID"
nsx ping -c 3 -i 0.2 -W 2 -s 3000 203.0.113.2 >/dev/null || fail "Linux's fragmented pings over 4 queues"
ustack_stop >/dev/null
[ "$(counter IpReasmOKs)" -ge 3 ] || fail "IpReasmOKs $(counter IpReasmOKs): the pings were not fragmented"
one_queue_each_way "fragmented pings"
echo "ok 1c: fragmented ICMP echoes on one queue each way"

# 2. ustack's client on two queues → a Linux sink: 4 MB, counted and hashed by the sink
head -c 4194304 /dev/urandom >"$TMP/data.bin"
want=$(sha256sum <"$TMP/data.bin" | cut -d' ' -f1)
linux_sink 9002 "$NS" 203.0.113.1 >"$TMP/sink.out" &
sink=$!
wait_for_listener "$NS" 9002 10 "$sink"
nsx timeout 60 "$bin" nc --queues 2 "${LINK[@]}" 203.0.113.1 9002 <"$TMP/data.bin"
wait "$sink" || { cat "$TMP/sink.out"; fail "the Linux sink"; }
sink=
read -r got_n got_sum _ <"$TMP/sink.out" || true
[ "$got_n $got_sum" = "4194304 $want" ] || fail "the sink got '$(cat "$TMP/sink.out")'"
echo "ok 2: ustack nc on 2 queues → Linux, 4 MB intact"

# 3. A program under `ustack run --queues 2`: python3's threaded echo server, 32 clients
# (not under the sanitizers: an instrumented library cannot be preloaded, CMake says so)
if [ "${USTACK_NO_PRELOAD:-}" != 1 ] && [ -r "$(dirname "$bin")/libustack-preload.so" ]; then
	ip netns exec "$NS" timeout 60 "$bin" run --name q2 --queues 2 "${LINK[@]}" -- python3 -c '
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
# a backlog for 32 clients at once (socketserver'"'"'s default of 5 would overflow into SYN
# cookies, where a final ACK lost to a full accept queue is followed by data the cookie
# check refuses: a RST, from Linux as from ustack)
socketserver.ThreadingTCPServer.request_queue_size = 64
socketserver.ThreadingTCPServer(("203.0.113.2", 8007), Echo).serve_forever()
' >"$TMP/run.out" 2>&1 &
	runpid=$!
	for ((i = 0; ; i++)); do
		[[ "$(nsx "$bin" ss --name q2 -ltn 2>/dev/null)" =~ LISTEN[^$'\n']*:8007\  ]] && break
		kill -0 "$runpid" 2>/dev/null || { cat "$TMP/run.out"; fail "the program under ustack run exited"; }
		[ "$i" -lt 500 ] || { cat "$TMP/run.out"; fail "nothing listening on 8007 under ustack run after 10 s"; }
		sleep 0.02
	done
	echo_clients 32 8007
	kill -TERM "$runpid" 2>/dev/null || true
	wait "$runpid" 2>/dev/null || true
	runpid=
	echo "ok 3: python3 under ustack run --queues 2 echoed 32 Linux clients"
else
	echo "ok 3 # SKIP: no preloading (USTACK_NO_PRELOAD, or no libustack-preload.so beside $bin)"
fi

# 4. One queue of the multi_queue device, as a program that does not ask for more opens it
#    (ustack_tap_open: TUNSETIFF must say IFF_MULTI_QUEUE on such a device, and does)
nsx timeout 30 "$bin" ping "${LINK[@]}" -c 2 203.0.113.1 >/dev/null || fail "ping on one queue of tapm"
echo "ok 4: ustack ping on one queue of the multi_queue device"

# 5. Refusals: a one-queue device asked for two, --queues with --xdp, out of range
nsx ip tuntap add dev tap1q mode tap
rc=0
nsx timeout 10 "$bin" up --tap tap1q --queues 2 --addr 198.51.100.2/24 2>"$TMP/err" >/dev/null || rc=$?
[ "$rc" -ne 0 ] && grep -q -- "--queues: tap1q has one queue" "$TMP/err" || { cat "$TMP/err"; fail "a one-queue device (exit $rc)"; }
for bad in "--queues 0 --tap tapm" "--queues 257 --tap tapm" "--queues x --tap tapm" "--queues 2 --xdp tapm"; do
	rc=0
	# shellcheck disable=SC2086 # the options are words
	nsx timeout 10 "$bin" up $bad --addr 198.51.100.2/24 2>"$TMP/err" >/dev/null || rc=$?
	[ "$rc" -eq 2 ] && grep -q -- "--queues" "$TMP/err" || { cat "$TMP/err"; fail "'$bad' (exit $rc)"; }
done
echo "ok 5: refused: a one-queue device, --queues 0/257/x, --queues with --xdp"
echo "PASS: ustack on a multi-queue TAP device"
