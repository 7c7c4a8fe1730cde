"""Assistants: the agent's own overhead, the egress guard's added latency, and concurrent playground runs.

Each measurement is compared with a baseline taken in the same run, and printed side by side with the ratio:

1. **agent overhead per step** (target ≤ 2 ms)
   - *loop alone*: the real ``Agent`` (NATIVE mode) with a model-calls stand-in and a tool runner that answer at
     once in this process, so the time is the loop's own (building bodies, gathering streamed tool calls,
     checking arguments against the schema, events, history). Each run is 3 steps (tool call → result → tool
     call → result → answer); reported as µs per step (run time / 3), p50 and p99 over runs.
   - *through the platform*: the real ``AssistantRunner`` of an in-process app (``GatewayModelCalls``: key cache,
     Redis limiter, routing, the upstream over HTTP, usage; the tool over HTTP through the egress guard; the run
     stored in SQLite) against the scripted upstream (``tests/support/tool_upstream.py``) and the tool server
     (``tests/support/tool_server.py``). Each run is 2 steps (tool call, answer). The baseline is the same three
     requests (stream, GET, stream) sent straight with a plain httpx client, interleaved with the runs; the
     overhead per step is (runner − direct) / 2, paired per iteration.
2. **egress guard's added latency** (target ≤ 1 ms per call): the same GET to the tool server, sequential after a
   warm-up, in interleaved rounds, with a plain ``httpx.AsyncClient``, with ``guarded_client`` (policy
   ``egress.allow.networks=127.0.0.1/32``) and with ``NetworkToolTransport.call_http`` (which also builds the
   request from the tool's spec, reads the capped body and extracts ``/data``); plus the same pair addressing the
   host by name (``localhost``), where the guard resolves the name on every call.
3. **concurrent playground runs**: the platform as ``aigc-admin start`` (private redis-server, SQLite,
   ``egress.allow.networks=127.0.0.1/32``), tenant/model/channel/tool/assistant set up via GraphQL, then N
   ``assistantRun`` subscriptions opened at once, one graphql-transport-ws connection each, every run asking
   ``call weather {"city": "c<i>"}``. Every run must end with a ``final`` event (stopReason completed) whose
   content names its own city, and ``assistantRuns`` must hold N completed runs; lost = N − completed. The
   baseline is the same N runs' requests sent concurrently straight to the upstream and the tool.

Verdicts: the loop alone on its p99; the platform line on the p50 of the paired differences (their p99 carries the
noise of two HTTP paths on a shared machine); egress on the added p50 and the added mean. "CPU ms/run" is the CPU
time (``/proc``) of the ``aigc-admin`` process, and of this bench client, during the timed part of measurement 3.

The upstream and the tool server are one stub process of their own (uvicorn, uvloop, no access log), so neither the
platform nor the bench client shares an interpreter (and its GIL) with them.

    .venv/bin/python bench/assistants.py --quick   # smaller counts (50 concurrent runs, 300 egress calls): < ~1 min
    .venv/bin/python bench/assistants.py           # 200 concurrent runs, 2,000 egress calls

Needs redis-server. Numbers are for ratios on the same machine (the load generator shares its cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as host
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.api import ADMIN_PASSWORD, ApiHarness, unique  # noqa: E402
from tests.support.live import LiveServer, expect_ack, http_gql, http_login, live_server, recv, ws_session  # noqa: E402
from tests.support.redis_server import start_redis  # noqa: E402
from tests.support.slapd import free_port  # noqa: E402

from aigc_admin.adapters.egress import guarded_client  # noqa: E402
from aigc_admin.adapters.tool_transport import NetworkToolTransport  # noqa: E402
from aigc_admin.domain.assistants.agent import Agent  # noqa: E402
from aigc_admin.domain.assistants.entities import (  # noqa: E402
    AgentConfig,
    AgentMode,
    HttpSpec,
    Limits,
    ToolDef,
    ToolOutcome,
)
from aigc_admin.domain.assistants.runner import RunRequest  # noqa: E402
from aigc_admin.domain.egress import EgressPolicy, parse_networks  # noqa: E402
from aigc_admin.domain.model_calls import ChatChunk, Usage  # noqa: E402
from aigc_admin.gateway.model_calls import GatewayModelCalls  # noqa: E402
from bench.evaluation import Tenant  # noqa: E402

ALLOW = "127.0.0.1/32"  # the stub listens on loopback
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
INSTRUCTIONS = "Use the tools."
SECRET = {"Authorization": "Bearer tool-secret"}  # stored encrypted, opened per call: part of the real cost
AGENT_STEPS = 3  # model calls per run in the loop-alone measurement (two tool rounds, then the answer)
RUNNER_STEPS = 2  # model calls per run through the platform (one tool round, then the answer)
RUN_SUBSCRIPTION = ("subscription($i: AssistantRunInput!) { assistantRun(input: $i) { kind runId content "
                    "stopReason errorCode } }")


@dataclass(frozen=True)
class Counts:
    agent_runs: int
    runner_runs: int
    egress_calls: int
    concurrent: int


FULL = Counts(agent_runs=5000, runner_runs=300, egress_calls=2000, concurrent=200)
QUICK = Counts(agent_runs=1000, runner_runs=50, egress_calls=300, concurrent=50)


# --- small helpers ------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def question(city: str) -> str:
    return f'call weather {{"city": "{city}"}}'


def names_city(content: str, city: str) -> bool:
    return f'"city": "{city}"' in content  # quoted: c1 must not match c10's answer


# --- the stub process: scripted upstream on /v1, tool server elsewhere -------------------------------------
STUB = """
import sys
sys.path.insert(0, sys.argv[2])
import uvicorn
from tests.support.tool_server import ToolServer
from tests.support.tool_upstream import tool_upstream

