from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.accounts.errors import AccountErrorCode
from aigc_admin.domain.dicts.service import DictType
from aigc_admin.domain.errors import CommonErrorCode
from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.channels import ChannelMutations
from aigc_admin.resolvers.common import ctx, parse_id, run_mutation
from aigc_admin.resolvers.datasets import DatasetMutations
from aigc_admin.resolvers.deployments import DeploymentMutations
from aigc_admin.resolvers.files import FileMutations
from aigc_admin.resolvers.finetunes import FineTuneMutations
from aigc_admin.resolvers.models import ModelMutations
from aigc_admin.schema import types as t


def _tenant_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.TenantPayload, t.Error, CommonErrorCode, action)


def _account_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.AccountPayload, t.AccountError, AccountErrorCode, action)


def _ok_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.OkPayload, t.Error, CommonErrorCode, action)


def _dict_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, t.DictPayload, t.Error, CommonErrorCode, action)


@strawberry.type
class Mutation(ModelMutations, DeploymentMutations, ChannelMutations, DatasetMutations, FileMutations,
               FineTuneMutations):
    @strawberry.mutation(permission_classes=perm.PUBLIC,
                         description="Exchange a username and password for a token (local or LDAP account).")
    async def login(self, info: Info, input: t.LoginInput) -> t.LoginPayload:
        async def action() -> dict[str, Any]:
            result = await ctx(info).services.accounts.login(input.username, input.password)
            return {"token": result.token, "account": t.Account.from_domain(result.account)}
        return await run_mutation(info, t.LoginPayload, t.AccountError, AccountErrorCode, action)

    # --- tenants -------------------------------------------------------------------------
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def create_tenant(self, info: Info, input: t.CreateTenantInput) -> t.TenantPayload:
        async def action() -> dict[str, Any]:
            created = await ctx(info).services.tenants.create(name=input.name, code=input.code, remark=input.remark)
            return {"tenant": t.Tenant.from_domain(created)}
        return await _tenant_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def update_tenant(self, info: Info, input: t.UpdateTenantInput) -> t.TenantPayload:
        async def action() -> dict[str, Any]:
            updated = await ctx(info).services.tenants.update(parse_id(input.id), name=input.name, remark=input.remark)
            return {"tenant": t.Tenant.from_domain(updated)}
        return await _tenant_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Delete a tenant with its memberships and tenant-scoped data.")
    async def delete_tenant(self, info: Info, id: strawberry.ID) -> t.OkPayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.tenants.delete(parse_id(id))
            return {"ok": True}
        return await _ok_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Add an account to a tenant, or change its role there.")
    async def set_tenant_membership(self, info: Info, input: t.SetMembershipInput) -> t.TenantPayload:
        async def action() -> dict[str, Any]:
            s = ctx(info).services
            tenant = await s.tenants.get(parse_id(input.tenant_id, "tenantId"))
            await s.accounts.set_membership(tenant.id, parse_id(input.account_id, "accountId"),
                                            TenantRole(input.role))
            return {"tenant": t.Tenant.from_domain(tenant)}
        return await _tenant_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def remove_tenant_membership(self, info: Info, input: t.RemoveMembershipInput) -> t.TenantPayload:
        async def action() -> dict[str, Any]:
            s = ctx(info).services
            tenant = await s.tenants.get(parse_id(input.tenant_id, "tenantId"))
            await s.accounts.remove_membership(tenant.id, parse_id(input.account_id, "accountId"))
            return {"tenant": t.Tenant.from_domain(tenant)}
        return await _tenant_payload(info, action)

    # --- accounts ------------------------------------------------------------------------
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Create a local account.")
    async def create_account(self, info: Info, input: t.CreateAccountInput) -> t.AccountPayload:
        async def action() -> dict[str, Any]:
            created = await ctx(info).services.accounts.create_local(
                username=input.username, password=input.password, email=input.email, nickname=input.nickname,
                is_platform_admin=input.is_platform_admin)
            return {"account": t.Account.from_domain(created)}
        return await _account_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def update_account(self, info: Info, input: t.UpdateAccountInput) -> t.AccountPayload:
        async def action() -> dict[str, Any]:
            updated = await ctx(info).services.accounts.update(
                parse_id(input.id), email=input.email, nickname=input.nickname, enabled=input.enabled,
                is_platform_admin=input.is_platform_admin, password=input.password)
            return {"account": t.Account.from_domain(updated)}
        return await _account_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def delete_account(self, info: Info, id: strawberry.ID) -> t.OkPayload:
        async def action() -> dict[str, Any]:
            c = ctx(info)
            account_id = parse_id(id)
            if c.principal is not None and account_id == c.principal.account_id:
                from aigc_admin.domain.errors import Invalid

                raise Invalid("id", "you cannot delete your own account")
            await c.services.accounts.delete(account_id)
            return {"ok": True}
        return await _ok_payload(info, action)

    # --- system dictionary ---------------------------------------------------------------
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def create_dict(self, info: Info, input: t.CreateDictInput) -> t.DictPayload:
        async def action() -> dict[str, Any]:
            entry = await ctx(info).services.dicts.create(
                parent_id=parse_id(input.parent_id, "parentId"), code=input.code, dict_value=input.dict_value,
                dict_label=input.dict_label, dict_type=DictType(input.dict_type), sort=input.sort,
                remark=input.remark)
            return {"entry": t.DictEntry.from_domain(entry)}
        return await _dict_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    async def update_dict(self, info: Info, input: t.UpdateDictInput) -> t.DictPayload:
        async def action() -> dict[str, Any]:
            entry = await ctx(info).services.dicts.update(
                parse_id(input.id), code=input.code, dict_value=input.dict_value, dict_label=input.dict_label,
                dict_type=DictType(input.dict_type) if input.dict_type else None, sort=input.sort,
                remark=input.remark)
            return {"entry": t.DictEntry.from_domain(entry)}
        return await _dict_payload(info, action)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Delete an entry and its children.")
    async def delete_dict(self, info: Info, id: strawberry.ID) -> t.OkPayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.dicts.delete(parse_id(id))
            return {"ok": True}
        return await _ok_payload(info, action)
