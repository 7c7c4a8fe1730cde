"""Deleting a tenant: one cascade, run as a job (``tenant.delete:<id>``) after ``TenantService.delete`` marked the
tenant and removed its memberships. In order: its deployments are stopped on the runtime (nothing keeps serving
it), its channels deleted (every key stops working at once), its evaluations deleted (a running one stops at its
next batch), its fine-tuning jobs stopped and forgotten, its
grants and the models fine-tuned for it removed, its datasets, files and fine-tuning outputs deleted from the
database and the disk, and the tenant row last. Each step removes what is left, so running it again after a
failure finishes the work."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aigc_admin.domain.tenants.service import TenantRepository

log = logging.getLogger(__name__)


class TenantPart(Protocol):
    async def remove_tenant(self, tenant_id: int) -> Any: ...


class TrainingPart(Protocol):
    async def remove_tenant(self, tenant_id: int) -> builtins.list[Any]:
        """The removed jobs (``job_id``, ``fine_tuned_model``)."""
        ...


class ModelPart(Protocol):
    async def remove_tenant(self, tenant_id: int, *, fine_tuned: builtins.list[str]) -> None: ...


class FilePart(Protocol):
    async def remove_tenant(self, tenant_id: int, *, also: Sequence[str] = ()) -> int: ...


@dataclass(frozen=True)
class Removed:
    deployments: int
    channels: int
    evaluations: int
    training_jobs: int
    datasets: int
    files: int


class TenantDeletion:
    def __init__(self, *, tenants: TenantRepository, deployments: TenantPart, channels: TenantPart,
                 training: TrainingPart, models: ModelPart, datasets: TenantPart, files: FilePart,
                 evaluations: TenantPart) -> None:
        self.tenants = tenants
        self.evaluations = evaluations
        self.deployments = deployments
        self.channels = channels
        self.training = training
        self.models = models
        self.datasets = datasets
        self.files = files

    async def run(self, tenant_id: int) -> Removed | None:
        """Remove the tenant and everything it owns; None when there is no tenant (already deleted) or it was not
        marked for deletion (only ``deleteTenant`` starts this)."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None or not tenant.deleting:
            return None
        deployments = await self.deployments.remove_tenant(tenant_id)
        channels = await self.channels.remove_tenant(tenant_id)
        evaluations = await self.evaluations.remove_tenant(tenant_id)
        jobs = await self.training.remove_tenant(tenant_id)
        await self.models.remove_tenant(tenant_id, fine_tuned=[j.fine_tuned_model for j in jobs
                                                                if j.fine_tuned_model])
        datasets = await self.datasets.remove_tenant(tenant_id)
        files = await self.files.remove_tenant(tenant_id, also=[f"finetunes/{j.job_id}" for j in jobs])
        await self.tenants.delete(tenant_id)
        removed = Removed(deployments, channels, evaluations, len(jobs), datasets, files)
        log.info("tenant %s (%s) deleted: %s", tenant_id, tenant.code, removed)
        return removed
