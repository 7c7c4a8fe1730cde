"""Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and memory streams per request:
13-16 % of the gateway's CPU, see docs/performance.md)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

log = logging.getLogger("aigc_admin")
Scope = dict[str, Any]


class TraceIdMiddleware:
    """Gives every HTTP request a trace id (``request.state.trace_id``, the ``X-Trace-Id`` header), turns an
    unhandled exception into a JSON 500 naming it, and strawberry's plain-text 400s into GraphQL JSON."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = uuid.uuid4().hex
        scope.setdefault("state", {})["trace_id"] = trace_id
        graphql = scope.get("path", "").rstrip("/").endswith("/graphql")
        started = False
        held: dict[str, Any] | None = None  # a plain-text 400 from /graphql, rewritten as JSON
        body = b""

        async def wrapped(message: dict[str, Any]) -> None:
            nonlocal started, held, body
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-trace-id"]
                headers.append((b"x-trace-id", trace_id.encode()))
                message = {**message, "headers": headers}
                content_type = dict(headers).get(b"content-type", b"")
                if graphql and message["status"] == 400 and content_type.startswith(b"text/plain"):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                body += message.get("body", b"")
                if message.get("more_body"):
                    return
                text = body.decode(errors="replace").strip() or "Bad request"
                payload = json.dumps({"data": None, "errors": [{"message": text,
                                                                "extensions": {"code": "BAD_REQUEST"}}]}).encode()
                headers = [(k, v) for k, v in held["headers"] if k.lower() not in (b"content-type", b"content-length")]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": payload})
                return
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            log.exception("unhandled error (trace %s)", trace_id)
            if started:
                raise
            payload = json.dumps({"error": "Unexpected error", "traceId": trace_id}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), (b"x-trace-id", trace_id.encode()),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
