#!/usr/bin/env python3
"""Soak driver; bench/soak.sh starts it and documents it. Python 3 standard
library only.

One server, CHANNELS local apps (a Python HTTP server each, on a fixed port)
and CHANNELS clients (the real binary, one state dir each). SENDERS threads
per channel post webhooks with a unique id (header X-Soak-Id, path
/soak/<id>) and a random body of mixed size; the app records every id it
receives and echoes the body with X-Soak-App: <channel>. A chaos thread
restarts clients (SIGTERM or SIGKILL, same state dir, so same channel) and
apps (stopped, then started again on the same port) at random. Two quiet
phases (after the warm-up, and at the end) measure the server's memory and
descriptors with no load and every client connected.

Exit status 0 when every check passes, 1 otherwise.
"""

import argparse
import collections
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNING_KEY = "soak-signing-key-0123456789abcdef"
SENDER_TIMEOUT = 60.0  # server --request-timeout (30 s) + 10 s waiting for a client + slack
EXPECTED_NON_200 = (202, 502, 503, 504)  # 202: queued while the client was away (offline queue)
QUEUE_DRAIN_TIMEOUT = 90.0  # a quiet phase waits this long for the offline queue to empty
# Body sizes: (weight, min, max) in bytes. Mostly ~1 KiB, some ~64 KiB, a few ~1 MiB,
# and some empty bodies; odd sizes on purpose.
SIZES = [(3, 0, 0), (79, 1, 2048), (15, 60 * 1024, 70 * 1024), (3, 1000 * 1024, 1100 * 1024)]


def log(message):
    print(message, flush=True)


