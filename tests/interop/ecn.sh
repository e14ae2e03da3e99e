#!/usr/bin/env bash
# Real peer: ECN (RFC 3168, Linux's classic ECN) between ustack and the Linux kernel over a TAP
# device, both directions, checked on the wire (tcpdump on the Linux side) and by Linux's
# TCP_INFO and `ss -tnio` ("ecn": negotiated, "ecnseen": an ECT segment came from ustack; the
# iproute2 6.1 ss here shows ts, sack, ecn and ecnseen only with -o).
#   a) Linux client (tcp_ecn=1) → `ustack nc -l --serve echo` (default tcp_ecn=2): Linux's SYN
#      [SEW], ustack's SYN-ACK [S.E], then data both ways ECT(0), pure ACKs not ECT
#   b) `ustack nc -o net.ipv4.tcp_ecn=1` → Linux server (default tcp_ecn=2): ustack's SYN [SEW],
#      Linux's SYN-ACK [S.E], data both ways ECT(0), pure ACKs not ECT
#   c) Linux client (tcp_ecn=1) → ustack with tcp_ecn=0: a plain SYN-ACK, nothing ECT
#   d) `ustack nc -o net.ipv4.tcp_ecn=1` → Linux server with tcp_ecn=0: a plain SYN-ACK, and
#      ustack marks nothing ECT
#   e) as a), with nftables marking CE the first data segments each way: ustack echoes ECE until
#      Linux's CWR, and answers Linux's ECE with CWR (skipped without nft)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: ecn.sh PATH-TO-ustack}
interop_require
for c in python3 ss tcpdump; do command -v $c >/dev/null || skip "no $c"; done
interop_setup
LINK=(--tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)
nsx() { ip netns exec "$NS" "$@"; }
# 64 KiB each way: dozens of full-sized data segments, and pure ACKs, from each side
head -c 65536 /dev/urandom >"$TMP/data.bin"
TCPDUMP_PID=
SERVER_PID=

