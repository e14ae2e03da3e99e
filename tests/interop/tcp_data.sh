#!/usr/bin/env bash
# Real peer: data transfer and teardown between ustack (`ustack nc`) and the Linux kernel over a
# TAP device, both directions: 50 MB each way with SHA-256 compared at both ends, curl and
# OpenBSD nc against ustack, many connections against one stack, the same under loss (in a
# router namespace) and duplication (nftables: this kernel has no netem), and a Linux client
# that finds ustack's accept queue full.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: tcp_data.sh PATH-TO-ustack}
interop_require
for c in python3 curl nc nft sha256sum; do command -v $c >/dev/null || skip "no $c"; done
interop_setup
MB=${USTACK_TEST_MB:-50}
BYTES=$((MB * 1024 * 1024))
LINK=(--tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)
head -c "$BYTES" /dev/urandom >"$TMP/data.bin"
want=$(sha256sum <"$TMP/data.bin" | cut -d' ' -f1)
nsx() { ip netns exec "$NS" "$@"; }

# linux_send PORT FILE [NETNS]: a Linux client (in NS unless given) that connects to ustack
# (once: the caller has waited for ustack's "listening" line), sends FILE, half-closes, reads to
# the end, and prints the milliseconds from connect() to the end of ustack's stream.
linux_send() {
	ip netns exec "${3:-$NS}" timeout 120 python3 - "$1" "$2" <<'PY'
import socket, sys, time
with open(sys.argv[2], "rb") as f:
    data = f.read()
s = socket.create_connection(("192.0.2.2", int(sys.argv[1])), timeout=10)
start = time.monotonic()
s.settimeout(60)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16):
    pass
s.close()
print(round((time.monotonic() - start) * 1000))
PY
}


