#!/usr/bin/env bash
# Real peer: watching a running ustack as Linux users do — `ustack ls`, `ss`, `nstat`,
# `sysctl -w`, `trace` through its control socket — while Linux clients connect to
# `ustack nc -l --accept-delay` (the accept queue fills); and another user is refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: observe.sh PATH-TO-ustack}
interop_require
command -v python3 >/dev/null || skip "no python3"
command -v setpriv >/dev/null || skip "no setpriv"
interop_setup
# a control directory of the test's own, so that no other instance is seen
export USTACK_RUN_DIR="$TMP/run"
NAME=obs$$
fail() { echo "FAIL: $*"; exit 1; }
us() { ip netns exec "$NS" "$bin" "$@"; }

# the server accepts nothing for 90 s (and the clients hold on as long): every check below
# runs while the three wait in the accept queue, however slow the machine
ip netns exec "$NS" timeout 120 "$bin" nc -l --serve discard --backlog 16 --accept-delay 90000 \
	--tap tap0 --addr 192.0.2.2/24 --name "$NAME" 7 >"$TMP/nc.out" 2>&1 &
USTACK_PID=$!
# ready: the control socket is there and answers
for ((i = 0; i < 250; i++)); do
	us ls 2>/dev/null | grep -q "^$NAME " && break
	kill -0 "$USTACK_PID" 2>/dev/null || { cat "$TMP/nc.out"; fail "ustack nc exited"; }
	sleep 0.02
done
us ls | tee "$TMP/ls.out"
grep -q "^$NAME .*(this one)" "$TMP/ls.out" || fail "ustack ls does not list $NAME"
[ "$(stat -c %a "$USTACK_RUN_DIR/$NAME.sock")" = 600 ] || fail "control socket mode is not 0600"
[ "$(stat -c %a "$USTACK_RUN_DIR")" = 700 ] || fail "control directory mode is not 0700"
us ss -ltn | tee "$TMP/ss0.out"
grep -qE '^LISTEN +0 +16 +0\.0\.0\.0:7 ' "$TMP/ss0.out" || fail "want LISTEN 0 16 0.0.0.0:7"
us nstat >/dev/null # the history starts now

# a trace, streaming from the start
us trace -e sock:inet_sock_set_state >"$TMP/trace.out" 2>&1 &
trace_pid=$!
wait_for_line "$TMP/trace.out" "^# tracing $NAME" 10 "$trace_pid"
# and the same events drawn as the seed's ladder (ustack on the left, its peers on the right)
us trace --ladder >"$TMP/ladder.out" 2>&1 &
ladder_pid=$!
wait_for_line "$TMP/ladder.out" "^# tracing $NAME" 10 "$ladder_pid"

# three Linux clients, held open: the server is busy (--accept-delay), so they wait in the accept queue
ip netns exec "$NS" timeout 100 python3 - "$TMP/clients.ready" <<'PY' &
import socket, sys, time
cs = [socket.create_connection(("192.0.2.2", 7), timeout=5) for _ in range(3)]
open(sys.argv[1], "w").write("ready\n")
time.sleep(90)
PY
clients=$!
wait_for_line "$TMP/clients.ready" "ready" 10 "$clients"
# the final ACKs may still be on their way: poll ss until the accept queue holds all three
for ((i = 0; i < 250; i++)); do
	us ss -ltn >"$TMP/ss1.out"
	grep -qE '^LISTEN +3 +16 ' "$TMP/ss1.out" && break
	sleep 0.02
