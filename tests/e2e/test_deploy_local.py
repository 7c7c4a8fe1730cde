"""Deploy the tiny model on the local runtime, end to end through GraphQL, with a real FastChat controller
(managed by the platform) and model_worker; watch it live; kill it; undeploy it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aigc_admin.adapters.fastchat.controller import FastChatController
from tests.support.api import unique
from tests.support.engine import tiny_model_path
from tests.support.live import (
    ADMIN_PASSWORD,
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
from tests.support.redis_server import RedisServer

DEPLOY = ("mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id status replicas } "
          "errors { field code message } } }")
STATUS_FIELDS = "id status reason workerAddresses"


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    extra = managed_fastchat(**{"engine.start.timeout": 120})
    with live_server(tmp_path_factory.mktemp("deploy"), redis_server.url, extra=extra, worker=True) as server:
        yield server, str(extra["service.fschat.controller.host"])


def group_members(pgid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


async def next_status(ws, op_id: str, timeout: float) -> dict:  # type: ignore[no-untyped-def]
    message = await recv(ws, timeout=timeout)
    while message.get("id") != op_id:  # a late message of a completed feed
        message = await recv(ws, timeout=timeout)
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    return dict(message["payload"]["data"]["deploymentStatusChanged"])


async def test_deploy_watch_kill_and_undeploy(platform: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, controller_url = platform
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, "mutation($c: String!) { createTenant(input: {name: \"T\", code: $c}) "
                             "{ tenant { id } } }", {"c": unique("dep")}, token)
    tenant = created["data"]["createTenant"]["tenant"]["id"]
    name = unique("tiny")
    model = await http_gql(server, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } "
                           "errors { code message } } }",
                           {"i": {"name": name, "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}}, token)
    model_id = model["data"]["createModel"]["model"]["id"]

    started = time.monotonic()
    body = await http_gql(server, DEPLOY, {"i": {"modelId": model_id}}, token, tenant=tenant)
    deployment = body["data"]["deployModel"]["deployment"]
    assert deployment["status"] == "PENDING", body
    again = await http_gql(server, DEPLOY, {"i": {"modelId": model_id}}, token, tenant=tenant)
    assert again["data"]["deployModel"]["errors"][0]["code"] == "ALREADY_DEPLOYED"

    async with ws_session(server, {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}) as ws:
        await expect_ack(ws)
        op = await subscribe(ws, f'subscription {{ deploymentStatusChanged(id: "{deployment["id"]}") '
                                 f"{{ {STATUS_FIELDS} }} }}")
        seen = []
        while not seen or seen[-1]["status"] not in ("RUNNING", "FAILED"):
            seen.append(await next_status(ws, op, timeout=150))
        statuses = [s["status"] for s in seen]
        assert statuses[-1] == "RUNNING", seen
        assert "STARTING" in statuses or statuses[0] == "RUNNING", statuses
        print(f"\ndeploy → RUNNING in {time.monotonic() - started:.1f} s; statuses seen: {statuses}")

        # the tenant-wide feeds: health probes of the tenant's workers, status changes of all its deployments
        health_op = await subscribe(ws, "subscription { fastchatHealth { controllerAlive workers { workerAddress "
                                        "healthy queueLength } } }")
        tenant_op = await subscribe(ws, "subscription { deploymentsStatusChanged { id status } }")
        while True:
            message = await recv(ws, timeout=15)
            if message.get("id") == health_op:
                health = message["payload"]["data"]["fastchatHealth"]
                if health["workers"]:
                    break
        assert health["controllerAlive"] is True
        assert health["workers"][0]["workerAddress"] == seen[-1]["workerAddresses"][0]
        assert health["workers"][0]["healthy"] is True
        await complete(ws, health_op)

        async with FastChatController(controller_url) as controller:
            assert name in await controller.list_models()
            worker = seen[-1]["workerAddresses"][0]
            status = await controller.worker_status(worker)
            assert status is not None and name in status.model_names

        # the managed openai_api_server serves the model too
        api_url = await managed_api_url(server)
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{api_url}/models", timeout=10)).json()
        assert name in [m["id"] for m in listed["data"]]

        # kill -9 of the managed controller: restarted by the health monitor, the live worker registered again
        # at once (not at its next heart beat, 45 s later); the bound is 10 s
        runtime_dir = Path(server.log_path.parent, "runtime", "local")
        controller_shell = json.loads((runtime_dir / "fastchat-controller" / "state.json").read_text())
        controller_pid = next(p for p in group_members(controller_shell["replicas"][0]["pid"])
                              if p != controller_shell["replicas"][0]["pid"])
        killed = time.monotonic()
        os.kill(controller_pid, signal.SIGKILL)
        async with FastChatController(controller_url) as controller:
            while time.monotonic() - killed < 10:
                if await controller.alive() and name in await controller.list_models():
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("the controller was not back with the worker registered within 10 s")
            print(f"controller kill -9 → back with the worker registered in {time.monotonic() - killed:.1f} s")
            # what openai_api_server asks before each request
            assert await controller.get_worker_address(name) == seen[-1]["workerAddresses"][0]

        scale = await http_gql(server, f'mutation {{ scaleDeployment(input: {{id: "{deployment["id"]}", replicas: 2}})'
                                       " { deployment { status replicas } errors { code } } }", None, token,
                               tenant=tenant)
        assert scale["data"]["scaleDeployment"]["deployment"]["replicas"] == 2, scale
        tenant_feed = []
        while True:
            message = await recv(ws, timeout=150)
            if message.get("id") == tenant_op:
                tenant_feed.append(message["payload"]["data"]["deploymentsStatusChanged"]["status"])
                continue
            assert message.get("id") == op, message
            update = message["payload"]["data"]["deploymentStatusChanged"]
            if update["status"] == "RUNNING":
                break
            assert update["status"] in ("PENDING", "STARTING"), update
        assert len(set(update["workerAddresses"])) == 2
        assert "PENDING" in tenant_feed  # the tenant-wide feed saw the redeploy too
        await complete(ws, tenant_op)

        state_file = runtime_dir / f"aigc-deploy-{deployment['id']}" / "state.json"
        shells = [r["pid"] for r in json.loads(state_file.read_text())["replicas"]]
        engine = next(p for p in group_members(shells[0]) if p != shells[0])
        killed = time.monotonic()
        os.kill(engine, signal.SIGKILL)
        # The bound: a killed worker is seen as DEGRADED/FAILED by the subscription within 10 s.
        update = await next_status(ws, op, timeout=10)
        assert update["status"] == "DEGRADED", update  # one of two replicas still answers
        print(f"kill -9 of 1 of 2 replicas → {update['status']} in {time.monotonic() - killed:.1f} s "
              f"({update['reason']})")
        # the local runtime starts that replica again (only it, on its port), as Docker and Kubernetes would
        addresses = set(update["workerAddresses"])
        while (update := await next_status(ws, op, timeout=60))["status"] != "RUNNING":
            assert update["status"] == "DEGRADED", update
        assert set(update["workerAddresses"]) == addresses
        shells = [r["pid"] for r in json.loads(state_file.read_text())["replicas"]]
        assert all(group_members(shell) for shell in shells)
        print(f"… and RUNNING again {time.monotonic() - killed:.1f} s after the kill")

        logs = await http_gql(server, f'{{ deploymentLogs(id: "{deployment["id"]}") {{ lines cursor }} }}', None,
                              token, tenant=tenant)
        assert logs["data"]["deploymentLogs"]["cursor"] > 0

        undeploy = await http_gql(server, f'mutation {{ undeployModel(id: "{deployment["id"]}") '
                                          "{ deployment { status } errors { code } } }", None, token, tenant=tenant)
        assert undeploy["data"]["undeployModel"]["deployment"]["status"] == "STOPPING"
        while (update := await next_status(ws, op, timeout=30))["status"] != "STOPPED":
            assert update["status"] in ("STOPPING", "FAILED", "DEGRADED"), update
        await complete(ws, op)
    assert all(group_members(shell) == [] for shell in shells), "processes left behind after undeploy"



async def managed_api_url(server: LiveServer) -> str:
    """The managed openai_api_server's base URL, once it answers."""
    import asyncio

    state = Path(server.log_path.parent, "runtime", "local", "fastchat-api", "state.json")
    for _ in range(200):
        if state.exists():
            argv = json.loads(state.read_text())["spec"]["command"]
            url = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}/v1"
            try:
                async with httpx.AsyncClient() as client:
                    if (await client.get(f"{url}/models", timeout=2)).status_code == 200:
                        return url
            except httpx.TransportError:
                pass
        await asyncio.sleep(0.1)
    raise AssertionError("the managed openai_api_server did not come up")
