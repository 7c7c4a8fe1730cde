"""MCP tools against a real MCP server (the SDK's, over Streamable HTTP on loopback), through the egress guard."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import mcp.types as types
import pytest
from mcp.server import Server

from aigc_admin.adapters.mcp_tools import call_mcp_tool, list_mcp_tools
from aigc_admin.adapters.net import free_port
from aigc_admin.domain.assistants.entities import AssistantErrorCode, McpServer
from aigc_admin.domain.egress import EgressPolicy, parse_networks
from aigc_admin.domain.errors import DomainError
from tests.support.mcp_server import McpTestServer

LOOPBACK = EgressPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
TOKEN = "tok-5ecret-value"


@pytest.fixture(scope="module")
def open_server() -> Iterator[McpTestServer]:
    with McpTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def token_server() -> Iterator[McpTestServer]:
    with McpTestServer(token=TOKEN) as server:
        yield server


def mcp(url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None) -> McpServer:
    return McpServer(id=1, tenant_id=1, name="test", url=url, headers=headers or {}, timeout_seconds=timeout)


async def test_lists_the_tools_with_their_schemas(open_server: McpTestServer) -> None:
    tools = {t.name: t for t in await list_mcp_tools(mcp(open_server.url), LOOPBACK)}
    assert set(tools) == {"add", "echo", "slow", "fail", "big"}
    add = tools["add"]
    assert add.description == "Add two integers."
    assert add.input_schema["type"] == "object"
    assert add.input_schema["properties"]["a"]["type"] == "integer"
    assert add.input_schema["properties"]["b"]["type"] == "integer"
    assert sorted(add.input_schema["required"]) == ["a", "b"]


async def test_calls_tools(open_server: McpTestServer) -> None:
    added = await call_mcp_tool(mcp(open_server.url), LOOPBACK, "add", {"a": 2, "b": 3})
    assert (added.ok, added.content, added.error_code) == (True, "5", "")
    assert added.duration_ms > 0
    echoed = await call_mcp_tool(mcp(open_server.url), LOOPBACK, "echo", {"text": "héllo\nworld"})
    assert (echoed.ok, echoed.content) == (True, "héllo\nworld")


async def test_a_failing_tool_is_a_tool_error(open_server: McpTestServer) -> None:
    outcome = await call_mcp_tool(mcp(open_server.url), LOOPBACK, "fail", {"message": "the disk is on fire"})
    assert (outcome.ok, outcome.error_code) == (False, "TOOL_ERROR")
    assert "the disk is on fire" in outcome.content


async def test_a_slow_tool_times_out(open_server: McpTestServer) -> None:
    started = time.monotonic()
    outcome = await call_mcp_tool(mcp(open_server.url, timeout=1), LOOPBACK, "slow", {"seconds": 5})
    assert time.monotonic() - started < 3
    assert (outcome.ok, outcome.error_code) == (False, "TIMEOUT")
    assert "did not answer within 1 s" in outcome.content


async def test_a_large_answer_is_truncated(open_server: McpTestServer) -> None:
    outcome = await call_mcp_tool(mcp(open_server.url), LOOPBACK, "big", {"n": 200_000})
    assert outcome.ok
    assert outcome.content.endswith("… [truncated]")
    assert outcome.content.startswith("x" * 1000)
    assert len(outcome.content.encode()) <= 65_536 + len(" … [truncated]".encode())
    small = await call_mcp_tool(mcp(open_server.url), LOOPBACK, "echo", {"text": "é" * 10}, max_bytes=5)
    assert small.content == "éé … [truncated]"  # cut on a character boundary


async def test_the_token_is_sent_and_never_shown(token_server: McpTestServer) -> None:
    with pytest.raises(DomainError) as refused:
        await list_mcp_tools(mcp(token_server.url), LOOPBACK)
    assert (refused.value.code, refused.value.field) == (AssistantErrorCode.MCP_UNAVAILABLE, "url")
    assert "401" in refused.value.message

    wrong = mcp(token_server.url, headers={"Authorization": "Bearer wrong-" + TOKEN})
    with pytest.raises(DomainError) as refused:
        await list_mcp_tools(wrong, LOOPBACK)
    assert "401" in refused.value.message and TOKEN not in refused.value.message
    outcome = await call_mcp_tool(wrong, LOOPBACK, "add", {"a": 1, "b": 1})
    assert (outcome.ok, outcome.error_code) == (False, "UNAVAILABLE")
    assert "401" in outcome.content and TOKEN not in outcome.content

    good = mcp(token_server.url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert {t.name for t in await list_mcp_tools(good, LOOPBACK)} >= {"add", "echo"}
    assert (await call_mcp_tool(good, LOOPBACK, "add", {"a": 1, "b": 1})).content == "2"


async def test_a_server_that_is_down_is_unavailable() -> None:
    down = mcp(f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(DomainError) as refused:
        await list_mcp_tools(down, LOOPBACK)
    assert refused.value.code == AssistantErrorCode.MCP_UNAVAILABLE
    assert "cannot connect" in refused.value.message
    outcome = await call_mcp_tool(down, LOOPBACK, "add", {"a": 1, "b": 1})
    assert (outcome.ok, outcome.error_code) == (False, "UNAVAILABLE")


async def test_a_path_that_is_not_mcp_is_unavailable(open_server: McpTestServer) -> None:
    wrong = mcp(open_server.url.replace("/mcp", "/nope"))
    with pytest.raises(DomainError) as refused:
        await list_mcp_tools(wrong, LOOPBACK)
    assert "404" in refused.value.message


async def test_loopback_is_refused_by_default_and_nothing_is_sent(open_server: McpTestServer) -> None:
    before = open_server.request_count
    outcome = await call_mcp_tool(mcp(open_server.url), EgressPolicy(), "add", {"a": 1, "b": 1})
    assert (outcome.ok, outcome.error_code) == (False, "ADDRESS_NOT_ALLOWED")
    assert "loopback" in outcome.content
    with pytest.raises(DomainError) as refused:
        await list_mcp_tools(mcp(open_server.url), EgressPolicy())
    assert refused.value.code == AssistantErrorCode.MCP_UNAVAILABLE
    assert "egress guard refused" in refused.value.message and "loopback" in refused.value.message
    assert open_server.request_count == before


def paged_server(total: int, page_size: int) -> Server[Any]:
    """A low-level SDK server listing ``total`` tools, ``page_size`` a page, whose tools answer with an image,
    or with structured content only."""

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        start = int(params.cursor) if params and params.cursor else 0
        end = min(start + page_size, total)
        tools = [types.Tool(name=f"t{i}", input_schema={"type": "object"}) for i in range(start, end)]
        return types.ListToolsResult(tools=tools, next_cursor=str(end) if end < total else None)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "picture":
            image = types.ImageContent(type="image", data=base64.b64encode(b"\x89PNG" * 300).decode(),
                                       mime_type="image/png")
            return types.CallToolResult(content=[types.TextContent(type="text", text="a chart"), image])
        return types.CallToolResult(content=[], structured_content={"rows": [1, 2], "name": "é"})

    return Server("paged", on_list_tools=list_tools, on_call_tool=call_tool)


async def test_pages_are_followed_up_to_the_cap() -> None:
    with McpTestServer(sdk_server=paged_server(250, 100)) as server:
        tools = await list_mcp_tools(mcp(server.url), LOOPBACK)
        assert [t.name for t in tools] == [f"t{i}" for i in range(250)]
        assert tools[0].description == "" and tools[0].input_schema == {"type": "object"}
    with McpTestServer(sdk_server=paged_server(10_000, 150)) as server:
        assert len(await list_mcp_tools(mcp(server.url), LOOPBACK)) == 500


async def test_non_text_content_is_summarised() -> None:
    with McpTestServer(sdk_server=paged_server(2, 2)) as server:
        picture = await call_mcp_tool(mcp(server.url), LOOPBACK, "picture", {})
        assert (picture.ok, picture.content) == (True, "a chart\n[image image/png, 1200 bytes]")
        structured = await call_mcp_tool(mcp(server.url), LOOPBACK, "table", {})
        assert (structured.ok, structured.content) == (True, '{"rows": [1, 2], "name": "é"}')