def digest(data):
    return hashlib.blake2b(data, digest_size=16).digest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """(VmRSS KiB, VmHWM KiB, open descriptors) of a live process, else None."""
    try:
        fields = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"], len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, KeyError):
        return None


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="wow-soak-")
        self.lock = threading.Lock()
        self.spawn_lock = threading.Lock()  # no process starts once cleanup has begun
        self.records = []  # one Record per webhook sent
        self.received = collections.defaultdict(list)  # id -> [(app channel, complete, digest, path ok)]
        self.delivery_ids = collections.defaultdict(list)  # id -> X-Webhook-Delivery-Id of each receipt (None: live)
        self.stop = threading.Event()  # everything ends
        self.load_on = threading.Event()  # senders may send
        self.chaos_on = threading.Event()  # chaos may start new actions
        self.sending = 0  # webhooks being sent right now
        self.chaos_busy = set()  # channels being restarted right now
        self.chaos_log = []  # (channel, kind, start, end)
        self.chaos_counts = collections.Counter()
        self.client_anomalies = []
        self.server = None
        self.server_port = None
        self.apps = []
        self.clients = []
        self.samples = []
        self.max_client_rss = 0
        self.failures = []

    # ---------------------------------------------------------------- server

    def start_server(self):
        out, err = os.path.join(self.work, "server.out"), os.path.join(self.work, "server.err")
        with open(out, "w") as stdout, open(err, "w") as stderr:
            self.server = subprocess.Popen(
                [self.args.bin, "server", "--host", "127.0.0.1", "--port", "0",
                 "--jwt-signing-key", SIGNING_KEY, "--log-level", "error",
                 "--data-dir", os.path.join(self.work, "queue")],
                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.server_port = int(m.group(1))
                return
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the server did not start: " + open(err).read()[-2000:])

    def metrics(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        values = {}
        for line in text.splitlines():
            m = re.match(r'^(wow_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$', line)
            if m:
                values[m.group(1)] = float(m.group(2))
        return values

    # ------------------------------------------------------------------ load

    def sender(self, channel, number):
        rng = random.Random(f"{self.args.seed}-{channel}-{number}")
        conn, uses, seq, previous = None, 0, 0, None
        while not self.stop.is_set():
            if not self.load_on.is_set():
                if conn is not None:
                    conn.close()
                    conn = None
                self.load_on.wait(0.2)
                continue
            with self.lock:
                self.sending += 1
            try:
                weight = rng.uniform(0, sum(w for w, _, _ in SIZES))
                for w, low, high in SIZES:
                    weight -= w
                    if weight <= 0:
                        break
                body = os.urandom(rng.randint(low, high))
                seq += 1
                soak_id = f"{channel}.{number}.{seq}"
                record = Record(soak_id, channel, len(body), digest(body))
                if conn is None:
                    # A fresh connection now and then, keep-alive otherwise.
                    conn = http.client.HTTPConnection("127.0.0.1", self.server_port, timeout=SENDER_TIMEOUT)
                    uses = rng.randint(1, 50)
                    previous = None
                record.previous = previous  # what this connection carried before, for the failure report
                record.start = time.monotonic()
                try:
                    conn.request("POST", f"/webhook/{self.clients[channel].channel_id}/soak/{soak_id}", body=body,
                                 headers={"X-Soak-Id": soak_id, "Content-Type": "application/octet-stream"})
                    response = conn.getresponse()
                    record.status = response.status
                    data = response.read()
                    record.app = response.getheader("X-Soak-App")
                    record.echo_id = response.getheader("X-Soak-Id")
                    record.echo_ok = digest(data) == record.digest
                    if response.status == 202:
                        try:
                            record.queued_id = json.loads(data).get("id")
                        except ValueError:
                            record.queued_id = None
                        if record.queued_id is None or response.getheader("X-Webhook-Delivery-Id") != record.queued_id:
                            record.queued_id = record.queued_id or "<none>"
                            record.error = "202 without a matching delivery id: " + data[:200].decode(errors="replace")
                    elif response.status != 200:
                        record.error = data[:200].decode(errors="replace")
                    uses -= 1
                    if uses <= 0 or response.will_close:
                        conn.close()
                        conn = None
                except Exception as error:  # a transport error: no (whole) HTTP answer
                    record.error = f"{type(error).__name__}: {error}"
                    if record.status is not None:
                        # The head came, then the connection closed mid-body: the one way an
                        # HTTP/1.1 proxy can tell that a streamed answer broke off.
                        record.cut = record.status
                        record.status = None
                    record.timeout = isinstance(error, (socket.timeout, TimeoutError))
                    conn.close()
                    conn = None
                record.end = time.monotonic()
                previous = f"{record.status or (f'{record.cut} cut' if record.cut else 'no answer')} to a {record.size} B body"
                with self.lock:
                    self.records.append(record)
            finally:
                with self.lock:
                    self.sending -= 1
        if conn is not None:
            conn.close()

    # ----------------------------------------------------------------- chaos

    def chaos(self):
        rng = random.Random(f"{self.args.seed}-chaos")
        running, kinds = [], []
        max_parallel = max(1, len(self.clients) // 4)
        while not self.stop.is_set():
            self.stop.wait(min(rng.expovariate(1 / self.args.chaos_interval), 4 * self.args.chaos_interval))
            running = [t for t in running if t.is_alive()]
            if not self.chaos_on.is_set() or len(running) >= max_parallel:
                continue
            with self.lock:
                idle = [c for c in range(len(self.clients)) if c not in self.chaos_busy]
                if not idle:
                    continue
                channel = rng.choice(idle)
                self.chaos_busy.add(channel)
            if not kinds:  # every kind once per four restarts, in random order
                kinds = ["client-SIGTERM", "client-SIGKILL", "app", "client-away"]
                rng.shuffle(kinds)
            kind = kinds.pop()
            # client-away: a laptop that sleeps longer than --offline-hold, so webhooks are queued (202).
            downtime = {"app": rng.uniform(0.2, 3), "client-away": rng.uniform(4, 10)}.get(kind, rng.uniform(0, 2))
            thread = threading.Thread(target=self.restart, args=(channel, kind, downtime), daemon=True)
            thread.start()
            running.append(thread)

    def restart(self, channel, kind, downtime):
        start = time.monotonic()
        try:
            if kind == "app":
                self.apps[channel].stop()
                time.sleep(downtime)
                self.apps[channel].start()
            else:
                client = self.clients[channel]
                client.stop(signal.SIGKILL if kind == "client-SIGKILL" else signal.SIGTERM)
                time.sleep(downtime)
                client.start()
            with self.lock:
                self.chaos_counts[kind] += 1
        except Exception as error:
            if not self.stop.is_set():
                self.fail(f"restart ({kind}) of channel {channel} failed: {error}")
        finally:
            with self.lock:
                self.chaos_log.append((channel, kind, start, time.monotonic()))
                self.chaos_busy.discard(channel)

    # ---------------------------------------------------------------- phases

    def fail(self, message):
        with self.lock:
            self.failures.append(message)
        log(f"FAIL: {message}")

    def sample(self, label):
        s = proc_status(self.server.pid)
        if s is None:
            raise RuntimeError("the server is gone")
        for client in self.clients:
            c = client.proc and proc_status(client.proc.pid)
            if c:
                self.max_client_rss = max(self.max_client_rss, c[0])
        with self.lock:
            records = list(self.records)
            restarts = sum(self.chaos_counts.values())
        ok = sum(1 for r in records if r.status == 200)
        cuts = sum(1 for r in records if r.cut is not None)
        errors = sum(1 for r in records if r.status is None and r.cut is None)
        elapsed = time.monotonic() - self.t0
        self.samples.append((elapsed, s))
        log(f"{label:>9} {elapsed:7.0f}s {len(records):9d} {ok:9d} {len(records) - ok - cuts - errors:7d} {cuts:5d} {errors:6d}"
            f" {s[0] / 1024:8.1f} {s[1] / 1024:8.1f} {s[2]:5d} {restarts:8d}")
        return s

    def run_phase(self, seconds, label):
        self.chaos_on.set()
        self.load_on.set()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(10, max(0, end - time.monotonic())))
            if time.monotonic() < end - 1:
                self.sample(label)

    def quiet(self, label):
        """Stops load and chaos, waits until every client is connected and
        nothing is in flight, then samples the server."""
        self.chaos_on.clear()
        self.load_on.clear()
        deadline = time.monotonic() + SENDER_TIMEOUT + 30
        while time.monotonic() < deadline:
            with self.lock:
                if self.sending == 0 and not self.chaos_busy:
                    break
            time.sleep(0.1)
        else:
            self.fail(f"{label}: senders or restarts did not finish within {SENDER_TIMEOUT + 30:.0f} s")
        want = len(self.clients)
        deadline = time.monotonic() + QUEUE_DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            m = self.metrics()
            if (m.get("wow_channels_connected") == want and m.get("wow_webhooks_in_flight") == 0
                    and m.get("wow_queue_depth", 0) == 0):
                break
            time.sleep(0.2)
        else:
            self.fail(f"{label}: /metrics still shows {m.get('wow_channels_connected')} of {want} channels connected,"
                      f" {m.get('wow_webhooks_in_flight')} webhooks in flight and {m.get('wow_queue_depth')} queued")
        time.sleep(3)  # let closed sender connections go
        return self.sample(label), m

    # ------------------------------------------------------------------ main

    def run(self):
        a = self.args
        self.t0 = time.monotonic()
        self.start_server()
        for channel in range(a.channels):
            app = App(channel, free_port(), self)
            app.start()
            self.apps.append(app)
        for channel in range(a.channels):
            client = Client(channel, self)
            client.start()
            self.clients.append(client)
        ids = [c.channel_id for c in self.clients]
        if len(set(ids)) != len(ids):
            self.fail("two clients were issued the same channel")
        warmup = min(60.0, max(5.0, a.duration * 0.2))
        log(f"soak: {a.bin}, server pid {self.server.pid} port {self.server_port}, {a.channels} channels x {a.senders}"
            f" senders, {a.duration:.0f} s of load ({warmup:.0f} s warm-up), a restart every ~{a.chaos_interval:g} s,"
            f" seed {a.seed}")
        log(f"{'phase':>9} {'elapsed':>8} {'sent':>9} {'200':>9} {'non200':>7} {'cut':>5} {'errors':>6}"
            f" {'rss_MiB':>8} {'hwm_MiB':>8} {'fds':>5} {'restarts':>8}")
        threads = [threading.Thread(target=self.sender, args=(c, n), daemon=True)
                   for c in range(a.channels) for n in range(a.senders)]
        threads.append(threading.Thread(target=self.chaos, daemon=True))
        for t in threads:
            t.start()
        self.run_phase(warmup, "warm-up")
        baseline, _ = self.quiet("baseline")
        self.run_phase(a.duration - warmup, "load")
        end, end_metrics = self.quiet("end")
        # Descriptors can take a moment to go after a burst of closes: re-read for a few seconds.
        deadline = time.monotonic() + 10
        while end[2] > baseline[2] + a.fd_slack and time.monotonic() < deadline:
            time.sleep(1)
            end = proc_status(self.server.pid)
        self.stop.set()
        for t in threads:
            t.join(timeout=SENDER_TIMEOUT + 5)
        return self.report(baseline, end, end_metrics)

    def report(self, baseline, end, end_metrics):
        a = self.args
        records = self.records
        for client in self.clients:
            client.collect_output()  # the running ones' output so far
        by_id = {r.soak_id: r for r in records}
        ok = [r for r in records if r.status == 200]
        statuses = collections.Counter(r.status for r in records if r.status not in (None, 200))
        cuts = [r for r in records if r.cut is not None]
        errors = [r for r in records if r.status is None and r.cut is None]
        timeouts = [r for r in errors if r.timeout]
        wrong_answer = [r for r in ok if not r.echo_ok or r.app != str(r.channel) or r.echo_id != r.soak_id]
        unexpected_status = [r for r in records if r.status not in (None, 200) + EXPECTED_NON_200]
        receipts = sum(len(v) for v in self.received.values())
        # A queued webhook may reach its app twice when a client dies after the app answered but before the
        # answer got back (at least once): counted and reported. Any other duplicate is a failure.
        queued = [r for r in records if r.status == 202]
        queued_ids = {r.soak_id for r in queued}
        duplicates = {i: v for i, v in self.received.items() if len(v) > 1 and i not in queued_ids}
        redelivered = {i: v for i, v in self.received.items() if len(v) > 1 and i in queued_ids}
        bad_queued = [r for r in queued if r.error]
        wrong_delivery_id = [r for r in queued if any(d not in (None, r.queued_id) for d in self.delivery_ids.get(r.soak_id, ()))]
        wrong_app = {i: v for i, v in self.received.items()
                     if i not in by_id or any(app != by_id[i].channel or not path_ok for app, _, _, path_ok in v)}

        def delivered(r):
            return any(complete and d == r.digest for _, complete, d, _ in self.received.get(r.soak_id, ()))

        lost = [r for r in ok if not delivered(r)]
        queued_lost = [r for r in queued if not delivered(r)]
        received_non200 = [r for r in records if r.status not in (200, 202) and delivered(r)]
        partial = [i for i, v in self.received.items() if not any(complete for _, complete, _, _ in v)]

        # A non-200 is explained by a restart of its channel's client or app during (or just before) the request.
        windows = collections.defaultdict(list)
        for channel, kind, start, stop in self.chaos_log:
            windows[channel].append((start, stop + 1))
        unexplained = [r for r in records if r.status != 200
                       and not any(s <= r.end and r.start <= e for s, e in windows[r.channel])]

        # Non-200 and cut answers by status, the restart kind that overlapped them, and the error message.
        def restarts(r):
            return "+".join(sorted({kind for channel, kind, start, stop in self.chaos_log
                                    if channel == r.channel and start <= r.end and r.start <= stop + 1}) or ["no restart"])

        def describe(r):
            answer = r.status or (f"{r.cut} cut" if r.cut else "no answer")
            where = f"after {r.previous} on the same connection" if r.previous else "fresh connection"
            return (f"{r.soak_id}: {answer} ({r.size} B body, {r.end - r.start:.1f} s, {where}, during {restarts(r)}):"
                    f" {(r.error or '').strip()[:160]}")

        causes = collections.Counter()
        for r in records:
            if r.status == 200:
                continue
            message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", (r.error or "").strip())
            message = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", message)[:140]
            status = f"{r.status}" if r.status else f"{r.cut} cut" if r.cut else "no answer"
            causes[(status, restarts(r), message)] += 1

        load_seconds = a.duration
        sent_bytes = sum(r.size for r in records)
        mem_growth = end[0] - baseline[0]
        fd_growth = end[2] - baseline[2]
        # wow_webhooks_total is labelled by exact code (code="202"); classes are summed here.
        server_2xx = sum(v for k, v in end_metrics.items() if re.match(r'wow_webhooks_total\{code="2\d\d"\}', k))
        server_5xx = sum(v for k, v in end_metrics.items() if re.match(r'wow_webhooks_total\{code="5\d\d"\}', k))

        log("")
        log(f"== soak summary: {a.channels} channels x {a.senders} senders, {load_seconds:.0f} s of load, seed {a.seed}")
        log(f"webhooks sent                     {len(records):8d}  ({len(records) / load_seconds:.0f}/s,"
            f" {sent_bytes / 2**20:.0f} MiB of bodies, each echoed back)")
        log(f"  answered 200                    {len(ok):8d}  (body byte-exact, from the right app: {len(ok) - len(wrong_answer)})")
        for status, count in sorted(statuses.items()):
            log(f"  answered {status}                    {count:8d}")
        log(f"  answer cut mid-body             {len(cuts):8d}  (head sent, then the connection closed: a restart"
            f" hit the answer while it streamed)")
        log(f"  transport errors                {len(errors) - len(timeouts):8d}")
        log(f"  no answer within {SENDER_TIMEOUT:.0f} s           {len(timeouts):8d}")
        for (status, kinds, message), count in sorted(causes.items()):
            log(f"    {count:6d} x {status:<9} during {kinds}: {message}")
        log(f"received by the apps              {len(self.received):8d}  (ids; {receipts} receipts)")
        log(f"  answered 200 and received       {len(ok) - len(lost):8d}")
        log(f"  answered 202 and received       {len(queued) - len(queued_lost):8d}  (of {len(queued)} queued while"
            f" their client was away; {len(redelivered)} received twice: a client restart hit the delivery)")
        log(f"  received, sender got non-200    {len(received_non200):8d}  (delivered, then the answer was cut by a restart)")
        log(f"  received with an incomplete body{len(partial):8d}  (the client or app went away mid-body)")
        log(f"chaos: {self.chaos_counts['client-SIGTERM']} client SIGTERM, {self.chaos_counts['client-SIGKILL']} client"
            f" SIGKILL, {self.chaos_counts['client-away']} long client absences (4-10 s) and {self.chaos_counts['app']}"
            f" app restarts; every client came back on its channel"
            f" ({sum(c.in_use_waits for c in self.clients)} reconnects waited for the old connection to go: 409);"
            f" slowest exit after SIGTERM {max(c.max_exit for c in self.clients):.2f} s")
        log(f"server: VmRSS {baseline[0] / 1024:.1f} MiB after warm-up -> {end[0] / 1024:.1f} MiB at the end"
            f" ({mem_growth / 1024:+.1f}, allowance {a.mem_slack_mib} MiB), max {max(s[0] for _, s in self.samples) / 1024:.1f},"
            f" VmHWM {end[1] / 1024:.1f} MiB; descriptors {baseline[2]} -> {end[2]} (slack {a.fd_slack})")
        log(f"server /metrics: {server_2xx:.0f} answered 2xx, {server_5xx:.0f} 5xx;"
            f" clients: max VmRSS {self.max_client_rss / 1024:.1f} MiB")
        if self.client_anomalies:
            log(f"client output worth a look ({len(self.client_anomalies)} lines), first ones:")
            for line in self.client_anomalies[:5]:
                log(f"  {line}")

        def check(passed, text, examples=()):
            log(f"  {'PASS' if passed else 'FAIL'}  {text}")
            if not passed:
                self.failures.append(text)
                for example in list(examples)[:5]:
                    log(f"        {example}")

        log("checks:")
        check(not wrong_answer, f"no 200 answered with another's response ({len(wrong_answer)})",
              (f"{r.soak_id}: X-Soak-App {r.app}, X-Soak-Id {r.echo_id}, body ok {r.echo_ok}" for r in wrong_answer))
        check(not duplicates, f"no webhook delivered twice ({len(duplicates)})",
              (f"{i}: {v}" for i, v in duplicates.items()))
        check(not wrong_app, f"no webhook delivered to another channel's app or path ({len(wrong_app)})",
              (f"{i}: {v}" for i, v in wrong_app.items()))
        check(not lost, f"no 200-answered webhook missing at its app ({len(lost)})",
              (f"{r.soak_id} ({r.size} B)" for r in lost))
        check(not queued_lost, f"every 202-answered (queued) webhook reached its app whole ({len(queued_lost)} did not)",
              (f"{r.soak_id} ({r.size} B, delivery id {r.queued_id})" for r in queued_lost))
        check(not bad_queued and not wrong_delivery_id,
              f"every 202 names its delivery id, and the app saw that id ({len(bad_queued) + len(wrong_delivery_id)} did not)",
              (f"{r.soak_id}: {r.error or self.delivery_ids.get(r.soak_id)}" for r in bad_queued + wrong_delivery_id))
        check(not errors, f"every webhook got an HTTP answer head within {SENDER_TIMEOUT:.0f} s ({len(errors)} did not)",
              map(describe, errors))
        check(not unexpected_status, f"non-200 answers are only {'/'.join(map(str, EXPECTED_NON_200))} ({len(unexpected_status)} others)",
              map(describe, unexpected_status))
        check(not unexplained, f"every non-200 or cut answer overlaps a restart of its channel ({len(unexplained)} do not)",
              map(describe, unexplained))
        check(len(ok) > 0 and len(ok) >= 0.5 * len(records), f"most webhooks answered 200 ({len(ok)} of {len(records)})")
        check(mem_growth <= a.mem_slack_mib * 1024, f"server memory flat ({mem_growth / 1024:+.1f} MiB)")
        check(fd_growth <= a.fd_slack, f"server descriptors flat ({fd_growth:+d})")
        return 0 if not self.failures else 1

    def cleanup(self):
        with self.spawn_lock:
            self.stop.set()
        self.load_on.set()  # wake the senders so they see stop
        procs = [c.proc for c in self.clients if c.proc] + ([self.server] if self.server else [])
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for app in self.apps:
            app.stop()
        if os.environ.get("SOAK_KEEP"):
            log(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


class Record:
    __slots__ = ("soak_id", "channel", "size", "digest", "status", "app", "echo_id", "echo_ok", "error",
                 "cut", "timeout", "previous", "start", "end", "queued_id")

    def __init__(self, soak_id, channel, size, body_digest):
        self.soak_id, self.channel, self.size, self.digest = soak_id, channel, size, body_digest
        self.status = self.app = self.echo_id = self.error = self.cut = self.queued_id = None
        self.echo_ok = self.timeout = False
        self.previous = None
        self.start = self.end = 0.0


class Client:
    """One client process; restarted with the same state dir, it must come back on the same channel."""

    def __init__(self, channel, soak):
        self.channel, self.soak = channel, soak
        self.state_dir = os.path.join(soak.work, f"state-{channel}")
        self.proc = None
        self.channel_id = None
        self.starts = 0
        self.in_use_waits = 0
        self.max_exit = 0.0  # longest exit after SIGTERM

    def start(self):
        s = self.soak
        self.starts += 1
        base = os.path.join(s.work, f"client-{self.channel}.{self.starts}")
        with open(base + ".out", "w") as out, open(base + ".err", "w") as err, s.spawn_lock:
            if s.stop.is_set():
                raise RuntimeError("stopping")
            self.proc = subprocess.Popen(
                [s.args.bin, "client", "--server-url", f"http://127.0.0.1:{s.server_port}",
                 "--target-url", f"http://127.0.0.1:{s.apps[self.channel].port}",
                 "--state-dir", self.state_dir, "--log-level", "error"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(base + ".out") as f:
                text = f.read(16384)
            if "A tunnel to the server has been established." in text:
                m = re.search(r"Issued Channel ID: (\S+)", text)
                if not m:
                    raise RuntimeError(f"client {self.channel} printed no channel id")
                if "requesting a new channel" in text or (self.channel_id and m.group(1) != self.channel_id):
                    raise RuntimeError(f"client {self.channel} lost its channel {self.channel_id}: {text[:500]}")
                self.channel_id = m.group(1)
                if "in use by another client" in text:
                    self.in_use_waits += 1
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"client {self.channel} did not connect: {open(base + '.out').read()[:1000]}"
                           f" {open(base + '.err').read()[-1000:]}")

    def stop(self, sig):
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
            self.max_exit = max(self.max_exit, time.monotonic() - started) if sig == signal.SIGTERM else self.max_exit
        except subprocess.TimeoutExpired:
            self.soak.fail(f"client {self.channel} did not exit within 15 s of {signal.Signals(sig).name}")
            self.proc.kill()
            self.proc.wait()
        self.collect_output()

    def collect_output(self):
        """Keeps the lines of a stopped client's output that are not webhook lines or start-up lines."""
        base = os.path.join(self.soak.work, f"client-{self.channel}.{self.starts}")
        for name in (".out", ".err"):
            with open(base + name, errors="replace") as f:
                for line in f:
                    line = line.rstrip()
                    if (not line or line.startswith(("Issued Channel ID", "Please set the webhook", "A tunnel to"))
                            or re.match(r"^\d\d:\d\d:\d\d  ", line) or "in use by another client" in line):
                        continue
                    self.soak.client_anomalies.append(f"client {self.channel}: {line[:300]}")


class App:
    """The local app of one channel: records every id, echoes the body."""

    def __init__(self, channel, port, soak):
        self.channel, self.port, self.soak = channel, port, soak
        self.httpd = None
        self.connections = set()
        self.conn_lock = threading.Lock()

    def start(self):
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with app.conn_lock:
                    app.connections.add(self.connection)

            def finish(self):
                with app.conn_lock:
                    app.connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

            def handle(self):
                try:
                    super().handle()
                except OSError:
                    pass  # the connection was cut: by stop(), or by the client going away

            def do_POST(self):
                soak_id = self.headers.get("X-Soak-Id", "<none>")
                path_ok = self.path == f"/soak/{soak_id}"
                body, complete = read_body(self.rfile, self.headers)
                with app.soak.lock:
                    app.soak.received[soak_id].append((app.channel, complete, digest(body), path_ok))
                    app.soak.delivery_ids[soak_id].append(self.headers.get("X-Webhook-Delivery-Id"))
                if not complete:
                    self.close_connection = True
                    return
                if random.random() < 0.1:
                    time.sleep(random.uniform(0, 0.2))  # some slow answers, so restarts catch webhooks in flight
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Soak-App", str(app.channel))
                self.send_header("X-Soak-Id", soak_id)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self):
        """Stops listening and cuts every open connection, as a crashing app would."""
        if self.httpd is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd = None
        with self.conn_lock:
            connections = list(self.connections)
        for c in connections:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def read_body(rfile, headers):
    """The request body and whether it arrived whole (Content-Length or chunked)."""
    try:
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    return b"".join(parts), False
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts), True
                chunk = rfile.read(size)
                parts.append(chunk)
                if len(chunk) < size or rfile.readline(16) not in (b"\r\n", b"\n"):
                    return b"".join(parts), False
        length = int(headers.get("Content-Length", "0"))
        body = rfile.read(length)
        return body, len(body) == length
    except (OSError, ValueError):
        return b"", False


def main():
    env = os.environ.get
    parser = argparse.ArgumentParser(description="webhook-over-websocket soak driver (see bench/soak.sh)")
    parser.add_argument("--bin", default=env("BIN", ".build/release/webhook-over-websocket"))
    parser.add_argument("--duration", type=float, default=float(env("DURATION", "600")), help="seconds of load")
    parser.add_argument("--channels", type=int, default=int(env("CHANNELS", "8")))
    parser.add_argument("--senders", type=int, default=int(env("SENDERS", "2")), help="sender threads per channel")
    parser.add_argument("--chaos-interval", type=float, default=float(env("CHAOS_INTERVAL", "3")),
                        help="mean seconds between restarts")
    parser.add_argument("--mem-slack-mib", type=float, default=float(env("MEM_SLACK_MIB", "16")))
    parser.add_argument("--fd-slack", type=int, default=int(env("FD_SLACK", "8")))
    parser.add_argument("--seed", type=int, default=int(env("SEED", str(random.randrange(1 << 30)))))
    args = parser.parse_args()
    if args.channels < 1 or args.senders < 1 or args.duration < 10:
        parser.error("need at least 1 channel, 1 sender and 10 s")

    def terminate(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, terminate)
    soak = Soak(args)
    status = 1
    try:
        status = soak.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as error:
        log(f"FAIL: {type(error).__name__}: {error}")
    finally:
        soak.cleanup()
    log(f"RESULT: {'PASS' if status == 0 else 'FAIL'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
