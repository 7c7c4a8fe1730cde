"""Deployment fields: deploy, undeploy, scale, redeploy; status, logs, health; live subscriptions."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.deployments.entities import DeploymentStatus, Engine
from aigc_admin.domain.deployments.service import DeploymentErrorCode, DeployRequest
from aigc_admin.domain.errors import CommonErrorCode, DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page_args, parse_id, request_tenant, run_mutation
from aigc_admin.schema import types as t

FASTCHAT_HEALTH_TOPIC = "fastchat:health"


def _payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.DeploymentPayload, t.DeploymentError, DeploymentErrorCode, action)


def _template(x: Any) -> t.InferenceTemplate:
    return t.InferenceTemplate(id=strawberry.ID(str(x.id)), name=x.name, engine=x.engine, content=x.content,
                               enabled=x.enabled, remark=x.remark)


@strawberry.type
class TemplateFields:
    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def inference_templates(self, info: Info) -> list[t.InferenceTemplate]:
        return [_template(x) for x in await ctx(info).services.templates.list()]


@strawberry.type
class TemplateMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Add an inference template (validated: JSON shape and known variables only).")
    async def create_inference_template(self, info: Info,
                                        input: t.CreateInferenceTemplateInput) -> t.InferenceTemplatePayload:
        async def action() -> dict[str, Any]:
            x = await ctx(info).services.templates.create(name=input.name, engine=input.engine,
                                                          content=input.content, enabled=input.enabled,
                                                          remark=input.remark)
            return {"template": _template(x)}
        return await run_mutation(info, t.InferenceTemplatePayload, t.Error, CommonErrorCode, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def update_inference_template(self, info: Info,
                                        input: t.UpdateInferenceTemplateInput) -> t.InferenceTemplatePayload:
        async def action() -> dict[str, Any]:
            x = await ctx(info).services.templates.update(parse_id(input.id), content=input.content,
                                                          enabled=input.enabled, remark=input.remark)
            return {"template": _template(x)}
        return await run_mutation(info, t.InferenceTemplatePayload, t.Error, CommonErrorCode, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def delete_inference_template(self, info: Info, id: strawberry.ID) -> t.InferenceTemplatePayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.templates.delete(parse_id(id))
            return {}
        return await run_mutation(info, t.InferenceTemplatePayload, t.Error, CommonErrorCode, action)


@strawberry.type
class DeploymentQueries(TemplateFields):
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's deployments, newest first.")
    async def deployments(self, info: Info, status: list[t.DeploymentStatus] | None = None,  # type: ignore[valid-type]
                          pagination: t.Pagination | None = None) -> t.Page[t.Deployment]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.deployments.list(
            tenant_id=request_tenant(info), statuses=[DeploymentStatus(s) for s in status] if status else None,
            offset=offset, limit=limit)
        return t.Page(items=[t.Deployment.from_domain(d) for d in rows], total_count=total, offset=offset,
                      limit=limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def deployment(self, info: Info, id: strawberry.ID) -> t.Deployment | None:
        try:
            d = await ctx(info).services.deployments.get(parse_id(id), tenant_id=request_tenant(info))
        except DomainError:
            return None
        return t.Deployment.from_domain(d)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Log lines of one replica from line since (0: the start).")
    async def deployment_logs(self, info: Info, id: strawberry.ID, replica: int = 0, since: int = 0) -> t.LogLines:
        try:
            chunk = await ctx(info).services.deployments.logs(parse_id(id), tenant_id=request_tenant(info),
                                                              since=max(0, since), replica=max(0, replica))
        except DomainError:
            return t.LogLines(lines=[], cursor=since)
        return t.LogLines(lines=chunk.lines[-2000:], cursor=chunk.cursor)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="Recent probes of a deployment's workers.")
    async def deployment_health(self, info: Info, id: strawberry.ID, limit: int = 50) -> list[t.HealthProbe]:
        try:
            rows = await ctx(info).services.deployments.health(parse_id(id), tenant_id=request_tenant(info),
                                                               limit=min(max(1, limit), 500))
        except DomainError:
            return []
        return [t.HealthProbe(worker_address=r.worker_address, healthy=r.healthy, speed=r.speed,
                              queue_length=r.queue_length, detail=r.detail, checked_at=r.checked_at) for r in rows]


@strawberry.type
class DeploymentMutations(TemplateMutations):
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Deploy a local model: recorded PENDING, then started by a job.")
    async def deploy_model(self, info: Info, input: t.DeployModelInput) -> t.DeploymentPayload:
        async def action() -> dict[str, Any]:
            c = ctx(info)
            req = DeployRequest(model_id=parse_id(input.model_id, "modelId"), replicas=input.replicas,
                                gpus_per_replica=input.gpus_per_replica, label=input.label,
                                quantization=input.quantization, engine=Engine(input.engine))
            d = await c.services.deployments.deploy(req, tenant_id=request_tenant(info),
                                                    operator=c.principal.username if c.principal else "")
            return {"deployment": t.Deployment.from_domain(d)}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Stop a deployment (idempotent).")
    async def undeploy_model(self, info: Info, id: strawberry.ID) -> t.DeploymentPayload:
        async def action() -> dict[str, Any]:
            d = await ctx(info).services.deployments.undeploy(parse_id(id), tenant_id=request_tenant(info))
            return {"deployment": t.Deployment.from_domain(d)}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Change the number of replicas.")
    async def scale_deployment(self, info: Info, input: t.ScaleDeploymentInput) -> t.DeploymentPayload:
        async def action() -> dict[str, Any]:
            d = await ctx(info).services.deployments.scale(parse_id(input.id), input.replicas,
                                                           tenant_id=request_tenant(info))
            return {"deployment": t.Deployment.from_domain(d)}
        return await _payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Start a failed or stopped deployment again with the same settings.")
    async def redeploy_model(self, info: Info, id: strawberry.ID) -> t.DeploymentPayload:
        async def action() -> dict[str, Any]:
            d = await ctx(info).services.deployments.redeploy(parse_id(id), tenant_id=request_tenant(info))
            return {"deployment": t.Deployment.from_domain(d)}
        return await _payload(info, action)


@strawberry.type
class DeploymentSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="A deployment's status as it changes (starts with the current one).")
    async def deployment_status_changed(self, info: Info, id: strawberry.ID) -> AsyncGenerator[t.Deployment, None]:
        c = ctx(info)
        try:
            current = await c.services.deployments.get(parse_id(id), tenant_id=request_tenant(info))
        except DomainError:
            return
        async with c.services.events.subscribe(f"deployment:{current.id}") as events:
            yield t.Deployment.from_domain(current)
            async for event in events:
                yield t.Deployment.from_event(event)

    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Status changes of every deployment of the request's tenant.")
    async def deployments_status_changed(self, info: Info) -> AsyncGenerator[t.Deployment, None]:
        async with ctx(info).services.events.subscribe(f"deployments:tenant:{request_tenant(info)}") as events:
            async for event in events:
                yield t.Deployment.from_event(event)

    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="Controller liveness and the tenant's workers, after every health probe.")
    async def fastchat_health(self, info: Info) -> AsyncGenerator[t.FastChatHealth, None]:
        tenant_id = request_tenant(info)
        async with ctx(info).services.events.subscribe(FASTCHAT_HEALTH_TOPIC) as events:
            async for event in events:
                workers = [w for w in event.get("workers", []) if w.get("tenant_id") == tenant_id]
                yield t.FastChatHealth(
                    controller_alive=bool(event.get("controller_alive")),
                    checked_at=datetime.fromisoformat(event["checked_at"]) if event.get("checked_at")
                    else datetime.now(UTC),
                    workers=[t.HealthProbe(worker_address=w["address"], healthy=w["healthy"], speed=w["speed"],
                                           queue_length=w["queue_length"], detail=w.get("detail", ""),
                                           checked_at=datetime.fromisoformat(event["checked_at"]))
                             for w in workers])
