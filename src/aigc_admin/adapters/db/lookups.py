"""Batch reads for the per-request dataloaders (one query per relation per request)."""

from __future__ import annotations

import builtins

from aigc_admin.adapters.db.accounts import AccountRepo
from aigc_admin.adapters.db.assistants import AssistantRepo
from aigc_admin.adapters.db.evaluations import EvaluationRepo
from aigc_admin.adapters.db.model_registry import ModelRepo
from aigc_admin.adapters.db.tenants import TenantRepo
from aigc_admin.domain.accounts.entities import Account
from aigc_admin.domain.assistants.entities import Tool
from aigc_admin.domain.evaluations.entities import Evaluation
from aigc_admin.domain.models.service import ModelRecord
from aigc_admin.domain.tenants.service import Member, Tenant


class Lookups:
    """Batch reads for per-request dataloaders."""

    def __init__(self) -> None:
        self._accounts = AccountRepo()
        self._tenants = TenantRepo()

    async def accounts_by_id(self, ids: builtins.list[int]) -> dict[int, Account]:
        return await self._accounts.get_many(ids)

    async def tenants_by_id(self, ids: builtins.list[int]) -> dict[int, Tenant]:
        return await self._tenants.get_many(ids)

    async def members_by_tenant(self, ids: builtins.list[int]) -> dict[int, builtins.list[Member]]:
        return await self._tenants.members_of(ids)

    async def models_by_id(self, ids: builtins.list[int]) -> dict[int, ModelRecord]:
        return await ModelRepo().get_many(ids)

    async def evaluations_by_fine_tune_job(self, ids: builtins.list[int]) -> dict[int, builtins.list[Evaluation]]:
        return await EvaluationRepo().by_fine_tune_jobs(ids)

    async def tools_by_id(self, ids: builtins.list[int]) -> dict[int, Tool]:
        return await AssistantRepo().tools_many(ids)
