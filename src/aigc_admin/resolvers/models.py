"""The model registry."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.models.service import ModelChanges, ModelType, Provider
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, operator, page, page_args, parse_id, typed_errors
from aigc_admin.schema import models as mo
from aigc_admin.schema.common import Page, Pagination


def visible_tenant(info: Info) -> int | None:
    """Platform admins without X-Tenant-Id see every model; everyone else sees the request tenant's."""
    c = ctx(info)
    assert c.principal is not None
    if c.tenant_id is None and not c.principal.is_platform_admin:
        raise GraphQLError("Send X-Tenant-Id of a tenant you are a member of", extensions={"code": perm.FORBIDDEN})
    return c.tenant_id


@strawberry.type
class ModelQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Models the request's tenant may use (platform admins without a tenant: all).")
    async def models(self, info: Info, filter: mo.ModelFilter | None = None,
                     pagination: Pagination | None = None) -> Page[mo.Model]:
        tenant = visible_tenant(info)
        f = filter or mo.ModelFilter()
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.models.list(
            tenant_id=tenant, search=f.search, provider=Provider(f.provider) if f.provider else None,
            offset=offset, limit=limit)
        return page([mo.Model.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED)
    async def model(self, info: Info, id: strawberry.ID) -> mo.Model | None:
        tenant = visible_tenant(info)
        try:
            return mo.Model.from_domain(await ctx(info).services.models.get(parse_id(id), tenant_id=tenant))
        except DomainError:
            return None


@strawberry.type
class ModelMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Register a model.")
    @typed_errors
    async def create_model(self, info: Info, input: mo.CreateModelInput) -> mo.ModelPayload:
        record = await ctx(info).services.models.create(
            name=input.name, provider=Provider(input.provider), model_type=ModelType(input.model_type),
            max_tokens=input.max_tokens, parameters=input.parameters, enabled=input.enabled, remark=input.remark,
            base_url=input.base_url, credentials=input.credentials, model_path=input.model_path,
            tenant_ids=[parse_id(i, "tenantIds") for i in input.tenant_ids], operator=operator(info),
            conversation_template=input.conversation_template)
        return mo.ModelPayload(model=mo.Model.from_domain(record))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def update_model(self, info: Info, input: mo.UpdateModelInput) -> mo.ModelPayload:
        changes = ModelChanges(
            max_tokens=input.max_tokens, parameters=input.parameters, enabled=input.enabled, remark=input.remark,
            base_url=input.base_url, credentials=input.credentials, model_path=input.model_path,
            model_type=ModelType(input.model_type) if input.model_type else None,
            tenant_ids=None if input.tenant_ids is None else [parse_id(i, "tenantIds") for i in input.tenant_ids],
            conversation_template=input.conversation_template)
        record = await ctx(info).services.models.update(parse_id(input.id), changes, operator=operator(info))
        return mo.ModelPayload(model=mo.Model.from_domain(record))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Delete a model that is not deployed.")
    @typed_errors
    async def delete_model(self, info: Info, id: strawberry.ID) -> mo.ModelPayload:
        await ctx(info).services.models.delete(parse_id(id))
        return mo.ModelPayload()
