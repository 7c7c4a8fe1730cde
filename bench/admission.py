"""A small channel's latency beside a greedy neighbour, with and without admission control.

One real FastChat worker (the tiny model, CPU) behind a proxy that serves one generation at a time and adds
SERVICE seconds to each: a replica with a fixed capacity. The gateway runs in this process (its real code, the
limiter on a private Redis). The small channel sends requests one after the other; the greedy one keeps GREEDY
requests in flight (10× the small one's). Three runs, side by side:

    alone           the small channel by itself (the baseline)
    greedy, off     with the greedy neighbour, admission control off (round-robin, no waiting: the worker queues)
    greedy, on      with the neighbour, gateway.admission.queue = 1: fair turns, the excess shed with 429

Prints the small channel's p50/p99 in each and the ratio to the baseline (target for "on": p99 ≤ 2×), and what
happened to the greedy channel's requests. No assertions: this is a measurement.

    .venv/bin/python bench/admission.py [--requests 40] [--greedy 10] [--service 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.asgi_stub import read_body, start  # noqa: E402
from tests.support.engine import (  # noqa: E402
    start_controller,
    start_model_worker,
    stop_process_group,
    tiny_model_path,
    wait_until_async,
)
from tests.support.redis_server import start_redis  # noqa: E402
from tests.support.slapd import free_port  # noqa: E402

from aigc_admin.adapters.db.channels import UsageStore  # noqa: E402
from aigc_admin.adapters.fastchat.controller import FastChatController  # noqa: E402
from aigc_admin.adapters.fastchat.worker_client import WorkerClient  # noqa: E402
from aigc_admin.domain.channels.service import ChannelSnapshot  # noqa: E402
from aigc_admin.gateway.admission import Admission  # noqa: E402
from aigc_admin.gateway.keys import KeyCache  # noqa: E402
from aigc_admin.gateway.limits import Limiter  # noqa: E402
from aigc_admin.gateway.router import ApiError, Gateway, generate_for  # noqa: E402
from aigc_admin.gateway.routing import Route, RoutingTable  # noqa: E402
from aigc_admin.gateway.upstream import UpstreamClient  # noqa: E402
from aigc_admin.gateway.usage import UsageRecorder  # noqa: E402

MODEL = "tiny-admission"
CHAT = {"model": MODEL, "max_tokens": 8, "temperature": 0.0, "messages": [{"role": "user", "content": "Hi"}]}


def one_at_a_time(real: str, service: float) -> str:
    """The worker behind a proxy that runs one generation at a time, each ``service`` s longer."""
    gate = asyncio.Lock()

    async def proxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        generate = scope["path"].startswith("/worker_generate")
        async with httpx.AsyncClient() as c:
            if generate:
                async with gate:
                    await asyncio.sleep(service)
                    r = await c.post(real + scope["path"], content=body, timeout=60,
                                     headers={"content-type": "application/json"})
            else:
                r = await c.post(real + scope["path"], content=body, timeout=60,
                                 headers={"content-type": "application/json"})
        await send({"type": "http.response.start", "status": r.status_code,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": r.content})

    url, _ = start(proxy)
    return url.removesuffix("/v1")


def channel(cid: int) -> ChannelSnapshot:
    return ChannelSnapshot(id=cid, tenant_id=1, enabled=True, expires_at=None, allowed_models=frozenset({MODEL}),
                           quota=None, rpm=None, tpm=None)


async def run(gw: Gateway, requests: int, greedy: int) -> tuple[list[float], dict[str, int]]:
    small_latencies: list[float] = []
    outcomes = {"answered": 0, "shed": 0}
    stop = asyncio.Event()

    async def call(cid: int) -> bool:
        try:
            await generate_for(gw, channel(cid), dict(CHAT), "chat")
            return True
        except ApiError as e:
            if e.status != 429:
                raise
            return False

    async def greedy_client() -> None:
        while not stop.is_set():
            outcomes["answered" if await call(1) else "shed"] += 1

    async def small() -> None:
        for _ in range(requests):
            t = time.perf_counter()
            assert await call(2), "the small channel was refused"
            small_latencies.append(time.perf_counter() - t)

    tasks = [asyncio.create_task(greedy_client()) for _ in range(greedy)]
    await asyncio.sleep(0.5 if greedy else 0)
    await small()
    stop.set()
    await asyncio.gather(*tasks)
    return small_latencies, outcomes


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="the small channel's requests per run")
    parser.add_argument("--greedy", type=int, default=10, help="the greedy channel's requests in flight")
    parser.add_argument("--service", type=float, default=0.1, help="seconds the replica adds to each generation")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-admission-"))
    redis = start_redis(work / "redis")
    controller_port, worker_port = free_port(), free_port()
    controller_url, worker_url = f"http://127.0.0.1:{controller_port}", f"http://127.0.0.1:{worker_port}"
    processes = [start_controller(controller_port, work)]
    import redis.asyncio as aioredis

    try:
        async with FastChatController(controller_url) as controller:
            await wait_until_async(controller.alive, 30, what="controller up")
            processes.append(start_model_worker(controller_url, worker_port, tiny_model_path(), MODEL, work))

            async def registered() -> bool:
                return MODEL in await controller.list_models()

            await wait_until_async(registered, 90, interval=0.2, what="worker registered")
        replica = one_at_a_time(worker_url, args.service)

        async def table() -> dict[str, Route]:
            return {MODEL: Route(MODEL, "chat", True, workers=(replica,))}

        async def no_key(_: str) -> None:
            return None

        results: dict[str, tuple[list[float], dict[str, int]]] = {}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as http:
            workers = WorkerClient(http)
            for name, greedy, limit in (("alone", 0, 0), ("greedy, off", args.greedy, 0),
                                        ("greedy, on", args.greedy, 1)):
                routing = RoutingTable(table)
                await routing.refresh()
                conn = aioredis.Redis.from_url(redis.url)
                gw = Gateway(pepper="p", keys=KeyCache(no_key),
                             limiter=Limiter(conn, prefix=f"b{uuid.uuid4().hex[:8]}"),
                             usage=UsageRecorder(3600, UsageStore()), routes=routing, workers=workers,
                             upstream=UpstreamClient(), metrics=False)
                if limit:
                    gw.admission = Admission(queue_limit=limit, wait=10, max_waiting=1000, probe=workers.queue_length)
                await generate_for(gw, channel(2), dict(CHAT), "chat")  # warm the worker's caches
                results[name] = await run(gw, args.requests, greedy)
                await gw.limiter.aclose()
                await conn.aclose()
    finally:
        for process in processes:
            stop_process_group(process)
        redis.stop()

    base = p(results["alone"][0], 99)
    print(f"# bench/admission.py — one replica serving one generation at a time (+{args.service:g} s each), "
          f"the small channel: {args.requests} requests in a row; greedy: {args.greedy} in flight")
    print(f"{'run':<14} {'small p50 (s)':>14} {'small p99 (s)':>14} {'p99 / alone':>12}  greedy answered / shed")
    for name, (latencies, outcomes) in results.items():
        print(f"{name:<14} {p(latencies, 50):>14.3f} {p(latencies, 99):>14.3f} {p(latencies, 99) / base:>12.2f}  "
              f"{outcomes['answered']} / {outcomes['shed']}")


if __name__ == "__main__":
    asyncio.run(main())