done
cat "$TMP/ss1.out"
grep -qE '^LISTEN +3 +16 +0\.0\.0\.0:7 ' "$TMP/ss1.out" || fail "want the accept queue (Recv-Q) at 3"
us ss -tn state established | tee "$TMP/ss2.out"
[ "$(grep -cE '^0 +0 +192\.0\.2\.2:7 +192\.0\.2\.1:[0-9]+' "$TMP/ss2.out")" -eq 3 ] || fail "want 3 established"
head -1 "$TMP/ss2.out" | grep -q '^Recv-Q Send-Q' || fail "one state: no State column, as ss"
us ss -tanio | tee "$TMP/ss3.out"
grep -qE '^ESTAB .* 192\.0\.2\.1:' "$TMP/ss3.out" || fail "ss -a: ESTAB"
grep -qE 'ts sack cubic wscale:[0-9]+,10 rto:[0-9.]+ .*mss:1448 .*cwnd:10' "$TMP/ss3.out" || fail "ss -i"
# ss -ti beside Linux's ss -ti of the same three connections (Linux's side: the clients): the
# same MSS and initial cwnd, each side's window scales crossed (ustack's snd is Linux's rcv)
ip netns exec "$NS" ss -tinH dst 192.0.2.2 >"$TMP/linux_ssi.out"
us ss -tinH >"$TMP/ustack_ssi.out"
cat "$TMP/linux_ssi.out"
python3 - "$TMP/linux_ssi.out" "$TMP/ustack_ssi.out" <<'PY' || fail "ss -ti disagrees with Linux's"
import re, sys
def conns(path):
    out, key = {}, None
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if not line[0].isspace():
            key = (f[-2], f[-1])  # local, peer (ss -H: Recv-Q Send-Q Local Peer [Process])
            out[key] = ""
        elif key:
            out[key] += line
    return out
def info(text):
    g = lambda k: re.search(r"\b" + k + r":(\d+)(?:,(\d+))?", text)
    ws = g("wscale")
    return {"mss": int(g("mss")[1]), "cwnd": int(g("cwnd")[1]), "wscale": (int(ws[1]), int(ws[2])),
            "rtt": float(re.search(r"\brtt:([\d.]+)/", text)[1])}
linux, ustack = conns(sys.argv[1]), conns(sys.argv[2])
ours = {k: v for k, v in ustack.items() if k[0] == "192.0.2.2:7"}
if len(ours) != 3 or len(linux) < 3:
    sys.exit("FAIL: want 3 connections each side, got %d ustack, %d Linux" % (len(ours), len(linux)))
for (local, peer), text in ours.items():
    lt = linux.get((peer, local))
    if lt is None:
        sys.exit("FAIL: Linux has no %s -> %s" % (peer, local))
    u, l = info(text), info(lt)
    print(peer, "ustack", u, "linux", l)
    if u["mss"] != l["mss"] or u["cwnd"] != l["cwnd"] or u["wscale"] != l["wscale"][::-1]:
        sys.exit("FAIL: %s: ustack %s, Linux %s" % (peer, u, l))
    if not (0 < u["rtt"] < 1000 and 0 < l["rtt"] < 1000):
        sys.exit("FAIL: %s: rtt ustack %s ms, Linux %s ms" % (peer, u["rtt"], l["rtt"]))
PY
# ss -s: the listener's descriptor; it and its three children hashed and ESTABLISHED (waiting in
# the accept queue is no orphan); TCP and INET rows as iproute2 prints them (a tab, padded columns)
us ss -s | tee "$TMP/sss.out"
grep -qx 'Total: 1' "$TMP/sss.out" || fail "ss -s: Total"
grep -qx 'TCP:   4 (estab 3, closed 0, orphaned 0, timewait 0)' "$TMP/sss.out" || fail "ss -s: TCP line"
grep -qxP 'TCP\t  4         4         0        ' "$TMP/sss.out" || fail "ss -s: TCP row"
us ss -tn --json >"$TMP/ss.json"
python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert len(v)==3 and all(s["state"]=="ESTAB" for s in v), v' "$TMP/ss.json" || fail "--json"

