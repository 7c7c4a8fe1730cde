"""The gateway with the official openai SDK, backed by a real FastChat worker on the tiny model:
models, chat (stream and not), completions, embeddings; and every error a key can meet."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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

CREATE_CHANNEL = ("mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id } "
                  "errors { code message } } }")


@pytest.fixture(scope="module")
def platform(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = managed_fastchat(**{"gateway.routes.refresh": 0.5, "gateway.usage.flush": 0.5})
    with live_server(tmp_path_factory.mktemp("gateway"), redis_server.url, extra=extra, worker=True) as server:
        yield server


@pytest.fixture(scope="module")
async def deployed(platform: LiveServer) -> dict[str, str]:
    """A tenant, a maintainer token, the tiny model deployed and RUNNING, and a second (undeployed) model."""
    token = await http_login(platform, "admin", ADMIN_PASSWORD)
    tenant = (await http_gql(platform, "mutation($c: String!) { createTenant(input: {name: \"G\", code: $c}) "
                             "{ tenant { id } } }", {"c": unique("gw")}, token))["data"]["createTenant"]["tenant"]["id"]
    name, idle = unique("tiny"), unique("idle")
    ids = {}
    for model in (name, idle):
        created = await http_gql(platform, "mutation($i: CreateModelInput!) { createModel(input: $i) "
                                 "{ model { id } } }",
                                 {"i": {"name": model, "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                                 token)
        ids[model] = created["data"]["createModel"]["model"]["id"]
    dep = await http_gql(platform, "mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id } } }",
                         {"i": {"modelId": ids[name]}}, token, tenant=tenant)
    dep_id = dep["data"]["deployModel"]["deployment"]["id"]
    for _ in range(600):
        status = await http_gql(platform, f'{{ deployment(id: "{dep_id}") {{ status reason }} }}', None, token,
                                tenant=tenant)
        if status["data"]["deployment"]["status"] in ("RUNNING", "FAILED"):
            break
        await asyncio.sleep(0.2)
    assert status["data"]["deployment"]["status"] == "RUNNING", status
    return {"token": token, "tenant": tenant, "model": name, "idle": idle, "model_id": ids[name],
            "idle_id": ids[idle]}


async def new_key(server: LiveServer, d: dict[str, str], **fields: object) -> tuple[str, str]:
    body = await http_gql(server, CREATE_CHANNEL, {"i": {"modelIds": [d["model_id"]], **fields}}, d["token"],
                          tenant=d["tenant"])
    created = body["data"]["createChannel"]
    assert not created["errors"], created
    return created["key"], created["channel"]["id"]


def client(server: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)


async def until_routed(c: openai.AsyncOpenAI, model: str) -> None:
    for _ in range(100):
        if model in [m.id for m in (await c.models.list()).data]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{model} never appeared in /v1/models")


async def test_openai_sdk_models_chat_stream_completions_embeddings(platform: LiveServer,
                                                                    deployed: dict[str, str]) -> None:
    key, channel_id = await new_key(platform, deployed)
    c = client(platform, key)
    await until_routed(c, deployed["model"])
    models = [m.id for m in (await c.models.list()).data]
    assert models == [deployed["model"]]  # only allowed and serving models

    chat = await c.chat.completions.create(model=deployed["model"], max_tokens=8,
                                           messages=[{"role": "user", "content": "Hello"}])
    assert chat.choices[0].message.role == "assistant" and chat.usage and chat.usage.total_tokens > 0

    pieces, finish = [], None
    stream = await c.chat.completions.create(model=deployed["model"], max_tokens=8, stream=True,
                                             messages=[{"role": "user", "content": "Hi"}])
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert finish in ("stop", "length") and len(pieces) >= 2

    completions = 0
    for _ in range(5):  # the tiny random model sometimes samples its end token first: 0 completion tokens
        completions += 1
        text = await c.completions.create(model=deployed["model"], prompt="Once upon", max_tokens=5)
        assert text.choices[0].text is not None and text.usage
        if text.usage.completion_tokens > 0:
            break
    assert text.usage.completion_tokens > 0
    emb = await c.embeddings.create(model=deployed["model"], input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0

    await asyncio.sleep(1.5)  # usage is written in batches (gateway.usage.flush = 0.5 s)
    usage = await http_gql(platform, f'{{ channelUsage(channelId: "{channel_id}") {{ model requests '
                                     "promptTokens completionTokens } }", None, deployed["token"],
                           tenant=deployed["tenant"])
    rows = usage["data"]["channelUsage"]
    assert rows and rows[0]["model"] == deployed["model"] and rows[0]["requests"] == 3 + completions


async def test_errors_in_openai_shape(platform: LiveServer, deployed: dict[str, str]) -> None:
    key, channel_id = await new_key(platform, deployed)
    c = client(platform, key)
    await until_routed(c, deployed["model"])
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.AuthenticationError):
        await client(platform, "sk-" + "x" * 48).chat.completions.create(model=deployed["model"], messages=messages)
    with pytest.raises(openai.PermissionDeniedError):  # granted to the tenant, not to this key
        await c.chat.completions.create(model=deployed["idle"], messages=messages)
    with pytest.raises(openai.NotFoundError):
        await c.chat.completions.create(model="no-such-model", messages=messages)
    async with httpx.AsyncClient() as h:
        r = await h.post(platform.base_url + "/v1/chat/completions", content=b"{not json",
                         headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"

    # a key may reach an allowed model that is not deployed: 404 too
    both, _ = await new_key(platform, deployed, modelIds=[deployed["model_id"], deployed["idle_id"]])
    with pytest.raises(openai.NotFoundError):
        await client(platform, both).chat.completions.create(model=deployed["idle"], messages=messages)

    # rotate: the old key stops working at once
    rotated = await http_gql(platform, f'mutation {{ rotateChannelKey(id: "{channel_id}") {{ key }} }}', None,
                             deployed["token"], tenant=deployed["tenant"])
    new = rotated["data"]["rotateChannelKey"]["key"]
    with pytest.raises(openai.AuthenticationError):
        await c.models.list()
    assert (await client(platform, new).models.list()).data

    # disabled and expired keys
    disabled, disabled_id = await new_key(platform, deployed)
    await http_gql(platform, "mutation($i: UpdateChannelInput!) { updateChannel(input: $i) { errors { code } } }",
                   {"i": {"id": disabled_id, "enabled": False}}, deployed["token"], tenant=deployed["tenant"])
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        await client(platform, disabled).models.list()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await http_gql(platform, "mutation($i: ChannelInput!) { createChannel(input: $i) { key errors "
                             "{ field code } } }", {"i": {"expiresAt": past}}, deployed["token"],
                             tenant=deployed["tenant"])
    assert refused["data"]["createChannel"] == {"key": None, "errors": [{"field": "expiresAt", "code": "INVALID"}]}
    expired, expired_id = await new_key(platform, deployed)  # a key dead on arrival is refused; expire one later
    await http_gql(platform, "mutation($i: UpdateChannelInput!) { updateChannel(input: $i) { errors { code } } }",
                   {"i": {"id": expired_id, "expiresAt": past}}, deployed["token"], tenant=deployed["tenant"])
    with pytest.raises(openai.AuthenticationError, match="expired"):
        await client(platform, expired).models.list()


async def test_quota_and_rate_limits(platform: LiveServer, deployed: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "hi"}]
    limited, _ = await new_key(platform, deployed, rpmLimit=2)
    c = client(platform, limited)
    await until_routed(c, deployed["model"])
    for _ in range(2):
        await c.chat.completions.create(model=deployed["model"], max_tokens=2, messages=messages)
    async with httpx.AsyncClient() as h:
        r = await h.post(platform.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {limited}"},
                         json={"model": deployed["model"], "messages": messages, "max_tokens": 2})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["error"]["type"] == "rate_limit_error"

    small, _ = await new_key(platform, deployed, quota=300)
    c = client(platform, small)
    outcomes = await asyncio.gather(*(c.chat.completions.create(model=deployed["model"], max_tokens=50,
                                                                messages=messages) for _ in range(12)),
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    served = [o for o in outcomes if not isinstance(o, Exception)]
    assert refused and served and len(refused) + len(served) == 12
    assert sum(o.usage.total_tokens for o in served if o.usage) <= 300  # never overspent


async def test_playground_subscription_streams_through_a_channel(platform: LiveServer,
                                                                 deployed: dict[str, str]) -> None:
    key, channel_id = await new_key(platform, deployed)
    await until_routed(client(platform, key), deployed["model"])
    fields = (f'channelId: "{channel_id}", model: "{deployed["model"]}", maxTokens: 6, '
              'messages: [{role: "user", content: "Hello"}]')
    query = f"subscription {{ chatPlayground(input: {{{fields}}}) {{ content finishReason error }} }}"
    async with ws_session(platform, {"Authorization": f"Bearer {deployed['token']}",
                                     "X-Tenant-Id": deployed["tenant"]}) as ws:
        await expect_ack(ws)
        op = await subscribe(ws, query)
        chunks = []
        while True:
            message = await recv(ws, timeout=60)
            if message["type"] == "complete":
                break
            assert message["type"] == "next" and message["id"] == op, message
            chunks.append(message["payload"]["data"]["chatPlayground"])
    assert chunks and chunks[-1]["finishReason"] in ("stop", "length") and not chunks[-1]["error"]
    # charged to the channel: usage shows up after the next flush
    for _ in range(50):
        usage = await http_gql(platform, f'{{ channelUsage(channelId: "{channel_id}") {{ requests }} }}', None,
                               deployed["token"], tenant=deployed["tenant"])
        if usage["data"]["channelUsage"]:
            break
        await asyncio.sleep(0.1)
    assert usage["data"]["channelUsage"][0]["requests"] == 1
