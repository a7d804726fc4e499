/**
 * The kernel's side of the TUN and loss benchmarks (and of the TUN tests, test/link/tun*.test.ts): small python3
 * programs, run inside a network namespace, that drive the Linux TCP stack through plain sockets.
 * python3 because it is on every Linux machine the TUN tests run on and sets per-socket options
 * (TCP_CONGESTION) that node:net cannot.
 */

/** Sends N bytes to host:port, half-closes and waits for the peer's EOF (all of it consumed); prints the rate. */
export const SEND_PY = `
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(range(256)) * 256
s = socket.create_connection((host, port), timeout=60)
start = time.monotonic()
left = n
while left > 0:
    k = s.send(memoryview(chunk)[:min(left, len(chunk))])
    left -= k
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16):
    pass
secs = time.monotonic() - start
print(json.dumps({"bytes": n, "seconds": secs, "mbps": n * 8 / secs / 1e6}))
`;

/**
 * Accepts one connection on addr:port, reads it to EOF, closes; prints the byte count and the rate.
 * With a third argument `check`, it also checks every byte against the pattern SEND_PY and the TUN
 * fixture's send mode write (stream byte k is k mod 256) and prints the first offset that differs
 * (`firstBadOffset`, -1 when none): a segment joined out of order, or a payload cut wrong, shows up
 * there — the kernel does not check the TCP checksum of a super-packet that arrives with a partial
 * one (CHECKSUM_PARTIAL is trusted on local delivery).
 */
export const SINK_PY = `
import json, socket, sys, time
check = len(sys.argv) > 3 and sys.argv[3] == "check"
big = bytes(range(256)) * 260
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(60)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(60)
start = time.monotonic()
n = 0
bad = -1
said = False
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    if check and bad < 0 and b != big[n % 256:n % 256 + len(b)]:
        bad = n
    n += len(b)
    if not said and n >= 1 << 20:
        print("receiving", flush=True)
        said = True
c.close()
secs = time.monotonic() - start
out = {"received": n, "seconds": secs, "mbps": n * 8 / secs / 1e6}
if check:
    out["firstBadOffset"] = bad
print(json.dumps(out), flush=True)
`;

/** Sends N random bytes to host:port while reading the echo; prints whether they came back identical. */
export const ECHO_PY = `
import json, os, socket, sys, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(n)
s = socket.create_connection((host, port), timeout=20)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    got += chunk
t.join(20)
print(json.dumps({"sent": n, "received": len(got), "identical": bytes(got) == data}))
`;

/**
 * The loss benchmark's kernel sender: connects to host:port with the congestion control named in
 * argv[3] set on the socket before connect (TCP_CONGESTION, Linux ≥ 2.6.13: per socket, so the
 * namespace's default — BBR on this kernel, which a namespace cannot change — does not matter), then
 * sends until the receiver closes or argv[4] seconds have passed (a bound, never reached normally).
 * Prints the algorithm the socket really used, and what TCP_INFO says about retransmissions.
 */
export const TIMED_SEND_PY = `
import json, socket, struct, sys, time
host, port, cc, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
s.settimeout(10)
s.connect((host, port))
used = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\\0")[0].decode()
chunk = bytes(range(256)) * 256
sent = 0
start = time.monotonic()
s.settimeout(2)
try:
    while time.monotonic() - start < limit:
        try:
            sent += s.send(chunk)
        except socket.timeout:
            continue
except OSError:
    pass
# struct tcp_info: 8 u8 fields, then u32s: rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans,
# fackets, last_data_sent, last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh, rtt,
# rttvar, snd_ssthresh, snd_cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans.
info = {}
try:
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    f = struct.unpack("8B24I", raw[:104])
    info = {"sndMss": f[10], "rttUs": f[23], "cwnd": f[26], "totalRetrans": f[31]}
except OSError:
    pass
print(json.dumps({"cc": used, "sent": sent, "seconds": time.monotonic() - start, **info}), flush=True)
`;

/**
 * The loss benchmark's kernel receiver: accepts one connection on addr:port and reads for argv[3]
 * seconds from the accept; prints the bytes read by then (goodput = bytes × 8 / seconds), closes.
 */
export const TIMED_SINK_PY = `
import json, socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(20)
print("listening", flush=True)
c, _ = s.accept()
start = time.monotonic()
n = 0
while True:
    left = secs - (time.monotonic() - start)
    if left <= 0:
        break
    c.settimeout(left)
    try:
        b = c.recv(1 << 16)
    except socket.timeout:
        break
    if not b:
        break
    n += len(b)
elapsed = time.monotonic() - start
c.close()
print(json.dumps({"received": n, "seconds": elapsed, "mbps": n * 8 / elapsed / 1e6}), flush=True)
`;
