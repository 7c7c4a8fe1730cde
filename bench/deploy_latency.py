"""Deploy latency on the local runtime: from the deployModel mutation to RUNNING, stage by stage.

Starts a private redis-server and the platform (API + one RQ worker, managed FastChat controller,
health monitor every second), creates a tenant and the tiny model, then N times:

    t0        just before the deployModel mutation is sent
    ack       the mutation answered (deployment recorded PENDING, job enqueued)
    picked    the RQ job ``deploy:<id>`` started (its ``started_at`` in Redis)
    started   the workload started (the deployment's ``startedAt``: status STARTING)
    registered  the model first listed by the controller's /list_models (polled every 50 ms)
    running   the RUNNING event of deploymentStatusChanged arrived

then undeploys and waits for STOPPED. Prints the median/min/max of every stage from t0 and of the
step-to-step deltas. No assertions: this is a measurement.

    .venv/bin/python bench/deploy_latency.py [--runs 5] [--timeout 300] [--engine vllm]

``--engine vllm`` deploys the vLLM tiny model with the ``vllm`` engine (vLLM's own OpenAI server, eager mode, 1 GiB
KV cache): "registered" is then the replica's ``/v1/models`` first listing the model (polled every 50 ms).

Needs redis-server and the engine venv + tiny model (``make engine``; ``make vllm`` for ``--engine vllm``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.api import ADMIN_PASSWORD, unique  # noqa: E402
from tests.support.engine import tiny_model_path, tiny_vllm_model_path, vllm_python  # noqa: E402
from tests.support.live import (  # noqa: E402
    LiveServer,
    complete,
    expect_ack,
    http_gql,
    http_login,
    live_server,
    managed_fastchat,
    recv,
    subscribe,
    ws_session,
)
from tests.support.redis_server import start_redis  # noqa: E402

from aigc_admin.adapters.fastchat.controller import FastChatController  # noqa: E402
from aigc_admin.adapters.queue import JobQueue  # noqa: E402
from aigc_admin.adapters.redis_conn import RedisEndpoint  # noqa: E402

DEPLOY = ("mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id status } "
          "errors { field code message } } }")
UNDEPLOY = "mutation($id: ID!) { undeployModel(id: $id) { deployment { status } errors { code message } } }"
GET = "query($id: ID!) { deployment(id: $id) { id status reason startedAt } }"
STAGES = ("ack", "picked", "started", "registered", "running")
LABELS = {"ack": "mutation answered", "picked": "job deploy:<id> picked up", "started": "workload started",
          "registered": "worker registered", "running": "RUNNING event"}
POLL = 0.05


def _epoch(value: datetime | str | None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # rq and the API store UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


async def _status_events(ws: Any, op: str, events: list[tuple[float, dict[str, Any]]],
                         limit: float) -> None:
    """Collect deploymentStatusChanged payloads with their arrival time until the operation ends."""
    while True:
        message = await recv(ws, timeout=limit)
        if message.get("id") != op:
            continue
        if message["type"] != "next":
            return
        if message["payload"].get("errors"):
            raise RuntimeError(f"subscription error: {message['payload']['errors']}")
        events.append((time.time(), message["payload"]["data"]["deploymentStatusChanged"]))


async def _wait_event(events: list[tuple[float, dict[str, Any]]], statuses: set[str], start: int,
                      limit: float) -> tuple[float, dict[str, Any]]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for arrived, event in events[start:]:
            if event["status"] in statuses:
                return arrived, event
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no {sorted(statuses)} event within {limit:.0f} s; seen: "
                       f"{[e['status'] for _, e in events[start:]]}")


async def _first_listed(controller: FastChatController, model: str, stop: asyncio.Event) -> float | None:
    while not stop.is_set():
        with contextlib.suppress(Exception):
            if model in await controller.list_models():
                return time.time()
        await asyncio.sleep(POLL)
    return None


async def _first_served(storage: Path, dep_id: str, model: str, stop: asyncio.Event) -> float | None:
    """When the vllm replica's own server first lists the model (its port from the local runtime's state)."""
    import httpx

    state = storage / "runtime" / "local" / f"aigc-deploy-{dep_id}" / "state.json"
    async with httpx.AsyncClient(timeout=2) as client:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                port = json.loads(state.read_text())["replicas"][0]["port"]
                r = await client.get(f"http://127.0.0.1:{port}/v1/models")
                if model in [m["id"] for m in r.json()["data"]]:
                    return time.time()
            await asyncio.sleep(POLL)
    return None


async def one_run(server: LiveServer, jobs: JobQueue, controller: FastChatController, token: str, tenant: str,
                  model_id: str, model_name: str, limit: float, engine: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}
    # The model must be gone from the controller before we start watching for it.
    deadline = time.monotonic() + 120
    while engine != "vllm" and model_name in await controller.list_models() and time.monotonic() < deadline:
        await controller.refresh_all_workers()
        await asyncio.sleep(0.2)

    stop = asyncio.Event()
    t0 = time.time()
    listed = asyncio.create_task(_first_listed(controller, model_name, stop)) if engine != "vllm" else None
    deploy = {"modelId": model_id} if engine != "vllm" else {
        "modelId": model_id, "engine": "VLLM", "engineOptions": {"enforceEager": True, "cpuKvCacheGib": 1}}
    body = await http_gql(server, DEPLOY, {"i": deploy}, token, tenant=tenant)
    t_ack = time.time()
    payload = body.get("data", {}).get("deployModel") if body.get("data") else None
    if not payload or payload["errors"] or not payload["deployment"]:
        stop.set()
        if listed is not None:
            await listed
        raise RuntimeError(f"deployModel failed: {body}")
    dep_id = payload["deployment"]["id"]
    if listed is None:
        listed = asyncio.create_task(_first_served(server.log_path.parent, dep_id, model_name, stop))

    events: list[tuple[float, dict[str, Any]]] = []
    async with ws_session(server, headers) as ws:
        await expect_ack(ws)
        op = await subscribe(ws, f'subscription {{ deploymentStatusChanged(id: "{dep_id}") '
                                 "{ id status reason startedAt } }")
        reader = asyncio.create_task(_status_events(ws, op, events, limit))
        try:
            t_running, event = await _wait_event(events, {"RUNNING", "FAILED"}, 0, limit)
            if event["status"] != "RUNNING":
                raise RuntimeError(f"deployment {dep_id} FAILED: {event['reason']}")
            stop.set()
            t_registered = await listed
            current = (await http_gql(server, GET, {"id": dep_id}, token, tenant=tenant))["data"]["deployment"]
            t_started = _epoch(current["startedAt"])
            job = jobs.fetch(f"deploy:{dep_id}")
            t_picked = _epoch(job.started_at) if job is not None else None

            mark = len(events)
            undeploy = await http_gql(server, UNDEPLOY, {"id": dep_id}, token, tenant=tenant)
            if undeploy["data"]["undeployModel"]["errors"]:
                raise RuntimeError(f"undeployModel failed: {undeploy}")
            await _wait_event(events, {"STOPPED"}, mark, limit)
        finally:
            stop.set()
            if not listed.done():
                listed.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await complete(ws, op)
    marks = {"ack": t_ack, "picked": t_picked, "started": t_started, "registered": t_registered,
             "running": t_running}
    return {k: (v - t0) if v is not None else float("nan") for k, v in marks.items()}


def _fmt(values: list[float]) -> str:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return f"{'n/a':>8} {'n/a':>8} {'n/a':>8}"
    return f"{statistics.median(values):8.3f} {min(values):8.3f} {max(values):8.3f}"


def report(results: list[dict[str, float]], engine: str = "model_worker") -> str:
    lines = [f"deploy latency, local runtime, {engine} engine, tiny model on CPU — N = {len(results)} runs",
             f"host: {platform.node()} ({platform.machine()}, {__import__('os').cpu_count()} CPUs), "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"{'stage (seconds from t0 = mutation sent)':50} {'median':>8} {'min':>8} {'max':>8}"]
    for stage in STAGES:
        lines.append(f"{LABELS[stage]:50} {_fmt([r[stage] for r in results])}")
    lines += ["", f"{'step (delta)':50} {'median':>8} {'min':>8} {'max':>8}"]
    previous = None
    for stage in STAGES:
        name = f"t0 → {LABELS[stage]}" if previous is None else f"{LABELS[previous]} → {LABELS[stage]}"
        deltas = [r[stage] - (r[previous] if previous else 0.0) for r in results]
        lines.append(f"{name:50} {_fmt(deltas)}")
        previous = stage
    return "\n".join(lines)


async def bench(server: LiveServer, redis_url: str, prefix: str, controller_url: str, runs: int,
                limit: float, engine: str) -> list[dict[str, float]]:
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, "mutation($c: String!) { createTenant(input: {name: \"Bench\", code: $c}) "
                             "{ tenant { id } errors { code message } } }", {"c": unique("bench")}, token)
    tenant = created["data"]["createTenant"]["tenant"]["id"]
    name = unique("tiny")
    model = await http_gql(server, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } "
                           "errors { code message } } }",
                           {"i": {"name": name, "modelPath": str(tiny_vllm_model_path() if engine == "vllm"
                                                                 else tiny_model_path()), "tenantIds": [tenant]}},
                           token)
    model_id = model["data"]["createModel"]["model"]["id"]

    jobs = JobQueue(RedisEndpoint(url=redis_url, prefix=prefix))
    results = []
    try:
        async with FastChatController(controller_url) as controller:
            deadline = time.monotonic() + 120  # the monitor starts the managed controller
            while not await controller.alive():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the managed controller at {controller_url} did not come up")
                await asyncio.sleep(0.2)
            for i in range(runs):
                r = await one_run(server, jobs, controller, token, tenant, model_id, name, limit, engine)
                results.append(r)
                print(f"run {i + 1}/{runs}: " + ", ".join(f"{k} {v:.3f}s" for k, v in r.items()), flush=True)
    finally:
        jobs.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one deploy or undeploy may take")
    parser.add_argument("--json", type=Path, help="also write the raw per-run numbers here")
    parser.add_argument("--engine", choices=("model_worker", "vllm"), default="model_worker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as tmp:
        work = Path(tmp)
        redis = start_redis(work / "redis")
        try:
            prefix = f"bench{uuid.uuid4().hex[:8]}"
            extra = managed_fastchat(**{"redis.prefix": prefix, "engine.start.timeout": int(args.timeout)})
            if args.engine == "vllm":
                extra["engine.vllm.python"] = str(vllm_python())
            controller = str(extra["service.fschat.controller.host"])
            storage = work / "storage"
            storage.mkdir()
            try:
                with live_server(storage, redis.url, extra=extra, worker=True) as server:
                    try:
                        results = asyncio.run(bench(server, redis.url, prefix, controller, args.runs, args.timeout,
                                                    args.engine))
                    except BaseException:
                        print(f"--- server log ---\n{server.log_tail()}\n--- worker log ---\n"
                              f"{(storage / 'worker.log').read_text(errors='replace')[-4000:]}", file=sys.stderr)
                        raise
            finally:
                _stop_managed(storage)  # after the API stopped: its monitor would restart the controller
        finally:
            redis.stop()
    print()
    print(report(results, args.engine))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _stop_managed(storage: Path) -> None:
    """Stop every workload the platform left in its local runtime (the managed FastChat processes:
    the API process does not stop them on exit, and any deployment a failed run left behind)."""
    from aigc_admin.adapters.runtime.local import LocalRuntime
    from aigc_admin.domain.runtime import WorkloadHandle

    work_dir = storage / "runtime" / "local"
    if not work_dir.exists():
        return
    runtime = LocalRuntime(work_dir=work_dir, owner="", stop_timeout=10)

    async def stop_all() -> None:
        for child in sorted(work_dir.iterdir()):
            if (child / "state.json").exists():
                await runtime.stop(WorkloadHandle("local", child.name))

    asyncio.run(stop_all())


if __name__ == "__main__":
    sys.exit(main())
