"""The dashboard's overview: the tenant's deployments by status, the GPU pool, and the gateway's requests by
model and status. Usage over time comes from channel usage and running jobs from their own queries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aigc_admin.domain.capacity import GpuPool
from aigc_admin.domain.deployments.service import DeploymentService
from aigc_admin.domain.models.service import ModelService

# (operation, model, HTTP status, error type) → requests, as the gateway counts them in this process
RequestCounts = Callable[[], Mapping[tuple[str, str, str, str], int]]


@dataclass(frozen=True)
class RequestCount:
    model: str
    status: str
    requests: int


@dataclass(frozen=True)
class Overview:
    deployments: dict[str, int]
    gpu_total: int
    gpu_in_use: int
    requests: list[RequestCount] = field(default_factory=list)


class DashboardService:
    def __init__(self, *, deployments: DeploymentService, models: ModelService, gpus: GpuPool,
                 request_counts: RequestCounts) -> None:
        self.deployments = deployments
        self.models = models
        self.gpus = gpus
        self.request_counts = request_counts

    async def overview(self, *, tenant_id: int | None) -> Overview:
        counts = await self.deployments.status_counts(tenant_id=tenant_id)
        visible: set[str] | None = None
        if tenant_id is not None:
            models, _ = await self.models.list(tenant_id=tenant_id, offset=0, limit=10_000)
            visible = {m.name for m in models}
        merged: dict[tuple[str, str], int] = {}
        for (_, model, status, _), n in list(self.request_counts().items()):
            if visible is None or model in visible:
                merged[(model, status)] = merged.get((model, status), 0) + n
        requests = [RequestCount(model, status, n) for (model, status), n in sorted(merged.items())]
        return Overview(deployments=counts, gpu_total=self.gpus.total, gpu_in_use=await self.gpus.in_use(),
                        requests=requests)
