"""Model registry fields."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.models.service import ModelChanges, ModelErrorCode, ModelType, Provider
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page_args, parse_id, run_mutation
from aigc_admin.schema import types as t


def visible_tenant(info: Info) -> int | None:
    """Platform admins without X-Tenant-Id see every model; everyone else sees the request tenant's."""
    c = ctx(info)
    assert c.principal is not None
    if c.tenant_id is None and not c.principal.is_platform_admin:
        from graphql import GraphQLError

        raise GraphQLError("Send X-Tenant-Id of a tenant you are a member of", extensions={"code": perm.FORBIDDEN})
    return c.tenant_id


def _model_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.ModelPayload, t.ModelError, ModelErrorCode, action)


@strawberry.type
class ModelQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Models the request's tenant may use (platform admins without a tenant: all).")
    async def models(self, info: Info, filter: t.ModelFilter | None = None,
                     pagination: t.Pagination | None = None) -> t.Page[t.Model]:
        tenant = visible_tenant(info)
        f = filter or t.ModelFilter()
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.models.list(
            tenant_id=tenant, search=f.search, provider=Provider(f.provider) if f.provider else None,
            offset=offset, limit=limit)
        return t.Page(items=[t.Model.from_domain(r) for r in rows], total_count=total, offset=offset, limit=limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED)
    async def model(self, info: Info, id: strawberry.ID) -> t.Model | None:
        tenant = visible_tenant(info)
        try:
            return t.Model.from_domain(await ctx(info).services.models.get(parse_id(id), tenant_id=tenant))
        except DomainError:
            return None


@strawberry.type
class ModelMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Register a model.")
    async def create_model(self, info: Info, input: t.CreateModelInput) -> t.ModelPayload:
        async def action() -> dict[str, Any]:
            c = ctx(info)
            record = await c.services.models.create(
                name=input.name, provider=Provider(input.provider), model_type=ModelType(input.model_type),
                max_tokens=input.max_tokens, parameters=input.parameters, enabled=input.enabled, remark=input.remark,
                base_url=input.base_url, credentials=input.credentials, model_path=input.model_path,
                tenant_ids=[parse_id(i, "tenantIds") for i in input.tenant_ids],
                operator=c.principal.username if c.principal else "")
            return {"model": t.Model.from_domain(record)}
        return await _model_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def update_model(self, info: Info, input: t.UpdateModelInput) -> t.ModelPayload:
        async def action() -> dict[str, Any]:
            c = ctx(info)
            changes = ModelChanges(
                max_tokens=input.max_tokens, parameters=input.parameters, enabled=input.enabled, remark=input.remark,
                base_url=input.base_url, credentials=input.credentials, model_path=input.model_path,
                model_type=ModelType(input.model_type) if input.model_type else None,
                tenant_ids=None if input.tenant_ids is None else [parse_id(i, "tenantIds") for i in input.tenant_ids])
            record = await c.services.models.update(parse_id(input.id), changes,
                                                    operator=c.principal.username if c.principal else "")
            return {"model": t.Model.from_domain(record)}
        return await _model_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Delete a model that is not deployed.")
    async def delete_model(self, info: Info, id: strawberry.ID) -> t.ModelPayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.models.delete(parse_id(id))
            return {}
        return await _model_payload(info, action)
