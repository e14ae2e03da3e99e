#!/usr/bin/env bash
# Real peer: the Linux kernel pings ustack across a TAP device, including datagrams large
# enough to need fragmentation both ways, and resolves ustack's MAC with ARP.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: ping.sh PATH-TO-ustack}
interop_require
command -v ping >/dev/null || skip "no ping"
interop_setup
ustack_start "$bin" --mac 02:00:00:00:00:02 --pcap "$TMP/cap.pcap"

ip netns exec "$NS" ping -c 3 -i 0.2 -W 2 192.0.2.2
# 3000-byte payload: Linux fragments the request, ustack reassembles and fragments the reply
ip netns exec "$NS" ping -c 2 -i 0.2 -W 2 -s 3000 192.0.2.2

neigh=$(ip -n "$NS" neigh show 192.0.2.2 dev tap0)
echo "kernel neighbour entry: $neigh"
case "$neigh" in
*"lladdr 02:00:00:00:00:02"*) ;;
*) echo "FAIL: the kernel did not learn ustack's MAC by ARP"; exit 1 ;;
esac

ustack_stop
[ "$(counter IcmpInEchos)" -eq 5 ] || { echo "FAIL: IcmpInEchos != 5"; exit 1; }
[ "$(counter IcmpOutEchoReps)" -eq 5 ] || { echo "FAIL: IcmpOutEchoReps != 5"; exit 1; }
[ "$(counter IpReasmOKs)" -eq 2 ] || { echo "FAIL: IpReasmOKs != 2"; exit 1; }
[ "$(counter IpFragOKs)" -eq 2 ] || { echo "FAIL: IpFragOKs != 2"; exit 1; }
[ -s "$TMP/cap.pcap" ] || { echo "FAIL: no capture written"; exit 1; }

# The other way: ustack pings the kernel, on-link and (through the default gateway) beyond.
ip -n "$NS" addr add 198.51.100.1/24 dev lo
ip netns exec "$NS" timeout 30 "$bin" ping --tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24 -c 3 192.0.2.1
ip netns exec "$NS" timeout 30 "$bin" ping --tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24 -c 2 -s 3000 192.0.2.1
ip netns exec "$NS" timeout 30 "$bin" ping --tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24 --gw 192.0.2.1 -c 2 198.51.100.1
# and with no route, a clear error
if out=$(ip netns exec "$NS" timeout 30 "$bin" ping --tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24 -c 1 198.51.100.1 2>&1); then
	echo "FAIL: ping without a route succeeded"; exit 1
fi
echo "$out"
case "$out" in *"Network is unreachable"*) ;; *) echo "FAIL: want ENETUNREACH"; exit 1 ;; esac
echo "PASS: Linux ping ↔ ustack over TAP, both directions"
