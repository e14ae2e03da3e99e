#!/usr/bin/env bash
# Real peer: TCP Fast Open (RFC 7413) between ustack and the Linux kernel over a TAP device, both
# directions.  Each time two connections from one client: the first SYN asks for a cookie, the
# SYN-ACK brings one, and the second SYN carries the cookie and data.  Checked on the wire
# (tcpdump on the Linux side: option 34 empty, then with an 8-byte cookie; the second SYN's
# payload) and by both sides' counters.
#   a) Linux client (TCP_FASTOPEN_CONNECT) → `ustack nc -l --serve echo --fastopen`
#   b) `ustack connect --fastopen --send TEXT -c 2` → Linux listener with TCP_FASTOPEN
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: tcp_fastopen.sh PATH-TO-ustack}
interop_require
for c in python3 ss tcpdump nstat; do command -v $c >/dev/null || skip "no $c"; done
interop_setup
LINK=(--tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)
nsx() { ip netns exec "$NS" "$@"; }
# Linux's Fast Open: client (0x1) and server (0x2), in this namespace only
nsx sysctl -qw net.ipv4.tcp_fastopen=3

# linux_counter NAME: a TcpExt counter of the namespace's kernel (absolute, history untouched)
linux_counter() { nsx nstat -asz "$1" | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'; }

# capture_start NAME: tcpdump on tap0 (the Linux side) into $TMP/NAME.pcap, once it listens;
# --immediate-mode and -U: each packet is in the file as soon as it is seen
capture_start() {
	ip netns exec "$NS" timeout 60 tcpdump --immediate-mode -U -n -i tap0 -w "$TMP/$1.pcap" tcp \
		>"$TMP/$1.tcpdump" 2>&1 &
	TCPDUMP_PID=$!
	wait_for_line "$TMP/$1.tcpdump" "listening on tap0" 10 "$TCPDUMP_PID"
}
# capture_stop NAME: once the file holds the 4 SYNs and SYN-ACKs (bounded: 10 s), ends the
# capture and prints them as tcpdump reads them
capture_stop() {
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(tcpdump -n -r "$TMP/$1.pcap" 'tcp[tcpflags] & tcp-syn != 0' 2>/dev/null | wc -l)" -ge 4 ] && break
		sleep 0.02
	done
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	tcpdump -n -r "$TMP/$1.pcap" 'tcp[tcpflags] & tcp-syn != 0' 2>/dev/null || true
}

# check_wire PCAP PORT: the SYNs to PORT and the SYN-ACKs from it, by connection (the client's
# port; a retransmission, if any, is shown and belongs to its connection): two connections, the
# first one's SYN with an empty Fast Open option (kind 34, length 2) and no data, answered by a
# SYN-ACK with an 8-byte cookie; the second one's SYN with that cookie and data, answered by a
# SYN-ACK that acknowledges the data.
check_wire() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
port = int(sys.argv[2])
e = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
off, conns = 24, {}
while off + 16 <= len(data):
    _, _, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
    f = data[off + 16:off + 16 + caplen]
    off += 16 + caplen
    if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
        continue
    ihl = (f[14] & 15) * 4
    t = 14 + ihl
    sport, dport, seq, ack = struct.unpack(">HHII", f[t:t + 12])
    doff, flags = (f[t + 12] >> 4) * 4, f[t + 13]
    if not flags & 0x02:
        continue
    plen = struct.unpack(">H", f[16:18])[0] - ihl - doff
    opts, i, fo = f[t + 20:t + doff], 0, None
    while i < len(opts):
        k = opts[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if k == 34:
            fo = opts[i + 2:i + opts[i + 1]]
        i += opts[i + 1]
    kind = "SYN-ACK" if flags & 0x10 else "SYN"
    client = dport if kind == "SYN-ACK" else sport
    if (kind == "SYN" and dport == port) or (kind == "SYN-ACK" and sport == port):
        conns.setdefault(client, {"SYN": [], "SYN-ACK": []})[kind].append((seq, ack, plen, fo))
        print(f"port {client} {kind:7} seq {seq} ack {ack} payload {plen} fastopen "
              + ("-" if fo is None else f"cookie {fo.hex()}" if fo else "cookie request"))
def fail(msg):
    sys.exit("FAIL: " + msg)
if len(conns) != 2 or any(not c["SYN"] or not c["SYN-ACK"] for c in conns.values()):
    fail(f"want 2 connections with a SYN and a SYN-ACK each, saw {len(conns)}")
first, second = conns.values()  # in the order of their first SYN
if first["SYN"][0][3] != b"" or first["SYN"][0][2] != 0:
    fail("the first SYN is no cookie request (an empty option 34, no data)")
cookies = [sa[3] for sa in first["SYN-ACK"] if sa[3]]
if not cookies or len(cookies[0]) != 8:
    fail(f"no SYN-ACK of the first connection brought an 8-byte cookie: {cookies!r}")
cookie = cookies[0]
seq, _, plen, fo = second["SYN"][0]
if fo != cookie:
    fail(f"the second SYN's option 34 is {fo!r}, want the cookie {cookie.hex()}")
if plen <= 0:
    fail("the second SYN carries no data")
if second["SYN-ACK"][0][1] != (seq + 1 + plen) & 0xffffffff:
    fail("the second SYN-ACK does not acknowledge the SYN's data")
print(f"wire: cookie request, cookie {cookie.hex()}, then a SYN with it and {plen} bytes, acknowledged")
PY
}

# a) Linux client → ustack server with Fast Open on its listener
capture_start a
: >"$TMP/ustack.out"
ip netns exec "$NS" timeout 60 "$bin" nc -l --serve echo --fastopen "${LINK[@]}" 7 >"$TMP/ustack.out" 2>&1 &
USTACK_PID=$!
wait_for_line "$TMP/ustack.out" "^ustack nc: serving on port 7$" 10 "$USTACK_PID"
before=$(linux_counter TcpExtTCPFastOpenActive)
nsx timeout 30 python3 - <<'PY'
import socket, sys
TCP_FASTOPEN_CONNECT = getattr(socket, "TCP_FASTOPEN_CONNECT", 30)
TCPI_OPT_SYN_DATA = 32
for i in (1, 2):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1)
    s.settimeout(10)
    s.connect(("192.0.2.2", 7))  # deferred to the first write once a cookie is cached
    msg = b"hello from Linux, connection %d" % i
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(100)
        if not d:
            break
        got += d
    opts = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]
    s.close()
    print(f"linux: connection {i}: echoed {got!r}, SYN data acknowledged: {bool(opts & TCPI_OPT_SYN_DATA)}")
    if got != msg:
        sys.exit("FAIL: the echo differs")
    if (i == 2) != bool(opts & TCPI_OPT_SYN_DATA):
        sys.exit(f"FAIL: connection {i}: TCPI_OPT_SYN_DATA {bool(opts & TCPI_OPT_SYN_DATA)}")
