"""Channel fields: keys for applications, their models, limits and usage (tenant-scoped)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import date
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.channels.service import ChannelErrorCode, ChannelInput
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page_args, parse_id, request_tenant, run_mutation
from aigc_admin.schema import types as t


def _operator(info: Info) -> str:
    principal = ctx(info).principal
    return principal.username if principal else ""


def _input(i: t.ChannelInput) -> ChannelInput:
    return ChannelInput(alias=i.alias, remark=i.remark, email=i.email, quota=i.quota, unlimited_quota=i.unlimited_quota,
                        expires_at=i.expires_at, never_expires=i.never_expires, rpm_limit=i.rpm_limit,
                        unlimited_rpm=i.unlimited_rpm, tpm_limit=i.tpm_limit, unlimited_tpm=i.unlimited_tpm,
                        enabled=i.enabled,
                        model_ids=None if i.model_ids is None else [parse_id(x, "modelIds") for x in i.model_ids])


def _payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.ChannelPayload, t.ChannelError, ChannelErrorCode, action)


@strawberry.type
class ChannelQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's channels.")
    async def channels(self, info: Info, pagination: t.Pagination | None = None) -> t.Page[t.Channel]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.channels.list(tenant_id=request_tenant(info), offset=offset, limit=limit)
        return t.Page(items=[t.Channel.from_domain(c) for c in rows], total_count=total, offset=offset, limit=limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def channel(self, info: Info, id: strawberry.ID) -> t.Channel | None:
        try:
            channel = await ctx(info).services.channels.get(parse_id(id), tenant_id=request_tenant(info))
            return t.Channel.from_domain(channel)
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Requests and tokens per channel, model and day (UTC), oldest first.")
    async def channel_usage(self, info: Info, channel_id: strawberry.ID | None = None, model: str | None = None,
                            start: date | None = None, end: date | None = None) -> list[t.ChannelUsage]:
        try:
            rows = await ctx(info).services.channels.usage(
                tenant_id=request_tenant(info), channel_id=parse_id(channel_id, "channelId") if channel_id else None,
                model=model, start=start, end=end)
        except DomainError:
            return []
        return [t.ChannelUsage(channel_id=strawberry.ID(str(r.channel_id)), model=r.model, day=r.day.isoformat(),
                               requests=r.requests, prompt_tokens=r.prompt_tokens,
                               completion_tokens=r.completion_tokens) for r in rows]


@strawberry.type
class ChannelMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Create a channel; its key is in the payload, this once.")
    async def create_channel(self, info: Info, input: t.ChannelInput) -> t.ChannelPayload:
        async def action() -> dict[str, Any]:
            channel, key = await ctx(info).services.channels.create(_input(input), tenant_id=request_tenant(info),
                                                                    operator=_operator(info))
            return {"channel": t.Channel.from_domain(channel), "key": key}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def update_channel(self, info: Info, input: t.UpdateChannelInput) -> t.ChannelPayload:
        async def action() -> dict[str, Any]:
            channel = await ctx(info).services.channels.update(parse_id(input.id), _input(input),
                                                               tenant_id=request_tenant(info), operator=_operator(info))
            return {"channel": t.Channel.from_domain(channel)}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Replace the key: the old one stops working at once.")
    async def rotate_channel_key(self, info: Info, id: strawberry.ID) -> t.ChannelPayload:
        async def action() -> dict[str, Any]:
            channel, key = await ctx(info).services.channels.rotate(parse_id(id), tenant_id=request_tenant(info),
                                                                    operator=_operator(info))
            return {"channel": t.Channel.from_domain(channel), "key": key}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def delete_channel(self, info: Info, id: strawberry.ID) -> t.ChannelPayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.channels.delete(parse_id(id), tenant_id=request_tenant(info))
            return {}
        return await _payload(info, action)


@strawberry.type
class ChannelSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Stream a chat completion through the gateway, charged to a channel of the "
                                         "request's tenant (its allowed models, quota and limits apply).")
    async def chat_playground(self, info: Info, input: t.PlaygroundInput) -> AsyncGenerator[t.PlaygroundChunk, None]:
        c = ctx(info)
        gateway = c.services.extra.get("gateway")
        try:
            key_hash = await c.services.channels.key_hash_of(parse_id(input.channel_id, "channelId"),
                                                             tenant_id=request_tenant(info))
        except DomainError as e:
            yield t.PlaygroundChunk(content="", finish_reason="error", error=e.message)
            return
        if gateway is None:
            yield t.PlaygroundChunk(content="", finish_reason="error", error="the gateway is not running")
            return
        channel = await gateway.keys.get(key_hash)
        body: dict[str, Any] = {"model": input.model, "stream": True,
                                "messages": [{"role": m.role, "content": m.content} for m in input.messages]}
        if input.max_tokens is not None:
            body["max_tokens"] = input.max_tokens
        if input.temperature is not None:
            body["temperature"] = input.temperature
        if channel is None:
            yield t.PlaygroundChunk(content="", finish_reason="error", error="unknown channel")
            return
        async for chunk in playground_stream(gateway, channel, body):
            yield chunk


async def playground_stream(gateway: Any, channel: Any, body: dict[str, Any]) -> AsyncIterator[t.PlaygroundChunk]:
    """The gateway's SSE answer as playground chunks (errors become a final chunk with ``error``)."""
    import json

    from aigc_admin.gateway.router import ApiError, Stream, generate_for

    try:
        response = await generate_for(gateway, channel, body, "chat")
    except ApiError as e:
        yield t.PlaygroundChunk(content="", finish_reason="error", error=e.message)
        return
    if not isinstance(response, Stream):
        error = json.loads(response.body).get("error", {})
        yield t.PlaygroundChunk(content="", finish_reason="error", error=str(error.get("message", "failed")))
        return
    try:
        async for raw in response.events:
            for line in raw.decode().splitlines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                data = json.loads(line[6:])
                if "error" in data:
                    yield t.PlaygroundChunk(content="", finish_reason="error", error=str(data["error"]))
                    return
                for choice in data.get("choices", []):
                    content = (choice.get("delta") or {}).get("content") or ""
                    if content or choice.get("finish_reason"):
                        yield t.PlaygroundChunk(content=content, finish_reason=choice.get("finish_reason"))
    finally:
        await response.aclose()