us nstat | tee "$TMP/nstat.out"
grep -qE '^TcpPassiveOpens +3 ' "$TMP/nstat.out" || fail "nstat: want TcpPassiveOpens 3 since the last call"
us nstat TcpPassiveOpens | grep -qE '^TcpPassiveOpens' && fail "nstat: no delta since the last call"
us nstat -a TcpPassiveOpens | grep -qE '^TcpPassiveOpens +3 ' || fail "nstat -a"

# sysctl, live
us sysctl -w net.ipv4.tcp_syn_retries=2 | tee "$TMP/sysctl.out"
grep -qx 'net.ipv4.tcp_syn_retries = 2' "$TMP/sysctl.out" || fail "sysctl -w"
[ "$(us sysctl -n net.ipv4.tcp_syn_retries)" = 2 ] || fail "sysctl -n after -w"
rc=0; us sysctl -w net.ipv4.no_such=1 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'cannot stat /proc/sys/net/ipv4/no_such: No such file or directory' "$TMP/err" || {
	cat "$TMP/err"; fail "unknown sysctl: want sysctl(8)'s message and 1"; }
rc=0; us sysctl -w net.ipv4.tcp_syn_retries=abc 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'setting key "net.ipv4.tcp_syn_retries": Invalid argument' "$TMP/err" || {
	cat "$TMP/err"; fail "bad value: want sysctl(8)'s message and 1"; }
[ "$(us sysctl -n net.ipv4.tcp_syn_retries)" = 2 ] || fail "a bad value changed the sysctl"
# sysctl -p FILE: comments and blank lines skipped, spaces trimmed, every line tried; the bad
# ones get sysctl(8)'s messages (procps 4.0.2's, as on this Debian) and the status is 1
printf '# a comment\n; another\n\nnet.ipv4.tcp_syn_retries = 3\nnet.ipv4.nope=1\n  net.ipv4.tcp_sack=  0  \nno_equals_sign\n-net.ipv4.tcp_timestamps = 1\n' >"$TMP/sysctl.conf"
rc=0; us sysctl -p "$TMP/sysctl.conf" >"$TMP/p.out" 2>"$TMP/p.err" || rc=$?
cat "$TMP/p.out" "$TMP/p.err"
[ "$rc" -eq 1 ] || fail "sysctl -p: want status 1, got $rc"
[ "$(cat "$TMP/p.out")" = "$(printf 'net.ipv4.tcp_syn_retries = 3\nnet.ipv4.tcp_sack = 0\nnet.ipv4.tcp_timestamps = 1')" ] ||
	fail "sysctl -p: stdout"
grep -q 'cannot stat /proc/sys/net/ipv4/nope: No such file or directory' "$TMP/p.err" &&
	grep -q "$TMP/sysctl.conf(7): invalid syntax, continuing..." "$TMP/p.err" || fail "sysctl -p: messages"
[ "$(us sysctl -n net.ipv4.tcp_syn_retries)" = 3 ] && [ "$(us sysctl -n net.ipv4.tcp_sack)" = 0 ] || fail "sysctl -p: values"

# the trace saw the handshakes
for ((i = 0; i < 250; i++)); do
	grep -q 'inet_sock_set_state: .*oldstate=TCP_SYN_RECV newstate=TCP_ESTABLISHED' "$TMP/trace.out" && break
	sleep 0.02
done
head -5 "$TMP/trace.out"
grep -q 'inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=7 dport=[0-9]* saddr=192.0.2.2 daddr=192.0.2.1 .*newstate=TCP_ESTABLISHED' \
	"$TMP/trace.out" || fail "trace: no inet_sock_set_state line for a handshake"
kill "$trace_pid"; wait "$trace_pid" || true
# the ladder: each client's SYN arrives from the right, the SYN-ACK goes to it, the final ACK
# arrives, and the state changes stand in ustack's column
for ((i = 0; i < 250; i++)); do
	grep -q 'inet_sock_set_state SYN_RECV -> ESTABLISHED' "$TMP/ladder.out" && break
	sleep 0.02
