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
sleep 0.2
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
for _ in $(seq 100); do
	ip netns exec "$NS" ss -tln | grep -q ':8080' && break
	sleep 0.05
done
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
#    with the default linear timeouts), as Linux 6.18 does
ip -n "$NS" route add blackhole 192.0.2.2/32
start=$(date +%s%N)
if out=$(ip netns exec "$NS" timeout 20 "$bin" connect --tap tap0 --mac $MAC --addr 192.0.2.2/24 \
	-o net.ipv4.tcp_syn_retries=2 192.0.2.1 8080 2>&1); then
	echo "FAIL: connect through a blackhole succeeded"; exit 1
fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "$out (after $ms ms)"
case "$out" in *"Connection timed out"*) ;; *) echo "FAIL: want ETIMEDOUT"; exit 1 ;; esac
[ "$ms" -ge 6900 ] && [ "$ms" -lt 10000 ] || { echo "FAIL: ETIMEDOUT after $ms ms, want ~7000"; exit 1; }
echo "PASS: TCP handshakes between ustack and Linux"
