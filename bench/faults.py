"""Faults under load: `aigc-admin start --server.workers 2` on MariaDB and Redis (throwaway servers of its own),
an OpenAI-compatible stub upstream, and a steady stream of /v1 chat requests (CONCURRENCY at a time) on a channel
with a quota — then, one after the other:

1. one API process killed with SIGKILL (its supervisor replaces it);
2. Redis killed, started again 3 s later (empty: nothing is saved);
3. MariaDB killed with SIGKILL, started again 3 s later.

For each it prints the requests that failed from the fault until the service was back, the seconds until requests
were answered again (and, for 1, until the replacement process was up), and the data lost: answered requests
missing from the usage table once it has been flushed (target: 0). No assertions: this is a measurement.

    .venv/bin/python bench/faults.py [--concurrency 8] [--outage 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import mysql_flags  # noqa: E402
from tests.support.asgi_stub import start  # noqa: E402
from tests.support.live import api_processes  # noqa: E402
from tests.support.mariadb import _start_throwaway, create_database  # noqa: E402
from tests.support.redis_server import start_redis  # noqa: E402
from tests.support.slapd import free_port  # noqa: E402
from tests.support.tool_upstream import tool_upstream  # noqa: E402

PASSWORD = "faults-admin-1234"


@dataclass
class Load:
    """Requests sent all along: (sent at, answered at, status; 0 when the connection failed)."""

    key: str
    model: str
    url: str
    results: list[tuple[float, float, int]] = field(default_factory=list)
    stop: bool = False
    paused: bool = False  # while usage is being compared with what was answered
    busy: int = 0

    async def worker(self) -> None:
        async with httpx.AsyncClient() as client:
            while not self.stop:
                if self.paused:
                    await asyncio.sleep(0.05)
                    continue
                self.busy += 1
                sent = time.monotonic()
                try:
                    r = await client.post(self.url + "/v1/chat/completions", timeout=10,
                                          headers={"Authorization": f"Bearer {self.key}"},
                                          json={"model": self.model, "max_tokens": 4,
                                                "messages": [{"role": "user", "content": "hi"}]})
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                self.results.append((sent, time.monotonic(), status))
                self.busy -= 1
                if status != 200:
                    await asyncio.sleep(0.05)

    def answered(self) -> int:
        return sum(1 for *_, s in self.results if s == 200)


def gql(base: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
        tenant: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if tenant:
        headers["X-Tenant-Id"] = tenant
    body = httpx.post(base + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=30).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return dict(body["data"])


async def ready(base: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(base + "/readyz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis and MariaDB stay down")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    redis = start_redis(work / "redis")
    mariadb = _start_throwaway(60)
    database = create_database(mariadb)
    upstream, stub = start(tool_upstream)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flags = ["-p", f"127.0.0.1:{port}", "--server.storage.path", str(work / "storage"), "--server.workers", "2",
             "--redis.hosts", redis.url, "--server.admin.pass", PASSWORD, "--gateway.usage.flush", "0.5",
             "--gateway.routes.refresh", "0.5"]
    for k, v in mysql_flags(mariadb.url(database)).items():
        flags += [f"--{k}", str(v)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    log = (work / "start.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "aigc_admin.cli", "start", *flags],  # noqa: ASYNC220
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    rows: list[tuple[str, int, float, str, int]] = []  # fault, failed, seconds to recover, note, usage lost
    try:
        deadline = time.monotonic() + 120
        while not await ready(base):
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("start did not become ready:\n" + (work / "start.log").read_text()[-3000:])
            await asyncio.sleep(0.2)
        token = gql(base, 'mutation($p: String!) { login(input: {username: "admin", password: $p}) { token } }',
                    {"p": PASSWORD})["login"]["token"]
        tenant = gql(base, 'mutation { createTenant(input: {name: "F", code: "faults"}) { tenant { id } } }',
                     token=token)["createTenant"]["tenant"]["id"]
        model_id = gql(base, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                       {"i": {"name": "stub", "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                       token=token)["createModel"]["model"]["id"]
        created = gql(base, "mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } } }",
                      {"i": {"modelIds": [model_id], "quota": 10**9, "rpmLimit": 10**6}}, token=token,
                      tenant=tenant)["createChannel"]
        channel_id = created["channel"]["id"]
        await asyncio.sleep(1.5)
        load = Load(created["key"], "stub", base)
        workers = [asyncio.create_task(load.worker()) for _ in range(args.concurrency)]

        async def recorded() -> int:
            rows_ = gql(base, "query($c: ID) { channelUsage(channelId: $c) { requests } }", {"c": channel_id},
                        token=token, tenant=tenant)["channelUsage"]
            return sum(r["requests"] for r in rows_)

        async def phase(name: str, inject: Any, healed: Any) -> None:
            await asyncio.sleep(3)  # steady state first
            t0 = time.monotonic()
            extra = await inject()
            back = await healed()
            while True:  # answered again: two seconds with no failure after the fault
                await asyncio.sleep(0.5)
                recent = [r for r in load.results if r[0] > t0]
                last_fail = max((r[1] for r in recent if r[2] != 200), default=t0)
                if time.monotonic() - last_fail > 2 and any(r[2] == 200 and r[0] > last_fail for r in recent):
                    break
            failed = sum(1 for r in load.results if r[0] >= t0 - 1 and r[1] <= last_fail and r[2] != 200)
            rows.append((name, failed, last_fail - t0, extra or f"service back after {back - t0:.1f} s",
                         await settle()))

        lost_so_far = 0

        async def settle() -> int:
            """Pause the load, let the usage flush, and return the answered requests this phase lost from it."""
            nonlocal lost_so_far
            load.paused = True
            while load.busy:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            deadline = time.monotonic() + 15
            seen = await recorded()
            while seen < load.answered() and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                seen = await recorded()
            lost = load.answered() - seen
            phase_lost, lost_so_far = lost - lost_so_far, lost
            load.paused = False
            return phase_lost

        async def kill_api() -> str:
            victim = api_processes(server.pid)[0]
            t = time.monotonic()
            os.kill(victim.pid, signal.SIGKILL)
            while not (len(api_processes(server.pid)) == 2 and victim.pid not in  # noqa: ASYNC110
                       {p.pid for p in api_processes(server.pid)}):
                await asyncio.sleep(0.1)
            return f"replacement process up after {time.monotonic() - t:.1f} s"

        async def now() -> float:
            return time.monotonic()

        async def kill_redis() -> None:
            redis.process.kill()
            redis.process.wait()

        async def redis_back() -> float:
            await asyncio.sleep(args.outage)
            redis.restart()
            return time.monotonic()

        async def kill_mariadb() -> None:
            assert mariadb.process is not None
            mariadb.process.kill()
            mariadb.process.wait()

        async def mariadb_back() -> float:
            await asyncio.sleep(args.outage)
            assert mariadb.process is not None
            with (work / "mariadbd-2.log").open("wb") as out:
                mariadb.process = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                    mariadb.process.args, stdout=out, stderr=subprocess.STDOUT)
            while not await ready(base):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            return time.monotonic()

        for name, inject, healed in (("API process SIGKILL", kill_api, now),
                                     (f"Redis down {args.outage:g} s", kill_redis, redis_back),
                                     (f"MariaDB SIGKILL, down {args.outage:g} s", kill_mariadb, mariadb_back)):
            await phase(name, inject, healed)
            print(f"  {name}: done", file=sys.stderr)
        load.stop = True
        await asyncio.gather(*workers)
        answered = load.answered()
        deadline = time.monotonic() + 20
        seen = await recorded()
        while seen != answered and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            seen = await recorded()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        stub.should_exit = True
        redis.stop()
        mariadb.stop()

    print(f"# bench/faults.py — {platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{args.concurrency} clients, 2 API processes, MariaDB + Redis")
    print(f"{'fault':<34} {'failed':>7} {'recovered (s)':>14} {'usage lost':>11}  note")
    for name, failed, recovered, note, lost in rows:
        print(f"{name:<34} {failed:>7} {recovered:>14.1f} {lost:>11}  {note}")
    print(f"requests answered {answered}, in the usage table {seen}: data lost {answered - seen} "
          f"(target 0)")


if __name__ == "__main__":
    asyncio.run(main())
