#!/usr/bin/env bash
# Real peer, real programs: unmodified Debian programs with their TCP over ustack
# (`ustack run -- PROGRAM`, libustack-preload.so), the Linux kernel on the other side, data
# verified both ways: curl and wget downloading from a Linux python3 http.server; python3's
# http.server over ustack serving curl; OpenBSD nc both ways; iperf3 both ways, ustack as the
# client and as the server; redis-server over ustack under redis-benchmark from Linux, and
# redis-benchmark over ustack against Linux's redis-server; nginx (daemon off, master_process
# off, sendfile on) over ustack serving curl and ab from Linux.  Readiness of a ustack-side server is read through its control
# socket (`ustack ss --name N -ltn`), as an operator would.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=${1:?usage: preload.sh PATH-TO-ustack [PATH-TO-preload_eintr]}
eintr=${2:-}
interop_require
for p in python3 curl wget nc iperf3 sha256sum redis-server redis-benchmark redis-cli nginx ab; do
	command -v "$p" >/dev/null || skip "no $p"
done
[ -r "$(dirname "$bin")/libustack-preload.so" ] || skip "no libustack-preload.so beside $bin"
interop_setup
export USTACK_RUN_DIR="$TMP/run"
# one MAC for every instance: Linux keeps the first ARP answer for a second (locktime), so a
# new instance with a new MAC right after the last one would not be heard
LINK=(--tap tap0 --mac 02:00:00:00:00:02 --addr 192.0.2.2/24)
nsx() { ip netns exec "$NS" "$@"; }
run() { nsx timeout 60 "$bin" run "${LINK[@]}" "$@"; }
# the same in the background: not through run(), since a backgrounded function is a subshell
# that a signal would not get past
RUN=(ip netns exec "$NS" timeout 60 "$bin" run "${LINK[@]}")
fail() { echo "FAIL: $*"; exit 1; }
sum() { sha256sum <"$1" | cut -d' ' -f1; }

# ustack_listening NAME PORT PID: the program under `ustack run --name NAME` listens on PORT
ustack_listening() {
	local i
	for ((i = 0; i < 500; i++)); do
		[[ "$(nsx "$bin" ss --name "$1" -ltn 2>/dev/null)" =~ LISTEN[^$'\n']*:$2\  ]] && return 0
		kill -0 "$3" 2>/dev/null || fail "$1 exited before listening on $2"
		sleep 0.02
	done
	fail "$1 is not listening on $2 after 10 s"
}

mkdir -p "$TMP/www"
head -c 3000000 /dev/urandom >"$TMP/www/file.bin"
want=$(sum "$TMP/www/file.bin")

# 1. curl and wget over ustack, downloading from Linux's python3 http.server
nsx timeout 120 python3 -m http.server --bind 192.0.2.1 8000 --directory "$TMP/www" >"$TMP/linux_http.log" 2>&1 &
http=$!
wait_for_listener "$NS" 8000 10 "$http"
run --pcap "$TMP/curl.pcap" -- curl -sS -o "$TMP/curl.bin" http://192.0.2.1:8000/file.bin || fail "curl exited $?"
[ "$(sum "$TMP/curl.bin")" = "$want" ] || fail "curl over ustack: the download differs"
# it was ustack that carried it: ustack's capture has the handshake from 192.0.2.2
tcpdump -nr "$TMP/curl.pcap" >"$TMP/curl.txt" 2>/dev/null
grep -qE 'IP 192\.0\.2\.2\.[0-9]+ > 192\.0\.2\.1\.8000: Flags \[S\]' "$TMP/curl.txt" ||
	fail "no SYN in ustack's capture of curl"
echo "ok 1a: curl over ustack ← Linux http.server, 3000000 bytes, sha256 equal"
run -- wget -q -O "$TMP/wget.bin" http://192.0.2.1:8000/file.bin || fail "wget exited $?"
[ "$(sum "$TMP/wget.bin")" = "$want" ] || fail "wget over ustack: the download differs"
echo "ok 1b: wget over ustack ← Linux http.server, sha256 equal"
kill "$http"; wait "$http" 2>/dev/null || true

