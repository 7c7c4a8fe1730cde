"""Evaluation throughput: samples/s through an evaluation job vs the same requests sent straight to the worker.

Starts a private redis-server and the platform (API + one RQ worker, managed FastChat controller), deploys the
tiny model, and for each concurrency (1, 8, 32 by default), in the same run:

    direct      the N requests' worker parameters (prompt templated as the gateway templates it, prepared before
                the clock starts) POSTed to the worker's /worker_generate, ``concurrency`` at a time
    evaluation  createEvaluation with the same N samples and concurrency (exact match, BLEU, ROUGE-L), timed from
                the mutation to the evaluationProgress event that says SUCCEEDED; the events are checked for gaps
                (their seq numbers are consecutive from the first one received: none lost)

and prints samples/s side by side with the ratio (target ≥ 0.9× at every concurrency). It also measures the CPU
time of each string metric over the run's (answer, reference) pairs, per 1,000 samples (target ≤ 1 s).

    .venv/bin/python bench/evaluation.py [--samples 2000] [--concurrency 1 8 32] [--max-tokens 8] [--stub]

``--stub`` measures the pipeline's own ceiling instead: the model is an external one served by a stub
OpenAI-compatible server in this process that answers at once, and "direct" is the same chat requests POSTed to
the stub. Needs redis-server and the engine venv + tiny model (``make engine``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform as host
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

from tests.support.api import ADMIN_PASSWORD, unique  # noqa: E402
from tests.support.asgi_stub import chat_answer, read_json, send_json, start  # noqa: E402
from tests.support.engine import tiny_model_path  # noqa: E402
from tests.support.live import (  # noqa: E402
    LiveServer,
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

from aigc_admin.adapters.fastchat.worker_client import WorkerClient  # noqa: E402
from aigc_admin.adapters.model_files import ModelFiles  # noqa: E402
from aigc_admin.domain.evaluations import metrics  # noqa: E402

CREATE = ("mutation($i: CreateEvaluationInput!) { createEvaluation(input: $i) { evaluation { id } "
          "errors { field code message } } }")


def samples(n: int) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"What is {i % 97} plus {i % 89}?"},
                          {"role": "assistant", "content": f"{i % 97} plus {i % 89} is {i % 97 + i % 89}."}]}
            for i in range(n)]


class Tenant:
    def __init__(self, server: LiveServer, token: str, tenant: str) -> None:
        self.server, self.token, self.tenant = server, token, tenant

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await http_gql(self.server, query, variables, self.token, tenant=self.tenant)
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return dict(body["data"])


async def setup(server: LiveServer, n: int) -> tuple[Tenant, str, str, str, str, str]:
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, 'mutation($c: String!) { createTenant(input: {name: "B", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("bench")}, token)
    t = Tenant(server, token, created["data"]["createTenant"]["tenant"]["id"])
    name = unique("tiny")
    model = await t.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "modelPath": str(tiny_model_path()), "tenantIds": [t.tenant]}})
    model_id = model["createModel"]["model"]["id"]
    channel = await t.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } } }",
                          {"i": {"modelIds": [model_id]}})
    deployed = await t.gql("mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } } }",
                           {"i": {"modelId": model_id}})
    deployment = deployed["deployModel"]["deployment"]["id"]
    for _ in range(1200):
        state = await t.gql(f'{{ deployment(id: "{deployment}") {{ status reason workerAddresses }} }}')
        if state["deployment"]["status"] == "RUNNING":
            break
        if state["deployment"]["status"] == "FAILED":
            raise RuntimeError(state)
        await asyncio.sleep(0.25)
    worker = state["deployment"]["workerAddresses"][0]
    body = "\n".join(json.dumps(s) for s in samples(n)).encode()
    async with httpx.AsyncClient() as h:
        r = await h.post(server.base_url + "/files", params={"purpose": "fine-tune-eval", "filename": "bench.jsonl"},
                         content=body, headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": t.tenant})
    r.raise_for_status()
    return t, model_id, name, channel["createChannel"]["channel"]["id"], worker, r.json()["file"]["id"]


async def stub_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An OpenAI-compatible chat endpoint that answers at once (the question's first words)."""
    if scope["type"] != "http":
        return
    request = await read_json(receive)
    text = " ".join(str(request["messages"][-1]["content"]).split()[:4])
    await send_json(send, 200, chat_answer(request["model"], text, 12, 4))


async def stub_setup(t: Tenant, stub: str) -> tuple[str, str]:
    """An external model on the stub, granted to a new channel."""
    model = await t.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": unique("stub"), "provider": "EXTERNAL", "baseUrl": stub,
                               "tenantIds": [t.tenant]}})
    model_id = model["createModel"]["model"]["id"]
    channel = await t.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } } }",
                          {"i": {"modelIds": [model_id]}})
    return model_id, channel["createChannel"]["channel"]["id"]


async def direct_stub(stub: str, n: int, concurrency: int, max_tokens: int) -> tuple[float, list[str]]:
    bodies = [{"model": "stub", "messages": s["messages"][:-1], "max_tokens": max_tokens, "temperature": 0}
              for s in samples(n)]
    answers = [""] * n
    todo = iter(range(n))
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=200)) as http:
        async def work() -> None:
            for i in todo:
                r = await http.post(stub + "/chat/completions", json=bodies[i])
                answers[i] = r.json()["choices"][0]["message"]["content"]

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(concurrency)))
        return n / (time.perf_counter() - started), answers


