"""The MCP endpoint (``/mcp``, Streamable HTTP): the published assistants a channel key may call, as MCP tools.

A client authenticates with its channel key (``Authorization: Bearer sk-…``, the keys of ``/v1``). ``tools/list``
gives one tool per published assistant the key may call (as ``assistant::<name>`` on ``/v1``); ``tools/call`` runs
the assistant on the tool's one argument, ``question``, and answers its text.

Served with the ``mcp`` SDK's low-level ``Server`` (the tools depend on the caller, so the decorator-based
``MCPServer``, whose tools are fixed, does not fit) behind its ``StreamableHTTPSessionManager``, stateless and
answering JSON: no session outlives its request. The key is checked here, in front of the SDK, the way ``/v1``
checks it: a refused key never reaches the SDK. The caller's ``ChannelSnapshot`` travels to the handlers in the
ASGI scope, which the SDK hands them as ``ctx.request`` (a Starlette ``Request`` on that scope).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR

from aigc_admin.gateway.assistants import PublishedAssistants
from aigc_admin.gateway.keys import ChannelSnapshot
from aigc_admin.gateway.router import ApiError, Gateway, channel_of

log = logging.getLogger(__name__)

CHANNEL_SCOPE_KEY: Final = "aigc_admin.mcp.channel"  # the caller's ChannelSnapshot, set once its key is checked
QUESTION_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {"question": {"type": "string", "description": "What to ask the assistant"}},
    "required": ["question"],
}
INSTRUCTIONS = ("Each tool is an assistant of the platform (a model with its own instructions and tools): "
                "call it with a question and it answers in text.")

Scope = MutableMapping[str, Any]
Ctx = ServerRequestContext[Any, Any]


def _caller(ctx: Ctx) -> ChannelSnapshot:
    request = ctx.request
    channel = request.scope.get(CHANNEL_SCOPE_KEY) if request is not None else None
    if not isinstance(channel, ChannelSnapshot):  # McpApp always sets it: only a wiring mistake lands here
        raise MCPError(INTERNAL_ERROR, "The request carries no authenticated channel")
    return channel


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


class McpApp:
    """``/mcp`` as a plain ASGI app; ``gateway()`` gives the running ``Gateway`` (None before start).

    The SDK's session manager must be running (``running()``, entered by the app's lifespan) while requests are
    served; until then, and after it stopped, requests get 503."""

    def __init__(self, gateway: Callable[[], Gateway | None]) -> None:
        self._gateway = gateway
        self._server: Server[Any] = Server(
            "aigc-admin", instructions=INSTRUCTIONS, on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            # every tool takes the same argument: the SDK's Mcp-Param header check needs no tools/list per call
            get_tool_input_schema=lambda _name: QUESTION_SCHEMA)
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve while inside; leaving cancels what is still in flight. A manager runs once: each start builds
        one. Its anyio task group must be left by the task that entered it, and a lifespan may be entered and
        left by different tasks (pytest fixtures do), so the manager runs in a task of its own."""
        manager = StreamableHTTPSessionManager(self._server, json_response=True, stateless=True)
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            try:
                async with manager.run():
                    self._manager = manager
                    started.set()
                    await stop.wait()
            finally:
                self._manager = None
                started.set()  # also when it failed to start: the caller is waiting

        task = asyncio.create_task(serve(), name="mcp-sessions")
        await started.wait()
        if task.done():
            await task  # it failed to start: its error, now
        try:
            yield
        finally:
            stop.set()
            await task

    def _assistants(self) -> PublishedAssistants | None:
        gw = self._gateway()
        assistants = gw.assistants if gw is not None else None
        return assistants if isinstance(assistants, PublishedAssistants) else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        gw, manager = self._gateway(), self._manager
        if gw is None or manager is None:
            await _error(send, 503, "The MCP endpoint is starting; try again", "service_unavailable")
            return
        try:
            channel = await channel_of(gw, scope["headers"])
        except ApiError as e:
            await _error(send, e.status, e.message, e.code,
                         [(b"www-authenticate", b"Bearer")] if e.status == 401 else [])
            return
        except Exception:  # the key cache could not answer (as /v1 does: 503, never a 500)
            log.exception("MCP: the key could not be checked")
            await _error(send, 503, "The MCP endpoint cannot serve this request right now; try again",
                         "service_unavailable")
            return
        scope[CHANNEL_SCOPE_KEY] = channel
        await manager.handle_request(scope, receive, send)

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        channel = _caller(ctx)
        assistants = self._assistants()
        catalog = await assistants.catalog(channel) if assistants is not None else []
        # one page: a tenant's published assistants are few (and cache hints stay "private, stale at once")
        return types.ListToolsResult(tools=[types.Tool(name=name, description=description,
                                                       input_schema=QUESTION_SCHEMA)
                                            for name, description in catalog])

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        channel = _caller(ctx)
        question = (params.arguments or {}).get("question")
        if not isinstance(question, str) or not question.strip():
            return _text("The argument 'question' is required: the text to ask the assistant", error=True)
        assistants = self._assistants()
        if assistants is None:
            return _text(f"There is no published assistant named '{params.name}'", error=True)
        try:
            answer, stop = await assistants.ask(channel, params.name, question)
        except ApiError as e:  # not published (404) or not this key's to call (403): the model should see why
            return _text(e.message, error=True)
        except Exception:
            log.exception("MCP: the assistant %r failed (channel %s)", params.name, channel.id)
            return _text("The assistant could not run; try again later", error=True)
        if stop == "model_error":
            return _text(answer, error=True)
        if stop != "completed":  # an answer cut short (steps, tokens, time) is still an answer, marked as such
            return _text(f"{answer}\n\n(stopped: {stop})" if answer else f"(stopped: {stop})")
        return _text(answer)


async def _error(send: Any, status: int, message: str, code: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps({"error": {"message": message, "code": code}})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