tools = ToolServer("").app()

async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith("/v1/"):
        await tool_upstream(scope, receive, send)
    else:
        await tools(scope, receive, send)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, lifespan="off",
            loop="uvloop", http="httptools")
"""


@contextlib.contextmanager
def stub_process() -> Iterator[str]:
    """The upstream (``<base>/v1``) and the tool server (``<base>/weather/<city>``) in a child process; the base."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", STUB, str(port), str(ROOT)], stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/weather/up", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stub process did not start")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- 1a. the agent loop alone ------------------------------------------------------------------------------
class InstantModel:
    """A ``ModelCalls`` whose answers are ready at once: streamed tool calls (id and name, then the arguments in
    two pieces, as OpenAI streams them) until the history holds AGENT_STEPS - 1 tool results, then a few words."""

    async def stream_chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                          also_allow: frozenset[str] = frozenset()) -> AsyncGenerator[ChatChunk, None]:
        return self._chunks(sum(1 for m in body["messages"] if m["role"] == "tool"))

    async def _chunks(self, done: int) -> AsyncGenerator[ChatChunk, None]:
        if done < AGENT_STEPS - 1:
            yield ChatChunk(tool_calls=({"index": 0, "id": f"call_{done}", "type": "function",
                                         "function": {"name": "weather", "arguments": ""}},))
            for piece in ('{"city": ', '"oslo"}'):
                yield ChatChunk(tool_calls=({"index": 0, "function": {"arguments": piece}},))
            yield ChatChunk(finish_reason="tool_calls", usage=Usage(20, 8))
        else:
            for word in ("Result:", "21", "degrees", "and", "clear"):
                yield ChatChunk(word + " ")
            yield ChatChunk(finish_reason="stop", usage=Usage(30, 5))


async def instant_tool(tool: ToolDef, arguments: dict[str, Any]) -> ToolOutcome:
    return ToolOutcome(True, '{"city": "oslo", "temperature_c": 21, "sky": "clear"}', duration_ms=0.01)


