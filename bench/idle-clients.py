#!/usr/bin/env python3
"""Server memory per idle connected tunnel client.

    bench/idle-clients.py --server-url http://127.0.0.1:8080 --pid SERVER_PID -n 10000

Opens N tunnel clients the way the project's client does at the protocol
level (docs/protocol.md): for each, `GET /new` for a channel id and token,
then a WebSocket upgrade of `/ws/{channel_id}` with `Authorization: Bearer
<token>` and `Sec-WebSocket-Protocol: webhook-over-websocket.v2`, checking the
101, the accept key and the echoed subprotocol. At most --concurrency clients
are being set up at a time. Then every client stays idle: it answers the
server's pings (every 15 s; the server drops a client whose pong is missing by
its next ping) and pings the server every 15 s itself, as the real client
does, with masked frames (RFC 6455 §5.3).

After a settle period it reads the server's VmRSS (/proc/PID/status) and
compares it with the VmRSS before the first client; optionally samples the
server's CPU (/proc/PID/stat) for --cpu-seconds while everything is idle;
then checks that every client is still connected (no close, no EOF, every
ping of ours answered) and that the server's /metrics reports
wow_channels_connected == N. Prints one machine-readable line on stdout:

    IDLE mode=websocket n=... before_kib=... after_kib=... per_client_kib=... hwm_kib=...
         connect_s=... cpu_pct=... connected=... metric_connected=...
         server_pings=... unanswered=... dropped=... errors=... harness_cpu_s=...

and progress on stderr. Exits 1 when any client failed to connect or was
dropped, or when the metric does not match. Python 3 standard library only.

The harness shares the machine's cores with the server, so it is written to
cost little: one thread, non-blocking sockets and one epoll loop, each
client a small state machine (an asyncio version used more CPU per client
than the server did, and the connect time measured mostly the harness;
docs/performance.md). `harness_cpu_s` is the CPU it used while connecting.

For finding where the memory goes, --mode tcp opens N plain TCP connections
that send nothing, --mode new only issues N channels, --no-client-ping leaves
the pinging to the server, and --hold keeps the clients connected after the
report (to attach heaptrack, perf or gdb to the server).
"""

import argparse
import base64
import errno
import hashlib
import heapq
import json
import os
import re
import resource
import selectors
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

