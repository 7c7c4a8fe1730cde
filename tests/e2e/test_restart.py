"""Stop and start `aigc-admin up` as a user would, with a deployed model and a training job running: the
deployment comes back by itself and keeps answering through the gateway; the training job ends FAILED with a
reason that says the platform restarted (never stuck RUNNING)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import unique
from tests.support.engine import tiny_model_path
from tests.support.up import Up

CHAT = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(20)]


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


async def _chat(base: str, key: str, model: str) -> int:
    async with httpx.AsyncClient() as c:
        r = await c.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=60,
                         json={"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]})
    return r.status_code


async def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


async def test_a_deployment_survives_a_restart_and_a_running_training_ends_clearly(storage: Path) -> None:
    first = Up(storage)
    try:
        await first.ready()
        assert first.password, first.output()[-2000:]
        token = (await first.gql('mutation($p: String!) { login(input: {username: "admin", password: $p}) '
                                 "{ token } }", {"p": first.password}))["login"]["token"]
        tenant = (await first.gql('mutation { createTenant(input: {name: "R", code: "restart"}) { tenant { id } } }',
                                  token=token))["createTenant"]["tenant"]["id"]
        name = unique("tiny")
        model_id = (await first.gql("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                                    {"i": {"name": name, "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                                    token))["createModel"]["model"]["id"]
        deployment = (await first.gql("mutation($i: DeployModelInput!) { deployModel(input: $i) "
                                      "{ deployment { id } } }", {"i": {"modelId": model_id}}, token,
                                      tenant))["deployModel"]["deployment"]["id"]
        status = f'{{ deployment(id: "{deployment}") {{ status reason restarts }} }}'

        async def running() -> bool:
            d = (await first.gql(status, token=token, tenant=tenant))["deployment"]
            assert d["status"] != "FAILED", d
            return bool(d["status"] == "RUNNING")

        await _until(running, 150, "the deployment RUNNING")
        key = (await first.gql("mutation($i: ChannelInput!) { createChannel(input: $i) { key } }",
                               {"i": {"modelIds": [model_id]}}, token, tenant))["createChannel"]["key"]
        await _until(lambda: _ok(first.base, key, name), 30, "an answer through the gateway")

        # a training job that runs long enough to be caught by the stop
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{first.base}/files", params={"purpose": "fine-tune", "filename": "t.jsonl"},
                             content="\n".join(json.dumps(x) for x in CHAT).encode(),
                             headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant})
        file_id = r.json()["file"]["id"]
        job = (await first.gql("mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) "
                               "{ job { id } } }", {"i": {"baseModelId": model_id, "fileId": file_id, "epochs": 100,
                                                          "modelMaxLength": 128}}, token, tenant))
        job_id = job["createFineTuningJob"]["job"]["id"]
        job_status = f'{{ fineTuningJob(id: "{job_id}") {{ status errorMessage }} }}'

        async def training() -> bool:
            j = (await first.gql(job_status, token=token, tenant=tenant))["fineTuningJob"]
            assert j["status"] in ("WAITING", "RUNNING"), j
            return bool(j["status"] == "RUNNING")

        await _until(training, 60, "the training job RUNNING")
    finally:
        first.stop()
    workers = subprocess.run(["pgrep", "-f", f"model-names {name}|{storage}"], capture_output=True, text=True)
    assert workers.stdout.strip() == "", "processes of the first `up` left running"

    second = Up(storage)
    try:
        await second.ready()
        assert second.password is None  # the same data: no new administrator
        # nobody redeploys: the deployment's desired state brings its workers back
        await _until(lambda: _ok(second.base, key, name), 150, "an answer through the gateway after the restart")
        d = (await second.gql(status, token=token, tenant=tenant))["deployment"]
        assert d["status"] == "RUNNING" and d["restarts"] == 1, d
        j = (await second.gql(job_status, token=token, tenant=tenant))["fineTuningJob"]
        assert j["status"] == "FAILED" and "platform restarted" in j["errorMessage"], j
    finally:
        second.stop()


async def _ok(base: str, key: str, model: str) -> bool:
    return await _chat(base, key, model) == 200
