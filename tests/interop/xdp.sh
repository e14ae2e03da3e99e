#!/usr/bin/env bash
# Real peer over AF_XDP: ustack owns one end of a veth pair (queue 0, by its own XDP program),
# the Linux kernel has the other end in a namespace of its own.  ARP and ping; handshakes both
# ways with the options each side saw; bulk data both ways, checked byte for byte; the same in
# generic (skb) mode and busy-polling; an unmodified program under `ustack run --xdp`; the
# program gone from the interface once ustack has exited, however it exited; jumbo frames.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: xdp.sh PATH-TO-ustack}
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"
command -v ip >/dev/null || skip "no iproute2"
command -v python3 >/dev/null || skip "no python3"
command -v ethtool >/dev/null || skip "no ethtool"

NS="ustack-xdp-$$"
NS2="$NS-peer"
TMP=$(mktemp -d)
USTACK_PID=
trap interop_cleanup EXIT
ip netns add "$NS"
ip netns add "$NS2"
ip -n "$NS" link set lo up
ip -n "$NS2" link set lo up
ip -n "$NS" link add veth0 type veth peer name veth1 netns "$NS2"
ip -n "$NS2" addr add 192.0.2.1/24 dev veth1
ip -n "$NS2" link set veth1 up
# AF_XDP carries no checksum state: Linux must send complete checksums (xdp.c's comment)
ip netns exec "$NS2" ethtool -K veth1 tx off >/dev/null
# veth0 has no address: every frame on it is ustack's, through the XDP socket

# xdp_start ARGS...: `ustack up --xdp veth0` in NS, until it says it is up (or cannot be)
xdp_start() {
	ip netns exec "$NS" timeout 120 "$bin" up --xdp veth0 --addr 192.0.2.2/24 "$@" >"$TMP/ustack.out" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$TMP/ustack.out" "^ustack: AF_XDP on veth0|cannot open an XDP socket" 10 "$USTACK_PID"
	if grep -q "cannot open an XDP socket" "$TMP/ustack.out"; then
		cat "$TMP/ustack.out"
		wait "$USTACK_PID" || true
		USTACK_PID=
		skip "this kernel or sandbox refuses XDP"
	fi
}

# no_program: once ustack has exited, the interface has no XDP program (the BPF link went
# with the process)
no_program() {
	local i
	for ((i = 0; i < 100; i++)); do
		ip -n "$NS" -d link show veth0 | grep -q "prog/xdp" || return 0
		sleep 0.02
	done
	ip -n "$NS" -d link show veth0
	echo "FAIL: an XDP program is still attached after ustack exited"
	exit 1
}

# linux_server PORT OUT: a python3 server in NS2, in the background ($server), whose body (read
# from stdin) runs with c, the first connection to 192.0.2.1:PORT, and peer, its address; its
# output to OUT.  Returns once the port listens.
linux_server() {
	local port=$1 out=$2 body
	body=$(cat)
	ip netns exec "$NS2" timeout 60 python3 -c "
import hashlib, socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('192.0.2.1', $port))
l.listen(8)
l.settimeout(30)
c, peer = l.accept()
c.settimeout(30)
$body" >"$out" 2>&1 &
	server=$!
	wait_for_listener "$NS2" "$port" 10 "$server"
}

# 1. native mode: ARP, ping, a Linux client's handshake with the options both sides saw
xdp_start --listen 80
grep -qE "^ustack: AF_XDP on veth0 queue 0, native, copy(, multi-buffer)?$" "$TMP/ustack.out" ||
	{ cat "$TMP/ustack.out"; echo "FAIL: want native mode on veth"; exit 1; }
ip -n "$NS" -d link show veth0 | grep -q "prog/xdp.*name ustack_xsk" ||
	{ ip -n "$NS" -d link show veth0; echo "FAIL: ustack's XDP program is not attached"; exit 1; }
