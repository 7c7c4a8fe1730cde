"""HTTP tools on the network through the egress guard, against a real server on 127.0.0.1: every class of
address is refused before anything is sent (the server counts what reached it), a redirect from an allowed host
to a private one is refused at the hop, the platform's opened networks and the tenant's allow-list open exactly
what they name; timeouts, HTTP errors, size caps and extraction come back as tool failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aigc_admin.adapters.tool_transport import NetworkToolTransport
from aigc_admin.domain.assistants.entities import HttpSpec
from aigc_admin.domain.egress import EgressPolicy, parse_networks
from tests.support.tool_server import ToolServer, tool_server

OPEN_LOOPBACK = EgressPolicy(allowed_networks=parse_networks("127.0.0.1/32"))


@pytest.fixture(scope="module")
def server() -> Iterator[ToolServer]:
    with tool_server() as s:
        yield s


def transport(policy: EgressPolicy = EgressPolicy(), hosts: list[str] | None = None) -> NetworkToolTransport:
    async def hosts_of(tenant_id: int) -> list[str]:
        return hosts or []
    return NetworkToolTransport(policy, hosts_of)


async def call(t: NetworkToolTransport, url: str, arguments: dict[str, Any] | None = None, **spec: Any) -> Any:
    return await t.call_http(HttpSpec(url=url, **spec), arguments or {}, tenant_id=1)


async def test_every_private_form_is_refused_before_any_request(server: ToolServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    t = transport()
    before = len(server.requests)
    cases = {
        f"http://127.0.0.1:{port}/": "ADDRESS_NOT_ALLOWED",
        f"http://localhost:{port}/": "ADDRESS_NOT_ALLOWED",
        f"http://[::1]:{port}/": "ADDRESS_NOT_ALLOWED",
        f"http://0x7f000001:{port}/": "ADDRESS_NOT_ALLOWED",
        f"http://2130706433:{port}/": "ADDRESS_NOT_ALLOWED",
        "http://169.254.169.254/latest/meta-data/": "ADDRESS_NOT_ALLOWED",
        "http://[fd00:ec2::254]/": "ADDRESS_NOT_ALLOWED",
        f"http://[::ffff:127.0.0.1]:{port}/": "ADDRESS_NOT_ALLOWED",
        "http://10.0.0.1/": "ADDRESS_NOT_ALLOWED",
        f"http://0.0.0.0:{port}/": "ADDRESS_NOT_ALLOWED",
        "http://224.0.0.1/": "ADDRESS_NOT_ALLOWED",
        "ftp://example.com/file": "SCHEME_NOT_ALLOWED",
        "file:///etc/passwd": "SCHEME_NOT_ALLOWED",
        "http://no-such-host.invalid/": "UNRESOLVABLE",
    }
    for url, code in cases.items():
        outcome = await call(t, url)
        assert (outcome.ok, outcome.error_code) == (False, code), (url, outcome)
    assert len(server.requests) == before  # nothing reached the server
    await t.aclose()


async def test_a_redirect_to_a_private_address_is_refused_at_the_hop(server: ToolServer) -> None:
    t = transport(OPEN_LOOPBACK)
    for target in ("http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://[::1]/",
                   "gopher://127.0.0.1/"):
        outcome = await call(t, f"{server.url}/redirect", {"to": target})
        assert not outcome.ok and outcome.error_code in ("ADDRESS_NOT_ALLOWED", "SCHEME_NOT_ALLOWED"), outcome
    # a hop that stays where it may go is followed
    outcome = await call(t, f"{server.url}/redirect", {"to": f"{server.url}/weather/oslo"}, extract="/data/city")
    assert (outcome.ok, outcome.content) == (True, "oslo")
    await t.aclose()


async def test_opened_networks_and_the_allow_list_open_exactly_what_they_name(server: ToolServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    assert (await call(transport(OPEN_LOOPBACK), f"{server.url}/weather/rome")).ok
    # the networks open 127.0.0.1 only: ::1 and 127.0.0.2 stay closed
    assert (await call(transport(OPEN_LOOPBACK), f"http://[::1]:{port}/")).error_code == "ADDRESS_NOT_ALLOWED"
    assert (await call(transport(OPEN_LOOPBACK), f"http://127.0.0.2:{port}/")).error_code == "ADDRESS_NOT_ALLOWED"
    # the tenant names localhost: 127.0.0.1 by its address is not on the list
    listed = transport(OPEN_LOOPBACK, ["localhost"])
    ok = await call(listed, f"http://localhost:{port}/weather/x")
    assert ok.ok or ok.error_code == "ADDRESS_NOT_ALLOWED"  # localhost may resolve to ::1 first on some hosts
    assert (await call(listed, f"{server.url}/")).error_code == "HOST_NOT_ALLOWED"
    # an allow-list never opens a private address by itself
    assert (await call(transport(EgressPolicy(), ["localhost"]), f"http://localhost:{port}/")).error_code \
        == "ADDRESS_NOT_ALLOWED"


async def test_requests_failures_caps_and_extraction(server: ToolServer) -> None:
    t = transport(OPEN_LOOPBACK)
    spec: dict[str, Any] = {"method": "POST", "body": '{"q": "{{q}}", "n": "{{n}}"}',
                            "headers": {"X-Plain": "1"}, "secret_headers": {"Authorization": "Bearer hush"},
                            "user_agent": "aigc-tools/1"}
    outcome = await call(t, f"{server.url}/echo/{{city}}", {"city": "a b", "q": "x", "n": 2}, **spec)
    assert outcome.ok, outcome
    seen = server.requests[-1]
    assert (seen["method"], seen["path"]) == ("POST", "/echo/a b")
    assert seen["headers"]["authorization"] == "Bearer hush" and seen["headers"]["user-agent"] == "aigc-tools/1"
    assert seen["headers"]["host"] == server.url.removeprefix("http://")  # the name is kept, the address pinned
    assert '"n": 2' in seen["body"] or '"n":2' in seen["body"]

    slow = await call(t, f"{server.url}/slow", {"s": "2"}, timeout_seconds=0.3)
    assert (slow.ok, slow.error_code) == (False, "TIMEOUT")
    failed = await call(t, f"{server.url}/status/503")
    assert (failed.ok, failed.error_code) == (False, "HTTP_503") and "scripted" in failed.content
    capped = await call(t, f"{server.url}/big", {"n": "50000"}, max_response_bytes=100)
    assert capped.ok and capped.content.endswith("[truncated]") and len(capped.content.encode()) < 130
    extracted = await call(t, f"{server.url}/weather/paris", extract="/data/temperature_c")
    assert (extracted.ok, extracted.content) == (True, "21")
    missing = await call(t, f"{server.url}/weather/paris", extract="/data/wind")
    assert (missing.ok, missing.error_code) == (False, "EXTRACT_FAILED")
    too_big = await call(t, f"{server.url}/big", {"n": str(2 * 1024 * 1024)}, extract="/data")
    assert (too_big.ok, too_big.error_code) == (False, "TOO_LARGE")
    bad_url = await call(t, "http://0177.0.0.1/")
    assert not bad_url.ok and bad_url.error_code in ("INVALID_URL", "ADDRESS_NOT_ALLOWED")
    await t.aclose()
