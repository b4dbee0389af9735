#!/usr/bin/env python3
"""A local app for the large-body points of bench/run.sh: reads the whole
request body before it answers.

nginx's `return 200` answers before it has read the body, so a tunnel that
stopped uploading once the answer arrived would look faster than the direct
path. This app answers only after the last byte, with the byte count (and,
with --sha256, the digest) as JSON, so the benchmark can check that every byte
arrived. Standard library only; one thread per connection, keep-alive,
Content-Length and chunked bodies, read in 1 MiB pieces (never the whole body
in memory).

    bench/body-app.py [--host 127.0.0.1] [--port 0] [--sha256]

Prints `listening on http://HOST:PORT` once it accepts connections.
"""

import argparse
import hashlib
import json
import socket
import sys
import threading

CHUNK = 1 << 20
MAX_HEAD = 64 * 1024


class BadRequest(Exception):
    pass


class Connection:
    def __init__(self, sock, sha256):
        self.sock = sock
        self.sha256 = sha256
        self.buffer = bytearray(CHUNK)
        self.view = memoryview(self.buffer)
        self.pending = b""  # bytes read past the current head or chunk line

    def recv_some(self):
        n = self.sock.recv_into(self.buffer)
        if n == 0:
            raise EOFError
        return self.view[:n]

    def read_line(self):
        while b"\r\n" not in self.pending:
            if len(self.pending) > MAX_HEAD:
                raise BadRequest("line too long")
            self.pending += bytes(self.recv_some())
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    def read_head(self):
        while b"\r\n\r\n" not in self.pending:
            if len(self.pending) > MAX_HEAD:
                raise BadRequest("head too large")
            self.pending += bytes(self.recv_some())
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise BadRequest("bad request line")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest("bad header line")
            headers[name.strip().lower()] = value.strip()
        return parts[0], headers

    def consume(self, count, digest):
        """Reads exactly `count` body bytes; returns how many."""
        left = count
        if self.pending:
            take = self.pending[:left]
            self.pending = self.pending[left:]
            if digest:
                digest.update(take)
            left -= len(take)
        while left > 0:
            n = self.sock.recv_into(self.buffer, min(left, CHUNK))
            if n == 0:
                raise EOFError
            if digest:
                digest.update(self.view[:n])
            left -= n
        return count

    def read_body(self, headers, digest):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while True:
                size_line = self.read_line().split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise BadRequest("bad chunk size") from None
                if size == 0:
                    while self.read_line():  # trailers, then the empty line
                        pass
                    return total
                total += self.consume(size, digest)
                if self.read_line():
                    raise BadRequest("chunk not followed by CRLF")
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise BadRequest("bad Content-Length")
        return self.consume(int(length), digest)

    def answer(self, status, body, close=False):
        reason = {200: "OK", 400: "Bad Request"}[status]
        data = json.dumps(body).encode() + b"\n"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + data)

    def serve(self):
        try:
            while True:
                _, headers = self.read_head()
                if headers.get("expect", "").lower() == "100-continue":
                    self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                digest = hashlib.sha256() if self.sha256 else None
                count = self.read_body(headers, digest)
                body = {"bytes": count}
                if digest:
                    body["sha256"] = digest.hexdigest()
                self.answer(200, body)
        except BadRequest as error:
            try:
                self.answer(400, {"error": str(error)}, close=True)
            except OSError:
                pass
        except (EOFError, OSError):
            pass
        finally:
            self.sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sha256", action="store_true", help="also hash every body (costs ~3 ms/MiB here)")
    args = parser.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    print(f"listening on http://{args.host}:{listener.getsockname()[1]}", flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Connection(sock, args.sha256).serve, daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
