"""MCP servers over Streamable HTTP: list a server's tools, call one — every request through the egress guard.

The ``mcp`` SDK (2.x) talks HTTP with ``httpx2``. It is handed the guarded client (``guarded_client(module=
httpx2)``) through ``streamable_http_client(url, http_client=...)``, so it creates no client of its own and
every request it sends (the discover probe, initialize, each call, the GET stream and DELETE of a legacy
session, redirect hops) is checked and pinned by the guard. The server's headers (tokens: secrets) ride on that
client and never appear in a message or a log line.

Failures come out of the SDK's anyio task groups wrapped in exception groups, and an HTTP error status is
turned by the SDK into a bare JSON-RPC error ("Server returned an error response"); ``_connect`` unwraps the
groups, remembers the last error status it saw, and turns every failure into one ``_McpFailure`` with a code and
a message a tenant can act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import mcp.types as types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from aigc_admin.adapters.egress import guarded_client
from aigc_admin.domain.assistants.entities import AssistantErrorCode, McpServer, McpToolInfo, ToolOutcome
from aigc_admin.domain.assistants.http_tool import truncate
from aigc_admin.domain.egress import EgressPolicy, EgressRefused
from aigc_admin.domain.errors import DomainError

log = logging.getLogger(__name__)

MAX_TOOLS = 500  # a server listing more is cut here (an assistant could not offer them all to a model anyway)
MAX_PAGES = 100  # tools/list pages followed: a server whose cursor never ends cannot loop us


class _McpFailure(Exception):
    """Why talking to the server failed: ``code`` is a ToolOutcome error code (an egress refusal's code,
    TIMEOUT or UNAVAILABLE), ``message`` is safe to show (no header values)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _timeout(server: McpServer) -> _McpFailure:
    return _McpFailure("TIMEOUT", f"the MCP server did not answer within {server.timeout_seconds:g} s")