async def direct(worker: str, name: str, n: int, concurrency: int, max_tokens: int) -> tuple[float, list[str]]:
    """samples/s and the answers, posting the prepared worker parameters straight to /worker_generate."""
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=200)) as http:
        client = WorkerClient(http)
        template = await ModelFiles().chat_template(str(tiny_model_path()))
        payloads = []
        for s in samples(n):  # the gateway's templating, done before the clock starts
            request = {"model": name, "messages": s["messages"][:-1], "max_tokens": max_tokens, "temperature": 0}
            payloads.append(WorkerClient._payload(await client.prepare_chat(worker, request, name, template)))
        answers = [""] * n
        todo = iter(range(n))

        async def work() -> None:
            for i in todo:
                r = await http.post(worker + "/worker_generate", json=payloads[i])
                answers[i] = r.json()["text"]

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(concurrency)))
        return n / (time.perf_counter() - started), answers


async def through_evaluation(t: Tenant, model_id: str, channel_id: str, file_id: str, n: int, concurrency: int,
                             max_tokens: int) -> tuple[float, int, int]:
    """samples/s through an evaluation job, the progress events received, and the gaps among them."""
    events: list[dict[str, Any]] = []
    async with ws_session(t.server, {"Authorization": f"Bearer {t.token}", "X-Tenant-Id": t.tenant}) as ws:
        await expect_ack(ws)
        started = time.perf_counter()
        created = await t.gql(CREATE, {"i": {"modelId": model_id, "channelId": channel_id, "fileId": file_id,
                                             "metrics": ["EXACT_MATCH", "BLEU", "ROUGE_L"], "maxTokens": max_tokens,
                                             "concurrency": concurrency}})
        if created["createEvaluation"]["errors"]:
            raise RuntimeError(created)
        evaluation = created["createEvaluation"]["evaluation"]["id"]
        await subscribe(ws, f'subscription {{ evaluationProgress(id: "{evaluation}") {{ seq status done failed }} }}')
        while True:
            message = await recv(ws, timeout=1800)
            if message["type"] != "next":
                break
            events.append(message["payload"]["data"]["evaluationProgress"])
            if events[-1]["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
        elapsed = time.perf_counter() - started
    final = events[-1]
    if final["status"] != "SUCCEEDED" or final["done"] != n:
        raise RuntimeError(f"the evaluation ended {final}")
    seqs = [e["seq"] for e in events]
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    return n / elapsed, len(events), gaps


def metric_cpu(answers: list[str], n: int) -> dict[str, float]:
    """CPU seconds per 1,000 samples of each string metric, on the run's answers and references."""
    refs = [s["messages"][-1]["content"] for s in samples(n)]
    out = {}
    for m in metrics.STRING_METRICS:
        metrics.score(m, "warm up", "warm up")  # imports and scorer construction are not per sample
        started = time.process_time()
        for a, r in zip(answers, refs, strict=True):
            metrics.score(m, a, r)
        out[m] = (time.process_time() - started) * 1000 / n
    return out


async def bench(server: LiveServer, n: int, levels: list[int], max_tokens: int, stub: str | None) -> dict[str, Any]:
    t, model_id, name, channel_id, worker, file_id = await setup(server, n)
    if stub is not None:
        model_id, channel_id = await stub_setup(t, stub)
    rows = []
    answers: list[str] = []
    for c in levels:
        if stub is not None:
            direct_rate, answers = await direct_stub(stub, n, c, max_tokens)
        else:
            direct_rate, answers = await direct(worker, name, n, c, max_tokens)
        eval_rate, events, gaps = await through_evaluation(t, model_id, channel_id, file_id, n, c, max_tokens)
        rows.append({"concurrency": c, "direct": direct_rate, "evaluation": eval_rate, "events": events,
                     "gaps": gaps})
        print(f"concurrency {c}: direct {direct_rate:.1f}/s, evaluation {eval_rate:.1f}/s "
              f"({eval_rate / direct_rate:.2f}×), {events} progress events, {gaps} lost", flush=True)
    return {"rows": rows, "metric_cpu": metric_cpu(answers, n)}


def report(results: dict[str, Any], n: int, max_tokens: int, stub: bool) -> str:
    backend = "a stub that answers at once" if stub else "the tiny model on CPU"
    lines = [f"{n} samples, maxTokens {max_tokens}, {backend}; Python {host.python_version()}", "",
             f"| concurrency | direct to the {'stub' if stub else 'worker'} | through an evaluation | ratio | "
             "progress events | lost |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['concurrency']} | {r['direct']:.1f}/s | {r['evaluation']:.1f}/s | "
                     f"{r['evaluation'] / r['direct']:.2f}× | {r['events']} | {r['gaps']} |")
    lines += ["", "| metric | CPU per 1,000 samples |", "|---|---:|"]
    lines += [f"| {m} | {s:.3f} s |" for m, s in results["metric_cpu"].items()]
    lines.append(f"| all five | {sum(results['metric_cpu'].values()):.3f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--stub", action="store_true", help="an instant stub upstream instead of the tiny model")
    args = parser.parse_args()
    stub = start(stub_app)[0] if args.stub else None
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as tmp:
        work = Path(tmp)
        redis = start_redis(work / "redis")
        try:
            extra = managed_fastchat(**{"redis.prefix": f"bench{uuid.uuid4().hex[:8]}", "engine.start.timeout": 300,
                                        "gateway.routes.refresh": 1})
            storage = work / "storage"
            storage.mkdir()
            with live_server(storage, redis.url, extra=extra, worker=True) as server:
                try:
                    results = asyncio.run(bench(server, args.samples, args.concurrency, args.max_tokens, stub))
                except BaseException:
                    print(f"--- server log ---\n{server.log_tail()}\n--- worker log ---\n"
                          f"{(storage / 'worker.log').read_text(errors='replace')[-4000:]}", file=sys.stderr)
                    raise
        finally:
            redis.stop()
    print()
    print(report(results, args.samples, args.max_tokens, args.stub))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
