"""Declarative permissions: every field lists who may call it (a schema walk test enforces it)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers.context import Context

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"


def _ctx(info: Info) -> Context:
    return info.context  # type: ignore[no-any-return]


class IsAuthenticated(BasePermission):
    message = "Sign in first: send 'Authorization: Bearer <token>' from the login mutation"
    error_extensions = {"code": UNAUTHENTICATED}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _ctx(info).principal is not None


class IsPlatformAdmin(BasePermission):
    message = "Only platform administrators may do this"
    error_extensions = {"code": FORBIDDEN}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        p = _ctx(info).principal
        return p is not None and p.is_platform_admin


def _refuse_bad_tenant(info: Info) -> None:
    """A bad X-Tenant-Id (not a number, another tenant, no such tenant) is refused with what is wrong with it."""
    error = _ctx(info).tenant_error
    if error is not None:
        raise GraphQLError(error, extensions={"code": FORBIDDEN})


class _InTenant(BasePermission):
    """The request names a tenant (X-Tenant-Id) in which the caller holds at least ``role``."""

    role = TenantRole.MEMBER
    message = "Send X-Tenant-Id of a tenant you are a member of"
    error_extensions = {"code": FORBIDDEN}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        ctx = _ctx(info)
        if ctx.principal is not None:
            _refuse_bad_tenant(info)
        return (ctx.principal is not None and ctx.tenant_id is not None
                and ctx.principal.may_act_in(ctx.tenant_id, self.role))


class InTenant(_InTenant):
    pass


class IsTenantMaintainer(_InTenant):
    role = TenantRole.MAINTAINER
    message = "Send X-Tenant-Id of a tenant in which you are a maintainer"


class TenantHeaderValid(BasePermission):
    """Refuses a request that names a tenant the caller is not a member of, even where a tenant is optional."""

    message = "You are not a member of the tenant named by X-Tenant-Id"
    error_extensions = {"code": FORBIDDEN}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        _refuse_bad_tenant(info)
        return True


# The lists fields use. Order matters: the first failing permission decides the error.
AUTHENTICATED = [IsAuthenticated, TenantHeaderValid]
PLATFORM_ADMIN = [IsAuthenticated, IsPlatformAdmin, TenantHeaderValid]
TENANT_MEMBER = [IsAuthenticated, InTenant]
TENANT_MAINTAINER = [IsAuthenticated, IsTenantMaintainer]
PUBLIC: list[type[BasePermission]] = []