def _classify(exc: BaseException, server: McpServer, error_status: httpx2.Response | None) -> _McpFailure:
    """One failure for what went wrong, the most telling cause first (a group may hold several, e.g. the
    refusal and the cancellation it caused elsewhere)."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, EgressRefused):
            return _McpFailure(str(leaf.code), f"the egress guard refused the connection: {leaf.message}")
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return _timeout(server)
    for leaf in leaves:
        if isinstance(leaf, httpx2.ConnectError):
            why = "the TLS handshake failed" if "SSL" in str(leaf) else "connection refused or unreachable"
            return _McpFailure("UNAVAILABLE", f"cannot connect to the MCP server ({why}): {leaf}")
    if error_status is not None:  # the SDK reports an HTTP error as a JSON-RPC error without the status
        status = error_status.status_code
        hint = " (check the server's headers: a missing or wrong token?)" if status in (401, 403) else ""
        return _McpFailure("UNAVAILABLE", f"the MCP server answered HTTP {status} "
                                          f"{error_status.reason_phrase}{hint}".rstrip())
    for leaf in leaves:
        if isinstance(leaf, httpx2.HTTPError):
            return _McpFailure("UNAVAILABLE", f"HTTP error talking to the MCP server: {type(leaf).__name__}: {leaf}")
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            if leaf.code == types.REQUEST_TIMEOUT:
                return _timeout(server)
            return _McpFailure("UNAVAILABLE", f"not an MCP server, or a protocol error: {leaf.message}")
    for leaf in leaves:
        if isinstance(leaf, ValidationError):
            return _McpFailure("UNAVAILABLE", "not an MCP server, or a protocol error: "
                                              "its answer does not follow the MCP schema")
    first = leaves[0]
    return _McpFailure("UNAVAILABLE", f"the MCP connection failed: {type(first).__name__}: {first}")


@asynccontextmanager
async def _connect(server: McpServer, policy: EgressPolicy) -> AsyncIterator[Client]:
    """An initialized MCP session with ``server`` over the guarded client; any failure, in the handshake or in
    the body, comes out as ``_McpFailure``."""
    http = guarded_client(policy, module=httpx2, headers=server.headers, timeout=server.timeout_seconds)
    error_status: list[httpx2.Response] = []

    async def remember_error(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            error_status.append(response)

    http.event_hooks["response"].append(remember_error)
    try:
        # cache=None: a listing must come from the server, not from the SDK's response cache
        async with http, Client(streamable_http_client(server.url, http_client=http), cache=None) as client:
            yield client
    except Exception as e:
        failure = _classify(e, server, error_status[-1] if error_status else None)
        log.debug("MCP server %s (id %s): %s", server.name, server.id, failure.message, exc_info=True)
        raise failure from e


async def list_mcp_tools(server: McpServer, policy: EgressPolicy) -> list[McpToolInfo]:
    """The server's tools (every page, at most ``MAX_TOOLS``); ``DomainError`` MCP_UNAVAILABLE (field ``url``)
    when it cannot be reached, is refused by the egress guard, is slow, answers an HTTP error or is no MCP
    server."""
    tools: list[McpToolInfo] = []
    try:
        async with asyncio.timeout(server.timeout_seconds), _connect(server, policy) as client:
            cursor: str | None = None
            seen: set[str] = set()
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(McpToolInfo(t.name, t.description or "",
                                         t.input_schema or {"type": "object", "properties": {}})
                             for t in page.tools)
                cursor = page.next_cursor
                if cursor is None or cursor in seen or len(tools) >= MAX_TOOLS:
                    break
                seen.add(cursor)
    except TimeoutError:
        raise DomainError(AssistantErrorCode.MCP_UNAVAILABLE, _timeout(server).message, "url") from None
    except _McpFailure as f:
        raise DomainError(AssistantErrorCode.MCP_UNAVAILABLE, f.message, "url") from f
    if len(tools) > MAX_TOOLS:
        log.warning("MCP server %s (id %s) lists more than %d tools: the rest are left out",
                    server.name, server.id, MAX_TOOLS)
    return tools[:MAX_TOOLS]


def _content_text(block: types.ContentBlock) -> str | None:
    """A content block as text for the model: the text itself, or a one-line summary of a binary one."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        kind = "image" if isinstance(block, types.ImageContent) else "audio"
        return f"[{kind} {block.mime_type}, {len(block.data) * 3 // 4} bytes]"  # base64: 4 chars per 3 bytes
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri} {resource.mime_type or ''}, {len(resource.blob) * 3 // 4} bytes]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link {block.uri} ({block.name})]"
    return None


def _result_text(result: types.CallToolResult) -> str:
    parts = [text for block in result.content if (text := _content_text(block)) is not None]
    if not any(isinstance(block, types.TextContent) for block in result.content) and \
            result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


async def call_mcp_tool(server: McpServer, policy: EgressPolicy, tool: str, arguments: dict[str, Any], *,
                        max_bytes: int = 65_536) -> ToolOutcome:
    """Call ``tool`` on the server; never raises for an expected failure: the outcome says what went wrong
    (an egress refusal's code, TIMEOUT, UNAVAILABLE, or TOOL_ERROR with the tool's own message)."""
    started = time.perf_counter()

    def outcome(ok: bool, content: str, code: str = "") -> ToolOutcome:
        return ToolOutcome(ok, truncate(content, max_bytes), code, (time.perf_counter() - started) * 1000)

    try:
        async with asyncio.timeout(server.timeout_seconds), _connect(server, policy) as client:
            result = await client.call_tool(tool, arguments)
    except TimeoutError:
        return outcome(False, _timeout(server).message, "TIMEOUT")
    except _McpFailure as f:
        return outcome(False, f.message, f.code)
    text = _result_text(result)
    if result.is_error:
        return outcome(False, text or "the tool failed without a message", "TOOL_ERROR")
    return outcome(True, text)