# capture_start NAME PORT: tcpdump on tap0 (the Linux side) into $TMP/NAME.pcap, once it listens;
# --immediate-mode and -U: each packet is in the file as soon as it is seen.  Headers only
# (-s 256) and an 8 MiB buffer (-B): with tcpdump's defaults the kernel dropped 6-47 packets of
# a 64 KiB burst from the capture, and a segment seen only as its retransmission looks not-ECT
capture_start() {
	ip netns exec "$NS" timeout 60 tcpdump --immediate-mode -U -s 256 -B 8192 -n -i tap0 \
		-w "$TMP/$1.pcap" "tcp port $2" >"$TMP/$1.tcpdump" 2>&1 &
	TCPDUMP_PID=$!
	wait_for_line "$TMP/$1.tcpdump" "listening on tap0" 10 "$TCPDUMP_PID"
}
# capture_stop NAME: once the file holds a FIN from each side (bounded: 10 s), ends the capture
# and prints the handshake and the first data segment each way as `tcpdump -v` reads them (the
# IP header's ECN field shows as "tos 0x2,ECT(0)"; "tos 0x0" is not ECT)
capture_stop() {
	local i
	for ((i = 0; i < 500; i++)); do
		[ "$(tcpdump -n -r "$TMP/$1.pcap" 'tcp[tcpflags] & tcp-fin != 0' 2>/dev/null | wc -l)" -ge 2 ] && break
		sleep 0.02
	done
	kill -INT "$TCPDUMP_PID"
	wait "$TCPDUMP_PID" || true
	TCPDUMP_PID=
	# the checks need every segment: a capture that lost some fails rather than misleads
	grep -q "^0 packets dropped by kernel" "$TMP/$1.tcpdump" ||
		{ cat "$TMP/$1.tcpdump"; echo "FAIL: the capture $1 lost packets"; exit 1; }
	echo "--- $1: handshake"
	tcpdump -n -v -r "$TMP/$1.pcap" 'tcp[tcpflags] & tcp-syn != 0' 2>/dev/null || true
	local payload='(ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) != 0'
	for h in 192.0.2.1 192.0.2.2; do
		echo "--- $1: first data segment from $h"
		tcpdump -n -v -c 1 -r "$TMP/$1.pcap" "src host $h and $payload" 2>/dev/null || true
		echo "--- $1: first pure ACK from $h"
		tcpdump -n -v -c 1 -r "$TMP/$1.pcap" "src host $h and not $payload and tcp[tcpflags] == tcp-ack" 2>/dev/null || true
	done
}
# on any exit: no set -e here, so that a process's exit status cannot cut the clean-up short
on_exit() {
	set +e
	[ -z "$TCPDUMP_PID" ] || { kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID"; } 2>/dev/null
	[ -z "$SERVER_PID" ] || { kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; } 2>/dev/null
	interop_cleanup
}
trap on_exit EXIT

# check_wire PCAP PORT ecn|plain|ce: the one connection to PORT in the capture, segment by segment.
#   ecn:   the SYN has ECE and CWR, the SYN-ACK ECE without CWR; each side's first transmission
#          of data is ECT(0); pure ACKs (and FINs without data), SYNs and SYN-ACKs are not ECT
#   plain: the SYN has ECE and CWR, the SYN-ACK neither; no segment of either side is ECT
#   ce:    as ecn, but Linux's first data segments to ustack are CE (nft marked them before the
#          capture) and ustack's first ones were marked CE on their way in (after the capture);
#          ustack's ACK of the first CE segment has ECE, Linux then sends CWR, and once ustack has
#          that CWR no more ECE; Linux's ECE for ustack's marks, ustack's CWR on new data after
#          it, and once Linux has that no more ECE
#   all:   data both ways; and but for ce, no CE mark (tap0's pfifo_fast marks nothing) and no
#          ECE or CWR after the handshake
check_wire() {
	python3 - "$@" <<'PY'
import struct, sys
path, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
e = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
ECN_NAMES = ("not-ECT", "ECT(1)", "ECT(0)", "CE")
def flagstr(f):
    return "".join(c for c, b in (("F", FIN), ("S", SYN), ("R", RST), ("P", PSH), (".", ACK),
                                   ("U", URG), ("E", ECE), ("W", CWR)) if f & b)
segs = []
off = 24
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
    plen = struct.unpack(">H", f[16:18])[0] - ihl - doff
    src = ".".join(map(str, f[26:30]))
    if port in (sport, dport):
        segs.append((src, sport, dport, seq, flags, plen, f[15] & 3, ack))
errors = []
def fail(msg):
    errors.append(msg)
syns = [s for s in segs if s[4] & (SYN | ACK) == SYN]
synacks = [s for s in segs if s[4] & (SYN | ACK) == SYN | ACK]
if not syns or not synacks:
    sys.exit(f"FAIL: no SYN or no SYN-ACK on port {port} in the capture")
client, server = syns[0][0], synacks[0][0]
if len({(s[1], s[2]) for s in syns}) != 1:
    fail("more than one connection in the capture")
if len(syns) > 1 or len(synacks) > 1:
    print(f"note: {len(syns)} SYNs, {len(synacks)} SYN-ACKs (retransmitted)")
syn, synack = syns[0], synacks[0]
print(f"SYN     {client} → {server}: [{flagstr(syn[4])}] {ECN_NAMES[syn[6]]}")
print(f"SYN-ACK {server} → {client}: [{flagstr(synack[4])}] {ECN_NAMES[synack[6]]}")
if syn[4] & (ECE | CWR) != ECE | CWR:
    fail(f"the SYN is [{flagstr(syn[4])}], want ECE and CWR ([SEW])")
if mode != "plain" and synack[4] & (ECE | CWR) != ECE:
    fail(f"the SYN-ACK is [{flagstr(synack[4])}], want ECE without CWR ([S.E])")
if mode == "plain" and synack[4] & (ECE | CWR):
    fail(f"the SYN-ACK is [{flagstr(synack[4])}], want neither ECE nor CWR ([S.])")
for s in syns + synacks:
    if s[6] != 0:
        fail(f"a SYN or SYN-ACK from {s[0]} is {ECN_NAMES[s[6]]}, want not-ECT")
for host in (client, server):
    mine = [s for s in segs if s[0] == host and not s[4] & SYN]
    sent, new, retrans, pure = set(), [], [], []
    for s in mine:
        if s[5] > 0:
            (retrans if s[3] in sent else new).append(s)
            sent.add(s[3])
        else:
            pure.append(s)
    who = "ustack" if host == "192.0.2.2" else "Linux"
    count = lambda l, c: sum(1 for s in l if s[6] == c)
    print(f"{who:6} {host}: {len(new)} data segments ({count(new, 2)} ECT(0), {count(new, 0)} not-ECT), "
          f"{len(retrans)} retransmitted ({count(retrans, 2)} ECT(0)), "
          f"{len(pure)} without data ({count(pure, 2)} ECT(0), {count(pure, 0)} not-ECT)")
    if not new:
        fail(f"no data from {who}")
    want = {0} if mode == "plain" else {2, 3} if mode == "ce" and who == "Linux" else {2}
    bad = [s for s in new if s[6] not in want]
    if bad:
        fail(f"{len(bad)} of {who}'s data segments are not {'/'.join(ECN_NAMES[w] for w in want)}, "
             f"the first seq {bad[0][3]} {ECN_NAMES[bad[0][6]]}")
    bad = [s for s in pure if s[6] != 0]
    if bad:
        fail(f"{len(bad)} of {who}'s segments without data are ECN-capable, the first "
             f"[{flagstr(bad[0][4])}] {ECN_NAMES[bad[0][6]]}")
    if mode == "plain" and any(s[6] for s in retrans):
        fail(f"a retransmission from {who} is ECN-capable without ECN negotiated")
    bad = [s for s in mine if s[4] & (ECE | CWR) or s[6] == 3]
    if bad and mode != "ce":
        fail(f"{who} sent ECE, CWR or CE after the handshake with nothing marked: "
             f"[{flagstr(bad[0][4])}] {ECN_NAMES[bad[0][6]]} seq {bad[0][3]}")
# ce: Linux's first data segments to ustack left marked CE (visible here: marked before the
# capture), ustack's first ones marked on their way in (after it: ECT(0) here)
def after(a, b):
    return (a - b) & 0xffffffff < 0x80000000 and a != b
if mode == "ce":
    idx = {id(s): i for i, s in enumerate(segs)}
    lin = [s for s in segs if s[0] == client and not s[4] & SYN]
    ust = [s for s in segs if s[0] == server and not s[4] & SYN]
    ce = [s for s in lin if s[6] == 3]
    print(f"CE: {len(ce)} of Linux's segments to ustack, seq {', '.join(str(s[3]) for s in ce)}")
    if not ce:
        fail("no segment of Linux's came marked CE")
    else:
        # ustack's first segment that acknowledges the first CE segment has read it: ECE
        end = (ce[0][3] + ce[0][5]) & 0xffffffff
        acks = [s for s in ust if not after(end, s[7])]
        if not acks or not acks[0][4] & ECE:
            fail("ustack's ACK of the first CE segment has no ECE" if acks else "ustack never acknowledged the CE segment")
        first_ece = next((s for s in ust if s[4] & ECE), None)
        cwr = [s for s in lin if s[4] & CWR and first_ece and idx[id(s)] > idx[id(first_ece)]]
        print(f"ustack echoes: {sum(1 for s in ust if s[4] & ECE)} segments with ECE; "
              f"Linux's CWR: {len(cwr)} segments, seq {', '.join(str(s[3]) for s in cwr)}")
        if not cwr:
            fail("Linux sent no CWR after ustack's ECE: it did not take the echo")
        else:
            # once ustack has read Linux's CWR (and the last CE), no more ECE
            last = max([(s[3] + s[5]) & 0xffffffff for s in ce + cwr[-1:]], key=lambda v: (v - syn[3]) & 0xffffffff)
            late = [s for s in ust if not after(last, s[7]) and s[4] & ECE]
            if late:
                fail(f"ustack still sends ECE after Linux's CWR: {len(late)} segments, the first ack {late[0][7]}")
    # the other way: Linux echoes the marks it saw on ustack's data with ECE, ustack answers CWR
    l_ece = [s for s in lin if s[4] & ECE]
    first = l_ece[0] if l_ece else None
    u_cwr = [s for s in ust if s[4] & CWR and first and idx[id(s)] > idx[id(first)]]
    print(f"Linux echoes: {len(l_ece)} segments with ECE; ustack's CWR: {len(u_cwr)} segments, "
          + ", ".join(f"seq {s[3]} length {s[5]}" for s in u_cwr))
    if not l_ece:
        fail("Linux sent no ECE: ustack's marked data did not reach it as CE")
    elif not u_cwr:
        fail("ustack sent no CWR after Linux's ECE")
    else:
        if any(s[5] == 0 for s in u_cwr):
            fail("ustack's CWR is on a segment without data")
        # ustack's new data once it has read Linux's first ECE with data (ack past it): the
        # first such segment carries CWR, unless an earlier one did (for an earlier ECE)
        e1 = next((s for s in l_ece if s[5] > 0), None)
        if e1:
            end = (e1[3] + e1[5]) & 0xffffffff
            seen, nxt = set(), None
            for s in (s for s in ust if s[5] > 0):
                if s[3] not in seen and not after(end, s[7]):
                    nxt = s
                    break
                seen.add(s[3])
            if nxt and not nxt[4] & CWR and idx[id(u_cwr[0])] > idx[id(nxt)]:
                fail(f"ustack's first new data after reading Linux's ECE (seq {nxt[3]}) has no CWR")
        end = (u_cwr[-1][3] + u_cwr[-1][5]) & 0xffffffff
        late = [s for s in lin if not after(end, s[7]) and s[4] & ECE]
        if late:
            fail(f"Linux still sent ECE after ustack's CWR: {len(late)} segments")
for m in errors:
    print("FAIL:", m)
sys.exit(1 if errors else 0)
PY
}

# linux_client PORT ecn|plain: connects to ustack's echo server, sends the data, reads its echo,
# checks it, Linux's TCP_INFO (tcpi_options, byte 5: TCPI_OPT_ECN 8, TCPI_OPT_ECN_SEEN 16) and
# `ss -tnio` (taken while established), then half-closes and reads to the end
linux_client() {
	nsx timeout 30 python3 - "$TMP/data.bin" "$1" "$2" <<'PY'
import socket, subprocess, sys
data = open(sys.argv[1], "rb").read()
port, mode = int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("192.0.2.2", port), timeout=10)
s.sendall(data)
got = b""
while len(got) < len(data):
    d = s.recv(1 << 16)
    if not d:
        break
    got += d
opts = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]
ss = subprocess.run(["ss", "-tnioH", "dst", "192.0.2.2", "dport", "=", str(port)],
                    capture_output=True, text=True).stdout
