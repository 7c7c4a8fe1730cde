"""Per-request context: who is calling, in which tenant, the platform's services, and the dataloaders."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from aigc_admin.domain.roles import Principal

if TYPE_CHECKING:
    from aigc_admin.bootstrap import Platform


class Loaders:
    """One batched read per relation per request (accounts, tenants, tenants' members, models, a fine-tuning job's
    gate evaluations)."""

    def __init__(self, lookups: Any) -> None:
        def batch(fetch: Callable[[list[int]], Any], default: Any = None) -> DataLoader[int, Any]:
            async def load(keys: list[int]) -> list[Any]:
                found = await fetch(list(keys))
                return [found.get(k, default() if callable(default) else default) for k in keys]
            return DataLoader(load_fn=load)

        self.account = batch(lookups.accounts_by_id)
        self.tenant = batch(lookups.tenants_by_id)
        self.members = batch(lookups.members_by_tenant, list)
        self.model = batch(lookups.models_by_id)
        self.gate_evaluations = batch(lookups.evaluations_by_fine_tune_job, list)
        self.tool = batch(lookups.tools_by_id)


class Context(BaseContext):
    def __init__(self, services: Platform) -> None:
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
        """The caller from a bearer token, and the requested tenant checked against its memberships."""
        who = await self.services.identity.identify(token, tenant_header)
        self.principal, self.auth_error = who.principal, who.auth_error
        self.tenant_id, self.tenant_error = who.tenant_id, who.tenant_error


def bearer_token(authorization: str | None, x_token: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return x_token.strip() if x_token and x_token.strip() else None