done
kill "$ladder_pid"; wait "$ladder_pid" || true
sed -n 1,12p "$TMP/ladder.out"
grep -qE '^ +time +ustack '"$NAME"' +peers$' "$TMP/ladder.out" || fail "ladder: no header"
grep -qE '^ +[0-9]+\.[0-9]{3} ms  │◀─+ [0-9]+ > 7: \[S\], seq [0-9]+, win [0-9]+ <mss 1460,sackOK,TS val [0-9]+ ecr 0,wscale [0-9]+> │$' \
	"$TMP/ladder.out" || fail "ladder: no SYN arriving from the right"
grep -qE '^ +[0-9]+\.[0-9]{3} ms  │ 7 > [0-9]+: \[S\.\], seq [0-9]+, ack [0-9]+, win [0-9]+ <mss 1460,.*> ─+▶│$' \
	"$TMP/ladder.out" || fail "ladder: no SYN-ACK going right"
grep -qE '^ +[0-9]+\.[0-9]{3} ms  │ inet_sock_set_state SYN_RECV -> ESTABLISHED +$' "$TMP/ladder.out" ||
	fail "ladder: no state change in ustack's column"

# ip tcp_metrics: a server keeps no per-destination client state — nothing to show; deleting
# a destination it does not have fails as ip's netlink request does (ESRCH)
[ -z "$(us tcp_metrics)" ] || fail "tcp_metrics: entries on a server"
rc=0; us tcp_metrics delete 192.0.2.1 2>"$TMP/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'No such process' "$TMP/err" || { cat "$TMP/err"; fail "tcp_metrics delete: want ESRCH"; }
us tcp_metrics flush all || fail "tcp_metrics flush all"

# ustack pcap: a live capture of the instance, until interrupted; a Linux client's handshake
# is in it, with wall-clock timestamps (they merge with tcpdump's), and tcpdump reads it whole
# (not through us(): a backgrounded function is a subshell, which SIGINT would not reach past)
ip netns exec "$NS" "$bin" pcap "$TMP/live.pcap" 2>"$TMP/pcap.err" &
pcap_pid=$!
wait_for_line "$TMP/pcap.err" "^# capturing on $NAME" 10 "$pcap_pid"
# and the kernel's own capture of the same wire, the TAP device
ip netns exec "$NS" tcpdump -U -n -i tap0 -w "$TMP/kernel.pcap" tcp port 7 2>"$TMP/kdump.err" &
kdump_pid=$!
wait_for_line "$TMP/kdump.err" "listening on tap0" 10 "$kdump_pid"
t0=$(date +%s)
# 60 KB of data too: the kernel sends it over the TAP in GSO frames far above the capture's
# 2048-byte cut, each recorded cut but with its whole length (checked below)
ip netns exec "$NS" python3 -c 'import socket; s = socket.create_connection(("192.0.2.2", 7), timeout=5); s.sendall(b"x" * 60000); s.close()'
for ((i = 0; i < 250; i++)); do # the SYN-ACK and the final ACK are in once the FIN is
	[ "$(tcpdump -nr "$TMP/live.pcap" 2>/dev/null | grep -c 'Flags \[F')" -ge 1 ] &&
		[ "$(tcpdump -nr "$TMP/kernel.pcap" 2>/dev/null | grep -c 'Flags \[F')" -ge 1 ] && break
	sleep 0.02
