#!/usr/bin/env bash
# Real peer: TCP handshakes between ustack and the Linux kernel over a TAP device, both
# directions, checking what each side negotiated; refused and timed-out connects.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: tcp_handshake.sh PATH-TO-ustack}
interop_require
command -v python3 >/dev/null || skip "no python3"
command -v ss >/dev/null || skip "no ss"
interop_setup
MAC=02:00:00:00:00:02

# 1. Linux client → ustack server (ustack's accept() runs on its own thread, woken by the stack)
ustack_start "$bin" --mac $MAC --listen 80
wait_for_line "$TMP/ustack.out" "^ustack: listening on port 80$" 10 "$USTACK_PID"
ip netns exec "$NS" timeout 20 python3 - <<'PY'
import socket, subprocess, sys
s = socket.create_connection(("192.0.2.2", 80), timeout=5)
print(subprocess.run(["ss", "-tin", "dst", "192.0.2.2"], capture_output=True, text=True).stdout)
# Linux's own view, from TCP_INFO: tcpi_options (byte 5) and the scales (byte 6)
ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
opts, scales = ti[5], ti[6]
mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
print(f"linux: options {opts:#x} snd_wscale {scales & 15} rcv_wscale {scales >> 4} mss {mss}")
if opts & 7 != 7:
    sys.exit("FAIL: Linux did not negotiate timestamps, SACK and window scaling with ustack")
if scales & 15 != 10 or mss != 1448:
    sys.exit("FAIL: want ustack's window scale 10 and mss 1448 seen by Linux")
s.close()
PY
# ustack's acceptor prints the connection and its options once accept() returns (the final ACK
# may still be on its way when Linux's connect() has returned)
wait_for_line "$TMP/ustack.out" "mss [0-9]+, wscale" 10 "$USTACK_PID"
ustack_stop
grep -q "accepted 192.0.2.1:" "$TMP/ustack.out" || { echo "FAIL: ustack accepted nothing"; exit 1; }
grep -q "mss 1448, wscale yes, sack yes, timestamps yes" "$TMP/ustack.out" || { echo "FAIL: options"; exit 1; }
[ "$(counter TcpPassiveOpens)" -eq 1 ] || { echo "FAIL: TcpPassiveOpens"; exit 1; }

# 2. ustack client → Linux server
ip netns exec "$NS" timeout 20 python3 - >"$TMP/server.out" 2>&1 <<'PY' &
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", 8080))
l.listen(8)
l.settimeout(15)
c, peer = l.accept()
print("linux accepted", peer[0])
PY
server=$!
wait_for_listener "$NS" 8080 10 "$server"
ip netns exec "$NS" timeout 20 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 192.0.2.1 8080 | tee "$TMP/connect.out"
wait "$server"
cat "$TMP/server.out"
grep -q "linux accepted 192.0.2.2" "$TMP/server.out" || { echo "FAIL: Linux did not accept"; exit 1; }
grep -q "mss 1448, wscale yes, sack yes, timestamps yes" "$TMP/connect.out" || { echo "FAIL: options"; exit 1; }

# 3. nobody listening: RST → ECONNREFUSED
if out=$(ip netns exec "$NS" timeout 20 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 192.0.2.1 9 2>&1); then
	echo "FAIL: connect to a closed port succeeded"; exit 1
fi
echo "$out"
case "$out" in *"Connection refused"*) ;; *) echo "FAIL: want ECONNREFUSED"; exit 1 ;; esac

# 4. a blackholed SYN (the kernel's replies to ustack are routed nowhere): ETIMEDOUT once the
#    time budget of tcp_syn_retries = 2 is spent ((2^3 - 1) = 7 s; SYNs at 0, 1, 2, 3, 4, 5 s
#    with the default linear timeouts), as Linux 6.18 does.  Timed from the event itself: from
#    the first SYN in ustack's capture (stamped in wall-clock time, as tcpdump's are) to the error's line
#    (the mtime of the file it is the only write to), not from the process's start-up.
ip -n "$NS" route add blackhole 192.0.2.2/32
start=$(date +%s%N)
if ip netns exec "$NS" timeout 20 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 \
	--pcap "$TMP/syn.pcap" -o net.ipv4.tcp_syn_retries=2 192.0.2.1 8080 >"$TMP/connect4.out" 2>&1; then
	cat "$TMP/connect4.out"
	echo "FAIL: connect through a blackhole succeeded"; exit 1
