"""Model registry: local (FastChat-served) models and external OpenAI-compatible upstreams."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aigc_admin.domain.errors import DomainError, Duplicate, Invalid, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
CONV_TEMPLATE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # FastChat's template names


class Provider(StrEnum):
    LOCAL = "local"  # served by FastChat workers the platform deploys
    EXTERNAL = "external"  # an OpenAI-compatible upstream (base URL + credentials)


class ModelType(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"


class ModelErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"
    IN_USE = "IN_USE"


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    provider: Provider
    model_type: ModelType
    max_tokens: int
    parameters: float
    enabled: bool
    remark: str
    is_fine_tuned: bool
    base_url: str
    has_credentials: bool
    model_path: str
    created_at: datetime
    last_operator: str = ""
    tenant_ids: tuple[int, ...] = field(default_factory=tuple)
    # How a chat becomes a prompt: a FastChat conversation template named here (an override), else the model's own
    # chat template (read from its files when it was registered), else FastChat's template matched by the name.
    conversation_template: str = ""
    chat_template: str = field(default="", repr=False)  # JSON: the model's own template and special tokens

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)


@dataclass(frozen=True)
class ModelChanges:
    """Fields to change; None leaves a field as it is."""

    max_tokens: int | None = None
    parameters: float | None = None
    enabled: bool | None = None
    remark: str | None = None
    base_url: str | None = None
    credentials: str | None = None  # "" clears them
    model_path: str | None = None
    model_type: ModelType | None = None
    tenant_ids: builtins.list[int] | None = None
    conversation_template: str | None = None  # "" goes back to choosing by the model's files and name


class ModelFiles(Protocol):
    async def chat_template(self, model_path: str) -> str:
        """The model's own chat template (JSON), or "" when it has none or its files cannot be read here."""
        ...


def _check_conversation_template(name: str | None) -> None:
    if name and not CONV_TEMPLATE_RE.match(name):
        raise Invalid("conversationTemplate", "conversationTemplate is a FastChat template name (letters, digits, "
                      ". _ -), or empty to choose by the model")


class ModelRepository(Protocol):
    async def get(self, model_id: int) -> ModelRecord | None: ...
    async def get_by_name(self, name: str) -> ModelRecord | None: ...
    async def create(self, record: ModelRecord, credentials_cipher: str) -> ModelRecord: ...
    async def update(self, model_id: int, changes: dict[str, object],
                     tenant_ids: builtins.list[int] | None) -> ModelRecord: ...
    async def delete(self, model_id: int) -> None: ...
    async def list(self, *, tenant_id: int | None, search: str | None, provider: Provider | None,
                   offset: int, limit: int) -> tuple[builtins.list[ModelRecord], int]: ...
    async def existing_tenants(self, ids: builtins.list[int]) -> set[int]: ...
    async def credentials(self, model_id: int) -> str: ...
    async def credentials_of(self, model_ids: builtins.list[int]) -> dict[int, str]: ...
    async def active_deployments(self, model_id: int) -> int: ...


class SecretBox(Protocol):
    def encrypt(self, plain: str) -> str: ...
    def decrypt(self, cipher: str) -> str: ...


def _check_numbers(max_tokens: int | None, parameters: float | None) -> None:
    if max_tokens is not None and not 1 <= max_tokens <= 10_000_000:
        raise Invalid("maxTokens", "maxTokens must be between 1 and 10,000,000")
    if parameters is not None and not 0 <= parameters <= 100_000:
        raise Invalid("parameters", "parameters (billions) must be between 0 and 100,000")


def _check_url(base_url: str) -> None:
    if not re.match(r"^https?://[^\s/]+", base_url):
        raise Invalid("baseUrl", "baseUrl must be an http(s) URL")


