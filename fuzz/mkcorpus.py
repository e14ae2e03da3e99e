#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

    python3 fuzz/mkcorpus.py            # regenerate (replaces the seed files)

Each seed is a small, meaningful input in the format the target's header comment documents
(fuzz/fuzz_*.c); the builders below mirror those formats.  Keep the corpus small: libFuzzer
finds the rest, and long campaigns keep their own corpus outside the repository
(FUZZ_CORPUS_DIR, see scripts/fuzz).
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

STACK_IP = 0xC0000202
PEER_IP = 0xC0000201
STACK_MAC = bytes([2, 0, 0, 0, 0, 2])


def peer_mac(ip):
    return bytes([2, 0]) + struct.pack(">I", ip)


def u8(v):
    return struct.pack(">B", v & 0xFF)


def u16(v):
    return struct.pack(">H", v & 0xFFFF)


def s16(v):
    return struct.pack(">h", v)


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def csum(b):
    if len(b) & 1:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_hdr(proto, src, dst, payload_len, ident=1, frag=0x4000, ttl=64, opts=b""):
    ihl = 20 + len(opts)
    h = struct.pack(">BBHHHBBHII", 0x40 | ihl // 4, 0, ihl + payload_len, ident, frag, ttl, proto, 0, src, dst) + opts
    return h[:10] + u16(csum(h)) + h[12:]


def tcp_seg(src, dst, sport, dport, seq, ack, flags, win=65535, opts=b"", payload=b""):
    while len(opts) % 4:
        opts += b"\0"
    hl = 20 + len(opts)
    t = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, (hl // 4) << 4, flags, win, 0, 0) + opts + payload
    pseudo = struct.pack(">IIBBH", src, dst, 0, 6, len(t))
    c = csum(pseudo + t)
    return t[:16] + u16(c) + t[18:]


def icmp_echo(ident, seq, payload=b"", typ=8):
    m = struct.pack(">BBHHH", typ, 0, 0, ident, seq) + payload
    return m[:2] + u16(csum(m)) + m[4:]


def eth(dst, src, etype, payload):
    return dst + src + u16(etype) + payload


def arp_body(op, sha, spa, tha, tpa):
    return struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + sha + u32(spa) + tha + u32(tpa)


SYN_OPTS = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0x13, 0x88, 0, 0, 0, 0, 1, 3, 3, 7])
TCP_SYN, TCP_FIN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 2, 1, 4, 8, 16, 32


# ---- fuzz_stack: the opcode stream (see fuzz/fuzz_stack.c) ----

