"""Live fineTuneLogs subscriptions: one Redis subscription per job, one execution per event, no per-subscriber
GraphQL pipeline kept alive (docs/performance.md, fine-tuning logs: ≤ 30 MB per 1,000 subscriptions).

The API runs in this process under a real uvicorn (so that the objects it keeps per subscription can be
counted) and the clients are real graphql-transport-ws WebSockets. Nothing here measures time or bytes:
it counts what grows per subscriber, which is what made memory and CPU grow before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from graphql.execution import Executor
from websockets.asyncio.client import ClientConnection, connect

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.events import FineTuneLogPublisher
from aigc_admin.adapters.net import free_port
from aigc_admin.domain.events import finetune as finetune_topic
from aigc_admin.domain.finetunes.service import JobStatus, LogLine
from aigc_admin.web import graphql_ws as live
from tests.support.api import ApiHarness
from tests.support.redis_server import RedisServer

SUBSCRIBERS = 12
LOGS = "subscription($j: ID!) { fineTuneLogs(jobId: $j) { status lines { seq line } } }"


@pytest.fixture(scope="module")
async def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory,
                 ) -> AsyncIterator[tuple[ApiHarness, str]]:
    storage: Path = tmp_path_factory.mktemp("fanout")
    async with ApiHarness.running(storage=storage, redis_url=redis_server.url) as harness:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(harness.app, host="127.0.0.1", port=port, lifespan="off",
                                               log_config=None, ws_per_message_deflate=False))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        try:
            yield harness, f"ws://127.0.0.1:{port}/graphql"
        finally:
            server.should_exit = True
            await task


async def _job(stored_lines: int) -> tuple[int, int]:
    code = uuid.uuid4().hex[:8]
    tenant = await m.Tenant.create(name=f"fanout {code}", code=code, public_tenant_id=code)
    job = await m.FineTuningTrainJob.create(job_id=f"ftjob-{uuid.uuid4().hex[:12]}", tenant_id=tenant.id,
                                            base_model="tiny", train_status="RUNNING", log_cursor=stored_lines,
                                            runtime_handle="")
    for seq in range(1, stored_lines + 1):
        await m.FineTuningLog.create(job_id=job.id, seq=seq, line=f"stored {seq}")
    return tenant.id, job.id


@contextlib.asynccontextmanager
async def _subscriber(url: str, token: str, tenant: int, job: int) -> AsyncIterator[ClientConnection]:
    async with connect(url, subprotocols=["graphql-transport-ws"], compression=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}", "X-Tenant-Id": str(tenant)}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "logs", "type": "subscribe",
                                  "payload": {"query": LOGS, "variables": {"j": str(job)}}}))
        yield ws


async def _lines_until(ws: ClientConnection, last_seq: int) -> list[int]:
    seqs: list[int] = []
    while not seqs or seqs[-1] < last_seq:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "next" and message["id"] == "logs", message
        assert "errors" not in message["payload"], message
        seqs += [x["seq"] for x in message["payload"]["data"]["fineTuneLogs"]["lines"]]
    return seqs


async def _until(predicate: Any) -> None:
    for _ in range(250):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in 5 s")


def _server_tasks() -> int:
    """Tasks of this process but the WebSocket clients' own."""
    return sum(1 for t in asyncio.all_tasks()
               if "/websockets/asyncio/" not in getattr(t.get_coro(), "cr_code", _alive.__code__).co_filename)


def _alive(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


async def test_subscribers_of_a_job_share_the_redis_subscription_and_each_event_is_executed_once(
        served: tuple[ApiHarness, str]) -> None:
    harness, url = served
    tenant, job = await _job(stored_lines=3)
    services = harness.services()
    hub = services.events
    topic = finetune_topic(job)
    executors_before = _alive(Executor)
    tasks_before = _server_tasks()
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(_subscriber(url, harness.admin_token, tenant, job))
                   for _ in range(SUBSCRIBERS)]
        for ws in sockets:  # each replays the stored lines, then goes live
            assert await _lines_until(ws, 3) == [1, 2, 3]
        await _until(lambda: hub.local_subscribers(topic) == SUBSCRIBERS)

        # one Redis subscription for the job, however many local subscribers
        channel = f"{harness.settings.redis_prefix}:events:{topic}"
        numsub = dict(await services.events._r.pubsub_numsub(channel))
        assert numsub[channel.encode()] == 1

        # the live part keeps no per-subscriber GraphQL pipeline: one executor per group of identical
        # subscriptions, one task per subscription on top of uvicorn's connection task
        await asyncio.sleep(0.1)  # let strawberry's per-operation pipelines unwind after the hand-off
        assert _alive(Executor) - executors_before == 1
        assert live.live_groups() == 1
        assert _server_tasks() - tasks_before <= 2 * SUBSCRIBERS + 1  # + the hub's reader, started on demand

        group = next(iter(live._groups.values()))
        executions = group.executions
        publisher = FineTuneLogPublisher(services.finetunes.events._pub)
        for first in (4, 6, 8):
            await publisher.lines(job, [LogLine(first, f"live {first}"), LogLine(first + 1, f"live {first + 1}")],
                                  JobStatus.RUNNING)
        for ws in sockets:
            assert await _lines_until(ws, 9) == [4, 5, 6, 7, 8, 9]
        assert group.executions - executions == 3  # once per event, not once per subscriber

        # the end of the job ends every subscription with complete
        await publisher.lines(job, [], JobStatus.SUCCEEDED)
        for ws in sockets:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["payload"]["data"]["fineTuneLogs"] == {"status": "SUCCEEDED", "lines": []}
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"id": "logs", "type": "complete"}
    await _until(lambda: hub.local_subscribers(topic) == 0)


async def test_complete_from_the_client_ends_a_relayed_subscription(served: tuple[ApiHarness, str]) -> None:
    harness, url = served
    tenant, job = await _job(stored_lines=1)
    hub = harness.services().events
    async with _subscriber(url, harness.admin_token, tenant, job) as ws:
        assert await _lines_until(ws, 1) == [1]
        await _until(lambda: hub.local_subscribers(finetune_topic(job)) == 1)
        await ws.send(json.dumps({"id": "logs", "type": "complete"}))
        await _until(lambda: hub.local_subscribers(finetune_topic(job)) == 0)
        # the connection stays usable
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