wait_for_line "$TMP/ustack.out" "^ustack: listening on port 80$" 10 "$USTACK_PID"
ip netns exec "$NS2" ping -c 3 -i 0.2 -W 2 192.0.2.2
ip netns exec "$NS2" timeout 20 python3 - <<'PY'
import socket, sys
s = socket.create_connection(("192.0.2.2", 80), timeout=5)
ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
opts, scales = ti[5], ti[6]
mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
print(f"linux: options {opts:#x} snd_wscale {scales & 15} mss {mss}")
if opts & 7 != 7 or scales & 15 != 10 or mss != 1448:
    sys.exit("FAIL: want timestamps, SACK, window scale 10 and mss 1448 from ustack")
s.close()
PY
wait_for_line "$TMP/ustack.out" "mss 1448, wscale yes, sack yes, timestamps yes" 10 "$USTACK_PID"
ustack_stop
[ "$(counter TcpPassiveOpens)" -eq 1 ] || { echo "FAIL: TcpPassiveOpens"; exit 1; }
[ "$(counter IcmpInEchos)" -eq 3 ] || { echo "FAIL: IcmpInEchos"; exit 1; }
[ "$(counter TcpInCsumErrors)" -eq 0 ] || { echo "FAIL: checksum errors"; exit 1; }
[ "$(counter xdp_rx_frames)" -gt 0 ] && [ "$(counter xdp_tx_frames)" -gt 0 ] ||
	{ echo "FAIL: the driver's counters"; exit 1; }
no_program

# 2. bulk both ways, byte for byte: ustack sends 32 MiB of its pattern, Linux sends 32 MiB
#    that ustack echoes back (nc --serve echo), each checked by the Linux side
BYTES=$((32 * 1024 * 1024))
bulk() { # bulk MODE-ARGS...: one round of each direction against `ustack nc -l --serve`
	ip netns exec "$NS" timeout 120 "$bin" nc -l --serve "send:$BYTES" --xdp veth0 "$@" --addr 192.0.2.2/24 \
		5001 >"$TMP/send.out" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$TMP/send.out" "serving on port 5001" 10 "$USTACK_PID"
	ip netns exec "$NS2" timeout 60 python3 - "$BYTES" <<'PY'
import socket, sys
n = int(sys.argv[1])
s = socket.create_connection(("192.0.2.2", 5001), timeout=10)
got = 0
buf = bytearray(1 << 16)
while True:
    r = s.recv_into(buf)
    if not r:
        break
    got += r
print(f"ustack -> linux: {got} bytes")
if got != n:
    sys.exit(f"FAIL: want {n} bytes")
PY
	kill -TERM "$USTACK_PID"
	wait "$USTACK_PID" || { cat "$TMP/send.out"; echo "FAIL: nc --serve send"; exit 1; }
	USTACK_PID=
	# its receive buffer (so the window Linux sends into) below what the UMEM's fill ring
	# holds at 1500 (4096 frames), so that only a leak of frames makes the kernel drop
	ip netns exec "$NS" timeout 120 "$bin" nc -l --serve echo --xdp veth0 "$@" --addr 192.0.2.2/24 \
		-o "net.ipv4.tcp_rmem=4096 131072 4194304" 5002 >"$TMP/echo.out" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$TMP/echo.out" "serving on port 5002" 10 "$USTACK_PID"
	ip netns exec "$NS2" timeout 60 python3 - "$BYTES" <<'PY'
import hashlib, os, socket, sys, threading
n = int(sys.argv[1])
data = os.urandom(1 << 20) * (n >> 20)
s = socket.create_connection(("192.0.2.2", 5002), timeout=10)
def writer():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer)
t.start()
h = hashlib.sha256()
got = 0
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    h.update(b)
    got += len(b)
t.join()
print(f"linux -> ustack -> linux: {got} bytes")
if got != n or h.digest() != hashlib.sha256(data).digest():
    sys.exit("FAIL: the echo differs from what was sent")
