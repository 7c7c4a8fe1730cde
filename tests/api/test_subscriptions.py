"""GraphQL subscriptions over a real WebSocket (graphql-transport-ws) against a real `aigc-admin start` process."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.api import ADMIN_PASSWORD, USER_PASSWORD, unique
from tests.support.live import (
    AUDIT_SUBSCRIPTION,
    CREATE_ACCOUNT,
    LOGIN,
    LiveServer,
    complete,
    error_codes,
    expect_ack,
    first_error,
    http_gql,
    http_login,
    live_server,
    recv,
    subscribe,
    ws_session,
)
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def live(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-server"), redis_server.url) as server:
        yield server


@pytest.fixture(scope="module")
async def admin_token(live: LiveServer) -> str:
    return await http_login(live, "admin", ADMIN_PASSWORD)


# --- tests ------------------------------------------------------------------------------------
async def test_admin_receives_audit_events_with_secrets_masked(live: LiveServer, admin_token: str) -> None:
    async with ws_session(live, {"Authorization": f"Bearer {admin_token}"}) as ws:
        await expect_ack(ws)
        op_id = await subscribe(ws, AUDIT_SUBSCRIPTION)
        try:
            await _wait_until_subscribed(live, ws, op_id)

            secret = f"S3cret-{uuid.uuid4().hex}"
            username = unique("sub")
            created = await http_gql(live, CREATE_ACCOUNT, {"i": {"username": username, "password": secret}},
                                     token=admin_token)
            assert created["data"]["createAccount"]["errors"] == [], created
            await http_gql(live, LOGIN, {"u": username, "p": secret})

            events = await _events_until(ws, op_id, {"createAccount", "login"})
            create_event, login_event = events["createAccount"], events["login"]
            assert create_event["operator"] == "admin"
            assert create_event["success"] is True
            assert create_event["variables"]["createAccount"]["input"]["username"] == username
            assert create_event["variables"]["createAccount"]["input"]["password"] == "***"
            assert login_event["operator"] == username
            assert login_event["variables"]["login"]["input"]["password"] == "***"
            assert secret not in json.dumps(events)
        finally:
            await complete(ws, op_id)


async def test_complete_stops_the_subscription(live: LiveServer, admin_token: str) -> None:
    async with ws_session(live, {"Authorization": f"Bearer {admin_token}"}) as ws:
        await expect_ack(ws)
        first = await subscribe(ws, AUDIT_SUBSCRIPTION)
        await _wait_until_subscribed(live, ws, first)
        await complete(ws, first)
        # The server handles a connection's messages in order: once the second subscription gets a probe
        # sent after the complete, the first one must not have received that probe.
        second = await subscribe(ws, AUDIT_SUBSCRIPTION)
        try:
            others = await _wait_until_subscribed(live, ws, second)
            await ws.send(json.dumps({"type": "ping"}))
            while (message := await recv(ws))["type"] != "pong":
                others.append(message)
            late = [m for m in others if m.get("id") == first]
            probes_after_complete = {m["payload"]["data"]["auditLogAdded"]["operator"] for m in late}
            assert not any(p.startswith(f"probe-{second[:8]}") for p in probes_after_complete), late
        finally:
            await complete(ws, second)


async def test_non_admin_subscription_is_forbidden(live: LiveServer, admin_token: str) -> None:
    username = unique("member")
    created = await http_gql(live, CREATE_ACCOUNT, {"i": {"username": username, "password": USER_PASSWORD}},
                             token=admin_token)
    assert created["data"]["createAccount"]["errors"] == [], created
    token = await http_login(live, username, USER_PASSWORD)
    async with ws_session(live, {"Authorization": f"Bearer {token}"}) as ws:
        await expect_ack(ws)
        op_id = await subscribe(ws, AUDIT_SUBSCRIPTION)
        try:
            message = await first_error(ws, op_id)
            assert error_codes(message) == ["FORBIDDEN"], message
        finally:
            await complete(ws, op_id)


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"])
async def test_bad_token_in_connection_init_is_rejected_with_4403(live: LiveServer, authorization: str) -> None:
    async with ws_session(live, {"Authorization": authorization}) as ws:
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 4403


async def test_anonymous_subscribe_is_unauthenticated(live: LiveServer) -> None:
    async with ws_session(live) as ws:
        await expect_ack(ws)
        op_id = await subscribe(ws, AUDIT_SUBSCRIPTION)
        try:
            message = await first_error(ws, op_id)
            assert error_codes(message) == ["UNAUTHENTICATED"], message
        finally:
            await complete(ws, op_id)


# --- helpers that need the server ---------------------------------------------------------------
async def _wait_until_subscribed(server: LiveServer, ws: ClientConnection, op_id: str,
                                 attempts: int = 50) -> list[dict[str, Any]]:
    """The server subscribes to Redis asynchronously: send probe logins until one of them reaches ``op_id``.

    Returns the messages of other operations seen meanwhile.
    """
    others: list[dict[str, Any]] = []
    for _ in range(attempts):
        probe = unique(f"probe-{op_id[:8]}")
        await http_gql(server, LOGIN, {"u": probe, "p": "wrong-password"})
        with contextlib.suppress(TimeoutError):
            while True:
                message = await recv(ws, timeout=0.5)
                if message.get("id") != op_id:
                    others.append(message)
                    continue
                assert message["type"] == "next", message
                if message["payload"]["data"]["auditLogAdded"]["operator"] == probe:
                    return others
    raise AssertionError("the subscription never delivered a probe event")


async def _events_until(ws: ClientConnection, op_id: str, operations: set[str]) -> dict[str, dict[str, Any]]:
    """Read events of ``op_id`` until one of each operation arrived (other operations are skipped)."""
    found: dict[str, dict[str, Any]] = {}
    while set(found) != operations:
        message = await recv(ws)
        assert message.get("id") == op_id and message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event = message["payload"]["data"]["auditLogAdded"]
        if event["operation"] in operations:
            found.setdefault(event["operation"], event)
    return found


async def test_a_tenant_that_does_not_exist_is_refused_on_connection_init(live: LiveServer,
                                                                          admin_token: str) -> None:
    """Even a platform administrator (who may act in every tenant) cannot name a tenant that is not there."""
    async with ws_session(live, {"Authorization": f"Bearer {admin_token}", "X-Tenant-Id": "987654321"}) as ws:
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 4403  # graphql-transport-ws closes "Forbidden"; the HTTP refusal names the reason


async def test_a_websocket_message_over_the_limit_closes_the_connection(live: LiveServer, admin_token: str) -> None:
    async with ws_session(live, {"Authorization": f"Bearer {admin_token}"}) as ws:
        await expect_ack(ws)
        huge = json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }" + " " * 2_000_000}})
        with pytest.raises(ConnectionClosed):  # server.ws.max.message.bytes is 1 MiB by default
            await ws.send(huge)  # the server may close while this is still being sent
            await recv(ws)
        assert ws.close_code == 1009  # message too big
