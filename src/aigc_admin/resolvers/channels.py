"""Channels: keys for applications, their models, limits and usage (tenant-scoped)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from aigc_admin.domain.channels.service import ChannelInput
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, operator, page, page_args, parse_id, request_tenant, typed_errors
from aigc_admin.schema import channels as ch
from aigc_admin.schema.common import Page, Pagination


def _input(i: ch.ChannelInput) -> ChannelInput:
    return ChannelInput(alias=i.alias, remark=i.remark, email=i.email, quota=i.quota, unlimited_quota=i.unlimited_quota,
                        expires_at=i.expires_at, never_expires=i.never_expires, rpm_limit=i.rpm_limit,
                        unlimited_rpm=i.unlimited_rpm, tpm_limit=i.tpm_limit, unlimited_tpm=i.unlimited_tpm,
                        enabled=i.enabled,
                        model_ids=None if i.model_ids is None else [parse_id(x, "modelIds") for x in i.model_ids])


@strawberry.type
class ChannelQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's channels.")
    async def channels(self, info: Info, pagination: Pagination | None = None) -> Page[ch.Channel]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.channels.list(tenant_id=request_tenant(info), offset=offset, limit=limit)
        return page([ch.Channel.from_domain(c) for c in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def channel(self, info: Info, id: strawberry.ID) -> ch.Channel | None:
        try:
            channel = await ctx(info).services.channels.get(parse_id(id), tenant_id=request_tenant(info))
            return ch.Channel.from_domain(channel)
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Requests and tokens per channel, model and day (UTC), oldest first.")
    async def channel_usage(self, info: Info, channel_id: strawberry.ID | None = None, model: str | None = None,
                            start: date | None = None, end: date | None = None) -> list[ch.ChannelUsage]:
        try:
            rows = await ctx(info).services.channels.usage(
                tenant_id=request_tenant(info), channel_id=parse_id(channel_id, "channelId") if channel_id else None,
                model=model, start=start, end=end)
        except DomainError:
            return []
        return [ch.ChannelUsage(channel_id=strawberry.ID(str(r.channel_id)), model=r.model, day=r.day.isoformat(),
                                requests=r.requests, prompt_tokens=r.prompt_tokens,
                                completion_tokens=r.completion_tokens) for r in rows]


@strawberry.type
class ChannelMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Create a channel; its key is in the payload, this once.")
    @typed_errors
    async def create_channel(self, info: Info, input: ch.ChannelInput) -> ch.ChannelPayload:
        channel, key = await ctx(info).services.channels.create(_input(input), tenant_id=request_tenant(info),
                                                                operator=operator(info))
        return ch.ChannelPayload(channel=ch.Channel.from_domain(channel), key=key)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def update_channel(self, info: Info, input: ch.UpdateChannelInput) -> ch.ChannelPayload:
        channel = await ctx(info).services.channels.update(parse_id(input.id), _input(input),
                                                           tenant_id=request_tenant(info), operator=operator(info))
        return ch.ChannelPayload(channel=ch.Channel.from_domain(channel))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Replace the key: the old one stops working at once.")
    @typed_errors
    async def rotate_channel_key(self, info: Info, id: strawberry.ID) -> ch.ChannelPayload:
        channel, key = await ctx(info).services.channels.rotate(parse_id(id), tenant_id=request_tenant(info),
                                                                operator=operator(info))
        return ch.ChannelPayload(channel=ch.Channel.from_domain(channel), key=key)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def delete_channel(self, info: Info, id: strawberry.ID) -> ch.ChannelPayload:
        await ctx(info).services.channels.delete(parse_id(id), tenant_id=request_tenant(info))
        return ch.ChannelPayload()
