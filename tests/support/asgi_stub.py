"""Small OpenAI-compatible stub servers for tests and benches: a raw ASGI app served by uvicorn in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.support.slapd import free_port

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def read_body(receive: Any) -> bytes:
    """The request body, read whole."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def read_json(receive: Any) -> Any:
    """The request body, read whole and parsed (an empty body is ``{}``)."""
    return json.loads(await read_body(receive) or b"{}")


async def send_json(send: Any, status: int, payload: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def chat_answer(model: str, content: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """An OpenAI chat.completion with one choice."""
    return {"id": "x", "object": "chat.completion", "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def start(app: App) -> tuple[str, uvicorn.Server]:
    """Serve ``app`` on a free port in a daemon thread; returns its ``/v1`` base URL and the server."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}/v1", server


@contextmanager
def serving(app: App) -> Iterator[str]:
    url, server = start(app)
    try:
        yield url
    finally:
        server.should_exit = True