class ModelService:
    def __init__(self, *, repo: ModelRepository, secrets: SecretBox, files: ModelFiles | None = None) -> None:
        self.repo = repo
        self.secrets = secrets
        self.files = files  # reads a local model's chat template when it is registered

    async def get(self, model_id: int, *, tenant_id: int | None = None) -> ModelRecord:
        """The model; with ``tenant_id`` only when that tenant may see it (others' models look missing)."""
        record = await self.repo.get(model_id)
        if record is None or (tenant_id is not None and tenant_id not in record.tenant_ids):
            raise NotFound("model", model_id)
        return record

    async def list(self, *, tenant_id: int | None, search: str | None = None, provider: Provider | None = None,
                   offset: int = 0, limit: int = 20) -> tuple[builtins.list[ModelRecord], int]:
        return await self.repo.list(tenant_id=tenant_id, search=search, provider=provider, offset=offset,
                                    limit=limit)

    async def create(self, *, name: str, provider: Provider, model_type: ModelType, max_tokens: int = 2048,
                     parameters: float = 0, enabled: bool = True, remark: str = "", base_url: str = "",
                     credentials: str = "", model_path: str = "", tenant_ids: builtins.list[int] | None = None,
                     is_fine_tuned: bool = False, operator: str = "", conversation_template: str = "") -> ModelRecord:
        name = name.strip()
        if not NAME_RE.match(name):
            raise Invalid("name", "name must be 1-128 letters, digits or . _ : / - and start with a letter or digit")
        _check_numbers(max_tokens, parameters)
        _check_conversation_template(conversation_template)
        if provider == Provider.EXTERNAL:
            _check_url(base_url)
        elif base_url or credentials:
            raise Invalid("baseUrl", "baseUrl and credentials are only for external models")
        if await self.repo.get_by_name(name) is not None:
            raise Duplicate("name", f"a model named {name!r} exists")
        tenants = await self._tenants(tenant_ids or [])
        record = ModelRecord(id=0, name=name, provider=provider, model_type=model_type, max_tokens=max_tokens,
                             parameters=parameters, enabled=enabled, remark=remark, is_fine_tuned=is_fine_tuned,
                             base_url=base_url, has_credentials=bool(credentials), model_path=model_path,
                             created_at=datetime.now(), last_operator=operator, tenant_ids=tuple(tenants),
                             conversation_template=conversation_template,
                             chat_template=await self._chat_template(provider, model_path))
        return await self.repo.create(record, self.secrets.encrypt(credentials) if credentials else "")

    async def _chat_template(self, provider: Provider, model_path: str) -> str:
        if provider != Provider.LOCAL or not model_path or self.files is None:
            return ""
        return await self.files.chat_template(model_path)

    async def update(self, model_id: int, changes: ModelChanges, *, operator: str = "") -> ModelRecord:
        record = await self.get(model_id)
        _check_numbers(changes.max_tokens, changes.parameters)
        values: dict[str, object] = {k: v for k, v in {
            "max_tokens": changes.max_tokens, "parameters": changes.parameters, "enabled": changes.enabled,
            "remark": changes.remark, "model_path": changes.model_path,
            "model_type": changes.model_type.value if changes.model_type else None,
        }.items() if v is not None}
        if changes.base_url is not None or changes.credentials is not None:
            if record.provider != Provider.EXTERNAL:
                raise Invalid("baseUrl", "baseUrl and credentials are only for external models")
            if changes.base_url is not None:
                _check_url(changes.base_url)
                values["base_url"] = changes.base_url
            if changes.credentials is not None:
                values["upstream_secret"] = self.secrets.encrypt(changes.credentials) if changes.credentials else ""
        if changes.conversation_template is not None:
            _check_conversation_template(changes.conversation_template)
            values["conversation_template"] = changes.conversation_template
        if changes.model_path is not None:  # other files: read their chat template again
            values["chat_template"] = await self._chat_template(record.provider, changes.model_path)
        values["last_operator"] = operator
        tenants = await self._tenants(changes.tenant_ids) if changes.tenant_ids is not None else None
        return await self.repo.update(model_id, values, tenants)

    async def delete(self, model_id: int) -> None:
        await self.get(model_id)
        if await self.repo.active_deployments(model_id):
            raise DomainError(ModelErrorCode.IN_USE, "undeploy the model before deleting it", "id")
        await self.repo.delete(model_id)

    async def remove_tenant(self, tenant_id: int, *, fine_tuned: builtins.list[str]) -> None:
        """A tenant being deleted: its grants go, and the models fine-tuned for it (``fine_tuned``) too, unless an
        administrator granted them to another tenant."""
        while True:
            records, _ = await self.repo.list(tenant_id=tenant_id, search=None, provider=None, offset=0, limit=100)
            if not records:
                break
            for r in records:
                await self.repo.update(r.id, {}, [t for t in r.tenant_ids if t != tenant_id])
        for name in fine_tuned:
            record = await self.repo.get_by_name(name)
            if record is not None and record.is_fine_tuned and not record.tenant_ids:
                await self.repo.delete(record.id)

    async def credentials(self, model_id: int) -> str:
        """Decrypted upstream credentials (for the gateway only; never returned over GraphQL)."""
        cipher = await self.repo.credentials(model_id)
        return self.secrets.decrypt(cipher) if cipher else ""

    async def credentials_of(self, model_ids: builtins.list[int]) -> dict[int, str]:
        """Decrypted credentials of several models in one query (models without any are left out)."""
        ciphers = await self.repo.credentials_of(model_ids) if model_ids else {}
        return {i: self.secrets.decrypt(c) for i, c in ciphers.items() if c}

    async def _tenants(self, ids: builtins.list[int]) -> builtins.list[int]:
        wanted = sorted(set(ids))
        missing = set(wanted) - await self.repo.existing_tenants(wanted)
        if missing:
            raise NotFound("tenant", ", ".join(map(str, sorted(missing))), "tenantIds")
        return wanted
