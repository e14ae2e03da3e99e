#!/usr/bin/env bash
# ustack and the Linux kernel under a SYN flood, in one run.  First bench_synflood (one ustack
# stack, forged SYNs handed to it in memory, legitimate clients mixed in); then hping3 floods a
# Linux listener (backlog 128, net.ipv4.tcp_syncookies=1, as ustack's) over a veth pair between
# two namespaces with forged random sources while a Linux client keeps connecting to it: the
# SYN-ACKs come from the receiving namespace's SyncookiesSent, the clients' success from their
# own count.  Needs root and hping3 (Debian's); makes its own namespaces (documentation
# addresses only) and removes them.
#
#   bench/synflood.sh build/gcc/bench/bench_synflood [seconds of Linux flood, default 5]
set -euo pipefail
BENCH=${1:?usage: synflood.sh PATH-TO-bench_synflood [seconds]}
SECS=${2:-5}
"$BENCH" 5000000 1000 || true
command -v hping3 >/dev/null || { echo "synflood.sh: needs hping3 (apt-get install hping3)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "synflood.sh: needs root (network namespaces)" >&2; exit 2; }
A=ustack-flood-a-$$
B=ustack-flood-b-$$
cleanup() {
	[ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add veth0 type veth peer name veth1 netns "$B"
ip -n "$A" addr add 198.51.100.1/24 dev veth0
ip -n "$B" addr add 198.51.100.2/24 dev veth1
ip -n "$A" link set veth0 up
ip -n "$B" link set veth1 up
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" route add default via 198.51.100.2
ip -n "$B" route add default via 198.51.100.1
ip netns exec "$B" sysctl -qw net.ipv4.tcp_syncookies=1
# the forged sources' SYN-ACKs go back into A, which has no use for them: drop them there
ip netns exec "$A" sysctl -qw net.ipv4.conf.all.rp_filter=0

ip netns exec "$B" python3 - <<'PY' &
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("198.51.100.2", 80)); l.listen(128)
while True:
    c, _ = l.accept(); c.close()
PY
SRV=$!
for _ in $(seq 100); do ip netns exec "$B" ss -Hltn 'sport = :80' | grep -q . && break; sleep 0.05; done

netstat_get() { ip netns exec "$B" awk -v k="$1" '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) h[i] = $i; n = 1 } else for (i = 1; i <= NF; i++) if (h[i] == k) print $i }' /proc/net/netstat; }
sent0=$(netstat_get SyncookiesSent)
t0=$(date +%s.%N)
ip netns exec "$A" timeout "$SECS" hping3 -q -S --flood --rand-source -p 80 198.51.100.2 >/dev/null 2>&1 &
FLOOD=$!
ip netns exec "$A" timeout $((SECS + 5)) python3 - "$SECS" <<'PY'
import socket, sys, time
end = time.time() + float(sys.argv[1]) - 0.5
ok = tried = 0
while time.time() < end:
    tried += 1
    try:
        s = socket.create_connection(("198.51.100.2", 80), timeout=3); s.close(); ok += 1
    except OSError:
        pass
print(f"Linux under the flood: legitimate clients served {ok} of {tried}")
PY
wait "$FLOOD" 2>/dev/null || true
t1=$(date +%s.%N)
sent1=$(netstat_get SyncookiesSent)
python3 -c "import sys; s=int(sys.argv[2])-int(sys.argv[1]); t=float(sys.argv[4])-float(sys.argv[3]); print(f'Linux (veth, hping3 --flood --rand-source): {s} SyncookiesSent in {t:.1f} s = {s/t:.0f} SYN-ACKs/s')" "$sent0" "$sent1" "$t0" "$t1"