done
kill -INT "$pcap_pid"; rc=0; wait "$pcap_pid" || rc=$?
kill -INT "$kdump_pid"; wait "$kdump_pid" || true
cat "$TMP/pcap.err"
[ "$rc" -eq 0 ] && grep -qE '^[1-9][0-9]* packets captured' "$TMP/pcap.err" || fail "ustack pcap: exit $rc"
tcpdump -ttnr "$TMP/live.pcap" >"$TMP/live.txt" 2>"$TMP/tcpdump.err" || { cat "$TMP/tcpdump.err"; fail "tcpdump cannot read the capture"; }
head -4 "$TMP/live.txt"
grep -qE ' IP 192\.0\.2\.1\.[0-9]+ > 192\.0\.2\.2\.7: Flags \[S\]' "$TMP/live.txt" || fail "pcap: no SYN"
grep -qE ' IP 192\.0\.2\.2\.7 > 192\.0\.2\.1\.[0-9]+: Flags \[S\.\]' "$TMP/live.txt" || fail "pcap: no SYN-ACK"
! grep -q '\[|' "$TMP/live.txt" || fail "pcap: truncated headers"
# a record's original length is its frame's, the IP packet's and the Ethernet header's, even
# where the frame was cut (caplen < len), as a snaplen cuts in tcpdump
python3 - "$TMP/live.pcap" <<'PY' || fail "pcap: record lengths"
import struct, sys
b = open(sys.argv[1], "rb").read()
e = "<" if b[:4] == b"\xd4\xc3\xb2\xa1" else ">"
off, big, bad = 24, 0, 0
while off + 16 <= len(b):
    _, _, cap, orig = struct.unpack(e + "IIII", b[off:off + 16])
    f = b[off + 16:off + 16 + cap]
    off += 16 + cap
    if len(f) >= 18 and f[12:14] == b"\x08\x00":
        bad += orig != 14 + struct.unpack(">H", f[16:18])[0] or cap > orig
        big += orig > cap
print(f"pcap: {big} frames cut, {bad} with a wrong length")
sys.exit(bad != 0 or big == 0)
PY
ts=$(awk '/Flags \[S\]/ { print int($1); exit }' "$TMP/live.txt")
[ $((ts - t0)) -ge -2 ] && [ $((ts - t0)) -le 10 ] || fail "pcap: SYN stamped $ts, want wall-clock time near $t0"
# tshark dissects every frame without a malformed one, and each frame of the handshake is stamped
# within a second of the kernel's stamp of the same frame (matched by direction, flags and seq)
command -v tshark >/dev/null || fail "no tshark (scripts/deps installs it)"
tshark -n -r "$TMP/live.pcap" >"$TMP/tshark.out" 2>"$TMP/tshark.err" || { cat "$TMP/tshark.err"; fail "tshark cannot read the capture"; }
[ "$(wc -l <"$TMP/tshark.out")" -eq "$(wc -l <"$TMP/live.txt")" ] || { cat "$TMP/tshark.out"; fail "tshark and tcpdump count different frames"; }
[ -z "$(tshark -n -r "$TMP/live.pcap" -Y '_ws.malformed || _ws.expert.severity >= error' 2>/dev/null)" ] ||
	fail "tshark: malformed frames in the capture"
tcpdump -ttnr "$TMP/kernel.pcap" >"$TMP/kernel.txt" 2>/dev/null
python3 - "$TMP/live.txt" "$TMP/kernel.txt" <<'PY' || fail "pcap: stamps differ from the kernel's"
import re, sys
def frames(path):
    out = {}
    for line in open(path):
        m = re.match(r"([\d.]+) IP (\S+) > (\S+): Flags \[([^\]]*)\], seq (\d+)", line)
        if m:
            out.setdefault(m.group(2, 3, 4, 5), float(m[1]))
    return out
ours, kernel = frames(sys.argv[1]), frames(sys.argv[2])
both = set(ours) & set(kernel)
if not any(k[2] == "S" for k in both) or not any(k[2] == "S." for k in both):
    sys.exit("FAIL: the handshake is not in both captures: %s / %s" % (sorted(ours), sorted(kernel)))
worst = max(abs(ours[k] - kernel[k]) for k in both)
print("%d frames in both captures, stamps at most %.6f s apart" % (len(both), worst))
if worst >= 1.0:
    sys.exit("FAIL: a frame stamped %.3f s away from the kernel's stamp" % worst)
PY

