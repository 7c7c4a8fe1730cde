"""Channels: API keys given to applications, each limited to some models, with quota and rate limits.

A key (``sk-`` + 48 characters) is shown once, on create and on rotate; only its keyed hash and a
visible prefix are stored. Every change evicts the key from the gateways' caches at once.
"""

from __future__ import annotations

import builtins
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Protocol

from aigc_admin.domain.errors import DomainError, NotFound


class ChannelErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"


@dataclass(frozen=True)
class Channel:
    id: int
    tenant_id: int
    name: str
    alias: str
    remark: str
    email: str
    key_prefix: str
    quota: int | None  # tokens; None = unlimited
    used_tokens: int
    expires_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    enabled: bool
    model_ids: tuple[int, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    last_operator: str = ""


@dataclass(frozen=True)
class ChannelInput:
    alias: str | None = None
    remark: str | None = None
    email: str | None = None
    quota: int | None = None
    unlimited_quota: bool | None = None  # True clears the quota
    expires_at: datetime | None = None
    never_expires: bool | None = None  # True clears the expiry
    rpm_limit: int | None = None
    unlimited_rpm: bool | None = None  # True clears the RPM limit
    tpm_limit: int | None = None
    unlimited_tpm: bool | None = None  # True clears the TPM limit
    enabled: bool | None = None
    model_ids: builtins.list[int] | None = None


@dataclass(frozen=True)
class UsageRow:
    channel_id: int
    model: str
    day: date
    requests: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """What the gateway needs to know about a channel to admit a request, kept in memory by every process."""

    id: int
    tenant_id: int
    enabled: bool
    expires_at: datetime | None
    allowed_models: frozenset[str]
    quota: int | None  # tokens; None = unlimited
    rpm: int | None  # requests per minute; None = unlimited
    tpm: int | None  # tokens per minute; None = unlimited

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        now = now or datetime.now(UTC)
        expires = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return expires <= now

    def usable(self, now: datetime | None = None) -> bool:
        """Enabled and not expired (checked on every request: the cache may hold a key past its expiry)."""
        return self.enabled and not self.expired(now)

    def allows(self, model: str) -> bool:
        """Whether the allow-list contains ``model`` (an empty allow-list allows nothing)."""
        return model in self.allowed_models


UsageKey = tuple[int, str, date]  # (channel id, model name, UTC day)


@dataclass(slots=True)
class UsageCounts:
    """Requests and tokens of one (channel, model, day), as the gateway aggregates them before writing."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: UsageCounts) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class ChannelRepository(Protocol):
    async def get(self, channel_id: int) -> Channel | None: ...
    async def create(self, *, tenant_id: int, name: str, key_hash: str, key_prefix: str, operator: str,
                     values: dict[str, object], model_ids: builtins.list[int]) -> Channel: ...
    async def update(self, channel_id: int, values: dict[str, object],
                     model_ids: builtins.list[int] | None) -> Channel: ...
    async def delete(self, channel_id: int) -> None: ...
    async def list(self, *, tenant_id: int, offset: int, limit: int) -> tuple[builtins.list[Channel], int]: ...
    async def key_hash(self, channel_id: int) -> str: ...
    async def find_by_key_hash(self, key_hash: str) -> Channel | None: ...
    async def models_of_tenant(self, tenant_id: int, model_ids: builtins.list[int]) -> set[int]: ...
    async def usage(self, *, tenant_id: int, channel_id: int | None, model: str | None, start: date | None,
                    end: date | None) -> builtins.list[UsageRow]: ...


class KeyMinter(Protocol):
    def new(self) -> str: ...
    def hash(self, key: str) -> str: ...
    def prefix(self, key: str) -> str: ...


class KeyCacheInvalidator(Protocol):
    async def invalidate(self, key_hash: str) -> None: ...


def _limits(values: ChannelInput) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value, low in (("quota", values.quota, 0), ("rpm_limit", values.rpm_limit, 1),
                             ("tpm_limit", values.tpm_limit, 1)):
        if value is not None:
            if not low <= value <= 10**15:
                raise DomainError(ChannelErrorCode.INVALID, f"{name} must be at least {low}", _camel(name))
            out[name] = value
    if values.unlimited_quota:
        out["quota"] = None
    if values.unlimited_rpm:
        out["rpm_limit"] = None
    if values.unlimited_tpm:
        out["tpm_limit"] = None
    if values.expires_at is not None:
        if values.expires_at.tzinfo is None:
            raise DomainError(ChannelErrorCode.INVALID, "expiresAt needs a time zone", "expiresAt")
        out["expires_at"] = values.expires_at
    if values.never_expires:
        out["expires_at"] = None
    if values.alias is not None:
        if not 1 <= len(values.alias.strip()) <= 64:
            raise DomainError(ChannelErrorCode.INVALID, "alias must have 1 to 64 characters", "alias")
        out["alias"] = values.alias.strip()
    if values.email is not None:
        if values.email and not re.match(r"^[^@\s]+@[^@\s]+$", values.email):
            raise DomainError(ChannelErrorCode.INVALID, "email is not an e-mail address", "email")
        out["email"] = values.email
    for name in ("remark", "enabled"):
        value = getattr(values, name)
        if value is not None:
            out[name] = value
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class ChannelService:
    def __init__(self, *, repo: ChannelRepository, keys: KeyMinter, cache: KeyCacheInvalidator) -> None:
        self.repo = repo
        self.keys = keys
        self.cache = cache

    async def get(self, channel_id: int, *, tenant_id: int) -> Channel:
        channel = await self.repo.get(channel_id)
        if channel is None or channel.tenant_id != tenant_id:
            raise NotFound("channel", channel_id)
        return channel

    async def list(self, *, tenant_id: int, offset: int = 0, limit: int = 20) -> tuple[builtins.list[Channel], int]:
        return await self.repo.list(tenant_id=tenant_id, offset=offset, limit=limit)

    async def create(self, values: ChannelInput, *, tenant_id: int, operator: str) -> tuple[Channel, str]:
        """The new channel and its key (shown once)."""
        fields = _limits(values)
        expires = fields.get("expires_at")
        if isinstance(expires, datetime) and expires <= datetime.now(UTC):
            # a key dead on arrival; an existing channel may still be given a past date (it expires at once)
            raise DomainError(ChannelErrorCode.INVALID, "expiresAt is in the past", "expiresAt")
        fields.setdefault("alias", "New Channel")
        models = await self._models(tenant_id, values.model_ids or [])
        key = self.keys.new()
        channel = await self.repo.create(tenant_id=tenant_id, name=f"ch-{uuid.uuid4().hex[:20]}",
                                         key_hash=self.keys.hash(key), key_prefix=self.keys.prefix(key),
                                         operator=operator, values=fields, model_ids=models)
        return channel, key

    async def create_with_key(self, key: str, values: ChannelInput, *, tenant_id: int, name: str) -> Channel | None:
        """A channel with an operator-chosen key (the original's default channel); None when it exists."""
        if not re.match(r"^sk-[A-Za-z0-9]{48}$", key):
            raise DomainError(ChannelErrorCode.INVALID, "a channel key is sk- and 48 letters or digits", "key")
        fields = _limits(values)
        fields.setdefault("alias", name)
        if await self.repo.find_by_key_hash(self.keys.hash(key)) is not None:
            return None
        return await self.repo.create(tenant_id=tenant_id, name=name, key_hash=self.keys.hash(key),
                                      key_prefix=self.keys.prefix(key), operator="system", values=fields,
                                      model_ids=await self._models(tenant_id, values.model_ids or []))

    async def update(self, channel_id: int, values: ChannelInput, *, tenant_id: int, operator: str) -> Channel:
        await self.get(channel_id, tenant_id=tenant_id)
        fields = _limits(values)
        fields["last_operator"] = operator
        models = await self._models(tenant_id, values.model_ids) if values.model_ids is not None else None
        channel = await self.repo.update(channel_id, fields, models)
        await self.cache.invalidate(await self.repo.key_hash(channel_id))
        return channel

    async def rotate(self, channel_id: int, *, tenant_id: int, operator: str) -> tuple[Channel, str]:
        await self.get(channel_id, tenant_id=tenant_id)
        old_hash = await self.repo.key_hash(channel_id)
        key = self.keys.new()
        channel = await self.repo.update(channel_id, {"api_key_hash": self.keys.hash(key),
                                                      "api_key_prefix": self.keys.prefix(key),
                                                      "last_operator": operator}, None)
        await self.cache.invalidate(old_hash)  # the old key stops working at once, in every gateway
        return channel, key

    async def key_hash_of(self, channel_id: int, *, tenant_id: int) -> str:
        """The key hash of a channel of this tenant (the playground charges its requests to it)."""
        await self.get(channel_id, tenant_id=tenant_id)
        return await self.repo.key_hash(channel_id)

    async def remove_tenant(self, tenant_id: int) -> int:
        """Delete every channel of a tenant being deleted: each key stops working at once."""
        removed = 0
        while True:
            channels, _ = await self.repo.list(tenant_id=tenant_id, offset=0, limit=100)
            if not channels:
                return removed
            for channel in channels:
                await self.delete(channel.id, tenant_id=tenant_id)
                removed += 1

    async def delete(self, channel_id: int, *, tenant_id: int) -> None:
        await self.get(channel_id, tenant_id=tenant_id)
        old_hash = await self.repo.key_hash(channel_id)
        await self.repo.delete(channel_id)
        await self.cache.invalidate(old_hash)

    async def usage(self, *, tenant_id: int, channel_id: int | None = None, model: str | None = None,
                    start: date | None = None, end: date | None = None) -> builtins.list[UsageRow]:
        if channel_id is not None:
            await self.get(channel_id, tenant_id=tenant_id)
        return await self.repo.usage(tenant_id=tenant_id, channel_id=channel_id, model=model, start=start, end=end)

    async def _models(self, tenant_id: int, model_ids: builtins.list[int]) -> builtins.list[int]:
        wanted = sorted(set(model_ids))
        missing = set(wanted) - await self.repo.models_of_tenant(tenant_id, wanted)
        if missing:
            # a model the tenant may not use looks the same as a missing one
            raise NotFound("model", ", ".join(map(str, sorted(missing))), "modelIds")
        return wanted


def expired(channel: Channel, now: datetime | None = None) -> bool:
    return channel.expires_at is not None and channel.expires_at <= (now or datetime.now(UTC))
