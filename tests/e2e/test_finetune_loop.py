"""The whole loop on CPU, through GraphQL and the gateway: upload a chat JSONL → LoRA fine-tune the tiny
model on the local runtime → the subscription streams per-step loss lines → SUCCEEDED → the model is
registered, granted to the channel, deployed → the openai SDK chats with it through the gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.api import unique
from tests.support.engine import tiny_model_path
from tests.support.live import (
    ADMIN_PASSWORD,
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
from tests.support.redis_server import RedisServer

CHAT = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(20)]


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = managed_fastchat(**{"gateway.routes.refresh": 0.5, "finetune.interval": 0.5})
    with live_server(tmp_path_factory.mktemp("finetune"), redis_server.url, extra=extra, worker=True) as server:
        yield server


async def test_upload_finetune_watch_register_deploy_and_chat(platform: LiveServer) -> None:
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    created = await http_gql(platform, 'mutation($c: String!) { createTenant(input: {name: "F", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("ft")}, token)
    tenant = created["data"]["createTenant"]["tenant"]["id"]
    base = await http_gql(platform, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                          {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                          token)
    base_id = base["data"]["createModel"]["model"]["id"]
    body = "\n".join(json.dumps(x) for x in CHAT).encode()
    async with httpx.AsyncClient() as h:
        r = await h.post(platform.base_url + "/files", params={"purpose": "fine-tune", "filename": "train.jsonl"},
                         content=body, headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant})
    assert r.status_code in (200, 201), r.text
    file_id = r.json()["file"]["id"]
    channel = await http_gql(platform, "mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } "
                                       "errors { message } } }", {"i": {}}, token, tenant=tenant)
    key, channel_id = channel["data"]["createChannel"]["key"], channel["data"]["createChannel"]["channel"]["id"]

    job = await http_gql(platform, "mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) "
                                   "{ job { id status } errors { field code message } } }",
                         {"i": {"baseModelId": base_id, "fileId": file_id, "epochs": 2, "trainBatchSize": 2,
                                "learningRate": 0.001, "warmupRatio": 0.1, "modelMaxLength": 256, "lora": True,
                                "suffix": "sum", "channelId": channel_id, "autoDeploy": True}}, token, tenant=tenant)
    assert not job["data"]["createFineTuningJob"]["errors"], job
    job_id = job["data"]["createFineTuningJob"]["job"]["id"]

    steps, seqs, status = [], [], None
    async with ws_session(platform, {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}) as ws:
        await expect_ack(ws)
        op = await subscribe(ws, f'subscription {{ fineTuneLogs(jobId: "{job_id}") '
                                 "{ status lines { seq line } } }")
        while True:
            message = await recv(ws, timeout=180)
            if message["type"] == "complete":
                break
            assert message["type"] == "next" and message["id"] == op, message
            batch = message["payload"]["data"]["fineTuneLogs"]
            status = batch["status"]
            for item in batch["lines"]:
                seqs.append(item["seq"])
                if item["line"].startswith('{"type": "step"') or item["line"].startswith('{"type":"step"'):
                    steps.append(json.loads(item["line"]))
    assert status == "SUCCEEDED", status
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert len(steps) == 20 and all(s["loss"] is not None for s in steps)  # ceil(20/2) * 2 epochs

    done = await http_gql(platform, f'{{ fineTuningJob(id: "{job_id}") {{ status fineTunedModel progress }} }}',
                          None, token, tenant=tenant)
    name = done["data"]["fineTuningJob"]["fineTunedModel"]
    metrics = await http_gql(platform, f'{{ fineTuningMetrics(id: "{job_id}") {{ step epoch loss learningRate }} }}',
                             None, token, tenant=tenant)
    points = metrics["data"]["fineTuningMetrics"]
    assert [p["step"] for p in points] == list(range(1, 21)) and points[-1]["epoch"] == 2.0
    assert name.startswith("ft::") and name.endswith(":sum") and done["data"]["fineTuningJob"]["progress"] == 1.0

    # registered, granted to the channel, deployed automatically: chat with it through the gateway
    client = openai.AsyncOpenAI(api_key=key, base_url=platform.base_url + "/v1", max_retries=0)
    for _ in range(600):
        if name in [m.id for m in (await client.models.list()).data]:
            break
        await asyncio.sleep(0.2)
    answer = await client.chat.completions.create(model=name, max_tokens=8,
                                                  messages=[{"role": "user", "content": "What is 3 plus 3?"}])
    assert answer.choices[0].message.role == "assistant" and answer.usage and answer.usage.completion_tokens > 0


async def _setup(platform: LiveServer) -> dict[str, str]:
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    created = await http_gql(platform, 'mutation($c: String!) { createTenant(input: {name: "F", code: $c}) '
                             "{ tenant { id } } }", {"c": unique("ff")}, token)
    tenant = created["data"]["createTenant"]["tenant"]["id"]
    base = await http_gql(platform, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                          {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                          token)
    body = "\n".join(json.dumps(x) for x in CHAT).encode()
    async with httpx.AsyncClient() as h:
        r = await h.post(platform.base_url + "/files", params={"purpose": "fine-tune", "filename": "t.jsonl"},
                         content=body, headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant})
    return {"token": token, "tenant": tenant, "base": base["data"]["createModel"]["model"]["id"],
            "file": r.json()["file"]["id"]}


async def _long_job(platform: LiveServer, s: dict[str, str]) -> str:
    job = await http_gql(platform, "mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) "
                                   "{ job { id } errors { message } } }",
                         {"i": {"baseModelId": s["base"], "fileId": s["file"], "epochs": 100, "trainBatchSize": 1,
                                "modelMaxLength": 128, "lora": True}}, s["token"], tenant=s["tenant"])
    return str(job["data"]["createFineTuningJob"]["job"]["id"])


async def _job(platform: LiveServer, s: dict[str, str], job_id: str) -> dict:
    body = await http_gql(platform, f'{{ fineTuningJob(id: "{job_id}") {{ status errorMessage logCursor }} }}', None,
                          s["token"], tenant=s["tenant"])
    return dict(body["data"]["fineTuningJob"])


async def _until(platform: LiveServer, s: dict[str, str], job_id: str, check) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(600):
        job = await _job(platform, s, job_id)
        if check(job):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def _training_group(platform: LiveServer, job_id: str) -> list[int]:
    from tests.e2e.test_deploy_local import group_members

    state = platform.log_path.parent / "runtime" / "local" / f"aigc-ft-{job_id}" / "state.json"
    shell = json.loads(state.read_text())["replicas"][0]["pid"]
    return [shell, *[p for p in group_members(shell) if p != shell]]


async def test_kill_cancel_and_redis_restart(platform: LiveServer, redis_server: RedisServer) -> None:
    import os
    import signal

    s = await _setup(platform)
    # a killed training process: FAILED with the reason, logs kept
    killed = await _long_job(platform, s)
    await _until(platform, s, killed, lambda j: j["status"] == "RUNNING" and j["logCursor"] >= 3)
    _shell, *children = _training_group(platform, killed)
    os.kill(children[0], signal.SIGKILL)
    failed = await _until(platform, s, killed, lambda j: j["status"] == "FAILED")
    assert "137" in failed["errorMessage"]
    kept = await http_gql(platform, f'{{ fineTuningLogs(id: "{killed}") {{ seq }} }}', None, s["token"],
                          tenant=s["tenant"])
    assert len(kept["data"]["fineTuningLogs"]) >= 3
    # retry: a new run (its own log from seq 1), really started again
    retried = await http_gql(platform, f'mutation {{ retryFineTuningJob(id: "{killed}") '
                                       "{ job { status logCursor } } }", None, s["token"], tenant=s["tenant"])
    assert retried["data"]["retryFineTuningJob"]["job"] == {"status": "WAITING", "logCursor": 0}
    await _until(platform, s, killed, lambda j: j["status"] == "RUNNING" and j["logCursor"] >= 3)
    await http_gql(platform, f'mutation {{ cancelFineTuningJob(id: "{killed}") {{ job {{ status }} }} }}', None,
                   s["token"], tenant=s["tenant"])

    # cancel mid-run: nothing left behind
    cancelled = await _long_job(platform, s)
    await _until(platform, s, cancelled, lambda j: j["status"] == "RUNNING" and j["logCursor"] >= 3)
    group = _training_group(platform, cancelled)
    body = await http_gql(platform, f'mutation {{ cancelFineTuningJob(id: "{cancelled}") {{ job {{ status }} }} }}',
                          None, s["token"], tenant=s["tenant"])
    assert body["data"]["cancelFineTuningJob"]["job"]["status"] == "CANCELLED"
    from tests.e2e.test_deploy_local import group_members

    for _ in range(100):
        if not group_members(group[0]):
            break
        await asyncio.sleep(0.1)
    assert group_members(group[0]) == [], "training processes left behind after cancel"

    # Redis restarts during a run: a re-subscribed client resumes from its cursor with no line lost
    job_id = await _long_job(platform, s)
    seen: list[int] = []
    params = {"Authorization": f"Bearer {s['token']}", "X-Tenant-Id": s["tenant"]}
    async with ws_session(platform, params) as ws:
        await expect_ack(ws)
        await subscribe(ws, f'subscription {{ fineTuneLogs(jobId: "{job_id}") {{ status lines {{ seq }} }} }}')
        while len(seen) < 5:
            message = await recv(ws, timeout=60)
            seen += [x["seq"] for x in message["payload"]["data"]["fineTuneLogs"]["lines"]]
    redis_server.restart()
    await asyncio.sleep(1.0)
    await http_gql(platform, f'mutation {{ cancelFineTuningJob(id: "{job_id}") {{ job {{ status }} }} }}', None,
                   s["token"], tenant=s["tenant"])  # end the run so the stream ends
    await _until(platform, s, job_id, lambda j: j["status"] == "CANCELLED")
    async with ws_session(platform, params) as ws:
        await expect_ack(ws)
        await subscribe(ws, f'subscription {{ fineTuneLogs(jobId: "{job_id}", after: {seen[-1]}) '
                            "{ status lines { seq } } }")
        while True:
            message = await recv(ws, timeout=60)
            if message["type"] == "complete":
                break
            seen += [x["seq"] for x in message["payload"]["data"]["fineTuneLogs"]["lines"]]
    final = await _job(platform, s, job_id)
    assert seen == list(range(1, final["logCursor"] + 1))  # resumed at the cursor: no gap, no duplicate
