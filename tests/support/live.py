"""A real `aigc-admin start` server in a subprocess, with HTTP and graphql-transport-ws client helpers.

Tortoise keeps a process-global connection context, so an in-process app and a second server must not
share one interpreter: the server runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.api import ADMIN_PASSWORD
from tests.support.slapd import free_port

PROTOCOL = "graphql-transport-ws"
RECV_TIMEOUT = 10.0  # a liveness bound for one message, not an assertion about speed
AUDIT_SUBSCRIPTION = "subscription { auditLogAdded { operation operator variables success } }"
LOGIN = ("mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
         "{ token errors { code } } }")
CREATE_ACCOUNT = ("mutation($i: CreateAccountInput!) { createAccount(input: $i) "
                  "{ account { id } errors { code message } } }")


@dataclass
class LiveServer:
    """An `aigc-admin start` child process with its own SQLite storage and Redis key prefix."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/graphql"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def managed_fastchat(**extra: object) -> dict[str, object]:
    """Settings of a platform that runs its own FastChat controller (and openai_api_server) on free ports with
    the engine venv, probing health every second; ``extra`` (dotted names as keyword-safe strings) wins."""
    from tests.support.engine import engine_python

    return {"fastchat.managed": True, "service.fschat.controller.host": f"http://127.0.0.1:{free_port()}",
            "service.local.ai.host": f"http://127.0.0.1:{free_port()}/v1", "engine.python": str(engine_python()),
            "health.interval": 1} | extra


@contextlib.contextmanager
def live_server(storage: Path, redis_url: str, *, startup_timeout: float = 60.0,
                extra: dict[str, object] | None = None, worker: bool = False) -> Iterator[LiveServer]:
    """Start the API in a subprocess (and an RQ worker with the same settings when ``worker``), wait until
    /readyz answers 200, and stop both on exit. ``extra`` maps dotted flags to values."""
    port = free_port()
    log_path = storage / "server.log"
    extra = dict(extra or {})
    workers = extra.pop("server.workers", 1)  # one API process unless a test asks for more
    flags = ["--server.storage.path", str(storage), "--redis.hosts", redis_url,
             "--redis.prefix", f"live{uuid.uuid4().hex[:8]}", "--server.admin.pass", ADMIN_PASSWORD,
             "--server.workers", str(workers)]
    for key, value in extra.items():
        flags += [f"--{key}"] if value is True else [f"--no-{key}"] if value is False else [f"--{key}", str(value)]
    cli = [sys.executable, "-m", "aigc_admin.cli"]
    processes = []
    with log_path.open("wb") as log:
        processes.append(subprocess.Popen([*cli, "start", "-p", f"127.0.0.1:{port}", *flags],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
    if worker:
        with (storage / "worker.log").open("wb") as log:
            processes.append(subprocess.Popen([*cli, "worker", *flags], stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT))
    server = LiveServer(f"http://127.0.0.1:{port}", processes[0], log_path)
    try:
        _wait_ready(server, startup_timeout)
        yield server
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        stop_local_workloads(storage)


def stop_local_workloads(storage: Path) -> None:
    """Workloads of the local runtime outlive `aigc-admin start` by design; a test stops what it started."""
    from aigc_admin.adapters.runtime.local import LocalRuntime

    work_dir = storage / "runtime" / "local"
    owners = {json.loads(p.read_text()).get("owner", "") for p in work_dir.glob("*/state.json")}

    async def stop_all() -> None:
        for owner in owners:
            runtime = LocalRuntime(work_dir=work_dir, owner=owner)
            for handle in await runtime.list_owned():
                await runtime.stop(handle)

    asyncio.run(stop_all())


def _wait_ready(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready within {timeout:.0f}s:\n{server.log_tail()}")


async def http_gql(server: LiveServer, query: str, variables: dict[str, Any] | None = None,
                   token: str | None = None, tenant: object | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        r = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def http_login(server: LiveServer, username: str, password: str) -> str:
    body = await http_gql(server, LOGIN, {"u": username, "p": password})
    assert not body.get("errors") and not body["data"]["login"]["errors"], body
    return str(body["data"]["login"]["token"])


@contextlib.asynccontextmanager
async def ws_session(server: LiveServer, params: dict[str, Any] | None = None) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection that has sent connection_init (the ack is left to the caller)."""
    async with connect(server.ws_url, subprotocols=[PROTOCOL], open_timeout=RECV_TIMEOUT) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": params or {}}))
        yield ws


async def recv(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
    """The next protocol message, answering server pings on the way."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return dict(message)


async def expect_ack(ws: ClientConnection) -> None:
    message = await recv(ws)
    assert message["type"] == "connection_ack", message


async def subscribe(ws: ClientConnection, query: str, op_id: str | None = None) -> str:
    op_id = op_id or uuid.uuid4().hex
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))
    return op_id


async def complete(ws: ClientConnection, op_id: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(json.dumps({"id": op_id, "type": "complete"}))


def error_codes(message: dict[str, Any]) -> list[str | None]:
    """``extensions.code`` of the errors of an ``error`` message or of a ``next`` message carrying errors."""
    payload = message.get("payload")
    errors = payload if isinstance(payload, list) else (payload or {}).get("errors") or []
    return [(e.get("extensions") or {}).get("code") for e in errors]


async def first_error(ws: ClientConnection, op_id: str) -> dict[str, Any]:
    """The first message of operation ``op_id``, which must be an ``error`` message."""
    message = await recv(ws)
    assert message.get("id") == op_id, message
    assert message["type"] == "error", message
    assert error_codes(message), message
    return message


# --- fixtures ---------------------------------------------------------------------------------


class TenantClient:
    """GraphQL over HTTP against a live server as one caller in one tenant, with the helpers the e2e tests share."""

    def __init__(self, server: LiveServer, token: str, tenant: str) -> None:
        self.server, self.token, self.tenant = server, token, tenant

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await http_gql(self.server, query, variables, self.token, tenant=self.tenant)
        assert not body.get("errors"), body
        return dict(body["data"])

    async def upload(self, purpose: str, lines: list[str]) -> str:
        async with httpx.AsyncClient() as h:
            r = await h.post(self.server.base_url + "/files", params={"purpose": purpose, "filename": "d.jsonl"},
                             content="\n".join(lines).encode(),
                             headers={"Authorization": f"Bearer {self.token}", "X-Tenant-Id": self.tenant})
        assert r.status_code in (200, 201), r.text
        return str(r.json()["file"]["id"])

    async def until(self, query: str, check: Any, what: str, timeout: float = 300) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            data = await self.gql(query)
            if check(data):
                return data
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what} did not happen: {data}\n{self.server.log_tail()}")
            await asyncio.sleep(0.3)


def api_processes(parent: int) -> list[psutil.Process]:
    """The live API processes of a `start --server.workers N` (multiprocessing spawns them; a killed one is a
    zombie until its supervisor reaps it)."""
    alive = []
    for p in psutil.Process(parent).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any("spawn_main" in part for part in p.cmdline()):
                alive.append(p)
        except psutil.Error:
            pass
    return alive