PY
	kill -TERM "$USTACK_PID"
	wait "$USTACK_PID" || { cat "$TMP/echo.out"; echo "FAIL: nc --serve echo"; exit 1; }
	USTACK_PID=
	grep -E "^(TcpInCsumErrors|TcpRetransSegs|xdp_)" "$TMP/send.out" "$TMP/echo.out" || true
	if grep -q "^TcpInCsumErrors" "$TMP/echo.out"; then echo "FAIL: checksum errors"; exit 1; fi
	# every UMEM frame received goes back to the fill ring: the kernel finds one to receive
	# into (a leak shows as its drops, xdp_rx_dropped, climbing toward every frame sent;
	# the window above keeps a slow ustack from dropping any)
	awk '$1 == "xdp_rx_frames" { f = $2 } $1 == "xdp_rx_dropped" { d = $2 }
	     END { if (d * 20 > f) { print "FAIL: xdp_rx_dropped " d " of " f " frames"; exit 1 } }' "$TMP/echo.out"
}
bulk
no_program
# TCP's checksums left to the kernel (TX metadata in copy mode, Linux 6.11): every data segment
# ustack sent.  And right: with veth0's checksum offload off the kernel completes each one in
# software (validate_xmit_skb) and Linux, given CHECKSUM_NONE, verifies every one; a wrong
# partial sum stalls the transfer (the bulk round fails) and counts in TcpInCsumErrors
IFS=. read -r kmaj kmin _ < <(uname -r)
if ((kmaj > 6 || (kmaj == 6 && kmin >= 11))); then
	awk '$1 == "xdp_tx_csum_offload" { c = $2 } $1 == "xdp_tx_frames" { f = $2 }
	     END { if (c * 10 < f * 9) { print "FAIL: xdp_tx_csum_offload " c " of " f " frames"; exit 1 } }' \
		"$TMP/send.out"
	ip netns exec "$NS" ethtool -K veth0 tx off >/dev/null
	peer_csum0=$(ip netns exec "$NS2" nstat -az TcpInCsumErrors | awk '$1 == "TcpInCsumErrors" { print $2 }')
	bulk
	peer_csum1=$(ip netns exec "$NS2" nstat -az TcpInCsumErrors | awk '$1 == "TcpInCsumErrors" { print $2 }')
	[ "$peer_csum0" = "$peer_csum1" ] ||
		{ echo "FAIL: Linux counted checksum errors ($peer_csum0 -> $peer_csum1)"; exit 1; }
	ip netns exec "$NS" ethtool -K veth0 tx on >/dev/null
	no_program
else
	echo "no TX metadata before Linux 6.11: checksums computed by ustack (not checked here)"
fi

# 3. generic (skb) mode and busy-polling: the same traffic
bulk --xdp-mode skb --busy-poll
grep -q "^xdp_rx_frames" "$TMP/echo.out" || { echo "FAIL: no frames in skb mode"; exit 1; }
no_program

# 4. ustack's client to a Linux server (the device's own MAC by default)
linux_server 8080 "$TMP/server.out" <<'PY'
print("linux accepted", peer[0], c.recv(100).decode())
PY
ip netns exec "$NS" timeout 20 "$bin" connect --xdp veth0 --addr 192.0.2.2/24 --send hello 192.0.2.1 8080 |
	tee "$TMP/connect.out"
wait "$server"
cat "$TMP/server.out"
grep -q "linux accepted 192.0.2.2 hello" "$TMP/server.out" || { echo "FAIL: Linux did not get the data"; exit 1; }
mac=$(ip -n "$NS" link show veth0 | awk '/link\/ether/ { print $2 }')
ip -n "$NS2" neigh show 192.0.2.2 | grep -q "$mac" ||
	{ ip -n "$NS2" neigh show; echo "FAIL: ustack did not answer with veth0's MAC $mac"; exit 1; }
no_program

