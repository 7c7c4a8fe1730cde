"""The fault suite: two API processes (`start --server.workers 2`), two workers and two schedulers on a MariaDB and a
Redis of their own, with the managed FastChat controller and the tiny model deployed on the local runtime, a LoRA
fine-tune running and a client following its log; gateway load from eight clients on two channels (one with a quota
that runs out during the run) — and one fault after another: Redis restarted empty; the API process serving the log
client killed with SIGKILL; a worker killed in the middle of a deploy job, and a scheduler; the FastChat controller
killed; MariaDB killed and started again. Afterwards: every answered request's usage is in the usage table and none
twice, the small quota was never overspent, the periodic jobs due meanwhile were each enqueued once and run once by
the surviving worker, the schedulers registered their periodic task again after Redis lost it, the log client saw
every line of the job once although it had to subscribe again, the controller was back with the workers registered
within 10 s, both deployments are RUNNING and answer through the gateway, and requests, GraphQL and /readyz
answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from rq import Worker
from websockets.exceptions import WebSocketException

from aigc_admin.adapters.fastchat.controller import FastChatController
from aigc_admin.adapters.queue import JobQueue
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.settings import Settings, load_settings
from aigc_admin.workers.periodic import PlatformScheduler, registered
from tests.conftest import mysql_flags
from tests.e2e.test_deploy_local import group_members
from tests.e2e.test_finetune_loop import CHAT
from tests.support.asgi_stub import serving
from tests.support.engine import tiny_model_path
from tests.support.live import (
    LiveServer,
    api_processes,
    managed_fastchat,
    recv,
    stop_local_workloads,
    subscribe,
    ws_session,
)
from tests.support.mariadb import MariaDB, _start_throwaway, create_database
from tests.support.redis_server import RedisServer, start_redis
from tests.support.tool_upstream import tool_upstream

pytestmark = pytest.mark.mysql
PASSWORD = "fault-suite-1234"
TOKENS = 11  # the stub's usage for one request: 7 prompt + 4 completion
SMALL_QUOTA = 300 * TOKENS
RUNNER = "aigc_admin.workers.runner.run"


@dataclass
class Cluster:
    base: str
    settings: Settings
    redis: RedisServer
    mariadb: MariaDB
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    schedulers: list[subprocess.Popen[bytes]]
    work: Path
    controller_url: str

    @property
    def server(self) -> LiveServer:
        return LiveServer(self.base, self.api, self.work / "api.log")

    def workload_pids(self, name: str) -> list[int]:
        """The processes a local workload's replicas run (below their shells)."""
        state = self.work / "storage" / "runtime" / "local" / name / "state.json"
        shells = [r["pid"] for r in json.loads(state.read_text())["replicas"]]
        return [p for shell in shells for p in group_members(shell) if p not in shells]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "aigc_admin.cli", *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("faults")
    redis = start_redis(work / "redis")
    mariadb = _start_throwaway(60)
    fastchat = managed_fastchat(**{"engine.start.timeout": 120, "finetune.interval": 0.5})
    settings = load_settings({
        "server.storage.path": str(work / "storage"), "redis.hosts": redis.url, "redis.prefix": "faults",
        "server.admin.pass": PASSWORD, "gateway.usage.flush": 0.5, "gateway.routes.refresh": 0.5,
        **fastchat, **mysql_flags(mariadb.url(create_database(mariadb)))}, environ={})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}, **settings.to_env()}
    port = _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        api = spawn(["start", "-p", f"127.0.0.1:{port}", "--server.workers", "2"], env, work / "api.log")
        processes.append(api)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while not _ready(base):
            assert time.monotonic() < deadline and api.poll() is None, (work / "api.log").read_text()[-3000:]
            time.sleep(0.2)
        workers = [spawn(["worker"], env, work / f"worker-{i}.log") for i in range(2)]
        schedulers = [spawn(["cronjob", "start", "audit.retention", "deployments.reconcile"], env,
                            work / f"scheduler-{i}.log") for i in range(2)]
        processes += workers + schedulers
        yield Cluster(base, settings, redis, mariadb, api, workers, schedulers, work,
                      str(fastchat["service.fschat.controller.host"]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        stop_local_workloads(work / "storage")  # the model workers, the controller, the training: they outlive `start`
        redis.stop()
        mariadb.stop()


def _free_port() -> int:
    from tests.support.slapd import free_port
    return free_port()


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def gql(c: Cluster, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
        tenant: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if tenant:
        headers["X-Tenant-Id"] = tenant
    body = httpx.post(c.base + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=30).json()
    assert not body.get("errors"), body
    return dict(body["data"])


@dataclass
class Load:
    """Clients sending chat requests on one channel until stopped: each answer's status (0: no answer)."""

    url: str
    key: str
    statuses: list[int] = field(default_factory=list)
    stop: bool = False

    async def client(self) -> None:
        async with httpx.AsyncClient() as http:
            while not self.stop:
                try:
                    r = await http.post(self.url + "/v1/chat/completions", timeout=10,
                                        headers={"Authorization": f"Bearer {self.key}"},
                                        json={"model": "stub", "max_tokens": 4,
                                              "messages": [{"role": "user", "content": "hi"}]})
                    self.statuses.append(r.status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
                if self.statuses[-1] != 200:
                    await asyncio.sleep(0.05)


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class LogFollower:
    """A client of a training job's log that subscribes again from the last line it saw whenever its connection
    or its subscription breaks, as a UI does: the lines it saw (in order), how often it had to subscribe again,
    and the local port of its current connection (to find the API process serving it)."""

    server: LiveServer
    params: dict[str, str]
    job_id: str
    seen: list[int] = field(default_factory=list)
    resubscribed: int = 0
    port: int | None = None
    done: bool = False

    async def run(self) -> None:
        while not self.done:
            try:
                await self._follow()
            except (WebSocketException, OSError, TimeoutError):
                pass  # the API process died, Redis or MariaDB is away: subscribe again from the cursor
            if not self.done:
                self.port = None
                self.resubscribed += 1
                await asyncio.sleep(0.5)

    async def _follow(self) -> None:
        async with ws_session(self.server, self.params) as ws:
            if (await recv(ws))["type"] != "connection_ack":
                return
            self.port = ws.local_address[1]
            after = self.seen[-1] if self.seen else 0
            op = await subscribe(ws, f'subscription {{ fineTuneLogs(jobId: "{self.job_id}", after: {after}) '
                                     "{ status lines { seq } } }")
            status = ""
            while True:
                message = await recv(ws, timeout=120)
                if message.get("id") != op:
                    continue
                if message["type"] == "complete":
                    self.done = status in FINISHED
                    return
                if message["type"] != "next" or message["payload"].get("errors"):
                    return
                batch = message["payload"]["data"]["fineTuneLogs"]
                status = batch["status"]
                self.seen += [line["seq"] for line in batch["lines"]]


def serving_process(c: Cluster, port: int) -> psutil.Process:
    """The API process holding the other end of a client's connection from ``port``."""
    for process in api_processes(c.api.pid):
        if any(conn.raddr and conn.raddr.port == port for conn in process.net_connections(kind="tcp")):
            return process
    raise AssertionError(f"no API process serves the connection from port {port}")


async def test_faults_one_after_another_lose_nothing(cluster: Cluster) -> None:
    c = cluster
    token = gql(c, 'mutation($p: String!) { login(input: {username: "admin", password: $p}) { token } }',
                {"p": PASSWORD})["login"]["token"]
    tenant = gql(c, 'mutation { createTenant(input: {name: "F", code: "faults"}) { tenant { id } } }',
                 token=token)["createTenant"]["tenant"]["id"]

    def deployment(deployment_id: str) -> dict[str, Any]:
        return dict(gql(c, "query($i: ID!) { deployment(id: $i) { status reason workerAddresses } }",
                        {"i": deployment_id}, token=token, tenant=tenant)["deployment"])

    def deploy(model_id: str) -> str:
        made = gql(c, "mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } "
                      "errors { message } } }", {"i": {"modelId": model_id}}, token=token, tenant=tenant)
        assert made["deployModel"]["deployment"], made
        return str(made["deployModel"]["deployment"]["id"])

    def tiny(name: str) -> str:
        return str(gql(c, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                       {"i": {"name": name, "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                       token=token)["createModel"]["model"]["id"])

    # the tiny model deployed (FastChat model_worker behind the managed controller), a LoRA fine-tune running
    tiny_ids = {name: tiny(name) for name in ("tiny-a", "tiny-b")}
    first = deploy(tiny_ids["tiny-a"])
    await until(lambda: deployment(first)["status"] in ("RUNNING", "FAILED"), 150, "tiny-a did not start")
    assert deployment(first)["status"] == "RUNNING", deployment(first)
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}
    upload = httpx.post(c.base + "/files", params={"purpose": "fine-tune", "filename": "t.jsonl"}, headers=headers,
                        content="\n".join(json.dumps(x) for x in CHAT * 5).encode(), timeout=30).json()
    job_id = gql(c, "mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) { job { id } } }",
                 {"i": {"baseModelId": tiny_ids["tiny-a"], "fileId": upload["file"]["id"], "epochs": 100,
                        "trainBatchSize": 1, "modelMaxLength": 128, "lora": True}},
                 token=token, tenant=tenant)["createFineTuningJob"]["job"]["id"]
    follower = LogFollower(c.server, headers, job_id)
    following = asyncio.create_task(follower.run())
    await until(lambda: len(follower.seen) >= 3 and follower.port, 120, "the training log did not start")

    with serving(tool_upstream) as upstream:
        model = gql(c, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                    {"i": {"name": "stub", "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                    token=token)["createModel"]["model"]["id"]
        channels = {}
        for name, quota, models in (("big", 10**9, [model]), ("small", SMALL_QUOTA, [model]),
                                    ("tiny", 10**9, list(tiny_ids.values()))):
            made = gql(c, "mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } } }",
                       {"i": {"modelIds": models, "quota": quota, "alias": name}}, token=token,
                       tenant=tenant)["createChannel"]
            channels[name] = (made["key"], made["channel"]["id"])
        await asyncio.sleep(1.5)  # both API processes route the new model
        big, small = Load(c.base, channels["big"][0]), Load(c.base, channels["small"][0])
        clients = [asyncio.create_task(load.client()) for load in (big,) * 6 + (small,) * 2]

        marker = c.work / "ran"
        due = [f"due-{i}" for i in range(6)]
        endpoint = RedisEndpoint.open(c.settings)
        scheduler = PlatformScheduler(endpoint)
        jobs = JobQueue(endpoint)
        queue = jobs.queue("default")
        try:
            # both workers and both schedulers are up before the first fault
            await until(lambda: len(Worker.all(queue=queue)) == 2 and len(scheduler.connection.keys(
                f"{scheduler.redis_scheduler_namespace_prefix}*")) == 2, 60, "workers or schedulers did not start")
            await asyncio.sleep(1)
            c.redis.process.kill()  # 1. Redis, back empty after 2 s
            c.redis.process.wait()
            await asyncio.sleep(2)
            c.redis.restart()
            await until(lambda: _ready(c.base), 20, "/readyz not back after Redis")
            # the schedulers survived and registered their periodic task again (Redis lost it)
            await until(lambda: "periodic:audit.retention" in registered(scheduler), 20,
                        "the periodic task was not registered again after Redis lost it")
            # one-off jobs due while the next faults happen: each must be enqueued once and run once
            now = datetime.now(UTC)
            for i, name in enumerate(due):
                scheduler.enqueue_at(now + timedelta(seconds=2 + 2 * i), RUNNER, "tests.support.slow_job:record",
                                     marker=str(marker), name=name)
            await asyncio.sleep(1)
            await until(lambda: follower.port, 30, "the log client did not subscribe again after Redis")
            assert follower.port is not None
            victim = serving_process(c, follower.port)
            os.kill(victim.pid, signal.SIGKILL)  # 2. the API process serving the log client
            await until(lambda: len(up := {p.pid for p in api_processes(c.api.pid)}) == 2 and victim.pid not in up,
                        20, "no replacement API process")

            # 3. a worker in the middle of a deploy job (the job waits for the model worker to register)
            second = deploy(tiny_ids["tiny-b"])
            await until(lambda: deployment(second)["status"] == "STARTING", 60, "nobody took the deploy job")
            job = jobs.fetch(f"deploy:{second}")
            assert job is not None and job.worker_name, "the deploy job names no worker"
            killed_worker = next(w for w in c.workers if w.pid == int(job.worker_name.rsplit(".", 2)[1]))
            os.killpg(killed_worker.pid, signal.SIGKILL)  # the worker and its work horse
            worker_killed = time.monotonic()
            assert jobs.status(f"deploy:{second}") == "started"  # killed mid-job
            c.schedulers[0].send_signal(signal.SIGKILL)  # 4. a scheduler, maybe holding the lock
            await asyncio.sleep(3)

            # 5. the FastChat controller: back, with the live workers registered again, within 10 s
            controller = next(p for p in c.workload_pids("fastchat-controller")
                              if "fastchat.serve.controller" in psutil.Process(p).cmdline())
            killed = time.monotonic()
            os.kill(controller, signal.SIGKILL)
            async with FastChatController(c.controller_url) as fastchat:
                while not (await fastchat.alive() and "tiny-a" in await fastchat.list_models()):
                    assert time.monotonic() - killed < 10, "the controller was not back with tiny-a within 10 s"
                    await asyncio.sleep(0.2)
            print(f"\ncontroller kill -9 → back with the worker registered in {time.monotonic() - killed:.1f} s")

            assert c.mariadb.process is not None
            args = c.mariadb.process.args
            c.mariadb.process.kill()  # 6. MariaDB, back after 2 s
            c.mariadb.process.wait()
            await asyncio.sleep(2)
            with (c.work / "mariadbd-2.log").open("wb") as out:
                c.mariadb.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
            await until(lambda: _ready(c.base), 60, "/readyz not back after MariaDB")
            await asyncio.sleep(3)  # requests answered again
        finally:
            big.stop = small.stop = True
            await asyncio.gather(*clients)
            scheduler.connection.close()

        # the last requests were answered: the service recovered from everything
        assert big.statuses[-10:] == [200] * 10, big.statuses[-30:]
        assert set(small.statuses) <= {0, 200, 429, 503}, Counter(small.statuses)

        def usage(channel: str) -> tuple[int, int]:
            rows = gql(c, "query($c: ID) { channelUsage(channelId: $c) { requests promptTokens completionTokens } }",
                       {"c": channels[channel][1]}, token=token, tenant=tenant)["channelUsage"]
            return sum(r["requests"] for r in rows), sum(r["promptTokens"] + r["completionTokens"] for r in rows)

        for load, name in ((big, "big"), (small, "small")):
            answered, cut = load.statuses.count(200), load.statuses.count(0)
            deadline = time.monotonic() + 20
            while usage(name)[0] < answered and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            requests, tokens = usage(name)
            # every answered request's usage is there; a request cut off by a kill may be counted too, none twice
            assert answered <= requests <= answered + cut, (name, answered, cut, requests)
            assert tokens == requests * TOKENS
        used = gql(c, "query($c: ID!) { channel(id: $c) { usedTokens } }", {"c": channels["small"][1]},
                   token=token, tenant=tenant)["channel"]["usedTokens"]
        assert small.statuses.count(429) > 0, "the small quota was never reached: the run proves nothing about it"
        assert used <= SMALL_QUOTA and usage("small")[1] <= SMALL_QUOTA  # never overspent

    # each due job was enqueued once (one scheduler died, maybe holding the lock) and run once (one worker died)
    await until(lambda: marker.exists() and len(marker.read_text().split()) >= len(due), 60,
                f"not all periodic jobs ran: {marker.read_text().split() if marker.exists() else []}")
    await asyncio.sleep(2)
    assert Counter(marker.read_text().split()) == dict.fromkeys(due, 1)
    survivor = next(w for w in c.workers if w is not killed_worker)
    assert survivor.poll() is None and c.schedulers[1].poll() is None  # the survivors are still there

    # every deployment at its desired state: the one whose deploy job died with its worker too (the job counts as
    # abandoned 60 s after its last heart beat, the reconciler enqueues it again, the other worker runs it)
    await until(lambda: deployment(second)["status"] in ("RUNNING", "FAILED"), 200, "tiny-b never started")
    print(f"tiny-b RUNNING {time.monotonic() - worker_killed:.0f} s after its deploy job's worker was killed")
    for deployment_id in (first, second):
        assert deployment(deployment_id)["status"] == "RUNNING", deployment(deployment_id)
    await asyncio.sleep(1)  # the gateway's next routing refresh
    for name in tiny_ids:
        chat = httpx.post(c.base + "/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {channels['tiny'][0]}"},
                          json={"model": name, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] > 0, (name, chat.text)

    # the log client: every line of the job once, in order, though it had to subscribe again
    gql(c, f'mutation {{ cancelFineTuningJob(id: "{job_id}") {{ job {{ status }} }} }}', token=token, tenant=tenant)
    await asyncio.wait_for(following, 60)
    cursor = gql(c, f'{{ fineTuningJob(id: "{job_id}") {{ logCursor }} }}', token=token,
                 tenant=tenant)["fineTuningJob"]["logCursor"]
    assert follower.resubscribed >= 1
    assert follower.seen == list(range(1, cursor + 1)), (follower.resubscribed, len(follower.seen), cursor)
    print(f"the log client subscribed {follower.resubscribed + 1} times and saw {cursor} lines, none twice")
