"""An OpenAI-compatible upstream scripted to call tools (for assistant tests and the bench): it reads the last
message and answers whole or streamed (tool calls in pieces, as OpenAI streams them).

- the last message is a tool result → "Result: <the tool's content>";
- the user asks ``call <tool> <JSON arguments>`` → a call of that tool (the first time in the conversation);
- ``loop <tool>`` → a call of that tool every time (to reach max_steps);
- anything else → "You said: <text>"."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.asgi_stub import chat_answer, read_json, send_json


def decide(request: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(text, tool call or None) for a chat request."""
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        first_user = next((m for m in messages if m.get("role") == "user"), {})
        if not str(first_user.get("content", "")).startswith("loop "):
            return f"Result: {last.get('content')}", None
        last = first_user
    text = str(last.get("content") or "")
    verb, _, rest = text.partition(" ")
    if verb in ("call", "loop") and request.get("tools"):
        name, _, arguments = rest.partition(" ")
        return "", {"id": f"call_{uuid.uuid4().hex[:8]}", "name": name, "arguments": arguments or "{}"}
    return f"You said: {text}", None


def _usage(request: dict[str, Any]) -> dict[str, int]:
    return {"prompt_tokens": 7 * len(request.get("messages") or []), "completion_tokens": 4, "total_tokens": 0}


async def tool_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    request = await read_json(receive)
    model = str(request.get("model"))
    text, call = decide(request)
    usage = _usage(request)
    if not request.get("stream"):
        answer = chat_answer(model, text, usage["prompt_tokens"], usage["completion_tokens"])
        if call is not None:
            answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"],
                                                                     "arguments": call["arguments"]}}]}
            answer["choices"][0]["finish_reason"] = "tool_calls"
        await send_json(send, 200, answer)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

    async def event(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> None:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        chunk = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": model, "choices": choices, **extra}
        await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                    "more_body": True})

    await event({"role": "assistant", "content": ""})
    if call is not None:
        args = call["arguments"]
        await event({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                     "function": {"name": call["name"], "arguments": ""}}]})
        for piece in (args[: len(args) // 2], args[len(args) // 2:]):
            await event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        await event({}, "tool_calls")
    else:
        for word in text.split(" "):
            await event({"content": word + " "})
        await event({}, "stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        await event(None, usage=usage)
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
