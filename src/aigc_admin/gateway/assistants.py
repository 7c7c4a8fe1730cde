"""Published assistants as models: ``/v1/chat/completions`` with ``model: "assistant::<name>"`` runs the
assistant's published version (its model, instructions and tools, frozen at publish) and answers like any chat
model, whole or streamed. The model calls inside are charged to the caller's channel.

A channel may call ``assistant::<name>`` when the assistant names it (``channelIds``) or when it may call the
assistant's model itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import orjson

from aigc_admin.domain.assistants.agent import StepEvent, mode_for
from aigc_admin.domain.assistants.entities import ASSISTANT_MODEL_PREFIX, AgentConfig, AgentMode, Run
from aigc_admin.domain.assistants.runner import AssistantRunner, RunRequest
from aigc_admin.domain.errors import DomainError
from aigc_admin.gateway.keys import ChannelSnapshot
from aigc_admin.gateway.router import Answer, ApiError, Stream, json_answer

FINISH = {"completed": "stop", "max_tokens": "length"}  # other stops (steps, time) end as "stop" with a note


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", "invalid_request_error", "invalid_request",
                       param="messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise ApiError(400, f"messages[{i}] must have a role (system, user or assistant) and text content",
                           "invalid_request_error", "invalid_request", param="messages")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class PublishedAssistants:
    def __init__(self, runner: Callable[[], AssistantRunner]) -> None:
        self._runner = runner  # built on first use (it calls models through the gateway this is part of)

    @property
    def runner(self) -> AssistantRunner:
        return self._runner()

    async def models(self, channel: ChannelSnapshot) -> list[str]:
        """The published assistants this channel may call, as model names."""
        return [ASSISTANT_MODEL_PREFIX + name for name, _ in await self.catalog(channel)]

    async def catalog(self, channel: ChannelSnapshot) -> list[tuple[str, str]]:
        """(name, description) of the published assistants this channel may call (the MCP endpoint's tools)."""
        published = await self.runner.service.repo.published(channel.tenant_id)
        return [(a.name, a.description or f"Ask the assistant {a.name}") for a in published
                if channel.id in a.channel_ids or channel.allows(a.model_name)]

    async def ask(self, channel: ChannelSnapshot, name: str, question: str) -> tuple[str, str]:
        """Run the published assistant ``name`` on one question: (its answer, why the run ended). Refusals raise
        ``ApiError`` (404 not published, 403 not allowed); a failed model call gives ("...", "model_error")."""
        config, also_allow = await self._resolve(channel, ASSISTANT_MODEL_PREFIX + name)
        req = RunRequest(config=config, messages=[{"role": "user", "content": question}], tenant_id=channel.tenant_id,
                         channel_id=channel.id, operator=f"channel:{channel.id}", also_allow=also_allow)
        final: StepEvent | None = None
        events = self.runner.run(req)
        async with aclosing(events):
            async for _run, event in events:
                if event.kind == "final":
                    final = event
        assert final is not None
        return final.content, final.stop_reason

    async def _resolve(self, channel: ChannelSnapshot, model: str) -> tuple[AgentConfig, frozenset[str]]:
        name = model[len(ASSISTANT_MODEL_PREFIX):]
        try:
            assistant, config = await self.runner.service.published_config(name, tenant_id=channel.tenant_id)
        except DomainError:
            raise ApiError(404, f"The model '{model}' does not exist (no published assistant of that name)",
                           "invalid_request_error", "model_not_found", param="model") from None
        if channel.id in assistant.channel_ids:
            return config, frozenset({config.model_name})
        if channel.allows(config.model_name):
            return config, frozenset()
        raise ApiError(403, f"This key may not use the model '{model}'", "invalid_request_error",
                       "model_not_allowed", param="model")

    async def answer(self, channel: ChannelSnapshot, body: dict[str, Any]) -> Answer | Stream:
        model = body["model"]
        config, also_allow = await self._resolve(channel, model)
        temperature = body.get("temperature")
        req = RunRequest(config=config, messages=_messages(body), tenant_id=channel.tenant_id, channel_id=channel.id,
                         operator=f"channel:{channel.id}", also_allow=also_allow,
                         temperature=float(temperature) if isinstance(temperature, int | float) else None)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            local = await self.runner.service.repo.model_is_local(config.model_name, channel.tenant_id)
            live_text = mode_for(config, local_model=bool(local)) is AgentMode.NATIVE
            return Stream(self._events(req, model, completion_id, created, include_usage, live_text))
        run: Run | None = None
        final: StepEvent | None = None
        events = self.runner.run(req)
        async with aclosing(events):
            async for run, event in events:  # noqa: B007 (the last run is the one answered)
                if event.kind == "final":
                    final = event
        assert run is not None and final is not None
        if final.stop_reason == "model_error":
            raise ApiError(502, final.content, "server_error", "assistant_model_error")
        return json_answer({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": final.content},
                         "finish_reason": FINISH.get(final.stop_reason, "stop")}],
            "usage": _usage(final), "assistant": _about(run, final)})

    async def _events(self, req: RunRequest, model: str, completion_id: str, created: int, include_usage: bool,
                      live_text: bool) -> AsyncGenerator[bytes, None]:
        """The answer as OpenAI chat chunks: a native model's text as it comes; a ReAct answer (whose steps are
        Thought/Action text) once it is final."""
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            return _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

        yield chunk({"role": "assistant", "content": ""})
        events = self.runner.run(req)
        async with aclosing(events):
            async for run, event in events:
                if event.kind == "text" and live_text:
                    yield chunk({"content": event.content})
                elif event.kind == "final":
                    if event.stop_reason == "model_error":
                        yield _sse({"error": {"message": event.content, "type": "server_error",
                                              "code": "assistant_model_error"}})
                        return
                    rest = event.content if not live_text or event.stop_reason != "completed" else ""
                    if rest:
                        yield chunk({"content": rest})
                    yield chunk({}, FINISH.get(event.stop_reason, "stop"), assistant=_about(run, event))
                    if include_usage:
                        yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                    "model": model, "choices": [], "usage": _usage(event)})
        yield b"data: [DONE]\n\n"


def _usage(final: StepEvent) -> dict[str, int]:
    return {"prompt_tokens": final.prompt_tokens, "completion_tokens": final.completion_tokens,
            "total_tokens": final.prompt_tokens + final.completion_tokens}


def _about(run: Run, final: StepEvent) -> dict[str, Any]:
    """What the assistant did, beside the OpenAI fields (clients that do not know it ignore it)."""
    return {"run_id": str(run.id), "thread_id": run.thread_id, "version": run.version,
            "stop_reason": final.stop_reason,
            "tool_calls": sum(1 for s in run.steps if s.get("kind") == "tool_call")}