# 5. an unmodified program over AF_XDP (ustack run; the preload library opens the socket)
if [ "${USTACK_NO_PRELOAD:-}" != 1 ]; then
	linux_server 8081 "$TMP/server2.out" <<'PY'
c.sendall(b"over xdp\n")
c.close()
PY
	out=$(ip netns exec "$NS" timeout 20 "$bin" run --xdp veth0 --addr 192.0.2.2/24 -- \
		python3 -c 'import socket; s = socket.create_connection(("192.0.2.1", 8081)); print(s.recv(100).decode().strip())')
	wait "$server"
	echo "ustack run: $out"
	[ "$out" = "over xdp" ] || { echo "FAIL: the program over ustack run --xdp"; exit 1; }
	no_program

	# 5b. a program that waits in select() for room to write, as iperf3's sender does: the
	#     library's select takes the device's frames on the program's thread and sleeps with
	#     the device in its wait (run to completion); a timer's SIGALRM interrupts the waits
	#     (EINTR, which python retries) all along; 24 MB, sha256 equal at the Linux end
	linux_server 8082 "$TMP/server3.out" <<'PY'
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 18)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest())
PY
	sent=$(ip netns exec "$NS" timeout 60 "$bin" run --xdp veth0 --addr 192.0.2.2/24 -- python3 -c '
import hashlib, os, select, signal, socket
signal.signal(signal.SIGALRM, lambda *a: None)
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
data = os.urandom(24 << 20)
s = socket.create_connection(("192.0.2.1", 8082))
s.setblocking(False)
off = 0
while off < len(data):
    _, w, _ = select.select([s], [s], [], 10)
    assert w, "select timed out with the socket not writable"
    try:
        off += s.send(data[off:off + (1 << 17)])
    except BlockingIOError:
        pass
signal.setitimer(signal.ITIMER_REAL, 0)
s.setblocking(True)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(len(data), hashlib.sha256(data).hexdigest())') || true
	wait "$server" || true
	echo "ustack run, select() writer: sent $sent; Linux got $(cat "$TMP/server3.out")"
	[ -n "$sent" ] && [ "$sent" = "$(cat "$TMP/server3.out")" ] ||
		{ echo "FAIL: the select() writer over ustack run --xdp"; exit 1; }
	no_program

	# 5c. blocking calls, a thread per connection, as simple servers and clients are written:
	#     four threads each blocked in recv() on its own connection in turn, while SIGALRM
	#     every 2 ms interrupts them (python installs handlers without SA_RESTART and retries
	#     the EINTR).  The library's blocking wait takes the device's frames on one of them
	#     and sleeps with the device in its wait, the others woken through it; every echo
	#     must come back whole
	linux_server 8083 "$TMP/server4.out" <<'PY'
import threading
def echo(x):
    while b := x.recv(1 << 16):
        x.sendall(b)
cs = [c] + [l.accept()[0] for _ in range(3)]
ts = [threading.Thread(target=echo, args=(x,)) for x in cs]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("echoed on", len(cs))
PY
	rr=$(ip netns exec "$NS" timeout 60 "$bin" run --xdp veth0 --addr 192.0.2.2/24 -- python3 -c '
import os, signal, socket, threading
signal.signal(signal.SIGALRM, lambda *a: None)
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
ok = []
def client(k):
    s = socket.create_connection(("192.0.2.1", 8083))
    for i in range(1500):
        m = os.urandom(1 + (i * 7919 + k) % 20000)
        s.sendall(m)
        got = b""
        while len(got) < len(m):
            b = s.recv(len(m) - len(got))
            assert b, "the echo ended early"
            got += b
        assert got == m, "the echo differs"
    s.close()
    ok.append(k)
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
signal.setitimer(signal.ITIMER_REAL, 0)
print("round trips on", len(ok))') || true
	wait "$server" || true
	echo "ustack run, blocking threads: $rr; Linux: $(cat "$TMP/server4.out")"
	[ "$rr" = "round trips on 4" ] && [ "$(cat "$TMP/server4.out")" = "echoed on 4" ] ||
		{ echo "FAIL: blocking threads over ustack run --xdp"; exit 1; }
	no_program
fi

# 6. a second instance on the same queue is refused while the first runs: EBUSY, said
xdp_start
if ip netns exec "$NS" timeout 20 "$bin" up --xdp veth0 --addr 192.0.2.3/24 >"$TMP/second.out" 2>&1; then
	echo "FAIL: a second instance took the queue"; exit 1
fi
cat "$TMP/second.out"
grep -q "ustack up: --xdp: veth0: cannot open an XDP socket on queue 0: Device or resource busy" "$TMP/second.out" ||
	{ echo "FAIL: want EBUSY said"; exit 1; }
# ... and a killed instance leaves nothing behind (ustack itself, not the timeout(1) above it)
pid=$(pgrep -P "$USTACK_PID" -x ustack)
kill -KILL "$pid"
wait "$USTACK_PID" 2>/dev/null || true
USTACK_PID=
no_program

# 7. jumbo frames (AF_XDP multi-buffer, Linux 6.6): the veth pair at 9000 and then IPv4's
#    largest MTU; ustack takes the interface's MTU, says multi-buffer, and both bulk rounds
#    cross byte for byte in segments no UMEM frame could hold (TcpInSegs and TcpOutSegs well
#    under one per 4 KB), Linux's MSS the MTU's, received chains taken in place
IFS=. read -r kmaj kmin _ < <(uname -r)
if ((kmaj > 6 || (kmaj == 6 && kmin >= 6))); then
	for mtu in 9000 65535; do
		ip -n "$NS" link set veth0 mtu "$mtu"
		ip -n "$NS2" link set veth1 mtu "$mtu"
		xdp_start --listen 80
		grep -qE "^ustack: AF_XDP on veth0 queue 0, native, copy, multi-buffer$" "$TMP/ustack.out" ||
			{ cat "$TMP/ustack.out"; echo "FAIL: want multi-buffer at MTU $mtu"; exit 1; }
		wait_for_line "$TMP/ustack.out" "^ustack: listening on port 80$" 10 "$USTACK_PID"
		ip netns exec "$NS2" timeout 20 python3 - "$mtu" <<'PY'
import socket, sys
want = int(sys.argv[1]) - 40 - 12
s = socket.create_connection(("192.0.2.2", 80), timeout=5)
mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
print(f"linux: mss {mss} at MTU {sys.argv[1]}")
# Linux bounds its MSS by half the largest window the peer has offered (tcp_bound_to_half_wnd):
# at 65535 the bound is ustack's first window, one segment of 64 KB, not the MTU
if mss != want and not (want > 32768 and 16384 < mss < want):
    sys.exit(f"FAIL: want mss {want}")
PY
		ustack_stop
		bulk
		for f in "$TMP/send.out:TcpOutSegs" "$TMP/echo.out:TcpInSegs"; do
			n=$(awk -v c="${f#*:}" '$1 == c { print $2 }' "${f%%:*}")
			[ -n "$n" ] && [ "$n" -lt $((BYTES / 4096)) ] ||
				{ echo "FAIL: ${f#*:} = $n at MTU $mtu: want jumbo segments"; exit 1; }
		done
		# a received frame's parts lie end to end in the UMEM and go to the stack where they
		# are (src/link/xdp.c, xdp_rx_data): copied together only where the frames lent for
		# receiving wrap around, about one frame in every 4096 / parts a frame
		awk '$1 == "xdp_rx_frames" { f = $2 } $1 == "xdp_rx_gathered" { g = $2 }
		     END { if (!f || g * 20 > f) { print "FAIL: xdp_rx_gathered " g " of " f " frames"; exit 1 } }' "$TMP/echo.out"
		no_program
	done
fi
echo "PASS"
