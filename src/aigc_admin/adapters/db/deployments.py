"""Deployments (model_deploy) and the health probes of their workers."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from tortoise.functions import Count

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.deployments.entities import (
    ACTIVE_STATUSES,
    Deployment,
    DeploymentStatus,
    Engine,
    EngineOptions,
    HealthRecord,
)


def _deployment(row: m.ModelDeploy, model: tuple[str, str]) -> Deployment:
    model_name, conversation_template = model
    return Deployment(
        id=row.id, model_id=row.model_id, model_name=model_name, tenant_id=row.tenant_id,  # type: ignore[attr-defined]
        conversation_template=conversation_template,
        status=DeploymentStatus(row.status), reason=row.reason, engine=Engine(row.engine), replicas=row.replicas,
        gpus_per_replica=row.gpus_per_replica, label=row.label, quantization=row.quantization,
        runtime_backend=row.runtime_backend, model_path=row.model_path,
        worker_addresses=tuple(json.loads(row.worker_addresses or "[]")), runtime_handle=row.runtime_handle,
        operator=row.operator, created_at=row.created_at, started_at=row.started_at, stopped_at=row.stopped_at,
        updated_at=row.updated_at, restarts=row.restarts,
        engine_options=EngineOptions.from_dict(json.loads(row.engine_options or "{}")),
        base_deployment_id=row.base_deploy_id)


class DeploymentRepo:
    async def _with_names(self, rows: builtins.list[m.ModelDeploy]) -> builtins.list[Deployment]:
        ids = {r.model_id for r in rows}
        models = {i: (str(n), str(c)) for i, n, c in await m.LLMModel.filter(id__in=ids).values_list(
            "id", "model_name", "conversation_template")} if ids else {}
        return [_deployment(r, models.get(r.model_id, ("", ""))) for r in rows]

    async def get(self, deployment_id: int) -> Deployment | None:
        row = await m.ModelDeploy.get_or_none(id=deployment_id)
        return (await self._with_names([row]))[0] if row else None

    async def create(self, **values: Any) -> Deployment:
        row = await m.ModelDeploy.create(**values)
        return (await self._with_names([row]))[0]

    async def delete(self, deployment_id: int) -> None:
        await m.ModelDeploy.filter(id=deployment_id).delete()

    async def update(self, deployment_id: int, **changes: Any) -> Deployment:
        await m.ModelDeploy.filter(id=deployment_id).update(**changes)
        return await self.get(deployment_id)  # type: ignore[return-value]

    async def active_for_model(self, model_id: int) -> Deployment | None:
        row = await m.ModelDeploy.filter(model_id=model_id, status__in=[s.value for s in ACTIVE_STATUSES]).first()
        return (await self._with_names([row]))[0] if row else None

    async def gpus_in_use(self) -> int:
        rows = await m.ModelDeploy.filter(status__in=[s.value for s in ACTIVE_STATUSES]).values_list(
            "replicas", "gpus_per_replica", "engine_options")
        # a multi-node replica holds its GPUs on each of its machines
        return sum(int(r) * int(g) * max(1, int(json.loads(o or "{}").get("nodes") or 1)) for r, g, o in rows)

    async def status_counts(self, tenant_id: int | None) -> dict[str, int]:
        qs = m.ModelDeploy.all() if tenant_id is None else m.ModelDeploy.filter(tenant_id=tenant_id)
        rows = await qs.annotate(n=Count("id")).group_by("status").values_list("status", "n")
        return {str(status): int(n) for status, n in rows}

    async def list(self, *, tenant_id: int | None, statuses: builtins.list[DeploymentStatus] | None,
                   offset: int, limit: int, model_ids: builtins.list[int] | None = None,
                   ) -> tuple[builtins.list[Deployment], int]:
        qs = m.ModelDeploy.all()
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        if model_ids is not None:
            qs = qs.filter(model_id__in=model_ids)
        if statuses:
            qs = qs.filter(status__in=[s.value for s in statuses])
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return await self._with_names(rows), total

    async def record_health(self, deployment_id: int | None, record: HealthRecord) -> None:
        await m.ModelHealth.create(deploy_id=deployment_id, worker_address=record.worker_address,
                                   healthy=record.healthy, speed=record.speed, queue_length=record.queue_length,
                                   detail=record.detail, running=record.running, waiting=record.waiting,
                                   kv_cache_usage=record.kv_cache_usage)

    async def prune_health(self, before: datetime) -> int:
        return int(await m.ModelHealth.filter(checked_at__lt=before).delete())

    async def health(self, deployment_id: int | None, limit: int) -> builtins.list[HealthRecord]:
        rows = await m.ModelHealth.filter(deploy_id=deployment_id).order_by("-id").limit(limit)
        return [HealthRecord(r.worker_address, r.healthy, r.speed, r.queue_length, r.detail, r.checked_at,
                             r.running, r.waiting, r.kv_cache_usage) for r in rows]
