"""The chat playground: a chat completion streamed through the model-call port, charged to a channel of the
request's tenant (its allowed models, quota and limits apply, as on /v1)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, parse_id, request_tenant
from aigc_admin.schema import playground as pg


@strawberry.type
class PlaygroundSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Stream a chat completion through the gateway, charged to a channel of the "
                                         "request's tenant (its allowed models, quota and limits apply).")
    async def chat_playground(self, info: Info, input: pg.PlaygroundInput) -> AsyncGenerator[pg.PlaygroundChunk, None]:
        body: dict[str, Any] = {"model": input.model,
                                "messages": [{"role": m.role, "content": m.content} for m in input.messages]}
        if input.max_tokens is not None:
            body["max_tokens"] = input.max_tokens
        if input.temperature is not None:
            body["temperature"] = input.temperature
        try:
            chunks = await ctx(info).services.model_calls.stream_chat(
                body, tenant_id=request_tenant(info), channel_id=parse_id(input.channel_id, "channelId"))
            async with aclosing(chunks):  # an unsubscribe settles the call at once
                async for chunk in chunks:
                    if chunk.content or chunk.finish_reason:
                        yield pg.PlaygroundChunk(content=chunk.content, finish_reason=chunk.finish_reason)
        except DomainError as e:
            yield pg.PlaygroundChunk(content="", finish_reason="error", error=e.message)
