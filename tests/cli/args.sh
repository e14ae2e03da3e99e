#!/usr/bin/env bash
# The command line's argument validation: every bad number, port, size, address, MAC, name or
# sysctl is a usage error — exit status 2, one line on stderr that starts with
# "ustack SUBCOMMAND:" and names the option, nothing on stdout — found before any device is
# touched, so none of this needs root or a TAP device.  And good values still parse.
#
#   args.sh PATH-TO-ustack
set -uo pipefail
bin=${1:?usage: args.sh PATH-TO-ustack}

# As root, run in a network namespace of our own: should a check regress and the command go
# on to open its TAP device, the device (and anything it does) stays in there.
if [ "$(id -u)" -eq 0 ] && [ -z "${USTACK_ARGS_NETNS:-}" ] && unshare -n true 2>/dev/null; then
	USTACK_ARGS_NETNS=1 exec unshare -n "$0" "$@"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

# report DESCRIPTION WHY: WHY empty is a pass
report() {
	if [ -z "$2" ]; then
		passed=$((passed + 1))
		echo "ok   $1"
	else
		failed=$((failed + 1))
		echo "FAIL $1: $2"
		sed 's/^/       stdout: /' "$TMP/out"
		sed 's/^/       stderr: /' "$TMP/err"
	fi
}

run() {
	rc=0
	timeout 10 "$bin" "$@" </dev/null >"$TMP/out" 2>"$TMP/err" || rc=$?
}

