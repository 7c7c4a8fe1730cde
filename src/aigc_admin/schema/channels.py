"""Channels: API keys for applications, their models, limits and usage."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from aigc_admin.domain.channels import service as chn
from aigc_admin.schema.models import Model

ChannelErrorCode = strawberry.enum(chn.ChannelErrorCode, description="Codes of channel failures.")


@strawberry.type(description="An API key given to an application: allowed models, quota, rate limits. The key "
                                    "itself is shown once, by createChannel and rotateChannelKey.")
class Channel:
    id: strawberry.ID
    name: str
    alias: str
    remark: str
    email: str
    key_prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    quota: int | None = strawberry.field(description="Tokens the channel may use; null: unlimited.")
    used_tokens: int
    expires_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    enabled: bool
    model_ids: list[strawberry.ID]
    created_at: datetime | None
    last_operator: str

    @strawberry.field(description="The models this key may call.")
    async def models(self, info: Info) -> list[Model]:
        found = await info.context.loaders.model.load_many([int(i) for i in self.model_ids])
        return [Model.from_domain(m) for m in found if m is not None]

    @classmethod
    def from_domain(cls, c: chn.Channel) -> Channel:
        return cls(id=strawberry.ID(str(c.id)), name=c.name, alias=c.alias, remark=c.remark, email=c.email,
                   key_prefix=c.key_prefix, quota=c.quota, used_tokens=c.used_tokens, expires_at=c.expires_at,
                   rpm_limit=c.rpm_limit, tpm_limit=c.tpm_limit, enabled=c.enabled,
                   model_ids=[strawberry.ID(str(i)) for i in c.model_ids], created_at=c.created_at,
                   last_operator=c.last_operator)


@strawberry.type(description="Usage of one channel and model on one day (UTC).")
class ChannelUsage:
    channel_id: strawberry.ID
    model: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


@strawberry.type
class ChannelError:
    field: str | None
    code: ChannelErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type
class ChannelPayload:
    channel: Channel | None = None
    key: str | None = strawberry.field(default=None, description="Only on create and rotate: keep it, it is "
                                                                "not shown again.")
    errors: list[ChannelError] = strawberry.field(default_factory=list)


@strawberry.input
class ChannelInput:
    alias: str | None = None
    remark: str | None = None
    email: str | None = None
    quota: int | None = strawberry.field(default=None, description="Tokens; see unlimitedQuota.")
    unlimited_quota: bool | None = None
    expires_at: datetime | None = None
    never_expires: bool | None = None
    rpm_limit: int | None = strawberry.field(default=None, description="Requests per minute; see unlimitedRpm.")
    unlimited_rpm: bool | None = strawberry.field(default=None, description="true: no RPM limit.")
    tpm_limit: int | None = strawberry.field(default=None, description="Tokens per minute; see unlimitedTpm.")
    unlimited_tpm: bool | None = strawberry.field(default=None, description="true: no TPM limit.")
    enabled: bool | None = None
    model_ids: list[strawberry.ID] | None = None


@strawberry.input
class UpdateChannelInput(ChannelInput):
    id: strawberry.ID = strawberry.field(description="The channel.")
