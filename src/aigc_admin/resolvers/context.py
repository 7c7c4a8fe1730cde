"""Per-request context: who is calling, in which tenant, with which services and dataloaders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from aigc_admin.domain.accounts.entities import Account
from aigc_admin.domain.accounts.service import AccountService
from aigc_admin.domain.audit.service import AuditService
from aigc_admin.domain.channels.service import ChannelService
from aigc_admin.domain.datasets.service import DatasetService
from aigc_admin.domain.deployments.service import DeploymentService
from aigc_admin.domain.deployments.templates import TemplateService
from aigc_admin.domain.dicts.service import DictService
from aigc_admin.domain.files.service import FileService
from aigc_admin.domain.finetunes.service import FineTuneService
from aigc_admin.domain.models.service import ModelRecord, ModelService
from aigc_admin.domain.roles import Principal
from aigc_admin.domain.tenants.service import Member, Tenant, TenantService
from aigc_admin.settings import Settings


class TokenDecoder(Protocol):
    def decode(self, token: str) -> Any:
        """Claims with ``account_id``; raises on a bad or expired token."""
        ...


class Lookups(Protocol):
    """Batch reads used by dataloaders (one query per relation per request)."""

    async def accounts_by_id(self, ids: list[int]) -> dict[int, Account]: ...
    async def tenants_by_id(self, ids: list[int]) -> dict[int, Tenant]: ...
    async def members_by_tenant(self, ids: list[int]) -> dict[int, list[Member]]: ...
    async def models_by_id(self, ids: list[int]) -> dict[int, ModelRecord]: ...


class EventSource(Protocol):
    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...


@dataclass
class Services:
    """Everything resolvers may use; built once by the composition root (app.py)."""

    settings: Settings
    accounts: AccountService
    tenants: TenantService
    audit: AuditService
    dicts: DictService
    models: ModelService
    deployments: DeploymentService
    templates: TemplateService
    channels: ChannelService
    datasets: DatasetService
    files: FileService
    finetunes: FineTuneService
    tokens: TokenDecoder
    lookups: Lookups
    events: EventSource
    extra: dict[str, Any] = field(default_factory=dict)


class Loaders:
    def __init__(self, lookups: Lookups) -> None:
        def batch(fetch: Callable[[list[int]], Any], default: Any = None) -> DataLoader[int, Any]:
            async def load(keys: list[int]) -> list[Any]:
                found = await fetch(list(keys))
                return [found.get(k, default() if callable(default) else default) for k in keys]
            return DataLoader(load_fn=load)

        self.account = batch(lookups.accounts_by_id)
        self.tenant = batch(lookups.tenants_by_id)
        self.members = batch(lookups.members_by_tenant, list)
        self.model = batch(lookups.models_by_id)


class Context(BaseContext):
    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.principal: Principal | None = None
        self.auth_error: str | None = None
        self.tenant_id: int | None = None
        self.tenant_error: str | None = None
        self.trace_id = uuid.uuid4().hex
        self.remote_addr = ""
        self.connection_params: dict[str, Any] | None = None
        # typed errors of the mutations in this request, for the audit log
        self.mutation_errors: list[str] = []
        self.mutation_args: dict[str, Any] = {}

    @cached_property
    def loaders(self) -> Loaders:
        """Made on first use: a WebSocket connection's context lives as long as the connection, and most
        never load a relation (a subscription's payload is built from its events)."""
        return Loaders(self.services.lookups)

    async def authenticate(self, token: str | None, tenant_header: str | None) -> None:
        """Resolve the caller from a bearer token and check the requested tenant against membership."""
        self.principal, self.auth_error = None, None
        if token:
            try:
                claims = self.services.tokens.decode(token)
            except Exception:
                self.auth_error = "invalid or expired token"
            else:
                account = await self.services.lookups.accounts_by_id([claims.account_id])
                acc = account.get(claims.account_id)
                if acc is None or not acc.enabled:
                    self.auth_error = "account not found or disabled"
                else:
                    memberships = await self.services.accounts.memberships(acc.id)
                    self.principal = Principal(acc.id, acc.username, acc.is_platform_admin, memberships)
        self.tenant_id, self.tenant_error = None, None
        if tenant_header:
            try:
                wanted = int(tenant_header)
            except ValueError:
                self.tenant_error = "X-Tenant-Id must be a tenant id (an integer)"
                return
            if not 0 < wanted < 2**63:  # ids are positive BIGINTs; a larger one breaks the audit row on MySQL
                self.tenant_error = "X-Tenant-Id must be a tenant id (a positive integer)"
                return
            if self.principal is not None and self.principal.may_act_in(wanted):
                self.tenant_id = wanted
            else:
                self.tenant_error = f"not a member of tenant {wanted}"


def bearer_token(authorization: str | None, x_token: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return x_token.strip() if x_token and x_token.strip() else None
