"""A real MCP server for tests: built with the ``mcp`` SDK (``MCPServer``), served over Streamable HTTP by
uvicorn in a background thread on a free port.

Tools: ``add(a, b)``, ``echo(text)``, ``slow(seconds)``, ``fail(message)`` (an ``isError`` result with the
message), ``big(n)`` (``'x' * n``). With ``token`` set, a request without ``Authorization: Bearer <token>``
gets 401 before it reaches the SDK. ``sdk_server`` serves another SDK server instead (an ``MCPServer`` or a
low-level ``mcp.server.Server``: anything with ``streamable_http_app``). Every HTTP request is recorded
(``requests``), so a test can prove that a refused call never reached the server.

    with McpTestServer(token="s3cret") as server:   # server.url: http://127.0.0.1:PORT/mcp
        ...
    with mcp_server() as url:
        ...
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from aigc_admin.adapters.net import free_port


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    authorized: bool  # False: answered 401 by the token check


def build_mcp(name: str = "test-tools") -> MCPServer:
    """The SDK server with the test tools (``MCPServer`` calls ``logging.basicConfig`` with a rich handler:
    the root logger is restored so the tests' logging is not changed behind their back)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    mcp = MCPServer(name, log_level="WARNING")
    root.handlers[:] = handlers
    root.setLevel(level)

    @mcp.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        return text

    @mcp.tool(description="Sleep for the given seconds, then answer.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @mcp.tool(description="Always fail with the given message.")
    def fail(message: str) -> str:
        raise ToolError(message)  # ToolError: the client gets the message as is, the server logs no traceback

    @mcp.tool(description="Return n times 'x'.")
    def big(n: int) -> str:
        return "x" * n

    return mcp


class McpTestServer:
    """The test MCP server, started on ``__enter__`` and stopped (sessions closed, thread joined) on exit."""

    def __init__(self, *, token: str | None = None, path: str = "/mcp", sdk_server: Any = None) -> None:
        self.token = token
        self.path = path
        self.sdk_server = sdk_server
        self.port = 0
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def _app(self) -> Any:
        sdk = self.sdk_server if self.sdk_server is not None else build_mcp()
        inner = sdk.streamable_http_app(streamable_http_path=self.path, host="127.0.0.1")
        expected = f"Bearer {self.token}".encode() if self.token is not None else None

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":  # lifespan: runs the SDK's session manager
                await inner(scope, receive, send)
                return
            authorized = expected is None or dict(scope["headers"]).get(b"authorization") == expected
            with self._lock:
                self.requests.append(SeenRequest(scope["method"], scope["path"], authorized))
            if not authorized:
                body = json.dumps({"error": "unauthorized"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
            await inner(scope, receive, send)

        return app

    def __enter__(self) -> McpTestServer:
        for _ in range(5):  # free_port can race with another process taking the port: retry on a clash
            self.port = free_port()
            config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_config=None,
                                    log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, name=f"mcp-test-server-{self.port}", daemon=True)
            thread.start()
            deadline = time.monotonic() + 15
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            if server.started:
                self._server, self._thread = server, thread
                return self
            server.should_exit = True
            thread.join(5)
        raise RuntimeError("the test MCP server did not start")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = self._thread = None


@contextmanager
def mcp_server(*, token: str | None = None) -> Iterator[str]:
    """The test MCP server's URL (``http://127.0.0.1:PORT/mcp``) while it runs."""
    with McpTestServer(token=token) as server:
        yield server.url
