"""Deployments: deploy, undeploy, scale, redeploy; status, logs, health; live subscriptions."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry
from strawberry.types import Info

from aigc_admin.domain import events as topics
from aigc_admin.domain.deployments.entities import DeploymentStatus, Engine, EngineOptions
from aigc_admin.domain.deployments.service import DeployRequest
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import (
    MAX_PAGE,
    ctx,
    operator,
    page,
    page_args,
    parse_id,
    request_tenant,
    typed_errors,
)
from aigc_admin.schema import deployments as de
from aigc_admin.schema.common import Page, Pagination


@strawberry.type
class DeploymentQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="The tenant's deployments, newest first; with modelIds, only those models' "
                                  "(at most 100 ids).")
    async def deployments(self, info: Info, status: list[de.DeploymentStatus] | None = None,  # type: ignore[valid-type]
                          pagination: Pagination | None = None,
                          model_ids: list[strawberry.ID] | None = None) -> Page[de.Deployment]:
        offset, limit = page_args(pagination)
        models = [parse_id(m, "modelIds") for m in model_ids[:MAX_PAGE]] if model_ids is not None else None
        rows, total = await ctx(info).services.deployments.list(
            tenant_id=request_tenant(info), statuses=[DeploymentStatus(s) for s in status] if status else None,
            offset=offset, limit=limit, model_ids=models)
        return page([de.Deployment.from_domain(d) for d in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def deployment(self, info: Info, id: strawberry.ID) -> de.Deployment | None:
        try:
            d = await ctx(info).services.deployments.get(parse_id(id), tenant_id=request_tenant(info))
        except DomainError:
            return None
        return de.Deployment.from_domain(d)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Log lines of one replica from line since (0: the start).")
    async def deployment_logs(self, info: Info, id: strawberry.ID, replica: int = 0, since: int = 0) -> de.LogLines:
        try:
            chunk = await ctx(info).services.deployments.logs(parse_id(id), tenant_id=request_tenant(info),
                                                              since=max(0, since), replica=max(0, replica))
        except DomainError:
            return de.LogLines(lines=[], cursor=since)
        return de.LogLines(lines=chunk.lines[-2000:], cursor=chunk.cursor)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="Recent probes of a deployment's workers.")
    async def deployment_health(self, info: Info, id: strawberry.ID, limit: int = 50) -> list[de.HealthProbe]:
        try:
            rows = await ctx(info).services.deployments.health(parse_id(id), tenant_id=request_tenant(info),
                                                               limit=min(max(1, limit), 500))
        except DomainError:
            return []
        return [de.HealthProbe(worker_address=r.worker_address, healthy=r.healthy, speed=r.speed,
                               queue_length=r.queue_length, detail=r.detail, checked_at=r.checked_at, running=r.running,
                               waiting=r.waiting, kv_cache_usage=r.kv_cache_usage) for r in rows]


@strawberry.type
class DeploymentMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Deploy a local model: recorded PENDING, then started by a job.")
    @typed_errors
    async def deploy_model(self, info: Info, input: de.DeployModelInput) -> de.DeploymentPayload:
        req = DeployRequest(model_id=parse_id(input.model_id, "modelId"), replicas=input.replicas,
                            gpus_per_replica=input.gpus_per_replica, label=input.label,
                            quantization=input.quantization, engine=Engine(input.engine),
                            options=input.engine_options.to_domain() if input.engine_options else EngineOptions(),
                            base_deployment_id=parse_id(input.base_deployment_id, "baseDeploymentId")
                            if input.base_deployment_id is not None else None)
        d = await ctx(info).services.deployments.deploy(req, tenant_id=request_tenant(info), operator=operator(info))
        return de.DeploymentPayload(deployment=de.Deployment.from_domain(d))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Stop a deployment (idempotent).")
    @typed_errors
    async def undeploy_model(self, info: Info, id: strawberry.ID) -> de.DeploymentPayload:
        d = await ctx(info).services.deployments.undeploy(parse_id(id), tenant_id=request_tenant(info))
        return de.DeploymentPayload(deployment=de.Deployment.from_domain(d))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Change the number of replicas.")
    @typed_errors
    async def scale_deployment(self, info: Info, input: de.ScaleDeploymentInput) -> de.DeploymentPayload:
        d = await ctx(info).services.deployments.scale(parse_id(input.id), input.replicas,
                                                       tenant_id=request_tenant(info))
        return de.DeploymentPayload(deployment=de.Deployment.from_domain(d))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Start a failed or stopped deployment again with the same settings.")
    @typed_errors
    async def redeploy_model(self, info: Info, id: strawberry.ID) -> de.DeploymentPayload:
        d = await ctx(info).services.deployments.redeploy(parse_id(id), tenant_id=request_tenant(info))
        return de.DeploymentPayload(deployment=de.Deployment.from_domain(d))


@strawberry.type
class DeploymentSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="A deployment's status as it changes (starts with the current one).")
    async def deployment_status_changed(self, info: Info, id: strawberry.ID) -> AsyncGenerator[de.Deployment, None]:
        c = ctx(info)
        try:
            current = await c.services.deployments.get(parse_id(id), tenant_id=request_tenant(info))
        except DomainError:
            return
        async with c.services.events.subscribe(topics.deployment(current.id)) as events:
            yield de.Deployment.from_domain(current)
            async for event in events:
                yield de.Deployment.from_event(event)

    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Status changes of every deployment of the request's tenant.")
    async def deployments_status_changed(self, info: Info) -> AsyncGenerator[de.Deployment, None]:
        async with ctx(info).services.events.subscribe(topics.tenant_deployments(request_tenant(info))) as events:
            async for event in events:
                yield de.Deployment.from_event(event)

    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Controller liveness and the tenant's workers, after every health probe.")
    async def fastchat_health(self, info: Info) -> AsyncGenerator[de.FastChatHealth, None]:
        tenant_id = request_tenant(info)
        async with ctx(info).services.events.subscribe(topics.FASTCHAT_HEALTH) as events:
            async for event in events:
                workers = [w for w in event.get("workers", []) if w.get("tenant_id") == tenant_id]
                yield de.FastChatHealth(
                    controller_alive=bool(event.get("controller_alive")),
                    checked_at=datetime.fromisoformat(event["checked_at"]) if event.get("checked_at")
                    else datetime.now(UTC),
                    workers=[de.HealthProbe(worker_address=w["address"], healthy=w["healthy"], speed=w["speed"],
                                            queue_length=w["queue_length"], detail=w.get("detail", ""),
                                            checked_at=datetime.fromisoformat(event["checked_at"]),
                                            running=w.get("running", 0), waiting=w.get("waiting", 0),
                                            kv_cache_usage=w.get("kv_cache_usage"))
                             for w in workers])
