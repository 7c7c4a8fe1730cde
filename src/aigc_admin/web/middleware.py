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


UPLOAD_SLACK = 1024 * 1024  # boundaries and part headers around the file in a multipart body


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Request bodies are bounded before they are read: a Content-Length over the limit is answered 413 at once,
    and a body without one stops being read at the limit. GraphQL multipart uploads get the file limit; the
    /files routes have their own (streamed to storage); /v1 never reaches this (the gateway bounds its bodies)."""

    def __init__(self, app: Any, *, max_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes + UPLOAD_SLACK

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/files"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.upload_bytes if multipart else self.max_bytes
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:
                raise
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Any, limit: int) -> None:
        payload = json.dumps({"data": None, "errors": [{
            "message": f"The request body is larger than {limit} bytes (server.max.body.bytes)",
            "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
