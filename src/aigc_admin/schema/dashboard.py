"""The dashboard's overview."""

from __future__ import annotations

import strawberry


@strawberry.type
class StatusCount:
    status: str
    count: int


@strawberry.type
class GatewayRequestCount:
    model: str
    status: str = strawberry.field(description="HTTP status of the answer ('200', '429', …).")
    requests: int


@strawberry.type
class Dashboard:
    deployments: list[StatusCount] = strawberry.field(description="The tenant's deployments by status.")
    gpu_total: int = strawberry.field(description="GPUs of the platform's pool (runtime.gpu.num).")
    gpu_in_use: int = strawberry.field(description="GPUs held now by deployments and training, all tenants.")
    gateway_requests: list[GatewayRequestCount] = strawberry.field(
        description="/v1 requests to the tenant's models by HTTP status, counted by this API process since it "
                    "started (the error rate; Prometheus has every process's counts).")