SUBPROTOCOL = "webhook-over-websocket.v2"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
CLIENT_PING_PERIOD = 15.0
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def log(message):
    print(message, file=sys.stderr, flush=True)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def encode_frame(opcode, payload=b""):
    """A final client frame: always masked (RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    if n:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return header + mask + payload


def parse_head(head):
    """Status and lower-cased headers of an HTTP response head (without its blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise RuntimeError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class Loop:
    """One epoll loop with timers: every socket's handler is called with the ready events."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.timers = []
        self.sequence = 0

    def call_at(self, when, callback):
        self.sequence += 1
        heapq.heappush(self.timers, (when, self.sequence, callback))

    def run_until(self, done, deadline=None):
        """Runs handlers and timers until `done()` is true or `deadline` (monotonic) passes."""
        select = self.selector.select
        while not done():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()
            timeout = 1.0
            if self.timers:
                timeout = min(timeout, self.timers[0][0] - now)
            if deadline is not None:
                timeout = min(timeout, deadline - now)
            for key, events in select(max(0.0, timeout)):
                key.data(events)


class Connection:
    """A non-blocking TCP connection to the server with a send buffer and an input buffer."""

    def __init__(self, loop, address):
        self.loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbuf = b""
        self.outbuf = b""
        self.connected = False
        self.closed = False
        self.events = WRITE
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise ConnectionError(os.strerror(code))
        loop.selector.register(self.sock, WRITE, self.on_events)

    def want(self, events):
        if events != self.events and not self.closed:
            self.events = events
            self.loop.selector.modify(self.sock, events, self.on_events)

    def send(self, data):
        if self.closed:
            return
        if self.outbuf or not self.connected:
            self.outbuf += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.fail(f"{type(error).__name__}: {error}")
            return
        if sent < len(data):
            self.outbuf = data[sent:]
            self.want(READ | WRITE)

    def on_events(self, events):
        if events & WRITE:
            if not self.connected:
                code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self.fail(f"connect: {os.strerror(code)}")
                    return
                self.connected = True
                self.on_connected()
            if self.outbuf and not self.closed:
                try:
                    sent = self.sock.send(self.outbuf)
                    self.outbuf = self.outbuf[sent:]
                except BlockingIOError:
                    pass
                except OSError as error:
                    self.fail(f"{type(error).__name__}: {error}")
                    return
            if not self.outbuf:
                self.want(READ)
        if events & READ and not self.closed:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as error:
                self.fail(f"{type(error).__name__}: {error}")
                return
            if not data:
                self.fail("EOF")
                return
            self.inbuf += data
            self.on_data()

    def close(self):
        if not self.closed:
            self.closed = True
            self.loop.selector.unregister(self.sock)
            self.sock.close()

    def fail(self, reason):
        self.close()
        self.on_failed(reason)

    # Overridden.
    def on_connected(self):
        pass

    def on_data(self):
        pass

    def on_failed(self, reason):
        pass


class NewChannels(Connection):
    """One kept-alive HTTP/1.1 connection for `GET /new` (a worker's; reopened when the server closes it)."""

    def __init__(self, loop, address, host_header, on_answer):
        super().__init__(loop, address)
        self.request = f"GET /new HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode()
        self.on_answer = on_answer
        self.head = None
        self.waiting = False

    def ask(self):
        self.waiting = True
        self.send(self.request)

    def on_data(self):
        while self.waiting:
            if self.head is None:
                end = self.inbuf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.head = parse_head(self.inbuf[:end])
                self.inbuf = self.inbuf[end + 4 :]
            status, headers = self.head
            length = int(headers.get("content-length", "-1"))
            if length < 0:
                self.waiting = False
                self.fail(f"/new answered {status} without Content-Length")
                return
            if len(self.inbuf) < length:
                return
            body, self.inbuf = self.inbuf[:length], self.inbuf[length:]
            self.head, self.waiting = None, False
            if headers.get("connection", "").lower() == "close":
                self.close()
            self.on_answer(status, body)

    def on_failed(self, reason):
        if self.waiting:
            self.waiting = False
            self.on_answer(None, reason.encode())


class IdleClient(Connection):
    """One tunnel client: the upgrade, then pongs for the server's pings and pings of its own."""

    def __init__(self, loop, address, host_header, path, token, on_done, mode="websocket"):
        super().__init__(loop, address)
        self.mode = mode
        self.on_done = on_done
        self.open = False
        self.closed_reason = None
        self.server_pings = 0
        self.pings_sent = 0
        self.pongs = 0
        self.unexpected = 0
        self.key = None
        if mode == "websocket":
            self.key = base64.b64encode(os.urandom(16))
            self.send(
                b"GET " + path.encode() + b" HTTP/1.1\r\n"
                b"Host: " + host_header.encode() + b"\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: " + self.key + b"\r\n"
                b"Sec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Protocol: " + SUBPROTOCOL.encode() + b"\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
            )

    def on_connected(self):
        if self.mode == "tcp":
            self.open = True
            self.finish(None)

    def finish(self, error):
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(self, error)

    def on_data(self):
        if not self.open:
            end = self.inbuf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                status, headers = parse_head(self.inbuf[:end])
            except RuntimeError as error:
                self.close()
                self.finish(str(error))
                return
            self.inbuf = self.inbuf[end + 4 :]
            if status != 101:
                self.close()
                self.finish(f"upgrade answered {status}: {self.inbuf[:200]!r}")
                return
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
            if headers.get("sec-websocket-accept") != accept:
                self.close()
                self.finish("wrong Sec-WebSocket-Accept")
                return
            if headers.get("sec-websocket-protocol") != SUBPROTOCOL:
                self.close()
                self.finish(f"server chose subprotocol {headers.get('sec-websocket-protocol')!r}")
                return
            self.open = True
            self.finish(None)
        buf = self.inbuf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            opcode, length, offset = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                (length,), offset = struct.unpack_from("!H", buf, 2), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                (length,), offset = struct.unpack_from("!Q", buf, 2), 10
            if b1 & 0x80:
                self.end("RuntimeError: server sent a masked frame")
                return
            if len(buf) < offset + length:
                break
            payload, buf = buf[offset : offset + length], buf[offset + length :]
            if opcode == OP_PING:
                self.server_pings += 1
                self.send(encode_frame(OP_PONG, payload))
            elif opcode == OP_PONG:
                self.pongs += 1
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = f"close {code} {payload[2:].decode(errors='replace')}".strip()
                if self.open:
                    self.send(encode_frame(OP_CLOSE, payload[:2]))
                self.end(reason)
                return
            else:
                self.unexpected += 1
        self.inbuf = buf

    def end(self, reason):
        self.closed_reason = self.closed_reason or reason
        self.open = False
        self.close()

    def on_failed(self, reason):
        self.closed_reason = self.closed_reason or reason
        was_open, self.open = self.open, False
        if not was_open:
            self.finish(reason)

    def ping(self):
        if self.open:
            self.pings_sent += 1
            self.send(encode_frame(OP_PING, struct.pack("!Q", self.pings_sent)))

    def say_goodbye(self):
        if self.open:
            self.open = False
            try:
                self.sock.send(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
            except OSError:
                pass
        self.close()


class Pinger:
    """Pings every open client every 15 s, spread evenly over the period (the real client's autoPing)."""

    TICK = 0.1

    def __init__(self, loop, clients):
        self.loop, self.clients = loop, clients
        self.next = 0
        self.credit = 0.0
        loop.call_at(time.monotonic() + self.TICK, self.tick)

    def tick(self):
        clients = self.clients
        if clients:
            self.credit += len(clients) * self.TICK / CLIENT_PING_PERIOD
            while self.credit >= 1:
                self.credit -= 1
                if self.next >= len(clients):
                    self.next = 0
                clients[self.next].ping()
                self.next += 1
        self.loop.call_at(time.monotonic() + self.TICK, self.tick)


def metric(host, port, name):
    """One value from the server's /metrics, with a blocking connection."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, _ = parse_head(head)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+([0-9.eE+-]+)\s*$", body.decode(), re.M)
    return None if match is None else float(match.group(1))


def own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args):
    url = urlsplit(args.server_url)
    host, port = url.hostname, url.port or 80
    address, host_header = (host, port), f"{host}:{port}"
    pid = args.pid
    loop = Loop()
    clients, errors = [], []
    issued = 0
    next_index = 0
    busy_workers = 0

    before = status_kib(pid, "VmRSS")
    log(f"server pid {pid}: VmRSS before any client {before} KiB; connecting {args.n} clients, {args.concurrency} at a time")
    started, cpu_started = time.monotonic(), own_cpu_seconds()

    class Worker:
        """Sets up one client after another: `/new` on its kept-alive connection, then the upgrade."""

        def __init__(self):
            self.http = None
            self.start_next()

        def start_next(self):
            nonlocal next_index, busy_workers
            if next_index >= args.n or len(errors) > args.max_errors:
                busy_workers -= 1
                return
            next_index += 1
            try:
                if args.mode == "tcp":
                    IdleClient(loop, address, host_header, None, None, self.connected, mode="tcp")
                    return
                if self.http is None or self.http.closed:
                    self.http = NewChannels(loop, address, host_header, self.answered)
                self.http.ask()
            except OSError as error:
                self.failed(f"{type(error).__name__}: {error}")

        def answered(self, status, body):
            nonlocal issued
            if status != 200:
                self.failed(f"/new answered {status}: {body[:200]!r}" if status else f"/new: {body.decode()}")
                return
            issued += 1
            if args.mode == "new":
                self.start_next()
                return
            try:
                channel = json.loads(body)
                IdleClient(loop, address, host_header, f"/ws/{channel['channel_id']}", channel["token"], self.connected)
            except (OSError, ValueError, KeyError) as error:
                self.failed(f"{type(error).__name__}: {error}")

        def connected(self, client, error):
            if error is None:
                clients.append(client)
            else:
                self.failed(error)
                return
            self.start_next()

        def failed(self, reason):
            errors.append(reason)
            self.start_next()

    def progress():
        if busy_workers == 0:
            return
        log(f"  {len(clients)}/{args.n} connected after {time.monotonic() - started:.0f}s")
        loop.call_at(time.monotonic() + 5, progress)

    loop.call_at(started + 5, progress)
    busy_workers = args.concurrency
    workers = [Worker() for _ in range(args.concurrency)]
    loop.run_until(lambda: busy_workers == 0)
    connect_s = time.monotonic() - started
    harness_cpu = own_cpu_seconds() - cpu_started
    for worker in workers:
        if worker.http is not None:
            worker.http.close()
    log(f"{len(clients)} connected in {connect_s:.1f}s ({len(errors)} failed; harness CPU {harness_cpu:.1f}s); settling {args.settle}s")
    for error in sorted(set(errors))[:5]:
        log(f"  error: {error}")
    if args.mode == "websocket" and not args.no_client_ping:
        Pinger(loop, clients)

    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        loop.run_until(lambda: False, min(deadline, time.monotonic() + 5.0))
        alive = sum(c.open for c in clients)
        log(f"  settling: VmRSS {status_kib(pid, 'VmRSS')} KiB, {alive} open")
    after = status_kib(pid, "VmRSS")
    hwm = status_kib(pid, "VmHWM")

    cpu_pct = None
    if args.cpu_seconds > 0:
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        loop.run_until(lambda: False, t0 + args.cpu_seconds)
        t1, c1 = time.monotonic(), cpu_ticks(pid)
        cpu_pct = 100.0 * (c1 - c0) / hz / (t1 - t0)

    # Let the last round of our pings be answered before counting missing pongs.
    loop.run_until(lambda: False, time.monotonic() + 1.0)
    metric_connected = metric(host, port, "wow_channels_connected")

    connected = issued if args.mode == "new" else sum(c.open for c in clients)
    dropped = [c for c in clients if not c.open]
    unanswered = sum(1 for c in clients if c.open and c.pings_sent - c.pongs > 1)
    server_pings = sum(c.server_pings for c in clients)
    per_client = (after - before) / args.n
    print(
        f"IDLE mode={args.mode} n={args.n} before_kib={before} after_kib={after} per_client_kib={per_client:.1f} hwm_kib={hwm}"
        f" connect_s={connect_s:.1f} cpu_pct={'-' if cpu_pct is None else f'{cpu_pct:.1f}'}"
        f" connected={connected} metric_connected={'-' if metric_connected is None else int(metric_connected)}"
        f" server_pings={server_pings} unanswered={unanswered} dropped={len(dropped)} errors={len(errors)}"
        f" harness_cpu_s={harness_cpu:.2f}",
        flush=True,
    )
    for reason in sorted({c.closed_reason for c in dropped})[:5]:
        log(f"  dropped: {reason}")

    if args.hold > 0:
        log(f"holding the connections {args.hold}s more (attach tools to the server now)")
        loop.run_until(lambda: False, time.monotonic() + args.hold)
    log(f"closing {len(clients)} connections")
    for client in clients:
        client.say_goodbye()
    expected = args.n if args.mode == "websocket" else 0
    ok = not errors and not dropped and not unanswered and metric_connected == expected
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--pid", type=int, required=True, help="the server's process id (for /proc/PID)")
    parser.add_argument("-n", type=int, default=1000, help="idle clients to open (default 1000)")
    parser.add_argument("--concurrency", type=int, default=64, help="clients being set up at once (default 64)")
    parser.add_argument("--settle", type=float, default=35.0,
                        help="seconds to hold all clients before measuring (default 35: two server ping rounds)")
    parser.add_argument("--cpu-seconds", type=float, default=10.0, help="seconds of idle CPU sampling (0: none)")
    parser.add_argument("--mode", choices=("websocket", "tcp", "new"), default="websocket",
                        help="websocket: idle tunnel clients (the figure); for comparison, tcp: N plain TCP "
                        "connections that send nothing; new: N channels issued by /new, never connected")
    parser.add_argument("--no-client-ping", action="store_true",
                        help="only answer the server's pings, never ping it (the real client pings every 15 s)")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds to keep the clients connected after the report (to inspect the server)")
    parser.add_argument("--max-errors", type=int, default=20, help="stop connecting after this many failures")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < args.n + 2 * args.concurrency + 64:
        log(f"open-file limit {soft} is too low for {args.n} clients (raise it with ulimit -n)")
        return 1
    try:
        return run(args)
    except FileNotFoundError as error:
        log(f"the server process {args.pid} is gone ({error})")
        return 1


if __name__ == "__main__":
    sys.exit(main())