async def agent_loop(runs: int) -> dict[str, Any]:
    """µs per step of the agent's own work, per run (run time / steps)."""
    agent = Agent(calls=InstantModel(), run_tool=instant_tool)  # type: ignore[arg-type]
    config = AgentConfig(assistant_id=1, name="bench", model_name="m", instructions=INSTRUCTIONS,
                         tools=(ToolDef("weather", "The weather in a city", CITY_SCHEMA),),
                         limits=Limits(max_steps=5), mode=AgentMode.NATIVE)
    messages = [{"role": "user", "content": question("oslo")}]

    async def one() -> float:
        started = time.perf_counter_ns()
        final = None
        async for event in agent.run(config, messages, tenant_id=1, channel_id=1, mode=AgentMode.NATIVE):
            final = event
        elapsed = time.perf_counter_ns() - started
        assert final is not None and final.stop_reason == "completed" and final.step == AGENT_STEPS, final
        return elapsed / 1000 / AGENT_STEPS

    for _ in range(min(200, runs)):  # warm-up: imports, caches, first-call costs
        await one()
    per_step = [await one() for _ in range(runs)]
    return {"runs": runs, "p50": pct(per_step, 50), "p99": pct(per_step, 99), "mean": mean(per_step)}


# --- the platform's world: tenant, model, channel, tool, assistants ----------------------------------------
Gql = Callable[[str, dict[str, Any] | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class World:
    model: str
    channel: str
    assistant: str  # the measured one (its runs are counted)
    warmup: str  # another one, for warm-up runs


async def create_world(gql: Gql, stub: str, tenant: str) -> World:
    """As tests/api/test_assistants.py does it: an EXTERNAL model on the scripted upstream, a channel without
    limits (nothing may be refused), the weather tool (secret header, extract /data), two NATIVE assistants."""
    name = unique("tools")
    model = await gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name } } }",
                      {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": f"{stub}/v1",
                             "tenantIds": [tenant]}})
    model_id = model["createModel"]["model"]["id"]
    channel = await gql("mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } } }",
                        {"i": {"modelIds": [model_id], "unlimitedQuota": True, "unlimitedRpm": True,
                               "unlimitedTpm": True}})
    tool = await gql("mutation($i: ToolInput!) { createTool(input: $i) { tool { id } errors { code message } } }",
                     {"i": {"name": "weather", "description": "The weather in a city",
                            "http": {"url": f"{stub}/weather/{{city}}", "parameters": CITY_SCHEMA,
                                     "secretHeaders": SECRET, "extract": "/data"}}})
    if tool["createTool"]["errors"]:
        raise RuntimeError(tool)
    ids = []
    for prefix in ("bench", "warmup"):
        created = await gql("mutation($i: AssistantInput!) { createAssistant(input: $i) { assistant { id } "
                            "errors { code message } } }",
                            {"i": {"name": unique(prefix).replace("-", "_"), "modelName": name,
                                   "instructions": INSTRUCTIONS, "mode": "NATIVE", "maxSteps": 3,
                                   "toolIds": [tool["createTool"]["tool"]["id"]]}})
        if created["createAssistant"]["errors"]:
            raise RuntimeError(created)
        ids.append(created["createAssistant"]["assistant"]["id"])
    return World(name, channel["createChannel"]["channel"]["id"], ids[0], ids[1])


