"""Fine-tuning log streaming: ingest (runner → database → Redis) and fan-out (Redis → WebSocket subscribers).

**ingest** drives the real ``FineTuneRunner.tick()`` (so ``_follow``: runtime.logs → ``FineTuneRepo.append_logs``
→ progress update → ``FineTuneLogPublisher.lines``) against a fresh SQLite database (and MariaDB with
``--mariadb``) and a private redis-server. The runtime is a fake whose ``logs()`` returns the lines a job
"printed" since the cursor, produced at ``--ingest-rate`` lines/s (JSON step lines like the training program's)
for ``--ingest-seconds``. The collector loop is the training scheduler's: tick, then wait ``interval``
(run for 1.0 s, the default ``finetune.interval``, and 0.2 s, its minimum). Checked afterwards: every line is
in ``fine_tuning_log`` with seq 1..N in insertion order, and a Redis subscriber on ``finetune:<pk>`` saw every
line once, in order. Lag = line produced → its batch received by the Redis subscriber.

**fan-out** starts one API process (``python -m aigc_admin.cli start`` with a private redis-server, SQLite,
``health.interval 0``, ``finetune.interval 0``) under a small wrapper that records GC pauses (``gc.callbacks``),
inserts 100 RUNNING fine-tuning jobs (one stored log line each) directly into its SQLite file, opens
``--subscribers`` graphql-transport-ws connections (one ``fineTuneLogs(jobId, after: 0)`` each, spread evenly
over the jobs) with a minimal raw asyncio WebSocket client, waits until each got its replayed line (so it is
subscribed), then publishes batches of ``--lines-per-batch`` lines per job every ``--batch-interval`` seconds
(jobs staggered evenly) straight on ``<prefix>:events:finetune:<pk>`` through ``FineTuneLogPublisher`` (the
shape the runner publishes), each line carrying its publish timestamp, for ``--seconds``. Measured: delivered
vs. expected lines per subscriber (lost, out of order, errors), publish → deliver latency per line, the
server's CPU (``/proc/<pid>/stat``) during the stream, its RSS per 1,000 subscriptions (after subscribing
minus before) and its RSS growth while streaming, and the server's GC pauses during the stream.

    .venv/bin/python bench/log_stream.py --quick     # 1,000 subscribers, 3 s: ~1 minute
    .venv/bin/python bench/log_stream.py             # 5,000 subscribers, 10 s: ~3-5 minutes

The client shares the machine's cores with the server; its own CPU is printed too. No assertions: a measurement.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SUBSCRIPTION = "subscription($j: ID!) { fineTuneLogs(jobId: $j, after: 0) { status lines { seq line } } }"


# --- small helpers ----------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def pct(values: Any, q: float) -> float:
    if not len(values):
        return float("nan")
    s = sorted(values)
    return float(s[min(len(s) - 1, int(q / 100 * len(s)))])


def raise_fd_limit(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- server wrapper: the real CLI, plus GC pause accounting dumped on SIGUSR1 and at exit ----------
def serve_wrapped(stats_path: str, argv: list[str]) -> None:
    pauses: list[tuple[int, float]] = []
    started: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            pauses.append((info["generation"], time.perf_counter() - started.pop("t")))

    def dump(*_: Any) -> None:
        Path(stats_path + ".tmp").write_text(json.dumps({"pauses": pauses, "t": time.time()}))
        os.replace(stats_path + ".tmp", stats_path)

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, dump)
    import atexit

    atexit.register(dump)
    sys.argv = ["aigc-admin", *argv]
    from aigc_admin.cli.app import main

    main()


def gc_snapshot(pid: int, stats_path: Path, timeout: float = 5.0) -> list[tuple[int, float]]:
    before = stats_path.stat().st_mtime_ns if stats_path.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stats_path.exists() and stats_path.stat().st_mtime_ns != before:
            with contextlib.suppress(ValueError):
                return [tuple(p) for p in json.loads(stats_path.read_text())["pauses"]]  # type: ignore[misc]
        time.sleep(0.02)
    return []


@contextlib.contextmanager
def api_server(storage: Path, redis_url: str, prefix: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    from tests.support.live import ADMIN_PASSWORD

    flags = {"server.storage.path": storage, "redis.hosts": redis_url, "redis.prefix": prefix,
             "server.admin.pass": ADMIN_PASSWORD, "health.interval": 0, "finetune.interval": 0,
             "server.log.level": "warning"}
    argv = ["start", "-p", f"127.0.0.1:{port}"]
    for k, v in flags.items():
        argv += [f"--{k}", str(v)]
    log = (storage / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_serve", str(storage / "gc.json"),
                             "--", *argv], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    try:
        import httpx

        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: "
                                   f"{(storage / 'server.log').read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready in 90 s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log.close()


# --- ingest -----------------------------------------------------------------------------------
def step_line(i: int, n: int) -> str:
    return json.dumps({"type": "step", "step": i, "total_steps": n, "epoch": round(3 * i / n, 4),
                       "loss": round(2.5 / (1 + i / 1000), 6), "learning_rate": 2e-5, "grad_norm": 0.731})


class ProducingRuntime:
    """A fake runtime: a workload that prints ``rate`` lines/s from t0 until ``n`` lines; always RUNNING."""

    type = "fake"

    def __init__(self, lines: list[str], rate: float) -> None:
        self.lines, self.rate, self.t0 = lines, rate, 0.0

    def produced(self) -> int:
        return min(len(self.lines), int((time.monotonic() - self.t0) * self.rate)) if self.t0 else 0

    def produced_at(self, seq: int) -> float:  # seq is 1-based
        return self.t0 + seq / self.rate

    async def status(self, handle: Any) -> Any:
        from aigc_admin.domain.runtime import WorkloadState, WorkloadStatus

        return WorkloadStatus(WorkloadState.RUNNING)

    async def logs(self, handle: Any, *, since: int = 0, replica: int = 0) -> Any:
        from aigc_admin.domain.runtime import LogChunk

        upto = self.produced()
        return LogChunk(self.lines[since:upto], max(since, upto))


@dataclass
class IngestResult:
    db: str
    interval: float
    lines: int
    seconds: float  # first produced line → last line received on Redis
    persisted: int = 0
    seq_ok: bool = False
    published: int = 0
    messages: int = 0
    order_ok: bool = False
    ticks: list[float] = field(default_factory=list)
    appends: list[float] = field(default_factory=list)
    lags: array.array[float] = field(default_factory=lambda: array.array("d"))
    biggest_msg: int = 0
    error: str = ""


async def ingest_once(db_label: str, db_url: str, redis_url: str, storage: Path, interval: float, rate: float,
                      seconds: float) -> IngestResult:
    import redis.asyncio as aioredis

    from aigc_admin.adapters.db import close_db, init_db, migrate
    from aigc_admin.adapters.db import models as m
    from aigc_admin.adapters.db.finetunes import FineTuneRepo, ModelFinisher
    from aigc_admin.adapters.events import EventPublisher, FineTuneLogPublisher
    from aigc_admin.domain.finetunes.service import FineTuneRunner, TrainingConfig
    from aigc_admin.settings import Settings

    n = int(rate * seconds)
    res = IngestResult(db_label, interval, n, 0.0)
    settings = Settings(server_storage_path=str(storage))
    await migrate(settings, db_url=db_url)
    await init_db(settings, db_url=db_url)
    prefix = f"ing{uuid.uuid4().hex[:6]}"
    r = aioredis.from_url(redis_url)
    sub_r = aioredis.from_url(redis_url)
    try:
        code = uuid.uuid4().hex[:8]
        tenant = await m.Tenant.create(name="bench", code=code, public_tenant_id=code)
        job = await m.FineTuningTrainJob.create(
            job_id=f"ftjob-{uuid.uuid4().hex[:12]}", tenant_id=tenant.id, base_model="bench", train_status="RUNNING",
            runtime_handle=json.dumps({"backend": "fake", "name": "bench", "data": {}}))
        runtime = ProducingRuntime([step_line(i + 1, n) for i in range(n)], rate)

        class TimedRepo(FineTuneRepo):
            async def append_logs(self, pk: int, first_seq: int, lines: list[str]) -> None:
                t = time.perf_counter()
                await super().append_logs(pk, first_seq, lines)
                res.appends.append(time.perf_counter() - t)

        runner = FineTuneRunner(repo=TimedRepo(), runtime=runtime,  # type: ignore[arg-type]
                                events=FineTuneLogPublisher(EventPublisher(r, prefix=prefix)),
                                finisher=ModelFinisher(), config=TrainingConfig(python="", program=""),
                                owner=prefix, tenant_code=None)
        pubsub = sub_r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{prefix}:events:finetune:{job.id}")
        seqs: list[int] = []
        done = asyncio.Event()

        async def listen() -> None:
            while len(seqs) < n:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None or msg["type"] != "message":
                    continue
                now = time.monotonic()
                res.messages += 1
                res.biggest_msg = max(res.biggest_msg, len(msg["data"]))
                for item in json.loads(msg["data"])["lines"]:
                    seqs.append(item["seq"])
                    res.lags.append(now - runtime.produced_at(item["seq"]))
            done.set()

        listener = asyncio.create_task(listen())
        runtime.t0 = time.monotonic()
        deadline = runtime.t0 + seconds + 60  # bounded: the runner must catch up within a minute
        while not done.is_set() and time.monotonic() < deadline:
            t = time.perf_counter()
            await runner.tick()  # the scheduler's loop: tick, then wait `interval`
            res.ticks.append(time.perf_counter() - t)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=interval)
        res.seconds = time.monotonic() - runtime.t0
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()
        stored = await m.FineTuningLog.filter(job_id=job.id).order_by("id").values_list("seq", flat=True)
        res.persisted = len(stored)
        res.seq_ok = list(stored) == list(range(1, n + 1))
        res.published = len(seqs)
        res.order_ok = seqs == list(range(1, n + 1))
        cursor = (await m.FineTuningTrainJob.get(id=job.id)).log_cursor
        if cursor != n:
            res.error = f"log_cursor {cursor} != {n}"
    except Exception as e:  # a measurement reports, it does not crash half-way
        res.error = f"{type(e).__name__}: {e}"
    finally:
        await r.aclose()
        await sub_r.aclose()
        await close_db()
    return res


def print_ingest(results: list[IngestResult], rate: float, seconds: float) -> None:
    print(f"\ningest: one job printing {rate:,.0f} lines/s for {seconds:g} s through FineTuneRunner.tick() "
          "(append_logs + publish)")
    head = (f"{'db':8} {'interval':>8} {'lines':>7} {'persisted':>9} {'seq 1..N':>8} {'published':>9} {'msgs':>5} "
            f"{'order':>5} {'lost':>5} {'done +s':>7} {'tick p50/max s':>15} {'append max s':>12} "
            f"{'lag p50/p99/max s':>18} {'max msg':>8}")
    print(head)
    for x in results:
        lost = x.lines - min(x.persisted, x.published)
        behind = x.seconds - x.lines / rate  # last line produced → last line received on Redis
        print(f"{x.db:8} {x.interval:>8.1f} {x.lines:>7} {x.persisted:>9} {'ok' if x.seq_ok else 'BAD':>8} "
              f"{x.published:>9} {x.messages:>5} {'ok' if x.order_ok else 'BAD':>5} {lost:>5} {behind:>7.2f} "
              f"{pct(x.ticks, 50):>7.3f}/{max(x.ticks or [0]):<7.3f} {max(x.appends or [0]):>12.3f} "
              f"{pct(x.lags, 50):>6.2f}/{pct(x.lags, 99):.2f}/{max(x.lags or [0]):<5.2f} "
              f"{x.biggest_msg / 1e6:>6.2f}MB" + (f"  ERROR {x.error}" if x.error else ""))
    print("target: none lost, seq 1..N in order, every line published. lag = line printed → its batch on Redis "
          "(includes the collector interval); done +s = last line printed → received on Redis")


# --- fan-out: a minimal graphql-transport-ws client -------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.lat = array.array("d")
        self.messages = 0
        self.errors: list[str] = []


class WSSub(asyncio.Protocol):
    """One WebSocket, one fineTuneLogs subscription. Client frames use a zero mask (legal; no XOR needed)."""

    def __init__(self, host: str, port: int, token: str, tenant: str, job_id: str, stats: Stats) -> None:
        self.host, self.port, self.token, self.tenant = host, port, token, tenant
        self.job_id, self.stats = job_id, stats
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.frag = bytearray()
        self.next_seq = 1
        self.got = 0
        self.bad_order = 0
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = False
        self.done = False  # complete/error received

    # sending
    def send_text(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        n = len(data)
        if n < 126:
            head = bytes((0x81, 0x80 | n))
        elif n < 65536:
            head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
        assert self.transport is not None
        self.transport.write(head + b"\0\0\0\0" + data)

    def send_control(self, opcode: int, payload: bytes = b"") -> None:
        assert self.transport is not None
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        tr.write(  # type: ignore[attr-defined]
            f"GET /graphql HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {exc}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._fail(f"upgrade refused: {bytes(buf[:200])!r}")
                return
            del buf[:end + 4]
            self.upgraded = True
            self.send_text({"type": "connection_init",
                            "payload": {"Authorization": f"Bearer {self.token}", "X-Tenant-Id": self.tenant}})
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, off = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, off = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < off + n:
                return
            payload = bytes(buf[off:off + n])
            del buf[:off + n]
            opcode = b0 & 0x0F
            if opcode in (1, 0):
                self.frag += payload
                if b0 & 0x80:
                    text, self.frag = bytes(self.frag), bytearray()
                    self._message(text)
            elif opcode == 9:
                self.send_control(0xA, payload)
            elif opcode == 8:
                self.closed = True
                self._fail(f"server closed: {payload[:2].hex()} {payload[2:200]!r}")

    def _fail(self, why: str) -> None:
        self.stats.errors.append(why)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()

    def _message(self, text: bytes) -> None:
        now = time.monotonic()
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "next":
            payload = msg["payload"]
            if payload.get("errors"):
                self.stats.errors.append(json.dumps(payload["errors"])[:300])
                return
            lat = self.stats.lat
            lines = payload["data"]["fineTuneLogs"]["lines"]
            if lines and lines[0]["seq"] > 1:
                self.stats.messages += 1  # live messages only (seq 1 is the replay)
            for item in lines:
                seq = item["seq"]
                if seq != self.next_seq:
                    self.bad_order += 1
                    if seq < self.next_seq:
                        continue
                self.next_seq = seq + 1
                self.got += 1
                line = item["line"]
                if seq > 1:  # seq 1 is the stored line, replayed on subscribe
                    lat.append(now - float(line[:line.index(" ")]))
            if not self.ready.done() and self.got:
                self.ready.set_result(None)
        elif kind == "connection_ack":
            self.send_text({"id": "1", "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"j": self.job_id}}})
        elif kind == "ping":
            self.send_text({"type": "pong"})
        elif kind in ("complete", "error"):
            self.done = True
            self.stats.errors.append(f"{kind}: {json.dumps(msg.get('payload'))[:300]}")

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.send_control(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


@dataclass
class FanoutResult:
    subscribers: int
    jobs: int
    seconds: float
    lines_per_batch: int
    batch_interval: float
    subscribe_s: float = 0.0
    expected: int = 0
    delivered: int = 0
    bad_order: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)
    publish_s: float = 0.0
    lat: array.array[float] = field(default_factory=lambda: array.array("d"))
    rss_before: float = 0.0
    rss_subscribed: float = 0.0
    rss_after: float = 0.0
    server_cpu: float = 0.0
    server_cpu_s: float = 0.0
    redis_cpu: float = 0.0
    client_cpu: float = 0.0
    gc: list[tuple[int, float]] = field(default_factory=list)
    failed_connects: int = 0


async def create_jobs(db_path: Path, jobs: int) -> tuple[str, list[str]]:
    """A tenant and ``jobs`` RUNNING fine-tuning jobs with one stored log line each, straight into SQLite."""
    from aigc_admin.adapters.db import close_db, init_db
    from aigc_admin.adapters.db import models as m
    from aigc_admin.settings import Settings

    await init_db(Settings(server_storage_path=str(db_path.parent)), db_url=f"sqlite://{db_path}")
    try:
        code = uuid.uuid4().hex[:8]
        tenant = await m.Tenant.create(name="bench", code=code, public_tenant_id=code)
        ids = []
        for _ in range(jobs):
            job = await m.FineTuningTrainJob.create(
                job_id=f"ftjob-{uuid.uuid4().hex[:12]}", tenant_id=tenant.id, base_model="bench",
                train_status="RUNNING", log_cursor=1, runtime_handle="")
            await m.FineTuningLog.create(job_id=job.id, seq=1, line="0 stored")
            ids.append(str(job.id))
        return str(tenant.id), ids
    finally:
        await close_db()


async def fanout(args: argparse.Namespace, storage: Path, redis_url: str) -> FanoutResult:
    import redis.asyncio as aioredis
    from tests.support.live import ADMIN_PASSWORD
    from tests.support.slapd import free_port

    from aigc_admin.adapters.events import EventPublisher, FineTuneLogPublisher
    from aigc_admin.domain.finetunes.service import JobStatus, LogLine

    res = FanoutResult(args.subscribers, args.jobs, args.seconds, args.lines_per_batch, args.batch_interval)
    prefix = f"fo{uuid.uuid4().hex[:6]}"
    port = free_port()
    # the schema and the admin account exist once the server has started; jobs are inserted afterwards
    with api_server(storage, redis_url, prefix, port) as proc:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as h:
            login = await h.post("/graphql", json={
                "query": "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
                         "{ token } }", "variables": {"u": "admin", "p": ADMIN_PASSWORD}})
            token = login.json()["data"]["login"]["token"]
        tenant, job_ids = await create_jobs(storage / "database" / "aigc.db", args.jobs)
        loop = asyncio.get_running_loop()
        stats = Stats()
        subs: list[WSSub] = []
        # warm the server: one full subscription round trip before the baseline RSS
        warm = WSSub("127.0.0.1", port, token, tenant, job_ids[0], Stats())
        await loop.create_connection(lambda: warm, "127.0.0.1", port)
        await asyncio.wait_for(warm.ready, 30)
        warm.close()
        await asyncio.sleep(1.0)
        gc.collect()
        res.rss_before = rss_mb(proc.pid)

        sem = asyncio.Semaphore(args.connect_concurrency)

        async def open_one(i: int) -> None:
            async with sem:
                sub = WSSub("127.0.0.1", port, token, tenant, job_ids[i % len(job_ids)], stats)
                subs.append(sub)
                try:
                    await loop.create_connection(lambda: sub, "127.0.0.1", port)
                    await asyncio.wait_for(sub.ready, 60)
                except (OSError, TimeoutError, ConnectionError) as e:
                    sub.closed = True
                    res.failed_connects += 1
                    stats.errors.append(f"connect: {type(e).__name__}: {e}"[:200])

        t = time.monotonic()
        await asyncio.gather(*(open_one(i) for i in range(args.subscribers)))
        res.subscribe_s = time.monotonic() - t
        await asyncio.sleep(2.0)
        res.rss_subscribed = rss_mb(proc.pid)
        print(f"  {len(subs) - res.failed_connects} subscribed in {res.subscribe_s:.1f} s "
              f"({(len(subs) - res.failed_connects) / res.subscribe_s:.0f}/s); server RSS "
              f"{res.rss_before:.0f} → {res.rss_subscribed:.0f} MB", flush=True)

        # publish: every job a batch each batch_interval, jobs staggered evenly over the interval
        r = aioredis.from_url(redis_url)
        publisher = FineTuneLogPublisher(EventPublisher(r, prefix=prefix))
        redis_pid = int((await r.info("server"))["process_id"])
        pad = "x" * max(0, args.line_bytes - 40)
        next_seq = dict.fromkeys(job_ids, 2)
        pubs = int(args.seconds / args.batch_interval)
        gc_before = gc_snapshot(proc.pid, storage / "gc.json")
        cpu0, rcpu0, ccpu0 = cpu_seconds(proc.pid), cpu_seconds(redis_pid), time.process_time()
        t0 = time.monotonic()
        schedule = sorted((t0 + k * args.batch_interval + j * args.batch_interval / len(job_ids), j)
                          for k in range(pubs) for j in range(len(job_ids)))
        for due, j in schedule:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pk = job_ids[j]
            s = next_seq[pk]
            ts = time.monotonic()
            batch = [LogLine(s + i, f"{ts:.6f} step={s + i} loss=0.{s + i:06d} {pad}")
                     for i in range(args.lines_per_batch)]
            next_seq[pk] = s + args.lines_per_batch
            await publisher.lines(int(pk), batch, JobStatus.RUNNING)
        res.publish_s = time.monotonic() - t0
        # drain: wait until every live subscriber has everything (bounded)
        want = {pk: next_seq[pk] for pk in job_ids}
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            if all(w.next_seq >= want[w.job_id] or w.closed or w.done for w in subs):
                break
            await asyncio.sleep(0.05)
        stream_s = time.monotonic() - t0
        res.server_cpu_s = cpu_seconds(proc.pid) - cpu0
        res.server_cpu = res.server_cpu_s / stream_s
        res.redis_cpu = (cpu_seconds(redis_pid) - rcpu0) / stream_s
        res.client_cpu = (time.process_time() - ccpu0) / stream_s
        res.publish_s = max(res.publish_s, 1e-9)
        gc_after = gc_snapshot(proc.pid, storage / "gc.json")
        res.gc = gc_after[len(gc_before):]
        res.rss_after = rss_mb(proc.pid)
        for w in subs:
            res.expected += want[w.job_id] - 1  # seq 1 (replayed) counts too
            res.delivered += w.got
            res.bad_order += w.bad_order
        res.messages = stats.messages
        res.lat = stats.lat
        res.errors = stats.errors
        for w in subs:
            w.close()
        await r.aclose()
        await asyncio.sleep(0.5)
    return res


def print_fanout(x: FanoutResult) -> None:
    live_lines = x.delivered - (x.subscribers - x.failed_connects)
    rate = live_lines / x.publish_s if x.publish_s else 0
    per_k = (x.rss_subscribed - x.rss_before) / max(1, x.subscribers - x.failed_connects) * 1000
    grow = x.rss_after - x.rss_subscribed
    msgs_s = x.messages / x.publish_s if x.publish_s else 0
    full = [p for g, p in x.gc if g == 2]
    print(f"\nfan-out: {x.subscribers:,} WebSocket subscribers (one fineTuneLogs each) on one API process, "
          f"{x.jobs} jobs, a batch of {x.lines_per_batch} line(s) per job every {x.batch_interval:g} s "
          f"for {x.seconds:g} s")
    rows = [
        ("subscribed", f"{x.subscribers - x.failed_connects:,} in {x.subscribe_s:.1f} s "
                       f"({(x.subscribers - x.failed_connects) / max(x.subscribe_s, 1e-9):.0f}/s)", "all"),
        ("delivered / expected lines", f"{x.delivered:,} / {x.expected:,}", "all"),
        ("lost lines", f"{x.expected - x.delivered:,}", "0"),
        ("out-of-order/duplicate", f"{x.bad_order:,}", "0"),
        ("errors (subscription/connection)", f"{len(x.errors)}" + (f"  e.g. {x.errors[0]}" if x.errors else ""),
         "0"),
        ("delivered lines/s (live)", f"{rate:,.0f}", "≥ 5,000"),
        ("WebSocket messages/s", f"{msgs_s:,.0f}", ""),
        ("publish → deliver p50 / p99 / max ms", f"{pct(x.lat, 50) * 1e3:.1f} / {pct(x.lat, 99) * 1e3:.1f} / "
                                                 f"{max(x.lat or [0]) * 1e3:.0f}", "p99 ≤ 100"),
        ("server CPU (cores) / µs per message", f"{x.server_cpu:.2f} / {x.server_cpu_s * 1e6 / max(x.messages, 1):.0f}",
         ""),
        ("redis CPU / client CPU (cores)", f"{x.redis_cpu:.2f} / {x.client_cpu:.2f}", ""),
        ("server RSS before → subscribed → after MB", f"{x.rss_before:.0f} → {x.rss_subscribed:.0f} → "
                                                      f"{x.rss_after:.0f}", ""),
        ("RSS per 1,000 subscriptions MB", f"{per_k:.1f}", "≤ 30"),
        ("RSS growth while streaming, KB per delivered message",
         f"{grow * 1e3 / max(1, x.messages):.2f} ({grow:+.0f} MB)", "~0"),
        ("server GC during stream: collections / gen2 / max pause ms / total ms",
         f"{len(x.gc)} / {len(full)} / {max([p for _, p in x.gc] or [0]) * 1e3:.0f} / "
         f"{sum(p for _, p in x.gc) * 1e3:.0f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':{width}}  {'result':40}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:40}  {target}")


# --- main -------------------------------------------------------------------------------------
def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--_serve":
        serve_wrapped(sys.argv[2], sys.argv[4:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 subscribers, 3 s, ingest 3 s at one interval")
    p.add_argument("--part", choices=("all", "ingest", "fanout"), default="all")
    p.add_argument("--ingest-rate", type=float, default=10_000)
    p.add_argument("--ingest-seconds", type=float, default=None)
    p.add_argument("--intervals", default=None, help="collector intervals, e.g. 1.0,0.2")
    p.add_argument("--mariadb", action="store_true", help="also ingest into a MariaDB (throwaway if needed)")
    p.add_argument("--subscribers", type=int, default=None)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--lines-per-batch", type=int, default=2)
    p.add_argument("--batch-interval", type=float, default=1.0, help="per job (the runner's finetune.interval)")
    p.add_argument("--line-bytes", type=int, default=120)
    p.add_argument("--connect-concurrency", type=int, default=64)
    p.add_argument("--drain", type=float, default=20.0, help="seconds to wait for stragglers after publishing")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    args.subscribers = args.subscribers or (1000 if args.quick else 5000)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.ingest_seconds = args.ingest_seconds or (3.0 if args.quick else 10.0)
    intervals = [float(v) for v in (args.intervals or ("1.0" if args.quick else "1.0,0.2")).split(",")]
    raise_fd_limit(args.subscribers + 1024)
    use_uvloop()

    from tests.support.redis_server import start_redis

    tmp = Path(tempfile.mkdtemp(prefix="aigc-logbench-"))
    redis = start_redis(tmp / "redis")
    # the server inherits our raised fd limit; it needs one fd per subscriber
    try:
        if args.part in ("all", "ingest"):
            results = []
            for interval in intervals:
                st = tmp / f"ingest-sqlite-{interval}"
                st.mkdir()
                results.append(asyncio.run(ingest_once("sqlite", f"sqlite://{st / 'aigc.db'}", redis.url, st, interval,
                                                       args.ingest_rate, args.ingest_seconds)))
            if args.mariadb:
                from tests.support.mariadb import create_database, drop_database, ensure_mariadb

                maria = ensure_mariadb()
                try:
                    for interval in intervals:
                        name = create_database(maria)
                        try:
                            results.append(asyncio.run(ingest_once("mariadb", maria.url(name), redis.url, tmp, interval,
                                                                   args.ingest_rate, args.ingest_seconds)))
                        finally:
                            drop_database(maria, name)
                finally:
                    maria.stop()
            print_ingest(results, args.ingest_rate, args.ingest_seconds)
        if args.part in ("all", "fanout"):
            st = tmp / "fanout"
            st.mkdir()
            print(f"\nfan-out: starting the API and {args.subscribers:,} subscriptions …", flush=True)
            print_fanout(asyncio.run(fanout(args, st, redis.url)))
    finally:
        redis.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