PY
after=$(linux_counter TcpExtTCPFastOpenActive)
ustack_stop
capture_stop a
check_wire "$TMP/a.pcap" 7
[ "$after" -eq $((before + 1)) ] || { echo "FAIL: Linux TcpExtTCPFastOpenActive $before → $after, want +1"; exit 1; }
[ "$(counter TcpExtTCPFastOpenPassive)" -eq 1 ] || { echo "FAIL: ustack TcpExtTCPFastOpenPassive $(counter TcpExtTCPFastOpenPassive), want 1"; exit 1; }
[ "$(counter TcpExtTCPFastOpenCookieReqd)" -eq 1 ] || { echo "FAIL: ustack TcpExtTCPFastOpenCookieReqd, want 1"; exit 1; }
echo "ok a: Linux → ustack: Linux TcpExtTCPFastOpenActive +1, ustack TcpExtTCPFastOpenPassive 1"

# b) ustack client → Linux listener with TCP_FASTOPEN; both connections from one ustack
#    process, whose stack keeps the cookie
capture_start b
ip netns exec "$NS" timeout 60 python3 - >"$TMP/server.out" 2>&1 <<'PY' &
import socket
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
l.bind(("192.0.2.1", 8080))
l.listen(8)
l.settimeout(30)
for i in (1, 2):
    c, peer = l.accept()
    c.settimeout(10)
    got = b""
    while True:
        d = c.recv(100)
        if not d:
            break
        got += d
    c.close()
    print(f"linux accepted {peer[0]}: {got!r}", flush=True)
PY
server=$!
wait_for_listener "$NS" 8080 10 "$server"
before=$(linux_counter TcpExtTCPFastOpenPassive)
nsx timeout 60 "$bin" connect --fastopen --send "hello from ustack" -c 2 "${LINK[@]}" 192.0.2.1 8080 | tee "$TMP/connect.out"
wait "$server"
cat "$TMP/server.out"
after=$(linux_counter TcpExtTCPFastOpenPassive)
capture_stop b
check_wire "$TMP/b.pcap" 8080
[ "$(grep -c "linux accepted 192.0.2.2: b'hello from ustack'" "$TMP/server.out")" -eq 2 ] ||
	{ echo "FAIL: Linux did not get the data twice"; exit 1; }
[ "$(grep -c "fast open: data in the SYN, acknowledged by the SYN-ACK" "$TMP/connect.out")" -eq 1 ] ||
	{ echo "FAIL: ustack's second connection (only) should report its SYN data acknowledged"; exit 1; }
[ "$after" -eq $((before + 1)) ] || { echo "FAIL: Linux TcpExtTCPFastOpenPassive $before → $after, want +1"; exit 1; }
echo "ok b: ustack → Linux: Linux TcpExtTCPFastOpenPassive +1"
echo "PASS: TCP Fast Open between ustack and Linux"