s.shutdown(socket.SHUT_WR)
while True:
    d = s.recv(1 << 16)
    if not d:
        break
    got += d
s.close()
print(ss.rstrip())
ecn, seen = bool(opts & 8), bool(opts & 16)
print(f"linux client: {len(got)} bytes echoed, TCPI_OPT_ECN {ecn}, TCPI_OPT_ECN_SEEN {seen}")
if got != data:
    sys.exit("FAIL: the echo differs from what was sent")
toks = ss.split()
if mode == "ecn" and not (ecn and seen and "ecn" in toks and "ecnseen" in toks):
    sys.exit("FAIL: Linux should report ECN negotiated and ECT segments seen (ss: ecn, ecnseen)")
if mode == "plain" and (ecn or seen or "ecn" in toks or "ecnseen" in toks):
    sys.exit("FAIL: Linux reports ECN, which ustack should not have agreed to")
PY
}

# linux_server PORT ecn|plain: in the background (SERVER_PID), its output in $TMP/server.out,
# once it listens: accepts one connection, reads it to its end, checks TCP_INFO and `ss -tnio`
# (CLOSE-WAIT by then) as linux_client does, sends the data back, and closes
linux_server() {
	ip netns exec "$NS" timeout 30 python3 - "$TMP/data.bin" "$1" "$2" >"$TMP/server.out" 2>&1 <<'PY' &
import socket, subprocess, sys
data = open(sys.argv[1], "rb").read()
port, mode = int(sys.argv[2]), sys.argv[3]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", port))
l.listen(1)
l.settimeout(20)
c, peer = l.accept()
c.settimeout(10)
got = b""
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    got += d
opts = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]
ss = subprocess.run(["ss", "-tnioH", "src", "192.0.2.1", "sport", "=", str(port)],
                    capture_output=True, text=True).stdout
