"""A real HTTP server for tool tests: echoes what it received, redirects, answers slowly, big or with an error;
it counts the requests that reached it (a refused call must not reach it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.support.asgi_stub import read_body, send_json, start


@dataclass
class ToolServer:
    url: str  # http://127.0.0.1:PORT
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = await read_body(receive)
            path = scope["path"]
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            seen = {"method": scope["method"], "path": path, "query": query, "headers": headers,
                    "body": body.decode(errors="replace")}
            self.requests.append(seen)
            if path == "/redirect":
                await send({"type": "http.response.start", "status": 302,
                            "headers": [(b"location", query["to"].encode())]})
                await send({"type": "http.response.body", "body": b""})
            elif path == "/slow":
                await asyncio.sleep(float(query.get("s", "3")))
                await send_json(send, 200, {"slept": True})
            elif path == "/big":
                await send_json(send, 200, {"data": "x" * int(query.get("n", "100000"))})
            elif path.startswith("/status/"):
                await send_json(send, int(path.rsplit("/", 1)[1]), {"error": "scripted"})
            elif path.startswith("/weather/"):
                city = path.rsplit("/", 1)[1]
                await send_json(send, 200, {"data": {"city": city, "temperature_c": 21, "sky": "clear"}})
            else:
                await send_json(send, 200, {"echo": seen, "json": json.loads(body) if body else None})
        return app


@contextmanager
def tool_server() -> Iterator[ToolServer]:
    server = ToolServer("")
    base, uv = start(server.app())
    server.url = base.removesuffix("/v1")
    try:
        yield server
    finally:
        uv.should_exit = True
