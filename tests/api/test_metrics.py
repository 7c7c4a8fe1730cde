"""``/metrics`` after real gateway traffic (a scripted upstream, plain and streamed answers, a refusal by the
channel's limits), parsed with Prometheus' own text parser: each family present with the counts the traffic
made; the platform's state as gauges; access restricted to loopback or the bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import ApiHarness, unique
from tests.support.asgi_stub import serving
from tests.support.tool_upstream import tool_upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(tool_upstream) as url:
        yield url


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api: ApiHarness, headers: dict[str, str] | None = None) -> httpx.Response:
    return await api.client.get("/metrics", headers=headers or {})


async def test_metrics_count_gateway_traffic_and_show_the_platform_state(api: ApiHarness, upstream: str) -> None:
    tenant = await api.create_tenant(unique("mt"))
    name = unique("metered")
    made = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}},
                        token=api.admin_token)
    model_id = made["createModel"]["model"]["id"]
    channel = await api.ok("mutation($i: ChannelInput!) { createChannel(input: $i) { key } }",
                           {"i": {"modelIds": [model_id], "rpmLimit": 3}}, token=api.admin_token, tenant=tenant)
    key = channel["createChannel"]["key"]
    await api.services().gateway.routes.refresh()
    before = samples((await scrape(api)).text)

    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": name, "messages": [{"role": "user", "content": "hello there"}]}
    plain = await api.client.post("/v1/chat/completions", json=body, headers=auth)
    assert plain.status_code == 200, plain.text
    streamed = await api.client.post("/v1/chat/completions", json={**body, "stream": True}, headers=auth)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    unknown = await api.client.post("/v1/chat/completions", json={**body, "model": "no-such"}, headers=auth)
    assert unknown.status_code == 404
    await api.client.post("/v1/chat/completions", json=body, headers=auth)  # the third of 3 per minute
    limited = await api.client.post("/v1/chat/completions", json=body, headers=auth)
    assert limited.status_code == 429

    response = await scrape(api)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def delta(metric: str, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    ok = {"operation": "chat", "model": name, "status": "200", "error_type": ""}
    assert delta("aigc_gateway_requests_total", **ok) == 3  # two plain, one streamed
    assert delta("aigc_gateway_requests_total", operation="chat", model="", status="404",
                 error_type="model_not_found") == 1  # an unknown model is not a label value
    assert delta("aigc_gateway_requests_total", **{**ok, "status": "429", "error_type": "rate_limit_exceeded"}) == 1
    assert delta("aigc_gateway_limit_refusals_total", reason="rpm") == 1
    assert delta("aigc_gateway_overhead_seconds_count", operation="chat") == 5
    assert delta("aigc_gateway_upstream_seconds_count", operation="chat") == 3
    assert delta("aigc_gateway_time_to_first_token_seconds_count", model=name) == 1
    # the scripted upstream reports 7 prompt tokens per message and 4 completion tokens per answer
    assert delta("aigc_gateway_tokens_total", model=name, type="input", channel="") == 3 * 7
    assert delta("aigc_gateway_tokens_total", model=name, type="output", channel="") == 3 * 4
    assert value(after, "aigc_events_published_total", kind="audit") >= 2  # createModel and createChannel at least
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"aigc_deployments", "aigc_finetune_jobs", "aigc_evaluations", "aigc_rq_queue_jobs",
            "aigc_ws_subscriptions", "aigc_ws_connections", "aigc_rq_job_duration_seconds"} <= names
    assert value(after, "aigc_rq_queue_jobs", queue="default", state="queued") >= 0


async def test_metrics_are_restricted(api: ApiHarness) -> None:
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app, client=("10.1.2.3", 4000)),
                               base_url="http://test")
    async with remote:
        refused = await remote.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    platform = api.services()
    settings = platform.settings
    platform.settings = settings.model_copy(update={"metrics_token": "scrape-me"})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app, client=("10.1.2.3", 4000)),
                                     base_url="http://test") as remote:
            assert (await remote.get("/metrics")).status_code == 401
            assert (await remote.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            allowed = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert allowed.status_code == 200 and "aigc_gateway_requests_total" in allowed.text
        # with a token, loopback needs it too
        assert (await scrape(api)).status_code == 401
    finally:
        platform.settings = settings



@pytest.fixture(scope="module")
def node(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An API and an RQ worker sharing metrics.dir, as under `aigc-admin up`."""
    from tests.support.live import live_server

    storage = tmp_path_factory.mktemp("node")
    with live_server(storage, redis_server.url, extra={"metrics.dir": str(storage / "metrics")},
                     worker=True) as server:
        yield server


async def test_one_scrape_shows_the_processes_of_a_node(node: Any) -> None:
    """The worker's job durations are in the API's scrape."""
    import asyncio

    from tests.support.live import ADMIN_PASSWORD, http_gql, http_login

    token = await http_login(node, "admin", ADMIN_PASSWORD)
    made = await http_gql(node, 'mutation($c: String!) { createTenant(input: {name: "N", code: $c}) '
                          "{ tenant { id } } }", {"c": unique("node")}, token)
    tenant = made["data"]["createTenant"]["tenant"]["id"]
    await http_gql(node, 'mutation($id: ID!) { deleteTenant(id: $id) { ok } }', {"id": tenant}, token)
    async with httpx.AsyncClient(base_url=node.base_url) as h:
        for _ in range(100):  # the worker runs the tenant's deletion job
            found = samples((await h.get("/metrics")).text)
            if value(found, "aigc_rq_job_duration_seconds_count", task="tenants.delete", status="finished"):
                break
            await asyncio.sleep(0.2)
    assert value(found, "aigc_rq_job_duration_seconds_count", task="tenants.delete", status="finished") == 1, \
        sorted(k[0] for k in found)
    assert value(found, "aigc_events_published_total", kind="audit") >= 2
