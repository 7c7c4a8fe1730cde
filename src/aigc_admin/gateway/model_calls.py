"""The model-call port (``domain.model_calls``) on the gateway: a chat request from inside the platform takes the
same path as one sent to ``/v1/chat/completions`` with the channel's key (key checks, allowed models, routing
and retries, limits and quota, usage), without HTTP and without the server-sent-event encoding: a local
model's stream is read as structured deltas, an external upstream's events are parsed once."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from aigc_admin.adapters.fastchat.errors import FastChatOpenAIError
from aigc_admin.domain.channels.service import ChannelService, ChannelSnapshot
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.model_calls import ChatChunk, ChatReply, ModelCallError, ModelCallErrorCode, Usage
from aigc_admin.gateway.router import Answer, ApiError, Gateway, Stream, check_request, engine_error, generate_for

_CODES = {400: ModelCallErrorCode.INVALID, 401: ModelCallErrorCode.NOT_ALLOWED, 403: ModelCallErrorCode.NOT_ALLOWED,
          404: ModelCallErrorCode.NOT_FOUND, 413: ModelCallErrorCode.INVALID, 429: ModelCallErrorCode.RATE_LIMITED,
          503: ModelCallErrorCode.UNAVAILABLE}


def _refused(e: ApiError) -> ModelCallError:
    return ModelCallError(_CODES.get(e.status, ModelCallErrorCode.UPSTREAM_ERROR), e.message, reason=e.code,
                          retry_after=e.retry_after)


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


class GatewayModelCalls:
    def __init__(self, gateway: Gateway, channels: ChannelService) -> None:
        self.gateway = gateway
        self.channels = channels
        # (tenant, channel) -> key hash: an evaluation calls through one channel hundreds of times a second, and
        # the snapshot (key cache, kept current by invalidations) is what is checked on every call
        self._key_hashes: dict[tuple[int, int], str] = {}

    async def _channel(self, tenant_id: int, channel_id: int) -> ChannelSnapshot:
        known = self._key_hashes.get((tenant_id, channel_id))
        if known is not None:
            snapshot = await self.gateway.keys.get(known)
            if snapshot is not None and snapshot.id == channel_id and snapshot.tenant_id == tenant_id:
                return snapshot
            del self._key_hashes[(tenant_id, channel_id)]  # deleted, or its key replaced: look it up again
        try:
            key_hash = await self.channels.key_hash_of(channel_id, tenant_id=tenant_id)
        except DomainError as e:
            raise ModelCallError(ModelCallErrorCode.NOT_FOUND, e.message, reason="channel_not_found") from None
        snapshot = await self.gateway.keys.get(key_hash)
        if snapshot is None:
            raise ModelCallError(ModelCallErrorCode.NOT_FOUND, f"channel {channel_id} not found",
                                 reason="channel_not_found")
        if len(self._key_hashes) >= 10_000:
            self._key_hashes.clear()
        self._key_hashes[(tenant_id, channel_id)] = key_hash
        return snapshot

    async def _generate(self, body: dict[str, Any], tenant_id: int, channel_id: int, stream: bool,
                        also_allow: frozenset[str]) -> Answer | Stream:
        channel = await self._channel(tenant_id, channel_id)
        if also_allow:
            channel = dataclasses.replace(channel, allowed_models=channel.allowed_models | also_allow)
        request = copy.copy(body)  # the gateway fills in what it sends upstream (max_tokens, stream_options)
        request["stream"] = stream
        if stream:  # the usage arrives with the last chunk (an external upstream sends it only when asked)
            request["stream_options"] = {**(request.get("stream_options") or {}), "include_usage": True}
        try:
            return await generate_for(self.gateway, channel, check_request(request), "chat")
        except ApiError as e:
            raise _refused(e) from None

    async def chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                   also_allow: frozenset[str] = frozenset()) -> ChatReply:
        answer = await self._generate(body, tenant_id, channel_id, False, also_allow)
        assert isinstance(answer, Answer)
        payload = answer.payload if answer.payload is not None else orjson.loads(answer.body)
        choice = (payload.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        return ChatReply(content=message.get("content") or "", finish_reason=choice.get("finish_reason"),
                         usage=_usage(payload.get("usage")) or Usage(),
                         tool_calls=tuple(message.get("tool_calls") or ()), raw=payload)

    async def stream_chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                          also_allow: frozenset[str] = frozenset()) -> AsyncGenerator[ChatChunk, None]:
        answer = await self._generate(body, tenant_id, channel_id, True, also_allow)
        if isinstance(answer, Answer):  # not expected for a stream request; answered whole all the same
            raise ModelCallError(ModelCallErrorCode.UPSTREAM_ERROR, "the model did not stream its answer")
        return _chunks(answer)


async def _chunks(stream: Stream) -> AsyncGenerator[ChatChunk, None]:
    try:
        pieces = stream.pieces
        if pieces is not None:  # a local model: the deltas themselves, no event encoding
            last: Any = None
            try:
                async for piece in pieces:
                    last = piece
                    yield ChatChunk(piece.text, piece.finish_reason,
                                    _usage(piece.usage) if piece.finish_reason is not None else None)
            except FastChatOpenAIError as e:
                raise _refused(engine_error(e)) from None
            if last is None:
                yield ChatChunk("", "stop", None)
            return
        async for chunk in _parsed_events(stream.events):
            yield chunk
    finally:
        await stream.aclose()


async def _parsed_events(events: AsyncGenerator[bytes, None]) -> AsyncGenerator[ChatChunk, None]:
    """An upstream's server-sent events (OpenAI chat chunks) as ChatChunks; an error event raises."""
    pending = b""
    async for raw in events:
        pending += raw.replace(b"\r\n", b"\n")
        *ready, pending = pending.split(b"\n\n")
        for event in ready:
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(parsed, dict):
                    continue
                if "error" in parsed:
                    error = parsed["error"] if isinstance(parsed["error"], dict) else {"message": parsed["error"]}
                    raise ModelCallError(ModelCallErrorCode.UPSTREAM_ERROR, str(error.get("message", "failed")),
                                         reason=str(error.get("code") or "upstream_error"))
                usage = _usage(parsed.get("usage"))
                choices = parsed.get("choices") or []
                if not choices and usage is not None:
                    yield ChatChunk(usage=usage)
                for choice in choices:
                    delta = choice.get("delta") or {}
                    content = delta.get("content") or ""
                    if content or choice.get("finish_reason") or delta.get("tool_calls"):
                        yield ChatChunk(content, choice.get("finish_reason"), usage,
                                        tuple(delta.get("tool_calls") or ()))
