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
         server_pings=... unanswered=... dropped=... errors=...

and progress on stderr. Exits 1 when any client failed to connect or was
dropped, or when the metric does not match. Python 3 standard library only.

For finding where the memory goes, --mode tcp opens N plain TCP connections
that send nothing, --mode new only issues N channels, --no-client-ping leaves
the pinging to the server, and --hold keeps the clients connected after the
report (to attach heaptrack, perf or gdb to the server).
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import resource
import struct
import sys
import time
from urllib.parse import urlsplit

SUBPROTOCOL = "webhook-over-websocket.v2"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
CLIENT_PING_PERIOD = 15.0


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


async def read_http_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise RuntimeError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_http_body(reader, headers):
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return body
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return await reader.read()


class HTTPConnection:
    """One kept-alive HTTP/1.1 connection for plain GETs (reopened when the server closes it)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path, headers=""):
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}\r\n".encode())
                await self.writer.drain()
                status, response_headers = await read_http_head(self.reader)
                body = await read_http_body(self.reader, response_headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response_headers.get("connection", "").lower() == "close":
                self.close()
            return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


class IdleClient:
    def __init__(self):
        self.reader = self.writer = None
        self.task = None
        self.open = False
        self.closed_reason = None
        self.server_pings = 0
        self.pings_sent = 0
        self.pongs = 0
        self.unexpected = 0

    async def connect(self, host, port, channel_id, token):
        self.reader, self.writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET /ws/{channel_id} HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
                f"Authorization: Bearer {token}\r\n"
                "\r\n"
            ).encode()
        )
        await self.writer.drain()
        status, headers = await read_http_head(self.reader)
        if status != 101:
            body = await asyncio.wait_for(read_http_body(self.reader, headers), 5)
            raise RuntimeError(f"upgrade answered {status}: {body[:200]!r}")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise RuntimeError("wrong Sec-WebSocket-Accept")
        if headers.get("sec-websocket-protocol") != SUBPROTOCOL:
            raise RuntimeError(f"server chose subprotocol {headers.get('sec-websocket-protocol')!r}")
        self.open = True
        self.task = asyncio.create_task(self.serve())

    async def serve(self):
        """Reads server frames until the connection ends: answers pings, counts pongs."""
        reader = self.reader
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                opcode, length = b0 & 0x0F, b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await reader.readexactly(8))
                if b1 & 0x80:
                    raise RuntimeError("server sent a masked frame")
                payload = await reader.readexactly(length) if length else b""
                if opcode == OP_PING:
                    self.server_pings += 1
                    self.writer.write(encode_frame(OP_PONG, payload))
                elif opcode == OP_PONG:
                    self.pongs += 1
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.closed_reason = f"close {code} {payload[2:].decode(errors='replace')}".strip()
                    if self.open:
                        self.writer.write(encode_frame(OP_CLOSE, payload[:2]))
                    break
                else:
                    self.unexpected += 1
        except asyncio.IncompleteReadError:
            self.closed_reason = self.closed_reason or "EOF"
        except (ConnectionError, RuntimeError) as error:
            self.closed_reason = self.closed_reason or f"{type(error).__name__}: {error}"
        except asyncio.CancelledError:
            pass
        self.open = False

    def ping(self):
        if self.open:
            self.pings_sent += 1
            self.writer.write(encode_frame(OP_PING, struct.pack("!Q", self.pings_sent)))

    async def close(self):
        if self.writer is None:
            return
        if self.open:
            self.open = False
            try:
                self.writer.write(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
            except (ConnectionError, RuntimeError):
                pass
        if self.task is not None:
            self.task.cancel()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass


async def pinger(clients):
    """Pings every client every 15 s, spread evenly over the period (the real client's autoPing)."""
    while True:
        start = time.monotonic()
        snapshot = list(clients)
        for i, client in enumerate(snapshot):
            due = start + CLIENT_PING_PERIOD * i / max(1, len(snapshot))
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            client.ping()
        delay = start + CLIENT_PING_PERIOD - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


async def metric(http, name):
    status, body = await http.get("/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+([0-9.eE+-]+)\s*$", body.decode(), re.M)
    return None if match is None else float(match.group(1))


async def run(args):
    clients = []
    try:
        return await measure(args, clients)
    finally:
        log(f"closing {len(clients)} connections")
        for i in range(0, len(clients), 500):
            await asyncio.gather(*(c.close() for c in clients[i : i + 500]), return_exceptions=True)


async def measure(args, clients):
    url = urlsplit(args.server_url)
    host, port = url.hostname, url.port or 80
    pid = args.pid
    errors = []
    before = status_kib(pid, "VmRSS")
    log(f"server pid {pid}: VmRSS before any client {before} KiB; connecting {args.n} clients, {args.concurrency} at a time")

    next_index = 0
    started = time.monotonic()

    async def worker():
        nonlocal next_index
        http = HTTPConnection(host, port)
        try:
            while next_index < args.n and len(errors) <= args.max_errors:
                next_index += 1
                client = IdleClient()
                try:
                    if args.mode == "tcp":
                        client.reader, client.writer = await asyncio.open_connection(host, port)
                        client.open = True
                        clients.append(client)
                        continue
                    status, body = await http.get("/new")
                    if status != 200:
                        raise RuntimeError(f"/new answered {status}: {body[:200]!r}")
                    if args.mode == "new":
                        continue
                    issued = json.loads(body)
                    await client.connect(host, port, issued["channel_id"], issued["token"])
                    clients.append(client)
                except Exception as error:  # noqa: BLE001 - every failure is reported
                    errors.append(f"{type(error).__name__}: {error}")
                    await client.close()
        finally:
            http.close()

    progress_task = asyncio.create_task(progress(clients, args.n, started))
    ping_task = asyncio.create_task(pinger(clients) if args.mode == "websocket" and not args.no_client_ping else asyncio.sleep(0))
    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        connect_s = time.monotonic() - started
        progress_task.cancel()
        log(f"{len(clients)} connected in {connect_s:.1f}s ({len(errors)} failed); settling {args.settle}s")
        for error in sorted(set(errors))[:5]:
            log(f"  error: {error}")

        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            await asyncio.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            alive = sum(c.open for c in clients)
            log(f"  settling: VmRSS {status_kib(pid, 'VmRSS')} KiB, {alive} open")
        after = status_kib(pid, "VmRSS")
        hwm = status_kib(pid, "VmHWM")

        cpu_pct = None
        if args.cpu_seconds > 0:
            hz = os.sysconf("SC_CLK_TCK")
            t0, c0 = time.monotonic(), cpu_ticks(pid)
            await asyncio.sleep(args.cpu_seconds)
            t1, c1 = time.monotonic(), cpu_ticks(pid)
            cpu_pct = 100.0 * (c1 - c0) / hz / (t1 - t0)

        # Let the last round of our pings be answered before counting missing pongs.
        await asyncio.sleep(1.0)
        http = HTTPConnection(host, port)
        try:
            metric_connected = await metric(http, "wow_channels_connected")
        finally:
            http.close()
    finally:
        ping_task.cancel()
        progress_task.cancel()

    if args.mode == "new":
        connected = args.n - len(errors)
    elif args.mode == "tcp":
        # A plain connection the server closed reads EOF at once.
        for c in clients:
            if c.reader.at_eof():
                c.open = False
    dropped = [c for c in clients if not c.open]
    unanswered = sum(1 for c in clients if c.open and c.pings_sent - c.pongs > 1)
    server_pings = sum(c.server_pings for c in clients)
    if args.mode != "new":
        connected = len(clients) - len(dropped)
    per_client = (after - before) / args.n
    print(
        f"IDLE mode={args.mode} n={args.n} before_kib={before} after_kib={after} per_client_kib={per_client:.1f} hwm_kib={hwm}"
        f" connect_s={connect_s:.1f} cpu_pct={'-' if cpu_pct is None else f'{cpu_pct:.1f}'}"
        f" connected={connected} metric_connected={'-' if metric_connected is None else int(metric_connected)}"
        f" server_pings={server_pings} unanswered={unanswered} dropped={len(dropped)} errors={len(errors)}",
        flush=True,
    )
    for reason in sorted({c.closed_reason for c in dropped})[:5]:
        log(f"  dropped: {reason}")

    if args.hold > 0:
        log(f"holding the connections {args.hold}s more (attach tools to the server now)")
        await asyncio.sleep(args.hold)
    expected = args.n if args.mode == "websocket" else 0
    ok = not errors and not dropped and not unanswered and metric_connected == expected
    return 0 if ok else 1


async def progress(clients, n, started):
    while True:
        await asyncio.sleep(5)
        log(f"  {len(clients)}/{n} connected after {time.monotonic() - started:.0f}s")


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
        return asyncio.run(run(args))
    except FileNotFoundError as error:
        log(f"the server process {args.pid} is gone ({error})")
        return 1


if __name__ == "__main__":
    sys.exit(main())