# SYN-ACKs lost on their way (dropped at Linux's input): the half-open connections wait in
# ustack's SYN queue, and ss lists them, as Linux lists request sockets, under state syn-recv
ip netns exec "$NS" nft -f - <<'NFT'
table ip obs_synack {
	chain input { type filter hook input priority 0; tcp sport 7 tcp flags & (syn | ack) == syn | ack counter drop; }
}
NFT
ip netns exec "$NS" timeout 100 python3 - "$TMP/halfopen.ports" <<'PY' &
import socket, sys, time
ss = []
for _ in range(2):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("192.0.2.2", 7))
    ss.append(s)
open(sys.argv[1], "w").write(" ".join(str(s.getsockname()[1]) for s in ss) + "\n")
time.sleep(90)
PY
halfopen=$!
wait_for_line "$TMP/halfopen.ports" "^[0-9]+ [0-9]+$" 10 "$halfopen"
read -r p1 p2 <"$TMP/halfopen.ports"
for ((i = 0; i < 250; i++)); do
	us ss -tn state syn-recv >"$TMP/synrecv.out"
	[ "$(grep -cE "^0 +0 +192\.0\.2\.2:7 +192\.0\.2\.1:($p1|$p2) *\$" "$TMP/synrecv.out")" -eq 2 ] && break
	sleep 0.02
done
cat "$TMP/synrecv.out"
[ "$(grep -cE "^0 +0 +192\.0\.2\.2:7 +192\.0\.2\.1:($p1|$p2) *\$" "$TMP/synrecv.out")" -eq 2 ] ||
	fail "ss state syn-recv: want the two half-open connections"
us ss -tn state established | grep -qE ":($p1|$p2) *\$" && fail "a half-open connection listed as established"
# ustack listed the request once it had written its SYN-ACK to the TAP; the kernel's input hook
# counts it when its softirq takes the frame, which under load may be later
for ((i = 0; i < 250; i++)); do
	ip netns exec "$NS" nft list table ip obs_synack | grep -qE 'counter packets [1-9]' && break
	sleep 0.02
done
ip netns exec "$NS" nft list table ip obs_synack | grep -qE 'counter packets [1-9]' || fail "no SYN-ACK was dropped"
ip netns exec "$NS" nft delete table ip obs_synack
kill "$halfopen" 2>/dev/null || true
wait "$halfopen" 2>/dev/null || true

# another user: the filesystem refuses (0700/0600), and so does SO_PEERCRED if they were opened
nobody() { ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups env USTACK_RUN_DIR="$USTACK_RUN_DIR" "$bin" "$@"; }
rc=0; nobody ss --name "$NAME" >"$TMP/nobody.out" 2>&1 || rc=$?
cat "$TMP/nobody.out"
[ "$rc" -ne 0 ] || fail "uid 65534 read the sockets"
chmod 0711 "$TMP"; chmod 0755 "$USTACK_RUN_DIR"; chmod 0666 "$USTACK_RUN_DIR/$NAME.sock"
rc=0; nobody ss --name "$NAME" >"$TMP/nobody.out" 2>&1 || rc=$?
cat "$TMP/nobody.out"
[ "$rc" -ne 0 ] && grep -q 'refused: uid 65534 is not the instance' "$TMP/nobody.out" || fail "SO_PEERCRED did not refuse uid 65534"
chmod 0700 "$USTACK_RUN_DIR"

kill "$clients" 2>/dev/null || true
wait "$clients" 2>/dev/null || true
kill -TERM "$USTACK_PID"; rc=0; wait "$USTACK_PID" || rc=$?; USTACK_PID=
[ ! -e "$USTACK_RUN_DIR/$NAME.sock" ] || fail "the control socket outlived its instance"
[ -z "$(us ls | tail -n +2)" ] || fail "ustack ls lists a stopped instance"
echo "PASS: ustack ls, ss (-s, -ti as Linux's, syn-recv), nstat, sysctl -w and -p, trace (--ladder), tcp_metrics and pcap (as the kernel's) on a running instance"
