"""Evaluation on CPU with the tiny model, through a real platform (API, RQ worker, FastChat): an evaluation of the
deployed model with exact match, BLEU and ROUGE-L whose progress arrives over a WebSocket, per-sample rows, a cancel
mid-run; then a fine-tune with a 25 % held-out split and a gate: the training program's own log shows it read the
other lines only, the gate evaluates base and fine-tuned on the held-out lines (the fine-tuned model deployed for the
run), they compare side by side, and the gate's decision grants the model to the channel."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from aigc_admin.domain.evaluations.split import held_out
from tests.support.api import unique
from tests.support.engine import tiny_model_path
from tests.support.live import (
    ADMIN_PASSWORD,
    LiveServer,
    TenantClient,
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

CHAT = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(20)]
CREATE = ("mutation($i: CreateEvaluationInput!) { createEvaluation(input: $i) { evaluation { id total } "
          "errors { field code message } } }")


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = managed_fastchat(**{"gateway.routes.refresh": 0.5, "finetune.interval": 0.5, "engine.start.timeout": 120})
    with live_server(tmp_path_factory.mktemp("evaluation"), redis_server.url, extra=extra, worker=True) as server:
        yield server


Client = TenantClient


async def _setup(server: LiveServer) -> tuple[Client, str, str]:
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, 'mutation($c: String!) { createTenant(input: {name: "E", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("ev")}, token)
    c = Client(server, token, created["data"]["createTenant"]["tenant"]["id"])
    base = await c.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name } } }",
                       {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path()), "tenantIds": [c.tenant]}})
    base_id = base["createModel"]["model"]["id"]
    channel = await c.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } } }",
                          {"i": {"modelIds": [base_id]}})
    return c, base_id, channel["createChannel"]["channel"]["id"]


async def test_evaluate_the_deployed_model_watch_progress_and_cancel(platform: LiveServer) -> None:
    c, base_id, channel_id = await _setup(platform)
    deployed = await c.gql('mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } '
                           "errors { message } } }", {"i": {"modelId": base_id}})
    deployment = deployed["deployModel"]["deployment"]["id"]
    await c.until(f'{{ deployment(id: "{deployment}") {{ status reason }} }}',
                  lambda d: d["deployment"]["status"] in ("RUNNING", "FAILED"), "the deployment")
    eval_file = await c.upload("fine-tune-eval", [json.dumps(x) for x in CHAT[:12]])
    created = await c.gql(CREATE, {"i": {"modelId": base_id, "channelId": channel_id, "fileId": eval_file,
                                         "metrics": ["EXACT_MATCH", "BLEU", "ROUGE_L"], "maxTokens": 16,
                                         "concurrency": 2}})
    assert created["createEvaluation"]["errors"] == [], created
    evaluation = created["createEvaluation"]["evaluation"]["id"]

    events: list[dict[str, Any]] = []
    async with ws_session(platform, {"Authorization": f"Bearer {c.token}", "X-Tenant-Id": c.tenant}) as ws:
        await expect_ack(ws)
        op = await subscribe(ws, f'subscription {{ evaluationProgress(id: "{evaluation}") {{ seq status done '
                                 "failed total etaSeconds means { metric value } } }")
        while True:
            message = await recv(ws, timeout=120)
            if message["type"] == "complete":
                break
            assert message["type"] == "next" and message["id"] == op, message
            events.append(message["payload"]["data"]["evaluationProgress"])
    assert events[-1]["status"] == "SUCCEEDED" and events[-1]["done"] + events[-1]["failed"] == 12
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and len(events) >= 2  # the state first, then each batch, in order
    assert [e["done"] for e in events] == sorted(e["done"] for e in events)
    assert {m["metric"] for m in events[-1]["means"]} == {"EXACT_MATCH", "BLEU", "ROUGE_L"}

    shown = await c.gql(f'{{ evaluation(id: "{evaluation}") {{ status done results {{ metric mean low high n }} }} '
                        f'evaluationSamples(id: "{evaluation}", pagination: {{limit: 100}}) {{ totalCount items '
                        "{ idx reference output status latencyMs completionTokens scores { metric value } } } }")
    assert shown["evaluation"]["status"] == "SUCCEEDED" and shown["evaluation"]["done"] == 12
    assert {r["metric"] for r in shown["evaluation"]["results"]} == {"EXACT_MATCH", "BLEU", "ROUGE_L"}
    rows = shown["evaluationSamples"]["items"]
    assert shown["evaluationSamples"]["totalCount"] == 12 and len(rows) == 12
    for row in rows:  # the tiny model really answered each one, and each answer was scored
        assert row["status"] == "done" and row["output"] is not None and row["completionTokens"] > 0
        assert row["latencyMs"] is not None and len(row["scores"]) == 3
        assert all(0.0 <= s["value"] <= 1.0 for s in row["scores"])

    # cancel mid-run: it stops, what was scored stays, nothing more is scored
    many = await c.upload("fine-tune-eval", [json.dumps({"messages": [
        {"role": "user", "content": f"Tell me a long story about the number {i}."},
        {"role": "assistant", "content": "Once upon a time."}]}) for i in range(200)])
    long_run = await c.gql(CREATE, {"i": {"modelId": base_id, "channelId": channel_id, "fileId": many,
                                          "metrics": ["ROUGE_L"], "maxTokens": 48, "concurrency": 1}})
    long_id = long_run["createEvaluation"]["evaluation"]["id"]
    await c.until(f'{{ evaluation(id: "{long_id}") {{ done }} }}', lambda d: d["evaluation"]["done"] >= 3,
                  "the first samples")
    cancelled = await c.gql(f'mutation {{ cancelEvaluation(id: "{long_id}") {{ evaluation {{ status }} }} }}')
    assert cancelled["cancelEvaluation"]["evaluation"]["status"] == "CANCELLED"
    await asyncio.sleep(2)  # a batch in flight is written; then nothing more
    first = await c.gql(f'{{ evaluation(id: "{long_id}") {{ status done }} }}')
    await asyncio.sleep(2)
    second = await c.gql(f'{{ evaluation(id: "{long_id}") {{ status done }} }}')
    assert first == second and second["evaluation"]["status"] == "CANCELLED"
    assert 3 <= second["evaluation"]["done"] < 200


def _digest(line: str) -> str:
    return hashlib.sha256(line.strip().encode()).hexdigest()[:16]


async def test_fine_tune_with_a_held_out_split_and_a_gate(platform: LiveServer) -> None:
    c, base_id, channel_id = await _setup(platform)
    lines = [json.dumps(x) for x in CHAT]
    train_file = await c.upload("fine-tune", lines)
    seed = 5
    held = [i for i in range(len(lines)) if held_out(i, percent=25, seed=seed)]
    assert 0 < len(held) < len(lines)
    job = await c.gql("mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) "
                      "{ job { id holdoutPercent gate { metric status } } errors { field code message } } }",
                      {"i": {"baseModelId": base_id, "fileId": train_file, "epochs": 1, "trainBatchSize": 2,
                             "learningRate": 0.001, "modelMaxLength": 128, "lora": True, "channelId": channel_id,
                             "holdoutPercent": 25, "holdoutSeed": seed,
                             "gate": {"metric": "ROUGE_L", "threshold": 0.0, "minImprovement": -1.0,
                                      "maxTokens": 16}}})
    assert job["createFineTuningJob"]["errors"] == [], job
    job_id = job["createFineTuningJob"]["job"]["id"]
    assert job["createFineTuningJob"]["job"]["gate"] == {"metric": "ROUGE_L", "status": ""}

    query = (f'{{ fineTuningJob(id: "{job_id}") {{ status errorMessage fineTunedModel gate {{ status reason '
             "evaluations { id gateRole status total done modelName results { metric mean low high } } } } }")
    done = await c.until(query, lambda d: d["fineTuningJob"]["gate"]["status"] in ("PASSED", "FAILED", "ERROR")
                         or d["fineTuningJob"]["status"] in ("FAILED", "CANCELLED"), "the gate's decision", 600)
    ft = done["fineTuningJob"]
    assert ft["status"] == "SUCCEEDED" and ft["gate"]["status"] == "PASSED", ft

    # the program read the other lines only: its own log says which
    logs = await c.gql(f'{{ fineTuningLogs(id: "{job_id}", limit: 10000) {{ line }} }}')
    data = [json.loads(x["line"]) for x in logs["fineTuningLogs"] if x["line"].startswith('{"type": "data"')]
    assert len(data) == 1 and data[0]["samples"] == len(lines) - len(held)
    assert data[0]["line_sha256"] == [_digest(x) for i, x in enumerate(lines) if i not in held]
    assert not {_digest(lines[i]) for i in held} & set(data[0]["line_sha256"])

    # base and fine-tuned scored on the held-out lines, side by side
    by_role = {e["gateRole"]: e for e in ft["gate"]["evaluations"]}
    assert set(by_role) == {"base", "candidate"}
    assert all(e["status"] == "SUCCEEDED" and e["total"] == len(held) == e["done"] for e in by_role.values())
    assert by_role["candidate"]["modelName"] == ft["fineTunedModel"]
    compared = await c.gql("query($ids: [ID!]!) { compareEvaluations(ids: $ids) { metrics { metric estimates "
                           "{ mean n } deltas { mean low high } } } }",
                           {"ids": [by_role["base"]["id"], by_role["candidate"]["id"]]})
    row = compared["compareEvaluations"]["metrics"][0]
    assert row["metric"] == "ROUGE_L" and [e["n"] for e in row["estimates"]] == [len(held)] * 2
    assert row["deltas"][0]["low"] <= row["deltas"][0]["mean"] <= row["deltas"][0]["high"]

    # the gate passed: granted to the channel; the deployment made for the run is gone (no autoDeploy)
    channel = await c.gql(f'{{ channel(id: "{channel_id}") {{ models {{ name }} }} }}')
    assert ft["fineTunedModel"] in {m["name"] for m in channel["channel"]["models"]}
    deployments = await c.gql("{ deployments(pagination: {limit: 50}) { items { modelName status } } }")
    assert all(d["status"] in ("STOPPED", "STOPPING") for d in deployments["deployments"]["items"]
               if d["modelName"] == ft["fineTunedModel"])