# --- the direct baseline: the requests a run makes, straight to the upstream and the tool ------------------
async def read_stream(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> bytes:
    async with http.stream("POST", url, json=body) as r:
        r.raise_for_status()
        return await r.aread()


async def direct_run(http: httpx.AsyncClient, stub: str, model: str, tool: dict[str, Any], city: str) -> str:
    """What one run sends (model → tool → model), with a plain client and no platform; the answer's bytes."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": INSTRUCTIONS},
                                      {"role": "user", "content": question(city)}]
    body = {"model": model, "messages": messages, "max_tokens": 4096, "tools": [tool], "stream": True,
            "stream_options": {"include_usage": True}}
    await read_stream(http, f"{stub}/v1/chat/completions", body)
    r = await http.get(f"{stub}/weather/{city}", headers=SECRET)
    result = json.dumps(r.json()["data"], ensure_ascii=False)  # the extract the model sees
    call = {"id": "call_0", "type": "function",
            "function": {"name": "weather", "arguments": json.dumps({"city": city})}}
    messages = [*messages, {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "content": result}]
    return (await read_stream(http, f"{stub}/v1/chat/completions", {**body, "messages": messages})).decode()


def openai_tool() -> dict[str, Any]:
    return ToolDef("weather", "The weather in a city", CITY_SCHEMA).openai()


# --- 1b. through the platform's AssistantRunner ------------------------------------------------------------
async def runner_overhead(api: ApiHarness, stub: str, runs: int) -> dict[str, Any]:
    tenant = await api.create_tenant(unique("bench"))

    async def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await api.ok(query, variables, token=api.admin_token, tenant=tenant)

    world = await create_world(gql, stub, tenant)
    platform = api.services()
    await platform.gateway.routes.refresh()  # routable now, not at the next refresh
    runner = platform.assistant_runner
    assert isinstance(runner.calls, GatewayModelCalls), type(runner.calls)
    config = await platform.assistants.config(await platform.assistants.get(int(world.assistant),
                                                                             tenant_id=int(tenant)))
    tool = openai_tool()

    async def through_runner(city: str) -> float:
        req = RunRequest(config=config, messages=[{"role": "user", "content": question(city)}],
                         tenant_id=int(tenant), channel_id=int(world.channel), operator="bench")
        started = time.perf_counter_ns()
        final = None
        async for _, event in runner.run(req):
            final = event
        elapsed = time.perf_counter_ns() - started
        assert final is not None and final.stop_reason == "completed" and names_city(final.content, city), final
        return elapsed / 1000

    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        async def direct(city: str) -> float:
            started = time.perf_counter_ns()
            answer = await direct_run(http, stub, world.model, tool, city)
            elapsed = time.perf_counter_ns() - started
            assert f'\\"{city}\\"' in answer, answer  # the city, quoted inside the streamed JSON
            return elapsed / 1000

        for i in range(20):  # warm-up: connections, caches, the limiter's first admissions
            await direct(f"w{i}")
            await through_runner(f"w{i}")
        ours, base, diff = [], [], []
        for i in range(runs):
            city = f"c{i}"
            if i % 2:  # alternate the order so neither side always runs on a warmer machine
                d, o = await direct(city), await through_runner(city)
            else:
                o, d = await through_runner(city), await direct(city)
            ours.append(o)
            base.append(d)
            diff.append((o - d) / RUNNER_STEPS)
    return {"runs": runs, "ours_p50": pct(ours, 50), "direct_p50": pct(base, 50), "p50": pct(diff, 50),
            "p99": pct(diff, 99), "mean": mean(diff)}


# --- 2. the egress guard -----------------------------------------------------------------------------------
async def egress(stub: str, calls: int) -> dict[str, dict[str, float]]:
    """Per-call latency (µs) of the same GET through each client, interleaved rounds after a warm-up."""
    policy = EgressPolicy(allowed_networks=parse_networks(ALLOW))
    by_name = stub.replace("127.0.0.1", "localhost")
    plain = httpx.AsyncClient(timeout=30, trust_env=False)  # trust_env=False as the guarded client
    guarded = guarded_client(policy)

    async def no_hosts(tenant_id: int) -> list[str]:
        return []  # the tenant has no allow-list: any allowed address

    transport = NetworkToolTransport(policy, no_hosts)
    spec = HttpSpec(url=f"{stub}/weather/{{city}}", parameters=CITY_SCHEMA, extract="/data")

    async def get(client: httpx.AsyncClient, base: str) -> None:
        r = await client.get(f"{base}/weather/oslo")
        assert r.status_code == 200, r

    async def tool_call() -> None:
        outcome = await transport.call_http(spec, {"city": "oslo"}, tenant_id=1)
        assert outcome.ok, outcome

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "plain": lambda: get(plain, stub), "guarded": lambda: get(guarded, stub), "call_http": tool_call,
        "plain, by name": lambda: get(plain, by_name), "guarded, by name": lambda: get(guarded, by_name)}
    times: dict[str, list[float]] = {k: [] for k in ways}
    try:
        for call in ways.values():
            for _ in range(50):
                await call()
        chunk = 50
        for r in range((calls + chunk - 1) // chunk):
            names = list(ways)
            names = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
            for name in names:
                for _ in range(min(chunk, calls - r * chunk)):
                    started = time.perf_counter_ns()
                    await ways[name]()
                    times[name].append((time.perf_counter_ns() - started) / 1000)
    finally:
        await plain.aclose()
        await guarded.aclose()
        await transport.aclose()
    return {name: {"p50": pct(t, 50), "mean": mean(t), "n": len(t)} for name, t in times.items()}


# --- 3. concurrent playground runs -------------------------------------------------------------------------
async def playground_run(server: LiveServer, headers: dict[str, Any], variables: dict[str, Any],
                         ready: Callable[[], None], go: asyncio.Event) -> tuple[float, dict[str, Any]]:
    """One connection, one run: (seconds from subscribe to the final event, that event or the error)."""
    async with ws_session(server, headers) as ws:
        await expect_ack(ws)
        ready()
        await go.wait()
        started = time.perf_counter()
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": RUN_SUBSCRIPTION, "variables": variables}}))
        while True:
            message = await recv(ws, timeout=300)
            if message["type"] != "next":
                return time.perf_counter() - started, {"kind": "protocol", "message": message}
            event = (message["payload"].get("data") or {}).get("assistantRun") or {"kind": "error", **message}
            if event["kind"] in ("final", "error"):
                return time.perf_counter() - started, event


async def concurrent_runs(server: LiveServer, stub: str, n: int) -> dict[str, Any]:
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, 'mutation($c: String!) { createTenant(input: {name: "B", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("bench")}, token)
    t = Tenant(server, token, created["data"]["createTenant"]["tenant"]["id"])
    world = await create_world(t.gql, stub, t.tenant)
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": t.tenant}

    def variables(assistant: str, city: str) -> dict[str, Any]:
        return {"i": {"assistantId": assistant, "channelId": world.channel,
                      "messages": [{"role": "user", "content": question(city)}]}}

    async def single(assistant: str, city: str) -> tuple[float, dict[str, Any]]:
        go = asyncio.Event()
        go.set()
        return await playground_run(server, headers, variables(assistant, city), lambda: None, go)

    deadline = time.monotonic() + 30  # the routing table picks the new model up within gateway.routes.refresh
    while (event := (await single(world.warmup, "warm"))[1]).get("stopReason") != "completed":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm-up run never completed: {event}")
        await asyncio.sleep(0.3)
    await asyncio.gather(*(single(world.warmup, f"w{i}") for i in range(min(n, 20))))

    tool = openai_tool()  # the baseline: the same n runs' requests, straight to the upstream and the tool
    async with httpx.AsyncClient(timeout=300, trust_env=False, limits=httpx.Limits(max_connections=2 * n)) as http:
        async def direct(i: int) -> float:
            started = time.perf_counter()
            answer = await direct_run(http, stub, world.model, tool, f"c{i}")
            assert f'\\"c{i}\\"' in answer, answer
            return time.perf_counter() - started

        await asyncio.gather(*(direct(i) for i in range(min(n, 20))))  # warm-up: open the pool's connections
        started, client_cpu = time.perf_counter(), time.process_time()
        direct_latency = await asyncio.gather(*(direct(i) for i in range(n)))
        direct_wall = time.perf_counter() - started
        direct_client_cpu = time.process_time() - client_cpu

    # every connection acknowledged before the clock starts: the measured part is the runs, not the handshakes
    go, connected = asyncio.Event(), [0]

    def ready() -> None:
        connected[0] += 1
        if connected[0] == n:
            go.set()

    tasks = [asyncio.create_task(playground_run(server, headers, variables(world.assistant, f"c{i}"), ready, go))
             for i in range(n)]
    await go.wait()
    started, client_cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(server.process.pid)
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    client_cpu, server_cpu = time.process_time() - client_cpu, cpu_seconds(server.process.pid) - server_cpu

    good = [lat for i, (lat, e) in enumerate(results)
            if e.get("kind") == "final" and e.get("stopReason") == "completed" and names_city(e["content"], f"c{i}")]
    bad = [e for i, (_, e) in enumerate(results) if not (e.get("kind") == "final" and names_city(
        e.get("content") or "", f"c{i}") and e.get("stopReason") == "completed")]
    stored: dict[str, int] = {}
    total, offset = 0, 0
    while True:  # pages of 100 (the API's largest)
        page = await t.gql(f'{{ assistantRuns(assistantId: "{world.assistant}", pagination: {{offset: {offset}, '
                           f'limit: 100}}) {{ totalCount items {{ status }} }} }}')
        total = page["assistantRuns"]["totalCount"]
        for item in page["assistantRuns"]["items"]:
            stored[item["status"]] = stored.get(item["status"], 0) + 1
        offset += 100
        if offset >= total:
            break
    return {"n": n, "completed": len(good), "bad": bad[:3], "stored_total": total,
            "stored_completed": stored.get("completed", 0), "stored": stored,
            "rate": n / wall, "p50": pct([r[0] for r in results], 50) * 1000,
            "p99": pct([r[0] for r in results], 99) * 1000,
            "direct_rate": n / direct_wall, "direct_p50": pct(direct_latency, 50) * 1000,
            "direct_p99": pct(direct_latency, 99) * 1000, "server_cpu": server_cpu * 1000 / n,
            "client_cpu": client_cpu * 1000 / n, "direct_client_cpu": direct_client_cpu * 1000 / n}


# --- the report --------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(agent: dict[str, Any], runner: dict[str, Any], eg: dict[str, dict[str, float]],
           conc: dict[str, Any]) -> str:
    rows: list[tuple[str, ...]] = []  # measure, ours, baseline, ratio, target, verdict
    rows.append(("1 agent loop alone (stand-ins), µs/step p50 (p99)", f"{agent['p50']:.0f} ({agent['p99']:.0f})",
                 "—", "—", "≤ 2000", verdict(agent["p99"] <= 2000)))
    rows.append(("1 runner − direct, µs/step p50 (p99)", f"{runner['p50']:.0f} ({runner['p99']:.0f})", "—", "—",
                 "≤ 2000", verdict(runner["p50"] <= 2000)))
    rows.append(("  runner run vs direct run, ms p50", f"{runner['ours_p50'] / 1000:.2f}",
                 f"{runner['direct_p50'] / 1000:.2f}", f"{runner['ours_p50'] / runner['direct_p50']:.2f}×", "", ""))
    for ours, base, label, target in (("guarded", "plain", "guarded", True),
                                      ("call_http", "plain", "call_http", False),
                                      ("guarded, by name", "plain, by name", "guarded (localhost)", True)):
        o, b = eg[ours], eg[base]
        added, added_mean = o["p50"] - b["p50"], o["mean"] - b["mean"]
        rows.append((f"2 egress {label} vs plain, µs/call p50 (mean)", f"{o['p50']:.0f} ({o['mean']:.0f})",
                     f"{b['p50']:.0f} ({b['mean']:.0f})", f"{o['p50'] / b['p50']:.2f}×",
                     "added ≤ 1000" if target else "",
                     (f"{verdict(added <= 1000 and added_mean <= 1000)} " if target else "") + f"+{added:.0f}"))
    lost = conc["n"] - conc["completed"]
    stored_ok = conc["stored_total"] == conc["n"] == conc["stored_completed"]
    rows.append((f"3 {conc['n']} concurrent playground runs, runs/s", f"{conc['rate']:.1f}",
                 f"{conc['direct_rate']:.1f}", f"{conc['rate'] / conc['direct_rate']:.2f}×", "", ""))
    rows.append(("  run latency, ms p50 (p99)", f"{conc['p50']:.0f} ({conc['p99']:.0f})",
                 f"{conc['direct_p50']:.0f} ({conc['direct_p99']:.0f})", f"{conc['p50'] / conc['direct_p50']:.2f}×",
                 "", ""))
    rows.append(("  CPU ms/run: platform process (bench client)",
                 f"{conc['server_cpu']:.1f} ({conc['client_cpu']:.1f})", f"— ({conc['direct_client_cpu']:.1f})",
                 "", "", ""))
    rows.append(("  lost (no final+completed+own city)", str(lost), "", "", "0", verdict(lost == 0)))
    rows.append(("  assistantRuns totalCount / completed", f"{conc['stored_total']} / {conc['stored_completed']}",
                 "", "", f"{conc['n']} / {conc['n']}", verdict(stored_ok)))

    head = ("measure", "ours", "baseline", "ratio", "target", "verdict")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"=== assistants bench ({time.strftime('%Y-%m-%d')}; Python {host.python_version()}; loopback) ===",
             f"1: {agent['runs']} runs × {AGENT_STEPS} steps alone; {runner['runs']} runs × {RUNNER_STEPS} steps "
             f"through AssistantRunner, paired with the same requests sent direct. 2: {int(eg['plain']['n'])} "
             f"sequential GETs per client. 3: {conc['n']} WebSocket subscriptions at once vs the same requests direct."]
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    if conc["bad"]:
        lines.append(f"first failed runs: {conc['bad']}")
    return "\n".join(lines)


async def in_process(stub: str, redis_url: str, storage: Path, counts: Counts) -> tuple[Any, Any, Any]:
    agent = await agent_loop(counts.agent_runs)
    print(f"agent loop alone: {agent['p50']:.0f} µs/step p50, {agent['p99']:.0f} p99", flush=True)
    eg = await egress(stub, counts.egress_calls)
    print("egress p50 µs/call: " + ", ".join(f"{k} {v['p50']:.0f}" for k, v in eg.items()), flush=True)
    async with ApiHarness.running(storage=storage, redis_url=redis_url, extra={"egress.allow.networks": ALLOW}) as api:
        runner = await runner_overhead(api, stub, counts.runner_runs)
    print(f"runner − direct: {runner['p50']:.0f} µs/step p50 (runner {runner['ours_p50'] / 1000:.2f} ms/run, "
          f"direct {runner['direct_p50'] / 1000:.2f} ms/run)", flush=True)
    return agent, eg, runner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    args = parser.parse_args()
    counts = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as tmp, stub_process() as stub:
        work = Path(tmp)
        redis = start_redis(work / "redis")
        try:
            (work / "inproc").mkdir()
            agent, eg, runner = asyncio.run(in_process(stub, redis.url, work / "inproc", counts))
            (work / "live").mkdir()
            extra = {"egress.allow.networks": ALLOW, "health.interval": 0, "finetune.interval": 0,
                     "gateway.routes.refresh": 1}
            with live_server(work / "live", redis.url, extra=extra) as server:
                try:
                    conc = asyncio.run(concurrent_runs(server, stub, counts.concurrent))
                except BaseException:
                    print(f"--- server log ---\n{server.log_tail()}", file=sys.stderr)
                    raise
        finally:
            redis.stop()
    print(f"concurrent: {conc['rate']:.1f} runs/s vs direct {conc['direct_rate']:.1f}/s", flush=True)
    print()
    print(report(agent, runner, eg, conc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