# bad SUBCOMMAND TEXT ARGS...: a usage error whose one line names TEXT (the option)
bad() {
	local sub=$1 want=$2
	shift 2
	run "$sub" "$@"
	local first why=
	first=$(head -n 1 "$TMP/err")
	if [ "$rc" -ne 2 ]; then
		why="exit status $rc, want 2"
	elif [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
		why="want exactly one line on stderr"
	elif [[ $first != "ustack $sub: "* ]]; then
		why="stderr does not start with 'ustack $sub:'"
	elif [[ $first != *"$want"* ]]; then
		why="stderr does not say '$want'"
	elif grep -qi configuring "$TMP/out" "$TMP/err"; then
		why="a device was configured"
	elif [ -s "$TMP/out" ]; then
		why="output on stdout"
	fi
	report "$sub $* -> $want" "$why"
}

# good TEXT SUBCOMMAND ARGS...: exit status 0 with TEXT on stdout
good() {
	local want=$1
	shift
	run "$@"
	local why=
	if [ "$rc" -ne 0 ]; then
		why="exit status $rc, want 0"
	elif ! grep -qF -- "$want" "$TMP/out"; then
		why="stdout does not say '$want'"
	fi
	report "$* -> $want" "$why"
}

# A device name that does not exist: nothing below may get as far as creating it.
LINK=(--tap ustkargs0 --addr 192.0.2.2/24)

# ---- numbers and ports
bad up "--listen: '80abc' is not a port (1-65535)" "${LINK[@]}" --listen 80abc
bad up "--listen: '0' is not a port" "${LINK[@]}" --listen 0
bad up "--listen: '65536' is not a port" "${LINK[@]}" --listen 65536
bad up "--listen: '-80' is not a port" "${LINK[@]}" --listen -80
bad up "--listen: ' 80' is not a port" "${LINK[@]}" --listen " 80"
bad up "--backlog: '-5'" "${LINK[@]}" --listen 80 --backlog -5
bad up "--mtu: '67'" "${LINK[@]}" --mtu 67
bad up "--mtu: '65536'" "${LINK[@]}" --mtu 65536
bad up "--mtu: '1500x'" "${LINK[@]}" --mtu 1500x
bad ping "-c: 'abc'" "${LINK[@]}" -c abc 192.0.2.1
bad ping "--count: '0'" "${LINK[@]}" --count 0 192.0.2.1
bad ping "-s: '70000'" "${LINK[@]}" -s 70000 192.0.2.1
bad connect "PORT: '80x'" "${LINK[@]}" 192.0.2.1 80x
bad nc "--serve send:N: '-1'" -l --serve send:-1 "${LINK[@]}" 9000
bad nc "--serve send:N: '1T'" -l --serve send:1T "${LINK[@]}" 9000
bad nc "--serve: 'chargen'" -l --serve chargen "${LINK[@]}" 9000
bad nc "--backlog: '-5'" -l --serve echo --backlog -5 "${LINK[@]}" 9000
# ustack run: the program goes after "--"; the link options and sysctls are checked first
bad run "unexpected 'curl'" "${LINK[@]}" curl http://192.0.2.1/
bad run "want -- PROGRAM" "${LINK[@]}" --
bad run "unknown sysctl 'net.ipv4.nope'" "${LINK[@]}" -o net.ipv4.nope=1 -- true
bad run "--impair: not available" "${LINK[@]}" --impair loss=1 -- true
bad run "--mtu: '40'" --tap ustkargs0 --addr 192.0.2.2/24 --mtu 40 -- true
good "usage: ustack run" run --help
bad nc "--accept-delay: '5s'" -l --serve echo --accept-delay 5s "${LINK[@]}" 9000
bad nc "PORT: '0'" -l "${LINK[@]}" 0
bad demo "--seed: 'x'" --seed x
bad demo "--loss: '2'" --loss 2
bad demo "--loss: '-0.5'" --loss -0.5
bad demo "--drop-syn: '-1'" --drop-syn -1
bad demo "--ping: '1001'" --ping 1001
bad demo "unexpected argument 'extra'" extra

# ---- addresses and names
bad up "--addr: '192.0.2.1/33'" --tap ustkargs0 --addr 192.0.2.1/33
bad up "--addr: '192.0.2/24'" --tap ustkargs0 --addr 192.0.2/24
bad up "--addr: '224.0.0.1/24' is not a unicast address" --tap ustkargs0 --addr 224.0.0.1/24
bad up "--gw: '192.0.2.256'" "${LINK[@]}" --gw 192.0.2.256
bad up "--gw: 198.51.100.1 is not on the --addr subnet 192.0.2.0/24" "${LINK[@]}" --gw 198.51.100.1
bad up "--mac: '01:00:5e:00:00:01' is not a unicast MAC" "${LINK[@]}" --mac 01:00:5e:00:00:01
bad up "--mac: '00:00:00:00:00:00' is not a unicast MAC" "${LINK[@]}" --mac 00:00:00:00:00:00
bad up "--mac: '02:00:00:00:00'" "${LINK[@]}" --mac 02:00:00:00:00
bad up "--tap: 'a/b'" --tap a/b --addr 192.0.2.2/24
bad up "--tap lo: not a TAP device" --tap lo --addr 192.0.2.2/24
bad ping "HOST: 'example.org'" "${LINK[@]}" example.org
bad up "--tap (or --xdp) and --addr are required" --tap ustkargs0
# ---- --xdp IFNAME[@QUEUE] and its options: all refused before a socket is opened
bad up "--xdp: ustkargs0: no such interface" --xdp ustkargs0 --addr 192.0.2.2/24
bad up "--xdp lo@: 'x' is not a queue number (0-1023)" --xdp lo@x --addr 192.0.2.2/24
bad up "--xdp lo@: '1024' is not a queue number" --xdp lo@1024 --addr 192.0.2.2/24
bad up "--xdp lo@: '' is not a queue number" --xdp lo@ --addr 192.0.2.2/24
bad up "--xdp: 'a/b' is not an interface name" --xdp a/b@0 --addr 192.0.2.2/24
bad up "--xdp: '0123456789abcdef' is not an interface name" --xdp 0123456789abcdef --addr 192.0.2.2/24
bad up "--xdp-mode: 'fast' is not native, skb or auto" --xdp lo --xdp-mode fast --addr 192.0.2.2/24
bad up "--busy-poll: needs --xdp" "${LINK[@]}" --busy-poll
bad up "--xdp-mode: needs --xdp" "${LINK[@]}" --xdp-mode skb
bad up "--xdp: one device: --tap or --xdp" "${LINK[@]}" --xdp lo
bad up "--impair: not available with --xdp" --xdp lo --addr 192.0.2.2/24 --impair loss=1
# ---- --queues N (a multi-queue TAP device): a count of tun's 1-256, only with --tap
bad up "--queues: '0' is not a number of queues (1-256)" "${LINK[@]}" --queues 0
bad up "--queues: '257' is not a number of queues (1-256)" "${LINK[@]}" --queues 257
bad up "--queues: 'two' is not a number of queues" "${LINK[@]}" --queues two
bad up "--queues: needs --tap" --xdp lo --queues 2 --addr 192.0.2.2/24
bad run "--queues: '0' is not a number of queues" "${LINK[@]}" --queues 0 -- true
bad nc "--xdp: ustkargs0: no such interface" -l --serve echo --xdp ustkargs0 --addr 192.0.2.2/24 9000
bad run "--xdp: ustkargs0: no such interface" --xdp ustkargs0 --addr 192.0.2.2/24 -- true

# ---- files, sysctls, impairments
bad up "--pcap: cannot write '/nonexistent/x': No such file or directory" "${LINK[@]}" --pcap /nonexistent/x
bad up "-o: unknown sysctl 'unknown'" "${LINK[@]}" -o unknown=1
bad up "-o: bad value '9' for net.ipv4.tcp_syncookies" "${LINK[@]}" -o net.ipv4.tcp_syncookies=9
bad up "-o: 'net.ipv4.tcp_sack' is not NAME=VALUE" "${LINK[@]}" -o net.ipv4.tcp_sack
bad sysctl "unknown sysctl 'net.ipv4.nope'" net.ipv4.nope
bad up "--impair delay: 'x'" "${LINK[@]}" --impair delay=x
bad up "--impair loss: '101'" "${LINK[@]}" --impair loss=101
bad up "--impair: unknown key 'rate'" "${LINK[@]}" --impair rate=1

# ---- options getopt rejects: named as `ustack up`, not as getopt's argv[0] ("up:")
bad up "unknown option '--bogus'" "${LINK[@]}" --bogus
bad up "unknown option '-x'" "${LINK[@]}" -x
bad up "--listen: needs a value" "${LINK[@]}" --listen
bad demo "unknown option '--bogus'" --bogus
bad sysctl "unknown option '-x'" -x
bad sysctl "-p: cannot be combined with -a" -a -p
bad tcp_metrics 'command "bogus" is unknown' bogus
bad tcp_metrics "delete: an address is required" delete
bad tcp_metrics "flush: '192.0.2' is not an IPv4 address" flush 192.0.2
bad tcp_metrics "show: unexpected argument 'x'" show 192.0.2.1 x
bad tcp_metrics "--name: '../x'" --name ../x

# ---- good values still parse: every value below is valid, so the only complaint left is
# the device, which is checked last (lo is not a TAP device)
bad up "--tap lo: not a TAP device" --tap lo --addr 192.0.2.2/24 --gw 192.0.2.1 --mtu 1400 \
	--mac 02:00:00:00:00:01 --pcap "$TMP/cap.pcap" -o net.ipv4.tcp_sack=0 \
	--impair delay=1.5,jitter=0,loss=0.5,dup=0,reorder=25,seed=7 --listen 8080 --backlog 0
bad nc "--tap lo: not a TAP device" -l --serve send:1M --backlog 5 --accept-delay 100 \
	--tap lo --addr 10.0.0.2/8 9000
bad ping "--tap lo: not a TAP device" -c 3 -s 1k --tap lo --addr 192.0.2.2 192.0.2.1
bad connect "--tap lo: not a TAP device" --tap=lo --addr=192.0.2.2/24 192.0.2.1 65535
good "net.ipv4.tcp_syncookies = 1" sysctl net.ipv4.tcp_syncookies
good "net/ipv4/tcp_sack = 1" sysctl net/ipv4/tcp_sack
good "net.core.rmem_max = 4194304" sysctl net.core.rmem_max
good "net.core.wmem_max = 4194304" sysctl net.core.wmem_max
good "accept() returned fd" demo --seed 7
good "2 packets transmitted, 2 received" demo --ping 2 --loss 0 --seed 0x2a
good "--listen PORT" up --help

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
