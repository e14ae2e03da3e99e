#!/usr/bin/env bash
# Real peer: a SYN flood against ustack.  ustack serves echo on a TAP device (backlog 8) while
# the Linux side floods it with hping3 (SYNs from random forged sources, 25,000 a second — a
# fixed rate rather than --flood, whose speed depends on the machine: past what the TAP path of
# an ASan build absorbs, the device queue drops the clients' own segments too and the test
# would measure the machine, not ustack; bench/synflood.c measures the per-core limit) and 50
# Linux clients connect, send a line and read it back.  With net.ipv4.tcp_syncookies=1 every client is
# served — its SYN meets a full SYN queue and gets a cookie — and ustack's counters show
# cookies sent and received, its memory bounded; with 0 the same clients time out: cookies are
# what saves them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: synflood.sh PATH-TO-ustack}
interop_require
for c in python3 hping3; do command -v $c >/dev/null || skip "no $c"; done
interop_setup
FLOOD_PID=
WATCHDOG=
# hping3 --flood ignores SIGTERM: it is killed, and a watchdog bounds it should this script die
stop_flood() {
	[ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null || true
	[ -z "$FLOOD_PID" ] || { kill -KILL "$FLOOD_PID" 2>/dev/null; wait "$FLOOD_PID" 2>/dev/null || true; }
	FLOOD_PID= WATCHDOG=
}
trap 'stop_flood; interop_cleanup' EXIT

# clients N TIMEOUT: N Linux clients at once, each connect + "hello i" + read it back; prints
# "served K of N"
clients() {
	ip netns exec "$NS" timeout 60 python3 - "$1" "$2" <<'PY'
import socket, sys, threading
n, to = int(sys.argv[1]), float(sys.argv[2])
ok = []
def client(i):
    try:
        s = socket.create_connection(("192.0.2.2", 7), timeout=to)
        s.settimeout(to)
        msg = f"hello {i}\n".encode()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(64)
            if not d:
                break
            got += d
        s.close()
        if got == msg:
            ok.append(i)
    except OSError:
        pass
ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(f"served {len(ok)} of {n}", flush=True)
PY
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# run COOKIES: ustack with tcp_syncookies=COOKIES under the flood; sets SERVED, OUT
run() {
	OUT=$TMP/ustack-$1.out
	ip netns exec "$NS" "$bin" nc -l -v --serve echo --backlog 8 -o net.ipv4.tcp_syncookies="$1" \
		--tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24 --gw 192.0.2.1 7 >"$OUT" 2>&1 &
	USTACK_PID=$!
	wait_for_line "$OUT" "serving on port 7" 10 "$USTACK_PID"
	ip netns exec "$NS" ping -c 1 -W 2 192.0.2.2 >/dev/null # ARP resolved before the flood
	RSS0=$(rss_kb "$USTACK_PID")
	ip netns exec "$NS" hping3 -q -S -i u40 --rand-source -p 7 192.0.2.2 >/dev/null 2>&1 &
	FLOOD_PID=$!
	# shellcheck disable=SC2016
	(trap 'kill "$sp" 2>/dev/null; exit 0' TERM; sleep 60 & sp=$!; wait "$sp"; kill -KILL "$FLOOD_PID") >/dev/null 2>&1 &
	WATCHDOG=$!
	# the flood is on once ustack has filled its SYN queue and (with cookies) sent some
	for ((i = 0; i < 500; i++)); do
		n=$(ip -n "$NS" -s link show tap0 | awk '/TX:/ {getline; print $2; exit}')
		[ "${n:-0}" -gt 2000 ] && break
		sleep 0.02
	done
	SERVED=$(clients 50 "$2")
	RSS1=$(rss_kb "$USTACK_PID")
	stop_flood
	kill -TERM "$USTACK_PID"
	wait "$USTACK_PID" 2>/dev/null || true
	USTACK_PID=
	echo "  tcp_syncookies=$1: $SERVED under the flood; ustack RSS ${RSS0} kB → ${RSS1} kB"
}

fail=0
echo "1. tcp_syncookies=1: every client served"
run 1 20
[ "$SERVED" = "served 50 of 50" ] || { echo "FAIL: $SERVED"; fail=1; }
for c in TcpExtSyncookiesSent TcpExtSyncookiesRecv TcpExtTCPReqQFullDoCookies; do
	v=$(awk -v c="$c" '$1 == c {print $2}' "$OUT")
	echo "  $c ${v:-0}"
	[ "${v:-0}" -gt 0 ] || { echo "FAIL: no $c"; fail=1; }
done
grep -q "Possible SYN flooding on port 0.0.0.0:7. Sending cookies." "$OUT" || { echo "FAIL: no flood warning"; fail=1; }
[ "$RSS1" -lt $((RSS0 + 65536)) ] || { echo "FAIL: RSS grew from $RSS0 to $RSS1 kB"; fail=1; }

echo "2. tcp_syncookies=0: the same clients time out"
run 0 3
served=${SERVED#served }; served=${served%% *}
[ "$served" -lt 50 ] || { echo "FAIL: all served without cookies: the flood did not fill the queue"; fail=1; }
v=$(awk '$1 == "TcpExtTCPReqQFullDrop" {print $2}' "$OUT")
echo "  TcpExtTCPReqQFullDrop ${v:-0}"
[ "${v:-0}" -gt 0 ] || { echo "FAIL: no TCPReqQFullDrop"; fail=1; }

[ "$fail" -eq 0 ] && echo "PASS" || exit 1