c.sendall(data)
c.close()
print(ss.rstrip())
ecn, seen = bool(opts & 8), bool(opts & 16)
print(f"linux server: {len(got)} bytes from {peer[0]}, TCPI_OPT_ECN {ecn}, TCPI_OPT_ECN_SEEN {seen}", flush=True)
if got != data:
    sys.exit("FAIL: the data from ustack differs from what it was given")
toks = ss.split()
if mode == "ecn" and not (ecn and seen and "ecn" in toks and "ecnseen" in toks):
    sys.exit("FAIL: Linux should report ECN negotiated and ECT segments seen (ss: ecn, ecnseen)")
if mode == "plain" and (ecn or seen or "ecn" in toks or "ecnseen" in toks):
    sys.exit("FAIL: Linux reports ECN without having agreed to it")
PY
	SERVER_PID=$!
	wait_for_listener "$NS" "$1" 10 "$SERVER_PID"
}
# linux_server_end: the server's exit status and output
linux_server_end() {
	local rc=0
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	cat "$TMP/server.out"
	[ "$rc" -eq 0 ] || { echo "FAIL: the Linux server exited with $rc"; exit 1; }
}

# ustack_echo PORT [-o ...]: `ustack nc -l --serve echo` on PORT, once it serves
ustack_echo() {
	local port=$1
	shift
	: >"$TMP/ustack.out"
	ip netns exec "$NS" timeout 60 "$bin" nc -l --serve echo "$@" "${LINK[@]}" "$port" >"$TMP/ustack.out" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$TMP/ustack.out" "^ustack nc: serving on port $port\$" 10 "$USTACK_PID"
}