fi
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
out=$(cat "$TMP/connect4.out")
case "$out" in *"Connection timed out"*) ;; *) echo "$out"; echo "FAIL: want ETIMEDOUT"; exit 1 ;; esac
ms=$(python3 - "$TMP/syn.pcap" "$TMP/connect4.out" <<'PY'
import os, struct, sys
data = open(sys.argv[1], "rb").read()
for e in "<>":
    magic, = struct.unpack(e + "I", data[:4])
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        frac = 1e-6 if magic == 0xA1B2C3D4 else 1e-9
        break
else:
    sys.exit("FAIL: %s is not a pcap file" % sys.argv[1])
if struct.unpack(e + "I", data[20:24])[0] != 1:
    sys.exit("FAIL: capture is not Ethernet")
syn, off = None, 24
while off + 16 <= len(data):
    sec, sub, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
    f = data[off + 16:off + 16 + caplen]
    off += 16 + caplen
    if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
        continue
    tcp = 14 + (f[14] & 15) * 4
    if len(f) > tcp + 13 and f[tcp + 13] & 0x12 == 0x02:
        syn = sec + sub * frac
        break
if syn is None:
    sys.exit("FAIL: no SYN in ustack's capture")
print(round((os.stat(sys.argv[2]).st_mtime - syn) * 1000))
PY
)
echo "$out (after $ms ms from the first SYN; the process ran $run_ms ms)"
[ "$ms" -ge 6900 ] && [ "$ms" -lt 10000 ] || { echo "FAIL: ETIMEDOUT after $ms ms, want ~7000"; exit 1; }

# 5. a running client's connect follows `sysctl -w` at once, as Linux's does (tcp_write_timeout
#    reads tcp_syn_retries at every timeout): blackholed with the default tcp_syn_retries = 6 it
#    would retry for 127 s; `ss state syn-sent` lists it, then tcp_syn_retries = 2 through its
#    control socket ends it with ETIMEDOUT once 7 s from its first SYN have passed.
export USTACK_RUN_DIR="$TMP/run"
ip netns exec "$NS" timeout 60 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 --name cl \
	--pcap "$TMP/syn5.pcap" 192.0.2.1 8080 >"$TMP/connect5.out" 2>&1 &
client=$!
for ((i = 0; i < 250; i++)); do
	ip netns exec "$NS" "$bin" ss --name cl -tn state syn-sent >"$TMP/synsent.out" 2>/dev/null &&
		grep -qE '^0 +1 +192\.0\.2\.2:[0-9]+ +192\.0\.2\.1:8080 *$' "$TMP/synsent.out" && break
	kill -0 "$client" 2>/dev/null || break
	sleep 0.02
done
cat "$TMP/synsent.out"
# Send-Q 1: the SYN, as Linux's ss shows a connect in progress
grep -qE '^0 +1 +192\.0\.2\.2:[0-9]+ +192\.0\.2\.1:8080 *$' "$TMP/synsent.out" || {
	cat "$TMP/connect5.out"; echo "FAIL: ss state syn-sent does not list the connect (Recv-Q 0, Send-Q 1)"; exit 1; }
# and -i as Linux's ss -ti shows a connect in progress: nothing negotiated, the SYN unacked,
# TCP_MSS_DEFAULT less the timestamp option
ip netns exec "$NS" "$bin" ss --name cl -tnio state syn-sent | tee "$TMP/synsent_i.out"
grep -qE '^\s+cubic rto:[0-9]+ mss:524 pmtu:1500 rcvmss:88 advmss:1460 cwnd:10 segs_out:[1-9] .*unacked:1 ' \
	"$TMP/synsent_i.out" || { echo "FAIL: ss -ti of a connect in progress"; exit 1; }
ip netns exec "$NS" "$bin" sysctl --name cl -w net.ipv4.tcp_syn_retries=2
rc=0; wait "$client" || rc=$?
cat "$TMP/connect5.out"
[ "$rc" -ne 124 ] || { echo "FAIL: the connect outlived tcp_syn_retries = 2"; exit 1; }
grep -q "Connection timed out" "$TMP/connect5.out" || { echo "FAIL: want ETIMEDOUT"; exit 1; }
unset USTACK_RUN_DIR

# 6. the capture records the wire, not the stack's intentions: on a link that loses every frame
#    (--impair loss=100) ustack sends ARP requests and SYNs, and none of them reaches the wire,
#    so none is in the capture (as tcpdump on the TAP device would see nothing).
ip netns exec "$NS" timeout 20 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 \
	--impair loss=100 --pcap "$TMP/lost.pcap" -o net.ipv4.tcp_syn_retries=1 \
	192.0.2.1 8080 >"$TMP/connect6.out" 2>&1 && { cat "$TMP/connect6.out"; echo "FAIL: connect over a dead link succeeded"; exit 1; }
cat "$TMP/connect6.out"
size=$(stat -c %s "$TMP/lost.pcap")
[ "$size" -eq 24 ] || { echo "FAIL: a link that lost every frame left a $size-byte capture, want its 24-byte header only"; exit 1; }
echo "PASS: TCP handshakes between ustack and Linux"
