"""Tenants and their members."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from aigc_admin.domain.roles import TenantRole as _TenantRole
from aigc_admin.domain.tenants import service as ten
from aigc_admin.schema.common import Error

TenantRole = strawberry.enum(_TenantRole, description="A member's role in a tenant.")


@strawberry.type
class TenantMember:
    account_id: strawberry.ID
    username: str
    role: TenantRole  # type: ignore[valid-type]


@strawberry.type
class Tenant:
    id: strawberry.ID
    name: str
    code: str
    public_tenant_id: str
    remark: str
    created_at: datetime
    deleting: bool = strawberry.field(description="deleteTenant was asked: its members are out and a job is "
                                                  "removing what it owns; the tenant disappears when it is done.")

    @strawberry.field(description="Accounts in this tenant and their roles.")
    async def members(self, info: Info) -> list[TenantMember]:
        rows = await info.context.loaders.members.load(int(self.id))
        return [TenantMember(account_id=strawberry.ID(str(m.account_id)), username=m.username,
                             role=_TenantRole(m.role)) for m in rows]

    @classmethod
    def from_domain(cls, t: ten.Tenant) -> Tenant:
        return cls(id=strawberry.ID(str(t.id)), name=t.name, code=t.code, public_tenant_id=t.public_tenant_id,
                   remark=t.remark, created_at=t.created_at, deleting=t.deleting)


@strawberry.input
class CreateTenantInput:
    name: str
    code: str
    remark: str = ""


@strawberry.input
class UpdateTenantInput:
    id: strawberry.ID
    name: str | None = None
    remark: str | None = None


@strawberry.input
class SetMembershipInput:
    tenant_id: strawberry.ID
    account_id: strawberry.ID
    role: TenantRole  # type: ignore[valid-type]


@strawberry.input
class RemoveMembershipInput:
    tenant_id: strawberry.ID
    account_id: strawberry.ID


@strawberry.type
class TenantPayload:
    tenant: Tenant | None = None
    errors: list[Error] = strawberry.field(default_factory=list)