class Stack:
    ETHER, PASSIVE, ACTIVE, SACK, TS, WS, TRACE, SYSCTL = 1, 2, 4, 8, 16, 32, 64, 128

    def __init__(self, cfg, sysctl=None):
        self.b = u8(cfg)
        if cfg & Stack.SYSCTL:
            self.b += u8(sysctl[0]) + u8(sysctl[1])

    def seg(self, flow=0, flags=TCP_ACK, seq=None, ack=None, win=65535, plen=0, ts=False,
            sack=None, raw=None, ext=0, ext_fields=b"", payload=None, rel_rcv=False, dup=False):
        """seq: None = the peer's next byte; int = offset from it (or from the stack's rcv_nxt
        with rel_rcv).  ack: None = all the stack sent; int = snd_una + ack; dup = snd_una."""
        mode = 0
        fields = b""
        if seq is not None:
            mode |= 1 if rel_rcv else 2
            fields += s16(seq)
        if dup:
            mode |= 2 << 2
        elif ack is not None:
            mode |= 1 << 2
            fields += u16(ack)
        if ts:
            mode |= 0x10
        if sack:
            mode |= 0x20
        if raw is not None:
            mode |= 0x40
        if payload is not None:
            ext |= 0x40
        if ext:
            mode |= 0x80
        out = u8(0) + u8(flow) + u8(flags) + u8(mode) + fields + u16(win)
        if plen < 128:
            out += u8(plen)
        else:
            out += u8(127 + (plen * 128 + 1459) // 1460)
        if ext:
            out += u8(ext) + ext_fields
        if sack:
            out += u8(len(sack) - 1)
            for start, length in sack:
                out += u16(start) + u16(length)
        if raw is not None:
            out += u8(len(raw)) + raw
        if payload is not None:
            out += payload
        self.b += out
        return self

    def time(self, t):
        self.b += u8(2) + u8(t)
        return self

    def sock(self, op, a=0, extra=b""):
        self.b += u8(3) + u8(op) + u8(a) + extra
        return self

    def fd(self, n):  # descriptor n (3..10) as the 'a' byte
        return n - 3

    def send(self, fd, n, flags=0):
        return self.sock(5, fd - 3, u16(n) + u8(flags))

    def recv(self, fd, n, flags=0):
        return self.sock(6, fd - 3, u16(n) + u8(flags))

    def setsockopt(self, fd, opt, val):
        return self.sock(9, fd - 3, u8(opt) + u32(val))

    def icmp(self, flow, kind, mode=0, extra=b""):
        self.b += u8(5) + u8(flow) + u8(kind) + u8(mode) + extra
        return self

    def raw(self, ctrl, pkt):
        self.b += u8(6) + u8(ctrl) + u16(len(pkt)) + pkt
        return self

    def misc(self, sub, extra=b""):
        self.b += u8(7) + u8(sub) + extra
        return self


def stack_seeds():
    P = Stack.PASSIVE
    S = {}
    # passive open, data both ways, an out-of-order segment and its SACK, close
    s = Stack(P | Stack.SACK | Stack.TS | Stack.WS)
    s.send(4, 3000).seg(ts=True).seg(flags=TCP_ACK | TCP_PSH, ts=True, plen=100).time(50)
    s.seg(flags=TCP_ACK | TCP_PSH, ts=True, plen=100, seq=300, rel_rcv=True)
    s.seg(flags=TCP_ACK | TCP_PSH, ts=True, plen=100, seq=0, rel_rcv=True).recv(4, 4096)
    s.sock(8, 1).time(250)
    S["passive_data_close"] = s
    # active open, request/response, half-close from the stack, the peer's FIN, TIME_WAIT
    s = Stack(Stack.ACTIVE | Stack.TS)
    s.send(3, 200).seg(ts=True).seg(flags=TCP_ACK | TCP_PSH, ts=True, plen=500).recv(3, 1000)
    s.sock(7, (1 << 3)).seg(ts=True).seg(flags=TCP_ACK | TCP_FIN, ts=True).time(100).sock(8, 0).time(251).time(251)
    S["active_shutdown_timewait"] = s
    # SACK recovery: 14600 bytes out, the second segment lost, SACKs for the rest
    s = Stack(P | Stack.SACK)
    s.setsockopt(4, 5, 1).send(4, 14600)
    s.seg(ack=1460)
    for k in range(1, 5):
        s.seg(dup=True, sack=[(1460, 1460 * k)])
    s.time(30).seg().time(251).time(251)
    S["sack_recovery"] = s
    # NewReno without SACK: three duplicate ACKs, a partial ACK, then the RTO
    s = Stack(P)
    s.send(4, 14600).seg(ack=1460).seg(dup=True).seg(dup=True).seg(dup=True).seg(ack=2920).time(251).seg()
    S["dupacks_newreno"] = s
    # zero window, probes, window opens
    s = Stack(P)
    s.seg(win=0).send(4, 4000).time(120).time(251).time(251).seg(win=65535).seg()
    S["zero_window_probe"] = s
    # backlog 0 listener, a SYN flood, shutdown(SHUT_RD) and close with requests pending
    s = Stack(0)
    s.sock(0, 0).sock(1, 0, u8(0)).sock(2, 0, u8(0)).misc(6 | (3 << 3))
    s.seg(flow=0x80, flags=TCP_SYN).seg(flow=0x82, flags=TCP_SYN).sock(4, 0)
    s.sock(7, 0).sock(8, 0).time(251).time(251)
    S["listener_synflood_close"] = s
    # keepalive after an idle connection
    s = Stack(P)
    s.setsockopt(4, 7, 1).setsockopt(4, 8, 1).setsockopt(4, 9, 1).setsockopt(4, 10, 2)
    s.time(251).time(251).time(251).time(251)
    S["keepalive"] = s
    # ICMP fragmentation needed on the established connection, then data
    s = Stack(P | Stack.TS)
    s.send(4, 6000).icmp(0, 0, 0, u16(1000)).time(10).seg(ts=True).time(251)
    S["icmp_frag_needed"] = s
    # Ethernet link: ARP, ping, a fragmented echo request, the stack's reply
    s = Stack(Stack.ETHER | Stack.TRACE)
    s.misc(2).misc(0, u16(100)).misc(1, u16(3000) + u8(100) + u8(0)).time(99)
    S["ether_ping_fragments"] = s
    # RFC 5961: an in-window RST and SYN on an established connection, then a valid RST
    s = Stack(P | Stack.TS)
    s.seg(flags=TCP_RST, seq=100, rel_rcv=True).seg(flags=TCP_SYN, ts=True).time(1).seg(flags=TCP_RST | TCP_ACK, ts=True)
    S["rfc5961_rst_syn"] = s
    # socket options: SO_LINGER {1, 0}, TCP_MAXSEG, SO_RCVBUF, TCP_INFO, close → RST
    s = Stack(P)
    s.setsockopt(4, 1, 536).setsockopt(4, 3, 4096).setsockopt(4, 0, 1).sock(10, 1).send(4, 2000).seg(plen=100)
    s.sock(10, 1).sock(12, 0).sock(8, 1).time(10)
    S["sockopts_linger_rst"] = s
    # epoll on a connection, data arrives, poll, read
    s = Stack(P)
    s.sock(14, 0).sock(15, 1, u8(0)).seg(flags=TCP_ACK | TCP_PSH, plen=50).sock(16, 0).recv(4, 100)
    s.send(4, 3000, 3 | 4).seg().sock(17, 1 | 0x40).sock(15, 1, u8(2 << 5)).sock(8, 0x40)
    S["epoll"] = s
    # connect to a closed port: RST → ECONNREFUSED; connect beyond the gateway, timeouts
    s = Stack(0)
    s.sock(0, 0).sock(3, 0, u8(0)).sock(0, 1).sock(3, 1, u8(1 | (2 << 2)))
    s.seg(flow=0, flags=TCP_RST | TCP_ACK).sock(10, 0 | (2 << 3)).time(251).time(251).time(251)
    S["connect_refused_timeout"] = s
    # 18 small data segments: quick ACKs, then the delayed-ACK timer
    s = Stack(P)
    for _ in range(18):
        s.seg(flags=TCP_ACK | TCP_PSH, plen=100)
    s.time(50).recv(4, 4000)
    S["delayed_ack"] = s
    # a SYN to a listener left unanswered: SYN-ACK retransmissions, then the late ACK
    s = Stack(0)
    s.sock(0, 0).sock(1, 0, u8(0)).sock(2, 0, u8(4)).seg(flow=0x80, flags=TCP_SYN)
    s.time(251).time(251).time(251).seg(flow=0).sock(4, 0).time(251).time(251).time(251)
    S["synack_retrans"] = s
    # sysctls: Reno, no SACK, and the simultaneous stuff of a passive open
    s = Stack(P | Stack.SYSCTL, sysctl=(6, 0))
    s.send(4, 5000).seg(ack=1000).seg(ack=2000).time(200)
    S["sysctl_reno"] = s
    return {k: v.b for k, v in S.items()}


# ---- fuzz_ether: one frame ----

def ether_seeds():
    S = {}
    S["arp_request"] = eth(b"\xff" * 6, peer_mac(PEER_IP), 0x0806,
                           arp_body(1, peer_mac(PEER_IP), PEER_IP, b"\0" * 6, STACK_IP))
    echo = icmp_echo(1, 1, bytes(range(32)))
    S["echo_request"] = eth(STACK_MAC, peer_mac(PEER_IP), 0x0800, ip_hdr(1, PEER_IP, STACK_IP, len(echo), frag=0) + echo)
    syn = tcp_seg(PEER_IP, STACK_IP, 40000, 80, 1000, 0, TCP_SYN, opts=SYN_OPTS)
    S["tcp_syn"] = eth(STACK_MAC, peer_mac(PEER_IP), 0x0800, ip_hdr(6, PEER_IP, STACK_IP, len(syn)) + syn)
    S["runt"] = bytes(10)
    S["ipv6"] = eth(STACK_MAC, peer_mac(PEER_IP), 0x86DD, bytes(40))
    first = icmp_echo(2, 2, bytes(64))[:48]
    S["first_fragment"] = eth(STACK_MAC, peer_mac(PEER_IP), 0x0800,
                              ip_hdr(1, PEER_IP, STACK_IP, len(first), ident=7, frag=0x2000) + first)
    S["multicast"] = eth(bytes([1, 0, 0x5E, 0, 0, 1]), peer_mac(PEER_IP), 0x0800,
                         ip_hdr(1, PEER_IP, 0xE0000001, len(echo), frag=0) + echo)
    return S


# ---- fuzz_arp: config + records ----

def arp_seeds():
    def rec_arp(fix, body):
        return u8(0) + u8(fix) + body

    def rec_time(t):
        return u8(1) + u8(t)

    def rec_ping(x, n):
        return u8(2) + u8(x) + u16(n)

    def rec_sysctl(sel, val):
        return u8(3) + u8(sel) + u8(val)

    def rec_echo(x):
        return u8(4) + u8(x)

    def rec_tcp(x):
        return u8(5) + u8(x)

    reply = arp_body(2, peer_mac(PEER_IP), PEER_IP, STACK_MAC, STACK_IP)
    request = arp_body(1, peer_mac(0xC0000205), 0xC0000205, b"\0" * 6, STACK_IP)
    grat = arp_body(1, peer_mac(PEER_IP), PEER_IP, b"\0" * 6, PEER_IP)
    S = {}
    S["auto_ping"] = u8(1) + rec_ping(1, 56) + rec_time(129) + rec_time(250) + rec_time(250)
    S["reply_stale_delay_probe"] = (u8(0) + rec_ping(1, 56) + rec_arp(0, reply) + rec_time(160) + rec_ping(1, 56)
                                    + rec_time(134) + rec_time(129) + rec_arp(0, reply) + rec_time(250))
    S["request_creates_stale"] = u8(0) + rec_arp(0x20, request) + rec_echo(5) + rec_time(134) + rec_time(130)
    S["unanswered_failed_queue"] = (u8(0) + rec_ping(7, 1400) + rec_ping(7, 1400) + rec_ping(7, 1400)
                                    + rec_time(129) + rec_time(129) + rec_time(129) + rec_time(129) + rec_ping(7, 10))
    S["gratuitous"] = u8(0) + rec_ping(1, 8) + rec_arp(0x20, reply) + rec_arp(0x20, grat) + rec_time(250)
    S["tcp_syn_waits"] = u8(0) + rec_tcp(9) + rec_time(129) + rec_time(130) + rec_time(250) + rec_time(250)
    S["sysctls"] = u8(1) + rec_sysctl(1, 2) + rec_sysctl(3, 0) + rec_ping(1, 100) + rec_time(200) + rec_time(250)
    S["parse_only"] = reply
    return S


# ---- fuzz_ipv4: records ----

def ipv4_seeds():
    def pkt(fix, b, extra=b""):
        return u8(0) + u8(fix) + u16(len(b)) + b + extra

    def dgram(slot, kind, n):
        return u8(1) + u8(slot) + u8(kind) + u16(n)

    def frag(slot, off8, n, flags):
        return u8(2) + u8(slot) + u16(off8) + u16(n) + u8(flags)

    def allf(slot, size8, order):
        return u8(3) + u8(slot) + u8(size8) + u8(order)

    def time(t):
        return u8(4) + u8(t)

    def sysctl(sel, val):
        return u8(5) + u8(sel) + u8(val)

    echo = icmp_echo(3, 3, bytes(range(40)))
    S = {}
    S["reassemble_echo"] = dgram(0, 0, 3000) + allf(0, 185, 0) + time(10)
    S["reassemble_reversed"] = dgram(1, 0, 4000) + allf(1, 100, 1) + time(10)
    S["even_odd_dup"] = dgram(0, 0, 2000) + allf(0, 50, 2) + allf(0, 50, 0)
    S["overlap"] = dgram(0, 0, 3000) + frag(0, 0, 1480, 0) + frag(0, 100, 1000, 0) + frag(0, 185, 1528, 0)
    S["timeout_time_exceeded"] = dgram(0, 0, 2000) + frag(0, 0, 1000, 0) + time(131) + time(250)
    S["plain_echo"] = pkt(0x8F, ip_hdr(1, PEER_IP, STACK_IP, len(echo), frag=0) + echo)
    S["ip_options"] = pkt(0x03, ip_hdr(1, PEER_IP, STACK_IP, len(echo), frag=0, opts=bytes([1, 1, 1, 0])) + echo)
    S["tiny_tcp_fragments"] = dgram(2, 1, 100) + allf(2, 1, 0) + time(1)
    S["memory_bound"] = sysctl(1, 3) + dgram(0, 0, 8000) + allf(0, 100, 4) + dgram(1, 3, 8000) + allf(1, 100, 4) + time(250)
    S["udp_proto_unreach"] = dgram(3, 2, 100) + allf(3, 185, 0)
    syn = tcp_seg(PEER_IP, STACK_IP, 40000, 80, 1000, 0, TCP_SYN, opts=SYN_OPTS)
    S["parse_tcp_syn"] = ip_hdr(6, PEER_IP, STACK_IP, len(syn)) + syn
    return S


# ---- fuzz_icmp: records after the set-up ----

def icmp_seeds():
    def msg(b, fix):
        return u8(0) + u8(len(b)) + b + u8(fix)

    def err(flow, kind, mode=0, extra=b""):
        return u8(1) + u8(flow) + u8(kind) + u8(mode) + extra

    def time(t):
        return u8(2) + u8(t)

    def sock(op, a, extra=b""):
        return u8(3) + u8(op) + u8(a) + extra

    def ack_all():
        return u8(4) + u8(0) + u8(TCP_ACK) + u8(0x10) + u16(65535) + u8(0)

    def ping(b):
        return u8(5) + u8(b)

    S = {}
    S["frag_needed"] = err(0, 0, 0, u16(1000)) + time(10) + ack_all() + time(251)
    S["port_unreach_syn_sent"] = err(1, 1) + sock(10, 2 | (2 << 3))
    S["host_unreach_soft"] = err(0, 2) + time(251) + time(251) + time(251) + sock(10, 1 | (2 << 3))
    S["echo_and_broadcast"] = msg(icmp_echo(9, 1, bytes(16)), 1) + msg(icmp_echo(9, 2, bytes(16)), 5)
    S["ping_reply"] = ping(1) + ping(0x41) + ping(0x80)
    S["out_of_window_quote"] = err(0, 1, 4, s16(-30000)) + err(0, 0, 7, u16(576) + u8(24) + s16(8000))
    S["time_exceeded_paramprob"] = err(0, 5) + err(0, 6, 1, u8(20)) + err(1, 7) + err(0, 9, 0, u8(3) + u8(13))
    S["fragmented_error"] = msg(icmp_echo(9, 3, bytes(40)), 9)
    S["parse_only"] = icmp_echo(1, 1, bytes(8))
    return S


# ---- fuzz_tcp_options: ctrl + chunks ----

def tcp_options_seeds():
    def chunk(opts, carry=0):
        assert len(opts) <= 40
        return u8(len(opts) | carry << 6) + opts

    ts = bytes([1, 1, 8, 10, 0, 0, 0x20, 0, 0, 0, 0, 0])
    sack2 = bytes([1, 1, 5, 18]) + u32(1448) + u32(2896) + u32(4344) + u32(5792)
    S = {}
    S["passive_all_options"] = (u8(0x08 | 0x06 | 0x40) + chunk(SYN_OPTS) + chunk(ts) + chunk(ts, 1)
                                + chunk(ts + sack2[:12], 1) + chunk(ts + sack2, 1) + chunk(ts, 0))
    S["active_synack"] = u8(0x01 | 0x08 | 0x10 | 0x20) + chunk(SYN_OPTS) + chunk(b"", 3) + chunk(b"", 0)
    S["mss_tiny"] = u8(0x08 | 0x40) + chunk(bytes([2, 4, 0, 1])) + chunk(b"") + chunk(b"", 0) + chunk(b"", 0)
    S["mss_zero_active"] = u8(0x01 | 0x08 | 0x40) + chunk(bytes([2, 4, 0, 0])) + chunk(b"", 0) + chunk(b"", 2)
    S["fastopen"] = u8(0) + chunk(bytes([2, 4, 5, 0xB4, 34, 10]) + bytes(8) + bytes([254, 8, 0xF9, 0x89, 1, 2, 3, 4])) + chunk(b"")
    S["wscale_15_malformed"] = u8(0x08) + chunk(bytes([1, 3, 3, 15, 2, 4, 5, 0xB4, 8, 1, 0, 2])) + chunk(bytes([5, 3, 1])) + chunk(bytes([8, 11] + [0] * 9), 0)
    S["sack_dup_acks"] = u8(0x08 | 0x02 | 0x04) + chunk(SYN_OPTS) + chunk(ts) + b"".join(
        chunk(ts + sack2[:12], 1) for _ in range(4)) + chunk(ts, 0)
    seg = tcp_seg(PEER_IP, STACK_IP, 40000, 80, 1000, 0, TCP_SYN, opts=SYN_OPTS, payload=b"hello")
    S["parse_segment"] = seg
    return S


TARGETS = {
    "fuzz_stack": stack_seeds,
    "fuzz_ether": ether_seeds,
    "fuzz_arp": arp_seeds,
    "fuzz_ipv4": ipv4_seeds,
    "fuzz_icmp": icmp_seeds,
    "fuzz_tcp_options": tcp_options_seeds,
}


def main():
    total = 0
    for target, fn in TARGETS.items():
        d = os.path.join(OUT, target)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for name, data in sorted(fn().items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += len(data)
    print("wrote %d bytes of seeds under %s" % (total, os.path.relpath(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