# 2. python3's http.server over ustack, serving Linux's curl; ustack ss sees its sockets
"${RUN[@]}" --name web -- python3 -m http.server --bind 192.0.2.2 8080 --directory "$TMP/www" >"$TMP/web.log" 2>&1 &
web=$!
ustack_listening web 8080 "$web"
# the library's threads (run loop, control socket) take no signal: a signal sent to the program
# runs its handler on the program's own thread, interrupting the call it is blocked in
py=$(pgrep -nf "http.server --bind 192.0.2.2 8080")
lib=0
for t in /proc/"$py"/task/*; do
	[ "${t##*/}" = "$py" ] && continue
	blk=$(awk '/^SigBlk/ { print $2 }' "$t/status")
	(((16#$blk & 0x4002) == 0x4002)) || fail "thread ${t##*/} of http.server takes SIGINT/SIGTERM (SigBlk $blk)"
	lib=$((lib + 1))
done
[ "$lib" -ge 2 ] || fail "http.server under ustack run: $lib threads of the library's, not 2"
nsx timeout 30 curl -sS -o "$TMP/served.bin" http://192.0.2.2:8080/file.bin || fail "Linux curl exited $?"
[ "$(sum "$TMP/served.bin")" = "$want" ] || fail "http.server over ustack: the download differs"
nsx "$bin" ss --name web -tan >"$TMP/web_ss.txt"
grep -qE '^LISTEN +0 +[0-9]+ +192\.0\.2\.2:8080 ' "$TMP/web_ss.txt" || fail "ustack ss --name web"
kill -TERM "$web"; wait "$web" 2>/dev/null || true
echo "ok 2: python3 http.server over ustack → Linux curl, sha256 equal; the library's $lib threads take no signal"

# 3. OpenBSD nc both ways (-N: half-close at the end of stdin)
nsx timeout 60 nc -l -N 192.0.2.1 9000 >"$TMP/nc_linux.out" </dev/null &
ncl=$!
wait_for_listener "$NS" 9000 10 "$ncl"
run -- nc -N 192.0.2.1 9000 <"$TMP/www/file.bin" || fail "nc over ustack exited $?"
wait "$ncl" || fail "Linux nc -l exited $?"
[ "$(sum "$TMP/nc_linux.out")" = "$want" ] || fail "nc over ustack → Linux nc -l: data differs"
"${RUN[@]}" --name ncl -- nc -l -N 192.0.2.2 9001 >"$TMP/nc_ustack.out" </dev/null &
ncu=$!
ustack_listening ncl 9001 "$ncu"
nsx timeout 60 nc -N 192.0.2.2 9001 <"$TMP/www/file.bin" || fail "Linux nc exited $?"
wait "$ncu" || fail "nc -l over ustack exited $?"
[ "$(sum "$TMP/nc_ustack.out")" = "$want" ] || fail "Linux nc → nc -l over ustack: data differs"
echo "ok 3: OpenBSD nc both ways, sha256 equal"

# 4. iperf3 over ustack against Linux's iperf3, both directions (-R), each side the client
iperf_bits() { sed -n 's/.* \([0-9.]* [GMK]bits\/sec\) .* receiver$/\1/p' "$1" | tail -1; }
nsx timeout 60 iperf3 -s -1 -B 192.0.2.1 >"$TMP/iperf_s1.log" 2>&1 &
srv=$!
wait_for_listener "$NS" 5201 10 "$srv"
run -- iperf3 -c 192.0.2.1 -t 2 >"$TMP/iperf_c1.log" 2>&1 || { cat "$TMP/iperf_c1.log"; fail "iperf3 -c over ustack"; }
wait "$srv" || true
nsx timeout 60 iperf3 -s -1 -B 192.0.2.1 >"$TMP/iperf_s2.log" 2>&1 &
srv=$!
wait_for_listener "$NS" 5201 10 "$srv"
run -- iperf3 -c 192.0.2.1 -t 2 -R >"$TMP/iperf_c2.log" 2>&1 || { cat "$TMP/iperf_c2.log"; fail "iperf3 -c -R over ustack"; }
wait "$srv" || true
"${RUN[@]}" --name ip3 -- iperf3 -s -B 192.0.2.2 >"$TMP/iperf_s3.log" 2>&1 &
srv=$!
ustack_listening ip3 5201 "$srv"
nsx timeout 60 iperf3 -c 192.0.2.2 -t 2 >"$TMP/iperf_c3.log" 2>&1 || { cat "$TMP/iperf_c3.log"; fail "Linux iperf3 → server over ustack"; }
nsx timeout 60 iperf3 -c 192.0.2.2 -t 2 -R >"$TMP/iperf_c4.log" 2>&1 || { cat "$TMP/iperf_c4.log"; fail "Linux iperf3 -R ← server over ustack"; }
kill -TERM "$srv"; wait "$srv" 2>/dev/null || true
for i in 1 2 3 4; do
	grep -q 'iperf Done' "$TMP/iperf_c$i.log" || { cat "$TMP/iperf_c$i.log"; fail "iperf3 run $i"; }
done
echo "ok 4: iperf3 over ustack: client → $(iperf_bits "$TMP/iperf_c1.log"), client -R ← $(iperf_bits "$TMP/iperf_c2.log"), server ← $(iperf_bits "$TMP/iperf_c3.log"), server -R → $(iperf_bits "$TMP/iperf_c4.log")"

# 5. redis: the server over ustack under Linux's redis-benchmark (and a value set and read
#    back), then redis-benchmark over ustack against Linux's server; a clean SIGTERM shutdown
#    (redis panics if epoll_wait fails with anything but EINTR)
"${RUN[@]}" --name redis -- redis-server --bind 192.0.2.2 --port 6379 --save '' --appendonly no \
	--protected-mode no >"$TMP/redis.log" 2>&1 &
rs=$!
ustack_listening redis 6379 "$rs"
[ "$(nsx timeout 30 redis-cli -h 192.0.2.2 set k "over ustack")" = OK ] || fail "redis-cli set"
[ "$(nsx timeout 30 redis-cli -h 192.0.2.2 get k)" = "over ustack" ] || fail "redis-cli get"
nsx timeout 120 redis-benchmark -h 192.0.2.2 -q -n 20000 -c 20 -t set,get >"$TMP/rb1.log" 2>&1 || fail "redis-benchmark → ustack"
kill -TERM "$rs"; rc=0; wait "$rs" || rc=$?
[ "$rc" -eq 0 ] && grep -q 'ready to exit' "$TMP/redis.log" || { tail -20 "$TMP/redis.log"; fail "redis-server over ustack exited $rc"; }
nsx timeout 120 redis-server --bind 192.0.2.1 --port 6380 --save '' --appendonly no --protected-mode no >"$TMP/redis2.log" 2>&1 &
rs=$!
wait_for_listener "$NS" 6380 10 "$rs"
run -- redis-benchmark -h 192.0.2.1 -p 6380 -q -n 20000 -c 20 -t set,get >"$TMP/rb2.log" 2>&1 || fail "redis-benchmark over ustack"
kill "$rs"; wait "$rs" 2>/dev/null || true
rps() { tr '\r' '\n' <"$1" | sed -n "s/^$2: \([0-9.]*\) requests per second.*/\1/p" | tail -1; }
for f in rb1 rb2; do
	[ -n "$(rps "$TMP/$f.log" SET)" ] && [ -n "$(rps "$TMP/$f.log" GET)" ] || { cat "$TMP/$f.log"; fail "$f: no results"; }
done
echo "ok 5: redis-server over ustack ← redis-benchmark SET $(rps "$TMP/rb1.log" SET)/s GET $(rps "$TMP/rb1.log" GET)/s; redis-benchmark over ustack → Linux SET $(rps "$TMP/rb2.log" SET)/s GET $(rps "$TMP/rb2.log" GET)/s"

# 6. nginx over ustack (sendfile on: the file goes through the library's sendfile) serving
#    curl and ab
mkdir -p "$TMP/ngx"
echo "hello from nginx over ustack" >"$TMP/www/small.html"
printf '%s\n' "daemon off;" "master_process off;" "worker_processes 1;" "error_log stderr notice;" \
	"pid $TMP/ngx/nginx.pid;" "events { worker_connections 256; }" "http {" "access_log off;" \
	"client_body_temp_path $TMP/ngx/body;" "proxy_temp_path $TMP/ngx/proxy;" \
	"fastcgi_temp_path $TMP/ngx/fastcgi;" "uwsgi_temp_path $TMP/ngx/uwsgi;" "scgi_temp_path $TMP/ngx/scgi;" \
	"sendfile on;" "server { listen 192.0.2.2:8080; root $TMP/www; }" "}" >"$TMP/ngx/nginx.conf"
"${RUN[@]}" --name ngx -- nginx -c "$TMP/ngx/nginx.conf" -e stderr >"$TMP/ngx.log" 2>&1 &
ngx=$!
ustack_listening ngx 8080 "$ngx"
nsx timeout 30 curl -sS -o "$TMP/ngx.bin" http://192.0.2.2:8080/file.bin || fail "curl ← nginx over ustack"
[ "$(sum "$TMP/ngx.bin")" = "$want" ] || fail "nginx over ustack: the file differs"
nsx timeout 120 ab -q -n 2000 -c 10 http://192.0.2.2:8080/small.html >"$TMP/ab.log" 2>&1 || { cat "$TMP/ab.log"; fail "ab"; }
grep -qE '^Complete requests: +2000$' "$TMP/ab.log" && grep -qE '^Failed requests: +0$' "$TMP/ab.log" || { cat "$TMP/ab.log"; fail "ab: failures"; }
kill -TERM "$ngx"; wait "$ngx" 2>/dev/null || true
echo "ok 6: nginx over ustack: 3000000 bytes by sendfile, sha256 equal; ab: 2000 requests, $(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$TMP/ab.log")/s"

# 7. what stays the kernel's: a program's Unix and UDP sockets (python, over ustack)
run -- python3 - <<'PY' || fail "Unix/UDP sockets under ustack run"
import socket
a, b = socket.socketpair()
a.sendall(b"unix"); assert b.recv(4) == b"unix"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
u.sendto(b"udp", u.getsockname()); assert u.recv(3) == b"udp"
PY
echo "ok 7: Unix and UDP sockets stay the kernel's under ustack run"

# 7c. poll and select over more descriptors than the library keeps on its stack (64): 70 fresh
#     ustack sockets and a kernel pipe, each answered as Linux answers (a socket never
#     connected: POLLOUT|POLLHUP; select counts the hang-up as readable)
run -- python3 - <<'PY' || fail "poll/select over 71 descriptors under ustack run"
import os, select, socket
ss = [socket.socket() for _ in range(70)]
r, w = os.pipe()
os.write(w, b"x")
p = select.poll()
for s in ss:
    p.register(s, select.POLLIN | select.POLLOUT)
p.register(r, select.POLLIN)
ev = dict(p.poll(1000))
assert len(ev) == 71 and {ev[s.fileno()] for s in ss} == {select.POLLOUT | select.POLLHUP} and ev[r] == select.POLLIN, ev
rl, wl, _ = select.select(ss + [r], ss, [], 1)
assert len(rl) == 71 and len(wl) == 70, (len(rl), len(wl))
PY
echo "ok 7c: poll and select over 71 descriptors, as Linux answers them"

# 7d. a blocking connect refused, twice on one socket, as on the kernel's: the failed
#     connect() disconnects the socket (address forgotten, port still named), so the next
#     one starts afresh instead of answering ECONNABORTED
run -- python3 - <<'PY' || fail "a refused blocking connect() twice under ustack run"
import errno, socket
s = socket.socket()
for i in range(2):
    try:
        s.connect(("192.0.2.1", 9))
        raise SystemExit("connect to a closed port succeeded")
    except OSError as e:
        assert e.errno == errno.ECONNREFUSED, (i, e)
    addr, port = s.getsockname()
    assert addr == "0.0.0.0" and port != 0, s.getsockname()
PY
echo "ok 7d: a refused blocking connect() twice on one socket: ECONNREFUSED both times"

# 7a. fork: the parent keeps the stack; a child that uses an inherited ustack socket gets
#     EBADF (and one message), never the parent's connection; closing it is fine
nsx timeout 60 python3 -c 'import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", 9200)); l.listen(1)
c, _ = l.accept(); got = b""
while d := c.recv(64): got += d
print("got:", got.decode())' >"$TMP/fork_peer.log" 2>&1 &
peer=$!
wait_for_listener "$NS" 9200 10 "$peer"
run -- python3 - 2>"$TMP/fork.err" <<'PY' || { cat "$TMP/fork.err"; fail "fork under ustack run"; }
import errno, os, socket
t = socket.create_connection(("192.0.2.1", 9200))
pid = os.fork()
if pid == 0:
    try:
        t.send(b"child")
        os._exit(2)
    except OSError as e:
        t.close()
        os._exit(0 if e.errno == errno.EBADF else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
t.sendall(b"parent")
t.close()
PY
wait "$peer" || fail "the fork test's peer"
grep -qx 'got: parent' "$TMP/fork_peer.log" || { cat "$TMP/fork_peer.log"; fail "fork: the peer got something else"; }
grep -q 'a forked child cannot use it (EBADF)' "$TMP/fork.err" || { cat "$TMP/fork.err"; fail "fork: no message"; }
echo "ok 7a: after fork the child gets EBADF for the parent's ustack socket; the parent's data arrives alone"

# 7b. signals and timeouts: a blocking recv or accept over ustack is interrupted as the kernel's
#     would be — EINTR without SA_RESTART, restarted with it (set by sigaction or by signal(),
#     and beside another handler of the other kind), EINTR anyway under SO_RCVTIMEO, which
#     also ends a recv with EAGAIN; a blocking send that has sent part returns its count when
#     a handler runs, even with SA_RESTART; and sendmmsg (preload_eintr, a plain C program).  The
#     same program runs on the kernel's own sockets first: what it checks is Linux's behaviour.
# eintr_run PORT LISTEN-PORT [ustack run's arguments...]: the peer, then the program
eintr_run() {
	local port=$1 lport=$2
	shift 2
	nsx timeout 60 python3 - "$port" >"$TMP/eintr_peer.log" 2>&1 <<'PY' &
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("192.0.2.1", int(sys.argv[1]))); l.listen(1)
c, _ = l.accept()
buf = rest = b""
gos, held = 0, None
while d := c.recv(1 << 16):  # each "go" answered with an "x"; the rest kept until "hold"
    if held is not None:
        held += len(d)
        continue
    buf += d
    while (i := buf.find(b"go")) >= 0:
        rest += buf[:i]
        buf = buf[i + 2:]
        c.sendall(b"x")
        gos += 1
    if (i := buf.find(b"hold")) >= 0:  # read nothing more until a second connection comes
        rest += buf[:i]
        held, buf = len(buf) - i - 4, b""
        l.accept()[0].close()
if not gos:
    raise SystemExit("no go")
print("after go:", (rest + buf).decode())
print("after hold:", held)
PY
	local peer=$!
	wait_for_listener "$NS" "$port" 10 "$peer"
	# on failure the peer's side too (a reset it saw, an exception): it failed once under load
	"$@" "$eintr" 192.0.2.1 "$port" "$lport" >"$TMP/eintr.out" 2>&1 ||
		{ cat "$TMP/eintr.out"; echo "-- the peer:"; cat "$TMP/eintr_peer.log"; fail "preload_eintr: $*"; }
	wait "$peer" || { cat "$TMP/eintr_peer.log"; fail "the peer of preload_eintr"; }
	cat "$TMP/eintr.out"
	grep -qx 'after go: abcd' "$TMP/eintr_peer.log" || { cat "$TMP/eintr_peer.log"; fail "sendmmsg's messages"; }
	local sent
	sent=$(sed -n 's/^ok send: \([0-9]*\) of .*/\1/p' "$TMP/eintr.out")
	grep -qx "after hold: $sent" "$TMP/eintr_peer.log" ||
		{ cat "$TMP/eintr_peer.log"; fail "the partial send: the peer got other than the $sent bytes said"; }
}
if [ -n "$eintr" ]; then
	eintr_run 9102 9103 nsx timeout 60 # the kernel's sockets (the namespace's own 192.0.2.1)
	eintr_run 9100 9101 nsx timeout 60 "$bin" run "${LINK[@]}" --
	echo "ok 7b: EINTR, SA_RESTART and SO_RCVTIMEO over ustack as on the kernel's sockets; sendmmsg"
fi

# 8. bad use: a missing program, and the usage errors
rc=0; nsx "$bin" run "${LINK[@]}" -- /nonexistent 2>"$TMP/err" || rc=$?
[ "$rc" -eq 127 ] && grep -q 'ustack run: /nonexistent: No such file or directory' "$TMP/err" || fail "missing program: $rc"
rc=0; nsx "$bin" run "${LINK[@]}" curl 2>"$TMP/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'ustack run: unexpected' "$TMP/err" || fail "program without --: $rc"
rc=0; nsx "$bin" run "${LINK[@]}" -o net.ipv4.nope=1 -- true 2>"$TMP/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown sysctl 'net.ipv4.nope'" "$TMP/err" || fail "bad sysctl: $rc"
# a stack that cannot start (no such AF_XDP interface): the socket call fails with its errno
# and the program exits as it would, the library having nothing to drain
rc=0; nsx env LD_PRELOAD="$(dirname "$bin")/libustack-preload.so" USTACK_XDP=nosuch0 USTACK_ADDR=192.0.2.9/24 \
	python3 -c 'import errno, socket
try:
    socket.socket()
except OSError as e:
    raise SystemExit(0 if e.errno == errno.ENODEV else 3)
raise SystemExit(4)' 2>"$TMP/err" || rc=$?
[ "$rc" -eq 0 ] && grep -q 'ustack could not start' "$TMP/err" || { cat "$TMP/err"; fail "a stack that cannot start: $rc"; }
echo "ok 8: ustack run's errors; a stack that cannot start"
echo "PASS: curl, wget, python3 http.server, OpenBSD nc, iperf3, redis and nginx over ustack (ustack run)"