# impaired [FAMILY]: packets the impairment rules matched (dropped or duplicated)
impaired() { nsx nft list table "${1:-netdev}" impair | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'; }


# 1. ustack → Linux: 50 MB from stdin of `ustack nc`, hashed by a Linux server
linux_sink 9001 >"$TMP/sink.out" &
sink=$!
wait_for_listener "$NS" 9001 10 "$sink"
nsx timeout 120 "$bin" nc -v "${LINK[@]}" 192.0.2.1 9001 <"$TMP/data.bin" 2>"$TMP/nc1.err"
wait "$sink"
cat "$TMP/sink.out"
read -r n sum opts _ <"$TMP/sink.out"
ms=$(sed -n 's/.* ms=//p' "$TMP/sink.out")
[ "$n" -eq "$BYTES" ] && [ "$sum" = "$want" ] || { echo "FAIL: ustack → Linux: $n bytes, sha256 $sum"; exit 1; }
[ "$opts" = "options=0x7" ] || { echo "FAIL: Linux negotiated $opts with ustack, want ts+sack+wscale"; exit 1; }
grep -q "mss 1448, wscale yes, sack yes, timestamps yes" "$TMP/nc1.err" || { cat "$TMP/nc1.err"; echo "FAIL: ustack's options"; exit 1; }
echo "ok 1: ustack → Linux, $MB MB, sha256 equal, ${ms} ms"

# 2. Linux → ustack: 50 MB into `ustack nc -l`, compared with what was sent
ip netns exec "$NS" timeout 120 "$bin" nc -l -v "${LINK[@]}" 9002 </dev/null >"$TMP/got.bin" 2>"$TMP/nc2.err" &
ncpid=$!
nc_listening "$ncpid" "$TMP/nc2.err" 9002
ms=$(linux_send 9002 "$TMP/data.bin")
rc=0
wait "$ncpid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$TMP/nc2.err"; echo "FAIL: ustack nc -l exited $rc"; exit 1; }
got=$(sha256sum <"$TMP/got.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "FAIL: Linux → ustack: sha256 $got, want $want"; exit 1; }
echo "ok 2: Linux → ustack, $MB MB, sha256 equal, ${ms} ms"

# 3. curl (HTTP/1.0 over Linux's TCP) against `ustack nc -l` serving one canned response
printf 'HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello, curl\n' >"$TMP/resp"
ip netns exec "$NS" timeout 30 "$bin" nc -l -v "${LINK[@]}" 8080 <"$TMP/resp" >"$TMP/req" 2>"$TMP/nc3.err" &
ncpid=$!
nc_listening "$ncpid" "$TMP/nc3.err" 8080
body=$(nsx timeout 20 curl -sS http://192.0.2.2:8080/hi)
wait "$ncpid" || { cat "$TMP/nc3.err"; echo "FAIL: ustack nc -l (curl)"; exit 1; }
[ "$body" = "hello, curl" ] || { echo "FAIL: curl got '$body'"; exit 1; }
grep -q "GET /hi HTTP/1.1" "$TMP/req" || { echo "FAIL: ustack did not receive curl's request"; exit 1; }
echo "ok 3: curl ⇄ ustack nc -l"

# 4. OpenBSD nc (Linux) → ustack --serve echo, and OpenBSD nc -l (Linux) ← ustack nc
head -c 300000 /dev/urandom >"$TMP/small.bin"
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 60 "$bin" nc -l --serve echo "${LINK[@]}" 7 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
nc_serving "$USTACK_PID" "$TMP/ustack.out" 7
for i in $(seq 20); do
	nsx timeout 20 nc -N -w 10 192.0.2.2 7 <"$TMP/small.bin" >"$TMP/echo.bin"
	cmp -s "$TMP/small.bin" "$TMP/echo.bin" || { echo "FAIL: echo $i differs"; exit 1; }
done
ustack_stop >/dev/null
[ "$(counter TcpPassiveOpens)" -ge 20 ] || { echo "FAIL: TcpPassiveOpens $(counter TcpPassiveOpens)"; exit 1; }
ip netns exec "$NS" timeout 30 nc -l -N 192.0.2.1 9004 >"$TMP/nc4.out" </dev/null &
lnc=$!
wait_for_listener "$NS" 9004 10 "$lnc"
echo "hello from ustack" | nsx timeout 20 "$bin" nc "${LINK[@]}" 192.0.2.1 9004
wait "$lnc"
[ "$(cat "$TMP/nc4.out")" = "hello from ustack" ] || { echo "FAIL: Linux nc -l got '$(cat "$TMP/nc4.out")'"; exit 1; }
echo "ok 4: OpenBSD nc ⇄ ustack (20 echo connections to one stack, and ustack → nc -l)"

# 5. --serve send:N, checked by the Linux client against the counting pattern
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 60 "$bin" nc -l --serve send:$BYTES "${LINK[@]}" 9005 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
nc_serving "$USTACK_PID" "$TMP/ustack.out" 9005
nsx timeout 60 python3 - "$BYTES" <<'PY'
import array, hashlib, socket, sys
n = int(sys.argv[1])
want = hashlib.sha256(array.array("I", range((n + 3) // 4)).tobytes()[:n]).hexdigest()
s = socket.create_connection(("192.0.2.2", 9005), timeout=10)
s.settimeout(30)
s.shutdown(socket.SHUT_WR)
h, got = hashlib.sha256(), 0
while True:
    d = s.recv(1 << 16)
    if not d:
        break
    h.update(d)
    got += len(d)
if got != n or h.hexdigest() != want:
    sys.exit(f"FAIL: send:{n} gave {got} bytes, sha256 {h.hexdigest()}")
PY
ustack_stop >/dev/null
echo "ok 5: ustack --serve send:$BYTES, pattern verified by Linux"

# 6. Impairment between ustack and Linux: 5% loss each way in the forward path of a router
#    namespace (nftables numgen: this kernel has no netem), then 1% duplication on tap0
interop_router
nsx nft -f - <<'NFT'
table inet impair {
	chain forward_impair { type filter hook forward priority 0; numgen random mod 100 < 5 counter drop; }
}
NFT
IMB=$((MB / 5))
head -c $((IMB * 1024 * 1024)) "$TMP/data.bin" >"$TMP/part.bin"
pwant=$(sha256sum <"$TMP/part.bin" | cut -d' ' -f1)
peerx() { ip netns exec "$NS2" "$@"; }
peer_retrans() {
	peerx cat /proc/net/snmp | awk '$1 == "Tcp:" { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }'
}
GWLINK=("${LINK[@]}" --gw 192.0.2.1)
linux_sink 9006 "$NS2" 198.51.100.2 >"$TMP/sink.out" &
sink=$!
wait_for_listener "$NS2" 9006 10 "$sink"
nsx timeout 120 "$bin" nc -v "${GWLINK[@]}" 198.51.100.2 9006 <"$TMP/part.bin" 2>"$TMP/nc6.err"
wait "$sink"
read -r n sum _ <"$TMP/sink.out"
[ "$sum" = "$pwant" ] || { echo "FAIL: lossy ustack → Linux: $n bytes, sha256 $sum"; exit 1; }
r=$(awk '$1 == "TcpRetransSegs" { print $2 }' "$TMP/nc6.err")
[ "${r:-0}" -gt 0 ] || { cat "$TMP/nc6.err"; echo "FAIL: ustack counted no retransmissions under loss"; exit 1; }
echo "ok 6a: 5% loss, ustack → Linux, $IMB MB equal, ustack TcpRetransSegs $r"
before=$(peer_retrans)
ip netns exec "$NS" timeout 120 "$bin" nc -l -v "${GWLINK[@]}" 9007 </dev/null >"$TMP/got.bin" 2>"$TMP/nc7.err" &
ncpid=$!
nc_listening "$ncpid" "$TMP/nc7.err" 9007
linux_send 9007 "$TMP/part.bin" "$NS2" >/dev/null
wait "$ncpid" || { cat "$TMP/nc7.err"; echo "FAIL: lossy Linux → ustack"; exit 1; }
[ "$(sha256sum <"$TMP/got.bin" | cut -d' ' -f1)" = "$pwant" ] || { echo "FAIL: lossy Linux → ustack data"; exit 1; }
after=$(peer_retrans)
[ "$after" -gt "$before" ] || { echo "FAIL: Linux counted no retransmissions under loss ($before → $after)"; exit 1; }
dropped=$(impaired inet)
echo "ok 6b: 5% loss, Linux → ustack, $IMB MB equal, Linux TcpRetransSegs +$((after - before)) (nftables dropped $dropped)"
nsx nft delete table inet impair
# every 100th frame Linux sends is duplicated (numgen inc: exactly 1%, not a dice roll that may
# come up empty), each frame one segment (gso_max_segs 1) so that the rule sees segments
nsx ip link set tap0 gso_max_segs 1
nsx nft -f - <<'NFT'
table netdev impair {
	chain out { type filter hook egress device "tap0" priority 0; numgen inc mod 100 == 0 counter dup to "tap0"; }
}
NFT
ip netns exec "$NS" timeout 120 "$bin" nc -l -v "${LINK[@]}" 9008 </dev/null >"$TMP/got.bin" 2>"$TMP/nc8.err" &
ncpid=$!
nc_listening "$ncpid" "$TMP/nc8.err" 9008
linux_send 9008 "$TMP/part.bin" >/dev/null
wait "$ncpid" || { cat "$TMP/nc8.err"; echo "FAIL: duplicating Linux → ustack"; exit 1; }
[ "$(sha256sum <"$TMP/got.bin" | cut -d' ' -f1)" = "$pwant" ] || { echo "FAIL: duplicating Linux → ustack data"; exit 1; }
dups=$(impaired)
[ "$dups" -gt 0 ] || { echo "FAIL: nftables duplicated nothing"; exit 1; }
echo "ok 6c: 1% duplication, Linux → ustack, $IMB MB equal ($dups packets duplicated)"
nsx nft delete table netdev impair
nsx ip link set tap0 gso_max_segs 65535

# 6d. 50 ms of delay each way with 25% of frames reordered (sent at once, ahead of the delayed
#     ones) — netem's "delay 50ms reorder 25%", applied by ustack's TAP driver (--impair)
#     because this kernel lacks sch_netem; 4 MB each way (about 30 round trips of 128 KB)
RMB=4
head -c $((RMB * 1024 * 1024)) "$TMP/data.bin" >"$TMP/part.bin"
pwant=$(sha256sum <"$TMP/part.bin" | cut -d' ' -f1)
IMPAIR=(--impair delay=50,reorder=25,seed=7)
linux_sink 9010 >"$TMP/sink.out" &
sink=$!
wait_for_listener "$NS" 9010 10 "$sink"
nsx timeout 120 "$bin" nc -v "${LINK[@]}" "${IMPAIR[@]}" 192.0.2.1 9010 <"$TMP/part.bin" 2>"$TMP/nc10.err"
wait "$sink"
read -r n sum _ <"$TMP/sink.out"
[ "$sum" = "$pwant" ] || { cat "$TMP/nc10.err"; echo "FAIL: delayed+reordered ustack → Linux: $n bytes"; exit 1; }
reord=$(awk '$1 == "TcpExtTCPSACKReorder" { print $2 }' "$TMP/nc10.err")
[ "${reord:-0}" -gt 0 ] || { cat "$TMP/nc10.err"; echo "FAIL: ustack saw no reordering"; exit 1; }
echo "ok 6d: delay 50 ms + 25% reordering, ustack → Linux, $RMB MB equal (ustack TCPSACKReorder $reord)"
ip netns exec "$NS" timeout 120 "$bin" nc -l -v "${LINK[@]}" "${IMPAIR[@]}" 9011 </dev/null >"$TMP/got.bin" 2>"$TMP/nc11.err" &
ncpid=$!
nc_listening "$ncpid" "$TMP/nc11.err" 9011
linux_send 9011 "$TMP/part.bin" >/dev/null
wait "$ncpid" || { cat "$TMP/nc11.err"; echo "FAIL: delayed+reordered Linux → ustack"; exit 1; }
[ "$(sha256sum <"$TMP/got.bin" | cut -d' ' -f1)" = "$pwant" ] || { echo "FAIL: delayed+reordered Linux → ustack data"; exit 1; }
ofo=$(awk '$1 == "TcpExtTCPOFOQueue" { print $2 }' "$TMP/nc11.err")
[ "${ofo:-0}" -gt 0 ] || { cat "$TMP/nc11.err"; echo "FAIL: ustack queued nothing out of order"; exit 1; }
echo "ok 6e: delay 50 ms + 25% reordering, Linux → ustack, $RMB MB equal (ustack TCPOFOQueue $ofo)"

# 6f. Nothing is lost when ustack nc exits: after its close, the stack runs on until the
#     peer has acknowledged the data and the FIN (as a kernel goes on after a process ends).
#     A Linux server that half-closes first, then reads to the end; ustack nc sends 2,000,000
#     bytes over 20 ms of delay each way and exits 0 only once all of it and its FIN are in.
head -c 2000000 "$TMP/data.bin" >"$TMP/two.bin"
twant=$(sha256sum <"$TMP/two.bin" | cut -d' ' -f1)
nsx timeout 60 python3 - >"$TMP/half.out" <<'PY' &
import hashlib, socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", 9012))
l.listen(1)
c, _ = l.accept()
c.shutdown(socket.SHUT_WR)
h, n = hashlib.sha256(), 0
while d := c.recv(1 << 16):
    h.update(d)
    n += len(d)
print(n, h.hexdigest(), flush=True)
PY
half=$!
wait_for_listener "$NS" 9012 10 "$half"
rc=0; nsx timeout 60 "$bin" nc "${LINK[@]}" --impair delay=20 192.0.2.1 9012 <"$TMP/two.bin" 2>"$TMP/nc12.err" || rc=$?
wait "$half"
read -r n sum <"$TMP/half.out"
[ "$rc" -eq 0 ] && [ "$n" -eq 2000000 ] && [ "$sum" = "$twant" ] || {
	cat "$TMP/nc12.err"; echo "FAIL: ustack nc exited $rc; the half-closed Linux server got $n bytes"; exit 1; }
echo "ok 6f: ustack nc → a Linux server that half-closed first, 20 ms away: all 2000000 bytes and the FIN"
#     And through loss, reordering and delay to OpenBSD nc -l -N (which half-closes at once)
nsx timeout 60 nc -l -N 192.0.2.1 9013 >"$TMP/nc13.out" </dev/null &
obsd=$!
wait_for_listener "$NS" 9013 10 "$obsd"
rc=0; nsx timeout 60 "$bin" nc "${LINK[@]}" --impair loss=3,reorder=10,delay=5,seed=3 192.0.2.1 9013 \
	<"$TMP/two.bin" 2>"$TMP/nc13.err" || rc=$?
wait "$obsd" || { echo "FAIL: OpenBSD nc -l -N saw no end of the stream"; exit 1; }
[ "$rc" -eq 0 ] && cmp -s "$TMP/two.bin" "$TMP/nc13.out" || {
	cat "$TMP/nc13.err"; echo "FAIL: ustack nc exited $rc; nc -l -N got $(stat -c %s "$TMP/nc13.out") bytes"; exit 1; }
echo "ok 6g: ustack nc → OpenBSD nc -l -N with 3% loss, 10% reordering, 5 ms delay: all 2000000 bytes"

# 7. A full accept queue: backlog 1 (the queue holds 2), the application busy for 3 s.  Linux
#    clients see their connect() succeed and their request wait — slowness, not an error —
#    and all complete once the application accepts (ustack drops the extra final ACKs and
#    resends its SYN-ACKs, as Linux does).
#    Timed from ustack's own "serving" line, printed just before its 3 s without accept(), not
#    from anyone's start-up (under load the clients' start can lag the server's by seconds):
#    the clients start first, say "ready", and poll for that line; the time it was written is
#    the earlier of the file's mtime (it is the file's only write before the first accept) and
#    the moment they saw it.  So they also send their SYNs within ~10 ms of the line, while the
#    application is still busy.
: >"$TMP/ustack.out"
nsx timeout 60 python3 - "$TMP/ustack.out" >"$TMP/clients.out" 2>&1 <<'PY' &
import os, socket, sys, threading, time
path = sys.argv[1]
line = "ustack nc: serving on port 9009\n"
print("ready", flush=True)
deadline = time.monotonic() + 30
while True:  # bounded: 30 s in 10 ms steps
    with open(path) as f:
        if line in f.read():
            seen = time.time()  # after the read that found it: not before the write
            break
    if time.monotonic() > deadline:
        sys.exit("FAIL: ustack printed no serving line in 30 s")
    time.sleep(0.01)
start = min(seen, os.stat(path).st_mtime)
results = []
def client(i):
    s = socket.create_connection(("192.0.2.2", 9009), timeout=20)
    connected = time.time() - start
    s.settimeout(30)
    s.sendall(b"hello %d" % i)
    got = s.recv(100)
    results.append((i, got, connected, time.time() - start))
    s.close()
ts = [threading.Thread(target=client, args=(i,)) for i in range(5)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for r in sorted(results):
    print("client %d got %r: connected after %.2f s, served after %.2f s" % r)
if len(results) != 5 or any(g != b"hello %d" % i for i, g, _, _ in results):
    sys.exit("FAIL: not every client was served")
if min(t for _, _, _, t in results) < 2.5:
    sys.exit("FAIL: served before the application accepted?")
PY
clients=$!
wait_for_line "$TMP/clients.out" "^ready$" 30 "$clients"
ip netns exec "$NS" timeout 60 "$bin" nc -l --serve echo --backlog 1 --accept-delay 3000 "${LINK[@]}" 9009 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
rc=0
wait "$clients" || rc=$?
cat "$TMP/clients.out"
[ "$rc" -eq 0 ] || { cat "$TMP/ustack.out"; echo "FAIL: the clients of the full accept queue (exit $rc)"; exit 1; }
ustack_stop >/dev/null
[ "$(counter TcpExtListenOverflows)" -gt 0 ] || { echo "FAIL: no ListenOverflows counted"; exit 1; }
echo "ok 7: full accept queue: 5 Linux clients delayed, not refused (ListenOverflows $(counter TcpExtListenOverflows))"
echo "PASS: data transfer between ustack and Linux"