# ustack_client PORT [-o ...]: `ustack nc` to the Linux server on PORT, the data on its stdin;
# what came back must be the data
ustack_client() {
	local port=$1
	shift
	nsx timeout 30 "$bin" nc -v "$@" "${LINK[@]}" 192.0.2.1 "$port" <"$TMP/data.bin" >"$TMP/back.bin" 2>"$TMP/nc.err" ||
		{ cat "$TMP/nc.err"; echo "FAIL: ustack nc to port $port failed"; exit 1; }
	cmp -s "$TMP/data.bin" "$TMP/back.bin" || { cat "$TMP/nc.err"; echo "FAIL: ustack nc got other data back"; exit 1; }
}

# a) Linux client asking for ECN → ustack, which accepts by default (tcp_ecn=2)
nsx sysctl -qw net.ipv4.tcp_ecn=1
capture_start a 7
ustack_echo 7
linux_client 7 ecn
ustack_stop
capture_stop a
check_wire "$TMP/a.pcap" 7 ecn
echo "ok a: Linux → ustack: [SEW], [S.E], data ECT(0) both ways, pure ACKs not ECT"

# b) ustack client asking for ECN (tcp_ecn=1) → Linux, which accepts by default (tcp_ecn=2)
nsx sysctl -qw net.ipv4.tcp_ecn=2
capture_start b 8080
linux_server 8080 ecn
ustack_client 8080 -o net.ipv4.tcp_ecn=1
linux_server_end
capture_stop b
check_wire "$TMP/b.pcap" 8080 ecn
echo "ok b: ustack → Linux: [SEW], [S.E], data ECT(0) both ways, pure ACKs not ECT"

# c) Linux client asking for ECN → ustack with tcp_ecn=0: a plain SYN-ACK, nothing ECT
nsx sysctl -qw net.ipv4.tcp_ecn=1
capture_start c 7
ustack_echo 7 -o net.ipv4.tcp_ecn=0
linux_client 7 plain
ustack_stop
capture_stop c
check_wire "$TMP/c.pcap" 7 plain
echo "ok c: Linux → ustack with tcp_ecn=0: [SEW], [S.], nothing ECT"

# d) ustack client asking for ECN → Linux with tcp_ecn=0: a plain SYN-ACK, nothing ECT
nsx sysctl -qw net.ipv4.tcp_ecn=0
capture_start d 8081
linux_server 8081 plain
ustack_client 8081 -o net.ipv4.tcp_ecn=1
linux_server_end
capture_stop d
check_wire "$TMP/d.pcap" 8081 plain
echo "ok d: ustack → Linux with tcp_ecn=0: [SEW], [S.], nothing ECT"

# e) Congestion Experienced both ways: nftables marks CE the first 2 packets of ECT(0) data
#    (a burst of 2, then 1 a minute: none more in this test) that Linux sends to ustack
#    (postrouting: before the capture; a packet there may be a GSO burst of several segments)
#    and that ustack sends to Linux (prerouting: after the capture); each end must echo ECE
#    until the other's CWR
if command -v nft >/dev/null; then
	nsx sysctl -qw net.ipv4.tcp_ecn=1
	nsx nft -f - <<'NFT'
table ip ecnmark {
	chain post {
		type filter hook postrouting priority filter;
		oifname "tap0" tcp dport 7 ip ecn ect0 ip length > 100 limit rate 1/minute burst 2 packets ip ecn set ce counter
	}
	chain pre {
		type filter hook prerouting priority filter;
		iifname "tap0" tcp sport 7 ip ecn ect0 ip length > 100 limit rate 1/minute burst 2 packets ip ecn set ce counter
	}
}
NFT
	capture_start e 7
	ustack_echo 7
	linux_client 7 ecn
	ustack_stop
	capture_stop e
	echo "--- e: the marks (nft counters: post, pre) and the segments with CE, ECE or CWR"
	nsx nft list table ip ecnmark | grep -o "counter packets [0-9]*"
	tcpdump -n -v -r "$TMP/e.pcap" '(ip[1] & 3 == 3 or tcp[tcpflags] & (tcp-ece | tcp-cwr) != 0) and tcp[tcpflags] & tcp-syn == 0' 2>/dev/null || true
	check_wire "$TMP/e.pcap" 7 ce
	nsx nft delete table ip ecnmark
	echo "ok e: CE both ways: ustack echoes ECE until Linux's CWR, Linux's ECE brings ustack's CWR"
else
	echo "skip e: no nft"
fi
echo "PASS: ECN between ustack and Linux"
